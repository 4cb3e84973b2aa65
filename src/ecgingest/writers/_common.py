"""What both writers share: the error for records a format cannot hold."""

from __future__ import annotations

from ..errors import UnrepresentableError

__all__ = ["UnrepresentableError"]


