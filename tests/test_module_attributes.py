"""The public surface pinned by the API contract stays importable and small."""

import ecgingest


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
