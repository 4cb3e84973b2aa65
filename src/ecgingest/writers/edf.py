"""The EDF+/BDF+ writer: one file per record, header field by field as EDF.md gives it.

Data records hold ``samples_per_record`` samples of every signal (so each
signal keeps its own rate) followed by the ``EDF Annotations`` signal: each
data record's time-keeping TAL (its onset, which makes EDF+D gaps explicit)
and the record's annotations, placed in the data record where they start.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import warnings
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EcgWarning
from ..record import caller_stacklevel
from ._common import UnrepresentableError

if TYPE_CHECKING:
    from ..record import Record, Signal

__all__ = ["write_edf"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DURATIONS = (1.0, 0.5, 0.25, 0.2, 2.0, 0.1, 4.0, 5.0, 10.0, 0.05, 0.04, 0.02, 0.01, 20.0,
              30.0, 60.0, 0.001)
"""Data record durations tried, in order of preference, when none is given."""


def _field(value: str, width: int, what: str, kind: str) -> bytes:
    raw = value.encode("ascii", errors="strict") if value.isascii() else b""
    if (not value.isascii()) or not value.isprintable() or len(raw) > width:
        raise UnrepresentableError(
            f"{what} {value!r} does not fit the {width}-character printable ASCII field of "
            f"{kind}", format=kind.lower(), field=what)
    return raw.ljust(width, b" ")


def _num(value: float) -> str:
    """Shortest decimal text of at most 8 characters for ``value`` (not exact if none)."""
    if float(value).is_integer() and abs(value) < 1e8:
        text = str(int(value))
        if len(text) <= 8:
            return text
    for digits in range(1, 17):
        text = f"{value:.{digits}g}"
        if "e" in text:
            text = f"{Decimal(text):f}"
        if len(text) > 8:
            break
        if float(text) == value:
            return text
    # the closest text within 8 characters, the shortest of equally close ones
    best: str | None = None
    for decimals in range(0, 9):
        text = f"{value:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text in ("-0", ""):
            text = "0"
        if len(text) <= 8 and (best is None
                               or abs(float(text) - value) < abs(float(best) - value)):
            best = text
    if best is not None:
        return best
    raise UnrepresentableError(f"{value!r} does not fit an 8-character EDF number field",
                               format="edf")


def _stamp(seconds: float) -> str:
    """A TAL onset or duration: sign, digits and decimals, no exponent."""
    text = f"{Decimal(repr(float(seconds))):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text.startswith("-") else "+" + text


def _onset_text(seconds: float, subsecond: float) -> bytes:
    """The TAL onset that reads back as ``seconds`` once the reader subtracts the
    start's fraction of a second (``float(text) - subsecond``): in 100 ns steps when
    that is within a nanosecond, else to the last bit."""
    if not subsecond:
        return _stamp(seconds).encode()
    short = _stamp(round(seconds + subsecond, 7))
    if abs(float(short) - subsecond - seconds) <= 1e-9:
        # 100 ns steps, what EDF readers such as EDFlib parse (they refuse longer
        # onsets); the rest is below any sample period
        return short.encode()
    first = candidate = seconds + subsecond
    for step in range(9):
        if float(_stamp(candidate)) - subsecond == seconds:
            return _stamp(candidate).encode()
        direction = math.inf if step % 2 == 0 else -math.inf
        candidate = first
        for _ in range(step // 2 + 1):
            candidate = math.nextafter(candidate, direction)
    return _stamp(first).encode()


def _record_layout(record: Record, duration: float | None, pad: bool, kind: str
                   ) -> tuple[float, list[int], int]:
    """Data record duration, samples per data record of each signal and the record count."""
    signals = record.signals
    if not signals:  # annotations only (a hypnogram): data records hold just the TALs
        onsets = record.data_record_onsets
        stored = record.extras.get("record_duration") if record.format in ("edf", "bdf") \
            else None
        d = float(duration or stored or 1.0)
        return d, [], len(onsets) if onsets is not None and len(onsets) else 1
    for sig in signals:
        if not (sig.sample_rate > 0 and math.isfinite(sig.sample_rate)):
            raise UnrepresentableError(f"signal {sig.label!r} has no sample rate "
                                       f"({sig.sample_rate!r} Hz); {kind} needs one",
                                       format=kind.lower(), field="samples per data record")
    onsets = record.data_record_onsets
    stored = record.extras.get("record_duration") if record.format in ("edf", "bdf") else None
    per_record = record.extras.get("samples_per_record") if stored else None
    if (duration is None and stored and per_record is not None and onsets is not None
            and len(per_record) == len(signals)
            and all(len(s) == len(onsets) * k for s, k in zip(signals, per_record))):
        return float(stored), [int(k) for k in per_record], len(onsets)
    candidates = _DURATIONS if duration is None else (float(duration),)
    fitting = []
    for d in candidates:
        if float(_num(d)) != d:
            continue
        spr = [sig.sample_rate * d for sig in signals]
        if not all(abs(k - round(k)) < 1e-9 and round(k) > 0 for k in spr):
            continue
        counts = [int(round(k)) for k in spr]
        if any(k / d != sig.sample_rate for k, sig in zip(counts, signals)):
            continue
        fitting.append((d, counts))
        whole = {len(sig) // k for sig, k in zip(signals, counts)}
        if len(whole) == 1 and all(len(sig) % k == 0 for sig, k in zip(signals, counts)):
            return d, counts, whole.pop()
    if duration is None:
        split = _whole_split(signals)
        if split is not None:
            return split
    rates = ", ".join(f"{sig.label!r}: {len(sig)} samples at {sig.sample_rate:g} Hz"
                      for sig in signals)
    if not fitting:
        asked = "none of the usual durations" if duration is None else f"{duration!r} s"
        raise UnrepresentableError(
            f"{kind} data records hold a whole number of samples of every signal in one "
            f"duration; {asked} gives that for these rates ({rates})",
            format=kind.lower(), field="data record duration")
    d, counts = fitting[0]
    if not pad:
        raise UnrepresentableError(
            f"{kind} data records are all full; with {d:g} s records these signals do not "
            f"fill a whole number of them ({rates}). Pass pad=True to fill the last one "
            "with zeros, or trim the signals", format=kind.lower(),
            field="number of data records")
    n_records = max(-(-len(sig) // k) for sig, k in zip(signals, counts))
    return d, counts, n_records


def _whole_split(signals: list[Signal]) -> tuple[float, list[int], int] | None:
    """The data record duration nearest 1 s that splits every signal into the same
    number of full data records, with a duration EDF's 8 characters hold exactly."""
    g = 0
    for sig in signals:
        g = math.gcd(g, len(sig))
    if g == 0:
        return None
    divisors: set[int] = set()
    for k in range(1, math.isqrt(g) + 1):
        if g % k == 0:
            divisors.update((k, g // k))
    best: tuple[float, float, list[int], int] | None = None
    for n_records in divisors:
        counts = [len(sig) // n_records for sig in signals]
        d = float(_num(counts[0] / signals[0].sample_rate))
        if d <= 0 or any(k / d != sig.sample_rate for k, sig in zip(counts, signals)):
            continue
        distance = abs(math.log(d))
        if best is None or distance < best[0]:
            best = (distance, d, counts, n_records)
    return None if best is None else (best[1], best[2], best[3])


def _calibration(sig: Signal, lo: int, hi: int, stored: tuple | None, kind: str
                 ) -> tuple[str, str, int, int]:
    """Physical min/max texts and digital min/max that give back the signal's scaling."""
    scale, offset = sig.scale, sig.offset
    if not (math.isfinite(scale) and scale != 0 and math.isfinite(offset)):
        raise UnrepresentableError(f"signal {sig.label!r} has scale {scale!r} and offset "
                                   f"{offset!r}; {kind} needs a finite, non-zero scale",
                                   format=kind.lower(), field="physical minimum")
    if stored is not None:  # read from EDF: the header's own fields, if they still apply
        pmin, pmax, dmin, dmax = stored
        if dmax != dmin and pmax != pmin:
            s = (pmax - pmin) / (dmax - dmin)
            if s == scale and pmin - dmin * s == offset and lo <= dmin and dmax <= hi:
                texts = _num(pmin), _num(pmax)
                if float(texts[0]) == pmin and float(texts[1]) == pmax:
                    return texts[0], texts[1], int(dmin), int(dmax)
    digital = np.asarray(sig.digital)
    data_lo = int(digital.min()) if len(digital) else 0
    data_hi = int(digital.max()) if len(digital) else 0
    base = -offset / scale
    anchor = round(base) if abs(base - round(base)) < 1e-9 * max(1.0, abs(base)) else 0
    best = None
    for step in (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64, 100, 125, 128, 200, 250, 256,
                 500, 512, 1000, 1024, 2048, 4096):
        dmin = anchor + -((anchor - lo) // step) * step
        dmax = anchor + ((hi - anchor) // step) * step
        if not (dmin <= data_lo and data_hi <= dmax and dmin < dmax):
            break
        tmin, tmax = _num(dmin * scale + offset), _num(dmax * scale + offset)
        pmin, pmax = float(tmin), float(tmax)
        s = (pmax - pmin) / (dmax - dmin)
        # equal to the last bits of a float: the reader recomputes both with a division
        if (abs(s - scale) <= 1e-12 * abs(scale)
                and abs(pmin - dmin * s - offset) <= 1e-9 * abs(scale)):
            return tmin, tmax, dmin, dmax
        if best is None:
            best = tmin, tmax, dmin, dmax
    if best is None:
        raise UnrepresentableError(
            f"signal {sig.label!r} holds values {data_lo}..{data_hi}, outside {kind}'s "
            f"{lo}..{hi}" + ("; write BDF (bdf=True) for 24-bit values" if kind == "EDF" else ""),
            format=kind.lower(), field="digital minimum")
    tmin, tmax, dmin, dmax = best
    warnings.warn(f"signal {sig.label!r}: {kind}'s 8-character physical minimum and maximum "
                  f"cannot give scale {scale!r} and offset {offset!r} exactly; physical values "
                  "are kept to about 7 significant digits", EcgWarning,
                  stacklevel=caller_stacklevel())
    return tmin, tmax, dmin, dmax


def _subfield(value: object) -> str:
    text = "X" if value is None or value == "" else str(value)
    return text.replace(" ", "_")


def _identification(record: Record, start: dt.datetime | None, plus: bool) -> tuple[str, str]:
    meta = record.metadata
    if not plus:
        return meta.patient_text or "", meta.recording_text or ""
    if record.format in ("edf", "bdf") and "+" in record.format_detail and not meta.overridden:
        patient, recording = meta.patient_text or "", meta.recording_text or ""
        if patient and recording.startswith("Startdate"):
            return patient, recording  # as the file had them
    sex = {"MALE": "M", "FEMALE": "F"}.get(meta.patient_gender or "", "X")
    birth = meta.patient_birth_date
    birth_text = (f"{birth.day:02d}-{_MONTHS[birth.month - 1]}-{birth.year:04d}"
                  if birth is not None else "X")
    name = record.extras.get("patient_name")
    if name is None and (meta.patient_last_name or meta.patient_first_name):
        name = ", ".join(p for p in (meta.patient_last_name, meta.patient_first_name) if p)
    patient = " ".join([_subfield(meta.patient_id), sex, birth_text, _subfield(name)])
    date = (f"{start.day:02d}-{_MONTHS[start.month - 1]}-{start.year:04d}"
            if start is not None else "X")
    recording = " ".join(["Startdate", date, _subfield(meta.investigation_id),
                          _subfield(record.extras.get("technician")),
                          _subfield(meta.device_id)])
    return patient, recording


def _tal_text(text: str) -> bytes:
    if any(c in text for c in "\x00\x14\x15"):
        raise UnrepresentableError(f"annotation text {text!r} holds a byte EDF+ uses as a "
                                   "separator (0x00, 0x14 or 0x15)", format="edf",
                                   field="annotation")
    return text.encode("utf-8")


def write_edf(record: Record, path: str | os.PathLike[str], *, bdf: bool = False,
              record_duration: float | None = None, pad: bool = False) -> Path:
    """Write ``record`` as one EDF+ file (or BDF+ with ``bdf=True``).

    Signals keep their stored integers, labels, units, scaling (physical and
    digital minimum and maximum chosen to give it back exactly where 8-character
    fields allow) and rates; the start time (with its fraction of a second),
    patient and recording fields, annotations and, for EDF+D records, every data
    record's onset are written in the annotation signal. A record read from plain
    EDF/BDF with no annotations is written as plain EDF/BDF again. Invalid samples
    keep their stored integers (EDF has no missing-sample code).

    :param record: the record to write.
    :param path: the file to write (its folder must exist).
    :param bdf: write 24-bit BDF+ instead of 16-bit EDF+.
    :param record_duration: seconds per data record; by default the record's own
        (read from EDF) or the first of 1, 0.5, 0.25, … s that holds a whole number
        of samples of every signal.
    :param pad: fill the last data record with zeros when the signals do not fill
        a whole number of data records (otherwise that is an error).
    :returns: the path written.
    :raises UnrepresentableError: no signals; a stored value outside the format's
        range (EDF: 16 bits); rates with no common data record duration; signals
        not filling whole data records (without ``pad``); a label, unit or
        identification too long or not printable ASCII; an annotation text holding
        a TAL separator.
    :raises OSError: the file cannot be written.

    Warns (:class:`~ecgingest.errors.EcgWarning`) when a signal's scaling can only
    be written to about 7 significant digits.
    """
    kind = "BDF" if bdf else "EDF"
    bps = 3 if bdf else 2
    lo, hi = (-(2**23), 2**23 - 1) if bdf else (-32768, 32767)
    if not record.signals and not record.annotations:
        raise UnrepresentableError(f"record {record.name!r} has no signals or annotations "
                                   "to write", format=kind.lower())
    duration, counts, n_records = _record_layout(record, record_duration, pad, kind)
    start = record.start_time
    clock = start if isinstance(start, dt.datetime) else None
    subsecond = 0.0
    if clock is not None:
        subsecond = clock.microsecond / 1e6
        clock = clock.replace(microsecond=0, tzinfo=None)
    elif isinstance(start, dt.time):
        # a time of day without a date (WFDB): EDF needs a date, 01.01.85 by convention
        subsecond = start.microsecond / 1e6
        clock = dt.datetime.combine(dt.date(1985, 1, 1), start.replace(microsecond=0,
                                                                       tzinfo=None))
    stored_subsecond = record.extras.get("subsecond_offset") if record.format in (
        "edf", "bdf") else None
    if (isinstance(stored_subsecond, float) and 0 < stored_subsecond < 1
            and round(stored_subsecond * 1e6) == round(subsecond * 1e6)):
        subsecond = stored_subsecond  # the file's own digits, finer than microseconds
    onsets = record.data_record_onsets
    if onsets is None or len(onsets) != n_records:
        onsets = np.arange(n_records, dtype=np.float64) * duration
    contiguous = bool(np.all(np.abs(onsets - np.arange(n_records) * duration) <= 1e-9))
    plain_source = record.format in ("edf", "bdf") and "+" not in record.format_detail
    plus = not (plain_source and not record.annotations and not subsecond and contiguous)
    date_known = isinstance(start, dt.datetime)
    if clock is None:
        clock = dt.datetime(1985, 1, 1)
    if not 1985 <= clock.year <= 2084 and not plus:
        raise UnrepresentableError(f"plain {kind} holds start years 1985-2084, not "
                                   f"{clock.year}", format=kind.lower(), field="startdate")
    patient, recording = _identification(record, clock if date_known else None, plus)
    is_edf = record.format in ("edf", "bdf")

    def stored_column(key: str) -> tuple | None:
        value = record.extras.get(key) if is_edf else None
        return tuple(value) if value is not None and len(value) == len(record.signals) else None

    pmins, pmaxs = stored_column("physical_min"), stored_column("physical_max")
    dmins, dmaxs = stored_column("digital_min"), stored_column("digital_max")
    transducers = stored_column("transducers") or ("",) * len(record.signals)
    prefilters = stored_column("prefiltering") or ("",) * len(record.signals)
    rows = []
    for i, sig in enumerate(record.signals):
        stored = None if pmins is None or pmaxs is None or dmins is None or dmaxs is None \
            else (pmins[i], pmaxs[i], dmins[i], dmaxs[i])
        digital = np.asarray(sig.digital)
        if len(digital) and (int(digital.min()) < lo or int(digital.max()) > hi):
            raise UnrepresentableError(
                f"signal {sig.label!r} holds values {int(digital.min())}..{int(digital.max())}, "
                f"outside {kind}'s {lo}..{hi}"
                + ("; write BDF (bdf=True) for 24-bit values" if not bdf else ""),
                format=kind.lower(), field="digital minimum")
        tmin, tmax, dmin, dmax = _calibration(sig, lo, hi, stored, kind)
        units = sig.units.replace("\u00b5", "u").replace("\u03bc", "u")  # µV -> uV: ASCII
        rows.append((sig.label, transducers[i], units, tmin, tmax, str(dmin), str(dmax),
                     prefilters[i], str(counts[i])))

    slots: list[bytes] = []
    n_ann = 0
    if plus:
        placed: list[list[bytes]] = [[] for _ in range(n_records)]
        for ann in record.annotations:
            k = int(np.searchsorted(onsets, ann.onset, side="right")) - 1
            tal = _onset_text(ann.onset, subsecond)
            if ann.duration is not None:
                if not ann.duration >= 0:
                    raise UnrepresentableError(f"annotation {ann.text!r} has duration "
                                               f"{ann.duration!r}; EDF+ durations are not "
                                               "negative", format=kind.lower(),
                                               field="annotation")
                tal += b"\x15" + _stamp(ann.duration).encode()[1:]
            placed[min(max(k, 0), n_records - 1) if n_records else 0].append(
                tal + b"\x14" + _tal_text(ann.text) + b"\x14\x00")
        if n_records == 0 and record.annotations:
            raise UnrepresentableError("annotations need at least one data record to hold "
                                       "them", format=kind.lower(), field="annotation")
        for k in range(n_records):
            keeping = _onset_text(float(onsets[k]), subsecond) + b"\x14\x14\x00"
            slots.append(keeping + b"".join(placed[k]))
        need = max((len(s) for s in slots), default=0) + 1
        n_ann = max(-(-need // bps), 1)
        lim = 2**23 if bdf else 2**15
        rows.append((f"{kind} Annotations", "", "", "-1", "1", str(-lim), str(lim - 1), "",
                     str(n_ann)))
    ns = len(rows)
    reserved = (f"{kind}+{'C' if contiguous else 'D'}" if plus
                else ("24BIT" if bdf else ""))
    header = b"".join([
        b"\xffBIOSEMI" if bdf else b"0".ljust(8),
        _field(patient, 80, "patient identification", kind),
        _field(recording, 80, "recording identification", kind),
        f"{clock.day:02d}.{clock.month:02d}.{clock.year % 100:02d}".encode(),
        f"{clock.hour:02d}.{clock.minute:02d}.{clock.second:02d}".encode(),
        str(256 * (ns + 1)).encode().ljust(8),
        _field(reserved, 44, "reserved", kind),
        str(n_records).encode().ljust(8),
        _num(duration).encode().ljust(8),
        str(ns).encode().ljust(4),
    ])
    names = ("label", "transducer type", "physical dimension", "physical minimum",
             "physical maximum", "digital minimum", "digital maximum", "prefiltering",
             "samples per data record")
    widths = (16, 80, 8, 8, 8, 8, 8, 80, 8)
    for column, (width, what) in enumerate(zip(widths, names)):
        header += b"".join(_field(row[column], width, what, kind) for row in rows)
    header += b" " * (32 * ns)

    parts = []
    for sig, k in zip(record.signals, counts):
        digital = np.zeros(n_records * k, dtype=np.int32)
        digital[:len(sig)] = sig.digital
        if bdf:
            raw = digital.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        else:
            raw = digital.astype("<i2").view(np.uint8)
        parts.append(raw.reshape(n_records, k * bps))
    if plus:
        tal_block = np.zeros((n_records, n_ann * bps), dtype=np.uint8)
        for k, slot in enumerate(slots):
            tal_block[k, :len(slot)] = np.frombuffer(slot, dtype=np.uint8)
        parts.append(tal_block)
    body = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), np.uint8)
    target = Path(path)
    with open(target, "wb") as out:
        out.write(header)
        out.write(np.ascontiguousarray(body).tobytes())
    return target
