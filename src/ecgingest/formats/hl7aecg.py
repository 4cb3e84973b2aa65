"""HL7 v3 annotated ECG (FDA aECG, ``AnnotatedECG`` in ``urn:hl7-org:v3``).

The first sequence set of the first rhythm series becomes the record's
signals, in file order (``physical = origin + scale x digit``); every other
series or derived series (representative beats) is kept as a
:class:`~ecgingest.formats._xml.RepresentativeBeats` block in
``extras["series"]`` (``extras["representative_beats"]``: the first
``REPRESENTATIVE_BEAT`` one). Annotations (measurements, beats, wave
boundaries) are listed in document order; the global measurements and the
interpretation statements go to the extra-readings model SCP-ECG uses.
The digits are parsed by ``ecgingest._ext.hl7aecg`` without the GIL.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from .._ext import hl7aecg as _k
from ..errors import CorruptDataError, HeaderError
from ..readings import global_measurements, interpretation
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo
from . import _xml
from ._base import DecodeContext, Probe
from ._xml import RepresentativeBeats, parse_number, signal

__all__ = ["FORMAT", "NAMESPACE", "lead_label", "MEASUREMENT_CODES"]

FORMAT_NAME = "hl7aecg"
NAMESPACE = "urn:hl7-org:v3"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

_LEADS = {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}
_UNIT_UV = {"uV": 1.0, "mV": 1e3, "V": 1e6, "nV": 1e-3}
_TIME_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?"
                 r"(?:([+-])(\d{2})(\d{2}))?")
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
    """An HL7 TS (``YYYYMMDDHHMMSS[.ffff][+ZZZZ]``): local time and its offset if given."""
    if not text:
        return None, None
    found = _TS.fullmatch(text.strip())
    if found and found.group(3):
        year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = \
            found.groups()
        micro = int((fraction + "000000")[:6]) if fraction else 0
        try:
            zone = None
            if sign:
                minutes = int(zone_h) * 60 + int(zone_m)
                zone = dt.timezone(dt.timedelta(minutes=minutes if sign == "+" else -minutes))
            return dt.datetime(int(year), int(month), int(day), int(hour or 0),
                               int(minute or 0), int(second or 0), micro, zone), zone
        except ValueError:
            pass
    ctx.deviation(f"{what} {text!r} is not an HL7 timestamp; ignored", field=what)
    return None, None


def _quantity(element: Any) -> tuple[float | None, str | None]:
    if element is None:
        return None, None
    value = parse_number(element.get("value"))
    return (None if value is None else float(value)), element.get("unit")


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


# Full tags of the elements read. Every element the decoder reaches is in the HL7 v3
# namespace (the root is, and each step looks in its parent's namespace), so looking a
# child up by its full tag is looking it up by local name in its parent's namespace.
(_ANNOTATION, _AUTHOR, _CODE, _COMPONENT, _COMPONENT_OF, _DERIVATION, _DERIVED_SERIES,
 _DIGITS, _HEAD, _ID, _INCREMENT, _ORIGIN, _SCALE, _SEQUENCE, _SEQUENCE_SET, _SERIES,
 _SUPPORT, _VALUE) = (_tag(name) for name in (
    "annotation", "author", "code", "component", "componentOf", "derivation", "derivedSeries",
    "digits", "head", "id", "increment", "origin", "scale", "sequence", "sequenceSet", "series",
    "support", "value"))
(_SUBJECT, _TRIAL_SUBJECT, _PERSON, _NAME, _GIVEN, _FAMILY, _GENDER, _BIRTH,
 _CLINICAL_TRIAL) = (_tag(name) for name in (
    "subject", "trialSubject", "subjectDemographicPerson", "name", "given", "family",
    "administrativeGenderCode", "birthTime", "clinicalTrial"))
_ASSIGNMENT = tuple(_tag(name) for name in ("timepointEvent", "componentOf",
                                            "subjectAssignment"))
"""From the root's ``componentOf`` to the subject assignment."""
_DEVICE = tuple(_tag(name) for name in ("seriesAuthor", "manufacturedSeriesDevice",
                                        "manufacturerModelName"))
