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

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

from _base64 cimport BASE64_OK, BASE64_ONE_EXTRA, base64_capacity, base64_decode
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
    FACTOR = 4

OUTPUT_FACTOR = FACTOR
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


cdef int _decode_chunks(const uint8_t* src, Py_ssize_t n, Py_ssize_t nleads,
                        Py_ssize_t nsamples, int32_t* out, int64_t* produced, uint8_t* scratch,
                        Py_ssize_t capacity, Lzw* table, Py_ssize_t* leads) noexcept nogil:
    """Decode the first ``nleads`` chunks of ``src[:n]`` into the rows of ``out``
    (``nleads`` x ``nsamples``); ``leads``: the chunks decoded; the status."""
    cdef Py_ssize_t offset = 0, lead = 0, got
    cdef int64_t size
    cdef int16_t start
    cdef int status = KernelStatus.OK
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
        status = _integrate(scratch, got, start, out + lead * nsamples if nsamples > 0 else NULL,
                            nsamples)
        if status != KernelStatus.OK:
            break
        offset += <Py_ssize_t>size
        lead += 1
    leads[0] = lead
    return status


cdef inline Py_ssize_t _capacity(Py_ssize_t nsamples) noexcept nogil:
    return (2 * nsamples + 2) * FACTOR


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
    cdef int32_t* out = <int32_t*>cnp.PyArray_DATA(values)
    cdef int64_t* produced = <int64_t*>cnp.PyArray_DATA(produced_arr)
    cdef Py_ssize_t n = data.shape[0], lead = 0
    cdef Py_ssize_t capacity = _capacity(nsamples)
    cdef int status = KernelStatus.OK
    cdef const uint8_t* src = &data[0] if n else NULL
    cdef uint8_t* scratch = <uint8_t*>malloc(capacity if capacity > 0 else 1)
    cdef Lzw* table = <Lzw*>malloc(sizeof(Lzw))
    if scratch == NULL or table == NULL:
        free(scratch)
        free(table)
        raise MemoryError()
    with nogil:
        status = _decode_chunks(src, n, nleads, nsamples, out, produced, scratch, capacity,
                                table, &lead)
    free(scratch)
    free(table)
    return status, values, produced_arr, lead, (lead if status != KernelStatus.OK else -1)


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL


cdef inline int32_t _wrap(int64_t value) noexcept nogil:
    """``value`` modulo 2**32 as an int32: what numpy's int32 arithmetic gives."""
    return <int32_t><uint32_t>(<uint64_t>value & 0xFFFFFFFFu)


cdef void _rebuild_limb_leads(int32_t* first, int32_t* second, int32_t* third, int32_t* avr,
                              int32_t* avl, int32_t* avf, Py_ssize_t n) noexcept nogil:
    """The residual reconstruction of ``formats.philips.reconstruct_limb_leads`` over
    ``n`` samples, in int32 arithmetic that wraps as numpy's does (``>> 1``: floor
    division by 2)."""
    cdef Py_ssize_t i
    cdef int32_t a, b, c
    for i in range(n):
        a = first[i]
        b = second[i]
        c = _wrap(<int64_t>_wrap(<int64_t>b - a) - third[i])  # III = II - I - III'
        third[i] = c
        avr[i] = _wrap(<int64_t>_wrap(-<int64_t>avr[i]) - (_wrap(<int64_t>a + b) >> 1))
        avl[i] = _wrap(<int64_t>(_wrap(<int64_t>a - c) >> 1) - avl[i])
        avf[i] = _wrap(<int64_t>(_wrap(<int64_t>b + c) >> 1) - avf[i])


