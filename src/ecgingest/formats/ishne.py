"""ISHNE Holter ECG (``ISHNE1.0``) and its beat annotation files (``ANN  1.0``).

The 522-byte header and the variable block are parsed here; the interleaved
int16 ECG block is split into one row per lead by ``ecgingest._ext.ishne``
with the GIL released. Every size the header declares is checked against the
bytes present before anything is allocated.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .._ext import ishne as _k
from .._ext.scp import crc16 as _crc16
from .._memory import aligned_empty
from ..errors import ChecksumError, EcgIngestError, HeaderError, TruncatedError
from ..record import (
    Annotation,
    Metadata,
    Record,
    RecordInfo,
    Signal,
    SignalInfo,
    new_annotations,
    new_signal,
)
from ._base import DecodeContext, Probe, SingleFileFormat

__all__ = ["FORMAT", "MAGIC", "ANNOTATION_MAGIC", "HEADER_SIZE", "LEAD_NAMES",
           "PACEMAKER_CODES", "IshneHeader", "read_header", "decode", "decode_annotations",
           "sniff"]

MAGIC = b"ISHNE1.0"
ANNOTATION_MAGIC = b"ANN  1.0"
HEADER_SIZE = 522
UNKNOWN = -9
"""What ISHNE writes for an unknown number or date part."""

#: Lead names by ISHNE lead specification code (0 and 1 name no lead).
LEAD_NAMES: dict[int, str] = {
    0: "unknown", 1: "bipolar", 2: "X", 3: "Y", 4: "Z", 5: "I", 6: "II", 7: "III",
    8: "aVR", 9: "aVL", 10: "aVF", 11: "V1", 12: "V2", 13: "V3", 14: "V4", 15: "V5",
    16: "V6", 17: "ES", 18: "AS", 19: "AI", 20: "S", 21: "A", 22: "I (Frank)",
}

PACEMAKER_CODES: dict[int, str] = {
    0: "none", 1: "unknown type", 2: "single chamber unipolar", 3: "dual chamber unipolar",
    4: "single chamber bipolar", 5: "dual chamber bipolar",
}

_SEX = {1: "MALE", 2: "FEMALE"}
_RACE = {0: "unknown", 1: "white", 2: "black", 3: "oriental"}

# offsets 10..522: sizes, names, dates, lead tables, rate, texts (ISHNE.md byte layout)
_FIXED = struct.Struct("<iiiih40s40s20shh3h3h3h3hh12h12h12hh40sh80s80s88s")
assert _FIXED.size == HEADER_SIZE - 10


@dataclass(frozen=True)
class IshneHeader:
    """The fixed header of an ISHNE ECG or annotation file, as stored."""

    magic: bytes
    crc: int
    variable_block_size: int
    samples_per_lead: int
    variable_block_offset: int
    data_offset: int
    version: int
    first_name: str
    last_name: str
    subject_id: str
    sex: int
    race: int
    birth_date: tuple[int, int, int]
    """day, month, year (−9 where unknown)"""
    recording_date: tuple[int, int, int]
    file_date: tuple[int, int, int]
    start_time: tuple[int, int, int]
    """hour, minute, second"""
    leads: int
    lead_codes: tuple[int, ...]
    lead_quality: tuple[int, ...]
    resolution_nv: tuple[int, ...]
    pacemaker: int
    recorder_type: str
    sample_rate: int
    proprietary: str
    copyright: str


def _text(raw: bytes) -> str:
    """A NUL-padded text field (Latin-1: the standard names no encoding)."""
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


# ---------------------------------------------------------------- detection

def sniff(probe: Probe) -> bool:
    """The 8-byte ``ISHNE1.0`` magic (damaged files are claimed for a precise error)."""
    return probe.head(8) == MAGIC


# ---------------------------------------------------------------- header

def read_header(data: bytes | memoryview, ctx: DecodeContext,
                magic: bytes = MAGIC) -> IshneHeader:
    """The fixed header, checked against the file's length (not the CRC: see decode)."""
    if len(data) < HEADER_SIZE:
        ctx.fail(TruncatedError, f"the file has {len(data)} bytes, fewer than the "
                 f"{HEADER_SIZE}-byte ISHNE header", offset=0)
    head = bytes(data[:HEADER_SIZE])
    if head[:8] != magic:
        ctx.fail(HeaderError, f"magic is {head[:8]!r}, not {magic!r}", offset=0, field="magic")
    (crc,) = struct.unpack_from("<H", head, 8)
    v = _FIXED.unpack_from(head, 10)
    (var_size, samples, var_offset, data_offset, version, first, last, subject, sex, race) = \
        v[:10]
    birth, rec_date, file_date, start = v[10:13], v[13:16], v[16:19], v[19:22]
    nleads = v[22]
    codes, quality, resolution = v[23:35], v[35:47], v[47:59]
    pacemaker, recorder, rate, proprietary, copyright_, _reserved = v[59:65]
    return IshneHeader(
        head[:8], crc, var_size, samples, var_offset, data_offset, version, _text(first),
        _text(last), _text(subject), sex, race, tuple(birth), tuple(rec_date),
        tuple(file_date), tuple(start), nleads, tuple(codes), tuple(quality),
        tuple(resolution), pacemaker, _text(recorder), rate, _text(proprietary),
        _text(copyright_))


