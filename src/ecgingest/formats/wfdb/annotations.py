"""WFDB annotation files (``100.atr``): beat labels, rhythm changes and notes of a record.

An annotation file shares its record's name, with the annotator as extension
(``100.atr``, ``100.qrs``, ``ludb-ecg.i``). Two layouts exist:

- MIT format: a stream of 16-bit words, walked by the native kernel
  (``ecgingest._ext.wfdb_ann``) in one ``nogil`` pass;
- AHA format: 16-byte records beginning with a NUL byte (old databases),
  read with NumPy.

What the WFDB C library does is followed where wfdb-python differs: the
leading NOTE annotations at time 0 (subtype 0) are a table (symbol
definitions, ``## time resolution``), bracketed or not; a type-0 annotation
right after it is dropped (the writer's end-of-table mark), other type-0
annotations and later notes at time 0 are kept; aux text ends at its first
NUL; codes without a symbol read ``[42]``.

Sample numbers count ticks of :attr:`WfdbAnnotations.fs`: the file's own
time resolution when it declares one, else the record's frame rate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..._ext import wfdb_ann as _kernel
from ...errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    HeaderError,
    LimitExceededError,
    TruncatedError,
)
from ...limits import Limits
from ...record import Annotation, Record, RecordInfo, new_annotations
from .._base import STATUS_OK, DecodeContext, PoolFile
from .header import MAX_HEADER_BYTES, WfdbHeader, parse_header

if TYPE_CHECKING:
    from .signals import RecordFiles

__all__ = [
    "WfdbAnnotations",
    "read_annotations",
    "decode_annotations",
    "STANDARD_SYMBOLS",
    "KNOWN_ANNOTATORS",
    "annotation_index",
    "annotation_files",
    "attach_annotations",
    "looks_like_annotations",
]

STANDARD_SYMBOLS: tuple[str, ...] = (
    " ", "N", "L", "R", "a", "V", "F", "J", "A", "S",
    "E", "j", "/", "Q", "~", "[15]", "|", "[17]", "s", "T",
    "*", "D", '"', "=", "p", "B", "^", "t", "+", "u",
    "?", "!", "[", "]", "e", "n", "@", "x", "f", "(",
    ")", "r", "[42]", "[43]", "[44]", "[45]", "[46]", "[47]", "[48]", "[49]",
)
"""The WFDB C library's mnemonic of each code 0..49 (``annstr``); codes without a
standard symbol read ``[N]``, as the C library prints them."""

MAX_CODE = 49
NOTE = 22

KNOWN_ANNOTATORS = frozenset({
    "atr", "ann", "ari", "all", "apn", "arousal", "alarms", "ecg", "ecgpuwave", "edr",
    "event", "gqrs", "gqrsh", "hrv", "jqrs", "man", "marker", "mrg", "pu", "pu0", "pu1",
    "pwave", "q1c", "q2c", "qrs", "qrsc", "qt1", "qt2", "sqrs", "sqrs125", "st", "sta",
    "stb", "stc", "stf", "trigger", "wabp", "wqrs",
})
"""Annotator names of PhysioNet databases and WFDB tools. A file ``<record>.<one of
these>`` is taken as an annotation file even when damaged (the record gets a
warning); any other extension must read as a complete, clean annotation file."""

_NOT_ANNOTATORS = frozenset({"hea", "dat"})
_ANNOTATOR_NAME = re.compile(r"^[A-Za-z0-9_~-]+$")
_AHA_CODES = {ord("E"): 10, ord("F"): 6, ord("N"): 1, ord("O"): 22, ord("P"): 12,
              ord("Q"): 13, ord("R"): 41, ord("U"): 14, ord("V"): 5}
"""AHA annotation letters and their MIT codes (WFDB ``ammap``); the letters that
mark a file as AHA format ('[' and ']' map too, but cannot start one)."""
_AHA_MORE = {ord("["): 32, ord("]"): 33}
_AHA_RECORD = 16
_AHA_END = 0xFF
_RESOLUTION = "## time resolution: "
_NUMBER = re.compile(r"\s*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))",
                     re.I)
_MAX_FILE_BYTES = 1 << 31
_MAX_UNNAMED_BYTES = 64 << 20
"""An unknown extension is checked for being an annotation file up to this size
(32 million annotation words; PhysioNet's largest annotation files are far smaller)."""


@dataclass(frozen=True, eq=False)
class WfdbAnnotations:
    """The annotations of one annotation file, column by column (wfdb's ``rdann`` fields).

    Every sequence has one item per annotation, in file order. ``sample``
    counts ticks of ``fs`` from the record's start (``onset`` gives seconds).
    Arrays are read-only.
    """

    record_name: str | None
    """The record the file belongs to (the file name before the extension)."""
    annotator: str | None
    """The annotator name: the file extension (``atr``, ``qrs``, ...)."""
    fs: float | None
    """Ticks per second of ``sample``: the file's time resolution, else the record's
    frame rate; None when neither is known (a lone file without its header)."""
    sample: np.ndarray
    """Time of each annotation in ticks of ``fs`` (int64)."""
    symbol: tuple[str, ...]
    """Mnemonic of each annotation's code (the file's own definitions applied)."""
    code: np.ndarray
    """The annotation code 0..49 (uint8; wfdb's ``label_store``)."""
    subtype: np.ndarray
    """int8; for noise (``~``) a signal-quality bit mask, -1 unreadable."""
    chan: np.ndarray
    """uint8; the signal the annotation refers to."""
    num: np.ndarray
    """int8; a free number (wave type of delineators, annotator number)."""
    aux_note: tuple[str, ...]
    """Aux text (rhythm ``(AFIB``, notes, URLs), ``""`` when none; it ends at a NUL."""
    format_detail: str = "MIT"
    """``"MIT"`` or ``"AHA"``: the file's layout."""
    time_resolution: float | None = None
    """The ``## time resolution`` the file declares (None: none)."""
    definitions: Mapping[int, tuple[str, str | None]] = field(default_factory=dict)
    """Codes the file (re)defines: code -> (symbol, description)."""
    warnings: tuple[str, ...] = ()
    """Deviations tolerated while reading (empty for a clean file)."""

    def __len__(self) -> int:
        return int(self.sample.shape[0])

    @property
    def onset(self) -> np.ndarray | None:
        """Seconds from the record's start (float64), or None when ``fs`` is unknown."""
        if self.fs is None:
            return None
        return self.sample / self.fs


# --------------------------------------------------------------------------- layout


class _Layout(NamedTuple):
    """What a file is before decoding: enough to classify it and bound its arrays."""

    aha: bool
    complete: bool
    """The end mark was reached (the data did not run out first)."""
    size: int
    """Annotations present (a partial last one included, as the C library returns it)."""
    bad_codes: int
    """Annotations whose code is above 49 (MIT) or an unknown letter (AHA)."""
    trailing: int
    """Bytes after the end mark that are not padding."""
    partial: int
    """AHA: bytes of a cut-off last record (dropped)."""

    @property
    def clean(self) -> bool:
        return self.complete and not self.bad_codes and not self.trailing


def _is_aha(data: memoryview | bytes) -> bool:
    # the C library's test (annopen): a NUL byte, then an AHA letter other than '[' or ']'
    return len(data) >= 2 and data[0] == 0 and data[1] in _AHA_CODES


def _layout(data: memoryview | bytes) -> _Layout:
    """The file's layout. The C library takes a file for AHA format when it starts
    with a NUL byte and an AHA letter; an MIT file whose first annotation falls on a
    multiple of 256 ticks can start that way too, so one that reads as a clean MIT
    file and not as a clean AHA file is read as MIT."""
    if _is_aha(data):
        aha = _aha_layout(data)
        if not aha.clean:
            mit = _mit_layout(data)
            if mit.clean:
                return mit
        return aha
    return _mit_layout(data)


def _mit_layout(data: memoryview | bytes) -> _Layout:
    status, count, stop, bad = _kernel.scan(data)
    complete = status == STATUS_OK
    return _Layout(False, complete, count, bad, len(data) - stop if complete else 0, 0)


def _aha_layout(data: memoryview | bytes) -> _Layout:
    n = len(data) // _AHA_RECORD
    firsts = np.frombuffer(data, np.uint8, count=n * _AHA_RECORD)[::_AHA_RECORD]
    ends = np.flatnonzero(firsts == _AHA_END)
    count = int(ends[0]) if ends.size else n
    letters = np.frombuffer(data, np.uint8, count=count * _AHA_RECORD)[1::_AHA_RECORD]
    known = np.zeros(256, dtype=bool)
    known[list(_AHA_CODES) + list(_AHA_MORE)] = True
    bad = int(np.count_nonzero(~known[letters]))
    tail = np.frombuffer(data, np.uint8)[count * _AHA_RECORD:]
    trailing = int(np.count_nonzero(tail != _AHA_END)) if ends.size else 0
    partial = len(data) - n * _AHA_RECORD if not ends.size else 0
    return _Layout(True, bool(ends.size), count, bad, trailing, partial)


def looks_like_annotations(data: memoryview | bytes) -> bool:
    """True when the bytes read as a complete, clean annotation file (end mark reached,
    every code defined, nothing after the end): how an extension outside
    :data:`KNOWN_ANNOTATORS` is recognised."""
    return _layout(data).clean


# --------------------------------------------------------------------------- decoding


class _Columns(NamedTuple):
    sample: np.ndarray
    code: np.ndarray
    subtype: np.ndarray
    chan: np.ndarray
    num: np.ndarray
    aux: list[bytes | None]


def _mit_columns(data: memoryview | bytes, count: int) -> _Columns:
    sample = np.empty(count, np.int64)
    code = np.empty(count, np.uint8)
    subtype = np.empty(count, np.int8)
    chan = np.empty(count, np.uint8)
    num = np.empty(count, np.int8)
    aux_start = np.empty(count, np.int64)
    aux_len = np.empty(count, np.int16)
    _kernel.decode(data, sample, code, subtype, chan, num, aux_start, aux_len)
    aux: list[bytes | None] = [None] * count
    with_aux = np.flatnonzero(aux_len >= 0)
    if with_aux.size:
        view = memoryview(data)
        for i, start, length in zip(with_aux.tolist(), aux_start[with_aux].tolist(),
                                    aux_len[with_aux].tolist()):
            aux[i] = bytes(view[start:start + length])
    return _Columns(sample, code, subtype, chan, num, aux)


def _aha_columns(data: memoryview | bytes, count: int) -> _Columns:
    rec = np.frombuffer(data, np.uint8, count=count * _AHA_RECORD).reshape(count, _AHA_RECORD)
    words = rec[:, 2:6].astype(np.uint32)
    # time: a 32-bit value, high 16-bit word first, each word little-endian
    time = ((words[:, 1] << 24) | (words[:, 0] << 16) | (words[:, 3] << 8) | words[:, 2])
    sample = time.view(np.int32).astype(np.int64)
    lut = np.zeros(256, np.uint8)
    for letter, mit in {**_AHA_CODES, **_AHA_MORE}.items():
        lut[letter] = mit
    code = lut[rec[:, 1]]
    subtype = rec[:, 8].view(np.int8).copy()
    subtype[(rec[:, 1] == ord("U")) & (subtype == 0)] = -1  # unreadable noise
    chan = rec[:, 9].copy()
    num = np.zeros(count, np.int8)
    aux: list[bytes | None] = [None] * count
    for i in np.flatnonzero(rec[:, 10] != 0).tolist():
        aux[i] = rec[i, 10:16].tobytes()
    return _Columns(sample, code, subtype, chan, num, aux)


def _text(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]  # a C string: it ends at the first NUL
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _definition(line: str) -> tuple[int, str, str | None] | None:
    """``"<code> <symbol> <description>"`` as the C library parses it (``get_ann_table``)."""
    m = re.match(r"[ \t]*([+-]?\d+)[^ \t]*[ \t]*([^ \t]*)(.*)", line, re.S)
    if m is None or not m.group(2):
        return None
    code = int(m.group(1))
    if not 0 <= code <= MAX_CODE:
        return None
    rest = m.group(3)
    return code, m.group(2), rest[1:] if rest else None


def _resolution(text: str, problems: list[tuple[type[EcgIngestError], str]]) -> float | None:
    m = _NUMBER.match(text[len(_RESOLUTION):])
    value = float(m.group(1)) if m else None
    if value is None or not (math.isfinite(value) and value > 0):
        problems.append((HeaderError, f"time resolution {text[len(_RESOLUTION):]!r} is not a "
                         "positive number; ignored"))
        return None
    return value


def _decode(data: memoryview | bytes, layout: _Layout, what: str
            ) -> tuple[_Columns, int, float | None, dict[int, tuple[str, str | None]],
                       list[tuple[type[EcgIngestError], str]]]:
    """Columns without the leading table, the table's size, its time resolution and
    definitions, and the deviations found (not raised)."""
    problems: list[tuple[type[EcgIngestError], str]] = []
    cols = (_aha_columns if layout.aha else _mit_columns)(data, layout.size)
    if not layout.complete:
        if layout.partial:
            problems.append((TruncatedError, f"{what} ends inside an annotation "
                             f"({layout.partial} bytes of a 16-byte record)"))
        else:
            problems.append((TruncatedError, f"{what} ends before its end mark (cut short); "
                             f"the {layout.size} annotations before the cut were kept"))
    if layout.bad_codes:
        problems.append((CorruptDataError, f"{what}: {layout.bad_codes} annotations have a "
                         "code that is not an annotation type (kept with symbol [code])"))
    # the leading NOTEs at time 0 with subtype 0 are a table, not annotations
    resolution: float | None = None
    definitions: dict[int, tuple[str, str | None]] = {}
    sample, code, subtype = cols.sample, cols.code, cols.subtype
    table = 0
    while (table < layout.size and sample[table] == 0 and code[table] == NOTE
           and subtype[table] == 0):
        raw = cols.aux[table]
        table += 1
        if not raw:
            continue
        text = _text(raw)
        if text.startswith("#"):
            if text.startswith(_RESOLUTION):
                resolution = _resolution(text, problems)
            continue
        found = _definition(text)
        if found is not None:
            definitions[found[0]] = (found[1], found[2])
    if table < layout.size and code[table] == 0:
        table += 1  # the C library loses a type-0 annotation read right after the table
    return cols, table, resolution, definitions, problems


def _build(cols: _Columns, skip: int, resolution: float | None,
           definitions: Mapping[int, tuple[str, str | None]], *, record_name: str | None,
           annotator: str | None, record_fs: float | None, aha: bool,
           warnings: Sequence[str]) -> WfdbAnnotations:
    symbols = list(STANDARD_SYMBOLS) + [f"[{c}]" for c in range(MAX_CODE + 1, 256)]
    for c, (mnemonic, _) in definitions.items():
        symbols[c] = mnemonic
    code = cols.code[skip:]
    lut = np.array(symbols, dtype=object)
    aux = cols.aux[skip:]
    arrays = [cols.sample[skip:], code, cols.subtype[skip:], cols.chan[skip:],
              cols.num[skip:]]
    for a in arrays:
        a.flags.writeable = False
    return WfdbAnnotations(
        record_name=record_name, annotator=annotator,
        fs=resolution if resolution is not None else record_fs,
        sample=arrays[0], symbol=tuple(lut[code].tolist()), code=arrays[1],
        subtype=arrays[2], chan=arrays[3], num=arrays[4],
        aux_note=tuple("" if raw is None else _text(raw) for raw in aux),
        format_detail="AHA" if aha else "MIT", time_resolution=resolution,
        definitions=dict(definitions), warnings=tuple(warnings))


def decode_annotations(data: memoryview | bytes, ctx: DecodeContext, *,
                       record_name: str | None = None, annotator: str | None = None,
                       record_fs: float | None = None) -> WfdbAnnotations:
    """Decode one annotation file; deviations go through ``ctx`` (strict: a typed error).

    The annotation count is checked against ``Limits.max_annotations`` before
    any array is allocated.
    """
    what = f"annotation file {_file_name(record_name, annotator)}"
    layout = _layout(data)
    ctx.check_count(layout.size, "max_annotations", what)
    cols, skip, resolution, definitions, problems = _decode(data, layout, what)
    start = len(ctx.warnings)
    for cls, message in problems:
        ctx.deviation(message if message.startswith(what) else f"{what}: {message}", cls=cls)
    return _build(cols, skip, resolution, definitions, record_name=record_name,
                  annotator=annotator, record_fs=record_fs, aha=layout.aha,
                  warnings=ctx.warnings[start:])


def _file_name(record_name: str | None, annotator: str | None) -> str:
    if record_name is None and annotator is None:
        return "(bytes)"
    return f"{record_name or ''}.{annotator or ''}"


# --------------------------------------------------------------------------- public reader

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def read_annotations(source: Source, *, strict: bool = False,
                     limits: Limits | None = None) -> WfdbAnnotations:
    """Read one WFDB annotation file (a path, bytes or a binary file object).

    For a path, the record's header beside it (``100.hea`` for ``100.atr``)
    gives the rate, unless the file declares its own time resolution; the
    record and annotator names come from the file name. Deviations (a file cut
    short, undefined codes) are kept in ``warnings`` and issued as one
    :class:`~ecgingest.errors.EcgWarning`; ``strict=True`` raises them as
    typed errors instead.

    >>> ann = ecgingest.read_annotations("100.atr")                  # doctest: +SKIP
    >>> ann.sample[:3], ann.symbol[:3], ann.fs                       # doctest: +SKIP
    (array([ 18,  77, 370]), ('+', 'N', 'N'), 360.0)
    """
    limits = Limits() if limits is None else limits
    record_name: str | None = None
    annotator: str | None = None
    record_fs: float | None = None
    path: str | None = None
    header_problem: str | None = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            _check_size(size, limits, path)
            data: bytes | memoryview = fh.read()
        record_name, annotator = _split_name(os.path.basename(path))
        if record_name is not None:
            found = _header_beside(os.path.join(os.path.dirname(path), record_name + ".hea"),
                                   strict, limits)
            if isinstance(found, str):
                header_problem = found
            elif found is not None:
                record_fs = found.frame_frequency
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source).cast("B") if not isinstance(source, bytes) else source
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("read_annotations needs a binary file object (opened with 'rb')")
        _check_size(len(data), limits, None)
        name = getattr(source, "name", None)
        if isinstance(name, str):
            record_name, annotator = _split_name(os.path.basename(name))
    else:
        raise TypeError(f"read_annotations reads a path, bytes or a binary file object, not "
                        f"{type(source).__name__}")
    ctx = DecodeContext("wfdb", name=os.path.basename(path) if path else "upload", path=path,
                        strict=strict, limits=limits)
    if header_problem is not None:
        ctx.deviation(header_problem)
    result = decode_annotations(data, ctx, record_name=record_name, annotator=annotator,
                                record_fs=record_fs)
    result = dataclasses.replace(result, warnings=tuple(ctx.warnings))  # the header's too
    if result.warnings:
        warnings.warn(f"{path or _file_name(record_name, annotator)}: "
                      f"{'; '.join(result.warnings)}", EcgWarning, stacklevel=2)
    return result


