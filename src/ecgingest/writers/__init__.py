"""Writing records back out: WFDB (header + signal file) and EDF+/BDF+.

Both writers are native (no third-party package) and keep what the record
holds: the stored integers, their scaling, labels, start time and (EDF)
annotations, so that reading a written file gives the record back. What a
format cannot hold raises :class:`UnrepresentableError`, saying why.
"""

from __future__ import annotations

from ._common import UnrepresentableError
from .edf import write_edf
from .wfdb import write_wfdb

__all__ = ["UnrepresentableError", "write_wfdb", "write_edf"]
