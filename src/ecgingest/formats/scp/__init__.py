"""SCP-ECG (EN 1064 / ISO 11073-91064), versions 1.0, 1.3, 2.x and 3.0.

The plug-in: :data:`FORMAT` (an :class:`ScpFormat`). The modules follow the
file's structure: :mod:`.container` (record header, pointer table, CRCs),
:mod:`.huffman` (section 2), :mod:`.metadata` (section 1), :mod:`.sections`
(sections 3 to 11) and :mod:`.assemble` (the record assembled from them).
"""

from __future__ import annotations

from ...limits import DEFAULT_LIMITS
from ...record import Record, RecordInfo
from .._base import DecodeContext, Probe, SingleFileFormat
from .assemble import FORMAT_NAME, ReferenceBeat, decode_record, inspect_record
from .container import crc16, sniff
from .sections import LEAD_NAMES

__all__ = ["FORMAT", "ScpFormat", "decode", "sniff", "LEAD_NAMES", "crc16", "ReferenceBeat"]


def _context(ctx: DecodeContext) -> DecodeContext:
    # errors and the record's sources name the file even when only its name is known
    return ctx if ctx.path is not None else ctx.for_file(path=ctx.name)


class ScpFormat(SingleFileFormat):
    """SCP-ECG (EN 1064 / ISO 11073-91064), versions 1.0 to 3.0."""

    name = FORMAT_NAME
    marker = (8, b"\0")  # the low byte of section 0's id

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: bytes | bytearray | memoryview, ctx: DecodeContext) -> Record:
        return decode_record(data, _context(ctx))

    def inspect(self, data: bytes | bytearray | memoryview, ctx: DecodeContext) -> RecordInfo:
        return inspect_record(data, _context(ctx))


FORMAT = ScpFormat()



def decode(data: bytes | bytearray | memoryview, *, name: str = "upload",
           path: str | None = None, strict: bool = False) -> Record:
    """Decode one SCP-ECG file into a :class:`~ecgingest.Record` (default limits)."""
    return decode_record(data, DecodeContext(FORMAT_NAME, name=name,
                                             path=name if path is None else path,
                                             strict=strict, limits=DEFAULT_LIMITS))
