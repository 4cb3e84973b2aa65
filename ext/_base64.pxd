# Header-only base64 decoding for the XML format kernels (MUSE waveforms today).
# Inline, noexcept and nogil.
#
# The semantics are those of Python's binascii.a2b_base64 (non-strict mode), so a
# kernel can replace it without changing what any file reads as:
# - bytes outside the alphabet (whitespace, anything else) are skipped;
# - '=' ends the data once it completes a quad (after 2 or 3 data characters),
#   and the rest is ignored; other '=' are skipped;
# - data ending inside a quad is an error (one spare character: "cannot be 1
#   more than a multiple of 4"; two or three: "incorrect padding").
# Groups of four alphabet characters take a fast path (3 bytes per step);
# everything else goes through the general one-character state machine.
from libc.stdint cimport uint8_t, uint32_t

cdef enum Base64Status:
    BASE64_OK = 0
    BASE64_ONE_EXTRA = 1  # a single data character after the last complete quad
    BASE64_PADDING = 2  # two or three data characters and no padding


# 255: not in the alphabet ('=' is handled apart); 0-63: the character's value
cdef extern from *:
    """
    static const unsigned char ecgingest_base64_values[256] = {
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,  62, 255, 255, 255,  63,
         52,  53,  54,  55,  56,  57,  58,  59,  60,  61, 255, 255, 255, 255, 255, 255,
        255,   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,
         15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255, 255,
        255,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,  40,
         41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    };
    """
    const uint8_t BASE64_VALUES "ecgingest_base64_values"[256]


# Three bytes of a decoded quad (bits 23..0 of ``v``) written as one 4-byte store;
# the fourth byte is scratch, inside base64_capacity's margin and overwritten next.
cdef extern from *:
    """
    #include <string.h>
    static inline void ecgingest_base64_store3(unsigned char* out, uint32_t v) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
        uint32_t w = __builtin_bswap32(v << 8);
        memcpy(out, &w, 4);
    #else
        out[0] = (unsigned char)(v >> 16);
        out[1] = (unsigned char)(v >> 8);
        out[2] = (unsigned char)v;
    #endif
    }
    """
    void base64_store3 "ecgingest_base64_store3"(uint8_t* out, uint32_t v) noexcept nogil


# The value of each character already shifted to its place in a quad (first character:
# bits 23..18, ... fourth: 5..0); 0xFFFFFFFF outside the alphabet, so the OR of a
# quad's four entries is below 2**24 exactly when all four are base64 characters.
cdef extern from *:
    """
    #define ECGINGEST_B64V(c) ((c) >= 'A' && (c) <= 'Z' ? (c) - 'A' : \\
        (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26 : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52 : \\
        (c) == '+' ? 62 : (c) == '/' ? 63 : -1)
    #define ECGINGEST_B64S(c, shift) (ECGINGEST_B64V(c) < 0 ? 0xFFFFFFFFu : \\
        (uint32_t)ECGINGEST_B64V(c) << (shift))
    #define ECGINGEST_B64R4(s, c) ECGINGEST_B64S(c, s), ECGINGEST_B64S((c) + 1, s), \\
        ECGINGEST_B64S((c) + 2, s), ECGINGEST_B64S((c) + 3, s)
    #define ECGINGEST_B64R16(s, c) ECGINGEST_B64R4(s, c), ECGINGEST_B64R4(s, (c) + 4), \\
        ECGINGEST_B64R4(s, (c) + 8), ECGINGEST_B64R4(s, (c) + 12)
    #define ECGINGEST_B64R64(s, c) ECGINGEST_B64R16(s, c), ECGINGEST_B64R16(s, (c) + 16), \\
        ECGINGEST_B64R16(s, (c) + 32), ECGINGEST_B64R16(s, (c) + 48)
    #define ECGINGEST_B64R256(s) ECGINGEST_B64R64(s, 0), ECGINGEST_B64R64(s, 64), \\
        ECGINGEST_B64R64(s, 128), ECGINGEST_B64R64(s, 192)
    static const uint32_t ecgingest_base64_placed[4][256] = {
        {ECGINGEST_B64R256(18)}, {ECGINGEST_B64R256(12)},
        {ECGINGEST_B64R256(6)}, {ECGINGEST_B64R256(0)}};
    """
    const uint32_t BASE64_PLACED "ecgingest_base64_placed"[4][256]


cdef inline Py_ssize_t base64_capacity(Py_ssize_t text_length) noexcept nogil:
    """Bytes that decoding ``text_length`` characters can produce at most."""
    return (text_length // 4) * 3 + 3


cdef inline int base64_decode(const uint8_t* src, Py_ssize_t n, uint8_t* out,
                              Py_ssize_t* produced, Py_ssize_t* skipped) noexcept nogil:
    """Decode ``src[:n]`` into ``out`` (``base64_capacity(n)`` bytes); ``produced``: bytes
    written, ``skipped``: characters of all ``src`` outside the alphabet, whitespace and
    '=' aside."""
    cdef Py_ssize_t i = 0, k = 0, bad = 0, start
    cdef uint32_t a, b, c, d, left = 0
    cdef int quad = 0, pads = 0
    cdef uint8_t ch, value
    while i < n:
        if quad == 0 and i + 4 <= n:
            # whole quads of alphabet characters, the bulk of any text: a tight loop
            start = i
            while i + 4 <= n:
                a = (BASE64_PLACED[0][src[i]] | BASE64_PLACED[1][src[i + 1]]
                     | BASE64_PLACED[2][src[i + 2]] | BASE64_PLACED[3][src[i + 3]])
                if a >= 0x1000000:
                    break
                base64_store3(out + k, a)
                k += 3
                i += 4
            if i != start:
                pads = 0
                continue
        ch = src[i]
        i += 1
        if ch == 61:  # '='
            if quad >= 2:
                pads += 1
                if quad + pads >= 4:  # the end: what follows is only counted
                    while i < n:
                        ch = src[i]
                        i += 1
                        if BASE64_VALUES[ch] >= 64 and not (ch == 61 or ch == 32 or ch == 9
                                                            or ch == 10 or ch == 13):
                            bad += 1
                    produced[0] = k
                    skipped[0] = bad
                    return BASE64_OK
            continue
        value = BASE64_VALUES[ch]
        if value >= 64:
            if not (ch == 32 or ch == 9 or ch == 10 or ch == 13):
                bad += 1
            continue
        pads = 0
        if quad == 0:
            left = value
            quad = 1
        elif quad == 1:
            out[k] = <uint8_t>((left << 2) | (value >> 4))
            k += 1
            left = value & 0x0F
            quad = 2
        elif quad == 2:
            out[k] = <uint8_t>((left << 4) | (value >> 2))
            k += 1
            left = value & 0x03
            quad = 3
        else:
            out[k] = <uint8_t>((left << 6) | value)
            k += 1
            quad = 0
    produced[0] = k
    skipped[0] = bad
    if quad == 1:
        return BASE64_ONE_EXTRA
    if quad != 0:
        return BASE64_PADDING
    return BASE64_OK
