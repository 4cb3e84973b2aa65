"""Entries and what a walk yields: files, skipped reports, failures, uploads.

An :class:`Upload` is either a single file (``single``) or a container whose
``entries()`` yields :class:`Entry` objects (and :class:`Skipped` reports) in
a defined order; :func:`ecgingest.uploads.open_upload` makes one from what the
caller passed, :func:`ecgingest.archive.open_archive` from an archive.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

from .errors import EcgIngestError, UnsafeEntryError

if TYPE_CHECKING:
    from .limits import ByteBudget

__all__ = ["Source", "Entry", "Skipped", "Failed", "Upload", "FileGroup", "SNIFF_BYTES",
           "normalise_entry_name"]

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], list, tuple]

SNIFF_BYTES = 64 * 1024
"""Bytes of an entry that content detection may look at without reading it all."""


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
    _head: bytes | None = field(default=None, repr=False)
    nested_note: str | None = field(default=None, repr=False)
    """Set on an archive found inside the archive and not opened: the skip reason."""

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
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

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
        return self._head[:n]

    def _read_head(self, n: int) -> bytes:
        return bytes(self.read()[:n])

    def discard(self) -> None:
        """Drop the bytes for good: the entry was used and will not be read again."""
        self._data = None
        self._head = None
        self._loader = None

    def release(self) -> None:
        """Drop cached bytes of an entry that can be read again (files on disk, archive
        entries read on demand): holding it then costs no memory until it is used."""
        if self._loader is not None:
            self._data = None
            self._head = None

    @contextlib.contextmanager
    def view(self, *, prefault: bool = True) -> Iterator[memoryview]:
        """The entry's bytes as a memoryview, without a copy where possible.

        ``prefault`` applies to files on disk, which are memory-mapped: map all
        their pages in one call up front, or let the decoder's reads fault them
        in as it goes.
        """
        data = memoryview(self.read())
        try:
            yield data
        finally:
            _release_quietly(data)


_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
"""Map the whole file up front (Linux): one kernel call instead of a fault per page."""


def _release_quietly(data: memoryview) -> bool:
    """Release a view; False when a decoder still exports it (left to the garbage collector)."""
    try:
        data.release()
    except BufferError:
        return False
    return True


class _FileEntry(Entry):
    """An entry backed by a file on disk: read on demand, head without reading all."""

    def __init__(self, path: str, file: Path, size: int, budget: ByteBudget) -> None:
        super().__init__(path, size, _loader=self._load)
        self._file = file
        self._budget = budget

    @property
    def disk_path(self) -> Path | None:
        return self._file

    def _load(self) -> bytes:
        with open(self._file, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._budget.check_entry_size(self.path, size)
            data = fh.read(size + 1)  # never more than the file really holds
        self._budget.check_entry_size(self.path, len(data))
        return data

    @contextlib.contextmanager
    def view(self, *, prefault: bool = True) -> Iterator[memoryview]:
        """The file memory-mapped: decoding pays for its output arrays, not for a copy."""
        if self._data is not None or self.size == 0:
            with super().view() as data:
                yield data
            return
        self._budget.check_entry_size(self.path, self.size)
        try:
            with open(self._file, "rb") as fh:
                if hasattr(mmap, "MAP_SHARED"):
                    flags = mmap.MAP_SHARED | (_POPULATE if prefault else 0)
                    mapped = mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
                else:  # Windows
                    mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not mappable (special file system): read instead
            with super().view() as data:
                yield data
            return
        data = memoryview(mapped)
        try:
            yield data
        finally:
            if _release_quietly(data):
                mapped.close()

    def _read_head(self, n: int) -> bytes:
        if self._data is not None:
            return bytes(self._data[:n])
        with open(self._file, "rb") as fh:
            return fh.read(n)


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
