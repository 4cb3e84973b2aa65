"""WFDB signal lines: the native reading of plain lines equals the Python parser.

``parse_header`` reads the signal lines of a header in one native call
(``_plain_signal_lines``) when every line is complete and plain, and through
``_parse_signal`` line by line otherwise. These tests hold the two to the
same result, field for field and type for type, or the same error.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES, corpus_dir, corpus_records
from ecgingest.errors import EcgIngestError
from ecgingest.formats import wfdb as fw

_native = fw._plain_signal_lines


def _python_only(text: bytes | str) -> fw.WfdbHeader:
    """``parse_header`` with the native line reader declining every header."""
    with mock.patch.object(fw, "_plain_signal_lines", lambda *args: None):
        return fw.parse_header(text)


def _outcome(parse, text):
    try:
        return parse(text)
    except EcgIngestError as exc:
        return type(exc), str(exc)


def _assert_identical(a, b) -> None:
    """Equal, and equal in every field's type and repr (1 == 1.0 == True is not enough)."""
    assert type(a) is type(b)
    assert a == b
    if isinstance(a, fw.WfdbHeader):
        assert len(a.signals) == len(b.signals)
        for sa, sb in zip(a.signals, b.signals):
            _assert_identical_spec(sa, sb)


def _assert_identical_spec(a, b) -> None:
    assert type(a) is fw.WfdbSignalSpec and type(b) is fw.WfdbSignalSpec
    assert [type(x) for x in a] == [type(x) for x in b]
    assert repr(a) == repr(b)


def _read_native(lines: list[str], record: str = "rec"):
    return _native(lines, record, fw.WfdbSignalSpec, fw._PACKED, fw._DEFAULT_RES)


def _read_python(lines: list[str], record: str = "rec"):
    out = []
    for index, line in enumerate(lines):
        try:
            out.append(fw._parse_signal(line, record, index, []))
        except EcgIngestError as exc:
            out.append((type(exc), str(exc)))
    return out


# ----------------------------------------------------------------- grammar

_FORMATS = ["16", "212", "8", "80", "160", "24", "32", "61", "310", "311",
            "016", "0", "00", "508", "516", "999", "+16", "-16", "1_6", "16x2", "212:3",
            "16+24", "212x2:1+3", "\u0661\u0666", "16 ", "x"]
_GAIN_TEXT = ["", "200", "-200", "+1.5", "1e3", "1E-3", ".5", "5.", "0", "-0", "0.0", "0e7",
              "inf", "-inf", "nan", "Infinity", "1_0", "0x10", "1e999", "-1e999", "1e-400",
              "1e", ".", "+", "e5", "1.2.3", "1" * 40, "9" * 400, "1.5e+300", "\u0665",
              "  2"]
_BASELINE = ["", "(0)", "(-5)", "(+5)", "(007)", "()", "(1_0)", "(x)", ")", "(", "(5))",
             "((5)", "(2147483647)", "(2147483648)", "(-2147483648)", "(-2147483649)",
             "(" + "9" * 19 + ")", "(1.5)"]
_UNITS = ["", "/mV", "/", "/uV/x", "/m_V", "/(mV)", "/mV)", "/\u00b5V", "//", "/mV(3)"]
_INTS = ["0", "5", "-5", "+5", "-0", "007", "1_0", "2147483647", "2147483648", "-2147483648",
         "-2147483649", "9" * 18, "9" * 19, "-" + "9" * 18, "x", "1.0", "+", "-", "--1",
         "\u0663", "\u00b2", "1e3", "65535", "12", "0x1"]
_SEPARATORS = [" \t ", "\x1f", "\xa0", "\u3000", "\x85"]
_DESCRIPTIONS = ["I", "lead II", "ECG  lead\tV1", "\u00e9lectrode", "a\x1fb", "x ", "#", "~"]


