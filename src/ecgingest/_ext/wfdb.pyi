"""Stubs of the compiled WFDB kernels (``ext/wfdb.pyx``); internal to ecgingest."""

from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

def available_samples(fmt: int, nbytes: int) -> int:
    """Flat samples whose bits all lie within ``nbytes`` (-1: not a packed format)."""

def decode_group(
    data: bytes | memoryview,
    fmt: int,
    nflat: int,
    spf: list[int],
    shifts: list[int],
    outs: list[np.ndarray],
    init_values: list[int],
) -> tuple[int, list[int], list[int]]:
    """Decode one signal-file group into preallocated arrays: (status, counts, checksums)."""

def plain_signal_lines(
    lines: list[str],
    record: str,
    spec_type: type[tuple[Any, ...]],
    packed: AbstractSet[int],
    default_res: dict[int, int],
) -> list[Any] | None:
    """Every signal line as a ``spec_type`` tuple, or None if any line is not complete and plain."""
