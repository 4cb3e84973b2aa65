"""The plug-in contract every format implements, and nothing else of the pipeline.

A format module imports this module (and ``errors``, ``record``, ``limits``),
never the pipeline (``ingest``, ``detect``, ``archive``, ``uploads``, ``many``,
``cli``). Two kinds of format exist:

- :class:`SingleFileFormat`: one file is one record (EDF, SCP-ECG, ...). The
  pipeline shows it a :class:`Probe` (name, size, a bounded byte prefix) and,
  when it claims the file, hands it the bytes and a :class:`DecodeContext`.
- :class:`MultiFileFormat`: a record is built from several files of one
  directory (WFDB: a header plus signal files). The pipeline collects the
  files nothing single-file claimed, per directory, and hands the format the
  directory's files (:class:`PoolFile`) with the names that anchor a record.

:class:`DecodeContext` owns what every decoder needs the same way: warnings,
strict mode, limits, the decoded-output budget of the upload and the one
mapping from a native kernel's status to a typed error.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol

from ..errors import (
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    LimitExceededError,
    MissingDependencyError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ..limits import Limits
from ..record import Record, RecordInfo

if TYPE_CHECKING:
    from .._memory import Arena

__all__ = [
    "PROBE_BYTES",
    "Probe",
    "PoolFile",
    "DecodeContext",
    "OutputBudget",
    "SingleFileFormat",
    "MultiFileFormat",
    "GroupOutcome",
    "Format",
    "STATUS_OK",
    "STATUS_TRUNCATED",
    "STATUS_BAD_VALUE",
    "STATUS_OVERFLOW",
    "STATUS_BAD_CODE",
    "STATUS_UNSUPPORTED",
    "require",
    "NotARecord",
]

PROBE_BYTES = 64 * 1024
"""Bytes of a file that content detection may look at (never more)."""


class Probe:
    """What a sniffer sees of a file: its base name, its size and a bounded prefix.

    ``head(n)`` reads lazily and at most :data:`PROBE_BYTES`, so a sniffer that
    decides on 4 bytes costs 4 bytes, whatever the file holds.
    """

    __slots__ = ("name", "size", "_read_head")

    def __init__(self, name: str, size: int, read_head: Callable[[int], bytes]) -> None:
        self.name = name
        self.size = size
        self._read_head = read_head

    @classmethod
    def of_bytes(cls, data: bytes | bytearray | memoryview, name: str = "upload") -> Probe:
        """A probe of bytes in memory (tests, and formats that sniff nested data)."""
        return cls(name, len(data), lambda n: bytes(data[:n]))

    def head(self, n: int = PROBE_BYTES) -> bytes:
        """The first ``min(n, PROBE_BYTES)`` bytes (fewer when the file is shorter)."""
        return self._read_head(min(n, PROBE_BYTES))


class PoolFile(Protocol):
    """One file of a directory pool, as a multi-file format reads it."""

    @property
    def name(self) -> str:
        """Base name within the directory."""
        ...

    @property
    def path(self) -> str:
        """Path within the upload (what errors and ``Record.sources`` name)."""
        ...

    @property
    def size(self) -> int: ...

    def head(self, n: int = PROBE_BYTES) -> bytes:
        """The first ``n`` bytes; reads only those for a file on disk."""
        ...

    def view(self, *, prefault: bool = True) -> contextlib.AbstractContextManager[memoryview]:
        """All the bytes, without a copy where possible (a file on disk is mapped)."""
        ...


# --------------------------------------------------------------------------- kernel statuses

# The values of ext/_status.pxd's KernelStatus, which every Cython kernel returns.
STATUS_OK = 0
STATUS_TRUNCATED = -1
STATUS_BAD_VALUE = -2
STATUS_OVERFLOW = -3
STATUS_BAD_CODE = -4
STATUS_UNSUPPORTED = -5

_STATUS_ERRORS: dict[int, tuple[type[EcgIngestError], str]] = {
    STATUS_TRUNCATED: (TruncatedError, "the data ends before the values it announces"),
    STATUS_BAD_VALUE: (CorruptDataError, "a value is out of its allowed range"),
    STATUS_OVERFLOW: (CorruptDataError, "decoded values overflow their integer type"),
    STATUS_BAD_CODE: (CorruptDataError, "a code of the compressed data is invalid"),
    STATUS_UNSUPPORTED: (UnsupportedFeatureError, "the data uses an encoding that is not "
                                                  "supported"),
}
"""The one table from a kernel status to a typed error (STYLE: one place)."""


# --------------------------------------------------------------------------- decoded output


class OutputBudget:
    """Decoded bytes one upload may produce (``Limits.max_decoded_size``).

    Shared by every record of an upload: a tiny upload whose headers make
    many records reuse one signal file still stops at the bound.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, nbytes: int, what: str, *, format: str | None = None,
                path: str | None = None) -> None:
        if nbytes < 0:
            raise CorruptDataError(f"{what}: negative size {nbytes}", format=format, path=path)
        self.used += nbytes
        if self.used > self.limit:
            raise LimitExceededError(
                f"{what} would make the upload decode to more than {self.limit} bytes; raise "
                f"Limits.max_decoded_size to read it", limit="max_decoded_size",
                value=self.limit, format=format, path=path)


