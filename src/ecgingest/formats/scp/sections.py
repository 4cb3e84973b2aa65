"""The section parsers other than section 1 (metadata) and 2 (Huffman tables):
the lead table (3), QRS locations (4), the data headers of the reference beat
(5) and the rhythm (6), and the measurement and statement sections (7, 8,
10, 11)."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple, overload

import numpy as np

from ..._ext import scp as _k
from ...errors import HeaderError, TruncatedError, UnsupportedFeatureError
from .._base import DecodeContext
from .container import Section
from .fields import ByteData, Texts, need, need_failed, new_fields, span, u16

__all__ = ["LEAD_NAMES", "Leads", "Qrs", "DataHeader", "LeadMeasurements", "parse_section3",
           "parse_section4", "parse_data_header", "read_section7",
           "GlobalMeasurements", "parse_statements",
           "parse_section10", "lead_name"]

#: Lead names by SCP-ECG lead id (section 3), ids 0..184; larger ids are unspecified.
LEAD_NAMES: tuple[str, ...] = (
    "unspecified", "I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "V7",
    "V2R", "V3R", "V4R", "V5R", "V6R", "V7R", "X", "Y", "Z", "CC5",
    "CM5", "LA", "RA", "LL", "fI", "fE", "fC", "fA", "fM", "fF",
    "fH", "dI", "dII", "dV1", "dV2", "dV3", "dV4", "dV5", "dV6", "dV7",
    "dV2R", "dV3R", "dV4R", "dV5R", "dV6R", "dV7R", "dX", "dY", "dZ", "dCC5",
    "dCM5", "dLA", "dRA", "dLL", "dfI", "dfE", "dfC", "dfA", "dfM", "dfF",
    "dfH", "III", "aVR", "aVL", "aVF", "-aVR", "V8", "V9", "V8R", "V9R",
    "D", "A", "J", "Defib", "Extern", "A1", "A2", "A3", "A4", "dV8",
    "dV9", "dV8R", "dV9R", "dD", "dA", "dJ", "Chest", "V", "VR", "VL",
    "VF", "MCL", "MCL1", "MCL2", "MCL3", "MCL4", "MCL5", "MCL6", "CC", "CC1",
    "CC2", "CC3", "CC4", "CC6", "CC7", "CM", "CM1", "CM2", "CM3", "CM4",
    "CM6", "dIII", "daVR", "daVL", "daVF", "d-aVR", "dChest", "dV", "dVR", "dVL",
    "dVF", "CM7", "CH5", "CS5", "CB5", "CR5", "ML", "AB1", "AB2", "AB3",
    "AB4", "ES", "AS", "AI", "S", "dDefib", "dExtern", "dA1", "dA2", "dA3",
    "dA4", "dMCL1", "dMCL2", "dMCL3", "dMCL4", "dMCL5", "dMCL6", "RL", "CV5RL", "CV6LL",
    "CV6LU", "V10", "dMCL", "dCC", "dCC1", "dCC2", "dCC3", "dCC4", "dCC6", "dCC7",
    "dCM", "dCM1", "dCM2", "dCM3", "dCM4", "dCM6", "dCM7", "dCH5", "dCS5", "dCB5",
    "dCR5", "dML", "dAB1", "dAB2", "dAB3", "dAB4", "dES", "dAS", "dAI", "dS",
    "dRL", "dCV5RL", "dCV6LL", "dCV6LU", "dV10",
)
assert len(LEAD_NAMES) == 185
_NAMED_LEADS = len(LEAD_NAMES)


def lead_name(lead_id: int) -> str:
    return LEAD_NAMES[lead_id] if lead_id < _NAMED_LEADS else f"lead {lead_id}"


# ---------------------------------------------------------------- section 3

class Leads(NamedTuple):
    ids: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    refbeat_subtracted: bool
    simultaneous: bool
    flags: int
    labels: list[str]
    lengths: list[int]
    """Samples per lead, ``end - start + 1``."""


def parse_section3(sec: Section, scanned: tuple[Any, ...] | None,
                   ctx: DecodeContext) -> Leads:
    """Section 3 from the lead table ``scan_headers`` read."""
    assert scanned is not None
    short, nleads, flags, ids, starts, ends, lengths, reversed_at = scanned
    if short is not None:
        need_failed(ctx, short[1], short[2],
                    "section 3 lead count" if short[0] == 1 else "section 3 lead table")
    if reversed_at >= 0:
        k = reversed_at
        ctx.fail(HeaderError, f"lead {k + 1} ends at sample {ends[k]}, before its start "
                 f"sample {starts[k]}", offset=sec.body + 2 + 9 * k,
                 field="section 3 sample range")
    labels = [LEAD_NAMES[i] if i < _NAMED_LEADS else f"lead {i}" for i in ids]
    return new_fields(Leads, (ids, starts, ends, bool(flags & 1), bool(flags & 4), flags,
                              labels, lengths))


# ---------------------------------------------------------------- section 4

class Qrs(NamedTuple):
    beat_length_ms: int
    fiducial: int
    zones: np.ndarray
    """int64 ``(6, n)``: types, starts, fiducials and ends of the subtraction zones,
    then the starts and ends of the protected zones (not filled without them)."""
    protected: bool
    """The section holds the protected zones."""
    subtracted: np.ndarray
    """uint8, 1 for the zones the reference beat was subtracted in (type 0)."""

    @property
    def types(self) -> np.ndarray:
        return self.zones[0]

    @property
    def starts(self) -> np.ndarray:
        return self.zones[1]

    @property
    def fiducials(self) -> np.ndarray:
        return self.zones[2]

    @property
    def ends(self) -> np.ndarray:
        return self.zones[3]

    @property
    def protected_start(self) -> np.ndarray | None:
        """``None`` when the section stops before its protected zones."""
        return self.zones[4] if self.protected else None

    @property
    def protected_end(self) -> np.ndarray | None:
        return self.zones[5] if self.protected else None

    def summary(self) -> dict[str, Any]:
        """The ``qrs_complexes`` extra."""
        types, starts, fiducials, ends, protected_start, protected_end = self.zones.tolist()
        return {
            "reference_beat_length_ms": self.beat_length_ms, "fiducial": self.fiducial,
            "types": types, "starts": starts, "fiducials": fiducials, "ends": ends,
            "protected_zones": list(zip(protected_start, protected_end))
            if self.protected else None}


def parse_section4(scanned: tuple[Any, ...] | None, ctx: DecodeContext) -> Qrs:
    """Section 4 from the zones ``scan_headers`` read."""
    assert scanned is not None
    short, length_ms, fiducial, zones, protected, subtracted = scanned
    if short is not None:
        need_failed(ctx, short[1], short[2], "section 4 header" if short[0] == 1
                    else "section 4 QRS subtraction zones")
    return new_fields(Qrs, (length_ms, fiducial, zones, protected, subtracted))


# ---------------------------------------------------------------- sections 5, 6

class DataHeader(NamedTuple):
    avm: int
    """Amplitude value multiplier, nV per unit."""
    interval_us: int
    differences: int
    bimodal: int
    starts: np.ndarray
    """int64: byte offset of each lead's data."""
    lengths: np.ndarray
    """int64: byte length of each lead's data."""
    longest: int
    """The largest of ``lengths`` (0 without leads)."""

    @property
    def rate(self) -> float:
        return 1e6 / self.interval_us


