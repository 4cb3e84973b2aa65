# cython: language_level=3
"""One-pass conversion of stored integers to physical values.

``digital * scale + offset`` in float64, NaN where the stored code is the
format's invalid marker or a mask says the sample is missing: one read of
the digital array and one write of the output, with the GIL released.

The loops run over raw pointers with the scale, offset and code in locals
and a branch-free select for the invalid samples, so the compiler can keep
them in registers and vectorise them (a memoryview loop re-reads the scale
from memory on every sample because the output might alias it).

A large output is written with streaming (non-temporal) stores: converted a
few kilobytes at a time into a buffer that stays in the first-level cache,
then stored past the caches. An ordinary store first reads every output line
it will overwrite, so a conversion that does not fit in the caches moves the
output through memory twice; streaming halves that traffic, which is what
bounds this loop.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from cpython.object cimport PyObject, PyObject_GenericSetAttr, PyTypeObject
from cpython.ref cimport Py_INCREF

cdef extern from "Python.h":
    int PyObject_GC_IsTracked(object obj)
    void PyObject_GC_UnTrack(void* obj)

from _stream cimport STREAM_FROM_BYTES, STREAMING_STORES, stream_copy, stream_fence

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    PyTypeObject PyArray_Type
    # the data, its shape and strides given: a view (numpy's .pxd leaves it out);
    # steals the reference to descr
    object PyArray_NewFromDescr(PyTypeObject* subtype, PyObject* descr, int nd,
                                cnp.npy_intp* dims, cnp.npy_intp* strides, void* data,
                                int flags, PyObject* obj)


ctypedef fused stored_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef void _plain(const stored_t* src, double* dst, Py_ssize_t n, double scale,
                 double offset) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <double>src[i] * scale + offset


cdef void _coded(const stored_t* src, double* dst, Py_ssize_t n, double scale, double offset,
                 stored_t code) noexcept nogil:
    """Plain conversion that also counts the invalid codes, then a patch pass only
    when there are any (they are rare), which keeps the main loop vectorisable."""
    cdef Py_ssize_t i, start, stop, hits
    for start in range(0, n, 4096):
        stop = start + 4096 if n - start > 4096 else n
        hits = 0
        for i in range(start, stop):
            dst[i] = <double>src[i] * scale + offset
            hits += src[i] == code
        if hits:
            for i in range(start, stop):
                if src[i] == code:
                    dst[i] = NAN


cdef void _masked(const stored_t* src, const uint8_t* mask, double* dst, Py_ssize_t n,
                  double scale, double offset, bint has_code, int64_t code) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if mask[i] or (has_code and src[i] == code):
            dst[i] = NAN
        else:
            dst[i] = <double>src[i] * scale + offset


DEF STAGE = 512              # doubles per staging block: 4 KiB, well inside the L1 cache
_STREAM_FROM_BYTES = STREAM_FROM_BYTES


cdef void _convert(const stored_t* src, const uint8_t* mask, double* dst, Py_ssize_t n,
                   double scale, double offset, bint has_code, int64_t code) noexcept nogil:
    if mask != NULL:
        _masked(src, mask, dst, n, scale, offset, has_code, code)
    elif has_code:
        _coded(src, dst, n, scale, offset, <stored_t>code)
    else:
        _plain(src, dst, n, scale, offset)


cdef void _convert_streaming(const stored_t* src, const uint8_t* mask, double* dst,
                             Py_ssize_t n, double scale, double offset, bint has_code,
                             int64_t code) noexcept nogil:
    """``_convert`` for outputs that do not fit in the caches: the head up to the
    first 64-byte line and the last partial block with ordinary stores, every
    whole line between through the staging buffer with streaming stores."""
    cdef double stage[STAGE + 8]
    # the staging buffer on a line boundary, whatever the stack alignment
    cdef double* buf = <double*>((<size_t>stage + 63) & ~(<size_t>63))
    cdef Py_ssize_t head = <Py_ssize_t>(((64 - (<size_t>dst & 63)) & 63) // 8)
    cdef Py_ssize_t i, m
    if (<size_t>dst & 7) != 0 or n < head + STAGE:  # not double-aligned, or too short
        _convert(src, mask, dst, n, scale, offset, has_code, code)
        return
    _convert(src, mask, dst, head, scale, offset, has_code, code)
    i = head
    while n - i >= STAGE:
        _convert(src + i, mask + i if mask != NULL else NULL, buf, STAGE, scale, offset,
                 has_code, code)
        stream_copy(dst + i, buf, STAGE * sizeof(double))
        i += STAGE
    m = n - i
    if m > 0:
        _convert(src + i, mask + i if mask != NULL else NULL, dst + i, m, scale, offset,
                 has_code, code)
    stream_fence()


# ---------------------------------------------------------------- arrays over pooled memory
#
# What the array pool keeps, for how long and up to which cap is decided in
# ecgingest._memory; this module does only the byte work for it: an array over
# part of a block whose owner hands the block back when the last view of the
# array is dropped, and marking a returned block's pages free-on-demand.

cdef extern from *:
    """
    #if defined(__linux__) || defined(__APPLE__)
    #include <sys/mman.h>
    #endif
    static int ecg_release_lazily(char *start, size_t length) {
    #if (defined(__linux__) || defined(__APPLE__)) && defined(MADV_FREE)
        return madvise(start, length, MADV_FREE);
    #else
        (void)start; (void)length;
        return 0;
    #endif
    }
    """
    int ecg_release_lazily(char* start, size_t length) nogil

DEF PAGE = 4096


cdef class _PooledBlock:
    """Owner of a block's memory and base of the array over it: it outlives every
    view of that array and calls ``give_back(raw)`` when the last one is dropped."""
    cdef object raw
    cdef object give_back

    def __dealloc__(self):
        if self.give_back is not None:
            try:
                self.give_back(self.raw)
            except Exception:  # interpreter shutdown: let the memory go
                pass


def array_over(cnp.ndarray raw, Py_ssize_t n, dtype, Py_ssize_t offset, give_back):
    """``n`` items of ``dtype`` from byte ``offset`` of ``raw`` (a 1-d uint8 array),
    whose memory goes to ``give_back(raw)`` once the result and every view of it
    are gone (numpy never looks past a base that is not an array)."""
    cdef cnp.dtype dt = dtype if isinstance(dtype, cnp.dtype) else np.dtype(dtype)
    if (cnp.PyArray_NDIM(raw) != 1 or cnp.PyArray_TYPE(raw) != cnp.NPY_UINT8
            or not cnp.PyArray_IS_C_CONTIGUOUS(raw)):
        raise ValueError("raw must be a contiguous 1-d uint8 array")
    if n < 0 or offset < 0 or (dt.itemsize and n > (cnp.PyArray_DIM(raw, 0) - offset)
                                // dt.itemsize):
        raise ValueError("the array does not fit in the block")
    block = _PooledBlock()
    block.raw = raw
    block.give_back = give_back
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    cdef cnp.ndarray out = cnp.PyArray_SimpleNewFromData(
        1, dims, dt.num, <char*>cnp.PyArray_DATA(raw) + offset)
    cnp.set_array_base(out, block)
    return out


def data_address(cnp.ndarray array):
    """The address of ``array``'s first byte (what ``__array_interface__`` gives, which
    formats a whole description of the array to tell it)."""
    return <size_t>cnp.PyArray_DATA(array)


def release_lazily(cnp.ndarray raw):
    """Mark the whole pages of ``raw``'s memory free-on-demand (``MADV_FREE``):
    kept while memory is plentiful, taken by the system under pressure."""
    cdef size_t start = <size_t>cnp.PyArray_DATA(raw)
    cdef size_t end = start + <size_t>cnp.PyArray_NBYTES(raw)
    start = (start + PAGE - 1) // PAGE * PAGE  # the block's own pages, never a neighbour's
    end = end // PAGE * PAGE
    if end > start:
        with nogil:
            ecg_release_lazily(<char*>start, end - start)


cdef object _allocate = None


cdef object _output(Py_ssize_t n):
    """A float64 output array from the pool's allocator (imported on first use: the
    pool's module imports this one)."""
    global _allocate
    if _allocate is None:
        from ecgingest._memory import aligned_empty
        _allocate = aligned_empty
    return _allocate(n, np.float64)


