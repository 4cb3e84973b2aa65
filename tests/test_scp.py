"""SCP-ECG: conformance on real files, and every compression path through the
test-side encoder (``scp_encoder.py``)."""

from __future__ import annotations

import binascii
import datetime as dt
import json
import pickle
import struct
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import ecgingest
import scp_encoder as enc
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecgingest._ext import scp as kernels
from ecgingest.detect import detect
from ecgingest.errors import (
    ChecksumError,
    EcgIngestError,
    EcgWarning,
    HeaderError,
    TruncatedError,
)
from ecgingest.formats import scp
from ecgingest.formats._base import DecodeContext
from ecgingest.formats.scp.sections import LEAD_MEASUREMENTS
from ecgingest.sources import Entry

FIX = FIXTURES / "scp"
FIXTURE_FILES = ["ecgtoolkit_Example.scp", "wa_mdw14_20060620.scp", "wa_mdw14_20170504.scp"]


def _decode(data: bytes, **kw) -> ecgingest.Record:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return scp.decode(data, name="t.scp", **kw)


def _detect_and_decode(data: bytes, name: str, strict: bool = False) -> ecgingest.Record:
    """Content detection through the registry, then the chosen format's decoder."""
    fmt = detect(Entry.from_bytes(name, data))
    assert fmt is not None and fmt.name == "scp", "SCP content must be detected as scp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return fmt.decode(data, DecodeContext("scp", name=name, path=name, strict=strict))


def _matrix(record: ecgingest.Record, n: int | None = None) -> np.ndarray:
    return np.array([s.digital[:n] if n else s.digital for s in record.signals], dtype=np.int64)


# ---------------------------------------------------------------- real files

def _check_against_reference(record, ref_npz, ref_json) -> None:
    valid = ref_json.get("known_issue", {}).get("valid_samples")
    digital = ref_npz["digital"]
    n = valid or digital.shape[1]
    assert record.labels == [str(c) for c in ref_npz["channel_names"]]
    assert all(len(s) >= n for s in record.signals)
    np.testing.assert_array_equal(_matrix(record, n), digital[:, :n])
    physical = digital[:, :n] * ref_npz["avm_nV"][:, None] / 1000.0
    got = np.array([s.physical[:n] for s in record.signals])
    np.testing.assert_allclose(got, physical, rtol=1e-12, atol=0)
    if "physical" in ref_npz:
        np.testing.assert_allclose(got, ref_npz["physical"][:, :n], rtol=1e-12, atol=0)
    for sig, fs in zip(record.signals, ref_npz["fs"]):
        assert sig.sample_rate == pytest.approx(fs, rel=1e-9)
        assert sig.units == "uV"
    if ref_json.get("start_time"):
        assert record.start_time.isoformat(timespec="milliseconds") == ref_json["start_time"]


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_files_match_reference_reader(name):
    data = (FIX / name).read_bytes()
    record = _decode(data)
    ref = np.load(FIX / f"{name}.ref.npz")
    meta = json.loads((FIX / f"{name}.ref.json").read_text())
    _check_against_reference(record, ref, meta)
    assert record.format == "scp" and record.format_detail == "SCP 2.0"


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("scp"), ids=lambda e: e["path"])
def test_corpus_record_conforms_to_reference(entry):
    root = corpus_dir()
    path = root / entry["path"]
    meta = json.loads(path.with_name(path.name + ".ref.json").read_text())
    if meta.get("expected_outcome") or entry.get("expect"):
        with pytest.raises(EcgIngestError):
            _detect_and_decode(path.read_bytes(), path.name, strict=True)
        return
    record = _detect_and_decode(path.read_bytes(), path.name)
    ref = np.load(path.with_name(path.name + ".ref.npz"))
    _check_against_reference(record, ref, meta)
    if meta.get("known_issue"):
        assert record.warnings, "an inconsistent file must be read with a warning"


def test_non_conformant_healforce_file_fails_with_typed_error_naming_the_problem():
    data = (FIX / "healforce_62.SCP").read_bytes()
    assert scp.sniff(Entry.from_bytes("62.SCP", data))
    with pytest.raises(TruncatedError) as info:
        scp.decode(data, name="62.SCP")
    assert info.value.field == "record length" and "32768" in str(info.value)
    with pytest.raises(EcgIngestError):
        _detect_and_decode(data, "62.SCP")


def test_content_detection_picks_scp_and_section1_fills_metadata():
    path = FIX / "wa_mdw14_20170504.scp"
    record = _detect_and_decode(path.read_bytes(), path.name)
    m = record.metadata
    assert record.format == "scp"
    assert (m.patient_id, m.patient_first_name, m.patient_last_name) == ("123456789", "test",
                                                                         "test")
    assert m.patient_gender == "MALE" and m.patient_age == 104
    assert m.patient_birth_date == dt.date(1912, 12, 12)
    assert m.patient_height == 175
    assert m.device_id == "MDW14"
    assert record.start_time == dt.datetime(2017, 5, 4, 16, 35, 7)
    assert record.acquisition_info["acquiring_device"]["manufacturer"] == \
        "Welch Allyn Cardio Control"
    assert record.acquisition_info["filters"]["lowpass_hz"] == 35.0


def test_measurement_sections_are_exposed_as_documented_attributes():
    record = _decode((FIX / "wa_mdw14_20170504.scp").read_bytes())
    glob = record.global_measurements
    assert glob["vendor"]["average_rr_ms"] == 1000 and glob["ventricular_rate_bpm"] == 60
    beat = glob["vendor"]["beats"][0]
    assert beat["qrs_onset_ms"] < beat["qrs_offset_ms"]
    assert glob["qrs_duration_ms"] == beat["qrs_offset_ms"] - beat["qrs_onset_ms"] == 88
    assert glob["rr_interval_ms"] == 1000 and glob["qtc_ms"] == 386
    assert all(s["text"] == s["text"].strip() != "" for s in record.interpretation["statements"])
    leads = record.lead_measurements["leads"]
    assert len(leads) == 12  # the analysis covers the 12 standard leads, 8 are recorded
    assert {entry["lead"] for entry in leads} >= set(record.labels)
    assert leads[0]["lead"] == "I" and leads[0]["qrs_duration"] == 88
    assert isinstance(record.interpretation["statements"], list)
    beat = record.reference_beat
    assert beat.digital.shape == (8, 755 * 1000 // 1667) and beat.fiducial == 161
    assert beat.labels == tuple(record.labels) and beat.scale == 3.75


def test_sniff_does_not_claim_an_edf_header():
    edf = b"0       " + b"X" * 80 + b"Y" * 80 + b"01.01.2001.01.01" + b"768     " + \
        b" " * 44 + b"1       " + b"1       " + b"2   "
    assert not scp.sniff(Entry.from_bytes("a.edf", edf + b"\0" * 600))
    assert not scp.sniff(Entry.from_bytes("short", b"\0" * 10))


# ---------------------------------------------------------------- container

def test_crc16_is_ccitt_false():
    assert scp.crc16(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_crc16_matches_the_standard_library(data):
    assert scp.crc16(data) == binascii.crc_hqx(data, 0xFFFF)


def _simple(version="2.0", **kw) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.integers(-20, 21, size=(2, 300)), axis=1)
    return x, enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2], version=version, **kw))


def test_crc_mismatch_is_a_warning_by_default_and_an_error_when_strict():
    x, data = _simple(huffman=enc.DEFAULT_TABLE, differences=1, corrupt_crc=True)
    with pytest.warns(EcgWarning, match="record CRC mismatch"):
        [record] = ecgingest.read(data)
    assert any("CRC" in w for w in record.warnings)
    np.testing.assert_array_equal(_matrix(record), x)
    with pytest.raises(ChecksumError):
        scp.decode(data, name="t.scp", strict=True)


