"""MFER (Medical waveform Format Encoding Rules, ISO 22077-1 / ISO/TS 11073-92001).

The tag-length-value items are scanned by ``ecgingest._ext.mfer`` without the
GIL, every length checked against the bytes present; their values are read
here. Top-level definitions apply to every channel and a channel's ``ATT``
block overrides them for that channel. Each ``WAV`` frame is split into
channels with strided NumPy copies, one per channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from .._ext import mfer as _k
from ..errors import (
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..record import Metadata, Record, RecordInfo, Signal, SignalInfo, new_signal
from ._base import STATUS_BAD_VALUE, DecodeContext, Probe, SingleFileFormat
from .scp import LEAD_NAMES as _SCP_LEAD_NAMES

__all__ = ["FORMAT", "TAGS", "DATA_TYPES", "LEAD_NAMES", "ChannelAttributes", "sniff",
           "decode", "inspect", "lead_name"]

_FMT = "mfer"

#: Tag numbers of the items this reader interprets.
TAGS: dict[str, int] = {
    "BLE": 0x01, "VER": 0x02, "TXC": 0x03, "BLK": 0x04, "CHN": 0x05, "SEQ": 0x06,
    "PNT": 0x07, "WFM": 0x08, "LDN": 0x09, "DTP": 0x0A, "IVL": 0x0B, "SEN": 0x0C,
    "OFF": 0x0D, "NUL": 0x12, "NTE": 0x16, "MAN": 0x17, "WAV": 0x1E, "ATT": 0x3F,
    "PRE": 0x40, "EVT": 0x41, "PNM": 0x81, "PID": 0x82, "AGE": 0x83, "SEX": 0x84,
    "TIM": 0x85,
}
_T = TAGS

#: DTP code -> NumPy kind and size of a sample (byte order from BLE).
DATA_TYPES: dict[int, tuple[str, int]] = {
    0: ("i", 2), 1: ("u", 2), 2: ("i", 4), 3: ("u", 1), 4: ("u", 2), 5: ("i", 1),
    6: ("u", 4), 7: ("f", 4), 8: ("f", 8),
}
_AHA_DIFFERENCE = 9

#: Lead and channel names of MFER's own codes (not SCP-ECG's), from the LDN table.
LEAD_NAMES: dict[int, str] = {
    143: "BP", 160: "Resp (impedance)", 175: "SpO2", 4160: "Status",
    4161: "Body position", 4162: "Body movement", 4163: "Resp", 4166: "ECG1",
    4167: "ECG2", 4168: "ECG3", 4169: "ECG4",
}
_SCP_CODES = 128  # codes below this follow the SCP-ECG lead numbering

_SEN_UNITS = {0: ("uV", 6), 1: ("mmHg", 0), 2: ("Pa", 0), 3: ("cmH2O", 0)}
"""SEN unit code -> (units, power of ten that converts to them)."""

_WAVEFORM_TYPES = {1: "standard 12-lead ECG", 2: "long-term ECG", 3: "vector ECG",
                   4: "stress ECG", 5: "intracardiac ECG", 9: "dominant beat",
                   20: "long-term monitoring"}
_SEX = {1: "MALE", 2: "FEMALE", 3: "UNDIFFERENTIATED"}
_MAX_CHANNELS = 4096
_CHUNK_ROWS = 256


# ---------------------------------------------------------------- detection

_KNOWN_TAGS = frozenset(TAGS.values())
_CHAIN = 5  # items a preamble-less file must open with


def sniff(probe: Probe) -> bool:
    """A 32-byte ``PRE`` preamble item (``40 20``) whose text starts ``MFR`` or ``MFER``
    (after spaces), as devices write and BioSig requires; or, without a preamble, a
    ``BLE`` item followed by a chain of items with tags MFER defines and lengths that
    fit (a WFDB signal file or other binary data does not look like that)."""
    head = probe.head(512)
    if len(head) >= 8 and head[0] == _T["PRE"] and head[1] == 0x20:
        return head[2:10].lstrip(b" ").startswith((b"MFR", b"MFER"))
    if head[:2] != b"\x01\x01" or len(head) < 3 or head[2] not in (0, 1):
        return False
    position, items = 0, 0
    while items < _CHAIN:
        while position < len(head) and head[position] == 0:  # padding
            position += 1
        if position + 2 > len(head) or head[position] not in _KNOWN_TAGS:
            return False
        tag, position = head[position], position + 1
        if tag == _T["ATT"]:
            while position < len(head) and head[position] & 0x80:
                position += 1
            position += 1
        if position >= len(head):
            return False
        form = head[position]
        position += 1
        if form < 0x80:
            length = form
        elif 0x81 <= form <= 0x84:
            length = int.from_bytes(head[position:position + form - 0x80], "big")
            position += form - 0x80
        elif form == 0x80 and tag == _T["ATT"]:
            return items + 1 >= 2  # indefinite content: trust a BLE and an ATT
        else:
            return False
        items += 1
        if tag == _T["WAV"]:
            return items >= 3  # samples follow: the definitions before it suffice
        position += length
        if position > len(head):
            return False
    return True


def lead_name(code: int, text: str | None = None) -> str:
    """The channel's name: SCP-ECG numbering for ECG leads, MFER's own codes above."""
    if code in LEAD_NAMES:
        return LEAD_NAMES[code]
    if 0 < code < _SCP_CODES and code < len(_SCP_LEAD_NAMES):
        return _SCP_LEAD_NAMES[code]
    return text or f"code {code}"


# ---------------------------------------------------------------- items

def _items(buffer: np.ndarray, start: int, end: int, ctx: DecodeContext,
           what: str) -> Iterator[tuple[int, int, int, int, int]]:
    """The items of ``buffer[start:end]`` in order: (tag, channel, value offset, value
    length, item offset), scanned a chunk at a time so memory stays bounded."""
    position, seen = start, 0
    out = np.empty((_CHUNK_ROWS, _k.COLUMNS), dtype=np.int64)
    while True:
        status, rows, position, finished = _k.scan_items(buffer, position, end, out)
        seen += rows
        ctx.check_count(seen, "max_annotations", f"{what} items")
        yield from out[:rows].tolist()
        if status:
            if status == STATUS_BAD_VALUE:
                ctx.fail(CorruptDataError, f"{what}: the item at byte {position} has a length "
                         "form or channel number MFER does not define", offset=position)
            ctx.check_status(status, f"{what}: the item at byte {position}", offset=position)
        if finished:
            return


@dataclass(frozen=True)
class ChannelAttributes:
    """What applies to one channel: top-level definitions, overridden by its ``ATT``."""

    block: int = 1
    data_type: int = 0
    interval: tuple[int, int, int] | None = None
    """IVL as (unit, exponent, mantissa)."""
    sensitivity: tuple[int, int, int] | None = None
    """SEN as (unit, exponent, mantissa)."""
    offset: int | float = 0
    null: int | float | None = None
    lead: int | None = None
    offset_raw: bytes | None = field(default=None, repr=False)
    null_raw: bytes | None = field(default=None, repr=False)
    """OFF and NUL as stored: coded in the data type finally in force for the channel."""
    lead_text: str | None = None


@dataclass
class _State:
    """Definitions in force while the items are read in order."""

    big_endian: bool = True
    codec: str = "latin-1"
    channels: int = 1
    sequences: int = 1
    common: ChannelAttributes = field(default_factory=ChannelAttributes)
    raw_overrides: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)


def _uint(raw: bytes, big: bool) -> int:
    return int.from_bytes(raw, "big" if big else "little", signed=False)


def _int(raw: bytes, big: bool) -> int:
    return int.from_bytes(raw, "big" if big else "little", signed=True)


def _scaled(raw: bytes, big: bool, what: str, ctx: DecodeContext) -> tuple[int, int, int]:
    """IVL / SEN: unit code, signed exponent, mantissa (BLE order)."""
    if not 3 <= len(raw) <= 10:
        ctx.fail(HeaderError, f"{what} has {len(raw)} bytes; it holds a unit, an exponent and "
                 "a mantissa of 1 to 8 bytes", field=what)
    exponent = raw[1] - 256 if raw[1] >= 128 else raw[1]
    return raw[0], exponent, _int(raw[2:], big)


def _typed(raw: bytes, data_type: int, big: bool) -> int | float:
    """OFF / NUL: one value coded in the channel's data type."""
    kind, size = DATA_TYPES.get(data_type, ("i", 2))
    if len(raw) < size:
        # some writers use fewer bytes than the data type: read them as an integer
        return _int(raw, big) if kind == "i" else _uint(raw, big)
    value = np.frombuffer(raw[:size], dtype=f"{'>' if big else '<'}{kind}{size}")[0]
    return float(value) if kind == "f" else int(value)


