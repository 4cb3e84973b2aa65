"""WFDB records: a text header plus the signal files it names, from one directory.

- :mod:`.header`: header parsing (``parse_header``, ``read_wfdb_header``);
- :mod:`.signals`: signal files (packed formats natively, FLAC via ``soundfile``);
- :mod:`.multisegment`: fixed and variable layouts;
- :mod:`.pool`: the records of a directory (which header consumes which);
- :mod:`.annotations`: annotation files (``100.atr``), alone or with their record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from .._base import DecodeContext, GroupOutcome, MultiFileFormat, PoolFile, Probe
from .annotations import KNOWN_ANNOTATORS, looks_like_annotations
from .header import (
    WfdbHeader,
    WfdbSegmentSpec,
    WfdbSignalSpec,
    is_header_name,
    looks_like_header,
    parse_header,
    read_wfdb_header,
)
from .pool import inspect_pool, read_pool

__all__ = [
    "FORMAT",
    "WfdbFormat",
    "GroupOutcome",
    "is_header_name",
    "looks_like_header",
    "read_pool",
    "inspect_pool",
    "WfdbHeader",
    "WfdbSignalSpec",
    "WfdbSegmentSpec",
    "parse_header",
    "read_wfdb_header",
]


_SMALL = 4096
"""Files up to this size with an unknown extension are read to tell whether they are
annotation files (for the skip reason only: larger ones are not read for it)."""


class WfdbFormat(MultiFileFormat):
    """WFDB records: a ``.hea`` header and the signal files it names, in one directory."""

    name = "wfdb"
    windows = True  # single-segment records read only the frames and groups asked for

    def is_anchor(self, name: str) -> bool:
        return is_header_name(name)

    def sniff_anchor(self, probe: Probe) -> bool:
        return looks_like_header(probe)

    def read_group(self, pool: Mapping[str, PoolFile], anchors: Sequence[str],
                   ctx: DecodeContext) -> Iterator[GroupOutcome]:
        return read_pool(pool, anchors, ctx)

    def inspect_group(self, pool: Mapping[str, PoolFile], anchors: Sequence[str],
                      ctx: DecodeContext) -> Iterator[GroupOutcome]:
        return inspect_pool(pool, anchors, ctx)

    def unused_anchor_reason(self, name: str) -> str:
        return "WFDB header not used (no record was built from it)"

    def unused_file_reason(self, probe: Probe) -> str | None:
        """Why a file no record used is skipped, when it is a WFDB annotation file
        (a known annotator extension, or a small file that reads as one): its
        record header is missing. None for any other file."""
        stem, dot, ext = probe.name.rpartition(".")
        if not dot or not stem:
            return None
        if ext.lower() not in KNOWN_ANNOTATORS and not (
                probe.size <= _SMALL and looks_like_annotations(probe.head(probe.size))):
            return None
        return (f"WFDB annotation file without its record header {stem + '.hea'!r}: upload "
                "them together")


FORMAT = WfdbFormat()
