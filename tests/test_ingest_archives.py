"""End to end (INGESTION.md §1-§5): archives of real records in every writable archive type.

The archives are built here from corpus records: WFDB records in several
directories with repeated file names, two headers sharing one ``.dat``, EDF
files, junk entries, and one broken record, written with zipfile, tarfile,
zstandard/lz4 over TAR, and libarchive's 7-Zip writer. RAR cannot be written
from Python; the fixture archives (which hold the WFDB record ``rec001``)
cover it.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import libarchive
import lz4.frame
import numpy as np
import pytest
import zstandard

import ecgingest
from conftest import FIXTURES, OneWayStream, corpus_dir, requires_corpus
from ecgingest.errors import (
    EcgIngestError,
    LimitExceededError,
    MissingFileError,
    OverrideError,
    SkippedEntriesError,
    UnsupportedFormatError,
)
from ecgingest.limits import ByteBudget, Limits
from ecgingest.uploads import open_upload

WRITERS = ["zip-store", "zip-deflate", "zip-bzip2", "zip-lzma", "tar", "tar-gz", "tar-bz2",
           "tar-xz", "tar-zst", "tar-lz4", "7z-lzma2", "7z-lzma1", "7z-bzip2", "7z-deflate",
           "7z-ppmd"]


def build(kind: str, members: list[tuple[str, bytes]]) -> bytes:
    """An archive of ``members`` (in this order): zipfile, tarfile, or libarchive for 7z."""
    if kind.startswith("7z"):
        out = io.BytesIO()
        with libarchive.custom_writer(out.write, "7zip",
                                      options=f"compression={kind[3:]}") as archive:
            for name, data in members:
                archive.add_file_from_memory(name, len(data), data)
        return out.getvalue()
    if kind.startswith("zip"):
        method = {"zip-store": zipfile.ZIP_STORED, "zip-deflate": zipfile.ZIP_DEFLATED,
                  "zip-bzip2": zipfile.ZIP_BZIP2, "zip-lzma": zipfile.ZIP_LZMA}[kind]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, data in members:
                zf.writestr(name, data)
        return buf.getvalue()
    mode = {"tar": "w", "tar-gz": "w:gz", "tar-bz2": "w:bz2", "tar-xz": "w:xz",
            "tar-zst": "w", "tar-lz4": "w"}[kind]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    if kind == "tar-zst":
        return zstandard.ZstdCompressor().compress(raw)
    if kind == "tar-lz4":
        return lz4.frame.compress(raw)
    return raw


def _corpus(rel: str) -> bytes:
    root = corpus_dir()
    assert root is not None
    return (root / rel).read_bytes()


def upload_members() -> list[tuple[str, bytes]]:
    t = "wfdb/test01_00s/"
    dat = _corpus(t + "test01_00s.dat")
    return [
        ("readme.txt", b"not an ECG"),
        ("a/test01_00s.hea", _corpus(t + "test01_00s.hea")),
        ("edf/short_psg.edf", _corpus("edf/short_psg.edf")),
        ("scp/demo.scp", _corpus("scp/ecgtoolkit_Example.scp")),
        ("a/test01_00s.dat", dat),
        ("a/test01_00s_skew.hea", _corpus(t + "test01_00s_skew.hea")),  # shares the .dat
        ("b/test01_00s.hea", _corpus(t + "test01_00s.hea")),  # same names, other group
        ("b/test01_00s.dat", dat[: len(dat) // 3]),  # too short: kept, tail invalid
        ("d/100_3chan.hea", _corpus("wfdb/100_3chan/100_3chan.hea")),  # no .dat: an error
        ("c/100_3chan.hea", _corpus("wfdb/100_3chan/100_3chan.hea")),
        ("c/100_3chan.dat", _corpus("wfdb/100_3chan/100_3chan.dat")),
        ("c/junk.bin", os.urandom(300)),
        ("edf/contec.edf", _corpus("edf/contec_0000050_ecg.edf")),
    ]


def _registered() -> set[str]:
    from ecgingest.detect import single_file_formats

    return {f.name for f in single_file_formats()}


def _ref(rel: str) -> dict:
    root = corpus_dir()
    assert root is not None
    with np.load(root / rel) as z:
        return dict(z)


def _assert_wfdb_matches(record, ref_rel: str) -> None:
    ref = _ref(ref_rel)
    digital = ref["digital"]
    assert len(record.signals) == digital.shape[0]
    for i, signal in enumerate(record.signals):
        np.testing.assert_array_equal(signal.digital, digital[i])
        np.testing.assert_allclose(signal.physical, ref["physical"][i], rtol=1e-12,
                                   equal_nan=True)


def _assert_edf_matches(record, ref_rel: str) -> None:
    ref = _ref(ref_rel)
    for i, signal in enumerate(record.signals):
        np.testing.assert_array_equal(signal.digital, ref[f"digital_{i}"])
        np.testing.assert_allclose(signal.physical, ref[f"physical_{i}"], rtol=1e-12,
                                   equal_nan=True)


@requires_corpus
@pytest.mark.parametrize("kind", WRITERS)
def test_archive_of_real_records_yields_records_in_contract_order(kind):
    result = ecgingest.ingest(build(kind, upload_members()))
    names = [(r.format, r.name) for r in result.records]
    scp = "scp" in _registered()  # formats not built yet are simply not matched
    # single-file records first, in entry order; then WFDB records in header order
    assert names == [("edf", "short_psg.edf")] + [("scp", "demo.scp")] * scp + [
        ("edf", "contec.edf"), ("wfdb", "test01_00s"), ("wfdb", "test01_00s_skew"),
        ("wfdb", "test01_00s"), ("wfdb", "100_3chan")]
    by_source = {r.sources[0]: r for r in result.records}
    assert by_source["a/test01_00s.hea"].sources == ("a/test01_00s.hea", "a/test01_00s.dat")
    assert by_source["a/test01_00s_skew.hea"].sources[-1] == "a/test01_00s.dat"
    _assert_wfdb_matches(by_source["a/test01_00s.hea"], "wfdb/test01_00s/test01_00s.ref.npz")
    _assert_wfdb_matches(by_source["a/test01_00s_skew.hea"],
                         "wfdb/test01_00s/test01_00s_skew.ref.npz")
    _assert_wfdb_matches(by_source["c/100_3chan.hea"], "wfdb/100_3chan/100_3chan.ref.npz")
    _assert_edf_matches(by_source["edf/short_psg.edf"], "edf/short_psg.edf.ref.npz")
    if scp:  # same (channels x samples) reference layout as WFDB
        _assert_wfdb_matches(by_source["scp/demo.scp"], "scp/ecgtoolkit_Example.scp.ref.npz")
    assert [s.path for s in result.skipped] == ["readme.txt"] + ["scp/demo.scp"] * (not scp) + [
        "c/junk.bin"]
    assert all(s.reason for s in result.skipped)
    short = by_source["b/test01_00s.hea"]  # same file names, its own (short) .dat
    assert short.sources == ("b/test01_00s.hea", "b/test01_00s.dat")
    assert np.isnan(short.signals[0].physical[-1]) and short.warnings
    assert len(result.errors) == 1
    assert result.errors[0].paths[0] == "d/100_3chan.hea"
    assert isinstance(result.errors[0].error, MissingFileError)


@requires_corpus
def test_strict_mode_delivers_nothing_when_any_entry_fails():
    with pytest.raises(EcgIngestError):
        ecgingest.read(build("zip-deflate", upload_members()), strict=True)
    clean = [m for m in upload_members()
             if not m[0].startswith(("b/", "d/", "readme", "c/junk", "scp/"))]
    assert len(ecgingest.read(build("zip-deflate", clean), strict=True)) == 5


@requires_corpus
def test_strict_mode_rejects_skipped_entries():
    members = [("x.hea", _corpus("wfdb/100_3chan/100_3chan.hea")),
               ("x.dat", _corpus("wfdb/100_3chan/100_3chan.dat")), ("junk.txt", b"junk")]
    members[0] = ("100_3chan.hea", members[0][1])
    members[1] = ("100_3chan.dat", members[1][1])
    with pytest.raises(SkippedEntriesError):
        ecgingest.read(build("tar-gz", members), strict=True)
    assert len(ecgingest.read(build("tar-gz", members))) == 1


@requires_corpus
def test_overrides_apply_to_every_record_and_are_marked():
    records = ecgingest.read(build("tar-xz", upload_members()),
                             overrides={"patient_id": "P-17", "patient_weight": 70_000})
    assert len(records) == 6 + ("scp" in _registered())
    for record in records:
        assert record.metadata.patient_id == "P-17"
        assert record.metadata.patient_weight == 70_000
        assert {"patient_id", "patient_weight"} <= set(record.metadata.overridden)


def test_invalid_override_is_rejected_before_the_upload_is_opened(tmp_path):
    missing = tmp_path / "never-opened.zip"
    with pytest.raises(OverrideError) as info:
        ecgingest.ingest(str(missing), overrides={"patient_gender": "sometimes"})
    assert info.value.field == "patient_gender"


def test_fixture_archives_of_every_type_yield_the_wfdb_record():
    for name in ("7z-lzma2.7z", "zip-deflate64.zip"):
        result = ecgingest.ingest(str(FIXTURES / "archives" / name))
        assert [(r.format, r.name) for r in result.records] == [("wfdb", "rec001")]
        assert {s.path for s in result.skipped} == {"notes/readme.txt", "blob.bin"}
        assert not result.errors


def test_bad_entry_becomes_an_error_and_earlier_entries_are_kept():
    result = ecgingest.ingest(str(FIXTURES / "archives" / "evil-zip-truncated-mid-entry.zip"))
    assert not result.records
    # the cut entry fails; the complete header before it still reached the WFDB
    # matcher, which reports its missing signal file
    assert result.errors[0].paths == ("rec001.dat",)
    assert result.errors[1].paths[0] == "rec001.hea"
    assert isinstance(result.errors[1].error, MissingFileError)


def test_standalone_upload_matching_nothing_names_what_was_tried():
    with pytest.raises(UnsupportedFormatError) as info:
        ecgingest.read(b"just some bytes")
    assert "wfdb" in info.value.tried and "tried" in str(info.value)


def test_standalone_wfdb_header_bytes_cannot_carry_samples():
    header = b"rec 1 250 10\nrec.dat 16 200 12 0 0 0 0 I\n"
    with pytest.raises(MissingFileError):
        ecgingest.read(header)


def test_directory_is_read_like_an_archive(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("x")
    result = ecgingest.ingest(str(tmp_path))
    assert [s.path for s in result.skipped] == ["sub/notes.txt"]


@requires_corpus
def test_non_seekable_stream_upload_reads_the_same_records():
    data = build("zip-deflate", upload_members())
    from_stream = ecgingest.ingest(io.BufferedReader(OneWayStream(data)))
    from_bytes = ecgingest.ingest(data)
    assert [r.name for r in from_stream.records] == [r.name for r in from_bytes.records]


def test_multivolume_rar5_given_as_list_of_paths():
    folder = os.environ.get("ECGINGEST_ARCHIVES")
    if not folder:
        pytest.skip("set ECGINGEST_ARCHIVES to the shared archive fixtures")
    parts = sorted(str(p) for p in Path(folder).glob("rar5-filter-x86.part0*.rar"))
    result = ecgingest.ingest(parts)
    assert not result.errors
    assert len(result.skipped) == 2  # two executables, no ECG format


@requires_corpus
def test_override_wins_in_every_record_and_the_file_value_is_kept():
    members = [("one/gen.edf", _corpus("edf/test_generator.edf")),
               ("two/gen.edf", _corpus("edf/test_generator.edf"))]
    plain = ecgingest.read(build("zip-deflate", members))
    assert [r.metadata.patient_id for r in plain] == ["abcxyz99", "abcxyz99"]
    records = ecgingest.read(build("zip-deflate", members),
                             overrides={"patient_id": "H-1", "patient_gender": "FEMALE"})
    for record in records:
        assert record.metadata.patient_id == "H-1"
        assert record.metadata.patient_gender == "FEMALE"
        assert record.metadata.file_values["patient_id"] == "abcxyz99"
        assert record.metadata.file_values["patient_gender"] == "MALE"
        assert record.metadata.patient_birth_date == plain[0].metadata.patient_birth_date
        assert "patient_birth_date" not in record.metadata.overridden


# -- entries no format claims: a look at their first bytes, a full read only when used --

_PROBE = 64 * 1024


def _wfdb_record(name: str, samples: int = 30_000, seed: int = 0) -> tuple[bytes, bytes, np.ndarray]:
    """A two-signal format-16 WFDB record (header, signal file, digital samples), its
    signal file larger than what content detection looks at."""
    rng = np.random.default_rng(seed)
    digital = rng.integers(-2000, 2000, size=(samples, 2), dtype=np.int16)
    return _header(name, digital), digital.astype("<i2").tobytes(), digital.T


def _header(name: str, digital: np.ndarray) -> bytes:
    """A WFDB header for (samples x signals) int16 in one format-16 file, checksums right."""
    lines = [f"{name} {digital.shape[1]} 250 {digital.shape[0]}"]
    for i, column in enumerate(digital.T):
        check = int(column.astype(np.int64).sum()) % 65536
        lines.append(f"{name}.dat 16 200 16 0 {column[0]} {check} 0 lead{i}")
    return ("\n".join(lines) + "\n").encode()


def _py7zr(members: list[tuple[str, bytes]]) -> bytes:
    py7zr = pytest.importorskip("py7zr")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(data, name)
    return out.getvalue()


def _big_text(size: int) -> bytes:
    line = b"2026-08-22 12:00:00 INFO device log line, nothing to see here\n"
    return (line * (size // len(line) + 1))[:size]


ARCHIVERS = ["zip-deflate", "tar", "tar-gz", "tar-zst", "7z-lzma2", "py7zr"]


def _archive(kind: str, members: list[tuple[str, bytes]]) -> bytes:
    return _py7zr(members) if kind == "py7zr" else build(kind, members)


@pytest.mark.parametrize("kind", ARCHIVERS)
def test_big_entry_no_format_claims_is_skipped_without_reading_it_in_full(kind):
    """4 MiB of log text expands 1000:1: read in full it would break the ratio limit
    (and max_entry_size); looked at, it is a skipped entry like any other."""
    data = _archive(kind, [("notes/device.log", _big_text(4 << 20))])
    limits = Limits(max_entry_size=1 << 20, ratio_grace=256 << 10)
    result = ecgingest.ingest(data, limits=limits)
    assert not result.errors and not result.records
    assert [s.path for s in result.skipped] == ["notes/device.log"]
    assert "matches no format" in result.skipped[0].reason
    budget = ByteBudget(limits)  # what the walk decompressed: the first bytes only
    with open_upload(data, limits, budget) as upload:
        entries = list(upload.entries())
    assert [e.path for e in entries] == ["notes/device.log"]
    assert not entries[0].in_memory and budget.total <= _PROBE


@pytest.fixture
def pass_over_every_unclaimed_entry(monkeypatch):
    """Small unclaimed entries are passed over too (not only those beyond SMALL_ENTRY or
    KEEP_UNCLAIMED), so that small archives exercise the second pass."""
    from ecgingest.archive import walker

    monkeypatch.setattr(walker, "KEEP_UNCLAIMED", 0)


@pytest.mark.usefixtures("pass_over_every_unclaimed_entry")
@pytest.mark.parametrize("kind", ARCHIVERS)
def test_signal_files_before_their_headers_are_read_in_a_second_pass(kind):
    """.dat entries come first and no format claims them: passed over, then extracted
    once the headers after them name them; a big unused entry is never read."""
    h1, d1, ref1 = _wfdb_record("r1", seed=1)
    h2, d2, ref2 = _wfdb_record("r2", seed=2)
    members = [("set/r1.dat", d1), ("set/r2.dat", d2), ("set/device.log", _big_text(1 << 20)),
               ("set/r1.hea", h1), ("set/r2.hea", h2)]
    result = ecgingest.ingest(_archive(kind, members), limits=Limits(ratio_grace=256 << 10))
    assert not result.errors
    assert [r.name for r in result.records] == ["r1", "r2"]
    for record, ref in zip(result.records, (ref1, ref2)):
        for signal, expected in zip(record.signals, ref):
            np.testing.assert_array_equal(signal.digital, expected)
    assert [s.path for s in result.skipped] == ["set/device.log"]


@pytest.mark.usefixtures("pass_over_every_unclaimed_entry")
def test_records_asked_for_out_of_archive_order_are_all_extracted():
    """The header of directory b comes first, so b's signal file (after a's) is
    extracted before a's: the second pass starts over and still finds both."""
    ha, da, refa = _wfdb_record("a1", seed=3)
    hb, db, refb = _wfdb_record("b1", seed=4)
    members = [("a/a1.dat", da), ("b/b1.dat", db), ("b/b1.hea", hb), ("a/a1.hea", ha)]
    for kind in ("tar-gz", "zip-deflate"):
        result = ecgingest.ingest(build(kind, members))
        assert not result.errors
        assert sorted(r.name for r in result.records) == ["a1", "b1"]
        by_name = {r.name: r for r in result.records}
        np.testing.assert_array_equal(by_name["a1"].signals[1].digital, refa[1])
        np.testing.assert_array_equal(by_name["b1"].signals[0].digital, refb[0])


