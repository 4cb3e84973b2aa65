"""The fuzz targets: each takes one input (bytes) and raises Finding when the promise breaks.

A target is engine-independent: libFuzzer (through atheris) or the
pure-hypothesis engine calls ``Target.run(data)``; so do the regression tests.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

import ecgingest
from ecgingest.errors import EcgIngestError
from ecgingest.limits import Limits

from . import corpus
from .corpus import FIXTURES, archives_dir, corpus_dir, files_below, record_packs, unpack
from .oracle import FUZZ_LIMITS, Finding, checked_digest, outcome_of, record_digest, typed

__all__ = ["Target", "TARGETS", "get"]


@dataclass(frozen=True)
class Target:
    """One fuzz target: its seeds, its per-input check and the largest input worth trying."""

    name: str
    doc: str
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes], None]
    max_len: int = 256 * 1024


# ----------------------------------------------------------------- single-file decoders
SOURCE_KINDS = tuple(os.environ.get("ECGINGEST_FUZZ_SOURCES", "bytes,path").split(","))
"""How the decoder targets hand each input over: as bytes, and (default) also as a file on
disk, whose outcome must equal the bytes' one (a different path through the sources)."""


@cache
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="ecgingest-fuzz-")) / "upload"


def read_bytes(data: bytes) -> None:
    """``ecgingest.read`` ends in records (all signals readable) or a typed error, the same
    for the bytes and for a file holding them."""
    by_bytes = outcome_of(lambda: ecgingest.read(data, limits=FUZZ_LIMITS))
    if "path" in SOURCE_KINDS:
        path = _scratch()
        path.write_bytes(data)
        by_path = outcome_of(lambda: ecgingest.read(path, limits=FUZZ_LIMITS))
        if by_path != by_bytes:
            raise Finding("mismatch", f"as a path: {by_path[:2]}, as bytes: {by_bytes[:2]}")


def _edf_seeds() -> list[bytes]:
    found = files_below([FIXTURES / "edf", _corpus("edf")], (".edf", ".bdf"),
                        max_bytes=64 * corpus.SEED_MAX_BYTES)
    return [corpus.shrink_edf(data) for _, data in found]


def _scp_seeds() -> list[bytes]:
    return [d for _, d in files_below([FIXTURES / "scp", _corpus("scp")], (".scp",))]


def _kardia_seeds() -> list[bytes]:
    return [d for _, d in files_below([FIXTURES / "kardia", _corpus("kardia")], (".json",))]


def _cdelta_seeds() -> list[bytes]:
    seeds = [d for _, d in files_below([FIXTURES / "compressed_delta"], (".cmdt",))]
    rng = np.random.default_rng(7)
    for bits in (8, 16, 24, 32):
        for coding in range(3):
            for compression in range(3):
                channels = 1 + (bits + coding + compression) % 3
                top = 2 ** (bits - 1) - 1
                samples = np.cumsum(rng.integers(-5, 6, size=(channels, 40)), axis=1)
                samples = np.clip(samples, -top - 1, top)
                seeds.append(ecgingest.encode_compressed_delta(
                    samples, sample_rate=250.0, bits_per_sample=bits, coding=coding,
                    compression=compression))
    return seeds


def _corpus(sub: str):
    root = corpus_dir()
    return None if root is None else root / sub


# ----------------------------------------------------------------- intact neighbours
INTACT_WFDB = "100_3chan"


@cache
def intact_wfdb_files() -> tuple[tuple[str, bytes], ...]:
    folder = FIXTURES / "wfdb" / INTACT_WFDB
    return tuple((p.name, p.read_bytes()) for p in sorted(folder.glob(f"{INTACT_WFDB}.*"))
                 if p.suffix in (".hea", ".dat"))


@cache
def intact_cdelta() -> bytes:
    samples = (np.arange(2 * 300, dtype=np.int64).reshape(2, 300) % 97) - 48
    return ecgingest.encode_compressed_delta(samples, sample_rate=300.0)


@cache
def intact_digest(kind: str) -> tuple:
    """The digest of the intact neighbour read alone (the reference it must keep)."""
    if kind == "wfdb":
        [record] = ecgingest.read(zip_of([(f"rec/{n}", d) for n, d in intact_wfdb_files()]))
    else:
        [record] = ecgingest.read(intact_cdelta())
    return record_digest(record)


