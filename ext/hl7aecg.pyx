# cython: language_level=3
"""HL7 aECG kernel: what the decoder reads of a document, walked in libxml2's
tree under lxml's root element (``tree_records``), and the whitespace-separated
integers of the ``SLIST_PQ`` ``digits`` elements, counted then parsed where
libxml2 keeps them, without the GIL (``Digits``).

The count pass sizes the output before it is allocated; the parse pass
checks every byte (XML whitespace, an optional sign, decimal digits) and
every value against the int32 range. Statuses come from ``_status.pxd``.
"""

cimport cython
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy
from cpython.object cimport PyObject

import numpy as np

cimport numpy as cnp

from _handover cimport held_begin, held_end
from _libxml2 cimport xml_bind, xml_bound, xml_free_doc, xml_free_doc_merged, xml_parse
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
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    void* PyUnicode_DATA(object text)


cdef Py_ssize_t TEXTS_NOGIL_FROM = 1 << 14  # bytes: below, the GIL hand-over costs more


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


cdef const int64_t* _int64s(cnp.ndarray counts, Py_ssize_t k) except NULL:
    """The data of ``counts``, a C-contiguous int64 array of ``k`` values (taken as an
    array, not a memoryview: that view costs more than a small document's parse)."""
    if cnp.PyArray_TYPE(counts) != cnp.NPY_INT64 or cnp.PyArray_NDIM(counts) != 1 or \
            not cnp.PyArray_IS_C_CONTIGUOUS(counts):
        raise TypeError("counts must be a one-dimensional C-contiguous int64 array")
    if cnp.PyArray_DIM(counts, 0) != k:
        raise ValueError("one count per text")
    return <const int64_t*>cnp.PyArray_DATA(counts)


cdef tuple _parse_sources(const char** sources, Py_ssize_t* lengths, Py_ssize_t k,
                          Py_ssize_t total, const int64_t* counts):
    """``(table, wide, narrow)`` for ``k`` texts given by their bytes and counts:
    ``table[i] = (status, error_at, fits)`` (int64; the texts after the first whose
    status is not OK are not parsed and read OK), ``wide[i]`` the int32 values of text
    ``i`` and, where ``fits`` (every value within int16), ``narrow[i]`` the same as int16
    (None otherwise). Without the GIL when the texts are long."""
    cdef Py_ssize_t i
    for i in range(k):
        if counts[i] < 0:
            raise ValueError("a negative count")
    cdef cnp.npy_intp shape[2]
    cdef list wide = [], narrow = []
    for i in range(k):  # numpy's C constructor: a call of np.empty costs several times more
        shape[0] = counts[i]
        wide.append(cnp.PyArray_EMPTY(1, shape, cnp.NPY_INT32, 0))
        narrow.append(cnp.PyArray_EMPTY(1, shape, cnp.NPY_INT16, 0))
    shape[0], shape[1] = k, 3
    cdef cnp.ndarray table = cnp.PyArray_ZEROS(2, shape, cnp.NPY_INT64, 0)
    cdef int32_t** wide_rows = <int32_t**>malloc(max(k, 1) * sizeof(int32_t*))
    cdef int16_t** narrow_rows = <int16_t**>malloc(max(k, 1) * sizeof(int16_t*))
    if wide_rows == NULL or narrow_rows == NULL:
        free(wide_rows)
        free(narrow_rows)
        raise MemoryError()
    try:
        for i in range(k):
            wide_rows[i] = <int32_t*>cnp.PyArray_DATA(<cnp.ndarray>wide[i])
            narrow_rows[i] = <int16_t*>cnp.PyArray_DATA(<cnp.ndarray>narrow[i])
        if total >= TEXTS_NOGIL_FROM:
            with nogil:
                held_end()
                _parse_all(sources, lengths, k, wide_rows, narrow_rows, counts,
                           <int64_t*>cnp.PyArray_DATA(table))
                held_begin()
        else:
            _parse_all(sources, lengths, k, wide_rows, narrow_rows, counts,
                       <int64_t*>cnp.PyArray_DATA(table))
    finally:
        free(wide_rows)
        free(narrow_rows)
    cdef const int64_t* fits = <const int64_t*>cnp.PyArray_DATA(table) + 2
    for i in range(k):
        if not fits[3 * i]:
            narrow[i] = None
    return table, wide, narrow


cdef Py_ssize_t STACK_NOGIL_FROM = 1 << 16  # values: below, the GIL hand-over costs more


def stack_int32(list rows):
    """The rows (int16 or int32 arrays of one length, as :func:`parse_texts` gives
    them) as one int32 array of shape (rows, length), copied in one pass (without the
    GIL when large; numpy's stacking hands it over once per row)."""
    cdef Py_ssize_t k = len(rows), n = len(rows[0]) if rows else 0, i
    cdef cnp.npy_intp shape[2]
    shape[0], shape[1] = k, n
    cdef cnp.ndarray block = cnp.PyArray_EMPTY(2, shape, cnp.NPY_INT32, 0)
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


# --------------------------------------------------------------------------- the tree
#
# The decoder reads the document lxml parsed (with the hardened parser: no DTD, no
# entity, libxml2's depth and size bounds) by walking libxml2's own tree here: no
# element object per step, and the digits are parsed where libxml2 keeps them. Only
# the public layouts below are read, never written: libxml2 2.x's xmlNode, xmlAttr and
# xmlNs (tree.h, unchanged across 2.x) and the head of lxml's public _Element object
# (etree.h: the document, then the node). The caller checks the object is an lxml
# element and that the walk sees what lxml sees at the root.

