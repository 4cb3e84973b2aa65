"""Entries and what a walk yields: files, skipped reports, failures, uploads.

An :class:`Upload` is either a single file (``single``) or a container whose
``entries()`` yields :class:`Entry` objects (and :class:`Skipped` reports) in
a defined order; :func:`ecgingest.uploads.open_upload` makes one from what the
caller passed, :func:`ecgingest.archive.open_archive` from an archive.
"""

from __future__ import annotations

import contextlib
import functools
import io
import mmap
import os
import posixpath
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

import numpy as np

from ._ext import mapping
from ._memory import aligned_empty, pooling
from .errors import EcgIngestError, UnsafeEntryError
from .formats._base import RANGED_READS, check_unchanged, open_regular

if TYPE_CHECKING:
    from .formats._base import SingleFileFormat
    from .limits import ByteBudget

__all__ = ["Source", "Entry", "Skipped", "Failed", "Upload", "FileGroup", "SNIFF_BYTES",
           "normalise_entry_name", "entry_directory", "read_up_to"]

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], list, tuple]

SNIFF_BYTES = 64 * 1024
"""Bytes of an entry that content detection may look at without reading it all."""


def entry_directory(path: str) -> str:
    """Directory part of an entry path ('' at the top)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


@dataclass(frozen=True)
class Skipped:
    """An entry that yielded no record, and why (``path`` as in the upload)."""

    path: str
    reason: str


@dataclass(eq=False)
class Entry:
    """One file of an upload: a normalised relative path and lazily read bytes."""

    path: str
    size: int
    _loader: Callable[[], bytes | memoryview] | None = field(default=None, repr=False)
    _data: bytes | memoryview | None = field(default=None, repr=False)
    _head: bytes | memoryview | None = field(default=None, repr=False)
    nested_note: str | None = field(default=None, repr=False)
    """Set on an archive found inside the archive and not opened: the skip reason."""
    _kept: _Kept | None = field(default=None, repr=False)
    """The descriptor a file on disk keeps from its head read (see :class:`_FileEntry`)."""
    detected: tuple[SingleFileFormat | None] | None = field(default=None, repr=False)
    """``(format,)`` once content detection looked at these bytes (an archive's walk
    does, to know whether to read an entry in full): the single-file format that
    claims them, or None; not looked at again."""

    @classmethod
    def from_bytes(cls, path: str, data: bytes | memoryview) -> Entry:
        """An entry whose bytes are already in memory."""
        return cls(path, len(data), _data=data)

    @classmethod
    def deferred(cls, path: str, size: int, head: bytes,
                 load: Callable[[], bytes | memoryview]) -> Entry:
        """An entry of which only the first bytes are held; ``load`` reads all of them.

        Archives hand out entries no format claimed this way: ``head`` serves
        content detection, and the whole entry is read only if a record uses it.
        """
        return cls(path, size, _loader=load, _head=bytes(head))

    @property
    def disk_path(self) -> Path | None:
        """The file on disk that holds exactly this entry's bytes (None: in memory or
        inside an archive)."""
        return None

    @property
    def disk_file(self) -> str | Path | None:
        """:attr:`disk_path` as the entry was given it (opening it needs no Path)."""
        return None

    @property
    def in_memory(self) -> bool:
        """True when all the bytes are held (reading them costs nothing)."""
        return self._data is not None

    @property
    def name(self) -> str:
        """Base name (the part after the last ``/``)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def directory(self) -> str:
        """Directory part of the path ('' at the top)."""
        return entry_directory(self.path)

    def read(self) -> bytes | memoryview:
        if self._data is None:
            assert self._loader is not None
            self._data = self._loader()
            self.size = len(self._data)
        return self._data

    def head(self, n: int = SNIFF_BYTES) -> bytes:
        if self._data is not None:
            return bytes(self._data[:n])
        if self._head is None or len(self._head) < min(n, self.size):
            self._head = self._read_head(n)
        head = self._head[:n]
        return head if type(head) is bytes else bytes(head)

    def _read_head(self, n: int) -> bytes | memoryview:
        return bytes(self.read()[:n])

    def take_descriptor(self) -> tuple[int, bytes] | None:
        """The open file this entry's head was read through, and that head, handed over
        to the caller (who closes it); None when there is none (bytes in memory, an
        archive member, a file whose descriptor was let go)."""
        return None

    def discard(self) -> None:
        """Drop the bytes for good: the entry was used and will not be read again."""
        self._data = None
        self._head = None
        self._loader = None
        if self._kept is not None:
            self._kept.close()

    def release(self) -> None:
        """Drop cached bytes of an entry that can be read again (files on disk, archive
        entries read on demand): holding it then costs no memory until it is used (nor
        an open file)."""
        if self._loader is not None:
            self._data = None
            self._head = None
        if self._kept is not None:
            self._kept.close()

    @contextlib.contextmanager
    def view(self, *, prefault: bool = True, as_bytes: bool = False) -> Iterator[memoryview]:
        """The entry's bytes as a memoryview, without a copy where possible.

        ``prefault`` applies to files on disk, which are memory-mapped: map all
        their pages in one call up front, or let the decoder's reads fault them
        in as it goes. ``as_bytes`` asks for a view of a ``bytes`` object where a
        file on disk is read rather than mapped (for a decoder that wants
        ``bytes``: see :data:`READ_AS_BYTES`).
        """
        held = self.read()
        data = memoryview(bytes(held) if as_bytes and type(held) is not bytes else held)
        try:
            yield data
        finally:
            _release_quietly(data)



