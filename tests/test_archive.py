"""Archive layer (ARCHIVES.md, INGESTION.md §1): entries, hashes, safety and limits.

These tests use the Upload/Entry layer directly, so they need no decoder. The
expected entries of every fixture come from its manifest row: the shared set
through ``ECGINGEST_ARCHIVES``, the small copies in ``fixtures/archives``
always.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

import ecgingest
from conftest import FIXTURES, OneWayStream
from ecgingest.archive import archive_kind, open_archive
from ecgingest.errors import (
    ArchiveError,
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    LimitExceededError,
    TruncatedError,
    UnsafeEntryError,
    UnsupportedFeatureError,
)
from ecgingest.limits import ByteBudget, Limits
from ecgingest.sources import Entry, Failed, Skipped
from ecgingest.uploads import open_upload

LOCAL = FIXTURES / "archives"


def shared_dir() -> Path | None:
    value = os.environ.get("ECGINGEST_ARCHIVES")
    if not value:
        return None
    path = Path(value)
    return path if (path / "MANIFEST.md").is_file() else None


requires_shared = pytest.mark.skipif(shared_dir() is None,
                                     reason="set ECGINGEST_ARCHIVES to the shared archive fixtures")

_ROW = re.compile(r"^\| `([^`]+)` \| (\d+) \| (.*)$")


def manifest_rows(folder: Path) -> dict[str, dict]:
    """file -> {files: {name: sha}, dirs, links: {name: target}, note} from a manifest table."""
    text = (folder / ("MANIFEST.md" if (folder / "MANIFEST.md").is_file() else "README.md"))
    rows: dict[str, dict] = {}
    for line in text.read_text().splitlines():
        m = _ROW.match(line)
        if not m or not (folder / m.group(1)).is_file() or "." not in m.group(1):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        entries_cell = cells[-1]
        row = {"files": {}, "dirs": set(), "links": {}, "note": ""}
        for item in entries_cell.split("<br>"):
            item = item.strip()
            if m2 := re.match(r"^`(.+)` = `([0-9a-f]{64})`", item):
                row["files"][m2.group(1)] = m2.group(2)
            elif m2 := re.match(r"^`(.+)` -> `(.+)` \((symlink|hardlink)\)", item):
                row["links"][m2.group(1)] = m2.group(3)
            elif m2 := re.match(r"^`(.+)/` \(dir\)", item):
                row["dirs"].add(m2.group(1))
            else:
                row["note"] += item
        rows[m.group(1)] = row
    return rows


def walk(source, limits: Limits | None = None) -> tuple[dict, list, list]:
    """(files {path: sha256}, skipped, failed) of one upload through the entry layer."""
    limits = limits or Limits()
    files: dict[str, str] = {}
    skipped: list[Skipped] = []
    failed: list[Failed] = []
    with open_upload(source, limits, ByteBudget(limits)) as upload:
        assert upload.single is None, "expected an archive or a directory"
        try:
            for item in upload.entries():
                if isinstance(item, Entry):
                    try:  # an entry first seen by its prefix is read in full here
                        files[item.path] = hashlib.sha256(item.read()).hexdigest()
                    except EcgIngestError as exc:
                        failed.append(Failed(item.path, exc))
                elif isinstance(item, Skipped):
                    skipped.append(item)
                else:
                    failed.append(item)
        except EcgIngestError as exc:  # the container broke off
            failed.append(Failed(exc.path or "<archive>", exc, fatal=True))
    return files, skipped, failed


def _normal(name: str) -> str:
    return name.replace("\\", "/")


def _sources(folder: Path, name: str):
    if ".part01." in name:
        return sorted(str(p) for p in folder.glob(name.replace("part01", "part0*")))
    return str(folder / name)


_VOLUME = re.compile(r"\.part0[2-9]\.")


def _check_good_row(folder: Path, name: str, row: dict) -> None:
    limits = Limits(max_ratio=5000) if "ppmd-lz-switch" in name else Limits()
    files, skipped, failed = walk(_sources(folder, name), limits)
    assert not failed, failed
    expected = {_normal(k): v for k, v in row["files"].items()}
    assert files == expected
    assert {s.path for s in skipped} == {_normal(k) for k in row["links"]}
    assert all("link" in s.reason for s in skipped)


def _good_rows(folder: Path | None) -> list:
    if folder is None:
        return []
    rows = manifest_rows(folder)
    return [pytest.param(folder, name, row, id=name) for name, row in rows.items()
            if not name.startswith("evil-") and not _VOLUME.search(name)]


@pytest.mark.parametrize("folder,name,row", _good_rows(LOCAL))
def test_local_fixture_yields_exactly_its_manifest_entries(folder, name, row):
    _check_good_row(folder, name, row)


@requires_shared
@pytest.mark.parametrize("folder,name,row", _good_rows(shared_dir()))
def test_every_shared_fixture_yields_exactly_its_manifest_entries_and_sha256(folder, name, row):
    _check_good_row(folder, name, row)


@requires_shared
@pytest.mark.parametrize("folder,name,row", _good_rows(shared_dir()))
def test_every_shared_fixture_entry_read_in_a_second_pass_has_its_manifest_sha256(
        folder, name, row, monkeypatch):
    """Every unclaimed entry passed over after its first bytes, then read in full when
    asked for (a second pass over the archive, or rars for RAR 4): the same bytes."""
    from ecgingest.archive import walker

    monkeypatch.setattr(walker, "KEEP_UNCLAIMED", 0)
    _check_good_row(folder, name, row)


def _evil_rows() -> list:
    rows = []
    for folder in (LOCAL, shared_dir()):
        if folder is None:
            continue
        for name in sorted(manifest_rows(folder)):
            if name.startswith("evil-"):
                rows.append(pytest.param(folder / name, id=f"{folder.name}/{name}"))
    return rows


@pytest.mark.parametrize("path", _evil_rows())
def test_every_hostile_fixture_ends_in_typed_errors_or_skips_within_limits(path):
    import tracemalloc

    limits = Limits()
    tracemalloc.start()
    try:
        result = ecgingest.ingest(str(path), limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.errors or result.skipped
    assert all(isinstance(e.error, EcgIngestError) for e in result.errors)
    # stopped early: at most a few buffers of the bytes accepted before the limit fired
    assert peak < 4 * limits.ratio_grace + (1 << 20)
    with pytest.raises(EcgIngestError):
        ecgingest.read(str(path), strict=True)


def _evil(name: str) -> Path:
    for folder in (LOCAL, shared_dir()):
        if folder is not None and (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} needs ECGINGEST_ARCHIVES")


def test_traversal_names_absolute_names_and_links_are_skipped_never_followed():
    for name in ("evil-zip-traversal.zip", "evil-tar-traversal.tar"):
        files, skipped, failed = walk(str(_evil(name)))
        assert files == {"safe/ok.txt": hashlib.sha256(b"ok\n").hexdigest()}
        assert not failed
        reasons = {s.path: s.reason for s in skipped}
        assert "../escape-dotdot.txt" in reasons
        assert "/tmp/ecg-archive-fixture-abs-escape.txt" in reasons
        assert "safe/link-out" in reasons and "link" in reasons["safe/link-out"]
    _, skipped, _ = walk(str(_evil("evil-tar-traversal.tar")))
    reasons = {s.path: s.reason for s in skipped}
    assert "passes through a link" in reasons["safe/link-out/escape-via-symlink.txt"]
    assert "hard link" in reasons["safe/hard-out"]


def test_bad_crc_warning_fails_the_entry_with_a_checksum_error():
    files, _, failed = walk(str(_evil("evil-zip-bad-crc-stored.zip")))
    assert files == {}
    assert isinstance(failed[0].error, ChecksumError) and failed[0].path == "rec001.hea"


def test_size_lies_are_caught_in_both_directions():
    files, _, failed = walk(str(_evil("evil-zip-size-lie-small.zip")))
    assert files == {} and isinstance(failed[0].error, CorruptDataError)
    assert "1000 bytes" in failed[0].error.message
    files, _, failed = walk(str(_evil("evil-zip-size-lie-huge.zip")))
    assert files == {} and isinstance(failed[0].error, (CorruptDataError, TruncatedError))


def test_truncated_archives_deliver_the_complete_entries_before_the_break():
    files, _, failed = walk(str(_evil("evil-zip-truncated-mid-entry.zip")))
    assert list(files) == ["rec001.hea"]
    assert failed and failed[0].path == "rec001.dat"
    files, _, failed = walk(str(_evil("evil-tar-truncated-1GiB-claim.tar")))
    assert files == {} and failed[0].path == "big.bin"
    assert isinstance(failed[0].error, (CorruptDataError, TruncatedError))


@requires_shared
def test_truncated_zip_without_central_directory_keeps_earlier_entries():
    files, _, failed = walk(str(shared_dir() / "evil-zip-truncated-no-cd.zip"))
    assert set(files) == {"rec001.hea", "rec001.dat", "notes/readme.txt"}
    assert [f.path for f in failed] == ["blob.bin"]


@requires_shared
def test_decompression_bomb_stops_at_the_ratio_limit():
    files, _, failed = walk(str(shared_dir() / "evil-zip-ratio-200MiB.zip"))
    assert files == {}
    assert isinstance(failed[0].error, LimitExceededError)
    assert failed[0].error.limit == "max_ratio" and "Limits.max_ratio" in str(failed[0].error)


@requires_shared
def test_single_rar5_volume_alone_is_not_silently_empty():
    files, _, failed = walk(str(shared_dir() / "rar5-filter-x86.part01.rar"))
    assert not any(sha == hashlib.sha256(b"").hexdigest() for sha in files.values())
    assert failed


# -- limits -----------------------------------------------------------------


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_entry_count_limit_stops_the_walk_after_the_entries_allowed():
    data = _zip({f"f{i}.txt": b"x" for i in range(5)})
    files, _, failed = walk(data, Limits(max_entries=3))
    assert len(files) == 3
    assert failed[-1].error.limit == "max_entries"


def test_per_entry_size_limit_is_counted_as_data_arrives():
    data = _tar({"small.bin": b"a" * 100, "big.bin": b"b" * 5000})
    files, _, failed = walk(data, Limits(max_entry_size=1000))
    assert list(files) == ["small.bin"]
    assert failed[-1].error.limit == "max_entry_size" and failed[-1].path == "big.bin"


def test_total_size_limit_counts_all_entries():
    data = _zip({"a.bin": b"a" * 600, "b.bin": b"b" * 600})
    files, _, failed = walk(data, Limits(max_total_size=1000))
    assert list(files) == ["a.bin"]
    assert failed[-1].error.limit == "max_total_size"


def test_ratio_limit_applies_after_the_grace_bytes():
    data = _zip({"zeros.bin": bytes(200_000)})
    assert walk(data, Limits(ratio_grace=1_000_000))[0]  # under the grace: read
    files, _, failed = walk(data, Limits(ratio_grace=50_000, max_ratio=10))
    assert not files and failed[-1].error.limit == "max_ratio"


def test_limits_reject_nonsense_values():
    with pytest.raises(ValueError):
        Limits(max_entries=-1)
    with pytest.raises(ValueError):
        Limits(max_ratio=0)


# -- sniffing, nesting, streams -----------------------------------------------


@pytest.mark.parametrize("data,kind", [
    (_zip({"a": b"1"}), "zip"),
    (_tar({"a": b"1"}), "tar"),
    (_tar({"a": b"1"}, "w:gz"), "tar+gzip"),
    (_tar({"a": b"1"}, "w:bz2"), "tar+bzip2"),
    (_tar({"a": b"1"}, "w:xz"), "tar+xz"),
    (b"Rar!\x1a\x07\x00rest", "rar4"),
    (b"Rar!\x1a\x07\x01\x00rest", "rar5"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
    (b"0       patient" + bytes(300), None),
    (b"plain text, not an archive", None),
])
def test_archive_kind_is_decided_by_magic_bytes(data, kind):
    assert archive_kind(data[:512]) == kind


def test_archive_named_like_a_single_file_is_still_read_as_archive(tmp_path):
    target = tmp_path / "recording.edf"
    target.write_bytes(_zip({"x/a.txt": b"hello"}))
    files, _, _ = walk(str(target))
    assert files == {"x/a.txt": hashlib.sha256(b"hello").hexdigest()}


def test_nested_archive_is_skipped_unless_nesting_is_allowed():
    inner = _zip({"deep/a.txt": b"inner"})
    outer = _tar({"pack/inner.zip": inner, "top.txt": b"top"})
    result = ecgingest.ingest(outer)
    assert [s.path for s in result.skipped] == ["pack/inner.zip", "top.txt"]
    assert "max_nesting=1" in result.skipped[0].reason
    files, skipped, _ = walk(outer, Limits(max_nesting=1))
    assert set(files) == {"pack/inner.zip/deep/a.txt", "top.txt"} and not skipped


def test_entry_with_archive_magic_that_does_not_open_stays_data():
    fake = b"\x1f\x8b" + bytes(200)  # e.g. a signal file whose first sample is 0x8b1f
    files, _, failed = walk(_tar({"rec.dat": fake}), Limits(max_nesting=1))
    assert files == {"rec.dat": hashlib.sha256(fake).hexdigest()} and not failed


def test_broken_inner_archive_fails_only_itself():
    inner = _zip({"a.bin": os.urandom(1000)}, zipfile.ZIP_STORED)[:200]
    files, _, failed = walk(_tar({"in.zip": inner, "z.txt": b"z"}), Limits(max_nesting=1))
    assert "z.txt" in files
    assert failed and failed[0].path.startswith("in.zip")




@pytest.mark.parametrize("name", ["7z-lzma2.7z", "7z-arm64-lzma2.7z", "zip-deflate64.zip",
                                  "rar4-store.rar"])
def test_non_seekable_stream_of_seeking_format_is_spooled_and_cleaned_up(name, tmp_path,
                                                                        monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = (LOCAL / name).read_bytes()
    limits = Limits()
    upload = open_upload(OneWayStream(data), limits, ByteBudget(limits))
    assert len(list(tmp_path.iterdir())) == 1  # the spool file
    got = [e.path for e in upload.entries() if isinstance(e, Entry)]
    expected = manifest_rows(LOCAL)[name]["files"]
    assert sorted(got) == sorted(_normal(k) for k in expected)
    upload.close()
    assert list(tmp_path.iterdir()) == []


def test_spooling_stops_at_the_total_size_limit(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = (LOCAL / "7z-lzma2.7z").read_bytes()
    limits = Limits(max_total_size=10_000)
    with pytest.raises(LimitExceededError):
        open_upload(OneWayStream(data), limits, ByteBudget(limits))
    assert list(tmp_path.iterdir()) == []


def test_non_seekable_tar_stream_is_read_without_spooling(monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("a TAR stream must not be spooled")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    data = _tar({"a/b.txt": b"payload" * 1000}, "w:gz")
    files, _, _ = walk(OneWayStream(data))
    assert files == {"a/b.txt": hashlib.sha256(b"payload" * 1000).hexdigest()}


def test_multivolume_list_that_is_no_archive_is_an_error(tmp_path):
    part = tmp_path / "x.bin"
    part.write_bytes(b"nothing")
    limits = Limits()
    with pytest.raises(EcgIngestError):
        open_upload([str(part)], limits, ByteBudget(limits))


def test_open_archive_returns_none_for_non_archive_bytes():
    limits = Limits()
    assert open_archive(Entry.from_bytes("x", b"hello"), limits, ByteBudget(limits)) is None


def test_garbage_after_an_archive_magic_is_a_typed_error():
    files, _, failed = walk(b"PK\x03\x04" + bytes(100))
    assert not files and failed and isinstance(failed[0].error, EcgIngestError)
    files, _, failed = walk(b"7z\xbc\xaf\x27\x1c" + b"\xff" * 100)
    assert not files and isinstance(failed[0].error, ArchiveError)


def test_archive_in_a_directory_upload_follows_the_nesting_rule(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.zip").write_bytes(_zip({"a.txt": b"inside"}))
    result = ecgingest.ingest(str(tmp_path))
    assert [s.path for s in result.skipped] == ["sub/inner.zip"]
    assert "max_nesting=1" in result.skipped[0].reason
    files, skipped, failed = walk(str(tmp_path), Limits(max_nesting=1))
    assert files == {"sub/inner.zip/a.txt": hashlib.sha256(b"inside").hexdigest()}


def test_seekable_stream_is_read_in_place_without_spooling(monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("a seekable stream must not be spooled")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with open(LOCAL / "7z-lzma2.7z", "rb") as fh:
        files, _, failed = walk(fh)
    assert len(files) == 4 and not failed


def test_non_ascii_names_survive_a_c_locale():
    import subprocess
    import sys

    code = (
        "import io, zipfile, tarfile, ecgingest\n"
        "buf = io.BytesIO()\n"
        "with zipfile.ZipFile(buf, 'w') as zf: zf.writestr('Ünï/心電図.txt', b'x')\n"
        "r = ecgingest.ingest(buf.getvalue())\n"
        "assert [s.path for s in r.skipped] == ['Ünï/心電図.txt'], r\n"
        "assert not r.errors, r.errors\n"
    )
    env = dict(os.environ, LC_ALL="C", PYTHONPATH=os.pathsep.join(
        [str(Path(ecgingest.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_compressed_single_file_is_a_clear_archive_error():
    import gzip

    result = ecgingest.ingest(gzip.compress(b"0       " + bytes(500)))
    assert isinstance(result.errors[0].error, ArchiveError)
    assert "holds no TAR archive" in str(result.errors[0].error)


def test_seekable_stream_may_start_after_bytes_already_read():
    data = b"PREFIX-BYTES" + (LOCAL / "zip-deflate64.zip").read_bytes()
    stream = io.BytesIO(data)
    stream.read(12)
    files, _, failed = walk(stream)
    assert len(files) == 4 and not failed


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_ratio_limit_holds_inside_solid_compressed_tar(mode):
    data = _tar({"first.txt": b"fine", "zeros.bin": bytes(8 << 20)}, mode)
    files, _, failed = walk(data, Limits(ratio_grace=1 << 20, max_ratio=50))
    assert list(files) == ["first.txt"]
    assert failed[-1].error.limit == "max_ratio" and failed[-1].path == "zeros.bin"


# ---------------------------------------------------------------------------
# 7-Zip ARM64 filter: libarchive 3.6 lacks it; py7zr reads the header, liblzma decodes


_ARM64 = "7z-arm64-lzma2.7z"


def _arm64_expected() -> dict[str, str]:
    return {_normal(k): v for k, v in manifest_rows(LOCAL)[_ARM64]["files"].items()}


@pytest.mark.parametrize("form", ["path", "bytes", "seekable stream", "stream after a prefix"])
def test_7z_arm64_filter_yields_every_entry_from_every_kind_of_source(form):
    data = (LOCAL / _ARM64).read_bytes()
    if form == "path":
        source = str(LOCAL / _ARM64)
    elif form == "bytes":
        source = data
    elif form == "seekable stream":
        source = io.BytesIO(data)
    else:
        source = io.BytesIO(b"HEADER" + data)
        source.seek(6)
    files, skipped, failed = walk(source)
    assert not failed, failed
    assert files == _arm64_expected()


def _limit_of(failed: list) -> str:
    assert failed and failed[-1].fatal
    error = failed[-1].error
    assert isinstance(error, LimitExceededError)
    return error.limit


def test_7z_arm64_entries_decode_to_records_end_to_end():
    result = ecgingest.ingest(str(LOCAL / _ARM64))
    assert [r.name for r in result.records] == ["rec001"]
    assert not result.errors


def test_7z_arm64_declared_entry_size_over_the_limit_stops_before_decoding():
    files, _, failed = walk(str(LOCAL / _ARM64), Limits(max_entry_size=90_000))
    assert not files  # blob.bin (98304 bytes) comes first and stops the upload
    assert _limit_of(failed) == "max_entry_size"


def test_7z_arm64_total_bytes_are_counted_as_data_arrives():
    files, _, failed = walk(str(LOCAL / _ARM64), Limits(max_total_size=100_000))
    assert set(files) == {"blob.bin", "notes/readme.txt"}  # 98,760 bytes fit
    assert _limit_of(failed) == "max_total_size"


def test_7z_arm64_expansion_ratio_is_checked_as_data_arrives():
    files, _, failed = walk(str(LOCAL / _ARM64), Limits(max_ratio=1.01, ratio_grace=1024))
    assert not files  # blob.bin compresses well beyond 1.01:1
    assert _limit_of(failed) == "max_ratio"


def test_7z_arm64_entry_count_limit_applies():
    files, _, failed = walk(str(LOCAL / _ARM64), Limits(max_entries=3))
    assert len(files) == 2  # the directory and two files, then the fourth entry stops it
    assert _limit_of(failed) == "max_entries"


def _packed_range(data: bytes) -> tuple[int, int]:
    """(start, end) of the packed stream: it lies between the 32-byte signature
    header and the header that the signature header points to."""
    import struct

    (next_offset,) = struct.unpack_from("<Q", data, 12)
    return 32, 32 + next_offset


def test_7z_arm64_damaged_packed_data_is_a_typed_error_per_entry():
    data = bytearray((LOCAL / _ARM64).read_bytes())
    start, end = _packed_range(bytes(data))
    data[(start + end) // 2] ^= 0x55
    files, _, failed = walk(bytes(data))
    assert failed
    assert all(isinstance(f.error, (ChecksumError, CorruptDataError, TruncatedError))
               for f in failed)
    assert set(files) | {f.path for f in failed} == set(_arm64_expected())
    for path, digest in files.items():  # what is delivered is exactly right
        assert _arm64_expected()[path] == digest


def test_7z_arm64_crc_mismatch_is_a_checksum_error(monkeypatch):
    from ecgingest.archive import sevenzip as archive_mod

    real = archive_mod._7zFolder.member

    def forged_crc(self, size, path, crc, shown):  # each file's stored CRC, one bit off
        return real(self, size, path, None if crc is None else crc ^ 1, shown)

    monkeypatch.setattr(archive_mod._7zFolder, "member", forged_crc)
    files, _, failed = walk((LOCAL / _ARM64).read_bytes())
    assert not files
    assert len(failed) == 4 and all(isinstance(f.error, ChecksumError) for f in failed)


_LIBLZMA_CHAINS = {"7z-lzma2.7z", "7z-arm64-lzma2.7z", "7z-lzma.7z", "7z-bcj-lzma2.7z",
                   "7z-arm-lzma2.7z", "7z-delta4-lzma2.7z"}


def _7z_rows() -> list:
    rows = []
    for folder in (LOCAL, shared_dir()):
        if folder is None:
            continue
        for name in sorted(manifest_rows(folder)):
            if name.endswith(".7z"):
                rows.append(pytest.param(folder, name, id=f"{folder.name}/{name}"))
    return rows


@pytest.mark.parametrize("folder,name", _7z_rows())
def test_7z_liblzma_path_reads_every_chain_it_claims_and_refuses_the_rest(folder, name):
    """The ARM64 path read from the first entry on: LZMA/LZMA2 with one filter
    decode to the manifest's bytes; other coders fail each entry, typed."""
    from ecgingest.archive.blobs import Blob as _Blob
    from ecgingest.archive.sevenzip import walk_7z_fallback as _walk_7z_fallback
    from ecgingest.archive.walker import Walker as _Walker

    limits = Limits()
    walker = _Walker(name, limits, ByteBudget(limits), 0, "")
    blob = _Blob(name, data=(folder / name).read_bytes())
    sentinel = Failed("<never>", ArchiveError("header unreadable"), fatal=True)
    files, failed = {}, []
    for item in _walk_7z_fallback(blob, walker, 0, None, sentinel):
        if isinstance(item, Entry):
            files[item.path] = hashlib.sha256(item.read()).hexdigest()
        elif isinstance(item, Failed):
            failed.append(item)
    expected = {_normal(k): v for k, v in manifest_rows(folder)[name]["files"].items()}
    if name in _LIBLZMA_CHAINS:
        assert not failed, failed
        assert files == expected
    else:
        assert not files
        assert {f.path for f in failed} == set(expected)
        assert all(isinstance(f.error, UnsupportedFeatureError) for f in failed)


