"""Targets for the two stateful APIs: Stream (device frames) and ChunkedUpload.

The input is a program: each byte picks the next operation or argument
(``Reader``), so the engines' byte mutations become different call
sequences. A small model of what the object must hold checks every step.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np

import ecgingest
from ecgingest.errors import DuplicateFrameError, EcgIngestError, StreamError, UploadError

from .corpus import FIXTURES
from .oracle import FUZZ_LIMITS, Finding, outcome_of, typed

__all__ = ["Reader", "run_stream", "run_chunked", "stream_seeds", "chunked_seeds"]


class Reader:
    """Draws small integers and byte strings from the input; zeros once it is used up."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width).ljust(width, b"\0"), "little")

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def pick(self, options):
        return options[self.byte() % len(options)]


# ----------------------------------------------------------------- Stream
LEADS = ("MDC_ECG_LEAD_I", "MDC_ECG_LEAD_II", "MDC_ECG_LEAD_III", "MDC_ECG_LEAD_V1")
RATES = (250.0, 500.0, 300.0, 1000.0)
BAD_PARAMETERS: tuple[tuple[str, object], ...] = (
    ("sample_rate", float("nan")), ("sample_rate", float("inf")), ("sample_rate", -1.0),
    ("sample_rate", 0), ("sample_rate", "500"), ("sample_rate", True), ("sample_rate", None),
    ("lead_codes", []), ("lead_codes", "MDC_ECG_LEAD_I"), ("lead_codes", ["MDC_ECG_LEAD_I"] * 2),
    ("lead_codes", ["MDC_ECG_LEAD_X"]), ("lead_codes", [1]), ("lead_codes", None),
    ("lead_codes", ["MDC_ECG_LEAD_I"] * 256), ("frame_format", "RAW"), ("frame_format", None),
    ("processing_mode", "STREAMING"), ("digital_minimum", 0), ("digital_minimum", 10**400),
    ("sample_rate", 10**400), ("sample_rate", -(10**400)), ("total_frames", -1),
    ("total_frames", 2**32), ("total_frames", True), ("total_frames", 1.5),
    ("total_frames", "3"), ("device_state", "BROKEN"), ("task_id", 5), ("device_id", b"x"),
)
"""Start parameters the spec (STREAM.md) forbids: each must end in StreamError."""
BAD_TIMESTAMPS = (-1, 2**63, True, 1.5, "0", None)
BAD_PAYLOADS = (None, 5, "cMdT", [1, 2, 3], 3.0)


def _stream_parameters(r: Reader) -> tuple[dict, bool]:
    """Start parameters, and whether they are valid."""
    count = 1 + r.byte() % 3
    params: dict = {"frame_format": "COMPRESSED_DELTA", "sample_rate": r.pick(RATES),
                    "lead_codes": list(LEADS[:count]), "task_id": "t"}
    if r.byte() % 4 == 0:
        params["total_frames"] = r.byte() % 6
    if r.byte() % 4 == 0:
        params.update(digital_minimum=-2048, digital_maximum=2047, physical_minimum=-5.0,
                      physical_maximum=5.0)
    if r.byte() % 6 == 0:
        name, value = r.pick(BAD_PARAMETERS)
        if name == "digital_minimum":  # the scaling quartet, degenerate or out of range
            params.update(digital_minimum=value, digital_maximum=0, physical_minimum=0.0,
                          physical_maximum=1.0)
        else:
            params[name] = value
        return params, False
    return params, True


def _frame(r: Reader, stream: ecgingest.Stream) -> tuple[bytes, bool]:
    """A frame payload, and whether it must be accepted (untouched and matching the stream)."""
    channels = len(stream.lead_codes)
    rate = stream.sample_rate
    matches = True
    shape = r.byte()
    if shape % 8 == 0:
        channels, matches = channels + 1, False
    elif shape % 8 == 1 and channels > 1:
        channels, matches = channels - 1, False
    if r.byte() % 8 == 0:
        rate, matches = rate * 2, False
    bits = r.pick((8, 16, 24, 32))
    count = 1 + r.byte() % 48
    raw = np.frombuffer(r.take(channels * count).ljust(channels * count, b"\x01"), np.int8)
    samples = np.cumsum(raw.reshape(channels, count).astype(np.int64), axis=1) // 2
    top = 2 ** (bits - 1) - 1
    samples = np.clip(samples, -top - 1, top)
    payload = ecgingest.encode_compressed_delta(samples, sample_rate=rate, bits_per_sample=bits,
                                                coding=r.byte() % 3, compression=r.byte() % 3)
    if r.byte() % 3 == 0:  # damage: one byte anywhere, or a cut
        damaged = bytearray(payload)
        at = r.number(2) % len(damaged)
        if r.byte() % 2:
            damaged[at] = r.byte()
        else:
            del damaged[at:]
        if bytes(damaged) != payload:
            return bytes(damaged), False
    return payload, matches


