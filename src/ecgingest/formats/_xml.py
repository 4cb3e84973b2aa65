"""The one hardened XML parser of every XML format, root-element sniffing, and
what the XML formats share (representative beats, small text helpers).

Vendor ECG exports (HL7 aECG, GE MUSE, Philips) are XML that may come from
anyone. Every XML format parses through :func:`parse`, which uses ``lxml``
with a parser that

- never loads a DTD (MUSE files name ``restecg.dtd``, which is never shipped),
  never touches the network and never resolves an external reference (a
  resolver refuses them all);
- never expands an entity: a document whose DTD declares entities
  (billion laughs, external entities) is refused with a typed error, and so
  is one that still holds an entity reference;
- keeps libxml2's safety limits (``huge_tree`` off): at most 256 levels of
  nesting and 10 MB per text node or attribute value, so a 10^6-deep
  document or a claimed 2 GB attribute ends in a typed error with memory
  bounded by the input.

The declared encoding is honoured (ISO-8859-1, UTF-8, UTF-16 LE/BE with a
byte-order mark, or no declaration at all: UTF-8). lxml parses without the
GIL, so threads parsing different files overlap. A format whose kernel binds
the same libxml2 (ext/_libxml2.pxd, :func:`bind_libxml2`) may parse plain
documents (:func:`plain_text`) with the same options in one native region of its
own and walk the tree there: lxml's parse hands the GIL over three times a document.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np

from ..errors import CorruptDataError, UnsupportedFeatureError
from ..record import Signal, new_signal
from ._base import PROBE_BYTES, DecodeContext, Probe, SingleFileFormat, require

__all__ = ["parse", "plain_text", "bind_libxml2", "as_bytes", "ASCII_SUPERSET_NAMES", "LATIN1_NAMES", "ascii_compatible", "MAX_TEXT", "root_element", "XmlFormat", "first", "RepresentativeBeats", "MAX_DEPTH", "local_name",
           "child", "child_text", "children", "texts", "parse_number", "signal", "narrowest"]

MAX_DEPTH = 256
"""Element nesting libxml2 allows without its ``huge`` option (deeper is an error)."""

_state = threading.local()


_lxml: list[Any] = []  # lxml.etree once imported (an import by name costs each parse)


def _etree(ctx: DecodeContext) -> Any:
    if not _lxml:
        _lxml.append(require("lxml.etree", format=ctx.format, extra="xml"))
    return _lxml[0]


def _parser(etree: Any, encoding: str | None = None) -> Any:
    """This thread's hardened parser: the document's own encoding, or ``encoding``
    forced (lxml parsers are not shared between threads)."""
    parsers = getattr(_state, "parsers", None)
    if parsers is None:
        parsers = _state.parsers = {}
    parser = parsers.get(encoding)
    if parser is None:
        class _RefuseAll(etree.Resolver):  # type: ignore[misc, name-defined]
            """Answers every external reference (DTD, entity, XInclude) with nothing."""

            def resolve(self, url: str, pubid: str, context: Any) -> Any:
                return self.resolve_string("", context)

        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            attribute_defaults=False, huge_tree=False, remove_comments=True, remove_pis=True,
            collect_ids=False, recover=False, remove_blank_text=True, encoding=encoding)
        parser.resolvers.add(_RefuseAll())
        parsers[encoding] = parser
    return parser


_DECLARED = re.compile(rb"""<\?xml\s+version\s*=\s*(?:"[^"]*"|'[^']*')\s+encoding\s*=\s*"""
                       rb"""(?:"([A-Za-z][\w.\-]*)"|'([A-Za-z][\w.\-]*)')""")
ASCII_SUPERSET_NAMES = frozenset({
    "us-ascii", "ascii", "iso-8859-1", "iso_8859-1", "latin1", "latin-1", "l1",
    "iso-8859-15", "windows-1252", "cp1252"})
LATIN1_NAMES = frozenset({"iso-8859-1", "iso_8859-1", "latin1", "latin-1", "l1"})
"""Encoding names of ISO-8859-1 (the XML formats' readers and MUSE's scan agree on them)."""


def _as_utf8(raw: bytes) -> bytes | None:
    """The document re-encoded as UTF-8 where that reads the same and parses faster,
    else None (libxml2 then converts from the declared encoding itself).

    libxml2 converts ISO-8859-1 input character by character through its encoding
    layer, which takes longer than parsing the document; an ASCII document declared
    in any ASCII superset is the same bytes in UTF-8, and Python's codecs transcode a
    Latin-1 one several times faster. Documents in other encodings, with a byte-order
    mark or with NUL bytes (UTF-16 without a mark) keep the declared path.
    """
    declared = _DECLARED.match(raw)
    if declared is None or b"\0" in raw:
        return None
    return _utf8_as_declared(raw, _encoding_name(declared))