def _mostly(usual: list[str], edges: list[str]) -> st.SearchStrategy[str]:
    """A usual token eleven times in twelve, so that many lines stay plain."""
    return st.integers(0, 11).flatmap(
        lambda k: st.sampled_from(edges if k == 0 else usual))


@st.composite
def _field_tokens(draw) -> list[str]:
    gain = draw(_mostly(["200", "1e3", "-0.5", "0"], _GAIN_TEXT)) \
        + draw(_mostly(["", "(5)", "(-2)"], _BASELINE)) + draw(_mostly(["/mV", ""], _UNITS))
    tokens = [draw(_mostly(["r.dat"], ["~", "\u00e9.dat", "x_y", "#"])),
              draw(_mostly(["16", "212", "80"], _FORMATS)), gain]
    tokens.append(draw(_mostly(["0", "12", "16"], _INTS)))  # ADC resolution
    tokens += [draw(st.one_of(_mostly(["0", "12", "-7"], _INTS),
                              st.integers(-(2**31), 2**31).map(str)))
               for _ in range(4)]
    tokens.append(draw(_mostly(["I", "lead II"], _DESCRIPTIONS)))
    # most lines complete, some cut short anywhere
    keep = draw(st.one_of(st.sampled_from([9, 9, 8]), st.integers(0, 9)))
    return tokens[:keep]


@st.composite
def _mixed_line(draw) -> str:
    tokens = draw(_field_tokens())
    seps = [draw(_mostly([" ", "\t", "  "], _SEPARATORS)) for _ in tokens]
    return "".join(t + s for t, s in zip(tokens, seps)).strip()


_plain_digits = st.integers(-(2**31), 2**31 - 1)


@st.composite
def _plain_line(draw) -> str:
    """A complete plain line as real headers write them (the native reader's case)."""
    value = draw(st.floats(allow_nan=False, allow_infinity=False))
    gain = draw(st.sampled_from([repr(value), f"{value:e}", f"{abs(value):.3f}",
                                 str(int(abs(value)) % 1000)]))
    if draw(st.booleans()):
        gain += f"({draw(_plain_digits)})"
    if draw(st.booleans()):
        gain += "/" + draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                                 exclude_characters="_"), max_size=6))
    ints = [str(draw(st.integers(0, 32))), str(draw(_plain_digits)), str(draw(_plain_digits)),
            str(draw(st.integers(-(10**17), 10**17))), str(draw(st.integers(0, 10**6)))]
    name = draw(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                        max_size=12).filter(lambda n: not n.startswith("#")))  # a comment
    tokens = [name, str(draw(st.sampled_from(sorted(fw._PACKED)))), gain, *ints]
    line = draw(st.sampled_from([" ", "\t", "  "])).join(tokens)
    if draw(st.booleans()):
        line += " " + draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                   max_size=20)).strip()
    return line.strip()


def _header(record: str, lines: list[str], n_declared: int | None = None) -> str:
    n = len(lines) if n_declared is None else n_declared
    return "\n".join([f"{record} {n} 500 5000 12:00:00 01/01/2020", *lines, "# after"]) + "\n"


# ----------------------------------------------------------------- equivalence


@given(st.lists(_mixed_line(), min_size=1, max_size=3))
def test_native_reading_of_any_line_is_none_or_what_the_python_parser_returns(lines):
    native = _read_native(lines)
    if native is None:
        return
    python = _read_python(lines)
    assert len(native) == len(python) == len(lines)
    for a, b in zip(native, python):
        assert isinstance(b, fw.WfdbSignalSpec), f"Python parser refused {b}"
        _assert_identical_spec(a, b)


@given(st.lists(_mixed_line(), min_size=0, max_size=4),
       st.sampled_from(["rec", "100", "a b"]), st.integers(-1, 1))
def test_parse_header_gives_the_python_result_or_error_for_any_signal_lines(lines, record,
                                                                            extra):
    text = _header(record.split()[0], lines, max(len(lines) + extra, 0))
    native = _outcome(fw.parse_header, text)
    python = _outcome(_python_only, text)
    _assert_identical(native, python)


