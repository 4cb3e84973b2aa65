"""DICOM waveform ECGs: conformance on real files, data sets written with pydicom
read back exactly, and damaged files that end in a record or a typed error."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecgingest.errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    HeaderError,
    MissingDependencyError,
    TruncatedError,
)
from ecgingest.formats import dicom
from ecgingest.formats._base import DecodeContext, Probe
from test_ishne import (
    ends_in_a_record_or_a_typed_error,
    mutants_on_disk_end_in_a_record_or_a_typed_error,
    mutate,
)

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

TWELVE_LEAD = "1.2.840.10008.5.1.4.1.1.9.1.1"
GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
FIXTURE = FIXTURES / "dicom" / "mortara_el250_anonymous_ecg.dcm"

_DTYPES = {"SS": "i2", "US": "u2", "SB": "i1", "UB": "u1", "SL": "i4", "UL": "u4"}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def make_group(values: np.ndarray, interpretation: str, rate: float, *, codes=None,
               scaling=None, big_endian: bool = False, label: str | None = "RHYTHM",
               originality: str = "ORIGINAL") -> Dataset:
    """A multiplex group of channels x samples stored values, interleaved by sample."""
    channels, samples = values.shape
    group = Dataset()
    group.MultiplexGroupTimeOffset = 0.0
    group.WaveformOriginality = originality
    if label is not None:
        group.MultiplexGroupLabel = label
    group.NumberOfWaveformChannels = channels
    group.NumberOfWaveformSamples = samples
    group.SamplingFrequency = rate
    definitions = []
    for ch in range(channels):
        definition = Dataset()
        scheme, code, meaning = (codes[ch] if codes else ("SCPECG", f"5.6.3-9-{ch + 1}",
                                                          f"Lead {ch + 1}"))
        definition.ChannelSourceSequence = [_code(code, scheme, meaning)]
        sensitivity, correction, baseline = scaling[ch] if scaling else (1.25, 1.0, 0.0)
        definition.ChannelSensitivity = sensitivity
        definition.ChannelSensitivityUnitsSequence = [_code("uV", "UCUM", "microvolt")]
        definition.ChannelSensitivityCorrectionFactor = correction
        definition.ChannelBaseline = baseline
        definition.WaveformBitsStored = int(_DTYPES[interpretation][1]) * 8
        definitions.append(definition)
    group.ChannelDefinitionSequence = definitions
    width = int(_DTYPES[interpretation][1])
    group.WaveformBitsAllocated = width * 8
    group.WaveformSampleInterpretation = interpretation
    order = ">" if big_endian and width > 1 else "<"
    raw = values.T.astype(order + _DTYPES[interpretation]).tobytes()
    group.WaveformData = raw + (b"\0" if len(raw) % 2 else b"")
    return group


def make_dicom(groups: list[Dataset], *, sop_class: str = TWELVE_LEAD,
               syntax=ExplicitVRLittleEndian, annotations: list[Dataset] | None = None,
               **attributes) -> bytes:
    """A Part 10 file written by pydicom."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "ECG"
    for key, value in attributes.items():
        setattr(ds, key, value)
    if groups:
        ds.WaveformSequence = groups
    if annotations:
        ds.WaveformAnnotationSequence = annotations
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _ctx(**kw) -> DecodeContext:
    return DecodeContext("dicom", name="t.dcm", path="t.dcm", **kw)


def _check_against_reference(record: ecgingest.Record, ref, meta: dict) -> None:
    assert record.labels == list(ref["channel_names"])
    groups = record.waveform_groups
    assert len(groups) == len(meta["multiplex_groups"])
    for k, group in enumerate(groups):
        prefix = "" if k == 0 else f"mpx{k}_"
        assert group.sample_rate == meta["multiplex_groups"][k]["fs"]
        for i, signal in enumerate(group.signals):
            assert np.array_equal(signal.digital, ref[prefix + "digital"][i])
            expected = (ref[prefix + "digital"][i] * ref["sensitivity"][i]
                        * ref["correction_factor"][i] + ref["baseline"][i])
            np.testing.assert_allclose(signal.physical, expected, rtol=1e-13, atol=1e-12)
            if prefix + "physical" in ref:
                np.testing.assert_allclose(signal.physical, ref[prefix + "physical"][i],
                                           rtol=1e-13, atol=1e-12)
    assert [s.units for s in record.signals] == list(ref["units"])
    assert record.signals[0].sample_rate == ref["fs"][0]
    start = record.start_time
    assert start.replace(tzinfo=None) == dt.datetime.fromisoformat(meta["start_time"])
    texts = [a["text"] for a in meta["waveform_annotations"] if a["text"]]
    assert [s["text"] for s in record.interpretation["statements"]] == texts
    named = [(a["concept"], a["value"]) for a in meta["waveform_annotations"] if a["concept"]]
    assert [(m["name"], m["value"]) for m in record.measurements] == [
        (name, value[0] if value and len(value) == 1 else value) for name, value in named]
    shared = {"QRS Duration": "qrs_duration_ms", "QT Interval": "qt_interval_ms",
              "QRS Axis": "qrs_axis_deg", "QTc Interval": "qtc_ms"}
    for name, value in named:
        if name in shared and value:
            assert record.global_measurements[shared[name]] == value[0]


