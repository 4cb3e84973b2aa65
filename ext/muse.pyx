# cython: language_level=3
"""GE MUSE kernel: a lead's base64 ``WaveFormData`` -> its bytes, without the GIL.

Decodes as ``binascii.a2b_base64`` does (non-strict: bytes outside the
alphabet skipped, padding ends the data; see ``_base64.pxd``) at several
times its speed, and counts the skipped characters that are not whitespace,
which the caller reports. Statuses come from ``_status.pxd``.

``waveform_spans`` finds the text of every ``<WaveFormData>`` element in the
raw bytes of a document (ASCII-compatible encodings), so the XML parser can be
given the document without its ~100 KB of base64, and ``decode_spans``
decodes those texts straight from the document's bytes.
"""

from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memchr, memcmp

import numpy as np

cimport numpy as cnp

from _base64 cimport BASE64_OK, BASE64_ONE_EXTRA, base64_capacity, base64_decode
from _status cimport KernelStatus

cnp.import_array()

cdef Py_ssize_t NOGIL_FROM = 1 << 18  # characters: below, the decode is shorter than a GIL hand-over

STATUS_OK = KernelStatus.OK
STATUS_BAD_VALUE = KernelStatus.BAD_VALUE
STATUS_TRUNCATED = KernelStatus.TRUNCATED


def decode_base64(const uint8_t[::1] text):
    """``(status, data, skipped)``: the decoded bytes as a read-only uint8 array,
    and the count of characters outside the base64 alphabet that are not
    whitespace. ``status`` is TRUNCATED when the data ends inside a quad
    (``data`` then holds the bytes decoded so far) and BAD_VALUE when one
    character is left over (no encoder writes that)."""
    cdef Py_ssize_t n = text.shape[0], produced = 0, skipped = 0
    cdef cnp.ndarray out = np.empty(base64_capacity(n), dtype=np.uint8)
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(out)
    cdef int result = BASE64_OK
    if n >= NOGIL_FROM:
        with nogil:
            result = base64_decode(&text[0], n, dst, &produced, &skipped)
    elif n:  # a lead's few kB take microseconds: handing the GIL over would cost more
        result = base64_decode(&text[0], n, dst, &produced, &skipped)
    status = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
              if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
    data = out[:produced]
    data.flags.writeable = False
    return status, data, skipped


cdef Py_ssize_t _find(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n, const char* pattern,
                      Py_ssize_t m) noexcept nogil:
    """First index >= pos of ``pattern[:m]`` in ``s[:n]``, or -1."""
    cdef const uint8_t* hit
    while pos + m <= n:
        hit = <const uint8_t*>memchr(s + pos, pattern[0], <size_t>(n - pos - m + 1))
        if hit == NULL:
            return -1
        pos = hit - s
        if memcmp(hit, pattern, <size_t>m) == 0:
            return pos
        pos += 1
    return -1


