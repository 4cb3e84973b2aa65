"""``iter_records`` of uploads that name their files up front (a ZIP's central
directory, a directory on disk): multi-file records come as soon as their files
have passed, their files are let go at once, and the outcomes are those of
``ingest`` whatever the order of the entries."""

from __future__ import annotations

import importlib
import io
import random
import tarfile
import warnings
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest
import test_iter_records as iter_records_tests
from conftest import corpus_dir, requires_corpus
from ecgingest.archive import listing_of, walker
from ecgingest.errors import EcgWarning

ingest_module = importlib.import_module("ecgingest.ingest")  # the module, not the function

_SAMPLES = 30_000  # two int16 signals: a 120 kB signal file, read in full by the walk


def _signal_file(seed: int) -> bytes:
    return iter_records_tests._signal_file(seed, _SAMPLES)


def _header(record: str, dat: str, seed: int) -> bytes:
    return iter_records_tests._wfdb_header(record, dat, seed, _SAMPLES)


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a name written twice, on purpose
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _records(count: int, layout: str) -> list[tuple[str, bytes]]:
    """``count`` WFDB records: all in one directory, headers first ("flat"), or one
    directory each ("dirs", header then signal file)."""
    if layout == "flat":
        return ([(f"d/r{i}.hea", _header(f"r{i}", f"r{i}.dat", i)) for i in range(count)]
                + [(f"d/r{i}.dat", _signal_file(i)) for i in range(count)])
    return [member for i in range(count)
            for member in ((f"r{i}/r{i}.hea", _header(f"r{i}", f"r{i}.dat", i)),
                           (f"r{i}/r{i}.dat", _signal_file(i)))]


