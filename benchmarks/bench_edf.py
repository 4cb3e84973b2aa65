"""EDF+C read speed and memory: ecgingest against pyedflib, edfio and a numpy-only floor.

Generates 12-lead 500 Hz EDF+C files (1 h, and 6 h without ``--quick``) in a
temporary directory and times, in one run:

- full physical read (every signal as float64),
- digital read (stored integers),
- header only,
- two files in two threads against the same two files read one after the other,
  beside the same comparison for the physical conversion alone (most of a
  physical read's time: writing the float64 output) and for a plain memory copy
  of the file's size (what two threads of memory-bound work gain on this machine);
  the second file is written like the first, and each one's read alone is printed
  with that of a ``sendfile`` copy (how a file was written changes how long its
  read takes: see :func:`bench_threads`),

and the peak traced memory of a full physical read against the size of the
arrays it returns. Prints best times and ratios (peer time / ecgingest time, so
higher means ecgingest is faster). ecgingest runs as a process gets it (large
outputs reuse the memory of dropped ones from the array pool) and with the
array pool off (every output in fresh memory, as in a first read).

    python benchmarks/bench_edf.py            # 1 h and 6 h files
    python benchmarks/bench_edf.py --quick    # 1 h file, fewer repeats
    python benchmarks/bench_edf.py --threads-only   # the two-thread rows only
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from _threads import ThreadRounds

import ecgingest
from ecgingest import _memory
from ecgingest._ext.scale import to_physical

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RATE = 500
ANN_SLOT = 30  # samples (60 bytes) per record for the time-keeping TAL


def _field(text: str, width: int) -> bytes:
    return text.encode("ascii").ljust(width)


def write_file(path: Path, seconds: int) -> None:
    """A 12-lead EDF+C file of ``seconds`` 1-s data records (synthetic ECG-like data)."""
    ns = len(LEADS) + 1
    rows = [(lead, "AgAgCl electrode", "uV", "-32768", "32767", "-32768", "32767",
             "HP:0.05Hz LP:150Hz", str(RATE)) for lead in LEADS]
    rows.append(("EDF Annotations", "", "", "-1", "1", "-32768", "32767", "", str(ANN_SLOT)))
    header = b"".join([
        _field("0", 8), _field("X M 01-JAN-1970 Bench_Mark", 80),
        _field("Startdate 01-JAN-2024 X X bench", 80), _field("01.01.24", 8),
        _field("00.00.00", 8), _field(str(256 * (ns + 1)), 8), _field("EDF+C", 44),
        _field(str(seconds), 8), _field("1", 8), _field(str(ns), 4)])
    for column, width in enumerate((16, 80, 8, 8, 8, 8, 8, 80, 8)):
        header += b"".join(_field(row[column], width) for row in rows)
    header += b" " * (32 * ns)
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    base = (3000 * np.sin(2 * np.pi * 1.2 * t)).astype(np.int16)
    record = np.empty(len(LEADS) * RATE + ANN_SLOT, dtype="<i2")
    chunk = 600
    with open(path, "wb") as fh:
        fh.write(header)
        for start in range(0, seconds, chunk):
            n = min(chunk, seconds - start)
            block = np.empty((n, record.size), dtype="<i2")
            noise = rng.integers(-200, 200, (n, len(LEADS), RATE), dtype=np.int16)
            block[:, :len(LEADS) * RATE] = (noise + base).reshape(n, -1)
            raw = block.view(np.uint8)
            raw[:, len(LEADS) * RATE * 2:] = 0
            for k in range(n):
                tal = f"+{start + k}\x14\x14\x00".encode()
                raw[k, len(LEADS) * RATE * 2:len(LEADS) * RATE * 2 + len(tal)] = np.frombuffer(
                    tal, np.uint8)
            fh.write(block.tobytes())
        fh.flush()
        os.fsync(fh.fileno())  # reads are timed on a warm page cache, not during writeback


# --------------------------------------------------------------------------- readers


def ecg_physical(path: Path) -> list[np.ndarray]:
    [record] = ecgingest.read(path)
    return [s.physical for s in record.signals]


def ecg_digital(path: Path) -> list[np.ndarray]:
    [record] = ecgingest.read(path)
    return [s.digital for s in record.signals]


@contextlib.contextmanager
def array_pool_off() -> Iterator[None]:
    """Every large output in fresh memory. Not for use in two threads at once: the
    second would restore the first one's 0 and leave the pool off."""
    previous = _memory.set_array_pool_limit(0)
    try:
        yield
    finally:
        _memory.set_array_pool_limit(previous)


