"""Compressed Delta (``cMdT``) containers: header parsing, bounded decompression, writer.

The 28-byte little-endian header is parsed here; the samples are coded and
decoded by the Cython kernels of ``ecgingest._ext.cdelta`` with the GIL
released. Decompression never produces more than the size the header
promises (channels x samples x width), so a decompression bomb is stopped
as soon as it tries to go further.

A Zstandard frame is decompressed and decoded in one native pass
(``ZstdSamples``): libzstd writes into a bounded scratch buffer that the
sample kernel reads while it is still in cache, with a decompression context
kept per thread (making one costs a ``cpuid``, slow in virtual machines, on
every read). libzstd's functions are found with ctypes, in the library
python-zstandard ships or a system libzstd; where neither can be found the
frame goes through python-zstandard, with a fresh context per frame, and
gives the same samples and the same kinds of errors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.machinery
import math
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from .._ext import cdelta as _kernel
from .._memory import aligned_empty
from ..errors import (
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    LimitExceededError,
    TruncatedError,
)
from ..limits import DEFAULT_LIMITS
from ..record import Record, RecordInfo, Signal, SignalInfo
from ._base import DecodeContext, Probe, SingleFileFormat

__all__ = [
    "FORMAT",
    "MAGIC",
    "HEADER_SIZE",
    "CODINGS",
    "COMPRESSIONS",
    "CdeltaHeader",
    "parse_header",
    "decode_payload",
    "CompressedDeltaFormat",
    "sniff",
    "encode_compressed_delta",
]

FORMAT_NAME = "compressed_delta"
MAGIC = b"cMdT"
HEADER_SIZE = 28
_HEADER = struct.Struct("<4sQBIdBBB")
assert _HEADER.size == HEADER_SIZE

CODINGS: dict[int, str] = {0: "TWOS_COMPLEMENT", 1: "DELTA_ZIGZAG", 2: "DOUBLE_DELTA_ZIGZAG"}
"""Coding values of the container (COMPRESSED_DELTA.md)."""

COMPRESSIONS: dict[int, str] = {0: "NONE", 1: "ZSTD", 2: "ZLIB"}
"""Compression values: the project's numbering, kept in this one place."""

_WIDTHS = (8, 16, 24, 32)
_ZLIB_MAX_RATIO = 1032
"""Deflate cannot expand better than ~1032:1, so larger claims are rejected unread."""
_ZSTD_CHUNK = 4 << 20
_LOCAL = threading.local()


