"""``ecgingest`` command line: ``ecgingest inspect PATH... [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import EcgIngestError
from .ingest import EntryError, IngestResult, Progress, inspect_upload
from .record import Record, RecordInfo
from .sources import Skipped


def _inspect_one(path: str, strict: bool, show_progress: bool) -> dict[str, Any]:
    """Header facts of one upload: no samples are decoded."""
    bar = _progress_bar(path) if show_progress else None
    try:
        records, skipped, errors = inspect_upload(
            path, strict=strict, progress=None if bar is None else _advance(bar))
    except (EcgIngestError, OSError) as exc:
        return {"input": path, "records": [], "skipped": [],
                "errors": [{"paths": [path], "type": type(exc).__name__, "message": str(exc)}]}
    finally:
        if bar is not None:
            bar.close()
    return {"input": path, **_report(records, skipped, errors)}


def _progress_bar(path: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=path, unit=" entries", file=sys.stderr, leave=False, delay=0.5)


def _advance(bar: Any) -> Progress:
    def advance(count: int, entry: str) -> None:
        bar.update(count - bar.n)

    return advance


def _report(records: Sequence[Record | RecordInfo], skipped: Sequence[Skipped],
            errors: Sequence[EntryError]) -> dict[str, Any]:
    """Records, skipped entries and errors of one upload, JSON-ready."""
    return {
        "records": [r.summary() for r in records],
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "errors": [{"paths": list(e.paths), "type": type(e.error).__name__,
                    "message": str(e.error)} for e in errors],
    }


def _result_report(result: IngestResult) -> dict[str, Any]:
    return _report(result.records, result.skipped, result.errors)


def _print_text(report: dict[str, Any], out) -> None:
    print(f"== {report['input']}", file=out)
    for rec in report["records"]:
        print(f"record {rec['name']}  [{rec['format_detail']}]", file=out)
        print(f"  start: {rec['start_time'] or 'unknown'}", file=out)
        print(f"  sources: {', '.join(rec['sources'])}", file=out)
        for sig in rec["signals"]:
            print(f"  - {sig['label']:<16} {sig['sample_rate']:>10g} Hz "
                  f"{sig['samples']:>10} samples  {sig['units']}", file=out)
        if rec["annotations"]:
            print(f"  annotations: {rec['annotations']}", file=out)
        for key, value in rec["metadata"].items():
            print(f"  {key}: {value}", file=out)
        for warning in rec["warnings"]:
            print(f"  warning: {warning}", file=out)
    for skip in report["skipped"]:
        print(f"skipped {skip['path']}: {skip['reason']}", file=out)
    for err in report["errors"]:
        print(f"error {', '.join(err['paths'])}: {err['type']}: {err['message']}", file=out)


def _ingest_many(args: argparse.Namespace) -> int:
    import os
    import time

    from .many import BatchSummary, ingest_many, uploads_below

    sources: list = []
    for path in args.paths:
        sources.extend(uploads_below(path) if os.path.isdir(path) else [path])
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            print("ecgingest: --scheduler needs Dask: pip install 'ecgingest[dask]'",
                  file=sys.stderr)
            return 2
        client = Client(args.scheduler)
    summary = BatchSummary()
    start = time.perf_counter()
    try:
        for source, result in ingest_many(sources, workers=args.workers, client=client,
                                          strict=args.strict,
                                          progress=False if args.no_progress else None):
            summary.add(result)
            if args.json:
                print(json.dumps({"upload": str(source), **_result_report(result)}))
            else:
                for err in result.errors:
                    print(f"error {source!s}: {type(err.error).__name__}: {err.error}")
    finally:
        if client is not None:
            client.close()
    summary.seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"summary": summary.as_dict()}))
    else:
        print(f"{summary.uploads} uploads ({summary.failed_uploads} with errors), "
              f"{summary.records} records, {summary.skipped} skipped, {summary.errors} errors, "
              f"{summary.samples_per_second / 1e6:.1f} Msamples/s in {summary.seconds:.2f} s")
    return 1 if summary.failed_uploads else 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecgingest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="describe the records of uploads")
    inspect.add_argument("paths", nargs="*", metavar="PATH",
                         help="ECG file, archive, directory, or WFDB .hea on disk")
    inspect.add_argument("--demo", action="store_true",
                         help="also inspect the demo upload (a ZIP) bundled with ecgingest")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.add_argument("--strict", action="store_true",
                         help="treat tolerated deviations and skipped entries as errors")
    inspect.add_argument("--no-progress", action="store_true",
                         help="never show progress (shown on a terminal for long uploads)")
    many = commands.add_parser(
        "ingest-many", help="ingest many uploads in parallel and print a summary")
    many.add_argument("paths", nargs="+", metavar="PATH",
                      help="uploads (files, archives) or directories of uploads")
    many.add_argument("--workers", type=int, default=None,
                      help="threads on this machine (default: the cores available)")
    many.add_argument("--scheduler", metavar="ADDRESS", default=None,
                      help="run on a Dask cluster (needs ecgingest[dask])")
    many.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    many.add_argument("--strict", action="store_true", help="strict mode for every upload")
    many.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    args = parser.parse_args(argv)
    if args.command == "ingest-many":
        return _ingest_many(args)
    if args.demo:
        from .demo import archive as demo_archive

        args.paths.append(str(demo_archive()))
    if not args.paths:
        parser.error("inspect needs at least one PATH (or --demo)")

    show_progress = not args.no_progress and sys.stderr.isatty()
    reports = [_inspect_one(path, args.strict, show_progress) for path in args.paths]
    if args.json:
        json.dump(reports, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for report in reports:
            _print_text(report, sys.stdout)
    return 1 if any(r["errors"] for r in reports) else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
