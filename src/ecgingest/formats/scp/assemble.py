"""Assembling a record: the section parsers in order, then the samples
(rhythm, reference beat, bimodal reconstruction) in the kernels, then the
record and its extras.

Every per-sample step runs in ``ecgingest._ext.scp`` with the GIL released;
every length and index read from the file is checked against the bytes
present, and the decoded size against the upload's budget, before anything
is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, cast

import numpy as np

from ..._ext import scp as _k
from ...errors import (
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ...record import Metadata, Record, RecordInfo, Signal, SignalInfo, new_signals
from .._base import DecodeContext
from .container import (
    Container,
    Section,
    read_container,
    section_versions,
    version_label,
)
from .fields import ByteData, Texts, byte_data, new_fields, span
from .huffman import Huffman, parse_section2
from .metadata import PatientData, parse_section1
from .readings import shared_measurements
from .sections import (
    DataHeader,
    GlobalMeasurements,
    Leads,
    Qrs,
    parse_data_header,
    parse_section3,
    parse_section4,
    parse_section10,
    parse_statements,
    read_section7,
)

__all__ = ["ReferenceBeat", "decode_record", "inspect_record"]

FORMAT_NAME = "scp"
MAX_BIMODAL_FACTOR = 64
MAX_BIMODAL_SAMPLES = 1 << 22  # per lead; 64 x the values 65535 bytes of 1-bit codes hold
_VALUE_BYTES = 4  # the kernels decode into int32


@dataclass(frozen=True, eq=False)
class ReferenceBeat:
    """Section 5: the reference (median) beat of every lead, at its own rate and AVM.

    One block for all leads (``digital[lead, sample]``) rather than one
    :class:`~ecgingest.Signal` per lead: it is a reading, not a channel.
    """

    labels: tuple[str, ...]
    sample_rate: float
    digital: np.ndarray
    scale: float
    fiducial: int | None
    units: str = "uV"

    @property
    def physical(self) -> np.ndarray:
        """Microvolts, ``digital * scale``."""
        return self.digital * self.scale


class Extras(Mapping[str, Any]):
    """A record's extras: values read from the file, and values built from what the
    file said on first access (``record.qrs_complexes``, ``record.global_measurements``).

    Everything that can fail or warn happens while the record is decoded; what is
    left to first access only builds dicts and lists from plain values, so that a
    record read for its signals does not pay for them. Keys keep the order in which
    the file's sections give them. Pickles and copies as a plain ``dict``.
    """

    __slots__ = ("_values", "_pending")

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._pending: dict[str, Callable[[], Any]] = {}

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value

    def later(self, key: str, build: Callable[[], Any]) -> None:
        """``key``'s value is ``build()``, called on first access."""
        self._values[key] = _PENDING
        self._pending[key] = build

    def raw_section(self, sid: int, body: bytes) -> None:
        self._values.setdefault("sections_raw", {})[sid] = body

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        if value is _PENDING:
            # two threads may both build a value (the same one); the one that finds the
            # builder gone reads what the other stored before letting it go
            build = self._pending.get(key)
            if build is None:
                return self._values[key]
            value = self._values[key] = build()
            self._pending.pop(key, None)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self.items()),)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


_PENDING = object()


# ---------------------------------------------------------------- headers


class _Preamble(NamedTuple):
    """What every read of a record starts with: container, version, section 1."""

    sections: dict[int, Section]
    container: Container
    label: str
    version: float
    patient: PatientData


def _preamble(data: ByteData, ctx: DecodeContext, *, defer_crcs: bool) -> _Preamble:
    container: Container = read_container(data, ctx, defer_crcs=defer_crcs)
    sections = container.sections
    label, version = version_label(container.protocol, sections, ctx)
    if 1 in sections:
        patient = parse_section1(container.s1, ctx)
    else:
        ctx.deviation("section 1 (patient data) is missing", field="section 1")
        patient = new_fields(PatientData, (Metadata(), None, {}, Texts(ctx)))
    if 3 not in sections:
        ctx.fail(HeaderError, "section 3 (lead definition) is missing, so the samples cannot "
                 "be assigned to leads", field="section 3")
    if 6 not in sections:
        ctx.fail(HeaderError, "section 6 (rhythm data) is missing; the file holds no signal",
                 field="section 6")
    return new_fields(_Preamble, (sections, container, label, version, patient))


