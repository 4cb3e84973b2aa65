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
from ..errors import ChecksumError, CorruptDataError, EcgIngestError, HeaderError, TruncatedError
from ..readings import global_measurements
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo
from . import _xml
from ._base import DecodeContext, Probe
from ._xml import RepresentativeBeats, parse_number, signal

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


PLAIN_BLOCKS = (b"MuseInfo", b"PatientDemographics", b"TestDemographics",
                b"RestingECGMeasurements", b"OriginalRestingECGMeasurements",
                b"DiagnosisStatement", b"QRS", b"Order")
"""Elements of flat values read by the byte scan with the ``LeadData`` blocks (when
every one of them is plain markup), so the XML parser builds no element per value
(``Order``, the order's details, is not read: the scan only spares the parser its
values)."""

_PLAIN_TAGS = frozenset(name.decode("ascii") for name in PLAIN_BLOCKS)


def _children(element: Any, payloads: _Payloads | None) -> list[tuple[str, str]]:
    """``(tag, text)`` of every child element in file order: from the byte scan where it
    read the element (see :data:`PLAIN_BLOCKS`), else from the tree."""
    if payloads is not None and payloads.plain and element.tag in _PLAIN_TAGS:
        pairs = payloads.pairs(element.text)
        if pairs is not None:
            return pairs
    return [(item.tag, item.text or "") for item in element]


def _fields(element: Any, payloads: _Payloads | None = None) -> dict[str, str]:
    """Tag -> stripped text of every child element (the first of each tag), in one pass.

    MUSE uses no namespaces, so a child's tag is its name; a block of values
    (``PatientDemographics``, ``QRS``) is read through this rather than one
    search of the children per value.
    """
    out: dict[str, str] = {}
    if element is not None:
        for tag, text in _children(element, payloads):
            if tag not in out:
                out[tag] = text.strip()
    return out


class _Document:
    """The root's children by tag (the first of each) and its ``Waveform`` elements,
    found in one pass over the root, and the byte scan's payloads (or None)."""

    __slots__ = ("blocks", "waveforms", "payloads")

    def __init__(self, root: Any, payloads: _Payloads | None = None) -> None:
        self.payloads = payloads
        blocks: dict[str, Any] = {}
        waveforms: list[Any] = []
        for item in root:
            tag = item.tag
            if tag == "Waveform":
                waveforms.append(item)
            elif tag not in blocks:
                blocks[tag] = item
        self.blocks, self.waveforms = blocks, waveforms

    def version(self) -> str | None:
        return _fields(self.blocks.get("MuseInfo"), self.payloads).get("MuseVersion") or None


