"""The pipeline: walk -> detect -> decode -> group WFDB -> order -> overrides."""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import os
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from ._memory import Arena
from .archive import ListedUpload, Listing, archive_kind
from .detect import anchor_format, detect, skip_reason, sniff_anchor, tried_formats
from .errors import (
    CorruptDataError,
    EcgIngestError,
    MissingFileError,
    SkippedEntriesError,
    SourceUnavailableError,
    UnsupportedFormatError,
)
from .formats._base import (
    ByteSource,
    DecodeContext,
    GroupOutcome,
    MultiFileFormat,
    NotARecord,
    OutputBudget,
    Probe,
    ReadRequest,
    SingleFileFormat,
)
from .limits import DEFAULT_LIMITS, ByteBudget, Limits
from .overrides import Overrides
from .record import LazyRecord, Record, RecordInfo, emit_warnings
from .sources import Entry, Failed, Skipped, Source, Upload, _release_quietly, drop_frames
from .uploads import BYTES_ENTRY, BYTES_LABEL, directory_pool, open_upload, path_label

__all__ = ["ingest", "read", "iter_records", "RecordIterator", "inspect_upload",
           "IngestResult", "EntryError", "Skipped"]


@dataclass(frozen=True)
class EntryError:
    """A recognised entry (or WFDB record) that could not be decoded."""

    paths: tuple[str, ...]
    error: EcgIngestError


@dataclass
class IngestResult:
    """Everything one upload yielded: records in contract order, plus what was not read.

    ``records`` are the decoded :class:`~ecgingest.Record` objects, ``skipped``
    the entries that matched no format (with the reason) and ``errors`` the
    recognised entries that failed (with their typed error).
    """

    records: list[Record] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no recognised entry failed."""
        return not self.errors

    def __repr__(self) -> str:
        head = (f"<IngestResult: {len(self.records)} record{'s' if len(self.records) != 1 else ''}"
                f", {len(self.skipped)} skipped, {len(self.errors)} error"
                f"{'s' if len(self.errors) != 1 else ''}")
        lines = [head]
        for record in self.records[:_SHOWN]:
            lines.append("  " + repr(record).split("\n", 1)[0].lstrip("<"))
        for error in self.errors[:_SHOWN]:
            lines.append(f"  error {', '.join(error.paths)}: {type(error.error).__name__}: "
                         f"{_short(str(error.error))}")
        for skipped in self.skipped[:_SHOWN]:
            lines.append(f"  skipped {skipped.path}: {_short(skipped.reason)}")
        hidden = sum(max(len(items) - _SHOWN, 0)
                     for items in (self.records, self.errors, self.skipped))
        if hidden:
            lines.append(f"  … {hidden} more")
        return "\n".join(lines) + ">"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<li>{record._repr_html_()}</li>" for record in self.records[:_SHOWN])
        more = (f"<li>… {len(self.records) - _SHOWN} more records</li>"
                if len(self.records) > _SHOWN else "")
        problems = "".join(
            f"<li>error {html.escape(', '.join(e.paths))}: {html.escape(str(e.error))}</li>"
            for e in self.errors[:_SHOWN]) + "".join(
            f"<li>skipped {html.escape(s.path)}: {html.escape(s.reason)}</li>"
            for s in self.skipped[:_SHOWN])
        return (f"<div><strong>IngestResult</strong>: {len(self.records)} records, "
                f"{len(self.skipped)} skipped, {len(self.errors)} errors"
                f"<ul>{rows}{more}{problems}</ul></div>")


_SHOWN = 5
"""Records, errors and skipped entries an IngestResult's repr lists (each)."""


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _guarded(fmt_name: str, path: str, decode: Callable[..., Any], *args: Any) -> Any:
    """Run a decoder (``decode(*args)``), giving any non-typed failure a typed error
    (never a crash)."""
    try:
        return decode(*args)
    except EcgIngestError as exc:
        exc.with_context(path=path, format=fmt_name)
        raise
    except (OSError, KeyboardInterrupt, NotARecord):
        raise
    except Exception as exc:  # a decoder bug must still surface as a typed error
        raise CorruptDataError(
            f"could not decode ({type(exc).__name__}: {exc})", format=fmt_name, path=path
        ) from exc


