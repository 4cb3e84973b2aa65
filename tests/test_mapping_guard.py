"""A memory-mapped file truncated while it is read ends in a typed error, never in
SIGBUS; bus errors elsewhere in the process still end it as before.

Every case runs in a child process, so a crash cannot take the test run with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ecgingest import sources
from ecgingest._ext import mapping
from ecgingest.formats.wfdb import signals

pytestmark = pytest.mark.skipif(not mapping.GUARDED, reason="no SIGBUS on this system")

PAGE = 4096


def _child(script: str, *args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def _write_edf(path: Path, n_records: int) -> None:
    """An EDF file of two 500-sample signals per 1 s data record (2 kB per record)."""
    ns, spr = 2, 500

    def field(text: str, width: int) -> bytes:
        return text.encode("ascii").ljust(width)

    header = b"".join([
        field("0", 8), field("X X X X", 80), field("Startdate 01-JAN-2024 X X X", 80),
        field("01.01.24", 8), field("00.00.00", 8), field(str(256 * (ns + 1)), 8),
        field("", 44), field(str(n_records), 8), field("1", 8), field(str(ns), 4)])
    for width, values in ((16, ("I", "II")), (80, ("", "")), (8, ("uV", "uV")),
                          (8, ("-3276.8", "-3276.8")), (8, ("3276.7", "3276.7")),
                          (8, ("-32768", "-32768")), (8, ("32767", "32767")),
                          (80, ("", "")), (8, (str(spr), str(spr))), (32, ("", ""))):
        header += b"".join(field(v, width) for v in values)
    samples = (np.arange(n_records * ns * spr) % 2000 - 1000).astype("<i2")
    path.write_bytes(header + samples.tobytes())


def _write_wfdb(folder: Path, n_frames: int) -> Path:
    """A format 16 WFDB record of 12 signals."""
    frames = (np.arange(n_frames * 12) % 4000 - 2000).astype("<i2")
    (folder / "big.dat").write_bytes(frames.tobytes())
    lines = [f"big 12 500 {n_frames}"] + [f"big.dat 16 200/mV 16 0 0 0 0 lead{i}"
                                           for i in range(12)]
    header = folder / "big.hea"
    header.write_text("\n".join(lines) + "\n")
    return header


_READ_AND_REPORT = """
    try:
        ecgingest.read(upload)
        print("records")
    except EcgIngestError as exc:
        print(type(exc).__name__, exc)
"""
"""The end of a child script: read ``upload`` and print the outcome's type."""


def _assert_cut_reported(done) -> None:
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.startswith("SourceUnavailableError"), done.stdout
    assert "changed size while it was read" in done.stdout


_CUT_WHILE_MAPPED = """
    import sys
    import ecgingest
    from ecgingest import sources
    from ecgingest.errors import EcgIngestError

    upload, data_file, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real_map = sources._map

    def map_then_cut(fh, size):  # cut once mapped, before its pages are mapped in
        mapped = real_map(fh, size)
        with open(data_file, "r+b") as cut:
            cut.truncate(keep)
        return mapped

    sources._map = map_then_cut
"""


@pytest.mark.parametrize("keep", [0, PAGE, 3 * 1024 * 1024 + 17])
def test_an_edf_file_cut_across_pages_while_mapped_gives_a_typed_error(tmp_path, keep):
    path = tmp_path / "big.edf"
    _write_edf(path, 5000)  # 10 MB, above the mapping threshold
    assert path.stat().st_size >= sources.MAP_FROM
    _assert_cut_reported(_child(_CUT_WHILE_MAPPED + _READ_AND_REPORT, path, path, keep))


_CUT_WHILE_READ = """
    import sys
    import ecgingest
    from ecgingest._ext import wfdb
    from ecgingest.formats.wfdb import signals
    from ecgingest.errors import EcgIngestError

    upload, data_file, keep, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    real_read = wfdb.read_group
    signals.READ_CHUNK_BYTES = chunk

    def cut_then_read(*args):  # cut once opened and measured, before the first read
        with open(data_file, "r+b") as cut:
            cut.truncate(keep)
        return real_read(*args)

    wfdb.read_group = cut_then_read
"""


@pytest.mark.parametrize("keep", [0, PAGE, 3 * 1024 * 1024 + 17])
def test_a_wfdb_signal_file_cut_while_read_gives_a_typed_error(tmp_path, keep):
    # read a chunk at a time from the descriptor (not mapped): the read that finds the
    # file's end early, at its start or between chunks, ends in the same error
    header = _write_wfdb(tmp_path, 400_000)  # 9.6 MB of samples
    dat = tmp_path / "big.dat"
    assert dat.stat().st_size >= signals.READ_BY_CHUNKS_FROM
    _assert_cut_reported(_child(_CUT_WHILE_READ + _READ_AND_REPORT, header, dat, keep, 64 * 1024))