def _is_bimodal(leads: Leads, d6: DataHeader, version: float, ctx: DecodeContext) -> bool:
    """Notes on the lead table and section 6's bimodal byte; whether it applies."""
    if 0 in leads.starts:
        zero_start = [label for label, first in zip(leads.labels, leads.starts) if first == 0]
        ctx.warn(f"section 3 numbers the samples of {', '.join(zero_start)} from 0 (they are "
                 "1-based); read as starting at 1")
    if d6.bimodal not in (0, 1) or (d6.bimodal and version >= 3):
        ctx.warn(f"section 6 bimodal byte is {d6.bimodal}; ignored")
    return d6.bimodal == 1 and version < 3


class _Layout(NamedTuple):
    """The headers the samples are decoded by."""

    leads: Leads
    huff: Huffman | None
    qrs: Qrs | None
    d6: DataHeader
    bimodal: bool
    nsamples: int
    """The longest lead of section 3."""
    cap: int
    """At most as many values per lead as section 6's longest lead can hold."""

    @property
    def beat_needed(self) -> bool:
        """The rhythm depends on section 5."""
        return self.leads.refbeat_subtracted or self.bimodal


def _layout(data: ByteData, pre: _Preamble, ctx: DecodeContext,
            extras: Extras) -> _Layout:
    sections, version, scanned = pre.sections, pre.version, pre.container
    leads = parse_section3(sections[3], scanned.s3, ctx)
    huff = None if scanned.ntables is None else parse_section2(data, sections[2],
                                                               scanned.ntables, ctx)
    qrs = parse_section4(scanned.s4, ctx) if 4 in sections and version < 3 else None
    if 4 in sections and version >= 3:
        extras.raw_section(4, _body(data, sections[4]))
    d6 = parse_data_header(sections[6], scanned.s6, ctx)
    bimodal = _is_bimodal(leads, d6, version, ctx)
    nsamples = max(leads.lengths) if leads.lengths else 0
    cap = d6.longest * 8 if huff is not None else d6.longest // 2
    return new_fields(_Layout, (leads, huff, qrs, d6, bimodal, nsamples, cap))


def _body(data: ByteData, sec: Section) -> bytes:
    return span(data, sec.body, sec.end)


# ---------------------------------------------------------------- samples


class _Samples(NamedTuple):
    rhythm: np.ndarray
    """``[lead, sample]`` as decoded (reference beat not yet added unless ``added``)."""
    value_range: tuple[int, int] | None
    rate: float
    counts: list[int]
    """Samples of each lead."""
    d5: DataHeader | None
    beat: np.ndarray | None
    beat_range: tuple[int, int] | None
    added: bool
    """The kernel added the reference beat to the rhythm already."""


def _reserve(ctx: DecodeContext, nleads: int, count: int, what: str,
             itemsize: int = _VALUE_BYTES) -> None:
    ctx.reserve_output(nleads * max(count, 0) * itemsize, what)


