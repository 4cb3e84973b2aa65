"""7-Zip folders libarchive 3.6 cannot decode (the ARM64 filter of 7-Zip 23+).

py7zr reads the archive header, liblzma (through :mod:`._liblzma`) decodes
the folder's coder chain.
"""

from __future__ import annotations

import ctypes
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..sources import Entry, Failed, Skipped
from . import _liblzma as _lzma
from .blobs import BLOCK, Blob, BlobFile
from .entrybytes import Produced

if TYPE_CHECKING:
    from .walker import Walker

__all__ = ["walk_7z_fallback"]

_7Z_LZMA = {0x21: _lzma.FILTER_LZMA2, 0x030101: _lzma.FILTER_LZMA1}
_7Z_FILTERS = {0x03: _lzma.FILTER_DELTA, 0x03030103: 0x04, 0x03030205: 0x05, 0x03030401: 0x06,
               0x03030501: 0x07, 0x03030701: 0x08, 0x03030805: 0x09, 0x0A: _lzma.FILTER_ARM64}
"""7-Zip coder IDs -> liblzma filter IDs (Delta, x86, PowerPC, IA-64, ARM, ARM-Thumb, SPARC, ARM64)."""
_7Z_OUT = 256 * 1024


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

    def __init__(self, blob: Blob, walker: Walker, chain: list[tuple[int, bytes]],
                 offset: int, packsize: int, size: int) -> None:
        self.blob = blob
        self.walker = walker
        self.pos = offset
        self.end = offset + packsize
        self.size = size
        cap = min(size, walker.limits.max_total_size)
        self.decoder = _lzma.RawDecoder(chain, max_dict=cap)
        self.inbuf = ctypes.create_string_buffer(BLOCK)
        self.out = ctypes.create_string_buffer(_7Z_OUT)
        self.outview = memoryview(self.out).cast("B")
        self.broken: EcgIngestError | None = None

    def close(self) -> None:
        self.decoder.close()

    def member(self, size: int, path: str | None, crc: int | None, shown: str) -> _7zMember:
        """A reader of the folder's next ``size`` bytes (discarded when ``path`` is None)."""
        return _7zMember(self, size, path, crc, shown)


class _7zMember(Produced):
    """One file of a folder, produced on request; :meth:`drain` decodes past the rest."""

    def __init__(self, folder: _7zFolder, size: int, path: str | None, crc: int | None,
                 shown: str) -> None:
        super().__init__(size)
        self.folder = folder
        self.path = path
        self.crc = crc
        self.shown = shown
        self.buf = bytearray()
        self.produced = 0
        self.checksum = 0
        self.start_in = folder.decoder.total_in

    def held(self) -> bytes:
        return bytes(self.buf)

    def hand_over(self) -> bytes:
        data = bytes(self.buf)
        self.buf = bytearray()
        return data

    def drain(self) -> None:
        """Decode the rest of the file without keeping it (the next file follows it)."""
        self.skip_rest()

    def skip_rest(self) -> Failed | None:
        if not self.done and self.failure is None:
            self.path = None
            self.buf = bytearray()
            return self.fill(None)
        return None

    def _produce(self, stop: int | None) -> Failed | None:
        error = self._decode(stop)
        return Failed(self.shown, error) if error is not None else None

    def _decode(self, stop: int | None) -> EcgIngestError | None:
        folder = self.folder
        size = self.declared
        assert size is not None
        if folder.broken is not None:
            return CorruptDataError(f"an earlier entry of the same solid block is damaged "
                                    f"({folder.broken.message})", path=self.shown, format="7z")
        if stop is None and self.path is not None:
            folder.walker.check_growth(self.path, size, None)  # declared; checked again
        decoder = folder.decoder
        while self.produced < size:
            if stop is not None and self.produced >= stop:
                return None
            if decoder.pending_input == 0 and folder.pos < folder.end:
                piece = folder.blob.read_at(folder.pos, min(BLOCK, folder.end - folder.pos))
                if not piece:
                    folder.pos = folder.end
                else:
                    ctypes.memmove(folder.inbuf, piece, len(piece))
                    decoder.feed(folder.inbuf, len(piece))
                    folder.pos += len(piece)
            want = min(_7Z_OUT, size - self.produced)
            if stop is not None and self.path is not None:
                want = min(want, max(1, stop - self.produced))
            status, used, made = decoder.decode(folder.inbuf, folder.out, want)
            if made:
                chunk = folder.outview[:made]
                self.produced += made
                self.checksum = zlib.crc32(chunk, self.checksum)
                if self.path is not None:
                    folder.walker.grew(self.path, self.produced,
                                       decoder.total_in - self.start_in, made)
                    self.buf += chunk
            if status not in (_lzma.OK, _lzma.STREAM_END, _lzma.BUF_ERROR):
                folder.broken = CorruptDataError(
                    f"compressed data is damaged (liblzma status {status})", path=self.shown,
                    format="7z")
                return folder.broken
            stalled = not made and not used and decoder.pending_input == 0
            if self.produced < size and (status != _lzma.OK
                                         or (stalled and folder.pos >= folder.end)):
                folder.broken = TruncatedError(
                    f"entry ends after {self.produced} of the {size} bytes the header declares",
                    path=self.shown, format="7z")
                return folder.broken
        self.done = True
        if self.crc is not None and self.checksum != self.crc:
            return ChecksumError(f"stored CRC {self.crc:#010x} does not match the data "
                                 f"({self.checksum:#010x})", path=self.shown, format="7z")
        return None


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


def walk_7z_fallback(blob: Blob, walker: Walker, start: int, first_path: str | None,
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
        io.BytesIO(blob.data) if blob.data is not None else BlobFile(blob))
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
                decided: Skipped | Failed | str | None = first_path
                shown = first_path
            else:
                raw = str(info.filename)
                link = ("symbolic link" if info.is_symlink else
                        "reparse point (Windows link)" if info.is_junction else None)
                decided = walker.classify(raw, is_dir=bool(info.is_directory), link=link,
                                          other=bool(info.is_socket))
                shown = walker.prefix + raw
            path = decided if isinstance(decided, str) else None
            if isinstance(decided, (Skipped, Failed)):
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
            member = open_folder.member(my_stream.size, path, my_stream.crc, shown)
            if path is None:
                member.drain()
                continue
            yield from walker.take(path, member)
            member.drain()
    finally:
        if open_folder is not None:
            open_folder.close()


def _open_7z_folder(blob: Blob, walker: Walker, folders: list, packinfo, base: int,
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
