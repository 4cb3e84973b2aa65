"""DICOM waveform objects: 12-lead, General and Ambulatory ECG (and the other
waveform storage classes).

``pydicom`` parses the data set (any transfer syntax it reads: explicit or
implicit VR, deflated, missing group lengths); ``WaveformData`` of every
multiplex group is split into channel rows with NumPy, one vectorised copy
per group. Detection needs no pydicom: a Part 10 file's ``DICM`` marker and
the SOP class in its file meta information.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
import struct
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ..errors import CorruptDataError, EcgIngestError, HeaderError, TruncatedError
from ..readings import global_measurements, interpretation
from ..record import Annotation, Metadata, Record, RecordInfo, Signal, SignalInfo, new_signal
from ._base import DecodeContext, Probe, SingleFileFormat, require
from .scp import LEAD_NAMES as _SCP_LEAD_NAMES

__all__ = ["FORMAT", "WAVEFORM_SOP_CLASS_PREFIX", "SOP_CLASS_NAMES", "WaveformGroup",
           "sniff", "sop_class_of", "decode", "inspect", "lead_name"]

_FMT = "dicom"

WAVEFORM_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
"""Every waveform storage SOP class UID starts with this."""

SOP_CLASS_NAMES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.4": "General 32-bit ECG",
    "1.2.840.10008.5.1.4.1.1.9.2.1": "Hemodynamic",
    "1.2.840.10008.5.1.4.1.1.9.3.1": "Cardiac Electrophysiology",
    "1.2.840.10008.5.1.4.1.1.9.4.1": "Basic Voice Audio",
    "1.2.840.10008.5.1.4.1.1.9.4.2": "General Audio",
    "1.2.840.10008.5.1.4.1.1.9.5.1": "Arterial Pulse",
    "1.2.840.10008.5.1.4.1.1.9.6.1": "Respiratory",
    "1.2.840.10008.5.1.4.1.1.9.6.2": "Multi-channel Respiratory",
    "1.2.840.10008.5.1.4.1.1.9.7.1": "Routine Scalp EEG",
    "1.2.840.10008.5.1.4.1.1.9.7.2": "EMG",
    "1.2.840.10008.5.1.4.1.1.9.7.3": "EOG",
    "1.2.840.10008.5.1.4.1.1.9.7.4": "Sleep EEG",
    "1.2.840.10008.5.1.4.1.1.9.8.1": "Body Position",
}

_PREAMBLE = 128
_WAVEFORM_SEQUENCE = 0x54000100

# WaveformSampleInterpretation -> (bytes per sample, NumPy kind) of the stored values
_INTERPRETATIONS: dict[str, tuple[int, str]] = {
    "SB": (1, "i"), "UB": (1, "u"), "MB": (1, "mu-law"), "AB": (1, "a-law"),
    "SS": (2, "i"), "US": (2, "u"), "SL": (4, "i"), "UL": (4, "u"),
}


# ---------------------------------------------------------------- detection

def sop_class_of(head: bytes) -> str | None:
    """The Media Storage SOP Class UID (0002,0002) of a Part 10 file's meta
    information (always explicit VR little endian), or None when absent."""
    pos = _PREAMBLE + 4
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            return None
        vr = head[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL",
                  b"OV", b"SV", b"UV"):
            if pos + 12 > len(head):
                return None
            (length,) = struct.unpack_from("<I", head, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            start = pos + 8
        if element == 0x0002:
            return head[start:start + length].rstrip(b"\0 ").decode("ascii", "replace")
        if length == 0xFFFFFFFF:
            return None
        pos = start + length
    return None


def sniff(probe: Probe) -> bool:
    """A Part 10 file (``DICM`` after the 128-byte preamble) whose SOP class is a
    waveform storage class, or that names no SOP class (the decoder decides)."""
    head = probe.head(_PREAMBLE + 4)
    if len(head) < _PREAMBLE + 4 or head[_PREAMBLE:] != b"DICM":
        return False
    uid = sop_class_of(probe.head(4096))
    return uid is None or uid.startswith(WAVEFORM_SOP_CLASS_PREFIX)


def skip_reason(probe: Probe) -> str | None:
    """Why a DICOM file that is not a waveform object is no record (an image)."""
    marker = probe.head(_PREAMBLE + 4)  # the marker first: most files are not DICOM
    if len(marker) < _PREAMBLE + 4 or marker[_PREAMBLE:] != b"DICM":
        return None
    uid = sop_class_of(probe.head(4096))
    if uid is None or uid.startswith(WAVEFORM_SOP_CLASS_PREFIX):
        return None
    return (f"DICOM file without waveforms (SOP class {uid}): an image or other object, "
            "not an ECG")


# ---------------------------------------------------------------- values

def lead_name(scheme: str | None, code: str | None, meaning: str | None,
              label: str | None = None) -> str:
    """A channel's lead name: the SCP-ECG lead number of an ``SCPECG`` 5.6.3-9-n or
    ``MDC`` 2:n code, else the channel label, else the code meaning."""
    number = None
    code = (code or "").strip()
    if scheme in ("SCPECG", "SCPECG_LEAD") and code.startswith("5.6.3-9-"):
        number = code[len("5.6.3-9-"):]
    elif scheme == "MDC" and code.startswith("2:"):
        number = code[2:]
    if number is not None and number.isdigit() and 0 < int(number) < len(_SCP_LEAD_NAMES):
        return _SCP_LEAD_NAMES[int(number)]
    return (label or "").strip() or (meaning or "").strip() or (code or "unknown")


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    """µ-law and A-law code -> linear value (ITU-T G.711), as int16."""
    mu = np.empty(256, np.int16)
    alaw = np.empty(256, np.int16)
    for byte in range(256):
        u = ~byte & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        mu[byte] = (0x84 - t) if u & 0x80 else (t - 0x84)
        a = byte ^ 0x55
        seg = (a & 0x70) >> 4
        v = (a & 0x0F) << 4
        v = v + 8 if seg == 0 else (v + 0x108) << (seg - 1)
        alaw[byte] = v if a & 0x80 else -v
    return mu, alaw


_G711: tuple[np.ndarray, np.ndarray] | None = None

_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?"
                 r"([+-]\d{4})?$")


def _offset(text: str | None) -> dt.timezone | None:
    if not text or not re.fullmatch(r"[+-]\d{4}", text.strip()):
        return None
    text = text.strip()
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    if minutes >= 24 * 60:
        return None
    return dt.timezone(dt.timedelta(minutes=-minutes if text[0] == "-" else minutes))


def _datetime(text: str, zone: dt.timezone | None) -> dt.datetime | None:
    m = _DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        value = dt.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0),
                            int(s or 0), int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None
    zone = _offset(tz) or zone
    return value.replace(tzinfo=zone) if zone is not None else value


def _date(text: Any) -> dt.date | None:
    text = str(text or "").strip()
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"})
_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}

ATTRIBUTES: dict[str, tuple[int, str]] = {
    "AccessionNumber": (0x00080050, "SH"),
    "AcquisitionDateTime": (0x0008002A, "DT"),
    "AnnotationGroupNumber": (0x0040A180, "US"),
    "ChannelBaseline": (0x003A0213, "DS"),
    "ChannelDefinitionSequence": (0x003A0200, "SQ"),
    "ChannelLabel": (0x003A0203, "SH"),
    "ChannelSensitivity": (0x003A0210, "DS"),
    "ChannelSensitivityCorrectionFactor": (0x003A0212, "DS"),
    "ChannelSensitivityUnitsSequence": (0x003A0211, "SQ"),
    "ChannelSourceSequence": (0x003A0208, "SQ"),
    "CodeMeaning": (0x00080104, "LO"),
    "CodeValue": (0x00080100, "SH"),
    "CodingSchemeDesignator": (0x00080102, "SH"),
    "ConceptNameCodeSequence": (0x0040A043, "SQ"),
    "ContentDate": (0x00080023, "DA"),
    "ContentTime": (0x00080033, "TM"),
    "DeviceSerialNumber": (0x00181000, "LO"),
    "FilterHighFrequency": (0x003A0221, "DS"),
    "FilterLowFrequency": (0x003A0220, "DS"),
    "InstitutionName": (0x00080080, "LO"),
    "Manufacturer": (0x00080070, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "MeasurementUnitsCodeSequence": (0x004008EA, "SQ"),
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "MultiplexGroupLabel": (0x003A0020, "SH"),
    "MultiplexGroupTimeOffset": (0x00181068, "DS"),
    "NotchFilterFrequency": (0x003A0222, "DS"),
    "NumberOfWaveformChannels": (0x003A0005, "US"),
    "NumberOfWaveformSamples": (0x003A0010, "UL"),
    "NumericValue": (0x0040A30A, "DS"),
    "PatientAge": (0x00101010, "AS"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientID": (0x00100020, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientSex": (0x00100040, "CS"),
    "PatientSize": (0x00101020, "DS"),
    "PatientWeight": (0x00101030, "DS"),
    "ReferencedSamplePositions": (0x0040A132, "UL"),
    "ReferencedTimeOffsets": (0x0040A138, "DS"),
    "ReferencedWaveformChannels": (0x0040A0B0, "US"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "SamplingFrequency": (0x003A001A, "DS"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SoftwareVersions": (0x00181020, "LO"),
    "StationName": (0x00081010, "SH"),
    "StudyDate": (0x00080020, "DA"),
    "StudyDescription": (0x00081030, "LO"),
    "StudyID": (0x00200010, "SH"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "StudyTime": (0x00080030, "TM"),
    "TemporalRangeType": (0x0040A130, "CS"),
    "TimezoneOffsetFromUTC": (0x00080201, "SH"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "UnformattedTextValue": (0x00700006, "ST"),
    "WaveformAnnotationSequence": (0x0040B020, "SQ"),
    "WaveformBitsAllocated": (0x54001004, "US"),
    "WaveformData": (0x54001010, "OW"),
    "WaveformOriginality": (0x003A0004, "CS"),
    "WaveformPaddingValue": (0x5400100A, "OW"),
    "WaveformSampleInterpretation": (0x54001006, "CS"),
    "WaveformSequence": (0x54000100, "SQ"),
}
"""Tag and dictionary VR of every attribute read (the VR names implicit-VR values)."""


_RAW: tuple[type, ...] = (tuple,)
"""pydicom's RawDataElement (an element it has not converted) is a named tuple."""