def _codec(raw: bytes) -> str:
    name = raw.split(b"\0", 1)[0].decode("ascii", "replace").upper()
    for key, codec in (("UTF-16LE", "utf-16-le"), ("UTF-16BE", "utf-16-be"),
                       ("UTF-16", "utf-16"), ("UTF-8", "utf-8"), ("2022", "iso2022_jp"),
                       ("SHIFT", "shift_jis"), ("SJIS", "shift_jis"), ("EUC", "euc_jp"),
                       ("JIS", "iso2022_jp")):
        if key in name:
            return codec
    return "latin-1"


def _text(raw: bytes, state: _State) -> str:
    try:
        text = raw.decode(state.codec)
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.split("\0", 1)[0].strip()


def _apply(attributes: ChannelAttributes, tag: int, raw: bytes, state: _State,
           ctx: DecodeContext) -> ChannelAttributes:
    """A definition item applied to a channel's (or the common) attributes."""
    big = state.big_endian
    if tag == _T["BLK"]:
        return replace(attributes, block=_uint(raw, big))
    if tag == _T["DTP"]:
        return replace(attributes, data_type=raw[0] if raw else 0)
    if tag == _T["IVL"]:
        return replace(attributes, interval=_scaled(raw, big, "IVL", ctx))
    if tag == _T["SEN"]:
        return replace(attributes, sensitivity=_scaled(raw, big, "SEN", ctx))
    if tag == _T["OFF"]:
        return replace(attributes, offset_raw=raw)
    if tag == _T["NUL"]:
        return replace(attributes, null_raw=raw)
    if tag == _T["LDN"]:
        if not raw:
            return attributes
        code = raw[0] if len(raw) == 1 else _uint(raw[:2], big)
        text = _text(raw[2:], state) if len(raw) > 2 else None
        return replace(attributes, lead=code, lead_text=text or None)
    return attributes


