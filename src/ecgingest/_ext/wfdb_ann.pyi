"""Type stubs for the compiled WFDB annotation kernel (ext/wfdb_ann.pyx)."""

import numpy as np
import numpy.typing as npt

MAX_CODE: int

def scan(data: npt.NDArray[np.uint8] | bytes | memoryview) -> tuple[int, int, int, int]: ...
def decode(
    data: npt.NDArray[np.uint8] | bytes | memoryview,
    sample: npt.NDArray[np.int64],
    code: npt.NDArray[np.uint8],
    subtype: npt.NDArray[np.int8],
    chan: npt.NDArray[np.uint8],
    num: npt.NDArray[np.int8],
    aux_start: npt.NDArray[np.int64],
    aux_len: npt.NDArray[np.int16],
) -> int: ...
