"""Files on disk: damaged files end as their bytes do, whether read or mapped, and
nothing a failing decoder leaves behind keeps a file open; special files are refused."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ecgingest
from ecgingest import sources
from ecgingest.errors import EcgIngestError, SourceUnavailableError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

SINGLE_FILES = [
    FIXTURES / "edf" / "test_subsecond.edf",
    FIXTURES / "edf" / "SC4001EC-Hypnogram.bdf",
    FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt",
    FIXTURES / "compressed_delta" / "ecg_1lead_ddelta_zlib_24bit.cmdt",
    FIXTURES / "scp" / "ecgtoolkit_Example.scp",
    FIXTURES / "scp" / "wa_mdw14_20060620.scp",
    FIXTURES / "kardia" / "six_lead_enhanced.json",
]
_REFERENCES = shutil.ignore_patterns("*.ref.*")
WFDB_RECORDS = [FIXTURES / "wfdb" / "100_3chan", FIXTURES / "wfdb" / "binformats"]


def _mutations(data: bytes) -> list[tuple[str, bytes]]:
    """Damage a decoder sees in its header and in its data: overwritten fields and cuts."""
    out = []
    for offset in sorted({0, 8, 24, 64, 168, 184, 236, 252, 300, 464, len(data) // 2}):
        if offset + 8 <= len(data):
            out.append((f"abcdefgh@{offset}", data[:offset] + b"abcdefgh" + data[offset + 8:]))
    for cut in (len(data) // 3, len(data) - 1):
        out.append((f"cut@{cut}", data[:cut]))
    return out


def _edf_physical_minimum_damaged(data: bytes) -> bytes:
    ns = int(data[252:256])
    at = 256 + ns * 104
    return data[:at] + b"abcdefgh" + data[at + 8:]


def _samples(signal: ecgingest.Signal) -> bytes:
    """The digital samples, those marked invalid by the mask counted as 0 (what a masked
    sample holds is test_array_pool's concern, not this file's)."""
    if signal.invalid_mask is None:
        return signal.digital.tobytes()
    return np.where(signal.invalid_mask, 0, signal.digital).tobytes()


def _records(records: list[ecgingest.Record]) -> list[tuple]:
    return [(r.format, [hashlib.sha256(_samples(s)).hexdigest() for s in r.signals])
            for r in records]


def _outcome(read) -> tuple:
    """Records (hashed) or the typed error's class: anything else fails the test."""
    try:
        return ("records", _records(read()))
    except EcgIngestError as exc:
        return ("error", type(exc).__name__)


@pytest.fixture(params=["read", "mapped"])
def file_access(request, monkeypatch) -> str:
    """Files read into memory (small ones) or memory-mapped (large ones), whatever their size."""
    if request.param == "mapped":
        monkeypatch.setattr(sources, "MAP_FROM", 1)
    else:
        monkeypatch.setattr(sources, "MAP_FROM", 1 << 62)
    return request.param


def test_damaged_edf_on_disk_gives_the_header_error_of_its_bytes(tmp_path, file_access):
    data = _edf_physical_minimum_damaged((FIXTURES / "edf" / "test_subsecond.edf").read_bytes())
    path = tmp_path / "damaged.edf"
    path.write_bytes(data)
    with pytest.raises(ecgingest.errors.HeaderError) as from_bytes:
        ecgingest.read(data)
    with pytest.raises(ecgingest.errors.HeaderError) as from_path:
        ecgingest.read(path)
    assert from_path.value.field == from_bytes.value.field == "physical minimum of signal 0"