def _encoding_name(declared: re.Match[bytes]) -> str:
    """The encoding name an XML declaration matched by ``_DECLARED`` gives, lower case."""
    return (declared.group(1) or declared.group(2)).decode("ascii").lower()


def _utf8_as_declared(raw: bytes, name: str) -> bytes | None:
    """The document in UTF-8 where its declared encoding ``name`` makes that the same
    bytes (ASCII text in an ASCII superset) or a fast transcode (Latin-1), else None."""
    if name in ("utf-8", "utf8"):
        return None  # already parsed without conversion
    if name in ASCII_SUPERSET_NAMES and raw.isascii():
        return raw
    if name in LATIN1_NAMES:
        return raw.decode("latin-1").encode("utf-8")
    return None


_LIBXML2_FUNCTIONS = ("xmlNewParserCtxt", "xmlFreeParserCtxt", "xmlCtxtReadMemory", "xmlFreeDoc")
_bound: dict[str, bool] = {}  # kernel module name -> whether it took lxml's libxml2


def bind_libxml2(kernel: Any, ctx: DecodeContext) -> bool:
    """Whether ``kernel`` (an extension module with ``bind_libxml2``) parses with the
    libxml2 of lxml's module: bound on first use from the functions that module exports;
    False where it exports none (lxml then parses every document)."""
    bound = _bound.get(kernel.__name__)
    if bound is None:
        import ctypes

        etree = _etree(ctx)
        try:
            module = ctypes.CDLL(etree.__file__)
            bound = bool(kernel.bind_libxml2(*(
                ctypes.cast(getattr(module, name), ctypes.c_void_p).value or 0
                for name in _LIBXML2_FUNCTIONS)))
        except (OSError, AttributeError):  # an lxml that does not export libxml2
            bound = False
        _bound[kernel.__name__] = bound
    return bound


_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]++|<\?[^?]*+(?:\?(?!>)[^?]*+)*+\?>"
    rb"|<!--[^-]*+(?:-(?!->)[^-]*+)*+-->)*+<[A-Za-z_:]")
"""A prolog of blanks, processing instructions (the declaration) and comments only, then
the root's start: no DOCTYPE, which may stand nowhere else."""


def plain_text(raw: bytes) -> tuple[bytes, bool] | None:
    """What a format's own libxml2 parse reads of a plain document, as :func:`parse`
    would: ``(bytes, read as UTF-8 whatever declared)``; None for a document with a
    DOCTYPE (its entities are checked by :func:`parse`) or in an encoding whose markup
    is neither its ASCII bytes nor UTF-16 after a byte-order mark (libxml2 reads that
    mark, as lxml has it do). Only the prolog is looked at."""
    for bom, codec in _BOMS[1:]:
        if raw.startswith(bom) and raw[2:4] != b"\0\0":  # not UTF-32's mark
            head = raw[2:2 + _FIRST_LOOK * 2].decode(codec, "replace").encode("utf-8")
            return (raw, False) if _PROLOG.match(head) else None
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    if raw[start:start + 1] != b"<" or b"\0" in raw[:256] or _PROLOG.match(raw) is None:
        return None
    if not raw.startswith(b"<?xml", start):
        return raw, False  # no declaration: UTF-8
    declared = _DECLARED.match(raw, start)
    if declared is None:  # a declaration without an encoding: UTF-8
        close = raw.find(b"?>", start)
        return (raw, False) if close > 0 and b"encoding" not in raw[start:close] else None
    name = _encoding_name(declared)
    if name not in ASCII_SUPERSET_NAMES and name not in ("utf-8", "utf8"):
        return None
    utf8 = _utf8_as_declared(raw, name)
    return (raw, False) if utf8 is None else (utf8, True)


MAX_TEXT = 10_000_000
"""Longest text node or attribute value libxml2 reads without its ``huge`` option."""


def as_bytes(data: bytes | memoryview) -> bytes:
    """The document as ``bytes``: a view of a whole ``bytes`` object gives that object
    (no copy of a document held in memory); any other view is copied."""
    if isinstance(data, bytes):
        return data
    held = data.obj
    if isinstance(held, bytes) and data.contiguous and data.nbytes == len(held) and \
            data.format == "B":
        return held
    return bytes(data)


