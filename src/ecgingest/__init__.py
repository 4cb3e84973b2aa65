"""ecgingest: ECG uploads (single files or archives of them) into clean records.

>>> import ecgingest
>>> records = ecgingest.read("upload.zip")          # doctest: +SKIP
>>> result = ecgingest.ingest(b"...", strict=False)  # doctest: +SKIP
"""

from __future__ import annotations

from . import errors
from .archive import Limits
from .ingest import EntryError, IngestResult, ingest, read  # first: builds the format registry
from .formats.edf import EdfHeader, read_edf_header  # noqa: E402,I001
from .chunked import ChunkedUpload
from .overrides import Overrides
from .record import Annotation, Metadata, Record, Signal
from .sources import Skipped

__version__ = "0.1.0"

__all__ = [
    "read",
    "ingest",
    "IngestResult",
    "EntryError",
    "Skipped",
    "Record",
    "Signal",
    "Metadata",
    "Annotation",
    "Overrides",
    "Limits",
    "ChunkedUpload",
    "errors",
    "read_edf_header",
    "EdfHeader",
    "__version__",
]