def _resolved(attributes: ChannelAttributes, big: bool) -> ChannelAttributes:
    """OFF and NUL decoded in the channel's final data type."""
    if attributes.data_type not in DATA_TYPES:
        return attributes  # refused with its reason in _check_frames
    return replace(
        attributes,
        offset=0 if attributes.offset_raw is None else _typed(
            attributes.offset_raw, attributes.data_type, big),
        null=None if attributes.null_raw is None else _typed(
            attributes.null_raw, attributes.data_type, big))


_CHANNEL_TAGS = frozenset(_T[k] for k in ("BLK", "DTP", "IVL", "SEN", "OFF", "NUL", "LDN"))


# ---------------------------------------------------------------- channels and frames

def _rate(attributes: ChannelAttributes, channel: int, ctx: DecodeContext) -> float:
    if attributes.interval is None:
        ctx.fail(HeaderError, f"channel {channel + 1} has no sampling interval (IVL)",
                 field="IVL")
    unit, exponent, mantissa = attributes.interval
    if mantissa <= 0 or unit not in (0, 1):
        ctx.fail(HeaderError if mantissa <= 0 else UnsupportedFeatureError,
                 f"channel {channel + 1}: IVL unit {unit}, mantissa {mantissa} is not a "
                 "positive rate (unit 0) or interval (unit 1)", field="IVL")
    power = 10.0 ** abs(exponent)
    value = mantissa * power if exponent >= 0 else mantissa / power
    return value if unit == 0 else 1.0 / value


def _scale(attributes: ChannelAttributes, channel: int,
           ctx: DecodeContext) -> tuple[float, str]:
    """(multiplier, units) of a channel: V become µV; no SEN leaves values unscaled."""
    if attributes.sensitivity is None:
        return 1.0, ""
    unit, exponent, mantissa = attributes.sensitivity
    units, shift = _SEN_UNITS.get(unit, (f"MFER unit {unit}", 0))
    power = exponent + shift
    magnitude = 10.0 ** abs(power)
    return (mantissa * magnitude if power >= 0 else mantissa / magnitude), units


