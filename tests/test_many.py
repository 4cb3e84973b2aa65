"""ingest_many: same results sequentially, in threads and on Dask; bounded; nothing lost."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import tarfile
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import ecgingest
from conftest import corpus_dir
from ecgingest.errors import OverrideError, UnsupportedFormatError
from ecgingest.many import _ingest_one, uploads_below

DEMO = Path(ecgingest.__file__).parent / "demo" / "data"


def _fingerprint(result: ecgingest.IngestResult) -> dict:
    """Everything a caller sees of one upload, with samples hashed."""
    return {
        "records": [
            (r.name, r.format, r.format_detail, r.sources,
             [(s.label, s.sample_rate, hashlib.sha256(s.digital.tobytes()).hexdigest())
              for s in r.signals])
            for r in result.records
        ],
        "skipped": [(s.path, s.reason) for s in result.skipped],
        "errors": [(e.paths, type(e.error).__name__) for e in result.errors],
    }


def _tree(tmp_path: Path) -> Path:
    """A directory of uploads: single files, a WFDB pool, nested folders, junk."""
    root = tmp_path / "uploads"
    shutil.copytree(DEMO, root / "visit1")
    shutil.copytree(DEMO, root / "visit2" / "deeper")
    (root / "junk.bin").write_bytes(b"\x00not an ecg" * 10)
    _zip_of(DEMO, root / "archives" / "visit3.zip")
    with tarfile.open(root / "archives" / "visit4.tar.gz", "w:gz") as tar:
        tar.add(DEMO, arcname="visit4")
    return root


def _zip_of(folder: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, f"{target.stem}/{file.name}")
    return target


def _sources(tmp_path: Path) -> list:
    root = _tree(tmp_path)
    sources: list = list(uploads_below(root))
    sources.append((DEMO / "test_subsecond.edf").read_bytes())
    sources.append(b"definitely not an ECG")
    corpus = corpus_dir()
    if corpus is not None:
        sources.extend(uploads_below(corpus / "wfdb"))
        sources.extend(uploads_below(corpus / "scp"))
        sources.append(_zip_of(corpus / "wfdb" / "multiseg_041s",
                               tmp_path / "corpus-archives" / "041s.zip"))
    return sources


def _sequential(sources: list) -> list[dict]:
    """One upload after the other in this thread (the batch's per-upload contract)."""
    return [_fingerprint(_ingest_one(source, None, False, None)) for source in sources]


def test_directory_expands_to_uploads_in_sorted_order(tmp_path):
    root = _tree(tmp_path)
    uploads = list(uploads_below(root))
    labels = [str(u) for u in uploads]
    assert labels == sorted(labels, key=lambda s: s.replace(os.sep + " (", "~"))
    groups = [u for u in uploads if isinstance(u, ecgingest.sources.FileGroup)]
    assert {g.directory.name for g in groups} == {"visit1", "deeper"}
    for group in groups:
        assert "100_3chan.hea" in group.names and "100_3chan.dat" in group.names


def test_threads_give_the_sequential_results_in_order(tmp_path):
    sources = _sources(tmp_path)
    expected = _sequential(sources)
    got = list(ecgingest.ingest_many(sources, workers=2, ordered=True, progress=False))
    assert [s for s, _ in got] == sources
    assert [_fingerprint(r) for _, r in got] == expected


def test_unordered_results_are_each_upload_exactly_once(tmp_path):
    sources = _sources(tmp_path)
    expected = _sequential(sources)
    got = list(ecgingest.ingest_many(sources, workers=2, progress=False))
    assert len(got) == len(sources)
    assert len(got) == len(sources)
    assert sorted(json.dumps(_fingerprint(r), sort_keys=True) for _, r in got) == sorted(
        json.dumps(fp, sort_keys=True) for fp in expected)


def test_failed_upload_is_reported_not_raised():
    [(source, result)] = ecgingest.ingest_many([b"not an ecg"], workers=1, progress=False)
    assert source == b"not an ecg"
    assert not result.records
    assert isinstance(result.errors[0].error, UnsupportedFormatError)


def test_missing_path_is_reported_as_unavailable(tmp_path):
    [(_, result)] = ecgingest.ingest_many([tmp_path / "gone.zip"], progress=False)
    assert type(result.errors[0].error).__name__ == "SourceUnavailableError"


def test_invalid_overrides_fail_before_any_upload_is_read():
    pulled = []

    def sources():
        pulled.append(1)
        yield b"x"

    with pytest.raises(OverrideError):
        list(ecgingest.ingest_many(sources(), overrides={"patient_gender": "?"}))
    assert not pulled


@pytest.mark.parametrize("ordered", [False, True])
def test_uploads_in_flight_are_bounded(ordered):
    """Memory is bounded by the in-flight window, not by the number of sources."""
    state = {"pulled": 0, "yielded": 0, "worst": 0}
    upload = (DEMO / "test_subsecond.edf").read_bytes()

    def sources():
        for _ in range(40):
            state["pulled"] += 1
            state["worst"] = max(state["worst"], state["pulled"] - state["yielded"])
            yield upload

    for _ in ecgingest.ingest_many(sources(), workers=2, max_in_flight=3, ordered=ordered,
                                   progress=False):
        state["yielded"] += 1
    assert state["yielded"] == 40
    assert state["worst"] <= 3


def test_peak_memory_is_bounded_by_the_in_flight_window():
    """Large uploads, pulled lazily: the traced peak stays within the bound of batch.md."""
    import numpy as np

    samples = np.arange(4 * 1_000_000, dtype=np.int32).reshape(4, -1) % 4000 - 2000
    upload = ecgingest.encode_compressed_delta(samples, sample_rate=500.0, bits_per_sample=16,
                                               coding="TWOS_COMPLEMENT", compression="NONE")
    decoded = samples.size * 2  # int16 digital arrays of one record
    per_upload = len(upload) + decoded

    def sources():
        for _ in range(30):
            yield bytes(upload)  # a fresh copy each time, as a real source would be

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = 0
        for _, result in ecgingest.ingest_many(sources(), workers=2, max_in_flight=2,
                                               progress=False):
            assert result.records and not result.errors
            count += 1
            del result
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30
    # the window (2) plus the one being handed out and the one being pulled
    assert peak < 4 * per_upload, (peak, per_upload)


def test_file_objects_are_read_as_uploads():
    data = (DEMO / "test_subsecond.edf").read_bytes()
    [(_, from_stream)] = ecgingest.ingest_many([io.BytesIO(data)], progress=False)
    [(_, from_bytes)] = ecgingest.ingest_many([data], progress=False)
    assert _fingerprint(from_stream)["records"] == _fingerprint(from_bytes)["records"]
    assert ([type(e.error) for e in from_stream.errors]
            == [type(e.error) for e in from_bytes.errors])


def test_cli_ingest_many_prints_a_summary_and_fails_on_errors(tmp_path, capsys):
    from ecgingest.cli import main

    root = _tree(tmp_path)
    status = main(["ingest-many", str(root), "--workers", "2", "--json", "--no-progress"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]["summary"]
    assert summary["uploads"] == len(lines) - 1 == len(list(uploads_below(root)))
    assert summary["records"] == sum(len(line["records"]) for line in lines[:-1])
    assert status == (1 if summary["failed_uploads"] else 0)


# --- Dask -----------------------------------------------------------------

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def thread_cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def process_cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def test_dask_in_process_matches_sequential(tmp_path, thread_cluster):
    sources = _sources(tmp_path)
    got = list(ecgingest.ingest_many(sources, client=thread_cluster, ordered=True,
                                     progress=False))
    assert [_fingerprint(r) for _, r in got] == _sequential(sources)


def test_dask_processes_match_sequential(tmp_path, process_cluster):
    sources = _sources(tmp_path)
    got = list(ecgingest.ingest_many(sources, client=process_cluster, progress=False))
    index = {id(s): i for i, s in enumerate(sources)}
    expected = _sequential(sources)
    assert sorted(index[id(s)] for s, _ in got) == list(range(len(sources)))
    for source, result in got:
        assert _fingerprint(result) == expected[index[id(source)]]


def test_dask_worker_killed_mid_run_loses_no_upload(tmp_path):
    from distributed import Client, LocalCluster

    sources = _sources(tmp_path) * 3
    expected = _sequential(sources)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        got = []
        for pair in ecgingest.ingest_many(sources, client=client, max_in_flight=6,
                                          progress=False):
            got.append(pair)
            if len(got) == 2:
                victim = next(iter(client.scheduler_info()["workers"]))
                pid = client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
    assert len(got) == len(sources)
    assert sorted(json.dumps(_fingerprint(r), sort_keys=True) for _, r in got) == sorted(
        json.dumps(fp, sort_keys=True) for fp in expected)


def test_url_sources_are_opened_with_fsspec():
    fsspec = pytest.importorskip("fsspec")
    data = (DEMO / "test_subsecond.edf").read_bytes()
    with fsspec.open("memory://ecgingest-test/upload.edf", "wb") as fh:
        fh.write(data)
    [(source, result)] = ecgingest.ingest_many(["memory://ecgingest-test/upload.edf"],
                                               progress=False)
    assert source == "memory://ecgingest-test/upload.edf"
    got, want = (_fingerprint(r)["records"] for r in (result, ecgingest.ingest(data)))
    assert [r[1:3] + r[4:] for r in got] == [r[1:3] + r[4:] for r in want]
    assert [r.name for r in result.records] == ["upload.edf"]  # named after the URL
    assert result.records and not result.errors


@pytest.mark.parametrize("failure", [RuntimeError("decoder bug"), RecursionError("too deep"),
                                     MemoryError()])
def test_an_untyped_failure_in_one_upload_is_its_error_and_the_batch_goes_on(
        tmp_path, monkeypatch, failure):
    """Whatever escapes a decoder (here the multi-file one, which runs unguarded by
    the single-file wrapper) ends as that upload's error; every other upload is
    reported as before."""
    from ecgingest.formats import wfdb as wfdb_format

    good = (DEMO / "test_subsecond.edf").read_bytes()
    victim = tmp_path / "victim"
    shutil.copytree(DEMO, victim)
    real_read_group = wfdb_format.WfdbFormat.read_group

    def read_group(self, pool, names, ctx):
        if any(entry.path.startswith("100_3chan") for entry in pool.values()) \
                and ctx.path is None and threading.current_thread().name.startswith("ecgingest"):
            raise failure
        return real_read_group(self, pool, names, ctx)

    monkeypatch.setattr(wfdb_format.WfdbFormat, "read_group", read_group)
    sources = [good, victim / "100_3chan.hea", good, good]
    got = list(ecgingest.ingest_many(sources, workers=2, ordered=True, progress=False))
    assert [source is s for (source, _), s in zip(got, sources)] == [True] * 4
    results = [result for _, result in got]
    assert [len(r.records) for r in results] == [1, 0, 1, 1]
    [entry_error] = results[1].errors
    assert isinstance(entry_error.error, ecgingest.errors.EcgIngestError)
    assert type(failure).__name__ in str(entry_error.error)
    assert entry_error.paths == (str(victim / "100_3chan.hea"),)
