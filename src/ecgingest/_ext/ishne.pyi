"""Type stubs for the compiled ISHNE kernel (ext/ishne.pyx)."""

import numpy as np
import numpy.typing as npt

def deinterleave_i16(
    data: npt.NDArray[np.uint8] | bytes | memoryview,
    offset: int,
    frames: int,
    leads: int,
    out: np.ndarray,
) -> int: ...