def _check_size(size: int, limits: Limits, path: str | None) -> None:
    if size > min(limits.max_entry_size, _MAX_FILE_BYTES):
        raise LimitExceededError(
            f"annotation file of {size} bytes exceeds Limits.max_entry_size",
            limit="max_entry_size", value=limits.max_entry_size, format="wfdb", path=path)


def _split_name(name: str) -> tuple[str | None, str | None]:
    record, dot, ext = name.rpartition(".")
    if not dot or not record:
        return (name or None), None
    return record, ext


def _header_beside(path: str, strict: bool, limits: Limits) -> WfdbHeader | str | None:
    """The record header next to an annotation file, None when there is none, or why
    it could not be used (a deviation: the rate stays unknown)."""
    if not os.path.isfile(path):
        return None
    hctx = DecodeContext("wfdb", path=path, strict=strict, limits=limits)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_HEADER_BYTES + 1)
        if len(data) > MAX_HEADER_BYTES:
            return f"header {os.path.basename(path)!r} is implausibly large; rate unknown"
        return parse_header(data, hctx)
    except EcgIngestError as exc:
        if strict:
            raise
        return f"header {os.path.basename(path)!r} beside it is unreadable ({exc.message}); " \
               "rate unknown"


# --------------------------------------------------------------------------- records


