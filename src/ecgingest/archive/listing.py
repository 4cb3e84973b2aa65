"""Which files an upload holds, known before any is read, directory by directory.

A ZIP's central directory and a directory on disk name every entry up front. A
walk that knows them can tell when the last file of a directory has passed and
build that directory's multi-file records at once, instead of after the whole
upload (``iter_records`` holds about one record that way). A one-stream archive
(TAR, gzip) tells its names only as it goes: it has no listing.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..detect import anchor_format
from ..errors import UnsafeEntryError
from ..sources import Entry, Failed, Skipped, Upload, entry_directory, normalise_entry_name
from .blobs import Blob
from .zip import CentralMember, iter_central_members

__all__ = ["Listing", "ListedUpload", "listing_of", "zip_listing"]

class _Names:
    """Distinct strings in compact form: their keys (sorted) in an array and their
    UTF-8 bytes in one blob. Which index a string has is exact (the bytes are
    compared), at a few dozen bytes a string instead of a string object and a dict
    entry each."""

    __slots__ = ("hashes", "blob", "starts")

    def __init__(self, hashes: np.ndarray, blob: bytes, starts: np.ndarray) -> None:
        self.hashes, self.blob, self.starts = hashes, blob, starts

    @classmethod
    def of(cls, keys: array[int], blob: bytearray, lengths: array[int]
           ) -> tuple[_Names, np.ndarray]:
        """The distinct strings among those given (each by its :func:`_key`, its UTF-8
        bytes in ``blob`` one after the other, and their lengths), and the index each
        given string has."""
        given = np.frombuffer(keys, dtype=np.intc)
        ends = np.cumsum(np.frombuffer(lengths, dtype=np.int64))
        begins = ends - np.frombuffer(lengths, dtype=np.int64)

        def text(i: int) -> bytearray:
            return blob[begins[i]:ends[i]]

        order = np.argsort(given, kind="stable")
        ordered = given[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        # strings of one key: the same string (a name given twice), or distinct ones,
        # ordered by their bytes, then as given
        run_starts = np.flatnonzero(new)
        run_ends = np.append(run_starts[1:], len(order))
        for a, b in zip(run_starts[run_ends - run_starts > 1].tolist(),
                        run_ends[run_ends - run_starts > 1].tolist()):
            run = sorted(order[a:b].tolist(), key=lambda i: (bytes(text(i)), i))
            order[a:b] = run
            for j in range(a + 1, b):
                new[j] = text(run[j - a]) != text(run[j - a - 1])
        group = np.cumsum(new) - 1
        index = np.empty(len(order), dtype=np.int32)
        index[order] = group
        firsts = order[new]  # the first given of each distinct string
        starts = np.zeros(len(firsts) + 1, dtype=np.int64)
        np.cumsum(ends[firsts] - begins[firsts], out=starts[1:])
        starts = _narrow(starts)
        joined = bytearray()
        for begin, end in zip(begins[firsts].tolist(), ends[firsts].tolist()):
            joined += blob[begin:end]
        return cls(given[firsts], bytes(joined), starts), index

    def __len__(self) -> int:
        return len(self.hashes)

    def index(self, name: str) -> int | None:
        """The index of ``name``, or None when it is not one of the strings."""
        key = _key(name)
        hashes = self.hashes
        at = int(np.searchsorted(hashes, key))
        encoded: bytes | None = None
        while at < len(hashes) and hashes[at] == key:  # distinct strings may share one
            encoded = _utf8(name) if encoded is None else encoded
            if self.blob[self.starts[at]:self.starts[at + 1]] == encoded:
                return at
            at += 1
        return None

    def name(self, at: int) -> str:
        return self.blob[self.starts[at]:self.starts[at + 1]].decode("utf-8", "surrogatepass")


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` (counts, offsets, indices: none below -1) in the fewest bytes that
    hold them and -1: the listing's arrays are held for the whole walk."""
    top = int(values.max()) if len(values) else 0
    for dtype in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _key(text: str) -> int:
    """A string's key in :class:`_Names`: the high half of its hash (four bytes a name;
    strings of one key are told apart by their bytes)."""
    return hash(text) >> 32


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class Listing:
    """The files of an upload by directory, counted down as the walk yields them.

    It lasts as long as the walk, so it is compact: per distinct path its count still
    to come, declared size and directory, per directory its counts still to come, in
    arrays (a dict entry and a string object per path would outweigh a record of a
    few hundred kilobytes in an upload of a thousand records)."""

    __slots__ = ("paths", "counts", "sizes", "directory_of", "directories", "left",
                 "anchors_left")

    def __init__(self, files: Iterable[tuple[str, int]], *, sized: bool) -> None:
        """``files``: each file's normalised path and declared size (``sized``: the
        sizes are known)."""
        # one pass, no string kept: a listing of many files is built in little memory
        declared = array("q")
        path_hashes, path_bytes, path_lengths = array("i"), bytearray(), array("q")
        dir_hashes, dir_bytes, dir_lengths = array("i"), bytearray(), array("q")
        anchors = bytearray()
        for path, size in files:
            declared.append(size)
            encoded = _utf8(path)
            path_hashes.append(_key(path))
            path_bytes += encoded
            path_lengths.append(len(encoded))
            directory = entry_directory(path)
            encoded = _utf8(directory)
            dir_hashes.append(_key(directory))
            dir_bytes += encoded
            dir_lengths.append(len(encoded))
            anchors.append(anchor_format(path.rsplit("/", 1)[-1]) is not None)
        self.paths, path_index = _Names.of(path_hashes, path_bytes, path_lengths)
        self.directories, dir_index = _Names.of(dir_hashes, dir_bytes, dir_lengths)
        del path_bytes, dir_bytes
        n, m = len(self.paths), len(self.directories)
        self.counts = _narrow(np.bincount(path_index, minlength=n))
        """Items of the walk still to come with each path."""
        first = np.full(n, len(path_index), dtype=np.int64)
        np.minimum.at(first, path_index, np.arange(len(path_index)))
        self.directory_of = _narrow(dir_index[first])
        self.left = _narrow(np.bincount(dir_index, minlength=m))
        """Items still to come in each directory (-1: not known, or complete)."""
        self.anchors_left = _narrow(np.bincount(
            dir_index, weights=np.frombuffer(anchors, dtype=np.uint8),
            minlength=m).astype(np.int64))
        """Record headers still to come in each directory."""
        self.sizes: np.ndarray | None = None
        """Declared sizes by path index (a ZIP's; of the first member of a name): a
        directory's records can then be planned before its signal files come (see
        :meth:`remaining`)."""
        if sized:
            self.sizes = np.frombuffer(declared, dtype=np.int64)[first]
            if len(self.sizes) and self.sizes.max() < 1 << 32:
                self.sizes = self.sizes.astype(np.uint32)  # half the bytes
        # A directory named like a file of the listing is left out: an archive inside
        # the upload yields its entries below the archive's own path, which the listing
        # cannot name, so such a directory is never known complete.
        for d in range(m):
            directory = self.directories.name(d)
            parts = directory.split("/")
            if directory and any(self.paths.index("/".join(parts[:i])) is not None
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
        directory = entry_directory(path)
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
        if self._listed(entry_directory(path)) is None:
            return False
        at = self.paths.index(path)
        return at is not None and self.counts[at] > 0

    def named(self, path: str) -> int | None:
        """Index of ``path`` among the distinct paths the listing names (None: unnamed)."""
        return self.paths.index(path)

    def __len__(self) -> int:
        """Distinct paths named."""
        return len(self.paths)


class ListedUpload(Upload):
    """An upload whose entries are named before any is read.

    ``listing`` gives them (None: unknown after all, e.g. no whole ZIP central
    directory); ``forget`` tells the reader that entries it handed out in memory
    were let go, so that their bytes no longer count against what a bounded walk
    holds; ``reload`` gives an entry handed out in memory as one read again from
    the upload when used (None: it cannot be read again); ``reading_ahead`` tells
    whether the walk is about to wait for entries decompressed ahead of it on
    another thread, so that work done between entries now overlaps that thread's.
    """

    def __init__(self, label: str, *, entries: Callable[[], Iterator[Entry | Skipped | Failed]],
                 listing: Callable[[], Listing | None],
                 forget: Callable[[Iterable[str]], None] | None = None,
                 reload: Callable[[Entry], Entry | None] | None = None,
                 reading_ahead: Callable[[], bool] | None = None,
                 close: Callable[[], None] | None = None) -> None:
        super().__init__(label, entries=entries, close=close)
        self.listing = listing
        self.forget = forget
        self.reload = reload
        self.reading_ahead = reading_ahead


def listing_of(paths: Iterable[str], sizes: Iterable[int] | None = None) -> Listing:
    """The listing of a walk that yields an item for each of ``paths`` (normalised;
    ``sizes``: their declared sizes, in the same order)."""
    if sizes is None:
        return Listing(((path, 0) for path in paths), sized=False)
    return Listing(zip(paths, sizes, strict=True), sized=True)


class _Ambiguous(Exception):
    """A member name whose encoding the reader may decode otherwise."""


def zip_listing(blob: Blob) -> Listing | None:
    """The files of a ZIP as its central directory names them (None when it cannot tell
    exactly: no whole central directory, or a name whose encoding is ambiguous)."""
    members = iter_central_members(blob)
    if members is None:
        return None
    try:
        return Listing(_zip_files(members), sized=True)
    except _Ambiguous:
        return None


def _zip_files(members: Iterable[CentralMember]) -> Iterator[tuple[str, int]]:
    """Normalised path and size of each file member (one at a time: the records of a
    large ZIP are not all held)."""
    for member in members:
        raw = member.name_bytes
        if raw.isascii():
            name = raw.decode("ascii")
        elif member.utf8:
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _Ambiguous from None
        else:
            raise _Ambiguous  # CP437 or the archiver's code page: the reader may decode it otherwise
        if name.endswith("/"):
            continue  # a directory entry
        try:
            path = normalise_entry_name(name)
        except UnsafeEntryError:
            continue  # reported as skipped under its raw name: no file of any directory
        yield path, member.usize
