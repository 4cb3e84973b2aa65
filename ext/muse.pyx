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

from cpython.unicode cimport PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

from cpython.ref cimport PyObject

cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr,
                                 PyObject* overflow_exception) except? -1.0

cimport cython

import sys

import numpy as np

cimport numpy as cnp

from _bytes cimport load_le16
from _base64 cimport BASE64_OK, BASE64_ONE_EXTRA, base64_capacity, base64_decode
from _handover cimport held_begin, held_end
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
            held_end()
            result = base64_decode(&text[0], n, dst, &produced, &skipped)
            held_begin()
    elif n:  # a lead's few kB take microseconds: handing the GIL over would cost more
        result = base64_decode(&text[0], n, dst, &produced, &skipped)
    status = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
              if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
    data = out[:produced]
    data.flags.writeable = False
    return status, data, skipped


# --------------------------------------------------------------------------- the document scan
#
# ``Schema.read`` reads a whole MUSE export from its bytes without the GIL: a strict
# reader of the plain subset of XML these exports are written in (elements without
# attributes, character data with the predefined entities and character references,
# CDATA sections, comments and processing instructions, an XML declaration and a
# DOCTYPE without an internal subset), in UTF-8, ISO-8859-1 or ASCII. It checks what
# an XML parser checks of that subset (names, end tags, characters, references,
# nesting) and declines (returns None) wherever a document leaves it, so the caller
# parses such a document with the hardened XML parser instead: a document is either
# read here exactly as that parser would read it, or not at all.
#
# While reading it keeps the values the schema (given by the format module) names:
# the first pass lists them as records of offsets, then decodes the base64 texts of
# the leads into one buffer with their CRC-32, all without the GIL; the second pass,
# with the GIL, turns the records into the few dicts, lists and numbers the format
# module builds its record from.

cdef enum:
    MAX_DEPTH = 64  # deeper documents are left to the XML parser (which allows 256)
    MAX_ENTRIES = 160
    MAX_HEADER_BLOCKS = 8
    MAX_FIELDS = 64  # per block: the first of each is kept (a bit per field)
    RECORD = 7  # int64 per record: kind, aux, name start, name end, text start, text end, flags
    SCAN_OK = 0
    SCAN_DECLINED = -1
    SCAN_NO_MEMORY = -3

# encodings of the bytes
cdef enum:
    ENC_UTF8 = 0
    ENC_LATIN1 = 1
    ENC_ASCII = 2  # an ASCII superset whose other bytes are not read here

# what an element is to the schema; containers are recorded at their start tag,
# values at their end tag
cdef enum:
    R_IGNORE = 0
    R_ROOT = 1
    R_HBLOCK = 2  # a block of header values (aux: its index)
    R_MBLOCK = 3  # a block of measurements (aux: its index)
    R_SBLOCK = 4  # a block of statements (aux: its index)
    R_STMT = 5
    R_QBLOCK = 6
    R_QRS = 7
    R_WAVE = 8
    R_LEAD = 9
    R_HFIELD = 10  # aux: the field's slot
    R_MFIELD = 11  # any child of a measurement block (aux: the block)
    R_STEXT = 12
    R_SFLAG = 13
    R_QFIELD = 14
    R_WFIELD = 15
    R_LFIELD = 16
    R_LDATA = 17  # a lead's base64 text: a span decoded in the first pass

# where a child's name is looked up, by its parent's role
cdef enum:
    CTX_NONE = -1
    CTX_ROOT = 0
    CTX_STMT_BLOCK = 1
    CTX_STMT = 2
    CTX_QRS_BLOCK = 3
    CTX_QRS = 4
    CTX_WAVE = 5
    CTX_LEAD = 6
    CTX_HEADER = 7  # + the header block's index
    CONTEXTS = CTX_HEADER + MAX_HEADER_BLOCKS

# text flags
cdef enum:
    T_CR = 1  # a carriage return (line ends are normalised)
    T_MARKUP = 2  # a reference, comment, CDATA section or processing instruction
    T_HIGH = 4  # a byte above 127


cdef struct Entry:
    const char* name
    Py_ssize_t size
    int role
    int aux
    bint numeric


# character classes of a byte in character data
cdef enum:
    C_TEXT = 0
    C_SPACE = 1
    C_SPECIAL = 2  # '<', '&', ']', CR
    C_BAD = 3  # a control character XML does not allow
    C_HIGH = 4

cdef uint8_t _CLASS[256]


cdef void _fill_classes():
    cdef int c
    for c in range(256):
        _CLASS[c] = C_HIGH if c >= 128 else C_BAD if c < 32 else C_TEXT
    _CLASS[9] = _CLASS[10] = _CLASS[32] = C_SPACE
    _CLASS[13] = _CLASS[60] = _CLASS[38] = _CLASS[93] = C_SPECIAL


_fill_classes()


cdef struct Scan:
    const uint8_t* s
    Py_ssize_t n
    int encoding
    int64_t* records
    Py_ssize_t count
    Py_ssize_t capacity


cdef bint _add(Scan* sc, int64_t kind, int64_t aux, int64_t a, int64_t b, int64_t c,
               int64_t d, int64_t flags) noexcept nogil:
    cdef int64_t* grown
    cdef Py_ssize_t capacity
    if sc.count == sc.capacity:
        capacity = sc.capacity * 2 if sc.capacity else 512
        grown = <int64_t*>realloc(sc.records, <size_t>capacity * RECORD * sizeof(int64_t))
        if grown == NULL:
            return False
        sc.records, sc.capacity = grown, capacity
    grown = sc.records + sc.count * RECORD
    grown[0], grown[1], grown[2], grown[3], grown[4], grown[5], grown[6] = \
        kind, aux, a, b, c, d, flags
    sc.count += 1
    return True


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


cdef inline bint _name_start(uint8_t c) noexcept nogil:
    return (65 <= c <= 90) or (97 <= c <= 122) or c == 95  # A-Z a-z _


cdef inline bint _name_char(uint8_t c) noexcept nogil:
    return _name_start(c) or (48 <= c <= 57) or c == 45 or c == 46  # 0-9 - .