class DecodeContext:
    """Per-file decoding state: where errors happen, what was tolerated, what is allowed.

    Formats raise through :meth:`error` (context filled in), tolerate through
    :meth:`deviation` (an error in strict mode, a warning otherwise) and turn
    kernel statuses into errors through :meth:`check_status`.
    """

    def __init__(self, format: str, *, name: str = "upload", path: str | None = None,
                 strict: bool = False, limits: Limits | None = None,
                 budget: OutputBudget | None = None, arena: Arena | None = None) -> None:
        self.format = format
        self.name = name
        self.path = path
        self.strict = strict
        self.limits = limits if limits is not None else Limits()
        self.budget = budget if budget is not None else OutputBudget(
            self.limits.max_decoded_size)
        self.arena = arena
        self.warnings: list[str] = []

    def for_file(self, *, format: str | None = None, name: str | None = None,
                 path: str | None = None) -> DecodeContext:
        """A context for another file of the same upload: same mode, limits and budget."""
        return DecodeContext(format or self.format, name=self.name if name is None else name,
                             path=path if path is not None else self.path, strict=self.strict,
                             limits=self.limits, budget=self.budget, arena=self.arena)

    # ----------------------------------------------------------------- errors and warnings

    def error(self, cls: type[EcgIngestError], message: str, **context: Any) -> EcgIngestError:
        """An error of this file (format and path filled in); the caller raises it."""
        context.setdefault("format", self.format)
        context.setdefault("path", self.path)
        return cls(message, **context)

    def fail(self, cls: type[EcgIngestError], message: str, **context: Any) -> NoReturn:
        raise self.error(cls, message, **context)

    def warn(self, message: str) -> None:
        """A tolerated oddity that even a strict read accepts (listed on the record)."""
        self.warnings.append(message)

    def deviation(self, message: str, *, cls: type[EcgIngestError] = HeaderError,
                  **context: Any) -> None:
        """A non-conformance: an error with ``strict``, else a warning on the record."""
        if self.strict:
            raise self.error(cls, message + " (strict mode)", **context)
        self.warnings.append(message)

    def check_status(self, status: int, what: str, **context: Any) -> None:
        """Raise the typed error for a kernel's non-zero status (no-op for OK).

        ``what`` names the data the kernel decoded (``"signal file 100.dat"``);
        the user never sees a bare status number.
        """
        if status == STATUS_OK:
            return
        cls, text = _STATUS_ERRORS.get(
            status, (CorruptDataError, "the data could not be decoded"))
        raise self.error(cls, f"{what}: {text}", **context)

    # ----------------------------------------------------------------- resources

    def reserve_output(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` of decoded output against the upload's bound, before allocating."""
        self.budget.reserve(int(nbytes), what, format=self.format, path=self.path)

    def check_count(self, count: int, limit_name: str, what: str) -> None:
        """A count read from the file (annotations, segments) against a ``Limits`` bound."""
        bound = getattr(self.limits, limit_name)
        if count > bound:
            raise LimitExceededError(
                f"{what}: {count} is more than Limits.{limit_name} ({bound}); raise it to "
                f"read this file", limit=limit_name, value=bound, format=self.format,
                path=self.path)


class NotARecord(Exception):
    """Raised by a decoder for a file of its format that holds no record (a DICOM image
    without waveforms): the pipeline reports the file as skipped, with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require(module: str, *, format: str, extra: str) -> Any:
    """Import an optional dependency a format needs, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading {format} needs the {module!r} package: pip install 'ecgingest[{extra}]'",
            format=format, extra=extra) from exc


# --------------------------------------------------------------------------- the two kinds


class SingleFileFormat(ABC):
    """A format whose every file is one record, recognised by its content."""

    name: ClassVar[str]
    """The format key (``Record.format`` of what it decodes, unless a variant)."""
    prefault: ClassVar[bool] = True
    """Map a file on disk with all its pages up front (one call instead of a fault per
    page); False where the decoder's in-order reads fault pages in faster."""

    @abstractmethod
    def sniff(self, probe: Probe) -> bool:
        """True when the bytes are this format (even damaged, so the user gets a precise
        error rather than "unknown format"). Cheap; may raise, which counts as False."""

    @abstractmethod
    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        """The record, or an :class:`~ecgingest.errors.EcgIngestError` raised."""

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        """Header facts without decoding samples (``ecgingest inspect``).

        The default decodes; a format overrides it with a header-only path.
        """
        return RecordInfo.of(self.decode(data, ctx))

    def skip_reason(self, probe: Probe) -> str | None:
        """Why a file of this format that ``sniff`` declines holds no record (a DICOM
        image, an annotation file), so the user reads that rather than "matches no
        format". None (the default) when the format has nothing to say."""
        return None


@dataclass(frozen=True)
class GroupOutcome:
    """One record of a directory pool: the record or its error, and the files it used."""

    anchor: str
    """Name of the file that anchors the record (a WFDB header)."""
    record: Record | RecordInfo | None
    """The record (a :class:`RecordInfo` from :meth:`MultiFileFormat.inspect_group`)."""
    error: EcgIngestError | None
    files: tuple[str, ...]
    """Names of the pool's files the record was built from (anchor first)."""


class MultiFileFormat(ABC):
    """A format whose records are built from several files of one directory."""

    name: ClassVar[str]

    @abstractmethod
    def is_anchor(self, name: str) -> bool:
        """True when a file of this name starts a record (``100.hea``)."""

    @abstractmethod
    def sniff_anchor(self, probe: Probe) -> bool:
        """True when a lone file reads as an anchor (to tell the user its files are missing)."""

    @abstractmethod
    def read_group(self, pool: Mapping[str, PoolFile], anchors: Sequence[str],
                   ctx: DecodeContext) -> Iterator[GroupOutcome]:
        """One outcome per record of a directory, in anchor order.

        ``pool`` maps every unclaimed file of the directory by name; ``ctx``
        carries the upload's mode, limits and budget (make one per file with
        :meth:`DecodeContext.for_file`).
        """

    def inspect_group(self, pool: Mapping[str, PoolFile], anchors: Sequence[str],
                      ctx: DecodeContext) -> Iterator[GroupOutcome]:
        """As :meth:`read_group`, with :class:`RecordInfo` records read from headers.

        The default decodes; a format overrides it with a header-only path.
        """
        for outcome in self.read_group(pool, anchors, ctx):
            if isinstance(outcome.record, Record):
                outcome = GroupOutcome(outcome.anchor, RecordInfo.of(outcome.record),
                                       outcome.error, outcome.files)
            yield outcome

    def unused_file_reason(self, probe: Probe) -> str | None:
        """Why a file of this format that no record used is skipped (a WFDB annotation
        file without its header), or None (the default) for files it cannot tell."""
        return None

    def unused_anchor_reason(self, name: str) -> str:
        """Why an anchor that yielded no record (consumed by nothing) is skipped."""
        return f"{self.name} file not used (no record was built from it)"


Format = SingleFileFormat | MultiFileFormat