def parse_data_header(sec: Section, scanned: tuple[Any, ...] | None,
                      ctx: DecodeContext) -> DataHeader:
    """Section 5 or 6 from the header ``scan_headers`` read: multiplier,
    interval, encoding and each lead's data span."""
    assert scanned is not None
    short, avm, interval, diff, bimodal, starts, lengths, longest, total, avail = scanned
    sid, b = sec.id, sec.body
    if short is not None:
        need_failed(ctx, short[1], short[2], f"section {sid} header")
    if interval == 0:
        ctx.fail(HeaderError, f"section {sid} gives a sample interval of 0 µs", offset=b + 2,
                 field=f"section {sid} sample interval")
    if avm == 0:
        ctx.deviation(f"section {sid} gives an amplitude multiplier (AVM) of 0 nV; "
                      "physical values are all zero", offset=b, field=f"section {sid} AVM")
    if diff not in (0, 1, 2):
        ctx.fail(UnsupportedFeatureError, f"section {sid} uses difference encoding {diff}; "
                 "only 0 (none), 1 (first) and 2 (second) are defined", offset=b + 4,
                 field=f"section {sid} difference encoding")
    if total > avail:  # the kernel cut the spans to the section
        ctx.deviation(f"section {sid} lead byte lengths add up to {total} but only {avail} "
                      "bytes follow; the last lead data is cut", cls=TruncatedError,
                      offset=b + 6, field=f"section {sid} lead lengths")
    return new_fields(DataHeader, (avm, interval, diff, bimodal, starts, lengths, longest))


# ---------------------------------------------------------------- section 7

