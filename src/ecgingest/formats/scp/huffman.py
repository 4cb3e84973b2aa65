"""Section 2: the Huffman tables, read into the code rows and lookup tables
the sample kernels decode with."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..._ext import scp as _k
from .._base import DecodeContext
from .container import Section
from .fields import ByteData, need, need_failed

__all__ = ["Huffman", "parse_section2", "DEFAULT_CODES"]

_CODE = struct.Struct("<BBBhI")  # prefix bits, total bits, mode, value, code (LSB first)

_TABLE_PROBLEMS = {
    _k.STATUS_BAD_VALUE: "a Huffman code has an impossible bit count (prefix 1..32 bits, at "
                         "most 32 value bits) or a code wider than its prefix",
    _k.STATUS_OVERFLOW: "the Huffman tables would need more than 4 million lookup entries; "
                        "the section is not a plausible set of tables",
    _k.STATUS_BAD_CODE: "a Huffman table is not prefix-free (two codes share a bit "
                        "pattern), so the data cannot be decoded unambiguously",
}
"""What ``build_luts`` found wrong with the tables, by status (the error type
comes from the context's one status table)."""


def _default_table() -> np.ndarray:
    rows = [(1, 1, 1, 0, 0)]
    for v in range(1, 9):
        prefix = ((1 << v) - 1) << 2
        rows.append((v + 2, v + 2, 1, v, prefix))
        rows.append((v + 2, v + 2, 1, -v, prefix | 1))
    rows.append((10, 18, 1, 0, 0b1111111110))
    rows.append((10, 26, 1, 0, 0b1111111111))
    return np.array(rows, dtype=np.int32)


DEFAULT_CODES = _default_table()
"""The standard's default table (``19999`` in section 2), as code rows."""


def _reverse_bits(value: int, nbits: int) -> int:
    out = 0
    for i in range(nbits):
        out = (out << 1) | ((value >> i) & 1)
    return out


def _as_int32(code: int) -> int:
    """A 32-bit code as the int32 the code rows hold (the kernel reads it unsigned)."""
    return code - (1 << 32) if code >= 1 << 31 else code


@dataclass(frozen=True)
class Huffman:
    codes: np.ndarray
    """int32 rows ``(prefix bits, total bits, mode, value, code MSB first)``."""
    offsets: np.ndarray
    """First row of each table, and the row count last."""
    default: bool
    tables: _k.HuffmanTables
    """The lookup tables of ``build_luts``, as the decoding kernels take them."""

    @property
    def description(self) -> str:
        return "default" if self.default else f"{len(self.offsets) - 1} tables"


def _build(ctx: DecodeContext, codes: np.ndarray, offsets: np.ndarray, default: bool,
           offset: int) -> Huffman:
    status, lut, lut_offsets, lut_bits, fast, long_offsets, long_keys, long_rows = \
        _k.build_luts(codes, offsets)
    ctx.check_status(status, "section 2: " + _TABLE_PROBLEMS.get(status, "Huffman tables"),
                     offset=offset, field="section 2")
    assert lut is not None and lut_offsets is not None and lut_bits is not None \
        and fast is not None and long_offsets is not None and long_keys is not None \
        and long_rows is not None
    return Huffman(codes, offsets, default, _k.HuffmanTables(
        codes, offsets, lut, lut_offsets, lut_bits, fast, long_offsets, long_keys, long_rows))


_DEFAULT_HUFFMAN: Huffman | None = None


def parse_section2(data: ByteData, sec: Section, ntables: int, ctx: DecodeContext
                   ) -> Huffman | None:
    """The tables, the default one, or ``None`` (``0`` tables: uncompressed data);
    ``ntables`` as ``scan_headers`` read it (-1: the section ends before it)."""
    global _DEFAULT_HUFFMAN
    if ntables < 0:
        need_failed(ctx, sec.body, 2, "section 2 table count")
    if ntables == 19999:
        if _DEFAULT_HUFFMAN is None:
            _DEFAULT_HUFFMAN = _build(ctx, DEFAULT_CODES,
                                      np.array([0, len(DEFAULT_CODES)], np.int32), True,
                                      sec.body)
        return _DEFAULT_HUFFMAN
    if ntables == 0:
        return None
    # trust the table count; check each table's codes are really present first
    o = sec.body + 2
    rows: list[tuple[int, int, int, int, int]] = []
    offsets = [0]
    for t in range(ntables):
        need(ctx, data, o, 2, sec.end, f"Huffman table {t + 1} code count")
        ncodes = data[o] | data[o + 1] << 8
        o += 2
        need(ctx, data, o, 9 * ncodes, sec.end, f"Huffman table {t + 1} codes")
        for prefix, total, mode, value, code in _CODE.iter_unpack(data[o:o + 9 * ncodes]):
            # transmitted LSB first; a prefix of more than 32 bits is refused by build_luts
            code = _as_int32(_reverse_bits(code, prefix)) if prefix <= 32 else 0
            rows.append((prefix, total, mode, value, code))
        o += 9 * ncodes
        offsets.append(len(rows))
    codes = np.array(rows, dtype=np.int32).reshape(-1, 5)
    return _build(ctx, codes, np.array(offsets, np.int32), False, sec.body)
