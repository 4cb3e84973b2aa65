"""WFDB records: text header plus signal files from a pool of entries."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..errors import EcgIngestError, UnsupportedFeatureError
from ..record import Record
from ..sources import Entry

__all__ = ["is_header_name", "looks_like_header", "read_pool", "PoolOutcome"]

_RECORD_LINE = re.compile(rb"^\s*[^\s#/]+(/\d+)?\s+\d+(\s|$)")


def is_header_name(name: str) -> bool:
    return name.lower().endswith(".hea")


def looks_like_header(entry: Entry) -> bool:
    """True when the entry reads as a WFDB header (for the 'header alone' error)."""
    if is_header_name(entry.name):
        return True
    for line in entry.head(4096).splitlines():
        if line.strip() and not line.lstrip().startswith(b"#"):
            return bool(_RECORD_LINE.match(line))
    return False


def unused_reason(name: str) -> str:
    return "WFDB header not used"


@dataclass(frozen=True)
class PoolOutcome:
    """One WFDB record decoded from a pool: the record or its error, and the files used."""

    header: str
    record: Record | None
    error: EcgIngestError | None
    files: tuple[str, ...]


def read_pool(pool: Mapping[str, Entry], headers: Sequence[str], *,
              strict: bool = False) -> Iterator[PoolOutcome]:
    for header in headers:
        yield PoolOutcome(header, None, UnsupportedFeatureError("WFDB decoding is not built yet"),
                          (header,))