def _check_layout(header: IshneHeader, size: int, ctx: DecodeContext) -> None:
    """Variable block and data offsets inside the file and consistent with each other."""
    if header.data_offset < HEADER_SIZE or header.data_offset > size:
        ctx.fail(HeaderError if header.data_offset < HEADER_SIZE else TruncatedError,
                 f"data block offset {header.data_offset} is outside the file "
                 f"({HEADER_SIZE}..{size})", offset=22, field="data block offset")
    if (header.variable_block_size < 0 or header.variable_block_offset != HEADER_SIZE
            or header.variable_block_offset + header.variable_block_size
            != header.data_offset):
        ctx.deviation(f"variable block (offset {header.variable_block_offset}, "
                      f"{header.variable_block_size} bytes) does not end where the data "
                      f"block starts ({header.data_offset}); the data block offset is "
                      "trusted", field="variable block size")


def _variable_block(data: bytes | memoryview, header: IshneHeader) -> str:
    end = header.data_offset
    start = min(max(header.variable_block_offset, HEADER_SIZE), end)
    if header.variable_block_size >= 0:
        end = min(end, start + header.variable_block_size)
    return _text(bytes(data[start:end]))


def _check_crc(data: bytes | memoryview, header: IshneHeader, ctx: DecodeContext) -> None:
    """CRC-16/CCITT-FALSE of bytes 10 up to the data block (tolerant: a warning)."""
    computed = _crc16(np.frombuffer(data, dtype=np.uint8, count=header.data_offset), 10,
                      header.data_offset)
    if computed != header.crc:
        ctx.deviation(f"header CRC is 0x{header.crc:04X} but the header and variable block "
                      f"give 0x{computed:04X}", cls=ChecksumError, offset=8, field="CRC")


def _date(dmy: tuple[int, int, int], what: str, ctx: DecodeContext) -> dt.date | None:
    day, month, year = dmy
    if UNKNOWN in dmy or dmy == (0, 0, 0):
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        ctx.warn(f"{what} {day}/{month}/{year} (day/month/year) is not a date; left unknown")
        return None


def _start(header: IshneHeader, ctx: DecodeContext) -> dt.datetime | dt.time | None:
    hms = header.start_time
    time: dt.time | None = None
    if UNKNOWN not in hms:
        try:
            time = dt.time(*hms)
        except ValueError:
            ctx.warn(f"start time {hms[0]}:{hms[1]}:{hms[2]} is not a time of day; left "
                     "unknown")
    date = _date(header.recording_date, "recording date", ctx)
    if date is None or time is None:
        return time
    return dt.datetime.combine(date, time)


def _labels(codes: Sequence[int], ctx: DecodeContext) -> list[str]:
    names = []
    for i, code in enumerate(codes):
        name = LEAD_NAMES.get(code)
        if name is None:
            ctx.warn(f"lead {i + 1} has lead specification code {code}, which ISHNE does not "
                     "define")
            name = f"code {code}"
        names.append(name)
    # 3-channel Holters often give every lead the same code: number repeated names
    repeated = {n for n in names if names.count(n) > 1}
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in repeated:
            seen[name] = seen.get(name, 0) + 1
            name = f"{name} {seen[name]}"
        out.append(name)
    return out


def _scales(header: IshneHeader, ctx: DecodeContext) -> list[tuple[float, str]]:
    """Per lead (µV per unit, units): unscaled where the resolution is not positive."""
    out = []
    for i, nv in enumerate(header.resolution_nv[:header.leads]):
        if nv <= 0:
            ctx.deviation(f"amplitude resolution of lead {i + 1} is {nv} nV; its values are "
                          "left unscaled", field="amplitude resolution")
            out.append((1.0, ""))
        else:
            out.append((nv / 1000.0, "uV"))
    return out


