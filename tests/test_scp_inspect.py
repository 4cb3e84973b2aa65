"""SCP-ECG header-only inspection: the facts of a record without its samples."""

from __future__ import annotations

import struct
import warnings
from binascii import crc_hqx

import numpy as np
import pytest

import scp_encoder as enc
from conftest import FIXTURES, corpus_dir, corpus_records
from ecgingest.errors import EcgIngestError, EcgWarning, TruncatedError
from ecgingest.formats import scp
from ecgingest.formats._base import DecodeContext
from ecgingest.record import RecordInfo

FIX = FIXTURES / "scp"


def _files() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted(FIX.glob("*.scp"))]
    root = corpus_dir()
    if root is not None:
        out += [(e["path"], (root / e["path"]).read_bytes()) for e in corpus_records("scp")]
    x = np.arange(3 * 60).reshape(3, 60) % 11 - 5
    out.append(("huffman.scp", enc.encode(enc.ScpSpec(
        rhythm=x, lead_ids=[1, 2, 3], huffman=enc.DEFAULT_TABLE, differences=2))))
    out.append(("bimodal.scp", enc.encode(enc.ScpSpec(
        rhythm=x, lead_ids=[1, 2, 3], bimodal_factor=4, qrs=[(1, 10, 12, 20)]))))
    return out


def _ctx(name: str, strict: bool = False) -> DecodeContext:
    return DecodeContext("scp", name=name, path=name, strict=strict)


@pytest.mark.parametrize(("name", "data"), _files(), ids=lambda v: v if isinstance(v, str) else "")
def test_inspection_gives_the_header_facts_decoding_gives(name, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        try:
            record = scp.FORMAT.decode(data, _ctx(name))
        except EcgIngestError as exc:  # a header problem: inspection says the same
            with pytest.raises(type(exc)) as seen:
                scp.FORMAT.inspect(data, _ctx(name))
            assert str(seen.value) == str(exc)
            return
    info = scp.FORMAT.inspect(data, _ctx(name))
    expected = RecordInfo.of(record)
    assert isinstance(info, RecordInfo)
    assert (info.name, info.format, info.format_detail, info.start_time, info.metadata,
            info.sources) == (expected.name, expected.format, expected.format_detail,
                              expected.start_time, expected.metadata, expected.sources)
    assert [(s.label, s.sample_rate, s.samples, s.units) for s in info.signals] == \
        [(s.label, s.sample_rate, s.samples, s.units) for s in expected.signals]
    assert all(s.dtype is None for s in info.signals)  # int16 or wider depends on the values


def test_inspection_decodes_no_samples(monkeypatch):
    from ecgingest._ext import scp as kernels

    def refuse(*args, **kwargs):
        raise AssertionError("inspection decoded samples")

    for kernel in ("decode_signals", "decode_leads", "bimodal_expand", "build_luts"):
        monkeypatch.setattr(kernels, kernel, refuse)
    for name, data in _files():
        try:
            scp.FORMAT.inspect(data, _ctx(name))
        except EcgIngestError:
            pass  # a header problem; a decoded sample would have failed the test


def test_inspection_of_short_uncompressed_leads_says_what_decoding_says():
    x = np.arange(2 * 100).reshape(2, 100) % 9
    data = bytearray(enc.encode(enc.ScpSpec(rhythm=x, lead_ids=[1, 2])))
    n_entries = (struct.unpack_from("<I", data, 10)[0] - 16) // 10
    for k in range(n_entries):
        sid, _, index = struct.unpack_from("<HII", data, 22 + 10 * k)
        if sid == 3:
            start = index - 1
            struct.pack_into("<I", data, start + 16 + 2 + 4, 130)  # lead 1 ends at 130
            length = struct.unpack_from("<I", data, start + 4)[0]
            struct.pack_into("<H", data, start, crc_hqx(data[start + 2:start + length], 0xFFFF))
    struct.pack_into("<H", data, 0, crc_hqx(data[2:], 0xFFFF))
    data = bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        record = scp.FORMAT.decode(data, _ctx("t.scp"))
    info = scp.FORMAT.inspect(data, _ctx("t.scp"))
    assert [s.samples for s in info.signals] == [len(s) for s in record.signals] == [100, 100]
    assert [w for w in info.warnings if "section 6 holds" in w] == \
        [w for w in record.warnings if "section 6 holds" in w] != []
    with pytest.raises(TruncatedError):
        scp.FORMAT.inspect(data, _ctx("t.scp", strict=True))
