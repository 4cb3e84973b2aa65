"""Content detection: the one place that runs the sniffers, in registry order.

The first single-file format whose ``sniff`` accepts a file wins
(INGESTION.md §2); files nothing claims go to the multi-file formats.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from . import formats as _registry
from .formats import multi_file_formats, single_file_formats
from .formats._base import Format, MultiFileFormat, Probe, SingleFileFormat

__all__ = ["detect", "probe_of", "skip_reason", "anchor_format", "tried_formats", "single_file_formats",
           "multi_file_formats"]


class _Sniffable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    def head(self, n: int) -> bytes: ...


def probe_of(item: _Sniffable) -> Probe:
    """A bounded probe of anything with a name, a size and a ``head(n)`` reader."""
    return Probe(item.name, item.size, item.head)


_Claimant = tuple[SingleFileFormat, int, frozenset[int]]
"""A single-file format, the offset of its marker byte and the values that byte may take
(offset -1: no marker)."""


class _Listed(NamedTuple):
    """The registry as detection reads it (see :func:`_listed`)."""

    registry: tuple[Format, ...]
    single: tuple[SingleFileFormat, ...]
    multi: tuple[MultiFileFormat, ...]
    claimants: tuple[_Claimant, ...]  # the single-file formats with their markers
    reach: int  # the prefix of a file the markers need
    # the formats that give skip reasons, in registry order, as (single, multi) pairs
    reason_givers: tuple[tuple[SingleFileFormat | None, MultiFileFormat | None], ...]


_kinds_of = _Listed((), (), (), (), 0, ())


def _listed() -> _Listed:
    """The registry sorted by kind, with each single-file format's marker and the prefix
    the markers need, and the formats that give skip reasons in registry order as
    ``(single-file, multi-file)`` pairs (one of them None), worked out again only when
    the registry changes (each upload's detection, and each unclaimed file's skip
    reason, would otherwise check every format's abstract class again)."""
    global _kinds_of
    if _kinds_of.registry is not _registry.FORMATS:
        registry = _registry.FORMATS
        single, multi = single_file_formats(), multi_file_formats()
        claimants = tuple((fmt, -1, frozenset()) if fmt.marker is None
                          else (fmt, fmt.marker[0], frozenset(fmt.marker[1]))
                          for fmt in single)
        reach = max((offset + 1 for _, offset, _ in claimants), default=0)
        reason_givers = tuple(
            (fmt, None) if isinstance(fmt, SingleFileFormat) else (None, fmt)
            for fmt in registry if _gives_reasons(fmt))
        _kinds_of = _Listed(registry, single, multi, claimants, reach, reason_givers)
    return _kinds_of


def _gives_reasons(fmt: Format) -> bool:
    """Whether ``fmt`` may say why a file is skipped (it overrides the hook that says
    nothing): the others need not be asked, file after file."""
    if isinstance(fmt, SingleFileFormat):
        return type(fmt).skip_reason is not SingleFileFormat.skip_reason
    return type(fmt).unused_file_reason is not MultiFileFormat.unused_file_reason


def _by_kind() -> tuple[tuple[SingleFileFormat, ...], tuple[MultiFileFormat, ...]]:
    """:func:`single_file_formats` and :func:`multi_file_formats` (see :func:`_listed`)."""
    listed = _listed()
    return listed.single, listed.multi


def detect(item: _Sniffable | Probe) -> SingleFileFormat | None:
    """The single-file format that claims the file, or None.

    A format whose marker byte (:attr:`SingleFileFormat.marker`) the file does not
    have is not asked. A sniffer that raises counts as "not mine": sniffers see
    arbitrary bytes, and one broken sniffer must not stop detection of the others.
    """
    probe = item if isinstance(item, Probe) else probe_of(item)
    listed = _listed()
    claimants, reach = listed.claimants, listed.reach
    try:
        head = probe.head(reach) if reach else b""
    except Exception:  # unreadable: each sniffer is asked, and fails, as ever
        head = b""
    known = len(head)
    for fmt, offset, values in claimants:
        if 0 <= offset < known and head[offset] not in values:
            continue
        try:
            if fmt.sniff(probe):
                return fmt
        except Exception:
            continue
    return None


def skip_reason(item: _Sniffable | Probe) -> str | None:
    """The first reason a format gives for a file it declines or that no record may use
    (a DICOM image, an annotation file without its header), or None."""
    probe = item if isinstance(item, Probe) else probe_of(item)
    # every signal file of an archive nothing claims asks these formats
    for single, multi in _listed().reason_givers:
        try:
            if single is not None:
                reason = single.skip_reason(probe)
            elif multi is not None:
                reason = multi.unused_file_reason(probe)
        except Exception:
            continue
        if reason:
            return reason
    return None


def anchor_format(name: str) -> MultiFileFormat | None:
    """The multi-file format whose records a file of this name anchors, or None."""
    for fmt in _by_kind()[1]:
        if fmt.is_anchor(name):
            return fmt
    return None


def sniff_anchor(item: _Sniffable | Probe) -> MultiFileFormat | None:
    """The multi-file format a lone file reads as an anchor of (its other files missing)."""
    probe = item if isinstance(item, Probe) else probe_of(item)
    for fmt in _by_kind()[1]:
        try:
            if fmt.is_anchor(probe.name) or fmt.sniff_anchor(probe):
                return fmt
        except Exception:
            continue
    return None


def tried_formats() -> tuple[str, ...]:
    """Names of every registered format, in detection order (for error messages)."""
    return tuple(f.name for f in _registry.FORMATS)