_BY_TAG: dict[int, tuple[str, str]] = {tag: (keyword, vr)
                                       for keyword, (tag, vr) in ATTRIBUTES.items()}


class _Elements:
    """One parsed data set's values of the attributes read, taken from the raw bytes.

    pydicom parses the structure (tags, lengths, nested sequences) but converts a
    value only when it is accessed, through its keyword lookup, value validation and
    a Python object per value; that conversion cost more than the parse. The values
    read here are ASCII text (numbers, codes, labels), little- or big-endian integers
    and raw sample bytes, which need none of that work: one pass over a data set's
    elements converts the ones read, and only those. Anything else (text beyond
    ASCII, a sequence of defined length, an ambiguous VR) is left to pydicom.
    """

    __slots__ = ("values",)

    def __init__(self, dataset: Any) -> None:
        values: dict[str, Any] = {}
        if dataset is not None:
            for tag, element in dataset.items():
                known = _BY_TAG.get(int(tag))
                if known is None:
                    continue
                keyword, vr = known
                if isinstance(element, _RAW):  # pydicom has not converted it
                    raw_element: Any = element  # (not the bare tuple it narrows to)
                    raw, raw_vr = raw_element.value, raw_element.VR
                    if raw_vr and raw_vr != "UN":
                        vr = raw_vr
                    if (vr in _TEXT_VRS and raw is not None and raw.isascii()
                            and b"\x1b" not in raw):  # the common case, inline
                        text = raw.decode("ascii").strip(" \0")
                        values[keyword] = ([part.strip(" \0") for part in text.split("\\")]
                                           if "\\" in text else text)
                        continue
                values[keyword] = _value(dataset, element, vr)
        self.values = values

    def get(self, keyword: str) -> Any:
        return self.values.get(keyword)


