"""The format plug-in seam: formats import only the contract, the pipeline names no format,
and every registered format keeps the contract."""

from __future__ import annotations

import ast
import io
import json
import warnings
import zipfile
from pathlib import Path

import pytest

import ecgingest
from ecgingest import formats
from ecgingest.detect import detect, tried_formats
from ecgingest.errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    LimitExceededError,
    MissingDependencyError,
    TruncatedError,
    UnsupportedFeatureError,
)
from ecgingest.formats._base import (
    STATUS_BAD_CODE,
    STATUS_OK,
    STATUS_TRUNCATED,
    STATUS_UNSUPPORTED,
    DecodeContext,
    MultiFileFormat,
    Probe,
    SingleFileFormat,
    require,
)
from ecgingest.limits import Limits
from ecgingest.sources import Entry

PACKAGE = Path(ecgingest.__file__).parent
PIPELINE = {"ingest", "detect", "archive", "uploads", "sources", "many", "cli", "chunked"}


def _imported_modules(path: Path) -> set[str]:
    """Top-level ecgingest module names a source file imports (relative or absolute)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                if node.module is None:
                    found.update(".".join(base + [a.name]) for a in node.names)
            else:
                parts = (node.module or "").split(".")
            found.add(".".join(parts))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("ecgingest")}


def _format_sources() -> list[Path]:
    return sorted((PACKAGE / "formats").rglob("*.py"))


@pytest.mark.parametrize("source", _format_sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_format_module_imports_no_part_of_the_pipeline(source):
    for name in _imported_modules(source):
        parts = name.split(".")
        assert not (len(parts) > 1 and parts[1] in PIPELINE), (
            f"{source.name} imports {name}: formats import only formats._base, errors, "
            "record and limits")


@pytest.mark.parametrize("module", ["ingest", "detect", "uploads", "many", "cli", "sources"])
def test_the_pipeline_imports_no_format_by_name(module):
    source = PACKAGE / f"{module}.py"
    if not source.exists():
        source = PACKAGE / module / "__init__.py"
    for name in _imported_modules(source):
        parts = name.split(".")
        if len(parts) > 2 and parts[1] == "formats":
            assert parts[2] == "_base", f"{module} imports the format module {name}"


def test_the_registry_lists_single_file_formats_in_contract_order_then_multi_file_ones():
    kinds = [type(f).__mro__[1] for f in formats.FORMATS]
    assert kinds == sorted(kinds, key=lambda k: k is MultiFileFormat)
    assert tried_formats()[:4] == ("edf", "scp", "compressed_delta", "kardia")
    assert "wfdb" in tried_formats()


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda f: f.name)
def test_every_registered_format_keeps_the_contract(fmt):
    assert isinstance(fmt, (SingleFileFormat, MultiFileFormat))
    assert fmt.name and fmt.name == fmt.name.lower()
    probe = Probe.of_bytes(b"\x00" * 10, "x.bin")
    if isinstance(fmt, SingleFileFormat):
        assert fmt.sniff(probe) is False
    else:
        assert fmt.sniff_anchor(probe) is False


def test_a_sniffer_that_raises_counts_as_not_claiming(monkeypatch):
    class Exploding(SingleFileFormat):
        name = "exploding"

        def sniff(self, probe):
            raise RuntimeError("boom")

        def decode(self, data, ctx):
            raise AssertionError("never reached")

    monkeypatch.setattr(formats, "FORMATS", (Exploding(), *formats.FORMATS))
    assert detect(Probe.of_bytes(b"not an ECG")) is None


def test_a_probe_never_shows_more_than_the_bounded_prefix():
    requested: list[int] = []

    def read_head(n: int) -> bytes:
        requested.append(n)
        return b"x" * n

    probe = Probe("big.bin", 10**9, read_head)
    assert len(probe.head(10**9)) == 64 * 1024
    assert requested == [64 * 1024]


@pytest.mark.parametrize("status, cls", [
    (STATUS_TRUNCATED, TruncatedError),
    (STATUS_BAD_CODE, CorruptDataError),
    (STATUS_UNSUPPORTED, UnsupportedFeatureError),
    (-99, CorruptDataError),
])
def test_kernel_statuses_become_typed_errors_that_name_the_data(status, cls):
    ctx = DecodeContext("edf", path="a/b.edf")
    ctx.check_status(STATUS_OK, "signal 1")
    with pytest.raises(cls) as info:
        ctx.check_status(status, "signal 1")
    assert info.value.format == "edf" and info.value.path == "a/b.edf"
    assert str(info.value).count("signal 1") == 1 and "status" not in str(info.value)


def test_deviations_are_warnings_when_tolerant_and_errors_when_strict():
    tolerant = DecodeContext("scp")
    tolerant.deviation("odd field")
    assert tolerant.warnings == ["odd field"]
    with pytest.raises(ecgingest.errors.HeaderError, match="odd field"):
        DecodeContext("scp", strict=True).deviation("odd field")


def test_the_decoded_output_budget_is_shared_by_every_file_of_an_upload():
    ctx = DecodeContext("wfdb", limits=Limits(max_decoded_size=1000))
    other = ctx.for_file(path="b.dat")
    ctx.reserve_output(600, "record a")
    with pytest.raises(LimitExceededError) as info:
        other.reserve_output(600, "record b")
    assert info.value.limit == "max_decoded_size" and info.value.path == "b.dat"


def test_a_missing_optional_dependency_names_the_extra_to_install():
    with pytest.raises(MissingDependencyError) as info:
        require("ecgingest_no_such_module", format="dicom", extra="dicom")
    assert info.value.extra == "dicom" and "pip install 'ecgingest[dicom]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_a_file_a_format_declines_is_skipped_with_the_formats_reason(monkeypatch):
    from ecgingest.formats._base import NotARecord

    class Images(SingleFileFormat):
        name = "images"

        def sniff(self, probe):
            return probe.head(4) == b"IMG!"

        def decode(self, data, ctx):
            raise NotARecord("an image without waveforms")

    monkeypatch.setattr(formats, "FORMATS", (Images(), *formats.FORMATS))
    result = ecgingest.ingest(b"IMG!" + b"\0" * 100)
    assert result.records == [] and result.errors == []
    assert [(s.path, s.reason) for s in result.skipped] == [("upload", "an image without waveforms")]


def test_a_declined_file_is_skipped_with_the_reason_its_format_gives(monkeypatch):
    class Images(SingleFileFormat):
        name = "images"

        def sniff(self, probe):
            return False

        def decode(self, data, ctx):
            raise AssertionError("never claimed")

        def skip_reason(self, probe):
            return "an image, not an ECG" if probe.head(4) == b"IMG!" else None

    monkeypatch.setattr(formats, "FORMATS", (Images(), *formats.FORMATS))
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/scan.img", b"IMG!" + b"\0" * 100)
        zf.writestr("a/notes.txt", b"hello")
    result = ecgingest.ingest(buf.getvalue())
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons["a/scan.img"] == "an image, not an ECG"
    assert reasons["a/notes.txt"].startswith("matches no format")
    alone = ecgingest.ingest(b"IMG!" + b"\0" * 100)
    assert [s.reason for s in alone.skipped] == ["an image, not an ECG"]


def _corpus_files() -> list:
    from conftest import corpus_dir

    root = corpus_dir()
    if root is None:
        return []
    entries = json.loads((root / "records.json").read_text())
    single = {f.name for f in formats.single_file_formats()}
    return [pytest.param(name, [entry["format"]] if entry["format"] in single
                         and name == entry["path"] else [], id=name)
            for entry in entries for name in entry["files"]]


@pytest.mark.parametrize(("name", "expected"), _corpus_files())
def test_each_corpus_file_is_claimed_by_its_own_format_alone(name, expected):
    """Every sniffer declines every other format's real files (the first claim wins, so a
    greedy sniffer would steal them), and a single-file format claims its records' files
    (not their companions: an ISHNE ``.ann``, WFDB signal files)."""
    from conftest import corpus_dir

    probe = Probe.of_bytes((corpus_dir() / name).read_bytes(), name)
    claimed = [f.name for f in formats.single_file_formats() if f.sniff(probe)]
    assert claimed == expected


def _single_file_corpus_records() -> list:
    from conftest import corpus_records

    single = [f.name for f in formats.single_file_formats()]
    return [pytest.param(entry["path"], fmt, id=entry["path"])
            for fmt in single for entry in corpus_records(fmt)]


@pytest.mark.parametrize(("name", "fmt"), _single_file_corpus_records())
def test_a_corpus_record_is_read_by_content_as_bytes_on_disk_and_in_a_zip(name, fmt, tmp_path):
    """Names say nothing: the same bytes under a neutral name are detected by content and
    end in the same records, or the same typed error, from every source kind."""
    from conftest import corpus_dir

    data = (corpus_dir() / name).read_bytes()
    assert detect(Entry.from_bytes("upload", data)).name == fmt
    path = tmp_path / "upload"
    path.write_bytes(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("folder/upload", data)
    outcomes = [_outcome(source) for source in (data, path, buffer.getvalue())]
    assert outcomes[1] == outcomes[0] and outcomes[2] == outcomes[0]


def _outcome(source) -> object:
    """What reading gives, comparable across source kinds: the error's type, or each record's
    format, labels and digital values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        try:
            records = ecgingest.read(source)
        except EcgIngestError as exc:
            return type(exc)
    return [(r.format, r.labels, [s.digital.tobytes() for s in r.signals]) for r in records]
