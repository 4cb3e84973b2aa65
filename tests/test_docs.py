"""Every ```python example in README.md and docs/*.md runs (from the repository root).

Blocks written as an interactive session (``>>>``) run as doctests, so their
printed output is checked too.
"""

from __future__ import annotations

import doctest
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
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, {"__name__": "__docs__"},
                                                   "docs example", None, 0)
        runner = doctest.DocTestRunner(
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"{runner.failures} doctest example(s) failed (see output)"
    else:
        exec(compile(code, "<docs example>", "exec"), {"__name__": "__docs__"})
