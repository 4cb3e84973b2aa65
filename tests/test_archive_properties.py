"""Properties of the archive layer: random trees round-trip, random damage stays typed.

Trees are written with the writers available in tests (zipfile, tarfile,
zstandard and lz4 over TAR); damage is applied to those and to the fixture
archives (7z, RAR, Deflate64 ZIP) the tests cannot write.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import tracemalloc

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, OneWayStream
from ecgingest.errors import EcgIngestError
from ecgingest.limits import ByteBudget, Limits
from ecgingest.sources import Entry
from ecgingest.uploads import open_upload
from test_ingest_archives import WRITERS, _header, build

_PART = st.text(alphabet="abcXYZ019_-. é日", min_size=1, max_size=6).filter(
    lambda p: p.strip(". ") == p and p not in (".", ".."))
_PATH = st.lists(_PART, min_size=1, max_size=4).map("/".join)


@st.composite
def trees(draw) -> list[tuple[str, bytes]]:
    """Unique paths, often repeating base names across directories."""
    paths = draw(st.lists(_PATH, min_size=1, max_size=12, unique=True))
    base = draw(st.sampled_from(["rec.hea", "rec.dat", "x.bin"]))
    dirs = draw(st.lists(_PART, max_size=3, unique=True))
    paths += [f"{d}/{base}" for d in dirs]
    # a path may not also be a directory of another path in a TAR/ZIP tree
    prefixes = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    unique = list(dict.fromkeys(p for p in paths if p not in prefixes))
    return [(p, draw(st.binary(max_size=2000))) for p in unique]


@given(tree=trees(), kind=st.sampled_from(WRITERS))
def test_random_trees_round_trip_through_every_writer(tree, kind):
    data = build(kind, tree)
    limits = Limits()
    got = {}
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        for item in upload.entries():
            assert isinstance(item, Entry), item
            got[item.path] = hashlib.sha256(item.read()).hexdigest()
    assert got == {name: hashlib.sha256(body).hexdigest() for name, body in tree}


_FIXTURE_NAMES = ["7z-lzma2.7z", "7z-arm64-lzma2.7z", "zip-deflate64.zip", "rar4-store.rar",
                  "rar5-lz-solid-delta.rar", "evil-tar-traversal.tar"]
_BASES = [(FIXTURES / "archives" / n).read_bytes() for n in _FIXTURE_NAMES]
_TREE = [("a/rec.hea", b"rec 1 250 100\nrec.dat 16 200 12 0 0 0 0 I\n"),
         ("a/rec.dat", bytes(range(200))), ("b/readme.txt", b"hello " * 200)]
_BASES += [build(kind, _TREE) for kind in WRITERS]

_LIMITS = Limits(max_entry_size=4 << 20, max_total_size=8 << 20, max_entries=200)


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        pos = draw(st.integers(min_value=0, max_value=max(0, len(data) - 1)))
        if action == "flip" and data:
            data[pos] ^= draw(st.integers(min_value=1, max_value=255))
        elif action == "cut":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif action == "zero":
            data[pos:pos + 16] = bytes(len(data[pos:pos + 16]))
    return bytes(data)




@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=damaged(), how=st.sampled_from(["bytes", "seekable", "pipe"]))
def test_damaged_archives_end_in_records_and_typed_errors_within_limits(data, how):
    source = {"bytes": lambda: data, "seekable": lambda: io.BytesIO(data),
              "pipe": lambda: io.BufferedReader(OneWayStream(data))}[how]()
    tracemalloc.start()
    try:
        try:
            result = ecgingest.ingest(source, limits=_LIMITS)
        except EcgIngestError:
            return
        for problem in result.errors:
            assert isinstance(problem.error, EcgIngestError)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * _LIMITS.max_total_size


@given(outer=trees(), inner=trees(), where=_PATH, kind=st.sampled_from(WRITERS),
       inner_kind=st.sampled_from(WRITERS))
def test_nested_archives_round_trip_under_their_entry_path_when_allowed(outer, inner, where,
                                                                       kind, inner_kind):
    from ecgingest.archive import archive_kind

    inner_name = where + ".pack"
    taken = {p for p, _ in outer} | {p.rsplit("/", 1)[0] for p, _ in outer if "/" in p}
    # keep the trees unambiguous: no path clash, no accidental archive magic
    assume(inner_name not in taken and not any(p.startswith(inner_name + "/") for p, _ in outer))
    assume(not any(archive_kind(body[:512]) for _, body in outer + inner))
    members = outer + [(inner_name, build(inner_kind, inner))]
    limits = Limits(max_nesting=1)
    got = {}
    with open_upload(build(kind, members), limits, ByteBudget(limits)) as upload:
        for item in upload.entries():
            assert isinstance(item, Entry), item
            got[item.path] = hashlib.sha256(item.read()).hexdigest()
    expected = {name: hashlib.sha256(body).hexdigest() for name, body in outer}
    expected.update({f"{inner_name}/{name}": hashlib.sha256(body).hexdigest()
                     for name, body in inner})
    assert got == expected


def _record(name: str, seed: int) -> tuple[bytes, bytes, list]:
    """A small two-signal format-16 WFDB record: header, signal file, samples per signal."""
    import numpy as np

    digital = np.random.default_rng(seed).integers(-900, 900, size=(700, 2), dtype=np.int16)
    return _header(name, digital), digital.astype("<i2").tobytes(), digital.T.tolist()


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(range(5)), kind=st.sampled_from(["zip-deflate", "tar-gz", "tar"]),
       keep=st.sampled_from([0, None]))
def test_records_come_out_the_same_whatever_the_entry_order(order, kind, keep):
    """Signal files before or after their headers, records of two directories
    interleaved, a junk entry anywhere; with every unclaimed entry passed over
    (keep=0: each signal file comes from a second pass) or kept at once."""
    from ecgingest.archive import walker

    h1, d1, ref1 = _record("p1", 1)
    h2, d2, ref2 = _record("p2", 2)
    members = [("x/p1.hea", h1), ("x/p1.dat", d1), ("y/p2.dat", d2), ("y/p2.hea", h2),
               ("x/notes.txt", b"log line\n" * 300)]
    data = build(kind, [members[i] for i in order])
    saved = walker.KEEP_UNCLAIMED
    walker.KEEP_UNCLAIMED = saved if keep is None else keep
    try:
        result = ecgingest.ingest(data)
    finally:
        walker.KEEP_UNCLAIMED = saved
    assert not result.errors
    got = {r.name: [s.digital.tolist() for s in r.signals] for r in result.records}
    assert got == {"p1": ref1, "p2": ref2}
    assert [s.path for s in result.skipped] == ["x/notes.txt"]


def _damaged_record(name: str, seed: int, damage: str) -> list[tuple[str, bytes]]:
    """A record's files (directory-less names), damaged as ``damage`` says."""
    header, signal, _ = _record(name, seed)
    if damage == "checksum":  # tolerated: a warning
        lines = header.decode().split("\n")
        fields = lines[1].split()
        fields[6] = str((int(fields[6]) + 1) % 65536)
        lines[1] = " ".join(fields)
        header = "\n".join(lines).encode()
    elif damage == "truncated":
        signal = signal[: len(signal) // 3]
    files = [(f"{name}.hea", header)]
    if damage != "no signal":
        files.append((f"{name}.dat", signal))
    return files


def _outcome_of(data: bytes, limits: Limits) -> tuple:
    """Everything ``ingest`` says of ``data``: records (in order, with samples, sources
    and warnings), skips, errors, and the warnings issued."""
    import warnings as warnings_module

    with warnings_module.catch_warnings(record=True) as issued:
        warnings_module.simplefilter("always")
        result = ecgingest.ingest(data, limits=limits)
    records = [(r.name, r.sources, tuple(r.warnings), [s.digital.tolist() for s in r.signals])
               for r in result.records]
    errors = [(e.paths, type(e.error).__name__, str(e.error)) for e in result.errors]
    return (records, [(s.path, s.reason) for s in result.skipped], errors,
            [str(w.message) for w in issued])


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(["tar-gz", "tar-zst"]),
       damages=st.lists(st.sampled_from(["", "", "checksum", "truncated", "no signal"]),
                        min_size=3, max_size=3),
       budget=st.sampled_from([None, 3000, 6000, 9000]), keep=st.sampled_from([3000, None]))
