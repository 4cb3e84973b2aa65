"""No memory a decoder did not write reaches a record.

Arrays come from the array pool and arenas, whose blocks held earlier uploads'
samples. With every handed-out array filled with a pattern first, a read must
give exactly what it gives with another pattern and with none: any difference
is a sample the decoder never wrote. Every fixture and corpus file of every
format is read as bytes and as a path, intact and cut short (a short file is
where decoders leave tails unwritten).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ecgingest
from conftest import FIXTURES, corpus_dir
from ecgingest import _memory

PATTERNS = (b"\xa5\x5a\xc3\x3c\x96\x69\xf0\x0f", b"\x5b\xb5\x7e\xe7\x18\x81\x42\x24")
"""Byte patterns unlikely in real samples (no run of equal bytes, no small integers)."""

_SINGLE_SUFFIXES = {".edf", ".bdf", ".scp", ".cmdt", ".json"}


def _single_files() -> list[Path]:
    files = [p for fmt in ("edf", "scp", "compressed_delta", "kardia")
             for p in sorted((FIXTURES / fmt).iterdir())
             if p.suffix.lower() in _SINGLE_SUFFIXES and ".ref." not in p.name
             and p.name != "reference.json" and not p.name.endswith(".digest.json")]
    root = corpus_dir()
    if root is not None:
        for entry in json.loads((root / "records.json").read_text()):
            if entry["format"] in ("edf", "scp"):
                files.append(root / entry["path"])
    return files


def _wfdb_records() -> list[tuple[Path, list[Path]]]:
    """(header, the record's files) of every fixture and corpus WFDB record."""
    records = []
    for header in sorted((FIXTURES / "wfdb").glob("*/*.hea")):
        files = [p for p in sorted(header.parent.iterdir()) if ".ref." not in p.name]
        records.append((header, files))
    root = corpus_dir()
    if root is not None:
        for entry in json.loads((root / "records.json").read_text()):
            if entry["format"] == "wfdb":
                records.append((root / entry["path"], [root / f for f in entry["files"]]))
    return records


def _arrays(source) -> list:
    """Every array of every record (digital, mask, supplied physical), or the error type."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ecgingest.ingest(source)
    out: list = [type(e.error).__name__ for e in result.errors]  # what cut files give
    for record in result.records:
        for signal in record.signals:
            out.append(signal.digital.tobytes())
            for extra in (signal.invalid_mask, signal.supplied_physical):
                out.append(None if extra is None else np.asarray(extra).tobytes())
    return out


def _unwritten(read) -> bool:
    """True when a read's arrays depend on what the memory held before."""
    seen = []
    for pattern in (None, *PATTERNS):
        previous = _memory._set_poison(pattern)
        try:
            seen.append(read())
        finally:
            _memory._set_poison(previous)
    return not (seen[0] == seen[1] == seen[2])


def test_the_poison_hook_does_show_unwritten_memory():
    """The check can fail: an array left unwritten differs between patterns."""
    assert _unwritten(lambda: _memory.aligned_empty(64, np.int16).tobytes())
    assert not _unwritten(lambda: np.zeros(64, np.int16).tobytes())


@pytest.mark.parametrize("path", _single_files(), ids=lambda p: p.name)
def test_single_file_records_hold_only_written_samples(tmp_path, path):
    data = path.read_bytes()
    for name, variant in (("intact", data), ("cut", data[: len(data) * 2 // 3])):
        copy = tmp_path / f"{name}{path.suffix}"
        copy.write_bytes(variant)
        assert not _unwritten(lambda: _arrays(variant)), f"{name} as bytes"
        assert not _unwritten(lambda: _arrays(copy)), f"{name} as a path"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("header", "files"), [
    pytest.param(header, files, id=header.parent.name + "/" + header.name)
    for header, files in _wfdb_records()])
def test_wfdb_records_hold_only_written_samples(tmp_path, header, files):
    contents = {f.name: f.read_bytes() for f in files}
    signal_files = [n for n in contents if not n.endswith(".hea")]
    variants = [("intact", contents)]
    for name in signal_files[:2]:  # signal files cut short in turn
        variants.append((f"{name} cut", {**contents, name: contents[name][
            : len(contents[name]) * 2 // 3]}))
    for label, variant in variants:
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir()
        for name, data in variant.items():
            (folder / name).write_bytes(data)
        archive = _zip(variant)
        assert not _unwritten(lambda: _arrays(archive)), f"{label} in a ZIP"
        assert not _unwritten(lambda: _arrays(folder / header.name)), f"{label} as a path"