def test_crc_warnings_keep_their_place_among_the_other_deviations():
    # the CRCs of a tolerant read are checked in the samples' kernel call, after the
    # other container checks: their messages still come where the checks belong
    x, data = _simple(huffman=enc.DEFAULT_TABLE, differences=1)
    buf = bytearray(data + b"\0" * 7)  # bytes past the declared record length
    n_entries = (struct.unpack_from("<I", data, 10)[0] - 16) // 10
    for k in range(n_entries):
        sid, slen, index = struct.unpack_from("<HII", data, 22 + 10 * k)
        if sid == 6:
            buf[index - 1 + 12] ^= 0xFF  # a reserved byte of the section 6 header
        if sid == 3:
            struct.pack_into("<I", buf, index - 1 + 16 + 2, 0)  # lead 1 numbered from 0
    record = scp.decode(bytes(buf), name="t.scp")
    assert [w.split(":")[0].split(" (")[0] for w in record.warnings] == [
        f"7 bytes follow the {len(data)} bytes the record header declares; they are ignored",
        "record CRC mismatch", "section 3 CRC mismatch", "section 6 CRC mismatch",
        "section 3 numbers the samples of I from 0"]
    with pytest.raises(HeaderError, match="bytes follow"):
        scp.decode(bytes(buf), name="t.scp", strict=True)


def test_pointer_table_is_indexed_by_id_even_when_unsorted():
    x, data = _simple()
    n_entries = (struct.unpack_from("<I", data, 10)[0] - 16) // 10
    entries = [data[22 + 10 * k:32 + 10 * k] for k in range(n_entries)]
    shuffled = entries[::-1]
    body = data[6:22] + b"".join(shuffled) + data[22 + 10 * n_entries:]
    sec0 = body[2:16 + 10 * n_entries]
    body = struct.pack("<H", binascii.crc_hqx(sec0, 0xFFFF)) + sec0 + body[16 + 10 * n_entries:]
    rest = struct.pack("<I", 6 + len(body)) + body
    data2 = struct.pack("<H", binascii.crc_hqx(rest, 0xFFFF)) + rest
    record = scp.decode(data2, name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)


def _patch_pointer(data: bytes, sid: int, *, length: int | None = None,
                   index: int | None = None, new_id: int | None = None) -> bytes:
    buf = bytearray(data)
    n_entries = (struct.unpack_from("<I", data, 10)[0] - 16) // 10
    for k in range(n_entries):
        o = 22 + 10 * k
        if struct.unpack_from("<H", buf, o)[0] == sid:
            if length is not None:
                struct.pack_into("<I", buf, o + 2, length)
            if index is not None:
                struct.pack_into("<I", buf, o + 6, index)
            if new_id is not None:
                struct.pack_into("<H", buf, o, new_id)
            return bytes(buf)
    raise AssertionError(sid)


def test_pointer_outside_the_file_is_a_header_error():
    _, data = _simple()
    bad = _patch_pointer(data, 6, index=len(data) - 10)
    with pytest.raises(HeaderError, match="outside"):
        _decode(bad)


def test_section_defined_twice_is_rejected():
    _, data = _simple()
    bad = _patch_pointer(data, 9, new_id=6, length=20, index=8)
    with pytest.raises(HeaderError, match="twice"):
        _decode(bad)


def test_truncated_record_is_a_truncated_error():
    _, data = _simple()
    with pytest.raises(TruncatedError):
        _decode(data[:len(data) // 2])


def test_lead_data_shorter_than_section3_range_reads_with_a_warning():
    x = np.arange(200).reshape(2, 100) - 50
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1, 2])
    data = bytearray(enc.encode(spec))
    # section 3 says 101 samples per lead while section 6 holds 100
    o = _section_offset(bytes(data), 3) + 16 + 2
    for lead in range(2):
        struct.pack_into("<I", data, o + 9 * lead + 4, 101)
    data = _fix_crcs(bytes(data))
    record = _decode(data)
    assert [len(s) for s in record.signals] == [100, 100]
    assert any("I: samples 1..101 (101) but section 6 holds 100" in w for w in record.warnings)
    np.testing.assert_array_equal(_matrix(record), x)
    with pytest.raises(EcgIngestError):
        scp.decode(data, name="t.scp", strict=True)


# ---------------------------------------------------------------- section 1

def test_section1_units_sex_time_zone_and_declared_text_encoding():
    device = struct.pack("<HHHBB", 1, 2, 3, 1, 255) + b"MOD\0\0\0" + bytes([20, 0, 0x03, 0, 1]) \
        + b"\0" * 16 + b"\0" + b"rev\0SN1\0sw\0impl\0Maker\0"
    tags = [(0, "Dvořák\0".encode("iso8859-2")), (1, "Řehoř\0".encode("iso8859-2")),
            (2, b"P-42\0"), (4, struct.pack("<HB", 30, 2)), (5, struct.pack("<HBB", 1990, 2, 3)),
            (6, struct.pack("<HB", 70, 2)), (7, struct.pack("<HB", 150, 3)), (8, bytes([2])),
            (13, b"chest pain\0"), (14, device), (25, struct.pack("<HBB", 2021, 6, 7)),
            (26, bytes([8, 9, 10])), (34, struct.pack("<hH", 120, 0) + b"CEST\0"),
            (27, struct.pack("<H", 5)), (28, struct.pack("<H", 150)), (29, bytes([3])),
            (210, b"vendor")]
    x, data = _simple(tags=tags)
    record = scp.decode(data, name="t.scp", strict=True)
    m = record.metadata
    assert (m.patient_last_name, m.patient_first_name) == ("Dvořák", "Řehoř")
    assert m.patient_age == 2  # 30 months
    assert m.patient_height == 178 and m.patient_weight == 68039
    assert m.patient_gender == "FEMALE" and m.indications == ("chest pain",)
    assert m.patient_birth_date == dt.date(1990, 2, 3)
    tz = dt.timezone(dt.timedelta(hours=2))
    assert record.start_time == dt.datetime(2021, 6, 7, 8, 9, 10, tzinfo=tz)
    assert m.recording_start_time == dt.datetime(2021, 6, 7, 6, 9, 10, tzinfo=dt.timezone.utc)
    assert m.recording_time_zone == "Etc/GMT-2"
    info = record.acquisition_info
    assert info["filters"] == {"highpass_hz": 0.05, "lowpass_hz": 150.0, "notch_hz": (60, 50),
                               "bitmap": 3}
    assert info["acquiring_device"]["manufacturer"] == "Maker"
    assert info["manufacturer_tags"] == {210: b"vendor"}
    assert m.device_id == "MOD"


# ---------------------------------------------------------------- compression paths

leads_strategy = st.integers(1, 4)


@st.composite
def signals(draw, max_len=400, lo=-3000, hi=3000):
    nleads = draw(leads_strategy)
    n = draw(st.integers(1, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    step = draw(st.sampled_from([3, 40, 400]))
    x = np.cumsum(rng.integers(-step, step + 1, size=(nleads, n)), axis=1)
    return np.clip(x, lo, hi)


LEAD_IDS = [1, 2, 61, 62, 63, 64, 3, 4]


@settings(max_examples=40)
@given(x=signals(), version=st.sampled_from(["1.0", "1.3", "2.0", "3.0"]),
       huffman=st.booleans(), diff=st.integers(0, 2))
def test_lossless_paths_round_trip_exactly(x, version, huffman, diff):
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:len(x)], version=version,
                       huffman=enc.DEFAULT_TABLE if huffman else None, differences=diff,
                       avm=1250)
    if not huffman:
        assume(np.abs(enc.differences(x[0], diff)).max() < 32768)
        assume(all(np.abs(enc.differences(r, diff)).max() < 32768 for r in x))
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)
    assert record.labels == [scp.LEAD_NAMES[i] for i in LEAD_IDS[:len(x)]]
    assert record.signals[0].scale == 1.25 and record.signals[0].sample_rate == 500.0
    assert record.scp_version == version and record.format_detail == f"SCP {version}"


