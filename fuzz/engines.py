"""The two engines and the parent that runs them in child processes.

Each target runs in a child process, so a crash (signal), a hang or a memory
blow-up kills the child, not the runner: the runner saves the input, names
the finding and, for Python-level findings, starts the child again with that
finding marked known so the rest of the time finds new ones.

- ``atheris``: libFuzzer, coverage-guided on the instrumented ``ecgingest``
  Python modules (the Cython kernels are exercised but not instrumented).
- ``hypothesis``: the fallback where atheris does not install: mutations of
  the seeds (fuzz/mutate.py) and random bytes, no coverage feedback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import ROOT

__all__ = ["RunResult", "run_target", "available_engine", "child_main"]

STATS = "FUZZ-STATS "


def available_engine(requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "atheris" if importlib.util.find_spec("atheris") is not None else "hypothesis"


@dataclass
class RunResult:
    target: str
    engine: str
    seconds: float
    executions: int = 0
    findings: dict[str, Path] = field(default_factory=dict)  # signature -> saved input


# ----------------------------------------------------------------- parent
def run_target(name: str, seconds: float, *, engine: str = "auto", workdir: Path,
               timeout: float = 10.0, rss_mb: int = 3072, quiet: bool = False) -> RunResult:
    """Fuzz one target for ``seconds``; restart after each Python-level finding."""
    engine = available_engine(engine)
    base = workdir / name
    corpus_dir, seeds_dir, artifacts = base / "corpus", base / "seeds", base / "artifacts"
    for folder in (corpus_dir, artifacts):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(seeds_dir, ignore_errors=True)
    seeds_dir.mkdir(parents=True)
    result = RunResult(name, engine, seconds)
    known_file = base / "known.txt"
    known_file.write_text("")
    deadline = time.monotonic() + seconds
    crashes_without_signature = 0
    while True:
        left = deadline - time.monotonic()
        if left < 1.0:
            break
        before = set(artifacts.iterdir())
        command = [sys.executable, "-m", "fuzz", "_child", engine, name, f"{left:.0f}",
                   str(artifacts), str(corpus_dir), str(seeds_dir), str(known_file),
                   str(timeout), str(rss_mb)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        log = base / "child.log"
        with open(log, "w") as out:
            # timeout: a child stuck in native code past its own alarms is killed here
            try:
                code = subprocess.run(command, cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=left + 4 * timeout + 60
                                      ).returncode
            except subprocess.TimeoutExpired:
                code = -signal.SIGKILL
        text = log.read_text(errors="replace")
        result.executions += _executions(text)
        if code == 0:
            break
        new = sorted(set(artifacts.iterdir()) - before)
        current = artifacts / "current-input"
        if current in new or (not new and current.exists()):
            # the hypothesis child died (signal or hard timeout) on the input it was running
            crash = _save(artifacts, "crash", current.read_bytes())
            current.unlink()
            new = [p for p in new if p != current] + [crash]
        signature = _signature_of(text, code)
        for path in new:
            if path.name.startswith(("crash-", "timeout-", "oom-", "leak-", "finding-",
                                     "slow-unit-")):
                result.findings.setdefault(signature, path)
        if not quiet:
            print(f"  {name}: finding {signature} -> {new[-1] if new else '(no input saved)'}",
                  flush=True)
        if signature.startswith(("crash/", "hang/", "oom/")) or not new:
            crashes_without_signature += 1
            if crashes_without_signature >= 2:
                break  # a native crash or a hang cannot be skipped by signature
        with open(known_file, "a") as fh:
            fh.write(signature + "\n")
    return result


def _save(artifacts: Path, kind: str, data: bytes) -> Path:
    path = artifacts / f"{kind}-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return path


def _executions(text: str) -> int:
    stats = re.findall(r"stat::number_of_executed_units: (\d+)", text)
    if stats:
        return int(stats[-1])
    ours = [line for line in text.splitlines() if line.startswith(STATS)]
    if ours:
        return int(json.loads(ours[-1][len(STATS):])["executions"])
    progress = re.findall(r"^#(\d+)\s", text, re.M)
    return int(progress[-1]) if progress else 0


def _signature_of(text: str, code: int) -> str:
    found = re.findall(r"^FUZZ-SIGNATURE (.+)$", text, re.M)
    if found:
        return found[-1]
    if "libFuzzer: timeout" in text or "hang/" in text:
        return "hang/-/-"
    if "out-of-memory" in text:
        return "oom/-/-"
    return f"crash/exit {code}/-"


# ----------------------------------------------------------------- children
class Hang(BaseException):
    """One input ran past the time bound (BaseException: typed() must not swallow it)."""


def _load_known(path: str) -> set[str]:
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def child_main(argv: list[str]) -> int:
    engine, name, seconds, artifacts, corpus_dir, seeds_dir, known, timeout, rss = argv
    if engine == "atheris":
        return _atheris_child(name, float(seconds), Path(artifacts), corpus_dir, seeds_dir,
                              _load_known(known), float(timeout), int(rss))
    return _hypothesis_child(name, float(seconds), Path(artifacts), _load_known(known),
                             float(timeout))


def _checker(name: str, known: set[str]):
    import warnings

    from ecgingest.errors import EcgWarning

    from .oracle import signature
    from .targets import get

    warnings.simplefilter("ignore", EcgWarning)  # tolerated deviations are not findings
    target = get(name)

    def check(data: bytes) -> None:
        try:
            target.run(data)
        except Exception as exc:
            found = signature(exc)
            if found in known:
                return
            print(f"FUZZ-SIGNATURE {found}", file=sys.stderr, flush=True)
            raise
    return target, check


def _atheris_child(name: str, seconds: float, artifacts: Path, corpus_dir: str, seeds_dir: str,
                   known: set[str], timeout: float, rss_mb: int) -> int:
    import atheris

    with atheris.instrument_imports(include=["ecgingest"]):
        _import_all_of_ecgingest()
    target, check = _checker(name, known)
    for i, seed in enumerate(target.seeds()):
        (Path(seeds_dir) / f"seed-{i:04d}").write_bytes(seed)
    args = [sys.argv[0], f"-max_total_time={max(1, int(seconds))}",
            f"-timeout={max(1, int(timeout))}", f"-rss_limit_mb={rss_mb}",
            f"-max_len={target.max_len}", f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1", corpus_dir, seeds_dir]
    atheris.Setup(args, check)
    atheris.Fuzz()
    return 0


def _import_all_of_ecgingest() -> None:
    import pkgutil

    import ecgingest

    for module in pkgutil.walk_packages(ecgingest.__path__, "ecgingest."):
        if ".demo" in module.name or module.name.endswith(".__main__"):
            continue
        importlib.import_module(module.name)


def _hypothesis_child(name: str, seconds: float, artifacts: Path, known: set[str],
                      timeout: float) -> int:
    import faulthandler

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from .mutate import INTERESTING, apply

    target, check = _checker(name, known)
    seeds = target.seeds() or [b""]
    mutation = st.tuples(st.sampled_from(("set", "set", "text", "insert", "delete", "truncate")),
                         st.integers(0, 1 << 16),
                         st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8))
    cases = (st.tuples(st.integers(0, len(seeds) - 1), st.lists(mutation, max_size=6))
             .map(lambda c: apply(seeds[c[0]], c[1]))
             | st.binary(max_size=min(target.max_len, 4096)))
    current = os.open(artifacts / "current-input", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + seconds
    executions = 0
    failing: list[bytes] = []

    def on_alarm(signum, frame):
        raise Hang(f"one input ran longer than {timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)

    @settings(max_examples=50, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(cases)
    def one(data: bytes) -> None:
        nonlocal executions
        if time.monotonic() > deadline + 5:
            return  # out of time while shrinking: keep the smallest failing input found so far
        executions += 1
        os.ftruncate(current, 0)
        os.pwrite(current, data, 0)
        faulthandler.dump_traceback_later(4 * timeout, exit=True)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            check(data)
        except Hang as exc:
            failing.append(data)
            print("FUZZ-SIGNATURE hang/-/-", file=sys.stderr, flush=True)
            raise AssertionError(str(exc)) from None
        except Exception:
            failing.append(data)
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()

    code = 0
    while time.monotonic() < deadline:
        try:
            one()
        except BaseException as exc:
            if failing:
                path = _save(artifacts, "finding", failing[-1])
                print(f"finding saved to {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
            break
    os.close(current)
    os.unlink(artifacts / "current-input")
    print(STATS + json.dumps({"executions": executions}), flush=True)
    return code
