"""EDF, EDF+ (C and D), BDF and BDF+: header semantics in Python, samples via
``ecgingest._ext.edf``.

The header's fields are split by the compiled module; this module gives them
meaning (numbers, dates, EDF+ subfields), decides what is tolerated (each
tolerance becomes a line of ``Record.warnings`` through the
:class:`~ecgingest.formats._base.DecodeContext`) and what is an error, then
asks the kernel to de-interleave every data record in one pass.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime as dt
import functools
import itertools
import math
import operator
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Union, cast

import numpy as np

from .._ext import edf as _kernel
from .._memory import block_views
from ..errors import CorruptDataError, EcgIngestError, HeaderError, TruncatedError
from ..limits import DEFAULT_LIMITS
from ..record import (
    Annotation,
    Metadata,
    Record,
    RecordInfo,
    Signal,
    SignalInfo,
    new_annotations,
    new_signals,
)
from ._base import (
    _TOLERANCE,
    ByteSource,
    DecodeContext,
    Probe,
    ReadRequest,
    SingleFileFormat,
    annotations_within,
)

__all__ = ["FORMAT", "EdfFormat", "EdfHeader", "EdfSignalHeader", "read_edf_header", "sniff"]

_EDF_VERSION = b"0       "
_BDF_VERSION = b"\xffBIOSEMI"
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_INT = re.compile(rb"^\s*[+-]?\d+\s*$")
_DECIMAL = re.compile(rb"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_DATE_PARTS = re.compile(r"^\s*(\d{1,2})[.:\-/ ](\d{1,2})[.:\-/ ](\d{1,2}|yy)\s*$")
_EDFPLUS_DATE = re.compile(r"^(\d{2})-([A-Z]{3})-(\d{4})$")
_ONSET = re.compile(rb"^[+-]\d+(\.\d*)?$")
_DURATION = re.compile(rb"^\d+(\.\d*)?$")

# Per-signal header fields, in file order, as named in errors and extras.
_SIGNAL_FIELDS = ("label", "transducer type", "physical dimension", "physical minimum",
                  "physical maximum", "digital minimum", "digital maximum", "prefiltering",
                  "samples per data record", "signal reserved")
_SIGNAL_FIELD_STARTS = (0, *itertools.accumulate(_kernel.SIGNAL_FIELD_WIDTHS[:-1]))
"""Where each field's column starts in the signal headers, in bytes per signal."""
_INTEGER_FIELDS = (5, 6, 8)
_FIXED_TEXT_FIELDS = {8: "local patient identification", 88: "local recording identification",
                      192: "reserved"}


# --------------------------------------------------------------------------- header model


@dataclass(frozen=True)
class EdfSignalHeader:
    """One signal's header fields, parsed (annotation signals included)."""

    index: int
    label: str
    transducer: str
    units: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    prefiltering: str
    samples_per_record: int
    reserved: str
    is_annotation: bool
    sample_rate: float
    scale: float
    offset: float


if TYPE_CHECKING:
    _once = functools.cached_property
else:
    class _once:
        """:func:`functools.cached_property` without its lock (Python 3.10 and 3.11 take
        one at each first access, and a header is parsed per read): two threads asking
        at once work the same value out twice, which is harmless here."""

        __slots__ = ("func", "name")

        def __init__(self, func):
            self.func = func
            self.name = func.__name__

        def __get__(self, instance, owner=None):
            if instance is None:
                return self
            value = instance.__dict__[self.name] = self.func(instance)
            return value


@dataclass(frozen=True)
class EdfHeader:
    """Everything the header says, without reading the data records.

    ``n_records`` is the number of whole data records the file really holds
    (what ``ecgingest.read`` decodes); ``n_records_declared`` the header's own
    count. ``start_time`` has whole seconds only: the EDF+ subsecond offset
    lives in the first data record.
    """

    format: str
    format_detail: str
    version: bytes
    patient_text: str
    recording_text: str
    start_time: dt.datetime | None
    header_bytes: int
    header_bytes_declared: int | None
    reserved: str
    n_records: int
    n_records_declared: int
    record_duration: float
    record_size: int
    signals: tuple[EdfSignalHeader, ...]
    metadata: Metadata
    identification: Mapping[str, str]
    warnings: tuple[str, ...]

    # worked out once per header (a read asks for them many times); kept in the
    # instance's __dict__, so equality and repr still see the fields only
    @functools.cached_property
    def data_signals(self) -> tuple[EdfSignalHeader, ...]:
        """Ordinary signals (annotation signals excluded)."""
        return tuple(s for s in self.signals if not s.is_annotation)

    @functools.cached_property
    def annotation_signals(self) -> tuple[EdfSignalHeader, ...]:
        return tuple(s for s in self.signals if s.is_annotation)

    @property
    def is_plus(self) -> bool:
        """EDF+ or BDF+ (reserved field starts with ``EDF+`` / ``BDF+``)."""
        return "+" in self.format_detail

    @property
    def is_discontinuous(self) -> bool:
        return self.format_detail.endswith("+D")

    # A parsed header holds its signals as rows (:class:`_Row`, what a read uses) and
    # builds the per-signal objects of ``signals`` on first use.
    if not TYPE_CHECKING:  # to the type checker, every attribute is declared
        def __getattr__(self, name: str) -> Any:
            rows = self.__dict__.get("_rows")
            if name != "signals" or rows is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                     f"{name!r}")
            signals = self.__dict__["signals"] = tuple(map(_signal_header, rows))
            return signals

    @_once
    def _rows(self) -> tuple[_Row, ...]:
        """The signals as rows (a header built from its fields, not parsed)."""
        return tuple(_new_row(tuple(getattr(s, f) for f in _SIGNAL_HEADER_FIELDS))
                     for s in self.signals)

    @_once
    def _data_rows(self) -> tuple[_Row, ...]:
        return tuple(s for s in self._rows if not s.is_annotation)

    @_once
    def _annotation_rows(self) -> tuple[_Row, ...]:
        return tuple(s for s in self._rows if s.is_annotation)

    @_once
    def _slot_offsets(self) -> tuple[int, ...]:
        """Byte offset of every signal's slot inside a data record, by signal index."""
        return _offsets_of_slots(tuple(s.samples_per_record for s in self._rows), self.format)

    @_once
    def _samples_per_record(self) -> tuple[int, ...]:
        """Samples per data record of each data signal."""
        return tuple(s.samples_per_record for s in self._data_rows)

    @_once
    def _scatter_layouts(self) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
        """Samples per record and slot offsets of signals read together (by their
        indices, in slot order), as the scattered read takes them: the same signals are
        read again for every window (private: the kernel only reads them)."""
        return {}

    def _scatter_layout(self, order: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        layouts = self._scatter_layouts
        layout = layouts.get(order)
        if layout is None:
            counts = np.array([self._rows[i].samples_per_record for i in order],
                              dtype=np.int64)
            offsets = np.array([self._slot_offsets[i] for i in order], dtype=np.int64)
            if len(layouts) >= 16:  # a few channel sets at a time
                layouts.clear()
            layout = layouts[order] = (counts, offsets)
        return layout

    @_once
    def _extra_columns(self) -> dict[str, tuple]:
        """The per-signal extras of a record (one tuple over the data signals each)."""
        columns = tuple(zip(*map(_EXTRA_FIELDS, self._data_rows))) or ((),) * 8
        return dict(zip(_EXTRA_KEYS, columns))

    @_once
    def _window_facts(self) -> tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...],
                                     float, float]:
        """What placing a window needs of the data signals: labels, sample rates,
        samples in the file, the highest rate and the record's duration in seconds."""
        rows = self._data_rows
        return _window_facts(tuple(s.label for s in rows), tuple(s.sample_rate for s in rows),
                             tuple(s.samples_per_record for s in rows), self.n_records)


def _offsets_of_slots(counts: tuple[int, ...], fmt: str) -> tuple[int, ...]:
    """Byte offset of each signal's slot inside a data record, from its samples per record."""
    bps = 3 if fmt == "bdf" else 2
    return (0, *itertools.accumulate(n * bps for n in counts))[:len(counts)]


def _window_facts(labels: tuple[str, ...], rates: tuple[float, ...], counts: tuple[int, ...],
                  n_records: int) -> tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...],
                                           float, float]:
    """:attr:`EdfHeader._window_facts` of signals with these labels, sample rates and
    samples per data record."""
    lengths = tuple(n_records * n for n in counts)
    duration = max((n / r for n, r in zip(lengths, rates) if r > 0), default=0.0)
    return labels, rates, lengths, max(rates, default=0.0), duration


