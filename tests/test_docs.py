"""The documentation holds: every example runs, the format template works, the site builds.

- Every ```python example in README.md and docs/**/*.md runs (from the
  repository root). Blocks written as an interactive session (``>>>``) run as
  doctests, so their printed output is checked too.
- ``docs/formats/_template.py``, the file a new format starts from, is loaded
  as a module of ``ecgingest.formats``, registered in a copy of the registry
  and read through the public API, so it cannot drift from the plug-in
  contract.
- mkdocs.yml names no path of one machine.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ecgingest
import ecgingest.demo
import ecgingest.detect
import ecgingest.formats
from ecgingest.errors import (
    CorruptDataError,
    EcgWarning,
    HeaderError,
    LimitExceededError,
    TruncatedError,
    UnsupportedFormatError,
)
from ecgingest.formats._base import DecodeContext, Probe, SingleFileFormat
from ecgingest.record import RecordInfo

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "docs" / "formats" / "_template.py"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


# --------------------------------------------------------------------------- examples


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _examples():
    for page in _pages():
        if not page.is_file():
            continue
        name = page.relative_to(ROOT).as_posix()
        for number, match in enumerate(_BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            yield pytest.param(match.group(1), id=f"{name}#{number}")


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


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    assert pages and [p for p in pages if p not in nav] == []


def test_api_reference_documents_every_public_name():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    # the last part names the object (``ecgingest.ingest.ingest``: the function, not its module)
    documented = set(re.findall(r"^::: ecgingest(?:\.\w+)*\.(\w+)$", text, re.M))
    assert set(ecgingest.__all__) - {"__version__"} - documented == set()


def test_mkdocs_config_names_no_machine_path():
    text = re.sub(r"[a-z]+://\S*", "", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert not re.search(r"(^|[\s:\[,'\"])(/|~/|[A-Za-z]:\\)", text, re.M), \
        "mkdocs.yml must use paths relative to the repository"


# --------------------------------------------------------------------------- the template


def _load_template():
    # loaded as a module of ecgingest.formats, exactly as a copy in src/ would import
    name = "ecgingest.formats._docs_template"
    spec = importlib.util.spec_from_file_location(name, TEMPLATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture
def template_format(monkeypatch):
    """The template's format, appended to a copy of the registry (detection order kept)."""
    fmt = _load_template().FORMAT
    registry = (*ecgingest.formats.FORMATS, fmt)
    monkeypatch.setattr(ecgingest.formats, "FORMATS", registry)
    monkeypatch.setattr(ecgingest.detect, "FORMATS", registry)
    return fmt


SAMPLE = (b"ECGCSV/1 rate=250 units=uV scale=0.5 leads=I,II\n"
          b"@0.004 R peak\n"
          b"10,-3\n12,-1\n-7,4\n")


