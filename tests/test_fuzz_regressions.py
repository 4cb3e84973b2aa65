"""Every input the fuzzer ever broke the promise with, replayed through its target.

Files live in ``fixtures/regressions/<target>/`` (README.md there says what
each one broke). ``expected.json`` in a folder names the error class an
input must end in where that is known (decoder targets: the outcome of
``ecgingest.read`` of the bytes).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

import ecgingest
from ecgingest.errors import EcgWarning

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fuzz package (repo root)
from fuzz.corpus import REGRESSIONS
from fuzz.oracle import FUZZ_LIMITS, outcome_of
from fuzz.targets import TARGETS

INPUTS = sorted(p for p in REGRESSIONS.glob("*/*")
                if p.is_file() and p.name not in ("README.md", "expected.json"))


def _expected(path: Path) -> str | None:
    table = path.parent / "expected.json"
    return json.loads(table.read_text()).get(path.name) if table.is_file() else None


def test_every_regression_input_belongs_to_a_target():
    assert {p.parent.name for p in INPUTS} <= set(TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=[f"{p.parent.name}/{p.name}" for p in INPUTS])
def test_fuzz_finding_ends_in_records_or_a_typed_error(path):
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        TARGETS[path.parent.name].run(data)  # raises Finding (with the cause) when broken
        expected = _expected(path)
        if expected is not None:
            got = outcome_of(lambda: ecgingest.read(data, limits=FUZZ_LIMITS))
            assert (got[0] if expected == "records" else got[1]) == expected, got[:2]