# ---------------------------------------------------------------- real files

def test_the_mortara_fixture_matches_its_pydicom_reference():
    ref = np.load(str(FIXTURE) + ".ref.npz")
    meta = json.loads(Path(str(FIXTURE) + ".ref.json").read_text())
    record = dicom.decode(FIXTURE.read_bytes(), _ctx())
    _check_against_reference(record, ref, meta)
    assert record.format_detail == "DICOM 12-lead ECG Waveform"
    assert record.metadata.patient_gender == "FEMALE" and record.metadata.patient_age == 42
    assert record.warnings == []


@requires_corpus
@pytest.mark.parametrize("entry", [pytest.param(r, id=r["path"])
                                   for r in corpus_records("dicom")])
def test_corpus_files_match_their_references(entry):
    path = corpus_dir() / entry["path"]
    ref = np.load(str(path) + ".ref.npz")
    meta = json.loads(Path(str(path) + ".ref.json").read_text())
    record = dicom.decode(path.read_bytes(), _ctx(strict=True))
    _check_against_reference(record, ref, meta)
    offset = meta["dicom_attributes"]["TimezoneOffsetFromUTC"]
    if offset:
        assert record.start_time.utcoffset() == dt.timedelta(hours=int(offset[:3]))
        assert record.metadata.recording_start_time.tzinfo == dt.timezone.utc


def test_inspect_reads_the_same_facts_without_splitting_samples():
    data = FIXTURE.read_bytes()
    info = dicom.inspect(data, _ctx())
    record = dicom.decode(data, _ctx())
    assert [s.label for s in info.signals] == record.labels
    assert [s.samples for s in info.signals] == [len(s) for s in record.signals]
    assert info.start_time == record.start_time and info.metadata == record.metadata


# ---------------------------------------------------------------- written data sets

@st.composite
def _groups(draw):
    interpretation = draw(st.sampled_from(sorted(_DTYPES)))
    info = np.iinfo(np.dtype(_DTYPES[interpretation]))
    channels = draw(st.integers(1, 4))
    samples = draw(st.integers(0, 40))
    values = np.array(draw(st.lists(st.integers(int(info.min), int(info.max)),
                                    min_size=channels * samples,
                                    max_size=channels * samples)),
                      dtype=np.int64).reshape(channels, samples)
    scheme = draw(st.sampled_from(["SCPECG", "MDC"]))
    numbers = draw(st.lists(st.sampled_from([1, 2, 3, 8, 61, 62, 63, 64]),
                            min_size=channels, max_size=channels))
    codes = [(scheme, f"5.6.3-9-{n}" if scheme == "SCPECG" else f"2:{n}", "text")
             for n in numbers]
    scaling = draw(st.lists(st.tuples(st.sampled_from([1.0, 1.25, 2.5, 4.88]),
                                      st.sampled_from([1.0, 0.5, 4.88]),
                                      st.sampled_from([0.0, -10.5, 3.0])),
                            min_size=channels, max_size=channels))
    rate = draw(st.sampled_from([250.0, 500.0, 1000.0, 128.0]))
    return interpretation, values, codes, numbers, scaling, rate


_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
             ExplicitVRBigEndian]


