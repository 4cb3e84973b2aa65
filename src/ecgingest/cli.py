"""The ``ecgingest`` command: ``inspect``, ``ingest-many``, ``plot`` and ``convert``.

Every command reads the same uploads as :func:`ecgingest.ingest` (a file, a
directory, an archive, a URL, ``-`` for standard input, or a WFDB record name
such as ``100`` for ``100.hea``), takes the library's limits and overrides as
options, and reports tolerated deviations once per record instead of printing
Python warnings. ``--json`` output is JSON Lines in one schema for ``inspect``
and ``ingest-many`` (``SCHEMA_VERSION``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import textwrap
import time
import typing
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import EcgIngestError, EcgWarning, MissingDependencyError, OverrideError
from .ingest import EntryError, IngestResult, Progress, ingest, inspect_upload
from .limits import Limits
from .overrides import Overrides
from .record import Metadata, Record, RecordInfo
from .sources import Skipped
from .uploads import is_url

__all__ = ["main", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
"""Version of the JSON report schema (docs/cli.md); raised when a field changes meaning
or goes away, not when one is added."""

DESCRIPTION = (
    "Read ECG uploads (a recording, a directory or archive of recordings, a URL, or - for "
    "standard input) and describe, plot or convert the records in them.")

EPILOG = """examples:
  ecgingest inspect upload.zip
  ecgingest inspect 100                  (the WFDB record 100.hea and its files)
  ecgingest inspect --json - < recording.scp
  ecgingest plot recording.scp -o ecg.png
  ecgingest convert upload.zip --to edf converted/
  ecgingest ingest-many uploads/ --json

exit status: 0 when every input gave records, 1 when an input failed or held no
ECG record, 2 for a usage error or a missing optional package."""

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    """A bad option value or a missing optional package: exit status 2."""


# --------------------------------------------------------------------------- options


def _limits(args: argparse.Namespace) -> Limits | None:
    """``Limits`` from ``--max-ratio``, ``--max-nesting`` and ``--limit NAME=VALUE``."""
    defaults = Limits()
    fields = [f.name for f in dataclasses.fields(Limits)]
    values: dict[str, Any] = {}
    for item in args.limit or ():
        name, _, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in fields or not _:
            raise _UsageError(f"--limit takes NAME=VALUE with NAME one of {', '.join(fields)}; "
                              f"got {item!r}")
        kind = type(getattr(defaults, name))
        try:
            values[name] = kind(text)
        except ValueError:
            raise _UsageError(f"--limit {name} needs a {kind.__name__}, got {text!r}") from None
    if args.max_ratio is not None:
        values["max_ratio"] = args.max_ratio
    if args.max_nesting is not None:
        values["max_nesting"] = args.max_nesting
    if not values:
        return None
    try:
        return Limits(**values)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _overrides(args: argparse.Namespace) -> Overrides | None:
    """``Overrides`` from ``--override FIELD=VALUE``: numbers for the numeric fields, and
    list fields (``indications``, ``searching_tags``) collect every value given."""
    hints = typing.get_type_hints(Metadata)
    mapping: dict[str, Any] = {}
    for item in args.override or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in hints:
            from .record import METADATA_FIELDS

            raise _UsageError(f"--override takes FIELD=VALUE with FIELD one of "
                              f"{', '.join(METADATA_FIELDS)}; got {item!r}")
        hint = str(hints[name])
        if "tuple" in hint:
            mapping.setdefault(name, []).append(text)
        elif "int" in hint:
            try:
                mapping[name] = int(text)
            except ValueError:
                raise _UsageError(f"--override {name} needs a whole number, "
                                  f"got {text!r}") from None
        else:
            mapping[name] = text
    try:
        return Overrides.coerce(mapping) if mapping else None
    except OverrideError as exc:
        raise _UsageError(str(exc)) from None


# --------------------------------------------------------------------------- sources


def _local_path(text: str) -> str:
    """A path as typed, or ``NAME.hea`` when only that exists (WFDB record names)."""
    if not os.path.exists(text) and os.path.isfile(text + ".hea"):
        return text + ".hea"
    return text


@contextlib.contextmanager
def _opened(text: str) -> Iterator[Any]:
    """The upload a command-line argument names, ready for ``ingest``."""
    if text == "-":
        yield sys.stdin.buffer
    elif is_url(text):
        yield text  # the library opens URLs (fsspec) and names the record after them
    else:
        yield _local_path(text)


def _label(text: str) -> str:
    return "<stdin>" if text == "-" else text


# --------------------------------------------------------------------------- warnings


@contextlib.contextmanager
def _warnings_collected() -> Iterator[list[str]]:
    """No Python warning reaches stderr: :class:`EcgWarning` texts are on their records
    already (reported once per record), anything else is collected for the report."""
    caught: list[str] = []

    def collect(message: Any, category: type[Warning], filename: str, lineno: int,
                file: Any = None, line: str | None = None) -> None:
        text = f"{category.__name__}: {message}"
        if text not in caught:
            caught.append(text)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", EcgWarning)
        warnings.showwarning = collect
        yield caught


def _drain(caught: list[str]) -> list[str]:
    taken = list(caught)
    caught.clear()
    return taken


# --------------------------------------------------------------------------- reports


def _upload_report(label: str, records: Sequence[Record | RecordInfo],
                   skipped: Sequence[Skipped], errors: Sequence[EntryError],
                   warned: Sequence[str] = ()) -> dict[str, Any]:
    """One upload in the JSON report schema (docs/cli.md), shared by every command."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "upload",
        "input": label,
        "records": [r.summary() for r in records],
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "errors": [{"paths": list(e.paths), "type": type(e.error).__name__,
                    "message": str(e.error)} for e in errors],
        "warnings": list(warned),
    }


