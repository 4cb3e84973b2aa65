"""ECG CSV: a small text format, and the file a new ecgingest format starts from.

Copy this file to ``src/ecgingest/formats/<name>.py``, rename the format and
replace the parsing; keep the shape. Everything a format needs comes from the
plug-in contract (``._base``), the errors, the record model and the limits;
a format never imports the pipeline (``ingest``, ``detect``, ``archive``,
``uploads``, ``many``, ``cli``). The documentation's test suite registers
this very file in a copy of the format registry and reads files through the
public API, so the template cannot drift from the contract.

The toy format (one header line, optional annotation lines, one line of
comma-separated integers per sample instant)::

    ECGCSV/1 rate=250 units=uV scale=0.5 leads=I,II
    @0.004 R peak
    10,-3
    12,-1

- header keys: ``rate`` (Hz, required), ``leads`` (required), ``units``
  (default empty), ``scale`` (physical units per stored integer, default 1);
- ``@<onset seconds> <text>`` lines are annotations;
- every other line holds one stored integer per lead.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CorruptDataError, HeaderError
from ..record import Annotation, Record, RecordInfo, Signal, SignalInfo
from ._base import (
    STATUS_BAD_VALUE,
    STATUS_OK,
    STATUS_TRUNCATED,
    DecodeContext,
    Probe,
    SingleFileFormat,
)

__all__ = ["FORMAT", "MAGIC"]

FORMAT_NAME = "ecg_csv"
MAGIC = b"ECGCSV/"
_VERSION = "1"
_KEYS = ("rate", "leads", "units", "scale")
_INT32 = (-(2**31), 2**31 - 1)


class _Header:
    """The header line, validated: what both ``decode`` and ``inspect`` need."""

    def __init__(self, data: bytes | memoryview, ctx: DecodeContext) -> None:
        text = bytes(data).decode("latin-1")
        first, _, self.body = text.partition("\n")
        magic, _, fields = first.rstrip("\r").partition(" ")
        if not magic.startswith(MAGIC.decode()):
            ctx.fail(HeaderError, "the file does not start with ECGCSV/", field="magic", offset=0)
        version = magic[len(MAGIC):]
        if version != _VERSION:
            ctx.fail(HeaderError, f"version {version!r} is not read (only {_VERSION})",
                     field="version", offset=len(MAGIC))
        values: dict[str, str] = {}
        offset = len(magic) + 1
        for item in fields.split():
            key, sep, value = item.partition("=")
            if not sep or not value:
                ctx.fail(HeaderError, f"{item!r} is not key=value", field=key, offset=offset)
            if key not in _KEYS:
                # a non-conformance we can read past: a warning, or an error when strict
                ctx.deviation(f"unknown header key {key!r} ignored", field=key, offset=offset)
            values[key] = value
            offset += len(item) + 1
        self.header_bytes = len(first) + 1
        self.rate = _number(values, "rate", ctx, positive=True)
        self.scale = _number(values, "scale", ctx, default=1.0)
        self.units = values.get("units", "")
        if "leads" not in values:
            ctx.fail(HeaderError, "the header names no leads", field="leads")
        self.leads = values["leads"].split(",")
        if len(set(self.leads)) != len(self.leads) or "" in self.leads:
            ctx.fail(HeaderError, f"lead names must be distinct and non-empty: "
                     f"{values['leads']!r}", field="leads")

    def lines(self) -> tuple[list[str], list[str]]:
        """(sample lines, annotation lines) of the body, blank lines dropped."""
        samples, notes = [], []
        for line in self.body.splitlines():
            if line.startswith("@"):
                notes.append(line)
            elif line.strip():
                samples.append(line)
        return samples, notes


def _number(values: dict[str, str], key: str, ctx: DecodeContext, *,
            positive: bool = False, default: float | None = None) -> float:
    if key not in values:
        if default is not None:
            return default
        ctx.fail(HeaderError, f"the header has no {key}", field=key)
    try:
        number = float(values[key])
    except ValueError:
        ctx.fail(HeaderError, f"{key} is not a number: {values[key]!r}", field=key)
    if not math.isfinite(number) or (positive and number <= 0):
        ctx.fail(HeaderError, f"{key} must be a finite{' positive' if positive else ''} "
                 f"number, got {number}", field=key)
    return number


def _fill_samples(lines: list[str], out: np.ndarray) -> int:
    """The byte work, written the way a kernel is: fill ``out`` and return a status.

    A real format does this in ``ext/<name>.pyx`` under ``with nogil`` and
    returns a code of ``ext/_status.pxd``; the caller turns it into a typed
    error with ``DecodeContext.check_status``. No exception is raised here.
    """
    leads = out.shape[0]
    for row, line in enumerate(lines):
        cells = line.split(",")
        if len(cells) < leads:
            return STATUS_TRUNCATED
        for lead in range(leads):
            try:
                value = int(cells[lead])
            except ValueError:
                return STATUS_BAD_VALUE
            if not _INT32[0] <= value <= _INT32[1]:
                return STATUS_BAD_VALUE
            out[lead, row] = value
    return STATUS_OK


def _annotations(lines: list[str], ctx: DecodeContext) -> list[Annotation]:
    # a count read from the file is checked against Limits before anything is built
    ctx.check_count(len(lines), "max_annotations", "annotations")
    notes = []
    for line in lines:
        onset, _, text = line[1:].partition(" ")
        try:
            seconds = float(onset)
        except ValueError:
            raise ctx.error(CorruptDataError, f"annotation onset {onset!r} is not a number",
                            field="annotation") from None
        notes.append(Annotation(seconds, None, text.strip()))
    return notes


class EcgCsvFormat(SingleFileFormat):
    """ECG CSV text files (the template format)."""

    name = FORMAT_NAME
    prefault = False  # read once front to back: let the mapping fault pages in as it goes

    def sniff(self, probe: Probe) -> bool:
        # the magic alone, so a damaged file still gets an ECG CSV error, not "unknown format"
        return probe.head(len(MAGIC)) == MAGIC

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        header = _Header(data, ctx)
        sample_lines, note_lines = header.lines()
        shape = (len(header.leads), len(sample_lines))
        # count the output against the upload's budget *before* allocating it
        ctx.reserve_output(shape[0] * shape[1] * 4, "samples")
        digital = np.empty(shape, dtype=np.int32)
        status = _fill_samples(sample_lines, digital)
        ctx.check_status(status, "sample lines", offset=header.header_bytes)
        signals = [Signal(label, header.rate, digital[i], scale=header.scale, offset=0.0,
                          units=header.units) for i, label in enumerate(header.leads)]
        return Record(ctx.name, FORMAT_NAME, f"ECG CSV {_VERSION}", signals,
                      annotations=_annotations(note_lines, ctx), warnings=ctx.warnings)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        # header facts without parsing a sample: what `ecgingest inspect` prints
        header = _Header(data, ctx)
        sample_lines, note_lines = header.lines()
        signals = tuple(SignalInfo(label, header.rate, len(sample_lines), header.units, "int32")
                        for label in header.leads)
        return RecordInfo(ctx.name, FORMAT_NAME, f"ECG CSV {_VERSION}", signals,
                          annotations=len(note_lines), warnings=tuple(ctx.warnings))


FORMAT = EcgCsvFormat()
"""The instance the registry lists (``formats/__init__.py``: one import, one line)."""
