# cython: language_level=3
"""WFDB kernels: the signal-line grammar, and one pass over a group's bytes into
per-signal arrays.

The Python side (``ecgingest.formats.wfdb``) checks every count against the
bytes present and allocates the outputs with the GIL held; ``decode_group``
then runs one ``nogil`` kernel and returns a status the format's context turns
into a typed error. ``signal_lines`` is the one reading of a header's signal
lines: plain values out, the error wording is Python's.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport malloc, free
from libc.math cimport isfinite
from libc.string cimport memset, memcpy

cimport numpy as cnp

from _bytes cimport ascii_number, exact_integer, load_le16, load_be16, load_le24, load_le32, sign_extend
from _status cimport OK, TRUNCATED, BAD_VALUE, UNSUPPORTED
from _pread cimport ecg_iovec, read_fully
from _wfdb212 cimport (w212_set_level, w212_unpack, w212_first, w212_deinterleave,
                      w16_deinterleave)

from cpython.ref cimport PyObject

import numpy as np

cnp.import_array()

cdef cnp.dtype _INT16 = np.dtype(np.int16)
cdef cnp.dtype _INT32 = np.dtype(np.int32)


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    double PyOS_string_to_double(const char* s, char** endptr,
                                 PyObject* overflow_exception) except? -1.0

DEF CHUNK = 8192          # flat samples decoded per chunk (about; whole frames)
DEF MAX_SIGNALS = 65536
DEF BLOCK212 = 2048       # flat samples per block of the format-212 decode (about)

w212_set_level(-1)  # the vector instructions this machine has, checked once


def vector_level(int level=-1) -> int:
    """Caps the vector instructions of the format-212 decode (0: none, 1: SSE2,
    2: SSSE3, 3: AVX2; -1: all this machine has) and returns the level in force.
    Every level gives the same samples; tests compare them."""
    return w212_set_level(level)


cdef inline int64_t _group_samples(int fmt) noexcept nogil:
    if fmt == 212:
        return 2
    if fmt == 310 or fmt == 311:
        return 3
    return 1


cdef inline int64_t _group_bytes(int fmt) noexcept nogil:
    if fmt == 8 or fmt == 80:
        return 1
    if fmt == 16 or fmt == 61 or fmt == 160:
        return 2
    if fmt == 24 or fmt == 212:
        return 3
    if fmt == 32 or fmt == 310 or fmt == 311:
        return 4
    return 0


def available_samples(int fmt, int64_t nbytes) -> int:
    """Flat samples whose bits all lie within ``nbytes`` (partial last groups included)."""
    return _available(fmt, nbytes)


cdef int64_t _available(int fmt, int64_t nbytes) noexcept nogil:
    cdef int64_t gb = _group_bytes(fmt), gs = _group_samples(fmt), full, rem, extra = 0
    if gb == 0:
        return -1
    if nbytes <= 0:
        return 0
    full = nbytes // gb
    rem = nbytes - full * gb
    if fmt == 212 and rem >= 2:
        extra = 1
    elif fmt == 310 and rem >= 2:
        extra = 1
    elif fmt == 311:
        extra = 2 if rem == 3 else (1 if rem == 2 else 0)
    return full * gs + extra


cdef void _decode_groups(const uint8_t* p, int fmt, int64_t ngroups, int32_t* out) noexcept nogil:
    """Decode ``ngroups`` whole byte groups starting at ``p`` into flat samples."""
    cdef int64_t g
    cdef uint32_t w0, w1, w
    if fmt == 212:
        for g in range(ngroups):
            out[0] = sign_extend(p[0] | ((<uint32_t>p[1] & 0x0F) << 8), 12)
            out[1] = sign_extend(p[2] | ((<uint32_t>p[1] & 0xF0) << 4), 12)
            p += 3
            out += 2
    elif fmt == 16:
        for g in range(ngroups):
            out[g] = <int16_t>load_le16(p + 2 * g)
    elif fmt == 61:
        for g in range(ngroups):
            out[g] = <int16_t>load_be16(p + 2 * g)
    elif fmt == 80:
        for g in range(ngroups):
            out[g] = <int32_t>p[g] - 128
    elif fmt == 160:
        for g in range(ngroups):
            out[g] = <int32_t>load_le16(p + 2 * g) - 32768
    elif fmt == 8:
        for g in range(ngroups):
            out[g] = <int8_t>p[g]
    elif fmt == 24:
        for g in range(ngroups):
            out[g] = sign_extend(load_le24(p + 3 * g), 24)
    elif fmt == 32:
        for g in range(ngroups):
            out[g] = <int32_t>load_le32(p + 4 * g)
    elif fmt == 310:
        for g in range(ngroups):
            w0 = load_le16(p)
            w1 = load_le16(p + 2)
            out[0] = sign_extend(w0 >> 1, 10)
            out[1] = sign_extend(w1 >> 1, 10)
            out[2] = sign_extend((w0 >> 11) | ((w1 >> 11) << 5), 10)
            p += 4
            out += 3
    elif fmt == 311:
        for g in range(ngroups):
            w = load_le32(p)
            out[0] = sign_extend(w, 10)
            out[1] = sign_extend(w >> 10, 10)
            out[2] = sign_extend(w >> 20, 10)
            p += 4
            out += 3


ctypedef fused out_t:
    int16_t
    int32_t


cdef inline void _pair212(const uint8_t* p, int64_t stride, out_t* o, out_t* o2,
                          int64_t n, int64_t* sum1, int64_t* sum2) noexcept nogil:
    """Two signals sharing 3-byte groups ``stride`` bytes apart; adds their sums
    to ``sum1`` and ``sum2`` (32-bit partial sums: n <= 2**19)."""
    cdef int64_t f
    cdef int32_t t1 = 0, t2 = 0, v, v2
    cdef uint32_t b1
    for f in range(n):
        b1 = p[1]
        # 12-bit two's complement: place the sign bit at bit 31, shift back arithmetically
        v = (<int32_t>((p[0] | ((b1 & 0x0F) << 8)) << 20)) >> 20
        v2 = (<int32_t>((p[2] | ((b1 & 0xF0) << 4)) << 20)) >> 20
        o[f] = <out_t>v
        o2[f] = <out_t>v2
        t1 += v
        t2 += v2
        p += stride
    sum1[0] += t1
    sum2[0] += t2


cdef inline void _quad212(const uint8_t* p, int64_t stride, out_t* o, out_t* o2, out_t* o3,
                          out_t* o4, int64_t n, int64_t* sums) noexcept nogil:
    """Four signals in two adjacent 3-byte groups ``stride`` bytes apart."""
    cdef int64_t f
    cdef int32_t t1 = 0, t2 = 0, t3 = 0, t4 = 0, v, v2, v3, v4
    cdef uint32_t b1, b4
    for f in range(n):
        b1 = p[1]
        b4 = p[4]
        v = (<int32_t>((p[0] | ((b1 & 0x0F) << 8)) << 20)) >> 20
        v2 = (<int32_t>((p[2] | ((b1 & 0xF0) << 4)) << 20)) >> 20
        v3 = (<int32_t>((p[3] | ((b4 & 0x0F) << 8)) << 20)) >> 20
        v4 = (<int32_t>((p[5] | ((b4 & 0xF0) << 4)) << 20)) >> 20
        o[f] = <out_t>v
        o2[f] = <out_t>v2
        o3[f] = <out_t>v3
        o4[f] = <out_t>v4
        t1 += v
        t2 += v2
        t3 += v3
        t4 += v4
        p += stride
    sums[0] += t1
    sums[1] += t2
    sums[2] += t3
    sums[3] += t4


cdef inline int32_t _one16(const uint8_t* p, int64_t stride, out_t* o,
                           int64_t n) noexcept nogil:
    """One format-16 signal whose samples lie ``stride`` bytes apart; returns their sum.
    Unrolled by four frames (independent loads in flight)."""
    cdef int64_t f = 0
    cdef int32_t total = 0, v0, v1, v2, v3
    while f + 4 <= n:
        v0 = <int16_t>load_le16(p)
        v1 = <int16_t>load_le16(p + stride)
        v2 = <int16_t>load_le16(p + 2 * stride)
        v3 = <int16_t>load_le16(p + 3 * stride)
        o[f] = <out_t>v0
        o[f + 1] = <out_t>v1
        o[f + 2] = <out_t>v2
        o[f + 3] = <out_t>v3
        total += (v0 + v1) + (v2 + v3)
        p += 4 * stride
        f += 4
    while f < n:
        v0 = <int16_t>load_le16(p)
        o[f] = <out_t>v0
        total += v0
        p += stride
        f += 1
    return total


cdef inline void _pair16(const uint8_t* p, int64_t stride, out_t* o, out_t* o2, int64_t n,
                         int64_t* sums) noexcept nogil:
    """Two adjacent format-16 signals, one 32-bit load per frame for both; adds their sums
    to ``sums[0]`` and ``sums[1]``. Unrolled by two frames."""
    cdef int64_t f = 0
    cdef int32_t t1 = 0, t2 = 0, a0, b0, a1, b1
    cdef uint32_t w0, w1
    while f + 2 <= n:
        w0 = load_le32(p)
        w1 = load_le32(p + stride)
        a0 = <int16_t>(w0 & 0xFFFF)
        b0 = <int16_t>(w0 >> 16)
        a1 = <int16_t>(w1 & 0xFFFF)
        b1 = <int16_t>(w1 >> 16)
        o[f] = <out_t>a0
        o[f + 1] = <out_t>a1
        o2[f] = <out_t>b0
        o2[f + 1] = <out_t>b1
        t1 += a0 + a1
        t2 += b0 + b1
        p += 2 * stride
        f += 2
    if f < n:
        w0 = load_le32(p)
        a0 = <int16_t>(w0 & 0xFFFF)
        b0 = <int16_t>(w0 >> 16)
        o[f] = <out_t>a0
        o2[f] = <out_t>b0
        t1 += a0
        t2 += b0
    sums[0] += t1
    sums[1] += t2


cdef int64_t _blocks212(const uint8_t* data, int nsig, int64_t nframes, int16_t** outs,
                        int64_t at, int64_t* checksum) noexcept nogil:
    """Whole frames of format 212, one sample per signal, no skew, any signal count:
    each block of frames is unpacked into flat samples and then deinterleaved into
    the outputs from sample ``at`` on (``_wfdb212.pxd``). Returns the frames done (0: no
    memory)."""
    cdef int64_t blk = (BLOCK212 // nsig) // 16 * 16, f0 = 0, n, flat, ngroups
    cdef const uint8_t* p
    cdef int16_t* scratch
    if blk < 16:
        blk = 16
    # Small blocks measured fastest: with 12 signals, blocks of 4096 samples
    # took 1.7 times as long as blocks of 2048 (the outputs' cache lines in
    # flight, not the instructions). Blocks start on whole groups (blk * nsig
    # is even); the deinterleave may read eight samples past a block's last frame.
    scratch = <int16_t*>malloc((blk * nsig + 16) * sizeof(int16_t))
    if scratch == NULL:
        return 0
    memset(scratch, 0, (blk * nsig + 16) * sizeof(int16_t))
    while f0 < nframes:
        n = nframes - f0
        if n > blk:
            n = blk
        flat = n * nsig
        ngroups = flat // 2
        p = data + 3 * (f0 * nsig // 2)
        w212_unpack(p, ngroups, scratch)
        if flat & 1:  # the last frame ends in the middle of a group
            scratch[flat - 1] = w212_first(p + 3 * ngroups)
        w212_deinterleave(scratch, nsig, n, outs, at + f0, checksum)
        f0 += n
    free(scratch)
    return nframes


cdef int64_t _direct(const uint8_t* data, int fmt, int nsig, int frame_size, int64_t nframes,
                     out_t** outs, int64_t at, int64_t* checksum) noexcept nogil:
    """One pass from bytes to outputs (from sample ``at`` on) for whole frames of one
    sample per signal, no skew.

    Handles 16 and 212 (any frame size into int16, else even); returns the frames
    done (0: not handled).
    Works in blocks of frames small enough (about 16 KB) that a block's bytes
    stay in the first-level cache while every signal picks its samples out of
    them; per-block sums fit in 32 bits (at most 4096 frames of 16-bit values).
    """
    cdef int64_t f0, n, blk
    cdef int s, half = frame_size // 2
    cdef int64_t stride = 2 * frame_size if fmt == 16 else 3 * half
    if fmt == 212 and out_t is int16_t:
        f0 = _blocks212(data, nsig, nframes, <int16_t**>outs, at, checksum)
        if f0 > 0 or nframes == 0:
            return f0
    if not (fmt == 16 or (fmt == 212 and frame_size % 2 == 0)):
        return 0
    blk = 16384 // stride
    if blk < 16:
        blk = 16
    if blk > 4096:
        blk = 4096
    f0 = 0
    while f0 < nframes:
        n = nframes - f0
        if n > blk:
            n = blk
        if fmt == 16 and out_t is int16_t and nsig >= 8:
            # eight signals at a time, transposed in vector registers (``_wfdb212.pxd``)
            w16_deinterleave(data + stride * f0, nsig, n, <int16_t**>outs, at + f0, checksum)
        elif fmt == 212:
            # signals 2m and 2m+1 share every third byte pair: decode them together
            s = 0
            while s + 4 <= nsig:
                _quad212(data + stride * f0 + 3 * (s // 2), stride, outs[s] + at + f0,
                         outs[s + 1] + at + f0, outs[s + 2] + at + f0, outs[s + 3] + at + f0, n,
                         &checksum[s])
                s += 4
            if s < nsig:
                _pair212(data + stride * f0 + 3 * (s // 2), stride, outs[s] + at + f0,
                         outs[s + 1] + at + f0, n, &checksum[s], &checksum[s + 1])
        else:
            # adjacent signals in pairs: one 32-bit load feeds both
            s = 0
            while s + 2 <= nsig:
                _pair16(data + stride * f0 + 2 * s, stride, outs[s] + at + f0,
                        outs[s + 1] + at + f0, n, &checksum[s])
                s += 2
            if s < nsig:
                checksum[s] += _one16(data + stride * f0 + 2 * s, stride, outs[s] + at + f0, n)
        f0 += n
    return nframes


cdef int _kernel(const uint8_t* data, int64_t nbytes, int fmt, int nsig,
                 const int* spf, const int* first_slot, int frame_size, int64_t fpc,
                 int64_t nflat, out_t** outs, const int64_t* shift,
                 const int64_t* outlen, int64_t* count, int64_t* checksum,
                 int32_t* state, int32_t* tmp) noexcept nogil:
    """Decode ``nflat`` flat samples and scatter them to their signals.

    Works in chunks of ``fpc`` whole frames (``fpc`` a multiple of 6, so a
    chunk never splits a 212/310/311 byte group). Stored sample ``j`` of
    signal ``s`` goes to ``outs[s][j - shift[s]]`` when that index lies in
    ``[0, outlen[s])``; the checksum counts stored samples ``j < outlen[s]``
    (before deskewing). ``count[s]`` ends as the stored samples seen: a call
    for the bytes that follow, from a frame boundary, goes on where this one
    ended (``_read_kernel``).
    """
    cdef int64_t gs = _group_samples(fmt), gb = _group_bytes(fmt)
    cdef int64_t done = 0, n, ngroups, pos, f, nf, j, idx, nfull, t, total, lim
    cdef int s, k, sp, off
    cdef bint simple
    cdef int32_t v, acc
    cdef uint8_t pad[8]
    cdef out_t* o
    cdef const int32_t* src
    if nflat < 0 or nflat > _available(fmt, nbytes):
        return TRUNCATED
    nfull = nbytes // gb  # whole byte groups present
    simple = fmt != 8
    for s in range(nsig):
        if spf[s] != 1 or shift[s] != 0 or count[s] != count[0] \
                or outlen[s] < count[0] + nflat // frame_size:
            simple = False
    if simple:
        # every byte of these whole frames was checked against nbytes above; they end
        # on a byte group's boundary, where the loop below goes on (an odd 212 frame
        # size leaves the last whole frame to it)
        j = count[0]
        nf = nflat // frame_size
        if (nf * frame_size) % gs:
            nf -= 1
        nf = _direct(data, fmt, nsig, frame_size, nf, outs, j, checksum)
        for s in range(nsig):
            count[s] = j + nf
        done = nf * frame_size
    while done < nflat:
        n = nflat - done
        if n > fpc * frame_size:
            n = fpc * frame_size
        ngroups = (n + gs - 1) // gs
        pos = done // gs
        if pos + ngroups <= nfull:
            _decode_groups(data + pos * gb, fmt, ngroups, tmp)
        else:
            # last partial group: pad with zero bytes; only samples whose bits
            # all lie in the file are within nflat
            if pos + ngroups - 1 != nfull:
                return TRUNCATED
            if ngroups > 1:
                _decode_groups(data + pos * gb, fmt, ngroups - 1, tmp)
            memset(pad, 0, 8)
            memcpy(pad, data + nfull * gb, nbytes - nfull * gb)
            _decode_groups(pad, fmt, 1, tmp + (ngroups - 1) * gs)
        nf = (n + frame_size - 1) // frame_size  # frames touched (last may be partial)
        for s in range(nsig):
            sp = spf[s]
            off = first_slot[s]
            o = outs[s]
            j = count[s]
            if sp == 1 and shift[s] == 0 and fmt != 8 and n % frame_size == 0 \
                    and j + nf <= outlen[s]:
                # common case: one sample per frame, no skew, all in range
                src = tmp + off
                o = o + j
                total = 0
                for f in range(nf):
                    v = src[f * frame_size]
                    o[f] = <out_t>v
                    total += v
                checksum[s] += total
                count[s] = j + nf
                continue
            acc = state[s]
            lim = outlen[s]
            for f in range(nf):
                for k in range(sp):
                    t = f * frame_size + off + k
                    if t >= n:
                        break
                    v = tmp[t]
                    if fmt == 8:
                        acc = acc + v
                        v = acc
                    if j < lim:
                        checksum[s] += v
                    idx = j - shift[s]
                    if idx >= 0 and idx < lim:
                        o[idx] = <out_t>v
                    j += 1
            state[s] = acc
            count[s] = j
        done += n
    return OK


cdef int _read_kernel(int fd, int64_t offset, int64_t nbytes, uint8_t* buf, int64_t chunk,
                      int fmt, int nsig, const int* spf, const int* first_slot, int frame_size,
                      int64_t fpc, int64_t nflat, out_t** outs, const int64_t* shift,
                      const int64_t* outlen, int64_t* count, int64_t* checksum, int32_t* state,
                      int32_t* tmp, int* err) noexcept nogil:
    """``_kernel`` over the ``nbytes`` bytes of the open file ``fd`` from ``offset``,
    read ``chunk`` flat samples (whole 6-frame steps) at a time into ``buf``: the
    bytes pass through a buffer that stays in the cache instead of a mapping
    whose pages the process must map in and out. ``TRUNCATED`` when the file
    ends early (it shrank since it was measured); ``err``: the ``errno`` of a
    failed read."""
    cdef int64_t gs = _group_samples(fmt), gb = _group_bytes(fmt)
    cdef int64_t done = 0, n, at, want
    cdef ecg_iovec iov
    cdef int status
    if nflat < 0 or nflat > _available(fmt, nbytes):
        return TRUNCATED
    while done < nflat:
        n = nflat - done
        if n > chunk:
            n = chunk
        at = done // gs * gb  # chunks are whole frames of whole groups
        want = (n + gs - 1) // gs * gb
        if want > nbytes - at:
            want = nbytes - at
        iov.iov_base = buf
        iov.iov_len = <size_t>want
        status = read_fully(fd, &iov, 1, offset + at, want, err)
        if status != OK:
            return status
        status = _kernel(buf, want, fmt, nsig, spf, first_slot, frame_size, fpc, n, outs,
                         shift, outlen, count, checksum, state, tmp)
        if status != OK:
            return status
        done += n
    return OK


def decode_group(const uint8_t[::1] data, int fmt, int64_t nflat, list spf, list shifts,
                 list outs, list init_values):
    """Decode one signal file group into ``outs`` (preallocated 1-D int16/int32 arrays).

    ``nflat``: flat samples to decode (already bounded by the bytes present).
    ``shifts``: skew of each signal in stored samples. Returns
    ``(status, counts, checksums)``: stored samples seen per signal and the
    sum of the first ``len(out)`` of them (format 8: reconstructed values).
    """
    cdef int64_t nbytes = data.shape[0]
    status, counts, sums, _ = _decode(&data[0] if nbytes > 0 else NULL, nbytes, -1, 0, 0, fmt,
                                      nflat, spf, shifts, outs, init_values)
    return status, counts, sums


def read_group(int fd, int64_t offset, int64_t nbytes, int64_t chunk_bytes, int fmt,
               int64_t nflat, list spf, list shifts, list outs, list init_values):
    """As :func:`decode_group`, the group's ``nbytes`` bytes read from the open file
    ``fd`` from ``offset``, about ``chunk_bytes`` at a time (whole 6-frame steps), with
    the GIL released. Returns ``(status, counts, checksums, errno)``: ``TRUNCATED``
    when the file ends before ``nbytes``; a non-zero ``errno`` when a read failed."""
    if fd < 0 or offset < 0 or nbytes < 0 or chunk_bytes <= 0:
        return BAD_VALUE, [], [], 0
    return _decode(NULL, nbytes, fd, offset, chunk_bytes, fmt, nflat, spf, shifts, outs,
                   init_values)


cdef tuple _decode(const uint8_t* ptr, int64_t nbytes, int fd, int64_t offset,
                   int64_t chunk_bytes, int fmt, int64_t nflat, list spf, list shifts,
                   list outs, list init_values):
    """The checks and C arrays of both entry points, then one ``nogil`` kernel: over
    ``ptr`` (``fd`` < 0), else over the file."""
    cdef int nsig = len(spf), s, k, frame_size = 0, slot, status, err = 0
    cdef bint wide
    cdef int64_t step, chunk = 0
    cdef uint8_t* buf = NULL
    cdef cnp.ndarray arr
    if nsig <= 0 or nsig > MAX_SIGNALS or len(shifts) != nsig or len(outs) != nsig \
            or len(init_values) != nsig:
        return BAD_VALUE, [], [], 0
    if _group_bytes(fmt) == 0:
        return UNSUPPORTED, [], [], 0
    if sum(spf) > (1 << 24) or min(spf) < 1:
        return BAD_VALUE, [], [], 0
    for s in range(nsig):
        frame_size += <int>spf[s]
    arr = outs[0]
    wide = arr is not None and cnp.PyArray_TYPE(arr) == cnp.NPY_INT32  # no dtype object
    cdef cnp.dtype want = _INT32 if wide else _INT16
    cdef int* c_spf = <int*>malloc(nsig * sizeof(int))
    cdef int64_t fpc = max(6, (CHUNK // frame_size) // 6 * 6)
    cdef int* c_slot = <int*>malloc(nsig * sizeof(int))
    cdef int64_t* c_shift = <int64_t*>malloc(nsig * sizeof(int64_t))
    cdef int64_t* c_len = <int64_t*>malloc(nsig * sizeof(int64_t))
    cdef int64_t* c_count = <int64_t*>malloc(nsig * sizeof(int64_t))
    cdef int64_t* c_sum = <int64_t*>malloc(nsig * sizeof(int64_t))
    cdef int32_t* c_state = <int32_t*>malloc(nsig * sizeof(int32_t))
    cdef void** c_out = <void**>malloc(nsig * sizeof(void*))
    cdef int32_t* tmp = <int32_t*>malloc((fpc * frame_size + 8) * sizeof(int32_t))
    try:
        if not (c_spf and c_slot and c_shift and c_len and c_count and c_sum and c_state
                and c_out and tmp):
            raise MemoryError()
        slot = 0
        for s in range(nsig):
            arr = outs[s]
            # C-level checks: ``arr.flags`` and ``arr.dtype`` build objects on every call
            if arr.ndim != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(arr) \
                    or not cnp.PyArray_ISWRITEABLE(arr) \
                    or not cnp.PyArray_EquivTypes(<cnp.dtype>cnp.PyArray_DESCR(arr), want):
                return BAD_VALUE, [], [], 0
            c_spf[s] = spf[s]
            c_slot[s] = slot
            slot += c_spf[s]
            c_shift[s] = shifts[s]
            c_len[s] = arr.shape[0]
            c_count[s] = 0
            c_sum[s] = 0
            c_state[s] = init_values[s]
            c_out[s] = cnp.PyArray_DATA(arr)
        if fd >= 0:
            # whole 6-frame steps (never a split byte group), about chunk_bytes of them
            step = 6 * frame_size
            chunk = max(chunk_bytes * _group_samples(fmt) // _group_bytes(fmt) // step, 1) * step
            buf = <uint8_t*>malloc(chunk // _group_samples(fmt) * _group_bytes(fmt)
                                   + _group_bytes(fmt))
            if buf == NULL:
                raise MemoryError()
        with nogil:
            if fd >= 0 and wide:
                status = _read_kernel[int32_t](fd, offset, nbytes, buf, chunk, fmt, nsig, c_spf,
                                               c_slot, frame_size, fpc, nflat, <int32_t**>c_out,
                                               c_shift, c_len, c_count, c_sum, c_state, tmp,
                                               &err)
            elif fd >= 0:
                status = _read_kernel[int16_t](fd, offset, nbytes, buf, chunk, fmt, nsig, c_spf,
                                               c_slot, frame_size, fpc, nflat, <int16_t**>c_out,
                                               c_shift, c_len, c_count, c_sum, c_state, tmp,
                                               &err)
            elif wide:
                status = _kernel[int32_t](ptr, nbytes, fmt, nsig, c_spf, c_slot, frame_size, fpc,
                                          nflat, <int32_t**>c_out, c_shift, c_len, c_count,
                                          c_sum, c_state, tmp)
            else:
                status = _kernel[int16_t](ptr, nbytes, fmt, nsig, c_spf, c_slot, frame_size, fpc,
                                          nflat, <int16_t**>c_out, c_shift, c_len, c_count,
                                          c_sum, c_state, tmp)
            # the read buffer let go here: freeing a large block may unmap it
            free(buf)
            buf = NULL
        return (status, [c_count[s] for s in range(nsig)],
                [c_sum[s] for s in range(nsig)], err)
    finally:
        free(c_spf); free(c_slot); free(c_shift); free(c_len); free(c_count)
        free(c_sum); free(c_state); free(c_out); free(tmp); free(buf)


# --------------------------------------------------------------------------- signal lines

DEF NTOK = 9              # eight fields and the description
DEF MAX_SPF = 1048576     # 2**20 samples per frame


cdef inline bint _is_space(char c) noexcept nogil:
    return c == c' ' or c == c'\t'


cdef inline bint _digits(const char* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """``s[a:b]`` is ``[0-9]+``."""
    if a >= b:
        return False
    while a < b:
        if not (c'0' <= s[a] <= c'9'):
            return False
        a += 1
    return True


cdef inline bint _small(const char* s, Py_ssize_t a, Py_ssize_t b, int64_t* value) noexcept nogil:
    """``[0-9]+`` of ``s[a:b]`` as a value, saturated at 10**18 (beyond every bound here)."""
    cdef int64_t v = 0, saturated = 1000000000000000000LL
    while a < b:
        if v >= saturated // 10:
            v = saturated
        else:
            v = v * 10 + (s[a] - c'0')
        a += 1
    value[0] = v
    return True


cdef inline bint _int32(int64_t v) noexcept nogil:
    return -2147483648 <= v <= 2147483647


cdef class _Line:
    """One signal line's text: its bytes, and substrings back as ``str``."""
    cdef str text
    cdef bytes raw          # UTF-8 when the line is not ASCII
    cdef const char* s
    cdef Py_ssize_t size

    cdef str sub(self, Py_ssize_t a, Py_ssize_t b):
        if self.raw is None:
            return self.text[a:b]
        return self.raw[a:b].decode("utf-8", "surrogatepass")


