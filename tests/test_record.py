"""Record model: read-only arrays, lazy physical values, extras as attributes."""

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import corpus_dir, requires_corpus
from ecgingest import Metadata, Record, Signal
from ecgingest.formats.wfdb.header import WfdbHeader


def test_digital_is_read_only():
    sig = Signal("I", 500.0, np.arange(5, dtype=np.int16))
    with pytest.raises(ValueError):
        sig.digital[0] = 1


def test_physical_is_digital_times_scale_plus_offset_and_read_only():
    sig = Signal("I", 500.0, np.array([0, 1, -2], dtype=np.int16), scale=0.5, offset=1.0)
    np.testing.assert_array_equal(sig.physical, [1.0, 1.5, 0.0])
    assert sig.physical.dtype == np.float64
    assert sig.physical is sig.physical  # computed once
    with pytest.raises(ValueError):
        sig.physical[0] = 0


def test_invalid_code_and_mask_become_nan():
    digital = np.array([5, -32768, 7, 8], dtype=np.int16)
    mask = np.array([False, False, False, True])
    sig = Signal("I", 1.0, digital, invalid_value=-32768, invalid_mask=mask)
    assert np.isnan(sig.physical).tolist() == [False, True, False, True]
    assert sig.invalid.tolist() == [False, True, False, True]


def test_invalid_code_outside_dtype_range_is_ignored():
    sig = Signal("I", 1.0, np.array([-128, 0], dtype=np.int8), invalid_value=-32768)
    assert not np.isnan(sig.physical).any()


def test_supplied_physical_wins():
    supplied = np.array([1.25, np.nan])
    sig = Signal("I", 1.0, np.array([1, 2], dtype=np.int16), supplied_physical=supplied)
    np.testing.assert_array_equal(sig.physical, supplied)


@given(hnp.arrays(st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
                  st.integers(0, 300)),
       st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False))
def test_physical_kernel_matches_numpy(digital, scale, offset):
    sig = Signal("x", 1.0, digital.copy(), scale=scale, offset=offset)
    expected = digital.astype(np.float64) * scale + offset
    np.testing.assert_allclose(sig.physical, expected, rtol=1e-12, atol=1e-9)


def test_record_extras_are_attributes():
    rec = Record("r", "wfdb", "WFDB", [], extras={"comments": ["hello"]})
    assert rec.comments == ["hello"]
    with pytest.raises(AttributeError):
        _ = rec.not_there


def test_record_defaults_are_fresh_per_record_and_fields_stay_frozen():
    a, b = Record("a", "wfdb", "WFDB", []), Record("b", "wfdb", "WFDB", [])
    assert a.metadata == Metadata() and a.metadata is not b.metadata
    assert a.warnings == [] and a.warnings is not b.warnings
    assert a.annotations is not b.annotations and a.extras is not b.extras
    c = a.replace(sources=("x.hea",))
    assert c.sources == ("x.hea",) and c.metadata is a.metadata and a.sources == ()
    with pytest.raises(AttributeError):
        a.name = "c"
    with pytest.raises(AttributeError):
        Signal("I", 1.0, np.zeros(2, np.int16)).label = "II"


def test_summary_is_json_ready():
    import json

    sig = Signal("I", 250.0, np.zeros(10, dtype=np.int16), units="mV")
    rec = Record("r", "edf", "EDF+C", [sig], start_time=dt.datetime(2020, 1, 2, 3, 4, 5),
                 metadata=Metadata(patient_birth_date=dt.date(1970, 1, 31)))
    text = json.dumps(rec.summary())
    assert '"1970-01-31"' in text and '"samples": 10' in text


