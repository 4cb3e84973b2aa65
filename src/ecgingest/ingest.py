"""The pipeline: walk -> detect -> decode -> group WFDB -> order -> overrides."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._arena import Arena
from .detect import detect, single_file_formats
from .errors import (
    CorruptDataError,
    EcgIngestError,
    MissingFileError,
    SkippedEntriesError,
    UnsupportedFormatError,
)
from .formats import wfdb as _wfdb
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

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.result = IngestResult()
        self.index = 0
        self.skipped: list[tuple[int, Skipped]] = []
        self.single: list[Record] = []
        self.groups: dict[str, dict[str, Entry]] = {}
        self.headers: list[tuple[str, str]] = []  # (directory, header name) in entry order
        self.entry_index: dict[str, int] = {}
        self.arena = Arena()  # samples of small WFDB records: they live with the records

    def fail(self, paths: tuple[str, ...], error: EcgIngestError) -> None:
        if self.strict:
            raise error
        self.result.errors.append(EntryError(paths, error))

    def add(self, item: Entry | Skipped | Failed) -> None:
        self.index += 1
        if isinstance(item, Skipped):
            self.skipped.append((self.index, item))
            return
        if isinstance(item, Failed):  # bytes never reach a decoder
            self.fail((item.path,), item.error)
            return
        self.entry_index[item.path] = self.index
        fmt = detect(item)
        if fmt is not None:
            try:
                with item.view(prefault=fmt.prefault) as data:
                    record = _guarded(fmt.name, item.path, lambda: fmt.decode(
                        data, name=item.name, path=item.path, strict=self.strict))
            except EcgIngestError as exc:
                self.fail((item.path,), exc)
            else:
                self.single.append(_deliver(record, (item.path,)))
            item.release()
            return
        self.groups.setdefault(item.directory, {})[item.name] = item
        if _wfdb.is_header_name(item.name):
            self.headers.append((item.directory, item.name))

    def finish(self) -> IngestResult:
        multi: list[tuple[int, Record]] = []
        used: set[str] = set()
        by_dir: dict[str, list[str]] = {}
        for directory, name in self.headers:
            by_dir.setdefault(directory, []).append(name)
        for directory, names in by_dir.items():
            pool = self.groups[directory]
            for outcome in _wfdb.read_pool(pool, names, strict=self.strict,
                                           arena=self.arena):
                paths = tuple(_join(directory, n) for n in outcome.files)
                used.update(paths)
                if outcome.error is not None:
                    self.fail(paths, outcome.error.with_context(
                        path=_join(directory, outcome.header), format="wfdb"))
                else:
                    assert outcome.record is not None
                    order = self.entry_index[_join(directory, outcome.header)]
                    multi.append((order, _deliver(outcome.record, paths)))
            for entry in pool.values():  # this group is done: keep memory to one copy
                entry.discard()
        for directory, pool in self.groups.items():
            for name, entry in pool.items():
                if entry.path not in used:
                    if entry.nested_note:
                        reason = entry.nested_note
                    elif _wfdb.is_header_name(name):
                        reason = _wfdb.unused_reason(name)
                    else:
                        reason = _unmatched_reason(name, directory in by_dir)
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


def _tried() -> tuple[str, ...]:
    return tuple(f.name for f in single_file_formats()) + ("wfdb",)


def _unmatched_reason(name: str, group_has_header: bool) -> str:
    tried = ", ".join(_tried())
    if group_has_header:
        return f"matches no format ({tried}) and no WFDB header of its directory uses it"
    return f"matches no format ({tried})"


def _read_single(upload: Upload, entry: Entry, walk: _Walk) -> None:
    fmt = detect(entry)
    if fmt is not None:
        walk.add(entry)
        return
    if _wfdb.looks_like_header(entry):
        raise MissingFileError(
            "a WFDB header alone carries no samples: upload it in an archive together "
            "with its signal files, or pass the path of the .hea file on disk",
            format="wfdb", path=upload.label)
    raise UnsupportedFormatError(
        f"not an archive and not a recognised ECG file (tried: {', '.join(_tried())})",
        tried=_tried(), path=upload.label)


def _is_header_path(source: Source) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = Path(os.fspath(source))
    return _wfdb.is_header_name(path.name) and path.is_file()


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
    walk = _Walk(strict)
    if _is_header_path(source):
        header = Path(os.fspath(source))
        pool = directory_pool(header, budget)
        walk.groups[""] = pool
        walk.headers.append(("", header.name))
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
