"""Detection's shortcuts give the answers of the full checks they stand in for.

The root element of an XML prefix is read by one byte match in the common case
and by the character scan otherwise: both must name the same root (and
namespace) for any prefix, including the odd ones (non-ASCII names and
whitespace, DOCTYPE subsets, prolog items cut off, attribute values holding
markup, byte-order marks, prefixes cut at the probe's first look).
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecgingest.formats import _xml
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