def _decode_section(data: ByteData, d: DataHeader, nsamples: int, huff: Huffman | None,
                    ctx: DecodeContext, what: str
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Decoded values, per-lead counts and the (min, max) of the values."""
    _reserve(ctx, len(d.starts), nsamples, f"{what} samples")
    status, values, produced, lo, hi = _k.decode_leads(
        data, d.starts, d.lengths, nsamples, None if huff is None else huff.tables,
        d.differences)
    ctx.check_status(status, what, field=what)
    assert values is not None and produced is not None
    return values, produced, (lo, hi)


def _reference_beat_plan(pre: _Preamble, qrs: Qrs | None, huff: Huffman | None,
                         ctx: DecodeContext) -> tuple[DataHeader, int]:
    """Section 5: its header, and how many values per lead to decode (0: not known)."""
    d5 = parse_data_header(pre.sections[5], pre.container.s5, ctx)
    b_bytes = d5.longest
    if qrs is not None:
        beat_len = qrs.beat_length_ms * 1000 // d5.interval_us
    else:
        beat_len = b_bytes // 2 if huff is None else 0  # Huffman needs section 4's count
    beat_len = min(beat_len, b_bytes * 8 if huff is not None else b_bytes // 2)
    return d5, max(beat_len, 0)


def _check_beat_count(ctx: DecodeContext, produced: list[int], beat_len: int) -> None:
    if min(produced, default=beat_len) < beat_len:
        ctx.deviation(f"section 5 holds fewer than the {beat_len} reference-beat samples "
                      "section 4 announces", cls=TruncatedError, field="section 5")


def _section5_failed(ctx: DecodeContext, exc: EcgIngestError, fatal: bool) -> None:
    """A section 5 that cannot be read: fatal when the rhythm depends on it (or
    ``strict``), else noted and left out."""
    if fatal:
        raise exc
    ctx.warn(f"section 5 (reference beat) could not be read and is left out: {exc.message}")


def _read_reference_beat(data: ByteData, pre: _Preamble, lay: _Layout, ctx: DecodeContext
                         ) -> tuple[DataHeader, np.ndarray | None, tuple[int, int] | None]:
    """Section 5: its header, and its values when their number is known."""
    d5, beat_len = _reference_beat_plan(pre, lay.qrs, lay.huff, ctx)
    if beat_len <= 0:
        return d5, None, None
    beat, produced, beat_range = _decode_section(data, d5, beat_len, lay.huff, ctx,
                                                 "section 5")
    _check_beat_count(ctx, produced.tolist(), beat_len)
    return d5, beat, beat_range


def _decode_rhythm(data: ByteData, pre: _Preamble, lay: _Layout, ctx: DecodeContext) -> _Samples:
    """Sections 6 and 5 and the beat addition in one kernel call (one GIL release),
    the container's pending CRCs too."""
    leads, qrs, d6 = lay.leads, lay.qrs, lay.d6
    d5: DataHeader | None = None
    beat_len = 0
    if 5 in pre.sections and (lay.beat_needed or qrs is not None):
        try:
            d5, beat_len = _reference_beat_plan(pre, qrs, lay.huff, ctx)
        except EcgIngestError as exc:
            _section5_failed(ctx, exc, lay.beat_needed or ctx.strict)
    want = min(lay.nsamples, lay.cap)
    # every argument positional: the kernel's keyword parsing costs more than its checks
    starts5 = lengths5 = qrs_start = qrs_fiducial = qrs_end = qrs_add = None
    n5 = diff5 = beat_fiducial = 0
    keep_int32 = False
    if d5 is not None and beat_len > 0:
        starts5, lengths5, n5, diff5 = d5.starts, d5.lengths, beat_len, d5.differences
        if leads.refbeat_subtracted and qrs is not None and d5.avm == d6.avm:
            qrs_start, qrs_fiducial, qrs_end = qrs.starts, qrs.fiducials, qrs.ends
            qrs_add, beat_fiducial = qrs.subtracted, qrs.fiducial
        else:  # the caller adds the beat, if at all
            keep_int32 = leads.refbeat_subtracted
        _reserve(ctx, len(leads.ids), beat_len, "section 5 samples")
    _reserve(ctx, len(leads.ids), want, "section 6 samples")
    pending = pre.container.pending
    (status, rhythm, produced, lo, hi, status5, beat, produced5, lo5, hi5, added,
     record_crc, crcs_differ) = _k.decode_signals(
        data, None if lay.huff is None else lay.huff.tables, d6.starts, d6.lengths, want,
        d6.differences, starts5, lengths5, n5, diff5, qrs_start, qrs_fiducial, qrs_end,
        qrs_add, beat_fiducial, keep_int32, None if pending is None else pending.rows,
        0 if pending is None else pending.end)
    if pending is not None:
        pending.settle(ctx, record_crc, crcs_differ)
    beat_range = None
    if starts5 is not None:
        try:
            ctx.check_status(status5, "section 5", field="section 5")
            assert produced5 is not None
            _check_beat_count(ctx, produced5, beat_len)
            beat_range = (lo5, hi5)
        except EcgIngestError as exc:
            _section5_failed(ctx, exc, lay.beat_needed or ctx.strict)
            d5 = beat = None
    else:
        beat = None
    ctx.check_status(status, "section 6", field="section 6")
    assert rhythm is not None and produced is not None
    counts = _clipped_counts(leads, produced, ctx)
    return new_fields(_Samples, (rhythm, (lo, hi), d6.rate, counts, d5, beat, beat_range, added))


def _clipped_counts(leads: Leads, produced: list[int], ctx: DecodeContext) -> list[int]:
    """Samples per lead: the section 3 count, cut to the values section 6 held."""
    lengths = leads.lengths
    if produced == lengths:  # the usual case: every lead as long as section 3 says
        return produced
    counts = [count if count < want else want for want, count in zip(lengths, produced)]
    if counts != lengths:
        # leads mostly share their numbers: each distinct set is worded once
        worded: dict[tuple[int, int, int, int], str] = {}
        parts = []
        for label, start, end, want, count in zip(leads.labels, leads.starts, leads.ends,
                                                  lengths, counts):
            if count < want:
                numbers = (start, end, want, count)
                text = worded.get(numbers)
                if text is None:
                    text = worded[numbers] = \
                        "samples {}..{} ({}) but section 6 holds {}".format(*numbers)
                parts.append(f"{label}: {text}")
        ctx.deviation(f"lead sample ranges of section 3 and data lengths of section 6 "
                      f"disagree ({'; '.join(parts)}); each lead is read as far as its data "
                      "goes", cls=TruncatedError, field="section 3 sample range")
    return counts


def _decode_bimodal(data: ByteData, pre: _Preamble, lay: _Layout, ctx: DecodeContext) -> _Samples:
    """Section 6 stored at full rate in the protected zones and decimated
    between them, rebuilt at section 5's rate."""
    d5: DataHeader | None = None
    beat = beat_range = None
    if 5 in pre.sections:
        try:
            d5, beat, beat_range = _read_reference_beat(data, pre, lay, ctx)
        except EcgIngestError as exc:
            _section5_failed(ctx, exc, True)
    qrs, d6, nsamples = lay.qrs, lay.d6, lay.nsamples
    if d5 is None or qrs is None or qrs.protected_start is None:
        ctx.fail(HeaderError, "section 6 is bimodally compressed but sections 4 (protected "
                 "zones) and 5 (full-rate interval) are not both present",
                 field="section 6 bimodal")
    factor = _decimation_factor(d5, d6, nsamples, ctx)
    zs, ze = _protected_zones(qrs, nsamples, ctx)
    stored_count = int((ze - zs + 1).sum()) + _run_values(zs, ze, nsamples, factor)
    if stored_count > lay.cap:
        ctx.fail(TruncatedError, f"bimodal data needs {stored_count} values per lead but "
                 "section 6 cannot hold them", field="section 6")
    stored, produced, _ = _decode_section(data, d6, stored_count, lay.huff, ctx, "section 6")
    if (produced < stored_count).any():
        ctx.fail(TruncatedError, f"section 6 holds fewer than the {stored_count} bimodal "
                 "values per lead the protected zones require", field="section 6")
    _reserve(ctx, len(lay.leads.ids), nsamples, "section 6 bimodal samples")
    status, rhythm = _k.bimodal_expand(stored, produced, zs, ze, factor, nsamples)
    ctx.check_status(status, "section 6 bimodal", field="section 6 bimodal")
    assert rhythm is not None
    if pre.container.pending is not None:  # no single kernel call to fold them into
        pre.container.pending.settle_now(data, ctx)
    return new_fields(_Samples, (rhythm, None, d5.rate, lay.leads.lengths, d5, beat, beat_range,
                                 False))


def _decimation_factor(d5: DataHeader, d6: DataHeader, nsamples: int,
                       ctx: DecodeContext) -> int:
    if d6.interval_us % d5.interval_us:
        ctx.fail(HeaderError, f"bimodal decimation: section 6 interval {d6.interval_us} µs is "
                 f"not a multiple of section 5's {d5.interval_us} µs",
                 field="section 6 sample interval")
    factor = d6.interval_us // d5.interval_us
    if factor > MAX_BIMODAL_FACTOR:
        ctx.fail(UnsupportedFeatureError, f"bimodal decimation factor {factor} (section 6 / "
                 f"section 5 interval) is above the {MAX_BIMODAL_FACTOR} ecgingest "
                 "reconstructs", field="section 6 sample interval")
    if nsamples > MAX_BIMODAL_SAMPLES:
        ctx.fail(CorruptDataError, f"section 3 declares {nsamples} samples per lead, more "
                 "than a bimodal section 6 (at most 65535 bytes per lead) can plausibly "
                 "rebuild", field="section 3 sample range")
    return factor


def _protected_zones(qrs: Qrs, nsamples: int, ctx: DecodeContext
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Protected zones sorted, clipped to the record, overlapping or adjacent ones merged."""
    assert qrs.protected_start is not None and qrs.protected_end is not None
    given = list(zip(qrs.protected_start.tolist(), qrs.protected_end.tolist()))
    pairs = sorted((a, b) for a, b in given if 1 <= a <= nsamples and b >= a)
    irregular = len(given) - len(pairs)  # empty, reversed or outside the record
    merged: list[list[int]] = []
    for a, b in pairs:
        if b > nsamples:
            irregular += 1
            b = nsamples
        if merged and a <= merged[-1][1]:
            irregular += 1  # a real overlap
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if irregular:
        ctx.warn(f"{irregular} section 4 protected zone(s) overlap, are empty or reach past "
                 "the record; zones were merged, dropped or clipped")
    arr = np.array(merged, dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1])


def _run_values(zs: np.ndarray, ze: np.ndarray, nsamples: int, factor: int) -> int:
    """Stored values of the decimated runs: ceil(run length / factor) each."""
    total, s = 0, 1
    for a, b in zip(zs.tolist(), ze.tolist()):
        if a > s:
            total += -(-(a - s) // factor)
        s = b + 1
    if s <= nsamples:
        total += -(-(nsamples - s + 1) // factor)
    return total


class _Values(NamedTuple):
    digital: np.ndarray
    """``[lead, sample]`` in the smallest dtype that holds the values."""
    scale_nv: int
    """nV per unit of ``digital``."""


def _with_reference_beat(lay: _Layout, s: _Samples, ctx: DecodeContext) -> _Values:
    """The rhythm with the reference beat added back where section 3 says it was
    subtracted, at a common multiplier of sections 5 and 6."""
    avm6 = lay.d6.avm
    values, value_range, scale_nv = s.rhythm, s.value_range, avm6
    qrs, d5, beat = lay.qrs, s.d5, s.beat
    if s.added:
        assert d5 is not None
        scale_nv = math.gcd(d5.avm, avm6) or 1
    elif lay.leads.refbeat_subtracted:
        if beat is None or qrs is None or d5 is None:
            ctx.deviation("section 3 says the reference beat was subtracted but sections 4 "
                          "and 5 are not both present; the residual is returned as is",
                          field="section 3 flags")
        else:
            g = math.gcd(d5.avm, avm6) or 1
            bound = (max(abs(x) for x in value_range) + max(abs(x) for x in s.beat_range)
                     if value_range is not None and s.beat_range is not None else 2**31)
            if d5.avm == avm6 and bound < 2**31:
                status, lo, hi = _k.add_reference_beat_inplace(
                    values, beat, qrs.starts, qrs.fiducials, qrs.ends, qrs.subtracted,
                    qrs.fiducial)
            else:
                _reserve(ctx, values.shape[0], values.shape[1], "reference beat addition",
                         itemsize=8)
                status, wide, lo, hi = _k.add_reference_beat(
                    values, avm6 // g, beat, d5.avm // g, qrs.starts, qrs.fiducials, qrs.ends,
                    qrs.subtracted, qrs.fiducial)
                if wide is not None:
                    values = wide
            ctx.check_status(status, "reference beat", field="reference beat")
            scale_nv = g
            value_range = (lo, hi)
    digital = values if values.dtype == np.int16 else _smallest(values, value_range)
    return new_fields(_Values, (digital, scale_nv))


def _smallest(values: np.ndarray, bounds: tuple[int, int] | None = None) -> np.ndarray:
    """The values in the smallest signed dtype that holds them (int16 / int32 / int64)."""
    if values.size == 0:
        return values.astype(np.int16)
    lo, hi = bounds if bounds is not None else (int(values.min()), int(values.max()))
    if -32768 <= lo and hi <= 32767:
        return values.astype(np.int16)
    if -(2**31) <= lo and hi < 2**31:
        return values if values.dtype == np.int32 else values.astype(np.int32)
    return values.astype(np.int64)


# ---------------------------------------------------------------- extras


def _sample_extras(lay: _Layout, s: _Samples, scale_nv: int, extras: Extras) -> None:
    # builders are partials, not closures: fewer objects for the collector per kept record
    qrs, d5, beat = lay.qrs, s.d5, s.beat
    if beat is not None and d5 is not None:
        # not ``s``: its rhythm block must not outlive the decode
        extras.later("reference_beat", partial(_reference_beat, lay, s.beat_range, beat, d5))
    if qrs is not None:
        extras.later("qrs_complexes", qrs.summary)
    extras.later("lead_ranges", partial(_lead_ranges, lay.leads))
    extras.later("compression", partial(_compression, lay, scale_nv))


def _lead_ranges(leads: Leads) -> list[tuple[int, int]]:
    return list(zip(leads.starts, leads.ends))


def _compression(lay: _Layout, scale_nv: int) -> dict[str, Any]:
    return {"huffman": None if lay.huff is None else lay.huff.description,
            "differences": lay.d6.differences, "bimodal": lay.bimodal,
            "reference_beat_subtracted": lay.leads.refbeat_subtracted,
            "amplitude_multiplier_nv": scale_nv}


def _reference_beat(lay: _Layout, beat_range: tuple[int, int] | None, beat: np.ndarray,
                    d5: DataHeader) -> ReferenceBeat:
    beat_digital = beat if beat.dtype == np.int16 else _smallest(beat, beat_range)
    beat_digital.flags.writeable = False
    return ReferenceBeat(tuple(lay.leads.labels), d5.rate, beat_digital, d5.avm / 1000.0,
                         None if lay.qrs is None else lay.qrs.fiducial)


def _global_measurements(section7: Callable[[], GlobalMeasurements]) -> dict[str, Any]:
    return shared_measurements(section7().as_dict())


def _reading_extras(data: ByteData, sections: dict[int, Section], texts: Texts,
                    ctx: DecodeContext, extras: Extras) -> None:
    """Measurements (7, 10), statements (8, 11) and sections kept as bytes."""
    if 7 in sections:
        extras.later("global_measurements",
                     partial(_global_measurements, read_section7(data, sections[7], ctx)))
    if 10 in sections:
        extras.set("lead_measurements", parse_section10(data, sections[10], ctx))
    for sid, key in ((8, "interpretation"), (11, "universal_statements")):
        if sid in sections:
            statements = parse_statements(data, sections[sid], ctx, texts, sid == 11)
            if callable(statements):
                extras.later(key, statements)
            else:
                extras.set(key, statements)
    if 9 in sections:
        extras.set("manufacturer_interpretation", _body(data, sections[9]))
    for sid, sec in sections.items():
        if sid >= 12:
            extras.raw_section(sid, _body(data, sec))


# ---------------------------------------------------------------- the record


def decode_record(data: bytes | bytearray | memoryview, ctx: DecodeContext) -> Record:
    """One SCP-ECG file as a :class:`~ecgingest.Record`."""
    data = byte_data(data)
    pre = _preamble(data, ctx, defer_crcs=not ctx.strict)
    extras = Extras()
    extras.set("scp_version", pre.label)
    sections = pre.sections
    extras.later("scp_section_versions", partial(section_versions, sections))
    info = pre.patient.info
    if callable(info):
        extras.later("acquisition_info", info)
    else:
        extras.set("acquisition_info", info)
    lay = _layout(data, pre, ctx, extras)
    samples = (_decode_bimodal if lay.bimodal else _decode_rhythm)(data, pre, lay, ctx)
    digital, scale_nv = _with_reference_beat(lay, samples, ctx)
    scale, rate = scale_nv / 1000.0, samples.rate
    signals = cast("list[Signal]", new_signals(lay.leads.labels, rate, digital, scale, 0.0,
                                               "uV", samples.counts))
    _sample_extras(lay, samples, scale_nv, extras)
    _reading_extras(data, pre.sections, pre.patient.texts, ctx, extras)
    return Record(name=ctx.name, format=FORMAT_NAME, format_detail=f"SCP {pre.label}",
                  signals=signals, start_time=pre.patient.start_time,
                  metadata=pre.patient.metadata, sources=(ctx.path or ctx.name,),
                  warnings=list(ctx.warnings), extras=extras)


def inspect_record(data: bytes | bytearray | memoryview, ctx: DecodeContext) -> RecordInfo:
    """The header facts of one SCP-ECG file, from sections 0, 1, 3 and 6 (and
    5's interval for a bimodal record), without decoding samples.

    Sample counts are section 3's, cut to the bytes section 6 holds for
    uncompressed data; Huffman-coded data is taken at its word. The dtype
    depends on the decoded values, so it is not given.
    """
    data = byte_data(data)
    pre = _preamble(data, ctx, defer_crcs=False)
    sections, scanned = pre.sections, pre.container
    leads = parse_section3(sections[3], scanned.s3, ctx)
    d6 = parse_data_header(sections[6], scanned.s6, ctx)
    rate = d6.rate
    if _is_bimodal(leads, d6, pre.version, ctx):
        if 5 in sections:
            rate = parse_data_header(sections[5], scanned.s5, ctx).rate
        counts = leads.lengths
    elif scanned.ntables is not None and scanned.ntables > 0:  # Huffman-coded
        counts = leads.lengths
    else:  # two bytes a value
        counts = _clipped_counts(leads, (d6.lengths // 2).tolist(), ctx)
    signals = tuple(SignalInfo(label, rate, count, "uV", None)
                    for label, count in zip(leads.labels, counts))
    return RecordInfo(ctx.name, FORMAT_NAME, f"SCP {pre.label}", signals,
                      pre.patient.start_time, pre.patient.metadata, 0,
                      (ctx.path or ctx.name,), tuple(ctx.warnings))
