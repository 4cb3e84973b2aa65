"""Philips XLI kernel (ext/xli.pyx); use ecgingest.formats.philips instead."""

import numpy as np

STATUS_OK: int
STATUS_TRUNCATED: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int
STATUS_BAD_CODE: int
OUTPUT_FACTOR: int

def decode(data: bytes | bytearray | memoryview | np.ndarray, nleads: int,
           nsamples: int) -> tuple[int, np.ndarray, np.ndarray, int, int]: ...
def decode_waveforms(text: str, nleads: int, nsamples: int, limb: list[int] | None = ...
                     ) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                np.ndarray, int, int]: ...
def decode_base64_rows(texts: list[str]) -> tuple[np.ndarray, np.ndarray]: ...
