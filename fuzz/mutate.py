"""Deterministic byte mutations, shared by the pure-hypothesis engine and the tests.

A mutation is a small tuple, so a failing case prints as data that can be
replayed exactly (``apply(seed, mutations)``) without any fuzzing engine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["INTERESTING", "Mutation", "apply", "random_mutations"]

Mutation = tuple[str, int, bytes]
"""(kind, position, operand): kind is "set", "insert", "delete", "truncate" or "text"."""

INTERESTING: tuple[bytes, ...] = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
    b"abcdefgh", b"-1", b"0", b"1e308", b"nan", b"-0", b"99999999", b" ", b"+", b".",
    b"\n", b"\r\n", b"{", b"[", b'"', b"\\u0000",
)
"""Operands that hit typical parser edges: extremes, signs, numbers as text, JSON syntax."""


def apply(seed: bytes, mutations: Sequence[Mutation]) -> bytes:
    """The seed with each mutation applied in order (positions wrap around the length)."""
    data = bytearray(seed)
    for kind, position, operand in mutations:
        at = position % (len(data) + 1)
        if kind == "set":
            data[at:at + len(operand)] = operand
        elif kind == "insert":
            data[at:at] = operand
        elif kind == "delete":
            del data[at:at + max(1, len(operand))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "text":  # overwrite a fixed-width ASCII field, keeping the length
            field = operand[: max(0, len(data) - at)]
            data[at:at + len(field)] = field
        else:
            raise ValueError(f"unknown mutation kind {kind!r}")
    return bytes(data)


def random_mutations(rng: random.Random, size: int, count: int) -> list[Mutation]:
    """``count`` mutations for a seed of ``size`` bytes, drawn from ``rng`` (reproducible)."""
    out: list[Mutation] = []
    for _ in range(count):
        kind = rng.choice(("set", "set", "set", "text", "insert", "delete", "truncate"))
        # favour the head: headers live there and most parsing decisions too
        position = rng.randrange(min(size, 512) or 1) if rng.random() < 0.7 \
            else rng.randrange(size or 1)
        if rng.random() < 0.5:
            operand = rng.choice(INTERESTING)
        else:
            operand = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        out.append((kind, position, operand))
    return out
