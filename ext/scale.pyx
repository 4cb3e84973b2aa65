# cython: language_level=3
"""One-pass conversion of stored integers to physical values.

``digital * scale + offset`` in float64, NaN where the stored code is the
format's invalid marker or a mask says the sample is missing: one read of
the digital array and one write of the output, with the GIL released.

The loops run over raw pointers with the scale, offset and code in locals
and a branch-free select for the invalid samples, so the compiler can keep
them in registers and vectorise them (a memoryview loop re-reads the scale
from memory on every sample because the output might alias it).

A large output is written with streaming (non-temporal) stores: converted a
few kilobytes at a time into a buffer that stays in the first-level cache,
then stored past the caches. An ordinary store first reads every output line
it will overwrite, so a conversion that does not fit in the caches moves the
output through memory twice; streaming halves that traffic, which is what
bounds this loop.
"""

import os
import warnings
from time import monotonic

import numpy as np
cimport numpy as cnp
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

from _stream cimport STREAM_FROM_BYTES, STREAMING_STORES, stream_copy, stream_fence

cnp.import_array()

DEF HUGE_PAGE = 2097152      # 2 MiB: the transparent huge page size on x86-64 and most arm64
DEF ALIGN_FROM = 8388608     # align outputs of 8 MiB and more (numpy asks for huge pages >= 4 MiB)

ctypedef fused stored_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef void _plain(const stored_t* src, double* dst, Py_ssize_t n, double scale,
                 double offset) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <double>src[i] * scale + offset


cdef void _coded(const stored_t* src, double* dst, Py_ssize_t n, double scale, double offset,
                 stored_t code) noexcept nogil:
    """Plain conversion that also counts the invalid codes, then a patch pass only
    when there are any (they are rare), which keeps the main loop vectorisable."""
    cdef Py_ssize_t i, start, stop, hits
    for start in range(0, n, 4096):
        stop = start + 4096 if n - start > 4096 else n
        hits = 0
        for i in range(start, stop):
            dst[i] = <double>src[i] * scale + offset
            hits += src[i] == code
        if hits:
            for i in range(start, stop):
                if src[i] == code:
                    dst[i] = NAN


cdef void _masked(const stored_t* src, const uint8_t* mask, double* dst, Py_ssize_t n,
                  double scale, double offset, bint has_code, int64_t code) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if mask[i] or (has_code and src[i] == code):
            dst[i] = NAN
        else:
            dst[i] = <double>src[i] * scale + offset


DEF STAGE = 512              # doubles per staging block: 4 KiB, well inside the L1 cache
_STREAM_FROM_BYTES = STREAM_FROM_BYTES


cdef void _convert(const stored_t* src, const uint8_t* mask, double* dst, Py_ssize_t n,
                   double scale, double offset, bint has_code, int64_t code) noexcept nogil:
    if mask != NULL:
        _masked(src, mask, dst, n, scale, offset, has_code, code)
    elif has_code:
        _coded(src, dst, n, scale, offset, <stored_t>code)
    else:
        _plain(src, dst, n, scale, offset)


