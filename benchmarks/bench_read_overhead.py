"""What ``ecgingest.read(bytes)`` costs over the bare decoder, per format.

    python benchmarks/bench_read_overhead.py            # full run
    python benchmarks/bench_read_overhead.py --quick    # a few seconds a format

For one small file of each single-file format (``$ECGINGEST_CORPUS`` when
set, else ``fixtures/``), times per record, in one run with the two rounds
alternating: the format's decoder alone (``FORMAT.decode(data, ctx)``), the
public ``ecgingest.read(data)`` (upload wrapping, detection, limits, warnings,
ordering) and ``ecgingest.read(path)`` (the same from the file on disk: its
opening and reading added). Prints microseconds per record, what each read
costs over the decoder, and the page faults of a read by path (where the C heap
hands the memory of a read back to the system and faults it in again at the
next one, or a file is mapped). WFDB
is not listed: its records span files, so bytes alone hold none.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import ecgingest  # noqa: E402
from ecgingest.errors import EcgWarning  # noqa: E402
from ecgingest.formats import single_file_formats  # noqa: E402
from ecgingest.formats._base import DecodeContext  # noqa: E402

#: format -> (corpus path, fixture path): one small file each
FILES = {
    "edf": ("edf/test_subsecond.edf", "edf/test_subsecond.edf"),
    "scp": ("scp/wa_mdw14_20170504.scp", "scp/wa_mdw14_20170504.scp"),
    "compressed_delta": (None, "compressed_delta/ecg_3lead_delta_zstd.cmdt"),
    "kardia": (None, "kardia/six_lead_enhanced.json"),
    "dicom": ("dicom/ge_mac55_vumc.dcm", None),
    "ishne": ("ishne/ECG_P28.01.ecg", None),
    "muse": ("muse/egm_muse_sinus.xml", None),
    "hl7aecg": ("hl7aecg/fda_minimum_aecg.xml", None),
    "philips": ("philips/sierra_1_03_129DYPRG.XML", None),
    "mfer": ("mfer/synth_12lead_500hz_le.mwf", None),
}


def _file(fmt: str) -> Path | None:
    corpus_rel, fixture_rel = FILES[fmt]
    corpus = os.environ.get("ECGINGEST_CORPUS")
    for base, rel in ((corpus, corpus_rel), (str(ROOT / "fixtures"), fixture_rel)):
        if base and rel and (Path(base) / rel).is_file():
            return Path(base) / rel
    return None


def _per_call(fn, seconds: float) -> float:
    """CPU seconds of this process per call of ``fn`` over about ``seconds`` (best round)."""
    count, start = 0, time.process_time()
    while True:
        fn()
        count += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return elapsed / count


def _faults_per_call(fn, calls: int) -> float:
    """Minor page faults of this process per call of ``fn``."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short timings")
    args = parser.parse_args()
    seconds = 0.15 if args.quick else 0.6
    rounds = 5
    warnings.simplefilter("ignore", EcgWarning)
    formats = {f.name: f for f in single_file_formats()}
    header = (f"{'format':16s} {'file':34s} {'decode us':>10s} {'read us':>10s} "
              f"{'overhead us':>11s} {'path us':>10s} {'overhead us':>11s} {'faults':>7s}")
    print("ecgingest.read(bytes) over the bare decoder, per record")
    print(header)
    print("-" * len(header))
    for name in formats:
        if name not in FILES:
            print(f"{name:16s} (no file listed)")
            continue
        path = _file(name)
        fmt = formats.get(name)
        if path is None or fmt is None:
            print(f"{name:16s} (no file)")
            continue
        data = path.read_bytes()

        def bare(fmt=fmt, data=data, filename=path.name):
            return fmt.decode(data, DecodeContext(fmt.name, name=filename, path=filename))

        def public(data=data):
            return ecgingest.read(data)

        def from_path(path=path):
            return ecgingest.read(path)

        bare()
        public()
        from_path()
        best_bare = best_read = best_path = float("inf")
        for _ in range(rounds):  # alternate, keep the best of each
            best_bare = min(best_bare, _per_call(bare, seconds / rounds))
            best_read = min(best_read, _per_call(public, seconds / rounds))
            best_path = min(best_path, _per_call(from_path, seconds / rounds))
        faults = _faults_per_call(from_path, 50)
        print(f"{name:16s} {path.name[:34]:34s} {best_bare * 1e6:10.1f} {best_read * 1e6:10.1f} "
              f"{(best_read - best_bare) * 1e6:11.1f} {best_path * 1e6:10.1f} "
              f"{(best_path - best_bare) * 1e6:11.1f} {faults:7.1f}")
    print(f"\n(CPU time of this process per record, best of {rounds} alternating rounds; "
          f"faults: minor page faults per read by path; "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