def test_large_outputs_start_on_a_huge_page_boundary_small_ones_are_plain():
    from ecgingest._memory import aligned_empty

    big = aligned_empty((8 << 20) // 8 + 3, np.float64)
    assert big.ctypes.data % (2 << 20) == 0
    assert big.shape == ((8 << 20) // 8 + 3,) and big.dtype == np.float64
    assert big.flags.c_contiguous and big.flags.writeable
    big[:] = 1.5  # the whole requested length is usable
    assert big.sum() == 1.5 * len(big)
    small = aligned_empty(10, np.int16)
    assert small.shape == (10,) and small.dtype == np.int16 and small.base is None


def test_physical_of_a_large_signal_matches_numpy_with_invalid_codes():
    digital = np.arange(-(1 << 21), 1 << 21, dtype=np.int32)  # 16 MiB of float64 output
    sig = Signal("I", 1.0, digital, scale=0.25, offset=-3.0, invalid_value=-(1 << 21))
    expected = digital * 0.25 - 3.0
    expected[0] = np.nan
    np.testing.assert_array_equal(sig.physical, expected)


@given(st.booleans(), st.booleans(), st.sampled_from([None, -32768]))
def test_new_signal_equals_the_constructor(with_mask, with_physical, code):
    """The decoders' fast constructor builds the same Signal as ``Signal(...)``."""
    from ecgingest.record import new_signal

    def arrays():
        digital = np.array([1, -32768, 3], dtype=np.int16)
        mask = np.array([False, True, False]) if with_mask else None
        physical = np.array([0.5, np.nan, 1.5]) if with_physical else None
        return digital, mask, physical

    built = []
    for make in (Signal, new_signal):
        digital, mask, physical = arrays()
        built.append(make("II", 250, digital, 0.25, -1.0, "mV", code, mask, physical))
    slow, fast = built
    assert type(fast) is Signal
    assert vars(fast).keys() == vars(slow).keys()
    for name in ("label", "sample_rate", "scale", "offset", "units", "invalid_value"):
        assert getattr(fast, name) == getattr(slow, name)
        assert type(getattr(fast, name)) is type(getattr(slow, name))
    assert not fast.digital.flags.writeable
    assert fast.invalid_mask is None or not fast.invalid_mask.flags.writeable
    np.testing.assert_array_equal(fast.physical, slow.physical)
    assert repr(fast) == repr(slow)


@given(st.integers(1, 5), st.integers(0, 6), st.booleans(), st.booleans(), st.booleans())
def test_new_signals_builds_what_the_constructor_builds_per_signal(
        n, width, two_d, cut, with_firsts):
    """The batch constructor gives each signal what ``Signal(...)`` would: shared
    scalars or per-signal values, rows of one block cut to their counts, masks,
    codes and first samples (0 left to the class default)."""
    from ecgingest.record import new_signals

    block = np.arange(n * width, dtype=np.int16).reshape(n, width)
    counts = [max(width - i, 0) for i in range(n)] if cut else None
    labels = [f"L{i}" for i in range(n)]
    rates = [250.0 * (i + 1) for i in range(n)]
    codes = [None if i % 2 else -32768 for i in range(n)]
    masks = [np.zeros(counts[i] if cut else width, dtype=bool) if i % 2 else None
             for i in range(n)]
    firsts = [i * 3 for i in range(n)] if with_firsts else None
    digital = block if two_d else [row.copy() for row in block]
    fast = new_signals(labels, rates, digital, 0.5, [float(i) for i in range(n)], "uV",
                       counts, invalid_value=codes, invalid_mask=masks, first_sample=firsts)
    assert len(fast) == n
    for i, sig in enumerate(fast):
        row = block[i][:counts[i]] if cut else block[i]
        slow = Signal(labels[i], rates[i], row.copy(), 0.5, float(i), "uV", codes[i],
                      None if masks[i] is None else masks[i].copy(),
                      first_sample=firsts[i] if firsts else 0)
        assert type(sig) is Signal
        assert vars(sig).keys() == vars(slow).keys()
        for name in ("label", "sample_rate", "scale", "offset", "units", "invalid_value",
                     "first_sample", "derivation", "supplied_physical"):
            assert getattr(sig, name) == getattr(slow, name)
        np.testing.assert_array_equal(sig.digital, slow.digital)
        assert not sig.digital.flags.writeable
        assert sig.invalid_mask is None or not sig.invalid_mask.flags.writeable
        np.testing.assert_array_equal(sig.physical, slow.physical)
        if two_d:  # a view of the block, not a copy
            assert np.shares_memory(sig.digital, block) or sig.digital.size == 0


def test_new_signals_refuses_a_per_signal_list_of_the_wrong_length():
    from ecgingest.record import new_signals

    block = np.zeros((2, 3), dtype=np.int16)
    with pytest.raises(ValueError, match="scale"):
        new_signals(["I", "II"], 250.0, block, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="digital"):
        new_signals(["I", "II", "III"], 250.0, block)


def test_record_and_metadata_defaults_are_fresh_per_instance():
    """The hand-written constructors keep the dataclass defaults: no list, dict or
    Metadata shared between records, and replace() builds a complete copy."""
    a = Record(name="a", format="wfdb", format_detail="WFDB", signals=[])
    b = Record(name="b", format="wfdb", format_detail="WFDB", signals=[])
    for name in ("annotations", "warnings", "extras", "metadata"):
        assert getattr(a, name) is not getattr(b, name)
    assert a.metadata.file_values is not b.metadata.file_values
    assert a.metadata == Metadata() and a.start_time is None and a.sources == ()
    c = a.replace(sources=("x.hea",), warnings=["w"])
    assert (c.name, c.sources, c.warnings, a.warnings) == ("a", ("x.hea",), ["w"], [])
    meta = Metadata(patient_id="p", overridden=frozenset({"patient_id"}))
    assert meta.as_dict()["patient_id"] == "p" and meta.source_of("patient_id") == "override"
    with pytest.raises(TypeError):
        Metadata(patient_nickname="x")
    with pytest.raises(AttributeError):
        meta.patient_id = "q"  # frozen still


def test_threads_compute_physical_values_of_different_signals_at_the_same_time(monkeypatch):
    # Python's own cached_property (before 3.12) computes under one lock shared by all
    # instances: the second thread could not enter the conversion while the first is in it
    import threading
    import types

    from ecgingest import record

    inside = threading.Barrier(2, timeout=10)
    convert = record._scale.to_physical

    def to_physical(*args):
        inside.wait()  # both threads must be converting at once to get past this
        return convert(*args)

    monkeypatch.setattr(record, "_scale", types.SimpleNamespace(
        to_physical=to_physical, set_fields=record._scale.set_fields))
    signals = [Signal("I", 1.0, np.arange(5, dtype=np.int16), 2.0) for _ in range(2)]
    results: list = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.physical)) for s in signals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not inside.broken
    assert len(results) == 2
    for physical in results:
        np.testing.assert_array_equal(physical, np.arange(5) * 2.0)
    assert signals[0].physical is signals[0].physical  # computed once, then kept


