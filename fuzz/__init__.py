"""Coverage-guided fuzzing of ecgingest: one target per decoder, archives, streams, chunked uploads.

The promise every target checks: an input ends in records or an
:class:`ecgingest.errors.EcgIngestError`; no other exception, no crash, no
hang beyond a time bound, and no intact record lost next to a damaged one.
Run ``python -m fuzz --help`` (see fuzz/README.md).
"""