HEAD_READ = 4096
"""Bytes the head read of a file on disk takes at least: one page costs what the few
bytes detection asks for cost, and spares the decoder a second read of a header a
little longer (an EDF file's signal headers up to 15 signals)."""

MAP_FROM = 2 << 20
"""Files of at least this many bytes are memory-mapped instead of read (see
``_FileEntry.view``). A smaller file fits one 2 MiB block of the pool, which the pool
keeps warm between reads (:data:`~ecgingest._memory.HOT_BLOCK_BYTES`), and the copy into
it costs less than mapping the file in and out: EDF files of 1.1 to 2.1 MB read 12 %
faster than mapped (two reads in two threads 12-20 %), ISHNE files of 1.5 and 2.0 MB
3-5 % (8-14 %). A larger file's block is marked free-on-demand when it comes back, and
the copy grows with the file: EDF files of 3 and 6 MB read 15-17 % and 45-60 % slower
than mapped (a 2.3 MB ISHNE file and a 2.7 MB EDF file about as fast either way)."""

READ_AS_BYTES = 128 << 10
"""Files below this many bytes are read into a ``bytes`` object (the C heap serves it
warm and an allocation from the array pool costs more than the read); larger ones that
are not mapped (below :data:`MAP_FROM`, a file that cannot be mapped, or one whose size
changed since it was listed) into a block of the pool, unless they open like a text
document or the decoder asks for ``bytes`` (a parser that copies or wraps any other
buffer first). From 128 KiB a fresh ``bytes`` is where the C heap stops serving warm
memory: glibc gives the top of its heap back to the system when such a block and the
decoded arrays after it are freed, and faults the pages in again at the next read (a
207 KB EDF file read by path cost 63 page faults and 430-500 us a read instead of
280-330 us, in a process whose heap had come to that state, as one that imports the
package from compiled bytecode does); those calls also take the lock of the process's
memory map that page faults of other threads wait for. A pooled block is warm memory
that goes back to the pool when the last view of it goes, whoever holds that view (a
record's array over the file's bytes keeps it)."""


def _release_quietly(data: memoryview) -> bool:
    """Release a view; False when a decoder still exports it (left to the garbage collector)."""
    try:
        data.release()
    except BufferError:
        return False
    return True


