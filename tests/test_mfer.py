"""MFER: the synthetic reference file, round trips through the test-side writer
(``mfer_writer.py``) and damaged files that end in a record or a typed error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mfer_writer as mw
from conftest import FIXTURES, corpus_dir, read_quietly, requires_corpus
from ecgingest.detect import detect
from ecgingest.errors import (
    CorruptDataError,
    HeaderError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ecgingest.formats import mfer
from ecgingest.formats._base import DecodeContext, Probe
from ecgingest.sources import Entry
from test_ishne import (
    ends_in_a_record_or_a_typed_error,
    mutants_on_disk_end_in_a_record_or_a_typed_error,
    mutate,
)

FIXTURE = FIXTURES / "mfer" / "synth_12lead_500hz_le.mwf"


def _ctx(**kw) -> DecodeContext:
    return DecodeContext("mfer", name="t.mwf", path="t.mwf", **kw)


# ---------------------------------------------------------------- the reference file

def test_the_synthetic_reference_file_reads_as_written():
    ref = np.load(str(FIXTURE) + ".ref.npz")
    meta = json.loads(Path(str(FIXTURE) + ".ref.json").read_text())
    record = mfer.decode(FIXTURE.read_bytes(), _ctx(strict=True))
    assert record.labels == list(ref["channel_names"])
    for i, signal in enumerate(record.signals):
        assert np.array_equal(signal.digital, ref["digital"][i])
        expected = (ref["digital"][i] + ref["offset"][i]) * ref["resolution"][i]
        np.testing.assert_allclose(signal.physical, expected, rtol=1e-13, atol=1e-12)
        assert signal.sample_rate == ref["fs"][i] and signal.units == ref["units"][i]
    assert record.start_time == dt.datetime.fromisoformat(meta["start_time"])
    header = meta["mfer_header"]
    assert record.metadata.patient_id == header["patient_id"]
    assert record.metadata.patient_age == header["patient_age_years"]
    assert record.metadata.patient_birth_date == dt.date.fromisoformat(
        header["patient_birth_date"])
    assert record.metadata.patient_gender == "FEMALE"
    assert record.lead_codes == tuple(ref["lead_code"])
    assert record.warnings == []


@requires_corpus
def test_the_corpus_file_matches_its_physical_reference():
    path = corpus_dir() / "mfer/synth_12lead_500hz_le.mwf"
    ref = np.load(str(path) + ".ref.npz")
    record = mfer.decode(path.read_bytes(), _ctx())
    for i, signal in enumerate(record.signals):
        np.testing.assert_allclose(signal.physical, ref["physical"][i], rtol=1e-13,
                                   atol=1e-12)


def test_inspect_reads_the_header_facts_of_decode():
    data = FIXTURE.read_bytes()
    info = mfer.inspect(data, _ctx())
    record = mfer.decode(data, _ctx())
    assert [s.label for s in info.signals] == record.labels
    assert [s.samples for s in info.signals] == [len(s) for s in record.signals]
    assert [s.dtype for s in info.signals] == [str(s.digital.dtype) for s in record.signals]


# ---------------------------------------------------------------- round trips

_INTEGER_TYPES = [0, 1, 2, 3, 4, 5, 6]


def _values(draw, dtp: int, n: int) -> np.ndarray:
    kind = mw.NUMPY_TYPES[dtp]
    if kind.startswith("f"):
        values = draw(st.lists(st.floats(-1e4, 1e4, width=32 if kind == "f4" else 64),
                               min_size=n, max_size=n))
        return np.array(values, dtype=kind)
    info = np.iinfo(np.dtype(kind))
    return np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n,
                                  max_size=n)), dtype=kind)


@st.composite
def _recordings(draw):
    nch = draw(st.integers(1, 5))
    common_dtp = draw(st.sampled_from(_INTEGER_TYPES))
    common_block = draw(st.integers(1, 6))
    sequences = draw(st.integers(1, 3))
    frames = draw(st.integers(1, 2))
    channels = []
    for _ in range(nch):
        dtp = draw(st.one_of(st.none(), st.sampled_from(list(mw.NUMPY_TYPES))))
        block = draw(st.one_of(st.none(), st.integers(1, 6)))
        count = (common_block if block is None else block) * sequences * frames
        samples = _values(draw, common_dtp if dtp is None else dtp, count)
        sen = draw(st.one_of(st.none(), st.tuples(st.sampled_from([0, 1]),
                                                  st.integers(-9, -3), st.integers(1, 5000))))
        ivl = draw(st.one_of(st.none(), st.tuples(st.just(1), st.just(-3),
                                                  st.integers(1, 8))))
        final = common_dtp if dtp is None else dtp
        offset = draw(st.one_of(st.none(), st.integers(0, 100))) if final != 7 else None
        lead = draw(st.one_of(st.none(), st.sampled_from([1, 2, 61, 64, 143, 4163])))
        channels.append(mw.Channel(samples, lead=lead, dtp=dtp, block=block, sen=sen, ivl=ivl,
                                   offset=offset))
    return mw.Recording(
        channels, big_endian=draw(st.booleans()), dtp=common_dtp, block=common_block,
        sequences=sequences, frames=frames,
        sen=draw(st.one_of(st.none(), st.just((0, -6, 5)))),
        indefinite_att=draw(st.booleans()), long_form=draw(st.sampled_from([0, 1, 2, 4])),
        padding=draw(st.integers(0, 2)),
        preamble=draw(st.sampled_from([b"MFR test", b"  MFER test", None])))


@settings(max_examples=80)
@given(_recordings())
def test_written_files_read_back_exactly(rec):
    record = mfer.decode(mw.write(rec), _ctx(strict=True))
    assert len(record.signals) == len(rec.channels)
    for signal, ch in zip(record.signals, rec.channels):
        assert signal.digital.dtype == ch.samples.dtype
        assert np.array_equal(signal.digital, ch.samples)
        unit, exponent, mantissa = ch.ivl or rec.ivl
        assert signal.sample_rate == pytest.approx(1 / (mantissa * 10.0 ** exponent),
                                                   rel=1e-12)
        sen = ch.sen or rec.sen
        offset = ch.offset if ch.offset is not None else 0
        if sen is None:
            assert signal.units == "" and signal.scale == 1.0
            expected = signal.digital.astype(np.float64) + offset
        else:
            unit, exponent, mantissa = sen
            assert signal.units == ("uV" if unit == 0 else "mmHg")
            step = mantissa * 10.0 ** (exponent + (6 if unit == 0 else 0))
            expected = (ch.samples.astype(np.float64) + offset) * step
        np.testing.assert_allclose(signal.physical, expected, rtol=1e-9, atol=1e-9)
        if ch.lead is not None:
            assert signal.label == mfer.lead_name(ch.lead)


def test_channel_attributes_override_the_top_level_ones():
    samples = np.arange(8, dtype=np.int16)
    rec = mw.Recording([mw.Channel(samples, lead=2),
                        mw.Channel(samples.astype(np.int32), lead=143, dtp=2,
                                   sen=(1, -1, 5), ivl=(1, -3, 4))],
                       block=8, sen=(0, -6, 2), ivl=(1, -3, 2))
    record = mfer.decode(mw.write(rec), _ctx())
    ecg, bp = record.signals
    assert (ecg.label, ecg.sample_rate, ecg.scale, ecg.units) == ("II", 500.0, 2.0, "uV")
    assert (bp.label, bp.sample_rate, bp.scale, bp.units) == ("BP", 250.0, 0.5, "mmHg")
    assert bp.digital.dtype == np.int32


def test_the_null_code_marks_samples_missing_and_the_offset_shifts_values():
    samples = np.array([5, -32768, 7, 9], dtype=np.int16)
    rec = mw.Recording([mw.Channel(samples, null=-32768, offset=10)], block=4,
                       sen=(0, -6, 1))
    signal = mfer.decode(mw.write(rec), _ctx()).signals[0]
    assert signal.invalid.tolist() == [False, True, False, False]
    np.testing.assert_array_equal(signal.physical[[0, 2, 3]], [15.0, 17.0, 19.0])
    assert np.isnan(signal.physical[1])


def test_time_patient_and_frames_fill_the_record():
    samples = np.arange(12, dtype=np.int16)
    rec = mw.Recording([mw.Channel(samples)], block=3, sequences=2, frames=2,
                       start=dt.datetime(2024, 2, 29, 23, 59, 58, 125000),
                       patient={"name": "Yamada^^Taro", "id": "P-1", "sex": 1})
    record = mfer.decode(mw.write(rec), _ctx())
    assert record.signals[0].digital.tolist() == list(range(12))
    assert record.start_time == dt.datetime(2024, 2, 29, 23, 59, 58, 125000)
    meta = record.metadata
    assert (meta.patient_last_name, meta.patient_first_name) == ("Yamada", "Taro")
    assert (meta.patient_id, meta.patient_gender) == ("P-1", "MALE")
    assert record.frame_pointers == (0, 6)


def test_the_aha_difference_code_is_refused_by_name():
    rec = mw.Recording([mw.Channel(np.zeros(2, np.int16))], block=2)
    data = mw.write(rec).replace(mw.item(mw.DTP, b"\x00"), mw.item(mw.DTP, b"\x09"))
    with pytest.raises(UnsupportedFeatureError, match="AHA"):
        mfer.decode(data, _ctx())


def test_a_short_waveform_item_is_truncated_and_a_bad_length_form_is_corrupt():
    data = mw.write(mw.Recording([mw.Channel(np.arange(10, dtype=np.int16))], block=10))
    with pytest.raises(TruncatedError):
        mfer.decode(data[:-8], _ctx())
    bad = data.replace(mw.item(mw.BLE, b"\x01"), b"\x01\x85\x00\x00\x00\x00\x01")
    with pytest.raises(CorruptDataError):
        mfer.decode(bad, _ctx())


def test_fewer_sequences_than_announced_read_those_or_fail_strict():
    rec = mw.Recording([mw.Channel(np.arange(12, dtype=np.int16))], block=4, sequences=3)
    data = mw.write(rec).replace(mw.item(mw.SEQ, mw.integer(3, 2, False)),
                                 mw.item(mw.SEQ, mw.integer(5, 2, False)))
    record = mfer.decode(data, _ctx())
    assert record.signals[0].digital.tolist() == list(range(12))
    with pytest.raises(TruncatedError):
        mfer.decode(data, _ctx(strict=True))


def test_a_file_without_waveforms_or_rate_is_a_header_error():
    rec = mw.Recording([mw.Channel(np.arange(4, dtype=np.int16))], block=4)
    data = mw.write(rec)
    no_rate = data.replace(mw.item(mw.IVL, mw.scaled(1, -3, 2, False)), b"")
    with pytest.raises(HeaderError, match="IVL"):
        mfer.decode(no_rate, _ctx())
    cut = data[:data.index(bytes([mw.PNT]))]
    with pytest.raises(HeaderError, match="WAV"):
        mfer.decode(cut, _ctx())


_BASE = mw.write(mw.Recording([mw.Channel(np.arange(30, dtype=np.int16), lead=1),
                               mw.Channel(np.arange(30, dtype=np.int16), lead=2, dtp=0,
                                          sen=(0, -7, 25))],
                              block=5, sequences=3, frames=2, indefinite_att=True))


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)),
                min_size=1, max_size=6),
       st.integers(10, len(_BASE)))
def test_mutated_files_end_in_a_record_or_a_typed_error(edits, cut):
    ends_in_a_record_or_a_typed_error(mutate(_BASE, edits, cut), "rec.mwf",
                                      lambda data: mfer.decode(data, _ctx()))


def test_mutated_files_on_disk_end_in_a_record_or_a_typed_error(tmp_path):
    mutants_on_disk_end_in_a_record_or_a_typed_error(tmp_path, _BASE, ".mwf", 10, seed=5)


def test_a_tolerated_short_frame_is_reported_once():
    rec = mw.Recording([mw.Channel(np.arange(12, dtype=np.int16))], block=4, sequences=3)
    data = mw.write(rec).replace(mw.item(mw.SEQ, mw.integer(3, 2, False)),
                                 mw.item(mw.SEQ, mw.integer(5, 2, False)))
    assert len(mfer.decode(data, _ctx()).warnings) == 1


def test_a_scaling_mantissa_longer_than_eight_bytes_is_a_header_error():
    data = mw.write(mw.Recording([mw.Channel(np.arange(4, dtype=np.int16))], block=4))
    bad = data.replace(mw.item(mw.IVL, mw.scaled(1, -3, 2, False)),
                       mw.item(mw.IVL, bytes([1, 0]) + b"\x7f" * 200))
    with pytest.raises(HeaderError, match="IVL"):
        mfer.decode(bad, _ctx())


def test_a_file_without_preamble_is_recognised_by_its_chain_of_items():
    data = mw.write(mw.Recording([mw.Channel(np.arange(8, dtype=np.int16))], block=8,
                                 preamble=None))
    assert mfer.sniff(Probe.of_bytes(data))
    assert detect(Entry.from_bytes("x", data)) is mfer.FORMAT


@given(st.binary(min_size=4, max_size=200))
def test_binary_data_opening_like_a_byte_order_item_is_not_claimed(tail):
    # a WFDB format-16 signal whose first samples are 257 and 512 starts 01 01 00 02:
    # byte order and version items, then (tail[3]) a byte that is no MFER tag
    assume(tail[3] != 0 and tail[3] not in mfer.TAGS.values())
    assert not mfer.sniff(Probe.of_bytes(b"\x01\x01\x00\x02\x03" + tail))


# ---------------------------------------------------------------- an independent reader

_ECGDATAKIT_TYPES = [0, 1, 2, 3, 5, 6, 7, 8]  # 4 is a status word for it, not a waveform
_RANGES = {0: (-3000, 3000), 1: (0, 6000), 2: (-3000, 3000), 3: (0, 250), 5: (-120, 120),
           6: (0, 6000), 7: (-3000, 3000), 8: (-3000, 3000)}
_TO_UV = {"uV": 1.0, "µV": 1.0, "mV": 1e3, "V": 1e6}


@settings(max_examples=40, deadline=None)
@given(big=st.booleans(), dtp=st.sampled_from(_ECGDATAKIT_TYPES),
       leads=st.lists(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 61, 62, 63, 64]), min_size=1,
                      max_size=4, unique=True),
       block=st.integers(1, 300), frames=st.integers(1, 3), exponent=st.integers(-7, -5),
       indefinite=st.booleans(), seed=st.integers(0, 2**16))
def test_ecgdatakit_reads_what_the_writer_wrote_as_ecgingest_does(
        big, dtp, leads, block, frames, exponent, indefinite, seed, tmp_path_factory):
    """ECGDataKit, written independently of both, decodes the writer's files to the same
    labels, rate and physical values (where it installs: ``pip install ecgdatakit``)."""
    parser = pytest.importorskip("ecgdatakit").FileParser
    rng = np.random.default_rng(seed)
    low, high = _RANGES[dtp]
    channels = [mw.Channel(samples=rng.integers(low, high, block * frames), lead=lead)
                for lead in leads]
    data = mw.write(mw.Recording(channels=channels, big_endian=big, dtp=dtp, block=block,
                                 frames=frames, sen=(0, exponent, 5), ivl=(1, -3, 2),
                                 indefinite_att=indefinite))
    path = tmp_path_factory.mktemp("mfer") / "rec.mwf"
    path.write_bytes(data)
    theirs = parser().parse(str(path))
    [ours] = read_quietly(data)
    assert [lead.label for lead in theirs.leads] == ours.labels
    for lead, signal in zip(theirs.leads, ours.signals, strict=True):
        assert float(lead.sampling_rate) == signal.sample_rate
        assert signal.units == "uV"
        np.testing.assert_allclose(np.asarray(lead.samples, float) * _TO_UV[lead.units],
                                   signal.physical, rtol=1e-9, atol=1e-9)