cdef void _convert_streaming(const stored_t* src, const uint8_t* mask, double* dst,
                             Py_ssize_t n, double scale, double offset, bint has_code,
                             int64_t code) noexcept nogil:
    """``_convert`` for outputs that do not fit in the caches: the head up to the
    first 64-byte line and the last partial block with ordinary stores, every
    whole line between through the staging buffer with streaming stores."""
    cdef double stage[STAGE + 8]
    # the staging buffer on a line boundary, whatever the stack alignment
    cdef double* buf = <double*>((<size_t>stage + 63) & ~(<size_t>63))
    cdef Py_ssize_t head = <Py_ssize_t>(((64 - (<size_t>dst & 63)) & 63) // 8)
    cdef Py_ssize_t i, m
    if (<size_t>dst & 7) != 0 or n < head + STAGE:  # not double-aligned, or too short
        _convert(src, mask, dst, n, scale, offset, has_code, code)
        return
    _convert(src, mask, dst, head, scale, offset, has_code, code)
    i = head
    while n - i >= STAGE:
        _convert(src + i, mask + i if mask != NULL else NULL, buf, STAGE, scale, offset,
                 has_code, code)
        stream_copy(dst + i, buf, STAGE * sizeof(double))
        i += STAGE
    m = n - i
    if m > 0:
        _convert(src + i, mask + i if mask != NULL else NULL, dst + i, m, scale, offset,
                 has_code, code)
    stream_fence()


# ---------------------------------------------------------------- large output arrays
#
# Fresh memory is the dominant cost of a large decode: the kernel zeroes every new
# page on first touch, and on virtual machines those faults serialise across
# threads. Large outputs therefore come from a pool of blocks that earlier outputs
# gave back when the caller dropped them, so a service or batch job that reads
# upload after upload reuses warm memory. The pool never raises the process's
# peak: a miss first releases at least as many pooled bytes as it will allocate,
# and what the pool keeps is capped by ``set_array_pool_limit``. Pooled memory
# stays claimable by the system: a block's pages are marked free-on-demand when it
# comes back (``MADV_FREE``), so under memory pressure the kernel takes them
# instead of pushing anything out, while without pressure reuse costs no more than
# warm memory. Blocks unused for ``_POOL_DECAY_S`` are let go at the next pool
# operation. Every pool operation runs with the GIL held, which is its lock.

cdef extern from *:
    """
    #if defined(__linux__) || defined(__APPLE__)
    #include <sys/mman.h>
    #endif
    static int ecg_release_lazily(char *start, size_t length) {
    #if (defined(__linux__) || defined(__APPLE__)) && defined(MADV_FREE)
        return madvise(start, length, MADV_FREE);
    #else
        (void)start; (void)length;
        return 0;
    #endif
    }
    """
    int ecg_release_lazily(char* start, size_t length) nogil

DEF PAGE = 4096
DEF DEFAULT_POOL_LIMIT = 2147483648  # 2 GiB, at most a quarter of physical memory
_POOL_DECAY_S = 10.0

cdef Py_ssize_t _pool_limit = 0         # set below from the machine or ECGINGEST_ARRAY_POOL
cdef Py_ssize_t _pool_bytes = 0
cdef list _pooled = []                   # (capacity, raw uint8 array, returned at), oldest first


cdef class _PooledBlock:
    """Owner of one large array's memory and that array's base: it outlives every
    view of the array and goes back to the pool when the last one is dropped."""
    cdef object raw
    cdef Py_ssize_t capacity

    def __dealloc__(self):
        if self.raw is not None:
            try:
                _give_back(self.capacity, self.raw)
            except Exception:  # interpreter shutdown: let the memory go
                pass


cdef int _release_oldest(Py_ssize_t target) except -1:
    """Let pooled blocks go, oldest first, until the pool holds at most ``target`` bytes."""
    global _pool_bytes
    while _pool_bytes > target and _pooled:
        _pool_bytes -= <Py_ssize_t>(<tuple>_pooled.pop(0))[0]
    return 0


cdef int _release_stale() except -1:
    """Let go of blocks nobody has taken for ``_POOL_DECAY_S`` seconds."""
    global _pool_bytes
    if not _pooled:
        return 0
    cdef double stale_before = monotonic() - _POOL_DECAY_S
    while _pooled and (<tuple>_pooled[0])[2] < stale_before:
        _pool_bytes -= <Py_ssize_t>(<tuple>_pooled.pop(0))[0]
    return 0


cdef int _give_back(Py_ssize_t capacity, object raw) except -1:
    global _pool_bytes
    cdef size_t start, end
    _release_stale()
    if capacity > _pool_limit:
        return 0
    _release_oldest(_pool_limit - capacity)
    # whole pages only: the block's own memory, never a neighbour's
    start = <size_t>cnp.PyArray_DATA(raw)
    end = start + <size_t>cnp.PyArray_DIM(raw, 0)
    start = (start + PAGE - 1) // PAGE * PAGE
    end = end // PAGE * PAGE
    if end > start:
        # a system call that walks the block's page table: the GIL is not needed for
        # it, and the block is in no list another thread could reach until appended
        with nogil:
            ecg_release_lazily(<char*>start, end - start)
    _pooled.append((capacity, raw, monotonic()))
    _pool_bytes += capacity
    return 0


cdef object _take(Py_ssize_t capacity):
    """A pooled block of ``capacity`` bytes or up to a quarter more, else None after
    releasing at least ``capacity`` pooled bytes (oldest first)."""
    global _pool_bytes
    cdef Py_ssize_t i, cap, best = -1, best_cap = 0
    _release_stale()
    for i in range(len(_pooled)):
        cap = (<tuple>_pooled[i])[0]
        if capacity <= cap <= capacity + capacity // 4 and (best < 0 or cap < best_cap):
            best = i
            best_cap = cap
    if best >= 0:
        _pool_bytes -= best_cap
        return (<tuple>_pooled.pop(best))[:2]
    _release_oldest(_pool_bytes - capacity)
    return None


def set_array_pool_limit(max_bytes: int) -> int:
    """Cap the memory kept for reuse by large decoded arrays; returns the previous cap.

    Arrays of 8 MiB and more are carved from blocks that return to a pool when
    the caller drops them, so the next large decode reuses warm memory instead
    of faulting in fresh pages, the main cost of a large read and one that does
    not scale across threads. ``0`` turns the pool off and frees what it holds.
    The default is 2 GiB or a quarter of physical memory, whichever is less, or
    ``ECGINGEST_ARRAY_POOL`` (bytes) when set. Pooled memory is memory the
    process already had at its peak; the system can take it back under memory
    pressure, and blocks unused for 10 s are let go.
    """
    global _pool_limit
    cdef Py_ssize_t limit = max_bytes
    if limit < 0:
        raise ValueError("max_bytes must be 0 (no pool) or a number of bytes")
    previous = _pool_limit
    _pool_limit = limit
    _release_oldest(_pool_limit)
    return previous


def _default_pool_limit():
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = -1
    if physical <= 0:
        return 536870912  # 512 MiB where the machine's memory is unknown
    return min(DEFAULT_POOL_LIMIT, physical // 4)


def _limit_from_environment():
    set_array_pool_limit(_default_pool_limit())
    text = os.environ.get("ECGINGEST_ARRAY_POOL", "").strip()
    if not text:
        return
    try:
        set_array_pool_limit(int(text))
    except ValueError:
        warnings.warn(f"ECGINGEST_ARRAY_POOL={text!r} is not a number of bytes (0 turns the "
                      f"pool off); keeping the default of {_pool_limit} bytes", RuntimeWarning)


_limit_from_environment()


def array_pool_bytes() -> int:
    """Bytes the pool holds for reuse (memory in no live array)."""
    return _pool_bytes


def aligned_empty(Py_ssize_t n, dtype, bint pooled=False):
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
    cdef Py_ssize_t itemsize = dt.itemsize
    if n < 0:
        raise ValueError("negative size")
    if itemsize > 0 and n > (PY_SSIZE_T_MAX - 2 * HUGE_PAGE) // itemsize:
        raise MemoryError(f"array of {n} items of {itemsize} bytes is too large")
    cdef Py_ssize_t nbytes = n * itemsize
    if (nbytes < ALIGN_FROM and not pooled) or not dt.isnative or dt.kind not in "biufc":
        return np.empty(n, dtype=dt)
    cdef Py_ssize_t capacity = (nbytes + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
    found = _take(capacity)
    if found is None:
        # a pooled block smaller than ALIGN_FROM (an arena's) is not worth 2 MiB of
        # padding: it is used as it comes
        raw = np.empty(capacity + (HUGE_PAGE if nbytes >= ALIGN_FROM else 0), dtype=np.uint8)
    else:
        capacity, raw = found
    cdef char* base = <char*>cnp.PyArray_DATA(raw)
    cdef size_t addr = <size_t>base
    if cnp.PyArray_DIM(raw, 0) - capacity >= HUGE_PAGE:
        base += (HUGE_PAGE - addr % HUGE_PAGE) % HUGE_PAGE
    block = _PooledBlock()
    block.raw = raw
    block.capacity = capacity
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    cdef cnp.ndarray out = cnp.PyArray_SimpleNewFromData(1, dims, dt.num, base)
    cnp.set_array_base(out, block)
    return out


def to_physical(const stored_t[::1] digital, double scale, double offset,
                invalid_value=None, const uint8_t[::1] invalid_mask=None, bint stream=True):
    """float64 array of ``digital * scale + offset`` with NaN for invalid samples.

    ``stream=False`` keeps ordinary stores for every size (tests compare the two).
    """
    cdef Py_ssize_t n = digital.shape[0]
    cdef cnp.ndarray out_arr = aligned_empty(n, np.float64)
    cdef double* dst = <double*>cnp.PyArray_DATA(out_arr)
    cdef const stored_t* src = &digital[0] if n > 0 else NULL
    cdef const uint8_t* mask = NULL
    cdef bint has_code = invalid_value is not None
    cdef int64_t code = 0
    if has_code:
        code = <int64_t>invalid_value
        # a code outside the stored type cannot occur
        if stored_t is int8_t:
            has_code = -128 <= code <= 127
        elif stored_t is int16_t:
            has_code = -32768 <= code <= 32767
        elif stored_t is int32_t:
            has_code = -2147483648 <= code <= 2147483647
    if invalid_mask is not None:
        if invalid_mask.shape[0] != n:
            raise ValueError("invalid_mask must have one entry per sample")
        if n > 0:
            mask = &invalid_mask[0]
    if n == 0:
        return out_arr
    cdef bint streaming = STREAMING_STORES and n >= STREAM_FROM_BYTES // 8 and stream
    with nogil:
        if streaming:
            _convert_streaming(src, mask, dst, n, scale, offset, has_code, code)
        else:
            _convert(src, mask, dst, n, scale, offset, has_code, code)
    return out_arr


# ---------------------------------------------------------------- record building

def new_signal(type cls, label, sample_rate, cnp.ndarray digital, scale=1.0, offset=0.0,
               units="", invalid_value=None, cnp.ndarray invalid_mask=None,
               cnp.ndarray supplied_physical=None):
    """A ``cls`` (:class:`ecgingest.Signal`) holding exactly these fields, its
    arrays made read-only, built without running ``__init__``.

    Decoders build a dozen signals per record while holding the GIL, so the
    cost of each one bounds how well threads decoding other records overlap:
    this is a fifth of what the dataclass constructor costs.
    """
    obj = cls.__new__(cls)
    cdef dict fields = obj.__dict__
    fields["label"] = label
    fields["sample_rate"] = sample_rate
    fields["digital"] = digital
    fields["scale"] = scale
    fields["offset"] = offset
    fields["units"] = units
    fields["invalid_value"] = invalid_value
    fields["invalid_mask"] = invalid_mask
    fields["supplied_physical"] = supplied_physical
    cnp.PyArray_CLEARFLAGS(digital, cnp.NPY_ARRAY_WRITEABLE)
    if invalid_mask is not None:
        cnp.PyArray_CLEARFLAGS(invalid_mask, cnp.NPY_ARRAY_WRITEABLE)
    return obj
