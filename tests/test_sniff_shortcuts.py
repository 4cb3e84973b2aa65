"""Detection's shortcuts give the answers of the full checks they stand in for.

A format's marker byte lets detection skip its sniffer: no file the sniffer
claims may lack it. The Kardia sniffer counts its distinctive keys in one
search: as containment counts them. The root element of an XML prefix is read by one byte match in the common case
and by the character scan otherwise: both must name the same root (and
namespace) for any prefix, including the odd ones (non-ASCII names and
whitespace, DOCTYPE subsets, prolog items cut off, attribute values holding
markup, byte-order marks, prefixes cut at the probe's first look).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, corpus_dir
from ecgingest.detect import detect
from ecgingest.formats import _xml, kardia, single_file_formats
from ecgingest.formats._base import PROBE_BYTES, Probe


def scanned_root(probe: Probe) -> Any:
    """The root element as the character scan alone reads it (no byte shortcut)."""
    found = _xml._text_start(probe.head(64))
    if found is None:
        return None
    codec, skip = found
    for size in (_xml._FIRST_LOOK, PROBE_BYTES):
        head = probe.head(size)
        result = _xml._scan(head[skip:], codec, truncated=len(head) == size)
        if result is not _xml._MORE:
            return result
    return None


def _mostly(plain: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    """One of ``plain`` (what files hold) most of the time, else one of ``odd``."""
    return st.sampled_from(plain * 6 + odd)


_SPACE = _mostly([" ", "\n", "\t", "\r\n", ""], ["\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028"])
_NAME = _mostly(["RestingECG", "AnnotatedECG", "restingecgdata", "a", "_x.y-z", "ns:AnnotatedECG",
                 "v3:a"], ["Ré", "é", "1bad", "x:", "v3:a:b", "aé:b", "a:bé", "a:é"])
_ATTRIBUTE_NAME = _mostly(["xmlns", "xmlns:ns", "xmlns:v3", "xsi:schemaLocation", "type"],
                          ["xmlnsx", "xmlns:v", "é", "a b", "xmlns.x", "xmlns:v3x"])
_VALUE = _mostly(["urn:hl7-org:v3", "http://www3.medical.philips.com", ""],
                 ["a>b", "caf\xe9", "it's", 'say "x"', "x xmlns='y'", "-->", "?>"])
_PROLOG_ITEM = _mostly(
    ['<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', "<!-- c -->",
     '<!DOCTYPE RestingECG SYSTEM "restecg.dtd">', "<!DOCTYPE x [<!ENTITY a 'b'>]>", " ", "\n"],
    ["<?pi ?>", "<?>", "<?pi", "<?a?b?>", "<!-->", "<!---->", "<!-- a --->", "<!-- - -->",
     "<!-- caf\xe9 -->", "<!-- <Root> -->", "<!--", "<!DOCTYPE x [ <!-- ] --> ]>",
     "<!DOCTYPE x [ ><a/> ]>", "<!DOCTYPE x [", "<!doctype x>", "<!DOCTYPE", "junk", "\ufeff",
     "\xa0"])


@st.composite
def _attribute(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from(['"', "'"]))
    return (draw(_SPACE) + " " + draw(_ATTRIBUTE_NAME) + draw(_SPACE) + "=" + draw(_SPACE)
            + quote + draw(_VALUE) + quote)


@st.composite
def _document(draw: st.DrawFn) -> bytes:
    prolog = "".join(draw(st.lists(_PROLOG_ITEM, max_size=4)))
    tag = ("<" + draw(_NAME) + "".join(draw(st.lists(_attribute(), max_size=4)))
           + draw(_SPACE) + draw(_mostly([">", "/>", " >", "\n/>"], ["", "x>", "\x0b>"])))
    text = prolog + tag + draw(st.sampled_from(["", "<child/>", "text"]))
    codec = draw(st.sampled_from(["latin-1", "utf-8", "utf-8-sig", "utf-16"]))
    data = text.encode(codec, errors="replace")
    if draw(st.integers(0, 3)) == 0:  # cut somewhere, as a short or damaged file is
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=600)
@given(_document())
@example(b'<!-- x -->\n<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:voc="urn:hl7-org:v3/voc">')
@example(b"<RestingECG\xa0xmlns='x'>")
@example(b'<?xml version="1.0"?><ns:a xmlns:ns="u" xmlns="v"/>')
@example(b"<a xmlns='1' xmlns='2'>")
@example(b"<!-- c -->\x0b<a>")
@example(b"<?xml version='1.0'?>\xa0<a/>")
@example(b"<!DOCTYPE x [ ><a/> ]><Root/>")
@example(b'\xef\xbb\xbf<a xmlns="caf\xc3\xa9"/>')
def test_the_byte_match_names_the_root_the_scan_names(data):
    assert _xml.root_element(Probe.of_bytes(data)) == scanned_root(Probe.of_bytes(data))


@given(st.integers(0, 5000), st.sampled_from([b"", b"\xef\xbb\xbf"]))
def test_a_root_at_or_across_the_first_look_is_named_the_same(padding, bom):
    data = (bom + b'<?xml version="1.0"?><!--' + b"x" * padding + b'-->\n<restingecgdata '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xmlns="http://www3.medical.philips.com">')
    assert _xml.root_element(Probe.of_bytes(data)) == scanned_root(Probe.of_bytes(data))


# --------------------------------------------------------------------------- marker bytes

def _marked() -> list[Any]:
    return [fmt for fmt in single_file_formats() if fmt.marker is not None]


def _claims(fmt: Any, data: bytes) -> bool:
    try:
        return bool(fmt.sniff(Probe.of_bytes(data, "upload")))
    except Exception:  # detection counts a raising sniffer as "not mine"
        return False


def _known_files() -> list[Path]:
    roots = [FIXTURES] + ([corpus_dir()] if corpus_dir() is not None else [])
    return [path for root in roots for path in sorted(root.rglob("*")) if path.is_file()]


@pytest.mark.parametrize("fmt", _marked(), ids=lambda fmt: fmt.name)
def test_no_file_the_sniffer_claims_lacks_the_marker_byte(fmt):
    """Every known file the format claims, with its marker byte set to each value the
    marker excludes, is declined by the sniffer: skipping the sniffer changes nothing."""
    offset, values = fmt.marker
    excluded = [value for value in range(256) if value not in values]
    claimed = 0
    for path in _known_files():
        data = path.read_bytes()[:PROBE_BYTES]
        if len(data) <= offset or not _claims(fmt, data):
            continue
        claimed += 1
        assert data[offset] in values, path
        for value in excluded:
            changed = data[:offset] + bytes((value,)) + data[offset + 1:]
            assert not _claims(fmt, changed), (path, value)
    if not claimed:
        pytest.skip(f"no known file of {fmt.name} (corpus not available?)")


@given(st.data())
def test_random_bytes_without_the_marker_are_declined(data):
    for fmt in _marked():
        offset, values = fmt.marker
        head = data.draw(st.binary(min_size=offset + 1, max_size=offset + 600))
        value = data.draw(st.sampled_from([v for v in range(256) if v not in values]))
        head = head[:offset] + bytes((value,)) + head[offset + 1:]
        assert not _claims(fmt, head)


def test_detection_asks_no_sniffer_whose_marker_the_file_lacks(monkeypatch):
    asked: list[str] = []
    for fmt in single_file_formats():
        real = type(fmt).sniff
        monkeypatch.setattr(type(fmt), "sniff", lambda self, probe, real=real: (
            asked.append(self.name), real(self, probe))[1])
    data = b"<RestingECG>" + b" " * 300
    lacking = {fmt.name for fmt in _marked() if data[fmt.marker[0]] not in fmt.marker[1]}
    assert detect(Probe.of_bytes(data, "ecg.xml")).name == "muse"
    assert "edf" in lacking and "muse" in asked
    assert not lacking & set(asked)


# --------------------------------------------------------------------------- Kardia keys

_KARDIA_KEYS = [key.decode() for group in kardia._SNIFF_GROUPS for key in group]


def _kardia_by_containment(head: bytes) -> bool:
    """The Kardia sniffer's key test as plain containment: two groups' keys present."""
    return sum(1 for group in kardia._SNIFF_GROUPS if any(key in head for key in group)) >= 2


@given(st.lists(st.one_of(st.sampled_from(_KARDIA_KEYS),
                          st.sampled_from(['"', '""', ", ", ": 1", "mains_frequency",
                                           '"leadI', 'leadI"', "x", '{"a": "b"}'])),
                max_size=12))
@example(['"recordedAt"', 'leadI"'])  # one quote between two keys
@example(['"mains_freq', 'uency"', '"leadI"'])
def test_kardia_keys_are_counted_as_containment_counts_them(parts):
    head = ("{" + "".join(parts)).encode()
    assert kardia.sniff(Probe.of_bytes(head)) == _kardia_by_containment(head)
