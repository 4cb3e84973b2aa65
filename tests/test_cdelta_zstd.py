"""Compressed Delta's native Zstandard path: one pass from the frame to the samples, with a
decompression context kept per thread. It must give what python-zstandard gives (the path
taken without it), keep the decoded output bounded, and never let one read affect another."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ecgingest
from ecgingest import errors
from ecgingest.formats import cdelta

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "compressed_delta"
DTYPES = {8: np.int8, 16: np.int16, 24: np.int32, 32: np.int32}
ONE_SHOT_MAX = 1 << 20  # frames above this stream through the scratch (ext/cdelta.pyx)


def _python_zstandard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read frames as when libzstd's functions cannot be found."""
    monkeypatch.setattr(cdelta, "_zstd_samples", lambda: None)


def _container(x: np.ndarray, bits: int, coding: int, *, content_size: bool = True,
               level: int = 3) -> bytes:
    """A Zstandard container written with python-zstandard directly (optionally without
    the frame's content size, which sends the native path through its streaming loop)."""
    coded = cdelta._kernel.encode_samples(x, bits, coding).tobytes()
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=content_size)
    if content_size:
        block = compressor.compress(coded)
    else:
        stream = compressor.compressobj()
        block = stream.compress(coded) + stream.flush()
    return struct.pack("<4sQBIdBBB", b"cMdT", len(block), x.shape[0], x.shape[1], 500.0, bits,
                       coding, 1) + block


def _outcome(data: bytes) -> tuple[str, object]:
    try:
        return "samples", cdelta.decode_payload(data)[1]
    except errors.EcgIngestError as exc:
        return type(exc).__name__, (exc.field, str(exc))


def _same(a: tuple[str, object], b: tuple[str, object], *, texts: bool = True) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "samples":
        return bool(np.array_equal(a[1], b[1]) and a[1].dtype == b[1].dtype)  # type: ignore
    return a[1] == b[1] if texts else True


def _wide(bits: int, channels: int, samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.integers(-200, 201, (channels, samples)), axis=1)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(walk, lo, hi).astype(DTYPES[bits])


def test_the_native_path_is_available_here():
    """The tests below compare two paths; they mean something only if both exist."""
    assert cdelta._zstd_addresses() is not None
    assert cdelta._zstd_samples() is not None


@pytest.mark.parametrize("content_size", [True, False], ids=["sized", "unsized"])
@pytest.mark.parametrize("coding", [0, 1, 2])
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_frames_beyond_the_one_shot_size_stream_with_samples_split_across_pieces(
        bits, coding, content_size):
    # 3 channels of 131,075 samples: above 1 MiB for 24 and 32 bits, and 128 KiB pieces
    # end inside a 3-byte sample and inside a channel
    x = _wide(bits, 3, 131_075, seed=bits + coding)
    data = _container(x, bits, coding, content_size=content_size)
    assert (bits // 8) * x.size > ONE_SHOT_MAX or bits < 24
    header, samples = cdelta.decode_payload(data)
    assert samples.dtype == DTYPES[bits] and np.array_equal(samples, x)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), bits=st.sampled_from([8, 16, 24, 32]), coding=st.integers(0, 2),
       content_size=st.booleans())
def test_native_and_python_zstandard_paths_decode_the_same_samples(data, bits, coding,
                                                                   content_size):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = data.draw(hnp.arrays(DTYPES[bits], st.tuples(st.integers(1, 4), st.integers(1, 300)),
                             elements=st.integers(lo, hi)))
    container = _container(x, bits, coding, content_size=content_size)
    native = _outcome(container)
    with pytest.MonkeyPatch.context() as patch:
        _python_zstandard(patch)
        reference = _outcome(container)
    assert native[0] == "samples" and _same(native, reference)
    assert np.array_equal(native[1], x)  # type: ignore[arg-type]


def _damaged_variants() -> list[tuple[str, bytes]]:
    x = _wide(16, 2, 3000, seed=7)
    sized = _container(x, 16, 1)
    unsized = _container(x, 16, 2, content_size=False)
    header = sized[:28]
    block = sized[28:]
    out = [
        ("flipped", sized[:60] + bytes([sized[60] ^ 0xFF]) + sized[61:]),
        ("zeroed tail", sized[:40] + bytes(len(sized) - 40)),
        ("flipped unsized", unsized[:70] + bytes([unsized[70] ^ 0x55]) + unsized[71:]),
        ("cut frame", header[:4] + struct.pack("<Q", len(block) - 9) + header[12:]
         + block[:-9]),
        ("cut unsized frame", unsized[:4] + struct.pack("<Q", len(unsized) - 28 - 9)
         + unsized[12:-9]),
        ("second frame", header[:4] + struct.pack("<Q", 2 * len(block)) + header[12:]
         + block * 2),
        ("frame too long", _container(np.zeros((2, 3001), np.int16), 16, 1,
                                      content_size=False)[:13] + struct.pack("<I", 3000)
         + _container(np.zeros((2, 3001), np.int16), 16, 1, content_size=False)[17:]),
    ]
    coded = cdelta._kernel.encode_samples(x, 16, 1).tobytes()
    checked = zstandard.ZstdCompressor(write_checksum=True).compress(coded)[:-4]
    out.append(("cut checksum", struct.pack("<4sQBIdBBB", b"cMdT", len(checked), 2, 3000,
                                            500.0, 16, 1, 1) + checked))
    regressions = FIXTURES / "regressions"
    out.append(("regression", (regressions / "zstd_context_damaged.cmdt").read_bytes()))
    out.append(("regression prior", (regressions / "zstd_context_prior.cmdt").read_bytes()))
    return out


