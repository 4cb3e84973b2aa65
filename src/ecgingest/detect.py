"""Content sniffing for single-file formats, in the contract's priority order.

The first format whose ``sniff`` accepts an entry wins (INGESTION.md §2);
entries nothing claims go to the multi-file (WFDB) matcher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def single_file_formats() -> tuple[SingleFileFormat, ...]:
    """Registered formats, highest priority first."""
    return _REGISTRY


def detect(entry: Entry) -> SingleFileFormat | None:
    for fmt in _REGISTRY:
        if fmt.sniff(entry):
            return fmt
    return None


def _registry() -> tuple[SingleFileFormat, ...]:
    from .formats import edf as _edf

    formats: list[SingleFileFormat] = []
    # Priority order of INGESTION.md §2; each format module exports FORMAT.
    formats.append(_edf.FORMAT)
    from .formats import scp

    formats.append(scp.FORMAT)
    return tuple(formats)


_REGISTRY = _registry()
