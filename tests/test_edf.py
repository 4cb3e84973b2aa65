"""EDF / EDF+ / BDF / BDF+ decoding (spec: EDF.md, METADATA.md, INGESTION.md §2).

Conformance against the shared corpus (``ECGINGEST_CORPUS``) and the copied
fixtures, spec clauses on files built by the test-side writer, tolerated
deviations (each a warning on the record) and typed errors for bad input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecgingest.detect import detect
from ecgingest.errors import EcgIngestError, HeaderError, TruncatedError
from ecgingest.formats import edf
from ecgingest.formats._base import DecodeContext
from ecgingest.record import RecordInfo
from ecgingest.sources import Entry
from test_edf_writer import WAnnotation, WFile, WSignal, simple_file, write_edf

EDF_FIXTURES = FIXTURES / "edf"

pytestmark = pytest.mark.filterwarnings("ignore::ecgingest.errors.EcgWarning")


def _decode(data: bytes, strict: bool = False, **kw) -> ecgingest.Record:
    return edf.FORMAT.decode(data, DecodeContext("edf", name="t.edf", path="t.edf",
                                                 strict=strict, **kw))


def _ann(record) -> list[tuple[float, float | None, str]]:
    return [(a.onset, a.duration, a.text) for a in record.annotations]


def _assert_physical(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale)


# --------------------------------------------------------------------------- corpus


def _corpus_ids() -> list:
    return [pytest.param(r, id=r["path"]) for r in corpus_records("edf")]


@requires_corpus
@pytest.mark.parametrize("entry", _corpus_ids())
def test_corpus_record_matches_reference(entry):
    """Digital exact, physical to float precision, labels, rates, units, annotations,
    start time and (EDF+D) data record onsets, as the corpus reference reader gives them."""
    root = corpus_dir()
    path = root / entry["path"]
    ref = json.loads(Path(f"{path}.ref.json").read_text())
    arrays = np.load(f"{path}.ref.npz")
    [record] = ecgingest.read(path)
    assert record.format == path.suffix[1:]
    assert record.format_detail == ref["format_detail"]
    names = list(ref["channel_names"])
    legacy_annotations = (ref["format_detail"] in ("EDF", "BDF") and names
                          and names[-1] in ("EDF Annotations", "BDF Annotations"))
    if legacy_annotations:
        # EDF.md: a plain EDF whose last signal is 'EDF Annotations' is read as annotations
        # (pyedflib keeps it as an ordinary signal; either reading is accepted)
        names = names[:-1]
        assert any("read as EDF+ annotations" in w for w in record.warnings)
    assert record.labels == names
    for i, signal in enumerate(record.signals):
        key = "" if ref["layout"] == "matrix" else f"_{i}"
        digital = arrays["digital"][i] if not key else arrays[f"digital{key}"]
        physical = arrays["physical"][i] if not key else arrays[f"physical{key}"]
        np.testing.assert_array_equal(signal.digital, digital)
        _assert_physical(signal.physical, physical)
        assert signal.sample_rate == pytest.approx(ref["fs"][i], rel=1e-12)
        assert signal.units == ref["units"][i]
        assert signal.digital.dtype == (np.int32 if record.format == "bdf" else np.int16)
    if not legacy_annotations:
        expected = [tuple(a) for a in ref["annotations"]]
        got = _ann(record)
        assert [(d, t) for _, d, t in got] == [(d, t) for _, d, t in expected]
        np.testing.assert_allclose([o for o, _, _ in got], [o for o, _, _ in expected],
                                   rtol=0, atol=1e-7)
    assert record.start_time == dt.datetime.fromisoformat(ref["start_time"])
    if "data_record_onsets_s" in ref:
        np.testing.assert_allclose(record.data_record_onsets, ref["data_record_onsets_s"],
                                   rtol=0, atol=1e-9)
    assert len(record.data_record_onsets) == ref["n_data_records"]


# --------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", ["SC4001EC-Hypnogram.edf", "SC4001EC-Hypnogram.bdf"])
def test_annotation_only_fixture_matches_reference(name):
    """Record duration 0, no ordinary signal: 154 TAL annotations, start from the header."""
    ref = json.loads((EDF_FIXTURES / f"{name}.ref.json").read_text())
    [record] = ecgingest.read(EDF_FIXTURES / name)
    assert record.signals == []
    assert record.format_detail == ref["format_detail"]
    assert _ann(record) == [tuple(a) for a in ref["annotations"]]
    assert record.start_time == dt.datetime.fromisoformat(ref["start_time"])
    assert record.warnings == []
    assert record.metadata.patient_gender == "FEMALE"
    assert record.metadata.patient_text == ref["local_patient_identification"]


def test_subsecond_fixture_matches_pyedflib_digest():
    """Samples equal pyedflib's (SHA-256 digest); the start includes the subsecond offset;
    annotation onsets are TAL onset minus that offset (EDF.md "Subsecond start")."""
    name = "test_subsecond.edf"
    digest = json.loads((EDF_FIXTURES / f"{name}.digest.json").read_text())
    ref = json.loads((EDF_FIXTURES / f"{name}.ref.json").read_text())
    [record] = ecgingest.read(EDF_FIXTURES / name)
    [signal] = record.signals
    assert signal.label == digest["signal"] and len(signal) == digest["n_samples"]
    digital_le = signal.digital.astype("<i2").tobytes()
    assert hashlib.sha256(digital_le).hexdigest() == digest["digital_sha256"]
    _assert_physical(signal.physical[:8], np.array(digest["physical_first"]))
    _assert_physical(signal.physical[-8:], np.array(digest["physical_last"]))
    assert record.start_time == dt.datetime(2020, 1, 24, 4, 5, 56, 394531)
    assert record.subsecond_offset == pytest.approx(0.3945312)
    np.testing.assert_allclose([a.onset for a in record.annotations],
                               [a[0] for a in ref["annotations"]], rtol=0, atol=1e-9)
    assert [a.text for a in record.annotations] == [a[2] for a in ref["annotations"]]
    assert record.data_record_onsets[0] == 0.0
    np.testing.assert_allclose(np.diff(record.data_record_onsets), 1.0)
    meta = record.metadata
    assert (meta.patient_gender, meta.patient_birth_date) == ("FEMALE", dt.date(1998, 1, 20))


def test_signal_arrays_are_read_only():
    [record] = ecgingest.read(EDF_FIXTURES / "test_subsecond.edf")
    with pytest.raises(ValueError):
        record.signals[0].digital[0] = 1


# --------------------------------------------------------------------------- detection


def test_detection_claims_edf_and_bdf_by_content_not_name():
    for name in ("test_subsecond.edf", "SC4001EC-Hypnogram.bdf"):
        data = (EDF_FIXTURES / name).read_bytes()
        entry = Entry.from_bytes("renamed.bin", data)
        assert detect(entry) is edf.FORMAT


def test_detection_is_not_fooled_by_scp_or_garbage():
    # an SCP-ECG start: CRC, record length, then section 0's header
    scp = b"\x12\x34" + (1024).to_bytes(4, "little") + b"\x00" * 2 + b"\x00\x00" + b"\x88" * 300
    for data in (scp, b"", b"0" * 100, b"0       " + b"x" * 248, b"\x00" * 4096):
        assert not edf.sniff(Entry.from_bytes("x.edf", data))


def test_unrecognised_bytes_are_an_unsupported_format_error():
    with pytest.raises(ecgingest.errors.UnsupportedFormatError):
        ecgingest.read(b"not an ecg at all" * 40)


# --------------------------------------------------------------------------- spec clauses


def test_each_signal_keeps_its_own_rate_and_edf_formula_scaling():
    spec = simple_file(2, 10, 3)
    spec.signals[1] = WSignal("slow", 2, np.arange(6) - 3, physical_min=-5.0,
                              physical_max=15.0, digital_min=-10, digital_max=10, units="mV")
    record = _decode(write_edf(spec))
    fast, slow = record.signals
    assert (fast.sample_rate, slow.sample_rate) == (10.0, 2.0)
    np.testing.assert_array_equal(slow.digital, np.arange(6) - 3)
    expected = (np.arange(6) - 3 - (-10)) * (15.0 - -5.0) / (10 - -10) + -5.0
    _assert_physical(slow.physical, expected)
    assert slow.units == "mV"
    assert record.extras["digital_min"] == (-32768, -10)


def test_bdf_samples_are_24_bit_twos_complement():
    values = np.array([0, 1, -1, 2**23 - 1, -(2**23), 123456, -654321])
    spec = WFile([WSignal("s", 7, values, digital_min=-(2**23), digital_max=2**23 - 1)], 1,
                 bdf=True, plus=None)
    record = _decode(write_edf(spec))
    assert record.format == "bdf" and record.format_detail == "BDF"
    np.testing.assert_array_equal(record.signals[0].digital, values)


def test_tal_with_several_texts_and_durations_gives_one_annotation_per_text():
    spec = simple_file(1, 4, 2, annotations=[
        WAnnotation(0.5, 1.25, ["a", "b"], 0), WAnnotation(1.0, None, ["ünïcødé"], 1)])
    record = _decode(write_edf(spec))
    assert _ann(record) == [(0.5, 1.25, "a"), (0.5, 1.25, "b"), (1.0, None, "ünïcødé")]


def test_edfplus_d_exposes_every_data_record_onset():
    spec = simple_file(2, 5, 4, plus="D", record_onsets=[0.0, 3.0, 4.0, 10.5])
    record = _decode(write_edf(spec))
    assert record.format_detail == "EDF+D"
    np.testing.assert_array_equal(record.data_record_onsets, [0.0, 3.0, 4.0, 10.5])
    assert len(record.signals[0]) == 20 and record.warnings == []


def test_edfplus_d_overlapping_records_are_a_warning():
    spec = simple_file(1, 5, 3, plus="D", record_onsets=[0.0, 0.5, 4.0])
    record = _decode(write_edf(spec))
    assert any("overlap" in w for w in record.warnings)


def test_edfplus_subfields_map_onto_metadata():
    spec = simple_file(1, 2, 1, patient="MCH-0234567 F 02-MAY-1951 Haagse,Harry extra_info",
                       recording="Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC_R_Median")
    spec.start = dt.datetime(2002, 3, 2, 10, 0, 0)
    record = _decode(write_edf(spec))
    m = record.metadata
    assert (m.patient_id, m.patient_gender, m.patient_birth_date) == (
        "MCH-0234567", "FEMALE", dt.date(1951, 5, 2))
    assert (m.patient_last_name, m.patient_first_name) == ("Haagse", "Harry")
    assert (m.investigation_id, m.device_id) == ("EMG561", "Sony.")
    assert record.technician == "BK/JOP"
    assert record.recording_additional == "MNC_R_Median"  # additional subfields as written
    assert record.patient_additional == "extra_info"
    assert m.patient_text.startswith("MCH-0234567")


def test_plain_edf_keeps_identification_as_free_text():
    spec = simple_file(1, 2, 1, plus=None, patient="John Doe 1970",
                       recording="Startdate 01-JAN-2000 looks like EDF+ but is not")
    record = _decode(write_edf(spec))
    assert record.metadata.patient_text == "John Doe 1970"
    assert record.metadata.patient_id is None and record.metadata.patient_gender is None
    assert record.metadata.recording_text.endswith("but is not")


def test_start_date_two_digit_year_rule_and_edfplus_four_digit_year():
    early = simple_file(1, 2, 1, plus=None, start=dt.datetime(1985, 1, 1, 0, 0, 0))
    assert _decode(write_edf(early)).start_time.year == 1985
    late = simple_file(1, 2, 1, plus=None, start=dt.datetime(2084, 12, 31, 23, 59, 59))
    assert _decode(write_edf(late)).start_time == dt.datetime(2084, 12, 31, 23, 59, 59)
    # EDF+: the 4-digit year of the recording field wins (header says 'yy' after 2084)
    data = bytearray(write_edf(simple_file(1, 2, 1, start=dt.datetime(2090, 6, 7, 8, 9, 10))))
    data[168:176] = b"07.06.yy"
    assert _decode(bytes(data)).start_time == dt.datetime(2090, 6, 7, 8, 9, 10)


def test_annotation_onsets_may_lie_beyond_the_recording():
    spec = simple_file(1, 2, 2, annotations=[WAnnotation(600.0, None, ["REC STOP"], 1)])
    assert _ann(_decode(write_edf(spec))) == [(600.0, None, "REC STOP")]


def test_several_annotation_signals_are_all_read_in_file_order():
    spec = simple_file(1, 4, 1, annotations=[WAnnotation(0.25, None, ["first"], 0)])
    data = write_edf(spec)
    # duplicate the annotation signal: rebuild the header with ns + 1 and append its slot
    header = edf.read_edf_header(data)
    ns = len(header.signals)
    hb = header.header_bytes
    cols, pos = [], 256
    for width in (16, 80, 8, 8, 8, 8, 8, 80, 8, 32):
        column = [data[pos + i * width: pos + (i + 1) * width] for i in range(ns)]
        column.append(column[-1])
        cols.append(b"".join(column))
        pos += width * ns
    slot_len = header.signals[-1].samples_per_record * 2
    second = b"+0.5\x14second\x14\x00".ljust(slot_len, b"\x00")
    new = bytearray(data[:256] + b"".join(cols) + data[hb:] + second)
    new[184:192] = str(256 * (ns + 2)).ljust(8).encode()
    new[252:256] = str(ns + 1).ljust(4).encode()
    record = _decode(bytes(new))
    assert _ann(record) == [(0.25, None, "first"), (0.5, None, "second")]


# --------------------------------------------------------------------------- tolerances


def _patched(data: bytes, offset: int, value: bytes) -> bytes:
    out = bytearray(data)
    out[offset:offset + len(value)] = value
    return bytes(out)


def test_record_count_minus_one_is_counted_from_file_size():
    data = write_edf(simple_file(2, 5, 4, n_records_field="-1"))
    record = _decode(data)
    assert len(record.signals[0]) == 20
    assert any("-1" in w for w in record.warnings)


def test_fewer_records_than_declared_decodes_those_and_warns_strict_raises():
    data = write_edf(simple_file(2, 5, 4, plus=None))
    data = _patched(data, 236, b"9       ")
    record = _decode(data)
    assert len(record.signals[0]) == 20
    assert any("declares 9 data records" in w for w in record.warnings)
    with pytest.raises(TruncatedError) as info:
        _decode(data, strict=True)
    assert info.value.field == "number of data records"


def test_partial_last_record_is_dropped_with_a_warning():
    data = write_edf(simple_file(2, 5, 4, plus=None))
    record = _decode(data[:-7])
    assert len(record.signals[0]) == 15
    assert any("incomplete" in w for w in record.warnings)


def test_trailing_bytes_after_declared_records_are_ignored():
    data = write_edf(simple_file(2, 5, 4, plus=None))
    record = _decode(data + b"\x01" * 100)
    assert len(record.signals[0]) == 20
    assert any("ignored" in w for w in record.warnings)


@pytest.mark.parametrize("date,time", [(b"31.02.20", b"10.00.00"), (b"aa.bb.cc", b"10.00.00"),
                                       (b"01.01.20", b"25.61.00")])
def test_bad_or_impossible_dates_give_no_start_time(date, time):
    data = write_edf(simple_file(1, 2, 1, plus=None))
    record = _decode(_patched(_patched(data, 168, date), 176, time))
    assert record.start_time is None
    assert any("start" in w for w in record.warnings)


def test_date_with_other_separators_is_read_with_a_warning():
    data = write_edf(simple_file(1, 2, 1, plus=None))
    record = _decode(_patched(_patched(data, 168, b"4/3/21  "), 176, b"5:06:07 "))
    assert record.start_time == dt.datetime(2021, 3, 4, 5, 6, 7)
    assert record.warnings


def test_uncalibrated_signal_returns_digital_values():
    spec = simple_file(1, 4, 1, plus=None)
    spec.signals[0].physical_min = spec.signals[0].physical_max = 3.0
    record = _decode(write_edf(spec))
    sig = record.signals[0]
    assert (sig.scale, sig.offset) == (1.0, 0.0)
    np.testing.assert_array_equal(sig.physical, sig.digital.astype(float))
    assert any("uncalibrated" in w for w in record.warnings)


def test_plain_edf_with_annotation_label_is_read_as_annotations():
    spec = simple_file(1, 4, 2, annotations=[WAnnotation(1.0, None, ["evt"], 1)])
    data = _patched(write_edf(spec), 192, b" " * 44)
    record = _decode(data)
    assert record.format_detail == "EDF" and record.labels == ["ch0"]
    assert _ann(record) == [(1.0, None, "evt")]
    assert any("read as EDF+ annotations" in w for w in record.warnings)


def test_non_ascii_header_bytes_are_read_as_latin1_with_a_warning():
    spec = simple_file(1, 4, 1, plus=None, patient="Jos\xe9 M\xfcller")
    spec.signals[0].units = "\xb5V"
    record = _decode(write_edf(spec))
    assert record.metadata.patient_text == "José Müller"
    assert record.signals[0].units == "µV"
    assert any("non-ASCII" in w for w in record.warnings)


def test_header_size_field_that_lies_is_a_warning_and_ns_is_trusted():
    data = write_edf(simple_file(2, 3, 2, plus=None))
    record = _decode(_patched(data, 184, b"9999    "))
    assert len(record.signals) == 2
    assert any("header size" in w for w in record.warnings)


def test_malformed_tal_keeps_what_parses():
    spec = simple_file(1, 4, 1, annotations=[WAnnotation(0.5, None, ["ok"], 0)],
                       annotation_slot=20)
    data = bytearray(write_edf(spec))
    slot = data.rindex(b"+0.5")
    data[slot + 4: slot + 9] = b"\x14bad\xff"  # text without closing 0x14 and bad UTF-8
    record = _decode(bytes(data))
    assert record.annotations and record.annotations[0].text.startswith("bad")
    assert record.warnings


def test_tolerances_are_also_one_python_warning():
    data = write_edf(simple_file(2, 5, 4, n_records_field="-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [record] = ecgingest.read(data)
    ours = [str(w.message) for w in caught
            if issubclass(w.category, ecgingest.errors.EcgWarning)]
    assert record.warnings and ours == ["upload: " + "; ".join(record.warnings)]


# --------------------------------------------------------------------------- errors


def test_signal_count_beyond_the_file_is_a_truncation_naming_the_field():
    data = _patched(write_edf(simple_file(2, 3, 1, plus=None)), 252, b"99  ")
    with pytest.raises(TruncatedError) as info:
        _decode(data)
    assert (info.value.field, info.value.offset) == ("number of signals", 252)


def test_sample_count_larger_than_the_file_is_rejected_before_allocating():
    data = write_edf(simple_file(2, 3, 1, plus=None))
    offset = 256 + 216 * 2 + 8  # samples per record of signal 1
    with pytest.raises(HeaderError) as info:
        _decode(_patched(data, offset, b"99999999"))
    assert info.value.field == "samples per data record of signal 1"
    assert info.value.offset == offset


def test_zero_size_records_with_data_are_rejected():
    data = write_edf(simple_file(1, 3, 2, plus=None))
    with pytest.raises(HeaderError) as info:
        _decode(_patched(data, 256 + 216, b"0       "))
    assert "0 samples per data record" in str(info.value)


@pytest.mark.parametrize("offset,value,field", [
    (236, b"lots    ", "number of data records"),
    (244, b"one     ", "data record duration"),
    (244, b"-1      ", "data record duration"),
    (256 + 104, b"1,5     ", "physical minimum of signal 0"),
    (256 + 120, b"abc     ", "digital minimum of signal 0"),
])
def test_garbage_numeric_fields_are_header_errors_naming_the_field(offset, value, field):
    data = write_edf(simple_file(1, 3, 1, plus=None))
    with pytest.raises(HeaderError) as info:
        _decode(_patched(data, offset, value))
    assert info.value.field == field and info.value.offset == offset
    assert info.value.format == "edf" and info.value.path == "t.edf"


def test_file_shorter_than_the_fixed_header_is_truncated():
    with pytest.raises(TruncatedError):
        _decode(write_edf(simple_file(1, 3, 1))[:200])


# --------------------------------------------------------------------------- header only


def test_read_edf_header_from_path_bytes_and_stream_agree_with_full_read():
    path = EDF_FIXTURES / "test_subsecond.edf"
    data = path.read_bytes()
    from_path = ecgingest.read_edf_header(path)
    assert from_path == ecgingest.read_edf_header(data)
    assert from_path == ecgingest.read_edf_header(str(path))
    [record] = ecgingest.read(path)
    assert from_path.n_records == len(record.data_record_onsets)
    assert [s.label for s in from_path.data_signals] == record.labels
    assert from_path.start_time == record.start_time.replace(microsecond=0)
    assert [s.label for s in from_path.annotation_signals] == ["EDF Annotations"]

    class Counting(io.BytesIO):
        consumed = 0

        def read(self, n=-1):
            chunk = super().read(n)
            Counting.consumed += len(chunk)
            return chunk

    stream = Counting(data)
    assert ecgingest.read_edf_header(stream) == from_path
    assert Counting.consumed == from_path.header_bytes  # the data records are never read


def test_read_edf_header_rejects_non_edf():
    with pytest.raises(HeaderError):
        ecgingest.read_edf_header(b"x" * 600)
    with pytest.raises(EcgIngestError):
        ecgingest.read_edf_header(b"0       ")


def test_edfplus_without_annotation_signal_assumes_continuity_with_a_warning():
    data = _patched(write_edf(simple_file(1, 4, 3, plus=None)), 192, b"EDF+C")
    record = _decode(data)
    assert record.format_detail == "EDF+C"
    np.testing.assert_array_equal(record.data_record_onsets, [0.0, 1.0, 2.0])
    assert any("no annotation signal" in w for w in record.warnings)


def test_decoding_in_threads_gives_the_same_samples():
    from concurrent.futures import ThreadPoolExecutor

    files = [write_edf(simple_file(3, 50, 40, bdf=bool(i % 2), seed=i)) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(_decode, files))
    for data, record in zip(files, threaded):
        sequential = _decode(data)
        for a, b in zip(record.signals, sequential.signals):
            np.testing.assert_array_equal(a.digital, b.digital)


def test_read_edf_header_from_a_non_seekable_stream():
    data = (EDF_FIXTURES / "test_subsecond.edf").read_bytes()

    class Pipe(io.RawIOBase):
        def __init__(self):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._inner.read(min(len(buffer), 100))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    header = ecgingest.read_edf_header(Pipe())
    assert header == ecgingest.read_edf_header(data)


@requires_corpus
@pytest.mark.parametrize("entry", [pytest.param(r, id=r["path"])
                                   for r in corpus_records("scp") + corpus_records("wfdb")])
def test_detection_never_claims_corpus_files_of_other_formats(entry):
    for name in entry["files"]:
        data = (corpus_dir() / name).read_bytes()
        assert not edf.sniff(Entry.from_bytes(Path(name).name, data))


def test_files_on_disk_are_mapped_lazily_for_edf_and_up_front_for_wfdb(monkeypatch):
    """EDF lets its in-order reads fault the mapping in; WFDB maps every page first."""
    from ecgingest import sources

    prefaults: list[bool] = []
    real_guard = sources._guard

    def recording_guard(mapped, prefault):
        prefaults.append(prefault)
        return real_guard(mapped, prefault)

    monkeypatch.setattr(sources, "_guard", recording_guard)
    monkeypatch.setattr(sources, "MAP_FROM", 1)  # map even small files
    ecgingest.read(FIXTURES / "edf" / "test_subsecond.edf")
    assert prefaults == [False]
    prefaults.clear()
    ecgingest.read(FIXTURES / "wfdb" / "100_3chan")
    assert prefaults and all(prefaults)


# --------------------------------------------------------------------------- limits


def _many_tals(count: int) -> bytes:
    """An EDF+C file whose one data record carries ``count`` one-letter TALs."""
    annotations = [WAnnotation(i % 7, None, ["a"], 0) for i in range(count)]
    return write_edf(simple_file(1, 4, 1, annotations=annotations))


def test_annotations_beyond_limits_max_annotations_are_a_limit_error():
    data = _many_tals(50)
    assert len(_decode(data, limits=ecgingest.Limits(max_annotations=50)).annotations) == 50
    with pytest.raises(ecgingest.errors.LimitExceededError) as info:
        _decode(data, limits=ecgingest.Limits(max_annotations=49))
    assert info.value.limit == "max_annotations" and info.value.value == 49
    with pytest.raises(ecgingest.errors.LimitExceededError):
        ecgingest.read(data, limits=ecgingest.Limits(max_annotations=49))


def test_a_slot_of_many_tiny_tals_stops_at_the_bound_before_building_annotations(monkeypatch):
    data = _many_tals(200_000)
    built = []
    monkeypatch.setattr(edf, "Annotation", lambda **kw: built.append(kw))
    with pytest.raises(ecgingest.errors.LimitExceededError):
        _decode(data, limits=ecgingest.Limits(max_annotations=1000))
    assert built == []


def test_a_slot_larger_than_one_split_reads_every_tal_in_order():
    data = _many_tals(20_000)  # about 160 kB of TALs in one slot: read TAL by TAL
    assert [(a.onset, a.text) for a in _decode(data).annotations] == [
        (float(i % 7), "a") for i in range(20_000)]


def test_every_annotation_signal_counts_towards_one_bound():
    spec = simple_file(1, 4, 2, annotations=[WAnnotation(0.5, None, ["x", "y"], 0),
                                             WAnnotation(1.5, None, ["z"], 1)])
    data = write_edf(spec)
    assert len(_decode(data, limits=ecgingest.Limits(max_annotations=3)).annotations) == 3
    with pytest.raises(ecgingest.errors.LimitExceededError):
        _decode(data, limits=ecgingest.Limits(max_annotations=2))


def test_samples_and_record_onsets_count_against_the_upload_output_budget():
    data = write_edf(simple_file(2, 10, 3, plus="C"))
    need = 2 * 10 * 3 * 2 + 3 * 8  # int16 samples and float64 data record onsets
    ctx = DecodeContext("edf", limits=ecgingest.Limits(max_decoded_size=need))
    edf.FORMAT.decode(data, ctx)
    assert ctx.budget.used == need
    with pytest.raises(ecgingest.errors.LimitExceededError) as info:
        edf.FORMAT.decode(data, ctx.for_file(name="second"))  # the same upload's budget
    assert info.value.limit == "max_decoded_size"


@pytest.mark.parametrize("status_of", [
    lambda buf: edf._kernel.deinterleave(buf, 0, 3, np.array([4], np.int64),
                                         np.array([0], np.int64), 8, 2,
                                         [np.empty(12, np.int16)]),
    lambda buf: edf._kernel.deinterleave(buf, 0, 1, np.array([4], np.int64),
                                         np.array([6], np.int64), 8, 2,
                                         [np.empty(4, np.int16)]),
    lambda buf: edf._kernel.scan_annotation_slots(buf, 0, 3, 8, 0, 8, True,
                                                  np.empty(3), np.empty(3, np.uint8)),
    lambda buf: edf._kernel.scan_annotation_slots(buf, 0, 1, 8, 4, 8, True,
                                                  np.empty(1), np.empty(1, np.uint8)),
])
def test_kernel_statuses_become_typed_errors_without_a_status_number(status_of):
    status = status_of(np.zeros(16, dtype=np.uint8))
    assert status != 0
    with pytest.raises(EcgIngestError) as info:
        DecodeContext("edf").check_status(status, "data records")
    assert "status" not in str(info.value) and str(status) not in str(info.value)


# --------------------------------------------------------------------------- inspect


def _info(data: bytes, **kw):
    return edf.FORMAT.inspect(data, DecodeContext("edf", name="t.edf", path="t.edf", **kw))


def _inspect_paths() -> list:
    paths = sorted(EDF_FIXTURES.glob("*.[eb]df"))
    root = corpus_dir()
    if root is not None:
        paths += [root / r["path"] for r in corpus_records("edf")]
    return [pytest.param(p, id=p.name) for p in paths]


@pytest.mark.parametrize("path", _inspect_paths())
def test_inspect_gives_the_facts_of_the_full_read_without_decoding_samples(path, monkeypatch):
    data = path.read_bytes()
    full = RecordInfo.of(_decode(data))
    monkeypatch.setattr(edf._kernel, "deinterleave", None)  # the samples are never read
    info = _info(data)
    assert info == full
    assert all(s.dtype == ("int32" if path.suffix.lower() == ".bdf" else "int16")
               for s in info.signals)


def test_inspect_counts_samples_as_records_times_samples_per_record():
    data = write_edf(simple_file(2, 25, 4, bdf=True, annotations=[
        WAnnotation(0.5, 1.0, ["a", "b"], 1)]))
    info = _info(data)
    assert [(s.label, s.samples, s.dtype) for s in info.signals] == [
        ("ch0", 100, "int32"), ("ch1", 100, "int32")]
    assert info.annotations == 2 and info.format_detail == "BDF+C"


def test_inspect_reports_header_errors_like_a_full_read():
    data = _patched(write_edf(simple_file(1, 3, 1, plus=None)), 256 + 120, b"abc     ")
    with pytest.raises(HeaderError) as info:
        _info(data)
    assert info.value.field == "digital minimum of signal 0" and info.value.path == "t.edf"


@pytest.mark.parametrize("n_signals", [1, 31, 32, 40])
def test_window_of_a_file_on_disk_whatever_its_header_length(tmp_path: Path, n_signals: int):
    """Headers of one to many signals read from disk give the window of a whole read."""
    path = tmp_path / "many.edf"
    path.write_bytes(write_edf(simple_file(n_signals, 10, 6, plus=None)))
    [whole] = ecgingest.read(path)
    [part] = ecgingest.read(path, start=2, stop=4)
    assert [s.label for s in part.signals] == [s.label for s in whole.signals]
    for got, full in zip(part.signals, whole.signals):
        np.testing.assert_array_equal(got.digital, full.digital[20:40])


def test_header_signals_are_signal_headers_however_the_header_was_made():
    """A parsed header builds its per-signal objects when asked; they equal those of a
    header made from the same fields, and survive a pickle round trip."""
    import dataclasses
    import pickle

    header = ecgingest.read_edf_header(write_edf(simple_file(3, 10, 2, annotation_slot=30)))
    assert all(type(s) is edf.EdfSignalHeader for s in header.signals)
    assert [s.is_annotation for s in header.signals] == [False, False, False, True]
    assert header.data_signals == header.signals[:3]
    rebuilt = dataclasses.replace(header)
    assert rebuilt == header and repr(rebuilt) == repr(header)
    assert pickle.loads(pickle.dumps(ecgingest.read_edf_header(
        write_edf(simple_file(2, 10, 2))))) == ecgingest.read_edf_header(
        write_edf(simple_file(2, 10, 2)))
    with pytest.raises(AttributeError):
        header.no_such_field  # noqa: B018
