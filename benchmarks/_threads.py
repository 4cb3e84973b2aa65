"""What two threads can give on this machine at the moment a benchmark runs.

A thread row's speed-up mixes three things: whether the code releases the GIL,
where the operating system puts the threads, and how much of a second core
the machine hands over. On a virtual machine neither of the last two is
constant:

- threads started for one round are sometimes both put on one core for a few
  milliseconds (the guest scheduler places a new thread before the other core
  is idle); the rounds here therefore run on a pool of two threads started once,
  as ``ingest_many`` and services do, and a row can add rounds on fresh threads;
- a register-only loop run in two threads has been measured here at anything
  from 1.2x to 2.1x in back-to-back runs, with both threads busy all the time
  and no steal time reported, as if the host ran one virtual core slower at
  times.

So every thread row also prints

- ``cores busy``: process CPU time over wall time during the best two-thread
  round (2.0 when both threads run all the time, 1.0 when a lock serialises
  them);
- a compute reference: a native loop that releases the GIL and touches only
  the caches (``numpy.sin`` over 512 KiB), timed in the same rounds, the
  speed-up this machine gave pure computation at that time;
- the numpy control: twelve 1.8 M-sample int16 arrays converted to float64
  (``np.multiply(a, 0.5, out=o)``) per thread, into outputs allocated once and
  into fresh outputs, and the workload's speed-up as a share of it
  (``ours / control``);
- a memory-bound control: a plain copy of 43 MB per thread (``np.copyto``), what
  two threads gain when one thread already moves memory as fast as it can.
  The numpy control moves its bytes at a few GB/s per thread, far below the
  machine's memory bandwidth, so it gains close to 2x where a read that
  already writes at the copy's speed cannot: compare a read with both;
- ``cross-core``: how long one cache line takes to go from one CPU to the
  other and back, measured right before the best two-thread round
  (``_crosscore.c``). Threads that take turns with the GIL pass the objects
  they both touch between the cores' caches at every hand-over. The host of
  a virtual machine may run its two CPUs on cores that share a cache (a
  round trip of about 90 ns here) or on cores far apart (about 370 ns), and
  moves them within seconds. The placement works both ways: cores far apart
  have memory paths of their own, cores near each other share one. In
  interleaved rounds of one run (medians), two MUSE readers gained 1.84x near
  and 1.02x far, the numpy control 1.57x near and 1.84x far, the memory copy
  1.00x near and 1.53x far. A GIL-bound row and a memory-bound row therefore
  meet their controls in opposite placements; each control's own best round
  prints its round trip too.

The files a thread row reads are written just before it. How the page cache
holds a file sets what its read costs: a file written in large writes sits in
large folios (2 MiB ones are mapped whole), but where the system drops the
cache of a file left unread for a few seconds (memory reclaim on a virtual
machine does) the pages come back in small folios when the file is read again.
A 1 h 12-lead record read that way took 7.6-7.9 ms against 4.1-4.2 ms for the
same bytes freshly written (EDF: 8.4-8.7 ms against 2.8-3.2 ms), and slower
reads of this kind gain more in two threads, so a row over such files is not
comparable with one over fresh files.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_SINE_INPUT = np.linspace(0.0, 1.0, 1 << 16)


def compute_reference_work() -> None:
    """About 20 ms of cache-resident native computation with the GIL released."""
    out = np.empty_like(_SINE_INPUT)
    for _ in range(30):
        np.sin(_SINE_INPUT, out=out)


CONTROL_LEADS, CONTROL_SAMPLES = 12, 1_800_000
"""The numpy control: a 1 h 12-lead record at 500 Hz."""


class NumpyControl:
    """Per-thread inputs and outputs of the numpy control and the memory copy."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.inputs = [[rng.integers(-2000, 2000, CONTROL_SAMPLES, dtype=np.int16)
                        for _ in range(CONTROL_LEADS)] for _ in range(2)]
        self.outputs = [[np.empty(CONTROL_SAMPLES) for _ in range(CONTROL_LEADS)]
                        for _ in range(2)]
        nbytes = CONTROL_LEADS * CONTROL_SAMPLES * 2
        self.copy_src = [np.ones(nbytes, np.uint8) for _ in range(2)]
        self.copy_dst = [np.zeros(nbytes, np.uint8) for _ in range(2)]

    def preallocated(self, k: int) -> None:
        for a, o in zip(self.inputs[k], self.outputs[k]):
            np.multiply(a, 0.5, out=o)

    def fresh(self, k: int) -> None:
        for a in self.inputs[k]:
            o = np.empty(a.shape[0])
            np.multiply(a, 0.5, out=o)

    def copy(self, k: int) -> None:
        np.copyto(self.copy_dst[k], self.copy_src[k])


_round_trip: Callable[[int, int, int], float] | None = None
_round_trip_tried = False


