"""The process's memory machinery for decoded arrays: the array pool and arenas.

Fresh memory is the dominant cost of a large decode: the kernel zeroes every new
page on first touch, and on virtual machines those faults serialise across
threads. Large outputs therefore come from a pool of blocks that earlier outputs
gave back when the caller dropped them, so a service or batch job that reads
upload after upload reuses warm memory. The pool never raises the process's
peak: a miss first releases at least as many pooled bytes as it will allocate,
and what the pool keeps is capped by :func:`set_array_pool_limit`. Pooled
memory stays claimable by the system: a block's pages are marked free-on-demand
when it comes back, so under memory pressure the kernel takes them instead of
pushing anything out (all but the last :data:`HOT_BLOCKS` small blocks given
back: see there). Blocks unused for :data:`POOL_DECAY_S` are let go at the
next pool operation.

Peak memory is counted as the most pool-sized memory ever live at once (arrays
handed out and not yet dropped): a miss lets pooled blocks go only as far as
live + pooled + the new block would exceed that. Counting the live arrays
matters as soon as two reads run at once: a rule that made every miss give up
as many pooled bytes as it allocates threw away, on each round, the blocks the
other read was about to take, and both reads went on faulting in fresh memory.

This module owns the policy (cap, ``ECGINGEST_ARRAY_POOL``, decay, which block
serves which request); ``ecgingest._ext.scale`` does the byte work (an array
over a block whose owner gives it back, the ``madvise`` call).

A block comes back from whichever thread drops the last view of its array, at
any moment (a garbage collection inside a pool operation included): it is
queued without a lock and filed into the pool by the next thread that holds
the lock, so a return never waits and never re-enters a pool operation.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Sequence
from functools import partial
from time import monotonic

import numpy as np
import numpy.typing as npt

from ._ext.scale import array_over, data_address, release_lazily

__all__ = ["aligned_empty", "set_array_pool_limit", "array_pool_bytes", "Arena", "block_views",
           "POOL_DECAY_S"]

HUGE_PAGE = 2 << 20
"""The transparent huge page size on x86-64 and most arm64."""
ALIGN_FROM = 8 << 20
"""Arrays of this many bytes and more start on a huge page and come from the pool
(numpy asks the kernel for huge pages from 4 MiB)."""
DEFAULT_POOL_LIMIT = 4 << 30
"""The most the pool keeps by default (less on a machine with under 16 GiB): two
reads of 6 h 12-lead 500 Hz records at once, digital and physical, need 2.6 GB
of outputs, and a smaller pool made each round of them fault in fresh pages."""
POOL_DECAY_S = 10.0
"""A pooled block nobody took for this long is let go."""
HOT_BLOCKS = 4
"""Small blocks (up to :data:`HOT_BLOCK_BYTES`) given back last that the pool keeps
unmarked, for the next reads to take as they are. Marking a block free-on-demand
costs a system call, and writing to its pages again costs the kernel's taking them
back: 7 to 10 us for a 2 MiB block that a read of a 200 KB file or an archive's
arena fills, every round, against a read of 200 us. The oldest unmarked block is
marked when one more comes back, so at most this many (8 MiB) are ever held
unclaimable; the most recent one serves the next request of its size."""
HOT_BLOCK_BYTES = HUGE_PAGE

_lock = threading.Lock()
_pooled: list[tuple[int, np.ndarray, float]] = []  # (capacity, raw block, returned at), oldest first
_unmarked: list[int] = []  # id() of the pooled blocks not yet marked free-on-demand, oldest first
_pool_bytes = 0
_pool_limit = 0
_live_bytes = 0  # capacity of the blocks in arrays handed out and not yet given back
_live_peak = 0  # the most ever live at once: live + pooled never has to exceed it
_returned: deque[tuple[int, np.ndarray | None, float]] = deque()  # given back, not yet filed (None: a block too large to keep)
_poison: bytes | None = None


def _file_returned() -> None:
    """File queued returns into the pool (the lock held), keeping the cap."""
    global _pool_bytes, _live_bytes
    if _returned:
        _release_stale()
    while _returned:
        capacity, raw, at = _returned.popleft()
        _live_bytes -= capacity
        if capacity > _pool_limit or raw is None:
            continue
        _release_oldest(_pool_limit - capacity)
        _pooled.append((capacity, raw, at))
        _pool_bytes += capacity
        if capacity <= HOT_BLOCK_BYTES:
            _unmarked.append(id(raw))
            if len(_unmarked) > HOT_BLOCKS:
                _mark_oldest_unmarked()


def _mark_oldest_unmarked() -> None:
    """Mark the oldest small pooled block still unmarked free-on-demand (the lock held)."""
    oldest = _unmarked.pop(0)
    for _, raw, _ in _pooled:
        if id(raw) == oldest:
            release_lazily(raw)
            return


def _unpool(index: int) -> tuple[int, np.ndarray]:
    """Take pooled block ``index`` out of the pool (to hand out or let go; the lock
    held): its bytes no longer count as pooled, nor is it one to mark."""
    global _pool_bytes
    capacity, raw, _ = _pooled.pop(index)
    _pool_bytes -= capacity
    if _unmarked:
        try:
            _unmarked.remove(id(raw))
        except ValueError:
            pass
    return capacity, raw


def _release_oldest(target: int) -> None:
    """Let pooled blocks go, oldest first, until the pool holds at most ``target`` bytes."""
    while _pool_bytes > target and _pooled:
        _unpool(0)


def _release_stale() -> None:
    stale_before = monotonic() - POOL_DECAY_S
    while _pooled and _pooled[0][2] < stale_before:
        _unpool(0)


def _settle() -> None:
    """File what was returned while another thread (or this one, re-entered) held the lock."""
    while _returned:
        if not _lock.acquire(blocking=False):
            return  # the holder files the queue before it lets go
        try:
            _file_returned()
        finally:
            _lock.release()


def _give_back(capacity: int, raw: np.ndarray) -> None:
    """Called by a block's owner when the last view of its array is dropped."""
    if capacity > _pool_limit:
        _returned.append((capacity, None, 0.0))  # only its live bytes are counted off
    else:
        if capacity > HOT_BLOCK_BYTES:  # a small one is marked when it leaves the hot few
            release_lazily(raw)
        _returned.append((capacity, raw, monotonic()))
    _settle()


