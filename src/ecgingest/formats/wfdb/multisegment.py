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
    p = plan(master, lookup, files)
    record = _variable(p, files, arena) if p.variable else _fixed(p, files, arena)
    request = files.ctx.request
    return record if request is None else request.apply(record)


def _part(dec: Decoded, k: int, length: int, seg: WfdbSegmentSpec, files: RecordFiles
          ) -> np.ndarray:
    part = dec.digital[k]
    if len(part) != length:  # the frame count was applied to the header: guard it
        raise files.ctx.error(CorruptDataError, f"segment {seg.name!r} decoded to {len(part)} "
                              f"samples where {length} were expected")
    return part


def _fixed(p: Plan, files: RecordFiles, arena: Arena | None) -> Record:
    ctx = files.ctx
    master, spf, total = p.master, p.spf, p.total
    wide = any(s.fmt in WIDE for _, h in p.segments if h is not None for s in h.signals)
    dtype = np.int32 if wide else np.int16
    out_bytes = total * sum(spf) * ((4 if wide else 2) + 1)  # digital and mask
    check_plausible(f"multi-segment record {master.record_name!r}", out_bytes,
                    _data_bytes(p, files), total, ctx)
    ctx.reserve_output(out_bytes, f"multi-segment record {master.record_name!r}")
    digital = [np.empty(total * k, dtype=dtype) for k in spf]
    masks = [np.zeros(total * k, dtype=bool) for k in spf]
    segments = _Segments(files, arena)
    pos = 0
    seg_info: list[dict[str, Any]] = []
    for seg, h in p.segments:
        if h is None or seg.frames == 0:
            for i, k in enumerate(spf):
                a, b = pos * k, (pos + seg.frames) * k
                digital[i][a:b] = 0
                masks[i][a:b] = True
            pos += seg.frames
            seg_info.append({"name": seg.name, "frames": seg.frames})
            continue
        dec = segments.decode(seg, h)
        for i, k in enumerate(spf):
            a, b = pos * k, (pos + seg.frames) * k
            part = _part(dec, i, b - a, seg, files)
            digital[i][a:b] = part
            code = dec.invalid_value[i]
            if code is not None:
                masks[i][a:b] |= part == code
            mask = dec.invalid_mask[i]
            if mask is not None:
                masks[i][a:b] |= mask
        seg_info.append({"name": h.record_name, "frames": seg.frames,
                         "extras": extras(h, dec.checksums)})
        pos += seg.frames
    return _record(p, digital, masks, [None] * len(spf), seg_info, files)


def _variable(p: Plan, files: RecordFiles, arena: Arena | None) -> Record:
    ctx = files.ctx
    master, spf, total, layout = p.master, p.spf, p.total, p.layout
    out_specs = layout.signals
    index = {s.description: i for i, s in enumerate(out_specs)}
    check_plausible(f"multi-segment record {master.record_name!r}", total * sum(spf) * 2,
                    _data_bytes(p, files), total, ctx)
    # int32 digital, float64 physical and a mask per sample
    ctx.reserve_output(total * sum(spf) * 13, f"multi-segment record {master.record_name!r}")
    digital = [np.zeros(total * k, dtype=np.int32) for k in spf]
    physical = [np.full(total * k, np.nan) for k in spf]
    masks = [np.ones(total * k, dtype=bool) for k in spf]
    rescaled = [False] * len(spf)
    segments = _Segments(files, arena)
    pos = 0
    seg_info: list[dict[str, Any]] = [{"name": layout.record_name, "frames": 0, "layout": True}]
    for seg, h in p.segments[1:]:
        if h is None or seg.frames == 0:
            seg_info.append({"name": seg.name, "frames": seg.frames})
            pos += seg.frames
            continue
        dec = segments.decode(seg, h)
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
            a, b = pos * spf[i], (pos + seg.frames) * spf[i]
            part = _part(dec, k, b - a, seg, files).astype(np.int64)
            bad = np.zeros(len(part), dtype=bool)
            if dec.invalid_value[k] is not None:
                bad |= part == dec.invalid_value[k]
            mask = dec.invalid_mask[k]
            if mask is not None:
                bad |= mask
            lay = out_specs[i]
            phys = (part - spec.baseline) / spec.gain
            phys[bad] = np.nan
            physical[i][a:b] = phys
            if spec.gain != lay.gain or spec.baseline != lay.baseline:
                rescaled[i] = True
                ratio = lay.gain / spec.gain
                # the C library's rescaling to the layout (round half up)
                conv = np.floor(part * ratio + lay.baseline - spec.baseline * ratio + 0.5)
                conv = np.clip(conv, -(2**31) + 1, 2**31 - 1)
                digital[i][a:b] = conv.astype(np.int32)
            else:
                digital[i][a:b] = part
            digital[i][a:b][bad] = 0
            masks[i][a:b] = bad
        seg_info.append({"name": h.record_name, "frames": seg.frames,
                         "extras": extras(h, dec.checksums)})
        pos += seg.frames
    return _record(p, digital, masks, [ph if r else None for ph, r in zip(physical, rescaled)],
                   seg_info, files)


def _record(p: Plan, digital: list[np.ndarray], masks: list[np.ndarray],
            physical: list[np.ndarray | None], seg_info: list[dict[str, Any]],
            files: RecordFiles) -> Record:
    """The merged record: the layout's signals, invalid where a mask says so."""
    signals = [
        Signal(label=spec.description, sample_rate=p.master.frame_frequency * k,
               digital=digital[i], scale=1.0 / spec.gain, offset=-spec.baseline / spec.gain,
               units=spec.units, invalid_value=None,
               invalid_mask=masks[i] if masks[i].any() else None,
               supplied_physical=physical[i])
        for i, (spec, k) in enumerate(zip(p.layout.signals, p.spf))]
    record_extras = extras(p.master, [None] * len(p.spf), p.layout)
    record_extras["segments"] = seg_info
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
