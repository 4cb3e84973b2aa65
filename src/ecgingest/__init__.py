"""ecgingest: ECG uploads (single files or archives of them) into clean records.

>>> import ecgingest
>>> records = ecgingest.read("upload.zip")          # doctest: +SKIP
>>> result = ecgingest.ingest(b"...", strict=False)  # doctest: +SKIP
"""

from __future__ import annotations

from . import errors
from ._ext.scale import array_pool_bytes, set_array_pool_limit
from .chunked import ChunkedUpload
from .formats.cdelta import encode_compressed_delta
from .formats.edf import EdfHeader, read_edf_header
from .formats.wfdb import WfdbHeader, read_wfdb_header
from .ingest import EntryError, IngestResult, RecordIterator, ingest, iter_records, read
from .limits import Limits
from .many import ingest_many
from .overrides import Overrides
from .record import Annotation, Metadata, Record, Signal
from .sources import Skipped
from .stream import Stream

__version__ = "0.1.0"

__all__ = [
    "read",
    "ingest",
    "ingest_many",
    "iter_records",
    "RecordIterator",
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
    "Stream",
    "encode_compressed_delta",
    "read_wfdb_header",
    "WfdbHeader",
    "read_edf_header",
    "EdfHeader",
    "set_array_pool_limit",
    "array_pool_bytes",
    "errors",
    "__version__",
]
