"""Seed inputs: the repository's fixtures and, when ECGINGEST_CORPUS / ECGINGEST_ARCHIVES
point at them, the real corpus and archive collections (never a fixed machine path)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["ROOT", "FIXTURES", "REGRESSIONS", "corpus_dir", "archives_dir", "files_below",
           "shrink_edf", "pack", "unpack", "record_packs"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REGRESSIONS = FIXTURES / "regressions"
SEED_MAX_BYTES = 96 * 1024
"""Seeds above this are cut down (EDF) or left out: big inputs make every execution slow."""

_REFERENCE = re.compile(r"\.ref\.(json|npz)$|\.digest\.json$|\.md$|\.py$")


def corpus_dir() -> Path | None:
    """The shared corpus of real files, from ``ECGINGEST_CORPUS``."""
    value = os.environ.get("ECGINGEST_CORPUS")
    return Path(value) if value and Path(value).is_dir() else None


def archives_dir() -> Path | None:
    """The collection of real archives, from ``ECGINGEST_ARCHIVES``."""
    value = os.environ.get("ECGINGEST_ARCHIVES")
    return Path(value) if value and Path(value).is_dir() else None


def files_below(roots: Iterable[Path | None], suffixes: tuple[str, ...],
                max_bytes: int = SEED_MAX_BYTES) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the recording files below ``roots`` whose suffix matches."""
    for root in roots:
        if root is None or not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or _REFERENCE.search(path.name):
                continue
            if not path.name.lower().endswith(suffixes) or path.stat().st_size > max_bytes:
                continue
            yield path.name, path.read_bytes()


def shrink_edf(data: bytes, max_bytes: int = SEED_MAX_BYTES) -> bytes:
    """An EDF/BDF with only as many data records as fit ``max_bytes`` (header count rewritten).

    A real header with fewer records keeps every structural path of the file
    reachable, where a plain cut would only ever exercise truncation.
    """
    if len(data) <= max_bytes or len(data) < 256:
        return data
    try:
        header_bytes = int(data[184:192])
        count = int(data[252:256])
        width = 3 if data[:1] == b"\xff" else 2
        per_record = sum(int(data[256 + count * 216 + i * 8: 256 + count * 216 + (i + 1) * 8])
                         for i in range(count)) * width
    except ValueError:
        return data[:max_bytes]
    if per_record <= 0:
        return data[:max_bytes]
    keep = max(1, (max_bytes - header_bytes) // per_record)
    field = str(keep).encode().ljust(8)
    return data[:236] + field + data[244:header_bytes + keep * per_record]


_MARK = re.compile(rb"(?:^|\n)@@@ ([^\n/\\]{1,64})\n")


def pack(files: Iterable[tuple[str, bytes]]) -> bytes:
    """Several named files as one fuzz input: ``@@@ name\\n`` before each file's bytes."""
    return b"\n".join(b"@@@ " + name.encode() + b"\n" + data for name, data in files)


def unpack(data: bytes) -> list[tuple[str, bytes]]:
    """The files of a packed input; bytes before the first mark are a file named ``r.hea``."""
    marks = list(_MARK.finditer(data))
    files = []
    if not marks or marks[0].start() > 0:
        files.append(("r.hea", data[: marks[0].start() if marks else len(data)]))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(data)
        name = mark.group(1).decode("latin-1").strip() or "unnamed"
        files.append((name, data[mark.end():end]))
    return files


def record_packs(roots: Iterable[Path | None], max_bytes: int = 2 * SEED_MAX_BYTES
                 ) -> Iterator[tuple[str, bytes]]:
    """One packed input per folder of WFDB files below ``roots`` (small folders only)."""
    for root in roots:
        if root is None or not root.is_dir():
            continue
        for folder in sorted({p.parent for p in root.rglob("*.hea")}):
            files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())
                     if p.is_file() and not _REFERENCE.search(p.name)]
            if sum(len(d) for _, d in files) <= max_bytes:
                yield folder.name, pack(files)