def ecg_physical_cold(path: Path) -> list[np.ndarray]:
    with array_pool_off():
        return ecg_physical(path)


def ecg_digital_cold(path: Path) -> list[np.ndarray]:
    with array_pool_off():
        return ecg_digital(path)


def ecg_header(path: Path) -> object:
    return ecgingest.read_edf_header(path)


def ecg_decode_mmap(path: Path) -> list[np.ndarray]:
    """The EDF decoder over a memory-mapped file (what the pipeline would reach if it
    mapped files instead of reading them into a bytes object)."""
    import mmap

    from ecgingest.formats import edf
    from ecgingest.formats._base import DecodeContext

    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    record = edf.FORMAT.decode(memoryview(mapped), DecodeContext("edf", name=path.name))
    return [s.digital for s in record.signals]


def pyedflib_highlevel(path: Path) -> object:
    from pyedflib import highlevel

    signals, _, _ = highlevel.read_edf(str(path))
    return signals


def pyedflib_readsignal(path: Path) -> list[np.ndarray]:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as reader:
        return [reader.readSignal(i) for i in range(reader.signals_in_file)]


def pyedflib_digital(path: Path) -> list[np.ndarray]:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as reader:
        return [reader.readSignal(i, digital=True) for i in range(reader.signals_in_file)]


def pyedflib_header(path: Path) -> object:
    import pyedflib

    reader = pyedflib.EdfReader(str(path))
    reader.close()
    return reader


def edfio_physical(path: Path) -> list[np.ndarray]:
    import edfio

    edf = edfio.read_edf(path, lazy_load_data=False)
    return [s.data for s in edf.signals]


def edfio_digital(path: Path) -> list[np.ndarray]:
    import edfio

    edf = edfio.read_edf(path, lazy_load_data=False)
    return [s.digital for s in edf.signals]


def edfio_lazy_open(path: Path) -> object:
    import edfio

    return edfio.read_edf(path, lazy_load_data=True)


def _numpy_records(path: Path) -> tuple[np.ndarray, int]:
    raw = np.fromfile(path, dtype=np.uint8)
    ns = int(raw[252:256].tobytes())
    header = 256 * (ns + 1)
    per_record = len(LEADS) * RATE + ANN_SLOT
    n = (raw.size - header) // (2 * per_record)
    records = raw[header:header + n * 2 * per_record].view("<i2").reshape(n, per_record)
    return records, n


def numpy_digital(path: Path) -> list[np.ndarray]:
    """The floor: read all bytes, then one strided copy per lead."""
    records, _ = _numpy_records(path)
    return [np.ascontiguousarray(records[:, i * RATE:(i + 1) * RATE]).reshape(-1)
            for i in range(len(LEADS))]


def numpy_physical(path: Path) -> list[np.ndarray]:
    records, _ = _numpy_records(path)
    scale = 65535 / 65535
    out = []
    for i in range(len(LEADS)):
        values = np.empty(records.shape[0] * RATE)
        np.multiply(records[:, i * RATE:(i + 1) * RATE], scale,
                    out=values.reshape(records.shape[0], RATE))
        values += 0.0
        out.append(values)
    return out


# --------------------------------------------------------------------------- timing


