# cython: language_level=3
"""The inner loop of a compressed TAR's decompressing thread, with the GIL released.

The thread copies libarchive's decompressed blocks (``archive_read_data_block``
on a reader of the raw format) into large chunks for the walk's reader. Done in
Python, each block costs several calls into libarchive and back, and the thread
takes the GIL again after each: while the walk's thread builds records, the
decompressing thread waits for the GIL between blocks instead of decompressing.
Here one call fills a whole chunk. libarchive's functions are called through
the addresses ctypes found for them: nothing here links against libarchive.
"""

from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memcpy

ctypedef int (*read_block_fn)(void*, const void**, size_t*, int64_t*) noexcept nogil
ctypedef int64_t (*filter_bytes_fn)(void*, int) noexcept nogil


def fill_chunk(uintptr_t read_data_block, uintptr_t filter_bytes, uintptr_t archive,
               uintptr_t chunk, int64_t size, int64_t[:, ::1] blocks,
               uintptr_t pending_at, int64_t pending, int64_t counted):
    """Fill ``size`` bytes at address ``chunk`` with the reader's next decompressed bytes.

    ``pending_at``/``pending``: the part of libarchive's last block not copied yet;
    ``counted``: compressed bytes read when libarchive produced that block. Row ``k``
    of ``blocks`` gets the end (in the chunk) of the ``k``-th piece copied and the
    compressed bytes read when its block was produced; at most ``len(blocks)`` pieces
    are copied (the chunk is then handed over shorter). Stops at a status other than
    ``ARCHIVE_OK`` (0) from ``archive_read_data_block``.

    Returns ``(status, filled, pieces, pending_at, pending, counted)``.
    """
    cdef read_block_fn read_block = <read_block_fn><void*>read_data_block
    cdef filter_bytes_fn compressed = <filter_bytes_fn><void*>filter_bytes
    cdef void* a = <void*>archive
    cdef char* out = <char*>chunk
    cdef const char* at = <const char*>pending_at
    cdef const void* block_p = NULL
    cdef size_t block_size = 0
    cdef int64_t offset = 0, filled = 0, count, pieces = 0
    cdef int64_t most = blocks.shape[0]
    cdef int status = 0
    if blocks.shape[1] != 2 or size < 0 or pending < 0:
        raise ValueError("blocks must have two columns; size and pending must not be negative")
    with nogil:
        while filled < size and pieces < most:
            if pending == 0:
                status = read_block(a, &block_p, &block_size, &offset)
                if status != 0:
                    break
                at = <const char*>block_p
                pending = <int64_t>block_size
                counted = compressed(a, -1)
                continue
            count = pending if pending < size - filled else size - filled
            memcpy(out + filled, at, <size_t>count)
            filled += count
            at += count
            pending -= count
            blocks[pieces, 0] = filled
            blocks[pieces, 1] = counted
            pieces += 1
    return status, filled, pieces, <uintptr_t>at, pending, counted
