"""Compressed Delta containers (COMPRESSED_DELTA.md): reader, writer, validation, bomb guard."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ecgingest
from ecgingest import errors
from ecgingest.detect import detect, single_file_formats
from ecgingest.formats import cdelta
from ecgingest.formats._base import DecodeContext
from ecgingest.record import RecordInfo
from ecgingest.sources import Entry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "compressed_delta"
CODINGS = ("TWOS_COMPLEMENT", "DELTA_ZIGZAG", "DOUBLE_DELTA_ZIGZAG")
COMPRESSIONS = ("NONE", "ZSTD", "ZLIB")
WIDTHS = (8, 16, 24, 32)


def _header(payload_size, channels=1, samples=4, rate=500.0, bits=16, coding=0, compression=0,
            magic=b"cMdT"):
    return struct.pack("<4sQBIdBBB", magic, payload_size, channels, samples, rate, bits, coding,
                       compression)


def _raw(values, bits=16, rate=500.0):
    """A container written by hand (no library code): twos complement, uncompressed."""
    values = np.atleast_2d(np.asarray(values, dtype=np.int64))
    body = b"".join(int(v).to_bytes(bits // 8, "little", signed=True) for v in values.ravel())
    return _header(len(body), values.shape[0], values.shape[1], rate, bits) + body


def _stack(record):
    return np.stack([s.digital for s in record.signals])


def _limits(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# ---------------------------------------------------------------- header layout

def test_header_is_28_packed_little_endian_bytes_with_samples_from_byte_28():
    data = _raw([[1, -2, 300, -32768]])
    assert len(data) == 28 + 8
    [record] = ecgingest.read(data)
    assert record.format == "compressed_delta"
    assert record.signals[0].digital.tolist() == [1, -2, 300, -32768]
    assert record.signals[0].sample_rate == 500.0


def test_writer_header_fields_match_the_spec_offsets():
    data = ecgingest.encode_compressed_delta(np.zeros((3, 7), np.int32), sample_rate=250.5,
                                             bits_per_sample=24, coding="DOUBLE_DELTA_ZIGZAG",
                                             compression="ZLIB")
    assert data[:4] == b"cMdT" and struct.unpack_from("<I", data)[0] == 0x54644D63
    assert struct.unpack_from("<Q", data, 4)[0] == len(data) - 28
    assert data[12] == 3
    assert struct.unpack_from("<I", data, 13)[0] == 7
    assert struct.unpack_from("<d", data, 17)[0] == 250.5
    assert (data[25], data[26], data[27]) == (24, 2, 2)


def test_layout_is_channel_major_not_interleaved():
    data = _raw([[1, 2, 3], [10, 20, 30]])
    [record] = ecgingest.read(data)
    assert _stack(record).tolist() == [[1, 2, 3], [10, 20, 30]]
    assert record.labels == ["ch1", "ch2"]


def test_24_bit_samples_are_three_bytes_sign_extended_from_bit_23():
    body = bytes([0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x80, 0xFF, 0xFF, 0xFF])
    [record] = ecgingest.read(_header(9, 1, 3, bits=24) + body)
    assert record.signals[0].digital.tolist() == [8388607, -8388608, -1]


@pytest.mark.parametrize("bits, dtype", [(8, np.int8), (16, np.int16), (24, np.int32),
                                         (32, np.int32)])
def test_samples_come_in_the_smallest_fitting_signed_dtype_read_only(bits, dtype):
    [record] = ecgingest.read(_raw([[1, -1]], bits=bits))
    digital = record.signals[0].digital
    assert digital.dtype == dtype
    assert not digital.flags.writeable


def test_delta_zigzag_reading_first_value_is_the_first_sample():
    # samples 5, 3, 4 -> deltas 5, -2, 1 -> zig-zag 10, 3, 2 (16-bit slots)
    body = struct.pack("<3H", 10, 3, 2)
    [record] = ecgingest.read(_header(6, 1, 3, coding=1) + body)
    assert record.signals[0].digital.tolist() == [5, 3, 4]


def test_double_delta_is_the_delta_of_first_order_deltas():
    # samples 5, 3, 4, 8 -> d1 5, -2, 1, 4 -> d2 5, -7, 3, 3 -> zz 10, 13, 6, 6
    body = struct.pack("<4H", 10, 13, 6, 6)
    [record] = ecgingest.read(_header(8, 1, 4, coding=2) + body)
    assert record.signals[0].digital.tolist() == [5, 3, 4, 8]


def test_delta_arithmetic_wraps_modulo_two_to_the_width():
    # 8-bit: 127 then -128 is a delta of -255, i.e. +1 modulo 256 -> zig-zag 2
    body = bytes([254, 2])  # zz(127) = 254
    [record] = ecgingest.read(_header(2, 1, 2, bits=8, coding=1) + body)
    assert record.signals[0].digital.tolist() == [127, -128]


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("coding", CODINGS)
def test_extreme_values_round_trip(bits, coding):
    lo, hi = _limits(bits)
    x = np.array([[lo, hi, lo, hi, 0, -1, 1, lo], [hi, hi, lo, lo, hi, 0, lo, -1]], np.int64)
    for compression in COMPRESSIONS:
        data = ecgingest.encode_compressed_delta(x, sample_rate=1.0, bits_per_sample=bits,
                                                 coding=coding, compression=compression)
        [record] = ecgingest.read(data)
        assert _stack(record).tolist() == x.tolist()


@given(data=st.data(),
       bits=st.sampled_from(WIDTHS),
       coding=st.sampled_from(CODINGS + (0, 1, 2)),
       compression=st.sampled_from(COMPRESSIONS + (0, 1, 2)),
       channels=st.integers(1, 12),
       length=st.integers(1, 300))
def test_write_then_read_is_the_identity_on_any_int_input(data, bits, coding, compression,
                                                         channels, length):
    lo, hi = _limits(bits)
    dtype = {8: np.int8, 16: np.int16, 24: np.int32, 32: np.int64}[bits]
    x = data.draw(hnp.arrays(dtype, (channels, length),
                             elements=st.integers(lo, hi) | st.sampled_from([lo, hi, 0])))
    rate = data.draw(st.floats(1e-3, 1e6, allow_nan=False))
    payload = ecgingest.encode_compressed_delta(x, sample_rate=rate, bits_per_sample=bits,
                                                coding=coding, compression=compression)
    header, y = cdelta.decode_payload(payload)
    assert header.sample_rate == rate and header.channels == channels
    np.testing.assert_array_equal(y, x)
    assert y.dtype == cdelta._kernel.out_dtype(bits)


def test_writer_accepts_a_one_dimensional_array_as_one_channel_and_lists():
    data = ecgingest.encode_compressed_delta([1, 2, 3], sample_rate=10.0)
    assert cdelta.decode_payload(data)[1].tolist() == [[1, 2, 3]]
    data = ecgingest.encode_compressed_delta([[1, 2], [3, 4]], sample_rate=10.0)
    assert cdelta.decode_payload(data)[1].tolist() == [[1, 2], [3, 4]]


def test_writer_accepts_unsigned_input_within_range():
    x = np.array([[0, 200, 65535]], np.uint16)
    data = ecgingest.encode_compressed_delta(x, sample_rate=1.0, bits_per_sample=32)
    assert cdelta.decode_payload(data)[1].tolist() == x.tolist()


@pytest.mark.parametrize("bits", WIDTHS)
def test_writer_refuses_values_that_do_not_fit_the_width(bits):
    lo, hi = _limits(bits)
    for bad in (lo - 1, hi + 1):
        with pytest.raises(OverflowError, match="does not fit"):
            ecgingest.encode_compressed_delta(np.array([[0, bad]], np.int64), sample_rate=1.0,
                                              bits_per_sample=bits)


@pytest.mark.parametrize("kwargs, match", [
    ({"bits_per_sample": 12}, "bits_per_sample"),
    ({"coding": "RLE"}, "coding"),
    ({"coding": 3}, "coding"),
    ({"compression": "LZ4"}, "compression"),
    ({"sample_rate": float("nan")}, "sample_rate"),
    ({"sample_rate": 0.0}, "sample_rate"),
])
def test_writer_refuses_invalid_arguments(kwargs, match):
    args = {"sample_rate": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        ecgingest.encode_compressed_delta(np.zeros((1, 3), np.int16), **args)


def test_writer_refuses_empty_floats_and_too_many_channels():
    with pytest.raises(ValueError):
        ecgingest.encode_compressed_delta(np.zeros((1, 0), np.int16), sample_rate=1.0)
    with pytest.raises(TypeError):
        ecgingest.encode_compressed_delta(np.zeros((1, 3)), sample_rate=1.0)
    with pytest.raises(ValueError, match="255"):
        ecgingest.encode_compressed_delta(np.zeros((256, 1), np.int16), sample_rate=1.0)


# ------------------------------------------------------------------ validation

def _decode(data, strict=True, limits=None):
    return cdelta.FORMAT.decode(data, DecodeContext("compressed_delta", name="x.cmdt",
                                                    strict=strict, limits=limits))


def test_wrong_magic_is_a_header_error():
    with pytest.raises(errors.HeaderError) as info:
        _decode(b"cMdX" + _raw([[1]])[4:])
    assert info.value.field == "magic" and info.value.offset == 0


@pytest.mark.parametrize("size", [0, 4, 27])
def test_header_shorter_than_28_bytes_is_truncated(size):
    with pytest.raises(errors.TruncatedError) as info:
        _decode(_raw([[1, 2]])[:size])
    assert info.value.field == "header"


def test_payload_size_beyond_the_bytes_present_is_truncated():
    data = _raw([[1, 2, 3, 4]])
    with pytest.raises(errors.TruncatedError, match="cut short") as info:
        _decode(data[:-1])
    assert info.value.field == "payload_size"


def test_trailing_bytes_after_the_payload_are_refused_in_strict_mode_and_warned_otherwise():
    data = _raw([[1, 2, 3, 4]]) + b"junk"
    with pytest.raises(errors.HeaderError) as info:
        _decode(data, strict=True)
    assert info.value.field == "payload_size" and info.value.offset == 36
    record = _decode(data, strict=False)
    assert record.signals[0].digital.tolist() == [1, 2, 3, 4]
    assert any("4 bytes follow" in w for w in record.warnings)


@pytest.mark.parametrize("field, kwargs", [
    ("total_channels", {"channels": 0}),
    ("total_samples", {"samples": 0}),
    ("sample_rate", {"rate": float("nan")}),
    ("sample_rate", {"rate": float("inf")}),
    ("sample_rate", {"rate": -500.0}),
    ("sample_rate", {"rate": 0.0}),
    ("bits_per_sample", {"bits": 12}),
    ("bits_per_sample", {"bits": 0}),
    ("coding", {"coding": 3}),
    ("compression", {"compression": 3}),
])
def test_invalid_header_fields_are_header_errors_naming_the_field(field, kwargs):
    args = {"channels": 1, "samples": 4, **kwargs}
    with pytest.raises(errors.HeaderError) as info:
        _decode(_header(8, **args) + bytes(8))
    assert info.value.field == field
    assert info.value.format == "compressed_delta"


def test_uncompressed_payload_size_must_equal_channels_x_samples_x_width():
    with pytest.raises(errors.HeaderError, match="need 8") as info:
        _decode(_header(6, samples=4) + bytes(6))
    assert info.value.field == "payload_size"


@pytest.mark.parametrize("compression", ["ZSTD", "ZLIB"])
def test_decompressed_size_not_matching_the_header_is_corrupt(compression):
    good = ecgingest.encode_compressed_delta(np.arange(40).reshape(2, 20), sample_rate=1.0,
                                             compression=compression)
    for samples in (19, 21):  # the compressed block now decodes to too few / too many bytes
        bad = good[:13] + struct.pack("<I", samples) + good[17:]
        with pytest.raises(errors.CorruptDataError, match="decompresses to"):
            _decode(bad)


def _zstd_without_content_size(raw: bytes) -> bytes:
    cobj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return cobj.compress(raw) + cobj.flush()


@pytest.mark.parametrize("make, compression", [
    (lambda raw: zlib.compress(raw, 9), 2),
    (lambda raw: zstandard.ZstdCompressor().compress(raw), 1),
    (_zstd_without_content_size, 1),
], ids=["zlib", "zstd-with-size", "zstd-without-size"])
def test_bomb_guard_stops_a_payload_that_expands_beyond_the_header(make, compression):
    # 10 MB of zeros compressed to a few kB, announced as four 16-bit samples
    bomb = make(bytes(10_000_000))
    data = _header(len(bomb), 1, 4, compression=compression) + bomb
    with pytest.raises(errors.CorruptDataError, match="decompresses to") as info:
        _decode(data)
    assert info.value.field == "payload_size"


def test_zlib_claim_beyond_deflate_ratio_is_refused_without_decompressing():
    block = zlib.compress(bytes(64))
    data = _header(len(block), 1, 1_000_000, bits=32, compression=2) + block
    with pytest.raises(errors.CorruptDataError, match="at most"):
        _decode(data)


def test_huge_claimed_size_over_the_decode_limit_is_a_limit_error():
    block = _zstd_without_content_size(bytes(100))
    data = _header(len(block), 255, 0xFFFFFFFF, bits=32, compression=1) + block
    with pytest.raises(errors.LimitExceededError):
        _decode(data)


def test_zstd_stream_of_unknown_size_is_read_in_bounded_chunks():
    x = np.zeros((4, 2_500_000), np.int16)  # 20 MB of zeros: ratio far above one-shot bound
    coded = cdelta._kernel.encode_samples(x, 16, 1).tobytes()
    block = _zstd_without_content_size(coded)
    limits = ecgingest.Limits()
    assert len(coded) > max(limits.ratio_grace, limits.max_ratio * len(block))
    data = _header(len(block), 4, 2_500_000, coding=1, compression=1) + block
    record = _decode(data)
    assert _stack(record).shape == (4, 2_500_000) and not _stack(record).any()


@pytest.mark.parametrize("compression", ["ZSTD", "ZLIB"])
def test_damaged_compressed_stream_is_corrupt_data(compression):
    good = ecgingest.encode_compressed_delta(np.arange(400).reshape(2, 200), sample_rate=1.0,
                                             compression=compression)
    bad = good[:40] + bytes(len(good) - 40)
    with pytest.raises(errors.CorruptDataError):
        _decode(bad)


def test_zlib_with_bytes_after_its_stream_is_corrupt_data():
    block = zlib.compress(bytes(8)) + b"xx"
    with pytest.raises(errors.CorruptDataError, match="follow the zlib"):
        _decode(_header(len(block), 1, 4, compression=2) + block)


def test_zstd_with_a_second_frame_is_corrupt_data():
    block = zstandard.ZstdCompressor().compress(bytes(8)) * 2
    with pytest.raises(errors.CorruptDataError):
        _decode(_header(len(block), 1, 4, compression=1) + block)


def test_a_damaged_zstd_frame_gives_the_same_error_whatever_was_read_before():
    """The decompression context is not shared between frames: a damaged frame's error
    once changed after another damaged frame had been read in the same thread."""
    import threading

    regressions = FIXTURES / "regressions"
    prior = (regressions / "zstd_context_prior.cmdt").read_bytes()
    damaged = (regressions / "zstd_context_damaged.cmdt").read_bytes()
    seeds = [prior, *(path.read_bytes() for path in sorted(FIXTURES.glob("*.cmdt")))]

    def message_after(earlier: list[bytes]) -> str:
        out: list[str] = []

        def run():
            for data in earlier:
                try:
                    cdelta.decode_payload(data)
                except errors.EcgIngestError:
                    pass
            try:
                cdelta.decode_payload(damaged)
                out.append("decoded")
            except errors.CorruptDataError as exc:
                out.append(str(exc))

        thread = threading.Thread(target=run)  # a thread of its own: nothing read before
        thread.start()
        thread.join()
        return out[0]

    alone = message_after([])
    assert alone != "decoded"
    for seed in seeds:
        assert message_after([seed]) == alone


def _chunked_claim() -> bytes:
    """4 channels x 2.5 M zero samples (20 MB) in a few kB of zstd without a content size."""
    coded = cdelta._kernel.encode_samples(np.zeros((4, 2_500_000), np.int16), 16, 1).tobytes()
    block = _zstd_without_content_size(coded)
    return _header(len(block), 4, 2_500_000, coding=1, compression=1) + block


def test_the_callers_limits_bound_the_decoded_size():
    data = _raw([[1, 2, 3, 4]])
    assert _decode(data).signals[0].digital.tolist() == [1, 2, 3, 4]
    with pytest.raises(errors.LimitExceededError) as info:
        _decode(data, limits=ecgingest.Limits(max_entry_size=7))
    assert info.value.limit == "max_entry_size" and info.value.value == 7
    assert _decode(data, limits=ecgingest.Limits(max_entry_size=8)).signals


def test_the_callers_ratio_limits_choose_between_one_shot_and_chunked_zstd(monkeypatch):
    data = _chunked_claim()
    seen: list[str] = []
    real = cdelta._unzstd_chunked

    def spy(*args):
        seen.append("chunked")
        return real(*args)

    monkeypatch.setattr(cdelta, "_unzstd_chunked", spy)
    _decode(data)  # the defaults: 20 MB from a few kB is beyond max_ratio
    assert seen == ["chunked"]
    _decode(data, limits=ecgingest.Limits(ratio_grace=32 << 20))  # within the grace
    assert seen == ["chunked"]
    _decode(data, limits=ecgingest.Limits(max_ratio=1e9))
    assert seen == ["chunked"]


def test_decoded_samples_count_against_the_upload_output_budget():
    data = _raw([[1, 2, 3, 4], [5, 6, 7, 8]])
    limits = ecgingest.Limits(max_decoded_size=16)
    ctx = DecodeContext("compressed_delta", limits=limits)
    cdelta.FORMAT.decode(data, ctx)  # 2 x 4 int16 = 16 bytes: exactly the bound
    assert ctx.budget.used == 16
    with pytest.raises(errors.LimitExceededError) as info:
        cdelta.FORMAT.decode(data, ctx.for_file(name="again"))  # the same upload
    assert info.value.limit == "max_decoded_size"
    with pytest.raises(errors.LimitExceededError):
        ecgingest.read(data, limits=ecgingest.Limits(max_decoded_size=15))


@pytest.mark.parametrize(("bits", "coding", "channels", "length", "status"), [
    (12, 0, 1, 4, "BAD_VALUE"), (16, 3, 1, 4, "BAD_VALUE"), (16, 0, 1, 5, "TRUNCATED"),
])
def test_kernel_statuses_become_typed_errors_without_a_status_number(bits, coding, channels,
                                                                      length, status):
    from ecgingest.formats import _base

    coded = bytes(8)
    out = np.empty((channels, length), dtype=cdelta._kernel.out_dtype(bits))
    code = cdelta._kernel.decode_samples(coded, bits, coding, out)
    assert code == getattr(_base, f"STATUS_{status}")
    with pytest.raises(errors.EcgIngestError) as info:
        DecodeContext("compressed_delta").check_status(code, "samples block")
    assert "status" not in str(info.value) and str(code) not in info.value.message


def test_inspect_reads_the_header_without_decompressing(monkeypatch):
    data = ecgingest.encode_compressed_delta(np.arange(30).reshape(3, 10), sample_rate=250.0,
                                             bits_per_sample=24, compression="ZLIB")
    monkeypatch.setattr(cdelta, "_decompress", None)  # never called
    info = cdelta.FORMAT.inspect(data, DecodeContext("compressed_delta", name="f.cmdt"))
    assert [(s.label, s.sample_rate, s.samples, s.dtype) for s in info.signals] == [
        (f"ch{i}", 250.0, 10, "int32") for i in (1, 2, 3)]
    assert info.format_detail == "Compressed Delta 24-bit DELTA_ZIGZAG ZLIB"
    monkeypatch.undo()
    assert info == RecordInfo.of(cdelta.FORMAT.decode(
        data, DecodeContext("compressed_delta", name="f.cmdt")))


def test_inspect_reports_header_errors_like_a_full_read():
    with pytest.raises(errors.TruncatedError):
        cdelta.FORMAT.inspect(_raw([[1, 2, 3]])[:-1], DecodeContext("compressed_delta"))


# ------------------------------------------------------------------- detection

def test_a_standalone_container_is_detected_by_magic_and_read_like_any_upload(tmp_path):
    data = ecgingest.encode_compressed_delta(np.arange(10).reshape(2, 5), sample_rate=100.0)
    assert detect(Entry.from_bytes("frame.bin", data)).name == "compressed_delta"
    path = tmp_path / "no_extension_needed"
    path.write_bytes(data)
    [record] = ecgingest.read(path)
    assert record.name == "no_extension_needed"
    assert record.sources == ("no_extension_needed",)
    with open(path, "rb") as fh:
        assert _stack(ecgingest.read(fh)[0]).tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_detection_never_claims_edf_scp_json_or_short_files():
    edf_like = b"0       " + b" " * 248
    scp_like = b"\x12\x34" + struct.pack("<I", 200) + b"\x00\x00" + bytes(200)
    for data in (edf_like, scp_like, b'{"data": {}}', b"cMdT", b"cMdT" + bytes(10), b""):
        fmt = detect(Entry.from_bytes("x", data))
        assert fmt is None or fmt.name != "compressed_delta"


def test_registered_after_the_edf_and_scp_slots_and_before_kardia():
    names = [f.name for f in single_file_formats()]
    assert names.index("compressed_delta") + 1 == names.index("kardia")
    for earlier in ("edf", "scp"):
        if earlier in names:
            assert names.index(earlier) < names.index("compressed_delta")


def test_a_broken_container_in_ingest_is_an_entry_error_not_a_crash():
    data = _raw([[1, 2, 3]])[:-1]
    result = ecgingest.ingest(data)
    assert not result.records
    [entry_error] = result.errors
    assert isinstance(entry_error.error, errors.TruncatedError)


# ------------------------------------------------------------------- mutation

def _seeds():
    rng = np.random.default_rng(7)
    x = rng.integers(-3000, 3000, size=(3, 64))
    return [ecgingest.encode_compressed_delta(x, sample_rate=500.0, bits_per_sample=b,
                                              coding=c, compression=z)
            for b, c, z in [(16, "DELTA_ZIGZAG", "ZSTD"), (24, "DOUBLE_DELTA_ZIGZAG", "ZLIB"),
                            (8 * 4, "TWOS_COMPLEMENT", "NONE"), (16, 2, "ZSTD")]]


SEEDS = _seeds() + [path.read_bytes() for path in sorted(FIXTURES.glob("*.cmdt"))]


@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_random_byte_mutations_end_in_a_record_or_a_typed_error(seed, data):
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(buf) - 1))
        buf[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    for candidate in (bytes(buf), bytes(buf[:cut])):
        try:
            record = _decode(candidate, strict=data.draw(st.booleans()))
        except errors.EcgIngestError:
            continue
        assert record.signals and all(len(s) >= 1 for s in record.signals)


@given(seed=st.sampled_from(SEEDS), position=st.integers(0, 27), value=st.integers(0, 255))
def test_header_mutations_through_ingest_end_in_a_record_or_a_typed_error(seed, position, value):
    buf = bytearray(seed)
    buf[position] = value
    try:
        ecgingest.read(bytes(buf))
    except errors.EcgIngestError:
        pass


# -------------------------------------------------------------------- fixtures

def test_fixture_files_match_their_reference_arrays():
    ref = json.loads((FIXTURES / "reference.json").read_text())
    assert ref, "fixture table is empty"
    for name, expected in ref.items():
        [record] = ecgingest.read(FIXTURES / name)
        assert record.format_detail == expected["format_detail"]
        assert record.signals[0].sample_rate == expected["sample_rate"]
        reference = np.load(FIXTURES / expected["npz"])["digital"]
        np.testing.assert_array_equal(_stack(record), reference)


def _independent_writer():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.numpy_encode


@given(data=st.data(), bits=st.sampled_from(WIDTHS), coding=st.integers(0, 2),
       channels=st.integers(1, 4), length=st.integers(1, 50))
def test_uncompressed_writer_output_equals_an_independent_numpy_writer(data, bits, coding,
                                                                      channels, length):
    lo, hi = _limits(bits)
    x = data.draw(hnp.arrays(np.int64, (channels, length), elements=st.integers(lo, hi)))
    ours = ecgingest.encode_compressed_delta(x, sample_rate=360.0, bits_per_sample=bits,
                                             coding=coding, compression="NONE")
    assert ours == _independent_writer()(x, 360.0, bits, coding, 0)


def test_writer_and_stream_are_part_of_the_public_surface():
    assert {"encode_compressed_delta", "Stream"} <= set(ecgingest.__all__)
    assert ecgingest.encode_compressed_delta is cdelta.encode_compressed_delta
    assert ecgingest.Stream.__module__ == "ecgingest.stream"


def test_concurrent_decoding_in_threads_matches_serial_decoding():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    frames = [ecgingest.encode_compressed_delta(rng.integers(-999, 999, (4, 2000)),
                                                sample_rate=250.0, coding=i % 3,
                                                compression=i % 3) for i in range(24)]
    serial = [cdelta.decode_payload(f)[1] for f in frames]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda f: cdelta.decode_payload(f)[1], frames))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_real_edf_and_bdf_files_are_never_taken_by_compressed_delta_or_kardia():
    root = FIXTURES.parent
    files = sorted(p for p in (root / "edf").glob("*") if p.suffix.lower() in (".edf", ".bdf"))
    files += sorted((root.parent / "src" / "ecgingest" / "demo" / "data").glob("*.scp"))
    if not files:
        pytest.skip("no EDF/BDF/SCP fixture files in this tree")
    for path in files:
        data = path.read_bytes()
        fmt = detect(Entry.from_bytes(path.name, data))
        assert fmt is None or fmt.name not in ("compressed_delta", "kardia"), path.name
