"""SCP-ECG (EN 1064 / ISO 11073-91064), versions 1.0, 1.3, 2.x and 3.0.

Container, section 1 and the measurement / statement sections are parsed
here; every per-sample step (CRC, Huffman, differences, bimodal
interpolation, reference-beat addition) runs in ``ecgingest._ext.scp`` with
the GIL released. Every length and index read from the file is checked
against the bytes present before anything is allocated.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .._ext import scp as _k
from ..errors import (
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..record import Metadata, Record, new_signal
from ._base import DecodeContext, Probe, SingleFileFormat

__all__ = ["FORMAT", "decode", "sniff", "LEAD_NAMES", "crc16", "ReferenceBeat"]

_FMT = "scp"

#: Lead names by SCP-ECG lead id (section 3), ids 0..184; larger ids are unspecified.
LEAD_NAMES: tuple[str, ...] = (
    "unspecified", "I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "V7",
    "V2R", "V3R", "V4R", "V5R", "V6R", "V7R", "X", "Y", "Z", "CC5",
    "CM5", "LA", "RA", "LL", "fI", "fE", "fC", "fA", "fM", "fF",
    "fH", "dI", "dII", "dV1", "dV2", "dV3", "dV4", "dV5", "dV6", "dV7",
    "dV2R", "dV3R", "dV4R", "dV5R", "dV6R", "dV7R", "dX", "dY", "dZ", "dCC5",
    "dCM5", "dLA", "dRA", "dLL", "dfI", "dfE", "dfC", "dfA", "dfM", "dfF",
    "dfH", "III", "aVR", "aVL", "aVF", "-aVR", "V8", "V9", "V8R", "V9R",
    "D", "A", "J", "Defib", "Extern", "A1", "A2", "A3", "A4", "dV8",
    "dV9", "dV8R", "dV9R", "dD", "dA", "dJ", "Chest", "V", "VR", "VL",
    "VF", "MCL", "MCL1", "MCL2", "MCL3", "MCL4", "MCL5", "MCL6", "CC", "CC1",
    "CC2", "CC3", "CC4", "CC6", "CC7", "CM", "CM1", "CM2", "CM3", "CM4",
    "CM6", "dIII", "daVR", "daVL", "daVF", "d-aVR", "dChest", "dV", "dVR", "dVL",
    "dVF", "CM7", "CH5", "CS5", "CB5", "CR5", "ML", "AB1", "AB2", "AB3",
    "AB4", "ES", "AS", "AI", "S", "dDefib", "dExtern", "dA1", "dA2", "dA3",
    "dA4", "dMCL1", "dMCL2", "dMCL3", "dMCL4", "dMCL5", "dMCL6", "RL", "CV5RL", "CV6LL",
    "CV6LU", "V10", "dMCL", "dCC", "dCC1", "dCC2", "dCC3", "dCC4", "dCC6", "dCC7",
    "dCM", "dCM1", "dCM2", "dCM3", "dCM4", "dCM6", "dCM7", "dCH5", "dCS5", "dCB5",
    "dCR5", "dML", "dAB1", "dAB2", "dAB3", "dAB4", "dES", "dAS", "dAI", "dS",
    "dRL", "dCV5RL", "dCV6LL", "dCV6LU", "dV10",
)
assert len(LEAD_NAMES) == 185

#: Section 1 tag 14/15 byte 16 (language support code) -> Python codec.
_LANGUAGE_CODECS: dict[int, str] = {
    0x00: "latin-1",  # "ASCII only"; bytes >= 0x80 read as Latin-1 rather than failing
    0x01: "latin-1", 0x03: "iso8859-2", 0x0B: "iso8859-4", 0x13: "iso8859-5",
    0x1B: "iso8859-6", 0x23: "iso8859-7", 0x2B: "iso8859-8", 0x33: "iso8859-11",
    0x3B: "iso8859-15", 0x07: "utf-8", 0x0F: "shift_jis", 0x17: "iso2022_jp",
    0x1F: "euc_jp", 0x27: "gb2312", 0x2F: "euc_kr",
}

_VERSIONS = {10: "1.0", 11: "1.0", 12: "1.0", 13: "1.3", 20: "2.0", 21: "2.1", 22: "2.2",
             29: "3.0", 30: "3.0"}

_MAX_BIMODAL_FACTOR = 64
_MAX_BIMODAL_SAMPLES = 1 << 22  # per lead; 64 x the values 65535 bytes of 1-bit codes hold

_STATUS_TEXT = {
    _k.STATUS_TRUNCATED: (TruncatedError, "data ends before the values it declares"),
    _k.STATUS_BAD_VALUE: (CorruptDataError, "a value is out of range"),
    _k.STATUS_OVERFLOW: (CorruptDataError, "a multiplier or value overflows"),
    _k.STATUS_BAD_CODE: (CorruptDataError, "a bit sequence matches no Huffman code"),
    _k.STATUS_UNSUPPORTED: (UnsupportedFeatureError, "an encoding ecgingest does not decode"),
}

#: Section 10 per-lead measurement names, in stored order (int16 each).
_LEAD_MEASUREMENTS = (
    "p_duration", "pr_interval", "qrs_duration", "qt_interval", "q_duration", "r_duration",
    "s_duration", "r_prime_duration", "s_prime_duration", "q_amplitude", "r_amplitude",
    "s_amplitude", "r_prime_amplitude", "s_prime_amplitude", "j_point_amplitude",
    "p_plus_amplitude", "p_minus_amplitude", "t_plus_amplitude", "t_minus_amplitude",
    "st_slope", "p_morphology", "t_morphology", "iso_segment_qrs_onset",
    "iso_segment_qrs_end", "intrinsicoid_deflection", "quality_code",
    "st_amplitude_j20", "st_amplitude_j60", "st_amplitude_j80", "st_amplitude_rr16",
    "st_amplitude_rr8",
)


def crc16(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE, the checksum of SCP-ECG records and sections."""
    return int(_k.crc16(_as_u8(data)))


