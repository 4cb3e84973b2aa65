"""HL7 aECG: conformance on real files, round trips through the test-side writer
(digits with scale and origin), annotations, encodings, and damaged files."""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecg_xml_writers import ENCODINGS, aecg_document, check_reads_in_threads, mutate, outcomes
from ecgingest.detect import detect
from ecgingest.errors import CorruptDataError, EcgIngestError, EcgWarning, HeaderError
from ecgingest.formats import hl7aecg
from ecgingest.formats._base import DecodeContext, Probe
from ecgingest.formats._xml import parse_number
from ecgingest.sources import Entry

FIX = FIXTURES / "hl7aecg"
LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF")


def _decode(data: bytes, strict: bool = False) -> ecgingest.Record:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return hl7aecg.FORMAT.decode(data, DecodeContext("hl7aecg", name="t.xml", strict=strict))


def _leads(n: int, seed: int = 0, labels=LEADS, bound: int = 2**15) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {label: rng.integers(-bound, bound, n) for label in labels}


# ---------------------------------------------------------------- real files


def _check_against_reference(record: ecgingest.Record, path: Path) -> None:
    ref = np.load(f"{path}.ref.npz")
    meta = json.loads(Path(f"{path}.ref.json").read_text())
    assert record.labels == [str(c) for c in ref["channel_names"]]
    np.testing.assert_array_equal(np.array([s.digital for s in record.signals]), ref["digital"])
    np.testing.assert_allclose(np.array([s.physical for s in record.signals]), ref["physical"],
                               rtol=1e-12, atol=1e-9)
    assert [s.scale for s in record.signals] == [float(v) for v in ref["scale"]]
    assert [s.offset for s in record.signals] == [float(v) for v in ref["origin"]]
    assert [s.units for s in record.signals] == [str(u) for u in ref["units"]]
    assert [s.sample_rate for s in record.signals] == [float(f) for f in ref["fs"]]
    assert record.start_time == dt.datetime.fromisoformat(meta["start_time"])
    for key in ref.files:
        if key.startswith("series") and key.endswith("_digital"):
            block = record.series[int(key[len("series"):-len("_digital")]) - 1]
            np.testing.assert_array_equal(block.digital, ref[key])
            np.testing.assert_allclose(block.physical, ref[key.replace("digital", "physical")],
                                       rtol=1e-12, atol=1e-9)
    listed = [{k: a[k] for k in ("code", "depth", "value_type", "value", "unit") if k in a}
              for a in record.aecg_annotations]
    assert listed == meta["annotations"]
    assert record.warnings == []


def test_the_minimum_file_without_a_declaration_matches_the_reference():
    path = FIX / "fda_minimum_aecg.xml"
    [record] = ecgingest.read(path)
    assert record.format == "hl7aecg"
    _check_against_reference(record, path)
    assert record.metadata.patient_id == "SBJ-123"
    assert record.metadata.investigation_id == "PUK-123-TRL-1"


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("hl7aecg"), ids=lambda r: r["path"])
def test_corpus_files_match_the_reference_decoder(entry):
    path = corpus_dir() / entry["path"]
    [record] = ecgingest.read(path.read_bytes())
    _check_against_reference(record, path)


@requires_corpus
def test_the_example_keeps_beats_measurements_and_subject():
    [record] = ecgingest.read(corpus_dir() / "hl7aecg" / "hl7_example_aecg.xml")
    beats = record.representative_beats
    assert beats.digital.shape == (12, 599) and beats.kind == "representative_beat"
    assert record.global_measurements["qt_interval_ms"] == 420
    assert record.global_measurements["qrs_axis_deg"] == -61
    assert record.metadata.patient_last_name == "Clark"
    assert record.metadata.patient_gender == "MALE"
    assert record.metadata.patient_birth_date == dt.date(1953, 5, 8)
    assert record.metadata.device_id == "ELI250"


# ---------------------------------------------------------------- round trips


