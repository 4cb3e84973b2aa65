"""Reading part of a record: channels and a start/stop window (ReadRequest).

A window read must give exactly the samples of the whole record that the
documented rule selects: signal ``s`` keeps samples ``i`` with ``i / rate`` in
``[start, stop)`` (``start/stop`` in samples count at the record's highest rate),
and EDF+D windows keep the whole data records they overlap. The expected
values here are cut from whole reads by that rule, computed independently of
``ReadRequest``.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ecgingest
import ecgingest.demo
from ecgingest.errors import CorruptDataError, EcgIngestError, TruncatedError, WindowError
from ecgingest.formats import edf
from ecgingest.formats import wfdb as fw
from ecgingest.formats._base import ByteSource, DecodeContext, ReadRequest
from ecgingest.formats.wfdb import signals as wfdb_signals
from ecgingest.sources import Entry
from test_edf_properties import edf_files
from test_edf_writer import WAnnotation, WFile, simple_file, write_edf
from test_wfdb_writer import RANGES, pack, write_header

pytestmark = pytest.mark.filterwarnings("ignore::ecgingest.errors.EcgWarning")


def _index(t: float, rate: float) -> int:
    return max(math.ceil(t * rate - 1e-6), 0)


def _expected_range(sig_rate: float, n: int, start, stop, unit: str, reference: float
                    ) -> tuple[int, int]:
    scale = 1.0 / reference if unit == "samples" else 1.0
    t0 = (start or 0) * scale
    a = min(_index(t0, sig_rate), n)
    b = n if stop is None else min(_index(stop * scale, sig_rate), n)
    return a, max(a, b)


def _same_signal(got: ecgingest.Signal, whole: ecgingest.Signal, a: int, b: int) -> None:
    assert got.label == whole.label and got.sample_rate == whole.sample_rate
    assert got.first_sample == a
    np.testing.assert_array_equal(got.digital, whole.digital[a:b])
    assert got.digital.dtype == whole.digital.dtype
    np.testing.assert_array_equal(got.physical, whole.physical[a:b])  # NaN where invalid
    inv, whole_inv = got.invalid, whole.invalid
    if whole_inv is None:
        assert inv is None or not inv.any()
    else:
        np.testing.assert_array_equal(np.zeros(b - a, bool) if inv is None else inv,
                                      whole_inv[a:b])
    np.testing.assert_allclose(got.times(), whole.times()[a:b])


# ----------------------------------------------------------------- WFDB


@st.composite
def wfdb_records(draw):
    """A record of one or two signal files: any packed format, samples per frame, skews."""
    nframes = draw(st.integers(1, 90))
    files = {}
    lines = []
    wholes = []
    for f in range(draw(st.integers(1, 2))):
        fmt = draw(st.sampled_from(sorted(RANGES)))
        lo, hi = RANGES[fmt]
        nsig = draw(st.integers(1, 4))
        spf = [draw(st.integers(1, 3)) for _ in range(nsig)]
        signals = []
        for k in spf:
            if fmt == 8:
                steps = draw(st.lists(st.integers(-100, 100), min_size=k * nframes,
                                      max_size=k * nframes))
                arr = draw(st.integers(-500, 500)) + np.cumsum([0] + steps[1:], dtype=np.int64)
            else:
                arr = np.array(draw(st.lists(st.integers(lo, hi), min_size=k * nframes,
                                             max_size=k * nframes)), dtype=np.int64)
            signals.append(arr)
        name = f"r{f}.dat"
        data = pack(fmt, signals, spf)
        if draw(st.booleans()):  # a shorter file: the tail is invalid
            data = data[:draw(st.integers(1, len(data)))]
        files[name] = data
        for k, arr in zip(spf, signals):
            skew = draw(st.sampled_from([0, 0, 1, 2, 5])) if fmt != 8 else 0
            token = f"{fmt}" + (f"x{k}" if k > 1 else "") + (f":{skew}" if skew else "")
            lines.append((name, token, arr))
            wholes.append(arr)
    files["r.hea"] = write_header("r", lines, nframes=nframes, fs=draw(
        st.sampled_from([100.0, 250.0, 360.0])))
    return files


def _wfdb_read(files: dict[str, bytes], request: ReadRequest | None) -> ecgingest.Record:
    pool = {name: Entry.from_bytes(name, data) for name, data in files.items()}
    ctx = DecodeContext("wfdb", request=request)
    [outcome] = list(fw.read_pool(pool, ["r.hea"], ctx))
    if outcome.error is not None:
        raise outcome.error
    assert isinstance(outcome.record, ecgingest.Record)
    return outcome.record


def _windows(draw, whole: ecgingest.Record, reference: float, unit: str):
    n_ref = round(whole.duration * reference)
    if unit == "samples":
        start = draw(st.one_of(st.none(), st.integers(0, n_ref - 1)))
        stop = draw(st.one_of(st.none(), st.integers((start or 0) + 1, n_ref)))
        return start, stop
    start = draw(st.one_of(st.none(), st.floats(0, whole.duration * 0.999)))
    low = (start or 0) + 1e-3
    stop = draw(st.one_of(st.none(), st.floats(low, whole.duration)
                          if low < whole.duration else st.none()))
    return start, stop


def _request(draw, whole: ecgingest.Record):
    """Random channels (indices), window and unit for ``whole``, and the rate a window
    in samples counts in."""
    n = len(whole.signals)
    channels = draw(st.one_of(st.none(), st.lists(st.integers(0, n - 1), min_size=1,
                                                  max_size=n)))
    unit = draw(st.sampled_from(["seconds", "samples"]))
    reference = max(s.sample_rate for s in whole.signals)
    start, stop = _windows(draw, whole, reference, unit)
    return channels, start, stop, unit, reference


@given(wfdb_records(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_wfdb_window_equals_the_whole_record_cut(files, data):
    try:
        whole = _wfdb_read(files, None)
    except EcgIngestError:
        assume(False)  # a record the reader refuses whole (no data for a signal)
    n = len(whole.signals)
    channels, start, stop, unit, reference = _request(data.draw, whole)
    request = ReadRequest.of(channels, start, stop, unit)
    chunk = data.draw(st.sampled_from([7, 64, wfdb_signals.WINDOW_CHUNK_BYTES]))
    saved = wfdb_signals.WINDOW_CHUNK_BYTES
    wfdb_signals.WINDOW_CHUNK_BYTES = chunk  # several chunks even for a short record
    try:
        part = _wfdb_read(files, request)
    finally:
        wfdb_signals.WINDOW_CHUNK_BYTES = saved
    picked = list(range(n)) if channels is None else channels
    assert [s.label for s in part.signals] == [whole.signals[i].label for i in picked]
    for got, i in zip(part.signals, picked):
        sig = whole.signals[i]
        a, b = _expected_range(sig.sample_rate, len(sig), start, stop, unit, reference)
        _same_signal(got, sig, a, b)


def test_wfdb_window_of_a_demo_record_by_label_and_index():
    header = ecgingest.demo.path() / "100_3chan.hea"
    [whole] = ecgingest.read(header)
    [part] = ecgingest.read(header, channels=["ii", 0], start=1.0, stop=2.5)
    assert part.labels == ["II", "I"]
    _same_signal(part.signals[0], whole.signals[1], 360, 900)
    _same_signal(part.signals[1], whole.signals[0], 360, 900)
    assert part.window == (1.0, 2.5)
    [by_samples] = ecgingest.read(header, start=360, stop=900, unit="samples")
    np.testing.assert_array_equal(by_samples.to_numpy(physical=False),
                                  whole.to_numpy(physical=False)[:, 360:900])


def test_channels_alone_keep_whole_signals():
    header = ecgingest.demo.path() / "100_3chan.hea"
    [whole] = ecgingest.read(header)
    [part] = ecgingest.read(header, channels=2)
    assert part.labels == ["III"]
    np.testing.assert_array_equal(part.signals[0].digital, whole.signals[2].digital)
    assert "window" not in part.extras


def _two_segments(directory) -> tuple[np.ndarray, np.ndarray]:
    """A 100 Hz multi-segment record ``m`` of two segments (30 and 40 frames, format 16)
    in ``directory``; the segments' samples."""
    a = np.arange(0, 30, dtype=np.int64)
    b = np.arange(100, 140, dtype=np.int64)
    (directory / "s1.dat").write_bytes(pack(16, [a], [1]))
    (directory / "s1.hea").write_bytes(write_header("s1", [("s1.dat", "16", a)], nframes=30))
    (directory / "s2.dat").write_bytes(pack(16, [b], [1]))
    (directory / "s2.hea").write_bytes(write_header("s2", [("s2.dat", "16", b)], nframes=40))
    (directory / "m.hea").write_text("m/2 1 100 70\ns1 30\ns2 40\n")
    return a, b