@st.composite
def huffman_tables(draw):
    """1-3 prefix-free tables: direct values, a 16- or 32-bit escape and switches."""
    ntables = draw(st.integers(1, 3))
    tables = []
    for t in range(ntables):
        direct = draw(st.lists(st.integers(-40, 40), min_size=1, max_size=14, unique=True))
        width = draw(st.sampled_from([16, 32]))
        symbols = [("v", v) for v in direct] + [("esc", width)] + \
            [("sw", u + 1) for u in range(ntables) if u != t]
        # random full binary tree with len(symbols) leaves -> prefix-free codes
        leaves = [""]
        while len(leaves) < len(symbols):
            i = draw(st.integers(0, len(leaves) - 1))
            leaf = leaves.pop(i)
            leaves += [leaf + "0", leaf + "1"]
        leaves = [leaf or "0" for leaf in leaves]
        order = draw(st.permutations(range(len(symbols))))
        codes = []
        for (kind, value), k in zip(symbols, order):
            bits = leaves[k]
            if kind == "v":
                codes.append(enc.Code(len(bits), len(bits), 1, value, int(bits, 2)))
            elif kind == "esc":
                codes.append(enc.Code(len(bits), len(bits) + value, 1, 0, int(bits, 2)))
            else:
                codes.append(enc.Code(len(bits), len(bits), 0, value, int(bits, 2)))
        tables.append(codes)
    return tables


@settings(max_examples=40)
@given(x=signals(max_len=200, lo=-20000, hi=20000), tables=huffman_tables(),
       diff=st.integers(0, 2), data=st.data())
def test_custom_huffman_tables_with_switching_and_escapes_round_trip(x, tables, diff, data):
    schedule = data.draw(st.lists(st.integers(0, len(tables) - 1), min_size=1, max_size=7))
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:len(x)], huffman=tables,
                       schedule=schedule, differences=diff)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)
    assert record.compression["huffman"] == f"{len(tables)} tables"


def test_long_huffman_codes_beyond_the_lookup_width_decode():
    # a code tree 20 deep: value k has k ones then a zero
    codes = [enc.Code(k + 1, k + 1, 1, k, ((1 << k) - 1) << 1) for k in range(20)]
    codes.append(enc.Code(20, 52, 1, 0, (1 << 20) - 1))
    x = np.array([[0, 5, 19, 13, 100000, -7, 18]])
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1], huffman=[codes])
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)


@settings(max_examples=30)
@given(x=signals(max_len=300), factor=st.sampled_from([2, 4, 5]), huffman=st.booleans(),
       version=st.sampled_from(["1.3", "2.0"]), data=st.data())
def test_bimodal_protected_zones_exact_and_interpolation_as_specified(x, factor, huffman,
                                                                       version, data):
    n = x.shape[1]
    cuts = sorted(data.draw(st.lists(st.integers(1, n), max_size=6, unique=True)))
    zones = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    qrs = [(1, a, a, b) for a, b in zones]  # beat type 1: no reference-beat addition
    assume(qrs)
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:len(x)], interval_us=2000,
                       huffman=enc.DEFAULT_TABLE if huffman else None, bimodal_factor=factor,
                       qrs=qrs, beat=None, version=version)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    got = _matrix(record)
    assert got.shape == x.shape and record.signals[0].sample_rate == 500.0
    for lead in range(len(x)):
        stored = enc.bimodal_store(x[lead], zones, factor)
        np.testing.assert_array_equal(got[lead],
                                      enc.bimodal_reconstruct(stored, zones, factor, n))
        for a, b in zones:
            np.testing.assert_array_equal(got[lead, a - 1:b], x[lead, a - 1:b])


@pytest.mark.parametrize("huffman", [False, True])
def test_reference_beat_that_lifts_values_past_16_bits_gives_int32_samples(huffman):
    # residual and beat each fit in 16 bits, their sum does not: the output widens
    x = np.zeros((2, 60), dtype=np.int64)
    x[0, 9:14] = 20000 + 15000
    x[1, 9:14] = -20000 - 15000
    x[:, 30:40] = 1234  # outside the zone: stored as is
    beat = np.array([[20000] * 5, [-20000] * 5])
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1, 2], beat=beat, qrs=[(0, 10, 12, 14)],
                       beat_fiducial=3, huffman=enc.DEFAULT_TABLE if huffman else None)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    assert {s.digital.dtype for s in record.signals} == {np.dtype(np.int32)}
    np.testing.assert_array_equal(_matrix(record), x)
    assert record.reference_beat.digital.dtype == np.int16


@pytest.mark.parametrize("edge, dtype", [(32767, np.int16), (-32768, np.int16),
                                         (32768, np.int32), (-32769, np.int32)])
@pytest.mark.parametrize("huffman", [False, True])
def test_samples_are_int16_exactly_when_every_value_fits(edge, dtype, huffman):
    x = np.zeros((2, 300), dtype=np.int64)
    x[1, 100:150] = np.linspace(0, edge, 50).round().astype(np.int64)
    x[1, 150:] = edge
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1, 2], differences=1,
                       huffman=enc.DEFAULT_TABLE if huffman else None)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    assert {s.digital.dtype for s in record.signals} == {np.dtype(dtype)}
    np.testing.assert_array_equal(_matrix(record), x)


@pytest.mark.parametrize("wide_lead", [None, 0, 3, 4])
@pytest.mark.parametrize("huffman", [False, True])
def test_a_value_past_16_bits_in_any_lead_gives_int32_samples_of_every_lead(wide_lead, huffman):
    # leads are decoded and narrowed two at a time; a wide value in a later pair (or the
    # odd last lead) must still give every lead's exact values, as int32
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.integers(-40, 40, (5, 400)), axis=1).astype(np.int64)
    if wide_lead is not None:  # a bump to 40000 in steps that fit the stored differences
        x[wide_lead, 100:300] += np.concatenate([np.arange(100), np.arange(100, 0, -1)]) * 400
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1, 2, 3, 4, 5], differences=1,
                       huffman=enc.DEFAULT_TABLE if huffman else None)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    dtype = np.int16 if wide_lead is None else np.int32
    assert {s.digital.dtype for s in record.signals} == {np.dtype(dtype)}
    np.testing.assert_array_equal(_matrix(record), x)


@pytest.mark.parametrize("huffman", [False, True])
def test_wide_samples_of_a_record_stay_intact_when_the_next_record_is_decoded(huffman):
    # the kernels reuse a work block between calls; a record whose values need 32 bits
    # keeps that block, and the next decode must not write into it
    table = enc.DEFAULT_TABLE if huffman else None
    wide = np.cumsum(np.full((2, 500), 150, dtype=np.int64), axis=1)  # up to 75000
    first = scp.decode(enc.encode(enc.ScpSpec(rhythm=wide, lead_ids=[1, 2], huffman=table,
                                              differences=1)), name="a.scp")
    assert {s.digital.dtype for s in first.signals} == {np.dtype(np.int32)}
    for other in (wide + 7, -wide, np.zeros((2, 500), dtype=np.int64)):
        again = scp.decode(enc.encode(enc.ScpSpec(rhythm=other, lead_ids=[1, 2],
                                                  huffman=table, differences=1)), name="b.scp")
        np.testing.assert_array_equal(_matrix(again), other)
    np.testing.assert_array_equal(_matrix(first), wide)


@settings(max_examples=30)
@given(x=signals(max_len=400), huffman=st.booleans(), version=st.sampled_from(["1.0", "2.0"]),
       data=st.data())
