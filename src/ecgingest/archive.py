"""Archives: content sniffing, safe streamed walking, limits and entry names.

:func:`open_archive` / :func:`open_stream` turn an upload whose first bytes
are an archive's magic into an :class:`~ecgingest.sources.Upload` whose
entries are read one after the other, in archive order, without extraction:

- libarchive (through private ctypes prototypes of libarchive-c's library)
  reads ZIP, TAR (plain, gzip, bzip2, xz, lz4, Zstandard), 7-Zip and RAR 5,
  and every non-OK status, warnings included, fails the entry;
- ZIP members libarchive cannot decode (Deflate64; LZMA it rejects) are
  located through the central directory and decoded with ``inflate64`` /
  :mod:`lzma`; RAR 4 is read with ``rars`` (libarchive < 3.7.4 decodes its
  PPMd-to-LZ switches wrongly); 7-Zip folders libarchive cannot decode (the
  ARM64 filter) are read with ``py7zr`` (header) and liblzma (data);
- bytes are counted against :class:`Limits` as they arrive, declared sizes
  are checked but never trusted, and names are normalised; unsafe names,
  links and devices become :class:`~ecgingest.sources.Skipped` reports.

Directories on disk are read like archives and go through the same limits,
names and nesting rule.
"""

from __future__ import annotations

import ctypes
import io
import lzma
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as _np

from . import _libarchive as _la
from . import _liblzma as _lzma
from ._memory import Arena
from .errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    LimitExceededError,
    TruncatedError,
    UnsafeEntryError,
    UnsupportedFeatureError,
)
from .limits import ByteBudget, Limits
from .sources import Entry, Failed, Skipped, Upload, normalise_entry_name

__all__ = ["archive_kind", "open_archive", "open_stream", "nested_in_directory"]

_MiB = 1024 * 1024

# ---------------------------------------------------------------------------
# Content sniffing

_TAR_FILTERS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_SEEKING_KINDS = frozenset({"zip", "7z", "rar4", "rar5"})
"""Kinds libarchive (or rars) must seek in; a non-seekable stream of these is spooled."""

HEAD_BYTES = 512
"""Bytes :func:`archive_kind` needs to decide (one tar header block)."""


def _tar_checksum_ok(block: bytes) -> bool:
    if len(block) < 512:
        return False
    field = block[148:156].replace(b"\x00", b" ").strip()
    if not field or field.translate(None, b"01234567"):  # a non-octal byte
        return False
    stored = int(field, 8)
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed and computed != 8 * 32