def annotation_index(pool: Mapping[str, PoolFile]) -> dict[str, list[str]]:
    """The pool's possible annotation files by record name: ``<record>.<annotator>``
    (letters, digits, ``_``, ``-``, ``~``), not ``.hea`` or ``.dat``. Built once per
    pool, so a directory of many records costs one pass over its names."""
    index: dict[str, list[str]] = {}
    for name in sorted(pool):
        stem, dot, ext = name.rpartition(".")
        if dot and stem and _ANNOTATOR_NAME.match(ext) and ext.lower() not in _NOT_ANNOTATORS:
            index.setdefault(stem, []).append(name)
    return index


def annotation_files(hdr: WfdbHeader, files: RecordFiles, candidates: Sequence[str]
                     ) -> list[str]:
    """The annotation files of a record among ``candidates`` (its entry of
    :func:`annotation_index`): those it does not read as signal files; a known
    annotator name is enough, any other must read as a clean annotation file.
    """
    if not candidates:  # most records: no set of the record's files built for nothing
        return []
    taken = set(files.used) | {s.file_name for s in hdr.signals}
    found = []
    for name in candidates:
        if name in taken:
            continue
        entry = files.pool[name]
        if name.rpartition(".")[2].lower() in KNOWN_ANNOTATORS:
            found.append(name)
            continue
        if entry.size > _MAX_UNNAMED_BYTES:  # not worth reading to find out
            continue
        with entry.view(prefault=False) as data:
            if _layout(data).clean:
                found.append(name)
    return found


