# cython: language_level=3
"""HL7 aECG kernel: the whitespace-separated integers of an ``SLIST_PQ``
``digits`` element, counted then parsed without the GIL.

The count pass sizes the output before it is allocated; the parse pass
checks every byte (XML whitespace, an optional sign, decimal digits) and
every value against the int32 range. Statuses come from ``_status.pxd``.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
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
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)


cdef Py_ssize_t SPANS_NOGIL_FROM = 1 << 14  # bytes: below, the GIL hand-over costs more


cdef int _check_spans(Py_ssize_t n, const int64_t[:, ::1] spans) except -1:
    cdef Py_ssize_t i
    if spans.shape[0] and spans.shape[1] != 2:
        raise ValueError("spans must have shape (k, 2)")
    for i in range(spans.shape[0]):
        if not 0 <= spans[i, 0] <= spans[i, 1] <= n:
            raise ValueError(f"span {i} ({spans[i, 0]}, {spans[i, 1]}) is outside the text")
    return 0


def count_spans(const uint8_t[::1] text, const int64_t[:, ::1] spans):
    """:func:`count_integers` of each ``text[start:end]`` of ``spans`` (the digits of one
    sequence set), in one region without the GIL when they are long: an int64 array."""
    cdef Py_ssize_t k = spans.shape[0], i, total = 0
    _check_spans(text.shape[0], spans)
    cdef cnp.ndarray counts = np.zeros(k, dtype=np.int64)
    cdef int64_t* out = <int64_t*>cnp.PyArray_DATA(counts)
    cdef const uint8_t* s = &text[0] if text.shape[0] else NULL
    for i in range(k):
        total += spans[i, 1] - spans[i, 0]
    if total >= SPANS_NOGIL_FROM:
        with nogil:
            for i in range(k):
                out[i] = _count(s + spans[i, 0], spans[i, 1] - spans[i, 0])
    else:
        for i in range(k):
            out[i] = _count(s + spans[i, 0], spans[i, 1] - spans[i, 0]) if k else 0
    return counts


cdef void _parse_all(const uint8_t* s, const int64_t* spans, Py_ssize_t k,
                     int32_t** wide, int16_t** narrow, const int64_t* counts, int64_t* table
                     ) noexcept nogil:
    cdef Py_ssize_t i, j, produced, error_at, length
    cdef int32_t lo, hi
    cdef int status
    for i in range(k):
        produced = 0
        error_at = -1
        lo = hi = 0
        status = KernelStatus.OK
        length = spans[2 * i + 1] - spans[2 * i]
        if length and counts[i]:
            status = _parse(s + spans[2 * i], length, wide[i], counts[i],
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


def parse_spans(const uint8_t[::1] text, const int64_t[:, ::1] spans,
                const int64_t[::1] counts):
    """:func:`parse_integers` of each ``text[start:end]`` of ``spans`` with its count from
    :func:`count_spans`, all in one region without the GIL when they are long.

    Returns ``(table, wide, narrow)``: ``table[i] = (status, error_at, fits)`` (int64;
    ``error_at`` counts from the span's start; the spans after the first whose status
    is not OK are not parsed and read OK), ``wide[i]`` the int32 values of span ``i``
    and, where ``fits`` (every value within int16), ``narrow[i]`` the same as int16
    (None otherwise)."""
    cdef Py_ssize_t k = spans.shape[0], i, total = 0
    _check_spans(text.shape[0], spans)
    if counts.shape[0] != k:
        raise ValueError("one count per span")
    for i in range(k):
        if counts[i] < 0:
            raise ValueError("a negative count")
        total += spans[i, 1] - spans[i, 0]
    cdef list wide = [np.empty(counts[i], dtype=np.int32) for i in range(k)]
    cdef list narrow = [np.empty(counts[i], dtype=np.int16) for i in range(k)]
    cdef cnp.ndarray table = np.zeros((k, 3), dtype=np.int64)
    cdef int32_t** wide_rows = <int32_t**>malloc(max(k, 1) * sizeof(int32_t*))
    cdef int16_t** narrow_rows = <int16_t**>malloc(max(k, 1) * sizeof(int16_t*))
    cdef const uint8_t* s = &text[0] if text.shape[0] else NULL
    cdef const int64_t* pairs = &spans[0, 0] if k else NULL
    cdef const int64_t* sizes = &counts[0] if k else NULL
    if wide_rows == NULL or narrow_rows == NULL:
        free(wide_rows)
        free(narrow_rows)
        raise MemoryError()
    try:
        for i in range(k):
            wide_rows[i] = <int32_t*>cnp.PyArray_DATA(<cnp.ndarray>wide[i])
            narrow_rows[i] = <int16_t*>cnp.PyArray_DATA(<cnp.ndarray>narrow[i])
        if total >= SPANS_NOGIL_FROM:
            with nogil:
                _parse_all(s, pairs, k, wide_rows, narrow_rows, sizes,
                           <int64_t*>cnp.PyArray_DATA(table))
        else:
            _parse_all(s, pairs, k, wide_rows, narrow_rows, sizes,
                       <int64_t*>cnp.PyArray_DATA(table))
    finally:
        free(wide_rows)
        free(narrow_rows)
    for i in range(k):
        if not table[i, 2]:
            narrow[i] = None
    return table, wide, narrow


# --------------------------------------------------------------------------- the report
#
# The decoder's stylesheet writes what it reads of a document as a "report": records,
# each a lower-case ASCII letter followed by its fields; a field is "-" (absent),
# "<n>:" and n characters (a text), or "#<n>:" and n characters (a digits text, left
# in place as a span). n counts characters (XPath's string-length), which the report's
# UTF-8 spells in 1 to 4 bytes each.

cdef enum:
    TOKEN_MARK = 0   # (kind, letter, 0)
    TOKEN_NONE = 1   # (kind, 0, 0)
    TOKEN_TEXT = 2   # (kind, start, end): bytes of the report
    TOKEN_SPAN = 3   # likewise, a digits text
    REPORT_BAD = -1
    REPORT_NO_MEMORY = -2


cdef struct Tokens:
    int64_t* data
    Py_ssize_t count
    Py_ssize_t capacity


cdef bint _token(Tokens* out, int64_t kind, int64_t a, int64_t b) noexcept nogil:
    cdef int64_t* grown
    cdef Py_ssize_t capacity
    if out.count == out.capacity:
        capacity = out.capacity * 2 if out.capacity else 256
        grown = <int64_t*>realloc(out.data, <size_t>capacity * 3 * sizeof(int64_t))
        if grown == NULL:
            return False
        out.data, out.capacity = grown, capacity
    grown = out.data + out.count * 3
    grown[0], grown[1], grown[2] = kind, a, b
    out.count += 1
    return True


cdef Py_ssize_t _tokens(const uint8_t* s, Py_ssize_t n, Tokens* out) noexcept nogil:
    """The report's tokens: 0, REPORT_BAD (not a report) or REPORT_NO_MEMORY."""
    cdef Py_ssize_t pos = 0, length, k
    cdef uint8_t c
    cdef int64_t kind
    while pos < n:
        c = s[pos]
        if 97 <= c <= 122:  # a record's letter
            if not _token(out, TOKEN_MARK, c, 0):
                return REPORT_NO_MEMORY
            pos += 1
            continue
        if c == 45:  # '-'
            if not _token(out, TOKEN_NONE, 0, 0):
                return REPORT_NO_MEMORY
            pos += 1
            continue
        kind = TOKEN_TEXT
        if c == 35:  # '#'
            kind = TOKEN_SPAN
            pos += 1
        length = 0
        k = pos
        while k < n and 48 <= s[k] <= 57 and k - pos < 18:
            length = length * 10 + (s[k] - 48)
            k += 1
        if k == pos or k >= n or s[k] != 58:  # ':'
            return REPORT_BAD
        pos = k + 1
        k = pos
        while length and k < n:  # one character: its UTF-8 lead byte gives its size
            c = s[k]
            k += 1 if c < 0x80 else 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            length -= 1
        if length or k > n:
            return REPORT_BAD
        if not _token(out, kind, pos, k):
            return REPORT_NO_MEMORY
        pos = k
    return 0