@pytest.mark.usefixtures("pass_over_every_unclaimed_entry")
@pytest.mark.parametrize("kind", ["tar", "tar-gz"])
def test_one_way_tar_stream_keeps_what_it_read_for_the_second_pass(kind):
    header, dat, ref = _wfdb_record("s1", seed=5)
    data = build(kind, [("s1.dat", dat), ("s1.hea", header)])
    result = ecgingest.ingest(io.BufferedReader(OneWayStream(data)))
    assert not result.errors and [r.name for r in result.records] == ["s1"]
    np.testing.assert_array_equal(result.records[0].signals[0].digital, ref[0])


@pytest.mark.usefixtures("pass_over_every_unclaimed_entry")
def test_the_ratio_limit_applies_to_a_signal_file_read_in_the_second_pass():
    header = b"z1 1 250 2000000\nz1.dat 16 200 16 0 0 0 0 I\n"
    zeros = bytes(4_000_000)  # expands about 1000:1
    data = build("zip-deflate", [("z1.dat", zeros), ("z1.hea", header)])
    result = ecgingest.ingest(data, limits=Limits(ratio_grace=1 << 20))
    assert not result.records
    assert len(result.errors) == 1 and result.errors[0].paths[0] == "z1.hea"
    error = result.errors[0].error
    assert isinstance(error, LimitExceededError) and error.limit == "max_ratio"
    assert ecgingest.read(data)[0].name == "z1"  # under the default grace it reads