def _value(dataset: Any, element: Any, vr: str) -> Any:
    """An element's value: a list of ``_Elements`` for a sequence, text, numbers or
    bytes (``vr`` is the dictionary's, for implicit-VR elements)."""
    if not isinstance(element, _RAW):  # a DataElement: pydicom converted it
        value = element.value
        return [_Elements(item) for item in value] if vr == "SQ" and value else value
    raw_element: Any = element  # (not the bare tuple it narrows to)
    raw = raw_element.value
    if raw is None:
        return None
    raw_vr = raw_element.VR
    if raw_vr and raw_vr != "UN":
        vr = raw_vr
    if vr in ("OB", "OW", "OB or OW"):
        return raw
    if vr in _TEXT_VRS and raw.isascii() and b"\x1b" not in raw:
        text = raw.decode("ascii").strip(" \0")
        if "\\" in text:
            return [part.strip(" \0") for part in text.split("\\")]
        return text
    code = _BINARY_VRS.get(vr)
    if code is not None:
        size = struct.calcsize(code)
        if len(raw) % size == 0:
            numbers = struct.unpack(f"{'<' if raw_element.is_little_endian else '>'}"
                                    f"{len(raw) // size}{code}", raw)
            return numbers[0] if len(numbers) == 1 else list(numbers)
    value = dataset[raw_element.tag].value  # pydicom converts what is not plain
    if vr == "SQ":
        return [_Elements(item) for item in value or ()]
    return value