@given(st.lists(_plain_line(), min_size=1, max_size=12), st.sampled_from(["rec", "r1"]))
def test_complete_plain_lines_are_read_natively_and_equal_the_python_parser(lines, record):
    native = _read_native(lines, record)
    assert native is not None, lines
    for a, b in zip(native, _read_python(lines, record)):
        _assert_identical_spec(a, b)
    _assert_identical(fw.parse_header(_header(record, lines)),
                      _python_only(_header(record, lines)))


# ----------------------------------------------------------------- the plain case, clause by clause


@pytest.mark.parametrize("line", [
    "r.dat 16 200/mV 16 0 0 0 0 I",
    "r.dat\t212\t1e2(3)/uV/x\t0\t+7\t-5\t1234\t0\tlead  II",
    "r.dat 8 / 0 0 0 0 0",
    "r.dat 8 -0.0(0) 0 0 0 0 0",
    "r.dat 80 .5(-2147483648)/ 0 2147483647 -2147483648 -65535 -1 x",
    "r.dat 310 5. 007 -0 +0 " + "9" * 18 + " 0",
    "r.dat 16 1e-400/mV 16 0 0 0 0 underflow is a zero gain",
    "r.dat 16 200/mV(3)/x 16 0 0 0 0 (brackets in the units)",
])
def test_complete_plain_lines_are_read_natively(line):
    [native] = _read_native([line])
    [python] = _read_python([line])
    _assert_identical_spec(native, python)


@pytest.mark.parametrize("line", [
    pytest.param("r.dat 16 200/mV 16 0 0 0", id="fewer than 8 fields"),
    pytest.param("r.dat 16x2 200/mV 16 0 0 0 0", id="samples per frame"),
    pytest.param("r.dat 212:3 200/mV 16 0 0 0 0", id="skew"),
    pytest.param("r.dat 16+24 200/mV 16 0 0 0 0", id="byte offset"),
    pytest.param("r.dat 016 200/mV 16 0 0 0 0", id="format with a leading zero"),
    pytest.param("r.dat 508 200/mV 16 0 0 0 0", id="FLAC format"),
    pytest.param("r.dat 0 200/mV 16 0 0 0 0", id="null format"),
    pytest.param("r.dat 999 200/mV 16 0 0 0 0", id="unsupported format"),
    pytest.param("r.dat 16 inf/mV 16 0 0 0 0", id="infinite gain"),
    pytest.param("r.dat 16 nan/mV 16 0 0 0 0", id="nan gain"),
    pytest.param("r.dat 16 1e999/mV 16 0 0 0 0", id="gain overflows"),
    pytest.param("r.dat 16 0x10/mV 16 0 0 0 0", id="hex gain"),
    pytest.param("r.dat 16 1_0/mV 16 0 0 0 0", id="underscore in gain"),
    pytest.param("r.dat 16 200/m_V 16 0 0 0 0", id="underscore in units"),
    pytest.param("r.dat 16 200)/mV 16 0 0 0 0", id="baseline without opening bracket"),
    pytest.param("r.dat 16 200(1.5)/mV 16 0 0 0 0", id="non-integer baseline"),
    pytest.param("r.dat 16 200(2147483648)/mV 16 0 0 0 0", id="baseline out of range"),
    pytest.param("r.dat 16 200/mV +16 0 0 0 0", id="signed ADC resolution"),
    pytest.param("r.dat 16 200/mV 16 1_0 0 0 0", id="underscore in ADC zero"),
    pytest.param("r.dat 16 200/mV 16 2147483648 0 0 0", id="ADC zero out of range"),
    pytest.param("r.dat 16 200/mV 16 0 -2147483649 0 0", id="initial value out of range"),
    pytest.param("r.dat 16 200/mV 16 0 0 " + "9" * 19 + " 0", id="19-digit checksum"),
    pytest.param("r.dat 16 200/mV 16 0 0 0 0 \u00e9", id="non-ASCII description"),
    pytest.param("r.dat 16 200/mV 16 0 0 0 0 a\x1cb", id="information separator"),
    pytest.param("r.dat 16 200/mV 16\x1f0 0 0 0 x", id="unit separator as whitespace"),
    pytest.param("r.dat 16 200/mV 16 0 0 0 0 \x1fx", id="unit separator before description"),
    pytest.param("r.dat 16 200/mV 16 0 0 0 0 x\x0b", id="vertical tab after description"),
    pytest.param("r.dat 16 200/mV 16\xa00 0 0 0 x", id="no-break space as whitespace"),
    pytest.param("r.dat 16 200/mV 16 \u0663 0 0 0", id="non-ASCII digit"),
])
def test_unusual_lines_are_left_to_the_python_parser(line):
    assert _read_native([line]) is None
    assert _read_native(["r.dat 16 200/mV 16 0 0 0 0 plain", line]) is None
    text = _header("rec", ["r.dat 16 200/mV 16 0 0 0 0 plain", line])
    _assert_identical(_outcome(fw.parse_header, text), _outcome(_python_only, text))


