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
from ecg_xml_writers import ENCODINGS, check_reads_in_threads, muse_document, mutate, outcomes
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
        patched.setattr(muse, "_SCHEMA", _Declining())
        return _outcome(raw, strict)


class _Declining:
    """A byte scan that reads no document: every read goes through the XML parser."""

    def read(self, document: bytes, samples: bool = True) -> None:
        return None


def _scan(doc: bytes) -> object:
    return muse._SCHEMA.read(doc)


def _scanned_version(doc: bytes) -> object:
    found = _scan(doc)
    return None if found is None else found[0][0]["MuseVersion"]


@pytest.mark.parametrize(("body", "text"), [
    (b"<MuseVersion> 9&amp;1 &lt;&gt;&quot;&apos; </MuseVersion>", "9&1 <>\"'"),
    (b"<MuseVersion>&#57;&#x2E;&#X30;</MuseVersion>", None),  # '&#X' is no reference
    (b"<MuseVersion>&#57;&#x2E;&#x30;&#233;&#x20AC;&#x1F600;</MuseVersion>", "9.0\xe9\u20ac\U0001f600"),
    (b"<MuseVersion><![CDATA[<9>&amp;]]></MuseVersion>", "<9>&amp;"),
    (b"<MuseVersion>9<!-- <x> -->.0<?pi x?>.1</MuseVersion>", "9.0.1"),
    (b"<MuseVersion>a\r\nb\rc</MuseVersion>", "a\nb\nc"),
    (b"<MuseVersion>&#13;a</MuseVersion>", "a"),
    (b"<MuseVersion\n>x</MuseVersion >", "x"),
    (b"<MuseVersion/>", ""),
    (b"<MuseVersion>1</MuseVersion><MuseVersion>2</MuseVersion>", "1"),  # the first
])
def test_the_scan_reads_references_cdata_comments_and_line_ends_as_the_parser_does(
        body, text, monkeypatch):
    doc = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">'
           b"<RestingECG>\n <MuseInfo>" + body + b"</MuseInfo></RestingECG>")
    assert _scanned_version(doc) == text
    with monkeypatch.context() as patched:
        patched.setattr(muse, "_SCHEMA", _Declining())
        if text is not None:
            assert muse._parse(doc, DecodeContext("muse")).version() == (text or None)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8", None, "latin1"])
def test_the_scan_decodes_names_in_the_declared_encoding(encoding):
    text = "Zoë Müller\xa0"
    body = f"<RestingECG><PatientDemographics><PatientLastName> {text} </PatientLastName>" \
           "</PatientDemographics></RestingECG>"
    doc = (body if encoding is None else
           f'<?xml version="1.0" encoding="{encoding}"?>{body}').encode(encoding or "utf-8")
    found = _scan(doc)
    assert found is not None and found[0][1]["PatientLastName"] == text.strip()


@pytest.mark.parametrize("doc", [
    b"<RestingECG a='1'/>", b"<RestingECG><MuseInfo a='1'/></RestingECG>",  # attributes
    b"<Other/>", b"<x:RestingECG/>", b"<RestingECG><x:y/></RestingECG>",
    b"<RestingECG>&e;</RestingECG>", b"<RestingECG>&#0;</RestingECG>",
    b"<RestingECG>&#xD800;</RestingECG>", b"<RestingECG>&amp</RestingECG>",
    b"<!DOCTYPE RestingECG [<!ENTITY e 'x'>]><RestingECG/>",
    b"<!DOCTYPE RestingECG SYSTEM 'a'><!DOCTYPE RestingECG><RestingECG/>",
    b"<RestingECG>]]></RestingECG>", b"<RestingECG>\x01</RestingECG>",
    b"<RestingECG>\xc3</RestingECG>", b"<RestingECG>\xed\xa0\x80</RestingECG>",
    b'<?xml version="1.0" encoding="US-ASCII"?><RestingECG>\xe9</RestingECG>',
    b'<?xml version="1.0" encoding="Shift_JIS"?><RestingECG/>',
    b'<?xml version="1.1"?><RestingECG/>', b"<?xml version='1.0' ?><?xml x?><RestingECG/>",
    b"<RestingECG><!-- a -- b --></RestingECG>", b"<RestingECG/><RestingECG/>",
    b"<RestingECG/>x", b"x<RestingECG/>", b"<RestingECG>", b"<RestingECG></RestingEC>",
    b"<RestingECG><a>1<b/></a></RestingECG>",  # mixed content
    b"<RestingECG><![CDATA[x]]></RestingECG><![CDATA[x]]>",
    "<RestingECG/>".encode("utf-16"), b"",
])
def test_the_scan_declines_markup_it_does_not_read_exactly(doc):
    assert _scan(doc) is None


def test_the_scan_reads_the_first_block_of_each_name_and_every_waveform():
    doc = (b"<RestingECG><QRSTimesTypes><QRS><Number>1</Number><Type>0</Type><Number>2"
           b"</Number><Time/></QRS><GlobalRR>900</GlobalRR></QRSTimesTypes>"
           b"<QRSTimesTypes><QRS><Number>9</Number></QRS></QRSTimesTypes>"
           b"<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>2.5e2</SampleBase>"
           b"<LeadData><LeadID>I</LeadID><LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>"
           b"<WaveFormData>AQID\n</WaveFormData><WaveFormData>AAAA</WaveFormData></LeadData>"
           b"</Waveform><Waveform/></RestingECG>")
    headers, measurements, statements, qrs, waveforms, data, table = _scan(doc)
    assert headers == [None, None, None] and measurements == statements == [None, None]
    assert qrs == [[1, 0, None]]
    assert waveforms == [({"WaveformType": "Rhythm", "SampleBase": 250.0},  # parse_number
                          [["I", None, None, None, 4.88, None, None, 0]]), ({}, [])]
    [(offset, produced, status, size, crc)] = table
    assert data[offset:offset + produced].tobytes() == b"\x01\x02\x03"
    assert (status, size, crc) == (muse_kernel.STATUS_OK, 5, zlib.crc32(b"\x01\x02\x03"))