def _take(capacity: int) -> tuple[int, np.ndarray] | None:
    """A pooled block of ``capacity`` bytes or up to a quarter more, else None after
    releasing pooled blocks (oldest first) until live + pooled + ``capacity`` is no
    more than the most ever live at once. Where that would release anything, a
    larger pooled block serves instead: its pages are warm, the part left unused
    stays claimable by the system, and the block returns whole. Either way the block the caller gets
    counts as live from now on (:func:`_give_back` counts it off)."""
    global _live_bytes, _live_peak
    with _lock:
        _file_returned()
        _release_stale()
        best = -1
        for i, (cap, _, _) in enumerate(_pooled):  # the newest of the best fit: the warmest
            if capacity <= cap and (best < 0 or cap <= _pooled[best][0]):
                best = i
        if best >= 0 and _pooled[best][0] > capacity + capacity // 4 \
                and _live_bytes + _pool_bytes + capacity <= _live_peak:
            best = -1  # room to allocate: keep the larger block for a request of its size
        found: tuple[int, np.ndarray] | None = None
        if best >= 0:
            found = _unpool(best)
            _live_bytes += found[0]
        else:
            _live_bytes += capacity
            _live_peak = max(_live_peak, _live_bytes)
            _release_oldest(_live_peak - _live_bytes)
    _settle()
    return found


def set_array_pool_limit(max_bytes: int) -> int:
    """Cap the memory kept for reuse by large decoded arrays; returns the previous cap.

    Arrays of 8 MiB and more are carved from blocks that return to a pool when
    the caller drops them, so the next large decode reuses warm memory instead
    of faulting in fresh pages, the main cost of a large read and one that does
    not scale across threads. ``0`` turns the pool off and frees what it holds.
    The default is 4 GiB or a quarter of physical memory, whichever is less, or
    ``ECGINGEST_ARRAY_POOL`` (bytes) when set. Pooled memory is memory the
    process already had at its peak; the system can take it back under memory
    pressure, and blocks unused for 10 s are let go.
    """
    global _pool_limit
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError("max_bytes must be 0 (no pool) or a number of bytes")
    with _lock:
        previous = _pool_limit
        _pool_limit = max_bytes
        _file_returned()
        _release_oldest(_pool_limit)
    _settle()
    return previous


def array_pool_bytes() -> int:
    """Bytes the pool holds for reuse (memory in no live array)."""
    with _lock:
        _file_returned()
        held = _pool_bytes
    _settle()
    return held


def pooling() -> bool:
    """True while the pool keeps blocks for reuse (its cap is not 0)."""
    return _pool_limit > 0