def drop_frames(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in ``exc``'s tracebacks.

    A decoder that fails leaves its frames in the traceback, and their locals
    (slices of the input, arrays over it, half-written outputs) live as long as
    the exception does: for an error kept in a result, as long as the result.
    The line numbers stay, so the traceback still prints; frames that are still
    running are left alone. Follows ``__cause__`` and ``__context__``.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending.extend((current.__cause__, current.__context__))


def _close_quietly(mapped: mmap.mmap) -> None:
    """Unmap now if nothing exports the mapping any more, else when the last view goes.

    ``mmap.close()`` refuses (``BufferError``) while a slice or an array over the
    mapping is alive anywhere, say in a traceback frame; dropping the reference
    instead lets reference counting unmap it with that last view, so releasing
    never depends on what a decoder left behind.
    """
    try:
        mapped.close()
    except BufferError:
        pass


class _Kept:
    """The descriptor of a file whose head was read, kept open for the read that follows
    (detection, then the decoder's ranged or whole read: one open, one status).

    Made by the head read that keeps one, shared by an entry and its copies. At most
    :data:`KEPT_DESCRIPTORS` are open in the process (the oldest is closed when one
    more is kept), and one is closed when its entry is released or discarded, or with
    the last entry holding it. Taking one hands it over: a descriptor in use is never
    closed under its reader.
    """

    __slots__ = ("fd", "__weakref__")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        with _KEPT_LOCK:
            _KEPT[id(self)] = weakref.ref(self)
            while len(_KEPT) > KEPT_DESCRIPTORS:
                oldest = _KEPT.pop(next(iter(_KEPT)))()
                if oldest is not None:
                    oldest._close_locked()

    def __del__(self) -> None:
        self.close()

    def take(self) -> int | None:
        if self.fd < 0:  # given up or closed to make room: open the file again
            return None
        with _KEPT_LOCK:
            fd, self.fd = self.fd, -1
            _KEPT.pop(id(self), None)
        return fd if fd >= 0 else None

    def close(self) -> None:
        if self.fd >= 0:
            with _KEPT_LOCK:
                self._close_locked()

    def _close_locked(self) -> None:
        fd, self.fd = self.fd, -1
        _KEPT.pop(id(self), None)
        if fd >= 0:
            os.close(fd)


KEPT_DESCRIPTORS = 8
"""Descriptors of read heads kept open at most, in the whole process."""
_KEPT: dict[int, weakref.ref[_Kept]] = {}  # in the order they were kept
_KEPT_LOCK = threading.RLock()  # re-entrant: one collected while it is held closes its own


class _FileEntry(Entry):
    """An entry backed by a file on disk: read on demand, head without reading all."""

    def __init__(self, path: str, file: str | Path, size: int, budget: ByteBudget, *,
                 whole_if_small: bool = False) -> None:
        """``whole_if_small``: the head read takes the whole file when it is one the
        decoder would read rather than map (below :data:`MAP_FROM`, within
        ``Limits.max_entry_size``), as the decoder would read it (into ``bytes`` or a
        block of the pool, see :data:`READ_AS_BYTES`): a file uploaded on its own is
        read whole if it is a record, and one read costs less than two (an archive
        that small costs little read twice)."""
        # the loader holds no reference to the entry: an entry let go is collected at
        # once (with its kept descriptor), not by a later cycle collection
        super().__init__(path, size, _loader=functools.partial(_load_file, file, path, budget))
        self._file = file  # a Path made only when asked for (disk_path)
        self._budget = budget
        self._head_is_file = False  # the head read reached the end: it is the whole file
        self._whole_if_small = whole_if_small

    @property
    def disk_path(self) -> Path | None:
        file = self._file
        if not isinstance(file, Path):
            file = self._file = Path(file)
        return file

    @property
    def disk_file(self) -> str | Path:
        return self._file

    @property
    def in_memory(self) -> bool:
        return self._data is not None or (self._head is not None and self._head_is_file)

    def read(self) -> bytes | memoryview:
        """All the bytes: those of the head read when it held the whole file (no second
        open), else the file read again."""
        if self._data is None and self._head is not None and self._head_is_file:
            self._budget.check_entry_size(self.path, len(self._head))
            self._data = self._head
        return super().read()

    def _take(self) -> int | None:
        """The descriptor kept from the head read, now the caller's (None: none kept)."""
        kept = self._kept
        return None if kept is None else kept.take()

    def _open_fd(self) -> int:
        """A descriptor of the file opened for reading (the one its head was read
        through, when still open), refused unless it is a regular file (the caller
        closes it; see :func:`~ecgingest.formats._base.open_regular`)."""
        fd = self._take()
        return open_regular(self._file, name=self.path)[0] if fd is None else fd

    def take_descriptor(self) -> tuple[int, bytes] | None:
        kept = self._kept
        if kept is None or self._data is not None:
            return None
        fd = kept.take()
        head = self._head
        return None if fd is None else (fd, b"" if head is None else bytes(head))

    @contextlib.contextmanager
    def view(self, *, prefault: bool = True, as_bytes: bool = False) -> Iterator[memoryview]:
        """The file's bytes: read into memory, or memory-mapped from :data:`MAP_FROM` bytes.

        A mapping saves the copy (a large read takes 1.3 to 2 times as long when
        the bytes are copied first), but a read of a page the file no longer
        has raises ``SIGBUS``, which would kill the process. So every mapping is
        guarded (:mod:`ecgingest._ext.mapping`: such a read gets zeros instead),
        and a mapped file that lost bytes during its decode, or whose size
        changed by its end, gives
        :class:`~ecgingest.errors.SourceUnavailableError` instead of a record or
        of whatever error the zeros led the decoder to. Files below
        :data:`MAP_FROM` are read, as is a file whose size changed since it was
        listed or that cannot be guarded. Whatever a failing decoder leaves
        behind, the mapping goes with the last view of it, and the exception
        drops the locals of its finished frames.
        """
        if self.in_memory or self.size == 0:
            with super().view(as_bytes=as_bytes) as data:
                yield data
            return
        self._budget.check_entry_size(self.path, self.size)
        fd = self._open_fd()  # a bare descriptor: a buffered stream costs four system calls
        try:
            size = os.fstat(fd).st_size
            self._budget.check_entry_size(self.path, size)
            mapped = _map(fd, size) if size >= MAP_FROM and size == self.size else None
            guard = _guard(mapped, prefault)
            if guard < 0 and mapped is not None:
                _close_quietly(mapped)
                mapped = None
            data = _read_all(fd, size, as_bytes) if mapped is None else memoryview(mapped)
            try:
                yield data
            except BaseException as exc:
                drop_frames(exc)
                if mapped is not None:
                    lost, guard = _unguard(guard), -1
                    check_unchanged(fd, size, self.path, lost_bytes=lost, cause=exc)
                raise
            else:
                if mapped is not None:
                    lost, guard = _unguard(guard), -1
                    check_unchanged(fd, size, self.path, lost_bytes=lost)
            finally:
                if mapped is not None and guard >= 0:
                    _unguard(guard)  # each slot is given up once, before the unmapping
                _release_quietly(data)
                if mapped is not None:
                    _close_quietly(mapped)
                del data, mapped
        finally:
            os.close(fd)

    def _read_head(self, n: int) -> bytes | memoryview:
        """The first ``n`` bytes, and up to :data:`HEAD_READ` (one read costs the same:
        a header a little longer than what detection looks at comes with it, and a
        small file whole): one positioned read of a bare descriptor (a buffered
        stream would cost four more system calls than the read itself), kept open
        for the read of the rest when there is more and the file is still the size
        listed."""
        if self._data is not None:
            return bytes(self._data[:n])
        fd = self._take()
        if fd is None:
            fd, info = open_regular(self._file, name=self.path)
            keep = RANGED_READS and info.st_size == self.size
            known = info.st_size
        else:
            keep, known = True, self.size  # checked when the descriptor was kept
        # no more than the file holds: a shorter read would take a second call to see
        # the end
        want = max(n, HEAD_READ) if known <= 0 else min(max(n, HEAD_READ), known)
        whole = (self._whole_if_small and RANGED_READS and 0 < known < MAP_FROM
                 and known <= self._budget.limits.max_entry_size)
        head: bytes | memoryview
        try:
            if whole:  # all of it at once (see __init__), read as the decoder's read would
                head = _read_whole(fd, known)
            elif not hasattr(os, "pread"):  # Windows
                head = read_up_to(functools.partial(os.read, fd), want)
            else:
                head = read_up_to(lambda k: os.pread(fd, k, want - k), want)
        except BaseException:
            os.close(fd)
            raise
        self._head_is_file = len(head) == known == self.size
        if keep and len(head) < self.size:  # more to read: by this descriptor
            self._kept = _Kept(fd)
        else:
            os.close(fd)
        return head


_TEXT_STARTS = (b"<", b"{", b"[")
"""First characters of an XML or JSON document (after blanks and a UTF-8 byte-order
mark)."""


def _read_whole(fd: int, size: int) -> bytes | memoryview:
    """All ``size`` bytes of a file below :data:`MAP_FROM`, read before its format is
    known: into ``bytes`` when it opens like a text document (an XML or JSON parser
    takes ``bytes``; a UTF-16 one too), else as :func:`_read_all` reads it (from
    :data:`READ_AS_BYTES`, into a block of the pool). The look at the start costs a
    read of 64 bytes; a copy of the whole file out of the block would cost more."""
    if size >= READ_AS_BYTES and pooling():
        start = os.pread(fd, 64, 0)
        if start[:2] in (b"\xff\xfe", b"\xfe\xff") or \
                start.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] in _TEXT_STARTS:
            return _held(_read_all(fd, size, as_bytes=True))
    return _held(_read_all(fd, size))