def test_a_base64_text_holding_other_characters_is_left_to_the_parser():
    doc = (b"<RestingECG><Waveform><LeadData><WaveFormData>AQ*ID</WaveFormData></LeadData>"
           b"</Waveform></RestingECG>")
    assert _scan(doc) is None
    assert _scan(doc.replace(b"*", b"")) is not None


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


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("muse"), ids=lambda r: r["path"])
def test_corpus_exports_read_the_same_with_and_without_the_base64_scan(entry, monkeypatch):
    raw = (corpus_dir() / entry["path"]).read_bytes()
    assert _scan(raw) is not None
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


@given(texts=st.dictionaries(st.sampled_from(sorted(muse.MEASUREMENT_KEYS) + ["QTcFrederica"]),
                             st.one_of(st.text(max_size=20), st.from_regex(r"[0-9]{1,20}"),
                                       st.from_regex(r" ?-?[0-9]{0,5}\.?[0-9]{0,3} ?"))))
def test_measurement_numbers_read_as_parse_number_reads_them(texts: dict[str, str]) -> None:
    expected = {key: _xml.parse_number(texts[name]) for name, key in muse.MEASUREMENT_KEYS.items()
                if name in texts}
    found = muse_kernel.named_numbers(texts, tuple(muse.MEASUREMENT_KEYS.items()), _xml.parse_number)
    assert found == expected and list(found) == list(expected)
    assert [type(v) for v in found.values()] == [type(v) for v in expected.values()]


def _joined_lines(found: list[list[object]]) -> list[str]:
    """The statement-joining rule written out plainly."""
    lines: list[str] = []
    parts: list[str] = []
    for text, ends in found:
        text = text or ""
        if parts and text and text[0] not in ",.;:)" and not parts[-1].endswith(" "):
            parts.append(" ")
        parts.append(text)
        if ends:
            lines.append("".join(parts).strip())
            parts = []
    if parts:
        lines.append("".join(parts).strip())
    return lines


@given(found=st.lists(st.tuples(st.one_of(st.none(), st.text(alphabet=" ,.;:)ab", max_size=6)),
                                st.booleans()).map(list), max_size=8))
def test_statement_texts_join_into_lines_until_one_ends_a_line(
        found: list[list[object]]) -> None:
    lines = muse_kernel.statement_lines(found, muse._CLOSERS)
    assert lines == [{"sequence": i + 1, "text": t} for i, t in enumerate(_joined_lines(found))]


def test_qrs_rows_become_dicts_of_the_qrs_keys_and_short_rows_are_refused() -> None:
    assert muse_kernel.keyed([[1, 0, 250], [2, None, 1.5]], muse.QRS_KEYS) == [
        {"number": 1, "type": 0, "time": 250}, {"number": 2, "type": None, "time": 1.5}]
    with pytest.raises(ValueError):
        muse_kernel.keyed([[1, 0]], muse.QRS_KEYS)


_CLEAN_LEAD = ["I", 2, 4, 2, 4.88, "MICROVOLTS", zlib.crc32(b"\x01\x00\xff\xff"), 0]


@pytest.mark.parametrize("position, value", [
    (3, 4), (4, None), (4, 0), (6, 1), (6, 7.0), (1, 3), (2, 6), (7, 1), (7, "AQD//w==")])
def test_a_lead_any_check_would_report_leaves_the_waveform_to_the_lead_by_lead_reading(
        position: int, value: object) -> None:
    data = np.frombuffer(b"\x01\x00\xff\xff", dtype=np.uint8)
    table = [(0, 4, muse_kernel.STATUS_OK, 8, zlib.crc32(b"\x01\x00\xff\xff"))]
    labels, scales, units, arrays, reserve, span = muse_kernel.clean_leads(
        [list(_CLEAN_LEAD)], table, data, {"MICROVOLTS": "uV"})
    assert (labels, scales, units, reserve, span) == (["I"], [4.88], ["uV"], 6, (0, 4))
    assert arrays[0].tolist() == [1, -1] and not arrays[0].flags.writeable
    lead = list(_CLEAN_LEAD)
    lead[position] = value
    assert muse_kernel.clean_leads([lead], table, data, {"MICROVOLTS": "uV"}) is None
    bad = [(0, 4, muse_kernel.STATUS_BAD_VALUE, 8, table[0][4])]
    assert muse_kernel.clean_leads([list(_CLEAN_LEAD)], bad, data, {}) is None


# ---------------------------------------------------------------- threads


def test_reads_in_more_threads_than_cpus_give_the_records_of_one_thread():
    """Readers that end their scan while another holds the GIL wait for it (a bounded
    spin, at most one spinner per other CPU); with more threads than CPUs, and a reader
    that leaves after one read, every read ends and gives what one thread reads."""
    # 5000 samples a lead: a document the scan reads without the GIL
    check_reads_in_threads(_decode, [muse_document(_leads(5000, seed)) for seed in range(4)],
                           per_thread=10)
