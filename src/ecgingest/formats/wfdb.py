"""WFDB records: text header plus signal files from a pool of entries.

Headers are parsed here in Python (they are a few hundred bytes); samples are
decoded by ``ecgingest._ext.wfdb`` in one ``nogil`` pass per signal file,
straight into the final per-signal arrays. FLAC signal files (formats
508/516/524) go through ``soundfile`` (libsndfile / libFLAC).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite as _isfinite
from typing import Any, NamedTuple

import numpy as np

from .._arena import Arena, block_views
from .._ext import wfdb as _kernel
from ..errors import (
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    MissingFileError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..record import Record, Signal, new_signal
from ._base import DecodeContext, GroupOutcome, MultiFileFormat, PoolFile, Probe

__all__ = [
    "FORMAT",
    "WfdbFormat",
    "is_header_name",
    "looks_like_header",
    "read_pool",
    "WfdbHeader",
    "WfdbSignalSpec",
    "WfdbSegmentSpec",
    "parse_header",
    "read_wfdb_header",
]

_RECORD_LINE = re.compile(rb"^\s*[^\s#/]+(/\d+)?\s+\d+(\s|$)")
_FS = re.compile(r"^([^/()]+)(?:/([^()]*))?(?:\(([^()]*)\))?$")
_FMT = re.compile(r"^(\d+)(?:x(\d+))?(?::(-?\d+))?(?:\+(\d+))?$")
_GAIN = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?(?:\((-?\d+)\))?(?:/(.*))?$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{1,2}))?(?::(\d{1,2}(?:\.\d*)?))?$")
_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{1,4})$")

_PACKED = {8, 16, 24, 32, 61, 80, 160, 212, 310, 311}
_FLAC = {508: 8, 516: 16, 524: 24}
_SUPPORTED = _PACKED | set(_FLAC) | {0}
_INVALID = {16: -32768, 61: -32768, 80: -128, 160: -32768, 24: -(2**23), 32: -(2**31),
            212: -2048, 310: -512, 311: -512, 508: -128, 516: -32768, 524: -(2**23)}
_WIDE = {24, 32, 524}
_DEFAULT_RES = {80: 8, 160: 16, 212: 12, 310: 10, 311: 10}
"""ADC resolution when absent or 0 (the C library; 12 for every other format)."""
_MAX_SIGNALS = 65536
_MAX_SEGMENTS = 1_000_000
_MAX_SPF = 1 << 20
_MAX_SKEW = 1 << 31
_INT32 = 1 << 31
_MAX_OFFSET = 1 << 48
_MIN_BUDGET = 64 * 2**20
"""Output bytes allowed however few data bytes are present (null signals, gaps)."""
_BUDGET_FACTOR = 16
"""Output bytes allowed per data byte present beyond ``_MIN_BUDGET``."""


# --------------------------------------------------------------------------- header


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


@dataclass(frozen=True)
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
    warnings: tuple[str, ...] = field(default=(), repr=False)

    @property
    def is_multi_segment(self) -> bool:
        return self.segments is not None

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


def _hdr_error(message: str, field_name: str | None = None) -> HeaderError:
    return HeaderError(message + "; fix the header line or re-export the record",
                       format="wfdb", field=field_name)


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _int(token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise _hdr_error(f"{what} {token!r} is not an integer", what) from None


def _float(token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _hdr_error(f"{what} {token!r} is not a number", what) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _hdr_error(f"{what} {token!r} is not a finite number", what)
    return value


def _parse_time(token: str, notes: list[str]) -> dt.time | None:
    m = _TIME.match(token)
    if m is None:
        notes.append(f"base time {token!r} is not HH:MM:SS; start time unknown")
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
        notes.append(f"base time {token!r} is out of range; start time unknown")
        return None


def _parse_date(token: str, notes: list[str]) -> dt.date | None:
    m = _DATE.match(token)
    if m is None:
        notes.append(f"base date {token!r} is not DD/MM/YYYY; date unknown")
        return None
    if token.count("/") != 2:
        notes.append(f"base date {token!r} uses separators other than '/'")
    try:
        return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        notes.append(f"base date {token!r} is not a valid date; date unknown")
        return None


def parse_header(data: bytes | str) -> WfdbHeader:
    """Parse a WFDB header (record, signal or segment lines, comments) with WFDB defaults."""
    text = data if isinstance(data, str) else _decode_text(bytes(data))
    notes: list[str] = []
    comments: list[str] = []
    body: list[tuple[int, str]] = []  # (index among comment+body lines, line)
    after_last: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            after_last.append(line[1:].strip())
            continue
        body.append((len(comments), line))
        after_last = []
    if not body:
        raise _hdr_error("no record line: the header holds only comments or nothing",
                         "record line")
    record_tokens = body[0][1].split()
    if len(record_tokens) < 2:
        raise _hdr_error("the record line needs at least a record name and a signal count",
                         "record line")
    name_token = record_tokens[0]
    nseg: int | None = None
    if "/" in name_token:
        name, _, seg_token = name_token.partition("/")
        nseg = _int(seg_token, "number of segments")
        if not 0 < nseg <= _MAX_SEGMENTS:
            raise _hdr_error(f"number of segments {nseg} is out of range", "number of segments")
    else:
        name = name_token
    nsig = _int(record_tokens[1], "number of signals")
    if not 0 <= nsig <= _MAX_SIGNALS:
        raise _hdr_error(f"number of signals {nsig} is out of range", "number of signals")
    fs, cfreq, bcount = 250.0, 0.0, 0.0
    if len(record_tokens) > 2:
        m = _FS.match(record_tokens[2])
        if m is None:
            raise _hdr_error(f"sampling frequency {record_tokens[2]!r} is malformed",
                             "sampling frequency")
        fs = _float(m.group(1), "sampling frequency")
        if m.group(2):
            cfreq = _float(m.group(2), "counter frequency")
        if m.group(3):
            bcount = _float(m.group(3), "base counter")
    if fs <= 0:
        raise _hdr_error(f"sampling frequency {fs} must be positive", "sampling frequency")
    if cfreq <= 0:
        cfreq = fs
    nframes: int | None = None
    if len(record_tokens) > 3:
        nframes = _int(record_tokens[3], "number of samples")
        if nframes < 0:
            raise _hdr_error(f"number of samples {nframes} is negative", "number of samples")
        if nframes == 0:
            nframes = None
    base_time = _parse_time(record_tokens[4], notes) if len(record_tokens) > 4 else None
    base_date = _parse_date(record_tokens[5], notes) if len(record_tokens) > 5 else None

    lines = body[1:]
    segments: tuple[WfdbSegmentSpec, ...] | None = None
    signals: list[WfdbSignalSpec] = []
    if nseg is not None:
        if len(lines) < nseg:
            raise _hdr_error(f"header declares {nseg} segments but lists {len(lines)}",
                             "segment lines")
        segs = []
        for _, line in lines[:nseg]:
            parts = line.split()
            if len(parts) < 2:
                raise _hdr_error(f"segment line {line!r} needs a name and a length",
                                 "segment lines")
            frames = _int(parts[1], "segment length")
            if frames < 0:
                raise _hdr_error(f"segment length {frames} is negative", "segment length")
            segs.append(WfdbSegmentSpec(parts[0], frames))
        segments = tuple(segs)
        used = nseg
    else:
        if len(lines) < nsig:
            raise _hdr_error(f"header declares {nsig} signals but has {len(lines)} signal lines",
                             "signal lines")
        texts = [line for _, line in lines[:nsig]]
        plain = _plain_signal_lines(texts, name, WfdbSignalSpec, _PACKED, _DEFAULT_RES)
        if plain is not None:  # every line complete and plain: parsed in one native call
            signals = plain
        else:  # anything unusual: every line through the Python parser and its errors
            for index, line in enumerate(texts):
                signals.append(_parse_signal(line, name, index, notes))
        used = nsig
    if len(lines) > used:
        notes.append(f"{len(lines) - used} extra line(s) after the declared "
                     f"{'segments' if nseg is not None else 'signals'} ignored")
    last_body_comments = lines[used - 1][0] if used > 0 else body[0][0]
    info = tuple(comments[last_body_comments:])
    return WfdbHeader(name, nsig, fs, cfreq, bcount, nframes, base_time, base_date,
                      tuple(signals), segments, tuple(comments), info, tuple(notes))


_plain_signal_lines = _kernel.plain_signal_lines
"""The native reading of complete plain signal lines (``None``: use ``_parse_signal``)."""


def _parse_signal(line: str, record: str, index: int, notes: list[str]) -> WfdbSignalSpec:
    """One signal line in Python: the reading ``_plain_signal_lines`` must equal."""
    parts = line.split(None, 8)
    if len(parts) < 2:
        raise _hdr_error(f"signal {index} names no format", "format")
    token = parts[1]
    if token.isdigit() and len(parts) >= 8 and parts[3].isdigit() \
            and token in _FAST_FORMATS:
        fast = _fast_signal(parts, record, index)
        if fast is not None:
            return fast
    return _general_signal(parts, record, index)


def _general_signal(parts: list[str], record: str, index: int) -> WfdbSignalSpec:
    """Any signal line, every field checked (errors name the field)."""
    file_name = parts[0]
    token = parts[1]
    m = _FMT.match(token)
    if m is None:
        raise _hdr_error(f"signal {index} format {parts[1]!r} is malformed", "format")
    fmt = int(m.group(1))
    if fmt not in _SUPPORTED:
        raise UnsupportedFeatureError(
            f"signal {index} uses WFDB format {fmt}, which ecgingest does not decode "
            f"(supported: {', '.join(str(f) for f in sorted(_SUPPORTED))})",
            format="wfdb", field="format")
    spf = int(m.group(2)) if m.group(2) else 1
    if not 1 <= spf <= _MAX_SPF:
        raise _hdr_error(f"signal {index} samples per frame {spf} is out of range",
                         "samples per frame")
    skew = int(m.group(3)) if m.group(3) else 0
    if not 0 <= skew <= _MAX_SKEW:
        raise _hdr_error(f"signal {index} skew {skew} is out of range", "skew")
    offset = int(m.group(4)) if m.group(4) else 0
    if offset > _MAX_OFFSET:
        raise _hdr_error(f"signal {index} byte offset {offset} is out of range", "byte offset")
    gain, baseline, units, uncal = 0.0, None, "mV", False
    if len(parts) > 2:
        g = _GAIN.match(parts[2])
        if g is None:
            raise _hdr_error(f"signal {index} gain {parts[2]!r} is malformed", "gain")
        if g.group(1):
            gain = _float(g.group(1), "gain")
        if g.group(2):
            baseline = int(g.group(2))
        if g.group(3):
            units = g.group(3)
    if gain == 0:
        gain, uncal = 200.0, True
    adcres = _int(parts[3], "ADC resolution") if len(parts) > 3 else 0
    if adcres == 0:
        adcres = _DEFAULT_RES.get(fmt, 12)
    adczero = _int(parts[4], "ADC zero") if len(parts) > 4 else 0
    initval = _int(parts[5], "initial value") if len(parts) > 5 else adczero
    checksum = _int(parts[6], "checksum") if len(parts) > 6 else None
    block = _int(parts[7], "block size") if len(parts) > 7 else 0
    description = parts[8].strip() if len(parts) > 8 else f"record {record}, signal {index}"
    if baseline is None:
        baseline = adczero
    for what, value in (("baseline", baseline), ("ADC zero", adczero),
                        ("initial value", initval)):
        if not -_INT32 <= value < _INT32:
            raise _hdr_error(f"signal {index} {what} {value} is out of range", what)
    return WfdbSignalSpec(file_name, fmt, spf, skew, offset, gain, baseline, units, adcres,
                          adczero, initval, checksum, block, description, uncal)


_FAST_FORMATS = {str(f) for f in _PACKED}


def _fast_signal(parts: list[str], record: str, index: int) -> WfdbSignalSpec | None:
    """The common complete signal line (plain format, all numeric fields present).

    Returns ``None`` whenever anything is unusual; the general parser then
    produces the value or the precise error.
    """
    gain_token = parts[2]
    head, slash, units = gain_token.partition("/")
    baseline: int | None = None
    if head.endswith(")"):
        head, _, base = head[:-1].partition("(")
        try:
            baseline = int(base)
        except ValueError:
            return None
    try:
        gain = float(head) if head else 0.0
        adcres, adczero, initval = int(parts[3]), int(parts[4]), int(parts[5])
        checksum, block = int(parts[6]), int(parts[7])
    except ValueError:
        return None
    if not _isfinite(gain) or "x" in head or "_" in gain_token:
        return None
    if not (-_INT32 <= adczero < _INT32 and -_INT32 <= initval < _INT32
            and (baseline is None or -_INT32 <= baseline < _INT32)):
        return None
    fmt = int(parts[1])
    uncal = gain == 0
    if uncal:
        gain = 200.0
    if adcres == 0:
        adcres = _DEFAULT_RES.get(fmt, 12)
    description = parts[8].strip() if len(parts) > 8 else f"record {record}, signal {index}"
    return WfdbSignalSpec(parts[0], fmt, 1, 0, 0, gain, adczero if baseline is None else baseline,
                          units if slash else "mV", adcres, adczero, initval, checksum, block,
                          description, uncal)


def read_wfdb_header(source: str | os.PathLike[str] | bytes | bytearray | memoryview
                     ) -> WfdbHeader:
    """Parse a WFDB header only (path or bytes): no signal file is opened.

    The fast path for listing and validating uploads; raises
    :class:`ecgingest.errors.HeaderError` for a malformed header.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        path = None
    else:
        path = os.fspath(source)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > (1 << 24):
                raise HeaderError(f"header of {size} bytes is implausibly large",
                                  format="wfdb", path=path, field="size")
            data = fh.read()
    try:
        return parse_header(data)
    except EcgIngestError as exc:
        exc.with_context(path=path)
        raise


