"""The pipeline: walk -> detect -> decode -> group WFDB -> order -> overrides."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._arena import Arena
from .detect import anchor_format, detect, sniff_anchor, tried_formats
from .errors import (
    CorruptDataError,
    EcgIngestError,
    MissingFileError,
    SkippedEntriesError,
    UnsupportedFormatError,
)
from .formats._base import DecodeContext, MultiFileFormat, OutputBudget, SingleFileFormat
from .limits import ByteBudget, Limits
from .overrides import Overrides
from .record import Record, emit_warnings
from .sources import Entry, Failed, Skipped, Source, Upload
from .uploads import directory_pool, open_upload

__all__ = ["ingest", "read", "IngestResult", "EntryError", "Skipped"]


@dataclass(frozen=True)
class EntryError:
    """A recognised entry (or WFDB record) that could not be decoded."""

    paths: tuple[str, ...]
    error: EcgIngestError


@dataclass
class IngestResult:
    """Everything one upload yielded: records in contract order, plus what was not read."""

    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no recognised entry failed."""
        return not self.errors


def _guarded(fmt_name: str, path: str, decode: Callable[[], Any]) -> Any:
    """Run a decoder, giving any non-typed failure a typed error (never a crash)."""
    try:
        return decode()
    except EcgIngestError as exc:
        exc.with_context(path=path, format=fmt_name)
        raise
    except (OSError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a decoder bug must still surface as a typed error
        raise CorruptDataError(
            f"could not decode ({type(exc).__name__}: {exc})", format=fmt_name, path=path
        ) from exc


class _Walk:
    """State of one upload walk; keeps the order rules of INGESTION.md §4."""

    def __init__(self, strict: bool, limits: Limits) -> None:
        self.strict = strict
        self.limits = limits
        self.budget = OutputBudget(limits.max_decoded_size)  # decoded output of the upload
        self.result = IngestResult()
        self.index = 0
        self.skipped: list[tuple[int, Skipped]] = []
        self.single: list[Record] = []
        self.groups: dict[str, dict[str, Entry]] = {}
        # (directory, anchor name, its format) in entry order
        self.anchors: list[tuple[str, str, MultiFileFormat]] = []
        self.entry_index: dict[str, int] = {}
        self.arena = Arena()  # samples of small multi-file records: they live with the records

    def context(self, format: str, *, name: str = "upload", path: str | None = None
                ) -> DecodeContext:
        return DecodeContext(format, name=name, path=path, strict=self.strict,
                             limits=self.limits, budget=self.budget, arena=self.arena)

    def fail(self, paths: tuple[str, ...], error: EcgIngestError) -> None:
        if self.strict:
            raise error
        self.result.errors.append(EntryError(paths, error))

    def add(self, item: Entry | Skipped | Failed,
            fmt: SingleFileFormat | None = None) -> None:
        """Take the next item of the walk (``fmt``: its format when already detected)."""
        self.index += 1
        if isinstance(item, Skipped):
            self.skipped.append((self.index, item))
            return
        if isinstance(item, Failed):  # bytes never reach a decoder
            self.fail((item.path,), item.error)
            return
        self.entry_index[item.path] = self.index
        fmt = fmt if fmt is not None else detect(item)
        if fmt is not None:
            self.decode_single(item, fmt)
            return
        item.release()  # detection is done: a re-readable entry waits here without its bytes
        self.groups.setdefault(item.directory, {})[item.name] = item
        multi = anchor_format(item.name)
        if multi is not None:
            self.anchors.append((item.directory, item.name, multi))

    def decode_single(self, item: Entry, fmt: SingleFileFormat) -> None:
        ctx = self.context(fmt.name, name=item.name, path=item.path)
        try:
            with item.view(prefault=fmt.prefault) as data:
                record = _guarded(fmt.name, item.path, lambda: fmt.decode(data, ctx))
        except EcgIngestError as exc:
            self.fail((item.path,), exc)
        else:
            self.single.append(_deliver(record, (item.path,)))
        item.release()

    def finish(self) -> IngestResult:
        multi: list[tuple[int, Record]] = []
        used: set[str] = set()
        by_group: dict[tuple[str, MultiFileFormat], list[str]] = {}
        for directory, name, fmt in self.anchors:
            by_group.setdefault((directory, fmt), []).append(name)
        for (directory, fmt), names in by_group.items():
            pool = self.groups[directory]
            ctx = self.context(fmt.name, path=directory or None)
            for outcome in fmt.read_group(pool, names, ctx):
                paths = tuple(_join(directory, n) for n in outcome.files)
                used.update(paths)
                if outcome.error is not None:
                    self.fail(paths, outcome.error.with_context(
                        path=_join(directory, outcome.anchor), format=fmt.name))
                else:
                    assert outcome.record is not None
                    order = self.entry_index[_join(directory, outcome.anchor)]
                    multi.append((order, _deliver(outcome.record, paths)))
        for directory, _ in by_group:  # this group is done: keep memory to one copy
            for entry in self.groups[directory].values():
                entry.discard()
        anchored = {directory for directory, _ in by_group}
        for directory, pool in self.groups.items():
            for name, entry in pool.items():
                if entry.path not in used:
                    owner = anchor_format(name)
                    if entry.nested_note:
                        reason = entry.nested_note
                    elif owner is not None:
                        reason = owner.unused_anchor_reason(name)
                    else:
                        reason = _unmatched_reason(name, directory in anchored)
                    self.skipped.append((self.entry_index[entry.path], Skipped(entry.path, reason)))
        multi.sort(key=lambda pair: pair[0])
        self.skipped.sort(key=lambda pair: pair[0])
        self.result.records = self.single + [record for _, record in multi]
        self.result.skipped = [s for _, s in self.skipped]
        return self.result


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _deliver(record: Record, paths: tuple[str, ...]) -> Record:
    """A decoded record as the result keeps it: its sources set and its tolerated
    deviations issued as one warning."""
    record = record if record.sources else record.replace(sources=paths)
    emit_warnings(record, stacklevel=4)
    return record


_tried = tried_formats


def _unmatched_reason(name: str, group_has_anchor: bool) -> str:
    tried = ", ".join(_tried())
    if group_has_anchor:
        return (f"matches no format ({tried}) and no record header of its directory "
                "uses it")
    return f"matches no format ({tried})"


def _read_single(upload: Upload, entry: Entry, walk: _Walk) -> None:
    fmt = detect(entry)
    if fmt is not None:
        walk.add(entry, fmt)
        return
    multi = sniff_anchor(entry)
    if multi is not None:
        raise MissingFileError(
            f"a {multi.name.upper()} header alone carries no samples: upload it in an archive "
            "together with its other files, or pass the path of the header on disk",
            format=multi.name, path=upload.label)
    raise UnsupportedFormatError(
        f"not an archive and not a recognised ECG file (tried: {', '.join(_tried())})",
        tried=_tried(), path=upload.label)


def _anchor_path(source: Source) -> tuple[Path, MultiFileFormat] | None:
    """A path on disk to a file that anchors a multi-file record (``100.hea``)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(os.fspath(source))
    fmt = anchor_format(path.name)
    if fmt is None or not path.is_file():
        return None
    return path, fmt


def ingest(source: Source, *, overrides: Overrides | Mapping[str, Any] | None = None,
           strict: bool = False, limits: Limits | None = None) -> IngestResult:
    """Decode every record of one upload (file, directory, archive, bytes or stream).

    Corrupt entries land in ``errors`` and unmatched ones in ``skipped``
    without stopping the others; ``strict=True`` raises on the first of
    either instead.
    """
    checked = Overrides.coerce(overrides)  # validated before any decoding
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be an ecgingest.Limits, not {type(limits).__name__}")
    budget = ByteBudget(limits)
    walk = _Walk(strict, limits)
    anchor = _anchor_path(source)
    if anchor is not None:
        header, fmt = anchor
        pool = directory_pool(header, budget)
        walk.groups[""] = pool
        walk.anchors.append(("", header.name, fmt))
        walk.entry_index = {name: i for i, name in enumerate(pool)}
        result = walk.finish()
        result.skipped = []  # the other files of the directory were never asked for
    else:
        with open_upload(source, limits, budget) as upload:
            if upload.single is not None:
                _read_single(upload, upload.single, walk)
            else:
                entries = upload.entries()
                while True:
                    try:
                        item = next(entries, None)
                    except EcgIngestError as exc:  # the container itself broke off
                        walk.fail((exc.path or upload.label,), exc)
                        break
                    if item is None:
                        break
                    walk.add(item)
            result = walk.finish()
    if strict and result.skipped:
        raise SkippedEntriesError(
            f"{len(result.skipped)} entries matched no format (first: "
            f"{result.skipped[0].path!r}: {result.skipped[0].reason})",
            skipped=result.skipped)
    if checked:
        result.records = [checked.apply(r) for r in result.records]
    return result


def read(source: Source, *, overrides: Overrides | Mapping[str, Any] | None = None,
         strict: bool = False, limits: Limits | None = None) -> list[Record]:
    """The records of one upload; raises when nothing could be read (or, strict, on any problem)."""
    result = ingest(source, overrides=overrides, strict=strict, limits=limits)
    if not result.records:
        if result.errors:
            raise result.errors[0].error
        if result.skipped:
            first = result.skipped[0]
            raise UnsupportedFormatError(
                f"no record found: {len(result.skipped)} entries matched no format "
                f"(first: {first.path!r}: {first.reason})", tried=_tried(), path=first.path)
        raise UnsupportedFormatError("no record found: the upload holds no files",
                                     tried=_tried())
    return result.records
