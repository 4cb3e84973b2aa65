"""Which files an upload holds, known before any is read, directory by directory.

A ZIP's central directory and a directory on disk name every entry up front. A
walk that knows them can tell when the last file of a directory has passed and
build that directory's multi-file records at once, instead of after the whole
upload (``iter_records`` holds about one record that way). A one-stream archive
(TAR, gzip) tells its names only as it goes: it has no listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..detect import anchor_format
from ..errors import UnsafeEntryError
from ..sources import Entry, Failed, Skipped, Upload, normalise_entry_name
from .blobs import Blob
from .zip import central_members

__all__ = ["Listing", "ListedUpload", "listing_of", "zip_listing"]

class Listing:
    """The files of an upload by directory, counted down as the walk yields them."""

    __slots__ = ("files", "left", "anchors_left", "sizes")

    def __init__(self, paths: Iterable[str], sizes: dict[str, int] | None = None) -> None:
        self.files: dict[str, int] = {}  # path -> items of the walk still to come with it
        self.left: dict[str, int] = {}  # directory -> items still to come in it
        self.anchors_left: dict[str, int] = {}  # directory -> record headers still to come
        self.sizes = sizes
        """Declared sizes by path (a ZIP's): a directory's records can then be planned
        before its signal files come (see :meth:`remaining`)."""
        for path in paths:
            self.files[path] = self.files.get(path, 0) + 1
            directory = _directory(path)
            self.left[directory] = self.left.get(directory, 0) + 1
            if anchor_format(path.rsplit("/", 1)[-1]) is not None:
                self.anchors_left[directory] = self.anchors_left.get(directory, 0) + 1
        # A directory named like a file of the listing is left out: an archive inside
        # the upload yields its entries below the archive's own path, which the listing
        # cannot name, so such a directory is never known complete.
        for directory in [d for d in self.left if d]:
            parts = directory.split("/")
            if any("/".join(parts[:i]) in self.files for i in range(1, len(parts) + 1)):
                del self.left[directory]

    def passed(self, path: str, *, joins: bool) -> str | None:
        """Count the walk's item ``path`` off; the directory it completes, or None.

        ``joins``: the item is a file the records of its directory may read. Such a
        file the listing does not name leaves its directory unknown (never complete
        before the walk's end), as without a listing; any other unnamed item (an
        unsafe name reported under its raw form) changes nothing."""
        directory = _directory(path)
        if directory not in self.left:
            return None
        count = self.files.get(path, 0)
        if count <= 0:
            if joins:
                del self.left[directory]
            return None
        if count == 1:
            del self.files[path]
            if self.sizes is not None:
                self.sizes.pop(path, None)
        else:
            self.files[path] = count - 1
        self.left[directory] -= 1
        if directory in self.anchors_left and anchor_format(path.rsplit("/", 1)[-1]):
            self.anchors_left[directory] -= 1
        if self.left[directory]:
            return None
        del self.left[directory]
        self.anchors_left.pop(directory, None)
        return directory

    def lists(self, directory: str) -> bool:
        """True while ``directory``'s files still to come are known (it is listed, not
        complete, and no file it does not name came to it)."""
        return directory in self.left

    def headers_passed(self, directory: str) -> bool:
        """True when every record header the listing names in ``directory`` has passed
        and files of it are still to come."""
        return directory in self.left and self.anchors_left.get(directory, 1) == 0

    def remaining(self, directory: str) -> dict[str, int]:
        """The files of ``directory`` still to come, by path, with their declared sizes
        (empty without sizes). One pass over the listing: asked once per directory."""
        if self.sizes is None or directory not in self.left:
            return {}
        return {path: self.sizes.get(path, 0) for path, count in self.files.items()
                if count > 0 and _directory(path) == directory}

    def will_come(self, path: str) -> bool:
        """True when the walk is still to yield ``path`` (a listed directory's)."""
        return _directory(path) in self.left and self.files.get(path, 0) > 0


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


def listing_of(paths: Iterable[str], sizes: dict[str, int] | None = None) -> Listing:
    """The listing of a walk that yields an item for each of ``paths`` (normalised)."""
    return Listing(paths, sizes)


def zip_listing(blob: Blob) -> Listing | None:
    """The files of a ZIP as its central directory names them (None when it cannot tell
    exactly: no whole central directory, or a name whose encoding is ambiguous)."""
    members = central_members(blob)
    if members is None:
        return None
    paths: list[str] = []
    sizes: dict[str, int] = {}
    for member in members:
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
        sizes.setdefault(path, member.usize)
    return listing_of(paths, sizes)
