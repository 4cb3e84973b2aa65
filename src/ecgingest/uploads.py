"""Turning what the caller passed into an :class:`~ecgingest.sources.Upload`.

A path to a file, a directory, bytes, a binary stream, a list of archive
volumes or a :class:`~ecgingest.sources.FileGroup`: each becomes a single
entry or a container whose entries come in a defined order. Archives are
opened by :mod:`ecgingest.archive`; directories are walked here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from . import archive
from .errors import (
    EcgIngestError,
    LimitExceededError,
    MissingDependencyError,
    SourceUnavailableError,
    UnsafeEntryError,
)
from .limits import ByteBudget, Limits
from .sources import (
    Entry,
    Failed,
    FileGroup,
    Skipped,
    Source,
    Upload,
    _FileEntry,
    normalise_entry_name,
)

__all__ = ["open_upload", "is_upload_file", "directory_pool", "is_url", "path_label"]


class _DirectoryWalk:
    """The files below ``root`` in sorted relative-path order; links are not followed.

    The tree is scanned once, before the first file is read: its listing is known
    up front.
    """

    def __init__(self, root: Path, budget: ByteBudget) -> None:
        self.root = root
        self.budget = budget
        self._found: list[tuple[str, str, Path]] | None = None

    def _scan(self) -> list[tuple[str, str, Path]]:
        if self._found is not None:
            return self._found
        root = self.root
        stack = [root]
        found: list[tuple[str, str, Path]] = []
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as it:
                for item in it:
                    rel = Path(item.path).relative_to(root).as_posix()
                    if item.is_symlink():
                        found.append((rel, "symbolic link (links are never followed)",
                                      Path(item.path)))
                    elif item.is_dir(follow_symlinks=False):
                        stack.append(Path(item.path))
                    elif item.is_file(follow_symlinks=False):
                        found.append((rel, "", Path(item.path)))
                    else:
                        found.append((rel, "not a regular file (device, socket or pipe)",
                                      Path(item.path)))
        self._found = sorted(found, key=lambda item: item[0])
        return self._found

    def listing(self) -> archive.Listing:
        paths = []
        for rel, _, _ in self._scan():
            try:
                paths.append(normalise_entry_name(rel))
            except UnsafeEntryError:
                paths.append(rel)  # reported under this name
        return archive.listing_of(paths)

    def entries(self) -> Iterator[Entry | Skipped | Failed]:
        budget = self.budget
        for rel, refusal, file in self._scan():
            budget.add_entry(rel)
            if refusal:
                yield Skipped(rel, refusal)
                continue
            try:
                path = normalise_entry_name(rel)
            except UnsafeEntryError as exc:
                yield Skipped(rel, exc.message)
                continue
            yield from archive.nested_in_directory(
                _FileEntry(path, file, file.stat().st_size, budget), budget)


def _read_stream(stream: IO[bytes], limits: Limits, label: str, already: int = 0) -> bytes:
    cap = limits.max_entry_size - already
    data = stream.read(max(cap, 0) + 1)
    if data is None:
        data = b""
    if len(data) > cap:
        raise LimitExceededError(
            f"upload exceeds {limits.max_entry_size} bytes; raise Limits.max_entry_size to "
            f"read it", limit="max_entry_size", value=limits.max_entry_size, path=label)
    return bytes(data)


def _require_regular(path: Path, info: os.stat_result | None = None) -> os.stat_result:
    """``path``'s status (``info`` when already known); :class:`SourceUnavailableError`
    unless it is a regular file.

    A FIFO named as an upload would block the first read until a writer comes,
    a device may never end: neither is opened.
    """
    info = path.stat() if info is None else info
    if not stat.S_ISREG(info.st_mode):
        raise SourceUnavailableError(
            "not a regular file or directory (a pipe, socket or device is never read)",
            path=str(path))
    return info


BYTES_ENTRY = "upload"
"""The name and path of the one entry of bytes uploaded as they are (in records and
errors)."""

BYTES_LABEL = "<bytes>"
"""What a limit's error calls an upload of bytes as a whole."""