class _Walk:
    """State of one upload walk: decodes entries as they come and reports outcomes.

    Records (or, for ``inspect``, :class:`RecordInfo`), skips and errors are
    put on ``events`` as they are known: single-file records during the walk,
    multi-file records in :meth:`finish` (when records are handed out one at a
    time from an upload that lists its files: in :meth:`advance`, as their files
    pass). :func:`ingest` orders them as INGESTION.md §4 says;
    :func:`iter_records` hands them on at once.
    """

    # set only by the walks that use them (most reads are of one file: its walk is made
    # per read, so what it never changes is not made per read)
    # directory -> paths of its files still to come, from the upload's listing (only
    # when records are handed out one at a time): a directory none is left of is
    # complete, and its multi-file records are built at once
    pending: Listing | None = None
    forget: Callable[[Iterable[str]], None] | None = None  # tells the reader
    reload: Callable[[Entry], Entry | None] | None = None  # an entry to read again
    # what lazy records keep of an entry, shared by the records using it (a WFDB
    # signal file of two headers is kept once) and let go with the last of them
    # (made by the first lazy record: an eager read does not pay for it)
    kept: weakref.WeakValueDictionary[str, _Kept] | None = None
    # whether the walk is about to wait for entries decompressed ahead of it on
    # another thread: a directory is built early only then, filling the wait (with
    # nothing to wait for it would only cost: the decompression's and the build's
    # data would take turns in the caches)
    reading_ahead: Callable[[], bool] | None = None
    current: str | None = None  # directory of the walk's last entry

    def __init__(self, strict: bool, limits: Limits, *, header_only: bool = False,
                 request: ReadRequest | None = None, lazy: bool = False,
                 streaming: bool = False) -> None:
        self.strict = strict
        self.limits = limits
        self.header_only = header_only
        # records are handed out one at a time (iter_records): a file's bytes go as soon
        # as no record still to be built reads it, even within a directory
        self.streaming = streaming and not header_only and not lazy
        self.lazy = lazy and not header_only
        self.request = None if header_only else request
        self.budget = OutputBudget(limits.max_decoded_size)  # decoded output of the upload
        self.events: deque[_Event] = deque()
        self.index = 0
        # samples of small multi-file records: they live with the records (a walk that
        # hands records out one at a time gives each its own memory: an arena block
        # would hold the samples of many records)
        self.arena = None if self.streaming else Arena()
        # an upload without a listing whose outcomes are collected (ingest, read): the
        # records of a directory are built as soon as the walk leaves it, while the
        # upload's next entries are still being read, and held until the end, where they
        # are taken in the place the directory's read has there; a directory the walk
        # comes back to (or whose build cannot be taken as it is) is read there instead
        self.early = not (strict or header_only or lazy or streaming)
        # the containers below are made on first use (see __getattr__): a read of one
        # file decoded at once uses none of them

    # directory -> its files nothing single-file claimed (and files read with companions)
    groups: dict[str, dict[str, Entry]]
    # directory -> (anchor name, its format) in entry order (directories in the order
    # of their first anchor)
    anchors: dict[str, list[tuple[str, MultiFileFormat]]]
    # path -> place in the walk, of the entries in ``groups`` (see add)
    entry_index: dict[str, int]
    reasons: dict[str, str]  # why a format declined an unclaimed file
    # single files whose format reads companions: (entry, format, order in the walk)
    deferred: list[tuple[Entry, SingleFileFormat, int]]
    # directory -> its records planned from its headers, before its end (None: no
    # plan); the records built early; the files they used
    plans: dict[str, _DirectoryPlan | None]
    built_early: set[str]  # directories with records built before their end
    used: set[str]  # paths of files records used, of directories not done
    built: dict[str, set[str]]  # directory -> anchors built before its end
    touched: list[str]  # stand-ins of files still to come that were read
    provisional: dict[str, _Provisional]  # directories built early, held for the end
    reopened: set[str]  # directories never built before the end

    if not TYPE_CHECKING:  # hidden from the type checker: each container keeps its type
        def __getattr__(self, name: str) -> Any:
            """An empty container, made on its first use and kept (called only for an
            attribute the instance does not have yet)."""
            make = _WALK_CONTAINERS.get(name)
            if make is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                     f"{name!r}")
            made = self.__dict__[name] = make()
            return made

    @property
    def waiting(self) -> bool:
        """True while files wait for the end of the walk (in a directory's pool, or read
        with companions): :meth:`finish` has work."""
        made = self.__dict__  # looked at without making them
        return bool(made.get("groups") or made.get("deferred") or made.get("anchors"))

    def context(self, format: str, *, name: str = "upload", path: str | None = None,
                whole: bool = False) -> DecodeContext:
        """A context for one file or pool (``whole``: for the header facts of whole
        records, as a lazy read takes them, whatever part the read asks for)."""
        return DecodeContext(format, name=name, path=path, strict=self.strict,
                             limits=self.limits, budget=self.budget, arena=self.arena,
                             request=None if whole else self.request)

    def fail(self, paths: tuple[str, ...], error: EcgIngestError,
             order: int | None = None) -> None:
        if self.strict:
            raise error
        drop_frames(error)  # a kept error must not keep the decoder's data alive
        self.events.append(_Event("error", self.index if order is None else order,
                                  EntryError(paths, error)))

    def skip(self, index: int, skipped: Skipped) -> None:
        self.events.append(_Event("skipped", index, skipped))

    def add(self, item: Entry | Skipped | Failed,
            fmt: SingleFileFormat | None = None, *, alone: bool = False) -> None:
        """Take the next item of the walk (``fmt``: its format when already detected;
        ``alone``: the upload is this one file, so no file its format reads with it can
        come, and it is decoded at once, as the end of the walk would decode it)."""
        self.index += 1
        if isinstance(item, Skipped):
            self.skip(self.index, item)
            return
        if isinstance(item, Failed):  # bytes never reach a decoder
            self.fail((item.path,), item.error)
            return
        if "entry_index" in self.__dict__:
            # read only for entries in ``groups``, which set it when they join: until
            # one has, no entry's place is asked for (a read of one file makes none)
            self.entry_index[item.path] = self.index
        if fmt is None:
            fmt = detect(item) if item.detected is None else item.detected[0]
        if fmt is not None:
            if not alone and fmt.companions(item.name):  # decoded once its directory is seen
                self.deferred.append((item, fmt, self.index))
                item.release()
                self.join(item)
                return
            self.decode_single(item, fmt)
            return
        multi = anchor_format(item.name)
        if multi is not None:
            self.anchors.setdefault(item.directory, []).append((item.name, multi))
        else:
            reason = skip_reason(item)
            if reason is not None:  # kept for the report if no record uses the file
                self.reasons[item.path] = reason
        item.release()  # detection is done: a re-readable entry waits here without its bytes
        self.join(item)

    def join(self, item: Entry) -> None:
        """Put an entry in its directory's pool, for the end of the walk."""
        self.entry_index[item.path] = self.index
        self.groups.setdefault(item.directory, {})[item.name] = item

    def advance(self, item: Entry | Skipped | Failed) -> Iterator[_Event]:
        """Build what ``item`` completes, where the upload listed its files: the records
        of its directory when it was the last one, else each record of the directory
        whose files have all passed (planned from the directory's headers)."""
        if self.pending is None:
            return
        done = self.pending.passed(item.path, joins=isinstance(item, Entry))
        if done is not None:
            if done in self.groups:
                yield from self.finish(done)
            return
        directory, _, name = item.path.rpartition("/")
        if directory not in self.groups:
            return
        if not self.pending.lists(directory):
            # never listed, or an entry the listing does not name came to it: which
            # files are still to come is unknown, and its end decides
            if self.plans.get(directory) is not None:
                self.plans[directory] = None
            return
        if directory not in self.plans:
            if not self.pending.headers_passed(directory):
                return
            self.plans[directory] = self.plan(directory)
        else:
            plan = self.plans[directory]
            if plan is not None:
                plan.passed(name)
        plan = self.plans[directory]
        if plan is not None and plan.ready:
            yield from self.build_ready(directory, plan)

    def moved(self, directory: str) -> None:
        """The walk's last entry is in ``directory``: a directory it left is built now,
        one it came back to is read again at the end."""
        if directory == self.current:
            return
        if (self.current is not None and self.reading_ahead is not None
                and self.reading_ahead()):
            self.build_left(self.current)
        if self.provisional.pop(directory, None) is not None:
            self.reopened.add(directory)  # a file came after its build: read at the end
        self.current = directory

    def build_left(self, directory: str) -> None:
        """Build the multi-file records of ``directory``, which the walk just left, and
        hold their outcomes for :meth:`finish` (none: it reads the directory as ever).

        The build charges an output budget of its own: :meth:`finish` takes it only
        where the upload's budget, as it stands at that point, has room for it all,
        so every record comes out as a read there would give it. The directory's
        files are then let go (an archive member kept in memory as one read again
        when used), as the directory's end would.
        """
        if (directory in self.reopened or directory not in self.anchors
                or any(item.directory == directory for item, _, _ in self.deferred)):
            return
        pool = self.groups[directory]
        by_format: dict[MultiFileFormat, list[str]] = {}
        for name, fmt in self.anchors[directory]:
            by_format.setdefault(fmt, []).append(name)
        budget = OutputBudget(self.limits.max_decoded_size)
        held: dict[MultiFileFormat, deque[tuple[GroupOutcome, tuple[str, ...]]]] = {}
        try:
            for fmt, names in by_format.items():
                ctx = DecodeContext(fmt.name, path=directory or None, strict=False,
                                    limits=self.limits, budget=budget, arena=self.arena,
                                    request=self.request)
                outcomes = held[fmt] = deque()
                for outcome in fmt.read_group(pool, names, ctx):
                    if outcome.error is not None:
                        drop_frames(outcome.error)  # must not keep the decoder's data
                    outcomes.append((outcome, tuple(_join(directory, n) for n in outcome.files)))
                    del outcome
        except Exception as exc:  # the end reads it again and reports what it finds
            drop_frames(exc)
            self.reopened.add(directory)
            return
        self.provisional[directory] = _Provisional(budget.used, held)
        gone = []
        for name, entry in pool.items():
            again = self.reload(entry) if self.reload is not None else None
            if again is None:
                again = _owning(entry)
                if again is None:
                    entry.release()
                    continue
            else:
                gone.append(entry.path)
            pool[name] = again
            entry.discard()
        if gone and self.forget is not None:
            self.forget(gone)

    def plan(self, directory: str) -> _DirectoryPlan | None:
        """The files each record of ``directory`` will read, from its headers (all passed)
        and the listing's names and sizes of the files still to come; None when the
        headers cannot tell (a multi-segment record, a header that consumes another, a
        file read with companions, a look at the bytes of a file still to come)."""
        assert self.pending is not None
        pool = self.groups[directory]
        anchors = self.anchors.get(directory, [])
        if len(anchors) < 2 or any(item.directory == directory for item, _, _ in self.deferred):
            return None  # one record: built at the directory's end, as soon
        if self.pending.sizes is None:
            return None  # files still to come cannot stand in (a directory on disk)
        touched = self.touched
        touched.clear()

        def not_yet(path: str) -> bytes:
            touched.append(path)
            raise CorruptDataError("not read yet", path=path)

        waiting: dict[str, Entry] = {}
        for path, size in self.pending.remaining(directory).items():
            name = path.rsplit("/", 1)[-1]
            if name not in pool:
                waiting[name] = Entry.deferred(path, size, b"", functools.partial(not_yet, path))
        trial: collections.ChainMap[str, Entry] = collections.ChainMap(pool, waiting)
        by_format: dict[MultiFileFormat, list[str]] = {}
        for name, fmt in anchors:
            by_format.setdefault(fmt, []).append(name)
        planned: dict[str, tuple[MultiFileFormat, frozenset[str]]] = {}
        for fmt, names in by_format.items():
            ctx = DecodeContext(fmt.name, path=directory or None, strict=False,
                                limits=self.limits,
                                budget=OutputBudget(self.limits.max_decoded_size))
            found = 0
            try:
                # one outcome at a time: the header facts of a whole directory's records
                # are not needed at once
                for outcome in fmt.inspect_group(trial, names, ctx):
                    files = frozenset((outcome.anchor, *outcome.files))
                    if touched or outcome.anchor in planned or outcome.anchor not in names or any(
                            name != outcome.anchor and anchor_format(name) is not None
                            for name in files):
                        return None  # reads another header (a segment): built at the end
                    planned[outcome.anchor] = (fmt, files)
                    found += 1
                    del outcome
            except Exception as exc:  # a plan is a hint: the directory's end decides
                drop_frames(exc)
                return None
            if touched or found != len(names):
                return None  # a header consumed another, or gave no outcome
        return _DirectoryPlan({name: planned[name] for name, _ in anchors}, waiting)

    def build_ready(self, directory: str, plan: _DirectoryPlan) -> Iterator[_Event]:
        """Build each planned record of ``directory`` whose files have all passed, and
        let go of the files no planned record still needs (an entry read again from the
        upload if a record needs it after all: a wrong plan costs a read, not a record).

        A record is read from its planned files alone: a look at any other file of
        the directory (or at one still to come) means the plan was wrong, and the
        directory's end decides, as without a plan."""
        pool = self.groups[directory]
        while plan.ready:
            anchor = plan.ready[0]
            fmt, files = plan.records[anchor]
            lazy = self.lazy and _reads_headers(fmt)
            ctx = self.context(fmt.name, path=directory or None, whole=lazy)
            read = fmt.inspect_group if self.header_only or lazy else fmt.read_group
            window = _Window(pool, files, plan.waiting)
            self.touched.clear()
            outcomes = list(read(window, [anchor], ctx))
            if self.touched or window.missed:
                self.plans[directory] = None
                return
            plan.built(anchor)
            self.built.setdefault(directory, set()).add(anchor)
            self.built_early.add(directory)
            read_files = {name for outcome in outcomes for name in outcome.files}
            while outcomes:
                outcome = outcomes.pop(0)
                paths = tuple(_join(directory, n) for n in outcome.files)
                self.used.update(paths)
                self.outcome(fmt, pool, directory, outcome, paths, lazy)
                del outcome  # no local keeps the record while the next one is built
            gone = []
            for name in files | read_files:
                entry = pool.get(name)
                if plan.uses.get(name, 0) > 0 or entry is None:
                    continue
                again = self.reload(entry) if self.reload is not None else None
                if again is None:
                    entry.release()  # bytes that can be read again (a file passed over)
                    continue
                pool[name] = again
                entry.discard()
                gone.append(entry.path)
            if gone and self.forget is not None:
                self.forget(gone)
            yield from _drain(self.events)

    def decode_single(self, item: Entry, fmt: SingleFileFormat, order: int | None = None,
                      companions: Mapping[str, Entry] | None = None) -> None:
        """Decode one file (``order``: its place in the walk, for a file decoded late;
        ``companions``: the files its format asked for; a lazy read of such a file
        decodes at once)."""
        order = self.index if order is None else order
        ctx = self.context(fmt.name, name=item.name, path=item.path)
        if companions:
            ctx.companions = dict(companions)
            paths = (item.path, *(c.path for c in ctx.companions.values()))
        else:
            paths = (item.path,)
        record: Record | RecordInfo
        try:
            if self.header_only:
                with item.view(prefault=fmt.prefault, as_bytes=fmt.takes_bytes) as data:
                    record = _guarded(fmt.name, item.path, lambda: fmt.inspect(data, ctx))
            elif self.lazy and _reads_headers(fmt) and not companions:
                record = self.lazy_single(item, fmt)
            else:
                record = _decode_entry(fmt, item, ctx)
        except EcgIngestError as exc:
            self.fail(paths, exc, order)
        except NotARecord as declined:
            self.skip(order, Skipped(item.path, declined.reason))
        else:
            self.events.append(_Event("single", order, _deliver(record, paths)))
        item.release()

    def keep(self, entry: Entry) -> _Kept:
        if self.kept is None:
            self.kept = weakref.WeakValueDictionary()
        kept = self.kept.get(entry.path)
        if kept is None:
            kept = self.kept[entry.path] = _Kept.of(entry)
        return kept

    def lazy_single(self, item: Entry, fmt: SingleFileFormat) -> Record:
        """A lazy record of a single-file entry: its header read now, its samples when
        first used (from the file again, or from the bytes kept)."""
        ctx = self.context(fmt.name, name=item.name, path=item.path, whole=True)
        kept = self.keep(item)  # the file's identity before its header is read, or the bytes
        # only the header's pages are touched
        with item.view(prefault=False, as_bytes=fmt.takes_bytes) as data:
            info = _guarded(fmt.name, item.path, lambda: fmt.inspect(data, ctx))
        name, path = item.name, item.path
        strict, limits, budget, request = self.strict, self.limits, self.budget, self.request

        def decode() -> Record:
            entry = kept.check()
            load_ctx = DecodeContext(fmt.name, name=name, path=path, strict=strict,
                                     limits=limits, budget=budget, request=request)
            record = _decode_entry(fmt, entry, load_ctx)
            kept.check()  # unchanged while it was decoded too
            return record if record.sources else record.replace(sources=(path,))

        return _guarded(fmt.name, item.path, lambda: _lazy(info, request, decode))

    def lazy_group(self, fmt: MultiFileFormat, pool: Mapping[str, Entry], directory: str,
                   outcome: GroupOutcome) -> GroupOutcome:
        """A lazy record of a multi-file outcome read from headers (or its error)."""
        assert isinstance(outcome.record, RecordInfo)
        info = outcome.record
        kept = {name: self.keep(pool[name]) for name in outcome.files}
        anchor, anchor_path = outcome.anchor, _join(directory, outcome.anchor)
        strict, limits, budget, request = self.strict, self.limits, self.budget, self.request

        def decode() -> Record:
            files = {name: k.check() for name, k in kept.items()}
            ctx = DecodeContext(fmt.name, path=directory or None, strict=strict,
                                limits=limits, budget=budget, request=request)
            found = next(iter(fmt.read_group(files, [anchor], ctx)), None)
            if found is None or (found.error is None and found.record is None):
                raise CorruptDataError("the record's files yielded no record when its "
                                       "samples were read", format=fmt.name, path=anchor_path)
            if found.error is None and request is not None and not fmt.windows:
                found = _cut(found, request)
            if found.error is not None:
                raise found.error.with_context(path=anchor_path, format=fmt.name)
            for k in kept.values():
                k.check()
            assert isinstance(found.record, Record)
            return found.record

        try:
            record = _guarded(fmt.name, anchor_path, lambda: _lazy(info, request, decode))
        except EcgIngestError as exc:
            return GroupOutcome(outcome.anchor, None, exc, outcome.files)
        return GroupOutcome(outcome.anchor, record, None, outcome.files)

    def outcome(self, fmt: MultiFileFormat, pool: Mapping[str, Entry], directory: str,
                outcome: GroupOutcome, paths: tuple[str, ...], lazy: bool) -> None:
        """Put one outcome of a directory's read on ``events`` (a lazy record made, a
        window cut, an error given its place)."""
        if outcome.error is None and lazy:
            outcome = self.lazy_group(fmt, pool, directory, outcome)
        elif outcome.error is None and self.request is not None and not fmt.windows:
            outcome = _cut(outcome, self.request)
        if outcome.error is not None:
            self.fail(paths, outcome.error.with_context(
                path=_join(directory, outcome.anchor), format=fmt.name))
        else:
            assert outcome.record is not None
            order = self.entry_index[_join(directory, outcome.anchor)]
            self.events.append(_Event("multi", order, _deliver(outcome.record, paths)))

    def let_go(self, pool: Mapping[str, Entry], anchor: str, files: Sequence[str],
               after: int | None, uses: _FileUses | None) -> None:
        """Drop the bytes no record still to be built needs, before the record of
        ``anchor`` is handed out.

        ``after``: anchors of the directory after this one (outcomes come in anchor
        order; None: not one of them). None left: every file goes. Otherwise a file
        the plan (``uses``) gives no later record lets its bytes go if it can be read
        again (an archive member passed over, a file on disk), so a wrong plan costs
        a second read, never a record; bytes held in memory wait for the directory's
        end.
        """
        if after == 0:
            _discard(pool)
            return
        if uses is None:
            return
        for name in uses.done(anchor, files):
            entry = pool.get(name)
            if entry is not None:
                entry.release()

    def plan_uses(self, directory: str,
                  groups: Mapping[tuple[str, MultiFileFormat], Sequence[str]]) -> _FileUses | None:
        """Which files each record of ``directory`` will read, from its headers alone
        (None: no plan; the files then go with the directory)."""
        pool = self.groups[directory]
        if not any(entry.disk_path is None and not entry.in_memory for entry in pool.values()):
            return None  # no member passed over: nothing to let go before the directory's end
        planned: dict[str, tuple[str, ...]] = {}
        for (where, fmt), names in groups.items():
            if where != directory:
                continue
            ctx = DecodeContext(fmt.name, path=directory or None, strict=False,
                                limits=self.limits, budget=OutputBudget(self.limits.max_decoded_size))
            try:
                for outcome in fmt.inspect_group(pool, names, ctx):
                    planned[outcome.anchor] = tuple(outcome.files)
            except Exception as exc:  # the read itself reports it: the plan is a hint
                drop_frames(exc)
                return None
        return _FileUses(planned)

    def finish(self, only: str | None = None) -> Iterator[_Event]:
        """Decode the multi-file records, directory by directory, then report the rest.

        ``only``: just this directory (complete before the walk's end), else every
        directory left. Yields each outcome as soon as it is known. A directory's
        files go before its last record is handed out, and, when records are
        handed out one at a time, each file as soon as no record still to be
        built reads it: a caller that drops each record holds about one record.
        """
        used = self.used  # with the files of records built before the directory's end
        deferred = self.deferred
        if only is not None:
            deferred = [d for d in self.deferred if d[0].directory == only]
            self.deferred = [d for d in self.deferred if d[0].directory != only]
        for item, single, order in deferred:  # files read with their companions
            pool = self.groups[item.directory]
            companions = {n: pool[n] for n in single.companions(item.name)
                          if n in pool and n != item.name and pool[n].path not in used}
            used.add(item.path)
            used.update(c.path for c in companions.values())
            self.decode_single(item, single, order, companions)
            yield from _drain(self.events)
        if only is None:
            self.deferred.clear()
        anchors = self.anchors
        if only is not None:
            anchors = {only: self.anchors.pop(only)} if only in self.anchors else {}
        by_group: dict[tuple[str, MultiFileFormat], list[str]] = {}
        for directory, named in anchors.items():
            built = self.built.get(directory, ())  # before the directory's end
            for name, fmt in named:
                if name not in built:
                    by_group.setdefault((directory, fmt), []).append(name)
        left: dict[str, int] = {}  # directory -> its anchors not read yet (all formats)
        for (directory, _), names in by_group.items():
            left[directory] = left.get(directory, 0) + len(names)
        uses: dict[str, _FileUses | None] = {}
        taken: dict[str, _Provisional] = {}  # directories built when the walk left them
        for (directory, fmt), names in by_group.items():
            pool = self.groups[directory]
            early = self.provisional.pop(directory, None)
            if early is not None and self.budget.used + early.charged <= self.budget.limit:
                # every reservation of its read here would fit: the same outcomes
                self.budget.used += early.charged
                taken[directory] = early
            if directory in taken:
                held = taken[directory].outcomes.pop(fmt, deque())
                while held:
                    found, paths = held.popleft()
                    used.update(paths)
                    self.outcome(fmt, pool, directory, found, paths, False)
                    del found  # no local keeps the record while the next one is handed on
                    yield from _drain(self.events)
                left[directory] -= len(names)
                if not left[directory]:
                    _discard(pool)
                continue
            if directory not in uses:
                uses[directory] = (self.plan_uses(directory, by_group)
                                   if self.streaming and left[directory] > 1 else None)
            ctx = self.context(fmt.name, path=directory or None)
            lazy = self.lazy and _reads_headers(fmt)
            if lazy:
                ctx = self.context(fmt.name, path=directory or None, whole=True)
            read = fmt.inspect_group if self.header_only or lazy else fmt.read_group
            after = {name: left[directory] - i - 1 for i, name in enumerate(names)}
            for outcome in read(pool, names, ctx):
                paths = tuple(_join(directory, n) for n in outcome.files)
                used.update(paths)
                self.outcome(fmt, pool, directory, outcome, paths, lazy)
                # no local keeps the record while the next one is built
                anchor, files = outcome.anchor, outcome.files
                del outcome
                self.let_go(pool, anchor, files, after.get(anchor), uses[directory])
                yield from _drain(self.events)
            left[directory] -= len(names)
            if not left[directory]:  # done, even where its last anchors gave no outcome
                _discard(pool)
        groups = self.groups if only is None else {only: self.groups[only]}
        for directory, pool in groups.items():
            for name, entry in pool.items():
                if entry.path not in used:
                    owner = anchor_format(name)
                    if entry.nested_note:
                        reason = entry.nested_note
                    elif entry.path in self.reasons:
                        reason = self.reasons[entry.path]
                    elif owner is not None:
                        reason = owner.unused_anchor_reason(name)
                    else:
                        reason = _unmatched_reason(
                            name, directory in left or directory in self.built_early)
                    self.skip(self.entry_index[entry.path], Skipped(entry.path, reason))
        if only is None:
            self.groups.clear()
            self.used.clear()
        else:
            pool = self.groups.pop(only)
            _discard(pool)  # its records are built: the directory is done
            for entry in pool.values():
                self.entry_index.pop(entry.path, None)
                self.reasons.pop(entry.path, None)
                self.used.discard(entry.path)
            self.plans.pop(only, None)
            self.built.pop(only, None)
            if self.forget is not None:
                self.forget([entry.path for entry in pool.values()])
        yield from _drain(self.events)


