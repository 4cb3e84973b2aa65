# cython: language_level=3
"""Compressed Delta (cMdT) sample kernels: coded bytes <-> channel-major integers.

The Python side (``ecgingest.formats.cdelta``) parses the header, bounds and
runs the decompressor and allocates the output. The decoder checks that the
coded block has exactly channels x samples x width bytes (a status code
otherwise, mapped to a typed error by ``DecodeContext.check_status``), then
runs once, without the GIL, over that block. Every read and write index is derived from the sizes
checked before the kernel starts, so bounds checking is off.
"""

cimport cython
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

import numpy as np

cimport numpy as cnp

from _bytes cimport load_le16, load_le24, load_le32, sign_extend
from _status cimport BAD_VALUE, OK, OVERFLOW, TRUNCATED

cnp.import_array()

ctypedef fused out_t:
    int8_t
    int16_t
    int32_t

ctypedef fused in_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef extern from *:
    """
    #include <string.h>
    /* Little-endian slot access. On little-endian hosts a fixed-size memcpy
       compiles to one unaligned load/store, which lets the compiler vectorise
       the coding loops; elsewhere the bytes are assembled one by one. */
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ || \
        defined(_M_IX86) || defined(_M_X64) || defined(_M_ARM64)
    #define ECGI_CDELTA_LE 1
    #else
    #define ECGI_CDELTA_LE 0
    #endif
    static inline uint32_t ecgi_cdelta_load(const uint8_t* p, int nbytes) {
        if (nbytes == 1) return p[0];
        if (nbytes == 3) return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    #if ECGI_CDELTA_LE
        if (nbytes == 2) { uint16_t v; memcpy(&v, p, 2); return v; }
        { uint32_t v; memcpy(&v, p, 4); return v; }
    #else
        if (nbytes == 2) return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
               | ((uint32_t)p[3] << 24);
    #endif
    }
    static inline void ecgi_cdelta_store(uint8_t* p, uint32_t v, int nbytes) {
    #if ECGI_CDELTA_LE
        if (nbytes == 2) { uint16_t w = (uint16_t)v; memcpy(p, &w, 2); return; }
        if (nbytes == 4) { memcpy(p, &v, 4); return; }
    #endif
        p[0] = (uint8_t)v;
        if (nbytes >= 2) p[1] = (uint8_t)(v >> 8);
        if (nbytes >= 3) p[2] = (uint8_t)(v >> 16);
        if (nbytes == 4) p[3] = (uint8_t)(v >> 24);
    }
    """
    uint32_t _load "ecgi_cdelta_load"(const uint8_t* p, int nbytes) noexcept nogil
    void _store "ecgi_cdelta_store"(uint8_t* p, uint32_t v, int nbytes) noexcept nogil


cdef inline uint32_t _unzigzag(uint32_t u) noexcept nogil:
    # u is a zig-zag code of a width-bit value; the result is that value's
    # two's complement bit pattern (only the low width bits matter).
    return (u >> 1) ^ (<uint32_t>0 - (u & 1))


cdef inline uint32_t _zigzag(uint32_t pattern, int bits) noexcept nogil:
    # pattern holds a width-bit two's complement value in its low bits.
    cdef int32_t s = sign_extend(pattern, bits)
    return (<uint32_t>s << 1) ^ <uint32_t>(s >> 31)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _decode_run(const uint8_t* p, out_t* o, Py_ssize_t n, int nbytes, int bits,
                             int coding) noexcept nogil:
    # Called with literal nbytes/bits/coding so the C compiler specialises each loop.
    cdef Py_ssize_t i
    cdef uint32_t acc = 0, d1 = 0
    if coding == 0:
        for i in range(n):
            o[i] = <out_t>sign_extend(_load(p + nbytes * i, nbytes), bits)
    elif coding == 1:
        for i in range(n):
            acc = acc + _unzigzag(_load(p + nbytes * i, nbytes))
            o[i] = <out_t>sign_extend(acc, bits)
    else:
        for i in range(n):
            d1 = d1 + _unzigzag(_load(p + nbytes * i, nbytes))
            acc = acc + d1
            o[i] = <out_t>sign_extend(acc, bits)