@settings(max_examples=50)
@given(st.lists(_groups(), min_size=1, max_size=3), st.sampled_from(_SYNTAXES))
def test_written_waveforms_read_back_exactly_in_every_transfer_syntax(groups, syntax):
    big = syntax == ExplicitVRBigEndian
    data = make_dicom([make_group(values, interp, rate, codes=codes, scaling=scaling,
                                  big_endian=big, label=None if k else "RHYTHM",
                                  originality="ORIGINAL" if k == 0 else "DERIVED")
                       for k, (interp, values, codes, _, scaling, rate) in enumerate(groups)],
                      syntax=syntax, sop_class=GENERAL_ECG)
    record = dicom.decode(data, _ctx(strict=True))
    assert len(record.waveform_groups) == len(groups)
    for group, (interp, values, _, numbers, scaling, rate) in zip(record.waveform_groups,
                                                                  groups):
        assert group.sample_rate == rate
        assert [s.label for s in group.signals] == [dicom.lead_name("MDC", f"2:{n}", None)
                                                    for n in numbers]
        for signal, row, (sensitivity, correction, baseline) in zip(group.signals, values,
                                                                    scaling):
            assert signal.digital.dtype == np.dtype(_DTYPES[interp])
            assert np.array_equal(signal.digital, row)
            np.testing.assert_allclose(signal.physical, row * sensitivity * correction
                                       + baseline, rtol=1e-12, atol=1e-9)
    assert record.signals == list(record.waveform_groups[0].signals)


def test_lead_names_come_from_codes_in_both_schemes_then_labels_then_meanings():
    assert dicom.lead_name("SCPECG", "5.6.3-9-62", "aVR, augmented voltage, right") == "aVR"
    assert dicom.lead_name("MDC", "2:64", "Lead aVF") == "aVF"
    assert dicom.lead_name("MDC", "2:0", "Lead unspecified") == "Lead unspecified"
    assert dicom.lead_name("LOCAL", "x", "Pleth", "SpO2") == "SpO2"


@pytest.mark.parametrize("interpretation, codes, expected", [
    ("MB", [0xFF, 0x7F, 0x00, 0x80], [0, 0, -32124, 32124]),
    ("AB", [0xD5, 0x55, 0xAA, 0x2A], [8, -8, 32256, -32256]),
])
def test_g711_companded_samples_expand_to_linear_values(interpretation, codes, expected):
    group = make_group(np.array([codes]), "UB", 500.0)
    group.WaveformSampleInterpretation = interpretation
    record = dicom.decode(make_dicom([group]), _ctx())
    assert record.signals[0].digital.tolist() == expected


def test_the_padding_value_marks_samples_invalid():
    group = make_group(np.array([[5, -32768, 7]]), "SS", 500.0)
    group.WaveformPaddingValue = b"\x00\x80"
    signal = dicom.decode(make_dicom([group]), _ctx()).signals[0]
    assert signal.invalid.tolist() == [False, True, False]
    assert np.isnan(signal.physical[1])


def test_annotations_become_measurements_statements_and_timed_events():
    statement = Dataset()
    statement.UnformattedTextValue = "SINUS RHYTHM"
    measurement = Dataset()
    measurement.ConceptNameCodeSequence = [_code("5.10.2.1-3", "SCPECG", "RR Interval")]
    measurement.NumericValue = "982"
    measurement.MeasurementUnitsCodeSequence = [_code("ms", "UCUM", "ms")]
    beat = Dataset()
    beat.ConceptNameCodeSequence = [_code("5.10.2.5", "SCPECG", "QRS onset")]
    beat.ReferencedWaveformChannels = [1, 0]
    beat.TemporalRangeType = "POINT"
    beat.ReferencedSamplePositions = [251, 751]
    data = make_dicom([make_group(np.zeros((2, 1000), np.int64), "SS", 500.0)],
                      annotations=[statement, measurement, beat])
    record = dicom.decode(data, _ctx())
    assert record.interpretation["statements"] == [{"sequence": 1, "text": "SINUS RHYTHM"}]
    assert record.measurements[0]["value"] == 982.0
    assert record.measurements[0]["unit"] == "ms"
    assert [(a.onset, a.text) for a in record.annotations] == [(0.5, "QRS onset"),
                                                               (1.5, "QRS onset")]


def test_acquisition_time_with_offset_fills_utc_start_and_zone():
    data = make_dicom([make_group(np.zeros((1, 4), np.int64), "SS", 500.0)],
                      AcquisitionDateTime="20240623183000.25", TimezoneOffsetFromUTC="-0500",
                      PatientName="Doe^Jane", PatientSex="F", PatientBirthDate="19700131")
    record = dicom.decode(data, _ctx())
    assert record.start_time == dt.datetime(2024, 6, 23, 18, 30, 0, 250000,
                                            dt.timezone(dt.timedelta(hours=-5)))
    meta = record.metadata
    assert meta.recording_start_time == dt.datetime(2024, 6, 23, 23, 30, 0, 250000,
                                                    dt.timezone.utc)
    assert meta.recording_time_zone == "Etc/GMT+5"
    assert (meta.patient_last_name, meta.patient_first_name) == ("Doe", "Jane")
    assert meta.patient_birth_date == dt.date(1970, 1, 31)


