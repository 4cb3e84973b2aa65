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

def clean_leads(leads: list[list[Any]], table: list[tuple[int, int, int, int, int]],
                data: np.ndarray, unit_names: dict[str, str]
                ) -> tuple[list[str], list[float], list[str], list[np.ndarray], int,
                           tuple[int, int] | None] | None: ...
def statement_lines(found: list[list[Any]], closers: str) -> list[dict[str, Any]]: ...
def keyed(rows: list[Any], keys: tuple[str, ...]) -> list[dict[str, Any]]: ...
def named_numbers(raw: dict[str, Any], pairs: tuple[tuple[str, str], ...],
                  number: Any) -> dict[str, Any]: ...
