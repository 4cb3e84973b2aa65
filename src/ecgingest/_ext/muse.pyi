"""GE MUSE kernel (ext/muse.pyx); use ecgingest.formats.muse instead."""

import numpy as np

STATUS_OK: int
STATUS_BAD_VALUE: int
STATUS_TRUNCATED: int

def decode_base64(text: bytes | bytearray | memoryview | np.ndarray
                  ) -> tuple[int, np.ndarray, int]: ...
def lead_blocks(document: bytes | bytearray | memoryview | np.ndarray,
                plain: tuple[bytes, ...] = ...
                ) -> tuple[np.ndarray, list[dict[str, str] | list[tuple[str, str]]],
                           np.ndarray] | None: ...
def decode_spans(document: bytes | bytearray | memoryview | np.ndarray, spans: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]: ...
