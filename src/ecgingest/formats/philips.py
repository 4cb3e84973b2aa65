"""Philips PageWriter / TraceMaster XML: SierraECG 1.03 and PhilipsECG 1.04, 1.04.01.

The ``parsedwaveforms`` block is base64 of XLI chunks (LZW + second
differences), decoded by ``ecgingest._ext.xli`` without the GIL; the stored
III, aVR, aVL and aVF are residuals, rebuilt here with integer arithmetic
(floor division) from I and II. Representative beats (``repbeats``) are kept
as ``extras["representative_beats"]`` at their own rate and resolution;
measurements and interpretation statements go to the extra-readings model
SCP-ECG uses.
"""

from __future__ import annotations

import binascii
import datetime as dt
from typing import Any

import numpy as np

from .._ext import xli as _k
from ..errors import CorruptDataError, HeaderError, TruncatedError, UnsupportedFeatureError
from ..readings import global_measurements
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo
from . import _xml
from ._base import DecodeContext, Probe
from ._xml import RepresentativeBeats, child, child_text, children, parse_number, signal

__all__ = ["FORMAT", "NAMESPACE", "STANDARD_LEADS", "reconstruct_limb_leads"]

FORMAT_NAME = "philips"
NAMESPACE = "http://www3.medical.philips.com"

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
"""Lead order of ``STD-12`` / ``10-WIRE`` acquisitions without ``leadlabels`` (1.03)."""

_GENDERS = {"MALE": "MALE", "FEMALE": "FEMALE"}
_MAX_LEADS = 64

#: global measurement element -> key of the shared measurement model (1.04, then 1.03 names)
MEASUREMENT_KEYS: dict[str, str] = {
    "heartrate": "ventricular_rate_bpm", "meanventrate": "ventricular_rate_bpm",
    "atrialrate": "atrial_rate_bpm",
    "print": "pr_interval_ms", "meanprint": "pr_interval_ms",
    "qrsdur": "qrs_duration_ms", "meanqrsdur": "qrs_duration_ms",
    "qtint": "qt_interval_ms", "meanqtint": "qt_interval_ms",
    "qtcb": "qtc_ms", "meanqtc": "qtc_ms",
    "pfrontaxis": "p_axis_deg", "qrsfrontaxis": "qrs_axis_deg", "tfrontaxis": "t_axis_deg",
}


def sniff(probe: Probe) -> bool:
    """Root element ``restingecgdata`` in the Philips namespace (or none), BOMs honoured."""
    return FORMAT.sniff(probe)