"""From a series' ``author`` to the device model's name."""


def _first(element: Any, tag: str) -> Any:
    """The first child of this tag, or None (also for no element). The elements this
    looks in have a few children: a list of them costs less than an iterator."""
    if element is not None:
        for item in element[:]:
            if item.tag == tag:
                return item
    return None


def _firsts(element: Any) -> dict[Any, Any]:
    """Tag -> the first child of that tag, in one pass over ``element``'s children ({}
    for None). Each step over a child costs lxml an element object and a tag string, so
    one pass that serves every name read there costs a fraction of a walk per name."""
    found: dict[Any, Any] = {}
    if element is not None:
        for item in element[:]:  # a list at once costs less than an iterator over it
            found.setdefault(item.tag, item)
    return found


def _text(element: Any) -> str | None:
    """Stripped text of an element (None: absent or empty)."""
    if element is None:
        return None
    return (element.text or "").strip() or None


class _Sequence:
    """One lead ``sequence`` (SLIST_PQ): code, origin, scale; digits parsed on demand."""

    def __init__(self, code: str | None, value: Any, what: str, ctx: DecodeContext) -> None:
        self.code = code or "unknown"
        self.label = lead_label(self.code)
        kind = None if value is None else value.get(_XSI_TYPE)
        if kind is not None and kind.rpartition(":")[2] != "SLIST_PQ":
            ctx.fail(CorruptDataError, f"{what} {self.label}: value type {kind!r} is not "
                     "SLIST_PQ (digits with origin and scale)", field="value")
        parts = _firsts(value)
        scale, scale_unit = _quantity(parts.get(_SCALE))
        origin, origin_unit = _quantity(parts.get(_ORIGIN))
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
        digits = parts.get(_DIGITS)
        self.text = None if digits is None else (digits.text or "")
        if self.text is None:
            ctx.fail(CorruptDataError, f"{what} {self.label}: no digits", field="digits")
        self.count: int | None = None

    def counted(self, what: str, ctx: DecodeContext) -> tuple[bytes, int]:
        try:
            raw = (self.text or "").encode("ascii")
        except UnicodeEncodeError:
            ctx.fail(CorruptDataError, f"{what} {self.label}: digits hold a character that is "
                     "not a digit, sign or space", field="digits")
        self.count = _k.count_integers(raw)
        return raw, self.count

    def values(self, raw: bytes, count: int, what: str, ctx: DecodeContext) -> np.ndarray:
        status, values, lo, hi, at = _k.parse_integers(raw, count)
        if status != _k.STATUS_OK:
            snippet = raw[max(at, 0):max(at, 0) + 16]
            ctx.check_status(status, f"{what} {self.label} digits (at byte {at}: {snippet!r})",
                             field="digits")
        return _xml.narrowest(values, lo, hi)


