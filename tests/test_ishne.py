"""ISHNE Holter: conformance on the corpus file, round trips through a test-side
writer, and damaged files that end in a record or a typed error."""

from __future__ import annotations

import binascii
import datetime as dt
import io
import json
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, read_quietly, requires_corpus
from ecgingest.detect import detect
from ecgingest.errors import (
    ChecksumError,
    EcgIngestError,
    HeaderError,
    LimitExceededError,
    TruncatedError,
)
from ecgingest.formats import ishne
from ecgingest.formats._base import DecodeContext, OutputBudget, Probe
from ecgingest.sources import Entry


def write_ishne(samples: np.ndarray, *, codes=None, resolution_nv=None, rate: int = 200,
                variable_block: bytes = b"", subject: bytes = b"S1", sex: int = 1,
                birth=(31, 1, 1970), recording_date=(2, 3, 2021), start=(8, 30, 15),
                pacemaker: int = 0, recorder: bytes = b"rec", crc: bool = True,
                magic: bytes = ishne.MAGIC, samples_per_lead: int | None = None) -> bytes:
    """An ISHNE 1.0 file from the byte layout of the standard (leads x samples int16)."""
    leads, n = samples.shape
    codes = list(codes if codes is not None else range(5, 5 + leads))
    resolution = list(resolution_nv if resolution_nv is not None else [2500] * leads)
    pad = [0] * (12 - leads)
    fixed = struct.pack(
        "<iiiih40s40s20shh3h3h3h3hh12h12h12hh40sh80s80s88s",
        len(variable_block), n if samples_per_lead is None else samples_per_lead,
        522, 522 + len(variable_block), 1, b"Ann", b"Example", subject, sex, 1,
        *birth, *recording_date, 4, 5, 2022, *start, leads, *(codes + pad), *([0] * 12),
        *(resolution + pad), pacemaker, recorder, rate, b"", b"", b"")
    body = fixed + variable_block
    checksum = binascii.crc_hqx(body, 0xFFFF) if crc else 0
    data = samples.T.astype("<i2").tobytes()
    return magic + struct.pack("<H", checksum) + body + data


def write_annotations(first: int, beats: list[tuple[str, int]]) -> bytes:
    header = write_ishne(np.zeros((1, 0), np.int16), magic=ishne.ANNOTATION_MAGIC, crc=False)
    body = b"".join(label.encode() + b"#" + struct.pack("<H", gap) for label, gap in beats)
    return header + struct.pack("<I", first) + body


def _ctx(**kw) -> DecodeContext:
    return DecodeContext("ishne", name="t.ecg", path="t.ecg", **kw)


def _decode(data: bytes, ann: bytes | None = None, **kw) -> ecgingest.Record:
    return ishne.decode(data, _ctx(**kw), ann)


# ---------------------------------------------------------------- the corpus file

@requires_corpus
def test_the_corpus_file_matches_its_reference_exactly():
    root = corpus_dir()
    data = (root / "ishne/ECG_P28.01.ecg").read_bytes()
    ann = (root / "ishne/ECG_P28.01.ann").read_bytes()
    ref = np.load(root / "ishne/ECG_P28.01.ecg.ref.npz")
    meta = json.loads((root / "ishne/ECG_P28.01.ecg.ref.json").read_text())
    record = _decode(data, ann)
    assert record.labels == list(ref["channel_names"])
    for i, signal in enumerate(record.signals):
        assert np.array_equal(signal.digital, ref["digital"][i])
        np.testing.assert_allclose(signal.physical, ref["physical"][i], rtol=1e-12, atol=1e-9)
        assert signal.sample_rate == ref["fs"][i]
        assert signal.units == ref["units"][i]
    assert record.start_time == dt.datetime.fromisoformat(meta["start_time"])
    assert record.metadata.patient_id == meta["ishne_header"]["id"]
    assert record.metadata.patient_birth_date is None  # stored as -9/-9/-9
    assert record.warnings == []  # its CRC checks out
    beats = meta["annotation_file"]["annotations"]
    assert [(a.onset, a.text) for a in record.annotations] == [
        (sample / 1000.0, label) for sample, label, _, _ in beats]
    assert record.beats["samples"].tolist() == [b[0] for b in beats]