def ascii_compatible(raw: bytes) -> bool:
    """Whether every markup byte of the document means its ASCII character, so markup can
    be found by a byte scan: UTF-8 (declared, implied or with its byte-order mark) or a
    declared ASCII superset. UTF-16, documents with NUL bytes near the start and other
    declared encodings answer False."""
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    if raw[start:start + 1] != b"<" or b"\0" in raw[:256]:
        return False
    if not raw.startswith(b"<?xml", start):
        return True
    declared = _DECLARED.match(raw, start)
    if declared is None:  # a declaration without an encoding: UTF-8
        close = raw.find(b"?>", start)
        return close > 0 and b"encoding" not in raw[start:close]
    name = (declared.group(1) or declared.group(2)).decode("ascii").lower()
    return name in ("utf-8", "utf8") or name in ASCII_SUPERSET_NAMES


def parse(data: bytes | memoryview, ctx: DecodeContext) -> Any:
    """The document's root element, parsed safely (see the module docstring).

    Raises :class:`~ecgingest.errors.CorruptDataError` for XML that is not
    well-formed or nests deeper than :data:`MAX_DEPTH`, and
    :class:`~ecgingest.errors.UnsupportedFeatureError` for entity declarations,
    entity references and external references.
    """
    etree = _etree(ctx)
    raw = as_bytes(data)
    utf8 = _as_utf8(raw)
    parser = _parser(etree) if utf8 is None else _parser(etree, "utf-8")
    try:
        root = etree.fromstring(raw if utf8 is None else utf8, parser)
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if "depth" in text.lower():
            ctx.fail(CorruptDataError, f"the XML nests elements deeper than {MAX_DEPTH} "
                     f"levels ({text}); not an ECG export", field="xml")
        if "entity" in text.lower() and ("loop" in text.lower() or "amplification" in text):
            ctx.fail(UnsupportedFeatureError, f"the XML declares entities ({text}); "
                     "documents with entity declarations are not read", field="xml")
        ctx.fail(CorruptDataError, f"the file is not well-formed XML: {text}", field="xml")
    except (etree.LxmlError, ValueError) as exc:
        ctx.fail(CorruptDataError, f"the file could not be parsed as XML: {exc}", field="xml")
    if root is None:
        ctx.fail(CorruptDataError, "the file holds no XML element", field="xml")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype:
        dtd = docinfo.internalDTD
        if dtd is not None and any(True for _ in dtd.iterentities()):
            ctx.fail(UnsupportedFeatureError, "the XML's document type declares entities; "
                     "documents with entity declarations are not read (an entity "
                     "expansion attack or an external entity)", field="xml")
        # an entity reference needs a '&' in the text (UTF-8 here: the byte itself)
        if utf8 is None or b"&" in utf8:
            for _ in root.iter(etree.Entity):
                ctx.fail(UnsupportedFeatureError, "the XML refers to an entity its "
                         "document does not declare; entities are never expanded",
                         field="xml")
    return root


# --------------------------------------------------------------------------- sniffing

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_NAME = re.compile(r"<([A-Za-z_][\w.\-]*)(?::([A-Za-z_][\w.\-]*))?")
_ATTRIBUTE = re.compile(r"""\s+([A-Za-z_][\w.:\-]*)\s*=\s*("[^"]*"|'[^']*')""")
_WHITESPACE = " \t\r\n"