def _failed_report(label: str, exc: BaseException, warned: Sequence[str] = ()
                   ) -> dict[str, Any]:
    """An upload that could not be read at all (unknown format, missing file, ...)."""
    path = getattr(exc, "path", None) or label
    report = _upload_report(label, [], [], [], warned)
    report["errors"] = [{"paths": [path], "type": type(exc).__name__,
                         "message": _message(exc)}]
    return report


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or 'cannot read'}: {exc.filename}"
    return str(exc)


class _Totals:
    """The summary line of a JSON report, counted from upload reports as they go."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.counts = dict.fromkeys(
            ("uploads", "failed_uploads", "records", "skipped", "errors", "samples"), 0)

    def add(self, report: dict[str, Any]) -> None:
        counts = self.counts
        counts["uploads"] += 1
        counts["failed_uploads"] += bool(report["errors"])
        counts["records"] += len(report["records"])
        counts["skipped"] += len(report["skipped"])
        counts["errors"] += len(report["errors"])
        counts["samples"] += sum(s["samples"] for rec in report["records"]
                                 for s in rec["signals"])

    def report(self, warned: Sequence[str] = ()) -> dict[str, Any]:
        seconds = time.perf_counter() - self.start
        rate = self.counts["samples"] / seconds if seconds > 0 else 0.0
        return {"schema_version": SCHEMA_VERSION, "kind": "summary",
                "summary": {**self.counts, "seconds": round(seconds, 3),
                            "samples_per_second": round(rate, 1)},
                "warnings": list(warned)}


def _no_records_note(report: dict[str, Any]) -> str:
    skipped = len(report["skipped"])
    tail = f" ({skipped} {'entry' if skipped == 1 else 'entries'} skipped)" if skipped else ""
    return f"no ECG records found in {report['input']}{tail}"


def _print_text(report: dict[str, Any], out: TextIO) -> None:
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
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=out)


def _emit(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_text(report, sys.stdout)
    sys.stdout.flush()
    _note_no_records(report)


def _note_no_records(report: dict[str, Any]) -> None:
    """Say so on stderr when an upload read without error held no record at all."""
    if report.get("kind") == "upload" and not report["records"] and not report["errors"]:
        print(f"ecgingest: {_no_records_note(report)}", file=sys.stderr)


# --------------------------------------------------------------------------- inspect


def _inspect_one(text: str, args: argparse.Namespace, caught: list[str],
                 show_progress: bool) -> dict[str, Any]:
    """Header facts of one upload: no samples are decoded."""
    label = _label(text)
    bar = _progress_bar(label) if show_progress else None
    try:
        with _opened(text) as source:
            records, skipped, errors = inspect_upload(
                source, strict=args.strict, limits=args.limits,
                progress=None if bar is None else _advance(bar))
    except MissingDependencyError:
        raise
    except (EcgIngestError, OSError) as exc:
        return _failed_report(label, exc, _drain(caught))
    finally:
        if bar is not None:
            bar.close()
    if args.overrides is not None:
        # RecordInfo carries metadata the way Record does: the same overrides apply
        records = [args.overrides.apply(r) for r in records]  # type: ignore[arg-type]
    return _upload_report(label, records, skipped, errors, _drain(caught))


def _progress_bar(label: str) -> Any:
    from tqdm import tqdm

    return tqdm(desc=label, unit=" entries", file=sys.stderr, leave=False, delay=0.5)


def _advance(bar: Any) -> Progress:
    def advance(count: int, entry: str) -> None:
        bar.update(count - bar.n)

    return advance


def _inspect(args: argparse.Namespace, caught: list[str]) -> int:
    if args.demo:
        from .demo import archive as demo_archive

        args.paths.append(str(demo_archive()))
    if not args.paths:
        raise _UsageError("inspect needs at least one PATH (or --demo)")
    show_progress = not args.no_progress and sys.stderr.isatty()
    totals = _Totals()
    status = EXIT_OK
    for text in args.paths:
        report = _inspect_one(text, args, caught, show_progress)
        totals.add(report)
        _emit(report, args.json)
        if report["errors"] or not report["records"]:
            status = EXIT_INPUT
    if args.json:
        _emit(totals.report(_drain(caught)), True)
    return status


# --------------------------------------------------------------------------- ingest-many


def _ingest_many(args: argparse.Namespace, caught: list[str]) -> int:
    from .many import ingest_many, uploads_below

    sources: list[Any] = []
    for text in args.paths:
        if text == "-":
            sources.append(sys.stdin.buffer)
        elif not is_url(text) and os.path.isdir(text):
            sources.extend(uploads_below(text, limits=args.limits))
        else:
            sources.append(text if is_url(text) else _local_path(text))
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise _UsageError("--scheduler needs Dask: pip install 'ecgingest[dask]'") from None
        client = Client(args.scheduler)
    totals = _Totals()
    try:
        for source, result in ingest_many(sources, workers=args.workers, client=client,
                                          strict=args.strict, overrides=args.overrides,
                                          limits=args.limits,
                                          progress=False if args.no_progress else None):
            label = "<stdin>" if source is sys.stdin.buffer else _source_label(source)
            report = _upload_report(label, result.records, result.skipped, result.errors)
            totals.add(report)
            if args.json:
                _emit(report, True)
            else:
                _print_problems(report, with_input=True)
    finally:
        if client is not None:
            client.close()
    summary = totals.report(_drain(caught))
    counts = summary["summary"]
    if args.json:
        _emit(summary, True)
    else:
        for warning in summary["warnings"]:
            print(f"warning: {warning}")
        print(f"{counts['uploads']} uploads ({counts['failed_uploads']} with errors), "
              f"{counts['records']} records, {counts['skipped']} skipped, "
              f"{counts['errors']} errors, "
              f"{counts['samples_per_second'] / 1e6:.1f} Msamples/s in "
              f"{counts['seconds']:.2f} s")
    if not counts["uploads"]:  # an upload without records was named as it went
        print("ecgingest: no ECG records found (no upload to read)", file=sys.stderr)
    if not counts["records"]:
        return EXIT_INPUT
    return EXIT_INPUT if counts["failed_uploads"] else EXIT_OK


def _source_label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", source))


# --------------------------------------------------------------------------- plot, convert


def _read_for_output(text: str, args: argparse.Namespace, caught: list[str]
                     ) -> tuple[IngestResult | None, dict[str, Any]]:
    """Decode one upload for ``plot`` / ``convert``; print its problems as ``inspect``
    would. Returns the result (``None`` when the upload could not be read) and the report."""
    label = _label(text)
    try:
        with _opened(text) as source:
            result = ingest(source, strict=args.strict, limits=args.limits,
                            overrides=args.overrides)
    except MissingDependencyError:
        raise
    except (EcgIngestError, OSError) as exc:
        report = _failed_report(label, exc, _drain(caught))
        _print_problems(report)
        return None, report
    report = _upload_report(label, result.records, result.skipped, result.errors,
                            _drain(caught))
    _print_problems(report)
    return result, report


def _print_problems(report: dict[str, Any], *, with_input: bool = False) -> None:
    """Warnings (once per record), errors, and the no-record note of one upload;
    ``with_input`` starts each line with the upload (many uploads, one output)."""
    where = f"{report['input']}: " if with_input else ""
    for rec in report["records"]:
        for warning in rec["warnings"]:
            print(f"warning {where}{rec['name']}: {warning}")
    for err in report["errors"]:
        print(f"error {where}{', '.join(err['paths'])}: {err['type']}: {err['message']}")
    for warning in report["warnings"]:
        print(f"warning {where}{warning}")
    _note_no_records(report)


def _file_stems(records: Sequence[Record]) -> list[str]:
    """A distinct file-name stem per record, safe as a WFDB record name too
    (``test.edf`` -> ``test``; ``a b`` -> ``a_b``; a repeated name gets ``_2``).
    A name that is already a safe stem keeps it: one made safe yields to it
    (``0:`` and ``0`` give ``0_2`` and ``0``)."""
    names = [record.name.rsplit("/", 1)[-1] for record in records]
    bases = [re.sub(r"[^\w-]", "_", Path(name).stem if "." in name else name,
                    flags=re.ASCII).strip("_") or "record" for name in names]
    stems: list[str | None] = [None] * len(names)
    taken: set[str] = set()
    for i, (name, base) in enumerate(zip(names, bases)):
        if base == name and name.lower() not in taken:
            stems[i] = name
            taken.add(name.lower())
    for i, base in enumerate(bases):
        if stems[i] is None:
            unique, number = base, 1
            while unique.lower() in taken:
                number += 1
                unique = f"{base}_{number}"
            taken.add(unique.lower())
            stems[i] = unique
    return [stem for stem in stems if stem is not None]


def _plot(args: argparse.Namespace, caught: list[str]) -> int:
    from .plot import plot_record

    result, report = _read_for_output(args.upload, args, caught)
    if result is None or not result.records:
        return EXIT_INPUT
    records = result.records
    if args.record is not None:
        records = [r for r in records if r.name == args.record]
        if not records:
            print(f"ecgingest: no record named {args.record!r}; the upload holds "
                  f"{', '.join(repr(r.name) for r in result.records)}", file=sys.stderr)
            return EXIT_INPUT
        records = records[:1]
    output = Path(args.output)
    if len(records) == 1:
        targets = [output]
    else:
        targets = [output.with_name(f"{output.stem}-{stem}{output.suffix}")
                   for stem in _file_stems(records)]
    status = EXIT_INPUT if report["errors"] else EXIT_OK
    for record, target in zip(records, targets):
        try:
            figure = plot_record(record, layout=args.layout, start=args.start,
                                 seconds=args.seconds, annotations=not args.no_annotations)
        except ValueError as exc:
            print(f"error {record.name}: {exc}")
            status = EXIT_INPUT
            continue
        try:
            figure.savefig(target, dpi=args.dpi)
        except (OSError, ValueError) as exc:  # unwritable place, unknown image type
            print(f"error {record.name}: cannot write {target}: {exc}")
            status = EXIT_INPUT
            continue
        print(f"wrote {target}")
    for warning in _drain(caught):
        print(f"warning: {warning}")
    return status


_WRITERS = {"wfdb": "to_wfdb", "edf": "to_edf", "bdf": "to_edf"}


def _convert(args: argparse.Namespace, caught: list[str]) -> int:
    method = _WRITERS[args.to]
    if not hasattr(Record, method):
        raise _UsageError(f"this version of ecgingest cannot write {args.to.upper()} "
                          f"(Record.{method} is missing)")
    result, report = _read_for_output(args.upload, args, caught)
    if result is None or not result.records:
        return EXIT_INPUT
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"ecgingest: cannot create {outdir}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    status = EXIT_INPUT if report["errors"] else EXIT_OK
    for record, stem in zip(result.records, _file_stems(result.records)):
        try:
            if args.to == "wfdb":
                options = {} if args.fmt is None else {"fmt": args.fmt}
                record.replace(name=stem).to_wfdb(outdir, **options)
                target = outdir / f"{stem}.hea"
            else:
                target = outdir / f"{stem}.{args.to}"
                record.to_edf(target, bdf=args.to == "bdf")
        except (EcgIngestError, ValueError, OSError) as exc:
            print(f"error {record.name}: cannot write {args.to.upper()}: "
                  f"{type(exc).__name__}: {exc}")
            status = EXIT_INPUT
            continue
        print(f"wrote {target}")
    for warning in _drain(caught):
        print(f"warning: {warning}")
    return status


# --------------------------------------------------------------------------- the parser


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ecgingest", description=textwrap.fill(DESCRIPTION, 79), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ecgingest {__version__}")
    reading = argparse.ArgumentParser(add_help=False)
    group = reading.add_argument_group("reading")
    group.add_argument("--strict", action="store_true",
                       help="treat tolerated deviations and skipped entries as errors")
    group.add_argument("--max-ratio", type=float, metavar="RATIO",
                       help="largest expansion ratio of an archive entry (default 200)")
    group.add_argument("--max-nesting", type=int, metavar="DEPTH",
                       help="archives inside archives to open (default 0: skipped)")
    group.add_argument("--limit", action="append", metavar="NAME=VALUE",
                       help="any other ecgingest.Limits field, e.g. max_entry_size=8589934592")
    group.add_argument("--override", action="append", metavar="FIELD=VALUE",
                       help="metadata that wins over the files, e.g. patient_id=P7 "
                            "(repeat for several fields; list fields collect values)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", parents=[reading], help="describe the records of uploads (headers only)",
        description="Describe the records of each upload from their headers, without "
                    "decoding samples.")
    inspect.add_argument("paths", nargs="*", metavar="UPLOAD",
                         help="file, archive, directory, URL, WFDB record name, or -")
    inspect.add_argument("--demo", action="store_true",
                         help="also inspect the demo upload (a ZIP) bundled with ecgingest")
    inspect.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
    inspect.add_argument("--no-progress", action="store_true",
                         help="never show progress (shown on a terminal for long uploads)")

    many = commands.add_parser(
        "ingest-many", parents=[reading],
        help="decode many uploads in parallel and print a summary",
        description="Decode many uploads on threads (or a Dask cluster) and print a summary.")
    many.add_argument("paths", nargs="+", metavar="UPLOAD",
                      help="uploads (files, archives, URLs, -) or directories of uploads")
    many.add_argument("--workers", type=int, default=None,
                      help="threads on this machine (default: the cores available)")
    many.add_argument("--scheduler", metavar="ADDRESS", default=None,
                      help="run on a Dask cluster (needs ecgingest[dask])")
    many.add_argument("--json", action="store_true", help="print JSON Lines instead of text")
    many.add_argument("--no-progress", action="store_true", help="never show a progress bar")

    plot = commands.add_parser(
        "plot", parents=[reading], help="draw the records of an upload to an image",
        description="Draw each record of an upload: a 12-lead ECG on paper (25 mm/s, "
                    "10 mm/mV) when it has the twelve standard leads, stacked traces "
                    "otherwise. Needs matplotlib: pip install 'ecgingest[plot]'.")
    plot.add_argument("upload", metavar="UPLOAD",
                      help="file, archive, directory, URL, WFDB record name, or -")
    plot.add_argument("-o", "--output", required=True, metavar="FILE",
                      help="image to write (.png, .svg, .pdf); with several records, "
                           "one file each named FILE-RECORD")
    plot.add_argument("--record", metavar="NAME", help="draw only the record of this name")
    plot.add_argument("--layout", choices=("auto", "12-lead", "stacked"), default="auto")
    plot.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                      help="where the window begins, from the record start")
    plot.add_argument("--seconds", type=float, default=10.0, help="window length")
    plot.add_argument("--dpi", type=float, default=150.0, help="resolution of raster images")
    plot.add_argument("--no-annotations", action="store_true", help="leave annotations out")

    convert = commands.add_parser(
        "convert", parents=[reading], help="write every record of an upload as WFDB or EDF",
        description="Write every record of an upload into OUTDIR as WFDB, EDF or BDF.")
    convert.add_argument("upload", metavar="UPLOAD",
                         help="file, archive, directory, URL, WFDB record name, or -")
    convert.add_argument("--to", required=True, choices=tuple(_WRITERS),
                         help="the format to write")
    convert.add_argument("outdir", metavar="OUTDIR", help="directory for the files written")
    convert.add_argument("--fmt", default=None,
                         help="WFDB signal format (e.g. 16, 212), default: the writer's")
    return parser


_COMMANDS = {"inspect": _inspect, "ingest-many": _ingest_many, "plot": _plot,
             "convert": _convert}


def _main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.limits = _limits(args)
        args.overrides = _overrides(args)
        with _warnings_collected() as caught:
            return _COMMANDS[args.command](args, caught)
    except _UsageError as exc:
        print(f"ecgingest: {exc}", file=sys.stderr)
    except MissingDependencyError as exc:
        print(f"ecgingest: {exc.message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
