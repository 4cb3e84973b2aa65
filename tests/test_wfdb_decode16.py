"""The format-16 kernel against numpy's reading of random little-endian bytes, at
every vector level this machine has (the scalar path included), for 1 to 20
signals (the vector path takes eight or more) and lengths around the kernel's
block edges, into separate arrays and into the views of one block, from an odd
address too; sums exact however large."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgingest import _memory
from ecgingest._ext import wfdb as kernel

TOP_LEVEL = kernel.vector_level(-1)
LEVELS = list(range(TOP_LEVEL + 1))


def check_decode(raw: bytes | memoryview, nsig: int, nframes: int,
                 outs: list[np.ndarray] | None = None) -> None:
    nflat = nsig * nframes
    if outs is None:
        outs = [np.full(nframes, 12345, np.int16) for _ in range(nsig)]
    status, counts, sums = kernel.decode_group(raw, 16, nflat, [1] * nsig, [0] * nsig,
                                               outs, [0] * nsig)
    want = np.frombuffer(bytes(raw), "<i2")[:nflat].reshape(nframes, nsig)
    assert status == 0
    assert counts == [nframes] * nsig
    for s in range(nsig):
        np.testing.assert_array_equal(outs[s], want[:, s], err_msg=f"signal {s} of {nsig}")
    assert sums == [int(want[:, s].sum(dtype=np.int64)) for s in range(nsig)]


def frame_counts(nsig: int) -> list[int]:
    """Short records, and a few frames either side of multiples of 8 and 16 and of
    the kernel's blocks (16 KB of frames)."""
    counts = set(range(0, 40))
    block = 16384 // (2 * nsig)
    for edge in (block, 2 * block, 3 * block, 4096):
        counts.update(edge + d for d in (-17, -9, -1, 0, 1, 7, 8, 15, 16, 17))
    return sorted(c for c in counts if c >= 0)


@pytest.mark.parametrize("nsig", range(1, 21))
def test_16_matches_numpy_for_every_signal_count_and_block_edge(wfdb_vector_level, nsig):
    rng = np.random.default_rng(nsig)
    for nframes in frame_counts(nsig):
        raw = rng.integers(0, 256, 2 * nsig * nframes, dtype=np.uint8).tobytes()
        check_decode(raw, nsig, nframes)


@settings(max_examples=60, deadline=None)
@given(nsig=st.integers(1, 40), nframes=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1),
       level=st.sampled_from(LEVELS))
def test_16_matches_numpy_for_random_shapes(nsig, nframes, seed, level):
    kernel.vector_level(level)
    try:
        rng = np.random.default_rng(seed)
        check_decode(rng.integers(0, 256, 2 * nsig * nframes, dtype=np.uint8).tobytes(),
                     nsig, nframes)
    finally:
        kernel.vector_level(-1)


def test_16_extreme_values_keep_exact_sums(wfdb_vector_level):
    """All samples -32768 or all 32767 over many frames: pairs of them and the
    per-signal sums leave 16 and 32 bits far behind and stay exact."""
    nsig, nframes = 12, 200_003
    for value in (-32768, 32767):
        check_decode(np.full(nsig * nframes, value, "<i2").tobytes(), nsig, nframes)


def test_16_from_an_odd_address_into_block_views(wfdb_vector_level):
    """Bytes that start one past an aligned address (a signal file at an odd offset
    in its entry), decoded into the views of one block as a read lays them out."""
    nsig, nframes = 12, 5000
    rng = np.random.default_rng(7)
    raw = memoryview(rng.integers(0, 256, 2 * nsig * nframes + 1, dtype=np.uint8).tobytes())
    outs = _memory.block_views([nframes] * nsig, np.int16)
    check_decode(raw[1:], nsig, nframes, outs)