@requires_corpus
def test_the_corpus_file_is_detected_by_content_and_read_from_disk_and_a_zip(tmp_path):
    root = corpus_dir()
    data = (root / "ishne/ECG_P28.01.ecg").read_bytes()
    renamed = tmp_path / "holter.bin"
    renamed.write_bytes(data)
    from_disk = ecgingest.read(renamed)
    assert [r.format for r in from_disk] == ["ishne"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("p28/ECG_P28.01.ecg", data)
    from_zip = ecgingest.read(buffer.getvalue())
    assert np.array_equal(from_zip[0].signals[5].digital, from_disk[0].signals[5].digital)


@requires_corpus
def test_no_earlier_format_claims_the_ishne_file():
    data = (corpus_dir() / "ishne/ECG_P28.01.ecg").read_bytes()
    assert detect(Entry.from_bytes("x.ecg", data)) is ishne.FORMAT


# ---------------------------------------------------------------- round trips

@st.composite
def _recordings(draw):
    leads = draw(st.integers(1, 12))
    n = draw(st.integers(0, 300))
    values = draw(st.lists(st.integers(-32768, 32767), min_size=leads * n,
                           max_size=leads * n))
    samples = np.array(values, dtype=np.int16).reshape(leads, n)
    codes = draw(st.lists(st.integers(0, 22), min_size=leads, max_size=leads))
    resolution = draw(st.lists(st.integers(1, 32767), min_size=leads, max_size=leads))
    rate = draw(st.integers(1, 32767))
    block = draw(st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"x")))
    return samples, codes, resolution, rate, block


@settings(max_examples=60)
@given(_recordings())
def test_written_recordings_read_back_exactly(recording):
    samples, codes, resolution, rate, block = recording
    data = write_ishne(samples, codes=codes, resolution_nv=resolution, rate=rate,
                       variable_block=block)
    record = _decode(data, strict=True)
    assert len(record.signals) == samples.shape[0]
    for i, signal in enumerate(record.signals):
        assert signal.digital.dtype == np.int16
        assert np.array_equal(signal.digital, samples[i])
        assert signal.sample_rate == rate
        assert signal.scale == resolution[i] / 1000.0 and signal.units == "uV"
        assert signal.label.startswith(ishne.LEAD_NAMES[codes[i]])
    assert len(set(record.labels)) == len(record.labels)
    assert record.variable_block == block.decode("latin-1").strip()
    info = ishne.inspect(data, _ctx())
    assert [s.samples for s in info.signals] == [samples.shape[1]] * samples.shape[0]
    assert [s.label for s in info.signals] == record.labels


def test_header_fields_become_metadata_start_time_and_extras():
    record = _decode(write_ishne(np.zeros((3, 10), np.int16), codes=[1, 1, 1], pacemaker=4,
                                 recorder=b"DR180+"))
    assert record.labels == ["bipolar 1", "bipolar 2", "bipolar 3"]
    assert record.start_time == dt.datetime(2021, 3, 2, 8, 30, 15)
    assert record.metadata.patient_gender == "MALE"
    assert record.metadata.patient_birth_date == dt.date(1970, 1, 31)
    assert record.metadata.patient_first_name == "Ann"
    assert record.metadata.device_id == "DR180+"
    assert record.pacemaker == "single chamber bipolar"
    assert record.file_date == dt.date(2022, 5, 4)


def test_an_unknown_recording_date_leaves_the_time_of_day():
    record = _decode(write_ishne(np.zeros((1, 4), np.int16), recording_date=(-9, -9, -9)))
    assert record.start_time == dt.time(8, 30, 15)


def test_beat_annotations_accumulate_the_gaps_from_the_first_sample():
    data = write_ishne(np.zeros((2, 1000), np.int16), rate=200)
    ann = write_annotations(10, [("N", 100), ("V", 150), ("!", 40)])
    record = _decode(data, ann)
    assert [(a.onset, a.text) for a in record.annotations] == [
        (110 / 200, "N"), (260 / 200, "V"), (300 / 200, "!")]
    assert record.beats["internal"] == "###"


