"""Reading archives through libarchive, every status (warnings included) checked."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as _np

from ..errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..sources import Entry, Failed, Skipped
from . import _libarchive as _la
from .blobs import BLOCK, Blob, Callbacks
from .kinds import KIND_NAMES
from .sevenzip import walk_7z_fallback
from .zip import ZipFallback

if TYPE_CHECKING:
    from .entrybytes import EntryBytes
    from .walker import Walker

__all__ = ["walk_libarchive", "LibarchiveBytes"]


def _decode_name(entry_p: ctypes.c_void_p, index: int) -> str:
    """The entry name as text, independent of the process locale (UTF-8 first)."""
    raw_utf8 = _la.entry_pathname_utf8(entry_p)
    if raw_utf8 is not None:
        return raw_utf8.decode("utf-8", "replace")
    try:
        name = _la.entry_pathname_w(entry_p)
    except (ValueError, UnicodeError):
        name = None
    if name is None:
        raw = _la.entry_pathname(entry_p)
        if raw is None:
            return f"<unnamed entry {index}>"
        name = raw.decode("utf-8", "replace")
    return name


def walk_libarchive(kind: str, blob: Blob, walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    a = _la.read_new()
    if not a:
        raise ArchiveError("libarchive could not allocate a reader", path=walker.label)
    try:
        yield from _walk_open_archive(a, kind, blob, walker)
    finally:
        _la.read_free(a)


def _open(a: int, kind: str, blob: Blob, label: str) -> Callbacks | None:
    """Open reader ``a`` on the blob (the callbacks that feed it, if any)."""
    fmt = "rar" if kind == "rar4" else "tar" if kind.startswith("tar") else kind
    callbacks = None
    with _la.utf8_names:
        _la.read_support_filter_all(a)
        _la.FORMAT_SUPPORT[fmt](a)
        if blob.volumes is not None:
            names = (ctypes.c_char_p * (len(blob.volumes) + 1))(
                *[os.fsencode(v) for v in blob.volumes], None)
            status = _la.read_open_filenames(a, names, BLOCK)
        elif blob.path is not None:
            status = _la.read_open_filename(a, os.fsencode(blob.path), BLOCK)
        else:
            callbacks = Callbacks(blob)
            _la.read_set_callback_data(a, None)  # allocates libarchive's client data set
            _la.read_set_read_callback(a, callbacks.read_cb)
            if callbacks.seekable:
                _la.read_set_seek_callback(a, callbacks.seek_cb)
            status = _la.read_open1(a)
    if status != _la.OK:
        _reraise_callback(callbacks)
        text = _la.message(a)
        if kind.startswith("tar+") and "Unrecognized archive format" in text:
            raise ArchiveError(
                f"the {kind[4:]} data holds no TAR archive; a single compressed file is not "
                f"read: put it in a ZIP or TAR archive, or upload it uncompressed",
                path=label)
        raise ArchiveError(f"cannot open the {KIND_NAMES[kind]} archive: {text}", path=label)
    return callbacks


def _walk_open_archive(a: int, kind: str, blob: Blob,
                       walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    fmt = "tar" if kind.startswith("tar") else kind
    what = KIND_NAMES[kind]
    callbacks = _open(a, kind, blob, walker.label)
    fallback = ZipFallback(blob) if fmt == "zip" and blob.random_access else None
    entry_p = ctypes.c_void_p()
    index = 0
    entry_ref = ctypes.byref(entry_p)
    switch_locale = _la.utf8_names.active
    while True:
        if switch_locale:
            with _la.utf8_names:
                status = _la.read_next_header(a, entry_ref)
                raw = _decode_name(entry_p, index + 1) if status in (_la.OK, _la.WARN) else ""
        else:
            status = _la.read_next_header(a, entry_ref)
            raw = _decode_name(entry_p, index + 1) if status in (_la.OK, _la.WARN) else ""
        _reraise_callback(callbacks)
        if status == _la.EOF:
            return
        index += 1
        if status not in (_la.OK, _la.WARN):
            where = f"after {index - 1} entries" if index > 1 else "at its first entry"
            raise ArchiveError(
                f"the {what} archive is damaged or truncated {where}: {_la.message(a)}",
                path=walker.label)
        ftype = _la.entry_filetype(entry_p) & _la.AE_IFMT
        link = None
        if _la.entry_hardlink(entry_p) is not None:
            link = "hard link"
        elif ftype == _la.AE_IFLNK:
            link = "symbolic link"
        decided = walker.classify(raw, is_dir=ftype == _la.AE_IFDIR, link=link,
                                  other=link is None and ftype not in (_la.AE_IFREG, 0,
                                                                       _la.AE_IFDIR))
        if decided is None or not isinstance(decided, str):
            if decided is not None:
                yield decided
            continue
        path = decided
        if status == _la.WARN and not _locale_only_warning(_la.message(a)):
            yield Failed(path, ArchiveError(
                f"entry header is damaged: {_la.message(a)}", path=path, format=fmt))
            continue
        declared = (_la.entry_size(entry_p) if _la.entry_size_is_set(entry_p) else None)
        data = LibarchiveBytes(a, path, declared, walker, callbacks, fmt, switch_locale)
        if fallback is not None:
            data.fallback = lambda raw=raw, path=path: fallback.open(raw, path, walker)
        if fmt == "7z" and blob.random_access and walker.target is None:
            failed = data.fill(1)
            if (failed is not None and failed.fatal
                    and isinstance(failed.error, UnsupportedFeatureError)):
                # a 7-Zip coder libarchive lacks (ARM64): liblzma reads on from here
                walker.sevenzip_from = walker.count - 1
                yield from walk_7z_fallback(blob, walker, index - 1, path, failed)
                return
        yield from walker.take(path, data)
        if data.failure is not None and data.failure.fatal:
            return  # libarchive cannot go on after ARCHIVE_FATAL


def _locale_only_warning(text: str) -> bool:
    """libarchive warns when a name cannot be shown in the process locale (LC_ALL=C);
    the UTF-8 name is still exact, so that warning does not fail the entry."""
    return "converted" in text and "locale" in text


def _reraise_callback(callbacks: Callbacks | None) -> None:
    if callbacks is not None and callbacks.error is not None:
        error, callbacks.error = callbacks.error, None
        if isinstance(error, (OSError, EcgIngestError)) or not isinstance(error, Exception):
            raise error  # real I/O errors, typed errors, KeyboardInterrupt stay what they are
        raise ArchiveError(f"reading the upload failed: {error}") from error


def _status_error(a: int, status: int, path: str, fmt: str) -> EcgIngestError:
    text = _la.message(a)
    if status == _la.WARN and ("CRC" in text or "crc" in text):
        return ChecksumError(f"stored CRC does not match the entry's data ({text})",
                             path=path, format=fmt)
    if status == _la.WARN:
        return CorruptDataError(f"entry data is damaged ({text})", path=path, format=fmt)
    if "nsupported" in text or "codec ID" in text:
        return UnsupportedFeatureError(f"cannot decompress this entry: {text}",
                                       path=path, format=fmt)
    return CorruptDataError(f"entry data is damaged or truncated ({text})", path=path, format=fmt)


_FIRST_ALLOCATION = 1 << 20
"""Largest buffer allocated before any byte arrived: declared sizes never size allocations."""


class LibarchiveBytes:
    """The current entry's bytes from libarchive, produced on request; limits per block.

    Reads straight into one buffer that starts at most 1 MiB (or the bytes
    asked for) and doubles only as real data fills it, so memory is at most
    twice what actually arrived. The buffer is a NumPy array, not zero-filled
    first (libarchive writes every byte that is kept, and the unused tail is
    cleared before the bytes are handed out). A small entry of declared size,
    which never grows (a byte past the declared size fails it), takes its
    buffer from the walk's arena. ``fallback`` opens the entry with a decoder
    of ours when libarchive cannot decompress it (ZIP Deflate64, LZMA).
    """

    def __init__(self, a: int, path: str, declared: int | None, walker: Walker,
                 callbacks: Callbacks | None, fmt: str, switch_locale: bool) -> None:
        self.a = a
        self.path = path
        self.declared = declared
        self.walker = walker
        self.callbacks = callbacks
        self.fmt = fmt
        self.switch_locale = switch_locale
        self.cap = walker.limits.max_entry_size + 1
        self.buf: _np.ndarray = _np.empty(0, _np.uint8)
        self.produced = 0
        self.start_raw = _la.filter_bytes(a, -1)
        self.done = False
        self.failure: Failed | None = None
        self.fallback: Callable[[], EntryBytes | Failed] | None = None
        self.delegate: EntryBytes | None = None

    @property
    def complete(self) -> bool:
        return self.delegate.complete if self.delegate is not None else self.done

    def held(self) -> bytes | memoryview:
        if self.delegate is not None:
            return self.delegate.held()
        return memoryview(self.buf[:self.produced])  # type: ignore[arg-type]

    def skip_rest(self) -> Failed | None:
        return None  # nothing to decode through: the next entry is reached directly

    def fill(self, stop: int | None) -> Failed | None:
        if self.delegate is not None:
            return self.delegate.fill(stop)
        if self.failure is not None or self.done:
            return self.failure
        if self.switch_locale:
            with _la.utf8_names:
                failed = self._fill(stop)
        else:
            failed = self._fill(stop)
        if (failed is not None and self.fallback is not None and self.produced == 0
                and ZipFallback.applies(failed.error.message)):
            opened = self.fallback()
            if isinstance(opened, Failed):
                failed = opened
            else:
                self.delegate = opened
                return opened.fill(stop)
        self.failure = failed
        return failed

    def _room(self, stop: int | None) -> None:
        """Make the buffer hold at least one more byte (and up to ``stop``)."""
        size = len(self.buf)
        declared = self.declared
        if size == 0:
            hint = declared + 1 if declared is not None else 64 * 1024
            first = max(1, min(hint, _FIRST_ALLOCATION, self.cap))
            if stop is not None and stop < first:
                first = stop  # a look at the first bytes: the rest may never be read
            elif declared is not None and first == declared + 1:
                self.buf = self.walker.arena.empty(first)
                return
            self.buf = _np.empty(first, _np.uint8)
            return
        if self.produced < size:
            return
        if declared is not None and size < declared + 1 <= _FIRST_ALLOCATION:
            grown = self.walker.arena.empty(declared + 1)  # the prefix was read: now all
        else:
            hint = declared + 1 if declared is not None else 64 * 1024
            grown = _np.empty(max(size + (min(size, self.cap - size) or 1),
                                  min(hint, _FIRST_ALLOCATION, self.cap)), _np.uint8)
        grown[:self.produced] = self.buf[:self.produced]
        self.buf = grown

    def _fill(self, stop: int | None) -> Failed | None:
        a, path, declared, fmt = self.a, self.path, self.declared, self.fmt
        while stop is None or self.produced < stop:
            self._room(stop)
            want = len(self.buf) - self.produced
            if stop is not None:
                want = min(want, stop - self.produced)
            count = _la.read_data(a, self.buf.ctypes.data + self.produced, want)
            _reraise_callback(self.callbacks)
            if count == 0:
                break
            if count < 0:
                return Failed(path, _status_error(a, count, path, fmt), fatal=count == _la.FATAL)
            self.produced += count
            self.walker.grew(path, self.produced, _la.filter_bytes(a, -1) - self.start_raw,
                             count)
            if declared is not None and self.produced > declared:
                return Failed(path, CorruptDataError(
                    f"entry holds more than the {declared} bytes its header declares",
                    path=path, format=fmt))
        else:
            return None  # ``stop`` bytes are held; the entry goes on
        if declared is not None and self.produced != declared:
            return Failed(path, TruncatedError(
                f"entry ends after {self.produced} of the {declared} bytes its header declares",
                path=path, format=fmt))
        buf = self.buf
        buf[self.produced:] = 0  # nothing stale stays reachable through the array's base
        buf.flags.writeable = False
        self.done = True
        return None


def prefixes(kind: str, blob: Blob, label: str, count: int
             ) -> Iterator[tuple[str, bytes | None]]:
    """``(name, first count bytes)`` of each entry libarchive lists (None: unreadable).

    Serves the RAR 4 reader, whose decoder (``rars``) produces whole entries
    only: libarchive's first bytes let content detection decide whether an
    entry is worth decompressing in full. (libarchive < 3.7.4 may get RAR 4
    bytes after a PPMd-to-LZ switch wrong; they serve detection only, and
    what a decoder receives always comes from ``rars``.)
    """
    a = _la.read_new()
    if not a:
        return
    try:
        try:
            callbacks = _open(a, kind, blob, label)
        except ArchiveError:
            return
        entry_p = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(count)
        index = 0
        while True:
            with _la.utf8_names:
                status = _la.read_next_header(a, ctypes.byref(entry_p))
                if status not in (_la.OK, _la.WARN):
                    return
                index += 1
                raw = _decode_name(entry_p, index)
                got = n = 0
                while got < count:
                    n = _la.read_data(a, ctypes.addressof(buf) + got, count - got)
                    if n <= 0:
                        break
                    got += n
                _reraise_callback(callbacks)
            yield raw, (buf.raw[:got] if n >= 0 else None)
    finally:
        _la.read_free(a)