def archive_kind(head: bytes) -> str | None:
    """Archive type from the first bytes of an upload (magic numbers, never names).

    Returns ``"zip"``, ``"7z"``, ``"rar4"``, ``"rar5"``, ``"tar"`` or
    ``"tar+<filter>"`` (gzip, bzip2, xz, lz4, zstd); ``None`` for anything else.
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:7] == b"Rar!\x1a\x07\x00":
        return "rar4"
    if head[:8] == b"Rar!\x1a\x07\x01\x00":
        return "rar5"
    for magic, name in _TAR_FILTERS.items():
        if head[:len(magic)] == magic:
            if name == "bzip2" and not (len(head) > 3 and head[3:4] in b"123456789"):
                continue
            return "tar+" + name
    if head[257:262] == b"ustar" or _tar_checksum_ok(head[:512]):
        return "tar"
    return None


# ---------------------------------------------------------------------------
# Sources an archive can be read from


class _Blob:
    """Where the archive bytes are: a file on disk, bytes in memory, or a stream.

    ``volumes`` (several paths) is a multi-volume set opened together.
    """

    def __init__(self, label: str, *, path: str | None = None, data: bytes | None = None,
                 stream: IO[bytes] | None = None, volumes: list[str] | None = None,
                 prefix: bytes = b"") -> None:
        self.label = label
        self.path = path
        self.data = data
        self.stream = stream
        self.volumes = volumes
        self.prefix = prefix  # bytes already taken from a non-seekable stream
        self.seekable_stream = bool(stream is not None and not prefix
                                    and getattr(stream, "seekable", lambda: False)())
        # A seekable stream may start the archive after bytes the caller already read.
        self.base = stream.tell() if self.seekable_stream else 0

    @property
    def random_access(self) -> bool:
        return self.path is not None or self.data is not None or self.seekable_stream

    def read_at(self, offset: int, count: int) -> bytes:
        if self.data is not None:
            return bytes(self.data[offset:offset + count])
        if self.seekable_stream:
            assert self.stream is not None
            self.stream.seek(self.base + offset)
            return bytes(self.stream.read(count) or b"")
        assert self.path is not None
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read(count)

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.seekable_stream:
            assert self.stream is not None
            return self.stream.seek(0, os.SEEK_END) - self.base
        assert self.path is not None
        return os.path.getsize(self.path)


_BLOCK = 64 * 1024


class _Callbacks:
    """libarchive read/seek callbacks over bytes or a Python stream, in 64 KiB blocks.

    Small blocks make the raw-byte counter (``filter_bytes``) advance as an
    entry is decompressed, which the expansion-ratio limit relies on.
    """

    def __init__(self, blob: _Blob) -> None:
        self.blob = blob
        self.pos = 0
        self.view = memoryview(blob.data) if blob.data is not None else None
        self.pending = blob.prefix
        self.base = blob.base
        self.buffer = ctypes.create_string_buffer(_BLOCK)
        self.error: BaseException | None = None
        self.read_cb = _la.READ_CALLBACK(self._read)
        self.seek_cb = _la.SEEK_CALLBACK(self._seek)

    def _read(self, _archive, _context, out):
        try:
            if self.view is not None:
                chunk = self.view[self.pos:self.pos + _BLOCK]
            elif self.pending:
                chunk, self.pending = self.pending[:_BLOCK], self.pending[_BLOCK:]
            else:
                assert self.blob.stream is not None
                if self.blob.seekable_stream:  # others (the ZIP fallback) may seek it too
                    self.blob.stream.seek(self.base + self.pos)
                chunk = self.blob.stream.read(_BLOCK) or b""
            n = len(chunk)
            if n > _BLOCK:
                raise ArchiveError(f"the stream returned {n} bytes for a read of {_BLOCK}")
            ctypes.memmove(self.buffer, bytes(chunk), n)
            self.pos += n
            out[0] = ctypes.cast(self.buffer, ctypes.c_void_p)
            return n
        except BaseException as exc:  # surfaces after libarchive returns
            self.error = exc
            return -1

    def _seek(self, _archive, _context, offset, whence):
        try:
            if self.view is not None:
                size = len(self.view)
                base = {0: 0, 1: self.pos, 2: size}[whence]
                self.pos = max(0, min(size, base + offset))
                return self.pos
            assert self.blob.stream is not None
            if whence == 0:
                offset += self.base
            self.pos = self.blob.stream.seek(offset, whence) - self.base
            return self.pos
        except BaseException as exc:
            self.error = exc
            return -1

    @property
    def seekable(self) -> bool:
        return self.view is not None or self.blob.seekable_stream


# ---------------------------------------------------------------------------
# Walking an archive


class _Walker:
    """State shared by the entry iterators of one archive: limits, links, nesting."""

    def __init__(self, label: str, limits: Limits, budget: ByteBudget, depth: int,
                 prefix: str) -> None:
        self.label = label
        self.limits = limits
        self.budget = budget
        self.depth = depth
        self.prefix = prefix
        self.links: set[str] = set()
        self.arena = Arena()  # entry bytes: all released when the upload is done

    # -- names -------------------------------------------------------------
    def classify(self, raw: str, *, is_dir: bool, link: str | None,
                 other: bool) -> Skipped | str | None:
        """Normalised path of a regular file, a Skipped report, or None (directory)."""
        shown = self.prefix + raw
        self.budget.add_entry(shown)
        if is_dir:
            return None
        try:
            path = normalise_entry_name(raw)
        except UnsafeEntryError as exc:
            return Skipped(shown, exc.message)
        if link is not None:
            self.links.add(path)
            return Skipped(shown, f"{link} (links are never followed)")
        if other:
            return Skipped(shown, "not a regular file (device, FIFO or socket)")
        if not self.links:
            return self.prefix + path
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.links:
                return Skipped(shown, "path passes through a link entry of the archive "
                                      "(links are never followed)")
        return self.prefix + path

    # -- sizes -------------------------------------------------------------
    def check_growth(self, path: str, produced: int, compressed: int | None) -> None:
        """Per-entry size and expansion ratio, checked as blocks arrive (fatal)."""
        self.budget.check_entry_size(path, produced)
        if compressed is not None and produced > self.limits.ratio_grace:
            ratio = produced / max(1, compressed)
            if ratio > self.limits.max_ratio:
                raise LimitExceededError(
                    f"entry expands more than {self.limits.max_ratio:g}:1 (a decompression "
                    f"bomb?); raise Limits.max_ratio or Limits.ratio_grace to read it",
                    limit="max_ratio", value=self.limits.max_ratio, path=path)

    def grew(self, path: str, produced: int, compressed: int | None, added: int) -> None:
        """Account ``added`` new bytes of an entry now ``produced`` long (limits are fatal)."""
        self.check_growth(path, produced, compressed)
        self.budget.add_bytes(path, added)

    # -- nesting -----------------------------------------------------------
    def finish_entry(self, path: str, data: bytes | memoryview
                     ) -> Iterator[Entry | Skipped | Failed]:
        """Yield a complete entry, or open it as a nested archive when allowed."""
        yield from self.nested(Entry.from_bytes(path, data))

    def nested(self, entry: Entry) -> Iterator[Entry | Skipped | Failed]:
        path = entry.path
        kind = archive_kind(entry.head(HEAD_BYTES))
        if kind is None or _claimed_by_format(entry):
            yield entry
            return
        note = (f"{_KIND_NAMES[kind]} archive inside the archive (not opened; pass "
                f"Limits(max_nesting={self.depth + 1}) to read it)")
        if self.depth >= self.limits.max_nesting:
            # Still offered as data: a WFDB signal file may start with archive magic.
            entry.nested_note = note
            yield entry
            return
        inner = _Walker(path, self.limits, self.budget, self.depth + 1, path + "/")
        file = getattr(entry, "_file", None)
        blob = (_Blob(path, path=os.fspath(file)) if file is not None and entry._data is None
                else _Blob(path, data=entry.read()))
        items = _walk_kind(kind, blob, inner)
        try:
            first = next(items, None)
        except ArchiveError:  # magic bytes only: it does not open, so it is data
            yield entry
            return
        except LimitExceededError:
            raise
        except EcgIngestError as exc:
            yield Failed(path, exc)
            return
        if first is None:
            return
        yield first
        try:
            yield from items
        except LimitExceededError:
            raise  # budget-wide limits stop the whole upload
        except EcgIngestError as exc:  # a broken inner archive fails only itself
            yield Failed(exc.path or path, exc)


_KIND_NAMES = {"zip": "ZIP", "7z": "7-Zip", "rar4": "RAR 4", "rar5": "RAR 5", "tar": "TAR",
               "tar+gzip": "gzip TAR", "tar+bzip2": "bzip2 TAR", "tar+xz": "xz TAR",
               "tar+lz4": "lz4 TAR", "tar+zstd": "Zstandard TAR"}


def _claimed_by_format(entry: Entry) -> bool:
    from .detect import detect  # detect imports sources, which imports this module

    try:
        return detect(entry) is not None
    except Exception:  # sniffers must not raise; if one does, keep the entry as data
        return False


def _walk_kind(kind: str, blob: _Blob, walker: _Walker) -> Iterator[Entry | Skipped | Failed]:
    if kind == "rar4":
        yield from _walk_rars(blob, walker)
    else:
        yield from _walk_libarchive(kind, blob, walker)


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


def _walk_libarchive(kind: str, blob: _Blob, walker: _Walker) -> Iterator[Entry | Skipped | Failed]:
    a = _la.read_new()
    if not a:
        raise ArchiveError("libarchive could not allocate a reader", path=walker.label)
    try:
        yield from _walk_open_archive(a, kind, blob, walker)
    finally:
        _la.read_free(a)


def _walk_open_archive(a: int, kind: str, blob: _Blob,
                       walker: _Walker) -> Iterator[Entry | Skipped | Failed]:
    fmt = "tar" if kind.startswith("tar") else kind
    what = _KIND_NAMES[kind]
    callbacks = None
    with _la.utf8_names:
        _la.read_support_filter_all(a)
        _la.FORMAT_SUPPORT[fmt](a)
        if blob.volumes is not None:
            names = (ctypes.c_char_p * (len(blob.volumes) + 1))(
                *[os.fsencode(v) for v in blob.volumes], None)
            status = _la.read_open_filenames(a, names, _BLOCK)
        elif blob.path is not None:
            status = _la.read_open_filename(a, os.fsencode(blob.path), _BLOCK)
        else:
            callbacks = _Callbacks(blob)
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
    fallback = _ZipFallback(blob) if fmt == "zip" and blob.random_access else None
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
                    yield from _walk_7z_fallback(blob, walker, index - 1, path, outcome)
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


def _reraise_callback(callbacks: _Callbacks | None) -> None:
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


def _read_libarchive_data(a: int, path: str, declared: int | None, walker: _Walker,
                          callbacks: _Callbacks | None, fmt: str) -> memoryview | Failed:
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


# ---------------------------------------------------------------------------
# ZIP members libarchive 3.6 cannot decode: Deflate64 (method 9, no decoder in
# any libarchive) via inflate64, and LZMA (method 14) members libarchive
# rejects (e.g. empty ones written by Python's zipfile) via Python's lzma.


class _ZipFallback:
    """Members of a ZIP located through its central directory and decoded here."""

    def __init__(self, blob: _Blob) -> None:
        self.blob = blob
        self._members: dict[str, list[tuple[int, int, int, int, int]]] | None = None

    @staticmethod
    def applies(message: str) -> bool:
        return "compression method (9" in message or "lzma" in message.lower()

    def _index(self) -> dict[str, list[tuple[int, int, int, int, int]]]:
        if self._members is None:
            self._members = _zip_central_directory(self.blob)
        return self._members

    def read(self, raw: str, path: str, walker: _Walker) -> bytes | Failed:
        candidates = self._index().get(raw)
        if not candidates:
            return Failed(path, UnsupportedFeatureError(
                "libarchive cannot decode this entry and it is not in the central directory",
                path=path, format="zip"))
        method, local, csize, usize, crc = candidates.pop(0)
        total = self.blob.size()
        header = self.blob.read_at(local, 30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            return Failed(path, ArchiveError("local header of the entry is missing",
                                             path=path, format="zip", offset=local))
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        start = local + 30 + name_len + extra_len
        if start + csize > total:
            return Failed(path, TruncatedError(
                f"entry data ends after {max(0, total - start)} of {csize} compressed bytes",
                path=path, format="zip", offset=start))
        walker.check_growth(path, usize, csize)  # declared; checked again as data arrives
        try:
            if method == 9:
                import inflate64

                decompress = inflate64.Inflater().inflate
            else:
                decompress, start, csize = self._lzma(start, csize, path)
        except (ValueError, lzma.LZMAError) as exc:
            return Failed(path, CorruptDataError(f"LZMA properties are damaged ({exc})",
                                                 path=path, format="zip"))
        chunks: list[bytes] = []
        produced = 0
        checksum = 0
        pos = start
        try:
            while pos < start + csize:
                piece = self.blob.read_at(pos, min(_BLOCK, start + csize - pos))
                pos += len(piece)
                out = decompress(piece)
                if out:
                    produced += len(out)
                    walker.grew(path, produced, pos - start, len(out))
                    if produced > usize:
                        return Failed(path, CorruptDataError(
                            f"entry holds more than the {usize} bytes its header declares",
                            path=path, format="zip"))
                    checksum = zlib.crc32(out, checksum)
                    chunks.append(out)
        except (ValueError, RuntimeError, EOFError, lzma.LZMAError) as exc:
            return Failed(path, CorruptDataError(f"compressed data is damaged ({exc})",
                                                 path=path, format="zip"))
        if produced != usize:
            return Failed(path, TruncatedError(
                f"entry ends after {produced} of the {usize} bytes its header declares",
                path=path, format="zip"))
        if checksum != crc:
            return Failed(path, ChecksumError(
                f"stored CRC {crc:#010x} does not match the data ({checksum:#010x})",
                path=path, format="zip"))
        return b"".join(chunks)

    def _lzma(self, start: int, csize: int, path: str):
        """Raw LZMA1 decoder from the member's 4-byte version/size and properties header."""
        head = self.blob.read_at(start, 4)
        if len(head) < 4 or csize < 4:
            raise ValueError("LZMA header missing")
        (props_size,) = struct.unpack_from("<H", head, 2)
        if props_size != 5 or csize < 4 + props_size:
            raise ValueError(f"LZMA properties of {props_size} bytes (expected 5)")
        props = self.blob.read_at(start + 4, 5)
        d, dict_size = props[0], struct.unpack_from("<I", props, 1)[0]
        if d >= 9 * 5 * 5:
            raise ValueError("LZMA lc/lp/pb byte out of range")
        lc, rest = d % 9, d // 9
        lp, pb = rest % 5, rest // 5
        decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{
            "id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb,
            "dict_size": max(dict_size, 4096)}])
        return decoder.decompress, start + 9, csize - 9