def reconstruct_limb_leads(leads: dict[str, np.ndarray]) -> None:
    """Rebuild III, aVR, aVL, aVF in place from their stored residuals (int32 arrays)::

        III = II - I - III'        aVR = -aVR' - floor((I + II) / 2)
        aVL = floor((I - III) / 2) - aVL'     aVF = floor((II + III) / 2) - aVF'
    """
    first, second = leads["I"], leads["II"]
    third = leads["III"]
    np.subtract(second - first, third, out=third)
    np.negative(leads["aVR"], out=leads["aVR"])
    leads["aVR"] -= (first + second) // 2
    np.subtract((first - third) // 2, leads["aVL"], out=leads["aVL"])
    np.subtract((second + third) // 2, leads["aVF"], out=leads["aVF"])


class _Header:
    """What decode and inspect need: version, rate, resolution, labels, samples, start."""

    def __init__(self, root: Any, ctx: DecodeContext) -> None:
        info = child(root, "documentinfo")
        self.doctype = child_text(info, "documenttype") or "unknown"
        self.version = child_text(info, "documentversion") or "unknown"
        if self.doctype not in ("SierraECG", "PhilipsECG"):
            ctx.deviation(f"documenttype {self.doctype!r} is neither SierraECG nor "
                          "PhilipsECG; read as PhilipsECG", field="documenttype")
        acquisition = child(root, "dataacquisition")
        signals = child(acquisition, "signalcharacteristics")
        waveforms = child(root, "waveforms")
        self.parsed = child(waveforms, "parsedwaveforms")
        self.repbeats = child(waveforms, "repbeats")
        if self.parsed is None:
            ctx.fail(HeaderError, "the file has no waveforms/parsedwaveforms element",
                     field="parsedwaveforms")
        attr = self.parsed.get
        rate = parse_number(attr("samplespersecond")) or parse_number(
            child_text(signals, "samplingrate"))
        if rate is None or not 0 < rate <= 1e6:
            ctx.fail(HeaderError, f"sampling rate {rate!r} is not usable", field="samplingrate")
        self.rate = float(rate)
        resolution = (parse_number(attr("resolution"))
                      or parse_number(child_text(signals, "resolution"))
                      or parse_number(child_text(signals, "signalresolution")))
        if resolution is None or not resolution > 0:
            ctx.deviation("no positive resolution (uV per unit); 1 assumed", field="resolution")
            resolution = 1.0
        self.resolution = float(resolution)
        duration = parse_number(attr("durationperchannel"))
        if not isinstance(duration, (int, float)) or duration < 0:
            ctx.fail(HeaderError, f"durationperchannel {attr('durationperchannel')!r} is not "
                     "a duration in ms", field="durationperchannel")
        self.samples = int(round(duration * self.rate / 1000.0))
        labels_text = attr("leadlabels")
        count = parse_number(attr("numberofleads"))
        if labels_text:
            labels = labels_text.split()
            if isinstance(count, int) and 0 <= count <= len(labels):
                labels = labels[:count]
        else:
            allocated = parse_number(child_text(signals, "numberchannelsallocated"))
            kind = (child_text(signals, "acquisitiontype") or "").upper()
            n = allocated if isinstance(allocated, int) and allocated > 0 else 12
            labels = [STANDARD_LEADS[i] if kind in ("STD-12", "10-WIRE") and i < 12
                      else f"Channel {i + 1}" for i in range(min(n, _MAX_LEADS))]
        if not labels or len(labels) > _MAX_LEADS:
            ctx.fail(HeaderError, f"{len(labels)} leads declared", field="leadlabels")
        self.labels = labels
        method = attr("compression") or attr("compressmethod") or "Uncompressed"
        if (attr("compressflag") or "").lower() == "false":
            method = "Uncompressed"
        self.compression = method
        self.encoding = attr("dataencoding") or "Base64"
        date_text, time_text = (acquisition.get("date") if acquisition is not None else None,
                                acquisition.get("time") if acquisition is not None else None)
        self.start: dt.datetime | None = None
        if date_text and time_text:
            try:
                self.start = dt.datetime.fromisoformat(f"{date_text}T{time_text}")
            except ValueError:
                ctx.deviation(f"acquisition date/time {date_text!r} {time_text!r} is not "
                              "YYYY-MM-DD HH:MM:SS; ignored", field="dataacquisition")
        machine = child(acquisition, "machine")
        self.machine = {} if machine is None else {
            "machine_id": machine.get("machineid"), "description": machine.get(
                "detaildescription"), "model": (machine.text or "").strip() or None}
        self.acquisition_type = child_text(signals, "acquisitiontype")
        self.filters = {key: self.parsed.get(key) or child_text(signals, key)
                        for key in ("hipass", "lowpass", "notchfiltered", "acsetting",
                                    "signalbandwidth") if self.parsed.get(key) or
                        child_text(signals, key)}

    @property
    def detail(self) -> str:
        return f"Philips {self.doctype} {self.version}"


def _metadata(root: Any, header: _Header, ctx: DecodeContext) -> Metadata:
    general = child(child(root, "patient"), "generalpatientdata")
    name = child(general, "name")
    fields: dict[str, Any] = {
        "patient_id": child_text(general, "patientid"),
        "patient_first_name": child_text(name, "firstname"),
        "patient_last_name": child_text(name, "lastname"),
        "patient_gender": _GENDERS.get((child_text(general, "sex") or "").upper()),
        "device_id": header.machine.get("model") or header.machine.get("machine_id"),
    }
    age = child(general, "age")
    years = parse_number(child_text(age, "years"))
    if isinstance(years, int) and years >= 0:
        fields["patient_age"] = years
    birth = child_text(age, "dateofbirth")
    if birth:
        try:
            fields["patient_birth_date"] = dt.date.fromisoformat(birth)
        except ValueError:
            ctx.deviation(f"dateofbirth {birth!r} is not YYYY-MM-DD; ignored",
                          field="dateofbirth")
    height = parse_number(child_text(general, "height", "cm"))
    if height is not None and height > 0:
        fields["patient_height"] = round(height)
    weight = parse_number(child_text(general, "weight", "kg"))
    if weight is not None and weight > 0:
        fields["patient_weight"] = round(weight * 1000)
    return Metadata(**{k: v for k, v in fields.items() if v is not None})


def _base64(text: str | None, what: str, ctx: DecodeContext) -> bytes:
    try:
        return binascii.a2b_base64((text or "").encode("ascii", errors="replace"))
    except binascii.Error as exc:
        ctx.fail(CorruptDataError, f"{what} is not base64 ({exc})", field=what)


_LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def _xli_rows(header: _Header, ctx: DecodeContext) -> list[np.ndarray]:
    """The leads of an XLI ``parsedwaveforms``: base64, chunks, residual limb leads
    (see :func:`reconstruct_limb_leads`) and each row's range in one kernel call
    without the GIL; rows that fit int16 come as int16, the others as int32."""
    nleads, nsamples = len(header.labels), header.samples
    text = header.parsed.text or ""
    ctx.reserve_output(nleads * nsamples * 4, "parsedwaveforms")
    row_of = {label: i for i, label in enumerate(header.labels)}  # the last of a label wins
    limb = [row_of[label] for label in _LIMB] if all(label in row_of for label in _LIMB) \
        else None
    (decoded, status, values, narrow, produced, kept, fits, _,
     failed) = _k.decode_waveforms(text, nleads, nsamples, limb)
    if decoded != _k.STATUS_OK:  # binascii's own words for what is wrong
        _base64(text, "parsedwaveforms", ctx)
    if status != _k.STATUS_OK:
        lead = header.labels[failed] if 0 <= failed < nleads else "?"
        ctx.check_status(status, f"XLI chunk {failed + 1} (lead {lead})",
                         field="parsedwaveforms")
    counts = produced.tolist()
    if min(counts) < nsamples:
        short = ", ".join(f"{label} ({n})" for label, n in zip(header.labels, counts)
                          if n < nsamples)
        ctx.deviation(f"XLI chunks hold fewer than the {nsamples} samples per lead "
                      f"durationperchannel gives: {short}; leads end there",
                      cls=TruncatedError, field="parsedwaveforms")
    if max(counts) > nsamples:
        ctx.warn(f"XLI chunks hold more than the {nsamples} samples per lead "
                 "durationperchannel gives; the rest is ignored")
    if limb is None:
        ctx.warn("the leads are not the standard 12; III, aVR, aVL, aVF are returned as "
                 "stored (no residual reconstruction)")
    lengths, small = kept.tolist(), fits.tolist()
    return [(narrow if small[i] else values)[i, :lengths[i]]
            for i in (row_of[label] for label in header.labels)]


def _rhythm(header: _Header, ctx: DecodeContext) -> list[np.ndarray]:
    nleads, nsamples = len(header.labels), header.samples
    if header.encoding.lower() != "base64":
        ctx.fail(UnsupportedFeatureError, f"waveform encoding {header.encoding!r} (only "
                 "Base64 is read)", field="dataencoding")
    method = header.compression.upper()
    if method == "XLI":
        return _xli_rows(header, ctx)
    raw = _base64(header.parsed.text, "parsedwaveforms", ctx)
    if method in ("UNCOMPRESSED", "NONE"):
        need = nleads * nsamples * 2
        ctx.reserve_output(need, "parsedwaveforms")
        if len(raw) < need:
            ctx.deviation(f"parsedwaveforms holds {len(raw)} bytes, {need} expected; leads "
                          "end where the data ends", cls=TruncatedError,
                          field="parsedwaveforms")
        values = np.frombuffer(raw[:len(raw) & ~1], dtype="<i2")
        return [values[i * nsamples:(i + 1) * nsamples].astype(np.int16)
                for i in range(nleads)]
    ctx.fail(UnsupportedFeatureError, f"waveform compression {header.compression!r} (XLI and "
             "uncompressed are read)", field="compression")


def _representative_beats(header: _Header, ctx: DecodeContext) -> RepresentativeBeats | None:
    element = header.repbeats
    if element is None:
        return None
    rate = parse_number(element.get("samplespersec"))
    resolution = parse_number(element.get("resolution"))
    if rate is None or not rate > 0:
        ctx.warn("repbeats without a sampling rate; left out")
        return None
    scale = float(resolution) if resolution is not None and resolution > 0 else 1.0
    beats = children(element, "repbeat")
    texts: list[str] = []
    for beat in beats:
        holder = child(beat, "waveform")  # 1.04: inside repbeat/waveform; 1.03: the repbeat
        texts.append((holder if holder is not None else beat).text or "")
    ctx.reserve_output(sum(len(text) * 3 // 4 for text in texts), "repbeats")
    # every beat's base64 in one kernel call, packed one after the other
    data, table = _k.decode_base64_rows(texts)
    labels: list[str] = []
    for beat, text, (_, _, status) in zip(beats, texts, table.tolist()):
        if status != _k.STATUS_OK:  # binascii's own words for what is wrong
            _base64(text, "repbeat", ctx)
        labels.append(beat.get("leadname") or f"lead {len(labels) + 1}")
    lengths = table[:, 1].tolist()
    if not lengths or len(set(lengths)) != 1:
        if lengths:
            ctx.warn("representative beats of differing lengths; left out")
        return None
    block = data[:sum(lengths)].view("<i2").astype(np.int16, copy=False).reshape(
        len(lengths), -1)
    block.flags.writeable = False
    return RepresentativeBeats(tuple(labels), float(rate), block, (scale,) * len(labels),
                               (0.0,) * len(labels), "uV",
                               element.get("repbeatmethod") or "representative")


def _measurements(root: Any) -> dict[str, Any] | None:
    blocks = [child(interp, name) for interp in children(child(root, "interpretations"),
                                                         "interpretation")
              for name in ("globalmeasurements", "interpretationmeasurements")]
    blocks.append(child(child(root, "measurements"), "globalmeasurements"))
    out: dict[str, Any] = {}
    vendor: dict[str, str] = {}
    for block in blocks:
        if block is None:
            continue
        for item in block:
            name = _xml.local_name(item)
            text = (item.text or "").strip()
            if not name or not text:
                continue
            vendor.setdefault(name, text)
            key = MEASUREMENT_KEYS.get(name)
            if key is not None and key not in out:
                out[key] = parse_number(text)
    if not vendor:
        return None
    return global_measurements(out, vendor)


def _interpretations(root: Any) -> list[dict[str, Any]]:
    found = []
    for interp in children(child(root, "interpretations"), "interpretation"):
        statements: list[dict[str, Any]] = []
        for statement in children(interp, "statement"):
            left = child_text(statement, "leftstatement")
            right = child_text(statement, "rightstatement")
            text = " ".join(t for t in (left, right) if t)
            if text:
                statements.append({"sequence": len(statements) + 1, "text": text,
                                   "left": left, "right": right,
                                   "code": child_text(statement, "statementcode")})
        signature = (child_text(interp, "mdsignatureline") or "").lower()
        when = None
        if interp.get("date") and interp.get("time"):
            try:
                when = dt.datetime.fromisoformat(f"{interp.get('date')}T{interp.get('time')}")
            except ValueError:
                when = None
        found.append({"confirmation": "original" if "unconfirmed" in signature or
                      not signature else "confirmed", "datetime": when,
                      "severity": child_text(interp, "severity"), "statements": statements})
    return found


def _root(data: bytes | memoryview, ctx: DecodeContext) -> Any:
    root = _xml.parse(data, ctx)
    if _xml.local_name(root) != "restingecgdata" or root.tag not in (
            f"{{{NAMESPACE}}}restingecgdata", "restingecgdata"):
        ctx.fail(HeaderError, f"the root element is {root.tag!r}, not restingecgdata",
                 field="restingecgdata")
    return root


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """The record of one Philips XML export."""
    root = _root(data, ctx)
    header = _Header(root, ctx)
    metadata = _metadata(root, header, ctx)
    rows = _rhythm(header, ctx)
    signals: list[Signal] = [signal(label, header.rate, row, header.resolution, 0.0, "uV")
                             for label, row in zip(header.labels, rows)]
    extras: dict[str, Any] = {"machine": header.machine, "filters": header.filters,
                              "acquisition_type": header.acquisition_type,
                              "compression": header.compression}
    beats = _representative_beats(header, ctx)
    if beats is not None:
        extras["representative_beats"] = beats
    measurements = _measurements(root)
    if measurements is not None:
        extras["global_measurements"] = measurements
    interpretations = _interpretations(root)
    if interpretations:
        extras["interpretation"] = interpretations[0]
        if len(interpretations) > 1:
            extras["other_interpretations"] = interpretations[1:]
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail=header.detail,
                  signals=signals, start_time=header.start, metadata=metadata,
                  sources=(ctx.path or ctx.name,), warnings=list(ctx.warnings), extras=extras)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts (lead count and length from durationperchannel) without XLI decoding."""
    root = _root(data, ctx)
    header = _Header(root, ctx)
    infos = tuple(SignalInfo(label, header.rate, header.samples, "uV")
                  for label in header.labels)
    return RecordInfo(ctx.name, FORMAT_NAME, header.detail, infos, header.start,
                      _metadata(root, header, ctx), 0, (ctx.path or ctx.name,),
                      tuple(ctx.warnings))


class PhilipsFormat(_xml.XmlFormat):
    """Philips SierraECG / PhilipsECG XML."""

    name = FORMAT_NAME
    root = "restingecgdata"
    namespaces = (NAMESPACE, None)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)


FORMAT = PhilipsFormat()