def _text_start(head: bytes) -> tuple[str, int] | None:
    """Codec and offset of the text of an XML document's first bytes, or None."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    if head.startswith(b"<\x00"):
        return "utf-16-le", 0
    if head.startswith(b"\x00<"):
        return "utf-16-be", 0
    stripped = head.lstrip(b" \t\r\n")
    if stripped.startswith(b"<") or (not stripped and head):
        return "latin-1", 0  # an ASCII-compatible encoding: markup is ASCII in all of them
    return None


_MORE = object()  # the prefix ends before the root element's start tag does
_FIRST_LOOK = 4096


def root_element(probe: Probe) -> tuple[str, str | None] | None:
    """Local name and namespace URI of the root element, read from the bounded prefix.

    Skips the XML declaration, comments, processing instructions and a DOCTYPE
    (never reading more than :data:`~ecgingest.formats._base.PROBE_BYTES`: the
    first 4 KiB, and the rest only when the root starts later); ``None`` when
    the bytes do not start like XML or the root is not within them.
    """
    start = probe.head(64)
    if start[:1] == b"<" and start[1:2] != b"\0":  # no byte-order mark, no UTF-16
        found: tuple[str, int] | None = ("latin-1", 0)
    else:
        found = _text_start(start)
    result: Any = None
    if found is not None:
        codec, skip = found
        for size in (_FIRST_LOOK, PROBE_BYTES):
            head = probe.head(size)
            truncated = len(head) == size
            result = _UNSURE if codec.startswith("utf-16") else _plain_root(
                head, skip, codec)
            if result is _UNSURE:
                result = _scan(head[skip:], codec, truncated)
            if result is not _MORE:
                break
        if result is _MORE:
            result = None
    return result  # type: ignore[no-any-return]


_UNSURE = object()  # the bytes alone do not settle it: the character scan decides

_PLAIN_ROOT = re.compile(
    rb"(?:[ \t\r\n]++|<\?[^?]*+(?:\?(?!>)[^?]*+)*+\?>|<!--[^-]*+(?:-(?!->)[^-]*+)*+-->"
    rb"|<!DOCTYPE[^>\[]*+(?:\[[^\]]*+\][^>]*+)?>)*+"
    rb"<([A-Za-z_][\w.\-]*+)(?::([A-Za-z_][\w.\-]*+))?+"
    rb"(?:\s++(?:(?(2)xmlns:\1|xmlns)\s*+=\s*+(\"[^\"]*+\"|'[^']*+')"
    rb"|[A-Za-z_][\w.:\-]*+\s*+=\s*+(?:\"[^\"]*+\"|'[^']*+')))*+"
    rb"[ \t\r\n]*+/?>")
"""What :func:`_scan` reads, as one match of the bytes, when the root's start tag is plain:
the prolog items it skips (a processing instruction to the first ``?>``, a comment to
the first ``-->``, a DOCTYPE to the first ``>``, or past its ``[...]``), then the root's
ASCII name, its attributes one after the other and the tag's end. Group 3 holds the
value of the last attribute that declares the root's namespace (``xmlns``, or
``xmlns:`` and the root's prefix), as the scan keeps the last. Whatever else (a name
going on in other letters, a tag cut off, stray text, a namespace-less attribute the
scan would read differently) does not match, and the scan decides."""


def _plain_root(head: bytes, skip: int, codec: str) -> Any:
    """What :func:`_scan` returns for ``head[skip:]`` when :data:`_PLAIN_ROOT` matches
    (``codec`` ASCII-compatible: markup characters are their ASCII bytes, found at the
    same places as in the text), else ``_UNSURE``."""
    found = _PLAIN_ROOT.match(head, skip)
    if found is None:
        return _UNSURE
    first, second, namespace = found.groups()
    local = (second or first).decode("ascii")
    return local, None if namespace is None else namespace[1:-1].decode(codec, "replace")


def _scan(head: bytes, codec: str, truncated: bool) -> Any:
    """The root's (local name, namespace), None, or _MORE when ``head`` is cut too soon."""
    if codec.startswith("utf-16"):
        head = head[:len(head) & ~1]
    text = head.decode(codec, errors="replace")
    more = _MORE if truncated else None
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if text.startswith("<?", pos):
            close = text.find("?>", pos + 2)
            pos = end if close < 0 else close + 2
        elif text.startswith("<!--", pos):
            close = text.find("-->", pos + 4)
            pos = end if close < 0 else close + 3
        elif text.startswith("<!DOCTYPE", pos):
            bracket, close = text.find("[", pos), text.find(">", pos)
            if 0 <= bracket < close:
                close = text.find("]", bracket)
                close = -1 if close < 0 else text.find(">", close)
            pos = end if close < 0 else close + 1
        elif text.startswith("<", pos):
            name = _NAME.match(text, pos)
            if name is None or (truncated and text.find(">", name.end()) < 0):
                return more if name is not None or end - pos < 64 else None
            prefix, local = (name.group(1), name.group(2)) if name.group(2) else (None,
                                                                                 name.group(1))
            namespace = None
            wanted = "xmlns" if prefix is None else f"xmlns:{prefix}"
            at = name.end()
            while True:
                attribute = _ATTRIBUTE.match(text, at)
                if attribute is None:
                    break
                if attribute.group(1) == wanted:
                    namespace = attribute.group(2)[1:-1]
                at = attribute.end()
            return local, namespace
        elif pos < end:
            return None
    return more


class XmlFormat(SingleFileFormat):
    """A single-file XML format recognised by its root element (local name and namespace)."""

    root: ClassVar[str]
    namespaces: ClassVar[tuple[str | None, ...]]
    """Namespace URIs the root may be in (``None``: no namespace)."""
    takes_bytes = True  # lxml parses bytes
    marker = (0, b"<\xef\xff\xfe\0 \t\r\n")
    """What an XML document starts with: markup, a byte-order mark, the NUL of a UTF-16
    ``<`` without one, or blanks (see :func:`_text_start`)."""

    def sniff(self, probe: Probe) -> bool:
        found = probe.memo(root_element)
        return found is not None and found[0] == self.root and found[1] in self.namespaces


