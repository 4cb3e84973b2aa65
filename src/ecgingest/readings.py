"""The extra readings every format reports the same way: global measurements and
interpretation statements.

A resting-ECG cart measures intervals and axes and prints statements; SCP-ECG,
GE MUSE, Philips, HL7 aECG and DICOM each store them differently. A record gives
them under two keys of :attr:`Record.extras` (also attributes of the record):

- ``global_measurements``: ``{key: value}`` with keys from
  :data:`GLOBAL_MEASUREMENTS` (only those the file states), plus ``"vendor"``: the
  file's own names and values, unchanged.
- ``interpretation``: ``{"confirmation", "datetime", "statements", ...}``, statements
  in the file's order as ``{"sequence": n, "text": "..."}`` (text stripped), with
  format-specific fields beside them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["GLOBAL_MEASUREMENTS", "CONFIRMATIONS", "global_measurements", "interpretation"]

GLOBAL_MEASUREMENTS: dict[str, str] = {
    "ventricular_rate_bpm": "ventricular (heart) rate, beats per minute",
    "atrial_rate_bpm": "atrial rate, beats per minute",
    "rr_interval_ms": "mean RR interval, ms",
    "pp_interval_ms": "mean PP interval, ms",
    "p_duration_ms": "P wave duration, ms",
    "pr_interval_ms": "PR interval (P onset to QRS onset), ms",
    "qrs_duration_ms": "QRS duration, ms",
    "qt_interval_ms": "QT interval (QRS onset to T offset), ms",
    "qtc_ms": "QT corrected for heart rate (the device's formula), ms",
    "p_axis_deg": "frontal P axis, degrees",
    "qrs_axis_deg": "frontal QRS axis, degrees",
    "t_axis_deg": "frontal T axis, degrees",
}
"""The shared measurement keys and what each means, in the order records list them."""

CONFIRMATIONS = ("original", "confirmed", None)
"""``interpretation["confirmation"]``: the device's statements, statements a
physician confirmed, or unknown (the file does not say)."""


def global_measurements(values: Mapping[str, Any], vendor: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
    """The shared form: known keys in :data:`GLOBAL_MEASUREMENTS` order, ``None`` values
    left out, then ``"vendor"`` (when given)."""
    unknown = set(values) - set(GLOBAL_MEASUREMENTS)
    if unknown:
        raise KeyError(f"not shared measurement keys: {sorted(unknown)}")
    out = {key: values[key] for key in GLOBAL_MEASUREMENTS if values.get(key) is not None}
    if vendor:
        out["vendor"] = dict(vendor)
    return out


def interpretation(statements: Iterable[str], *, confirmation: str | None,
                   datetime: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
    """The shared form of a list of statement texts (stripped; empty ones dropped)."""
    if confirmation not in CONFIRMATIONS:
        raise ValueError(f"confirmation must be one of {CONFIRMATIONS}, not {confirmation!r}")
    texts = [text.strip() for text in statements]
    listed = [{"sequence": n, "text": text}
              for n, text in enumerate((t for t in texts if t), start=1)]
    return {"confirmation": confirmation, "datetime": datetime, "statements": listed, **fields}
