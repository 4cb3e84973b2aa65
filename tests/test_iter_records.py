"""``iter_records``: the records of an upload one at a time, as each is complete;
``inspect_upload``: the same records' header facts without samples."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import ecgingest
from ecgingest.demo import archive, path
from ecgingest.errors import SkippedEntriesError
from ecgingest.ingest import inspect_upload


def _demo_files() -> dict[str, bytes]:
    with zipfile.ZipFile(archive()) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _by_sources(records: list[ecgingest.Record]) -> list[ecgingest.Record]:
    """Records in a fixed order: ``iter_records`` yields them in completion order."""
    return sorted(records, key=lambda r: r.sources)


def _same_records(a: list[ecgingest.Record], b: list[ecgingest.Record]) -> None:
    a, b = _by_sources(a), _by_sources(b)
    assert [(r.name, r.format, r.sources) for r in a] == [(r.name, r.format, r.sources) for r in b]
    for x, y in zip(a, b):
        for sx, sy in zip(x.signals, y.signals, strict=True):
            np.testing.assert_array_equal(sx.digital, sy.digital)


@pytest.mark.parametrize("source", [archive(), path()], ids=["zip", "directory"])
def test_iter_records_yields_what_ingest_returns(source):
    result = ecgingest.ingest(source)
    stream = ecgingest.iter_records(source)
    records = list(stream)
    _same_records(records, result.records)
    assert stream.skipped == result.skipped
    assert stream.errors == result.errors


def test_a_single_file_record_comes_before_the_rest_of_the_upload_is_read():
    files = _demo_files()
    edf = files["recordings/test_subsecond.edf"]
    upload = _zip({"a/first.edf": edf, "b/broken.edf": edf[:300], "c/last.edf": edf})
    stream = ecgingest.iter_records(upload)
    first = next(stream)
    assert first.sources == ("a/first.edf",)
    assert stream.errors == []  # the broken entry has not been reached yet
    rest = list(stream)
    assert [r.sources for r in rest] == [("c/last.edf",)]
    assert [e.paths for e in stream.errors] == [("b/broken.edf",)]


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_wfdb_record_comes_when_its_directory_is_complete_where_the_upload_lists_it(kind):
    """A ZIP names its entries up front: the WFDB record of ``w/`` is built once the
    walk has passed ``w/``'s last file, before the EDF of a later directory. A TAR
    names them only as it goes: multi-file records come after the walk."""
    files = _demo_files()
    upload = _archive(kind, {
        "w/100_3chan.dat": files["recordings/100_3chan.dat"],
        "w/100_3chan.hea": files["recordings/100_3chan.hea"],
        "x/ecg.edf": files["recordings/test_subsecond.edf"],
    })
    names = [r.name for r in ecgingest.iter_records(upload)]
    assert names == (["100_3chan", "ecg.edf"] if kind == "zip" else ["ecg.edf", "100_3chan"])


def test_overrides_apply_to_every_yielded_record():
    records = list(ecgingest.iter_records(archive(), overrides={"patient_id": "P-7"}))
    assert records and all(r.metadata.patient_id == "P-7" for r in records)


def test_strict_iteration_raises_for_skipped_entries_at_the_end():
    stream = ecgingest.iter_records(archive(), strict=True)
    with pytest.raises(SkippedEntriesError):
        list(stream)


def test_closing_early_stops_the_walk():
    with ecgingest.iter_records(archive()) as stream:
        first = next(stream)
    assert first.name
    assert list(stream) == []


def test_inspect_upload_gives_the_header_facts_ingest_would():
    records, skipped, errors = inspect_upload(archive())
    result = ecgingest.ingest(archive())
    assert [r.name for r in records] == [r.name for r in result.records]
    assert skipped == result.skipped and errors == result.errors
    for info, record in zip(records, result.records):
        assert info.format == record.format and info.sources == record.sources
        assert [(s.label, s.sample_rate, s.samples, s.units) for s in info.signals] == [
            (s.label, s.sample_rate, len(s), s.units) for s in record.signals]
        assert info.start_time == record.start_time


def test_inspect_upload_reports_progress_after_each_entry():
    seen: list[tuple[int, str]] = []
    inspect_upload(archive(), progress=lambda count, entry: seen.append((count, entry)))
    assert [count for count, _ in seen] == list(range(1, len(seen) + 1))
    assert {entry for _, entry in seen} == set(_demo_files())


def test_inspect_holds_no_signal_file_and_never_extracts_one_again(monkeypatch):
    """Header facts need only headers: inspecting a ZIP keeps no signal file's bytes
    (they are passed over after their first bytes) and reads none a second time."""
    from ecgingest.archive import walker

    files = _demo_files()
    upload = _zip({f"r{i}/100_3chan.{ext}": files[f"recordings/100_3chan.{ext}"]
                   for i in range(5) for ext in ("hea", "dat")})
    passed_over: list[str] = []
    original = walker.Entry.deferred

    def deferred(path, size, head, load):
        passed_over.append(path)
        return original(path, size, head, lambda: pytest.fail(f"{path} read again"))

    monkeypatch.setattr(walker.Entry, "deferred", staticmethod(deferred))
    records, skipped, errors = inspect_upload(upload)
    assert [r.name for r in records] == ["100_3chan"] * 5 and not errors
    assert sorted(passed_over) == [f"r{i}/100_3chan.dat" for i in range(5)]
    assert all(s.samples == 999 for r in records for s in r.signals)


# --------------------------------------------------------------------------- memory

_SAMPLES = 300_000  # two int16 signals: a 1.2 MB signal file, passed over by the walk


def _wfdb_header(record: str, dat: str, seed: int, count: int = _SAMPLES) -> bytes:
    """The header of two signals of ``count`` samples in ``dat`` (as
    :func:`_signal_file` makes it from ``seed``), with their first values and
    checksums."""
    samples = np.frombuffer(_signal_file(seed, count), dtype="<i2").reshape(-1, 2)
    lines = [f"{record} 2 500 {count}"]
    for i, label in enumerate(("I", "II")):
        checksum = (int(samples[:, i].sum()) + 32768) % 65536 - 32768
        lines.append(f"{dat} 16 200 16 0 {samples[0, i]} {checksum} 0 {label}")
    return ("\n".join(lines) + "\n").encode()


def _signal_file(seed: int, count: int = _SAMPLES) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-2000, 2000, size=2 * count, dtype="<i2").tobytes()


def _archive(kind: str, files: dict[str, bytes]) -> bytes:
    if kind == "zip":
        return _zip(files)
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _root(data: object) -> object:
    """The object that owns the memory behind ``data`` (a view's base, to the end)."""
    owner = data.obj if isinstance(data, memoryview) else data
    while getattr(owner, "base", None) is not None:
        owner = owner.base
    return owner


def _track_loaded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Weak references to the memory of every signal file read again from the archive
    (a file the walk passed over), by path; a reference per time it is read."""
    import weakref

    from ecgingest.archive import walker

    loaded: dict[str, list] = {}
    original = walker.Entry.deferred

    def deferred(path, size, head, load):
        def tracked():
            data = load()
            loaded.setdefault(path, []).append(weakref.ref(_root(data)))
            return data
        return original(path, size, head, tracked)

    monkeypatch.setattr(walker.Entry, "deferred", staticmethod(deferred))
    return loaded


def _alive(loaded: dict[str, list]) -> list[str]:
    return sorted(path for path, refs in loaded.items() if any(r() is not None for r in refs))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_signal_file_is_let_go_before_the_record_that_read_it_last_is_handed_out(
        monkeypatch, kind):
    """Three records in one directory: while the caller holds a record, no signal file's
    bytes are alive any more, neither its own nor an earlier record's (the directory's
    later records do not need them), and the record itself keeps none of them."""
    files: dict[str, bytes] = {}
    for i in range(3):
        files[f"d/r{i}.hea"] = _wfdb_header(f"r{i}", f"r{i}.dat", i)
        files[f"d/r{i}.dat"] = _signal_file(i)
    loaded = _track_loaded(monkeypatch)
    names = []
    for record in ecgingest.iter_records(_archive(kind, files)):
        names.append(record.name)
        assert f"d/{record.name}.dat" in loaded  # it was read ...
        assert _alive(loaded) == [], record.name  # ... and let go before it came
        del record
    assert names == ["r0", "r1", "r2"]
    assert all(len(refs) == 1 for refs in loaded.values())  # each read once


def test_a_signal_file_two_records_share_is_read_once_and_let_go_after_the_second():
    files = {
        "d/a.hea": _wfdb_header("a", "shared.dat", 2),
        "d/b.hea": _wfdb_header("b", "own.dat", 1),
        "d/c.hea": _wfdb_header("c", "shared.dat", 2),
        "d/own.dat": _signal_file(1),
        "d/shared.dat": _signal_file(2),
    }
    upload = _zip(files)
    with pytest.MonkeyPatch.context() as patch:
        loaded = _track_loaded(patch)
        alive_at: dict[str, list[str]] = {}
        records = []
        for record in ecgingest.iter_records(upload):
            alive_at[record.name] = _alive(loaded)
            records.append(record)
    # b needs only own.dat, which comes before shared.dat: b is built first, before
    # shared.dat was read; a and c come when the directory is complete
    assert list(alive_at) == ["b", "a", "c"]
    assert alive_at == {"b": [], "a": ["d/shared.dat"], "c": []}
    assert {path: len(refs) for path, refs in loaded.items()} == {
        "d/shared.dat": 1, "d/own.dat": 1}
    _same_records(records, ecgingest.read(upload))


def test_a_wrong_plan_of_file_uses_costs_a_second_read_not_a_record(monkeypatch):
    """Which files the records of a directory read is planned from their headers; a
    plan that misses a use lets a file go too early, and the record that needs it
    reads it again from the archive."""
    from ecgingest.formats._base import GroupOutcome
    from ecgingest.formats.wfdb import WfdbFormat

    files = {
        "d/a.hea": _wfdb_header("a", "shared.dat", 3),
        "d/c.hea": _wfdb_header("c", "shared.dat", 3),
        "d/shared.dat": _signal_file(3),
    }
    upload = _zip(files)
    expected = ecgingest.read(upload)
    inspect_group = WfdbFormat.inspect_group

    def plan_without_files(self, pool, anchors, ctx):
        for outcome in inspect_group(self, pool, anchors, ctx):
            yield GroupOutcome(outcome.anchor, outcome.record, outcome.error, ())

    monkeypatch.setattr(WfdbFormat, "inspect_group", plan_without_files)
    loaded = _track_loaded(monkeypatch)
    records = list(ecgingest.iter_records(upload))
    _same_records(records, expected)
    assert len(loaded["d/shared.dat"]) == 2