_SIGNAL_HEADER_FIELDS = tuple(f.name for f in dataclasses.fields(EdfSignalHeader))
if TYPE_CHECKING:  # a row has the fields, and types, of a signal header
    _Row = EdfSignalHeader
else:
    _Row = collections.namedtuple("_Row", _SIGNAL_HEADER_FIELDS)
    _Row.__doc__ = """One signal's header fields, as a read uses them: an
    :class:`EdfSignalHeader` without the per-signal object (a tuple, built with the
    header at C speed)."""


def _signal_header(row: _Row) -> EdfSignalHeader:
    """The :class:`EdfSignalHeader` of a row.

    Fills the instance directly: the frozen dataclass ``__init__`` (one
    ``object.__setattr__`` per field) was a quarter of a header's parse time.
    """
    header = object.__new__(EdfSignalHeader)
    header.__dict__.update(zip(_SIGNAL_HEADER_FIELDS, cast("tuple", row)))
    return header


# --------------------------------------------------------------------------- detection


def _fixed_header_ok(head: bytes) -> bool:
    """Version and the numeric fixed fields look like EDF/BDF (cheap, never raises)."""
    if len(head) < 256:
        return False
    version = head[0:8]
    if version != _BDF_VERSION and not (version[:1] == b"0" and version[1:].strip(b" ") == b""):
        return False
    ns_field, n_rec_field, duration_field = head[252:256], head[236:244], head[244:252]
    if not ns_field.strip().isdigit() or not _INT.match(n_rec_field):
        return False
    if not _DECIMAL.match(duration_field) or not head[184:192].strip().isdigit():
        return False
    return int(ns_field) >= 1


def sniff(probe: Probe) -> bool:
    """EDF/BDF by content: the fixed 256-byte header, never the name.

    The version field must be ``0`` plus spaces (EDF) or ``\\xffBIOSEMI`` (BDF)
    and the header size, record count, record duration and signal count must
    be ASCII numbers. A file shorter than the header it announces is still
    claimed, so the user gets a precise truncation error instead of "unknown
    format".
    """
    try:
        return _fixed_header_ok(probe.head(256))
    except Exception:  # sniffing must never raise
        return False


# --------------------------------------------------------------------------- header parsing


def _header_error(ctx: DecodeContext, message: str, field: str, offset: int) -> EcgIngestError:
    return ctx.error(HeaderError, message, field=field, offset=offset)


def _truncated(ctx: DecodeContext, message: str, field: str | None,
               offset: int) -> EcgIngestError:
    return ctx.error(TruncatedError, message, field=field, offset=offset)


def _warn_non_ascii(ctx: DecodeContext, at: int, ns: int) -> None:
    """The one warning of a header whose text fields hold bytes above 127 (the first at
    header offset ``at``)."""
    if at < 256:
        field = _FIXED_TEXT_FIELDS[max(o for o in _FIXED_TEXT_FIELDS if o <= at)]
    else:
        field = _SIGNAL_FIELDS[bisect.bisect_right(
            [256 + o * ns for o in _SIGNAL_FIELD_STARTS], at) - 1]
    ctx.warn(f"non-ASCII bytes in the header (first in field {field!r} at byte {at}); read "
             "as Latin-1")


def _int_field(raw: bytes, ctx: DecodeContext, field: str, offset: int) -> int:
    if not _kernel.valid_number(raw, True):
        raise _header_error(
            ctx, f"{field} must be an ASCII integer, found {raw!r}; the file is not valid EDF",
            field, offset)
    return int(raw)


def _float_field(raw: bytes, ctx: DecodeContext, field: str, offset: int) -> float:
    if not _kernel.valid_number(raw, False):
        raise _header_error(
            ctx, f"{field} must be an ASCII decimal number, found {raw!r}; the file is not "
            "valid EDF", field, offset)
    value = float(raw)
    if not math.isfinite(value):
        raise _header_error(ctx, f"{field} is not a finite number: {raw!r}", field, offset)
    return value


def _parse_header(head: bytes | memoryview | np.ndarray, file_size: int, ctx: DecodeContext,
                  fmt: str) -> EdfHeader:
    """Parse and check the header; ``file_size`` decides how many records exist."""
    if len(head) < 256:
        raise _truncated(ctx, f"the file has {len(head)} bytes, fewer than the 256-byte "
                         "fixed EDF header", None, len(head))
    fixed256 = bytes(head[:256])
    ns = _int_field(fixed256[252:256], ctx, "number of signals", 252)
    if ns < 1:
        raise _header_error(ctx, f"number of signals is {ns}; an EDF file needs at least "
                            "one", "number of signals", 252)
    header_bytes = 256 * (ns + 1)
    if len(head) < header_bytes:
        raise _truncated(
            ctx, f"the header announces {ns} signals ({header_bytes} header bytes) but the file "
            f"has only {len(head)} bytes; the file is cut short or the signal count is wrong",
            "number of signals", 252)
    view = np.frombuffer(head, dtype=np.uint8, count=header_bytes)
    fixed_texts, texts, numbers, non_ascii, unprintable, bad = _kernel.header_fields(
        view, ns, 8 if fmt == "bdf" else 0)
    patient_text, recording_text, reserved = fixed_texts
    if 0 <= non_ascii < 168:  # in the patient or recording field
        _warn_non_ascii(ctx, non_ascii, ns)
    version = fixed256[0:8]
    declared_hb = None
    hb_raw = fixed256[184:192]
    if _INT.match(hb_raw):
        declared_hb = int(hb_raw)
        if declared_hb != header_bytes:
            ctx.warn(f"header size field says {declared_hb} bytes but {ns} signals need "
                     f"{header_bytes}; the signal count is trusted")
    else:
        ctx.warn(f"header size field {hb_raw!r} is not a number; the signal count is trusted")
    if 192 <= non_ascii < 256:  # in the reserved field
        _warn_non_ascii(ctx, non_ascii, ns)
    n_declared = _int_field(fixed256[236:244], ctx, "number of data records", 236)
    duration = _float_field(fixed256[244:252], ctx, "data record duration", 244)
    if duration < 0:
        raise _header_error(ctx, f"data record duration is negative ({duration})",
                            "data record duration", 244)

    kind = "BDF" if fmt == "bdf" else "EDF"
    variant = reserved[:5].upper()
    if variant in ("EDF+C", "EDF+D", "BDF+C", "BDF+D"):
        if variant[:3] != kind:
            ctx.warn(f"reserved field says {reserved[:5]!r} in a {kind} file; read as "
                     f"{kind}+{variant[4]}")
        detail = f"{kind}+{variant[4]}"
    else:
        detail = kind
    plus = "+" in detail

    if non_ascii >= 256:  # in a signal's text field
        _warn_non_ascii(ctx, non_ascii, ns)
    if unprintable >= 0 and non_ascii < 0 and plus:
        ctx.warn(f"control bytes in the header (first at byte {unprintable}); EDF+ allows "
                 "only printable ASCII")
    if bad is not None:
        raise _bad_number(view, ns, bad, ctx)
    signals, record_size = _signal_headers(texts, numbers, ctx, fmt, plus, duration,
                                           file_size)

    # record count from the bytes really present
    available_bytes = file_size - header_bytes
    if record_size == 0:
        if available_bytes > 0:
            raise _header_error(
                ctx, f"every signal has 0 samples per data record but {available_bytes} bytes "
                "of data follow the header; the samples-per-record fields are wrong",
                "samples per data record", 256 + 216 * ns)
        n_records = 0
    else:
        whole = max(available_bytes, 0) // record_size
        partial = max(available_bytes, 0) - whole * record_size
        if n_declared == -1:
            n_records = whole
            ctx.warn(f"number of data records is -1 (recording not closed); counted {whole} "
                     "from the file size")
        elif n_declared < -1:
            raise _header_error(ctx, f"number of data records is {n_declared}",
                                "number of data records", 236)
        elif whole < n_declared:
            msg = (f"the header declares {n_declared} data records but the file holds only "
                   f"{whole} whole ones")
            if ctx.strict:
                raise _truncated(ctx, msg, "number of data records",
                                 header_bytes + whole * record_size)
            ctx.warn(msg + "; decoded those")
            n_records = whole
        else:
            n_records = n_declared
            extra = available_bytes - n_declared * record_size
            if extra > 0:
                ctx.warn(f"{extra} bytes after the {n_declared} declared data records are "
                         "ignored")
        if partial and n_declared != -1 and whole < n_declared:
            ctx.warn(f"the last data record is incomplete ({partial} of {record_size} bytes) "
                     "and was dropped")
        elif partial and n_declared == -1:
            ctx.warn(f"the last data record is incomplete ({partial} of {record_size} bytes) "
                     "and was dropped")
    if duration == 0 and any(s.samples_per_record for s in signals if not s.is_annotation):
        ctx.warn("data record duration is 0: sample rates are undefined (reported as 0)")

    start = _start_datetime(fixed256[168:176], fixed256[176:184],
                            recording_text if plus else None, ctx)
    metadata, identification = _metadata(patient_text, recording_text, plus, ctx)
    header = object.__new__(EdfHeader)  # signals as rows: the objects when asked for
    header.__dict__.update(
        format=fmt, format_detail=detail, version=version, patient_text=patient_text,
        recording_text=recording_text, start_time=start, header_bytes=header_bytes,
        header_bytes_declared=declared_hb, reserved=reserved, n_records=n_records,
        n_records_declared=n_declared, record_duration=duration, record_size=record_size,
        _rows=signals, metadata=metadata, identification=identification,
        warnings=tuple(ctx.warnings))
    if not any(row.is_annotation for row in signals):
        # every signal a data signal: what a read asks of them comes from the columns as
        # the kernel read them (the header's properties would collect them from the rows;
        # with annotation signals among them they still do, only for what a read uses)
        labels, transducers, _, prefilters, signal_reserved = texts
        counts = cast("tuple[int, ...]", tuple(numbers[4]))
        rates = tuple(n / duration for n in counts) if duration > 0 else (0.0,) * ns
        header.__dict__.update(
            _data_rows=signals, _annotation_rows=(), _samples_per_record=counts,
            _slot_offsets=_offsets_of_slots(counts, fmt),
            _window_facts=_window_facts(tuple(labels), rates, counts, n_records),
            _extra_columns=_extras_of_columns({
                "transducer": transducers, "prefiltering": prefilters,
                "physical_min": numbers[0], "physical_max": numbers[1],
                "digital_min": numbers[2], "digital_max": numbers[3],
                "reserved": signal_reserved, "samples_per_record": counts}))
    return header


