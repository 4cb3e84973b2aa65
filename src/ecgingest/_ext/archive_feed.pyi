"""Type stubs for the decompressing thread's inner loop (ext/archive_feed.pyx)."""

import numpy as np
import numpy.typing as npt

def fill_chunk(read_data_block: int, filter_bytes: int, archive: int, chunk: int, size: int,
               blocks: npt.NDArray[np.int64], pending_at: int, pending: int,
               counted: int) -> tuple[int, int, int, int, int, int]: ...
