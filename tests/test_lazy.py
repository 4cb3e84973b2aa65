"""Lazy records (``read(..., lazy=True)``): header facts at once, samples on first access.

A lazy record, once its samples are used, must be the record an eager read gives
(every attribute, every array); before that it must have read no samples. The
eager read is the reference throughout.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import io
import json
import os
import pickle
import shutil
import threading
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ecgingest
import ecgingest.demo
from conftest import corpus_dir, requires_corpus
from ecgingest import _memory
from ecgingest.errors import (
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    SourceUnavailableError,
    WindowError,
)
from ecgingest.formats import multi_file_formats, single_file_formats
from ecgingest.record import LazyRecord, LazySignal, Record
from test_edf_properties import edf_files
from test_edf_writer import write_edf
from test_windows import _windows, wfdb_records

CORPUS = corpus_dir()
CORPUS_RECORDS = ([r for r in json.loads((CORPUS / "records.json").read_text())
                   if r["format"] != "wfdb_ann"] if CORPUS is not None else [])
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


# ----------------------------------------------------------------- comparing records


def _equal(a: object, b: object, where: str) -> None:
    """Deep equality that understands arrays (NaN equal to NaN, dtype included)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping) and list(a) == list(b), where
        for key in a:
            _equal(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


SIGNAL_FIELDS = ("label", "sample_rate", "digital", "scale", "offset", "units",
                 "invalid_value", "invalid_mask", "supplied_physical", "derivation",
                 "first_sample")
RECORD_FIELDS = ("name", "format", "format_detail", "start_time", "metadata", "annotations",
                 "data_record_onsets", "sources", "warnings", "extras")


def assert_same_record(got: Record, want: Record) -> None:
    for name in RECORD_FIELDS:
        _equal(getattr(got, name), getattr(want, name), name)
    assert len(got.signals) == len(want.signals)
    for i, (s, t) in enumerate(zip(got.signals, want.signals)):
        for name in SIGNAL_FIELDS:
            _equal(getattr(s, name), getattr(t, name), f"signals[{i}].{name}")
        assert len(s) == len(t)
        _equal(s.physical, t.physical, f"signals[{i}].physical")
        if t.sample_rate > 0:
            _equal(s.times(), t.times(), f"signals[{i}].times()")
    assert repr(got) == repr(want)
    assert got.summary() == want.summary()


def _header_facts(record: Record) -> list[tuple]:
    return [(s.label, s.sample_rate, len(s), s.units, s.first_sample) for s in record.signals]


def _use(samples: np.ndarray) -> None:
    """Touch samples (the access under test)."""
    assert samples.ndim == 1


def _decoded(record: Record) -> bool:
    """True once a lazy record decoded its samples (a plain record always has)."""
    return not isinstance(record, LazyRecord) or record._load.done


def _quiet_read(source: object, **options: object) -> list[Record]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return ecgingest.read(source, **options)


def _compare_lazy_to_eager(source: object, **options: object) -> None:
    try:
        eager = _quiet_read(source, **options)
    except EcgIngestError as exc:  # what eager reading refuses, a lazy read refuses too
        with pytest.raises(type(exc)):
            for record in _quiet_read(source, lazy=True, **options):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", EcgWarning)
                    record.to_numpy(physical=False) if record.signals else None
        return
    lazy = _quiet_read(source, lazy=True, **options)
    assert len(lazy) == len(eager)
    for got, want in zip(lazy, eager):
        assert _header_facts(got) == _header_facts(want)  # before any sample is read
        assert got.name == want.name and got.start_time == want.start_time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EcgWarning)
            assert_same_record(got, want)


def _truly_lazy_formats() -> set[str]:
    """Formats that read headers without decoding (the others' lazy reads decode)."""
    from ecgingest.formats._base import MultiFileFormat, SingleFileFormat

    names = {f.name for f in single_file_formats()
             if type(f).inspect is not SingleFileFormat.inspect}
    return names | {f.name for f in multi_file_formats()
                    if type(f).inspect_group is not MultiFileFormat.inspect_group}


# ----------------------------------------------------------------- lazy equals eager


