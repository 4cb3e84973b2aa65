"""HL7 v3 annotated ECG (FDA aECG, ``AnnotatedECG`` in ``urn:hl7-org:v3``).

The first sequence set of the first rhythm series becomes the record's
signals, in file order (``physical = origin + scale x digit``); every other
series or derived series (representative beats) is kept as a
:class:`~ecgingest.formats._xml.RepresentativeBeats` block in
``extras["series"]`` (``extras["representative_beats"]``: the first
``REPRESENTATIVE_BEAT`` one). Annotations (measurements, beats, wave
boundaries) are listed in document order; the global measurements and the
interpretation statements go to the extra-readings model SCP-ECG uses.
A plain document is parsed by ``ecgingest._ext.hl7aecg`` with lxml's libxml2
and the hardened parser's options in one native region (any other by lxml's
hardened parse); the kernel then walks libxml2's tree and hands back plain
records (no element object per step); the digits are parsed where libxml2
keeps them, without the GIL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .._ext import hl7aecg as _k
from ..errors import CorruptDataError, HeaderError, MissingDependencyError
from ..readings import global_measurements, interpretation
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo
from . import _xml
from ._base import DecodeContext, Probe, require
from ._xml import RepresentativeBeats, parse_number, signal

__all__ = ["FORMAT", "NAMESPACE", "lead_label", "MEASUREMENT_CODES"]

FORMAT_NAME = "hl7aecg"
NAMESPACE = "urn:hl7-org:v3"

_LEADS = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}
_UNIT_UV = {"uV": 1.0, "mV": 1e3, "V": 1e6, "nV": 1e-3}
_TIME_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_GENDERS = {"M": "MALE", "F": "FEMALE", "UN": "UNDIFFERENTIATED"}

MEASUREMENT_CODES: dict[str, str] = {
    "MDC_ECG_HEART_RATE": "ventricular_rate_bpm",
    "MDC_ECG_TIME_PD_PR": "pr_interval_ms",
    "MDC_ECG_TIME_PD_QRS": "qrs_duration_ms",
    "MDC_ECG_TIME_PD_QT": "qt_interval_ms",
    "MDC_ECG_TIME_PD_QTc": "qtc_ms",
    "MDC_ECG_TIME_PD_P": "p_duration_ms",
    "MDC_ECG_TIME_PD_RR": "rr_interval_ms",
    "MDC_ECG_ANGLE_P_FRONT": "p_axis_deg",
    "MDC_ECG_ANGLE_QRS_FRONT": "qrs_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "t_axis_deg",
}
"""Annotation codes of the shared measurement keys (the first global value of each)."""


def lead_label(code: str) -> str:
    """``MDC_ECG_LEAD_AVR`` -> ``aVR``; other codes lose the ``MDC_ECG_LEAD_`` prefix."""
    name = code[len("MDC_ECG_LEAD_"):] if code.startswith("MDC_ECG_LEAD_") else code
    return _LEADS.get(name.upper(), name)


def sniff(probe: Probe) -> bool:
    """Root element ``AnnotatedECG`` in the HL7 v3 namespace, within the bounded prefix."""
    return FORMAT.sniff(probe)


# --------------------------------------------------------------------------- values


def _timestamp(text: str | None, ctx: DecodeContext, what: str
               ) -> tuple[dt.datetime | None, dt.timezone | None]:
    """An HL7 TS (``YYYYMMDD[HH[MM[SS]]][.f{1,6}][+ZZZZ]``, decimal digits): local time
    and its offset if given. Read by slicing: a pattern match costs several times more,
    and this runs for every file."""
    if not text:
        return None, None
    stamp = text.strip()
    body, sign, offset = stamp, "", ""
    if len(stamp) > 5 and stamp[-5] in "+-":
        body, sign, offset = stamp[:-5], stamp[-5], stamp[-4:]
    digits, dot, fraction = body.partition(".")
    if len(digits) in (8, 10, 12, 14) and digits.isdecimal() and (
            not dot or (0 < len(fraction) <= 6 and fraction.isdecimal())) and (
            not sign or offset.isdecimal()):
        rest, second = divmod(int(digits.ljust(14, "0")), 100)  # one int() for all
        rest, minute = divmod(rest, 100)
        rest, hour = divmod(rest, 100)
        rest, day = divmod(rest, 100)
        year, month = divmod(rest, 100)
        micro = int(fraction.ljust(6, "0")) if fraction else 0
        try:
            zone = None
            if sign:
                minutes = int(offset[:2]) * 60 + int(offset[2:])
                zone = dt.timezone(dt.timedelta(minutes=minutes if sign == "+" else -minutes))
            return dt.datetime(year, month, day, hour, minute, second, micro, zone), zone
        except ValueError:
            pass
    ctx.deviation(f"{what} {text!r} is not an HL7 timestamp; ignored", field=what)
    return None, None


def _number(text: str | None) -> float | None:
    """A number of the file as float (see :func:`~._xml.parse_number`), None if not one."""
    if text is not None and text.isascii() and text.replace(".", "", 1).isdigit():
        plain = float(text)  # "5", "0.002": what parse_number reads, without its pattern
        return plain if plain <= _xml.MAX_NUMBER else None
    value = parse_number(text)
    return None if value is None else float(value)


def _stripped(text: str | None) -> str | None:
    """Stripped text of an element (None: absent or empty)."""
    return (text or "").strip() or None


# --------------------------------------------------------------------------- the document
#
# The kernel (or lxml, for a document that is not plain) parses the document with the
# hardened parser's options, without the GIL; the kernel then walks libxml2's tree itself and hands back plain records (see
# ``tree_records`` in ext/hl7aecg.pyx): the tree's elements never become Python
# objects, and the digits are parsed where libxml2 keeps them.


_ELEMENT: list[Any] = []  # lxml's element type once imported (an import costs each read)


def _element_type() -> Any:
    if not _ELEMENT:
        etree = require("lxml.etree", format=FORMAT_NAME, extra="xml")
        if etree._Element.__basicsize__ != _k.ELEMENT_SIZE:  # the walk reads its fields
            version = ".".join(map(str, etree.LXML_VERSION[:3]))
            raise MissingDependencyError(
                f"reading {FORMAT_NAME} needs an lxml whose elements have the layout of "
                f"lxml 5 and 6; lxml {version} differs: pip install 'lxml>=5,<7'",
                format=FORMAT_NAME, extra="xml")
        _ELEMENT.append(etree._Element)
    return _ELEMENT[0]


class _Sequence:
    """One lead ``sequence`` (SLIST_PQ): code, origin, scale and its digits' index."""

    __slots__ = ("code", "label", "units", "scale", "origin", "digits")

    def __init__(self, fields: tuple[Any, ...], what: str, ctx: DecodeContext) -> None:
        (_, code, self.label, kind, _, _, _, scale, scale_unit, origin, origin_unit,
         digits) = fields
        self.code = code or "unknown"
        if kind is not None and kind.rpartition(":")[2] != "SLIST_PQ":
            ctx.fail(CorruptDataError, f"{what} {self.label}: value type {kind!r} is not "
                     "SLIST_PQ (digits with origin and scale)", field="value")
        if scale is None or scale == 0:
            ctx.deviation(f"{what} {self.label}: scale missing or zero; 1 assumed",
                          field="scale")
            scale = 1.0
        self.units = scale_unit or "uV"
        origin = origin or 0.0
        if origin_unit and origin_unit != self.units and origin_unit in _UNIT_UV and \
                self.units in _UNIT_UV:
            origin = origin * _UNIT_UV[origin_unit] / _UNIT_UV[self.units]
        self.scale, self.origin = scale, origin
        if digits is None:
            ctx.fail(CorruptDataError, f"{what} {self.label}: no digits", field="digits")
        self.digits: int = digits


