"""The public surface pinned by the API contract stays importable and small."""

import ecgingest

PINNED_AND_DOCUMENTED = [
    # spec/API.md (pinned)
    "read", "ingest", "Record", "Signal", "Limits", "Overrides",
    # documented additions
    "ingest_many", "ChunkedUpload", "read_wfdb_header", "WfdbHeader", "read_edf_header",
    "EdfHeader", "Annotation", "Metadata", "Stream", "encode_compressed_delta", "errors",
    "__version__", "EntryError", "IngestResult", "Skipped", "iter_records", "RecordIterator",
    "read_annotations", "WfdbAnnotations",
]


def test_all_is_exactly_the_pinned_api_and_its_documented_additions():
    assert sorted(ecgingest.__all__) == sorted(PINNED_AND_DOCUMENTED)
    assert len(ecgingest.__all__) == len(set(ecgingest.__all__))


def test_memory_controls_are_not_public():
    assert "set_array_pool_limit" not in ecgingest.__all__
    assert "array_pool_bytes" not in ecgingest.__all__


def test_public_names_match_all():
    assert sorted(ecgingest.__all__) == sorted(
        name for name in ecgingest.__all__ if hasattr(ecgingest, name))


def test_pinned_api_names_exist():
    for name in ("read", "ingest", "IngestResult", "Record", "Signal", "Metadata",
                 "Annotation", "errors", "Limits", "Overrides", "Skipped", "EntryError"):
        assert hasattr(ecgingest, name), name


def test_error_root_is_pinned():
    assert issubclass(ecgingest.errors.FormatError, ecgingest.errors.EcgIngestError)
    assert issubclass(ecgingest.errors.FormatError, ValueError)
    assert issubclass(ecgingest.errors.UnsupportedFormatError, ecgingest.errors.EcgIngestError)
