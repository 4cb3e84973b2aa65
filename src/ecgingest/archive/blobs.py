"""Where the archive bytes are (a file, bytes, a stream) and libarchive's callbacks over them."""

from __future__ import annotations

import ctypes
import io
import os
import tempfile
from typing import IO

from ..errors import ArchiveError, LimitExceededError
from . import _libarchive as _la

__all__ = ["Blob", "BlobFile", "Callbacks", "GrowingSpool", "BLOCK", "MiB"]

MiB = 1024 * 1024

class Blob:
    """Where the archive bytes are: a file on disk, bytes in memory, or a stream.

    ``volumes`` (several paths) is a multi-volume set opened together.
    """

    def __init__(self, label: str, *, path: str | None = None, data: bytes | None = None,
                 stream: IO[bytes] | GrowingSpool | None = None,
                 volumes: list[str] | None = None) -> None:
        self.label = label
        self.path = path
        self.data = data
        self.stream = stream
        self.volumes = volumes
        self.seekable_stream = bool(stream is not None
                                    and getattr(stream, "seekable", lambda: False)())
        # A seekable stream may start the archive after bytes the caller already read.
        self.base = stream.tell() if stream is not None and self.seekable_stream else 0

    @property
    def random_access(self) -> bool:
        return self.path is not None or self.data is not None or self.seekable_stream

    def read_at(self, offset: int, count: int) -> bytes:
        if self.data is not None:
            return bytes(self.data[offset:offset + count])
        if self.seekable_stream:
            assert self.stream is not None
            self.stream.seek(self.base + offset)
            return bytes(self.stream.read(count) or b"")
        assert self.path is not None
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(count)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.seekable_stream:
            assert self.stream is not None
            return self.stream.seek(0, os.SEEK_END) - self.base
        assert self.path is not None
        return os.path.getsize(self.path)


BLOCK = 64 * 1024


class Callbacks:
    """libarchive read/seek callbacks over bytes or a Python stream, in 64 KiB blocks.

    Small blocks make the raw-byte counter (``filter_bytes``) advance as an
    entry is decompressed, which the expansion-ratio limit relies on.
    """

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.pos = 0
        self.view = memoryview(blob.data) if blob.data is not None else None
        self.base = blob.base
        self.buffer = ctypes.create_string_buffer(BLOCK)
        self.error: BaseException | None = None
        self.read_cb = _la.READ_CALLBACK(self._read)
        self.seek_cb = _la.SEEK_CALLBACK(self._seek)

    def _read(self, _archive, _context, out):
        try:
            if self.view is not None:
                chunk = self.view[self.pos:self.pos + BLOCK]
            else:
                assert self.blob.stream is not None
                if self.blob.seekable_stream:  # others (the ZIP fallback) may seek it too
                    self.blob.stream.seek(self.base + self.pos)
                chunk = self.blob.stream.read(BLOCK) or b""
            n = len(chunk)
            if n > BLOCK:
                raise ArchiveError(f"the stream returned {n} bytes for a read of {BLOCK}")
            ctypes.memmove(self.buffer, bytes(chunk), n)
            self.pos += n
            out[0] = ctypes.cast(self.buffer, ctypes.c_void_p)
            return n
        except BaseException as exc:  # surfaces after libarchive returns
            self.error = exc
            return -1

    def _seek(self, _archive, _context, offset, whence):
        try:
            if self.view is not None:
                size = len(self.view)
                base = {0: 0, 1: self.pos, 2: size}[whence]
                self.pos = max(0, min(size, base + offset))
                return self.pos
            assert self.blob.stream is not None
            if whence == 0:
                offset += self.base
            self.pos = self.blob.stream.seek(offset, whence) - self.base
            return self.pos
        except BaseException as exc:
            self.error = exc
            return -1

    @property
    def seekable(self) -> bool:
        return self.view is not None or self.blob.seekable_stream


class _ReadOnlyFile(io.RawIOBase):
    """A read-only seekable file object: subclasses say how long it is and read at a place."""

    pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: -1}[whence]
        self.pos = max(0, (self._length() if base < 0 else base) + offset)
        return self.pos

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = self._read_into(self.pos, b)
        self.pos += n
        return n

    def _length(self) -> int:
        raise NotImplementedError

    def _read_into(self, offset: int, b: memoryview) -> int:
        raise NotImplementedError


class BlobFile(_ReadOnlyFile):
    """Read-only seekable file object over a :class:`Blob`, for py7zr's header reader."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self.length = blob.size()

    def _length(self) -> int:
        return self.length

    def _read_into(self, offset: int, b: memoryview) -> int:
        data = self.blob.read_at(offset, len(b))
        b[:len(data)] = data
        return len(data)


class GrowingSpool(_ReadOnlyFile):
    """A one-way stream made seekable: what was read is kept in a temporary file.

    Reads past what was kept pull more from the stream, so the first pass over
    a TAR stream still reads it as it arrives, and a second pass (entries a
    record turns out to need) reads the kept bytes again. The stream's bytes
    count against ``limit`` (``Limits.max_total_size``).
    """

    def __init__(self, stream: IO[bytes], head: bytes, limit: int, label: str) -> None:
        self.stream = stream
        self.limit = limit
        self.label = label
        self.file = tempfile.TemporaryFile(prefix="ecgingest-", suffix=".spool")
        self.file.write(head)
        self.length = len(head)
        self.ended = False

    def _pull(self, end: int | None) -> None:
        while not self.ended and (end is None or self.length < end):
            chunk = self.stream.read(MiB)
            if not chunk:
                self.ended = True
                break
            self.length += len(chunk)
            if self.length > self.limit:
                raise LimitExceededError(
                    f"archive upload exceeds {self.limit} bytes; raise Limits.max_total_size "
                    f"to read it", limit="max_total_size", value=self.limit, path=self.label)
            self.file.seek(0, os.SEEK_END)
            self.file.write(chunk)

    def _length(self) -> int:
        self._pull(None)
        return self.length

    def _read_into(self, offset: int, b: memoryview) -> int:
        self._pull(offset + len(b))
        self.file.seek(offset)
        return self.file.readinto(b)

    def close(self) -> None:
        self.file.close()
        super().close()