def zip_of(files: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_of(files: list[tuple[str, bytes]], mode: Literal["w", "w:gz"] = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


INTACT_SOURCES = {"wfdb": {f"{INTACT_WFDB}.hea", f"{INTACT_WFDB}.dat"}, "cdelta": {"intact.cmdt"}}


def require_intact(upload: bytes, limits: Limits, kind: str, where: str) -> None:
    """``ingest(upload)`` must deliver the intact neighbour on its own (built from its files
    only) and with the same samples."""
    result = typed(lambda: ecgingest.ingest(upload, limits=limits))
    if isinstance(result, EcgIngestError):
        raise Finding("lost", f"ingest raised {type(result).__name__} ({result}) for an upload "
                      "holding an intact record", type(result).__name__)
    wanted = intact_digest(kind)
    own = [r for r in result.records
           if {s.rsplit("/", 1)[-1] for s in r.sources} == INTACT_SOURCES[kind]]
    if kind == "wfdb" and any(_has_segment(r, INTACT_WFDB) for r in result.records):
        return  # a multi-segment record that names it as a segment holds it (WFDB.md)
    if not any(checked_digest(r) == wanted for r in own):
        errors = "; ".join(f"{e.paths}: {type(e.error).__name__}: {e.error}"
                           for e in result.errors[:3])
        first = result.errors[0].error if result.errors else None
        key = f"{type(first).__name__}:{first.field}" if first is not None else "silent"
        raise Finding("lost", f"the intact {kind} record next to the input was not delivered "
                      f"({where}; {len(result.records)} records, errors: {errors or 'none'})", key)


def _has_segment(record: ecgingest.Record, name: str) -> bool:
    """True when a delivered multi-segment record was built with ``name`` as a segment:
    WFDB segments are ordinary records, consumed by the record they are part of."""
    segments = record.extras.get("segments") if record.format == "wfdb" else None
    return any(isinstance(s, dict) and s.get("name") == name for s in segments or ())


# ----------------------------------------------------------------- WFDB (multi-file)
def wfdb_files(data: bytes) -> list[tuple[str, bytes]]:
    """The packed files of one input, renamed where they would replace the intact record."""
    taken = {name for name, _ in intact_wfdb_files()}
    files = []
    for name, content in unpack(data):
        while name in taken:
            name = "_" + name
        taken.add(name)
        files.append((name, content))
    return files


def run_wfdb(data: bytes) -> None:
    """A WFDB record (header + signal files) in an archive, next to an intact record."""
    files = wfdb_files(data)
    alone = zip_of([(f"rec/{n}", d) for n, d in files])
    result = typed(lambda: ecgingest.ingest(alone, limits=FUZZ_LIMITS))
    if isinstance(result, ecgingest.IngestResult):
        for record in result.records:
            checked_digest(record)
    both = zip_of([(f"rec/{n}", d) for n, d in files + list(intact_wfdb_files())])
    require_intact(both, FUZZ_LIMITS, "wfdb", "same folder")


def _wfdb_seeds() -> list[bytes]:
    seeds = [d for _, d in record_packs([FIXTURES / "wfdb", _corpus("wfdb")])]
    # a multi-segment record a short hop from naming the intact neighbour as its segment,
    # headers naming each other as segments, a header sharing the neighbour's signal file
    lines = b"".join(b"%s.dat 212 200 11 1024 0 0 0 %s\n" % (INTACT_WFDB.encode(), label)
                     for label in (b"I", b"II", b"III"))
    intact = {name.rsplit(".", 1)[1]: data for name, data in intact_wfdb_files()}
    seeds += [
        corpus.pack([("m.hea", b"m/1 3 360 999\ns1 999\n"),
                     ("s1.hea", intact["hea"].replace(INTACT_WFDB.encode(), b"s1")),
                     ("s1.dat", intact["dat"])]),
        corpus.pack([("a.hea", b"a/1 3 360 999\nb 999\n"), ("b.hea", b"b/1 3 360 999\na 999\n")]),
        corpus.pack([("x.hea", b"x 3 360 999\n" + lines)]),
    ]
    return seeds


# ----------------------------------------------------------------- archives
NESTED_LIMITS = dataclasses.replace(FUZZ_LIMITS, max_nesting=1)


def summary(result: ecgingest.IngestResult | EcgIngestError) -> tuple:
    """What two arrivals of one upload must share: records, error classes, skipped count."""
    if isinstance(result, EcgIngestError):
        return ("raised", type(result).__name__)
    return (tuple(sorted(checked_digest(r) for r in result.records)),
            tuple(sorted(type(e.error).__name__ for e in result.errors)), len(result.skipped))


def run_archive(data: bytes) -> None:
    """Archive bytes through ``ingest`` (as bytes and as a file), alone and nested next to
    an intact record."""
    by_bytes = summary(typed(lambda: ecgingest.ingest(data, limits=FUZZ_LIMITS)))
    if "path" in SOURCE_KINDS:
        path = _scratch()
        path.write_bytes(data)
        by_path = summary(typed(lambda: ecgingest.ingest(path, limits=FUZZ_LIMITS)))
        if by_path != by_bytes:
            raise Finding("mismatch", f"as a path: {by_path[1:]}, as bytes: {by_bytes[1:]} "
                          f"({len(by_path[0])} and {len(by_bytes[0])} records)")
    outer = zip_of([("intact/intact.cmdt", intact_cdelta()), ("fuzz/upload", data)])
    require_intact(outer, NESTED_LIMITS, "cdelta", "nested archive")


def _archive_seeds() -> list[bytes]:
    seeds = [d for _, d in files_below([FIXTURES / "archives", archives_dir()],
                                       (".zip", ".zipx", ".tar", ".gz", ".bz2", ".xz", ".zst",
                                        ".lz4", ".7z", ".rar"))]
    members = [("a/intact.cmdt", intact_cdelta())]
    members += [(f"w/{n}", d) for n, d in intact_wfdb_files()]
    members += [(f"k/{p.name}", p.read_bytes()) for p in sorted((FIXTURES / "kardia").glob("*.json"))]
    seeds += [zip_of(members), tar_of(members), tar_of(members, "w:gz")]
    seeds.append(zip_of(members, zipfile.ZIP_DEFLATED))
    seven = seven_zip_of(members)
    if seven is not None:
        seeds.append(seven)
    return seeds


def seven_zip_of(files: list[tuple[str, bytes]]) -> bytes | None:
    """A 7z archive of ``files``, or None without py7zr."""
    try:
        import py7zr
    except ImportError:
        return None
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        for name, content in files:
            archive.writestr(content, name)
    return buffer.getvalue()


# ----------------------------------------------------------------- registry
def _stateful():
    from . import stateful
    return stateful


TARGETS: dict[str, Target] = {
    "edf": Target("edf", "EDF/EDF+/BDF through ecgingest.read (bytes, and a file)", _edf_seeds, read_bytes),
    "scp": Target("scp", "SCP-ECG through ecgingest.read (bytes, and a file)", _scp_seeds, read_bytes),
    "cdelta": Target("cdelta", "Compressed Delta through ecgingest.read (bytes, and a file)", _cdelta_seeds,
                     read_bytes, max_len=64 * 1024),
    "kardia": Target("kardia", "Kardia JSON through ecgingest.read (bytes, and a file)", _kardia_seeds,
                     read_bytes, max_len=64 * 1024),
    "wfdb": Target("wfdb", "WFDB header + signal files (packed, see corpus.pack) in a ZIP, "
                   "alone and next to an intact record", _wfdb_seeds, run_wfdb),
    "archive": Target("archive", "ZIP/TAR/7z/RAR through ecgingest.ingest (bytes, and a "
                      "file), alone and nested next to an intact record", _archive_seeds, run_archive),
    "stream": Target("stream", "Stream: parameters, frames in any order, duplicates, bad "
                     "payloads, mismatched metadata, save/restore",
                     lambda: _stateful().stream_seeds(), lambda d: _stateful().run_stream(d),
                     max_len=4096),
    "chunked": Target("chunked", "ChunkedUpload: sizes, hashes, chunks out of order, repeated, "
                      "conflicting, missing, non-bytes", lambda: _stateful().chunked_seeds(),
                      lambda d: _stateful().run_chunked(d), max_len=8192),
    "overrides": Target("overrides", "metadata overrides (every field, hostile values) applied "
                        "through ecgingest.read", lambda: _stateful().overrides_seeds(),
                        lambda d: _stateful().run_overrides(d), max_len=512),
}


def get(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise SystemExit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}") from None
