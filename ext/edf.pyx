# cython: language_level=3
"""EDF / BDF kernels: the header's fields read in one pass, one-pass de-interleaving of
data records, and the time-keeping TAL scan of EDF+ annotation signals.

Every kernel validates sizes with the GIL held (against the bytes really
present), then runs one ``nogil`` loop; the data-dependent checks and the loop
give a status code of ``_status.pxd`` that the caller turns into a typed error
(``DecodeContext.check_status``). Arguments a caller must get right (types,
layouts) raise ``ValueError``.
"""

from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.math cimport NAN, isfinite
from libc.string cimport memcpy

cimport numpy as cnp
import numpy as np

from _bytes cimport ascii_number, exact_decimal, exact_integer, load_le16, load_le24, sign_extend
from _status cimport BAD_VALUE, OK, TRUNCATED
from _stream cimport STREAM_FROM_BYTES, STREAMING_STORES, stream_copy, stream_fence

cnp.import_array()

import sys

cdef bint _LITTLE_ENDIAN = sys.byteorder == "little"

# Widths of the per-signal header fields, in file order (EDF.md "Header").
cdef Py_ssize_t[10] _SIGNAL_WIDTHS = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32]
SIGNAL_FIELD_WIDTHS = tuple([_SIGNAL_WIDTHS[i] for i in range(10)])
# The text fields of the fixed header (patient, recording, reserved) as (offset, width).
cdef Py_ssize_t[3] _FIXED_TEXT_STARTS = [8, 88, 192]
cdef Py_ssize_t[3] _FIXED_TEXT_WIDTHS = [80, 80, 44]
# The per-signal text fields (label, transducer, units, prefiltering, reserved) and
# numeric ones (physical min, max, digital min, max, samples per record), by field index.
cdef Py_ssize_t[5] _TEXT_FIELDS = [0, 1, 2, 7, 9]
cdef Py_ssize_t[5] _NUMBER_FIELDS = [3, 4, 5, 6, 8]

cdef uint64_t _ONES = 0x0101010101010101
cdef uint64_t _HIGHS = _ONES * 0x80


cdef inline uint64_t _word(const uint8_t* p) noexcept nogil:
    cdef uint64_t w
    memcpy(&w, p, 8)
    return w


cdef Py_ssize_t _first_unprintable(const uint8_t* p, Py_ssize_t i,
                                   Py_ssize_t stop) noexcept nogil:
    """Index of the first byte outside 32..126 in ``p[i:stop]``, or -1; eight bytes a
    step (a byte below 32 or above 126 sets its word's test, the bytes say which)."""
    cdef uint64_t w
    cdef Py_ssize_t j
    while i + 8 <= stop:
        w = _word(p + i)
        if ((w - _ONES * 32) & ~w & _HIGHS) | (((w + _ONES) | w) & _HIGHS):
            for j in range(i, i + 8):
                if p[j] < 32 or p[j] > 126:
                    return j
        i += 8
    while i < stop:
        if p[i] < 32 or p[i] > 126:
            return i
        i += 1
    return -1