def test_7z_liblzma_path_skips_links_and_keeps_empty_files(tmp_path):
    """A 7z written by py7zr (ARM filter + LZMA2) with a symlink and an empty
    file, read through the ARM64 path from its first entry."""
    import py7zr

    from ecgingest.archive.blobs import Blob as _Blob
    from ecgingest.archive.sevenzip import walk_7z_fallback as _walk_7z_fallback
    from ecgingest.archive.walker import Walker as _Walker

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "rec.dat").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "d" / "empty.txt").write_bytes(b"")
    (tmp_path / "d" / "link").symlink_to("rec.dat")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", filters=[{"id": py7zr.FILTER_ARM},
                                               {"id": py7zr.FILTER_LZMA2}]) as z:
        z.write(tmp_path / "d" / "rec.dat", "d/rec.dat")
        z.write(tmp_path / "d" / "empty.txt", "d/empty.txt")
        z.write(tmp_path / "d" / "link", "d/link")
    limits = Limits()
    walker = _Walker("t.7z", limits, ByteBudget(limits), 0, "")
    items = list(_walk_7z_fallback(_Blob("t.7z", data=out.getvalue()), walker, 0, None,
                                   Failed("<never>", ArchiveError("x"), fatal=True)))
    files = {i.path: bytes(i.read()) for i in items if isinstance(i, Entry)}
    skipped = {i.path: i.reason for i in items if isinstance(i, Skipped)}
    assert not [i for i in items if isinstance(i, Failed)]
    assert files == {"d/rec.dat": bytes(range(256)) * 40, "d/empty.txt": b""}
    assert "link" in skipped["d/link"]