def test_directories_built_when_the_walk_leaves_them_read_as_at_the_end(
        data, kind, damages, budget, keep):
    """Records of directories the walk leaves (and, in an interleaved archive, comes
    back to) come out exactly as when every directory is read at the end: records,
    order, samples, warnings, skips, errors, within a decoded-output bound or not."""
    from ecgingest.archive import libarchive, pipeline, walker

    ingest_module = importlib.import_module("ecgingest.ingest")
    members = [("top.txt", b"notes\n")]
    for i, (directory, damage) in enumerate(zip("abc", damages)):
        members += [(f"{directory}/{n}", body) for n, body in _damaged_record(f"r{i}", i, damage)]
        members.append((f"{directory}/extra.bin", bytes(range(i + 1)) * 50))
    order = data.draw(st.permutations(range(len(members))))
    archive = build(kind, [members[i] for i in order])
    limits = Limits() if budget is None else Limits(max_decoded_size=budget)
    saved, ahead = walker.KEEP_UNCLAIMED, libarchive.READ_AHEAD_FROM
    walker.KEEP_UNCLAIMED = saved if keep is None else keep
    libarchive.READ_AHEAD_FROM = 0  # directories are built early while reading ahead,
    behind = pipeline.DecompressingFeed.behind
    pipeline.DecompressingFeed.behind = lambda self: True  # whenever the walk leaves one
    built_early = ingest_module._Walk.build_left
    try:
        early = _outcome_of(archive, limits)
        ingest_module._Walk.build_left = lambda self, directory: None  # all at the end
        try:
            at_end = _outcome_of(archive, limits)
        finally:
            ingest_module._Walk.build_left = built_early
    finally:
        walker.KEEP_UNCLAIMED, libarchive.READ_AHEAD_FROM = saved, ahead
        pipeline.DecompressingFeed.behind = behind
    assert early == at_end


