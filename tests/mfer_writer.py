"""A test-side MFER writer, from the encoding rules (MFER Part 1 as the fact sheet has them).

Every item is written as tag, length, value; the writer can use the long length
forms (0x81-0x84) and an indefinite-length ATT (content ending 00 00), both byte
orders, every data type but the AHA difference code, channel ATT blocks that
override top-level definitions, padding between items and several WAV frames.
It is written independently of the reader: nothing here imports ecgingest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

PRE, BLE, VER, TXC, BLK, CHN, SEQ, PNT, WFM, LDN, DTP, IVL, SEN, OFF, NUL = (
    0x40, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x12)
NTE, MAN, WAV, ATT, PNM, PID, AGE, SEX, TIM, END = (
    0x16, 0x17, 0x1E, 0x3F, 0x81, 0x82, 0x83, 0x84, 0x85, 0x80)

#: DTP code -> NumPy type code (without byte order).
NUMPY_TYPES = {0: "i2", 1: "u2", 2: "i4", 3: "u1", 4: "u2", 5: "i1", 6: "u4", 7: "f4",
               8: "f8"}


def length_bytes(n: int, long_form: int = 0) -> bytes:
    """The length field: one byte below 0x80, else 0x80 + k and k big-endian bytes
    (``long_form``: at least that many, even where one byte would do)."""
    if n < 0x80 and not long_form:
        return bytes([n])
    k = max(long_form, 1, (n.bit_length() + 7) // 8)
    return bytes([0x80 + k]) + n.to_bytes(k, "big")


def item(tag: int, value: bytes, long_form: int = 0) -> bytes:
    return bytes([tag]) + length_bytes(len(value), long_form) + value


def channel_number(index: int) -> bytes:
    """A 0-based channel number in 7-bit groups, high bit set on all but the last."""
    groups = [index & 0x7F]
    index >>= 7
    while index:
        groups.append(0x80 | (index & 0x7F))
        index >>= 7
    return bytes(reversed(groups))


def att(channel: int, content: bytes, *, indefinite: bool = False, long_form: int = 0) -> bytes:
    if indefinite:
        return bytes([ATT]) + channel_number(channel) + b"\x80" + content + b"\x00\x00"
    return bytes([ATT]) + channel_number(channel) + length_bytes(len(content), long_form) \
        + content


def integer(value: int, size: int, big: bool, signed: bool = False) -> bytes:
    return value.to_bytes(size, "big" if big else "little", signed=signed)


def scaled(unit: int, exponent: int, mantissa: int, big: bool, size: int = 2) -> bytes:
    """IVL / SEN value: unit code, signed exponent, mantissa in BLE order."""
    return bytes([unit, exponent & 0xFF]) + integer(mantissa, size, big, signed=True)


def typed(value: float, dtp: int, big: bool) -> bytes:
    return np.array([value], dtype=(">" if big else "<") + NUMPY_TYPES[dtp]).tobytes()


@dataclass
class Channel:
    """One channel's samples and what its ATT block states (None: the top-level value)."""

    samples: np.ndarray
    lead: int | None = None
    dtp: int | None = None
    block: int | None = None
    sen: tuple[int, int, int] | None = None
    ivl: tuple[int, int, int] | None = None
    offset: float | None = None
    null: float | None = None


@dataclass
class Recording:
    channels: list[Channel]
    big_endian: bool = False
    dtp: int = 0
    block: int = 1
    sequences: int = 1
    """Sequences per WAV frame."""
    frames: int = 1
    ivl: tuple[int, int, int] = (1, -3, 2)
    sen: tuple[int, int, int] | None = (0, -6, 5)
    offset: float | None = None
    null: float | None = None
    indefinite_att: bool = False
    long_form: int = 0
    padding: int = 0
    preamble: bytes | None = b"MFR Test waveform"
    start: dt.datetime | None = None
    patient: dict = field(default_factory=dict)


def write(rec: Recording) -> bytes:
    """The MFER file of a recording (each channel's samples in its data type)."""
    big = rec.big_endian
    pad = b"\x00" * rec.padding
    out = bytearray()
    if rec.preamble is not None:
        out += item(PRE, rec.preamble.ljust(32, b" ")[:32])
    out += item(BLE, bytes([0 if big else 1])) + pad
    out += item(VER, bytes([1, 5, 0])) + item(TXC, b"UTF-8")
    if rec.start is not None:
        t = rec.start
        out += item(TIM, integer(t.year, 2, big) + bytes([t.month, t.day, t.hour, t.minute,
                                                          t.second])
                    + integer(t.microsecond // 1000, 2, big)
                    + integer(t.microsecond % 1000, 2, big))
    if "name" in rec.patient:
        out += item(PNM, rec.patient["name"].encode())
    if "id" in rec.patient:
        out += item(PID, rec.patient["id"].encode(), rec.long_form)
    if "sex" in rec.patient:
        out += item(SEX, bytes([rec.patient["sex"]]))
    out += item(IVL, scaled(*rec.ivl, big)) + pad
    if rec.sen is not None:
        out += item(SEN, scaled(*rec.sen, big))
    out += item(DTP, bytes([rec.dtp])) + item(BLK, integer(rec.block, 2, big))
    out += item(CHN, integer(len(rec.channels), 1, big))
    out += item(SEQ, integer(rec.sequences, 2, big))
    if rec.offset is not None:
        out += item(OFF, typed(rec.offset, rec.dtp, big))
    if rec.null is not None:
        out += item(NUL, typed(rec.null, rec.dtp, big))
    for index, ch in enumerate(rec.channels):
        content = bytearray()
        dtp = rec.dtp if ch.dtp is None else ch.dtp
        if ch.lead is not None:
            content += item(LDN, integer(ch.lead, 1 if ch.lead < 256 else 2, big))
        if ch.dtp is not None:
            content += item(DTP, bytes([ch.dtp]))
        if ch.block is not None:
            content += item(BLK, integer(ch.block, 4, big))
        if ch.sen is not None:
            content += item(SEN, scaled(*ch.sen, big, size=4))
        if ch.ivl is not None:
            content += item(IVL, scaled(*ch.ivl, big, size=1))
        if ch.offset is not None:
            content += item(OFF, typed(ch.offset, dtp, big))
        if ch.null is not None:
            content += item(NUL, typed(ch.null, dtp, big))
        if content:
            out += att(index, bytes(content), indefinite=rec.indefinite_att,
                       long_form=rec.long_form) + pad
    for frame in range(rec.frames):
        body = bytearray()
        for seq in range(rec.sequences):
            for ch in rec.channels:
                block = rec.block if ch.block is None else ch.block
                dtp = rec.dtp if ch.dtp is None else ch.dtp
                first = (frame * rec.sequences + seq) * block
                body += ch.samples[first:first + block].astype(
                    (">" if big else "<") + NUMPY_TYPES[dtp]).tobytes()
        out += item(PNT, integer(frame * rec.sequences * rec.block, 4, big))
        out += item(WAV, bytes(body), rec.long_form or 4) + pad
    out += bytes([END])
    return bytes(out)