def timed(fn: Callable[[Path], object], path: Path, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call (the minimum is the
    least disturbed by other load on a shared machine)."""
    fn(path)
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - t0)
        del result
    return min(times)


def threaded(fn: Callable[[Path], object], paths: list[Path], repeats: int,
             fresh: bool = False) -> ThreadRounds:
    """Sequential and two-thread rounds of reading ``paths``, each repetition also
    running the compute reference (``_threads``); with ``fresh`` also rounds on
    threads started for each round."""
    with ThreadRounds() as rounds:
        for _ in range(repeats):
            gc.collect()
            rounds.round("read", [functools.partial(fn, p) for p in paths])
            if fresh:
                gc.collect()
                rounds.round("fresh", [functools.partial(fn, p) for p in paths], fresh=True)
            rounds.reference_round()
            rounds.control_round()
    return rounds


_MEMORY_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
import numpy as np
from bench_edf import ecg_physical, _high_water_mark
probe = np.ones(1 << 20)  # numpy's import and first allocation are in the baseline
base = _high_water_mark()
arrays = ecg_physical(__import__("pathlib").Path(sys.argv[1]))
peak = _high_water_mark()
returned = sum(a.nbytes for a in arrays) * 1.25  # + the int16 digital arrays kept
print(peak - base, int(returned))
"""


def _high_water_mark() -> int:
    """Peak resident bytes of this process (Linux ``VmHWM``; ``ru_maxrss`` elsewhere,
    which after ``exec`` may still include the parent's peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(path: Path) -> tuple[int, int]:
    """(peak resident-memory growth, bytes of the returned arrays) of one full physical
    read in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(path),
                          str(Path(__file__).resolve().parent)],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def bench_file(path: Path, repeats: int) -> None:
    samples = len(LEADS) * RATE * ecgingest.read_edf_header(path).n_records
    cap = _memory.set_array_pool_limit(0)
    _memory.set_array_pool_limit(cap)
    print(f"\n{path.name}: {path.stat().st_size / 1e6:.1f} MB, {samples / 1e6:.1f} Msamples, "
          f"best of {repeats}, array pool cap {cap >> 20} MiB")
    rows = [
        ("physical", "ecgingest", ecg_physical),
        ("physical", "(ecgingest, array pool off)", ecg_physical_cold),
        ("physical", "pyedflib highlevel.read_edf", pyedflib_highlevel),
        ("physical", "pyedflib readSignal", pyedflib_readsignal),
        ("physical", "edfio eager", edfio_physical),
        ("physical", "numpy floor", numpy_physical),
        ("digital", "ecgingest", ecg_digital),
        ("digital", "(ecgingest, array pool off)", ecg_digital_cold),
        ("digital", "(ecgingest decoder over mmap)", ecg_decode_mmap),
        ("digital", "pyedflib readSignal(digital)", pyedflib_digital),
        ("digital", "edfio eager", edfio_digital),
        ("digital", "numpy floor", numpy_digital),
        ("header", "ecgingest read_edf_header", ecg_header),
        ("header", "pyedflib EdfReader open", pyedflib_header),
        ("header", "edfio lazy open", edfio_lazy_open),
    ]
    results: dict[str, float] = {}
    cold: dict[str, float] = {}
    peers: list[tuple[str, str, float]] = []
    print(f"{'task':9} {'reader':30} {'time':>10} {'Msamples/s':>11} {'peer/ecgingest':>15}")
    for task, reader, fn in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = timed(fn, path, repeats if task != "header" else repeats * 20)
        if reader.startswith("ecgingest"):
            results[task] = t
        elif reader.startswith("(ecgingest, array pool off"):
            cold[task] = t
        elif not reader.startswith("("):
            peers.append((task, reader, t))
        rate = f"{samples / t / 1e6:11.0f}" if task != "header" else f"{'':11}"
        ratio = "" if reader.startswith(("ecgingest", "(")) else f"{t / results[task]:14.2f}x"
        unit = f"{t * 1e3:8.2f}ms" if t < 10 else f"{t:8.2f} s"
        print(f"{task:9} {reader:30} {unit:>10} {rate} {ratio:>15}")
    print("pool off  peer/ecgingest with the array pool off: " + ", ".join(
        f"{task} {reader} {t / cold[task]:.2f}x" for task, reader, t in peers if task in cold))
    peak, returned = peak_memory(path)
    print(f"memory    ecgingest physical: peak RSS growth {peak / 1e6:.0f} MB for "
          f"{returned / 1e6:.0f} MB of returned arrays (digital + physical): "
          f"{peak / returned:.2f}x")


def alone(fn: Callable[[Path], object], paths: list[Path],
          repeats: int) -> list[tuple[float, float]]:
    """Best wall and best CPU time of reading each of ``paths`` on its own, the files
    taken in turn in each repetition (after one warm-up read of each) so all see the
    same machine. CPU time (the reading thread's) is what a read costs even while
    other processes take the cores."""
    for p in paths:
        fn(p)
    best = [(float("inf"), float("inf"))] * len(paths)
    for _ in range(repeats):
        for i, p in enumerate(paths):
            gc.collect()
            c0, t0 = time.thread_time(), time.perf_counter()
            result = fn(p)
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
            del result
    return best


