"""Standard lead names: the table of ecgingest.leads and record.signal() lookups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecgingest import Record, Signal
from ecgingest.leads import STANDARD_LEADS, TWELVE_LEADS, standard_label


@pytest.mark.parametrize(("stored", "standard"), [
    ("i", "I"), ("I", "I"), ("ii", "II"), ("III", "III"), ("avr", "aVR"), ("AVL", "aVL"),
    ("aVF", "aVF"), ("v1", "V1"), ("V6", "V6"), ("MDC_ECG_LEAD_II", "II"),
    ("MDC_ECG_LEAD_AVR", "aVR"), ("MDC_ECG_LEAD_V4R", "V4R"), ("Lead I", "I"),
    ("ECG V1", "V1"), ("EKG-II", "II"), ("ECG_aVL", "aVL"), ("leadI", "I"), ("DII", "II"),
    ("C3", "V3"), ("ECG1", "ECG1"), ("ECG 2", "ECG2"), ("CM5", "CM5"), ("cc5", "CC5"),
    ("MLII", "MLII"), ("ML2", "MLII"), ("X", "X"), ("MDC_ECG_LEAD_Z", "Z"),
    ("  V2 ", "V2"),
])
def test_known_lead_names_map_to_the_standard_spelling(stored, standard):
    assert standard_label(stored) == standard


@pytest.mark.parametrize("stored", ["EEG Fp1-Ref", "Resp", "V1-V2", "ECG", "", "Lead",
                                    "SpO2", "EOG left", "V10", "ECG13"])
def test_unknown_names_have_no_standard_label(stored):
    assert standard_label(stored) is None


def test_every_standard_name_maps_to_itself_in_any_case():
    for name in STANDARD_LEADS:
        assert standard_label(name) == name
        assert standard_label(name.lower()) == name
        assert standard_label(f"MDC_ECG_LEAD_{name.upper()}") in (name, None)


@given(st.text(max_size=20))
def test_any_text_gives_a_standard_name_or_none(text):
    assert standard_label(text) in (*STANDARD_LEADS, None)


def _record(labels: list[str]) -> Record:
    return Record("r", "wfdb", "WFDB",
                  [Signal(label, 500.0, np.zeros(3, np.int16)) for label in labels])


def test_signal_standard_label_follows_its_label():
    record = _record(["MDC_ECG_LEAD_I", "avr", "Resp"])
    assert record.standard_labels == ["I", "aVR", None]
    assert record.signals[1].standard_label == "aVR"


def test_record_signal_finds_stored_labels_case_insensitively_and_standard_names():
    record = _record(["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "avr", "Resp"])
    assert record.signal("MDC_ECG_LEAD_II") is record.signals[1]
    assert record.signal("mdc_ecg_lead_ii") is record.signals[1]
    assert record.signal("II") is record.signals[1]
    assert record.signal("aVR") is record.signals[2]
    assert record.signal("resp") is record.signals[3]


def test_stored_label_wins_over_a_standard_name():
    # "1" is lead I by its standard name, but a signal stored as "I" is asked for first
    record = _record(["1", "I"])
    assert record.signal("I") is record.signals[1]


def test_missing_signal_key_error_lists_the_labels():
    record = _record(["I", "II", "V1"])
    with pytest.raises(KeyError) as info:
        record.signal("V5")
    message = str(info.value)
    assert "'V5'" in message and "'I', 'II', 'V1'" in message


def test_twelve_leads_are_the_conventional_order():
    assert TWELVE_LEADS == ("I", "II", "III", "aVR", "aVL", "aVF",
                            "V1", "V2", "V3", "V4", "V5", "V6")
