# cython: language_level=3
"""GE MUSE kernel: a lead's base64 ``WaveFormData`` -> its bytes, without the GIL.

Decodes as ``binascii.a2b_base64`` does (non-strict: bytes outside the
alphabet skipped, padding ends the data; see ``_base64.pxd``) at several
times its speed, and counts the skipped characters that are not whitespace,
which the caller reports. Statuses come from ``_status.pxd``.

``lead_blocks`` reads the ``LeadData`` elements (most of a MUSE export: the
leads' fields and ~100 KB of base64) from the raw bytes of a document
(ASCII-compatible encodings), so the XML parser can be given the document
without them, and ``decode_spans`` decodes the base64 texts straight from the
document's bytes.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp

import sys

import numpy as np

cimport numpy as cnp

from _bytes cimport load_le16
from _base64 cimport BASE64_OK, BASE64_ONE_EXTRA, base64_capacity, base64_decode
from _status cimport KernelStatus

cnp.import_array()


# CRC-32 (zlib's: reflected polynomial 0xEDB88320) of a lead's decoded bytes, computed in
# the decode's region without the GIL; slicing by 8 on little-endian machines.
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static uint32_t ecgingest_crc_table[8][256];
    static void ecgingest_crc32_init(void) {
        uint32_t i, c;
        int k;
        for (i = 0; i < 256; i++) {
            c = i;
            for (k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            ecgingest_crc_table[0][i] = c;
        }
        for (i = 0; i < 256; i++) {
            c = ecgingest_crc_table[0][i];
            for (k = 1; k < 8; k++) {
                c = ecgingest_crc_table[0][c & 0xFF] ^ (c >> 8);
                ecgingest_crc_table[k][i] = c;
            }
        }
    }
    static uint32_t ecgingest_crc32(const unsigned char* p, size_t n) {
        const uint32_t (*t)[256] = (const uint32_t (*)[256])ecgingest_crc_table;
        uint32_t c = 0xFFFFFFFFu;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint32_t lo, hi;
        while (n >= 8) {
            memcpy(&lo, p, 4);
            memcpy(&hi, p + 4, 4);
            lo ^= c;
            c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF]
                ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF]
                ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
            p += 8;
            n -= 8;
        }
    #endif
        while (n--) c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
    """
    void crc32_init "ecgingest_crc32_init"() noexcept nogil
    uint32_t crc32 "ecgingest_crc32"(const uint8_t* data, size_t n) noexcept nogil


crc32_init()


def crc32_of(const uint8_t[::1] data):
    """``zlib.crc32(data)``, as :func:`decode_spans` computes it for each span."""
    return crc32(&data[0] if data.shape[0] else NULL, <size_t>data.shape[0])

cdef Py_ssize_t NOGIL_FROM = 1 << 18  # characters: below, the decode is shorter than a GIL hand-over
# a whole document's leads (~100 KB of text, ~0.1 ms) are decoded without the GIL so that
# threads reading other files run meanwhile
cdef Py_ssize_t SPANS_NOGIL_FROM = 1 << 15

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


cdef Py_ssize_t MAX_TEXT = 10000000  # libxml2's longest text without its "huge" option
cdef Py_ssize_t MAX_NAME = 50000  # and its longest name


cdef inline bint _name_start(uint8_t c) noexcept nogil:
    return (65 <= c <= 90) or (97 <= c <= 122) or c == 95  # A-Z a-z _


cdef inline bint _name_char(uint8_t c) noexcept nogil:
    return _name_start(c) or (48 <= c <= 57) or c == 45 or c == 46  # 0-9 - .