def _metadata(document: _Document, ctx: DecodeContext) -> tuple[Metadata, dt.datetime | None,
                                                               dict[str, Any]]:
    patient = _fields(document.blocks.get("PatientDemographics"), document.payloads)
    test = _fields(document.blocks.get("TestDemographics"), document.payloads)
    fields: dict[str, Any] = {
        "patient_id": patient.get("PatientID") or None,
        "patient_first_name": patient.get("PatientFirstName") or None,
        "patient_last_name": patient.get("PatientLastName") or None,
        "patient_gender": _GENDERS.get(patient.get("Gender", "").upper()),
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
    acquisition = {key: test.get(element) for key, element in _ACQUISITION}
    acquisition["race"] = patient.get("Race")
    acquisition["muse_version"] = document.version()
    acquisition = {k: v for k, v in acquisition.items() if v}
    return (Metadata(**{k: v for k, v in fields.items() if v is not None}), start,
            acquisition)


_ACQUISITION = (("site", "SiteName"), ("site_id", "Site"), ("location", "LocationName"),
                ("cart_number", "CartNumber"),
                ("acquisition_software", "AcquisitionSoftwareVersion"),
                ("analysis_software", "AnalysisSoftwareVersion"), ("status", "Status"),
                ("data_type", "DataType"))
"""``extras["acquisition"]`` key -> TestDemographics element."""


def _measurements(element: Any, payloads: _Payloads | None) -> dict[str, Any] | None:
    """One ``*RestingECGMeasurements`` block: the shared keys, plus every value as named."""
    if element is None:
        return None
    raw: dict[str, str] = {}
    for tag, text in _children(element, payloads):  # the last of a name wins
        raw[tag.rpartition("}")[2] if "}" in tag else tag] = text.strip()
    return global_measurements({key: parse_number(raw.get(name))
                                for name, key in MEASUREMENT_KEYS.items() if name in raw}, raw)


def _statements(element: Any, confirmation: str, payloads: _Payloads | None
                ) -> dict[str, Any] | None:
    """``DiagnosisStatement`` lines: texts join until one carries ``StmtFlag`` ENDSLINE."""
    if element is None:
        return None
    lines: list[str] = []
    parts: list[str] = []
    for statement in element:
        if statement.tag != "DiagnosisStatement":
            continue
        text: str | None = None
        ends = False
        for tag, value in _children(statement, payloads):
            if tag == "StmtText":
                if text is None:  # the first StmtText
                    text = value.strip()
            elif tag == "StmtFlag" and value.strip().upper() == "ENDSLINE":
                ends = True
        text = text or ""
        if parts and text and text[0] not in ",.;:)" and not parts[-1].endswith(" "):
            parts.append(" ")
        parts.append(text)
        if ends:
            lines.append("".join(parts).strip())
            parts = []
    if parts:
        lines.append("".join(parts).strip())
    return {"confirmation": confirmation, "datetime": None,
            "statements": [{"sequence": i + 1, "text": t} for i, t in enumerate(lines)]}


# --------------------------------------------------------------------------- waveforms


_LEAD_FIELDS = frozenset({
    "LeadID", "LeadSampleCountTotal", "LeadByteCountTotal", "LeadSampleSize",
    "LeadAmplitudeUnitsPerBit", "LeadAmplitudeUnits", "LeadDataCRC32", "WaveFormData"})
"""The ``LeadData`` elements read (the others' texts are never fetched)."""


class _Payloads:
    """The ``LeadData`` elements of a document, read from its bytes, and their base64
    texts decoded there.

    They are most of a MUSE export (~120 KB of ~140 KB: each lead's fields and
    its base64): the XML parser is given the document with each one's content
    replaced by a marker (``#0``, ``#1`` ...), and :class:`_Waveform` takes a
    marked lead's fields from here. The scan reads only the plainest markup and
    a document with anything else is parsed whole (see ``lead_blocks``), so what
    a lead reads is what the parser would have given; base64 texts must hold only
    base64 and whitespace (checked when decoding them), like any text the parser
    would hand over unchanged, line ends aside (which base64 skips).
    """

    __slots__ = ("fields", "data", "table", "sizes", "plain")

    def __init__(self, fields: list[Any], data: np.ndarray, table: np.ndarray,
                 spans: np.ndarray, plain: bool) -> None:
        self.fields = fields
        self.plain = plain
        self.data = data
        self.table = table.tolist()
        self.sizes = (spans[:, 1] - spans[:, 0]).tolist()

    @staticmethod
    def _index(text: str | None, count: int) -> int | None:
        if text is None or text[:1] != "#" or not text[1:].isdigit():
            return None
        index = int(text[1:])
        return index if index < count else None

    def _marked(self, text: str | None, kind: type) -> Any:
        """What a marker text stands for, when it is of ``kind`` (None otherwise)."""
        index = self._index(text, len(self.fields))
        found = None if index is None else self.fields[index]
        return found if isinstance(found, kind) else None

    def lead(self, text: str | None) -> dict[str, str] | None:
        """The fields of the lead a ``LeadData`` text marks, or None."""
        return cast("dict[str, str] | None", self._marked(text, dict))

    def pairs(self, text: str | None) -> list[tuple[str, str]] | None:
        """The children of the plain block a text marks, or None."""
        return cast("list[tuple[str, str]] | None", self._marked(text, list))

    def index(self, text: str | None) -> int | None:
        """The base64 text a lead's ``WaveFormData`` marks, or None for a text of the file."""
        return self._index(text, len(self.table))

    def get(self, index: int) -> tuple[int, np.ndarray, int, int]:
        """``(status, bytes, skipped, crc)``: as ``decode_base64`` gives them, and the
        bytes' CRC-32 (computed with the decode, without the GIL)."""
        offset, produced, status, skipped, crc = self.table[index]
        return status, self.data[offset:offset + produced], skipped, crc


def _parse(data: bytes | memoryview, ctx: DecodeContext) -> tuple[Any, _Payloads | None]:
    """The root element, parsed without the ``LeadData`` contents where a byte scan reads
    them all (see :class:`_Payloads`), else the whole document as :func:`_xml.parse` does.

    What the parser is given differs from the file only inside those elements, so
    it checks the rest of the document as strictly; a document it refuses is
    parsed whole again, for the same error (and line numbers) as without the scan.
    """
    raw = _xml.as_bytes(data)
    plain = _xml.ascii_compatible(raw)
    scanned = _k.lead_blocks(raw, PLAIN_BLOCKS) if plain else None
    if scanned is None and plain:  # a plain block holds other markup: the leads alone
        plain = False
        scanned = _k.lead_blocks(raw)
    if scanned is None or not len(scanned[0]):
        return _xml.parse(raw, ctx), None
    blocks, fields, spans = scanned
    decoded, table = _k.decode_spans(raw, spans)
    payloads = _Payloads(fields, decoded, table, spans, plain)
    if any(row[3] for row in payloads.table):  # a text holds more than base64: the parser reads it
        return _xml.parse(raw, ctx), None
    pieces: list[bytes | memoryview] = []
    view, at = memoryview(raw), 0
    for index, (start, end) in enumerate(blocks.tolist()):
        pieces += (view[at:start], b"#%d" % index)
        at = end
    pieces.append(view[at:])
    try:
        root = _xml.parse(b"".join(pieces), ctx)
    except EcgIngestError:
        return _xml.parse(raw, ctx), None
    return root, payloads


def _lead_fields(element: Any) -> dict[str, str]:
    """The raw texts of the ``LeadData`` children read (the first of each)."""
    values: dict[str, str] = {}
    for item in element:
        tag = item.tag
        if tag in _LEAD_FIELDS and tag not in values:
            values[tag] = item.text or ""
    return values


class _Lead:
    __slots__ = ("label", "samples", "units_per_bit", "units", "data", "crc", "bytes")

    def __init__(self, values: dict[str, str], index: int, what: str,
                 ctx: DecodeContext) -> None:
        self.label = values.get("LeadID", "").strip() or f"lead {index + 1}"
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
        unit = values.get("LeadAmplitudeUnits", "").strip() or "MICROVOLTS"
        self.units = _UNITS.get(unit.upper(), unit)
        self.samples = count if isinstance(count, int) and count >= 0 else None
        self.bytes = nbytes if isinstance(nbytes, int) and nbytes >= 0 else None
        crc = parse_number(values.get("LeadDataCRC32"))
        self.crc = crc if isinstance(crc, int) else None
        self.data = values.get("WaveFormData")


def _decode_lead(lead: _Lead, what: str, ctx: DecodeContext, payloads: _Payloads | None,
                 index: int | None) -> np.ndarray:
    """A lead's samples: its ``WaveFormData`` text decoded, or payload ``index`` of
    ``payloads`` where the text is a marker."""
    if payloads is None or index is None:
        status, raw, skipped = _k.decode_base64((lead.data or "").encode("ascii",
                                                                           errors="replace"))
        crc: int | None = None
    else:
        status, raw, skipped, crc = payloads.get(index)
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
    """One ``Waveform`` element: its type, rate, filters and leads (samples undecoded)."""

    def __init__(self, element: Any, ctx: DecodeContext, payloads: _Payloads | None) -> None:
        values: dict[str, str] = {}
        lead_fields: list[dict[str, str]] = []
        for item in element:
            tag = item.tag
            if tag == "LeadData":
                marked = None if payloads is None else payloads.lead(item.text)
                lead_fields.append(_lead_fields(item) if marked is None else marked)
            elif tag not in values:
                values[tag] = (item.text or "").strip()
        self.kind = values.get("WaveformType") or "unknown"
        base = parse_number(values.get("SampleBase") or None)
        exponent = parse_number(values.get("SampleExponent") or None) or 0
        what = f"{self.kind} waveform"
        rate = float(base) * 10.0 ** exponent if base is not None and isinstance(
            exponent, int) and abs(exponent) <= 6 else 0.0
        if not 1e-3 <= rate <= 1e6:
            ctx.fail(HeaderError, f"{what}: SampleBase {base!r} x 10^{exponent!r} is not a "
                     "sampling rate", field="SampleBase")
        self.rate = rate
        self.filters = {key: parse_number(values.get(name) or None) for key, name in (
            ("high_pass_0.01hz", "HighPassFilter"), ("low_pass_hz", "LowPassFilter"),
            ("ac_filter_hz", "ACFilter"))}
        self.sample_type = values.get("SampleType") or None
        self.leads = [_Lead(fields, i, what, ctx) for i, fields in enumerate(lead_fields)]
        declared = parse_number(values.get("NumberofLeads") or None)
        if isinstance(declared, int) and declared != len(self.leads):
            ctx.deviation(f"{what}: NumberofLeads {declared} but {len(self.leads)} LeadData",
                          field="NumberofLeads")

    def decode(self, ctx: DecodeContext, payloads: _Payloads | None) -> list[np.ndarray]:
        what = f"{self.kind} waveform"
        if payloads is None:
            indexes: list[int | None] = [None] * len(self.leads)
            sizes = [len(lead.data or "") for lead in self.leads]
        else:  # a marker's size is that of the text in the file
            indexes = [payloads.index(lead.data) for lead in self.leads]
            sizes = [len(lead.data or "") if index is None else payloads.sizes[index]
                     for lead, index in zip(self.leads, indexes)]
        ctx.reserve_output(sum(size * 3 // 4 for size in sizes), what)
        return [_decode_lead(lead, what, ctx, payloads, index)
                for lead, index in zip(self.leads, indexes)]


def _waveforms(document: _Document, ctx: DecodeContext, payloads: _Payloads | None = None
               ) -> tuple[_Waveform, _Waveform | None]:
    found = [_Waveform(item, ctx, payloads) for item in document.waveforms]
    rhythm = [w for w in found if w.kind.lower() == "rhythm"]
    median = [w for w in found if w.kind.lower() == "median"]
    if not rhythm:
        ctx.fail(HeaderError, "the file has no Rhythm waveform (only "
                 f"{', '.join(w.kind for w in found) or 'no waveform'})", field="Waveform")
    if len(rhythm) > 1:
        ctx.deviation(f"{len(rhythm)} Rhythm waveforms; the first is read", field="Waveform")
    return rhythm[0], (median[0] if median else None)


def _derived(first: np.ndarray, second: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """III, aVR, aVL, aVF in half units (exact integers) from I and II (little-endian
    int16), as the rows of one int32 block computed in one kernel pass (numpy's
    whole-array steps handed the GIL over once each)."""
    block = _k.derive_limb_leads(first.view(np.uint8), second.view(np.uint8))
    return [(label, block[row]) for row, (label, _) in enumerate(DERIVED_LEADS)]


# --------------------------------------------------------------------------- the format


def _root(data: bytes | memoryview, ctx: DecodeContext) -> Any:
    return _checked_root(_xml.parse(data, ctx), ctx)


def _checked_root(root: Any, ctx: DecodeContext) -> Any:
    if _xml.local_name(root) != "RestingECG" or "}" in root.tag:
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not RestingECG",
                 field="RestingECG")
    return root


def _format_detail(document: _Document) -> str:
    version = document.version()
    return f"GE MUSE XML {version}" if version else "GE MUSE XML"


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one MUSE XML export."""
    root, payloads = _parse(data, ctx)
    document = _Document(_checked_root(root, ctx), payloads)
    metadata, start, acquisition = _metadata(document, ctx)
    rhythm, median = _waveforms(document, ctx, payloads)
    arrays = rhythm.decode(ctx, payloads)
    signals = [signal(lead.label, rhythm.rate, values, lead.units_per_bit, 0.0, lead.units)
               for lead, values in zip(rhythm.leads, arrays)]
    extras: dict[str, Any] = {"acquisition": acquisition, "filters": rhythm.filters}
    by_label = {lead.label: (lead, values) for lead, values in zip(rhythm.leads, arrays)}
    if "I" in by_label and "II" in by_label:
        lead_i, lead_ii = by_label["I"][0], by_label["II"][0]
        if lead_i.units_per_bit == lead_ii.units_per_bit and lead_i.units == lead_ii.units:
            present = {s.label for s in signals}
            derived = [(label, values) for label, values in _derived(
                by_label["I"][1], by_label["II"][1]) if label not in present]
            ctx.reserve_output(sum(v.nbytes for _, v in derived), "derived leads")
            signals += [Signal(label, rhythm.rate, values, lead_i.units_per_bit / 2, 0.0,
                               lead_i.units, derivation=_FORMULAS[label])
                        for label, values in derived]
            names = {d for d, _ in derived}
            extras["derived_leads"] = {label: formula for label, formula in DERIVED_LEADS
                                       if label in names}
        else:
            ctx.warn("leads I and II have different scales; III, aVR, aVL, aVF not derived")
    if median is not None:
        beats = median.decode(ctx, payloads)
        if beats and len({len(b) for b in beats}) == 1 and \
                len({(lead.units_per_bit, lead.units) for lead in median.leads}) == 1:
            # one join of a few kB (numpy's concatenation hands the GIL over per lead)
            block = np.frombuffer(b"".join([beat.data for beat in beats]), dtype=_INT16).astype(
                np.int16, copy=False).reshape(len(beats), -1)
            block.flags.writeable = False
            extras["median_beats"] = RepresentativeBeats(
                tuple(lead.label for lead in median.leads), median.rate, block,
                tuple(lead.units_per_bit for lead in median.leads),
                tuple(0.0 for _ in median.leads), median.leads[0].units, "median")
        elif beats:
            ctx.warn("the median leads differ in length or scale; median beats left out")
    blocks = document.blocks
    for key, name in (("global_measurements", "RestingECGMeasurements"),
                      ("original_measurements", "OriginalRestingECGMeasurements")):
        found = _measurements(blocks.get(name), payloads)
        if found is not None:
            extras[key] = found
    status = (acquisition.get("status") or "").upper()
    confirmed = _statements(blocks.get("Diagnosis"),
                            "confirmed" if status == "CONFIRMED" else "original", payloads)
    if confirmed is not None:
        extras["interpretation"] = confirmed
    original = _statements(blocks.get("OriginalDiagnosis"), "original", payloads)
    if original is not None:
        extras["original_interpretation"] = original
    qrs = blocks.get("QRSTimesTypes")
    if qrs is not None:
        extras["qrs_times"] = [{"number": parse_number(values.get("Number") or None),
                                "type": parse_number(values.get("Type") or None),
                                "time": parse_number(values.get("Time") or None)}
                               for values in (_fields(q, payloads) for q in qrs
                                              if q.tag == "QRS")]
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail=_format_detail(document),
                  signals=signals, start_time=start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


_FORMULAS = dict(DERIVED_LEADS)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts: the rhythm leads (stored and derived) without decoding samples."""
    document = _Document(_root(data, ctx))
    metadata, start, _ = _metadata(document, ctx)
    rhythm, _ = _waveforms(document, ctx)
    infos = [SignalInfo(lead.label, rhythm.rate, lead.samples or 0, lead.units, "int16")
             for lead in rhythm.leads]
    labels = {lead.label for lead in rhythm.leads}
    if {"I", "II"} <= labels:
        n = min(info.samples for info in infos if info.label in ("I", "II"))
        unit = next(lead.units for lead in rhythm.leads if lead.label == "I")
        infos += [SignalInfo(label, rhythm.rate, n, unit, "int32")
                  for label, _ in DERIVED_LEADS if label not in labels]
    return RecordInfo(ctx.name, FORMAT_NAME, _format_detail(document), tuple(infos), start,
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