cdef extern from *:
    """
    typedef struct ecg_xmlNs {
        struct ecg_xmlNs* next; int type; const char* href; const char* prefix;
    } ecg_xmlNs;
    struct ecg_xmlAttr;
    typedef struct ecg_xmlNode {
        void* _private; int type; const char* name;
        struct ecg_xmlNode* children; struct ecg_xmlNode* last; struct ecg_xmlNode* parent;
        struct ecg_xmlNode* next; struct ecg_xmlNode* prev; void* doc;
        ecg_xmlNs* ns; const char* content; struct ecg_xmlAttr* properties;
    } ecg_xmlNode;
    typedef struct ecg_xmlAttr {
        void* _private; int type; const char* name;
        ecg_xmlNode* children; ecg_xmlNode* last; ecg_xmlNode* parent;
        struct ecg_xmlAttr* next; struct ecg_xmlAttr* prev; void* doc; ecg_xmlNs* ns;
    } ecg_xmlAttr;
    typedef struct { PyObject_HEAD PyObject* _doc; ecg_xmlNode* _c_node; } ecg_LxmlElement;
    """
    ctypedef struct xmlNs "ecg_xmlNs":
        const char* href
    ctypedef struct xmlAttr "ecg_xmlAttr"
    ctypedef struct xmlNode "ecg_xmlNode":
        int type
        const char* name
        xmlNode* children
        xmlNode* parent
        xmlNode* next
        xmlNs* ns
        const char* content
        xmlAttr* properties
    ctypedef struct xmlAttr "ecg_xmlAttr":
        const char* name
        xmlNode* children
        xmlAttr* next
        xmlNs* ns
    ctypedef struct LxmlElement "ecg_LxmlElement":
        xmlNode* _c_node

ELEMENT_SIZE = sizeof(LxmlElement) + sizeof(PyObject*)
"""The size of lxml's ``_Element`` with the layout read here (the document, the
node, then the tag): a type of another size is refused before its objects are read."""

from libc.string cimport memcmp, strcmp, strlen, strncmp, strrchr
from cpython.ref cimport Py_INCREF, Py_XDECREF

cdef enum:
    ELEMENT_NODE = 1
    TEXT_NODE = 3
    CDATA_NODE = 4
    XINCLUDE_START = 19
    XINCLUDE_END = 20

cdef const char* HL7 = b"urn:hl7-org:v3"
cdef const char* XSI = b"http://www.w3.org/2001/XMLSchema-instance"
cdef const char* _EMPTY = b""

cdef enum:
    INT_MAX_SIZE = 2147483647
    TEXT_SLOTS = 256  # a power of two
    TEXT_CACHED_MAX = 48  # bytes


cdef inline bint _named(xmlNode* node, const char* name) noexcept nogil:
    """An element of this local name in the HL7 v3 namespace."""
    return node.type == ELEMENT_NODE and node.ns != NULL and node.ns.href != NULL and \
        strcmp(node.name, name) == 0 and strcmp(node.ns.href, HL7) == 0


cdef xmlNode* _child(xmlNode* node, const char* name) noexcept nogil:
    """The first child element of this name (HL7 v3), or NULL (also for no node)."""
    cdef xmlNode* item
    if node == NULL:
        return NULL
    item = node.children
    while item != NULL:
        if _named(item, name):
            return item
        item = item.next
    return NULL


cdef str _utf8(const char* text):
    return PyUnicode_DecodeUTF8(text, strlen(text), NULL) if text != NULL else ""


cdef object _joined(xmlNode* item, bint leading):
    """The text of a run of text nodes from ``item``: an attribute's value (every child),
    or an element's ``.text`` as lxml gives it (``leading``: the text and CDATA nodes
    before its first other child)."""
    cdef list parts
    if item != NULL and (item.type == TEXT_NODE or item.type == CDATA_NODE) and (
            item.next == NULL or (leading and item.next.type != TEXT_NODE and
                                  item.next.type != CDATA_NODE and
                                  item.next.type != XINCLUDE_START and
                                  item.next.type != XINCLUDE_END)):
        return _utf8(item.content)  # one text node: the common case
    parts = []
    while item != NULL:
        if item.type == TEXT_NODE or item.type == CDATA_NODE:
            parts.append(_utf8(item.content))
        elif leading and item.type != XINCLUDE_START and item.type != XINCLUDE_END:
            break
        item = item.next
    if len(parts) == 1:
        return parts[0]
    return "".join(parts)


cdef xmlAttr* _find_attribute(xmlNode* node, const char* name,
                              const char* namespace) noexcept nogil:
    """An attribute (``namespace`` NULL: an attribute without one), or NULL."""
    cdef xmlAttr* item
    if node == NULL:
        return NULL
    item = node.properties
    while item != NULL:
        if strcmp(item.name, name) == 0 and (
                (namespace == NULL and item.ns == NULL) or (
                    namespace != NULL and item.ns != NULL and item.ns.href != NULL and
                    strcmp(item.ns.href, namespace) == 0)):
            return item
        item = item.next
    return NULL


cdef object _attribute(xmlNode* node, const char* name, const char* namespace):
    """An attribute's value (``namespace`` NULL: an attribute without one), or None."""
    cdef xmlAttr* item = _find_attribute(node, name, namespace)
    return None if item == NULL else _joined(item.children, False)


cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* overflow) except? -1.0