def test_reference_beat_subtraction_is_undone_losslessly(x, huffman, version, data):
    nleads, n = x.shape
    blen = data.draw(st.integers(5, 60))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    beat = rng.integers(-500, 500, size=(nleads, blen))
    fcm = data.draw(st.integers(1, blen))
    nq = data.draw(st.integers(0, 4))
    qrs = []
    for _ in range(nq):
        fc = data.draw(st.integers(1, n))
        a = max(1, fc - data.draw(st.integers(0, 30)))
        b = min(n, fc + data.draw(st.integers(0, 30)))
        qrs.append((data.draw(st.sampled_from([0, 0, 1])), a, fc, b))
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:nleads], beat=beat, qrs=qrs,
                       beat_fiducial=fcm, huffman=enc.DEFAULT_TABLE if huffman else None,
                       interval_us=2000, version=version)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)
    np.testing.assert_array_equal(record.reference_beat.digital, beat)
    assert record.compression["reference_beat_subtracted"]
    assert record.lead_ranges == [(1, n)] * nleads


def test_sections_5_and_6_with_different_multipliers_share_one_scale():
    x = np.array([[10, 20, 30, 40, 50, 60]])
    beat = np.array([[1, 2, 3]])
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1], beat=beat, qrs=[(0, 2, 3, 4)], beat_fiducial=2,
                       avm=5000, beat_avm=5000)
    data = bytearray(enc.encode(spec))
    # rewrite section 5's AVM to 2500 nV: the beat now counts half, in nanovolts
    sec5 = _section_offset(bytes(data), 5)
    struct.pack_into("<H", data, sec5 + 16, 2500)
    record = _decode(_fix_crcs(bytes(data)))
    residual = x.copy()
    residual[0, 1:4] -= beat[0]
    expected_nv = residual[0] * 5000.0
    expected_nv[1:4] += beat[0] * 2500.0
    np.testing.assert_allclose(record.signals[0].physical, expected_nv / 1000.0, rtol=1e-12)
    assert record.signals[0].scale == 2.5


def _section_offset(data: bytes, sid: int) -> int:
    n_entries = (struct.unpack_from("<I", data, 10)[0] - 16) // 10
    for k in range(n_entries):
        i, _, index = struct.unpack_from("<HII", data, 22 + 10 * k)
        if i == sid:
            return index - 1
    raise AssertionError(sid)


def _fix_crcs(data: bytes) -> bytes:
    """Recompute record and section CRCs so a mutation reaches the decoder's content checks."""
    buf = bytearray(data)
    n_entries = min((struct.unpack_from("<I", data, 10)[0] - 16) // 10, (len(data) - 22) // 10)
    for k in range(n_entries):
        _, length, index = struct.unpack_from("<HII", data, 22 + 10 * k)
        if length and index and index - 1 + length <= len(buf) and length >= 2:
            o = index - 1
            struct.pack_into("<H", buf, o, binascii.crc_hqx(bytes(buf[o + 2:o + length]), 0xFFFF))
    struct.pack_into("<H", buf, 0, binascii.crc_hqx(bytes(buf[2:]), 0xFFFF))
    return bytes(buf)


def test_statement_sections_8_and_11_are_decoded():
    head = bytes([1]) + struct.pack("<HBBBBB", 2020, 5, 6, 7, 8, 9)
    s8 = head + bytes([2]) + struct.pack("<BH", 1, 12) + b"Sinus rhyth\0" + \
        struct.pack("<BH", 2, 7) + b"Normal\0"
    s11 = head + bytes([1]) + struct.pack("<BH", 1, 10) + bytes([3]) + b"SR\0Sinus\0"
    _, data = _simple(extra_sections={8: s8, 11: s11})
    record = scp.decode(data, name="t.scp", strict=True)
    assert record.interpretation["confirmation"] == "confirmed"
    assert record.interpretation["datetime"] == dt.datetime(2020, 5, 6, 7, 8, 9)
    assert [s["text"] for s in record.interpretation["statements"]] == ["Sinus rhyth", "Normal"]
    assert record.universal_statements["statements"] == [
        {"sequence": 1, "type": "coded+text", "code": "SR", "text": "Sinus"}]


def test_section_7_beats_spikes_and_version_2_extension_with_sentinels():
    s7 = struct.pack("<BBHH", 2, 1, 29999, 800)
    s7 += struct.pack("<5H3h", 10, 90, 150, 240, 29998, 999, -30, 19999)
    s7 += struct.pack("<5H3h", 1, 2, 3, 4, 5, 60, 0, -90)
    s7 += struct.pack("<Hh", 123, -400)                # spike time and amplitude
    s7 += struct.pack("<BBHH", 1, 2, 3, 500)           # spike type, source, index, width
    s7 += struct.pack("<H", 2) + bytes([0, 1])         # QRS types
    s7 += struct.pack("<HHHB", 75, 19999, 410, 2)      # rates, QTc and its formula
    s7 += b"zz"
    _, data = _simple(extra_sections={7: s7})
    shared = scp.decode(data, name="t.scp", strict=True).global_measurements
    out = shared["vendor"]
    assert shared == {"ventricular_rate_bpm": 75, "pp_interval_ms": 800, "p_duration_ms": 80,
                      "pr_interval_ms": 140, "qrs_duration_ms": 90, "qtc_ms": 410,
                      "qrs_axis_deg": -30, "vendor": out}
    assert out["average_rr_ms"] is None and out["average_pp_ms"] == 800
    assert out["beats"][0] == {"p_onset_ms": 10, "p_offset_ms": 90, "qrs_onset_ms": 150,
                               "qrs_offset_ms": 240, "t_offset_ms": None, "p_axis_deg": None,
                               "qrs_axis_deg": -30, "t_axis_deg": None}
    assert out["beats"][1]["t_axis_deg"] == -90 and out["beats"][1]["p_axis_deg"] == 60
    assert out["pacemaker_spikes"] == [{"time_ms": 123, "amplitude_uv": -400, "type": 1,
                                        "source": 2, "trigger_index": 3, "pulse_width_us": 500}]
    assert out["qrs_types"] == (0, 1)
    assert (out["ventricular_rate_bpm"], out["atrial_rate_bpm"], out["qtc_ms"],
            out["qtc_formula"]) == (75, None, 410, 2)
    assert out["remaining_bytes"] == b"zz"
    # cut inside the second beat: the first is kept, with a warning
    _, data = _simple(extra_sections={7: s7[:6 + 16 + 9]})
    record = scp.decode(data, name="t.scp")
    assert any("section 7 ends inside its beat measurements" in w for w in record.warnings)
    out = record.global_measurements["vendor"]
    assert out["beats"] == [scp.decode(_simple(extra_sections={7: s7})[1],
                                       name="t.scp").global_measurements["vendor"]["beats"][0]]


def test_section_10_lead_blocks_full_short_and_vendor_bytes():
    # a full block with vendor bytes after the 31 measurements, a block holding only
    # the first three, a lead id past the table; the fourth declared block is missing
    full = struct.pack("<31h", *range(-15, 16))
    s10 = struct.pack("<HH", 4, 7)
    s10 += struct.pack("<HH", 2, len(full) + 3) + full + b"abc"
    s10 += struct.pack("<HH", 200, 7) + struct.pack("<3h", 88, -2, 400) + b"x"
    s10 += struct.pack("<HH", 3, 0)
    _, data = _simple(extra_sections={10: s10})
    record = scp.decode(data, name="t.scp")
    assert any("section 10 ends before all its leads" in w for w in record.warnings)
    out = record.lead_measurements
    assert out["manufacturer_specific"] == 7
    first, second, third = out["leads"]
    assert list(first) == ["lead_id", "lead", *LEAD_MEASUREMENTS, "manufacturer_bytes"]
    assert first["lead"] == "II" and first["p_duration"] == -15 and first["st_amplitude_rr8"] == 15
    assert first["manufacturer_bytes"] == b"abc"
    assert second == {"lead_id": 200, "lead": "lead 200", "p_duration": 88,
                      "pr_interval": -2, "qrs_duration": 400}
    assert third == {"lead_id": 3, "lead": "V1"}


def _section10_as_dicts(s10: bytes) -> tuple[list[dict], bool]:
    """Section 10's per-lead dicts read field by field with struct (the reading the
    deferred view must give)."""
    from ecgingest.formats.scp.sections import lead_name
    nleads = struct.unpack_from("<H", s10)[0]
    o, leads = 4, []
    for _ in range(nleads):
        if o + 4 > len(s10):
            return leads, False
        lead_id, length = struct.unpack_from("<HH", s10, o)
        block = s10[o + 4:o + 4 + length]
        values = struct.unpack_from(f"<{min(len(block), 62) // 2}h", block)
        entry = {"lead_id": lead_id, "lead": lead_name(lead_id),
                 **dict(zip(LEAD_MEASUREMENTS, values))}
        if len(block) > 62:
            entry["manufacturer_bytes"] = block[62:]
        leads.append(entry)
        o += 4 + length
    return leads, True


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40),
                                 st.binary(max_size=6)), max_size=14),
       declared_extra=st.integers(0, 2), cut=st.integers(0, 8), data=st.data())
