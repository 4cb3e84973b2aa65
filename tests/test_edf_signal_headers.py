"""The native parser of EDF per-signal header fields (``plain_signal_headers``)
held to the field-by-field Python parser it stands in for.

The native path either declines (``None``) or gives exactly what the Python
parser gives: the same values of the same types, and no warnings, since it
declines everything the Python parser would warn about or reject. The TAL
onset fast path is held to ``float()`` the same way.
"""

from __future__ import annotations

import math
import struct
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, corpus_dir
from ecgingest.errors import EcgIngestError
from ecgingest.formats import edf

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


@contextmanager
def _python_parser_only():
    with mock.patch.object(edf._kernel, "plain_signal_headers", lambda *args: None):
        yield


def _parse(head: bytes, file_size: int, native: bool):
    fmt = edf._format_of(head)
    try:
        if native:
            return edf._parse_header(head, file_size, edf._Context(fmt, None, False), fmt)
        with _python_parser_only():
            return edf._parse_header(head, file_size, edf._Context(fmt, None, False), fmt)
    except EcgIngestError as error:
        return error


def _signature_of_signals(signals) -> list:
    return [tuple((k, type(v), struct.pack("<d", v) if isinstance(v, float) else v)
                  for k, v in vars(s).items()) for s in signals]


def _signature(value):
    """Everything a caller can see, including the types of numbers."""
    if isinstance(value, Exception):
        return type(value), str(value), getattr(value, "field", None), getattr(value, "offset", None)
    return value, _signature_of_signals(value.signals), value.warnings


def _assert_same(head: bytes, file_size: int) -> bool:
    """Both parsers agree; returns whether the native one took the signal fields."""
    native = _parse(head, file_size, native=True)
    python = _parse(head, file_size, native=False)
    assert _signature(native) == _signature(python)
    fmt = edf._format_of(head)
    ns = len(head) // 256 - 1
    view = np.frombuffer(head, dtype=np.uint8)
    try:
        duration = float(head[244:252])
    except ValueError:
        duration = 1.0
    plus = head[192:197].upper() in (b"EDF+C", b"EDF+D", b"BDF+C", b"BDF+D")
    bps = 3 if fmt == "bdf" else 2
    taken = edf._kernel.plain_signal_headers(view, ns, bps, duration, file_size, plus,
                                             edf.EdfSignalHeader)
    if taken is not None:
        # the field-by-field parser gives the same headers, without a warning
        ctx = edf._Context(fmt, None, False)
        columns = edf._kernel.split_header(view, ns)[1]
        first_bad = edf._kernel.is_ascii_printable(view, 256, len(head))
        expected = edf._signal_headers(columns, ctx, fmt, plus, duration, file_size,
                                       first_bad, [False])
        assert ctx.warnings == []
        assert _signature_of_signals(taken[0]) == _signature_of_signals(expected[0])
        assert taken[1] == expected[1]
    return taken is not None


def _plain_columns(ns: int) -> list[list[bytes]]:
    return [[f"sig {i}".encode() for i in range(ns)], [b"AgAgCl"] * ns, [b"uV"] * ns,
            [b"-3276.8"] * ns, [b"3276.7"] * ns, [b"-32768"] * ns, [b"32767"] * ns,
            [b"HP:0.1Hz"] * ns, [b"10"] * ns, [b""] * ns]


def _file_size(head: bytes, n_records: int = 2) -> int:
    ns = len(head) // 256 - 1
    return len(head) + n_records * 10 * 2 * ns


def test_a_plain_header_is_taken_natively() -> None:
    head = _header(_plain_columns(3))
    assert _assert_same(head, _file_size(head))


@pytest.mark.parametrize(("field", "value"), [
    (3, b"1e3"), (3, b"inf"), (3, b"nan"), (4, b"1_0"), (3, b"1e-3"), (4, b"1E+2"),
    (5, b"-0x10"), (6, b"1.5"), (8, b"-1"), (8, b"99999999"), (8, b" 1 0"),
    (5, b"32767"), (3, b"3276.7"), (1, "\u00e9".encode("latin-1")),
    (2, b"u\x01V"), (7, b"\x00"), (9, b"\x7f"), (4, b""), (5, b"+"), (3, b"."), (3, b"1.2.3"),
])
def test_declines_what_the_python_parser_warns_about_or_rejects(field, value) -> None:
    columns = _plain_columns(2)
    columns[field][1] = value
    head = _header(columns)
    assert not _assert_same(head, _file_size(head))
    assert not _assert_same(_header(columns, reserved=b""), _file_size(head))


def test_annotation_signal_without_plus_marker_is_left_to_python() -> None:
    columns = _plain_columns(2)
    columns[0][1] = b"EDF Annotations"
    assert _assert_same(_header(columns), 10_000)
    assert not _assert_same(_header(columns, reserved=b""), 10_000)


def test_uncalibrated_annotation_signal_is_taken() -> None:
    columns = _plain_columns(2)
    columns[0][1], columns[5][1], columns[6][1] = b"EDF Annotations", b"1", b"1"
    assert _assert_same(_header(columns), 10_000)


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
def test_native_and_python_parsers_agree(columns, reserved, duration, bdf, file_size) -> None:
    head = _header(columns, reserved=reserved, duration=duration, bdf=bdf)
    _assert_same(head, len(head) + file_size)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(
    [b"-12.5", b"0", b"+3", b"7.", b"-0", b"0.000001", b"123456.7", b"1E2", b"  5  "])),
    max_size=10))
def test_plain_numbers_are_taken_natively(edits) -> None:
    """Headers whose numbers are plain decimals and integers take the native path."""
    columns = _plain_columns(3)
    for f, value in edits:
        if f in (3, 4):
            columns[f][f % 3] = value
    head = _header(columns)
    taken = _assert_same(head, _file_size(head))
    python = _parse(head, _file_size(head), native=False)
    if not isinstance(python, Exception) and not python.warnings:
        assert taken or any(b"E" in v for v in columns[3] + columns[4])


def _real_headers() -> list[Path]:
    paths = sorted((FIXTURES / "edf").glob("*.[eb]df"))
    corpus = corpus_dir()
    if corpus is not None:
        paths += sorted((corpus / "edf").glob("*.[eEbB][dD][fF]"))
    return paths


@pytest.mark.parametrize("path", _real_headers(), ids=lambda p: p.name)
def test_real_headers_parse_the_same_both_ways(path: Path) -> None:
    data = path.read_bytes()
    ns = int(data[252:256])
    _assert_same(data[:256 * (ns + 1)], len(data))


# --------------------------------------------------------------------------- TAL onsets

def _scan_onset(text: bytes) -> tuple[float, int]:
    slot = text + b"\x14\x14\x00" + b"\x00" * 4
    data = np.frombuffer(slot, dtype=np.uint8)
    onsets, flags = edf._kernel.scan_annotation_slots(data, 0, 1, len(slot), 0, len(slot), True)
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
