"""Archives: content sniffing, safe streamed walking, limits and entry names.

:func:`open_archive` / :func:`open_stream` turn an upload whose first bytes
are an archive's magic into an :class:`~ecgingest.sources.Upload` whose
entries are read one after the other, in archive order, without extraction:

- libarchive (through private ctypes prototypes of libarchive-c's library,
  :mod:`._libarchive`) reads ZIP, TAR (plain, gzip, bzip2, xz, lz4,
  Zstandard), 7-Zip and RAR 5, and every non-OK status, warnings included,
  fails the entry (:mod:`.libarchive`);
- ZIP members libarchive cannot decode (Deflate64; LZMA it rejects) are
  located through the central directory and decoded with ``inflate64`` /
  :mod:`lzma` (:mod:`.zip`); RAR 4 is read with ``rars`` (:mod:`.rar4`;
  libarchive < 3.7.4 decodes its PPMd-to-LZ switches wrongly); 7-Zip folders
  libarchive cannot decode (the ARM64 filter) are read with ``py7zr`` (header)
  and liblzma (data) (:mod:`.sevenzip`);
- archives of files or bytes are read ahead on other threads while the walk
  decodes (:class:`.libarchive.ReadAhead`: libarchive decompresses with the
  GIL released; a ZIP by two threads at once), with what the walk sees
  unchanged;
- bytes are counted against :class:`~ecgingest.Limits` as they arrive,
  declared sizes are checked but never trusted, and names are normalised;
  unsafe names, links and devices become :class:`~ecgingest.sources.Skipped`
  reports (:mod:`.walker`).

Directories on disk are read like archives and go through the same limits,
names and nesting rule. A ZIP (through its central directory) and a directory on
disk name their files before any is read (:mod:`.listing`).
"""

from __future__ import annotations

from .kinds import HEAD_BYTES, archive_kind
from .listing import ListedUpload, Listing, listing_of
from .opening import nested_in_directory, open_archive, open_stream

__all__ = ["HEAD_BYTES", "archive_kind", "open_archive", "open_stream", "nested_in_directory",
           "ListedUpload", "Listing", "listing_of"]