cdef inline bint _space(uint8_t c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline Py_ssize_t _skip_space(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    while pos < n and _space(s[pos]):
        pos += 1
    return pos


cdef inline Py_ssize_t _name_end(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """The end of the (ASCII, unprefixed) name at ``pos``, or -1 where none starts there or
    it goes on with a character this scan does not read in names (':', non-ASCII)."""
    if pos >= n or not _name_start(s[pos]):
        return -1
    pos += 1
    while pos < n and _name_char(s[pos]):
        pos += 1
    if pos < n and (s[pos] == 58 or s[pos] >= 128):
        return -1
    return pos


cdef inline bint _char_ok(uint32_t c) noexcept nogil:
    """An XML 1.0 character."""
    return (c == 9 or c == 10 or c == 13 or 0x20 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD
            or 0x10000 <= c <= 0x10FFFF)


cdef Py_ssize_t _utf8(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n, uint32_t* code) noexcept nogil:
    """The length of the UTF-8 sequence of an XML character at ``pos`` (a byte >= 128), or
    0 where it is not one."""
    cdef uint8_t c = s[pos]
    cdef uint32_t v
    cdef Py_ssize_t k, i
    if 0xC2 <= c <= 0xDF:
        k, v = 2, c & 0x1F
    elif 0xE0 <= c <= 0xEF:
        k, v = 3, c & 0x0F
    elif 0xF0 <= c <= 0xF4:
        k, v = 4, c & 0x07
    else:
        return 0
    if pos + k > n:
        return 0
    for i in range(1, k):
        if s[pos + i] & 0xC0 != 0x80:
            return 0
        v = (v << 6) | (s[pos + i] & 0x3F)
    if (k == 3 and v < 0x800) or (k == 4 and v < 0x10000) or not _char_ok(v):
        return 0
    code[0] = v
    return k


cdef Py_ssize_t _chars(Scan* sc, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Check ``s[pos:end]`` holds only XML characters (in the document's encoding):
    0, or SCAN_DECLINED."""
    cdef uint8_t c
    cdef uint32_t code
    cdef Py_ssize_t k
    while pos < end:
        c = sc.s[pos]
        if c >= 128:
            if sc.encoding == ENC_ASCII:
                return SCAN_DECLINED
            if sc.encoding == ENC_UTF8:
                k = _utf8(sc.s, pos, end, &code)
                if k == 0:
                    return SCAN_DECLINED
                pos += k
                continue
        elif c < 32 and not _space(c):
            return SCAN_DECLINED
        pos += 1
    return 0


cdef Py_ssize_t _comment(Scan* sc, Py_ssize_t pos) noexcept nogil:
    """``pos`` at '<!--': the index after its '-->', or SCAN_DECLINED."""
    cdef Py_ssize_t close = _find(sc.s, pos + 4, sc.n, b"--", 2)
    if close < 0 or close + 2 >= sc.n or sc.s[close + 2] != 62:  # '--' only in '-->'
        return SCAN_DECLINED
    if _chars(sc, pos + 4, close) < 0:
        return SCAN_DECLINED
    return close + 3


cdef Py_ssize_t _pi(Scan* sc, Py_ssize_t pos) noexcept nogil:
    """``pos`` at '<?': the index after its '?>', or SCAN_DECLINED (a target named like
    'xml' in any case is left to the parser)."""
    cdef Py_ssize_t name_end = _name_end(sc.s, pos + 2, sc.n), close
    if name_end < 0 or name_end >= sc.n:
        return SCAN_DECLINED
    if name_end - pos - 2 >= 3 and (sc.s[pos + 2] | 32) == 120 and (sc.s[pos + 3] | 32) == 109 \
            and (sc.s[pos + 4] | 32) == 108:
        return SCAN_DECLINED
    if sc.s[name_end] == 63:  # '?': no content
        if name_end + 1 < sc.n and sc.s[name_end + 1] == 62:
            return name_end + 2
        return SCAN_DECLINED
    if not _space(sc.s[name_end]):
        return SCAN_DECLINED
    close = _find(sc.s, name_end, sc.n, b"?>", 2)
    if close < 0 or _chars(sc, name_end, close) < 0:
        return SCAN_DECLINED
    return close + 2


cdef Py_ssize_t _cdata(Scan* sc, Py_ssize_t pos, bint* text) noexcept nogil:
    """``pos`` at '<![CDATA[': the index after its ']]>', or SCAN_DECLINED; ``text`` set
    where it holds more than whitespace."""
    cdef Py_ssize_t close = _find(sc.s, pos + 9, sc.n, b"]]>", 3), i
    if close < 0 or _chars(sc, pos + 9, close) < 0:
        return SCAN_DECLINED
    for i in range(pos + 9, close):
        if not _space(sc.s[i]):
            text[0] = True
            break
    return close + 3


cdef extern from *:
    """
    static const char* ecgingest_entity_names[5] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    static const Py_ssize_t ecgingest_entity_sizes[5] = {4, 3, 3, 5, 5};
    static const unsigned int ecgingest_entity_chars[5] = {38, 60, 62, 34, 39};
    """
    const char* ENTITY_NAMES "ecgingest_entity_names"[5]
    const Py_ssize_t ENTITY_SIZES "ecgingest_entity_sizes"[5]
    const uint32_t ENTITY_CHARS "ecgingest_entity_chars"[5]


cdef Py_ssize_t _reference(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n,
                           uint32_t* code) noexcept nogil:
    """``pos`` at '&': the index after the ';' of a character reference or one of the five
    predefined entities (``code``: the character), or SCAN_DECLINED for anything else
    (an entity this scan does not expand is the parser's to refuse)."""
    cdef Py_ssize_t i = pos + 1, digits = 0, k
    cdef uint32_t v = 0
    cdef uint8_t c
    if i < n and s[i] == 35:  # '#'
        i += 1
        if i < n and s[i] == 120:  # 'x'
            i += 1
            while i < n and digits <= 8:
                c = s[i]
                if 48 <= c <= 57:
                    v = v * 16 + (c - 48)
                elif 97 <= (c | 32) <= 102:
                    v = v * 16 + ((c | 32) - 87)
                else:
                    break
                digits += 1
                i += 1
        else:
            while i < n and digits <= 8 and 48 <= s[i] <= 57:
                v = v * 10 + (s[i] - 48)
                digits += 1
                i += 1
        if digits == 0 or digits > 8 or i >= n or s[i] != 59 or not _char_ok(v):
            return SCAN_DECLINED
        code[0] = v
        return i + 1
    for k in range(5):  # the predefined entities
        if _is(s, i, n, ENTITY_NAMES[k], ENTITY_SIZES[k]):
            code[0] = ENTITY_CHARS[k]
            return i + ENTITY_SIZES[k]
    return SCAN_DECLINED


cdef bint _is(const uint8_t* s, Py_ssize_t pos, Py_ssize_t n, const char* word,
              Py_ssize_t m) noexcept nogil:
    return n - pos >= m and memcmp(s + pos, word, <size_t>m) == 0


cdef Py_ssize_t _quoted(Scan* sc, Py_ssize_t pos, bint pubid) noexcept nogil:
    """``pos`` at a quote: the index after the closing one, or SCAN_DECLINED."""
    cdef uint8_t q
    cdef Py_ssize_t close, i
    cdef const uint8_t* hit
    if pos >= sc.n or (sc.s[pos] != 34 and sc.s[pos] != 39):
        return SCAN_DECLINED
    q = sc.s[pos]
    hit = <const uint8_t*>memchr(sc.s + pos + 1, q, <size_t>(sc.n - pos - 1))
    if hit == NULL:
        return SCAN_DECLINED
    close = hit - sc.s
    if pubid:  # PubidChar
        for i in range(pos + 1, close):
            if not (_name_char(sc.s[i]) or memchr(b" \r\n'()+,/:=?;!*#@$%", sc.s[i], 20) != NULL):
                return SCAN_DECLINED
    elif _chars(sc, pos + 1, close) < 0:
        return SCAN_DECLINED
    return close + 1


cdef Py_ssize_t _doctype(Scan* sc, Py_ssize_t pos) noexcept nogil:
    """``pos`` at '<!DOCTYPE': the index after it, or SCAN_DECLINED (an internal subset is
    never read here: entity declarations are the parser's to refuse)."""
    cdef Py_ssize_t p = pos + 9, q
    if p >= sc.n or not _space(sc.s[p]):
        return SCAN_DECLINED
    p = _skip_space(sc.s, p, sc.n)
    p = _name_end(sc.s, p, sc.n)
    if p < 0:
        return SCAN_DECLINED
    q = _skip_space(sc.s, p, sc.n)
    if q > p and (_is(sc.s, q, sc.n, b"SYSTEM", 6) or _is(sc.s, q, sc.n, b"PUBLIC", 6)):
        p = q + 6
        if p >= sc.n or not _space(sc.s[p]):
            return SCAN_DECLINED
        if sc.s[q] == 80:  # PUBLIC: a public id, then the system literal
            p = _quoted(sc, _skip_space(sc.s, p, sc.n), True)
            if p < 0 or p >= sc.n or not _space(sc.s[p]):
                return SCAN_DECLINED
        p = _quoted(sc, _skip_space(sc.s, p, sc.n), False)
        if p < 0:
            return SCAN_DECLINED
        q = _skip_space(sc.s, p, sc.n)
    if q >= sc.n or sc.s[q] != 62:  # an internal subset, or anything else
        return SCAN_DECLINED
    return q + 1


cdef Py_ssize_t _misc(Scan* sc, Py_ssize_t pos) noexcept nogil:
    """Whitespace, comments and processing instructions from ``pos``: the index of what
    follows, or SCAN_DECLINED."""
    while True:
        pos = _skip_space(sc.s, pos, sc.n)
        if _is(sc.s, pos, sc.n, b"<!--", 4):
            pos = _comment(sc, pos)
        elif _is(sc.s, pos, sc.n, b"<?", 2):
            pos = _pi(sc, pos)
        else:
            return pos
        if pos < 0:
            return SCAN_DECLINED


cdef struct Open:
    Py_ssize_t name_start
    Py_ssize_t name_size
    Py_ssize_t text_start
    int role
    int aux
    uint64_t seen
    int64_t flags
    bint text
    bint child


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


@cython.auto_pickle(False)
cdef class Schema:
    """The elements a MUSE read keeps, named by the format module's tables, and the
    reader of documents by them (see the section comment above)."""

    cdef Entry entries[MAX_ENTRIES]
    cdef Py_ssize_t first[CONTEXTS + 1]
    cdef list names  # kept alive: the entries point into these bytes
    cdef list header_names
    cdef list header_numeric
    cdef list wave_names
    cdef list wave_numeric
    cdef Py_ssize_t lead_size
    cdef list lead_numeric
    cdef list qrs_numeric
    cdef object number
    cdef bytes root
    cdef const char* root_name
    cdef Py_ssize_t root_size
    cdef bytes endsline
    cdef char encoding_names[16][40]  # lowercase
    cdef Py_ssize_t encoding_sizes[16]
    cdef int encoding_kinds[16]
    cdef Py_ssize_t encoding_count
    cdef Py_ssize_t header_blocks

    def __init__(self, str root, tuple headers, tuple measurements, tuple statements,
                 tuple qrs, tuple waveform, numeric, dict encodings, number):
        cdef list table = []  # (context, name, role, aux, numeric)
        cdef Py_ssize_t k, i, slot = 0
        if len(headers) > MAX_HEADER_BLOCKS:
            raise ValueError(f"at most {MAX_HEADER_BLOCKS} header blocks")
        self.number = number
        self.root = root.encode("ascii")
        self.root_name, self.root_size = self.root, len(self.root)
        self.header_blocks = len(headers)
        self.header_names = [[sys.intern(name) for name in fields] for _, fields in headers]
        self.header_numeric = [[name in numeric for name in fields] for _, fields in headers]
        for k, (block, fields) in enumerate(headers):
            table.append((CTX_ROOT, block, R_HBLOCK, k, False))
            if len(fields) > MAX_FIELDS:
                raise ValueError(f"at most {MAX_FIELDS} fields per block")
            for i, name in enumerate(fields):
                table.append((CTX_HEADER + k, name, R_HFIELD, i, name in numeric))
        for k, block in enumerate(measurements[:2]):
            table.append((CTX_ROOT, block, R_MBLOCK, k, False))
        blocks, statement, text, flag, ends = statements
        for k, block in enumerate(blocks[:2]):
            table.append((CTX_ROOT, block, R_SBLOCK, k, False))
        table += [(CTX_STMT_BLOCK, statement, R_STMT, 0, False),
                  (CTX_STMT, text, R_STEXT, 0, False), (CTX_STMT, flag, R_SFLAG, 1, False)]
        self.endsline = ends.encode("ascii")
        block, item, fields = qrs
        table += [(CTX_ROOT, block, R_QBLOCK, 0, False), (CTX_QRS_BLOCK, item, R_QRS, 0, False)]
        table += [(CTX_QRS, name, R_QFIELD, i, name in numeric) for i, name in enumerate(fields)]
        self.qrs_numeric = [name in numeric for name in fields]
        block, fields, lead, lead_fields, data = waveform
        table.append((CTX_ROOT, block, R_WAVE, 0, False))
        table += [(CTX_WAVE, name, R_WFIELD, i, name in numeric) for i, name in enumerate(fields)]
        table.append((CTX_WAVE, lead, R_LEAD, 0, False))
        table += [(CTX_LEAD, name, R_LDATA if name == data else R_LFIELD, i, name in numeric)
                  for i, name in enumerate(lead_fields)]
        self.wave_names = [sys.intern(name) for name in fields]
        self.wave_numeric = [name in numeric for name in fields]
        self.lead_size = len(lead_fields)
        self.lead_numeric = [name in numeric for name in lead_fields]
        if len(fields) > MAX_FIELDS or len(lead_fields) > MAX_FIELDS or len(table) > MAX_ENTRIES:
            raise ValueError("schema too large")
        table.sort(key=lambda row: row[0])
        self.names = []
        for k in range(CONTEXTS + 1):
            self.first[k] = len(table)
        for i, (context, name, role, aux, is_numeric) in enumerate(table):
            encoded = name.encode("ascii")
            self.names.append(encoded)
            self.entries[i].name = <const char*>(<bytes>encoded)
            self.entries[i].size = len(encoded)
            self.entries[i].role = role
            self.entries[i].aux = aux
            self.entries[i].numeric = is_numeric
            if self.first[context] > i:
                self.first[context] = i
        for k in range(CONTEXTS - 1, -1, -1):  # an empty context ends where the next starts
            if self.first[k] > self.first[k + 1]:
                self.first[k] = self.first[k + 1]
        if len(encodings) > 16:
            raise ValueError("at most 16 encodings")
        self.encoding_count = 0
        for name, kind in encodings.items():
            encoded = name.lower().encode("ascii")
            if len(encoded) >= 40:
                raise ValueError(f"encoding name {name!r} too long")
            memcpy(self.encoding_names[self.encoding_count], <const char*>(<bytes>encoded),
                   len(encoded))
            self.encoding_sizes[self.encoding_count] = len(encoded)
            self.encoding_kinds[self.encoding_count] = (
                ENC_UTF8 if kind == "utf-8" else ENC_LATIN1 if kind == "latin-1" else ENC_ASCII)
            self.encoding_count += 1

    def read(self, const uint8_t[::1] document, bint samples=True):
        """The schema's values of a document, read from its bytes, or None where the
        document is not in the plain markup read here (see above):
        ``(headers, measurements, statements, qrs, waveforms, data, table)``.

        ``headers[k]``: name -> value of header block ``k`` (the first of each name);
        ``measurements[k]``: name -> text of every child of measurement block ``k`` (the
        last of each name); ``statements[k]``: ``[text, ends_line]`` of each statement of
        statement block ``k``; ``qrs``: ``[number, type, time]`` of each QRS; waveforms:
        ``(fields, leads)`` each, ``leads`` the lists of the lead fields in table order.
        Blocks not in the document are None, the first block of each name is read.
        Texts are stripped; numeric fields are numbers (see :func:`_number`). A lead's
        base64 text is the index ``i`` of its row ``table[i] = (offset, produced,
        status, size, crc)``: its bytes ``data[offset:offset + produced]``, the
        decoder's status, the text's size and the bytes' CRC-32 (with ``samples``
        false nothing is decoded and ``table`` is empty)."""
        return _read(self, document, samples)

    cdef inline void _lookup(self, int context, const uint8_t* name, Py_ssize_t size,
                             int* role, int* aux) noexcept nogil:
        cdef Py_ssize_t i
        role[0] = R_IGNORE
        if context < 0:
            return
        for i in range(self.first[context], self.first[context + 1]):
            if self.entries[i].size == size and memcmp(self.entries[i].name, name,
                                                       <size_t>size) == 0:
                role[0], aux[0] = self.entries[i].role, self.entries[i].aux
                return

    cdef Py_ssize_t _prolog(self, Scan* sc) noexcept nogil:
        """The XML declaration (the document's encoding) and what precedes the root: the
        index of the root's '<', or SCAN_DECLINED."""
        cdef const uint8_t* s = sc.s
        cdef Py_ssize_t n = sc.n, pos = 0, p, q, start, k
        cdef bint bom = False, doctype = False
        if _is(s, 0, n, b"\xef\xbb\xbf", 3):
            pos, bom = 3, True
        sc.encoding = ENC_UTF8
        if _is(s, pos, n, b"<?xml", 5) and pos + 5 < n and _space(s[pos + 5]):
            p = _skip_space(s, pos + 5, n)
            if not _is(s, p, n, b"version", 7):
                return SCAN_DECLINED
            p = _skip_space(s, p + 7, n)
            if p >= n or s[p] != 61:
                return SCAN_DECLINED
            p = _skip_space(s, p + 1, n)
            if not ((_is(s, p, n, b'"1.0"', 5) or _is(s, p, n, b"'1.0'", 5))):
                return SCAN_DECLINED
            p += 5
            q = _skip_space(s, p, n)
            if q > p and _is(s, q, n, b"encoding", 8):
                p = _skip_space(s, q + 8, n)
                if p >= n or s[p] != 61:
                    return SCAN_DECLINED
                p = _skip_space(s, p + 1, n)
                if p >= n or (s[p] != 34 and s[p] != 39):
                    return SCAN_DECLINED
                start = p + 1
                q = start
                while q < n and (_name_char(s[q])):
                    q += 1
                if q == start or q >= n or s[q] != s[p] or not (
                        65 <= s[start] <= 90 or 97 <= s[start] <= 122):
                    return SCAN_DECLINED
                sc.encoding = self._encoding(s + start, q - start)
                if sc.encoding < 0 or (bom and sc.encoding != ENC_UTF8):
                    return SCAN_DECLINED
                p = q + 1
                q = _skip_space(s, p, n)
            if q > p and _is(s, q, n, b"standalone", 10):
                p = _skip_space(s, q + 10, n)
                if p >= n or s[p] != 61:
                    return SCAN_DECLINED
                p = _skip_space(s, p + 1, n)
                if _is(s, p, n, b'"yes"', 5) or _is(s, p, n, b"'yes'", 5):
                    p += 5
                elif _is(s, p, n, b'"no"', 4) or _is(s, p, n, b"'no'", 4):
                    p += 4
                else:
                    return SCAN_DECLINED
                q = _skip_space(s, p, n)
            if not _is(s, q, n, b"?>", 2):
                return SCAN_DECLINED
            pos = q + 2
        while True:
            pos = _misc(sc, pos)
            if pos < 0:
                return SCAN_DECLINED
            if not doctype and _is(s, pos, n, b"<!DOCTYPE", 9):
                pos = _doctype(sc, pos)
                if pos < 0:
                    return SCAN_DECLINED
                doctype = True
                continue
            if pos + 1 < n and s[pos] == 60 and _name_start(s[pos + 1]):
                return pos
            return SCAN_DECLINED

    cdef int _encoding(self, const uint8_t* name, Py_ssize_t size) noexcept nogil:
        cdef char lower[40]
        cdef Py_ssize_t i
        if size >= 40:
            return -1
        for i in range(size):
            lower[i] = <char>(name[i] | 32 if 65 <= name[i] <= 90 else name[i])
        for i in range(self.encoding_count):
            if self.encoding_sizes[i] == size and memcmp(self.encoding_names[i], lower,
                                                         <size_t>size) == 0:
                return self.encoding_kinds[i]
        return -1

    cdef Py_ssize_t _tree(self, Scan* sc, Py_ssize_t pos) noexcept nogil:
        """The root element from ``pos`` (its '<'): the index after its end tag, or
        SCAN_DECLINED / SCAN_NO_MEMORY. Records the schema's elements (see Schema.read)."""
        cdef const uint8_t* s = sc.s
        cdef Py_ssize_t n = sc.n, depth = 0, name_end, p, k, end, data_count = 0
        cdef Open stack[MAX_DEPTH]
        cdef Open* top
        cdef Open* parent
        cdef int role, aux, context
        cdef uint8_t c, cls
        cdef uint32_t code
        cdef uint64_t bit
        cdef bint empty, text
        cdef const uint8_t* hit
        cdef int state = 0  # 0: a start tag at pos, 1: content of the top element, 2: its end
        while True:
          if state == 0:
            # ---- a start tag at pos
            name_end = _name_end(s, pos + 1, n)
            if name_end < 0:
                return SCAN_DECLINED
            p = _skip_space(s, name_end, n)
            if p + 1 < n and s[p] == 47 and s[p + 1] == 62:  # '/>'
                empty, p = True, p + 2
            elif p < n and s[p] == 62:
                empty, p = False, p + 1
            else:  # attributes (not read here), or not a tag
                return SCAN_DECLINED
            if depth == MAX_DEPTH:
                return SCAN_DECLINED
            role, aux = R_IGNORE, 0
            if depth == 0:
                if name_end - pos - 1 != self.root_size or memcmp(
                        s + pos + 1, self.root_name, <size_t>self.root_size) != 0:
                    return SCAN_DECLINED  # another root: the parser's reading says which
                role = R_ROOT
            else:
                parent = &stack[depth - 1]
                parent.child = True
                context = (CTX_ROOT if parent.role == R_ROOT else CTX_HEADER + parent.aux
                           if parent.role == R_HBLOCK else CTX_STMT_BLOCK
                           if parent.role == R_SBLOCK else CTX_STMT if parent.role == R_STMT
                           else CTX_QRS_BLOCK if parent.role == R_QBLOCK else CTX_QRS
                           if parent.role == R_QRS else CTX_WAVE if parent.role == R_WAVE
                           else CTX_LEAD if parent.role == R_LEAD else CTX_NONE)
                if parent.role == R_MBLOCK:
                    role, aux = R_MFIELD, parent.aux
                else:
                    self._lookup(context, s + pos + 1, name_end - pos - 1, &role, &aux)
                if R_HBLOCK <= role <= R_QBLOCK and role != R_STMT:  # the first block of each
                    bit = (<uint64_t>1) << ((role - R_HBLOCK) * 8 + aux)
                    if parent.seen & bit:
                        role = R_IGNORE
                    else:
                        parent.seen |= bit
                if R_HBLOCK <= role <= R_LEAD:
                    if not _add(sc, role, aux, pos + 1, name_end, 0, 0, 0):
                        return SCAN_NO_MEMORY
            top = &stack[depth]
            depth += 1
            top.name_start, top.name_size = pos + 1, name_end - pos - 1
            top.text_start, top.role, top.aux = p, role, aux
            top.seen, top.flags, top.text, top.child = 0, 0, False, False
            pos = p
            if empty:
                end, state = p, 2
            else:
                state = 1
            continue
          if state == 1:
                # ---- the content of the element on top, up to its end tag
                end = -1
                while True:
                    top = &stack[depth - 1]
                    if top.role == R_LDATA and not top.child:
                        # a base64 text: checked by its decoder (any byte but base64 and
                        # whitespace stops the scan there), not here
                        hit = <const uint8_t*>memchr(s + pos, 60, <size_t>(n - pos))
                        if hit == NULL:
                            return SCAN_DECLINED
                        pos = hit - s
                    text = False
                    while pos < n:
                        c = s[pos]
                        cls = _CLASS[c]
                        if cls == C_TEXT:
                            text = True
                            pos += 1
                        elif cls == C_SPACE:
                            pos += 1
                        elif cls == C_HIGH:
                            if sc.encoding == ENC_ASCII:
                                return SCAN_DECLINED
                            if sc.encoding == ENC_UTF8:
                                k = _utf8(s, pos, n, &code)
                                if k == 0:
                                    return SCAN_DECLINED
                                pos += k
                            else:
                                pos += 1
                            text = True
                            top.flags |= T_HIGH
                        elif cls == C_BAD:
                            return SCAN_DECLINED
                        elif c == 13:
                            top.flags |= T_CR
                            pos += 1
                        elif c == 93:  # ']'
                            if _is(s, pos, n, b"]]>", 3):
                                return SCAN_DECLINED
                            text = True
                            pos += 1
                        elif c == 38:  # '&'
                            pos = _reference(s, pos, n, &code)
                            if pos < 0:
                                return SCAN_DECLINED
                            text = True
                            top.flags |= T_MARKUP
                        else:  # '<'
                            break
                    if text:
                        top.text = True
                    if pos + 1 >= n:
                        return SCAN_DECLINED
                    c = s[pos + 1]
                    if c == 47:  # '</': the end tag
                        end = pos
                        p = pos + 2
                        if n - p < top.name_size or memcmp(s + p, s + top.name_start,
                                                           <size_t>top.name_size) != 0:
                            return SCAN_DECLINED
                        p = _skip_space(s, p + top.name_size, n)
                        if p >= n or s[p] != 62:
                            return SCAN_DECLINED
                        p += 1
                        break
                    if c == 33:  # '<!'
                        if _is(s, pos, n, b"<!--", 4):
                            pos = _comment(sc, pos)
                        elif _is(s, pos, n, b"<![CDATA[", 9):
                            text = False
                            pos = _cdata(sc, pos, &text)
                            if text:
                                top.text = True
                        else:
                            return SCAN_DECLINED
                        if pos < 0:
                            return SCAN_DECLINED
                        top.flags |= T_MARKUP
                    elif c == 63:  # '<?'
                        pos = _pi(sc, pos)
                        if pos < 0:
                            return SCAN_DECLINED
                        top.flags |= T_MARKUP
                    else:  # a child's start tag
                        break
                state = 0 if end < 0 else 2  # a child's start tag, or the end tag
                continue
          if True:
            # ---- the element on top ends: content s[text_start:end], then p
            top = &stack[depth - 1]
            if top.child and (top.text or top.role == R_LDATA):  # mixed content: the parser's
                return SCAN_DECLINED
            if top.child:  # a value's text is what precedes its first child: whitespace
                end = top.text_start
                top.flags = 0
            role = top.role
            if role >= R_HFIELD:
                parent = &stack[depth - 2]
                bit = (<uint64_t>1) << top.aux
                if role == R_MFIELD or role == R_SFLAG or not (parent.seen & bit):
                    parent.seen |= bit
                    if role == R_LDATA:
                        if top.flags & T_MARKUP:
                            return SCAN_DECLINED
                        k = data_count
                        data_count += 1
                    else:
                        k = top.name_start
                    if not _add(sc, role, top.aux, k, top.name_start + top.name_size,
                                top.text_start, end, top.flags):
                        return SCAN_NO_MEMORY
            depth -= 1
            pos = p
            if depth == 0:
                return pos
            state = 1


cdef enum:
    ROW = 5  # a decoded span: offset, produced, status, skipped, crc


cdef Py_ssize_t _decode_all(Scan* sc, uint8_t* out, int64_t* rows) noexcept nogil:
    """Decode every lead text recorded, one after another into ``out``: 0, or
    SCAN_DECLINED where a text holds more than base64 and whitespace (the parser then
    reads the document, and the decoder that text, for the same warnings)."""
    cdef Py_ssize_t i, j = 0, offset = 0, produced, skipped, start, end
    cdef int64_t* r
    cdef int result
    for i in range(sc.count):
        r = sc.records + i * RECORD
        if r[0] != R_LDATA:
            continue
        start, end = r[4], r[5]
        produced = skipped = 0
        result = BASE64_OK
        if end > start:
            result = base64_decode(sc.s + start, end - start, out + offset, &produced, &skipped)
        if skipped:
            return SCAN_DECLINED
        rows[ROW * j] = offset
        rows[ROW * j + 1] = produced
        rows[ROW * j + 2] = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
                             if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
        rows[ROW * j + 3] = end - start
        rows[ROW * j + 4] = crc32(out + offset, <size_t>produced)
        offset += produced
        j += 1
    return 0


cdef Py_ssize_t SCAN_NOGIL_FROM = 1 << 14  # bytes: below, the GIL hand-over costs more


cdef str _decoded(const uint8_t* s, Py_ssize_t start, Py_ssize_t end, int encoding):
    if encoding == ENC_UTF8:
        return PyUnicode_DecodeUTF8(<const char*>s + start, end - start, NULL)
    return PyUnicode_DecodeLatin1(<const char*>s + start, end - start, NULL)


cdef inline Py_ssize_t _copy(const uint8_t* s, Py_ssize_t i, Py_ssize_t end, uint8_t* out,
                             Py_ssize_t* k, int encoding) noexcept:
    """Copy the character at ``i`` to ``out[k]`` as UTF-8, line ends normalised ('\\r\\n'
    and '\\r' to '\\n'): the index after it."""
    cdef uint8_t c = s[i]
    if c == 13:
        out[k[0]] = 10
        k[0] += 1
        return i + 2 if i + 1 < end and s[i + 1] == 10 else i + 1
    if c >= 128 and encoding != ENC_UTF8:
        out[k[0]], out[k[0] + 1] = 0xC0 | (c >> 6), 0x80 | (c & 0x3F)
        k[0] += 2
    else:
        out[k[0]] = c
        k[0] += 1
    return i + 1


cdef str _marked_text(const uint8_t* s, Py_ssize_t start, Py_ssize_t end, int encoding):
    """A text holding references, CDATA sections, comments, processing instructions or
    carriage returns, as the XML parser reports it (the scan checked its markup)."""
    cdef uint8_t* out = <uint8_t*>malloc(<size_t>(4 * (end - start) + 8))
    cdef Py_ssize_t k = 0, i = start, close
    cdef uint32_t code
    cdef uint8_t c
    if out == NULL:
        raise MemoryError()
    try:
        while i < end:
            c = s[i]
            if c == 60:  # '<'
                if _is(s, i, end, b"<![CDATA[", 9):
                    close = _find(s, i + 9, end, b"]]>", 3)
                    i = i + 9
                    while i < close:  # copied as it is, line ends aside
                        i = _copy(s, i, close, out, &k, encoding)
                    i = close + 3
                elif _is(s, i, end, b"<!--", 4):
                    i = _find(s, i + 4, end, b"-->", 3) + 3
                else:  # '<?'
                    i = _find(s, i + 2, end, b"?>", 2) + 2
                continue
            if c == 38:  # '&'
                i = _reference(s, i, end, &code)
                if code < 0x80:
                    out[k] = <uint8_t>code
                    k += 1
                elif code < 0x800:
                    out[k], out[k + 1] = 0xC0 | (code >> 6), 0x80 | (code & 0x3F)
                    k += 2
                elif code < 0x10000:
                    out[k], out[k + 1], out[k + 2] = (0xE0 | (code >> 12),
                                                      0x80 | ((code >> 6) & 0x3F),
                                                      0x80 | (code & 0x3F))
                    k += 3
                else:
                    out[k], out[k + 1], out[k + 2], out[k + 3] = (
                        0xF0 | (code >> 18), 0x80 | ((code >> 12) & 0x3F),
                        0x80 | ((code >> 6) & 0x3F), 0x80 | (code & 0x3F))
                    k += 4
                continue
            i = _copy(s, i, end, out, &k, encoding)
        return PyUnicode_DecodeUTF8(<const char*>out, k, NULL)
    finally:
        free(out)


cdef object _text(const uint8_t* s, int64_t start, int64_t end, int64_t flags, int encoding):
    """A value's text, stripped as ``str.strip`` does."""
    if flags & (T_CR | T_MARKUP):
        return _marked_text(s, start, end, encoding).strip()
    while start < end and _space(s[start]):
        start += 1
    while end > start and _space(s[end - 1]):
        end -= 1
    if flags & T_HIGH:  # other whitespace ('\xa0' ...) is only stripped by str.strip
        return _decoded(s, start, end, encoding).strip()
    return PyUnicode_DecodeLatin1(<const char*>s + start, end - start, NULL)


cdef object _number(const uint8_t* s, int64_t start, int64_t end, int64_t flags, int encoding,
                    object convert):
    """A numeric value as ``convert`` (the format's number reader) reads its stripped
    text: read here for plain digits (up to 15: an int) and plain decimals ``d+.d*`` (a
    float), where that reader gives the same, None when empty; any other text through
    ``convert``."""
    cdef int64_t i, point = -1
    cdef long long value = 0
    cdef char buffer[32]
    cdef double real
    if flags == 0:
        while start < end and _space(s[start]):
            start += 1
        while end > start and _space(s[end - 1]):
            end -= 1
        if start == end:
            return None
        for i in range(start, end):
            if s[i] == 46 and point < 0 and i > start:
                point = i
            elif not 48 <= s[i] <= 57:
                point = -2
                break
        if point == -1 and end - start <= 15:
            for i in range(start, end):
                value = value * 10 + (s[i] - 48)
            return value
        if point >= 0 and end - start < 21:
            memcpy(buffer, s + start, <size_t>(end - start))
            buffer[end - start] = 0
            real = PyOS_string_to_double(buffer, NULL, NULL)
            if real <= 1e15:
                return real
    text = _text(s, start, end, flags, encoding)
    return convert(text) if text else None


cdef inline object _value(Schema schema, const uint8_t* s, int64_t* r, bint numeric,
                          int encoding):
    if numeric:
        return _number(s, r[4], r[5], r[6], encoding, schema.number)
    return _text(s, r[4], r[5], r[6], encoding)


cdef Py_ssize_t _scan_document(Schema schema, Scan* sc, uint8_t* out, int64_t** rows,
                               bint samples) noexcept nogil:
    """Both nogil steps: the count of lead texts decoded, or SCAN_DECLINED / SCAN_NO_MEMORY."""
    cdef Py_ssize_t pos = schema._prolog(sc), i, count = 0, result
    if pos < 0:
        return pos
    pos = schema._tree(sc, pos)
    if pos < 0:
        return pos
    if _misc(sc, pos) != sc.n:  # anything but whitespace, comments, PIs after the root
        return SCAN_DECLINED
    if not samples:
        return 0
    for i in range(sc.count):
        if sc.records[i * RECORD] == R_LDATA:
            count += 1
    rows[0] = <int64_t*>malloc(<size_t>(count * ROW + 1) * sizeof(int64_t))
    if rows[0] == NULL:
        return SCAN_NO_MEMORY
    result = _decode_all(sc, out, rows[0])
    return result if result < 0 else count


cdef bint _endsline(Schema schema, const uint8_t* s, int64_t* r, int encoding):
    """Whether a ``StmtFlag`` text is the end-of-line flag (``str.upper`` equality)."""
    cdef int64_t start = r[4], end = r[5], i
    if r[6] == 0:
        while start < end and _space(s[start]):
            start += 1
        while end > start and _space(s[end - 1]):
            end -= 1
        if end - start != len(schema.endsline):
            return False
        for i in range(end - start):
            if (s[start + i] & ~32 if 97 <= s[start + i] <= 122 else s[start + i]) != \
                    (<const uint8_t*><const char*>schema.endsline)[i]:
                return False
        return True
    return _text(s, start, end, r[6], encoding).upper() == schema.endsline.decode("ascii")


def _read(Schema schema, const uint8_t[::1] document, bint samples):
    cdef Py_ssize_t n = document.shape[0], result, i, count_data = 0
    cdef Scan sc
    cdef int64_t* r
    cdef int64_t* rows = NULL
    cdef cnp.ndarray data
    cdef uint8_t* out
    cdef list headers, measurements, statements, waveforms = [], leads = None
    cdef list qrs = None, statement = None, item = None, lead = None
    cdef dict header = None, wave = None, measured = None
    cdef list stated = None, header_names = None, header_numeric = None
    cdef int64_t kind, aux
    cdef const uint8_t* s
    if n == 0:
        return None
    s = &document[0]
    sc.s, sc.n, sc.records, sc.count, sc.capacity = s, n, NULL, 0, 0
    data = np.empty(base64_capacity(n) if samples else 0, dtype=np.uint8)
    out = <uint8_t*>cnp.PyArray_DATA(data)
    try:
        if n >= SCAN_NOGIL_FROM:
            with nogil:
                held_end()
                result = _scan_document(schema, &sc, out, &rows, samples)
                held_begin()
        else:
            result = _scan_document(schema, &sc, out, &rows, samples)
        if result == SCAN_NO_MEMORY:
            raise MemoryError()
        if result < 0:
            return None
        count_data = result
        headers = [None] * schema.header_blocks
        measurements = [None, None]
        statements = [None, None]
        for i in range(sc.count):
            r = sc.records + i * RECORD
            kind, aux = r[0], r[1]
            if kind == R_LFIELD or kind == R_LDATA:
                lead[aux] = (r[2] if kind == R_LDATA else
                             _value(schema, s, r, schema.lead_numeric[aux], sc.encoding))
            elif kind == R_QFIELD:
                item[aux] = _value(schema, s, r, schema.qrs_numeric[aux], sc.encoding)
            elif kind == R_MFIELD:
                measured = measurements[aux]
                measured[_name(s + r[2], r[3] - r[2])] = _text(s, r[4], r[5], r[6], sc.encoding)
            elif kind == R_HFIELD:
                header[header_names[aux]] = _value(schema, s, r, header_numeric[aux], sc.encoding)
            elif kind == R_LEAD:
                lead = [None] * schema.lead_size
                leads.append(lead)
            elif kind == R_QRS:
                item = [None, None, None]
                qrs.append(item)
            elif kind == R_STMT:
                statement = [None, False]
                stated.append(statement)
            elif kind == R_STEXT:
                statement[0] = _text(s, r[4], r[5], r[6], sc.encoding)
            elif kind == R_SFLAG:
                if not statement[1] and _endsline(schema, s, r, sc.encoding):
                    statement[1] = True
            elif kind == R_WFIELD:
                wave[schema.wave_names[aux]] = _value(schema, s, r, schema.wave_numeric[aux], sc.encoding)
            elif kind == R_WAVE:
                wave, leads, lead = {}, [], None
                waveforms.append((wave, leads))
            elif kind == R_HBLOCK:
                header = {}
                headers[aux] = header
                header_names = schema.header_names[aux]
                header_numeric = schema.header_numeric[aux]
            elif kind == R_MBLOCK:
                measurements[aux] = {}
            elif kind == R_SBLOCK:
                stated = []
                statements[aux] = stated
            elif kind == R_QBLOCK:
                qrs = []
        table = [(rows[ROW * i], rows[ROW * i + 1], rows[ROW * i + 2], rows[ROW * i + 3],
                  rows[ROW * i + 4]) for i in range(count_data)] if samples else []
    finally:
        free(sc.records)
        free(rows)
    data.flags.writeable = False
    return headers, measurements, statements, qrs, waveforms, data, table

# samples: below (a 10 s lead's pass takes microseconds), releasing the GIL costs more
# than the pass (a waiting thread takes it, and this one then waits for its held stretch)
cdef Py_ssize_t DERIVED_NOGIL_FROM = 1 << 16


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
            held_end()
            _derive(&first[0], &second[0], n, out)
            held_begin()
    else:  # a few samples: handing the GIL over would cost more than the pass
        _derive(&first[0], &second[0], n, out)
    return block


def clean_leads(list leads, list table, cnp.ndarray data, dict unit_names):
    """A waveform's leads when every one is clean, in one call: ``(labels, scales,
    units, arrays, reserve, span)`` with each lead's samples a little-endian int16
    view of ``data`` (what :meth:`Schema.read` decoded), ``reserve`` the output the
    texts may produce (3/4 of their sizes) and ``span`` the ``(start, end)`` of the
    leads' bytes in ``data`` when they follow one another (else None).

    None when a lead would take any check's other branch (a sample size other than
    2, no positive units per bit, a base64 error, a CRC-32 mismatch, counts that
    disagree with each other or with the samples stored, a text the scan did not
    decode): the caller then reads that waveform lead by lead, where each finding
    is reported. ``leads`` are the scan's lists (``LEAD_FIELDS`` order, the last a
    row of ``table``); ``unit_names`` maps upper-case unit names to units.
    """
    cdef Py_ssize_t n = len(leads), i, rows = len(table), index
    cdef list labels = [None] * n, scales = [None] * n, units = [None] * n
    cdef list arrays = [None] * n
    cdef list values
    cdef tuple row
    cdef int64_t offset, produced, start = 0, end = 0, reserve = 0
    cdef bint joined = True
    if n == 0:
        return None
    for i in range(n):
        values = leads[i]
        if len(values) != 8:
            return None
        label, count, nbytes, size, upb, unit, crc, where = values
        if type(where) is not int:
            return None
        index = where
        if not 0 <= index < rows:
            return None
        row = table[index]
        offset, produced = row[0], row[1]
        if row[2] != KernelStatus.OK:
            return None
        if size is not None and not (type(size) is int and size == 2):
            return None
        if upb is None or not upb > 0:
            return None
        if type(crc) is int:
            if crc != row[4]:
                return None
        elif crc is not None:  # a number that is not an integer: the CRC check reports it
            return None
        if produced & 1:
            return None
        if type(count) is int and count >= 0:
            if count != produced // 2:
                return None
            if type(nbytes) is int and nbytes >= 0 and nbytes != 2 * count:
                return None
        elif type(nbytes) is int and nbytes >= 0:
            if nbytes // 2 != produced // 2:
                return None
        text = _stripped(label)
        labels[i] = text if text else f"lead {i + 1}"
        scales[i] = float(upb)
        text = _stripped(unit)
        if not text:
            text = "MICROVOLTS"
        name = unit_names.get(text)  # the names are upper-case: a hit needs no upper()
        units[i] = name if name is not None else unit_names.get(text.upper(), text)
        arrays[i] = _int16_view(data, offset, produced)
        reserve += row[3] * 3 // 4
        if i == 0:
            start = offset
        elif offset != end:
            joined = False
        end = offset + produced
    return labels, scales, units, arrays, reserve, (start, end) if joined else None


cdef str _stripped(value):
    """``(value or "").strip()`` for a str or None, without the call when there is
    nothing to strip (the usual case)."""
    cdef str text
    cdef Py_ssize_t n
    if value is None:
        return ""
    text = value
    n = len(text)
    if n == 0 or not (text[0].isspace() or text[n - 1].isspace()):
        return text
    return text.strip()


cdef object _LE_INT16 = np.dtype("<i2")
cdef bint _LITTLE_ENDIAN = sys.byteorder == "little"


cdef cnp.ndarray _int16_view(cnp.ndarray data, int64_t offset, int64_t size):
    """``data[offset:offset + size].view("<i2")``, read-only, built directly (numpy's
    slice and view steps cost several times more, with the GIL held, per lead)."""
    cdef cnp.npy_intp count = size // 2
    cdef cnp.ndarray out
    if not _LITTLE_ENDIAN:
        return data[offset:offset + size].view(_LE_INT16)
    out = cnp.PyArray_SimpleNewFromData(1, &count, cnp.NPY_INT16,
                                        <uint8_t*>cnp.PyArray_DATA(data) + offset)
    cnp.set_array_base(out, data)
    cnp.PyArray_CLEARFLAGS(out, cnp.NPY_ARRAY_WRITEABLE)
    return out


def statement_lines(list found, str closers):
    """``DiagnosisStatement`` texts (``[text, ends_line]`` each, as :meth:`Schema.read`
    gives them) joined into lines, as ``{"sequence": n, "text": line}`` dicts: a
    text joins the line before it with a space unless that part ends in one or the
    text starts with one of ``closers``; a line ends after a text flagged so."""
    cdef list lines = [], parts = []
    cdef str text, line
    cdef Py_ssize_t i
    for item in found:
        value, ends = item
        text = value if value else ""
        if parts and text and text[0] not in closers and not (<str>parts[len(parts) - 1]).endswith(" "):
            parts.append(" ")
        parts.append(text)
        if ends:
            lines.append("".join(parts).strip())
            parts = []
    if parts:
        lines.append("".join(parts).strip())
    for i in range(len(lines)):
        line = lines[i]
        lines[i] = {"sequence": i + 1, "text": line}
    return lines


def keyed(list rows, tuple keys):
    """Each row (a list of values) as a dict of ``keys`` to its values, in one call."""
    cdef Py_ssize_t n = len(keys), i, j
    cdef list out = [None] * len(rows), row
    cdef dict item
    for i in range(len(rows)):
        row = rows[i]
        if len(row) < n:
            raise ValueError(f"a row of {len(row)} values for {n} keys")
        item = {}
        for j in range(n):
            item[keys[j]] = row[j]
        out[i] = item
    return out


def named_numbers(dict raw, tuple pairs, number):
    """``{key: number(raw[name]) for name, key in pairs if name in raw}`` in one call:
    a text of ASCII digits (fewer than 16) is read here, any other by ``number``."""
    cdef dict out = {}
    cdef str text
    cdef Py_ssize_t i, n
    cdef bint digits
    for name, key in pairs:
        value = raw.get(name, _MISSING)
        if value is _MISSING:
            continue
        if value is None:
            out[key] = number(None)
            continue
        text = value
        n = len(text)
        digits = 0 < n < 16
        for i in range(n if digits else 0):
            if not (48 <= <Py_UCS4>text[i] <= 57):
                digits = False
                break
        out[key] = int(text) if digits else number(text)
    return out


cdef object _MISSING = object()