def to_physical(const stored_t[::1] digital, double scale, double offset,
                invalid_value=None, const uint8_t[::1] invalid_mask=None, bint stream=True):
    """float64 array of ``digital * scale + offset`` with NaN for invalid samples.

    ``stream=False`` keeps ordinary stores for every size (tests compare the two).
    """
    cdef Py_ssize_t n = digital.shape[0]
    cdef cnp.ndarray out_arr = _output(n)
    cdef double* dst = <double*>cnp.PyArray_DATA(out_arr)
    cdef const stored_t* src = &digital[0] if n > 0 else NULL
    cdef const uint8_t* mask = NULL
    cdef bint has_code = invalid_value is not None
    cdef int64_t code = 0
    if has_code:
        code = <int64_t>invalid_value
        # a code outside the stored type cannot occur
        if stored_t is int8_t:
            has_code = -128 <= code <= 127
        elif stored_t is int16_t:
            has_code = -32768 <= code <= 32767
        elif stored_t is int32_t:
            has_code = -2147483648 <= code <= 2147483647
    if invalid_mask is not None:
        if invalid_mask.shape[0] != n:
            raise ValueError("invalid_mask must have one entry per sample")
        if n > 0:
            mask = &invalid_mask[0]
    if n == 0:
        return out_arr
    cdef bint streaming = STREAMING_STORES and n >= STREAM_FROM_BYTES // 8 and stream
    with nogil:
        if streaming:
            _convert_streaming(src, mask, dst, n, scale, offset, has_code, code)
        else:
            _convert(src, mask, dst, n, scale, offset, has_code, code)
    return out_arr


