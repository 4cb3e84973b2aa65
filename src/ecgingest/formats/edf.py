"""EDF, EDF+ (C and D), BDF and BDF+: header semantics in Python, samples via
``ecgingest._ext.edf``.

The header's fields are split by the compiled module; this module gives them
meaning (numbers, dates, EDF+ subfields), decides what is tolerated (each
tolerance becomes a line of ``Record.warnings`` through the
:class:`~ecgingest.formats._base.DecodeContext`) and what is an error, then
asks the kernel to de-interleave every data record in one pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Union, cast

import numpy as np

from .._ext import edf as _kernel
from .._memory import block_views
from ..errors import EcgIngestError, HeaderError, TruncatedError
from ..limits import Limits
from ..record import Annotation, Metadata, Record, RecordInfo, Signal, SignalInfo, new_signal
from ._base import DecodeContext, Probe, SingleFileFormat

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
_SIGNAL_FIELD_STARTS = (0, 16, 96, 104, 112, 120, 128, 136, 216, 224)
_SIGNAL_FIELD_WIDTHS = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)


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

    @property
    def data_signals(self) -> tuple[EdfSignalHeader, ...]:
        """Ordinary signals (annotation signals excluded)."""
        return tuple(s for s in self.signals if not s.is_annotation)

    @property
    def annotation_signals(self) -> tuple[EdfSignalHeader, ...]:
        return tuple(s for s in self.signals if s.is_annotation)

    @property
    def is_plus(self) -> bool:
        """EDF+ or BDF+ (reserved field starts with ``EDF+`` / ``BDF+``)."""
        return "+" in self.format_detail

    @property
    def is_discontinuous(self) -> bool:
        return self.format_detail.endswith("+D")


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


def _text(raw: bytes, ctx: DecodeContext, field: str, offset: int, seen: list[bool]) -> str:
    """Header text as ASCII; other bytes read as Latin-1 with one warning per file."""
    try:
        return raw.decode("ascii").strip(" \x00")
    except UnicodeDecodeError:
        if not seen[0]:
            seen[0] = True
            bad = next(i for i, b in enumerate(raw) if b > 127)
            ctx.warn(f"non-ASCII bytes in the header (first in field {field!r} at byte "
                     f"{offset + bad}); read as Latin-1")
        return raw.decode("latin-1").strip(" \x00")


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
    fixed, columns = _kernel.split_header(view, ns)
    seen_non_ascii = [False]
    first_bad = _kernel.is_ascii_printable(view, 8 if fmt == "bdf" else 0, header_bytes)
    version = fixed[0]
    patient_text = _text(fixed[1], ctx, "local patient identification", 8, seen_non_ascii)
    recording_text = _text(fixed[2], ctx, "local recording identification", 88,
                           seen_non_ascii)
    declared_hb = None
    hb_raw = fixed[5]
    if _INT.match(hb_raw):
        declared_hb = int(hb_raw)
        if declared_hb != header_bytes:
            ctx.warn(f"header size field says {declared_hb} bytes but {ns} signals need "
                     f"{header_bytes}; the signal count is trusted")
    else:
        ctx.warn(f"header size field {hb_raw!r} is not a number; the signal count is trusted")
    reserved = _text(fixed[6], ctx, "reserved", 192, seen_non_ascii)
    n_declared = _int_field(fixed[7], ctx, "number of data records", 236)
    duration = _float_field(fixed[8], ctx, "data record duration", 244)
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

    signals, record_size = _signal_headers(columns, ctx, fmt, plus, duration, file_size,
                                           first_bad, seen_non_ascii)

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

    start = _start_datetime(fixed[3], fixed[4], recording_text if plus else None, ctx)
    metadata, identification = _metadata(patient_text, recording_text, plus, ctx)
    return EdfHeader(
        format=fmt, format_detail=detail, version=version, patient_text=patient_text,
        recording_text=recording_text, start_time=start, header_bytes=header_bytes,
        header_bytes_declared=declared_hb, reserved=reserved, n_records=n_records,
        n_records_declared=n_declared, record_duration=duration, record_size=record_size,
        signals=signals, metadata=metadata, identification=identification,
        warnings=tuple(ctx.warnings))


_SIGNAL_HEADER_FIELDS = tuple(f.name for f in dataclasses.fields(EdfSignalHeader))


def _signal_header(*values: object) -> EdfSignalHeader:
    """An :class:`EdfSignalHeader` of field values in declaration order, already typed.

    Fills the instance directly: the frozen dataclass ``__init__`` (one
    ``object.__setattr__`` per field) was a quarter of a header's parse time.
    """
    header = object.__new__(EdfSignalHeader)
    header.__dict__.update(zip(_SIGNAL_HEADER_FIELDS, values))
    return header


def _warn_control_bytes(ctx: DecodeContext, first_bad: int, seen_non_ascii: list[bool],
                        plus: bool) -> None:
    if first_bad >= 0 and not seen_non_ascii[0] and plus:
        ctx.warn(f"control bytes in the header (first at byte {first_bad}); EDF+ allows "
                 "only printable ASCII")


def _signal_headers(columns: tuple[list[bytes], ...], ctx: DecodeContext, fmt: str, plus: bool,
                    duration: float, file_size: int, first_bad: int,
                    seen_non_ascii: list[bool]) -> tuple[tuple[EdfSignalHeader, ...], int]:
    """The per-signal fields, with every tolerance and error (the one parser of them).

    Returns the signal headers and the data record size in bytes.
    """
    kind = "BDF" if fmt == "bdf" else "EDF"
    bps = 3 if fmt == "bdf" else 2
    ns = len(columns[0])
    signals: list[EdfSignalHeader] = []
    texts: list[list[str]] = []
    for f in (0, 1, 2, 7, 9):
        if b"".join(columns[f]).isascii():  # the common case: no per-field checks
            texts.append([raw.decode("ascii").strip(" \x00") for raw in columns[f]])
            continue
        texts.append([_text(raw, ctx, _SIGNAL_FIELDS[f],
                            256 + _SIGNAL_FIELD_STARTS[f] * ns + i * _SIGNAL_FIELD_WIDTHS[f],
                            seen_non_ascii) for i, raw in enumerate(columns[f])])
    labels, transducers, units, prefilters, sreserved = texts
    _warn_control_bytes(ctx, first_bad, seen_non_ascii, plus)

    def column(f: int, integer: bool) -> list:
        values, bad = _kernel.parse_column(columns[f], integer)
        if bad >= 0:
            off = 256 + _SIGNAL_FIELD_STARTS[f] * ns + bad * _SIGNAL_FIELD_WIDTHS[f]
            name = f"{_SIGNAL_FIELDS[f]} of signal {bad}"
            kind_ = "integer" if integer else "decimal number"
            raise _header_error(ctx, f"{name} must be an ASCII {kind_}, found "
                                f"{columns[f][bad]!r}; the file is not valid EDF", name, off)
        if not integer:
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    off = 256 + _SIGNAL_FIELD_STARTS[f] * ns + i * _SIGNAL_FIELD_WIDTHS[f]
                    name = f"{_SIGNAL_FIELDS[f]} of signal {i}"
                    raise _header_error(ctx, f"{name} is not a finite number", name, off)
        return values

    pmins, pmaxs = column(3, False), column(4, False)
    dmins, dmaxs = column(5, True), column(6, True)
    counts = column(8, True)
    max_count = (file_size // bps) + 1
    for i, n in enumerate(counts):
        if n < 0 or n > max_count:
            off = 256 + 216 * ns + i * 8
            raise _header_error(ctx, f"samples per data record of signal {i} is negative ({n})"
                                if n < 0 else
                                f"signal {i} claims {n} samples per data record, more than "
                                f"the whole file ({file_size} bytes) can hold",
                                f"samples per data record of signal {i}", off)
    plain_annotation = []
    signals = []
    for i, label in enumerate(labels):
        pmin, pmax, dmin, dmax, n = pmins[i], pmaxs[i], dmins[i], dmaxs[i], counts[i]
        is_ann = label in _ANNOTATION_LABELS
        if is_ann and not plus:
            plain_annotation.append(i)
        if dmax == dmin or pmax == pmin:
            scale, offset = 1.0, 0.0
            if not is_ann:
                ctx.warn(f"signal {i} ({label!r}) is uncalibrated (digital min {dmin}, "
                         f"max {dmax}; physical min {pmin:g}, max {pmax:g}): physical values "
                         "are the digital values")
        else:
            scale = (pmax - pmin) / (dmax - dmin)
            offset = pmin - dmin * scale
        signals.append(_signal_header(
            i, label, transducers[i], units[i], float(pmin), float(pmax), int(dmin),
            int(dmax), prefilters[i], n, sreserved[i], is_ann,
            n / duration if duration > 0 else 0.0, scale, offset))
    record_size = sum(counts) * bps
    if plain_annotation:
        ctx.warn(f"plain {kind} file (no {kind}+ marker in the reserved field) has a signal "
                 f"labelled {labels[plain_annotation[0]]!r}; read as {kind}+ annotations")
    return tuple(signals), record_size


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


def _file_header(buf: np.ndarray, ctx: DecodeContext) -> EdfHeader:
    """The header of a file held in memory; ``ctx.format`` becomes ``"edf"`` or ``"bdf"``."""
    fmt = _format_of(bytes(buf[:8]))
    if len(buf) >= 8 and fmt == "edf" and not (buf[0] == 0x30):
        raise ctx.error(HeaderError, "version field is neither '0' (EDF) nor 0xFF 'BIOSEMI' "
                        "(BDF); this is not an EDF/BDF file", format="edf", field="version",
                        offset=0)
    ctx.format = fmt  # the context is this file's: its errors name the variant read
    return _parse_header(buf, len(buf), ctx, fmt)


def _slot_offsets(header: EdfHeader) -> list[int]:
    """Byte offset of every signal's slot inside a data record, by signal index."""
    bps = 3 if header.format == "bdf" else 2
    offsets = []
    pos = 0
    for s in header.signals:
        offsets.append(pos)
        pos += s.samples_per_record * bps
    return offsets