cdef extern from *:
    """
    #include <stdint.h>
    #include <math.h>
    /* The double nearest to mantissa / 10^decimals (ties to even) into *out, computed
       exactly with 128-bit integers: 1, or 0 where it cannot be (decimals > 19, or no
       128-bit integers). A quotient of an exact binary fraction with at least 64 bits
       and its remainder decide the rounding as a correctly rounded conversion does. */
    static int ecg_decimal_quotient(uint64_t mantissa, int decimals, double* out) {
    #ifdef __SIZEOF_INT128__
        static const uint64_t tens[20] = {
            1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
            100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
            1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
            1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
            1000000000000000000ULL, 10000000000000000000ULL};
        unsigned __int128 scaled, quotient, rest, half;
        uint64_t divisor, kept;
        int shift, bits, dropped;
        if (decimals < 0 || decimals > 19) return 0;
        if (mantissa == 0) { *out = 0.0; return 1; }
        divisor = tens[decimals];
        shift = 64 + __builtin_clzll(mantissa);  /* the mantissa's top bit to bit 127 */
        scaled = (unsigned __int128)mantissa << shift;
        quotient = scaled / divisor;  /* at least 64 bits: the divisor is below 2^64 */
        bits = 128 - (quotient >> 64 ? __builtin_clzll((uint64_t)(quotient >> 64))
                                     : 64 + __builtin_clzll((uint64_t)quotient));
        dropped = bits - 53;
        kept = (uint64_t)(quotient >> dropped);
        rest = quotient & (((unsigned __int128)1 << dropped) - 1);
        half = (unsigned __int128)1 << (dropped - 1);
        if (rest > half || (rest == half && (scaled % divisor != 0 || (kept & 1)))) {
            kept += 1;
            if (kept == (1ULL << 53)) { kept >>= 1; dropped += 1; }
        }
        *out = ldexp((double)kept, dropped - shift);
        return 1;
    #else
        (void)mantissa; (void)decimals; (void)out;
        return 0;
    #endif
    }
    """
    bint decimal_quotient "ecg_decimal_quotient"(uint64_t mantissa, int decimals,
                                                 double* out) noexcept nogil


cdef double MAX_NUMBER = 1e15  # formats/_xml.py MAX_NUMBER
cdef double* _POWERS_OF_TEN = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15]  # each exact in a double


cdef enum:
    NUMBER_NONE = 0  # no attribute (or a value beyond MAX_NUMBER): None
    NUMBER_READ = 1  # read here
    NUMBER_LONG = 2  # plain, too many digits to read here but fewer than 16 before the
                     # point (so within MAX_NUMBER): Python's conversion reads it
    NUMBER_TEXT = 3  # anything else: the format's reading of the text


cdef int _plain_number(xmlAttr* attribute, double* value) noexcept nogil:
    """How a number attribute reads (a ``NUMBER_*``). A value of ASCII digits with at
    most one point, in one text node, is read here as ``float()`` reads it, without a
    text object: as the integer of its digits over a power of ten, a quotient both
    exact in a double with at most 15 digits (so the quotient is the correctly rounded
    value), else rounded from its exact binary expansion, up to 19 digits."""
    cdef xmlNode* item
    cdef const char* c
    cdef Py_ssize_t digits = 0, significant = 0, points = 0, decimals = 0, whole = 0
    cdef uint64_t mantissa = 0
    if attribute == NULL:
        return NUMBER_NONE
    item = attribute.children
    if item == NULL or item.type != TEXT_NODE or item.next != NULL or item.content == NULL:
        return NUMBER_TEXT
    c = item.content
    while c[0] != 0:
        if 48 <= c[0] <= 57:
            digits += 1
            decimals += points
            if significant or c[0] != 48:  # from the first digit that is not 0
                significant += 1
                whole += not points
                if significant <= 19:
                    mantissa = mantissa * 10 + <uint64_t>(c[0] - 48)
        elif c[0] == 46:
            points += 1
        else:
            break
        c += 1
    if c[0] != 0 or not digits or points > 1:
        return NUMBER_TEXT
    if significant <= 15 and decimals <= 15:
        value[0] = <double>mantissa / _POWERS_OF_TEN[decimals]
    elif significant > 19 or not decimal_quotient(mantissa, <int>decimals, value):
        return NUMBER_LONG if whole < 16 else NUMBER_TEXT
    return NUMBER_READ if value[0] <= MAX_NUMBER else NUMBER_NONE


cdef object _number_attribute(xmlNode* node, const char* name, object number):
    """An attribute's value as ``number`` (the format's reading of a number text as a
    float or None) reads it, plain ones by :func:`_plain_number`."""
    cdef xmlAttr* attribute = _find_attribute(node, name, NULL)
    cdef double value
    cdef int read = _plain_number(attribute, &value)
    if read == NUMBER_READ:
        return value
    if read == NUMBER_LONG:
        return PyOS_string_to_double(attribute.children.content, NULL, NULL)
    if read == NUMBER_TEXT:
        return number(_joined(attribute.children, False))
    return None


cdef object _text(xmlNode* node):
    """An element's ``.text`` ("" when it has none), or None for no element."""
    return None if node == NULL else _joined(node.children, True)


