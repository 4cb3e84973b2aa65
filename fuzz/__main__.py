"""Command line: ``python -m fuzz {list,run,ci,repro,seeds}`` (run from the repository root)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .corpus import ROOT
from .engines import available_engine, child_main, run_target

DEFAULT_WORKDIR = ROOT / "build" / "fuzz"


def _names(value: str) -> list[str]:
    from .targets import TARGETS

    if value == "all":
        return list(TARGETS)
    names = value.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; targets: {', '.join(TARGETS)}")
    return names


def _run(names: list[str], seconds: float, args: argparse.Namespace, each: bool) -> int:
    """Fuzz ``names`` in turn (``seconds`` each, or split between them); exit 1 on findings."""
    share = seconds if each else seconds / len(names)
    engine = available_engine(args.engine)
    workdir = Path(args.workdir) if args.workdir else (
        Path(tempfile.mkdtemp(prefix="ecgingest-fuzz-")) if args.fresh else DEFAULT_WORKDIR)
    print(f"fuzz: engine {engine}, {len(names)} target(s), {share:.0f} s each, work in {workdir}",
          flush=True)
    total, findings = 0, 0
    started = time.monotonic()
    for name in names:
        result = run_target(name, share, engine=engine, workdir=workdir, timeout=args.timeout,
                            rss_mb=args.rss_mb)
        total += result.executions
        findings += len(result.findings)
        print(f"  {name}: {result.executions} executions, {len(result.findings)} finding(s)",
              flush=True)
        for sig, path in result.findings.items():
            print(f"    {sig}  {path}", flush=True)
    print(f"fuzz: {total} executions in {time.monotonic() - started:.0f} s, "
          f"{findings} finding(s)", flush=True)
    return 1 if findings else 0


def _repro(name: str, files: list[str]) -> int:
    from .oracle import signature
    from .targets import get

    target = get(name)
    failed = 0
    for file in files:
        data = Path(file).read_bytes()
        try:
            target.run(data)
        except Exception as exc:
            failed += 1
            print(f"{file}: FINDING {signature(exc)}")
            traceback.print_exception(exc)
        else:
            print(f"{file}: ok (records or a typed error)")
    return 1 if failed else 0


def _minimize(name: str, file: str, out: str | None, seconds: float) -> int:
    """Delta debugging: drop ever smaller chunks while the same finding still shows."""
    import warnings

    from ecgingest.errors import EcgWarning

    from .oracle import signature
    from .targets import get

    warnings.simplefilter("ignore", EcgWarning)
    target = get(name)

    def found(data: bytes) -> str | None:
        try:
            target.run(data)
        except Exception as exc:
            return signature(exc)
        return None

    data = Path(file).read_bytes()
    wanted = found(data)
    if wanted is None:
        print(f"{file}: no finding to minimize")
        return 1
    deadline = time.monotonic() + seconds
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, smaller = 0, False
        while i < len(data) and time.monotonic() < deadline:
            candidate = data[:i] + data[i + chunk:]
            if found(candidate) == wanted:
                data, smaller = candidate, True
            else:
                i += chunk
        if not smaller:
            chunk //= 2
    target_path = Path(out or f"{file}.min")
    target_path.write_bytes(data)
    print(f"{wanted}: {len(data)} bytes -> {target_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the targets")
    for command, helptext in (("run", "fuzz targets for --seconds each"),
                              ("ci", "all targets within --seconds in total (short CI mode)")):
        p = sub.add_parser(command, help=helptext)
        if command == "run":
            p.add_argument("targets", help="a target, a comma list or 'all'")
        p.add_argument("--seconds", type=float, default=60.0 if command == "ci" else 300.0)
        p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
        p.add_argument("--workdir", help=f"corpus and findings (default {DEFAULT_WORKDIR})")
        p.add_argument("--fresh", action="store_true", default=command == "ci",
                       help="a new temporary work folder (the ci default)")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
        p.add_argument("--rss-mb", type=int, default=3072, help="memory bound of a child")
    p = sub.add_parser("repro", help="run saved inputs through a target and show the verdict")
    p.add_argument("target")
    p.add_argument("files", nargs="+")
    p = sub.add_parser("minimize", help="the smallest input that still gives the same finding")
    p.add_argument("target")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="where to write it (default FILE.min)")
    p.add_argument("--seconds", type=float, default=120.0)
    p = sub.add_parser("seeds", help="write a target's seed inputs to a folder")
    p.add_argument("target")
    p.add_argument("folder")
    args = parser.parse_args(argv)
    if args.command == "list":
        from .targets import TARGETS

        for target in TARGETS.values():
            print(f"{target.name:8} {target.doc}")
        return 0
    if args.command == "run":
        return _run(_names(args.targets), args.seconds, args, each=True)
    if args.command == "ci":
        return _run(_names("all"), args.seconds, args, each=False)
    if args.command == "repro":
        return _repro(args.target, args.files)
    if args.command == "minimize":
        return _minimize(args.target, args.file, args.output, args.seconds)
    from .targets import get

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(get(args.target).seeds()):
        (folder / f"seed-{i:04d}").write_bytes(seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