# --------------------------------------------------------------------------- pool API


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


class WfdbFormat(MultiFileFormat):
    """WFDB records: a ``.hea`` header and the signal files it names, in one directory."""

    name = "wfdb"

    def is_anchor(self, name: str) -> bool:
        return is_header_name(name)

    def sniff_anchor(self, probe: Probe) -> bool:
        return looks_like_header(probe)

    def read_group(self, pool: Mapping[str, PoolFile], anchors: Sequence[str],
                   ctx: DecodeContext) -> Iterator[GroupOutcome]:
        return read_pool(pool, anchors, strict=ctx.strict, arena=ctx.arena)

    def unused_anchor_reason(self, name: str) -> str:
        return "WFDB header not used (no record was built from it)"


FORMAT = WfdbFormat()


def read_pool(pool: Mapping[str, PoolFile], headers: Sequence[str], *,
              strict: bool = False, arena: Arena | None = None) -> Iterator[GroupOutcome]:
    """One outcome per record of a directory group, in header order.

    Segment and layout headers referenced by a multi-segment header of the
    same pool are consumed by it and yield no outcome of their own. Sample
    arrays of small records come from ``arena`` when one is given.
    """
    parsed: dict[str, WfdbHeader | EcgIngestError] = {}
    for name in headers:
        parsed[name] = _parse_entry(pool[name])
    consumed: set[str] = set()
    for name in headers:
        hdr = parsed[name]
        if isinstance(hdr, WfdbHeader) and hdr.segments is not None:
            for seg in hdr.segments:
                seg_file = seg.name + ".hea"
                if seg.name != "~" and seg_file in parsed and seg_file != name:
                    consumed.add(seg_file)
    for name in headers:
        if name in consumed:
            continue
        hdr = parsed[name]
        reader = _Reader(pool, strict, arena)
        files = [name]
        if isinstance(hdr, EcgIngestError):
            yield GroupOutcome(name, None, hdr.with_context(path=name), tuple(files))
            continue
        try:
            record = reader.read(name, hdr, parsed)
        except EcgIngestError as exc:
            yield GroupOutcome(name, None, exc.with_context(format="wfdb"),
                              tuple(files + reader.used))
        except OSError:
            raise
        except Exception as exc:  # a decoder bug must still surface as a typed error
            error = CorruptDataError(
                f"record {hdr.record_name!r} could not be decoded ({type(exc).__name__}: {exc})",
                format="wfdb", path=name)
            error.__cause__ = exc
            yield GroupOutcome(name, None, error, tuple(files + reader.used))
        else:
            yield GroupOutcome(name, record, None, tuple(files + reader.used))