def test_real_rar4_entry_of_241_mb_text_is_skipped_not_decompressed():
    folder = os.environ.get("ECGINGEST_ARCHIVES")
    if not folder:
        pytest.skip("set ECGINGEST_ARCHIVES to the shared archive fixtures")
    path = str(Path(folder) / "rar4-ppmd-lz-switch-big.rar")
    for limits in (Limits(), Limits(max_ratio=5000)):
        result = ecgingest.ingest(path, limits=limits)
        assert not result.errors and not result.records
        assert [s.path for s in result.skipped] == ["ppmd_lzss_conversion_test.txt"]
        budget = ByteBudget(limits)
        with open_upload(path, limits, budget) as upload:
            assert len(list(upload.entries())) == 1
        assert budget.total <= _PROBE


def test_small_unclaimed_entries_come_in_memory_within_the_keep_bound(monkeypatch):
    """Below SMALL_ENTRY an unclaimed entry is read at once (its bytes were decompressed
    anyway) while KEEP_UNCLAIMED allows; past the bound, entries are passed over."""
    from ecgingest.archive import walker

    header, dat, _ = _wfdb_record("k1")
    members = [(f"d{i}/k1.dat", dat) for i in range(4)] + [("big.log", _big_text(3 << 20))]
    data = build("zip-deflate", members)
    monkeypatch.setattr(walker, "KEEP_UNCLAIMED", 2 * len(dat) + 1)
    limits = Limits()
    with open_upload(data, limits, ByteBudget(limits)) as upload:
        kept = [(e.path, e.in_memory) for e in upload.entries()]
    assert kept == [("d0/k1.dat", True), ("d1/k1.dat", True), ("d2/k1.dat", False),
                    ("d3/k1.dat", False), ("big.log", False)]