@dataclass(frozen=True)
class CdeltaHeader:
    """The 28-byte header, validated."""

    payload_size: int
    channels: int
    samples: int
    sample_rate: float
    bits_per_sample: int
    coding: int
    compression: int

    @property
    def decoded_size(self) -> int:
        """Bytes of the coded block once decompressed: N x M x bits / 8."""
        return self.channels * self.samples * (self.bits_per_sample // 8)

    @property
    def coding_name(self) -> str:
        return CODINGS[self.coding]

    @property
    def compression_name(self) -> str:
        return COMPRESSIONS[self.compression]


def parse_header(data: bytes | memoryview, ctx: DecodeContext | None = None) -> CdeltaHeader:
    """Validate the header fields on their own (not yet against the bytes that follow)."""
    ctx = ctx if ctx is not None else _context()
    if len(data) < HEADER_SIZE:
        ctx.fail(TruncatedError,
                 f"a Compressed Delta header is 28 bytes but only {len(data)} are present; "
                 "the file is cut short", offset=len(data), field="header")
    magic, payload_size, channels, samples, rate, bits, coding, compression = \
        _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        ctx.fail(HeaderError, f"magic is {bytes(magic)!r}, expected b'cMdT': "
                 "not a Compressed Delta container", offset=0, field="magic")
    if channels < 1:
        ctx.fail(HeaderError, "total_channels is 0; a container needs at least one channel",
                 offset=12, field="total_channels")
    if samples < 1:
        ctx.fail(HeaderError, "total_samples is 0; a container needs at least one sample "
                 "per channel", offset=13, field="total_samples")
    if not math.isfinite(rate) or rate <= 0:
        ctx.fail(HeaderError, f"sample_rate is {rate!r}; it must be a finite number of Hz "
                 "above 0", offset=17, field="sample_rate")
    if bits not in _WIDTHS:
        ctx.fail(HeaderError, f"bits_per_sample is {bits}; only 8, 16, 24 and 32 exist",
                 offset=25, field="bits_per_sample")
    if coding not in CODINGS:
        ctx.fail(HeaderError, f"coding is {coding}; known codings are 0 (TWOS_COMPLEMENT), "
                 "1 (DELTA_ZIGZAG) and 2 (DOUBLE_DELTA_ZIGZAG)", offset=26, field="coding")
    if compression not in COMPRESSIONS:
        ctx.fail(HeaderError, f"compression is {compression}; known values are 0 (none), "
                 "1 (Zstandard) and 2 (zlib)", offset=27, field="compression")
    return CdeltaHeader(payload_size, channels, samples, rate, bits, coding, compression)


def _context(strict: bool = True) -> DecodeContext:
    return DecodeContext(FORMAT_NAME, strict=strict, limits=DEFAULT_LIMITS)


def _check_payload_size(header: CdeltaHeader, present: int, ctx: DecodeContext) -> None:
    if header.payload_size > present:
        ctx.fail(TruncatedError,
                 f"payload_size says {header.payload_size} bytes of samples follow the header "
                 f"but only {present} are present; the file is cut short",
                 offset=HEADER_SIZE + present, field="payload_size")
    if header.payload_size < present:
        extra = present - header.payload_size
        message = (f"{extra} bytes follow the {header.payload_size}-byte samples block "
                   "announced by payload_size")
        if ctx.strict:
            ctx.fail(HeaderError, message + "; remove them or read without strict=True",
                     offset=HEADER_SIZE + header.payload_size, field="payload_size")
        ctx.warn(message + "; they were ignored")
    if header.compression == 0 and header.payload_size != header.decoded_size:
        ctx.fail(HeaderError,
                 f"uncompressed payload_size is {header.payload_size} bytes but "
                 f"{header.channels} channels x {header.samples} samples x "
                 f"{header.bits_per_sample} bits need {header.decoded_size}",
                 offset=4, field="payload_size")
    bound = ctx.limits.max_entry_size
    if header.decoded_size > bound:
        ctx.fail(LimitExceededError,
                 f"the header announces {header.decoded_size} bytes of samples, more than "
                 f"Limits.max_entry_size ({bound} bytes); raise it to read this container",
                 limit="max_entry_size", value=bound, offset=12, field="total_samples")


def _decompress(header: CdeltaHeader, block: memoryview,
                ctx: DecodeContext) -> bytes | memoryview:
    expected = header.decoded_size
    if header.compression == 0:
        return block
    if header.compression == 2:
        return _inflate(block, expected, ctx)
    return _unzstd(block, expected, ctx)


def _size_mismatch(ctx: DecodeContext, expected: int, got: str) -> EcgIngestError:
    return ctx.error(CorruptDataError,
                     f"the samples block decompresses to {got} bytes, but the header needs "
                     f"exactly {expected} (channels x samples x bits / 8); the container is "
                     "corrupt", offset=HEADER_SIZE, field="payload_size")


def _inflate(block: memoryview, expected: int, ctx: DecodeContext) -> bytes:
    if expected > _ZLIB_MAX_RATIO * len(block) + 64:
        raise _size_mismatch(ctx, expected, f"at most {_ZLIB_MAX_RATIO * len(block) + 64}")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(block, expected)  # output capped at what the header needs
        if not inflater.eof and inflater.decompress(inflater.unconsumed_tail, 1):
            raise _size_mismatch(ctx, expected, f"more than {expected}")  # bomb guard
    except zlib.error as exc:
        raise ctx.error(CorruptDataError, f"zlib stream is damaged ({exc})",
                        offset=HEADER_SIZE, field="payload") from exc
    if len(out) != expected:
        raise _size_mismatch(ctx, expected, str(len(out)))
    if not inflater.eof:
        ctx.fail(CorruptDataError, "zlib stream ends before its end marker; the data is "
                 "cut short", offset=HEADER_SIZE + len(block), field="payload")
    if inflater.unused_data:
        ctx.fail(CorruptDataError, f"{len(inflater.unused_data)} bytes follow the zlib "
                 "stream inside the samples block", offset=HEADER_SIZE, field="payload")
    return out


@functools.cache
def _zstd_addresses() -> tuple[int, ...] | None:
    """The addresses of the libzstd functions ``ZstdSamples`` calls, or None.

    First the Zstandard library that python-zstandard ships (the one its own
    decompressor runs; its cffi build exports libzstd's API), then a system
    libzstd. Without either, frames are read through python-zstandard alone.
    """
    here = Path(zstandard.__file__).parent
    candidates = [str(path) for suffix in importlib.machinery.EXTENSION_SUFFIXES
                  for path in sorted(here.glob(f"_cffi{suffix}"))]
    candidates += ["libzstd.so.1", "libzstd.1.dylib"]
    for candidate in [*candidates, None]:
        if candidate is None:
            candidate = ctypes.util.find_library("zstd")  # may start a subprocess: last
            if candidate is None:
                return None
        try:
            lib = ctypes.CDLL(candidate)
            version = lib.ZSTD_versionNumber
            version.restype = ctypes.c_uint
            if version() < 10400:  # 1.4.0: the streaming API used here is stable
                continue
            return tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0
                         for name in _kernel.ZSTD_FUNCTIONS)
        except (OSError, AttributeError):
            continue
    return None