@settings(max_examples=200, deadline=None)
@given(digits=st.text("0123456789", min_size=1, max_size=22), point=st.integers(0, 22),
       with_point=st.booleans())
def test_scale_text_reads_as_float_reads_it(digits, point, with_point):
    """The kernel's own reading of plain decimal numbers (up to 15 digits as a quotient
    of two exact doubles, up to 19 from its exact binary expansion, more by Python) gives
    the value float() gives, to the last bit."""
    text = digits[:point] + "." + digits[point:] if with_point else digits
    if float(text) == 0.0 or float(text) > 1e15:
        return  # a zero scale is replaced (with a warning); larger is no number of an ECG
    data = aecg_document({"I": np.arange(5, dtype=np.int16)}, scale=2.5).replace(
        b'<scale value="2.5"', f'<scale value="{text}"'.encode())
    [record] = ecgingest.read(data)
    assert record.signals[0].scale == float(text)


@settings(max_examples=40)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([2.5, 5.0, 1.0, 0.5]), origin=st.sampled_from([0.0, -12.5, 3.0]),
       increment=st.sampled_from([("0.002", "s", 500.0), ("4", "ms", 250.0),
                                  ("0.001", "s", 1000.0)]),
       encoding=st.sampled_from(ENCODINGS), per_line=st.integers(1, 40),
       bound=st.sampled_from([2**7, 2**15, 2**31]))
def test_written_files_read_back_exactly(n, seed, scale, origin, increment, encoding, per_line,
                                         bound):
    rhythm = _leads(n, seed, bound=bound)
    beats = _leads(min(n, 50), seed + 1, bound=2**10)
    data = aecg_document(rhythm, scale=scale, origin=origin, increment=increment[0],
                         increment_unit=increment[1], beats=beats, encoding=encoding,
                         digits_per_line=per_line)
    assert detect(Entry.from_bytes("x.bin", data)).name == "hl7aecg"
    record = _decode(data, strict=True)
    assert record.labels == list(LEADS)
    for label in LEADS:
        sig = record.signal(label)
        np.testing.assert_array_equal(sig.digital, rhythm[label])
        np.testing.assert_allclose(sig.physical, origin + scale * rhythm[label].astype(float),
                                   rtol=1e-12, atol=1e-9)
        assert sig.sample_rate == pytest.approx(increment[2], rel=1e-12)
    np.testing.assert_array_equal(record.representative_beats.digital,
                                  np.array([beats[label] for label in LEADS]))
    assert record.representative_beats.scale == (5.0,) * 12


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_subject_names_keep_their_accents_in_every_encoding(encoding):
    record = _decode(aecg_document(_leads(4), name="Zoë Ørsted-Nuñez", encoding=encoding))
    assert record.metadata.patient_last_name == "Zoë Ørsted-Nuñez"


def test_a_timestamp_with_an_offset_gives_the_utc_start():
    record = _decode(aecg_document(_leads(4), head="20200102030405.250+0100"))
    assert record.start_time == dt.datetime(2020, 1, 2, 3, 4, 5, 250000,
                                            dt.timezone(dt.timedelta(hours=1)))
    assert record.metadata.recording_start_time == dt.datetime(2020, 1, 2, 2, 4, 5, 250000,
                                                               dt.timezone.utc)


def test_global_measurements_come_from_annotations():
    data = aecg_document(_leads(4), annotations=[("MDC_ECG_HEART_RATE", "61", "bpm"),
                                                 ("MDC_ECG_TIME_PD_QTc", "410", "ms")])
    record = _decode(data)
    assert record.global_measurements == {"ventricular_rate_bpm": 61, "qtc_ms": 410}
    assert [a["code"] for a in record.aecg_annotations] == ["MDC_ECG_HEART_RATE",
                                                            "MDC_ECG_TIME_PD_QTc"]


