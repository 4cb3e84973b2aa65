"""Archive ingestion speed: ecgingest.read against the ways users read a ZIP of WFDB records.

Builds a ZIP (Deflate) of WFDB records (10 s x 12 leads at 500 Hz, format 16)
and times, in one run:

- libarchive-c bytes only: every entry's bytes, nothing decoded (the floor);
- zipfile bytes + numpy: every entry's bytes, ``.dat`` files as int16 arrays;
- temp dir + wfdb.rdrecord: extract to a temporary directory, then read each
  record with wfdb-python (what users do today);
- ecgingest.read: the whole upload to records.

Run ``python benchmarks/bench_archive.py`` (1,000 records, best of 5) or
``--quick`` (200 records, best of 3, the temp-dir path once).

``--bytes zip,tar.gz,tar.zst,7z`` times ``ecgingest.read`` against reading the
archive's bytes alone (zipfile, tarfile, zstandard + tarfile, py7zr; and
libarchive-c), with and without the second thread (a ZIP's entries read ahead,
a compressed TAR's stream decompressed there), in alternating rounds
(medians), with the CPU time of the calling thread (for ``ecgingest.read``, the
walk's: where the records are built while a second thread decompresses; less moved
by other jobs' load than wall time), and prints the peak memory of both;
``--baseline-src DIR`` adds
another copy of the library (a ``src`` folder, say of the main branch) run in a
subprocess in the same rounds.

``--second-pass`` measures what reading entries no format claims costs: the
same records with every ``.dat`` before its ``.hea`` (ZIP and gzip TAR), read
as shipped (small unclaimed entries kept in memory) and with every unclaimed
entry passed over after a look at its first bytes (each signal file then
comes from a second pass over the archive); and an archive holding a 256 MiB
log file next to the records (skipped after its first bytes, never inflated).

On a shared machine CPU time moves by several per cent with other jobs.
``--only ROW --passes N`` runs one row N times untimed, for counting
instructions, which load does not change::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benchmarks/bench_archive.py --quick --only walk --passes 3

(one pass costs half the difference between ``--passes 3`` and ``--passes 1``);
``--kind tar.zst`` (or ``tar.gz``, ``7z``) counts the same rows over that archive.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import ecgingest
from ecgingest import _memory

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 500
SECONDS = 10


def make_members(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """``count`` synthetic 12-lead records as (name, bytes), one directory each."""
    rng = np.random.default_rng(seed)
    n = FS * SECONDS
    t = np.arange(n) / FS
    beat = (np.exp(-((t % 0.8) - 0.2) ** 2 / 0.0004) * 1000).astype(np.int64)
    members = []
    for i in range(count):
        name = f"r{i:04d}"
        samples = (beat[:, None] * rng.uniform(0.2, 1.0, 12)[None, :]
                   + rng.normal(0, 20, (n, 12))).astype("<i2")
        lines = [f"{name} 12 {FS} {n}"]  # as wfdb.wrsamp writes it, checksums included
        for lead, column in zip(LEADS, samples.T):
            check = int(column.astype(np.int64).sum()) % 65536
            lines.append(f"{name}.dat 16 200/mV 16 0 {column[0]} {check} 0 {lead}")
        members.append((f"{name}/{name}.hea", ("\n".join(lines) + "\n").encode()))
        members.append((f"{name}/{name}.dat", samples.tobytes()))
    return members


def make_zip(count: int, seed: int = 7) -> bytes:
    """A Deflate ZIP of ``count`` synthetic 12-lead records, one directory each."""
    return write_archive("zip", make_members(count, seed))


def write_archive(kind: str, members: list[tuple[str, bytes]]) -> bytes:
    """``members`` as a ZIP (Deflate), TAR+gzip, TAR+Zstandard or 7z (LZMA2) archive."""
    import tarfile

    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for name, body in members:
                zf.writestr(name, body)
        return buf.getvalue()
    if kind == "7z":
        import libarchive

        with libarchive.custom_writer(buf.write, "7zip", options="compression=lzma2") as out:
            for name, body in members:
                out.add_file_from_memory(name, len(body), body)
        return buf.getvalue()
    with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w") as tf:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    if kind == "tar.zst":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(buf.getvalue())
    return buf.getvalue()


def bytes_libarchive(path: str) -> int:
    import libarchive

    total = 0
    with libarchive.file_reader(path) as archive:
        for entry in archive:
            for block in entry.get_blocks():
                total += len(block)
    return total


def bytes_zipfile_numpy(path: str) -> int:
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename.endswith(".dat"):
                total += int(np.frombuffer(data, "<i2").reshape(-1, 12).shape[0])
            else:
                total += len(data)
    return total


def tempdir_wfdb(path: str) -> int:
    import wfdb

    total = 0
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as zf:
        zf.extractall(tmp)
        for hea in sorted(Path(tmp).glob("*/*.hea")):
            record = wfdb.rdrecord(str(hea.with_suffix("")), physical=False)
            total += record.d_signal.shape[0]
    return total


def ecgingest_read(path: str) -> int:
    return sum(len(r.signals[0].digital) for r in ecgingest.read(path))


def ecgingest_walk(path: str) -> int:
    """The archive layer alone: every entry's bytes through ecgingest's checked reader."""
    from ecgingest.limits import ByteBudget, Limits
    from ecgingest.sources import Entry
    from ecgingest.uploads import open_upload

    limits = Limits()
    with open_upload(path, limits, ByteBudget(limits)) as upload:
        return sum(len(e.read()) for e in upload.entries() if isinstance(e, Entry))


_ONLY = {"bytes": bytes_libarchive, "zipfile": bytes_zipfile_numpy, "walk": ecgingest_walk,
         "read": ecgingest_read}


def time_rows(rows, path: str, repeat: int, slow_repeat: int
              ) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall and CPU time of ``repeat`` runs per row, taken round-robin.

    CPU time (this process, user + system) is printed too because the wall
    time of a shared machine moves with other jobs' load.
    """
    wall = {label: float("inf") for label, _, _ in rows}
    cpu = dict(wall)
    for i in range(repeat):
        for label, func, slow in rows:
            if slow and i >= slow_repeat:
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            func(path)
            wall[label] = min(wall[label], time.perf_counter() - start)
            cpu[label] = min(cpu[label], time.process_time() - start_cpu)
    return wall, cpu


