"""The records of one directory pool: every header read once, each record built from it.

A multi-segment header consumes its segment (and layout) headers only when its
record was built: if it fails, they are delivered as records of their own, so
no valid record disappears behind a broken or hostile multi-segment header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ...errors import CorruptDataError, EcgIngestError
from ...record import Record, RecordInfo
from .._base import DecodeContext, GroupOutcome, PoolFile, annotations_within
from .annotations import annotation_index, attach_annotations, claim_annotation_files
from .header import WfdbHeader, is_header_name, read_header_file
from .multisegment import HeaderLookup, multi_info, read_multi
from .records import single_info, single_record
from .signals import RecordFiles

if TYPE_CHECKING:
    from ..._memory import Arena

__all__ = ["read_pool", "inspect_pool"]

Build = Callable[[WfdbHeader, RecordFiles, HeaderLookup], "Record | RecordInfo"]


def read_pool(pool: Mapping[str, PoolFile], headers: Sequence[str],
              ctx: DecodeContext | None = None, *, strict: bool = False,
              arena: Arena | None = None) -> Iterator[GroupOutcome]:
    """One outcome per record of a directory pool, in header order.

    ``ctx`` carries the upload's mode, limits, budget and arena (without one:
    ``strict`` and ``arena`` make a fresh context). Sample arrays of small
    records come from the arena when there is one.
    """
    if ctx is None:
        ctx = DecodeContext("wfdb", strict=strict, arena=arena)
    arena = ctx.arena

    def build(hdr: WfdbHeader, files: RecordFiles, lookup: HeaderLookup) -> Record:
        if hdr.segments is not None:
            return read_multi(hdr, lookup, files, arena)
        return single_record(hdr, files, arena)  # reads only the part asked for

    return _outcomes(pool, headers, ctx, build)


def inspect_pool(pool: Mapping[str, PoolFile], headers: Sequence[str],
                 ctx: DecodeContext) -> Iterator[GroupOutcome]:
    """As :func:`read_pool`, with :class:`RecordInfo` from headers and file sizes."""

    def build(hdr: WfdbHeader, files: RecordFiles, lookup: HeaderLookup) -> RecordInfo:
        if hdr.segments is not None:
            return multi_info(hdr, lookup, files)
        return single_info(hdr, files)

    return _outcomes(pool, headers, ctx, build)


def _outcomes(pool: Mapping[str, PoolFile], anchors: Sequence[str], ctx: DecodeContext,
              build: Build) -> Iterator[GroupOutcome]:
    parsed: dict[str, WfdbHeader | EcgIngestError] = {
        name: read_header_file(pool[name], ctx)
        for name in anchors}

    def lookup(file_name: str) -> WfdbHeader | EcgIngestError | None:
        found = parsed.get(file_name)
        if found is None and file_name in pool:
            found = parsed[file_name] = read_header_file(pool[file_name], ctx)
        return found

    annotations = annotation_index(pool)
    # multi-segment records first: their segments are consumed only when they succeed
    early: dict[str, GroupOutcome] = {}
    consumed: set[str] = set()
    for name in anchors:
        hdr = parsed[name]
        if isinstance(hdr, WfdbHeader) and hdr.segments is not None:
            outcome = early[name] = _outcome(name, hdr, pool, ctx, lookup, build, annotations)
            if outcome.error is None:
                consumed.update(f for f in outcome.files[1:] if is_header_name(f))
    for name in anchors:
        if name in early:
            yield early.pop(name)
        elif name not in consumed:
            yield _outcome(name, parsed[name], pool, ctx, lookup, build, annotations)


def _outcome(name: str, hdr: WfdbHeader | EcgIngestError, pool: Mapping[str, PoolFile],
             ctx: DecodeContext, lookup: HeaderLookup, build: Build,
             annotations: Mapping[str, list[str]]) -> GroupOutcome:
    if isinstance(hdr, EcgIngestError):
        return GroupOutcome(name, None, hdr, (name,))
    entry = pool[name]
    files = RecordFiles(pool, ctx.for_file(path=entry.path))
    files.use(name)
    files.ctx.warnings.extend(hdr.warnings)
    if hdr.record_name != name[:-4]:
        files.ctx.warn(f"record name {hdr.record_name!r} in the header differs from the file "
                       f"name {name!r}")
    candidates = annotations.get(name[:-4], ())  # annotation files: <record>.<annotator>
    try:
        record = attach_annotations(build(hdr, files, lookup), name, hdr, files, candidates)
        if isinstance(record, Record) and "window" in record.extras:
            # the annotations of a window: those that overlap it
            record = record.replace(annotations=annotations_within(
                record.annotations, *record.extras["window"]))
    except EcgIngestError as exc:
        claim_annotation_files(hdr, files, candidates)
        return GroupOutcome(name, None, exc.with_context(format="wfdb"), tuple(files.used))
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # a decoder bug must still surface as a typed error
        error = files.ctx.error(CorruptDataError, f"record {hdr.record_name!r} could not be "
                                f"decoded ({type(exc).__name__}: {exc})")
        error.__cause__ = exc
        claim_annotation_files(hdr, files, candidates)
        return GroupOutcome(name, None, error, tuple(files.used))
    return GroupOutcome(name, record, None, tuple(files.used))