# ---------------------------------------------------------------- not waveforms, damage

def test_an_image_is_not_claimed_and_says_why():
    data = make_dicom([], sop_class=CT_IMAGE, Modality="CT")
    probe = Probe.of_bytes(data, "image.dcm")
    assert not dicom.sniff(probe)
    assert "without waveforms" in dicom.FORMAT.skip_reason(probe)
    assert dicom.FORMAT.skip_reason(Probe.of_bytes(FIXTURE.read_bytes())) is None


def test_a_waveform_class_file_without_waveforms_is_a_header_error():
    with pytest.raises(HeaderError, match="without waveforms"):
        dicom.decode(make_dicom([]), _ctx())


def test_short_waveform_data_reads_the_whole_samples_present_or_fails_strict():
    group = make_group(np.arange(20).reshape(2, 10), "SS", 500.0)
    group.WaveformData = group.WaveformData[:-6]
    data = make_dicom([group])
    record = dicom.decode(data, _ctx())
    assert record.signals[1].digital.tolist() == list(range(10, 18))
    with pytest.raises(TruncatedError):
        dicom.decode(data, _ctx(strict=True))


def test_a_missing_pydicom_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(MissingDependencyError) as info:
        dicom.decode(FIXTURE.read_bytes(), _ctx())
    assert info.value.extra == "dicom"
    assert dicom.sniff(Probe.of_bytes(FIXTURE.read_bytes()))  # detection needs no pydicom


_BASE = make_dicom([make_group(np.arange(-30, 30).reshape(3, 20), "SS", 500.0)],
                   syntax=ExplicitVRLittleEndian, AcquisitionDateTime="20200101120000")


@settings(max_examples=80)
@given(st.lists(st.tuples(st.integers(128, len(_BASE) - 1), st.integers(0, 255)),
                min_size=1, max_size=6),
       st.integers(132, len(_BASE)))
def test_mutated_files_end_in_a_record_or_a_typed_error(edits, cut):
    ends_in_a_record_or_a_typed_error(mutate(_BASE, edits, cut), "ecg.dcm",
                                      lambda data: dicom.decode(data, _ctx()))


def test_mutated_files_on_disk_end_in_a_record_or_a_typed_error(tmp_path):
    mutants_on_disk_end_in_a_record_or_a_typed_error(tmp_path, _BASE, ".dcm", 132, seed=11)


def test_unreadable_numbers_name_their_field_or_are_left_out():
    group = make_group(np.zeros((1, 4), np.int64), "SS", 500.0)
    group.ChannelDefinitionSequence[0].FilterLowFrequency = "0.05"
    measurement = Dataset()
    measurement.ConceptNameCodeSequence = [_code("5.10.2.1-3", "SCPECG", "RR Interval")]
    measurement.NumericValue = "982"
    data = make_dicom([group], annotations=[measurement], PatientWeight="70")

    def changed(old: bytes, new: bytes) -> bytes:
        assert data.count(old) == 1
        return data.replace(old, new)

    record = dicom.decode(changed(b"DS\x04\x000.05", b"DS\x04\x00x.05"), _ctx())
    assert record.filters[0]["low_hz"] is None
    record = dicom.decode(changed(b"DS\x04\x00982 ", b"DS\x04\x00nine"), _ctx())
    assert record.measurements[0]["value"] is None
    assert any("NumericValue" in w for w in record.warnings)
    record = dicom.decode(changed(b"DS\x02\x0070", b"DS\x02\x00zz"), _ctx())
    assert record.metadata.patient_weight is None
    assert any("PatientWeight" in w for w in record.warnings)
    with pytest.raises(HeaderError) as info:
        dicom.decode(changed(b"DS\x06\x00500.0 ", b"DS\x06\x00fast  "), _ctx())
    assert info.value.field == "SamplingFrequency"


# ---------------------------------------------------------------- what pydicom says

UNKNOWN_CHARSET = "Unknown encoding 'ISO_IR 999' - using default encoding instead"


def _unknown_charset_file() -> bytes:
    """A pydicom-written file that names a character set no one defines."""
    with warnings.catch_warnings():  # writing it makes pydicom warn as well
        warnings.simplefilter("ignore")
        return make_dicom([make_group(np.arange(40, dtype=np.int16).reshape(2, 20), "SS",
                                      500.0)], SpecificCharacterSet="ISO_IR 999",
                          PatientName="Doe^Jane")