def _zstd_samples() -> Any:
    """This thread's ``ZstdSamples`` (a context and scratch reused across reads), or None."""
    decoder = getattr(_LOCAL, "zstd", None)
    if decoder is None:
        addresses = _zstd_addresses()
        if addresses is None:
            return None
        decoder = _LOCAL.zstd = _kernel.ZstdSamples(addresses)
    return decoder


def _frame_content_size(block: memoryview, expected: int, ctx: DecodeContext) -> int:
    """The frame header's content size (-1 when it does not say), checked against the header."""
    try:
        content_size: int = zstandard.frame_content_size(block)
    except zstandard.ZstdError as exc:
        raise ctx.error(CorruptDataError, f"Zstandard frame header is damaged ({exc})",
                        offset=HEADER_SIZE, field="payload") from exc
    if content_size >= 0 and content_size != expected:
        raise _size_mismatch(ctx, expected, str(content_size))
    return content_size


def _decode_zstd(decoder: Any, header: CdeltaHeader, block: memoryview, out: np.ndarray,
                 ctx: DecodeContext) -> None:
    """Decompress the frame and decode its samples into ``out`` in one native pass."""
    expected = header.decoded_size
    content_size = _frame_content_size(block, expected, ctx)
    outcome, value = decoder.decode(block, content_size, header.bits_per_sample,
                                    header.coding, out)
    if outcome == _kernel.DONE:
        return
    if outcome == _kernel.SHORT:
        raise _size_mismatch(ctx, expected, str(value))
    if outcome == _kernel.LONG:
        raise _size_mismatch(ctx, expected, f"more than {expected}")
    if outcome == _kernel.DAMAGED:
        raise ctx.error(CorruptDataError, f"Zstandard data is damaged ({value})",
                        offset=HEADER_SIZE, field="payload")
    if outcome == _kernel.TRAILING:
        raise ctx.error(CorruptDataError, f"{value} bytes follow the Zstandard frame inside "
                        "the samples block", offset=HEADER_SIZE, field="payload")
    if outcome == _kernel.UNFINISHED:
        if value != expected:
            raise _size_mismatch(ctx, expected, str(value))
        raise ctx.error(CorruptDataError, "Zstandard frame ends before its end; the data is "
                        "cut short", offset=HEADER_SIZE + len(block), field="payload")
    if outcome == _kernel.NO_MEMORY:
        raise MemoryError("no memory for a Zstandard decompression context")
    ctx.check_status(outcome, "samples block", offset=HEADER_SIZE, field="payload")


def _unzstd(block: memoryview, expected: int, ctx: DecodeContext) -> bytes:
    """One Zstandard frame of exactly ``expected`` bytes, through python-zstandard.

    Used where the native path is not (claims beyond the ratio limits, no
    libzstd found). A fresh decompression context per frame: the text of an
    error must not depend on what the thread decoded before (a reused
    python-zstandard context carried the sizes of its stream buffers from
    earlier frames into the error of a damaged one).
    """
    _frame_content_size(block, expected, ctx)
    dctx = zstandard.ZstdDecompressor()
    try:
        if _fits_ratio(expected, block, ctx):
            out = dctx.decompress(block, max_output_size=expected, allow_extra_data=False)
        else:
            out = _unzstd_chunked(dctx, block, expected, ctx)
    except zstandard.ZstdError as exc:
        message = str(exc)
        if "did not decompress full frame" in message:
            raise _size_mismatch(ctx, expected, f"more than {expected}") from exc
        raise ctx.error(CorruptDataError, f"Zstandard data is damaged ({exc})",
                        offset=HEADER_SIZE, field="payload") from exc
    if len(out) != expected:
        raise _size_mismatch(ctx, expected, str(len(out)))
    return out


