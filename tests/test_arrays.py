"""Records as arrays: to_numpy, sample times, unit conversion, pandas and MNE."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, requires_corpus
from ecgingest import Annotation, Record, Signal
from ecgingest.errors import EcgIngestError, MissingDependencyError
from ecgingest.record import MixedRatesError
from ecgingest.units import UnitError, conversion_factor


def _record(*signals: Signal, **kw) -> Record:
    return Record("r", "edf", "EDF+C", list(signals), **kw)


def _sig(label: str, rate: float = 500.0, n: int = 6, units: str = "mV", scale: float = 0.5,
         offset: float = 1.0, **kw) -> Signal:
    return Signal(label, rate, np.arange(n, dtype=np.int16) - 2, scale=scale, offset=offset,
                  units=units, **kw)


# --------------------------------------------------------------------------- to_numpy


def test_to_numpy_stacks_physical_values_channels_by_samples():
    record = _record(_sig("I"), _sig("II", scale=2.0, offset=0.0))
    array = record.to_numpy()
    assert array.shape == (2, 6) and array.dtype == np.float64
    np.testing.assert_array_equal(array[0], record.signals[0].physical)
    np.testing.assert_array_equal(array[1], record.signals[1].physical)


def test_to_numpy_picks_channels_by_label_standard_name_or_index_in_the_given_order():
    record = _record(_sig("MDC_ECG_LEAD_I"), _sig("MDC_ECG_LEAD_II", scale=2.0))
    array = record.to_numpy(["II", 0])
    np.testing.assert_array_equal(array[0], record.signals[1].physical)
    np.testing.assert_array_equal(array[1], record.signals[0].physical)
    assert record.to_numpy("ii").shape == (1, 6)


def test_to_numpy_digital_keeps_the_stored_integers_in_their_common_dtype():
    wide = Signal("II", 500.0, np.arange(6, dtype=np.int32) * 70000)
    record = _record(_sig("I"), wide)
    array = record.to_numpy(physical=False)
    assert array.dtype == np.int32
    np.testing.assert_array_equal(array[1], wide.digital)
    np.testing.assert_array_equal(array[0], record.signals[0].digital)


def test_to_numpy_converts_units_per_signal():
    record = _record(_sig("I", units="mV"), _sig("II", units="uV"))
    array = record.to_numpy(units="uV")
    np.testing.assert_allclose(array[0], record.signals[0].physical * 1000)
    np.testing.assert_array_equal(array[1], record.signals[1].physical)


def test_to_numpy_units_with_digital_values_is_refused():
    with pytest.raises(ValueError, match="physical=False"):
        _record(_sig("I")).to_numpy(physical=False, units="mV")


def test_mixed_rates_error_names_the_signals_and_how_to_pick():
    record = _record(_sig("EEG", 100.0, 10), _sig("ECG", 200.0, 20), _sig("EOG", 100.0, 10))
    with pytest.raises(MixedRatesError) as info:
        record.to_numpy()
    message = str(info.value)
    assert "100 Hz" in message and "200 Hz" in message
    assert "EEG, EOG" in message and "ECG" in message and "channels=" in message
    assert isinstance(info.value, EcgIngestError) and isinstance(info.value, ValueError)
    assert record.to_numpy(["EEG", "EOG"]).shape == (2, 10)


def test_same_rate_different_lengths_is_also_refused():
    with pytest.raises(MixedRatesError):
        _record(_sig("I", n=5), _sig("II", n=6)).to_numpy()


@given(st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=40),
       st.floats(1e-4, 10), st.floats(-100, 100))
def test_to_numpy_rows_equal_each_signal_physical(values, scale, offset):
    digital = np.array(values, dtype=np.int16)
    record = _record(Signal("a", 250.0, digital, scale=scale, offset=offset),
                     Signal("b", 250.0, digital[::-1].copy(), scale=scale, offset=offset))
    array = record.to_numpy()
    np.testing.assert_array_equal(array, np.stack([s.physical for s in record.signals]))


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(("source", "target", "factor"), [
    ("mV", "uV", 1e3), ("uV", "mV", 1e-3), ("µV", "V", 1e-6), ("μV", "nV", 1e3),
    ("V", "mV", 1e3), ("nV", "uV", 1e-3), ("mV", "mV", 1.0), ("MV", "mv", 1.0),
])
def test_physical_in_converts_between_voltage_units(source, target, factor):
    sig = _sig("I", units=source)
    np.testing.assert_allclose(sig.physical_in(target), sig.physical * factor, rtol=1e-15)
    assert conversion_factor(source, target) == pytest.approx(factor, rel=1e-15)


def test_physical_in_same_units_is_physical_itself_and_results_are_read_only():
    sig = _sig("I", units="mV")
    assert sig.physical_in("mV") is sig.physical
    with pytest.raises(ValueError):
        sig.physical_in("uV")[0] = 0


@pytest.mark.parametrize(("source", "target"), [("DegC", "mV"), ("", "uV"), ("mV", "%"),
                                                ("mV", "mmHg")])
def test_incompatible_units_raise_a_unit_error(source, target):
    with pytest.raises(UnitError) as info:
        _sig("T", units=source).physical_in(target)
    assert isinstance(info.value, EcgIngestError) and isinstance(info.value, ValueError)


def test_physical_in_keeps_invalid_samples_nan():
    sig = Signal("I", 1.0, np.array([1, -32768, 3], np.int16), scale=1.0, units="mV",
                 invalid_value=-32768)
    assert np.isnan(sig.physical_in("uV")).tolist() == [False, True, False]


# --------------------------------------------------------------------------- times


def test_times_of_a_continuous_signal_are_index_over_rate():
    sig = _sig("I", rate=4.0, n=6)
    np.testing.assert_array_equal(sig.times(), np.arange(6) / 4.0)
    assert not sig.times().flags.writeable


def test_times_follow_edf_plus_d_data_record_onsets():
    digital = np.arange(8, dtype=np.int16)
    sig = Signal("I", 2.0, digital)
    record = _record(sig, data_record_onsets=np.array([0.0, 1.0, 5.0, 6.5]))
    np.testing.assert_array_equal(record.times(),
                                  [0.0, 0.5, 1.0, 1.5, 5.0, 5.5, 6.5, 7.0])
    np.testing.assert_array_equal(sig.times(), record.times())


def test_times_of_a_read_edf_plus_d_file_start_each_data_record_at_its_onset(tmp_path):
    duration = 1.0
    signal = Signal("ECG", 4.0, np.arange(12, dtype=np.int16), scale=0.5, units="uV")
    record = Record("d.edf", "edf", "EDF+D", [signal], start_time=dt.datetime(2020, 1, 2, 3),
                    data_record_onsets=np.array([0.0, 3.0, 10.0]))
    path = record.to_edf(tmp_path / "d.edf", record_duration=duration)
    [back] = ecgingest.read(path)
    assert back.format_detail == "EDF+D"
    times = back.times()
    np.testing.assert_array_equal(times[:4], [0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(times[4:8], [3, 3.25, 3.5, 3.75])
    np.testing.assert_array_equal(times[8:], [10, 10.25, 10.5, 10.75])


@requires_corpus
def test_times_of_the_corpus_edf_plus_d_file_jump_at_gaps():
    [record] = ecgingest.read(corpus_dir() / "edf" / "edfPlusD.edf")
    times = record.times()
    per_record = len(record.signals[0]) // len(record.data_record_onsets)
    starts = times[::per_record]
    np.testing.assert_array_equal(starts, record.data_record_onsets)
    assert np.all(np.diff(times) > 0)


def test_times_run_on_across_a_wfdb_null_segment(tmp_path):
    # two 10-frame segments with a 10-frame gap (null segment "~") between them
    for name, first in (("seg1", 0), ("seg2", 100)):
        part = Record(name, "wfdb", "WFDB",
                      [Signal("II", 100.0, np.arange(first, first + 10, dtype=np.int16),
                              scale=1 / 200, units="mV")])
        part.to_wfdb(tmp_path, name=name)
    (tmp_path / "m.hea").write_text("m/3 1 100 30\nseg1 10\n~ 10\nseg2 10\n")
    [record] = ecgingest.read(tmp_path / "m.hea")
    times = record.times()
    assert len(times) == 30
    np.testing.assert_array_equal(times, np.arange(30) / 100.0)
    gap = record.signals[0].invalid
    assert gap is not None and gap[10:20].all() and not gap[:10].any()
    assert record.signals[0].digital[20] == 100  # after the gap, at 0.2 s
    assert times[20] == pytest.approx(0.2)


def test_record_times_of_mixed_rates_needs_a_channel():
    record = _record(_sig("A", 2.0, 4), _sig("B", 4.0, 8))
    with pytest.raises(MixedRatesError):
        record.times()
    np.testing.assert_array_equal(record.times("B"), np.arange(8) / 4.0)


def test_times_without_a_sample_rate_is_an_error():
    with pytest.raises(ValueError, match="sample rate"):
        Signal("x", 0.0, np.zeros(3, np.int16)).times()


# --------------------------------------------------------------------------- pandas


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError) as info:
        _record(_sig("I")).to_dataframe()
    assert info.value.extra == "pandas" and "ecgingest[pandas]" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_to_dataframe_has_one_column_per_signal_and_a_time_index():
    pd = pytest.importorskip("pandas")
    record = _record(_sig("I", rate=4.0, n=8), _sig("II", rate=4.0, n=8, scale=2.0),
                     data_record_onsets=np.array([0.0, 10.0]))
    frame = record.to_dataframe()
    assert list(frame.columns) == ["I", "II"]
    np.testing.assert_array_equal(frame["II"].to_numpy(), record.signals[1].physical)
    assert isinstance(frame.index, pd.TimedeltaIndex) and frame.index.name == "time"
    np.testing.assert_allclose(frame.index.total_seconds(), record.times())
    assert frame.index[4] == pd.Timedelta(seconds=10)


def test_to_dataframe_of_a_real_record_matches_to_numpy():
    pytest.importorskip("pandas")
    [record] = ecgingest.read(FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea")
    frame = record.to_dataframe(units="uV")
    np.testing.assert_array_equal(frame.to_numpy().T, record.to_numpy(units="uV"))


# --------------------------------------------------------------------------- xarray


def test_to_xarray_without_xarray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(MissingDependencyError) as info:
        _record(_sig("I")).to_xarray()
    assert info.value.extra == "xarray" and "ecgingest[xarray]" in str(info.value)


def test_to_xarray_labels_channels_and_times():
    pytest.importorskip("xarray")
    record = _record(_sig("i", rate=4.0, n=8), _sig("V1", rate=4.0, n=8, scale=2.0),
                     data_record_onsets=np.array([0.0, 10.0]),
                     start_time=dt.datetime(2020, 1, 2, 3, 4, 5))
    array = record.to_xarray(units="uV")
    assert array.dims == ("channel", "time") and array.name == record.name
    assert list(array.channel.values) == ["i", "V1"]
    assert list(array.standard_label.values) == ["I", "V1"]
    assert list(array.units.values) == ["uV", "uV"]
    np.testing.assert_array_equal(array.values, record.to_numpy(units="uV"))
    np.testing.assert_allclose(array.time.values, record.times())
    assert array.attrs["start_time"] == "2020-01-02T03:04:05" and array.attrs["physical"]
    np.testing.assert_array_equal(array.sel(channel="V1").values, record.signals[1].physical_in("uV"))
    digital = record.to_xarray(physical=False)
    assert digital.dtype == record.signals[0].digital.dtype and not digital.attrs["physical"]


def test_to_xarray_refuses_mixed_rates_like_to_numpy():
    pytest.importorskip("xarray")
    with pytest.raises(MixedRatesError):
        _record(_sig("I", rate=4.0, n=8), _sig("II", rate=2.0, n=4)).to_xarray()


# --------------------------------------------------------------------------- MNE


def test_to_mne_without_mne_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mne", None)
    with pytest.raises(MissingDependencyError) as info:
        _record(_sig("I")).to_mne()
    assert info.value.extra == "mne" and "ecgingest[mne]" in str(info.value)


def test_to_mne_gives_volts_annotations_and_the_start_as_orig_time():
    mne = pytest.importorskip("mne")
    start = dt.datetime(2021, 5, 6, 7, 8, 9)
    record = _record(_sig("I", units="mV"), _sig("T", units="degC"), start_time=start,
                     annotations=[Annotation(0.004, None, "beat"),
                                  Annotation(0.006, 0.002, "noise")])
    raw = record.to_mne()
    assert isinstance(raw, mne.io.RawArray)
    assert raw.info["sfreq"] == 500.0 and raw.ch_names == ["I", "T"]
    np.testing.assert_allclose(raw.get_data()[0], record.signals[0].physical * 1e-3)
    np.testing.assert_allclose(raw.get_data()[1], record.signals[1].physical)
    assert raw.get_channel_types() == ["ecg", "misc"]
    assert raw.info["meas_date"] == start.replace(tzinfo=dt.timezone.utc)
    assert raw.annotations.orig_time == raw.info["meas_date"]
    assert list(raw.annotations.description) == ["beat", "noise"]


def test_to_mne_refuses_mixed_rates_before_needing_mne_data():
    pytest.importorskip("mne")
    with pytest.raises(MixedRatesError, match="does not resample"):
        _record(_sig("A", 100.0, 10), _sig("B", 200.0, 20)).to_mne()
