"""Reading archives ahead on other threads changes nothing but the time it takes.

Every walk here is made twice, read as the walk asks (the reference) and
read ahead by one to three threads with small bounds, and must give the
same items in the same order: entries and their bytes, skip reasons,
failures with their error type and message, and the error the walk ends
with. Then what only a second thread can get wrong: its failures reaching
the walk, stopping it early, and the bytes it holds.
"""

from __future__ import annotations

import gc
import hashlib
import io
import re
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES
from ecgingest.archive import libarchive as la
from ecgingest.archive import walker as walker_module
from ecgingest.archive.pipeline import DecompressingFeed
from ecgingest.errors import ArchiveError, EcgIngestError, LimitExceededError
from ecgingest.limits import ByteBudget, Limits
from ecgingest.sources import Entry, Skipped
from ecgingest.uploads import open_upload
from test_archive import shared_dir
from test_ingest_archives import WRITERS, _header, build

THREAD_NAME = "ecgingest-archive-read-ahead"


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    gc.collect()  # walks abandoned by a test end with their generators
    assert not read_ahead_threads()


def _text(exc: EcgIngestError) -> str:
    # In a damaged archive, the figures libarchive puts in parentheses ("Decompression
    # failed(11)", "needed 99 bytes") depend on how much was asked of it when it met the
    # damage, and a thread reading ahead asks in other steps: same error, same entry,
    # other figures
    return re.sub(r"\([^()]*\)", lambda m: re.sub(r"\d+", "N", m.group()), exc.message)


def outcome(source, limits: Limits | None = None, *, keep: int | None = None) -> list[tuple]:
    """Every item of a walk, in order, with what identifies it; the error it ends with."""
    limits = limits or Limits()
    items: list[tuple] = []
    try:
        with open_upload(source, limits, ByteBudget(limits, keep_unclaimed=keep)) as upload:
            for item in upload.entries():
                if isinstance(item, Entry):
                    try:  # an entry passed over is read in full here (a second pass)
                        body = bytes(item.read())
                    except EcgIngestError as exc:
                        items.append(("entry", item.path, type(exc).__name__, _text(exc)))
                    else:
                        items.append(("entry", item.path, hashlib.sha256(body).hexdigest()))
                elif isinstance(item, Skipped):
                    items.append(("skipped", item.path, item.reason))
                else:
                    items.append(("failed", item.path, type(item.error).__name__,
                                  _text(item.error), item.fatal))
    except EcgIngestError as exc:
        items.append(("raised", type(exc).__name__, _text(exc)))
    return items


DEFAULT_DIRECT_KINDS = la.DIRECT_KINDS


@pytest.fixture(autouse=True)
def _every_kind_reads_ahead(monkeypatch):
    """The tests here force read-ahead; by default some kinds never read ahead."""
    monkeypatch.setattr(la, "DIRECT_KINDS", frozenset())


def direct_and_ahead(monkeypatch, source, limits=None, *, keep=None, lanes=2,
                     ahead_bytes=64 << 10, ahead_entries=3) -> tuple[list, list]:
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 1 << 62)
    direct = outcome(source, limits, keep=keep)
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_LANES", lanes)
    monkeypatch.setattr(la, "READ_AHEAD_BYTES", ahead_bytes)
    monkeypatch.setattr(la, "READ_AHEAD_ENTRIES", ahead_entries)
    return direct, outcome(source, limits, keep=keep)


def _fixture_paths() -> list:
    folders = [FIXTURES / "archives"] + ([shared_dir()] if shared_dir() else [])
    params = []
    for folder in folders:
        assert folder is not None
        for path in sorted(folder.iterdir()):
            if path.suffix in (".md", ".txt") or ".part0" in path.name:
                continue
            if "ppmd-lz-switch-big" in path.name:  # 241 MB through RAR 4, never read ahead
                continue
            params.append(pytest.param(path, id=f"{folder.name}/{path.name}"))
    return params


@pytest.mark.parametrize("lanes", [1, 2, 3])
@pytest.mark.parametrize("path", _fixture_paths())
def test_every_fixture_walks_alike_read_ahead_or_not(path: Path, lanes, monkeypatch):
    direct, ahead = direct_and_ahead(monkeypatch, str(path), lanes=lanes)
    assert ahead == direct


