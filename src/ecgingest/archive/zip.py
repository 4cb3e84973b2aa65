"""ZIP members libarchive 3.6 cannot decode, located through the central directory.

Deflate64 (method 9, no decoder in any libarchive) is inflated with
``inflate64``; LZMA (method 14) members libarchive rejects (e.g. empty ones
written by Python's zipfile) with Python's :mod:`lzma`.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from ..errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..sources import Failed
from .blobs import BLOCK, Blob, MiB
from .entrybytes import Produced

if TYPE_CHECKING:
    from .walker import Walker

__all__ = ["ZipFallback", "central_directory_at", "iter_central_members", "CentralMember"]


class ZipFallback:
    """Members of a ZIP located through its central directory and decoded here."""

    def __init__(self, blob: Blob) -> None:
        self.blob = blob
        self._members: dict[str, list[tuple[int, int, int, int, int]]] | None = None

    @staticmethod
    def applies(message: str) -> bool:
        return "compression method (9" in message or "lzma" in message.lower()

    def _index(self) -> dict[str, list[tuple[int, int, int, int, int]]]:
        if self._members is None:
            self._members = _zip_central_directory(self.blob)
        return self._members

    def open(self, raw: str, path: str, walker: Walker) -> _ZipMember | Failed:
        """A reader of member ``raw`` (the first of that name not opened yet), or why not."""
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
        try:
            if method == 9:
                import inflate64

                decompress = inflate64.Inflater().inflate
            else:
                decompress, start, csize = self._lzma(start, csize, path)
        except (ValueError, lzma.LZMAError) as exc:
            return Failed(path, CorruptDataError(f"LZMA properties are damaged ({exc})",
                                                 path=path, format="zip"))
        return _ZipMember(self.blob, walker, path, decompress, start, csize, usize, crc)

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


def central_directory_at(blob: Blob) -> tuple[int, int] | None:
    """``(offset, size)`` of the ZIP's central directory, None when there is none whole
    (a truncated ZIP is read as a stream)."""
    total = blob.size()
    tail_len = min(total, 65557)
    tail = blob.read_at(total - tail_len, tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count, cd_size, cd_offset = struct.unpack_from("<HII", tail, at + 10)
    eocd = total - tail_len + at
    if cd_offset == 0xFFFFFFFF or count == 0xFFFF:
        loc = blob.read_at(eocd - 20, 20)
        if len(loc) == 20 and loc[:4] == b"PK\x06\x07":
            (z64,) = struct.unpack_from("<Q", loc, 8)
            rec = blob.read_at(z64, 56)
            if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
    if cd_offset + cd_size > total:
        return None
    return cd_offset, cd_size


def _zip_central_directory(blob: Blob) -> dict[str, list[tuple[int, int, int, int, int]]]:
    """name -> [(method, local header offset, compressed size, size, crc)] of members
    with methods 9 (Deflate64) and 14 (LZMA)."""
    members: dict[str, list[tuple[int, int, int, int, int]]] = {}
    for member in iter_central_members(blob) or ():
        if member.method not in (9, 14):
            continue
        names = {member.name_bytes.decode("utf-8", "replace")} if member.utf8 else {
            member.name_bytes.decode("cp437"), member.name_bytes.decode("utf-8", "replace")}
        for name in names:
            members.setdefault(name, []).append((member.method, member.local, member.csize,
                                                 member.usize, member.crc))
    return members


class CentralMember(NamedTuple):
    """One record of a ZIP's central directory."""

    name_bytes: bytes
    utf8: bool  # general purpose flag 11: the name is UTF-8
    method: int
    local: int  # offset of the local header
    csize: int
    usize: int
    crc: int


def iter_central_members(blob: Blob) -> Iterator[CentralMember] | None:
    """The records of the ZIP's central directory in its order, one at a time (a listing
    of many members need not hold them all), or None when there is no whole central
    directory (or it is too large to hold)."""
    where = central_directory_at(blob)
    if where is None or where[1] > 64 * MiB:
        return None
    cd_offset, cd_size = where
    return _parse_central(blob.read_at(cd_offset, cd_size))


def _parse_central(cd: bytes) -> Iterator[CentralMember]:
    pos = 0
    while pos + 46 <= len(cd) and cd[pos:pos + 4] == b"PK\x01\x02":
        (flags, method, crc, csize, usize, nlen, xlen, clen) = struct.unpack_from(
            "<HH4xIIIHHH", cd, pos + 8)
        (local,) = struct.unpack_from("<I", cd, pos + 42)
        name_bytes = bytes(cd[pos + 46:pos + 46 + nlen])
        extra = cd[pos + 46 + nlen:pos + 46 + nlen + xlen]
        usize, csize, local = _zip64_sizes(extra, usize, csize, local)
        pos += 46 + nlen + xlen + clen
        yield CentralMember(name_bytes, bool(flags & 0x800), method, local, csize, usize, crc)


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


class _ZipMember(Produced):
    """One member's bytes through our decoder, produced on request (limits per block)."""

    def __init__(self, blob: Blob, walker: Walker, path: str,
                 decompress: Callable[[bytes], bytes], start: int, csize: int, usize: int,
                 crc: int) -> None:
        super().__init__(usize)
        self.blob = blob
        self.walker = walker
        self.path = path
        self.decompress = decompress
        self.start = start
        self.end = start + csize
        self.pos = start
        self.crc = crc
        self.chunks: list[bytes] = []
        self.produced = 0
        self.checksum = 0

    def held(self) -> bytes:
        if len(self.chunks) > 1:
            self.chunks = [b"".join(self.chunks)]
        return self.chunks[0] if self.chunks else b""

    def hand_over(self) -> bytes:
        data = self.held()
        self.chunks = []
        return data

    def _produce(self, stop: int | None) -> Failed | None:
        path, usize, walker = self.path, self.declared, self.walker
        assert usize is not None
        if stop is None:  # declared; checked again as data arrives
            walker.check_growth(path, usize, self.end - self.start)
        try:
            while self.pos < self.end:
                if stop is not None and self.produced >= stop:
                    return None
                piece = self.blob.read_at(self.pos, min(BLOCK, self.end - self.pos))
                self.pos += len(piece)
                out = self.decompress(piece)
                if out:
                    self.produced += len(out)
                    walker.grew(path, self.produced, self.pos - self.start, len(out))
                    if self.produced > usize:
                        return Failed(path, CorruptDataError(
                            f"entry holds more than the {usize} bytes its header declares",
                            path=path, format="zip"))
                    self.checksum = zlib.crc32(out, self.checksum)
                    self.chunks.append(out)
        except (ValueError, RuntimeError, EOFError, lzma.LZMAError) as exc:
            return Failed(path, CorruptDataError(f"compressed data is damaged ({exc})",
                                                 path=path, format="zip"))
        if self.produced != usize:
            return Failed(path, TruncatedError(
                f"entry ends after {self.produced} of the {usize} bytes its header declares",
                path=path, format="zip"))
        if self.checksum != self.crc:
            return Failed(path, ChecksumError(
                f"stored CRC {self.crc:#010x} does not match the data ({self.checksum:#010x})",
                path=path, format="zip"))
        self.done = True
        return None
