"""Compressed Delta speed: ecgingest against a numpy-only codec and decompression alone.

Workload: 12-lead, 500 Hz, 16-bit ECG-like data in 10 s frames (5000 samples
per lead per frame), one hour by default (360 frames), for every coding x
compression. For each pair it times

* ``ecgingest``: ``formats.cdelta.decode_payload`` on every frame (header,
  bounded decompression, Cython kernel);
* ``numpy``: the same decoding written with numpy only (struct + the
  decompressor + vectorised zig-zag and wrapping cumulative sums);
* ``decompress``: the decompressor alone (zstandard / zlib, one reused context), the floor;
* the cost of the fresh Zstandard context ecgingest makes for every frame (so
  an error never depends on what was read before), against frames of 10 s, 1 s
  and 0.1 s;
* encoders: ``ecgingest.encode_compressed_delta`` against a numpy encoder,
  both end to end and for the coding stage alone (no compression).

Run ``python benchmarks/bench_cdelta.py`` (or ``--quick``: 2 minutes of
data; well under a minute on an idle machine). Times are CPU time of this
process (everything runs on one thread), best of 3 round-robin repeats, so
other load on a shared machine disturbs them less than wall-clock time.
"""

from __future__ import annotations

import argparse
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
DCTX = zstandard.ZstdDecompressor()  # the peers reuse one context (ecgingest makes one a frame)
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


def race(fns, repeats: int) -> list[float]:
    """Best time of each function, run round-robin so a busy machine slows all alike."""
    times = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.process_time()
            fn()
            times[k] = min(times[k], time.process_time() - start)
    return times


def context_cost(x: np.ndarray, repeats: int) -> None:
    """Decoding Zstandard frames with a fresh context each (ecgingest) against one reused
    context (the decoder with ``zstandard.ZstdDecompressor`` patched to hand out one)."""
    reused = DCTX

    class OneContext:
        def __getattr__(self, name: str) -> object:
            return getattr(zstandard, name)

        def ZstdDecompressor(self) -> object:  # stands in for the class
            return reused

    for seconds in (10, 1, 0.1):
        step = int(seconds * RATE)
        frames = [ecgingest.encode_compressed_delta(np.ascontiguousarray(x[:, i:i + step]),
                                                    sample_rate=RATE)
                  for i in range(0, min(x.shape[1], 600 * int(RATE)), step)]

        def with_module(module: object) -> None:
            cdelta.zstandard = module  # type: ignore[assignment]
            try:
                for frame in frames:
                    cdelta.decode_payload(frame)
            finally:
                cdelta.zstandard = zstandard

        fresh, one = race([lambda: with_module(zstandard), lambda: with_module(OneContext())],
                          repeats)
        n = len(frames)
        print(f"context   {seconds:g} s frames: fresh context {fresh / n * 1e6:.1f} us/frame, "
              f"one reused {one / n * 1e6:.1f} us/frame ({fresh / one:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 minutes of data instead of an hour")
    parser.add_argument("--seconds", type=int, default=None, help="recording length")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (120 if args.quick else 3600)
    repeats = args.repeats or 3
    x = ecg_like(seconds)
    step = int(FRAME_SECONDS * RATE)
    chunks = [np.ascontiguousarray(x[:, i:i + step]) for i in range(0, x.shape[1], step)]
    mb = x.size * 2 / 1e6
    print(f"{seconds} s x {LEADS} leads at {RATE:g} Hz, 16-bit, {len(chunks)} frames of "
          f"{FRAME_SECONDS} s ({mb:.1f} MB decoded); CPU time, best of {repeats}")
    print(f"numpy {np.__version__}, zstandard {zstandard.__version__}, zlib {zlib.ZLIB_VERSION}")
    header = (f"{'coding':<20} {'compr':<5} {'ratio':>6} | {'decode ms':>9} {'numpy ms':>9} "
              f"{'decomp ms':>9} {'vs numpy':>8} {'vs decomp':>9} | {'enc ms':>7} "
              f"{'np enc ms':>9} {'enc x':>6} {'code x':>6}")
    print(header)
    print("-" * len(header))
    for coding_name, coding in CODINGS.items():
        coded_ours, coded_numpy = race(
            [lambda: [kernel.encode_samples(c, 16, coding) for c in chunks],
             lambda: [numpy_encode(c, 16, coding, 0) for c in chunks]], repeats)
        for compression_name, compression in COMPRESSIONS.items():
            frames = [ecgingest.encode_compressed_delta(c, sample_rate=RATE, coding=coding,
                                                        compression=compression)
                      for c in chunks]
            for frame, chunk in zip(frames[:3], chunks):  # the peers decode the same thing
                assert np.array_equal(numpy_decode(frame), chunk)
                assert np.array_equal(cdelta.decode_payload(frame)[1], chunk)
            size = sum(len(f) for f in frames)
            t_ours, t_numpy, t_decomp = race(
                [lambda: [cdelta.decode_payload(f) for f in frames],
                 lambda: [numpy_decode(f) for f in frames],
                 lambda: [decompress_only(f) for f in frames]], repeats)
            t_enc, t_np_enc = race(
                [lambda: [ecgingest.encode_compressed_delta(
                    c, sample_rate=RATE, coding=coding, compression=compression) for c in chunks],
                 lambda: [numpy_encode(c, 16, coding, compression) for c in chunks]], repeats)
            vs_decomp = f"{t_ours / t_decomp:8.2f}x" if compression else f"{'-':>9}"
            print(f"{coding_name:<20} {compression_name:<5} {mb * 1e6 / size:6.2f} | "
                  f"{t_ours * 1e3:9.1f} {t_numpy * 1e3:9.1f} {t_decomp * 1e3:9.1f} "
                  f"{t_numpy / t_ours:7.2f}x {vs_decomp} | {t_enc * 1e3:7.1f} "
                  f"{t_np_enc * 1e3:9.1f} {t_np_enc / t_enc:5.2f}x "
                  f"{coded_numpy / coded_ours:5.2f}x")
    context_cost(x, repeats)
    print("vs numpy: numpy-only decode time / ecgingest (higher is better); vs decomp: "
          "ecgingest decode / decompression alone (target <= 1.5); enc x: numpy encoder / "
          "ecgingest end to end; code x: the same for the coding stage alone (target >= 5)")


if __name__ == "__main__":
    main()
