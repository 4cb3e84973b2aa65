"""Turning what the caller passed into entries: one file, a directory, an archive.

An :class:`Upload` is either a single file (``single``) or a container whose
``entries()`` yields :class:`Entry` objects (and :class:`Skipped` reports) in
a defined order. Directories are containers whose entries are the files
below them; archives come from :func:`ecgingest.archive.open_archive`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Union

from .errors import EcgIngestError, UnsafeEntryError

__all__ = ["Source", "Entry", "Skipped", "Upload", "open_upload", "SNIFF_BYTES"]

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
    _loader: Callable[[], bytes] | None = field(default=None, repr=False)
    _data: bytes | memoryview | None = field(default=None, repr=False)
    _head: bytes | None = field(default=None, repr=False)
    nested_note: str | None = field(default=None, repr=False)
    """Set on an archive found inside the archive and not opened: the skip reason."""

    @classmethod
    def from_bytes(cls, path: str, data: bytes | memoryview) -> Entry:
        return cls(path, len(data), _data=data)

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
        """Drop cached bytes of an entry that can be read again (files on disk)."""
        if self._loader is not None:
            self._data = None

    @contextlib.contextmanager
    def view(self) -> Iterator[memoryview]:
        """The entry's bytes as a memoryview, without a copy where possible."""
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

    def _load(self) -> bytes:
        with open(self._file, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._budget.check_entry_size(self.path, size)
            data = fh.read(size + 1)  # never more than the file really holds
        self._budget.check_entry_size(self.path, len(data))
        return data

    @contextlib.contextmanager
    def view(self) -> Iterator[memoryview]:
        """The file memory-mapped: decoding pays for its output arrays, not for a copy."""
        if self._data is not None or self.size == 0:
            with super().view() as data:
                yield data
            return
        self._budget.check_entry_size(self.path, self.size)
        try:
            with open(self._file, "rb") as fh:
                if hasattr(mmap, "MAP_SHARED"):
                    mapped = mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_SHARED | _POPULATE,
                                       prot=mmap.PROT_READ)
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
        """Entries in upload order; :class:`~ecgingest.archive.Failed` for unreadable ones."""
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


def _walk_directory(root: Path, budget: ByteBudget) -> Iterator[Entry | Skipped | Failed]:
    """Files below ``root`` in sorted relative-path order; links are not followed."""
    stack = [root]
    found: list[tuple[str, str, Path]] = []
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for item in it:
                rel = Path(item.path).relative_to(root).as_posix()
                if item.is_symlink():
                    found.append((rel, "symbolic link (links are never followed)", Path(item.path)))
                elif item.is_dir(follow_symlinks=False):
                    stack.append(Path(item.path))
                elif item.is_file(follow_symlinks=False):
                    found.append((rel, "", Path(item.path)))
                else:
                    found.append((rel, "not a regular file (device, socket or pipe)",
                                  Path(item.path)))
    for rel, refusal, file in sorted(found, key=lambda item: item[0]):
        budget.add_entry(rel)
        if refusal:
            yield Skipped(rel, refusal)
            continue
        try:
            path = normalise_entry_name(rel)
        except UnsafeEntryError as exc:
            yield Skipped(rel, exc.message)
            continue
        yield from _archive.nested_in_directory(
            _FileEntry(path, file, file.stat().st_size, budget), budget)


def _read_stream(stream: IO[bytes], limits: Limits, label: str, already: int = 0) -> bytes:
    from .errors import LimitExceededError

    cap = limits.max_entry_size - already
    data = stream.read(max(cap, 0) + 1)
    if data is None:
        data = b""
    if len(data) > cap:
        raise LimitExceededError(
            f"upload exceeds {limits.max_entry_size} bytes; raise Limits.max_entry_size to "
            f"read it", limit="max_entry_size", value=limits.max_entry_size, path=label)
    return bytes(data)


def open_upload(source: Source, limits: Limits, budget: ByteBudget) -> Upload:
    """Classify ``source`` and return the :class:`Upload` to walk."""
    if isinstance(source, (list, tuple)):
        opened = _archive.open_archive(source, limits, budget)
        if opened is None:
            raise EcgIngestError("a list of paths must be the volumes of one archive")
        return opened
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source) if not isinstance(source, bytes) else source
        entry = Entry.from_bytes("upload", data)
        opened = _archive.open_archive(entry, limits, budget)
        if opened is not None:
            return opened
        budget.check_entry_size("<bytes>", len(data))  # an archive's entries are checked one by one
        return Upload("<bytes>", single=entry)
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        if path.is_dir():
            return Upload(str(path), entries=lambda: _walk_directory(path, budget))
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {str(path)!r}")
        entry = _FileEntry(path.name, path, path.stat().st_size, budget)
        return (_archive.open_archive(entry, limits, budget)
                or Upload(str(path), single=entry))
    if isinstance(source, FileGroup):
        return Upload(str(source), entries=lambda: _group_entries(source, budget))
    if hasattr(source, "read"):
        label = str(getattr(source, "name", "<stream>"))
        name = os.path.basename(label) if label != "<stream>" else "upload"
        opened, head = _archive.open_stream(source, label, limits, budget)
        if opened is not None:
            return opened
        data = head + _read_stream(source, limits, label, already=len(head))
        return Upload(label, single=Entry.from_bytes(name, data))
    raise TypeError(
        f"source must be a path, bytes or a binary file object, not {type(source).__name__}")


@dataclass(frozen=True)
class FileGroup:
    """Some files of one directory on disk, read as one upload (a WFDB pool)."""

    directory: Path
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.directory}{os.sep} ({len(self.names)} files)"


def _group_entries(group: FileGroup, budget: ByteBudget) -> Iterator[Entry | Skipped]:
    for name in group.names:
        budget.add_entry(name)
        file = group.directory / name
        yield _FileEntry(normalise_entry_name(name), file, file.stat().st_size, budget)


def is_upload_file(path: Path, limits: Limits) -> bool:
    """True when a file on disk is an upload of its own (an archive or a single-file format)."""
    from .detect import detect

    entry = _FileEntry(path.name, path, path.stat().st_size, ByteBudget(limits))
    return _archive.archive_kind(entry.head(1024)) is not None or detect(entry) is not None


def directory_pool(header: Path, budget: ByteBudget) -> dict[str, Entry]:
    """The files next to a WFDB header on disk, by name (what wfdb users expect)."""
    pool: dict[str, Entry] = {}
    for item in sorted(header.parent.iterdir()):
        if item.is_file() and not item.is_symlink():
            pool[item.name] = _FileEntry(item.name, item, item.stat().st_size, budget)
    return pool



# Imported last: the archive layer builds Entry/Skipped/Upload objects of this module.
from . import archive as _archive  # noqa: E402
from .archive import ByteBudget, Failed, Limits, normalise_entry_name  # noqa: E402