# --------------------------------------------------------------------------- tree helpers


def local_name(element: Any) -> str:
    """An element's tag without its namespace."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def first(element: Any, tag: str) -> Any:
    """The first child with this full tag (``{uri}name``), or None: a loop over the few
    children is several times faster than ``find``, which goes through ElementPath."""
    if element is not None:
        for item in element:
            if item.tag == tag:
                return item
    return None


def child(element: Any, name: str) -> Any:
    """The first child element of this local name (in its parent's namespace), or None."""
    if element is None:
        return None
    tag = element.tag
    wanted = tag[:tag.index("}") + 1] + name if tag[:1] == "{" else name
    for item in element:  # inlined: this runs for every value a format reads
        if item.tag == wanted:
            return item
    return None


def children(element: Any, name: str) -> list[Any]:
    """Every child element of this local name (in its parent's namespace), in file order."""
    if element is None:
        return []
    tag = element.tag
    return list(element.iterchildren(tag[:tag.index("}") + 1] + name if tag[:1] == "{"
                                     else name))


def child_text(element: Any, *path: str) -> str | None:
    """Stripped text of the element at ``path`` below ``element`` (None: absent or empty)."""
    for name in path:
        element = child(element, name)
        if element is None:
            return None
    text = (element.text or "").strip()
    return text or None


def texts(element: Any) -> dict[str, str]:
    """Local name -> stripped text of every child element (the first of each name), in
    one pass: what a flat block of values (a MUSE ``LeadData``) is read through."""
    out: dict[str, str] = {}
    if element is None:
        return out
    for item in element:
        tag = item.tag
        if isinstance(tag, str):
            out.setdefault(tag.rpartition("}")[2], (item.text or "").strip())
    return out


MAX_NUMBER = 1e15
"""Largest magnitude :func:`parse_number` returns (a field beyond it is no number of an ECG)."""

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?")


def parse_number(text: str | None) -> int | float | None:
    """A plain decimal number of the file (``"144"``, ``"4.88"``), None if absent or not one.

    Integers stay ``int``; no ``inf``, ``nan`` or other spellings ``float()`` takes,
    and nothing beyond ``MAX_NUMBER`` in size, so arithmetic on the result never
    overflows a float.
    """
    if text is None:
        return None
    if text.isdigit() and text.isascii() and len(text) < 16:  # the common case, cheaply
        return int(text)
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text) if text.lstrip("+-").isdigit() and len(text) < 20 else float(text)
    return value if abs(value) <= MAX_NUMBER else None


def combine_date_time(date: dt.date | None, time: dt.time | None) -> dt.datetime | None:
    return None if date is None or time is None else dt.datetime.combine(date, time)


# --------------------------------------------------------------------------- shared readings


@dataclass(frozen=True, eq=False)
class RepresentativeBeats:
    """Median or representative beats of every lead, at their own rate and scale.

    One block for all leads (``digital[lead, sample]``) rather than one
    :class:`~ecgingest.Signal` per lead: a reading of the record, not a
    channel. ``physical = digital * scale[lead] + offset[lead]`` in ``units``.
    The same shape as SCP-ECG's ``ReferenceBeat``, with a scale per lead.
    """

    labels: tuple[str, ...]
    sample_rate: float
    digital: np.ndarray
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    units: str = "uV"
    kind: str = "median"
    """What the file calls them (``"median"``, ``"representative"``, ``"mean"`` ...)."""

    @property
    def physical(self) -> np.ndarray:
        """``digital * scale + offset`` per lead, as float64."""
        scale = np.asarray(self.scale, dtype=np.float64)[:, None]
        offset = np.asarray(self.offset, dtype=np.float64)[:, None]
        return self.digital * scale + offset

    def __len__(self) -> int:
        return int(self.digital.shape[1]) if self.digital.ndim == 2 else 0


def signal(label: str, rate: float, digital: np.ndarray, scale: float, offset: float,
           units: str) -> Signal:
    """A :class:`~ecgingest.Signal` through the decoders' fast constructor."""
    return cast(Signal, new_signal(label, rate, digital, scale, offset, units))


def narrowest(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``values`` as int16 when ``lo..hi`` fits, else int32 (both read-only later)."""
    if -32768 <= lo and hi <= 32767:
        return values if values.dtype == np.int16 else values.astype(np.int16)
    return values if values.dtype == np.int32 else values.astype(np.int32)