@dataclass(frozen=True)
class _Frame:
    """One WAV item: where its bytes are and the layout in force for it."""

    start: int
    length: int
    sequences: int
    channels: tuple[ChannelAttributes, ...]
    pointer: int | None


def _layout(frame: _Frame, big: bool) -> tuple[list[np.dtype], list[int], int]:
    dtypes, starts, position = [], [], 0
    for attributes in frame.channels:
        kind, size = DATA_TYPES[attributes.data_type]
        dtypes.append(np.dtype(f"{'>' if big and size > 1 else '<'}{kind}{size}"))
        starts.append(position)
        position += attributes.block * size
    return dtypes, starts, position


def _frame_sequences(frame: _Frame, stride: int, index: int, ctx: DecodeContext) -> int:
    """Whole sequences the WAV item holds (all it announces, or fewer, tolerated)."""
    if stride == 0:
        return 0
    present = frame.length // stride
    if present < frame.sequences:
        ctx.deviation(f"waveform frame {index + 1} holds {present} of the {frame.sequences} "
                      "sequences its definitions announce; read those",
                      cls=TruncatedError, offset=frame.start, field="WAV")
        return present
    if frame.length != frame.sequences * stride:
        ctx.warn(f"waveform frame {index + 1} has {frame.length - frame.sequences * stride} "
                 "bytes after its sequences; ignored")
    return frame.sequences


@dataclass(frozen=True)
class _Plan:
    frames: list[_Frame]
    channels: tuple[ChannelAttributes, ...]
    big_endian: bool
    counts: list[int]
    """Samples per channel over all frames."""
    sequences: list[int]
    """Whole sequences read from each frame."""
    metadata: Metadata
    start: dt.datetime | None
    extras: dict[str, Any]


def _plan(data: bytes | memoryview, ctx: DecodeContext) -> _Plan:
    buffer = np.frombuffer(data, dtype=np.uint8)
    state = _State()
    frames: list[_Frame] = []
    pointer: int | None = None
    fields: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    start: dt.datetime | None = None
    for tag, channel, value, length, offset in _items(buffer, 0, len(buffer), ctx,
                                                      "MFER file"):
        raw = bytes(data[value:value + length]) if tag != _T["WAV"] else b""
        if tag == _T["BLE"]:
            state.big_endian = not (raw and raw[0] == 1)
        elif tag == _T["TXC"]:
            state.codec = _codec(raw)
        elif tag == _T["CHN"]:
            state.channels = _uint(raw, state.big_endian)
            if not 0 < state.channels <= _MAX_CHANNELS:
                ctx.fail(HeaderError, f"CHN says {state.channels} channels", offset=offset,
                         field="CHN")
        elif tag == _T["SEQ"]:
            state.sequences = _uint(raw, state.big_endian)
        elif tag == _T["PNT"]:
            pointer = _uint(raw, state.big_endian)
        elif tag in _CHANNEL_TAGS:
            state.common = _apply(state.common, tag, raw, state, ctx)
        elif tag == _T["ATT"]:
            if channel >= _MAX_CHANNELS:
                ctx.fail(HeaderError, f"ATT names channel {channel + 1}", offset=offset,
                         field="ATT")
            inner = _items(buffer, value, value + length, ctx, f"ATT of channel {channel + 1}")
            state.raw_overrides.setdefault(channel, []).extend(
                (t, v, n) for t, _, v, n, _ in inner if t in _CHANNEL_TAGS)
        elif tag == _T["WAV"]:
            frame_channels = []
            for ch in range(state.channels):
                attributes = state.common
                for t, v, n in state.raw_overrides.get(ch, ()):
                    attributes = _apply(attributes, t, bytes(data[v:v + n]), state, ctx)
                frame_channels.append(_resolved(attributes, state.big_endian))
            frames.append(_Frame(value, length, state.sequences, tuple(frame_channels),
                                 pointer))
            pointer = None
        elif tag == _T["TIM"]:
            start = _time(raw, state, ctx)
        elif tag == _T["PNM"]:
            parts = _text(raw, state).split("^")
            fields["patient_last_name"] = parts[0] or None
            fields["patient_first_name"] = (parts[2] if len(parts) > 2 else "") or None
        elif tag == _T["PID"]:
            fields["patient_id"] = _text(raw, state) or None
        elif tag == _T["AGE"]:
            fields.update(_age(raw, state, ctx))
        elif tag == _T["SEX"]:
            fields["patient_gender"] = _SEX.get(raw[0]) if raw else None
        elif tag == _T["MAN"]:
            parts = _text(raw, state).split("^")
            extras["manufacturer"] = dict(zip(("maker", "model", "version", "serial"), parts))
            fields["device_id"] = (parts[1] if len(parts) > 1 else "") or parts[0] or None
        elif tag == _T["WFM"]:
            code = raw[0] if len(raw) == 1 else _uint(raw[:2], state.big_endian)
            extras["waveform_type"] = _WAVEFORM_TYPES.get(code, f"code {code}")
            extras["waveform_type_code"] = code
        elif tag == _T["NTE"]:
            extras.setdefault("comments", []).append(_text(raw, state))
        elif tag == _T["PRE"]:
            extras["preamble"] = _text(raw, state)
        elif tag == _T["VER"]:
            extras["version"] = tuple(raw)
        elif tag == _T["EVT"]:
            events = extras.setdefault("events_raw", [])
            events.append(raw)
            ctx.check_count(len(events), "max_annotations", "MFER events")
    if not frames:
        ctx.fail(HeaderError, "the file has no waveform data (no WAV item)", field="WAV")
    channels = _check_frames(frames, ctx)
    counts = [0] * len(channels)
    read: list[int] = []
    for index, frame in enumerate(frames):
        _, _, stride = _layout(frame, state.big_endian)
        read.append(_frame_sequences(frame, stride, index, ctx))
        for ch, attributes in enumerate(frame.channels):
            counts[ch] += read[-1] * attributes.block
    extras["byte_order"] = "big endian" if state.big_endian else "little endian"
    extras["lead_codes"] = tuple(a.lead for a in channels)
    extras["frame_pointers"] = tuple(f.pointer for f in frames)
    return _Plan(frames, channels, state.big_endian, counts, read,
                 Metadata(**{k: v for k, v in fields.items() if v is not None}), start, extras)