@cython.auto_pickle(False)
cdef class Digits:
    """The digits texts of a document's leads, where libxml2 keeps them (the tree stays
    alive with the element this holds): counted and parsed in place."""

    cdef object root
    cdef list kept  # texts joined from several nodes (a CDATA section inside digits)
    cdef const char** sources
    cdef Py_ssize_t* lengths
    cdef Py_ssize_t count, capacity

    def __cinit__(self, root):
        self.root = root
        self.kept = []

    def __dealloc__(self):
        free(self.sources)
        free(self.lengths)

    cdef Py_ssize_t add(self, xmlNode* node) except -1:
        cdef const char* text = NULL
        cdef Py_ssize_t length = 0
        cdef bytes joined
        cdef void* grown
        cdef xmlNode* item = node.children
        if item != NULL and (item.type == TEXT_NODE or item.type == CDATA_NODE) and (
                item.next == NULL or (item.next.type != TEXT_NODE and
                                      item.next.type != CDATA_NODE)):
            text = item.content
            length = strlen(text) if text != NULL else 0
        else:
            joined = (<str>_joined(item, True)).encode("utf-8")
            self.kept.append(joined)
            text = joined
            length = len(joined)
        if self.count == self.capacity:
            self.capacity = self.capacity * 2 if self.capacity else 16
            grown = realloc(self.sources, self.capacity * sizeof(const char*))
            if grown == NULL:
                raise MemoryError()
            self.sources = <const char**>grown
            grown = realloc(self.lengths, self.capacity * sizeof(Py_ssize_t))
            if grown == NULL:
                raise MemoryError()
            self.lengths = <Py_ssize_t*>grown
        if text == NULL:
            text = _EMPTY
        self.sources[self.count] = text
        self.lengths[self.count] = length
        self.count += 1
        return self.count - 1

    cdef int _pick(self, list indices, const char*** sources, Py_ssize_t** lengths,
                   Py_ssize_t* total) except -1:
        """The bytes and lengths of the texts named in ``indices``, in two arrays the
        caller frees (also when this raises), and their total length."""
        cdef Py_ssize_t i, j, k = len(indices)
        sources[0] = <const char**>malloc(max(k, 1) * sizeof(const char*))
        lengths[0] = <Py_ssize_t*>malloc(max(k, 1) * sizeof(Py_ssize_t))
        if sources[0] == NULL or lengths[0] == NULL:
            raise MemoryError()
        total[0] = 0
        for i in range(k):
            j = indices[i]
            if not 0 <= j < self.count:
                raise IndexError("no such digits text")
            sources[0][i], lengths[0][i] = self.sources[j], self.lengths[j]
            total[0] += self.lengths[j]
        return 0

    def text(self, Py_ssize_t index, Py_ssize_t start, Py_ssize_t size) -> bytes:
        """Bytes ``start:start + size`` of a digits text (for messages)."""
        if not 0 <= index < self.count:
            raise IndexError("no such digits text")
        start = min(max(start, 0), self.lengths[index])
        size = min(max(size, 0), self.lengths[index] - start)
        return self.sources[index][start:start + size]

    def counts(self, list indices):
        """:func:`count_integers` of each digits text named in ``indices``, in one region
        without the GIL when they are long: ``(counts, total)``, an int64 array and its
        sum."""
        cdef Py_ssize_t k = len(indices), i, total = 0
        cdef cnp.npy_intp size = k
        cdef cnp.ndarray counts = cnp.PyArray_ZEROS(1, &size, cnp.NPY_INT64, 0)
        cdef int64_t* out = <int64_t*>cnp.PyArray_DATA(counts)
        cdef const char** sources = NULL
        cdef Py_ssize_t* lengths = NULL
        try:
            self._pick(indices, &sources, &lengths, &total)
            if total >= TEXTS_NOGIL_FROM:
                with nogil:
                    held_end()
                    for i in range(k):
                        out[i] = _count(<const uint8_t*>sources[i], lengths[i])
                    held_begin()
            else:
                for i in range(k):
                    out[i] = _count(<const uint8_t*>sources[i], lengths[i])
        finally:
            free(sources)
            free(lengths)
        total = 0
        for i in range(k):
            total += out[i]
        return counts, total

    def parse(self, list indices, cnp.ndarray counts):
        """:func:`parse_integers` of each digits text named in ``indices`` with its count
        from :meth:`counts`, in one region without the GIL when they are long:
        ``(table, wide, narrow)`` as ``_parse_sources`` gives them."""
        cdef Py_ssize_t k = len(indices), total = 0
        cdef const char** sources = NULL
        cdef Py_ssize_t* lengths = NULL
        try:
            self._pick(indices, &sources, &lengths, &total)
            return _parse_sources(sources, lengths, k, total, _int64s(counts, k))
        finally:
            free(sources)
            free(lengths)


cdef tuple _sequence(xmlNode* sequence, _Walk walk):
    cdef xmlNode* value = _child(sequence, b"value")
    cdef xmlNode* increment = _child(value, b"increment")
    cdef xmlNode* scale = _child(value, b"scale")
    cdef xmlNode* origin = _child(value, b"origin")
    cdef xmlNode* text = _child(value, b"digits")
    cdef object code = _attribute(_child(sequence, b"code"), b"code", NULL)
    return ("l", code, walk.lead(code or "unknown"), _attribute(value, b"type", XSI),
            _attribute(_child(value, b"head"), b"value", NULL),
            _number_attribute(increment, b"value", walk.number),
            _attribute(increment, b"unit", NULL),
            _number_attribute(scale, b"value", walk.number), _attribute(scale, b"unit", NULL),
            _number_attribute(origin, b"value", walk.number), _attribute(origin, b"unit", NULL),
            None if text == NULL else walk.digits.add(text))


