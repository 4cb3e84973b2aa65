"""Types: the package passes mypy with the project's configuration, and the stubs of the
compiled kernels match the built modules (stubtest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ecgingest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is part of the test extra")

PACKAGE = Path(ecgingest.__file__).parent
KERNELS = sorted(p.name.split(".")[0] for p in (PACKAGE / "_ext").glob("*.so")) or sorted(
    p.stem for p in (PACKAGE / "_ext").glob("*.pyi"))


ROOT = Path(__file__).resolve().parent.parent


def test_the_package_type_checks_with_mypy():
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                     "--no-incremental", str(ROOT / "src" / "ecgingest")])
    assert status == 0, out + err


def test_kernel_stubs_match_the_built_modules():
    assert KERNELS, "no compiled kernel found"
    env = {**os.environ, "MYPYPATH": ""}
    proc = subprocess.run([sys.executable, "-m", "mypy.stubtest",
                           *(f"ecgingest._ext.{kernel}" for kernel in KERNELS)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
