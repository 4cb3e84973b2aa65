"""The one exception hierarchy of ecgingest.

Every problem caused by the *content* of an upload ends in a subclass of
:class:`EcgIngestError`; real I/O failures stay :class:`OSError`. Errors carry
structured context (format, entry path, byte offset, header field) so a
service can report them without parsing messages.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EcgIngestError",
    "FormatError",
    "HeaderError",
    "TruncatedError",
    "CorruptDataError",
    "ChecksumError",
    "MissingFileError",
    "UnsupportedFormatError",
    "UnsupportedFeatureError",
    "ArchiveError",
    "UnsafeEntryError",
    "LimitExceededError",
    "OverrideError",
    "StreamError",
    "DuplicateFrameError",
    "FrameMismatchError",
    "UploadError",
    "SkippedEntriesError",
    "SourceUnavailableError",
    "WorkerLostError",
    "MissingDependencyError",
    "UnrepresentableError",
    "UnitError",
    "MixedRatesError",
    "WindowError",
    "EcgWarning",
]


class EcgIngestError(Exception):
    """Root of every error ecgingest raises for bad input."""

    def __init__(
        self,
        message: str,
        *,
        format: str | None = None,
        path: str | None = None,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.format = format
        self.path = path
        self.offset = offset
        self.field = field

    def with_context(self, **context: Any) -> EcgIngestError:
        """Fill context the raiser did not know (e.g. the archive entry path)."""
        for key, value in context.items():
            if getattr(self, key, None) is None:
                setattr(self, key, value)
        return self

    def __str__(self) -> str:
        where = []
        if self.format:
            where.append(self.format)
        if self.path:
            where.append(repr(self.path))
        if self.field:
            where.append(f"field {self.field!r}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        prefix = f"[{', '.join(where)}] " if where else ""
        return prefix + self.message

    def __reduce__(self) -> tuple[Any, ...]:  # keep context across pickling (worker processes)
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[EcgIngestError], message: str, state: dict[str, Any]) -> EcgIngestError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class FormatError(EcgIngestError, ValueError):
    """The bytes claim a known format but do not follow it."""


class HeaderError(FormatError):
    """A header field is missing, malformed or inconsistent."""


class TruncatedError(FormatError):
    """The data ends before what the header promises."""


class CorruptDataError(FormatError):
    """Sample or compressed data cannot be decoded."""


class ChecksumError(FormatError):
    """A stored checksum or CRC does not match the data (an archive entry's always; one
    inside a record only in strict mode, else a warning on the record)."""


class MissingFileError(FormatError):
    """A multi-file record references a file that is not in the upload."""


class UnsupportedFormatError(EcgIngestError, ValueError):
    """The upload matches none of the formats ecgingest reads."""

    def __init__(self, message: str, *, tried: tuple[str, ...] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.tried = tried


class UnsupportedFeatureError(EcgIngestError, NotImplementedError):
    """A recognised file uses a variant ecgingest does not decode."""


class ArchiveError(EcgIngestError):
    """The archive container itself is damaged or unreadable."""


class UnsafeEntryError(ArchiveError):
    """An archive entry name escapes the archive, or the entry is a link or device."""


class LimitExceededError(EcgIngestError):
    """A configured :class:`ecgingest.Limits` bound was reached."""

    def __init__(self, message: str, *, limit: str, value: int | float | None = None,
                 **context: Any) -> None:
        super().__init__(message, **context)
        self.limit = limit
        self.value = value


class OverrideError(EcgIngestError, ValueError):
    """A metadata override value is invalid (``field`` names it)."""


class StreamError(EcgIngestError, ValueError):
    """A device stream parameter or frame is invalid."""


class DuplicateFrameError(StreamError):
    """A frame with the same timestamp was already added."""


class FrameMismatchError(StreamError):
    """A frame does not match the stream's parameters."""


class UploadError(EcgIngestError, ValueError):
    """A chunked upload is inconsistent (overlap conflict, size or hash mismatch)."""


class SkippedEntriesError(EcgIngestError):
    """Strict mode: some entries of the upload matched no format."""

    def __init__(self, message: str, *, skipped: list | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.skipped = skipped or []


class SourceUnavailableError(EcgIngestError):
    """Batch ingestion: an upload could not be opened (missing file, unreachable URL)."""


class WorkerLostError(EcgIngestError):
    """Batch ingestion on a cluster: the upload's task was lost with its workers too often."""


class MissingDependencyError(EcgIngestError, ImportError):
    """Reading this format needs an optional package: ``extra`` names the pip extra."""

    def __init__(self, message: str, *, extra: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.extra = extra


class UnrepresentableError(EcgIngestError, ValueError):
    """A record cannot be written in the asked format without changing it (values outside
    the format's range, rates or lengths it cannot hold, a label too long for its field);
    the message says which and why."""


class UnitError(EcgIngestError, ValueError):
    """A conversion between physical units that are not both voltages."""


class MixedRatesError(EcgIngestError, ValueError):
    """Signals of different sample rates (or lengths) asked for as one array."""


class WindowError(EcgIngestError, ValueError):
    """A window or channel asked of a record does not fit it (negative, past the end,
    empty, an unknown channel); the message says what the record has."""


class EcgWarning(UserWarning):
    """Category for deviations tolerated in lenient mode (also listed on ``Record.warnings``)."""