def test_template_imports_only_the_plugin_contract():
    allowed = {"._base", "..errors", "..record", "..limits", "..", "__future__", "math",
               "numpy"}
    tree = ast.parse(TEMPLATE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert imported <= allowed, imported - allowed


def test_template_format_implements_the_single_file_contract():
    fmt = _load_template().FORMAT
    assert isinstance(fmt, SingleFileFormat) and fmt.name == "ecg_csv"


def test_registered_template_format_reads_bytes_through_the_public_api(template_format):
    [record] = ecgingest.read(SAMPLE)
    assert (record.format, record.format_detail, record.labels) == ("ecg_csv", "ECG CSV 1",
                                                                     ["I", "II"])
    assert record.signals[0].sample_rate == 250.0 and record.signals[0].units == "uV"
    assert record.signals[0].digital.tolist() == [10, 12, -7]
    assert record.signals[1].digital.tolist() == [-3, -1, 4]
    np.testing.assert_array_equal(record.signals[1].physical, [-1.5, -0.5, 2.0])
    assert [(a.onset, a.text) for a in record.annotations] == [(0.004, "R peak")]
    assert not record.signals[0].digital.flags.writeable


def test_registered_template_format_reads_a_path_and_an_archive_entry(template_format,
                                                                      tmp_path):
    path = tmp_path / "patient7.txt"
    path.write_bytes(SAMPLE)
    [record] = ecgingest.read(path)
    assert record.name == "patient7.txt" and record.sources == ("patient7.txt",)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/ecg.csv", SAMPLE)
        archive.writestr("a/notes.txt", b"not an ECG")
        archive.writestr("b/broken.csv", SAMPLE.replace(b"12,-1", b"12,x"))
    result = ecgingest.ingest(buffer.getvalue())
    assert [r.sources for r in result.records] == [("a/ecg.csv",)]
    assert [s.path for s in result.skipped] == ["a/notes.txt"]
    [failed] = result.errors
    assert failed.paths == ("b/broken.csv",) and isinstance(failed.error, CorruptDataError)


def test_registered_template_format_leaves_every_other_format_as_it_was(template_format):
    for fixture in sorted((ROOT / "fixtures").rglob("*")) + [ecgingest.demo.path()]:
        if fixture.is_file():
            probe = Probe(fixture.name, fixture.stat().st_size,
                          lambda n, f=fixture: f.read_bytes()[:n])
            assert not template_format.sniff(probe), fixture
    result = ecgingest.ingest(ecgingest.demo.path())
    assert sorted(r.format for r in result.records) == ["edf", "scp", "wfdb"]


def test_unknown_input_names_the_registered_template_format(template_format):
    with pytest.raises(UnsupportedFormatError) as caught:
        ecgingest.read(b"neither ECG nor archive")
    assert "ecg_csv" in caught.value.tried


@pytest.mark.parametrize(("damage", "error", "field"), [
    (lambda d: d.replace(b"ECGCSV/1", b"ECGCSV/2"), HeaderError, "version"),
    (lambda d: d.replace(b"rate=250", b"rate=-1"), HeaderError, "rate"),
    (lambda d: d.replace(b" leads=I,II", b""), HeaderError, "leads"),
    (lambda d: d.replace(b"12,-1", b"12"), TruncatedError, None),
    (lambda d: d.replace(b"12,-1", b"12,99999999999"), CorruptDataError, None),
    (lambda d: d.replace(b"@0.004", b"@soon"), CorruptDataError, "annotation"),
])
def test_damaged_template_files_end_in_typed_errors(template_format, damage, error, field):
    with pytest.raises(error) as caught:
        ecgingest.read(damage(SAMPLE))
    assert caught.value.format == "ecg_csv" and caught.value.field == field
    assert "status" not in str(caught.value)  # kernel statuses never reach a user as numbers


def test_template_deviation_is_a_warning_then_a_strict_error(template_format):
    odd = SAMPLE.replace(b"scale=0.5", b"scale=0.5 site=ward3")
    with pytest.warns(EcgWarning, match="site"):
        [record] = ecgingest.read(odd)
    assert record.warnings == ["unknown header key 'site' ignored"]
    with pytest.raises(HeaderError, match="strict mode") as caught:
        ecgingest.read(odd, strict=True)
    assert caught.value.field == "site"


def test_template_output_and_annotations_count_against_limits(template_format):
    tight = ecgingest.Limits(max_decoded_size=16)  # 3 samples x 2 leads x 4 bytes = 24
    [failed] = ecgingest.ingest(SAMPLE, limits=tight).errors
    assert isinstance(failed.error, LimitExceededError)
    assert failed.error.limit == "max_decoded_size"

    with pytest.raises(LimitExceededError) as caught:
        ecgingest.read(SAMPLE, limits=ecgingest.Limits(max_annotations=0))
    assert caught.value.limit == "max_annotations"


def test_template_inspect_reads_the_header_facts_decode_gives(template_format):
    data = SAMPLE + b"5,5\n"
    info = template_format.inspect(data, DecodeContext("ecg_csv", name="x.csv"))
    decoded = RecordInfo.of(template_format.decode(data, DecodeContext("ecg_csv",
                                                                       name="x.csv")))
    assert info == decoded


def test_the_docs_site_builds_without_warnings(tmp_path):
    """`mkdocs build --strict`: every page, link and API reference entry resolves."""
    pytest.importorskip("mkdocs", reason="mkdocs is part of the test extra")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