@pytest.mark.parametrize("name", ["zip-deflate64.zip", "7z-lzma2.7z", "rar5-lz-solid-delta.rar"])
def test_entry_bytes_handed_out_are_read_only(name):
    limits = Limits()
    with open_upload(str(LOCAL / name), limits, ByteBudget(limits)) as upload:
        for item in upload.entries():
            if isinstance(item, Entry):
                data = item.read()
                if isinstance(data, memoryview):
                    assert data.readonly
                    with pytest.raises(TypeError):
                        data[:1] = b"x"


# -- names that collide, records at nesting depth: reported, never silent --------------


def _dup_zip(first: str, second: str) -> bytes:
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(first, b"first")
            zf.writestr(second, b"second")
    return buf.getvalue()


@pytest.mark.parametrize("data", [
    _tar({"a/100.dat": b"first", "a//100.dat": b"second"}),
    _tar({"a/100.dat": b"first", "a/./100.dat": b"second"}),
    _dup_zip("a/100.dat", "a\\100.dat"),
    _dup_zip("a/100.dat", "a/100.dat"),
], ids=["double-slash", "dot", "backslash", "same-name-twice"])
def test_second_entry_with_the_same_normalised_name_is_reported_not_swapped_in(data):
    files, skipped, failed = walk(data)
    assert files == {"a/100.dat": hashlib.sha256(b"first").hexdigest()}  # the first stays
    assert len(failed) == 1 and not failed[0].fatal and not skipped
    error = failed[0].error
    assert isinstance(error, UnsafeEntryError)
    assert "a/100.dat" in str(error) and "only the first" in str(error)
    result = ecgingest.ingest(data)
    assert len(result.errors) == 1 and isinstance(result.errors[0].error, UnsafeEntryError)


