"""An upload of one file is read by a straight path; its outcome (records, skipped
entries, errors, or the error raised) is exactly that of the general walk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgingest import Limits
from ecgingest.errors import EcgIngestError
from ecgingest.formats._base import ReadRequest
from ecgingest.ingest import _collect, _events, _outcomes, ingest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = {
    "aecg": FIXTURES / "hl7aecg" / "fda_minimum_aecg.xml",
    "muse": FIXTURES / "muse" / "easyrecg_muse_ecg1.xml",
    "scp": FIXTURES / "scp" / "healforce_62.SCP",
    "kardia": FIXTURES / "kardia" / "single_lead.json",
    "cdelta": FIXTURES / "compressed_delta" / "ecg_2lead_raw_8bit.cmdt",
    "dicom": FIXTURES / "dicom" / "mortara_el250_anonymous_ecg.dcm",
}
FILES = {kind: path for kind, path in FILES.items() if path.exists()}
WFDB_HEADER = FIXTURES / "wfdb" / "100_3chan" / "100_3chan.hea"


def _described(outcome) -> tuple:
    """What an outcome holds, comparable: record contents, skips, errors."""
    if isinstance(outcome, BaseException):
        return ("raised", type(outcome), str(outcome))
    records, skipped, errors = outcome
    return ("outcome",
            [(r.name, r.format, repr(r.summary()), list(r.warnings),
              [(s.label, s.sample_rate, np.asarray(s.digital).tobytes()) for s in r.signals])
             for r in records],
            skipped,
            [(e.paths, type(e.error), str(e.error)) for e in errors])


def _both(source_of, *, strict: bool, limits: Limits, request=None) -> tuple:
    """The straight path's and the general walk's outcome of one upload (each given
    a fresh source: a file object is read once)."""
    results = []
    for read in (lambda s: _outcomes(s, strict=strict, limits=limits, request=request,
                                     lazy=False),
                 lambda s: _collect(_events(s, strict=strict, limits=limits,
                                            request=request), strict)):
        try:
            results.append(_described(read(source_of())))
        except (EcgIngestError, OSError) as exc:
            results.append(_described(exc))
    return tuple(results)


def _damaged(data: bytes, edits, cut: int) -> bytes:
    damaged = bytearray(data)
    for position, value in edits:
        damaged[position % len(damaged)] = value
    return bytes(damaged[:max(1, cut % (len(damaged) + 1))])


_LIMITS = st.sampled_from([Limits(), Limits(max_decoded_size=1000),
                           Limits(max_entry_size=3000)])


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(FILES)), st.sampled_from(["bytes", "file", "path", "view"]),
       st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4),
       st.one_of(st.just(1 << 30), st.integers(1, 1 << 20)), st.booleans(), _LIMITS)
def test_one_file_reads_as_the_general_walk_reads_it(tmp_path, kind, form, edits, cut,
                                                     strict, limits):
    data = _damaged(FILES[kind].read_bytes(), edits, cut)
    path = tmp_path / FILES[kind].name
    path.write_bytes(data)
    source_of = {"bytes": lambda: data, "view": lambda: memoryview(data),
                 "file": lambda: io.BytesIO(data), "path": lambda: str(path)}[form]
    straight, general = _both(source_of, strict=strict, limits=limits)
    assert straight == general


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_bytes_of_no_format_are_skipped_or_raise_as_in_the_general_walk(data, strict):
    straight, general = _both(lambda: data, strict=strict, limits=Limits())
    assert straight == general


@pytest.mark.parametrize("stop", [0.01, 1.0])  # within the record, past its end
def test_a_part_of_a_record_is_read_as_in_the_general_walk(stop):
    data = FILES["aecg"].read_bytes()
    request = ReadRequest.of(None, 0.0, stop, "seconds")
    straight, general = _both(lambda: data, strict=False, limits=Limits(), request=request)
    assert straight == general and straight[0] == "outcome" and (straight[1] or straight[3])


def test_archives_and_wfdb_headers_take_the_general_walk_with_the_same_outcome(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind, path in FILES.items():
            archive.writestr(f"d/{kind}/{path.name}", path.read_bytes())
        archive.writestr("notes.txt", b"not an ECG")
    zipped = buffer.getvalue()
    for strict in (False, True):
        straight, general = _both(lambda: zipped, strict=strict, limits=Limits())
        assert straight == general
        straight, general = _both(lambda: str(WFDB_HEADER), strict=strict, limits=Limits())
        assert straight == general and straight[0] == "outcome"


def test_ingest_of_one_file_returns_its_record_and_nothing_else():
    result = ingest(FILES["aecg"].read_bytes())
    assert len(result.records) == 1 and result.skipped == [] and result.errors == []
