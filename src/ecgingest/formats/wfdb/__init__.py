"""WFDB records: a text header plus the signal files it names, from one directory.

- :mod:`.header`: header parsing (``parse_header``, ``read_wfdb_header``);
- :mod:`.signals`: signal files (packed formats natively, FLAC via ``soundfile``);
- :mod:`.multisegment`: fixed and variable layouts;
- :mod:`.pool`: the records of a directory (which header consumes which).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from .._base import DecodeContext, GroupOutcome, MultiFileFormat, PoolFile, Probe
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


class WfdbFormat(MultiFileFormat):
    """WFDB records: a ``.hea`` header and the signal files it names, in one directory."""

    name = "wfdb"

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


FORMAT = WfdbFormat()
