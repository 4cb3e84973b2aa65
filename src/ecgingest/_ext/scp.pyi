"""Stubs of the SCP-ECG kernels (ext/scp.pyx). Internal: use ecgingest.formats.scp."""

import numpy as np
import numpy.typing as npt

STATUS_OK: int
STATUS_TRUNCATED: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int
STATUS_BAD_CODE: int
STATUS_UNSUPPORTED: int

def scan_container(
    data: bytes | npt.NDArray[np.uint8], record_end: int, crcs: bool = True
) -> tuple[int, npt.NDArray[np.int64]]: ...
def container_crcs(
    data: bytes | npt.NDArray[np.uint8], rows: npt.NDArray[np.int64], record_end: int
) -> int: ...
def crc16(data: npt.NDArray[np.uint8], start: int = 0, stop: int = -1) -> int: ...
def tag_walk(
    data: bytes | npt.NDArray[np.uint8], raw: bytes, o: int, end: int
) -> tuple[list[tuple[int, bytes, int]], list[int], int]: ...
def statement_walk(
    data: bytes | npt.NDArray[np.uint8], raw: bytes, o: int, end: int, count: int
) -> tuple[list[tuple[int, bytes]], int]: ...
def data_header(
    data: bytes | npt.NDArray[np.uint8], body: int, nleads: int
) -> tuple[int, int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int64], int, int]: ...
def lead_table(
    data: bytes | npt.NDArray[np.uint8], o: int, nleads: int, names: tuple[str, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[str, ...], tuple[int, ...], int]: ...
def qrs_zones(
    data: bytes | npt.NDArray[np.uint8], o: int, nqrs: int, protected: bool
) -> tuple[npt.NDArray[np.int64], ...]: ...
def global_measurements(
    data: bytes | npt.NDArray[np.uint8], raw: bytes, b: int, end: int
) -> tuple[dict[str, object], bool]: ...
def lead_measurements(
    data: bytes | npt.NDArray[np.uint8],
    raw: bytes,
    o: int,
    end: int,
    nleads: int,
    keys: tuple[str, ...],
    names: tuple[str, ...],
) -> tuple[list[dict[str, object]], bool]: ...
def decode_signals(
    data: bytes | npt.NDArray[np.uint8],
    huff: tuple[npt.NDArray[np.generic], ...] | None,
    starts6: npt.NDArray[np.int64],
    lengths6: npt.NDArray[np.int64],
    n6: int,
    diff6: int,
    starts5: npt.NDArray[np.int64] | None = None,
    lengths5: npt.NDArray[np.int64] | None = None,
    n5: int = 0,
    diff5: int = 0,
    qrs_start: npt.NDArray[np.int64] | None = None,
    qrs_fiducial: npt.NDArray[np.int64] | None = None,
    qrs_end: npt.NDArray[np.int64] | None = None,
    qrs_add: npt.NDArray[np.uint8] | None = None,
    beat_fiducial: int = 0,
    keep_int32: bool = False,
    crc_rows: npt.NDArray[np.int64] | None = None,
    crc_end: int = 0,
) -> tuple[object, ...]: ...
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
def add_reference_beat_inplace(
    rhythm: npt.NDArray[np.int32],
    beat: npt.NDArray[np.int32],
    qrs_start: npt.NDArray[np.int64],
    qrs_fiducial: npt.NDArray[np.int64],
    qrs_end: npt.NDArray[np.int64],
    qrs_add: npt.NDArray[np.uint8],
    beat_fiducial: int,
) -> tuple[int, int, int]: ...
