"""GE MUSE XML (``RestingECG`` exports, MUSE 7-9).

The rhythm waveform's stored leads (I, II, V1-V6) become the record's
signals as stored, followed by III, aVR, aVL and aVF derived from I and II
(``extras["derived_leads"]`` names them and their formulas). The median beats
are kept as ``extras["median_beats"]``, measurements and the interpretation
(confirmed and original) in the extra-readings model SCP-ECG uses. Samples
are base64 little-endian int16, decoded by ``ecgingest._ext.muse`` without the
GIL; each lead's CRC-32 is checked.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from typing import Any, cast

import numpy as np

from .._ext import muse as _k
from ..errors import ChecksumError, CorruptDataError, HeaderError, TruncatedError
from ..readings import global_measurements
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo, new_signal, new_signals
from . import _xml
from ._base import DecodeContext, Probe
from ._xml import RepresentativeBeats, parse_number

__all__ = ["FORMAT", "DERIVED_LEADS", "STORED_LEADS"]

FORMAT_NAME = "muse"

STORED_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
"""The leads a MUSE export stores, in its order."""

DERIVED_LEADS: tuple[tuple[str, str], ...] = (
    ("III", "II - I"),
    ("aVR", "-(I + II) / 2"),
    ("aVL", "I - II / 2"),
    ("aVF", "II - I / 2"),
)
"""Limb leads computed from I and II (Einthoven and Goldberger), in output order."""

# Derived digital values are in half units (exact integers): 2 x the formula
# (III = 2 II - 2 I, aVR = -I - II, aVL = 2 I - II, aVF = 2 II - I).

_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}
_GENDERS = {"MALE": "MALE", "FEMALE": "FEMALE"}
_DATE = re.compile(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

#: RestingECGMeasurements element -> key of the shared measurement model.
MEASUREMENT_KEYS: dict[str, str] = {
    "VentricularRate": "ventricular_rate_bpm",
    "AtrialRate": "atrial_rate_bpm",
    "PRInterval": "pr_interval_ms",
    "QRSDuration": "qrs_duration_ms",
    "QTInterval": "qt_interval_ms",
    "QTCorrected": "qtc_ms",
    "PAxis": "p_axis_deg",
    "RAxis": "qrs_axis_deg",
    "TAxis": "t_axis_deg",
}

_MEASUREMENT_PAIRS = tuple(MEASUREMENT_KEYS.items())


def sniff(probe: Probe) -> bool:
    """Root element ``RestingECG`` without a namespace, within the bounded prefix."""
    return FORMAT.sniff(probe)


# --------------------------------------------------------------------------- fields


def _date(text: str | None, ctx: DecodeContext, what: str) -> dt.date | None:
    """A MUSE date: month first (``MM-DD-YYYY``)."""
    if text is None:
        return None
    found = _DATE.fullmatch(text)
    if found:
        month, day, year = (int(g) for g in found.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            pass
    ctx.deviation(f"{what} {text!r} is not a month-first date (MM-DD-YYYY); ignored",
                  field=what)
    return None


def _time(text: str | None, ctx: DecodeContext, what: str) -> dt.time | None:
    if text is None:
        return None
    found = _TIME.fullmatch(text)
    if found:
        try:
            return dt.time(int(found.group(1)), int(found.group(2)), int(found.group(3) or 0))
        except ValueError:
            pass
    ctx.deviation(f"{what} {text!r} is not a time (HH:MM:SS); ignored", field=what)
    return None


PATIENT_FIELDS = ("PatientID", "PatientFirstName", "PatientLastName", "Gender", "DateofBirth",
                  "PatientAge", "AgeUnits", "HeightCM", "WeightKG", "Race")
"""``PatientDemographics`` values read."""

_ACQUISITION = (("site", "SiteName"), ("site_id", "Site"), ("location", "LocationName"),
                ("cart_number", "CartNumber"),
                ("acquisition_software", "AcquisitionSoftwareVersion"),
                ("analysis_software", "AnalysisSoftwareVersion"), ("status", "Status"),
                ("data_type", "DataType"))
"""``extras["acquisition"]`` key -> TestDemographics element."""

TEST_FIELDS = ("AcquisitionDevice", "AcquisitionDate", "AcquisitionTime",
               *(name for _, name in _ACQUISITION))
"""``TestDemographics`` values read."""

HEADER_BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("MuseInfo", ("MuseVersion",)), ("PatientDemographics", PATIENT_FIELDS),
    ("TestDemographics", TEST_FIELDS))
"""Blocks of the root read as name -> stripped text (the first block and value of each name)."""

MEASUREMENT_BLOCKS = ("RestingECGMeasurements", "OriginalRestingECGMeasurements")
"""Blocks read as every child's name -> stripped text (the last of each name)."""