@pytest.mark.parametrize("digits, message", [
    ("1 2 x3", "digits"), ("1 2.5 3", "digits"), ("1 - 3", "digits"), ("1 2,3", "digits"),
    ("99999999999", "overflow"), ("1 2 é", "not a digit"),
])
def test_bad_digits_are_corrupt_data_naming_the_lead(digits, message):
    data = aecg_document({"II": np.array([7, 8])}).replace(b"7 8", digits.encode())
    with pytest.raises(CorruptDataError, match=message) as info:
        _decode(data)
    assert "II" in str(info.value)


def test_a_file_without_a_time_increment_is_a_header_error():
    data = aecg_document(_leads(3)).replace(b'<increment value="0.002" unit="s"/>', b"")
    with pytest.raises(HeaderError, match="increment|sampling rate"):
        _decode(data)


def test_inspect_counts_samples_without_parsing_them():
    info = hl7aecg.FORMAT.inspect(aecg_document(_leads(77)), DecodeContext("hl7aecg"))
    assert [s.label for s in info.signals] == list(LEADS)
    assert {s.samples for s in info.signals} == {77}


def test_sniffing_needs_the_hl7_namespace():
    assert hl7aecg.sniff(Probe.of_bytes(aecg_document(_leads(2)), "a.bin"))
    assert not hl7aecg.sniff(Probe.of_bytes(b"<AnnotatedECG/>", "a.xml"))
    assert not hl7aecg.sniff(Probe.of_bytes(b'<AnnotatedECG xmlns="urn:x"/>', "a.xml"))


def test_the_digit_kernel_counts_and_parses_every_token():
    from ecgingest._ext import hl7aecg as kernel

    text = b" \n-2147483648\t+5 0\r\n2147483647 "
    count = kernel.count_integers(text)
    status, values, lo, hi, _ = kernel.parse_integers(text, count)
    assert (count, status, values.tolist(), lo, hi) == (
        4, kernel.STATUS_OK, [-2147483648, 5, 0, 2147483647], -2147483648, 2147483647)
    assert kernel.parse_integers(b"2147483648", 1)[0] == kernel.STATUS_OVERFLOW
    assert kernel.count_integers(b"") == 0


_DIGITS = st.text(alphabet="0123456789-+ \n\tx", max_size=60) | st.lists(
    st.integers(-2**31, 2**31 - 1) | st.integers(-40000, 40000), max_size=3000).map(
    lambda values: " ".join(map(str, values)))


def _records(data: bytes):
    from lxml import etree

    from ecgingest._ext import hl7aecg as kernel
    from ecgingest.formats import _xml

    root = _xml.parse(data, DecodeContext("hl7aecg"))
    return root, kernel.tree_records(root, etree._Element, hl7aecg._number, hl7aecg.lead_label)


@settings(max_examples=60)
@given(texts=st.lists(_DIGITS, min_size=1, max_size=8))
def test_a_set_of_digit_texts_reads_as_each_text_alone(texts):
    """One count call and one parse call for all the leads of a set, read where libxml2
    keeps them, give what the per-text kernel functions give, up to the first bad text."""
    from ecgingest._ext import hl7aecg as kernel

    leads = {f"L{i}": np.array([1000 + i]) for i in range(len(texts))}
    data = aecg_document(leads).decode()
    for i, text in enumerate(texts):  # each lead's one value becomes its text
        data = data.replace(f"<digits>{1000 + i}</digits>", f"<digits>{text}</digits>")
    _, (records, _, digits) = _records(data.encode())
    indices = [fields[-1] for fields in records if fields[0] == "l" and fields[-1] is not None]
    assert len(indices) == len(texts)
    counts, total = digits.counts(indices)
    assert counts.tolist() == [kernel.count_integers(t.encode()) for t in texts]
    assert total == sum(counts.tolist())
    table, wide, narrow = digits.parse(indices, counts)
    for text, count, (status, at, fits), values, small in zip(
            texts, counts.tolist(), table.tolist(), wide, narrow):
        alone, want, lo, hi, at_alone = kernel.parse_integers(text.encode(), count)
        assert (status, at) == (alone, at_alone)
        if status != kernel.STATUS_OK:
            break
        np.testing.assert_array_equal(values, want)
        assert bool(fits) == (-32768 <= lo and hi <= 32767) == (small is not None)
        if small is not None:
            assert small.dtype == np.int16
            np.testing.assert_array_equal(small, want)


