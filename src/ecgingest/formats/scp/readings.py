"""SCP-ECG measurements and statements in the shared readings model (``ecgingest.readings``).

Section 7 stores the fiducial points of each reference beat type; the shared
intervals come from beat type 0 (the dominant beat): PR = QRS onset - P onset,
QRS = QRS offset - QRS onset, QT = T offset - QRS onset, P = P offset - P onset.
"""

from __future__ import annotations

from typing import Any

from ...readings import global_measurements

__all__ = ["shared_measurements"]


def _span(beat: dict[str, Any], start: str, stop: str) -> int | None:
    a, b = beat.get(start), beat.get(stop)
    return None if a is None or b is None else b - a


def shared_measurements(section7: dict[str, Any]) -> dict[str, Any]:
    """The shared keys from section 7, with section 7 as read under ``"vendor"``."""
    beat = section7["beats"][0] if section7.get("beats") else {}
    values = {
        "ventricular_rate_bpm": section7.get("ventricular_rate_bpm"),
        "atrial_rate_bpm": section7.get("atrial_rate_bpm"),
        "rr_interval_ms": section7.get("average_rr_ms"),
        "pp_interval_ms": section7.get("average_pp_ms"),
        "p_duration_ms": _span(beat, "p_onset_ms", "p_offset_ms"),
        "pr_interval_ms": _span(beat, "p_onset_ms", "qrs_onset_ms"),
        "qrs_duration_ms": _span(beat, "qrs_onset_ms", "qrs_offset_ms"),
        "qt_interval_ms": _span(beat, "qrs_onset_ms", "t_offset_ms"),
        "qtc_ms": section7.get("qtc_ms"),
        "p_axis_deg": beat.get("p_axis_deg"),
        "qrs_axis_deg": beat.get("qrs_axis_deg"),
        "t_axis_deg": beat.get("t_axis_deg"),
    }
    return global_measurements(values, section7)