def _decode(data: bytes | bytearray | memoryview, ctx: DecodeContext) -> Record:
    """Decode one EDF/BDF file held in memory into a :class:`Record`."""
    buf = _as_array(data)
    header = _file_header(buf, ctx)
    fmt = header.format
    bps = 3 if fmt == "bdf" else 2
    n_rec = header.n_records
    data_sigs = header.data_signals
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
    # new_signal builds each Signal natively (typed ``object`` by the kernel's stub)
    signals = cast("list[Signal]", [
        new_signal(s.label, s.sample_rate, out, s.scale, s.offset, s.units)
        for s, out in zip(data_sigs, outputs)])
    extras = {
        "transducers": tuple(s.transducer for s in data_sigs),
        "prefiltering": tuple(s.prefiltering for s in data_sigs),
        "physical_min": tuple(s.physical_min for s in data_sigs),
        "physical_max": tuple(s.physical_max for s in data_sigs),
        "digital_min": tuple(s.digital_min for s in data_sigs),
        "digital_max": tuple(s.digital_max for s in data_sigs),
        "signal_reserved": tuple(s.reserved for s in data_sigs),
        "samples_per_record": tuple(s.samples_per_record for s in data_sigs),
        "reserved": header.reserved,
        "record_duration": header.record_duration,
        "n_records_declared": header.n_records_declared,
        "subsecond_offset": subsecond,
        "patient_text": header.patient_text,
        "recording_text": header.recording_text,
    }
    extras.update(header.identification)
    return Record(name=ctx.name, format=fmt, format_detail=header.format_detail,
                  signals=signals, start_time=start, metadata=header.metadata,
                  annotations=annotations, data_record_onsets=onsets,
                  sources=(ctx.path,) if ctx.path else (), warnings=list(ctx.warnings),
                  extras=extras)


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
                               s.units, dtype) for s in header.data_signals)
    return RecordInfo(ctx.name, header.format, header.format_detail, signals, start,
                      header.metadata, len(annotations), (ctx.path,) if ctx.path else (),
                      tuple(ctx.warnings))


