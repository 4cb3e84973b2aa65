"""WFDB decoding (spec/WFDB.md, INGESTION.md §3–4): real files, header rules, bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecgingest import sources
from ecgingest._ext import wfdb as wfdb_kernel
from ecgingest.errors import (
    ChecksumError,
    EcgIngestError,
    EcgWarning,
    HeaderError,
    MissingFileError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ecgingest.formats import wfdb as fw
from ecgingest.formats._base import RANGED_READS
from ecgingest.formats.wfdb.header import FLAC_BITS
from ecgingest.sources import Entry
from test_wfdb_writer import pack, write_header

FIXTURE_HEADERS = sorted(p for p in (FIXTURES / "wfdb").rglob("*.hea")
                         if (p.with_suffix(".ref.npz")).exists())


def _pool(files: dict[str, bytes]) -> dict[str, Entry]:
    return {name: Entry.from_bytes(name, data) for name, data in files.items()}


def _read(files: dict[str, bytes], header: str, *, strict: bool = False) -> fw.GroupOutcome:
    pool = _pool(files)
    outcomes = list(fw.read_pool(pool, [header], strict=strict))
    assert len(outcomes) == 1
    return outcomes[0]


def _record(files: dict[str, bytes], header: str, **kw) -> ecgingest.Record:
    outcome = _read(files, header, **kw)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.record is not None
    return outcome.record


def check_against_reference(header: Path) -> None:
    """Digital equal, physical to float precision (NaN where NaN), rates, labels, units."""
    ref = json.loads(header.with_suffix(".ref.json").read_text())
    npz = np.load(header.with_suffix(".ref.npz"))
    [record] = ecgingest.read(header)
    assert record.name == ref["record_name"]
    assert record.labels == ref["channel_names"]
    assert [s.units for s in record.signals] == ref["units"]
    assert [s.sample_rate for s in record.signals] == pytest.approx(ref["fs"], rel=1e-12)
    assert [len(s) for s in record.signals] == ref["n_samples"]
    for i, sig in enumerate(record.signals):
        if "digital" in npz.files:
            digital = npz["digital"][i]
        elif f"digital_{i}" in npz.files:
            digital = npz[f"digital_{i}"]
        else:
            digital = None
        if digital is not None:
            np.testing.assert_array_equal(sig.digital, digital)
        physical = npz["physical"][i] if "physical" in npz.files else npz[f"physical_{i}"]
        np.testing.assert_allclose(sig.physical, physical, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(np.isnan(sig.physical), np.isnan(physical))
    expected_start = ref["start_time"]
    if expected_start is None and ref["base_time"] is not None:
        assert record.start_time == dt.time.fromisoformat(ref["base_time"])
    elif expected_start is None:
        assert record.start_time is None
    else:
        assert record.start_time == dt.datetime.fromisoformat(expected_start)


# ----------------------------------------------------------------- real files


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("wfdb"), ids=lambda r: r["path"])
def test_corpus_record_matches_reference_reader(entry):
    check_against_reference(corpus_dir() / entry["path"])


@pytest.mark.parametrize("header", FIXTURE_HEADERS, ids=lambda p: p.name)
def test_fixture_record_matches_reference_reader(header):
    check_against_reference(header)


@pytest.mark.skipif(not RANGED_READS, reason="no positioned reads on this system")
@pytest.mark.parametrize("chunk", [1, 200, 4096])
@pytest.mark.parametrize("header", FIXTURE_HEADERS, ids=lambda p: p.name)
def test_fixture_record_read_a_chunk_at_a_time_matches_reference_reader(monkeypatch, header,
                                                                        chunk):
    # every signal file read from disk in chunks (of whole 6-frame steps, however small
    # the chunk asked for): each format, skew, several samples per frame, byte offsets
    monkeypatch.setattr(sources, "MAP_FROM", 1)  # no file read whole with its head
    monkeypatch.setattr(fw.signals, "READ_BY_CHUNKS_FROM", 1)
    monkeypatch.setattr(fw.signals, "READ_CHUNK_BYTES", chunk)
    reads = []
    real_read = wfdb_kernel.read_group

    def counted(*args):
        reads.append(args[4])
        return real_read(*args)

    monkeypatch.setattr(wfdb_kernel, "read_group", counted)
    check_against_reference(header)
    formats = {s.fmt for s in ecgingest.read_wfdb_header(header).signals} - {0, *FLAC_BITS}
    assert set(reads) == formats


def test_fixture_records_verify_their_header_checksums():
    for header in FIXTURE_HEADERS:
        [record] = ecgingest.read(header)
        assert not [w for w in record.warnings if "checksum" in w], header
        specs = record.extras["signal_specs"]
        assert all(s["checksum"] is None or s["computed_checksum"] == s["checksum"] % 65536
                   for s in specs)


def test_fixed_layout_multi_segment_concatenates_its_segments():
    folder = FIXTURES / "wfdb" / "multiseg_041s"
    [record] = ecgingest.read(folder / "041s.hea")
    assert record.format_detail == "WFDB multi-segment (fixed layout)"
    assert record.start_time == dt.datetime(1994, 10, 26, 8, 26, 4)
    ref = json.loads((folder / "041s.ref.json").read_text())
    assert record.labels == ref["channel_names"]
    assert [s.sample_rate for s in record.signals] == ref["fs"]
    [seg1] = ecgingest.read(folder / "041s01.hea")
    [seg2] = ecgingest.read(folder / "041s02.hea")
    for merged, a, b in zip(record.signals, seg1.signals, seg2.signals):
        np.testing.assert_array_equal(merged.digital, np.concatenate([a.digital, b.digital]))
        np.testing.assert_allclose(merged.physical, np.concatenate([a.physical, b.physical]),
                                   rtol=1e-12)
    assert not record.warnings and not seg1.warnings and not seg2.warnings


def test_directory_upload_consumes_segment_headers_and_orders_by_header():
    result = ecgingest.ingest(FIXTURES / "wfdb" / "multiseg_041s")
    assert [r.name for r in result.records] == ["041s"]
    assert not result.errors
    assert set(result.records[0].sources) == {"041s.hea", "041s01.hea", "041s01.dat",
                                              "041s02.hea", "041s02.dat"}
    assert [s.path for s in result.skipped] == ["041s.ref.json"]


def test_docs_examples_run_against_the_fixtures(monkeypatch):
    import doctest

    root = FIXTURES.parent
    monkeypatch.chdir(root)
    failures, tried = doctest.testfile(str(root / "docs" / "wfdb.md"), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 10 and failures == 0


def test_fixtures_readme_names_every_fixture_file():
    readme = (FIXTURES / "wfdb" / "README.md").read_text()
    assert "MIT" in readme and "6850ad1aa0c1fcb2282b3625f767de98396cf740" in readme
    for path in (FIXTURES / "wfdb").rglob("*"):
        data_file = path.suffix in (".hea", ".dat") or path.name.startswith(("binformats.d",
                                                                             "flacformats.d"))
        if path.is_file() and data_file:
            assert f"`{path.relative_to(FIXTURES / 'wfdb').as_posix()}`" in readme, path


def test_concurrent_reads_in_threads_give_identical_records():
    from concurrent.futures import ThreadPoolExecutor

    headers = FIXTURE_HEADERS * 3
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda h: ecgingest.read(h)[0], headers))
    for header, record in zip(headers, results):
        [alone] = ecgingest.read(header)
        for a, b in zip(alone.signals, record.signals):
            np.testing.assert_array_equal(a.digital, b.digital)


def test_reading_digital_does_not_compute_physical():
    [record] = ecgingest.read(FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea")
    assert all("physical" not in vars(s) for s in record.signals)


# ----------------------------------------------------------------- header rules


def test_header_defaults_follow_wfdb_rules():
    hdr = fw.parse_header(b"rec 3\nrec.dat 212\nrec.dat 80 0\nrec.dat 16 100(5)/uV 0 7\n")
    assert hdr.frame_frequency == 250.0 and hdr.counter_frequency == 250.0
    assert hdr.n_frames is None and hdr.start_time is None
    s0, s1, s2 = hdr.signals
    assert (s0.gain, s0.uncalibrated, s0.units, s0.adc_resolution) == (200.0, True, "mV", 12)
    assert s0.description == "record rec, signal 0" and s0.checksum is None
    assert (s1.adc_resolution, s1.uncalibrated) == (8, True)
    # adcres 0 -> format default; initial value defaults to the ADC zero
    assert (s2.gain, s2.baseline, s2.units, s2.adc_resolution, s2.adc_zero,
            s2.initial_value) == (100.0, 5, "uV", 12, 7, 7)


def test_repeated_signal_line_text_keeps_each_headers_file_name_and_fields():
    # batches repeat the text after the file name; each header keeps its own names
    lines = "16 200/mV 16 0 -5 1234 0 I\n"
    first = fw.parse_header(f"a 1 500 10\na.dat {lines}".encode()).signals[0]
    second = fw.parse_header(f"b 1 500 10\nb.dat {lines}".encode()).signals[0]
    assert (first.file_name, second.file_name) == ("a.dat", "b.dat")
    assert first[1:] == second[1:]
    assert (second.fmt, second.gain, second.adc_resolution, second.initial_value,
            second.checksum, second.description) == (16, 200.0, 16, -5, 1234, "I")
    assert type(second) is fw.WfdbSignalSpec


def test_repeated_signal_line_without_description_names_its_own_record():
    first = fw.parse_header(b"a 1 500 10\na.dat 16 200/mV 16 0 0 0 0\n").signals[0]
    second = fw.parse_header(b"b 1 500 10\nb.dat 16 200/mV 16 0 0 0 0\n").signals[0]
    assert (first.description, second.description) == ("record a, signal 0",
                                                        "record b, signal 0")


def test_baseline_defaults_to_adc_zero():
    hdr = fw.parse_header(b"r 1 360 10\nr.dat 16 200/mV 16 1024\n")
    assert hdr.signals[0].baseline == 1024 and hdr.signals[0].initial_value == 1024


@pytest.mark.parametrize("token, expected", [("360", 360.0), ("360.0", 360.0),
                                             ("3.6e2", 360.0),
                                             ("0.0166666666667", 0.0166666666667)])
def test_frequency_accepts_any_float_form(token, expected):
    assert fw.parse_header(f"r 0 {token}\n".encode()).frame_frequency == expected


def test_counter_frequency_and_base_counter():
    hdr = fw.parse_header(b"r 0 62.4725/999.56(12.5) 100\n")
    assert (hdr.counter_frequency, hdr.base_counter) == (999.56, 12.5)


def test_format_suffixes_samples_per_frame_skew_offset():
    hdr = fw.parse_header(b"r 1 500 10\nr.dat 16x4:3+24 1.052e+04(-7)/mmHg 12 0 0 -22131 0 A B C\n")
    s = hdr.signals[0]
    assert (s.fmt, s.samples_per_frame, s.skew, s.byte_offset) == (16, 4, 3, 24)
    assert (s.gain, s.baseline, s.units, s.checksum, s.description) == (
        10520.0, -7, "mmHg", -22131, "A B C")
    assert hdr.sample_rates == (2000.0,)


def test_crlf_tabs_blank_lines_and_leading_comments_are_tolerated():
    text = b"# made by hand\r\n\r\nr\t1  360\t5 \r\n r.dat\t16 200 16 0 0 0 0 I\r\n#age: 3\r\n"
    hdr = fw.parse_header(text)
    assert hdr.record_name == "r" and hdr.signals[0].description == "I"
    assert hdr.comments == ("made by hand", "age: 3") and hdr.info == ("age: 3",)


def test_time_only_gives_time_of_day_and_date_gives_datetime():
    assert fw.parse_header(b"r 0 360 1 9:5:3\n").start_time == dt.time(9, 5, 3)
    assert fw.parse_header(b"r 0 360 1 10:44:18.529 04/05/2704\n").start_time == dt.datetime(
        2704, 5, 4, 10, 44, 18, 529000)


def test_odd_date_separator_is_read_with_a_warning():
    hdr = fw.parse_header(b"r 0 360 1 12:00:00 15.08.1994\n")
    assert hdr.base_date == dt.date(1994, 8, 15)
    assert any("separators" in w for w in hdr.warnings)


@pytest.mark.parametrize("text, field", [
    (b"", "record line"),
    (b"# only a comment\n", "record line"),
    (b"r x 360\n", "number of signals"),
    (b"r 2 360 10\nr.dat 16\n", "signal lines"),
    (b"r 1 abc\nr.dat 16\n", "sampling frequency"),
    (b"r 1 360 -5\nr.dat 16\n", "number of samples"),
    (b"r 1 360 5\nr.dat 16 200 zz\n", "ADC resolution"),
    (b"r/3 1 360 5\ns1 5\n", "segment lines"),
])
def test_malformed_headers_raise_header_error_naming_the_field(text, field):
    with pytest.raises(HeaderError) as info:
        fw.parse_header(text)
    assert info.value.field == field


def test_unknown_signal_format_is_unsupported_feature():
    with pytest.raises(UnsupportedFeatureError, match="format 999"):
        fw.parse_header(b"r 1 360 5\nr.dat 999\n")


def test_read_wfdb_header_reads_no_signal_file(tmp_path):
    (tmp_path / "r.hea").write_bytes(b"r 2 360 1000 08:00:00 01/02/2003\n"
                                     b"missing.dat 212 200 11 1024 0 0 0 I\n"
                                     b"missing.dat 212 200 11 1024 0 0 0 II\n")
    hdr = ecgingest.read_wfdb_header(tmp_path / "r.hea")
    assert isinstance(hdr, ecgingest.WfdbHeader)
    assert hdr.labels == ("I", "II") and hdr.n_frames == 1000
    assert hdr.start_time == dt.datetime(2003, 2, 1, 8)
    with pytest.raises(AttributeError):
        hdr.n_frames = 3  # frozen
    assert ecgingest.read_wfdb_header(b"r 0 100\n").frame_frequency == 100.0


# ----------------------------------------------------------------- decoding rules


def test_skew_shifts_signal_and_marks_overrun_invalid():
    a = np.arange(10, dtype=np.int16)
    b = np.arange(100, 110, dtype=np.int16)
    data = pack(16, [a, b], [1, 1])
    hea = write_header("r", [("r.dat", "16", a), ("r.dat", "16:3", b)], nframes=10)
    rec = _record({"r.hea": hea, "r.dat": data}, "r.hea")
    np.testing.assert_array_equal(rec.signals[0].digital, a)
    np.testing.assert_array_equal(rec.signals[1].digital[:7], b[3:])
    assert np.isnan(rec.signals[1].physical[7:]).all()
    assert not np.isnan(rec.signals[1].physical[:7]).any()


def test_skew_of_multi_sample_frames_rounds_to_whole_frames():
    a = np.arange(12, dtype=np.int16)  # 6 frames of 2 samples
    b = np.arange(50, 56, dtype=np.int16)
    hea = write_header("r", [("r.dat", "16x2:3", a), ("r.dat", "16", b)], nframes=6)
    rec = _record({"r.hea": hea, "r.dat": pack(16, [a, b], [2, 1])}, "r.hea")
    # skew 3 samples at 2 samples per frame -> round(1.5) = 2 frames = 4 samples
    np.testing.assert_array_equal(rec.signals[0].digital[:8], a[4:])
    assert np.isnan(rec.signals[0].physical[8:]).all()
    assert rec.signals[0].sample_rate == 200.0 and rec.signals[1].sample_rate == 100.0
    np.testing.assert_array_equal(rec.signals[1].digital, b)


def test_flac_signal_file_round_trip():
    import io

    import soundfile

    a = np.array([0, 1, -32767, 32767, 5, 6, 7, 8], dtype=np.int16)  # 4 frames x 2
    b = np.array([-5, -6, 100, 200, 9, 9, -1, 0], dtype=np.int16)
    frames = np.stack([a, b], axis=1)  # FLAC sample f*spf+k of channel c
    buf = io.BytesIO()
    soundfile.write(buf, frames, 96000, format="FLAC", subtype="PCM_16")
    hea = write_header("r", [("r.flac", "516x2", a), ("r.flac", "516x2", b)], nframes=4)
    rec = _record({"r.hea": hea, "r.flac": buf.getvalue()}, "r.hea", strict=True)
    np.testing.assert_array_equal(rec.signals[0].digital, a)
    np.testing.assert_array_equal(rec.signals[1].digital, b)
    assert rec.signals[0].sample_rate == 200.0 and not rec.warnings


def test_byte_offset_skips_leading_bytes():
    a = np.array([1, -2, 3, -4], dtype=np.int16)
    data = b"HEADERBYTES!" + pack(16, [a], [1])
    hea = write_header("r", [("r.mat", "16+12", a)], nframes=4)
    rec = _record({"r.hea": hea, "r.mat": data}, "r.hea")
    np.testing.assert_array_equal(rec.signals[0].digital, a)


def test_missing_sample_count_comes_from_file_size():
    a = np.arange(7, dtype=np.int16)
    b = -np.arange(7, dtype=np.int16)
    hea = b"r 2 100\nr.dat 212 200 12 0 0 0 0 a\nr.dat 212 200 12 0 0 0 0 b\n"
    rec = _record({"r.hea": hea, "r.dat": pack(212, [a, b], [1, 1])}, "r.hea")
    np.testing.assert_array_equal(rec.signals[0].digital, a)
    np.testing.assert_array_equal(rec.signals[1].digital, b)
    assert not rec.warnings  # no checksum test without a sample count


def test_checksum_mismatch_is_a_warning_lenient_and_an_error_strict():
    a = np.arange(5, dtype=np.int16)
    hea = write_header("r", [("r.dat", "16", a)], nframes=5, checksums=[123])
    files = {"r.hea": hea, "r.dat": pack(16, [a], [1])}
    rec = _record(files, "r.hea")
    assert any("checksum" in w for w in rec.warnings)
    outcome = _read(files, "r.hea", strict=True)
    assert isinstance(outcome.error, ChecksumError)


def test_unsigned_and_signed_checksums_compare_modulo_65536():
    a = np.full(4, -10000, dtype=np.int16)  # sum -40000 == 25536 (mod 2**16)
    for check in (-40000, 25536):
        hea = write_header("r", [("r.dat", "16", a)], nframes=4, checksums=[check])
        rec = _record({"r.hea": hea, "r.dat": pack(16, [a], [1])}, "r.hea")
        assert not rec.warnings


def test_uncalibrated_gain_uses_200_with_a_warning():
    a = np.array([200, 400], dtype=np.int16)
    rec = _record({"r.hea": b"r 1 100 2\nr.dat 16 0 16 0 0 600 0 x\n",
                   "r.dat": pack(16, [a], [1])}, "r.hea")
    np.testing.assert_allclose(rec.signals[0].physical, [1.0, 2.0])
    assert any("uncalibrated" in w for w in rec.warnings)


def test_invalid_codes_become_nan_in_physical():
    a = np.array([-32768, 5, -32768], dtype=np.int16)
    rec = _record({"r.hea": write_header("r", [("r.dat", "16", a)], nframes=3),
                   "r.dat": pack(16, [a], [1])}, "r.hea")
    np.testing.assert_array_equal(rec.signals[0].digital, a)
    assert np.isnan(rec.signals[0].physical).tolist() == [True, False, True]


def test_smallest_fitting_dtypes():
    for fmt, dtype in (("212", np.int16), ("16", np.int16), ("8", np.int16), ("24", np.int32),
                       ("32", np.int32), ("311", np.int16)):
        a = np.zeros(6, dtype=np.int64)
        rec = _record({"r.hea": write_header("r", [("r.dat", fmt, a)], nframes=6),
                       "r.dat": pack(int(fmt), [a], [1])}, "r.hea")
        assert rec.signals[0].digital.dtype == dtype, fmt
        assert not rec.signals[0].digital.flags.writeable


def test_record_name_differing_from_file_name_warns():
    a = np.zeros(2, dtype=np.int16)
    rec = _record({"x.hea": write_header("other", [("r.dat", "16", a)], nframes=2),
                   "r.dat": pack(16, [a], [1])}, "x.hea")
    assert rec.name == "other"
    assert any("differs from the file name" in w for w in rec.warnings)


def test_record_extras_carry_header_readings():
    [rec] = ecgingest.read(FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea")
    spec = rec.extras["signal_specs"][0]
    assert set(spec) >= {"adc_resolution", "adc_zero", "initial_value", "checksum",
                         "block_size", "description", "byte_offset", "skew"}
    assert rec.counter_frequency == rec.frame_frequency == 360.0
    assert rec.base_counter == 0.0


# ----------------------------------------------------------------- bad input


def test_missing_signal_file_is_an_error_outcome_naming_the_file():
    outcome = _read({"r.hea": b"r 1 360 10\nr.dat 16\n"}, "r.hea")
    assert isinstance(outcome.error, MissingFileError)
    assert "r.dat" in str(outcome.error) and "'r'" in str(outcome.error)


def test_short_signal_file_warns_lenient_and_fails_strict():
    a = np.arange(10, dtype=np.int16)
    files = {"r.hea": write_header("r", [("r.dat", "16", a)], nframes=10),
             "r.dat": pack(16, [a], [1])[:8]}
    rec = _record(files, "r.hea")
    assert len(rec.signals[0]) == 10
    np.testing.assert_array_equal(rec.signals[0].digital[:4], a[:4])
    assert np.isnan(rec.signals[0].physical[4:]).all()
    assert any("ends after" in w for w in rec.warnings)
    outcome = _read(files, "r.hea", strict=True)
    assert isinstance(outcome.error, TruncatedError)


@pytest.mark.parametrize("by_chunks", [False, True], ids=["in memory", "from disk by chunks"])
@pytest.mark.parametrize("nsig", [1, 3, 5, 12])
def test_format_212_file_cut_after_an_odd_count_of_whole_frames_keeps_every_sample(
        nsig, by_chunks, monkeypatch, tmp_path):
    # whole frames of an odd signal count can end in the middle of a byte group; the
    # samples after them (a partial frame, a partial last group) are read from there
    if by_chunks:
        if not RANGED_READS:
            pytest.skip("no positioned reads on this system")
        monkeypatch.setattr(sources, "MAP_FROM", 1)
        monkeypatch.setattr(fw.signals, "READ_BY_CHUNKS_FROM", 1)
        monkeypatch.setattr(fw.signals, "READ_CHUNK_BYTES", 7)
    rng = np.random.default_rng(nsig)
    nframes = 40
    signals = [rng.integers(-2048, 2048, nframes, dtype=np.int16) for _ in range(nsig)]
    full = pack(212, signals, [1] * nsig)
    for cut in range(len(full) - 8, len(full)):
        files = {"r.hea": write_header("r", [("r.dat", "212", a) for a in signals],
                                       nframes=nframes),
                 "r.dat": full[:cut]}
        if by_chunks:
            for name, data in files.items():
                (tmp_path / name).write_bytes(data)
            with pytest.warns(EcgWarning):
                [rec] = ecgingest.read(tmp_path / "r.hea")
        else:
            rec = _record(files, "r.hea")
        present = cut * 2 // 3  # flat samples whose 12 bits all lie in the file
        for s, (sig, want) in enumerate(zip(rec.signals, signals)):
            stored = (present - s + nsig - 1) // nsig  # flat samples s, s + nsig, ...
            np.testing.assert_array_equal(sig.digital[:stored], want[:stored])


def test_signal_file_without_any_sample_is_a_truncated_error():
    outcome = _read({"r.hea": b"r 1 100 10\nr.dat 16+100\n", "r.dat": b"\0" * 40}, "r.hea")
    assert isinstance(outcome.error, TruncatedError) and "none of the 10" in str(outcome.error)


def test_absurd_sample_count_is_refused_before_allocating():
    outcome = _read({"r.hea": b"r 12 500 999999999999\n" + b"r.dat 16\n" * 12,
                     "r.dat": b"\0" * 48}, "r.hea")
    assert isinstance(outcome.error, HeaderError)
    assert "number of samples" == outcome.error.field


@pytest.mark.parametrize("token, field", [("16:99999999999999999999", "skew"),
                                          ("16+99999999999999999999", "byte offset"),
                                          ("16x0", "samples per frame"),
                                          ("8 200 12 0 99999999999", "initial value")])
def test_out_of_range_format_suffixes_are_header_errors(token, field):
    outcome = _read({"r.hea": f"r 1 100 2\nr.dat {token}\n".encode(), "r.dat": b"\0" * 4},
                    "r.hea")
    assert isinstance(outcome.error, HeaderError) and outcome.error.field == field


def test_one_broken_record_does_not_take_down_the_others():
    a = np.arange(4, dtype=np.int16)
    pool = _pool({"a.hea": write_header("a", [("a.dat", "16", a)], nframes=4),
                  "a.dat": pack(16, [a], [1]),
                  "b.hea": b"b 1 360 4\nnothere.dat 16\n",
                  "c.hea": b"garbage\n"})
    outcomes = list(fw.read_pool(pool, ["a.hea", "b.hea", "c.hea"]))
    assert [o.anchor for o in outcomes] == ["a.hea", "b.hea", "c.hea"]
    assert outcomes[0].record is not None
    assert isinstance(outcomes[1].error, MissingFileError)
    assert isinstance(outcomes[2].error, HeaderError)
    assert outcomes[0].files == ("a.hea", "a.dat")


def test_two_headers_may_share_one_signal_file():
    a = np.arange(6, dtype=np.int16)
    b = np.arange(10, 16, dtype=np.int16)
    pool = _pool({"x.hea": write_header("x", [("d.dat", "16", a), ("d.dat", "16", b)], nframes=6),
                  "y.hea": write_header("y", [("d.dat", "16", a), ("d.dat", "16:1", b)],
                                        nframes=6),
                  "d.dat": pack(16, [a, b], [1, 1])})
    x, y = fw.read_pool(pool, ["x.hea", "y.hea"])
    assert x.files == ("x.hea", "d.dat") and y.files == ("y.hea", "d.dat")
    np.testing.assert_array_equal(x.record.signals[1].digital, b)
    np.testing.assert_array_equal(y.record.signals[1].digital[:5], b[1:])


class _Untouchable(Entry):
    def read(self):
        raise AssertionError(f"{self.path} was read although no record needs it")

    def head(self, n=0):
        raise AssertionError(f"{self.path} was read although no record needs it")


def test_pool_entries_no_record_needs_are_never_read():
    a = np.arange(4, dtype=np.int16)
    pool = _pool({"a.hea": write_header("a", [("a.dat", "16", a)], nframes=4),
                  "a.dat": pack(16, [a], [1])})
    pool["big.bin"] = _Untouchable("big.bin", 10**9)
    [outcome] = fw.read_pool(pool, ["a.hea"])
    assert outcome.record is not None


def test_header_content_is_recognised_without_a_hea_name():
    # what the pipeline uses to refuse a header uploaded without its signal files
    assert fw.looks_like_header(Entry.from_bytes("upload", b"# c\nr 1 360 10\nr.dat 16\n"))
    assert fw.looks_like_header(Entry.from_bytes("upload", b"m/2 1 360 10\ns1 5\ns2 5\n"))
    assert not fw.looks_like_header(Entry.from_bytes("upload", b"\x00\x01binary"))


# ----------------------------------------------------------------- multi-segment


def _variable_layout_pool() -> dict[str, bytes]:
    s1a = np.array([10, 20, -128, 40], dtype=np.int64)
    s1b = np.array([1, 2, 3, 4], dtype=np.int64)
    s2a = np.array([5, 6], dtype=np.int64)
    return {
        "m.hea": b"m/4 2 100 9 10:00:00\nlay 0\nseg1 4\n~ 3\nseg2 2\n",
        "lay.hea": b"lay 2 100 0\n~ 0 100(0)/mV 8 0 0 0 0 II\n~ 0 10(-5)/mmHg 8 0 0 0 0 ABP\n",
        "seg1.hea": write_header("seg1", [("seg1.dat", "80", s1a, "50(0)/mV", "II"),
                                          ("seg1.dat", "80", s1b, "10(-5)/mmHg", "ABP")],
                                 nframes=4),
        "seg1.dat": pack(80, [s1a, s1b], [1, 1]),
        "seg2.hea": write_header("seg2", [("seg2.dat", "80", s2a, "100/mV", "II")], nframes=2),
        "seg2.dat": pack(80, [s2a], [1]),
    }


def test_variable_layout_merges_physical_per_segment_gain_with_gaps_invalid():
    files = _variable_layout_pool()
    pool = _pool(files)
    outcomes = list(fw.read_pool(pool, ["lay.hea", "m.hea", "seg1.hea", "seg2.hea"]))
    assert [o.anchor for o in outcomes] == ["m.hea"]  # segment and layout headers consumed
    rec = outcomes[0].record
    assert rec is not None and rec.format_detail == "WFDB multi-segment (variable layout)"
    assert set(outcomes[0].files) == set(files)
    assert rec.start_time == dt.time(10, 0, 0)
    ii, abp = rec.signals
    nan = np.nan
    np.testing.assert_allclose(ii.physical, [0.2, 0.4, nan, 0.8, nan, nan, nan, 0.05, 0.06])
    np.testing.assert_allclose(abp.physical, [0.6, 0.7, 0.8, 0.9] + [nan] * 5)
    # digital rescaled to the layout gain as the WFDB C library does
    np.testing.assert_array_equal(ii.digital[:2], [20, 40])
    assert ii.invalid.tolist() == [False, False, True, False, True, True, True, False, False]


@given(st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_multi_segment_pools_end_in_a_record_or_a_typed_error(data):
    files = _variable_layout_pool()
    target = data.draw(st.sampled_from(sorted(files)))
    blob = bytearray(files[target])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if data.draw(st.booleans()) and blob:
            blob[pos] = data.draw(st.sampled_from(b"0123456789 ~/x:+()#\n-"))
        else:
            del blob[pos:pos + data.draw(st.integers(1, 5))]
    files[target] = bytes(blob)
    for outcome in fw.read_pool(_pool(files), sorted(n for n in files if n.endswith(".hea")),
                                strict=data.draw(st.booleans())):
        assert (outcome.record is None) != (outcome.error is None)
        assert outcome.error is None or isinstance(outcome.error, EcgIngestError)
        assert "could not be decoded (" not in str(outcome.error)  # no safety-net catch
        if outcome.record is not None:
            for sig in outcome.record.signals:
                assert sig.physical.shape == sig.digital.shape


def test_multi_segment_with_missing_segment_header_is_an_error():
    outcome = _read({"m.hea": b"m/2 1 100 4\ns1 2\ns2 2\n"}, "m.hea")
    assert isinstance(outcome.error, MissingFileError) and "s1.hea" in str(outcome.error)


def test_fixed_layout_null_segment_is_invalid():
    a = np.arange(3, dtype=np.int16)
    files = {"m.hea": b"m/2 1 100 5\ns1 3\n~ 2\n",
             "s1.hea": write_header("s1", [("s1.dat", "212", a)], nframes=3),
             "s1.dat": pack(212, [a], [1])}
    rec = _record(files, "m.hea")
    assert rec.format_detail == "WFDB multi-segment (fixed layout)"
    np.testing.assert_array_equal(rec.signals[0].digital[:3], a)
    assert np.isnan(rec.signals[0].physical[3:]).all()


def test_unsupported_is_not_raised_for_every_listed_format():
    for fmt in (8, 16, 24, 32, 61, 80, 160, 212, 310, 311, 508, 516, 524, 0):
        fw.parse_header(f"r 1 100 1\nr.dat {fmt}\n".encode())


def test_errors_are_ecgingest_errors():
    assert issubclass(HeaderError, EcgIngestError)


# ----------------------------------------------------------------- pooled memory


_SENTINEL = 0x7B
_FLAC_SUBTYPES = {508: "PCM_S8", 516: "PCM_16", 524: "PCM_24"}


def _truncated_record(fmt: int) -> dict[str, bytes]:
    """Two signals of ``fmt`` whose file holds 5 of the 40 frames the header declares."""
    a = np.array([3, -2, 5, 0, 7], dtype=np.int64)
    b = np.array([-1, 4, 4, 2, -6], dtype=np.int64)
    if fmt in _FLAC_SUBTYPES:
        import io

        import soundfile

        buf = io.BytesIO()
        soundfile.write(buf, np.stack([a, b], axis=1).astype(np.int16 if fmt != 524 else np.int32)
                        * (256 if fmt == 524 else 1), 96000, format="FLAC",
                        subtype=_FLAC_SUBTYPES[fmt])
        data = buf.getvalue()
    elif fmt == 0:
        data = b""
    else:
        data = pack(fmt, [a, b], [1, 1])
    header = write_header("r", [("r.dat" if fmt else "~", str(fmt), a), ("r.dat" if fmt else "~",
                                                                         str(fmt), b)],
                          nframes=40)
    return {"r.hea": header, "r.dat": data}


@pytest.fixture
def poisoned_pool():
    """Recycled pool blocks full of a sentinel byte, as an earlier upload leaves them."""
    from ecgingest._memory import (
        Arena,
        aligned_empty,
        array_pool_bytes,
        set_array_pool_limit,
    )

    previous = set_array_pool_limit(64 * 2**20)
    blocks = [aligned_empty(Arena.BLOCK, np.uint8, pooled=True) for _ in range(8)]
    for block in blocks:
        block.fill(_SENTINEL)
    del blocks, block
    assert array_pool_bytes() >= Arena.BLOCK
    yield
    set_array_pool_limit(0)
    set_array_pool_limit(previous)


@pytest.mark.parametrize("fmt", sorted(fw.header.SUPPORTED))
def test_no_sample_of_a_truncated_file_comes_from_recycled_memory(fmt, poisoned_pool):
    from ecgingest._memory import Arena
    from ecgingest.formats._base import DecodeContext

    files = _truncated_record(fmt)
    ctx = DecodeContext("wfdb", arena=Arena())
    [outcome] = fw.read_pool(_pool(files), ["r.hea"], ctx)
    assert outcome.error is None, outcome.error
    for sig in outcome.record.signals:
        assert len(sig) == 40
        as_bytes = sig.digital.view(np.uint8).reshape(-1, sig.digital.itemsize)
        assert not (as_bytes == _SENTINEL).all(axis=1).any(), (fmt, sig.digital)
        assert np.isnan(sig.physical[5:]).all()  # samples past the data: invalid
        if fmt in (8, 0):  # no invalid code: the C library's WFDB_INVALID_SAMPLE
            assert (sig.digital[5:] == (-32768 if fmt else 0)).all()
    if fmt:
        strict = DecodeContext("wfdb", strict=True, arena=Arena())
        [outcome] = fw.read_pool(_pool(files), ["r.hea"], strict)
        assert isinstance(outcome.error, TruncatedError)


# ----------------------------------------------------------------- records never lost


def _segment_files() -> dict[str, bytes]:
    a = np.arange(6, dtype=np.int16)
    return {"s.hea": write_header("s", [("s.dat", "16", a)], nframes=6),
            "s.dat": pack(16, [a], [1])}


def test_a_failing_multi_segment_record_leaves_its_segments_as_records():
    files = _segment_files()
    files["m.hea"] = b"m/1 1 100 5\ns 5\n"  # 5 frames: the segment has 6
    outcomes = list(fw.read_pool(_pool(files), ["m.hea", "s.hea"]))
    assert [o.anchor for o in outcomes] == ["m.hea", "s.hea"]
    assert isinstance(outcomes[0].error, HeaderError)
    assert outcomes[1].record is not None and len(outcomes[1].record.signals[0]) == 6


def test_a_built_multi_segment_record_consumes_its_segment_headers():
    files = _segment_files()
    files["m.hea"] = b"m/2 1 100 12\ns 6\ns 6\n"
    [outcome] = fw.read_pool(_pool(files), ["s.hea", "m.hea"])
    assert outcome.anchor == "m.hea" and len(outcome.record.signals[0]) == 12
    assert set(outcome.files) == {"m.hea", "s.hea", "s.dat"}


@pytest.mark.parametrize("headers", [
    {"a.hea": b"a/1 1 100 5\nb 5\n", "b.hea": b"b/1 1 100 5\na 5\n"},
    {"m.hea": b"m/1 1 100 5\nm 5\n"},
    {"m.hea": b"m/2 1 100 5\ns 3\nm 2\n", "s.hea": b"s 1 100 3\ns.dat 16\n",
     "s.dat": b"\0" * 6},
], ids=["cycle", "self", "self-after-segment"])
def test_headers_naming_each_other_as_segments_are_typed_errors(headers):
    names = sorted(n for n in headers if n.endswith(".hea"))
    outcomes = {o.anchor: o for o in fw.read_pool(_pool(headers), names)}
    for name, content in headers.items():
        if b"/" in content.split(b"\n")[0]:
            assert isinstance(outcomes[name].error, HeaderError), name
            assert "multi-segment" in str(outcomes[name].error)
    if "s.hea" in headers:
        assert outcomes["s.hea"].record is not None


def test_a_layout_header_used_as_an_ordinary_segment_is_a_typed_error():
    files = _variable_layout_pool()
    files["bad.hea"] = b"bad/2 2 100 4\nseg1 4\nlay 0\n"
    outcomes = {o.anchor: o for o in fw.read_pool(_pool(files), ["bad.hea", "m.hea"])}
    assert isinstance(outcomes["bad.hea"].error, HeaderError)
    assert "layout header" in str(outcomes["bad.hea"].error)
    assert outcomes["m.hea"].record is not None


def test_segment_count_is_bounded_by_limits():
    from ecgingest.errors import LimitExceededError
    from ecgingest.formats._base import DecodeContext
    from ecgingest.limits import Limits

    files = _segment_files()
    files["m.hea"] = b"m/8 1 100 48\n" + b"s 6\n" * 8
    ctx = DecodeContext("wfdb", limits=Limits(max_entries=5))
    outcomes = list(fw.read_pool(_pool(files), ["m.hea"], ctx))
    assert isinstance(outcomes[0].error, LimitExceededError)
    assert outcomes[0].error.limit == "max_entries"


# ----------------------------------------------------------------- decoded output budget


def _budget_ctx(limit: int):
    from ecgingest.formats._base import DecodeContext
    from ecgingest.limits import Limits

    return DecodeContext("wfdb", limits=Limits(max_decoded_size=limit))


def test_headers_sharing_one_signal_file_count_it_once_per_use():
    from ecgingest.errors import LimitExceededError

    a = np.arange(100, dtype=np.int16)  # 200 decoded bytes per record
    files = {"d.dat": pack(16, [a], [1])}
    names = [f"h{i}.hea" for i in range(10)]
    for name in names:
        files[name] = write_header(name[:-4], [("d.dat", "16", a)], nframes=100)
    outcomes = list(fw.read_pool(_pool(files), names, _budget_ctx(1000)))
    assert [o.record is not None for o in outcomes] == [True] * 5 + [False] * 5
    assert all(isinstance(o.error, LimitExceededError) for o in outcomes[5:])


def test_a_segment_repeated_many_times_counts_each_time():
    from ecgingest.errors import LimitExceededError

    files = _segment_files()  # 6 frames of int16
    files["m.hea"] = b"m/100 1 100 600\n" + b"s 6\n" * 100
    [outcome] = fw.read_pool(_pool(files), ["m.hea"], _budget_ctx(1000))
    assert isinstance(outcome.error, LimitExceededError)
    [outcome] = fw.read_pool(_pool(files), ["m.hea"], _budget_ctx(10_000))
    assert outcome.record is not None and len(outcome.record.signals[0]) == 600


def test_signals_alternating_between_files_count_every_group():
    from ecgingest.errors import LimitExceededError

    a = np.arange(50, dtype=np.int16)
    files = {"x.dat": pack(16, [a], [1]), "y.dat": pack(16, [a], [1])}
    specs = [("x.dat" if i % 2 == 0 else "y.dat", "16", a) for i in range(20)]
    files["r.hea"] = write_header("r", specs, nframes=50)  # 20 x 100 decoded bytes
    [outcome] = fw.read_pool(_pool(files), ["r.hea"], _budget_ctx(1999))
    assert isinstance(outcome.error, LimitExceededError)
    [outcome] = fw.read_pool(_pool(files), ["r.hea"], _budget_ctx(2000))
    assert outcome.record is not None


# ----------------------------------------------------------------- header-only inspection


class _HeadersOnly(Entry):
    """A signal file whose bytes must not be read (its size and first bytes may be)."""

    def view(self, *, prefault=True):
        raise AssertionError(f"{self.path} was read in full by a header-only inspection")

    def read(self):
        raise AssertionError(f"{self.path} was read in full by a header-only inspection")


_INSPECTABLE = sorted({h.parent for h in FIXTURE_HEADERS} | {FIXTURES / "wfdb" / "multiseg_041s"})


@pytest.mark.parametrize("folder", _INSPECTABLE, ids=lambda p: p.name)
def test_inspection_from_headers_gives_the_facts_of_the_decoded_records(folder):
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    headers = sorted(n for n in files if n.endswith(".hea"))
    decoded = {o.anchor: o for o in fw.read_pool(_pool(files), headers)}
    pool = {name: (Entry.from_bytes(name, data) if name.endswith(".hea")
                   else _HeadersOnly(name, len(data), _data=data)) for name, data in files.items()}
    from ecgingest.formats._base import DecodeContext

    inspected = list(fw.FORMAT.inspect_group(pool, headers, DecodeContext("wfdb")))
    assert [o.anchor for o in inspected] == list(decoded)
    for info in inspected:
        record = decoded[info.anchor].record
        expected = ecgingest.record.RecordInfo.of(record)
        assert isinstance(info.record, ecgingest.record.RecordInfo)
        assert (info.record.name, info.record.format_detail, info.record.signals,
                info.record.start_time) == (expected.name, expected.format_detail,
                                            expected.signals, expected.start_time)
        assert set(info.files) == set(decoded[info.anchor].files)


def test_inspection_reports_a_missing_signal_file():
    [outcome] = fw.FORMAT.inspect_group(_pool({"r.hea": b"r 1 360 10\nr.dat 16\n"}), ["r.hea"],
                                        fw.DecodeContext("wfdb"))
    assert isinstance(outcome.error, MissingFileError)


def test_inspection_counts_samples_from_file_sizes_when_the_header_has_none():
    hea = b"r 2 100\nr.dat 212 200 12 0 0 0 0 a\nr.dat 212 200 12 0 0 0 0 b\n"
    pool = {"r.hea": Entry.from_bytes("r.hea", hea), "r.dat": _HeadersOnly("r.dat", 21)}
    [outcome] = fw.FORMAT.inspect_group(pool, ["r.hea"], fw.DecodeContext("wfdb"))
    assert [s.samples for s in outcome.record.signals] == [7, 7]


@given(nsig=st.integers(1, 14), nframes=st.sampled_from([1, 2, 3, 7, 681, 682, 683, 1365]),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_format_16_signals_decode_to_their_samples_and_checksums_whatever_their_count(
        nsig, nframes, seed):
    # odd and even signal counts, frame counts across the kernel's blocks, full 16-bit range
    samples = np.random.default_rng(seed).integers(-32767, 32768, (nframes, nsig))
    columns = [samples[:, s] for s in range(nsig)]
    header = write_header("r", [("r.dat", "16", c) for c in columns], nframes=nframes,
                          checksums=[int(c.sum()) % 65536 for c in columns])
    outcome = _read({"r.hea": header, "r.dat": samples.astype("<i2").tobytes()}, "r.hea",
                    strict=True)  # a wrong checksum would raise
    assert outcome.error is None and outcome.record is not None
    assert not outcome.record.warnings
    for signal, column in zip(outcome.record.signals, columns):
        np.testing.assert_array_equal(signal.digital, column)


_CHUNK_FORMATS = ["8", "16", "212", "310", "311", "24", "32"]


@pytest.mark.skipif(not RANGED_READS, reason="no positioned reads on this system")
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(_CHUNK_FORMATS), nsig=st.integers(1, 5),
       nframes=st.integers(1, 120), chunk=st.sampled_from([1, 7, 64, 4096]),
       cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 10_000),
                                                       st.integers(0, 255)), max_size=4),
       extra=st.binary(max_size=12))
def test_mutated_signal_files_read_by_chunks_beside_an_intact_record(
        tmp_path_factory, fmt, nsig, nframes, chunk, cut, flips, extra):
    # the chunked read of a damaged signal file on disk ends as the read of the same
    # bytes in memory does (the same samples, or a typed error), and the intact
    # record beside it in the directory always comes back
    rng = np.random.default_rng(nframes * 31 + nsig)
    low = -100 if fmt == "8" else -2000
    signals = [np.cumsum(rng.integers(-3, 4, nframes)).astype(np.int16) if fmt == "8"
               else rng.integers(low, 2000, nframes, dtype=np.int16) for _ in range(nsig)]
    data = bytearray(pack(int(fmt), signals, [1] * nsig))
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    data = bytes(data[:max(len(data) - cut, 0)]) + extra
    header = write_header("bad", [("bad.dat", fmt, a) for a in signals], nframes=nframes)
    good = [np.arange(50, dtype=np.int16) * (k + 1) for k in range(2)]
    folder = tmp_path_factory.mktemp("chunked")
    files = {"bad.hea": header, "bad.dat": data,
             "good.hea": write_header("good", [("good.dat", "16", a) for a in good],
                                      nframes=50),
             "good.dat": pack(16, good, [1, 1])}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    in_memory = _read({"bad.hea": header, "bad.dat": data}, "bad.hea")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "MAP_FROM", 1)
        patch.setattr(fw.signals, "READ_BY_CHUNKS_FROM", 1)
        patch.setattr(fw.signals, "READ_CHUNK_BYTES", chunk)
        read_files = []
        real_read = wfdb_kernel.read_group

        def counted(fd, *args):
            read_files.append(fd)
            return real_read(fd, *args)

        patch.setattr(wfdb_kernel, "read_group", counted)
        result = ecgingest.ingest(folder)
    assert read_files  # the chunked path ran (the intact record's file at least)
    by_name = {r.name: r for r in result.records}
    assert set(by_name) >= {"good"}
    for sig, want in zip(by_name["good"].signals, good):
        np.testing.assert_array_equal(sig.digital, want)
    if in_memory.error is not None:
        assert "bad" not in by_name
        assert any(type(e.error) is type(in_memory.error) for e in result.errors)
    else:
        assert in_memory.record is not None
        assert [s.digital.tolist() for s in by_name["bad"].signals] == \
            [s.digital.tolist() for s in in_memory.record.signals]


def test_a_header_named_in_the_working_directory_reads_as_by_its_full_path(
        tmp_path, monkeypatch):
    """A bare file name has no folder part: its directory's files are named as pathlib
    names them (no "./"), and the record is the one its full path gives."""
    import shutil

    for item in (FIXTURES / "wfdb" / "100_3chan").iterdir():
        shutil.copy(item, tmp_path / item.name)
    header = next(p.name for p in tmp_path.iterdir() if p.suffix == ".hea")
    [by_full_path] = ecgingest.read(tmp_path / header)
    monkeypatch.chdir(tmp_path)
    [by_name] = ecgingest.read(header)
    assert by_name.sources and not any(s.startswith("./") for s in by_name.sources)
    assert [s.rsplit("/", 1)[-1] for s in by_full_path.sources] == list(by_name.sources)
    for ours, theirs in zip(by_name.signals, by_full_path.signals, strict=True):
        assert np.array_equal(ours.digital, theirs.digital)
