"""Compressed Delta speed: ecgingest against a numpy-only codec and decompression alone.

Workload: 12-lead, 500 Hz, 16-bit ECG-like data in 10 s frames (5000 samples
per lead per frame), one hour by default (360 frames), for every coding x
compression. For each pair it times

* ``ecgingest``: ``formats.cdelta.decode_payload`` on every frame (header,
  bounded decompression and decoding);
* ``numpy``: the same decoding written with numpy only (struct + the
  decompressor + vectorised zig-zag and wrapping cumulative sums);
* ``decompress``: the decompressor alone (zstandard / zlib, one reused
  context), the floor. Like ecgingest it makes one new output per frame
  (a bytes object; ecgingest's is the samples array);
* Zstandard frames of 10 s, 1 s and 0.1 s through ecgingest's native path (a
  decompression context kept per thread) against python-zstandard with a fresh
  context per frame (the path taken where libzstd's functions cannot be found);
* encoders: ``ecgingest.encode_compressed_delta`` against a numpy encoder,
  both end to end and for the coding stage alone (no compression).

Run ``python benchmarks/bench_cdelta.py`` (or ``--quick``: 2 minutes of
data; well under a minute on an idle machine). Times are CPU time of this
process (everything runs on one thread). Each round runs every contestant
once, in an order rotated from round to round, so none always runs first
(after the others warmed the caches) and a busy moment of the machine falls
on all of them; a table cell is the best round, and "vs decomp" is the median
over rounds of the decode/decompress ratio of the same round, with its spread.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import ecgingest
from ecgingest._ext import cdelta as kernel
from ecgingest.formats import cdelta

RATE = 500.0
LEADS = 12
FRAME_SECONDS = 10
CODINGS = {"TWOS_COMPLEMENT": 0, "DELTA_ZIGZAG": 1, "DOUBLE_DELTA_ZIGZAG": 2}
COMPRESSIONS = {"NONE": 0, "ZSTD": 1, "ZLIB": 2}
DCTX = zstandard.ZstdDecompressor()  # the peers reuse one context (as ecgingest does per thread)
CCTX = zstandard.ZstdCompressor(level=3)


def ecg_like(seconds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = (t % 0.82) / 0.82
    beat = 1500 * np.exp(-((phase - 0.3) / 0.012) ** 2) + 300 * np.exp(-((phase - 0.6) / 0.05) ** 2)
    leads = [np.round((1 - 0.05 * k) * beat + 60 * np.sin(2 * np.pi * 0.25 * t + k)
                      + rng.normal(0, 5, t.size)) for k in range(LEADS)]
    return np.array(leads, dtype=np.int16)


# ------------------------------------------------------------- numpy-only peers

def numpy_encode(x: np.ndarray, bits: int, coding: int, compression: int) -> bytes:
    mask = (1 << bits) - 1
    values = x.astype(np.int64)
    for _ in range(coding):
        values = np.diff(values, axis=1, prepend=0)
    if coding:
        half = 1 << (bits - 1)
        values = ((values + half) & mask) - half
        values = (values << 1) ^ (values >> 63)
    body = values.astype(f"<i{bits // 8}" if bits != 24 else "<i4")
    if bits == 24:
        body = body.view(np.uint8).reshape(-1, 4)[:, :3]
    body = np.ascontiguousarray(body).tobytes()
    if compression == 1:
        body = CCTX.compress(body)
    elif compression == 2:
        body = zlib.compress(body, 6)
    return struct.pack("<4sQBIdBBB", b"cMdT", len(body), x.shape[0], x.shape[1], RATE, bits,
                       coding, compression) + body


def numpy_decode(frame: bytes) -> np.ndarray:
    _, size, channels, samples, _, bits, coding, compression = \
        struct.unpack_from("<4sQBIdBBB", frame)
    body = frame[28:28 + size]
    if compression == 1:
        body = DCTX.decompress(body, max_output_size=channels * samples * bits // 8)
    elif compression == 2:
        body = zlib.decompress(body)
    if bits == 24:
        raw = np.frombuffer(body, np.uint8).reshape(-1, 3).astype(np.int32)
        values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        values = (values ^ 0x800000) - 0x800000
    else:
        values = np.frombuffer(body, f"<i{bits // 8}")
    values = values.reshape(channels, samples)
    if coding == 0:
        return values.copy()
    u = values.astype(np.int64) & ((1 << bits) - 1)
    d = (u >> 1) ^ -(u & 1)
    for _ in range(coding):
        d = np.cumsum(d, axis=1)
    half = 1 << (bits - 1)
    out = ((d + half) & ((1 << bits) - 1)) - half
    return out.astype(np.int16 if bits == 16 else np.int32)


def decompress_only(frame: bytes) -> bytes:
    _, size, channels, samples, _, bits, _, compression = struct.unpack_from("<4sQBIdBBB", frame)
    body = frame[28:28 + size]
    if compression == 1:
        return DCTX.decompress(body, max_output_size=channels * samples * bits // 8)
    if compression == 2:
        return zlib.decompress(body)
    return bytes(body)


def race(fns, repeats: int) -> list[list[float]]:
    """CPU time of each function in each round; the order rotates from round to round."""
    rounds = []
    for r in range(repeats):
        times = [0.0] * len(fns)
        for j in range(len(fns)):
            k = (j + r) % len(fns)
            start = time.process_time()
            fns[k]()
            times[k] = time.process_time() - start
        rounds.append(times)
    return rounds


def best(rounds: list[list[float]]) -> list[float]:
    return [min(column) for column in zip(*rounds)]


def ratios(rounds: list[list[float]], a: int, b: int) -> tuple[float, float, float]:
    """Median, lowest and highest of the per-round ratio of function ``a`` to ``b``."""
    values = sorted(times[a] / times[b] for times in rounds)
    return statistics.median(values), values[0], values[-1]


def context_cost(x: np.ndarray, repeats: int) -> None:
    """Zstandard frames of 10 s, 1 s and 0.1 s: ecgingest's native path (one context kept
    per thread) against python-zstandard with a fresh context per frame (the path taken
    when libzstd's functions cannot be found)."""
    native = cdelta._zstd_samples

    for seconds in (10, 1, 0.1):
        step = int(seconds * RATE)
        frames = [ecgingest.encode_compressed_delta(np.ascontiguousarray(x[:, i:i + step]),
                                                    sample_rate=RATE)
                  for i in range(0, min(x.shape[1], 600 * int(RATE)), step)]

        def decode_all(kept_context: bool) -> None:
            cdelta._zstd_samples = native if kept_context else (lambda: None)  # type: ignore
            try:
                for frame in frames:
                    cdelta.decode_payload(frame)
            finally:
                cdelta._zstd_samples = native  # type: ignore[assignment]

        rounds = race([lambda: decode_all(True), lambda: decode_all(False)], repeats)
        kept, fresh = best(rounds)
        median, low, high = ratios(rounds, 1, 0)
        n = len(frames)
        print(f"context   {seconds:g} s frames: kept context {kept / n * 1e6:.1f} us/frame, "
              f"fresh context per frame {fresh / n * 1e6:.1f} us/frame "
              f"({median:.2f}x, rounds {low:.2f}-{high:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 minutes of data instead of an hour")
    parser.add_argument("--seconds", type=int, default=None, help="recording length")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (120 if args.quick else 3600)
    repeats = args.repeats or 5
    x = ecg_like(seconds)
    step = int(FRAME_SECONDS * RATE)
    chunks = [np.ascontiguousarray(x[:, i:i + step]) for i in range(0, x.shape[1], step)]
    mb = x.size * 2 / 1e6
    print(f"{seconds} s x {LEADS} leads at {RATE:g} Hz, 16-bit, {len(chunks)} frames of "
          f"{FRAME_SECONDS} s ({mb:.1f} MB decoded); CPU time, {repeats} rounds")
    print(f"numpy {np.__version__}, zstandard {zstandard.__version__}, zlib {zlib.ZLIB_VERSION}")
    header = (f"{'coding':<20} {'compr':<5} {'ratio':>6} | {'decode ms':>9} {'numpy ms':>9} "
              f"{'decomp ms':>9} {'vs numpy':>8} {'vs decomp':>9} {'rounds':>11} | {'enc ms':>7} "
              f"{'np enc ms':>9} {'enc x':>6} {'code x':>6}")
    print(header)
    print("-" * len(header))
    for coding_name, coding in CODINGS.items():
        coded_ours, coded_numpy = best(race(
            [lambda: [kernel.encode_samples(c, 16, coding) for c in chunks],
             lambda: [numpy_encode(c, 16, coding, 0) for c in chunks]], repeats))
        for compression_name, compression in COMPRESSIONS.items():
            frames = [ecgingest.encode_compressed_delta(c, sample_rate=RATE, coding=coding,
                                                        compression=compression)
                      for c in chunks]
            for frame, chunk in zip(frames[:3], chunks):  # the peers decode the same thing
                assert np.array_equal(numpy_decode(frame), chunk)
                assert np.array_equal(cdelta.decode_payload(frame)[1], chunk)
            size = sum(len(f) for f in frames)
            rounds = race(
                [lambda: [cdelta.decode_payload(f) for f in frames],
                 lambda: [numpy_decode(f) for f in frames],
                 lambda: [decompress_only(f) for f in frames]], repeats)
            t_ours, t_numpy, t_decomp = best(rounds)
            t_enc, t_np_enc = best(race(
                [lambda: [ecgingest.encode_compressed_delta(
                    c, sample_rate=RATE, coding=coding, compression=compression) for c in chunks],
                 lambda: [numpy_encode(c, 16, coding, compression) for c in chunks]], repeats))
            median, low, high = ratios(rounds, 0, 2)
            vs_decomp = f"{median:8.2f}x" if compression else f"{'-':>9}"
            spread = f"{low:.2f}-{high:.2f}" if compression else "-"
            print(f"{coding_name:<20} {compression_name:<5} {mb * 1e6 / size:6.2f} | "
                  f"{t_ours * 1e3:9.1f} {t_numpy * 1e3:9.1f} {t_decomp * 1e3:9.1f} "
                  f"{t_numpy / t_ours:7.2f}x {vs_decomp} {spread:>11} | {t_enc * 1e3:7.1f} "
                  f"{t_np_enc * 1e3:9.1f} {t_np_enc / t_enc:5.2f}x "
                  f"{coded_numpy / coded_ours:5.2f}x")
    context_cost(x, repeats)
    print("vs numpy: numpy-only decode time / ecgingest (higher is better); vs decomp: "
          "ecgingest decode / decompression alone, median of the rounds (target <= 1.5), "
          "rounds: its lowest-highest; enc x: numpy encoder / "
          "ecgingest end to end; code x: the same for the coding stage alone (target >= 5)")


if __name__ == "__main__":
    main()