def _zip_central_directory(blob: _Blob) -> dict[str, list[tuple[int, int, int, int, int]]]:
    """name -> [(method, local header offset, compressed size, size, crc)] of members
    with methods 9 (Deflate64) and 14 (LZMA)."""
    total = blob.size()
    tail_len = min(total, 65557)
    tail = blob.read_at(total - tail_len, tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return {}
    count, cd_size, cd_offset = struct.unpack_from("<HII", tail, at + 10)
    eocd = total - tail_len + at
    if cd_offset == 0xFFFFFFFF or count == 0xFFFF:
        loc = blob.read_at(eocd - 20, 20)
        if len(loc) == 20 and loc[:4] == b"PK\x06\x07":
            (z64,) = struct.unpack_from("<Q", loc, 8)
            rec = blob.read_at(z64, 56)
            if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
    if cd_offset + cd_size > total or cd_size > 64 * _MiB:
        return {}
    cd = blob.read_at(cd_offset, cd_size)
    members: dict[str, list[tuple[int, int, int, int, int]]] = {}
    pos = 0
    while pos + 46 <= len(cd) and cd[pos:pos + 4] == b"PK\x01\x02":
        (flags, method, crc, csize, usize, nlen, xlen, clen) = struct.unpack_from(
            "<HH4xIIIHHH", cd, pos + 8)
        (local,) = struct.unpack_from("<I", cd, pos + 42)
        name_bytes = cd[pos + 46:pos + 46 + nlen]
        extra = cd[pos + 46 + nlen:pos + 46 + nlen + xlen]
        usize, csize, local = _zip64_sizes(extra, usize, csize, local)
        pos += 46 + nlen + xlen + clen
        if method not in (9, 14):
            continue
        names = {name_bytes.decode("utf-8", "replace")} if flags & 0x800 else {
            name_bytes.decode("cp437"), name_bytes.decode("utf-8", "replace")}
        for name in names:
            members.setdefault(name, []).append((method, local, csize, usize, crc))
    return members


def _zip64_sizes(extra: bytes, usize: int, csize: int, local: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + length]
        pos += 4 + length
        if tag != 0x0001:
            continue
        fields = []
        for i in range(0, len(body) - 7, 8):
            fields.append(struct.unpack_from("<Q", body, i)[0])
        it = iter(fields)
        if usize == 0xFFFFFFFF:
            usize = next(it, usize)
        if csize == 0xFFFFFFFF:
            csize = next(it, csize)
        if local == 0xFFFFFFFF:
            local = next(it, local)
    return usize, csize, local


# ---------------------------------------------------------------------------
# 7-Zip folders libarchive 3.6 cannot decode (the ARM64 filter of 7-Zip 23+):
# py7zr reads the archive header, liblzma decodes the folder's coder chain.

_7Z_LZMA = {0x21: _lzma.FILTER_LZMA2, 0x030101: _lzma.FILTER_LZMA1}
_7Z_FILTERS = {0x03: _lzma.FILTER_DELTA, 0x03030103: 0x04, 0x03030205: 0x05, 0x03030401: 0x06,
               0x03030501: 0x07, 0x03030701: 0x08, 0x03030805: 0x09, 0x0A: _lzma.FILTER_ARM64}
"""7-Zip coder IDs -> liblzma filter IDs (Delta, x86, PowerPC, IA-64, ARM, ARM-Thumb, SPARC, ARM64)."""
_7Z_OUT = 256 * 1024


class _BlobFile(io.RawIOBase):
    """Read-only seekable file object over a :class:`_Blob`, for py7zr's header reader."""

    def __init__(self, blob: _Blob) -> None:
        self.blob = blob
        self.pos = 0
        self.length = blob.size()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = max(0, {0: 0, 1: self.pos, 2: self.length}[whence] + offset)
        return self.pos

    def readinto(self, b) -> int:
        data = self.blob.read_at(self.pos, len(b))
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)