def test_multi_segment_window_spans_segments(tmp_path):
    a, b = _two_segments(tmp_path)
    [whole] = ecgingest.read(tmp_path / "m.hea")
    [part] = ecgingest.read(tmp_path / "m.hea", start=0.25, stop=0.5)
    _same_signal(part.signals[0], whole.signals[0], 25, 50)
    np.testing.assert_array_equal(part.signals[0].digital,
                                  np.concatenate([a[25:], b[:20]]))


@st.composite
def multi_segment_records(draw):
    """A fixed- or variable-layout multi-segment record: segments of any packed format
    (a variable layout's segments hold a subset of the signals, with their own gains),
    null segments among them, some listed twice."""
    variable = draw(st.booleans())
    nsig = draw(st.integers(1, 3))
    spf = [draw(st.integers(1, 2)) for _ in range(nsig)]
    labels = [f"s{i}" for i in range(nsig)]
    files: dict[str, bytes] = {}
    lines = []
    segments = []
    for n in range(draw(st.integers(1, 4))):
        frames = draw(st.integers(1, 12))
        if draw(st.integers(0, 4)) == 0:
            lines.append(f"~ {frames}")
            continue
        if segments and draw(st.integers(0, 3)) == 0:  # a segment listed again
            lines.append(draw(st.sampled_from(segments)))
            continue
        fmt = draw(st.sampled_from([16, 80, 212, 310, 24]))
        lo, hi = RANGES[fmt]
        held = (sorted(draw(st.sets(st.integers(0, nsig - 1), min_size=1))) if variable
                else list(range(nsig)))
        arrays = [np.array(draw(st.lists(st.integers(lo, hi), min_size=frames * spf[i],
                                         max_size=frames * spf[i])), dtype=np.int64)
                  for i in held]
        name = f"g{n}"
        files[f"{name}.dat"] = pack(fmt, arrays, [spf[i] for i in held])
        gains = [draw(st.sampled_from(["200/mV", "100(3)/mV"])) if variable else "200/mV"
                 for _ in held]
        files[f"{name}.hea"] = write_header(name, [
            (f"{name}.dat", f"{fmt}" + (f"x{spf[i]}" if spf[i] > 1 else ""), arr, gain,
             labels[i]) for i, arr, gain in zip(held, arrays, gains)], nframes=frames)
        lines.append(f"{name} {frames}")
        segments.append(f"{name} {frames}")
    if not segments:  # a fixed layout needs one segment with signals
        assume(False)
    if variable:
        files["lay.hea"] = (f"lay {nsig} 100 0\n" + "".join(
            f"~ 0{'x' + str(k) if k > 1 else ''} 200/mV 16 0 0 0 0 {label}\n"
            for k, label in zip(spf, labels))).encode()
        lines.insert(0, "lay 0")
    total = sum(int(line.split()[1]) for line in lines)
    files["m.hea"] = (f"m/{len(lines)} {nsig} 100 {total}\n" + "\n".join(lines) + "\n"
                      ).encode()
    return files


