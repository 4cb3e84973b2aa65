"""GE MUSE kernel (ext/muse.pyx); use ecgingest.formats.muse instead."""

from typing import Any

import numpy as np
from typing_extensions import disjoint_base

STATUS_OK: int
STATUS_BAD_VALUE: int
STATUS_TRUNCATED: int

def decode_base64(text: bytes | bytearray | memoryview | np.ndarray
                  ) -> tuple[int, np.ndarray, int]: ...
def crc32_of(data: bytes | bytearray | memoryview | np.ndarray) -> int: ...
def derive_limb_leads(first: bytes | bytearray | memoryview | np.ndarray,
                      second: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray: ...

@disjoint_base
class Schema:
    def __init__(self, root: str, headers: tuple[tuple[str, tuple[str, ...]], ...],
                 measurements: tuple[str, ...], statements: tuple[Any, ...],
                 qrs: tuple[Any, ...], waveform: tuple[Any, ...], numeric: Any,
                 encodings: dict[str, str], number: Any) -> None: ...
    def read(self, document: bytes | bytearray | memoryview | np.ndarray,
             samples: bool = True) -> tuple[Any, ...] | None: ...
