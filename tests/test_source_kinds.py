"""One damaged file, every way an upload arrives: the same typed outcome, nothing intact lost.

Each case is a fixture with a fixed mutation (named header fields, plus
byte mutations drawn from a seeded generator, so the cases never change).
It is read as bytes, as a path, as a binary file object, inside a folder
next to an intact record, inside ZIP, TAR, TAR.GZ and 7z archives next to
that record, and through ``ingest_many`` on threads next to it. Every way
must end in the same outcome as the first (the same error class, or
records with equal digital samples), and the intact record must always
come back.
"""

from __future__ import annotations

import random
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import ecgingest
from ecgingest.errors import EcgIngestError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the fuzz package (repo root)
from fuzz.corpus import shrink_edf
from fuzz.mutate import Mutation, apply, random_mutations
from fuzz.oracle import record_digest
from fuzz.targets import seven_zip_of, tar_of, zip_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass(frozen=True)
class Case:
    format: str
    label: str
    files: tuple[tuple[str, bytes], ...]  # the damaged record: one file, or WFDB header + data
    intact: tuple[tuple[str, bytes], ...]  # an undamaged record that travels with it


def _edf_field(ns: int, before: int, width: int, signal: int = 0) -> int:
    """Offset of a per-signal EDF header field (``before``: bytes per signal of earlier fields)."""
    return 256 + ns * before + signal * width


def _single(fmt: str, name: str, data: bytes, fixed: list[tuple[str, list[Mutation]]],
            intact: tuple[tuple[str, bytes], ...]) -> list[Case]:
    cases = [Case(fmt, label, ((name, apply(data, m)),), intact) for label, m in fixed]
    rng = random.Random(f"source-kinds-{fmt}")
    for i in range(6):
        cases.append(Case(fmt, f"random{i}", ((name, apply(data, random_mutations(
            rng, len(data), 1 + i % 3))),), intact))
    return cases


