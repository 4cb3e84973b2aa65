"""Device streams: Compressed Delta frames keyed by timestamp, assembled on finish.

A :class:`Stream` validates its start parameters (STREAM.md) once, checks
every frame completely when it arrives (so a bad frame is refused while the
device can still resend it) and leaves the stream unchanged when it refuses
one. ``finish()`` concatenates the frames in timestamp order into one record
and reports gaps, overlaps and missing frames on it instead of hiding them.
A stream can be saved to bytes or to a directory and restored, so a service
can resume after a restart without losing received frames.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DuplicateFrameError, EcgIngestError, FrameMismatchError, StreamError
from .formats.cdelta import MAGIC as _CDELTA_MAGIC
from .formats.cdelta import CdeltaHeader, decode_payload
from .overrides import Overrides
from .record import Metadata, Record, Signal, emit_warnings

__all__ = ["Stream", "LEAD_CODES", "DEVICE_STATES"]

LEAD_CODES: dict[str, str] = {
    "MDC_ECG_LEAD_I": "I",
    "MDC_ECG_LEAD_II": "II",
    "MDC_ECG_LEAD_III": "III",
    **{f"MDC_ECG_LEAD_V{i}": f"V{i}" for i in range(1, 7)},
    "MDC_ECG_LEAD_AVR": "aVR",
    "MDC_ECG_LEAD_AVL": "aVL",
    "MDC_ECG_LEAD_AVF": "aVF",
    "MDC_ECG_LEAD_ES": "ES",
    "MDC_ECG_LEAD_AS": "AS",
    "MDC_ECG_LEAD_AI": "AI",
    "MDC_ECG_LEAD_A": "A",
    "MDC_ECG_LEAD_D": "D",
}
"""Allowed lead codes and the signal label each one gives."""

DEVICE_STATES = ("WAITING_FOR_START", "RECORDING", "RECORDING_COMPLETED", "UPLOADING",
                 "UPLOADING_FAILED")
FRAME_FORMATS = ("COMPRESSED_DELTA",)
PROCESSING_MODES = ("PROCESS_ON_FINISH",)
_SCALING = ("digital_minimum", "digital_maximum", "physical_minimum", "physical_maximum")
_MAX_TIMESTAMP = 2**63 - 1
_SAVED_MAGIC = b"ECGSTRM\x01"
_FRAME_SUFFIX = ".cmdt"
_FORMAT = "compressed_delta"


def _stream_error(cls: type, message: str, field: str | None = None) -> EcgIngestError:
    return cls(message, format=_FORMAT, field=field)


def _real(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _stream_error(StreamError, f"{field} must be a number, not {value!r}", field)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise _stream_error(StreamError, f"{field} must be finite, not {value!r}", field)
    return number


@dataclass(frozen=True)
class _Frame:
    payload: bytes
    header: CdeltaHeader
    samples: np.ndarray


class Stream:
    """One device stream (processing mode ``PROCESS_ON_FINISH``).

    >>> import numpy as np, ecgingest
    >>> s = ecgingest.Stream(frame_format="COMPRESSED_DELTA", sample_rate=250.0,
    ...                      lead_codes=["MDC_ECG_LEAD_I"])
    >>> s.add_frame(0, ecgingest.encode_compressed_delta(np.arange(250)[None], sample_rate=250.0))
    >>> s.finish().signals[0].label
    'I'

    :param frame_format: ``"COMPRESSED_DELTA"`` (the only frame format).
    :param sample_rate: Hz, which every frame must carry.
    :param lead_codes: MDC lead codes (``"MDC_ECG_LEAD_I"``), one per channel.
    :param processing_mode: ``"PROCESS_ON_FINISH"``.
    :param total_frames: frames expected (missing ones are reported on finish).
    :param digital_minimum: with the other three, the linear scaling to physical
        values (all four or none).
    :param digital_maximum: see ``digital_minimum``.
    :param physical_minimum: see ``digital_minimum``.
    :param physical_maximum: see ``digital_minimum``.
    :param device_state: the device's state, one of ``DEVICE_STATES`` (kept on the
        record).
    :param task_id: names the stream (the record's name, and in warnings).
    :param device_id: the device (``record.metadata.device_id``).
    :raises ecgingest.errors.StreamError: a parameter is invalid (``field`` names it).
    """

    def __init__(self, *, frame_format: str, sample_rate: float, lead_codes: Sequence[str],
                 processing_mode: str = "PROCESS_ON_FINISH", total_frames: int | None = None,
                 digital_minimum: float | None = None, digital_maximum: float | None = None,
                 physical_minimum: float | None = None, physical_maximum: float | None = None,
                 device_state: str | None = None, task_id: str | None = None,
                 device_id: str | None = None) -> None:
        if frame_format not in FRAME_FORMATS:
            raise _stream_error(StreamError, f"frame_format {frame_format!r} is not supported; "
                                "the only frame format is 'COMPRESSED_DELTA'", "frame_format")
        if processing_mode not in PROCESSING_MODES:
            raise _stream_error(StreamError, f"processing_mode {processing_mode!r} is not "
                                "supported; the only mode is 'PROCESS_ON_FINISH'",
                                "processing_mode")
        rate = _real(sample_rate, "sample_rate")
        if rate <= 0:
            raise _stream_error(StreamError, f"sample_rate must be above 0 Hz, not {rate!r}",
                                "sample_rate")
        if isinstance(lead_codes, (str, bytes)) or not isinstance(lead_codes, Sequence):
            raise _stream_error(StreamError, "lead_codes must be a list of MDC lead codes, "
                                f"not {lead_codes!r}", "lead_codes")
        codes = tuple(lead_codes)
        if not 1 <= len(codes) <= 255:
            raise _stream_error(StreamError, f"lead_codes must name 1 to 255 leads, not "
                                f"{len(codes)}", "lead_codes")
        for code in codes:
            if not isinstance(code, str) or code not in LEAD_CODES:
                raise _stream_error(StreamError, f"lead code {code!r} is not allowed; use one "
                                    f"of {', '.join(LEAD_CODES)}", "lead_codes")
        if len(set(codes)) != len(codes):
            duplicated = sorted({c for c in codes if codes.count(c) > 1})
            raise _stream_error(StreamError, f"lead_codes repeats {', '.join(duplicated)}; "
                                "each lead may appear once", "lead_codes")
        scaling: dict[str, Any] = dict(zip(_SCALING, (digital_minimum, digital_maximum,
                                                       physical_minimum, physical_maximum)))
        given = [name for name, value in scaling.items() if value is not None]
        if given and len(given) != 4:
            missing = [name for name in _SCALING if scaling[name] is None]
            raise _stream_error(StreamError, f"scaling needs all four of {', '.join(_SCALING)} "
                                f"or none; {', '.join(missing)} missing", missing[0])
        if given:
            scaling = {name: _real(value, name) for name, value in scaling.items()}
            if scaling["digital_minimum"] == scaling["digital_maximum"]:
                raise _stream_error(StreamError, "digital_minimum equals digital_maximum, so "
                                    "the scaling to millivolts is undefined", "digital_maximum")
        if device_state is not None and device_state not in DEVICE_STATES:
            raise _stream_error(StreamError, f"device_state {device_state!r} is not one of "
                                f"{', '.join(DEVICE_STATES)}", "device_state")
        if total_frames is not None and (
                isinstance(total_frames, bool) or not isinstance(total_frames, (int, np.integer))
                or not 0 <= total_frames <= 0xFFFFFFFF):
            raise _stream_error(StreamError, f"total_frames must be an integer from 0 to "
                                f"4294967295, not {total_frames!r}", "total_frames")
        for name, value in (("task_id", task_id), ("device_id", device_id)):
            if value is not None and not isinstance(value, str):
                raise _stream_error(StreamError, f"{name} must be a string, not {value!r}", name)
        self.frame_format = frame_format
        self.processing_mode = processing_mode
        self.sample_rate = rate
        self.lead_codes = codes
        self.total_frames = None if total_frames is None else int(total_frames)
        self.scaling: dict[str, float] | None = scaling if given else None
        self.device_state = device_state
        self.task_id = task_id
        self.device_id = device_id
        self._frames: dict[int, _Frame] = {}

    # ------------------------------------------------------------------ frames
    def add_frame(self, timestamp_us: int, payload: bytes | bytearray | memoryview) -> None:
        """Check one frame completely and keep it; refusals leave the stream unchanged.

        :param timestamp_us: the frame's start in microseconds (frames may come in
            any order).
        :param payload: one Compressed Delta payload.
        :raises ecgingest.errors.DuplicateFrameError: a frame with this timestamp
            was already added (the first is kept).
        :raises ecgingest.errors.FrameMismatchError: the payload's format, rate or
            channel count differs from the stream's.
        :raises ecgingest.errors.StreamError: the timestamp is invalid.
        :raises ecgingest.errors.EcgIngestError: the payload is damaged.
        """
        if isinstance(timestamp_us, bool) or not isinstance(timestamp_us, (int, np.integer)) \
                or not 0 <= timestamp_us <= _MAX_TIMESTAMP:
            raise _stream_error(StreamError, "timestamp_us must be a non-negative integer "
                                f"number of microseconds, not {timestamp_us!r}", "timestamp_us")
        key = int(timestamp_us)
        if key in self._frames:
            raise _stream_error(DuplicateFrameError, f"a frame with timestamp {key} us was "
                                "already added; the first one is kept", "timestamp_us")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise _stream_error(FrameMismatchError, "a frame payload must be bytes, not "
                                f"{type(payload).__name__}", "payload")
        data = bytes(payload)
        if data[:4] != _CDELTA_MAGIC:
            raise _stream_error(FrameMismatchError, f"frame at {key} us is not a Compressed "
                                "Delta payload (no 'cMdT' magic) but the stream's frame_format "
                                "is COMPRESSED_DELTA", "frame_format")
        try:
            header, samples = decode_payload(data)  # strict, default limits
        except EcgIngestError as exc:
            exc.message = f"frame at {key} us refused: {exc.message}"
            raise
        if not math.isclose(header.sample_rate, self.sample_rate, rel_tol=1e-9, abs_tol=0.0):
            raise _stream_error(FrameMismatchError, f"frame at {key} us has sample rate "
                                f"{header.sample_rate!r} Hz but the stream has "
                                f"{self.sample_rate!r} Hz", "sample_rate")
        if header.channels != len(self.lead_codes):
            raise _stream_error(FrameMismatchError, f"frame at {key} us has {header.channels} "
                                f"channels but the stream has {len(self.lead_codes)} leads "
                                f"({', '.join(self.lead_codes)})", "total_channels")
        self._frames[key] = _Frame(data, header, samples)

    def __len__(self) -> int:
        return len(self._frames)

    def __repr__(self) -> str:
        leads = ", ".join(LEAD_CODES[c] for c in self.lead_codes)
        return (f"<Stream {self.frame_format} {self.sample_rate:g} Hz [{leads}] "
                f"{len(self._frames)} frames>")

    @property
    def timestamps(self) -> list[int]:
        """Timestamps (us) of the frames received, in order."""
        return sorted(self._frames)

    @property
    def parameters(self) -> dict[str, Any]:
        """The start parameters, as keyword arguments of :class:`Stream`."""
        params: dict[str, Any] = {
            "frame_format": self.frame_format,
            "sample_rate": self.sample_rate,
            "lead_codes": list(self.lead_codes),
            "processing_mode": self.processing_mode,
            "total_frames": self.total_frames,
            "device_state": self.device_state,
            "task_id": self.task_id,
            "device_id": self.device_id,
        }
        for name in _SCALING:
            params[name] = None if self.scaling is None else self.scaling[name]
        return params

    # ------------------------------------------------------------------ finish
    def finish(self, *, overrides: Overrides | Mapping[str, Any] | None = None) -> Record:
        """Assemble the frames in timestamp order into one record (the stream stays usable).

        ``overrides`` (METADATA.md fields) are validated first and applied to
        the record, as ``ecgingest.read`` does for uploads. Gaps, overlaps and
        missing frames are listed on ``record.warnings`` and issued as one
        :class:`~ecgingest.errors.EcgWarning` pointing at the caller's line.

        :param overrides: metadata fields (a mapping or :class:`~ecgingest.Overrides`).
        :returns: the assembled :class:`~ecgingest.Record`.
        :raises ecgingest.errors.StreamError: the stream has no frames.
        :raises ecgingest.errors.OverrideError: an override value is invalid.
        """
        checked = Overrides.coerce(overrides)
        if not self._frames:
            raise _stream_error(StreamError, "the stream has no frames to assemble; add frames "
                                "before finish()", "frames")
        order = sorted(self._frames)
        frames = [self._frames[t] for t in order]
        lengths = np.array([f.header.samples for f in frames], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        step_us = 1e6 / self.sample_rate
        gaps: list[dict[str, Any]] = []
        overlaps: list[dict[str, Any]] = []
        warnings: list[str] = []
        for k in range(1, len(order)):
            expected = order[k - 1] + lengths[k - 1] * step_us
            delta = order[k] - expected
            if abs(delta) <= step_us:  # a tolerance of one sample
                continue
            report = {
                "timestamp_us": order[k],
                "previous_timestamp_us": order[k - 1],
                "expected_timestamp_us": float(expected),
                "sample_index": int(offsets[k]),
                "duration_us": float(abs(delta)),
                "samples": float(abs(delta) / step_us),
            }
            if delta > 0:
                gaps.append(report)
                warnings.append(f"gap of {abs(delta):.0f} us ({report['samples']:.1f} samples) "
                                f"before the frame at {order[k]} us")
            else:
                overlaps.append(report)
                warnings.append(f"overlap of {abs(delta):.0f} us ({report['samples']:.1f} "
                                f"samples) at the frame at {order[k]} us")
        if order[0] > step_us:
            warnings.append(f"the first frame starts at {order[0]} us, not at the stream start")
        missing = None
        if self.total_frames is not None and self.total_frames != len(order):
            missing = self.total_frames - len(order)
            warnings.append(f"total_frames announced {self.total_frames} frames but "
                            f"{len(order)} were received")
        dtype = np.result_type(*(f.samples.dtype for f in frames))
        block = np.concatenate([f.samples for f in frames], axis=1).astype(dtype, copy=False)
        block.flags.writeable = False
        scale, offset = 1.0, 0.0
        if self.scaling is not None:
            s = self.scaling
            scale = (s["physical_maximum"] - s["physical_minimum"]) / \
                (s["digital_maximum"] - s["digital_minimum"])
            offset = s["physical_minimum"] - s["digital_minimum"] * scale
        signals = [Signal(label=LEAD_CODES[code], sample_rate=self.sample_rate,
                          digital=block[i], scale=scale, offset=offset, units="mV")
                   for i, code in enumerate(self.lead_codes)]
        timestamps = np.array(order, dtype=np.int64)
        timestamps.flags.writeable = False
        offsets.flags.writeable = False
        record = Record(
            name=self.task_id or self.device_id or "stream",
            format=_FORMAT,
            format_detail=f"Compressed Delta stream ({len(order)} frames)",
            signals=signals,
            metadata=Metadata(device_id=self.device_id),
            warnings=warnings,
            extras={
                "lead_codes": self.lead_codes,
                "task_id": self.task_id,
                "device_state": self.device_state,
                "processing_mode": self.processing_mode,
                "frame_timestamps_us": timestamps,
                "frame_offsets": offsets,
                "gaps": gaps,
                "overlaps": overlaps,
                "frames_received": len(order),
                "frames_expected": self.total_frames,
                "missing_frames": missing,
            },
        )
        emit_warnings(record)
        return checked.apply(record) if checked else record

    # ------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """Parameters and every received frame, for :meth:`from_bytes`.

        :returns: the saved stream as bytes.
        """
        order = sorted(self._frames)
        meta = json.dumps({"parameters": self.parameters,
                           "frames": [[t, len(self._frames[t].payload)] for t in order]},
                          sort_keys=True).encode()
        parts = [_SAVED_MAGIC, struct.pack("<Q", len(meta)), meta]
        parts.extend(self._frames[t].payload for t in order)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Stream:
        """Restore a stream saved by :meth:`to_bytes` (every frame is checked again).

        :param data: what :meth:`to_bytes` returned.
        :returns: the stream, with its frames.
        :raises ecgingest.errors.StreamError: ``data`` is not a saved stream, or is
            cut short or damaged.
        :raises ecgingest.errors.EcgIngestError: a saved frame is refused again.
        """
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")  # sizes below are in bytes
        if bytes(view[:8]) != _SAVED_MAGIC or len(view) < 16:
            raise _stream_error(StreamError, "not a saved ecgingest stream (bad magic or cut "
                                "short)", "saved_stream")
        (size,) = struct.unpack_from("<Q", view, 8)
        if size > len(view) - 16:
            raise _stream_error(StreamError, "saved stream is cut short inside its parameters",
                                "saved_stream")
        meta = _load_json(bytes(view[16:16 + size]), "saved stream")
        if not isinstance(meta, dict):
            raise _stream_error(StreamError, "saved stream table is not an object",
                                "saved_stream")
        frames = meta.get("frames")
        if not isinstance(frames, list):
            raise _stream_error(StreamError, "saved stream has no frame table", "frames")
        stream = cls._from_parameters(meta.get("parameters"))
        position = 16 + size
        for item in frames:
            if (not isinstance(item, list) or len(item) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
                    or item[1] < 0 or item[1] > len(view) - position):
                raise _stream_error(StreamError, f"saved stream frame entry {item!r} is invalid "
                                    "or points past the end", "frames")
            _restore_frame(stream, item[0], view[position:position + item[1]])
            position += item[1]
        if position != len(view):
            raise _stream_error(StreamError, f"{len(view) - position} unexpected bytes after "
                                "the last saved frame", "saved_stream")
        return stream

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write parameters and frames below ``directory``; only new frames are written.

        Each file is written to a temporary name and renamed, so a crash never
        leaves a half-written frame behind. Call it after every ``add_frame``
        to make received frames survive a restart.

        :param directory: where to keep the stream (created if missing).
        :raises OSError: the files cannot be written.
        """
        root = Path(directory)
        frames_dir = root / "frames"
        frames_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(root / "stream.json",
                      json.dumps(self.parameters, sort_keys=True, indent=1).encode())
        for timestamp, frame in self._frames.items():
            target = frames_dir / f"{timestamp:020d}{_FRAME_SUFFIX}"
            if not target.exists():
                _atomic_write(target, frame.payload)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Stream:
        """Restore a stream written by :meth:`save` (every frame is checked again).

        :param directory: what :meth:`save` was given.
        :returns: the stream, with its frames.
        :raises ecgingest.errors.StreamError: no saved stream there, or a damaged one.
        :raises ecgingest.errors.EcgIngestError: a saved frame is refused again.
        :raises OSError: the files cannot be read.
        """
        root = Path(directory)
        try:
            params = (root / "stream.json").read_bytes()
        except FileNotFoundError:
            raise _stream_error(StreamError, f"no saved stream in {str(root)!r} "
                                "(stream.json missing)", "saved_stream") from None
        stream = cls._from_parameters(_load_json(params, "stream.json"))
        frames_dir = root / "frames"
        if frames_dir.is_dir():
            for item in sorted(frames_dir.iterdir()):
                if item.suffix != _FRAME_SUFFIX:
                    continue  # leftovers of an interrupted write
                stem = item.stem
                if not stem.isdigit():
                    raise _stream_error(StreamError, f"saved frame file {item.name!r} is not "
                                        "named by its timestamp", "frames")
                if not item.is_file():
                    raise _stream_error(StreamError, f"saved frame {item.name!r} is not a file",
                                        "frames")
                _restore_frame(stream, int(stem), item.read_bytes())
        return stream

    @classmethod
    def _from_parameters(cls, params: Any) -> Stream:
        if not isinstance(params, Mapping):
            raise _stream_error(StreamError, "saved stream parameters are not an object",
                                "parameters")
        known = {"frame_format", "sample_rate", "lead_codes", "processing_mode", "total_frames",
                 "device_state", "task_id", "device_id", *_SCALING}
        unknown = sorted(set(params) - known)
        if unknown:
            raise _stream_error(StreamError, f"saved stream parameters have unknown keys "
                                f"{', '.join(unknown)}", unknown[0])
        for required in ("frame_format", "sample_rate", "lead_codes"):
            if required not in params:
                raise _stream_error(StreamError, f"saved stream parameters lack {required}",
                                    required)
        return cls(**params)


def _load_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _stream_error(StreamError, f"{what} is not valid JSON ({exc})",
                            "saved_stream") from exc
    except RecursionError:
        raise _stream_error(StreamError, f"{what} nests too deeply to be a saved stream",
                            "saved_stream") from None


def _restore_frame(stream: Stream, timestamp: int, payload: bytes | memoryview) -> None:
    """A saved frame back into its stream: any refusal is a :class:`StreamError` (a
    damaged frame's own error is its cause)."""
    try:
        stream.add_frame(timestamp, payload)
    except StreamError:
        raise
    except EcgIngestError as exc:
        raise _stream_error(StreamError, f"saved stream is damaged: {exc.message}",
                            "frames") from exc


def _atomic_write(target: Path, data: bytes) -> None:
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, target)
