"""Kardia recording JSON: one exported recording (single- or six-lead) as a record.

Keys are matched leniently (``mainsFrequency`` / ``mains_freq``, ``leadI`` /
``lead_I`` …) because the platform's own examples disagree. Samples come
from ``data.raw``; ``data.enhanced`` (filtered) is kept as a second signal
set on ``record.enhanced_signals``, or chosen with ``signal_set="enhanced"``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import HeaderError
from ..overrides import parse_iso_datetime
from ..record import Metadata, Record, Signal
from ._base import DecodeContext, Probe, SingleFileFormat

__all__ = ["FORMAT", "decode", "sniff", "ALGORITHM_DETERMINATIONS", "LEADS"]

FORMAT_NAME = "kardia"

ALGORITHM_DETERMINATIONS = ("normal", "afib", "unclassified", "bradycardia", "tachycardia",
                            "too_short", "too_long", "unreadable", "no_analysis")

LEADS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("I", ("leadI", "lead_I", "leadi", "lead_i", "I")),
    ("II", ("leadII", "lead_II", "leadii", "lead_ii", "II")),
    ("III", ("leadIII", "lead_III", "leadiii", "lead_iii", "III")),
    ("aVR", ("AVR", "aVR", "avr", "leadAVR", "lead_aVR", "lead_AVR")),
    ("aVL", ("AVL", "aVL", "avl", "leadAVL", "lead_aVL", "lead_AVL")),
    ("aVF", ("AVF", "aVF", "avf", "leadAVF", "lead_aVF", "lead_AVF")),
)
"""Signal label, then the key spellings accepted for it, in output order."""

_KEYS: dict[str, tuple[str, ...]] = {
    "frequency": ("frequency", "sampleRate", "sample_rate"),
    "mains": ("mainsFrequency", "mains_freq", "mains_frequency", "mainsFreq"),
    "resolution": ("amplitudeResolution", "amplitude_resolution"),
    "num_leads": ("numLeads", "num_leads"),
    "samples": ("samples",),
    "recorded_at": ("recordedAt", "recorded_at"),
    "heart_rate": ("heartRate", "heart_rate"),
    "algorithm": ("algorithmDetermination", "algorithm_determination"),
    "patient_id": ("patientID", "patientId", "patient_id"),
    "duration": ("duration",),
    "note": ("note",),
    "tags": ("tags",),
    "id": ("id",),
    "patient": ("patient",),
    "mrn": ("mrn", "MRN"),
    "dob": ("dob", "DOB", "dateOfBirth", "date_of_birth"),
    "first": ("firstname", "firstName", "first_name"),
    "last": ("lastname", "lastName", "last_name"),
    "sex": ("sex",),
}

# Distinctive keys: a document must show two groups of them in its first
# bytes to be claimed, so ordinary JSON is never mistaken for a recording.
_SNIFF_GROUPS = (
    (b'"amplitudeResolution"', b'"amplitude_resolution"'),
    (b'"mainsFrequency"', b'"mains_freq"', b'"mains_frequency"', b'"mainsFreq"'),
    (b'"algorithmDetermination"', b'"algorithm_determination"'),
    (b'"recordedAt"', b'"recorded_at"'),
    (b'"leadI"', b'"lead_I"'),
)
_SNIFF_HEAD = 64 * 1024
_BLANK = b"\xef\xbb\xbf \t\r\n"
_SEX_5218 = {1: "MALE", 2: "FEMALE"}
_MAX_LEADS = len(LEADS)


def sniff(probe: Probe) -> bool:
    """A JSON object whose first 64 KiB name two kinds of Kardia-specific keys."""
    try:
        # the first bytes settle most entries (binary signal files) without
        # copying 64 KiB; stripping is per byte, so a non-blank start is final
        start = probe.head(64).lstrip(_BLANK)
        if start and not start.startswith(b"{"):
            return False
        head = probe.head(_SNIFF_HEAD)
    except Exception:
        return False
    text = head.lstrip(_BLANK)
    if not text.startswith(b"{"):
        return False
    found = sum(1 for group in _SNIFF_GROUPS if any(key in head for key in group))
    return found >= 2


def _err(message: str, field: str) -> HeaderError:
    return HeaderError(message, format=FORMAT_NAME, field=field)


def _get(obj: Mapping[str, Any], name: str, where: str = "") -> tuple[str | None, Any]:
    """First present spelling of a key: (the spelling, its value) or (None, None)."""
    for key in _KEYS[name]:
        if key in obj:
            return (where + key), obj[key]
    return None, None


def _number(value: Any, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(f"{key} must be a finite number, not {value!r}", key)
    if positive and value <= 0:
        raise _err(f"{key} must be above 0, not {value!r}", key)
    return float(value)


def _samples(values: Any, key: str) -> np.ndarray:
    if not isinstance(values, list):
        raise _err(f"{key} must be an array of integers, not {type(values).__name__}", key)
    if not values:
        raise _err(f"{key} is empty; a lead needs at least one sample", key)
    if not all(type(v) is int for v in values):
        bad = next(v for v in values if type(v) is not int)
        raise _err(f"{key} must hold integers only; found {bad!r}", key)
    try:
        array = np.array(values, dtype=np.int64)
    except OverflowError:
        raise _err(f"{key} holds integers beyond 64 bits", key) from None
    lo, hi = int(array.min()), int(array.max())
    for dtype in (np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return array.astype(dtype)
    return array  # pragma: no cover - int64 always fits


def _signal_set(data: Mapping[str, Any], set_name: str, warnings: list[str],
                strict: bool) -> tuple[list[Signal], dict[str, Any]]:
    where = f"data.{set_name}"
    block = data[set_name]
    if not isinstance(block, Mapping):
        raise _err(f"{where} must be an object", where)
    key, rate = _get(block, "frequency", where + ".")
    if key is None:
        raise _err(f"{where}.frequency (samples per second) is missing", where + ".frequency")
    rate = _number(rate, key, positive=True)
    key, resolution = _get(block, "resolution", where + ".")
    if key is None:
        raise _err(f"{where}.amplitudeResolution (nanovolts per sample unit) is missing",
                   where + ".amplitudeResolution")
    resolution = _number(resolution, key, positive=True)
    key, mains = _get(block, "mains", where + ".")
    if key is not None:
        mains = _number(mains, key)
        if mains not in (50.0, 60.0):
            message = f"{key} is {mains:g}; mains frequency is 50 or 60 Hz"
            if strict:
                raise _err(message, key)
            warnings.append(message)
    key, samples = _get(block, "samples", where + ".")
    if key is None or not isinstance(samples, Mapping):
        raise _err(f"{where}.samples must be an object with one array per lead",
                   where + ".samples")
    signals = []
    scale = resolution / 1e6  # nV per unit -> mV per unit
    for label, spellings in LEADS:
        for spelling in spellings:
            if spelling in samples:
                digital = _samples(samples[spelling], f"{key}.{spelling}")
                signals.append(Signal(label=label, sample_rate=rate, digital=digital,
                                      scale=scale, units="mV"))
                break
    if not signals:
        raise _err(f"{key} has none of the leads leadI, leadII, leadIII, AVR, AVL, AVF",
                   key)
    known = {s for _, spellings in LEADS for s in spellings}
    unknown = sorted(k for k in samples if k not in known)
    if unknown:
        warnings.append(f"{key}: ignored unknown lead keys {', '.join(map(str, unknown))}")
    num_key, num_leads = _get(block, "num_leads", where + ".")
    if num_key is not None:
        if isinstance(num_leads, bool) or not isinstance(num_leads, int) or \
                not 1 <= num_leads <= _MAX_LEADS:
            raise _err(f"{num_key} must be an integer from 1 to 6, not {num_leads!r}", num_key)
        if num_leads != len(signals):
            message = f"{num_key} says {num_leads} leads but {len(signals)} are present"
            if strict:
                raise _err(message, num_key)
            warnings.append(message)
    lengths = {len(s) for s in signals}
    if len(lengths) > 1:
        message = f"{where}: leads have different lengths ({sorted(lengths)})"
        if strict:
            raise _err(message, key)
        warnings.append(message)
    info = {"frequency": rate, "mains_frequency": mains, "amplitude_resolution_nv": resolution}
    return signals, info


def _parse_time(value: Any, key: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _err(f"{key} must be an ISO 8601 date-time string, not {value!r}", key)
    moment = parse_iso_datetime(value)
    if moment is None:
        raise _err(f"{key} {value!r} is not an ISO 8601 date-time", key)
    return moment


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise _err(f"{key} must be a string, not {value!r}", key)


def _patient(value: Any, warnings: list[str], strict: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _err("patient must be an object", "patient")
    fields: dict[str, Any] = {}
    key, mrn = _get(value, "mrn", "patient.")
    fields["patient_id"] = _text(mrn, key or "patient.mrn")
    key, first = _get(value, "first", "patient.")
    fields["patient_first_name"] = _text(first, key or "patient.firstname")
    key, last = _get(value, "last", "patient.")
    fields["patient_last_name"] = _text(last, key or "patient.lastname")
    key, dob = _get(value, "dob", "patient.")
    if dob not in (None, ""):
        if not isinstance(dob, str):
            raise _err(f"{key} must be an ISO 8601 date, not {dob!r}", key)
        try:
            fields["patient_birth_date"] = dt.date.fromisoformat(dob.strip()[:10])
        except ValueError:
            message = f"{key} {dob!r} is not an ISO 8601 date"
            if strict:
                raise _err(message, key) from None
            warnings.append(message + "; birth date left unknown")
    key, sex = _get(value, "sex", "patient.")
    if sex is not None:
        code = sex
        if isinstance(sex, str) and sex.strip().isdigit():
            code = int(sex.strip())
        if isinstance(code, bool) or not isinstance(code, int) or code not in (0, 1, 2, 9):
            message = f"{key} is {sex!r}; ISO/IEC 5218 sex codes are 0, 1, 2 and 9"
            if strict:
                raise _err(message, key)
            warnings.append(message + "; gender left unknown")
        else:
            fields["patient_gender"] = _SEX_5218.get(code)
    return {k: v for k, v in fields.items() if v is not None}


def decode(data: bytes | memoryview, *, name: str = "", path: str | None = None,
           strict: bool = False, signal_set: str = "raw") -> Record:
    """One Kardia recording document as a record (``signal_set``: "raw" or "enhanced")."""
    if signal_set not in ("raw", "enhanced"):
        raise ValueError(f"signal_set must be 'raw' or 'enhanced', not {signal_set!r}")
    try:
        doc = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError) as exc:
        offset = getattr(exc, "pos", None)
        raise HeaderError(f"the document is not valid JSON ({exc})", format=FORMAT_NAME,
                          offset=offset, field="document") from None
    except RecursionError:
        raise HeaderError("the document nests too deeply to be a Kardia recording",
                          format=FORMAT_NAME, field="document") from None
    if not isinstance(doc, Mapping):
        raise _err("the document must be a JSON object", "document")
    warnings: list[str] = []
    payload = doc.get("data")
    if not isinstance(payload, Mapping):
        raise _err("data (the object holding the raw and enhanced sample sets) is missing "
                   "or not an object", "data")
    sets: dict[str, tuple[list[Signal], dict[str, Any]]] = {}
    for set_name in ("raw", "enhanced"):
        if payload.get(set_name) is not None:
            sets[set_name] = _signal_set(payload, set_name, warnings, strict)
    if not sets:
        raise _err("data has neither a raw nor an enhanced sample set", "data.raw")
    chosen = signal_set
    if chosen not in sets:
        if strict or signal_set == "enhanced":
            raise _err(f"data.{signal_set} is missing", f"data.{signal_set}")
        chosen = "enhanced"
        warnings.append("data.raw is missing; signals come from data.enhanced (filtered)")
    signals, info = sets[chosen]

    start_time = None
    key, recorded = _get(doc, "recorded_at")
    if recorded is not None:
        start_time = _parse_time(recorded, key)
        if start_time.tzinfo is None:
            warnings.append(f"{key} has no UTC offset; start time left as local time")
    key, heart_rate = _get(doc, "heart_rate")
    if heart_rate is not None:
        _number(heart_rate, key)  # kept as given (integer or fractional beats per minute)
    key, determination = _get(doc, "algorithm")
    if determination is not None:
        if not isinstance(determination, str):
            raise _err(f"{key} must be a string, not {determination!r}", key)
        if determination not in ALGORITHM_DETERMINATIONS:
            message = f"{key} {determination!r} is not one of {', '.join(ALGORITHM_DETERMINATIONS)}"
            if strict:
                raise _err(message, key)
            warnings.append(message + "; kept as given")
    key, duration = _get(doc, "duration")
    if duration is not None:
        duration = _number(duration, key)
    key, tags = _get(doc, "tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _err(f"{key} must be an array of strings", key)
    key, note = _get(doc, "note")
    note = _text(note, key or "note")
    key, recording_id = _get(doc, "id")
    recording_id = _text(recording_id, key or "id")
    key, platform_patient = _get(doc, "patient_id")
    platform_patient = _text(platform_patient, key or "patientID")
    patient = _patient(doc.get("patient"), warnings, strict)

    recording_start = None
    if isinstance(start_time, dt.datetime) and start_time.tzinfo is not None:
        recording_start = start_time.astimezone(dt.timezone.utc)
    metadata = Metadata(
        recording_start_time=recording_start,
        searching_tags=tuple(tags) if tags else None,
        **patient,
    )
    other = "enhanced" if chosen == "raw" else "raw"
    return Record(
        name=name,
        format=FORMAT_NAME,
        format_detail=f"Kardia recording JSON, {len(signals)}-lead, {chosen}",
        signals=signals,
        start_time=start_time,
        metadata=metadata,
        warnings=warnings,
        extras={
            "signal_set": chosen,
            f"{other}_signals": sets[other][0] if other in sets else None,
            "heart_rate": heart_rate,
            "note": note,
            "algorithm_determination": determination,
            "recording_id": recording_id,
            "platform_patient_id": platform_patient,
            "duration_ms": duration,
            "mains_frequency": info["mains_frequency"],
            "amplitude_resolution_nv": info["amplitude_resolution_nv"],
        },
    )


class KardiaFormat(SingleFileFormat):
    """Kardia (AliveCor) recording JSON documents."""

    name = FORMAT_NAME

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, name=ctx.name, path=ctx.path, strict=ctx.strict)


FORMAT = KardiaFormat()

