"""Device streams (STREAM.md): start parameters, frames in any order, assembly, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from ecgingest import errors
from ecgingest.stream import LEAD_CODES

RATE = 500.0
STEP_US = 2000  # one sample at 500 Hz
LEADS = ["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "MDC_ECG_LEAD_V1"]


def _stream(**kwargs):
    args = {"frame_format": "COMPRESSED_DELTA", "sample_rate": RATE, "lead_codes": LEADS,
            "processing_mode": "PROCESS_ON_FINISH", **kwargs}
    return ecgingest.Stream(**args)


def _frame(x, rate=RATE, **kwargs):
    return ecgingest.encode_compressed_delta(np.asarray(x), sample_rate=rate, **kwargs)


def _signal(length, leads=3, seed=0):
    return np.random.default_rng(seed).integers(-5000, 5000, size=(leads, length))


def _stack(record):
    return np.stack([s.digital for s in record.signals])


# ---------------------------------------------------------------- start parameters

def test_pinned_constructor_call_is_accepted():
    stream = ecgingest.Stream(frame_format="COMPRESSED_DELTA", sample_rate=500.0,
                              lead_codes=["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II"],
                              processing_mode="PROCESS_ON_FINISH", total_frames=None,
                              digital_minimum=None, digital_maximum=None,
                              physical_minimum=None, physical_maximum=None, device_state=None)
    assert len(stream) == 0 and stream.lead_codes == ("MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II")


@pytest.mark.parametrize("field, kwargs", [
    ("frame_format", {"frame_format": "RAW"}),
    ("processing_mode", {"processing_mode": "PROCESS_ON_THE_FLY"}),
    ("sample_rate", {"sample_rate": 0}),
    ("sample_rate", {"sample_rate": -1.0}),
    ("sample_rate", {"sample_rate": float("nan")}),
    ("sample_rate", {"sample_rate": "500"}),
    ("sample_rate", {"sample_rate": True}),
    ("lead_codes", {"lead_codes": []}),
    ("lead_codes", {"lead_codes": "MDC_ECG_LEAD_I"}),
    ("lead_codes", {"lead_codes": ["MDC_ECG_LEAD_X"]}),
    ("lead_codes", {"lead_codes": ["I"]}),
    ("lead_codes", {"lead_codes": ["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_I"]}),
    ("device_state", {"device_state": "SLEEPING"}),
    ("total_frames", {"total_frames": -1}),
    ("total_frames", {"total_frames": 2**32}),
    ("total_frames", {"total_frames": 1.5}),
    ("total_frames", {"total_frames": True}),
    ("device_id", {"device_id": 12}),
])
def test_invalid_start_parameters_are_stream_errors_naming_the_field(field, kwargs):
    with pytest.raises(errors.StreamError) as info:
        _stream(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("given_fields", [
    ("digital_minimum",),
    ("digital_minimum", "digital_maximum"),
    ("digital_minimum", "digital_maximum", "physical_minimum"),
    ("physical_maximum",),
])
def test_scaling_fields_are_all_four_or_none(given_fields):
    values = {"digital_minimum": -100, "digital_maximum": 100, "physical_minimum": -1.0,
              "physical_maximum": 1.0}
    with pytest.raises(errors.StreamError, match="all four"):
        _stream(**{k: values[k] for k in given_fields})


def test_equal_digital_minimum_and_maximum_is_a_validation_error():
    with pytest.raises(errors.StreamError, match="equals"):
        _stream(digital_minimum=5, digital_maximum=5, physical_minimum=0, physical_maximum=1)


def test_non_finite_scaling_value_is_a_validation_error():
    with pytest.raises(errors.StreamError) as info:
        _stream(digital_minimum=0, digital_maximum=10, physical_minimum=0,
                physical_maximum=float("inf"))
    assert info.value.field == "physical_maximum"


@pytest.mark.parametrize("state", ["WAITING_FOR_START", "RECORDING", "RECORDING_COMPLETED",
                                   "UPLOADING", "UPLOADING_FAILED"])
def test_every_device_state_of_the_spec_is_accepted(state):
    assert _stream(device_state=state).device_state == state


def test_every_allowed_lead_code_names_its_signal():
    codes = list(LEAD_CODES)
    assert len(codes) == 17
    stream = _stream(lead_codes=codes)
    stream.add_frame(0, _frame(np.zeros((17, 3), np.int16)))
    assert stream.finish().labels == ["I", "II", "III", "V1", "V2", "V3", "V4", "V5", "V6",
                                      "aVR", "aVL", "aVF", "ES", "AS", "AI", "A", "D"]


# ------------------------------------------------------------------------ frames

def test_frames_out_of_order_are_assembled_in_timestamp_order():
    x = _signal(30)
    stream = _stream()
    for start in (20, 0, 10):
        stream.add_frame(start * STEP_US, _frame(x[:, start:start + 10]))
    record = stream.finish()
    np.testing.assert_array_equal(_stack(record), x)
    assert record.gaps == [] and record.overlaps == [] and record.warnings == []
    assert record.frame_timestamps_us.tolist() == [0, 20000, 40000]
    assert record.frame_offsets.tolist() == [0, 10, 20]


def test_duplicate_timestamp_is_a_conflict_and_the_first_frame_is_kept():
    x = _signal(10)
    stream = _stream()
    stream.add_frame(0, _frame(x))
    with pytest.raises(errors.DuplicateFrameError) as info:
        stream.add_frame(0, _frame(x + 1))
    assert info.value.field == "timestamp_us"
    assert isinstance(info.value, errors.EcgIngestError)
    np.testing.assert_array_equal(_stack(stream.finish()), x)


@pytest.mark.parametrize("payload, field", [
    (lambda x: _frame(x, rate=250.0), "sample_rate"),
    (lambda x: _frame(x[:2]), "total_channels"),
    (lambda x: _frame(np.vstack([x, x[:1]])), "total_channels"),
    (lambda x: b"0       " + bytes(300), "frame_format"),
    (lambda x: "not bytes", "payload"),
])
def test_mismatched_frames_are_rejected_and_the_stream_is_unchanged(payload, field):
    x = _signal(10)
    stream = _stream()
    stream.add_frame(0, _frame(x))
    before = stream.to_bytes()
    with pytest.raises(errors.FrameMismatchError) as info:
        stream.add_frame(20000, payload(x))
    assert info.value.field == field
    assert stream.to_bytes() == before and len(stream) == 1


def test_corrupt_frame_is_a_typed_format_error_and_the_stream_is_unchanged():
    stream = _stream()
    good = _frame(_signal(10))
    with pytest.raises(errors.FormatError, match="frame at 0 us refused"):
        stream.add_frame(0, good[:-3])
    assert len(stream) == 0
    stream.add_frame(0, good)  # the device can resend it under the same timestamp
    assert len(stream) == 1


@pytest.mark.parametrize("timestamp", [-1, 1.5, "0", None, True])
def test_timestamp_must_be_non_negative_integer_microseconds(timestamp):
    with pytest.raises(errors.StreamError) as info:
        _stream().add_frame(timestamp, _frame(_signal(2)))
    assert info.value.field == "timestamp_us"


def test_frames_may_differ_in_width_coding_and_compression():
    x = _signal(20)
    stream = _stream()
    stream.add_frame(0, _frame(x[:, :10], bits_per_sample=16, coding="TWOS_COMPLEMENT",
                               compression="NONE"))
    stream.add_frame(10 * STEP_US, _frame(x[:, 10:], bits_per_sample=32, coding=2,
                                          compression="ZLIB"))
    record = stream.finish()
    np.testing.assert_array_equal(_stack(record), x)
    assert record.signals[0].digital.dtype == np.int32


# ---------------------------------------------------------------------- finish

def test_gap_between_frames_is_reported_not_hidden():
    x = _signal(20)
    stream = _stream()
    stream.add_frame(0, _frame(x[:, :10]))
    stream.add_frame(15 * STEP_US, _frame(x[:, 10:]))  # 5 samples missing
    record = stream.finish()
    np.testing.assert_array_equal(_stack(record), x)  # concatenated as received
    [gap] = record.gaps
    assert gap["timestamp_us"] == 30000 and gap["expected_timestamp_us"] == 20000
    assert gap["samples"] == 5 and gap["sample_index"] == 10
    assert record.overlaps == []
    assert any("gap" in w for w in record.warnings)


def test_overlap_between_frames_is_reported():
    x = _signal(20)
    stream = _stream()
    stream.add_frame(0, _frame(x[:, :10]))
    stream.add_frame(7 * STEP_US, _frame(x[:, 10:]))
    [overlap] = stream.finish().overlaps
    assert overlap["samples"] == 3 and overlap["duration_us"] == 6000


def test_timing_within_one_sample_is_contiguous():
    x = _signal(20)
    stream = _stream()
    stream.add_frame(0, _frame(x[:, :10]))
    stream.add_frame(10 * STEP_US + STEP_US, _frame(x[:, 10:]))  # exactly one sample late
    record = stream.finish()
    assert record.gaps == [] and record.overlaps == []


def test_total_frames_differing_from_frames_received_is_reported():
    stream = _stream(total_frames=5)
    stream.add_frame(0, _frame(_signal(4)))
    record = stream.finish()
    assert record.frames_expected == 5 and record.frames_received == 1
    assert record.missing_frames == 4
    assert any("total_frames" in w for w in record.warnings)
    exact = _stream(total_frames=1)
    exact.add_frame(0, _frame(_signal(4)))
    assert exact.finish().missing_frames is None


def test_scaling_to_millivolts_follows_the_spec_formula():
    x = np.array([[-2048, 0, 2047, 100]] * 3)
    stream = _stream(digital_minimum=-2048, digital_maximum=2047, physical_minimum=-5.0,
                     physical_maximum=5.0)
    stream.add_frame(0, _frame(x))
    signal = stream.finish().signals[0]
    expected = (x[0] + 2048) * 10.0 / 4095 - 5.0
    np.testing.assert_allclose(signal.physical, expected, rtol=1e-12, atol=1e-12)
    assert signal.units == "mV"


def test_without_scaling_samples_are_already_millivolts():
    stream = _stream()
    stream.add_frame(0, _frame(np.array([[1, 2]] * 3)))
    signal = stream.finish().signals[0]
    assert signal.physical.tolist() == [1.0, 2.0] and signal.units == "mV"


def test_finish_without_frames_is_a_stream_error():
    with pytest.raises(errors.StreamError, match="no frames"):
        _stream().finish()


def test_record_carries_task_device_and_state():
    stream = _stream(task_id="task-7", device_id="dev-1", device_state="UPLOADING")
    stream.add_frame(0, _frame(_signal(3)))
    record = stream.finish()
    assert record.name == "task-7" and record.format == "compressed_delta"
    assert record.metadata.device_id == "dev-1" and record.task_id == "task-7"
    assert record.device_state == "UPLOADING"
    assert record.lead_codes == tuple(LEADS)


@given(data=st.data(), length=st.integers(1, 400), leads=st.integers(1, 4))
def test_random_frame_splits_shuffled_with_duplicates_and_mismatches_reassemble(data, length,
                                                                               leads):
    x = _signal(length, leads, seed=length)
    cuts = sorted(data.draw(st.sets(st.integers(1, length - 1), max_size=12))) if length > 1 \
        else []
    bounds = [0, *cuts, length]
    frames = [(bounds[i] * STEP_US, x[:, bounds[i]:bounds[i + 1]])
              for i in range(len(bounds) - 1)]
    order = data.draw(st.permutations(range(len(frames))))
    stream = _stream(lead_codes=list(LEAD_CODES)[:leads], total_frames=len(frames))
    for index in order:
        timestamp, chunk = frames[index]
        coding = data.draw(st.sampled_from(["TWOS_COMPLEMENT", "DELTA_ZIGZAG",
                                            "DOUBLE_DELTA_ZIGZAG"]))
        stream.add_frame(timestamp, _frame(chunk, coding=coding))
        if data.draw(st.booleans()):  # a resend of the same timestamp
            with pytest.raises(errors.DuplicateFrameError):
                stream.add_frame(timestamp, _frame(chunk + 1))
        if data.draw(st.booleans()):  # a frame from another configuration
            with pytest.raises(errors.FrameMismatchError):
                stream.add_frame(10**9 + timestamp, _frame(np.vstack([chunk, chunk])))
    record = stream.finish()
    np.testing.assert_array_equal(_stack(record), x)
    assert record.gaps == [] and record.overlaps == [] and record.missing_frames is None
    assert record.frame_timestamps_us.tolist() == [t for t, _ in frames]


@given(data=st.data())
def test_dropped_frames_are_reported_as_gaps_of_their_length(data):
    x = _signal(100, 1)
    frames = [(i * 10 * STEP_US, x[:, i * 10:(i + 1) * 10]) for i in range(10)]
    dropped = data.draw(st.sets(st.integers(1, 8), min_size=1, max_size=4))
    stream = _stream(lead_codes=["MDC_ECG_LEAD_II"], total_frames=10)
    for i, (timestamp, chunk) in enumerate(frames):
        if i not in dropped:
            stream.add_frame(timestamp, _frame(chunk))
    record = stream.finish()
    assert sum(g["samples"] for g in record.gaps) == 10 * len(dropped)
    assert record.missing_frames == len(dropped)


# ----------------------------------------------------------------- persistence

def _filled_stream():
    x = _signal(30)
    stream = _stream(total_frames=4, task_id="t1", device_state="RECORDING",
                     digital_minimum=-5000, digital_maximum=5000, physical_minimum=-2.5,
                     physical_maximum=2.5)
    for start in (10, 0, 20):
        stream.add_frame(start * STEP_US, _frame(x[:, start:start + 10]))
    return stream, x


def test_stream_round_trips_through_bytes():
    stream, x = _filled_stream()
    restored = ecgingest.Stream.from_bytes(stream.to_bytes())
    assert restored.parameters == stream.parameters
    assert restored.timestamps == stream.timestamps
    record = restored.finish()
    np.testing.assert_array_equal(_stack(record), x)
    np.testing.assert_array_equal(record.signals[1].physical, stream.finish().signals[1].physical)


def test_stream_resumes_from_a_directory_after_a_restart(tmp_path):
    stream, x = _filled_stream()
    stream.save(tmp_path / "s")
    restored = ecgingest.Stream.load(tmp_path / "s")
    restored.add_frame(30 * STEP_US, _frame(np.zeros((3, 5), np.int16)))
    restored.save(tmp_path / "s")  # only the new frame is written
    again = ecgingest.Stream.load(tmp_path / "s")
    record = again.finish()
    assert len(again) == 4 and record.missing_frames is None
    np.testing.assert_array_equal(_stack(record)[:, :30], x)
    with pytest.raises(errors.DuplicateFrameError):
        again.add_frame(0, _frame(x[:, :10]))


def test_interrupted_frame_write_is_ignored_on_load(tmp_path):
    stream, _ = _filled_stream()
    stream.save(tmp_path)
    (tmp_path / "frames" / "00000000000000099999.cmdt.tmp").write_bytes(b"half")
    assert ecgingest.Stream.load(tmp_path).timestamps == stream.timestamps


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],
    lambda b: b + b"x",
    lambda b: b"NOTASTRM" + b[8:],
    lambda b: b[:12],
    lambda b: b[:16] + b"[" + b[17:],
    lambda b: b[:16] + b"[1]" + b" " * (len(b) - 19),
])
def test_damaged_saved_stream_is_a_stream_error(damage):
    stream, _ = _filled_stream()
    with pytest.raises(errors.EcgIngestError):
        ecgingest.Stream.from_bytes(damage(stream.to_bytes()))


def test_loading_a_directory_without_a_stream_is_a_stream_error(tmp_path):
    with pytest.raises(errors.StreamError, match="stream.json"):
        ecgingest.Stream.load(tmp_path)


_HOSTILE_JSON = st.sampled_from([
    "[" * 100_000 + "]" * 100_000,  # nesting beyond the interpreter's recursion limit
    "[" * 900 + "]" * 900,
    "1" + "0" * 400,  # an integer beyond any float
    "9" * 5000,  # more digits than Python converts
    "1e999", "-1e999", "NaN", "Infinity", "-0", "-1", "0", "2.5", "true", "null", '""',
    '"MDC_ECG_LEAD_I"', '["MDC_ECG_LEAD_I", "MDC_ECG_LEAD_I"]', '[["MDC_ECG_LEAD_I"]]',
    '{"a": 1}', '[1, 2]', '[18446744073709551616, 1]', '[-5, 3]', '"\\ud800"',
])
_PARAMETERS = ("frame_format", "sample_rate", "lead_codes", "processing_mode", "total_frames",
               "device_state", "task_id", "device_id", "digital_minimum", "digital_maximum",
               "physical_minimum", "physical_maximum", "unknown_key")


def _saved(meta_text: str, payloads: list[bytes]) -> bytes:
    import struct

    raw = meta_text.encode()
    return b"ECGSTRM\x01" + struct.pack("<Q", len(raw)) + raw + b"".join(payloads)


def _mutated_payloads(data, payloads: list[bytes]) -> list[bytes]:
    out = [bytearray(p) for p in payloads]
    for _ in range(data.draw(st.integers(0, 3))):
        frame = out[data.draw(st.integers(0, len(out) - 1))]
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    return [bytes(p) for p in out]


def _restore_outcome(restore) -> str:
    """A hostile saved stream restores (and assembles or refuses to) or is a StreamError."""
    try:
        stream = restore()
    except errors.StreamError:
        return "refused"
    try:
        stream.finish()
    except errors.StreamError:
        pass
    return "restored"


@given(data=st.data(), hostile=_HOSTILE_JSON, where=st.sampled_from(_PARAMETERS + (
    "frame timestamp", "frame size", "frame entry", "frames", "parameters", "table")))
def test_hostile_saved_streams_restore_or_raise_stream_errors(data, hostile, where):
    import json

    stream, _ = _filled_stream()
    order = stream.timestamps
    payloads = [stream._frames[t].payload for t in order]
    parameters = dict(stream.parameters)
    table = [[t, len(p)] for t, p in zip(order, payloads)]
    marker = '"@HOSTILE@"'
    if where in _PARAMETERS:
        parameters[where] = "@HOSTILE@"
    elif where.startswith("frame "):
        k = data.draw(st.integers(0, len(table) - 1))
        if where == "frame entry":
            table[k] = "@HOSTILE@"
        else:
            table[k][0 if where == "frame timestamp" else 1] = "@HOSTILE@"
    meta = {"parameters": parameters, "frames": table}
    if where in ("frames", "parameters"):
        meta[where] = "@HOSTILE@"
    text = json.dumps(meta).replace(marker, hostile)
    if where == "table":
        text = hostile
    saved = _saved(text, _mutated_payloads(data, payloads))
    _restore_outcome(lambda: ecgingest.Stream.from_bytes(saved))


@given(data=st.data())
def test_random_mutations_of_a_saved_stream_restore_or_raise_stream_errors(data):
    stream, _ = _filled_stream()
    buf = bytearray(stream.to_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(0, len(buf)))]
    _restore_outcome(lambda: ecgingest.Stream.from_bytes(bytes(buf)))


@given(data=st.data(), hostile=_HOSTILE_JSON, key=st.sampled_from(_PARAMETERS),
       name=st.sampled_from(["00000000000000000000.cmdt", "12.cmdt", "x.cmdt", "-1.cmdt",
                             "9" * 30 + ".cmdt", "00000000000000000000.tmp", "5.cmdt"]),
       as_directory=st.booleans())
def test_hostile_saved_stream_directories_restore_or_raise_stream_errors(
        tmp_path_factory, data, hostile, key, name, as_directory):
    import json

    root = tmp_path_factory.mktemp("saved")
    stream, _ = _filled_stream()
    stream.save(root)
    if data.draw(st.booleans()):
        parameters = dict(stream.parameters)
        parameters[key] = "@HOSTILE@"
        text = json.dumps(parameters).replace('"@HOSTILE@"', hostile)
        (root / "stream.json").write_text(text)
    frames = sorted((root / "frames").iterdir())
    for path, payload in zip(frames, _mutated_payloads(data, [p.read_bytes() for p in frames])):
        path.write_bytes(payload)
    extra = root / "frames" / name
    if not extra.exists():
        if as_directory:
            extra.mkdir()
        else:
            extra.write_bytes(frames[0].read_bytes())
    _restore_outcome(lambda: ecgingest.Stream.load(root))


def test_finish_applies_metadata_overrides_after_validating_them():
    stream = _stream(device_id="dev-1")
    stream.add_frame(0, _frame(_signal(3)))
    record = stream.finish(overrides={"patient_id": "H-1", "device_id": "dev-2"})
    assert record.metadata.patient_id == "H-1" and record.metadata.device_id == "dev-2"
    assert record.metadata.file_values["device_id"] == "dev-1"
    with pytest.raises(errors.OverrideError):
        stream.finish(overrides={"patient_weight": -1})
