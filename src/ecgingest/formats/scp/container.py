"""The SCP-ECG container: record header, section 0's pointer table, section
headers and CRCs.

The byte work (the pointer table with the section headers it points to, and
every CRC) runs in one kernel pass (``scan_container``); the rules of a
conformant table are checked here, once, on the plain rows it returns.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..._ext import scp as _k
from ...errors import ChecksumError, HeaderError, TruncatedError
from .._base import DecodeContext, Probe

__all__ = ["Section", "Container", "PendingCrcs", "crc16", "sniff", "read_container",
           "version_label", "section_versions"]

VERSIONS = {10: "1.0", 11: "1.0", 12: "1.0", 13: "1.3", 20: "2.0", 21: "2.1", 22: "2.2",
            29: "3.0", 30: "3.0"}
"""Protocol version byte -> SCP-ECG version."""

_HEAD = struct.Struct("<HI")  # record CRC and length; section id and length


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE, the checksum of SCP-ECG records and sections."""
    return int(_k.crc16(np.frombuffer(data, dtype=np.uint8)))


def sniff(probe: Probe) -> bool:
    """Section 0 shape at byte 6 (BioSig's heuristics, minus the index and CRC
    checks, so that damaged SCP files are claimed and get a precise error)."""
    head = probe.head(64)
    if len(head) < 32:
        return False
    sec_id, sec_len = _HEAD.unpack_from(head, 8)
    if sec_id != 0 or sec_len < 26 or sec_len % 10 != 6:
        return False
    if head[16:22] not in (b"SCPECG", b"\0" * 6):
        return False
    pid, plen = _HEAD.unpack_from(head, 22)
    return bool(pid == 0 and plen == sec_len)


class Section(NamedTuple):
    """One section of the record: where its header starts (0-based), the
    length used for it, and the version bytes of its header."""

    id: int
    offset: int
    length: int
    version: int
    protocol: int

    @property
    def body(self) -> int:
        """Offset of the first byte after the 16-byte section header."""
        return self.offset + 16

    @property
    def end(self) -> int:
        return self.offset + self.length


def section_versions(sections: Mapping[int, Section]) -> dict[int, tuple[int, int]]:
    """``{id: (version, protocol)}`` of every section, by id."""
    return {section[0]: section[3:5] for section in sorted(sections.values())}


def record_crc_message(stored: int, computed: int) -> str:
    return f"record CRC mismatch: stored 0x{stored:04X}, computed 0x{computed:04X}"


def section_crc_message(sid: int, stored: int, computed: int) -> str:
    return f"section {sid} CRC mismatch: stored 0x{stored:04X}, computed 0x{computed:04X}"


class PendingCrcs(NamedTuple):
    """CRC checks left to the samples' ``nogil`` kernel call, with the places in
    the warning list their messages take when they fail (a tolerant read only:
    a strict one checks them first, since a mismatch is its error)."""

    rows: np.ndarray
    """``scan_container`` rows; the kernel fills column 8."""
    end: int
    record_at: int
    """Index in the warnings of the record CRC message."""
    record_stored: int
    sections: list[tuple[int, int, int, int]]
    """``(index in the warnings, row, id, stored CRC)`` per section."""

    def settle(self, ctx: DecodeContext, record_crc: int) -> None:
        """The messages of the checks that failed, each at its place."""
        late = []
        if record_crc != self.record_stored:
            late.append((self.record_at, record_crc_message(self.record_stored, record_crc)))
        computed = self.rows[:, 8].tolist()
        for at, row, sid, stored in self.sections:
            if computed[row] != stored:
                late.append((at, section_crc_message(sid, stored, computed[row])))
        for at, message in reversed(late):
            ctx.warnings.insert(at, message)

    def settle_now(self, data: bytes, ctx: DecodeContext) -> None:
        """Compute the CRCs here (no kernel call left to fold them into)."""
        self.settle(ctx, _k.container_crcs(data, self.rows, self.end))


class Container(NamedTuple):
    sections: dict[int, Section]
    protocol: int
    pending: PendingCrcs | None
    """CRC checks left to the samples' kernel call (tolerant reads), else None."""


def read_container(data: bytes, ctx: DecodeContext, *, defer_crcs: bool) -> Container:
    """Record header, section 0 pointer table and every section header.

    With ``defer_crcs`` the CRCs are not computed here but returned as pending
    checks for the samples' kernel call, which releases the GIL, so threads
    decoding other records overlap them; otherwise they are checked here.
    """
    end, stored_crc = _record_header(data, ctx)
    crc, rows = _k.scan_container(data, end, not defer_crcs)
    pending = PendingCrcs(rows, end, len(ctx.warnings), stored_crc, []) if defer_crcs else None
    if pending is None and crc != stored_crc:
        ctx.deviation(record_crc_message(stored_crc, crc), cls=ChecksumError, offset=0,
                      field="record CRC")
    _check_section0_header(data, end, ctx)
    sections = _walk_pointer_table(rows, end, pending, ctx)
    if 0 not in sections:
        ctx.deviation("section 0 has no pointer to itself", field="pointer table")
    return Container(sections, data[15], pending)


