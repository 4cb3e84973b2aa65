# Streaming (non-temporal) stores for outputs that do not fit in the caches.
#
# An ordinary store first reads the cache line it writes into, so filling a
# large array moves every byte through memory twice; a streaming store writes
# whole lines past the caches without reading them. On this project's 2-core
# development machine one thread fills memory at about 21 GB/s with streaming
# stores and 11-13 GB/s with ordinary ones. Only for large outputs that are
# not read again at once: a small output is better left in the cache.
#
# Streaming stores are weakly ordered: a kernel calls ``stream_fence`` once
# after its last one, before the arrays are handed back to Python.

cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define ECG_STREAMING_STORES 1
    static void ecg_stream_copy(void *dst, const void *src, size_t n) {
        char *d = (char *)dst;
        const char *s = (const char *)src;
        size_t head = (64 - ((uintptr_t)d & 63)) & 63;
        if (head > n) head = n;
        memcpy(d, s, head);  /* up to the first line boundary: ordinary stores */
        d += head; s += head; n -= head;
        for (; n >= 64; n -= 64, d += 64, s += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)s);
            __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
            __m128i e = _mm_loadu_si128((const __m128i *)(s + 48));
            _mm_stream_si128((__m128i *)d, a);
            _mm_stream_si128((__m128i *)(d + 16), b);
            _mm_stream_si128((__m128i *)(d + 32), c);
            _mm_stream_si128((__m128i *)(d + 48), e);
        }
        memcpy(d, s, n);  /* the partial last line */
    }
    static void ecg_stream_fence(void) { _mm_sfence(); }
    #else
    #define ECG_STREAMING_STORES 0
    static void ecg_stream_copy(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
    static void ecg_stream_fence(void) {}
    #endif
    """
    bint STREAMING_STORES "ECG_STREAMING_STORES"
    void stream_copy "ecg_stream_copy"(void* dst, const void* src, size_t n) noexcept nogil
    void stream_fence "ecg_stream_fence"() noexcept nogil

# Outputs from this size on are streamed: 8 MiB, the size from which the array
# pool serves them, so the memory is reused and not in the caches anyway.
cdef enum:
    STREAM_FROM_BYTES = 8388608