def _as_u8(data: bytes | memoryview | bytearray) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


# ---------------------------------------------------------------- detection

def sniff(probe: Probe) -> bool:
    """Section 0 shape at byte 6 (BioSig's heuristics, minus the index and CRC
    checks, so that damaged SCP files are claimed and get a precise error)."""
    try:
        head = probe.head(64)
        if len(head) < 32:
            return False
        sec_id, sec_len = struct.unpack_from("<HI", head, 8)
        if sec_id != 0 or sec_len < 26 or sec_len % 10 != 6:
            return False
        if head[16:22] not in (b"SCPECG", b"\0" * 6):
            return False
        pid, plen = struct.unpack_from("<HI", head, 22)
        return pid == 0 and plen == sec_len
    except Exception:  # sniffing never raises
        return False


# ---------------------------------------------------------------- helpers

@dataclass
class _Ctx:
    """Per-file decoding state: where errors happen and what was tolerated."""

    path: str | None
    strict: bool
    warnings: list[str] = field(default_factory=list)
    codec: str = "latin-1"

    def error(self, cls: type[EcgIngestError], message: str, *, offset: int | None = None,
              field: str | None = None) -> EcgIngestError:
        return cls(message, format=_FMT, path=self.path, offset=offset, field=field)

    def deviation(self, message: str, *, cls: type[EcgIngestError] = HeaderError,
                  offset: int | None = None, field: str | None = None) -> None:
        """A non-conformance: an error with ``strict``, else a warning on the record."""
        if self.strict:
            raise self.error(cls, message + " (strict mode)", offset=offset, field=field)
        self.warnings.append(message)

    def note(self, message: str) -> None:
        """A tolerated oddity that is not worth failing even a strict read."""
        self.warnings.append(message)

    def text(self, raw: bytes) -> str:
        """A string field: up to its first NUL, in the encoding section 1 declares."""
        raw = raw.split(b"\0", 1)[0]
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.note(f"text {raw[:20]!r} is not valid {self.codec}; undecodable "
                      "bytes replaced")
            return raw.decode(self.codec, errors="replace")


_Section = _k.Section


_LEAD_KEYS = ("lead_id", "lead", *_LEAD_MEASUREMENTS)


def _u16(b: bytes, o: int) -> int:
    return b[o] | (b[o + 1] << 8)


def _i16(b: bytes, o: int) -> int:
    v = _u16(b, o)
    return v - 0x10000 if v >= 0x8000 else v


def _u32(b: bytes, o: int) -> int:
    return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)


_RECORD_HEAD = struct.Struct("<HI")  # record CRC and length; section id and length


def _need(ctx: _Ctx, data: bytes, offset: int, size: int, end: int, what: str) -> None:
    if offset < 0 or offset + size > end or offset + size > len(data):
        raise ctx.error(TruncatedError,
                        f"{what} needs {size} bytes at byte {offset} but its section or the "
                        "file ends before that; the file is cut or corrupt", offset=offset,
                        field=what)


# ---------------------------------------------------------------- container

class _PendingCrcs(NamedTuple):
    """CRC checks left to the samples' ``nogil`` kernel call, with the places in
    the warning list their messages take when they fail (a tolerant read only:
    a strict one checks them first, since a mismatch is its error)."""

    rows: np.ndarray  # scan_container rows; the kernel fills column 8
    end: int
    record_at: int  # index in ctx.warnings of the record CRC message
    record_stored: int
    sections: list[tuple[int, int, int, int]]  # (index in ctx.warnings, row, id, stored CRC)

    def settle(self, ctx: _Ctx, record_crc: int) -> None:
        late = []
        if record_crc != self.record_stored:
            late.append((self.record_at, _record_crc_message(self.record_stored, record_crc)))
        for at, _, sid, stored, computed in _k.crc_failures(self.rows, self.sections):
            late.append((at, _section_crc_message(sid, stored, computed)))
        for at, message in reversed(late):
            ctx.warnings.insert(at, message)


def _record_crc_message(stored: int, computed: int) -> str:
    return f"record CRC mismatch: stored 0x{stored:04X}, computed 0x{computed:04X}"


def _section_crc_message(sid: int, stored: int, computed: int) -> str:
    return f"section {sid} CRC mismatch: stored 0x{stored:04X}, computed 0x{computed:04X}"


