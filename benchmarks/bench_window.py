"""A 10 s window of a 24 h, 12-lead, 500 Hz record: peak memory and time.

Writes a WFDB record in format 212 (778 MB of samples) and a plain EDF file of
1 s data records (1.04 GB) into a temporary directory (``/dev/shm`` where it
exists; nothing is kept), then reads 10 s from the middle of each:

- ``ecgingest.read(path, start=, stop=)`` (digital samples; ``physical`` adds the
  conversion of the window), against ``wfdb.rdrecord(sampfrom=, sampto=,
  physical=False)`` and ``pyedflib.EdfReader(path).readSignal(chn, start, n,
  digital=True)`` for every channel (opening the file included);
- peak memory: how far resident memory (Linux ``VmHWM``) rises above an
  interpreter that already read 0.1 s of a small record (modules loaded),
  and the peak of the allocations ``tracemalloc`` sees (NumPy arrays
  included; at this size the heap left over from start-up can hide a rise
  from ``VmHWM``), each reader in a fresh interpreter; the ratio takes the
  larger of the two against the window's output
  (12 x 5000 int16 samples = 120 kB; target <= 1.3 x);
- time: the median of alternating runs in one interpreter (target: ecgingest at
  least 3 x faster), and for EDF the decoder alone (``decode_part`` over the
  open file: what remains without detection and the pipeline's bookkeeping).

A second table reads each whole record lazily (``ecgingest.read(path,
lazy=True)``: headers only, no sample touched) against the eager read of its
digital samples, with the same two memory figures (absolute: there is no window
output to compare with) and the median of alternating runs.

Run ``python benchmarks/bench_window.py`` (``--hours`` for a shorter record,
``--repeat`` for more timing runs, ``--part windows`` or ``--part lazy`` for one
table).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parent.parent / "src")
sys.path.insert(0, SRC)

FS = 500
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
WINDOW_S = 10


def _samples(frames: int, seed: int) -> np.ndarray:
    """frames x 12 samples of a plausible 12-bit ECG (a slow wave and noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    wave = (400 * np.sin(2 * np.pi * 1.2 * t / FS + np.arange(12))).astype(np.int64)
    return np.clip(wave + rng.integers(-60, 60, size=(frames, 12)), -2048, 2047)


def write_wfdb(directory: Path, hours: float, name: str = "holter") -> Path:
    total = int(hours * 3600 * FS)
    step = 600 * FS  # 10 minutes at a time (an even frame count: whole 212 groups)
    with open(directory / f"{name}.dat", "wb") as out:
        for at in range(0, total, step):
            block = _samples(min(step, total - at), at)
            flat = block.reshape(-1)
            a, b = flat[0::2] & 0xFFF, flat[1::2] & 0xFFF
            packed = np.empty((len(a), 3), dtype=np.uint8)
            packed[:, 0] = a & 0xFF
            packed[:, 1] = ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)
            packed[:, 2] = b & 0xFF
            out.write(packed.tobytes())
    lines = [f"{name} 12 {FS} {total}"]
    lines += [f"{name}.dat 212 200/mV 12 0 0 0 0 {lead}" for lead in LEADS]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return directory / f"{name}.hea"


def write_edf(directory: Path, hours: float, name: str = "holter") -> Path:
    n_rec = int(hours * 3600)
    ns = len(LEADS)

    def field(value: object, width: int) -> bytes:
        return str(value).encode().ljust(width)[:width]

    head = (field(0, 8) + field("X X X X", 80) + field("Startdate X X X X", 80)
            + field("01.01.21", 8) + field("00.00.00", 8) + field(256 * (ns + 1), 8)
            + field("", 44) + field(n_rec, 8) + field(1, 8) + field(ns, 4))
    columns = [(16, LEADS), (80, [""] * ns), (8, ["uV"] * ns), (8, [-10240] * ns),
               (8, [10235] * ns), (8, [-2048] * ns), (8, [2047] * ns), (80, [""] * ns),
               (8, [FS] * ns), (32, [""] * ns)]
    for width, values in columns:
        head += b"".join(field(v, width) for v in values)
    path = directory / f"{name}.edf"
    with open(path, "wb") as out:
        out.write(head)
        for at in range(0, n_rec, 600):
            n = min(600, n_rec - at)
            block = _samples(n * FS, at).astype("<i2")  # (n*FS) x 12
            out.write(block.reshape(n, FS, ns).transpose(0, 2, 1).tobytes())
    return path