def _held(view: memoryview) -> bytes | memoryview:
    """The ``bytes`` object under a view that shows all of one (the view released), else
    the view itself (of a block of the pool)."""
    under = view.obj
    if type(under) is bytes and len(under) == view.nbytes:
        view.release()
        return under
    return view


def _as_stream(fd: int) -> io.BufferedReader:
    """A blocking buffered stream over an open descriptor (closed when it cannot be)."""
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _load_file(file: str | Path, name: str, budget: ByteBudget) -> bytes:
    """All the bytes of a file on disk (an entry's loader)."""
    with _as_stream(open_regular(file, name=name)[0]) as fh:
        size = os.fstat(fh.fileno()).st_size
        budget.check_entry_size(name, size)
        data = fh.read(size + 1)  # never more than the file really holds
    budget.check_entry_size(name, len(data))
    return data


def read_up_to(read: Callable[[int], bytes], n: int) -> bytes:
    """``n`` bytes from ``read(k)`` (which reads at most the ``k`` still missing), fewer
    only at the end of the file or stream."""
    data = read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    left = n - len(data)
    while left:
        more = read(left)
        if not more:
            break
        parts.append(more)
        left -= len(more)
    return b"".join(parts)


class Upload:
    """What ingestion walks: a single file, or a container of entries."""

    def __init__(self, label: str, *, single: Entry | None = None,
                 entries: Callable[[], Iterator[Entry | Skipped | Failed]] | None = None,
                 close: Callable[[], None] | None = None) -> None:
        self.label = label
        self.single = single
        self._entries = entries
        self._close = close

    def entries(self) -> Iterator[Entry | Skipped | Failed]:
        """Entries in upload order; :class:`~Failed` for unreadable ones."""
        if self.single is not None:
            yield self.single
        elif self._entries is not None:
            yield from self._entries()

    def close(self) -> None:
        if self.single is not None:  # its file's descriptor goes with the upload
            self.single.release()
        if self._close is not None:
            self._close()

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class FileGroup:
    """Some files of one directory on disk, read as one upload (a WFDB pool)."""

    directory: Path
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.directory}{os.sep} ({len(self.names)} files)"