DAMAGED = _damaged_variants()


@pytest.mark.parametrize("name, damaged", DAMAGED, ids=[name for name, _ in DAMAGED])
def test_damaged_frames_are_typed_errors_of_the_same_kind_on_both_paths(name, damaged,
                                                                        monkeypatch):
    """The same error type; the texts differ (libzstd's error names without
    python-zstandard's prefix, and a cut frame is named as cut, not as too long)."""
    native = _outcome(damaged)
    assert native[0] in ("CorruptDataError", "TruncatedError"), native
    _python_zstandard(monkeypatch)
    assert _same(native, _outcome(damaged), texts=False)


@pytest.mark.parametrize("name, damaged", DAMAGED, ids=[name for name, _ in DAMAGED])
def test_a_damaged_frame_neither_affects_the_next_read_nor_depends_on_the_last(name, damaged):
    small = _wide(16, 12, 5000, seed=1)
    big = _wide(24, 3, 131_075, seed=2)  # the streaming path
    good = [(_container(small, 16, 1), small), (_container(big, 24, 2), big),
            (_container(small, 16, 2, content_size=False), small)]

    def run(reads: list[bytes]) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        thread = threading.Thread(target=lambda: out.extend(_outcome(r) for r in reads))
        thread.start()  # a thread of its own: a context that read nothing before
        thread.join()
        return out

    [alone] = run([damaged])
    assert alone[0] != "samples"
    sequence = [damaged]
    for container, _ in good:
        sequence += [container, damaged]
    outcomes = run([*sequence, damaged, *(container for container, _ in good)])
    for position, outcome in enumerate(outcomes):
        read = ([*sequence, damaged, *(c for c, _ in good)])[position]
        if read is damaged:
            assert _same(outcome, alone), (position, outcome, alone)
        else:
            expected = next(x for c, x in good if c is read)
            assert outcome[0] == "samples" and np.array_equal(outcome[1], expected)


def test_reads_in_threads_each_use_their_own_context_and_get_their_own_samples():
    shapes = [(16, 1, 12, 5000), (16, 2, 1, 7), (24, 0, 3, 131_075), (8, 1, 2, 999),
              (32, 2, 4, 70_000), (16, 1, 12, 500)]  # bits, coding, channels, samples
    arrays = [_wide(bits, channels, samples, seed=k)
              for k, (bits, _, channels, samples) in enumerate(shapes)]
    containers = [_container(x, bits, coding, content_size=bool(k % 2))
                  for k, (x, (bits, coding, _, _)) in enumerate(zip(arrays, shapes))]
    damaged = [d for _, d in DAMAGED]
    contexts: set[int] = set()
    start = threading.Barrier(4)

    def work(seed: int) -> int:
        start.wait()  # all four threads alive at once: four contexts
        contexts.add(id(cdelta._zstd_samples()))
        rng = np.random.default_rng(seed)
        checked = 0
        for _ in range(60):
            k = int(rng.integers(len(containers) + len(damaged)))
            if k < len(containers):
                header, samples = cdelta.decode_payload(containers[k])
                assert np.array_equal(samples, arrays[k])
                checked += 1
            else:
                with pytest.raises((errors.CorruptDataError, errors.TruncatedError)):
                    cdelta.decode_payload(damaged[k - len(containers)])
        return checked

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(work, range(4))) > 0
    assert len(contexts) == 4


def test_a_claim_beyond_the_ratio_limits_still_grows_with_the_real_data(monkeypatch):
    """Up-front allocation only within Limits.max_ratio: the native path allocates the
    samples before decompressing, so claims beyond it keep the growing path."""
    native: list[Callable[[], object]] = []
    real = cdelta._zstd_samples

    def spy() -> object:
        native.append(real)
        return real()

    monkeypatch.setattr(cdelta, "_zstd_samples", spy)
    x = np.zeros((4, 2_500_000), np.int16)
    data = _container(x, 16, 1, content_size=False)
    assert np.array_equal(cdelta.decode_payload(data)[1], x)
    assert native == []
    small = _container(_wide(16, 2, 100), 16, 1)
    cdelta.decode_payload(small)
    assert len(native) == 1


def test_reading_many_frames_through_ingest_matches_the_writer():
    x = _wide(16, 12, 5000, seed=3)
    data = ecgingest.encode_compressed_delta(x, sample_rate=500.0, coding="DOUBLE_DELTA_ZIGZAG")
    for _ in range(3):
        [record] = ecgingest.read(data)
        assert np.array_equal(np.stack([s.digital for s in record.signals]), x)
