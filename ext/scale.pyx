# cython: language_level=3
"""One-pass conversion of stored integers to physical values.

``digital * scale + offset`` in float64, NaN where the stored code is the
format's invalid marker or a mask says the sample is missing: one read of
the digital array and one write of the output, with the GIL released.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

cnp.import_array()

ctypedef fused stored_t:
    int8_t
    int16_t
    int32_t
    int64_t


def to_physical(const stored_t[::1] digital, double scale, double offset,
                invalid_value=None, const uint8_t[::1] invalid_mask=None):
    """float64 array of ``digital * scale + offset`` with NaN for invalid samples."""
    cdef Py_ssize_t n = digital.shape[0]
    cdef Py_ssize_t i
    cdef cnp.ndarray out_arr = np.empty(n, dtype=np.float64)
    cdef double[::1] out = out_arr
    cdef bint has_code = invalid_value is not None
    cdef int64_t code = 0
    cdef bint has_mask = invalid_mask is not None
    if has_code:
        code = <int64_t>invalid_value
    if has_mask and invalid_mask.shape[0] != n:
        raise ValueError("invalid_mask must have one entry per sample")
    with nogil:
        if not has_code and not has_mask:
            for i in range(n):
                out[i] = digital[i] * scale + offset
        else:
            for i in range(n):
                if (has_code and digital[i] == code) or (has_mask and invalid_mask[i]):
                    out[i] = NAN
                else:
                    out[i] = digital[i] * scale + offset
    return out_arr
