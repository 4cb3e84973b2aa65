"""One readings model: every format that stores measurements or statements gives them
under the same keys and shapes (``ecgingest.readings``)."""

from __future__ import annotations

import datetime as dt
import numbers

import pytest

from conftest import corpus_dir, corpus_records, read_quietly
from ecgingest.errors import EcgIngestError
from ecgingest.readings import (
    CONFIRMATIONS,
    GLOBAL_MEASUREMENTS,
    global_measurements,
    interpretation,
)

FORMATS_WITH_READINGS = ("scp", "muse", "philips", "hl7aecg", "dicom")
STATEMENT_KEYS = ("interpretation", "original_interpretation", "universal_statements")


def _records():
    return [pytest.param(r["path"], id=r["path"]) for fmt in FORMATS_WITH_READINGS
            for r in corpus_records(fmt)]


def _check_statements(block: dict) -> None:
    assert block["confirmation"] in CONFIRMATIONS
    assert block["datetime"] is None or isinstance(block["datetime"], dt.datetime)
    for statement in block["statements"]:
        assert isinstance(statement["sequence"], int)
        text = statement["text"]
        assert text is None or (isinstance(text, str) and text == text.strip() != "")


@pytest.mark.parametrize("path", _records())
def test_corpus_readings_use_the_shared_keys_and_shapes(path):
    try:
        [record] = read_quietly(corpus_dir() / path)
    except EcgIngestError as exc:  # a non-conformant corpus file has its own test
        pytest.skip(f"not readable: {exc}")
    measured = dict(record.extras.get("global_measurements") or {})
    measured.pop("vendor", None)
    assert set(measured) <= set(GLOBAL_MEASUREMENTS)
    assert list(measured) == [k for k in GLOBAL_MEASUREMENTS if k in measured]
    assert all(isinstance(v, numbers.Real) for v in measured.values())
    for key in STATEMENT_KEYS:
        if key in record.extras:
            _check_statements(record.extras[key])
    for block in record.extras.get("other_interpretations", []):
        _check_statements(block)


def test_the_same_ecg_gives_the_same_measurements_as_scp_and_as_hl7_aecg():
    """The HL7 example is the SCP-ECG example exported: the intervals SCP stores as fiducial
    points must come out as the ones aECG states."""
    root = corpus_dir()
    if root is None:
        pytest.skip("set ECGINGEST_CORPUS to the shared corpus")
    [scp] = read_quietly(root / "scp/ecgtoolkit_Example.scp")
    [aecg] = read_quietly(root / "hl7aecg/hl7_example_aecg.xml")
    stated = {k: v for k, v in aecg.global_measurements.items() if k != "vendor"}
    assert stated and {k: scp.global_measurements[k] for k in stated} == stated


def test_the_builders_keep_the_model():
    assert global_measurements({"qtc_ms": 410, "pr_interval_ms": None}, {"QTc": "410"}) == {
        "qtc_ms": 410, "vendor": {"QTc": "410"}}
    with pytest.raises(KeyError, match="heart_rate"):
        global_measurements({"heart_rate": 60})
    block = interpretation(["  Sinus rhythm ", "", "Normal ECG\n"], confirmation="original")
    assert block["statements"] == [{"sequence": 1, "text": "Sinus rhythm"},
                                   {"sequence": 2, "text": "Normal ECG"}]
    with pytest.raises(ValueError, match="confirmation"):
        interpretation([], confirmation="maybe")