_NO_ELEMENTS = _Elements(None)


def _person(text: str) -> tuple[str, str]:
    """(family, given) of a person name in its alphabetic form ``family^given^...``."""
    parts = text.split("=", 1)[0].split("^")
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def _str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _float(item: _Elements, keyword: str, default: float) -> float:
    value = item.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number):
        raise HeaderError(f"{keyword} is not a finite number: {value!r}", format=_FMT,
                          field=keyword)
    return number


def _values(item: _Elements, keyword: str) -> list[Any]:
    """A multi-valued element as a list (a lone value comes as a scalar)."""
    value = item.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    return list(value)


def _code(item: _Elements, keyword: str) -> tuple[str | None, str | None, str | None]:
    """(scheme, value, meaning) of the first item of a code sequence."""
    seq = item.get(keyword)
    if not seq:
        return None, None, None
    code = seq[0]
    return (_str(code.get("CodingSchemeDesignator")), _str(code.get("CodeValue")),
            _str(code.get("CodeMeaning")))


# ---------------------------------------------------------------- groups

@dataclass(frozen=True)
class WaveformGroup:
    """One multiplex group: channels sharing a rate (rhythm, median beat, ...)."""

    index: int
    label: str | None
    originality: str | None
    sample_rate: float
    time_offset_ms: float
    signals: tuple[Signal, ...]
    filters: tuple[dict[str, float | None], ...]
    """Per channel: ``low_hz``, ``high_hz``, ``notch_hz`` as stored (None: absent)."""


@dataclass(frozen=True)
class _GroupPlan:
    index: int
    item: Any
    channels: int
    samples: int
    width: int
    kind: str
    rate: float
    labels: list[str]
    scaling: list[tuple[float, float, str]]
    padding: int | None


def _plan_group(index: int, item: Any, big_endian: bool,
                ctx: DecodeContext) -> _GroupPlan | None:
    where = f"multiplex group {index + 1}"
    channels = int(item.get("NumberOfWaveformChannels") or 0)
    samples = int(item.get("NumberOfWaveformSamples") or 0)
    rate = _float(item, "SamplingFrequency", 0.0)
    bits = int(item.get("WaveformBitsAllocated") or 0)
    interpretation = _str(item.get("WaveformSampleInterpretation")) or ""
    if channels <= 0 or samples < 0:
        ctx.deviation(f"{where} declares {channels} channels and {samples} samples; "
                      "left out", field="NumberOfWaveformChannels")
        return None
    if not rate > 0 or not np.isfinite(rate):
        ctx.fail(HeaderError, f"{where}: sampling frequency is {rate}",
                 field="SamplingFrequency")
    if interpretation not in _INTERPRETATIONS:
        ctx.fail(HeaderError, f"{where}: sample interpretation {interpretation!r} is not one "
                 "DICOM defines for waveforms (SB, UB, MB, AB, SS, US, SL, UL)",
                 field="WaveformSampleInterpretation")
    width, kind = _INTERPRETATIONS[interpretation]
    if bits != width * 8:
        ctx.deviation(f"{where}: {bits} bits allocated for {interpretation} samples; read as "
                      f"{width * 8}-bit", field="WaveformBitsAllocated")
    definitions = list(item.get("ChannelDefinitionSequence") or [])
    if len(definitions) != channels:
        ctx.deviation(f"{where} has {len(definitions)} channel definitions for {channels} "
                      "channels; the missing ones are unscaled",
                      field="ChannelDefinitionSequence")
    labels, scaling = [], []
    for ch in range(channels):
        definition = definitions[ch] if ch < len(definitions) else _NO_ELEMENTS
        scheme, code, meaning = _code(definition, "ChannelSourceSequence")
        labels.append(lead_name(scheme, code, meaning, _str(definition.get("ChannelLabel")))
                      if definition else f"channel {ch + 1}")
        sensitivity = _float(definition, "ChannelSensitivity", 1.0)
        correction = _float(definition, "ChannelSensitivityCorrectionFactor", 1.0)
        baseline = _float(definition, "ChannelBaseline", 0.0)
        _, unit, _ = _code(definition, "ChannelSensitivityUnitsSequence")
        scaling.append((sensitivity * correction, baseline, unit or ""))
    padding = item.get("WaveformPaddingValue")
    pad_value: int | None = None
    if isinstance(padding, (bytes, bytearray)) and len(padding) >= width and kind in "iu":
        pad_value = int(np.frombuffer(bytes(padding[:width]), _dtype(width, kind,
                                                                     big_endian))[0])
    return _GroupPlan(index, item, channels, samples, width, kind, rate, labels, scaling,
                      pad_value)


