"""WFDB signal files: packed formats through the native kernel, FLAC through soundfile.

Every count is checked against the bytes present and every output reserved
against the upload's decoded-output budget before anything is allocated;
``ecgingest._ext.wfdb`` then decodes a group of signals sharing a file in one
``nogil`` pass straight into the final arrays.

Samples the files do not hold (a file shorter than the header says, skew
reaching past the end) are written with the format's invalid code, or
``WFDB_INVALID_SAMPLE`` (-32768) and an invalid mask for format 8, which has
no code (spec/WFDB.md: "the C API returns any missing sample as
WFDB_INVALID_SAMPLE"). Every array handed out is written in full.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..._ext import wfdb as _kernel
from ..._memory import block_views
from ...errors import (
    ChecksumError,
    CorruptDataError,
    EcgIngestError,
    HeaderError,
    MissingFileError,
    TruncatedError,
)
from .._base import RANGED_READS, ByteSource, DecodeContext, PoolFile, require
from .header import FLAC_BITS, INVALID, WIDE, WfdbHeader, WfdbSignalSpec

if TYPE_CHECKING:
    from ..._memory import Arena

__all__ = ["RecordFiles", "Decoded", "decode_signals", "frames_present", "flac_frames"]

WFDB_INVALID_SAMPLE = -32768
"""What the WFDB C library returns for a missing sample of any format."""
MAX_FLAC_CHANNELS = 8
_PLAUSIBLE_BYTES = 64 * 2**20
"""Decoded bytes a record may have however few data bytes are present (null signals,
gaps): beyond this, a header must not claim more than ``_PLAUSIBLE_RATIO`` output bytes
per byte of its signal files (a header count that no file backs is wrong)."""
_PLAUSIBLE_RATIO = 16
READ_BY_CHUNKS_FROM = 1 << 20
"""A signal file on disk from this size is read a chunk at a time into one small buffer
that the decode finds in the cache, all with the GIL released, rather than mapped:
mapping a large file in and out costs the process page-table work (serialised
between threads of one process) that a read into a reused buffer does not."""
READ_CHUNK_BYTES = 256 << 10
"""Bytes per read of such a file: the buffer stays in a core's second-level cache
(64 KiB chunks were slower in two threads, 1 MiB no faster)."""
_LARGEST_STEP_BYTES = 4 << 20
"""A chunk holds whole steps of six frames (a byte group never splits); a record whose
step is larger than this (frames of millions of samples) is mapped instead."""


class RecordFiles:
    """The pool files one record reads, in first-use order, each with its own context."""

    def __init__(self, pool: Mapping[str, PoolFile], ctx: DecodeContext) -> None:
        self.pool = pool
        self.ctx = ctx
        """The record's context (its header file); warnings of every file go to its list."""
        self.used: list[str] = []

    def use(self, name: str) -> None:
        if name not in self.used:
            self.used.append(name)

    def signal_file(self, record: str, file_name: str) -> PoolFile:
        entry = self.pool.get(file_name)
        if entry is None:
            raise self.ctx.error(
                MissingFileError, f"record {record!r} needs signal file {file_name!r}, which "
                "is not in the upload: add it next to the header")
        self.use(file_name)
        return entry

    def context(self, entry: PoolFile) -> DecodeContext:
        """A context for one file: errors name it, warnings land on the record."""
        ctx = self.ctx.for_file(path=entry.path)
        ctx.warnings = self.ctx.warnings
        return ctx

    def for_segment(self, header: PoolFile) -> RecordFiles:
        """The files of one segment: errors name its header; files used and warnings are
        this record's."""
        sub = RecordFiles(self.pool, self.context(header))
        sub.used = self.used
        return sub


@dataclass
class Decoded:
    """Per-signal digital arrays of one single-segment record."""

    digital: list[np.ndarray]
    invalid_value: list[int | None]
    invalid_mask: list[np.ndarray | None]
    checksums: list[int | None]