@requires_corpus
@pytest.mark.parametrize("entry", CORPUS_RECORDS, ids=[r["path"] for r in CORPUS_RECORDS])
def test_a_lazy_record_once_used_is_the_eager_record(entry):
    _compare_lazy_to_eager(CORPUS / entry["path"])


@requires_corpus
@pytest.mark.parametrize("entry", CORPUS_RECORDS, ids=[r["path"] for r in CORPUS_RECORDS])
def test_a_lazy_record_reads_no_samples_until_asked(entry):
    path = CORPUS / entry["path"]
    try:
        records = _quiet_read(path, lazy=True)
    except EcgIngestError:
        return  # refused from its header (compared with eager above)
    lazy = entry["format"] in _truly_lazy_formats()
    for record in records:
        repr(record), record._repr_html_(), record.duration, record.labels
        assert _decoded(record) is not lazy
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EcgWarning)
            record.signals[0].digital if record.signals else record.annotations
        assert _decoded(record)


@requires_corpus
@pytest.mark.parametrize("entry", CORPUS_RECORDS, ids=[r["path"] for r in CORPUS_RECORDS])
def test_a_lazy_window_of_some_channels_is_the_eager_one(entry):
    path = CORPUS / entry["path"]
    try:
        [whole] = _quiet_read(path)[:1]
    except EcgIngestError:
        return
    if not whole.signals:
        return  # an annotation-only file: no channel or window to ask for
    n = len(whole.signals)
    channels = [n - 1, 0] if n > 1 else [0]
    duration = whole.duration
    _compare_lazy_to_eager(path, channels=channels, start=duration * 0.3,
                           stop=duration * 0.6)
    _compare_lazy_to_eager(path, channels=[whole.labels[-1]])
    rate = max(s.sample_rate for s in whole.signals)
    total = round(duration * rate)
    if total > 3:
        _compare_lazy_to_eager(path, start=1, stop=total - 1, unit="samples")


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _random_part(draw: st.DrawFn, whole: Record) -> dict[str, object]:
    n = len(whole.signals)
    channels = draw(st.one_of(st.none(), st.lists(st.integers(-n, n - 1), min_size=1,
                                                  max_size=n)))
    unit = draw(st.sampled_from(["seconds", "samples"]))
    rates = [s.sample_rate for s in whole.signals if s.sample_rate > 0]
    if not rates or round(whole.duration * max(rates)) < 1:  # no sample: no window
        return {"channels": channels}
    start, stop = _windows(draw, whole, max(rates), unit)
    return {"channels": channels, "start": start, "stop": stop, "unit": unit}


