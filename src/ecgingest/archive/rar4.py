"""RAR 4 through ``rars`` (libarchive < 3.7.4 decodes PPMd-to-LZ switches wrongly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import ArchiveError, ChecksumError, CorruptDataError, UnsupportedFeatureError
from ..sources import Entry, Failed, Skipped
from . import _libarchive as _la
from .blobs import Blob

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
