"""WFDB decoding speed and memory: ecgingest against wfdb-python and plain numpy.

Generates 12-lead 500 Hz records (formats 16 and 212) in a temporary
directory and times, in one run:

* ecgingest digital (``read``) and physical (``read`` + ``Signal.physical``), as a
  process gets it (large outputs reuse memory of dropped ones from the array pool)
  and with the array pool off (every output in fresh memory, as in a first read),
* ``wfdb.rdrecord(..., physical=False, return_res=16)`` and ``wfdb.rdrecord(...)``,
* a numpy-only decode (``np.frombuffer`` + bit operations),
* the header-only path ``ecgingest.read_wfdb_header`` against ``wfdb.rdheader``,
* two records in two threads against one after the other, beside the same for
  the decode kernel alone (what the machine gives the decode loop itself),
* peak traced memory of a digital read over the size of its output arrays,
* the cost of fresh float64 output memory alone (page faults and zeroing),
  the floor under every physical read.

Run ``python benchmarks/bench_wfdb.py`` (1 h and 6 h records) or with
``--quick`` (a 10 min record, under a minute); ``--threads-only`` prints only the
two-record rows, of the 1 h records with ``--quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _threads import ThreadRounds

import ecgingest
from ecgingest import _memory
from ecgingest._memory import aligned_empty

FS = 500
NSIG = 12


def _signals(n: int, seed: int = 0) -> np.ndarray:
    """Plausible ECG-like integers (a random walk kept within 12 bits)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-6, 7, size=(n, NSIG), dtype=np.int16)
    walk = np.cumsum(steps, axis=0, dtype=np.int32)
    return (np.mod(walk + 2048, 4000) - 2000).astype(np.int16)


def _pack212(frames: np.ndarray) -> bytes:
    flat = frames.reshape(-1).astype(np.int32) & 0xFFF
    if len(flat) % 2:
        flat = np.append(flat, 0)
    a, b = flat[0::2], flat[1::2]
    out = np.empty((len(a), 3), dtype=np.uint8)
    out[:, 0] = a & 0xFF
    out[:, 1] = ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)
    out[:, 2] = b & 0xFF
    return out.tobytes()


