"""Type stubs for the compiled SCP-ECG kernels (ext/scp.pyx). Internal: use
ecgingest.formats.scp."""

from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer, disjoint_base

STATUS_OK: int
STATUS_TRUNCATED: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int
STATUS_BAD_CODE: int
STATUS_UNSUPPORTED: int

_I64 = npt.NDArray[np.int64]
_I32 = npt.NDArray[np.int32]
_Bytes = Buffer | npt.NDArray[np.uint8]

PROBLEM_CODES: dict[str, int]

_PatientTags = tuple[
    list[Any], dict[int, bytes] | None, dict[int, bytes] | None, int,
    tuple[int, int, int] | None, bool,
]
"""Section 1 as ``scan_headers`` reads it: values by tag (0..35), the other
tags below 200 and from 200, the declared language byte, the cut triplet,
whether every text came out as ``str``."""

def scan_headers(data: _Bytes, crcs: bool = True) -> tuple[
    list[tuple[int, ...]],
    list[tuple[int, int, int, int, int]] | None,
    _I64 | None,
    list[int] | None,
    int | None,
    int | None,
    int | None,
    _PatientTags | None,
    int | None,
    tuple[Any, ...] | None,
    tuple[Any, ...] | None,
    tuple[Any, ...] | None,
    tuple[Any, ...] | None,
]: ...
def container_crcs(data: _Bytes, rows: _I64, record_end: int) -> int: ...
def crc16(data: _Bytes, start: int = 0, stop: int = -1) -> int: ...
def build_luts(
    codes: _I32, table_offsets: _I32
) -> tuple[int, _I32 | None, _I64 | None, _I32 | None, _I64 | None, _I64 | None,
           npt.NDArray[np.uint32] | None, _I32 | None]: ...
@disjoint_base
class HuffmanTables:
    arrays: tuple[np.ndarray, ...]
    def __init__(
        self,
        codes: _I32,
        table_offsets: _I32,
        lut: _I32,
        lut_offsets: _I64,
        lut_bits: _I32,
        fast: _I64,
        long_offsets: _I64,
        long_keys: npt.NDArray[np.uint32],
        long_rows: _I32,
    ) -> None: ...

def decode_leads(
    data: _Bytes,
    starts: _I64,
    lengths: _I64,
    nsamples: int,
    tables: HuffmanTables | None,
    differences: int,
) -> tuple[int, _I32 | None, _I64 | None, int, int]: ...
def decode_signals(
    data: _Bytes,
    huff: HuffmanTables | None,
    starts6: _I64,
    lengths6: _I64,
    n6: int,
    diff6: int,
    starts5: _I64 | None = None,
    lengths5: _I64 | None = None,
    n5: int = 0,
    diff5: int = 0,
    qrs_start: _I64 | None = None,
    qrs_fiducial: _I64 | None = None,
    qrs_end: _I64 | None = None,
    qrs_add: npt.NDArray[np.uint8] | None = None,
    beat_fiducial: int = 0,
    keep_int32: bool = False,
    crc_rows: _I64 | None = None,
    crc_end: int = 0,
) -> tuple[int, np.ndarray | None, list[int] | None, int, int, int, np.ndarray | None,
           list[int] | None, int, int, bool, int, bool]: ...
def statement_spans(
    data: _Bytes, o: int, end: int, count: int
) -> tuple[list[tuple[int, int, int]], int]: ...
def lead_measurement_rows(
    data: _Bytes, o: int, end: int, nleads: int
) -> tuple[_I64, list[tuple[int, int, int]], bool]: ...
def global_measurement_values(
    data: _Bytes, b: int, end: int
) -> tuple[int | None, int | None, int, list[tuple[int | None, ...]],
           list[tuple[int, ...]], tuple[int, ...] | None,
           tuple[int | None, int | None, int | None, int] | None, int]: ...
def bimodal_expand(
    stored: _I32,
    produced: _I64,
    zone_start: _I64,
    zone_end: _I64,
    factor: int,
    nsamples: int,
) -> tuple[int, _I32 | None]: ...
def add_reference_beat(
    residual: _I32,
    residual_mult: int,
    beat: _I32,
    beat_mult: int,
    qrs_start: _I64,
    qrs_fiducial: _I64,
    qrs_end: _I64,
    qrs_add: npt.NDArray[np.uint8],
    beat_fiducial: int,
) -> tuple[int, _I64 | None, int, int]: ...
def add_reference_beat_inplace(
    rhythm: _I32,
    beat: _I32,
    qrs_start: _I64,
    qrs_fiducial: _I64,
    qrs_end: _I64,
    qrs_add: npt.NDArray[np.uint8],
    beat_fiducial: int,
) -> tuple[int, int, int]: ...