# ---------------------------------------------------------------- record building

cdef inline void _untrack_if_acyclic(object instance, tuple values) noexcept:
    """Untrack a just-built frozen ``instance`` that holds nothing but ``values`` where
    none of them is tracked by the garbage collector: holding only such values
    (strings, numbers, None, NumPy arrays) it cannot be part of a reference cycle, as
    CPython reasons for a tuple of them. The collector then no longer walks it at each
    collection; a record keeps a dozen signals, and a read of many records spent a
    tenth of its time in collections walking them."""
    cdef Py_ssize_t i
    if not PyObject_GC_IsTracked(instance):
        return
    for i in range(len(values)):
        if PyObject_GC_IsTracked(values[i]):
            return
    PyObject_GC_UnTrack(<void*>instance)


def new_signal(type cls, label, sample_rate, cnp.ndarray digital, scale=1.0, offset=0.0,
               units="", invalid_value=None, cnp.ndarray invalid_mask=None,
               cnp.ndarray supplied_physical=None, derivation=None, first_sample=0):
    """A ``cls`` (:class:`ecgingest.Signal`) holding exactly these fields, its
    arrays made read-only, built without running ``__init__``.

    Decoders build a dozen signals per record while holding the GIL, so the
    cost of each one bounds how well threads decoding other records overlap:
    this is a fifth of what the dataclass constructor costs.
    """
    obj = cls.__new__(cls)
    cdef dict fields = obj.__dict__
    fields["label"] = label
    fields["sample_rate"] = sample_rate
    fields["digital"] = digital
    fields["scale"] = scale
    fields["offset"] = offset
    fields["units"] = units
    fields["invalid_value"] = invalid_value
    fields["invalid_mask"] = invalid_mask
    fields["supplied_physical"] = supplied_physical
    fields["derivation"] = derivation
    if first_sample:  # the class default (0) serves every whole signal
        fields["first_sample"] = first_sample
    cnp.PyArray_CLEARFLAGS(digital, cnp.NPY_ARRAY_WRITEABLE)
    if invalid_mask is not None:
        cnp.PyArray_CLEARFLAGS(invalid_mask, cnp.NPY_ARRAY_WRITEABLE)
    _untrack_if_acyclic(obj, (label, sample_rate, digital, scale, offset, units,
                              invalid_value, invalid_mask, supplied_physical, derivation,
                              first_sample))
    return obj