def open_upload(source: Source, limits: Limits, budget: ByteBudget) -> Upload:
    """Classify ``source`` and return the :class:`Upload` to walk."""
    if isinstance(source, (list, tuple)):
        for volume in source:
            if isinstance(volume, (str, os.PathLike)) and os.path.exists(volume):
                _require_regular(Path(os.fspath(volume)))
        opened = archive.open_archive(source, limits, budget)
        if opened is None:
            raise EcgIngestError("a list of paths must be the volumes of one archive")
        return opened
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source) if not isinstance(source, bytes) else source
        entry = Entry.from_bytes(BYTES_ENTRY, data)
        # the bytes themselves tell (archive_kind looks at their first HEAD_BYTES only):
        # no copy of a head for most uploads, which are no archive
        if archive.archive_kind(data) is not None:
            opened = archive.open_archive(entry, limits, budget)
            if opened is not None:
                return opened
        budget.check_entry_size(BYTES_LABEL, len(data))  # an archive's entries are checked one by one
        return Upload(BYTES_LABEL, single=entry)
    if isinstance(source, str) and is_url(source):
        return _open_url(source, limits, budget)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source) or "."  # as Path("") names it
        try:
            # one status says directory, file or missing (before any open: a pipe or a
            # device named as an upload is never opened)
            info = os.stat(text)
        except (OSError, ValueError):
            if not os.path.exists(text):  # missing (any other error of the status is raised)
                raise FileNotFoundError(
                    f"no such file or directory: {path_label(text)!r}") from None
            info = os.stat(text)
        if stat.S_ISDIR(info.st_mode):
            path = Path(text)
            walk = _DirectoryWalk(path, budget)
            return archive.ListedUpload(str(path), entries=walk.entries, listing=walk.listing)
        label = path_label(text)
        if not stat.S_ISREG(info.st_mode):
            _require_regular(Path(label), info)
        # a file uploaded on its own is read whole at its first look if it is small (a
        # record is read whole; an archive so small costs little read twice)
        entry = _FileEntry(os.path.basename(label), label, info.st_size, budget,
                           whole_if_small=True)
        return (archive.open_archive(entry, limits, budget)
                or Upload(label, single=entry))
    if isinstance(source, FileGroup):
        return Upload(str(source), entries=lambda: _group_entries(source, budget))
    if hasattr(source, "read"):
        label = str(getattr(source, "name", "<stream>"))
        name = os.path.basename(label) if label != "<stream>" else "upload"
        opened, head = archive.open_stream(source, label, limits, budget)
        if opened is not None:
            return opened
        data = head + _read_stream(source, limits, label, already=len(head))
        return Upload(label, single=Entry.from_bytes(name, data))
    raise TypeError(
        f"source must be a path, bytes or a binary file object, not {type(source).__name__}")


def path_label(text: str) -> str:
    """``str(Path(text))`` (what errors and listings name the upload), without making a
    Path for text that is already in that form (most paths given)."""
    if os.sep == "/" and os.altsep is None and text and "//" not in text and not (
            text.endswith(("/", "/.")) or text.startswith("./") or "/./" in text
            or text == "."):
        return text
    return str(Path(text))


def is_url(text: str) -> bool:
    """True for ``scheme://...`` text that names no file here (an upload to fetch)."""
    return "://" in text and not os.path.exists(text)


def _open_url(url: str, limits: Limits, budget: ByteBudget) -> Upload:
    """An upload read from a URL through fsspec (kept open while the upload is walked)."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError(
            "reading a URL needs fsspec: pip install 'ecgingest[dask]' (or fsspec; http "
            "and https also need aiohttp)", extra="dask", path=url) from exc
    try:
        stream = fsspec.open(url, "rb").open()
    except (OSError, ValueError, ImportError) as exc:
        raise SourceUnavailableError(f"cannot open the URL: {exc}", path=url) from exc
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "upload"
    try:
        opened, head = archive.open_stream(stream, url, limits, budget)
        if opened is None:
            data = head + _read_stream(stream, limits, url, already=len(head))
            stream.close()
            return Upload(url, single=Entry.from_bytes(name, data))
    except BaseException:
        stream.close()
        raise
    return Upload(url, entries=opened.entries, close=_then(opened.close, stream.close))


def _then(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            second()

    return both


def _group_entries(group: FileGroup, budget: ByteBudget) -> Iterator[Entry | Skipped]:
    for name in group.names:
        budget.add_entry(name)
        file = group.directory / name
        yield _FileEntry(normalise_entry_name(name), file, file.stat().st_size, budget)


def is_upload_file(path: Path, limits: Limits) -> bool:
    """True when a file on disk is an upload of its own (an archive or a single-file format)."""
    from .detect import detect

    entry = _FileEntry(path.name, path, path.stat().st_size, ByteBudget(limits))
    return archive.archive_kind(entry.head(1024)) is not None or detect(entry) is not None


def directory_pool(header: str, budget: ByteBudget) -> dict[str, Entry]:
    """The regular files next to a WFDB header on disk (links not followed), by name
    (what wfdb users expect). ``header`` as :func:`path_label` gives it: each file is
    then named as ``Path(header).parent / name`` would name it."""
    folder = os.path.dirname(header)
    found = []
    with os.scandir(folder or ".") as listing:
        for item in listing:
            if item.is_file(follow_symlinks=False):  # the listing's file type: no status
                found.append((item.name, item.path if folder else item.name,
                              item.stat(follow_symlinks=False).st_size))
    found.sort()
    return {name: _FileEntry(name, file, size, budget) for name, file, size in found}
