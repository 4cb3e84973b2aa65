"""Uploads named by URL: read through fsspec like a file object, named after the URL."""

from __future__ import annotations

import pytest

import ecgingest
from ecgingest.demo import archive, path
from ecgingest.errors import SourceUnavailableError

pytest.importorskip("fsspec", reason="URLs are read through fsspec")


def test_a_file_url_reads_like_the_path_it_names():
    edf = path() / "test_subsecond.edf"
    [by_url] = ecgingest.read(edf.as_uri())
    [by_path] = ecgingest.read(edf)
    assert by_url.name == "test_subsecond.edf"
    assert by_url.signals[0].digital.tolist() == by_path.signals[0].digital.tolist()


def test_an_archive_url_is_walked_like_the_archive():
    by_url = ecgingest.ingest(archive().as_uri())
    by_path = ecgingest.ingest(archive())
    assert [r.name for r in by_url.records] == [r.name for r in by_path.records]
    assert [s.path for s in by_url.skipped] == [s.path for s in by_path.skipped]


def test_a_url_that_cannot_be_opened_is_a_typed_error(tmp_path):
    with pytest.raises(SourceUnavailableError):
        ecgingest.read((tmp_path / "missing.zip").as_uri())