def _record_header(data: bytes, ctx: DecodeContext) -> tuple[int, int]:
    """The record's length (at most the bytes present) and its stored CRC."""
    n = len(data)
    if n < 6 + 16 + 10:
        ctx.fail(TruncatedError, f"{n} bytes is too short for an SCP-ECG record (record "
                 "header, section 0 header and one pointer need 32)", offset=0)
    stored_crc, rec_len = _HEAD.unpack_from(data)
    if rec_len > n:
        ctx.fail(TruncatedError, f"the record header says the file is {rec_len} bytes but it "
                 f"has {n}; the file is truncated or not a conformant SCP-ECG record",
                 offset=2, field="record length")
    if rec_len < 6 + 16:
        ctx.fail(HeaderError, f"the record header gives a length of {rec_len} bytes, "
                 "smaller than the headers themselves", offset=2, field="record length")
    if rec_len < n:
        ctx.deviation(f"{n - rec_len} bytes follow the {rec_len} bytes the record header "
                      "declares; they are ignored", field="record length")
    return rec_len, stored_crc


def _check_section0_header(data: bytes, end: int, ctx: DecodeContext) -> None:
    s0_id, s0_len = _HEAD.unpack_from(data, 8)
    if s0_id != 0:
        ctx.fail(HeaderError, f"the first section has id {s0_id}, not 0 (pointer table); "
                 "not an SCP-ECG record", offset=8, field="section 0 id")
    if s0_len < 16 or 6 + s0_len > end:
        ctx.fail(TruncatedError, f"section 0 declares {s0_len} bytes but the record holds "
                 f"{end - 6} after its header", offset=10, field="section 0 length")
    if (s0_len - 16) % 10:
        ctx.deviation(f"section 0 length {s0_len} leaves a partial pointer entry",
                      offset=10, field="section 0 length")


def _walk_pointer_table(rows: np.ndarray, end: int, pending: PendingCrcs | None,
                        ctx: DecodeContext) -> dict[int, Section]:
    """The pointer entries (``scan_container`` rows) in order, each problem said
    as it is met: the one place that says what a conformant table is."""
    sections: dict[int, Section] = {}
    late = None if pending is None else pending.sections
    for row, (sid, slen, index, stored, hid, hlen, sec_version, sec_protocol,
              s_crc) in enumerate(rows.tolist()):
        if slen == 0 or index == 0:
            continue
        start = index - 1
        length = slen
        if (hid != sid or hlen != slen or slen < 16 or start + slen > end
                or sid in sections or (start != 6 and sid == 0)):
            length = _irregular_entry(ctx, sections, 22 + 10 * row, sid, slen, index, end, hid,
                                      hlen)
        if late is not None:
            late.append((len(ctx.warnings), row, sid, stored))
        elif s_crc != stored:
            ctx.deviation(section_crc_message(sid, stored, s_crc), cls=ChecksumError,
                          offset=start, field=f"section {sid} CRC")
        sections[sid] = _new_section(Section, (sid, start, length, sec_version, sec_protocol))
    return sections


_new_section = tuple.__new__  # a NamedTuple made from its fields without the Python __new__


def _irregular_entry(ctx: DecodeContext, sections: dict[int, Section], o: int, sid: int,
                     slen: int, index: int, end: int, hid: int, hlen: int) -> int:
    """The checks of one pointer entry (at offset ``o``) in order: the first
    fatal one raises, a header length that differs is noted. Returns the
    section length to use."""
    start = index - 1
    if sid in sections:
        ctx.fail(HeaderError, f"section {sid} is defined twice in the pointer table",
                 offset=o, field="pointer table")
    if start + slen > end or slen < 16:
        ctx.fail(HeaderError, f"pointer to section {sid} (index {index}, length {slen}) "
                 f"falls outside the {end}-byte record; the file is corrupt",
                 offset=o, field=f"section {sid} pointer")
    if sid == 0 and start != 6:
        ctx.fail(HeaderError, f"section 0 points to itself at index {index}, not 7; the "
                 "pointer table is not conformant", offset=o + 6,
                 field="section 0 pointer")
    if hid != sid:
        ctx.fail(HeaderError, f"pointer for section {sid} leads to a section header with "
                 f"id {hid}", offset=start + 2, field=f"section {sid} id")
    if hlen != slen:
        ctx.deviation(f"section {sid}: header length {hlen} differs from the pointer "
                      f"length {slen}; using the smaller", offset=start + 4,
                      field=f"section {sid} length")
        return max(16, min(hlen, slen))
    return slen


def version_label(protocol: int, sections: Mapping[int, Section],
                  ctx: DecodeContext) -> tuple[str, float]:
    """The SCP-ECG version: the record's protocol byte, else a section's."""
    label = VERSIONS.get(protocol)
    if label is not None:  # the usual case: the record's own byte
        return label, float(label)
    for section in sections.values():
        if section.protocol in VERSIONS:
            label = VERSIONS[section.protocol]
            return label, float(label)
    if protocol == 0:
        return "1.0", 1.0  # pre-1.3 files often leave the version bytes zero
    ctx.deviation(f"unknown protocol version byte {protocol}; decoding as 2.x",
                  field="protocol version")
    return "2.0", 2.0