def _track_entries(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Weak references to the memory of every entry the walk hands out in memory, by path."""
    held: dict[str, list] = {}
    original = walker.Entry.from_bytes

    def from_bytes(path, data):
        owner = data.obj if isinstance(data, memoryview) else data
        while getattr(owner, "base", None) is not None:
            owner = owner.base
        if isinstance(owner, np.ndarray):  # larger entries: memory of their own
            held.setdefault(path, []).append(weakref.ref(owner))
        return original(path, data)

    monkeypatch.setattr(walker.Entry, "from_bytes", staticmethod(from_bytes))
    return held


def _track_walk(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the items the walk has taken so far, in order."""
    taken: list[str] = []
    add = ingest_module._Walk.add

    def counting(self, item, fmt=None):
        taken.append(item.path)
        return add(self, item, fmt)

    monkeypatch.setattr(ingest_module._Walk, "add", counting)
    return taken


@pytest.mark.parametrize("layout", ["flat", "dirs"])
def test_wfdb_records_of_a_zip_come_as_their_files_pass_not_after_the_walk(monkeypatch, layout):
    """Each record comes once its signal file has been read, before the next one is:
    its files are let go before it is handed out, and the walk has not gone further."""
    members = _records(4, layout)
    taken = _track_walk(monkeypatch)
    held = _track_entries(monkeypatch)
    names = []
    for record in ecgingest.iter_records(_zip(members)):
        names.append(record.name)
        dat = next(path for path in held if path.endswith(f"/{record.name}.dat"))
        assert taken[-1] == dat  # built when its signal file passed: nothing read after
        alive = sorted(p for p, refs in held.items() if any(r() is not None for r in refs))
        assert alive == [], record.name  # its own signal file and the earlier ones: gone
        del record
    assert names == ["r0", "r1", "r2", "r3"]
    assert len(taken) == len(members)


def test_a_tar_builds_its_wfdb_records_after_the_walk(monkeypatch):
    """A TAR names its entries only as it goes: its multi-file records come after it."""
    members = _records(3, "dirs")
    taken = _track_walk(monkeypatch)
    seen = [len(taken) for _ in ecgingest.iter_records(_tar(members))]
    assert seen == [len(members)] * 3


def test_a_zip_of_many_records_is_iterated_with_each_signal_file_read_once(monkeypatch):
    """Bytes let go return to what the walk may hold in memory: no signal file is passed
    over and extracted a second time, however many records come before it."""
    monkeypatch.setattr(ingest_module, "_ITER_KEEP_UNCLAIMED", 300_000)  # ~2 signal files
    read_again: list[str] = []
    load = walker.Walker._load

    def counting(self, index, path, counted):
        read_again.append(path)
        return load(self, index, path, counted)

    monkeypatch.setattr(walker.Walker, "_load", counting)
    upload = _zip(_records(12, "flat"))
    assert sorted(r.name for r in ecgingest.iter_records(upload)) == sorted(
        r.name for r in ecgingest.read(upload))
    assert read_again == []


# --------------------------------------------------------------------------- same outcomes


def _outcomes(records, skipped, errors) -> tuple:
    """What an upload gave, in a fixed order (iter_records yields in completion order)."""
    return (sorted((r.name, r.sources, tuple(s.digital.tobytes() for s in r.signals),
                    tuple((a.sample, a.code) for a in r.annotations)) for r in records),
            sorted((s.path, s.reason) for s in skipped),
            sorted((e.paths, type(e.error).__name__, str(e.error)) for e in errors))


def _both(source) -> tuple[tuple, tuple]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        result = ecgingest.ingest(source)
        stream = ecgingest.iter_records(source)
        records = list(stream)
    return (_outcomes(result.records, result.skipped, result.errors),
            _outcomes(records, stream.skipped, stream.errors))


_CORPUS_DIRS = ["wfdb/100_3chan", "wfdb/binformats", "wfdb/test01_00s", "wfdb/multiseg_041s",
                "wfdb/fmt310", "wfdb_ann/mitdb_100", "wfdb_ann/ludb_1", "wfdb_ann/03700181",
                "wfdb_ann/12726", "wfdb_ann/huge"]
"""Signal files shared by four headers (test01_00s), multi-segment records whose
segments are headers of the same directory, annotation files, many formats."""


def _corpus_members(flat: bool) -> list[tuple[str, bytes]]:
    root = corpus_dir()
    assert root is not None
    members = []
    for name in _CORPUS_DIRS:
        for file in sorted((root / name).iterdir()):
            if file.name.endswith(".npz"):
                continue  # references: large, and not what this is about
            where = name.split("/")[0] if flat else name
            members.append((f"{where}/{file.name}", file.read_bytes()))
    return members


def _extras() -> list[tuple[str, bytes]]:
    """Cases a listing must not change: a header naming a missing file, two headers
    sharing a signal file, a name written twice, an annotation file without its header."""
    return [
        ("x/a.hea", _header("a", "shared.dat", 5)),
        ("x/b.hea", _header("b", "shared.dat", 5)),
        ("x/shared.dat", _signal_file(5)),
        ("x/lost.hea", _header("lost", "nowhere.dat", 6)),
        ("x/twice.hea", _header("twice", "twice.dat", 7)),
        ("x/twice.dat", _signal_file(7)),
        ("x/twice.dat", _signal_file(8)),
        ("x/alone.atr", b"\x00\x00"),
    ]


def _ordered(members: list[tuple[str, bytes]], order: str, seed: int = 0) -> list:
    def is_header(member: tuple[str, bytes]) -> bool:
        return member[0].endswith(".hea")

    if order == "headers first":
        return sorted(members, key=lambda m: not is_header(m))
    if order == "headers last":
        return sorted(members, key=is_header)
    if order == "by name":
        return sorted(members, key=lambda m: m[0])
    shuffled = list(members)
    random.Random(seed).shuffle(shuffled)
    return shuffled


@requires_corpus
@pytest.mark.parametrize("flat", [False, True], ids=["a directory each", "one directory"])
@pytest.mark.parametrize("order", ["headers first", "headers last", "by name", "shuffled"])
def test_iter_records_of_a_zip_gives_what_ingest_gives_in_any_entry_order(flat, order):
    members = _ordered(_corpus_members(flat) + _extras(), order)
    expected, got = _both(_zip(members))
    assert got == expected
    assert len(expected[0]) >= 10 and expected[2]  # records and errors both compared


@given(order=st.permutations(list(range(len(_extras()) + 12))))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_iter_records_of_a_zip_gives_what_ingest_gives_for_any_permutation(order):
    members = _extras() + _records(3, "flat") + _signal_files_last()
    expected, got = _both(_zip([members[i] for i in order]))
    assert got == expected


def _signal_files_last() -> list[tuple[str, bytes]]:
    """Records whose signal files sort after every header of their directory."""
    return [member for i in range(3)
            for member in ((f"late/r{i}.hea", _header(f"r{i}", f"z{i}.dat", i)),
                           (f"late/z{i}.dat", _signal_file(i)))]


def test_iter_records_of_a_directory_gives_what_ingest_gives(tmp_path: Path):
    """A directory on disk lists its files (read in sorted order) but not their
    records' plans: headers passing first must not build a record early."""
    members = _extras()[:6] + _signal_files_last()
    if corpus_dir() is not None:
        members += _corpus_members(False)
    for name, data in members:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    expected, got = _both(tmp_path)
    assert got == expected and len(expected[0]) >= 3


def _archive_fixtures() -> list[Path]:
    import os

    value = os.environ.get("ECGINGEST_ARCHIVES")
    if not value:
        return []
    return sorted(p for p in Path(value).iterdir()
                  if p.is_file() and p.suffix != ".md" and ".part0" not in p.name
                  and p.stat().st_size < 8 << 20)


@pytest.mark.skipif(not _archive_fixtures(), reason="set ECGINGEST_ARCHIVES to the archive fixtures")
@pytest.mark.parametrize("path", _archive_fixtures(), ids=lambda p: p.name)
def test_iter_records_of_an_archive_fixture_gives_what_ingest_gives(path: Path):
    try:
        expected, got = _both(path)
    except ecgingest.errors.EcgIngestError as exc:  # the upload as a whole fails
        with pytest.raises(type(exc)):
            list(ecgingest.iter_records(path))
        return
    assert got == expected


def test_an_entry_the_listing_does_not_name_leaves_its_directory_to_its_end(monkeypatch):
    """Should the reader yield a file the listing does not name, which files of that
    directory are still to come is unknown: no record of it is built before its end
    (r1 would otherwise be built without its signal file)."""
    members = [("d/r0.hea", _header("r0", "r0.dat", 0)), ("d/r1.hea", _header("r1", "r1.dat", 1)),
               ("d/r0.dat", _signal_file(0)), ("d/notes.txt", b"unlisted"),
               ("d/r1.dat", _signal_file(1))]

    def without_notes(self):
        self.listed = True
        named = [(path, len(body)) for path, body in members if path != "d/notes.txt"]
        return listing_of([path for path, _ in named], [size for _, size in named])

    monkeypatch.setattr(walker.Walker, "listing", without_notes)
    taken = _track_walk(monkeypatch)
    upload = _zip(members)
    came_at = {record.name: len(taken) for record in ecgingest.iter_records(upload)}
    assert came_at == {"r0": 3, "r1": 5}  # r0 as its file passed; r1 at the end
    expected, got = _both(upload)
    assert got == expected and not expected[2]


_NAME = st.sampled_from(["a", "b", "rec.hea", "rec.dat", "x.zip", "dir", "é.dat"])


@settings(max_examples=60, deadline=None)
@given(paths=st.lists(st.lists(_NAME, min_size=1, max_size=3).map("/".join), max_size=12),
       walked=st.lists(st.lists(_NAME, min_size=1, max_size=3).map("/".join), max_size=12),
       colliding=st.booleans())
def test_a_listing_counts_down_as_a_plain_dict_of_its_paths_would(paths, walked, colliding):
    """The compact listing (names by key, told apart by their bytes) answers exactly as
    dicts of paths and directories would, also when every name shares a few keys."""
    from ecgingest.archive import listing as listing_module

    with pytest.MonkeyPatch.context() as patch:
        if colliding:
            patch.setattr(listing_module, "_key", lambda text: len(text) % 3)
        _check_listing(paths, walked)


def _check_listing(paths: list[str], walked: list[str]) -> None:
    sizes = [len(path) * 7 for path in paths]
    found = listing_of(paths, sizes)
    files: dict[str, int] = {}
    size_of: dict[str, int] = {}
    left: dict[str, int] = {}
    anchors: dict[str, int] = {}
    for path, size in zip(paths, sizes):
        files[path] = files.get(path, 0) + 1
        size_of.setdefault(path, size)
        directory = path.rpartition("/")[0]
        left[directory] = left.get(directory, 0) + 1
        anchors[directory] = anchors.get(directory, 0) + path.endswith(".hea")
    for directory in [d for d in left if d]:
        parts = directory.split("/")
        if any("/".join(parts[:i]) in files for i in range(1, len(parts) + 1)):
            del left[directory]
    for path in walked + paths:
        directory = path.rpartition("/")[0]
        assert found.lists(directory) == (directory in left)
        assert found.headers_passed(directory) == (directory in left
                                                   and anchors.get(directory) == 0)
        assert found.remaining(directory) == (
            {p: size_of[p] for p, n in files.items() if n > 0
             and p.rpartition("/")[0] == directory} if directory in left else {})
        assert found.will_come(path) == (directory in left and files.get(path, 0) > 0)
        expected = None
        if directory in left:
            if files.get(path, 0) <= 0:
                del left[directory]
            else:
                files[path] -= 1
                left[directory] -= 1
                anchors[directory] -= path.endswith(".hea")
                if not left[directory]:
                    del left[directory]
                    expected = directory
        assert found.passed(path, joins=True) == expected


@pytest.mark.parametrize("second", ["d/r0.dat", "d\\r0.dat", "d//r0.dat", "d/./r0.dat"])
def test_a_second_member_of_a_name_in_a_listed_zip_is_reported_as_ingest_reports_it(second):
    """The walk of a listed ZIP keeps no name per member, yet a second member with the
    same normalised name (written twice, or spelt otherwise) is reported with both raw
    names exactly as ingest reports it, and the first one is read."""
    members = [("d/r0.hea", _header("r0", "r0.dat", 0)), ("d/r0.dat", _signal_file(0)),
               (second, _signal_file(1)), ("d/r1.hea", _header("r1", "r1.dat", 1)),
               ("d/r1.dat", _signal_file(1))]
    upload = _zip(members)
    expected, got = _both(upload)
    assert got == expected
    errors = expected[2]
    assert len(errors) == 1 and "only the first" in errors[0][2]
    # the reader gives a ZIP's backslashes as slashes: that name is then the same
    spelt_otherwise = second in ("d//r0.dat", "d/./r0.dat")
    assert errors[0][0] == ((second,) if spelt_otherwise else ("d/r0.dat",))
    assert ("normalise alike" in errors[0][2]) == spelt_otherwise
    assert [r[0] for r in expected[0]] == ["r0", "r1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        read = {r.name: r.signals[0].digital.tobytes() for r in ecgingest.iter_records(upload)}
        first = ecgingest.read(_zip(members[:2]))[0].signals[0].digital.tobytes()
    assert read["r0"] == first
