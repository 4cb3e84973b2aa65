"""The ``ecgingest`` command: reports, the JSON schema, sources, options, plot and convert."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ecgingest
from ecgingest import cli
from ecgingest.cli import SCHEMA_VERSION, main
from ecgingest.demo import archive, path
from ecgingest.record import Record

DEMO_SCP = path() / "ecgtoolkit_Example.scp"
DEMO_EDF = path() / "test_subsecond.edf"
DEMO_HEADER = path() / "100_3chan.hea"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _uploads(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["kind"] == "upload"]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The command as a user runs it: a fresh interpreter, real stdin, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "ecgingest", *args], input=stdin,
                          capture_output=True, check=False, timeout=120)


def _legacy_edf(tmp_path: Path) -> Path:
    """An EDF whose header has a tolerated deviation (an annotation signal in plain EDF)."""
    data = bytearray(DEMO_EDF.read_bytes())
    data[192:236] = b" " * 44  # the EDF+ marker gone
    target = tmp_path / "legacy.edf"
    target.write_bytes(bytes(data))
    return target


# --------------------------------------------------------------------------- inspect


def test_inspect_demo_lists_every_record_and_the_skipped_readme(capsys):
    assert main(["inspect", "--demo"]) == 0
    out = capsys.readouterr().out
    for expected in ("record ecgtoolkit_Example.scp  [SCP 2.0]", "record test_subsecond.edf",
                     "record 100_3chan  [WFDB]", "skipped README.md"):
        assert expected in out


def test_inspect_json_describes_signals_and_sources(capsys):
    assert main(["inspect", "--json", str(archive()), str(DEMO_HEADER)]) == 0
    lines = _json_lines(capsys.readouterr().out)
    reports = _uploads(lines)
    assert [r["input"] for r in reports] == [str(archive()), str(DEMO_HEADER)]
    wfdb = reports[1]["records"][0]
    assert wfdb["name"] == "100_3chan" and wfdb["format"] == "wfdb"
    assert [s["label"] for s in wfdb["signals"]] == ["I", "II", "III"]
    assert all(s["samples"] == 999 and s["sample_rate"] == 360.0 for s in wfdb["signals"])
    assert wfdb["sources"] == ["100_3chan.hea", "100_3chan.dat"]
    summary = lines[-1]["summary"]
    assert summary["uploads"] == 2 and summary["records"] == 4 and summary["skipped"] == 1


def test_inspect_exits_non_zero_when_an_input_fails(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"no ECG in here")
    assert main(["inspect", "--json", str(junk)]) == 1
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert report["errors"][0]["type"] == "UnsupportedFormatError"


def test_inspect_of_a_missing_file_is_an_error_naming_it_once(tmp_path, capsys):
    missing = tmp_path / "nowhere.edf"
    assert main(["inspect", "--json", str(missing)]) == 1
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    [error] = report["errors"]
    assert error["type"] == "FileNotFoundError" and error["message"].count("nowhere.edf") == 1


def test_inspect_output_closed_early_is_not_an_error():
    # far more output than a pipe buffers, so the reader really closes it early
    header = str(DEMO_HEADER)
    proc = subprocess.run(
        f"{sys.executable} -m ecgingest inspect {' '.join([header] * 400)} | head -1",
        shell=True, capture_output=True, text=True, check=False)
    assert proc.stdout.startswith("== ")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_inspect_shows_progress_on_a_terminal_only(monkeypatch, capsys):
    bars: list[str] = []

    class Bar:
        n = 0

        def __init__(self, label: str) -> None:
            bars.append(label)

        def update(self, count: int) -> None:
            self.n += count

        def close(self) -> None:
            bars.append("closed")

    monkeypatch.setattr(cli, "_progress_bar", Bar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["inspect", str(archive())]) == 0
    assert bars == [str(archive()), "closed"]
    bars.clear()
    assert main(["inspect", "--no-progress", str(archive())]) == 0
    assert bars == []


# --------------------------------------------------------------------------- the program


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"ecgingest {ecgingest.__version__}"


@pytest.mark.parametrize("command", [[], ["inspect"], ["ingest-many"], ["plot"], ["convert"]])
def test_help_is_plain_text_without_docstring_markup(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: ecgingest")
    assert not re.search(r"``|:(func|class|mod|meth):|\bSCHEMA_VERSION\b", text)


def test_program_description_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("inspect", "ingest-many", "plot", "convert"):
        assert command in text


# --------------------------------------------------------------------------- one JSON schema


def test_inspect_and_ingest_many_print_one_versioned_json_schema(capsys):
    assert main(["inspect", "--json", str(archive())]) == 0
    inspected = _json_lines(capsys.readouterr().out)
    assert main(["ingest-many", "--json", "--no-progress", str(archive())]) == 0
    ingested = _json_lines(capsys.readouterr().out)
    for lines in (inspected, ingested):
        assert {line["schema_version"] for line in lines} == {SCHEMA_VERSION}
        assert [line["kind"] for line in lines] == ["upload", "summary"]
    (upload_a, summary_a), (upload_b, summary_b) = inspected, ingested
    assert set(upload_a) == set(upload_b) == {"schema_version", "kind", "input", "records",
                                              "skipped", "errors", "warnings"}
    assert set(summary_a) == set(summary_b) == {"schema_version", "kind", "summary",
                                                "warnings"}
    assert set(summary_a["summary"]) == set(summary_b["summary"])
    # the header facts inspect reads are what decoding gives
    for left, right in zip(upload_a["records"], upload_b["records"]):
        assert set(left) == set(right)
        assert {k: v for k, v in left.items() if k != "signals"} == \
            {k: v for k, v in right.items() if k != "signals"}
        assert [(s["label"], s["samples"]) for s in left["signals"]] == \
            [(s["label"], s["samples"]) for s in right["signals"]]
    assert upload_a["skipped"] == upload_b["skipped"]
    assert summary_a["summary"]["samples"] == summary_b["summary"]["samples"] > 0


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize("command", [
    ["inspect"], ["inspect", "--json"], ["ingest-many", "--no-progress"],
    ["ingest-many", "--no-progress", "--json"]])
def test_deviations_are_reported_once_per_record_never_as_python_warnings(tmp_path, command):
    legacy = _legacy_edf(tmp_path)
    proc = _run(*command, str(legacy), str(legacy))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    out = proc.stdout.decode()
    assert out.count("no EDF+ marker in the reserved field") == 2  # once per record
    assert "EcgWarning" not in out


def test_plot_reports_deviations_once_and_keeps_stderr_clean(tmp_path):
    pytest.importorskip("matplotlib")
    proc = _run("plot", str(_legacy_edf(tmp_path)), "-o", str(tmp_path / "legacy.png"))
    assert proc.returncode == 0 and proc.stderr == b""
    assert proc.stdout.decode().count("no EDF+ marker in the reserved field") == 1


def test_other_python_warnings_go_into_the_report(monkeypatch, capsys):
    import warnings

    real = cli.inspect_upload

    def noisy(*args, **kwargs):
        warnings.warn("something odd", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "inspect_upload", noisy)
    assert main(["inspect", "--json", str(DEMO_SCP)]) == 0
    captured = capsys.readouterr()
    [report] = _uploads(_json_lines(captured.out))
    assert report["warnings"] == ["RuntimeWarning: something odd"]
    assert captured.err == ""


# --------------------------------------------------------------------------- sources


def test_dash_reads_standard_input():
    proc = _run("inspect", "--json", "-", stdin=DEMO_SCP.read_bytes())
    assert proc.returncode == 0, proc.stderr
    [report] = _uploads(_json_lines(proc.stdout.decode()))
    assert report["input"] == "<stdin>"
    assert [r["format_detail"] for r in report["records"]] == ["SCP 2.0"]


def test_dash_reads_an_archive_from_standard_input_for_every_command(monkeypatch, capsys):
    def stdin() -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(archive().read_bytes()))

    monkeypatch.setattr(sys, "stdin", stdin())
    assert main(["ingest-many", "--json", "--no-progress", "-"]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert report["input"] == "<stdin>" and len(report["records"]) == 3


def test_bare_wfdb_record_name_finds_its_header(monkeypatch, capsys):
    monkeypatch.chdir(path())
    assert main(["inspect", "--json", "100_3chan"]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [r["name"] for r in report["records"]] == ["100_3chan"]
    assert report["records"][0]["sources"] == ["100_3chan.hea", "100_3chan.dat"]
    assert main(["ingest-many", "--json", "--no-progress", str(path() / "100_3chan")]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [r["name"] for r in report["records"]] == ["100_3chan"]


def test_an_existing_file_wins_over_a_record_name(tmp_path, capsys):
    (tmp_path / "rec").write_bytes(DEMO_SCP.read_bytes())
    (tmp_path / "rec.hea").write_bytes(DEMO_HEADER.read_bytes())
    assert main(["inspect", "--json", str(tmp_path / "rec")]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [r["format"] for r in report["records"]] == ["scp"]


@contextlib.contextmanager
def _http_server(directory: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no request log on stderr
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.parametrize("command", [["inspect", "--json"],
                                     ["ingest-many", "--json", "--no-progress"]])
def test_a_url_is_read_and_reported_as_given(command, capsys):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    with _http_server(path()) as base:
        url = f"{base}/ecgtoolkit_Example.scp"
        assert main([*command, url]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert report["input"] == url  # "http://" keeps both slashes
    assert [r["format_detail"] for r in report["records"]] == ["SCP 2.0"]


def test_a_record_read_from_a_url_is_named_after_it(capsys):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    with _http_server(path()) as base:
        assert main(["inspect", "--json", f"{base}/ecgtoolkit_Example.scp"]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [r["name"] for r in report["records"]] == ["ecgtoolkit_Example.scp"]


def test_a_file_url_is_read(capsys):
    pytest.importorskip("fsspec")
    url = DEMO_EDF.as_uri()
    assert main(["inspect", "--json", url]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert report["input"] == url and report["records"][0]["name"] == "test_subsecond.edf"


def test_a_url_without_fsspec_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fsspec", None)
    assert main(["inspect", "https://example.invalid/ecg.scp"]) == 2
    assert "pip install 'ecgingest[dask]'" in capsys.readouterr().err


# --------------------------------------------------------------------------- limits, overrides


def test_max_ratio_and_limit_apply_the_library_limits(capsys):
    tight = ["--max-ratio", "1.01", "--limit", "ratio_grace=0"]
    assert main(["inspect", "--json", *tight, str(archive())]) == 1
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [e["type"] for e in report["errors"]] == ["LimitExceededError"]
    assert main(["ingest-many", "--json", "--no-progress", *tight, str(archive())]) == 1
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [e["type"] for e in report["errors"]] == ["LimitExceededError"]


def test_max_nesting_opens_archives_inside_archives(tmp_path, capsys):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(DEMO_SCP, "ecg.scp")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("inner.zip", inner.getvalue())
    assert main(["inspect", "--json", str(outer)]) == 1  # nested archives skipped by default
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert report["records"] == [] and [s["path"] for s in report["skipped"]] == ["inner.zip"]
    assert main(["inspect", "--json", "--max-nesting", "1", str(outer)]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    assert [r["sources"] for r in report["records"]] == [["inner.zip/ecg.scp"]]


def test_overrides_set_metadata_with_numbers_and_lists(capsys):
    options = ["--override", "patient_id=P7", "--override", "patient_age=61",
               "--override", "indications=chest pain", "--override", "indications=syncope"]
    assert main(["inspect", "--json", *options, str(DEMO_SCP)]) == 0
    [report] = _uploads(_json_lines(capsys.readouterr().out))
    [record] = report["records"]
    assert record["metadata"]["patient_id"] == "P7" and record["metadata"]["patient_age"] == 61
    assert record["metadata"]["indications"] == ["chest pain", "syncope"]
    assert record["overridden"] == ["indications", "patient_age", "patient_id"]
    assert main(["ingest-many", "--json", "--no-progress", *options, str(DEMO_SCP)]) == 0
    [decoded] = _uploads(_json_lines(capsys.readouterr().out))[0]["records"]
    assert decoded["metadata"] == record["metadata"]


@pytest.mark.parametrize(("option", "named"), [
    (["--override", "colour=red"], "patient_id"),
    (["--override", "patient_age=old"], "patient_age"),
    (["--override", "patient_gender=robot"], "FEMALE"),
    (["--limit", "max_entries"], "max_entries"),
    (["--limit", "speed=3"], "max_ratio"),
    (["--limit", "max_entries=many"], "int"),
    (["--max-ratio", "0"], "max_ratio"),
])
def test_a_bad_limit_or_override_is_a_usage_error_naming_what_is_valid(option, named, capsys):
    assert main(["inspect", *option, str(DEMO_SCP)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and named in captured.err and captured.err.startswith("ecgingest:")


# --------------------------------------------------------------------------- no records


def test_no_ecg_records_found_is_said_and_fails(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no ECG here")
    assert main(["inspect", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"no ECG records found in {tmp_path} (1 entry skipped)" in captured.err
    assert main(["inspect", "--json", str(tmp_path)]) == 1
    assert "no ECG records found" in capsys.readouterr().err
    assert main(["ingest-many", "--no-progress", str(tmp_path)]) == 1
    assert "no ECG records found" in capsys.readouterr().err


def test_an_empty_stream_has_no_records(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["inspect", "-"]) == 1


# --------------------------------------------------------------------------- plot


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_writes_one_image_per_record(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "ecg.png"
    assert main(["plot", str(archive()), "-o", str(out), "--dpi", "50"]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["ecg-100_3chan.png", "ecg-ecgtoolkit_Example.png",
                       "ecg-test_subsecond.png"]
    assert capsys.readouterr().out.count("wrote ") == 3
    width, height = _png_size((tmp_path / "ecg-ecgtoolkit_Example.png").read_bytes())
    assert (width, height) == (int(265 / 25.4 * 50), int(158 / 25.4 * 50))  # paper mm


def test_plot_draws_the_named_record_only(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "one.svg"
    assert main(["plot", str(archive()), "-o", str(out), "--record", "100_3chan"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["one.svg"]
    assert out.read_bytes().lstrip().startswith(b"<?xml")


def test_plot_of_an_unknown_record_lists_the_names(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(archive()), "-o", str(tmp_path / "x.png"), "--record", "101"]) == 1
    assert "'100_3chan'" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_plot_as_12_lead_of_a_3_lead_record_says_why_not(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    status = main(["plot", str(DEMO_HEADER), "-o", str(tmp_path / "x.png"), "--layout",
                   "12-lead"])
    assert status == 1 and "no lead aVR" in capsys.readouterr().out


def test_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(DEMO_SCP), "-o", str(tmp_path / "x.png")]) == 2
    assert "pip install 'ecgingest[plot]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- convert


@pytest.fixture
def fake_writers(monkeypatch):
    """Writers that record their calls: the command's wiring, whatever the writers do."""
    calls: list[tuple] = []

    def to_wfdb(self, directory, **options):
        calls.append(("wfdb", self.name, Path(directory), options))

    def to_edf(self, target, *, bdf=False):
        calls.append(("edf", self.name, Path(target), {"bdf": bdf}))
        Path(target).write_bytes(b"")

    monkeypatch.setattr(Record, "to_wfdb", to_wfdb, raising=False)
    monkeypatch.setattr(Record, "to_edf", to_edf, raising=False)
    return calls


