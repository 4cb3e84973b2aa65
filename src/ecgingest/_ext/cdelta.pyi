"""Compressed Delta kernels (ext/cdelta.pyx); use ecgingest.formats.cdelta instead.

``decode_samples`` returns a status of ``ext/_status.pxd`` (0 is OK), which
``DecodeContext.check_status`` turns into a typed error. ``ZstdSamples.decode``
returns one of the outcomes below with a value (a byte count or libzstd's
error name).
"""

from collections.abc import Iterable

import numpy as np
from typing_extensions import disjoint_base

ZSTD_FUNCTIONS: tuple[str, ...]
DONE: int
SHORT: int
LONG: int
DAMAGED: int
TRAILING: int
UNFINISHED: int
NO_MEMORY: int

def out_dtype(bits: int) -> np.dtype: ...
def decode_samples(coded: bytes | bytearray | memoryview, bits: int, coding: int,
                   out: np.ndarray) -> int: ...
def encode_samples(samples: np.ndarray, bits: int, coding: int) -> np.ndarray: ...

@disjoint_base
class ZstdSamples:
    def __init__(self, addresses: Iterable[int]) -> None: ...
    def decode(self, block: bytes | bytearray | memoryview, content_size: int, bits: int,
               coding: int, out: np.ndarray) -> tuple[int, int | str]: ...