def claim_annotation_files(hdr: WfdbHeader, files: RecordFiles, candidates: Sequence[str]
                           ) -> None:
    """Count the record's annotation files as its files (a failed record's error names
    them; they are not reported as unmatched)."""
    try:
        for name in annotation_files(hdr, files, candidates):
            files.use(name)
    except EcgIngestError:
        pass


def attach_annotations(record: Record | RecordInfo, anchor: str, hdr: WfdbHeader,
                       files: RecordFiles, candidates: Sequence[str]) -> Record | RecordInfo:
    """The record with its annotation files read: ``annotations`` (onsets in seconds,
    text = symbol and aux) and ``extras["annotators"]`` (per annotator, the columns)."""
    found = annotation_files(hdr, files, candidates)
    if not found:
        return record
    stem = anchor[:-4]
    per_annotator: dict[str, WfdbAnnotations] = {}
    total = 0
    for name in found:
        entry = files.pool[name]
        files.use(name)
        actx = files.context(entry)
        with entry.view() as data:
            ann = decode_annotations(data, actx, record_name=stem,
                                     annotator=name[len(stem) + 1:],
                                     record_fs=hdr.frame_frequency)
        total += len(ann)
        files.ctx.check_count(total, "max_annotations",
                              f"annotations of record {hdr.record_name!r}")
        per_annotator[ann.annotator or name] = ann
    if isinstance(record, RecordInfo):
        return record.replace(annotations=record.annotations + total,
                              warnings=tuple(files.ctx.warnings))
    merged = _merged(per_annotator.values())
    return record.replace(annotations=list(record.annotations) + merged,
                          extras={**record.extras, "annotators": per_annotator})


def _merged(annotators: Sequence[WfdbAnnotations] | Any) -> list[Annotation]:
    """Every annotator's annotations as :class:`Annotation`, ordered by onset (stable:
    annotators in name order at equal onsets)."""
    onsets: list[np.ndarray] = []
    texts: list[str] = []
    for ann in annotators:
        assert ann.fs is not None
        onsets.append(ann.sample / ann.fs)
        texts.extend(s if not a else f"{s} {a}" for s, a in zip(ann.symbol, ann.aux_note))
    if not texts:
        return []
    onset = np.concatenate(onsets)
    order = np.argsort(onset, kind="stable")
    return new_annotations(onset[order].tolist(), [texts[i] for i in order.tolist()])
