"""A test-side EDF/EDF+/BDF/BDF+ writer, and proof that established readers agree with it.

The writer is deliberately independent of ``ecgingest``: it assembles bytes
field by field from EDF.md so round-trip tests compare the decoder against
the specification, not against itself. ``test_writer_output_is_read_by_pyedflib``
checks the writer against pyedflib, the corpus reference reader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class WSignal:
    """One ordinary signal for the writer: digital samples, n per record, calibration."""

    label: str
    per_record: int
    digital: np.ndarray
    physical_min: float = -1000.0
    physical_max: float = 1000.0
    digital_min: int = -32768
    digital_max: int = 32767
    units: str = "uV"
    transducer: str = ""
    prefiltering: str = ""


@dataclass
class WAnnotation:
    onset: float
    duration: float | None
    texts: list[str]
    record: int = 0  # the data record whose annotation slot carries it


@dataclass
class WFile:
    signals: list[WSignal]
    n_records: int
    duration: float = 1.0
    bdf: bool = False
    plus: str | None = "C"  # "C", "D" or None (plain EDF/BDF)
    annotations: list[WAnnotation] = field(default_factory=list)
    record_onsets: list[float] | None = None  # EDF+D: onset of every record (before subsecond)
    subsecond: float = 0.0
    start: dt.datetime = dt.datetime(2021, 3, 4, 5, 6, 7)
    patient: str = "X X X X"
    recording: str | None = None
    annotation_slot: int | None = None  # samples per record of the annotation signal
    n_records_field: str | None = None


def _field(value: str | bytes, width: int) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    assert len(raw) <= width, (value, width)
    return raw.ljust(width, b" ")


def _num(value: float) -> str:
    text = f"{value:.8g}" if not float(value).is_integer() else str(int(value))
    return text[:8]


def _stamp(seconds: float) -> bytes:
    text = f"{seconds:+.7f}".rstrip("0").rstrip(".")
    return text.encode()


def write_edf(spec: WFile) -> bytes:
    """Bytes of the described file (EDF+/BDF+ add one annotation signal at the end)."""
    bps = 3 if spec.bdf else 2
    kind = "BDF" if spec.bdf else "EDF"
    slots: list[bytearray] = []
    has_ann = spec.plus is not None
    if has_ann:
        for k in range(spec.n_records):
            onset = (spec.record_onsets[k] if spec.record_onsets is not None
                     else k * spec.duration) + spec.subsecond
            tal = bytearray(_stamp(onset) + b"\x14\x14\x00")
            for a in spec.annotations:
                if a.record == k:
                    tal += _stamp(a.onset + spec.subsecond)
                    if a.duration is not None:
                        tal += b"\x15" + f"{a.duration:.7f}".rstrip("0").rstrip(".").encode()
                    tal += b"\x14" + b"".join(t.encode("utf-8") + b"\x14" for t in a.texts)
                    tal += b"\x00"
            slots.append(tal)
        need = max(len(s) for s in slots) + 1 if slots else 2
        n_ann = spec.annotation_slot or -(-need // bps)
        for s in slots:
            assert len(s) < n_ann * bps, "annotation slot too small"
            s.extend(b"\x00" * (n_ann * bps - len(s)))
    rows = [(s.label, s.transducer, s.units, _num(s.physical_min), _num(s.physical_max),
             str(s.digital_min), str(s.digital_max), s.prefiltering, str(s.per_record))
            for s in spec.signals]
    if has_ann:
        lim = 8388608 if spec.bdf else 32768
        rows.append((f"{kind} Annotations", "", "", "-1", "1", str(-lim), str(lim - 1), "",
                     str(n_ann)))
    ns = len(rows)
    start = spec.start
    recording = spec.recording
    if recording is None:
        recording = f"Startdate {start:%d}-{start:%b}-{start:%Y} X X X".upper().replace(
            "STARTDATE", "Startdate") if has_ann else "plain recording"
    yy = start.year % 100
    reserved = f"{kind}+{spec.plus}" if has_ann else ("24BIT" if spec.bdf else "")
    header = b"".join([
        b"\xffBIOSEMI" if spec.bdf else _field("0", 8),
        _field(spec.patient, 80),
        _field(recording, 80),
        _field(f"{start.day:02d}.{start.month:02d}.{yy:02d}", 8),
        _field(f"{start.hour:02d}.{start.minute:02d}.{start.second:02d}", 8),
        _field(str(256 * (ns + 1)), 8),
        _field(reserved, 44),
        _field(spec.n_records_field or str(spec.n_records), 8),
        _field(_num(spec.duration), 8),
        _field(str(ns), 4),
    ])
    widths = (16, 80, 8, 8, 8, 8, 8, 80, 8)
    for column, width in enumerate(widths):
        header += b"".join(_field(row[column], width) for row in rows)
    header += b" " * (32 * ns)
    assert len(header) == 256 * (ns + 1)
    body = bytearray()
    for k in range(spec.n_records):
        for s in spec.signals:
            chunk = np.asarray(s.digital[k * s.per_record:(k + 1) * s.per_record], dtype="<i4")
            if spec.bdf:
                raw = chunk.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
                body += raw.tobytes()
            else:
                body += chunk.astype("<i2").tobytes()
        if has_ann:
            body += slots[k]
    return header + bytes(body)


def simple_file(n_signals: int = 2, per_record: int = 10, n_records: int = 3, *,
                bdf: bool = False, plus: str | None = "C", seed: int = 0, **kw) -> WFile:
    """A small valid file description with random samples."""
    rng = np.random.default_rng(seed)
    hi = 2**23 if bdf else 2**15
    signals = [WSignal(f"ch{i}", per_record,
                       rng.integers(-hi, hi, per_record * n_records),
                       digital_min=-hi, digital_max=hi - 1)
               for i in range(n_signals)]
    return WFile(signals, n_records, bdf=bdf, plus=plus, **kw)


@pytest.mark.parametrize("bdf", [False, True])
def test_writer_output_is_read_by_pyedflib(tmp_path, bdf):
    pyedflib = pytest.importorskip("pyedflib")
    spec = simple_file(3, 25, 4, bdf=bdf, annotations=[WAnnotation(1.5, 0.25, ["beat"], 1)])
    path = tmp_path / ("w.bdf" if bdf else "w.edf")
    path.write_bytes(write_edf(spec))
    with pyedflib.EdfReader(str(path)) as reader:
        assert reader.signals_in_file == 3
        for i, s in enumerate(spec.signals):
            np.testing.assert_array_equal(reader.readSignal(i, digital=True), s.digital)
        onsets, durations, texts = reader.readAnnotations()
        assert list(texts) == ["beat"] and onsets[0] == 1.5 and durations[0] == 0.25