cdef inline bint _space(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


# Names of the values MUSE exports hold: a child's name found here is this str (its hash
# already known) instead of a new one decoded per child. A fixed table, the same for
# every document.
_NAMES = (
    "AcquisitionDate", "AcquisitionDevice", "AcquisitionSoftwareVersion",
    "AcquisitionTechLastName", "AcquisitionTime", "AgeUnits", "AnalysisSoftwareVersion",
    "AtrialRate", "BaselineSway", "CartNumber", "DataType", "DateofBirth", "ECGSampleBase",
    "ECGSampleExponent", "EditDate", "EditListStatus", "EditTime", "EditorFirstName",
    "EditorID", "EditorLastName", "FellowFirstName", "FellowID", "FellowLastName",
    "FirstSampleBaseline", "Gender", "HISStatus", "HeightCM", "WeightKG",
    "LeadAmplitudeUnits", "LeadAmplitudeUnitsPerBit", "LeadByteCountTotal", "LeadDataCRC32",
    "LeadHighLimit", "LeadID", "LeadLowLimit", "LeadOff", "LeadOffsetFirstSample",
    "LeadSampleCountTotal", "LeadSampleSize", "LeadTimeOffset", "Location", "LocationName",
    "MuseVersion", "Number", "OverreaderFirstName", "OverreaderID", "OverreaderLastName",
    "PAxis", "POffset", "POnset", "PRInterval", "PatientAge", "PatientFirstName",
    "PatientID", "PatientLastName", "Priority", "QOffset", "QOnset", "QRSCount",
    "QRSDuration", "QTCorrected", "QTInterval", "QTcFrederica", "RAxis", "Race",
    "ReferringMDFirstName", "ReferringMDLastName", "RoomID", "Site", "SiteName", "Status",
    "StmtFlag", "StmtText", "TAxis", "TOffset", "Time", "Type", "VentricularRate",
    "WaveFormData")
cdef tuple _VOCABULARY = tuple(sys.intern(name) for name in _NAMES)
cdef tuple _VOCABULARY_BYTES = tuple(name.encode("ascii") for name in _NAMES)
cdef enum:
    VOCABULARY_SLOTS = 512  # a power of two, several times the vocabulary
cdef Py_ssize_t _slots[VOCABULARY_SLOTS]


cdef inline size_t _name_hash(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef size_t h = 2166136261u
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ s[i]) * 16777619u
    return h


cdef void _fill_slots():
    cdef Py_ssize_t i, slot
    cdef bytes name
    for slot in range(VOCABULARY_SLOTS):
        _slots[slot] = -1
    for i, name in enumerate(_VOCABULARY_BYTES):
        slot = _name_hash(<const uint8_t*><const char*>name, len(name)) & (VOCABULARY_SLOTS - 1)
        while _slots[slot] >= 0:
            slot = (slot + 1) & (VOCABULARY_SLOTS - 1)
        _slots[slot] = i


_fill_slots()


cdef str _name(const uint8_t* s, Py_ssize_t n):
    """The name ``s[:n]`` (ASCII) as a str: the vocabulary's own where it is one."""
    cdef Py_ssize_t slot = _name_hash(s, n) & (VOCABULARY_SLOTS - 1), i
    cdef bytes known
    while True:
        i = _slots[slot]
        if i < 0:
            return (<const char*>s)[:n].decode("ascii")
        known = <bytes>_VOCABULARY_BYTES[i]
        if len(known) == n and memcmp(<const char*>known, s, <size_t>n) == 0:
            return <str>_VOCABULARY[i]
        slot = (slot + 1) & (VOCABULARY_SLOTS - 1)


# The scan is two passes: the first reads the bytes without the GIL and lists what it
# found as plain offsets (one record of five int64 per block and per child); the second,
# with the GIL, builds the names, texts, dicts and lists from them.
cdef enum:
    RECORD = 5  # int64 per record: kind, then four offsets
    KIND_LEAD = 0  # a LeadData block: (kind, content start, content end, 0, 0)
    KIND_PLAIN = 1  # a plain block, likewise
    KIND_CHILD = 2  # (kind + flags, name start, name end, text start, text end)
    FLAG_EMPTY = 4  # '<Name/>'
    FLAG_CR = 8  # the text holds a carriage return
    FLAG_SPAN = 16  # a LeadData's WaveFormData: a base64 span, its bytes not checked here
    MAX_PLAIN = 32
    SCAN_DECLINED = -1
    SCAN_NO_MEMORY = -3


cdef struct Records:
    int64_t* data
    Py_ssize_t count
    Py_ssize_t capacity


cdef bint _record(Records* out, int64_t kind, int64_t a, int64_t b, int64_t c,
                  int64_t d) noexcept nogil:
    """Append one record; False when memory runs out."""
    cdef int64_t* grown
    cdef Py_ssize_t capacity
    if out.count == out.capacity:
        capacity = out.capacity * 2 if out.capacity else 256
        grown = <int64_t*>realloc(out.data, <size_t>capacity * RECORD * sizeof(int64_t))
        if grown == NULL:
            return False
        out.data, out.capacity = grown, capacity
    grown = out.data + out.count * RECORD
    grown[0], grown[1], grown[2], grown[3], grown[4] = kind, a, b, c, d
    out.count += 1
    return True


cdef Py_ssize_t _block_children(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n, bint lead,
                                Records* out) noexcept nogil:
    """Record the children of one block from ``pos`` (just after its start tag): the index
    of its end tag's '<', SCAN_DECLINED where a child is not ``<Name>text</Name>`` or
    ``<Name/>`` with an ASCII name, a text of printable ASCII without '&', ']' or '<'
    (a ``LeadData``'s ``WaveFormData`` texts are checked when decoded), and only
    whitespace between children, or SCAN_NO_MEMORY."""
    cdef Py_ssize_t name_start, name_end, text_start, i
    cdef const uint8_t* hit
    cdef uint8_t c
    cdef int64_t flags
    while True:
        while pos < n and _space(s[pos]):
            pos += 1
        if pos + 1 >= n or s[pos] != 60:  # '<'
            return SCAN_DECLINED
        if s[pos + 1] == 47:  # '</': the block's end tag, checked by the caller
            return pos
        name_start = pos + 1
        if not _name_start(s[name_start]):
            return SCAN_DECLINED
        name_end = name_start + 1
        while name_end < n and _name_char(s[name_end]):
            name_end += 1
        if name_end + 1 >= n or name_end - name_start > MAX_NAME:
            return SCAN_DECLINED
        if s[name_end] == 47 and s[name_end + 1] == 62:  # '<Name/>'
            if not _record(out, KIND_CHILD + FLAG_EMPTY, name_start, name_end, 0, 0):
                return SCAN_NO_MEMORY
            pos = name_end + 2
            continue
        if s[name_end] != 62:  # attributes, or a character no name holds
            return SCAN_DECLINED
        text_start = name_end + 1
        hit = <const uint8_t*>memchr(s + text_start, 60, <size_t>(n - text_start))
        if hit == NULL:
            return SCAN_DECLINED
        pos = hit - s
        if pos - text_start > MAX_TEXT:  # beyond the XML parser's bound: it reports that
            return SCAN_DECLINED
        # the end tag: '</' + the same name + '>'
        if pos + 3 + (name_end - name_start) > n or s[pos + 1] != 47 or memcmp(
                s + pos + 2, s + name_start, <size_t>(name_end - name_start)) != 0 or \
                s[pos + 2 + name_end - name_start] != 62:
            return SCAN_DECLINED
        flags = 0
        if lead and name_end - name_start == 12 and memcmp(s + name_start, b"WaveFormData",
                                                           12) == 0:
            flags = FLAG_SPAN
        else:
            for i in range(text_start, pos):
                c = s[i]
                if c < 32:
                    if c == 13:
                        flags = FLAG_CR
                    elif c != 9 and c != 10:
                        return SCAN_DECLINED
                elif c > 126 or c == 38 or c == 93:  # non-ASCII, '&', ']'
                    return SCAN_DECLINED
        if not _record(out, KIND_CHILD + flags, name_start, name_end, text_start, pos):
            return SCAN_NO_MEMORY
        pos += 3 + (name_end - name_start)


cdef Py_ssize_t _plain_name(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n,
                            const char** names, const Py_ssize_t* sizes,
                            Py_ssize_t count) noexcept nogil:
    """The length of the name starting at ``pos`` where it is one of ``names``, else 0."""
    cdef Py_ssize_t end = pos, size, k
    while end < n and _name_char(s[end]):
        end += 1
    size = end - pos
    for k in range(count):
        if sizes[k] == size and memcmp(s + pos, names[k], <size_t>size) == 0:
            return size
    return 0


cdef Py_ssize_t _scan(const uint8_t* s, Py_ssize_t n, const char** names,
                      const Py_ssize_t* sizes, Py_ssize_t count, Records* out) noexcept nogil:
    """The first pass: 0, SCAN_DECLINED or SCAN_NO_MEMORY."""
    cdef Py_ssize_t pos = 0, close, end, size
    cdef const uint8_t* hit
    cdef uint8_t c
    while True:
        hit = <const uint8_t*>memchr(s + pos, 60, <size_t>(n - pos))  # '<'
        if hit == NULL:
            return 0
        pos = hit - s
        if pos + 1 >= n:
            return SCAN_DECLINED
        c = s[pos + 1]
        if c == 33:  # '!': comment, CDATA section or DOCTYPE
            if n - pos >= 4 and memcmp(s + pos, b"<!--", 4) == 0:
                close = _find(s, pos + 4, n, b"-->", 3)
                if close < 0:
                    return SCAN_DECLINED
                pos = close + 3
            elif n - pos >= 9 and memcmp(s + pos, b"<![CDATA[", 9) == 0:
                close = _find(s, pos + 9, n, b"]]>", 3)
                if close < 0:
                    return SCAN_DECLINED
                pos = close + 3
            else:  # a DOCTYPE without an internal subset (one with '[' is not scanned)
                close = _tag_end(s, pos + 2, n)
                if close < 0 or memchr(s + pos, 91, <size_t>(close - pos)) != NULL:
                    return SCAN_DECLINED
                pos = close + 1
        elif c == 63:  # '?': processing instruction
            close = _find(s, pos + 2, n, b"?>", 2)
            if close < 0:
                return SCAN_DECLINED
            pos = close + 2
        elif n - pos >= 10 and memcmp(s + pos, b"<LeadData>", 10) == 0:
            if not _record(out, KIND_LEAD, pos + 10, 0, 0, 0):
                return SCAN_NO_MEMORY
            close = out.count - 1
            end = _block_children(s, pos + 10, n, True, out)
            if end < 0:
                return end
            if n - end < 11 or memcmp(s + end, b"</LeadData>", 11) != 0:
                return SCAN_DECLINED
            out.data[close * RECORD + 2] = end
            pos = end + 11
        elif count and _name_start(c) and _plain_name(s, pos + 1, n, names, sizes, count):
            size = _plain_name(s, pos + 1, n, names, sizes, count)
            if pos + 1 + size >= n or s[pos + 1 + size] != 62:  # not exactly '<Name>'
                return SCAN_DECLINED
            if not _record(out, KIND_PLAIN, pos + 2 + size, 0, 0, 0):
                return SCAN_NO_MEMORY
            close = out.count - 1
            end = _block_children(s, pos + 2 + size, n, False, out)
            if end < 0:
                return end
            if n - end < size + 3 or s[end + 1] != 47 or memcmp(
                    s + end + 2, s + pos + 1, <size_t>size) != 0 or s[end + 2 + size] != 62:
                return SCAN_DECLINED
            out.data[close * RECORD + 2] = end
            pos = end + 3 + size
        else:  # any other start or end tag
            if n - pos > 9 and memcmp(s + pos, b"<LeadData", 9) == 0 and \
                    not _name_char(s[pos + 9]):
                return SCAN_DECLINED  # a LeadData with attributes, or empty: not read here
            close = _tag_end(s, pos + 1, n)
            if close < 0:
                return SCAN_DECLINED
            pos = close + 1


cdef Py_ssize_t SCAN_NOGIL_FROM = 1 << 14  # bytes: below, the GIL hand-over costs more


def lead_blocks(const uint8_t[::1] document, tuple plain=()):
    """The ``LeadData`` elements of a document, read from its bytes: ``(blocks, fields,
    data_spans)`` with ``blocks`` (int64, shape (k, 2)) the byte range of each one's
    content, ``fields[i]`` its children's texts (see below) and ``data_spans``
    (int64, shape (m, 2)) the ranges of the ``WaveFormData`` texts, which ``fields``
    mark as ``#j``. None where the markup is not one this scan reads exactly.

    Elements named in ``plain`` (bytes) are read the same way: their block is listed
    with the others and its ``fields`` entry is the list of its children as
    ``(name, text)`` pairs in file order (every child, no span); an element of such a
    name that is not read so (attributes, ``<Name/>``, other markup) gives None too,
    so that every element of those names is listed when the scan succeeds.

    Only the plainest markup is read: ``<LeadData>`` without attributes, children
    ``<Name>text</Name>`` or ``<Name/>`` with ASCII names and texts of printable ASCII
    (no references, no ']'), whitespace between them. Anything else (an internal DTD
    subset, an unterminated comment, tag or section, any other child markup) gives
    None. Comments, CDATA sections and processing instructions are skipped, so a
    block is always an element's content when the document is well-formed, which
    the caller's parser checks on the rest; the document must be in an
    ASCII-compatible encoding."""
    cdef Py_ssize_t n = document.shape[0], count = len(plain), k, i, result
    cdef const uint8_t* s
    cdef const char* names[MAX_PLAIN]
    cdef Py_ssize_t sizes[MAX_PLAIN]
    cdef Records records
    cdef int64_t kind, name_start, name_end, text_start, text_end
    cdef list blocks = [], fields = [], data_spans = [], children = None
    cdef dict lead = None
    cdef bytes name_bytes
    if n == 0:
        return None
    if count > MAX_PLAIN:
        raise ValueError(f"at most {MAX_PLAIN} plain names")
    for k in range(count):
        name_bytes = plain[k]
        names[k] = name_bytes  # kept alive by the tuple
        sizes[k] = len(name_bytes)
    s = &document[0]
    records.data = NULL
    records.count = records.capacity = 0
    try:
        if n >= SCAN_NOGIL_FROM:
            with nogil:
                result = _scan(s, n, names, sizes, count, &records)
        else:
            result = _scan(s, n, names, sizes, count, &records)
        if result == SCAN_NO_MEMORY:
            raise MemoryError()
        if result == SCAN_DECLINED:
            return None
        for i in range(records.count):
            kind = records.data[i * RECORD]
            if kind == KIND_LEAD or kind == KIND_PLAIN:
                blocks += (records.data[i * RECORD + 1], records.data[i * RECORD + 2])
                if kind == KIND_LEAD:
                    lead, children = {}, None
                    fields.append(lead)
                else:
                    lead, children = None, []
                    fields.append(children)
                continue
            name_start = records.data[i * RECORD + 1]
            name_end = records.data[i * RECORD + 2]
            text_start = records.data[i * RECORD + 3]
            text_end = records.data[i * RECORD + 4]
            name = _name(s + name_start, name_end - name_start)
            if kind & FLAG_EMPTY:
                if children is not None:
                    children.append((name, ""))
                elif name not in lead:
                    lead[name] = ""
            elif kind & FLAG_SPAN:
                if name not in lead:
                    lead[name] = f"#{len(data_spans) // 2}"
                    data_spans += (text_start, text_end)
            elif children is not None or name not in lead:
                text = (<const char*>s)[text_start:text_end].decode("ascii")
                if kind & FLAG_CR:  # line ends as the XML parser reports them
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                if children is not None:
                    children.append((name, text))
                else:
                    lead[name] = text
    finally:
        free(records.data)
    # flat lists of ints: numpy converts them far faster than lists of pairs
    return (np.array(blocks, dtype=np.int64).reshape(-1, 2), fields,
            np.array(data_spans, dtype=np.int64).reshape(-1, 2))


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
        row[5 * i] = offset
        row[5 * i + 1] = produced
        row[5 * i + 2] = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
                          if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
        row[5 * i + 3] = skipped
        row[5 * i + 4] = crc32(dst + offset, <size_t>produced)
        offset += base64_capacity(end - start)


def decode_spans(const uint8_t[::1] document, const int64_t[:, ::1] spans):
    """Every span of ``document`` decoded as :func:`decode_base64` does, into one buffer:
    ``(data, table)`` with ``table[i] = (offset, produced, status, skipped, crc)`` (int64),
    ``data[offset:offset + produced]`` the bytes of span ``i`` and ``crc`` their CRC-32
    (``zlib.crc32``). Spans are checked against the document; the GIL is released
    when they are long."""
    cdef Py_ssize_t k = spans.shape[0], n = document.shape[0], i, total = 0, produced, skipped
    cdef int64_t start, end
    for i in range(k):
        start, end = spans[i, 0], spans[i, 1]
        if not 0 <= start <= end <= n:
            raise ValueError(f"span {i} ({start}, {end}) is outside the document")
        total += base64_capacity(end - start)
    cdef cnp.ndarray data = np.empty(total, dtype=np.uint8)
    cdef cnp.ndarray table = np.empty((k, 5), dtype=np.int64)
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(data)
    cdef int64_t* row = <int64_t*>cnp.PyArray_DATA(table)
    cdef const uint8_t* src = &document[0] if n else NULL
    if total >= SPANS_NOGIL_FROM:
        with nogil:
            _decode_spans(src, &spans[0, 0] if k else NULL, k, dst, row)
    else:  # a few kB: handing the GIL over would cost more
        _decode_spans(src, &spans[0, 0] if k else NULL, k, dst, row)
    data.flags.writeable = False
    table.flags.writeable = False
    return data, table


cdef Py_ssize_t DERIVED_NOGIL_FROM = 1 << 16  # samples: below, the GIL hand-over costs more


# The derived leads of I and II: little-endian int16 loads (memcpy, one instruction on
# little-endian machines) into four rows, a loop the compiler vectorises.
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline int32_t ecgingest_le16(const unsigned char* p) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    #else
        return (int16_t)(uint16_t)(p[0] | (p[1] << 8));
    #endif
    }
    static void ecgingest_derive(const unsigned char* restrict first,
                                 const unsigned char* restrict second, Py_ssize_t n,
                                 int32_t* restrict out) {
        Py_ssize_t j;
        for (j = 0; j < n; j++) {
            int32_t a = ecgingest_le16(first + 2 * j), b = ecgingest_le16(second + 2 * j);
            out[j] = 2 * (b - a);          /* III = II - I */
            out[n + j] = -(a + b);         /* aVR = -(I + II) / 2 */
            out[2 * n + j] = 2 * a - b;    /* aVL = I - II / 2 */
            out[3 * n + j] = 2 * b - a;    /* aVF = II - I / 2 */
        }
    }
    """
    void _derive "ecgingest_derive"(const uint8_t* first, const uint8_t* second, Py_ssize_t n,
                                    int32_t* out) noexcept nogil


def derive_limb_leads(const uint8_t[::1] first, const uint8_t[::1] second):
    """III, aVR, aVL, aVF in half units (exact integers: twice each formula) from leads
    I and II given as little-endian int16 bytes: an int32 array of shape (4, n), ``n``
    the shorter lead's samples, in one pass (without the GIL for long leads)."""
    cdef Py_ssize_t n = min(first.shape[0], second.shape[0]) // 2
    cdef cnp.ndarray block = np.empty((4, n), dtype=np.int32)
    cdef int32_t* out = <int32_t*>cnp.PyArray_DATA(block)
    if n == 0:
        return block
    if n >= DERIVED_NOGIL_FROM:
        with nogil:
            _derive(&first[0], &second[0], n, out)
    else:  # a 10 s lead takes microseconds: handing the GIL over would cost more
        _derive(&first[0], &second[0], n, out)
    return block
