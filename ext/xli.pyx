# cython: language_level=3
"""Philips XLI kernel: the chunks of a ``parsedwaveforms`` block -> one int32 row per lead.

A chunk is an 8-byte header (int32 LE payload size, 2 unused bytes, int16 LE
start value) and an LZW payload: 10-bit codes read most significant bit
first, codes 0-255 literal, dictionary entries 256 up to 1022, no clear code
(code 1023 ends the payload). A code is read only while more than 24 bits are
buffered, as the Philips reader does: the writer pads the payload. The output
bytes are n/2 int16 values whose high bytes are the first half and low bytes
the second half; those are second differences, integrated with the chunk's
start value. Every index is checked against the payload, the dictionary and
the output buffer; statuses come from ``_status.pxd``.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

from _bytes cimport load_le16, load_le32
from _status cimport KernelStatus

cnp.import_array()

STATUS_OK = KernelStatus.OK
STATUS_TRUNCATED = KernelStatus.TRUNCATED
STATUS_BAD_VALUE = KernelStatus.BAD_VALUE
STATUS_OVERFLOW = KernelStatus.OVERFLOW
STATUS_BAD_CODE = KernelStatus.BAD_CODE

cdef enum:
    CODE_BITS = 10
    MAX_CODE = 1022  # (1 << CODE_BITS) - 2: the last dictionary entry
    TABLE = 1024
    CHUNK_HEADER = 8

OUTPUT_FACTOR = 4
"""A chunk may decode to at most this many times the bytes its lead needs."""


cdef struct Lzw:
    uint16_t prefix[TABLE]
    uint8_t suffix[TABLE]
    uint8_t first[TABLE]
    uint16_t length[TABLE]


cdef Py_ssize_t _lzw(const uint8_t* src, Py_ssize_t size, uint8_t* out, Py_ssize_t capacity,
                     Lzw* table, int* status) noexcept nogil:
    """Decode one payload into ``out``; the byte count, or -1 with ``status`` set."""
    cdef Py_ssize_t offset = 0, pos = 0, k
    cdef uint32_t bit_buffer = 0
    cdef int bit_count = 0
    cdef int code, previous = -1, next_code = 256, at
    cdef uint16_t length
    cdef uint8_t head
    while True:
        # fill: a code is taken only with more than 24 bits buffered
        while bit_count <= 24:
            if offset >= size:
                return pos
            bit_buffer |= (<uint32_t>src[offset]) << (24 - bit_count)
            offset += 1
            bit_count += 8
        code = <int>(bit_buffer >> (32 - CODE_BITS))
        bit_buffer <<= CODE_BITS
        bit_count -= CODE_BITS
        if code > MAX_CODE:
            return pos  # 1023: the end of the payload
        if code < 256:
            length = 1
            head = <uint8_t>code
            if pos + 1 > capacity:
                status[0] = KernelStatus.OVERFLOW
                return -1
            out[pos] = head
        elif code < next_code:
            length = table.length[code]
            head = table.first[code]
            if pos + length > capacity:
                status[0] = KernelStatus.OVERFLOW
                return -1
            at = code
            for k in range(length - 1, 0, -1):
                out[pos + k] = table.suffix[at]
                at = table.prefix[at]
            out[pos] = <uint8_t>at  # the chain ends at a literal
        elif code == next_code and previous >= 0:
            # the string of the previous code plus its own first byte
            length = (1 if previous < 256 else table.length[previous]) + 1
            head = <uint8_t>previous if previous < 256 else table.first[previous]
            if pos + length > capacity:
                status[0] = KernelStatus.OVERFLOW
                return -1
            at = previous
            for k in range(length - 2, 0, -1):
                out[pos + k] = table.suffix[at]
                at = table.prefix[at]
            out[pos] = <uint8_t>at
            out[pos + length - 1] = head
        else:
            status[0] = KernelStatus.BAD_CODE
            return -1
        pos += length
        if previous >= 0 and next_code <= MAX_CODE:
            table.prefix[next_code] = <uint16_t>previous
            table.suffix[next_code] = head
            if previous < 256:
                table.first[next_code] = <uint8_t>previous
                table.length[next_code] = 2
            else:
                table.first[next_code] = table.first[previous]
                table.length[next_code] = table.length[previous] + 1
            next_code += 1
        previous = code


cdef int _integrate(const uint8_t* raw, Py_ssize_t nbytes, int16_t start, int32_t* row,
                    Py_ssize_t nsamples) noexcept nogil:
    """Unpack the halves into int16 values and integrate the second differences
    into ``row`` (at most ``nsamples`` values kept)."""
    cdef Py_ssize_t n = nbytes // 2, i
    cdef int64_t x, y, z, last = start, v
    if n > 0 and nsamples > 0:
        row[0] = <int16_t>(((<uint16_t>raw[0]) << 8) | raw[n])
    if n > 1 and nsamples > 1:
        row[1] = <int16_t>(((<uint16_t>raw[1]) << 8) | raw[n + 1])
    if n < 2:
        return KernelStatus.OK
    x = <int16_t>(((<uint16_t>raw[0]) << 8) | raw[n])
    y = <int16_t>(((<uint16_t>raw[1]) << 8) | raw[n + 1])
    for i in range(2, n):
        v = <int16_t>(((<uint16_t>raw[i]) << 8) | raw[n + i])
        z = y + y - x - last
        last = v - 64
        if z > <int64_t>2147483647 or z < -<int64_t>2147483648:
            return KernelStatus.OVERFLOW
        if i < nsamples:
            row[i] = <int32_t>z
        x = y
        y = z
    return KernelStatus.OK


def decode(const uint8_t[::1] data, Py_ssize_t nleads, Py_ssize_t nsamples):
    """``(status, values, produced, chunks, failed)`` for the first ``nleads`` chunks.

    ``values[lead, :nsamples]`` (int32, zero past what a chunk holds),
    ``produced[lead]``: the samples the chunk held (more or fewer than
    ``nsamples`` is the caller's to report), ``chunks``: chunks decoded,
    ``failed``: the lead whose chunk gave the non-OK ``status`` (-1 if none).
    """
    if nleads < 0 or nsamples < 0:
        raise ValueError("negative lead or sample count")
    cdef cnp.ndarray values = np.zeros((nleads, nsamples), dtype=np.int32)
    cdef cnp.ndarray produced_arr = np.zeros(nleads, dtype=np.int64)
    cdef int32_t[:, ::1] out = values
    cdef int64_t[::1] produced = produced_arr
    cdef Py_ssize_t n = data.shape[0], offset = 0, lead = 0, got
    cdef Py_ssize_t capacity = (2 * nsamples + 2) * OUTPUT_FACTOR
    cdef int64_t size
    cdef int16_t start
    cdef int status = KernelStatus.OK
    cdef const uint8_t* src = &data[0] if n else NULL
    cdef uint8_t* scratch = <uint8_t*>malloc(capacity if capacity > 0 else 1)
    cdef Lzw* table = <Lzw*>malloc(sizeof(Lzw))
    if scratch == NULL or table == NULL:
        free(scratch)
        free(table)
        raise MemoryError()
    try:
        with nogil:
            while lead < nleads:
                if offset + CHUNK_HEADER > n:
                    status = KernelStatus.TRUNCATED
                    break
                size = <int32_t>load_le32(src + offset)
                start = <int16_t>load_le16(src + offset + 6)
                offset += CHUNK_HEADER
                if size < 0:
                    status = KernelStatus.BAD_VALUE
                    break
                if size > n - offset:
                    status = KernelStatus.TRUNCATED
                    break
                got = _lzw(src + offset, <Py_ssize_t>size, scratch, capacity, table, &status)
                if got < 0:
                    break
                if got % 2:
                    scratch[got] = 0  # capacity is even and got < capacity here
                    got += 1
                produced[lead] = got // 2
                status = _integrate(scratch, got, start,
                                    &out[lead, 0] if nsamples > 0 else NULL, nsamples)
                if status != KernelStatus.OK:
                    break
                offset += <Py_ssize_t>size
                lead += 1
    finally:
        free(scratch)
        free(table)
    return status, values, produced_arr, lead, (lead if status != KernelStatus.OK else -1)
