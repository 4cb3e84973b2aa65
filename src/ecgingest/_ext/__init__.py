"""Compiled kernels (Cython). Internal: use the public ``ecgingest`` API."""
