"""A one-stream TAR (gzip, Zstandard, xz, ...) decompressed on its own thread.

The entries of a compressed TAR are one stream: no second reader can start in
the middle, so reading entries ahead (:class:`~ecgingest.archive.libarchive.ReadAhead`)
can only hand whole entries across threads, several times per entry (measured
on 1,000 WFDB records: slower than no thread at all for Zstandard). Here the
thread does only the decompression: a libarchive reader of the *raw* format
(the same filters, so the same bytes and the same failures as reading the
archive directly) fills large chunks with the GIL released, and the walk's
reader parses the TAR from them through a read callback, building records
while the next chunks are decompressed.

At most ``most`` bytes of decompressed stream wait for the walk (the same
bound as the entries a read-ahead holds), in chunks of at most a quarter of
it. A failure of the decompression ends the stream where the bytes before it
end; the walk's reader then reports what libarchive reported (see
:attr:`DecompressingFeed.failure`).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import deque

import numpy as np

from .._ext import archive_feed
from . import _libarchive as _la
from .blobs import BLOCK, Blob

__all__ = ["DecompressingFeed", "THREAD_NAME", "CHUNK"]

THREAD_NAME = "ecgingest-archive-read-ahead-decompress"
CHUNK = 1 << 20
"""Largest chunk of decompressed bytes handed over at once."""

_READ_DATA_BLOCK = ctypes.cast(_la.read_data_block, ctypes.c_void_p).value or 0
_FILTER_BYTES = ctypes.cast(_la.filter_bytes, ctypes.c_void_p).value or 0
"""Addresses of libarchive's functions, called by :func:`archive_feed.fill_chunk`."""
_READ_CALLBACK = archive_feed.read_callback()
"""The walk's reader's native read callback (:class:`archive_feed.BlockCursor`)."""


