# cython: language_level=3, autotestdict=False
"""WFDB annotation files (MIT format): the 16-bit word stream walked in one ``nogil`` loop.

The walk follows the WFDB C library's reader (``annopen`` then ``getann``):
leading ``SKIP`` words move the clock before the first annotation; each
annotation word adds its 10-bit interval; the pseudo-words after it set its
subtype (``SUB``), its sticky ``chan`` (``CHN``) and ``num`` (``NUM``), its
aux bytes (``AUX``), or move the clock for the next one (``SKIP``, a signed
32-bit interval, high word first). A zero word ends the file.

:func:`scan` counts what :func:`decode` then writes, so the caller checks the
count against its limits and allocates exact arrays before any decoding.
Times are 64-bit: a file of ``n`` bytes holds at most ``n / 6`` SKIPs of at
most 2**31 each, far inside ``int64`` for any file that fits in memory.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t

from _bytes cimport load_le16
from _status cimport OK, TRUNCATED

# the word layout (WFDB lib/annot.c)
cdef enum:
    CODE_SHIFT = 10
    DATA = 0x3FF
    ACMAX = 49
    PSEUDO_MIN = 59
    SKIP = 59
    NUM = 60
    SUB = 61
    CHN = 62
    AUX = 63

MAX_CODE = ACMAX


cdef struct Walk:
    int status
    int64_t count      # annotations read (the last one may be cut short by truncation)
    int64_t stop       # byte offset after the end word, or where the data ran out
    int64_t bad_codes  # annotations whose code is above ACMAX (pseudo or reserved codes)


cdef inline int32_t _load_skip(const uint8_t* p) noexcept nogil:
    # PDP-11 order: the high 16-bit word first, each word little-endian
    return <int32_t>((<uint32_t>load_le16(p) << 16) | <uint32_t>load_le16(p + 2))


cdef Walk _walk(const uint8_t* p, int64_t n, int64_t cap, int64_t* sample, uint8_t* code,
                int8_t* subtype, uint8_t* chan, int8_t* num, int64_t* aux_start,
                int16_t* aux_len) noexcept nogil:
    """Walk the words; write the fields of the first ``cap`` annotations when
    ``sample`` is not NULL (every output holds ``cap`` slots)."""
    cdef Walk w
    cdef int64_t pos = 0, t = 0, k = -1, have, length
    cdef uint16_t word
    cdef int c
    cdef uint8_t chan_now = 0
    cdef int8_t num_now = 0
    cdef bint write = sample != NULL
    w.status = OK
    w.count = 0
    w.stop = 0
    w.bad_codes = 0
    if n < 2:
        w.status = TRUNCATED
        return w
    word = load_le16(p)
    pos = 2
    while (word >> CODE_SHIFT) == SKIP:  # SKIPs before the first annotation
        if pos + 6 > n:
            w.status = TRUNCATED
            w.stop = pos
            return w
        t += _load_skip(p + pos)
        word = load_le16(p + pos + 4)
        pos += 6
    while True:
        if word == 0:  # the end word
            w.stop = pos
            break
        k += 1
        c = word >> CODE_SHIFT
        t += word & DATA
        if c > ACMAX:
            w.bad_codes += 1
        if write and k >= cap:  # more than the outputs hold: stop writing
            write = False
        if write:
            sample[k] = t
            code[k] = <uint8_t>c
            subtype[k] = 0
            aux_start[k] = -1
            aux_len[k] = -1
        # the pseudo-words that modify annotation k
        while True:
            if pos + 2 > n:
                w.status = TRUNCATED
                break
            word = load_le16(p + pos)
            pos += 2
            c = word >> CODE_SHIFT
            if c < PSEUDO_MIN:
                break
            if c == SKIP:
                if pos + 4 > n:
                    w.status = TRUNCATED
                    break
                t += _load_skip(p + pos)
                pos += 4
            elif c == SUB:
                if write:
                    subtype[k] = <int8_t>(word & 0xFF)
            elif c == CHN:
                chan_now = <uint8_t>(word & 0xFF)
            elif c == NUM:
                num_now = <int8_t>(word & 0xFF)
            else:  # AUX: a length byte, then the bytes padded to an even count
                length = word & 0xFF
                have = n - pos
                if write:
                    aux_start[k] = pos
                    aux_len[k] = <int16_t>(length if length <= have else have)
                if length + (length & 1) > have:
                    w.status = TRUNCATED
                    pos = n
                    break
                pos += length + (length & 1)
        if write:
            chan[k] = chan_now
            num[k] = num_now
        if w.status != OK:
            w.stop = pos
            break
    w.count = k + 1
    return w


def scan(const uint8_t[::1] data):
    """``(status, count, stop, bad_codes)`` of the annotation stream, writing nothing.

    ``status`` is OK when the end word was reached (``stop`` is the offset
    after it) or TRUNCATED when the data ran out first (``count`` then
    includes the annotation being read, as the C library returns it).
    ``bad_codes`` counts annotations whose code is above 49.
    """
    cdef Walk w
    cdef int64_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n > 0 else NULL
    with nogil:
        w = _walk(p, n, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
    return w.status, w.count, w.stop, w.bad_codes


def decode(const uint8_t[::1] data, int64_t[::1] sample, uint8_t[::1] code,
           int8_t[::1] subtype, uint8_t[::1] chan, int8_t[::1] num,
           int64_t[::1] aux_start, int16_t[::1] aux_len):
    """Write every annotation's fields, in one pass; the outputs hold exactly the
    count :func:`scan` gave for these bytes. Returns the status. ``aux_start`` /
    ``aux_len`` locate the aux bytes in ``data`` (``-1``: none)."""
    cdef Walk w
    cdef int64_t n = data.shape[0]
    cdef int64_t m = sample.shape[0]
    cdef const uint8_t* p = &data[0] if n > 0 else NULL
    if (code.shape[0] != m or subtype.shape[0] != m or chan.shape[0] != m
            or num.shape[0] != m or aux_start.shape[0] != m or aux_len.shape[0] != m):
        raise ValueError("output arrays differ in length")
    if m == 0:
        with nogil:
            w = _walk(p, n, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
    else:
        with nogil:
            w = _walk(p, n, m, &sample[0], &code[0], &subtype[0], &chan[0], &num[0],
                      &aux_start[0], &aux_len[0])
    if w.count != m:
        raise ValueError(f"outputs hold {m} annotations, the data has {w.count}")
    return w.status
