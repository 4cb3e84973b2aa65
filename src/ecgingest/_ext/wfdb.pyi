"""Stubs of the compiled WFDB kernels (``ext/wfdb.pyx``); internal to ecgingest."""

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
