"""Bounds on what one upload may make ecgingest read, and their running count."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LimitExceededError

__all__ = ["Limits", "ByteBudget", "DEFAULT_LIMITS"]

_MiB = 1024 * 1024
_GiB = 1024 * _MiB


@dataclass(frozen=True)
class Limits:
    """Bounds on what one upload may make ecgingest read or allocate.

    The defaults fit a long Holter recording in an archive while stopping
    decompression bombs early. Raise a bound by passing your own, e.g.
    ``Limits(max_entry_size=8 * 2**30)``.
    """

    max_entries: int = 10_000
    """Entries (files) in one upload, directories included."""
    max_entry_size: int = 2 * _GiB
    """Uncompressed bytes of one entry (or of a standalone upload)."""
    max_total_size: int = 8 * _GiB
    """Uncompressed bytes of all entries together."""
    max_ratio: float = 200.0
    """Uncompressed / compressed bytes of one entry, checked once it exceeds ``ratio_grace``."""
    ratio_grace: int = 16 * _MiB
    """Bytes an entry may expand to before ``max_ratio`` is enforced."""
    max_nesting: int = 0
    """Archives inside archives opened (0: reported as skipped)."""
    max_decoded_size: int = 16 * _GiB
    """Bytes of decoded sample arrays all records of one upload may hold together
    (a signal file used by several records counts once per use)."""
    max_annotations: int = 10_000_000
    """Annotations (EDF+ TALs, WFDB annotations, ...) of one record."""

    def __post_init__(self) -> None:
        for name in ("max_entries", "max_entry_size", "max_total_size", "ratio_grace",
                     "max_nesting", "max_decoded_size", "max_annotations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Limits.{name} must be a non-negative integer, got {value!r}")
        if not self.max_ratio > 0:
            raise ValueError(f"Limits.max_ratio must be positive, got {self.max_ratio!r}")


DEFAULT_LIMITS = Limits()
"""The defaults, built once: ``Limits`` is frozen, so one instance serves every read
that names none (building one validates every field)."""


class ByteBudget:
    """Counts entries and bytes of one upload as they arrive, against ``Limits``."""

    def __init__(self, limits: Limits, *, keep_unclaimed: int | None = None) -> None:
        self.limits = limits
        self.entries = 0
        self.total = 0
        self.keep_unclaimed = keep_unclaimed
        """Bytes of entries no format claims that a walk may hold in memory until the
        records using them are built (None: the archive walker's default); beyond, they
        are read again when used."""

    def add_entry(self, path: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise LimitExceededError(
                f"upload has more than {self.limits.max_entries} entries; raise "
                f"Limits.max_entries to read it", limit="max_entries",
                value=self.limits.max_entries, path=path)

    def check_entry_size(self, path: str, size: int) -> None:
        if size > self.limits.max_entry_size:
            raise LimitExceededError(
                f"entry exceeds {self.limits.max_entry_size} bytes; raise "
                f"Limits.max_entry_size to read it", limit="max_entry_size",
                value=self.limits.max_entry_size, path=path)

    def add_bytes(self, path: str, count: int) -> None:
        self.total += count
        if self.total > self.limits.max_total_size:
            raise LimitExceededError(
                f"upload expands beyond {self.limits.max_total_size} bytes in total; raise "
                f"Limits.max_total_size to read it", limit="max_total_size",
                value=self.limits.max_total_size, path=path)