# ---------------------------------------------------------------- directories and order


def _demo_members() -> dict[str, bytes]:
    from ecgingest.demo import archive

    with zipfile.ZipFile(archive()) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _wfdb(directory: str, name: str = "100_3chan") -> list[tuple[str, bytes]]:
    files = _demo_members()
    return [(f"{directory}/{name}.hea", files["recordings/100_3chan.hea"]),
            (f"{directory}/{name}.dat", files["recordings/100_3chan.dat"])]


def _built(records: list[ecgingest.Record]) -> list[tuple]:
    return [(r.name, r.sources, [s.digital.tobytes() for s in r.signals]) for r in records]


@pytest.mark.parametrize("kind", ["zip-deflate", "tar-gz"])
def test_a_directory_the_walk_comes_back_to_is_read_with_all_its_files(kind):
    """A directory's files need not be next to each other in the archive: a signal
    file that comes after another directory's record still belongs to its record."""
    a, b = _wfdb("a"), _wfdb("b")
    interleaved = [a[0], b[0], b[1], a[1]]  # a/100_3chan.dat after the walk left a/
    result = ecgingest.ingest(build(kind, interleaved))
    assert not result.errors and not result.skipped
    assert _built(result.records) == _built(ecgingest.read(build(kind, a + b)))


def test_errors_come_single_file_first_then_multi_file_in_header_order():
    files = _demo_members()
    edf = files["recordings/test_subsecond.edf"]
    upload = build("zip-deflate", [
        ("a/lonely.hea", files["recordings/100_3chan.hea"].replace(b"100_3chan", b"lonely")),
        ("b/broken.edf", edf[:300]),
        ("c/ok.edf", edf),
    ])
    result = ecgingest.ingest(upload)
    assert [e.paths[0] for e in result.errors] == ["b/broken.edf", "a/lonely.hea"]
    assert isinstance(result.errors[1].error, MissingFileError)
