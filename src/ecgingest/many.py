"""Many uploads at once: a thread pool on one machine, Dask on a cluster.

The native decoders release the GIL, so threads scale on one machine; past
it, a ``dask.distributed`` client runs each upload as a task. Either way at
most ``max_in_flight`` uploads are held at once, whatever the number of
sources, and every upload is reported exactly once: a failure in decoding is
part of its :class:`~ecgingest.IngestResult`, never an exception that loses
the rest of the batch.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    CorruptDataError,
    EcgIngestError,
    SourceUnavailableError,
    WorkerLostError,
)
from .ingest import EntryError, IngestResult, ingest
from .limits import Limits
from .overrides import Overrides
from .sources import FileGroup, Source, drop_frames
from .uploads import is_upload_file

__all__ = ["ingest_many", "uploads_below", "BatchSummary"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, FileGroup):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return str(getattr(source, "name", "<stream>"))


def _ingest_one(source: Any, overrides: Overrides | None, strict: bool,
                limits: Limits | None) -> IngestResult:
    """One upload, with every failure turned into a reported error."""
    try:
        return ingest(source, overrides=overrides, strict=strict, limits=limits)
    except EcgIngestError as exc:
        return IngestResult(errors=[EntryError((exc.path or _label(source),), exc)])
    except (OSError, ImportError) as exc:
        err = SourceUnavailableError(f"cannot open the upload: {exc}", path=_label(source))
        return IngestResult(errors=[EntryError((_label(source),), err)])
    except Exception as exc:  # a decoder bug, RecursionError, MemoryError: this upload's error
        drop_frames(exc)  # the error is kept: not the decoder's locals with it
        failure = CorruptDataError(f"could not decode ({type(exc).__name__}: {exc})",
                               path=_label(source))
        failure.__cause__ = exc
        return IngestResult(errors=[EntryError((_label(source),), failure)])


def uploads_below(root: str | os.PathLike, *, limits: Limits | None = None) -> Iterator[Any]:
    """The uploads of a directory tree, in sorted path order.

    Every archive or recognised single file is one upload; the remaining files
    of each directory that holds a WFDB header form one upload (a
    :class:`~ecgingest.sources.FileGroup`), grouped as usual.

    :param root: the directory to walk (symbolic links are not followed).
    :param limits: the bounds used to recognise archives (default :class:`Limits`).
    :returns: an iterator of uploads: paths and file groups, for :func:`ingest_many`.
    :raises OSError: a directory cannot be listed.
    """
    base = Path(root)
    limits = limits or Limits()
    for folder, subdirs, files in os.walk(base):
        subdirs.sort()
        pool: list[str] = []
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            if is_upload_file(path, limits):
                yield path
            else:
                pool.append(name)
        if any(name.lower().endswith(".hea") for name in pool):
            yield FileGroup(Path(folder), tuple(pool))


@dataclass
class BatchSummary:
    """Totals of a batch, for the command line and logs."""

    uploads: int = 0
    failed_uploads: int = 0
    records: int = 0
    skipped: int = 0
    errors: int = 0
    samples: int = 0
    seconds: float = 0.0

    def add(self, result: IngestResult) -> None:
        self.uploads += 1
        self.failed_uploads += bool(result.errors)
        self.records += len(result.records)
        self.skipped += len(result.skipped)
        self.errors += len(result.errors)
        self.samples += sum(len(s) for r in result.records for s in r.signals)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"uploads": self.uploads, "failed_uploads": self.failed_uploads,
                "records": self.records, "skipped": self.skipped, "errors": self.errors,
                "samples": self.samples, "seconds": round(self.seconds, 3),
                "samples_per_second": round(self.samples_per_second, 1)}


def _progress_bar(progress: bool | None, total: int | None):
    show = progress if progress is not None else sys.stderr.isatty()
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="upload", file=sys.stderr, dynamic_ncols=True)


def ingest_many(
    sources: Iterable[Source] | str | os.PathLike,
    *,
    workers: int | None = None,
    client: Any = None,
    overrides: Overrides | Mapping[str, Any] | None = None,
    strict: bool = False,
    limits: Limits | None = None,
    progress: bool | None = None,
    ordered: bool = False,
    max_in_flight: int | None = None,
    per_task: int = 8,
) -> Iterator[tuple[Source, IngestResult]]:
    """Yield ``(source, IngestResult)`` for every upload, as each finishes.

    ``sources`` is an iterable of uploads (paths, URLs, bytes, file objects)
    or a directory (see :func:`uploads_below`). ``workers`` threads (default:
    the cores available) decode on this machine; with a ``dask.distributed``
    ``client`` the uploads run as tasks on its cluster instead. ``ordered``
    yields in input order. At most ``max_in_flight`` uploads (default: twice
    the threads, or 16 per Dask worker) are pending at once. ``progress``
    shows a bar (default: when stderr is a terminal). On Dask, ``per_task``
    consecutive uploads share one task, so the cluster's per-task cost is
    paid once for them.

    :param sources: uploads (paths, URLs, bytes, file objects), or a directory.
    :param workers: threads decoding on this machine (default: available cores).
    :param client: a ``dask.distributed`` client to run the uploads on instead.
    :param overrides: metadata fields applied to every record (checked first).
    :param strict: as for :func:`~ecgingest.ingest`, per upload.
    :param limits: bounds for every upload (:class:`~ecgingest.Limits`).
    :param progress: show a progress bar (``None``: when stderr is a terminal).
    :param ordered: yield in input order instead of completion order.
    :param max_in_flight: uploads pending at once.
    :param per_task: consecutive uploads per Dask task.
    :returns: an iterator of ``(source, IngestResult)``; an upload that cannot be
        opened yields a result whose ``errors`` hold a
        :class:`~ecgingest.errors.SourceUnavailableError` (on Dask, a lost task a
        :class:`~ecgingest.errors.WorkerLostError`), so one bad upload never stops
        the batch.
    :raises ecgingest.errors.OverrideError: an override value is invalid.
    :raises NotADirectoryError: ``sources`` is a path but not a directory.
    :raises TypeError: ``limits`` is not a :class:`~ecgingest.Limits`.
    :raises ValueError: ``workers`` or ``per_task`` is below 1.
    """
    checked = Overrides.coerce(overrides)  # invalid overrides fail before any work
    if limits is not None and not isinstance(limits, Limits):
        raise TypeError(f"limits must be an ecgingest.Limits, not {type(limits).__name__}")
    if isinstance(sources, (str, os.PathLike)):
        if not Path(os.fspath(sources)).is_dir():
            raise NotADirectoryError(
                f"{os.fspath(sources)!r} is not a directory; pass a list to ingest single uploads")
        items: Iterable[Any] = uploads_below(sources, limits=limits)
        total = None
    else:
        items = sources
        total = len(sources) if hasattr(sources, "__len__") else None  # type: ignore[arg-type]
    if per_task < 1:
        raise ValueError(f"per_task must be at least 1, got {per_task}")
    if client is not None:
        # a task round trip costs milliseconds: keep enough queued to hide it
        in_flight = max_in_flight or 16 * max(1, _dask_workers(client))
        runner = _run_dask(client, items, checked, strict, limits, ordered, in_flight,
                           max(1, min(per_task, in_flight)))
    else:
        count = workers if workers is not None else _cores()
        if count < 1:
            raise ValueError(f"workers must be at least 1, got {count}")
        in_flight = max_in_flight or 2 * count
        runner = _run_threads(count, items, checked, strict, limits, ordered, in_flight)
    bar = _progress_bar(progress, total)
    try:
        for pair in runner:
            if bar is not None:
                bar.update(1)
            yield pair
    finally:
        if bar is not None:
            bar.close()
        runner.close()


_END = object()
_DASK_RESUBMITS = 2  # beyond the scheduler's own retries when a worker dies


def _run_threads(workers: int, items: Iterable[Any], overrides: Overrides | None, strict: bool,
                 limits: Limits | None, ordered: bool, in_flight: int):
    """Keep at most ``in_flight`` uploads pending; yield them as they finish (or in order)."""
    pending: deque[tuple[Any, Future]] = deque()

    def finished(block: bool):
        if ordered:
            while pending and (block or pending[0][1].done()):
                source, future = pending.popleft()
                yield source, future.result()  # waits for the oldest when blocking
                block = False
            return
        if block:
            wait([future for _, future in pending], return_when=FIRST_COMPLETED)
        for item in [p for p in pending if p[1].done()]:
            pending.remove(item)
            yield item[0], item[1].result()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ecgingest") as pool:
        sources = iter(items)
        while True:
            while len(pending) >= in_flight:  # wait before pulling the next source
                yield from finished(block=True)
            source = next(sources, _END)
            if source is _END:
                break
            pending.append((source, pool.submit(_ingest_one, source, overrides, strict, limits)))
            yield from finished(block=False)
        while pending:
            yield from finished(block=True)


def _dask_workers(client: Any) -> int:
    try:
        return len(client.scheduler_info().get("workers", {})) or 1
    except Exception:  # a client that cannot tell still gets a bounded window
        return 1


def _ingest_batch(payloads: list, overrides: Overrides | None, strict: bool,
                  limits: Limits | None) -> list[IngestResult]:
    """Several uploads in one task: the per-task cost of the cluster is paid once."""
    return [_ingest_one(payload, overrides, strict, limits) for payload in payloads]


def _run_dask(client: Any, items: Iterable[Any], overrides: Overrides | None, strict: bool,
              limits: Limits | None, ordered: bool, in_flight: int, per_task: int):
    """Uploads as tasks of ``per_task`` uploads; results gathered as they complete."""
    from distributed import as_completed

    completed = as_completed(with_results=True, raise_errors=False)
    pending: dict[str, tuple[list, int]] = {}  # task key -> ([(index, source, bytes)], attempts)
    finished: dict[int, tuple[Any, IngestResult]] = {}  # ordered mode: waiting for earlier ones
    sources = enumerate(items)
    exhausted = False
    next_index = 0
    held = 0  # uploads submitted or finished but not yet yielded

    def run(batch: list, payloads: list, attempts: int) -> None:
        # pure=False: identical uploads are still separate uploads
        future = client.submit(_ingest_batch, payloads, overrides, strict, limits, pure=False)
        completed.add(future)
        pending[future.key] = (batch, attempts)

    def fill() -> None:
        nonlocal exhausted, held
        while not exhausted and held < in_flight:
            batch: list = []
            payloads: list = []
            while len(batch) < per_task and held < in_flight:
                item = next(sources, None)
                if item is None:
                    exhausted = True
                    break
                index, source = item
                data = None
                payload: Any = source  # paths, groups and URLs are opened on the workers
                if not isinstance(source, (str, os.PathLike, FileGroup)):
                    data = bytes(source if isinstance(source, (bytes, bytearray, memoryview))
                                 else source.read())
                    try:
                        payload = client.scatter(data, hash=False)
                    except Exception:  # a worker went away while receiving: ship the bytes
                        payload = data
                batch.append((index, source, data))
                payloads.append(payload)
                held += 1
            if batch:
                run(batch, payloads, 1)

    fill()
    while pending:
        future, value = next(completed)
        batch, attempts = pending.pop(future.key)
        future.release()
        if not isinstance(value, list):  # the task died with its workers
            if attempts <= _DASK_RESUBMITS:
                run(batch, [data if data is not None else source for _, source, data in batch],
                    attempts + 1)
                continue
            value = [IngestResult(errors=[EntryError((_label(source),), WorkerLostError(
                f"the upload could not be processed on the cluster after {attempts} attempts "
                f"({type(value).__name__}: {value}); resubmit it", path=_label(source)))])
                for _, source, _ in batch]
        for (index, source, _), result in zip(batch, value):
            if ordered:
                finished[index] = (source, result)
            else:
                held -= 1
                yield source, result
        while ordered and next_index in finished:
            held -= 1
            yield finished.pop(next_index)
            next_index += 1
        fill()