def _frame_samples(payload: bytes) -> np.ndarray:
    """The samples of one accepted frame, read on the ordinary upload path."""
    result = typed(lambda: ecgingest.read(payload, strict=True))
    if isinstance(result, EcgIngestError):
        raise Finding("mismatch", f"Stream accepted a frame that read(strict=True) refuses: "
                      f"{type(result).__name__}: {result}")
    [record] = result
    return np.stack([np.asarray(s.digital, dtype=np.int64) for s in record.signals])


def _check_unchanged(stream: ecgingest.Stream, model: dict, what: str) -> None:
    if stream.timestamps != sorted(model) or len(stream) != len(model):
        raise Finding("lost", f"a refused {what} changed the stream: holds {stream.timestamps}, "
                      f"expected {sorted(model)}")


def _add(stream: ecgingest.Stream, model: dict, timestamp, payload, must_accept: bool) -> None:
    duplicate = isinstance(timestamp, int) and not isinstance(timestamp, bool) \
        and timestamp in model
    outcome = typed(lambda: stream.add_frame(timestamp, payload))
    if isinstance(outcome, EcgIngestError):
        _check_unchanged(stream, model, "frame")
        if duplicate and not isinstance(outcome, DuplicateFrameError):
            raise Finding("mismatch", f"a duplicate timestamp raised {type(outcome).__name__}, "
                          "not DuplicateFrameError")
        if must_accept and not duplicate:
            raise Finding("lost", f"a valid matching frame was refused: "
                          f"{type(outcome).__name__}: {outcome}")
        return
    if duplicate:
        raise Finding("lost", f"a second frame at timestamp {timestamp} was accepted")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise Finding("mismatch", f"a {type(payload).__name__} payload was accepted")
    if not isinstance(timestamp, (int, np.integer)) or isinstance(timestamp, bool):
        raise Finding("mismatch", f"timestamp {timestamp!r} was accepted")
    samples = _frame_samples(bytes(payload))
    if samples.shape[0] != len(stream.lead_codes):
        raise Finding("mismatch", f"a frame of {samples.shape[0]} channels was accepted by a "
                      f"stream of {len(stream.lead_codes)} leads")
    model[int(timestamp)] = samples


def _finish(stream: ecgingest.Stream, model: dict) -> None:
    outcome = typed(stream.finish)
    if not model:
        if not isinstance(outcome, StreamError):
            raise Finding("mismatch", f"finish() of an empty stream gave {outcome!r}")
        return
    if isinstance(outcome, EcgIngestError):
        raise Finding("lost", f"finish() refused {len(model)} accepted frames: "
                      f"{type(outcome).__name__}: {outcome}")
    expected = np.concatenate([model[t] for t in sorted(model)], axis=1)
    got = np.stack([np.asarray(s.digital, dtype=np.int64) for s in outcome.signals])
    if got.shape != expected.shape or not np.array_equal(got, expected):
        raise Finding("lost", f"finish() samples differ from the accepted frames in timestamp "
                      f"order (shape {got.shape} vs {expected.shape})")
    if outcome.extras["frames_received"] != len(model):
        raise Finding("mismatch", "frames_received differs from the frames accepted")
    total = stream.total_frames
    if total is not None and outcome.extras["missing_frames"] != (
            None if total == len(model) else total - len(model)):
        raise Finding("mismatch", "missing_frames does not follow total_frames")


def _round_trip(stream: ecgingest.Stream, r: Reader) -> None:
    saved = stream.to_bytes()
    restored = typed(lambda: ecgingest.Stream.from_bytes(saved))
    if isinstance(restored, EcgIngestError):
        raise Finding("lost", f"a saved stream does not restore: {type(restored).__name__}: "
                      f"{restored}")
    if restored.timestamps != stream.timestamps or restored.parameters != stream.parameters:
        raise Finding("lost", "a restored stream differs from the saved one")
    if r.byte() % 2:  # a damaged save must be refused with a typed error, never crash
        damaged = bytearray(saved)
        at = r.number(2) % len(damaged)
        if r.byte() % 2:
            damaged[at] = r.byte()
        else:
            damaged[at:at] = r.take(1 + r.byte() % 8)
        typed(lambda: ecgingest.Stream.from_bytes(bytes(damaged)))


