"""Reading archives through libarchive, every status (warnings included) checked."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
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
    from .walker import Walker

__all__ = ["walk_libarchive"]


def _decode_name(entry_p: int, index: int) -> str:
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


def _walk_open_archive(a: int, kind: str, blob: Blob,
                       walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    fmt = "tar" if kind.startswith("tar") else kind
    what = KIND_NAMES[kind]
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
                path=walker.label)
        raise ArchiveError(f"cannot open the {what} archive: {text}", path=walker.label)
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
        if decided is None or isinstance(decided, Skipped):
            if decided is not None:
                yield decided
            continue
        path = decided
        if status == _la.WARN and not _locale_only_warning(_la.message(a)):
            yield Failed(path, ArchiveError(
                f"entry header is damaged: {_la.message(a)}", path=path, format=fmt))
            continue
        declared = (_la.entry_size(entry_p) if _la.entry_size_is_set(entry_p) else None)
        if switch_locale:
            with _la.utf8_names:
                outcome = _read_libarchive_data(a, path, declared, walker, callbacks, fmt)
        else:
            outcome = _read_libarchive_data(a, path, declared, walker, callbacks, fmt)
        if isinstance(outcome, Failed):
            if fallback is not None and fallback.applies(outcome.error.message):
                outcome = fallback.read(raw, path, walker)
            if isinstance(outcome, Failed):
                if (fmt == "7z" and outcome.fatal and blob.random_access
                        and isinstance(outcome.error, UnsupportedFeatureError)):
                    # a 7-Zip coder libarchive lacks (ARM64): liblzma reads on from here
                    yield from walk_7z_fallback(blob, walker, index - 1, path, outcome)
                    return
                yield outcome
                if outcome.fatal:  # libarchive cannot go on after ARCHIVE_FATAL
                    return
                continue
        yield from walker.finish_entry(path, outcome)


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


def _read_libarchive_data(a: int, path: str, declared: int | None, walker: Walker,
                          callbacks: Callbacks | None, fmt: str) -> memoryview | Failed:
    """All bytes of the current entry, or why not; limits checked per block.

    Reads straight into one buffer that starts at most 1 MiB and doubles only
    as real data fills it, so memory is at most twice what actually arrived.
    The buffer is a NumPy array, not zero-filled first (libarchive writes every
    byte that is kept, and the unused tail is cleared before the bytes are
    handed out). A small entry of declared size, which never grows (a byte past
    the declared size fails it), takes its buffer from the walk's arena.
    """
    cap = walker.limits.max_entry_size + 1
    hint = declared + 1 if declared is not None else 64 * 1024
    size = max(1, min(hint, _FIRST_ALLOCATION, cap))
    if declared is not None and size == declared + 1:
        buf = walker.arena.empty(size)
    else:
        buf = _np.empty(size, _np.uint8)
    address = buf.ctypes.data
    produced = 0
    start_raw = _la.filter_bytes(a, -1)
    while True:
        if produced == size:
            size += min(size, cap - size) or 1
            grown = _np.empty(size, _np.uint8)
            grown[:produced] = buf
            buf = grown
            address = buf.ctypes.data
        count = _la.read_data(a, address + produced, size - produced)
        _reraise_callback(callbacks)
        if count == 0:
            break
        if count < 0:
            return Failed(path, _status_error(a, count, path, fmt), fatal=count == _la.FATAL)
        produced += count
        walker.grew(path, produced, _la.filter_bytes(a, -1) - start_raw, count)
        if declared is not None and produced > declared:
            return Failed(path, CorruptDataError(
                f"entry holds more than the {declared} bytes its header declares",
                path=path, format=fmt))
    if declared is not None and produced != declared:
        return Failed(path, TruncatedError(
            f"entry ends after {produced} of the {declared} bytes its header declares",
            path=path, format=fmt))
    buf[produced:] = 0  # nothing stale stays reachable through the array's base
    buf.flags.writeable = False
    return memoryview(buf[:produced])
