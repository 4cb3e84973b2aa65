"""Hostile XML against the one parser every XML format uses: entity expansion,
external entities and DTDs, deep nesting and huge values end in a typed error,
with memory bounded by the input, through every XML format and the public API."""

from __future__ import annotations

import resource
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from ecgingest.errors import CorruptDataError, EcgIngestError, EcgWarning, UnsupportedFeatureError
from ecgingest.formats import _xml
from ecgingest.formats._base import DecodeContext, Probe

ROOTS = {
    "muse": "<RestingECG>{}</RestingECG>",
    "hl7aecg": '<AnnotatedECG xmlns="urn:hl7-org:v3">{}</AnnotatedECG>',
    "philips": '<restingecgdata xmlns="http://www3.medical.philips.com">{}</restingecgdata>',
}


def _laughs(root: str) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?><!DOCTYPE x [{"".join(entities)}]>'
            + root.format("&lol9;")).encode()


def _external_entity(root: str) -> bytes:
    return ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + root.format("&e;")).encode()


def _parameter_entity(root: str) -> bytes:
    return ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x">'
            ' %p;]>' + root.format("")).encode()


def _external_dtd_entity(root: str) -> bytes:
    # the DTD is never loaded, so the entity it might declare stays unexpanded
    return ('<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd">'
            + root.format("&passwd;")).encode()


def _deep(root: str) -> bytes:
    return root.format("<a>" * 1_000_000 + "</a>" * 1_000_000).encode()


def _huge_attribute(root: str) -> bytes:
    # 20 MB of attribute value, past libxml2's 10 MB bound without the huge option
    return root.format('<a v="' + "x" * (20 * 2**20) + '"/>').encode()


def _claimed_attribute(root: str) -> bytes:
    # an attribute that never ends: the rest of a 2 GB value is only claimed
    return root.format('<a v="' + "x" * 2**16).encode()


