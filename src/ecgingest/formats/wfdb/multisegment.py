"""Multi-segment WFDB records: fixed layouts (segments concatenated per signal) and
variable layouts (a layout header names the output signals; segments hold any subset).

:func:`plan` reads and checks the segment headers (no signal file), which is
all ``inspect`` needs; :func:`read_multi` then decodes each distinct segment
once and copies it to every place the master header lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import CorruptDataError, EcgIngestError, HeaderError, MissingFileError
from ...record import Record, RecordInfo, Signal, SignalInfo
from .header import WIDE, WfdbHeader, WfdbSegmentSpec
from .records import comment_metadata, extras
from .signals import Decoded, RecordFiles, check_plausible, decode_signals, frames_present

if TYPE_CHECKING:
    from ..._memory import Arena

__all__ = ["Plan", "plan", "read_multi", "multi_info"]

HeaderLookup = Callable[[str], "WfdbHeader | EcgIngestError | None"]
"""A header of the pool by file name (None: not in the pool)."""


@dataclass
class Plan:
    """A multi-segment record as its headers describe it."""

    master: WfdbHeader
    segments: list[tuple[WfdbSegmentSpec, WfdbHeader | None]]
    """Each segment line with its header (frame count applied; None: null segment)."""
    variable: bool
    layout: WfdbHeader
    """Where the output signals come from: the layout header, or the first segment."""
    spf: list[int]
    total: int

    @property
    def detail(self) -> str:
        return f"WFDB multi-segment ({'variable' if self.variable else 'fixed'} layout)"


def plan(master: WfdbHeader, lookup: HeaderLookup, files: RecordFiles) -> Plan:
    """Read and check the segment headers of ``master``; raise a typed error for any
    that is missing, broken, multi-segment itself (nesting, cycles, a header naming
    itself) or a layout header out of place."""
    ctx = files.ctx
    assert master.segments is not None
    segs = master.segments
    variable = segs[0].name != "~" and segs[0].frames == 0
    headers: list[tuple[WfdbSegmentSpec, WfdbHeader | None]] = []
    for position, seg in enumerate(segs):
        if seg.name == "~":
            headers.append((seg, None))
            continue
        file_name = seg.name + ".hea"
        sub = lookup(file_name)
        if sub is None:
            raise ctx.error(MissingFileError,
                            f"multi-segment record {master.record_name!r} needs segment header "
                            f"{file_name!r}, which is not in the upload")
        files.use(file_name)
        if isinstance(sub, EcgIngestError):
            raise sub
        where = files.pool[file_name].path
        if sub.segments is not None:
            raise ctx.error(HeaderError,
                            f"segment {seg.name!r} of {master.record_name!r} is itself "
                            "multi-segment (a cycle, or a header naming itself); WFDB does not "
                            "nest segments", path=where, field="segment lines")
        if sub.is_layout and not (variable and position == 0):
            raise ctx.error(HeaderError,
                            f"segment {seg.name!r} of {master.record_name!r} is a layout header "
                            "(signals without files); only the first segment of a variable "
                            "layout may be one", path=where, field="segment lines")
        if sub.record_name != seg.name:
            ctx.warn(f"segment header {file_name!r} names record {sub.record_name!r}")
        if sub.n_frames is not None and sub.n_frames != seg.frames:
            raise ctx.error(HeaderError,
                            f"segment {seg.name!r} has {sub.n_frames} frames but the master "
                            f"header says {seg.frames}", path=where, field="segment length")
        headers.append((seg, sub.with_frames(seg.frames)))
    total = sum(s.frames for s in segs)
    if master.n_frames is not None and master.n_frames != total:
        ctx.warn(f"segment lengths add up to {total} frames, the header says "
                 f"{master.n_frames}; using {total}")
    if variable:
        layout = headers[0][1]
        assert layout is not None
    else:
        first = next((h for _, h in headers if h is not None), None)
        if first is None:
            raise ctx.error(HeaderError, "a fixed-layout multi-segment record needs at least "
                            "one segment with signals", field="segment lines")
        layout = first
        if len(first.signals) != master.n_signals:
            raise ctx.error(HeaderError, f"segments have {len(first.signals)} signals, the "
                            f"master header says {master.n_signals}", field="number of signals")
    spf = [s.samples_per_frame for s in layout.signals]
    if not variable:
        for _, h in headers:
            if h is not None and [s.samples_per_frame for s in h.signals] != spf:
                raise ctx.error(HeaderError,
                                f"segment {h.record_name!r} differs in signals or samples per "
                                "frame from the first; fixed-layout segments must match",
                                field="samples per frame")
    return Plan(master, headers, variable, layout, spf, total)


def _data_bytes(p: Plan, files: RecordFiles) -> int:
    names = {s.file_name for _, h in p.segments if h is not None for s in h.signals}
    return sum(files.pool[n].size for n in names if n in files.pool)


class _Segments:
    """Decodes each distinct segment once (a segment may be listed many times)."""

    def __init__(self, files: RecordFiles, arena: Arena | None) -> None:
        self.files = files
        self.arena = arena
        self.done: dict[tuple[str, int], Decoded] = {}

    def decode(self, seg: WfdbSegmentSpec, h: WfdbHeader) -> Decoded:
        key = (seg.name, seg.frames)
        dec = self.done.get(key)
        if dec is None:
            sub = self.files.for_segment(self.files.pool[seg.name + ".hea"])
            dec = self.done[key] = decode_signals(h, sub, self.arena)
        return dec


def read_multi(master: WfdbHeader, lookup: HeaderLookup, files: RecordFiles,
               arena: Arena | None) -> Record:
    """The merged record, or the part of it that ``files.ctx.request`` asks for: then
    only the segments the window overlaps are read, each only for its frames in the
    window and the signals asked for."""
    p = plan(master, lookup, files)
    part = _Window.of(p, files)
    if not part.whole:  # the record's files are its sources, read or not
        for _, h in p.segments:
            for spec in h.signals if h is not None else ():
                if spec.file_name != "~" and spec.file_name in files.pool:
                    files.use(spec.file_name)
    return _variable(p, files, arena, part) if p.variable else _fixed(p, files, arena, part)


@dataclass
class _Window:
    """The frames ``[f0, f1)`` and the output signals (layout indices) a read covers."""

    f0: int
    f1: int
    chosen: list[int]
    ranges: list[tuple[int, int]] | None
    """Per output signal, its samples ``[a, b)`` (None: whole signals)."""
    seconds: tuple[float, float] | None
    whole: bool

    @classmethod
    def of(cls, p: Plan, files: RecordFiles) -> _Window:
        n = len(p.spf)
        request = files.ctx.request
        if request is None:
            return cls(0, p.total, list(range(n)), None, None, True)
        labels = [s.description for s in p.layout.signals]
        chosen = request.channel_indices(labels, p.master.record_name)
        if not request.windowed:
            return cls(0, p.total, chosen, None, None, False)
        fs = p.master.frame_frequency
        rates = [fs * k for k in p.spf]
        ranges = request.sample_ranges(rates, [p.total * k for k in p.spf],
                                       p.master.record_name)
        f0 = min((ranges[i][0] // p.spf[i] for i in chosen), default=0)
        f1 = max((-(-ranges[i][1] // p.spf[i]) for i in chosen), default=0)
        reference = max(rates)
        duration = max((p.total * k / r for k, r in zip(p.spf, rates) if r > 0), default=0.0)
        t0, t1 = request.seconds(reference)
        return cls(f0, max(f1, f0), chosen, ranges,
                   (t0, duration if t1 is None else t1), False)

    @property
    def wanted(self) -> list[int]:
        """The output signals to decode, each once, in layout order."""
        return sorted(set(self.chosen))

    def overlap(self, pos: int, frames: int) -> tuple[int, int]:
        """The frames of a segment at ``pos`` inside the read, counted in the segment
        (an empty range when it lies outside)."""
        lo = min(max(self.f0 - pos, 0), frames)
        return lo, max(min(self.f1 - pos, frames), lo)


def _segment(segments: _Segments, seg: WfdbSegmentSpec, h: WfdbHeader, part: _Window,
             lo: int, hi: int, wanted: set[int]) -> Decoded:
    """A segment decoded whole (cached), or its frames ``[lo, hi)`` of the signals
    ``wanted`` (segment indices) for a part of the record."""
    if part.whole:
        return segments.decode(seg, h)
    sub = segments.files.for_segment(segments.files.pool[seg.name + ".hea"])
    return decode_signals(h, sub, segments.arena, window=(lo, hi), wanted=wanted)


def _part(dec: Decoded, k: int, length: int, seg: WfdbSegmentSpec, files: RecordFiles
          ) -> np.ndarray:
    part = dec.digital[k]
    if len(part) != length:  # the frame count was applied to the header: guard it
        raise files.ctx.error(CorruptDataError, f"segment {seg.name!r} decoded to {len(part)} "
                              f"samples where {length} were expected")
    return part


def _fixed(p: Plan, files: RecordFiles, arena: Arena | None, part: _Window) -> Record:
    ctx = files.ctx
    master, spf = p.master, p.spf
    wanted = part.wanted
    frames = part.f1 - part.f0
    wide = any(s.fmt in WIDE for _, h in p.segments if h is not None for s in h.signals)
    dtype = np.int32 if wide else np.int16
    out_bytes = frames * sum(spf[i] for i in wanted) * ((4 if wide else 2) + 1)  # and mask
    check_plausible(f"multi-segment record {master.record_name!r}", out_bytes,
                    _data_bytes(p, files), frames, ctx)
    ctx.reserve_output(out_bytes, f"multi-segment record {master.record_name!r}")
    digital = {i: np.empty(frames * spf[i], dtype=dtype) for i in wanted}
    masks = {i: np.zeros(frames * spf[i], dtype=bool) for i in wanted}
    segments = _Segments(files, arena)
    pos = 0
    seg_info: list[dict[str, Any]] = []
    for seg, h in p.segments:
        lo, hi = part.overlap(pos, seg.frames)
        at = pos + lo - part.f0  # frame of the output where this segment's part starts
        if h is None or seg.frames == 0:
            for i in wanted:
                a, b = at * spf[i], (at + hi - lo) * spf[i]
                digital[i][a:b] = 0
                masks[i][a:b] = True
            pos += seg.frames
            seg_info.append({"name": seg.name, "frames": seg.frames})
            continue
        if hi <= lo:  # outside the part: not read
            seg_info.append({"name": h.record_name, "frames": seg.frames,
                             "extras": extras(h, [None] * len(h.signals))})
            pos += seg.frames
            continue
        dec = _segment(segments, seg, h, part, lo, hi, set(wanted))
        for i in wanted:
            k = spf[i]
            a, b = at * k, (at + hi - lo) * k
            piece = _part(dec, i, b - a, seg, files)
            digital[i][a:b] = piece
            code = dec.invalid_value[i]
            if code is not None:
                masks[i][a:b] |= piece == code
            mask = dec.invalid_mask[i]
            if mask is not None:
                masks[i][a:b] |= mask
        seg_info.append({"name": h.record_name, "frames": seg.frames,
                         "extras": extras(h, dec.checksums)})
        pos += seg.frames
    return _record(p, part, digital, masks, {}, seg_info, files)


def _variable(p: Plan, files: RecordFiles, arena: Arena | None, part: _Window) -> Record:
    ctx = files.ctx
    master, spf, layout = p.master, p.spf, p.layout
    wanted = part.wanted
    frames = part.f1 - part.f0
    out_specs = layout.signals
    index = {s.description: i for i, s in enumerate(out_specs)}
    samples = frames * sum(spf[i] for i in wanted)
    check_plausible(f"multi-segment record {master.record_name!r}", samples * 2,
                    _data_bytes(p, files), frames, ctx)
    # int32 digital, float64 physical and a mask per sample
    ctx.reserve_output(samples * 13, f"multi-segment record {master.record_name!r}")
    digital = {i: np.zeros(frames * spf[i], dtype=np.int32) for i in wanted}
    physical = {i: np.full(frames * spf[i], np.nan) for i in wanted}
    masks = {i: np.ones(frames * spf[i], dtype=bool) for i in wanted}
    # a signal that some segment stores at another gain carries its physical values
    # (the whole record's rule, whichever segments a part reads)
    rescaled = dict.fromkeys(wanted, False)
    for _, h in p.segments[1:]:
        for spec in h.signals if h is not None else ():
            i = index.get(spec.description)
            if i in rescaled and (spec.gain != out_specs[i].gain
                                  or spec.baseline != out_specs[i].baseline):
                rescaled[i] = True
    segments = _Segments(files, arena)
    pos = 0
    seg_info: list[dict[str, Any]] = [{"name": layout.record_name, "frames": 0, "layout": True}]
    for seg, h in p.segments[1:]:
        lo, hi = part.overlap(pos, seg.frames)
        if h is None or seg.frames == 0 or hi <= lo:
            seg_info.append({"name": seg.name, "frames": seg.frames} if h is None else {
                "name": h.record_name, "frames": seg.frames,
                "extras": extras(h, [None] * len(h.signals))})
            pos += seg.frames
            continue
        at = pos + lo - part.f0
        picked = {k for k, spec in enumerate(h.signals)
                  if part.whole or index.get(spec.description) in rescaled}
        dec = _segment(segments, seg, h, part, lo, hi, picked)
        for k, spec in enumerate(h.signals):
            i = index.get(spec.description)
            if i is None:
                ctx.warn(f"segment {h.record_name!r}: signal {spec.description!r} is not in the "
                         "layout header and was left out")
                continue
            if spec.samples_per_frame != spf[i]:
                raise ctx.error(HeaderError,
                                f"segment {h.record_name!r}: signal {spec.description!r} has a "
                                "different number of samples per frame than the layout",
                                field="samples per frame")
            if i not in rescaled:  # an output signal not asked for
                continue
            a, b = at * spf[i], (at + hi - lo) * spf[i]
            piece = _part(dec, k, b - a, seg, files).astype(np.int64)
            bad = np.zeros(len(piece), dtype=bool)
            if dec.invalid_value[k] is not None:
                bad |= piece == dec.invalid_value[k]
            mask = dec.invalid_mask[k]
            if mask is not None:
                bad |= mask
            lay = out_specs[i]
            phys = (piece - spec.baseline) / spec.gain
            phys[bad] = np.nan
            physical[i][a:b] = phys
            if spec.gain != lay.gain or spec.baseline != lay.baseline:
                ratio = lay.gain / spec.gain
                # the C library's rescaling to the layout (round half up)
                conv = np.floor(piece * ratio + lay.baseline - spec.baseline * ratio + 0.5)
                conv = np.clip(conv, -(2**31) + 1, 2**31 - 1)
                digital[i][a:b] = conv.astype(np.int32)
            else:
                digital[i][a:b] = piece
            digital[i][a:b][bad] = 0
            masks[i][a:b] = bad
        seg_info.append({"name": h.record_name, "frames": seg.frames,
                         "extras": extras(h, dec.checksums)})
        pos += seg.frames
    return _record(p, part, digital, masks,
                   {i: physical[i] for i in wanted if rescaled[i]}, seg_info, files)


def _record(p: Plan, part: _Window, digital: dict[int, np.ndarray],
            masks: dict[int, np.ndarray], physical: dict[int, np.ndarray],
            seg_info: list[dict[str, Any]], files: RecordFiles) -> Record:
    """The merged record (the part's signals, cut to its samples), invalid where a mask
    says so."""
    signals = []
    for i in part.chosen:
        spec, k = p.layout.signals[i], p.spf[i]
        out, mask, phys = digital[i], masks[i], physical.get(i)
        first = part.f0 * k
        if part.ranges is not None:
            a, b = part.ranges[i]
            if (a, b) != (first, first + len(out)):  # frames hold a little more
                out, mask = out[a - first:b - first], mask[a - first:b - first]
                phys = None if phys is None else phys[a - first:b - first]
            first = a
        signals.append(Signal(label=spec.description,
                              sample_rate=p.master.frame_frequency * k, digital=out,
                              scale=1.0 / spec.gain, offset=-spec.baseline / spec.gain,
                              units=spec.units, invalid_value=None,
                              invalid_mask=mask if mask.any() else None,
                              supplied_physical=phys, first_sample=first))
    record_extras = extras(p.master, [None] * len(p.spf), p.layout)
    record_extras["segments"] = seg_info
    if part.seconds is not None:
        record_extras["window"] = part.seconds
    return Record(name=p.master.record_name, format="wfdb", format_detail=p.detail,
                  signals=signals, start_time=p.master.start_time,
                  metadata=comment_metadata(p.master.comments), warnings=files.ctx.warnings,
                  extras=record_extras)


def multi_info(master: WfdbHeader, lookup: HeaderLookup, files: RecordFiles) -> RecordInfo:
    """The record's facts from its headers (and its segments' signal files' sizes)."""
    p = plan(master, lookup, files)
    for seg, h in p.segments:
        if h is not None and not h.is_layout and seg.frames:
            frames_present(h, files.for_segment(files.pool[seg.name + ".hea"]))
    if p.variable:
        dtype = "int32"
    else:
        wide = any(s.fmt in WIDE for _, h in p.segments if h is not None for s in h.signals)
        dtype = "int32" if wide else "int16"
    fs = master.frame_frequency
    signals = tuple(SignalInfo(spec.description, fs * k, p.total * k, spec.units, dtype)
                    for spec, k in zip(p.layout.signals, p.spf))
    return RecordInfo(master.record_name, "wfdb", p.detail, signals, master.start_time,
                      warnings=tuple(files.ctx.warnings))