cdef _Line _line(str text):
    cdef _Line line = _Line.__new__(_Line)
    line.text = text
    if text.isascii():
        line.raw = None
        line.s = PyUnicode_AsUTF8AndSize(text, &line.size)  # the str's own bytes, no copy
    else:
        line.raw = text.encode("utf-8", "surrogatepass")
        line.s = line.raw
        line.size = len(line.raw)
    return line


cdef object _integer(_Line line, Py_ssize_t a, Py_ssize_t b):
    """``[+-]?[0-9]+`` as an int (any size), or None."""
    cdef int64_t value
    if exact_integer(<const uint8_t*>line.s, a, b, &value):
        return value
    if not ascii_number(<const uint8_t*>line.s, a, b, True):
        return None
    return int(line.sub(a, b))


cdef tuple _error(Py_ssize_t index, str field, str kind, object text):
    return None, (index, field, kind, text)


cdef object _signal_line(_Line line, str record, Py_ssize_t index, object supported,
                         dict default_res):
    """The fields of one signal line in ``WfdbSignalSpec`` order, WFDB defaults applied,
    or ``(None, (index, field, kind, text))`` for the first field that breaks the grammar.

    ``file fmt[xSPF][:SKEW][+OFFSET] [gain[(baseline)][/units] [adcres [adczero
    [initval [checksum [blocksize [description]]]]]]]``; fields are separated by
    spaces or tabs (spec/WFDB.md).
    """
    cdef const char* s = line.s
    cdef Py_ssize_t size = line.size, pos = 0, ntok = 0, k, a, b, head_b, open_at, slash_at = -1
    cdef Py_ssize_t start[NTOK]
    cdef Py_ssize_t stop[NTOK]
    cdef Py_ssize_t x_at = -1, colon_at = -1, plus_at = -1, fmt_end
    cdef int64_t fmt, spf = 1, skew = 0, offset = 0, baseline = 0
    cdef bint has_baseline = False, negative
    cdef double gain = 0.0
    cdef char* end
    while ntok < NTOK:
        while pos < size and _is_space(s[pos]):
            pos += 1
        if pos == size:
            break
        start[ntok] = pos
        if ntok == NTOK - 1:
            pos = size
            while _is_space(s[pos - 1]):
                pos -= 1
        else:
            while pos < size and not _is_space(s[pos]):
                pos += 1
        stop[ntok] = pos
        ntok += 1
    if ntok < 2:
        return _error(index, "format", "missing", None)
    # fmt[xSPF][:SKEW][+OFFSET], the suffixes in this order
    a, b = start[1], stop[1]
    for k in range(a, b):
        if s[k] == c'x' and x_at < 0 and colon_at < 0 and plus_at < 0:
            x_at = k
        elif s[k] == c':' and colon_at < 0 and plus_at < 0:
            colon_at = k
        elif s[k] == c'+' and plus_at < 0:
            plus_at = k
    fmt_end = x_at if x_at >= 0 else (colon_at if colon_at >= 0 else (plus_at if plus_at >= 0 else b))
    if not _digits(s, a, fmt_end):
        return _error(index, "format", "malformed", line.sub(a, b))
    if x_at >= 0 and not _digits(s, x_at + 1, colon_at if colon_at >= 0 else (plus_at if plus_at >= 0 else b)):
        return _error(index, "format", "malformed", line.sub(a, b))
    if colon_at >= 0:
        k = colon_at + 1
        negative = k < b and s[k] == c'-'
        if not _digits(s, k + negative, plus_at if plus_at >= 0 else b):
            return _error(index, "format", "malformed", line.sub(a, b))
    if plus_at >= 0 and not _digits(s, plus_at + 1, b):
        return _error(index, "format", "malformed", line.sub(a, b))
    _small(s, a, fmt_end, &fmt)
    fmt_obj = fmt if fmt_end - a <= 17 else int(line.sub(a, fmt_end))
    if fmt_obj not in supported:
        return _error(index, "format", "unsupported", fmt_obj)
    if x_at >= 0:
        _small(s, x_at + 1, colon_at if colon_at >= 0 else (plus_at if plus_at >= 0 else b), &spf)
        if not 1 <= spf <= MAX_SPF:
            return _error(index, "samples per frame", "range", line.sub(x_at + 1, colon_at if colon_at >= 0 else (plus_at if plus_at >= 0 else b)))
    if colon_at >= 0:
        k = colon_at + 1
        if s[k] == c'-':  # a negative skew: only zero is in range
            _small(s, k + 1, plus_at if plus_at >= 0 else b, &skew)
            skew = -skew
        else:
            _small(s, k, plus_at if plus_at >= 0 else b, &skew)
        if not 0 <= skew <= 2147483648LL:
            return _error(index, "skew", "range", line.sub(k, plus_at if plus_at >= 0 else b))
    if plus_at >= 0:
        _small(s, plus_at + 1, b, &offset)
        if offset > 281474976710656LL:  # 2**48
            return _error(index, "byte offset", "range", line.sub(plus_at + 1, b))
    # gain[(baseline)][/units]
    units = "mV"
    if ntok > 2:
        a, b = start[2], stop[2]
        head_b = b
        for k in range(a, b):
            if s[k] == c'/':
                head_b = slash_at = k
                break
        if head_b > a and s[head_b - 1] == c')':
            open_at = -1
            for k in range(a, head_b - 1):
                if s[k] == c'(':
                    open_at = k
                    break
            if open_at < 0:
                return _error(index, "gain", "malformed", line.sub(a, b))
            k = open_at + 1
            negative = k < head_b - 1 and s[k] == c'-'
            if not _digits(s, k + negative, head_b - 1):
                return _error(index, "gain", "malformed", line.sub(a, b))
            baseline_obj = _integer(line, k, head_b - 1)
            if not (-2147483648 <= baseline_obj <= 2147483647):
                return _error(index, "baseline", "range", baseline_obj)
            baseline = baseline_obj
            has_baseline = True
            head_b = open_at
        if head_b > a:
            if not ascii_number(<const uint8_t*>s, a, head_b, False):
                return _error(index, "gain", "malformed", line.sub(a, b))
            gain = PyOS_string_to_double(s + a, &end, NULL)  # what float() uses
            if end != s + head_b:
                return _error(index, "gain", "malformed", line.sub(a, b))
            if not isfinite(gain):
                return _error(index, "gain", "not finite", line.sub(a, head_b))
        if slash_at >= 0 and slash_at + 1 < b:  # empty units: the default
            units = line.sub(slash_at + 1, b)
    uncal = gain == 0.0
    if uncal:
        gain = 200.0
    # adcres adczero initval checksum blocksize: [+-]?[0-9]+
    values = [0, 0, None, None, 0]
    for k in range(3, ntok if ntok < 8 else 8):
        value = _integer(line, start[k], stop[k])
        if value is None:
            return _error(index, ("ADC resolution", "ADC zero", "initial value", "checksum",
                                  "block size")[k - 3], "not an integer",
                          line.sub(start[k], stop[k]))
        values[k - 3] = value
    adcres, adczero, initval, checksum, block = values
    if initval is None:
        initval = adczero
    if not -2147483648 <= adczero <= 2147483647:
        return _error(index, "ADC zero", "range", adczero)
    if not -2147483648 <= initval <= 2147483647:
        return _error(index, "initial value", "range", initval)
    if adcres == 0:
        adcres = default_res.get(fmt_obj, 12)
    if ntok == NTOK:
        description = line.sub(start[8], stop[8])
    else:
        description = f"record {record}, signal {index}"
    return (line.sub(start[0], stop[0]), fmt_obj, spf, skew, offset, gain,
            baseline if has_baseline else adczero, units, adcres, adczero, initval, checksum,
            block, description, uncal), None


def signal_lines(list lines, str record, object supported, dict default_res):
    """The signal lines of a header as plain field tuples, or the first error.

    Returns ``(fields, None)`` with one tuple per line in ``WfdbSignalSpec``
    order (defaults applied: ``default_res`` gives the ADC resolution of a
    format when the line has 0 or none), or ``(None, (index, field, kind,
    text))``: the line, the field that breaks the grammar, what is wrong
    (``missing``, ``malformed``, ``unsupported``, ``range``, ``not finite``,
    ``not an integer``) and the offending text or value.
    """
    cdef Py_ssize_t index
    cdef list out = []
    for index in range(len(lines)):
        fields, error = _signal_line(_line(lines[index]), record, index, supported,
                                     default_res)
        if error is not None:
            return None, error
        out.append(fields)
    return out, None