def test_section_10_deferred_dicts_equal_a_field_by_field_reading(blocks, declared_extra, cut,
                                                                   data):
    body = b""
    for lead_id, count, vendor in blocks:
        values = data.draw(st.lists(st.integers(-32768, 32767), min_size=count,
                                    max_size=count))
        block = struct.pack(f"<{count}h", *values) + (vendor if count >= 31 else b"")
        body += struct.pack("<HH", lead_id, len(block)) + block
    s10 = struct.pack("<HH", len(blocks) + declared_extra, 5) + body
    s10 = s10[:max(4, len(s10) - cut)]
    expected, complete = _section10_as_dicts(s10)
    _, encoded = _simple(extra_sections={10: s10})
    record = scp.decode(encoded, name="t.scp")
    leads = record.lead_measurements["leads"]
    assert len(leads) == len(expected)
    assert leads == expected and expected == leads
    assert [dict(entry) for entry in leads] == expected
    assert leads[-1:] == expected[-1:] and all(type(e) is dict for e in leads)
    assert pickle.loads(pickle.dumps(leads)) == expected
    assert ("section 10 ends before all its leads" in " ".join(record.warnings)) == (
        not complete)


@requires_corpus
def test_section_10_of_real_files_reads_as_its_fields():
    for path in sorted(corpus_dir().joinpath("scp").glob("*.scp")):
        data = path.read_bytes()
        try:
            record = scp.decode(data, name=path.name)
        except EcgIngestError:
            continue
        if "lead_measurements" not in record.extras:
            continue
        n = struct.unpack_from("<I", data, 10)[0]
        for k in range((n - 16) // 10):
            sid, slen, index = struct.unpack_from("<HII", data, 22 + 10 * k)
            if sid == 10 and slen:
                s10 = data[index - 1 + 16:index - 1 + slen]
        expected, _ = _section10_as_dicts(s10)
        assert record.lead_measurements["leads"] == expected and len(expected) > 0


def test_section_1_tag_running_past_the_section_keeps_the_tags_before_it():
    # tag 0 is read, tag 1 declares more bytes than the section holds
    tags = [(0, b"Doe\0"), (1, b"Jane\0")]
    _, data = _simple(tags=tags)
    data = bytearray(data)
    at = data.index(b"Jane\0") - 3
    struct.pack_into("<H", data, at + 1, 5000)
    data = _fix_crcs(bytes(data))
    record = scp.decode(data, name="t.scp")
    assert any("section 1 tag 1 declares 5000 bytes" in w for w in record.warnings)
    assert record.metadata.patient_last_name == "Doe"
    assert record.metadata.patient_first_name is None
    with pytest.raises(TruncatedError, match="section 1 tag 1"):
        scp.decode(data, name="t.scp", strict=True)


def test_section_1_tag_given_twice_counts_once_but_drugs_and_indications_collect():
    tags = [(0, b"First\0"), (8, bytes([1])), (13, b"chest pain\0"),
            (10, bytes([0, 1, 2]) + b"aspirin\0"), (0, b"Second\0"), (8, bytes([2])),
            (13, b"dyspnoea\0"), (10, bytes([0, 3, 4]) + b"heparin\0")]
    _, data = _simple(tags=tags)
    record = scp.decode(data, name="t.scp", strict=True)
    m = record.metadata
    assert (m.patient_last_name, m.patient_gender) == ("Second", "FEMALE")
    assert m.indications == ("chest pain", "dyspnoea")
    assert record.acquisition_info["drugs"] == [
        {"table": 0, "class": 1, "code": 2, "text": "aspirin"},
        {"table": 0, "class": 3, "code": 4, "text": "heparin"}]


def test_section_1_tag_shorter_than_its_layout_is_kept_as_bytes():
    tags = [(2, b"P\0"), (4, b"\x1e\x00"), (26, b"\x08"), (40, b"x"), (220, b"v")]
    _, data = _simple(tags=tags)
    record = scp.decode(data, name="t.scp", strict=True)
    info = record.acquisition_info
    assert info["other_tags"] == {4: b"\x1e\x00", 26: b"\x08", 40: b"x"}
    assert info["manufacturer_tags"] == {220: b"v"}
    assert "age" not in info and record.metadata.patient_age is None


@pytest.mark.parametrize("length", [0, 7, 8, 13, 14, 18, 19, 36, 37])
def test_device_block_gives_the_fields_its_length_holds(length):
    block = (struct.pack("<HHHBB", 1, 2, 3, 4, 5) + b"MOD\0\0\0" + bytes([20, 1, 0, 2, 50])
             + bytes(17) + b"rev\0SN\0")[:length]
    _, data = _simple(tags=[(2, b"P\0"), (14, block)])
    device = scp.decode(data, name="t.scp").acquisition_info["acquiring_device"]
    expected: dict = {}
    if length >= 8:
        expected.update(institution=1, department=2, device_id=3, device_type=4,
                        manufacturer_code=5)
    if length >= 14:
        expected["model"] = "MOD"
    if length >= 19:
        expected.update(protocol_revision=20, compatibility_level=1, language_support=0,
                        capabilities=2, mains_frequency=50)
    if length > 36:
        expected["analysing_program_revision"] = "r"
    assert device == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 254), st.binary(max_size=40)), max_size=12))
def test_any_section_1_triplets_give_a_record_or_a_typed_error(tags):
    _, data = _simple(tags=tags)
    for strict in (False, True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EcgWarning)
                record = scp.decode(data, name="t.scp", strict=strict)
        except EcgIngestError:
            continue
        assert isinstance(record.acquisition_info, dict)
        for tag, _ in tags:
            if tag >= 200:
                assert tag in record.acquisition_info["manufacturer_tags"]


_TEXT_TAGS = (0, 1, 2, 3, 13, 16, 20, 23, 30, 31, 35)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_TEXT_TAGS + (4, 5, 8, 10, 14, 25, 26, 34)),
                          st.binary(max_size=40)), max_size=10),
       st.sampled_from([b"", bytes(16) + bytes([0x07]), bytes(16) + bytes([0x17])]))
