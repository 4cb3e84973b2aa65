"""Small arrays of one upload carved from shared, pooled blocks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._ext.scale import aligned_empty


def block_views(sizes: Sequence[int], dtype: npt.DTypeLike,
                arena: Arena | None = None) -> list[np.ndarray]:
    """Per-signal arrays as views into one contiguous block.

    One allocation instead of one per signal: a large one starts on a huge
    page boundary and comes from the array pool, a small one from ``arena``
    when given.
    """
    total = sum(sizes)
    block = arena.empty(total, dtype) if arena is not None else aligned_empty(total, dtype)
    views = []
    start = 0
    for size in sizes:  # plain ints: cheaper than numpy bounds for a dozen signals
        views.append(block[start:start + size])
        start += size
    return views


class Arena:
    """Hands out small arrays from 2 MiB blocks of the array pool.

    An archive of thousands of small records would otherwise fault in
    thousands of separate buffers page by page, once for the entries' bytes
    and once for the decoded samples. A block is warm when an earlier upload
    gave it back, and returns to the pool when the last array carved from it
    is dropped (entry blocks while the upload's records are still being
    built, for their samples); so keeping one record of an archive keeps at
    most one block. Not thread-safe: one arena per upload and per use.
    """

    BLOCK = 2 << 20
    LARGEST = 256 << 10
    """Larger arrays get memory of their own."""

    def __init__(self) -> None:
        self._block: np.ndarray | None = None
        self._address = 0  # of the block's first byte
        self._used = 0

    def empty(self, n: int, dtype: npt.DTypeLike = np.uint8) -> np.ndarray:
        """An uninitialised C-contiguous array of ``n`` items on a 64-byte boundary."""
        dt = np.dtype(dtype)
        nbytes = n * dt.itemsize
        if nbytes > self.LARGEST or n < 0:
            return aligned_empty(n, dt)
        start = ((self._address + self._used + 63) & ~63) - self._address
        if self._block is None or start + nbytes > self.BLOCK:
            self._block = aligned_empty(self.BLOCK, np.uint8, pooled=True)
            self._address = self._block.__array_interface__["data"][0]
            start = -self._address & 63
        self._used = start + nbytes
        return self._block[start:start + nbytes].view(dt)