cdef int _series(xmlNode* series, list records, _Walk walk) except -1:
    cdef xmlNode* item = series.children
    cdef xmlNode* inner
    cdef xmlNode* sequence_set
    cdef xmlNode* model = _child(_child(_child(_child(series, b"author"), b"seriesAuthor"),
                                        b"manufacturedSeriesDevice"), b"manufacturerModelName")
    records.append(("s", _attribute(_child(series, b"code"), b"code", NULL), _text(model)))
    while item != NULL:
        if _named(item, b"component"):
            sequence_set = _child(item, b"sequenceSet")
            if sequence_set != NULL:
                records.append(("q",))
                inner = sequence_set.children
                while inner != NULL:
                    if _named(inner, b"component") and _child(inner, b"sequence") != NULL:
                        records.append(_sequence(_child(inner, b"sequence"), walk))
                    inner = inner.next
        item = item.next
    _series_below(series, b"derivation", b"derivedSeries", records, walk)
    return 0


cdef int _series_below(xmlNode* node, const char* outer, const char* name, list records,
                       _Walk walk) except -1:
    """Every series named ``name`` in a child ``outer`` of ``node``, in document order."""
    cdef xmlNode* item = node.children
    cdef xmlNode* inner
    while item != NULL:
        if _named(item, outer):
            inner = item.children
            while inner != NULL:
                if _named(inner, name):
                    _series(inner, records, walk)
                inner = inner.next
        item = item.next
    return 0


@cython.auto_pickle(False)
cdef class _Walk:
    """What one walk of a document gathers and reads with: its digits texts, its
    annotations as the walk meets them (document order), and the format's readings of
    a number text and of a lead code."""

    cdef Digits digits
    cdef object number  # a number text (or None) -> float or None
    cdef object label  # a lead code -> its label
    cdef dict labels  # lead code -> label, as read so far
    cdef list items  # one dict per annotation
    cdef list leads  # per depth: the lead code of the last annotation met there
    cdef list readable  # indices of the annotations that may give readings
    cdef set measured  # codes of the PQ annotations without a lead listed in readable
    # short ASCII texts met before, by a hash of their bytes (codes, units and types
    # repeat in every annotation: one text object each, its hash computed once)
    cdef PyObject** texts  # TEXT_SLOTS of them once a text is kept (NULL before)
    cdef uint64_t* hashes

    def __cinit__(self, Digits digits, number, label):
        self.digits, self.number, self.label = digits, number, label
        self.labels, self.items, self.leads, self.readable = {}, [], [], []
        self.measured = set()

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.texts != NULL:
            for i in range(TEXT_SLOTS):
                Py_XDECREF(self.texts[i])
        free(self.texts)
        free(self.hashes)

    cdef object lead(self, object code):
        """``label`` of a lead code, once per code."""
        cdef object label = self.labels.get(code)
        if label is None:
            label = self.labels[code] = self.label(code)
        return label

    cdef object text(self, const char* s):
        """``s`` (UTF-8) as text, the object of an earlier equal short ASCII text."""
        cdef uint64_t h = 14695981039346656037ULL
        cdef Py_ssize_t n = 0, slot
        cdef bint ascii = True
        cdef PyObject* held
        cdef object text
        while s[n] != 0 and n <= TEXT_CACHED_MAX:
            h = (h ^ <uint8_t>s[n]) * 1099511628211ULL
            ascii = ascii and <uint8_t>s[n] < 128
            n += 1
        if n > TEXT_CACHED_MAX or not ascii:
            return PyUnicode_DecodeUTF8(s, strlen(s), NULL)
        if self.texts == NULL:  # a document without annotations keeps none
            self.texts = <PyObject**>calloc(TEXT_SLOTS, sizeof(PyObject*))
            self.hashes = <uint64_t*>calloc(TEXT_SLOTS, sizeof(uint64_t))
            if self.texts == NULL or self.hashes == NULL:
                free(self.texts)
                free(self.hashes)
                self.texts = NULL
                self.hashes = NULL
                raise MemoryError()
        slot = <Py_ssize_t>(h & (TEXT_SLOTS - 1))
        held = self.texts[slot]
        if held != NULL and self.hashes[slot] == h and PyUnicode_GET_LENGTH(<object>held) == n \
                and memcmp(PyUnicode_DATA(<object>held), s, n) == 0:
            return <object>held
        text = PyUnicode_DecodeUTF8(s, n, NULL)
        Py_XDECREF(held)
        Py_INCREF(text)
        self.texts[slot] = <PyObject*>text
        self.hashes[slot] = h
        return text


cdef object _attribute_text(xmlAttr* attribute, _Walk walk):
    """An attribute's value (None for no attribute), a value in one text node through
    ``walk``'s texts."""
    cdef xmlNode* item
    if attribute == NULL:
        return None
    item = attribute.children
    if item != NULL and item.type == TEXT_NODE and item.next == NULL and item.content != NULL:
        return walk.text(item.content)
    return _joined(item, False)


cdef object _value_type(xmlAttr* attribute, _Walk walk):
    """The local part of an ``xsi:type`` attribute's value ("" for no attribute)."""
    cdef xmlNode* item
    cdef const char* local
    if attribute == NULL:
        return ""
    item = attribute.children
    if item != NULL and item.type == TEXT_NODE and item.next == NULL and item.content != NULL:
        local = strrchr(item.content, 58)  # ':'
        return walk.text(item.content if local == NULL else local + 1)
    return (<str>_joined(item, False)).rpartition(":")[2]


cdef inline const char* _one_text(xmlAttr* attribute) noexcept nogil:
    """An attribute's value where it is one text node, else NULL."""
    cdef xmlNode* item = NULL if attribute == NULL else attribute.children
    if item != NULL and item.type == TEXT_NODE and item.next == NULL:
        return item.content
    return NULL


