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
import math
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Protocol, TypeVar

import numpy as np

from ..errors import (
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    LimitExceededError,
    MissingDependencyError,
    SourceUnavailableError,
    TruncatedError,
    UnsupportedFeatureError,
    WindowError,
)
from ..limits import DEFAULT_LIMITS, Limits
from ..record import Annotation, Record, RecordInfo, Signal, find_label

if TYPE_CHECKING:
    from .._memory import Arena

__all__ = [
    "PROBE_BYTES",
    "Probe",
    "PoolFile",
    "ByteSource",
    "open_regular",
    "check_unchanged",
    "ReadRequest",
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


_T = TypeVar("_T")


class Probe:
    """What a sniffer sees of a file: its base name, its size and a bounded prefix.

    ``head(n)`` reads lazily and at most :data:`PROBE_BYTES`, so a sniffer that
    decides on 4 bytes costs 4 bytes, whatever the file holds. The longest
    prefix read so far is kept: every sniffer of one detection shares it.
    """

    __slots__ = ("name", "size", "_read_head", "_head", "_asked", "_memo")

    def __init__(self, name: str, size: int, read_head: Callable[[int], bytes]) -> None:
        self.name = name
        self.size = size
        self._read_head = read_head
        self._head = b""
        self._asked = 0
        self._memo: dict[object, Any] | None = None

    @classmethod
    def of_bytes(cls, data: bytes | bytearray | memoryview, name: str = "upload") -> Probe:
        """A probe of bytes in memory (tests, and formats that sniff nested data)."""
        return cls(name, len(data), lambda n: bytes(data[:n]))

    def head(self, n: int = PROBE_BYTES) -> bytes:
        """The first ``min(n, PROBE_BYTES)`` bytes (fewer when the file is shorter)."""
        if n > PROBE_BYTES:
            n = PROBE_BYTES
        if n > self._asked:
            self._head, self._asked = self._read_head(n), n
        head = self._head
        return head if n >= len(head) else head[:n]

    def memo(self, compute: Callable[[Probe], _T]) -> _T:
        """``compute(self)``, worked out once per probe: sniffers that derive the same
        fact from the prefix (the XML formats' root element) share one pass."""
        if self._memo is None:
            self._memo = {}
        if compute not in self._memo:
            self._memo[compute] = compute(self)
        return self._memo[compute]  # type: ignore[no-any-return]


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


# --------------------------------------------------------------------------- partial reads

_UNITS = ("seconds", "samples")
_TOLERANCE = 1e-6
"""Samples by which a time may miss the sample grid and still name that sample (a
window given in seconds that a float cannot hold exactly)."""


def _first_at(t: float, rate: float) -> int:
    """Index of the first sample at or after ``t`` seconds, at ``rate``."""
    return max(math.ceil(t * rate - _TOLERANCE), 0)


def _clock(seconds: float) -> str:
    return f"{seconds:.6g} s"


@dataclass(frozen=True)
class ReadRequest:
    """What part of each record a read asks for: some channels, a window in time.

    ``start`` and ``stop`` count seconds from the record start, or, with
    ``unit="samples"``, samples at the record's highest sample rate (a
    single-rate record's sample indices; a WFDB record's frames when every
    signal has one sample per frame). The window is half-open: a signal keeps the
    samples whose time ``i / rate`` lies in ``[start, stop)``. ``None`` leaves
    that end open. ``channels`` are labels (as :meth:`Record.signal` takes them)
    or indices, in the order wanted.

    A format that reads windows natively (``windows = True``) decodes only what
    the request covers; for any other the pipeline decodes the record whole and
    cuts it with :meth:`apply`. Both give the same record.
    """

    channels: tuple[str | int, ...] | None = None
    start: float | None = None
    stop: float | None = None
    unit: str = "seconds"

    @classmethod
    def of(cls, channels: str | int | Sequence[str | int] | None = None,
           start: float | None = None, stop: float | None = None,
           unit: str = "seconds") -> ReadRequest | None:
        """A checked request, or None when it asks for whole records (nothing to do).

        :raises WindowError: a negative end, ``stop <= start``, an unknown unit.
        :raises TypeError: channels or ends of the wrong type.
        """
        if unit not in _UNITS:
            raise WindowError(f"unit must be 'seconds' or 'samples', not {unit!r}")
        if channels is None and start is None and stop is None:  # every read's default
            return None
        for end, value in (("start", start), ("stop", stop)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                 np.floating)):
                raise TypeError(f"{end} must be a number, not {type(value).__name__}")
            if unit == "samples" and not float(value).is_integer():
                raise WindowError(f"{end}={value!r}: a window in samples takes whole numbers")
            if not math.isfinite(value) or value < 0:
                raise WindowError(f"{end}={value!r}: a window starts at 0 or later, "
                                  "and ends at a finite time")
        if start is not None and stop is not None and stop <= start:
            raise WindowError(f"stop={stop!r} is not after start={start!r}: the window is "
                              "empty")
        chosen: tuple[str | int, ...] | None = None
        if channels is not None:
            items = [channels] if isinstance(channels, (str, int, np.integer)) else list(
                channels)
            for item in items:
                if isinstance(item, bool) or not isinstance(item, (str, int, np.integer)):
                    raise TypeError(f"channels are labels (str) or indices (int), not "
                                    f"{type(item).__name__}")
            chosen = tuple(item if isinstance(item, str) else int(item) for item in items)
        if start == 0:
            start = None
        if chosen is None and start is None and stop is None:
            return None
        as_number = int if unit == "samples" else float
        return cls(chosen, None if start is None else as_number(start),
                   None if stop is None else as_number(stop), unit)

    @property
    def windowed(self) -> bool:
        """True when the request cuts the records in time (not only picks channels)."""
        return self.start is not None or self.stop is not None

    # ----------------------------------------------------------------- channels

    def channel_indices(self, labels: Sequence[str], record: str) -> list[int]:
        """Indices of the asked channels among ``labels`` (all, in order, when None).

        :raises WindowError: a channel the record does not have (the message lists its
            labels).
        """
        if self.channels is None:
            return list(range(len(labels)))
        out = []
        for item in self.channels:
            if isinstance(item, int):
                if not -len(labels) <= item < len(labels):
                    raise WindowError(f"record {record!r} has no channel {item}: it has "
                                      f"{len(labels)} ({_labels(labels)})")
                out.append(item % len(labels))
                continue
            found = find_label(labels, item)
            if found is None:
                raise WindowError(f"record {record!r} has no channel {item!r}; its channels "
                                  f"are {_labels(labels)}")
            out.append(found)
        return out

    # ----------------------------------------------------------------- windows

    def sample_ranges(self, rates: Sequence[float], lengths: Sequence[int],
                      record: str) -> list[tuple[int, int]]:
        """Per signal, the samples ``[a, b)`` of the window, checked against the record.

        ``rates`` and ``lengths`` are every signal's (the window is checked against
        the whole record, whichever channels are asked).

        :raises WindowError: the window starts at or past the record's end, or ends
            past it.
        """
        reference = max((r for r in rates if r > 0), default=0.0)
        if not reference > 0:
            raise WindowError(f"record {record!r} has no sample rate: a window cannot be "
                              "placed in it")
        duration = max((n / r for n, r in zip(lengths, rates) if r > 0), default=0.0)
        total = round(duration * reference)
        t0, t1 = self.seconds(reference)
        self._check_end(t0, t1, duration, total, reference, record, rates)
        ranges = []
        for rate, n in zip(rates, lengths):
            if not rate > 0:
                ranges.append((0, 0))
                continue
            a = min(_first_at(t0, rate), n)
            b = n if t1 is None else min(_first_at(t1, rate), n)
            ranges.append((a, max(a, b)))
        return ranges

    def record_range(self, onsets: np.ndarray, record_duration: float,
                     samples_per_record: int, reference: float, record: str
                     ) -> tuple[int, int]:
        """The data records ``[r0, r1)`` of a discontinuous (EDF+D) record that the
        window overlaps: in seconds by their onsets, in samples by the position of
        the samples in the file (``samples_per_record`` at the ``reference`` rate).
        Whole data records are kept, so each keeps its onset.

        :raises WindowError: as :meth:`sample_ranges`.
        """
        n_rec = len(onsets)
        if self.unit == "samples":
            total = n_rec * samples_per_record
            k0 = int(self.start or 0)
            self._check_end(k0 / reference, None if self.stop is None else self.stop / reference,
                            total / reference, total, reference, record, [reference])
            r0 = k0 // samples_per_record
            r1 = n_rec if self.stop is None else -(-int(self.stop) // samples_per_record)
            return r0, min(r1, n_rec)
        end = float(onsets[-1]) + record_duration if n_rec else 0.0
        t0, t1 = self.seconds(reference)
        self._check_end(t0, t1, end, round(end * reference), reference, record, [reference])
        starts = np.asarray(onsets, dtype=np.float64)
        keep = starts + record_duration > t0 + _TOLERANCE / reference
        if t1 is not None:
            keep &= starts < t1 - _TOLERANCE / reference
        chosen = np.flatnonzero(keep)
        if not len(chosen):
            first = int(np.searchsorted(starts, t0))
            return first, first
        return int(chosen[0]), int(chosen[-1]) + 1

    def seconds(self, reference: float) -> tuple[float, float | None]:
        """The window's ends in seconds (``reference``: the record's highest rate, which
        a window in samples counts at); ``None`` for an open end."""
        t0 = float(self.start or 0)
        t1 = None if self.stop is None else float(self.stop)
        if self.unit == "samples":
            return t0 / reference, None if t1 is None else t1 / reference
        return t0, t1

    def _check_end(self, t0: float, t1: float | None, duration: float, total: int,
                   reference: float, record: str, rates: Sequence[float]) -> None:
        slack = _TOLERANCE / reference
        if t0 >= duration - slack or (t1 is not None and t1 > duration + slack):
            what = (f"start={self.start!r}" if t0 >= duration - slack
                    else f"stop={self.stop!r}")
            rate = f"{reference:g} Hz" + (" (its highest rate)" if len(set(rates)) > 1
                                          else "")
            raise WindowError(f"{what} {self.unit} is past the end of record {record!r}: it "
                              f"lasts {_clock(duration)}, {total} samples at {rate}")

    # ----------------------------------------------------------------- whole records

    def apply(self, record: Record) -> Record:
        """The part of a whole decoded record that the request asks for.

        The samples are copied, so the whole decode can be let go. Annotations
        that overlap the window are kept (onsets still from the record start);
        a window of a continuous record has no ``data_record_onsets``. The record's
        ``window`` (an ``extras`` entry, so ``record.window``) is ``(start, stop)`` in
        seconds.
        """
        chosen = [record.signals[i] for i in self.channel_indices(record.labels, record.name)]
        if not self.windowed:
            return record.replace(signals=chosen)
        onsets = record.data_record_onsets
        if (onsets is not None and record.format_detail.endswith("+D") and record.signals
                and len(onsets)):
            return self._apply_records(record, chosen, onsets)
        ranges = self.sample_ranges([s.sample_rate for s in record.signals],
                                    [len(s) for s in record.signals], record.name)
        by_signal = {id(s): r for s, r in zip(record.signals, ranges)}
        signals = [cut_signal(s, *by_signal[id(s)]) for s in chosen]
        t0, t1 = self.seconds(max(s.sample_rate for s in record.signals))
        return record.replace(signals=signals, data_record_onsets=None,
                              annotations=annotations_within(record.annotations, t0, t1),
                              extras={**record.extras,
                                      "window": (t0, record.duration if t1 is None else t1)})

    def _apply_records(self, record: Record, chosen: list[Signal], onsets: np.ndarray
                       ) -> Record:
        first = record.signals[0]
        per_record = len(first) // len(onsets)
        duration = per_record / first.sample_rate
        reference = max(s.sample_rate for s in record.signals)
        r0, r1 = self.record_range(onsets, duration, round(duration * reference), reference,
                                   record.name)
        signals = []
        for sig in chosen:
            k = len(sig) // len(onsets)
            signals.append(cut_signal(sig, r0 * k, r1 * k))
        window = np.array(onsets[r0:r1], dtype=np.float64)
        t0 = float(onsets[r0]) if r1 > r0 else 0.0
        t1 = float(onsets[r1 - 1]) + duration if r1 > r0 else 0.0
        return record.replace(signals=signals, data_record_onsets=window,
                              annotations=annotations_within(record.annotations, t0, t1),
                              extras={**record.extras, "window": (t0, t1)})


def cut_signal(sig: Signal, a: int, b: int) -> Signal:
    """Samples ``[a, b)`` of a signal as a signal of their own (arrays copied)."""
    def part(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.array(array[a:b])

    return Signal(sig.label, sig.sample_rate, np.array(sig.digital[a:b]), sig.scale,
                  sig.offset, sig.units, sig.invalid_value, part(sig.invalid_mask),
                  part(sig.supplied_physical), sig.derivation, sig.first_sample + a)


def annotations_within(annotations: Sequence[Annotation], t0: float, t1: float | None
                       ) -> list[Annotation]:
    """The annotations that overlap ``[t0, t1)`` (an instant at ``t0`` included)."""
    return [a for a in annotations
            if (t1 is None or a.onset < t1) and a.onset + (a.duration or 0.0) >= t0]


def _labels(labels: Sequence[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:24])
    return (shown + f", … (+{len(labels) - 24} more)") if len(labels) > 24 else (shown or "none")


OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
              | getattr(os, "O_BINARY", 0))
"""How every file on disk is opened for reading: without blocking (a FIFO named as a
file must not hang the open or a read) and never as a controlling terminal."""

RANGED_READS = hasattr(os, "preadv")
"""Positioned scattered reads exist (POSIX): a file on disk is read by ranges."""


def open_regular(path: str | os.PathLike[str], *, name: str | None = None
                 ) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` opened for reading and its status (the caller closes it).

    Refused with :class:`~ecgingest.errors.SourceUnavailableError` (``name``: the
    path the error names) unless it is a regular file: a FIFO, socket or device
    would block a read forever or never end, so it is opened without blocking
    and refused before any read (on a regular file the flag changes nothing:
    reads never block).
    """
    fd = os.open(path, OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceUnavailableError(
                "not a regular file (a pipe, socket or device is never read)",
                path=os.fspath(path) if name is None else name)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def check_unchanged(fd: int, size: int, path: str, *, lost_bytes: bool = False,
                    cause: BaseException | None = None) -> None:
    """:class:`~ecgingest.errors.SourceUnavailableError` when the open file ``fd`` is no
    longer ``size`` bytes, or a read of it found bytes gone (``lost_bytes``: a mapped
    page the file no longer has): it was cut or grown while it was read."""
    now = os.fstat(fd).st_size
    if not lost_bytes and now == size:
        return
    raise SourceUnavailableError(
        f"the file changed size while it was read ({size} bytes, now {now}); read it once "
        "it is complete", path=path) from cause


class ByteSource:
    """Random access to one file's bytes, for reads that take only some ranges of it.

    Over a file on disk it reads each range with ``pread`` into the caller's
    buffer (nothing else of the file is touched or kept); over bytes in memory
    it hands out slices. Open one with :meth:`open` (a pool file, an entry) or
    :meth:`of_bytes`. ``head``: the file's first bytes when they were already
    read (detection's), served without reading them again.
    """

    __slots__ = ("size", "_fd", "_data", "_head")

    def __init__(self, size: int, *, fd: int | None = None,
                 data: memoryview | None = None, head: bytes = b"") -> None:
        self.size = size
        self._fd = fd
        self._data = data
        self._head = head if data is None else b""

    @classmethod
    def of_bytes(cls, data: bytes | bytearray | memoryview) -> ByteSource:
        view = memoryview(data).cast("B")
        return cls(len(view), data=view)

    @classmethod
    def open(cls, file: PoolFile) -> contextlib.AbstractContextManager[ByteSource]:
        """A source over ``file``: its file on disk when it has one that is still the
        size listed, else its bytes (``file.view``).

        A file that still holds the descriptor its head was read through hands it
        over (an optional ``take_descriptor()`` giving ``(fd, head bytes)`` or None,
        the descriptor then the source's to close): the same file, checked a regular
        file of the listed size when opened, read without opening it again. Else an
        optional ``disk_file`` (its path on disk, or None) is opened.
        """
        take = getattr(file, "take_descriptor", None)
        opened = take() if take is not None else None
        if opened is None and RANGED_READS and not getattr(file, "in_memory", False):
            disk = getattr(file, "disk_file", None)
            if disk is not None:
                opened = _open_sized(disk, file.size)
        if opened is not None:
            fd, head = opened
            return _OpenFile(cls(file.size, fd=fd, head=head))
        return cls._of_view(file)

    @classmethod
    @contextlib.contextmanager
    def _of_view(cls, file: PoolFile) -> Iterator[ByteSource]:
        with file.view(prefault=False) as data:
            yield cls.of_bytes(data)

    def read_into(self, offset: int, buffer: bytearray | memoryview | np.ndarray) -> int:
        """Fill ``buffer`` from ``offset``; the bytes read (fewer at the end of the file)."""
        target = memoryview(buffer).cast("B")  # type: ignore[arg-type]  # any byte buffer
        n = max(min(len(target), self.size - offset), 0)
        if n == 0:
            return 0
        if self._data is not None:
            target[:n] = self._data[offset:offset + n]
            return n
        assert self._fd is not None
        got = 0
        while got < n:
            k = os.preadv(self._fd, [target[got:n]], offset + got)
            if k <= 0:
                break
            got += k
        return got

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes from ``offset`` (a view, for bytes in memory)."""
        if self._data is not None:
            return self._data[max(offset, 0):max(offset + size, 0)]
        head = self._head
        end = min(offset + size, self.size)
        if 0 <= offset and end <= len(head):  # read already
            return head[offset:end]
        known = head[offset:] if 0 <= offset < len(head) else b""
        buffer = bytearray(max(end - offset - len(known), 0))
        got = self.read_into(offset + len(known), buffer)
        return known + (bytes(buffer[:got]) if got < len(buffer) else bytes(buffer))

    def check_unchanged(self, path: str) -> None:
        """:class:`~ecgingest.errors.SourceUnavailableError` when the open file is no
        longer the size it had when opened (it was cut or grown while it was read)."""
        if self._fd is not None:
            check_unchanged(self._fd, self.size, path)

    @property
    def fd(self) -> int | None:
        """The open file the ranges are read from (None for bytes in memory), for a
        native kernel that reads scattered ranges itself, with the GIL released."""
        return self._fd

    @property
    def whole(self) -> memoryview | None:
        """All the bytes when they are in memory (None for a file read by ranges)."""
        return self._data


class _OpenFile(contextlib.AbstractContextManager):
    """A source over an open descriptor, closed at the end of the ``with`` (a plain
    class: a generator-based context manager costs a few microseconds per read)."""

    __slots__ = ("source",)

    def __init__(self, source: ByteSource) -> None:
        self.source = source

    def __enter__(self) -> ByteSource:
        return self.source

    def __exit__(self, *exc: object) -> None:
        fd = self.source._fd
        assert fd is not None
        os.close(fd)


def _open_sized(path: str | os.PathLike[str], size: int) -> tuple[int, bytes] | None:
    """``path`` opened for ranged reads, or None when it cannot be, is not a regular
    file or is no longer ``size`` bytes (the caller then reads the bytes as a whole,
    which says why)."""
    try:
        fd, info = open_regular(path)
    except (OSError, SourceUnavailableError):
        return None
    if info.st_size != size:
        os.close(fd)
        return None
    return fd, b""


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
                 budget: OutputBudget | None = None, arena: Arena | None = None,
                 request: ReadRequest | None = None,
                 companions: Mapping[str, PoolFile] | None = None) -> None:
        self.format = format
        self.name = name
        self.path = path
        self.strict = strict
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.budget = budget if budget is not None else OutputBudget(
            self.limits.max_decoded_size)
        self.arena = arena
        self.request = request
        """The part of each record asked for (None: whole records). A format that
        declares ``windows = True`` honours it; the pipeline cuts the others' records."""
        self.companions: Mapping[str, PoolFile] = {} if companions is None else dict(
            companions)
        """Files of the upload beside this one that its format asked for by name
        (:meth:`SingleFileFormat.companions`), those present, by name."""
        self.warnings: list[str] = []

    def for_file(self, *, format: str | None = None, name: str | None = None,
                 path: str | None = None) -> DecodeContext:
        """A context for another file of the same upload: same mode, limits, budget and
        request."""
        return DecodeContext(format or self.format, name=self.name if name is None else name,
                             path=path if path is not None else self.path, strict=self.strict,
                             limits=self.limits, budget=self.budget, arena=self.arena,
                             request=self.request)

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
    takes_bytes: ClassVar[bool] = False
    """True when the decoder parses a ``bytes`` object (an XML or JSON parser, a reader
    over ``io.BytesIO``) and would copy any other buffer first: a file read rather than
    mapped is then read into ``bytes`` for it."""
    windows: ClassVar[bool] = False
    """True when :meth:`decode_part` reads only the channels and window of
    ``ctx.request``; otherwise the pipeline decodes whole records and cuts them."""
    marker: ClassVar[tuple[int, bytes] | None] = None
    """A byte every file that :meth:`sniff` claims has: ``(offset, the values it may
    take)``, e.g. ``(0, b"0\\xff")`` for a first byte ``0`` or ``0xff``; None when there
    is none. Detection does not ask the sniffer about a file whose byte at ``offset``
    is none of them (a look at one byte instead of a call), so ``sniff`` must decline
    every such file; a file too short to have that byte is asked as ever."""

    @abstractmethod
    def sniff(self, probe: Probe) -> bool:
        """True when the bytes are this format (even damaged, so the user gets a precise
        error rather than "unknown format"). Cheap; may raise, which counts as False."""

    @abstractmethod
    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        """The record, or an :class:`~ecgingest.errors.EcgIngestError` raised."""

    def decode_part(self, source: ByteSource, ctx: DecodeContext) -> Record:
        """The part of the record that ``ctx.request`` asks for, reading only the byte
        ranges it needs from ``source`` (called instead of :meth:`decode` when the
        format declares ``windows = True`` and the read asks for a part). The default
        decodes the whole file and cuts it."""
        whole = source.whole
        data = source.read(0, source.size) if whole is None else whole
        record = self.decode(data, ctx)
        return record if ctx.request is None else ctx.request.apply(record)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        """Header facts without decoding samples (``ecgingest inspect``).

        The default decodes; a format overrides it with a header-only path.
        """
        return RecordInfo.of(self.decode(data, ctx))

    def companions(self, name: str) -> tuple[str, ...]:
        """Names of files beside ``name`` in its directory that its record reads too, when
        the upload has them (an ISHNE ECG's ``.ann`` beats); () by default.

        A file whose format names companions is decoded once every entry of its
        directory has been seen (so an archive may hold them in any order), with
        those present in ``ctx.companions``; they are then the record's files, not
        skipped entries.
        """
        return ()

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
    windows: ClassVar[bool] = False
    """True when :meth:`read_group` reads only the channels and window of
    ``ctx.request``; otherwise the pipeline decodes whole records and cuts them."""

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