_WALK_CONTAINERS: dict[str, Callable[[], Any]] = {
    "groups": dict, "anchors": dict, "entry_index": dict, "reasons": dict, "deferred": list,
    "plans": dict, "built_early": set, "used": set, "built": dict, "touched": list,
    "provisional": dict, "reopened": set}
"""The containers of a :class:`_Walk` made on first use, and what makes each."""


class _Provisional:
    """The outcomes of a directory built when the walk left it, in the order its read
    at the end gives them, and the decoded output they reserved."""

    __slots__ = ("charged", "outcomes")

    def __init__(self, charged: int, outcomes: dict[
            MultiFileFormat, deque[tuple[GroupOutcome, tuple[str, ...]]]]) -> None:
        self.charged = charged
        self.outcomes = outcomes


class _DirectoryPlan:
    """The records of a directory planned from its headers, and which of their files
    are still to come; records ready to build as soon as their last file passes."""

    __slots__ = ("records", "waiting", "missing", "needs", "uses", "ready")

    def __init__(self, records: dict[str, tuple[MultiFileFormat, frozenset[str]]],
                 waiting: dict[str, Entry]) -> None:
        self.records = records  # anchor -> (format, files it reads), not built yet
        self.waiting = waiting  # stand-ins for the files still to come, by name
        self.missing: dict[str, int] = {}  # anchor -> its files still to come
        self.needs: dict[str, list[str]] = {}  # file still to come -> anchors needing it
        self.uses: dict[str, int] = {}  # file -> records not built yet that read it
        self.ready: list[str] = []  # anchors whose files have all passed, in anchor order
        for anchor, (_, files) in records.items():
            for name in files:
                self.uses[name] = self.uses.get(name, 0) + 1
                if name in waiting:
                    self.needs.setdefault(name, []).append(anchor)
            self.missing[anchor] = sum(name in waiting for name in files)
            if not self.missing[anchor]:
                self.ready.append(anchor)

    def passed(self, name: str) -> None:
        """File ``name`` of the directory has passed (read, failed or skipped)."""
        self.waiting.pop(name, None)
        for anchor in self.needs.pop(name, ()):
            self.missing[anchor] -= 1
            if not self.missing[anchor]:
                self.ready.append(anchor)

    def built(self, anchor: str) -> None:
        self.ready.remove(anchor)
        _, files = self.records.pop(anchor)
        for name in files:
            self.uses[name] -= 1