def _cases() -> list[Case]:
    cases: list[Case] = []
    edf = shrink_edf((FIXTURES / "edf" / "test_subsecond.edf").read_bytes(), 48 * 1024)
    ns = int(edf[252:256])
    cases += _single("edf", "damaged.edf", edf, [
        ("physmin-abcdefgh", [("text", _edf_field(ns, 104, 8), b"abcdefgh")]),
        ("physmax-equals-min", [("text", _edf_field(ns, 112, 8), edf[_edf_field(ns, 104, 8):][:8])]),
        ("digmin-empty", [("text", _edf_field(ns, 120, 8), b"        ")]),
        ("records-99999999", [("text", 236, b"99999999")]),
        ("header-bytes-lie", [("text", 184, b"1024    ")]),
        ("signals-zero", [("text", 252, b"0   ")]),
        ("samples-per-record-huge", [("text", _edf_field(ns, 216, 8), b"99999999")]),
        ("cut-in-data", [("truncate", len(edf) - 7, b"")]),
        ("cut-in-header", [("truncate", 300, b"")]),
    ], (("intact.edf", edf),))
    bdf = (FIXTURES / "edf" / "SC4001EC-Hypnogram.bdf").read_bytes()
    cases += _single("bdf", "damaged.bdf", bdf, [
        ("records-minus-one", [("text", 236, b"-1      ")]),
        ("cut-in-annotations", [("truncate", len(bdf) - 100, b"")]),
    ], (("intact.bdf", bdf),))
    cdelta = (FIXTURES / "compressed_delta" / "ecg_3lead_delta_zstd.cmdt").read_bytes()
    cases += _single("cdelta", "damaged.cmdt", cdelta, [
        ("payload-size-huge", [("set", 4, b"\xff\xff\xff\xff\xff\xff\x00\x00")]),
        ("samples-zero", [("set", 13, b"\x00\x00\x00\x00")]),
        ("rate-nan", [("set", 17, b"\x00\x00\x00\x00\x00\x00\xf8\x7f")]),
        ("bits-7", [("set", 25, b"\x07")]),
        ("zstd-damaged", [("set", 40, b"\xff\xff\xff\xff")]),
        ("cut-in-payload", [("truncate", len(cdelta) // 2, b"")]),
    ], (("intact.cmdt", cdelta),))
    scp = (FIXTURES / "scp" / "wa_mdw14_20170504.scp").read_bytes()
    cases += _single("scp", "damaged.scp", scp, [
        ("crc-flipped", [("set", 0, b"\x00\x00")]),
        ("length-short", [("set", 2, b"\x10\x00\x00\x00")]),
        ("cut-half", [("truncate", len(scp) // 2, b"")]),
    ], (("intact.scp", scp),))
    kardia = (FIXTURES / "kardia" / "single_lead.json").read_bytes()
    cases += _single("kardia", "damaged.json", kardia, [
        ("frequency-text", [("set", kardia.index(b"300"), b'"a"')]),
        ("cut", [("truncate", len(kardia) // 2, b"")]),
        ("number-too-large", [("set", kardia.index(b"300"), b"1e999")]),
    ], (("intact.json", kardia),))
    muse = (FIXTURES / "muse" / "easyrecg_muse_ecg1.xml").read_bytes()
    lead = muse.index(b"<WaveFormData>") + len(b"<WaveFormData>") + 40
    cases += _single("muse", "damaged.xml", muse, [
        ("lead-bytes-changed", [("set", lead, b"AAAA")]),  # its CRC-32 no longer matches
        ("base64-broken", [("set", lead, b"!!!!")]),
        ("rate-text", [("text", muse.index(b"<SampleBase>") + 12, b"abc")]),
        ("tag-broken", [("set", muse.index(b"<WaveFormData>") + 1, b"?")]),
        ("cut-half", [("truncate", len(muse) // 2, b"")]),
    ], (("intact.xml", muse),))
    aecg = (FIXTURES / "hl7aecg" / "fda_minimum_aecg.xml").read_bytes()
    cases += _single("hl7aecg", "damaged.xml", aecg, [
        ("digits-text", [("set", aecg.index(b"<digits>") + 8, b"ab")]),
        ("increment-zero", [("text", aecg.index(b'increment value="') + 17, b"0.000")]),
        ("cut-half", [("truncate", len(aecg) // 2, b"")]),
    ], (("intact_aecg.xml", aecg),))
    folder = FIXTURES / "wfdb" / "100_3chan"
    header = (folder / "100_3chan.hea").read_bytes()
    signal = (folder / "100_3chan.dat").read_bytes()
    other = tuple((p.name, p.read_bytes()) for p in sorted((FIXTURES / "wfdb" / "fmt311")
                                                          .glob("311derive.*"))
                  if p.suffix in (".hea", ".dat"))
    wfdb_fixed = [
        ("samples-huge", [("text", header.index(b"999"), b"9999999999")], None),
        ("format-unknown", [("text", header.index(b"212"), b"999")], None),
        ("gain-text", [("text", header.index(b"200(1024)"), b"abc")], None),
        ("rate-zero", [("text", header.index(b"360.0"), b"0.000")], None),
        ("signal-file-cut", [], 1000),
        ("signal-file-empty", [], 0),
    ]
    for label, mutation, cut in wfdb_fixed:
        cases.append(Case("wfdb", label, (("100_3chan.hea", apply(header, mutation)),
                                          ("100_3chan.dat", signal[:cut] if cut is not None
                                           else signal)), other))
    rng = random.Random("source-kinds-wfdb")
    for i in range(6):
        cases.append(Case("wfdb", f"random{i}", (
            ("100_3chan.hea", apply(header, random_mutations(rng, len(header), 1 + i % 3))),
            ("100_3chan.dat", signal)), other))
    return cases


CASES = _cases()


# ----------------------------------------------------------------- observing an outcome
def observe(call: Callable[[], list]) -> tuple:
    """("records", digests) or ("error", class name); an untyped exception is its own outcome."""
    try:
        records = call()
    except EcgIngestError as exc:
        return ("error", type(exc).__name__)
    except Exception as exc:  # the finding this test exists for: report it, do not raise
        return ("untyped", f"{type(exc).__name__}: {exc}")
    return ("records",) + tuple(sorted(record_digest(r) for r in records))


def entry_outcome(result: ecgingest.IngestResult, names: tuple[str, ...]) -> tuple:
    """The outcome of the damaged record inside a bigger upload (entries named ``names``)."""
    mine = [r for r in result.records
            if any(s.rsplit("/", 1)[-1] in names for s in r.sources)]
    if mine:
        return ("records",) + tuple(sorted(record_digest(r) for r in mine))
    for err in result.errors:
        if any(p.rsplit("/", 1)[-1] in names for p in err.paths):
            return ("error", type(err.error).__name__)
    if any(s.path.rsplit("/", 1)[-1] in names for s in result.skipped):
        return ("error", "UnsupportedFormatError")  # what read() raises for a lone such file
    return ("error", "none reported")


def intact_digests(case: Case) -> tuple:
    """The intact record read alone, as bytes (single file) or as a folder (WFDB)."""
    if case.format == "wfdb":
        return tuple(record_digest(r) for r in ecgingest.read(zip_of(list(case.intact))))
    return tuple(record_digest(r) for r in ecgingest.read(case.intact[0][1]))


def in_upload(call: Callable[[], ecgingest.IngestResult], case: Case, wanted: tuple
              ) -> tuple:
    """Outcome of the damaged record in a mixed upload, plus whether the intact one came back."""
    try:
        result = call()
    except EcgIngestError as exc:
        return ("whole upload raised", type(exc).__name__)
    except Exception as exc:
        return ("untyped", f"{type(exc).__name__}: {exc}")
    got = [record_digest(r) for r in result.records
           if any(s.rsplit("/", 1)[-1] in {n for n, _ in case.intact} for s in r.sources)]
    if not all(w in got for w in wanted):
        return ("intact record lost", entry_outcome(result, tuple(n for n, _ in case.files)))
    return entry_outcome(result, tuple(n for n, _ in case.files))


# ----------------------------------------------------------------- the archives
ARCHIVES: dict[str, Callable] = {
    "zip": lambda files: zip_of(files, zipfile.ZIP_DEFLATED),
    "tar": tar_of,
    "tar.gz": lambda files: tar_of(files, "w:gz"),
    "7z": seven_zip_of,  # None without py7zr
}


def outcomes(case: Case, tmp: Path) -> dict[str, tuple]:
    """Every way this case can arrive -> its outcome."""
    seen: dict[str, tuple] = {}
    wanted = intact_digests(case)
    alone, mixed = tmp / "alone", tmp / "mixed"
    for folder, files in ((alone, case.files), (mixed, case.files + case.intact)):
        folder.mkdir()
        for name, data in files:
            (folder / name).write_bytes(data)
    if case.format == "wfdb":
        seen["zip bytes"] = observe(lambda: ecgingest.read(zip_of(list(case.files))))
        seen["header path"] = observe(lambda: ecgingest.read(alone / case.files[0][0]))
        seen["folder path"] = observe(lambda: ecgingest.read(alone))
    else:
        name, data = case.files[0]
        seen["bytes"] = observe(lambda: ecgingest.read(data))
        seen["path"] = observe(lambda: ecgingest.read(alone / name))

        def from_file_object() -> list:
            with open(alone / name, "rb") as fh:
                return ecgingest.read(fh)

        seen["file object"] = observe(from_file_object)
    seen["folder next to intact"] = in_upload(lambda: ecgingest.ingest(mixed), case, wanted)
    for kind, make in ARCHIVES.items():
        packed = make(list(case.files + case.intact))
        if packed is None:
            continue
        path = tmp / f"upload.{kind}"
        path.write_bytes(packed)
        seen[f"{kind} path next to intact"] = in_upload(lambda p=path: ecgingest.ingest(p),
                                                       case, wanted)
    intact_name = next((n for n, _ in case.intact if n.endswith(".hea")), case.intact[0][0])
    sources = [alone / case.files[0][0], mixed / intact_name]
    if case.format != "wfdb":
        sources.append(case.files[0][1])
    try:
        batch = list(ecgingest.ingest_many(sources, workers=2, ordered=True))
    except Exception as exc:
        seen["ingest_many on threads"] = ("batch raised", f"{type(exc).__name__}: {exc}")
    else:
        def batch_outcome(result: ecgingest.IngestResult) -> tuple:
            if result.records:
                return ("records",) + tuple(sorted(record_digest(r) for r in result.records))
            if result.errors:
                return ("error", type(result.errors[0].error).__name__)
            return ("error", "UnsupportedFormatError")
        seen["ingest_many on threads"] = batch_outcome(batch[0][1])
        if case.format != "wfdb":
            seen["ingest_many bytes on threads"] = batch_outcome(batch[2][1])
        intact_back = tuple(record_digest(r) for r in batch[1][1].records)
        if not all(w in intact_back for w in wanted):
            seen["ingest_many intact upload"] = ("intact record lost",)
    return seen


@pytest.mark.parametrize("case", CASES, ids=[f"{c.format}-{c.label}" for c in CASES])
def test_damaged_record_ends_in_the_same_typed_outcome_for_every_source_kind(case, tmp_path):
    seen = outcomes(case, tmp_path)
    reference_kind = next(iter(seen))
    reference = seen[reference_kind]
    assert reference[0] in ("records", "error"), f"{reference_kind}: {reference}"
    differing = {kind: got for kind, got in seen.items() if got != reference}
    assert not differing, (
        f"{reference_kind} gives {reference[:2]}, but:\n" + "\n".join(
            f"  {kind}: {got[:2]}" for kind, got in differing.items()))


def test_matrix_covers_every_format_and_archive_kind():
    assert {c.format for c in CASES} == {"edf", "bdf", "cdelta", "scp", "kardia", "wfdb", "muse",
                                           "hl7aecg"}
    assert all(ARCHIVES[k]([("a", b"x")]) for k in ("zip", "tar", "tar.gz"))
