"""Decoding speed of SCP-ECG files: ecgingest against BioSig (libbiosig), the
reference reader of the corpus, in one run.

    python benchmarks/bench_scp.py            # full run
    python benchmarks/bench_scp.py --quick    # well under a minute
    python benchmarks/bench_scp.py --keep-records   # thread rounds keep their records

Inputs: the SCP files of ``$ECGINGEST_CORPUS`` (else ``fixtures/scp``) and
generated 12-lead 10 s records (500 Hz, default Huffman table, second
differences; one with reference-beat subtraction) written by the test-side
encoder. Reports records/s and samples/s of the decoder on one thread, the
time per record spent holding the GIL (what bounds the gain from threads),
how much longer that part takes when two threads run on two CPUs than on one
(the cost of moving the GIL and the Python state it guards between cores:
threads on a shared machine measure it too, as CPU time), the throughput of
two threads over one, records/s through the public
``ecgingest.read(bytes)`` (what users call), and BioSig's records/s with the
ratio of ``read`` to it where BioSig is installed (``pip install biosig``;
``biosig.data`` takes a path, so it reads a copy in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from _threads import cross_core_ns, cross_core_range  # noqa: E402

import ecgingest  # noqa: E402
import scp_encoder as enc  # noqa: E402
from ecgingest.errors import EcgWarning  # noqa: E402
from ecgingest.formats import scp  # noqa: E402

try:  # the peer: BioSig's C library through its Python binding
    import biosig
except ImportError:  # pragma: no cover - optional peer
    biosig = None


def _synthetic_ecg(rng: np.random.Generator, n: int = 5000, fs: float = 500.0) -> np.ndarray:
    """12 leads of a plausible ECG in 5 µV units: beats every ~0.8 s plus noise."""
    t = np.arange(n) / fs
    beat = np.zeros(n)
    for onset in np.arange(0.3, t[-1], 0.8):
        beat += 220 * np.exp(-((t - onset) / 0.012) ** 2)          # QRS
        beat += 50 * np.exp(-((t - onset - 0.25) / 0.05) ** 2)      # T
        beat += 25 * np.exp(-((t - onset + 0.16) / 0.03) ** 2)      # P
    leads = [beat * g + 10 * np.sin(2 * np.pi * 0.3 * t + k) + rng.normal(0, 1.5, n)
             for k, g in enumerate(np.linspace(-1, 1.2, 12))]
    return np.round(np.array(leads)).astype(np.int64)


def generated_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    x = _synthetic_ecg(rng)
    ids = [1, 2, 3, 4, 5, 6, 7, 8, 61, 62, 63, 64]
    files = {
        "generated 12x10s huffman d2": enc.encode(enc.ScpSpec(
            rhythm=x, lead_ids=ids, huffman=enc.DEFAULT_TABLE, differences=2)),
    }
    beat = x[:, 150:450]  # one beat as the reference beat
    qrs = [(0, int(s) - 120, int(s), int(s) + 170) for s in np.arange(450, 4800, 400)]
    files["generated 12x10s huffman d2 refbeat"] = enc.encode(enc.ScpSpec(
        rhythm=x, lead_ids=ids, huffman=enc.DEFAULT_TABLE, differences=2, beat=beat,
        qrs=qrs, beat_fiducial=150))
    return files


def corpus_files() -> dict[str, bytes]:
    root = os.environ.get("ECGINGEST_CORPUS")
    folder = Path(root) / "scp" if root else ROOT / "fixtures" / "scp"
    out = {}
    for path in sorted(folder.glob("*")):
        if path.suffix.lower() == ".scp" and "healforce" not in path.name:
            out[path.name] = path.read_bytes()
    return out


def _rate(fn, data: bytes, seconds: float, clock=time.process_time) -> float:
    """Calls per CPU second of ``fn(data)`` over about ``seconds`` (best of 5 rounds).

    CPU time of this process, not wall time, so that other work on a shared
    machine does not count against the decoder; ``clock`` can be swapped."""
    fn(data)
    best = 0.0
    for _ in range(5):
        count, start = 0, clock()
        while True:
            fn(data)
            count += 1
            elapsed = clock() - start
            if elapsed >= seconds / 5:
                break
        best = max(best, count / elapsed)
    return best


def _thread_scaling(fn, data: bytes, seconds: float, threads: int, keep: bool = False) -> float:
    """Wall-clock throughput of ``threads`` threads over one thread.

    Rounds of one and of ``threads`` threads alternate (best of each is kept),
    each round long enough (about 0.3 s or more) for thread start-up not to
    count. Only meaningful when ``threads`` CPUs are free: the load average is
    printed with the results. Each record is dropped once decoded, as in
    ``_rate``; ``keep`` keeps every record of a round alive instead (a
    pipeline loading a whole database), which adds the garbage collector's
    passes over them (they hold the GIL) and fresh memory for their samples."""
    per_round = max(8, int(_rate(fn, data, 0.3, time.perf_counter) * max(0.3, seconds / 4)))

    def work(_):
        kept = []
        for _ in range(per_round):
            record = fn(data)
            if keep:
                kept.append(record)

    best = {1: 0.0, threads: 0.0}
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(3):
            for nthreads in (1, threads):
                start = time.perf_counter()
                list(pool.map(work, range(nthreads)))
                best[nthreads] = max(best[nthreads],
                                     nthreads * per_round / (time.perf_counter() - start))
    return best[threads] / best[1]


def _busy_python(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _control_item(held_us: float, free_us: float):
    """Work of a record's shape without ecgingest: per item, pure Python for
    ``held_us`` (holding the GIL) then one NumPy call of ``free_us`` that releases
    it (a square root over a per-thread array). Returns its two parts, ``(held,
    free)``, each a call without arguments."""
    import threading

    def per_call(fn, arg, count=300):
        start = time.thread_time()
        for _ in range(count):
            fn(arg)
        return (time.thread_time() - start) / count * 1e6

    loops = 64
    while per_call(_busy_python, loops) < held_us:
        loops = int(loops * 1.25) + 1
    arrays = threading.local()

    def native(n):
        if getattr(arrays, "n", None) != n:
            arrays.n, arrays.x, arrays.y = n, np.ones(n), np.empty(n)
        np.sqrt(arrays.x, out=arrays.y)

    length = 1024
    while per_call(native, length) < free_us:
        length = int(length * 1.25)

    return partial(_busy_python, loops), partial(native, length)


def _handoff_control(held_us: float, free_us: float, seconds: float) -> float:
    """Two-thread gain of the control item (:func:`_control_item`): what the
    machine gives a record that holds the GIL this share of its time, handing
    it over once."""
    held, free = _control_item(held_us, free_us)

    def item(_):
        held()
        free()

    return _thread_scaling(item, b"", seconds, 2)


#: kernel entry points that release the GIL (a tolerant read leaves the CRCs to
#: ``decode_signals``, or to ``container_crcs`` for bimodal records)
_NOGIL_KERNELS = ("decode_signals", "decode_leads", "bimodal_expand", "add_reference_beat",
                  "add_reference_beat_inplace", "container_crcs")


@contextmanager
def _timed_kernels() -> Iterator[threading.local]:
    """The kernels that release the GIL wrapped so that each thread adds the CPU
    time it spends in them to ``inside`` of the returned thread-local."""
    from ecgingest._ext import scp as kernels
    spent = threading.local()
    saved = {name: getattr(kernels, name) for name in _NOGIL_KERNELS}

    def timed(fn):
        def call(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent.inside = getattr(spent, "inside", 0.0) + time.thread_time() - start
        return call

    try:
        for name, fn in saved.items():
            setattr(kernels, name, timed(fn))
        yield spent
    finally:
        for name, fn in saved.items():
            setattr(kernels, name, fn)


def _gil_split(data: bytes, count: int = 200) -> tuple[float, float]:
    """Microseconds per record in total and inside the kernels that release the
    GIL (timed by wrapping them; the rest of a decode holds the GIL).

    CPU time of this thread, not wall time, so that time the thread spends
    descheduled on a shared machine counts for neither."""
    with _timed_kernels() as spent:
        _ecgingest(data)
        best_total = best_inside = float("inf")
        for _ in range(3):
            spent.inside = 0.0
            start = time.thread_time()
            for _ in range(count):
                _ecgingest(data)
            total = time.thread_time() - start
            if total < best_total:
                best_total, best_inside = total, spent.inside
    return best_total / count * 1e6, best_inside / count * 1e6


def _sleeps() -> int:
    """Times this thread has slept so far (voluntary context switches: with two
    threads taking turns, mostly waits for the GIL); 0 where not counted."""
    if not hasattr(resource, "RUSAGE_THREAD"):
        return 0
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def _held_across_cores(run: Callable[[], None], held: Callable[[], float],
                       count: int) -> tuple[float, float] | None:
    """How much longer the GIL-held part of an item takes when two threads run
    items on two different CPUs than when both are pinned to one CPU (taking
    turns): the cost of handing the GIL and the item's Python state from core
    to core, which bounds the two-thread gain however short the held part is.

    ``run()`` does one item; ``held()`` is the thread's GIL-held CPU seconds so
    far. Thread CPU time, best of three alternating rounds of each placement,
    so the figure holds on a shared machine (other work only adds noise). With
    it, the sleeps per item on two CPUs (a thread that finds the GIL taken when
    its kernel returns sleeps until the other hands it over, and runs its next
    GIL-held stretch slower after the wake-up: the held part growing towards
    the free part makes that happen on every item). None where threads cannot
    be pinned or there is one CPU."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    first, second = sorted(os.sched_getaffinity(0))[:2]

    def work(cpu: int, out: list[tuple[float, int]]) -> None:
        os.sched_setaffinity(0, {cpu})
        start, slept = held(), _sleeps()
        for _ in range(count):
            run()
        out.append((held() - start, _sleeps() - slept))

    best: dict[tuple[int, int], float] = {}
    sleeps: list[float] = []
    for _ in range(3):
        for cpus in ((first, second), (first, first)):
            out: list[tuple[float, int]] = []
            threads = [threading.Thread(target=work, args=(cpu, out)) for cpu in cpus]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            per_item = sum(spent for spent, _ in out) / (len(cpus) * count)
            best[cpus] = min(best.get(cpus, per_item), per_item)
            if cpus == (first, second):
                sleeps.append(sum(n for _, n in out) / (len(cpus) * count))
    return best[(first, second)] / best[(first, first)] - 1, sorted(sleeps)[1]