# --------------------------------------------------------------------------- display


def test_record_repr_is_a_few_lines_naming_format_shape_labels_and_start():
    import ecgingest
    from conftest import FIXTURES

    [record] = ecgingest.read(FIXTURES / "wfdb" / "multiseg_041s" / "041s.hea")
    text = repr(record)
    lines = text.splitlines()
    assert len(lines) == 3 and len(text) < 400
    assert lines[0] == ("<Record '041s' WFDB multi-segment (fixed layout): "
                        "7 signals × 500/125 Hz × 16 s")
    assert lines[1] == "  labels: III, I, V, ABP, PAP, PLETH, RESP"
    assert lines[2] == "  start 1994-10-26T08:26:04>"


def test_record_repr_stays_short_for_many_signals():
    labels = [f"EEG channel {i}" for i in range(200)]
    record = Record("big.edf", "edf", "EDF+C",
                    [Signal(label, 200.0, np.zeros(3000, np.int16)) for label in labels],
                    start_time=dt.datetime(2015, 11, 19, 19, 33, 9))
    text = repr(record)
    assert len(text.splitlines()) == 3 and len(text) < 300
    assert "(+" in text and "200 signals × 200 Hz × 15 s" in text


@given(st.lists(st.text(max_size=30), max_size=50), st.floats(0.1, 5000))
def test_repr_and_html_of_any_record_are_short_and_escaped(labels, rate):
    record = Record("<r&>", "edf", "EDF+C",
                    [Signal(label, rate, np.zeros(5, np.int16)) for label in labels])
    assert len(repr(record).splitlines()) <= 3
    page = record._repr_html_()
    assert "<r&>" not in page and "&lt;r&amp;&gt;" in page
    assert page.count("<tr>") == min(len(labels), 64) + 1 + (len(labels) > 64)


def test_signal_repr_is_one_line_without_the_samples():
    sig = Signal("MLII", 360.0, np.zeros(650000, np.int16), units="mV")
    assert repr(sig) == "<Signal 'MLII' 360 Hz, 650000 samples (30:05.556), mV>"


