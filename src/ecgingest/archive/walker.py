"""The walk of one archive: names, limits, links and archives inside archives.

Every reader (libarchive, the ZIP, 7-Zip and RAR 4 fallbacks) classifies
each entry through :class:`Walker` and accounts the bytes it produces there,
so the limits and name rules are the same whatever library decodes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .._arena import Arena
from ..detect import detect
from ..errors import ArchiveError, EcgIngestError, LimitExceededError, UnsafeEntryError
from ..limits import ByteBudget, Limits
from ..sources import Entry, Failed, Skipped, normalise_entry_name
from .blobs import Blob
from .kinds import HEAD_BYTES, KIND_NAMES, archive_kind
from .libarchive import walk_libarchive
from .rar4 import walk_rar4

__all__ = ["Walker", "walk_kind"]


class Walker:
    """State shared by the entry iterators of one archive: limits, links, nesting."""

    def __init__(self, label: str, limits: Limits, budget: ByteBudget, depth: int,
                 prefix: str) -> None:
        self.label = label
        self.limits = limits
        self.budget = budget
        self.depth = depth
        self.prefix = prefix
        self.links: set[str] = set()
        self.arena = Arena()  # entry bytes: all released when the upload is done

    # -- names -------------------------------------------------------------
    def classify(self, raw: str, *, is_dir: bool, link: str | None,
                 other: bool) -> Skipped | str | None:
        """Normalised path of a regular file, a Skipped report, or None (directory)."""
        shown = self.prefix + raw
        self.budget.add_entry(shown)
        if is_dir:
            return None
        try:
            path = normalise_entry_name(raw)
        except UnsafeEntryError as exc:
            return Skipped(shown, exc.message)
        if link is not None:
            self.links.add(path)
            return Skipped(shown, f"{link} (links are never followed)")
        if other:
            return Skipped(shown, "not a regular file (device, FIFO or socket)")
        if not self.links:
            return self.prefix + path
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.links:
                return Skipped(shown, "path passes through a link entry of the archive "
                                      "(links are never followed)")
        return self.prefix + path

    # -- sizes -------------------------------------------------------------
    def check_growth(self, path: str, produced: int, compressed: int | None) -> None:
        """Per-entry size and expansion ratio, checked as blocks arrive (fatal)."""
        self.budget.check_entry_size(path, produced)
        if compressed is not None and produced > self.limits.ratio_grace:
            ratio = produced / max(1, compressed)
            if ratio > self.limits.max_ratio:
                raise LimitExceededError(
                    f"entry expands more than {self.limits.max_ratio:g}:1 (a decompression "
                    f"bomb?); raise Limits.max_ratio or Limits.ratio_grace to read it",
                    limit="max_ratio", value=self.limits.max_ratio, path=path)

    def grew(self, path: str, produced: int, compressed: int | None, added: int) -> None:
        """Account ``added`` new bytes of an entry now ``produced`` long (limits are fatal)."""
        self.check_growth(path, produced, compressed)
        self.budget.add_bytes(path, added)

    # -- nesting -----------------------------------------------------------
    def finish_entry(self, path: str, data: bytes | memoryview
                     ) -> Iterator[Entry | Skipped | Failed]:
        """Yield a complete entry, or open it as a nested archive when allowed."""
        yield from self.nested(Entry.from_bytes(path, data))

    def nested(self, entry: Entry) -> Iterator[Entry | Skipped | Failed]:
        path = entry.path
        kind = archive_kind(entry.head(HEAD_BYTES))
        if kind is None or _claimed_by_format(entry):
            yield entry
            return
        note = (f"{KIND_NAMES[kind]} archive inside the archive (not opened; pass "
                f"Limits(max_nesting={self.depth + 1}) to read it)")
        if self.depth >= self.limits.max_nesting:
            # Still offered as data: a WFDB signal file may start with archive magic.
            entry.nested_note = note
            yield entry
            return
        inner = Walker(path, self.limits, self.budget, self.depth + 1, path + "/")
        file = getattr(entry, "_file", None)
        blob = (Blob(path, path=os.fspath(file)) if file is not None and entry._data is None
                else Blob(path, data=entry.read()))
        items = walk_kind(kind, blob, inner)
        try:
            first = next(items, None)
        except ArchiveError:  # magic bytes only: it does not open, so it is data
            yield entry
            return
        except LimitExceededError:
            raise
        except EcgIngestError as exc:
            yield Failed(path, exc)
            return
        if first is None:
            return
        yield first
        try:
            yield from items
        except LimitExceededError:
            raise  # budget-wide limits stop the whole upload
        except EcgIngestError as exc:  # a broken inner archive fails only itself
            yield Failed(exc.path or path, exc)


def _claimed_by_format(entry: Entry) -> bool:
    return detect(entry) is not None  # detect runs the sniffers, which never raise out


def walk_kind(kind: str, blob: Blob, walker: Walker) -> Iterator[Entry | Skipped | Failed]:
    if kind == "rar4":
        yield from walk_rar4(blob, walker)
    else:
        yield from walk_libarchive(kind, blob, walker)