def _lxml_annotations(root) -> list[dict]:
    """The annotations as lxml's element API gives them (the oracle of the tree walk)."""
    ns = "{urn:hl7-org:v3}"
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"

    def first(element, *path):
        for name in path:
            if element is None:
                return None
            element = next(element.iterchildren(ns + name), None)
        return element

    def number(text):
        value = parse_number(text)
        return None if value is None else float(value)

    out, leads = [], {}
    for element in root.iter(ns + "annotation"):
        above = next(element.iterancestors(ns + "annotation"), None)
        code = first(element, "code")
        item = {"code": None if code is None else code.get("code"),
                "depth": sum(1 for _ in element.iterancestors(ns + "annotation"))}
        value = first(element, "value")
        if value is not None:
            kind = (value.get(xsi) or "").rpartition(":")[2]
            item["value_type"] = kind
            if kind == "PQ":
                item["value"] = value.get("value")
                if value.get("unit") is not None:
                    item["unit"] = value.get("unit")
            elif kind == "CE" or value.get("code") is not None:
                item["value"] = value.get("code")
                if value.get("displayName"):
                    item["display_name"] = value.get("displayName")
            else:
                item["value"] = (value.text or "").strip()
        lead = None
        support = first(element, "support")
        for boundary in () if support is None else support.iterfind(
                f"{ns}supportingROI/{ns}component/{ns}boundary"):
            code = (first(boundary, "code").get("code") or "") if first(
                boundary, "code") is not None else ""
            if code.startswith("MDC_ECG_LEAD"):
                lead = hl7aecg.lead_label(code)
                continue
            low, high = first(boundary, "value", "low"), first(boundary, "value", "high")
            bounds = [number(None if b is None else b.get("value")) for b in (low, high)]
            if bounds != [None, None]:
                item["onset"], item["offset"] = bounds
                item["time_unit"] = (None if low is None else low.get("unit")) or (
                    None if high is None else high.get("unit"))
        lead = lead or (None if above is None else leads[above])
        leads[element] = lead
        if lead is not None:
            item["lead"] = lead
        out.append(item)
    return out


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("hl7aecg"), ids=lambda r: r["path"])
def test_the_tree_walk_reads_the_annotations_lxml_reads(entry):
    root, (_, annotations, _) = _records((corpus_dir() / entry["path"]).read_bytes())
    assert [list(a.items()) for a in annotations[0]] == [
        list(a.items()) for a in _lxml_annotations(root)]


def test_nested_annotations_inherit_the_lead_of_their_nearest_ancestor():
    def note(code, inner="", lead=None, low=None):
        bounds = []
        if lead:
            bounds.append(f'<boundary><code code="MDC_ECG_LEAD_{lead}"/></boundary>')
        if low:
            bounds.append(f'<boundary><code code="TIME_RELATIVE"/><value><low value="{low}" '
                          'unit="ms"/></value></boundary>')
        support = (f"<support><supportingROI><component>{''.join(bounds)}</component>"
                   "</supportingROI></support>") if bounds else ""
        return (f'<component><annotation><code code="{code}"/><value xsi:type="PQ" '
                f'value="1" unit="ms"/>{support}{inner}</annotation></component>')

    tree = note("A", note("B", note("C", low="12")), lead="V2") + note("D", note("E"))
    data = aecg_document(_leads(3)).decode().replace(
        "</series>", f"<subjectOf><annotationSet>{tree}</annotationSet></subjectOf></series>")
    root, (_, annotations, _) = _records(data.encode())
    found = annotations[0]
    assert found == _lxml_annotations(root)
    assert [(a["code"], a["depth"], a.get("lead")) for a in found] == [
        ("A", 0, "V2"), ("B", 1, "V2"), ("C", 2, "V2"), ("D", 0, None), ("E", 1, None)]
    assert found[2]["onset"] == 12.0 and found[2]["time_unit"] == "ms"


