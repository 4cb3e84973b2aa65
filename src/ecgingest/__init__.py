"""ecgingest: ECG uploads (single files or archives of them) into clean records.

>>> import ecgingest
>>> records = ecgingest.read("upload.zip")          # doctest: +SKIP
>>> result = ecgingest.ingest(b"...", strict=False)  # doctest: +SKIP
"""

from __future__ import annotations

from . import errors
from .archive import Limits
from .ingest import EntryError, IngestResult, ingest, read
from .many import ingest_many
from .overrides import Overrides
from .record import Annotation, Metadata, Record, Signal
from .sources import Skipped

__version__ = "0.1.0"

__all__ = [
    "read",
    "ingest",
    "ingest_many",
    "IngestResult",
    "EntryError",
    "Skipped",
    "Record",
    "Signal",
    "Metadata",
    "Annotation",
    "Overrides",
    "Limits",
    "errors",
    "__version__",
]