@pytest.mark.parametrize("original", SINGLE_FILES, ids=lambda p: p.name)
def test_damaged_single_files_end_alike_as_bytes_path_directory_and_batch(
        tmp_path, file_access, original):
    intact = original.read_bytes()
    intact_records = _records(ecgingest.read(intact))
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / f"b_intact{original.suffix}").write_bytes(intact)
    damaged = folder / f"a_damaged{original.suffix}"
    paths = []
    for i, (_, data) in enumerate(_mutations(intact)):
        expected = _outcome(lambda: ecgingest.read(data))
        damaged.write_bytes(data)
        assert _outcome(lambda: ecgingest.read(damaged)) == expected
        assert _outcome(lambda: ecgingest.read(io.BytesIO(data))) == expected
        result = ecgingest.ingest(folder)  # the damaged file never costs its neighbour
        assert _records(result.records)[-1:] == intact_records
        copy = tmp_path / f"batch{i}{original.suffix}"
        copy.write_bytes(data)
        paths.append((copy, expected))
    uploads = [p for p, _ in paths] + [folder / f"b_intact{original.suffix}"]
    batch = list(ecgingest.ingest_many(uploads, workers=2, ordered=True, progress=False))
    for (path, expected), (_, result) in zip(paths, batch):
        got = (("records", _records(result.records)) if result.records
               else ("error", type(result.errors[0].error).__name__))
        assert got == expected, path.name
    assert _records(batch[-1][1].records) == intact_records


def _zip_bytes(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, file.name)
    return buffer.getvalue()


def _wfdb_outcome(result: ecgingest.IngestResult) -> tuple:
    if result.records:
        return ("records", _records(result.records))
    return ("error", sorted(type(e.error).__name__ for e in result.errors))


@pytest.mark.parametrize("original", WFDB_RECORDS, ids=lambda p: p.name)
def test_damaged_wfdb_records_end_alike_as_archive_header_path_directory_and_batch(
        tmp_path, file_access, original):
    header = next(original.glob("*.hea"))
    signal_file = sorted(f for f in original.iterdir()
                         if f.suffix not in (".hea", ".json", ".npz"))[0]
    intact = tmp_path / "intact"
    shutil.copytree(original, intact, ignore=_REFERENCES)
    intact_records = _records(ecgingest.read(intact / header.name))
    for victim in (header, signal_file):
        for label, data in _mutations(victim.read_bytes())[::2]:
            upload = tmp_path / f"upload-{victim.suffix}-{label}"
            record_dir = upload / "a_damaged"
            shutil.copytree(original, record_dir, ignore=_REFERENCES)
            (record_dir / victim.name).write_bytes(data)
            shutil.copytree(original, upload / "b_intact", ignore=_REFERENCES)
            expected = _wfdb_outcome(ecgingest.ingest(_zip_bytes(record_dir)))
            assert _wfdb_outcome(ecgingest.ingest(record_dir / header.name)) == expected, label
            whole = ecgingest.ingest(upload)
            assert _records(whole.records)[-len(intact_records):] == intact_records
            [(_, damaged), (_, neighbour)] = ecgingest.ingest_many(
                list(ecgingest.many.uploads_below(upload)), workers=2, ordered=True,
                progress=False)
            assert _wfdb_outcome(damaged) == expected
            assert _records(neighbour.records) == intact_records


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_kept_error_does_not_keep_its_mapped_file_open(tmp_path, monkeypatch):
    """The error stays in the result; the decoder's views of the mapping must not."""
    monkeypatch.setattr(sources, "MAP_FROM", 1)
    data = _edf_physical_minimum_damaged((FIXTURES / "edf" / "test_subsecond.edf").read_bytes())
    for i in range(20):
        (tmp_path / f"damaged{i:02}.edf").write_bytes(data)
    before = _open_descriptors()
    result = ecgingest.ingest(tmp_path)
    assert len(result.errors) == 20
    assert _open_descriptors() == before


