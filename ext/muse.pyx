# cython: language_level=3
"""GE MUSE kernel: a lead's base64 ``WaveFormData`` -> its bytes, without the GIL.

Decodes as ``binascii.a2b_base64`` does (non-strict: bytes outside the
alphabet skipped, padding ends the data; see ``_base64.pxd``) at several
times its speed, and counts the skipped characters that are not whitespace,
which the caller reports. Statuses come from ``_status.pxd``.
"""

from libc.stdint cimport uint8_t

import numpy as np

cimport numpy as cnp

from _base64 cimport BASE64_OK, BASE64_ONE_EXTRA, base64_capacity, base64_decode
from _status cimport KernelStatus

cnp.import_array()

cdef Py_ssize_t NOGIL_FROM = 1 << 18  # characters: below, the decode is shorter than a GIL hand-over

STATUS_OK = KernelStatus.OK
STATUS_BAD_VALUE = KernelStatus.BAD_VALUE
STATUS_TRUNCATED = KernelStatus.TRUNCATED


def decode_base64(const uint8_t[::1] text):
    """``(status, data, skipped)``: the decoded bytes as a read-only uint8 array,
    and the count of characters outside the base64 alphabet that are not
    whitespace. ``status`` is TRUNCATED when the data ends inside a quad
    (``data`` then holds the bytes decoded so far) and BAD_VALUE when one
    character is left over (no encoder writes that)."""
    cdef Py_ssize_t n = text.shape[0], produced = 0, skipped = 0
    cdef cnp.ndarray out = np.empty(base64_capacity(n), dtype=np.uint8)
    cdef uint8_t* dst = <uint8_t*>cnp.PyArray_DATA(out)
    cdef int result = BASE64_OK
    if n >= NOGIL_FROM:
        with nogil:
            result = base64_decode(&text[0], n, dst, &produced, &skipped)
    elif n:  # a lead's few kB take microseconds: handing the GIL over would cost more
        result = base64_decode(&text[0], n, dst, &produced, &skipped)
    status = (KernelStatus.OK if result == BASE64_OK else KernelStatus.BAD_VALUE
              if result == BASE64_ONE_EXTRA else KernelStatus.TRUNCATED)
    data = out[:produced]
    data.flags.writeable = False
    return status, data, skipped