def _fits_ratio(expected: int, block: memoryview, ctx: DecodeContext) -> bool:
    """Whether the claimed size may be allocated before decompressing (within the Limits
    ratio or its grace); beyond it the output grows only as real data arrives."""
    limits = ctx.limits
    return expected <= max(limits.ratio_grace, limits.max_ratio * len(block))


def _compressor(level: int) -> Any:
    """One Zstandard compression context per thread and level, reused across frames."""
    cache = getattr(_LOCAL, "cctx", None)
    if cache is None:
        cache = _LOCAL.cctx = {}
    cctx = cache.get(level)
    if cctx is None:
        cctx = cache[level] = zstandard.ZstdCompressor(level=level)
    return cctx


def _unzstd_chunked(dctx: Any, block: memoryview, expected: int, ctx: DecodeContext) -> bytes:
    """Grow the output only as real data arrives (a huge claim allocates nothing).

    Used when the claimed size is beyond ``Limits.max_ratio`` of the block (and
    past ``Limits.ratio_grace``), where allocating it up front would let a tiny
    container reserve gigabytes.
    """
    parts: list[bytes] = []
    got = 0
    with dctx.stream_reader(block, read_across_frames=False) as reader:
        while got < expected:
            part = reader.read(min(_ZSTD_CHUNK, expected - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
        if got == expected and reader.read(1):
            raise _size_mismatch(ctx, expected, f"more than {expected}")
    return b"".join(parts)


def decode_payload(data: bytes | memoryview,
                   ctx: DecodeContext | None = None) -> tuple[CdeltaHeader, np.ndarray]:
    """One container to its header and a read-only [channels, samples] integer array.

    Without ``ctx`` the container is read strictly, with the default
    :class:`~ecgingest.Limits` (a device stream's frames).
    """
    ctx = ctx if ctx is not None else _context()
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    header = parse_header(view, ctx)
    _check_payload_size(header, len(view) - HEADER_SIZE, ctx)
    dtype = _kernel.out_dtype(header.bits_per_sample)
    ctx.reserve_output(header.channels * header.samples * dtype.itemsize,
                       f"{header.channels} channels of {header.samples} samples")
    block = view[HEADER_SIZE:HEADER_SIZE + header.payload_size]
    if header.compression == 1 and len(block) and _fits_ratio(header.decoded_size, block, ctx):
        decoder = _zstd_samples()
        if decoder is not None:
            samples = _output(header, dtype)
            _decode_zstd(decoder, header, block, samples, ctx)
            samples.flags.writeable = False
            return header, samples
    coded = _decompress(header, block, ctx)
    samples = _output(header, dtype)
    status = _kernel.decode_samples(coded, header.bits_per_sample, header.coding, samples)
    ctx.check_status(status, "samples block", offset=HEADER_SIZE, field="payload")
    samples.flags.writeable = False
    return header, samples


def _output(header: CdeltaHeader, dtype: np.dtype) -> np.ndarray:
    """The [channels, samples] array the kernel fills (a large one from the array pool)."""
    return aligned_empty(header.channels * header.samples, dtype).reshape(
        header.channels, header.samples)


def _decode(data: bytes | memoryview, ctx: DecodeContext) -> Record:
    """A standalone container as a record: channels ``ch1`` … ``chN``, no scaling."""
    header, samples = decode_payload(data, ctx)
    signals = [Signal(label=f"ch{i + 1}", sample_rate=header.sample_rate, digital=samples[i])
               for i in range(header.channels)]
    return Record(
        name=ctx.name,
        format=FORMAT_NAME,
        format_detail=_detail(header),
        signals=signals,
        warnings=list(ctx.warnings),
        extras={
            "bits_per_sample": header.bits_per_sample,
            "coding": header.coding_name,
            "compression": header.compression_name,
        },
    )


def _detail(header: CdeltaHeader) -> str:
    return (f"Compressed Delta {header.bits_per_sample}-bit {header.coding_name} "
            f"{header.compression_name}")


def _inspect(data: bytes | memoryview, ctx: DecodeContext) -> RecordInfo:
    """The 28-byte header, checked against the bytes present; nothing is decompressed."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    header = parse_header(view, ctx)
    _check_payload_size(header, len(view) - HEADER_SIZE, ctx)
    dtype = str(_kernel.out_dtype(header.bits_per_sample))
    signals = tuple(SignalInfo(f"ch{i + 1}", header.sample_rate, header.samples, "", dtype)
                    for i in range(header.channels))
    return RecordInfo(ctx.name, FORMAT_NAME, _detail(header), signals,
                      sources=(ctx.path,) if ctx.path else (), warnings=tuple(ctx.warnings))


def sniff(probe: Probe) -> bool:
    """The magic and a complete 28-byte header; field errors are reported by ``decode``."""
    try:
        return probe.size >= HEADER_SIZE and probe.head(4) == MAGIC
    except Exception:
        return False


class CompressedDeltaFormat(SingleFileFormat):
    """Compressed Delta containers (one stream frame or a whole recording)."""

    name = FORMAT_NAME
    marker = (0, MAGIC[:1])

    def sniff(self, probe: Probe) -> bool:
        return sniff(probe)

    def decode(self, data: memoryview | bytes, ctx: DecodeContext) -> Record:
        return _decode(data, ctx)

    def inspect(self, data: memoryview | bytes, ctx: DecodeContext) -> RecordInfo:
        """The header alone (channels, samples, rate, dtype), checked against the bytes
        present; the samples block is not decompressed, so a damaged one is only found
        by a full read."""
        return _inspect(data, ctx)


FORMAT = CompressedDeltaFormat()


def _choice(value: int | str, table: dict[int, str], what: str) -> int:
    if isinstance(value, str):
        for number, name in table.items():
            if name == value.upper():
                return number
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value in table:
        return int(value)
    names = ", ".join(f"{name!r} ({number})" for number, name in table.items())
    raise ValueError(f"{what} must be one of {names}, not {value!r}")


def encode_compressed_delta(samples: Sequence[Sequence[int]] | np.ndarray, *,
                            sample_rate: float, bits_per_sample: int = 16,
                            coding: int | str = "DELTA_ZIGZAG",
                            compression: int | str = "ZSTD",
                            level: int | None = None) -> bytes:
    """Write one Compressed Delta container (the inverse of reading one).

    ``samples`` is an integer array ``[channels, samples]`` (a 1-D array is one
    channel); every value must fit a signed ``bits_per_sample``-bit integer.
    ``level`` is the compressor level (Zstandard default 3, zlib default 6).
    """
    coding_value = _choice(coding, CODINGS, "coding")
    compression_value = _choice(compression, COMPRESSIONS, "compression")
    if bits_per_sample not in _WIDTHS:
        raise ValueError(f"bits_per_sample must be 8, 16, 24 or 32, not {bits_per_sample!r}")
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"sample_rate must be a finite number of Hz above 0, not {sample_rate!r}")
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(f"samples must be [channels, samples], got {array.ndim} dimensions")
    if array.dtype.kind not in "iu":
        if array.size and array.dtype.kind == "O":
            array = np.asarray(array.tolist(), dtype=np.int64)
        else:
            raise TypeError(f"samples must be integers, not {array.dtype}")
    channels, count = array.shape
    if not 1 <= channels <= 255:
        raise ValueError(f"a container holds 1 to 255 channels, not {channels}")
    if not 1 <= count <= 0xFFFFFFFF:
        raise ValueError(f"a container holds 1 to 4294967295 samples per channel, not {count}")
    if array.dtype.kind == "u":
        if array.dtype.itemsize >= 8 and array.size and array.max() > np.iinfo(np.int64).max:
            raise OverflowError(f"values above {np.iinfo(np.int64).max} do not fit any width")
        array = array.astype(np.int64)
    elif array.dtype.itemsize > 8:
        raise TypeError(f"samples must be at most 64-bit integers, not {array.dtype}")
    coded = _kernel.encode_samples(np.ascontiguousarray(array), bits_per_sample, coding_value)
    raw = coded.data  # the coded bytes without a copy
    if compression_value == 1:
        block: bytes = _compressor(3 if level is None else level).compress(raw)
    elif compression_value == 2:
        block = zlib.compress(raw, 6 if level is None else level)
    else:
        block = coded.tobytes()
    header = _HEADER.pack(MAGIC, len(block), channels, count, rate, bits_per_sample,
                          coding_value, compression_value)
    return header + block
