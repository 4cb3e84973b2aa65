# cython: language_level=3
"""WFDB signal-file kernels: one pass over a group's bytes into per-signal arrays.

The Python side (``ecgingest.formats.wfdb``) validates the header, checks every
count against the bytes present and allocates the outputs with the GIL held;
``decode_group`` then runs one ``nogil`` kernel and maps its status code to an
exception afterwards.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport malloc, free
from libc.math cimport isfinite
from libc.string cimport memset, memcpy

cimport numpy as cnp

from _bytes cimport ascii_number, exact_integer, load_le16, load_be16, load_le24, load_le32, sign_extend
from _status cimport OK, TRUNCATED, BAD_VALUE, UNSUPPORTED

from cpython.ref cimport PyObject, PyTypeObject

import numpy as np

cnp.import_array()


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    double PyOS_string_to_double(const char* s, char** endptr,
                                 PyObject* overflow_exception) except? -1.0

DEF CHUNK = 8192          # flat samples decoded per chunk (about; whole frames)
DEF MAX_SIGNALS = 65536


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


cdef int64_t _direct(const uint8_t* data, int fmt, int nsig, int frame_size, int64_t nframes,
                     out_t** outs, int64_t* checksum) noexcept nogil:
    """One pass from bytes to outputs for whole frames of one sample per signal, no skew.

    Handles 16 and 212 (even frame size); returns the frames done (0: not handled).
    Works in blocks of frames small enough (about 16 KB) that a block's bytes
    stay in the first-level cache while every signal picks its samples out of
    them; per-block sums fit in 32 bits (at most 4096 frames of 16-bit values).
    """
    cdef int64_t f0, n, blk
    cdef int s, half = frame_size // 2
    cdef int64_t stride = 2 * frame_size if fmt == 16 else 3 * half
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
        if fmt == 212:
            # signals 2m and 2m+1 share every third byte pair: decode them together
            s = 0
            while s + 4 <= nsig:
                _quad212(data + stride * f0 + 3 * (s // 2), stride, outs[s] + f0,
                         outs[s + 1] + f0, outs[s + 2] + f0, outs[s + 3] + f0, n,
                         &checksum[s])
                s += 4
            if s < nsig:
                _pair212(data + stride * f0 + 3 * (s // 2), stride, outs[s] + f0,
                         outs[s + 1] + f0, n, &checksum[s], &checksum[s + 1])
        else:
            for s in range(nsig):
                checksum[s] += _one16(data + stride * f0 + 2 * s, stride, outs[s] + f0, n)
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
    (before deskewing). ``count[s]`` ends as the stored samples seen.
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
        if spf[s] != 1 or shift[s] != 0 or count[s] != 0 or outlen[s] < nflat // frame_size:
            simple = False
    if simple:
        # every byte of these whole frames was checked against nbytes above
        nf = _direct(data, fmt, nsig, frame_size, nflat // frame_size, outs, checksum)
        for s in range(nsig):
            count[s] = nf
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


def decode_group(const uint8_t[::1] data, int fmt, int64_t nflat, list spf, list shifts,
                 list outs, list init_values):
    """Decode one signal file group into ``outs`` (preallocated 1-D int16/int32 arrays).

    ``nflat``: flat samples to decode (already bounded by the bytes present).
    ``shifts``: skew of each signal in stored samples. Returns
    ``(status, counts, checksums)``: stored samples seen per signal and the
    sum of the first ``len(out)`` of them (format 8: reconstructed values).
    """
    cdef int nsig = len(spf), s, k, frame_size = 0, slot, status
    cdef bint wide
    cdef int64_t nbytes = data.shape[0]
    cdef const uint8_t* ptr = &data[0] if nbytes > 0 else NULL
    cdef cnp.ndarray arr
    if nsig <= 0 or nsig > MAX_SIGNALS or len(shifts) != nsig or len(outs) != nsig \
            or len(init_values) != nsig:
        return BAD_VALUE, [], []
    if _group_bytes(fmt) == 0:
        return UNSUPPORTED, [], []
    if sum(spf) > (1 << 24) or min(spf) < 1:
        return BAD_VALUE, [], []
    for s in range(nsig):
        frame_size += <int>spf[s]
    wide = outs[0].dtype == np.int32
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
            if arr.ndim != 1 or not arr.flags.c_contiguous or not arr.flags.writeable \
                    or arr.dtype != (np.int32 if wide else np.int16):
                return BAD_VALUE, [], []
            c_spf[s] = spf[s]
            c_slot[s] = slot
            slot += c_spf[s]
            c_shift[s] = shifts[s]
            c_len[s] = arr.shape[0]
            c_count[s] = 0
            c_sum[s] = 0
            c_state[s] = init_values[s]
            c_out[s] = cnp.PyArray_DATA(arr)
        with nogil:
            if wide:
                status = _kernel[int32_t](ptr, nbytes, fmt, nsig, c_spf, c_slot, frame_size, fpc,
                                          nflat, <int32_t**>c_out, c_shift, c_len, c_count,
                                          c_sum, c_state, tmp)
            else:
                status = _kernel[int16_t](ptr, nbytes, fmt, nsig, c_spf, c_slot, frame_size, fpc,
                                          nflat, <int16_t**>c_out, c_shift, c_len, c_count,
                                          c_sum, c_state, tmp)
        return (status, [c_count[s] for s in range(nsig)],
                [c_sum[s] for s in range(nsig)])
    finally:
        free(c_spf); free(c_slot); free(c_shift); free(c_len); free(c_count)
        free(c_sum); free(c_state); free(c_out); free(tmp)


# --------------------------------------------------------------------------- signal lines

DEF NTOK = 9              # eight fields and the description


cdef inline bint _is_space(char c) noexcept nogil:
    return c == c' ' or c == c'\t'


cdef inline bint _decimal(const char* s, Py_ssize_t a, Py_ssize_t b, bint with_sign,
                          int64_t* value) noexcept nogil:
    """``s[a:b]`` as ``[+-]?[0-9]+`` (sign only when ``with_sign``) of at most 18 digits."""
    if not with_sign and a < b and (s[a] == c'+' or s[a] == c'-'):
        return False
    return exact_integer(<const uint8_t*>s, a, b, value)


cdef inline bint _int32(int64_t v) noexcept nogil:
    return -2147483648 <= v <= 2147483647


cdef inline object _new_spec(type spec_type, tuple fields):
    """``tuple.__new__(spec_type, fields)`` without the Python-level call (tuple's own new)."""
    cdef tuple args = (fields,)
    return (<PyTypeObject*>tuple).tp_new(spec_type, <PyObject*>args, NULL)


cdef object _plain_line(str line, str record, Py_ssize_t index, object spec_type,
                        object packed, dict default_res):
    """One complete plain signal line as ``spec_type``, or ``None`` if anything is unusual."""
    cdef Py_ssize_t size, pos = 0, ntok = 0, k, gain_a, gain_b, head_b, open_at, slash_at = 0
    cdef Py_ssize_t start[NTOK]
    cdef Py_ssize_t stop[NTOK]
    cdef const char* s
    cdef char* end
    cdef char c
    cdef int64_t fmt, adcres, adczero, initval, checksum, block, baseline
    cdef bint has_baseline = False, has_slash = False
    cdef double gain = 0.0
    if not line.isascii():
        return None
    s = PyUnicode_AsUTF8AndSize(line, &size)  # ASCII: the str's own bytes, no copy
    for k in range(size):
        c = s[k]
        if not (c' ' <= c <= c'~' or c == c'\t'):  # str.split() also splits \x1c-\x1f, \v, \f
            return None
    # line.split(None, 8) over space/tab: tokens 0..7, then the rest
    while ntok < NTOK:
        while pos < size and _is_space(s[pos]):
            pos += 1
        if pos == size:
            break
        start[ntok] = pos
        if ntok == NTOK - 1:
            pos = size
            while _is_space(s[pos - 1]):  # .strip(); the token starts with a non-space
                pos -= 1
        else:
            while pos < size and not _is_space(s[pos]):
                pos += 1
        stop[ntok] = pos
        ntok += 1
    if ntok < NTOK - 1:
        return None
    # format: one of the plain packed formats, written without a leading zero
    if s[start[1]] == c'0' or not _decimal(s, start[1], stop[1], False, &fmt):
        return None
    fmt_obj = fmt
    if fmt_obj not in packed:
        return None
    if not _decimal(s, start[3], stop[3], False, &adcres) \
            or not _decimal(s, start[4], stop[4], True, &adczero) \
            or not _decimal(s, start[5], stop[5], True, &initval) \
            or not _decimal(s, start[6], stop[6], True, &checksum) \
            or not _decimal(s, start[7], stop[7], True, &block):
        return None
    # gain[(baseline)][/units]
    gain_a, gain_b = start[2], stop[2]
    head_b = gain_b
    for k in range(gain_a, gain_b):
        if s[k] == c'_':
            return None
        if s[k] == c'/' and not has_slash:
            head_b = slash_at = k
            has_slash = True
    if head_b > gain_a and s[head_b - 1] == c')':
        open_at = -1
        for k in range(gain_a, head_b - 1):
            if s[k] == c'(':
                open_at = k
                break
        if open_at < 0 or not _decimal(s, open_at + 1, head_b - 1, True, &baseline):
            return None
        has_baseline = True
        head_b = open_at
    if head_b > gain_a:
        if not ascii_number(<const uint8_t*>s, gain_a, head_b, False):
            return None
        gain = PyOS_string_to_double(s + gain_a, &end, NULL)  # what float() uses
        if end != s + head_b or not isfinite(gain):
            return None
    if not (_int32(adczero) and _int32(initval) and (not has_baseline or _int32(baseline))):
        return None
    uncal = gain == 0.0
    if uncal:
        gain = 200.0
    adczero_obj = adczero
    adcres_obj = default_res.get(fmt_obj, 12) if adcres == 0 else adcres
    if ntok == NTOK:
        description = line[start[8]:stop[8]]
    else:
        description = f"record {record}, signal {index}"
    fields = (line[start[0]:stop[0]], fmt_obj, 1, 0, 0, gain,
              baseline if has_baseline else adczero_obj,
              line[slash_at + 1:gain_b] if has_slash else "mV",
              adcres_obj, adczero_obj, initval, checksum, block, description, uncal)
    return _new_spec(<type>spec_type, fields)


def plain_signal_lines(list lines, str record, object spec_type, object packed,
                       dict default_res):
    """All signal lines of a header as ``spec_type`` tuples, or ``None``.

    ``None`` as soon as one line is not a complete plain line (a packed format
    without suffixes, all eight fields present, printable ASCII only): the
    Python parser then reads every line and words the errors. ``packed`` is
    the set of plain formats, ``default_res`` the ADC resolution of a format
    when the line gives 0.
    """
    cdef Py_ssize_t index
    cdef list out = []
    if not issubclass(spec_type, tuple):
        raise TypeError("spec_type must be a tuple subclass")
    for index in range(len(lines)):
        spec = _plain_line(lines[index], record, index, spec_type, packed, default_res)
        if spec is None:
            return None
        out.append(spec)
    return out
