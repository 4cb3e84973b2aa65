"""Which files an upload holds, known before any is read, directory by directory.

A ZIP's central directory and a directory on disk name every entry up front. A
walk that knows them can tell when the last file of a directory has passed and
build that directory's multi-file records at once, instead of after the whole
upload (``iter_records`` holds about one record that way). A one-stream archive
(TAR, gzip) tells its names only as it goes: it has no listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..detect import anchor_format
from ..errors import UnsafeEntryError
from ..sources import Entry, Failed, Skipped, Upload, normalise_entry_name
from .blobs import Blob
from .zip import iter_central_members

__all__ = ["Listing", "ListedUpload", "listing_of", "zip_listing"]

class _Names:
    """Distinct strings in compact form: their hashes (sorted) in an array and their
    UTF-8 bytes in one blob. Which index a string has is exact (the bytes are
    compared), at a few dozen bytes a string instead of a string object and a dict
    entry each."""

    __slots__ = ("hashes", "blob", "starts")

    def __init__(self, names: Iterable[str]) -> None:
        ordered = sorted(names, key=hash)
        self.hashes = np.fromiter((hash(name) for name in ordered), dtype=np.int64,
                                  count=len(ordered))
        encoded = [name.encode("utf-8", "surrogatepass") for name in ordered]
        self.starts = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.starts[1:])
        self.blob = b"".join(encoded)

    def __len__(self) -> int:
        return len(self.hashes)

    def index(self, name: str) -> int | None:
        """The index of ``name``, or None when it is not one of the strings."""
        key = hash(name)
        hashes = self.hashes
        at = int(np.searchsorted(hashes, key))
        encoded: bytes | None = None
        while at < len(hashes) and hashes[at] == key:  # distinct strings may share a hash
            if encoded is None:
                encoded = name.encode("utf-8", "surrogatepass")
            if self.blob[self.starts[at]:self.starts[at + 1]] == encoded:
                return at
            at += 1
        return None

    def name(self, at: int) -> str:
        return self.blob[self.starts[at]:self.starts[at + 1]].decode("utf-8", "surrogatepass")


class Listing:
    """The files of an upload by directory, counted down as the walk yields them.

    It lasts as long as the walk, so it is compact: per distinct path its count still
    to come, declared size and directory, per directory its counts still to come, in
    arrays (a dict entry and a string object per path would outweigh a record of a
    few hundred kilobytes in an upload of a thousand records)."""

    __slots__ = ("paths", "counts", "sizes", "directory_of", "directories", "left",
                 "anchors_left")

    def __init__(self, paths: Iterable[str], sizes: Iterable[int] | None = None) -> None:
        listed = list(paths)
        # building it may take a dict a path: the walk has not begun
        path_at = {path: 0 for path in listed}
        directory_at = {_directory(path): 0 for path in path_at}
        self.paths = _Names(path_at)
        self.directories = _Names(directory_at)
        for i in range(len(self.paths)):
            path_at[self.paths.name(i)] = i
        for i in range(len(self.directories)):
            directory_at[self.directories.name(i)] = i
        self.counts = np.zeros(len(path_at), dtype=np.int32)  # items still to come with it
        self.directory_of = np.zeros(len(path_at), dtype=np.int32)
        self.left = np.zeros(len(directory_at), dtype=np.int64)  # -1: not known, or done
        self.anchors_left = np.zeros(len(directory_at), dtype=np.int64)  # headers to come
        self.sizes: np.ndarray | None = None
        """Declared sizes by path index (a ZIP's): a directory's records can then be
        planned before its signal files come (see :meth:`remaining`)."""
        declared = None
        if sizes is not None:
            self.sizes = np.zeros(len(path_at), dtype=np.int64)
            declared = iter(sizes)
        for path in listed:
            at = path_at[path]
            d = directory_at[_directory(path)]
            if declared is not None and self.sizes is not None:
                size = next(declared)
                if not self.counts[at]:
                    self.sizes[at] = size  # of the first member of that name
            self.counts[at] += 1
            self.directory_of[at] = d
            self.left[d] += 1
            if anchor_format(path.rsplit("/", 1)[-1]) is not None:
                self.anchors_left[d] += 1
        # A directory named like a file of the listing is left out: an archive inside
        # the upload yields its entries below the archive's own path, which the listing
        # cannot name, so such a directory is never known complete.
        for directory, d in directory_at.items():
            parts = directory.split("/")
            if directory and any("/".join(parts[:i]) in path_at
                                 for i in range(1, len(parts) + 1)):
                self.left[d] = -1

    def _listed(self, directory: str) -> int | None:
        """Index of ``directory`` while its files still to come are known, else None."""
        d = self.directories.index(directory)
        return d if d is not None and self.left[d] > 0 else None

    def passed(self, path: str, *, joins: bool) -> str | None:
        """Count the walk's item ``path`` off; the directory it completes, or None.

        ``joins``: the item is a file the records of its directory may read. Such a
        file the listing does not name leaves its directory unknown (never complete
        before the walk's end), as without a listing; any other unnamed item (an
        unsafe name reported under its raw form) changes nothing."""
        directory = _directory(path)
        d = self._listed(directory)
        if d is None:
            return None
        at = self.paths.index(path)
        if at is None or self.counts[at] <= 0:
            if joins:
                self.left[d] = -1
            return None
        self.counts[at] -= 1
        self.left[d] -= 1
        if self.anchors_left[d] and anchor_format(path.rsplit("/", 1)[-1]):
            self.anchors_left[d] -= 1
        if self.left[d]:
            return None
        self.left[d] = -1  # complete
        return directory

    def lists(self, directory: str) -> bool:
        """True while ``directory``'s files still to come are known (it is listed, not
        complete, and no file it does not name came to it)."""
        return self._listed(directory) is not None

    def headers_passed(self, directory: str) -> bool:
        """True when every record header the listing names in ``directory`` has passed
        and files of it are still to come."""
        d = self._listed(directory)
        return d is not None and not self.anchors_left[d]

    def remaining(self, directory: str) -> dict[str, int]:
        """The files of ``directory`` still to come, by path, with their declared sizes
        (empty without sizes). One pass over the listing: asked once per directory."""
        d = self._listed(directory)
        if self.sizes is None or d is None:
            return {}
        found = np.flatnonzero((self.directory_of == d) & (self.counts > 0))
        return {self.paths.name(int(at)): int(self.sizes[at]) for at in found}

    def will_come(self, path: str) -> bool:
        """True when the walk is still to yield ``path`` (a listed directory's)."""
        if self._listed(_directory(path)) is None:
            return False
        at = self.paths.index(path)
        return at is not None and self.counts[at] > 0

    def named(self, path: str) -> int | None:
        """Index of ``path`` among the distinct paths the listing names (None: unnamed)."""
        return self.paths.index(path)

    def __len__(self) -> int:
        """Distinct paths named."""
        return len(self.paths)


def _directory(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


class ListedUpload(Upload):
    """An upload whose entries are named before any is read.

    ``listing`` gives them (None: unknown after all, e.g. no whole ZIP central
    directory); ``forget`` tells the reader that entries it handed out in memory
    were let go, so that their bytes no longer count against what a bounded walk
    holds; ``reload`` gives an entry handed out in memory as one read again from
    the upload when used (None: it cannot be read again).
    """

    def __init__(self, label: str, *, entries: Callable[[], Iterator[Entry | Skipped | Failed]],
                 listing: Callable[[], Listing | None],
                 forget: Callable[[Iterable[str]], None] | None = None,
                 reload: Callable[[Entry], Entry | None] | None = None,
                 close: Callable[[], None] | None = None) -> None:
        super().__init__(label, entries=entries, close=close)
        self.listing = listing
        self.forget = forget
        self.reload = reload


def listing_of(paths: Iterable[str], sizes: Iterable[int] | None = None) -> Listing:
    """The listing of a walk that yields an item for each of ``paths`` (normalised;
    ``sizes``: their declared sizes, in the same order)."""
    return Listing(paths, sizes)


def zip_listing(blob: Blob) -> Listing | None:
    """The files of a ZIP as its central directory names them (None when it cannot tell
    exactly: no whole central directory, or a name whose encoding is ambiguous)."""
    members = iter_central_members(blob)
    if members is None:
        return None
    paths: list[str] = []
    sizes: list[int] = []
    for member in members:  # one at a time: the records of a large ZIP are not all held
        raw = member.name_bytes
        if raw.isascii():
            name = raw.decode("ascii")
        elif member.utf8:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
        else:
            return None  # CP437 or the archiver's code page: the reader may decode it otherwise
        if name.endswith("/"):
            continue  # a directory entry
        try:
            path = normalise_entry_name(name)
        except UnsafeEntryError:
            continue  # reported as skipped under its raw name: no file of any directory
        paths.append(path)
        sizes.append(member.usize)
    return listing_of(paths, sizes)
