# cython: language_level=3
"""The inner loop of a compressed TAR's decompressing thread, with the GIL released.

The thread copies libarchive's decompressed blocks (``archive_read_data_block``
on a reader of the raw format) into large chunks for the walk's reader. Done in
Python, each block costs several calls into libarchive and back, and the thread
takes the GIL again after each: while the walk's thread builds records, the
decompressing thread waits for the GIL between blocks instead of decompressing.
Here one call fills a whole chunk. libarchive's functions are called through
the addresses ctypes found for them: nothing here links against libarchive.

The walk's reader takes the chunks through :func:`read_callback`, a native read
callback that hands libarchive's TAR reader the next block of the current chunk
(:class:`BlockCursor`) without entering Python; only at the end of a chunk does it
take the GIL and ask its owner for the next one.
"""

cimport cython
cimport numpy as cnp
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memcpy

cnp.import_array()

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


ctypedef struct cursor_t:
    const char* base  # the current chunk's first byte
    const int64_t* rows  # its blocks: (end in the chunk, compressed bytes read), row by row
    Py_ssize_t next  # the next block to hand over
    Py_ssize_t count  # blocks in the chunk
    int64_t at  # where the next block starts in the chunk
    int64_t compressed  # compressed bytes read when the block last handed over was produced
    PyObject* owner  # asked for the next chunk (borrowed: it owns the cursor)


@cython.auto_pickle(False)
cdef class BlockCursor:
    """The chunk the walk's reader reads now, handed to libarchive block by block.

    ``owner._next_chunk(archive)`` is called (with the GIL) when the chunk's
    blocks are all handed over: it returns 1 after :meth:`install` put the next
    chunk here, 0 at the end of the stream, -1 on a failure it set on the reader.
    The cursor keeps the chunk and its rows alive while libarchive may read them.
    A Python error raised asking for a chunk is stored as ``owner.error`` and
    libarchive sees a failed read: whoever called libarchive raises it.
    """

    cdef cursor_t c
    cdef object chunk
    cdef object rows

    def __cinit__(self, owner):
        self.c.owner = <PyObject*>owner

    def install(self, chunk, uintptr_t address, int64_t[:, ::1] rows):
        """Make ``chunk`` (its bytes at ``address``) the current one; row ``k`` of ``rows``
        is its ``k``-th block: (end in the chunk, compressed bytes read when produced)."""
        if rows.shape[1] != 2:
            raise ValueError("rows must have two columns")
        self.chunk = chunk
        self.rows = rows
        self.c.base = <const char*>address
        self.c.rows = &rows[0, 0] if rows.shape[0] else NULL
        self.c.count = rows.shape[0]
        self.c.next = 0
        self.c.at = 0

    def release(self):
        """Drop the current chunk (libarchive is done with it); returns it."""
        chunk, self.chunk, self.rows = self.chunk, None, None
        self.c.base = NULL
        self.c.rows = NULL
        self.c.count = self.c.next = 0
        self.c.at = 0
        return chunk

    @property
    def compressed(self):
        """Compressed bytes read when the block libarchive took last was produced."""
        return self.c.compressed

    @property
    def client_data(self):
        """The address to register as the reader's callback data (valid while the
        cursor lives)."""
        return <uintptr_t>&self.c


cdef long long _next_chunk(cursor_t* c, void* archive) noexcept with gil:
    owner = <object>c.owner
    try:
        return owner._next_chunk(<uintptr_t>archive)
    except BaseException as exc:
        owner.error = exc
        return -1


cdef long long _read(void* archive, void* client, const void** out) noexcept nogil:
    cdef cursor_t* c = <cursor_t*>client
    cdef long long status, count
    while c.next >= c.count:
        status = _next_chunk(c, archive)
        if status <= 0:
            return status
    count = c.rows[2 * c.next] - c.at
    c.compressed = c.rows[2 * c.next + 1]
    out[0] = c.base + c.at
    c.at = c.rows[2 * c.next]
    c.next += 1
    return count


def read_callback():
    """Address of the native read callback (libarchive's ``archive_read_callback``);
    its callback data must be a :class:`BlockCursor`'s ``client_data``."""
    return <uintptr_t>&_read


ctypedef int (*next_header_fn)(void*, void**) noexcept nogil
ctypedef const char* (*entry_text_fn)(void*) noexcept nogil
ctypedef int (*entry_int_fn)(void*) noexcept nogil
ctypedef int64_t (*entry_size_fn)(void*) noexcept nogil


def next_header(uintptr_t read_next_header, uintptr_t pathname_utf8, uintptr_t filetype,
                uintptr_t hardlink, uintptr_t size, uintptr_t size_is_set,
                uintptr_t archive, uintptr_t entry_out):
    """``archive_read_next_header`` and what the walk asks of the entry, in one call.

    The functions are libarchive's (their addresses); ``entry_out`` is where the
    entry's pointer is stored. Returns ``(status, UTF-8 name or None, file type
    bits, has a hard link target, declared size or None)``, the rest ``None``, 0,
    False, None unless the status is ``ARCHIVE_OK`` (0) or ``ARCHIVE_WARN`` (-20).
    The GIL is released while libarchive reads.
    """
    cdef next_header_fn next_fn = <next_header_fn><void*>read_next_header
    cdef entry_text_fn name_fn = <entry_text_fn><void*>pathname_utf8
    cdef entry_int_fn type_fn = <entry_int_fn><void*>filetype
    cdef entry_text_fn link_fn = <entry_text_fn><void*>hardlink
    cdef entry_size_fn size_fn = <entry_size_fn><void*>size
    cdef entry_int_fn size_set_fn = <entry_int_fn><void*>size_is_set
    cdef void** out = <void**>entry_out
    cdef void* entry
    cdef const char* name
    cdef int status, ftype = 0, linked = 0, has_size = 0
    cdef int64_t declared = 0
    with nogil:
        status = next_fn(<void*>archive, out)
        entry = out[0]
        if status == 0 or status == -20:
            name = name_fn(entry)
            ftype = type_fn(entry)
            linked = link_fn(entry) != NULL
            has_size = size_set_fn(entry)
            if has_size:
                declared = size_fn(entry)
    if status != 0 and status != -20:
        return status, None, 0, False, None
    return (status, <bytes>name if name != NULL else None, ftype, linked != 0,
            declared if has_size else None)


def address_of(cnp.ndarray array):
    """Where ``array``'s first byte lies (``__array_interface__`` builds a dict for it)."""
    return <uintptr_t>cnp.PyArray_DATA(array)


ctypedef Py_ssize_t (*read_data_fn)(void*, void*, size_t) noexcept nogil


def read_fully(uintptr_t read_data, uintptr_t archive, uintptr_t out, int64_t want):
    """``archive_read_data`` into ``want`` bytes at ``out`` until they are full, the
    entry ends or libarchive fails, with the GIL released.

    Returns ``(got, status)``: bytes read, and 1 when ``want`` bytes were read, 0 when
    the entry ended before, or libarchive's (negative) status of the read that failed
    after ``got`` bytes (that read's own bytes are lost, as libarchive drops them).
    """
    cdef read_data_fn read_fn = <read_data_fn><void*>read_data
    cdef char* at = <char*>out
    cdef int64_t got = 0
    cdef Py_ssize_t count
    cdef int status = 1
    if want < 0:
        raise ValueError("want must not be negative")
    with nogil:
        while got < want:
            count = read_fn(<void*>archive, at + got, <size_t>(want - got))
            if count <= 0:
                status = <int>count
                break
            got += count
    return got, status