def write_record(folder: Path, name: str, fmt: int, frames: np.ndarray) -> Path:
    data = frames.astype("<i2").tobytes() if fmt == 16 else _pack212(frames)
    with open(folder / f"{name}.dat", "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())  # reads are timed on a warm page cache, not during writeback
    lines = [f"{name} {NSIG} {FS} {len(frames)} 12:00:00 01/01/2020"]
    for i in range(NSIG):
        check = int(frames[:, i].astype(np.int64).sum()) % 65536
        lines.append(f"{name}.dat {fmt} 200/mV {12 if fmt == 212 else 16} 0 "
                     f"{frames[0, i]} {check} 0 lead{i}")
    header = folder / f"{name}.hea"
    header.write_text("\n".join(lines) + "\n")
    return header


def numpy_decode(header: Path, fmt: int, n: int) -> list[np.ndarray]:
    raw = np.fromfile(header.with_suffix(".dat"), dtype=np.uint8)
    if fmt == 16:
        flat = raw.view("<i2")
    else:
        g = raw[: len(raw) // 3 * 3].reshape(-1, 3).astype(np.int16)
        flat = np.empty(g.shape[0] * 2, dtype=np.int16)
        flat[0::2] = g[:, 0] | ((g[:, 1] & 0x0F) << 8)
        flat[1::2] = g[:, 2] | ((g[:, 1] & 0xF0) << 4)
        flat = np.where(flat > 2047, flat - 4096, flat).astype(np.int16)
    frames = flat[: n * NSIG].reshape(n, NSIG)
    return [np.ascontiguousarray(frames[:, i]) for i in range(NSIG)]


def best(fn, repeat: int) -> float:
    return compare({"only": fn}, repeat)["only"]


CLOCK = time.perf_counter
"""Wall clock; ``--cpu-time`` switches single-thread timings to process CPU time."""


def compare(fns: dict, repeat: int, clock=None) -> dict:
    """Best time of each function, run round-robin so load changes hit all alike."""
    clock = clock or CLOCK
    times: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return {name: min(values) for name, values in times.items()}


def ecg_digital(header: Path):
    return ecgingest.read(header)[0]


def ecg_physical(header: Path):
    record = ecgingest.read(header)[0]
    return [s.physical for s in record.signals]


@contextlib.contextmanager
def array_pool_off():
    """Every large output in fresh memory: a first read, or a process that turned the
    array pool off."""
    previous = _memory.set_array_pool_limit(0)
    try:
        yield
    finally:
        _memory.set_array_pool_limit(previous)


def cold(fn):
    def run(*args):
        with array_pool_off():
            return fn(*args)
    return run


def fresh_float64(n: int) -> list[np.ndarray]:
    """Allocate NSIG float64 arrays of ``n`` as ``Signal.physical`` does and write one
    value per 4 KiB page: what the kernel charges (page faults, zeroing) for fresh
    physical output."""
    with array_pool_off():
        arrays = [aligned_empty(n, np.float64) for _ in range(NSIG)]
        for a in arrays:
            a[::512] = 0.0
    return arrays


def peak_ratio(fn, out_bytes: int) -> float:
    """Peak traced allocation over the output, with the array pool off so that every
    output byte is counted as freshly allocated."""
    gc.collect()
    with array_pool_off():
        tracemalloc.start()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del result
    return peak / out_bytes


def kernel_decoders(h1: Path, h2: Path, n: int, fmt: int = 212) -> list:
    """The decode kernel alone on two records: no file mapping, allocation or
    record building, only the bytes-to-samples loop every read runs with the GIL
    released, into outputs laid out as a read lays them out (views of one block,
    ``_memory.block_views``). Twelve separate numpy arrays start wherever the C
    library puts them, often all at one offset within a page, a layout that
    alone doubles the decode's time. One callable per record."""
    from ecgingest._ext.wfdb import decode_group

    data = [np.fromfile(h.with_suffix(".dat"), dtype=np.uint8) for h in (h1, h2)]
    outs = [_memory.block_views([n] * NSIG, np.int16) for _ in data]

    def decode(i: int) -> None:
        status, _, _ = decode_group(data[i], fmt, n * NSIG, [1] * NSIG, [0] * NSIG, outs[i],
                                    [0] * NSIG)
        assert status == 0

    return [functools.partial(decode, 0), functools.partial(decode, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 10 min record, fewer repeats")
    parser.add_argument("--threads-only", action="store_true",
                        help="only the two-record rows (two threads, controls), of 1 h "
                             "records (and 6 h without --quick)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time single-thread runs in process CPU time (steadier on a "
                             "shared machine); the thread comparison stays wall clock")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    import wfdb

    durations = [("10 min", 600)] if args.quick else [("1 h", 3600), ("6 h", 6 * 3600)]
    if args.threads_only:
        durations = [("1 h", 3600)] if args.quick else [("1 h", 3600), ("6 h", 6 * 3600)]
    repeat = 3 if args.quick else 5
    rows: list[tuple[str, str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, seconds in durations:
            n = seconds * FS
            frames = _signals(n)
            samples = n * NSIG / 1e6
            for fmt in (212, 16):
                name = f"r{fmt}_{seconds}"
                header = write_record(folder, name, fmt, frames)
                stem = str(header.with_suffix(""))
                ref = ecg_digital(header)
                assert all(np.array_equal(s.digital, frames[:, i])
                           for i, s in enumerate(ref.signals)), "decode mismatch"
                del ref
                if args.threads_only:
                    continue
                t = compare({
                    "ed": lambda: ecg_digital(header),
                    "wd": lambda: wfdb.rdrecord(stem, physical=False, return_res=16),
                    "np": lambda: numpy_decode(header, fmt, n),
                    "ep": lambda: ecg_physical(header),
                    "wp": lambda: wfdb.rdrecord(stem),
                    "edc": lambda: cold(ecg_digital)(header),
                    "epc": lambda: cold(ecg_physical)(header),
                }, 2 if seconds > 3600 else repeat)
                rows.append((label, f"{fmt} digital", samples / t["ed"], samples / t["wd"],
                             samples / t["np"], samples / t["edc"]))
                rows.append((label, f"{fmt} physical", samples / t["ep"], samples / t["wp"],
                             float("nan"), samples / t["epc"]))
                if fmt == 16:
                    t_zero = compare({"z": lambda: fresh_float64(n)}, repeat)["z"]
                    print(f"fresh float64 output ({label}): allocating and first touching "
                          f"{NSIG} arrays of {n} takes {t_zero * 1e3:.1f} ms "
                          f"({samples / t_zero:.0f} Msamples/s); a physical read costs at "
                          f"least the digital read plus this")
                if seconds == durations[0][1]:
                    out_bytes = n * NSIG * 2
                    mem_d = peak_ratio(lambda: ecg_digital(header), out_bytes)
                    mem_p = peak_ratio(lambda: ecg_physical(header), out_bytes * 5)
                    mem_w = peak_ratio(lambda: wfdb.rdrecord(stem, physical=False,
                                                             return_res=16), out_bytes)
                    print(f"peak memory / output ({label}, fmt {fmt}): ecgingest digital "
                          f"{mem_d:.2f}x, ecgingest digital+physical {mem_p:.2f}x, "
                          f"wfdb digital {mem_w:.2f}x")
            # threads: two different records, sequential vs concurrent, beside the
            # numpy and memory-copy controls measured in the same rounds
            for fmt in (212, 16):
                # both records written afresh: a file left unread for a while may have
                # its page cache dropped and read back in small pages, and a read of
                # it then takes longer (see _threads.py)
                h1 = write_record(folder, f"r{fmt}_{seconds}", fmt, frames)
                h2 = write_record(folder, f"t{fmt}_{seconds}", fmt, frames)
                for kind, read in (("digital", ecg_digital), ("physical", ecg_physical)):
                    reads = [functools.partial(read, h) for h in (h1, h2)]
                    kernels = kernel_decoders(h1, h2, n, fmt)
                    # pool off and pool on in separate rounds: turning the pool off
                    # empties it
                    with ThreadRounds() as rounds:
                        with array_pool_off():
                            for _ in range(repeat):
                                gc.collect()
                                rounds.round("pool off", reads)
                        for _ in range(2 * repeat):
                            gc.collect()
                            rounds.round("read", reads)
                            gc.collect()
                            rounds.round("fresh", reads, fresh=True)
                            rounds.round("kernel", kernels)
                            rounds.reference_round()
                            rounds.control_round()
                    print(f"threads ({label}, fmt {fmt} {kind}): sequential "
                          f"{rounds.seq['read'] * 1e3:.1f} ms, two threads "
                          f"{rounds.con['read'] * 1e3:.1f} ms, {rounds.summary('read')} "
                          f"(on threads started for each round: "
                          f"{rounds.speed_up('fresh'):.2f}x; array pool off: "
                          f"{rounds.speed_up('pool off'):.2f}x; cores: {os.cpu_count()})")
                    if kind == "digital":
                        print(f"threads ({label}, fmt {fmt} decode kernel alone: bytes in "
                              f"memory, outputs allocated once): sequential "
                              f"{rounds.seq['kernel'] * 1e3:.1f} ms, two threads "
                              f"{rounds.con['kernel'] * 1e3:.1f} ms, "
                              f"{rounds.speed_up('kernel'):.2f}x")
        if args.threads_only:
            return
        header = folder / f"r212_{durations[0][1]}.hea"
        stem = str(header.with_suffix(""))
        loops = 200
        t = compare({"ours": lambda: [ecgingest.read_wfdb_header(header) for _ in range(loops)],
                     "wfdb": lambda: [wfdb.rdheader(stem) for _ in range(loops // 10)]}, 5)
        t_h, t_wh = t["ours"] / loops, t["wfdb"] / (loops // 10)
        print(f"header only: ecgingest.read_wfdb_header {t_h * 1e6:.1f} us, wfdb.rdheader "
              f"{t_wh * 1e6:.1f} us, ratio {t_wh / t_h:.0f}x")
    print()
    print(f"clock: {'process CPU time' if args.cpu_time else 'wall'}")
    print("| record | read | ecgingest Msamples/s | wfdb.rdrecord Msamples/s | ratio | "
          "numpy-only Msamples/s | ecgingest, array pool off | ratio, pool off |")
    print("|---|---|---|---|---|---|---|---|")
    for label, what, ours, theirs, npy, ours_cold in rows:
        npy_text = "-" if npy != npy else f"{npy:.0f}"
        print(f"| {label} | {what} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.1f}x | "
              f"{npy_text} | {ours_cold:.0f} | {ours_cold / theirs:.1f}x |")


if __name__ == "__main__":
    main()