class _SequenceSet:
    def __init__(self) -> None:
        self.rate: float | None = None
        self.head: str | None = None
        self.time_code: str | None = None
        self.leads: list[_Sequence] = []

    def add(self, fields: tuple[Any, ...], what: str, ctx: DecodeContext) -> None:
        """One ``sequence``: the time base (a ``TIME_`` code) or a lead."""
        code = fields[1]
        if code is not None and code.startswith("TIME_"):
            increment, unit = fields[5], fields[6]
            self.time_code, self.head = code, fields[4]
            factor = _TIME_S.get(unit or "s")
            if increment is None or factor is None or not increment * factor > 1e-9:
                ctx.fail(HeaderError, f"{what}: time increment {increment!r} {unit!r} is "
                         "not a sampling interval", field="increment")
            self.rate = 1.0 / (increment * factor)
        else:
            self.leads.append(_Sequence(fields, what, ctx))

    def check(self, what: str, ctx: DecodeContext) -> None:
        if self.rate is None:
            ctx.fail(HeaderError, f"{what}: no time sequence (TIME_ABSOLUTE or "
                     "TIME_RELATIVE) gives the sampling rate", field="sequence")

    def check_digits(self, digits: Any, table: list[list[int]], what: str,
                     ctx: DecodeContext) -> None:
        """The first lead whose digits did not parse, as an error (``table``: this set's
        rows of :meth:`Digits.parse`)."""
        for lead, (status, at, _) in zip(self.leads, table):
            if status != _k.STATUS_OK:
                snippet = digits.text(lead.digits, at, 16)
                if not snippet.isascii():
                    ctx.fail(CorruptDataError, f"{what} {lead.label}: digits hold a "
                             "character that is not a digit, sign or space (at byte "
                             f"{at}: {snippet!r})", field="digits")
                ctx.check_status(status, f"{what} {lead.label} digits (at byte {at}: "
                                 f"{snippet!r})", field="digits")