def _reorder(data: bytes, kind: str) -> bytes:
    """The records of a ZIP as ``kind`` ("zip" or "tar.gz"), each .dat before its .hea."""
    import tarfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = sorted(((i.filename, zf.read(i)) for i in zf.infolist()),
                         key=lambda m: (m[0].rsplit("/", 1)[0], not m[0].endswith(".dat")))
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for name, body in members:
                zf.writestr(name, body)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tf:
            for name, body in members:
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def second_pass(count: int, repeat: int) -> None:
    from ecgingest.archive import walker

    shipped = walker.KEEP_UNCLAIMED
    base = make_zip(count)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("zip", "tar.gz"):
            path = os.path.join(tmp, "upload." + kind)
            Path(path).write_bytes(_reorder(base, kind))
            best: dict[str, tuple[float, float]] = {}
            for _ in range(repeat):  # alternating: the machine's load hits both alike
                for label, keep in (("kept at once", shipped), ("second pass", 0)):
                    walker.KEEP_UNCLAIMED = keep
                    start, start_cpu = time.perf_counter(), time.process_time()
                    ecgingest_read(path)
                    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
                    old = best.get(label, (float("inf"), float("inf")))
                    best[label] = (min(old[0], wall), min(old[1], cpu))
            walker.KEEP_UNCLAIMED = shipped
            print(f"{kind} of {count} records, each .dat before its .hea:")
            for label, (wall, cpu) in best.items():
                print(f"  signal files {label:13s} {wall:7.3f} s wall {cpu:7.3f} s CPU")
        line = b"2026-08-22 12:00:00 INFO device log line, nothing to see here\n"
        log = line * ((256 << 20) // len(line))
        path = os.path.join(tmp, "with-log.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("device.log", log)
            with zipfile.ZipFile(io.BytesIO(make_zip(10))) as records:
                for info in records.infolist():
                    zf.writestr(info.filename, records.read(info))
        del log
        tracemalloc.start()
        start = time.perf_counter()
        result = ecgingest.ingest(path, limits=ecgingest.Limits(max_ratio=1e6))
        wall = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"ZIP of 10 records and a 256 MiB log ({os.path.getsize(path) / 1e6:.1f} MB): "
              f"{len(result.records)} records, skipped {[s.path for s in result.skipped]}, "
              f"{wall:.3f} s, peak Python memory {peak / 1e6:.1f} MB")


def bytes_only(kind: str, path: str) -> int:
    """Every member's bytes with the reader Python users reach for, nothing decoded:
    zipfile, tarfile (gzip), zstandard + tarfile, py7zr."""
    import tarfile

    total = 0
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                total += len(zf.read(info))
    elif kind == "7z":
        import py7zr
        from py7zr.io import BytesIOFactory

        factory = BytesIOFactory(1 << 40)
        with py7zr.SevenZipFile(path) as archive:
            archive.extractall(factory=factory)
        total = sum(product.size() for product in factory.products.values())
    else:
        import contextlib

        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(open(path, "rb"))
            if kind == "tar.zst":
                import zstandard

                raw = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(raw))
            tf = stack.enter_context(tarfile.open(fileobj=raw, mode="r|gz" if kind == "tar.gz"
                                                  else "r|"))
            for member in tf:
                f = tf.extractfile(member)
                if f is not None:
                    total += len(f.read())
    return total