def test_an_annotation_file_is_recognised_but_not_claimed_as_a_record():
    ann = write_annotations(0, [("N", 1)])
    probe = Probe.of_bytes(ann, "x.ann")
    assert not ishne.sniff(probe)
    assert "annotation file" in ishne.FORMAT.skip_reason(probe)


# ---------------------------------------------------------------- .ann beside the ECG


def _holter_pair() -> tuple[bytes, bytes]:
    data = write_ishne(np.arange(2000, dtype=np.int16).reshape(2, 1000), rate=200)
    return data, write_annotations(10, [("N", 100), ("V", 150), ("N", 40)])


def _beats(record: ecgingest.Record) -> list[tuple[float, str]]:
    return [(a.onset, a.text) for a in record.annotations]


@pytest.mark.parametrize("ann_first", [True, False])
def test_the_annotation_file_beside_the_ecg_gives_its_beats_in_a_directory_and_a_zip(
        tmp_path, ann_first):
    data, ann = _holter_pair()
    expected = _beats(_decode(data, ann))
    (tmp_path / "h.ecg").write_bytes(data)
    (tmp_path / "h.ann").write_bytes(ann)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        members = [("p/h.ann", ann), ("p/h.ecg", data)]
        for name, body in (members if ann_first else members[::-1]):
            archive.writestr(name, body)
    for source in (tmp_path, buffer.getvalue()):
        result = ecgingest.ingest(source)
        [record] = result.records
        assert result.skipped == [] and _beats(record) == expected
        assert [s.rpartition("/")[2] for s in record.sources] == ["h.ecg", "h.ann"]


def test_an_ecg_keeps_its_place_among_the_records_when_read_with_its_annotations(tmp_path):
    data, ann = _holter_pair()
    for name in ("a.ecg", "c.ecg"):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "b.ecg").write_bytes(data)
    (tmp_path / "b.ann").write_bytes(ann)
    records = ecgingest.ingest(tmp_path).records
    assert [r.name for r in records] == ["a.ecg", "b.ecg", "c.ecg"]
    assert [len(r.annotations) for r in records] == [0, 3, 0]


def test_a_damaged_annotation_file_costs_the_beats_not_the_samples(tmp_path):
    data, ann = _holter_pair()
    (tmp_path / "h.ecg").write_bytes(data)
    (tmp_path / "h.ann").write_bytes(ann[:100])  # cut inside its header
    result = ecgingest.ingest(tmp_path)
    [record] = result.records
    assert record.annotations == [] and len(record.signals[0]) == 1000
    assert any("beat annotation file 'h.ann' cannot be read" in w for w in record.warnings)
    strict = ecgingest.ingest(tmp_path, strict=False)
    assert strict.records
    with pytest.raises(EcgIngestError):
        ecgingest.ingest(tmp_path, strict=True)


def test_a_lazy_read_of_an_ecg_with_annotations_reads_them(tmp_path):
    data, ann = _holter_pair()
    (tmp_path / "h.ecg").write_bytes(data)
    (tmp_path / "h.ann").write_bytes(ann)
    [record] = ecgingest.read(tmp_path, lazy=True)
    assert _beats(record) == _beats(_decode(data, ann))


# ---------------------------------------------------------------- damage

def test_a_wrong_crc_is_a_warning_when_tolerant_and_an_error_when_strict():
    data = bytearray(write_ishne(np.ones((2, 5), np.int16)))
    data[8] ^= 0xFF
    record = _decode(bytes(data))
    assert any("CRC" in w for w in record.warnings)
    with pytest.raises(ChecksumError):
        _decode(bytes(data), strict=True)


def test_a_cut_data_block_reads_the_whole_samples_present_or_fails_strict():
    samples = np.arange(40, dtype=np.int16).reshape(2, 20)
    data = write_ishne(samples)[:-7]  # one 4-byte frame and 3 bytes of another missing
    record = _decode(data)
    assert np.array_equal(record.signals[1].digital, samples[1, :18])
    assert any("announces 20" in w for w in record.warnings)
    with pytest.raises(TruncatedError):
        _decode(data, strict=True)