def normalise_entry_name(name: str) -> str:
    """Archive-relative POSIX name; :class:`UnsafeEntryError` if it escapes.

    Backslashes count as separators, ``./`` and empty parts are dropped,
    ``..`` is resolved only while it stays inside the archive.
    """
    if (name and "\\" not in name and "//" not in name and "\x00" not in name
            and "/." not in "/" + name and name[0] != "/" and name[-1] != "/"
            and name[1:2] != ":"):
        return name  # already normal: the common case, checked without splitting
    if "\x00" in name:
        raise UnsafeEntryError("entry name contains a NUL byte", path=name)
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        raise UnsafeEntryError("absolute entry name (would escape the archive)", path=name)
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeEntryError("entry name escapes the archive with '..'", path=name)
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise UnsafeEntryError("empty entry name", path=name)
    return posixpath.join(*parts)


@dataclass(frozen=True)
class Failed:
    """An archive entry whose bytes could not be read completely and correctly."""

    path: str
    error: EcgIngestError
    fatal: bool = False
    """True when the archive cannot be read past this entry."""


def _map(fd: int, size: int) -> mmap.mmap | None:
    """The first ``size`` bytes of an open file mapped read-only, or None where it cannot be.

    No page is mapped in here (``MAP_POPULATE`` would do it inside the ``mmap`` call,
    which Python makes holding the GIL): :func:`_guard` does it without the GIL."""
    try:
        if hasattr(mmap, "MAP_SHARED"):
            return mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)  # Windows
    except (OSError, ValueError):  # not mappable (a special file system): read instead
        return None


