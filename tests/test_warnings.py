"""Every format's tolerated deviations reach the caller twice: as texts on
``Record.warnings`` and in one ``EcgWarning`` per record, named by its entries."""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np

import ecgingest
from conftest import FIXTURES
from ecgingest.errors import EcgWarning


def _read_with_warnings(source) -> tuple[list[ecgingest.Record], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = ecgingest.read(source)
    return records, [str(w.message) for w in caught if issubclass(w.category, EcgWarning)]


def test_wfdb_record_with_a_short_signal_file_warns_once_listing_every_deviation():
    folder = FIXTURES / "wfdb" / "100_3chan"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("r/100_3chan.hea", (folder / "100_3chan.hea").read_bytes())
        zf.writestr("r/100_3chan.dat", (folder / "100_3chan.dat").read_bytes()[:-301])
    [record], issued = _read_with_warnings(buf.getvalue())
    assert record.warnings
    assert issued == ["r/100_3chan.hea, r/100_3chan.dat: " + "; ".join(record.warnings)]


def test_kardia_deviation_is_an_ecg_warning():
    rng = np.random.default_rng(3)
    samples = {k: rng.integers(-300, 300, 30).tolist() for k in ("leadI", "leadII")}
    doc = {"id": "k1", "data": {"raw": {"frequency": 300, "mainsFrequency": 60,
                                        "amplitudeResolution": 500, "numLeads": 6,
                                        "samples": samples}}}
    [record], issued = _read_with_warnings(json.dumps(doc).encode())
    assert record.format == "kardia" and record.warnings
    assert issued == ["upload: " + "; ".join(record.warnings)]


def test_clean_files_issue_no_warning():
    records, issued = _read_with_warnings(FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea")
    assert records and not records[0].warnings and issued == []


def test_stream_gap_is_an_ecg_warning_when_the_stream_finishes():
    leads = ["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II"]
    stream = ecgingest.Stream(frame_format="COMPRESSED_DELTA", sample_rate=500.0,
                              lead_codes=leads, processing_mode="PROCESS_ON_FINISH",
                              task_id="t1")
    x = np.random.default_rng(0).integers(-500, 500, size=(2, 20))
    stream.add_frame(0, ecgingest.encode_compressed_delta(x[:, :10], sample_rate=500.0))
    stream.add_frame(30_000, ecgingest.encode_compressed_delta(x[:, 10:], sample_rate=500.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = stream.finish()
    issued = [str(w.message) for w in caught if issubclass(w.category, EcgWarning)]
    assert any("gap" in m for m in record.warnings)
    assert issued == ["t1: " + "; ".join(record.warnings)]
