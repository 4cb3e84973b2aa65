"""Physical conversion: streaming stores for large outputs give the same values as ordinary ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgingest._ext import scale

STREAM_ITEMS = scale._STREAM_FROM_BYTES // 8  # outputs this long bypass the caches
DTYPES = (np.int8, np.int16, np.int32, np.int64)


def _mismatches(dtype, length, skip, invalid, masked, seed) -> tuple[list[int], list[int]]:
    """First differing indices of (streamed, ordinary) against numpy's values. Only
    these small lists leave the function: a failing example must not keep its
    megabytes alive in the traceback hypothesis holds on to."""
    rng = np.random.default_rng(seed)
    digital = rng.integers(-9, 9, length + skip).astype(dtype)[skip:]
    mask = (rng.random(length) < 0.001).astype(np.uint8) if masked else None
    expected = digital * 0.125 - 3.5
    nan = np.zeros(length, dtype=bool) if invalid is None else digital == invalid
    if mask is not None:
        nan |= mask.astype(bool)
    expected[nan] = np.nan
    found = []
    for stream in (True, False):
        out = scale.to_physical(digital, 0.125, -3.5, invalid, mask, stream=stream)
        same = (out == expected) | (np.isnan(out) & np.isnan(expected))
        found.append(np.flatnonzero(~same)[:5].tolist())
    return found[0], found[1]


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    length=st.integers(STREAM_ITEMS - 600, STREAM_ITEMS + 1100),
    skip=st.integers(0, 9),  # a view that starts off the source's and output's alignment
    invalid=st.sampled_from([None, 0, 7]),
    masked=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_streaming_conversion_equals_ordinary_stores(dtype, length, skip, invalid, masked, seed):
    assert _mismatches(dtype, length, skip, invalid, masked, seed) == ([], [])


@pytest.mark.parametrize("length", [0, 1, 511, STREAM_ITEMS - 1, STREAM_ITEMS, 3 * STREAM_ITEMS + 5])
def test_conversion_of_every_length_is_exact(length):
    digital = np.arange(length, dtype=np.int32) - length // 2
    np.testing.assert_array_equal(scale.to_physical(digital, 2.0, 1.0), digital * 2.0 + 1.0)


def test_streamed_output_written_in_one_thread_reads_back_in_another():
    from concurrent.futures import ThreadPoolExecutor

    digital = np.arange(2 * STREAM_ITEMS, dtype=np.int32)
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(lambda _: scale.to_physical(digital, 1.0, 0.0), range(4)))
    for out in outputs:
        np.testing.assert_array_equal(out, digital.astype(np.float64))


def _deinterleave_mismatch(counts: list[int], n_records: int, seed: int, stream: bool) -> list:
    """Signals whose de-interleaved samples differ from numpy's (only small values leave)."""
    from ecgingest._ext import edf

    rng = np.random.default_rng(seed)
    record = sum(counts)
    data = rng.integers(-32768, 32767, n_records * record + 7, dtype=np.int16)
    raw = data.view(np.uint8)[14:]  # a header of 14 bytes: records start off alignment
    records = data[7:].reshape(n_records, record)
    offsets = np.cumsum([0, *counts[:-1]]).astype(np.int64)
    outputs = [np.empty(n_records * c, dtype=np.int16) for c in counts]
    status = edf.deinterleave(raw, 0, n_records, np.array(counts, dtype=np.int64), offsets * 2,
                              record * 2, 2, outputs, stream)
    assert status == 0
    return [j for j, c in enumerate(counts)
            if not np.array_equal(outputs[j], records[:, offsets[j]:offsets[j] + c].reshape(-1))]


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(1, 700), min_size=1, max_size=5),
       seed=st.integers(0, 2**32 - 1), stream=st.booleans())
def test_edf_deinterleave_with_streaming_stores_equals_the_stored_samples(counts, seed, stream):
    # enough records for the outputs to pass the streaming threshold together
    n_records = STREAM_ITEMS * 8 // (2 * sum(counts)) + 3
    assert _deinterleave_mismatch(counts, n_records, seed, stream) == []


def test_set_fields_sets_frozen_dataclass_fields_as_the_generated_init_does():
    from ecgingest import Metadata

    built = Metadata(patient_id="p1", patient_age=42)
    filled = Metadata.__new__(Metadata)
    names = tuple(vars(built))
    scale.set_fields(filled, names, tuple(vars(built).values()))
    assert filled == built
    assert list(vars(filled)) == list(names)
    with pytest.raises(ValueError, match="one value per name"):
        scale.set_fields(filled, names, ())
