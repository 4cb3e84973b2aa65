# cython: language_level=3
"""HL7 aECG kernel: the whitespace-separated integers of an ``SLIST_PQ``
``digits`` element, counted then parsed without the GIL.

The count pass sizes the output before it is allocated; the parse pass
checks every byte (XML whitespace, an optional sign, decimal digits) and
every value against the int32 range. Statuses come from ``_status.pxd``.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t

import numpy as np

cimport numpy as cnp

from _status cimport KernelStatus

cnp.import_array()

STATUS_OK = KernelStatus.OK
STATUS_BAD_VALUE = KernelStatus.BAD_VALUE
STATUS_OVERFLOW = KernelStatus.OVERFLOW


cdef inline bint _space(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef Py_ssize_t _count(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, count = 0
    cdef bint inside = False
    for i in range(n):
        if _space(s[i]):
            inside = False
        elif not inside:
            inside = True
            count += 1
    return count


cdef int _parse(const uint8_t* s, Py_ssize_t n, int32_t* out, Py_ssize_t capacity,
                Py_ssize_t* produced, Py_ssize_t* error_at, int32_t* lo,
                int32_t* hi) noexcept nogil:
    cdef Py_ssize_t i = 0, k = 0, start
    cdef int64_t value
    cdef bint negative
    cdef int32_t low = 0, high = 0
    while True:
        while i < n and _space(s[i]):
            i += 1
        if i >= n:
            break
        start = i
        negative = False
        if s[i] == 45 or s[i] == 43:  # '-', '+'
            negative = s[i] == 45
            i += 1
        if i >= n or s[i] < 48 or s[i] > 57:
            error_at[0] = start
            produced[0] = k
            return KernelStatus.BAD_VALUE
        value = 0
        while i < n and 48 <= s[i] <= 57:
            value = value * 10 + (s[i] - 48)
            if value > <int64_t>2147483648:
                error_at[0] = start
                produced[0] = k
                return KernelStatus.OVERFLOW
            i += 1
        if i < n and not _space(s[i]):
            error_at[0] = i
            produced[0] = k
            return KernelStatus.BAD_VALUE
        if negative:
            value = -value
        elif value > <int64_t>2147483647:
            error_at[0] = start
            produced[0] = k
            return KernelStatus.OVERFLOW
        if k >= capacity:  # cannot happen after _count; kept as a bound
            break
        out[k] = <int32_t>value
        if k == 0:
            low = high = <int32_t>value
        elif value < low:
            low = <int32_t>value
        elif value > high:
            high = <int32_t>value
        k += 1
    produced[0] = k
    lo[0] = low
    hi[0] = high
    return KernelStatus.OK


def count_integers(const uint8_t[::1] text) -> int:
    """Whitespace-separated tokens in ``text`` (what :func:`parse_integers` will return)."""
    cdef Py_ssize_t count
    with nogil:
        count = _count(&text[0], text.shape[0]) if text.shape[0] else 0
    return count


def parse_integers(const uint8_t[::1] text, Py_ssize_t count):
    """``(status, values, lo, hi, error_at)``: ``count`` int32 values (from
    :func:`count_integers`), their range, and the byte offset of the first bad
    token when ``status`` is not OK."""
    cdef cnp.ndarray values = np.empty(count, dtype=np.int32)
    cdef int32_t[::1] out = values
    cdef Py_ssize_t produced = 0, error_at = -1
    cdef int32_t lo = 0, hi = 0
    cdef int status = KernelStatus.OK
    if text.shape[0] and count:
        with nogil:
            status = _parse(&text[0], text.shape[0], &out[0], count, &produced, &error_at,
                            &lo, &hi)
    if status == KernelStatus.OK and produced != count:
        status = KernelStatus.BAD_VALUE
    return status, values, lo, hi, error_at
