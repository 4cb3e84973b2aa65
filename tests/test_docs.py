"""Every ```python example in README.md and docs/*.md runs (from the repository root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not page.is_file():
            continue
        for number, match in enumerate(_BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            yield pytest.param(match.group(1), id=f"{page.name}#{number}")


@pytest.mark.parametrize("code", list(_examples()))
def test_documented_example_runs(code, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ECGINGEST_DOCS_TEST", "1")
    exec(compile(code, "<docs example>", "exec"), {"__name__": "__docs__"})