def cross_core_ns() -> float | None:
    """Nanoseconds a cache line takes from the first CPU this process may use to
    the second and back (median of three batches), or None where it cannot be
    measured (one CPU, no C compiler, not Linux)."""
    global _round_trip, _round_trip_tried
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    if not _round_trip_tried:
        _round_trip_tried = True
        _round_trip = _build_round_trip()
    if _round_trip is None:
        return None
    trips = sorted(_round_trip(cpus[0], cpus[1], 2000) for _ in range(3))
    return trips[1] if trips[1] > 0 else None


def cross_core_range(trips: list[float | None]) -> str:
    """'74-392 ns': the range of round trips measured (:func:`cross_core_ns`), or 'n/a'."""
    measured = [ns for ns in trips if ns is not None]
    return f"{min(measured):.0f}-{max(measured):.0f} ns" if measured else "n/a"


def _build_round_trip() -> Callable[[int, int, int], float] | None:
    source = Path(__file__).with_name("_crosscore.c")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory(prefix="ecgingest-bench-") as folder:
        library = Path(folder) / "crosscore.so"  # stays mapped once loaded
        try:
            subprocess.run([*compiler, "-O2", "-shared", "-fPIC", "-pthread", str(source),
                            "-o", str(library)], check=True, capture_output=True)
            function = ctypes.CDLL(str(library)).round_trip_ns
        except (OSError, subprocess.CalledProcessError):
            return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_double
    return function


def in_threads(targets: list[Callable[[], object]],
               pool: ThreadPoolExecutor | None = None) -> tuple[float, float]:
    """Run each target in a thread of its own (the pool's, or fresh ones):
    (wall seconds, cores busy)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    if pool is not None:
        for future in [pool.submit(fn) for fn in targets]:
            future.result()
    else:
        threads = [threading.Thread(target=fn) for fn in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    return wall, (time.process_time() - cpu0) / wall


def sequential(targets: list[Callable[[], object]]) -> float:
    t0 = time.perf_counter()
    for fn in targets:
        fn()
    return time.perf_counter() - t0


class ThreadRounds:
    """Best sequential and two-thread times of workloads and of the compute
    reference, their rounds interleaved so all see the same machine. Two-thread
    rounds run on a pool of two threads started once (``fresh=True``: on threads
    started for the round)."""

    def __init__(self) -> None:
        self.seq: dict[str, float] = {}
        self.con: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.cross_core: dict[str, float | None] = {}
        self._pool = ThreadPoolExecutor(2)
        self._control: NumpyControl | None = None
        in_threads([compute_reference_work] * 2, self._pool)  # start both threads

    def __enter__(self) -> ThreadRounds:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()

    def round(self, name: str, targets: list[Callable[[], object]], fresh: bool = False) -> None:
        s = sequential(targets)
        cross_core = cross_core_ns()
        c, busy = in_threads(targets, None if fresh else self._pool)
        self.seq[name] = min(self.seq.get(name, s), s)
        if c < self.con.get(name, float("inf")):
            self.con[name] = c
            self.busy[name] = busy
            self.cross_core[name] = cross_core

    def reference_round(self) -> None:
        self.round("compute reference", [compute_reference_work, compute_reference_work])

    def control_round(self) -> None:
        """One round of each numpy control (see the module docstring)."""
        if self._control is None:
            self._control = NumpyControl()
        c = self._control
        self.round("numpy control", [lambda: c.preallocated(0), lambda: c.preallocated(1)])
        self.round("numpy control, fresh outputs", [lambda: c.fresh(0), lambda: c.fresh(1)])
        self.round("memory copy", [lambda: c.copy(0), lambda: c.copy(1)])

    def control(self, name: str) -> str:
        """'1.10x, 0.58 of the numpy control's 1.90x (cross-core 370 ns; fresh outputs
        1.80x); memory copy 1.05x (90 ns)': each control's cross-core round trip is
        that of its own best round, which may have run in another placement."""
        ours, numpy_gain = self.speed_up(name), self.speed_up("numpy control")
        return (f"{ours:.2f}x, {ours / numpy_gain:.2f} of the numpy control's "
                f"{numpy_gain:.2f}x (cross-core {self.cross_core_text('numpy control')}; "
                f"fresh outputs {self.speed_up('numpy control, fresh outputs'):.2f}x); "
                f"memory copy {self.speed_up('memory copy'):.2f}x "
                f"({self.cross_core_text('memory copy')}) in the same rounds")

    def cross_core_text(self, name: str) -> str:
        """The cross-core round trip before the best two-thread round of `name`."""
        cross_core = self.cross_core.get(name)
        return "n/a" if cross_core is None else f"{cross_core:.0f} ns"

    def speed_up(self, name: str) -> float:
        return self.seq[name] / self.con[name]

    def summary(self, name: str) -> str:
        """'speed-up 1.80x, cores busy 1.95, cross-core 90 ns; compute reference 1.90x
        in the same rounds'"""
        ref = "compute reference"
        text = (f"speed-up {self.speed_up(name):.2f}x, cores busy {self.busy[name]:.2f}, "
                f"cross-core {self.cross_core_text(name)}; "
                f"compute reference {self.speed_up(ref):.2f}x in the same rounds")
        if "numpy control" in self.seq:
            text += "; against the controls " + self.control(name)
        return text