def _guard(mapped: mmap.mmap | None, prefault: bool) -> int:
    """The guard slot of a mapping (-1: none to guard, or it cannot be guarded; a
    system without ``SIGBUS`` needs no guard and gets 0), its pages mapped in first
    with ``prefault`` (one kernel call instead of a fault per page)."""
    if mapped is None:
        return -1
    if not mapping.GUARDED:
        return 0
    return mapping.guard(mapped, prefault)


def _unguard(slot: int) -> bool:
    """Stop guarding a mapping: True when a read found part of the file gone."""
    return mapping.unguard(slot) if mapping.GUARDED else False


def _read_all(fd: int, size: int, as_bytes: bool = False) -> memoryview:
    """Up to ``size`` bytes of an open file (fewer when it shrank since it was measured).

    A small file is read into a ``bytes`` object (the decoder takes the bytes
    themselves, as from an upload of bytes: no copy for a parser that wants
    ``bytes``), and so is one below :data:`MAP_FROM` when ``as_bytes`` asks for it
    or the pool is turned off (a block of its own would be fresh memory twice over).
    A larger one lands in a block of the array pool: warm memory, not fresh pages
    faulted in one by one (see :data:`READ_AS_BYTES`). Only the bytes read are
    handed on.
    """
    if RANGED_READS and (size < READ_AS_BYTES
                         or (size < MAP_FROM and (as_bytes or not pooling()))):
        return memoryview(read_up_to(lambda k: os.pread(fd, k, size - k), size))
    buffer = aligned_empty(size, np.uint8, pooled=True)
    view = memoryview(buffer.data)  # the array's own buffer, shaped as bytes
    got = 0
    if RANGED_READS:  # positioned reads of the bare descriptor
        while got < size:
            n = os.preadv(fd, [view[got:]], got)
            if not n:
                break
            got += n
    else:
        with io.FileIO(fd, closefd=False) as fh:
            fh.seek(0)
            while got < size:
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
    return view[:got] if got < size else view
