"""A test-side SCP-ECG writer (not shipped): builds every variant the decoder
must read from known signals, written independently of the decoder.

Huffman tables are lists of ``Code`` (prefix given MSB first, as transmitted);
section 2 stores them bit-reversed as the standard says.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_TABLE = "default"
PROTOCOL_BYTE = {"1.0": 10, "1.3": 13, "2.0": 20, "3.0": 30}


@dataclass(frozen=True)
class Code:
    prefix_bits: int
    total_bits: int
    mode: int  # 1 value, 0 switch to table number ``value`` (1-based)
    value: int
    prefix: int  # MSB-first integer of prefix_bits bits


def default_table() -> list[Code]:
    codes = [Code(1, 1, 1, 0, 0)]
    for v in range(1, 9):
        p = ((1 << v) - 1) << 2
        codes += [Code(v + 2, v + 2, 1, v, p), Code(v + 2, v + 2, 1, -v, p | 1)]
    codes += [Code(10, 18, 1, 0, 0b1111111110), Code(10, 26, 1, 0, 0b1111111111)]
    return codes


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def write(self, value: int, nbits: int) -> None:
        for i in range(nbits - 1, -1, -1):
            self.bits.append((value >> i) & 1)

    def getvalue(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _encode_value(w: BitWriter, table: Sequence[Code], v: int) -> None:
    for c in table:
        if c.mode == 1 and c.total_bits == c.prefix_bits and c.value == v:
            w.write(c.prefix, c.prefix_bits)
            return
    for c in sorted(table, key=lambda c: c.total_bits):
        extra = c.total_bits - c.prefix_bits
        if c.mode == 1 and extra > 0 and -(1 << (extra - 1)) <= v < (1 << (extra - 1)):
            w.write(c.prefix, c.prefix_bits)
            w.write(v & ((1 << extra) - 1), extra)
            return
    raise ValueError(f"value {v} cannot be coded with this table")


def huffman_encode(values: Sequence[int], tables: list[list[Code]],
                   schedule: Sequence[int] | None = None) -> bytes:
    """Code ``values``; ``schedule[i]`` is the 0-based table for value i (switch codes
    are emitted from the current table when it changes). Each lead starts in table 1."""
    w = BitWriter()
    cur = 0
    for i, v in enumerate(values):
        want = schedule[i] if schedule is not None else 0
        if want != cur:
            switch = [c for c in tables[cur] if c.mode == 0 and c.value == want + 1]
            if not switch:
                raise ValueError(f"table {cur + 1} has no switch to table {want + 1}")
            w.write(switch[0].prefix, switch[0].prefix_bits)
            cur = want
        _encode_value(w, tables[cur], int(v))
    return w.getvalue()


def differences(x: np.ndarray, order: int) -> np.ndarray:
    """Forward differences in wrapping 32-bit arithmetic (the inverse of the spec's)."""
    x = x.astype(np.int64)
    d = x.copy()
    if order == 1:
        d[1:] = x[1:] - x[:-1]
    elif order == 2:
        d[2:] = x[2:] - 2 * x[1:-1] + x[:-2]
    return ((d + 2**31) % 2**32 - 2**31).astype(np.int64)


def bimodal_store(x: np.ndarray, zones: Sequence[tuple[int, int]], factor: int) -> np.ndarray:
    """Protected zones (1-based inclusive) at full rate, one value per ``factor``
    samples elsewhere (the block's middle sample, clipped to the run)."""
    out: list[int] = []
    s, n = 1, len(x)
    bounds = sorted(zones) + [(n + 1, n)]
    for a, b in bounds:
        if a > s:
            run_end = a - 1
            for blk in range(s, run_end + 1, factor):
                out.append(int(x[min(blk + factor // 2, run_end) - 1]))
        if a <= n:
            out.extend(int(v) for v in x[a - 1:b])
        s = b + 1
    return np.array(out, dtype=np.int64)


def bimodal_reconstruct(stored: np.ndarray, zones: Sequence[tuple[int, int]], factor: int,
                        n: int) -> np.ndarray:
    """The spec's reconstruction, written plainly in Python (for comparison)."""
    out = np.zeros(n, dtype=np.int64)
    k, s = 0, 1
    bounds = sorted(zones) + [(n + 1, n)]
    for a, b in bounds:
        if a > s:
            run = list(range(s, a))
            m = -(-len(run) // factor)
            vals = [int(v) for v in stored[k:k + m]]
            seq = [vals[0]] * (factor // 2)
            for j in range(m - 1):
                d = vals[j + 1] - vals[j]
                for z in range(factor):
                    q = abs(z * d) // factor
                    seq.append(vals[j] + (q if z * d >= 0 else -q))
            seq += [vals[-1]] * len(run)
            for pos, val in zip(run, seq):
                out[pos - 1] = val
            k += m
        if a <= n:
            out[a - 1:b] = stored[k:k + b - a + 1]
            k += b - a + 1
        s = b + 1
    return out


@dataclass
class ScpSpec:
    """What to write. ``rhythm`` is [leads, samples] in section-6 AVM units."""

    rhythm: np.ndarray
    lead_ids: Sequence[int]
    version: str = "2.0"
    interval_us: int = 2000
    avm: int = 5000
    differences: int = 0
    huffman: object = None  # None, DEFAULT_TABLE or list of tables
    schedule: Sequence[int] | None = None
    bimodal_factor: int = 0
    protected: Sequence[tuple[int, int]] = ()
    beat: np.ndarray | None = None  # [leads, beat samples] in section-5 AVM units
    beat_avm: int = 5000
    beat_interval_us: int | None = None
    qrs: Sequence[tuple[int, int, int, int]] = ()  # type, start, fiducial, end (1-based)
    beat_fiducial: int = 1
    tags: list[tuple[int, bytes]] = field(default_factory=list)
    extra_sections: dict[int, bytes] = field(default_factory=dict)
    corrupt_crc: bool = False


def _section(sid: int, body: bytes, version: int, reserved: bytes = b"\0" * 6) -> bytes:
    length = 16 + len(body)
    rest = struct.pack("<HIBB", sid, length, version, version) + reserved + body
    return struct.pack("<H", _crc(rest)) + rest


def _crc(data: bytes) -> int:
    """CRC-16/CCITT-FALSE via the standard library (independent of the decoder)."""
    return binascii.crc_hqx(data, 0xFFFF)


def tag(t: int, value: bytes) -> tuple[int, bytes]:
    return (t, value)


def _section1(tags: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for t, value in tags:
        out += struct.pack("<BH", t, len(value)) + value
    return out + struct.pack("<BH", 255, 0)


def _data_section(leads: list[bytes], avm: int, interval: int, diff: int, bimodal: int) -> bytes:
    head = struct.pack("<HHBB", avm, interval, diff, bimodal)
    head += b"".join(struct.pack("<H", len(b)) for b in leads)
    return head + b"".join(leads)


def _encode_leads(values: np.ndarray, spec: ScpSpec,
                  tables: list[list[Code]] | None) -> list[bytes]:
    out = []
    for row in values:
        d = differences(row, spec.differences)
        if tables is None:
            out.append(np.asarray(d, dtype="<i2").tobytes())
        else:
            sched = None
            if spec.schedule is not None:
                sched = [spec.schedule[i % len(spec.schedule)] for i in range(len(d))]
            out.append(huffman_encode(d, tables, sched))
    return out


def _tables_section(tables: list[list[Code]] | None, default: bool) -> bytes:
    if default:
        return struct.pack("<H", 19999)
    assert tables is not None
    body = struct.pack("<H", len(tables))
    for table in tables:
        body += struct.pack("<H", len(table))
        for c in table:
            rev = int(format(c.prefix, f"0{c.prefix_bits}b")[::-1], 2) if c.prefix_bits else 0
            body += struct.pack("<BBBhI", c.prefix_bits, c.total_bits, c.mode, c.value, rev)
    return body


def encode(spec: ScpSpec) -> bytes:
    """A complete SCP-ECG record for ``spec``."""
    ver = PROTOCOL_BYTE[spec.version]
    reserved0 = b"SCPECG" if ver >= 13 else b"\0" * 6
    rhythm = np.asarray(spec.rhythm, dtype=np.int64)
    nleads, n = rhythm.shape
    default = spec.huffman == DEFAULT_TABLE
    tables = default_table() if default else spec.huffman
    tables = [tables] if default else tables
    sections: dict[int, bytes] = {}
    sections[1] = _section1(spec.tags or [(2, b"TEST-1\0"), (25, struct.pack("<HBB", 2020, 1, 2)),
                                          (26, bytes([3, 4, 5]))])
    if spec.huffman is not None:
        sections[2] = _tables_section(tables, default)
    flags = (1 if spec.beat is not None else 0) | 4 | (nleads << 3)
    s3 = struct.pack("<BB", nleads, flags & 0xFF)
    for lead_id in spec.lead_ids:
        s3 += struct.pack("<IIB", 1, n, lead_id)
    sections[3] = s3
    residual = rhythm.copy()
    if spec.beat is not None or spec.bimodal_factor:
        beat = spec.beat if spec.beat is not None else np.zeros((nleads, 1), np.int64)
        blen = beat.shape[1]
        b_interval = spec.beat_interval_us or spec.interval_us
        s4 = struct.pack("<HHH", blen * b_interval // 1000, spec.beat_fiducial, len(spec.qrs))
        for typ, a, fc, b in spec.qrs:
            s4 += struct.pack("<HIII", typ, a, fc, b)
        for _, a, _, b in spec.qrs:
            s4 += struct.pack("<II", a, b)
        if spec.bimodal_factor and not spec.qrs:
            raise ValueError("bimodal needs QRS protected zones")
        sections[4] = s4
        sections[5] = _data_section(_encode_leads(beat, spec, None if spec.huffman is None
                                                  else tables), spec.beat_avm, b_interval,
                                    spec.differences, 0)
        if spec.beat is not None:
            # residual = rhythm - beat in the subtraction zones (same AVM assumed here)
            for typ, a, fc, b in spec.qrs:
                if typ != 0:
                    continue
                for s in range(a, b + 1):
                    idx = s - fc + spec.beat_fiducial - 1
                    if 1 <= s <= n and 0 <= idx < blen:
                        residual[:, s - 1] -= beat[:, idx]
    interval6 = spec.interval_us
    if spec.bimodal_factor:
        zones = [(a, b) for _, a, _, b in spec.qrs]
        residual = np.array([bimodal_store(r, zones, spec.bimodal_factor) for r in residual])
        interval6 = (spec.beat_interval_us or spec.interval_us) * spec.bimodal_factor
    sections[6] = _data_section(_encode_leads(residual, spec, None if spec.huffman is None
                                              else tables), spec.avm, interval6,
                                spec.differences, 1 if spec.bimodal_factor else 0)
    sections.update(spec.extra_sections)
    ids = sorted(set(range(12)) | set(sections))
    # lay out: record header (6), section 0, then the others in id order
    s0_len = 16 + 10 * len(ids)
    offset = 6 + s0_len
    pointers = []
    bodies = []
    for sid in ids:
        if sid == 0:
            pointers.append((0, s0_len, 7))
        elif sid in sections:
            blob = _section(sid, sections[sid], ver)
            pointers.append((sid, len(blob), offset + 1))
            bodies.append(blob)
            offset += len(blob)
        else:
            pointers.append((sid, 0, 0))
    s0 = _section(0, b"".join(struct.pack("<HII", *p) for p in pointers), ver, reserved0)
    body = s0 + b"".join(bodies)
    total = 6 + len(body)
    rest = struct.pack("<I", total) + body
    crc = _crc(rest) ^ (1 if spec.corrupt_crc else 0)
    return struct.pack("<H", crc) + rest