def _dtype(width: int, kind: str, big_endian: bool) -> np.dtype:
    if kind not in ("i", "u"):
        return np.dtype(np.uint8)
    return np.dtype(f"{'>' if big_endian else '<'}{kind}{width}")


def _decode_group(plan: _GroupPlan, big_endian: bool, ctx: DecodeContext) -> np.ndarray:
    """The group's stored values as a (channels, samples) array, one row per channel."""
    where = f"multiplex group {plan.index + 1}"
    raw = plan.item.get("WaveformData")
    raw = b"" if raw is None else raw
    if not isinstance(raw, (bytes, bytearray)):
        ctx.fail(CorruptDataError, f"{where}: WaveformData is not binary", field="WaveformData")
    frame = plan.channels * plan.width
    present = len(raw) // frame
    samples = plan.samples
    if present < samples:
        ctx.deviation(f"{where} declares {samples} samples per channel but WaveformData "
                      f"holds {present}; read those", cls=TruncatedError, field="WaveformData")
        samples = present
    stored = _dtype(plan.width, plan.kind, big_endian)
    out_dtype = np.dtype(np.int16) if plan.kind in ("mu-law", "a-law") else \
        stored.newbyteorder("=")
    ctx.reserve_output(samples * plan.channels * out_dtype.itemsize, f"{where} samples")
    values = np.frombuffer(raw, dtype=stored, count=samples * plan.channels)
    frames = values.reshape(samples, plan.channels)
    if plan.kind in ("mu-law", "a-law"):
        global _G711
        if _G711 is None:
            _G711 = _g711_tables()
        table = _G711[0] if plan.kind == "mu-law" else _G711[1]
        return np.ascontiguousarray(table[frames.T])
    block = np.empty((plan.channels, samples), dtype=out_dtype)
    block[...] = frames.T  # one vectorised transposing copy, byte order made native
    return block


# ---------------------------------------------------------------- what pydicom says

class _Heard(threading.local):
    """What pydicom said on this thread during the DICOM read running on it
    (None: no read runs here)."""

    messages: list[str] | None = None


_HEARD = _Heard()


class _OnReadingThread:
    """The message pattern of a warnings filter that matches only on a thread
    reading a DICOM file, and keeps what it matched for that read.

    pydicom reports a damaged file with ``warnings.warn`` (and its ``pydicom``
    logger). ``warnings.catch_warnings`` swaps process-wide state and is not
    thread-safe before Python 3.14; this filter stays installed and decides per
    thread, so pydicom's warnings on other threads (a program's own use of
    pydicom) pass untouched.
    """

    def match(self, text: str) -> bool:
        messages = _HEARD.messages
        if messages is None:
            return False
        if not messages or messages[-1] != text:  # the log record came first
            messages.append(text)
        return True


class _LogRouter(logging.Filter):
    """Keeps pydicom's log records of a read on its thread for that read's record
    (a warning already seen and ignored once is not warned again, but is logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        messages = _HEARD.messages
        if messages is None or record.levelno < logging.WARNING:
            return True
        messages.append(record.getMessage())
        return False


_WARNING_FILTER = ("ignore", _OnReadingThread(), UserWarning, None, 0)
_LOG_ROUTER = _LogRouter()
_INSTALL = threading.Lock()


def _install_routes() -> None:
    """Put the thread-aware filter first among the warning filters (a
    ``catch_warnings`` block restores the list it found, dropping it) and on
    pydicom's logger."""
    filters = warnings.filters
    if filters and filters[0] is _WARNING_FILTER:
        return
    with _INSTALL:
        filters = cast("list[Any]", warnings.filters)
        while _WARNING_FILTER in filters:
            filters.remove(_WARNING_FILTER)
        filters.insert(0, _WARNING_FILTER)
        mutated = getattr(warnings, "_filters_mutated", None)  # what filterwarnings calls:
        if mutated is not None:  # registries of warnings already shown are consulted anew
            mutated()
        logger = logging.getLogger("pydicom")
        if _LOG_ROUTER not in logger.filters:
            logger.addFilter(_LOG_ROUTER)


def _report_heard(ctx: DecodeContext) -> None:
    """What pydicom said so far becomes a deviation of the record: a warning on
    it, or in strict mode a ``CorruptDataError`` quoting pydicom."""
    messages = _HEARD.messages
    if not messages:
        return
    said = list(dict.fromkeys(messages))
    messages.clear()
    for message in said:
        ctx.deviation(f"pydicom: {message}", cls=CorruptDataError)


