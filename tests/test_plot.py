"""Plots of records: the 12-lead paper layout, stacked traces, annotations, the optional
matplotlib, rendered to PNG (size, content, the lead labels where they are drawn)."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
from ecgingest.demo import path
from ecgingest.errors import MissingDependencyError
from ecgingest.record import Annotation, Record, Signal

DEMO = path()


def _record(name: str) -> Record:
    [record] = ecgingest.read(DEMO / name)
    return record


def test_without_matplotlib_a_typed_error_names_the_plot_extra(monkeypatch):
    from ecgingest.plot import plot_record

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError) as caught:
        plot_record(_record("100_3chan.hea"))
    assert caught.value.extra == "plot" and isinstance(caught.value, ImportError)
    assert "pip install 'ecgingest[plot]'" in str(caught.value)


@pytest.mark.parametrize(("label", "standard"), [
    ("I", "I"), ("ii", "II"), ("avr", "aVR"), ("aVL", "aVL"), ("AVF", "aVF"), ("v1", "V1"),
    ("V6", "V6"), ("MDC_ECG_LEAD_II", "II"), ("MDC_ECG_LEAD_AVR", "aVR"), ("Lead V3", "V3"),
    (" III ", "III"), ("ECG1", None), ("CM5", None), ("V7", None), ("MLII", None),
    ("Fp1", None), ("", None)])
def test_standard_lead_names(label, standard):
    from ecgingest.plot import standard_lead

    assert standard_lead(Signal(label, 500.0, np.zeros(3, np.int16))) == standard


# --------------------------------------------------------------------------- matplotlib needed

mpl = pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from ecgingest.plot import (  # noqa: E402
    PAPER_GAIN,
    PAPER_SPEED,
    TWELVE_LEADS,
    plot_record,
)


def _render(figure, dpi: float = 100.0) -> np.ndarray:
    """The figure as PNG bytes, decoded: height x width x RGBA floats in 0..1."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(dpi)
    FigureCanvasAgg(figure)  # text extents measured as the PNG draws them
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(data), format="png")


def _dark(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., :3].max(axis=-1) < 0.35


def _texts(figure) -> dict[str, object]:
    return {t.get_gid(): t for ax in figure.axes for t in ax.texts if t.get_gid()}


def _line(figure, gid: str):
    [line] = [ln for ax in figure.axes for ln in ax.lines if ln.get_gid() == gid]
    return line


def test_twelve_lead_record_renders_on_paper_with_every_lead_label():
    record = _record("ecgtoolkit_Example.scp")
    figure = plot_record(record)
    dpi = 100.0
    image = _render(figure, dpi)
    width_in, height_in = figure.get_size_inches()
    assert image.shape[:2] == (int(height_in * dpi), int(width_in * dpi))
    # paper: 10 s at 25 mm/s plus the calibration pulse and margin, 3 rows + rhythm strip
    assert math.isclose(width_in * 25.4, 265.0)
    assert image.shape[1] > 1000 and image.shape[0] > 600
    dark = _dark(image)
    assert 0.01 < dark.mean() < 0.2  # traces drawn, the paper not blotted out
    pinkish = (image[..., 0] > 0.8) & (image[..., 1] < 0.8)
    assert pinkish.mean() > 0.02  # the grid lines
    texts = _texts(figure)
    expected = {f"lead-label-{name}" for name in TWELVE_LEADS} | {"lead-label-rhythm-II"}
    assert set(texts) == expected
    renderer = figure.canvas.get_renderer()
    boxes = {gid: text.get_window_extent(renderer) for gid, text in texts.items()}
    for text in texts.values():
        text.set_visible(False)
    unlabelled = _render(figure, dpi)
    height = image.shape[0]
    for gid, box in boxes.items():
        assert texts[gid].get_text() == gid.rsplit("-", 1)[1]
        assert 0 <= box.x0 < box.x1 <= image.shape[1] and 0 <= box.y0 < box.y1 <= height
        rows = slice(int(height - box.y1), int(math.ceil(height - box.y0)))
        cols = slice(int(box.x0), int(math.ceil(box.x1)))
        assert dark[rows, cols].any()
        assert (image[rows, cols] != unlabelled[rows, cols]).any(), \
            f"{gid} is not drawn where it is placed"


