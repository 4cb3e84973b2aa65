"""Stubs of the SCP-ECG kernels (ext/scp.pyx). Internal: use ecgingest.formats.scp."""

import numpy as np
import numpy.typing as npt

STATUS_OK: int
STATUS_TRUNCATED: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int
STATUS_BAD_CODE: int
STATUS_UNSUPPORTED: int

def crc16(data: npt.NDArray[np.uint8], start: int = 0, stop: int = -1) -> int: ...
def build_luts(
    codes: npt.NDArray[np.int32], table_offsets: npt.NDArray[np.int32]
) -> tuple[int, ...]: ...
def decode_leads(
    data: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    nsamples: int,
    huffman: int,
    differences: int,
    codes: npt.NDArray[np.int32] | None = None,
    table_offsets: npt.NDArray[np.int32] | None = None,
    lut: npt.NDArray[np.int32] | None = None,
    lut_offsets: npt.NDArray[np.int64] | None = None,
    lut_bits: npt.NDArray[np.int32] | None = None,
    fast: npt.NDArray[np.int64] | None = None,
    long_offsets: npt.NDArray[np.int64] | None = None,
    long_keys: npt.NDArray[np.uint32] | None = None,
    long_rows: npt.NDArray[np.int32] | None = None,
) -> tuple[int, npt.NDArray[np.int32] | None, npt.NDArray[np.int64] | None, int, int]: ...
def bimodal_expand(
    stored: npt.NDArray[np.int32],
    produced: npt.NDArray[np.int64],
    zone_start: npt.NDArray[np.int64],
    zone_end: npt.NDArray[np.int64],
    factor: int,
    nsamples: int,
) -> tuple[int, npt.NDArray[np.int32] | None]: ...
def add_reference_beat(
    residual: npt.NDArray[np.int32],
    residual_mult: int,
    beat: npt.NDArray[np.int32],
    beat_mult: int,
    qrs_start: npt.NDArray[np.int64],
    qrs_fiducial: npt.NDArray[np.int64],
    qrs_end: npt.NDArray[np.int64],
    qrs_add: npt.NDArray[np.uint8],
    beat_fiducial: int,
) -> tuple[int, npt.NDArray[np.int64] | None, int, int]: ...