@dataclass
class _7zStream:
    """One file's bytes inside a 7-Zip folder, as the header declares them."""

    folder: int
    size: int
    crc: int | None


class _7zFolder:
    """Sequential reader of one 7-Zip folder (solid block) through liblzma.

    Declared sizes split the output into files but are never trusted for
    allocation: each file grows only as decoded bytes arrive, and limits are
    checked per 256 KiB of output.
    """

    def __init__(self, blob: _Blob, walker: _Walker, chain: list[tuple[int, bytes]],
                 offset: int, packsize: int, size: int) -> None:
        self.blob = blob
        self.walker = walker
        self.pos = offset
        self.end = offset + packsize
        self.size = size
        cap = min(size, walker.limits.max_total_size)
        self.decoder = _lzma.RawDecoder(chain, max_dict=cap)
        self.inbuf = ctypes.create_string_buffer(_BLOCK)
        self.out = ctypes.create_string_buffer(_7Z_OUT)
        self.outview = memoryview(self.out).cast("B")
        self.broken: EcgIngestError | None = None

    def close(self) -> None:
        self.decoder.close()

    def read(self, size: int, path: str | None, crc: int | None,
             shown: str) -> bytes | EcgIngestError:
        """The next ``size`` bytes of the folder (discarded when ``path`` is None)."""
        if self.broken is not None:
            return CorruptDataError(f"an earlier entry of the same solid block is damaged "
                                    f"({self.broken.message})", path=shown, format="7z")
        buf = bytearray()
        produced = 0
        checksum = 0
        start_in = self.decoder.total_in
        walker = self.walker
        while produced < size:
            if self.decoder.pending_input == 0 and self.pos < self.end:
                piece = self.blob.read_at(self.pos, min(_BLOCK, self.end - self.pos))
                if not piece:
                    self.pos = self.end
                else:
                    ctypes.memmove(self.inbuf, piece, len(piece))
                    self.decoder.feed(self.inbuf, len(piece))
                    self.pos += len(piece)
            status, used, made = self.decoder.decode(self.inbuf, self.out,
                                                     min(_7Z_OUT, size - produced))
            if made:
                chunk = self.outview[:made]
                produced += made
                checksum = zlib.crc32(chunk, checksum)
                if path is not None:
                    walker.grew(path, produced, self.decoder.total_in - start_in, made)
                    buf += chunk
            if status not in (_lzma.OK, _lzma.STREAM_END, _lzma.BUF_ERROR):
                self.broken = CorruptDataError(
                    f"compressed data is damaged (liblzma status {status})", path=shown,
                    format="7z")
                return self.broken
            stalled = not made and not used and self.decoder.pending_input == 0
            if produced < size and (status != _lzma.OK or (stalled and self.pos >= self.end)):
                self.broken = TruncatedError(
                    f"entry ends after {produced} of the {size} bytes the header declares",
                    path=shown, format="7z")
                return self.broken
        if crc is not None and checksum != crc:
            return ChecksumError(f"stored CRC {crc:#010x} does not match the data "
                                 f"({checksum:#010x})", path=shown, format="7z")
        return bytes(buf)