@pytest.mark.parametrize("data", ["bytes", "path"])
def test_every_fixture_walks_alike_from_bytes_and_under_tight_limits(data, monkeypatch):
    limits = Limits(max_total_size=300_000, max_entry_size=120_000, ratio_grace=1000,
                    max_ratio=20, max_entries=12)
    for param in _fixture_paths():
        path = param.values[0]
        source = path.read_bytes() if data == "bytes" else str(path)
        direct, ahead = direct_and_ahead(monkeypatch, source, limits)
        assert ahead == direct, path.name


def test_multivolume_archive_walks_alike_read_ahead_or_not(monkeypatch):
    folder = shared_dir()
    if folder is None:
        pytest.skip("set ECGINGEST_ARCHIVES to the shared archive fixtures")
    volumes = sorted(str(p) for p in folder.glob("rar5-filter-x86.part0*.rar"))
    direct, ahead = direct_and_ahead(monkeypatch, volumes)
    assert ahead == direct
    assert direct and all(item[0] == "entry" for item in direct)


def _damaged(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(data)
    for at, value in flips:
        raw[at % len(raw)] ^= value or 1
    return bytes(raw[:cut % len(raw) + 1] if cut is not None else raw)


_NAMES = st.sampled_from(["a/r.hea", "a/r.dat", "b/r.dat", "b/x.bin", "log.txt", "c/d/e.dat",
                          "a/../a/r.hea", "/abs", "big.bin", "a//r.dat"])


@st.composite
def members(draw) -> list[tuple[str, bytes]]:
    names = draw(st.lists(_NAMES, min_size=1, max_size=8))
    out = []
    for name in names:
        size = draw(st.sampled_from([0, 1, 100, 511, 512, 513, 5000, 70_000, 300_000]))
        fill = draw(st.sampled_from([b"\x00", b"ab", None]))
        body = (fill * size)[:size] if fill else np.random.default_rng(size).bytes(size)
        out.append((name, body))
    return out


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=members(),
       kind=st.sampled_from([w for w in WRITERS if not w.startswith("7z")] + ["7z-lzma2"]),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=3),
       cut=st.none() | st.integers(0, 1 << 20),
       limits=st.sampled_from([Limits(), Limits(max_total_size=200_000),
                               Limits(max_entry_size=60_000), Limits(max_entries=4),
                               Limits(ratio_grace=2000, max_ratio=3)]),
       keep=st.sampled_from([None, 0, 100_000]),
       lanes=st.integers(1, 3), ahead_bytes=st.sampled_from([1, 100_000, 4 << 20]),
       ahead_entries=st.integers(1, 4))
def test_random_archives_damage_and_limits_walk_alike_read_ahead_or_not(
        tree, kind, flips, cut, limits, keep, lanes, ahead_bytes, ahead_entries):
    data = _damaged(build(kind, tree), flips, cut)
    with pytest.MonkeyPatch.context() as monkeypatch:
        direct, ahead = direct_and_ahead(monkeypatch, data, limits, keep=keep, lanes=lanes,
                                         ahead_bytes=ahead_bytes, ahead_entries=ahead_entries)
    assert ahead == direct


def test_damaged_entry_passed_over_in_a_solid_7z_walks_alike_read_ahead_or_not(monkeypatch):
    # The second entry, damaged, is read ahead and fails; the walk never reads it (a
    # duplicate name). Passing over it decompresses it, and fails, only because the walk
    # read from the solid folder before: the fresh reader must stand where the walk's would
    tree = [("a/r.hea", b"\x00"), ("a/r.hea", b"\x00" * 70_000)]
    data = _damaged(build("7z-lzma2", tree), [(109, 7)], None)
    direct, ahead = direct_and_ahead(monkeypatch, data, Limits(), lanes=1, ahead_bytes=1,
                                     ahead_entries=1)
    assert ahead == direct
    assert direct[-1][:2] == ("raised", "ArchiveError")


@pytest.mark.parametrize("ahead_entries", [1, 2])
def test_a_lane_that_skipped_a_damaged_entry_does_not_end_the_walk_read_ahead(
        ahead_entries, monkeypatch):
    # The second entry's local header declares 297 compressed bytes, its bzip2 stream
    # holds 41 (and the central directory's offset is off: libarchive reads the ZIP as
    # a stream). Reading the entry ends with its stream, and the walk finds the central
    # directory next: the entry fails alone. A second lane that skipped the entry by its
    # declared size ran past the archive's end and reported the archive truncated
    tree = [("a/r.hea", b"\x00"), ("a/../a/r.hea", b"\x00" * 512)]
    data = _damaged(build("zip-bzip2", tree), [(30, 0), (673, 0), (1734, 2)], None)
    direct, ahead = direct_and_ahead(monkeypatch, data, Limits(), lanes=2, ahead_bytes=1,
                                     ahead_entries=ahead_entries)
    assert ahead == direct
    assert [item[:2] for item in direct] == [("entry", "`/r.hea"), ("failed", "a/r.hea")]


