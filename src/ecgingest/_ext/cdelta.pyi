"""Compressed Delta kernels (ext/cdelta.pyx); use ecgingest.formats.cdelta instead.

``decode_samples`` returns a status of ``ext/_status.pxd`` (0 is OK), which
``DecodeContext.check_status`` turns into a typed error.
"""

import numpy as np

def out_dtype(bits: int) -> np.dtype: ...
def decode_samples(coded: bytes | bytearray | memoryview, bits: int, coding: int,
                   out: np.ndarray) -> int: ...
def encode_samples(samples: np.ndarray, bits: int, coding: int) -> np.ndarray: ...