def _decode_sets(document: _Document, ctx: DecodeContext
                 ) -> list[tuple[_Series, _SequenceSet, list[np.ndarray]]]:
    """Every sequence set's leads, in document order, int16 where a lead's values fit.

    The digits of all sets are counted in one kernel call and parsed in another (each
    without the GIL when long): a read that hands the GIL over once per call, not once
    per set, waits less for it while another thread reads."""
    digits = document.digits
    sets = [(item, sequence_set) for item in document.series for sequence_set in item.sets]
    indices = [lead.digits for _, sequence_set in sets for lead in sequence_set.leads]
    counts, total = digits.counts(indices)
    if len(sets) == 1:
        ctx.reserve_output(total * 4, sets[0][0].what)
    else:
        listed, at = counts.tolist(), 0
        for item, sequence_set in sets:
            size = len(sequence_set.leads)
            ctx.reserve_output(sum(listed[at:at + size]) * 4, item.what)
            at += size
    table, wide, narrow = digits.parse(indices, counts)
    rows = table.tolist()
    values = [small if small is not None else full for small, full in zip(narrow, wide)]
    if len(sets) == 1:
        item, sequence_set = sets[0]
        sequence_set.check_digits(digits, rows, item.what, ctx)
        return [(item, sequence_set, values)]
    out, at = [], 0
    for item, sequence_set in sets:
        size = len(sequence_set.leads)
        sequence_set.check_digits(digits, rows[at:at + size], item.what, ctx)
        out.append((item, sequence_set, values[at:at + size]))
        at += size
    return out


class _Series:
    """One series or derived series: its code, its sequence sets and its device model."""

    def __init__(self, fields: tuple[Any, ...], index: int) -> None:
        self.code = fields[1] or "unknown"
        self.model = _stripped(fields[2])
        self.index = index
        self.what = f"series {index} ({self.code})"
        self.sets: list[_SequenceSet] = []


class _Document:
    """Everything the decoder reads of one document, from the kernel's records."""

    def __init__(self, found: tuple[Any, Any, Any], ctx: DecodeContext) -> None:
        records, self.annotations, self.digits = found
        self.subject: tuple[Any, ...] = records[0]
        self.series: list[_Series] = []
        current: _SequenceSet | None = None
        for fields in records:
            kind = fields[0]
            if kind == "l":
                assert current is not None
                current.add(fields, self.series[-1].what, ctx)
            elif kind == "q":
                current = _SequenceSet()
                self.series[-1].sets.append(current)
            elif kind == "s":
                self.series.append(_Series(fields, len(self.series)))
        for item in self.series:
            for sequence_set in item.sets:
                sequence_set.check(item.what, ctx)
        if not self.series or not self.series[0].sets:
            ctx.fail(HeaderError, "the AnnotatedECG holds no series with a sequence set",
                     field="series")


# --------------------------------------------------------------------------- readings


def _metadata(document: _Document, ctx: DecodeContext,
              start_time: dt.datetime | None = None) -> Metadata:
    """Patient and trial facts, the device (the first series' model) and the recording's
    start in UTC (``start_time``, when the file gives its offset), in one constructor
    call: a field the file does not give is None, as Metadata's default."""
    (_, extension, root_id, name, given, family, gender, birth,
     trial) = document.subject
    given, family = _stripped(given), _stripped(family)
    if not (given or family) and name is not None:
        family = _stripped(name)
    birth_date = None
    if birth:
        when, _ = _timestamp(birth, ctx, "birthTime")
        birth_date = None if when is None else when.date()
    return Metadata(patient_id=extension or root_id, patient_first_name=given,
                    patient_last_name=family,
                    patient_gender=None if gender is None else _GENDERS.get(gender.upper()),
                    patient_birth_date=birth_date, recording_start_time=start_time,
                    investigation_id=trial, device_id=document.series[0].model)