def _parse_entry(entry: PoolFile) -> WfdbHeader | EcgIngestError:
    try:
        if entry.size > (1 << 24):
            raise _hdr_error(f"header of {entry.size} bytes is implausibly large", "size")
        # head() reads just the file (read() may reserve the whole entry limit)
        return parse_header(entry.head(entry.size + 1))
    except EcgIngestError as exc:
        return exc.with_context(path=entry.path, format="wfdb")


# --------------------------------------------------------------------------- decoding


@dataclass
class _Decoded:
    """Per-signal digital arrays of one single-segment record (plus their notes)."""

    digital: list[np.ndarray]
    invalid_value: list[int | None]
    invalid_mask: list[np.ndarray | None]
    warnings: list[str]
    checksums: list[int | None]


class _Reader:
    """Decodes one record from a pool, remembering every file it used."""

    def __init__(self, pool: Mapping[str, PoolFile], strict: bool,
                 arena: Arena | None = None) -> None:
        self.pool = pool
        self.strict = strict
        self.arena = arena
        self.used: list[str] = []

    def _use(self, name: str) -> None:
        if name not in self.used:
            self.used.append(name)

    def _warn(self, notes: list[str], message: str, *, bad_data: bool = False,
              error: type[EcgIngestError] = HeaderError, path: str | None = None) -> None:
        if self.strict and bad_data:
            raise error(message, format="wfdb", path=path)
        notes.append(message)

    def _entry(self, record: str, file_name: str) -> PoolFile:
        entry = self.pool.get(file_name)
        if entry is None:
            raise MissingFileError(
                f"record {record!r} needs signal file {file_name!r}, which is not in the "
                "upload: add it next to the header", format="wfdb", path=None)
        self._use(file_name)
        return entry

    def read(self, header_name: str, hdr: WfdbHeader,
             parsed: Mapping[str, WfdbHeader | EcgIngestError]) -> Record:
        notes = list(hdr.warnings)
        stem = header_name[:-4]
        if hdr.record_name != stem:
            self._warn(notes, f"record name {hdr.record_name!r} in the header differs from "
                              f"the file name {header_name!r}")
        if hdr.segments is not None:
            return self._multi(header_name, hdr, parsed, notes)
        dec = self._single(hdr, notes)
        fs = hdr.frame_frequency
        signals = [  # positional: label, sample_rate, digital, scale, offset, units, invalid
            new_signal(spec.description, fs * spec.samples_per_frame, digital,
                       1.0 / spec.gain, -spec.baseline / spec.gain, spec.units, code, mask)
            for spec, digital, code, mask in zip(hdr.signals, dec.digital, dec.invalid_value,
                                                 dec.invalid_mask)
        ]
        return Record(name=hdr.record_name, format="wfdb", format_detail="WFDB",
                      signals=signals, start_time=hdr.start_time, warnings=notes,
                      extras=_extras(hdr, dec.checksums))

    # -- single segment ---------------------------------------------------

    def _single(self, hdr: WfdbHeader, notes: list[str]) -> _Decoded:
        specs = hdr.signals
        groups = _groups(specs)
        # group entries and the frames they hold, checked before any allocation
        avail: list[int | None] = []
        entries: list[PoolFile | None] = []
        data_bytes = 0
        for start, stop in groups:
            spec = specs[start]
            for k in range(start + 1, stop):
                if specs[k].fmt != spec.fmt or specs[k].byte_offset != spec.byte_offset:
                    raise HeaderError(
                        f"signals {start} and {k} share file {spec.file_name!r} but differ in "
                        "format or byte offset; a signal file holds one format",
                        format="wfdb", field="format")
            if spec.fmt == 0:
                avail.append(None)
                entries.append(None)
                continue
            entry = self._entry(hdr.record_name, spec.file_name)
            entries.append(entry)
            data_bytes += entry.size
            frame_size = sum(s.samples_per_frame for s in specs[start:stop])
            if spec.fmt in _FLAC:
                avail.append(None)  # known after decoding; bounded by the file size
            else:
                nbytes = max(entry.size - spec.byte_offset, 0)
                avail.append(_kernel.available_samples(spec.fmt, nbytes) // frame_size)
        nframes = hdr.n_frames
        if nframes is None:
            known = [a for a in avail if a is not None]
            if not known and any(specs[s].fmt in _FLAC for s, _ in groups):
                nframes = None  # settled by the FLAC decoder
            else:
                nframes = min(known) if known else 0
        self._check_budget(hdr, nframes, data_bytes)
        digital: list[np.ndarray | None] = [None] * len(specs)
        inval: list[int | None] = [None] * len(specs)
        masks: list[np.ndarray | None] = [None] * len(specs)
        sums: list[int | None] = [None] * len(specs)
        for (start, stop), entry, got in zip(groups, entries, avail):
            group = specs[start:stop]
            fmt = group[0].fmt
            if fmt == 0:
                n = nframes or 0
                for i, spec in enumerate(group, start):
                    digital[i] = np.zeros(n * spec.samples_per_frame, dtype=np.int16)
                    masks[i] = np.ones(n * spec.samples_per_frame, dtype=bool)
                continue
            assert entry is not None
            if fmt in _FLAC:
                outs, counts, csum = self._flac(hdr, group, entry, nframes)
                if nframes is None:
                    nframes = min(len(o) // s.samples_per_frame for o, s in zip(outs, group))
                    outs = [o[:nframes * s.samples_per_frame] for o, s in zip(outs, group)]
            else:
                assert got is not None and nframes is not None
                outs, counts, csum = self._packed(hdr, group, entry, nframes, got)
            code = _INVALID.get(fmt)
            declared = hdr.n_frames is not None
            for i, spec, out, count, total in zip(range(start, stop), group, outs, counts, csum):
                digital[i] = out
                n_out = len(out)
                shift = _skew_frames(spec) * spec.samples_per_frame if spec.skew else 0
                written = count - shift
                if written > n_out:
                    written = n_out
                elif written < 0:
                    written = 0
                inval[i] = code
                if written < n_out:
                    if code is not None:
                        out[written:] = code
                    else:
                        mask = np.zeros(n_out, dtype=bool)
                        mask[written:] = True
                        masks[i] = mask
                    if count == 0:
                        raise TruncatedError(
                            f"signal file {spec.file_name!r} holds none of the {n_out} samples "
                            f"of signal {spec.description!r} of record {hdr.record_name!r}; "
                            "upload the complete file", format="wfdb", path=entry.path)
                    if count < n_out:
                        self._warn(notes, f"signal file {spec.file_name!r} ends after "
                                          f"{count} of {n_out} samples of signal "
                                          f"{spec.description!r}; the rest is marked invalid",
                                   bad_data=True, error=TruncatedError, path=entry.path)
                    elif shift:
                        notes.append(f"signal {spec.description!r}: skew leaves the last "
                                     f"{n_out - written} samples without data (invalid)")
                if spec.checksum is not None and declared and count >= n_out:
                    sums[i] = total
                    if (total - spec.checksum) % 65536:
                        self._warn(notes, f"checksum of signal {spec.description!r} is "
                                          f"{total % 65536}, header says "
                                          f"{spec.checksum % 65536}: the data may be damaged",
                                   bad_data=True, error=ChecksumError, path=entry.path)
                if spec.uncalibrated:
                    notes.append(f"signal {spec.description!r} has no gain (uncalibrated); "
                                 "using 200 ADC units per unit")
        done = [d for d in digital if d is not None]
        if len(done) != len(specs):  # every group fills its signals; guard the invariant
            raise CorruptDataError(f"record {hdr.record_name!r}: some signals were not decoded",
                                   format="wfdb")
        return _Decoded(done, inval, masks, notes, sums)

    def _check_budget(self, hdr: WfdbHeader, nframes: int | None, data_bytes: int) -> None:
        """Refuse header sizes that would allocate far beyond the bytes present."""
        if nframes is None:
            return
        out_bytes = sum(nframes * s.samples_per_frame * (4 if s.fmt in _WIDE else 2)
                        for s in hdr.signals)
        if out_bytes > max(_MIN_BUDGET, _BUDGET_FACTOR * data_bytes):
            raise HeaderError(
                f"record {hdr.record_name!r} declares {nframes} frames ({out_bytes} bytes of "
                f"samples) but its signal files hold only {data_bytes} bytes; the sample "
                "count in the header is wrong", format="wfdb", field="number of samples")

    def _packed(self, hdr: WfdbHeader, group: Sequence[WfdbSignalSpec], entry: PoolFile,
                nframes: int, avail_frames: int) -> tuple[list[np.ndarray], list[int], list[int]]:
        fmt = group[0].fmt
        dtype = np.int32 if fmt in _WIDE else np.int16
        spf = [s.samples_per_frame for s in group]
        frame_size = sum(spf)
        skews = [_skew_frames(s) if s.skew else 0 for s in group]
        max_skew = max(skews)
        outs = block_views([nframes * k for k in spf], dtype, self.arena)
        with _signal_bytes(entry) as data:
            view = data[group[0].byte_offset:]
            nbytes = len(view)
            # a partial last frame still feeds the signals it reaches
            flat = min((nframes + max_skew) * frame_size,
                       _kernel.available_samples(fmt, nbytes))
            try:
                status, counts, sums = _kernel.decode_group(
                    view if nbytes else b"", fmt, flat, spf,
                    [k * n for k, n in zip(skews, spf)], outs,
                    [s.initial_value for s in group])
            finally:
                view.release()
        if status != 0:
            raise CorruptDataError(f"signal file {group[0].file_name!r} could not be decoded "
                                   f"(kernel status {status})", format="wfdb",
                                   path=entry.path)
        return outs, counts, sums

    def _flac(self, hdr: WfdbHeader, group: Sequence[WfdbSignalSpec], entry: PoolFile,
              nframes: int | None) -> tuple[list[np.ndarray], list[int], list[int]]:
        import soundfile

        fmt = group[0].fmt
        bits = _FLAC[fmt]
        spf = group[0].samples_per_frame
        if any(s.samples_per_frame != spf for s in group) or len(group) > 8:
            raise HeaderError(f"FLAC signal file {group[0].file_name!r} needs at most 8 signals "
                              "with equal samples per frame", format="wfdb",
                              path=entry.path)
        with entry.view() as whole:
            data = bytes(whole)
        if data[:4] != b"fLaC":
            raise CorruptDataError(f"signal file {group[0].file_name!r} of format {fmt} is not "
                                   "a FLAC stream (no 'fLaC' signature)", format="wfdb",
                                   path=entry.path)
        try:
            with soundfile.SoundFile(io.BytesIO(data)) as snd:
                if snd.channels != len(group):
                    raise CorruptDataError(
                        f"FLAC file {group[0].file_name!r} has {snd.channels} channels for "
                        f"{len(group)} signals", format="wfdb", path=entry.path)
                if snd.frames > _BUDGET_FACTOR * len(data) + _MIN_BUDGET:
                    raise CorruptDataError(
                        f"FLAC file {group[0].file_name!r} claims {snd.frames} samples, "
                        "implausible for its size", format="wfdb", path=entry.path)
                skip = group[0].byte_offset
                if skip:
                    snd.seek(min(skip, snd.frames))
                raw = snd.read(dtype="int32", always_2d=True)
        except EcgIngestError:
            raise
        except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
            raise CorruptDataError(f"FLAC file {group[0].file_name!r} could not be decoded: "
                                   f"{exc}", format="wfdb", path=entry.path) from exc
        dtype = np.int32 if fmt in _WIDE else np.int16
        values = raw >> (32 - bits)
        outs, counts, sums = [], [], []
        for c, spec in enumerate(group):
            column = values[:, c]
            n_out = len(column) if nframes is None else nframes * spf
            shift = _skew_frames(spec) * spf
            out = np.empty(n_out, dtype=dtype)
            src = column[shift:shift + n_out]
            out[:len(src)] = src
            counts.append(len(column))
            sums.append(int(column[:n_out].sum(dtype=np.int64)))
            outs.append(out)
        return outs, counts, sums

    # -- multi segment ----------------------------------------------------

    def _multi(self, header_name: str, hdr: WfdbHeader,
               parsed: Mapping[str, WfdbHeader | EcgIngestError], notes: list[str]) -> Record:
        assert hdr.segments is not None
        segs = hdr.segments
        seg_headers: list[WfdbHeader | None] = []
        for seg in segs:
            if seg.name == "~":
                seg_headers.append(None)
                continue
            file_name = seg.name + ".hea"
            sub = parsed.get(file_name)
            if sub is None:
                sub_entry = self.pool.get(file_name)
                if sub_entry is None:
                    raise MissingFileError(
                        f"multi-segment record {hdr.record_name!r} needs segment header "
                        f"{file_name!r}, which is not in the upload", format="wfdb",
                        path=None)
                sub = _parse_entry(sub_entry)
            self._use(file_name)
            if isinstance(sub, EcgIngestError):
                raise sub
            if sub.segments is not None:
                raise HeaderError(f"segment {seg.name!r} is itself multi-segment; WFDB does not "
                                  "nest segments", format="wfdb", path=self.pool[file_name].path)
            if sub.record_name != seg.name:
                notes.append(f"segment header {file_name!r} names record {sub.record_name!r}")
            if sub.n_frames is not None and sub.n_frames != seg.frames:
                raise HeaderError(f"segment {seg.name!r} has {sub.n_frames} frames but the "
                                  f"master header says {seg.frames}", format="wfdb",
                                  path=self.pool[file_name].path, field="segment length")
            seg_headers.append(sub)
        total = sum(s.frames for s in segs)
        if hdr.n_frames is not None and hdr.n_frames != total:
            self._warn(notes, f"segment lengths add up to {total} frames, the header says "
                              f"{hdr.n_frames}; using {total}")
        variable = (segs[0].name != "~" and seg_headers[0] is not None
                    and segs[0].frames == 0)
        if variable:
            return self._variable(hdr, seg_headers, notes)
        return self._fixed(hdr, seg_headers, notes)

    def _fixed(self, hdr: WfdbHeader, seg_headers: list[WfdbHeader | None],
               notes: list[str]) -> Record:
        assert hdr.segments is not None
        first = next((h for h in seg_headers if h is not None), None)
        if first is None:
            raise HeaderError("a fixed-layout multi-segment record needs at least one segment "
                              "with signals", format="wfdb")
        nsig = len(first.signals)
        if nsig != hdr.n_signals:
            raise HeaderError(f"segments have {nsig} signals, the master header says "
                              f"{hdr.n_signals}", format="wfdb", field="number of signals")
        spf = [s.samples_per_frame for s in first.signals]
        for h in seg_headers:
            if h is not None and [s.samples_per_frame for s in h.signals] != spf:
                raise HeaderError(f"segment {h.record_name!r} differs in signals or samples "
                                  "per frame from the first; fixed-layout segments must match",
                                  format="wfdb")
        total = sum(s.frames for s in hdr.segments)
        data_bytes = sum(self.pool[s.file_name].size for h in seg_headers if h is not None
                         for s in h.signals if s.file_name in self.pool)
        wide = any(s.fmt in _WIDE for h in seg_headers if h is not None for s in h.signals)
        dtype = np.int32 if wide else np.int16
        out_bytes = total * sum(spf) * (4 if wide else 2)
        if out_bytes > max(_MIN_BUDGET, _BUDGET_FACTOR * data_bytes):
            raise HeaderError(f"multi-segment record declares {total} frames, far more than "
                              f"its {data_bytes} bytes of signal files hold", format="wfdb",
                              field="number of samples")
        digital = [np.empty(total * k, dtype=dtype) for k in spf]
        masks = [np.zeros(total * k, dtype=bool) for k in spf]
        codes: list[set[int | None]] = [set() for _ in spf]
        pos = 0
        seg_info = []
        for seg, h in zip(hdr.segments, seg_headers):
            if h is None:
                for i in range(nsig):
                    a, b = pos * spf[i], (pos + seg.frames) * spf[i]
                    digital[i][a:b] = 0
                    masks[i][a:b] = True
                pos += seg.frames
                seg_info.append({"name": "~", "frames": seg.frames})
                continue
            h = _with_frames(h, seg.frames)
            dec = self._single(h, notes)
            for i in range(nsig):
                a, b = pos * spf[i], (pos + seg.frames) * spf[i]
                part = dec.digital[i]
                digital[i][a:b] = part
                code = dec.invalid_value[i]
                if code is not None:
                    masks[i][a:b] |= part == code
                if dec.invalid_mask[i] is not None:
                    masks[i][a:b] |= dec.invalid_mask[i]
                codes[i].add(code)
            seg_info.append({"name": h.record_name, "frames": seg.frames,
                             "extras": _extras(h, dec.checksums)})
            pos += seg.frames
        signals = []
        for i, spec in enumerate(first.signals):
            signals.append(Signal(
                label=spec.description, sample_rate=hdr.frame_frequency * spf[i],
                digital=digital[i], scale=1.0 / spec.gain, offset=-spec.baseline / spec.gain,
                units=spec.units, invalid_value=None,
                invalid_mask=masks[i] if masks[i].any() else None))
        extras = _extras(hdr, [None] * nsig, first)
        extras["segments"] = seg_info
        return Record(name=hdr.record_name, format="wfdb",
                      format_detail="WFDB multi-segment (fixed layout)", signals=signals,
                      start_time=hdr.start_time, warnings=notes, extras=extras)

    def _variable(self, hdr: WfdbHeader, seg_headers: list[WfdbHeader | None],
                  notes: list[str]) -> Record:
        assert hdr.segments is not None
        layout = seg_headers[0]
        assert layout is not None
        out_specs = layout.signals
        nsig = len(out_specs)
        spf = [s.samples_per_frame for s in out_specs]
        index = {s.description: i for i, s in enumerate(out_specs)}
        total = sum(s.frames for s in hdr.segments)
        data_bytes = sum(self.pool[s.file_name].size for h in seg_headers[1:] if h is not None
                         for s in h.signals if s.file_name in self.pool)
        out_bytes = total * sum(spf) * 13  # int32 digital + float64 physical + mask
        if out_bytes > max(_MIN_BUDGET, _BUDGET_FACTOR * 8 * data_bytes):
            raise HeaderError(f"multi-segment record declares {total} frames, far more than "
                              f"its {data_bytes} bytes of signal files hold", format="wfdb",
                              field="number of samples")
        digital = [np.zeros(total * k, dtype=np.int32) for k in spf]
        physical = [np.full(total * k, np.nan) for k in spf]
        masks = [np.ones(total * k, dtype=bool) for k in spf]
        rescaled = [False] * nsig
        pos = 0
        seg_info: list[dict[str, Any]] = [{"name": layout.record_name, "frames": 0,
                                           "layout": True}]
        for seg, h in zip(hdr.segments[1:], seg_headers[1:]):
            if h is None or seg.frames == 0:
                seg_info.append({"name": seg.name, "frames": seg.frames})
                pos += seg.frames
                continue
            h = _with_frames(h, seg.frames)
            dec = self._single(h, notes)
            for k, spec in enumerate(h.signals):
                i = index.get(spec.description)
                if i is None:
                    notes.append(f"segment {h.record_name!r}: signal {spec.description!r} is not "
                                 "in the layout header and was left out")
                    continue
                if spec.samples_per_frame != spf[i]:
                    raise HeaderError(f"segment {h.record_name!r}: signal {spec.description!r} "
                                      "has a different number of samples per frame than the "
                                      "layout", format="wfdb", field="samples per frame")
                a, b = pos * spf[i], (pos + seg.frames) * spf[i]
                part = dec.digital[k].astype(np.int64)
                bad = np.zeros(len(part), dtype=bool)
                if dec.invalid_value[k] is not None:
                    bad |= part == dec.invalid_value[k]
                if dec.invalid_mask[k] is not None:
                    bad |= dec.invalid_mask[k]
                lay = out_specs[i]
                phys = (part - spec.baseline) / spec.gain
                phys[bad] = np.nan
                physical[i][a:b] = phys
                if spec.gain != lay.gain or spec.baseline != lay.baseline:
                    rescaled[i] = True
                    ratio = lay.gain / spec.gain
                    # the C library's rescaling to the layout (round half up)
                    conv = np.floor(part * ratio + lay.baseline - spec.baseline * ratio + 0.5)
                    conv = np.clip(conv, -(2**31) + 1, 2**31 - 1)
                    digital[i][a:b] = conv.astype(np.int32)
                else:
                    digital[i][a:b] = part
                digital[i][a:b][bad] = 0
                masks[i][a:b] = bad
            seg_info.append({"name": h.record_name, "frames": seg.frames,
                             "extras": _extras(h, dec.checksums)})
            pos += seg.frames
        signals = []
        for i, spec in enumerate(out_specs):
            signals.append(Signal(
                label=spec.description, sample_rate=hdr.frame_frequency * spf[i],
                digital=digital[i], scale=1.0 / spec.gain, offset=-spec.baseline / spec.gain,
                units=spec.units, invalid_value=None,
                invalid_mask=masks[i] if masks[i].any() else None,
                supplied_physical=physical[i] if rescaled[i] else None))
        extras = _extras(hdr, [None] * nsig, layout)
        extras["segments"] = seg_info
        return Record(name=hdr.record_name, format="wfdb",
                      format_detail="WFDB multi-segment (variable layout)", signals=signals,
                      start_time=hdr.start_time, warnings=notes, extras=extras)


def _signal_bytes(entry: PoolFile) -> contextlib.AbstractContextManager[memoryview]:
    """The bytes of a signal file; a file on disk is memory-mapped, not copied, so the
    peak memory of a decode is the size of the output arrays."""
    return entry.view()


def _with_frames(h: WfdbHeader, frames: int) -> WfdbHeader:
    """A segment header with the frame count of the master header when its own is absent."""
    if h.n_frames is None and frames:
        import dataclasses
        return dataclasses.replace(h, n_frames=frames)
    return h


def _skew_frames(spec: WfdbSignalSpec) -> int:
    """Skew in frames as the C library converts it: round(k / spf)."""
    spf = spec.samples_per_frame
    return (spec.skew + spf // 2) // spf if spf > 1 else spec.skew


def _groups(specs: Sequence[WfdbSignalSpec]) -> list[tuple[int, int]]:
    """Runs of consecutive signals naming one file: ``(start, stop)`` indices."""
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(specs) + 1):
        if i == len(specs) or specs[i].file_name != specs[start].file_name \
                or specs[i].fmt == 0:
            groups.append((start, i))
            start = i
    return groups


def _extras(hdr: WfdbHeader, checksums: Sequence[int | None],
            signals_from: WfdbHeader | None = None) -> dict[str, Any]:
    src = signals_from or hdr
    return {
        "comments": list(hdr.comments),
        "info": list(hdr.info),
        "frame_frequency": hdr.frame_frequency,
        "counter_frequency": hdr.counter_frequency,
        "base_counter": hdr.base_counter,
        "n_frames": hdr.n_frames,
        "signal_specs": [  # unpacked once: cheaper than 15 attribute reads per signal
            {
                "file_name": file_name, "format": fmt, "samples_per_frame": spf,
                "skew": skew, "byte_offset": offset, "gain": gain, "baseline": baseline,
                "adc_resolution": adcres, "adc_zero": adczero, "initial_value": initval,
                "checksum": checksum, "computed_checksum": None if c is None else c % 65536,
                "block_size": block, "description": description, "uncalibrated": uncal,
            }
            for (file_name, fmt, spf, skew, offset, gain, baseline, _units, adcres, adczero,
                 initval, checksum, block, description, uncal), c
            in zip(src.signals, list(checksums) + [None] * len(src.signals))
        ],
    }
