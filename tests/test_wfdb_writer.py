"""Test-side WFDB writer, and the round trips and fuzzing built on it.

The writer packs per-signal integer arrays into each signal format the way
the WFDB library writes them (frames of ``spf`` samples per signal, the bit
packing of 212/310/311 running over the flat stream, WFDB's partial last
groups), so the decoder must return exactly what went in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from ecgingest.errors import EcgIngestError
from ecgingest.formats import wfdb as fw
from ecgingest.sources import Entry

RANGES = {8: (-2000, 2000), 16: (-32768, 32767), 61: (-32768, 32767), 80: (-128, 127),
          160: (-32768, 32767), 24: (-(2**23), 2**23 - 1), 32: (-(2**31), 2**31 - 1),
          212: (-2048, 2047), 310: (-512, 511), 311: (-512, 511)}


def _interleave(signals: list[np.ndarray], spf: list[int]) -> np.ndarray:
    nframes = len(signals[0]) // spf[0]
    cols = [np.asarray(s, dtype=np.int64).reshape(nframes, k) for s, k in zip(signals, spf)]
    return np.concatenate(cols, axis=1).reshape(-1) if nframes else np.zeros(0, np.int64)


def pack(fmt: int, signals: list[np.ndarray], spf: list[int]) -> bytes:
    """Bytes of one signal file holding ``signals`` (each ``nframes * spf`` long)."""
    if fmt == 8:
        # first differences within each signal, d0 = 0 (x0 is the header's initial value)
        diffs = [np.diff(np.asarray(s, dtype=np.int64), prepend=s[0] if len(s) else 0)
                 for s in signals]
        flat = _interleave(diffs, spf)
        assert ((flat >= -128) & (flat <= 127)).all()
        return flat.astype(np.int8).tobytes()
    flat = _interleave(signals, spf)
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
        v = flat & 0xFFF
        out = bytearray()
        for i in range(0, len(v) - 1, 2):
            a, b = int(v[i]), int(v[i + 1])
            out += bytes([a & 0xFF, ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0), b & 0xFF])
        if len(v) % 2:
            a = int(v[-1])
            out += bytes([a & 0xFF, (a >> 8) & 0x0F])
        return bytes(out)
    if fmt in (310, 311):
        v = [int(x) & 0x3FF for x in flat]
        out = bytearray()
        for i in range(0, len(v), 3):
            s0 = v[i]
            s1 = v[i + 1] if i + 1 < len(v) else 0
            s2 = v[i + 2] if i + 2 < len(v) else 0
            left = len(v) - i
            if fmt == 310:
                w0 = (s0 << 1) | ((s2 & 0x1F) << 11)
                w1 = (s1 << 1) | ((s2 >> 5) << 11)
            else:
                w = s0 | (s1 << 10) | (s2 << 20)
                w0, w1 = w & 0xFFFF, w >> 16
            out += w0.to_bytes(2, "little")
            if left >= 2:
                out += w1.to_bytes(2, "little")
        return bytes(out)
    raise ValueError(fmt)


def write_header(name: str, signals: list[tuple], *, nframes: int | None,
                 fs: float = 100.0, checksums: list[int] | None = None) -> bytes:
    """Header text; each signal is ``(file, fmt token, samples[, gain token, label])``."""
    lines = [f"{name} {len(signals)} {fs:g}" + ("" if nframes is None else f" {nframes}")]
    for i, sig in enumerate(signals):
        file_name, fmt_token, samples = sig[:3]
        gain = sig[3] if len(sig) > 3 else "200/mV"
        label = sig[4] if len(sig) > 4 else f"s{i}"
        samples = np.asarray(samples, dtype=np.int64)
        init = int(samples[0]) if len(samples) else 0
        check = int(samples.sum()) if checksums is None else checksums[i]
        lines.append(f"{file_name} {fmt_token} {gain} 0 0 {init} {check} 0 {label}")
    return ("\n".join(lines) + "\n").encode()


@st.composite
def records(draw):
    fmt = draw(st.sampled_from(sorted(RANGES)))
    lo, hi = RANGES[fmt]
    nsig = draw(st.integers(1, 6))
    spf = [draw(st.integers(1, 3)) for _ in range(nsig)]
    nframes = draw(st.integers(1, 40))
    edge = st.sampled_from([lo, hi, lo + 1, -1, 0, 1])
    signals = []
    for k in spf:
        if fmt == 8:
            steps = draw(st.lists(st.integers(-128, 127), min_size=k * nframes,
                                  max_size=k * nframes))
            start = draw(st.integers(-500, 500))
            arr = start + np.cumsum([0] + steps[1:], dtype=np.int64)
        else:
            arr = np.array(draw(st.lists(st.one_of(edge, st.integers(lo, hi)),
                                         min_size=k * nframes, max_size=k * nframes)),
                           dtype=np.int64)
        signals.append(arr)
    return fmt, spf, nframes, signals


@given(records())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_writer_round_trip_returns_the_integers_exactly(case):
    fmt, spf, nframes, signals = case
    token = [str(fmt) + (f"x{k}" if k > 1 else "") for k in spf]
    header = write_header("r", [("r.dat", t, s) for t, s in zip(token, signals)],
                          nframes=nframes)
    pool = {"r.hea": Entry.from_bytes("r.hea", header),
            "r.dat": Entry.from_bytes("r.dat", pack(fmt, signals, spf))}
    [outcome] = fw.read_pool(pool, ["r.hea"], strict=True)
    assert outcome.error is None, outcome.error
    record = outcome.record
    for sig, expected, k in zip(record.signals, signals, spf):
        np.testing.assert_array_equal(sig.digital, expected)
        assert sig.sample_rate == 100.0 * k
    assert not record.warnings  # checksums verified


@given(st.sampled_from([212, 310, 311]), st.integers(1, 30), st.integers(1, 4))
def test_partial_last_group_keeps_only_complete_samples(fmt, nframes, nsig):
    rng = np.random.default_rng(nframes * 7 + nsig)
    lo, hi = RANGES[fmt]
    signals = [rng.integers(lo, hi + 1, nframes) for _ in range(nsig)]
    pool = {"r.hea": Entry.from_bytes("r.hea", write_header(
                "r", [("r.dat", str(fmt), s) for s in signals], nframes=nframes)),
            "r.dat": Entry.from_bytes("r.dat", pack(fmt, signals, [1] * nsig))}
    [outcome] = fw.read_pool(pool, ["r.hea"], strict=True)
    assert outcome.error is None, outcome.error
    for sig, expected in zip(outcome.record.signals, signals):
        np.testing.assert_array_equal(sig.digital, expected)


def _fixture_files(header: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in header.parent.iterdir()
            if not p.name.endswith((".npz", ".json"))}


MUTABLE = [FIXTURES / "wfdb" / "binformats" / "binformats.hea",
           FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea",
           FIXTURES / "wfdb" / "fmt311" / "311derive_3.hea",
           FIXTURES / "wfdb" / "flacformats" / "flacformats.hea",
           FIXTURES / "wfdb" / "multiseg_041s" / "041s.hea"]


@given(st.sampled_from(MUTABLE), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_real_files_end_in_a_record_or_a_typed_error(header, data):
    files = _fixture_files(header)
    headers = [n for n in sorted(files) if n.endswith(".hea")]
    signal_files = sorted(set(files) - set(headers))
    # a header and a signal file mutated together (either may be left intact)
    for names in (headers, signal_files):
        target = data.draw(st.sampled_from(names))
        blob = bytearray(files[target])
        for _ in range(data.draw(st.integers(0, 6))):
            kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            pos = data.draw(st.integers(0, max(len(blob) - 1, 0)))
            if kind == "flip" and blob:
                blob[pos] = data.draw(st.integers(0, 255))
            elif kind == "insert":
                blob[pos:pos] = data.draw(st.sampled_from(
                    [b" ", b"\n", b"0", b"9999999999", b"x4", b":7", b"+99", b"/", b"#", b"-1",
                     b"\xff\x7f", b"fLaC"]))
            elif kind == "delete" and blob:
                del blob[pos]
            elif kind == "truncate":
                del blob[pos:]
        files[target] = bytes(blob)
    pool = {name: Entry.from_bytes(name, content) for name, content in files.items()}
    for strict in (False, True):
        for outcome in fw.read_pool(pool, headers, strict=strict):
            assert (outcome.record is None) != (outcome.error is None)
            if outcome.error is not None:
                assert isinstance(outcome.error, EcgIngestError)
                # the message of read_pool's safety net for unexpected exceptions
                assert "could not be decoded (" not in str(outcome.error), outcome.error
            else:
                for sig in outcome.record.signals:
                    assert len(sig.physical) == len(sig.digital)


@given(st.binary(max_size=300))
def test_random_header_bytes_parse_or_raise_typed_errors(blob):
    try:
        fw.parse_header(blob)
    except EcgIngestError:
        pass
