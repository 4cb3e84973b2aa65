"""Content sniffing for single-file formats, in the contract's priority order.

The first format whose ``sniff`` accepts an entry wins (INGESTION.md §2);
entries nothing claims go to the multi-file (WFDB) matcher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from .record import Record
from .sources import Entry

__all__ = ["SingleFileFormat", "single_file_formats", "detect"]


@dataclass(frozen=True)
class SingleFileFormat:
    """How the pipeline finds and decodes one single-file format.

    ``sniff`` must be cheap (``entry.head()`` and ``entry.size``) and never
    raise; ``decode(data, name=, path=, strict=)`` returns a record or raises
    an :class:`ecgingest.errors.EcgIngestError`.
    """

    name: str
    sniff: Callable[[Entry], bool]
    decode: Callable[..., Record]
    #: map a file on disk with all its pages up front (see ``Entry.view``)
    prefault: bool = True


@cache
def single_file_formats() -> tuple[SingleFileFormat, ...]:
    """Registered formats, highest priority first (INGESTION.md §2).

    Built on first use so that format modules may import this one.
    """
    from .formats import cdelta, edf, kardia, scp

    return (edf.FORMAT, scp.FORMAT, cdelta.FORMAT, kardia.FORMAT)


def detect(entry: Entry) -> SingleFileFormat | None:
    for fmt in single_file_formats():
        if fmt.sniff(entry):
            return fmt
    return None
