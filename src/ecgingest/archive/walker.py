"""The walk of one archive: names, limits, links, what is read and archives inside archives.

Every reader (libarchive, the ZIP, 7-Zip and RAR 4 fallbacks) classifies each
entry through :class:`Walker`, hands it the entry's bytes as an
:class:`EntryBytes` and accounts the bytes it produces there, so limits, name
rules and the decision what to read are the same whatever library decodes.

What is read: a look at an entry's first bytes decides (archive magic, then
the sniffers, which read at most :data:`~ecgingest.formats._base.PROBE_BYTES`
and usually a few hundred bytes; the entry is decompressed only that far). An
entry a single-file format claims (or an archive inside the archive) is read
in full at once. An entry nothing claims is read in full at once only while
it is small (:data:`SMALL_ENTRY`, its bytes were decompressed anyway) and the
walk has handed out few such bytes (:data:`KEEP_UNCLAIMED`); any other is
handed out deferred (:meth:`Entry.deferred <ecgingest.sources.Entry.deferred>`):
its first bytes, and a loader that reads it in full only if a multi-file
record (a WFDB header of its directory, perhaps later in the archive) uses it.
The loader walks the archive a second time and extracts just the entries
asked for; a second walk still open goes on forward, so entries asked for in
archive order cost one extra pass in all. An entry nothing uses is never
decompressed in full, and limits apply to every entry read in full.

Read-ahead threads (:class:`~.libarchive.ReadAhead`) read in advance only
what :meth:`Walker.reads_in_full` says this walk reads in full anyway.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import numpy.typing as npt

from .._memory import Arena, aligned_empty
from ..detect import anchor_format, detect, probe_of
from ..errors import ArchiveError, EcgIngestError, LimitExceededError, UnsafeEntryError
from ..formats._base import Probe, SingleFileFormat
from ..limits import ByteBudget, Limits
from ..sources import Entry, Failed, Skipped, normalise_entry_name
from .blobs import Blob
from .entrybytes import EntryBytes
from .kinds import HEAD_BYTES, KIND_NAMES, archive_kind
from .libarchive import ReadAhead, walk_libarchive
from .listing import Listing, zip_listing
from .pipeline import DecompressingFeed
from .rar4 import walk_rar4
from .sevenzip import walk_7z_fallback

__all__ = ["Walker", "walk_kind", "MAX_DEPTH", "SMALL_ENTRY", "KEEP_UNCLAIMED", "DEFERRED_HEAD"]

MAX_DEPTH = 32
"""Archives inside archives opened at most, whatever ``Limits.max_nesting`` says
(deeper ones are reported like those beyond the limit: never a RecursionError)."""


SMALL_ENTRY = 1 << 20
"""Entries up to this size that no format claims are read in full at once while
:data:`KEEP_UNCLAIMED` allows: a decompressor produces them in one or a few blocks
anyway (libarchive's ZIP reader inflates 256 KiB at a time), so a later second pass
would cost a second decompression for nothing."""
KEEP_UNCLAIMED = 256 << 20
"""Bytes of unclaimed entries one walk hands out in memory; beyond, every unclaimed
entry is passed over after its first bytes and read again only if a record uses it."""
COPY_OUT = 64 << 10
"""Entries up to this size leave the arena (a copy) in walks that bound what they hold."""
DEFERRED_HEAD = 4096
"""First bytes a passed-over entry keeps (detection and skip reasons are settled when
it is passed over; a later, longer look reads it again)."""


class SharedArena(Arena):
    """The walk's arena, shared with its read-ahead threads (one lock per buffer): one
    block in use whatever reads the entries, as without threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def empty(self, n: int, dtype: npt.DTypeLike = np.uint8) -> np.ndarray:
        with self._lock:
            return super().empty(n, dtype)


class OwnMemory(SharedArena):
    """Entry buffers of their own, for walks that bound what they hold (``inspect``,
    ``iter_records``): a 2 MiB block shared by the entries of several records would
    stay alive while any of them does, several times the bound."""

    def empty(self, n: int, dtype: npt.DTypeLike = np.uint8) -> np.ndarray:
        return aligned_empty(n, dtype)


class Walker:
    """State of the walk of one archive: limits, names seen, links, nesting, second passes.

    ``kind`` and ``blob`` let the walker read the archive again for deferred
    entries; without them (or in a second pass) every entry is read in full.
    """

    def __init__(self, label: str, limits: Limits, budget: ByteBudget, depth: int,
                 prefix: str, *, kind: str | None = None, blob: Blob | None = None) -> None:
        self.label = label
        self.limits = limits
        self.budget = budget
        self.depth = depth
        self.prefix = prefix
        self.kind = kind
        self.blob = blob
        self.links: set[str] = set()
        self.names: dict[str, str] = {}  # normalised path -> the raw name that first had it
        # with a listing taken before the walk: which of its paths have come (the names
        # then keep only raw names unlike their path, and paths the listing does not name)
        self.named: Listing | None = None
        self.came: np.ndarray | None = None
        # entry bytes: all released when the upload is done
        self.arena = SharedArena() if budget.keep_unclaimed is None else OwnMemory()
        self.count = 0  # entry headers classified so far (a stable index across passes)
        self.kept = 0  # bytes of unclaimed entries handed out in memory
        self.kept_paths: dict[str, int] = {}  # their paths and sizes, while not forgotten
        self.kept_at: dict[str, int] = {}  # their indices in the walk (to read them again)
        self.listed = False
        """True once the walk's listing was taken: its reader knows when a directory is
        complete, and a walk that bounds what it holds then holds about one record."""
        self.read_aheads: list[ReadAhead] = []
        """Read-ahead threads of this walk and the archives inside it (stopped by close)."""
        self.sevenzip_from: int | None = None
        """Index from which libarchive handed a 7-Zip archive to the liblzma path."""
        # second passes
        self.target: int | None = None  # set on a fetching walker: the index it extracts
        self.fetched: bytes | memoryview | Failed | None = None
        self._fetch_path = ""
        self._counted = 0
        self._fetcher: _Fetcher | None = None

    def close(self) -> None:
        """End a second pass still open (its reader and file) and stop the walk's
        read-ahead threads: the upload is done."""
        for read_ahead in list(self.read_aheads):
            read_ahead.close()
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None

    def walk(self) -> Iterator[Entry | Skipped | Failed]:
        assert self.kind is not None and self.blob is not None
        return walk_kind(self.kind, self.blob, self)

    def listing(self) -> Listing | None:
        """The files this walk yields, by directory, before any is read (ZIP), or None."""
        if self.kind == "zip" and self.blob is not None and self.blob.random_access:
            found = zip_listing(self.blob)
            self.listed = found is not None
            if found is not None and self.count == 0:
                self.named, self.came = found, np.zeros(len(found), dtype=bool)
            return found
        return None

    def forget(self, paths: Iterable[str]) -> None:
        """Entries handed out in memory that the upload let go: their bytes no longer
        count against :data:`KEEP_UNCLAIMED` (or the walk's bound)."""
        for path in paths:
            self.kept -= self.kept_paths.pop(path, 0)
            self.kept_at.pop(path, None)

    def waits_ahead(self) -> bool:
        """Whether the walk is about to wait for bytes decompressed on another thread
        (it has taken most of what was read ahead of it)."""
        return any(isinstance(ahead, DecompressingFeed) and ahead.behind()
                   for ahead in self.read_aheads)

    def reload(self, entry: Entry) -> Entry | None:
        """``entry`` (one this walk handed out in memory) as an entry read again from the
        archive when used, or None when it cannot be."""
        index = self.kept_at.get(entry.path)
        if index is None or not entry.in_memory:
            return None
        path, size = entry.path, entry.size
        # no head kept: the entry was used, and a look at it again is rare. A partial of
        # the function, not a closure or a bound method (a third of the objects for the
        # collector): each file of a directory built early holds one
        return Entry.deferred(path, size, b"",
                              functools.partial(Walker._load, self, index, path, size))

    # -- names -------------------------------------------------------------
    def classify(self, raw: str, *, is_dir: bool, link: str | None,
                 other: bool) -> Skipped | Failed | str | None:
        """Normalised path of a regular file, a report (Skipped, or Failed for a name an
        earlier entry already had), or None (a directory; in a second pass, any entry
        but the one asked for)."""
        self.count += 1
        if self.target is not None:
            return self._fetch_path if self.count == self.target else None
        shown = self.prefix + raw
        self.budget.add_entry(shown)
        if is_dir:
            return None
        try:
            path = normalise_entry_name(raw)
        except UnsafeEntryError as exc:
            return Skipped(shown, exc.message)
        if link is not None:
            self.links.add(path)
            return Skipped(shown, f"{link} (links are never followed)")
        if other:
            return Skipped(shown, "not a regular file (device, FIFO or socket)")
        if self.links:
            parts = path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in self.links:
                    return Skipped(shown, "path passes through a link entry of the archive "
                                          "(links are never followed)")
        first = self._first_raw(path, raw)
        if first is not None:
            # The same name twice (``a/100.dat`` and ``a//100.dat``, or a ZIP member
            # written twice): which one a record means is unknown, so say so.
            same = "" if first == raw else f" ({first!r} and {raw!r} normalise alike)"
            return Failed(shown, UnsafeEntryError(
                f"a second entry named {self.prefix + path!r}{same}; only the first one "
                "is read", path=shown))
        return self.prefix + path

    def _first_raw(self, path: str, raw: str) -> str | None:
        """The raw name of an earlier entry with the normalised ``path``, or None (and
        ``path`` is taken, its raw name ``raw``)."""
        at = self.named.named(path) if self.named is not None else None
        if at is None or self.came is None:
            first = self.names.get(path)
            if first is None:
                self.names[path] = raw
            return first
        if self.came[at]:
            return self.names.get(path, path)
        self.came[at] = True
        if raw != path:
            self.names[path] = raw
        return None

    # -- sizes -------------------------------------------------------------
    def check_growth(self, path: str, produced: int, compressed: int | None) -> None:
        """Per-entry size and expansion ratio, checked as blocks arrive (fatal)."""
        self.budget.check_entry_size(path, produced)
        if compressed is not None and produced > self.limits.ratio_grace:
            ratio = produced / max(1, compressed)
            if ratio > self.limits.max_ratio:
                raise LimitExceededError(
                    f"entry expands more than {self.limits.max_ratio:g}:1 (a decompression "
                    f"bomb?); raise Limits.max_ratio or Limits.ratio_grace to read it",
                    limit="max_ratio", value=self.limits.max_ratio, path=path)

    def grew(self, path: str, produced: int, compressed: int | None, added: int) -> None:
        """Account ``added`` new bytes of an entry now ``produced`` long (limits are fatal)."""
        self.check_growth(path, produced, compressed)
        if self.target is not None:  # a second pass: the first counted the entry's head
            added = max(0, produced - max(produced - added, self._counted))
        self.budget.add_bytes(path, added)

    # -- what is read --------------------------------------------------------
    def take(self, path: str, data: EntryBytes) -> Iterator[Entry | Skipped | Failed]:
        """Read the entry a reader stands on as much as needed, and yield what it gives."""
        if self.target is not None:  # a second pass: the entry asked for, in full
            failed = data.fill(None)
            # handed over: this pass waits here, and must not keep the bytes alive
            self.fetched = failed if failed is not None else data.hand_over()
            yield Skipped(path, "")  # hands control back to the fetcher
            return
        index = self.count
        whole = data.reads_whole and self._whole_at_once(data.declared)
        failed = data.fill(HEAD_BYTES if self.can_defer and not whole else None)
        # an entry the look read whole is kept as it is, unless the walk bounds what it
        # holds (inspect, iter_records): then a signal file beyond the bound is let go
        bounded = (self.budget.keep_unclaimed is not None and self.can_defer
                   and anchor_format(path.rsplit("/", 1)[-1]) is None)
        detected: tuple[SingleFileFormat | None] | None = None  # what detection found
        if (failed is None and (bounded or whole or not data.complete)
                and data.declared is not None):
            size = data.declared
            detected, failed = self._wanted_now(path, size, data)
            wanted = detected is None or detected[0] is not None
            if (failed is None and not wanted and size <= SMALL_ENTRY
                    and self.kept + size <= self.keep_limit):
                failed = data.fill(None)  # small: its bytes were decompressed already
                kept = len(data.held())
                self.kept += kept
                self.kept_paths[path] = self.kept_paths.get(path, 0) + kept
                self.kept_at[path] = index
            elif failed is None and not wanted:
                held = data.held()  # what the look read (and the budget counted)
                head, counted = bytes(held[:DEFERRED_HEAD]), len(held)
                failed = data.skip_rest()
                if failed is None:
                    passed = Entry.deferred(path, size, head,
                                            lambda: self._load(index, path, counted))
                    passed.detected = detected
                    yield passed
                    return
        if failed is None and not data.complete:
            failed = data.fill(None)
        if failed is not None:
            yield failed
            return
        if detected is not None and len(data.held()) != data.declared:
            detected = None  # detection's look was at another size: the entry's is looked at
        if self.budget.keep_unclaimed is None:
            yield from self.finish_entry(path, data.held(), detected)
            return
        # a walk that bounds what it holds: the entry's bytes are the entry's alone (no
        # frame of the walk keeps them while the entry waits or after it is let go)
        held = data.hand_over()
        if len(held) <= COPY_OUT:
            # a small entry that may wait for the walk's end (a header) must not pin a
            # shared arena block, or a bounded walk holds every block it touched
            held = bytes(held)
        entry = Entry.from_bytes(path, held)
        del held
        yield from self.nested(entry, detected)

    def reads_in_full(self, size: int, ahead: int) -> bool:
        """Whether :meth:`take` reads an entry of declared ``size`` in full whatever
        detection decides, when ``ahead`` bytes of entries before it are still to be
        taken (each of them counted as kept): reading it ahead of the walk then costs
        nothing the walk would not spend."""
        if size < HEAD_BYTES or not self.can_defer:
            return True  # the first look reads it whole
        return size <= SMALL_ENTRY and self.kept + ahead + size <= self.keep_limit

    def _whole_at_once(self, size: int | None) -> bool:
        """Whether an entry of declared ``size`` is read in full at once rather than a
        look at its head first (detection then looks at all of it): it is read in full
        whatever detection decides, and no limit can stop it part way (none counts the
        compressed bytes below ``Limits.ratio_grace``; the entry and the upload stay
        within their sizes), so one read shows what the look and the rest showed."""
        if size is None or size < HEAD_BYTES or not self.can_defer:
            return False  # (a smaller one: the look reads it whole, and nothing detects it)
        return self.no_limit_stops(size) and self.reads_in_full(size, 0)

    def no_limit_stops(self, size: int) -> bool:
        """Whether no limit can stop an entry of declared ``size`` (a byte more at most)
        part way: none counts its compressed bytes (below ``Limits.ratio_grace``), and
        it stays within the entry's size and the upload's total. Counting its bytes at
        once is then the same as counting them as they arrive."""
        limits = self.limits
        return (size < limits.ratio_grace and size < limits.max_entry_size
                and self.budget.total + size < limits.max_total_size)

    @property
    def keep_limit(self) -> int:
        keep = self.budget.keep_unclaimed
        return KEEP_UNCLAIMED if keep is None else keep

    @property
    def can_defer(self) -> bool:
        return self.kind is not None and self.blob is not None

    def _wanted_now(self, path: str, size: int, data: EntryBytes
                    ) -> tuple[tuple[SingleFileFormat | None] | None, Failed | None]:
        """Whether an entry must be read in full now: it is an archive to open (None),
        or a format claims it (``(format,)``: what content detection found, None
        claiming it, is carried on the entry). The sniffers' look decides: the entry
        is decompressed only as far as they read (at most PROBE_BYTES), which is what
        the entry keeps."""
        if archive_kind(bytes(data.held()[:HEAD_BYTES])) is not None:
            return None, None
        failure: list[Failed] = []

        def read_head(n: int) -> bytes:
            if not failure:
                failed = data.fill(n)
                if failed is not None:
                    failure.append(failed)
            return bytes(data.held()[:n])

        claimed = detect(Probe(path.rsplit("/", 1)[-1], size, read_head))
        return (claimed,), failure[0] if failure else None

    def _load(self, index: int, path: str, counted: int) -> bytes | memoryview:
        """All bytes of entry ``index`` (a deferred one), from a second pass."""
        fetcher = self._fetcher
        mode = self._fetch_mode(index)
        if fetcher is None or fetcher.walker.count >= index or fetcher.mode != mode:
            if fetcher is not None:
                fetcher.close()
            fetcher = self._fetcher = _Fetcher(self, mode)
        try:
            outcome = fetcher.get(index, path, counted)
        except BaseException:
            fetcher.close()
            self._fetcher = None
            raise
        if isinstance(outcome, Failed):
            raise outcome.error
        return outcome

    def _fetch_mode(self, index: int) -> str:
        if self.sevenzip_from is not None and index > self.sevenzip_from:
            return "7z-liblzma"
        return self.kind or ""

    # -- nesting -----------------------------------------------------------
    def finish_entry(self, path: str, data: bytes | memoryview,
                     detected: tuple[SingleFileFormat | None] | None = None
                     ) -> Iterator[Entry | Skipped | Failed]:
        """Yield a complete entry, or open it as a nested archive when allowed
        (``detected``: what content detection found of a look at its declared size)."""
        yield from self.nested(Entry.from_bytes(path, data), detected)

    def nested(self, entry: Entry, detected: tuple[SingleFileFormat | None] | None = None
               ) -> Iterator[Entry | Skipped | Failed]:
        """Yield ``entry``, or open it as a nested archive when allowed (``detected``:
        what :meth:`_wanted_now` found, which it finds only for bytes without archive
        magic)."""
        path = entry.path
        if detected is not None:
            # detection looked at these very bytes, after their head was found to hold
            # no archive magic (:meth:`_wanted_now`): the entry is no archive to open
            entry.detected = detected
            yield entry
            return
        kind = archive_kind(entry.head(HEAD_BYTES))
        if kind is None:
            yield entry
            return
        if entry.detected is None:
            entry.detected = (detect(probe_of(entry)),)
        if entry.detected[0] is not None:
            yield entry
            return
        what = KIND_NAMES[kind]
        if self.depth >= min(self.limits.max_nesting, MAX_DEPTH):
            # Still offered as data: a WFDB signal file may start with archive magic.
            entry.nested_note = (
                f"{what} archive inside the archive (not opened; pass "
                f"Limits(max_nesting={self.depth + 1}) to read it)"
                if self.depth < MAX_DEPTH else
                f"{what} archive nested more than {MAX_DEPTH} deep (not opened)")
            yield entry
            return
        disk = entry.disk_path
        blob = (Blob(path, path=str(disk)) if disk is not None
                else Blob(path, data=bytes(entry.read())))
        inner = Walker(path, self.limits, self.budget, self.depth + 1, path + "/",
                       kind=kind, blob=blob)
        inner.read_aheads = self.read_aheads  # stopped with the outer walk
        items = inner.walk()
        try:
            first = next(items, None)
        except ArchiveError as exc:  # magic bytes only: it does not open, so it is data
            entry.nested_note = (f"starts like a {what} archive but does not open as one "
                                 f"({exc.message}) and matches no format")
            yield entry
            return
        except LimitExceededError:
            raise
        except EcgIngestError as exc:
            yield Failed(path, exc)
            return
        if first is None:
            yield Skipped(path, f"{what} archive inside the archive holds no files")
            return
        yield first
        try:
            yield from items
        except LimitExceededError:
            raise  # budget-wide limits stop the whole upload
        except EcgIngestError as exc:  # a broken inner archive fails only itself
            yield Failed(exc.path or path, exc)


class _Fetcher:
    """A second pass over an archive that extracts entries asked for, moving forward."""

    def __init__(self, origin: Walker, mode: str) -> None:
        self.mode = mode
        self.walker = Walker(origin.label, origin.limits, origin.budget, origin.depth,
                             origin.prefix, kind=origin.kind, blob=origin.blob)
        self.walker.arena = origin.arena
        self.walker.links = origin.links
        self.walker.sevenzip_from = origin.sevenzip_from
        self.walker.target = 0
        assert origin.kind is not None and origin.blob is not None
        self.items = walk_kind(mode, origin.blob, self.walker)

    def get(self, index: int, path: str, counted: int) -> bytes | memoryview | Failed:
        walker = self.walker
        walker.target = index
        walker._fetch_path = path
        walker._counted = counted
        walker.fetched = None
        for item in self.items:
            if walker.fetched is not None:
                outcome, walker.fetched = walker.fetched, None
                return outcome
            if isinstance(item, Failed) and walker.count == index:  # its header is damaged
                return item
        raise ArchiveError("the entry could not be found again in the archive (was it "
                           "changed while it was read?)", path=path)

    def close(self) -> None:
        close: Callable[[], None] | None = getattr(self.items, "close", None)
        if close is not None:
            close()


def walk_kind(kind: str, blob: Blob, walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    if kind == "rar4":
        yield from walk_rar4(blob, walker)
    elif kind == "7z-liblzma":  # a second pass over a 7-Zip archive libarchive cannot decode
        yield from walk_7z_fallback(blob, walker, 0, None, Failed(walker.label, ArchiveError(
            "the 7-Zip header cannot be read again", path=walker.label), fatal=True))
    else:
        yield from walk_libarchive(kind, blob, walker)