def _check_frames(frames: list[_Frame], ctx: DecodeContext) -> tuple[ChannelAttributes, ...]:
    """The channels of every frame must be the same for their samples to join."""
    first = frames[0].channels
    for index, frame in enumerate(frames):
        for ch, attributes in enumerate(frame.channels):
            if attributes.data_type == _AHA_DIFFERENCE:
                ctx.fail(UnsupportedFeatureError, f"channel {ch + 1} uses the AHA difference "
                         "code (DTP 9), which ecgingest does not decode", field="DTP")
            if attributes.data_type not in DATA_TYPES:
                ctx.fail(HeaderError, f"channel {ch + 1} has data type {attributes.data_type}, "
                         "which MFER does not define", field="DTP")
            if attributes.block <= 0:
                ctx.fail(HeaderError, f"channel {ch + 1} has a block length of "
                         f"{attributes.block}", field="BLK")
        if index and frame.channels != first:
            ctx.fail(UnsupportedFeatureError, f"waveform frame {index + 1} changes the channel "
                     "definitions of the first frame; such files are not joined",
                     offset=frame.start, field="WAV")
    return first


def _time(raw: bytes, state: _State, ctx: DecodeContext) -> dt.datetime | None:
    if len(raw) < 7:
        ctx.warn(f"TIM has {len(raw)} bytes, fewer than a date and time; ignored")
        return None
    year = _uint(raw[0:2], state.big_endian)
    ms = _uint(raw[7:9], state.big_endian) if len(raw) >= 9 else 0
    us = _uint(raw[9:11], state.big_endian) if len(raw) >= 11 else 0
    try:
        return dt.datetime(year, raw[2], raw[3], raw[4], raw[5], raw[6]) + \
            dt.timedelta(milliseconds=ms, microseconds=us)
    except (ValueError, OverflowError):
        ctx.warn(f"TIM {raw.hex()} is not a valid date and time; ignored")
        return None


