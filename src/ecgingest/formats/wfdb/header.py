"""WFDB headers: the record line, signal lines and segment lines, WFDB defaults applied.

Headers are a few hundred bytes of text (spec/WFDB.md "Header file"). The
record and segment lines are read here; the signal lines, a dozen per header
and most of the parsing time, by the one grammar in ``ecgingest._ext.wfdb``
(``signal_lines``), whose errors are worded here after the field they name.
Nothing here opens a signal file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from typing import NamedTuple

from ..._ext import scale as _scale
from ..._ext import wfdb as _kernel
from ...errors import EcgIngestError, HeaderError, UnsupportedFeatureError
from ...limits import DEFAULT_LIMITS
from .._base import DecodeContext, PoolFile, Probe

__all__ = [
    "WfdbHeader",
    "WfdbSignalSpec",
    "WfdbSegmentSpec",
    "parse_header",
    "read_wfdb_header",
    "is_header_name",
    "looks_like_header",
]

# --------------------------------------------------------------------------- formats

PACKED = frozenset({8, 16, 24, 32, 61, 80, 160, 212, 310, 311})
"""Formats the native kernel unpacks."""
FLAC_BITS = {508: 8, 516: 16, 524: 24}
SUPPORTED = PACKED | set(FLAC_BITS) | {0}
INVALID = {16: -32768, 61: -32768, 80: -128, 160: -32768, 24: -(2**23), 32: -(2**31),
           212: -2048, 310: -512, 311: -512, 508: -128, 516: -32768, 524: -(2**23)}
"""The code each format stores for a missing sample (format 8 has none)."""
WIDE = frozenset({24, 32, 524})
"""Formats whose samples need 32 bits (the others fit int16)."""
DEFAULT_RES = {80: 8, 160: 16, 212: 12, 310: 10, 311: 10}
"""ADC resolution when absent or 0 (the C library; 12 for every other format)."""

"""Bounds of a header read outside an upload (``read_wfdb_header``)."""
MAX_HEADER_BYTES = 1 << 24
_MAX_SIGNALS = 65536

_RECORD_LINE = re.compile(rb"^\s*[^\s#/]+(/\d+)?\s+\d+(\s|$)")
_FS = re.compile(r"^([^/()]+)(?:/([^()]*))?(?:\(([^()]*)\))?$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{1,2}))?(?::(\d{1,2}(?:\.\d*)?))?$")
_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{1,4})$")


# --------------------------------------------------------------------------- model


class WfdbSignalSpec(NamedTuple):
    """One signal line of a WFDB header, defaults applied (WFDB.md 'Signal lines').

    A named tuple (immutable, cheap to build: the header-only path makes many).
    """

    file_name: str
    fmt: int
    samples_per_frame: int
    skew: int
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_resolution: int
    adc_zero: int
    initial_value: int
    checksum: int | None
    block_size: int
    description: str
    uncalibrated: bool


class WfdbSegmentSpec(NamedTuple):
    """One segment line of a multi-segment header (``name`` ``~`` = null segment)."""

    name: str
    frames: int


@dataclasses.dataclass(frozen=True)
class WfdbHeader:
    """Everything a WFDB header says, without touching any signal file."""

    record_name: str
    n_signals: int
    frame_frequency: float
    counter_frequency: float
    base_counter: float
    n_frames: int | None
    base_time: dt.time | None
    base_date: dt.date | None
    signals: tuple[WfdbSignalSpec, ...]
    segments: tuple[WfdbSegmentSpec, ...] | None
    comments: tuple[str, ...]
    info: tuple[str, ...]
    warnings: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def __init__(self, record_name: str, n_signals: int, frame_frequency: float,
                 counter_frequency: float, base_counter: float, n_frames: int | None,
                 base_time: dt.time | None, base_date: dt.date | None,
                 signals: tuple[WfdbSignalSpec, ...],
                 segments: tuple[WfdbSegmentSpec, ...] | None, comments: tuple[str, ...],
                 info: tuple[str, ...], warnings: tuple[str, ...] = ()) -> None:
        # the generated __init__ in one native call instead of a frozen __setattr__ per
        # field: every record read parses a header
        _scale.set_fields(self, _HEADER_FIELDS, (
            record_name, n_signals, frame_frequency, counter_frequency, base_counter,
            n_frames, base_time, base_date, signals, segments, comments, info, warnings))

    @property
    def is_multi_segment(self) -> bool:
        return self.segments is not None

    @property
    def is_layout(self) -> bool:
        """A variable-layout header: signals without files (``~``), no samples."""
        return bool(self.signals) and all(s.file_name == "~" for s in self.signals)

    @property
    def start_time(self) -> dt.datetime | dt.time | None:
        """A datetime when a date is given, a time of day when only a time is."""
        if self.base_date is not None:
            return dt.datetime.combine(self.base_date, self.base_time or dt.time())
        return self.base_time

    @property
    def sample_rates(self) -> tuple[float, ...]:
        return tuple(self.frame_frequency * s.samples_per_frame for s in self.signals)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(s.description for s in self.signals)

    def with_frames(self, frames: int) -> WfdbHeader:
        """This header with the frame count a master header gives when its own is absent."""
        if self.n_frames is None and frames:
            return dataclasses.replace(self, n_frames=frames)
        return self


_HEADER_FIELDS = tuple(f.name for f in dataclasses.fields(WfdbHeader))


# --------------------------------------------------------------------------- parsing


def _bad(ctx: DecodeContext, message: str, field: str) -> EcgIngestError:
    """A header error naming the field, with what the user can do about it."""
    return ctx.error(HeaderError, message + "; fix the header line or re-export the record",
                     field=field)


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _int(token: str, what: str, ctx: DecodeContext) -> int:
    try:
        return int(token)
    except ValueError:
        raise _bad(ctx, f"{what} {token!r} is not an integer", what) from None


def _float(token: str, what: str, ctx: DecodeContext) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _bad(ctx, f"{what} {token!r} is not a number", what) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _bad(ctx, f"{what} {token!r} is not a finite number", what)
    return value


def _parse_time(token: str, ctx: DecodeContext) -> dt.time | None:
    m = _TIME.match(token)
    if m is None:
        ctx.warn(f"base time {token!r} is not HH:MM:SS; start time unknown")
        return None
    parts = [p for p in m.groups() if p is not None]
    # fewer than 3 parts count from the right: SS, MM:SS, HH:MM:SS
    while len(parts) < 3:
        parts.insert(0, "0")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = float(parts[2])
    whole = int(seconds)
    micro = int(round((seconds - whole) * 1e6))
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    try:
        return dt.time(hours, minutes, whole, micro)
    except ValueError:
        ctx.warn(f"base time {token!r} is out of range; start time unknown")
        return None


def _parse_date(token: str, ctx: DecodeContext) -> dt.date | None:
    m = _DATE.match(token)
    if m is None:
        ctx.warn(f"base date {token!r} is not DD/MM/YYYY; date unknown")
        return None
    if token.count("/") != 2:
        ctx.warn(f"base date {token!r} uses separators other than '/'")
    try:
        return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        ctx.warn(f"base date {token!r} is not a valid date; date unknown")
        return None


def parse_header(data: bytes | str, ctx: DecodeContext | None = None) -> WfdbHeader:
    """Parse a WFDB header (record, signal or segment lines, comments) with WFDB defaults.

    Errors come from ``ctx`` (the header file's context); tolerated oddities
    are kept in ``WfdbHeader.warnings``.
    """
    return _parse(data, DecodeContext("wfdb", limits=DEFAULT_LIMITS) if ctx is None
                  else ctx.for_file())


def _parse(data: bytes | str, ctx: DecodeContext) -> WfdbHeader:
    """:func:`parse_header` with a context of the header file's own, whose warnings
    become the header's."""
    text = data if isinstance(data, str) else _decode_text(bytes(data))
    comments: list[str] = []
    body: list[tuple[int, str]] = []  # (comments before the line, line)
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            comments.append(line[1:].strip())
            continue
        body.append((len(comments), line))
    if not body:
        raise _bad(ctx, "no record line: the header holds only comments or nothing",
                   "record line")
    record_tokens = body[0][1].split()
    if len(record_tokens) < 2:
        raise _bad(ctx, "the record line needs at least a record name and a signal count",
                   "record line")
    name, slash, seg_token = record_tokens[0].partition("/")
    nseg = _int(seg_token, "number of segments", ctx) if slash else None
    if nseg is not None:
        if nseg <= 0:
            raise _bad(ctx, f"number of segments {nseg} is out of range", "number of segments")
        ctx.check_count(nseg, "max_entries", f"segments of multi-segment record {name!r}")
    nsig = _int(record_tokens[1], "number of signals", ctx)
    if not 0 <= nsig <= _MAX_SIGNALS:
        raise _bad(ctx, f"number of signals {nsig} is out of range", "number of signals")
    fs, cfreq, bcount = 250.0, 0.0, 0.0
    if len(record_tokens) > 2 and record_tokens[2].isdigit():  # the usual plain rate
        fs = _float(record_tokens[2], "sampling frequency", ctx)
    elif len(record_tokens) > 2:
        m = _FS.match(record_tokens[2])
        if m is None:
            raise _bad(ctx, f"sampling frequency {record_tokens[2]!r} is malformed",
                       "sampling frequency")
        fs = _float(m.group(1), "sampling frequency", ctx)
        if m.group(2):
            cfreq = _float(m.group(2), "counter frequency", ctx)
        if m.group(3):
            bcount = _float(m.group(3), "base counter", ctx)
    if fs <= 0:
        raise _bad(ctx, f"sampling frequency {fs} must be positive", "sampling frequency")
    if cfreq <= 0:
        cfreq = fs
    nframes: int | None = None
    if len(record_tokens) > 3:
        nframes = _int(record_tokens[3], "number of samples", ctx)
        if nframes < 0:
            raise _bad(ctx, f"number of samples {nframes} is negative", "number of samples")
        if nframes == 0:
            nframes = None
    base_time = _parse_time(record_tokens[4], ctx) if len(record_tokens) > 4 else None
    base_date = _parse_date(record_tokens[5], ctx) if len(record_tokens) > 5 else None

    lines = body[1:]
    segments: tuple[WfdbSegmentSpec, ...] | None = None
    signals: tuple[WfdbSignalSpec, ...] = ()
    if nseg is not None:
        if len(lines) < nseg:
            raise _bad(ctx, f"header declares {nseg} segments but lists {len(lines)}",
                       "segment lines")
        segments = tuple(_segment_line(line, ctx) for _, line in lines[:nseg])
        used = nseg
    else:
        if len(lines) < nsig:
            raise _bad(ctx, f"header declares {nsig} signals but has {len(lines)} signal lines",
                       "signal lines")
        signals = _signal_lines([line for _, line in lines[:nsig]], name, ctx)
        used = nsig
    if len(lines) > used:
        ctx.warn(f"{len(lines) - used} extra line(s) after the declared "
                 f"{'segments' if nseg is not None else 'signals'} ignored")
    # comments after the last line read are the record's info strings
    info_from = lines[used - 1][0] if used > 0 else body[0][0]
    return WfdbHeader(name, nsig, fs, cfreq, bcount, nframes, base_time, base_date,
                      signals, segments, tuple(comments), tuple(comments[info_from:]),
                      tuple(ctx.warnings))


def _segment_line(line: str, ctx: DecodeContext) -> WfdbSegmentSpec:
    parts = line.split()
    if len(parts) < 2:
        raise _bad(ctx, f"segment line {line!r} needs a name and a length", "segment lines")
    frames = _int(parts[1], "segment length", ctx)
    if frames < 0:
        raise _bad(ctx, f"segment length {frames} is negative", "segment length")
    return WfdbSegmentSpec(parts[0], frames)


def _signal_lines(lines: list[str], record: str, ctx: DecodeContext
                  ) -> tuple[WfdbSignalSpec, ...]:
    """The signal lines, read by the one grammar (``_kernel.signal_lines``); its
    first error worded here, naming the field.

    ``file fmt[xSPF][:SKEW][+OFFSET] [gain[(baseline)][/units] [adcres [adczero
    [initval [checksum [blocksize [description]]]]]]]``
    """
    fields, error = _kernel.signal_lines(lines, record, SUPPORTED, DEFAULT_RES)
    if error is not None:
        raise _signal_error(*error, ctx=ctx)
    assert fields is not None
    new = tuple.__new__
    return tuple([new(WfdbSignalSpec, f) for f in fields])


def _signal_error(index: int, field: str, kind: str, text: str | int | None, *,
                  ctx: DecodeContext) -> EcgIngestError:
    if kind == "missing":
        return _bad(ctx, f"signal {index} names no format", field)
    if kind == "unsupported":
        return ctx.error(
            UnsupportedFeatureError,
            f"signal {index} uses WFDB format {text}, which ecgingest does not decode "
            f"(supported: {', '.join(str(f) for f in sorted(SUPPORTED))})", field=field)
    if kind == "range":
        value = int(text) if isinstance(text, str) else text
        return _bad(ctx, f"signal {index} {field} {value} is out of range", field)
    if kind == "not finite":
        return _bad(ctx, f"signal {index} {field} {text!r} is not a finite number", field)
    if kind == "not an integer":
        return _bad(ctx, f"signal {index} {field} {text!r} is not an integer", field)
    return _bad(ctx, f"signal {index} {field} {text!r} is malformed", field)


# --------------------------------------------------------------------------- files


def read_wfdb_header(source: str | os.PathLike[str] | bytes | bytearray | memoryview
                     ) -> WfdbHeader:
    """Parse a WFDB header only (path or bytes): no signal file is opened.

    The fast path for listing and validating uploads; raises
    :class:`ecgingest.errors.HeaderError` for a malformed header.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return parse_header(bytes(source))
    path = os.fspath(source)
    ctx = DecodeContext("wfdb", path=path, limits=DEFAULT_LIMITS)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_HEADER_BYTES:
            raise _bad(ctx, f"header of {size} bytes is implausibly large", "size")
        data = fh.read()
    return parse_header(data, ctx)


def read_header_file(entry: PoolFile, ctx: DecodeContext) -> WfdbHeader | EcgIngestError:
    """The header of a pool file, or the error that stops it (returned, not raised).

    ``ctx``: the upload's; the header gets a context of its own."""
    ctx = ctx.for_file(path=entry.path)
    try:
        if entry.size > MAX_HEADER_BYTES:
            raise _bad(ctx, f"header of {entry.size} bytes is implausibly large", "size")
        # head() reads just the file (a full read may reserve the whole entry limit)
        return _parse(entry.head(entry.size + 1), ctx)
    except EcgIngestError as exc:
        return exc.with_context(path=entry.path, format="wfdb")


def is_header_name(name: str) -> bool:
    return name.lower().endswith(".hea")


def looks_like_header(probe: Probe) -> bool:
    """True when the file reads as a WFDB header (for the 'header alone' error)."""
    if is_header_name(probe.name):
        return True
    for line in probe.head(4096).splitlines():
        if line.strip() and not line.lstrip().startswith(b"#"):
            return bool(_RECORD_LINE.match(line))
    return False
