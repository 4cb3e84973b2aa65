"""Test-side WFDB annotation writer (MIT and AHA formats), as the WFDB C library's
``putann`` writes them, plus the model of what its reader returns.

MIT format: each annotation is a word ``code << 10 | interval``; an interval
outside 0..1023 goes in ``SKIP`` words (signed 32-bit, high word first, at
most 2**31 - 1 each) and the word then carries 0; a type-0 annotation is a
``SKIP`` to one tick before it and the word ``1``. ``SUB`` follows when the
subtype is not 0, ``CHN`` / ``NUM`` when chan / num differ from the previous
annotation's, ``AUX`` when there is aux text (length byte, bytes padded to an
even count). A zero word ends the file.
"""

from __future__ import annotations

from dataclasses import dataclass

SKIP, NUM, SUB, CHN, AUX = 59, 60, 61, 62, 63
MAX_SKIP = 2**31 - 1
MIN_SKIP = -(2**31) + 1
NOTE = 22


@dataclass(frozen=True)
class Ann:
    sample: int
    code: int
    subtype: int = 0
    chan: int = 0
    num: int = 0
    aux: bytes | None = None


def word(code: int, data: int) -> bytes:
    return ((code << 10) | (data & 0x3FF)).to_bytes(2, "little")


def _skip(delta: int) -> bytes:
    value = delta & 0xFFFFFFFF
    return (word(SKIP, 0) + (value >> 16).to_bytes(2, "little")
            + (value & 0xFFFF).to_bytes(2, "little"))


def write_mit(annotations: list[Ann], *, time_resolution: float | None = None,
              definitions: dict[int, tuple[str, str]] | None = None,
              bracketed: bool = True, end: bool = True) -> bytes:
    """An MIT-format annotation file. A table of leading NOTEs at time 0 comes first
    when ``time_resolution`` or ``definitions`` are given (``bracketed``: between
    the ``## annotation type definitions`` lines), ended by a type-0 annotation."""
    table: list[Ann] = []
    if time_resolution is not None:
        table.append(Ann(0, NOTE, aux=f"## time resolution: {time_resolution:.12g}".encode()))
    if definitions:
        if bracketed:
            table.append(Ann(0, NOTE, aux=b"## annotation type definitions"))
        for code, (symbol, text) in sorted(definitions.items()):
            table.append(Ann(0, NOTE, aux=f"{code} {symbol} {text}".encode()))
        if bracketed:
            table.append(Ann(0, NOTE, aux=b"## end of definitions"))
    if table:
        table.append(Ann(0, 0))
    out = bytearray()
    t, chan, num = 0, 0, 0
    for a in table + annotations:
        delta = a.sample - t
        while delta > MAX_SKIP:
            out += _skip(MAX_SKIP)
            delta -= MAX_SKIP
        while delta < MIN_SKIP:
            out += _skip(MIN_SKIP)
            delta -= MIN_SKIP
        if a.code == 0:
            out += _skip(delta - 1)
            delta = 1
        elif delta > 1023 or delta < 0:
            out += _skip(delta)
            delta = 0
        out += word(a.code, delta)
        t = a.sample
        if a.subtype != 0:
            out += word(SUB, a.subtype & 0xFF)
        if a.chan != chan:
            out += word(CHN, a.chan & 0xFF)
            chan = a.chan
        if a.num != num:
            out += word(NUM, a.num & 0xFF)
            num = a.num
        if a.aux:
            assert len(a.aux) <= 255
            out += word(AUX, len(a.aux)) + a.aux + (b"\0" if len(a.aux) % 2 else b"")
    if end:
        out += b"\0\0"
    return bytes(out)


AHA_LETTERS = {1: b"N", 5: b"V", 6: b"F", 10: b"E", 12: b"P", 13: b"Q", 14: b"U", 22: b"O",
               41: b"R", 32: b"[", 33: b"]"}


def write_aha(annotations: list[Ann]) -> bytes:
    """An AHA-format file: 16-byte records (NUL, letter, time high word first, serial,
    subtype, MIT code, 6 aux bytes), padded with 0xFF to a 1024-byte block."""
    out = bytearray()
    for serial, a in enumerate(annotations, 1):
        value = a.sample & 0xFFFFFFFF
        aux = (a.aux or b"")[:6].ljust(6, b"\0")
        out += (b"\0" + AHA_LETTERS[a.code] + (value >> 16).to_bytes(2, "little")
                + (value & 0xFFFF).to_bytes(2, "little") + serial.to_bytes(2, "little")
                + bytes([a.subtype & 0xFF, a.code]) + aux)
    out += b"\xff" * (1024 - len(out) % 1024)
    return bytes(out)


def expected(annotations: list[Ann], *, has_table: bool) -> list[Ann]:
    """What the WFDB C library returns for ``write_mit(annotations, ...)``: the fields
    as stored (subtype and num as signed bytes, chan unsigned). After a table (whose
    type-0 end mark it drops) every annotation; without one, the leading NOTEs at
    time 0 with subtype 0 are taken for a table, and a type-0 annotation right
    after them is lost."""
    stored = [Ann(a.sample, a.code, _signed(a.subtype), a.chan & 0xFF, _signed(a.num),
                  a.aux) for a in annotations]
    if has_table:
        return stored
    k = 0
    while k < len(stored) and stored[k].sample == 0 and stored[k].code == NOTE \
            and stored[k].subtype == 0:
        k += 1
    if k < len(stored) and stored[k].code == 0:
        k += 1
    return stored[k:]


def _signed(value: int) -> int:
    value &= 0xFF
    return value - 256 if value >= 128 else value
