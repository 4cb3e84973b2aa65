"""Bundled demo upload (see data/README.md for sources and licences)."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "data"


def path() -> Path:
    """Directory holding the demo recordings, readable with ``ecgingest.read``."""
    return DEMO_DIR


def archive() -> Path:
    """The same recordings as one ZIP upload (plus a README that is skipped)."""
    return Path(__file__).resolve().parent / "upload.zip"