class _SequenceSet:
    def __init__(self, element: Any, what: str, ctx: DecodeContext) -> None:
        self.rate: float | None = None
        self.head: str | None = None
        self.time_code: str | None = None
        self.leads: list[_Sequence] = []
        for component in element[:]:
            if component.tag != _COMPONENT:
                continue
            sequence = _first(component, _SEQUENCE)
            if sequence is None:
                continue
            kids = _firsts(sequence)
            code_element = kids.get(_CODE)
            code = None if code_element is None else code_element.get("code")
            if (code or "").startswith("TIME_"):
                parts = _firsts(kids.get(_VALUE))
                increment, unit = _quantity(parts.get(_INCREMENT))
                head = parts.get(_HEAD)
                self.time_code = code
                self.head = None if head is None else head.get("value")
                factor = _TIME_S.get(unit or "s")
                if increment is None or factor is None or not increment * factor > 1e-9:
                    ctx.fail(HeaderError, f"{what}: time increment {increment!r} {unit!r} is "
                             "not a sampling interval", field="increment")
                self.rate = 1.0 / (increment * factor)
            else:
                self.leads.append(_Sequence(code, kids.get(_VALUE), what, ctx))
        if self.rate is None:
            ctx.fail(HeaderError, f"{what}: no time sequence (TIME_ABSOLUTE or TIME_RELATIVE) "
                     "gives the sampling rate", field="sequence")

    def decode(self, what: str, ctx: DecodeContext) -> list[np.ndarray]:
        """Every lead's digits: counted in one kernel call, then parsed in another (each
        without the GIL when long), int16 where a lead's values fit."""
        texts = [lead.text or "" for lead in self.leads]
        for lead, text in zip(self.leads, texts):
            if not text.isascii():
                ctx.fail(CorruptDataError, f"{what} {lead.label}: digits hold a character "
                         "that is not a digit, sign or space", field="digits")
        counts = _k.count_texts(texts)
        for lead, count in zip(self.leads, counts.tolist()):
            lead.count = count
        ctx.reserve_output(int(counts.sum()) * 4, what)
        table, wide, narrow = _k.parse_texts(texts, counts)
        for lead, text, (status, at, _) in zip(self.leads, texts, table.tolist()):
            if status != _k.STATUS_OK:
                snippet = text[max(at, 0):max(at, 0) + 16].encode("ascii")
                ctx.check_status(status, f"{what} {lead.label} digits (at byte {at}: "
                                 f"{snippet!r})", field="digits")
        return [small if small is not None else values for small, values in zip(narrow, wide)]


class _Series:
    """One series or derived series: its code, its sequence sets, and what the rest of
    the decode reads below it (derivations, author), found in one pass."""

    def __init__(self, element: Any, element_name: str, index: int,
                 ctx: DecodeContext) -> None:
        self.element = element_name
        code = author = None
        components: list[Any] = []
        self.derivations: list[Any] = []
        for item in element[:]:
            tag = item.tag
            if tag == _COMPONENT:
                components.append(item)
            elif tag == _DERIVATION:
                self.derivations.append(item)
            elif tag == _CODE:
                code = item if code is None else code
            elif tag == _AUTHOR:
                author = item if author is None else author
        self.author = author
        self.code = (code.get("code") if code is not None else None) or "unknown"
        self.index = index
        what = f"series {index} ({self.code})"
        self.sets = [_SequenceSet(s, what, ctx) for component in components
                     if (s := _first(component, _SEQUENCE_SET)) is not None]
        self.what = what


def _top(root: Any) -> tuple[list[Any], Any]:
    """The root's ``component`` children and its first ``componentOf``, in one pass."""
    components: list[Any] = []
    component_of = None
    for item in root[:]:
        tag = item.tag
        if tag == _COMPONENT:
            components.append(item)
        elif tag == _COMPONENT_OF and component_of is None:
            component_of = item
    return components, component_of


def _all_series(components: list[Any], ctx: DecodeContext) -> list[_Series]:
    """Every series and derived series below the root's components, in document order."""
    found: list[_Series] = []

    def visit(series: Any, name: str) -> None:
        item = _Series(series, name, len(found), ctx)
        found.append(item)
        for derivation in item.derivations:
            for derived in derivation[:]:
                if derived.tag == _DERIVED_SERIES:
                    visit(derived, "derivedSeries")

    for component in components:
        for series in component[:]:
            if series.tag == _SERIES:
                visit(series, "series")
    if not found or not found[0].sets:
        ctx.fail(HeaderError, "the AnnotatedECG holds no series with a sequence set",
                 field="series")
    return found


# --------------------------------------------------------------------------- readings