@dataclass(frozen=True)
class _Plan:
    header: IshneHeader
    frames: int
    labels: list[str]
    scales: list[tuple[float, str]]
    start: dt.datetime | dt.time | None
    metadata: Metadata
    extras: dict[str, Any]


def _plan(data: bytes | memoryview, ctx: DecodeContext) -> _Plan:
    """Everything but the samples: the header checked against the bytes present."""
    header = read_header(data, ctx)
    size = len(data)
    if not 1 <= header.leads <= 12:
        ctx.fail(HeaderError, f"number of leads is {header.leads}; ISHNE allows 1 to 12",
                 offset=156, field="number of leads")
    if header.sample_rate <= 0:
        ctx.fail(HeaderError, f"sampling rate is {header.sample_rate} Hz", offset=272,
                 field="sampling rate")
    _check_layout(header, size, ctx)
    _check_crc(data, header, ctx)
    frame_bytes = 2 * header.leads
    present = (size - header.data_offset) // frame_bytes
    frames = header.samples_per_lead
    if frames < 0:
        ctx.fail(HeaderError, f"samples per lead is {frames}", offset=14,
                 field="samples per lead")
    if frames > present:
        ctx.deviation(f"the header announces {frames} samples per lead but the data block "
                      f"holds {present}; read those", cls=TruncatedError, offset=14,
                      field="samples per lead")
        frames = present
    elif present > frames or (size - header.data_offset) % frame_bytes:
        extra = size - header.data_offset - frames * frame_bytes
        ctx.warn(f"{extra} bytes after the {frames} samples per lead the header announces are "
                 "ignored")
    if header.version != 1 and header.version != UNKNOWN:
        ctx.warn(f"file version is {header.version}; read as ISHNE 1.0")
    labels = _labels(header.lead_codes[:header.leads], ctx)
    scales = _scales(header, ctx)
    start = _start(header, ctx)
    metadata = Metadata(
        patient_id=header.subject_id or None,
        patient_first_name=header.first_name or None,
        patient_last_name=header.last_name or None,
        patient_gender=_SEX.get(header.sex),
        patient_birth_date=_date(header.birth_date, "birth date", ctx),
        device_id=header.recorder_type or None)
    extras: dict[str, Any] = {
        "pacemaker": PACEMAKER_CODES.get(header.pacemaker, f"code {header.pacemaker}"),
        "pacemaker_code": header.pacemaker,
        "race": _RACE.get(header.race, f"code {header.race}"),
        "lead_codes": header.lead_codes[:header.leads],
        "lead_quality": header.lead_quality[:header.leads],
        "amplitude_resolution_nv": header.resolution_nv[:header.leads],
        "file_date": _date(header.file_date, "file date", ctx),
        "file_version": header.version,
        "variable_block": _variable_block(data, header),
        "proprietary": header.proprietary,
        "copyright": header.copyright,
    }
    return _Plan(header, frames, labels, scales, start, metadata, extras)


# ---------------------------------------------------------------- annotations