def test_acquisition_info_built_on_first_access_equals_the_one_built_with_the_record(
        tags, device):
    # all-ASCII texts defer the acquisition info; forcing the path that builds it
    # with the record (as a text to decode does) must give the same record
    from ecgingest.formats.scp.metadata import parse_section1
    _, data = _simple(tags=tags + ([(14, device)] if device else []))
    scanned = kernels.scan_headers(np.frombuffer(data, np.uint8), False)[7]
    assume(scanned is not None)
    results = []
    for tags_scanned in (scanned, scanned[:5] + (False,)):
        ctx = DecodeContext("scp", name="t.scp", path="t.scp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EcgWarning)
            patient = parse_section1(tags_scanned, ctx)
            info = patient.info() if callable(patient.info) else patient.info
        results.append((patient.metadata, patient.start_time, info, list(ctx.warnings)))
    assert results[0] == results[1]


def test_statement_running_past_section_8_keeps_the_statements_before_it():
    head = bytes([0]) + struct.pack("<HBBBBB", 2020, 5, 6, 7, 8, 9)
    s8 = head + bytes([3]) + struct.pack("<BH", 1, 4) + b"Sin\0" + \
        struct.pack("<BH", 2, 50) + b"Normal\0"
    _, data = _simple(extra_sections={8: s8})
    record = scp.decode(data, name="t.scp", strict=True)
    assert any("section 8 statement 2 runs past the section" in w for w in record.warnings)
    assert record.interpretation["statements"] == [{"sequence": 1, "text": "Sin"}]
    assert record.interpretation["confirmation"] == "original"


def test_manufacturer_sections_are_kept_as_bytes():
    _, data = _simple(extra_sections={130: b"vendor blob"})
    record = scp.decode(data, name="t.scp", strict=True)
    assert record.sections_raw[130] == b"vendor blob"



@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_a_read_only_view_decodes_in_place_to_the_record_of_its_bytes(name):
    data = (FIX / name).read_bytes()
    expected = scp.decode(data, name=name)
    view = memoryview(data)
    record = scp.decode(view, name=name)
    view.release()  # raises while anything the record keeps still views the upload
    assert [s.digital.tolist() for s in record.signals] == \
        [s.digital.tolist() for s in expected.signals]
    assert record.warnings == expected.warnings
    beat, expected_beat = (r.extras.get("reference_beat") for r in (record, expected))
    assert (beat is None) == (expected_beat is None)
    if beat is not None:  # compared by identity otherwise
        assert beat.digital.tolist() == expected_beat.digital.tolist()
    assert {k: v for k, v in record.extras.items() if k != "reference_beat"} == \
        {k: v for k, v in expected.extras.items() if k != "reference_beat"}
    kept = [record.extras.get("manufacturer_interpretation"),
            *record.extras.get("sections_raw", {}).values(),
            *(lead.get("manufacturer_bytes") for lead in
              record.extras.get("lead_measurements", {}).get("leads", []))]
    assert all(type(value) is bytes for value in kept if value is not None)
    # a writable buffer is copied first: changing it afterwards changes nothing
    buffer = bytearray(data)
    copied = scp.decode(memoryview(buffer), name=name)
    buffer[:] = bytes(len(buffer))
    assert [s.digital.tolist() for s in copied.signals] == \
        [s.digital.tolist() for s in expected.signals]

# ---------------------------------------------------------------- robustness

@settings(max_examples=60)
@given(name=st.sampled_from(FIXTURE_FILES), data=st.data())
def test_mutated_real_files_end_in_a_record_or_a_typed_error(name, data):
    raw = bytearray((FIX / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    try:
        record = _decode(bytes(raw))
    except EcgIngestError:
        return
    assert record.format == "scp"


def _variants() -> list[bytes]:
    x = np.arange(120).reshape(2, 60) % 17 - 8
    beat = np.ones((2, 5), dtype=np.int64)
    codes = [enc.Code(1, 1, 1, 0, 0), enc.Code(2, 2, 0, 2, 0b10), enc.Code(3, 19, 1, 0, 0b110),
             enc.Code(3, 3, 1, 1, 0b111)]
    other = [enc.Code(1, 1, 0, 1, 0), enc.Code(2, 2, 1, 3, 0b10), enc.Code(2, 34, 1, 0, 0b11)]
    return [
        enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2], huffman=enc.DEFAULT_TABLE, beat=beat,
                               qrs=[(0, 3, 5, 9)], beat_fiducial=2, differences=1)),
        enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2], huffman=enc.DEFAULT_TABLE,
                               bimodal_factor=4, qrs=[(1, 10, 12, 20), (1, 30, 31, 40)])),
        enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2], huffman=[codes, other],
                               schedule=[0, 1], differences=2, version="3.0")),
    ]


VARIANTS = _variants()


@settings(max_examples=80)
@given(variant=st.integers(0, len(VARIANTS) - 1), data=st.data())
def test_mutated_encoder_output_ends_in_a_record_or_a_typed_error(variant, data):
    raw = bytearray(VARIANTS[variant])
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(6, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        record = _decode(_fix_crcs(bytes(raw)))
    except EcgIngestError:
        return
    assert record.format == "scp"


def test_huffman_table_that_is_not_prefix_free_is_corrupt_data():
    from ecgingest.errors import CorruptDataError

    x = np.array([[1, 2, 3]])
    codes = [enc.Code(1, 1, 1, 1, 0), enc.Code(2, 2, 1, 2, 0b10), enc.Code(2, 2, 1, 3, 0b11)]
    data = enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1], huffman=[codes]))
    assert _matrix(_decode(data)).tolist() == [[1, 2, 3]]
    # make code "0" into "1": it now overlaps "10" and "11"
    clash = [enc.Code(1, 1, 1, 1, 1)] + codes[1:]
    bad = enc.encode(enc.ScpSpec(rhythm=np.array([[2, 3]]), lead_ids=[1], huffman=[clash]))
    with pytest.raises(CorruptDataError, match="prefix-free"):
        _decode(bad)
    # two long codes (beyond the lookup width) that overlap each other
    deep = [enc.Code(k + 1, k + 1, 1, k, ((1 << k) - 1) << 1) for k in range(16)]
    deep += [enc.Code(16, 16, 1, 99, (1 << 16) - 1), enc.Code(17, 17, 1, 98, (1 << 17) - 2)]
    bad = enc.encode(enc.ScpSpec(rhythm=np.array([[0, 1]]), lead_ids=[1], huffman=[deep]))
    with pytest.raises(CorruptDataError, match="prefix-free"):
        _decode(bad)


def test_bits_matching_no_code_are_corrupt_data():
    from ecgingest.errors import CorruptDataError

    codes = [enc.Code(2, 2, 1, 5, 0b00), enc.Code(2, 2, 1, 6, 0b01)]  # "1x" is no code
    x = np.array([[5, 6, 5, 6]])
    data = bytearray(enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1], huffman=[codes])))
    sec6 = _section_offset(bytes(data), 6)
    data[sec6 + 16 + 8] = 0xFF  # first byte of the lead's bit stream
    with pytest.raises(CorruptDataError, match="section 6: a code of the compressed data is invalid"):
        _decode(_fix_crcs(bytes(data)))


def test_subtraction_zone_far_outside_the_record_is_clipped_quickly():
    x = np.arange(20).reshape(1, 20)
    beat = np.array([[1, 1, 1]])
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1], beat=beat, qrs=[(0, 5, 6, 7)], beat_fiducial=2)
    data = bytearray(enc.encode(spec))
    sec4 = _section_offset(bytes(data), 4)
    struct.pack_into("<II", data, sec4 + 16 + 6 + 2, 1, 6)        # SB = 1, fc = 6
    struct.pack_into("<I", data, sec4 + 16 + 6 + 10, 0xFFFFFFF0)  # SE near 2**32
    record = _decode(_fix_crcs(bytes(data)))
    expected = x[0].copy()
    expected[4:7] -= 1  # what the encoder subtracted (5..7) ...
    expected[4:7] += 1  # ... comes back; the zone grew but the beat only spans 5..7
    np.testing.assert_array_equal(record.signals[0].digital, expected)


def test_version_3_ignores_the_bimodal_byte_and_section_4():
    x = np.arange(40).reshape(1, 40)
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1], bimodal_factor=2, qrs=[(1, 5, 6, 10)],
                       version="3.0")
    record = _decode(enc.encode(spec))
    assert record.compression["bimodal"] is False
    assert any("bimodal byte" in w for w in record.warnings)
    assert 4 in record.sections_raw and "qrs_complexes" not in record.extras


