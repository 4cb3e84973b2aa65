"""A single-segment WFDB record: its header and decoded signals as a Record or RecordInfo."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ...record import Metadata, Record, RecordInfo, Signal, SignalInfo, new_signals
from .header import WIDE, WfdbHeader
from .signals import RecordFiles, decode_signals, frames_present

if TYPE_CHECKING:
    from ..._memory import Arena
    from .._base import ReadRequest

__all__ = ["single_record", "single_info", "extras", "comment_metadata"]


def single_record(hdr: WfdbHeader, files: RecordFiles, arena: Arena | None) -> Record:
    request = files.ctx.request
    if request is not None:
        part = _part(hdr, files, arena, request)
        if part is not None:
            return part
    dec = decode_signals(hdr, files, arena)
    fs = hdr.frame_frequency
    specs = hdr.signals
    signals = cast("list[Signal]", new_signals(
        [spec.description for spec in specs],
        [fs * spec.samples_per_frame for spec in specs], dec.digital,
        [1.0 / spec.gain for spec in specs], [-spec.baseline / spec.gain for spec in specs],
        [spec.units for spec in specs], invalid_value=dec.invalid_value,
        invalid_mask=dec.invalid_mask))
    record = Record(name=hdr.record_name, format="wfdb", format_detail="WFDB",
                    signals=signals, start_time=hdr.start_time,
                    metadata=comment_metadata(hdr.comments), warnings=files.ctx.warnings,
                    extras=extras(hdr, dec.checksums))
    return record if request is None else request.apply(record)


def _part(hdr: WfdbHeader, files: RecordFiles, arena: Arena | None,
          request: ReadRequest) -> Record | None:
    """The channels and window asked for, decoding only their groups and frames
    (None when the frame count is known only by decoding FLAC: decode whole, then cut)."""
    specs = hdr.signals
    chosen = request.channel_indices([s.description for s in specs], hdr.record_name)
    fs = hdr.frame_frequency
    nframes, _ = frames_present(hdr, files)
    if nframes is None:
        return None
    if request.windowed:
        ranges = request.sample_ranges([fs * s.samples_per_frame for s in specs],
                                       [nframes * s.samples_per_frame for s in specs],
                                       hdr.record_name)
    else:
        ranges = [(0, nframes * s.samples_per_frame) for s in specs]
    if chosen:
        f0 = min(ranges[i][0] // specs[i].samples_per_frame for i in chosen)
        f1 = max(-(-ranges[i][1] // specs[i].samples_per_frame) for i in chosen)
    else:
        f0 = f1 = 0
    dec = decode_signals(hdr, files, arena, window=(f0, max(f1, f0)), wanted=set(chosen))
    signals = []
    for i in chosen:
        spec = specs[i]
        a, b = ranges[i]
        lo = f0 * spec.samples_per_frame
        digital, mask = dec.digital[i], dec.invalid_mask[i]
        if (a, b) != (lo, lo + len(digital)):  # frames hold a little more than the window
            digital = digital[a - lo:b - lo]
            mask = None if mask is None else mask[a - lo:b - lo]
        signals.append(Signal(spec.description, fs * spec.samples_per_frame, digital,
                              1.0 / spec.gain, -spec.baseline / spec.gain, spec.units,
                              dec.invalid_value[i], mask, first_sample=a))
    record_extras = extras(hdr, [None] * len(specs))
    if request.windowed:
        reference = max(fs * s.samples_per_frame for s in specs)
        duration = max(nframes * s.samples_per_frame / (fs * s.samples_per_frame)
                       for s in specs)
        t0, t1 = request.seconds(reference)
        record_extras["window"] = (t0, duration if t1 is None else t1)
    return Record(name=hdr.record_name, format="wfdb", format_detail="WFDB",
                  signals=signals, start_time=hdr.start_time,
                  metadata=comment_metadata(hdr.comments), warnings=files.ctx.warnings,
                  extras=record_extras)


def single_info(hdr: WfdbHeader, files: RecordFiles) -> RecordInfo:
    """The record's facts from its header and the sizes of its signal files."""
    nframes, _ = frames_present(hdr, files, read_flac_head=True)
    if nframes is None:
        files.ctx.warn("the FLAC stream does not announce its length; sample counts unknown "
                       "without decoding (shown as 0)")
        nframes = 0
    fs = hdr.frame_frequency
    signals = tuple(
        SignalInfo(spec.description, fs * spec.samples_per_frame,
                   nframes * spec.samples_per_frame, spec.units,
                   "int32" if spec.fmt in WIDE else "int16")
        for spec in hdr.signals)
    return RecordInfo(hdr.record_name, "wfdb", "WFDB", signals, hdr.start_time,
                      metadata=comment_metadata(hdr.comments),
                      warnings=tuple(files.ctx.warnings))


def extras(hdr: WfdbHeader, checksums: Sequence[int | None],
           signals_from: WfdbHeader | None = None) -> dict[str, Any]:
    """The header's readings that have no place in the record model (``Record.extras``)."""
    src = signals_from or hdr
    return {
        "comments": list(hdr.comments),
        "info": list(hdr.info),
        "frame_frequency": hdr.frame_frequency,
        "counter_frequency": hdr.counter_frequency,
        "base_counter": hdr.base_counter,
        "n_frames": hdr.n_frames,
        "signal_specs": [  # unpacked once: cheaper than 15 attribute reads per signal
            {
                "file_name": file_name, "format": fmt, "samples_per_frame": spf,
                "skew": skew, "byte_offset": offset, "gain": gain, "baseline": baseline,
                "adc_resolution": adcres, "adc_zero": adczero, "initial_value": initval,
                "checksum": checksum, "computed_checksum": None if c is None else c % 65536,
                "block_size": block, "description": description, "uncalibrated": uncal,
            }
            for (file_name, fmt, spf, skew, offset, gain, baseline, _units, adcres, adczero,
                 initval, checksum, block, description, uncal), c
            in zip(src.signals, list(checksums) + [None] * len(src.signals))
        ],
    }


_AGE = re.compile(r"<?\bage>?\s*:\s*(\d{1,3})\b", re.I)
_SEX = re.compile(r"<?\b(?:sex|gender)>?\s*:\s*([A-Za-z]+)", re.I)
_SEXES = {"m": "MALE", "male": "MALE", "f": "FEMALE", "female": "FEMALE"}


def comment_metadata(comments: Sequence[str]) -> Metadata:
    """Patient age and sex from PhysioNet-style header comments.

    PTB writes ``age: 81`` and ``sex: female`` on lines of their own, other
    databases ``<age>: 60 <sex>: F`` on one line or ``Age: 74`` / ``Sex: Male``;
    the first of each is taken. Ages over 150 and unknown sexes (``?``) stay
    unknown.
    """
    age: int | None = None
    sex: str | None = None
    for comment in comments:
        if age is None:
            m = _AGE.search(comment)
            if m is not None and int(m.group(1)) <= 150:
                age = int(m.group(1))
        if sex is None:
            m = _SEX.search(comment)
            if m is not None:
                sex = _SEXES.get(m.group(1).lower())
    if age is None and sex is None:
        return Metadata()
    return Metadata(patient_age=age, patient_gender=sex)