def _metadata(component_of: Any, series: _Series, ctx: DecodeContext) -> Metadata:
    """Patient, trial and device facts (``component_of``: the root's first
    ``componentOf``; ``series``: the first series of the document)."""
    assignment = component_of
    for tag in _ASSIGNMENT:
        assignment = _first(assignment, tag)
    below = _firsts(assignment)
    subject = _first(below.get(_SUBJECT), _TRIAL_SUBJECT)
    fields: dict[str, Any] = {}
    if subject is not None:
        facts = _firsts(subject)
        identifier = facts.get(_ID)
        if identifier is not None:
            fields["patient_id"] = identifier.get("extension") or identifier.get("root")
        person = _firsts(facts.get(_PERSON))
        name = person.get(_NAME)
        if name is not None:
            parts = _firsts(name)
            given = _text(parts.get(_GIVEN))
            family = _text(parts.get(_FAMILY))
            if given or family:
                fields["patient_first_name"], fields["patient_last_name"] = given, family
            elif (name.text or "").strip():
                fields["patient_last_name"] = name.text.strip()
        gender = person.get(_GENDER)
        if gender is not None:
            fields["patient_gender"] = _GENDERS.get((gender.get("code") or "").upper())
        birth = person.get(_BIRTH)
        if birth is not None and birth.get("value"):
            when, _ = _timestamp(birth.get("value"), ctx, "birthTime")
            fields["patient_birth_date"] = None if when is None else when.date()
    trial = _first(_first(below.get(_COMPONENT_OF), _CLINICAL_TRIAL), _ID)
    if trial is not None:
        fields["investigation_id"] = trial.get("extension")
    device = series.author
    for tag in _DEVICE:
        device = _first(device, tag)
    model = _text(device)
    if model:
        fields["device_id"] = model
    return Metadata(**{k: v for k, v in fields.items() if v is not None})


(_ROI, _BOUNDARY, _LOW, _HIGH) = (_tag(name) for name in (
    "supportingROI", "boundary", "low", "high"))


def _boundaries(support: Any, item: dict[str, Any]) -> str | None:
    """Read the boundaries of an annotation's region (``support/supportingROI/component/
    boundary``, by child loops: ElementPath costs several times more): the last onset
    and offset go into ``item``; returns the lead the last lead boundary names."""
    lead = None
    for roi in support[:]:
        if roi.tag != _ROI:
            continue
        for component in roi[:]:
            if component.tag != _COMPONENT:
                continue
            for boundary in component[:]:
                if boundary.tag != _BOUNDARY:
                    continue
                parts = _firsts(boundary)
                code = parts.get(_CODE)
                code_value = "" if code is None else code.get("code") or ""
                if code_value.startswith("MDC_ECG_LEAD"):
                    lead = lead_label(code_value)
                    continue
                bounds = _firsts(parts.get(_VALUE))
                low, low_unit = _quantity(bounds.get(_LOW))
                high, high_unit = _quantity(bounds.get(_HIGH))
                if low is not None or high is not None:
                    item["onset"], item["offset"] = low, high
                    item["time_unit"] = low_unit or high_unit
    return lead


