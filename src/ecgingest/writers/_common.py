"""What both writers share: the error for records a format cannot hold."""

from __future__ import annotations

from ..errors import EcgIngestError

__all__ = ["UnrepresentableError"]


class UnrepresentableError(EcgIngestError, ValueError):
    """The record cannot be written in the asked format without changing it
    (values outside the format's range, rates or lengths it cannot hold, a
    label too long for the field); the message says which and why."""