def test_summary_keeps_the_long_form():
    record = Record("r", "wfdb", "WFDB", [Signal("I", 1.0, np.zeros(2, np.int16))])
    assert record.summary()["signals"][0]["label"] == "I"


def test_ingest_result_repr_lists_records_skips_and_errors_briefly():
    import ecgingest
    import ecgingest.demo

    result = ecgingest.ingest(ecgingest.demo.archive())
    text = repr(result)
    lines = text.splitlines()
    assert lines[0].startswith(f"<IngestResult: {len(result.records)} records, "
                               f"{len(result.skipped)} skipped, 0 errors")
    assert len(lines) == 1 + len(result.records) + len(result.skipped)
    assert all(record.name in text for record in result.records)
    assert "<div>" in result._repr_html_()


@requires_corpus
@pytest.mark.parametrize("name", ["wfdb/mitdb_100/100.hea", "edf/nihonkohden_chtypes.edf"])
def test_repr_of_real_records_fits_a_few_lines(name):
    import ecgingest

    [record] = ecgingest.read(corpus_dir() / name)
    text = repr(record)
    assert len(text.splitlines()) <= 3 and len(text) < 300


# --------------------------------------------------------------------------- warnings


def _damaged_wfdb(tmp_path):
    from conftest import FIXTURES

    folder = FIXTURES / "wfdb" / "100_3chan"
    (tmp_path / "100_3chan.hea").write_bytes((folder / "100_3chan.hea").read_bytes())
    (tmp_path / "100_3chan.dat").write_bytes((folder / "100_3chan.dat").read_bytes()[:-301])
    return tmp_path / "100_3chan.hea"