def test_damage_a_lane_meets_after_reading_what_the_walk_passes_over_fails_an_entry_alike(
        monkeypatch):
    # One solid 7-Zip folder, damaged past the first entries. The lane reads the first
    # entry ahead (small), which the walk passes over (an absolute name); having read
    # from the folder, libarchive decompresses the second entry to pass over it and
    # meets the damage at the third header. The walk's own reader never read from the
    # folder: it reaches the third entry and fails reading it
    tree = ([("/abs", b"\x00" * 100), ("/abs", b"\x00" * 70_000)] + [("a/r.hea", b"")] * 5
            + [("a/r.hea", b"\x00")])
    data = _damaged(build("7z-lzma2", tree), [(23860, 0)], None)
    direct, ahead = direct_and_ahead(monkeypatch, data, Limits(max_entry_size=60_000),
                                     lanes=1, ahead_bytes=1, ahead_entries=1)
    assert ahead == direct
    assert direct[-1][:3] == ("failed", "a/r.hea", "CorruptDataError")


def _records_zip(count: int, *, dat_first: bool = False) -> bytes:
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            digital = rng.integers(-2000, 2000, (2500, 3)).astype("<i2")
            files = [(f"r{i}/r{i}.hea", _header(f"r{i}", digital)),
                     (f"r{i}/r{i}.dat", digital.tobytes())]
            for name, body in (files[::-1] if dat_first else files):
                zf.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize("dat_first", [False, True])
def test_wfdb_records_of_an_archive_read_ahead_are_the_records_read_directly(
        dat_first, monkeypatch):
    data = _records_zip(40, dat_first=dat_first)

    def records() -> list[tuple]:
        result = ecgingest.ingest(data)
        assert not result.errors and not result.skipped
        return [(r.sources, [s.digital.tobytes() for s in r.signals]) for r in result.records]

    monkeypatch.setattr(la, "READ_AHEAD_FROM", 1 << 62)
    expected = records()
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_BYTES", 30_000)
    assert records() == expected
    assert len(expected) == 40


def test_archives_inside_an_archive_read_ahead_walk_alike(monkeypatch):
    inner = _records_zip(3)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("first/inner.zip", inner)
        zf.writestr("middle.txt", b"x" * 3000)
        zf.writestr("second/inner.zip", inner)
    direct, ahead = direct_and_ahead(monkeypatch, outer.getvalue(), Limits(max_nesting=2))
    assert ahead == direct
    assert sum(1 for item in direct if item[0] == "entry") == 13


@pytest.mark.parametrize("lanes", [1, 2])
def test_a_failure_on_the_read_ahead_thread_reaches_the_walk_as_raised(lanes, monkeypatch):
    data = _records_zip(10)
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_LANES", lanes)
    calls = []
    whole = la._Reader.whole

    def failing(self, declared, arena):
        calls.append(declared)
        if len(calls) == 7:
            raise OSError(5, "input/output error")
        return whole(self, declared, arena)

    monkeypatch.setattr(la._Reader, "whole", failing)
    limits = Limits()
    got = []
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        with pytest.raises(OSError, match="input/output error"):
            for item in upload.entries():
                got.append(item.path)
    every = [f"r{i // 2}/r{i // 2}.{'hea' if i % 2 == 0 else 'dat'}" for i in range(20)]
    if lanes == 1:  # the seventh entry failed: the six before it came
        assert got == every[:6]
    else:  # which lane meets the seventh call first varies: what came is still in order
        assert got == every[:len(got)] and len(got) < 10


def test_a_typed_error_on_the_read_ahead_thread_stays_typed(monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)

    def failing(self):
        raise ArchiveError("the device went away", path="x.zip")

    monkeypatch.setattr(la._Reader, "header", failing)
    result = ecgingest.ingest(_records_zip(2))
    assert [type(e.error) for e in result.errors] == [ArchiveError]
    assert result.errors[0].error.message == "the device went away"