STATEMENTS = (("Diagnosis", "OriginalDiagnosis"), "DiagnosisStatement", "StmtText", "StmtFlag",
              "ENDSLINE")
"""Statement blocks (confirmed, original), a statement, its text, its flag and the flag
value that ends a line."""

QRS = ("QRSTimesTypes", "QRS", ("Number", "Type", "Time"))
"""The detected beats: block, one beat, its values."""

QRS_KEYS = ("number", "type", "time")
"""``extras["qrs_times"]`` keys of a beat's values, in ``QRS`` order."""

WAVEFORM_FIELDS = ("WaveformType", "SampleBase", "SampleExponent", "HighPassFilter",
                   "LowPassFilter", "ACFilter", "SampleType", "NumberofLeads")
LEAD_FIELDS = ("LeadID", "LeadSampleCountTotal", "LeadByteCountTotal", "LeadSampleSize",
               "LeadAmplitudeUnitsPerBit", "LeadAmplitudeUnits", "LeadDataCRC32", "WaveFormData")
"""The ``LeadData`` values read, in the order a lead's list holds them."""

WAVEFORM = ("Waveform", WAVEFORM_FIELDS, "LeadData", LEAD_FIELDS, "WaveFormData")
"""Every ``Waveform``: its values, its leads and their values (the last: base64 samples)."""

NUMERIC = frozenset({"SampleBase", "SampleExponent", "HighPassFilter", "LowPassFilter",
                     "ACFilter", "NumberofLeads", "LeadSampleCountTotal", "LeadByteCountTotal",
                     "LeadSampleSize", "LeadAmplitudeUnitsPerBit", "LeadDataCRC32",
                     *QRS[2]})
"""Values read as numbers (as :func:`parse_number` reads their texts)."""

_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8",
              **{name: "latin-1" for name in _xml.LATIN1_NAMES},
              **{name: "ascii" for name in _xml.ASCII_SUPERSET_NAMES - _xml.LATIN1_NAMES}}
"""Declared encodings the byte scan reads (as the XML parser does, see ``_xml``): UTF-8,
ISO-8859-1 and the ASCII supersets (ASCII documents only)."""

_SCHEMA = _k.Schema("RestingECG", HEADER_BLOCKS, MEASUREMENT_BLOCKS, STATEMENTS, QRS, WAVEFORM,
                    NUMERIC, _ENCODINGS, parse_number)


class _Content:
    """What a read takes from a document, from the byte scan (``Schema.read``: the
    shapes are described there) or from the XML tree: a lead's base64 is then its text
    instead of a row of ``table``."""

    __slots__ = ("headers", "measurements", "statements", "qrs", "waveforms", "data", "table")

    def __init__(self, headers: list[dict[str, Any] | None],
                 measurements: list[dict[str, str] | None],
                 statements: list[list[list[Any]] | None], qrs: list[list[Any]] | None,
                 waveforms: list[tuple[dict[str, Any], list[list[Any]]]],
                 data: np.ndarray | None, table: list[tuple[int, int, int, int, int]]) -> None:
        self.headers, self.measurements, self.statements = headers, measurements, statements
        self.qrs, self.waveforms, self.data, self.table = qrs, waveforms, data, table

    def header(self, index: int) -> dict[str, Any]:
        return self.headers[index] or {}

    def version(self) -> str | None:
        return self.header(0).get("MuseVersion") or None


def _fields(element: Any) -> dict[str, str]:
    """Tag -> stripped text of every child element (the first of each tag), in one pass."""
    out: dict[str, str] = {}
    for item in element:
        tag = item.tag
        if tag not in out:
            out[tag] = (item.text or "").strip()
    return out


def _tree_measurements(element: Any) -> dict[str, str] | None:
    if element is None:
        return None
    raw: dict[str, str] = {}
    for item in element:  # the last of a name wins
        tag = item.tag
        raw[tag.rpartition("}")[2] if "}" in tag else tag] = (item.text or "").strip()
    return raw


