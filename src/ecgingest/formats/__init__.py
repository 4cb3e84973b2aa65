"""The format registry: every format ecgingest reads, in detection order.

Single-file formats are tried in this order on each file's first bytes (the
first that claims it wins, INGESTION.md §2); multi-file formats then group
the files nobody claimed, per directory. Adding a format is one line here.
"""

from __future__ import annotations

from ._base import Format, MultiFileFormat, SingleFileFormat
from .cdelta import FORMAT as _cdelta
from .dicom import FORMAT as _dicom
from .edf import FORMAT as _edf
from .hl7aecg import FORMAT as _hl7aecg
from .ishne import FORMAT as _ishne
from .kardia import FORMAT as _kardia
from .mfer import FORMAT as _mfer
from .muse import FORMAT as _muse
from .philips import FORMAT as _philips
from .scp import FORMAT as _scp
from .wfdb import FORMAT as _wfdb

__all__ = ["FORMATS", "single_file_formats", "multi_file_formats"]

FORMATS: tuple[Format, ...] = (
    _edf,
    _scp,
    _cdelta,
    _kardia,
    _dicom,
    _ishne,
    _muse,
    _hl7aecg,
    _philips,
    _mfer,  # last of the single-file formats: a file without its preamble is told by its items
    _wfdb,
)


def single_file_formats() -> tuple[SingleFileFormat, ...]:
    """Registered single-file formats, highest detection priority first."""
    return tuple(f for f in FORMATS if isinstance(f, SingleFileFormat))


def multi_file_formats() -> tuple[MultiFileFormat, ...]:
    """Registered multi-file formats, in registry order."""
    return tuple(f for f in FORMATS if isinstance(f, MultiFileFormat))
