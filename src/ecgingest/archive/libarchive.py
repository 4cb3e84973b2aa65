"""Reading archives through libarchive, every status (warnings included) checked.

Large archives are read ahead on a second thread (:class:`ReadAhead`):
libarchive inflates the next entries, with the GIL released, while the walk
and the decoders work on the ones before. A compressed TAR, one stream, is
decompressed on a second thread instead (:class:`~.pipeline.DecompressingFeed`)
and parsed on the walk's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as _np

from .._ext import archive_feed
from .._memory import Arena
from ..errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..sources import Entry, Failed, Skipped
from . import _libarchive as _la
from .blobs import BLOCK, Blob, Callbacks
from .kinds import KIND_NAMES
from .pipeline import DecompressingFeed
from .sevenzip import walk_7z_fallback
from .zip import ZipFallback, central_directory_at

if TYPE_CHECKING:
    from .entrybytes import EntryBytes
    from .walker import Walker

__all__ = ["walk_libarchive", "LibarchiveBytes", "ReadAhead", "READ_AHEAD_FROM",
           "READ_AHEAD_BYTES", "READ_AHEAD_BOUNDED", "READ_AHEAD_ENTRIES", "READ_AHEAD_LANES"]


_HEADER_FUNCTIONS = tuple(
    ctypes.cast(function, ctypes.c_void_p).value or 0
    for function in (_la.read_next_header, _la.entry_pathname_utf8, _la.entry_filetype,
                     _la.entry_hardlink, _la.entry_size, _la.entry_size_is_set))
"""libarchive's functions :func:`archive_feed.next_header` calls for each entry header."""
_READ_DATA = ctypes.cast(_la.read_data, ctypes.c_void_p).value or 0
"""``archive_read_data``, called by :func:`archive_feed.read_fully`."""


def _decode_name(entry_p: ctypes.c_void_p, index: int) -> str:
    """The entry name as text, independent of the process locale (UTF-8 first)."""
    raw_utf8 = _la.entry_pathname_utf8(entry_p)
    if raw_utf8 is not None:
        return raw_utf8.decode("utf-8", "replace")
    try:
        name = _la.entry_pathname_w(entry_p)
    except (ValueError, UnicodeError):
        name = None
    if name is None:
        raw = _la.entry_pathname(entry_p)
        if raw is None:
            return f"<unnamed entry {index}>"
        name = raw.decode("utf-8", "replace")
    return name


