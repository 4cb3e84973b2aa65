"""A test-side Philips XLI encoder, written from the format description (not from the
decoder): second differences, split high/low byte halves, 10-bit MSB-first LZW.

``encode_lead(samples)`` gives one chunk (8-byte header + payload) whose decoding
is ``samples``; ``residuals(leads)`` turns true limb leads into what a cart stores.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

MAX_CODE = 1022


def second_differences(samples: Sequence[int]) -> tuple[list[int], int]:
    """The int16 values and the chunk's start value whose integration gives ``samples``.

    Decoding keeps v[0], v[1] and, for i >= 2, sets
    out[i] = 2 out[i-1] - out[i-2] - last, with last = start for i = 2 and
    v[i-1] - 64 after; so last_i = 2 out[i-1] - out[i-2] - out[i].
    """
    out = [int(x) for x in samples]
    n = len(out)
    values = [0] * n
    start = 0
    if n:
        values[0] = out[0]
    if n > 1:
        values[1] = out[1]
    for i in range(2, n):
        last = 2 * out[i - 1] - out[i - 2] - out[i]
        if i == 2:
            start = last
        else:
            values[i - 1] = last + 64
    if n > 2:
        values[n - 1] = 64  # never read back: any value will do
    for v in [*values, start]:
        if not -32768 <= v <= 32767:
            raise ValueError("second differences do not fit int16; use smoother samples")
    return values, start


def split_halves(values: Sequence[int]) -> bytes:
    """int16 values as their high bytes, then their low bytes."""
    words = [v & 0xFFFF for v in values]
    return bytes(w >> 8 for w in words) + bytes(w & 0xFF for w in words)


def lzw_encode(data: bytes) -> bytes:
    """10-bit codes, most significant bit first, dictionary 256..1022, no clear code,
    padded so that a reader taking a code only with more than 24 bits buffered gets
    the last one (byte alignment plus two zero bytes)."""
    table = {bytes([i]): i for i in range(256)}
    next_code = 256
    codes: list[int] = []
    word = b""
    for byte in data:
        extended = word + bytes([byte])
        if extended in table:
            word = extended
            continue
        codes.append(table[word])
        if next_code <= MAX_CODE:
            table[extended] = next_code
            next_code += 1
        word = bytes([byte])
    if word:
        codes.append(table[word])
    bits = "".join(format(code, "010b") for code in codes)
    bits += "0" * (-len(bits) % 8)
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    return payload + b"\x00\x00"


def encode_lead(samples: Sequence[int]) -> bytes:
    """One XLI chunk: int32 LE payload size, 2 unused bytes, int16 LE start, payload."""
    values, start = second_differences(samples)
    payload = lzw_encode(split_halves(values))
    return struct.pack("<ihh", len(payload), 0, start) + payload


def encode_leads(leads: Sequence[Sequence[int]], slots: int = 0) -> bytes:
    """Chunks of every lead, then empty chunks up to ``slots`` (carts write 16)."""
    chunks = [encode_lead(lead) for lead in leads]
    empty = encode_lead([0] * 2)
    chunks += [empty] * max(0, slots - len(chunks))
    return b"".join(chunks)


def residuals(leads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a cart stores for III, aVR, aVL, aVF given the true leads (floor division)."""
    first, second = leads["I"].astype(np.int64), leads["II"].astype(np.int64)
    third = leads["III"].astype(np.int64)
    stored = dict(leads)
    stored["III"] = second - first - third
    stored["aVR"] = -leads["aVR"].astype(np.int64) - (first + second) // 2
    stored["aVL"] = (first - third) // 2 - leads["aVL"].astype(np.int64)
    stored["aVF"] = (second + third) // 2 - leads["aVF"].astype(np.int64)
    return stored