def _tree_statements(element: Any) -> list[list[Any]] | None:
    if element is None:
        return None
    _, name, text_name, flag_name, ends_value = STATEMENTS
    found: list[list[Any]] = []
    for statement in element:
        if statement.tag != name:
            continue
        text: str | None = None
        ends = False
        for item in statement:
            if item.tag == text_name:
                if text is None:  # the first StmtText
                    text = (item.text or "").strip()
            elif item.tag == flag_name and (item.text or "").strip().upper() == ends_value:
                ends = True
        found.append([text, ends])
    return found


def _tree_waveform(element: Any) -> tuple[dict[str, Any], list[list[Any]]]:
    values: dict[str, Any] = {}
    leads: list[list[Any]] = []
    lead_name, wanted = WAVEFORM[2], frozenset(LEAD_FIELDS)
    for item in element:
        tag = item.tag
        if tag == lead_name:
            fields: dict[str, str] = {}
            for child in item:
                if child.tag in wanted and child.tag not in fields:
                    fields[child.tag] = child.text or ""
            leads.append([parse_number(fields.get(name)) if name in NUMERIC else fields.get(name)
                          for name in LEAD_FIELDS])
        elif tag not in values:
            text = (item.text or "").strip()
            values[tag] = parse_number(text or None) if tag in NUMERIC else text
    return values, leads


def _tree_content(root: Any) -> _Content:
    """The same values as the byte scan reads, from the XML tree."""
    first: dict[str, Any] = {}
    waveforms: list[Any] = []
    for item in root:
        tag = item.tag
        if tag == WAVEFORM[0]:
            waveforms.append(item)
        elif tag not in first:
            first[tag] = item
    qrs = first.get(QRS[0])
    return _Content(
        [None if first.get(block) is None else _fields(first[block])
         for block, _ in HEADER_BLOCKS],
        [_tree_measurements(first.get(block)) for block in MEASUREMENT_BLOCKS],
        [_tree_statements(first.get(block)) for block in STATEMENTS[0]],
        None if qrs is None else [[parse_number(values.get(name) or None) for name in QRS[2]]
                                  for values in (_fields(item) for item in qrs
                                                 if item.tag == QRS[1])],
        [_tree_waveform(item) for item in waveforms], None, [])


def _parse(data: bytes | memoryview, ctx: DecodeContext, samples: bool = True) -> _Content:
    """The document's values: read by the byte scan (with the leads' base64 decoded
    unless ``samples`` is false), or, for a document the scan leaves, from the tree of
    the hardened XML parser (which also gives its errors)."""
    raw = _xml.as_bytes(data)
    found = _SCHEMA.read(raw, samples)
    if found is None:
        return _tree_content(_checked_root(_xml.parse(raw, ctx), ctx))
    return _Content(*found)


def _metadata(content: _Content, ctx: DecodeContext) -> tuple[Metadata, dt.datetime | None,
                                                             dict[str, Any]]:
    patient, test = content.header(1), content.header(2)
    fields: dict[str, Any] = {
        "patient_id": patient.get("PatientID") or None,
        "patient_first_name": patient.get("PatientFirstName") or None,
        "patient_last_name": patient.get("PatientLastName") or None,
        "patient_gender": _GENDERS.get((patient.get("Gender") or "").upper()),
        "patient_birth_date": _date(patient.get("DateofBirth") or None, ctx, "DateofBirth"),
        "device_id": test.get("AcquisitionDevice") or None,
    }
    age, unit = parse_number(patient.get("PatientAge") or None), patient.get("AgeUnits")
    if isinstance(age, int) and age >= 0 and (unit or "YEARS").upper() == "YEARS":
        fields["patient_age"] = age
    height = parse_number(patient.get("HeightCM") or None)
    if height is not None and height > 0:
        fields["patient_height"] = round(height)
    weight = parse_number(patient.get("WeightKG") or None)
    if weight is not None and weight > 0:
        fields["patient_weight"] = round(weight * 1000)
    date = _date(test.get("AcquisitionDate") or None, ctx, "AcquisitionDate")
    time = _time(test.get("AcquisitionTime") or None, ctx, "AcquisitionTime")
    start = _xml.combine_date_time(date, time)
    acquisition: dict[str, Any] = {}  # the values present, in _ACQUISITION order
    for key, element in _ACQUISITION:
        value = test.get(element)
        if value:
            acquisition[key] = value
    for key, value in (("race", patient.get("Race")), ("muse_version", content.version())):
        if value:
            acquisition[key] = value
    return Metadata(**fields), start, acquisition  # a None is the field's default


