"""Small arrays of one upload carved from shared, pooled blocks (see :mod:`ecgingest._memory`,
which owns them; formats import them from here or from there)."""

from ._memory import Arena, block_views

__all__ = ["Arena", "block_views"]
