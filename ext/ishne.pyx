# cython: language_level=3
"""ISHNE Holter sample kernel: interleaved little-endian int16 frames -> lead-major rows.

The Python side (``ecgingest.formats.ishne``) checks that the ECG block holds
``frames x leads x 2`` bytes from ``offset`` before calling; every index here is
derived from those checked sizes, so bounds checking is off. The loop runs
without the GIL.
"""

cimport cython
from libc.stdint cimport int16_t, int64_t, uint8_t

from _bytes cimport load_le16
from _status cimport BAD_VALUE, OK, TRUNCATED

# frames de-interleaved per pass: the rows' write positions stay in cache lines
# already loaded while the input is read once, in order
cdef enum:
    FRAMES_PER_PASS = 1024


@cython.boundscheck(False)
@cython.wraparound(False)
def deinterleave_i16(const uint8_t[::1] data, int64_t offset, int64_t frames, int leads,
                     int16_t[:, ::1] out) -> int:
    """Copy ``frames`` frames of ``leads`` int16 values from ``data[offset:]`` into
    ``out[lead, frame]``. Returns a kernel status (TRUNCATED when the bytes are short,
    BAD_VALUE when ``out`` does not have that shape)."""
    cdef int64_t f, f0, f1, need
    cdef int c
    cdef const uint8_t* p
    if leads <= 0 or frames < 0 or offset < 0:
        return BAD_VALUE
    if out.shape[0] != leads or out.shape[1] != frames:
        return BAD_VALUE
    need = frames * leads * 2
    if offset > data.shape[0] or data.shape[0] - offset < need:
        return TRUNCATED
    if frames == 0:
        return OK
    with nogil:
        f0 = 0
        while f0 < frames:
            f1 = f0 + FRAMES_PER_PASS
            if f1 > frames:
                f1 = frames
            for c in range(leads):
                p = &data[offset + (f0 * leads + c) * 2]
                for f in range(f0, f1):
                    out[c, f] = <int16_t>load_le16(p)
                    p += leads * 2
            f0 = f1
    return OK