def test_a_region_of_several_rois_and_components_reads_as_lxml_reads_it():
    """Boundaries are taken from every supportingROI and component of the first support,
    in document order, other elements between them skipped."""
    def bound(low, code="TIME_RELATIVE"):
        return (f'<boundary><code code="{code}"/><value><low value="{low}" unit="ms"/>'
                '</value></boundary>')

    lead = '<boundary><code code="MDC_ECG_LEAD_V3"/></boundary>'
    regions = [
        f"<supportingROI><component>{bound(5)}<other/>{lead}</component><other/>"
        f"<component>{bound(7)}</component></supportingROI><other/>"
        f"<supportingROI><component><other/></component><component>{bound(9)}"
        "</component></supportingROI>",
        f"<supportingROI><component>{lead}{bound('-3')}</component></supportingROI>",
        "<supportingROI/><supportingROI><component/></supportingROI>",
    ]
    tree = "".join(f'<component><annotation><code code="A{i}"/><support>{region}</support>'
                   f'<support>{bound(99)}</support></annotation></component>'
                   for i, region in enumerate(regions))
    data = aecg_document(_leads(3)).decode().replace(
        "</series>", f"<subjectOf><annotationSet>{tree}</annotationSet></subjectOf></series>")
    root, (_, annotations, _) = _records(data.encode())
    found = annotations[0]
    assert found == _lxml_annotations(root)
    assert [(a.get("onset"), a.get("lead")) for a in found] == [
        (9.0, "V3"), (-3.0, "V3"), (None, None)]


def test_a_document_with_prefixed_names_reads_as_with_the_default_namespace():
    plain = aecg_document(_leads(9, 3), beats=_leads(4, 4),
                          annotations=[("MDC_ECG_HEART_RATE", "61", "bpm")]).decode()
    body = plain[plain.index("<AnnotatedECG"):]
    prefixed = re.sub(r"<(/?)([A-Za-z]+)([ />])", r"<\1h:\2\3", body).replace(
        'xmlns="urn:hl7-org:v3"', 'xmlns:h="urn:hl7-org:v3"')
    a, b = _decode(plain.encode()), _decode(prefixed.encode())
    assert b.labels == a.labels
    for x, y in zip(a.signals, b.signals):
        np.testing.assert_array_equal(x.digital, y.digital)
    np.testing.assert_array_equal(a.representative_beats.digital, b.representative_beats.digital)
    assert a.aecg_annotations == b.aecg_annotations and a.metadata == b.metadata


@pytest.mark.parametrize("digits, values", [
    ("1 2 <![CDATA[3 4]]> 5", [1, 2, 3, 4, 5]),
    ("<![CDATA[7 8]]>", [7, 8]),
    ("1 2<!-- a comment --> 3", [1, 2, 3]),
    ("1 &#50; 3", [1, 2, 3]),
])
def test_digits_in_several_text_nodes_read_as_lxml_joins_them(digits, values):
    data = aecg_document({"II": np.array([7, 8])}).replace(b"7 8", digits.encode())
    [lead] = _decode(data).signals
    np.testing.assert_array_equal(lead.digital, values)


def test_the_tree_walk_refuses_what_is_not_an_lxml_aecg_root():
    from lxml import etree

    from ecgingest._ext import hl7aecg as kernel

    with pytest.raises(TypeError):
        kernel.tree_records(object(), etree._Element, hl7aecg._number, hl7aecg.lead_label)
    with pytest.raises(ValueError, match="AnnotatedECG"):
        kernel.tree_records(etree.fromstring(b"<AnnotatedECG/>"), etree._Element,
                            hl7aecg._number, hl7aecg.lead_label)


