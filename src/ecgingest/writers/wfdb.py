"""The WFDB writer: one header (``.hea``) and one signal file (``.dat``) per record.

Signals are packed frame by frame (``samples_per_frame`` samples of each
signal per frame, so multi-frequency records keep every signal's own rate)
in any of the formats the reader unpacks: 8, 16, 61, 80, 160, 212, 310, 311,
24 and 32. Bit-packed formats (212, 310, 311) run over the flat stream and end
with WFDB's partial last group, as the WFDB library writes them.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import warnings
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EcgWarning
from ..record import caller_stacklevel
from ._common import UnrepresentableError

if TYPE_CHECKING:
    from ..record import Record, Signal

__all__ = ["write_wfdb", "pack", "FORMAT_RANGES"]

FORMAT_RANGES: dict[int, tuple[int, int]] = {
    8: (-(2**31), 2**31 - 1), 16: (-32768, 32767), 61: (-32768, 32767), 80: (-128, 127),
    160: (-32768, 32767), 212: (-2048, 2047), 310: (-512, 511), 311: (-512, 511),
    24: (-(2**23), 2**23 - 1), 32: (-(2**31), 2**31 - 1)}
"""The stored integers each format holds (format 8 stores differences of -128..127)."""

_INVALID = {16: -32768, 61: -32768, 80: -128, 160: -32768, 24: -(2**23), 32: -(2**31),
            212: -2048, 310: -512, 311: -512}
_ADC_RESOLUTION = {8: 8, 16: 16, 61: 16, 80: 8, 160: 16, 212: 12, 310: 10, 311: 10,
                   24: 24, 32: 32}
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _number(value: float) -> str:
    """The shortest text that reads back as exactly ``value``."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def _interleave(signals: list[np.ndarray], spf: list[int], nframes: int) -> np.ndarray:
    if nframes == 0:
        return np.zeros(0, np.int64)
    cols = [np.asarray(s, dtype=np.int64).reshape(nframes, k) for s, k in zip(signals, spf)]
    return np.concatenate(cols, axis=1).reshape(-1)


def pack(fmt: int, signals: list[np.ndarray], spf: list[int]) -> bytes:
    """The bytes of one signal file holding ``signals`` in WFDB format ``fmt``.

    :param fmt: a WFDB storage format (8, 16, 61, 80, 160, 212, 310, 311, 24, 32).
    :param signals: each signal's stored integers, ``nframes * spf[i]`` long.
    :param spf: samples per frame of each signal.
    :returns: the file's bytes, frames in order.
    :raises UnrepresentableError: a value (for format 8, a difference) is outside
        what the format stores.
    """
    nframes = len(signals[0]) // spf[0] if signals else 0
    if fmt == 8:
        # first differences within each signal; the first sample is the header's
        # initial value, so its difference is 0
        diffs = [np.diff(np.asarray(s, dtype=np.int64), prepend=s[0] if len(s) else 0)
                 for s in signals]
        flat = _interleave(diffs, spf, nframes)
        if len(flat) and (flat.min() < -128 or flat.max() > 127):
            raise UnrepresentableError(
                "format 8 stores differences of -128..127 between successive samples; this "
                "record has larger steps: use format 16 or 32", format="wfdb", field="format")
        return flat.astype(np.int8).tobytes()
    flat = _interleave(signals, spf, nframes)
    if fmt == 16:
        return flat.astype("<i2").tobytes()
    if fmt == 61:
        return flat.astype(">i2").tobytes()
    if fmt == 80:
        return (flat + 128).astype(np.uint8).tobytes()
    if fmt == 160:
        return (flat + 32768).astype("<u2").tobytes()
    if fmt == 24:
        return (flat & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    if fmt == 32:
        return flat.astype("<i4").tobytes()
    if fmt == 212:
        v = (flat & 0xFFF).astype(np.uint16)
        pairs = len(v) // 2
        a, b = v[0:2 * pairs:2], v[1:2 * pairs:2]
        out = np.empty((pairs, 3), dtype=np.uint8)
        out[:, 0] = a & 0xFF
        out[:, 1] = ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)
        out[:, 2] = b & 0xFF
        tail = b""
        if len(v) % 2:
            last = int(v[-1])
            tail = bytes([last & 0xFF, (last >> 8) & 0x0F])
        return out.tobytes() + tail
    if fmt in (310, 311):
        v = (flat & 0x3FF).astype(np.uint32)
        left = len(v) % 3
        padded = np.concatenate([v, np.zeros((3 - left) % 3, np.uint32)]).reshape(-1, 3)
        s0, s1, s2 = padded[:, 0], padded[:, 1], padded[:, 2]
        if fmt == 310:
            w0 = (s0 << 1) | ((s2 & 0x1F) << 11)
            w1 = (s1 << 1) | ((s2 >> 5) << 11)
        else:
            w = s0 | (s1 << 10) | (s2 << 20)
            w0, w1 = w & 0xFFFF, w >> 16
        words = np.stack([w0, w1], axis=1).astype("<u2").reshape(-1)
        if left == 1:  # a last group of one sample is one word
            words = words[:-1]
        return words.tobytes()
    raise UnrepresentableError(f"WFDB format {fmt} is not one the writer produces (8, 16, 61, "
                               "80, 160, 212, 310, 311, 24, 32)", format="wfdb", field="format")