def _default_pool_limit() -> int:
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = -1
    if physical <= 0:
        return 512 << 20  # where the machine's memory is unknown
    return min(DEFAULT_POOL_LIMIT, physical // 4)


def _limit_from_environment() -> None:
    set_array_pool_limit(_default_pool_limit())
    text = os.environ.get("ECGINGEST_ARRAY_POOL", "").strip()
    if not text:
        return
    try:
        set_array_pool_limit(int(text))
    except ValueError:
        warnings.warn(f"ECGINGEST_ARRAY_POOL={text!r} is not a number of bytes (0 turns the "
                      f"pool off); keeping the default of {_pool_limit} bytes", RuntimeWarning,
                      stacklevel=2)


_limit_from_environment()


def aligned_empty(n: int, dtype: npt.DTypeLike, pooled: bool = False) -> np.ndarray:
    """``np.empty(n, dtype)``; when large, from the pool and on a 2 MiB boundary
    (``pooled`` takes a smaller array from the pool too, as its block comes).

    numpy asks the kernel for transparent huge pages on large arrays, but the
    kernel can back only the whole, aligned 2 MiB stretches with them; the
    unaligned head and tail of an ordinary allocation fault in 4 KiB pages,
    hundreds of page faults per array. Starting the data on a boundary leaves
    at most the tail. The padding in front is never touched, so it is address
    space, not memory.
    """
    dt = np.dtype(dtype)
    if n < 0:
        raise ValueError("negative size")
    if dt.itemsize and n > (2**62 - 2 * HUGE_PAGE) // dt.itemsize:
        raise MemoryError(f"array of {n} items of {dt.itemsize} bytes is too large")
    nbytes = n * dt.itemsize
    if (nbytes < ALIGN_FROM and not pooled) or not dt.isnative or dt.kind not in "biufc":
        return _poisoned(np.empty(n, dtype=dt))
    capacity = (nbytes + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
    found = _take(capacity)
    if found is None:
        # a pooled block smaller than ALIGN_FROM (an arena's) is not worth 2 MiB of
        # padding: it is used as it comes
        try:
            raw = np.empty(capacity + (HUGE_PAGE if nbytes >= ALIGN_FROM else 0), dtype=np.uint8)
        except BaseException:
            _returned.append((capacity, None, 0.0))  # never became live
            _settle()
            raise
    else:
        capacity, raw = found
    offset = 0
    if raw.shape[0] - capacity >= HUGE_PAGE:
        offset = -data_address(raw) % HUGE_PAGE
    return _poisoned(array_over(raw, n, dt, offset, partial(_give_back, capacity)))


def _poisoned(array: np.ndarray) -> np.ndarray:
    if _poison is not None and array.nbytes and array.dtype.kind in "biufc":
        raw = array.view(np.uint8)
        pattern = np.frombuffer(_poison, dtype=np.uint8)
        raw[:] = np.resize(pattern, raw.shape[0])
    return array


def _set_poison(pattern: bytes | None) -> bytes | None:
    """Tests: fill every array handed out from now on with ``pattern`` repeated (None:
    stop); returns the previous pattern. Whatever a decoder does not write then
    shows as the pattern, not as zeros or another upload's bytes."""
    global _poison
    if pattern is not None and (not isinstance(pattern, bytes) or not pattern):
        raise ValueError("the poison pattern must be non-empty bytes")
    previous, _poison = _poison, pattern
    return previous


def block_views(sizes: Sequence[int], dtype: npt.DTypeLike,
                arena: Arena | None = None) -> list[np.ndarray]:
    """Per-signal arrays as views into one contiguous block.

    One allocation instead of one per signal: a large one starts on a huge
    page boundary and comes from the array pool, a small one from ``arena``
    when given. In a large block each view starts on a 64-byte line and at its
    own offset within a 4 KiB page (:func:`_staggered_starts`).
    """
    total = sum(sizes)
    dt = np.dtype(dtype)
    if len(sizes) > 1 and total * dt.itemsize >= ALIGN_FROM:  # an arena hands these on too
        return _staggered_views(sizes, dt)
    block = arena.empty(total, dtype) if arena is not None else aligned_empty(total, dtype)
    views = []
    start = 0
    for size in sizes:  # plain ints: cheaper than numpy bounds for a dozen signals
        views.append(block[start:start + size])
        start += size
    return views


LINE = 64
"""A cache line."""
PAGE = 4096
STAGGER = 5 * LINE
"""Page offsets of consecutive views in a large block: five lines apart, so up to
64 views fall on 64 different cache sets."""


def _staggered_starts(sizes: Sequence[int], itemsize: int, base: int) -> list[int]:
    """Item offsets of ``sizes`` from a block at address ``base``: view ``k``
    starts at ``k * STAGGER`` bytes modulo a page.

    A decode writes every signal at once, one stream per view. Views laid end to
    end start at offsets that depend on the signal length only: when that is a
    multiple of 2048 int16 samples, every view starts at the same offset within
    a page, all the streams' lines compete for one set of the first-level cache
    (8 ways for 12 streams) and stores alias loads 4 KiB apart. A 12-lead
    format-212 decode of 2,048,000 samples per signal measured 2.9 times as long
    in that layout, one of 10,813,440 samples 2.2 times (single thread, best of
    25 and 8 rounds). Costs less than a page per view.
    """
    starts = []
    pos = base
    for k, size in enumerate(sizes):
        pos += (k * STAGGER - pos) % PAGE
        starts.append((pos - base) // itemsize)
        pos += size * itemsize
    return starts


def _staggered_views(sizes: Sequence[int], dt: np.dtype) -> list[np.ndarray]:
    slack = (len(sizes) + 1) * PAGE // dt.itemsize
    block = aligned_empty(sum(sizes) + slack, dt)
    starts = _staggered_starts(sizes, dt.itemsize, data_address(block))
    return [block[start:start + size] for start, size in zip(starts, sizes)]


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
            self._address = data_address(self._block)
            start = -self._address & 63
        self._used = start + nbytes
        return self._block[start:start + nbytes].view(dt)
