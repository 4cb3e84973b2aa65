# cython: language_level=3
"""HL7 aECG kernel: the whitespace-separated integers of an ``SLIST_PQ``
``digits`` element, counted then parsed without the GIL.

The count pass sizes the output before it is allocated; the parse pass
checks every byte (XML whitespace, an optional sign, decimal digits) and
every value against the int32 range. Statuses come from ``_status.pxd``.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

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


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL


cdef Py_ssize_t TEXTS_NOGIL_FROM = 1 << 14  # characters: below, the GIL hand-over costs more


cdef const char** _sources(list texts, Py_ssize_t* lengths, Py_ssize_t* total) except NULL:
    """The bytes of each str of ``texts`` (an ASCII str's own, no copy) and their length;
    the caller frees the array."""
    cdef Py_ssize_t k = len(texts), i, length
    cdef const char** sources = <const char**>malloc(max(k, 1) * sizeof(const char*))
    if sources == NULL:
        raise MemoryError()
    total[0] = 0
    try:
        for i in range(k):
            sources[i] = PyUnicode_AsUTF8AndSize(texts[i], &length)
            lengths[i] = length
            total[0] += length
    except BaseException:
        free(sources)
        raise
    return sources


def count_texts(list texts):
    """:func:`count_integers` of each str of ``texts`` (the digits of one sequence set),
    in one region without the GIL when they are long: an int64 array."""
    cdef Py_ssize_t k = len(texts), i, total = 0
    cdef cnp.ndarray counts = np.zeros(k, dtype=np.int64)
    cdef int64_t* out = <int64_t*>cnp.PyArray_DATA(counts)
    cdef Py_ssize_t* lengths = <Py_ssize_t*>malloc(max(k, 1) * sizeof(Py_ssize_t))
    if lengths == NULL:
        raise MemoryError()
    cdef const char** sources = NULL
    try:
        sources = _sources(texts, lengths, &total)
        if total >= TEXTS_NOGIL_FROM:
            with nogil:
                for i in range(k):
                    out[i] = _count(<const uint8_t*>sources[i], lengths[i])
        else:
            for i in range(k):
                out[i] = _count(<const uint8_t*>sources[i], lengths[i])
    finally:
        free(sources)
        free(lengths)
    return counts


cdef void _parse_all(const char** sources, const Py_ssize_t* lengths, Py_ssize_t k,
                     int32_t** wide, int16_t** narrow, const int64_t* counts, int64_t* table
                     ) noexcept nogil:
    cdef Py_ssize_t i, j, produced, error_at
    cdef int32_t lo, hi
    cdef int status
    for i in range(k):
        produced = 0
        error_at = -1
        lo = hi = 0
        status = KernelStatus.OK
        if lengths[i] and counts[i]:
            status = _parse(<const uint8_t*>sources[i], lengths[i], wide[i], counts[i],
                            &produced, &error_at, &lo, &hi)
        if status == KernelStatus.OK and produced != counts[i]:
            status = KernelStatus.BAD_VALUE
        table[3 * i] = status
        table[3 * i + 1] = error_at
        table[3 * i + 2] = status == KernelStatus.OK and lo >= -32768 and hi <= 32767
        if status != KernelStatus.OK:
            return  # the caller reports the first bad text
        if table[3 * i + 2]:
            for j in range(counts[i]):
                narrow[i][j] = <int16_t>wide[i][j]


def parse_texts(list texts, const int64_t[::1] counts):
    """:func:`parse_integers` of each str of ``texts`` with its count from
    :func:`count_texts`, all in one region without the GIL when they are long.

    Returns ``(table, wide, narrow)``: ``table[i] = (status, error_at, fits)`` (int64;
    the texts after the first whose status is not OK are not parsed and read OK),
    ``wide[i]`` the int32 values of text ``i`` and, where ``fits`` (every value within
    int16), ``narrow[i]`` the same as int16 (None otherwise)."""
    cdef Py_ssize_t k = len(texts), i, total = 0
    if counts.shape[0] != k:
        raise ValueError("one count per text")
    for i in range(k):
        if counts[i] < 0:
            raise ValueError("a negative count")
    cdef list wide = [np.empty(counts[i], dtype=np.int32) for i in range(k)]
    cdef list narrow = [np.empty(counts[i], dtype=np.int16) for i in range(k)]
    cdef cnp.ndarray table = np.zeros((k, 3), dtype=np.int64)
    cdef Py_ssize_t* lengths = <Py_ssize_t*>malloc(max(k, 1) * sizeof(Py_ssize_t))
    cdef int32_t** wide_rows = <int32_t**>malloc(max(k, 1) * sizeof(int32_t*))
    cdef int16_t** narrow_rows = <int16_t**>malloc(max(k, 1) * sizeof(int16_t*))
    cdef const char** sources = NULL
    if lengths == NULL or wide_rows == NULL or narrow_rows == NULL:
        free(lengths)
        free(wide_rows)
        free(narrow_rows)
        raise MemoryError()
    try:
        for i in range(k):
            wide_rows[i] = <int32_t*>cnp.PyArray_DATA(<cnp.ndarray>wide[i])
            narrow_rows[i] = <int16_t*>cnp.PyArray_DATA(<cnp.ndarray>narrow[i])
        sources = _sources(texts, lengths, &total)
        if total >= TEXTS_NOGIL_FROM:
            with nogil:
                _parse_all(sources, lengths, k, wide_rows, narrow_rows, &counts[0] if k else NULL,
                           <int64_t*>cnp.PyArray_DATA(table))
        else:
            _parse_all(sources, lengths, k, wide_rows, narrow_rows, &counts[0] if k else NULL,
                       <int64_t*>cnp.PyArray_DATA(table))
    finally:
        free(sources)
        free(lengths)
        free(wide_rows)
        free(narrow_rows)
    for i in range(k):
        if not table[i, 2]:
            narrow[i] = None
    return table, wide, narrow


cdef Py_ssize_t STACK_NOGIL_FROM = 1 << 16  # values: below, the GIL hand-over costs more


def stack_int32(list rows):
    """The rows (int16 or int32 arrays of one length, as :func:`parse_texts` gives
    them) as one int32 array of shape (rows, length), copied in one pass (without the
    GIL when large; numpy's stacking hands it over once per row)."""
    cdef Py_ssize_t k = len(rows), n = len(rows[0]) if rows else 0, i
    cdef cnp.ndarray block = np.empty((k, n), dtype=np.int32)
    cdef int32_t* out = <int32_t*>cnp.PyArray_DATA(block)
    cdef const void** sources = <const void**>malloc(max(k, 1) * sizeof(void*))
    cdef uint8_t* wide = <uint8_t*>malloc(max(k, 1))
    cdef cnp.ndarray row
    if sources == NULL or wide == NULL:
        free(sources)
        free(wide)
        raise MemoryError()
    try:
        for i in range(k):
            row = rows[i]
            if row.ndim != 1 or row.shape[0] != n or not cnp.PyArray_IS_C_CONTIGUOUS(row) or \
                    row.dtype not in (np.int16, np.int32) or not row.dtype.isnative:
                raise ValueError("rows must be contiguous int16 or int32 arrays of one length")
            sources[i] = cnp.PyArray_DATA(row)
            wide[i] = row.dtype == np.int32
        if k * n >= STACK_NOGIL_FROM:
            with nogil:
                _stack(sources, wide, k, n, out)
        else:
            _stack(sources, wide, k, n, out)
    finally:
        free(sources)
        free(wide)
    return block


cdef void _stack(const void** sources, const uint8_t* wide, Py_ssize_t k, Py_ssize_t n,
                 int32_t* out) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef const int16_t* small
    for i in range(k):
        if wide[i]:
            memcpy(out + i * n, sources[i], <size_t>n * sizeof(int32_t))
        else:
            small = <const int16_t*>sources[i]
            for j in range(n):
                out[i * n + j] = small[j]
