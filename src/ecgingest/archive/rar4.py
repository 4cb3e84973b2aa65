"""RAR 4 through ``rars`` (libarchive < 3.7.4 decodes PPMd-to-LZ switches wrongly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ArchiveError, ChecksumError, CorruptDataError, UnsupportedFeatureError
from ..formats._base import PROBE_BYTES
from ..sources import Entry, Failed, Skipped
from . import _libarchive as _la
from .blobs import Blob
from .entrybytes import Produced
from .libarchive import prefixes

if TYPE_CHECKING:
    from .walker import Walker

__all__ = ["walk_rar4"]


def walk_rar4(blob: Blob, walker: Walker) -> Iterator[Entry | Skipped | Failed]:
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
    heads = _Prefixes(blob, walker.label)
    try:
        for info in infos:
            raw = str(info.filename)
            attr = int(info.file_attr or 0)
            unix = int(info.host_os) == 3
            link = None
            if unix and (attr & _la.AE_IFMT) == _la.AE_IFLNK:
                link = "symbolic link"
            elif not unix and attr & 0x400:
                link = "reparse point (Windows link)"
            other = unix and (attr & _la.AE_IFMT) not in (_la.AE_IFREG, _la.AE_IFDIR, 0,
                                                          _la.AE_IFLNK)
            decided = walker.classify(raw, is_dir=bool(info.is_dir()), link=link, other=other)
            if decided is None or not isinstance(decided, str):
                if decided is not None:
                    yield decided
                continue
            csize = int(info.compress_size or 0) or compressed_total
            yield from walker.take(decided, _Rar4Bytes(archive, info, decided, raw, csize,
                                                        walker, heads))
    finally:
        heads.close()


class _Prefixes:
    """libarchive's first bytes of the archive's entries, matched to ``rars``' by name."""

    def __init__(self, blob: Blob, label: str) -> None:
        self.blob = blob
        self.label = label
        self.items: Iterator[tuple[str, bytes | None]] | None = None

    def get(self, raw: str) -> bytes | None:
        if self.items is None:
            self.items = prefixes("rar4", self.blob, self.label, PROBE_BYTES)
        for name, head in self.items:  # entries come in the same order: move forward
            if name.replace("\\", "/") == raw.replace("\\", "/"):
                return head
        return None

    def close(self) -> None:
        close = getattr(self.items, "close", None)
        if close is not None:
            close()


class _Rar4Bytes(Produced):
    """One RAR 4 entry: its first bytes from libarchive when that is all the walker asks
    for, else all of them from ``rars`` (which produces whole entries only)."""

    def __init__(self, archive: Any, info: Any, path: str, raw: str, csize: int,
                 walker: Walker, heads: _Prefixes) -> None:
        super().__init__(int(info.file_size))
        self.archive = archive
        self.info = info
        self.path = path
        self.raw = raw
        self.csize = csize
        self.walker = walker
        self.heads = heads
        self.data = b""
        self.head: bytes | None = None  # libarchive's first bytes, served while they suffice

    def held(self) -> bytes:
        return self.data

    def hand_over(self) -> bytes:
        data, self.data = self.data, b""
        return data

    def _produce(self, stop: int | None) -> Failed | None:
        if stop is not None and len(self.data) >= stop:
            return None
        declared = self.declared
        assert declared is not None
        if stop is not None and declared > stop:
            if self.head is None:
                self.head = self.heads.get(self.raw) or b""
            if len(self.head) >= stop:
                self.walker.grew(self.path, stop, None, stop - len(self.data))
                self.data = self.head[:stop]
                return None
        return self._read_all(declared)

    def _read_all(self, declared: int) -> Failed | None:
        import rars

        path, info = self.path, self.info
        self.walker.grew(path, declared, self.csize, declared - len(self.data))
        if getattr(info, "is_encrypted", False):
            return Failed(path, UnsupportedFeatureError(
                "entry is encrypted; ecgingest reads no password-protected archives",
                path=path, format="rar"))
        try:
            data = self.archive.read(info)
        except rars.UnsupportedRarFeature as exc:
            return Failed(path, UnsupportedFeatureError(f"cannot decompress this entry: {exc}",
                                                        path=path, format="rar"))
        except rars.Error as exc:
            text = str(exc)
            cls = ChecksumError if "CRC" in text or "checksum" in text.lower() else CorruptDataError
            return Failed(path, cls(f"entry data is damaged or truncated ({text})",
                                    path=path, format="rar"))
        if len(data) != declared:
            return Failed(path, CorruptDataError(
                f"entry yields {len(data)} bytes, its header declares {declared}",
                path=path, format="rar"))
        self.data = bytes(data)
        self.done = True
        return None
