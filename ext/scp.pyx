# cython: language_level=3
"""SCP-ECG kernels: the container scan and CRCs, Huffman lookup tables,
Huffman / raw decoding, differences, bimodal interpolation and
reference-beat addition.

The sample kernels validate their arguments and allocate with the GIL, then
run one ``with nogil:`` block over ``const uint8_t[::1]`` input and return a
status code (``_status.pxd``); the Python layer maps codes to exceptions.
:func:`decode_signals` does all of a record's sample work in one such block,
so that a record releases the GIL once. Every function returns plain values
(numbers, NumPy arrays); the Python layer (``ecgingest.formats.scp``) checks
the rules of the format on them and builds the record's objects.
Bounds checks are off in release builds: every read below is checked against
an explicit end first.
"""

from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memchr, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cimport cython
cimport numpy as cnp
import threading

import numpy as np

from _bytes cimport load_le16, load_le32, sign_extend
from _status cimport OK, TRUNCATED, BAD_VALUE, OVERFLOW, BAD_CODE, UNSUPPORTED

cnp.import_array()


cdef cnp.ndarray _zeros(shape, dtype):
    """``np.zeros(shape, dtype)`` without handing the GIL over: numpy releases it
    around ``calloc`` for any block of 1 KiB or more, and taking it back (behind
    another thread's turn) costs far more than zeroing a table of a few KiB."""
    cdef cnp.ndarray arr = np.empty(shape, dtype)
    memset(cnp.PyArray_DATA(arr), 0, <size_t>cnp.PyArray_NBYTES(arr))
    return arr


cdef inline cnp.ndarray _empty(Py_ssize_t rows, Py_ssize_t cols, int typenum):
    """An uninitialised C-contiguous array of ``rows`` values (``cols`` -1) or
    ``rows`` x ``cols`` values through the C API: the blocks a record's headers
    and samples are read into, made without a Python-level call to ``np.empty``
    and its argument parsing (a record makes about ten, with the GIL held)."""
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(1 if cols < 0 else 2, dims, typenum, 0)


cdef struct _Bytes:
    const uint8_t* p
    Py_ssize_t n


cdef int _open_bytes(object data, Py_buffer* view, _Bytes* out) except -1:
    """``data``'s bytes (any contiguous byte buffer) through the buffer protocol;
    the caller releases ``view`` with ``PyBuffer_Release``. For the per-record
    entry points: a ``const uint8_t[::1]`` argument builds and frees a Cython
    memoryview object on every call, with the GIL held."""
    PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    out.p = <const uint8_t*>view.buf if view.len > 0 else NULL
    out.n = view.len
    return 0


STATUS_OK = OK
STATUS_TRUNCATED = TRUNCATED
STATUS_BAD_VALUE = BAD_VALUE
STATUS_OVERFLOW = OVERFLOW
STATUS_BAD_CODE = BAD_CODE
STATUS_UNSUPPORTED = UNSUPPORTED

# code table columns (int32 rows of 5)

cdef enum:
    C_PREFIX = 0
    C_TOTAL = 1
    C_MODE = 2
    C_VALUE = 3
    C_CODE = 4
    NCOL = 5
    LUT_MAX_BITS = 12
    LUT_MAX_ENTRIES = 1 << 22
    LUT_NONE = -1
    LUT_LONG = -2
    FAST_ESCAPE = 4         # ``fast`` entry flag: an escape code, its value the bits after it
    FAST_ESCAPE_BITS = 32   # at most this many bits (prefix and value) in a ``fast`` escape


# ---------------------------------------------------------------- CRC

cdef uint16_t _crc_t[16][256]  # _crc_t[k][b]: byte b followed by k zero bytes


cdef inline uint16_t _crc_zero_byte(uint16_t crc) noexcept:
    return <uint16_t>((crc << 8) ^ _crc_t[0][crc >> 8])


cdef void _init_crc_tables() noexcept:
    cdef uint16_t crc
    cdef int i, b, k
    for i in range(256):
        crc = <uint16_t>(i << 8)
        for b in range(8):
            if crc & 0x8000:
                crc = <uint16_t>((crc << 1) ^ 0x1021)
            else:
                crc = <uint16_t>(crc << 1)
        _crc_t[0][i] = crc
    for k in range(1, 16):
        for i in range(256):
            _crc_t[k][i] = _crc_zero_byte(_crc_t[k - 1][i])


_init_crc_tables()