def test_files_truncated_by_another_process_during_reads_never_end_the_process(tmp_path):
    """Reads in two threads while another process cuts and rewrites the file: every
    read ends in a record or a typed error, whatever moment the cut falls on."""
    path = tmp_path / "big.edf"
    _write_edf(path, 5000)
    original = path.read_bytes()
    script = """
        import sys, threading
        import ecgingest
        from ecgingest.errors import EcgIngestError
        path, rounds = sys.argv[1], int(sys.argv[2])
        outcomes = {}
        def reads():
            for _ in range(rounds):
                try:
                    ecgingest.read(path)
                    key = "record"
                except EcgIngestError as exc:
                    key = type(exc).__name__
                outcomes[key] = outcomes.get(key, 0) + 1
        threads = [threading.Thread(target=reads) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(sorted(outcomes.items()))
    """
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(path), "40"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        while child.poll() is None:
            with open(path, "r+b") as fh:
                fh.truncate(PAGE)
                fh.seek(0)
                fh.write(original)
    finally:
        out, err = child.communicate(timeout=300)
    assert child.returncode == 0, (child.returncode, err[-2000:])
    assert "record" in out or "Error" in out, out


def test_a_bus_error_outside_a_guarded_mapping_still_ends_the_process(tmp_path):
    """The handler only takes faults inside the mappings it guards."""
    path = tmp_path / "big.edf"
    _write_edf(path, 5000)
    script = """
        import mmap, sys
        import ecgingest
        path = sys.argv[1]
        ecgingest.read(path)  # a guarded read: the handler is installed
        with open(path, "r+b") as fh:
            plain = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            fh.truncate(0)
        print(plain[8 * 1024 * 1024], flush=True)
        print("survived")
    """
    done = _child(script, path)
    assert done.returncode == -signal.SIGBUS, (done.returncode, done.stdout, done.stderr[-500:])
    assert "survived" not in done.stdout


def test_a_guarded_mapping_reads_zeros_past_the_cut_and_reports_it(tmp_path):
    script = """
        import mmap, sys
        from ecgingest._ext import mapping
        path = sys.argv[1]
        with open(path, "r+b") as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            slot = mapping.guard(mapped)
            untouched = mapping.guard(mapped)  # a second slot, not read past the cut
            fh.truncate(5000)
        view = memoryview(mapped)
        head, tail = bytes(view[4990:5000]), bytes(view[-3:])
        view.release()
        print(slot != untouched, head == b"x" * 10, tail == bytes(3), mapping.unguard(slot),
              mapping.unguard(untouched))
        mapped.close()
    """
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * (64 * PAGE))
    done = _child(script, path)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    # the fault fell in the first slot's range: that slot reports it (both cover the range)
    assert done.stdout.split() in (["True", "True", "True", "True", "False"],
                                   ["True", "True", "True", "False", "True"])


def test_unguarding_a_slot_that_was_never_given_is_refused():
    with pytest.raises(ValueError, match="slot"):
        mapping.unguard(-1)


def test_a_guard_that_populates_maps_every_page_in_and_survives_a_cut(tmp_path):
    """``guard(populate=True)`` maps the pages in (reading them then faults no more),
    and a file cut before that reads zeros past the cut and reports it."""
    script = """
        import mmap, resource, sys
        import numpy as np
        from ecgingest._ext import mapping
        path, cut = sys.argv[1], int(sys.argv[2])

        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

        with open(path, "r+b") as fh:
            results = []
            for populate in (False, True):
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                if cut and populate:
                    fh.truncate(cut)
                slot = mapping.guard(mapped, populate=populate)
                before = faults()
                total = int(np.frombuffer(mapped, np.uint8)[::4096].sum(dtype=np.int64))
                results.append((faults() - before, total, mapping.unguard(slot)))
                mapped.close()
        (lazy_faults, lazy_total, lazy_hit), (faults_after, total, hit) = results
        print(lazy_faults > 0, faults_after == 0, lazy_total, total, lazy_hit, hit)
    """
    path = tmp_path / "data.bin"
    pages = 1024
    path.write_bytes(b"\x01" * (pages * PAGE))
    done = _child(script, path, 0)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["True", "True", str(pages), str(pages), "False", "False"]
    path.write_bytes(b"\x01" * (pages * PAGE))
    done = _child(script, path, 10 * PAGE + 5)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lazy, after, lazy_total, total, lazy_hit, hit = done.stdout.split()
    assert (lazy_total, total, lazy_hit, hit) == (str(pages), "11", "False", "True")