def bench_threads(path: Path, repeats: int) -> None:
    """Two files in two threads against the same two read one after the other, beside
    the controls.

    The second file is written by :func:`write_file` like the first, so the two
    threads get the same work, as the numpy control's do: how a file was written
    decides how the page cache holds it, and a copy made by ``sendfile``
    (``shutil.copyfile``) is held in small folios that the mapping must fault in
    and unmap 4 KiB at a time. Its read of the same bytes takes longer (printed
    below), and two reads of unequal length cannot gain 2x. The first file is
    written again here too: left unread while the other readers ran, its page
    cache may have been dropped and read back in small folios (see _threads.py)."""
    n_records = ecgingest.read_edf_header(path).n_records
    samples = len(LEADS) * RATE * n_records
    write_file(path, n_records)
    twin = path.with_name(path.stem + "_second.edf")
    write_file(twin, n_records)
    copied = path.with_name(path.stem + "_sendfile_copy.edf")
    shutil.copyfile(path, copied)
    with open(copied, "rb+") as fh:
        os.fsync(fh.fileno())  # no writeback during the timed reads
    first, second, small = (f"{wall * 1e3:.1f} ms ({cpu * 1e3:.1f} ms CPU)" for wall, cpu
                            in alone(ecg_digital, [path, twin, copied], repeats))
    copied.unlink()
    print(f"threads   each file read alone, digital: {first} and {second}; the first file "
          f"copied by sendfile (small page-cache folios) {small}")

    def report(what: str, rounds: ThreadRounds, extra: str = "") -> None:
        print(f"threads   {what}, 2 files: sequential {rounds.seq['read'] * 1e3:.1f} ms, "
              f"2 threads {rounds.con['read'] * 1e3:.1f} ms, {rounds.summary('read')}{extra}")

    rounds = threaded(ecg_physical, [path, twin], repeats, fresh=True)
    report("ecgingest physical", rounds,
           f"; on threads started for each round {rounds.speed_up('fresh'):.2f}x")
    report("ecgingest digital", threaded(ecg_digital, [path, twin], repeats))
    with array_pool_off():  # once around both threads: toggling it in each would race
        report("ecgingest physical, array pool off",
               threaded(ecg_physical, [path, twin], repeats))
    decoded = {p: ecgingest.read(p)[0] for p in (path, twin)}

    def convert_decoded(p: Path) -> None:
        # the kernel behind Signal.physical, which caches its result
        for s in decoded[p].signals:
            to_physical(s.digital, s.scale, s.offset)

    rounds = threaded(convert_decoded, [path, twin], repeats)
    report("ecgingest conversion alone (physical of records already decoded)", rounds,
           f"; {2 * samples * 8 / rounds.con['read'] / 1e9:.1f} GB/s of float64 written "
           f"in two threads, {samples * 8 / (rounds.seq['read'] / 2) / 1e9:.1f} in one")
    decoded.clear()
    copies = {p: (np.fromfile(p, dtype=np.uint8), np.empty(p.stat().st_size, np.uint8))
              for p in (path, twin)}
    for src, dst in copies.values():
        dst[:] = src

    def copy_file_bytes(p: Path) -> None:
        src, dst = copies[p]
        np.copyto(dst, src)

    rounds = threaded(copy_file_bytes, [path, twin], repeats)
    report("memory copy of the file's bytes (warm buffers)", rounds,
           f"; the ceiling for memory-bound work: one thread moves "
           f"{2 * 2 * path.stat().st_size / rounds.seq['read'] / 1e9:.1f} GB/s")
    copies.clear()
    report("numpy floor", threaded(numpy_physical, [path, twin], repeats))
    twin.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 h file only, 3 repeats")
    parser.add_argument("--threads-only", action="store_true",
                        help="only the two-file rows (two threads, controls)")
    args = parser.parse_args()
    hours = [1] if args.quick else [1, 6]
    repeats = 3 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        for h in hours:
            path = Path(tmp) / f"ecg12_{h}h.edf"
            write_file(path, 3600 * h)
            if args.threads_only:
                print(f"\n{path.name}: {path.stat().st_size / 1e6:.1f} MB, best of {repeats}")
            else:
                bench_file(path, repeats)
            bench_threads(path, repeats)


if __name__ == "__main__":
    main()
