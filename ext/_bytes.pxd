# Header-only byte helpers shared by the format kernels. All are inline,
# noexcept and nogil: callers check bounds before calling them.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef inline uint16_t load_le16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (<uint16_t>p[1] << 8))


cdef inline uint16_t load_be16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline uint32_t load_le24(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)


cdef inline uint32_t load_le32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline uint64_t load_le64(const uint8_t* p) noexcept nogil:
    return <uint64_t>load_le32(p) | (<uint64_t>load_le32(p + 4) << 32)


cdef inline int32_t sign_extend(uint32_t value, int bits) noexcept nogil:
    """Two's complement value of the low ``bits`` bits of ``value`` (1 <= bits <= 32)."""
    cdef uint32_t mask
    if bits >= 32:
        return <int32_t>value
    mask = (<uint32_t>1) << (bits - 1)
    value &= ((<uint32_t>1) << bits) - 1
    return <int32_t>((value ^ mask) - mask)


cdef inline uint64_t zigzag_encode64(int64_t value) noexcept nogil:
    return (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)


cdef inline int64_t zigzag_decode64(uint64_t value) noexcept nogil:
    return <int64_t>(value >> 1) ^ -(<int64_t>(value & 1))


cdef inline bint ascii_number(const uint8_t* s, Py_ssize_t a, Py_ssize_t b,
                              bint integer) noexcept nogil:
    """``s[a:b]`` is ``[+-]?[0-9]+`` or, unless ``integer``, a decimal
    ``[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?``: the plain forms
    ``int()`` / ``float()`` take, without spaces, underscores, ``inf`` or ``nan``."""
    cdef bint digits = False
    if a < b and (s[a] == 43 or s[a] == 45):  # '+' '-'
        a += 1
    while a < b and 48 <= s[a] <= 57:
        a += 1
        digits = True
    if not integer:
        if a < b and s[a] == 46:  # '.'
            a += 1
            while a < b and 48 <= s[a] <= 57:
                a += 1
                digits = True
        if digits and a < b and (s[a] == 101 or s[a] == 69):  # 'e' 'E'
            a += 1
            if a < b and (s[a] == 43 or s[a] == 45):
                a += 1
            if not (a < b and 48 <= s[a] <= 57):
                return False
            while a < b and 48 <= s[a] <= 57:
                a += 1
    return digits and a == b


cdef inline bint exact_decimal(const uint8_t* s, Py_ssize_t a, Py_ssize_t b,
                               double* out) noexcept nogil:
    """``s[a:b]`` of the form ``[+-]?[0-9]+(\\.[0-9]*)?`` as ``float()`` reads it.

    Locale-free (``strtod`` reads ``1.5`` as 1 under a comma-decimal locale).
    Exact whenever it answers: the digits form an integer below 2**53 and the
    fraction has at most 22 digits, so one IEEE division of two exact values
    gives the correctly rounded result. Returns False otherwise, and for
    anything outside the form, leaving the caller's slower exact path.
    """
    cdef bint negative = False, digits = False
    cdef uint64_t mantissa = 0
    cdef Py_ssize_t fraction_digits = 0, k
    cdef double scale = 1.0  # 10**fraction_digits, exact up to 10**22
    if a < b and (s[a] == 43 or s[a] == 45):  # '+' '-'
        negative = s[a] == 45
        a += 1
    while a < b and 48 <= s[a] <= 57:
        mantissa = mantissa * 10 + (s[a] - 48)
        if mantissa >> 53:  # 2**53
            return False
        a += 1
        digits = True
    if not digits:
        return False
    if a < b and s[a] == 46:  # '.'
        a += 1
        while a < b and 48 <= s[a] <= 57:
            mantissa = mantissa * 10 + (s[a] - 48)
            fraction_digits += 1
            if mantissa >> 53 or fraction_digits > 22:
                return False
            a += 1
    if a != b:
        return False
    for k in range(fraction_digits):
        scale *= 10.0
    out[0] = <double>mantissa / scale
    if negative:
        out[0] = -out[0]
    return True


cdef inline bint exact_integer(const uint8_t* s, Py_ssize_t a, Py_ssize_t b,
                               int64_t* out) noexcept nogil:
    """``s[a:b]`` of the form ``[+-]?[0-9]{1,18}`` as an integer; False otherwise."""
    cdef bint negative = False
    cdef int64_t value = 0
    cdef Py_ssize_t n = 0
    if a < b and (s[a] == 43 or s[a] == 45):
        negative = s[a] == 45
        a += 1
    while a < b and 48 <= s[a] <= 57:
        value = value * 10 + (s[a] - 48)
        n += 1
        if n > 18:
            return False
        a += 1
    if n == 0 or a != b:
        return False
    out[0] = -value if negative else value
    return True
