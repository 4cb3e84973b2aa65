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

The first upload of a process also maps in the code of the shared libraries
it runs (NumPy's ufuncs, libarchive, zlib, ecgingest's kernels): resident,
file-backed pages shared with every other process that uses them, paid once
per process, not per upload. Each row therefore also prints how much of the
growth is file-backed (``RssFile``) and how much anonymous (``RssAnon``) at
its end, and iter_records is measured a third way, as a service streams
uploads: after a first small upload (one record of one second) in the same
interpreter, with the resident peak reset (``/proc/self/clear_refs``), the
peak above the resident memory the upload started from. (Memory the C
allocator already holds, freed by the imports or the first upload, is reused
without counting again: this figure is what a long-running service's resident
memory rises by, a lower bound of the upload's own working set; the
tracemalloc figure counts every Python and NumPy allocation.)

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

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0

def hwm():
    return status("VmHWM")

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
if mode == "iter_records+warm":
    mode = "iter_records"
    for record in ecgingest.iter_records(sys.argv[4]):  # the first upload of the process
        touch(record)
    del record
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the resident memory now
    except OSError:
        print(-1, 0, 0, 0)
        raise SystemExit
    base = status("VmRSS")
else:
    base = hwm()
files, anonymous = status("RssFile"), status("RssAnon")
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
print(tracemalloc.get_traced_memory()[1] if traced else hwm() - base, count,
      status("RssFile") - files, status("RssAnon") - anonymous)
"""


def run(mode: str, path: Path, first: Path | None = None) -> tuple[int, int, float, int, int]:
    """(peak growth in bytes, records, seconds, file-backed and anonymous resident growth
    at the end) of one mode in a fresh interpreter (``first``: the upload read before,
    for ``iter_records+warm``)."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), src, str(first)],
                         check=True, capture_output=True, text=True).stdout.split()
    return (int(out[0]), int(out[1]), time.perf_counter() - start, int(out[2]),
            int(out[3]))


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
        first = Path(tmp) / "first.zip"
        bench_archive.SECONDS = 1
        first.write_bytes(_archive(1, args.layout))
        bench_archive.SECONDS = args.seconds
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
            peak, count, seconds, files, anonymous = run(mode, path)
            bound, text = targets[mode]
            verdict = "" if bound is None else (" met" if peak <= bound else " MISSED")
            print(f"{mode:<14}{peak / 1e6:>21.1f} MB{count:>10}{seconds:>10.2f}"
                  f"{text + verdict:>30}")
            print(f"  resident growth at the end: {files / 1e6:.2f} MB file-backed (library "
                  f"code mapped in), {anonymous / 1e6:.2f} MB anonymous")
            if mode == "iter_records":
                traced = run("iter_records+traced", path)[0]
                warm = run("iter_records+warm", path, first)[0]
                shown = "n/a (no /proc/self/clear_refs)" if warm < 0 else (
                    f"{warm / largest:.2f}x ({warm / 1e6:.2f} MB){_met(warm, largest)}")
                print(f"  ratio to the largest record (target <= 2.00x): resident "
                      f"{peak / largest:.2f}x{_met(peak, largest)}, Python allocations "
                      f"(tracemalloc) {traced / largest:.2f}x{_met(traced, largest)}, "
                      f"resident after a first small upload {shown}")


def _met(peak: int, largest: int) -> str:
    return " met" if peak <= 2 * largest else " MISSED"


if __name__ == "__main__":
    main()
