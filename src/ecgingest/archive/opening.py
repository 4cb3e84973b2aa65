"""Opening an upload as an archive: from an entry, a list of volumes or a stream."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from ..errors import ArchiveError, LimitExceededError
from ..limits import ByteBudget, Limits
from ..sources import Entry, Failed, Skipped, Upload, read_up_to
from .blobs import Blob, GrowingSpool, MiB
from .kinds import HEAD_BYTES, SEEKING_KINDS, archive_kind
from .listing import ListedUpload
from .walker import Walker

__all__ = ["open_archive", "open_stream", "nested_in_directory"]


def open_archive(upload: Entry | list | tuple, limits: Limits, budget: ByteBudget) -> Upload | None:
    """Entries of an archive upload, or ``None`` when the bytes are no archive.

    ``upload`` is one :class:`~ecgingest.sources.Entry` (bytes in memory or a
    file on disk) or the paths of the volumes of one multi-volume archive.
    """
    if isinstance(upload, (list, tuple)):
        volumes = [os.fspath(v) for v in upload]
        if not volumes:
            raise ArchiveError("an empty list of volumes was given")
        with open(volumes[0], "rb") as fh:
            kind = archive_kind(fh.read(HEAD_BYTES))
        if kind is None:
            return None
        label = volumes[0]
        blob = Blob(label, volumes=volumes)
    else:
        kind = archive_kind(upload.head(HEAD_BYTES))
        if kind is None:
            return None
        disk = upload.disk_path
        if disk is not None:
            label = os.fspath(disk)
            blob = Blob(label, path=label)
        else:
            label = upload.path
            blob = Blob(label, data=bytes(upload.read()))
    return _walked(label, Walker(label, limits, budget, 0, "", kind=kind, blob=blob))


def _walked(label: str, walker: Walker, close: Callable[[], None] | None = None) -> Upload:
    """The upload of one archive walk (with its listing, when the archive gives one)."""
    return ListedUpload(label, entries=walker.walk, listing=walker.listing,
                        forget=walker.forget, reload=walker.reload,
                        reading_ahead=walker.waits_ahead,
                        close=close or walker.close)


def nested_in_directory(entry: Entry, budget: ByteBudget) -> Iterator[Entry | Skipped | Failed]:
    """A file of a directory upload: itself, or an archive below the directory.

    Directories are read like archives, so archives found in them follow the
    same ``Limits.max_nesting`` rule as archives inside archives.
    """
    walker = Walker(entry.path, budget.limits, budget, 0, "")
    yield from walker.nested(entry)


def open_stream(stream: IO[bytes], label: str, limits: Limits,
                budget: ByteBudget) -> tuple[Upload | None, bytes]:
    """An archive read from a file object, or ``(None, head)`` when it is no archive.

    TAR streams are read as they arrive; ZIP, 7z and RAR need seeking and are
    spooled to a temporary file first when the stream cannot seek.
    """
    head = read_up_to(lambda k: bytes(stream.read(k) or b""), HEAD_BYTES)
    kind = archive_kind(head)
    if kind is None:
        return None, head
    seekable = bool(getattr(stream, "seekable", lambda: False)())
    if seekable and kind != "rar4":  # rars reads paths and bytes, not file objects
        stream.seek(-len(head), os.SEEK_CUR)
        blob = Blob(label, stream=stream)
        return _walked(label, Walker(label, limits, budget, 0, "", kind=kind, blob=blob)), b""
    if kind not in SEEKING_KINDS:
        # read as it arrives, and kept in a temporary file so that a second pass can
        # extract entries a record turns out to need
        kept = GrowingSpool(stream, head, limits.max_total_size, label)
        blob = Blob(label, stream=kept)
        walker = Walker(label, limits, budget, 0, "", kind=kind, blob=blob)
        return Upload(label, entries=walker.walk,
                      close=_then(walker.close, kept.close)), b""
    spool = tempfile.NamedTemporaryFile(prefix="ecgingest-", suffix=".spool", delete=False)
    try:
        with spool:
            spool.write(head)
            copied = len(head)
            while True:
                chunk = stream.read(MiB)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > limits.max_total_size:
                    raise LimitExceededError(
                        f"archive upload exceeds {limits.max_total_size} bytes; raise "
                        f"Limits.max_total_size to read it", limit="max_total_size",
                        value=limits.max_total_size, path=label)
                spool.write(chunk)
    except BaseException:
        os.unlink(spool.name)
        raise
    blob = Blob(label, path=spool.name)
    walker = Walker(label, limits, budget, 0, "", kind=kind, blob=blob)
    return _walked(label, walker, _then(walker.close, lambda: _unlink_quietly(spool.name))), b""


def _then(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    """Both clean-ups, the second even when the first fails."""
    def close() -> None:
        try:
            first()
        finally:
            second()
    return close


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