def test_paper_scale_is_25_mm_per_second_and_10_mm_per_millivolt():
    record = _record("ecgtoolkit_Example.scp")
    figure = plot_record(record)
    lead = record.signal("V2")  # stored in uV
    assert lead.units == "uV"
    x, y = (np.asarray(v) for v in _line(figure, "trace-V2").get_data())
    rate = lead.sample_rate
    np.testing.assert_allclose(np.diff(x), PAPER_SPEED / rate)
    # V2 is the second lead of the third column: 5 s to 7.5 s
    first = int(5.0 * rate)
    expected = lead.physical[first:first + len(y)] / 1000 * PAPER_GAIN
    assert len(y) == int(2.5 * rate)
    np.testing.assert_allclose(y - y[0], expected - expected[0], atol=1e-9)
    rhythm = record.signal("II")
    x, y = (np.asarray(v) for v in _line(figure, "trace-rhythm-II").get_data())
    assert len(x) == int(10 * rate) and x[0] == 10.0  # after the calibration pulse
    expected = rhythm.physical[:len(y)] / 1000 * PAPER_GAIN
    np.testing.assert_allclose(y - y[0], expected - expected[0], atol=1e-9)


def test_every_row_starts_with_a_1_mv_calibration_pulse():
    figure = plot_record(_record("ecgtoolkit_Example.scp"))
    pulses = [ln for ln in figure.axes[0].lines
              if len(ln.get_ydata()) == 6 and np.ptp(ln.get_ydata()) == PAPER_GAIN]
    assert len(pulses) == 4
    assert all(np.ptp(ln.get_xdata()) == 7 for ln in pulses)


def _synthetic_twelve_lead(labels, units="mV", scale=0.001, annotations=()):
    rng = np.random.default_rng(5)
    signals = [Signal(label, 250.0, rng.integers(-800, 800, 2500).astype(np.int16),
                      scale=scale, units=units) for label in labels]
    return Record("synthetic", "edf", "EDF", signals, annotations=list(annotations))


def test_leads_named_by_codes_or_case_and_stored_in_volts_are_drawn_on_paper():
    labels = [f"MDC_ECG_LEAD_{name.upper()}" for name in TWELVE_LEADS]
    record = _synthetic_twelve_lead(labels, units="V", scale=1e-6)
    figure = plot_record(record)
    assert figure.axes[0].get_aspect() == 1.0  # the paper layout
    lead = record.signals[0]
    y = np.asarray(_line(figure, "trace-I").get_ydata())
    expected = lead.physical[:len(y)] * 1000 * PAPER_GAIN
    np.testing.assert_allclose(y - y[0], expected - expected[0], atol=1e-9)


def test_a_lead_without_voltage_units_falls_back_to_stacked_traces():
    record = _synthetic_twelve_lead(TWELVE_LEADS)
    odd = record.signals[3]
    record = record.replace(signals=[*record.signals[:3],
                                     Signal(odd.label, 250.0, odd.digital, units="counts"),
                                     *record.signals[4:]])
    figure = plot_record(record)
    assert len(figure.axes) == 12
    with pytest.raises(ValueError, match=r"leads not in volts: aVR \(counts\)"):
        plot_record(record, layout="12-lead")


def test_fewer_than_twelve_leads_are_stacked_with_labels_and_units():
    record = _record("100_3chan.hea")
    figure = plot_record(record)
    assert [ax.get_ylabel() for ax in figure.axes] == ["I\n(mV)", "II\n(mV)", "III\n(mV)"]
    assert figure.axes[-1].get_xlim() == (0.0, len(record.signals[0]) / 360.0)
    image = _render(figure, 60)
    assert image.shape[:2] == tuple(int(v * 60) for v in figure.get_size_inches()[::-1])
    assert _dark(image).mean() > 0.005
    with pytest.raises(ValueError, match="no lead aVR, aVL, aVF, V1"):
        plot_record(record, layout="12-lead")