HOSTILE_JSON: tuple[bytes, ...] = (
    b"[" * 50_000 + b"]" * 50_000,
    b'{"parameters": ' + b"{" * 0 + b'{"a": ' * 20_000 + b"1" + b"}" * 20_000 + b', "frames": []}',
    b"1e999", b"NaN", b"-Infinity", b'"\\ud800"', b"\xff\xfe", b"null", b"[]", b"{}",
)
"""Saved-stream tables that no save ever writes: deep nesting, non-finite numbers, bad text."""
HOSTILE_VALUES: tuple[object, ...] = (10**400, -(10**400), 1e308, "NaN", [[["x"]]], {"a": 1},
                                      None, True, "", "x" * 5000, -1, 2**64)


def _hostile_saved(stream: ecgingest.Stream, r: Reader) -> None:
    """A saved stream whose table is hostile: a typed error or a stream, never a crash."""
    import json
    import struct

    if r.byte() % 2:
        table = r.pick(HOSTILE_JSON)
    else:
        params = stream.parameters
        key = r.pick(sorted(params) + ["unknown"])
        params[key] = r.pick(HOSTILE_VALUES)
        frames: object = [[r.pick(HOSTILE_VALUES), r.byte()]] if r.byte() % 2 else []
        table = json.dumps({"parameters": params, "frames": frames}).encode()
    saved = b"ECGSTRM\x01" + struct.pack("<Q", len(table)) + table
    typed(lambda: ecgingest.Stream.from_bytes(saved))


def run_stream(data: bytes) -> None:
    """Drive one Stream through the operations the input spells."""
    r = Reader(data)
    params, valid = _stream_parameters(r)
    stream = typed(lambda: ecgingest.Stream(**params))
    if isinstance(stream, EcgIngestError):
        if valid:
            raise Finding("mismatch", f"valid parameters {params} refused: {stream}")
        return
    if not valid:
        raise Finding("mismatch", f"invalid start parameters accepted: {params}")
    model: dict[int, np.ndarray] = {}
    clock = 0
    for _ in range(24):
        if r.left == 0:
            break
        op = r.byte() % 8
        if op in (0, 1, 2):  # a generated frame at the next, a random or a taken timestamp
            payload, must_accept = _frame(r, stream)
            if op == 0 or not model:
                timestamp = clock
            elif op == 1:
                timestamp = r.number(4)
            else:
                timestamp = sorted(model)[r.byte() % len(model)]
            _add(stream, model, timestamp, payload, must_accept)
            clock = timestamp + int(1e6 / stream.sample_rate) * 48 if isinstance(timestamp, int) \
                else clock
        elif op == 3:  # raw bytes as a payload, with or without the magic
            raw = (b"cMdT" if r.byte() % 2 else b"") + r.take(r.byte() % 64)
            _add(stream, model, r.number(4), raw, False)
        elif op == 4:
            _add(stream, model, r.pick(BAD_TIMESTAMPS), _frame(r, stream)[0], False)
        elif op == 5:
            _add(stream, model, r.number(4), r.pick(BAD_PAYLOADS), False)
        elif op == 6:
            _finish(stream, model)
        elif r.byte() % 4:
            _round_trip(stream, r)
        else:
            _hostile_saved(stream, r)
    _finish(stream, model)


def stream_seeds() -> list[bytes]:
    """Programs that build small valid streams, to start from working call sequences."""
    seeds = []
    for leads in range(3):
        channels = leads + 1
        # shape 2 and rate 2: matching; 16 bits; 9 samples; then coding, compression, no damage
        frame = bytes([2, 2, 1, 8]) + bytes(range(1, 1 + channels * 9)) + b"\x01\x01\x01"
        for ops in ([0, 0, 0], [0, 1, 6, 7], [0, 2, 5, 4, 3, 6]):
            program = bytearray([leads, 1, 1, 1, 1])
            for op in ops:
                program.append(op)
                if op == 0:
                    program += frame
                elif op == 1:
                    program += frame + b"\x00\x00\x10\x00"  # at a random timestamp
                elif op == 2:
                    program += frame + b"\x00"  # at a taken timestamp
                elif op == 3:
                    program += b"\x01\x04\x00\x00\x00\x00" + b"\x00\x00\x20\x00"
                elif op == 4:
                    program += b"\x00" + frame  # at timestamp -1
                elif op == 5:
                    program += b"\x00\x00\x30\x00\x01"  # an int as the payload
                elif op == 7:
                    program += b"\x01\x00"  # a save and restore, no damage
            seeds.append(bytes(program))
    return seeds


# ----------------------------------------------------------------- ChunkedUpload
NOT_BYTES = (None, 3, "abc", [1, 2], 2.0)


