"""Property tests: writer round trips, and mutated real files never crash the decoder.

Example counts come from the hypothesis profile chosen in conftest.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES
from ecgingest.errors import EcgIngestError
from ecgingest.formats import edf
from ecgingest.formats._base import DecodeContext
from ecgingest.record import RecordInfo
from test_edf_writer import WAnnotation, WFile, WSignal, write_edf

pytestmark = pytest.mark.filterwarnings("ignore::ecgingest.errors.EcgWarning")

_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)


@st.composite
def edf_files(draw) -> WFile:
    bdf = draw(st.booleans())
    plus = draw(st.sampled_from([None, "C", "D"]))
    n_records = draw(st.integers(0, 5))
    duration = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 10.0]))
    hi = 2**23 if bdf else 2**15
    n_signals = draw(st.integers(0 if plus else 1, 4))
    signals = []
    for i in range(n_signals):
        per = draw(st.integers(1, 12))
        dmin = draw(st.integers(-hi, hi - 2))
        dmax = draw(st.integers(dmin + 1, hi - 1))
        values = draw(st.lists(st.integers(-hi, hi - 1), min_size=per * n_records,
                               max_size=per * n_records))
        pmin = draw(st.sampled_from([-1000.0, -5.5, 0.0, 8711.0]))
        pmax = draw(st.sampled_from([1000.0, 3.25, -8711.0]).filter(lambda v: v != pmin))
        signals.append(WSignal(f"sig {i}", per, np.array(values, dtype=np.int64),
                               physical_min=pmin, physical_max=pmax, digital_min=dmin,
                               digital_max=dmax, units=draw(st.sampled_from(["uV", "mV", ""]))))
    onsets = None
    if plus == "D":
        gaps = draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 7.5]), min_size=n_records,
                             max_size=n_records))
        onsets, t = [], 0.0
        for gap in gaps:
            onsets.append(t)
            t += duration + gap
    annotations = []
    if plus and n_records:
        for _ in range(draw(st.integers(0, 4))):
            annotations.append(WAnnotation(
                onset=draw(st.integers(-64, 64 * 100)) / 64,
                duration=draw(st.one_of(st.none(), st.integers(0, 640).map(lambda v: v / 64))),
                texts=draw(st.lists(_TEXT, min_size=1, max_size=3)),
                record=draw(st.integers(0, n_records - 1))))
    subsecond = draw(st.sampled_from([0.0, 0.5, 0.25])) if plus else 0.0
    return WFile(signals, n_records, duration=duration, bdf=bdf, plus=plus,
                 annotations=annotations, record_onsets=onsets, subsecond=subsecond)


@given(edf_files())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_writer_files_round_trip_exactly(spec: WFile):
    record = edf.FORMAT.decode(write_edf(spec), DecodeContext("edf", name="w", path="w"))
    assert record.format == ("bdf" if spec.bdf else "edf")
    kind = "BDF" if spec.bdf else "EDF"
    assert record.format_detail == (f"{kind}+{spec.plus}" if spec.plus else kind)
    assert record.warnings == []
    assert record.labels == [s.label for s in spec.signals]
    for got, want in zip(record.signals, spec.signals):
        np.testing.assert_array_equal(got.digital, want.digital)
        assert got.sample_rate == want.per_record / spec.duration
        assert got.units == want.units
        scale = (want.physical_max - want.physical_min) / (want.digital_max - want.digital_min)
        expected = (want.digital - want.digital_min) * scale + want.physical_min
        np.testing.assert_allclose(got.physical, expected, rtol=1e-9,
                                   atol=1e-9 * max(abs(want.physical_min),
                                                   abs(want.physical_max)))
    expected_onsets = (spec.record_onsets if spec.record_onsets is not None
                       else [k * spec.duration for k in range(spec.n_records)])
    np.testing.assert_allclose(record.data_record_onsets, expected_onsets, rtol=0, atol=1e-6)
    expected_ann = [(a.onset, a.duration, t) for k in range(spec.n_records)
                    for a in spec.annotations if a.record == k for t in a.texts]
    got_ann = [(a.onset, a.duration, a.text) for a in record.annotations]
    assert [(d, t) for _, d, t in got_ann] == [(d, t) for _, d, t in expected_ann]
    np.testing.assert_allclose([o for o, _, _ in got_ann], [o for o, _, _ in expected_ann],
                               rtol=0, atol=1e-6)
    if spec.plus and spec.n_records:  # the first record's time-keeping TAL carries it
        assert record.subsecond_offset == pytest.approx(spec.subsecond)


def _bases() -> list[bytes]:
    small = WFile([WSignal("a", 3, np.arange(-6, 6)), WSignal("b", 1, np.arange(4))], 4,
                  annotations=[WAnnotation(0.5, 1.0, ["x", "y"], 1)])
    bdf_d = WFile([WSignal("c", 2, np.arange(6) * 1000, digital_min=-(2**23),
                           digital_max=2**23 - 1)], 3, bdf=True, plus="D",
                  record_onsets=[0.0, 2.0, 5.0])
    return [(FIXTURES / "edf" / "SC4001EC-Hypnogram.edf").read_bytes(), write_edf(small),
            write_edf(bdf_d)]


_BASES = _bases()
_NUMERIC_FIELDS = [(168, 8), (176, 8), (184, 8), (236, 8), (244, 8), (252, 4)]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_BASES)))
    ns = int(data[252:256])
    header = 256 * (ns + 1)
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["byte", "field", "signal-field", "data"]))
        if how == "byte":
            data[draw(st.integers(0, header - 1))] = draw(st.integers(0, 255))
        elif how == "field":
            start, width = draw(st.sampled_from(_NUMERIC_FIELDS))
            text = draw(st.text("0123456789+-.e :", max_size=width))
            data[start:start + width] = text.encode().ljust(width)
        elif how == "signal-field":
            base = 256 + draw(st.sampled_from([104, 112, 120, 128, 216])) * ns
            i = draw(st.integers(0, ns - 1))
            text = draw(st.text("0123456789-.", max_size=8))
            data[base + 8 * i: base + 8 * i + 8] = text.encode().ljust(8)
        elif len(data) > header:
            data[draw(st.integers(header, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@given(mutated())
def test_mutated_real_files_end_in_a_record_or_a_typed_error(data: bytes):
    try:
        record = edf.FORMAT.decode(data, DecodeContext("edf", name="m", path="m"))
    except EcgIngestError:
        return
    for signal in record.signals:
        assert signal.physical.shape == signal.digital.shape
    assert len(record.data_record_onsets) * 0 == 0


@given(mutated())
def test_mutated_uploads_through_the_pipeline_never_raise_untyped(data: bytes):
    try:
        ecgingest.read(data)
    except EcgIngestError:
        pass


@given(mutated())
def test_header_only_reader_never_raises_untyped(data: bytes):
    try:
        ecgingest.read_edf_header(data)
    except EcgIngestError:
        pass


_EDF_INTEGER = re.compile(rb" *[+-]?[0-9]+ *\Z")
_EDF_DECIMAL = re.compile(rb" *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? *\Z")


@given(st.binary(max_size=10).map(lambda b: bytes(b" +-.eE0123x"[c % 11] for c in b)),
       st.booleans())
def test_numeric_header_fields_follow_the_ascii_number_grammar(raw, integer):
    """Integer fields are ``[+-]digits``, decimal ones may add a fraction and an
    exponent; both may be padded with spaces, nothing else is a number."""
    expected = (_EDF_INTEGER if integer else _EDF_DECIMAL).match(raw) is not None
    assert edf._kernel.valid_number(raw, integer) == expected


def _outcome(run):
    try:
        return run()
    except EcgIngestError as exc:
        return type(exc), exc.field, exc.offset


@given(mutated())
def test_inspect_of_mutated_files_agrees_with_the_full_read(data: bytes):
    """The header-only path gives the decoded record's facts, or the same typed error."""
    def ctx():
        return DecodeContext("edf", name="m", path="m")

    full = _outcome(lambda: RecordInfo.of(edf.FORMAT.decode(data, ctx())))
    assert _outcome(lambda: edf.FORMAT.inspect(data, ctx())) == full


@given(edf_files())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_inspect_of_writer_files_gives_the_written_shape(spec: WFile):
    info = edf.FORMAT.inspect(write_edf(spec), DecodeContext("edf", name="w"))
    assert [s.samples for s in info.signals] == [s.per_record * spec.n_records
                                                 for s in spec.signals]
    assert info.annotations == sum(len(a.texts) for a in spec.annotations)
    assert {s.dtype for s in info.signals} <= {"int32" if spec.bdf else "int16"}