@pytest.mark.parametrize("field_offset, value, error", [
    (156, 0, HeaderError), (156, 13, HeaderError), (272, 0, HeaderError),
    (14, -1, HeaderError)])
def test_impossible_header_values_are_header_errors(field_offset, value, error):
    data = bytearray(write_ishne(np.ones((2, 5), np.int16)))
    fmt = "<h" if field_offset in (156, 272) else "<i"
    struct.pack_into(fmt, data, field_offset, value)
    with pytest.raises(error):
        _decode(bytes(data))


def test_a_data_offset_past_the_end_is_a_truncation():
    data = bytearray(write_ishne(np.ones((2, 5), np.int16)))
    struct.pack_into("<i", data, 22, 10_000)
    with pytest.raises(TruncatedError):
        _decode(bytes(data))


def test_output_is_counted_against_the_upload_budget_before_allocating():
    data = write_ishne(np.ones((4, 1000), np.int16))
    ctx = DecodeContext("ishne", budget=OutputBudget(1000))
    with pytest.raises(LimitExceededError):
        ishne.decode(data, ctx)


_BASE = write_ishne(np.arange(60, dtype=np.int16).reshape(3, 20), variable_block=b"note")


def mutate(base: bytes, edits, cut: int) -> bytes:
    data = bytearray(base)
    for position, value in edits:
        data[position] = value
    return bytes(data[:cut])


def ends_in_a_record_or_a_typed_error(data: bytes, name: str, decode) -> None:
    """The decoder, ``ecgingest.read`` of the bytes and of a ZIP holding them: each
    gives records or raises an ecgingest error (anything else fails the test)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"dir/{name}", data)
    for read, source in ((decode, data), (read_quietly, data),
                         (read_quietly, buffer.getvalue())):
        try:
            read(source)
        except EcgIngestError:
            pass


def mutants_on_disk_end_in_a_record_or_a_typed_error(tmp_path, base: bytes, suffix: str,
                                                     keep: int, seed: int) -> None:
    """30 files on disk, each with a few random bytes changed and cut at random
    (never inside the first ``keep`` bytes), read through ``ecgingest.read``."""
    rng = np.random.default_rng(seed)
    for i in range(30):
        edits = [(int(p), int(rng.integers(0, 256))) for p in rng.integers(keep, len(base), 4)]
        path = tmp_path / f"m{i}{suffix}"
        path.write_bytes(mutate(base, edits, int(rng.integers(keep, len(base) + 1))))
        try:
            read_quietly(path)
        except EcgIngestError:
            pass


@settings(max_examples=80)
@given(st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)),
                min_size=1, max_size=8),
       st.integers(8, len(_BASE)))
def test_mutated_files_end_in_a_record_or_a_typed_error(edits, cut):
    ends_in_a_record_or_a_typed_error(mutate(_BASE, edits, cut), "rec.ecg", _decode)


def test_mutated_files_on_disk_end_in_a_record_or_a_typed_error(tmp_path):
    mutants_on_disk_end_in_a_record_or_a_typed_error(tmp_path, _BASE, ".ecg", 8, seed=7)


def test_the_fixture_excerpt_matches_the_reference_and_carries_its_beats():
    folder = FIXTURES / "ishne"
    ref = np.load(folder / "ECG_P28.01_2s.ecg.ref.npz")
    record = _decode((folder / "ECG_P28.01_2s.ecg").read_bytes(),
                     (folder / "ECG_P28.01_2s.ann").read_bytes(), strict=True)
    assert record.labels == list(ref["channel_names"])
    for i, signal in enumerate(record.signals):
        assert np.array_equal(signal.digital, ref["digital"][i])
        assert signal.scale == ref["amplitude_resolution_nV"][i] / 1000
    assert [(a.onset, a.text) for a in record.annotations] == [(0.804, "N"), (1.799, "X")]