cdef list _each(value, Py_ssize_t n, str name):
    """``value`` as one entry per signal: a list, tuple or array as given (checked
    against ``n``), anything else repeated."""
    if isinstance(value, (list, tuple, cnp.ndarray)):
        if len(value) != n:
            raise ValueError(f"{name} needs one entry per signal ({n}), not {len(value)}")
        return list(value)
    return [value] * n


cdef list _row_views(cnp.ndarray block, list kept):
    """The rows of a 2-D array as 1-D views of it, each cut to its kept count
    (None: the whole row), made through the C API: what iterating and slicing
    make, without a Python-level index or slice per row."""
    cdef Py_ssize_t i, nrows = cnp.PyArray_DIM(block, 0)
    cdef cnp.npy_intp length, full = cnp.PyArray_DIM(block, 1)
    cdef cnp.npy_intp step = cnp.PyArray_STRIDE(block, 0)
    cdef cnp.npy_intp stride = cnp.PyArray_STRIDE(block, 1)
    cdef char* base = <char*>cnp.PyArray_DATA(block)
    cdef int flags = cnp.NPY_ARRAY_WRITEABLE if cnp.PyArray_ISWRITEABLE(block) else 0
    cdef PyObject* descr = <PyObject*>cnp.PyArray_DESCR(block)
    cdef list rows = []
    cdef cnp.ndarray row
    for i in range(nrows):
        length = full
        if kept[i] is not None:
            length = kept[i]
            if length < 0 or length > full:  # what a slice does with such a count
                length = len(range(full)[:kept[i]])
        Py_INCREF(<object>descr)  # PyArray_NewFromDescr steals it
        row = PyArray_NewFromDescr(&PyArray_Type, descr, 1, &length,
                                   &stride, base + i * step, flags, NULL)
        cnp.set_array_base(row, block)
        rows.append(row)
    return rows


def new_signals(type cls, labels, sample_rate, digital, scale=1.0, offset=0.0, units="",
                counts=None, invalid_value=None, invalid_mask=None, first_sample=None):
    """A list of ``cls`` (:class:`ecgingest.Signal`), one per label, as
    :func:`new_signal` builds each: a record's signals in one call.

    ``digital`` is a 2-D array (a row per signal) or a sequence of 1-D arrays;
    ``counts`` the samples kept of each (a longer row is cut to a view).
    ``sample_rate``, ``scale``, ``offset`` and ``units`` are one value for every
    signal or a list, tuple or array with one per signal; ``invalid_value``,
    ``invalid_mask`` and ``first_sample`` are None (none) or one per signal.
    A record of a dozen leads built one call per lead spent more in the calls
    than in the building, with the GIL held.
    """
    cdef Py_ssize_t n = len(labels), i, count
    if len(digital) != n:
        raise ValueError(f"digital needs one row per signal ({n}), not {len(digital)}")
    cdef list rates = _each(sample_rate, n, "sample_rate")
    cdef list scales = _each(scale, n, "scale")
    cdef list offsets = _each(offset, n, "offset")
    cdef list unit_list = _each(units, n, "units")
    cdef list codes = _each(invalid_value, n, "invalid_value")
    cdef list masks = _each(invalid_mask, n, "invalid_mask")
    cdef list firsts = _each(first_sample, n, "first_sample")
    cdef list kept = _each(counts, n, "counts")
    cdef list label_list = list(labels)
    cdef list rows
    cdef bint cut = True
    if type(digital) is np.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>digital) == 2:
        rows = _row_views(digital, kept)
        cut = False
    else:
        rows = list(digital)  # iterating makes the row views faster than indexing
    cdef list out = []
    cdef cnp.ndarray row, mask
    for i in range(n):
        row = rows[i]
        if cut and kept[i] is not None:
            count = kept[i]
            if count != row.shape[0]:
                row = row[:count]
        mask = masks[i]
        obj = cls.__new__(cls)
        # object.__setattr__ (the class is frozen): the fields stay in the instance's
        # inline values, no per-signal dict for the garbage collector to count and scan
        PyObject_GenericSetAttr(obj, "label", label_list[i])
        PyObject_GenericSetAttr(obj, "sample_rate", rates[i])
        PyObject_GenericSetAttr(obj, "digital", row)
        PyObject_GenericSetAttr(obj, "scale", scales[i])
        PyObject_GenericSetAttr(obj, "offset", offsets[i])
        PyObject_GenericSetAttr(obj, "units", unit_list[i])
        PyObject_GenericSetAttr(obj, "invalid_value", codes[i])
        PyObject_GenericSetAttr(obj, "invalid_mask", mask)
        PyObject_GenericSetAttr(obj, "supplied_physical", None)
        PyObject_GenericSetAttr(obj, "derivation", None)
        if firsts[i]:
            PyObject_GenericSetAttr(obj, "first_sample", firsts[i])
        cnp.PyArray_CLEARFLAGS(row, cnp.NPY_ARRAY_WRITEABLE)
        if mask is not None:
            cnp.PyArray_CLEARFLAGS(mask, cnp.NPY_ARRAY_WRITEABLE)
        _untrack_if_acyclic(obj, (label_list[i], rates[i], row, scales[i], offsets[i],
                                  unit_list[i], codes[i], mask, firsts[i]))
        out.append(obj)
    return out