def _7z_chain(coders: list[dict]) -> list[tuple[int, bytes]] | str:
    """liblzma filter chain of a folder, or why liblzma cannot decode it."""
    if not 1 <= len(coders) <= 2 or any(
            c.get("numinstreams", 1) != 1 or c.get("numoutstreams", 1) != 1 for c in coders):
        return "a coder graph other than one compressor plus at most one filter"
    lzma_part: list[tuple[int, bytes]] = []
    filters: list[tuple[int, bytes]] = []
    for coder in coders:
        method = int.from_bytes(bytes(coder["method"]), "big")
        props = bytes(coder.get("properties") or b"")
        if method in _7Z_LZMA:
            lzma_part.append((_7Z_LZMA[method], props))
        elif method in _7Z_FILTERS:
            filters.append((_7Z_FILTERS[method], props))
        elif method == 0x06F10701:
            return "encryption (AES-256; no passwords are taken)"
        else:
            return f"coder {method:#x}"
    if len(lzma_part) != 1:
        return "no LZMA or LZMA2 coder"
    if any(fid == _lzma.FILTER_ARM64 for fid, _ in filters) and (
            _lzma.version() < _lzma.ARM64_MIN_VERSION):
        return "the ARM64 filter (needs liblzma 5.4 or newer)"
    return filters + lzma_part


