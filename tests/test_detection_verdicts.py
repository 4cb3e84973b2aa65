"""The whole registry's verdict on every fixture and corpus file, pinned.

For each file (and three prefixes of it, as a sniffer sees a short file) the
table holds which single-file formats' sniffers claim it, the format detection
picks, the skip reason the registry gives when none does, and the multi-file
format it anchors. Any change to a sniffer, to the registry order or to the
shared look at a document's prefix that changes one answer fails here.

The table was written by the detection code it pins::

    ECGINGEST_CORPUS=<corpus> PYTHONPATH=src python tests/test_detection_verdicts.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, corpus_dir
from ecgingest.detect import detect, skip_reason, sniff_anchor
from ecgingest.formats import single_file_formats
from ecgingest.formats._base import Probe

TABLE = Path(__file__).resolve().parent / "detection_verdicts.json"
PREFIXES = (8, 100, 3000)
"""Prefix lengths whose verdicts are pinned too (a short file, a cut one)."""


def verdict(data: bytes, name: str) -> dict[str, Any]:
    """What the registry says of these bytes under this name (a fresh probe per question)."""
    claims = [fmt.name for fmt in single_file_formats()
              if _claims(fmt, Probe.of_bytes(data, name))]
    found = detect(Probe.of_bytes(data, name))
    anchor = sniff_anchor(Probe.of_bytes(data, name))
    return {"claims": claims, "detected": None if found is None else found.name,
            "skip_reason": skip_reason(Probe.of_bytes(data, name)),
            "anchor": None if anchor is None else anchor.name}


def _claims(fmt: Any, probe: Probe) -> bool:
    try:
        return bool(fmt.sniff(probe))
    except Exception:  # detection counts a raising sniffer as "not mine"
        return False


def _files(root: Path, prefix: str) -> dict[str, Path]:
    return {f"{prefix}/{path.relative_to(root).as_posix()}": path
            for path in sorted(root.rglob("*")) if path.is_file()}


def _all_files() -> dict[str, Path]:
    found = _files(FIXTURES, "fixtures")
    corpus = corpus_dir()
    if corpus is not None:
        found.update(_files(corpus, "corpus"))
    return found


def _keys(key: str) -> list[tuple[str, int | None]]:
    return [(key, None)] + [(key, n) for n in PREFIXES]


def _entry(key: str, cut: int | None) -> str:
    return key if cut is None else f"{key}[:{cut}]"


def _table() -> dict[str, Any]:
    return json.loads(TABLE.read_text()) if TABLE.is_file() else {}


PINNED = _table()
FILES = _all_files()


@pytest.mark.parametrize("key", sorted({k for k in PINNED if "[:" not in k}))
def test_the_registry_gives_the_pinned_verdict_on_every_known_file(key):
    path = FILES.get(key)
    if path is None:
        pytest.skip("corpus not available" if key.startswith("corpus/") else "file gone")
    data = path.read_bytes()
    for name, cut in _keys(key):
        assert verdict(data if cut is None else data[:cut], path.name) == \
            PINNED[_entry(name, cut)], _entry(name, cut)


def test_every_fixture_has_a_pinned_verdict():
    missing = [key for key in FILES if key.startswith("fixtures/") and key not in PINNED]
    assert missing == [], ("new fixture files: write their verdicts with `python "
                           "tests/test_detection_verdicts.py --write` (with ECGINGEST_CORPUS "
                           "set) and check in the table's diff, which shows every answer "
                           "that changed")


def _write() -> None:
    table: dict[str, Any] = {}
    for key, path in FILES.items():
        data = path.read_bytes()
        for name, cut in _keys(key):
            table[_entry(name, cut)] = verdict(data if cut is None else data[:cut], path.name)
    TABLE.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__" and "--write" in sys.argv:
    _write()