def _frame_layout(record: Record) -> tuple[float, list[int], int]:
    """Frame frequency, samples per frame of each signal and the number of frames."""
    signals = record.signals
    rates = []
    for sig in signals:
        if not (sig.sample_rate > 0 and math.isfinite(sig.sample_rate)):
            raise UnrepresentableError(f"signal {sig.label!r} has no sample rate "
                                       f"({sig.sample_rate!r} Hz); WFDB needs one",
                                       format="wfdb", field="sampling frequency")
        rates.append(Fraction(sig.sample_rate).limit_denominator(1_000_000))
    base = rates[0]
    for rate in rates[1:]:  # gcd of fractions: gcd of numerators over lcm of denominators
        base = Fraction(math.gcd(base.numerator * rate.denominator,
                                 rate.numerator * base.denominator),
                        base.denominator * rate.denominator)
    spf = [int(rate / base) for rate in rates]
    counts = {len(sig) // k for sig, k in zip(signals, spf) if len(sig) % k == 0}
    if len(counts) != 1 or any(len(sig) % k for sig, k in zip(signals, spf)):
        lines = ", ".join(f"{sig.label!r}: {len(sig)} samples at {sig.sample_rate:g} Hz"
                          for sig in signals)
        raise UnrepresentableError(
            f"WFDB frames hold every signal for the same time, but these signals cover "
            f"different durations ({lines}); write signals of one duration (record.replace("
            "signals=[...]))", format="wfdb", field="number of samples")
    # from a signal's own rate, not the fraction: 0.0166666666667 Hz stays that, not 1/60
    slowest = spf.index(min(spf))
    frame_frequency = signals[slowest].sample_rate / spf[slowest]
    for sig, k in zip(signals, spf):
        if frame_frequency * k != sig.sample_rate:
            raise UnrepresentableError(
                f"signal {sig.label!r} at {sig.sample_rate!r} Hz is not a whole multiple of a "
                "frame frequency WFDB can write exactly", format="wfdb",
                field="sampling frequency")
    return frame_frequency, spf, counts.pop()


def _gain(sig: Signal, stored: dict | None) -> tuple[float, int]:
    """Gain (units per integer step) and integer baseline for the header."""
    if not (math.isfinite(sig.scale) and sig.scale != 0 and math.isfinite(sig.offset)):
        raise UnrepresentableError(f"signal {sig.label!r} has scale {sig.scale!r} and offset "
                                   f"{sig.offset!r}; WFDB needs a finite, non-zero gain",
                                   format="wfdb", field="ADC gain")
    if stored is not None:  # read from WFDB: the header's own numbers, if they still apply
        gain, baseline = float(stored["gain"]), int(stored["baseline"])
        if gain and 1.0 / gain == sig.scale and -baseline / gain == sig.offset:
            return gain, baseline
    gain = 1.0 / sig.scale
    for _ in range(4):  # the gain whose reciprocal is the scale, where one exists
        if 1.0 / gain == sig.scale:
            break
        gain = math.nextafter(gain, math.inf if 1.0 / gain > sig.scale else -math.inf)
    exact = -sig.offset / sig.scale
    baseline = round(exact)
    if abs(exact - baseline) > 1e-6 * max(1.0, abs(exact)):
        warnings.warn(
            f"signal {sig.label!r}: WFDB baselines are integers; {exact:.6g} is written as "
            f"{baseline}, shifting physical values by {(baseline - exact) * sig.scale:.3g} "
            f"{sig.units}", EcgWarning, stacklevel=caller_stacklevel())
    return gain, baseline


def _time_text(start: dt.datetime | dt.time | None) -> str:
    if start is None:
        return ""
    clock = start.time() if isinstance(start, dt.datetime) else start
    text = f"{clock.hour:02d}:{clock.minute:02d}:{clock.second:02d}"
    if clock.microsecond:
        text += f".{clock.microsecond:06d}".rstrip("0")
    if isinstance(start, dt.datetime):
        text += f" {start.day:02d}/{start.month:02d}/{start.year:04d}"
    return text


def _comments(record: Record) -> list[str]:
    stored = record.extras.get("comments") if record.format == "wfdb" else None
    if stored:
        return [str(c) for c in stored]
    meta = record.metadata
    parts = []
    if meta.patient_age is not None:
        parts.append(f"<age>: {meta.patient_age}")
    sex = {"MALE": "M", "FEMALE": "F"}.get(meta.patient_gender or "")
    if sex:
        parts.append(f"<sex>: {sex}")
    return [" ".join(parts)] if parts else []


def _check_text(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\x00") or not value.isprintable():
        raise UnrepresentableError(f"{what} {value!r} holds control characters a WFDB header "
                                   "line cannot", format="wfdb", field=what)
    return value


def write_wfdb(record: Record, directory: str | os.PathLike[str], *, fmt: str | int = "16",
               name: str | None = None) -> Path:
    """Write ``record`` as a WFDB record: ``<name>.hea`` and ``<name>.dat`` in ``directory``.

    Every signal goes into the one signal file at its own rate (multi-frequency
    records get samples per frame); the stored integers, gain and baseline,
    labels (signal descriptions), units and start time are kept, and the
    header's comments too when the record was read from WFDB (otherwise the
    patient's age and sex, PTB style). Invalid samples are written as the
    format's missing-sample code. Annotations are not written (WFDB keeps them
    in annotation files, which this writer does not produce).

    :param record: the record to write.
    :param directory: where to write; created if missing.
    :param fmt: the WFDB storage format: ``"16"`` (default), ``"212"``, ``"24"``,
        ``"32"``, ``"8"``, ``"61"``, ``"80"``, ``"160"``, ``"310"`` or ``"311"``.
    :param name: the record name (default: ``record.name`` without its extension,
        characters other than letters, digits, ``_`` and ``-`` made ``_``).
    :returns: the path of the header written.
    :raises UnrepresentableError: the record has no signals, a stored value is
        outside the format's range, signals cover different durations, a rate has
        no exact frame frequency, a text holds control characters, or a signal
        with invalid samples goes to format 8 (which has no missing-sample code).
    :raises OSError: the files cannot be written.

    Warns (:class:`~ecgingest.errors.EcgWarning`) when valid samples equal the
    format's missing-sample code (they read back as missing), when a baseline is
    not an integer and is rounded, and when annotations are left out.
    """
    try:
        code = int(fmt)
    except (TypeError, ValueError):
        code = -1
    if code not in FORMAT_RANGES:
        raise UnrepresentableError(f"WFDB format {fmt!r} is not one the writer produces "
                                   f"({', '.join(map(str, sorted(FORMAT_RANGES)))})",
                                   format="wfdb", field="format")
    if not record.signals:
        raise UnrepresentableError(f"record {record.name!r} has no signals to write",
                                   format="wfdb")
    if name is None:
        stem = record.name.rsplit("/", 1)[-1]
        stem = stem.rsplit(".", 1)[0] if "." in stem[1:] else stem
        name = _NAME.sub("_", stem).strip("_") or "record"
    elif not name or _NAME.search(name):
        raise UnrepresentableError(f"WFDB record name {name!r} may hold only letters, digits, "
                                   "'_' and '-'", format="wfdb", field="record name")
    frame_frequency, spf, nframes = _frame_layout(record)
    lo, hi = FORMAT_RANGES[code]
    invalid_code = _INVALID.get(code)
    specs = record.extras.get("signal_specs") if record.format == "wfdb" else None
    if specs is not None and len(specs) != len(record.signals):
        specs = None
    stored: list[np.ndarray] = []
    lines = []
    dat = f"{name}.dat"
    for i, sig in enumerate(record.signals):
        digital = np.asarray(sig.digital, dtype=np.int64)
        invalid = sig.invalid
        if invalid is not None and invalid.any():
            if invalid_code is None:
                raise UnrepresentableError(
                    f"signal {sig.label!r} has invalid samples, which format 8 cannot mark; "
                    "use format 16", format="wfdb", field="format")
            digital = np.where(invalid, invalid_code, digital)
        if len(digital) and code != 8 and (digital.min() < lo or digital.max() > hi):
            raise UnrepresentableError(
                f"signal {sig.label!r} holds values {int(digital.min())}..{int(digital.max())}, "
                f"outside format {code}'s range {lo}..{hi}; use a wider format (24 or 32)",
                format="wfdb", field="format")
        if invalid_code is not None:
            clashes = int(np.count_nonzero(digital == invalid_code)) - (
                0 if invalid is None else int(np.count_nonzero(invalid)))
            if clashes > 0:
                warnings.warn(f"signal {sig.label!r}: {clashes} valid samples equal format "
                              f"{code}'s missing-sample code {invalid_code} and will read back "
                              "as missing; a wider format (24 or 32) keeps them",
                              EcgWarning, stacklevel=caller_stacklevel())
        gain, baseline = _gain(sig, specs[i] if specs is not None else None)
        units = sig.units.strip()
        if units and (any(c.isspace() for c in units) or any(c in units for c in "()/")):
            raise UnrepresentableError(f"signal {sig.label!r}: units {sig.units!r} cannot be "
                                       "written in a WFDB gain field (no spaces, '/', '(' "
                                       "or ')')", format="wfdb", field="units")
        label = _check_text(sig.label, "signal description")
        token = f"{code}x{spf[i]}" if spf[i] > 1 else str(code)
        init = int(digital[0]) if len(digital) else 0
        checksum = (int(digital.sum()) + 32768) % 65536 - 32768
        gain_text = f"{_number(gain)}({baseline})" + (f"/{units}" if units else "")
        lines.append(f"{dat} {token} {gain_text} {_ADC_RESOLUTION[code]} 0 {init} {checksum} "
                     f"0 {label}".rstrip())
        stored.append(digital)
    if record.annotations:
        warnings.warn(f"record {record.name!r}: {len(record.annotations)} annotations are not "
                      "written (WFDB keeps them in annotation files)", EcgWarning, stacklevel=caller_stacklevel())
    head = f"{name} {len(record.signals)} {_number(frame_frequency)} {nframes}"
    start = _time_text(record.start_time)
    text = "\n".join([f"{head} {start}".rstrip(), *lines,
                      *(f"# {_check_text(c, 'comment')}" for c in _comments(record))]) + "\n"
    body = pack(code, stored, spf)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / dat).write_bytes(body)
    header = folder / f"{name}.hea"
    header.write_text(text, encoding="utf-8")
    return header