class _Window(Mapping[str, Entry]):
    """The planned files of one record, as the pool its format reads: a look up of any
    other file of the directory (one there, or one still to come) is noted in
    ``missed``, and the record is then built at the directory's end."""

    __slots__ = ("pool", "names", "waiting", "missed")

    def __init__(self, pool: Mapping[str, Entry], names: frozenset[str],
                 waiting: Mapping[str, Entry]) -> None:
        self.pool = pool
        self.names = names
        self.waiting = waiting
        self.missed: list[str] = []

    def _outside(self, name: object) -> bool:
        if name in self.names:
            return False
        if name in self.pool or name in self.waiting:
            self.missed.append(str(name))
        return True

    def __getitem__(self, name: str) -> Entry:
        if self._outside(name):
            raise KeyError(name)
        return self.pool[name]

    def __contains__(self, name: object) -> bool:
        return not self._outside(name) and name in self.pool

    def __iter__(self) -> Iterator[str]:
        return iter([name for name in self.names if name in self.pool])

    def __len__(self) -> int:
        return sum(name in self.pool for name in self.names)


_OWN_COPY = 64 << 10
"""Bytes of a small entry held in memory that a directory built early copies out of
the block it shares with other entries (a header), so that the block can go."""


def _owning(entry: Entry) -> Entry | None:
    """``entry`` with its bytes in an object of their own, when it is small and they
    are a view of a shared block; else None."""
    if type(entry) is not Entry or not entry.in_memory or entry.size > _OWN_COPY:
        return None
    data = entry.read()
    if not isinstance(data, memoryview):
        return None
    own = Entry.from_bytes(entry.path, bytes(data))
    own.nested_note, own.detected = entry.nested_note, entry.detected
    return own


