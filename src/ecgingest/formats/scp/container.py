"""The SCP-ECG container: record header, section 0's pointer table, section
headers and CRCs.

The byte work and the rules of a conformant container (record header, the
pointer table with the section headers it points to, every CRC) run in one
kernel pass (``scan_headers``), which also reads section 1's tags and the
fixed-layout headers of sections 2 to 6; it returns plain values and problem codes, worded here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

import numpy as np

from ..._ext import scp as _k
from ...errors import ChecksumError, HeaderError, TruncatedError
from .._base import DecodeContext, Probe
from .fields import ByteData, new_fields

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


_P = _k.PROBLEM_CODES
_TRAILING, _RECORD_CRC, _S0_PARTIAL, _LENGTH_DIFFERS = (
    _P["TRAILING"], _P["RECORD_CRC"], _P["S0_PARTIAL"], _P["LENGTH_DIFFERS"])


class PendingCrcs(NamedTuple):
    """CRC checks left to the samples' ``nogil`` kernel call, with the places in
    the warning list their messages take when they fail (a tolerant read only:
    a strict one checks them first, since a mismatch is its error)."""

    rows: np.ndarray
    """``scan_headers`` rows; the kernel fills column 8."""
    stored: list[int]
    """The stored CRC of each row, -1 for an entry not used."""
    end: int
    record_at: int
    """Index in the warnings of the record CRC message."""
    record_stored: int
    problems: list[tuple[int, ...]]
    """The container's problems, which place each section's message."""

    def settle(self, ctx: DecodeContext, record_crc: int, sections_differ: bool = True) -> None:
        """The messages of the checks that failed, each at its place; with
        ``sections_differ`` False (the kernel found every section CRC equal to
        its stored one) the rows are not read."""
        late = []
        if record_crc != self.record_stored:
            late.append((self.record_at, record_crc_message(self.record_stored, record_crc)))
        computed = self.rows[:, 8].tolist() if sections_differ else self.stored
        if computed != self.stored:
            # after the record CRC: the partial-entry note, and the notes of the
            # entries up to the section's own
            at = self.record_at + sum(p[0] == _S0_PARTIAL for p in self.problems)
            noted = sorted(p[5] for p in self.problems if p[0] == _LENGTH_DIFFERS)
            for row, (stored, crc) in enumerate(zip(self.stored, computed)):
                if crc != stored:
                    sid = int(self.rows[row, 0])
                    late.append((at + sum(k <= row for k in noted),
                                 section_crc_message(sid, stored, crc)))
        for at, message in reversed(late):
            ctx.warnings.insert(at, message)

    def settle_now(self, data: ByteData, ctx: DecodeContext) -> None:
        """Compute the CRCs here (no kernel call left to fold them into)."""
        self.settle(ctx, _k.container_crcs(data, self.rows, self.end))


class Container(NamedTuple):
    sections: dict[int, Section]
    protocol: int
    pending: PendingCrcs | None
    """CRC checks left to the samples' kernel call (tolerant reads), else None."""
    s1: _k._PatientTags | None
    """Section 1's tags as ``scan_headers`` reads them, None without it."""
    ntables: int | None
    """Section 2's table count (-1: the section is shorter than it), None without it."""
    s3: tuple[Any, ...] | None
    s4: tuple[Any, ...] | None
    s5: tuple[Any, ...] | None
    s6: tuple[Any, ...] | None
    """The fixed-layout headers of sections 3 to 6 as ``scan_headers`` reads them."""


def read_container(data: ByteData, ctx: DecodeContext, *, defer_crcs: bool) -> Container:
    """Record header, section 0 pointer table, every section header, section 1's
    tags and the fixed-layout headers of sections 2 to 6, in one kernel pass
    (``scan_headers``); its problems are worded here, in the order it met them.

    With ``defer_crcs`` the CRCs are not computed here but returned as pending
    checks for the samples' kernel call, which releases the GIL, so threads
    decoding other records overlap them; otherwise they are checked here.
    """
    (problems, found, rows, stored, end, stored_crc, _, s1, ntables, s3, s4, s5,
     s6) = _k.scan_headers(data, not defer_crcs)
    record_at = len(ctx.warnings)
    for problem in problems:
        _REPORTS[problem[0]](ctx, *problem[1:])
    # no fatal problem: every value is there
    assert found is not None and rows is not None and stored is not None \
        and end is not None and stored_crc is not None
    pending = None
    if defer_crcs:
        record_at += sum(p[0] == _TRAILING for p in problems)
        pending = new_fields(PendingCrcs, (rows, stored, end, record_at, stored_crc, problems))
    sections = {row[0]: new_fields(Section, row) for row in found}
    return new_fields(Container, (sections, data[15], pending, s1, ntables, s3, s4, s5, s6))