def _walk_7z_fallback(blob: _Blob, walker: _Walker, start: int, first_path: str | None,
                      failure: Failed) -> Iterator[Entry | Skipped | Failed]:
    """Entries ``start`` onward of a 7-Zip archive whose folder libarchive cannot decode.

    ``first_path`` is the entry libarchive already classified (and counted)
    before it failed (None: classify it here too); ``failure`` is reported
    when the header cannot be read here either.
    """
    try:
        import py7zr
    except ImportError:
        yield failure
        return
    source: object = blob.path if blob.path is not None else (
        io.BytesIO(blob.data) if blob.data is not None else _BlobFile(blob))
    try:
        with py7zr.SevenZipFile(source, mode="r") as archive:  # type: ignore[arg-type]
            files = list(archive.files)
            streams_info = archive.header.main_streams
            base = int(archive.afterheader)
    except Exception:  # a third-party header parser: any failure means it cannot help
        yield failure
        return
    folders = list(streams_info.unpackinfo.folders) if streams_info is not None else []
    packinfo = streams_info.packinfo if streams_info is not None else None
    sub = streams_info.substreamsinfo if streams_info is not None else None
    counts = list(getattr(sub, "num_unpackstreams_folders", None) or [1] * len(folders))
    sizes = list(getattr(sub, "unpacksizes", None) or [])
    if len(sizes) != sum(counts) and all(c == 1 for c in counts) and len(counts) == len(folders):
        sizes = [int(f.unpacksizes[-1]) for f in folders]  # one file per folder
    digests = list(getattr(sub, "digests", None) or [])
    defined = list(getattr(sub, "digestsdefined", None) or [])
    if len(defined) != len(digests):
        defined = [True] * len(digests)
    listed = iter(zip(digests, defined))
    streams: list[_7zStream] = []
    for fi, count in enumerate(counts):
        folder_crc = getattr(folders[fi], "crc", None) if fi < len(folders) else None
        for _ in range(count):
            k = len(streams)
            if len(digests) == sum(counts):  # one CRC listed per file
                crc = digests[k] if defined[k] else None
            elif count == 1 and folder_crc is not None:  # 7z: the folder's CRC is the file's
                crc = folder_crc
            else:
                digest, ok = next(listed, (None, False))
                crc = digest if ok else None
            streams.append(_7zStream(fi, int(sizes[k]) if k < len(sizes) else -1, crc))
    # where each folder's packed data is
    pack_index = []
    first = 0
    for folder in folders:
        pack_index.append(first)
        first += len(getattr(folder, "packed_indices", [0]) or [0])
    open_folder: _7zFolder | None = None
    open_index = -1
    folder_error: tuple[type[EcgIngestError], str] | None = None
    try:
        stream_no = 0
        for index, info in enumerate(files):
            has_stream = not info.emptystream
            my_stream = streams[stream_no] if has_stream and stream_no < len(streams) else None
            if has_stream:
                stream_no += 1
            if index < start:
                continue
            if index == start and first_path is not None:
                decided: Skipped | str | None = first_path
                shown = first_path
            else:
                raw = str(info.filename)
                link = ("symbolic link" if info.is_symlink else
                        "reparse point (Windows link)" if info.is_junction else None)
                decided = walker.classify(raw, is_dir=bool(info.is_directory), link=link,
                                          other=bool(info.is_socket))
                shown = walker.prefix + raw
            path = decided if isinstance(decided, str) else None
            if isinstance(decided, Skipped):
                yield decided
            if not has_stream:
                if path is not None:
                    yield from walker.finish_entry(path, b"")
                continue
            if my_stream is None or my_stream.size < 0:
                yield Failed(shown, ArchiveError("the 7-Zip header lists more files than "
                                                 "data streams", path=shown, format="7z"),
                             fatal=True)
                return
            if open_index != my_stream.folder:
                if open_folder is not None:
                    open_folder.close()
                    open_folder = None
                open_index = my_stream.folder
                opened = _open_7z_folder(blob, walker, folders, packinfo, base, pack_index,
                                         streams, my_stream.folder)
                open_folder, folder_error = ((opened, None) if isinstance(opened, _7zFolder)
                                             else (None, opened))
            if folder_error is not None:  # every entry of this folder fails the same way
                if path is not None:
                    cls, text = folder_error
                    yield Failed(path, cls(text, path=path, format="7z"))
                continue
            assert open_folder is not None
            if path is not None:
                walker.check_growth(path, my_stream.size, None)  # declared; checked again
            outcome = open_folder.read(my_stream.size, path, my_stream.crc, shown)
            if path is None:
                continue
            if isinstance(outcome, EcgIngestError):
                yield Failed(path, outcome)
                continue
            yield from walker.finish_entry(path, outcome)
    finally:
        if open_folder is not None:
            open_folder.close()