def test_duplicate_signal_file_in_an_archive_is_an_error_next_to_the_record():
    header = b"rec 1 250 4\nrec.dat 16 200 16 0 0 0 0 I\n"
    first, second = bytes([1, 0, 2, 0, 3, 0, 4, 0]), bytes([9, 0, 9, 0, 9, 0, 9, 0])
    data = _tar({"d/rec.hea": header, "d/rec.dat": first, "d//rec.dat": second})
    result = ecgingest.ingest(data)
    assert [r.signals[0].digital.tolist() for r in result.records] == [[1, 2, 3, 4]]
    assert [e.paths for e in result.errors] == [("d//rec.dat",)]


def test_nested_archive_that_does_not_open_is_reported_with_why():
    broken = b"\x1f\x8b" + bytes(300)  # gzip magic, nothing behind it
    result = ecgingest.ingest(_tar({"in.tar.gz": broken}), limits=Limits(max_nesting=1))
    assert [s.path for s in result.skipped] == ["in.tar.gz"]
    assert "does not open" in result.skipped[0].reason


def test_nested_archive_holding_no_files_is_reported():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("only/a/folder/", b"")
    result = ecgingest.ingest(_tar({"empty.zip": buf.getvalue()}),
                              limits=Limits(max_nesting=1))
    assert [(s.path, "holds no files" in s.reason) for s in result.skipped] == [
        ("empty.zip", True)]


