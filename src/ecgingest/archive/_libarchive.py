"""Thin ctypes view of libarchive that reports every status, warnings included.

libarchive-c logs ``ARCHIVE_WARN`` (bad CRC, wrong size) and carries on; an
ingestion service must not. These prototypes are private copies of the
library's functions without libarchive-c's ``errcheck`` so the caller sees
each return code and decides.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from ctypes import POINTER, c_char_p, c_int, c_int64, c_longlong, c_size_t, c_void_p, c_wchar_p

from libarchive import ffi as _ffi

OK = 0
EOF = 1
RETRY = -10
WARN = -20
FAILED = -25
FATAL = -30

AE_IFMT = 0o170000
AE_IFREG = 0o100000
AE_IFDIR = 0o040000
AE_IFLNK = 0o120000

_lib = _ffi.libarchive

READ_CALLBACK = ctypes.CFUNCTYPE(c_longlong, c_void_p, c_void_p, POINTER(c_void_p))
SEEK_CALLBACK = ctypes.CFUNCTYPE(c_longlong, c_void_p, c_void_p, c_longlong, c_int)


def _fn(name: str, argtypes: list, restype):
    func = _lib["archive_" + name]  # a fresh function object: no errcheck
    func.argtypes = argtypes
    func.restype = restype
    return func


read_new = _fn("read_new", [], c_void_p)
read_free = _fn("read_free", [c_void_p], c_int)
read_support_filter_all = _fn("read_support_filter_all", [c_void_p], c_int)
read_support_format_zip = _fn("read_support_format_zip", [c_void_p], c_int)
read_support_format_7zip = _fn("read_support_format_7zip", [c_void_p], c_int)
read_support_format_rar5 = _fn("read_support_format_rar5", [c_void_p], c_int)
read_support_format_rar = _fn("read_support_format_rar", [c_void_p], c_int)
read_support_format_tar = _fn("read_support_format_tar", [c_void_p], c_int)
read_support_format_raw = _fn("read_support_format_raw", [c_void_p], c_int)
read_set_read_callback = _fn("read_set_read_callback", [c_void_p, READ_CALLBACK], c_int)
read_set_seek_callback = _fn("read_set_seek_callback", [c_void_p, SEEK_CALLBACK], c_int)
read_set_callback_data = _fn("read_set_callback_data", [c_void_p, c_void_p], c_int)
read_open1 = _fn("read_open1", [c_void_p], c_int)
read_open_filename = _fn("read_open_filename", [c_void_p, c_char_p, c_size_t], c_int)
read_open_filenames = _fn("read_open_filenames", [c_void_p, POINTER(c_char_p), c_size_t], c_int)
read_open_memory2 = _fn("read_open_memory2", [c_void_p, c_void_p, c_size_t, c_size_t], c_int)
read_next_header = _fn("read_next_header", [c_void_p, POINTER(c_void_p)], c_int)
read_data_block = _fn("read_data_block",
                      [c_void_p, POINTER(c_void_p), POINTER(c_size_t), POINTER(c_int64)], c_int)
read_data = _fn("read_data", [c_void_p, c_void_p, c_size_t], ctypes.c_ssize_t)
error_string = _fn("error_string", [c_void_p], c_char_p)
errno = _fn("errno", [c_void_p], c_int)
set_error = _lib["archive_set_error"]  # variadic: (archive, errno, format, ...)
set_error.restype = None
filter_bytes = _fn("filter_bytes", [c_void_p, c_int], c_int64)
entry_pathname = _fn("entry_pathname", [c_void_p], c_char_p)
entry_pathname_utf8 = _fn("entry_pathname_utf8", [c_void_p], c_char_p)
entry_pathname_w = _fn("entry_pathname_w", [c_void_p], c_wchar_p)
entry_filetype = _fn("entry_filetype", [c_void_p], c_int)
entry_size = _fn("entry_size", [c_void_p], c_int64)
entry_size_is_set = _fn("entry_size_is_set", [c_void_p], c_int)
entry_hardlink = _fn("entry_hardlink", [c_void_p], c_char_p)
entry_symlink = _fn("entry_symlink", [c_void_p], c_char_p)

FORMAT_SUPPORT = {
    "zip": read_support_format_zip,
    "7z": read_support_format_7zip,
    "rar5": read_support_format_rar5,
    "rar": read_support_format_rar,
    "tar": read_support_format_tar,
}


def message(archive_p: int) -> str:
    """libarchive's last error text, decoded for an error message."""
    raw = error_string(archive_p)
    if not raw:
        return "no detail given by libarchive"
    return raw.decode("utf-8", "replace").strip()


def version() -> int:
    return int(_ffi.version_number())


class _Utf8Locale:
    """Thread-local UTF-8 ``LC_CTYPE`` around libarchive calls (glibc ``uselocale``).

    libarchive converts entry names to the C library's current locale and
    loses non-ASCII names under ``LC_ALL=C``. Switching only this thread's
    locale while libarchive runs keeps every name exact without touching the
    rest of the process. A no-op where the locale is UTF-8 already or the C
    library has no ``uselocale``. Safe to enter from several threads at once
    (a read-ahead thread and the walk): what each restores is its own.
    """

    def __init__(self) -> None:
        self._locale: int | None = None
        self._previous = threading.local()
        self._uselocale: Callable[[int | None], int | None] | None = None
        self._active = False
        try:
            import locale

            codeset = locale.nl_langinfo(locale.CODESET).upper().replace("-", "")
            if codeset == "UTF8":
                return
            libc = ctypes.CDLL(None)
            newlocale = libc.newlocale
            newlocale.argtypes = [c_int, c_char_p, c_void_p]
            newlocale.restype = c_void_p
            uselocale = libc.uselocale
            uselocale.argtypes = [c_void_p]
            uselocale.restype = c_void_p
        except (ImportError, AttributeError, OSError):
            return
        for name in (b"C.UTF-8", b"C.utf8", b"en_US.UTF-8"):
            handle = newlocale(1 << 0, name, None)  # LC_CTYPE_MASK on glibc
            if handle:
                self._locale = handle
                self._uselocale = uselocale
                self._active = True
                return

    @property
    def active(self) -> bool:
        """False where the process locale is UTF-8 already: callers skip the switch."""
        return self._active

    def __enter__(self) -> _Utf8Locale:
        if self._uselocale is not None:
            stack = self._previous.__dict__.setdefault("stack", [])
            stack.append(self._uselocale(self._locale))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._uselocale is not None:
            self._uselocale(self._previous.stack.pop())


utf8_names = _Utf8Locale()
"""Use as ``with utf8_names:`` around libarchive calls that read entry names."""