_BYTES_READER = {"zip": "zipfile", "tar.gz": "tarfile", "tar.zst": "zstandard + tarfile",
                 "7z": "py7zr"}

_BASELINE = """
import sys, time
import ecgingest
path = sys.argv[1]
ecgingest.read(path)  # warm: imports, page cache, array pool
start, start_thread = time.perf_counter(), time.thread_time()
ecgingest.read(path)
print(time.perf_counter() - start, time.thread_time() - start_thread)
"""


def _baseline_read(src: str, path: str) -> tuple[float, float]:
    """One warm ``ecgingest.read`` by another copy of the library (its ``src`` folder):
    wall time and the CPU time of the thread that called it (the walk's)."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, "-c", _BASELINE, path], env=env, check=True,
                         capture_output=True, text=True).stdout
    wall, walk = out.strip().splitlines()[-1].split()
    return float(wall), float(walk)


def _inflate_control(blobs: list[bytes], threads: int) -> None:
    """The machine's own answer to "does a second thread help": zlib inflating the same
    blobs on ``threads`` threads (zlib releases the GIL, as libarchive does)."""
    import threading
    import zlib

    def work(part: list[bytes]) -> None:
        for blob in part:
            zlib.decompress(blob)

    pool = [threading.Thread(target=work, args=(blobs[k::threads],)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _peak_read(path: str) -> float:
    """Peak Python memory (MB, tracemalloc: every thread) of one ``ecgingest.read``."""
    previous = _memory.set_array_pool_limit(0)  # count every byte as newly allocated
    tracemalloc.start()
    try:
        ecgingest.read(path)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
        _memory.set_array_pool_limit(previous)


def speed_of_bytes(count: int, repeat: int, kinds: list[str], baseline: str | None) -> None:
    """``ecgingest.read`` against reading the archive's bytes alone, per archive kind.

    Rows run alternately, ``repeat`` rounds, and medians are printed: read with
    the read-ahead threads (as shipped), read without them (the walk reads each
    entry when it asks, as before), and with ``--baseline-src`` another copy
    of the library (say, the main branch) in a subprocess.
    """
    import statistics
    import zlib

    from _threads import cross_core_ns, cross_core_range

    from ecgingest.archive import libarchive as la

    shipped = la.READ_AHEAD_FROM
    members = make_members(count)
    blobs = [zlib.compress(body, 6) for name, body in members[:400] if name.endswith(".dat")]
    control: dict[int, list[float]] = {1: [], 2: []}
    print(f"{count} WFDB records, 12 leads x {SECONDS} s x {FS} Hz, format 16 "
          f"({sum(len(b) for _, b in members) / 1e6:.0f} MB); medians of {repeat} "
          f"alternating rounds; CPU time is this process's (all threads)")
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "upload." + kind)
            Path(path).write_bytes(write_archive(kind, members))
            if hasattr(os, "sync"):
                os.sync()

            def read_ahead() -> None:
                la.READ_AHEAD_FROM = shipped
                ecgingest_read(path)

            def read_direct() -> None:
                la.READ_AHEAD_FROM = 1 << 62
                ecgingest_read(path)

            rows = {f"{_BYTES_READER[kind]} bytes only": lambda: bytes_only(kind, path),
                    "libarchive-c bytes only": lambda: bytes_libarchive(path),
                    "ecgingest.read, second thread": read_ahead,
                    "ecgingest.read, one thread": read_direct}
            wall: dict[str, list[float]] = {label: [] for label in rows}
            cpu: dict[str, list[float]] = {label: [] for label in rows}
            walk_cpu: dict[str, list[float]] = {label: [] for label in rows}
            if baseline:
                wall["ecgingest.read, --baseline-src"] = []
                walk_cpu["ecgingest.read, --baseline-src"] = []
            cross_core: list[float | None] = []
            read_direct()  # warm
            for _ in range(repeat):
                for label, func in rows.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    start_thread = time.thread_time()
                    func()
                    wall[label].append(time.perf_counter() - start)
                    cpu[label].append(time.process_time() - start_cpu)
                    walk_cpu[label].append(time.thread_time() - start_thread)
                if baseline:
                    took, walked = _baseline_read(baseline, path)
                    wall["ecgingest.read, --baseline-src"].append(took)
                    walk_cpu["ecgingest.read, --baseline-src"].append(walked)
                for threads, times in control.items():
                    start = time.perf_counter()
                    _inflate_control(blobs, threads)
                    times.append(time.perf_counter() - start)
                cross_core.append(cross_core_ns())
            la.READ_AHEAD_FROM = shipped
            peak_ahead = _peak_read(path)
            la.READ_AHEAD_FROM = 1 << 62
            peak_direct = _peak_read(path)
            la.READ_AHEAD_FROM = shipped
            print(f"{kind} ({os.path.getsize(path) / 1e6:.1f} MB):")
            reference = statistics.median(next(iter(wall.values())))
            for label, times in wall.items():
                median = statistics.median(times)
                used = f"{statistics.median(cpu[label]):7.3f} s CPU" if label in cpu else " " * 13
                print(f"  {label:34s} {median:7.3f} s wall {used} "
                      f"{statistics.median(walk_cpu[label]):7.3f} s calling thread  "
                      f"{median / reference:5.2f}x bytes only")
            print(f"  peak Python memory of ecgingest.read: {peak_ahead:.0f} MB with a second "
                  f"thread, {peak_direct:.0f} MB without")
            gain = statistics.median(control[1]) / statistics.median(control[2])
            print(f"  control, zlib inflating on two threads instead of one in the same rounds: "
                  f"{gain:.2f}x (2.0: a free second core; 1.0: none); cross-core round trip "
                  f"{cross_core_range(cross_core)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 records, best of 3")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--only", choices=sorted(_ONLY), default=None,
                        help="run one row untimed (for callgrind), see --passes")
    parser.add_argument("--passes", type=int, default=1, help="passes of the --only row")
    parser.add_argument("--kind", default="zip", choices=sorted(_BYTES_READER),
                        help="archive kind of the --only row")
    parser.add_argument("--second-pass", action="store_true",
                        help="the cost of unclaimed entries read in a second pass")
    parser.add_argument("--bytes", default=None, metavar="KINDS",
                        help="ecgingest.read against bytes-only readers for these archive "
                             "kinds (comma-separated: zip,tar.gz,tar.zst,7z)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (--bytes)")
    parser.add_argument("--baseline-src", default=None, metavar="DIR",
                        help="with --bytes, also time the ecgingest in DIR (a src folder)")
    args = parser.parse_args()
    count = args.records or (200 if args.quick else 1000)
    repeat = 3 if args.quick else 5
    if args.second_pass:
        second_pass(count, repeat)
        return
    if args.bytes:
        speed_of_bytes(count, args.rounds, args.bytes.split(","), args.baseline_src)
        return
    data = make_zip(count) if not args.only else write_archive(args.kind, make_members(count))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "upload." + (args.kind if args.only else "zip"))
        Path(path).write_bytes(data)
        if hasattr(os, "sync"):
            os.sync()  # reads are timed on a warm page cache, not during writeback
        if args.only:
            for _ in range(args.passes):
                _ONLY[args.only](path)
            return
        print(f"ZIP (Deflate) of {count} WFDB records, 12 leads x {SECONDS} s x {FS} Hz, "
              f"format 16: {len(data) / 1e6:.1f} MB compressed")
        rows = [("libarchive-c bytes only", bytes_libarchive, False),
                ("zipfile bytes + numpy decode", bytes_zipfile_numpy, False),
                ("temp dir + wfdb.rdrecord", tempdir_wfdb, True),
                ("ecgingest archive walk only", ecgingest_walk, False),
                ("ecgingest.read", ecgingest_read, False)]
        times, cpu = time_rows(rows, path, repeat, 1 if args.quick else repeat)
        print(f"  {'':32s} {'wall':>8s}   {'CPU':>8s}")
        for label, _, _ in rows:
            print(f"  {label:32s} {times[label]:8.3f} s {cpu[label]:8.3f} s")
        previous = _memory.set_array_pool_limit(0)  # count every byte as newly allocated
        tracemalloc.start()
        ecgingest_read(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        _memory.set_array_pool_limit(previous)
    for name, t in (("wall", times), ("CPU", cpu)):
        ours = t["ecgingest.read"]
        print(f"[{name}] ecgingest.read vs temp dir + wfdb.rdrecord: "
              f"{t['temp dir + wfdb.rdrecord'] / ours:.1f}x faster (target >= 8x)")
        print(f"[{name}] ecgingest.read / libarchive-c bytes only: "
              f"{ours / t['libarchive-c bytes only']:.2f} (target <= 1.6)")
        print(f"[{name}] ecgingest.read / zipfile bytes + numpy: "
              f"{ours / t['zipfile bytes + numpy decode']:.2f}")
        print(f"[{name}] ecgingest archive walk / libarchive-c bytes only: "
              f"{t['ecgingest archive walk only'] / t['libarchive-c bytes only']:.2f}")
    print(f"peak Python memory in ecgingest.read: {peak / 1e6:.0f} MB "
          f"(uncompressed upload {count * (FS * SECONDS * 24 + 400) / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
