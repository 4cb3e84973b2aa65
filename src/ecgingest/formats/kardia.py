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
import re
import reprlib
from collections.abc import Mapping
from typing import Any, NoReturn

import numpy as np

from ..errors import HeaderError
from ..overrides import parse_iso_datetime
from ..record import Metadata, Record, Signal
from ._base import DecodeContext, Probe, SingleFileFormat

__all__ = ["FORMAT", "KardiaFormat", "decode", "sniff", "ALGORITHM_DETERMINATIONS", "LEADS"]

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
_SNIFF_GROUP_OF = {key[1:-1]: group for group, keys in enumerate(_SNIFF_GROUPS)
                   for key in keys}
_SNIFF_KEYS = re.compile(b'"(' + b"|".join(re.escape(key) for key in _SNIFF_GROUP_OF)
                         + b')(?=")')
"""Every distinctive key, quoted; the closing quote is looked at, not taken, so that a key
right after another (``"a""b"`` or ``"a"b"``) is found as ``in`` finds it."""
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
    first = -1  # the group of the first distinctive key: a key of another one settles it
    for key in _SNIFF_KEYS.finditer(head):
        group = _SNIFF_GROUP_OF[key.group(1)]
        if first < 0:
            first = group
        elif group != first:
            return True
    return False


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict, _SHOW.maxtuple = 3, 8, 6, 8
_SHOW.maxstring, _SHOW.maxlong, _SHOW.maxother = 80, 40, 80


def _show(value: Any) -> str:
    """A document value in an error message: short, and bounded in depth (a value nested a
    thousand levels deep must not overflow the stack while being described)."""
    return _SHOW.repr(value)


def _fail(ctx: DecodeContext, message: str, field: str) -> NoReturn:
    ctx.fail(HeaderError, message, field=field)


def _get(obj: Mapping[str, Any], name: str, where: str = "") -> tuple[str | None, Any]:
    """First present spelling of a key: (the spelling, its value) or (None, None)."""
    for key in _KEYS[name]:
        if key in obj:
            return (where + key), obj[key]
    return None, None


