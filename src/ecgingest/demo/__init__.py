"""Bundled demo upload (see README.md in this folder for sources and licences)."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "data"


def path() -> Path:
    """Directory holding the demo recordings, readable with ``ecgingest.read``."""
    return DEMO_DIR