cdef struct Found:
    # What the walk reads of one annotation element, found in the tree without the GIL
    # (see _find): the attributes its dict takes its texts from, and its region's bounds.
    xmlNode* node
    Py_ssize_t depth
    bint region_left  # a boundary only _region reads (a code in several text nodes,
                      # or a bound that is not a plain number): the region is read there
    xmlAttr* code  # code/@code
    xmlNode* value
    xmlAttr* kind  # value/@xsi:type
    xmlAttr* amount  # value/@value
    xmlAttr* unit  # value/@unit
    xmlAttr* coded  # value/@code
    xmlAttr* display  # value/@displayName
    xmlAttr* lead  # the code of the region's last boundary coded MDC_ECG_LEAD*
    bint bounded  # a boundary other than a lead's with a number for either bound
    int onset_read, offset_read  # NUMBER_READ, NUMBER_LONG or NUMBER_NONE
    double onset, offset  # where NUMBER_READ
    xmlAttr* low_value  # where NUMBER_LONG
    xmlAttr* high_value
    xmlAttr* low_unit
    xmlAttr* high_unit


cdef xmlNode* _next_boundary(xmlNode* support, xmlNode* boundary) noexcept nogil:
    """The boundary after ``boundary`` (the first for NULL) among the
    ``supportingROI/component/boundary`` elements of ``support``, in document order;
    NULL after the last (and for no ``support``)."""
    cdef xmlNode* roi
    cdef xmlNode* component = NULL  # NULL: before the first of its region
    cdef xmlNode* item = NULL
    if boundary != NULL:
        item, component = boundary.next, boundary.parent
        roi = component.parent
    elif support != NULL:
        roi = support.children
        while roi != NULL and not _named(roi, b"supportingROI"):
            roi = roi.next
    else:
        return NULL
    while roi != NULL:
        while item != NULL:
            if _named(item, b"boundary"):
                return item
            item = item.next
        component = roi.children if component == NULL else component.next
        while component != NULL and not _named(component, b"component"):
            component = component.next
        if component != NULL:
            item = component.children
            continue
        roi = roi.next
        while roi != NULL and not _named(roi, b"supportingROI"):
            roi = roi.next
    return NULL


cdef void _find(Found* found) noexcept nogil:
    """Fill ``found`` (its node and depth set) for :func:`_annotation`. The region of
    interest is the first ``support``'s ``supportingROI/component/boundary`` elements."""
    cdef xmlNode* node = found.node
    cdef xmlNode* support
    cdef xmlNode* boundary
    cdef xmlNode* low
    cdef xmlNode* high
    cdef xmlAttr* code
    cdef xmlAttr* low_value
    cdef xmlAttr* high_value
    cdef const char* text
    cdef int onset_read, offset_read
    cdef double onset = 0, offset = 0
    found.code = _find_attribute(_child(node, b"code"), b"code", NULL)
    found.value = _child(node, b"value")
    found.kind = _find_attribute(found.value, b"type", XSI)
    found.amount = _find_attribute(found.value, b"value", NULL)
    found.unit = _find_attribute(found.value, b"unit", NULL)
    found.coded = _find_attribute(found.value, b"code", NULL)
    found.display = _find_attribute(found.value, b"displayName", NULL)
    found.region_left = found.bounded = False
    found.lead = found.low_unit = found.high_unit = NULL
    support = _child(node, b"support")
    boundary = _next_boundary(support, NULL)
    while boundary != NULL:
        code = _find_attribute(_child(boundary, b"code"), b"code", NULL)
        text = _one_text(code)
        if code != NULL and text == NULL:
            found.region_left = True
            return
        if text != NULL and strncmp(text, b"MDC_ECG_LEAD", 12) == 0:
            found.lead = code
        else:
            low = _child(_child(boundary, b"value"), b"low")
            high = _child(_child(boundary, b"value"), b"high")
            low_value = _find_attribute(low, b"value", NULL)
            high_value = _find_attribute(high, b"value", NULL)
            onset_read = _plain_number(low_value, &onset)
            offset_read = _plain_number(high_value, &offset)
            if onset_read == NUMBER_TEXT or offset_read == NUMBER_TEXT:
                found.region_left = True
                return
            if onset_read != NUMBER_NONE or offset_read != NUMBER_NONE:
                found.bounded = True
                found.onset_read, found.onset = onset_read, onset
                found.offset_read, found.offset = offset_read, offset
                found.low_value, found.high_value = low_value, high_value
                found.low_unit = _find_attribute(low, b"unit", NULL)
                found.high_unit = _find_attribute(high, b"unit", NULL)
        boundary = _next_boundary(support, boundary)


cdef object _region(xmlNode* node, dict item, _Walk walk):
    """The region of interest :func:`_find` left (its boundaries read as :func:`_find`
    reads them, with the format's reading of each text): the lead it names or None; the
    onset, offset and time unit into ``item``."""
    cdef xmlNode* support
    cdef xmlNode* boundary
    cdef xmlNode* low
    cdef xmlNode* high
    cdef object lead = None, code, onset, offset, unit
    support = _child(node, b"support")
    boundary = _next_boundary(support, NULL)
    while boundary != NULL:
        code = _attribute_text(_find_attribute(_child(boundary, b"code"), b"code", NULL), walk)
        if code is not None and (<str>code).startswith("MDC_ECG_LEAD"):
            lead = code
        else:
            low = _child(_child(boundary, b"value"), b"low")
            high = _child(_child(boundary, b"value"), b"high")
            onset = _number_attribute(low, b"value", walk.number)
            offset = _number_attribute(high, b"value", walk.number)
            if onset is not None or offset is not None:
                item["onset"], item["offset"] = onset, offset
                unit = _attribute_text(_find_attribute(low, b"unit", NULL), walk)
                item["time_unit"] = unit or _attribute_text(
                    _find_attribute(high, b"unit", NULL), walk)
        boundary = _next_boundary(support, boundary)
    return lead