cdef inline void _decode_width(const uint8_t* p, out_t* o, Py_ssize_t n, int nbytes, int bits,
                               int coding) noexcept nogil:
    if coding == 0:
        _decode_run(p, o, n, nbytes, bits, 0)
    elif coding == 1:
        _decode_run(p, o, n, nbytes, bits, 1)
    else:
        _decode_run(p, o, n, nbytes, bits, 2)


cdef int _decode_kernel(const uint8_t* src, out_t* dst, Py_ssize_t channels,
                        Py_ssize_t samples, int bits, int coding) noexcept nogil:
    cdef int nbytes = bits >> 3
    cdef Py_ssize_t c
    cdef const uint8_t* p
    cdef out_t* o
    for c in range(channels):
        p = src + c * samples * nbytes
        o = dst + c * samples
        if bits == 8:
            _decode_width(p, o, samples, 1, 8, coding)
        elif bits == 16:
            _decode_width(p, o, samples, 2, 16, coding)
        elif bits == 24:
            _decode_width(p, o, samples, 3, 24, coding)
        else:
            _decode_width(p, o, samples, 4, 32, coding)
    return OK


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _encode_run(const in_t* s, uint8_t* p, Py_ssize_t n, int nbytes, int bits,
                             int coding) noexcept nogil:
    # Called with literal nbytes/bits/coding so the C compiler specialises each loop.
    # Differences are taken from the input array (not a carried variable) so
    # the loops have no recurrence and vectorise; arithmetic wraps mod 2**32.
    cdef uint32_t mask = <uint32_t>((<uint64_t>1 << bits) - 1)
    cdef Py_ssize_t i
    cdef uint32_t d
    if coding == 0:
        for i in range(n):
            _store(p + nbytes * i, <uint32_t>(<int64_t>s[i]) & mask, nbytes)
    elif coding == 1:
        _store(p, _zigzag(<uint32_t>(<int64_t>s[0]) & mask, bits) & mask, nbytes)
        for i in range(1, n):
            d = <uint32_t>(<int64_t>s[i]) - <uint32_t>(<int64_t>s[i - 1])
            _store(p + nbytes * i, _zigzag(d & mask, bits) & mask, nbytes)
    else:
        _store(p, _zigzag(<uint32_t>(<int64_t>s[0]) & mask, bits) & mask, nbytes)
        if n > 1:
            d = <uint32_t>(<int64_t>s[1]) - 2 * <uint32_t>(<int64_t>s[0])
            _store(p + nbytes, _zigzag(d & mask, bits) & mask, nbytes)
        for i in range(2, n):
            d = (<uint32_t>(<int64_t>s[i]) - 2 * <uint32_t>(<int64_t>s[i - 1])
                 + <uint32_t>(<int64_t>s[i - 2]))
            _store(p + nbytes * i, _zigzag(d & mask, bits) & mask, nbytes)


cdef inline void _encode_width(const in_t* s, uint8_t* p, Py_ssize_t n, int nbytes, int bits,
                               int coding) noexcept nogil:
    if coding == 0:
        _encode_run(s, p, n, nbytes, bits, 0)
    elif coding == 1:
        _encode_run(s, p, n, nbytes, bits, 1)
    else:
        _encode_run(s, p, n, nbytes, bits, 2)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _encode_kernel(const in_t* src, uint8_t* dst, Py_ssize_t channels,
                        Py_ssize_t samples, int bits, int coding,
                        Py_ssize_t* bad) noexcept nogil:
    cdef int nbytes = bits >> 3
    cdef int64_t lo = -(<int64_t>1 << (bits - 1))
    cdef int64_t hi = (<int64_t>1 << (bits - 1)) - 1
    cdef Py_ssize_t c, i, n = channels * samples
    cdef const in_t* s
    cdef uint8_t* p
    cdef int64_t v
    # a value that does not fit the width cannot round-trip (skipped when the type fits)
    if <int>sizeof(in_t) * 8 > bits:
        for i in range(n):
            v = <int64_t>src[i]
            if v < lo or v > hi:
                bad[0] = i
                return OVERFLOW
    for c in range(channels):
        s = src + c * samples
        p = dst + c * samples * nbytes
        if bits == 8:
            _encode_width(s, p, samples, 1, 8, coding)
        elif bits == 16:
            _encode_width(s, p, samples, 2, 16, coding)
        elif bits == 24:
            _encode_width(s, p, samples, 3, 24, coding)
        else:
            _encode_width(s, p, samples, 4, 32, coding)
    return OK