def _number(ctx: DecodeContext, value: Any, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(ctx, f"{key} must be a finite number, not {_show(value)}", key)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ctx.error(HeaderError, f"{key} is too large for a number ({_show(value)})",
                        field=key) from None
    if not math.isfinite(number):
        _fail(ctx, f"{key} must be a finite number, not {_show(value)}", key)
    if positive and number <= 0:
        _fail(ctx, f"{key} must be above 0, not {_show(value)}", key)
    return number


def _samples(ctx: DecodeContext, values: Any, key: str) -> np.ndarray:
    if not isinstance(values, list):
        _fail(ctx, f"{key} must be an array of integers, not {type(values).__name__}", key)
    if not values:
        _fail(ctx, f"{key} is empty; a lead needs at least one sample", key)
    if not all(type(v) is int for v in values):
        bad = next(v for v in values if type(v) is not int)
        _fail(ctx, f"{key} must hold integers only; found {_show(bad)}", key)
    try:
        array = np.array(values, dtype=np.int64)
    except OverflowError:
        raise ctx.error(HeaderError, f"{key} holds integers beyond 64 bits",
                        field=key) from None
    lo, hi = int(array.min()), int(array.max())
    for dtype in (np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return array.astype(dtype)
    return array  # pragma: no cover - int64 always fits


def _deviation(ctx: DecodeContext, message: str, key: str, tolerated: str = "") -> None:
    """A non-conformance: a strict read fails with ``message``; a lenient one warns with
    ``message`` and what was done about it (``tolerated``)."""
    if ctx.strict:
        _fail(ctx, message, key)
    ctx.warn(message + tolerated)


def _signal_set(ctx: DecodeContext, data: Mapping[str, Any],
                set_name: str) -> tuple[list[Signal], dict[str, Any]]:
    where = f"data.{set_name}"
    block = data[set_name]
    if not isinstance(block, Mapping):
        _fail(ctx, f"{where} must be an object", where)
    key, rate = _get(block, "frequency", where + ".")
    if key is None:
        _fail(ctx, f"{where}.frequency (samples per second) is missing", where + ".frequency")
    rate = _number(ctx, rate, key, positive=True)
    key, resolution = _get(block, "resolution", where + ".")
    if key is None:
        _fail(ctx, f"{where}.amplitudeResolution (nanovolts per sample unit) is missing",
              where + ".amplitudeResolution")
    resolution = _number(ctx, resolution, key, positive=True)
    key, mains = _get(block, "mains", where + ".")
    if key is not None:
        mains = _number(ctx, mains, key)
        if mains not in (50.0, 60.0):
            _deviation(ctx, f"{key} is {mains:g}; mains frequency is 50 or 60 Hz", key)
    key, samples = _get(block, "samples", where + ".")
    if key is None or not isinstance(samples, Mapping):
        _fail(ctx, f"{where}.samples must be an object with one array per lead",
              where + ".samples")
    signals = []
    scale = resolution / 1e6  # nV per unit -> mV per unit
    for label, spellings in LEADS:
        for spelling in spellings:
            if spelling in samples:
                digital = _samples(ctx, samples[spelling], f"{key}.{spelling}")
                signals.append(Signal(label=label, sample_rate=rate, digital=digital,
                                      scale=scale, units="mV"))
                break
    if not signals:
        _fail(ctx, f"{key} has none of the leads leadI, leadII, leadIII, AVR, AVL, AVF", key)
    known = {s for _, spellings in LEADS for s in spellings}
    unknown = sorted(k for k in samples if k not in known)
    if unknown:
        ctx.warn(f"{key}: ignored unknown lead keys {', '.join(map(str, unknown))}")
    num_key, num_leads = _get(block, "num_leads", where + ".")
    if num_key is not None:
        if isinstance(num_leads, bool) or not isinstance(num_leads, int) or \
                not 1 <= num_leads <= _MAX_LEADS:
            _fail(ctx, f"{num_key} must be an integer from 1 to 6, not {_show(num_leads)}",
                  num_key)
        if num_leads != len(signals):
            _deviation(ctx, f"{num_key} says {num_leads} leads but {len(signals)} are present",
                       num_key)
    lengths = {len(s) for s in signals}
    if len(lengths) > 1:
        _deviation(ctx, f"{where}: leads have different lengths ({sorted(lengths)})", key)
    info = {"frequency": rate, "mains_frequency": mains, "amplitude_resolution_nv": resolution}
    return signals, info


def _parse_time(ctx: DecodeContext, value: Any, key: str) -> dt.datetime:
    if not isinstance(value, str):
        _fail(ctx, f"{key} must be an ISO 8601 date-time string, not {_show(value)}", key)
    moment = parse_iso_datetime(value)
    if moment is None:
        _fail(ctx, f"{key} {_show(value)} is not an ISO 8601 date-time", key)
    return moment


def _text(ctx: DecodeContext, value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    _fail(ctx, f"{key} must be a string, not {_show(value)}", key)


def _patient(ctx: DecodeContext, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _fail(ctx, "patient must be an object", "patient")
    fields: dict[str, Any] = {}
    key, mrn = _get(value, "mrn", "patient.")
    fields["patient_id"] = _text(ctx, mrn, key or "patient.mrn")
    key, first = _get(value, "first", "patient.")
    fields["patient_first_name"] = _text(ctx, first, key or "patient.firstname")
    key, last = _get(value, "last", "patient.")
    fields["patient_last_name"] = _text(ctx, last, key or "patient.lastname")
    key, dob = _get(value, "dob", "patient.")
    if key is not None and dob not in (None, ""):
        if not isinstance(dob, str):
            _fail(ctx, f"{key} must be an ISO 8601 date, not {_show(dob)}", key)
        try:
            fields["patient_birth_date"] = dt.date.fromisoformat(dob.strip()[:10])
        except ValueError:
            fields["patient_birth_date"] = None
        if fields["patient_birth_date"] is None:
            _deviation(ctx, f"{key} {_show(dob)} is not an ISO 8601 date", key,
                       "; birth date left unknown")
    key, sex = _get(value, "sex", "patient.")
    if key is not None and sex is not None:
        code = sex
        if isinstance(sex, str) and sex.strip().isdigit() and len(sex.strip()) <= 100:
            code = int(sex.strip())
        if isinstance(code, bool) or not isinstance(code, int) or code not in (0, 1, 2, 9):
            _deviation(ctx, f"{key} is {_show(sex)}; ISO/IEC 5218 sex codes are 0, 1, 2 and 9",
                       key, "; gender left unknown")
        else:
            fields["patient_gender"] = _SEX_5218.get(code)
    return {k: v for k, v in fields.items() if v is not None}


def decode(data: bytes | memoryview, *, name: str = "", path: str | None = None,
           strict: bool = False, signal_set: str = "raw") -> Record:
    """One Kardia recording document as a record (``signal_set``: "raw" or "enhanced").

    The pipeline reads the raw set; this entry point lets a caller choose the
    filtered one.
    """
    if signal_set not in ("raw", "enhanced"):
        raise ValueError(f"signal_set must be 'raw' or 'enhanced', not {signal_set!r}")
    return _decode(data, DecodeContext(FORMAT_NAME, name=name, path=path, strict=strict),
                   signal_set)


def _load(data: bytes | memoryview, ctx: DecodeContext) -> Mapping[str, Any]:
    try:
        doc = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ctx.error(HeaderError, f"the document is not valid JSON ({exc})",
                        offset=getattr(exc, "pos", None), field="document") from None
    except RecursionError:
        raise ctx.error(HeaderError, "the document nests too deeply to be a Kardia recording",
                        field="document") from None
    if not isinstance(doc, Mapping):
        _fail(ctx, "the document must be a JSON object", "document")
    return doc


def _decode(data: bytes | memoryview, ctx: DecodeContext, signal_set: str) -> Record:
    doc = _load(data, ctx)
    payload = doc.get("data")
    if not isinstance(payload, Mapping):
        _fail(ctx, "data (the object holding the raw and enhanced sample sets) is missing "
              "or not an object", "data")
    sets: dict[str, tuple[list[Signal], dict[str, Any]]] = {}
    for set_name in ("raw", "enhanced"):
        if payload.get(set_name) is not None:
            sets[set_name] = _signal_set(ctx, payload, set_name)
    if not sets:
        _fail(ctx, "data has neither a raw nor an enhanced sample set", "data.raw")
    chosen = signal_set
    if chosen not in sets:
        if ctx.strict or signal_set == "enhanced":
            _fail(ctx, f"data.{signal_set} is missing", f"data.{signal_set}")
        chosen = "enhanced"
        ctx.warn("data.raw is missing; signals come from data.enhanced (filtered)")
    signals, info = sets[chosen]
    ctx.reserve_output(sum(s.digital.nbytes for _, (set_signals, _) in sets.items()
                           for s in set_signals), f"{len(signals)} leads")

    start_time = None
    key, recorded = _get(doc, "recorded_at")
    if key is not None and recorded is not None:
        start_time = _parse_time(ctx, recorded, key)
        if start_time.tzinfo is None:
            ctx.warn(f"{key} has no UTC offset; start time left as local time")
    key, heart_rate = _get(doc, "heart_rate")
    if key is not None and heart_rate is not None:
        _number(ctx, heart_rate, key)  # kept as given (integer or fractional beats per minute)
    key, determination = _get(doc, "algorithm")
    if key is not None and determination is not None:
        if not isinstance(determination, str):
            _fail(ctx, f"{key} must be a string, not {_show(determination)}", key)
        if determination not in ALGORITHM_DETERMINATIONS:
            _deviation(ctx, f"{key} {_show(determination)} is not one of "
                       f"{', '.join(ALGORITHM_DETERMINATIONS)}", key, "; kept as given")
    key, duration = _get(doc, "duration")
    if key is not None and duration is not None:
        duration = _number(ctx, duration, key)
    key, tags = _get(doc, "tags")
    if key is not None and tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            _fail(ctx, f"{key} must be an array of strings", key)
    key, note = _get(doc, "note")
    note = _text(ctx, note, key or "note")
    key, recording_id = _get(doc, "id")
    recording_id = _text(ctx, recording_id, key or "id")
    key, platform_patient = _get(doc, "patient_id")
    platform_patient = _text(ctx, platform_patient, key or "patientID")
    patient = _patient(ctx, doc.get("patient"))

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
        name=ctx.name,
        format=FORMAT_NAME,
        format_detail=f"Kardia recording JSON, {len(signals)}-lead, {chosen}",
        signals=signals,
        start_time=start_time,
        metadata=metadata,
        sources=(ctx.path,) if ctx.path else (),
        warnings=list(ctx.warnings),
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
    """Kardia (AliveCor) recording JSON documents.

    ``inspect`` is the default (a full decode): the samples are JSON arrays
    inside the one document, so there is no header to read on its own.
    """

    name = FORMAT_NAME
    takes_bytes = True  # the JSON parser takes bytes
    marker = (0, _BLANK + b"{")  # the object's brace, or what sniff strips before it

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return _decode(data, ctx, "raw")


FORMAT = KardiaFormat()
