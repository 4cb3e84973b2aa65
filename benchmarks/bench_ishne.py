"""Reading ISHNE Holter files: ecgingest against the peers installed, in one run,
and the memory a long recording costs.

    python benchmarks/bench_ishne.py             # speed on the corpus file (or a generated one)
    python benchmarks/bench_ishne.py --memory    # a 24 h 12-lead file (200 Hz, ~415 MB)

Speed: ``ecgingest.read(bytes)`` timed in alternating rounds with ishneholterlib
(``Holter(path, check_valid=False)``, header and data) and ECGDataKit's
``FileParser.parse`` where they are installed; best and median of the rounds,
and the ratio peer / ecgingest (the target is 5x or more against ECGDataKit).

Memory (``--memory``): in a fresh interpreter, how far resident memory
(``VmHWM``) and anonymous memory (``RssAnon``, sampled every millisecond while the
kernel runs without the GIL) rise above the interpreter with ecgingest imported,
against the decoded output (leads x samples x 2 bytes). Resident memory counts
the pages of the mapped file the decoder has read; anonymous memory does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import ecgingest  # noqa: E402


def ecgdatakit_parse() -> Callable[[str], object] | None:
    """ECGDataKit's ``FileParser.parse`` when the package is installed, else None."""
    try:
        from ecgdatakit.parsing import FileParser  # type: ignore[import-not-found]
    except ImportError:
        try:
            from ecgdatakit import FileParser  # type: ignore[import-not-found]
        except ImportError:
            return None
    parser = FileParser()
    return parser.parse


def race(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, the contenders alternating round by round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm: imports, caches, first page faults
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(label: str, times: dict[str, list[float]], ours: str = "ecgingest") -> None:
    best_ours = min(times[ours])
    print(f"\n{label}")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        ratio = "" if name == ours else f"   {best / best_ours:5.1f}x ecgingest's time"
        print(f"  {name:<22} best {best * 1e3:8.2f} ms   median {median * 1e3:8.2f} ms{ratio}")


def _generated(seconds: int, rate: int, leads: int = 12) -> bytes:
    from test_ishne import write_ishne

    rng = np.random.default_rng(3)
    n = seconds * rate
    block = rng.integers(-2000, 2000, size=(leads, n), dtype=np.int16)
    return write_ishne(block, rate=rate, resolution_nv=[2500] * leads)


def speed(rounds: int) -> None:
    corpus = os.environ.get("ECGINGEST_CORPUS")
    files: dict[str, bytes] = {}
    if corpus and (Path(corpus) / "ishne/ECG_P28.01.ecg").is_file():
        files["corpus ECG_P28.01.ecg (12 x 95573)"] = (
            Path(corpus) / "ishne/ECG_P28.01.ecg").read_bytes()
    files["generated 12 leads x 10 min at 200 Hz"] = _generated(600, 200)
    edk = ecgdatakit_parse()
    try:
        from ishneholterlib import Holter
    except ImportError:
        Holter = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, data in files.items():
            path = Path(tmp) / "record.ecg"
            path.write_bytes(data)
            contenders: dict[str, Callable[[], object]] = {
                "ecgingest": lambda data=data: ecgingest.read(data)}
            if Holter is not None:
                def holter(path=path):
                    h = Holter(str(path), check_valid=False)
                    h.load_data()
                    return h
                contenders["ishneholterlib"] = holter
            if edk is not None:
                contenders["ecgdatakit"] = lambda path=path: edk(str(path))
            report(label, race(contenders, rounds))
    if edk is None:
        print("\n  ecgdatakit is not installed: no ratio against it")


_CHILD = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[2])
import ecgingest

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

base_hwm, base_anon = status("VmHWM"), status("RssAnon")
peak = [base_anon]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], status("RssAnon"))
        time.sleep(0.001)
sampler = threading.Thread(target=sample)
sampler.start()
records = ecgingest.read(sys.argv[1])
done.set()
sampler.join()
peak[0] = max(peak[0], status("RssAnon"))
output = sum(s.digital.nbytes for s in records[0].signals)
print(status("VmHWM") - base_hwm, peak[0] - base_anon, output)
"""


def memory(hours: float, rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "holter.ecg"
        seconds = int(hours * 3600)
        leads, n = 12, seconds * rate
        from test_ishne import write_ishne

        # written in one piece from a repeating block: the content does not matter here
        block = np.random.default_rng(5).integers(-2000, 2000, size=(leads, rate * 60),
                                                  dtype=np.int16)
        head = write_ishne(block[:, :0], rate=rate, samples_per_lead=n)
        frames = block.T.astype("<i2").tobytes()
        with open(path, "wb") as fh:
            fh.write(head)
            for _ in range(seconds // 60):
                fh.write(frames)
        out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(ROOT / "src")],
                             capture_output=True, text=True, check=True)
        hwm, anon, output = (int(v) for v in out.stdout.split())
        mib = 1 << 20
        print(f"\n{hours:g} h x {leads} leads at {rate} Hz: file {path.stat().st_size / mib:.0f} "
              f"MiB, decoded output {output / mib:.0f} MiB")
        print(f"  anonymous memory rise {anon / mib:7.0f} MiB = {anon / output:.2f} x output")
        print(f"  resident memory rise  {hwm / mib:7.0f} MiB = {hwm / output:.2f} x output "
              "(includes the mapped file's pages)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    if args.memory:
        memory(args.hours, args.rate)
    else:
        speed(args.rounds)


if __name__ == "__main__":
    main()