def _payloads() -> list[bytes]:
    return [p.read_bytes() for p in sorted((FIXTURES / "compressed_delta").glob("*.cmdt"))][:2]


def run_chunked(data: bytes) -> None:
    """Send one upload in the chunks the input spells; check every step against a model."""
    r = Reader(data)
    choice = r.byte() % 4
    payload = _payloads()[choice] if choice < 2 else r.take(r.number(2) % 2048)
    size = len(payload)
    size_kind = r.byte() % 10
    announced: object = size
    if size_kind == 0:
        announced = size + 1 + r.byte() % 16
    elif size_kind == 1 and size:
        announced = max(0, size - 1 - r.byte() % 16)
    elif size_kind == 2:
        announced = r.pick((-1, True, 1.0, "10", None, FUZZ_LIMITS.max_total_size + 1))
    digest = hashlib.sha256(payload).hexdigest()
    hash_kind = r.byte() % 10
    if hash_kind == 0:
        digest = hashlib.sha256(payload + b"x").hexdigest()
    elif hash_kind == 1:
        digest = r.pick(("", "zz" * 32, digest[:63], digest.upper() + " ", None, 7))
    threshold = r.pick((1 << 20, 0, 64))
    upload = typed(partial(ecgingest.ChunkedUpload, announced, digest,  # type: ignore[arg-type]
                           memory_threshold=threshold, limits=FUZZ_LIMITS))
    if isinstance(upload, EcgIngestError):
        if announced == size and isinstance(announced, int) and not isinstance(announced, bool) \
                and hash_kind != 1:
            raise Finding("mismatch", f"a valid announcement was refused: {upload}")
        return
    if not isinstance(announced, int) or isinstance(announced, bool) or announced < 0:
        raise Finding("mismatch", f"total_size {announced!r} was accepted")
    with upload:
        _send(upload, r, payload, announced)


def _send(upload: ecgingest.ChunkedUpload, r: Reader, payload: bytes, announced: int) -> None:
    held = bytearray(announced)
    have = bytearray(announced)  # 1 where a byte has been received
    for _ in range(32):
        if r.left == 0:
            break
        op = r.byte() % 8
        start = r.number(2) % (announced + 1)
        length = r.number(2) % 512
        chunk = payload[start:start + length]
        if op == 5 and chunk:  # the same range with one byte changed: a conflict if held
            flipped = bytearray(chunk)
            flipped[r.byte() % len(flipped)] ^= 1 + r.byte() % 255
            chunk = bytes(flipped)
        elif op == 6:
            chunk = r.take(r.byte() % 32)
        bad_offset = r.pick((-1, True, 1.5, None)) if op == 7 and r.byte() % 2 else None
        data: object = r.pick(NOT_BYTES) if op == 7 and bad_offset is None else chunk
        offset: object = bad_offset if bad_offset is not None else start
        before = upload.received
        outcome = typed(partial(upload.add, offset, data))  # type: ignore[arg-type]
        if op == 7:
            if not isinstance(outcome, UploadError):
                raise Finding("mismatch", f"add({offset!r}, {data!r}) gave {outcome!r}, not "
                              "UploadError")
        else:
            assert isinstance(chunk, bytes)
            end = start + len(chunk)
            conflict = any(have[i] and held[i] != chunk[i - start]
                           for i in range(start, min(end, announced)))
            should_fail = end > announced or conflict
            if should_fail != isinstance(outcome, EcgIngestError):
                raise Finding("mismatch", f"add({start}, {len(chunk)} bytes): "
                              f"{'accepted' if outcome is None else outcome!r} although "
                              f"{'it overflows or conflicts' if should_fail else 'it is valid'}")
            if outcome is None:
                held[start:end] = chunk
                have[start:end] = b"\x01" * len(chunk)
            elif upload.received != before:
                raise Finding("lost", "a refused chunk changed what the upload holds")
        if upload.received != sum(have):
            raise Finding("mismatch", f"received {upload.received} but {sum(have)} distinct "
                          "bytes were accepted")
    right = all(have) and hashlib.sha256(bytes(held)).hexdigest() == upload.sha256
    result = typed(upload.finish)
    if isinstance(result, EcgIngestError):
        if right:
            raise Finding("lost", f"a complete, matching upload was refused: {result}")
        return
    if not right:
        raise Finding("mismatch", "finish() accepted an incomplete or tampered upload")
    assembled = result.read()
    result.seek(0)
    if assembled != bytes(held):
        raise Finding("lost", "finish() returned other bytes than were sent")
    direct = outcome_of(lambda: ecgingest.read(assembled, limits=FUZZ_LIMITS))
    through = outcome_of(lambda: ecgingest.read(result, limits=FUZZ_LIMITS))
    if direct != through:
        raise Finding("mismatch", f"reading the finished upload gives {through[:1]}, the same "
                      f"bytes give {direct[:1]}")
    if not isinstance(typed(partial(upload.add, 0, b"x")), UploadError):
        raise Finding("mismatch", "add() after finish() did not raise UploadError")