def _measurements(raw: dict[str, str] | None) -> dict[str, Any] | None:
    """One ``*RestingECGMeasurements`` block: the shared keys, plus every value as named."""
    if raw is None:
        return None
    return global_measurements(_k.named_numbers(raw, _MEASUREMENT_PAIRS, parse_number), raw)


_CLOSERS = ",.;:)"
"""A statement text starting with one of these joins the line before it without a space."""


def _statements(found: list[list[Any]] | None, confirmation: str) -> dict[str, Any] | None:
    """``DiagnosisStatement`` lines: texts join until one carries ``StmtFlag`` ENDSLINE."""
    if found is None:
        return None
    return {"confirmation": confirmation, "datetime": None,
            "statements": _k.statement_lines(found, _CLOSERS)}


# --------------------------------------------------------------------------- waveforms


class _Lead:
    __slots__ = ("label", "samples", "units_per_bit", "units", "data", "crc", "bytes")

    def __init__(self, values: list[Any], index: int, what: str, ctx: DecodeContext) -> None:
        label, count, nbytes, size, upb, unit, crc, self.data = values
        self.label = (label or "").strip() or f"lead {index + 1}"
        if size not in (None, 2):
            ctx.fail(CorruptDataError, f"{what} lead {self.label}: LeadSampleSize {size} "
                     "(only 2-byte samples are written by MUSE)", field="LeadSampleSize")
        if upb is None or not upb > 0:
            ctx.deviation(f"{what} lead {self.label}: LeadAmplitudeUnitsPerBit missing or "
                          "not positive; 1 assumed", field="LeadAmplitudeUnitsPerBit")
            upb = 1.0
        self.units_per_bit = float(upb)
        unit = (unit or "").strip() or "MICROVOLTS"
        self.units = _UNITS.get(unit.upper(), unit)
        self.samples = count if isinstance(count, int) and count >= 0 else None
        self.bytes = nbytes if isinstance(nbytes, int) and nbytes >= 0 else None
        self.crc = crc if isinstance(crc, int) else None


