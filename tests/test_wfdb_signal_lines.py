"""WFDB signal lines (spec/WFDB.md "Signal lines"): the one grammar, clause by clause.

``file fmt[xSPF][:SKEW][+OFFSET] [gain[(baseline)][/units] [adcres [adczero
[initval [checksum [blocksize [description]]]]]]]``, fields separated by spaces
or tabs, defaults applied; an error names the field it found wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES, corpus_dir, corpus_records
from ecgingest.errors import EcgIngestError, HeaderError, UnsupportedFeatureError
from ecgingest.formats import wfdb as fw
from ecgingest.formats.wfdb.header import DEFAULT_RES, PACKED, SUPPORTED


def _spec(line: str, record: str = "rec") -> fw.WfdbSignalSpec:
    [spec] = fw.parse_header(f"{record} 1 500\n{line}\n").signals
    assert type(spec) is fw.WfdbSignalSpec
    return spec


# ----------------------------------------------------------------- fields and defaults


@pytest.mark.parametrize("line, expected", [
    ("r.dat 16 200/mV 16 0 0 0 0 I",
     ("r.dat", 16, 1, 0, 0, 200.0, 0, "mV", 16, 0, 0, 0, 0, "I", False)),
    ("r.dat\t212\t1e2(3)/uV/x\t0\t+7\t-5\t1234\t0\tlead  II",
     ("r.dat", 212, 1, 0, 0, 100.0, 3, "uV/x", 12, 7, -5, 1234, 0, "lead  II", False)),
    ("r.dat 8 / 0 0 0 0 0", ("r.dat", 8, 1, 0, 0, 200.0, 0, "mV", 12, 0, 0, 0, 0,
                             "record rec, signal 0", True)),
    ("r.dat 80 .5(-2147483648)/ 0 2147483647 -2147483648 -65535 -1 x",
     ("r.dat", 80, 1, 0, 0, 0.5, -2147483648, "mV", 8, 2147483647, -2147483648, -65535, -1,
      "x", False)),
    ("r.dat 310 5. 007 -0 +0 " + "9" * 25 + " 0",
     ("r.dat", 310, 1, 0, 0, 5.0, 0, "mV", 7, 0, 0, int("9" * 25), 0, "record rec, signal 0",
      False)),
    ("r.dat 16 1e-400/mV 16 0 0 0 0 underflow",
     ("r.dat", 16, 1, 0, 0, 200.0, 0, "mV", 16, 0, 0, 0, 0, "underflow", True)),
    ("r.dat 16 200/mV(3)/x 16 0 0 0 0 (brackets)",
     ("r.dat", 16, 1, 0, 0, 200.0, 0, "mV(3)/x", 16, 0, 0, 0, 0, "(brackets)", False)),
    ("r.dat 16x4:3+24 1.052e+04(-7)/mmHg 12 0 0 -22131 0 A B C",
     ("r.dat", 16, 4, 3, 24, 10520.0, -7, "mmHg", 12, 0, 0, -22131, 0, "A B C", False)),
    ("\u00e9.dat 516x2:-0 200/\u00b5V 16 0 0 0 0 \u00e9lectrode",
     ("\u00e9.dat", 516, 2, 0, 0, 200.0, 0, "\u00b5V", 16, 0, 0, 0, 0, "\u00e9lectrode", False)),
    ("~ 0", ("~", 0, 1, 0, 0, 200.0, 0, "mV", 12, 0, 0, None, 0, "record rec, signal 0", True)),
    ("r.dat 16 200 12 1024", ("r.dat", 16, 1, 0, 0, 200.0, 1024, "mV", 12, 1024, 1024, None, 0,
                             "record rec, signal 0", False)),
])
def test_signal_line_fields_and_wfdb_defaults(line, expected):
    spec = _spec(line)
    assert tuple(spec) == expected
    assert [type(v) for v in spec] == [type(v) for v in expected]


@pytest.mark.parametrize("fmt", sorted(SUPPORTED))
def test_adc_resolution_zero_or_absent_takes_the_format_default(fmt):
    assert _spec(f"r.dat {fmt} 200 0").adc_resolution == DEFAULT_RES.get(fmt, 12)
    assert _spec(f"r.dat {fmt}").adc_resolution == DEFAULT_RES.get(fmt, 12)


def test_description_defaults_to_record_and_signal_index():
    hdr = fw.parse_header("r7 2 500\nr.dat 16 200/mV 16 0 0 0 0\nr.dat 16\n")
    assert [s.description for s in hdr.signals] == ["record r7, signal 0",
                                                    "record r7, signal 1"]


def test_only_spaces_and_tabs_separate_fields():
    # a unit separator or no-break space is part of the token, as in the C library
    assert _spec("r.dat 16 200/mV 16 0 0 0 0 a\x1fb").description == "a\x1fb"
    with pytest.raises(HeaderError) as info:
        _spec("r.dat 16 200/mV 16\xa00 0 0 0 x")
    assert info.value.field == "ADC resolution"


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("line, field", [
    ("r.dat", "format"),
    ("r.dat x", "format"),
    ("r.dat 016x", "format"),
    ("r.dat 16x2x3", "format"),
    ("r.dat 16:3x2", "format"),
    ("r.dat 16+3:2", "format"),
    ("r.dat 16:", "format"),
    ("r.dat \u0661\u0666", "format"),
    ("r.dat 16x0", "samples per frame"),
    ("r.dat 16x99999999", "samples per frame"),
    ("r.dat 16:-5", "skew"),
    ("r.dat 16:99999999999999999999", "skew"),
    ("r.dat 16+99999999999999999999", "byte offset"),
    ("r.dat 16 inf/mV", "gain"),
    ("r.dat 16 nan/mV", "gain"),
    ("r.dat 16 1e999/mV", "gain"),
    ("r.dat 16 0x10/mV", "gain"),
    ("r.dat 16 1_0/mV", "gain"),
    ("r.dat 16 200)/mV", "gain"),
    ("r.dat 16 200(1.5)/mV", "gain"),
    ("r.dat 16 200(+5)/mV", "gain"),
    ("r.dat 16 200(2147483648)/mV", "baseline"),
    ("r.dat 16 200/mV x", "ADC resolution"),
    ("r.dat 16 200/mV 16 1_0", "ADC zero"),
    ("r.dat 16 200/mV 16 2147483648", "ADC zero"),
    ("r.dat 16 200/mV 16 0 -2147483649", "initial value"),
    ("r.dat 16 200/mV 16 0 0 1.5", "checksum"),
    ("r.dat 16 200/mV 16 0 0 0 \u0663", "block size"),
])
def test_malformed_signal_lines_raise_header_errors_naming_the_field(line, field):
    with pytest.raises(HeaderError) as info:
        _spec(line)
    assert info.value.field == field
    assert "signal 0" in str(info.value)


def test_unsupported_format_names_it():
    with pytest.raises(UnsupportedFeatureError, match="format 999"):
        _spec("r.dat 999")
    with pytest.raises(UnsupportedFeatureError, match="format 1" + "0" * 30):
        _spec("r.dat 1" + "0" * 30)


def test_the_first_bad_line_is_reported_with_its_index():
    text = "rec 2 500\nr.dat 16 200/mV 16 0 0 0 0 I\nr.dat 16 2x0/mV 16 0 0 0 0 II\n"
    with pytest.raises(HeaderError, match="signal 1 gain '2x0/mV' is malformed"):
        fw.parse_header(text)


# ----------------------------------------------------------------- any line


_TOKEN_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x2FF,
                             exclude_categories=("Cc", "Zs", "Zl", "Zp"))
_FIELDS = st.tuples(
    st.text(_TOKEN_CHARS, min_size=1, max_size=8).filter(lambda t: t[0] != "#"),
    st.sampled_from(sorted(SUPPORTED)), st.integers(1, 1 << 20), st.integers(0, 1 << 31),
    st.integers(0, 1 << 48),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda g: g != 0),
    st.integers(-(2**31), 2**31 - 1),
    st.text(_TOKEN_CHARS, min_size=1, max_size=6),
    st.integers(1, 32), st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1),
    st.integers(-(10**30), 10**30), st.integers(0, 10**6),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF,
                          exclude_categories=("Cc", "Zl", "Zp")), max_size=20)
    .map(str.strip).filter(bool))


@given(_FIELDS, st.sampled_from([" ", "\t", "  \t"]))
def test_a_line_written_from_fields_reads_back_as_those_fields(fields, sep):
    (name, fmt, spf, skew, offset, gain, baseline, units, adcres, adczero, initval, checksum,
     block, description) = fields
    line = sep.join([name, f"{fmt}x{spf}:{skew}+{offset}", f"{gain!r}({baseline})/{units}",
                     str(adcres), str(adczero), str(initval), str(checksum), str(block),
                     description])
    assert tuple(_spec(line)) == (name, fmt, spf, skew, offset, gain, baseline, units, adcres,
                                  adczero, initval, checksum, block, description, False)


_TOKENS = ["r.dat", "16", "212x4", "8:3", "16+24", "0", "~", "200", "1e3(5)/mV", "-0.5/",
           "(3)", "x", "12", "-7", "+1", "99999999999999999999", "1_0", "inf", "/", "()",
           "\u00e9", "\x1f", "#", "lead II"]


@given(st.lists(st.lists(st.sampled_from(_TOKENS), max_size=10).map(" ".join), max_size=4),
       st.text(max_size=40))
def test_any_signal_lines_read_or_raise_a_typed_error(lines, noise):
    text = "\n".join(["rec 3 500 10", *lines, noise])
    try:
        hdr = fw.parse_header(text)
    except EcgIngestError:
        return
    assert all(type(s) is fw.WfdbSignalSpec and s.fmt in SUPPORTED for s in hdr.signals)


# ----------------------------------------------------------------- real headers


def _real_headers() -> list[Path]:
    found = sorted((FIXTURES / "wfdb").rglob("*.hea"))
    root = corpus_dir()
    if root is not None:
        for entry in corpus_records("wfdb"):
            found += sorted((root / entry["path"]).parent.glob("*.hea"))
    return found


@pytest.mark.parametrize("path", _real_headers(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_headers_read_every_signal_line(path):
    hdr = fw.parse_header(path.read_bytes())
    assert len(hdr.signals) == (0 if hdr.is_multi_segment else hdr.n_signals)
    assert all(s.fmt in SUPPORTED and s.gain > 0 for s in hdr.signals)
    packed = [s for s in hdr.signals if s.fmt in PACKED]
    assert all(s.adc_resolution > 0 for s in packed)


_FIXTURE_HEADERS = [p.read_bytes() for p in sorted((FIXTURES / "wfdb").rglob("*.hea"))]


@given(st.sampled_from(_FIXTURE_HEADERS), st.lists(
    st.tuples(st.integers(0, 10_000), st.binary(max_size=3), st.integers(0, 3)),
    min_size=1, max_size=4))
def test_mutated_real_headers_read_or_raise_a_typed_error(data, edits):
    """Bytes of real headers replaced, inserted or cut."""
    buf = bytearray(data)
    for pos, insert, cut in edits:
        pos %= len(buf) + 1
        buf[pos:pos + cut] = insert
    try:
        fw.parse_header(bytes(buf))
    except EcgIngestError:
        pass