def _open_7z_folder(blob: _Blob, walker: _Walker, folders: list, packinfo, base: int,
                    pack_index: list[int], streams: list[_7zStream], which: int
                    ) -> _7zFolder | tuple[type[EcgIngestError], str]:
    """A reader for folder ``which``, or the error class and text for its entries."""
    chain = _7z_chain(list(folders[which].coders))
    if isinstance(chain, str):
        return UnsupportedFeatureError, f"cannot decompress this entry: 7-Zip {chain} is not read"
    k = pack_index[which]
    try:
        offset = base + int(packinfo.packpos) + int(packinfo.packpositions[k])
        packsize = int(packinfo.packsizes[k])
    except (AttributeError, IndexError, TypeError):
        return ArchiveError, "the 7-Zip header does not locate this entry's packed data"
    if offset + packsize > blob.size():
        return TruncatedError, "the 7-Zip archive ends inside the packed data of this entry"
    size = sum(s.size for s in streams if s.folder == which)
    try:
        return _7zFolder(blob, walker, chain, offset, packsize, size)
    except (ValueError, OSError) as exc:
        return UnsupportedFeatureError, f"cannot decompress this entry: {exc}"


# ---------------------------------------------------------------------------
# RAR 4: rars (libarchive < 3.7.4 decodes PPMd->LZ switches wrongly)


def _walk_rars(blob: _Blob, walker: _Walker) -> Iterator[Entry | Skipped | Failed]:
    import rars

    try:
        if blob.volumes is not None:
            archive = rars.RarFile(blob.volumes[0])
        elif blob.path is not None:
            archive = rars.RarFile(blob.path)
        else:
            archive = rars.RarFile.from_bytes(bytes(blob.data if blob.data is not None else b""))
        infos = archive.infolist()
    except rars.Error as exc:
        raise ArchiveError(f"cannot open the RAR 4 archive: {exc}", path=walker.label) from exc
    compressed_total = blob.size() if blob.random_access else 0
    for info in infos:
        raw = str(info.filename)
        attr = int(info.file_attr or 0)
        unix = int(info.host_os) == 3
        link = None
        if unix and (attr & _la.AE_IFMT) == _la.AE_IFLNK:
            link = "symbolic link"
        elif not unix and attr & 0x400:
            link = "reparse point (Windows link)"
        other = unix and (attr & _la.AE_IFMT) not in (_la.AE_IFREG, _la.AE_IFDIR, 0, _la.AE_IFLNK)
        decided = walker.classify(raw, is_dir=bool(info.is_dir()), link=link, other=other)
        if decided is None or isinstance(decided, Skipped):
            if decided is not None:
                yield decided
            continue
        path = decided
        declared = int(info.file_size)
        csize = int(info.compress_size or 0) or compressed_total
        walker.grew(path, declared, csize, declared)  # rars stops at the declared size
        if getattr(info, "is_encrypted", False):
            yield Failed(path, UnsupportedFeatureError(
                "entry is encrypted; ecgingest reads no password-protected archives",
                path=path, format="rar"))
            continue
        try:
            data = archive.read(info)
        except rars.UnsupportedRarFeature as exc:
            yield Failed(path, UnsupportedFeatureError(f"cannot decompress this entry: {exc}",
                                                       path=path, format="rar"))
            continue
        except rars.Error as exc:
            text = str(exc)
            cls = ChecksumError if "CRC" in text or "checksum" in text.lower() else CorruptDataError
            yield Failed(path, cls(f"entry data is damaged or truncated ({text})",
                                   path=path, format="rar"))
            continue
        if len(data) != declared:
            yield Failed(path, CorruptDataError(
                f"entry yields {len(data)} bytes, its header declares {declared}",
                path=path, format="rar"))
            continue
        yield from walker.finish_entry(path, bytes(data))


