"""Type stubs for the compiled scaling kernel and the byte work of the array pool
(ext/scale.pyx; the pool's policy is ecgingest._memory)."""

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

_STREAM_FROM_BYTES: int

def array_over(
    raw: npt.NDArray[np.uint8],
    n: int,
    dtype: npt.DTypeLike,
    offset: int,
    give_back: Callable[[npt.NDArray[np.uint8]], object],
) -> npt.NDArray[np.generic]: ...
def data_address(array: npt.NDArray[np.generic]) -> int: ...
def release_lazily(raw: npt.NDArray[np.uint8]) -> None: ...
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
    derivation: str | None = None,
    first_sample: int = 0,
) -> object: ...
def new_signals(
    cls: type,
    labels: Sequence[str],
    sample_rate: float | Sequence[float],
    digital: npt.NDArray[np.signedinteger] | Sequence[npt.NDArray[np.signedinteger]],
    scale: float | Sequence[float] = 1.0,
    offset: float | Sequence[float] = 0.0,
    units: str | Sequence[str] = "",
    counts: Sequence[int] | None = None,
    invalid_value: Sequence[int | None] | None = None,
    invalid_mask: Sequence[npt.NDArray[np.bool_] | None] | None = None,
    first_sample: Sequence[int] | None = None,
) -> list[object]: ...
def new_annotations(cls: type, onsets: Sequence[float], texts: Sequence[str],
                    durations: Sequence[float | None] | None = None) -> list[object]: ...
def set_fields(instance: object, names: tuple[str, ...], values: tuple[object, ...],
               acyclic: bool = False) -> None: ...