def _read_container(data: bytes, ctx: _Ctx
                    ) -> tuple[dict[int, _Section], int, int, _PendingCrcs | None]:
    """Record header, section 0 pointer table and every section header.

    A tolerant read does not compute the CRCs here but returns them as
    pending checks for the samples' kernel call, which releases the GIL, so
    threads decoding other records overlap them; a strict read checks them
    here, since a mismatch is its error.
    """
    n = len(data)
    if n < 6 + 16 + 10:
        raise ctx.error(TruncatedError, f"{n} bytes is too short for an SCP-ECG record "
                        "(record header, section 0 header and one pointer need 32)", offset=0)
    stored_crc, rec_len = _RECORD_HEAD.unpack_from(data)
    if rec_len > n:
        raise ctx.error(TruncatedError,
                        f"the record header says the file is {rec_len} bytes but it has {n}; "
                        "the file is truncated or not a conformant SCP-ECG record",
                        offset=2, field="record length")
    if rec_len < 6 + 16:
        raise ctx.error(HeaderError, f"the record header gives a length of {rec_len} bytes, "
                        "smaller than the headers themselves", offset=2, field="record length")
    if rec_len < n:
        ctx.deviation(f"{n - rec_len} bytes follow the {rec_len} bytes the record header "
                      "declares; they are ignored", field="record length")
    end = rec_len
    s0_id, s0_len = _RECORD_HEAD.unpack_from(data, 8)
    # the pointer table and the section headers in one kernel pass (the CRCs too, unless
    # they are left to the samples' kernel call)
    defer = not ctx.strict
    crc, rows = _k.scan_container(data, end, not defer)
    pending = _PendingCrcs(rows, end, len(ctx.warnings), stored_crc, []) if defer else None
    if pending is None and crc != stored_crc:
        ctx.deviation(_record_crc_message(stored_crc, crc), cls=ChecksumError, offset=0,
                      field="record CRC")
    # section 0
    if s0_id != 0:
        raise ctx.error(HeaderError, f"the first section has id {s0_id}, not 0 (pointer "
                        "table); not an SCP-ECG record", offset=8, field="section 0 id")
    if s0_len < 16 or 6 + s0_len > end:
        raise ctx.error(TruncatedError, f"section 0 declares {s0_len} bytes but the record "
                        f"holds {end - 6} after its header", offset=10, field="section 0 length")
    if (s0_len - 16) % 10:
        ctx.deviation(f"section 0 length {s0_len} leaves a partial pointer entry",
                      offset=10, field="section 0 length")
    version, protocol = data[14], data[15]
    conformant = _k.conformant_sections(rows, end, len(ctx.warnings), pending is not None)
    if conformant is not None:  # the common case: nothing to say about any entry
        sections, checks = conformant
        if pending is not None:
            pending.sections.extend(checks)
    else:
        sections = _walk_pointer_table(rows, end, pending, ctx)
    if 0 not in sections:
        ctx.deviation("section 0 has no pointer to itself", field="pointer table")
    return sections, version, protocol, pending


def _walk_pointer_table(rows: np.ndarray, end: int, pending: _PendingCrcs | None,
                        ctx: _Ctx) -> dict[int, _Section]:
    """The pointer entries one by one, each problem said in order."""
    sections: dict[int, _Section] = {}
    o = 12
    for row, (sid, slen, index, stored, hid, hlen, sec_version, sec_protocol,
              s_crc) in enumerate(rows.tolist()):
        o += 10  # this entry's offset
        if slen == 0 or index == 0:
            continue
        if sid in sections:
            raise ctx.error(HeaderError, f"section {sid} is defined twice in the pointer table",
                            offset=o, field="pointer table")
        start = index - 1
        if start + slen > end or slen < 16:
            raise ctx.error(HeaderError,
                            f"pointer to section {sid} (index {index}, length {slen}) falls "
                            f"outside the {end}-byte record; the file is corrupt",
                            offset=o, field=f"section {sid} pointer")
        if sid == 0 and start != 6:
            raise ctx.error(HeaderError, f"section 0 points to itself at index {index}, "
                            "not 7; the pointer table is not conformant",
                            offset=o + 6, field="section 0 pointer")
        if hid != sid:
            raise ctx.error(HeaderError, f"pointer for section {sid} leads to a section "
                            f"header with id {hid}", offset=start + 2, field=f"section {sid} id")
        length = slen
        if hlen != slen:
            ctx.deviation(f"section {sid}: header length {hlen} differs from the pointer "
                          f"length {slen}; using the smaller", offset=start + 4,
                          field=f"section {sid} length")
            length = max(16, min(hlen, slen))
        if pending is not None:
            pending.sections.append((len(ctx.warnings), row, sid, stored))
        elif s_crc != stored:
            ctx.deviation(_section_crc_message(sid, stored, s_crc), cls=ChecksumError,
                          offset=start, field=f"section {sid} CRC")
        sections[sid] = _Section(sid, start, length, sec_version, sec_protocol)
    return sections


def _version_label(ctx: _Ctx, protocol: int, sections: Mapping[int, _Section]) -> tuple[str, float]:
    if protocol in _VERSIONS:  # the record's own byte: the common case
        label = _VERSIONS[protocol]
        return label, float(label)
    candidates = [s.protocol for s in sections.values()]
    for value in candidates:
        if value in _VERSIONS:
            label = _VERSIONS[value]
            return label, float(label)
    if protocol == 0:
        return "1.0", 1.0  # pre-1.3 files often leave the version bytes zero
    ctx.deviation(f"unknown protocol version byte {protocol}; decoding as 2.x",
                  field="protocol version")
    return "2.0", 2.0


# ---------------------------------------------------------------- section 1

def _parse_section1(data: bytes, sec: _Section, ctx: _Ctx) -> tuple[Metadata, dict[str, Any]]:
    """Tag / length / value triplets up to tag 255 or the section end."""
    # the triplets split in the kernel module
    tags, language_codes, cut = _k.tag_walk(data, data, sec.body, sec.end)
    if cut >= 0:
        tag, length = data[cut], _u16(data, cut + 1)
        ctx.deviation(f"section 1 tag {tag} declares {length} bytes beyond the section; "
                      "the remaining tags are ignored", cls=TruncatedError, offset=cut,
                      field=f"section 1 tag {tag}")
    # the language code of the acquiring device decides how every text is decoded
    for code in language_codes:
        if code in _LANGUAGE_CODECS:
            ctx.codec = _LANGUAGE_CODECS[code]
        else:
            ctx.note(f"unknown language support code 0x{code:02X}; texts read as Latin-1")
    # the tags read into fields in the kernel module (texts, dates, units)
    fields, info, acq_date, acq_time, tz_minutes = _k.section1_values(tags, ctx)
    acquiring = info.get("acquiring_device")
    if acquiring:
        model = acquiring.get("model") or ""
        number = acquiring.get("device_id") or 0  # 0: not given
        fields["device_id"] = model or (str(number) if number else None)
    start: dt.datetime | dt.time | None = None
    if acq_date is not None and acq_time is not None:
        tz = dt.timezone(dt.timedelta(minutes=tz_minutes)) if tz_minutes is not None and \
            abs(tz_minutes) < 24 * 60 else None
        local = dt.datetime.combine(acq_date, acq_time, tz)
        start = local
        if tz is not None:  # the field is UTC: a local time of unknown offset is not one
            fields["recording_start_time"] = local.astimezone(dt.timezone.utc)
        if tz_minutes is not None and tz_minutes % 60 == 0 and -12 * 60 <= tz_minutes <= 14 * 60:
            # Etc/GMT names exist from GMT-14 to GMT+12 (their sign is inverted)
            hours = -tz_minutes // 60
            fields["recording_time_zone"] = "Etc/GMT" if hours == 0 else f"Etc/GMT{hours:+d}"
    elif acq_time is not None:
        start = acq_time
    info["_start"] = start
    return Metadata(**{k: v for k, v in fields.items() if v is not None}), info