def _decode_lead(lead: _Lead, what: str, ctx: DecodeContext, content: _Content) -> np.ndarray:
    """A lead's samples: its base64 as the scan decoded it (a row of the content's
    table), or its ``WaveFormData`` text decoded here."""
    if lead.data.__class__ is int:
        offset, produced, status, _, crc = content.table[lead.data]
        assert content.data is not None
        raw = content.data[offset:offset + produced]
        skipped = 0  # the scan leaves texts holding more than base64 to the parser
    else:
        status, raw, skipped = _k.decode_base64((lead.data or "").encode("ascii",
                                                                           errors="replace"))
        crc = None
    if status != _k.STATUS_OK:
        ctx.fail(CorruptDataError, f"{what} lead {lead.label}: WaveFormData is not base64 ("
                 + ("one character past the last group of four" if status == _k.STATUS_BAD_VALUE
                    else "incorrect padding") + ")", field="WaveFormData")
    computed = None if lead.crc is None else zlib.crc32(raw.data) if crc is None else crc
    # a matching CRC-32 vouches for the text; otherwise say what base64 skipped
    if computed != lead.crc or computed is None:
        if skipped:
            ctx.deviation(f"{what} lead {lead.label}: WaveFormData holds characters outside "
                          "base64; they were skipped", cls=CorruptDataError,
                          field="WaveFormData")
        if computed is not None:
            ctx.deviation(f"{what} lead {lead.label}: CRC-32 mismatch (stored {lead.crc}, "
                          f"computed {computed})", cls=ChecksumError, field="LeadDataCRC32")
    expected = lead.samples if lead.samples is not None else (
        lead.bytes // 2 if lead.bytes is not None else len(raw) // 2)
    if lead.bytes is not None and lead.samples is not None and lead.bytes != 2 * lead.samples:
        ctx.deviation(f"{what} lead {lead.label}: LeadByteCountTotal {lead.bytes} is not twice "
                      f"LeadSampleCountTotal {lead.samples}", field="LeadByteCountTotal")
    have = len(raw) // 2
    if have < expected:
        ctx.deviation(f"{what} lead {lead.label}: {have} samples stored, "
                      f"LeadSampleCountTotal says {expected}; read as stored",
                      cls=TruncatedError, field="WaveFormData")
        expected = have
    elif have > expected or len(raw) % 2:
        ctx.deviation(f"{what} lead {lead.label}: {len(raw)} bytes stored for {expected} "
                      "samples; the rest is ignored", field="WaveFormData")
    return raw[:2 * expected].view(_INT16)


_INT16 = np.dtype("<i2")


class _Waveform:
    """One ``Waveform`` element: its type, rate, filters and leads.

    A waveform whose leads the scan decoded and every check passes is read in one
    kernel call (``clean``: labels, scales, units, sample views, output reserved,
    the leads' span in the decoded bytes); any other is read lead by lead
    (``leads``, each finding reported as it is met)."""

    def __init__(self, values: dict[str, Any], leads: list[list[Any]],
                 ctx: DecodeContext, content: _Content) -> None:
        self.kind = values.get("WaveformType") or "unknown"
        base = values.get("SampleBase")
        exponent = values.get("SampleExponent") or 0
        what = f"{self.kind} waveform"
        rate = float(base) * 10.0 ** exponent if base is not None and isinstance(
            exponent, int) and abs(exponent) <= 6 else 0.0
        if not 1e-3 <= rate <= 1e6:
            ctx.fail(HeaderError, f"{what}: SampleBase {base!r} x 10^{exponent!r} is not a "
                     "sampling rate", field="SampleBase")
        self.rate = rate
        self.filters = {"high_pass_0.01hz": values.get("HighPassFilter"),
                        "low_pass_hz": values.get("LowPassFilter"),
                        "ac_filter_hz": values.get("ACFilter")}
        self.sample_type = values.get("SampleType") or None
        self.clean = None if content.data is None else _k.clean_leads(
            leads, content.table, content.data, _UNITS)
        if self.clean is not None:
            self.labels, self.scales, self.units = self.clean[:3]
            self.leads: list[_Lead] = []
        else:
            self.leads = [_Lead(fields, i, what, ctx) for i, fields in enumerate(leads)]
            self.labels = [lead.label for lead in self.leads]
            self.scales = [lead.units_per_bit for lead in self.leads]
            self.units = [lead.units for lead in self.leads]
        declared = values.get("NumberofLeads")
        if isinstance(declared, int) and declared != len(leads):
            ctx.deviation(f"{what}: NumberofLeads {declared} but {len(leads)} LeadData",
                          field="NumberofLeads")

    def decode(self, ctx: DecodeContext, content: _Content) -> list[np.ndarray]:
        what = f"{self.kind} waveform"
        if self.clean is not None:
            ctx.reserve_output(self.clean[4], what)
            return self.clean[3]  # type: ignore[no-any-return]
        # a text's size is that of the text in the file
        sizes = [content.table[lead.data][3] if lead.data.__class__ is int
                 else len(lead.data or "") for lead in self.leads]
        ctx.reserve_output(sum(size * 3 // 4 for size in sizes), what)
        return [_decode_lead(lead, what, ctx, content) for lead in self.leads]


def _waveforms(content: _Content, ctx: DecodeContext) -> tuple[_Waveform, _Waveform | None]:
    found = [_Waveform(values, leads, ctx, content) for values, leads in content.waveforms]
    rhythm: list[_Waveform] = []
    median: list[_Waveform] = []
    for waveform in found:
        kind = waveform.kind.lower()
        if kind == "rhythm":
            rhythm.append(waveform)
        elif kind == "median":
            median.append(waveform)
    if not rhythm:
        ctx.fail(HeaderError, "the file has no Rhythm waveform (only "
                 f"{', '.join(w.kind for w in found) or 'no waveform'})", field="Waveform")
    if len(rhythm) > 1:
        ctx.deviation(f"{len(rhythm)} Rhythm waveforms; the first is read", field="Waveform")
    return rhythm[0], (median[0] if median else None)


# --------------------------------------------------------------------------- the format


def _checked_root(root: Any, ctx: DecodeContext) -> Any:
    if _xml.local_name(root) != "RestingECG" or "}" in root.tag:
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not RestingECG",
                 field="RestingECG")
    return root


def _format_detail(content: _Content) -> str:
    version = content.version()
    return f"GE MUSE XML {version}" if version else "GE MUSE XML"


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one MUSE XML export."""
    content = _parse(data, ctx)
    metadata, start, acquisition = _metadata(content, ctx)
    rhythm, median = _waveforms(content, ctx)
    arrays = rhythm.decode(ctx, content)
    labels, scales, units = rhythm.labels, rhythm.scales, rhythm.units
    signals = cast("list[Signal]", new_signals(labels, rhythm.rate, arrays, scales, 0.0, units))
    extras: dict[str, Any] = {"acquisition": acquisition, "filters": rhythm.filters}
    if "I" in labels and "II" in labels:
        first = len(labels) - 1 - labels[::-1].index("I")  # the last of a label, as a dict keeps
        second = len(labels) - 1 - labels[::-1].index("II")
        if scales[first] == scales[second] and units[first] == units[second]:
            scale, unit = scales[first] / 2, units[first]
            # III, aVR, aVL, aVF in half units (exact integers): the rows of one int32
            # block computed in one kernel pass
            block = _k.derive_limb_leads(arrays[first].view(np.uint8),
                                         arrays[second].view(np.uint8))
            formulas: dict[str, str] = {}
            for label, formula in DERIVED_LEADS:
                if label not in labels:
                    formulas[label] = formula
            ctx.reserve_output(block.itemsize * block.shape[1] * len(formulas),
                               "derived leads")
            for row, (label, formula) in enumerate(DERIVED_LEADS):
                if label in formulas:
                    signals.append(cast(Signal, new_signal(
                        label, rhythm.rate, block[row], scale, 0.0, unit, derivation=formula)))
            extras["derived_leads"] = formulas
        else:
            ctx.warn("leads I and II have different scales; III, aVR, aVL, aVF not derived")
    if median is not None:
        beats = median.decode(ctx, content)
        if beats and len({len(b) for b in beats}) == 1 and \
                len(set(zip(median.scales, median.units))) == 1:
            span = None if median.clean is None else median.clean[5]
            if span is not None:  # the leads' bytes follow one another: a view of them
                assert content.data is not None
                block = content.data[span[0]:span[1]].view(_INT16).reshape(len(beats), -1)
            else:  # one join of a few kB (numpy's concatenation hands the GIL over per lead)
                block = np.frombuffer(b"".join([beat.data for beat in beats]),
                                      dtype=_INT16).reshape(len(beats), -1)
            block = block.astype(np.int16, copy=False)
            block.flags.writeable = False
            extras["median_beats"] = RepresentativeBeats(
                tuple(median.labels), median.rate, block, tuple(median.scales),
                (0.0,) * len(beats), median.units[0], "median")
        elif beats:
            ctx.warn("the median leads differ in length or scale; median beats left out")
    for key, raw in zip(("global_measurements", "original_measurements"),
                        content.measurements):
        found = _measurements(raw)
        if found is not None:
            extras[key] = found
    status = (acquisition.get("status") or "").upper()
    confirmed = _statements(content.statements[0],
                            "confirmed" if status == "CONFIRMED" else "original")
    if confirmed is not None:
        extras["interpretation"] = confirmed
    original = _statements(content.statements[1], "original")
    if original is not None:
        extras["original_interpretation"] = original
    if content.qrs is not None:
        extras["qrs_times"] = _k.keyed(content.qrs, QRS_KEYS)
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail=_format_detail(content),
                  signals=signals, start_time=start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)



def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts: the rhythm leads (stored and derived) without decoding samples."""
    content = _parse(data, ctx, samples=False)
    metadata, start, _ = _metadata(content, ctx)
    rhythm, _ = _waveforms(content, ctx)
    infos = [SignalInfo(lead.label, rhythm.rate, lead.samples or 0, lead.units, "int16")
             for lead in rhythm.leads]
    labels = {lead.label for lead in rhythm.leads}
    if {"I", "II"} <= labels:
        n = min(info.samples for info in infos if info.label in ("I", "II"))
        unit = next(lead.units for lead in rhythm.leads if lead.label == "I")
        infos += [SignalInfo(label, rhythm.rate, n, unit, "int32")
                  for label, _ in DERIVED_LEADS if label not in labels]
    return RecordInfo(ctx.name, FORMAT_NAME, _format_detail(content), tuple(infos), start,
                      metadata, 0, (ctx.path or ctx.name,), tuple(ctx.warnings))


class MuseFormat(_xml.XmlFormat):
    """GE MUSE RestingECG XML exports."""

    name = FORMAT_NAME
    root = "RestingECG"
    namespaces = (None,)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)


FORMAT = MuseFormat()