def new_annotations(type cls, onsets, texts, durations=None):
    """A list of ``cls`` (:class:`ecgingest.Annotation`), one per onset, with the
    ``texts`` (and ``durations``: None for none, else one per onset) of the same
    index, built without running ``__init__``. Each is left out of garbage collection
    where its values are (see ``_untrack_if_acyclic``). A Holter record holds a
    hundred thousand beats: built one constructor call each, they took twenty times as
    long as reading the annotation file."""
    cdef list onset_list = list(onsets), text_list = list(texts)
    cdef Py_ssize_t n = len(onset_list), i
    cdef list duration_list = [None] * n if durations is None else list(durations)
    for name, given in (("texts", text_list), ("durations", duration_list)):
        if len(given) != n:
            raise ValueError(f"{name} needs one entry per onset ({n}), not {len(given)}")
    cdef list out = [None] * n
    new = cls.__new__
    for i in range(n):
        onset, duration, text = onset_list[i], duration_list[i], text_list[i]
        obj = new(cls)
        PyObject_GenericSetAttr(obj, "onset", onset)
        PyObject_GenericSetAttr(obj, "duration", duration)
        PyObject_GenericSetAttr(obj, "text", text)
        # _untrack_if_acyclic's check, inline: no tuple per annotation
        if not (PyObject_GC_IsTracked(onset) or PyObject_GC_IsTracked(duration)
                or PyObject_GC_IsTracked(text)):
            PyObject_GC_UnTrack(<void*>obj)
        out[i] = obj
    return out


def set_fields(object instance, tuple names, tuple values, bint acyclic=False):
    """Set ``instance``'s attributes ``names`` to ``values`` as ``object.__setattr__``
    does (past a frozen dataclass's guard): kept in the instance's inline values, with
    no dict per instance for the garbage collector (``vars(instance)`` would make one).
    A call of ``object.__setattr__`` per field from Python cost three times as much.
    ``acyclic``: the instance is frozen and holds nothing but ``values`` (a signal), so
    where none of them is tracked by the garbage collector it is untracked (see
    ``_untrack_if_acyclic``)."""
    cdef Py_ssize_t i
    if len(values) != len(names):
        raise ValueError(f"set_fields needs one value per name ({len(names)}), "
                         f"not {len(values)}")
    for i in range(len(names)):
        PyObject_GenericSetAttr(instance, names[i], values[i])
    if acyclic:
        _untrack_if_acyclic(instance, values)