@pytest.mark.parametrize("way", ["read", "ingest", "iter_records"])
def test_record_warnings_point_at_the_callers_line(tmp_path, way):
    import warnings

    import ecgingest
    from ecgingest.errors import EcgWarning

    header = _damaged_wfdb(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if way == "iter_records":
            list(ecgingest.iter_records(header))
        else:
            getattr(ecgingest, way)(header)
    issued = [w for w in caught if issubclass(w.category, EcgWarning)]
    assert len(issued) == 1
    assert issued[0].filename == __file__


def test_stream_warnings_point_at_the_callers_line():
    import warnings

    import ecgingest
    from ecgingest.errors import EcgWarning

    stream = ecgingest.Stream(frame_format="COMPRESSED_DELTA", sample_rate=500.0,
                              lead_codes=["MDC_ECG_LEAD_I"], processing_mode="PROCESS_ON_FINISH")
    x = np.zeros((1, 10), dtype=np.int64)
    stream.add_frame(0, ecgingest.encode_compressed_delta(x, sample_rate=500.0))
    stream.add_frame(30_000, ecgingest.encode_compressed_delta(x, sample_rate=500.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream.finish()
    issued = [w for w in caught if issubclass(w.category, EcgWarning)]
    assert issued and issued[0].filename == __file__


# ----------------------------------------------------------------- replace


def _record_with_onsets() -> Record:
    signals = [Signal("I", 10.0, np.arange(20, dtype=np.int16)),
               Signal("II", 10.0, np.arange(20, dtype=np.int16))]
    return Record("r", "edf", "EDF+D", signals, start_time=dt.time(1, 2, 3),
                  metadata=Metadata(patient_id="p"), warnings=["odd"],
                  data_record_onsets=np.array([0.0, 5.0]), extras={"k": 1})


@pytest.mark.parametrize("changes", [
    {"sources": ("a", "b/c")}, {"name": "x", "format": "f", "format_detail": "d"},
    {"start_time": None}, {"metadata": None}, {"warnings": None}, {"extras": None},
    {"annotations": None}, {"data_record_onsets": None}, {},
    {"signals": [Signal("V1", 10.0, np.arange(4, dtype=np.int16))]},
])
def test_replace_gives_what_the_constructor_gives_for_every_field(changes):
    record = _record_with_onsets()
    fields = {name: getattr(record, name) for name in (
        "name", "format", "format_detail", "signals", "start_time", "metadata",
        "annotations", "data_record_onsets", "sources", "warnings", "extras")}
    built = Record(**{**fields, **changes})
    replaced = record.replace(**changes)
    assert type(replaced) is Record and replaced is not record
    assert list(vars(replaced)) == list(vars(built))
    for name, value in vars(built).items():
        got = vars(replaced)[name]
        assert got is value or got == value, name
    assert [vars(s).get("_record_onsets") is not None for s in replaced.signals] == [
        vars(s).get("_record_onsets") is not None for s in built.signals]
    assert record.sources == () and record.name == "r"  # the original is unchanged


def test_replace_refuses_a_name_that_is_no_field():
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        _record_with_onsets().replace(nonsense=1)


@pytest.mark.parametrize("cls", [Metadata, Record, Signal, WfdbHeader])
def test_every_constructor_argument_lands_in_its_own_field(cls):
    """The constructors set all fields in one native call by position: each argument
    must come back from the attribute of its name."""
    import dataclasses
    import inspect

    names = list(inspect.signature(cls.__init__).parameters)[1:]
    assert names == [f.name for f in dataclasses.fields(cls)]
    given = {name: object() for name in names}
    if cls is Record:
        given["signals"] = []
    if cls is Signal:  # arrays (made read-only) and a first sample that is not the default
        given.update(digital=np.zeros(3, np.int16), invalid_mask=np.zeros(3, bool),
                     first_sample=7)
    built = cls(**given)
    assert {name: getattr(built, name) for name in names} == given


def test_signals_of_plain_values_are_left_out_of_garbage_collection():
    """A signal holding only strings, numbers, None and arrays cannot be in a reference
    cycle, so it is untracked however it is built; one holding a value the collector
    tracks stays tracked, and a cycle through it is still collected."""
    import gc
    import weakref

    from ecgingest.record import new_signal, new_signals

    digital = np.zeros(4, np.int16)
    built = [Signal("II", 500.0, digital, 2.0, 1.0, "mV", -32768, np.zeros(4, bool),
                    first_sample=3),
             new_signal("II", 500.0, digital.copy(), 2.0),
             *new_signals(["I", "II"], 500.0, np.zeros((2, 4), np.int16))]
    assert [gc.is_tracked(s) for s in built] == [False] * 4
    assert np.array_equal(built[0].physical, [1.0, 1.0, 1.0, 1.0])
    assert not gc.is_tracked(built[0])

    class Label(str):
        """A str subclass: its instances have a dict, so the collector tracks them."""

    held = Label("II")
    kept = Signal(held, 500.0, digital)
    assert gc.is_tracked(kept)
    held.signal = kept  # a cycle through the signal's label
    gone = weakref.ref(kept)
    del held, kept
    gc.collect()
    assert gone() is None
    assert gc.is_tracked(new_signals([Label("I")], 500.0, [np.zeros(4, np.int16)])[0])

    class Index(int):
        """An int subclass, tracked like the str subclass above."""

    assert gc.is_tracked(Signal("II", 500.0, digital, first_sample=Index(3)))


def test_new_annotations_gives_what_the_constructor_gives_left_out_of_collection():
    """The readers' native builder: equal (and equally hashed) annotations, untracked by
    the garbage collector unless a value is tracked, and one entry per onset checked."""
    import gc

    from ecgingest.record import Annotation, new_annotations

    onsets, texts, durations = [0.5, 1.25, 3.0], ["N", "V", "+ (AFIB"], [None, 0.5, None]
    built = new_annotations(onsets, texts, durations)
    assert built == [Annotation(o, d, t) for o, t, d in zip(onsets, texts, durations)]
    assert [hash(a) for a in built] == [hash(Annotation(o, d, t))
                                        for o, t, d in zip(onsets, texts, durations)]
    assert not any(gc.is_tracked(a) for a in built)
    assert new_annotations(onsets, "NVA") == [Annotation(o, None, t)
                                              for o, t in zip(onsets, "NVA")]
    assert new_annotations([], []) == []

    class Text(str):
        """A str subclass, which the collector tracks."""

    [kept] = new_annotations([1.0], [Text("N")])
    assert gc.is_tracked(kept) and kept == Annotation(1.0, None, "N")
    with pytest.raises(ValueError, match="one entry per onset"):
        new_annotations(onsets, texts[:2])
    with pytest.raises(ValueError, match="durations needs one entry per onset"):
        new_annotations(onsets, texts, [None])