def skew_frames(spec: WfdbSignalSpec) -> int:
    """Skew in frames as the C library converts it: round(k / spf)."""
    spf = spec.samples_per_frame
    return (spec.skew + spf // 2) // spf if spf > 1 else spec.skew


def groups(specs: Sequence[WfdbSignalSpec]) -> list[tuple[int, int]]:
    """Runs of consecutive signals naming one file: ``(start, stop)`` indices.

    A file named again after another one starts a new group (and is read again).
    """
    out: list[tuple[int, int]] = []
    if not specs:
        return out
    start = 0
    name = specs[0].file_name  # the file of the group being gathered
    for i, spec in enumerate(specs):
        if i and (spec.file_name != name or spec.fmt == 0):
            out.append((start, i))
            start, name = i, spec.file_name
    out.append((start, len(specs)))
    return out


def itemsize(fmt: int) -> int:
    return 4 if fmt in WIDE else 2


def _check_group(specs: Sequence[WfdbSignalSpec], start: int, stop: int,
                 ctx: DecodeContext) -> None:
    spec = specs[start]
    for k in range(start + 1, stop):
        if specs[k].fmt != spec.fmt or specs[k].byte_offset != spec.byte_offset:
            raise ctx.error(HeaderError,
                            f"signals {start} and {k} share file {spec.file_name!r} but differ "
                            "in format or byte offset; a signal file holds one format",
                            field="format")
    if spec.fmt in FLAC_BITS:
        spf = spec.samples_per_frame
        if stop - start > MAX_FLAC_CHANNELS or any(
                specs[k].samples_per_frame != spf for k in range(start, stop)):
            raise ctx.error(HeaderError, f"FLAC signal file {spec.file_name!r} needs at most "
                            f"{MAX_FLAC_CHANNELS} signals with equal samples per frame",
                            field="samples per frame")


def flac_frames(head: bytes) -> int | None:
    """Samples per channel that a FLAC stream's STREAMINFO announces (None: unknown)."""
    if len(head) < 26 or head[:4] != b"fLaC" or head[4] & 0x7F != 0:
        return None
    total = int.from_bytes(head[18:26], "big") & ((1 << 36) - 1)
    return total or None


def frames_present(hdr: WfdbHeader, files: RecordFiles, *, read_flac_head: bool = False
                   ) -> tuple[int | None, int]:
    """Frames the record has (the header's count, else what its files hold) and the
    bytes of its distinct signal files.

    Only sizes are looked at (and, with ``read_flac_head``, a FLAC file's first
    bytes); a header-level inconsistency or a missing file raises. ``None``:
    settled only by decoding FLAC data.
    """
    nframes, data_bytes, _ = _frames_in_groups(hdr, files, read_flac_head)
    return nframes, data_bytes


def _frames_in_groups(hdr: WfdbHeader, files: RecordFiles, read_flac_head: bool = False
                      ) -> tuple[int | None, int, list[tuple[int, int]]]:
    """:func:`frames_present` and the checked signal groups it went through (a decode
    reuses them rather than grouping and checking the signals again)."""
    specs = hdr.signals
    known: list[int] = []
    flac_unknown = False
    sizes: dict[str, int] = {}
    checked = groups(specs)
    for start, stop in checked:
        spec = specs[start]
        _check_group(specs, start, stop, files.ctx)
        if spec.fmt == 0:
            continue
        entry = files.signal_file(hdr.record_name, spec.file_name)
        sizes[spec.file_name] = entry.size
        frame_size = sum([s.samples_per_frame for s in specs[start:stop]])
        if spec.fmt in FLAC_BITS:
            frames = flac_frames(entry.head(26)) if read_flac_head else None
            if frames is None:
                flac_unknown = True
            else:
                known.append(max(frames - spec.byte_offset, 0) // spec.samples_per_frame)
        else:
            nbytes = max(entry.size - spec.byte_offset, 0)
            known.append(_kernel.available_samples(spec.fmt, nbytes) // frame_size)
    data_bytes = sum(sizes.values())
    if hdr.n_frames is not None:
        return hdr.n_frames, data_bytes, checked
    if flac_unknown and not known:
        return None, data_bytes, checked
    return (min(known) if known else 0), data_bytes, checked


def output_bytes(specs: Sequence[WfdbSignalSpec], nframes: int) -> int:
    """Bytes of the digital arrays of ``nframes`` frames (format 8's masks included)."""
    return nframes * sum([s.samples_per_frame * ((4 if s.fmt in WIDE else 2) + (s.fmt in (0, 8)))
                          for s in specs])


def check_plausible(what: str, out_bytes: int, data_bytes: int, nframes: int,
                    ctx: DecodeContext) -> None:
    """Refuse a header count that the bytes present cannot back, before allocating."""
    if out_bytes > max(_PLAUSIBLE_BYTES, _PLAUSIBLE_RATIO * data_bytes):
        raise ctx.error(HeaderError,
                        f"{what} declares {nframes} frames ({out_bytes} bytes of samples) but "
                        f"its signal files hold only {data_bytes} bytes; the sample count in "
                        "the header is wrong", field="number of samples")


def decode_signals(hdr: WfdbHeader, files: RecordFiles, arena: Arena | None = None, *,
                   window: tuple[int, int] | None = None,
                   wanted: set[int] | None = None) -> Decoded:
    """Decode every signal of a single-segment header (its frame count applied).

    ``window``: only frames ``[f0, f1)`` (checked by the caller against the record),
    reading only the bytes of those frames (format 8, whose samples are differences,
    from the start of its file); ``wanted``: only the groups of these signals (the
    others get empty arrays). A window leaves checksums unchecked.
    """
    ctx = files.ctx
    specs = hdr.signals
    nframes, data_bytes, checked = _frames_in_groups(hdr, files)
    if window is not None:
        assert nframes is not None  # the caller placed the window in the known frames
        return _decode_window(hdr, files, arena, nframes, window, wanted)
    if nframes is not None:
        out_bytes = output_bytes(specs, nframes)
        check_plausible(f"record {hdr.record_name!r}", out_bytes, data_bytes, nframes, ctx)
        ctx.reserve_output(out_bytes, f"record {hdr.record_name!r}")
    n = len(specs)
    digital: list[np.ndarray | None] = [None] * n
    codes: list[int | None] = [None] * n
    masks: list[np.ndarray | None] = [None] * n
    sums: list[int | None] = [None] * n
    for start, stop in checked:
        group = specs[start:stop]
        fmt = group[0].fmt
        if fmt == 0:
            frames = nframes or 0
            for i, spec in enumerate(group, start):
                digital[i] = np.zeros(frames * spec.samples_per_frame, dtype=np.int16)
                masks[i] = np.ones(frames * spec.samples_per_frame, dtype=bool)
            continue
        entry = files.signal_file(hdr.record_name, group[0].file_name)
        fctx = files.context(entry)
        if fmt in FLAC_BITS:
            outs, counts, totals = _flac(group, entry, nframes, fctx)
            if nframes is None:  # settled by the first FLAC file, the rest cut to it
                nframes = min(len(o) // s.samples_per_frame for o, s in zip(outs, group))
                ctx.reserve_output(output_bytes(specs, nframes), f"record {hdr.record_name!r}")
            outs = [o[:nframes * s.samples_per_frame] for o, s in zip(outs, group)]
        else:
            assert nframes is not None
            outs, counts, totals = _packed(hdr, group, entry, nframes, fctx, arena)
        code = INVALID.get(fmt)
        declared = hdr.n_frames is not None
        for i, spec, out, count, total in zip(range(start, stop), group, outs, counts, totals):
            digital[i] = out
            stored = count >= len(out)  # every sample stored
            if stored and not spec.skew:  # nothing to fill
                codes[i] = code
            else:
                codes[i], masks[i] = _finish(hdr, spec, out, count, fctx)
            checksum = spec.checksum
            if stored and declared and checksum is not None:
                sums[i] = total
                if (total - checksum) % 65536:
                    fctx.deviation(f"checksum of signal {spec.description!r} is "
                                   f"{total % 65536}, header says {checksum % 65536}: the "
                                   "data may be damaged", cls=ChecksumError)
            if spec.uncalibrated:
                ctx.warn(f"signal {spec.description!r} has no gain (uncalibrated); using 200 "
                         "ADC units per unit")
    done = [d for d in digital if d is not None]
    if len(done) != n:  # every group fills its signals; guard the invariant
        raise ctx.error(CorruptDataError, f"record {hdr.record_name!r}: some signals were not "
                        "decoded")
    return Decoded(done, codes, masks, sums)


def _finish(hdr: WfdbHeader, spec: WfdbSignalSpec, out: np.ndarray, count: int,
            ctx: DecodeContext, shift: int | None = None) -> tuple[int | None, np.ndarray | None]:
    """Write the samples the file does not hold; the signal's invalid code and mask.

    ``count``: stored samples seen, ``shift`` of them before ``out[0]`` (the skew,
    by default; a window's first samples too: a window past the data a short file
    holds is invalid samples, as the whole read's tail is)."""
    window = shift is not None
    n_out = len(out)
    if shift is None:
        shift = skew_frames(spec) * spec.samples_per_frame if spec.skew else 0
    written = min(max(count - shift, 0), n_out)
    code = INVALID.get(spec.fmt)
    if written == n_out:
        return code, None
    if count == 0 and not window:
        raise ctx.error(TruncatedError,
                        f"signal file {spec.file_name!r} holds none of the {n_out} samples of "
                        f"signal {spec.description!r} of record {hdr.record_name!r}; upload the "
                        "complete file")
    if window and count < shift + n_out:
        ctx.deviation(f"signal file {spec.file_name!r} ends before the window's last "
                      f"{n_out - written} samples of signal {spec.description!r}; they are "
                      "marked invalid", cls=TruncatedError)
    elif count < n_out:
        ctx.deviation(f"signal file {spec.file_name!r} ends after {count} of {n_out} samples "
                      f"of signal {spec.description!r}; the rest is marked invalid",
                      cls=TruncatedError)
    else:
        ctx.warn(f"signal {spec.description!r}: skew leaves the last {n_out - written} samples "
                 "without data (invalid)")
    mask = None
    if code is None:  # format 8 stores no code: mark the tail
        out[written:] = WFDB_INVALID_SAMPLE
        mask = np.zeros(n_out, dtype=bool)
        mask[written:] = True
    else:
        out[written:] = code
    return code, mask


def _packed(hdr: WfdbHeader, group: Sequence[WfdbSignalSpec], entry: PoolFile, nframes: int,
            ctx: DecodeContext, arena: Arena | None) -> tuple[list[np.ndarray], list[int], list[int]]:
    fmt = group[0].fmt
    dtype = np.int32 if fmt in WIDE else np.int16
    spf = [s.samples_per_frame for s in group]
    frame_size = sum(spf)
    skews = [skew_frames(s) if s.skew else 0 for s in group]
    outs = block_views([nframes * k for k in spf], dtype, arena)
    shifts = [k * n for k, n in zip(skews, spf)]
    firsts = [s.initial_value for s in group]
    offset = group[0].byte_offset
    gb, gs = _GROUP[fmt]
    wanted = (nframes + max(skews)) * frame_size  # a partial last frame still feeds the
    # signals it reaches: samples are decoded as far as the bytes or these frames go

    if (RANGED_READS and entry.size >= READ_BY_CHUNKS_FROM
            and not getattr(entry, "in_memory", True)
            and 6 * frame_size * gb <= _LARGEST_STEP_BYTES * gs):
        with ByteSource.open(entry) as source:
            if source.fd is not None:
                nbytes = max(source.size - offset, 0)
                status, counts, sums, err = _kernel.read_group(
                    source.fd, offset, nbytes, READ_CHUNK_BYTES, fmt,
                    min(wanted, _kernel.available_samples(fmt, nbytes)), spf, shifts, outs,
                    firsts)
                if err:
                    raise OSError(err, os.strerror(err))
                source.check_unchanged(entry.path)  # a file cut short ends here, too
                if status:
                    ctx.check_status(status, _group_what(hdr, group))
                return outs, counts, sums
    with entry.view() as data:  # bytes in memory, or a file mapped (not copied)
        view = data[offset:]
        nbytes = len(view)
        try:
            status, counts, sums = _kernel.decode_group(
                view if nbytes else b"", fmt, min(wanted, _kernel.available_samples(fmt, nbytes)),
                spf, shifts, outs, firsts)
        finally:
            view.release()
    if status:
        ctx.check_status(status, _group_what(hdr, group))
    return outs, counts, sums


def _group_what(hdr: WfdbHeader, group: Sequence[WfdbSignalSpec]) -> str:
    """The signal file of a group, as an error names it (worded only on failure)."""
    return (f"signal file {group[0].file_name!r} (format {group[0].fmt}) of record "
            f"{hdr.record_name!r}")


def _flac(group: Sequence[WfdbSignalSpec], entry: PoolFile, nframes: int | None,
          ctx: DecodeContext) -> tuple[list[np.ndarray], list[int], list[int]]:
    soundfile = require("soundfile", format="wfdb", extra="flac")
    fmt = group[0].fmt
    bits = FLAC_BITS[fmt]
    spf = group[0].samples_per_frame
    name = group[0].file_name
    with entry.view() as whole:
        data = bytes(whole)
    if data[:4] != b"fLaC":
        raise ctx.error(CorruptDataError, f"signal file {name!r} of format {fmt} is not a FLAC "
                        "stream (no 'fLaC' signature)")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as snd:
            if snd.channels != len(group):
                raise ctx.error(CorruptDataError, f"FLAC file {name!r} has {snd.channels} "
                                f"channels for {len(group)} signals")
            if snd.frames * len(group) * 4 > max(_PLAUSIBLE_BYTES,
                                                 _PLAUSIBLE_RATIO * len(data)):
                raise ctx.error(CorruptDataError, f"FLAC file {name!r} claims {snd.frames} "
                                "samples, implausible for its size")
            ctx.reserve_output(snd.frames * len(group) * 4, f"FLAC file {name!r} (decoding)")
            skip = group[0].byte_offset
            if skip:
                snd.seek(min(skip, snd.frames))
            raw = snd.read(dtype="int32", always_2d=True)
    except EcgIngestError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise ctx.error(CorruptDataError,
                        f"FLAC file {name!r} could not be decoded: {exc}") from exc
    dtype = np.int32 if fmt in WIDE else np.int16
    values = raw >> (32 - bits)
    outs, counts, sums = [], [], []
    for c, spec in enumerate(group):
        column = values[:, c]
        n_out = len(column) if nframes is None else nframes * spf
        shift = skew_frames(spec) * spf
        out = np.empty(n_out, dtype=dtype)
        src = column[shift:shift + n_out]
        out[:len(src)] = src  # the rest is written by _finish
        counts.append(len(column))
        sums.append(int(column[:n_out].sum(dtype=np.int64)))
        outs.append(out)
    return outs, counts, sums


# --------------------------------------------------------------------------- windows

_GROUP = {8: (1, 1), 80: (1, 1), 16: (2, 1), 61: (2, 1), 160: (2, 1), 24: (3, 1),
          212: (3, 2), 32: (4, 1), 310: (4, 3), 311: (4, 3)}
"""Bytes and samples of one byte group of each packed format (ext/wfdb.pyx)."""
WINDOW_CHUNK_BYTES = 16 * 1024
"""Bytes of a signal file read and decoded at a time for a window: the reading
buffer stays small beside the window's samples."""


def _decode_window(hdr: WfdbHeader, files: RecordFiles, arena: Arena | None, nframes: int,
                   window: tuple[int, int], wanted: set[int] | None) -> Decoded:
    ctx = files.ctx
    specs = hdr.signals
    f0, f1 = window
    n = len(specs)
    picked = set(range(n)) if wanted is None else wanted
    frames = f1 - f0
    ctx.reserve_output(output_bytes([specs[i] for i in sorted(picked)], frames),
                       f"window of record {hdr.record_name!r}")
    digital: list[np.ndarray] = [np.empty(0, dtype=np.int32 if s.fmt in WIDE else np.int16)
                                 for s in specs]
    codes: list[int | None] = [INVALID.get(s.fmt) for s in specs]
    masks: list[np.ndarray | None] = [None] * n
    for start, stop in groups(specs):
        if not picked.intersection(range(start, stop)):
            continue
        group = specs[start:stop]
        fmt = group[0].fmt
        if fmt == 0:
            for i, spec in enumerate(group, start):
                digital[i] = np.zeros(frames * spec.samples_per_frame, dtype=np.int16)
                masks[i] = np.ones(frames * spec.samples_per_frame, dtype=bool)
                codes[i] = None
            continue
        entry = files.signal_file(hdr.record_name, group[0].file_name)
        fctx = files.context(entry)
        if fmt in FLAC_BITS:  # a FLAC stream decodes from its start: decode, then cut
            outs, counts, _ = _flac(group, entry, nframes, fctx)
            outs = [o[f0 * s.samples_per_frame:f1 * s.samples_per_frame].copy()
                    if i in picked else o[:0] for i, o, s in zip(range(start, stop), outs, group)]
            shifts = [f0 * s.samples_per_frame + skew_frames(s) * s.samples_per_frame
                      for s in group]
        else:
            outs, counts, shifts = _packed_window(hdr, group, entry, f0, f1, fctx, arena,
                                                  [i in picked for i in range(start, stop)])
        for i, spec, out, count, shift in zip(range(start, stop), group, outs, counts, shifts):
            if i not in picked:
                continue
            digital[i] = out
            codes[i], masks[i] = _finish(hdr, spec, out, count, fctx, shift)
            if spec.uncalibrated:
                ctx.warn(f"signal {spec.description!r} has no gain (uncalibrated); using 200 "
                         "ADC units per unit")
    return Decoded(digital, codes, masks, [None] * n)


def _packed_window(hdr: WfdbHeader, group: Sequence[WfdbSignalSpec], entry: PoolFile,
                   f0: int, f1: int, ctx: DecodeContext, arena: Arena | None,
                   picked: Sequence[bool]) -> tuple[list[np.ndarray], list[int], list[int]]:
    """Frames ``[f0, f1)`` of one group, read from the file a chunk at a time.

    Reading starts at a frame that is a multiple of 6 (a 212/310/311 byte group
    then never splits) and at frame 0 for format 8; what comes before ``f0``,
    and each signal's skew, is dropped by the kernel's shifts. Returns the
    outputs, the stored samples seen and how many of them precede ``out[0]``.
    """
    fmt = group[0].fmt
    dtype = np.int32 if fmt in WIDE else np.int16
    spf = [s.samples_per_frame for s in group]
    frame_size = sum(spf)
    skews = [skew_frames(s) if s.skew else 0 for s in group]
    gb, gs = _GROUP[fmt]
    first = 0 if fmt == 8 else f0 // 6 * 6
    shifts = [(f0 - first + k) * m for k, m in zip(skews, spf)]
    outs = block_views([(f1 - f0) * m if want else 0 for m, want in zip(spf, picked)], dtype,
                       arena)
    byte_start = group[0].byte_offset + first * frame_size // gs * gb
    present = _kernel.available_samples(fmt, max(entry.size - byte_start, 0))
    flat = min((f1 + max(skews) - first) * frame_size, present)
    # whole 6-frame steps per chunk (format 8 carries a running sum: one chunk)
    step = 6 * frame_size
    chunk = flat if fmt == 8 else max(WINDOW_CHUNK_BYTES * gs // gb // step, 1) * step
    buffer = memoryview(bytearray(((chunk + gs - 1) // gs) * gb + 8))
    counts = [0] * len(group)
    done = 0
    what = _group_what(hdr, group)
    with ByteSource.open(entry) as source:
        while done < flat:
            n = min(chunk, flat - done)
            c0 = done // frame_size  # whole frames before this chunk (chunks hold whole steps)
            got = source.read_into(byte_start + done // gs * gb,
                                   buffer[:(n + gs - 1) // gs * gb])
            views, local = [], []
            for out, m, shift in zip(outs, spf, shifts):
                at = min(max(c0 * m - shift, 0), len(out))
                views.append(out[at:])
                local.append(shift - c0 * m + at)
            status, seen, _ = _kernel.decode_group(
                buffer[:got] if got else b"", fmt, min(n, _kernel.available_samples(fmt, got)),
                spf, local, views, [s.initial_value for s in group])
            ctx.check_status(status, what)
            counts = [c + k for c, k in zip(counts, seen)]
            if got < (n + gs - 1) // gs * gb:
                break  # the file ended
            done += n
    return outs, counts, shifts
