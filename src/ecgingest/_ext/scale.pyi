"""Type stubs for the compiled scaling kernel and array pool (ext/scale.pyx)."""

import numpy as np
import numpy.typing as npt

_STREAM_FROM_BYTES: int

def set_array_pool_limit(max_bytes: int) -> int: ...
def array_pool_bytes() -> int: ...
def aligned_empty(
    n: int, dtype: npt.DTypeLike, pooled: bool = False
) -> npt.NDArray[np.generic]: ...
def to_physical(
    digital: npt.NDArray[np.signedinteger],
    scale: float,
    offset: float,
    invalid_value: int | None = None,
    invalid_mask: npt.NDArray[np.uint8] | None = None,
    stream: bool = True,
) -> npt.NDArray[np.float64]: ...
def new_signal(
    cls: type,
    label: str,
    sample_rate: float,
    digital: npt.NDArray[np.signedinteger],
    scale: float = 1.0,
    offset: float = 0.0,
    units: str = "",
    invalid_value: int | None = None,
    invalid_mask: npt.NDArray[np.bool_] | None = None,
    supplied_physical: npt.NDArray[np.float64] | None = None,
) -> object: ...
