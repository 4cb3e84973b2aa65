"""ecgingest: ECG uploads (single files or archives of them) into clean records.

>>> import ecgingest
>>> records = ecgingest.read("upload.zip")          # doctest: +SKIP
>>> result = ecgingest.ingest(b"...", strict=False)  # doctest: +SKIP
"""

from __future__ import annotations

from . import errors
from .chunked import ChunkedUpload
from .formats.cdelta import encode_compressed_delta
from .formats.edf import EdfHeader, read_edf_header
from .formats.wfdb import WfdbHeader, read_wfdb_header
from .formats.wfdb.annotations import WfdbAnnotations, read_annotations
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
    "read_annotations",
    "WfdbAnnotations",
    "read_edf_header",
    "EdfHeader",
    "errors",
    "__version__",
]


_MOVED_TO_MEMORY = ("set_array_pool_limit", "array_pool_bytes")


def __getattr__(name: str) -> object:
    """The array pool controls, kept importable from here with a warning."""
    if name in _MOVED_TO_MEMORY:
        import warnings

        from . import _memory

        warnings.warn(f"ecgingest.{name} is deprecated and leaves the public API; the array "
                      f"pool sizes itself (set ECGINGEST_ARRAY_POOL to cap it)",
                      DeprecationWarning, stacklevel=2)
        return getattr(_memory, name)
    raise AttributeError(f"module 'ecgingest' has no attribute {name!r}")