def _annotations(root: Any) -> list[dict[str, Any]]:
    """Every ``annotation`` in document order: code, value (PQ, CE or text), depth, and
    the lead it applies to (its own region of interest's, else its nearest ancestor's)."""
    out: list[dict[str, Any]] = []
    # per depth: the lead of the last annotation seen there (in document order, an
    # annotation's nearest annotation ancestor is the last one seen a level up)
    leads: list[str | None] = []
    depths: dict[Any, int] = {}  # per annotation seen (their element objects kept alive)
    for element in root.iter(_ANNOTATION):
        parent = element.getparent()
        above = None if parent is None else parent.getparent()
        if above is None or above.tag != _ANNOTATION:  # not annotation/component/annotation
            above = next(element.iterancestors(_ANNOTATION), None)
        depth = 0 if above is None else depths[above] + 1
        depths[element] = depth
        parts = _firsts(element)
        code = parts.get(_CODE)
        item: dict[str, Any] = {"code": None if code is None else code.get("code"),
                                "depth": depth}
        value = parts.get(_VALUE)
        if value is not None:
            kind = (value.get(_XSI_TYPE) or "").rpartition(":")[2]
            item["value_type"] = kind
            if kind == "PQ":
                item["value"] = value.get("value")
                if value.get("unit") is not None:
                    item["unit"] = value.get("unit")
            elif kind == "CE" or value.get("code") is not None:
                item["value"] = value.get("code")
                if value.get("displayName"):
                    item["display_name"] = value.get("displayName")
            else:
                item["value"] = (value.text or "").strip()
        support = parts.get(_SUPPORT)
        lead = None if support is None else _boundaries(support, item)
        del leads[depth:]
        if lead is None and depth and len(leads) == depth:
            lead = leads[depth - 1]
        leads.append(lead)
        if lead is not None:
            item["lead"] = lead
        out.append(item)
    return out


def _readings(annotations: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    measurements: dict[str, Any] = {}
    statements: list[str] = []
    for item in annotations:
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


def _root(data: bytes | memoryview, ctx: DecodeContext) -> Any:
    root = _xml.parse(data, ctx)
    if root.tag != f"{{{NAMESPACE}}}AnnotatedECG":
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not AnnotatedECG in "
                 f"{NAMESPACE}", field="AnnotatedECG")
    return root


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one annotated ECG."""
    root = _root(data, ctx)
    components, component_of = _top(root)
    series = _all_series(components, ctx)
    primary = series[0]
    first = primary.sets[0]
    arrays = first.decode(primary.what, ctx)
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        ctx.deviation(f"{primary.what}: the leads of one sequence set differ in length "
                      f"({sorted(lengths)})", field="digits")
    assert first.rate is not None
    signals: list[Signal] = [signal(lead.label, first.rate, values, lead.scale, lead.origin,
                                    lead.units) for lead, values in zip(first.leads, arrays)]
    start, zone = _timestamp(first.head, ctx, "time sequence head") if \
        first.time_code == "TIME_ABSOLUTE" else (None, None)
    metadata = _metadata(component_of, series[0], ctx)
    if zone is not None and start is not None:
        metadata = Metadata(**{**{k: v for k, v in metadata.as_dict().items()
                                  if v is not None},
                               "recording_start_time": start.astimezone(dt.timezone.utc)})
    extras: dict[str, Any] = {"series_code": primary.code}
    blocks: list[RepresentativeBeats] = []
    for item in series:
        for index, sequence_set in enumerate(item.sets):
            if item is primary and index == 0:
                continue
            values = sequence_set.decode(item.what, ctx)
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
    beats = [b for b in blocks if b.kind == "representative_beat"]
    if beats:
        extras["representative_beats"] = beats[0]
    annotations = _annotations(root)
    ctx.check_count(len(annotations), "max_annotations", "aECG annotations")
    extras["aecg_annotations"] = annotations
    measurements, statements = _readings(annotations)
    if measurements:
        extras["global_measurements"] = global_measurements(measurements)
    if statements:
        extras["interpretation"] = interpretation(statements, confirmation="original")
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail="HL7 aECG",
                  signals=signals, start_time=start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts; lead lengths are counted from the digits without converting them."""
    root = _root(data, ctx)
    components, component_of = _top(root)
    series = _all_series(components, ctx)
    first = series[0].sets[0]
    assert first.rate is not None
    infos = tuple(SignalInfo(lead.label, first.rate, lead.counted(series[0].what, ctx)[1],
                             lead.units) for lead in first.leads)
    start, _ = _timestamp(first.head, ctx, "time sequence head") if \
        first.time_code == "TIME_ABSOLUTE" else (None, None)
    metadata = _metadata(component_of, series[0], ctx)
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