def test_an_lxml_whose_elements_have_another_layout_is_refused_with_what_to_install(
        monkeypatch):
    from ecgingest._ext import hl7aecg as kernel
    from ecgingest.errors import MissingDependencyError

    monkeypatch.setattr(hl7aecg, "_ELEMENT", [])
    monkeypatch.setattr(kernel, "ELEMENT_SIZE", kernel.ELEMENT_SIZE + 8)
    with pytest.raises(MissingDependencyError, match="pip install 'lxml>=5,<7'") as caught:
        ecgingest.read((FIX / "fda_minimum_aecg.xml").read_bytes())
    assert caught.value.extra == "xml"


@given(n=st.integers(0, 700), dtypes=st.lists(st.sampled_from([np.int16, np.int32]),
                                               min_size=1, max_size=12), seed=st.integers(0, 99))
def test_stacked_rows_are_numpy_s_int32_stack(n, dtypes, seed):
    from ecgingest._ext import hl7aecg as kernel

    rng = np.random.default_rng(seed)
    rows = [rng.integers(np.iinfo(d).min, np.iinfo(d).max, n, endpoint=True).astype(d)
            for d in dtypes]
    block = kernel.stack_int32(rows)
    assert block.dtype == np.int32
    np.testing.assert_array_equal(block, np.vstack([r.astype(np.int32) for r in rows]))


# ---------------------------------------------------------------- damaged files


INTACT = aecg_document(_leads(30, 5))


@settings(max_examples=30)
@given(data=st.data())
def test_mutated_files_end_in_a_record_or_a_typed_error_from_every_source(data, tmp_path_factory):
    encoding = data.draw(st.sampled_from(ENCODINGS))
    raw = mutate(aecg_document(_leads(20, 1), beats=_leads(5, 2), encoding=encoding), data,
                 b"0123456789 -+.<>/\"=x\x00\xff")
    outcomes(raw, tmp_path_factory.mktemp("aecg"), "damaged.xml", INTACT)