# ---------------------------------------------------------------- section 2

def _default_table() -> np.ndarray:
    rows = [(1, 1, 1, 0, 0)]
    for v in range(1, 9):
        prefix = ((1 << v) - 1) << 2
        rows.append((v + 2, v + 2, 1, v, prefix))
        rows.append((v + 2, v + 2, 1, -v, prefix | 1))
    rows.append((10, 18, 1, 0, 0b1111111110))
    rows.append((10, 26, 1, 0, 0b1111111111))
    return np.array(rows, dtype=np.int32)


_DEFAULT_CODES = _default_table()


def _reverse_bits(value: int, nbits: int) -> int:
    out = 0
    for i in range(nbits):
        out = (out << 1) | ((value >> i) & 1)
    return out


@dataclass(frozen=True)
class _Huffman:
    codes: np.ndarray
    offsets: np.ndarray
    default: bool
    lookup: tuple  # the arrays of ``_k.build_luts`` after its status

    @property
    def arrays(self) -> tuple:
        """``(codes, offsets, *lookup)``, as ``_k.decode_signals`` takes them."""
        return (self.codes, self.offsets, *self.lookup)


def _build_huffman(ctx: _Ctx, codes: np.ndarray, offsets: np.ndarray, default: bool,
                   offset: int) -> _Huffman:
    status, *lookup = _k.build_luts(codes, offsets)
    if status == _k.STATUS_BAD_VALUE:
        raise ctx.error(CorruptDataError, "a Huffman code has an impossible bit count "
                        "(prefix 1..32 bits, at most 32 value bits) or a code wider than its "
                        "prefix", offset=offset, field="section 2")
    if status == _k.STATUS_OVERFLOW:
        raise ctx.error(CorruptDataError, "the Huffman tables would need more than 4 million "
                        "lookup entries; the section is not a plausible set of tables",
                        offset=offset, field="section 2")
    if status != _k.STATUS_OK:
        raise ctx.error(CorruptDataError, "a Huffman table is not prefix-free (two codes "
                        "share a bit pattern), so the data cannot be decoded unambiguously",
                        offset=offset, field="section 2")
    return _Huffman(codes, offsets, default, tuple(lookup))


_DEFAULT_HUFFMAN: _Huffman | None = None


def _parse_section2(data: bytes, sec: _Section, ctx: _Ctx) -> _Huffman | None:
    global _DEFAULT_HUFFMAN
    _need(ctx, data, sec.body, 2, sec.end, "section 2 table count")
    ntables = _u16(data, sec.body)
    if ntables == 19999:
        if _DEFAULT_HUFFMAN is None:
            _DEFAULT_HUFFMAN = _build_huffman(ctx, _DEFAULT_CODES,
                                              np.array([0, len(_DEFAULT_CODES)], np.int32),
                                              True, sec.body)
        return _DEFAULT_HUFFMAN
    if ntables == 0:
        return None
    # trust the table count; check each table's codes are really present first
    o = sec.body + 2
    rows: list[tuple[int, int, int, int, int]] = []
    offsets = [0]
    for t in range(ntables):
        _need(ctx, data, o, 2, sec.end, f"Huffman table {t + 1} code count")
        ncodes = _u16(data, o)
        o += 2
        _need(ctx, data, o, 9 * ncodes, sec.end, f"Huffman table {t + 1} codes")
        for _ in range(ncodes):
            prefix, total, mode = data[o], data[o + 1], data[o + 2]
            value = _i16(data, o + 3)
            code = _reverse_bits(_u32(data, o + 5), prefix) if prefix <= 32 else 0
            rows.append((prefix, total, mode, value, code))
            o += 9
        offsets.append(len(rows))
    codes = np.array(rows, dtype=np.int32).reshape(-1, 5)
    return _build_huffman(ctx, codes, np.array(offsets, np.int32), False, sec.body)


# ---------------------------------------------------------------- sections 3, 4

