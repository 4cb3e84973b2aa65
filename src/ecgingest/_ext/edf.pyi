"""Type stubs for the compiled EDF/BDF kernels (ext/edf.pyx).

Kernels that read data return a status of ``ext/_status.pxd`` (0 is OK);
``DecodeContext.check_status`` turns it into a typed error.
"""

import numpy as np
import numpy.typing as npt

SIGNAL_FIELD_WIDTHS: tuple[int, ...]

def header_fields(
    data: npt.NDArray[np.uint8], ns: int, printable_from: int
) -> tuple[
    list[str],
    list[list[str]],
    list[list[float] | list[int]],
    int,
    int,
    tuple[int, int, int] | None,
]: ...
def deinterleave(
    data: npt.NDArray[np.uint8],
    header_bytes: int,
    n_records: int,
    samples_per_record: npt.NDArray[np.int64],
    slot_offsets: npt.NDArray[np.int64],
    record_size: int,
    bytes_per_sample: int,
    outputs: list[np.ndarray],
    stream: bool = True,
) -> int: ...
def deinterleave_part(
    data: npt.NDArray[np.uint8] | bytes | memoryview,
    first_record: int,
    n_records: int,
    samples_per_record: npt.NDArray[np.int64],
    slot_offsets: npt.NDArray[np.int64],
    record_size: int,
    bytes_per_sample: int,
    first_samples: npt.NDArray[np.int64],
    outputs: list[np.ndarray],
) -> int: ...
SCATTERED_READS: bool

def scatter_read(
    fd: int,
    header_bytes: int,
    record_size: int,
    r0: int,
    r1: int,
    samples_per_record: npt.NDArray[np.int64],
    slot_offsets: npt.NDArray[np.int64],
    first_samples: npt.NDArray[np.int64],
    outputs: list[np.ndarray],
    max_gap: int,
) -> tuple[int, int]: ...
def scan_annotation_slots(
    data: npt.NDArray[np.uint8],
    header_bytes: int,
    n_records: int,
    record_size: int,
    slot_offset: int,
    slot_size: int,
    timekeeping: bool,
    onsets: npt.NDArray[np.float64],
    flags: npt.NDArray[np.uint8],
) -> int: ...
def valid_number(raw: bytes, integer: bool) -> bool: ...
