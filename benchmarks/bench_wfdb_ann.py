"""WFDB annotation files: ``ecgingest.read_annotations`` against ``wfdb.rdann``.

Writes a 24 h Holter-size annotation file with ``wfdb.wrann`` (about 100,000
beats at 360 Hz: mostly ``N``, some ``V``/``A``, rhythm changes with aux text,
noise annotations with subtypes, a few gaps longer than 1023 ticks that need
SKIP words) plus its header, then times in one run, alternating A and B:

* ``wfdb.rdann(record, "atr")``,
* ``ecgingest.read_annotations(path)`` (header beside the file read for the rate),
* the same from bytes already in memory (the decode alone),
* ``ecgingest.read`` of the record (header + a short signal file) with the
  annotation file attached (``Record.annotations`` built).

Each figure is the median of ``--rounds`` rounds. Run
``python benchmarks/bench_wfdb_ann.py`` (``--beats`` to change the size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import ecgingest

FS = 360


def write_holter(folder: Path, beats: int, seed: int = 0) -> Path:
    """``holter.atr`` written by ``wfdb.wrann``, ``holter.hea`` and a short ``.dat``."""
    import wfdb

    rng = np.random.default_rng(seed)
    rr = rng.integers(250, 400, beats)
    rr[rng.integers(0, beats, 20)] += 2000  # pauses: intervals past 1023 ticks need SKIPs
    sample = np.cumsum(rr)
    symbol = np.full(beats, "N", dtype=object)
    symbol[rng.integers(0, beats, beats // 40)] = "V"
    symbol[rng.integers(0, beats, beats // 80)] = "A"
    aux = np.full(beats, "", dtype=object)
    subtype = np.zeros(beats, dtype=int)
    rhythm = rng.integers(0, beats, 60)
    symbol[rhythm] = "+"
    aux[rhythm] = rng.choice(["(N", "(AFIB", "(SVTA", "(B"], 60)
    noise = rng.integers(0, beats, 30)
    symbol[noise] = "~"
    subtype[noise] = rng.integers(1, 4, 30)
    wfdb.wrann("holter", "atr", sample, symbol=list(symbol), subtype=subtype,
               aux_note=list(aux), fs=FS, write_dir=str(folder))
    frames = 1000
    (folder / "holter.dat").write_bytes(np.zeros(frames, "<i2").tobytes())
    (folder / "holter.hea").write_text(f"holter 1 {FS} {frames}\nholter.dat 16 200/mV 16 0 0 0 0 "
                                       "ECG\n")
    return folder / "holter.atr"


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beats", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import wfdb

    warnings.simplefilter("ignore")  # pandas deprecation notes from inside wfdb.rdann
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_holter(folder, args.beats)
        data = path.read_bytes()
        ours = ecgingest.read_annotations(path)
        ref = wfdb.rdann(str(folder / "holter"), "atr")
        assert np.array_equal(ours.sample, ref.sample) and list(ours.symbol) == ref.symbol
        assert list(ours.aux_note) == ref.aux_note and ours.fs == ref.fs
        cases: dict[str, Callable[[], object]] = {
            "wfdb.rdann": lambda: wfdb.rdann(str(folder / "holter"), "atr"),
            "ecgingest.read_annotations(path)": lambda: ecgingest.read_annotations(path),
            "ecgingest.read_annotations(bytes)": lambda: ecgingest.read_annotations(data),
            "ecgingest.read(record) with annotations": lambda: ecgingest.read(
                folder / "holter.hea"),
        }
        results: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):  # alternate, so a busy machine slows every case alike
            for name, fn in cases.items():
                results[name].append(median_seconds(fn, 1))
        print(f"{args.beats} annotations, {len(data)} bytes, median of {args.rounds} rounds "
              "(alternating)")
        base = statistics.median(results["wfdb.rdann"])
        for name, times in results.items():
            t = statistics.median(times)
            print(f"  {name:42s} {t * 1e3:9.2f} ms   {base / t:7.1f}x rdann")


if __name__ == "__main__":
    main()