def _multi_read(files: dict[str, bytes], request: ReadRequest | None) -> ecgingest.Record:
    pool = {name: Entry.from_bytes(name, data) for name, data in files.items()}
    ctx = DecodeContext("wfdb", request=request)
    outcomes = [o for o in fw.read_pool(pool, sorted(n for n in files if n.endswith(".hea")),
                                        ctx) if o.anchor == "m.hea"]
    [outcome] = outcomes
    if outcome.error is not None:
        raise outcome.error
    assert isinstance(outcome.record, ecgingest.Record)
    return outcome.record


@given(multi_segment_records(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_multi_segment_window_equals_the_whole_record_cut(files, data):
    try:
        whole = _multi_read(files, None)
    except EcgIngestError:
        assume(False)
    n = len(whole.signals)
    channels, start, stop, unit, reference = _request(data.draw, whole)
    part = _multi_read(files, ReadRequest.of(channels, start, stop, unit))
    picked = list(range(n)) if channels is None else channels
    assert part.labels == [whole.signals[i].label for i in picked]
    for got, i in zip(part.signals, picked):
        sig = whole.signals[i]
        a, b = _expected_range(sig.sample_rate, len(sig), start, stop, unit, reference)
        _same_signal(got, sig, a, b)


def test_a_multi_segment_window_reads_only_the_segments_it_overlaps():
    a = np.arange(0, 30, dtype=np.int64)
    b = np.arange(100, 140, dtype=np.int64)
    files = {"s1.dat": pack(16, [a], [1]),
             "s1.hea": write_header("s1", [("s1.dat", "16", a)], nframes=30),
             "s2.dat": b"",  # broken: a window of s1 alone never reads it
             "s2.hea": write_header("s2", [("s2.dat", "16", b)], nframes=40),
             "m.hea": b"m/2 1 100 70\ns1 30\ns2 40\n"}
    part = _multi_read(files, ReadRequest.of(None, 0.05, 0.25))
    np.testing.assert_array_equal(part.signals[0].digital, a[5:25])
    assert not any("s2.dat" in w for w in part.warnings)
    with pytest.raises(TruncatedError, match="s2.dat"):
        _multi_read(files, None)
    over = _multi_read(files, ReadRequest.of(None, 0.25, 0.35))  # as a single segment's
    assert over.signals[0].invalid[5:].all() and any("s2.dat" in w for w in over.warnings)


def test_a_window_of_one_segment_keeps_every_file_of_the_record_as_its_own(tmp_path):
    """Files of segments a window does not read are still the record's: its sources, and
    not skipped entries of the upload."""
    a, b = _two_segments(tmp_path)
    whole = ecgingest.ingest(tmp_path)
    part = ecgingest.ingest(tmp_path, start=0.4, stop=0.5)
    assert part.skipped == whole.skipped
    [record] = part.records
    assert sorted(record.sources) == sorted(whole.records[0].sources)
    np.testing.assert_array_equal(record.signals[0].digital, b[10:20])


# ----------------------------------------------------------------- EDF


class RangedSource(ByteSource):
    """Bytes in memory read as a file on disk is, by ranges only; every range counted."""

    __slots__ = ("ranges",)

    def __init__(self, data: bytes) -> None:
        super().__init__(len(data), data=memoryview(data))
        self.ranges: list[tuple[int, int]] = []

    @property
    def whole(self):
        return None

    def read_into(self, offset, buffer):
        got = super().read_into(offset, buffer)
        self.ranges.append((offset, got))
        return got

    def read(self, offset, size):
        out = super().read(offset, size)
        self.ranges.append((offset, len(out)))
        return out

    @property
    def bytes_read(self) -> int:
        return sum(n for _, n in self.ranges)


@contextlib.contextmanager
def _descriptor_of(raw: bytes) -> Iterator[int]:
    """A descriptor of a temporary file holding ``raw``, open for reading."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "part.edf")
        with open(path, "wb") as fh:
            fh.write(raw)
        fd = os.open(path, os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)


def _edf_part(raw: bytes, request: ReadRequest | None, via: str) -> ecgingest.Record:
    """The part read through the pipeline (bytes in memory), from a file on disk (the
    scattered reads of EDF) or by ranges of bytes in memory (the chunked reads)."""
    if via == "disk":
        with _descriptor_of(raw) as fd:
            return edf.FORMAT.decode_part(ByteSource(len(raw), fd=fd),
                                          DecodeContext("edf", request=request))
    if via == "read":
        if request is None:
            [record] = ecgingest.read(raw)
        else:
            [record] = ecgingest.read(raw, channels=request.channels, start=request.start,
                                      stop=request.stop, unit=request.unit)
        return record
    return edf.FORMAT.decode_part(RangedSource(raw), DecodeContext("edf", request=request))


@given(st.binary(min_size=0, max_size=3000), st.data())
@settings(max_examples=60, deadline=None)
def test_a_byte_source_serves_its_known_head_and_reads_only_the_rest(raw, data):
    """Bytes already read (a detection's head) come from memory; a range past them is
    read from where they end."""
    known = data.draw(st.integers(0, len(raw)))
    offset = data.draw(st.integers(0, len(raw) + 10))
    size = data.draw(st.integers(0, len(raw) + 10))
    reads: list[int] = []

    class Counted(ByteSource):
        __slots__ = ()

        def read_into(self, at, buffer):
            reads.append(at)
            return super().read_into(at, buffer)

    with _descriptor_of(raw) as fd:
        got = Counted(len(raw), fd=fd, head=raw[:known]).read(offset, size)
    assert bytes(got) == raw[offset:offset + size]
    assert all(at >= known for at in reads)
    if offset <= known and min(offset + size, len(raw)) <= known:
        assert reads == []


def _stored_in(spec) -> list[int]:
    """The data record whose annotation slot holds each annotation, in file order."""
    return [k for k in range(spec.n_records) for a in spec.annotations if a.record == k
            for _ in a.texts]


@given(edf_files(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_edf_window_equals_the_whole_record_cut(spec, data):
    """Samples as the whole record cut; annotations those of the data records read
    (the ones the window overlaps) that overlap the window."""
    raw = write_edf(spec)
    try:
        [whole] = ecgingest.read(raw)
    except EcgIngestError:
        return  # a file the reader refuses is refused with a window too (not this test)
    if not whole.signals or whole.duration <= 0:
        return
    n = len(whole.signals)
    channels = data.draw(st.one_of(st.none(), st.lists(st.integers(0, n - 1), min_size=1,
                                                       max_size=n)))
    reference = max(s.sample_rate for s in whole.signals)
    discontinuous = whole.format_detail.endswith("+D")
    unit = data.draw(st.sampled_from(["seconds", "samples"]))
    onsets = whole.data_record_onsets
    if discontinuous and unit == "seconds":
        end = float(onsets[-1]) + spec.duration
        start = data.draw(st.one_of(st.none(), st.floats(0, end * 0.999)))
        low = (start or 0) + 1e-3
        stop = data.draw(st.one_of(st.none(), st.floats(low, end) if low < end else st.none()))
    else:
        start, stop = _windows(data.draw, whole, reference, unit)
    request = ReadRequest.of(channels, start, stop, unit)
    via = data.draw(st.sampled_from(["read", "ranges", "disk"]))
    chunk = data.draw(st.sampled_from([1, 7, 64, edf.WINDOW_CHUNK_BYTES]))
    runs = data.draw(st.sampled_from([1, edf._SCATTER_PIECES]))
    saved = edf.WINDOW_CHUNK_BYTES, edf._SCATTER_PIECES
    # records read a few at a time, or a signal at a time; from disk, scattered reads
    # that start again after each gap larger than the chunk, or chunks of records
    edf.WINDOW_CHUNK_BYTES, edf._SCATTER_PIECES = chunk, runs
    try:
        part = _edf_part(raw, request, via)
    finally:
        edf.WINDOW_CHUNK_BYTES, edf._SCATTER_PIECES = saved
    picked = list(range(n)) if channels is None else channels
    assert part.labels == [whole.signals[i].label for i in picked]
    stored = _stored_in(spec)
    assert len(stored) == len(whole.annotations)
    if request is None or not request.windowed:  # channels alone: every record, as whole
        for got, i in zip(part.signals, picked):
            _same_signal(got, whole.signals[i], 0, len(whole.signals[i]))
        assert part.annotations == whole.annotations
        np.testing.assert_array_equal(part.data_record_onsets, whole.data_record_onsets)
        return
    if discontinuous:
        per_ref = round(spec.duration * reference)
        if unit == "samples":
            r0 = (start or 0) // per_ref
            r1 = len(onsets) if stop is None else min(-(-stop // per_ref), len(onsets))
        else:
            keep = [k for k, o in enumerate(onsets)
                    if o + spec.duration > (start or 0) + 1e-9
                    and (stop is None or o < stop - 1e-9)]
            r0, r1 = (keep[0], keep[-1] + 1) if keep else (0, 0)
        if r1 > r0:
            np.testing.assert_array_equal(part.data_record_onsets, onsets[r0:r1])
            for got, i in zip(part.signals, picked):
                k = len(whole.signals[i]) // len(onsets)
                _same_signal(got, whole.signals[i], r0 * k, r1 * k)
            t0, t1 = float(onsets[r0]), float(onsets[r1 - 1]) + spec.duration
        else:
            assert all(len(s) == 0 for s in part.signals)
            t0 = t1 = 0.0
    else:
        ranges = []
        for sig in whole.signals:
            ranges.append(_expected_range(sig.sample_rate, len(sig), start, stop, unit,
                                          reference))
        for got, i in zip(part.signals, picked):
            _same_signal(got, whole.signals[i], *ranges[i])
        spans = [(a // w.per_record, -(-b // w.per_record))
                 for w, (a, b) in zip(spec.signals, ranges) if b > a]
        r0, r1 = min((a for a, _ in spans), default=0), max((b for _, b in spans), default=0)
        t0 = (start or 0) / (reference if unit == "samples" else 1.0)
        t1 = None if stop is None else stop / (reference if unit == "samples" else 1.0)
    assert [a.text for a in part.annotations] == [
        a.text for a, k in zip(whole.annotations, stored)
        if r0 <= k < r1 and (t1 is None or a.onset < t1) and a.onset + (a.duration or 0.0) >= t0]


def _twelve_leads(n_records: int, *, bdf: bool = False, plus: str | None = None,
                  per_record: int = 50, **kw) -> WFile:
    """A 12-signal file of 1 s data records (per_record samples each)."""
    return simple_file(12, per_record, n_records, bdf=bdf, plus=plus, seed=n_records, **kw)


def _disk_part(tmp_path, raw: bytes, request: ReadRequest | None, *, strict: bool = False,
               name: str = "w.edf") -> ecgingest.Record:
    path = tmp_path / name
    path.write_bytes(raw)
    fd = os.open(path, os.O_RDONLY)
    try:
        return edf.FORMAT.decode_part(ByteSource(len(raw), fd=fd), DecodeContext(
            "edf", request=request, strict=strict))
    finally:
        os.close(fd)


@pytest.mark.parametrize("bdf", [False, True])
@pytest.mark.parametrize("start, stop, unit", [
    (3.0, 7.0, "seconds"),          # whole records
    (150, 350, "samples"),          # whole records, in samples
    (2.5, 3.0, "seconds"),          # ends on a record boundary
    (3.0, 3.02, "seconds"),         # one sample after a boundary
    (2.98, 3.02, "seconds"),        # across a boundary
    (23.5, None, "seconds"),        # the last record
])
@pytest.mark.parametrize("via", ["disk", "ranges"])
def test_windows_at_record_boundaries_read_only_those_records(tmp_path, bdf, start, stop,
                                                              unit, via):
    spec = _twelve_leads(24, bdf=bdf)
    raw = write_edf(spec)
    [whole] = ecgingest.read(raw)
    request = ReadRequest.of(None, start, stop, unit)
    part = (_disk_part(tmp_path, raw, request) if via == "disk"
            else edf.FORMAT.decode_part(source := RangedSource(raw),
                                        DecodeContext("edf", request=request)))
    for got, sig in zip(part.signals, whole.signals):
        a, b = _expected_range(sig.sample_rate, len(sig), start, stop, unit, 50.0)
        _same_signal(got, sig, a, b)
    if via == "ranges":
        bps = 3 if bdf else 2
        header = 256 * 13
        record = 12 * 50 * bps
        a, b = _expected_range(50.0, 24 * 50, start, stop, unit, 50.0)
        records = -(-b // 50) - a // 50
        assert source.bytes_read == header + records * record


def test_channels_in_any_order_and_twice_read_from_disk(tmp_path):
    raw = write_edf(_twelve_leads(24))
    [whole] = ecgingest.read(raw)
    part = _disk_part(tmp_path, raw, ReadRequest.of([7, 2, 7, "ch0"], 4.5, 9.0))
    assert part.labels == ["ch7", "ch2", "ch7", "ch0"]
    for got, i in zip(part.signals, [7, 2, 7, 0]):
        _same_signal(got, whole.signals[i], 225, 450)


@pytest.mark.parametrize("plus", [None, "C", "D"])
def test_a_window_reads_the_window_records_and_a_few_time_stamps(plus):
    """A 10 s window of a 600-record file reads the header, its 10 records and (EDF+) the
    first record's time-keeping TAL; EDF+D a few more by binary search."""
    spec = _twelve_leads(600, plus=plus, per_record=20,
                         record_onsets=[2.0 * k for k in range(600)] if plus == "D" else None)
    raw = write_edf(spec)
    source = RangedSource(raw)
    part = edf.FORMAT.decode_part(source, DecodeContext(
        "edf", request=ReadRequest.of(None, 400.0 if plus == "D" else 200.0, 410.0
                                      if plus == "D" else 210.0)))
    ns = 13 if plus else 12
    record_size = (len(raw) - 256 * (ns + 1)) // 600
    slot = record_size - 12 * 20 * 2
    window_records = 5 if plus == "D" else 10  # EDF+D: 1 s records every 2 s
    probes = {None: 0, "C": 1, "D": 2 * 10 + 2}[plus]  # log2(600) < 10 per end, last, first
    assert source.bytes_read <= 256 * (ns + 1) + window_records * record_size + probes * slot
    assert len(part.signals[0]) == window_records * 20
    if plus == "D":
        np.testing.assert_array_equal(part.data_record_onsets, 2.0 * np.arange(200, 205))


def test_the_last_partial_record_is_never_read(tmp_path):
    spec = _twelve_leads(10, plus="C")
    raw = write_edf(spec) + b"\x01" * 100  # a record cut short after the declared ones
    [whole] = ecgingest.read(raw)
    for via in ("disk", "ranges"):
        request = ReadRequest.of([0, 11], 8.5, None)
        part = (_disk_part(tmp_path, raw, request) if via == "disk"
                else edf.FORMAT.decode_part(RangedSource(raw),
                                            DecodeContext("edf", request=request)))
        _same_signal(part.signals[0], whole.signals[0], 425, 500)
        _same_signal(part.signals[1], whole.signals[11], 425, 500)
        assert any("ignored" in w for w in part.warnings)


def test_a_file_cut_short_while_read_is_a_truncated_error(tmp_path):
    raw = write_edf(_twelve_leads(24))
    path = tmp_path / "w.edf"
    path.write_bytes(raw)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.truncate(path, len(raw) // 2)  # after the size was taken
        with pytest.raises(TruncatedError):
            edf.FORMAT.decode_part(ByteSource(len(raw), fd=fd), DecodeContext(
                "edf", request=ReadRequest.of(None, 20.0, 22.0)))
    finally:
        os.close(fd)


def _discontinuous(onsets: list[float], **kw) -> bytes:
    spec = simple_file(2, 10, len(onsets), plus="D", record_onsets=onsets, **kw)
    return write_edf(spec)


def test_edf_d_onsets_that_go_back_are_all_read_with_a_deviation(tmp_path):
    onsets = [0.0, 5.0, 10.0, 3.0, 20.0, 25.0, 30.0, 35.0]  # record 3 goes back
    raw = _discontinuous(onsets)
    [whole] = ecgingest.read(raw)
    request = ReadRequest.of(None, 19.5, 26.0)
    part = _disk_part(tmp_path, raw, request)
    assert any("increasing onsets" in w for w in part.warnings)
    np.testing.assert_array_equal(part.data_record_onsets, [20.0, 25.0])
    _same_signal(part.signals[0], whole.signals[0], 40, 60)
    with pytest.raises(CorruptDataError, match="increasing onsets"):
        _disk_part(tmp_path, raw, request, strict=True)


def test_edf_d_records_without_a_time_stamp_are_placed_as_a_whole_read_places_them(
        tmp_path):
    raw = bytearray(_discontinuous([0.0, 5.0, 10.0, 15.0, 20.0, 25.0]))
    header = 256 * 4
    record_size = (len(raw) - header) // 6
    slot = header + 3 * record_size + 2 * 10 * 2  # record 3's annotation slot
    raw[slot:slot + record_size - 40] = b"\x00" * (record_size - 40)
    [whole] = ecgingest.read(bytes(raw))
    part = _disk_part(tmp_path, bytes(raw), ReadRequest.of(None, 19.0, 26.0))
    keep = [k for k, o in enumerate(whole.data_record_onsets) if o + 1 > 19.0 and o < 26.0]
    np.testing.assert_array_equal(part.data_record_onsets, whole.data_record_onsets[keep])
    _same_signal(part.signals[1], whole.signals[1], keep[0] * 10, (keep[-1] + 1) * 10)


def test_annotations_are_those_of_the_records_read():
    spec = _twelve_leads(30, plus="C", per_record=10, annotations=[
        WAnnotation(12.5, None, ["in the window, stored in it"], record=12),
        WAnnotation(12.7, None, ["in the window, stored in record 0"], record=0),
        WAnnotation(25.0, None, ["after the window"], record=12)])
    [part] = ecgingest.read(write_edf(spec), start=10, stop=15)
    assert [a.text for a in part.annotations] == ["in the window, stored in it"]


@st.composite
def damaged_edf(draw):
    spec = draw(edf_files())
    raw = bytearray(write_edf(spec))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if raw:
            raw[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut] if draw(st.booleans()) else raw)


@given(damaged_edf(), st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_damaged_files_read_with_windows_give_a_record_or_a_typed_error(raw, data):
    start = data.draw(st.one_of(st.none(), st.floats(0, 30)))
    stop = data.draw(st.one_of(st.none(), st.floats((start or 0) + 1e-3, 60)))
    unit = data.draw(st.sampled_from(["seconds", "samples"]))
    if unit == "samples":
        start = None if start is None else int(start)
        stop = None if stop is None else int(stop) + (start or 0) + 1
    channels = data.draw(st.one_of(st.none(), st.lists(st.integers(0, 4), max_size=3)))
    request = ReadRequest.of(channels or None, start, stop, unit)
    via = data.draw(st.sampled_from(["read", "ranges", "disk"]))
    try:
        _edf_part(raw, request, via)
    except (EcgIngestError, ValueError) as exc:
        assert isinstance(exc, EcgIngestError), exc


# ----------------------------------------------------------------- bad windows


@pytest.mark.parametrize("kwargs, words", [
    ({"start": -1}, "starts at 0"),
    ({"stop": -0.5}, "starts at 0"),
    ({"start": 2, "stop": 2}, "not after"),
    ({"start": 3, "stop": 1}, "not after"),
    ({"start": 1.5, "unit": "samples"}, "whole numbers"),
    ({"start": 1, "unit": "minutes"}, "unit must be"),
    ({"stop": float("inf")}, "finite"),
])
def test_impossible_windows_are_refused_before_reading(kwargs, words):
    with pytest.raises(WindowError, match=words):
        ecgingest.read(b"never read", **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"start": 2.775}, "past the end.*lasts 2.775 s, 999 samples at 360 Hz"),
    ({"start": 1, "stop": 2.8}, "stop=2.8 seconds is past the end"),
    ({"start": 999, "unit": "samples"}, "999 samples at 360 Hz"),
    ({"channels": ["V1"]}, "no channel 'V1'; its channels are 'I', 'II', 'III'"),
    ({"channels": [3]}, "no channel 3: it has 3"),
])
@pytest.mark.parametrize("source", ["wfdb", "zip of wfdb", "edf"])
def test_windows_that_do_not_fit_the_record_say_what_it_has(kwargs, words, source, tmp_path):
    demo = ecgingest.demo.path()
    if source == "edf":
        [rec] = ecgingest.read(demo / "100_3chan.hea")
        path = rec.to_edf(tmp_path / "r.edf", record_duration=999 / 360)
    elif source == "zip of wfdb":
        import zipfile

        path = tmp_path / "r.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name in ("100_3chan.hea", "100_3chan.dat"):
                zf.write(demo / name, name)
    else:
        path = demo / "100_3chan.hea"
    result = ecgingest.ingest(path, **kwargs)
    assert not result.records
    [error] = result.errors
    assert isinstance(error.error, WindowError)
    assert error.error.path is not None
    with pytest.raises(WindowError, match=words):
        ecgingest.read(path, **kwargs)


def test_iter_records_takes_the_same_window():
    header = ecgingest.demo.path() / "100_3chan.hea"
    [whole] = ecgingest.read(header)
    [part] = list(ecgingest.iter_records(header, channels="I", start=0.5, stop=1))
    _same_signal(part.signals[0], whole.signals[0], 180, 360)