def test_what_pydicom_says_about_a_file_is_a_record_warning_not_a_python_warning():
    data = _unknown_charset_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [record] = ecgingest.read(data)
        info = dicom.inspect(data, _ctx())
    assert record.warnings == [f"pydicom: {UNKNOWN_CHARSET}"]
    assert info.warnings == (f"pydicom: {UNKNOWN_CHARSET}",)
    assert record.metadata.patient_last_name == "Doe"
    assert [str(w.message) for w in caught if not issubclass(w.category, EcgWarning)] == []


def test_what_pydicom_says_about_a_file_is_an_error_in_strict_mode():
    with pytest.raises(CorruptDataError, match="ISO_IR 999"):
        ecgingest.read(_unknown_charset_file(), strict=True)


def test_pydicom_warnings_reach_the_record_read_on_their_thread_and_no_other():
    """Two threads read a damaged and a clean file while a third uses pydicom
    itself: each record holds what pydicom said about its own file, and the
    program's own pydicom use still gets pydicom's warnings and log records."""
    damaged, clean = _unknown_charset_file(), make_dicom(
        [make_group(np.arange(40, dtype=np.int16).reshape(2, 20), "SS", 500.0)])
    rounds = 25
    start = threading.Barrier(3)
    results: dict[str, list[list[str]]] = {"damaged": [], "clean": []}
    failures: list[BaseException] = []

    def read(label: str, data: bytes) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                results[label].append(list(ecgingest.read(data)[0].warnings))
        except BaseException as exc:
            failures.append(exc)

    def direct() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                pydicom.dcmread(io.BytesIO(damaged))
        except BaseException as exc:
            failures.append(exc)

    class Heard(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.threads: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.threads.append(record.threadName)

    heard = Heard()
    logger = logging.getLogger("pydicom")
    logger.addHandler(heard)
    threads = [threading.Thread(target=read, args=("damaged", damaged), name="damaged"),
               threading.Thread(target=read, args=("clean", clean), name="clean"),
               threading.Thread(target=direct, name="direct")]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        logger.removeHandler(heard)
    assert failures == []
    assert results["damaged"] == [[f"pydicom: {UNKNOWN_CHARSET}"]] * rounds
    assert results["clean"] == [[]] * rounds
    direct_said = [str(w.message) for w in caught if not issubclass(w.category, EcgWarning)]
    assert direct_said and set(direct_said) == {UNKNOWN_CHARSET}
    assert len(direct_said) % rounds == 0  # every direct read warned alike
    assert set(heard.threads) == {"direct"} and len(heard.threads) == len(direct_said)


def test_a_pydicom_warning_the_program_saw_before_still_reaches_the_record():
    """Python shows a warning once per place under the default filter; the record
    gets pydicom's word from its logger then."""
    data = _unknown_charset_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        pydicom.dcmread(io.BytesIO(data))
        shown = len(caught)
        [record] = ecgingest.read(data)
    assert shown > 0
    assert record.warnings == [f"pydicom: {UNKNOWN_CHARSET}"]
    assert [w for w in caught[shown:] if not issubclass(w.category, EcgWarning)] == []


def _decoded(data) -> tuple:
    """Everything a decode ends in: signals, facts and warnings, or the error."""
    try:
        record = dicom.decode(data, _ctx())
    except EcgIngestError as exc:
        return ("error", type(exc), str(exc))
    signals = [(s.label, s.units, s.sample_rate, s.digital.tobytes(), s.physical.tobytes())
               for s in record.signals]
    return ("record", signals, repr(record.summary()), record.measurements,
            [str(w) for w in record.warnings])


@settings(max_examples=40)
@given(st.lists(st.tuples(st.integers(128, len(_BASE) - 1), st.integers(0, 255)),
                min_size=0, max_size=4),
       st.integers(132, len(_BASE)))
def test_a_file_held_in_a_memoryview_decodes_as_its_bytes(edits, cut):
    data = mutate(_BASE, edits, cut)
    assert _decoded(memoryview(data)) == _decoded(data)


def test_the_memoryview_file_reads_seeks_and_tells_like_bytesio():
    data = bytes(range(256)) * 3
    ours, theirs = dicom._MemoryFile(memoryview(data)), io.BytesIO(data)
    for step in ((10, 0), (5, 1), (-7, 2), (700, 0), (900, 0), (-3, 1), (0, 0)):  # (offset, whence)
        assert ours.seek(*step) == theirs.seek(*step)
        for size in (4, -1, None, 0):
            assert ours.read(size) == theirs.read(size)
            assert ours.tell() == theirs.tell()
