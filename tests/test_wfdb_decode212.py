"""The format-212 kernel against a plain numpy decode of random bytes, at every
vector level this machine has (the scalar path included), for 1 to 16 signals and
lengths around the kernel's block edges, with and without a cut last group, into
separate arrays and into the views of one large block that a read hands it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgingest import _memory
from ecgingest._ext import wfdb as kernel

TOP_LEVEL = kernel.vector_level(-1)
LEVELS = list(range(TOP_LEVEL + 1))


def numpy_212(raw: bytes, nflat: int) -> np.ndarray:
    """Flat samples of format 212: per 3 bytes, ``b0 | (b1 & 0x0F) << 8`` and
    ``b2 | (b1 & 0xF0) << 4``, 12-bit two's complement."""
    groups = np.frombuffer(raw + b"\0" * 3, np.uint8)[: (nflat + 1) // 2 * 3]
    g = groups.reshape(-1, 3).astype(np.int32)
    flat = np.empty(2 * len(g), np.int32)
    flat[0::2] = g[:, 0] | ((g[:, 1] & 0x0F) << 8)
    flat[1::2] = g[:, 2] | ((g[:, 1] & 0xF0) << 4)
    flat = np.where(flat >= 2048, flat - 4096, flat)
    return flat[:nflat]


def random_212(rng: np.random.Generator, nsig: int, nframes: int) -> tuple[bytes, int]:
    """Random bytes for ``nframes`` frames; an odd sample count ends in a cut group
    (its last byte absent, as a writer that stops at the last sample leaves it)."""
    nflat = nsig * nframes
    raw = rng.integers(0, 256, (nflat + 1) // 2 * 3, dtype=np.uint8).tobytes()
    if nflat % 2:
        raw = raw[:-1]
    return raw, nflat


def check_decode(raw: bytes, nsig: int, nframes: int,
                 outs: list[np.ndarray] | None = None) -> None:
    nflat = nsig * nframes
    if outs is None:
        outs = [np.full(nframes, 12345, np.int16) for _ in range(nsig)]
    status, counts, sums = kernel.decode_group(raw, 212, nflat, [1] * nsig, [0] * nsig,
                                               outs, [0] * nsig)
    want = numpy_212(raw, nflat).reshape(nframes, nsig)
    assert status == 0
    assert counts == [nframes] * nsig
    for s in range(nsig):
        np.testing.assert_array_equal(outs[s], want[:, s], err_msg=f"signal {s} of {nsig}")
    assert sums == [int(want[:, s].sum()) for s in range(nsig)]


def frame_counts(nsig: int) -> list[int]:
    """Short records, and a few frames either side of multiples of 8 and of the
    sizes a block of a few thousand samples takes."""
    counts = set(range(0, 20))
    for samples in (1024, 2048, 4096, 8192):
        edge = max(8, samples // nsig // 8 * 8)
        for k in (1, 2, 3):
            counts.update(k * edge + d for d in (-9, -1, 0, 1, 7, 8, 9))
    return sorted(c for c in counts if c >= 0)


@pytest.mark.parametrize("nsig", range(1, 17))
def test_212_matches_numpy_decode_for_every_signal_count_and_block_edge(wfdb_vector_level, nsig):
    rng = np.random.default_rng(nsig)
    for nframes in frame_counts(nsig):
        raw, _ = random_212(rng, nsig, nframes)
        check_decode(raw, nsig, nframes)


@settings(max_examples=60, deadline=None)
@given(nsig=st.integers(1, 40), nframes=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1),
       level=st.sampled_from(LEVELS))
def test_212_matches_numpy_decode_for_random_shapes(nsig, nframes, seed, level):
    kernel.vector_level(level)
    try:
        raw, _ = random_212(np.random.default_rng(seed), nsig, nframes)
        check_decode(raw, nsig, nframes)
    finally:
        kernel.vector_level(-1)


def test_212_extreme_values_and_sums(wfdb_vector_level):
    """All samples -2048 or all 2047 over many frames: the per-signal sums leave 16
    and 32 bits far behind and stay exact."""
    nsig, nframes = 12, 200_003
    for value in (-2048, 2047):
        flat = np.full(nsig * nframes, value & 0xFFF, np.int64)
        a, b = flat[0::2], flat[1::2]
        packed = np.empty((len(a), 3), np.uint8)
        packed[:, 0] = a & 0xFF
        packed[:, 1] = ((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)
        packed[:, 2] = b & 0xFF
        check_decode(packed.tobytes(), nsig, nframes)


def test_vector_level_caps_and_restores():
    assert 0 <= TOP_LEVEL <= 3
    try:
        assert kernel.vector_level(0) == 0
        assert kernel.vector_level(TOP_LEVEL + 5) == TOP_LEVEL
    finally:
        assert kernel.vector_level(-1) == TOP_LEVEL


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("sizes", [[2_048_000] * 12, [1_800_000] * 12, [3_000_001, 5, 0, 7, 2_500_000],
                                   [4_194_304, 4_194_304]])
@pytest.mark.parametrize("with_arena", [False, True], ids=["own block", "arena"])
def test_large_block_views_start_on_lines_at_distinct_page_offsets(sizes, with_arena):
    """Signal lengths that are multiples of 2048 samples would put every view at one
    offset within a page; each view starts on its own line and page offset instead,
    inside one block, without overlapping the next (also when a read passes its
    arena, which hands large blocks on)."""
    views = _memory.block_views(sizes, np.int16, _memory.Arena() if with_arena else None)
    assert [v.shape[0] for v in views] == sizes
    assert all(v.flags.c_contiguous and v.flags.writeable for v in views)
    nonempty = [v for v in views if v.size]
    assert all(address(v) % _memory.LINE == 0 for v in nonempty)
    offsets = [address(v) % _memory.PAGE for v in nonempty]
    assert len(set(offsets)) == len(offsets)
    for a, b in zip(nonempty, nonempty[1:]):
        assert address(a) + a.nbytes <= address(b)
        assert a.base is not None and a.base is b.base


@pytest.mark.parametrize("nsig", [3, 12, 13])
def test_212_into_large_block_views_matches_numpy_decode(wfdb_vector_level, nsig):
    """The outputs of a large read: views of one block, each on its own line and page
    offset (odd signal counts: the last eight signals overlap the group before)."""
    nframes = (9 << 20) // (2 * nsig) // 2048 * 2048 + 2048 + 5
    raw, _ = random_212(np.random.default_rng(nsig), nsig, nframes)
    outs = _memory.block_views([nframes] * nsig, np.int16)
    for out in outs:
        out.fill(12345)
    check_decode(raw, nsig, nframes, outs)
