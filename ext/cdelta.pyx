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
from libc.stdint cimport (
    int8_t,
    int16_t,
    int32_t,
    int64_t,
    uint8_t,
    uint32_t,
    uint64_t,
    uintptr_t,
)
from libc.stdlib cimport free, malloc
from libc.string cimport memmove

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
    /* 16-bit delta codings, eight samples at a time (SSE2, part of every x86-64):
       un-zig-zag, then running sums as a prefix sum in log steps, carried from one
       group to the next. Arithmetic mod 2**16 gives the same low 16 bits, all an
       int16 output keeps, as the scalar loop's 32-bit sums. Returns how many
       samples it decoded (a multiple of 8); the scalar loop does the rest. */
    #if defined(__SSE2__) || defined(_M_X64)
    #include <emmintrin.h>
    static inline __m128i ecgi_prefix16(__m128i x) {
        x = _mm_add_epi16(x, _mm_slli_si128(x, 2));
        x = _mm_add_epi16(x, _mm_slli_si128(x, 4));
        return _mm_add_epi16(x, _mm_slli_si128(x, 8));
    }
    static inline __m128i ecgi_last16(__m128i x) {  /* lane 7 in every lane */
        x = _mm_shufflehi_epi16(x, 0xFF);
        return _mm_unpackhi_epi64(x, x);
    }
    static Py_ssize_t ecgi_delta16(const uint8_t* p, int16_t* o, Py_ssize_t n, int coding,
                                   uint32_t* acc, uint32_t* d1) {
        const __m128i one = _mm_set1_epi16(1);
        const __m128i zero = _mm_setzero_si128();
        __m128i sum = _mm_set1_epi16((short)*acc);
        __m128i step = _mm_set1_epi16((short)*d1);
        Py_ssize_t i = 0;
        if (coding == 1) {
            for (; i + 8 <= n; i += 8) {
                __m128i u = _mm_loadu_si128((const __m128i*)(p + 2 * i));
                __m128i d = _mm_xor_si128(_mm_srli_epi16(u, 1),
                                          _mm_sub_epi16(zero, _mm_and_si128(u, one)));
                __m128i s = _mm_add_epi16(ecgi_prefix16(d), sum);
                _mm_storeu_si128((__m128i*)(o + i), s);
                sum = ecgi_last16(s);
            }
        } else {
            for (; i + 8 <= n; i += 8) {
                __m128i u = _mm_loadu_si128((const __m128i*)(p + 2 * i));
                __m128i d = _mm_xor_si128(_mm_srli_epi16(u, 1),
                                          _mm_sub_epi16(zero, _mm_and_si128(u, one)));
                __m128i e = _mm_add_epi16(ecgi_prefix16(d), step);
                __m128i s = _mm_add_epi16(ecgi_prefix16(e), sum);
                _mm_storeu_si128((__m128i*)(o + i), s);
                step = ecgi_last16(e);
                sum = ecgi_last16(s);
            }
        }
        *acc = (uint16_t)_mm_cvtsi128_si32(sum);
        *d1 = (uint16_t)_mm_cvtsi128_si32(step);
        return i;
    }
    #else
    static Py_ssize_t ecgi_delta16(const uint8_t* p, int16_t* o, Py_ssize_t n, int coding,
                                   uint32_t* acc, uint32_t* d1) {
        (void)p; (void)o; (void)n; (void)coding; (void)acc; (void)d1;
        return 0;
    }
    #endif
    """
    uint32_t _load "ecgi_cdelta_load"(const uint8_t* p, int nbytes) noexcept nogil
    Py_ssize_t _delta16 "ecgi_delta16"(const uint8_t* p, int16_t* o, Py_ssize_t n, int coding,
                                       uint32_t* acc, uint32_t* d1) noexcept nogil
    void _store "ecgi_cdelta_store"(uint8_t* p, uint32_t v, int nbytes) noexcept nogil


cdef inline uint32_t _unzigzag(uint32_t u) noexcept nogil:
    # u is a zig-zag code of a width-bit value; the result is that value's
    # two's complement bit pattern (only the low width bits matter).
    return (u >> 1) ^ (<uint32_t>0 - (u & 1))


cdef inline uint32_t _zigzag(uint32_t pattern, int bits) noexcept nogil:
    # pattern holds a width-bit two's complement value in its low bits.
    cdef int32_t s = sign_extend(pattern, bits)
    return (<uint32_t>s << 1) ^ <uint32_t>(s >> 31)


cdef struct _Carry:
    # Where a decode stopped, so the next piece of the coded block continues it:
    # the index of the next sample in the whole [channels, samples] block and the
    # running sums of the delta codings (reset at each channel's first sample).
    Py_ssize_t at
    uint32_t acc
    uint32_t d1


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _decode_run(const uint8_t* p, out_t* o, Py_ssize_t n, int nbytes, int bits,
                             int coding, _Carry* carry) noexcept nogil:
    # Called with literal nbytes/bits/coding so the C compiler specialises each loop.
    cdef Py_ssize_t i, start = 0
    cdef uint32_t acc = carry.acc, d1 = carry.d1
    if out_t is int16_t:
        if coding != 0 and nbytes == 2:
            start = _delta16(p, o, n, coding, &acc, &d1)
    if coding == 0:
        for i in range(n):
            o[i] = <out_t>sign_extend(_load(p + nbytes * i, nbytes), bits)
    elif coding == 1:
        for i in range(start, n):
            acc = acc + _unzigzag(_load(p + nbytes * i, nbytes))
            o[i] = <out_t>sign_extend(acc, bits)
    else:
        for i in range(start, n):
            d1 = d1 + _unzigzag(_load(p + nbytes * i, nbytes))
            acc = acc + d1
            o[i] = <out_t>sign_extend(acc, bits)
    carry.acc = acc
    carry.d1 = d1


cdef inline void _decode_width(const uint8_t* p, out_t* o, Py_ssize_t n, int nbytes, int bits,
                               int coding, _Carry* carry) noexcept nogil:
    if coding == 0:
        _decode_run(p, o, n, nbytes, bits, 0, carry)
    elif coding == 1:
        _decode_run(p, o, n, nbytes, bits, 1, carry)
    else:
        _decode_run(p, o, n, nbytes, bits, 2, carry)


cdef void _decode_span(const uint8_t* src, out_t* dst, Py_ssize_t count, Py_ssize_t samples,
                       int bits, int coding, _Carry* carry) noexcept nogil:
    # Decode the next ``count`` coded samples (channel-major, ``samples`` per channel)
    # into ``dst`` from ``carry.at`` on; the caller guarantees the block holds them.
    cdef int nbytes = bits >> 3
    cdef Py_ssize_t within, run
    while count > 0:
        within = carry.at % samples
        if within == 0:
            carry.acc = 0
            carry.d1 = 0
        run = samples - within
        if run > count:
            run = count
        if bits == 8:
            _decode_width(src, dst + carry.at, run, 1, 8, coding, carry)
        elif bits == 16:
            _decode_width(src, dst + carry.at, run, 2, 16, coding, carry)
        elif bits == 24:
            _decode_width(src, dst + carry.at, run, 3, 24, coding, carry)
        else:
            _decode_width(src, dst + carry.at, run, 4, 32, coding, carry)
        src += run * nbytes
        carry.at += run
        count -= run


cdef int _decode_kernel(const uint8_t* src, out_t* dst, Py_ssize_t channels,
                        Py_ssize_t samples, int bits, int coding) noexcept nogil:
    cdef _Carry carry
    carry.at = 0
    carry.acc = 0
    carry.d1 = 0
    _decode_span(src, dst, channels * samples, samples, bits, coding, &carry)
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


# ------------------------------------------------------- Zstandard, fused with decoding
#
# libzstd's functions are called through addresses found by ctypes (see
# ``formats/cdelta.py``): nothing here links against libzstd.

cdef struct ZSTD_inBuffer:
    const void* src
    size_t size
    size_t pos

cdef struct ZSTD_outBuffer:
    void* dst
    size_t size
    size_t pos

ctypedef void* (*_create_fn)() noexcept nogil
ctypedef size_t (*_free_fn)(void*) noexcept nogil
ctypedef size_t (*_one_shot_fn)(void*, void*, size_t, const void*, size_t) noexcept nogil
ctypedef size_t (*_stream_fn)(void*, ZSTD_outBuffer*, ZSTD_inBuffer*) noexcept nogil
ctypedef unsigned (*_is_error_fn)(size_t) noexcept nogil
ctypedef const char* (*_error_name_fn)(size_t) noexcept nogil
ctypedef size_t (*_frame_size_fn)(const void*, size_t) noexcept nogil

ZSTD_FUNCTIONS = ("ZSTD_createDCtx", "ZSTD_freeDCtx", "ZSTD_decompressDCtx",
                  "ZSTD_decompressStream", "ZSTD_isError", "ZSTD_getErrorName",
                  "ZSTD_findFrameCompressedSize")
"""The libzstd functions :class:`ZstdSamples` needs, in the order it takes their addresses."""

cdef enum _Outcome:
    _DONE = 0
    _SHORT = 1       # the frame ended after ``value`` bytes, fewer than the block needs
    _LONG = 2        # the frame holds more than the block needs
    _DAMAGED = 3     # libzstd refused the data; ``value`` is its error name
    _TRAILING = 4    # ``value`` bytes follow the frame
    _UNFINISHED = 5  # the input ends inside the frame, after ``value`` bytes of output
    _NO_MEMORY = 6

DONE = _DONE
"""``ZstdSamples.decode`` outcomes, returned with a value (see ``_Outcome``)."""
SHORT = _SHORT
LONG = _LONG
DAMAGED = _DAMAGED
TRAILING = _TRAILING
UNFINISHED = _UNFINISHED
NO_MEMORY = _NO_MEMORY

cdef enum:
    _ONE_SHOT_MAX = 1 << 20  # frames up to this size are decoded at once into the scratch
    _PIECE = 1 << 17         # larger ones stream through it one zstd block (128 KiB) at a time


@cython.auto_pickle(False)
cdef class ZstdSamples:
    """One thread's Zstandard decompression context and a bounded scratch buffer.

    ``decode`` decompresses one frame and decodes its samples straight from the
    scratch into the output, with the GIL released: the coded bytes are read
    while still in cache, and no bytes object is made for them. A frame of a
    known size up to 1 MiB is decompressed at once with the kept context (one
    pass that starts from a clean state for every frame); any other frame
    streams through the scratch 128 KiB at a time with a context of its own,
    freed afterwards, whose buffers therefore never depend on earlier frames.
    After any error the kept context is freed and the next frame gets a new one.
    Not for use by two threads at once (each thread keeps its own).
    """

    cdef _create_fn create_dctx
    cdef _free_fn free_dctx
    cdef _one_shot_fn one_shot
    cdef _stream_fn stream
    cdef _is_error_fn is_error
    cdef _error_name_fn error_name
    cdef _frame_size_fn frame_size
    cdef void* dctx
    cdef uint8_t* scratch
    cdef bint busy

    def __cinit__(self):
        self.create_dctx = NULL
        self.free_dctx = NULL
        self.dctx = NULL
        self.scratch = NULL
        self.busy = False

    def __init__(self, addresses):
        cdef tuple found = tuple(addresses)
        if len(found) != len(ZSTD_FUNCTIONS) or not all(found):
            raise ValueError(f"need the addresses of {', '.join(ZSTD_FUNCTIONS)}")
        self.create_dctx = <_create_fn><void*><uintptr_t>found[0]
        self.free_dctx = <_free_fn><void*><uintptr_t>found[1]
        self.one_shot = <_one_shot_fn><void*><uintptr_t>found[2]
        self.stream = <_stream_fn><void*><uintptr_t>found[3]
        self.is_error = <_is_error_fn><void*><uintptr_t>found[4]
        self.error_name = <_error_name_fn><void*><uintptr_t>found[5]
        self.frame_size = <_frame_size_fn><void*><uintptr_t>found[6]

    def __dealloc__(self):
        if self.dctx != NULL and self.free_dctx != NULL:
            self.free_dctx(self.dctx)
        free(self.scratch)

    def decode(self, const uint8_t[::1] block, long long content_size, int bits,
               int coding, cnp.ndarray out):
        """Decompress the one Zstandard frame ``block`` and decode its samples into ``out``.

        ``content_size`` is the frame header's content size (anything that is not
        exactly the block's size, such as an unknown size, selects the streaming
        path). ``out`` is a writable C-contiguous [channels, samples] array of
        ``out_dtype(bits)``; nothing past it is ever written, whatever the frame
        holds. Returns ``(outcome, value)`` with an outcome of this module
        (``DONE``, ``SHORT``, ``LONG``, ``DAMAGED``, ``TRAILING``, ``UNFINISHED``,
        ``NO_MEMORY``), or ``(BAD_VALUE, 0)`` for a width or coding that does not exist.
        """
        if (out.ndim != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(out)
                or not cnp.PyArray_ISWRITEABLE(out)):
            raise ValueError("out must be a writable C-contiguous [channels, samples] array")
        if bits not in (8, 16, 24, 32) or coding not in (0, 1, 2):
            return BAD_VALUE, 0
        if out.dtype != out_dtype(bits):
            raise ValueError(f"out must be {out_dtype(bits)} for {bits}-bit samples")
        if out.shape[0] < 1 or out.shape[1] < 1 or block.shape[0] < 1:
            return BAD_VALUE, 0
        if self.create_dctx == NULL:
            raise ValueError("ZstdSamples was not given libzstd's functions")
        if self.busy:
            raise RuntimeError("a ZstdSamples decodes one frame at a time")
        cdef int outcome = _DONE
        cdef size_t value = 0
        cdef void* dst = cnp.PyArray_DATA(out)
        self.busy = True
        try:
            with nogil:
                outcome = self._run(&block[0], <size_t>block.shape[0], content_size, dst,
                                    out.shape[0], out.shape[1], bits, coding, &value)
        finally:
            self.busy = False
        if outcome == _DAMAGED:
            return outcome, self.error_name(value).decode("ascii", "replace")
        return outcome, value

    cdef int _run(self, const uint8_t* src, size_t size, long long content_size,
                  void* dst, Py_ssize_t channels, Py_ssize_t samples, int bits, int coding,
                  size_t* value) noexcept nogil:
        cdef size_t expected = <size_t>(channels * samples * (bits >> 3))
        cdef size_t got, framed
        cdef _Carry carry
        carry.at = 0
        carry.acc = 0
        carry.d1 = 0
        if self.scratch == NULL:
            self.scratch = <uint8_t*>malloc(_ONE_SHOT_MAX)
            if self.scratch == NULL:
                return _NO_MEMORY
        if content_size == <long long>expected and expected <= _ONE_SHOT_MAX:
            framed = self.frame_size(src, size)
            if not self.is_error(framed) and framed == size:
                if self.dctx == NULL:
                    self.dctx = self.create_dctx()
                    if self.dctx == NULL:
                        return _NO_MEMORY
                got = self.one_shot(self.dctx, self.scratch, expected, src, size)
                if self.is_error(got):
                    self.free_dctx(self.dctx)  # nothing of a failed frame is kept
                    self.dctx = NULL
                    value[0] = got
                    return _DAMAGED
                if got != expected:
                    value[0] = got
                    return _SHORT
                _decode_into(self.scratch, dst, channels * samples, samples, bits, coding,
                             &carry)
                return _DONE
        return self._stream(src, size, dst, expected, samples, bits, coding, value)

    cdef int _stream(self, const uint8_t* src, size_t size, void* dst, size_t expected,
                     Py_ssize_t samples, int bits, int coding, size_t* value) noexcept nogil:
        cdef size_t nbytes = <size_t>(bits >> 3)
        cdef size_t total = 0, whole, kept = 0, hint, fed, produced
        cdef int outcome = _DONE
        cdef ZSTD_inBuffer feed
        cdef ZSTD_outBuffer room
        cdef _Carry carry
        cdef void* dctx = self.create_dctx()
        if dctx == NULL:
            return _NO_MEMORY
        carry.at = 0
        carry.acc = 0
        carry.d1 = 0
        feed.src = src
        feed.size = size
        feed.pos = 0
        room.dst = self.scratch
        room.size = _PIECE + 4
        while True:
            room.pos = kept  # a sample split between two pieces waits at the start
            fed = feed.pos
            hint = self.stream(dctx, &room, &feed)
            if self.is_error(hint):
                value[0] = hint
                outcome = _DAMAGED
                break
            produced = room.pos - kept
            total += produced
            if total > expected:
                outcome = _LONG
                break
            whole = room.pos - room.pos % nbytes
            _decode_into(self.scratch, dst, <Py_ssize_t>(whole // nbytes), samples, bits,
                         coding, &carry)
            kept = room.pos - whole
            if kept:
                memmove(self.scratch, self.scratch + whole, kept)
            if hint == 0:  # the frame is complete
                if feed.pos < size:
                    value[0] = size - feed.pos
                    outcome = _TRAILING
                elif total < expected:
                    value[0] = total
                    outcome = _SHORT
                break
            if room.pos < room.size and (feed.pos == size or (feed.pos == fed and not produced)):
                # the frame is unfinished and all input is read (or nothing moved)
                value[0] = total
                outcome = _UNFINISHED
                break
        self.free_dctx(dctx)
        return outcome


cdef void _decode_into(const uint8_t* src, void* dst, Py_ssize_t count, Py_ssize_t samples,
                       int bits, int coding, _Carry* carry) noexcept nogil:
    if bits == 8:
        _decode_span(src, <int8_t*>dst, count, samples, bits, coding, carry)
    elif bits == 16:
        _decode_span(src, <int16_t*>dst, count, samples, bits, coding, carry)
    else:
        _decode_span(src, <int32_t*>dst, count, samples, bits, coding, carry)


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