_new_row = cast("Callable[[tuple], _Row]", functools.partial(tuple.__new__, _Row))
"""A row of its field values, in order (the tuple made directly: no ``__new__`` call)."""


def _bad_number(view: np.ndarray, ns: int, bad: tuple[int, int, int],
                ctx: DecodeContext) -> EcgIngestError:
    """The error of the first bad number field ``(field, signal, code)`` the kernel found."""
    f, i, code = bad
    off = 256 + _SIGNAL_FIELD_STARTS[f] * ns + i * 8
    name = f"{_SIGNAL_FIELDS[f]} of signal {i}"
    if code == 2:
        return _header_error(ctx, f"{name} is not a finite number", name, off)
    kind = "integer" if f in _INTEGER_FIELDS else "decimal number"
    return _header_error(ctx, f"{name} must be an ASCII {kind}, found "
                         f"{bytes(view[off:off + 8])!r}; the file is not valid EDF", name, off)


def _signal_headers(texts: list[list[str]], numbers: list[list], ctx: DecodeContext, fmt: str,
                    plus: bool, duration: float, file_size: int
                    ) -> tuple[tuple[_Row, ...], int]:
    """The per-signal fields as the kernel read them, with their tolerances and the
    errors of their values.

    Returns the signal headers and the data record size in bytes.
    """
    kind = "BDF" if fmt == "bdf" else "EDF"
    bps = 3 if fmt == "bdf" else 2
    labels, transducers, units, prefilters, sreserved = texts
    pmins, pmaxs, dmins, dmaxs, counts = numbers
    ns = len(labels)
    max_count = (file_size // bps) + 1
    for i, n in enumerate(counts if min(counts) < 0 or max(counts) > max_count else ()):
        if n < 0 or n > max_count:
            off = 256 + 216 * ns + i * 8
            raise _header_error(ctx, f"samples per data record of signal {i} is negative ({n})"
                                if n < 0 else
                                f"signal {i} claims {n} samples per data record, more than "
                                f"the whole file ({file_size} bytes) can hold",
                                f"samples per data record of signal {i}", off)
    # the columns as they are (float and int values), a row per signal: each column
    # worked out in one pass (a loop over the signals building every field of a row
    # cost twice as much)
    is_ann = [label in _ANNOTATION_LABELS for label in labels]
    limits = list(zip(pmins, pmaxs, dmins, dmaxs))
    calibrated = [dmax != dmin and pmax != pmin for pmin, pmax, dmin, dmax in limits]
    if not all(calibrated):
        for i, (label, (pmin, pmax, dmin, dmax)) in enumerate(zip(labels, limits)):
            if not calibrated[i] and not is_ann[i]:
                ctx.warn(f"signal {i} ({label!r}) is uncalibrated (digital min {dmin}, "
                         f"max {dmax}; physical min {pmin:g}, max {pmax:g}): physical values "
                         "are the digital values")
    scales = [(pmax - pmin) / (dmax - dmin) if ok else 1.0
              for ok, (pmin, pmax, dmin, dmax) in zip(calibrated, limits)]
    offsets = [pmin - dmin * scale if ok else 0.0
               for ok, scale, (pmin, _, dmin, _) in zip(calibrated, scales, limits)]
    rates = [n / duration for n in counts] if duration > 0 else [0.0] * ns
    signals = tuple(map(_new_row, zip(range(ns), labels, transducers, units, pmins, pmaxs,
                                      dmins, dmaxs, prefilters, counts, sreserved, is_ann,
                                      rates, scales, offsets)))
    record_size = sum(counts) * bps
    if not plus and any(is_ann):
        ctx.warn(f"plain {kind} file (no {kind}+ marker in the reserved field) has a signal "
                 f"labelled {labels[is_ann.index(True)]!r}; read as {kind}+ annotations")
    return signals, record_size


def _start_datetime(date_raw: bytes, time_raw: bytes, recording: str | None,
                    ctx: DecodeContext) -> dt.datetime | None:
    """Header date and time with the 1985 year rule; EDF+ takes the 4-digit year."""
    date_s = date_raw.decode("latin-1")
    time_s = time_raw.decode("latin-1")
    d = _DATE_PARTS.match(date_s)
    t = _DATE_PARTS.match(time_s)
    if t is None or t.group(3) == "yy":
        ctx.warn(f"start time {time_s!r} is not hh.mm.ss; start time unknown")
        return None
    if d is None:
        ctx.warn(f"start date {date_s!r} is not dd.mm.yy; start time unknown")
        return None
    if ("." not in date_s or "." not in time_s or len(date_s.strip()) != 8
            or len(time_s.strip()) != 8):
        ctx.warn(f"start date/time {date_s!r} {time_s!r} do not use the dd.mm.yy hh.mm.ss "
                 "form; read anyway")
    day, month = int(d.group(1)), int(d.group(2))
    yy = d.group(3)
    year = None if yy == "yy" else (1900 + int(yy) if int(yy) >= 85 else 2000 + int(yy))
    if recording is not None:
        full = _recording_date(recording)
        if full is not None:
            if year is None or (full.day, full.month, full.year % 100) == (day, month,
                                                                          year % 100):
                year = full.year
            else:
                ctx.warn(f"start date in the recording field ({full.isoformat()}) differs "
                         f"from the header date {date_s!r}; the recording field is used")
                day, month, year = full.day, full.month, full.year
    if year is None:
        ctx.warn("start date year is 'yy' and the recording field gives no date; start "
                 "time unknown")
        return None
    try:
        return dt.datetime(year, month, day, int(t.group(1)), int(t.group(2)), int(t.group(3)))
    except ValueError:
        ctx.warn(f"start date/time {date_s!r} {time_s!r} is impossible; start time unknown")
        return None


def _edfplus_date(text: str) -> dt.date | None:
    m = _EDFPLUS_DATE.match(text)
    if m is None or m.group(2) not in _MONTHS:
        return None
    try:
        return dt.date(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
    except ValueError:
        return None


def _recording_date(recording: str) -> dt.date | None:
    parts = recording.split(" ")
    if len(parts) >= 2 and parts[0] == "Startdate":
        return _edfplus_date(parts[1])
    return None


def _subfield(value: str) -> str | None:
    """An EDF+ subfield: ``X`` is unknown, ``_`` stands for a space."""
    return None if value in ("X", "") else value.replace("_", " ")


def _metadata(patient: str, recording: str, plus: bool,
              ctx: DecodeContext) -> tuple[Metadata, dict[str, str]]:
    """EDF+ subfields onto METADATA.md fields; plain EDF keeps the free text only.

    Returns the metadata and the subfields with no METADATA.md field
    (patient name as written, technician, additional subfields).
    """
    extras: dict[str, str] = {}
    if not plus:
        return Metadata(patient_text=patient or None, recording_text=recording or None), extras
    fields: dict[str, object] = {}
    p = patient.split(" ")
    if len(p) >= 4:
        fields["patient_id"] = _subfield(p[0])
        sex = p[1].upper()
        fields["patient_gender"] = {"M": "MALE", "F": "FEMALE"}.get(sex)
        if sex not in ("M", "F", "X"):
            ctx.warn(f"patient sex subfield {p[1]!r} is not M, F or X; ignored")
        if p[2] != "X":
            birth = _edfplus_date(p[2])
            if birth is None:
                ctx.warn(f"patient birth date subfield {p[2]!r} is not dd-MMM-yyyy; ignored")
            fields["patient_birth_date"] = birth
        name = _subfield(p[3])
        if name is not None:
            extras["patient_name"] = name
            if "," in name:
                last, first = (part.strip() for part in name.split(",", 1))
                fields["patient_last_name"] = last if last not in ("", "X") else None
                fields["patient_first_name"] = first if first not in ("", "X") else None
            else:
                words = name.split()
                fields["patient_last_name"] = words[-1] if words else None
                fields["patient_first_name"] = " ".join(words[:-1]) or None
        if len(p) > 4:
            extras["patient_additional"] = " ".join(p[4:])
    elif patient:
        ctx.warn(f"EDF+ patient field {patient!r} does not have the four subfields "
                 "(code, sex, birth date, name); kept as text")
    r = recording.split(" ")
    if len(r) >= 5 and r[0] == "Startdate":
        fields["investigation_id"] = _subfield(r[2])
        technician = _subfield(r[3])
        if technician is not None:
            extras["technician"] = technician
        fields["device_id"] = _subfield(r[4])
        if len(r) > 5:
            extras["recording_additional"] = " ".join(r[5:])
    elif recording:
        ctx.warn(f"EDF+ recording field {recording!r} does not start with 'Startdate' and "
                 "four subfields; kept as text")
    metadata = Metadata(patient_text=patient or None, recording_text=recording or None,
                        **fields)  # type: ignore[arg-type]
    return metadata, extras


# --------------------------------------------------------------------------- annotations


_TAL = re.compile(rb"[^\x00]+")
"""One TAL of an annotation slot: the bytes between 0x00 separators."""
_SPLIT_AT_ONCE = 1 << 16
"""Slots up to this size are split into TALs in one call (4x faster than finding them one
by one); larger ones lazily, so millions of tiny TALs never stand in one list before
``Limits.max_annotations`` stops them."""


def _parse_tals(slot: bytes, ctx: DecodeContext, where: str, want_timekeeping: bool,
                out: list[tuple[float, float | None, str]], counted: int) -> float | None:
    """Parse one annotation slot; returns the time-keeping onset when asked for.

    Appends ``(tal_onset, duration, text)`` for every ordinary text. ``counted``
    annotations were read before this slot: all of them together beyond
    ``Limits.max_annotations`` is an error, raised before the texts are decoded.
    """
    keeping: float | None = None
    first = True
    end = len(slot)
    if end and slot[-1] != 0:
        ctx.warn(f"annotation slot of {where} does not end with a 0x00 byte; read anyway")
    tals: Iterable[bytes] = (slot.split(b"\x00") if end <= _SPLIT_AT_ONCE
                             else (match.group() for match in _TAL.finditer(slot)))
    for tal in tals:
        if not tal:
            continue
        pieces = tal.split(b"\x14")
        stamp = pieces[0]
        if len(pieces) < 2:
            ctx.warn(f"malformed TAL in {where} (no 0x14 after the onset): {tal[:40]!r}; "
                     "skipped")
            first = False
            continue
        if pieces[-1] != b"":
            ctx.warn(f"TAL in {where} does not end with 0x14: {tal[:40]!r}; texts kept")
            texts = pieces[1:]
        else:
            texts = pieces[1:-1]
        onset_raw, _, duration_raw = stamp.partition(b"\x15")
        if not _ONSET.match(onset_raw) or (duration_raw and not _DURATION.match(duration_raw)):
            ctx.warn(f"malformed TAL onset/duration in {where}: {stamp[:40]!r}; skipped")
            first = False
            continue
        onset = float(onset_raw)
        duration = float(duration_raw) if duration_raw else None
        if first and want_timekeeping and texts and texts[0] == b"":
            keeping = onset
            texts = texts[1:]
        first = False
        ctx.check_count(counted + len(out) + len(texts), "max_annotations",
                        f"EDF+ annotations up to {where}")
        for raw in texts:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                ctx.warn(f"annotation text in {where} is not UTF-8: {raw[:40]!r}; undecodable "
                         "bytes replaced")
                text = raw.decode("utf-8", errors="replace")
            out.append((onset, duration, text))
    return keeping


# --------------------------------------------------------------------------- decoding


def _as_array(data: bytes | bytearray | memoryview) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def _format_of(head: bytes) -> str:
    return "bdf" if head[:8] == _BDF_VERSION else "edf"


def _file_header(buf: np.ndarray, ctx: DecodeContext, file_size: int | None = None
                 ) -> EdfHeader:
    """The header at the start of ``buf`` (the whole file, unless ``file_size`` says how
    long the file is); ``ctx.format`` becomes ``"edf"`` or ``"bdf"``."""
    fmt = _format_of(bytes(buf[:8]))
    if len(buf) >= 8 and fmt == "edf" and not (buf[0] == 0x30):
        raise ctx.error(HeaderError, "version field is neither '0' (EDF) nor 0xFF 'BIOSEMI' "
                        "(BDF); this is not an EDF/BDF file", format="edf", field="version",
                        offset=0)
    ctx.format = fmt  # the context is this file's: its errors name the variant read
    return _parse_header(buf, len(buf) if file_size is None else file_size, ctx, fmt)


def _slot_offsets(header: EdfHeader) -> tuple[int, ...]:
    """Byte offset of every signal's slot inside a data record, by signal index."""
    return header._slot_offsets


def _decode(data: bytes | bytearray | memoryview, ctx: DecodeContext) -> Record:
    """Decode one EDF/BDF file held in memory into a :class:`Record`."""
    buf = _as_array(data)
    header = _file_header(buf, ctx)
    fmt = header.format
    bps = 3 if fmt == "bdf" else 2
    n_rec = header.n_records
    data_sigs = header._data_rows
    slot_offsets = _slot_offsets(header)
    dtype = np.int32 if fmt == "bdf" else np.int16
    sizes = [s.samples_per_record * n_rec for s in data_sigs]
    # the samples, and the float64 data record onsets
    ctx.reserve_output(sum(sizes) * np.dtype(dtype).itemsize + 8 * n_rec,
                       f"{len(data_sigs)} signals of {n_rec} data records")
    counts = np.array([s.samples_per_record for s in data_sigs], dtype=np.int64)
    outputs = block_views(sizes, dtype)
    status = _kernel.deinterleave(
        buf, header.header_bytes, n_rec, counts,
        np.array([slot_offsets[s.index] for s in data_sigs], dtype=np.int64),
        header.record_size, bps, outputs)
    ctx.check_status(status, "data records", offset=header.header_bytes)

    annotations, onsets, subsecond = _read_annotations(buf, header, ctx)
    start = header.start_time
    if start is not None and subsecond:
        start = start + dt.timedelta(seconds=subsecond)
    # new_signals builds the Signals natively (typed ``object`` by the kernel's stub)
    signals = cast("list[Signal]", _signals(data_sigs, outputs))
    extras = _extras(header, subsecond)
    return Record(name=ctx.name, format=fmt, format_detail=header.format_detail,
                  signals=signals, start_time=start, metadata=header.metadata,
                  annotations=annotations, data_record_onsets=onsets,
                  sources=(ctx.path,) if ctx.path else (), warnings=list(ctx.warnings),
                  extras=extras)


def _signals(rows: Sequence[_Row], outputs: Sequence[np.ndarray],
             firsts: Sequence[int] | None = None) -> list[object]:
    """The Signals of ``rows`` holding ``outputs`` (``firsts``: each one's first sample
    in the recording), built in one kernel call."""
    rows = rows[:len(outputs)]
    return new_signals([s.label for s in rows], [s.sample_rate for s in rows], outputs,
                       [s.scale for s in rows], [s.offset for s in rows],
                       [s.units for s in rows],
                       first_sample=None if firsts is None else firsts[:len(rows)])


def _extras(header: EdfHeader, subsecond: float) -> dict[str, object]:
    """The header's readings that have no place in the record model (``Record.extras``)."""
    # the per-signal fields as columns, worked out once per header (tuples: shared)
    extras: dict[str, object] = dict(header._extra_columns)
    extras.update({
        "reserved": header.reserved,
        "record_duration": header.record_duration,
        "n_records_declared": header.n_records_declared,
        "subsecond_offset": subsecond,
        "patient_text": header.patient_text,
        "recording_text": header.recording_text,
    })
    extras.update(header.identification)
    return extras


_EXTRAS = (("transducers", "transducer"), ("prefiltering", "prefiltering"),
           ("physical_min", "physical_min"), ("physical_max", "physical_max"),
           ("digital_min", "digital_min"), ("digital_max", "digital_max"),
           ("signal_reserved", "reserved"), ("samples_per_record", "samples_per_record"))
"""The extras that are per-signal header fields (one tuple over the data signals
each), and the signal header field each comes from."""
_EXTRA_KEYS = tuple(key for key, _ in _EXTRAS)
_EXTRA_FIELDS = operator.attrgetter(*(field for _, field in _EXTRAS))


def _extras_of_columns(columns: dict[str, Any]) -> dict[str, tuple]:
    """The extras from the header's columns as the parse read them (by field name)."""
    return {key: tuple(columns[field]) for key, field in _EXTRAS}


def _inspect(data: bytes | bytearray | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts, and the annotation signal's TALs (for the subsecond start and the
    annotation count); the samples of the data signals are never read."""
    buf = _as_array(data)
    header = _file_header(buf, ctx)
    annotations, _, subsecond = _read_annotations(buf, header, ctx)
    start = header.start_time
    if start is not None and subsecond:
        start = start + dt.timedelta(seconds=subsecond)
    dtype = "int32" if header.format == "bdf" else "int16"
    signals = tuple(SignalInfo(s.label, s.sample_rate, s.samples_per_record * header.n_records,
                               s.units, dtype) for s in header._data_rows)
    return RecordInfo(ctx.name, header.format, header.format_detail, signals, start,
                      header.metadata, len(annotations), (ctx.path,) if ctx.path else (),
                      tuple(ctx.warnings))


_RawAnnotation = tuple[int, int, float, "float | None", str]
"""(data record, annotation signal order, onset, duration, text) as read from a slot."""


def _read_annotations(buf: np.ndarray, header: EdfHeader, ctx: DecodeContext
                      ) -> tuple[list[Annotation], np.ndarray, float]:
    """TALs of every annotation signal, the record onsets and the subsecond start."""
    n_rec = header.n_records
    if not header._annotation_rows or n_rec == 0:
        return [], _nominal_onsets(header, ctx), 0.0
    raw: list[_RawAnnotation] = []
    keeping = np.full(n_rec, np.nan)
    _scan_tals(buf, header.header_bytes, 0, n_rec, header, ctx, raw, keeping)
    onsets, subsecond = _onsets(keeping, header, ctx)
    return _annotations(raw, subsecond), onsets, subsecond


def _nominal_onsets(header: EdfHeader, ctx: DecodeContext) -> np.ndarray:
    """Onsets of a file whose records carry no time (no annotation signal)."""
    if header.is_plus and not header._annotation_rows:
        ctx.warn(f"{header.format_detail} file has no annotation signal; record onsets "
                 "assume a continuous recording")
    return np.arange(header.n_records, dtype=np.float64) * header.record_duration


def _scan_tals(buf: np.ndarray, base: int, first: int, n: int, header: EdfHeader,
               ctx: DecodeContext, raw: list[_RawAnnotation], keeping: np.ndarray,
               layout: Mapping[int, tuple[np.ndarray, int, int, int]] | None = None) -> None:
    """The annotation slots of ``n`` data records, ``first`` onwards, that start at byte
    ``base`` of ``buf``: texts appended to ``raw`` (signal by signal), the time-keeping
    onsets (NaN where a record has none) into ``keeping`` (``n`` items).

    ``layout``: where each annotation signal's slots are instead, by signal index:
    ``(buffer, base, stride, offset)``, record ``k``'s slot at ``base + k * stride +
    offset`` (a read of only the slots)."""
    bps = 3 if header.format == "bdf" else 2
    offsets = _slot_offsets(header)
    flags = np.empty(n, dtype=np.uint8)
    for order, s in enumerate(header._annotation_rows):
        size = s.samples_per_record * bps
        is_first = order == 0
        data, at, stride, offset = (layout[s.index] if layout is not None
                                    else (buf, base, header.record_size, offsets[s.index]))
        if size == 0:  # an empty slot holds nothing (what the kernel finds in it)
            if is_first:
                keeping[:] = np.nan
            continue
        k_onsets = np.empty(n, dtype=np.float64)
        status = _kernel.scan_annotation_slots(
            data, at, n, stride, offset, size, is_first, k_onsets, flags)
        ctx.check_status(status, f"annotation signal {s.index}",
                         offset=header.header_bytes + first * header.record_size)
        if is_first:
            keeping[:] = k_onsets
        for k in np.flatnonzero(flags):
            start = at + int(k) * stride + offset
            slot = bytes(data[start:start + size])
            found: list[tuple[float, float | None, str]] = []
            where = f"data record {first + int(k)}, signal {s.index}"
            tk = _parse_tals(slot, ctx, where, is_first, found, len(raw))
            if is_first:
                keeping[k] = np.nan if tk is None else tk
            raw.extend((first + int(k), order, o, d, t) for o, d, t in found)


def _onsets(keeping: np.ndarray, header: EdfHeader, ctx: DecodeContext
            ) -> tuple[np.ndarray, float]:
    """Every record's onset from the time-keeping onsets of all of them (NaN: none), and
    the subsecond start; missing onsets continue the previous record."""
    n_rec = len(keeping)
    duration = header.record_duration
    nominal = np.arange(n_rec, dtype=np.float64) * duration
    missing = np.isnan(keeping)
    if missing.all():
        ctx.warn("no data record starts with a time-keeping TAL; record onsets assume a "
                 "continuous recording")
        return nominal, 0.0
    if missing.any():
        ctx.warn(f"{int(missing.sum())} data records have no time-keeping TAL; their "
                 "onsets assume continuity with the previous record")
        for k in np.flatnonzero(missing):
            keeping[k] = (keeping[k - 1] + duration) if k > 0 else np.nan
        if np.isnan(keeping[0]):
            first_known = int(np.flatnonzero(~np.isnan(keeping))[0])
            keeping[:first_known] = (keeping[first_known]
                                     - (first_known - np.arange(first_known)) * duration)
    subsecond = _subsecond(float(keeping[0]), ctx)
    onsets = keeping - subsecond
    if header.is_discontinuous:
        if n_rec > 1 and np.any(np.diff(onsets) < duration - 1e-9):
            ctx.warn("data records of this EDF+D file overlap or go back in time")
    elif n_rec > 1 and not (np.abs(onsets - nominal) <= 1e-6).all():
        ctx.warn(f"{header.format_detail} file (continuous) has data record onsets that "
                 "are not consecutive; record onsets are taken from the TALs")
    return onsets, subsecond


def _subsecond(first_onset: float, ctx: DecodeContext) -> float:
    """The subsecond start: the first record's time-keeping onset, when in [0, 1)."""
    if not 0 <= first_onset < 1:
        ctx.warn(f"first data record onset is {first_onset:g} s, outside [0, 1); it is not "
                 "used as a subsecond start offset")
        return 0.0
    return first_onset


def _annotations(raw: list[_RawAnnotation], subsecond: float) -> list[Annotation]:
    raw.sort(key=lambda item: (item[0], item[1]))  # file order: record, then signal
    return new_annotations([o - subsecond if subsecond else o for _, _, o, _, _ in raw],
                           [t for _, _, _, _, t in raw], [d for _, _, _, d, _ in raw])


# --------------------------------------------------------------------------- parts

WINDOW_CHUNK_BYTES = 16 * 1024
"""Bytes of a file on disk read at a time for a part of a record (a long part reads up
to 1/16 of its bytes at a time, at most ``_MAX_CHUNK_BYTES``), so the reading buffer
stays small beside the part's samples. Data records that fit are read whole, a chunk of
them at a time; a larger data record is read one signal's part at a time."""
_MAX_CHUNK_BYTES = 1 << 20
_SCATTER_PIECES = 4096
"""Runs of samples up to which an EDF part of a file on disk is read by scattered reads
into the outputs (a part of more runs is read a chunk of records at a time: fewer,
larger copies)."""
_LITTLE_ENDIAN = sys.byteorder == "little"


class _FullScan(Exception):
    """The onsets of an EDF+D file cannot be found from a few records' time-keeping
    TALs (a record without one, onsets that do not increase): every record's is read."""


def _source_header(source: ByteSource, ctx: DecodeContext) -> EdfHeader:
    """The header of a file read by ranges: 256 bytes, then the signal headers."""
    head = bytes(source.read(0, 256))
    if len(head) == 256 and _INT.match(head[252:256]) and int(head[252:256]) > 0:
        head += bytes(source.read(256, min(256 * int(head[252:256]), source.size - 256)))
    return _file_header(np.frombuffer(head, dtype=np.uint8), ctx, source.size)


class _Records:
    """Data records of a file read through a :class:`ByteSource`: a part of some
    signals, the annotation slots, one record's time-keeping onset."""

    def __init__(self, source: ByteSource, header: EdfHeader, ctx: DecodeContext) -> None:
        self.source = source
        self.header = header
        self.ctx = ctx
        self.bps = 3 if header.format == "bdf" else 2
        self.offsets = _slot_offsets(header)
        self.known: dict[int, float] = {}
        """Time-keeping onsets read so far, by record (before the subsecond start)."""

    def _at(self, k: int) -> int:
        return self.header.header_bytes + k * self.header.record_size

    def _chunk(self, r0: int, r1: int) -> int:
        covered = (r1 - r0) * self.header.record_size
        return min(max(covered // 16, WINDOW_CHUNK_BYTES), _MAX_CHUNK_BYTES)

    def read(self, r0: int, r1: int, picked: list[_Row], firsts: list[int],
             outputs: list[np.ndarray], raw: list[_RawAnnotation] | None) -> np.ndarray:
        """Fill ``outputs`` (samples ``firsts[j]`` onwards of ``picked[j]``) from records
        ``[r0, r1)``; their annotations into ``raw`` unless None. Returns the records'
        time-keeping onsets (NaN: none; all NaN without annotations)."""
        header = self.header
        n = r1 - r0
        keeping = np.empty(n)
        keeping.fill(np.nan)  # np.full, without its Python-level call
        if n <= 0:
            return keeping
        tals = raw is not None and bool(header._annotation_rows)
        whole = self.source.whole
        if (whole is None and self.bps == 2 and _LITTLE_ENDIAN and _kernel.SCATTERED_READS
                and self.source.fd is not None
                and n * (len(picked) + len(header._annotation_rows)) <= _SCATTER_PIECES):
            self._scatter(r0, r1, picked, firsts, outputs, raw if tals else None, keeping)
            return keeping
        kernel_args = (np.array([s.samples_per_record for s in picked], dtype=np.int64),
                       np.array([self.offsets[s.index] for s in picked], dtype=np.int64),
                       header.record_size, self.bps, np.array(firsts, dtype=np.int64),
                       outputs)
        if whole is not None:  # in memory: the records themselves, no copy
            data = np.frombuffer(whole, dtype=np.uint8)[self._at(r0):self._at(r1)]
            self._copy(data, r0, n, kernel_args)
            if tals:
                assert raw is not None
                _scan_tals(data, 0, r0, n, header, self.ctx, raw, keeping)
                self._remember(r0, keeping)
            return keeping
        chunk = self._chunk(r0, r1)
        if header.record_size <= chunk:
            per = max(chunk // header.record_size, 1)
            buffer = np.empty(per * header.record_size, dtype=np.uint8)
            for c0 in range(r0, r1, per):
                m = min(per, r1 - c0)
                got = self.source.read_into(self._at(c0), buffer[:m * header.record_size])
                self._copy(buffer[:got], c0, m, kernel_args)
                if tals:
                    assert raw is not None
                    _scan_tals(buffer[:got], 0, c0, m, header, self.ctx, raw,
                               keeping[c0 - r0:c0 - r0 + m])
        else:
            self._read_by_signal(r0, r1, picked, firsts, outputs, chunk)
            if tals:
                assert raw is not None
                self._annotation_spans(r0, r1, raw, keeping)
        if tals:
            self._remember(r0, keeping)
        return keeping

    def _scatter(self, r0: int, r1: int, picked: list[_Row], firsts: list[int],
                 outputs: list[np.ndarray], raw: list[_RawAnnotation] | None,
                 keeping: np.ndarray) -> None:
        """EDF samples straight from the file into the outputs: the stored little-endian
        int16 are the output's bytes, so each record's run of a signal is one buffer of
        a scattered read, made by the kernel with the GIL released (bytes between runs,
        up to ``WINDOW_CHUNK_BYTES``, are read into a scratch buffer rather than
        starting another read)."""
        header = self.header
        n = r1 - r0
        # a channel asked twice is read once, into its first output (the last written
        # of the reversed pairs)
        targets: dict[int, tuple[np.ndarray, int]] = dict(zip(
            [sig.index for sig in reversed(picked)], zip(reversed(outputs), reversed(firsts))))
        slots: dict[int, np.ndarray] = {}
        if raw is not None:  # each annotation signal's slots, record after record
            for s in header._annotation_rows:
                slots[s.index] = np.empty(n * s.samples_per_record, dtype=np.int16)
                targets[s.index] = (slots[s.index], r0 * s.samples_per_record)
        order = tuple(sorted(targets))  # signal index order is slot order
        counts, offsets = header._scatter_layout(order)
        assert self.source.fd is not None
        status, err = _kernel.scatter_read(
            self.source.fd, header.header_bytes, header.record_size, r0, r1, counts, offsets,
            np.array([targets[i][1] for i in order], dtype=np.int64),
            [targets[i][0] for i in order], WINDOW_CHUNK_BYTES)
        if err:
            raise OSError(err, os.strerror(err))
        self.ctx.check_status(status, f"data records {r0} to {r1 - 1}", offset=self._at(r0))
        for sig, out in zip(picked, outputs):
            first_out = targets[sig.index][0]
            if first_out is not out:
                np.copyto(out, first_out)
        if slots:
            assert raw is not None
            layout = {i: (a.view(np.uint8), 0, 2 * header._rows[i].samples_per_record, 0)
                      for i, a in slots.items()}
            _scan_tals(slots[header._annotation_rows[0].index].view(np.uint8), 0, r0, n,
                       header, self.ctx, raw, keeping, layout)

    def _copy(self, data: np.ndarray, first: int, n: int, args: tuple) -> None:
        counts, offsets, record_size, bps, firsts, outputs = args
        status = _kernel.deinterleave_part(data, first, n, counts, offsets, record_size, bps,
                                           firsts, outputs)
        self.ctx.check_status(status, f"data records {first} to {first + n - 1}",
                              offset=self._at(first))

    def _read_by_signal(self, r0: int, r1: int, picked: list[_Row],
                        firsts: list[int], outputs: list[np.ndarray], chunk: int) -> None:
        """Records larger than a chunk: each signal's samples of the part, a chunk at a
        time (the bytes between them are never read)."""
        bps = self.bps
        step = max(chunk // bps, 1)
        buffer = np.empty(step * bps, dtype=np.uint8)
        for g in range(r0, r1):
            for sig, first, out in zip(picked, firsts, outputs):
                n = sig.samples_per_record
                lo, hi = max(first - g * n, 0), min(first + len(out) - g * n, n)
                for p0 in range(lo, hi, step):
                    p1 = min(p0 + step, hi)
                    got = self.source.read_into(
                        self._at(g) + self.offsets[sig.index] + p0 * bps,
                        buffer[:(p1 - p0) * bps])
                    status = _kernel.deinterleave_part(
                        buffer[:got], 0, 1, np.array([p1 - p0], dtype=np.int64),
                        np.zeros(1, dtype=np.int64), (p1 - p0) * bps, bps,
                        np.array([first - g * n - p0], dtype=np.int64), [out])
                    self.ctx.check_status(status, f"signal {sig.index} of data record {g}",
                                          offset=self._at(g) + self.offsets[sig.index])

    def _annotation_spans(self, r0: int, r1: int, raw: list[_RawAnnotation],
                          keeping: np.ndarray) -> None:
        """The annotation slots of records larger than a chunk: the span from the first
        annotation slot to the end of the last, record by record."""
        bps = self.bps
        ann = self.header._annotation_rows
        lo = min(self.offsets[s.index] for s in ann)
        hi = max(self.offsets[s.index] + s.samples_per_record * bps for s in ann)
        buffer = np.empty(hi - lo, dtype=np.uint8)
        for g in range(r0, r1 if hi > lo else r0):
            got = self.source.read_into(self._at(g) + lo, buffer)
            layout = {s.index: (buffer[:got], 0, hi - lo, self.offsets[s.index] - lo)
                      for s in ann}
            _scan_tals(buffer, 0, g, 1, self.header, self.ctx, raw,
                       keeping[g - r0:g - r0 + 1], layout)

    def _remember(self, r0: int, keeping: np.ndarray) -> None:
        self.known.update((r0 + k, float(v)) for k, v in enumerate(keeping))

    def keeping(self, k: int) -> float:
        """Record ``k``'s time-keeping onset, reading only its first annotation slot.

        :raises _FullScan: the record has none.
        """
        onset = self.known.get(k)
        if onset is None:
            sig = self.header._annotation_rows[0]
            size = sig.samples_per_record * self.bps
            at = self._at(k) + self.offsets[sig.index]
            slot = np.frombuffer(bytes(self.source.read(at, size)), dtype=np.uint8)
            found = np.full(1, np.nan)
            flags = np.zeros(1, dtype=np.uint8)
            if size:
                status = _kernel.scan_annotation_slots(slot, 0, 1, size, 0, size, True, found,
                                                       flags)
                self.ctx.check_status(status, f"annotation signal {sig.index}", offset=at)
            onset = float(found[0])
            if flags[0]:  # more than the time-keeping TAL: the slot's own parse decides
                # a scratch context: only the onset is wanted here (a record of the part
                # has its slots, annotations and warnings, read with the part)
                tk = _parse_tals(bytes(slot), self.ctx.for_file(),
                                 f"data record {k}, signal {sig.index}", True, [], 0)
                onset = math.nan if tk is None else tk
            self.known[k] = onset
        if math.isnan(onset):
            raise _FullScan(f"data record {k} has no time-keeping TAL")
        return onset

    def scan_all(self) -> tuple[list[_RawAnnotation], np.ndarray]:
        """Every record's annotations and time-keeping onset (the annotation slots only,
        a chunk of records at a time)."""
        raw: list[_RawAnnotation] = []
        n_rec = self.header.n_records
        keeping = self.read(0, n_rec, [], [], [], raw) if n_rec else np.full(0, np.nan)
        return raw, keeping


def _decode_part(source: ByteSource, ctx: DecodeContext) -> Record:
    """The channels and window of ``ctx.request``, reading only the header, the data
    records the window overlaps and a few records' time-keeping TALs (the first
    record's for the subsecond start; an EDF+D window's place by binary search)."""
    request = ctx.request
    assert request is not None
    header = _source_header(source, ctx)
    data_sigs = header._data_rows
    labels, rates, lengths, reference, duration = header._window_facts
    picked = request.channel_indices(labels, ctx.name)
    chosen = [data_sigs[i] for i in picked]
    records = _Records(source, header, ctx)
    n_rec = header.n_records
    part = _Part(header, ctx, records, chosen)
    if not request.windowed:  # some channels, whole: every record, as a whole read
        part.read(0, n_rec, [0] * len(chosen))
        raw, keeping = part.raw, part.keeping
        if header._annotation_rows and n_rec:
            onsets, subsecond = _onsets(keeping, header, ctx)
        else:
            onsets, subsecond = _nominal_onsets(header, ctx), 0.0
        return part.record(_annotations(raw, subsecond), subsecond, onsets, None)
    if header.is_plus and not header._annotation_rows:
        ctx.warn(f"{header.format_detail} file has no annotation signal; record onsets "
                 "assume a continuous recording")
    if header.is_discontinuous and data_sigs and n_rec and reference > 0:
        return _discontinuous_part(part, request, reference)
    ranges = _sample_ranges(request, rates, lengths, ctx.name)
    # the records that hold the window's samples of any signal (not only the chosen
    # ones: which annotations a window has does not depend on the channels)
    spans = {(a // n, -(-b // n)) for n, (a, b) in zip(header._samples_per_record, ranges)
             if n and b > a}  # the signals mostly share one: a set of one
    r0 = min(spans)[0] if spans else 0
    r1 = max(b for _, b in spans) if spans else 0
    part.read(r0, r1, [ranges[i][0] for i in picked], [ranges[i][1] for i in picked])
    subsecond = 0.0
    if header._annotation_rows and n_rec:
        try:
            subsecond = _subsecond(records.keeping(0), ctx)
        except _FullScan:  # as a whole read: the first onset from the others
            _, subsecond = _onsets(records.scan_all()[1], header, ctx)
    t0, t1 = request.seconds(reference)
    annotations = annotations_within(_annotations(part.raw, subsecond), t0, t1)
    return part.record(annotations, subsecond, None, (t0, duration if t1 is None else t1))


def _sample_ranges(request: ReadRequest, rates: Sequence[float], lengths: Sequence[int], name: str
                   ) -> list[tuple[int, int]]:
    """:meth:`ReadRequest.sample_ranges`, worked out once per distinct rate and length
    (the signals of an EDF file mostly share both; the window, its checks and its
    errors depend only on the set of them)."""
    kinds = list(dict.fromkeys(zip(rates, lengths)))
    if len(kinds) == len(rates):
        return request.sample_ranges(rates, lengths, name)
    found = dict(zip(kinds, request.sample_ranges([r for r, _ in kinds],
                                                  [n for _, n in kinds], name)))
    return [found[kind] for kind in zip(rates, lengths)]


def _discontinuous_part(part: _Part, request: ReadRequest, reference: float) -> Record:
    """A window of an EDF+D record: the whole data records it overlaps, found by binary
    search over the records' onsets (EDF+ requires them to increase; a file whose
    onsets do not, or that lacks some, has every record's onset read instead)."""
    header, ctx, records = part.header, part.ctx, part.records
    first = header._data_rows[0]  # the record duration as the whole record's cut takes it
    duration = (first.samples_per_record / first.sample_rate if first.sample_rate > 0
                else header.record_duration)
    per_record = round(duration * reference)
    n_rec = header.n_records
    if not header._annotation_rows:  # nominal onsets, as a whole read gives them
        nominal = header.record_duration
        r0, r1 = _search_records(request, lambda k: k * nominal, n_rec, duration, per_record,
                                 reference, ctx.name)
        part.read(r0, r1, [r0 * s.samples_per_record for s in part.chosen])
        subsecond, onsets = 0.0, np.arange(r0, r1, dtype=np.float64) * nominal
    else:
        try:
            head = records.keeping(0)
            shift = head if 0 <= head < 1 else 0.0  # the subsecond start (warned below)
            r0, r1 = _search_records(request, lambda k: records.keeping(k) - shift, n_rec,
                                     duration, per_record, reference, ctx.name)
            part.read(r0, r1, [r0 * s.samples_per_record for s in part.chosen])
            _check_increasing(records.known, ctx)
            subsecond = _subsecond(head, ctx)
            onsets = part.keeping - subsecond
        except _FullScan:
            raw, keeping = records.scan_all()
            all_onsets, subsecond = _onsets(keeping, header, ctx)
            r0, r1 = request.record_range(all_onsets, duration, per_record, reference,
                                          ctx.name)
            part.read(r0, r1, [r0 * s.samples_per_record for s in part.chosen], tals=False)
            part.raw = [item for item in raw if r0 <= item[0] < r1]
            onsets = np.array(all_onsets[r0:r1], dtype=np.float64)
    t0 = float(onsets[0]) if r1 > r0 else 0.0
    t1 = float(onsets[-1]) + duration if r1 > r0 else 0.0
    annotations = annotations_within(_annotations(part.raw, subsecond), t0, t1)
    return part.record(annotations, subsecond, onsets, (t0, t1))


def _search_records(request: ReadRequest, onset: Callable[[int], float], n_rec: int,
                    duration: float, per_record: int, reference: float, name: str
                    ) -> tuple[int, int]:
    """The records ``[r0, r1)`` of an EDF+D file that a window overlaps, by the rule of
    :meth:`ReadRequest.record_range`, reading the onsets of O(log n) records."""
    if request.unit == "samples":
        total = n_rec * per_record
        k0 = int(request.start or 0)
        request._check_end(k0 / reference, None if request.stop is None
                           else request.stop / reference, total / reference, total,
                           reference, name, [reference])
        r1 = n_rec if request.stop is None else -(-int(request.stop) // per_record)
        return k0 // per_record, min(r1, n_rec)
    t0, t1 = request.seconds(reference)
    end = onset(n_rec - 1) + duration
    request._check_end(t0, t1, end, round(end * reference), reference, name, [reference])
    slack = _TOLERANCE / reference
    r0 = bisect.bisect_left(range(n_rec), True, key=lambda k: onset(k) + duration > t0 + slack)
    if t1 is None:
        return r0, n_rec
    r1 = bisect.bisect_left(range(r0, n_rec), True, key=lambda k: onset(k) >= t1 - slack) + r0
    return r0, max(r1, r0)


def _check_increasing(known: Mapping[int, float], ctx: DecodeContext) -> None:
    """The onsets read so far (by record) increase with the records, or the file's
    onsets must all be read: :class:`_FullScan` (a deviation when they go back)."""
    previous: tuple[int, float] | None = None
    for k, onset in sorted(known.items()):
        if math.isnan(onset):
            raise _FullScan(f"data record {k} has no time-keeping TAL")
        if previous is not None and onset < previous[1]:
            ctx.deviation(f"data record {k} of this EDF+D file starts at {onset:g} s, before "
                          f"data record {previous[0]} ({previous[1]:g} s): EDF+ requires "
                          "increasing onsets; every record's onset was read to place the "
                          "window", cls=CorruptDataError)
            raise _FullScan("onsets go back")
        previous = (k, onset)


class _Part:
    """The chosen signals' samples of some data records, and what those records say."""

    def __init__(self, header: EdfHeader, ctx: DecodeContext, records: _Records,
                 chosen: list[_Row]) -> None:
        self.header = header
        self.ctx = ctx
        self.records = records
        self.chosen = chosen
        self.firsts: list[int] = []
        self.outputs: list[np.ndarray] = []
        self.raw: list[_RawAnnotation] = []
        self.keeping = np.empty(0)

    def read(self, r0: int, r1: int, firsts: list[int], stops: list[int] | None = None, *,
             tals: bool = True) -> None:
        """Samples ``[firsts[j], stops[j])`` of each chosen signal (to the end of record
        ``r1 - 1`` by default) from records ``[r0, r1)``, and their annotations."""
        if stops is None:
            stops = [r1 * s.samples_per_record for s in self.chosen]
        lengths = [b - a if b > a else 0 for a, b in zip(firsts, stops)]
        bdf = self.header.format == "bdf"
        dtype = np.int32 if bdf else np.int16
        self.ctx.reserve_output(sum(lengths) * (4 if bdf else 2) + 8 * max(r1 - r0, 0),
                                f"{len(self.chosen)} signals of data records {r0} to {r1 - 1}")
        self.firsts = firsts
        self.outputs = block_views(lengths, dtype)
        self.raw = []
        self.keeping = self.records.read(r0, r1, self.chosen, firsts, self.outputs,
                                         self.raw if tals else None)

    def record(self, annotations: list[Annotation], subsecond: float,
               onsets: np.ndarray | None, window: tuple[float, float] | None) -> Record:
        header, ctx = self.header, self.ctx
        start = header.start_time
        if start is not None and subsecond:
            start = start + dt.timedelta(seconds=subsecond)
        signals = cast("list[Signal]", _signals(self.chosen, self.outputs, self.firsts))
        extras = _extras(header, subsecond)
        if window is not None:
            extras["window"] = window
        return Record(name=ctx.name, format=header.format, format_detail=header.format_detail,
                      signals=signals, start_time=start, metadata=header.metadata,
                      annotations=annotations, data_record_onsets=onsets,
                      sources=(ctx.path,) if ctx.path else (), warnings=list(ctx.warnings),
                      extras=extras)


# --------------------------------------------------------------------------- header only

HeaderSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


def read_edf_header(source: HeaderSource, *, strict: bool = False) -> EdfHeader:
    """Parse only the header of an EDF/BDF file (path, bytes or binary file object).

    Reads ``256 * (ns + 1)`` bytes and the file size, never the data records.
    Raises the same typed errors as a full read for header problems.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        return _header_from(lambda n: bytes(view[:n]), len(view), None, strict)
    if isinstance(source, (str, os.PathLike)):
        # a bare descriptor: no buffered stream to build for two small reads
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            return _header_from(_reader(functools.partial(os.read, fd)), os.fstat(fd).st_size,
                                os.fspath(source), strict)
        finally:
            os.close(fd)
    if hasattr(source, "read"):
        fh = source
        size: int | None = None
        try:
            info = os.fstat(fh.fileno())  # type: ignore[union-attr]
            if stat.S_ISREG(info.st_mode):
                size = info.st_size - fh.tell()
        except (AttributeError, OSError, ValueError):
            size = None
        if size is None:
            try:
                here = fh.tell()
                size = fh.seek(0, os.SEEK_END) - here
                fh.seek(here)
            except (AttributeError, OSError, ValueError):
                data = fh.read()
                return _header_from(lambda n: data[:n], len(data),
                                    str(getattr(fh, "name", "<stream>")), strict)
        return _header_from(_reader(fh.read), size, str(getattr(fh, "name", "<stream>")),
                            strict)
    raise TypeError(f"source must be a path, bytes or a binary file object, not "
                    f"{type(source).__name__}")


def _reader(read_some: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """Sequential reads from the stream's position, never past what is asked for."""
    cache = bytearray()

    def read(n: int) -> bytes:
        while len(cache) < n:
            chunk = read_some(n - len(cache))
            if not chunk:
                break
            cache.extend(chunk)
        return bytes(cache[:n])
    return read




def _header_from(read: Callable[[int], bytes], size: int, path: str | None,
                 strict: bool) -> EdfHeader:
    ctx = DecodeContext("edf", path=path, strict=strict, limits=DEFAULT_LIMITS)
    head = read(256)
    if len(head) < 256:
        raise _truncated(ctx, f"the file has {len(head)} bytes, fewer than the 256-byte fixed "
                         "EDF header", None, len(head))
    if not _fixed_header_ok(head):
        raise _header_error(ctx, "the first 256 bytes are not an EDF/BDF header (version "
                            "field '0' or 0xFF 'BIOSEMI' and numeric size fields expected)",
                            "version", 0)
    fmt = ctx.format = _format_of(head)
    ns = int(head[252:256])
    head = read(256 * (ns + 1))
    return _parse_header(head, size, ctx, fmt)


# EDF decoding copies the data records in file order, and letting those reads
# fault the mapping in (the kernel maps neighbouring pages of each fault too)
# measured 5-10 % faster than mapping every page first: 55-57 ms against
# 60-64 ms for the digital read of a 260 MB file. Mapping a few MiB ahead of the
# decode instead (MADV_POPULATE_READ every 2 or 8 MiB) cost 3-7 % more CPU time:
# the kernel does the same work per page either way. Nor do two reads in two
# threads wait for each other there: on Linux 6.18 a page fault locks only its
# own mapping, not the process's memory map. What changes a read's time is how
# the page cache holds the file: a file written in large writes is mapped in
# 2 MiB pages where the cache holds it so, a copy made by sendfile in 4 KiB
# pages: a 260 MB file's digital read took 30 ms of CPU time, its copy's 43 ms.
class EdfFormat(SingleFileFormat):
    """EDF, EDF+ and BDF (one file, one record)."""

    name = "edf"
    windows = True
    marker = (0, b"0\xff")  # the version field: "0" (EDF) or 0xff "BIOSEMI" (BDF)
    prefault = False  # the de-interleave's in-order reads fault pages in faster

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return _decode(data, ctx)

    def decode_part(self, source: ByteSource, ctx: DecodeContext) -> Record:
        """The channels and window asked for, reading only the data records the window
        overlaps (every record for channels alone), the header and a few time-keeping
        TALs; the annotations are those of the records read."""
        if ctx.request is None:
            whole = source.whole
            return _decode(source.read(0, source.size) if whole is None else whole, ctx)
        return _decode_part(source, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        """Header facts without the samples: ``samples`` of a signal is data records x
        samples per record, ``dtype`` int16 (EDF) or int32 (BDF). Only the annotation
        signal's bytes are read (for the annotation count and the subsecond start), so
        the result equals ``RecordInfo.of`` of the decoded record."""
        return _inspect(data, ctx)


FORMAT = EdfFormat()