def decode_annotations(data: bytes | memoryview, sample_rate: float,
                       ctx: DecodeContext) -> tuple[list[Annotation], dict[str, Any]]:
    """An ``.ann`` file: one annotation per beat (its label as text), and the beats as
    arrays (``samples``, ``labels``, ``internal``) for the record's extras."""
    header = read_header(data, ctx, ANNOTATION_MAGIC)
    _check_layout(header, len(data), ctx)
    if header.crc:  # writers leave it 0; a stored value is checked
        _check_crc(data, header, ctx)
    start = header.data_offset
    if len(data) - start < 4:
        ctx.fail(TruncatedError, "the annotation file ends before its first sample number",
                 offset=start, field="first sample")
    (first,) = struct.unpack_from("<I", data, start)
    body = np.frombuffer(data, dtype=np.uint8, offset=start + 4,
                         count=(len(data) - start - 4) // 4 * 4)
    if (len(data) - start - 4) % 4:
        ctx.warn(f"{(len(data) - start - 4) % 4} bytes after the last whole annotation are "
                 "ignored")
    count = body.size // 4
    ctx.check_count(count, "max_annotations", "beat annotations")
    rows = body.reshape(count, 4)
    gaps = rows[:, 2:4].copy().view("<u2").reshape(count).astype(np.int64)
    samples = first + np.cumsum(gaps)
    labels = rows[:, 0].tobytes().decode("latin-1")
    internal = rows[:, 1].tobytes().decode("latin-1")
    onsets = (samples / float(sample_rate)).tolist()
    annotations = new_annotations(onsets, labels)
    samples.flags.writeable = False
    beats = {"samples": samples, "labels": labels, "internal": internal,
             "first_sample": first}
    return annotations, beats


# ---------------------------------------------------------------- decoding

def decode(data: bytes | memoryview, ctx: DecodeContext,
           annotation_data: bytes | memoryview | None = None) -> Record:
    """One record: a signal per lead (µV), beats from ``annotation_data`` when given, else
    from the upload's annotation file beside it (``ctx.companions``)."""
    try:
        return _decode(data, ctx, annotation_data)
    except EcgIngestError as exc:
        # without its traceback: those frames hold NumPy views of the bytes, and a
        # file on disk cannot be unmapped while one is alive
        raise exc.with_traceback(None) from None


def _decode(data: bytes | memoryview, ctx: DecodeContext,
            annotation_data: bytes | memoryview | None) -> Record:
    plan = _plan(data, ctx)
    header = plan.header
    frames, leads = plan.frames, header.leads
    ctx.reserve_output(frames * leads * 2, "ISHNE samples")
    block = aligned_empty(frames * leads, np.int16).reshape(leads, frames)
    status = _k.deinterleave_i16(np.frombuffer(data, dtype=np.uint8), header.data_offset,
                                 frames, leads, block)
    ctx.check_status(status, "ISHNE data block", offset=header.data_offset)
    rate = float(header.sample_rate)
    signals = cast("list[Signal]", [
        new_signal(label, rate, block[i], scale, 0.0, units)
        for i, (label, (scale, units)) in enumerate(zip(plan.labels, plan.scales))])
    annotations: list[Annotation] = []
    extras = plan.extras
    sources: tuple[str, ...] = (ctx.path or ctx.name,)
    companion = next(iter(ctx.companions.values()), None)
    if annotation_data is None and companion is not None:
        with companion.view(prefault=False) as view:
            annotation_data = bytes(view)
    if annotation_data is not None:
        try:
            annotations, beats = decode_annotations(annotation_data, rate, ctx)
        except EcgIngestError as exc:
            if companion is None or ctx.strict:
                raise
            # a damaged file beside the ECG costs its beats, not the samples
            ctx.warn(f"the beat annotation file {companion.name!r} cannot be read, the "
                     f"record comes without its beats: {exc}")
        else:
            extras = {**extras, "beats": beats}
            if companion is not None:
                sources += (companion.path,)
    return Record(name=ctx.name, format="ishne", format_detail=f"ISHNE 1.0 Holter, "
                  f"{leads} leads", signals=signals, start_time=plan.start,
                  metadata=plan.metadata, annotations=annotations, sources=sources,
                  warnings=list(ctx.warnings), extras=extras)


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts: reads the header and variable block, not the samples."""
    try:
        plan = _plan(data, ctx)
    except EcgIngestError as exc:
        raise exc.with_traceback(None) from None  # as in decode
    signals = tuple(SignalInfo(label, float(plan.header.sample_rate), plan.frames, units,
                               "int16") for label, (_, units) in zip(plan.labels, plan.scales))
    return RecordInfo(ctx.name, "ishne", f"ISHNE 1.0 Holter, {plan.header.leads} leads",
                      signals, plan.start, plan.metadata, 0,
                      (ctx.path,) if ctx.path else (), tuple(ctx.warnings))


class IshneFormat(SingleFileFormat):
    """ISHNE 1.0 Holter ECG files, recognised by their magic."""

    name = "ishne"
    prefault = False  # the de-interleave reads the data block once, in order
    marker = (0, MAGIC[:1])

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def companions(self, name: str) -> tuple[str, ...]:
        """The beat annotation file of the same name (``.ann``, either case)."""
        stem = name.rpartition(".")[0] or name
        return (f"{stem}.ann", f"{stem}.ANN")

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)

    def skip_reason(self, probe: Probe) -> str | None:
        """Why a file ISHNE recognises is not a record of its own (an annotation file)."""
        if probe.head(8) == ANNOTATION_MAGIC:
            return ("ISHNE annotation file without its ECG: upload the ECG file of the "
                    "same name beside it (same directory) to read its beats")
        return None


FORMAT = IshneFormat()