cdef object _bound(int read, double value, xmlAttr* attribute):
    """A bound :func:`_find` read (``read``: how, see ``NUMBER_*``)."""
    if read == NUMBER_READ:
        return value
    if read == NUMBER_LONG:
        return PyOS_string_to_double(attribute.children.content, NULL, NULL)
    return None


cdef int _annotation(Found* found, _Walk walk) except -1:
    """One annotation nested in ``found.depth`` others: its dict (code, depth, value as
    its type says; the onset and offset of its region's last other boundary with a
    number for either; the lead its region or its nearest ancestor names)."""
    cdef Py_ssize_t depth = found.depth
    cdef dict item
    cdef object lead = None, code, kind = None, unit
    item = {"code": _attribute_text(found.code, walk), "depth": depth}
    if found.value != NULL:
        kind = _value_type(found.kind, walk)
        item["value_type"] = kind
        if kind == "PQ":
            item["value"] = _attribute_text(found.amount, walk)
            code = _attribute_text(found.unit, walk)
            if code is not None:
                item["unit"] = code
        else:
            code = _attribute_text(found.coded, walk)
            if kind == "CE" or code is not None:
                item["value"] = code
                code = _attribute_text(found.display, walk)
                if code:
                    item["display_name"] = code
            else:
                item["value"] = (<str>_text(found.value)).strip()
    if found.region_left:
        lead = _region(found.node, item, walk)
    else:
        if found.lead != NULL:
            lead = _attribute_text(found.lead, walk)
        if found.bounded:
            item["onset"] = _bound(found.onset_read, found.onset, found.low_value)
            item["offset"] = _bound(found.offset_read, found.offset, found.high_value)
            unit = _attribute_text(found.low_unit, walk)
            item["time_unit"] = unit or _attribute_text(found.high_unit, walk)
    if len(walk.leads) > depth:
        del walk.leads[depth:]
    if lead is None and depth and len(walk.leads) == depth:
        lead = walk.leads[depth - 1]
    walk.leads.append(lead)
    if lead is not None:
        item["lead"] = walk.lead(lead)
    elif kind == "PQ" and item["code"] not in walk.measured:  # the first of its code
        walk.measured.add(item["code"])
        walk.readable.append(len(walk.items))
    if kind != "PQ" and item["code"] is not None and "INTERPRETATION" in item["code"]:
        walk.readable.append(len(walk.items))
    walk.items.append(item)
    return 0


def tree_records(root, element_type, number, label):
    """What the decoder reads of an AnnotatedECG, from the libxml2 tree under ``root``
    (an lxml element of ``element_type``, lxml's ``_Element``): ``(records,
    annotations, digits)``, records in the order below, each a tuple led by its letter:

    - ``("m", id extension, id root, name text, given, family, gender code, birth
      time, trial id extension)``: the trial subject;
    - ``("s", code, device model)`` for each series and derived series (depth first:
      a series, its sequence sets, then its derived series), each followed by
      ``("q",)`` per sequence set and ``("l", code, label, xsi:type, head, increment,
      increment unit, scale, unit, origin, unit, digits)`` per sequence (``label``:
      ``label`` of the code, or of ``"unknown"`` where it has none), the
      increment, scale and origin values as ``number`` reads them, ``digits`` the
      index of its text in ``digits`` (a :class:`Digits`) or None;

    ``annotations`` is ``(items, readable)``: ``items`` a dict per annotation in
    document order (``code``; ``depth``, the annotations it is nested in;
    ``value_type``, the local part of the value's ``xsi:type``, and ``value``: a
    ``PQ``'s value and its ``unit`` where it has one, else a ``CE``'s or coded value's
    code and its ``display_name`` where not empty, else the value's stripped text;
    ``onset``, ``offset`` and ``time_unit``: the low and high values (as ``number``
    reads them) and the low's or else the high's unit of the last boundary of its
    region of interest not coded ``MDC_ECG_LEAD*`` with a number for either; ``lead``:
    ``label`` of the code of the last boundary coded ``MDC_ECG_LEAD*`` or, failing
    that, of its nearest annotation ancestor's lead); the region of interest is its
    first ``support``'s ``supportingROI/component/boundary`` elements. ``readable``
    lists, in document order, the indices of the annotations that may give readings:
    the first ``PQ`` without a lead of each code, and every other one whose code holds
    ``INTERPRETATION``.

    ``number`` reads a number text (or None) as a float or None; the kernel reads
    plain ones (ASCII digits, at most one point) as ``float()`` does without calling
    it. Every step takes the first child of a name where the format has one, in the
    HL7 v3 namespace; attribute values and texts are as lxml gives them."""
    if not isinstance(root, element_type):
        raise TypeError("root must be an lxml element")
    if (<type>element_type).__basicsize__ != ELEMENT_SIZE:
        raise TypeError("lxml's element object has a layout this kernel does not know")
    cdef xmlNode* top = (<LxmlElement*><PyObject*>root)._c_node
    if top == NULL or not _named(top, b"AnnotatedECG"):  # also a check of the layouts
        raise ValueError("root is not an lxml element AnnotatedECG in urn:hl7-org:v3")
    return _records(top, _Walk(Digits(root), number, label), False)


