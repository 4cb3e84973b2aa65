"""`ecgingest inspect`: text and JSON reports, exit status on errors."""

from __future__ import annotations

import json
import subprocess
import sys

from ecgingest.cli import main
from ecgingest.demo import archive, path


def test_inspect_demo_lists_every_record_and_the_skipped_readme(capsys):
    assert main(["inspect", "--demo"]) == 0
    out = capsys.readouterr().out
    for expected in ("record ecgtoolkit_Example.scp  [SCP 2.0]", "record test_subsecond.edf",
                     "record 100_3chan  [WFDB]", "skipped README.md"):
        assert expected in out


def test_inspect_json_describes_signals_and_sources(capsys):
    assert main(["inspect", "--json", str(archive()), str(path() / "100_3chan.hea")]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in reports] == [str(archive()), str(path() / "100_3chan.hea")]
    wfdb = reports[1]["records"][0]
    assert wfdb["name"] == "100_3chan" and wfdb["format"] == "wfdb"
    assert [s["label"] for s in wfdb["signals"]] == ["I", "II", "III"]
    assert all(s["samples"] == 999 and s["sample_rate"] == 360.0 for s in wfdb["signals"])
    assert wfdb["sources"] == ["100_3chan.hea", "100_3chan.dat"]


def test_inspect_exits_non_zero_when_an_input_fails(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"no ECG in here")
    assert main(["inspect", "--json", str(junk)]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["errors"][0]["type"] == "UnsupportedFormatError"


def test_inspect_output_closed_early_is_not_an_error():
    # far more output than a pipe buffers, so the reader really closes it early
    header = str(path() / "100_3chan.hea")
    proc = subprocess.run(
        f"{sys.executable} -m ecgingest inspect {' '.join([header] * 400)} | head -1",
        shell=True, capture_output=True, text=True, check=False)
    assert proc.stdout.startswith("== ")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