@settings(max_examples=20)
@given(data=st.data())
def test_mutated_real_file_ends_in_a_record_or_a_typed_error(data):
    raw = bytearray((FIX / "fda_minimum_aecg.xml").read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        record = _decode(bytes(raw), strict=data.draw(st.booleans()))
    except EcgIngestError:
        return
    assert record.format == "hl7aecg"


# ---------------------------------------------------------------- repeated elements


def test_the_first_of_repeated_elements_is_read_wherever_one_is_expected():
    """Where the format has one element of a name and a file repeats it (a lead's code,
    scale, origin or digits, the subject's id), the first is read and the others ignored."""
    raw = aecg_document({"I": np.array([1, 2, 3])}, scale=2.5, origin=1.0).decode()
    raw = raw.replace('<code code="MDC_ECG_LEAD_I" codeSystem="2.16.840.1.113883.6.24"/>',
                      '<code code="MDC_ECG_LEAD_I"/><code code="MDC_ECG_LEAD_V6"/>')
    raw = raw.replace('<origin value="1.0" unit="uV"/><scale value="2.5" unit="uV"/>',
                      '<origin value="1.0" unit="uV"/><scale value="2.5" unit="uV"/>'
                      '<scale value="7" unit="mV"/><origin value="9" unit="uV"/>')
    raw = raw.replace("<digits>1 2 3</digits>", "<digits>1 2 3</digits><digits>4 5</digits>")
    raw = raw.replace('<id root="2.16.840.1.113883.3.456" extension="SBJ-123"/>',
                      '<id root="2.16.840.1.113883.3.456" extension="SBJ-123"/>'
                      '<id extension="OTHER"/>')
    record = _decode(raw.encode())
    [lead] = record.signals
    assert (lead.label, lead.scale, lead.offset, lead.units) == ("I", 2.5, 1.0, "uV")
    np.testing.assert_array_equal(lead.digital, [1, 2, 3])
    assert record.metadata.patient_id == "SBJ-123"


def test_elements_of_another_namespace_are_not_read_for_their_local_name():
    """A child named like an HL7 element but in another namespace is not that element."""
    raw = aecg_document({"I": np.array([1, 2, 3])}, scale=2.5).decode()
    raw = raw.replace('<scale value="2.5" unit="uV"/>',
                      '<x:scale xmlns:x="urn:other" value="9" unit="uV"/>'
                      '<scale value="2.5" unit="uV"/>')
    [lead] = _decode(raw.encode()).signals
    assert lead.scale == 2.5


@given(text=st.text(alphabet="0123456789.+-eE x", max_size=24) | st.floats(
    allow_nan=False, allow_infinity=False).map(repr))
def test_a_plain_number_reads_as_parse_number_reads_it(text):
    value = parse_number(text)
    assert hl7aecg._number(text) == (None if value is None else float(value))


@settings(max_examples=150)
@given(text=st.text(alphabet="0123456789.+-eE x", max_size=24) | st.floats(
    allow_nan=False, allow_infinity=False).map(repr) | st.integers(0, 10**20).map(str)
    | st.from_regex(r"[0-9]{1,22}(\.[0-9]{0,22})?", fullmatch=True))
def test_numbers_the_tree_walk_reads_itself_are_what_the_format_reads(text):
    """A boundary's and a scale's value read by the walk (plain digits without a text
    object, up to 19 of them) equal :func:`hl7aecg._number` of their text; the region's
    lead is read whatever its bounds hold."""
    tree = ('<component><annotation><code code="A"/><support><supportingROI><component>'
            '<boundary><code code="MDC_ECG_LEAD_II"/></boundary>'
            f'<boundary><code code="TIME_RELATIVE"/><value><low value="{text}" unit="ms"/>'
            '<high value="7" unit="ms"/></value></boundary></component></supportingROI>'
            '</support></annotation></component>')
    data = aecg_document(_leads(3)).decode().replace(
        "</series>", f"<subjectOf><annotationSet>{tree}</annotationSet></subjectOf></series>")
    data = re.sub(r'<scale value="[^"]*"', f'<scale value="{text}"', data, count=1)
    _, (records, (items, _), _) = _records(data.encode())
    assert items[0]["onset"] == hl7aecg._number(text) and items[0]["lead"] == "II"
    scales = [fields[7] for fields in records
              if fields[0] == "l" and not fields[1].startswith("TIME_")]
    assert scales[0] == hl7aecg._number(text)


_TS = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?"
                 r"(?:([+-])(\d{2})(\d{2}))?")


def _pattern_timestamp(text):
    """The HL7 TS grammar as a regular expression (the oracle of the sliced reading)."""
    found = _TS.fullmatch(text.strip())
    if not (found and found.group(3)):
        return None
    year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = found.groups()
    try:
        zone = None
        if sign:
            minutes = int(zone_h) * 60 + int(zone_m)
            zone = dt.timezone(dt.timedelta(minutes=minutes if sign == "+" else -minutes))
        return dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                           int(second or 0), int((fraction + "000000")[:6]) if fraction else 0,
                           zone)
    except ValueError:
        return None


@given(text=st.text(alphabet="0123456789.+- ", max_size=24) | st.builds(
    lambda when, digits, fraction, zone: when.strftime("%Y%m%d%H%M%S")[:digits] + fraction + zone,
    st.datetimes(dt.datetime(1000, 1, 1)), st.sampled_from([8, 10, 12, 14, 9, 4]),
    st.sampled_from(["", ".5", ".123456", ".1234567", "."]),
    st.sampled_from(["", "+0100", "-0530", "+2400", "+01"])))
