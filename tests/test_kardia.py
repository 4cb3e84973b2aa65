"""Kardia recording JSON (KARDIA.md): detection, mapping, lenient keys, malformed documents."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from ecgingest import errors
from ecgingest.detect import detect
from ecgingest.formats import kardia
from ecgingest.formats._base import DecodeContext
from ecgingest.sources import Entry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kardia"
SIX = ["leadI", "leadII", "leadIII", "AVR", "AVL", "AVF"]


def _doc(leads=("leadI",), enhanced=False, length=30, **top):
    rng = np.random.default_rng(len(leads) + length)
    samples = {k: rng.integers(-3000, 3000, length).tolist() for k in leads}
    raw = {"frequency": 300, "mainsFrequency": 60, "amplitudeResolution": 500,
           "numLeads": len(leads), "samples": samples}
    data = {"raw": raw}
    if enhanced:
        data["enhanced"] = {**raw, "samples": {k: [v // 2 for v in vals]
                                               for k, vals in samples.items()}}
    doc = {"id": "rec-1", "patientID": "pid-1", "duration": length * 1000 // 300,
           "heartRate": 70, "note": "after coffee", "algorithmDetermination": "normal",
           "tags": ["Palpitations"], "recordedAt": "2024-06-23T18:30:00-07:00", "data": data}
    doc.update(top)
    return doc


def _read(doc, strict=False, **kwargs):
    return kardia.decode(json.dumps(doc).encode(), name="r.json", strict=strict, **kwargs)


# ------------------------------------------------------------------- detection

def test_a_kardia_document_is_detected_and_read_like_any_upload():
    data = json.dumps(_doc()).encode()
    assert detect(Entry.from_bytes("export.json", data)).name == "kardia"
    [record] = ecgingest.read(data)
    assert record.format == "kardia"


@pytest.mark.parametrize("document", [
    b'{"data": {"raw": {}}}',
    b'{"name": "x", "samples": [1, 2, 3]}',
    b'[{"amplitudeResolution": 1, "mainsFrequency": 50}]',
    b'{"recordedAt": "2024-01-01T00:00:00Z"}',
    b"not json at all",
    b"",
])
def test_detection_does_not_claim_arbitrary_json(document):
    fmt = detect(Entry.from_bytes("x.json", document))
    assert fmt is None or fmt.name != "kardia"


def test_detection_finds_keys_when_samples_come_first_in_a_large_document():
    doc = _doc(SIX, length=20000)
    data = json.dumps({"data": doc.pop("data"), **doc}).encode()
    assert len(data) > 64 * 1024
    assert detect(Entry.from_bytes("big.json", data)).name == "kardia"


def test_json_after_more_than_64_blank_bytes_is_detected():
    data = b"\xef\xbb\xbf" + b" \r\n\t" * 40 + json.dumps(_doc()).encode()
    assert kardia.sniff(Entry.from_bytes("x", data))


def test_json_with_a_byte_order_mark_is_detected():
    data = b"\xef\xbb\xbf" + json.dumps(_doc()).encode()
    assert kardia.sniff(Entry.from_bytes("x", data))


# --------------------------------------------------------------------- mapping

def test_single_lead_raw_samples_scaled_by_amplitude_resolution_in_nanovolts():
    doc = _doc(length=5)
    record = _read(doc)
    [signal] = record.signals
    assert signal.label == "I" and signal.sample_rate == 300.0 and signal.units == "mV"
    raw = np.array(doc["data"]["raw"]["samples"]["leadI"])
    np.testing.assert_array_equal(signal.digital, raw)
    np.testing.assert_allclose(signal.physical, raw * 500 / 1e6, rtol=1e-12)
    assert not signal.digital.flags.writeable


def test_six_lead_order_and_labels():
    record = _read(_doc(list(reversed(SIX))))
    assert record.labels == ["I", "II", "III", "aVR", "aVL", "aVF"]
    assert record.format_detail == "Kardia recording JSON, 6-lead, raw"


def test_enhanced_set_is_a_second_signal_set_or_the_chosen_one():
    doc = _doc(SIX, enhanced=True)
    record = _read(doc)
    assert record.signal_set == "raw"
    enhanced = record.enhanced_signals
    assert [s.label for s in enhanced] == record.labels
    np.testing.assert_array_equal(enhanced[0].digital, doc["data"]["enhanced"]["samples"]["leadI"])
    chosen = _read(doc, signal_set="enhanced")
    assert chosen.signal_set == "enhanced"
    np.testing.assert_array_equal(chosen.signals[2].digital,
                                  doc["data"]["enhanced"]["samples"]["leadIII"])
    np.testing.assert_array_equal(chosen.raw_signals[2].digital,
                                  doc["data"]["raw"]["samples"]["leadIII"])


def test_start_time_keeps_its_offset_and_metadata_gets_utc():
    record = _read(_doc())
    assert record.start_time == dt.datetime(2024, 6, 23, 18, 30,
                                            tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    assert record.start_time.utcoffset() == dt.timedelta(hours=-7)
    assert record.metadata.recording_start_time == dt.datetime(2024, 6, 24, 1, 30,
                                                               tzinfo=dt.timezone.utc)


def test_zulu_suffix_is_utc():
    record = _read(_doc(recordedAt="2024-06-23T18:30:00.5Z"))
    assert record.start_time.utcoffset() == dt.timedelta(0)
    assert record.start_time.microsecond == 500000


def test_heart_rate_note_determination_and_tags_are_extra_readings():
    record = _read(_doc(algorithmDetermination="afib"))
    assert record.heart_rate == 70 and record.note == "after coffee"
    assert record.algorithm_determination == "afib"
    assert record.recording_id == "rec-1" and record.platform_patient_id == "pid-1"
    assert record.metadata.searching_tags == ("Palpitations",)
    assert record.mains_frequency == 60 and record.amplitude_resolution_nv == 500


@pytest.mark.parametrize("value", kardia.ALGORITHM_DETERMINATIONS)
def test_every_algorithm_determination_of_the_spec_is_kept(value):
    assert _read(_doc(algorithmDetermination=value), strict=True).algorithm_determination == value


def test_unknown_algorithm_determination_is_a_warning_or_a_strict_error():
    record = _read(_doc(algorithmDetermination="sinus_rhythm"))
    assert record.algorithm_determination == "sinus_rhythm" and record.warnings
    with pytest.raises(errors.HeaderError) as info:
        _read(_doc(algorithmDetermination="sinus_rhythm"), strict=True)
    assert info.value.field == "algorithmDetermination"


@pytest.mark.parametrize("sex, gender", [(1, "MALE"), (2, "FEMALE"), (0, None), (9, None),
                                         ("2", "FEMALE")])
def test_patient_object_maps_onto_metadata_fields(sex, gender):
    patient = {"mrn": "MRN-1", "dob": "1970-01-31", "firstname": "Ada", "lastname": "Lovelace",
               "sex": sex}
    meta = _read(_doc(patient=patient)).metadata
    assert meta.patient_id == "MRN-1" and meta.patient_birth_date == dt.date(1970, 1, 31)
    assert meta.patient_first_name == "Ada" and meta.patient_last_name == "Lovelace"
    assert meta.patient_gender == gender
    assert meta.source_of("patient_id") == "file"


def test_overrides_win_over_the_patient_object():
    data = json.dumps(_doc(patient={"mrn": "MRN-1"})).encode()
    [record] = ecgingest.read(data, overrides={"patient_id": "H-9"})
    assert record.metadata.patient_id == "H-9"


@pytest.mark.parametrize("spelling", [
    {"mains_freq": 50}, {"mains_frequency": 50}, {"mainsFrequency": 50},
])
def test_mains_frequency_spellings_are_all_accepted(spelling):
    doc = _doc()
    raw = doc["data"]["raw"]
    del raw["mainsFrequency"]
    raw.update(spelling)
    assert _read(doc).mains_frequency == 50


@pytest.mark.parametrize("names", [
    ["lead_I", "lead_II", "lead_III", "AVR", "AVL", "AVF"],
    ["leadI", "leadII", "leadIII", "aVR", "aVL", "aVF"],
])
def test_lead_key_spellings_are_all_accepted(names):
    assert _read(_doc(names)).labels == ["I", "II", "III", "aVR", "aVL", "aVF"]


def test_snake_case_top_level_keys_are_accepted():
    doc = _doc()
    doc["recorded_at"] = doc.pop("recordedAt")
    doc["heart_rate"] = doc.pop("heartRate")
    doc["algorithm_determination"] = doc.pop("algorithmDetermination")
    record = _read(doc)
    assert record.heart_rate == 70 and record.start_time is not None
    assert record.algorithm_determination == "normal"


def test_num_leads_disagreeing_with_samples_is_a_warning_or_strict_error():
    doc = _doc(["leadI", "leadII"])
    doc["data"]["raw"]["numLeads"] = 6
    assert _read(doc).warnings
    with pytest.raises(errors.HeaderError) as info:
        _read(doc, strict=True)
    assert info.value.field == "data.raw.numLeads"


# ------------------------------------------------------------------- malformed

def _without(path):
    doc = _doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _with(path, value):
    doc = _doc()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize("doc, field", [
    (_without(["data"]), "data"),
    (_with(["data"], [1, 2]), "data"),
    (_with(["data"], {}), "data.raw"),
    (_without(["data", "raw", "frequency"]), "data.raw.frequency"),
    (_with(["data", "raw", "frequency"], 0), "data.raw.frequency"),
    (_with(["data", "raw", "frequency"], "300"), "data.raw.frequency"),
    (_without(["data", "raw", "amplitudeResolution"]), "data.raw.amplitudeResolution"),
    (_with(["data", "raw", "amplitudeResolution"], -1), "data.raw.amplitudeResolution"),
    (_without(["data", "raw", "samples"]), "data.raw.samples"),
    (_with(["data", "raw", "samples"], {}), "data.raw.samples"),
    (_with(["data", "raw", "samples"], {"leadI": [1, 2.5]}), "data.raw.samples.leadI"),
    (_with(["data", "raw", "samples"], {"leadI": [1, "2"]}), "data.raw.samples.leadI"),
    (_with(["data", "raw", "samples"], {"leadI": []}), "data.raw.samples.leadI"),
    (_with(["data", "raw", "samples"], {"leadI": 5}), "data.raw.samples.leadI"),
    (_with(["data", "raw", "samples"], {"leadI": [2**70]}), "data.raw.samples.leadI"),
    (_with(["data", "raw", "numLeads"], 7), "data.raw.numLeads"),
    (_with(["recordedAt"], "yesterday"), "recordedAt"),
    (_with(["recordedAt"], 1719167400), "recordedAt"),
    (_with(["heartRate"], "70 bpm"), "heartRate"),
    (_with(["tags"], "Palpitations"), "tags"),
    (_with(["algorithmDetermination"], 3), "algorithmDetermination"),
    (_with(["patient"], "Ada"), "patient"),
    (_with(["patient"], {"dob": 1970}), "patient.dob"),
])
def test_malformed_documents_give_a_header_error_naming_the_key(doc, field):
    with pytest.raises(errors.HeaderError) as info:
        _read(doc)
    assert info.value.field == field
    assert info.value.format == "kardia"


def test_invalid_json_is_a_header_error_with_its_offset():
    with pytest.raises(errors.HeaderError) as info:
        kardia.decode(b'{"data": {"raw": ', name="x")
    assert info.value.field == "document" and info.value.offset == 17


def test_missing_raw_falls_back_to_enhanced_with_a_warning_unless_strict():
    doc = _doc(enhanced=True)
    del doc["data"]["raw"]
    record = _read(doc)
    assert record.signal_set == "enhanced" and record.warnings
    with pytest.raises(errors.HeaderError):
        _read(doc, strict=True)


@given(data=st.data())
def test_random_byte_mutations_end_in_a_record_or_a_typed_error(data):
    raw = bytearray(json.dumps(_doc(["leadI", "leadII"], enhanced=True, length=8,
                                    patient={"mrn": "1", "dob": "1970-01-01", "sex": 1})).encode())
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(
            st.sampled_from(b'{}[]":,0123456789-.eE ntfa'))
    try:
        kardia.decode(bytes(raw), name="m", strict=data.draw(st.booleans()))
    except errors.EcgIngestError:
        pass


@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                          lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                          max_leaves=20),
       path=st.sampled_from([["data"], ["data", "raw"], ["data", "raw", "samples"],
                             ["data", "raw", "samples", "leadI"], ["patient"], ["recordedAt"],
                             ["data", "raw", "frequency"], ["heartRate"], ["tags"]]))
def test_any_json_value_at_any_key_ends_in_a_record_or_a_typed_error(value, path):
    doc = copy.deepcopy(_doc())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        kardia.decode(json.dumps(doc).encode(), name="m")
    except errors.EcgIngestError:
        pass


_KEY_PATHS = [["data"], ["data", "raw"], ["data", "raw", "samples"],
              ["data", "raw", "samples", "leadI"], ["data", "raw", "frequency"],
              ["data", "raw", "amplitudeResolution"], ["data", "raw", "mainsFrequency"],
              ["data", "raw", "numLeads"], ["patient"], ["patient", "sex"], ["patient", "dob"],
              ["patient", "mrn"], ["recordedAt"], ["heartRate"], ["duration"], ["tags"],
              ["note"], ["id"], ["algorithmDetermination"]]


@given(raw_value=st.sampled_from([
    "[" * 100_000 + "]" * 100_000, "[" * 950 + "]" * 950,
    '{"a":' * 5000 + "1" + "}" * 5000, "1" + "0" * 400, "-" + "9" * 4000, "9" * 5000,
    "1e999", "-1e999", "NaN", "Infinity", "1e-999", "[" + "1" + "0" * 30 + "]",
    "[" + ", ".join(["1" + "0" * 400] * 3) + "]", '"' + "9" * 5000 + '"']),
       path=st.sampled_from(_KEY_PATHS), strict=st.booleans())
def test_deep_nesting_and_numbers_beyond_a_float_give_typed_errors(raw_value, path, strict):
    doc = copy.deepcopy(_doc(patient={"mrn": "1", "dob": "1970-01-01", "sex": 1}))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@VALUE@"
    text = json.dumps(doc).replace('"@VALUE@"', raw_value).encode()
    try:
        kardia.FORMAT.decode(text, DecodeContext("kardia", name="m", strict=strict))
    except errors.EcgIngestError as exc:
        assert len(str(exc)) < 1000  # a hostile value is not copied whole into the message


def test_a_heart_rate_beyond_any_float_names_its_key():
    text = json.dumps(_doc()).replace('"heartRate": 70', '"heartRate": 1' + "0" * 400)
    with pytest.raises(errors.HeaderError) as info:
        kardia.decode(text.encode(), name="m")
    assert info.value.field == "heartRate" and "too large" in info.value.message


@given(leads=st.lists(st.sampled_from(SIX), min_size=1, max_size=6, unique=True),
       length=st.integers(1, 60), rate=st.sampled_from([150, 300, 500.5]),
       resolution=st.sampled_from([1, 500, 1250.5]), bound=st.sampled_from([2**7, 2**15, 2**40]),
       data=st.data())
def test_documents_written_from_random_samples_read_back_exactly(leads, length, rate,
                                                                 resolution, bound, data):
    samples = {lead: data.draw(st.lists(st.integers(-bound, bound - 1), min_size=length,
                                        max_size=length)) for lead in leads}
    doc = _doc(leads)
    doc["data"]["raw"].update(frequency=rate, amplitudeResolution=resolution, samples=samples)
    record = kardia.FORMAT.decode(json.dumps(doc).encode(),
                                  DecodeContext("kardia", name="w.json", path="w.json"))
    order = [lead for lead in SIX if lead in leads]
    assert [s.label for s in record.signals] == [
        {"leadI": "I", "leadII": "II", "leadIII": "III", "AVR": "aVR", "AVL": "aVL",
         "AVF": "aVF"}[lead] for lead in order]
    for signal, lead in zip(record.signals, order):
        assert signal.digital.tolist() == samples[lead]
        assert signal.sample_rate == rate and signal.scale == resolution / 1e6
    assert record.sources == ("w.json",) and record.warnings == []


# -------------------------------------------------------------------- fixtures

@pytest.mark.parametrize("name, leads", [("single_lead.json", 1), ("six_lead_enhanced.json", 6)])
def test_fixture_documents_decode_to_their_samples(name, leads):
    doc = json.loads((FIXTURES / name).read_text())
    [record] = ecgingest.read(FIXTURES / name)
    assert len(record.signals) == leads and record.warnings == []
    for signal, key in zip(record.signals, SIX):
        expected = np.array(doc["data"]["raw"]["samples"][key])
        np.testing.assert_array_equal(signal.digital, expected)
        resolution = doc["data"]["raw"]["amplitudeResolution"]
        np.testing.assert_allclose(signal.physical, expected * resolution / 1e6, rtol=1e-12)
