"""Large decoded arrays reuse pooled memory without ever sharing it between live arrays."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import ecgingest
from ecgingest import _memory
from ecgingest._ext.scale import to_physical
from ecgingest._memory import Arena, aligned_empty

LARGE = 2_000_000  # float64 items: 16 MB, above the 8 MiB pooling threshold
HUGE_PAGE = 2 * 1024 * 1024


@pytest.fixture
def pool():
    previous = _memory.set_array_pool_limit(256 * 1024 * 1024)
    _memory.set_array_pool_limit(0)  # start empty
    _memory.set_array_pool_limit(256 * 1024 * 1024)
    yield
    _memory.set_array_pool_limit(0)
    _memory.set_array_pool_limit(previous)


def test_dropped_array_returns_its_memory_and_the_next_one_reuses_it(pool):
    first = aligned_empty(LARGE, np.float64)
    address = first.ctypes.data
    assert _memory.array_pool_bytes() == 0
    del first
    assert _memory.array_pool_bytes() >= LARGE * 8
    second = aligned_empty(LARGE, np.float64)
    assert second.ctypes.data == address
    assert _memory.array_pool_bytes() == 0


def test_live_arrays_never_share_memory(pool):
    arrays = [aligned_empty(LARGE, np.float64) for _ in range(3)]
    for k, a in enumerate(arrays):
        a.fill(k)
    del arrays[1]
    arrays.append(aligned_empty(LARGE, np.float64))
    arrays[-1].fill(7)
    assert arrays[0][0] == 0 and arrays[1][-1] == 2 and arrays[2][LARGE // 2] == 7
    starts = sorted(a.ctypes.data for a in arrays)
    assert all(b - a >= LARGE * 8 for a, b in zip(starts, starts[1:]))


def test_a_view_keeps_the_memory_out_of_the_pool(pool):
    array = aligned_empty(LARGE, np.float64)
    array[:] = 3.5
    tail = array[-10:]
    del array
    assert _memory.array_pool_bytes() == 0
    other = aligned_empty(LARGE, np.float64)
    other.fill(-1.0)
    assert np.all(tail == 3.5)
    del tail
    assert _memory.array_pool_bytes() > 0


def test_large_arrays_start_on_a_huge_page_boundary_and_are_plain_writable_arrays(pool):
    array = aligned_empty(2 * LARGE, np.int32)
    assert array.ctypes.data % HUGE_PAGE == 0
    assert array.dtype == np.int32 and array.shape == (2 * LARGE,)
    assert array.flags.c_contiguous and array.flags.writeable and array.flags.aligned
    small = aligned_empty(100, np.float64)
    assert small.shape == (100,) and small.base is None


def test_limit_bounds_what_the_pool_keeps(pool):
    _memory.set_array_pool_limit(20 * 1024 * 1024)
    arrays = [aligned_empty(LARGE, np.float64) for _ in range(3)]  # 16 MiB blocks each
    del arrays
    assert 0 < _memory.array_pool_bytes() <= 20 * 1024 * 1024


def test_limit_zero_frees_the_pool_and_stops_pooling(pool):
    del pool
    array = aligned_empty(LARGE, np.float64)
    del array
    assert _memory.array_pool_bytes() > 0
    assert _memory.set_array_pool_limit(0) == 256 * 1024 * 1024
    assert _memory.array_pool_bytes() == 0
    array = aligned_empty(LARGE, np.float64)
    del array
    assert _memory.array_pool_bytes() == 0


def test_a_miss_releases_pooled_memory_before_allocating(pool):
    """The pool never lifts the peak: memory of another size is let go first."""
    small = aligned_empty(LARGE, np.float64)
    del small
    held = _memory.array_pool_bytes()
    big = aligned_empty(4 * LARGE, np.float64)
    assert _memory.array_pool_bytes() == 0 and held > 0
    del big


def test_negative_limit_is_refused():
    with pytest.raises(ValueError, match="bytes"):
        _memory.set_array_pool_limit(-1)


def test_physical_values_from_pooled_memory_are_exact(pool):
    digital = np.arange(-LARGE // 2, LARGE // 2, dtype=np.int32)
    for _ in range(3):  # the second and third outputs land in reused memory
        physical = to_physical(digital, 0.5, 1.0)
        np.testing.assert_array_equal(physical, digital * 0.5 + 1.0)
        del physical


def _machine_default() -> str:
    """4 GiB or a quarter of physical memory, whichever is less."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return str(512 * 1024 * 1024)
    return str(min(4 * 1024**3, physical // 4))


@pytest.mark.parametrize(("value", "expected"), [("0", "0"), ("1048576", "1048576"),
                                                 ("lots", _machine_default()),
                                                 ("", _machine_default())])
def test_environment_sets_the_default_limit(value, expected):
    code = ("import warnings; warnings.simplefilter('ignore'); "
            "from ecgingest import _memory; print(_memory.set_array_pool_limit(0))")
    env = dict(os.environ, ECGINGEST_ARRAY_POOL=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected


def _lazily_freed_kib() -> int | None:
    try:
        with open("/proc/self/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("LazyFree:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


@pytest.mark.skipif(_lazily_freed_kib() is None, reason="needs Linux's /proc/self/smaps_rollup")
def test_pooled_memory_stays_claimable_by_the_system(pool):
    """A block back in the pool is marked free-on-demand; writing to it again takes it back."""
    before = _lazily_freed_kib()
    array = aligned_empty(4 * LARGE, np.float64)
    array[:] = 1.0
    del array
    assert _lazily_freed_kib() - before >= 30 * 1024  # most of the 64 MB block
    again = aligned_empty(4 * LARGE, np.float64)
    again[:] = 2.0
    assert _lazily_freed_kib() - before < 2 * 1024
    assert (again == 2.0).all()


@pytest.mark.skipif(_lazily_freed_kib() is None, reason="needs Linux's /proc/self/smaps_rollup")
def test_all_but_the_last_few_small_blocks_given_back_are_claimable_by_the_system(pool):
    """Small blocks (a read's bytes, an archive's arena) come back unmarked, the last
    HOT_BLOCKS of them only: the oldest is marked free-on-demand when one more comes."""
    count = _memory.HOT_BLOCKS + 6
    arrays = [aligned_empty(1 << 20, np.uint8, pooled=True) for _ in range(count)]
    for array in arrays:
        array[:] = 1  # every page present
    before = _lazily_freed_kib()
    del arrays, array
    marked = _lazily_freed_kib() - before
    assert marked >= (count - _memory.HOT_BLOCKS) * 900  # 1 MiB written in each
    # the unmarked ones are the small blocks given back last, never more than HOT_BLOCKS
    with _memory._lock:
        small = [id(raw) for capacity, raw, _ in _memory._pooled
                 if capacity <= _memory.HOT_BLOCK_BYTES]
        assert _memory._unmarked == small[-_memory.HOT_BLOCKS:]


def test_a_small_request_takes_the_block_given_back_last(pool):
    """The newest of the blocks that fit: still unmarked, its pages warm."""
    first = aligned_empty(300_000, np.uint8, pooled=True)
    second = aligned_empty(300_000, np.uint8, pooled=True)
    last = second.ctypes.data
    del first, second  # the first comes back first, the second last
    again = aligned_empty(200_000, np.uint8, pooled=True)
    assert again.ctypes.data == last


def test_blocks_leaving_the_pool_leave_no_block_to_mark_behind(pool):
    arrays = [aligned_empty(1 << 20, np.uint8, pooled=True) for _ in range(3)]
    del arrays
    assert len(_memory._unmarked) == 3
    taken = aligned_empty(1 << 20, np.uint8, pooled=True)
    assert len(_memory._unmarked) == 2
    _memory.set_array_pool_limit(0)  # lets the rest go
    assert _memory._unmarked == [] and _memory.array_pool_bytes() == 0
    del taken


def test_blocks_unused_for_the_decay_time_are_let_go(pool, monkeypatch):
    monkeypatch.setattr(_memory, "POOL_DECAY_S", 0.05)
    kept = aligned_empty(LARGE, np.float64)
    dropped = aligned_empty(LARGE, np.float64)
    del dropped
    one_block = _memory.array_pool_bytes()
    assert one_block > 0
    time.sleep(0.1)
    del kept  # any pool operation lets stale blocks go first
    assert _memory.array_pool_bytes() == one_block


# --------------------------------------------------------------------------- arena


def test_arena_arrays_are_disjoint_aligned_and_typed():
    arena = Arena()
    arrays = [arena.empty(n, dtype) for n, dtype in
              [(1, np.uint8), (1000, np.int16), (3, np.int32), (5000, np.uint8)]]
    for k, a in enumerate(arrays):
        a.fill(k + 1)
        assert a.ctypes.data % 64 == 0 and a.flags.c_contiguous and a.flags.writeable
    assert [int(a[0]) for a in arrays] == [1, 2, 3, 4]
    assert arrays[1].dtype == np.int16 and arrays[1].shape == (1000,)
    spans = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


def test_arena_starts_a_new_block_when_one_is_full_and_large_arrays_get_their_own():
    arena = Arena()
    arrays = [arena.empty(Arena.LARGEST) for _ in range(Arena.BLOCK // Arena.LARGEST + 1)]
    first = arrays[0].ctypes.data
    in_first = [a for a in arrays if first <= a.ctypes.data < first + Arena.BLOCK]
    # a block holds BLOCK // LARGEST of them, one fewer when it does not start on 64 bytes
    assert Arena.BLOCK // Arena.LARGEST - 1 <= len(in_first) < len(arrays)
    assert [a.ctypes.data - first for a in in_first] == [
        k * Arena.LARGEST for k in range(len(in_first))]
    big = arena.empty(Arena.LARGEST + 1)
    assert all(not a.ctypes.data <= big.ctypes.data < a.ctypes.data + a.nbytes for a in arrays)
    assert big.nbytes == Arena.LARGEST + 1


def test_kept_record_of_an_archive_survives_its_siblings_and_the_pool(pool):
    """Records of one archive share blocks: dropping the others must not free or reuse
    the memory of the one that is kept."""
    from ecgingest import demo

    expected = {r.name: [s.digital.copy() for s in r.signals] for r in ecgingest.read(demo.archive())}
    records = ecgingest.read(demo.archive())
    kept = records[-1]
    del records
    for _ in range(3):  # later uploads take pooled blocks
        again = ecgingest.read(demo.archive())
        for r in again:
            for s in r.signals:
                assert s.digital.flags.writeable is False
        del again
    for s, ref in zip(kept.signals, expected[kept.name]):
        np.testing.assert_array_equal(s.digital, ref)


def test_threads_allocating_and_dropping_never_see_each_others_arrays(pool):
    import threading

    failures: list[str] = []

    def work(tag: int) -> None:
        for round_ in range(40):
            arrays = [aligned_empty(LARGE // (k + 1), np.float64) for k in range(3)]
            for a in arrays:
                a.fill(tag * 1000 + round_)
            for a in arrays:
                if not (a[0] == a[-1] == a[len(a) // 2] == tag * 1000 + round_):
                    failures.append(f"thread {tag} round {round_}")
            del arrays

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert 0 < _memory.array_pool_bytes() <= 256 * 1024 * 1024


def test_the_pool_controls_are_importable_from_ecgingest_with_a_deprecation_warning(pool):
    with pytest.warns(DeprecationWarning, match="set_array_pool_limit"):
        from ecgingest import set_array_pool_limit
    with pytest.warns(DeprecationWarning, match="array_pool_bytes"):
        held = ecgingest.array_pool_bytes
    assert set_array_pool_limit is _memory.set_array_pool_limit
    assert held() == _memory.array_pool_bytes()
    with pytest.raises(AttributeError):
        ecgingest.no_such_name  # noqa: B018


def test_blocks_dropped_in_many_threads_all_return_to_the_pool_once(pool):
    """Returns come from any thread at any time; each block is filed exactly once."""
    import threading

    arrays = [aligned_empty(LARGE, np.float64) for _ in range(8)]
    capacity = (LARGE * 8 + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
    barrier = threading.Barrier(4)

    def drop(mine: list) -> None:
        barrier.wait()
        mine.clear()

    groups = [arrays[i::4] for i in range(4)]
    del arrays
    threads = [threading.Thread(target=drop, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _memory.array_pool_bytes() == 8 * capacity


def test_poisoned_arrays_hold_the_pattern_until_written(pool):
    previous = _memory._set_poison(b"\xa5\x5a\xc3")
    try:
        small = aligned_empty(7, np.uint8)
        large = aligned_empty(LARGE, np.float64)
        carved = Arena().empty(5, np.uint8)
    finally:
        _memory._set_poison(previous)
    assert bytes(small) == b"\xa5\x5a\xc3\xa5\x5a\xc3\xa5"
    assert set(bytes(carved)) <= {0xA5, 0x5A, 0xC3}
    assert large.view(np.uint8)[:6].tobytes() == b"\xa5\x5a\xc3\xa5\x5a\xc3"


def test_two_reads_at_once_settle_on_pooled_memory(pool, monkeypatch):
    """Two reads that overlap (each a digital block, then physical arrays, the record
    dropped before the other read's arrays are made) stop allocating after a few
    rounds: a miss must not throw away the blocks the other read is about to take."""
    fresh = []
    take = _memory._take

    def counting_take(capacity: int):
        found = take(capacity)
        if found is None:
            fresh.append(capacity)
        return found

    monkeypatch.setattr(_memory, "_take", counting_take)
    per_lead = 1_500_000  # float64 items: 12 MB
    digital = 3 * per_lead

    # a warm-up read alone, as a service starts
    record_a = aligned_empty(digital, np.float64)
    kept = [aligned_empty(per_lead, np.float64) for _ in range(4)]
    del record_a, kept
    misses = []
    for _ in range(6):
        fresh.clear()
        record_a = aligned_empty(digital, np.float64)
        record_b = aligned_empty(digital, np.float64)
        kept_a = [aligned_empty(per_lead, np.float64) for _ in range(4)]
        del record_a  # read A is done; its caller keeps the physical arrays
        kept_b = [aligned_empty(per_lead, np.float64) for _ in range(4)]
        del record_b, kept_a, kept_b
        misses.append(len(fresh))
    assert misses[-3:] == [0, 0, 0], misses