def out_dtype(int bits):
    """Smallest signed dtype holding a sample of ``bits`` bits."""
    if bits == 8:
        return np.dtype(np.int8)
    if bits == 16:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


def decode_samples(const uint8_t[::1] coded, int bits, int coding, cnp.ndarray out):
    """Decode a fully decompressed coded block into ``out`` ([channels, samples]).

    ``out`` is a C-contiguous array of ``out_dtype(bits)``. Returns a status:
    ``BAD_VALUE`` for a width or coding that does not exist, ``TRUNCATED``
    when the block is not exactly channels x samples x width bytes (the check
    that makes the unchecked kernel safe).
    """
    if (out.ndim != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(out)
            or not cnp.PyArray_ISWRITEABLE(out)):
        raise ValueError("out must be a writable C-contiguous [channels, samples] array")
    if bits not in (8, 16, 24, 32) or coding not in (0, 1, 2):
        return BAD_VALUE
    if out.dtype != out_dtype(bits):
        raise ValueError(f"out must be {out_dtype(bits)} for {bits}-bit samples")
    cdef Py_ssize_t channels = out.shape[0]
    cdef Py_ssize_t samples = out.shape[1]
    if channels < 1 or samples < 1:
        return BAD_VALUE
    if coded.shape[0] != channels * samples * (bits >> 3):
        return TRUNCATED
    cdef int8_t[:, ::1] o8
    cdef int16_t[:, ::1] o16
    cdef int32_t[:, ::1] o32
    cdef const uint8_t* src = &coded[0]
    if bits == 8:
        o8 = out
        with nogil:
            _decode_kernel(src, &o8[0, 0], channels, samples, bits, coding)
    elif bits == 16:
        o16 = out
        with nogil:
            _decode_kernel(src, &o16[0, 0], channels, samples, bits, coding)
    else:
        o32 = out
        with nogil:
            _decode_kernel(src, &o32[0, 0], channels, samples, bits, coding)
    return OK


def _encode_typed(const in_t[:, ::1] samples, int bits, int coding):
    cdef Py_ssize_t channels = samples.shape[0]
    cdef Py_ssize_t n = samples.shape[1]
    cdef Py_ssize_t bad = -1
    cdef int status
    out = np.empty(channels * n * (bits >> 3), dtype=np.uint8)
    cdef uint8_t[::1] o = out
    with nogil:
        status = _encode_kernel(&samples[0, 0], &o[0], channels, n, bits, coding, &bad)
    if status == OVERFLOW:
        c, i = divmod(bad, n)
        raise OverflowError(
            f"sample {i} of channel {c} ({samples[c, i]}) does not fit a signed "
            f"{bits}-bit integer; choose a larger bits_per_sample")
    elif status != OK:  # the kernel returns only OK or OVERFLOW
        raise RuntimeError("the coding kernel failed")
    return out


def encode_samples(samples, int bits, int coding):
    """Code a C-contiguous [channels, samples] signed integer array into width-bit slots."""
    if bits not in (8, 16, 24, 32) or coding not in (0, 1, 2):
        raise ValueError("bits must be 8/16/24/32 and coding 0/1/2")
    arr = np.ascontiguousarray(samples)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError("samples must be a non-empty [channels, samples] array")
    if arr.dtype in (np.int8, np.int16, np.int32, np.int64):
        return _encode_typed(arr, bits, coding)
    raise TypeError(f"samples must be int8/16/32/64, not {arr.dtype}")
