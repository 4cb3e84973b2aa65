"""Byte-level helpers every section parser shares: bounds checks and texts."""

from __future__ import annotations

from typing import NoReturn, Union

from ...errors import TruncatedError
from .._base import DecodeContext

__all__ = ["ByteData", "byte_data", "span", "need", "need_failed", "u16", "Texts",
           "LANGUAGE_CODECS", "new_fields"]

ByteData = Union[bytes, memoryview]

new_fields = tuple.__new__
"""``new_fields(Cls, (a, b))`` is the NamedTuple ``Cls(a, b)`` (every field
given), made without the Python-level ``__new__`` NamedTuple generates: a
read builds a dozen of them with the GIL held, a Python frame each."""
"""A record's bytes as the parsers read them: ``bytes``, or a read-only 1-D byte
view (an upload held in memory, a mapped file) read in place."""


def byte_data(data: bytes | bytearray | memoryview) -> ByteData:
    """``data`` read in place when it is ``bytes`` or a read-only contiguous byte
    view (no copy of the record, which would hold the GIL for a pass over all
    of it), else a ``bytes`` copy (a mutable buffer could change under the
    kernels)."""
    if type(data) is bytes:
        return data
    if isinstance(data, memoryview) and data.readonly and data.ndim == 1 \
            and data.format == "B" and data.c_contiguous:
        return data
    return bytes(data)


def span(data: ByteData, start: int, stop: int) -> bytes:
    """``data[start:stop]`` as ``bytes`` (kept by the record, so never a view)."""
    return bytes(data[start:stop])

LANGUAGE_CODECS: dict[int, str] = {
    0x00: "latin-1",  # "ASCII only"; bytes >= 0x80 read as Latin-1 rather than failing
    0x01: "latin-1", 0x03: "iso8859-2", 0x0B: "iso8859-4", 0x13: "iso8859-5",
    0x1B: "iso8859-6", 0x23: "iso8859-7", 0x2B: "iso8859-8", 0x33: "iso8859-11",
    0x3B: "iso8859-15", 0x07: "utf-8", 0x0F: "shift_jis", 0x17: "iso2022_jp",
    0x1F: "euc_jp", 0x27: "gb2312", 0x2F: "euc_kr",
}
"""Section 1 tag 14/15 byte 16 (language support code) -> Python codec."""


def u16(b: ByteData, o: int) -> int:
    return b[o] | (b[o + 1] << 8)


def need(ctx: DecodeContext, data: ByteData, offset: int, size: int, end: int, what: str) -> None:
    """A field of ``size`` bytes at ``offset`` lies inside its section and the file."""
    if offset < 0 or offset + size > end or offset + size > len(data):
        need_failed(ctx, offset, size, what)


def need_failed(ctx: DecodeContext, offset: int, size: int, what: str) -> NoReturn:
    """The error of a field of ``size`` bytes at ``offset`` that is not all present."""
    ctx.fail(TruncatedError, f"{what} needs {size} bytes at byte {offset} but its section "
             "or the file ends before that; the file is cut or corrupt", offset=offset,
             field=what)


class Texts:
    """The record's text fields in the encoding section 1 declares.

    Bytes that do not decode are replaced, and the record says so.
    """

    __slots__ = ("ctx", "codec")

    def __init__(self, ctx: DecodeContext, codec: str = "latin-1") -> None:
        self.ctx = ctx
        self.codec = codec

    @property
    def infallible(self) -> bool:
        """Every byte string decodes (Latin-1), so no text read with it can warn."""
        return self.codec == "latin-1"

    def __call__(self, raw: bytes | str) -> str:
        """A string field: up to its first NUL (a ``str`` is a field the kernel
        found ASCII and cut at its NUL already)."""
        if isinstance(raw, str):
            return raw
        raw = raw.split(b"\0", 1)[0]
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.ctx.warn(f"text {raw[:20]!r} is not valid {self.codec}; undecodable bytes "
                          "replaced")
            return raw.decode(self.codec, errors="replace")