def test_convert_writes_every_record_under_a_distinct_safe_name(tmp_path, fake_writers,
                                                                 capsys):
    outdir = tmp_path / "new" / "out"
    assert main(["convert", str(archive()), "--to", "wfdb", str(outdir), "--fmt", "212"]) == 0
    assert fake_writers == [
        ("wfdb", "ecgtoolkit_Example", outdir, {"fmt": "212"}),
        ("wfdb", "test_subsecond", outdir, {"fmt": "212"}),
        ("wfdb", "100_3chan", outdir, {"fmt": "212"})]
    assert outdir.is_dir() and capsys.readouterr().out.count("wrote ") == 3
    fake_writers.clear()
    assert main(["convert", str(archive()), "--to", "bdf", str(outdir)]) == 0
    assert [(c[2].name, c[3]) for c in fake_writers] == [
        ("ecgtoolkit_Example.bdf", {"bdf": True}), ("test_subsecond.bdf", {"bdf": True}),
        ("100_3chan.bdf", {"bdf": True})]


def test_convert_reports_a_record_the_writer_refuses_and_goes_on(tmp_path, monkeypatch,
                                                                   capsys):
    from ecgingest.errors import UnsupportedFeatureError

    written = []

    def to_edf(self, target, *, bdf=False):
        if self.format == "scp":
            raise UnsupportedFeatureError("values outside the EDF range")
        written.append(Path(target).name)

    monkeypatch.setattr(Record, "to_edf", to_edf, raising=False)
    assert main(["convert", str(archive()), "--to", "edf", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "error ecgtoolkit_Example.scp: cannot write EDF" in out
    assert "values outside the EDF range" in out
    assert written == ["test_subsecond.edf", "100_3chan.edf"]


def test_convert_without_a_writer_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(Record, "to_wfdb", raising=False)
    assert main(["convert", str(DEMO_SCP), "--to", "wfdb", str(tmp_path / "out")]) == 2
    assert "cannot write WFDB" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not (hasattr(Record, "to_wfdb") and hasattr(Record, "to_edf")),
                    reason="the WFDB and EDF writers (Record.to_wfdb, Record.to_edf)")
@pytest.mark.parametrize("target", ["wfdb", "edf"])
def test_convert_round_trip_keeps_the_samples(tmp_path, target, capsys):
    source = DEMO_HEADER if target == "wfdb" else DEMO_EDF
    assert main(["convert", str(source), "--to", target, str(tmp_path)]) == 0
    [original] = ecgingest.read(source)
    [again] = ecgingest.read(tmp_path)
    assert again.labels == original.labels
    for left, right in zip(original.signals, again.signals):
        assert left.sample_rate == right.sample_rate
        assert left.digital.tolist() == right.digital.tolist()


@given(st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=8))
def test_output_names_are_distinct_and_safe(names):
    stems = cli._file_stems([Record(name, "x", "x", []) for name in names])
    assert len(stems) == len(names)
    assert len({s.lower() for s in stems}) == len(stems)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in stems)
    for name, stem in zip(names, stems):
        if re.fullmatch(r"[A-Za-z0-9-]+", name) and names.count(name) == 1 and \
                name.lower() not in {s.lower() for s in stems if s != name}:
            assert stem == name


def test_process_exit_status_follows_the_command():
    assert _run("inspect", str(DEMO_SCP)).returncode == 0
    assert _run("inspect", os.devnull).returncode == 1
    assert _run("inspect", "--limit", "nonsense=1", str(DEMO_SCP)).returncode == 2


def test_plot_to_an_unwritable_place_or_unknown_type_is_an_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(DEMO_SCP), "-o", str(tmp_path / "no" / "dir" / "x.png")]) == 1
    assert main(["plot", str(DEMO_SCP), "-o", str(tmp_path / "x.unknowntype")]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot write") == 2 and "wrote" not in out


def test_convert_into_a_path_that_is_a_file_is_an_error(tmp_path, fake_writers, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["convert", str(DEMO_SCP), "--to", "edf", str(blocker / "out")]) == 1
    assert "cannot create" in capsys.readouterr().err and fake_writers == []


def test_a_safe_name_keeps_its_stem_before_a_name_made_safe():
    stems = cli._file_stems([Record(name, "x", "x", []) for name in ["0:", "0", "a b", "a_b"]])
    assert stems == ["0_2", "0", "a_b_2", "a_b"]