def test_one_unusual_line_keeps_the_python_error_naming_the_field():
    text = _header("rec", ["r.dat 16 200/mV 16 0 0 0 0 I", "r.dat 16 2x0/mV 16 0 0 0 0 II"])
    with pytest.raises(fw.HeaderError, match="signal 1 gain '2x0/mV' is malformed"):
        fw.parse_header(text)


def test_description_defaults_to_record_and_signal_index_natively():
    lines = ["r.dat 16 200/mV 16 0 0 0 0", "r.dat 16 200/mV 16 0 0 0 0"]
    assert [s.description for s in _read_native(lines, "r7")] == ["record r7, signal 0",
                                                                  "record r7, signal 1"]


def test_adc_resolution_zero_takes_the_format_default_natively():
    lines = [f"r.dat {fmt} 200 0 0 0 0 0" for fmt in (16, 212, 80, 160, 310)]
    assert [s.adc_resolution for s in _read_native(lines)] == [12, 12, 8, 16, 10]


def test_native_reader_refuses_a_spec_type_that_is_not_a_tuple():
    with pytest.raises(TypeError):
        fw._plain_signal_lines(["r.dat 16 200 0 0 0 0 0"], "r", dict, fw._PACKED,
                               fw._DEFAULT_RES)


# ----------------------------------------------------------------- real headers


def _real_headers() -> list[Path]:
    found = sorted((FIXTURES / "wfdb").rglob("*.hea"))
    root = corpus_dir()
    if root is not None:
        for entry in corpus_records("wfdb"):
            folder = (root / entry["path"]).parent
            found += sorted(folder.glob("*.hea"))
    return found


@pytest.mark.parametrize("path", _real_headers(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_headers_read_the_same_natively_and_in_python(path):
    data = path.read_bytes()
    _assert_identical(_outcome(fw.parse_header, data), _outcome(_python_only, data))


_FIXTURE_HEADERS = [p.read_bytes() for p in sorted((FIXTURES / "wfdb").rglob("*.hea"))]


@given(st.sampled_from(_FIXTURE_HEADERS), st.lists(
    st.tuples(st.integers(0, 10_000), st.binary(max_size=3), st.integers(0, 3)),
    min_size=1, max_size=4))
def test_mutated_real_headers_read_the_same_natively_and_in_python(data, edits):
    """Bytes of real headers replaced, inserted or cut: the same header or the same error."""
    buf = bytearray(data)
    for pos, insert, cut in edits:
        pos %= len(buf) + 1
        buf[pos:pos + cut] = insert
    text = bytes(buf)
    _assert_identical(_outcome(fw.parse_header, text), _outcome(_python_only, text))