_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
kind, reader, small, path, start_s = sys.argv[2:6] + [float(sys.argv[6])]
stop_s = start_s + 10
fs = 500

def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

def window(at, path, seconds=10):
    if reader in ("eager-whole", "lazy-whole"):
        import ecgingest
        [rec] = ecgingest.read(path, lazy=reader == "lazy-whole")
        return [] if reader == "lazy-whole" else [s.digital for s in rec.signals]
    if reader == "ecgingest":
        import ecgingest
        [rec] = ecgingest.read(path, start=at, stop=at + seconds)
        out = [s.digital for s in rec.signals]
        if kind == "physical":
            out += [s.physical for s in rec.signals]
        return out
    if reader == "wfdb":
        import wfdb
        rec = wfdb.rdrecord(path[:-4], sampfrom=int(at * fs),
                            sampto=int((at + seconds) * fs), physical=kind == "physical")
        return [rec.p_signal if kind == "physical" else rec.d_signal]
    import pyedflib
    with pyedflib.EdfReader(path) as f:
        return [f.readSignal(c, int(at * fs), int(seconds * fs), digital=kind != "physical")
                for c in range(f.signals_in_file)]

# modules loaded, first-use caches filled: 0.1 s of a 1 minute record (a 10 s window
# there would leave the heap grown by just what the measured window needs)
window(20.0, small, 0.1)
import tracemalloc
tracemalloc.start()
base = hwm()
out = window(start_s, path)
print(hwm() - base, tracemalloc.get_traced_memory()[1], sum(a.nbytes for a in out))
"""


def peak(kind: str, reader: str, small: Path, path: Path, start: float
         ) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", _CHILD, SRC, kind, reader, str(small),
                          str(path), str(start)], check=True, capture_output=True,
                         text=True).stdout
    grown, traced, nbytes = out.split()
    return int(grown), int(traced), int(nbytes)


def _decoder_alone(path: Path, at: float) -> None:
    """The format's own part of a read (``decode_part`` over the open file): what is
    left once detection and the pipeline's bookkeeping are taken out."""
    from ecgingest.formats import edf
    from ecgingest.formats._base import ByteSource, DecodeContext, ReadRequest

    fd = os.open(path, os.O_RDONLY)
    try:
        edf.FORMAT.decode_part(ByteSource(os.fstat(fd).st_size, fd=fd), DecodeContext(
            "edf", request=ReadRequest.of(None, at, at + WINDOW_S)))
    finally:
        os.close(fd)


def timings(path: Path, start: float, repeat: int, other: str
            ) -> tuple[float, float, float | None]:
    """Median seconds of ecgingest, of ``other`` and (EDF) of the EDF decoder alone for
    the window, alternating.

    Each run reads another window of the file, and the reader that comes first pays
    for its first touch (the others find its pages warm): the order of the readers
    turns with each run, so each comes first equally often."""
    import ecgingest

    fs = FS

    def ours(at: float) -> None:
        ecgingest.read(path, start=at, stop=at + WINDOW_S)

    def theirs(at: float) -> None:
        if other == "wfdb":
            import wfdb

            wfdb.rdrecord(str(path)[:-4], sampfrom=int(at * fs),
                          sampto=int((at + WINDOW_S) * fs), physical=False)
        else:
            import pyedflib

            with pyedflib.EdfReader(str(path)) as f:
                for c in range(f.signals_in_file):
                    f.readSignal(c, int(at * fs), WINDOW_S * fs, digital=True)

    readers: list[tuple[Callable[[float], None], list[float]]] = [(ours, []), (theirs, [])]
    if other == "pyedflib":
        readers.append((functools.partial(_decoder_alone, path), []))
    for i in range(repeat):
        at = start + (i % 5) * 600  # other windows of the file, the same for each reader
        for read, times in readers[i % len(readers):] + readers[:i % len(readers)]:
            t = time.perf_counter()
            read(at)
            times.append(time.perf_counter() - t)
    medians = [float(np.median(times)) for _, times in readers]
    return medians[0], medians[1], medians[2] if len(medians) > 2 else None