def walk_libarchive(kind: str, blob: Blob, walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    a = _la.read_new()
    if not a:
        raise ArchiveError("libarchive could not allocate a reader", path=walker.label)
    try:
        yield from _walk_open_archive(a, kind, blob, walker)
    finally:
        _la.read_free(a)


class _Memory:
    """Keeps the bytes libarchive reads in place (``archive_read_open_memory2``) alive."""

    def __init__(self, data: bytes) -> None:
        self.pointer = ctypes.c_char_p(data)  # points into ``data`` itself: no copy
        self.address = ctypes.cast(self.pointer, ctypes.c_void_p).value
        self.data = data


def _open(a: int, kind: str, blob: Blob, label: str, feed: DecompressingFeed | None = None
          ) -> Callbacks | _Memory | None:
    """Open reader ``a`` on the blob (what feeds it and must live as long, if anything),
    or on the decompressed stream of ``feed``."""
    fmt = "rar" if kind == "rar4" else "tar" if kind.startswith("tar") else kind
    callbacks: Callbacks | None = None
    memory: _Memory | None = None
    with _la.utf8_names:
        if feed is None:  # (a feed's bytes went through every filter: its reader bids on
            _la.read_support_filter_all(a)  # none, which would read ahead of the TAR reader)
        _la.FORMAT_SUPPORT[fmt](a)
        if feed is not None:
            _la.read_set_callback_data(a, feed.client_data)
            _la.read_set_read_callback(a, feed.read_cb)
            status = _la.read_open1(a)
        elif blob.volumes is not None:
            names = (ctypes.c_char_p * (len(blob.volumes) + 1))(
                *[os.fsencode(v) for v in blob.volumes], None)
            status = _la.read_open_filenames(a, names, BLOCK)
        elif blob.path is not None:
            status = _la.read_open_filename(a, os.fsencode(blob.path), BLOCK)
        elif blob.data is not None:
            # read in place, in 64 KiB blocks (the raw-byte counter behind the expansion
            # ratio advances as an entry is decompressed), with no Python in the loop
            memory = _Memory(blob.data)
            status = _la.read_open_memory2(a, memory.address, len(blob.data), BLOCK)
        else:
            callbacks = Callbacks(blob)
            _la.read_set_callback_data(a, None)  # allocates libarchive's client data set
            _la.read_set_read_callback(a, callbacks.read_cb)
            if callbacks.seekable:
                _la.read_set_seek_callback(a, callbacks.seek_cb)
            status = _la.read_open1(a)
    if status != _la.OK:
        _reraise_callback(callbacks)
        text = _la.message(a)
        if kind.startswith("tar+") and "Unrecognized archive format" in text:
            raise ArchiveError(
                f"the {kind[4:]} data holds no TAR archive; a single compressed file is not "
                f"read: put it in a ZIP or TAR archive, or upload it uncompressed",
                path=label)
        raise ArchiveError(f"cannot open the {KIND_NAMES[kind]} archive: {text}", path=label)
    return callbacks if callbacks is not None else memory


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CORES = _cores()

READ_AHEAD_FROM = 2 << 20 if _CORES > 1 else 1 << 62
"""Archives (files, bytes, volumes) of at least this many bytes are read ahead on
other threads: below, starting a thread costs more than the overlap gains (and with
one core, a thread would only add switches: never)."""
DIRECT_KINDS = frozenset({"tar"})
"""Archive kinds read without a second thread: nothing to decompress. (Compressed TARs
are decompressed on a second thread, :class:`DecompressingFeed`, rather than read
ahead entry by entry: handing each entry across threads cost more than the
decompression of a fast filter, measured: a 1,000-record WFDB TAR+zst took 2.6x the
bytes-only time read ahead, 2.0x without.)"""
READ_AHEAD_BYTES = 4 << 20
"""Bytes of entries read ahead and not yet taken by the walk, at most."""
READ_AHEAD_BOUNDED = 1 << 20
"""The same in walks that bound what they hold (``iter_records``)."""
READ_AHEAD_ENTRIES = 64
"""Entry headers read ahead and not yet taken by the walk, at most."""

_RAISED = -1000
"""Status of the last item of a read-ahead that failed: its ``error`` is raised."""


@dataclass
class _Whole:
    """An entry read in full ahead of the walk, and where a reader of it meets its end."""

    buf: _np.ndarray
    total: int  # bytes libarchive produced (one more than declared: the entry is too long)
    end_at: int  # a read asking for more than this many bytes meets the end (or the failure)
    status: int  # OK, a libarchive error status, or _LONGER / _SHORTER than declared
    text: str  # libarchive's message for an error status


_LONGER = 1
_SHORTER = 2


@dataclass
class _Header:
    """One entry header as the reader found it (read ahead: with the entry's bytes)."""

    status: int
    index: int = 0
    raw: str = ""
    message: str = ""
    ftype: int = 0
    hardlink: bool = False
    declared: int | None = None
    whole: _Whole | None = None
    """The entry's bytes, read ahead because the walk reads them in full anyway."""
    parked: bool = False
    """The read-ahead waits on this entry: the walk reads its bytes through the reader."""
    error: BaseException | None = None
    reader: _Reader | None = None
    """The reader standing on this entry (read ahead: the lane's)."""
    damaged_ahead: bool = False
    """Reading it ahead failed, or a lane met the archive's damage here: the walk reads
    it again from a fresh reader (:meth:`ReadAhead.reread`)."""

    @property
    def link(self) -> str | None:
        if self.hardlink:
            return "hard link"
        return "symbolic link" if self.ftype == _la.AE_IFLNK else None

    @property
    def has_data(self) -> bool:
        """A regular file whose bytes the walk may read (a damaged header fails instead)."""
        return (self.status == _la.OK or (self.status == _la.WARN
                                          and _locale_only_warning(self.message))) and (
            self.link is None and self.ftype in (_la.AE_IFREG, 0))


class _Reader:
    """Entry headers and whole entries from an open libarchive reader (on one thread at a time)."""

    def __init__(self, a: int, callbacks: Callbacks | DecompressingFeed | None,
                 switch_locale: bool,
                 feed: DecompressingFeed | None = None) -> None:
        self.a = a
        self.callbacks = callbacks
        self.feed = feed
        self.switch_locale = switch_locale
        self.index = 0
        self.entry_p = ctypes.c_void_p()
        self.entry_ref = ctypes.byref(self.entry_p)
        self.entry_address = ctypes.addressof(self.entry_p)
        self.one_byte = _np.empty(1, _np.uint8)

    def header(self) -> _Header:
        if self.switch_locale:
            with _la.utf8_names:
                return self._header()
        return self._header()

    def _header(self) -> _Header:
        a = self.a
        next_fn, name_fn, type_fn, link_fn, size_fn, size_set_fn = _HEADER_FUNCTIONS
        status, utf8, ftype, hardlink, declared = archive_feed.next_header(
            next_fn, name_fn, type_fn, link_fn, size_fn, size_set_fn, a, self.entry_address)
        _reraise_callback(self.callbacks)
        if status == _la.EOF:
            return _Header(_la.EOF)
        self.index += 1
        if status not in (_la.OK, _la.WARN):
            return _Header(status, self.index, message=_la.message(a))
        raw = (utf8.decode("utf-8", "replace") if utf8 is not None
               else _decode_name(self.entry_p, self.index))
        return _Header(status, self.index, raw, _la.message(a) if status == _la.WARN else "",
                       ftype & _la.AE_IFMT, hardlink, declared)

    def pass_over(self) -> _Header | None:
        """Move to the next entry, another reader's: None, or the archive's end or error."""
        status = _la.read_next_header(self.a, self.entry_ref)
        if status in (_la.OK, _la.WARN):
            self.index += 1
            return None
        if status == _la.EOF:
            return _Header(_la.EOF)
        self.index += 1
        return _Header(status, self.index, message=_la.message(self.a))

    def read_some(self) -> None:
        """Read a byte of the current entry (what reading it does to the reader's state
        matters; the byte, and a failure, do not)."""
        _la.read_data(self.a, archive_feed.address_of(self.one_byte), 1)

    def whole(self, declared: int, arena: Arena) -> _Whole:
        """The current entry in full (``declared`` bytes; one more shows it is longer)."""
        if self.switch_locale:
            with _la.utf8_names:
                return self._whole(declared, arena)
        return self._whole(declared, arena)

    def _whole(self, declared: int, arena: Arena) -> _Whole:
        a = self.a
        buf = arena.empty(declared + 1)
        address = archive_feed.address_of(buf)
        produced = status = 0
        end_at = -1
        text = ""
        while True:
            count = _la.read_data(a, address + produced, declared + 1 - produced)
            if count == 0:
                status = _SHORTER if produced != declared else _la.OK
                break
            if count < 0:
                status, text = count, _la.message(a)
                break
            produced += count
            if produced > declared:
                status, end_at = _LONGER, declared
                break
        buf[produced:] = 0
        buf.setflags(write=False)
        return _Whole(buf, produced, produced if end_at < 0 else end_at, status, text)


class _Direct:
    """Headers read when the walk asks for them."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def next(self) -> _Header:
        return self.reader.header()

    def release(self, header: _Header, failed: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


class _Lane:
    """One read-ahead thread and its own libarchive reader."""

    def __init__(self, reader: _Reader, number: int) -> None:
        self.reader = reader
        self.number = number
        self.at = -1  # position of the entry the lane works on
        self.size = 0  # its declared size
        self.parked = False
        self.thread: threading.Thread | None = None


class ReadAhead:
    """Reads entries on other threads while the walk decodes the ones before them.

    libarchive decompresses with the GIL released, so inflating the next
    entries overlaps with whatever the walk does with the one before. A ZIP
    archive, whose members are compressed one by one and found through its
    central directory, is read by several threads at once (*lanes*, each
    with its own reader: a lane takes the next entry nobody has taken, seeks
    past the ones before it and decompresses it); any other archive by one.

    Only entries the walk reads in full whatever detection says are read
    ahead (see :meth:`Walker.reads_in_full
    <ecgingest.archive.walker.Walker.reads_in_full>`), at most
    :data:`READ_AHEAD_ENTRIES` and :data:`READ_AHEAD_BYTES` (walks that bound
    what they hold: :data:`READ_AHEAD_BOUNDED`) ahead (plus the
    entry the walk waits for) and never past ``Limits.max_total_size``; the
    walk counts their bytes against the limits as it takes them, exactly
    where it would have read them. At any other entry a lane stops (it is
    *parked*) and hands its reader to the walk, which reads what it decides
    and gives the reader back. Failures reach the walk as they were raised,
    in entry order. :meth:`close` stops and joins the threads, wherever they
    are.

    A damaged entry ends the reading ahead (:meth:`read_on_from`): where
    libarchive stands after damage depends on how the entry was passed (read
    in full, read in other steps, or skipped by another lane), so the walk
    reads every later header itself, from the reader that read the entry as
    its own reader would have.
    """

    def __init__(self, readers: list[_Reader], walker: Walker,
                 reopen: Callable[[], _Reader]) -> None:
        self.walker = walker
        self.reopen = reopen
        self.cond = threading.Condition()
        self.lanes = [_Lane(reader, k) for k, reader in enumerate(readers)]
        self.found: dict[int, _Header] = {}  # position -> header (and entry), not taken yet
        self.ahead = 0  # bytes of the entries in ``found``
        self.taken = 0  # entries the lanes have taken (positions below are theirs)
        self.position = 0  # headers the walk has taken
        self.stopped = False
        self.own: _Reader | None = None
        """The reader the walk reads on from itself, once an entry was damaged."""
        self.most = _bytes_ahead(walker)
        for lane in self.lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                           name=f"ecgingest-archive-read-ahead-{lane.number}")
            lane.thread.start()

    # -- the threads -------------------------------------------------------------
    def _run(self, lane: _Lane) -> None:
        try:
            while True:
                with self.cond:
                    while not self.stopped and not self._room_for_header(lane):
                        self.cond.wait()
                    if self.stopped:
                        return
                    lane.at = at = self.taken
                    self.taken += 1
                reader = lane.reader
                header = None
                while header is None and reader.index < at:
                    header = reader.pass_over()  # another lane's entry (None), or the end
                if header is None:
                    header = reader.header()
                if header.status in (_la.OK, _la.WARN):
                    header.reader = reader
                    if header.has_data:
                        header = self._read(lane, header)
                with self.cond:
                    self._found(at, header)
                if header.status not in (_la.OK, _la.WARN):
                    return  # the archive ends here
        except BaseException as exc:  # reaches the walk, which raises it
            with self.cond:
                self._found(lane.at, _Header(_RAISED, error=exc))

    def _read(self, lane: _Lane, header: _Header) -> _Header:
        """The entry in full when it is worth reading ahead, else the lane parks on it."""
        size = header.declared
        if size is not None and size <= self.most:
            lane.size = size
            with self.cond:
                while not self.stopped and not self._room_for_entry(lane):
                    self.cond.wait()
                if self.stopped:
                    return header
        if size is not None and self._worth_reading(size):
            header.whole = lane.reader.whole(size, self.walker.arena)
            if header.whole.status == _la.OK:
                return header
            # A damaged entry: how libarchive reports the damage, and where its reader
            # stands after it, depend on how the bytes were asked for. So the walk reads
            # it itself, from a fresh reader brought to it as its own reader would stand
            # there (:meth:`reread`), and reads on from that reader
            header.whole = None
            header.damaged_ahead = True
        with self.cond:
            header.parked = lane.parked = True
        return header

    def _found(self, at: int, header: _Header) -> None:
        if not self.stopped and at >= self.position and at not in self.found:
            self.found[at] = header
            if header.whole is not None:
                self.ahead += len(header.whole.buf)
        self.cond.notify_all()

    def _room_for_header(self, lane: _Lane) -> bool:
        return (not lane.parked and self.taken - self.position < READ_AHEAD_ENTRIES
                and self.ahead < self.most)

    def _room_for_entry(self, lane: _Lane) -> bool:
        # the entry the walk waits for is read whatever is ahead (no deadlock)
        return lane.at == self.position or self.ahead + lane.size + 1 <= self.most

    def _worth_reading(self, size: int) -> bool:
        walker = self.walker
        limits = walker.limits
        with self.cond:
            ahead = self.ahead
        # no per-entry limit can stop an entry read ahead (the walk's count of its bytes
        # is then exact), and entries ahead never take the upload past its total
        return (size < min(limits.ratio_grace, limits.max_entry_size)
                and walker.budget.total + ahead + size <= limits.max_total_size
                and walker.reads_in_full(size, ahead))

    # -- the walk --------------------------------------------------------------
    def next(self) -> _Header:
        """The next header (and entry, read ahead) in archive order."""
        if self.own is not None:
            header = self.own.header()
            header.reader = self.own
            return header
        with self.cond:
            while self.position not in self.found:
                if self.stopped:
                    raise ArchiveError("the archive was closed while it was read",
                                       path=self.walker.label)
                self.cond.wait()
            header = self.found.pop(self.position)
            self.position += 1
            if header.whole is not None:
                self.ahead -= len(header.whole.buf)
            self.cond.notify_all()
        if header.status == _RAISED:
            assert header.error is not None
            error, header.error = header.error, None
            raise error
        if header.status not in (_la.OK, _la.WARN, _la.EOF):
            # the archive is damaged where a lane stands, which is not where the walk's
            # own reader would (it read entries the walk did not read, or passed over
            # ones it read): whether and how the walk meets the damage is found again
            header.damaged_ahead = True
            header.index = self.position  # (the entry the walk asks for)
        return header

    def reread(self, header: _Header, last_read: int) -> _Header:
        """A damaged entry read ahead (or the archive's damage a lane met in its place),
        from a fresh reader standing where the walk's own reader would: past the
        entries before it, having read bytes of the last one the walk read
        (``last_read``, its index; 0: none). Whether libarchive meets damage when it
        passes over entries depends on that: in a solid 7-Zip folder, passing over an
        entry decompresses it only once the walk has read from the folder. The walk
        reads on from the fresh reader (:meth:`read_on_from`)."""
        reader = self.reopen()
        self.read_on_from(reader)
        fresh: _Header | None = None
        while fresh is None and reader.index < header.index - 1:
            fresh = reader.pass_over()
            if fresh is None and reader.index == last_read:
                reader.read_some()
        if fresh is None:
            fresh = reader.header()
            fresh.reader = reader
        return fresh

    def release(self, header: _Header, failed: bool = False) -> None:
        """The walk is done with the reader on ``header``: the lane reads on, or
        (``failed``: the entry is damaged) the walk reads on from that reader."""
        if header.parked:
            header.parked = False
            if failed:
                assert header.reader is not None
                self.read_on_from(header.reader)
                return
            with self.cond:
                for lane in self.lanes:
                    if lane.reader is header.reader:
                        lane.parked = False
                self.cond.notify_all()

    def read_on_from(self, reader: _Reader) -> None:
        """Stop reading ahead: :meth:`next` reads each later header from ``reader``,
        on the walk's thread, as a walk without read-ahead does. What the lanes found
        beyond a damaged entry is dropped: a lane that skipped the entry stands where
        libarchive's skip took it, which need not be where a read of it ends (a ZIP
        entry whose local header declares more compressed bytes than its stream holds:
        a read ends with the stream, a skip runs past the archive's end)."""
        with self.cond:
            self.own = reader
            self.stopped = True
            self.found.clear()
            self.ahead = 0
            self.cond.notify_all()

    def close(self) -> None:
        """Stop the threads and wait for them (each finishes the libarchive call it is in)."""
        with self.cond:
            self.stopped = True
            self.own = None  # (a walk asking on is told the archive was closed)
            self.found.clear()
            self.ahead = 0
            self.cond.notify_all()
        for lane in self.lanes:
            if lane.thread is not None and lane.thread is not threading.current_thread():
                lane.thread.join()


READ_AHEAD_LANES = max(2, min(4, _CORES))
"""Threads that decompress a ZIP archive's members at once (other kinds: one)."""


def _reads_ahead(blob: Blob, walker: Walker, kind: str) -> bool:
    """Whether a walk reads ahead on other threads: first passes over files or bytes
    (never a caller's stream, whose methods must not run on another thread) that keep
    what they read (a walk for headers only, which keeps no entry nothing claims, would
    hand most entries back and forth between the threads for a first look)."""
    if walker.target is not None or walker.keep_limit == 0 or kind in DIRECT_KINDS:
        return False
    if walker.listed and walker.budget.keep_unclaimed is not None:
        # a bounded walk that builds each record as its directory completes holds about
        # one record: entries read ahead would be several more (measured: no slower)
        return False
    if blob.volumes is not None:
        size = sum(os.path.getsize(v) for v in blob.volumes)
    elif blob.path is not None:
        size = os.path.getsize(blob.path)
    elif blob.data is not None:
        size = len(blob.data)
    else:
        return False
    return size >= READ_AHEAD_FROM


def _walk_open_archive(a: int, kind: str, blob: Blob,
                       walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    fmt = "tar" if kind.startswith("tar") else kind
    what = KIND_NAMES[kind]
    ahead = _reads_ahead(blob, walker, kind)
    one_stream = kind.startswith("tar+") and blob.volumes is None
    feed = None
    if ahead and one_stream:
        # decompressed on another thread, parsed and decoded on this one
        feed = DecompressingFeed.open(blob, _bytes_ahead(walker))
        if feed is not None:
            walker.read_aheads.append(feed)  # type: ignore[arg-type]  # stopped with the walk
    try:
        fed = _open(a, kind, blob, walker.label, feed)
    except BaseException:
        _close_feed(feed, walker)
        raise
    # a Python error raised by the callbacks (or the feed's) is raised after libarchive returns
    callbacks = fed if isinstance(fed, Callbacks) else feed
    fallback = ZipFallback(blob) if fmt == "zip" and blob.random_access else None
    switch_locale = _la.utf8_names.active
    reader = _Reader(a, callbacks, switch_locale, feed)
    source: _Direct | ReadAhead = _Direct(reader)
    handles: list[int] = []  # readers of read-ahead lanes, freed with the walk
    feeds: list[Callbacks | _Memory | None] = []  # what feeds them, kept alive as long

    def another_reader() -> _Reader:
        other = _la.read_new()
        if not other:
            raise MemoryError("libarchive could not allocate a reader")
        handles.append(other)
        feeds.append(_open(other, kind, blob, walker.label))
        return _Reader(other, None, switch_locale)

    try:
        if ahead and not one_stream:
            readers = [reader]
            if fmt == "zip" and central_directory_at(blob) is not None:
                # members found through the central directory: each lane seeks to its own
                try:
                    readers += [another_reader() for _ in range(READ_AHEAD_LANES - 1)]
                except (ArchiveError, MemoryError):
                    pass  # it opened once: read with the lanes there are
            source = ReadAhead(readers, walker, another_reader)
            walker.read_aheads.append(source)
        last_read = 0  # index of the last entry the walk read bytes of
        while True:
            header = source.next()
            if header.damaged_ahead:
                assert isinstance(source, ReadAhead)
                header = source.reread(header, last_read)
            if header.status == _la.EOF:
                return
            if header.status not in (_la.OK, _la.WARN):
                index = header.index
                where = f"after {index - 1} entries" if index > 1 else "at its first entry"
                raise ArchiveError(
                    f"the {what} archive is damaged or truncated {where}: {header.message}",
                    path=walker.label)
            link = header.link
            decided = walker.classify(
                header.raw, is_dir=header.ftype == _la.AE_IFDIR, link=link,
                other=link is None and header.ftype not in (_la.AE_IFREG, 0, _la.AE_IFDIR))
            if decided is None or not isinstance(decided, str):
                source.release(header)
                if decided is not None:
                    yield decided
                continue
            path = decided
            if not header.has_data:  # a regular file whose header is damaged
                source.release(header)
                yield Failed(path, ArchiveError(
                    f"entry header is damaged: {header.message}", path=path, format=fmt))
                continue
            data: _EntryBytes
            if header.whole is not None:
                data = _AheadBytes(header.whole, path, header.declared, walker, fmt)
            else:
                on = header.reader or reader
                data = LibarchiveBytes(on.a, path, header.declared, walker, on.callbacks, fmt,
                                       switch_locale, on.feed)
                data.release = (lambda failed, header=header:
                                 source.release(header, failed))
            if fallback is not None:
                data.fallback = (lambda raw=header.raw, path=path:
                                 fallback.open(raw, path, walker))
            if fmt == "7z" and blob.random_access and walker.target is None:
                failed = data.fill(1)
                if (failed is not None and failed.fatal
                        and isinstance(failed.error, UnsupportedFeatureError)):
                    # a 7-Zip coder libarchive lacks (ARM64): liblzma reads on from here
                    walker.sevenzip_from = walker.count - 1
                    source.close()
                    yield from walk_7z_fallback(blob, walker, header.index - 1, path, failed)
                    return
            yield from walker.take(path, data)
            if data.produced or data.failure is not None:
                last_read = header.index
            source.release(header)
            if data.failure is not None and data.failure.fatal:
                return  # libarchive cannot go on after ARCHIVE_FATAL
    finally:
        source.close()
        if isinstance(source, ReadAhead):
            walker.read_aheads.remove(source)
        _close_feed(feed, walker)
        for other in handles:
            _la.read_free(other)


def _bytes_ahead(walker: Walker) -> int:
    """Bytes a walk lets other threads hold ahead of it."""
    if walker.budget.keep_unclaimed is None:
        return READ_AHEAD_BYTES
    return min(READ_AHEAD_BYTES, READ_AHEAD_BOUNDED)


def _close_feed(feed: DecompressingFeed | None, walker: Walker) -> None:
    if feed is not None:
        feed.close()
        if feed in walker.read_aheads:
            walker.read_aheads.remove(feed)  # type: ignore[arg-type]


def _locale_only_warning(text: str) -> bool:
    """libarchive warns when a name cannot be shown in the process locale (LC_ALL=C);
    the UTF-8 name is still exact, so that warning does not fail the entry."""
    return "converted" in text and "locale" in text


def _reraise_callback(callbacks: Callbacks | DecompressingFeed | None) -> None:
    if callbacks is not None and callbacks.error is not None:
        error, callbacks.error = callbacks.error, None
        if isinstance(error, (OSError, EcgIngestError)) or not isinstance(error, Exception):
            raise error  # real I/O errors, typed errors, KeyboardInterrupt stay what they are
        raise ArchiveError(f"reading the upload failed: {error}") from error


def _status_error(text: str, status: int, path: str, fmt: str) -> EcgIngestError:
    if status == _la.WARN and ("CRC" in text or "crc" in text):
        return ChecksumError(f"stored CRC does not match the entry's data ({text})",
                             path=path, format=fmt)
    if status == _la.WARN:
        return CorruptDataError(f"entry data is damaged ({text})", path=path, format=fmt)
    if "nsupported" in text or "codec ID" in text:
        return UnsupportedFeatureError(f"cannot decompress this entry: {text}",
                                       path=path, format=fmt)
    return CorruptDataError(f"entry data is damaged or truncated ({text})", path=path, format=fmt)


def _longer(path: str, declared: int, fmt: str) -> Failed:
    return Failed(path, CorruptDataError(
        f"entry holds more than the {declared} bytes its header declares", path=path, format=fmt))


def _shorter(path: str, produced: int, declared: int, fmt: str) -> Failed:
    return Failed(path, TruncatedError(
        f"entry ends after {produced} of the {declared} bytes its header declares",
        path=path, format=fmt))


_EMPTY = _np.empty(0, _np.uint8)
"""What a reader's buffer becomes once its bytes were handed over."""

_FIRST_ALLOCATION = 1 << 20
"""Largest buffer allocated before any byte arrived: declared sizes never size allocations."""


class _EntryBytes:
    """What both ways of reading an entry share: a failure, once seen, stays the answer,
    and ``fallback`` opens the entry with a decoder of ours when libarchive cannot
    decompress it (ZIP Deflate64, LZMA)."""

    reads_whole = False

    def __init__(self, path: str, declared: int | None, walker: Walker, fmt: str) -> None:
        self.path = path
        self.declared = declared
        self.walker = walker
        self.fmt = fmt
        self.produced = 0  # bytes the walk has (and counted)
        self.done = False
        self.failure: Failed | None = None
        self.fallback: Callable[[], EntryBytes | Failed] | None = None
        self.delegate: EntryBytes | None = None
        self._held: memoryview | None = None  # the bytes of a complete entry, once asked

    @property
    def complete(self) -> bool:
        return self.delegate.complete if self.delegate is not None else self.done

    def held(self) -> bytes | memoryview:
        if self.delegate is not None:
            return self.delegate.held()
        if not self.done:
            return memoryview(self._buffer()[:self.produced])  # type: ignore[arg-type]
        if self._held is None:  # the walk asks several times (detection, the entry)
            self._held = memoryview(self._buffer()[:self.produced])  # type: ignore[arg-type]
        return self._held

    def hand_over(self) -> bytes | memoryview:
        if self.delegate is not None:
            return self.delegate.hand_over()
        data = self.held()
        self._let_go()
        self._held = None
        return data

    def _let_go(self) -> None:
        """Drop the reference to the buffer (the bytes handed over keep it alive)."""

    def skip_rest(self) -> Failed | None:
        self._finished(False)
        return None  # nothing to decode through: the next entry is reached directly

    def fill(self, stop: int | None) -> Failed | None:
        if self.delegate is not None:
            return self.delegate.fill(stop)
        if self.failure is not None or self.done:
            return self.failure
        failed = self._fill(stop)
        if failed is not None or self.done:
            self._finished(failed is not None)
        if (failed is not None and self.fallback is not None and self.produced == 0
                and ZipFallback.applies(failed.error.message)):
            opened = self.fallback()
            if isinstance(opened, Failed):
                failed = opened
            else:
                self.delegate = opened
                return opened.fill(stop)
        self.failure = failed
        return failed

    def _buffer(self) -> _np.ndarray:
        raise NotImplementedError

    def _fill(self, stop: int | None) -> Failed | None:
        raise NotImplementedError

    def _finished(self, failed: bool) -> None:
        """The entry's bytes are all read (or will not be): libarchive is not used again."""


class _AheadBytes(_EntryBytes):
    """An entry read in full ahead of the walk, handed out as the walk asks for it.

    The walk sees what reading the entry itself would have shown: as many
    bytes as it asks for, the end (or the damage, or a length other than the
    declared one) only once it asks for more than the bytes before it, and
    each byte counted against the limits when it is shown.
    """

    def __init__(self, whole: _Whole, path: str, declared: int | None, walker: Walker,
                 fmt: str) -> None:
        super().__init__(path, declared, walker, fmt)
        self.whole = whole

    def _buffer(self) -> _np.ndarray:
        return self.whole.buf

    def _let_go(self) -> None:
        self.whole.buf = _EMPTY

    def _show(self, count: int) -> None:
        if count > self.produced:
            # the compressed size does not matter: entries read ahead are shorter than
            # Limits.ratio_grace
            self.walker.grew(self.path, count, None, count - self.produced)
            self.produced = count

    def _fill(self, stop: int | None) -> Failed | None:
        whole, path, fmt = self.whole, self.path, self.fmt
        if stop is not None and stop <= whole.end_at:
            self._show(stop)
            return None
        self._show(whole.total)
        declared = self.declared
        assert declared is not None
        if whole.status == _la.OK:
            self.done = True
            return None
        if whole.status == _LONGER:
            return _longer(path, declared, fmt)
        if whole.status == _SHORTER:
            return _shorter(path, whole.total, declared, fmt)
        return Failed(path, _status_error(whole.text, whole.status, path, fmt),
                      fatal=whole.status == _la.FATAL)


class LibarchiveBytes(_EntryBytes):
    """The current entry's bytes from libarchive, produced on request; limits per block.

    Reads straight into one buffer that starts at most 1 MiB (or the bytes
    asked for) and doubles only as real data fills it, so memory is at most
    twice what actually arrived. The buffer is a NumPy array, not zero-filled
    first (libarchive writes every byte that is kept, and the unused tail is
    cleared before the bytes are handed out). A small entry of declared size,
    which never grows (a byte past the declared size fails it), takes its
    buffer from the walk's arena. ``release`` is called once libarchive is
    done with the entry (a read-ahead thread then reads on).
    """

    def __init__(self, a: int, path: str, declared: int | None, walker: Walker,
                 callbacks: Callbacks | DecompressingFeed | None, fmt: str, switch_locale: bool,
                 feed: DecompressingFeed | None = None) -> None:
        super().__init__(path, declared, walker, fmt)
        self.a = a
        self.callbacks = callbacks
        self.feed = feed
        self.switch_locale = switch_locale
        self.cap = walker.limits.max_entry_size + 1
        self.buf: _np.ndarray = _EMPTY  # replaced before a byte is read into it
        self.address = 0  # where ``buf``'s bytes start (taken once per buffer, not per read)
        self.start_raw = self._raw_bytes()
        self.release: Callable[[bool], None] | None = None
        # libarchive's TAR reader fails an entry's data only where the stream fails or
        # ends, whatever a read asks for (it returns the bytes up to the end of what it
        # has, at least one): one read of the whole entry meets what steps meet
        self.reads_whole = fmt == "tar"

    def _buffer(self) -> _np.ndarray:
        return self.buf

    def _raw_bytes(self) -> int:
        """Compressed bytes read so far (fed by a decompressing thread: those behind the
        decompressed bytes the reader has taken)."""
        if self.feed is not None:
            return self.feed.compressed
        return int(_la.filter_bytes(self.a, -1))

    def _let_go(self) -> None:
        self.buf, self.address = _EMPTY, 0

    def _finished(self, failed: bool) -> None:
        release, self.release = self.release, None
        if release is not None:
            release(failed)

    def _fill(self, stop: int | None) -> Failed | None:
        if self.switch_locale:
            with _la.utf8_names:
                return self._read(stop)
        return self._read(stop)
    def _room(self, stop: int | None) -> None:
        """Make the buffer hold at least one more byte (and up to ``stop``)."""
        size = len(self.buf)
        declared = self.declared
        if size == 0:
            hint = declared + 1 if declared is not None else 64 * 1024
            first = max(1, min(hint, _FIRST_ALLOCATION, self.cap))
            if stop is not None and stop < first:
                first = stop  # a look at the first bytes: the rest may never be read
            elif declared is not None and first == declared + 1:
                self._use(self.walker.arena.empty(first))
                return
            self._use(_np.empty(first, _np.uint8))
            return
        if self.produced < size:
            return
        if declared is not None and size < declared + 1 <= _FIRST_ALLOCATION:
            grown = self.walker.arena.empty(declared + 1)  # the prefix was read: now all
        else:
            hint = declared + 1 if declared is not None else 64 * 1024
            grown = _np.empty(max(size + (min(size, self.cap - size) or 1),
                                  min(hint, _FIRST_ALLOCATION, self.cap)), _np.uint8)
        grown[:self.produced] = self.buf[:self.produced]
        self._use(grown)

    def _use(self, buf: _np.ndarray) -> None:
        self.buf = buf
        self.address = archive_feed.address_of(buf)

    def _read(self, stop: int | None) -> Failed | None:
        a, path, declared, fmt = self.a, self.path, self.declared, self.fmt
        if (self.reads_whole and self.produced == 0 and declared is not None
                and (stop is None or stop > declared)  # (a look past its end reads it all)
                and declared < _FIRST_ALLOCATION and self.walker.no_limit_stops(declared)):
            return self._read_at_once(declared)
        while stop is None or self.produced < stop:
            self._room(stop)
            want = len(self.buf) - self.produced
            if stop is not None:
                want = min(want, stop - self.produced)
            count = _la.read_data(a, self.address + self.produced, want)
            _reraise_callback(self.callbacks)
            if count == 0:
                break
            if count < 0:
                return Failed(path, _status_error(_la.message(a), count, path, fmt),
                              fatal=count == _la.FATAL)
            self.produced += count
            self.walker.grew(path, self.produced, self._raw_bytes() - self.start_raw, count)
            if declared is not None and self.produced > declared:
                return _longer(path, declared, fmt)
        else:
            return None  # ``stop`` bytes are held; the entry goes on
        if declared is not None and self.produced != declared:
            return _shorter(path, self.produced, declared, fmt)
        self._complete()
        return None

    def _complete(self) -> None:
        buf = self.buf
        buf[self.produced:] = 0  # nothing stale stays reachable through the array's base
        buf.setflags(write=False)
        self.done = True

    def _read_at_once(self, declared: int) -> Failed | None:
        """The whole entry (and a byte more, which shows it longer than declared) in one
        native loop: what :meth:`_read` shows where no limit can stop the entry, its
        bytes counted once when they are all read (or libarchive failed after them)."""
        a, path, fmt = self.a, self.path, self.fmt
        self._room(None)  # ``declared + 1`` bytes
        got, status = archive_feed.read_fully(_READ_DATA, a, self.address, declared + 1)
        _reraise_callback(self.callbacks)
        if got:
            self.produced = got
            self.walker.grew(path, got, self._raw_bytes() - self.start_raw, got)
        if status < 0:
            return Failed(path, _status_error(_la.message(a), status, path, fmt),
                          fatal=status == _la.FATAL)
        if got > declared:
            return _longer(path, declared, fmt)
        if got != declared:
            return _shorter(path, got, declared, fmt)
        self._complete()
        return None


def prefixes(kind: str, blob: Blob, label: str, count: int
             ) -> Iterator[tuple[str, bytes | None]]:
    """``(name, first count bytes)`` of each entry libarchive lists (None: unreadable).

    Serves the RAR 4 reader, whose decoder (``rars``) produces whole entries
    only: libarchive's first bytes let content detection decide whether an
    entry is worth decompressing in full. (libarchive < 3.7.4 may get RAR 4
    bytes after a PPMd-to-LZ switch wrong; they serve detection only, and
    what a decoder receives always comes from ``rars``.)
    """
    a = _la.read_new()
    if not a:
        return
    try:
        try:
            fed = _open(a, kind, blob, label)
        except ArchiveError:
            return
        callbacks = fed if isinstance(fed, Callbacks) else None
        entry_p = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(count)
        index = 0
        while True:
            with _la.utf8_names:
                status = _la.read_next_header(a, ctypes.byref(entry_p))
                if status not in (_la.OK, _la.WARN):
                    return
                index += 1
                raw = _decode_name(entry_p, index)
                got = n = 0
                while got < count:
                    n = _la.read_data(a, ctypes.addressof(buf) + got, count - got)
                    if n <= 0:
                        break
                    got += n
                _reraise_callback(callbacks)
            yield raw, (buf.raw[:got] if n >= 0 else None)
    finally:
        _la.read_free(a)