ATTACKS = {
    "billion_laughs": (_laughs, UnsupportedFeatureError),
    "external_entity": (_external_entity, UnsupportedFeatureError),
    "parameter_entity": (_parameter_entity, UnsupportedFeatureError),
    "external_dtd_entity": (_external_dtd_entity, UnsupportedFeatureError),
    "deep_nesting": (_deep, CorruptDataError),
    "huge_attribute": (_huge_attribute, CorruptDataError),
    "claimed_attribute": (_claimed_attribute, CorruptDataError),
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("fmt", sorted(ROOTS))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_documents_end_in_a_typed_error_with_bounded_memory(fmt, attack):
    make, expected = ATTACKS[attack]
    data = make(ROOTS[fmt])
    before = _peak_mb()
    with pytest.raises(expected):
        _xml.parse(data, DecodeContext(fmt))
    # the parser never holds more than a small multiple of the input
    assert _peak_mb() - before < 64 + 4 * len(data) / 2**20


@pytest.mark.parametrize("fmt", sorted(ROOTS))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_documents_are_claimed_by_their_format_and_fail_typed_through_read(fmt, attack):
    make, expected = ATTACKS[attack]
    data = make(ROOTS[fmt])
    assert _xml.root_element(Probe.of_bytes(data))[0] in ROOTS[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        with pytest.raises(expected):
            ecgingest.read(data)


def test_the_parser_never_reads_a_file_an_entity_names(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (f'<?xml version="1.0"?><!DOCTYPE x SYSTEM "{secret.as_uri()}">'
            "<RestingECG><a>&s;</a></RestingECG>").encode()
    with pytest.raises(UnsupportedFeatureError) as info:
        _xml.parse(data, DecodeContext("muse"))
    assert "TOP-SECRET" not in str(info.value)


def test_a_doctype_without_entities_is_read_without_loading_its_dtd():
    data = (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            b'<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n<RestingECG><a>caf\xe9</a></RestingECG>')
    root = _xml.parse(data, DecodeContext("muse"))
    assert root[0].text == "café"


@pytest.mark.parametrize("codec, bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"),
                                        ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                        ("iso-8859-1", b"")])
def test_declared_encodings_are_honoured_by_parser_and_sniffer(codec, bom):
    declared = "UTF-16" if codec.startswith("utf-16") else codec.upper()
    text = (f'<?xml version="1.0" encoding="{declared}"?><!-- é -->\n'
            '<restingecgdata xmlns="http://www3.medical.philips.com"><n>Zoë Ærø</n>'
            "</restingecgdata>")
    data = bom + text.encode(codec)
    assert _xml.root_element(Probe.of_bytes(data)) == ("restingecgdata",
                                                       "http://www3.medical.philips.com")
    root = _xml.parse(data, DecodeContext("philips"))
    assert root[0].text == "Zoë Ærø"


def test_the_sniffer_reads_no_more_than_the_bounded_prefix():
    reads: list[int] = []
    data = b"<!--" + b"x" * 200_000 + b"--><RestingECG/>"
    probe = Probe("big.xml", len(data), lambda n: (reads.append(n), data[:n])[1])
    assert _xml.root_element(probe) is None  # the root lies past the probe
    assert max(reads) <= 64 * 1024


@given(st.binary(max_size=300))
def test_any_bytes_end_in_an_element_or_a_typed_error(data):
    try:
        _xml.parse(data, DecodeContext("muse"))
    except EcgIngestError:
        pass
    _xml.root_element(Probe.of_bytes(data))


@given(st.text(max_size=200))
def test_any_text_after_an_xml_start_ends_in_an_element_or_a_typed_error(text):
    for codec in ("utf-8", "utf-16"):
        data = ("<RestingECG>" + text).encode(codec, errors="replace")
        try:
            _xml.parse(data, DecodeContext("muse"))
        except EcgIngestError:
            pass


def test_xml_of_no_ecg_format_is_skipped_with_a_reason_and_costs_nothing_else():
    import io
    import zipfile

    from ecg_xml_writers import muse_document

    intact = muse_document({label: np.arange(5, dtype=np.int16)
                            for label in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.xml", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
        archive.writestr("RestingECG.xml", b"<AnnotatedECGx/>")
        archive.writestr("ecg.xml", intact)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        result = ecgingest.ingest(buffer.getvalue())
    assert [r.format for r in result.records] == ["muse"]
    assert sorted(s.path for s in result.skipped) == ["RestingECG.xml", "notes.xml"]
    assert all(s.reason for s in result.skipped) and not result.errors


@pytest.mark.parametrize("padding", [0, 4000, 4090, 4096 - 30, 10_000, 60_000])
def test_the_root_is_found_after_long_comments_and_across_the_first_look(padding):
    data = (b'<?xml version="1.0"?><!--' + b"x" * padding + b'-->\n'
            b'<restingecgdata xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xmlns="http://www3.medical.philips.com"/>')
    assert _xml.root_element(Probe.of_bytes(data)) == ("restingecgdata",
                                                       "http://www3.medical.philips.com")


@pytest.mark.parametrize("text, expected", [
    ("144", 144), (" -4.88 ", -4.88), ("1e3", 1000.0), ("9" * 400, None), ("1e300", None),
    ("1e-320", 1e-320), ("inf", None), ("nan", None), ("0x10", None), ("", None), (None, None),
    ("1_000", None), ("12345678901234567890", None),
])
def test_numbers_of_the_file_are_plain_decimals_of_bounded_size(text, expected):
    assert _xml.parse_number(text) == expected


@given(st.sampled_from(["SampleBase", "LeadAmplitudeUnitsPerBit", "LeadSampleCountTotal",
                        "LeadByteCountTotal", "SampleExponent", "LeadDataCRC32"]),
       st.sampled_from(["9" * 400, "1e300", "-1e-320", "1e-320", "0", "-5", "1e15", "4.5"]))
def test_extreme_numbers_in_muse_headers_end_in_a_record_or_a_typed_error(element, value):
    import re

    from ecg_xml_writers import muse_document

    data = muse_document({label: np.arange(4, dtype=np.int16)
                          for label in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")})
    data = re.sub(rf"<{element}>[^<]*</{element}>".encode(),
                  f"<{element}>{value}</{element}>".encode(), data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        try:
            ecgingest.read(data)
        except EcgIngestError:
            pass


@given(st.sampled_from(["durationperchannel", "samplespersecond", "resolution",
                        "numberofleads"]),
       st.sampled_from(["9" * 400, "1e300", "1e15", "1e-320", "0", "-5", "1e12", "3.5"]))
def test_extreme_numbers_in_philips_headers_end_in_a_record_or_a_typed_error(attribute, value):
    import re

    from ecg_xml_writers import philips_document

    data = philips_document({"I": np.arange(8), "II": np.arange(8)})
    data = re.sub(rf'{attribute}="[^"]*"'.encode(), f'{attribute}="{value}"'.encode(), data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        try:
            ecgingest.read(data)
        except EcgIngestError:
            pass


@given(st.sampled_from(['<increment value="{}" unit="s"/>', '<scale value="{}" unit="uV"/>',
                        '<origin value="{}" unit="uV"/>']),
       st.sampled_from(["9" * 400, "1e300", "1e15", "1e-320", "0", "-5", "3.5"]))
def test_extreme_numbers_in_aecg_headers_end_in_a_record_or_a_typed_error(element, value):
    import re

    from ecg_xml_writers import aecg_document

    data = aecg_document({"I": np.arange(8)})
    name = element.split()[0][1:]
    data = re.sub(rf"<{name} [^>]*/>".encode(), element.format(value).encode(), data, count=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        try:
            ecgingest.read(data)
        except EcgIngestError:
            pass