def chunked_seeds() -> list[bytes]:
    """Programs that send a real upload whole, in two halves reversed, and with a repeat."""
    seeds = []
    for choice in (0, 1, 2):
        head = bytes([choice]) + (b"\x40\x00" + bytes(range(64)) if choice == 2 else b"")
        head += b"\x05\x05\x00"
        seeds.append(head + b"\x00\x00\x00\xff\x01")
        seeds.append(head + b"\x00\x50\x00\xff\x01" + b"\x00\x00\x00\x50\x00"
                     + b"\x01\x10\x00\x20\x00")
        seeds.append(head + b"\x05\x10\x00\x20\x00" + b"\x00\x00\x00\xff\x01")
    return seeds


# ----------------------------------------------------------------- overrides
_TEXT_TEMPLATES = ("Europe/London", "UTC", "America/Argentina/Buenos_Aires", "2024-06-23T18:30:00Z",
                   "2024-06-23T18:30:00", "2024-06-23T18:30:00+25:00", "1970-01-31", "9999-12-31",
                   "0000-01-01", "2024-02-30", "female", "MALE", "p-17", "../../etc", " ",
                   "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00")
_CHARACTERS = ("A", "/", ".", "\x00", " ", "é", "\ud800", "Z", "9", "-", "+", ":", "\n")


def _override_value(r: Reader) -> object:
    import datetime as dt

    kind = r.byte() % 8
    if kind == 0:
        return r.pick(_TEXT_TEMPLATES)
    if kind == 1:  # a template with one character replaced, or a long run of one character
        text = r.pick(_TEXT_TEMPLATES)
        at = r.byte() % (len(text) + 1)
        return text[:at] + r.pick(_CHARACTERS) + text[at + 1:]
    if kind == 2:
        return r.pick(_CHARACTERS) * r.pick((1, 5, 64, 255, 256, 1024, 5000))
    if kind == 3:
        return r.take(r.byte() % 32).decode("latin-1")
    if kind == 4:
        return r.pick((-1, 0, 2**32 - 1, 2**32, 10**400, True, float("nan"), float("inf"), 1.5))
    if kind == 5:
        return r.pick((None, [], ["a", 1], ["a", "b"], b"bytes", {"a": 1}, ("x",), iter(["y"])))
    if kind == 6:
        return r.pick((dt.date(2020, 1, 1), dt.datetime(2020, 1, 1),
                       dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-23))),
                       dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-1)))))
    return [r.pick(_TEXT_TEMPLATES) for _ in range(r.byte() % 4)]


def run_overrides(data: bytes) -> None:
    """Overrides built from the input, applied to an intact record: records or OverrideError."""
    from ecgingest.errors import OverrideError
    from ecgingest.record import METADATA_FIELDS

    from .targets import intact_cdelta

    r = Reader(data)
    mapping: dict = {}
    for _ in range(1 + r.byte() % 4):
        which = r.byte() % (len(METADATA_FIELDS) + 2)
        key: object = METADATA_FIELDS[which] if which < len(METADATA_FIELDS) else \
            r.pick(("unknown_field", 5, None, "patient_id "))
        mapping[key] = _override_value(r)
    given = r.pick((["patient_id"], "patient_id=1", 5)) if r.byte() % 8 == 7 else mapping
    result = typed(lambda: ecgingest.read(intact_cdelta(), overrides=given))
    if isinstance(result, EcgIngestError):
        if not isinstance(result, OverrideError):
            raise Finding("mismatch", f"bad overrides raised {type(result).__name__}, "
                          f"not OverrideError: {result}")
        return
    if not isinstance(given, dict):
        raise Finding("mismatch", f"overrides {given!r} (not a mapping) were accepted")
    [record] = result
    for key, value in given.items():
        if value is not None and key not in record.metadata.overridden:
            raise Finding("lost", f"override {key} was accepted but not applied")


def overrides_seeds() -> list[bytes]:
    """Valid overrides of each field, one by one and together."""
    return [bytes([0, field, 0, 0]) for field in range(14)] + [
        bytes([3, 0, 0, 0, 9, 0, 0, 1, 0, 0, 13, 0, 0])]