def _age(raw: bytes, state: _State, ctx: DecodeContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw and raw[0] != 0xFF:
        out["patient_age"] = raw[0]
    if len(raw) >= 7:
        year = _uint(raw[3:5], state.big_endian)
        if year not in (0, 0xFFFF):
            try:
                out["patient_birth_date"] = dt.date(year, raw[5], raw[6])
            except ValueError:
                ctx.warn(f"AGE birth date {year}-{raw[5]}-{raw[6]} is not a date; ignored")
    return out


# ---------------------------------------------------------------- samples

def _labels(channels: tuple[ChannelAttributes, ...]) -> list[str]:
    return [lead_name(a.lead, a.lead_text) if a.lead is not None else f"channel {i + 1}"
            for i, a in enumerate(channels)]


def decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """One record: a signal per channel, the frames joined in file order."""
    try:
        return _decode(data, ctx)
    except EcgIngestError as exc:
        # without its traceback: those frames hold NumPy views of the bytes, and a
        # file on disk cannot be unmapped while one is alive
        raise exc.with_traceback(None) from None


def _decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    plan = _plan(data, ctx)
    big = plan.big_endian
    buffer = np.frombuffer(data, dtype=np.uint8)
    dtypes, _, _ = _layout(plan.frames[0], big)
    outputs = []
    for ch, count in enumerate(plan.counts):
        native = dtypes[ch].newbyteorder("=")
        ctx.reserve_output(count * native.itemsize, f"channel {ch + 1} samples")
        outputs.append(np.empty(count, dtype=native))
    filled = [0] * len(outputs)
    for frame, sequences in zip(plan.frames, plan.sequences):
        _, starts, stride = _layout(frame, big)
        for ch, attributes in enumerate(frame.channels):
            n = sequences * attributes.block
            if n == 0:
                continue
            view = np.ndarray((sequences, attributes.block), dtype=dtypes[ch], buffer=buffer,
                              offset=frame.start + starts[ch],
                              strides=(stride, dtypes[ch].itemsize))
            outputs[ch][filled[ch]:filled[ch] + n].reshape(sequences, attributes.block)[...] \
                = view
            filled[ch] += n
    signals = []
    for ch, (attributes, label) in enumerate(zip(plan.channels, _labels(plan.channels))):
        rate = _rate(attributes, ch, ctx)
        scale, units = _scale(attributes, ch, ctx)
        digital = outputs[ch]
        if digital.dtype.kind == "f":
            physical = (digital.astype(np.float64) + attributes.offset) * scale
            if attributes.null is not None:
                physical[digital == attributes.null] = np.nan
            signals.append(new_signal(label, rate, digital, scale, attributes.offset * scale,
                                      units, None, None, physical))
        else:
            null = None if attributes.null is None else int(attributes.null)
            signals.append(new_signal(label, rate, digital, scale, attributes.offset * scale,
                                      units, null))
    return Record(name=ctx.name, format=_FMT, format_detail=_detail(plan),
                  signals=cast("list[Signal]", signals), start_time=plan.start,
                  metadata=plan.metadata, sources=(ctx.path or ctx.name,),
                  warnings=list(ctx.warnings), extras=plan.extras)


def _detail(plan: _Plan) -> str:
    kind = plan.extras.get("waveform_type")
    return f"MFER{', ' + kind if kind else ''}"


def inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """Header facts from the items; the samples are not split."""
    try:
        return _inspect(data, ctx)
    except EcgIngestError as exc:
        raise exc.with_traceback(None) from None  # as in decode


def _inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    plan = _plan(data, ctx)
    dtypes, _, _ = _layout(plan.frames[0], plan.big_endian)
    signals = tuple(SignalInfo(label, _rate(a, ch, ctx), plan.counts[ch],
                               _scale(a, ch, ctx)[1], str(dtypes[ch].newbyteorder("=")))
                    for ch, (a, label) in enumerate(zip(plan.channels, _labels(plan.channels))))
    return RecordInfo(ctx.name, _FMT, _detail(plan), signals, plan.start, plan.metadata, 0,
                      (ctx.path or ctx.name,), tuple(ctx.warnings))


class MferFormat(SingleFileFormat):
    """MFER waveform files (Nihon Kohden, Fukuda Denshi and others)."""

    name = _FMT
    marker = (0, bytes((_T["PRE"], _T["BLE"])))  # a preamble item, or a BLE item

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        return inspect(data, ctx)


FORMAT = MferFormat()
