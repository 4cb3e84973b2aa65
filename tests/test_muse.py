"""GE MUSE XML: conformance on real exports, round trips through the test-side writer,
derived limb leads, CRC-32, encodings, and damaged files from every source kind."""

from __future__ import annotations

import binascii
import datetime as dt
import json
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecg_xml_writers import ENCODINGS, muse_document, mutate, outcomes
from ecgingest._ext import muse as muse_kernel
from ecgingest.detect import detect
from ecgingest.errors import ChecksumError, EcgIngestError, EcgWarning, HeaderError
from ecgingest.formats import _xml, muse
from ecgingest.formats._base import DecodeContext, Probe
from ecgingest.sources import Entry

FIX = FIXTURES / "muse"
STORED = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def _decode(data: bytes, strict: bool = False) -> ecgingest.Record:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return muse.FORMAT.decode(data, DecodeContext("muse", name="t.xml", strict=strict))


def _leads(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {label: rng.integers(-32768, 32768, n).astype(np.int16) for label in STORED}


# ---------------------------------------------------------------- real files


def _check_against_reference(record: ecgingest.Record, path: Path) -> None:
    ref = np.load(f"{path}.ref.npz")
    meta = json.loads(Path(f"{path}.ref.json").read_text())
    names = [str(c) for c in ref["channel_names"]]
    derived_names = [str(c) for c in ref["derived_channel_names"]]
    assert record.labels == names + derived_names
    stored = record.signals[:len(names)]
    np.testing.assert_array_equal(np.array([s.digital for s in stored]), ref["digital"])
    np.testing.assert_allclose(np.array([s.physical for s in stored]), ref["physical"],
                               rtol=1e-12, atol=1e-9)
    derived = record.signals[len(names):]
    np.testing.assert_allclose(np.array([s.physical for s in derived]), ref["derived_physical"],
                               rtol=1e-12, atol=1e-9)
    assert list(record.derived_leads) == derived_names
    assert [s.derivation for s in stored] == [None] * len(names)
    assert [s.derivation for s in derived] == [record.derived_leads[n] for n in derived_names]
    assert [s.sample_rate for s in record.signals] == [float(f) for f in ref["fs"]] + \
        [float(ref["fs"][0])] * len(derived_names)
    beats = record.median_beats
    assert list(beats.labels) == [str(c) for c in ref["median_channel_names"]]
    np.testing.assert_array_equal(beats.digital, ref["median_digital"])
    np.testing.assert_allclose(beats.physical, ref["median_physical"], rtol=1e-12, atol=1e-9)
    assert record.start_time == dt.datetime.fromisoformat(meta["start_time"])
    assert record.warnings == []
    raw_measurements = meta.get("RestingECGMeasurements")
    if raw_measurements:
        assert record.global_measurements["vendor"] == raw_measurements
    if meta.get("qrs_times"):
        assert [q["time"] for q in record.qrs_times] == [int(q["Time"]) for q in meta["qrs_times"]]


def test_fixture_export_matches_the_reference_decoder():
    path = FIX / "easyrecg_muse_ecg1.xml"
    [record] = ecgingest.read(path)
    assert record.format == "muse" and record.format_detail == "GE MUSE XML 9.0.9.18167"
    _check_against_reference(record, path)
    assert record.metadata.patient_id == "JAX01234" and record.metadata.device_id == "MAC55"


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("muse"), ids=lambda r: r["path"])
def test_corpus_exports_match_the_reference_decoder(entry):
    path = corpus_dir() / entry["path"]
    [record] = ecgingest.read(path.read_bytes())
    _check_against_reference(record, path)


@requires_corpus
def test_statement_lines_join_until_the_end_of_line_flag():
    [record] = ecgingest.read(corpus_dir() / "muse" / "egm_muse_sinus.xml")
    texts = [s["text"] for s in record.interpretation["statements"]]
    assert "Anterior infarct, age undetermined" in texts
    assert "When compared with ECG of 30-MAR-2023 09:09," in texts
    assert record.original_interpretation["confirmation"] == "original"
    assert record.metadata.patient_birth_date == dt.date(1979, 7, 8)  # month first


# ---------------------------------------------------------------- round trips


@settings(max_examples=40)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32 - 1), rate=st.sampled_from([250, 500]),
       encoding=st.sampled_from(ENCODINGS), doctype=st.booleans(),
       upb=st.sampled_from([4.88, 5.0, 1.0]))