def test_a_view_left_over_by_a_decoder_does_not_fail_the_release(tmp_path, monkeypatch):
    """A decoder that keeps a slice of a mapped file (say in a cache) gets a record
    and the file is unmapped when the slice goes."""
    monkeypatch.setattr(sources, "MAP_FROM", 1)
    path = tmp_path / "x.edf"
    shutil.copy(FIXTURES / "edf" / "test_subsecond.edf", path)
    kept = []
    entry = sources._FileEntry("x.edf", path, path.stat().st_size, ecgingest.limits.ByteBudget(
        ecgingest.Limits()))
    with entry.view() as data:
        kept.append(data[10:20])
    assert bytes(kept[0]) == path.read_bytes()[10:20]
    kept.clear()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_named_as_upload_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "upload.edf"
    os.mkfifo(fifo)
    outcome: list = []

    def attempt() -> None:
        for source in (fifo, str(fifo), [fifo]):
            try:
                ecgingest.ingest(source)
            except SourceUnavailableError as exc:
                outcome.append(exc.path)
        [(_, result)] = ecgingest.ingest_many([fifo], progress=False)
        outcome.append(type(result.errors[0].error))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # unblock the read it hangs in, so the test run can end
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert outcome == [str(fifo)] * 3 + [SourceUnavailableError]
    assert ecgingest.ingest(tmp_path).skipped[0].path == "upload.edf"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_named_as_upload_is_refused():
    with pytest.raises(SourceUnavailableError):
        ecgingest.ingest("/dev/zero")


_SHRINK_SCRIPT = textwrap.dedent("""
    import os, sys
    import ecgingest
    from ecgingest import sources
    from ecgingest.errors import EcgIngestError

    path, sources.MAP_FROM, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    real = sources._read_all
    real_map = sources._map

    def shrink():
        with open(path, "r+b") as fh:
            fh.truncate(keep)

    def read_then_shrink(fh, size, *how):  # the file is cut after open, before the read
        shrink()
        return real(fh, size, *how)

    def map_then_shrink(fh, size):  # cut once mapped, before its pages are mapped in
        mapped = real_map(fh, size)
        shrink()
        return mapped

    sources._read_all = read_then_shrink
    sources._map = map_then_shrink
    try:
        ecgingest.read(path)
        print("records")
    except EcgIngestError as exc:
        print(type(exc).__name__)
""")


