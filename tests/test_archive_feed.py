"""The decompressing thread's native inner loop (``ecgingest._ext.archive_feed``): the
bytes it hands over are libarchive's, in order, each piece with its compressed count."""

from __future__ import annotations

import contextlib
import ctypes
import io
import tarfile
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgingest._ext import archive_feed
from ecgingest.archive import _libarchive as _la
from ecgingest.archive import pipeline

zstandard = pytest.importorskip("zstandard")


@contextlib.contextmanager
def _tar_reader(data: bytes, block: int) -> Iterator[int]:
    """A libarchive TAR reader over ``data``, handing it out in blocks of ``block`` bytes."""
    a = _la.read_new()
    keep = ctypes.c_char_p(data)
    try:
        _la.read_support_format_tar(a)
        assert _la.read_open_memory2(a, ctypes.cast(keep, ctypes.c_void_p).value, len(data),
                                     block) == _la.OK
        yield a
    finally:
        _la.read_free(a)


def _tar_zst(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("a.bin")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return zstandard.ZstdCompressor(level=1).compress(buf.getvalue())


def _raw_reader(data: bytes) -> tuple[int, ctypes.c_char_p]:
    raw = _la.read_new()
    _la.read_support_filter_all(raw)
    _la.read_support_format_raw(raw)
    keep = ctypes.c_char_p(data)
    address = ctypes.cast(keep, ctypes.c_void_p).value
    assert _la.read_open_memory2(raw, address, len(data), 4096) == _la.OK
    entry = ctypes.c_void_p()
    assert _la.read_next_header(raw, ctypes.byref(entry)) == _la.OK
    return raw, keep


def _stream(data: bytes, size: int, rows: int) -> tuple[bytes, list[list[tuple[int, int]]], int]:
    """Every chunk ``fill_chunk`` makes of the decompressed stream, joined; the pieces
    of each chunk; the last status."""
    raw, keep = _raw_reader(data)
    try:
        pieces = np.empty((rows, 2), dtype=np.int64)
        buf = ctypes.create_string_buffer(size)
        out, all_pieces = [], []
        pending_at = pending = counted = 0
        while True:
            status, filled, count, pending_at, pending, counted = archive_feed.fill_chunk(
                pipeline._READ_DATA_BLOCK, pipeline._FILTER_BYTES, raw,
                ctypes.addressof(buf), size, pieces, pending_at, pending, counted)
            out.append(buf.raw[:filled])
            all_pieces.append([tuple(row) for row in pieces[:count].tolist()])
            assert count == 0 or pieces[count - 1, 0] == filled
            if status != _la.OK:
                return b"".join(out), all_pieces, status
    finally:
        _la.read_free(raw)
        del keep


@settings(max_examples=25, deadline=None)
@given(length=st.integers(0, 600_000), size=st.integers(1, 300_000), rows=st.integers(1, 8))
def test_fill_chunk_hands_over_the_decompressed_stream_in_order_whatever_the_chunk_and_rows(
        length, size, rows):
    payload = np.random.default_rng(length).integers(0, 4, length, dtype=np.uint8).tobytes()
    data = _tar_zst(payload)
    stream, pieces, status = _stream(data, size, rows)
    assert status == _la.EOF
    assert stream[512:512 + length] == payload  # the TAR header, then the member
    for chunk in pieces:
        assert len(chunk) <= rows
        ends = [end for end, _ in chunk]
        assert ends == sorted(ends) and len(set(ends)) == len(ends)
    counts = [behind for chunk in pieces for _, behind in chunk]
    assert counts == sorted(counts) and (not counts or 0 < counts[-1] <= len(data))


def test_fill_chunk_stops_at_a_truncated_stream_with_libarchives_status():
    payload = np.random.default_rng(5).integers(0, 4, 400_000, dtype=np.uint8).tobytes()
    data = _tar_zst(payload)
    stream, _, status = _stream(data[:len(data) // 2], 1 << 16, 64)
    assert status not in (_la.OK, _la.EOF)
    assert payload.startswith(stream[512:])  # what came before the failure is the stream


def test_fill_chunk_refuses_a_pieces_array_without_two_columns():
    raw, keep = _raw_reader(_tar_zst(b"x" * 100))
    try:
        buf = ctypes.create_string_buffer(16)
        with pytest.raises(ValueError):
            archive_feed.fill_chunk(pipeline._READ_DATA_BLOCK, pipeline._FILTER_BYTES, raw,
                                    ctypes.addressof(buf), 16, np.empty((4, 3), np.int64),
                                    0, 0, 0)
    finally:
        _la.read_free(raw)
        del keep


def test_address_of_is_where_an_arrays_first_byte_lies_views_included():
    whole = np.empty(4096, np.uint8)
    for view in (whole, whole[17:], whole[100:200], whole.view(np.int16)[5:]):
        assert archive_feed.address_of(view) == view.__array_interface__["data"][0]


def test_next_header_reads_what_libarchives_accessors_read_then_the_end():
    from ecgingest.archive.libarchive import _HEADER_FUNCTIONS

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("d/é.bin")
        info.size = 1234
        tf.addfile(info, io.BytesIO(bytes(1234)))
        sub = tarfile.TarInfo("d/sub")
        sub.type = tarfile.DIRTYPE
        tf.addfile(sub)
        link = tarfile.TarInfo("d/link")
        link.type, link.linkname = tarfile.LNKTYPE, "d/é.bin"
        tf.addfile(link)
    with _tar_reader(buf.getvalue(), 512) as a:
        entry = ctypes.c_void_p()
        seen = []
        while True:
            status, name, ftype, hardlink, size = archive_feed.next_header(
                *_HEADER_FUNCTIONS, a, ctypes.addressof(entry))
            if status != _la.OK:
                break
            assert (name, ftype, hardlink, size) == (
                _la.entry_pathname_utf8(entry), _la.entry_filetype(entry),
                _la.entry_hardlink(entry) is not None,
                _la.entry_size(entry) if _la.entry_size_is_set(entry) else None)
            seen.append((name.decode(), ftype & _la.AE_IFMT, hardlink))
        assert status == _la.EOF
        assert seen == [("d/é.bin", _la.AE_IFREG, False), ("d/sub/", _la.AE_IFDIR, False),
                        ("d/link", 0, True)]


@pytest.mark.parametrize("want", [0, 1, 4999, 5000, 5001, 9000])
def test_read_fully_reads_until_full_or_the_entrys_end(want):
    from ecgingest.archive.libarchive import _HEADER_FUNCTIONS, _READ_DATA

    body = np.random.default_rng(2).bytes(5000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("a.bin")
        info.size = len(body)
        tf.addfile(info, io.BytesIO(body))
    with _tar_reader(buf.getvalue(), 700) as a:  # blocks of 700 bytes: many reads
        entry = ctypes.c_void_p()
        assert archive_feed.next_header(*_HEADER_FUNCTIONS, a, ctypes.addressof(entry))[0] == 0
        out = np.zeros(max(want, 1), np.uint8)
        got, status = archive_feed.read_fully(_READ_DATA, a, archive_feed.address_of(out), want)
        assert got == min(want, len(body))
        assert status == (1 if want <= len(body) else 0)
        assert out[:got].tobytes() == body[:got]
