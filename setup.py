"""Build table of the Cython extensions: ext/<name>.pyx -> ecgingest._ext.<name>."""

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ECGINGEST_DEBUG_BUILD", "") not in ("", "0")

extensions = [
    Extension(
        f"ecgingest._ext.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include(), "ext"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []),
        depends=[str(p) for p in Path("ext").glob("*.pxd")],
    )
    for pyx in sorted(Path("ext").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        build_dir="build",
        language_level=3,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "initializedcheck": DEBUG,
            "cdivision": not DEBUG,
            "linetrace": DEBUG,
            "embedsignature": True,
            "autotestdict": False,  # no __test__ dict: the stubs list what a module holds
        },
    ),
)