@pytest.mark.parametrize("minutes", [-12 * 60, -210, -60, 0, 330, 60 * 14, -13 * 60])
def test_time_zone_offset_maps_to_a_valid_iana_zone_or_none(minutes):
    import zoneinfo

    tags = [(2, b"P\0"), (25, struct.pack("<HBB", 2020, 1, 2)), (26, bytes([3, 4, 5])),
            (34, struct.pack("<hH", minutes, 0))]
    _, data = _simple(tags=tags)
    record = scp.decode(data, name="t.scp", strict=True)
    assert record.start_time.utcoffset() == dt.timedelta(minutes=minutes)
    zone = record.metadata.recording_time_zone
    if minutes % 60 or not -12 * 60 <= minutes <= 14 * 60:
        assert zone is None
    else:
        start = record.metadata.recording_start_time
        assert zoneinfo.ZoneInfo(zone).utcoffset(start.replace(tzinfo=None)) == \
            dt.timedelta(minutes=minutes)


def test_unreadable_reference_beat_that_is_not_needed_is_left_out_with_a_warning():
    x = np.arange(30).reshape(1, 30)
    spec = enc.ScpSpec(rhythm=x, lead_ids=[1], beat=np.zeros((1, 4), np.int64),
                       qrs=[(1, 5, 6, 7)], beat_fiducial=2)
    data = bytearray(enc.encode(spec))
    sec3, sec5 = _section_offset(bytes(data), 3), _section_offset(bytes(data), 5)
    data[sec3 + 16 + 1] &= 0xFE                     # no reference-beat subtraction
    struct.pack_into("<H", data, sec5 + 16 + 2, 0)  # section 5 sample interval 0
    data = _fix_crcs(bytes(data))
    record = _decode(data)
    np.testing.assert_array_equal(record.signals[0].digital, x[0])
    assert "reference_beat" not in record.extras
    assert any("section 5 (reference beat) could not be read" in w for w in record.warnings)
    with pytest.raises(HeaderError, match="interval of 0"):
        scp.decode(data, name="t.scp", strict=True)


@settings(max_examples=25)
@given(x=signals(max_len=300), factor=st.sampled_from([2, 4]), data=st.data())
def test_bimodal_residual_then_reference_beat_follow_the_reconstruction_order(x, factor, data):
    """Step 3 (bimodal interpolation of the residual) comes before step 5 (beat re-added)."""
    nleads, n = x.shape
    assume(n >= 40)
    blen = data.draw(st.integers(5, 20))
    beat = np.random.default_rng(data.draw(st.integers(0, 99))).integers(-50, 50,
                                                                         size=(nleads, blen))
    fcm = data.draw(st.integers(1, blen))
    centres = sorted(data.draw(st.lists(st.integers(15, n - 15), min_size=1, max_size=3,
                                        unique=True)))
    qrs, last_end = [], 0
    for c in centres:
        a, b = max(c - 6, last_end + 1), c + 6
        if a <= c <= b <= n:
            qrs.append((0, a, c, b))
            last_end = b
    assume(qrs)
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:nleads], beat=beat, qrs=qrs,
                       beat_fiducial=fcm, bimodal_factor=factor, huffman=enc.DEFAULT_TABLE)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    zones = [(a, b) for _, a, _, b in qrs]
    for lead in range(nleads):
        residual = x[lead].copy()
        for _, a, fc, b in qrs:
            for s in range(a, b + 1):
                if 0 <= s - fc + fcm - 1 < blen:
                    residual[s - 1] -= beat[lead, s - fc + fcm - 1]
        expected = enc.bimodal_reconstruct(enc.bimodal_store(residual, zones, factor), zones,
                                           factor, n)
        for _, a, fc, b in qrs:
            for s in range(a, b + 1):
                if 0 <= s - fc + fcm - 1 < blen:
                    expected[s - 1] += beat[lead, s - fc + fcm - 1]
        np.testing.assert_array_equal(record.signals[lead].digital, expected)
        for a, b in zones:  # protected zones come back exactly
            np.testing.assert_array_equal(record.signals[lead].digital[a - 1:b], x[lead, a - 1:b])


@pytest.mark.parametrize("code, codec", [(0x07, "utf-8"), (0x13, "iso8859-5"), (0x01, "latin-1")])
def test_text_fields_use_the_encoding_tag14_declares(code, codec):
    name = {"utf-8": "Zoë 山田", "iso8859-5": "Иванов", "latin-1": "Müller"}[codec]
    device = bytes(16) + bytes([code, 0, 0])
    tags = [(0, name.encode(codec) + b"\0"), (2, b"P\0"), (14, device)]
    _, data = _simple(tags=tags)
    record = scp.decode(data, name="t.scp", strict=True)
    assert record.metadata.patient_last_name == name
    assert record.acquisition_info["acquiring_device"]["language_support"] == code



@pytest.mark.parametrize("codec, code", [("utf-8", 0x07), ("latin-1", 0x01)])
def test_statement_texts_decode_in_the_declared_encoding_and_warn_with_the_record(codec,
                                                                                   code):
    # latin-1 decodes every byte, so its statements are built on first access; an
    # encoding that can fail builds them with the record, whose warnings name the text
    device = bytes(16) + bytes([code, 0, 0])
    texts = ["Müller rhythm".encode(codec), b"bad \xff\xfe text"]
    s8 = bytes([0]) + bytes(7) + bytes([len(texts)]) + b"".join(
        struct.pack("<BH", k + 1, len(t) + 1) + t + b"\0" for k, t in enumerate(texts))
    _, data = _simple(tags=[(2, b"P\0"), (14, device)], extra_sections={8: s8})
    record = scp.decode(data, name="t.scp")
    undecodable = [w for w in record.warnings if "is not valid" in w]
    assert len(undecodable) == (1 if codec == "utf-8" else 0)
    statements = record.interpretation["statements"]
    assert statements[0] == {"sequence": 1, "text": "Müller rhythm"}
    assert statements[1]["text"] == b"bad \xff\xfe text".decode(codec, errors="replace")
    assert record.warnings == [*undecodable]  # first access added nothing

def test_bimodal_without_any_protected_zone_decimates_the_whole_record():
    x = np.arange(0, 400, 2).reshape(1, 200)
    stored = enc.bimodal_store(x[0], [], 4)  # one value per 4 samples, no protected zone
    s4 = struct.pack("<HHH", 0, 1, 0)                    # no QRS complexes at all
    s5 = struct.pack("<HHBBH", 5000, 2000, 0, 0, 0)      # full rate 500 Hz, empty beat
    blob = bytearray(enc.encode(enc.ScpSpec(rhythm=stored.reshape(1, -1), lead_ids=[1],
                                            interval_us=8000,
                                            extra_sections={4: s4, 5: s5})))
    sec3 = _section_offset(bytes(blob), 3)
    struct.pack_into("<I", blob, sec3 + 16 + 2 + 4, 200)  # the lead spans 200 samples
    sec6 = _section_offset(bytes(blob), 6)
    blob[sec6 + 16 + 5] = 1  # bimodal
    record = scp.decode(_fix_crcs(bytes(blob)), name="t.scp", strict=True)
    assert record.signals[0].sample_rate == 500.0
    np.testing.assert_array_equal(record.signals[0].digital,
                                  enc.bimodal_reconstruct(stored, [], 4, 200))
    assert record.qrs_complexes["protected_zones"] == []


# ---------------------------------------------------------------- fast paths

@pytest.mark.parametrize("nleads", [1, 2, 5])
def test_long_leads_decode_exactly_through_the_interleaved_huffman_loop(nleads):
    # long leads with large steps: many 8- and 16-bit escapes inside the paired loop,
    # an odd lead count leaves one lead to the single-lead path
    rng = np.random.default_rng(nleads)
    x = np.cumsum(rng.integers(-300, 301, size=(nleads, 4000)), axis=1)
    x[:, ::7] += rng.integers(-2000, 2001, size=(nleads, len(x[0, ::7])))
    for diff in (0, 1, 2):
        spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:nleads], huffman=enc.DEFAULT_TABLE,
                           differences=diff)
        record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
        np.testing.assert_array_equal(_matrix(record), x)