def test_total_size_limit_stops_a_walk_read_ahead_at_the_same_entry(monkeypatch):
    data = _records_zip(30)
    limits = Limits(max_total_size=200_000)
    direct, ahead = direct_and_ahead(monkeypatch, data, limits, ahead_bytes=4 << 20,
                                     ahead_entries=64)
    assert ahead == direct
    assert direct[-1][:2] == ("raised", "LimitExceededError")


@pytest.mark.parametrize("lanes", [1, 2])
def test_stopping_a_walk_early_stops_and_joins_the_threads(lanes, monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_LANES", lanes)
    monkeypatch.setattr(la, "READ_AHEAD_ENTRIES", 4)  # the threads wait for the walk
    data = _records_zip(50)
    limits = Limits()
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        entries = upload.entries()
        next(entries)
        assert len(read_ahead_threads()) == lanes
        entries.close()
        assert not read_ahead_threads()
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        entries = upload.entries()
        next(entries)
    # leaving the upload stops the threads even while the walk is still referenced
    assert not read_ahead_threads()
    del entries


def _single_file_records_zip(count: int) -> bytes:
    """Records decoded as the walk reaches them (single-file ones)."""
    body = (FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            zf.writestr(f"rec{i:03d}.cmdt", body)
    return buf.getvalue()


def test_single_file_records_read_ahead_are_the_records_read_directly(monkeypatch):
    data = _single_file_records_zip(20)

    def records() -> list[tuple]:
        return [(r.sources, [s.digital.tobytes() for s in r.signals])
                for r in ecgingest.read(data)]

    monkeypatch.setattr(la, "READ_AHEAD_FROM", 1 << 62)
    expected = records()
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    assert records() == expected
    assert len(expected) == 20


def _single_file_records_tar_gz(count: int) -> bytes:
    """The records of :func:`_single_file_records_zip` in a TAR+gzip (no listing up
    front: an iteration reads it ahead)."""
    import tarfile

    body = (FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt").read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(count):
            info = tarfile.TarInfo(f"rec{i:03d}.cmdt")
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_iter_records_of_a_zip_reads_nothing_ahead(monkeypatch):
    """A ZIP lists its entries: an iteration builds each record as its directory
    completes and holds about one record, which entries read ahead would exceed."""
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    with ecgingest.iter_records(_single_file_records_zip(20)) as records:
        next(records)
        assert not read_ahead_threads()
    assert len(ecgingest.read(_single_file_records_zip(20))) == 20


def test_iter_records_closed_early_or_a_caller_raising_mid_walk_leaves_no_thread(monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_ENTRIES", 4)  # the threads wait for the walk
    monkeypatch.setattr(la, "READ_AHEAD_BYTES", 1)  # (a decompressing one: one chunk ahead)
    data = _single_file_records_tar_gz(200)
    with ecgingest.iter_records(data) as records:
        next(records)
        assert read_ahead_threads()  # the walk is still under way
    assert not read_ahead_threads()

    class Stop(Exception):
        pass

    with pytest.raises(Stop):  # the caller fails while the threads still read
        for count, _ in enumerate(ecgingest.iter_records(data)):
            if count == 5:
                assert read_ahead_threads()
                raise Stop
    gc.collect()
    assert not read_ahead_threads()


def test_a_walk_raising_in_the_middle_does_not_deadlock(monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_ENTRIES", 1)
    data = _records_zip(30)
    limits = Limits(max_entries=9)  # raised by the walk, with both lanes mid-way
    start = time.monotonic()
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        with pytest.raises(LimitExceededError):
            for _ in upload.entries():
                pass
    assert time.monotonic() - start < 30


def test_read_ahead_holds_at_most_its_bound_of_bytes_and_entries(monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_BYTES", 100_000)
    monkeypatch.setattr(la, "READ_AHEAD_ENTRIES", 5)
    started: list[la.ReadAhead] = []
    init = la.ReadAhead.__init__

    def recording(self, *args):
        started.append(self)
        init(self, *args)

    monkeypatch.setattr(la.ReadAhead, "__init__", recording)
    data = _records_zip(40)  # .dat entries of 15,000 bytes
    limits = Limits()
    most_bytes = most_entries = 0
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        for _ in upload.entries():
            waited = time.monotonic()
            while time.monotonic() - waited < 0.2:  # the threads read on while the walk waits
                with started[0].cond:
                    most_bytes = max(most_bytes, started[0].ahead)
                    most_entries = max(most_entries, len(started[0].found))
                    if started[0].found:
                        break
                time.sleep(0.001)
    assert len(started) == 1
    assert 0 < most_bytes <= 100_000 + walker_module.SMALL_ENTRY
    assert 0 < most_entries <= 5


@pytest.mark.parametrize("kind", ["tar-gz", "tar-zst"])
def test_a_decompressing_thread_holds_at_most_its_bound_of_bytes(kind, monkeypatch):
    """Decompressed bytes waiting for the walk stay under the read-ahead bound (plus the
    chunk the walk's reader parses and the one being filled)."""
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    monkeypatch.setattr(la, "READ_AHEAD_BYTES", 300_000)
    started: list[DecompressingFeed] = []
    init = DecompressingFeed.__init__

    def recording(self, *args):
        started.append(self)
        init(self, *args)

    monkeypatch.setattr(DecompressingFeed, "__init__", recording)
    rng = np.random.default_rng(4)
    tree = [(f"r{i}.bin", rng.bytes(40_000)) for i in range(60)]
    data = build(kind, tree)
    limits = Limits()
    most_bytes = 0
    made: set[int] = set()
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        for item in upload.entries():
            assert isinstance(item, Entry)
            waited = time.monotonic()
            while time.monotonic() - waited < 0.05:  # the thread reads on while the walk waits
                feed = started[0]
                with feed.cond:
                    most_bytes = max(most_bytes, feed.ahead)
                    made.update(id(buf) for buf, _, _ in feed.chunks)
                    if feed.ended or feed.ahead + feed.chunk > feed.most:
                        break
                time.sleep(0.001)
    assert len(started) == 1
    assert started[0].chunk <= 300_000 // 4
    assert 0 < most_bytes <= 300_000
    assert len(made) <= 300_000 // started[0].chunk + 2  # chunks are reused, not made anew


@pytest.mark.parametrize("kind", ["tar-gz", "tar-zst"])
def test_an_expanding_entry_of_a_decompressed_tar_stops_at_the_ratio_limit(kind, monkeypatch):
    """The expansion ratio counts the compressed bytes behind the decompressed ones the
    walk has taken: a bomb stops as it does when the walk decompresses itself."""
    # small enough for the walk to read in full at once, though nothing claims it
    tree = [("a.bin", b"\0" * 1_000_000), ("b.bin", b"x" * 100)]
    limits = Limits(ratio_grace=100_000, max_ratio=50)
    direct, ahead = direct_and_ahead(monkeypatch, build(kind, tree), limits,
                                     ahead_bytes=256 << 10)
    assert ahead == direct
    assert direct == [("raised", "LimitExceededError", direct[0][2])]


def test_an_unclaimed_large_entry_is_not_read_ahead_nor_decompressed(monkeypatch):
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    read_ahead: list[int] = []
    whole = la._Reader.whole

    def recording(self, declared, arena):
        read_ahead.append(declared)
        return whole(self, declared, arena)

    monkeypatch.setattr(la._Reader, "whole", recording)
    big = walker_module.SMALL_ENTRY + 4096
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("small.bin", b"s" * 1000)
        zf.writestr("big.log", b"line\n" * (big // 5))
        zf.writestr("after.bin", b"a" * 1000)
    limits = Limits()
    counted = []
    for start in (1 << 62, 0):  # read as the walk asks, then read ahead
        monkeypatch.setattr(la, "READ_AHEAD_FROM", start)
        budget = ByteBudget(limits)
        with open_upload(buf.getvalue(), limits, budget) as upload:
            items = list(upload.entries())
        assert [i.path for i in items] == ["small.bin", "big.log", "after.bin"]
        assert not items[1].in_memory  # passed over after its first bytes
        counted.append(budget.total)
    assert read_ahead and max(read_ahead) < big
    assert counted[0] == counted[1] < big


@pytest.mark.parametrize(("kind", "thread"), [("zip-deflate", "entries"), ("tar-gz", "stream"),
                                              ("tar-zst", "stream"), ("tar-lz4", "stream"),
                                              ("tar", None)])
def test_compressed_archives_use_a_second_thread_by_default_the_one_their_kind_needs(
        kind, thread, monkeypatch):
    """A ZIP's entries are read ahead; a compressed TAR, one stream, is decompressed
    on the second thread; a plain TAR has nothing to decompress."""
    monkeypatch.setattr(la, "DIRECT_KINDS", DEFAULT_DIRECT_KINDS)
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    started: list[str] = []
    init = la.ReadAhead.__init__
    feed_init = DecompressingFeed.__init__

    def recording(self, *args):
        started.append("entries")
        init(self, *args)

    def feed_recording(self, *args):
        started.append("stream")
        feed_init(self, *args)

    monkeypatch.setattr(la.ReadAhead, "__init__", recording)
    monkeypatch.setattr(DecompressingFeed, "__init__", feed_recording)
    rng = np.random.default_rng(2)
    digital = rng.integers(-2000, 2000, (2500, 3)).astype("<i2")
    data = build(kind, [("r/r.hea", _header("r", digital)), ("r/r.dat", digital.tobytes())])
    [record] = ecgingest.read(data)
    np.testing.assert_array_equal(record.signals[0].digital, digital[:, 0])
    assert started == ([thread] if thread else [])


def test_a_failure_of_the_decompressing_thread_ends_the_walk_with_an_archive_error(
        monkeypatch):
    """Whatever stops the decompressing thread reaches the walk (which never waits
    for bytes that will not come)."""
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)

    def broken(self):
        raise MemoryError("no room for a chunk")

    monkeypatch.setattr(DecompressingFeed, "_decompress", broken)
    rng = np.random.default_rng(3)
    data = build("tar-gz", [("a.bin", rng.bytes(5000)), ("b.bin", rng.bytes(5000))])
    items = outcome(data)
    assert items[-1][:2] == ("raised", "ArchiveError")
    assert "no room for a chunk" in items[-1][2]


@pytest.mark.parametrize("raised", [KeyboardInterrupt, RuntimeError])
def test_an_error_raised_on_the_walks_thread_asking_for_a_chunk_is_raised_by_the_walk(
        raised, monkeypatch):
    """The walk's reader asks for chunks from inside libarchive (a native callback):
    an error raised there fails the read and is then raised where the walk called
    libarchive (a KeyboardInterrupt as itself, anything else as an ArchiveError)."""
    monkeypatch.setattr(la, "READ_AHEAD_FROM", 0)
    asked = []
    original = DecompressingFeed._next_chunk

    def interrupted(self, archive):
        asked.append(archive)
        if len(asked) == 2:
            raise raised("stop reading")
        return original(self, archive)

    monkeypatch.setattr(DecompressingFeed, "_next_chunk", interrupted)
    monkeypatch.setattr(DecompressingFeed, "__init__", _small_chunks(DecompressingFeed.__init__))
    rng = np.random.default_rng(4)
    data = build("tar-zst", [(f"{k}.bin", rng.bytes(70_000)) for k in range(4)])
    if raised is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            outcome(data)
    else:
        items = outcome(data)
        assert items[-1][:2] == ("raised", "ArchiveError")
        assert "stop reading" in items[-1][2]
    assert len(asked) == 2


def _small_chunks(init):
    def small(self, raw, most):
        init(self, raw, 16 << 10)  # chunks of 4 KiB: several before the archive's end
    return small


@pytest.mark.parametrize("kind", ["tar-gz", "tar-zst", "tar-xz", "tar-bz2"])
@pytest.mark.parametrize("cut", [30, 148, 700, 3000, 9000])
def test_a_truncated_compressed_tar_fails_alike_decompressed_on_a_thread_or_not(
        kind, cut, monkeypatch):
    """libarchive's words for a stream cut short depend on where its TAR reader stands
    when the filter fails: the decompressing thread hands the failure to the walk's
    reader as the filter would have."""
    rng = np.random.default_rng(9)
    tree = [("a/r.hea", b""), ("a/r.hea", bytes(300_000)), ("b.bin", rng.bytes(8000))]
    data = build(kind, tree)[:cut]
    direct, ahead = direct_and_ahead(monkeypatch, data, ahead_bytes=1)
    assert ahead == direct


@pytest.mark.parametrize("kind", ["tar-gz", "tar-zst", "tar-bz2"])
def test_the_expansion_ratio_through_a_decompressing_thread_counts_as_read_directly(
        kind, monkeypatch):
    """Several entries in one chunk of decompressed bytes: each is counted against the
    compressed bytes read when libarchive produced its blocks, not the chunk's end."""
    rng = np.random.default_rng(11)
    tree = [("a.bin", rng.bytes(70_000)), ("b.txt", rng.bytes(5000)),
            ("c.bin", bytes(70_000)), ("d.bin", rng.bytes(300_000))]
    for limits in (Limits(ratio_grace=2000, max_ratio=3), Limits(ratio_grace=2000, max_ratio=30)):
        direct, ahead = direct_and_ahead(monkeypatch, build(kind, tree), limits,
                                         ahead_bytes=4 << 20)
        assert ahead == direct