# ---------------------------------------------------------------------------
# Public entry points used by ecgingest.sources


def open_archive(upload: Entry | list | tuple, limits: Limits, budget: ByteBudget) -> Upload | None:
    """Entries of an archive upload, or ``None`` when the bytes are no archive.

    ``upload`` is one :class:`~ecgingest.sources.Entry` (bytes in memory or a
    file on disk) or the paths of the volumes of one multi-volume archive.
    """
    if isinstance(upload, (list, tuple)):
        volumes = [os.fspath(v) for v in upload]
        if not volumes:
            raise ArchiveError("an empty list of volumes was given")
        with open(volumes[0], "rb") as fh:
            kind = archive_kind(fh.read(HEAD_BYTES))
        if kind is None:
            return None
        label = volumes[0]
        blob = _Blob(label, volumes=volumes)
    else:
        kind = archive_kind(upload.head(HEAD_BYTES))
        if kind is None:
            return None
        file = getattr(upload, "_file", None)
        if file is not None and upload._data is None:
            label = os.fspath(file)
            blob = _Blob(label, path=label)
        else:
            label = upload.path
            blob = _Blob(label, data=bytes(upload.read()))
    walker = _Walker(label, limits, budget, 0, "")
    return Upload(label, entries=lambda: _walk_kind(kind, blob, walker))


def nested_in_directory(entry: Entry, budget: ByteBudget) -> Iterator[Entry | Skipped | Failed]:
    """A file of a directory upload: itself, or an archive below the directory.

    Directories are read like archives, so archives found in them follow the
    same ``Limits.max_nesting`` rule as archives inside archives.
    """
    walker = _Walker(entry.path, budget.limits, budget, 0, "")
    yield from walker.nested(entry)


def open_stream(stream: IO[bytes], label: str, limits: Limits,
                budget: ByteBudget) -> tuple[Upload | None, bytes]:
    """An archive read from a file object, or ``(None, head)`` when it is no archive.

    TAR streams are read as they arrive; ZIP, 7z and RAR need seeking and are
    spooled to a temporary file first when the stream cannot seek.
    """
    head = _read_exactly(stream, HEAD_BYTES)
    kind = archive_kind(head)
    if kind is None:
        return None, head
    walker = _Walker(label, limits, budget, 0, "")
    seekable = bool(getattr(stream, "seekable", lambda: False)())
    if seekable and kind != "rar4":  # rars reads paths and bytes, not file objects
        stream.seek(-len(head), os.SEEK_CUR)
        blob = _Blob(label, stream=stream)
        return Upload(label, entries=lambda: _walk_kind(kind, blob, walker)), b""
    if kind not in _SEEKING_KINDS:
        blob = _Blob(label, stream=stream, prefix=head)
        return Upload(label, entries=lambda: _walk_kind(kind, blob, walker)), b""
    spool = tempfile.NamedTemporaryFile(prefix="ecgingest-", suffix=".spool", delete=False)
    try:
        with spool:
            spool.write(head)
            copied = len(head)
            while True:
                chunk = stream.read(_MiB)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > limits.max_total_size:
                    raise LimitExceededError(
                        f"archive upload exceeds {limits.max_total_size} bytes; raise "
                        f"Limits.max_total_size to read it", limit="max_total_size",
                        value=limits.max_total_size, path=label)
                spool.write(chunk)
    except BaseException:
        os.unlink(spool.name)
        raise
    blob = _Blob(label, path=spool.name)
    return Upload(label, entries=lambda: _walk_kind(kind, blob, walker),
                  close=lambda: _unlink_quietly(spool.name)), b""


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_exactly(stream: IO[bytes], count: int) -> bytes:
    parts = []
    got = 0
    while got < count:
        chunk = stream.read(count - got)
        if not chunk:
            break
        parts.append(bytes(chunk))
        got += len(chunk)
    return b"".join(parts)