def document_records(Document document, number, label):
    """:func:`tree_records` of a document :func:`parse_document` parsed, or None when its
    root is not ``AnnotatedECG`` in ``urn:hl7-org:v3``."""
    cdef xmlNode* top = (<xmlNode*>document.doc).children  # an xmlDoc starts as a node
    while top != NULL and top.type != ELEMENT_NODE:
        top = top.next
    if top == NULL or not _named(top, b"AnnotatedECG"):
        return None
    return _records(top, _Walk(Digits(document), number, label),
                    document.size >= DOCUMENT_NOGIL_FROM)


cdef Py_ssize_t _annotations(xmlNode* top, Found** out) noexcept nogil:
    """Every annotation element from ``top`` down (``top`` included, as lxml's iter
    does), in document order, each with the number of annotations it is nested in and
    what :func:`_find` finds of it, in an array the caller frees; -1 when out of
    memory."""
    cdef xmlNode* node = top
    cdef xmlNode* up
    cdef Found* found = NULL
    cdef void* grown
    cdef Py_ssize_t count = 0, capacity = 0, depth
    while node != NULL:
        if _named(node, b"annotation"):
            if count == capacity:
                capacity = capacity * 2 if capacity else 64
                grown = realloc(found, capacity * sizeof(Found))
                if grown == NULL:
                    free(found)
                    return -1
                found = <Found*>grown
            depth = 0
            up = node.parent
            while up != NULL:
                if _named(up, b"annotation"):
                    depth += 1
                up = up.parent
            found[count].node = node
            found[count].depth = depth
            _find(&found[count])
            count += 1
        if node.children != NULL and node.type == ELEMENT_NODE:
            node = node.children
            continue
        while node != top and node.next == NULL:
            node = node.parent
        if node == top:
            break
        node = node.next
    out[0] = found
    return count


cdef tuple _records(xmlNode* top, _Walk walk, bint release):
    """The walk of :func:`tree_records` from the root element ``top``, whose tree lives
    as long as ``walk``'s digits (``release``: the annotations are found without the
    GIL, in a large document)."""
    cdef Found* annotations = NULL
    cdef Py_ssize_t count, i
    cdef xmlNode* subject
    cdef xmlNode* person
    cdef xmlNode* name
    cdef xmlNode* assignment
    cdef list records = []
    assignment = _child(_child(_child(_child(top, b"componentOf"), b"timepointEvent"),
                               b"componentOf"), b"subjectAssignment")
    subject = _child(_child(assignment, b"subject"), b"trialSubject")
    person = _child(subject, b"subjectDemographicPerson")
    name = _child(person, b"name")
    records.append(("m", _attribute(_child(subject, b"id"), b"extension", NULL),
                    _attribute(_child(subject, b"id"), b"root", NULL), _text(name),
                    _text(_child(name, b"given")), _text(_child(name, b"family")),
                    _attribute(_child(person, b"administrativeGenderCode"), b"code", NULL),
                    _attribute(_child(person, b"birthTime"), b"value", NULL),
                    _attribute(_child(_child(_child(assignment, b"componentOf"),
                                             b"clinicalTrial"), b"id"), b"extension", NULL)))
    _series_below(top, b"component", b"series", records, walk)
    if release:  # a walk of the whole tree: the other readers' GIL-held work meanwhile
        with nogil:
            held_end()
            count = _annotations(top, &annotations)
            held_begin()
    else:
        count = _annotations(top, &annotations)
    if count < 0:
        raise MemoryError()
    try:
        for i in range(count):
            _annotation(&annotations[i], walk)
    finally:
        free(annotations)
    return records, (walk.items, walk.readable), walk.digits


# --------------------------------------------------------------------------- the parse


def bind_libxml2(size_t new_context, size_t free_context, size_t read_memory,
                 size_t free_document) -> bool:
    """Take the addresses of libxml2's ``xmlNewParserCtxt``, ``xmlFreeParserCtxt``,
    ``xmlCtxtReadMemory`` and ``xmlFreeDoc`` (from lxml's module); False if one is
    missing, and :func:`parse_document` then parses nothing."""
    return xml_bind(new_context, free_context, read_memory, free_document)


cdef Py_ssize_t DOCUMENT_NOGIL_FROM = 1 << 16  # bytes: below, the GIL hand-over costs more


@cython.auto_pickle(False)
cdef class Document:
    """A document :func:`parse_document` parsed: libxml2's tree, freed with this object
    (without the GIL when large)."""

    cdef void* doc
    cdef Py_ssize_t size  # bytes of the text it was parsed from

    def __dealloc__(self):
        cdef void* doc = self.doc
        if doc == NULL:
            return
        if self.size >= DOCUMENT_NOGIL_FROM:  # freeing a large tree costs as much as a walk
            with nogil:
                held_end()
                xml_free_doc_merged(doc)
                held_begin()
        else:
            xml_free_doc(doc)


def parse_document(bytes text not None, bint utf8):
    """The document libxml2 reads from ``text`` (``utf8``: read as UTF-8 whatever it
    declares) in one native region (see ``_libxml2.pxd``), or None when it is not
    well-formed XML within the parser's bounds, or no parser is bound (the caller then
    parses with lxml, which says why). ``bytes`` only: a buffer view of them costs a
    tenth of a small document's parse."""
    cdef Py_ssize_t n = len(text)
    cdef const char* start = text
    cdef void* doc
    cdef Document document
    if not xml_bound() or n == 0 or n > INT_MAX_SIZE:
        return None
    with nogil:
        held_end()
        doc = xml_parse(start, <int>n, utf8)
        held_begin()
    if doc == NULL:
        return None
    document = Document.__new__(Document)
    document.doc = doc
    document.size = n
    return document
