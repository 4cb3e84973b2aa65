"""Peak memory of big uploads: ``ecgingest inspect``, ``iter_records`` and ``read``.

Builds a Deflate ZIP of synthetic 12-lead WFDB records (500 Hz, format 16, one
directory each, header then signal file; the same records as
``bench_archive.py``) and measures, each in
a fresh interpreter, how far resident memory rises above the interpreter with
ecgingest imported (Linux ``VmHWM``):

- inspect: :func:`ecgingest.ingest.inspect_upload` (what ``ecgingest inspect``
  runs: header facts, no samples decoded); target <= 100 MB;
- iter_records: every record of :func:`ecgingest.iter_records`, each dropped
  once its samples were touched; target <= 2 x the largest record (its files'
  bytes plus its decoded samples). Measured twice: resident memory as above,
  and the peak of Python's allocations (``tracemalloc``, which counts NumPy's
  arrays too) in a second run, which the C allocator's caching does not blur;
- read: :func:`ecgingest.read`, every record kept (for comparison).

Run ``python benchmarks/bench_memory.py`` (1,000 records of 10 s) or choose
``--records N --seconds S`` (e.g. ``--records 50 --seconds 600`` for fewer,
longer records, where the iter_records bound says more). ``--layout flat``
puts every record in one directory, all headers first (records are then
planned from the headers and each built as its signal file passes);
``--layout flat-headers-last`` puts the headers after every signal file (the
records can only be built at the directory's end).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_archive

_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[3])
import numpy as np
import ecgingest
from ecgingest.ingest import inspect_upload

def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

def touch(record):
    # a signal's array is a view of its record's one sample block: a caller that kept
    # the last signal of a loop would keep the whole record
    for signal in record.signals:
        signal.digital.sum()

mode, path = sys.argv[1], sys.argv[2]
traced = mode.endswith("+traced")
if traced:
    import tracemalloc
    tracemalloc.start()
    mode = mode[:-len("+traced")]
base = hwm()
if mode == "inspect":
    records, skipped, errors = inspect_upload(path)
    count = len(records)
elif mode == "iter_records":
    count = 0
    for record in ecgingest.iter_records(path):
        count += 1
        touch(record)
        del record
else:
    count = len(ecgingest.read(path))
print(tracemalloc.get_traced_memory()[1] if traced else hwm() - base, count)
"""


def run(mode: str, path: Path) -> tuple[int, int, float]:
    """(peak growth in bytes, records, seconds) of one mode in a fresh interpreter."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), src],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1]), time.perf_counter() - start


def _archive(count: int, layout: str) -> bytes:
    if layout == "dirs":
        return bench_archive.make_zip(count)
    members = [(f"all/{name.rsplit('/', 1)[1]}", body)
               for name, body in bench_archive.make_members(count)]
    headers_first = layout == "flat"
    members.sort(key=lambda member: member[0].endswith(".hea") != headers_first)
    return bench_archive.write_archive("zip", members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--layout", choices=["dirs", "flat", "flat-headers-last"],
                        default="dirs", help="one directory per record (default), or one "
                        "directory for all, headers first or last")
    args = parser.parse_args()
    bench_archive.SECONDS = args.seconds
    samples = bench_archive.FS * args.seconds
    # one record: its .dat (12 x int16) and header, plus its decoded int16 samples
    largest = 2 * 12 * samples * 2 + 2048
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.zip"
        path.write_bytes(_archive(args.records, args.layout))
        print(f"{args.layout} layout: "
              f"{args.records} records x 12 leads x {args.seconds} s at "
              f"{bench_archive.FS} Hz: ZIP {path.stat().st_size / 1e6:.1f} MB, largest "
              f"record {largest / 1e6:.2f} MB (files + decoded samples)")
        print(f"{'mode':<14}{'peak above interpreter':>24}{'records':>10}{'seconds':>10}"
              f"{'target':>30}")
        targets = {"inspect": (100e6, "<= 100 MB"),
                   "iter_records": (2 * largest, "<= 2 x largest record"),
                   "read": (None, "(all records kept)")}
        for mode in ("inspect", "iter_records", "read"):
            peak, count, seconds = run(mode, path)
            bound, text = targets[mode]
            verdict = "" if bound is None else (" met" if peak <= bound else " MISSED")
            print(f"{mode:<14}{peak / 1e6:>21.1f} MB{count:>10}{seconds:>10.2f}"
                  f"{text + verdict:>30}")
            if mode == "iter_records":
                traced, _, _ = run("iter_records+traced", path)
                print(f"  ratio to the largest record: resident {peak / largest:.2f}x, "
                      f"Python allocations (tracemalloc) {traced / largest:.2f}x "
                      f"(target <= 2.00x)")


if __name__ == "__main__":
    main()