def _short(ctx: DecodeContext, n: int) -> NoReturn:
    ctx.fail(TruncatedError, f"{n} bytes is too short for an SCP-ECG record (record "
             "header, section 0 header and one pointer need 32)", offset=0)


def _length_past_end(ctx: DecodeContext, rec_len: int, n: int) -> NoReturn:
    ctx.fail(TruncatedError, f"the record header says the file is {rec_len} bytes but it "
             f"has {n}; the file is truncated or not a conformant SCP-ECG record",
             offset=2, field="record length")


def _length_small(ctx: DecodeContext, rec_len: int) -> NoReturn:
    ctx.fail(HeaderError, f"the record header gives a length of {rec_len} bytes, "
             "smaller than the headers themselves", offset=2, field="record length")


def _trailing(ctx: DecodeContext, extra: int, rec_len: int) -> None:
    ctx.deviation(f"{extra} bytes follow the {rec_len} bytes the record header "
                  "declares; they are ignored", field="record length")


def _record_crc(ctx: DecodeContext, stored: int, computed: int) -> None:
    ctx.deviation(record_crc_message(stored, computed), cls=ChecksumError, offset=0,
                  field="record CRC")


def _s0_id(ctx: DecodeContext, sid: int) -> NoReturn:
    ctx.fail(HeaderError, f"the first section has id {sid}, not 0 (pointer table); "
             "not an SCP-ECG record", offset=8, field="section 0 id")


def _s0_length(ctx: DecodeContext, s0_len: int, available: int) -> NoReturn:
    ctx.fail(TruncatedError, f"section 0 declares {s0_len} bytes but the record holds "
             f"{available} after its header", offset=10, field="section 0 length")


def _s0_partial(ctx: DecodeContext, s0_len: int) -> None:
    ctx.deviation(f"section 0 length {s0_len} leaves a partial pointer entry",
                  offset=10, field="section 0 length")


def _duplicate(ctx: DecodeContext, o: int, sid: int) -> NoReturn:
    ctx.fail(HeaderError, f"section {sid} is defined twice in the pointer table",
             offset=o, field="pointer table")


def _outside(ctx: DecodeContext, o: int, sid: int, index: int, slen: int, end: int
             ) -> NoReturn:
    ctx.fail(HeaderError, f"pointer to section {sid} (index {index}, length {slen}) "
             f"falls outside the {end}-byte record; the file is corrupt",
             offset=o, field=f"section {sid} pointer")


def _s0_index(ctx: DecodeContext, o: int, index: int) -> NoReturn:
    ctx.fail(HeaderError, f"section 0 points to itself at index {index}, not 7; the "
             "pointer table is not conformant", offset=o + 6, field="section 0 pointer")


def _id_mismatch(ctx: DecodeContext, start: int, sid: int, hid: int) -> NoReturn:
    ctx.fail(HeaderError, f"pointer for section {sid} leads to a section header with "
             f"id {hid}", offset=start + 2, field=f"section {sid} id")


def _length_differs(ctx: DecodeContext, start: int, sid: int, hlen: int, slen: int,
                    row: int) -> None:
    ctx.deviation(f"section {sid}: header length {hlen} differs from the pointer "
                  f"length {slen}; using the smaller", offset=start + 4,
                  field=f"section {sid} length")


def _section_crc(ctx: DecodeContext, start: int, sid: int, stored: int, computed: int
                 ) -> None:
    ctx.deviation(section_crc_message(sid, stored, computed), cls=ChecksumError,
                  offset=start, field=f"section {sid} CRC")


def _no_section0(ctx: DecodeContext) -> None:
    ctx.deviation("section 0 has no pointer to itself", field="pointer table")


_REPORTS: dict[int, Callable[..., None]] = {
    _P["SHORT"]: _short, _P["LENGTH_PAST_END"]: _length_past_end,
    _P["LENGTH_SMALL"]: _length_small, _TRAILING: _trailing, _RECORD_CRC: _record_crc,
    _P["S0_ID"]: _s0_id, _P["S0_LENGTH"]: _s0_length, _S0_PARTIAL: _s0_partial,
    _P["DUPLICATE"]: _duplicate, _P["OUTSIDE"]: _outside, _P["S0_INDEX"]: _s0_index,
    _P["ID_MISMATCH"]: _id_mismatch, _LENGTH_DIFFERS: _length_differs,
    _P["SECTION_CRC"]: _section_crc, _P["NO_SECTION0"]: _no_section0,
}
"""``scan_headers`` problem code -> what it tells the reader (fatal ones raise)."""
assert set(_REPORTS) == set(_P.values())


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