_RawAnnotation = tuple[int, int, float, "float | None", str]
"""(data record, annotation signal order, onset, duration, text) as read from a slot."""


def _read_annotations(buf: np.ndarray, header: EdfHeader, ctx: DecodeContext
                      ) -> tuple[list[Annotation], np.ndarray, float]:
    """TALs of every annotation signal, the record onsets and the subsecond start."""
    n_rec = header.n_records
    if not header.annotation_signals or n_rec == 0:
        return [], _nominal_onsets(header, ctx), 0.0
    raw: list[_RawAnnotation] = []
    keeping = np.full(n_rec, np.nan)
    _scan_tals(buf, header.header_bytes, 0, n_rec, header, ctx, raw, keeping)
    onsets, subsecond = _onsets(keeping, header, ctx)
    return _annotations(raw, subsecond), onsets, subsecond


def _nominal_onsets(header: EdfHeader, ctx: DecodeContext) -> np.ndarray:
    """Onsets of a file whose records carry no time (no annotation signal)."""
    if header.is_plus and not header.annotation_signals:
        ctx.warn(f"{header.format_detail} file has no annotation signal; record onsets "
                 "assume a continuous recording")
    return np.arange(header.n_records, dtype=np.float64) * header.record_duration


def _scan_tals(buf: np.ndarray, base: int, first: int, n: int, header: EdfHeader,
               ctx: DecodeContext, raw: list[_RawAnnotation], keeping: np.ndarray) -> None:
    """The annotation slots of ``n`` data records, ``first`` onwards, that start at byte
    ``base`` of ``buf``: texts appended to ``raw`` (signal by signal), the time-keeping
    onsets (NaN where a record has none) into ``keeping`` (``n`` items)."""
    bps = 3 if header.format == "bdf" else 2
    offsets = _slot_offsets(header)
    flags = np.empty(n, dtype=np.uint8)
    for order, s in enumerate(header.annotation_signals):
        size = s.samples_per_record * bps
        is_first = order == 0
        k_onsets = np.empty(n, dtype=np.float64)
        status = _kernel.scan_annotation_slots(
            buf, base, n, header.record_size, offsets[s.index], size, is_first, k_onsets,
            flags)
        ctx.check_status(status, f"annotation signal {s.index}",
                         offset=header.header_bytes + first * header.record_size)
        if is_first:
            keeping[:] = k_onsets
        for k in np.flatnonzero(flags):
            start = base + int(k) * header.record_size + offsets[s.index]
            slot = bytes(buf[start:start + size])
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
    return [Annotation(onset=o - subsecond if subsecond else o, duration=d, text=t)
            for _, _, o, d, t in raw]


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


_HEADER_LIMITS = Limits()  # a header read allocates no output: the defaults, made once


def _header_from(read: Callable[[int], bytes], size: int, path: str | None,
                 strict: bool) -> EdfHeader:
    ctx = DecodeContext("edf", path=path, strict=strict, limits=_HEADER_LIMITS)
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
# 60-64 ms for the digital read of a 260 MB file. WFDB keeps prefaulting, which
# helps its reads in two threads.
class EdfFormat(SingleFileFormat):
    """EDF, EDF+ and BDF (one file, one record)."""

    name = "edf"
    prefault = False  # the de-interleave's in-order reads fault pages in faster

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return _decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        """Header facts without the samples: ``samples`` of a signal is data records x
        samples per record, ``dtype`` int16 (EDF) or int32 (BDF). Only the annotation
        signal's bytes are read (for the annotation count and the subsecond start), so
        the result equals ``RecordInfo.of`` of the decoded record."""
        return _inspect(data, ctx)


FORMAT = EdfFormat()