@pytest.mark.parametrize("kind", ["tar-gz", "tar-zst"])
@pytest.mark.parametrize("ahead", [True, False])
def test_a_directory_is_built_when_the_walk_leaves_it_while_waiting_for_a_thread(
        kind, ahead, monkeypatch):
    """The records of a directory are read before the upload's next entries are, when
    the walk is about to wait for entries decompressed on another thread (else at
    the end, as before)."""
    from ecgingest.archive import libarchive, pipeline

    ingest_module = importlib.import_module("ecgingest.ingest")
    monkeypatch.setattr(libarchive, "READ_AHEAD_FROM", 0 if ahead else 1 << 62)
    monkeypatch.setattr(pipeline.DecompressingFeed, "behind", lambda self: True)
    h1, d1, ref1 = _record("p1", 1)
    h2, d2, ref2 = _record("p2", 2)
    archive = build(kind, [("x/p1.hea", h1), ("x/p1.dat", d1), ("y/p2.dat", d2),
                           ("y/p2.hea", h2)])
    seen: list[str] = []
    walk_add = ingest_module._Walk.add
    build_left = ingest_module._Walk.build_left

    def add(self, item, fmt=None):
        seen.append(item.path)
        return walk_add(self, item, fmt)

    def left(self, directory):
        build_left(self, directory)
        if directory in self.provisional:
            seen.append(f"built {directory}")

    monkeypatch.setattr(ingest_module._Walk, "add", add)
    monkeypatch.setattr(ingest_module._Walk, "build_left", left)
    records = ecgingest.read(archive)
    assert seen == (["x/p1.hea", "x/p1.dat", "y/p2.dat", "built x", "y/p2.hea"] if ahead
                    else ["x/p1.hea", "x/p1.dat", "y/p2.dat", "y/p2.hea"])
    assert [[s.digital.tolist() for s in r.signals] for r in records] == [ref1, ref2]


def _claimed_files() -> list[tuple[str, bytes]]:
    """Files single-file formats claim (and WFDB files and junk, which none does)."""
    h1, d1, _ = _record("p1", 1)
    return [("c/delta.cmdt", (FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt").read_bytes()),
            ("e/hyp.edf", (FIXTURES / "edf" / "SC4001EC-Hypnogram.edf").read_bytes()),
            ("w/p1.hea", h1), ("w/p1.dat", d1), ("w/notes.txt", b"log line\n" * 300)]


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(range(5)), kind=st.sampled_from(["tar", "tar-zst", "zip-deflate"]),
       keep=st.sampled_from([0, None]))
def test_what_the_walk_detected_of_an_entry_is_what_detection_finds_in_its_bytes(
        order, kind, keep):
    from ecgingest.archive import walker
    from ecgingest.detect import detect

    files = _claimed_files()
    data = build(kind, [files[i] for i in order])
    limits = Limits()
    saved = walker.KEEP_UNCLAIMED
    walker.KEEP_UNCLAIMED = saved if keep is None else keep
    try:
        with open_upload(data, limits, ByteBudget(limits)) as upload:
            looked = 0
            for item in upload.entries():
                assert isinstance(item, Entry), item
                if item.detected is not None:
                    looked += 1
                    fresh = Entry.from_bytes(item.path, bytes(item.read()))
                    assert item.detected[0] is detect(fresh), item.path
    finally:
        walker.KEEP_UNCLAIMED = saved
    assert looked == 4  # the entries longer than a first look: detected by the walk


@pytest.mark.parametrize("kind", ["tar", "tar-zst", "zip-deflate"])
def test_an_archive_entry_is_detected_once(kind, monkeypatch):
    """The walk's detection of an entry (made to know whether to read it in full) is
    the one ingestion uses."""
    from ecgingest.archive import walker

    ingest_module = importlib.import_module("ecgingest.ingest")
    counts: dict[str, int] = {}
    for module in (ingest_module, walker):
        def counted(item, found=module.detect):
            counts[item.name] = counts.get(item.name, 0) + 1
            return found(item)
        monkeypatch.setattr(module, "detect", counted)
    result = ecgingest.ingest(build(kind, _claimed_files()))
    assert len(result.records) == 3 and not result.errors
    assert counts == {"delta.cmdt": 1, "hyp.edf": 1, "p1.hea": 1, "p1.dat": 1, "notes.txt": 1}


def test_a_walk_waits_ahead_when_it_has_taken_most_of_what_was_decompressed():
    from ecgingest.archive.pipeline import DecompressingFeed

    feed = DecompressingFeed.__new__(DecompressingFeed)
    feed.most, feed.ended = 1000, False
    feed.ahead = 400
    assert feed.behind()
    feed.ahead = 900  # the decompressing thread is ahead: the walk has work waiting
    assert not feed.behind()
    feed.ahead, feed.ended = 0, True  # nothing more will come: nothing to wait for
    assert not feed.behind()
