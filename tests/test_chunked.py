"""Chunked uploads (INGESTION.md §6): any order, repeats, conflicts, spooling, verification."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES
from ecgingest import ChunkedUpload
from ecgingest.errors import EcgIngestError, UploadError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_chunks_out_of_order_assemble_the_upload():
    data = os.urandom(10_000)
    up = ChunkedUpload(len(data), _sha(data))
    for start, end in ((7000, 10_000), (0, 3000), (3000, 7000)):
        up.add(start, data[start:end])
    assert up.finish().read() == data


def test_repeated_identical_chunks_and_overlaps_are_accepted():
    data = bytes(range(256)) * 4
    up = ChunkedUpload(len(data), _sha(data))
    up.add(0, data[:600])
    up.add(0, data[:600])
    up.add(500, data[500:])
    assert up.received == len(data)
    assert up.finish().read() == data


def test_conflicting_overlap_is_rejected_and_leaves_held_bytes_unchanged():
    data = b"a" * 100
    up = ChunkedUpload(len(data), _sha(data))
    up.add(0, data[:60])
    with pytest.raises(UploadError) as info:
        up.add(50, b"b" * 50)
    assert info.value.offset == 50
    up.add(60, data[60:])
    assert up.finish().read() == data


def test_chunk_past_the_announced_size_is_rejected():
    up = ChunkedUpload(10, _sha(b"x" * 10))
    with pytest.raises(UploadError):
        up.add(8, b"abc")
    with pytest.raises(UploadError):
        up.add(-1, b"a")


def test_missing_ranges_are_named_and_nothing_is_returned():
    data = os.urandom(100)
    up = ChunkedUpload(len(data), _sha(data))
    up.add(0, data[:40])
    up.add(70, data[70:])
    assert up.missing() == [(40, 70)]
    with pytest.raises(UploadError, match=r"\[40, 70\)"):
        up.finish()


def test_hash_mismatch_is_rejected_before_any_decoding():
    data = os.urandom(50)
    up = ChunkedUpload(len(data), _sha(data + b"!"))
    up.add(0, data)
    with pytest.raises(UploadError) as info:
        up.finish()
    assert info.value.field == "sha256"


def test_bad_session_parameters_are_typed_errors():
    with pytest.raises(UploadError):
        ChunkedUpload(-1, "0" * 64)
    with pytest.raises(UploadError):
        ChunkedUpload(10, "not-a-hash")


def test_large_upload_is_spooled_to_a_temporary_file():
    data = os.urandom(5000)
    with ChunkedUpload(len(data), _sha(data), memory_threshold=1000) as up:
        assert up.spooled
        up.add(2500, data[2500:])
        up.add(0, data[:2500])
        assert up.finish().read() == data
    small = ChunkedUpload(10, _sha(b"0123456789"))
    assert not small.spooled


def test_no_chunk_is_accepted_after_finish():
    up = ChunkedUpload(1, _sha(b"x"))
    up.add(0, b"x")
    up.finish()
    with pytest.raises(UploadError):
        up.add(0, b"x")


@pytest.mark.parametrize("threshold", [0, 1 << 30])
def test_finished_upload_is_a_source_for_read(threshold):
    data = (FIXTURES / "archives" / "7z-lzma2.7z").read_bytes()
    up = ChunkedUpload(len(data), _sha(data), memory_threshold=threshold)
    for start in range(len(data) - len(data) % 4096, -1, -4096):
        up.add(start, data[start:start + 4096])
    records = ecgingest.read(up.finish())
    assert [r.name for r in records] == ["rec001"]


@given(data=st.binary(min_size=1, max_size=3000),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
       order=st.randoms(use_true_random=False), repeat=st.booleans())
def test_any_split_in_any_order_reassembles_exactly(data, cuts, order, repeat):
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [(a, data[a:b]) for a, b in zip(points, points[1:])]
    if repeat:
        chunks += chunks[: len(chunks) // 2 + 1]
    order.shuffle(chunks)
    up = ChunkedUpload(len(data), _sha(data), memory_threshold=len(data) // 2)
    for offset, chunk in chunks:
        up.add(offset, chunk)
    assert up.finish().read() == data


@given(data=st.binary(min_size=2, max_size=500), where=st.integers(min_value=0),
       flip=st.integers(min_value=1, max_value=255))
def test_any_tampered_chunk_is_refused(data, where, flip):
    pos = where % len(data)
    tampered = bytearray(data)
    tampered[pos] ^= flip
    up = ChunkedUpload(len(data), _sha(data))
    up.add(0, bytes(tampered))
    with pytest.raises(EcgIngestError):
        up.finish()


def test_announced_size_beyond_the_limits_is_refused_up_front():
    from ecgingest.errors import LimitExceededError

    with pytest.raises(LimitExceededError) as info:
        ChunkedUpload(10**13, "0" * 64)
    assert info.value.limit == "max_total_size"
    up = ChunkedUpload(2048, _sha(bytes(2048)), limits=ecgingest.Limits(max_total_size=4096))
    up.add(0, bytes(2048))
    assert len(up.finish().read()) == 2048


@pytest.mark.parametrize("data", [10**12, 5, -1, 3.5, "text", None, [1, 2], {"a": 1}, object()])
def test_chunk_data_that_is_not_bytes_like_is_an_upload_error_and_never_allocated(data):
    up = ChunkedUpload(100, _sha(bytes(100)))
    with pytest.raises(UploadError) as info:
        up.add(0, data)
    assert info.value.field == "data"
    assert up.received == 0


def test_any_contiguous_buffer_is_a_chunk():
    import array

    data = bytes(range(16))
    up = ChunkedUpload(16, _sha(data))
    up.add(0, array.array("I", data[:8]))  # 2 items of 4 bytes: 8 bytes, not 2
    up.add(8, bytearray(data[8:]))
    assert up.finish().read() == data


def test_a_closed_upload_refuses_chunks_and_finish_with_upload_errors():
    up = ChunkedUpload(4, _sha(b"abcd"))
    up.close()
    with pytest.raises(UploadError):
        up.add(0, b"abcd")
    with pytest.raises(UploadError):
        up.finish()


_OFFSETS = st.one_of(st.integers(min_value=-5, max_value=70), st.just(2**70), st.booleans(),
                     st.none(), st.floats(allow_nan=True), st.text(max_size=3))
_BAD_DATA = st.one_of(st.integers(min_value=-2, max_value=2**40), st.text(max_size=3),
                      st.none(), st.lists(st.integers(0, 255), max_size=3))


@given(data=st.binary(min_size=0, max_size=64),
       announced=st.one_of(st.none(), st.integers(min_value=-3, max_value=80), st.booleans(),
                           st.text(max_size=3)),
       digest=st.sampled_from(["right", "wrong", "short", "not hex", "none"]),
       steps=st.lists(st.tuples(st.sampled_from(["piece", "repeat", "corrupt", "bad data",
                                                 "bad offset", "finish", "close"]),
                                st.integers(0, 64), st.integers(0, 64), _OFFSETS, _BAD_DATA),
                      max_size=14))
def test_any_session_ends_in_the_exact_bytes_or_a_typed_error(data, announced, digest, steps):
    """Bad sizes, wrong hashes, chunks out of order, repeated, missing, corrupted, of
    the wrong type, after finish or close: only the exact bytes or a typed error."""
    size = len(data) if announced is None else announced
    sha = {"right": _sha(data), "wrong": _sha(data + b"x"), "short": _sha(data)[:10],
           "not hex": "z" * 64, "none": None}[digest]
    try:
        up = ChunkedUpload(size, sha, memory_threshold=16)  # type: ignore[arg-type]
    except EcgIngestError:
        return
    for action, a, b, offset, bad in steps:
        try:
            if action in ("piece", "repeat", "corrupt"):
                start, stop = sorted((a % (len(data) + 1), b % (len(data) + 1)))
                chunk = data[start:stop]
                if action == "corrupt" and chunk:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                up.add(start, chunk)
                if action == "repeat":
                    up.add(start, chunk)
            elif action == "bad data":
                up.add(a, bad)
            elif action == "bad offset":
                up.add(offset, data[:b])
            elif action == "finish":
                assert up.finish().read() == data  # only the announced bytes pass
            else:
                up.close()
        except EcgIngestError:
            continue
