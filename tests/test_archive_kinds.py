"""The archive kind of an upload depends on its first 512 bytes only, however it is held."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from ecgingest.archive.kinds import HEAD_BYTES, archive_kind


def _tar_head(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


_HEADS = st.one_of(
    st.binary(max_size=1200),
    st.builds(lambda name, tail: _tar_head(name) + tail,
              st.text("abcxyz019", min_size=1, max_size=40), st.binary(max_size=64)),
    st.sampled_from([b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07\x00",
                     b"Rar!\x1a\x07\x01\x00", b"\x1f\x8b", b"BZh9", b"BZhx"]).flatmap(
        lambda magic: st.binary(max_size=700).map(lambda tail: magic + tail)),
)


@settings(max_examples=300)
@given(_HEADS)
def test_the_kind_is_the_same_from_bytes_a_view_and_the_first_512_bytes(data):
    kind = archive_kind(bytes(data[:HEAD_BYTES]))
    assert archive_kind(data) == kind
    assert archive_kind(memoryview(data)) == kind
    assert archive_kind(bytearray(data)) == kind


def test_a_tar_header_is_known_by_its_checksum_without_the_ustar_magic():
    head = bytearray(_tar_head("ecg.dat")[:HEAD_BYTES])
    head[257:265] = bytes(8)  # old-style tar: no magic, the checksum covers the block
    head[148:156] = b" " * 8
    head[148:155] = b"%06o\x00" % (sum(head))
    assert archive_kind(bytes(head)) == "tar"
    assert archive_kind(bytes(head) + b"<xml/>" * 10) == "tar"
    head[0] ^= 1  # a changed byte breaks the checksum
    assert archive_kind(bytes(head)) is None


@given(st.binary(min_size=512, max_size=600), st.sampled_from(
    [b"0 010070", b"12 34\x00 ", b"\x00\x00 7 7 7", b"        ", b"\x00" * 8]))
def test_a_checksum_field_with_gaps_is_no_tar_header(data, field):
    head = data[:148] + field + data[156:]
    assert archive_kind(head) in (None, "zip", "7z", "rar4", "rar5") or archive_kind(
        head).startswith("tar+") or head[257:262] == b"ustar"
