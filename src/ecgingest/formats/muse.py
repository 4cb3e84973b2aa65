"""GE MUSE XML (``RestingECG`` exports, MUSE 7-9).

The rhythm waveform's stored leads (I, II, V1-V6) become the record's
signals as stored, followed by III, aVR, aVL and aVF derived from I and II
(``extras["derived_leads"]`` names them and their formulas). The median beats
are kept as ``extras["median_beats"]``, measurements and the interpretation
(confirmed and original) in the extra-readings model SCP-ECG uses. Samples
are base64 little-endian int16, decoded in C (``binascii``, ``numpy``); each
lead's CRC-32 is checked.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import zlib
from typing import Any

import numpy as np

from ..errors import ChecksumError, CorruptDataError, HeaderError, TruncatedError
from ..readings import global_measurements
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo
from . import _xml
from ._base import DecodeContext, Probe
from ._xml import RepresentativeBeats, child, child_text, children, parse_number, signal

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

# Derived digital values are in half units (exact integers): 2 x the formula.
_DERIVED_TWICE = {"III": (-2, 2), "aVR": (-1, -1), "aVL": (2, -1), "aVF": (-1, 2)}

_UNITS = {"MICROVOLTS": "uV", "MILLIVOLTS": "mV", "VOLTS": "V"}
_GENDERS = {"MALE": "MALE", "FEMALE": "FEMALE"}
_DATE = re.compile(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"

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


def _metadata(root: Any, ctx: DecodeContext) -> tuple[Metadata, dt.datetime | None,
                                                       dict[str, Any]]:
    patient = child(root, "PatientDemographics")
    test = child(root, "TestDemographics")
    fields: dict[str, Any] = {
        "patient_id": child_text(patient, "PatientID"),
        "patient_first_name": child_text(patient, "PatientFirstName"),
        "patient_last_name": child_text(patient, "PatientLastName"),
        "patient_gender": _GENDERS.get((child_text(patient, "Gender") or "").upper()),
        "patient_birth_date": _date(child_text(patient, "DateofBirth"), ctx, "DateofBirth"),
        "device_id": child_text(test, "AcquisitionDevice"),
    }
    age, unit = parse_number(child_text(patient, "PatientAge")), child_text(patient, "AgeUnits")
    if isinstance(age, int) and age >= 0 and (unit or "YEARS").upper() == "YEARS":
        fields["patient_age"] = age
    height = parse_number(child_text(patient, "HeightCM"))
    if height is not None and height > 0:
        fields["patient_height"] = round(height)
    weight = parse_number(child_text(patient, "WeightKG"))
    if weight is not None and weight > 0:
        fields["patient_weight"] = round(weight * 1000)
    date = _date(child_text(test, "AcquisitionDate"), ctx, "AcquisitionDate")
    time = _time(child_text(test, "AcquisitionTime"), ctx, "AcquisitionTime")
    start = _xml.combine_date_time(date, time)
    acquisition = {key: child_text(test, element) for key, element in (
        ("site", "SiteName"), ("site_id", "Site"), ("location", "LocationName"),
        ("cart_number", "CartNumber"), ("acquisition_software", "AcquisitionSoftwareVersion"),
        ("analysis_software", "AnalysisSoftwareVersion"), ("status", "Status"),
        ("data_type", "DataType"))}
    acquisition["race"] = child_text(patient, "Race")
    acquisition["muse_version"] = child_text(root, "MuseInfo", "MuseVersion")
    acquisition = {k: v for k, v in acquisition.items() if v is not None}
    return (Metadata(**{k: v for k, v in fields.items() if v is not None}), start,
            acquisition)


def _measurements(element: Any) -> dict[str, Any] | None:
    """One ``*RestingECGMeasurements`` block: the shared keys, plus every value as named."""
    if element is None:
        return None
    raw = {local: (item.text or "").strip() for item in element
           if (local := _xml.local_name(item))}
    return global_measurements({key: parse_number(raw.get(name))
                                for name, key in MEASUREMENT_KEYS.items() if name in raw}, raw)


def _statements(element: Any, confirmation: str) -> dict[str, Any] | None:
    """``DiagnosisStatement`` lines: texts join until one carries ``StmtFlag`` ENDSLINE."""
    if element is None:
        return None
    lines: list[str] = []
    parts: list[str] = []
    for statement in children(element, "DiagnosisStatement"):
        text = child_text(statement, "StmtText") or ""
        if parts and text and text[0] not in ",.;:)" and not parts[-1].endswith(" "):
            parts.append(" ")
        parts.append(text)
        flags = {(f.text or "").strip().upper() for f in children(statement, "StmtFlag")}
        if "ENDSLINE" in flags:
            lines.append("".join(parts).strip())
            parts = []
    if parts:
        lines.append("".join(parts).strip())
    return {"confirmation": confirmation, "datetime": None,
            "statements": [{"sequence": i + 1, "text": t} for i, t in enumerate(lines)]}


# --------------------------------------------------------------------------- waveforms


class _Lead:
    __slots__ = ("label", "samples", "units_per_bit", "units", "data", "crc", "bytes")

    def __init__(self, element: Any, index: int, what: str, ctx: DecodeContext) -> None:
        values = _xml.texts(element)
        self.label = values.get("LeadID") or f"lead {index + 1}"
        count = parse_number(values.get("LeadSampleCountTotal"))
        nbytes = parse_number(values.get("LeadByteCountTotal"))
        size = parse_number(values.get("LeadSampleSize"))
        if size not in (None, 2):
            ctx.fail(CorruptDataError, f"{what} lead {self.label}: LeadSampleSize {size} "
                     "(only 2-byte samples are written by MUSE)", field="LeadSampleSize")
        upb = parse_number(values.get("LeadAmplitudeUnitsPerBit"))
        if upb is None or not upb > 0:
            ctx.deviation(f"{what} lead {self.label}: LeadAmplitudeUnitsPerBit missing or "
                          "not positive; 1 assumed", field="LeadAmplitudeUnitsPerBit")
            upb = 1.0
        self.units_per_bit = float(upb)
        unit = values.get("LeadAmplitudeUnits") or "MICROVOLTS"
        self.units = _UNITS.get(unit.upper(), unit)
        self.samples = count if isinstance(count, int) and count >= 0 else None
        self.bytes = nbytes if isinstance(nbytes, int) and nbytes >= 0 else None
        crc = parse_number(values.get("LeadDataCRC32"))
        self.crc = crc if isinstance(crc, int) else None
        self.data = values.get("WaveFormData") if "WaveFormData" in values else None


def _decode_lead(lead: _Lead, what: str, ctx: DecodeContext) -> np.ndarray:
    text = (lead.data or "").encode("ascii", errors="replace")
    try:
        raw = binascii.a2b_base64(text)
    except binascii.Error as exc:
        ctx.fail(CorruptDataError, f"{what} lead {lead.label}: WaveFormData is not base64 "
                 f"({exc})", field="WaveFormData")
    computed = None if lead.crc is None else zlib.crc32(raw)
    # a matching CRC-32 vouches for the text; otherwise say what base64 skipped
    if computed != lead.crc or computed is None:
        if text.translate(None, _B64_ALPHABET):
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
    return np.frombuffer(raw, dtype="<i2", count=expected).astype(np.int16, copy=False)


class _Waveform:
    """One ``Waveform`` element: its type, rate, filters and leads (samples undecoded)."""

    def __init__(self, element: Any, ctx: DecodeContext) -> None:
        self.kind = child_text(element, "WaveformType") or "unknown"
        base = parse_number(child_text(element, "SampleBase"))
        exponent = parse_number(child_text(element, "SampleExponent")) or 0
        what = f"{self.kind} waveform"
        rate = float(base) * 10.0 ** exponent if base is not None and isinstance(
            exponent, int) and abs(exponent) <= 6 else 0.0
        if not 1e-3 <= rate <= 1e6:
            ctx.fail(HeaderError, f"{what}: SampleBase {base!r} x 10^{exponent!r} is not a "
                     "sampling rate", field="SampleBase")
        self.rate = rate
        self.filters = {key: parse_number(child_text(element, name)) for key, name in (
            ("high_pass_0.01hz", "HighPassFilter"), ("low_pass_hz", "LowPassFilter"),
            ("ac_filter_hz", "ACFilter"))}
        self.sample_type = child_text(element, "SampleType")
        self.leads = [_Lead(item, i, what, ctx)
                      for i, item in enumerate(children(element, "LeadData"))]
        declared = parse_number(child_text(element, "NumberofLeads"))
        if isinstance(declared, int) and declared != len(self.leads):
            ctx.deviation(f"{what}: NumberofLeads {declared} but {len(self.leads)} LeadData",
                          field="NumberofLeads")

    def decode(self, ctx: DecodeContext) -> list[np.ndarray]:
        what = f"{self.kind} waveform"
        ctx.reserve_output(sum(len(lead.data or "") * 3 // 4 for lead in self.leads), what)
        return [_decode_lead(lead, what, ctx) for lead in self.leads]


def _waveforms(root: Any, ctx: DecodeContext) -> tuple[_Waveform, _Waveform | None]:
    found = [_Waveform(item, ctx) for item in children(root, "Waveform")]
    rhythm = [w for w in found if w.kind.lower() == "rhythm"]
    median = [w for w in found if w.kind.lower() == "median"]
    if not rhythm:
        ctx.fail(HeaderError, "the file has no Rhythm waveform (only "
                 f"{', '.join(w.kind for w in found) or 'no waveform'})", field="Waveform")
    if len(rhythm) > 1:
        ctx.deviation(f"{len(rhythm)} Rhythm waveforms; the first is read", field="Waveform")
    return rhythm[0], (median[0] if median else None)


def _derived(leads: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """III, aVR, aVL, aVF in half units (exact integers) from I and II."""
    first = leads["I"].astype(np.int32)
    second = leads["II"].astype(np.int32)
    n = min(len(first), len(second))
    first, second = first[:n], second[:n]
    out = []
    for label, _ in DERIVED_LEADS:
        a, b = _DERIVED_TWICE[label]
        out.append((label, a * first + b * second))
    return out


# --------------------------------------------------------------------------- the format


def _root(data: bytes | memoryview, ctx: DecodeContext) -> Any:
    root = _xml.parse(data, ctx)
    if _xml.local_name(root) != "RestingECG" or "}" in root.tag:
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not RestingECG",
                 field="RestingECG")
    return root


def _format_detail(root: Any) -> str:
    version = child_text(root, "MuseInfo", "MuseVersion")
    return f"GE MUSE XML {version}" if version else "GE MUSE XML"


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one MUSE XML export."""
    root = _root(data, ctx)
    metadata, start, acquisition = _metadata(root, ctx)
    rhythm, median = _waveforms(root, ctx)
    arrays = rhythm.decode(ctx)
    signals = [signal(lead.label, rhythm.rate, values, lead.units_per_bit, 0.0, lead.units)
               for lead, values in zip(rhythm.leads, arrays)]
    extras: dict[str, Any] = {"acquisition": acquisition, "filters": rhythm.filters}
    by_label = {lead.label: (lead, values) for lead, values in zip(rhythm.leads, arrays)}
    if "I" in by_label and "II" in by_label:
        lead_i, lead_ii = by_label["I"][0], by_label["II"][0]
        if lead_i.units_per_bit == lead_ii.units_per_bit and lead_i.units == lead_ii.units:
            present = {s.label for s in signals}
            derived = [(label, values) for label, values in _derived(
                {"I": by_label["I"][1], "II": by_label["II"][1]}) if label not in present]
            ctx.reserve_output(sum(v.nbytes for _, v in derived), "derived leads")
            formulas = dict(DERIVED_LEADS)
            signals += [Signal(label, rhythm.rate, values, lead_i.units_per_bit / 2, 0.0,
                               lead_i.units, derivation=formulas[label])
                        for label, values in derived]
            extras["derived_leads"] = {label: formula for label, formula in DERIVED_LEADS
                                       if label in {d for d, _ in derived}}
        else:
            ctx.warn("leads I and II have different scales; III, aVR, aVL, aVF not derived")
    if median is not None:
        beats = median.decode(ctx)
        if beats and len({len(b) for b in beats}) == 1 and \
                len({(lead.units_per_bit, lead.units) for lead in median.leads}) == 1:
            block = np.vstack(beats)
            block.flags.writeable = False
            extras["median_beats"] = RepresentativeBeats(
                tuple(lead.label for lead in median.leads), median.rate, block,
                tuple(lead.units_per_bit for lead in median.leads),
                tuple(0.0 for _ in median.leads), median.leads[0].units, "median")
        elif beats:
            ctx.warn("the median leads differ in length or scale; median beats left out")
    for key, name in (("global_measurements", "RestingECGMeasurements"),
                      ("original_measurements", "OriginalRestingECGMeasurements")):
        found = _measurements(child(root, name))
        if found is not None:
            extras[key] = found
    status = (acquisition.get("status") or "").upper()
    confirmed = _statements(child(root, "Diagnosis"),
                            "confirmed" if status == "CONFIRMED" else "original")
    if confirmed is not None:
        extras["interpretation"] = confirmed
    original = _statements(child(root, "OriginalDiagnosis"), "original")
    if original is not None:
        extras["original_interpretation"] = original
    qrs = child(root, "QRSTimesTypes")
    if qrs is not None:
        extras["qrs_times"] = [{"number": parse_number(child_text(q, "Number")),
                                "type": parse_number(child_text(q, "Type")),
                                "time": parse_number(child_text(q, "Time"))}
                               for q in children(qrs, "QRS")]
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail=_format_detail(root),
                  signals=signals, start_time=start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts: the rhythm leads (stored and derived) without decoding samples."""
    root = _root(data, ctx)
    metadata, start, _ = _metadata(root, ctx)
    rhythm, _ = _waveforms(root, ctx)
    infos = [SignalInfo(lead.label, rhythm.rate, lead.samples or 0, lead.units, "int16")
             for lead in rhythm.leads]
    labels = {lead.label for lead in rhythm.leads}
    if {"I", "II"} <= labels:
        n = min(info.samples for info in infos if info.label in ("I", "II"))
        unit = next(lead.units for lead in rhythm.leads if lead.label == "I")
        infos += [SignalInfo(label, rhythm.rate, n, unit, "int32")
                  for label, _ in DERIVED_LEADS if label not in labels]
    return RecordInfo(ctx.name, FORMAT_NAME, _format_detail(root), tuple(infos), start,
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
