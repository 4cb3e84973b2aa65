"""Reading DICOM waveform ECGs: ecgingest against pydicom and ECGDataKit, in one run.

    python benchmarks/bench_dicom.py [--rounds N]

Inputs: the DICOM files of ``$ECGINGEST_CORPUS`` (else ``fixtures/dicom``).
Contenders, alternating round by round: ``ecgingest.read(bytes)``; pydicom's
``dcmread`` alone (the parse every pydicom-based reader pays, ecgingest and
ECGDataKit included: the floor of a read); pydicom with its own sample
decoding (``dcmread`` and ``multiplex_array(as_raw=False)`` for every
multiplex group); ECGDataKit's ``FileParser.parse`` where installed. pydicom
parses sequences of undefined length (what carts write) completely while it
reads, so ``dcmread`` costs the same with ``specific_tags``, ``defer_size`` or
``stop_before_pixels``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ishne import ecgdatakit_parse, race, report  # noqa: E402

import ecgingest  # noqa: E402


def files() -> dict[str, bytes]:
    corpus = os.environ.get("ECGINGEST_CORPUS")
    folder = Path(corpus) / "dicom" if corpus else ROOT / "fixtures" / "dicom"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.dcm"))}


def dcmread_only(data: bytes) -> object:
    import pydicom

    return pydicom.dcmread(io.BytesIO(data))


def pydicom_read(data: bytes) -> list:
    import pydicom
    from pydicom.waveforms import multiplex_array

    ds = pydicom.dcmread(io.BytesIO(data))
    return [multiplex_array(ds, i, as_raw=False) for i in range(len(ds.WaveformSequence))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    edk = ecgdatakit_parse()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files().items():
            path = Path(tmp) / name
            path.write_bytes(data)
            contenders: dict[str, Callable[[], object]] = {
                "ecgingest": lambda data=data: ecgingest.read(data),
                "pydicom dcmread only": lambda data=data: dcmread_only(data),
                "pydicom + samples": lambda data=data: pydicom_read(data),
            }
            if edk is not None:
                contenders["ecgdatakit"] = lambda path=path: edk(str(path))
            report(name, race(contenders, args.rounds))
    if edk is None:
        print("\n  ecgdatakit is not installed: no ratio against it")


if __name__ == "__main__":
    main()
