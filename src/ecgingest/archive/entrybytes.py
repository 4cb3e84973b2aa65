"""What a reader hands the walker for the entry it stands on: bytes produced on request."""

from __future__ import annotations

from typing import Protocol

from ..sources import Failed

__all__ = ["EntryBytes", "Produced"]


class EntryBytes(Protocol):
    """The bytes of the entry a reader is positioned on, produced on request."""

    declared: int | None
    """The size the archive declares (None: not stored)."""

    reads_whole: bool
    """True where reading the entry in one request shows what reading it in steps does
    (its failures and where the reader then stands do not depend on the steps): the
    walker may then read an entry it reads in full anyway at once, without a first
    look at its head."""

    def fill(self, stop: int | None) -> Failed | None:
        """Produce bytes until ``stop`` are held in all (None: to the end of the entry),
        checking limits as they arrive; a :class:`Failed` when the entry is damaged."""

    @property
    def complete(self) -> bool:
        """True once the entry's end was reached (and its checks passed)."""

    def held(self) -> bytes | memoryview:
        """The bytes produced so far (all of them once ``complete``)."""

    def hand_over(self) -> bytes | memoryview:
        """All the bytes, which the reader then no longer holds: a second pass waits on
        this entry until the next one is asked for, and must not keep alive what the
        entry that asked lets go."""

    def skip_rest(self) -> Failed | None:
        """Move past the rest of an entry that is not read now (a reader that must
        decode through it anyway reports its damage here)."""


class Produced:
    """The part every reader's :class:`EntryBytes` shares: a failure, once seen, stays
    the answer; ``_produce`` (the reader's own) runs until it is done or fails."""

    reads_whole = False

    def __init__(self, declared: int | None) -> None:
        self.declared = declared
        self.done = False
        self.failure: Failed | None = None

    @property
    def complete(self) -> bool:
        return self.done

    def fill(self, stop: int | None) -> Failed | None:
        if self.failure is None and not self.done:
            self.failure = self._produce(stop)
        return self.failure

    def skip_rest(self) -> Failed | None:
        return None  # the next entry is reached directly, nothing to decode through

    def _produce(self, stop: int | None) -> Failed | None:
        raise NotImplementedError