_BEAT_KEYS = ("p_onset_ms", "p_offset_ms", "qrs_onset_ms", "qrs_offset_ms", "t_offset_ms",
              "p_axis_deg", "qrs_axis_deg", "t_axis_deg")
_SPIKE_KEYS = ("time_ms", "amplitude_uv", "type", "source", "trigger_index", "pulse_width_us")
_RATE_KEYS = ("ventricular_rate_bpm", "atrial_rate_bpm", "qtc_ms", "qtc_formula")


class GlobalMeasurements(NamedTuple):
    """Section 7 as plain values (``global_measurement_values``), checked and noted."""

    rr: int | None
    pp: int | None
    beats: list[tuple[int | None, ...]]
    spikes: list[tuple[int, ...]]
    qrs_types: tuple[int, ...] | None
    rates: tuple[int | None, int | None, int | None, int] | None
    remaining: bytes | None

    def as_dict(self) -> dict[str, Any]:
        """Intervals, one dict per beat, pacemaker spikes and the version 2
        extension (each only when all its bytes are present), as read."""
        out: dict[str, Any] = {"average_rr_ms": self.rr, "average_pp_ms": self.pp,
                               "beats": [dict(zip(_BEAT_KEYS, beat)) for beat in self.beats],
                               "pacemaker_spikes": [dict(zip(_SPIKE_KEYS, s))
                                                    for s in self.spikes]}
        if self.qrs_types is not None:
            out["qrs_types"] = self.qrs_types
        if self.rates is not None:
            out.update(zip(_RATE_KEYS, self.rates))
        if self.remaining is not None:
            out["remaining_bytes"] = self.remaining
        return out


def read_section7(data: ByteData, sec: Section, ctx: DecodeContext
                  ) -> Callable[[], GlobalMeasurements]:
    """Global measurements: intervals, beats, pacemaker spikes and the version 2
    extension, each part only when all its bytes are present. Sentinel values
    read as ``None``.

    The head is checked and a cut beat list noted now; the values, in which
    nothing can warn, are read from a copy of the section when first asked
    for (a record is mostly read for its signals).
    """
    b, end = sec.body, sec.end
    need(ctx, data, b, 6, end, "section 7 header")
    if (end - b - 6) // 16 < data[b]:  # fewer beats present than declared
        ctx.warn("section 7 ends inside its beat measurements; the rest ignored")
    return partial(_section7_values, span(data, b, end))


def _section7_values(body: bytes) -> GlobalMeasurements:
    rr, pp, _, beats, spikes, qrs_types, rates, o = _k.global_measurement_values(
        body, 0, len(body))
    return new_fields(GlobalMeasurements, (rr, pp, beats, spikes, qrs_types, rates,
                                           body[o:] if o < len(body) else None))


# ---------------------------------------------------------------- sections 8, 11

_CONFIRMATION = {0: "original", 1: "confirmed", 2: "overread"}
_STATEMENT_TYPES = {1: "coded", 2: "text", 3: "coded+text"}
_STATEMENT_HEAD = struct.Struct("<BH6B")  # confirmation, date and time, statement count


def _statement_header(data: ByteData, b: int, end: int, ctx: DecodeContext, sid: int
                      ) -> tuple[dict[str, Any], int]:
    if b + 9 > end or b + 9 > len(data):
        need(ctx, data, b, 9, end, f"section {sid} header")
    when = None
    confirmation, y, mo, d, h, mi, s, count = _STATEMENT_HEAD.unpack_from(data, b)
    try:
        when = dt.datetime(y, mo, d, h, mi, s) if y else None
    except ValueError:
        ctx.warn(f"section {sid} date/time is not valid; ignored")
    return {"confirmation": _CONFIRMATION.get(confirmation) or f"code {confirmation}",
            "datetime": when}, count


def parse_statements(data: ByteData, sec: Section, ctx: DecodeContext, texts: Texts,
                     universal: bool) -> dict[str, Any] | Callable[[], dict[str, Any]]:
    """Section 8 (interpretation) or 11 (universal statements): sequence
    number, length and bytes per statement; a universal statement starts with
    its type: coded, text, or both (NUL separated). Texts are stripped of the
    padding devices put around them and statements whose text is empty are
    left out (the others keep the file's sequence numbers).

    When no text can fail to decode (``texts.infallible``), nothing left can
    warn: what builds the dict on first access is returned instead of it (a
    record is mostly read for its signals)."""
    head, count = _statement_header(data, sec.body, sec.end, ctx, sec.id)
    body = span(data, sec.body, sec.end)
    spans, overrun = _k.statement_spans(body, 9, len(body), count)
    build = partial(_statements, head, body, spans, texts, universal)
    result = build if texts.infallible else build()
    if overrun >= 0:
        ctx.warn(f"section {sec.id} statement {overrun} runs past the section; the rest is "
                 "ignored")
    return result