def test_written_exports_read_back_exactly(n, seed, rate, encoding, doctype, upb):
    rhythm = _leads(n, seed)
    median = _leads(min(n, 60), seed + 1)
    data = muse_document(rhythm, median=median, rate=rate, units_per_bit=upb,
                         encoding=encoding, doctype=doctype)
    assert detect(Entry.from_bytes("x.bin", data)).name == "muse"
    record = _decode(data, strict=True)
    for label in STORED:
        sig = record.signal(label)
        np.testing.assert_array_equal(sig.digital, rhythm[label])
        assert sig.sample_rate == rate and sig.scale == upb and sig.units == "uV"
    first = rhythm["I"].astype(np.float64) * upb
    second = rhythm["II"].astype(np.float64) * upb
    expected = {"III": second - first, "aVR": -(first + second) / 2,
                "aVL": first - second / 2, "aVF": second - first / 2}
    for label, values in expected.items():
        np.testing.assert_allclose(record.signal(label).physical, values, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(record.median_beats.digital,
                                  np.array([median[label] for label in STORED]))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_names_and_statements_keep_their_accents_in_every_encoding(encoding):
    data = muse_document(_leads(10), patient_last="Müller-Lüdenscheidt", patient_first="Zoë",
                         statements=[("Rythme sinusal régulier", True), ("Bloc ", False),
                                     ("de branche droit", True)], encoding=encoding)
    record = _decode(data, strict=True)
    assert record.metadata.patient_last_name == "Müller-Lüdenscheidt"
    assert record.metadata.patient_first_name == "Zoë"
    assert [s["text"] for s in record.interpretation["statements"]] == [
        "Rythme sinusal régulier", "Bloc de branche droit"]
    assert record.interpretation["confirmation"] == "confirmed"


def test_acquisition_date_is_month_first_and_local():
    record = _decode(muse_document(_leads(5), date="02-03-2020", time="07:08:09"))
    assert record.start_time == dt.datetime(2020, 2, 3, 7, 8, 9)
    assert record.metadata.recording_start_time is None  # no zone: not a UTC instant


def test_a_crc_mismatch_is_a_warning_when_tolerant_and_an_error_when_strict():
    data = muse_document(_leads(20), bad_crc_lead="V3")
    record = _decode(data)
    assert any("V3" in w and "CRC-32" in w for w in record.warnings)
    with pytest.raises(ChecksumError, match="V3"):
        _decode(data, strict=True)


def test_a_file_without_a_rhythm_waveform_is_a_header_error():
    data = muse_document(_leads(5)).replace(b"<WaveformType>Rhythm", b"<WaveformType>Other")
    with pytest.raises(HeaderError, match="no Rhythm waveform"):
        _decode(data)


def test_inspect_reads_header_facts_without_samples():
    data = muse_document(_leads(123))
    info = muse.FORMAT.inspect(data, DecodeContext("muse"))
    assert [s.label for s in info.signals] == [*STORED, "III", "aVR", "aVL", "aVF"]
    assert {s.samples for s in info.signals} == {123}


def test_sniffing_needs_the_root_element_not_the_extension():
    data = muse_document(_leads(3))
    assert muse.sniff(Probe.of_bytes(data, "whatever.bin"))
    assert not muse.sniff(Probe.of_bytes(b"<?xml version='1.0'?><RestingECGx/>", "a.xml"))
    assert not muse.sniff(Probe.of_bytes(b'<RestingECG xmlns="urn:other"/>', "a.xml"))


# ---------------------------------------------------------------- the base64 kernel


_BASE64_TEXT = st.lists(st.sampled_from(list(b"AQgw+/09xyZ=\n \t\r*-\x00\xff")), max_size=48).map(bytes)


@settings(max_examples=400)
@given(text=_BASE64_TEXT)
def test_the_base64_kernel_decodes_and_fails_as_binascii_does(text):
    status, data, skipped = muse_kernel.decode_base64(text)
    try:
        expected = binascii.a2b_base64(text)
    except binascii.Error as exc:
        assert status != muse_kernel.STATUS_OK
        assert (status == muse_kernel.STATUS_BAD_VALUE) == ("1 more than" in str(exc))
    else:
        assert status == muse_kernel.STATUS_OK
        assert data.tobytes() == expected
    assert skipped == sum(1 for c in text if c not in b"AQgw+/09xyZ= \t\r\n")


@settings(max_examples=100)
@given(payload=st.binary(max_size=300), width=st.sampled_from([0, 1, 4, 76]))
def test_the_base64_kernel_reads_line_wrapped_text_back_exactly(payload, width):
    text = binascii.b2a_base64(payload, newline=False)
    if width:
        text = b"\n".join(text[i:i + width] for i in range(0, len(text), width)) + b"\n"
    status, data, skipped = muse_kernel.decode_base64(text)
    assert (status, data.tobytes(), skipped) == (muse_kernel.STATUS_OK, payload, 0)
    assert not data.flags.writeable


# ---------------------------------------------------------------- damaged files


INTACT = muse_document(_leads(50, 7))


@settings(max_examples=30)
@given(data=st.data())
def test_mutated_exports_end_in_a_record_or_a_typed_error_from_every_source(data, tmp_path_factory):
    encoding = data.draw(st.sampled_from(ENCODINGS))
    raw = mutate(muse_document(_leads(40, 3), median=_leads(8, 4), encoding=encoding), data)
    outcomes(raw, tmp_path_factory.mktemp("muse"), "damaged.xml", INTACT)


@settings(max_examples=20)
@given(data=st.data())
def test_mutated_real_export_ends_in_a_record_or_a_typed_error(data):
    raw = bytearray((FIX / "easyrecg_muse_ecg1.xml").read_bytes())
    for _ in range(data.draw(st.integers(1, 10))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        record = _decode(bytes(raw), strict=data.draw(st.booleans()))
    except EcgIngestError:
        return
    assert record.format == "muse"


# ---------------------------------------------------------------- the base64 scan


def _outcome(raw: bytes, strict: bool = False) -> object:
    """What decoding gives, as comparable values: the error type, or the record's content."""
    try:
        record = _decode(raw, strict)
    except EcgIngestError as exc:
        return type(exc).__name__
    beats = record.extras.get("median_beats")
    return (record.labels, [s.digital.dtype.str for s in record.signals],
            [s.digital.tobytes() for s in record.signals],
            [(s.scale, s.offset, s.units, s.sample_rate) for s in record.signals],
            record.warnings, record.metadata, record.start_time, record.format_detail,
            {k: v for k, v in record.extras.items() if k != "median_beats"},
            None if beats is None else (beats.labels, beats.digital.tobytes(), beats.scale))


def _outcome_of_whole_parse(raw: bytes, monkeypatch: pytest.MonkeyPatch,
                            strict: bool = False) -> object:
    """The outcome with the parser given the whole document (no byte scan)."""
    with monkeypatch.context() as patched:
        patched.setattr(muse._k, "lead_blocks", lambda document, plain=(): None)
        return _outcome(raw, strict)


def test_the_scan_reads_each_lead_block_and_skips_markup_that_only_looks_like_one():
    """Comments, CDATA, processing instructions and attribute values are no element;
    texts keep the line ends the XML parser reports; base64 texts are marked spans."""
    doc = (b'<?xml version="1.0"?>\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n'
           b'<?pi <LeadData>x?><RestingECG a="<LeadData>>"><!-- <LeadData></LeadData> -->'
           b'<x><![CDATA[<LeadData><LeadID>I</LeadID></LeadData>]]></x><Waveform>'
           b'<LeadData>\r\n <LeadID>I\r\nJ\rK</LeadID><LeadID>II</LeadID><Empty/>'
           b'<WaveFormData>\r\nAQID\n</WaveFormData><WaveFormData>AAAA</WaveFormData>\n'
           b'</LeadData><LeadData></LeadData><LeadDataX a="1"/></Waveform></RestingECG>')
    blocks, fields, spans = muse_kernel.lead_blocks(doc)
    assert [doc[s:e] for s, e in blocks.tolist()][1] == b""
    assert fields == [{"LeadID": "I\nJ\nK", "Empty": "", "WaveFormData": "#0"}, {}]
    assert [doc[s:e] for s, e in spans.tolist()] == [b"\r\nAQID\n"]
    data, table = muse_kernel.decode_spans(doc, spans)
    assert [(data[o:o + n].tobytes(), status, skipped, crc) for o, n, status, skipped, crc
            in table.tolist()] == [(b"\x01\x02\x03", muse_kernel.STATUS_OK, 0,
                                    zlib.crc32(b"\x01\x02\x03"))]


def test_the_scan_reads_plain_blocks_as_every_child_in_file_order():
    doc = (b"<RestingECG><QRSTimesTypes><QRS><Number>1</Number><Type>0</Type><Number>2"
           b"</Number><Time/></QRS><GlobalRR>900</GlobalRR></QRSTimesTypes>"
           b"<Waveform><LeadData><LeadID>I</LeadID><WaveFormData>AQID</WaveFormData>"
           b"</LeadData></Waveform><QRS>\r\n</QRS></RestingECG>")
    blocks, fields, spans = muse_kernel.lead_blocks(doc, (b"QRS", b"Absent"))
    assert fields == [[("Number", "1"), ("Type", "0"), ("Number", "2"), ("Time", "")],
                      {"LeadID": "I", "WaveFormData": "#0"}, []]
    assert [doc[s:e] for s, e in spans.tolist()] == [b"AQID"]
    assert [doc[s:e] for s, e in blocks.tolist()][2] == b"\r\n"


@pytest.mark.parametrize("doc", [
    b"<a><QRS/></a>", b'<a><QRS n="1"></QRS></a>', b"<a><QRS><b>1<c/></b></QRS></a>",
    b"<a><QRS>#0</QRS></a>", b"<a><QRS><b>\xe9</b></QRS></a>", b"<a><QRS><b>1</b></qrs></a>",
    b"<a><QRS><b>&amp;</b></QRS></a>", b"<a><QRS ></QRS></a>", b"<a><QRS><b>1</b>",
])
def test_the_scan_declines_a_plain_block_it_does_not_read_exactly(doc):
    assert muse_kernel.lead_blocks(doc, (b"QRS",)) is None
    assert muse_kernel.lead_blocks(doc) is not None  # the same document without plain names


@pytest.mark.parametrize("doc", [
    b"<a><LeadData><LeadID>I<b/></LeadID></LeadData></a>",  # a grandchild
    b'<a><LeadData x="1"><LeadID>I</LeadID></LeadData></a>',  # attributes
    b"<a><LeadData/></a>", b"<a><LeadData ></LeadData></a>",
    b'<a><LeadData><LeadID x="1">I</LeadID></LeadData></a>',
    b"<a><LeadData><LeadID>I</LeadId></LeadData></a>",  # another end tag
    b"<a><LeadData><LeadID>&#73;</LeadID></LeadData></a>",  # a reference
    b"<a><LeadData><LeadID>\xc3\x89</LeadID></LeadData></a>",  # not ASCII
    b"<a><LeadData><LeadID>\x01</LeadID></LeadData></a>",  # not an XML character
    b"<a><LeadData><LeadID>]]></LeadID></LeadData></a>",
    b"<a><LeadData>text<LeadID>I</LeadID></LeadData></a>",  # mixed content
    b"<a><LeadData><!-- c --></LeadData></a>", b"<a><LeadData><x:y>1</x:y></LeadData></a>",
    b"<!DOCTYPE a [<!ENTITY e 'AAAA'>]><a><LeadData></LeadData></a>",
    b"<a><!-- open <LeadData></LeadData></a>",  # unterminated comment
    b'<a b="open><LeadData></LeadData></a>',  # unterminated value
    b"<a><LeadData><WaveFormData>AAAA", b"<a><LeadData>", b"<", b"",
])
def test_the_scan_declines_markup_it_does_not_read_exactly(doc):
    assert muse_kernel.lead_blocks(doc) is None


@given(data=st.binary(max_size=2000))
def test_the_kernel_crc32_is_zlib_s(data):
    assert muse_kernel.crc32_of(data) == zlib.crc32(data)


@given(first=st.lists(st.integers(-32768, 32767), max_size=300),
       second=st.lists(st.integers(-32768, 32767), max_size=300))
def test_derived_limb_leads_are_twice_the_formulas_of_i_and_ii(first, second):
    n = min(len(first), len(second))
    i = np.array(first[:n], dtype=np.int64)
    ii = np.array(second[:n], dtype=np.int64)
    block = muse_kernel.derive_limb_leads(np.array(first, "<i2").view(np.uint8),
                                          np.array(second, "<i2").view(np.uint8))
    assert block.dtype == np.int32 and block.shape == (4, n)
    np.testing.assert_array_equal(block, [2 * (ii - i), -(i + ii), 2 * i - ii, 2 * ii - i])


def test_spans_outside_the_document_are_refused():
    with pytest.raises(ValueError):
        muse_kernel.decode_spans(b"<a>AAAA</a>", np.array([[3, 40]], dtype=np.int64))


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("muse"), ids=lambda r: r["path"])
def test_corpus_exports_read_the_same_with_and_without_the_base64_scan(entry, monkeypatch):
    raw = (corpus_dir() / entry["path"]).read_bytes()
    assert muse_kernel.lead_blocks(raw, muse.PLAIN_BLOCKS) is not None
    assert _outcome(raw) == _outcome_of_whole_parse(raw, monkeypatch)


_STATEMENTS = (("Sinus rhythm", False), (", rate 60", True))
_SNIPPETS = [b"<!-- <WaveFormData>AQID</WaveFormData> -->", b"<![CDATA[<WaveFormData>]]>",
             b"<LeadData>", b"</LeadData>", b"<LeadID>X</LeadID>", b"<LeadID/>", b"<LeadData/>",
             b"<LeadDataCRC32>1</LeadDataCRC32>", b"<x:y/>", b" a='1'", b"\x00", b"\t",
             b"&#65;", b"&amp;", b"\r\n", b"\r", b"<", b"&", b"]]>", b"<b/>", b"\xc3\xa9", b"\xff",
             b"\x01", b"=", b"==", b"#0", b" ", b"A", b"<WaveFormData>", b"</WaveFormData>",
             b'<?pi ?>', b"<!DOCTYPE x>", b'"', b"'", b"-->", b"<QRS>", b"</QRS>",
             b"<StmtText>x</StmtText>", b"<PatientID/>", b"<MuseInfo/>"]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_edited_exports_read_the_same_with_and_without_the_base64_scan(data):
    """Snippets of markup, entities, line ends and stray bytes put anywhere (most often
    inside or next to the lead blocks): the scan changes nothing a read gives."""
    encoding = data.draw(st.sampled_from(ENCODINGS))
    raw = bytearray(muse_document(_leads(12, 5), median=_leads(4, 6), encoding=encoding,
                                  statements=_STATEMENTS))
    marks = [i for i in range(len(raw)) if raw.startswith(b"WaveFormData", i)
             or raw.startswith(b"Lead", i) or raw.startswith(b"Stmt", i)
             or raw.startswith(b"Patient", i)] or [0]
    for _ in range(data.draw(st.integers(1, 3))):
        near = data.draw(st.sampled_from(marks))
        at = data.draw(st.one_of(st.integers(max(0, near - 20), min(len(raw), near + 40)),
                                 st.integers(0, len(raw))))
        cut = data.draw(st.integers(0, 2))
        raw[at:at + cut] = data.draw(st.sampled_from(_SNIPPETS))
    strict = data.draw(st.booleans())
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _outcome(bytes(raw), strict) == _outcome_of_whole_parse(bytes(raw), monkeypatch,
                                                                       strict)


_WRITTEN = muse_document(_leads(12, 5), median=_leads(4, 6), statements=_STATEMENTS)
_PLACES = {  # where a snippet goes: this many bytes after the first occurrence of these
    "base64 text": (b"<WaveFormData>", 18), "lead field": (b"<LeadID>", 9),
    "lead field end": (b"</LeadID>", 0), "between lead fields": (b"</LeadID>", 9),
    "lead block start": (b"<LeadData>", 10), "lead block end": (b"</WaveFormData>", 15),
    "before the root": (b"?>", 2), "patient field": (b"<PatientID>", 11),
    "measurement block start": (b"<RestingECGMeasurements>", 24),
    "statement text": (b"<StmtText>", 10), "statement block end": (b"</StmtText>", 11)}


@pytest.mark.parametrize("place", sorted(_PLACES))
@pytest.mark.parametrize("snippet", _SNIPPETS + [b"", b"\xe9", b"\x7f", b"\x0b"], ids=repr)
def test_every_snippet_in_every_place_reads_the_same_with_and_without_the_scan(
        place, snippet, monkeypatch):
    mark, offset = _PLACES[place]
    at = _WRITTEN.index(mark) + offset
    raw = _WRITTEN[:at] + snippet + _WRITTEN[at:]
    for strict in (False, True):
        assert _outcome(raw, strict) == _outcome_of_whole_parse(raw, monkeypatch, strict)


@pytest.mark.parametrize(("head", "compatible"), [
    (b"<RestingECG/>", True), (b'<?xml version="1.0"?><a/>', True),
    (b'<?xml version="1.0" standalone="yes"?><a/>', True),
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', True),
    (b"<?xml version='1.0' encoding='utf-8'?><a/>", True),
    (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?><a/>', True),
    (b'<?xml version="1.0" encoding="windows-1252"?><a/>', True),
    (b'<?xml version="1.0" encoding="UTF-16"?><a/>', False),
    (b'<?xml version="1.0" encoding="Shift_JIS"?><a/>', False),
    (b'<?xml version="1.0" encoding="EBCDIC-CP-US"?><a/>', False),
    ('<?xml version="1.0"?><a/>'.encode("utf-16"), False),
    ('<a/>'.encode("utf-16-le"), False), (b" <a/>", False), (b"", False),
])
def test_only_documents_whose_markup_bytes_are_ascii_are_scanned(head, compatible):
    assert _xml.ascii_compatible(head) is compatible
