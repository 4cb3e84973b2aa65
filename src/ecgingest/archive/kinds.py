"""Which archive an upload is, from its first bytes (magic numbers, never names)."""

from __future__ import annotations

__all__ = ["HEAD_BYTES", "SEEKING_KINDS", "KIND_NAMES", "archive_kind"]

_TAR_FILTERS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x04\x22\x4d\x18": "lz4",
    b"\x28\xb5\x2f\xfd": "zstd",
}
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_ANY_MAGIC = (*_ZIP_MAGICS, b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07", *_TAR_FILTERS)
SEEKING_KINDS = frozenset({"zip", "7z", "rar4", "rar5"})
"""Kinds libarchive (or rars) must seek in; a non-seekable stream of these is spooled."""

_OCTAL_FIELD_BYTES = b"01234567 \x00"
"""The bytes a tar checksum field may hold (octal digits, padded by spaces and NULs)."""

HEAD_BYTES = 512
"""Bytes :func:`archive_kind` needs to decide (one tar header block)."""


def _tar_checksum_ok(block: bytes) -> bool:
    """Whether *block* (at least its first 512 bytes) is a tar header by its checksum."""
    if len(block) < 512:
        return False
    field = block[148:156]
    if field.translate(None, _OCTAL_FIELD_BYTES):  # text, not a header: no sums
        return False
    field = field.replace(b"\x00", b" ").strip()
    if not field or field.translate(None, b"01234567"):  # a gap inside the number
        return False
    stored = int(field, 8)
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed and computed != 8 * 32


def archive_kind(head: bytes) -> str | None:
    """Archive type from the first bytes of an upload (magic numbers, never names).

    Returns ``"zip"``, ``"7z"``, ``"rar4"``, ``"rar5"``, ``"tar"`` or
    ``"tar+<filter>"`` (gzip, bzip2, xz, lz4, zstd); ``None`` for anything else.
    """
    if type(head) is not bytes:  # bytes are tested in place: every test below looks
        head = bytes(head[:HEAD_BYTES])  # at most HEAD_BYTES in
    if head.startswith(_ANY_MAGIC):  # one test for all: most uploads are no archive
        if head.startswith(_ZIP_MAGICS):
            return "zip"
        if head.startswith(b"7z\xbc\xaf\x27\x1c"):
            return "7z"
        if head.startswith(b"Rar!\x1a\x07\x00"):
            return "rar4"
        if head.startswith(b"Rar!\x1a\x07\x01\x00"):
            return "rar5"
        for magic, name in _TAR_FILTERS.items():
            if head.startswith(magic):
                if name == "bzip2" and not (len(head) > 3 and head[3:4] in b"123456789"):
                    continue
                return "tar+" + name
    if head[257:262] == b"ustar" or _tar_checksum_ok(head):
        return "tar"
    return None


KIND_NAMES = {"zip": "ZIP", "7z": "7-Zip", "rar4": "RAR 4", "rar5": "RAR 5", "tar": "TAR",
              "tar+gzip": "gzip TAR", "tar+bzip2": "bzip2 TAR", "tar+xz": "xz TAR",
              "tar+lz4": "lz4 TAR", "tar+zstd": "Zstandard TAR"}
"""Kinds as users name them (in messages)."""