def test_annotations_are_marked_where_they_fall():
    record = _record("test_subsecond.edf")
    inside = [a for a in record.annotations if a.onset < 10]
    assert inside
    figure = plot_record(record)
    marks = _line(figure, "annotation")
    np.testing.assert_allclose(marks.get_xdata(), [a.onset for a in inside])
    shown = {t.get_text() for t in figure.axes[0].texts}
    assert {a.text.strip() for a in inside if a.text.strip()} <= shown
    assert not [ln for ax in plot_record(record, annotations=False).axes for ln in ax.lines
                if ln.get_gid() == "annotation"]


def test_annotations_on_paper_sit_on_the_rhythm_strip():
    record = _synthetic_twelve_lead(TWELVE_LEADS, annotations=[
        Annotation(1.0, None, "N"), Annotation(4.5, 0.2, "V"), Annotation(12.0, None, "late")])
    figure = plot_record(record)
    marks = [ln for ln in figure.axes[0].lines if ln.get_gid() == "annotation"]
    assert [ln.get_xdata()[0] for ln in marks] == [10 + 1.0 * PAPER_SPEED,
                                                   10 + 4.5 * PAPER_SPEED]
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert "N" in texts and "V" in texts and "late" not in texts


def test_invalid_samples_leave_gaps():
    digital = np.array([0, 5, -32768, 7, 9], dtype=np.int16)
    record = Record("gappy", "wfdb", "WFDB", [Signal("x", 1.0, digital, units="mV",
                                                     invalid_value=-32768)])
    y = np.asarray(_line(plot_record(record), "trace-x").get_ydata())
    assert np.isnan(y[2]) and not np.isnan(np.delete(y, 2)).any()


def test_a_window_is_converted_without_converting_the_whole_signal():
    record = _record("test_subsecond.edf")
    plot_record(record, start=2.0, seconds=1.0)
    assert "physical" not in vars(record.signals[0])


@settings(max_examples=40, deadline=None)
@given(start=st.floats(0, 2.7), seconds=st.floats(0.01, 5.0))
def test_the_window_holds_exactly_the_samples_in_it(start, seconds):
    record = _record("100_3chan.hea")
    figure = plot_record(record, layout="stacked", start=start, seconds=seconds)
    lead = record.signals[1]
    x, y = (np.asarray(v) for v in _line(figure, "trace-II").get_data())
    first = math.ceil(start * 360.0)
    last = min(len(lead), math.ceil((start + seconds) * 360.0))
    np.testing.assert_array_equal(x, np.arange(first, last) / 360.0)
    np.testing.assert_array_equal(y, lead.physical[first:last])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layout": "grid"}, "layout must be"),
    ({"seconds": 0}, "seconds must be a positive"),
    ({"seconds": float("nan")}, "seconds must be a positive"),
    ({"start": -1}, "start must lie within"),
    ({"start": 3600}, "start must lie within"),
    ({"rhythm_lead": "V9"}, "rhythm_lead must be one of"),
])
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_record(_record("ecgtoolkit_Example.scp"), **kwargs)


def test_a_record_without_signals_has_nothing_to_plot():
    with pytest.raises(ValueError, match="no signals"):
        plot_record(Record("empty", "edf", "EDF+C", []))


def test_figures_stay_out_of_pyplot():
    plot_record(_record("100_3chan.hea"))
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_the_docs_images_are_what_their_script_renders(tmp_path):
    import importlib.util

    from conftest import FIXTURES

    docs_images = FIXTURES.parent / "docs" / "images"
    spec = importlib.util.spec_from_file_location("make_images", docs_images / "make_images.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written = script.render(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in docs_images.glob("*.png"))
    for fresh in written:
        committed = imread(docs_images / fresh.name)
        rendered = imread(fresh)
        assert committed.shape == rendered.shape
        # the same drawing, whatever small differences in font rasterising
        assert np.mean(_dark(committed) != _dark(rendered)) < 0.01
