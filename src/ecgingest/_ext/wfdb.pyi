"""Stubs of the compiled WFDB kernels (``ext/wfdb.pyx``); internal to ecgingest."""

from collections.abc import Container

import numpy as np

def available_samples(fmt: int, nbytes: int) -> int:
    """Flat samples whose bits all lie within ``nbytes`` (-1: not a packed format)."""

def vector_level(level: int = -1) -> int:
    """Caps the vector instructions of the format-212 decode; returns the level in force."""

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

def read_group(
    fd: int,
    offset: int,
    nbytes: int,
    chunk_bytes: int,
    fmt: int,
    nflat: int,
    spf: list[int],
    shifts: list[int],
    outs: list[np.ndarray],
    init_values: list[int],
) -> tuple[int, list[int], list[int], int]:
    """As ``decode_group``, the bytes read from an open file a chunk at a time:
    (status, counts, checksums, errno)."""

_SignalFields = tuple[
    str, int, int, int, int, float, int, str, int, int, int, int | None, int, str, bool
]
_SignalLineError = tuple[int, str, str, str | int | None]

def signal_lines(
    lines: list[str],
    record: str,
    supported: Container[int],
    default_res: dict[int, int],
) -> tuple[list[_SignalFields], None] | tuple[None, _SignalLineError]:
    """Every signal line's fields (``WfdbSignalSpec`` order), or the first error."""
