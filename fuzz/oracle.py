"""The verdict on one input: records or a typed error, and nothing intact lost."""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ecgingest.errors import EcgIngestError
from ecgingest.limits import Limits

__all__ = ["Finding", "FUZZ_LIMITS", "typed", "outcome_of", "record_digest", "checked_digest",
           "signature"]

_MiB = 1024 * 1024
FUZZ_LIMITS = Limits(max_entries=256, max_entry_size=32 * _MiB, max_total_size=64 * _MiB,
                     ratio_grace=4 * _MiB, max_decoded_size=256 * _MiB,
                     max_annotations=200_000)
"""Tight bounds, so a hostile input ends in LimitExceededError quickly; an input that
grows memory past them anyway is a finding (libFuzzer's RSS limit catches it)."""

T = TypeVar("T")


class Finding(AssertionError):
    """The input broke the promise. ``kind``: untyped, lost, mismatch, hang."""

    def __init__(self, kind: str, message: str, key: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.key = key  # tells findings of one kind and place apart (e.g. the error raised)


def typed(call: Callable[[], T]) -> T | EcgIngestError:
    """``call()``'s value, or the EcgIngestError it raised; anything else is a Finding."""
    try:
        return call()
    except EcgIngestError as exc:
        return exc
    except Finding:
        raise
    except Exception as exc:
        raise Finding("untyped", f"{type(exc).__name__}: {str(exc)[:300]}") from exc


def record_digest(record: Any) -> tuple:
    """What must be equal between two readings of one record: names, formats, digital samples."""
    signals = []
    for signal in record.signals:
        digital = np.asarray(signal.digital)
        signals.append((signal.label, float(signal.sample_rate), digital.shape,
                        hashlib.sha1(np.ascontiguousarray(digital).tobytes()).hexdigest()))
        np.asarray(signal.physical)  # computing the physical values must not fail either
    return (record.format, tuple(signals))


def checked_digest(record: Any) -> tuple:
    """``record_digest``, where any exception (typed or not) from a delivered record is a
    Finding: a record handed out must be readable."""
    try:
        return record_digest(record)
    except Exception as exc:
        raise Finding("untyped", f"a delivered record cannot be read: {type(exc).__name__}: "
                      f"{str(exc)[:300]}") from exc


def outcome_of(call: Callable[[], list]) -> tuple:
    """A comparable outcome: ("records", digests...) or ("error", error class name)."""
    result = typed(call)
    if isinstance(result, EcgIngestError):
        return ("error", type(result).__name__)
    return ("records",) + tuple(sorted(checked_digest(r) for r in result))


def signature(exc: BaseException) -> str:
    """Finding class for deduplication: kind, root exception type and innermost project frame."""
    kind = getattr(exc, "kind", "crash")
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    frames = traceback.extract_tb(root.__traceback__)
    where = "?"
    for frame in reversed(frames):
        if "ecgingest" in frame.filename or "/fuzz/" in frame.filename:
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.name}"
            break
    key = getattr(exc, "key", "")
    return f"{kind}/{type(root).__name__}/{where}" + (f"/{key}" if key else "")
