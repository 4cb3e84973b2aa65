# cython: language_level=3
"""One-pass conversion of stored integers to physical values.

``digital * scale + offset`` in float64, NaN where the stored code is the
format's invalid marker or a mask says the sample is missing: one read of
the digital array and one write of the output, with the GIL released.

The loops run over raw pointers with the scale, offset and code in locals
and a branch-free select for the invalid samples, so the compiler can keep
them in registers and vectorise them (a memoryview loop re-reads the scale
from memory on every sample because the output might alias it).
"""

import numpy as np
cimport numpy as cnp
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

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


def aligned_empty(Py_ssize_t n, dtype):
    """``np.empty(n, dtype)``, starting on a 2 MiB boundary when it is large.

    numpy asks the kernel for transparent huge pages on large arrays, but the
    kernel can back only the whole, aligned 2 MiB stretches with them; the
    unaligned head and tail of an ordinary allocation fault in 4 KiB pages,
    hundreds of page faults per array. Starting the data on a boundary leaves
    at most the tail. The padding in front is never touched, so it is address
    space, not memory.
    """
    dt = np.dtype(dtype)
    cdef Py_ssize_t itemsize = dt.itemsize
    cdef size_t addr
    if n < 0:
        raise ValueError("negative size")
    if itemsize > 0 and n > (PY_SSIZE_T_MAX - HUGE_PAGE) // itemsize:
        raise MemoryError(f"array of {n} items of {itemsize} bytes is too large")
    cdef Py_ssize_t nbytes = n * itemsize
    if nbytes < ALIGN_FROM:
        return np.empty(n, dtype=dt)
    raw = np.empty(nbytes + HUGE_PAGE, dtype=np.uint8)
    addr = <size_t>cnp.PyArray_DATA(raw)
    cdef Py_ssize_t off = <Py_ssize_t>((HUGE_PAGE - addr % HUGE_PAGE) % HUGE_PAGE)
    return raw[off:off + nbytes].view(dt)


def to_physical(const stored_t[::1] digital, double scale, double offset,
                invalid_value=None, const uint8_t[::1] invalid_mask=None):
    """float64 array of ``digital * scale + offset`` with NaN for invalid samples."""
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
    with nogil:
        if mask != NULL:
            _masked(src, mask, dst, n, scale, offset, has_code, code)
        elif has_code:
            _coded(src, dst, n, scale, offset, <stored_t>code)
        else:
            _plain(src, dst, n, scale, offset)
    return out_arr
