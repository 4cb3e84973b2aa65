"""Plots of records: a 12-lead ECG on paper, or one trace per signal.

A record with the twelve standard leads in volts is drawn the way an
electrocardiograph prints it: a 3 x 4 grid of 2.5 s lead segments plus a
rhythm strip of lead II, at 25 mm/s and 10 mm/mV on 1 mm / 5 mm paper, with
a 1 mV calibration pulse at the start of every row. Any other record is drawn
as stacked traces with a shared time axis. Annotations are marked where they
fall. matplotlib is optional: ``pip install 'ecgingest[plot]'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import MissingDependencyError
from .record import Record, Signal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_record", "PAPER_SPEED", "PAPER_GAIN", "TWELVE_LEADS", "standard_lead"]

PAPER_SPEED = 25.0
"""Paper speed of the 12-lead layout, mm per second."""
PAPER_GAIN = 10.0
"""Gain of the 12-lead layout, mm per mV."""
TWELVE_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_GRID = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
"""The standard 3 x 4 arrangement: rows of the printout, columns in time order."""

_ROW_PITCH = 35.0  # mm between the baselines of two rows of the printout
_PULSE = 10.0  # mm left of the traces for the calibration pulse
_MARGIN = 5.0  # mm of paper right of the traces and above / below the rows
_PAPER = "#fff7f5"
_MINOR = "#f6c9c4"
_MAJOR = "#e58f86"
_TRACE = "#111111"
_MARK = "#1f4fbf"

_TO_MILLIVOLT = {"nv": 1e-6, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "mv": 1.0, "v": 1e3}
_LEAD_NAMES = {name.upper(): name for name in TWELVE_LEADS}
_LEAD_PREFIXES = ("MDC_ECG_LEAD_", "LEAD_", "LEAD-", "LEAD ", "ECG_", "ECG ")

Layout = Literal["auto", "12-lead", "stacked"]


def _matplotlib() -> Any:
    """The matplotlib figure module, or a typed error naming the extra that installs it."""
    try:
        from matplotlib import figure
    except ImportError as exc:
        raise MissingDependencyError(
            "plotting needs matplotlib: pip install 'ecgingest[plot]'", extra="plot") from exc
    return figure


def standard_lead(signal: Signal) -> str | None:
    """The 12-lead name of a signal (``avr`` -> ``aVR``, ``MDC_ECG_LEAD_II`` -> ``II``),
    or ``None`` when it is not one of the twelve standard leads."""
    known = getattr(signal, "standard_label", None)
    if isinstance(known, str):
        return known if known in TWELVE_LEADS else None
    text = signal.label.strip().upper()
    for prefix in _LEAD_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
            break
    return _LEAD_NAMES.get(text)


def _millivolt_factor(units: str) -> float | None:
    return _TO_MILLIVOLT.get(units.strip().lower())


@dataclass(frozen=True)
class _Trace:
    """Samples of one signal inside a time window: seconds from the record start, values."""

    times: np.ndarray
    values: np.ndarray


def _window(signal: Signal, start: float, stop: float) -> _Trace:
    """The physical samples of ``signal`` in ``[start, stop)`` s, computed for the window
    only (a day-long Holter lead is not converted whole to draw ten seconds of it)."""
    rate = signal.sample_rate
    if not rate > 0 or len(signal) == 0:
        return _Trace(np.empty(0), np.empty(0))
    first = min(len(signal), max(0, math.ceil(start * rate)))
    last = min(len(signal), max(first, math.ceil(stop * rate)))
    cached = signal.__dict__.get("physical", signal.supplied_physical)
    if cached is not None:
        values = np.asarray(cached[first:last], dtype=np.float64)
    else:
        digital = signal.digital[first:last]
        values = digital.astype(np.float64) * float(signal.scale) + float(signal.offset)
        invalid = np.zeros(len(values), dtype=bool)
        if signal.invalid_value is not None:
            invalid |= digital == signal.invalid_value
        if signal.invalid_mask is not None:
            invalid |= np.asarray(signal.invalid_mask[first:last], dtype=bool)
        values[invalid] = np.nan
    return _Trace(np.arange(first, last, dtype=np.float64) / rate, values)


def _twelve_leads(record: Record) -> tuple[dict[str, Signal], list[str]]:
    """The first signal of each standard lead in volts, and what keeps the record
    from the paper layout (missing leads, leads not in volts)."""
    leads: dict[str, Signal] = {}
    for signal in record.signals:
        name = standard_lead(signal)
        if name is not None and name not in leads:
            leads[name] = signal
    problems = []
    missing = [name for name in TWELVE_LEADS if name not in leads]
    if missing:
        problems.append(f"no lead {', '.join(missing)}")
    not_volts = [f"{name} ({leads[name].units or 'no units'})" for name in TWELVE_LEADS
                 if name in leads and _millivolt_factor(leads[name].units) is None]
    if not_volts:
        problems.append(f"leads not in volts: {', '.join(not_volts)}")
    return leads, problems


def plot_record(record: Record, *, layout: Layout = "auto", start: float = 0.0,
                seconds: float = 10.0, annotations: bool = True,
                title: str | None = None, rhythm_lead: str = "II") -> Figure:
    """Draw a record and return the matplotlib :class:`~matplotlib.figure.Figure`.

    :param record: the record to draw.
    :param layout: ``"12-lead"`` for the paper printout (3 x 4 lead segments of
        ``seconds / 4`` each plus a ``seconds`` long rhythm strip, 25 mm/s,
        10 mm/mV), ``"stacked"`` for one trace per signal, ``"auto"`` (default)
        for the printout when the record has the twelve standard leads in volts.
    :param start: seconds from the record start where the window begins.
    :param seconds: length of the window in seconds (a standard printout is 10).
    :param annotations: mark the record's annotations that fall in the window.
    :param title: text above the plot (default: record name, variant, start time).
    :param rhythm_lead: the lead of the rhythm strip (12-lead layout).
    :returns: a figure not attached to pyplot: ``figure.savefig("ecg.png")``
        writes it, a notebook shows it.
    :raises MissingDependencyError: matplotlib is not installed (extra ``plot``).
    :raises ValueError: the record has no signals, the window lies outside the
        record, or ``layout="12-lead"`` for a record without the twelve leads in volts.
    """
    figure_module = _matplotlib()
    if layout not in ("auto", "12-lead", "stacked"):
        raise ValueError(f"layout must be 'auto', '12-lead' or 'stacked', not {layout!r}")
    if not record.signals:
        raise ValueError(f"record {record.name!r} has no signals to plot")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    duration = max(s.duration for s in record.signals)
    if not (math.isfinite(start) and 0 <= start < max(duration, 1e-9)):
        raise ValueError(f"start must lie within the record (0 to {duration:g} s), "
                         f"got {start!r}")
    if title is None:
        title = _default_title(record)
    if layout != "stacked":
        leads, problems = _twelve_leads(record)
        if not problems:
            if rhythm_lead not in leads:
                raise ValueError(f"rhythm_lead must be one of {', '.join(TWELVE_LEADS)}, "
                                 f"got {rhythm_lead!r}")
            return _paper(figure_module, record, leads, start, seconds, annotations, title,
                          rhythm_lead)
        if layout == "12-lead":
            raise ValueError(f"record {record.name!r} cannot be drawn as a 12-lead ECG: "
                             f"{'; '.join(problems)}; use the stacked layout")
    return _stacked(figure_module, record, start, seconds, annotations, title)


def _default_title(record: Record) -> str:
    parts = [record.name, record.format_detail]
    if record.start_time is not None:
        parts.append(record.start_time.isoformat())
    return "  ·  ".join(p for p in parts if p)


def _in_window(record: Record, start: float, stop: float) -> list[tuple[float, str]]:
    return [(a.onset, a.text.strip()) for a in record.annotations if start <= a.onset < stop]


# --------------------------------------------------------------------------- ECG paper


def _paper(figure_module: Any, record: Record, leads: dict[str, Signal], start: float,
           seconds: float, annotations: bool, title: str, rhythm_lead: str) -> Figure:
    from matplotlib.collections import LineCollection

    width = _PULSE + seconds * PAPER_SPEED + _MARGIN
    rows = len(_GRID) + 1
    height = rows * _ROW_PITCH + 2 * _MARGIN
    width, height = math.ceil(width / 5) * 5, math.ceil(height / 5) * 5  # whole big squares
    figure = figure_module.Figure(figsize=(width / 25.4, (height + 8) / 25.4))
    top = height / (height + 8)  # 8 mm above the paper for the title
    ax = figure.add_axes((0.0, 0.0, 1.0, top))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_facecolor(_PAPER)
    figure.set_facecolor("white")
    ax.add_patch(_rectangle(width, height))
    for step, colour, weight in ((1.0, _MINOR, 0.3), (5.0, _MAJOR, 0.6)):
        xs = np.arange(0, width + 1e-9, step)
        ys = np.arange(0, height + 1e-9, step)
        segments = [((x, 0), (x, height)) for x in xs] + [((0, y), (width, y)) for y in ys]
        ax.add_collection(LineCollection(segments, colors=colour, linewidths=weight, zorder=1))
    figure.text(0.01, 1 - 4 / (height + 8), title, ha="left", va="center", fontsize=9)
    figure.text(0.99, 1 - 4 / (height + 8),
                f"{PAPER_SPEED:g} mm/s   {PAPER_GAIN:g} mm/mV", ha="right", va="center",
                fontsize=8)

    column = seconds / 4
    baselines = [height - _MARGIN - (row + 0.5) * _ROW_PITCH for row in range(rows)]
    for row, names in enumerate(_GRID):
        base = baselines[row]
        _calibration_pulse(ax, base)
        for col, name in enumerate(names):
            left = start + col * column
            _draw_paper_trace(ax, leads[name], left, left + column, start, base,
                              f"trace-{name}")
            x = _PULSE + col * column * PAPER_SPEED
            ax.text(x + 1.5, base + 0.3 * _ROW_PITCH, name, fontsize=9, fontweight="bold",
                    ha="left", va="bottom", zorder=4, gid=f"lead-label-{name}")
            if col:  # the lead change mark of a printout
                ax.plot([x, x], [base - 3, base + 3], color=_TRACE, linewidth=0.8, zorder=3)
    base = baselines[-1]
    _calibration_pulse(ax, base)
    rhythm = _draw_paper_trace(ax, leads[rhythm_lead], start, start + seconds, start, base,
                               f"trace-rhythm-{rhythm_lead}")
    ax.text(_PULSE + 1.5, base + 0.3 * _ROW_PITCH, rhythm_lead, fontsize=9, fontweight="bold",
            ha="left", va="bottom", zorder=4, gid=f"lead-label-rhythm-{rhythm_lead}")
    if annotations:
        marks = _in_window(record, start, start + seconds)
        for onset, text in marks:
            x = _PULSE + (onset - start) * PAPER_SPEED
            y = _value_at(rhythm, x, base)
            ax.plot([x], [y + 4], marker="v", markersize=4, color=_MARK, zorder=5,
                    gid="annotation")
            if text:
                ax.text(x, y + 6, text, fontsize=6, color=_MARK, ha="center", va="bottom",
                        zorder=5)
    return figure


def _rectangle(width: float, height: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0), width, height, facecolor=_PAPER, edgecolor="none", zorder=0)


def _calibration_pulse(ax: Any, base: float) -> None:
    """1 mV for 0.2 s: 10 mm high, 5 mm wide, at the left of the row."""
    x0 = 2.0
    ax.plot([x0, x0 + 1, x0 + 1, x0 + 6, x0 + 6, x0 + 7],
            [base, base, base + PAPER_GAIN, base + PAPER_GAIN, base, base],
            color=_TRACE, linewidth=0.8, zorder=3)


def _draw_paper_trace(ax: Any, signal: Signal, t0: float, t1: float, start: float,
                      base: float, gid: str) -> _Trace:
    """Draw ``[t0, t1)`` of one lead on the row at ``base``; the trace in paper mm."""
    trace = _window(signal, t0, t1)
    factor = _millivolt_factor(signal.units)
    assert factor is not None  # the 12-lead layout is only chosen for leads in volts
    x = _PULSE + (trace.times - start) * PAPER_SPEED
    y = base + trace.values * factor * PAPER_GAIN
    ax.plot(x, y, color=_TRACE, linewidth=0.7, zorder=3, gid=gid)
    return _Trace(x, y)  # in paper mm


def _value_at(trace: _Trace, x: float, default: float) -> float:
    """The trace's y (paper mm) at paper position ``x``, or ``default`` where it has none."""
    if not len(trace.times):
        return default
    index = int(np.clip(np.searchsorted(trace.times, x), 0, len(trace.times) - 1))
    y = float(trace.values[index])
    return y if math.isfinite(y) else default