def decode_waveforms(str text, Py_ssize_t nleads, Py_ssize_t nsamples, limb=None):
    """A ``parsedwaveforms`` text of XLI chunks read in one region without the GIL:
    base64 (as ``binascii.a2b_base64`` reads it), the chunks, the residual limb
    leads rebuilt and each row's range, so threads reading other files run
    meanwhile and the caller does no per-lead array work.

    ``limb``: None, or the rows of I, II, III, aVR, aVL, aVF (six distinct indexes),
    rebuilt over the first ``n`` samples they all hold (``n``: the least of their
    kept lengths) as :func:`ecgingest.formats.philips.reconstruct_limb_leads` does.

    Returns ``(base64_status, status, values, narrow, produced, kept, fits, chunks,
    failed)``: ``base64_status`` OK, BAD_VALUE (one character past the last group
    of four) or TRUNCATED (incorrect padding; nothing else is decoded then);
    ``status``, ``values``, ``produced``, ``chunks`` and ``failed`` as :func:`decode`
    gives them; ``kept[lead]``: the samples of the row to keep (at most ``nsamples``;
    ``n`` for the limb leads); ``fits[lead]``: whether the kept samples and 0 lie
    within int16, in which case ``narrow[lead, :kept]`` (int16) holds them.
    """
    if nleads < 0 or nsamples < 0:
        raise ValueError("negative lead or sample count")
    cdef Py_ssize_t rows[6]
    cdef Py_ssize_t i, j, k, n, length = 0, lead = 0, produced_bytes = 0, skipped = 0
    cdef bint rebuild = limb is not None
    if rebuild:
        if len(limb) != 6:
            raise ValueError("limb names six rows")
        for i in range(6):
            rows[i] = limb[i]
            if not 0 <= rows[i] < nleads:
                raise ValueError("a limb row is outside the leads")
            for j in range(i):
                if rows[j] == rows[i]:
                    raise ValueError("the limb rows must differ")
    cdef const char* src = PyUnicode_AsUTF8AndSize(text, &length)  # an ASCII str's own bytes
    cdef cnp.ndarray values = np.zeros((nleads, nsamples), dtype=np.int32)
    cdef cnp.ndarray narrow = np.empty((nleads, nsamples), dtype=np.int16)
    cdef cnp.ndarray produced_arr = np.zeros(nleads, dtype=np.int64)
    cdef cnp.ndarray kept_arr = np.zeros(nleads, dtype=np.int64)
    cdef cnp.ndarray fits_arr = np.zeros(nleads, dtype=np.bool_)
    cdef int32_t* out = <int32_t*>cnp.PyArray_DATA(values)
    cdef int16_t* small = <int16_t*>cnp.PyArray_DATA(narrow)
    cdef int64_t* produced = <int64_t*>cnp.PyArray_DATA(produced_arr)
    cdef int64_t* kept = <int64_t*>cnp.PyArray_DATA(kept_arr)
    cdef uint8_t* fits = <uint8_t*>cnp.PyArray_DATA(fits_arr)
    cdef Py_ssize_t capacity = _capacity(nsamples)
    cdef uint8_t* scratch = <uint8_t*>malloc(capacity if capacity > 0 else 1)
    cdef uint8_t* raw = <uint8_t*>malloc(base64_capacity(length))
    cdef Lzw* table = <Lzw*>malloc(sizeof(Lzw))
    cdef int status = KernelStatus.OK, decoded = BASE64_OK
    cdef int32_t lo, hi, v
    cdef int32_t* row
    if scratch == NULL or table == NULL or raw == NULL:
        free(scratch)
        free(table)
        free(raw)
        raise MemoryError()
    with nogil:
        decoded = base64_decode(<const uint8_t*>src, length, raw, &produced_bytes, &skipped)
        if decoded == BASE64_OK:
            status = _decode_chunks(raw, produced_bytes, nleads, nsamples, out, produced,
                                    scratch, capacity, table, &lead)
            for i in range(nleads):
                kept[i] = produced[i] if produced[i] < nsamples else nsamples
            if rebuild:
                n = kept[rows[0]]
                for i in range(1, 6):
                    if kept[rows[i]] < n:
                        n = kept[rows[i]]
                for i in range(6):
                    kept[rows[i]] = n
                _rebuild_limb_leads(out + rows[0] * nsamples, out + rows[1] * nsamples,
                                    out + rows[2] * nsamples, out + rows[3] * nsamples,
                                    out + rows[4] * nsamples, out + rows[5] * nsamples, n)
            for i in range(nleads):
                row = out + i * nsamples
                lo = hi = 0
                for k in range(kept[i]):
                    v = row[k]
                    if v < lo:
                        lo = v
                    elif v > hi:
                        hi = v
                fits[i] = lo >= -32768 and hi <= 32767
                if fits[i]:
                    for k in range(kept[i]):
                        small[i * nsamples + k] = <int16_t>row[k]
    free(scratch)
    free(table)
    free(raw)
    base64_status = (KernelStatus.OK if decoded == BASE64_OK else KernelStatus.BAD_VALUE
                     if decoded == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
    return (base64_status, status, values, narrow, produced_arr, kept_arr, fits_arr, lead,
            (lead if status != KernelStatus.OK else -1))


cdef Py_ssize_t TEXTS_NOGIL_FROM = 1 << 14  # characters: below, the GIL hand-over costs more


def decode_base64_rows(list texts):
    """Each str of ``texts`` decoded as ``binascii.a2b_base64`` reads it (the
    representative beats of a record), all in one region without the GIL when they
    are long, packed one after the other with an odd last byte dropped: ``(data,
    table)`` with ``table[i] = (offset, length, status)`` (int64), ``data[offset:
    offset + length]`` the even bytes of text ``i`` and ``status`` OK, BAD_VALUE or
    TRUNCATED as :func:`decode_waveforms` reports them for its text."""
    cdef Py_ssize_t k = len(texts), i, total = 0, length
    cdef const char** sources = <const char**>malloc(max(k, 1) * sizeof(const char*))
    cdef Py_ssize_t* lengths = <Py_ssize_t*>malloc(max(k, 1) * sizeof(Py_ssize_t))
    if sources == NULL or lengths == NULL:
        free(sources)
        free(lengths)
        raise MemoryError()
    try:
        for i in range(k):
            sources[i] = PyUnicode_AsUTF8AndSize(texts[i], &length)  # an ASCII str's own bytes
            lengths[i] = length
            total += base64_capacity(length)
        data = np.empty(total, dtype=np.uint8)
        table = np.empty((k, 3), dtype=np.int64)
        _decode_rows(sources, lengths, k, <uint8_t*>cnp.PyArray_DATA(data),
                     <int64_t*>cnp.PyArray_DATA(table), total >= TEXTS_NOGIL_FROM)
    finally:
        free(sources)
        free(lengths)
    return data, table


cdef void _decode_rows(const char** sources, const Py_ssize_t* lengths, Py_ssize_t k,
                       uint8_t* out, int64_t* table, bint release):
    if release:
        with nogil:
            _decode_rows_nogil(sources, lengths, k, out, table)
    else:
        _decode_rows_nogil(sources, lengths, k, out, table)


cdef void _decode_rows_nogil(const char** sources, const Py_ssize_t* lengths, Py_ssize_t k,
                             uint8_t* out, int64_t* table) noexcept nogil:
    # text i is decoded where text i - 1's kept bytes end: a scratch or odd byte of one
    # is overwritten by the next, and each has its own capacity's room before the end
    cdef Py_ssize_t i, offset = 0, produced, skipped
    cdef int result
    for i in range(k):
        produced = skipped = 0
        result = BASE64_OK
        if lengths[i]:
            result = base64_decode(<const uint8_t*>sources[i], lengths[i], out + offset,
                                   &produced, &skipped)
        table[3 * i] = offset
        table[3 * i + 1] = produced & ~(<Py_ssize_t>1)
        table[3 * i + 2] = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
                            if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
        offset += produced & ~(<Py_ssize_t>1)