class DecompressingFeed:
    """libarchive read callback over a compressed TAR decompressed on another thread.

    Use :meth:`open` (None where the compressed stream cannot even be opened:
    the walk then reads the archive directly and reports that as it always
    did), hand :attr:`read_cb` to the walk's reader, and :meth:`close` when
    the walk ends.
    """

    def __init__(self, raw: int, most: int) -> None:
        self.raw = raw
        self.most = max(1, most)
        self.chunk = max(BLOCK, min(CHUNK, self.most // 4))
        self.cond = threading.Condition()
        self.chunks: deque[tuple[ctypes.Array[ctypes.c_char], int, np.ndarray]] = deque()
        """Chunks, their bytes and their blocks: rows of (end in the chunk, compressed
        bytes read when libarchive produced the block)."""
        self.ahead = 0  # decompressed bytes in ``chunks``
        self.ended = False  # the thread put its last chunk
        self.stopped = False
        self.failure: tuple[int, bytes] | None = None
        """libarchive's error number and message where decompression failed (after the
        bytes before it were handed over)."""
        self.error: BaseException | None = None
        """A Python error raised on the walk's thread asking for the next chunk (the read
        then failed in libarchive): the walk's reader raises it."""
        self.cursor = archive_feed.BlockCursor(self)
        """The chunk libarchive reads now, handed over block by block natively."""
        self.read_cb = _la.READ_CALLBACK(_READ_CALLBACK)
        self.client_data = self.cursor.client_data
        """Callback data to register with :attr:`read_cb` (the cursor's)."""
        self.spare: list[ctypes.Array[ctypes.c_char]] = []  # chunks libarchive is done with
        self.thread = threading.Thread(target=self._run, daemon=True, name=THREAD_NAME)
        self.thread.start()

    @classmethod
    def open(cls, blob: Blob, most: int) -> DecompressingFeed | None:
        """A feed over the archive of ``blob`` (a file or bytes), or None."""
        raw = _la.read_new()
        if not raw:
            return None
        with _la.utf8_names:
            _la.read_support_filter_all(raw)
            _la.read_support_format_raw(raw)
            if blob.path is not None:
                status = _la.read_open_filename(raw, os.fsencode(blob.path), BLOCK)
                keep: object = None
            elif blob.data is not None:
                keep = ctypes.c_char_p(blob.data)
                address = ctypes.cast(keep, ctypes.c_void_p).value
                status = _la.read_open_memory2(raw, address, len(blob.data), BLOCK)
            else:
                status = _la.FATAL
            if status == _la.OK:
                entry_p = ctypes.c_void_p()
                status = _la.read_next_header(raw, ctypes.byref(entry_p))
        if status != _la.OK:
            _la.read_free(raw)
            return None
        feed = cls(raw, most)
        feed._keep = keep  # bytes read in place stay alive with the feed
        return feed

    _keep: object = None

    # -- the decompressing thread --------------------------------------------
    def _run(self) -> None:
        try:
            self._decompress()
        except BaseException as exc:  # (MemoryError, say): the walk must not wait forever
            with self.cond:
                self.failure = (0, f"decompressing the archive failed: {exc!r}".encode())
                self.ended = True
                self.cond.notify_all()

    def _decompress(self) -> None:
        # libarchive's blocks, copied into chunks: ``archive_read_data`` would drop the
        # bytes of a block before a failure, which the walk's reader must still see. The
        # copying runs in one call per chunk with the GIL released (archive_feed): the
        # walk's thread builds records meanwhile, and a thread that took the GIL back
        # after every block would wait for it there instead of decompressing
        raw, size = self.raw, self.chunk
        pieces = np.empty((size // 1024 + 2, 2), dtype=np.int64)  # a chunk's blocks, and more
        pending_at = pending = 0  # the part of libarchive's last block not yet copied
        counted = 0  # compressed bytes read when libarchive produced that block
        while True:
            with self.cond:
                while not self.stopped and self.ahead + size > self.most and self.chunks:
                    self.cond.wait()
                if self.stopped:
                    return
                buf = self.spare.pop() if self.spare else None
            if buf is None:  # at most (most / chunk + 2) are ever made: the rest are reused
                buf = ctypes.create_string_buffer(size)
            status, filled, count, pending_at, pending, counted = archive_feed.fill_chunk(
                _READ_DATA_BLOCK, _FILTER_BYTES, raw, ctypes.addressof(buf), size, pieces,
                pending_at, pending, counted)
            blocks = pieces[:count].copy()
            failure = (None if status in (_la.OK, _la.EOF)
                       else (_la.errno(raw), _la.error_string(raw) or b""))
            with self.cond:
                if filled:
                    self.chunks.append((buf, filled, blocks))
                    self.ahead += filled
                if status != _la.OK:
                    self.failure = failure
                    self.ended = True
                self.cond.notify_all()
                if self.ended:
                    return

    # -- the walk's reader -----------------------------------------------------
    @property
    def compressed(self) -> int:
        """Compressed bytes behind what the walk's reader has taken: those read when
        libarchive produced the block it took last."""
        return int(self.cursor.compressed)

    def _next_chunk(self, archive: int) -> int:
        """The walk's reader took every block of the current chunk: install the next
        (1), or report the end (0) or the failure (-1) of the stream.

        Called by the native read callback, block by block its own (each block with
        the compressed bytes read when libarchive produced it: the walk's reader counts
        them as it would reading directly). A failure is reported as the filter reports
        it when it runs in the walk's reader: its error is set on the reader, then the
        read fails (and the TAR reader may put its own words over it, as it does
        reading directly)."""
        with self.cond:
            done = self.cursor.release()
            if isinstance(done, ctypes.Array):
                self.spare.append(done)  # libarchive is done with it
            while not self.chunks and not self.ended and not self.stopped:
                self.cond.wait()
            if not self.chunks:
                if self.failure is not None and not self.stopped:
                    number, text = self.failure
                    _la.set_error(ctypes.c_void_p(archive), ctypes.c_int(number),
                                  ctypes.c_char_p(b"%s"), ctypes.c_char_p(text))
                    return -1
                return 0
            buf, filled, blocks = self.chunks.popleft()
            self.ahead -= filled
            self.cond.notify_all()
        self.cursor.install(buf, ctypes.addressof(buf), blocks)  # valid until the next call
        return 1

    def behind(self) -> bool:
        """Whether the walk has taken most of what was decompressed ahead of it (less
        than half the bound waits): the walk, not the decompressing thread, is then
        about to wait, and work done on its thread between entries costs no time."""
        return not self.ended and self.ahead <= self.most // 2

    def close(self) -> None:
        """Stop the thread, wait for it, free its reader."""
        with self.cond:
            self.stopped = True
            self.chunks.clear()
            self.spare.clear()  # (the cursor keeps the chunk libarchive may still point into)
            self.ahead = 0
            self.cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join()
        if self.raw:
            _la.read_free(self.raw)
            self.raw = 0
