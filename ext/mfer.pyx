# cython: language_level=3
"""MFER tag-length-value scanning: the item table of a byte range.

``scan_items`` walks the items of ``data[start:end]`` without the GIL and
writes one row per item: tag, channel (``ATT`` only, else -1), value offset,
value length and item offset. Every length is checked against ``end`` before
the walk moves past it; an ``ATT`` of indefinite length is walked item by item
to find its ``00 00`` end. The Python side (``ecgingest.formats.mfer``) reads
the values.
"""

cimport cython
from libc.stdint cimport int64_t, uint8_t

import numpy as np

from _status cimport BAD_VALUE, OK, TRUNCATED

cdef enum:
    TAG_END = 0x80
    TAG_ATT = 0x3F
    INDEFINITE = -2
    MAX_DEPTH = 4

COLUMNS = 5
"""Columns of a row of the item table: tag, channel, value offset, value length, item offset."""


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int64_t _header(const uint8_t* data, int64_t p, int64_t end, int64_t* tag,
                     int64_t* channel, int64_t* length) noexcept nogil:
    """Reads one item's tag, channel and length at ``p``; returns the value offset or a
    negative status (the offset of the failure is left in ``length``)."""
    cdef int64_t value = 0
    cdef int n, i
    cdef uint8_t b
    tag[0] = data[p]
    channel[0] = -1
    p += 1
    if tag[0] == TAG_ATT:
        n = 0
        while True:
            if p >= end:
                length[0] = p
                return TRUNCATED
            b = data[p]
            p += 1
            value = (value << 7) | (b & 0x7F)
            n += 1
            if not (b & 0x80):
                break
            if n >= 4:
                length[0] = p
                return BAD_VALUE
        channel[0] = value
    if p >= end:
        length[0] = p
        return TRUNCATED
    b = data[p]
    p += 1
    if b < 0x80:
        length[0] = b
    elif b == 0x80:
        length[0] = INDEFINITE
    elif b <= 0x84:
        n = b - 0x80
        if end - p < n:
            length[0] = p
            return TRUNCATED
        value = 0
        for i in range(n):
            value = (value << 8) | data[p + i]
        p += n
        length[0] = value
    else:
        length[0] = p - 1
        return BAD_VALUE
    if length[0] != INDEFINITE and end - p < length[0]:
        length[0] = p - 1
        return TRUNCATED
    return p


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int64_t _skip_indefinite(const uint8_t* data, int64_t p, int64_t end,
                              int depth) noexcept nogil:
    """The offset just past the ``00 00`` that ends indefinite content starting at ``p``,
    or a negative status."""
    cdef int64_t tag, channel, length, value
    if depth > MAX_DEPTH:
        return BAD_VALUE
    while p < end:
        if data[p] == 0:
            if p + 1 < end and data[p + 1] == 0:
                return p + 2
            p += 1  # padding
            continue
        value = _header(data, p, end, &tag, &channel, &length)
        if value < 0:
            return value
        if length == INDEFINITE:
            p = _skip_indefinite(data, value, end, depth + 1)
            if p < 0:
                return p
        else:
            p = value + length
    return TRUNCATED


@cython.boundscheck(False)
@cython.wraparound(False)
def scan_items(const uint8_t[::1] data, int64_t start, int64_t end, int64_t[:, ::1] out):
    """Fill ``out`` with the items of ``data[start:end]`` from its first row on.

    Returns ``(status, rows, resume, finished)``: ``rows`` filled, ``resume`` the offset
    to call again from when ``out`` was too small, ``finished`` True at the range's end
    or an ``END`` tag. On a bad status ``resume`` is the offset of the failing item.
    """
    cdef int64_t p, value, tag, channel, length, rows = 0, stop, capacity
    cdef int64_t status = OK
    cdef bint finished = False
    if start < 0 or end > data.shape[0] or start > end or out.shape[1] != COLUMNS:
        return BAD_VALUE, 0, start, True
    capacity = out.shape[0]
    p = start
    with nogil:
        while True:
            if p >= end:
                finished = True
                break
            if data[p] == 0:  # padding between items
                p += 1
                continue
            if data[p] == TAG_END:
                finished = True
                break
            if rows >= capacity:
                break
            value = _header(&data[0], p, end, &tag, &channel, &length)
            if value < 0:
                status = value
                break
            if length == INDEFINITE:
                if tag != TAG_ATT:
                    status = BAD_VALUE
                    break
                stop = _skip_indefinite(&data[0], value, end, 1)
                if stop < 0:
                    status = stop
                    break
                length = stop - 2 - value  # the content without its 00 00
            else:
                stop = value + length
            out[rows, 0] = tag
            out[rows, 1] = channel
            out[rows, 2] = value
            out[rows, 3] = length
            out[rows, 4] = p
            rows += 1
            p = stop
    return status, rows, p, finished