def whole_timings(path: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of a lazy read of the whole record and of an eager one
    (its digital samples), alternating."""
    import warnings

    import ecgingest

    warnings.simplefilter("ignore")  # the written headers carry no checksums
    lazy, eager = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        [rec] = ecgingest.read(path, lazy=True)
        lazy.append(time.perf_counter() - t)
        del rec
        t = time.perf_counter()
        [rec] = ecgingest.read(path)
        eager.append(time.perf_counter() - t)
        del rec
    return float(np.median(lazy)), float(np.median(eager))


def lazy_table(files: dict[str, tuple[Path, str, Path]], repeat: int) -> None:
    print(f"\n{'file':<10}{'read':<14}{'VmHWM rise':>12}{'traced peak':>13}{'time':>12}"
          f"   (whole record, median of {repeat})")
    for label, (path, _, small) in files.items():
        times = dict(zip(("lazy-whole", "eager-whole"), whole_timings(path, repeat)))
        for reader in ("lazy-whole", "eager-whole"):
            grown, traced, _ = peak("digital", reader, small, path, 0.0)
            print(f"{label:<10}{reader.split('-')[0]:<14}{grown / 1e6:>9.1f} MB"
                  f"{traced / 1e6:>10.1f} MB{times[reader] * 1e3:>9.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--part", choices=("all", "windows", "lazy"), default="all")
    args = parser.parse_args()
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        directory = Path(tmp)
        files = {"WFDB 212": (write_wfdb(directory, args.hours), "wfdb",
                              write_wfdb(directory, 1 / 60, "small")),
                 "EDF": (write_edf(directory, args.hours), "pyedflib",
                         write_edf(directory, 1 / 60, "small"))}
        start = args.hours * 1800.0  # the middle of the record
        if args.part == "lazy":
            lazy_table(files, max(args.repeat // 4, 3))
            return
        print(f"{WINDOW_S} s window at {start:.0f} s of a {args.hours:g} h, 12-lead, {FS} Hz "
              f"record")
        print(f"{'file':<10}{'read':<10}{'reader':<11}{'output':>10}{'VmHWM rise':>12}"
              f"{'traced peak':>13}{'ratio':>8}")
        for label, (path, other, small) in files.items():
            for kind in ("digital", "physical"):
                for reader in ("ecgingest", other):
                    grown, traced, nbytes = peak(kind, reader, small, path, start)
                    print(f"{label:<10}{kind:<10}{reader:<11}{nbytes / 1e3:>8.0f} kB"
                          f"{grown / 1e3:>9.0f} kB{traced / 1e3:>10.0f} kB"
                          f"{max(grown, traced) / nbytes:>8.2f}")
        print(f"\n{'file':<10}{'ecgingest':>12}{'other':>22}{'speed-up':>10}   (median of "
              f"{args.repeat}, digital)")
        for label, (path, other, _) in files.items():
            ours, theirs, alone = timings(path, start, args.repeat, other)
            print(f"{label:<10}{ours * 1e3:>9.2f} ms{other:>11}{theirs * 1e3:>8.2f} ms"
                  f"{theirs / ours:>9.1f}x")
            if alone is not None:
                print(f"{'':<10}{alone * 1e3:>9.2f} ms  (the EDF decoder alone, no detection "
                      f"or pipeline: {theirs / alone:.1f}x)")
        if args.part == "all":
            lazy_table(files, max(args.repeat // 4, 3))


if __name__ == "__main__":
    main()
