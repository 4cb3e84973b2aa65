"""METADATA.md overrides: validated before decoding, applied with provenance."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from ecgingest import Metadata, Overrides, Record
from ecgingest.errors import OverrideError


def _record(**meta):
    return Record("r", "wfdb", "WFDB", [], metadata=Metadata(**meta))


@pytest.mark.parametrize("field,value", [
    ("patient_gender", "robot"),
    ("patient_birth_date", "31/01/1970"),
    ("patient_birth_date", "1970-02-30"),
    ("patient_age", -1),
    ("patient_age", 2**32),
    ("patient_weight", 70.5),
    ("patient_height", True),
    ("recording_start_time", "2024-06-23T18:30:00"),  # no offset: not UTC
    ("recording_start_time", "yesterday"),
    ("recording_time_zone", "Mars/Olympus"),
    ("recording_time_zone", "A" * 5000),  # too long for a file name: OSError in zoneinfo
    ("recording_time_zone", "Europe"),  # a directory of the time zone database
    ("recording_time_zone", "Europe/London\x00"),
    ("recording_time_zone", "../../etc/passwd"),
    ("recording_start_time", "9999-12-31T23:59:59-01:00"),  # past datetime.max in UTC
    ("recording_start_time", "0001-01-01T00:00:00+01:00"),  # before datetime.min in UTC
    ("indications", "chest pain"),
    ("searching_tags", [1, 2]),
    ("patient_id", ""),
    ("favourite_colour", "blue"),
])
def test_invalid_override_names_the_field(field, value):
    with pytest.raises(OverrideError) as info:
        Overrides.from_mapping({field: value})
    assert info.value.field == field


def test_invalid_override_fails_before_any_decoding(tmp_path):
    # the source does not even exist: validation must come first
    with pytest.raises(OverrideError):
        ecgingest.ingest(tmp_path / "missing.zip", overrides={"patient_age": "old"})


def test_valid_overrides_are_normalised():
    o = Overrides.from_mapping({
        "patient_gender": "female", "patient_birth_date": "1970-01-31",
        "recording_start_time": "2024-06-23T18:30:00Z", "recording_time_zone": "Europe/London",
        "indications": ["palpitations"], "patient_weight": 70000,
    })
    assert o.values["patient_gender"] == "FEMALE"
    assert o.values["patient_birth_date"] == dt.date(1970, 1, 31)
    assert o.values["recording_start_time"] == dt.datetime(2024, 6, 23, 18, 30,
                                                           tzinfo=dt.timezone.utc)
    assert o.values["indications"] == ("palpitations",)


def test_override_wins_and_file_value_is_kept():
    rec = _record(patient_id="FILE-1", patient_last_name="Doe")
    out = Overrides.from_mapping({"patient_id": "REQ-9"}).apply(rec)
    assert out.metadata.patient_id == "REQ-9"
    assert out.metadata.overridden == {"patient_id"}
    assert out.metadata.file_values == {"patient_id": "FILE-1"}
    assert out.metadata.source_of("patient_id") == "override"
    assert out.metadata.source_of("patient_last_name") == "file"
    assert out.metadata.source_of("patient_age") is None
    assert rec.metadata.patient_id == "FILE-1"  # the original is untouched


def test_none_values_are_not_overrides():
    o = Overrides.from_mapping({"patient_id": None})
    assert not o


_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6000),
    st.binary(max_size=64), st.lists(st.text(max_size=20), max_size=5), st.datetimes(),
    st.datetimes(timezones=st.timezones()), st.dates(),
    st.sampled_from(["Z", "9999-12-31T23:59:59-23:59", "Etc/GMT+12", "A" * 300, "/",
                     "2024-06-23T18:30:00Z"]),
)


@given(field=st.sampled_from(ecgingest.record.METADATA_FIELDS), value=_ANY_VALUE)
def test_any_override_value_is_accepted_or_an_override_error_naming_its_field(field, value):
    try:
        Overrides.from_mapping({field: value})
    except OverrideError as exc:
        assert exc.field == field