def test_nesting_deeper_than_the_hard_bound_is_reported_not_a_recursion_error():
    from ecgingest.archive.walker import MAX_DEPTH

    data = _zip({"core.txt": b"x"})
    for level in range(MAX_DEPTH + 3):
        data = _zip({f"level{level}.zip": data})
    result = ecgingest.ingest(data, limits=Limits(max_nesting=10_000))
    assert not result.errors and not result.records
    assert len(result.skipped) == 1
    assert f"more than {MAX_DEPTH} deep" in result.skipped[0].reason
    assert result.skipped[0].path.count(".zip/") == MAX_DEPTH


def _rec001_rows() -> list:
    rows = []
    for folder in (LOCAL, shared_dir()):
        if folder is None:
            continue
        for name, row in sorted(manifest_rows(folder).items()):
            if "rec001.dat" in row["files"] and not name.startswith("evil-"):
                rows.append(pytest.param(folder / name, id=f"{folder.name}/{name}"))
    return rows


@pytest.mark.parametrize("path", _rec001_rows())
def test_every_reader_extracts_a_passed_over_signal_file_in_a_second_pass(path, monkeypatch):
    """libarchive, the Deflate64 and LZMA ZIP path, the 7-Zip liblzma path and rars:
    with every unclaimed entry passed over, the record is the one read at once."""
    from ecgingest.archive import walker

    at_once = ecgingest.ingest(str(path))
    monkeypatch.setattr(walker, "KEEP_UNCLAIMED", 0)
    second = ecgingest.ingest(str(path))
    assert not second.errors and [r.name for r in second.records] == ["rec001"]
    for got, want in zip(second.records[0].signals, at_once.records[0].signals):
        assert got.digital.tolist() == want.digital.tolist()
    assert [s.path for s in second.skipped] == [s.path for s in at_once.skipped]