cdef Py_ssize_t _tag_end(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """Index of the '>' closing the tag that starts before ``pos`` (quoted attribute values
    may hold '>'), or -1."""
    cdef uint8_t c
    cdef const uint8_t* hit
    while pos < n:
        c = s[pos]
        if c == 62:  # '>'
            return pos
        if c == 34 or c == 39:  # a quoted value: its closing quote
            hit = <const uint8_t*>memchr(s + pos + 1, c, <size_t>(n - pos - 1))
            if hit == NULL:
                return -1
            pos = hit - s
        pos += 1
    return -1


cdef Py_ssize_t _spans(const uint8_t* s, Py_ssize_t n, int64_t* out,
                       Py_ssize_t room) noexcept nogil:
    """Write (start, end) of the text of each ``<WaveFormData>`` into ``out`` (at most
    ``room`` pairs); the count, or -1 where the markup is one this scan does not read
    exactly, or -2 when ``out`` is full."""
    cdef Py_ssize_t pos = 0, count = 0, close, start
    cdef const uint8_t* hit
    cdef uint8_t c
    while True:
        hit = <const uint8_t*>memchr(s + pos, 60, <size_t>(n - pos))  # '<'
        if hit == NULL:
            return count
        pos = hit - s
        if pos + 1 >= n:
            return -1
        c = s[pos + 1]
        if c == 33:  # '!': comment, CDATA section or DOCTYPE
            if n - pos >= 4 and memcmp(s + pos, b"<!--", 4) == 0:
                close = _find(s, pos + 4, n, b"-->", 3)
                if close < 0:
                    return -1
                pos = close + 3
            elif n - pos >= 9 and memcmp(s + pos, b"<![CDATA[", 9) == 0:
                close = _find(s, pos + 9, n, b"]]>", 3)
                if close < 0:
                    return -1
                pos = close + 3
            else:  # a DOCTYPE without an internal subset (one with '[' is not scanned)
                close = _tag_end(s, pos + 2, n)
                if close < 0 or memchr(s + pos, 91, <size_t>(close - pos)) != NULL:
                    return -1
                pos = close + 1
        elif c == 63:  # '?': processing instruction
            close = _find(s, pos + 2, n, b"?>", 2)
            if close < 0:
                return -1
            pos = close + 2
        elif n - pos >= 14 and memcmp(s + pos, b"<WaveFormData>", 14) == 0:
            start = pos + 14
            hit = <const uint8_t*>memchr(s + start, 60, <size_t>(n - start))
            if hit == NULL:
                return -1
            pos = hit - s
            # only text, then the element's end tag (a child or a comment: not scanned)
            if n - pos < 15 or memcmp(s + pos, b"</WaveFormData", 14) != 0:
                return -1
            if count == room:
                return -2
            out[2 * count] = start
            out[2 * count + 1] = pos
            count += 1
        else:  # any other start or end tag
            close = _tag_end(s, pos + 1, n)
            if close < 0:
                return -1
            pos = close + 1


def waveform_spans(const uint8_t[::1] document):
    """``(start, end)`` byte offsets of the text of every ``<WaveFormData>`` element, as
    an int64 array of shape (k, 2), or None where the markup is not one this scan reads
    exactly (an internal DTD subset, such an element with attributes or children, an
    unterminated comment, tag or section); the document must be in an ASCII-compatible
    encoding. Comments, CDATA sections and processing instructions are skipped, so a
    span is always an element's text when the document is well-formed (which the
    caller's parser checks on what is left)."""
    cdef Py_ssize_t n = document.shape[0], room = 32, count
    cdef cnp.ndarray out
    if n == 0:
        return None
    while True:
        out = np.empty((room, 2), dtype=np.int64)
        count = _spans(&document[0], n, <int64_t*>cnp.PyArray_DATA(out), room)
        if count != -2:
            break
        room *= 4
    if count < 0:
        return None
    return out[:count]


cdef void _decode_spans(const uint8_t* src, const int64_t* spans, Py_ssize_t k, uint8_t* dst,
                        int64_t* row) noexcept nogil:
    cdef Py_ssize_t i, offset = 0, produced, skipped, start, end
    cdef int result
    for i in range(k):
        start, end = spans[2 * i], spans[2 * i + 1]
        produced = skipped = 0
        result = BASE64_OK
        if end > start:
            result = base64_decode(src + start, end - start, dst + offset, &produced, &skipped)
        row[4 * i] = offset
        row[4 * i + 1] = produced
        row[4 * i + 2] = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
                          if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
        row[4 * i + 3] = skipped
        offset += base64_capacity(end - start)


def decode_spans(const uint8_t[::1] document, const int64_t[:, ::1] spans):
    """Every span of ``document`` decoded as :func:`decode_base64` does, into one buffer:
    ``(data, table)`` with ``table[i] = (offset, produced, status, skipped)`` (int64) and
    ``data[offset:offset + produced]`` the bytes of span ``i``. Spans are checked
    against the document; the GIL is released when they are long."""
    cdef Py_ssize_t k = spans.shape[0], n = document.shape[0], i, total = 0, produced, skipped
    cdef int64_t start, end
    for i in range(k):
        start, end = spans[i, 0], spans[i, 1]
        if not 0 <= start <= end <= n:
            raise ValueError(f"span {i} ({start}, {end}) is outside the document")
        total += base64_capacity(end - start)
    cdef cnp.ndarray data = np.empty(total, dtype=np.uint8)
    cdef cnp.ndarray table = np.empty((k, 4), dtype=np.int64)
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(data)
    cdef int64_t* row = <int64_t*>cnp.PyArray_DATA(table)
    cdef const uint8_t* src = &document[0] if n else NULL
    if total >= NOGIL_FROM:
        with nogil:
            _decode_spans(src, &spans[0, 0] if k else NULL, k, dst, row)
    else:  # a few leads of a few kB: handing the GIL over would cost more
        _decode_spans(src, &spans[0, 0] if k else NULL, k, dst, row)
    data.flags.writeable = False
    table.flags.writeable = False
    return data, table
