"""Render the images of docs/plot.md from the demo recordings.

Run from the repository root after a change to the plots::

    python docs/images/make_images.py

The images are written next to this script; ``tests/test_plot.py`` checks that
they are what this script renders (same files, same pixel sizes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import ecgingest
from ecgingest.demo import path
from ecgingest.plot import plot_record

HERE = Path(__file__).resolve().parent
DPI = 100
IMAGES = {
    # file name -> (demo recording, keyword arguments of plot_record)
    "plot_12lead.png": ("ecgtoolkit_Example.scp", {}),
    "plot_stacked.png": ("test_subsecond.edf", {"seconds": 5.0}),
}


def render(directory: Path = HERE) -> list[Path]:
    """Write every image into ``directory``; the paths written."""
    written = []
    for name, (recording, options) in IMAGES.items():
        [record] = ecgingest.read(path() / recording)
        target = directory / name
        plot_record(record, **options).savefig(target, dpi=DPI)
        written.append(target)
    return written


if __name__ == "__main__":
    for target in render(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {target}")
