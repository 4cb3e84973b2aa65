"""Shared test set-up: hypothesis profiles and the external corpus location."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ecgingest._ext import wfdb as wfdb_kernel

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(params=range(wfdb_kernel.vector_level(-1) + 1), ids=lambda level: f"level{level}")
def wfdb_vector_level(request: pytest.FixtureRequest):
    """Each vector level of the WFDB kernels this machine has (0: scalar), set for the
    test and restored to the highest after it."""
    wfdb_kernel.vector_level(request.param)
    yield request.param
    wfdb_kernel.vector_level(-1)


def corpus_dir() -> Path | None:
    """The shared corpus when ``ECGINGEST_CORPUS`` points at it."""
    value = os.environ.get("ECGINGEST_CORPUS")
    if not value:
        return None
    path = Path(value)
    return path if (path / "records.json").is_file() else None


def corpus_records(fmt: str) -> list[dict]:
    """Entries of ``records.json`` of one format (empty without a corpus)."""
    root = corpus_dir()
    if root is None:
        return []
    return [r for r in json.loads((root / "records.json").read_text()) if r["format"] == fmt]


def read_quietly(source: object) -> list:
    """``ecgingest.read`` with its data warnings silenced (tests that look at outcomes)."""
    import ecgingest
    from ecgingest.errors import EcgWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return ecgingest.read(source)


requires_corpus = pytest.mark.skipif(corpus_dir() is None,
                                     reason="set ECGINGEST_CORPUS to the shared corpus")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


class OneWayStream(io.RawIOBase):
    """A non-seekable stream, as a socket or pipe gives."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[:len(chunk)] = chunk
        return len(chunk)