def _statements(head: dict[str, Any], body: bytes, spans: list[tuple[int, int, int]],
                texts: Texts, universal: bool) -> dict[str, Any]:
    items = []
    for seq, a, z in spans:
        if universal and z > a:
            item = _universal_statement(seq, body[a:z], texts)
            text = item.get("text")
            if text is not None:
                text = item["text"] = text.strip()
        else:
            text = texts(body[a:z]).strip()
            item = {"sequence": seq, "text": text}
        if text != "":
            items.append(item)
    return {**head, "statements": items}


def _universal_statement(seq: int, value: bytes, texts: Texts) -> dict[str, Any]:
    kind = value[0]
    parts = value[1:].split(b"\0")
    item: dict[str, Any] = {"sequence": seq, "type": _STATEMENT_TYPES.get(kind, f"code {kind}")}
    if kind == 1:
        item["code"] = texts(parts[0])
    elif kind == 2:
        item["text"] = texts(parts[0])
    else:
        item["code"] = texts(parts[0])
        item["text"] = texts(parts[1]) if len(parts) > 1 else ""
    return item


# ---------------------------------------------------------------- section 10

#: Section 10 per-lead measurement names, in stored order (int16 each).
LEAD_MEASUREMENTS = (
    "p_duration", "pr_interval", "qrs_duration", "qt_interval", "q_duration", "r_duration",
    "s_duration", "r_prime_duration", "s_prime_duration", "q_amplitude", "r_amplitude",
    "s_amplitude", "r_prime_amplitude", "s_prime_amplitude", "j_point_amplitude",
    "p_plus_amplitude", "p_minus_amplitude", "t_plus_amplitude", "t_minus_amplitude",
    "st_slope", "p_morphology", "t_morphology", "iso_segment_qrs_onset",
    "iso_segment_qrs_end", "intrinsicoid_deflection", "quality_code",
    "st_amplitude_j20", "st_amplitude_j60", "st_amplitude_j80", "st_amplitude_rr16",
    "st_amplitude_rr8",
)
_LEAD_KEYS = ("lead_id", "lead", *LEAD_MEASUREMENTS)


class LeadMeasurements(Sequence[dict[str, Any]]):
    """Section 10's per-lead blocks as a read-only sequence of dicts
    (``lead_id``, ``lead``, the measurements present in stored order, and
    ``manufacturer_bytes`` when a block holds bytes after them).

    The dicts are built on first access: a record is mostly read for its
    signals, and twelve dicts of 33 keys cost more than the rest of the
    section. It compares equal to a list of the same dicts.
    """

    __slots__ = ("_rows", "_extra", "_built")

    def __init__(self, rows: np.ndarray, extra: dict[int, bytes]) -> None:
        self._rows = rows
        self._extra = extra
        self._built: list[dict[str, Any]] | None = None

    def _entries(self) -> list[dict[str, Any]]:
        built = self._built
        if built is None:
            built = []
            for index, (lead_id, count, *values) in enumerate(self._rows.tolist()):
                entry = dict(zip(_LEAD_KEYS, (lead_id, lead_name(lead_id), *values[:count])))
                if index in self._extra:
                    entry["manufacturer_bytes"] = self._extra[index]
                built.append(entry)
            self._built = built
        return built

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self._entries()[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._entries())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LeadMeasurements):
            return self._entries() == other._entries()
        if isinstance(other, list):
            return self._entries() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._entries())


def parse_section10(data: ByteData, sec: Section, ctx: DecodeContext) -> dict[str, Any]:
    """Per-lead measurement blocks: the int16 values in stored order (a short
    block gives its first ones) and any bytes after them as
    ``manufacturer_bytes``; the per-lead dicts are built when first read."""
    b, end = sec.body, sec.end
    need(ctx, data, b, 4, end, "section 10 header")
    nleads, manufacturer = u16(data, b), u16(data, b + 2)
    rows, extras, complete = _k.lead_measurement_rows(data, b + 4, end, nleads)
    if not complete:
        ctx.warn("section 10 ends before all its leads; the rest is ignored")
    return {"manufacturer_specific": manufacturer,
            "leads": LeadMeasurements(rows, {i: span(data, a, z) for i, a, z in extras})}
