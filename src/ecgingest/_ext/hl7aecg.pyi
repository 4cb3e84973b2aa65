"""HL7 aECG kernel (ext/hl7aecg.pyx); use ecgingest.formats.hl7aecg instead."""

import numpy as np

STATUS_OK: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int

def count_integers(text: bytes | bytearray | memoryview | np.ndarray) -> int: ...
def parse_integers(text: bytes | bytearray | memoryview | np.ndarray,
                   count: int) -> tuple[int, np.ndarray, int, int, int]: ...
def count_texts(texts: list[str]) -> np.ndarray: ...
def parse_texts(texts: list[str], counts: np.ndarray
                ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]: ...