# --------------------------------------------------------------------------- stacked traces


def _stacked(figure_module: Any, record: Record, start: float, seconds: float,
             annotations: bool, title: str) -> Figure:
    count = len(record.signals)
    figure = figure_module.Figure(figsize=(11.0, 0.9 + 1.1 * count), layout="constrained")
    axes: Sequence[Any] = figure.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    duration = max(s.duration for s in record.signals)
    stop = min(start + seconds, duration)  # no empty stretch after the record's end
    marks = _in_window(record, start, stop) if annotations else []
    for ax, signal in zip(axes, record.signals):
        trace = _window(signal, start, stop)
        ax.plot(trace.times, trace.values, color=_TRACE, linewidth=0.7,
                gid=f"trace-{signal.label}")
        ax.set_ylabel(f"{signal.label}\n({signal.units})" if signal.units else signal.label,
                      rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, color="#dddddd", linewidth=0.5)
        for onset, _ in marks:
            ax.axvline(onset, color=_MARK, linewidth=0.5, alpha=0.5)
    axes[-1].set_xlim(start, stop)
    axes[-1].set_xlabel("time from record start (s)", fontsize=8)
    if marks:
        first = axes[0]
        transform = first.get_xaxis_transform()  # x in seconds, y in axes fraction
        onsets = [onset for onset, _ in marks]
        first.plot(onsets, [1.0] * len(onsets), linestyle="none", marker="v", markersize=5,
                   color=_MARK, transform=transform, clip_on=False, gid="annotation")
        for onset, text in marks:
            if text:
                first.text(onset, 1.04, text, transform=transform, fontsize=7, color=_MARK,
                           ha="center", va="bottom", clip_on=False)
    figure.suptitle(title, fontsize=9)
    return figure