cdef Py_ssize_t REPORT_NOGIL_FROM = 1 << 14  # bytes: below, the GIL hand-over costs more


def report_records(const uint8_t[::1] report):
    """The records of a report (see above): ``(records, spans)`` with ``records`` a list
    of tuples (the record's letter, then its fields: None, a str, or for a digits text
    the int index of its row in ``spans``, int64 of shape (m, 2): the text's byte range
    in the report). None when the bytes are not a report."""
    cdef Py_ssize_t n = report.shape[0], i, result
    cdef const uint8_t* s = &report[0] if n else NULL
    cdef Tokens tokens
    cdef list records = [], fields = None, spans = []
    cdef int64_t kind, a, b
    tokens.data = NULL
    tokens.count = tokens.capacity = 0
    try:
        if n >= REPORT_NOGIL_FROM:
            with nogil:
                result = _tokens(s, n, &tokens)
        else:
            result = _tokens(s, n, &tokens)
        if result == REPORT_NO_MEMORY:
            raise MemoryError()
        if result == REPORT_BAD or (tokens.count and tokens.data[0] != TOKEN_MARK):
            return None
        for i in range(tokens.count):
            kind, a, b = tokens.data[3 * i], tokens.data[3 * i + 1], tokens.data[3 * i + 2]
            if kind == TOKEN_MARK:
                if fields is not None:
                    records.append(tuple(fields))
                fields = [chr(a)]
            elif kind == TOKEN_NONE:
                fields.append(None)
            elif kind == TOKEN_TEXT:
                fields.append(PyUnicode_DecodeUTF8(<const char*>s + a, b - a, NULL))
            else:
                fields.append(len(spans) // 2)
                spans += (a, b)
        if fields is not None:
            records.append(tuple(fields))
    finally:
        free(tokens.data)
    return records, np.array(spans, dtype=np.int64).reshape(-1, 2)


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
