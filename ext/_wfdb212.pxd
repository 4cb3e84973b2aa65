# Format 212 in two steps over a block of whole frames that stays in the caches:
#
# 1. ``unpack``: the block's 3-byte groups into 12-bit samples, frame by frame
#    as stored (flat, interleaved int16). With SSSE3 one shuffle pair turns 12
#    bytes into 8 samples; with AVX2, 24 bytes into 16.
# 2. ``deinterleave``: the flat samples into the per-signal outputs, adding each
#    signal's sum (the checksum). With SSE2 eight frames of eight signals are
#    transposed in registers: eight loads, 24 unpacks, eight stores, and the
#    sums are vertical adds of the eight frames (12-bit values: eight of them
#    fit in 16 bits).
#
# Format 16 (``w16_deinterleave``) is flat little-endian 16-bit samples already:
# the same transpose reads the file's bytes directly, for frames of eight
# signals or more; its sums are taken after the transpose, in 32-bit lanes.
#
# The scalar code is the reference and the path on other machines. SSE2 is
# part of x86-64; SSSE3 and AVX2 are checked at run time (GCC and Clang).
# With AVX2 the transpose takes sixteen frames a step.
# ``w212_set_level`` caps the level used (tests run every level the machine
# has); it returns the level now in force.

from libc.stdint cimport int16_t, int64_t, uint8_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__x86_64__) || defined(_M_X64)
    #include <emmintrin.h>
    #define W212_SSE2 1
    #else
    #define W212_SSE2 0
    #endif
    #if W212_SSE2 && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define W212_DISPATCH 1
    #else
    #define W212_DISPATCH 0
    #endif

    /* 0: scalar, 1: SSE2 deinterleave, 2: + SSSE3 unpack, 3: + AVX2 unpack */
    static int w212_level = -1;

    static int w212_max_level(void) {
    #if W212_DISPATCH
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) return 3;
        if (__builtin_cpu_supports("ssse3")) return 2;
        return 1;
    #elif W212_SSE2
        return 1;
    #else
        return 0;
    #endif
    }

    static int w212_set_level(int level) {
        int top = w212_max_level();
        w212_level = (level < 0 || level > top) ? top : level;
        return w212_level;
    }

    static inline int w212_get_level(void) {
        if (w212_level < 0) w212_set_level(-1);
        return w212_level;
    }

    static inline int16_t w212_first(const uint8_t *p) {
        return (int16_t)((int32_t)((p[0] | ((uint32_t)(p[1] & 0x0F) << 8)) ^ 0x800) - 0x800);
    }

    static inline int16_t w212_second(const uint8_t *p) {
        return (int16_t)((int32_t)((p[2] | ((uint32_t)(p[1] & 0xF0) << 4)) ^ 0x800) - 0x800);
    }

    /* ``ngroups`` 3-byte groups from ``p`` into ``2 * ngroups`` samples at ``d``;
       reads no byte past the last group */
    static void w212_unpack_scalar(const uint8_t *p, int64_t ngroups, int16_t *d) {
        int64_t g;
        for (g = 0; g < ngroups; g++) {
            d[2 * g] = w212_first(p + 3 * g);
            d[2 * g + 1] = w212_second(p + 3 * g);
        }
    }

    #if W212_DISPATCH
    /* Four groups: bytes b0 b1 b2 -> lanes (b0 | b1 << 8, b2 | b1 << 8); the low
       bytes come from one shuffle, the nibbles from another: the first sample's
       nibble is moved to the top by a multiply by 16, both are masked to the top
       four bits and shifted back arithmetically, which extends the sign. */
    #define W212_SHUF_LO 0, -1, 2, -1, 3, -1, 5, -1, 6, -1, 8, -1, 9, -1, 11, -1
    #define W212_SHUF_HI -1, 1, -1, 1, -1, 4, -1, 4, -1, 7, -1, 7, -1, 10, -1, 10

    __attribute__((target("ssse3")))
    static void w212_unpack_ssse3(const uint8_t *p, int64_t ngroups, int16_t *d) {
        const __m128i lo_idx = _mm_setr_epi8(W212_SHUF_LO);
        const __m128i hi_idx = _mm_setr_epi8(W212_SHUF_HI);
        const __m128i mul = _mm_setr_epi16(16, 1, 16, 1, 16, 1, 16, 1);
        const __m128i top = _mm_set1_epi16((short)0xF000);
        int64_t g = 0;
        /* a 16-byte load for 12 bytes: stop while 4 more bytes are in range */
        for (; g + 6 <= ngroups; g += 4) {
            __m128i x = _mm_loadu_si128((const __m128i *)(p + 3 * g));
            __m128i lo = _mm_shuffle_epi8(x, lo_idx);
            __m128i hi = _mm_shuffle_epi8(x, hi_idx);
            hi = _mm_srai_epi16(_mm_and_si128(_mm_mullo_epi16(hi, mul), top), 4);
            _mm_storeu_si128((__m128i *)(d + 2 * g), _mm_or_si128(lo, hi));
        }
        w212_unpack_scalar(p + 3 * g, ngroups - g, d + 2 * g);
    }

    __attribute__((target("avx2")))
    static void w212_unpack_avx2(const uint8_t *p, int64_t ngroups, int16_t *d) {
        const __m256i lo_idx = _mm256_setr_epi8(W212_SHUF_LO, W212_SHUF_LO);
        const __m256i hi_idx = _mm256_setr_epi8(W212_SHUF_HI, W212_SHUF_HI);
        const __m256i mul = _mm256_setr_epi16(16, 1, 16, 1, 16, 1, 16, 1,
                                              16, 1, 16, 1, 16, 1, 16, 1);
        const __m256i top = _mm256_set1_epi16((short)0xF000);
        int64_t g = 0;
        /* eight groups from two 16-byte loads, 12 bytes apart */
        for (; g + 10 <= ngroups; g += 8) {
            const uint8_t *q = p + 3 * g;
            __m256i x = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q)),
                _mm_loadu_si128((const __m128i *)(q + 12)), 1);
            __m256i lo = _mm256_shuffle_epi8(x, lo_idx);
            __m256i hi = _mm256_shuffle_epi8(x, hi_idx);
            hi = _mm256_srai_epi16(_mm256_and_si256(_mm256_mullo_epi16(hi, mul), top), 4);
            _mm256_storeu_si256((__m256i *)(d + 2 * g), _mm256_or_si256(lo, hi));
        }
        w212_unpack_ssse3(p + 3 * g, ngroups - g, d + 2 * g);
    }
    #endif

    static void w212_unpack(const uint8_t *p, int64_t ngroups, int16_t *d) {
    #if W212_DISPATCH
        int level = w212_get_level();
        if (level >= 3) { w212_unpack_avx2(p, ngroups, d); return; }
        if (level >= 2) { w212_unpack_ssse3(p, ngroups, d); return; }
    #endif
        w212_unpack_scalar(p, ngroups, d);
    }

    /* Signals ``lo..hi-1`` of frames ``f..n-1`` of the flat block ``src``. */
    static void w212_deint_scalar(const int16_t *src, int nsig, int64_t f, int64_t n,
                                  int lo, int hi, int16_t **outs, int64_t f0,
                                  int64_t *sums) {
        int s;
        int64_t k;
        for (s = lo; s < hi; s++) {
            int16_t *o = outs[s] + f0;
            int32_t total = 0;
            for (k = f; k < n; k++) {
                int16_t v = src[k * nsig + s];
                o[k] = v;
                total += v;
            }
            sums[s] += total;
        }
    }

    /* The outputs of signals ``base..base+7`` at frame ``f0`` into ``o``: those of
       ``jlo..jhi-1``, NULL for the others (stored by another group). */
    static inline __attribute__((always_inline)) void
    w212_group_outputs(int16_t **o, int16_t **outs, int base, int jlo, int jhi, int64_t f0) {
        int j;
        for (j = 0; j < 8; j++)
            o[j] = (j >= jlo && j < jhi) ? outs[base + j] + f0 : NULL;
    }

    /* Every signal through DEINT (``w212_deint8`` or its AVX2 twin), eight at a
       time; fewer than eight signals in one call whose rows overlap (lanes past
       nsig belong to the next frame); the last eight, when nsig is not a multiple
       of eight, storing only those the groups before did not. */
    #define W212_BY_EIGHTS(DEINT) do {                                                \
            int c;                                                                     \
            if (nsig < 8) {                                                            \
                DEINT(src, nsig, n, 0, 0, nsig, outs, f0, sums, 0);                    \
                break;                                                                 \
            }                                                                          \
            for (c = 0; c + 8 <= nsig; c += 8)                                         \
                DEINT(src, nsig, n, c, 0, 8, outs, f0, sums, 1);                       \
            if (c < nsig)                                                              \
                DEINT(src, nsig, n, nsig - 8, c - (nsig - 8), 8, outs, f0, sums, 0);   \
        } while (0)

    #if W212_SSE2
    /* Rows a0..a7 (eight frames of eight signals; with 256 bits, two such sets,
       one in each 128-bit half) to columns c[0..7] (a signal's eight frames).
       P: the intrinsics' prefix, V: the vector type. */
    #define W212_TRANSPOSE(P, V)                                                       \
            V c[8];                                                                    \
            V t0 = P##_unpacklo_epi16(a0, a1), t1 = P##_unpackhi_epi16(a0, a1);       \
            V t2 = P##_unpacklo_epi16(a2, a3), t3 = P##_unpackhi_epi16(a2, a3);       \
            V t4 = P##_unpacklo_epi16(a4, a5), t5 = P##_unpackhi_epi16(a4, a5);       \
            V t6 = P##_unpacklo_epi16(a6, a7), t7 = P##_unpackhi_epi16(a6, a7);       \
            V u0 = P##_unpacklo_epi32(t0, t2), u1 = P##_unpackhi_epi32(t0, t2);       \
            V u2 = P##_unpacklo_epi32(t1, t3), u3 = P##_unpackhi_epi32(t1, t3);       \
            V u4 = P##_unpacklo_epi32(t4, t6), u5 = P##_unpackhi_epi32(t4, t6);       \
            V u6 = P##_unpacklo_epi32(t5, t7), u7 = P##_unpackhi_epi32(t5, t7);       \
            c[0] = P##_unpacklo_epi64(u0, u4); c[1] = P##_unpackhi_epi64(u0, u4);     \
            c[2] = P##_unpacklo_epi64(u1, u5); c[3] = P##_unpackhi_epi64(u1, u5);     \
            c[4] = P##_unpacklo_epi64(u2, u6); c[5] = P##_unpackhi_epi64(u2, u6);     \
            c[6] = P##_unpacklo_epi64(u3, u7); c[7] = P##_unpackhi_epi64(u3, u7)

    /* The transpose, stored at o[j] + f (all eight when ``full``, else jlo..jhi-1);
       the vertical sums of the rows are added to acc_lo (signals 0-3, 32 bits) and
       acc_hi (4-7). STORE: the vector type's store. */
    #define W212_SUM_TRANSPOSE_STORE(P, V, STORE) do {                                 \
            V s16 = P##_add_epi16(P##_add_epi16(P##_add_epi16(a0, a1), P##_add_epi16(a2, a3)), \
                                  P##_add_epi16(P##_add_epi16(a4, a5), P##_add_epi16(a6, a7))); \
            acc_lo = P##_add_epi32(acc_lo, P##_srai_epi32(P##_unpacklo_epi16(s16, s16), 16)); \
            acc_hi = P##_add_epi32(acc_hi, P##_srai_epi32(P##_unpackhi_epi16(s16, s16), 16)); \
            W212_TRANSPOSE(P, V);                                                      \
            for (j = full ? 0 : jlo; j < (full ? 8 : jhi); j++)                       \
                STORE((V *)(o[j] + f), c[j]);                                          \
        } while (0)

    /* Eight signals ``base..base+7`` of frames ``0..n/8*8`` (8 frames a step); stores
       signals ``base+jlo..base+jhi-1``. ``full`` (a constant at each call): all eight. */
    static inline __attribute__((always_inline)) void
    w212_deint8(const int16_t *src, int nsig, int64_t n, int base, int jlo, int jhi,
                int16_t **outs, int64_t f0, int64_t *sums, const int full) {
        __m128i acc_lo = _mm_setzero_si128(), acc_hi = _mm_setzero_si128();
        int16_t *o[8];
        int32_t lanes[8];
        int64_t f;
        int j;
        const int16_t *r = src + base;
        const int64_t step = (int64_t)nsig;
        w212_group_outputs(o, outs, base, jlo, jhi, f0);
        for (f = 0; f + 8 <= n; f += 8, r += 8 * step) {
            __m128i a0 = _mm_loadu_si128((const __m128i *)r);
            __m128i a1 = _mm_loadu_si128((const __m128i *)(r + step));
            __m128i a2 = _mm_loadu_si128((const __m128i *)(r + 2 * step));
            __m128i a3 = _mm_loadu_si128((const __m128i *)(r + 3 * step));
            __m128i a4 = _mm_loadu_si128((const __m128i *)(r + 4 * step));
            __m128i a5 = _mm_loadu_si128((const __m128i *)(r + 5 * step));
            __m128i a6 = _mm_loadu_si128((const __m128i *)(r + 6 * step));
            __m128i a7 = _mm_loadu_si128((const __m128i *)(r + 7 * step));
            W212_SUM_TRANSPOSE_STORE(_mm, __m128i, _mm_storeu_si128);
        }
        _mm_storeu_si128((__m128i *)lanes, acc_lo);
        _mm_storeu_si128((__m128i *)(lanes + 4), acc_hi);
        for (j = jlo; j < jhi; j++)
            sums[base + j] += lanes[j];
        w212_deint_scalar(src, nsig, f, n, base + jlo, base + jhi, outs, f0, sums);
    }
    #endif

    #if W212_DISPATCH
    /* As ``w212_deint8``, sixteen frames a step: frame k and k + 8 share a register
       (one in each 128-bit half), so each half-wise unpack of the 8x8 transpose
       leaves a signal's sixteen samples in order in one register. */
    __attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
    w212_deint8_avx2(const int16_t *src, int nsig, int64_t n, int base, int jlo, int jhi,
                     int16_t **outs, int64_t f0, int64_t *sums, const int full) {
        __m256i acc_lo = _mm256_setzero_si256(), acc_hi = _mm256_setzero_si256();
        int16_t *o[8];
        int32_t lanes[16];
        int64_t f;
        int j;
        const int16_t *r = src + base;
        const int64_t step = (int64_t)nsig;
        w212_group_outputs(o, outs, base, jlo, jhi, f0);
    #define W212_ROWS(k) _mm256_inserti128_si256(                                     \
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r + (k) * step))), \
            _mm_loadu_si128((const __m128i *)(r + ((k) + 8) * step)), 1)
        for (f = 0; f + 16 <= n; f += 16, r += 16 * step) {
            __m256i a0 = W212_ROWS(0), a1 = W212_ROWS(1), a2 = W212_ROWS(2), a3 = W212_ROWS(3);
            __m256i a4 = W212_ROWS(4), a5 = W212_ROWS(5), a6 = W212_ROWS(6), a7 = W212_ROWS(7);
            W212_SUM_TRANSPOSE_STORE(_mm256, __m256i, _mm256_storeu_si256);
        }
    #undef W212_ROWS
        _mm256_storeu_si256((__m256i *)lanes, acc_lo);
        _mm256_storeu_si256((__m256i *)(lanes + 8), acc_hi);
        for (j = jlo; j < jhi; j++)
            sums[base + j] += j < 4 ? lanes[j] + lanes[j + 4] : lanes[j + 4] + lanes[j + 8];
        /* the last frames, fewer than sixteen */
        w212_deint8(src + f * step, nsig, n - f, base, jlo, jhi, outs, f0 + f, sums, full);
    }

    __attribute__((target("avx2")))
    static void w212_deinterleave_avx2(const int16_t *src, int nsig, int64_t n,
                                       int16_t **outs, int64_t f0, int64_t *sums) {
        W212_BY_EIGHTS(w212_deint8_avx2);
    }
    #endif

    /* ``n`` frames of ``nsig`` flat samples at ``src`` (readable up to 8 samples past
       the last) into ``outs[s] + f0``, adding each signal's sum to ``sums[s]``.
       Samples are 12-bit: eight of them add up within 16 bits. */
    static void w212_deinterleave(const int16_t *src, int nsig, int64_t n,
                                  int16_t **outs, int64_t f0, int64_t *sums) {
    #if W212_DISPATCH
        if (w212_get_level() >= 3) {
            w212_deinterleave_avx2(src, nsig, n, outs, f0, sums);
            return;
        }
    #endif
    #if W212_SSE2
        if (w212_get_level() >= 1) {
            W212_BY_EIGHTS(w212_deint8);
            return;
        }
    #endif
        w212_deint_scalar(src, nsig, 0, n, 0, nsig, outs, f0, sums);
    }

    /* Format 16 (little-endian 16-bit samples) through the same transpose, straight
       from the file's bytes: only for eight signals or more, whose loads all stay
       inside their frame (no byte past the last frame is read). Samples use all 16
       bits, so the sums are taken after the transpose: a signal's samples added in
       pairs into 32-bit lanes (a multiply-add by ones), exact for calls of up to
       2**15 frames. Signals ``lo..hi-1`` of frames ``f..n-1``, plainly: */
    static void w16_deint_scalar(const uint8_t *src, int nsig, int64_t f, int64_t n,
                                 int lo, int hi, int16_t **outs, int64_t f0,
                                 int64_t *sums) {
        int s;
        int64_t k;
        for (s = lo; s < hi; s++) {
            int16_t *o = outs[s] + f0;
            const uint8_t *q = src + 2 * s;
            int64_t total = 0;
            for (k = f; k < n; k++) {
                int16_t v = (int16_t)(q[2 * k * nsig] | (q[2 * k * nsig + 1] << 8));
                o[k] = v;
                total += v;
            }
            sums[s] += total;
        }
    }

    #if W212_SSE2
    #define W16_TRANSPOSE_SUM_STORE(P, V, STORE) do {                                  \
            W212_TRANSPOSE(P, V);                                                      \
            for (j = 0; j < 8; j++)                                                    \
                acc[j] = P##_add_epi32(acc[j], P##_madd_epi16(c[j], ones));           \
            for (j = full ? 0 : jlo; j < (full ? 8 : jhi); j++)                       \
                STORE((V *)(o[j] + f), c[j]);                                          \
        } while (0)

    static inline __attribute__((always_inline)) void
    w16_deint8(const uint8_t *src, int nsig, int64_t n, int base, int jlo, int jhi,
               int16_t **outs, int64_t f0, int64_t *sums, const int full) {
        const __m128i ones = _mm_set1_epi16(1);
        __m128i acc[8];
        int16_t *o[8];
        int32_t lanes[4];
        int64_t f;
        int j;
        const uint8_t *r = src + 2 * base;
        const int64_t step = 2 * (int64_t)nsig;
        for (j = 0; j < 8; j++)
            acc[j] = _mm_setzero_si128();
        w212_group_outputs(o, outs, base, jlo, jhi, f0);
        for (f = 0; f + 8 <= n; f += 8, r += 8 * step) {
            __m128i a0 = _mm_loadu_si128((const __m128i *)r);
            __m128i a1 = _mm_loadu_si128((const __m128i *)(r + step));
            __m128i a2 = _mm_loadu_si128((const __m128i *)(r + 2 * step));
            __m128i a3 = _mm_loadu_si128((const __m128i *)(r + 3 * step));
            __m128i a4 = _mm_loadu_si128((const __m128i *)(r + 4 * step));
            __m128i a5 = _mm_loadu_si128((const __m128i *)(r + 5 * step));
            __m128i a6 = _mm_loadu_si128((const __m128i *)(r + 6 * step));
            __m128i a7 = _mm_loadu_si128((const __m128i *)(r + 7 * step));
            W16_TRANSPOSE_SUM_STORE(_mm, __m128i, _mm_storeu_si128);
        }
        for (j = jlo; j < jhi; j++) {
            _mm_storeu_si128((__m128i *)lanes, acc[j]);
            sums[base + j] += (int64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3];
        }
        w16_deint_scalar(src, nsig, f, n, base + jlo, base + jhi, outs, f0, sums);
    }
    #endif

    #if W212_DISPATCH
    __attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
    w16_deint8_avx2(const uint8_t *src, int nsig, int64_t n, int base, int jlo, int jhi,
                    int16_t **outs, int64_t f0, int64_t *sums, const int full) {
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i acc[8];
        int16_t *o[8];
        int32_t lanes[8];
        int64_t f;
        int j;
        const uint8_t *r = src + 2 * base;
        const int64_t step = 2 * (int64_t)nsig;
        for (j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_si256();
        w212_group_outputs(o, outs, base, jlo, jhi, f0);
    #define W16_ROWS(k) _mm256_inserti128_si256(                                      \
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r + (k) * step))), \
            _mm_loadu_si128((const __m128i *)(r + ((k) + 8) * step)), 1)
        for (f = 0; f + 16 <= n; f += 16, r += 16 * step) {
            __m256i a0 = W16_ROWS(0), a1 = W16_ROWS(1), a2 = W16_ROWS(2), a3 = W16_ROWS(3);
            __m256i a4 = W16_ROWS(4), a5 = W16_ROWS(5), a6 = W16_ROWS(6), a7 = W16_ROWS(7);
            W16_TRANSPOSE_SUM_STORE(_mm256, __m256i, _mm256_storeu_si256);
        }
    #undef W16_ROWS
        for (j = jlo; j < jhi; j++) {
            _mm256_storeu_si256((__m256i *)lanes, acc[j]);
            sums[base + j] += (int64_t)lanes[0] + lanes[1] + lanes[2] + lanes[3]
                              + lanes[4] + lanes[5] + lanes[6] + lanes[7];
        }
        /* the last frames, fewer than sixteen */
        w16_deint8(src + f * step, nsig, n - f, base, jlo, jhi, outs, f0 + f, sums, full);
    }

    __attribute__((target("avx2")))
    static void w16_deinterleave_avx2(const uint8_t *src, int nsig, int64_t n,
                                      int16_t **outs, int64_t f0, int64_t *sums) {
        W212_BY_EIGHTS(w16_deint8_avx2);
    }
    #endif

    /* ``n`` frames (at most 2**15) of ``nsig`` format-16 signals at ``src`` into
       ``outs[s] + f0``, adding each signal's sum to ``sums[s]``. */
    static void w16_deinterleave(const uint8_t *src, int nsig, int64_t n,
                                 int16_t **outs, int64_t f0, int64_t *sums) {
    #if W212_DISPATCH
        if (nsig >= 8 && w212_get_level() >= 3) {
            w16_deinterleave_avx2(src, nsig, n, outs, f0, sums);
            return;
        }
    #endif
    #if W212_SSE2
        if (nsig >= 8 && w212_get_level() >= 1) {
            W212_BY_EIGHTS(w16_deint8);
            return;
        }
    #endif
        w16_deint_scalar(src, nsig, 0, n, 0, nsig, outs, f0, sums);
    }
    """
    int w212_set_level(int level) noexcept nogil
    void w212_unpack(const uint8_t* p, int64_t ngroups, int16_t* d) noexcept nogil
    int16_t w212_first(const uint8_t* p) noexcept nogil
    void w212_deinterleave(const int16_t* src, int nsig, int64_t n, int16_t** outs,
                           int64_t f0, int64_t* sums) noexcept nogil
    void w16_deinterleave(const uint8_t* src, int nsig, int64_t n, int16_t** outs,
                          int64_t f0, int64_t* sums) noexcept nogil