@given(wfdb_records(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_random_parts_of_random_wfdb_records_lazy_are_the_eager_ones(files, data):
    upload = _zip_of(files)
    try:
        [whole] = _quiet_read(upload)
    except EcgIngestError:
        assume(False)  # refused whole: compared in the corpus tests
    _compare_lazy_to_eager(upload, **_random_part(data.draw, whole))


@given(edf_files(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_random_parts_of_random_edf_files_lazy_are_the_eager_ones(spec, data):
    raw = write_edf(spec)
    try:
        [whole] = _quiet_read(raw)
    except EcgIngestError:
        assume(False)
    assume(whole.signals)
    _compare_lazy_to_eager(raw, **_random_part(data.draw, whole))


@pytest.mark.parametrize("source", [ecgingest.demo.path(), ecgingest.demo.archive()],
                         ids=["directory", "zip"])
def test_every_demo_record_lazy_is_the_eager_record(source):
    _compare_lazy_to_eager(source)
    _compare_lazy_to_eager(source, start=0.5, stop=1.5)


@pytest.mark.parametrize("how", ["bytes", "stream", "zip bytes", "zip stream"])
def test_lazy_records_of_bytes_streams_and_archives_outlive_the_upload(how):
    edf = (ecgingest.demo.path() / "test_subsecond.edf").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/one.edf", edf)
        for name in ("100_3chan.hea", "100_3chan.dat"):
            zf.writestr(f"b/{name}", (ecgingest.demo.path() / name).read_bytes())
    data = edf if how.endswith("bytes") and not how.startswith("zip") else buf.getvalue()
    source = data if how.endswith("bytes") else io.BytesIO(data)
    eager = _quiet_read(data)
    with ecgingest.iter_records(source, lazy=True) as stream:
        lazy = list(stream)  # the upload is closed here
    assert not any(_decoded(r) for r in lazy)
    for got, want in zip(lazy, eager, strict=True):
        assert_same_record(got, want)


def test_lazy_wfdb_records_of_an_archive_read_their_files_again_when_deferred():
    """Signal files beyond what an iteration holds are read from the archive again;
    two headers sharing one signal file both decode from it."""
    n, leads = 400_000, 2  # 1.6 MB: more than a bounded walk keeps of an unclaimed file
    samples = np.random.default_rng(2).integers(-900, 900, size=(n, leads), dtype=np.int16)
    header = f"{{}} {leads} 250 {n}\n" + "".join(
        f"big.dat 16 200/mV 16 0 0 0 0 s{i}\n" for i in range(leads))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("r/big.dat", samples.tobytes())
        zf.writestr("r/big.hea", header.format("big"))
        zf.writestr("r/same.hea", header.format("same"))
    with ecgingest.iter_records(io.BytesIO(buf.getvalue()), lazy=True) as stream:
        lazy = list(stream)
    assert [r.name for r in lazy] == ["big", "same"] and not any(_decoded(r) for r in lazy)
    for record in lazy:
        np.testing.assert_array_equal(record.to_numpy(physical=False), samples.T)


def test_a_format_without_a_header_only_read_decodes_at_once():
    path = next((FIXTURES / "kardia").glob("*.json"))
    [lazy] = _quiet_read(path, lazy=True)
    [eager] = _quiet_read(path)
    assert type(lazy) is Record  # kardia's inspect is a decode: nothing to defer
    assert_same_record(lazy, eager)


# ----------------------------------------------------------------- the source on disk


def _copy_demo_wfdb(tmp_path: Path) -> Path:
    for name in ("100_3chan.hea", "100_3chan.dat"):
        shutil.copy(ecgingest.demo.path() / name, tmp_path / name)
    return tmp_path / "100_3chan.hea"


def test_a_signal_file_changed_after_a_lazy_read_is_an_error(tmp_path):
    header = _copy_demo_wfdb(tmp_path)
    [record] = ecgingest.read(header, lazy=True)
    dat = tmp_path / "100_3chan.dat"
    data = bytearray(dat.read_bytes())
    data[100:110] = bytes(10)  # same size, other samples
    dat.write_bytes(bytes(data))
    os.utime(dat, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(SourceUnavailableError, match="changed since its header was read"):
        _use(record.signals[0].digital)
    with pytest.raises(SourceUnavailableError):  # and on every later access
        record.to_numpy()


def test_a_single_file_replaced_after_a_lazy_read_is_an_error(tmp_path):
    edf = tmp_path / "r.edf"
    shutil.copy(ecgingest.demo.path() / "test_subsecond.edf", edf)
    [record] = ecgingest.read(tmp_path, lazy=True)  # a directory upload
    replacement = tmp_path / "other.edf"
    replacement.write_bytes(edf.read_bytes()[:-100])
    os.replace(replacement, edf)
    with pytest.raises(SourceUnavailableError) as caught:
        _use(record.signals[0].physical)
    assert caught.value.path == "r.edf"


def test_a_file_removed_after_a_lazy_read_is_an_error(tmp_path):
    header = _copy_demo_wfdb(tmp_path)
    [record] = ecgingest.read(header, lazy=True)
    (tmp_path / "100_3chan.dat").unlink()
    with pytest.raises(SourceUnavailableError, match="gone"):
        _use(record.signals[1].digital)


def test_other_files_of_the_directory_may_change_after_a_lazy_read(tmp_path):
    header = _copy_demo_wfdb(tmp_path)
    (tmp_path / "notes.txt").write_text("before")
    [record] = ecgingest.read(header, lazy=True)
    (tmp_path / "notes.txt").write_text("after, and longer")  # not a file of the record
    (tmp_path / "200.hea").write_text("200 1 360 10\n200.dat 16 200 16 0 0 0 0 x\n")
    [eager] = ecgingest.read(header)
    assert_same_record(record, eager)


# ----------------------------------------------------------------- errors at access


def _damaged_compressed_delta() -> bytes:
    good = ecgingest.encode_compressed_delta(np.arange(400).reshape(2, 200),
                                             sample_rate=100.0, compression="ZLIB")
    return good[:40] + bytes(len(good) - 40)


def test_a_damaged_sample_section_behind_a_good_header_raises_at_access():
    bad = _damaged_compressed_delta()
    result = ecgingest.ingest(bad)
    assert not result.records and isinstance(result.errors[0].error, CorruptDataError)
    [record] = ecgingest.read(bad, lazy=True)  # the header is fine
    assert _header_facts(record) == [("ch1", 100.0, 200, "", 0), ("ch2", 100.0, 200, "", 0)]
    with pytest.raises(CorruptDataError) as first:
        _use(record.signals[0].digital)
    with pytest.raises(CorruptDataError) as again:  # the same error, not a second decode
        record.to_numpy()
    assert again.value is first.value
    assert type(first.value) is type(result.errors[0].error)
    assert str(first.value) == str(result.errors[0].error)


def test_a_strict_lazy_read_raises_what_only_the_samples_show_at_access(tmp_path):
    header = _copy_demo_wfdb(tmp_path)
    dat = tmp_path / "100_3chan.dat"
    data = bytearray(dat.read_bytes())
    data[30] ^= 0x55  # the samples no longer match the header's checksums
    dat.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as eager:
        ecgingest.read(header, strict=True)
    [record] = ecgingest.read(header, strict=True, lazy=True)
    with pytest.raises(ChecksumError) as lazy:
        record.to_numpy()
    assert str(lazy.value) == str(eager.value)


def test_a_bad_window_is_refused_by_the_lazy_read_itself():
    header = ecgingest.demo.path() / "100_3chan.hea"
    with pytest.raises(WindowError, match="past the end") as lazy:
        ecgingest.read(header, start=2, stop=5, lazy=True)
    with pytest.raises(WindowError) as eager:
        ecgingest.read(header, start=2, stop=5)
    assert str(lazy.value) == str(eager.value)
    with pytest.raises(WindowError, match="no channel 'V9'"):
        ecgingest.read(header, channels=["V9"], lazy=True)


def test_warnings_only_the_samples_show_join_the_record_at_access():
    header = ecgingest.demo.path() / "100_3chan.hea"
    skewed = header.read_text().replace("0 0 I", "0 0 I").splitlines()
    # a skew on the last signal leaves its last samples without data
    skewed[3] = skewed[3].replace("212", "212:3", 1) if "212" in skewed[3] else skewed[3]
    files = {name: (ecgingest.demo.path() / name).read_bytes()
             for name in ("100_3chan.hea", "100_3chan.dat")}
    files["100_3chan.hea"] = ("\n".join(skewed) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    [eager] = _quiet_read(buf.getvalue())
    assert any("skew" in w for w in eager.warnings)
    [record] = _quiet_read(buf.getvalue(), lazy=True)
    assert not any("skew" in w for w in record.warnings)
    with pytest.warns(EcgWarning, match="skew") as caught:
        _use(record.signals[0].digital)
    assert len(caught) == 1 and caught[0].filename == __file__
    assert record.warnings == eager.warnings


# ----------------------------------------------------------------- one decode, any thread


def test_threads_using_one_lazy_record_decode_it_once(monkeypatch):
    from ecgingest.formats import wfdb

    calls = []
    read_group = type(wfdb.FORMAT).read_group

    def counted(self, pool, anchors, ctx):
        calls.append(threading.get_ident())
        time.sleep(0.05)  # every thread is waiting by the time it is done
        yield from read_group(self, pool, anchors, ctx)

    monkeypatch.setattr(type(wfdb.FORMAT), "read_group", counted)
    [record] = ecgingest.read(ecgingest.demo.path() / "100_3chan.hea", lazy=True)
    assert calls == []
    start = threading.Barrier(8)
    seen: list[np.ndarray] = []

    def use(i: int) -> None:
        start.wait()
        seen.append(record.signals[i % 3].digital if i % 2 else record.to_numpy()[i % 3])

    threads = [threading.Thread(target=use, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(seen) == 8
    assert record.signals[0].digital is record.signals[0].digital


# ----------------------------------------------------------------- memory


def test_a_lazy_read_of_a_large_record_allocates_no_samples_until_access(tmp_path):
    n, leads = 1_000_000, 8
    samples = np.random.default_rng(1).integers(-2000, 2000, size=(n, leads), dtype=np.int16)
    (tmp_path / "big.dat").write_bytes(samples.tobytes())
    lines = [f"big {leads} 500 {n}"] + [f"big.dat 16 200/mV 16 0 0 0 0 s{i}"
                                         for i in range(leads)]
    (tmp_path / "big.hea").write_text("\n".join(lines) + "\n")
    sample_bytes = samples.nbytes  # 16 MB
    # A block pooled by an earlier read would serve the samples without a new
    # allocation, which tracemalloc does not see: start with an empty pool.
    gc.collect()
    previous_limit = _memory.set_array_pool_limit(0)
    _memory.set_array_pool_limit(previous_limit)
    tracemalloc.start()
    try:
        [record] = ecgingest.read(tmp_path / "big.hea", lazy=True)
        _, lazy_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _use(record.signals[0].digital)
        _, access_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lazy_peak < sample_bytes // 50
    assert access_peak >= sample_bytes
    np.testing.assert_array_equal(record.to_numpy(physical=False), samples.T)


def test_a_lazy_window_decodes_and_converts_only_the_window(tmp_path):
    header = _copy_demo_wfdb(tmp_path)
    [part] = ecgingest.read(header, start=1.0, stop=1.5, lazy=True)
    assert part.window == (1.0, 1.5) and not _decoded(part)
    assert [len(s) for s in part.signals] == [180, 180, 180]
    assert part.signals[0].physical.shape == (180,)
    assert part.signals[0].first_sample == 360


# ----------------------------------------------------------------- what a record does


def test_overrides_apply_to_a_lazy_record_and_survive_its_decode():
    header = ecgingest.demo.path() / "100_3chan.hea"
    [record] = ecgingest.read(header, lazy=True, overrides={"patient_id": "P-7"})
    assert not _decoded(record) and record.metadata.patient_id == "P-7"
    renamed = record.replace(name="x", sources=("elsewhere",))
    assert type(renamed) is LazyRecord and renamed.name == "x" and not _decoded(record)
    record.to_numpy()
    assert record.metadata.patient_id == "P-7" and _decoded(renamed)  # one decode, shared
    two = record.replace(signals=record.signals[:2])  # not a header fact: the decoded record
    assert type(two) is Record and two.labels == ["I", "II"]
    assert two.metadata.patient_id == "P-7"


def test_pickle_and_copy_give_the_decoded_record():
    [record] = ecgingest.read(ecgingest.demo.path() / "test_subsecond.edf", lazy=True)
    [eager] = ecgingest.read(ecgingest.demo.path() / "test_subsecond.edf")
    again = pickle.loads(pickle.dumps(record))
    assert type(again) is Record
    assert_same_record(again, eager)
    assert type(copy.copy(record)) is Record and type(copy.deepcopy(record)) is Record
    signal = pickle.loads(pickle.dumps(record.signals[0]))
    assert type(signal) is ecgingest.Signal and signal.label == eager.signals[0].label


def test_summary_before_access_is_the_eager_summary_without_decoding():
    path = ecgingest.demo.path() / "test_subsecond.edf"
    [record] = ecgingest.read(path, lazy=True)
    [eager] = ecgingest.read(path)
    assert record.summary() == eager.summary()
    assert not _decoded(record)
    assert "samples not read yet" in repr(record)


def test_writers_take_a_lazy_record(tmp_path):
    [record] = ecgingest.read(ecgingest.demo.path() / "100_3chan.hea", lazy=True)
    written = record.to_wfdb(tmp_path, name="copy")
    [back] = ecgingest.read(written)
    np.testing.assert_array_equal(back.to_numpy(physical=False),
                                  record.to_numpy(physical=False))
    assert all(isinstance(s, LazySignal) for s in record.signals)


def test_lazy_is_keyword_only_and_off_by_default():
    [record] = ecgingest.read(ecgingest.demo.path() / "100_3chan.hea")
    assert type(record) is Record
    with pytest.raises(TypeError):
        ecgingest.read(ecgingest.demo.path() / "100_3chan.hea", None, False, None, None,
                       None, None, "seconds", True)