def test_7z_liblzma_entry_passed_over_keeps_the_bytes_its_look_read(monkeypatch):
    """The liblzma path decodes through a passed-over file to reach the next one; the
    entry still holds its first bytes, so detecting it again reads nothing more."""
    from ecgingest.archive import walker

    monkeypatch.setattr(walker, "KEEP_UNCLAIMED", 0)
    limits = Limits()
    budget = ByteBudget(limits)
    with open_upload(str(LOCAL / _ARM64), limits, budget) as upload:
        entries = {e.path: e for e in upload.entries() if isinstance(e, Entry)}
    blob = entries["blob.bin"]
    assert not blob.in_memory
    head = blob.head(256)
    assert not blob.in_memory and len(head) == 256
    assert budget.total < 4096  # the looks, nothing more


@pytest.mark.parametrize(("limits", "at_once"), [
    (Limits(), True),
    (Limits(ratio_grace=2000, max_ratio=1e9), False),  # compressed bytes count per read
    (Limits(max_entry_size=5000), False),  # (a byte more would exceed it)
    (Limits(max_total_size=5100), False),  # (with the 100 bytes before it)
])
def test_a_tar_entry_read_in_full_anyway_is_read_at_once_where_no_limit_can_stop_it(
        limits, at_once, monkeypatch):
    """No first look at the head of a TAR entry that is read in full whatever detection
    says, unless a limit could stop it part way: the walk then meets each limit where
    it met it reading in steps."""
    from ecgingest.archive import libarchive as la

    asked: list[tuple[str, int | None]] = []
    fill = la._EntryBytes.fill

    def recorded(self, stop):
        asked.append((self.path, stop))
        return fill(self, stop)

    monkeypatch.setattr(la._EntryBytes, "fill", recorded)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, size in (("a/r.hea", 100), ("a/r.dat", 5000)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(os.urandom(size)))
    with open_upload(buf.getvalue(), limits, ByteBudget(limits)) as upload:
        entries = [e for e in upload.entries() if isinstance(e, Entry)]
    assert [e.size for e in entries] == [100, 5000]
    first = [stop for path, stop in asked if path == "a/r.dat"][0]
    assert first == (None if at_once else 512)