class _Leads(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    ids: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    refbeat_subtracted: bool
    simultaneous: bool
    flags: int
    labels: list[str]  # lead names
    lengths: list[int]  # samples per lead, ``end - start + 1``


def _parse_section3(data: bytes, sec: _Section, ctx: _Ctx) -> _Leads:
    _need(ctx, data, sec.body, 2, sec.end, "section 3 lead count")
    nleads, flags = data[sec.body], data[sec.body + 1]
    _need(ctx, data, sec.body + 2, 9 * nleads, sec.end, "section 3 lead table")
    ids, starts, ends, labels, lengths, bad = _k.lead_table(data, sec.body + 2, nleads,
                                                            LEAD_NAMES)
    if bad >= 0:
        o = sec.body + 2 + 9 * bad
        start, end = _u32(data, o), _u32(data, o + 4)
        raise ctx.error(HeaderError, f"lead {bad + 1} ends at sample {end}, before its start "
                        f"sample {start}", offset=o, field="section 3 sample range")
    return _Leads(ids, starts, ends, bool(flags & 1), bool(flags & 4), flags, labels, lengths)


class _Qrs(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    beat_length_ms: int
    fiducial: int
    types: np.ndarray
    starts: np.ndarray
    fiducials: np.ndarray
    ends: np.ndarray
    protected_start: np.ndarray | None
    protected_end: np.ndarray | None


def _parse_section4(data: bytes, sec: _Section, ctx: _Ctx) -> _Qrs:
    _need(ctx, data, sec.body, 6, sec.end, "section 4 header")
    length_ms, fiducial, nqrs = _u16(data, sec.body), _u16(data, sec.body + 2), \
        _u16(data, sec.body + 4)
    o = sec.body + 6
    _need(ctx, data, o, 14 * nqrs, sec.end, "section 4 QRS subtraction zones")
    # None: the section stops before its protected zones
    protected = o + 22 * nqrs <= sec.end
    types, starts, fids, ends, ps, pe = _k.qrs_zones(data, o, nqrs, protected)
    return _Qrs(length_ms, fiducial, types, starts, fids, ends,
                ps if protected else None, pe if protected else None)


# ---------------------------------------------------------------- sections 5, 6

class _Data(NamedTuple):  # a tuple: cheaper to build than a frozen dataclass
    avm: int
    interval_us: int
    differences: int
    bimodal: int
    starts: np.ndarray  # int64: byte offset of each lead's data
    lengths: np.ndarray  # int64: byte length of each lead's data
    longest: int  # the largest of ``lengths`` (0 without leads)


def _parse_data_header(data: bytes, sec: _Section, nleads: int, ctx: _Ctx) -> _Data:
    sid = sec.id
    _need(ctx, data, sec.body, 6 + 2 * nleads, sec.end, f"section {sid} header")
    b = sec.body
    avm, interval, diff, bimodal, starts, lengths, total, longest = _k.data_header(
        data, b, nleads)
    if interval == 0:
        raise ctx.error(HeaderError, f"section {sid} gives a sample interval of 0 µs",
                        offset=b + 2, field=f"section {sid} sample interval")
    if avm == 0:
        ctx.deviation(f"section {sid} gives an amplitude multiplier (AVM) of 0 nV; "
                      "physical values are all zero", offset=b, field=f"section {sid} AVM")
    if diff not in (0, 1, 2):
        raise ctx.error(UnsupportedFeatureError, f"section {sid} uses difference encoding "
                        f"{diff}; only 0 (none), 1 (first) and 2 (second) are defined",
                        offset=b + 4, field=f"section {sid} difference encoding")
    avail = sec.end - (b + 6 + 2 * nleads)
    if total > avail:
        ctx.deviation(f"section {sid} lead byte lengths add up to {total} but only {avail} "
                      "bytes follow; the last lead data is cut", cls=TruncatedError,
                      offset=b + 6, field=f"section {sid} lead lengths")
        ends = np.minimum(starts + lengths, sec.end)
        starts = np.minimum(starts, sec.end)
        lengths = ends - starts
        longest = int(lengths.max()) if nleads else 0
    return _Data(avm, interval, diff, bimodal, starts, lengths, longest)


def _raise_status(ctx: _Ctx, status: int, what: str) -> None:
    if status == _k.STATUS_OK:
        return
    cls, text = _STATUS_TEXT.get(status, (CorruptDataError, f"status {status}"))
    raise ctx.error(cls, f"{what}: {text}", field=what)


def _decode_section(data_u8: bytes, d: _Data, nsamples: int, huff: _Huffman | None,
                    ctx: _Ctx, what: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Decoded values, per-lead counts and the (min, max) of the values."""
    if huff is None:
        status, values, produced, lo, hi = _k.decode_leads(data_u8, d.starts, d.lengths,
                                                           nsamples, 0, d.differences)
    else:
        status, values, produced, lo, hi = _k.decode_leads(
            data_u8, d.starts, d.lengths, nsamples, 1, d.differences, huff.codes,
            huff.offsets, *huff.lookup)
    _raise_status(ctx, status, what)
    return values, produced, (lo, hi)


# ---------------------------------------------------------------- sections 7-11

def _parse_section7(data: bytes, sec: _Section, ctx: _Ctx) -> dict[str, Any]:
    b, end = sec.body, sec.end
    _need(ctx, data, b, 6, end, "section 7 header")
    # one dict per beat and spike, in the kernel module
    out, complete = _k.global_measurements(data, data, b, end)
    if not complete:
        ctx.note("section 7 ends inside its beat measurements; the rest ignored")
    return out


def _statement_header(data: bytes, b: int, end: int, ctx: _Ctx, sid: int) -> tuple[dict, int]:
    _need(ctx, data, b, 9, end, f"section {sid} header")
    when = None
    y, mo, d, h, mi, s = _u16(data, b + 1), *data[b + 3:b + 8]
    try:
        when = dt.datetime(y, mo, d, h, mi, s) if y else None
    except ValueError:
        ctx.note(f"section {sid} date/time is not valid; ignored")
    return {"confirmation": {0: "original", 1: "confirmed", 2: "overread"}.get(
        data[b], f"code {data[b]}"), "datetime": when}, data[b + 8]


def _parse_statements(data: bytes, sec: _Section, ctx: _Ctx, universal: bool) -> dict[str, Any]:
    head, count = _statement_header(data, sec.body, sec.end, ctx, sec.id)
    # the statements read in the kernel module
    items, cut = _k.statements(data, data, sec.body + 9, sec.end, count, universal, ctx)
    if cut >= 0:
        ctx.note(f"section {sec.id} statement {cut} runs past the section; the rest is ignored")
    head["statements"] = items
    return head


def _parse_section10(data: bytes, sec: _Section, ctx: _Ctx) -> dict[str, Any]:
    b, end = sec.body, sec.end
    _need(ctx, data, b, 4, end, "section 10 header")
    nleads = _u16(data, b)
    out: dict[str, Any] = {"manufacturer_specific": _u16(data, b + 2), "leads": []}
    # one dict per lead block, in the kernel module (the sections hold hundreds of values)
    leads, complete = _k.lead_measurements(data, data, b + 4, end, nleads, _LEAD_KEYS,
                                           LEAD_NAMES)
    out["leads"] = leads
    if not complete:
        ctx.note("section 10 ends before all its leads; the rest is ignored")
    return out


# ---------------------------------------------------------------- the decoder

@dataclass(frozen=True, eq=False)
class ReferenceBeat:
    """Section 5: the reference (median) beat of every lead, at its own rate and AVM.

    One block for all leads (``digital[lead, sample]``) rather than one
    :class:`~ecgingest.Signal` per lead: it is a reading, not a channel.
    """

    labels: tuple[str, ...]
    sample_rate: float
    digital: np.ndarray
    scale: float
    fiducial: int | None
    units: str = "uV"

    @property
    def physical(self) -> np.ndarray:
        """Microvolts, ``digital * scale``."""
        return self.digital * self.scale


def _smallest(values: np.ndarray, bounds: tuple[int, int] | None = None) -> np.ndarray:
    """The values in the smallest signed dtype that holds them (int16 / int32 / int64)."""
    if values.size == 0:
        return values.astype(np.int16)
    lo, hi = bounds if bounds is not None else (int(values.min()), int(values.max()))
    if -32768 <= lo and hi <= 32767:
        return values.astype(np.int16)
    if -(2**31) <= lo and hi < 2**31:
        return values if values.dtype == np.int32 else values.astype(np.int32)
    return values.astype(np.int64)


def decode(data: bytes | memoryview, *, name: str = "upload", path: str | None = None,
           strict: bool = False) -> Record:
    """Decode one SCP-ECG file into a :class:`~ecgingest.Record`."""
    ctx = _Ctx(path if path is not None else name, strict)
    data = bytes(data)
    sections, _, protocol, pending = _read_container(data, ctx)
    label, version = _version_label(ctx, protocol, sections)
    extras: dict[str, Any] = {"scp_version": label,
                              "scp_section_versions": _k.section_versions(sections)}
    if 1 in sections:
        metadata, info = _parse_section1(data, sections[1], ctx)
    else:
        ctx.deviation("section 1 (patient data) is missing", field="section 1")
        metadata, info = Metadata(), {"_start": None}
    start_time = info.pop("_start")
    extras["acquisition_info"] = info
    if 3 not in sections:
        raise ctx.error(HeaderError, "section 3 (lead definition) is missing, so the samples "
                        "cannot be assigned to leads", field="section 3")
    if 6 not in sections:
        raise ctx.error(HeaderError, "section 6 (rhythm data) is missing; the file holds no "
                        "signal", field="section 6")
    leads = _parse_section3(data, sections[3], ctx)
    nleads = len(leads.ids)
    huff = _parse_section2(data, sections[2], ctx) if 2 in sections else None
    qrs = _parse_section4(data, sections[4], ctx) if 4 in sections and version < 3 else None
    if 4 in sections and version >= 3:
        extras.setdefault("sections_raw", {})[4] = data[sections[4].body:sections[4].end]
    labels = leads.labels
    d6 = _parse_data_header(data, sections[6], nleads, ctx)
    lengths = leads.lengths
    if 0 in leads.starts:
        zero_start = [labels[i] for i, first in enumerate(leads.starts) if first == 0]
        ctx.note(f"section 3 numbers the samples of {', '.join(zero_start)} from 0 (they are "
                 "1-based); read as starting at 1")
    nsamples = max(lengths) if lengths else 0
    bimodal = d6.bimodal == 1 and version < 3
    if d6.bimodal not in (0, 1) or (d6.bimodal and version >= 3):
        ctx.note(f"section 6 bimodal byte is {d6.bimodal}; ignored")
    # the count of values to decode must be known before allocating: bound it by bits present
    max_bytes = d6.longest
    cap = max_bytes * 8 if huff is not None else max_bytes // 2
    d5: _Data | None = None
    beat: np.ndarray | None = None
    beat_range: tuple[int, int] | None = None
    needed = leads.refbeat_subtracted or bimodal
    read5 = 5 in sections and (needed or qrs is not None)
    added = False
    if bimodal:
        if read5:
            try:
                d5, beat, beat_range = _read_reference_beat(data, sections[5], nleads, qrs,
                                                            huff, ctx)
            except EcgIngestError as exc:
                d5 = beat = _section5_failed(ctx, exc, needed or strict)
        if d5 is None or qrs is None or qrs.protected_start is None:
            raise ctx.error(HeaderError, "section 6 is bimodally compressed but sections 4 "
                            "(protected zones) and 5 (full-rate interval) are not both present",
                            field="section 6 bimodal")
        if d6.interval_us % d5.interval_us:
            raise ctx.error(HeaderError, f"bimodal decimation: section 6 interval "
                            f"{d6.interval_us} µs is not a multiple of section 5's "
                            f"{d5.interval_us} µs", field="section 6 sample interval")
        factor = d6.interval_us // d5.interval_us
        if factor > _MAX_BIMODAL_FACTOR:
            raise ctx.error(UnsupportedFeatureError, f"bimodal decimation factor {factor} "
                            f"(section 6 / section 5 interval) is above the "
                            f"{_MAX_BIMODAL_FACTOR} ecgingest reconstructs",
                            field="section 6 sample interval")
        if nsamples > _MAX_BIMODAL_SAMPLES:
            raise ctx.error(CorruptDataError, f"section 3 declares {nsamples} samples per "
                            "lead, more than a bimodal section 6 (at most 65535 bytes per "
                            "lead) can plausibly rebuild", field="section 3 sample range")
        zs, ze = _protected_zones(qrs, nsamples, ctx)
        stored_count = int((ze - zs + 1).sum()) + _run_values(zs, ze, nsamples, factor)
        if stored_count > cap:
            raise ctx.error(TruncatedError, f"bimodal data needs {stored_count} values per "
                            "lead but section 6 cannot hold them", field="section 6")
        stored, produced, _ = _decode_section(data, d6, stored_count, huff, ctx, "section 6")
        if (produced < stored_count).any():
            raise ctx.error(TruncatedError, f"section 6 holds fewer than the {stored_count} "
                            "bimodal values per lead the protected zones require",
                            field="section 6")
        status, rhythm = _k.bimodal_expand(stored, produced, zs, ze, factor, nsamples)
        value_range = None
        _raise_status(ctx, status, "section 6 bimodal")
        rate = 1e6 / d5.interval_us
        counts = lengths
    else:
        # sections 6 and 5 and the beat addition in one kernel call (one GIL release)
        beat_len = 0
        if read5:
            try:
                d5, beat_len = _reference_beat_plan(data, sections[5], nleads, qrs, huff, ctx)
            except EcgIngestError as exc:
                d5 = _section5_failed(ctx, exc, needed or strict)
        want = min(nsamples, cap)
        args5: tuple = ()
        if d5 is not None and beat_len > 0:
            args5 = (d5.starts, d5.lengths, beat_len, d5.differences)
            if leads.refbeat_subtracted and qrs is not None and d5.avm == d6.avm:
                args5 += (qrs.starts, qrs.fiducials, qrs.ends,
                          (qrs.types == 0).astype(np.uint8), qrs.fiducial)
        (status, rhythm, produced, lo, hi, status5, beat, produced5, lo5, hi5, added,
         record_crc) = _k.decode_signals(
            data, None if huff is None else huff.arrays, d6.starts, d6.lengths, want,
            d6.differences, *args5, keep_int32=leads.refbeat_subtracted and len(args5) == 4,
            crc_rows=None if pending is None else pending.rows,
            crc_end=0 if pending is None else pending.end)
        if pending is not None:
            pending.settle(ctx, record_crc)
            pending = None
        if args5:
            assert d5 is not None
            try:
                _raise_status(ctx, status5, "section 5")
                _check_beat_count(ctx, produced5, beat_len)
                beat_range = (lo5, hi5)
            except EcgIngestError as exc:
                d5 = _section5_failed(ctx, exc, needed or strict)
                beat = None
        else:
            beat = None
        _raise_status(ctx, status, "section 6")
        value_range = (lo, hi)
        rate = 1e6 / d6.interval_us
        counts, short = _k.clipped_counts(lengths, produced)
        if short:
            described = "; ".join(
                f"{labels[i]}: samples {leads.starts[i]}..{leads.ends[i]} ({lengths[i]}) but "
                f"section 6 holds {counts[i]}" for i in short)
            ctx.deviation(f"lead sample ranges of section 3 and data lengths of section 6 "
                          f"disagree ({described}); each lead is read as far as its data "
                          "goes", cls=TruncatedError, field="section 3 sample range")
    if pending is not None:  # the bimodal path: no single kernel call to fold them into
        pending.settle(ctx, _k.container_crcs(data, pending.rows, pending.end))
    avm6 = d6.avm
    scale_nv = avm6
    if added:
        assert d5 is not None
        values = rhythm
        scale_nv = math.gcd(d5.avm, avm6) or 1
    elif leads.refbeat_subtracted:
        if beat is None or qrs is None or d5 is None:
            ctx.deviation("section 3 says the reference beat was subtracted but sections 4 "
                          "and 5 are not both present; the residual is returned as is",
                          field="section 3 flags")
            values = rhythm
        else:
            g = math.gcd(d5.avm, avm6) or 1
            add = (qrs.types == 0).astype(np.uint8)
            bound = (max(abs(x) for x in value_range) + max(abs(x) for x in beat_range)
                     if value_range is not None and beat_range is not None else 2**31)
            if d5.avm == avm6 and bound < 2**31:
                status, lo, hi = _k.add_reference_beat_inplace(
                    rhythm, beat, qrs.starts, qrs.fiducials, qrs.ends, add, qrs.fiducial)
                values = rhythm
            else:
                status, values, lo, hi = _k.add_reference_beat(
                    rhythm, avm6 // g, beat, d5.avm // g, qrs.starts, qrs.fiducials, qrs.ends,
                    add, qrs.fiducial)
            _raise_status(ctx, status, "reference beat")
            scale_nv = g
            value_range = (lo, hi)
    else:
        values = rhythm
    scale = scale_nv / 1000.0
    digital_all = values if values.dtype == np.int16 else _smallest(values, value_range)
    width = digital_all.shape[1]
    signals = [new_signal(label, rate, row if count == width else row[:count], scale, 0.0, "uV")
               for label, row, count in zip(labels, digital_all, counts)]
    if beat is not None and d5 is not None:
        beat_digital = beat if beat.dtype == np.int16 else _smallest(beat, beat_range)
        beat_digital.flags.writeable = False
        extras["reference_beat"] = ReferenceBeat(
            tuple(labels), 1e6 / d5.interval_us, beat_digital, d5.avm / 1000.0,
            None if qrs is None else qrs.fiducial)
    if qrs is not None:
        extras["qrs_complexes"] = {
            "reference_beat_length_ms": qrs.beat_length_ms, "fiducial": qrs.fiducial,
            "types": qrs.types.tolist(), "starts": qrs.starts.tolist(),
            "fiducials": qrs.fiducials.tolist(), "ends": qrs.ends.tolist(),
            "protected_zones": None if qrs.protected_start is None else
            list(zip(qrs.protected_start.tolist(), qrs.protected_end.tolist()))}
    extras["lead_ranges"] = list(zip(leads.starts, leads.ends))
    extras["compression"] = {"huffman": None if huff is None else
                             ("default" if huff.default else f"{len(huff.offsets) - 1} tables"),
                             "differences": d6.differences, "bimodal": bimodal,
                             "reference_beat_subtracted": leads.refbeat_subtracted,
                             "amplitude_multiplier_nv": scale_nv}
    for sid, key, parser in ((7, "global_measurements", _parse_section7),
                             (10, "lead_measurements", _parse_section10)):
        if sid in sections:
            extras[key] = parser(data, sections[sid], ctx)
    if 8 in sections:
        extras["interpretation"] = _parse_statements(data, sections[8], ctx, False)
    if 11 in sections:
        extras["universal_statements"] = _parse_statements(data, sections[11], ctx, True)
    if 9 in sections:
        extras["manufacturer_interpretation"] = data[sections[9].body:sections[9].end]
    for sid, sec in sections.items():
        if sid >= 12:
            extras.setdefault("sections_raw", {})[sid] = data[sec.body:sec.end]
    return Record(name=name, format=_FMT, format_detail=f"SCP {label}", signals=signals,
                  start_time=start_time, metadata=metadata, sources=(path or name,),
                  warnings=list(ctx.warnings), extras=extras)


def _reference_beat_plan(data: bytes, sec: _Section, nleads: int, qrs: _Qrs | None,
                         huff: _Huffman | None, ctx: _Ctx) -> tuple[_Data, int]:
    """Section 5: its header, and how many values per lead to decode (0: not known)."""
    d5 = _parse_data_header(data, sec, nleads, ctx)
    b_bytes = d5.longest
    if qrs is not None:
        beat_len = qrs.beat_length_ms * 1000 // d5.interval_us
    else:
        beat_len = b_bytes // 2 if huff is None else 0  # Huffman needs section 4's count
    beat_len = min(beat_len, b_bytes * 8 if huff is not None else b_bytes // 2)
    return d5, max(beat_len, 0)


def _check_beat_count(ctx: _Ctx, produced: np.ndarray, beat_len: int) -> None:
    if min(produced.tolist(), default=beat_len) < beat_len:
        ctx.deviation(f"section 5 holds fewer than the {beat_len} reference-beat samples "
                      "section 4 announces", cls=TruncatedError, field="section 5")


def _section5_failed(ctx: _Ctx, exc: EcgIngestError, fatal: bool) -> None:
    """A section 5 that cannot be read: fatal when the rhythm depends on it (or
    ``strict``), else noted and left out. Returns ``None`` for the caller's d5."""
    if fatal:
        raise exc
    # only informational here: the rhythm does not depend on it
    ctx.note(f"section 5 (reference beat) could not be read and is left out: {exc.message}")
    return None


def _read_reference_beat(data: bytes, sec: _Section, nleads: int,
                         qrs: _Qrs | None, huff: _Huffman | None, ctx: _Ctx
                         ) -> tuple[_Data, np.ndarray | None, tuple[int, int] | None]:
    """Section 5: its header, and its values when their number is known."""
    d5, beat_len = _reference_beat_plan(data, sec, nleads, qrs, huff, ctx)
    if beat_len <= 0:
        return d5, None, None
    beat, produced, beat_range = _decode_section(data, d5, beat_len, huff, ctx, "section 5")
    _check_beat_count(ctx, produced, beat_len)
    return d5, beat, beat_range


def _protected_zones(qrs: _Qrs, nsamples: int, ctx: _Ctx) -> tuple[np.ndarray, np.ndarray]:
    """Protected zones sorted, clipped to the record, overlapping or adjacent ones merged."""
    assert qrs.protected_start is not None and qrs.protected_end is not None
    given = list(zip(qrs.protected_start.tolist(), qrs.protected_end.tolist()))
    pairs = sorted((a, b) for a, b in given if 1 <= a <= nsamples and b >= a)
    irregular = len(given) - len(pairs)  # empty, reversed or outside the record
    merged: list[list[int]] = []
    for a, b in pairs:
        if b > nsamples:
            irregular += 1
            b = nsamples
        if merged and a <= merged[-1][1]:
            irregular += 1  # a real overlap
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if irregular:
        ctx.note(f"{irregular} section 4 protected zone(s) overlap, are empty or reach past "
                 "the record; zones were merged, dropped or clipped")
    arr = np.array(merged, dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1])


def _run_values(zs: np.ndarray, ze: np.ndarray, nsamples: int, factor: int) -> int:
    """Stored values of the decimated runs: ceil(run length / factor) each."""
    total, s = 0, 1
    for a, b in zip(zs.tolist(), ze.tolist()):
        if a > s:
            total += -(-(a - s) // factor)
        s = b + 1
    if s <= nsamples:
        total += -(-(nsamples - s + 1) // factor)
    return total


class ScpFormat(SingleFileFormat):
    """SCP-ECG (EN 1064 / ISO 11073-91064), versions 1.0 to 3.0."""

    name = "scp"

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return decode(data, name=ctx.name, path=ctx.path, strict=ctx.strict)


FORMAT = ScpFormat()