def _ecgingest_held_across_cores(data: bytes, count: int) -> tuple[float, float] | None:
    with _timed_kernels() as spent:
        def held() -> float:
            return time.thread_time() - getattr(spent, "inside", 0.0)
        return _held_across_cores(partial(_ecgingest, data), held, count)


def _control_held_across_cores(held_us: float, free_us: float,
                               count: int) -> tuple[float, float] | None:
    held_part, free_part = _control_item(held_us, free_us)
    spent = threading.local()

    def run() -> None:
        start = time.thread_time()
        held_part()
        spent.held = getattr(spent, "held", 0.0) + time.thread_time() - start
        free_part()

    return _held_across_cores(run, lambda: getattr(spent, "held", 0.0), count)


def _ecgingest(data: bytes):
    return scp.decode(data, name="bench.scp")


def _public_read(data: bytes):
    return ecgingest.read(data)


def _biosig_reader(tmp: Path):
    def read(data: bytes, _cache: dict = {}):
        key = id(data)
        path = _cache.get(key)
        if path is None:
            path = tmp / f"f{len(_cache)}.scp"
            path.write_bytes(data)
            _cache[key] = path
        return biosig.data(str(path))
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short timings (< 1 minute)")
    parser.add_argument("--keep-records", action="store_true",
                        help="keep every record of a thread round alive (see _thread_scaling)")
    args = parser.parse_args()
    seconds = 0.6 if args.quick else 3.0
    warnings.simplefilter("ignore", EcgWarning)
    files = {**corpus_files(), **generated_files()}
    peer_name = "biosig not installed"
    if biosig is not None:
        from importlib.metadata import version
        peer_name = f"biosig {version('biosig')}"
    print(f"ecgingest SCP-ECG decoding; peer: {peer_name}")
    header = (f"{'file':38s} {'samples':>8s} {'rec/s':>8s} {'Msamples/s':>10s} "
              f"{'GIL held':>12s} {'x-core':>14s} {'sleeps':>12s} {'2 threads':>9s} {'control':>8s} {'read rec/s':>10s} {'biosig rec/s':>12s} "
              f"{'ratio':>6s}")
    print(header)
    print("-" * len(header))
    cross_core: list[float | None] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        peer = _biosig_reader(Path(tmpdir)) if biosig else None
        for name, data in files.items():
            record = _ecgingest(data)
            samples = sum(len(s) for s in record.signals)
            one = _rate(_ecgingest, data, seconds)
            total_us, free_us = _gil_split(data, 50 if args.quick else 200)
            held = f"{total_us - free_us:4.0f}us {1 - free_us / total_us:4.0%}"
            cross_core.append(cross_core_ns())
            scaling = _thread_scaling(_ecgingest, data, seconds, 2, args.keep_records)
            control = _handoff_control(total_us - free_us, free_us, seconds)
            rounds = max(20, int(seconds * 1e6 / total_us / 6))
            cross = _ecgingest_held_across_cores(data, rounds)
            cross_control = _control_held_across_cores(total_us - free_us, free_us, rounds)
            cross_text = sleeps_text = "-"
            if cross is not None and cross_control is not None:
                cross_text = f"{cross[0]:+4.0%} ({cross_control[0]:+3.0%})"
                sleeps_text = f"{cross[1]:4.2f} ({cross_control[1]:4.2f})"
            public = _rate(_public_read, data, seconds)
            peer_rate = None
            if peer is not None:
                with open(os.devnull, "w") as devnull:  # biosig prints warnings on stderr
                    old = os.dup(2)
                    os.dup2(devnull.fileno(), 2)
                    try:
                        peer_rate = _rate(peer, data, seconds)
                    except Exception:
                        peer_rate = None
                    finally:
                        os.dup2(old, 2)
                        os.close(old)
            ratio = f"{public / peer_rate:6.1f}" if peer_rate else "     -"
            peer_text = f"{peer_rate:12.0f}" if peer_rate else f"{'-':>12s}"
            print(f"{name:38s} {samples:8d} {one:8.0f} {one * samples / 1e6:10.1f} "
                  f"{held:>12s} {cross_text:>14s} {sleeps_text:>12s} {scaling:8.2f}x {control:7.2f}x {public:10.0f} {peer_text} {ratio}")
    print(f"\n(rec/s per CPU second of this process; 'GIL held' = thread CPU time per record "
          f"outside the kernels that release the GIL, and its share; 'x-core' = how much longer "
          f"that GIL-held part takes with two threads on two CPUs than with both on one CPU "
          f"(the control's in brackets), the cost of moving the GIL and the Python state "
          f"it guards between cores; 'sleeps' = per record, how often a thread slept waiting "
          f"for the GIL in that two-CPU run (the control's in brackets): near 1, the threads "
          f"meet at every kernel's end and the held part runs slower after each wake-up; "
          f"'read rec/s' = "
          f"ecgingest.read(bytes); ratio = read rec/s / biosig rec/s; '2 threads' = wall-clock "
          f"throughput of two threads over one, "
          f"{'every record of a round kept' if args.keep_records else 'records dropped'}; "
          f"'control' = the same for work of that shape without ecgingest (pure Python for "
          f"the GIL-held time, then one NumPy call that releases the GIL for the rest): what "
          f"this machine gives such a record; cross-core round trip before the rows' "
          f"two-thread runs {cross_core_range(cross_core)}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
