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


def _same_records(a: list[ecgingest.Record], b: list[ecgingest.Record]) -> None:
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


def test_multi_file_records_come_after_the_walk_in_header_order():
    files = _demo_files()
    upload = _zip({
        "w/100_3chan.dat": files["recordings/100_3chan.dat"],
        "w/100_3chan.hea": files["recordings/100_3chan.hea"],
        "x/ecg.edf": files["recordings/test_subsecond.edf"],
    })
    names = [r.name for r in ecgingest.iter_records(upload)]
    assert names == ["ecg.edf", "100_3chan"]


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