def _readings(annotations: list[dict[str, Any]], readable: list[int]
              ) -> tuple[dict[str, Any], list[str]]:
    """The global measurements and the statements of the annotations the kernel found
    readable (the others give none)."""
    measurements: dict[str, Any] = {}
    statements: list[str] = []
    for index in readable:
        item = annotations[index]
        code = item.get("code") or ""
        key = MEASUREMENT_CODES.get(code)
        if key and "lead" not in item and key not in measurements and \
                item.get("value_type") == "PQ":
            measurements[key] = parse_number(item.get("value"))
        if "INTERPRETATION" in code and item.get("value") and \
                item.get("value_type") not in ("PQ",):
            statements.append(str(item.get("display_name") or item["value"]))
    return measurements, statements


# --------------------------------------------------------------------------- the format


def _document(data: bytes | memoryview, ctx: DecodeContext) -> _Document:
    """The document, parsed by the kernel where it is plain (one native region that hands
    the GIL over as the other readers' regions do), else by the hardened lxml parser,
    which also reports what is wrong with a document the kernel did not read."""
    element_type = _element_type()  # the lxml whose libxml2 both parses read
    plain = _xml.plain_text(_xml.as_bytes(data))
    if plain is not None and _xml.bind_libxml2(_k, ctx):
        document = _k.parse_document(*plain)
        found = None if document is None else _k.document_records(document, _number,
                                                                   lead_label)
        if found is not None:
            return _Document(found, ctx)
    root = _xml.parse(data, ctx)
    if root.tag != f"{{{NAMESPACE}}}AnnotatedECG":
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not AnnotatedECG in "
                 f"{NAMESPACE}", field="AnnotatedECG")
    return _Document(_k.tree_records(root, element_type, _number, lead_label), ctx)


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one annotated ECG."""
    document = _document(data, ctx)
    decoded = _decode_sets(document, ctx)
    primary, first, arrays = decoded[0]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        ctx.deviation(f"{primary.what}: the leads of one sequence set differ in length "
                      f"({sorted(lengths)})", field="digits")
    assert first.rate is not None
    signals: list[Signal] = [signal(lead.label, first.rate, values, lead.scale, lead.origin,
                                    lead.units) for lead, values in zip(first.leads, arrays)]
    start, zone = _timestamp(first.head, ctx, "time sequence head") if \
        first.time_code == "TIME_ABSOLUTE" else (None, None)
    metadata = _metadata(document, ctx, None if zone is None or start is None else
                         start.astimezone(dt.timezone.utc))
    extras: dict[str, Any] = {"series_code": primary.code}
    blocks: list[RepresentativeBeats] = []
    for item, sequence_set, values in decoded[1:]:
        if not values or len({len(v) for v in values}) != 1:
            ctx.warn(f"{item.what}: leads of differing lengths; left out")
            continue
        block = _k.stack_int32(values)
        block.flags.writeable = False
        assert sequence_set.rate is not None
        units = {lead.units for lead in sequence_set.leads}
        blocks.append(RepresentativeBeats(
            tuple(lead.label for lead in sequence_set.leads), sequence_set.rate, block,
            tuple(lead.scale for lead in sequence_set.leads),
            tuple(lead.origin for lead in sequence_set.leads),
            units.pop() if len(units) == 1 else "", item.code.lower()))
    extras["series"] = blocks
    for beats in blocks:  # the first block of representative beats
        if beats.kind == "representative_beat":
            extras["representative_beats"] = beats
            break
    annotations, readable = document.annotations
    ctx.check_count(len(annotations), "max_annotations", "aECG annotations")
    extras["aecg_annotations"] = annotations
    if readable:
        measurements, statements = _readings(annotations, readable)
        if measurements:
            extras["global_measurements"] = global_measurements(measurements)
        if statements:
            extras["interpretation"] = interpretation(statements, confirmation="original")
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail="HL7 aECG",
                  signals=signals, start_time=start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts; lead lengths are counted from the digits without converting them."""
    document = _document(data, ctx)
    first = document.series[0].sets[0]
    assert first.rate is not None
    counts = document.digits.counts([lead.digits for lead in first.leads])[0].tolist()
    infos = tuple(SignalInfo(lead.label, first.rate, count, lead.units)
                  for lead, count in zip(first.leads, counts))
    start, _ = _timestamp(first.head, ctx, "time sequence head") if \
        first.time_code == "TIME_ABSOLUTE" else (None, None)
    metadata = _metadata(document, ctx)
    return RecordInfo(ctx.name, FORMAT_NAME, "HL7 aECG", infos, start, metadata, 0,
                      (ctx.path or ctx.name,), tuple(ctx.warnings))


class Hl7AecgFormat(_xml.XmlFormat):
    """HL7 v3 annotated ECG (FDA aECG) XML."""

    name = FORMAT_NAME
    root = "AnnotatedECG"
    namespaces = (NAMESPACE,)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)


FORMAT = Hl7AecgFormat()