cdef Py_ssize_t _first_non_ascii(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """Index of the first byte above 127 in ``p[:n]``, or -1."""
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        if _word(p + i) & _HIGHS:
            break
        i += 8
    while i < n:
        if p[i] > 127:
            return i
        i += 1
    return -1


cdef str _text(const uint8_t* s, Py_ssize_t n):
    """A header text field without the spaces and NULs around it, as Latin-1 (ASCII
    text comes out as an ASCII string)."""
    cdef Py_ssize_t a = 0, b = n
    cdef uint64_t w
    while a < n and (s[a] == 32 or s[a] == 0):
        a += 1
    while b - 8 >= a:  # trailing padding, a word at a time
        w = _word(s + b - 8)
        if w != _ONES * 32 and w != 0:
            break
        b -= 8
    while b > a and (s[b - 1] == 32 or s[b - 1] == 0):
        b -= 1
    return PyUnicode_DecodeLatin1(<const char*>s + a, b - a, NULL)


def header_fields(const uint8_t[::1] data, Py_ssize_t ns, Py_ssize_t printable_from):
    """The header's text fields and per-signal numbers, read in one pass over the
    ``256 * (ns + 1)`` header bytes (the caller has checked ``ns``; this checks the
    bytes are present).

    Text fields lose the spaces and NULs around them and are read as Latin-1 (ASCII
    unless a byte is above 127). A number field is ``[+-]digits`` (digital range,
    samples per record) or a decimal with an optional fraction and exponent
    (physical range), padded with spaces; decimals read as ``float()`` reads them,
    integers as ``int()``. Returns ``(fixed_texts, texts, numbers, non_ascii,
    unprintable, bad)``:

    - ``fixed_texts``: patient, recording and reserved fields;
    - ``texts``: 5 lists of ``ns`` str: label, transducer, units, prefiltering,
      signal reserved;
    - ``numbers``: 5 lists of ``ns`` values: physical minimum and maximum (float),
      digital minimum and maximum and samples per record (int), up to the first
      bad field;
    - ``non_ascii``: header offset of the first byte above 127 in a text field, -1
      if none;
    - ``unprintable``: offset of the first byte outside 32..126 from
      ``printable_from`` to the header's end, -1 if none;
    - ``bad``: None, or ``(field, signal, code)`` for the first bad number field in
      field order (a field's syntax before finiteness): code 1 = not an ASCII number,
      2 = not finite.
    """
    cdef Py_ssize_t need = 256 * (ns + 1)
    cdef Py_ssize_t f, k, i, base, width, a, b, found, non_ascii = -1, nonfinite
    cdef const uint8_t* p
    cdef const uint8_t* s
    cdef double d
    cdef int64_t v
    cdef bint integer
    if ns < 0 or data.shape[0] < need:
        raise ValueError(f"{ns} signals need {need} header bytes, {data.shape[0]} given")
    if printable_from > need:
        raise ValueError(f"printable_from {printable_from} is past the header")
    p = &data[0]
    fixed_texts = []
    for k in range(3):
        s = p + _FIXED_TEXT_STARTS[k]
        if non_ascii < 0:
            found = _first_non_ascii(s, _FIXED_TEXT_WIDTHS[k])
            if found >= 0:
                non_ascii = _FIXED_TEXT_STARTS[k] + found
        fixed_texts.append(_text(s, _FIXED_TEXT_WIDTHS[k]))
    cdef Py_ssize_t[10] starts
    base = 256
    for f in range(10):
        starts[f] = base
        base += _SIGNAL_WIDTHS[f] * ns
    texts = []
    for k in range(5):
        f = _TEXT_FIELDS[k]
        width = _SIGNAL_WIDTHS[f]
        if non_ascii < 0:
            found = _first_non_ascii(p + starts[f], width * ns)
            if found >= 0:
                non_ascii = starts[f] + found
        texts.append([_text(p + starts[f] + i * width, width) for i in range(ns)])
    unprintable = -1 if printable_from < 0 else _first_unprintable(p, printable_from, need)
    numbers = []
    bad = None
    for k in range(5):
        f = _NUMBER_FIELDS[k]
        integer = f != 3 and f != 4
        values = []
        numbers.append(values)
        nonfinite = -1
        for i in range(ns):
            s = p + starts[f] + i * 8
            _trimmed_bounds(s, 8, &a, &b)
            if not ascii_number(s, a, b, integer):
                return fixed_texts, texts, numbers, non_ascii, unprintable, (f, i, 1)
            if integer:
                if exact_integer(s, a, b, &v):
                    values.append(v)
                else:
                    values.append(int((<const char*>s)[a:b]))
            else:
                if exact_decimal(s, a, b, &d):
                    values.append(d)
                else:
                    d = float((<const char*>s)[a:b])
                    values.append(d)
                    if nonfinite < 0 and not isfinite(d):
                        nonfinite = i
        if nonfinite >= 0:
            return fixed_texts, texts, numbers, non_ascii, unprintable, (f, nonfinite, 2)
    return fixed_texts, texts, numbers, non_ascii, unprintable, bad


cdef inline bint _slot_outside(cnp.int64_t count, cnp.int64_t offset, int bytes_per_sample,
                               Py_ssize_t record_size) noexcept:
    """True when a signal's slot (``count`` samples from byte ``offset``) is not inside
    a data record of ``record_size`` bytes."""
    return count < 0 or offset < 0 or offset + count * bytes_per_sample > record_size


cdef cnp.int64_t _output_address(cnp.ndarray arr, Py_ssize_t j, int expected_type) except? -1:
    """The data address of output ``j``, which must be a writable C-contiguous array of
    ``expected_type`` (int16 for EDF, int32 for BDF) for a kernel to write into."""
    if (cnp.PyArray_TYPE(arr) != expected_type or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
            or not cnp.PyArray_ISWRITEABLE(arr)):
        raise ValueError(f"output {j} is not a writable C-contiguous "
                         f"{'int16' if expected_type == cnp.NPY_INT16 else 'int32'} array")
    return <cnp.int64_t><size_t>cnp.PyArray_DATA(arr)


def deinterleave(const uint8_t[::1] data, Py_ssize_t header_bytes, Py_ssize_t n_records,
                 cnp.int64_t[::1] samples_per_record, cnp.int64_t[::1] slot_offsets,
                 Py_ssize_t record_size, int bytes_per_sample, list outputs,
                 bint stream=True):
    """Copy every selected signal's samples out of ``n_records`` data records.

    ``slot_offsets[j]`` is the byte offset of signal ``j``'s slot inside a data
    record and ``samples_per_record[j]`` its sample count; ``outputs[j]`` is a
    writable C-contiguous int16 (EDF) or int32 (BDF) array of
    ``n_records * samples_per_record[j]`` samples. All sizes are checked here,
    with the GIL, before the kernel runs. Large EDF outputs are written with
    streaming stores (``stream=False``: ordinary stores, for comparison).
    Returns a status: ``TRUNCATED`` when the records are not all present,
    ``BAD_VALUE`` for negative sizes or a slot outside its record.
    """
    cdef Py_ssize_t n_sig = samples_per_record.shape[0]
    cdef Py_ssize_t j
    cdef int status
    if slot_offsets.shape[0] != n_sig or len(outputs) != n_sig:
        raise ValueError("one output and one slot offset per signal")
    if bytes_per_sample != 2 and bytes_per_sample != 3:
        raise ValueError("bytes_per_sample must be 2 (EDF) or 3 (BDF)")
    if header_bytes < 0 or n_records < 0 or record_size < 0:
        return BAD_VALUE
    if data.shape[0] < header_bytes:
        return TRUNCATED
    if n_records > 0 and record_size > 0 and (
            (data.shape[0] - header_bytes) // record_size < n_records):
        return TRUNCATED
    if n_sig == 0 or n_records == 0:
        return OK
    cdef cnp.ndarray arr
    cdef cnp.int64_t[::1] addresses = np.empty(n_sig, dtype=np.int64)
    cdef int expected_type = cnp.NPY_INT16 if bytes_per_sample == 2 else cnp.NPY_INT32
    cdef Py_ssize_t out_bytes = 0
    for j in range(n_sig):
        arr = outputs[j]
        if _slot_outside(samples_per_record[j], slot_offsets[j], bytes_per_sample, record_size):
            return BAD_VALUE
        addresses[j] = _output_address(arr, j, expected_type)
        if cnp.PyArray_SIZE(arr) != n_records * samples_per_record[j]:
            raise ValueError(f"output {j} holds {cnp.PyArray_SIZE(arr)} samples, not "
                             f"{n_records * samples_per_record[j]}")
        out_bytes += cnp.PyArray_NBYTES(arr)
    # the outputs together larger than the caches: store them past the caches
    cdef bint streaming = stream and STREAMING_STORES and out_bytes >= STREAM_FROM_BYTES
    with nogil:
        status = _deinterleave_kernel(&data[header_bytes], n_records, record_size,
                                      &samples_per_record[0], &slot_offsets[0], n_sig,
                                      bytes_per_sample, &addresses[0], streaming)
    return status


cdef inline void _copy_samples(void* out, const uint8_t* src, Py_ssize_t n,
                               int bytes_per_sample) noexcept nogil:
    """``n`` little-endian samples of 2 (EDF, into int16) or 3 bytes (BDF, into int32),
    with ordinary stores (the streamed EDF read has a loop of its own)."""
    cdef Py_ssize_t i
    cdef int16_t* out16
    cdef int32_t* out32
    if bytes_per_sample == 2:
        out16 = <int16_t*>out
        if _LITTLE_ENDIAN:
            memcpy(out16, src, n * 2)
        else:
            for i in range(n):
                out16[i] = <int16_t>load_le16(src + 2 * i)
    else:
        out32 = <int32_t*>out
        for i in range(n):
            out32[i] = sign_extend(load_le24(src + 3 * i), 24)


cdef int _deinterleave_kernel(const uint8_t* records, Py_ssize_t n_records,
                              Py_ssize_t record_size, const cnp.int64_t* counts,
                              const cnp.int64_t* offsets, Py_ssize_t n_sig,
                              int bytes_per_sample, const cnp.int64_t* addresses,
                              bint streaming) noexcept nogil:
    cdef Py_ssize_t k, j, n
    cdef const uint8_t* rec
    cdef Py_ssize_t item = 2 if bytes_per_sample == 2 else 4
    if bytes_per_sample == 2 and _LITTLE_ENDIAN and streaming:
        # the common large EDF read: one streaming copy per slot, no branch per slot
        # (streaming stores only here: BDF's and big-endian samples are converted)
        for k in range(n_records):
            rec = records + k * record_size
            for j in range(n_sig):
                n = counts[j]
                stream_copy((<int16_t*><size_t>addresses[j]) + k * n, rec + offsets[j], n * 2)
        stream_fence()
        return OK
    for k in range(n_records):
        rec = records + k * record_size
        for j in range(n_sig):
            n = counts[j]
            _copy_samples(<uint8_t*><size_t>addresses[j] + k * n * item, rec + offsets[j], n,
                          bytes_per_sample)
    return OK


def deinterleave_part(const uint8_t[::1] data, Py_ssize_t first_record, Py_ssize_t n_records,
                      cnp.int64_t[::1] samples_per_record, cnp.int64_t[::1] slot_offsets,
                      Py_ssize_t record_size, int bytes_per_sample,
                      cnp.int64_t[::1] first_samples, list outputs):
    """Copy what ``n_records`` data records hold of a part of each selected signal.

    ``data`` starts with data record ``first_record`` (the records of a part of a
    file, read a chunk at a time). ``outputs[j]`` is a writable C-contiguous int16
    (EDF) or int32 (BDF) array for samples ``first_samples[j]`` onwards of signal
    ``j`` in the whole recording (``samples_per_record[j]`` per record, its slot at
    ``slot_offsets[j]`` in each record); the samples of those that these records
    hold are written, the others left as they are, so the caller fills an output
    chunk by chunk. Sizes are checked here, with the GIL, before the kernel runs.
    Returns a status: ``TRUNCATED`` when ``data`` holds fewer than ``n_records``
    records, ``BAD_VALUE`` for negative sizes or a slot outside its record.
    """
    cdef Py_ssize_t n_sig = samples_per_record.shape[0]
    cdef Py_ssize_t j
    if (slot_offsets.shape[0] != n_sig or first_samples.shape[0] != n_sig
            or len(outputs) != n_sig):
        raise ValueError("one output, one slot offset and one first sample per signal")
    if bytes_per_sample != 2 and bytes_per_sample != 3:
        raise ValueError("bytes_per_sample must be 2 (EDF) or 3 (BDF)")
    if first_record < 0 or n_records < 0 or record_size < 0:
        return BAD_VALUE
    if n_records > 0 and data.shape[0] // max(record_size, 1) < n_records:
        return TRUNCATED
    if n_sig == 0 or n_records == 0:
        return OK
    cdef cnp.ndarray arr
    cdef cnp.int64_t[::1] addresses = np.empty(n_sig, dtype=np.int64)
    cdef cnp.int64_t[::1] lengths = np.empty(n_sig, dtype=np.int64)
    cdef int expected_type = cnp.NPY_INT16 if bytes_per_sample == 2 else cnp.NPY_INT32
    for j in range(n_sig):
        arr = outputs[j]
        if _slot_outside(samples_per_record[j], slot_offsets[j], bytes_per_sample, record_size):
            return BAD_VALUE
        addresses[j] = _output_address(arr, j, expected_type)
        lengths[j] = cnp.PyArray_SIZE(arr)
    if record_size == 0:  # every slot is empty
        return OK
    with nogil:
        _part_kernel(&data[0], first_record, n_records, record_size, &samples_per_record[0],
                     &slot_offsets[0], &first_samples[0], &lengths[0], n_sig,
                     bytes_per_sample, &addresses[0])
    return OK


cdef void _part_kernel(const uint8_t* records, Py_ssize_t first_record, Py_ssize_t n_records,
                       Py_ssize_t record_size, const cnp.int64_t* counts,
                       const cnp.int64_t* offsets, const cnp.int64_t* firsts,
                       const cnp.int64_t* lengths, Py_ssize_t n_sig, int bytes_per_sample,
                       const cnp.int64_t* addresses) noexcept nogil:
    cdef Py_ssize_t k, j, n, lo, hi, at
    cdef Py_ssize_t item = 2 if bytes_per_sample == 2 else 4
    for k in range(n_records):
        for j in range(n_sig):
            n = counts[j]
            at = (first_record + k) * n - firsts[j]  # output index of the record's sample 0
            lo = -at if at < 0 else 0
            hi = lengths[j] - at if lengths[j] - at < n else n
            if hi > lo:
                _copy_samples(<uint8_t*><size_t>addresses[j] + (at + lo) * item,
                              records + k * record_size + offsets[j] + lo * bytes_per_sample,
                              hi - lo, bytes_per_sample)


from _pread cimport SCATTER_READS, ecg_iovec, read_fully

from libc.stdlib cimport free, malloc

SCATTERED_READS = bool(SCATTER_READS)
"""True where :func:`scatter_read` can read (POSIX systems)."""

cdef enum:
    _MAX_IOV = 1024  # buffers of one scattered read (IOV_MAX on Linux)


def scatter_read(int fd, Py_ssize_t header_bytes, Py_ssize_t record_size, Py_ssize_t r0,
                 Py_ssize_t r1, cnp.int64_t[::1] samples_per_record,
                 cnp.int64_t[::1] slot_offsets, cnp.int64_t[::1] first_samples,
                 list outputs, Py_ssize_t max_gap):
    """Read EDF samples of data records ``[r0, r1)`` from the open file ``fd`` straight
    into their outputs: the stored little-endian int16 are the output's bytes, so each
    record's run of a signal is one buffer of a scattered read (``preadv``), and no
    reading buffer holds the records.

    Signals are given in slot order, each once: ``outputs[j]`` is a writable
    C-contiguous int16 array for samples ``first_samples[j]`` onwards of the signal
    whose slot starts at ``slot_offsets[j]``. Bytes between two needed runs are read
    into a scratch buffer when the gap is at most ``max_gap`` bytes (the read goes on),
    otherwise a new read starts. Returns ``(status, errno)``: ``TRUNCATED`` when the
    file ends before the records; a non-zero ``errno`` when a read failed.
    """
    cdef Py_ssize_t n_sig = samples_per_record.shape[0]
    cdef Py_ssize_t j
    if (slot_offsets.shape[0] != n_sig or first_samples.shape[0] != n_sig
            or len(outputs) != n_sig):
        raise ValueError("one output, one slot offset and one first sample per signal")
    if not SCATTER_READS:
        raise ValueError("scattered reads are not available on this system")
    if header_bytes < 0 or record_size < 0 or r0 < 0 or r1 < r0 or max_gap < 0:
        return BAD_VALUE, 0
    cdef cnp.ndarray arr
    # plain C arrays: two NumPy arrays and their memoryviews cost more than the checks
    cdef cnp.int64_t* addresses = <cnp.int64_t*>malloc(max(n_sig, 1) * 2 * sizeof(cnp.int64_t))
    if addresses == NULL:
        raise MemoryError()
    cdef cnp.int64_t* lengths = addresses + max(n_sig, 1)
    cdef ecg_iovec* iov = NULL
    cdef char* scratch = NULL
    cdef int status = OK, err = 0
    try:
        for j in range(n_sig):
            arr = outputs[j]
            addresses[j] = _output_address(arr, j, cnp.NPY_INT16)
            # in slot order, each slot after the one before it
            if _slot_outside(samples_per_record[j], slot_offsets[j], 2, record_size) or (
                    j and slot_offsets[j] < slot_offsets[j - 1] + 2 * samples_per_record[j - 1]):
                return BAD_VALUE, 0
            lengths[j] = cnp.PyArray_SIZE(arr)
        if n_sig == 0 or r1 == r0:
            return OK, 0
        iov = <ecg_iovec*>malloc(_MAX_IOV * sizeof(ecg_iovec))
        scratch = <char*>malloc(max_gap if max_gap > 0 else 1)
        if iov == NULL or scratch == NULL:
            raise MemoryError()
        with nogil:
            status = _scatter_kernel(fd, header_bytes, record_size, r0, r1,
                                     &samples_per_record[0], &slot_offsets[0],
                                     &first_samples[0], lengths, addresses, n_sig,
                                     scratch, max_gap, iov, &err)
    finally:
        free(iov)
        free(scratch)
        free(addresses)
    return status, err


cdef int _scatter_kernel(int fd, Py_ssize_t header_bytes, Py_ssize_t record_size,
                         Py_ssize_t r0, Py_ssize_t r1, const cnp.int64_t* counts,
                         const cnp.int64_t* offsets, const cnp.int64_t* firsts,
                         const cnp.int64_t* lengths, const cnp.int64_t* addresses,
                         Py_ssize_t n_sig, char* scratch, Py_ssize_t max_gap,
                         ecg_iovec* iov, int* err) noexcept nogil:
    cdef Py_ssize_t g, j, n, lo, hi, at
    cdef long long offset, size, gap, start = 0, end = 0
    cdef int used = 0, status
    for g in range(r0, r1):
        for j in range(n_sig):
            n = counts[j]
            at = g * n - firsts[j]  # output index of the record's sample 0
            lo = -at if at < 0 else 0
            hi = lengths[j] - at if lengths[j] - at < n else n
            if hi <= lo:
                continue
            offset = header_bytes + <long long>g * record_size + offsets[j] + 2 * lo
            size = 2 * (hi - lo)
            gap = offset - end
            if used and (gap > max_gap or used + 2 > _MAX_IOV):
                status = read_fully(fd, iov, used, start, end - start, err)
                if status != OK:
                    return status
                used = 0
            if not used:
                start = offset
            elif gap > 0:
                iov[used].iov_base = scratch
                iov[used].iov_len = <size_t>gap
                used += 1
            iov[used].iov_base = <char*><size_t>addresses[j] + 2 * (at + lo)
            iov[used].iov_len = <size_t>size
            used += 1
            end = offset + size
    if used:
        return read_fully(fd, iov, used, start, end - start, err)
    return OK


def scan_annotation_slots(const uint8_t[::1] data, Py_ssize_t header_bytes,
                          Py_ssize_t n_records, Py_ssize_t record_size,
                          Py_ssize_t slot_offset, Py_ssize_t slot_size, bint timekeeping,
                          double[::1] onsets, uint8_t[::1] flags):
    """Classify one annotation signal's slot in every data record.

    Fills ``onsets`` and ``flags`` (``n_records`` each) and returns a status
    (``TRUNCATED``: the records are not all present; ``BAD_VALUE``: a size is
    impossible). With ``timekeeping`` the first TAL of each
    slot is parsed: ``onsets[k]`` is its onset when it is a well-formed
    time-keeping TAL (``+onset[\\x15duration]\\x14\\x14``). ``flags[k]``:
    0 = nothing else in the slot (nothing left for Python to parse),
    1 = more content follows (Python parses the slot),
    2 = no well-formed time-keeping TAL (Python parses the slot and warns).
    Without ``timekeeping``: 0 = empty slot, 1 = content.
    """
    if onsets.shape[0] != n_records or flags.shape[0] != n_records:
        raise ValueError("onsets and flags need one item per data record")
    if header_bytes < 0 or n_records < 0 or record_size <= 0 or slot_offset < 0 \
            or slot_size < 0 or slot_offset + slot_size > record_size:
        return BAD_VALUE
    if data.shape[0] < header_bytes or (data.shape[0] - header_bytes) // record_size < n_records:
        return TRUNCATED
    cdef Py_ssize_t k
    for k in range(n_records):
        onsets[k] = NAN
        flags[k] = 0
    if n_records == 0 or slot_size == 0:
        return OK
    with nogil:
        _scan_kernel(&data[header_bytes], n_records, record_size, slot_offset, slot_size,
                     timekeeping, &onsets[0], &flags[0])
    return OK


cdef void _scan_kernel(const uint8_t* records, Py_ssize_t n_records, Py_ssize_t record_size,
                       Py_ssize_t slot_offset, Py_ssize_t slot_size, bint timekeeping,
                       double* onsets, uint8_t* flags) noexcept nogil:
    cdef Py_ssize_t k, i, start
    cdef const uint8_t* s
    cdef bint digits
    for k in range(n_records):
        s = records + k * record_size + slot_offset
        if not timekeeping:
            flags[k] = 0 if s[0] == 0 else 1
            continue
        # onset: [+-] digits [. digits]
        i = 0
        if s[0] != 43 and s[0] != 45:  # '+' '-'
            flags[k] = 2
            continue
        i = 1
        digits = False
        while i < slot_size and 48 <= s[i] <= 57:
            i += 1
            digits = True
        if i < slot_size and s[i] == 46:  # '.'
            i += 1
            while i < slot_size and 48 <= s[i] <= 57:
                i += 1
        if not digits or i + 1 >= slot_size:
            flags[k] = 2
            continue
        if s[i] == 0x15:  # a duration on a time-keeping TAL: leave it to Python
            flags[k] = 2
            continue
        if s[i] != 0x14 or s[i + 1] != 0x14:
            flags[k] = 2
            continue
        if not exact_decimal(s, 0, i, &onsets[k]):
            flags[k] = 1  # more digits than the exact fast path takes: Python reads the slot
            continue
        start = i + 2
        if start >= slot_size:
            flags[k] = 2  # no closing 0x00
        elif s[start] == 0 and (start + 1 >= slot_size or s[start + 1] == 0):
            flags[k] = 0
        else:
            flags[k] = 1


cdef inline bint _trimmed_bounds(const uint8_t* s, Py_ssize_t n, Py_ssize_t* a,
                                 Py_ssize_t* b) noexcept nogil:
    """``s[a:b]`` is ``s[:n]`` without leading and trailing spaces; False if empty."""
    a[0] = 0
    while a[0] < n and s[a[0]] == 32:
        a[0] += 1
    b[0] = n
    while b[0] > a[0] and s[b[0] - 1] == 32:
        b[0] -= 1
    return b[0] > a[0]


cdef bint _valid_number(const uint8_t* s, Py_ssize_t n, bint integer) noexcept nogil:
    """ASCII number padded with spaces: [+-]digits, or for decimals also
    ``.``, fraction digits and an exponent."""
    cdef Py_ssize_t a, b
    _trimmed_bounds(s, n, &a, &b)
    return ascii_number(s, a, b, integer)


def valid_number(bytes raw, bint integer):
    """True when ``raw`` is an ASCII integer (or decimal) padded with spaces: the rule
    of every numeric header field (:func:`header_fields` reads the per-signal ones)."""
    return _valid_number(<const uint8_t*><const char*>raw, len(raw), integer)