def _discard(pool: Mapping[str, Entry]) -> None:
    for entry in pool.values():
        entry.discard()


class _FileUses:
    """How many records still to be built read each file of a directory (a plan from
    the headers), counted down as the records come."""

    __slots__ = ("planned", "left")

    def __init__(self, planned: Mapping[str, tuple[str, ...]]) -> None:
        self.planned = planned
        self.left: dict[str, int] = {}
        for files in planned.values():
            for name in files:
                self.left[name] = self.left.get(name, 0) + 1

    def done(self, anchor: str, files: Sequence[str]) -> list[str]:
        """The files no record after ``anchor``'s needs, of those it read or planned to."""
        for name in self.planned.get(anchor, ()):
            self.left[name] -= 1
        return [name for name in dict.fromkeys((*self.planned.get(anchor, ()), *files))
                if self.left.get(name, 0) <= 0]


def _decode_entry(fmt: SingleFileFormat, item: Entry, ctx: DecodeContext) -> Record:
    """The record of one entry, or the part of it ``ctx.request`` asks for."""
    request = ctx.request
    if request is not None and fmt.windows:  # only the byte ranges of the part
        with ByteSource.open(item) as source:
            record: Record = _guarded(fmt.name, item.path,
                                      lambda: fmt.decode_part(source, ctx))
        return record
    if item.in_memory:  # bytes held: handed over as they are, without Entry.view's generator
        data = item.read()
        if type(data) is not bytes and fmt.takes_bytes:  # a file read into pooled memory
            data = bytes(data)
        if type(data) is bytes:
            # the bytes object itself: a decoder that needs bytes (an io.BytesIO, a parser
            # taking bytes) uses it without the copy a view would cost it
            record = _guarded(fmt.name, item.path, fmt.decode, data, ctx)
        else:
            held = memoryview(data)
            try:
                record = _guarded(fmt.name, item.path, lambda: fmt.decode(held, ctx))
            finally:
                _release_quietly(held)
    else:
        with item.view(prefault=fmt.prefault, as_bytes=fmt.takes_bytes) as view:
            under = view.obj  # a small file is read into bytes: those are handed over
            whole: bytes | memoryview = (under if type(under) is bytes
                                         and len(under) == view.nbytes else view)
            record = _guarded(fmt.name, item.path, lambda: fmt.decode(whole, ctx))
            del whole, under
    if request is not None:  # decoded whole: cut to the part asked for
        record = _guarded(fmt.name, item.path, lambda: request.apply(record))
    return record


# --------------------------------------------------------------------------- lazy records


def _reads_headers(fmt: SingleFileFormat | MultiFileFormat) -> bool:
    """True when the format reads a record's facts from its header alone: its records
    can be lazy. (The contract's default ``inspect`` decodes, so such a format's lazy
    read simply decodes.)"""
    if isinstance(fmt, SingleFileFormat):
        return type(fmt).inspect is not SingleFileFormat.inspect
    return type(fmt).inspect_group is not MultiFileFormat.inspect_group