def test_a_timestamp_reads_as_the_hl7_ts_grammar_says(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        when, zone = hl7aecg._timestamp(text, DecodeContext("hl7aecg"), "t")
    assert when == _pattern_timestamp(text)
    assert zone == (None if when is None else when.tzinfo)


def test_reads_in_more_threads_than_cpus_give_the_records_of_one_thread():
    """Reads of long documents (digits parsed without the GIL) in more threads than
    CPUs, after a reader that leaves, give what one thread reads."""
    # 2000 samples a lead: digits parsed without the GIL
    check_reads_in_threads(_decode, [aecg_document(_leads(2000, seed)) for seed in range(3)])


def _both_parses(data: bytes) -> tuple[tuple, tuple]:
    """The kernel's records of the document as its own libxml2 parse and as lxml's
    hardened parse give them."""
    from lxml import etree

    from ecgingest._ext import hl7aecg as kernel
    from ecgingest.formats import _xml

    assert _xml.bind_libxml2(kernel, DecodeContext("hl7aecg"))
    plain = _xml.plain_text(data)
    assert plain is not None
    document = kernel.parse_document(*plain)
    assert document is not None
    own = kernel.document_records(document, hl7aecg._number, hl7aecg.lead_label)
    lxml = kernel.tree_records(_xml.parse(data, DecodeContext("hl7aecg")), etree._Element,
                               hl7aecg._number, hl7aecg.lead_label)
    return own, lxml


def _digit_texts(found: tuple) -> list[bytes]:
    records, _, digits = found
    return [digits.text(r[-1], 0, 1 << 30) for r in records if r[0] == "l" and r[-1] is not None]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("extra", [
    "", "<!-- a comment -->", "<?pi data?>", "<![CDATA[ 1 ]]>", "\n   \n", "&#32;&amp;"])
def test_the_kernel_s_own_parse_walks_as_lxml_s_tree(encoding, extra):
    data = aecg_document(_leads(30), beats=_leads(8, 1), name="Zoë",
                         annotations=[("MDC_ECG_HEART_RATE", "61", "bpm")], encoding=encoding)
    text = data.decode(encoding or "utf-8").replace("<given>", f"<given>{extra}")
    text = text.replace("</digits>", f"{extra}</digits>", 1) if "&" not in extra else text
    data = text.lstrip("\ufeff").encode(encoding or "utf-8")
    if encoding and encoding.startswith("UTF-16"):  # the mark libxml2 reads UTF-16 by
        data = (b"\xff\xfe" if encoding.endswith("LE") else b"\xfe\xff") + data
    own, lxml = _both_parses(data)
    assert own[0] == lxml[0] and own[1] == lxml[1]
    assert _digit_texts(own) == _digit_texts(lxml)


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("hl7aecg"), ids=lambda r: r["path"])
def test_the_kernel_s_own_parse_walks_real_files_as_lxml_s_tree(entry):
    own, lxml = _both_parses((corpus_dir() / entry["path"]).read_bytes())
    assert own[0] == lxml[0] and own[1] == lxml[1]
    assert _digit_texts(own) == _digit_texts(lxml)


@pytest.mark.parametrize("data", [b"<AnnotatedECG xmlns='urn:hl7-org:v3'>", b"<a/><b/>",
                                  b"<a>&undeclared;</a>", b"\x00\x01"])
def test_the_kernel_s_own_parse_leaves_what_is_not_well_formed_to_lxml(data):
    from ecgingest._ext import hl7aecg as kernel
    from ecgingest.formats import _xml

    assert _xml.bind_libxml2(kernel, DecodeContext("hl7aecg"))
    assert kernel.parse_document(data, False) is None


def test_a_document_with_a_doctype_is_read_by_lxml_s_hardened_parse():
    from ecgingest.formats import _xml

    data = aecg_document(_leads(3))
    at = data.index(b"<AnnotatedECG")
    assert _xml.plain_text(data[:at] + b"<!DOCTYPE AnnotatedECG>" + data[at:]) is None
    assert _xml.plain_text(data[:at] + b"<!-- <!DOCTYPE x> -->" + data[at:]) is not None
    wide = "<!DOCTYPE AnnotatedECG><AnnotatedECG/>".encode("utf-16-le")
    assert _xml.plain_text(b"\xff\xfe" + wide) is None
    assert _xml.plain_text(b"\xff\xfe" + wide[len("<!DOCTYPE AnnotatedECG>") * 2:]) is not None