# ---------------------------------------------------------------- data set

class _MemoryFile:
    """A read-only file over a memoryview, for pydicom (which reads through
    read/seek/tell only): ``io.BytesIO`` would copy the whole view first."""

    __slots__ = ("_view", "_pos")

    def __init__(self, view: memoryview) -> None:
        self._view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        start = self._pos
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        if end <= start:
            return b""
        self._pos = end
        return bytes(self._view[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            offset += len(self._view)
        elif whence != 0:
            raise ValueError(f"invalid whence ({whence})")
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """Nothing to release: the view belongs to the caller."""


def _source(data: bytes | memoryview) -> io.BytesIO | _MemoryFile:
    """A file object over *data* without copying it (``BytesIO`` shares bytes)."""
    if isinstance(data, memoryview):
        return _MemoryFile(data)
    return io.BytesIO(data)


def _parse(data: bytes | memoryview, ctx: DecodeContext) -> tuple[Any, _Elements, Any]:
    """The data set, its top-level elements and the waveform sequence (whose
    structure is parsed here, so that a damaged one fails as a parse error)."""
    pydicom = require("pydicom", format=_FMT, extra="dicom")
    try:
        ds = pydicom.dcmread(_source(data), force=False)
        top = _Elements(ds)
        sequence = top.get("WaveformSequence")
    except EcgIngestError:
        raise
    except Exception as exc:
        cls = TruncatedError if isinstance(exc, EOFError) else CorruptDataError
        ctx.fail(cls, f"the DICOM data set cannot be parsed ({type(exc).__name__}: {exc})")
    return ds, top, sequence


def _big_endian(ds: Any) -> bool:
    encoding = getattr(ds, "original_encoding", None)
    if encoding and encoding[1] is not None:
        return not encoding[1]
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return syntax == "1.2.840.10008.1.2.2"


def _metadata(ds: _Elements, ctx: DecodeContext) -> tuple[Metadata, dt.datetime | None]:
    zone = _offset(_str(ds.get("TimezoneOffsetFromUTC")))
    start = None
    for text in (_str(ds.get("AcquisitionDateTime")),
                 " ".join(filter(None, (_str(ds.get("ContentDate")),
                                        _str(ds.get("ContentTime"))))).replace(" ", "")):
        if text:
            start = _datetime(text, zone)
            if start is None:
                ctx.warn(f"acquisition date/time {text!r} is not a DICOM date-time; ignored")
            else:
                break
    fields: dict[str, Any] = {}
    name = ds.get("PatientName")
    if isinstance(name, list):
        name = name[0] if name else None
    if name:
        family, given = _person(str(name))
        fields["patient_last_name"] = _str(family)
        fields["patient_first_name"] = _str(given)
    fields["patient_id"] = _str(ds.get("PatientID"))
    fields["patient_gender"] = {"M": "MALE", "F": "FEMALE", "O": "UNDIFFERENTIATED"}.get(
        (_str(ds.get("PatientSex")) or "").upper())
    fields["patient_birth_date"] = _date(ds.get("PatientBirthDate"))
    age = _str(ds.get("PatientAge"))
    if age and re.fullmatch(r"\d{3}[DWMY]", age):
        fields["patient_age"] = int(age[:3]) if age[3] == "Y" else 0
    for keyword, name, factor in (("PatientSize", "patient_height", 100),
                                  ("PatientWeight", "patient_weight", 1000)):
        try:
            value = _float(ds, keyword, 0.0)
        except HeaderError:
            ctx.warn(f"{keyword} is not a number; ignored")
            continue
        if 0 < value * factor < 1e9:
            fields[name] = round(value * factor)  # m -> cm, kg -> g
    fields["investigation_id"] = _str(ds.get("AccessionNumber")) or _str(ds.get("StudyID"))
    fields["device_id"] = _str(ds.get("ManufacturerModelName")) or _str(ds.get("Manufacturer"))
    if start is not None and start.tzinfo is not None:
        fields["recording_start_time"] = start.astimezone(dt.timezone.utc)
        offset = start.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 1
        if minutes % 60 == 0 and -12 * 60 <= minutes <= 14 * 60:
            hours = -minutes // 60  # Etc/GMT names invert the sign
            fields["recording_time_zone"] = "Etc/GMT" if hours == 0 else f"Etc/GMT{hours:+d}"
    return Metadata(**{k: v for k, v in fields.items() if v is not None}), start


MEASUREMENT_CODES: dict[str, str] = {
    "SCPECG:5.10.2.5-1": "ventricular_rate_bpm",
    "SCPECG:5.10.2.1-3": "rr_interval_ms",
    "SCPECG:5.10.2.1-5": "pp_interval_ms",
    "SCPECG:5.13.5-7": "pr_interval_ms",
    "SCPECG:5.13.5-9": "qrs_duration_ms",
    "SCPECG:5.13.5-11": "qt_interval_ms",
    "SCPECG:5.10.2.5-5": "qtc_ms",
    "SCPECG:5.10.3-11": "p_axis_deg",
    "SCPECG:5.10.3-13": "qrs_axis_deg",
    "SCPECG:5.10.3-15": "t_axis_deg",
}
"""Concept codes (SCP-ECG coding scheme) of the shared measurement keys."""


def _global_measurements(measurements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The first single value of each shared key; a device's placeholder 0 for an interval
    it did not measure (PP, PR in atrial fibrillation) is kept: the file states it."""
    values: dict[str, Any] = {}
    vendor: dict[str, Any] = {}
    for m in measurements:
        if not isinstance(m["value"], float):
            continue
        key = MEASUREMENT_CODES.get(m["code"] or "")
        if key is not None:
            values.setdefault(key, m["value"])
        vendor.setdefault(m["name"] or m["code"], m["value"])
    return global_measurements(values, vendor)


def _annotations(ds: _Elements, groups: Sequence[_GroupPlan], ctx: DecodeContext
                 ) -> tuple[list[Annotation], list[dict[str, Any]], list[str]]:
    """WaveformAnnotationSequence: timed annotations, measurements, statements."""
    items = list(ds.get("WaveformAnnotationSequence") or [])
    ctx.check_count(len(items), "max_annotations", "waveform annotations")
    rates = {g.index + 1: g.rate for g in groups}
    annotations: list[Annotation] = []
    measurements: list[dict[str, Any]] = []
    statements: list[str] = []
    for item in items:
        text = _str(item.get("UnformattedTextValue"))
        scheme, code, meaning = _code(item, "ConceptNameCodeSequence")
        numbers = _numbers(_values(item, "NumericValue"), ctx, "NumericValue")
        _, unit, _ = _code(item, "MeasurementUnitsCodeSequence")
        channels = [int(v) for v in _values(item, "ReferencedWaveformChannels")]
        positions = [int(v) for v in _values(item, "ReferencedSamplePositions")]
        offsets = _numbers(_values(item, "ReferencedTimeOffsets"), ctx,
                           "ReferencedTimeOffsets")
        range_type = _str(item.get("TemporalRangeType"))
        group = int(item.get("AnnotationGroupNumber") or 0)
        if text is not None and meaning is None and not numbers:
            statements.append(text)
        if meaning is not None or numbers:
            measurements.append({
                "name": meaning, "code": f"{scheme}:{code}" if code else None,
                "value": numbers[0] if len(numbers) == 1 else (numbers or None),
                "unit": unit, "text": text, "temporal_range_type": range_type,
                "sample_positions": positions or None, "time_offsets_ms": offsets or None,
                "channels": channels or None, "annotation_group": group or None})
        # a position needs the rate of its multiplex group (the first referenced channel's)
        rate = rates.get(channels[0]) if channels else None
        onsets = [(p - 1) / rate for p in positions] if rate else [t / 1000 for t in offsets]
        if onsets:
            label = text or meaning or code or ""
            if range_type == "SEGMENT" and len(onsets) >= 2:
                annotations.append(Annotation(onsets[0], onsets[1] - onsets[0], label))
            else:
                annotations.extend(Annotation(o, None, label) for o in onsets)
    return annotations, measurements, statements


def _numbers(values: list[Any], ctx: DecodeContext, keyword: str) -> list[float]:
    """Decimal strings of an annotation as floats; ones that are not numbers dropped."""
    out = []
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            ctx.warn(f"annotation {keyword} {value!r} is not a number; left out")
            continue
        out.append(number)
    return out


def _rhythm_index(plans: Sequence[_GroupPlan]) -> int:
    """The record's signals: the first ORIGINAL or RHYTHM group, else the first."""
    for i, plan in enumerate(plans):
        label = (_str(plan.item.get("MultiplexGroupLabel")) or "").upper()
        if _str(plan.item.get("WaveformOriginality")) == "ORIGINAL" or "RHYTHM" in label:
            return i
    return 0


def _read(data: bytes | memoryview, ctx: DecodeContext, samples: bool) -> Any:
    dataset, ds, sequence = _parse(data, ctx)
    _report_heard(ctx)
    meta = getattr(dataset, "file_meta", None)
    sop = _str(ds.get("SOPClassUID")) or (
        _str(_Elements(meta).get("MediaStorageSOPClassUID")) if meta is not None else None)
    if not sequence:
        what = SOP_CLASS_NAMES.get(sop or "", sop or "no SOP class")
        ctx.fail(HeaderError, f"DICOM file without waveforms ({what}): not an ECG",
                 field="WaveformSequence")
    big = _big_endian(dataset)
    plans = [p for i, item in enumerate(sequence)
             if (p := _plan_group(i, item, big, ctx)) is not None]
    if not plans:
        ctx.fail(HeaderError, "no multiplex group holds channels", field="WaveformSequence")
    metadata, start = _metadata(ds, ctx)
    detail = f"DICOM {SOP_CLASS_NAMES.get(sop or '', 'waveform')} Waveform"
    rhythm = _rhythm_index(plans)
    if not samples:
        plan = plans[rhythm]
        info = tuple(SignalInfo(label, plan.rate, plan.samples, unit)
                     for label, (_, _, unit) in zip(plan.labels, plan.scaling))
        count = len(_annotations(ds, plans, ctx)[0])
        _report_heard(ctx)
        return RecordInfo(ctx.name, _FMT, detail, info, start, metadata, count,
                          (ctx.path or ctx.name,), tuple(ctx.warnings))
    groups = []
    for plan in plans:
        block = _decode_group(plan, big, ctx)
        signals = tuple(cast(Signal, new_signal(label, plan.rate, block[i], scale, offset,
                                                unit, plan.padding))
                        for i, (label, (scale, offset, unit)) in
                        enumerate(zip(plan.labels, plan.scaling)))
        definitions = list(plan.item.get("ChannelDefinitionSequence") or [])
        filters = tuple({"low_hz": _opt_float(d, "FilterLowFrequency"),
                         "high_hz": _opt_float(d, "FilterHighFrequency"),
                         "notch_hz": _opt_float(d, "NotchFilterFrequency")}
                        for d in definitions[:plan.channels])
        groups.append(WaveformGroup(
            plan.index, _str(plan.item.get("MultiplexGroupLabel")),
            _str(plan.item.get("WaveformOriginality")), plan.rate,
            _float(plan.item, "MultiplexGroupTimeOffset", 0.0), signals, filters))
    annotations, measurements, statements = _annotations(ds, plans, ctx)
    main = groups[rhythm]
    extras: dict[str, Any] = {
        "sop_class_uid": sop,
        "waveform_groups": tuple(groups),
        "filters": main.filters,
        "measurements": measurements,
        "global_measurements": _global_measurements(measurements),
        "interpretation": interpretation(statements, confirmation=None),
        "device": {k: _str(ds.get(k)) for k in (
            "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
            "DeviceSerialNumber", "InstitutionName", "StationName")},
        "study": {k: _str(ds.get(k)) for k in (
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyDate",
            "StudyTime", "StudyDescription", "AccessionNumber", "ReferringPhysicianName")},
    }
    _report_heard(ctx)
    return Record(name=ctx.name, format=_FMT, format_detail=detail, signals=list(main.signals),
                  start_time=start, metadata=metadata, annotations=annotations,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


def _opt_float(item: Any, keyword: str) -> float | None:
    value = item.get(keyword)
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None  # a filter setting that is not a number is as good as absent


def _guard(data: bytes | memoryview, ctx: DecodeContext, samples: bool) -> Any:
    """pydicom reads values lazily: a malformed element can fail late, with any error.
    What pydicom says about the file meanwhile is the record's, not the program's."""
    _install_routes()
    outer = _HEARD.messages
    _HEARD.messages = []
    try:
        return _read(data, ctx, samples)
    except EcgIngestError:
        raise
    except Exception as exc:
        ctx.fail(CorruptDataError, f"a DICOM element cannot be read ({type(exc).__name__}: "
                 f"{exc})")
    finally:
        _HEARD.messages = outer


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record: the rhythm group's channels as signals, every group in
    ``extras['waveform_groups']``, annotations, measurements and statements."""
    return cast(Record, _guard(data, ctx, True))


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts: the data set is parsed, the waveform samples are not split."""
    return cast(RecordInfo, _guard(data, ctx, False))


class DicomFormat(SingleFileFormat):
    """DICOM waveform storage objects (Part 10 files)."""

    name = _FMT
    takes_bytes = True  # pydicom reads through io.BytesIO
    marker = (_PREAMBLE, b"D")  # "DICM" after the preamble

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)

    def skip_reason(self, probe: Probe) -> str | None:
        return skip_reason(probe)


FORMAT = DicomFormat()