@settings(max_examples=15)
@given(tables=huffman_tables(), data=st.data())
def test_long_leads_with_table_switches_decode_exactly(tables, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = np.cumsum(rng.integers(-60, 61, size=(3, 1500)), axis=1)
    schedule = data.draw(st.lists(st.integers(0, len(tables) - 1), min_size=1, max_size=7))
    spec = enc.ScpSpec(rhythm=x, lead_ids=LEAD_IDS[:3], huffman=tables, schedule=schedule,
                       differences=1)
    record = scp.decode(enc.encode(spec), name="t.scp", strict=True)
    np.testing.assert_array_equal(_matrix(record), x)


def _pointer_table_record(body: bytes, pointers: list[tuple[int, int, int]]) -> bytes:
    """``body`` with a section 0 header at byte 8 and ``pointers`` (id, length,
    index) after it; the rest of the bytes are whatever ``body`` holds."""
    data = bytearray(body)
    struct.pack_into("<HI", data, 8, 0, 16 + 10 * len(pointers))
    for k, entry in enumerate(pointers):
        struct.pack_into("<HII", data, 22 + 10 * k, *entry)
    return bytes(data)


def _scanned(data: bytes, crcs: bool = True) -> tuple[object, ...]:
    """``scan_headers``' problems, sections, rows, stored CRCs, record length, stored
    record CRC and record CRC (the section headers left out)."""
    return kernels.scan_headers(np.frombuffer(data, np.uint8), crcs)[:7]


def _expected_section_crc(data: bytes, slen: int, index: int, end: int) -> int | None:
    start = index - 1
    if slen == 0 or index == 0 or slen < 16 or start + slen > end:
        return None
    hlen = struct.unpack_from("<I", data, start + 4)[0]
    length = slen if hlen == slen else max(16, min(hlen, slen))
    return binascii.crc_hqx(data[start + 2:start + length], 0xFFFF)


@given(body=st.binary(min_size=200, max_size=700),
       spans=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 300), st.booleans()),
                      max_size=12),
       trailing=st.integers(0, 50))
def test_container_scan_gives_the_direct_crc_of_the_record_and_of_every_section(
        body, spans, trailing):
    # sections in any order, overlapping, repeated, over the record header or past the end:
    # the record CRC combined from the section CRCs equals the CRC read directly
    pointers = [(k + 1, slen, index) for k, (index, slen, _) in enumerate(spans)]
    assume(22 + 10 * len(pointers) <= len(body))
    data = bytearray(_pointer_table_record(body, pointers))
    table_end = 22 + 10 * len(pointers)
    for index, slen, same in spans:
        if same and index - 1 + 4 >= table_end and index - 1 + 8 <= len(data):
            struct.pack_into("<I", data, index - 1 + 4, slen)  # header length as the pointer's
    end = len(data) - min(trailing, len(data) - 22 - 10 * len(pointers))
    struct.pack_into("<I", data, 2, end)  # the record length
    data = bytes(data)
    *_, rows, _, _, _, record_crc = _scanned(data)
    assert record_crc == binascii.crc_hqx(data[2:end], 0xFFFF)
    assert rows.shape == (len(pointers), 9)
    # left to a later kernel call: the same rows once it has filled in the CRCs
    *_, later, _, _, _, none = _scanned(data, False)
    assert none == -1 and (later[:, 8] == -1).all()
    np.testing.assert_array_equal(later[:, :8], rows[:, :8])
    assert kernels.container_crcs(np.frombuffer(data, np.uint8), later, end) == record_crc
    np.testing.assert_array_equal(later, rows)
    for (sid, slen, index), row in zip(pointers, rows.tolist()):
        assert row[:3] == [sid, slen, index]
        expected = _expected_section_crc(data, slen, index, end)
        assert row[8] == (-1 if expected is None else expected)
        if expected is not None:
            start = index - 1
            assert row[3:8] == [*struct.unpack_from("<HHI", data, start), data[start + 8],
                                data[start + 9]]


def test_container_scan_of_a_large_record_matches_the_direct_crcs():
    # records of 64 KiB and more are scanned with the GIL released: same results
    rng = np.random.default_rng(5)
    body = rng.integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
    pointers = [(1, 90_000, 100), (2, 16, 95_000), (3, 60_000, 120_000), (4, 10, 5)]
    data = bytearray(_pointer_table_record(body, pointers))
    struct.pack_into("<I", data, 99 + 4, 90_000)
    struct.pack_into("<I", data, 2, len(data))
    data = bytes(data)
    *_, rows, _, _, _, record_crc = _scanned(data)
    assert record_crc == binascii.crc_hqx(data[2:], 0xFFFF)
    for (_, slen, index), row in zip(pointers, rows.tolist()):
        expected = _expected_section_crc(data, slen, index, len(data))
        assert row[8] == (-1 if expected is None else expected)


# ---------------------------------------------------------------- hostile tables, limits

def test_huffman_codes_of_32_bits_decode_exactly():
    # a 32-bit code whose top bit is set does not fit a signed 32-bit column
    codes = [enc.Code(1, 1, 1, 0, 0), enc.Code(32, 32, 1, 5, (1 << 32) - 1)]
    x = np.array([[0, 5, 0, 5, 5]])
    data = enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1], huffman=[codes]))
    assert _matrix(_decode(data, strict=True)).tolist() == x.tolist()


def _with_section2(body: bytes) -> bytes:
    """An encoded record whose section 2 body is replaced by ``body`` (CRCs fixed)."""
    x = np.array([[0, 1, 2, 1, 0]])
    data = enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1], huffman=enc.DEFAULT_TABLE,
                                  extra_sections={}))
    start = _section_offset(data, 2)
    length = struct.unpack_from("<I", data, start + 4)[0]
    # keep the section's length: pad or cut the hostile body to it
    body = (body + bytes(length - 16))[:length - 16]
    return _fix_crcs(data[:start + 16] + body + data[start + length:])


_code_rows = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                                st.integers(-32768, 32767), st.integers(0, 2**32 - 1)),
                      min_size=0, max_size=12)


@settings(max_examples=150)
@given(tables=st.lists(_code_rows, min_size=1, max_size=3), strict=st.booleans())
def test_hostile_huffman_tables_end_in_a_record_or_a_typed_error(tables, strict):
    body = struct.pack("<H", len(tables))
    for rows in tables:
        body += struct.pack("<H", len(rows))
        body += b"".join(struct.pack("<BBBhI", *row) for row in rows)
    data = _with_section2(body)
    try:
        record = _decode(data, strict=strict)
    except EcgIngestError:
        return
    assert record.format == "scp"


@settings(max_examples=60)
@given(name=st.sampled_from(FIXTURE_FILES), data=st.data())
def test_mutated_real_files_end_in_a_record_or_a_typed_error_when_strict_and_inspected(
        name, data):
    raw = bytearray((FIX / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, min(len(raw), 4096) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    mutated = _fix_crcs(bytes(raw)) if data.draw(st.booleans()) else bytes(raw)
    for strict in (False, True):
        ctx = DecodeContext("scp", name="t.scp", path="t.scp", strict=strict)
        for read in (scp.FORMAT.decode, scp.FORMAT.inspect):
            try:
                read(mutated, ctx.for_file())
            except EcgIngestError:
                pass


def test_decoded_samples_count_against_the_upload_budget_before_allocation():
    from ecgingest.errors import LimitExceededError
    from ecgingest.formats._base import OutputBudget
    from ecgingest.limits import Limits

    x = np.zeros((2, 1000), dtype=np.int64)
    data = enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2]))
    needed = 2 * 1000 * 4  # two leads of int32 work values
    ok = DecodeContext("scp", name="t.scp", limits=Limits(max_decoded_size=needed))
    scp.FORMAT.decode(data, ok)
    assert ok.budget.used == needed
    budget = OutputBudget(needed)  # shared by the records of one upload
    first = DecodeContext("scp", name="a.scp", budget=budget)
    scp.FORMAT.decode(data, first)
    with pytest.raises(LimitExceededError, match="section 6 samples"):
        scp.FORMAT.decode(data, first.for_file(name="b.scp", path="b.scp"))
