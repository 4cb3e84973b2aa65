"""Philips SierraECG / PhilipsECG XML: conformance on real files, XLI round trips
through the test-side encoder, limb-lead reconstruction, representative beats,
encodings (UTF-16 with BOM), and damaged files from every source kind."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
import xli_encoder as enc
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecg_xml_writers import ENCODINGS, mutate, outcomes, philips_document
from ecgingest._ext import xli
from ecgingest.detect import detect
from ecgingest.errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    HeaderError,
    TruncatedError,
)
from ecgingest.formats import philips
from ecgingest.formats._base import DecodeContext, Probe
from ecgingest.sources import Entry

FIX = FIXTURES / "philips"
LEADS = philips.STANDARD_LEADS


def _decode(data: bytes, strict: bool = False) -> ecgingest.Record:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return philips.FORMAT.decode(data, DecodeContext("philips", name="t.xml", strict=strict))


def _smooth(n: int, rng: np.random.Generator, step: int = 8) -> np.ndarray:
    """ECG-like integers: bounded second differences, so XLI values fit int16."""
    return np.cumsum(np.cumsum(rng.integers(-step, step + 1, n))) // 4


def _true_leads(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {label: _smooth(n, rng) for label in LEADS}


# ---------------------------------------------------------------- real files


def _check_against_reference(record: ecgingest.Record, path: Path) -> None:
    ref = np.load(f"{path}.ref.npz")
    meta = json.loads(Path(f"{path}.ref.json").read_text())
    assert record.labels == [str(c) for c in ref["channel_names"]]
    np.testing.assert_array_equal(np.array([s.digital for s in record.signals]), ref["digital"])
    np.testing.assert_allclose(np.array([s.physical for s in record.signals]), ref["physical"],
                               rtol=1e-12, atol=1e-9)
    assert [s.sample_rate for s in record.signals] == [float(f) for f in ref["fs"]]
    assert record.start_time == dt.datetime.fromisoformat(meta["start_time"])
    assert record.format_detail == meta["format_detail"]
    if "repbeat_digital" in ref.files:
        beats = record.representative_beats
        assert list(beats.labels) == [str(c) for c in ref["repbeat_channel_names"]]
        np.testing.assert_array_equal(beats.digital, ref["repbeat_digital"])
        np.testing.assert_allclose(beats.physical, ref["repbeat_physical"], rtol=1e-12,
                                   atol=1e-9)
        assert beats.sample_rate == meta["repbeats"][0]["fs"]
    assert record.warnings == []


def test_the_sierra_1_03_fixture_matches_the_reference_reader():
    path = FIX / "sierra_1_03_129DYPRG.XML"
    [record] = ecgingest.read(path)
    assert record.format == "philips"
    _check_against_reference(record, path)
    texts = [s["text"] for s in record.interpretation["statements"]]
    assert texts[0] == "Sinus bradycardia rate< 50"
    assert record.global_measurements["qrs_duration_ms"] == 135


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("philips"), ids=lambda r: r["path"])
def test_corpus_files_match_the_reference_reader(entry):
    path = corpus_dir() / entry["path"]
    [record] = ecgingest.read(path.read_bytes())
    _check_against_reference(record, path)


# ---------------------------------------------------------------- the XLI kernel


@settings(max_examples=60)
@given(n=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1), step=st.sampled_from([1, 8, 60]))
def test_xli_chunks_of_the_test_encoder_decode_exactly(n, seed, step):
    samples = _smooth(n, np.random.default_rng(seed), step)
    chunk = enc.encode_lead(samples)
    status, values, produced, chunks, failed = xli.decode(np.frombuffer(chunk, np.uint8), 1, n)
    assert (status, chunks, failed, produced.tolist()) == (xli.STATUS_OK, 1, -1, [n])
    np.testing.assert_array_equal(values[0], samples)


@given(payload=st.binary(max_size=600), start=st.integers(-32768, 32767),
       n=st.integers(0, 400))
def test_any_xli_payload_decodes_or_reports_a_status(payload, start, n):
    chunk = struct.pack("<ihh", len(payload), 0, start) + payload
    status, values, produced, _, _ = xli.decode(np.frombuffer(chunk, np.uint8), 1, n)
    assert status in (xli.STATUS_OK, xli.STATUS_BAD_CODE, xli.STATUS_OVERFLOW)
    assert values.shape == (1, n)


def test_a_code_past_the_dictionary_is_a_bad_code():
    # 0x41 then code 300 while the next free entry is 256
    bits = format(0x41, "010b") + format(300, "010b") + "0" * 20
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
    chunk = struct.pack("<ihh", len(payload), 0, 0) + payload
    assert xli.decode(np.frombuffer(chunk, np.uint8), 1, 4)[0] == xli.STATUS_BAD_CODE


def test_chunk_sizes_past_the_data_are_truncation():
    chunk = enc.encode_lead(np.arange(50))
    status, *_ = xli.decode(np.frombuffer(chunk[:-3], np.uint8), 1, 50)
    assert status == xli.STATUS_TRUNCATED
    status, *_, chunks, failed = xli.decode(np.frombuffer(chunk, np.uint8), 2, 50)
    assert (status, chunks, failed) == (xli.STATUS_TRUNCATED, 1, 1)


def _one_region_reference(raw: bytes, nleads: int, nsamples: int, limb: list[int] | None
                          ) -> list[np.ndarray]:
    """What ``decode_waveforms`` must give, from ``decode`` and numpy (the reader's
    earlier steps): rows cut to the samples kept, residuals rebuilt, int16 where the
    range with 0 fits."""
    _, values, produced, _, _ = xli.decode(np.frombuffer(raw, np.uint8), nleads, nsamples)
    rows = [values[i, :min(int(p), nsamples)] for i, p in enumerate(produced)]
    if limb is not None:
        n = min(len(rows[r]) for r in limb)
        parts = {label: np.array(rows[r][:n], dtype=np.int32)
                 for label, r in zip(("I", "II", "III", "aVR", "aVL", "aVF"), limb)}
        if n:
            philips.reconstruct_limb_leads(parts)
        for label, r in zip(("I", "II", "III", "aVR", "aVL", "aVF"), limb):
            rows[r] = parts[label]
    return [row.astype(np.int16) if -32768 <= row.min(initial=0) and
            row.max(initial=0) <= 32767 else row for row in rows]


@settings(max_examples=80)
@given(chunks=st.lists(st.one_of(
           st.tuples(st.binary(max_size=300), st.integers(-32768, 32767)),
           st.tuples(st.integers(0, 400), st.integers(0, 2**32 - 1))), min_size=6, max_size=9),
       nsamples=st.integers(0, 400), rebuild=st.booleans(), order=st.randoms())
def test_the_one_region_decode_matches_decode_then_numpy(chunks, nsamples, rebuild, order):
    data = b""
    for first, second in chunks:
        if isinstance(first, bytes):  # any payload: values anywhere in int32, wrapping sums
            data += struct.pack("<ihh", len(first), 0, second) + first
        else:
            data += enc.encode_lead(_smooth(first, np.random.default_rng(second)))
    limb = order.sample(range(len(chunks)), 6) if rebuild else None
    text = base64.encodebytes(data).decode("ascii")
    status, values = xli.decode(np.frombuffer(data, np.uint8), len(chunks), nsamples)[:2]
    (decoded, status_one, values_one, narrow, _, kept, fits, _,
     _) = xli.decode_waveforms(text, len(chunks), nsamples, limb)
    assert (decoded, status_one) == (xli.STATUS_OK, status)
    if status != xli.STATUS_OK:
        return
    expected = _one_region_reference(data, len(chunks), nsamples, limb)
    for i, want in enumerate(expected):
        got = (narrow if fits[i] else values_one)[i, :kept[i]]
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@given(text=st.text(alphabet="QUJDRA+/=\n ?é", max_size=40))
def test_the_one_region_decode_refuses_the_base64_binascii_refuses(text):
    decoded = xli.decode_waveforms(text, 1, 4)[0]
    try:
        binascii.a2b_base64(text.encode("ascii", errors="replace"))
    except binascii.Error as exc:
        assert decoded == (xli.STATUS_BAD_VALUE if "1 more than" in str(exc)
                           else xli.STATUS_TRUNCATED)
    else:
        assert decoded == xli.STATUS_OK


@given(texts=st.lists(st.one_of(
    st.binary(max_size=3000).map(lambda b: base64.encodebytes(b).decode("ascii")),
    st.text(alphabet="QUJDRA+/=\n ?é", max_size=40)), max_size=14))
def test_beats_decoded_in_one_call_are_binascii_s_bytes_packed(texts):
    data, table = xli.decode_base64_rows(texts)
    at = 0
    for text, (offset, length, status) in zip(texts, table.tolist()):
        assert offset == at
        try:
            raw = binascii.a2b_base64(text.encode("ascii", errors="replace"))
        except binascii.Error:
            assert status != xli.STATUS_OK
            at += length
            continue
        assert status == xli.STATUS_OK
        assert data[offset:offset + length].tobytes() == raw[:len(raw) & ~1]
        at += length


# ---------------------------------------------------------------- round trips


@settings(max_examples=30)
@given(n=st.integers(3, 600), seed=st.integers(0, 2**32 - 1),
       version=st.sampled_from(["1.03", "1.04", "1.04.01"]),
       encoding=st.sampled_from(ENCODINGS), rate=st.sampled_from([250, 500, 1000]),
       resolution=st.sampled_from([5.0, 2.5, 1.0]))
def test_written_files_read_back_exactly(n, seed, version, encoding, rate, resolution):
    true = _true_leads(n - n % 2, seed)  # whole milliseconds per lead at every rate
    beats = {label: _smooth(40, np.random.default_rng(seed + 1)) for label in LEADS}
    data = philips_document(enc.residuals(true), version=version, encoding=encoding,
                            rate=rate, resolution=resolution, repbeats=beats)
    assert detect(Entry.from_bytes("x.bin", data)).name == "philips"
    record = _decode(data, strict=True)
    assert record.labels == list(LEADS)
    for label in LEADS:
        sig = record.signal(label)
        np.testing.assert_array_equal(sig.digital, true[label])
        assert sig.sample_rate == rate and sig.scale == resolution
    np.testing.assert_array_equal(record.representative_beats.digital,
                                  np.array([beats[label] for label in LEADS]))
    assert record.representative_beats.scale == (2.5,) * 12
    assert record.format_detail.endswith(version)


def test_uncompressed_leads_are_read_as_stored():
    stored = {label: np.arange(10) * (i + 1) for i, label in enumerate(LEADS)}
    record = _decode(philips_document(stored, compression="Uncompressed"), strict=True)
    for label in LEADS:
        np.testing.assert_array_equal(record.signal(label).digital, stored[label])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_names_and_statements_keep_their_accents(encoding):
    data = philips_document(enc.residuals(_true_leads(20, 3)), encoding=encoding,
                            last_name="Gómez Ñúñez",
                            statements=[("Rythme sinusal", "fréquence 60-99")])
    record = _decode(data, strict=True)
    assert record.metadata.patient_last_name == "Gómez Ñúñez"
    assert record.interpretation["statements"][0]["text"] == "Rythme sinusal fréquence 60-99"
    assert record.metadata.patient_gender == "FEMALE"


def test_fewer_samples_than_the_duration_is_truncation_strict_and_a_warning_tolerant():
    stored = enc.residuals(_true_leads(100, 4))
    data = philips_document(stored).replace(b'durationperchannel="200"',
                                            b'durationperchannel="300"')
    record = _decode(data)
    assert all(len(s) == 100 for s in record.signals) and record.warnings
    with pytest.raises(TruncatedError):
        _decode(data, strict=True)


def test_a_damaged_xli_stream_is_corrupt_data_naming_the_lead():
    data = philips_document({"I": np.arange(20), "II": np.arange(20)})
    good = _decode(data, strict=True)
    assert good.labels == ["I", "II"]
    text = data[data.index(b"<parsedwaveforms"):data.index(b"</parsedwaveforms>")]
    bad = data.replace(text.split(b">")[1], b"AAAAAA==")  # 4 bytes: half a chunk header
    with pytest.raises((CorruptDataError, TruncatedError), match="lead I"):
        _decode(bad)


def test_a_file_without_waveforms_is_a_header_error():
    data = philips_document({"I": np.arange(4)}).replace(b"parsedwaveforms", b"otherwaveforms")
    with pytest.raises(HeaderError, match="parsedwaveforms"):
        _decode(data)


def test_inspect_reads_the_header_only():
    data = philips_document(enc.residuals(_true_leads(1000, 5)))
    info = philips.FORMAT.inspect(data, DecodeContext("philips"))
    assert [s.label for s in info.signals] == list(LEADS)
    assert {s.samples for s in info.signals} == {1000}


def test_sniffing_honours_utf16_byte_order_marks():
    for encoding in ("UTF-16-LE", "UTF-16-BE"):
        data = philips_document({"I": np.arange(4)}, encoding=encoding)
        assert philips.sniff(Probe.of_bytes(data, "a.bin"))
    assert not philips.sniff(Probe.of_bytes(b'<restingecgdata xmlns="urn:x"/>', "a.xml"))


# ---------------------------------------------------------------- damaged files


INTACT = philips_document(enc.residuals(_true_leads(40, 9)))


@settings(max_examples=30)
@given(data=st.data())
def test_mutated_files_end_in_a_record_or_a_typed_error_from_every_source(data, tmp_path_factory):
    encoding = data.draw(st.sampled_from(ENCODINGS))
    raw = mutate(philips_document(enc.residuals(_true_leads(60, 6)), encoding=encoding,
                                  repbeats={"I": np.arange(10)}), data)
    outcomes(raw, tmp_path_factory.mktemp("philips"), "damaged.xml", INTACT)


@settings(max_examples=30)
@given(data=st.data())
def test_mutated_real_file_ends_in_a_record_or_a_typed_error(data):
    raw = bytearray((FIX / "sierra_1_03_129DYPRG.XML").read_bytes())
    start = raw.index(b"<parsedwaveforms")
    for _ in range(data.draw(st.integers(1, 10))):
        # half of the mutations hit the compressed waveform text
        low = start if data.draw(st.booleans()) else 0
        raw[data.draw(st.integers(low, len(raw) - 1))] = data.draw(
            st.sampled_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                            b"<>\x00\xff"))
    try:
        record = _decode(bytes(raw), strict=data.draw(st.booleans()))
    except EcgIngestError:
        return
    assert record.format == "philips"


@requires_corpus
@pytest.mark.parametrize("codec, bom", [("utf-16-be", b"\xfe\xff"), ("utf-8", b""),
                                        ("utf-8", b"\xef\xbb\xbf")])
def test_re_encoded_copies_of_a_utf16_file_read_the_same(codec, bom):
    path = corpus_dir() / "philips" / "philips_1_04_3191723.xml"
    original = path.read_bytes()
    text = original.decode("utf-16")
    declared = "UTF-16" if codec.startswith("utf-16") else "UTF-8"
    copy = bom + text.replace('encoding="utf-16"', f'encoding="{declared}"', 1).encode(codec)
    assert detect(Entry.from_bytes("copy", copy)).name == "philips"
    [expected], [got] = ecgingest.read(original), ecgingest.read(copy)
    assert got.labels == expected.labels and got.metadata == expected.metadata
    for a, b in zip(got.signals, expected.signals):
        np.testing.assert_array_equal(a.digital, b.digital)
