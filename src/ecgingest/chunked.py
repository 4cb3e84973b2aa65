"""Chunked uploads (INGESTION.md §6): assemble, verify, then hand over for decoding.

Chunks arrive with byte offsets, in any order, possibly repeated. Nothing is
decoded until the assembled bytes have the announced size and SHA-256, so a
half-sent or tampered upload can never produce records.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import tempfile
from typing import IO

from .errors import LimitExceededError, UploadError
from .limits import Limits

__all__ = ["ChunkedUpload"]

_MiB = 1024 * 1024


def _chunk_bytes(data: object) -> bytes:
    """The bytes of a bytes-like chunk; :class:`UploadError` for anything else."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    try:
        with memoryview(data) as view:  # type: ignore[arg-type]  # any contiguous buffer
            return view.cast("B").tobytes()
    except (TypeError, ValueError):
        raise UploadError(f"chunk data must be bytes-like (bytes, bytearray, memoryview), "
                          f"got {type(data).__name__}", field="data") from None


class ChunkedUpload:
    """One upload sent in pieces.

    >>> import hashlib
    >>> data = b"0123456789"
    >>> up = ChunkedUpload(len(data), hashlib.sha256(data).hexdigest())
    >>> up.add(5, data[5:]); up.add(0, data[:5])
    >>> up.finish().read() == data
    True

    Bytes are kept in memory up to ``memory_threshold`` and in a temporary file
    above it (the file is removed by :meth:`close` or when the upload is
    garbage-collected). The announced size must fit ``limits.max_total_size``.

    :param total_size: the upload's size in bytes, announced by the sender.
    :param sha256: the SHA-256 of the whole upload (64 hexadecimal digits).
    :param memory_threshold: largest upload kept in memory; larger ones spool to a
        temporary file.
    :param limits: bounds (:class:`~ecgingest.Limits`); ``max_total_size`` caps
        ``total_size``.
    :raises ecgingest.errors.UploadError: a parameter is invalid.
    :raises ecgingest.errors.LimitExceededError: ``total_size`` exceeds the limit.
    """

    def __init__(self, total_size: int, sha256: str, *,
                 memory_threshold: int = 16 * _MiB, limits: Limits | None = None) -> None:
        if isinstance(total_size, bool) or not isinstance(total_size, int) or total_size < 0:
            raise UploadError(f"total_size must be a non-negative integer, got {total_size!r}",
                              field="total_size")
        cap = (limits or Limits()).max_total_size
        if total_size > cap:
            raise LimitExceededError(
                f"announced upload of {total_size} bytes exceeds {cap}; raise "
                f"Limits.max_total_size (and pass limits=) to accept it",
                limit="max_total_size", value=cap, field="total_size")
        digest = sha256.strip().lower() if isinstance(sha256, str) else ""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UploadError("sha256 must be 64 hexadecimal digits (the SHA-256 of the whole "
                              "upload)", field="sha256")
        if isinstance(memory_threshold, bool) or not isinstance(memory_threshold, int) \
                or memory_threshold < 0:
            raise UploadError("memory_threshold must be a non-negative integer",
                              field="memory_threshold")
        self.total_size = total_size
        self.sha256 = digest
        self._file: IO[bytes]
        if total_size > memory_threshold:
            self._file = tempfile.TemporaryFile(prefix="ecgingest-chunked-")
        else:
            self._file = io.BytesIO()
        self._starts: list[int] = []  # sorted, disjoint, merged [start, end) ranges
        self._ends: list[int] = []
        self._finished = False

    @property
    def received(self) -> int:
        """Distinct bytes received so far."""
        return sum(e - s for s, e in zip(self._starts, self._ends))

    @property
    def spooled(self) -> bool:
        """True when the bytes live in a temporary file rather than in memory."""
        return not isinstance(self._file, io.BytesIO)

    def missing(self) -> list[tuple[int, int]]:
        """Byte ranges ``[start, end)`` not received yet."""
        gaps = []
        pos = 0
        for s, e in zip(self._starts, self._ends):
            if s > pos:
                gaps.append((pos, s))
            pos = e
        if pos < self.total_size:
            gaps.append((pos, self.total_size))
        return gaps

    def add(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Store one chunk; a repeat of bytes already held must be identical.

        Like every parameter of an upload session, a chunk of the wrong type is an
        :class:`~ecgingest.errors.UploadError` (it comes from a request, not from
        code): ``data`` must be bytes-like; an int is never taken as a length.

        :param offset: where the chunk starts in the upload.
        :param data: the chunk's bytes.
        :raises ecgingest.errors.UploadError: the chunk is not bytes-like, lies outside
            ``total_size``, or differs from bytes already received at the same place;
            or the upload is finished or closed.
        """
        self._check_open()
        if self._finished:
            raise UploadError("the upload is already finished; start a new ChunkedUpload")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise UploadError(f"chunk offset must be a non-negative integer, got {offset!r}",
                              field="offset")
        chunk = _chunk_bytes(data)
        end = offset + len(chunk)
        if end > self.total_size:
            raise UploadError(
                f"chunk [{offset}, {end}) goes past the announced total size "
                f"{self.total_size}", field="offset", offset=offset)
        if not chunk:
            return
        # Compare every overlap with what is already held before writing anything.
        i = bisect.bisect_right(self._ends, offset)
        j = i
        while j < len(self._starts) and self._starts[j] < end:
            lo, hi = max(offset, self._starts[j]), min(end, self._ends[j])
            self._file.seek(lo)
            if self._file.read(hi - lo) != chunk[lo - offset:hi - offset]:
                raise UploadError(
                    f"chunk at offset {offset} conflicts with bytes already received in "
                    f"[{lo}, {hi}); resend the original bytes", field="offset", offset=lo)
            j += 1
        self._file.seek(offset)
        self._file.write(chunk)
        # Merge [offset, end) with the ranges it touches.
        lo_i = bisect.bisect_left(self._ends, offset)
        hi_i = bisect.bisect_right(self._starts, end)
        new_start = min([offset] + self._starts[lo_i:hi_i])
        new_end = max([end] + self._ends[lo_i:hi_i])
        self._starts[lo_i:hi_i] = [new_start]
        self._ends[lo_i:hi_i] = [new_end]

    def finish(self) -> IO[bytes]:
        """Verify size and SHA-256; return the assembled upload for ``read``/``ingest``.

        :returns: a seekable binary file object positioned at 0.
        :raises ecgingest.errors.UploadError: bytes are missing (the message lists
            the first gaps), the SHA-256 does not match, or the upload is closed.
        """
        self._check_open()
        gaps = self.missing()
        if gaps:
            shown = ", ".join(f"[{s}, {e})" for s, e in gaps[:3])
            raise UploadError(
                f"upload incomplete: {self.total_size - self.received} of {self.total_size} "
                f"bytes missing (ranges {shown}{', ...' if len(gaps) > 3 else ''})",
                field="total_size")
        hasher = hashlib.sha256()
        self._file.seek(0)
        while True:
            block = self._file.read(_MiB)
            if not block:
                break
            hasher.update(block)
        if hasher.hexdigest() != self.sha256:
            raise UploadError(
                f"SHA-256 of the assembled upload is {hasher.hexdigest()}, not the announced "
                f"{self.sha256}: a chunk was corrupted or mis-placed; resend the upload",
                field="sha256")
        self._finished = True
        self._file.seek(0)
        return self._file

    def _check_open(self) -> None:
        if self._file.closed:
            raise UploadError("the upload is closed; start a new ChunkedUpload")

    def close(self) -> None:
        """Release the buffer or temporary file."""
        self._file.close()

    def __enter__(self) -> ChunkedUpload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
