"""GE MUSE kernel (ext/muse.pyx); use ecgingest.formats.muse instead."""

import numpy as np

STATUS_OK: int
STATUS_BAD_VALUE: int
STATUS_TRUNCATED: int

def decode_base64(text: bytes | bytearray | memoryview | np.ndarray
                  ) -> tuple[int, np.ndarray, int]: ...
