"""Type stubs for the compiled MFER item scanner (ext/mfer.pyx)."""

import numpy as np
import numpy.typing as npt

COLUMNS: int

def scan_items(
    data: npt.NDArray[np.uint8] | bytes | memoryview,
    start: int,
    end: int,
    out: npt.NDArray[np.int64],
) -> tuple[int, int, int, bool]: ...
