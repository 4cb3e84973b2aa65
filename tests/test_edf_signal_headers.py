"""The parser of EDF per-signal header fields held to what the fields say.

Every header either ends in a typed error or gives, for every signal, the
values Python itself reads from the field text: ``float()`` of the physical
range, ``int()`` of the digital range and sample count, the text without
surrounding spaces and NULs, and the EDF scaling formula. The TAL onset fast
path of the annotation scan is held to ``float()`` the same way.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, corpus_dir
from ecgingest.errors import EcgIngestError, HeaderError
from ecgingest.formats import edf
from ecgingest.formats._base import DecodeContext

_WIDTHS = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)


def _header(columns: list[list[bytes]], *, reserved: bytes = b"EDF+C", n_records: int = 2,
            duration: bytes = b"1", bdf: bool = False) -> bytes:
    """An EDF header holding ``columns[f][i]`` as field ``f`` of signal ``i`` (each
    padded with spaces to its width; longer values are cut)."""
    ns = len(columns[0])
    def field(value: bytes, width: int) -> bytes:
        return value[:width].ljust(width, b" ")
    fixed = b"".join([
        b"\xffBIOSEMI" if bdf else field(b"0", 8),
        field(b"X M 01-JAN-1970 Some_Body", 80),
        field(b"Startdate 01-JAN-2024 X X bench", 80),
        b"01.01.24", b"10.00.00", field(str(256 * (ns + 1)).encode(), 8),
        field(reserved, 44), field(str(n_records).encode(), 8), field(duration, 8),
        field(str(ns).encode(), 4)])
    body = b"".join(field(value, _WIDTHS[f]) for f in range(10) for value in columns[f])
    return fixed + body


def _parse(head: bytes, file_size: int):
    fmt = edf._format_of(head)
    try:
        return edf._parse_header(head, file_size, DecodeContext(fmt), fmt)
    except EcgIngestError as error:
        return error


_INTEGER = re.compile(rb"\A *[+-]?[0-9]+ *\Z")
_DECIMAL = re.compile(rb"\A *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? *\Z")


def _field_text(raw: bytes) -> str:
    try:
        return raw.decode("ascii").strip(" \x00")
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip(" \x00")


def _check_against_fields(head: bytes, file_size: int, columns: list[list[bytes]]):
    """The parse is a typed error, or every value is what its field's text says."""
    parsed = _parse(head, file_size)
    ns = len(columns[0])
    padded = [[value[:_WIDTHS[f]].ljust(_WIDTHS[f], b" ") for value in columns[f]]
              for f in range(10)]
    grammar_ok = all((_INTEGER if f in (5, 6, 8) else _DECIMAL).match(v)
                     for f in (3, 4, 5, 6, 8) for v in padded[f])
    if isinstance(parsed, EcgIngestError):
        assert isinstance(parsed, HeaderError) or parsed.field is not None
        return parsed
    assert grammar_ok, "a field outside the EDF number grammar was accepted"
    bps = 3 if head[:8] == b"\xffBIOSEMI" else 2
    assert parsed.record_size == bps * sum(int(v) for v in padded[8])
    duration = parsed.record_duration
    for i, s in enumerate(parsed.signals):
        pmin, pmax = float(padded[3][i]), float(padded[4][i])
        dmin, dmax, n = int(padded[5][i]), int(padded[6][i]), int(padded[8][i])
        assert (s.index, s.physical_min, s.physical_max) == (i, pmin, pmax)
        assert (s.digital_min, s.digital_max, s.samples_per_record) == (dmin, dmax, n)
        assert type(s.physical_min) is float and type(s.digital_min) is int
        assert s.label == _field_text(padded[0][i])
        assert s.transducer == _field_text(padded[1][i])
        assert s.units == _field_text(padded[2][i])
        assert s.prefiltering == _field_text(padded[7][i])
        assert s.reserved == _field_text(padded[9][i])
        assert s.is_annotation == (s.label in ("EDF Annotations", "BDF Annotations"))
        if dmax == dmin or pmax == pmin:
            assert (s.scale, s.offset) == (1.0, 0.0)
        else:
            scale = (pmax - pmin) / (dmax - dmin)
            assert struct.pack("<dd", s.scale, s.offset) == struct.pack(
                "<dd", scale, pmin - dmin * scale)
        assert s.sample_rate == (n / duration if duration > 0 else 0.0)
    assert len(parsed.signals) == ns
    return parsed


def _plain_columns(ns: int) -> list[list[bytes]]:
    return [[f"sig {i}".encode() for i in range(ns)], [b"AgAgCl"] * ns, [b"uV"] * ns,
            [b"-3276.8"] * ns, [b"3276.7"] * ns, [b"-32768"] * ns, [b"32767"] * ns,
            [b"HP:0.1Hz"] * ns, [b"10"] * ns, [b""] * ns]


def _file_size(head: bytes, n_records: int = 2) -> int:
    ns = len(head) // 256 - 1
    return len(head) + n_records * 10 * 2 * ns


def test_a_plain_header_gives_its_fields_without_a_warning() -> None:
    columns = _plain_columns(3)
    head = _header(columns)
    parsed = _check_against_fields(head, _file_size(head), columns)
    assert parsed.warnings == ()