cdef uint16_t _crc_update(uint16_t crc, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """CRC-16/CCITT-FALSE register ``crc`` advanced over ``n`` bytes, sixteen
    bytes per step (slicing by 16; the CRC is linear: the register is folded
    into the first two bytes, each byte then contributes its table entry
    shifted through the bytes that follow it)."""
    cdef uint16_t x
    cdef Py_ssize_t i = 0
    while i + 16 <= n:
        x = crc ^ <uint16_t>((<uint16_t>p[i] << 8) | p[i + 1])
        crc = (_crc_t[15][x >> 8] ^ _crc_t[14][x & 0xFF] ^ _crc_t[13][p[i + 2]]
               ^ _crc_t[12][p[i + 3]] ^ _crc_t[11][p[i + 4]] ^ _crc_t[10][p[i + 5]]
               ^ _crc_t[9][p[i + 6]] ^ _crc_t[8][p[i + 7]] ^ _crc_t[7][p[i + 8]]
               ^ _crc_t[6][p[i + 9]] ^ _crc_t[5][p[i + 10]] ^ _crc_t[4][p[i + 11]]
               ^ _crc_t[3][p[i + 12]] ^ _crc_t[2][p[i + 13]] ^ _crc_t[1][p[i + 14]]
               ^ _crc_t[0][p[i + 15]])
        i += 16
    while i + 8 <= n:
        x = crc ^ <uint16_t>((<uint16_t>p[i] << 8) | p[i + 1])
        crc = (_crc_t[7][x >> 8] ^ _crc_t[6][x & 0xFF] ^ _crc_t[5][p[i + 2]]
               ^ _crc_t[4][p[i + 3]] ^ _crc_t[3][p[i + 4]] ^ _crc_t[2][p[i + 5]]
               ^ _crc_t[1][p[i + 6]] ^ _crc_t[0][p[i + 7]])
        i += 8
    while i < n:
        crc = <uint16_t>((crc << 8) ^ _crc_t[0][((crc >> 8) ^ p[i]) & 0xFF])
        i += 1
    return crc


cdef inline uint16_t _crc_kernel(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    return _crc_update(0xFFFF, p, n)


cdef uint16_t _gf_mulmod(uint16_t a, uint16_t b) noexcept nogil:
    """a(x) * b(x) mod the CRC polynomial x^16 + x^12 + x^5 + 1 (MSB first)."""
    cdef uint32_t r = 0
    cdef int i
    for i in range(15, -1, -1):
        r = ((r << 1) ^ (0x1021 if r & 0x8000 else 0)) & 0xFFFF
        if (b >> i) & 1:
            r ^= a
    return <uint16_t>r


cdef uint16_t _shift_zero_bytes(uint16_t crc, Py_ssize_t n) noexcept nogil:
    """The register ``crc`` advanced over ``n`` zero bytes: crc * x^(8n) mod P,
    by square and multiply (one zero byte multiplies by x^8)."""
    cdef uint16_t base = 0x0100, power = 1
    while n > 0:
        if n & 1:
            power = _gf_mulmod(power, base)
        base = _gf_mulmod(base, base)
        n >>= 1
    return _gf_mulmod(crc, power)


cdef struct _Span:
    int64_t start
    int64_t length
    uint16_t crc


cdef int _span_order(const void* a, const void* b) noexcept nogil:
    cdef const _Span* x = <const _Span*>a
    cdef const _Span* y = <const _Span*>b
    if x.start != y.start:
        return -1 if x.start < y.start else 1
    if x.length != y.length:
        return -1 if x.length < y.length else 1
    return 0


cdef bint _section_crcs_differ(const int64_t* r, Py_ssize_t count) noexcept nogil:
    """Whether a section CRC :func:`_crc_pass` computed differs from the stored
    one: what comparing column 8 with ``scan_headers``' ``stored`` list tells
    (-1 for an entry not used, whose column 8 stays -1), without the list."""
    cdef Py_ssize_t k
    cdef const int64_t* row
    for k in range(count):
        row = r + 9 * k
        if row[8] != (-1 if row[1] == 0 or row[2] == 0 else row[3]):
            return True
    return False


cdef enum:
    # below this many bytes the CRCs take less time than handing the GIL to another
    # thread and waiting to get it back, so they run without releasing it
    CRC_NOGIL_BYTES = 1 << 16


cdef void _header_pass(const uint8_t* p, Py_ssize_t count, Py_ssize_t record_end,
                       int64_t* r) noexcept nogil:
    """The pointer entries into ``r`` (rows of 9) with the section headers they
    lead to; column 8 (the CRC) is left -1 (see :func:`scan_headers`)."""
    cdef Py_ssize_t k, o
    cdef int64_t slen, index, start
    cdef int64_t* row
    for k in range(count):
        o = 22 + 10 * k
        row = r + 9 * k
        slen = load_le32(p + o + 2)
        index = load_le32(p + o + 6)
        row[0] = load_le16(p + o)
        row[1] = slen
        row[2] = index
        row[8] = -1
        start = index - 1
        if slen == 0 or index == 0 or slen < 16 or start + slen > record_end:
            continue
        row[3] = load_le16(p + start)
        row[4] = load_le16(p + start + 2)
        row[5] = load_le32(p + start + 4)
        row[6] = p[start + 8]
        row[7] = p[start + 9]


cdef uint16_t _crc_pass(const uint8_t* p, Py_ssize_t count, Py_ssize_t record_end,
                        int64_t* r, _Span* spans) noexcept nogil:
    """Every section CRC into column 8 of the rows :func:`_header_pass` filled,
    and the record CRC returned; ``spans`` has room for ``count``. Rows are
    re-checked against ``record_end`` (at most the buffer's length)."""
    cdef Py_ssize_t k, m = 0, o, pos
    cdef int64_t slen, start, hlen, length
    cdef int64_t* row
    cdef uint16_t s
    cdef bint combine = True
    for k in range(count):
        row = r + 9 * k
        slen = row[1]
        start = row[2] - 1
        if start < 0 or slen < 16 or slen > record_end or start > record_end - slen:
            continue
        hlen = row[5]
        length = slen if hlen == slen else max(16, min(hlen, slen))
        row[8] = _crc_kernel(p + start + 2, length - 2)
        if start < 2:
            combine = False  # over the record header: read the record again
        spans[m].start = start
        spans[m].length = length
        spans[m].crc = <uint16_t>row[8]
        m += 1
    if m > 1:
        qsort(spans, m, sizeof(_Span), _span_order)
    # drop repeated spans; overlapping ones make the record CRC read again
    o = 0
    for k in range(m):
        if o > 0 and spans[k].start == spans[o - 1].start \
                and spans[k].length == spans[o - 1].length:
            continue
        if o > 0 and spans[k].start < spans[o - 1].start + spans[o - 1].length:
            combine = False
        spans[o] = spans[k]
        o += 1
    if not combine:
        return _crc_kernel(p + 2, record_end - 2)
    s = 0xFFFF
    pos = 2
    for k in range(o):
        s = _crc_update(s, p + pos, spans[k].start + 2 - pos)  # gap and stored CRC
        s = spans[k].crc ^ _shift_zero_bytes(s ^ 0xFFFF, spans[k].length - 2)
        pos = spans[k].start + spans[k].length
    return _crc_update(s, p + pos, record_end - pos)


cdef _Span* _spans_for(Py_ssize_t count) except? NULL:
    cdef _Span* spans = <_Span*>malloc((count if count > 0 else 1) * sizeof(_Span))
    if spans == NULL:
        raise MemoryError()
    return spans


cdef int64_t* _crc_rows(int64_t[:, ::1] rows, Py_ssize_t record_end,
                        Py_ssize_t n) except? NULL:
    if rows.shape[1] != 9:
        raise ValueError("CRC rows must be the 9-column rows of scan_headers")
    if record_end < 2 or record_end > n:
        raise ValueError("record length outside the buffer")
    return &rows[0, 0] if rows.shape[0] else NULL


# problems the header scan finds, in the order a reader meets them; each is a tuple
# ``(code, numbers...)`` the Python layer words (formats/scp/container.py)
cdef enum:
    PROBLEM_SHORT = 1            # (n): too short for record header, section 0 header, one pointer
    PROBLEM_LENGTH_PAST_END = 2  # (record length, n)
    PROBLEM_LENGTH_SMALL = 3     # (record length)
    PROBLEM_TRAILING = 4         # (bytes after the record, record length)
    PROBLEM_RECORD_CRC = 5       # (stored, computed)
    PROBLEM_S0_ID = 6            # (id)
    PROBLEM_S0_LENGTH = 7        # (length, bytes after the record header)
    PROBLEM_S0_PARTIAL = 8       # (length)
    PROBLEM_DUPLICATE = 9        # (entry offset, id)
    PROBLEM_OUTSIDE = 10         # (entry offset, id, index, length, record length)
    PROBLEM_S0_INDEX = 11        # (entry offset, index)
    PROBLEM_ID_MISMATCH = 12     # (section start, id, header id)
    PROBLEM_LENGTH_DIFFERS = 13  # (section start, id, header length, pointer length, entry)
    PROBLEM_SECTION_CRC = 14     # (section start, id, stored, computed)
    PROBLEM_NO_SECTION0 = 15     # ()

PROBLEM_CODES = {
    "SHORT": PROBLEM_SHORT, "LENGTH_PAST_END": PROBLEM_LENGTH_PAST_END,
    "LENGTH_SMALL": PROBLEM_LENGTH_SMALL, "TRAILING": PROBLEM_TRAILING,
    "RECORD_CRC": PROBLEM_RECORD_CRC, "S0_ID": PROBLEM_S0_ID, "S0_LENGTH": PROBLEM_S0_LENGTH,
    "S0_PARTIAL": PROBLEM_S0_PARTIAL, "DUPLICATE": PROBLEM_DUPLICATE,
    "OUTSIDE": PROBLEM_OUTSIDE, "S0_INDEX": PROBLEM_S0_INDEX,
    "ID_MISMATCH": PROBLEM_ID_MISMATCH, "LENGTH_DIFFERS": PROBLEM_LENGTH_DIFFERS,
    "SECTION_CRC": PROBLEM_SECTION_CRC, "NO_SECTION0": PROBLEM_NO_SECTION0,
}
"""Problem name -> code of :func:`scan_headers`' problems."""


# ---------------------------------------------------------------- section 1
# The byte layout of section 1's tags; which field a tag is, its units, its
# text encoding and the warnings are the Python layer's (formats/scp/metadata.py).

cdef enum:
    S1_LAYOUT_TAGS = 36  # tags 0..35 have a layout here; tags 36..254 are kept as bytes
    S1_DRUG = 10         # tags that may repeat, collected in a list
    S1_INDICATION = 13


_NO_DATE = (0, 0, 0)


cdef inline object _bytes_at(const uint8_t* p, Py_ssize_t n):
    return PyBytes_FromStringAndSize(<const char*>p, n)


cdef object _text_at(const uint8_t* p, Py_ssize_t n, bint* raw):
    """A text field of ``n`` bytes up to its first NUL: a ``str`` when every byte
    is ASCII other than the escape and shift codes (it then reads the same in
    every encoding section 1 can declare, ISO-2022-JP included), else the bytes
    for the Python layer to decode in the declared encoding (``raw`` then set)."""
    cdef const uint8_t* nul = <const uint8_t*>memchr(p, 0, n) if n > 0 else NULL
    cdef Py_ssize_t i
    cdef uint8_t c
    if nul != NULL:
        n = nul - p
    for i in range(n):
        c = p[i]
        if c >= 0x80 or c == 0x1B or c == 0x0E or c == 0x0F:
            raw[0] = True
            return PyBytes_FromStringAndSize(<const char*>p, n)
    return PyUnicode_DecodeASCII(<const char*>p, n, NULL)


cdef object _device_block(const uint8_t* v, Py_ssize_t n, bint* raw):
    """Tag 14 / 15: ``(numbers, model, strings)``: the numbers of bytes 0-7
    (institution, department, device id, device type, manufacturer code; none
    under 8 bytes) and 14-18 (protocol revision, compatibility level, language
    support, capabilities, mains frequency; from 19 bytes), the model of bytes
    8-13 up to a NUL (None under 14 bytes), and up to 5 NUL-separated strings
    from byte 36 (as :func:`_text_at`)."""
    cdef Py_ssize_t i, start = 36
    cdef const uint8_t* nul
    numbers = ()
    if n >= 19:
        numbers = (load_le16(v), load_le16(v + 2), load_le16(v + 4), v[6], v[7], v[14], v[15],
                   v[16], v[17], v[18])
    elif n >= 8:
        numbers = (load_le16(v), load_le16(v + 2), load_le16(v + 4), v[6], v[7])
    model = None
    if n >= 14:
        nul = <const uint8_t*>memchr(v + 8, 0, 6)
        model = _bytes_at(v + 8, 6 if nul == NULL else nul - (v + 8))
    strings = []
    if n > 36:
        for i in range(36, n):
            if v[i] == 0:
                strings.append(_text_at(v + start, i - start, raw))
                start = i + 1
                if len(strings) == 5:
                    break
        if len(strings) < 5:
            strings.append(_text_at(v + start, n - start, raw))
    return numbers, model, tuple(strings)


cdef object _tag_value(uint8_t tag, const uint8_t* v, Py_ssize_t n, bint* raw):
    """The value of tag ``tag`` (below ``S1_LAYOUT_TAGS``) of ``n`` bytes at ``v``,
    or None when it is shorter than its layout."""
    cdef int stored
    cdef object value = None
    if tag == 4 or tag == 6 or tag == 7:  # age, height, weight: uint16 value, unit code
        if n >= 3:
            value = (load_le16(v), v[2])
    elif tag == 5 or tag == 25:  # date: uint16 year, month, day (all 0 when shorter)
        value = (load_le16(v), v[2], v[3]) if n >= 4 else _NO_DATE
    elif tag == 8 or tag == 9 or tag == 24 or tag == 29:  # one code byte
        if n >= 1:
            value = v[0]
    elif tag == S1_DRUG:  # table, class, code, text
        if n >= 3:
            value = (v[0], v[1], v[2], _text_at(v + 3, n - 3, raw))
    elif tag == 11 or tag == 12 or tag == 27 or tag == 28:  # one uint16
        if n >= 2:
            value = load_le16(v)
    elif tag == 14 or tag == 15:
        value = _device_block(v, n, raw)
    elif tag == 26:  # time: hour, minute, second
        if n >= 3:
            value = (v[0], v[1], v[2])
    elif tag == 33:  # electrode configuration: up to two code bytes
        value = (v[0], v[1]) if n >= 2 else (v[0],) if n == 1 else ()
    elif tag == 34:  # time zone: int16 minutes (0x7FFF: none), uint16 index, description
        if n >= 2:
            stored = load_le16(v)
            value = (None if stored == 0x7FFF else <int16_t>stored,
                     load_le16(v + 2) if n >= 4 else None,
                     _text_at(v + 4, n - 4, raw) if n > 4 else None)
    elif tag == 32:  # history codes: bytes
        value = _bytes_at(v, n)
    else:  # texts
        value = _text_at(v, n, raw)
    return value


cdef object _patient_tags(const uint8_t* p, Py_ssize_t o, Py_ssize_t end):
    """Section 1 from its body: the tag / length / value triplets up to tag 255
    or the section end, as ``(values, other, manufacturer, language, cut, ascii)``:

    - ``values``: list indexed by tag (0..35) of the value :func:`_tag_value`
      read, texts as :func:`_text_at` (None: absent; a later triplet of a tag
      replaces an earlier one, but tags 10 and 13 give a list of every value);
    - ``other`` / ``manufacturer``: ``{tag: bytes}`` of the tags without a layout
      here, or too short for it, below 200 / from 200 (None when there are none);
    - ``language``: byte 16 of the last tag 14 of 17 bytes or more (-1: none);
    - ``cut``: ``(offset, tag, length)`` of a triplet whose value runs past the
      section end (where the walk stopped), else None;
    - ``ascii``: every text came out as a ``str`` (none is left to decode).
    """
    cdef Py_ssize_t length
    cdef uint8_t tag
    cdef int language = -1
    cdef bint raw = False
    values = [None] * S1_LAYOUT_TAGS
    other = manufacturer = cut = None
    while o + 3 <= end:
        tag = p[o]
        if tag == 255:
            break
        length = load_le16(p + o + 1)
        if o + 3 + length > end:
            cut = (o, tag, length)
            break
        o += 3
        value = _tag_value(tag, p + o, length, &raw) if tag < S1_LAYOUT_TAGS else None
        if value is not None:
            if tag == S1_DRUG or tag == S1_INDICATION:
                if values[tag] is None:
                    values[tag] = [value]
                else:
                    values[tag].append(value)
            else:
                values[tag] = value
            if tag == 14 and length >= 17:
                language = p[o + 16]
        elif tag >= 200:
            if manufacturer is None:
                manufacturer = {}
            manufacturer[tag] = _bytes_at(p + o, length)
        else:
            if other is None:
                other = {}
            other[tag] = _bytes_at(p + o, length)
        o += length
    return values, other, manufacturer, language, cut, not raw


cdef object _lead_table(const uint8_t* p, Py_ssize_t body, Py_ssize_t end):
    """Section 3 from its body: ``(short, nleads, flags, ids, starts, ends, lengths,
    reversed)``; ``short`` is ``(part, offset, size)`` of a part (1: lead count, 2: lead
    table) the section does not hold, else None; ``reversed`` the first lead whose last
    sample comes before its first (-1: none)."""
    cdef Py_ssize_t i, nleads, o, bad = -1
    cdef uint32_t first, last
    if body + 2 > end:
        return ((1, body, 2), 0, 0, (), (), (), (), -1)
    nleads = p[body]
    o = body + 2
    if o + 9 * nleads > end:
        return ((2, o, 9 * nleads), nleads, p[body + 1], (), (), (), (), -1)
    ids, starts, ends, lengths = [], [], [], []
    for i in range(nleads):
        first = load_le32(p + o + 9 * i)
        last = load_le32(p + o + 9 * i + 4)
        if last < first and bad < 0:
            bad = i
        ids.append(p[o + 9 * i + 8])
        starts.append(first)
        ends.append(last)
        lengths.append(<int64_t>last - first + 1)
    return None, nleads, p[body + 1], tuple(ids), tuple(starts), tuple(ends), lengths, bad


cdef object _qrs_zones(const uint8_t* p, Py_ssize_t body, Py_ssize_t end):
    """Section 4 from its body: ``(short, beat length ms, fiducial, zones, protected,
    subtracted)``: ``zones`` one int64 block of six rows (types, starts, fiducials and
    ends of the subtraction zones, 14 bytes each, then the starts and ends of the
    protected zones after them, 8 bytes each), ``protected`` False when the section
    stops before the protected zones (their rows are then not filled), and uint8
    ``types == 0`` (the zones the reference beat was subtracted in); ``short`` as
    :func:`_lead_table` (1: the 6-byte head, 2: the subtraction zones). One block
    rather than a view per row: fewer objects built while the GIL is held."""
    cdef Py_ssize_t i, nqrs, o, m
    if body + 6 > end:
        return ((1, body, 6), None, None, None, False, None)
    nqrs = load_le16(p + body + 4)
    o = body + 6
    if o + 14 * nqrs > end:
        return ((2, o, 14 * nqrs), None, None, None, False, None)
    protected = o + 22 * nqrs <= end
    m = nqrs if protected else 0
    out = _empty(6, nqrs, cnp.NPY_INT64)
    add = _empty(nqrs, -1, cnp.NPY_UINT8)
    cdef int64_t* v = <int64_t*>cnp.PyArray_DATA(out)
    cdef uint8_t* a = <uint8_t*>cnp.PyArray_DATA(add)
    cdef const uint8_t* q = p + o
    for i in range(nqrs):
        v[i] = load_le16(q + 14 * i)
        v[nqrs + i] = load_le32(q + 14 * i + 2)
        v[2 * nqrs + i] = load_le32(q + 14 * i + 6)
        v[3 * nqrs + i] = load_le32(q + 14 * i + 10)
        a[i] = v[i] == 0
    q += 14 * nqrs
    for i in range(m):
        v[4 * nqrs + i] = load_le32(q + 8 * i)
        v[5 * nqrs + i] = load_le32(q + 8 * i + 4)
    return None, load_le16(p + body), load_le16(p + body + 2), out, protected, add


cdef object _data_header(const uint8_t* p, Py_ssize_t body, Py_ssize_t end,
                         Py_ssize_t nleads):
    """Section 5 or 6 from its body: ``(short, avm, interval µs, differences, bimodal,
    starts, lengths, longest, total, available)``: int64 arrays of each lead's first
    byte and byte count (leads follow each other from the end of the length table),
    cut to the section when their ``total`` is more than the ``available`` bytes, and
    the largest count (0 without leads); ``short`` as :func:`_lead_table` (1: the
    header and length table)."""
    cdef Py_ssize_t i, pos
    cdef int64_t total = 0, longest = 0, e
    if body + 6 + 2 * nleads > end:
        return ((1, body, 6 + 2 * nleads),) + (None,) * 9
    starts = _empty(nleads, -1, cnp.NPY_INT64)
    lengths = _empty(nleads, -1, cnp.NPY_INT64)
    cdef int64_t* s = <int64_t*>cnp.PyArray_DATA(starts)
    cdef int64_t* n = <int64_t*>cnp.PyArray_DATA(lengths)
    pos = body + 6 + 2 * nleads
    for i in range(nleads):
        n[i] = load_le16(p + body + 6 + 2 * i)
        s[i] = pos + total
        total += n[i]
        if n[i] > longest:
            longest = n[i]
    if total > end - pos:
        longest = 0
        for i in range(nleads):
            e = min(s[i] + n[i], <int64_t>end)
            s[i] = min(s[i], <int64_t>end)
            n[i] = e - s[i]
            if n[i] > longest:
                longest = n[i]
    return (None, load_le16(p + body), load_le16(p + body + 2), p[body + 4], p[body + 5],
            starts, lengths, longest, total, end - pos)


cdef object _stopped(list problems, object rows, int64_t rec_len, int64_t stored_crc,
                     int record_crc):
    """:func:`scan_headers`' result after a fatal problem in section 0."""
    return problems, None, rows, None, rec_len, stored_crc, record_crc, None, None, None, \
        None, None, None


def scan_headers(data, bint crcs=True):
    """The record header, section 0's pointer table, the section headers it points to,
    every CRC, section 1's tags and the fixed-layout headers of sections 2 (table
    count), 3 (lead table), 4 (QRS zones), 5 and 6 (data headers), in one pass: the rules of a
    conformant container are checked here, once, and returned as problems.

    Returns ``(problems, sections, rows, stored, record_length, stored_crc, record_crc,
    s1, ntables, s3, s4, s5, s6)``:

    - ``problems``: ``(code, numbers...)`` in the order a reader meets them (codes in
      :data:`PROBLEM_CODES`); a fatal one (all but TRAILING, RECORD_CRC, S0_PARTIAL,
      LENGTH_DIFFERS, SECTION_CRC and NO_SECTION0) ends the scan: ``sections``,
      ``stored`` and the section headers are then None (and the rest too when it
      comes before the pointer table is read).
    - ``sections``: ``(id, start, length, version, protocol)`` of each section in
      table order (``length`` the smaller of the pointer's and the header's, at least
      16, when they differ).
    - ``rows``: row ``k`` is pointer entry ``k``: ``(id, length, index, stored CRC,
      header id, header length, section version, protocol version, CRC)``; the
      header columns and the CRC are filled for entries whose section lies in the
      record (length at least 16), else 0 and -1. A section's CRC covers bytes
      ``start + 2`` to ``start + length``. The record CRC (bytes 2 to the record
      length) is combined from the section CRCs when their spans are sorted without
      overlap, else read again. ``crcs=False`` leaves the CRCs to
      :func:`decode_signals` (or :func:`container_crcs`), so that they run in the
      one ``nogil`` block of the record's samples: ``record_crc`` is then -1 and
      neither CRC problem is given. The GIL is released only for records of
      ``CRC_NOGIL_BYTES`` or more: every extra release costs a hand-over.
    - ``stored``: the stored CRC per row of a section used, -1 for an entry skipped
      (length or index 0), to compare with the CRC column once it is filled.
    - ``s1``: section 1's tags as :func:`_patient_tags` reads them, None without
      the section.
    - ``ntables``: section 2's table count, -1 when the section is shorter than the
      count, None without section 2.
    - ``s3``, ``s4``, ``s5``, ``s6``: the tuples of :func:`_lead_table`,
      :func:`_qrs_zones` and :func:`_data_header` (None without the section;
      sections 5 and 6 are read with section 3's lead count, so they are None too
      when section 3 is missing or short).
    """
    cdef Py_buffer view
    cdef _Bytes b
    _open_bytes(data, &view, &b)
    try:
        return _scan_headers(b.p, b.n, crcs)
    finally:
        PyBuffer_Release(&view)


cdef object _scan_headers(const uint8_t* p, Py_ssize_t n, bint crcs):
    """:func:`scan_headers` over the ``n`` bytes at ``p``."""
    cdef Py_ssize_t count = 0, k, o
    cdef int64_t stored_crc, rec_len, s0_len, slen, index, start, length, hid, hlen
    cdef int64_t sid
    cdef int64_t* rp = NULL
    cdef int64_t* row
    cdef int64_t body[7]
    cdef int64_t end_of[7]
    cdef uint8_t seen[8192]
    cdef int s = -1
    cdef _Span* spans
    problems = []
    if n < 6 + 16 + 10:
        problems.append((PROBLEM_SHORT, n))
        return (problems,) + (None,) * 12
    stored_crc = load_le16(p)
    rec_len = load_le32(p + 2)
    if rec_len > n:
        problems.append((PROBLEM_LENGTH_PAST_END, rec_len, n))
        return (problems,) + (None,) * 12
    if rec_len < 6 + 16:
        problems.append((PROBLEM_LENGTH_SMALL, rec_len))
        return (problems,) + (None,) * 12
    if rec_len < n:
        problems.append((PROBLEM_TRAILING, n - rec_len, rec_len))
    sid = load_le16(p + 8)
    s0_len = load_le32(p + 10)
    if sid == 0 and 16 <= s0_len and 6 + s0_len <= rec_len:
        count = (s0_len - 16) // 10
    rows = _empty(count, 9, cnp.NPY_INT64)
    if count:
        rp = <int64_t*>cnp.PyArray_DATA(rows)
        memset(rp, 0, count * 9 * sizeof(int64_t))
    _header_pass(p, count, rec_len, rp)
    if crcs:
        spans = _spans_for(count)
        try:
            if rec_len >= CRC_NOGIL_BYTES:
                with nogil:
                    s = _crc_pass(p, count, rec_len, rp, spans)
            else:
                s = _crc_pass(p, count, rec_len, rp, spans)
        finally:
            free(spans)
        if s != stored_crc:
            problems.append((PROBLEM_RECORD_CRC, stored_crc, s))
    if sid != 0:
        problems.append((PROBLEM_S0_ID, sid))
        return _stopped(problems, rows, rec_len, stored_crc, s)
    if s0_len < 16 or 6 + s0_len > rec_len:
        problems.append((PROBLEM_S0_LENGTH, s0_len, rec_len - 6))
        return _stopped(problems, rows, rec_len, stored_crc, s)
    if (s0_len - 16) % 10:
        problems.append((PROBLEM_S0_PARTIAL, s0_len))
    memset(seen, 0, sizeof(seen))
    for k in range(7):
        body[k] = -1
    sections, stored = [], []
    for k in range(count):
        row = rp + 9 * k
        sid, slen, index = row[0], row[1], row[2]
        if slen == 0 or index == 0:
            stored.append(-1)
            continue
        start = index - 1
        length = slen
        hid, hlen = row[4], row[5]
        if (hid != sid or hlen != slen or slen < 16 or start + slen > rec_len
                or seen[sid >> 3] & (1 << (sid & 7)) or (start != 6 and sid == 0)):
            o = 22 + 10 * k
            if seen[sid >> 3] & (1 << (sid & 7)):
                problems.append((PROBLEM_DUPLICATE, o, sid))
                return _stopped(problems, rows, rec_len, stored_crc, s)
            if start + slen > rec_len or slen < 16:
                problems.append((PROBLEM_OUTSIDE, o, sid, index, slen, rec_len))
                return _stopped(problems, rows, rec_len, stored_crc, s)
            if sid == 0 and start != 6:
                problems.append((PROBLEM_S0_INDEX, o, index))
                return _stopped(problems, rows, rec_len, stored_crc, s)
            if hid != sid:
                problems.append((PROBLEM_ID_MISMATCH, start, sid, hid))
                return _stopped(problems, rows, rec_len, stored_crc, s)
            problems.append((PROBLEM_LENGTH_DIFFERS, start, sid, hlen, slen, k))
            length = max(16, min(hlen, slen))
        if crcs and row[8] != row[3]:
            problems.append((PROBLEM_SECTION_CRC, start, sid, row[3], row[8]))
        seen[sid >> 3] |= 1 << (sid & 7)
        sections.append((sid, start, length, row[6], row[7]))
        stored.append(row[3])
        if 1 <= sid <= 6:
            body[sid] = start + 16
            end_of[sid] = start + length
    if not seen[0] & 1:
        problems.append((PROBLEM_NO_SECTION0,))
    s1 = ntables = s3 = s4 = s5 = s6 = None
    if body[1] >= 0:
        s1 = _patient_tags(p, body[1], end_of[1])
    if body[2] >= 0:
        ntables = load_le16(p + body[2]) if body[2] + 2 <= end_of[2] else -1
    if body[3] >= 0:
        s3 = _lead_table(p, body[3], end_of[3])
    if body[4] >= 0:
        s4 = _qrs_zones(p, body[4], end_of[4])
    if s3 is not None and s3[0] is None:
        if body[5] >= 0:
            s5 = _data_header(p, body[5], end_of[5], s3[1])
        if body[6] >= 0:
            s6 = _data_header(p, body[6], end_of[6], s3[1])
    return (problems, sections, rows, stored, rec_len, stored_crc, s, s1, ntables, s3, s4,
            s5, s6)


def container_crcs(const uint8_t[::1] data, int64_t[:, ::1] rows, Py_ssize_t record_end):
    """The CRCs ``scan_headers(..., crcs=False)`` left out: column 8 of
    ``rows`` filled, the record CRC returned."""
    cdef Py_ssize_t n = data.shape[0]
    cdef int64_t* rp = _crc_rows(rows, record_end, n)
    cdef _Span* spans = _spans_for(rows.shape[0])
    cdef uint16_t s
    try:
        with nogil:
            s = _crc_pass(&data[0], rows.shape[0], record_end, rp, spans)
    finally:
        free(spans)
    return s


def crc16(const uint8_t[::1] data, Py_ssize_t start=0, Py_ssize_t stop=-1) -> int:
    """CRC-16/CCITT-FALSE of ``data[start:stop]`` (``stop=-1``: to the end)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef uint16_t crc
    if stop < 0:
        stop = n
    if start < 0 or start > stop or stop > n:
        raise ValueError("CRC range outside the buffer")
    if stop == start:
        return 0xFFFF
    with nogil:
        crc = _crc_kernel(&data[start], stop - start)
    return crc


# ---------------------------------------------------------------- Huffman tables

def build_luts(const int32_t[:, ::1] codes, const int32_t[::1] table_offsets):
    """Lookup tables (one per Huffman table) indexed by the next ``bits`` bits.

    Returns ``(status, lut, lut_offsets, lut_bits, fast, long_offsets,
    long_keys, long_rows)``; status BAD_VALUE when a code is malformed,
    BAD_CODE when a table is not prefix-free, OVERFLOW when the lookup tables
    would exceed ``LUT_MAX_ENTRIES``.
    ``lut`` holds code row numbers (``LUT_NONE`` / ``LUT_LONG`` for no code /
    a code longer than the lookup width). ``fast`` packs up to three plain
    value codes found in the same window: ``count | len1 << 3 | total_len << 8
    | value1 << 16 | value2 << 32 | value3 << 48`` (unused values 0; count 0:
    take the slow path), so the hot loop needs one load per two or three
    samples. An escape code of at most ``FAST_ESCAPE_BITS`` bits (prefix and
    value) has count 1, flag ``FAST_ESCAPE`` and ``prefix << 3 | total << 8 |
    (64 - extra) << 16``: its value is the ``extra`` bits after the prefix,
    sign extended, which the hot loop takes without a branch.
    A table's lookup width grows with
    its number of codes (at most ``LUT_MAX_BITS``), which bounds the memory
    a crafted section 2 can ask for.
    """
    cdef Py_ssize_t ntables = table_offsets.shape[0] - 1
    cdef Py_ssize_t t, c, j, total = 0, first, span
    cdef int bits, p, maxp, width
    cdef Py_ssize_t ncodes
    if ntables < 0 or codes.shape[1] != NCOL:
        raise ValueError("malformed code table arrays")
    if ntables > 0 and table_offsets[ntables] > codes.shape[0]:
        raise ValueError("table offsets outside the code array")
    lut_bits = _zeros(max(ntables, 0), np.int32)
    lut_offsets = _zeros(max(ntables, 0) + 1, np.int64)
    cdef int32_t[::1] lb = lut_bits
    for t in range(ntables):
        if table_offsets[t] > table_offsets[t + 1] or table_offsets[t] < 0:
            raise ValueError("table offsets not increasing")
        maxp = 1
        for c in range(table_offsets[t], table_offsets[t + 1]):
            p = codes[c, C_PREFIX]
            if p < 1 or p > 32 or codes[c, C_TOTAL] < p or codes[c, C_TOTAL] - p > 32:
                return BAD_VALUE, None, None, None, None, None, None, None
            if p > maxp:
                maxp = p
        ncodes = table_offsets[t + 1] - table_offsets[t]
        width = 1
        while (ncodes >> width) and width < LUT_MAX_BITS:
            width += 1
        lb[t] = min(LUT_MAX_BITS, width + 6)
        lut_offsets[t] = total
        total += (<Py_ssize_t>1) << lb[t]
    lut_offsets[ntables] = total
    if total > LUT_MAX_ENTRIES:
        return OVERFLOW, None, None, None, None, None, None, None
    lut = np.empty(total, dtype=np.int32)  # not np.full: it hands the GIL over to fill
    cdef int32_t[::1] lv = lut
    for j in range(total):
        lv[j] = LUT_NONE
    cdef int64_t[::1] lo = lut_offsets
    cdef uint32_t code
    for t in range(ntables):
        bits = lb[t]
        for c in range(table_offsets[t], table_offsets[t + 1]):
            p = codes[c, C_PREFIX]
            code = <uint32_t>codes[c, C_CODE]
            if p < 32 and (code >> p) != 0:
                return BAD_VALUE, None, None, None, None, None, None, None
            if p <= bits:
                first = <Py_ssize_t>(code << (bits - p))
                span = (<Py_ssize_t>1) << (bits - p)
                for j in range(first, first + span):
                    if lv[lo[t] + j] != LUT_NONE:
                        return BAD_CODE, None, None, None, None, None, None, None
                    lv[lo[t] + j] = <int32_t>c
            else:
                first = <Py_ssize_t>(code >> (p - bits))
                if lv[lo[t] + first] >= 0:
                    return BAD_CODE, None, None, None, None, None, None, None
                lv[lo[t] + first] = LUT_LONG
    fast = _zeros(total, np.int64)
    cdef int64_t[::1] fv = fast
    cdef int32_t row, nxt
    cdef Py_ssize_t rest, mask
    cdef int used, count, plen
    cdef uint64_t packed
    for t in range(ntables):
        bits = lb[t]
        mask = ((<Py_ssize_t>1) << bits) - 1
        for j in range((<Py_ssize_t>1) << bits):
            row = lv[lo[t] + j]
            if not _plain(codes, row):
                if (row >= 0 and codes[row, C_MODE] == 1
                        and codes[row, C_TOTAL] > codes[row, C_PREFIX]
                        and codes[row, C_TOTAL] <= FAST_ESCAPE_BITS):
                    # the value is the extra bits after the prefix (prefix <= bits here),
                    # sign extended by an arithmetic shift of 64 - extra
                    fv[lo[t] + j] = <int64_t>(1 | FAST_ESCAPE
                                              | (<uint64_t>codes[row, C_PREFIX] << 3)
                                              | (<uint64_t>codes[row, C_TOTAL] << 8)
                                              | (<uint64_t>(64 - codes[row, C_TOTAL]
                                                            + codes[row, C_PREFIX]) << 16))
                continue
            # up to three plain codes that lie whole in the window
            plen = codes[row, C_PREFIX]
            used = plen
            count = 1
            packed = <uint64_t><uint16_t><int16_t>codes[row, C_VALUE] << 16
            while count < 3 and used < bits:
                rest = (j << used) & mask
                nxt = lv[lo[t] + rest]
                if not _plain(codes, nxt) or used + codes[nxt, C_PREFIX] > bits:
                    break
                packed |= (<uint64_t><uint16_t><int16_t>codes[nxt, C_VALUE]
                           << (16 + 16 * count))
                used += codes[nxt, C_PREFIX]
                count += 1
            fv[lo[t] + j] = <int64_t>(packed | <uint64_t>count | (<uint64_t>plen << 3)
                                      | (<uint64_t>used << 8))
    # codes longer than the lookup width: per table, sorted by their left-aligned
    # 32-bit pattern, so one binary search finds the only interval a window can be in
    long_t, long_key, long_row = [], [], []
    for t in range(ntables):
        for c in range(table_offsets[t], table_offsets[t + 1]):
            p = codes[c, C_PREFIX]
            if p > lb[t]:
                long_t.append(t)
                long_key.append((<uint64_t><uint32_t>codes[c, C_CODE]) << (32 - p))
                long_row.append(c)
    order = np.lexsort((np.array(long_key, dtype=np.uint64), np.array(long_t, dtype=np.int64)))
    long_keys = np.array(long_key, dtype=np.uint32)[order] if long_key else \
        np.zeros(0, np.uint32)
    long_rows = np.array(long_row, dtype=np.int32)[order] if long_row else np.zeros(0, np.int32)
    long_offsets = np.searchsorted(np.array(long_t, dtype=np.int64)[order],
                                   np.arange(ntables + 1)).astype(np.int64)
    cdef uint32_t[::1] kv = long_keys
    cdef int32_t[::1] rv = long_rows
    cdef uint64_t end_prev
    for j in range(1, long_keys.shape[0]):
        if long_t[order[j]] != long_t[order[j - 1]]:
            continue
        end_prev = <uint64_t>kv[j - 1] + ((<uint64_t>1) << (32 - codes[rv[j - 1], C_PREFIX]))
        if end_prev > kv[j]:
            return BAD_CODE, None, None, None, None, None, None, None
    return OK, lut, lut_offsets, lut_bits, fast, long_offsets, long_keys, long_rows


cdef inline bint _plain(const int32_t[:, ::1] codes, int32_t row) noexcept:
    """A code that stands for one value on its own (no escape bits, no switch)."""
    return (row >= 0 and codes[row, C_MODE] == 1 and codes[row, C_TOTAL] == codes[row, C_PREFIX]
            and -32768 <= codes[row, C_VALUE] <= 32767)


cdef inline uint64_t _peek64(const uint8_t* p, Py_ssize_t nbytes, Py_ssize_t bitpos) noexcept nogil:
    """64 bits from ``bitpos`` (MSB first), zero past the end; the top 57 are valid."""
    cdef Py_ssize_t byte = bitpos >> 3
    cdef const uint8_t* q = p + byte
    cdef uint64_t acc = 0
    cdef int i
    if byte + 8 <= nbytes:
        # one unaligned big-endian load (compilers turn this into a load + bswap)
        acc = ((<uint64_t>q[0] << 56) | (<uint64_t>q[1] << 48) | (<uint64_t>q[2] << 40)
               | (<uint64_t>q[3] << 32) | (<uint64_t>q[4] << 24) | (<uint64_t>q[5] << 16)
               | (<uint64_t>q[6] << 8) | <uint64_t>q[7])
    else:
        for i in range(8):
            acc <<= 8
            if byte + i < nbytes:
                acc |= q[i]
    return acc << (bitpos & 7)


cdef struct _Tables:
    # a set of Huffman tables as built by ``build_luts``
    const int32_t* codes
    const int32_t* table_offsets
    Py_ssize_t ntables
    const int32_t* lut
    const int64_t* lut_offsets
    const int32_t* lut_bits
    const int64_t* fast
    const int64_t* long_offsets
    const uint32_t* long_keys
    const int32_t* long_rows


cdef struct _Lane:
    # the decoding state of one lead, so that decoding can stop and resume
    const uint8_t* p
    Py_ssize_t nbytes
    Py_ssize_t endbits
    Py_ssize_t pos          # bits consumed
    Py_ssize_t k            # values written
    int32_t* out
    uint64_t w              # window: the bits from ``pos`` on, MSB first
    int avail               # valid bits in ``w`` (0: reload before use)
    Py_ssize_t table
    int bits
    const int64_t* flut
    const int32_t* rlut
    int switches
    bint ended              # stopped at the end of the lead's bits
    int order               # differences undone as the values are written (0, 1, 2)
    uint32_t x              # the last value written (orders 1, 2)
    uint32_t y              # the last first difference (order 2)


cdef inline void _lane_init(_Lane* s, const uint8_t* p, Py_ssize_t nbytes, int32_t* out,
                            const _Tables* t, int order) noexcept nogil:
    s.p = p
    s.nbytes = nbytes
    s.endbits = nbytes * 8
    s.pos = 0
    s.k = 0
    s.out = out
    s.w = 0
    s.avail = 0
    s.table = 0
    s.bits = t.lut_bits[0]
    s.flut = t.fast + t.lut_offsets[0]
    s.rlut = t.lut + t.lut_offsets[0]
    s.switches = 0
    s.ended = 0
    s.order = order
    s.x = 0
    s.y = 0


cdef inline int32_t _integrate(int order, uint32_t* x, uint32_t* y, uint32_t d) noexcept nogil:
    """The value whose difference of ``order`` is ``d``, in wrapping 32-bit
    arithmetic: order 2 is two running sums (``y`` the first differences).
    The first value of order 2 is stored as is; :func:`_decode_block` sets
    ``y`` after it."""
    if order == 1:
        x[0] += d
    elif order == 2:
        y[0] += d
        x[0] += y[0]
    else:
        x[0] = d
    return <int32_t>x[0]


cdef inline uint32_t _first_value(uint64_t e, uint64_t w) noexcept nogil:
    """The first value of a ``fast`` entry looked up with window ``w``: packed,
    or for an escape the bits after its prefix, sign extended (a select, not
    a branch)."""
    cdef uint32_t packed = <uint32_t><int32_t><int16_t>(e >> 16)
    cdef uint32_t escaped = <uint32_t><int64_t>(
        (<int64_t>(w << ((e >> 3) & 31))) >> ((e >> 16) & 63))
    return escaped if e & FAST_ESCAPE else packed


cdef inline void _emit3(int32_t* o, uint64_t e, uint32_t d1, int order, uint32_t* xp,
                        uint32_t* yp) noexcept nogil:
    """The one to three values of a ``fast`` entry (``e & 3`` of them; ``d1``
    the first) into ``o[0..2]`` with the differences undone; slots past the
    count get values the next entry overwrites. Unused values are 0, so that
    order 1 needs no count: only order 2 keeps ``x`` from moving past it."""
    cdef uint32_t d2 = <uint32_t><int32_t><int16_t>(e >> 32)
    cdef uint32_t d3 = <uint32_t><int32_t><int16_t>(e >> 48)
    cdef uint32_t x = xp[0], y
    cdef uint64_t c = e & 3
    if order == 1:
        x += d1
        o[0] = <int32_t>x
        x += d2
        o[1] = <int32_t>x
        x += d3
        o[2] = <int32_t>x
        xp[0] = x
    elif order == 2:
        # masks rather than conditions: a branch on the count would mispredict
        y = yp[0] + d1
        x += y
        o[0] = <int32_t>x
        y += d2
        x += y & (0u - <uint32_t>(c >> 1))         # count >= 2
        o[1] = <int32_t>x
        y += d3
        x += y & (0u - <uint32_t>(c & (c >> 1)))   # count == 3
        o[2] = <int32_t>x
        xp[0] = x
        yp[0] = y
    else:
        o[0] = <int32_t>d1
        o[1] = <int32_t>d2
        o[2] = <int32_t>d3


cdef int _huffman_run(_Lane* s, const _Tables* t, Py_ssize_t n) noexcept nogil:
    """Decode values until ``s.k`` reaches ``n`` or the lead's bits end
    (``s.ended``); ``n`` never exceeds the lead's row, and nothing is
    written past ``n``.

    The hot path keeps a 64-bit window in a register and takes plain value
    codes from the packed ``fast`` table; escapes, switches and codes longer
    than the lookup width go through the code rows.
    """
    cdef const uint8_t* p = s.p
    cdef Py_ssize_t nbytes = s.nbytes
    cdef Py_ssize_t endbits = s.endbits
    cdef Py_ssize_t pos = s.pos, k = s.k, idx
    cdef int32_t* out = s.out
    cdef uint64_t w = s.w
    cdef int avail = s.avail, length, count, i
    cdef int bits = s.bits, p_bits, extra, total, order = s.order
    cdef uint32_t x = s.x, y = s.y
    cdef int32_t entry
    cdef int64_t e
    cdef const int32_t* row
    cdef const int64_t* flut = s.flut
    cdef const int32_t* rlut = s.rlut
    cdef int switches = s.switches
    cdef int status = OK
    while k < n:
        if avail < 32:
            w = _peek64(p, nbytes, pos)
            avail = 57
        e = flut[<Py_ssize_t>(w >> (64 - bits))]
        if e & 3:
            # one to three values (or one escape); near the end of the row or of
            # the lead's bits only the first is taken
            length = (e >> 8) & 0xFF
            count = e & 3
            if k + count > n or pos + length > endbits:
                count = 1
                if not e & FAST_ESCAPE:
                    length = (e >> 3) & 0x1F
                if pos + length > endbits:
                    s.ended = 1
                    break  # a code cut by the end of the lead's bytes: padding
            out[k] = _integrate(order, &x, &y, _first_value(<uint64_t>e, w))
            for i in range(1, count):
                out[k + i] = _integrate(order, &x, &y,
                                        <uint32_t><int32_t><int16_t>(e >> (16 + 16 * i)))
            k += count
            w <<= length
            avail -= length
            pos += length
            switches = 0
            continue
        if pos >= endbits:
            s.ended = 1
            break
        # slow path: escapes, table switches, long codes, invalid bits
        w = _peek64(p, nbytes, pos)
        avail = 57
        entry = rlut[<Py_ssize_t>(w >> (64 - bits))]
        if entry == LUT_LONG:
            entry = _find_long(<uint32_t>(w >> 32), t.long_offsets[s.table],
                               t.long_offsets[s.table + 1], t.long_keys, t.long_rows, t.codes)
        if entry < 0:
            status = BAD_CODE
            break
        row = t.codes + entry * NCOL
        p_bits = row[C_PREFIX]
        total = row[C_TOTAL]
        if pos + total > endbits:
            s.ended = 1
            break
        if row[C_MODE] == 0:
            idx = row[C_VALUE]
            if idx < 1 or idx > t.ntables:
                status = BAD_VALUE
                break
            s.table = idx - 1
            bits = t.lut_bits[s.table]
            flut = t.fast + t.lut_offsets[s.table]
            rlut = t.lut + t.lut_offsets[s.table]
            pos += p_bits
            avail = 0  # reload the window at the new position
            switches += 1
            if switches > 64:  # a chain of switches that decodes nothing
                status = BAD_CODE
                break
            continue
        switches = 0
        extra = total - p_bits
        if extra == 0:
            out[k] = _integrate(order, &x, &y, <uint32_t>row[C_VALUE])
        elif p_bits + extra > 57:
            w = _peek64(p, nbytes, pos + p_bits)
            out[k] = _integrate(order, &x, &y,
                                <uint32_t>sign_extend(<uint32_t>(w >> (64 - extra)), extra))
        else:
            out[k] = _integrate(order, &x, &y, <uint32_t>sign_extend(
                <uint32_t>((w << p_bits) >> (64 - extra)), extra))
        pos += total
        avail = 0
        k += 1
    s.pos = pos
    s.k = k
    s.w = w
    s.avail = avail
    s.bits = bits
    s.flut = flut
    s.rlut = rlut
    s.switches = switches
    s.x = x
    s.y = y
    return status


cdef inline uint64_t _load_be64(const uint8_t* q) noexcept nogil:
    return ((<uint64_t>q[0] << 56) | (<uint64_t>q[1] << 48) | (<uint64_t>q[2] << 40)
            | (<uint64_t>q[3] << 32) | (<uint64_t>q[4] << 24) | (<uint64_t>q[5] << 16)
            | (<uint64_t>q[6] << 8) | <uint64_t>q[7])


cdef int _huffman_pair(_Lane* a, _Lane* b, const _Tables* t, Py_ssize_t n) noexcept nogil:
    """Two leads decoded in one loop: each lead's table lookups form one chain
    of dependent loads, so interleaving two chains lets the CPU overlap them.
    The differences are undone as the values are written (a running sum per
    lead, off the chain of lookups).

    Runs while both leads are far from their last value and their last byte
    (so every 64-bit load and every fast entry is inside the data, and the
    three slots an entry writes are inside the row); a code the fast table
    does not hold is decoded by :func:`_huffman_run` for that lead alone. The
    caller finishes each lead with :func:`_huffman_run`.
    """
    cdef Py_ssize_t pa = a.pos, pb = b.pos, ka = a.k, kb = b.k
    cdef Py_ssize_t ea_end = a.endbits - 64, eb_end = b.endbits - 64, kmax = n - 3
    cdef uint64_t wa = a.w, wb = b.w
    cdef int va = a.avail, vb = b.avail, la, lb, st, order = a.order
    cdef int ba = a.bits, bb = b.bits
    cdef uint32_t sxa = a.x, sya = a.y, sxb = b.x, syb = b.y
    cdef const int64_t* fa = a.flut
    cdef const int64_t* fb = b.flut
    cdef int32_t* oa = a.out
    cdef int32_t* ob = b.out
    cdef int64_t ea, eb
    while (ka <= kmax) & (kb <= kmax) & (pa <= ea_end) & (pb <= eb_end):
        if va < 32:
            wa = _load_be64(a.p + (pa >> 3)) << (pa & 7)
            va = 57
        if vb < 32:
            wb = _load_be64(b.p + (pb >> 3)) << (pb & 7)
            vb = 57
        ea = fa[<Py_ssize_t>(wa >> (64 - ba))]
        eb = fb[<Py_ssize_t>(wb >> (64 - bb))]
        if ((ea & 3) == 0) | ((eb & 3) == 0):
            # one value through the general path for the lead(s) that need it
            a.pos, a.k, a.w, a.avail, a.x, a.y = pa, ka, wa, va, sxa, sya
            b.pos, b.k, b.w, b.avail, b.x, b.y = pb, kb, wb, vb, sxb, syb
            if (ea & 3) == 0:
                st = _huffman_run(a, t, ka + 1)
                if st != OK:
                    return st
            if (eb & 3) == 0:
                st = _huffman_run(b, t, kb + 1)
                if st != OK:
                    return st
            if a.ended or b.ended:
                return OK
            pa, ka, wa, va, ba, fa, sxa, sya = a.pos, a.k, a.w, a.avail, a.bits, a.flut, a.x, a.y
            pb, kb, wb, vb, bb, fb, sxb, syb = b.pos, b.k, b.w, b.avail, b.bits, b.flut, b.x, b.y
            continue
        # plain values and escapes alike (an escape's <= 32 bits are in the window)
        _emit3(oa + ka, <uint64_t>ea, _first_value(<uint64_t>ea, wa), order, &sxa, &sya)
        la = (ea >> 8) & 0xFF
        ka += ea & 3
        wa <<= la
        va -= la
        pa += la
        _emit3(ob + kb, <uint64_t>eb, _first_value(<uint64_t>eb, wb), order, &sxb, &syb)
        lb = (eb >> 8) & 0xFF
        kb += eb & 3
        wb <<= lb
        vb -= lb
        pb += lb
    a.pos, a.k, a.w, a.avail, a.x, a.y = pa, ka, wa, va, sxa, sya
    b.pos, b.k, b.w, b.avail, b.x, b.y = pb, kb, wb, vb, sxb, syb
    return OK


cdef inline int32_t _find_long(uint32_t window, Py_ssize_t lo, Py_ssize_t hi,
                               const uint32_t* keys, const int32_t* rows,
                               const int32_t* codes) noexcept nogil:
    """Row of the long code whose interval holds ``window``, or LUT_NONE."""
    cdef Py_ssize_t mid
    cdef int p
    cdef const int32_t* row
    if lo >= hi or window < keys[lo]:
        return LUT_NONE
    while hi - lo > 1:  # invariant: keys[lo] <= window < keys[hi] (or hi == end)
        mid = (lo + hi) >> 1
        if keys[mid] <= window:
            lo = mid
        else:
            hi = mid
    row = codes + rows[lo] * NCOL
    p = row[C_PREFIX]
    if <uint32_t>((<uint64_t>window) >> (32 - p)) == <uint32_t>row[C_CODE]:
        return rows[lo]
    return LUT_NONE


cdef void _bounds(const int32_t* x, Py_ssize_t n, int32_t* lo, int32_t* hi) noexcept nogil:
    """Widen ``lo``/``hi`` to the values of ``x`` (a plain min/max reduction,
    which the compiler vectorises)."""
    cdef Py_ssize_t i
    cdef int32_t mn = lo[0], mx = hi[0], v
    for i in range(n):
        v = x[i]
        mn = v if v < mn else mn
        mx = v if v > mx else mx
    lo[0] = mn
    hi[0] = mx


cdef void _undo_differences(int32_t* x, Py_ssize_t n, int order) noexcept nogil:
    """First / second differences of uncompressed data undone in wrapping 32-bit
    arithmetic (registers carry the previous values; one add per sample on
    the serial chain)."""
    cdef Py_ssize_t i
    cdef uint32_t prev, prev2, cur
    if order == 1 and n >= 1:
        prev = <uint32_t>x[0]
        for i in range(1, n):
            prev = <uint32_t>x[i] + prev
            x[i] = <int32_t>prev
    elif order == 2 and n >= 2:
        prev2 = <uint32_t>x[0]
        prev = <uint32_t>x[1]
        for i in range(2, n):
            # x[i] - prev2 does not wait for the previous step: one add on the chain
            cur = (<uint32_t>x[i] - prev2) + 2 * prev
            prev2 = prev
            prev = cur
            x[i] = <int32_t>cur


cdef int _tables_from(_Tables* t, const int32_t[:, ::1] codes,
                      const int32_t[::1] table_offsets, const int32_t[::1] lut,
                      const int64_t[::1] lut_offsets, const int32_t[::1] lut_bits,
                      const int64_t[::1] fast, const int64_t[::1] long_offsets,
                      const uint32_t[::1] long_keys, const int32_t[::1] long_rows) except -1:
    """Fill ``t`` from the arrays of :func:`build_luts`, after checking that
    they agree with each other. The arrays must outlive every use of ``t``."""
    cdef Py_ssize_t ntables
    if codes is None or table_offsets is None or lut is None or lut_offsets is None \
            or lut_bits is None or fast is None or long_offsets is None \
            or long_keys is None or long_rows is None:
        raise ValueError("Huffman decoding needs its tables")
    ntables = table_offsets.shape[0] - 1
    if ntables < 1 or lut_bits.shape[0] != ntables or lut_offsets.shape[0] != ntables + 1:
        raise ValueError("malformed Huffman tables")
    if codes.shape[1] != NCOL or table_offsets[ntables] > codes.shape[0] \
            or lut_offsets[ntables] > lut.shape[0] or fast.shape[0] != lut.shape[0] \
            or long_offsets.shape[0] != ntables + 1 or long_keys.shape[0] != long_rows.shape[0] \
            or long_offsets[ntables] > long_keys.shape[0]:
        raise ValueError("malformed Huffman tables")
    t.codes = &codes[0, 0] if codes.shape[0] > 0 else NULL
    t.table_offsets = &table_offsets[0]
    t.ntables = ntables
    t.lut = &lut[0]
    t.lut_offsets = &lut_offsets[0]
    t.lut_bits = &lut_bits[0]
    t.fast = &fast[0]
    t.long_offsets = &long_offsets[0]
    t.long_keys = &long_keys[0] if long_keys.shape[0] > 0 else NULL
    t.long_rows = &long_rows[0] if long_rows.shape[0] > 0 else NULL
    return 0


@cython.auto_pickle(False)
cdef class HuffmanTables:
    """The arrays of :func:`build_luts` (with the code rows and table offsets
    they were built from) checked once and held for the decoding kernels, so
    that a decode call does not take a view of each array again."""

    cdef _Tables t
    cdef readonly tuple arrays

    def __init__(self, const int32_t[:, ::1] codes, const int32_t[::1] table_offsets,
                 const int32_t[::1] lut, const int64_t[::1] lut_offsets,
                 const int32_t[::1] lut_bits, const int64_t[::1] fast,
                 const int64_t[::1] long_offsets, const uint32_t[::1] long_keys,
                 const int32_t[::1] long_rows):
        _tables_from(&self.t, codes, table_offsets, lut, lut_offsets, lut_bits, fast,
                     long_offsets, long_keys, long_rows)
        # the arrays the pointers in ``t`` lead into, kept alive (and never resized)
        self.arrays = (codes.base, table_offsets.base, lut.base, lut_offsets.base,
                       lut_bits.base, fast.base, long_offsets.base, long_keys.base,
                       long_rows.base)


cdef int _check_leads(const int64_t[::1] starts, const int64_t[::1] lengths, Py_ssize_t n,
                      Py_ssize_t nsamples, int differences) except? -100:
    """Argument checks of one section's decode: OK, or the status to return."""
    cdef Py_ssize_t i
    if lengths.shape[0] != starts.shape[0] or nsamples < 0:
        raise ValueError("lead arrays disagree")
    if differences not in (0, 1, 2):
        return UNSUPPORTED
    for i in range(starts.shape[0]):
        if starts[i] < 0 or lengths[i] < 0 or starts[i] + lengths[i] > n:
            return TRUNCATED
    return OK


cdef enum:
    NOT_NARROWED = 1  # _decode_block status: a value of the section does not fit in 16 bits


cdef int _decode_block(const uint8_t* data, Py_ssize_t n, const int64_t* starts,
                       const int64_t* lengths, Py_ssize_t nleads, Py_ssize_t nsamples,
                       bint huffman, int differences, const _Tables* tables, int32_t* out,
                       int64_t* prod, int32_t* lo, int32_t* hi,
                       int16_t* out16=NULL) noexcept nogil:
    """Every lead of one section into ``out[nleads, nsamples]`` (rows filled up to
    each lead's count, zeroed after it), differences undone, ``prod`` the
    counts and ``lo``/``hi`` widened to the values unless NULL (a caller that
    narrows the block takes the bounds in that pass). Arguments checked by
    :func:`_check_leads`.

    With ``out16`` the values go to ``out16[nleads, nsamples]`` as int16 instead,
    narrowed as :func:`_narrow16_bounds` does (``lo``/``hi`` given): the leads
    are decoded two at a time (one at a time uncompressed) into the first rows of
    ``out`` and narrowed while those rows are in cache, so that a record's
    samples pass through a few tens of KiB of int32 rather than all of them.
    ``NOT_NARROWED``: a value does not fit in 16 bits (``out`` then holds only
    the last leads decoded; the caller decodes again without ``out16``)."""
    cdef Py_ssize_t i = 0, j, m, first
    cdef int st
    cdef _Lane lanes[2]
    cdef const uint8_t* base
    cdef int32_t* row
    if nleads == 0 or nsamples == 0:
        for i in range(nleads):
            prod[i] = 0
        return OK
    while i < nleads:
        first = 0 if out16 != NULL else i  # the row of ``out`` lead ``i`` goes to
        if huffman:
            # leads in pairs through the interleaved loop, then each to its end
            m = 2 if i + 1 < nleads else 1
            st = OK
            for j in range(m):
                _lane_init(&lanes[j], data + starts[i + j] if n > 0 else NULL,
                           lengths[i + j], out + (first + j) * nsamples, tables, differences)
                if differences == 2 and st == OK:
                    # the first value is stored as is; the first difference follows it
                    st = _huffman_run(&lanes[j], tables, 1)
                    lanes[j].y = 0 - lanes[j].x
            if m == 2 and st == OK:
                st = _huffman_pair(&lanes[0], &lanes[1], tables, nsamples)
            for j in range(m):
                if st == OK and not lanes[j].ended:
                    st = _huffman_run(&lanes[j], tables, nsamples)
                memset(out + (first + j) * nsamples + lanes[j].k, 0,
                       (nsamples - lanes[j].k) * sizeof(int32_t))
                prod[i + j] = lanes[j].k
            if st != OK:
                memset(out + first * nsamples, 0,
                       (m if out16 != NULL else nleads - i) * nsamples * sizeof(int32_t))
                for j in range(i + m, nleads):
                    prod[j] = 0
                return st
            if out16 != NULL:
                _narrow16_bounds(out, out16 + i * nsamples, m * nsamples, lo, hi)
                if not _fits16(lo[0], hi[0]):
                    return NOT_NARROWED
            elif lo != NULL:
                for j in range(m):
                    _bounds(out + (i + j) * nsamples, lanes[j].k, lo, hi)
            i += m
        else:
            base = data + starts[i] if n > 0 else NULL
            row = out + first * nsamples
            m = lengths[i] // 2
            if m > nsamples:
                m = nsamples
            for j in range(m):
                row[j] = <int16_t>load_le16(base + 2 * j)
            memset(row + m, 0, (nsamples - m) * sizeof(int32_t))
            prod[i] = m
            _undo_differences(row, m, differences)
            if out16 != NULL:
                _narrow16_bounds(row, out16 + i * nsamples, nsamples, lo, hi)
                if not _fits16(lo[0], hi[0]):
                    return NOT_NARROWED
            elif lo != NULL:
                _bounds(row, m, lo, hi)
            i += 1
    return OK


def decode_leads(const uint8_t[::1] data, const int64_t[::1] starts, const int64_t[::1] lengths,
                 Py_ssize_t nsamples, HuffmanTables tables, int differences):
    """Decode every lead of section 5 or 6 into an ``int32[nleads, nsamples]`` array,
    Huffman coded with ``tables`` or, when it is None, uncompressed.

    Returns ``(status, values, produced, lo, hi)``; ``produced[i]`` says how
    many values lead ``i`` really held (the rest of its row is zero) and
    ``lo``/``hi`` bound the decoded values (to pick the output dtype).
    """
    cdef Py_ssize_t nleads = starts.shape[0]
    cdef Py_ssize_t n = data.shape[0]
    cdef int status
    cdef bint huffman = tables is not None
    cdef const _Tables* tp = &tables.t if huffman else NULL
    cdef int32_t lo = 0, hi = 0
    status = _check_leads(starts, lengths, n, nsamples, differences)
    if status != OK:
        return status, None, None, 0, 0
    values = np.empty((nleads, nsamples), dtype=np.int32)
    produced = _zeros(nleads, np.int64)
    cdef int32_t[:, ::1] v = values
    cdef int64_t[::1] prod = produced
    if nleads == 0 or nsamples == 0:
        return OK, values, produced, 0, 0
    with nogil:
        status = _decode_block(&data[0] if n > 0 else NULL, n, &starts[0], &lengths[0],
                               nleads, nsamples, huffman, differences, tp, &v[0, 0],
                               &prod[0], &lo, &hi)
    return status, values, produced, lo, hi


_scratch = threading.local()


cdef enum:
    WORK_BLOCK_MAX_VALUES = 1 << 20  # a thread keeps at most 4 MiB of int32 work memory


cdef object _work_block(Py_ssize_t count):
    """A 1-d int32 array of at least ``count`` values for work a call does not
    return: the thread's kept block when it is large enough, so that decoding
    record after record does not fault fresh pages in for it each time (a
    call that returns the block as output gives it up: :func:`_hand_out`)."""
    if count > WORK_BLOCK_MAX_VALUES:
        return np.empty(count, dtype=np.int32)
    block = getattr(_scratch, "block", None)
    if block is None or block.shape[0] < count:
        block = np.empty(count, dtype=np.int32)
        _scratch.block = block
    return block


cdef void _hand_out(object block):
    """``block`` (from :func:`_work_block`) leaves as output: the thread stops reusing it."""
    if getattr(_scratch, "block", None) is block:
        _scratch.block = None


cdef inline bint _fits16(int64_t lo, int64_t hi) noexcept nogil:
    return -32768 <= lo and hi <= 32767


cdef void _narrow16(const int32_t* x, int16_t* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = <int16_t>x[i]


cdef inline bint _beat_zone(int64_t start, int64_t fiducial, int64_t end, Py_ssize_t n,
                           Py_ssize_t blen, int64_t beat_fiducial, int64_t* first,
                           int64_t* last) noexcept nogil:
    """The samples (1-based, inclusive) of one QRS subtraction zone that lie in
    the rhythm (``n``) and under the beat (``blen``) aligned on the fiducials;
    False when none do."""
    first[0] = max(start, 1, fiducial - beat_fiducial + 1)
    last[0] = min(end, n, fiducial - beat_fiducial + blen)
    return first[0] <= last[0]


cdef void _add_beat(int32_t* v, Py_ssize_t nleads, Py_ssize_t n, const int32_t* b,
                    Py_ssize_t blen, const int64_t* qrs_start, const int64_t* qrs_fiducial,
                    const int64_t* qrs_end, const uint8_t* qrs_add, Py_ssize_t nq,
                    int64_t beat_fiducial) noexcept nogil:
    """The beat (``b[nleads, blen]``) added into the rhythm (``v[nleads, n]``) over
    the subtraction zone of every QRS whose ``qrs_add`` is set, aligned on the
    fiducials; the caller has checked that every sum fits in 32 bits."""
    cdef Py_ssize_t i, q
    cdef int64_t first, last, s
    cdef int32_t* dst
    cdef const int32_t* src
    for i in range(nleads):
        for q in range(nq):
            if not qrs_add[q] or not _beat_zone(qrs_start[q], qrs_fiducial[q], qrs_end[q], n,
                                                blen, beat_fiducial, &first, &last):
                continue
            dst = v + i * n - 1
            src = b + i * blen + beat_fiducial - qrs_fiducial[q] - 1
            for s in range(first, last + 1):
                dst[s] += src[s]


cdef void _narrow16_bounds(const int32_t* x, int16_t* y, Py_ssize_t n, int32_t* lo,
                           int32_t* hi) noexcept nogil:
    """:func:`_narrow16` and :func:`_bounds` (the copy is only meaningful when
    the widened bounds fit in 16 bits): the copy and a check that every value
    fits in one pass (an add and an or per value), then the bounds from the
    int16 copy, or from ``x`` when a value does not fit. Every loop is one
    the compiler vectorises with the base x86-64 instructions (32-bit min and
    max are not among them, 16-bit ones are)."""
    cdef Py_ssize_t i
    cdef uint32_t outside = 0
    cdef int16_t mn, mx, v
    for i in range(n):
        y[i] = <int16_t>x[i]
        outside |= <uint32_t>x[i] + 0x8000u
    if outside >> 16:
        _bounds(x, n, lo, hi)
        return
    mn = 0
    mx = 0
    for i in range(n):
        v = y[i]
        mn = v if v < mn else mn
        mx = v if v > mx else mx
    lo[0] = mn if mn < lo[0] else lo[0]
    hi[0] = mx if mx > hi[0] else hi[0]


def decode_signals(data, HuffmanTables huff,
                   const int64_t[::1] starts6, const int64_t[::1] lengths6, Py_ssize_t n6,
                   int diff6,
                   const int64_t[::1] starts5=None, const int64_t[::1] lengths5=None,
                   Py_ssize_t n5=0, int diff5=0,
                   const int64_t[::1] qrs_start=None, const int64_t[::1] qrs_fiducial=None,
                   const int64_t[::1] qrs_end=None, const uint8_t[::1] qrs_add=None,
                   int64_t beat_fiducial=0, bint keep_int32=False,
                   int64_t[:, ::1] crc_rows=None, Py_ssize_t crc_end=0):
    """Sections 6 and 5 decoded, the reference beat re-added and both narrowed
    to int16 where their values allow, in one ``nogil`` block.

    The common path of a record without bimodal compression: one release of
    the GIL for all of a record's sample work, so that threads decoding other
    records overlap it. ``huff``: the :class:`HuffmanTables`, or ``None``
    for uncompressed data. Section 5
    is decoded when ``starts5`` is given (``n5`` values per lead). The beat is
    added (as :func:`add_reference_beat_inplace`: sections 5 and 6 share one
    AVM, the caller checked that) when the QRS arrays are given, both
    sections decoded without error and the value bounds show every sum fits
    in 32 bits; otherwise the rhythm is left as decoded and both stay int32,
    so that the caller can add the beat in 64 bits (``keep_int32``: the
    caller adds it, keep both int32).

    ``crc_rows``: the rows of ``scan_headers(..., crcs=False)``, whose CRCs
    (and the record's, over bytes 2 to ``crc_end``) are computed in the same
    block, column 8 filled as :func:`container_crcs` does.

    Returns ``(status6, values6, produced6, lo6, hi6, status5, beat, produced5,
    lo5, hi5, added, record_crc, crcs_differ)``: each section's status, values (int16
    or int32), per-lead counts (a list) and value bounds (after the addition when
    ``added``), as :func:`decode_leads`; the section 5 entries are ``None`` /
    0 when it was not asked for; the record CRC is -1 without ``crc_rows``;
    ``crcs_differ`` whether a section CRC differs from its stored one (False
    without ``crc_rows``), so that a read whose CRCs hold does not read the rows.
    """
    cdef Py_buffer view
    cdef _Bytes b
    _open_bytes(data, &view, &b)
    try:
        return _decode_signals(b.p, b.n, huff, starts6, lengths6, n6, diff6, starts5, lengths5,
                               n5, diff5, qrs_start, qrs_fiducial, qrs_end, qrs_add,
                               beat_fiducial, keep_int32, crc_rows, crc_end)
    finally:
        PyBuffer_Release(&view)


cdef object _decode_signals(const uint8_t* p, Py_ssize_t n, HuffmanTables huff,
                   const int64_t[::1] starts6, const int64_t[::1] lengths6, Py_ssize_t n6,
                   int diff6,
                   const int64_t[::1] starts5, const int64_t[::1] lengths5,
                   Py_ssize_t n5, int diff5,
                   const int64_t[::1] qrs_start, const int64_t[::1] qrs_fiducial,
                   const int64_t[::1] qrs_end, const uint8_t[::1] qrs_add,
                   int64_t beat_fiducial, bint keep_int32,
                   int64_t[:, ::1] crc_rows, Py_ssize_t crc_end):
    """:func:`decode_signals` over the ``n`` bytes at ``p``."""
    cdef Py_ssize_t nleads = starts6.shape[0], nl5 = 0
    cdef Py_ssize_t nq = 0, blen = 0, i
    cdef int status6, status5 = OK
    cdef bint huffman = huff is not None, want5 = starts5 is not None, want_add = False
    cdef bint added = False, narrow6, narrow5, narrowed6 = False, narrowed5 = False
    cdef int32_t lo6 = 0, hi6 = 0, lo5 = 0, hi5 = 0
    cdef int64_t bound
    cdef int64_t* crc_rp = NULL
    cdef _Span* spans = NULL
    cdef int record_crc = -1
    cdef bint crcs_differ = False
    status6 = _check_leads(starts6, lengths6, n, n6, diff6)
    if want5:
        if lengths5 is None:
            raise ValueError("section 5 needs its lead lengths")
        nl5 = starts5.shape[0]
        status5 = _check_leads(starts5, lengths5, n, n5, diff5)
    if qrs_start is not None:
        if qrs_fiducial is None or qrs_end is None or qrs_add is None or not want5:
            raise ValueError("the reference beat needs section 5 and every QRS array")
        nq = qrs_start.shape[0]
        if qrs_fiducial.shape[0] != nq or qrs_end.shape[0] != nq or qrs_add.shape[0] != nq:
            raise ValueError("QRS arrays disagree")
        if nl5 != nleads and nq > 0:
            raise ValueError("reference beat and rhythm lead counts differ")
        want_add = True
        blen = n5
    cdef const _Tables* tp = &huff.t if huffman else NULL
    # int32 work blocks (in the thread's reused block: they are returned only when the
    # values do not fit in 16 bits), and int16 blocks the values are narrowed into
    work = _work_block(nleads * n6 + (nl5 * n5 if want5 else 0))
    small = _empty(nleads, n6, cnp.NPY_INT16)
    cdef int32_t* wp = <int32_t*>cnp.PyArray_DATA(<cnp.ndarray>work)
    cdef int32_t* vp = wp if nleads > 0 and n6 > 0 else NULL
    cdef int16_t* vp16 = <int16_t*>cnp.PyArray_DATA(<cnp.ndarray>small)
    beat16 = None
    cdef int32_t* bp = NULL
    cdef int16_t* bp16 = NULL
    if want5:
        beat16 = _empty(nl5, n5, cnp.NPY_INT16)
        bp16 = <int16_t*>cnp.PyArray_DATA(<cnp.ndarray>beat16)
        if nl5 > 0 and n5 > 0:
            bp = wp + nleads * n6
    if crc_rows is not None:
        crc_rp = _crc_rows(crc_rows, crc_end, n)
        spans = _spans_for(crc_rows.shape[0])  # freed right after the block, which cannot raise
    # the per-lead counts of both sections in one C buffer, handed back as lists
    cdef int64_t* counts = <int64_t*>calloc(nleads + nl5 + 1, sizeof(int64_t))
    if counts == NULL:
        free(spans)
        raise MemoryError()
    cdef int64_t* pp = counts if nleads > 0 else NULL
    cdef int64_t* pp5 = counts + nleads if nl5 > 0 else NULL
    # without a beat to add and not kept int32, section 6 is narrowed as it is decoded
    cdef bint stream6 = not want_add and not keep_int32
    with nogil:
        if spans != NULL:
            record_crc = _crc_pass(p, crc_rows.shape[0], crc_end, crc_rp, spans)
            crcs_differ = _section_crcs_differ(crc_rp, crc_rows.shape[0])
            free(spans)
        # the bounds decide whether the beat can be added in 32 bits; without an
        # addition they are taken in the narrowing pass instead
        if want5 and status5 == OK and bp != NULL:
            status5 = _decode_block(p, n, &starts5[0], &lengths5[0], nl5, n5, huffman, diff5,
                                    tp, bp, pp5, &lo5 if want_add else NULL,
                                    &hi5 if want_add else NULL)
        if status6 == OK and vp != NULL:
            if stream6:  # decoded and narrowed two leads at a time
                status6 = _decode_block(p, n, &starts6[0], &lengths6[0], nleads, n6, huffman,
                                        diff6, tp, vp, pp, &lo6, &hi6, vp16)
                narrowed6 = status6 == OK
                if status6 == NOT_NARROWED:  # the whole block in 32 bits, with its bounds
                    lo6 = 0
                    hi6 = 0
                    status6 = _decode_block(p, n, &starts6[0], &lengths6[0], nleads, n6,
                                            huffman, diff6, tp, vp, pp, &lo6, &hi6)
            else:
                status6 = _decode_block(p, n, &starts6[0], &lengths6[0], nleads, n6, huffman,
                                        diff6, tp, vp, pp, &lo6 if want_add else NULL,
                                        &hi6 if want_add else NULL)
        if want_add and status5 == OK and status6 == OK:
            bound = (max(-<int64_t>lo6, <int64_t>hi6) + max(-<int64_t>lo5, <int64_t>hi5))
            if bound < (<int64_t>1) << 31:
                added = True
                if vp != NULL:
                    if nq > 0 and bp != NULL:
                        _add_beat(vp, nleads, n6, bp, blen, &qrs_start[0], &qrs_fiducial[0],
                                  &qrs_end[0], &qrs_add[0], nq, beat_fiducial)
                    # the new bounds, and the int16 copy in the same pass (kept if they fit)
                    lo6 = 0
                    hi6 = 0
                    if keep_int32:
                        _bounds(vp, nleads * n6, &lo6, &hi6)
                    else:
                        _narrow16_bounds(vp, vp16, nleads * n6, &lo6, &hi6)
                        narrowed6 = True
        # a rhythm the caller still adds the beat to stays int32
        keep_int32 = keep_int32 or (want_add and not added)
        if not want_add:
            if status6 == OK and vp != NULL and not stream6:
                if keep_int32:
                    _bounds(vp, nleads * n6, &lo6, &hi6)
                else:
                    _narrow16_bounds(vp, vp16, nleads * n6, &lo6, &hi6)
                    narrowed6 = True
            if want5 and status5 == OK and bp != NULL:
                if keep_int32:
                    _bounds(bp, nl5 * n5, &lo5, &hi5)
                else:
                    _narrow16_bounds(bp, bp16, nl5 * n5, &lo5, &hi5)
                    narrowed5 = True
        narrow6 = status6 == OK and _fits16(lo6, hi6) and not keep_int32
        if narrow6 and vp != NULL and not narrowed6:
            _narrow16(vp, vp16, nleads * n6)
        narrow5 = want5 and status5 == OK and _fits16(lo5, hi5) and not keep_int32
        if narrow5 and bp != NULL and not narrowed5:
            _narrow16(bp, bp16, nl5 * n5)
    values = produced = beat = produced5 = None
    if status6 == OK:
        produced = [counts[i] for i in range(nleads)]
        if narrow6:
            values = small
        else:
            values = work[:nleads * n6].reshape(nleads, n6)
            _hand_out(work)
    if want5 and status5 == OK:
        produced5 = [counts[nleads + i] for i in range(nl5)]
        if narrow5:
            beat = beat16
        else:
            beat = work[nleads * n6:nleads * n6 + nl5 * n5].reshape(nl5, n5)
            _hand_out(work)
    free(counts)
    return (status6, values, produced, lo6, hi6, status5, beat, produced5, lo5, hi5, added,
            record_crc, crcs_differ)


# ---------------------------------------------------------------- section walkers
# Each walker reads one section's repeated entries and returns plain values
# (ints, tuples of ints, byte offsets); the section readers of
# ``ecgingest.formats.scp`` build the record's dicts from them and word the
# warnings. They hold the GIL: a section is a few hundred bytes, less work
# than handing the GIL to another thread and taking it back.

cdef inline void _check_span(Py_ssize_t n, Py_ssize_t o, Py_ssize_t end) except *:
    if o < 0 or end < o or end > n:
        raise ValueError("section span outside the buffer")


def statement_spans(const uint8_t[::1] data, Py_ssize_t o, Py_ssize_t end,
                    Py_ssize_t count):
    """Up to ``count`` statements of section 8 or 11 from ``o`` (sequence
    number, uint16 length, bytes), as far as the section holds them.

    Returns ``(statements, overrun)``: ``(sequence, start, stop)`` per
    statement, and the sequence number of a statement whose bytes run past
    ``end`` (where the walk stopped), else -1.
    """
    cdef Py_ssize_t k, length, overrun = -1
    _check_span(data.shape[0], o, end)
    items = []
    for k in range(count):
        if o + 3 > end:
            break
        length = load_le16(&data[o + 1])
        if o + 3 + length > end:
            overrun = data[o]
            break
        items.append((data[o], o + 3, o + 3 + length))
        o += 3 + length
    return items, overrun


cdef enum:
    LEAD_MEASUREMENT_COUNT = 31  # int16 values of a full section 10 block


def lead_measurement_rows(const uint8_t[::1] data, Py_ssize_t o, Py_ssize_t end,
                          Py_ssize_t nleads):
    """Up to ``nleads`` per-lead blocks of section 10 from ``o`` (lead id,
    uint16 block length, int16 measurements), as far as the section holds
    their 4-byte heads, in one int64 array.

    Returns ``(rows, extras, complete)``: one row per block, ``(lead id,
    count, 31 values)``, ``count`` the block's int16 measurements in stored
    order (a block shorter than the 31 gives its first ones; the values after
    them are 0); ``extras`` ``(row, start, stop)`` for each block that holds
    bytes after its 31 measurements; ``complete`` is False when the section
    ends before a declared block's head.
    """
    cdef Py_ssize_t k, i, stop, count, rows_present = 0, full = 2 * LEAD_MEASUREMENT_COUNT
    cdef Py_ssize_t at
    cdef const uint8_t* p
    cdef bint complete = True
    _check_span(data.shape[0], o, end)
    # the heads present bound the rows before anything is allocated
    at = o
    for k in range(nleads):
        if at + 4 > end:
            complete = False
            break
        rows_present += 1
        at += 4 + load_le16(&data[at + 2])
    rows = _empty(rows_present, LEAD_MEASUREMENT_COUNT + 2, cnp.NPY_INT64)
    cdef int64_t* r = <int64_t*>cnp.PyArray_DATA(rows)
    memset(r, 0, rows_present * (LEAD_MEASUREMENT_COUNT + 2) * sizeof(int64_t))
    extras = []
    for k in range(rows_present):
        p = &data[o]
        stop = min(o + 4 + <Py_ssize_t>load_le16(p + 2), end)
        count = min(stop - (o + 4), full) // 2
        r[0] = load_le16(p)
        r[1] = count
        for i in range(count):
            r[2 + i] = <int16_t>load_le16(p + 4 + 2 * i)
        r += LEAD_MEASUREMENT_COUNT + 2
        if stop > o + 4 + full:
            extras.append((k, o + 4 + full, stop))
        o += 4 + load_le16(p + 2)
    return rows, extras, complete


cdef inline object _measured(int64_t v):
    """Section 7's 'not computed', 'rejected' and 'not present' values read as None."""
    return None if v == 29999 or v == 29998 or v == 19999 else v


cdef inline object _axis(int64_t v):
    """An axis: the section 7 sentinels and 999 (undefined) read as None."""
    return None if v == 999 else _measured(v)


def global_measurement_values(const uint8_t[::1] data, Py_ssize_t b, Py_ssize_t end):
    """Section 7 from its body ``b`` (the caller checked its 6-byte head):
    intervals, beats, pacemaker spikes and the version 2 extension, each part
    only when all its bytes are present; sentinel values read as None.

    Returns ``(rr, pp, nbeats, beats, spikes, qrs_types, rates, stop)``:
    ``beats`` the 8-tuples of the beats present (fewer than the ``nbeats``
    declared when the section is cut), ``spikes`` 2-tuples (time, amplitude)
    or 6-tuples (with type, source, trigger index, pulse width), ``qrs_types``
    a tuple or None, ``rates`` ``(ventricular, atrial, QTc, QTc formula)`` or
    None, and ``stop`` the offset after the last part read.
    """
    cdef Py_ssize_t nbeats, nspikes, usable, k, o, nqrs
    cdef const uint8_t* p
    _check_span(data.shape[0], b, end)
    if b + 6 > end:
        raise ValueError("section 7 head outside the section")
    p = &data[0]
    nbeats = p[b]
    nspikes = p[b + 1]
    rr = _measured(load_le16(p + b + 2))
    pp = _measured(load_le16(p + b + 4))
    o = b + 6
    usable = min(nbeats, (end - o) // 16)
    beats = []
    for k in range(usable):
        beats.append((_measured(load_le16(p + o)), _measured(load_le16(p + o + 2)),
                      _measured(load_le16(p + o + 4)), _measured(load_le16(p + o + 6)),
                      _measured(load_le16(p + o + 8)), _axis(<int16_t>load_le16(p + o + 10)),
                      _axis(<int16_t>load_le16(p + o + 12)),
                      _axis(<int16_t>load_le16(p + o + 14))))
        o += 16
    spikes = []
    if o + 4 * nspikes <= end:
        for k in range(nspikes):
            spikes.append((load_le16(p + o + 4 * k), <int16_t>load_le16(p + o + 4 * k + 2)))
        o += 4 * nspikes
        if o + 6 * nspikes <= end:
            for k in range(nspikes):
                spikes[k] += (p[o + 6 * k], p[o + 6 * k + 1], load_le16(p + o + 6 * k + 2),
                              load_le16(p + o + 6 * k + 4))
            o += 6 * nspikes
    qrs_types = rates = None
    if o + 2 <= end:
        nqrs = load_le16(p + o)
        if o + 2 + nqrs <= end:
            qrs_types = tuple([p[o + 2 + k] for k in range(nqrs)])
            o += 2 + nqrs
            if o + 7 <= end:
                rates = (_measured(load_le16(p + o)), _measured(load_le16(p + o + 2)),
                         _measured(load_le16(p + o + 4)), p[o + 6])
                o += 7
    return rr, pp, nbeats, beats, spikes, qrs_types, rates, o


# ---------------------------------------------------------------- bimodal

def bimodal_expand(const int32_t[:, ::1] stored, const int64_t[::1] produced,
                   const int64_t[::1] zone_start, const int64_t[::1] zone_end,
                   Py_ssize_t factor, Py_ssize_t nsamples):
    """Rebuild full-rate leads from bimodal storage.

    Protected zones (1-based inclusive, sorted, non-overlapping, clipped to
    ``nsamples`` by the caller) are copied; every run between them holds
    ``ceil(run / factor)`` stored values, interpolated linearly with the first
    value held for ``factor // 2`` samples before and the last held after.
    Returns ``(status, values)``: TRUNCATED when a lead holds too few values.
    """
    cdef Py_ssize_t nleads = stored.shape[0], nz = zone_start.shape[0]
    cdef Py_ssize_t i, z
    cdef int status = OK
    if produced.shape[0] != nleads or zone_end.shape[0] != nz or factor < 1 or nsamples < 0:
        raise ValueError("bimodal arguments disagree")
    for z in range(nz):
        if zone_start[z] < 1 or zone_end[z] < zone_start[z] or zone_end[z] > nsamples:
            return BAD_VALUE, None
        if z > 0 and zone_start[z] <= zone_end[z - 1]:
            return BAD_VALUE, None
    for i in range(nleads):
        if produced[i] > stored.shape[1]:
            raise ValueError("produced count beyond the stored array")
    out = np.empty((nleads, nsamples), dtype=np.int32)  # zeroed in the nogil block
    cdef int32_t[:, ::1] o = out
    cdef Py_ssize_t s, k, m, run_start, run_end, L, j, half, pos, avail, zi
    cdef int64_t a, b
    if nleads == 0 or nsamples == 0:
        return OK, out
    half = factor // 2
    with nogil:
        memset(&o[0, 0], 0, nleads * nsamples * sizeof(int32_t))
        for i in range(nleads):
            avail = produced[i]
            k = 0
            s = 1
            zi = 0
            while s <= nsamples:
                if zi < nz and s == zone_start[zi]:
                    L = zone_end[zi] - zone_start[zi] + 1
                    if k + L > avail:
                        status = TRUNCATED
                        break
                    for j in range(L):
                        o[i, s - 1 + j] = stored[i, k + j]
                    k += L
                    s += L
                    zi += 1
                    continue
                run_start = s
                run_end = zone_start[zi] - 1 if zi < nz else nsamples
                L = run_end - run_start + 1
                m = (L + factor - 1) // factor
                if k + m > avail:
                    status = TRUNCATED
                    break
                pos = run_start - 1
                # hold the first value
                for j in range(min(half, L)):
                    o[i, pos] = stored[i, k]
                    pos += 1
                # interpolate between consecutive stored values
                for j in range(m - 1):
                    a = stored[i, k + j]
                    b = stored[i, k + j + 1]
                    for z in range(factor):
                        if pos > run_end - 1:
                            break
                        o[i, pos] = <int32_t>(a + (z * (b - a)) // factor
                                              if (z * (b - a)) >= 0
                                              else a - ((-z * (b - a)) // factor))
                        pos += 1
                # hold the last value
                while pos <= run_end - 1:
                    o[i, pos] = stored[i, k + m - 1]
                    pos += 1
                k += m
                s = run_end + 1
            if status != OK:
                break
    return status, out


# ---------------------------------------------------------------- reference beat

def add_reference_beat(const int32_t[:, ::1] residual, int64_t residual_mult,
                       const int32_t[:, ::1] beat, int64_t beat_mult,
                       const int64_t[::1] qrs_start, const int64_t[::1] qrs_fiducial,
                       const int64_t[::1] qrs_end, const uint8_t[::1] qrs_add,
                       int64_t beat_fiducial):
    """``residual * residual_mult`` plus ``beat * beat_mult`` re-added in each
    subtraction zone (1-based inclusive) of the QRS complexes flagged in
    ``qrs_add``, aligned on the fiducials: rhythm[s] += beat[s - fc + fcm].

    Returns ``(status, int64 values, min, max)``; OVERFLOW if a multiplier is
    absurd.
    """
    cdef Py_ssize_t nleads = residual.shape[0], n = residual.shape[1]
    cdef Py_ssize_t blen = beat.shape[1], nq = qrs_start.shape[0]
    cdef Py_ssize_t i, j, q, s
    cdef int64_t first, last, lo = 0, hi = 0
    if beat.shape[0] != nleads and nq > 0:
        raise ValueError("reference beat and rhythm lead counts differ")
    if qrs_fiducial.shape[0] != nq or qrs_end.shape[0] != nq or qrs_add.shape[0] != nq:
        raise ValueError("QRS arrays disagree")
    if residual_mult < 0 or beat_mult < 0 or residual_mult > 65535 or beat_mult > 65535:
        return OVERFLOW, None, 0, 0
    out = np.empty((nleads, n), dtype=np.int64)
    cdef int64_t[:, ::1] o = out
    with nogil:
        for i in range(nleads):
            for j in range(n):
                o[i, j] = residual[i, j] * residual_mult
            for q in range(nq):
                if not qrs_add[q] or not _beat_zone(qrs_start[q], qrs_fiducial[q],
                                                    qrs_end[q], n, blen, beat_fiducial,
                                                    &first, &last):
                    continue
                for s in range(first, last + 1):
                    o[i, s - 1] += beat[i, s - qrs_fiducial[q] + beat_fiducial - 1] * beat_mult
            for j in range(n):
                if o[i, j] < lo:
                    lo = o[i, j]
                if o[i, j] > hi:
                    hi = o[i, j]
    return OK, out, lo, hi


def add_reference_beat_inplace(int32_t[:, ::1] rhythm, const int32_t[:, ::1] beat,
                               const int64_t[::1] qrs_start, const int64_t[::1] qrs_fiducial,
                               const int64_t[::1] qrs_end, const uint8_t[::1] qrs_add,
                               int64_t beat_fiducial):
    """The common case of :func:`add_reference_beat`: sections 5 and 6 share
    one AVM and the caller has checked from the value bounds that every sum
    fits in 32 bits, so the beat is added into ``rhythm`` itself.

    Returns ``(status, min, max)`` of the result.
    """
    cdef Py_ssize_t nleads = rhythm.shape[0], n = rhythm.shape[1]
    cdef Py_ssize_t blen = beat.shape[1], nq = qrs_start.shape[0], i
    cdef int32_t lo = 0, hi = 0
    if beat.shape[0] != nleads and nq > 0:
        raise ValueError("reference beat and rhythm lead counts differ")
    if qrs_fiducial.shape[0] != nq or qrs_end.shape[0] != nq or qrs_add.shape[0] != nq:
        raise ValueError("QRS arrays disagree")
    with nogil:
        if nq > 0 and nleads > 0 and n > 0 and blen > 0:
            _add_beat(&rhythm[0, 0], nleads, n, &beat[0, 0], blen, &qrs_start[0],
                      &qrs_fiducial[0], &qrs_end[0], &qrs_add[0], nq, beat_fiducial)
        if n > 0:
            for i in range(nleads):
                _bounds(&rhythm[i, 0], n, &lo, &hi)
    return OK, lo, hi
