"""Reading MFER files: ecgingest against ECGDataKit (where installed), in one run.

    python benchmarks/bench_mfer.py [--rounds N]

Inputs: the synthetic 12-lead file of ``$ECGINGEST_CORPUS`` (else
``fixtures/mfer``), and files written by the test-side writer: a 12-lead 10 s
resting ECG in big-endian byte order with a channel ATT per lead, and a
long-term recording (3 channels, 1 h at 125 Hz) split into one WAV frame per
minute. No real device file is redistributable, so none is timed here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ishne import ecgdatakit_parse, race, report  # noqa: E402

import ecgingest  # noqa: E402
import mfer_writer as mw  # noqa: E402


def files() -> dict[str, bytes]:
    corpus = os.environ.get("ECGINGEST_CORPUS")
    folder = Path(corpus) / "mfer" if corpus else ROOT / "fixtures" / "mfer"
    out = {p.name: p.read_bytes() for p in sorted(folder.glob("*.mwf"))}
    rng = np.random.default_rng(9)
    leads = [1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8]
    out["written 12 x 10 s at 500 Hz, big endian"] = mw.write(mw.Recording(
        [mw.Channel(rng.integers(-3000, 3000, 5000).astype(np.int16), lead=code)
         for code in leads], big_endian=True, block=5000, ivl=(1, -3, 2)))
    minute = 125 * 60
    out["written 3 x 1 h at 125 Hz, 60 frames"] = mw.write(mw.Recording(
        [mw.Channel(rng.integers(-3000, 3000, minute * 60).astype(np.int16), lead=code)
         for code in (4166, 4167, 4168)], block=minute, frames=60, ivl=(1, -3, 8)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    edk = ecgdatakit_parse()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files().items():
            path = Path(tmp) / "record.mwf"
            path.write_bytes(data)
            contenders: dict[str, Callable[[], object]] = {
                "ecgingest": lambda data=data: ecgingest.read(data)}
            if edk is not None:
                contenders["ecgdatakit"] = lambda path=path: edk(str(path))
            report(name, race(contenders, args.rounds))
    if edk is None:
        print("\n  ecgdatakit is not installed: no ratio against it")


if __name__ == "__main__":
    main()