@pytest.mark.parametrize(("field", "value"), [
    (3, b"1e3"), (3, b"inf"), (3, b"nan"), (4, b"1_0"), (3, b"1e-3"), (4, b"1E+2"),
    (5, b"-0x10"), (6, b"1.5"), (8, b"-1"), (8, b"99999999"), (8, b" 1 0"),
    (5, b"32767"), (3, b"3276.7"), (1, "\u00e9".encode("latin-1")),
    (2, b"u\x01V"), (7, b"\x00"), (9, b"\x7f"), (4, b""), (5, b"+"), (3, b"."), (3, b"1.2.3"),
])
def test_odd_fields_are_read_as_written_or_rejected_naming_the_field(field, value) -> None:
    columns = _plain_columns(2)
    columns[field][1] = value
    for reserved in (b"EDF+C", b""):
        head = _header(columns, reserved=reserved)
        parsed = _check_against_fields(head, _file_size(head), columns)
        if isinstance(parsed, EcgIngestError):
            assert parsed.field is not None and parsed.field.endswith("of signal 1")
            assert parsed.offset == 256 + sum(_WIDTHS[:field]) * 2 + _WIDTHS[field]


def test_annotation_signal_without_plus_marker_is_read_with_a_warning() -> None:
    columns = _plain_columns(2)
    columns[0][1] = b"EDF Annotations"
    head = _header(columns)
    assert _check_against_fields(head, _file_size(head), columns).warnings == ()
    plain = _check_against_fields(_header(columns, reserved=b""), _file_size(head), columns)
    assert any("read as EDF+ annotations" in w for w in plain.warnings)


def test_uncalibrated_annotation_signal_needs_no_warning() -> None:
    columns = _plain_columns(2)
    columns[0][1], columns[5][1], columns[6][1] = b"EDF Annotations", b"1", b"1"
    head = _header(columns)
    assert _check_against_fields(head, _file_size(head), columns).warnings == ()


_NUMBER = st.one_of(
    st.integers(-10**20, 10**20).map(lambda v: str(v).encode()),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda v: repr(v).encode()),
    st.from_regex(rb"\A *[+-]?[0-9]{0,9}(\.[0-9]{0,9})?([eE][+-]?[0-9]{1,3})? *\Z"),
    st.binary(max_size=8),
)


@st.composite
def signal_columns(draw) -> list[list[bytes]]:
    ns = draw(st.integers(1, 5))
    columns = _plain_columns(ns)
    for _ in range(draw(st.integers(0, 12))):
        f, i = draw(st.integers(0, 9)), draw(st.integers(0, ns - 1))
        if f in (3, 4, 5, 6, 8):
            columns[f][i] = draw(_NUMBER)
        elif f == 0:
            columns[f][i] = draw(st.sampled_from(
                [b"EDF Annotations", b"BDF Annotations", b"  ECG  ", b""]) | st.binary(max_size=16))
        else:
            columns[f][i] = draw(st.binary(max_size=10))
    return columns


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(signal_columns(), st.sampled_from([b"EDF+C", b"EDF+D", b"", b"BDF+C"]),
       st.sampled_from([b"1", b"0.5", b"0", b"2.5e1"]), st.booleans(),
       st.integers(0, 1 << 20))
def test_signal_fields_read_as_their_text_says(columns, reserved, duration, bdf,
                                               file_size) -> None:
    head = _header(columns, reserved=reserved, duration=duration, bdf=bdf)
    _check_against_fields(head, len(head) + file_size, columns)


def _real_headers() -> list[Path]:
    paths = sorted((FIXTURES / "edf").glob("*.[eb]df"))
    corpus = corpus_dir()
    if corpus is not None:
        paths += sorted((corpus / "edf").glob("*.[eEbB][dD][fF]"))
    return paths


@pytest.mark.parametrize("path", _real_headers(), ids=lambda p: p.name)
def test_real_headers_read_as_their_fields_say(path: Path) -> None:
    data = path.read_bytes()
    ns = int(data[252:256])
    head = data[:256 * (ns + 1)]
    columns, pos = [], 256
    for width in _WIDTHS:
        columns.append([head[pos + i * width:pos + (i + 1) * width] for i in range(ns)])
        pos += width * ns
    parsed = _check_against_fields(head, len(data), columns)
    assert not isinstance(parsed, EcgIngestError)


# --------------------------------------------------------------------------- TAL onsets

def _scan_onset(text: bytes) -> tuple[float, int]:
    slot = text + b"\x14\x14\x00" + b"\x00" * 4
    data = np.frombuffer(slot, dtype=np.uint8)
    onsets, flags = np.empty(1, dtype=np.float64), np.empty(1, dtype=np.uint8)
    status = edf._kernel.scan_annotation_slots(data, 0, 1, len(slot), 0, len(slot), True,
                                               onsets, flags)
    assert status == 0
    return float(onsets[0]), int(flags[0])


@given(st.sampled_from([b"+", b"-"]), st.text("0123456789", min_size=1, max_size=25),
       st.none() | st.text("0123456789", max_size=25))
def test_tal_onsets_read_as_float_reads_them(sign, whole, fraction) -> None:
    text = sign + whole.encode() + (b"" if fraction is None else b"." + fraction.encode())
    onset, flag = _scan_onset(text)
    digits = len(whole) + len(fraction or "")
    if digits <= 15:
        assert flag == 0  # short onsets never leave the fast path
    if flag == 0:
        assert struct.pack("<d", onset) == struct.pack("<d", float(text))
    else:
        assert flag == 1 and math.isnan(onset)  # Python reads the slot


@pytest.mark.parametrize("text", [b"+0.1", b"+0.3", b"-0", b"+9007199254740991",
                                  b"+0.0000000000000000000001", b"+123456.123456789"])
def test_tal_onsets_that_need_correct_rounding(text) -> None:
    onset, flag = _scan_onset(text)
    assert flag == 0
    assert struct.pack("<d", onset) == struct.pack("<d", float(text))
