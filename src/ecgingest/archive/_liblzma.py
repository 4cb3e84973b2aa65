"""Thin ctypes view of liblzma's raw decoder, for 7-Zip filter chains.

Python's :mod:`lzma` links the same liblzma but accepts only the filter IDs
known when the module was written; 7-Zip's ARM64 branch filter (the same
algorithm as liblzma's ``LZMA_FILTER_ARM64``, liblzma >= 5.4) is refused
with "Invalid filter ID". These prototypes reach the raw decoder directly,
so every filter of the installed liblzma is available.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from ctypes import POINTER, c_int, c_size_t, c_uint32, c_uint64, c_void_p

OK = 0
STREAM_END = 1
MEM_ERROR = 5
OPTIONS_ERROR = 8
DATA_ERROR = 9
BUF_ERROR = 10
RUN = 0

FILTER_LZMA1 = 0x4000000000000001
FILTER_LZMA2 = 0x21
FILTER_DELTA = 0x03
FILTER_ARM64 = 0x0A
VLI_UNKNOWN = 0xFFFFFFFFFFFFFFFF

ARM64_MIN_VERSION = 50040002
"""liblzma 5.4.0 stable, the first with the ARM64 filter."""


class Stream(ctypes.Structure):
    """``lzma_stream``; all-zero is ``LZMA_STREAM_INIT``."""

    _fields_ = [("next_in", c_void_p), ("avail_in", c_size_t), ("total_in", c_uint64),
                ("next_out", c_void_p), ("avail_out", c_size_t), ("total_out", c_uint64),
                ("allocator", c_void_p), ("internal", c_void_p),
                ("reserved_ptr1", c_void_p), ("reserved_ptr2", c_void_p),
                ("reserved_ptr3", c_void_p), ("reserved_ptr4", c_void_p),
                ("seek_pos", c_uint64), ("reserved_int2", c_uint64),
                ("reserved_int3", c_size_t), ("reserved_int4", c_size_t),
                ("reserved_enum1", c_int), ("reserved_enum2", c_int)]


class Filter(ctypes.Structure):
    """``lzma_filter``: an ID and options allocated by ``lzma_properties_decode``."""

    _fields_ = [("id", c_uint64), ("options", c_void_p)]


def _load():
    """liblzma and the C library's ``free``, or ``(None, None)``; loaded on first use
    (``find_library`` may start a subprocess, which import time should not pay)."""
    try:
        libc = ctypes.CDLL(None)
        libc.free.argtypes = [c_void_p]
        libc.free.restype = None
    except (OSError, TypeError, AttributeError):  # no process-wide C library handle
        return None, None
    for candidate in ("liblzma.so.5", ctypes.util.find_library("lzma"), "liblzma.dylib"):
        if not candidate:
            continue
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        lib.lzma_version_number.argtypes = []
        lib.lzma_version_number.restype = c_uint32
        lib.lzma_properties_decode.argtypes = [POINTER(Filter), c_void_p, c_void_p, c_size_t]
        lib.lzma_properties_decode.restype = c_int
        lib.lzma_raw_decoder.argtypes = [POINTER(Stream), POINTER(Filter)]
        lib.lzma_raw_decoder.restype = c_int
        lib.lzma_code.argtypes = [POINTER(Stream), c_int]
        lib.lzma_code.restype = c_int
        lib.lzma_end.argtypes = [POINTER(Stream)]
        lib.lzma_end.restype = None
        return lib, libc
    return None, None


_loaded: tuple | None = None


def _libs() -> tuple:
    global _loaded
    if _loaded is None:
        _loaded = _load()
    return _loaded


def version() -> int:
    """liblzma's version number (e.g. 50040012 for 5.4.1), 0 when it cannot be loaded."""
    lib, _ = _libs()
    return int(lib.lzma_version_number()) if lib is not None else 0


class RawDecoder:
    """A raw liblzma decoder over a chain of (filter ID, 7-Zip properties) pairs.

    The last filter must be LZMA1 or LZMA2. ``max_dict`` caps the dictionary
    the properties ask for, so a forged header cannot make liblzma allocate
    more than the output the caller accepts.
    """

    def __init__(self, chain: list[tuple[int, bytes]], max_dict: int) -> None:
        self._lib, self._libc = _libs()
        if self._lib is None:
            raise OSError("liblzma cannot be loaded")
        self._filters = (Filter * (len(chain) + 1))()
        self._stream = Stream()
        self._open = False
        try:
            for i, (fid, props) in enumerate(chain):
                self._filters[i].id = fid
                raw = ctypes.create_string_buffer(props, len(props)) if props else None
                ret = self._lib.lzma_properties_decode(ctypes.byref(self._filters[i]), None,
                                                       raw, len(props))
                if ret != OK:
                    self._filters[i].id = VLI_UNKNOWN
                    raise ValueError(f"filter {fid:#x}: properties rejected by liblzma ({ret})")
                if fid in (FILTER_LZMA1, FILTER_LZMA2) and self._filters[i].options:
                    dict_size = ctypes.cast(self._filters[i].options, POINTER(c_uint32))
                    dict_size[0] = max(4096, min(dict_size[0], max_dict))
            self._filters[len(chain)].id = VLI_UNKNOWN
            ret = self._lib.lzma_raw_decoder(ctypes.byref(self._stream), self._filters)
            if ret != OK:
                raise ValueError(f"liblzma refused the filter chain ({ret})")
            self._open = True
        except BaseException:
            self.close()
            raise

    def decode(self, data, out, out_size: int) -> tuple[int, int, int]:
        """Decode from ``data`` (a ctypes buffer, ``len`` valid bytes set by
        :meth:`feed`) into ``out``; returns (status, bytes consumed, bytes written)."""
        s = self._stream
        before_in, before_out = s.total_in, s.total_out
        s.next_out = ctypes.addressof(out)
        s.avail_out = out_size
        ret = self._lib.lzma_code(ctypes.byref(s), RUN)
        return ret, s.total_in - before_in, s.total_out - before_out

    def feed(self, buffer, count: int) -> None:
        """Offer ``count`` bytes at the start of ``buffer`` (kept alive by the caller)."""
        self._stream.next_in = ctypes.addressof(buffer)
        self._stream.avail_in = count

    @property
    def pending_input(self) -> int:
        return int(self._stream.avail_in)

    @property
    def total_in(self) -> int:
        return int(self._stream.total_in)

    def close(self) -> None:
        if self._open:
            self._lib.lzma_end(ctypes.byref(self._stream))
            self._open = False
        for f in self._filters:
            if f.options:
                self._libc.free(f.options)
                f.options = None