def _stamp(path: Path) -> tuple[int, int, int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev


class _Kept:
    """What a lazy record keeps of one entry until its samples are decoded.

    A file on disk is kept by its path and identity (size, modification time,
    inode): it is read again at decode time, and a file changed in between is an
    error, not a record of other samples. Any other entry (bytes, a stream, an
    archive member) keeps its bytes: the upload they came from may be gone by then.
    """

    __slots__ = ("entry", "stamp", "__weakref__")

    def __init__(self, entry: Entry, stamp: tuple[int, int, int, int] | None) -> None:
        self.entry = entry
        self.stamp = stamp

    @classmethod
    def of(cls, entry: Entry) -> _Kept:
        disk = entry.disk_path
        if disk is not None:
            try:
                stamp = _stamp(disk)
            except OSError:
                pass  # unreadable now: the read of its bytes says why
            else:
                # a copy: the walk lets the entry itself go once its directory is done
                own = copy.copy(entry)
                own.release()
                return cls(own, stamp)
        data = entry.read()
        return cls(Entry.from_bytes(entry.path, data if isinstance(data, bytes)
                                    else bytes(data)), None)

    def check(self) -> Entry:
        """The entry to decode from.

        :raises SourceUnavailableError: the file on disk is gone or changed since its
            header was read.
        """
        if self.stamp is not None:
            disk = self.entry.disk_path
            assert disk is not None
            try:
                now = _stamp(disk)
            except OSError as exc:
                raise SourceUnavailableError(
                    f"the file is gone since its header was read (lazy record): {exc}",
                    path=self.entry.path) from exc
            if now != self.stamp:
                raise SourceUnavailableError(
                    f"the file changed since its header was read (lazy record: size "
                    f"{self.stamp[0]} bytes, now {now[0]}; modified since); read it again",
                    path=self.entry.path)
        return self.entry


def _decode_dropping(decode: Callable[[], Record]) -> Record:
    """``decode()``; an error it raises lets go of the decoder's locals (a lazy record
    keeps its error, and must not keep the bytes with it)."""
    try:
        return decode()
    except BaseException as exc:
        drop_frames(exc)
        raise


def _lazy(info: RecordInfo, request: ReadRequest | None,
          decode: Callable[[], Record]) -> Record:
    """A lazy record of the header facts ``info`` with the part ``request`` asks for.

    The part's facts come from the header (the channels chosen, each signal's window
    of samples); a window of a discontinuous record (EDF+D) depends on its data
    records' onsets, which only the samples give: that record is decoded now.

    :raises WindowError: a channel or window that does not fit the record.
    """
    decode = functools.partial(_decode_dropping, decode)
    if request is None:
        return LazyRecord.of(info, decode)
    labels = [s.label for s in info.signals]
    chosen = request.channel_indices(labels, info.name)
    if not request.windowed:
        return LazyRecord.of(info, decode, [(i, 0, info.signals[i].samples) for i in chosen])
    if info.format_detail.endswith("+D"):
        return decode()
    rates = [s.sample_rate for s in info.signals]
    ranges = request.sample_ranges(rates, [s.samples for s in info.signals], info.name)
    t0, t1 = request.seconds(max(rates))
    duration = max((s.samples / s.sample_rate for s in info.signals if s.sample_rate > 0),
                   default=0.0)
    parts = [(i, ranges[i][0], ranges[i][1] - ranges[i][0]) for i in chosen]
    return LazyRecord.of(info, decode, parts,
                         extras={"window": (t0, duration if t1 is None else t1)})


def _cut(outcome: GroupOutcome, request: ReadRequest) -> GroupOutcome:
    """A whole multi-file record cut to the part asked for (or the window's error)."""
    assert isinstance(outcome.record, Record)
    try:
        record = request.apply(outcome.record)
    except EcgIngestError as exc:
        return GroupOutcome(outcome.anchor, None, exc, outcome.files)
    return GroupOutcome(outcome.anchor, record, None, outcome.files)


class _Event:
    """One outcome of a walk (a plain class: a frozen dataclass pays a guarded
    ``__setattr__`` per field, per record)."""

    __slots__ = ("kind", "order", "value")

    def __init__(self, kind: str, order: int, value: Any) -> None:
        self.kind = kind  # "single", "multi" (records), "skipped", "error"
        self.order = order  # index of the entry in the walk (of the anchor, if multi-file)
        self.value = value


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def _deliver(record: Any, paths: tuple[str, ...]) -> Any:
    """A decoded record (or RecordInfo) as the result keeps it: its sources set and
    its tolerated deviations issued as one warning."""
    record = record if record.sources else record.replace(sources=paths)
    emit_warnings(record)  # points at the caller's line, whichever public way led here
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
        walk.add(entry, fmt, alone=True)
        return
    reason = skip_reason(entry)
    if reason is not None:
        walk.index += 1
        walk.skip(walk.index, Skipped(entry.path, reason))
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


def _anchor_path(source: Source) -> tuple[str, MultiFileFormat] | None:
    """A path on disk to a file that anchors a multi-file record (``100.hea``), as
    ``str(Path(source))`` names it (no Path is made: a read by path is mostly this)."""
    if not isinstance(source, (str, PurePath)) and (  # os.PathLike is a costly ABC check
            isinstance(source, (bytes, bytearray, memoryview))
            or not isinstance(source, os.PathLike)):
        return None
    text = os.fspath(source)
    fmt = anchor_format(os.path.basename(text))  # by name first: no status for other files
    if fmt is None or not os.path.isfile(text):
        return None
    return path_label(text), fmt


def _anchor_events(header: str, fmt: MultiFileFormat, walk: _Walk, budget: ByteBudget
                   ) -> Iterator[_Event]:
    """The outcomes of the record a header on disk anchors, read with the files of its
    directory."""
    pool = directory_pool(header, budget)
    walk.groups[""] = pool
    walk.anchors[""] = [(os.path.basename(header), fmt)]
    walk.entry_index = {name: i for i, name in enumerate(pool)}
    # the other files of the directory were never asked for: not "skipped"
    return (event for event in walk.finish() if event.kind != "skipped")


"""Shared by every upload read with the defaults (frozen: validated once, not per read)."""


def _check_limits(limits: Limits | None) -> Limits:
    limits = DEFAULT_LIMITS if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be an ecgingest.Limits, not {type(limits).__name__}")
    return limits


Progress = Callable[[int, str], None]
"""Called after each entry of an upload with the count so far and the entry's path."""


def _events(source: Source, *, strict: bool, limits: Limits, header_only: bool = False,
            progress: Progress | None = None, keep_unclaimed: int | None = None,
            request: ReadRequest | None = None, lazy: bool = False, streaming: bool = False
            ) -> Generator[_Event, None, None]:
    """The outcomes of one upload, each as soon as it is known.

    ``keep_unclaimed`` bounds the bytes of unclaimed archive entries (signal files)
    held until the records using them are built; the rest are read again when used.
    """
    budget = ByteBudget(limits, keep_unclaimed=keep_unclaimed)
    walk = _Walk(strict, limits, header_only=header_only, request=request, lazy=lazy,
                 streaming=streaming)
    anchor = _anchor_path(source)
    if anchor is not None:
        yield from _anchor_events(*anchor, walk, budget)
        return
    with open_upload(source, limits, budget) as upload:
        yield from _walk_upload(upload, walk, progress)


def _walk_upload(upload: Upload, walk: _Walk, progress: Progress | None
                 ) -> Generator[_Event, None, None]:
    """The outcomes of an opened upload (see :func:`_events`)."""
    if upload.single is not None:
        _read_single(upload, upload.single, walk)
        yield from _drain(walk.events)
        if not walk.waiting:  # decoded at once: nothing left for the end of the walk
            return
    else:
        if isinstance(upload, ListedUpload):
            if walk.streaming:
                walk.pending = upload.listing()  # directories complete before the end
            walk.forget = upload.forget
            walk.reload = upload.reload
            walk.reading_ahead = upload.reading_ahead
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
            if walk.early and isinstance(item, Entry):
                walk.moved(item.directory)
            if progress is not None:
                progress(walk.index, item.path)
            yield from _drain(walk.events)
            if walk.pending is not None:  # records built as their files pass
                yield from walk.advance(item)
    yield from walk.finish()


def _drain(events: deque[_Event]) -> Iterator[_Event]:
    while events:
        yield events.popleft()


def _collect(events: Iterator[_Event], strict: bool) -> tuple[
        list[Any], list[Skipped], list[EntryError]]:
    """Records in contract order (INGESTION.md §4), skipped entries, errors."""
    single: list[tuple[int, Any]] = []
    multi: list[tuple[int, Any]] = []
    skipped: list[tuple[int, Skipped]] = []
    errors: list[EntryError] = []
    for event in events:
        if event.kind == "single":
            single.append((event.order, event.value))
        elif event.kind == "multi":
            multi.append((event.order, event.value))
        elif event.kind == "skipped":
            skipped.append((event.order, event.value))
        else:
            errors.append(event.value)
    single.sort(key=lambda pair: pair[0])  # a file read with companions comes in late
    multi.sort(key=lambda pair: pair[0])
    skipped.sort(key=lambda pair: pair[0])
    ordered_skips = [s for _, s in skipped]
    if strict and ordered_skips:
        raise _skipped_error(ordered_skips)
    return ([record for _, record in single] + [record for _, record in multi], ordered_skips,
            errors)


def _outcomes(source: Source, *, strict: bool, limits: Limits,
              request: ReadRequest | None, lazy: bool) -> tuple[
        list[Any], list[Skipped], list[EntryError]]:
    """``_collect(_events(...))``, with an upload of one file read straight: most
    uploads are one file, with one outcome, which needs neither the generator nor
    the ordering of many outcomes."""
    if type(source) is bytes and not lazy and request is None:
        outcome = _bytes_outcome(source, strict, limits)
        if outcome is not None:
            return outcome
    else:
        anchor = _anchor_path(source)
        if anchor is not None:  # found once: _events would look for it again
            walk = _Walk(strict, limits, request=request, lazy=lazy)
            if walk.lazy:
                return _collect(_anchor_events(*anchor, walk, ByteBudget(limits)), strict)
            _read_anchored(*anchor, walk, ByteBudget(limits))
            return _single_outcome(walk.events, strict)
    walk = _Walk(strict, limits, request=request, lazy=lazy)
    with open_upload(source, limits, ByteBudget(limits)) as upload:
        if upload.single is None:
            return _collect(_walk_upload(upload, walk, None), strict)
        _read_single(upload, upload.single, walk)
        if walk.waiting:  # read with companions: at the end of the walk, as always
            return _collect(itertools.chain(_drain(walk.events), walk.finish()), strict)
    return _single_outcome(walk.events, strict)


def _read_anchored(header: str, fmt: MultiFileFormat, walk: _Walk, budget: ByteBudget
                   ) -> None:
    """The outcome of the record a header on disk anchors on ``walk.events``: what the
    end of its walk (:func:`_anchor_events`) gives a directory of one anchor read whole,
    without the bookkeeping of many (nor the skips of the directory's other files,
    which were never asked for)."""
    pool = directory_pool(header, budget)
    name = os.path.basename(header)
    walk.entry_index = {name: 0}
    for outcome in fmt.read_group(pool, [name], walk.context(fmt.name)):
        walk.outcome(fmt, pool, "", outcome, tuple(outcome.files), False)
        del outcome  # no local keeps the record while the pool goes
        _discard(pool)
    _discard(pool)


def _single_outcome(events: deque[_Event], strict: bool) -> tuple[
        list[Any], list[Skipped], list[EntryError]]:
    """``_collect`` of the outcomes of an upload of one file: most are one, which needs
    no ordering."""
    if len(events) != 1:
        return _collect(_drain(events), strict)
    event = events.popleft()
    if event.kind == "skipped":
        if strict:
            raise _skipped_error([event.value])
        return [], [event.value], []
    if event.kind == "error":
        return [], [], [event.value]
    return [event.value], [], []  # a record ("single" or "multi")


def _bytes_outcome(data: bytes, strict: bool, limits: Limits) -> tuple[
        list[Any], list[Skipped], list[EntryError]] | None:
    """The outcome of bytes that a single-file format claims, decoded whole: what the walk
    of their upload gives, without the upload, the entry and the walk made for them (the
    commonest read, where those cost as much as a small file's decode). None for bytes
    that are an archive or that no single-file format claims: the walk reads those."""
    if archive_kind(data) is not None:
        return None
    if len(data) > limits.max_entry_size:
        ByteBudget(limits).check_entry_size(BYTES_LABEL, len(data))
    fmt = detect(Probe.of_bytes(data, BYTES_ENTRY))
    if fmt is None:
        return None
    paths = (BYTES_ENTRY,)
    ctx = DecodeContext(fmt.name, name=BYTES_ENTRY, path=BYTES_ENTRY, strict=strict,
                        limits=limits)
    try:
        record = _guarded(fmt.name, BYTES_ENTRY, fmt.decode, data, ctx)
    except EcgIngestError as exc:
        if strict:
            raise
        drop_frames(exc)  # a kept error must not keep the decoder's data alive
        return [], [], [EntryError(paths, exc)]
    except NotARecord as declined:
        skipped = Skipped(BYTES_ENTRY, declined.reason)
    else:
        return [_deliver(record, paths)], [], []
    if strict:
        raise _skipped_error([skipped])
    return [], [skipped], []


def _skipped_error(skipped: list[Skipped]) -> SkippedEntriesError:
    return SkippedEntriesError(
        f"{len(skipped)} entries yielded no record (first: "
        f"{skipped[0].path!r}: {skipped[0].reason})", skipped=skipped)


def ingest(source: Source, *, overrides: Overrides | Mapping[str, Any] | None = None,
           strict: bool = False, limits: Limits | None = None,
           channels: str | int | Sequence[str | int] | None = None,
           start: float | None = None, stop: float | None = None,
           unit: str = "seconds", lazy: bool = False) -> IngestResult:
    """Decode every record of one upload (file, directory, archive, bytes or stream).

    Corrupt entries land in ``errors`` and unmatched ones in ``skipped``
    without stopping the others; ``strict=True`` raises on the first of
    either instead. Each record read with tolerated deviations also issues one
    :class:`~ecgingest.errors.EcgWarning`, pointing at the caller's line.

    :param source: a path (file, directory, archive, a WFDB ``.hea``), ``bytes`` /
        ``bytearray`` / ``memoryview``, a binary file object (seekable or not), or
        a list of paths forming one multi-volume archive.
    :param overrides: metadata fields (a mapping or :class:`~ecgingest.Overrides`)
        applied to every record; checked before any decoding.
    :param strict: raise on any deviation, unmatched entry or failed record
        instead of collecting them.
    :param limits: bounds on entries, sizes, expansion ratio and nesting
        (:class:`~ecgingest.Limits`; safe defaults when ``None``).
    :param channels: read only these signals, in this order: labels (as
        :meth:`Record.signal` takes them: stored, any case, or standard lead name)
        or indices; ``None`` for all. A record without one of them is an error
        (:class:`~ecgingest.errors.WindowError`).
    :param start: read only from here (seconds from the record start, or samples
        with ``unit="samples"``); ``None`` from the start.
    :param stop: read only up to here (exclusive); ``None`` to the end. A window
        past a record's end is a :class:`~ecgingest.errors.WindowError` for it.
    :param unit: ``"seconds"`` (default) or ``"samples"``: samples at the record's
        highest sample rate (see "Reading part of a record" in the docs).
    :param lazy: read only headers now; each record decodes its samples on first
        access to them (see "Lazy records" in the docs). A lazy read checks headers
        only: what only the samples show (a damaged sample section) raises its typed
        error at that access, and a file on disk changed in between raises
        :class:`~ecgingest.errors.SourceUnavailableError`.
    :returns: an :class:`IngestResult` with ``records`` (contract order),
        ``skipped`` and ``errors``.
    :raises ecgingest.errors.OverrideError: an override value is invalid.
    :raises ecgingest.errors.WindowError: the window is negative or empty (at once).
    :raises ecgingest.errors.LimitExceededError: the upload exceeds ``limits``.
    :raises ecgingest.errors.ArchiveError: the archive container is unreadable.
    :raises ecgingest.errors.EcgIngestError: with ``strict=True``, the first
        problem found (a :class:`~ecgingest.errors.SkippedEntriesError` for
        unmatched entries).
    :raises OSError: the path cannot be read.
    """
    return IngestResult(*_ingested(source, overrides, strict, limits, channels, start, stop,
                                   unit, lazy))


def _ingested(source: Source, overrides: Overrides | Mapping[str, Any] | None, strict: bool,
              limits: Limits | None, channels: str | int | Sequence[str | int] | None,
              start: float | None, stop: float | None, unit: str, lazy: bool) -> tuple[
        list[Any], list[Skipped], list[EntryError]]:
    """What :func:`ingest` puts in its result: records (overrides applied), skipped
    entries, errors (:func:`read` takes them without the result)."""
    checked = Overrides.coerce(overrides)  # validated before any decoding
    limits = _check_limits(limits)
    request = ReadRequest.of(channels, start, stop, unit)
    records, skipped, errors = _outcomes(source, strict=strict, limits=limits,
                                         request=request, lazy=lazy)
    if checked:
        records = [checked.apply(r) for r in records]
    return records, skipped, errors


_ITER_KEEP_UNCLAIMED = 16 << 20
"""Bytes of unclaimed archive entries an iteration holds before the records using
them are built (instead of the walker's larger default); the rest are extracted
again when their record is built. Where the upload lists its files, the bytes of a
record's files count only until the record is built."""


class RecordIterator(Iterator[Record]):
    """The records of one upload, each as soon as it is complete.

    Single-file records come as their entries are read; multi-file (WFDB)
    records as soon as the files they read have passed where the upload names
    its files up front (a ZIP, a directory on disk), else once the walk has
    seen every entry, one directory at a time. So a service can process a
    large upload while holding one record at a time.
    ``skipped`` and ``errors`` grow as the walk goes and are complete once
    the iteration ends. Use it as a context manager (or call :meth:`close`)
    to stop early and release the upload.
    """

    def __init__(self, source: Source, *, overrides: Overrides | None, strict: bool,
                 limits: Limits, request: ReadRequest | None = None,
                 lazy: bool = False) -> None:
        self.skipped: list[Skipped] = []
        self.errors: list[EntryError] = []
        self._overrides = overrides
        self._strict = strict
        self._events = _events(source, strict=strict, limits=limits,
                               keep_unclaimed=_ITER_KEEP_UNCLAIMED, request=request,
                               lazy=lazy, streaming=True)

    def __iter__(self) -> RecordIterator:
        return self

    def __next__(self) -> Record:
        for event in self._events:
            if event.kind == "skipped":
                self.skipped.append(event.value)
            elif event.kind == "error":
                self.errors.append(event.value)
            else:
                record: Record = event.value
                return self._overrides.apply(record) if self._overrides else record
        if self._strict and self.skipped:
            self.skipped.sort(key=lambda s: s.path)
            raise _skipped_error(self.skipped)
        raise StopIteration

    def close(self) -> None:
        """Stop the walk and release the upload (files, archive handles)."""
        self._events.close()

    def __enter__(self) -> RecordIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_records(source: Source, *, overrides: Overrides | Mapping[str, Any] | None = None,
                 strict: bool = False, limits: Limits | None = None,
                 channels: str | int | Sequence[str | int] | None = None,
                 start: float | None = None, stop: float | None = None,
                 unit: str = "seconds", lazy: bool = False) -> RecordIterator:
    """Records of one upload as each is complete, without keeping the others.

    Same inputs and outcomes (records, skipped entries, errors) as :func:`ingest`,
    in completion order instead of the contract order: single-file records as
    their entries are read; a multi-file (WFDB) record as soon as the files it
    reads have passed, where the upload names its files before they are read (a
    ZIP's central directory, a directory on disk), else (TAR, gzip streams) once
    the walk has seen every entry. Memory is bounded by about the largest
    record, not the upload, as long as the caller drops each record.

    :param source: as for :func:`ingest`.
    :param overrides: as for :func:`ingest`.
    :param strict: as for :func:`ingest`.
    :param limits: as for :func:`ingest`.
    :param channels: as for :func:`ingest`.
    :param start: as for :func:`ingest`.
    :param stop: as for :func:`ingest`.
    :param unit: as for :func:`ingest`.
    :param lazy: as for :func:`ingest`: records whose samples are decoded on first
        access (a lazy record of an archive member keeps that member's bytes).
    :returns: a :class:`RecordIterator` (also a context manager); its ``skipped``
        and ``errors`` are complete once the iteration ends.
    :raises ecgingest.errors.OverrideError: an override value is invalid (at once).
    :raises ecgingest.errors.EcgIngestError: while iterating, the errors
        :func:`ingest` raises.

    >>> for record in ecgingest.iter_records("upload.zip"):   # doctest: +SKIP
    ...     store(record)
    """
    checked = Overrides.coerce(overrides)
    request = ReadRequest.of(channels, start, stop, unit)
    return RecordIterator(source, overrides=checked, strict=strict,
                          limits=_check_limits(limits), request=request, lazy=lazy)


def inspect_upload(source: Source, *, strict: bool = False, limits: Limits | None = None,
                   progress: Progress | None = None
                   ) -> tuple[list[RecordInfo], list[Skipped], list[EntryError]]:
    """Header facts of every record of an upload, without decoding samples.

    What ``ecgingest inspect`` prints: the same records, skips and errors as
    :func:`ingest` where headers tell (a damaged sample section is found only
    by decoding).

    :param source: as for :func:`ingest`.
    :param strict: as for :func:`ingest`.
    :param limits: as for :func:`ingest`.
    :param progress: called after each entry of the walk.
    :returns: ``(infos, skipped, errors)``: a :class:`~ecgingest.record.RecordInfo`
        per record, the unmatched entries and the failed ones.
    :raises ecgingest.errors.EcgIngestError: as :func:`ingest` does.
    """
    # headers need no signal file's bytes: none is held, and none is read again
    events = _events(source, strict=strict, limits=_check_limits(limits), header_only=True,
                     progress=progress, keep_unclaimed=0)
    return _collect(events, strict)


def read(source: Source, *, overrides: Overrides | Mapping[str, Any] | None = None,
         strict: bool = False, limits: Limits | None = None,
         channels: str | int | Sequence[str | int] | None = None,
         start: float | None = None, stop: float | None = None,
         unit: str = "seconds", lazy: bool = False) -> list[Record]:
    """The records of one upload: :func:`ingest` for callers who want records or an error.

    >>> import ecgingest, ecgingest.demo
    >>> [record] = ecgingest.read(ecgingest.demo.path() / "100_3chan.hea")
    >>> record.labels
    ['I', 'II', 'III']

    :param source: a path (file, directory, archive, a WFDB ``.hea``), ``bytes`` /
        ``bytearray`` / ``memoryview``, a binary file object (seekable or not), or
        a list of paths forming one multi-volume archive.
    :param overrides: metadata fields (a mapping or :class:`~ecgingest.Overrides`)
        applied to every record.
    :param strict: raise on any deviation, unmatched entry or failed record.
    :param limits: bounds on the upload (:class:`~ecgingest.Limits`).
    :param channels: as for :func:`ingest` (labels or indices).
    :param start: as for :func:`ingest` (seconds, or samples with ``unit``).
    :param stop: as for :func:`ingest` (exclusive).
    :param unit: as for :func:`ingest`: ``"seconds"`` or ``"samples"``.
    :param lazy: as for :func:`ingest`: headers now, samples on first access.
    :returns: the records, in the contract order (possibly with some entries
        skipped or failed: use :func:`ingest` to see those).
    :raises ecgingest.errors.UnsupportedFormatError: no entry is a record of a
        known format (``tried`` names the formats).
    :raises ecgingest.errors.EcgIngestError: no record could be read: the first
        entry's error (truncated, corrupt, missing file, …); with ``strict=True``,
        the first problem of any kind.
    :raises OSError: the path cannot be read.
    """
    records, skipped, errors = _ingested(source, overrides, strict, limits, channels, start,
                                         stop, unit, lazy)
    if not records:
        if errors:
            raise errors[0].error
        if skipped:
            first = skipped[0]
            raise UnsupportedFormatError(
                f"no record found: {len(skipped)} entries were skipped "
                f"(first: {first.path!r}: {first.reason})", tried=_tried(), path=first.path)
        raise UnsupportedFormatError("no record found: the upload holds no files",
                                     tried=_tried())
    return records