def _read_while_shrinking(path: Path, map_from: int, keep: int) -> subprocess.CompletedProcess:
    """Read ``path`` in a child process that cuts the file to ``keep`` bytes once it is
    open: a crash there cannot take the test run with it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-c", _SHRINK_SCRIPT, str(path), str(map_from),
                           str(keep)], capture_output=True, text=True, env=env, timeout=120)


def test_a_read_file_that_shrinks_after_open_gives_the_error_of_its_shorter_bytes(tmp_path):
    original = (FIXTURES / "edf" / "SC4001EC-Hypnogram.bdf").read_bytes()
    path = tmp_path / "shrinking.bdf"
    path.write_bytes(original)
    done = _read_while_shrinking(path, 1 << 62, len(original) // 3)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _outcome(lambda: ecgingest.read(original[:len(original) // 3]))[1]


def test_a_mapped_file_that_shrinks_during_its_decode_gives_a_typed_error(tmp_path):
    """Cut inside its last page, where no read faults: the size check at the end of the
    decode finds it (cuts across whole pages: tests/test_mapping_guard.py)."""
    original = (FIXTURES / "edf" / "SC4001EC-Hypnogram.bdf").read_bytes()
    assert len(original) % 4096 > 8
    path = tmp_path / "shrinking.bdf"
    path.write_bytes(original)
    done = _read_while_shrinking(path, 1, len(original) - 5)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SourceUnavailableError"


def test_inspect_prints_the_typed_error_of_a_damaged_file_on_disk(tmp_path, capsys):
    from ecgingest.cli import main

    data = _edf_physical_minimum_damaged((FIXTURES / "edf" / "test_subsecond.edf").read_bytes())
    path = tmp_path / "damaged.edf"
    path.write_bytes(data)
    main(["inspect", str(path)])
    out = capsys.readouterr().out
    assert "HeaderError" in out and "physical minimum of signal 0" in out
    assert "Traceback" not in out


# ----------------------------------------------------------------- one open per read


def _count_opens(monkeypatch, path: Path) -> list[str]:
    """Every ``os.open`` of ``path`` from now on (the list grows as they happen)."""
    opened: list[str] = []
    real_open = os.open

    def counting_open(file, flags, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            opened.append(os.fspath(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    return opened


def _count_preads(monkeypatch) -> list[int]:
    """The size of every ``os.pread`` from now on (the list grows as they happen)."""
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    return reads


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
@pytest.mark.parametrize("window", [None, (0.5, 1.5)])
@pytest.mark.parametrize("map_from", [1, 1 << 62])
def test_a_file_on_disk_is_opened_once_per_read(tmp_path, monkeypatch, window, map_from):
    """Detection reads the head through the descriptor the decoder then reads the rest
    through (a window by ranges, a whole file mapped or read)."""
    monkeypatch.setattr(sources, "MAP_FROM", map_from)
    path = tmp_path / "x.edf"
    shutil.copy(FIXTURES / "edf" / "test_subsecond.edf", path)
    [expected] = ecgingest.read(path.read_bytes(), **(
        {} if window is None else {"start": window[0], "stop": window[1]}))
    opened = _count_opens(monkeypatch, path)
    [record] = ecgingest.read(path, **({} if window is None else
                                       {"start": window[0], "stop": window[1]}))
    assert len(opened) == 1
    assert [_samples(s) for s in record.signals] == [_samples(s) for s in expected.signals]


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
@pytest.mark.parametrize("fixture, map_from, reads", [
    ("mfer/synth_12lead_500hz_le.mwf", 1 << 62, "whole"),
    ("mfer/synth_12lead_500hz_le.mwf", 1, "head, mapped"),
    ("edf/test_subsecond.edf", 1 << 62, "start, pooled"),
    ("muse/easyrecg_muse_ecg1.xml", 1 << 62, "start, bytes"),
])
def test_a_small_file_uploaded_alone_is_read_in_one_read(tmp_path, monkeypatch, fixture,
                                                         map_from, reads):
    """Below MAP_FROM its first look takes the whole file, which the decoder then has
    without a second read: below READ_AS_BYTES into ``bytes``, from there (after a look
    at its first 64 bytes) into a block of the pool, or into ``bytes`` when it opens
    like a text document; a file that would be mapped is read by its head first, then
    mapped."""
    monkeypatch.setattr(sources, "MAP_FROM", map_from)
    path = tmp_path / Path(fixture).name
    shutil.copy(FIXTURES / fixture, path)
    size = path.stat().st_size
    assert 4 * sources.HEAD_READ < size < (1 << 20)
    assert (size < sources.READ_AS_BYTES) == (not reads.startswith("start"))
    [expected] = ecgingest.read(path.read_bytes())
    preads = _count_preads(monkeypatch)
    vectored: list[int] = []
    real_preadv = os.preadv

    def counting_preadv(fd, buffers, offset):
        vectored.append(sum(memoryview(b).nbytes for b in buffers))
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", counting_preadv)
    [record] = ecgingest.read(path)
    if reads == "whole":
        assert preads == [size] and not vectored
    elif reads == "head, mapped":
        assert len(preads) == 1 and preads[0] < size and not vectored
    elif reads == "start, pooled":
        assert preads == [64] and vectored == [size]
    else:
        assert preads == [64, size] and not vectored
    assert [_samples(s) for s in record.signals] == [_samples(s) for s in expected.signals]


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
@pytest.mark.parametrize("map_from", [1, 1 << 62])
def test_a_file_whose_format_reads_companions_uploaded_alone_is_opened_once(
        tmp_path, monkeypatch, map_from):
    """An upload of one ISHNE file holds no .ann beside it: the file is decoded at once,
    as the end of a walk decodes it, through the descriptor its head was read by."""
    monkeypatch.setattr(sources, "MAP_FROM", map_from)
    path = tmp_path / "x.ecg"
    shutil.copy(FIXTURES / "ishne" / "ECG_P28.01_2s.ecg", path)
    shutil.copy(FIXTURES / "ishne" / "ECG_P28.01_2s.ann", tmp_path / "x.ann")  # not read
    [expected] = ecgingest.read(path.read_bytes())
    opened = _count_opens(monkeypatch, path)
    [record] = ecgingest.read(path)
    assert len(opened) == 1
    assert record.sources == ("x.ecg",) and not record.annotations
    assert [_samples(s) for s in record.signals] == [_samples(s) for s in expected.signals]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_no_read_leaves_a_descriptor_of_its_file_open(tmp_path):
    """The descriptor kept from a head read goes with the read: a record, a window, a
    lazy record, the header alone, an unsupported file and a directory of files."""
    edf_path = tmp_path / "one" / "x.edf"
    edf_path.parent.mkdir()
    shutil.copy(FIXTURES / "edf" / "test_subsecond.edf", edf_path)
    other = tmp_path / "other.bin"
    other.write_bytes(b"not an ECG file" * 100)
    for i in range(12):
        shutil.copy(edf_path, tmp_path / "one" / f"copy{i}.edf")
    before = _open_descriptors()
    ecgingest.read(edf_path)
    ecgingest.read(edf_path, start=0.5, stop=1.0)
    lazy = ecgingest.read(edf_path, lazy=True)
    ecgingest.read_edf_header(edf_path)
    with pytest.raises(EcgIngestError):
        ecgingest.read(other)
    assert len(ecgingest.ingest(tmp_path / "one", start=0.5, stop=1.0).records) == 13
    assert _open_descriptors() == before
    assert len(lazy[0].signals[0].digital)  # decoded later, from the path


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or not hasattr(os, "preadv"),
                    reason="counts descriptors in /proc; kept only where ranged reads exist")
def test_descriptors_kept_from_head_reads_are_bounded(tmp_path):
    """Entries whose heads were read and that are still held keep at most
    KEPT_DESCRIPTORS files open; one whose descriptor was closed to make room reads its
    bytes by opening the file again."""
    data = (FIXTURES / "edf" / "test_subsecond.edf").read_bytes()
    budget = ecgingest.limits.ByteBudget(ecgingest.Limits())
    entries = []
    before = _open_descriptors()
    for i in range(3 * sources.KEPT_DESCRIPTORS):
        path = tmp_path / f"x{i}.edf"
        path.write_bytes(data[:-i] if i else data)
        entry = sources._FileEntry(path.name, path, path.stat().st_size, budget)
        assert entry.head(256) == data[:256]
        entries.append(entry)
    assert _open_descriptors() - before <= sources.KEPT_DESCRIPTORS
    for i, entry in enumerate(entries):  # the oldest were closed: opened again
        assert bytes(entry.read()) == (data[:-i] if i else data)
        entry.release()
    assert _open_descriptors() == before


def test_a_file_changed_in_size_after_its_listing_keeps_no_descriptor(tmp_path):
    """A file that is no longer the size it was listed with is read whole (which says
    what it holds now), not by ranges of a descriptor taken for the listed size."""
    path = tmp_path / "x.edf"
    data = (FIXTURES / "edf" / "test_subsecond.edf").read_bytes()
    path.write_bytes(data)
    entry = sources._FileEntry("x.edf", path, len(data) + 10, ecgingest.limits.ByteBudget(
        ecgingest.Limits()))
    assert entry.head(256) == data[:256]
    assert entry.take_descriptor() is None


@pytest.mark.parametrize("window", [None, (0.0, 0.5)])
def test_a_file_the_head_read_holds_whole_is_opened_and_read_once(tmp_path, monkeypatch,
                                                                  window):
    """A file no longer than the head read is decoded from the bytes detection read: no
    second open, and the same record as from its bytes."""
    source = FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt"
    assert source.stat().st_size <= sources.HEAD_READ
    path = tmp_path / source.name
    shutil.copy(source, path)
    kwargs = {} if window is None else {"start": window[0], "stop": window[1]}
    [expected] = ecgingest.read(path.read_bytes(), **kwargs)
    opened = _count_opens(monkeypatch, path)
    reads = _count_preads(monkeypatch)
    [record] = ecgingest.read(path, **kwargs)
    assert len(opened) == 1 and len(reads) == 1
    assert [_samples(s) for s in record.signals] == [_samples(s) for s in expected.signals]


def test_a_file_the_head_read_holds_whole_still_obeys_the_entry_size_limit(tmp_path):
    """Bytes served from the head read count against ``Limits.max_entry_size`` as a read
    of the file does."""
    path = tmp_path / "x.cmdt"
    shutil.copy(FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt", path)
    size = path.stat().st_size
    with pytest.raises(ecgingest.errors.LimitExceededError):
        ecgingest.read(path, limits=ecgingest.Limits(max_entry_size=size - 1))
    assert ecgingest.read(path, limits=ecgingest.Limits(max_entry_size=1 << 20))


@pytest.mark.parametrize("text", ["a.edf", "d/a.edf", "./a.edf", "d//a.edf", "d/./a.edf",
                                  "/d/a.edf", "//d/a.edf", "///d/a.edf", "d/../a.edf", "..",
                                  ".", "d/", "d/.", ".a", "a."])
def test_an_upload_path_is_named_as_pathlib_names_it(text):
    """Errors and listings name a path upload as ``str(Path(text))`` did, although no Path
    is made for text already in that form."""
    from ecgingest import uploads

    assert uploads.path_label(text) == str(Path(text))


# ------------------------------------------------- files read into pooled memory


@pytest.fixture
def fresh_pool():
    """An empty array pool with room, the previous cap put back afterwards.

    Earlier tests' pooled arrays caught in reference cycles are collected first, and
    the collector is off meanwhile, so none of their blocks comes back mid-test."""
    from ecgingest import _memory

    gc.collect()
    gc.disable()
    previous = _memory.set_array_pool_limit(0)
    _memory.set_array_pool_limit(256 << 20)
    try:
        yield _memory
    finally:
        gc.enable()
        _memory.set_array_pool_limit(0)
        _memory.set_array_pool_limit(previous)


def _file_entry(path: Path) -> sources._FileEntry:
    from ecgingest.limits import ByteBudget, Limits

    return sources._FileEntry(path.name, path, path.stat().st_size, ByteBudget(Limits()))


def _mid_sized(tmp_path: Path, name: str, fill: int) -> Path:
    """A file between READ_AS_BYTES and MAP_FROM bytes, every byte ``fill``."""
    path = tmp_path / name
    path.write_bytes(bytes([fill]) * (sources.READ_AS_BYTES + 70_000))
    assert sources.READ_AS_BYTES < path.stat().st_size < sources.MAP_FROM
    return path


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
def test_a_mid_sized_file_is_read_into_pooled_memory_that_returns_when_its_view_goes(
        tmp_path, fresh_pool):
    path = _mid_sized(tmp_path, "a.bin", 7)
    with _file_entry(path).view() as data:
        assert type(data.obj) is not bytes  # a block of the pool, not a fresh bytes
        assert data.nbytes == path.stat().st_size and data[0] == data[-1] == 7
        assert fresh_pool.array_pool_bytes() == 0
    assert fresh_pool.array_pool_bytes() > 0  # the block went back with the view


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
def test_an_array_kept_over_a_pooled_read_stays_valid_after_later_reads(tmp_path, fresh_pool):
    """A record may keep arrays over its file's bytes: the block is reused only once
    nothing shows it, and comes back to the pool when the last array over it dies."""
    first, other = _mid_sized(tmp_path, "a.bin", 0x11), _mid_sized(tmp_path, "b.bin", 0x22)
    previous = fresh_pool._set_poison(b"\xa5\x5a\xc3")
    try:
        with _file_entry(first).view() as data:
            kept = np.frombuffer(data, dtype=np.uint8)[1000:5000]
        for _ in range(5):  # later reads of a file of the same size take pooled blocks
            with _file_entry(other).view() as data:
                assert data[0] == data[-1] == 0x22
            assert np.all(kept == 0x11)
        held = fresh_pool.array_pool_bytes()
        del kept
        assert fresh_pool.array_pool_bytes() > held  # its block is back
    finally:
        fresh_pool._set_poison(previous)


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
def test_a_mid_sized_file_is_read_into_bytes_when_asked_or_when_the_pool_is_off(tmp_path):
    from ecgingest import _memory

    path = _mid_sized(tmp_path, "a.bin", 3)
    with _file_entry(path).view(as_bytes=True) as data:
        assert type(data.obj) is bytes and data.nbytes == path.stat().st_size
    previous = _memory.set_array_pool_limit(0)
    try:
        with _file_entry(path).view() as data:
            assert type(data.obj) is bytes
    finally:
        _memory.set_array_pool_limit(previous)


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="ranged reads need preadv")
@pytest.mark.parametrize("fixture", ["edf/test_subsecond.edf", "dicom/mortara_el250_anonymous_ecg.dcm",
                                     "muse/easyrecg_muse_ecg1.xml"])
def test_records_of_mid_sized_files_read_by_path_match_their_bytes_and_outlive_later_reads(
        tmp_path, fresh_pool, fixture):
    """Read by path (the file's bytes in pooled memory, or in ``bytes`` for a parser
    that wants them), a record equals the one read from bytes, and stays so while later
    reads take the pool's blocks; the memory comes back when the records are gone."""
    path = tmp_path / Path(fixture).name
    shutil.copy(FIXTURES / fixture, path)
    assert sources.READ_AS_BYTES <= path.stat().st_size < sources.MAP_FROM
    expected = _records(ecgingest.read(path.read_bytes()))
    gc.collect()
    fresh_pool.array_pool_bytes()
    live_before = fresh_pool._live_bytes
    previous = fresh_pool._set_poison(b"\xa5\x5a\xc3")
    try:
        kept = ecgingest.read(path)
        for _ in range(3):
            assert _records(ecgingest.read(path)) == expected
        assert _records(kept) == expected
    finally:
        fresh_pool._set_poison(previous)
    del kept
    gc.collect()
    fresh_pool.array_pool_bytes()  # files the blocks given back
    assert fresh_pool._live_bytes == live_before  # every block this test took is back


def test_decoders_that_parse_bytes_get_bytes_from_a_mid_sized_file(tmp_path, monkeypatch):
    """An XML or DICOM parser takes ``bytes`` and wraps any other buffer at a cost: its
    file is read into ``bytes``; a binary decoder gets the pooled block's view."""
    from ecgingest.formats import single_file_formats

    seen: dict[str, type] = {}
    for fmt in single_file_formats():
        if fmt.name in ("edf", "dicom", "muse"):
            real = type(fmt).decode

            def spy(self, data, ctx, real=real):
                seen[self.name] = type(data.obj) if isinstance(data, memoryview) else type(data)
                return real(self, data, ctx)

            monkeypatch.setattr(type(fmt), "decode", spy)
    for fixture in ("edf/test_subsecond.edf", "dicom/mortara_el250_anonymous_ecg.dcm",
                    "muse/easyrecg_muse_ecg1.xml"):
        path = tmp_path / Path(fixture).name
        shutil.copy(FIXTURES / fixture, path)
        ecgingest.read(path)
    assert seen["dicom"] is bytes and seen["muse"] is bytes
    assert seen["edf"] is not bytes
