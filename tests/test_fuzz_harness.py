"""The fuzz harness itself, and its targets run by hypothesis (no atheris needed).

The targets' oracle is the library's promise (records or a typed error,
nothing intact lost); here each target runs on its seeds and on mutations
of them, so the promise is checked in every test run, with or without a
coverage-guided engine.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fuzz package (repo root)
from fuzz import engines
from fuzz.corpus import FIXTURES, pack, shrink_edf, unpack
from fuzz.mutate import INTERESTING, apply, random_mutations
from fuzz.oracle import Finding, outcome_of, signature, typed
from fuzz.stateful import Reader
from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent

_SEEDS = {name: target.seeds() for name, target in TARGETS.items()}
_MUTATION = st.tuples(st.sampled_from(("set", "text", "insert", "delete", "truncate")),
                      st.integers(0, 1 << 16),
                      st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8))


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_has_seeds_that_keep_the_promise(name):
    seeds = _SEEDS[name]
    assert seeds, f"target {name} has no seeds"
    for seed in seeds:
        TARGETS[name].run(seed)


@pytest.mark.parametrize("name", list(TARGETS))
@settings(max_examples=25, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_seeds_end_in_records_or_a_typed_error(name, data):
    seeds = _SEEDS[name]
    seed = seeds[data.draw(st.integers(0, len(seeds) - 1), label="seed")]
    mutations = data.draw(st.lists(_MUTATION, min_size=1, max_size=4), label="mutations")
    TARGETS[name].run(apply(seed, mutations))


def test_mutations_replay_exactly():
    seed = bytes(range(64))
    rng = random.Random(3)
    mutations = random_mutations(rng, len(seed), 5)
    assert apply(seed, mutations) == apply(seed, mutations)
    assert apply(seed, [("text", 10, b"ab")]) == seed[:10] + b"ab" + seed[12:]
    assert apply(seed, [("truncate", 5, b"")]) == seed[:5]
    assert apply(seed, [("insert", 0, b"x"), ("delete", 0, b"x")]) == seed


def test_packed_files_unpack_to_the_same_names_and_bytes():
    files = [("a.hea", b"a 1 250 10\n"), ("a.dat", bytes(range(256)) + b"\n@@ x")]
    assert unpack(pack(files)) == files
    assert unpack(b"lonely header") == [("r.hea", b"lonely header")]


def test_shrunk_edf_reads_with_fewer_data_records():
    data = (FIXTURES / "edf" / "test_subsecond.edf").read_bytes()
    small = shrink_edf(data, 16 * 1024)
    assert len(small) <= 16 * 1024
    [full] = ecgingest.read(data)
    [cut] = ecgingest.read(small)
    n = len(cut.signals[0].digital)
    assert 0 < n < len(full.signals[0].digital)
    assert (cut.signals[0].digital == full.signals[0].digital[:n]).all()


def test_oracle_passes_typed_errors_and_flags_everything_else():
    err = typed(lambda: ecgingest.read(b"not an ecg"))
    assert isinstance(err, ecgingest.errors.UnsupportedFormatError)
    assert outcome_of(lambda: ecgingest.read(b"not an ecg")) == ("error", "UnsupportedFormatError")
    with pytest.raises(Finding) as caught:
        typed(lambda: [][1])
    assert signature(caught.value).startswith("untyped/IndexError/")


def test_reader_yields_zeros_after_the_input_ends():
    r = Reader(b"\x05\x01\x02")
    assert (r.byte(), r.number(2), r.byte(), r.take(4)) == (5, 0x0201, 0, b"")


def test_execution_counts_come_from_libfuzzer_or_the_fallback():
    assert engines._executions("#12\tpulse\nstat::number_of_executed_units: 345\n") == 345
    assert engines._executions('FUZZ-STATS {"executions": 77}\n') == 77
    assert engines._executions("#8\tINITED\n#64\tpulse\n") == 64


def test_every_fuzz_target_runs_a_short_campaign_without_findings():
    """The CI campaign: every target for its share of a minute (atheris where it installs,
    the hypothesis engine elsewhere); any crash, hang, untyped error or lost record fails."""
    seconds = os.environ.get("ECGINGEST_FUZZ_SECONDS", "60")
    proc = subprocess.run([sys.executable, "-m", "fuzz", "ci", "--seconds", seconds],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " 0 finding(s)" in proc.stdout.splitlines()[-1]
