"""The record model every decoder produces: Record, Signal, Metadata, Annotation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._ext import scale as _scale
from .errors import EcgWarning

__all__ = ["Signal", "Annotation", "Metadata", "Record", "RecordInfo", "SignalInfo",
           "METADATA_FIELDS"]


def emit_warnings(record: Record, stacklevel: int = 2) -> None:
    """One :class:`EcgWarning` per record that had deviations tolerated, naming where it
    came from and listing them all (a batch of damaged files warns once per file, not
    once per signal). Every public way to a record calls this once."""
    if record.warnings:
        where = ", ".join(record.sources) or record.name
        warnings.warn(f"{where}: {'; '.join(record.warnings)}", EcgWarning,
                      stacklevel=stacklevel + 1)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class _cached_property:
    """``functools.cached_property`` as Python 3.12 has it: computed on first access,
    then kept in the instance's ``__dict__``.

    Before 3.12 the standard one holds a single lock for all instances while it
    computes, so threads converting different signals to physical values waited
    for each other. Two threads reading the same attribute at once may both
    compute it; both get equal values and one is kept.
    """

    def __init__(self, func: Any) -> None:
        self.func = func
        self.attrname = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.attrname = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.attrname] = value
        return value


@dataclass(frozen=True, eq=False)
class Signal:
    """One channel: stored integers plus the linear scaling to physical units.

    ``physical`` is computed on first access (``digital * scale + offset``,
    NaN where the stored code is ``invalid_value`` or ``invalid_mask`` is set),
    unless the decoder supplied it because the scaling varies within the
    signal (WFDB variable-layout segments).
    """

    label: str
    sample_rate: float
    digital: np.ndarray
    scale: float = 1.0
    offset: float = 0.0
    units: str = ""
    invalid_value: int | None = None
    invalid_mask: np.ndarray | None = field(default=None, repr=False)
    supplied_physical: np.ndarray | None = field(default=None, repr=False)

    def __init__(self, label: str, sample_rate: float, digital: np.ndarray,
                 scale: float = 1.0, offset: float = 0.0, units: str = "",
                 invalid_value: int | None = None, invalid_mask: np.ndarray | None = None,
                 supplied_physical: np.ndarray | None = None) -> None:
        # what the generated __init__ does, in one dict update instead of a frozen
        # __setattr__ per field: decoders build a dozen signals per record under the GIL
        vars(self).update(label=label, sample_rate=sample_rate, digital=digital, scale=scale,
                          offset=offset, units=units, invalid_value=invalid_value,
                          invalid_mask=invalid_mask, supplied_physical=supplied_physical)
        _readonly(digital)
        if invalid_mask is not None:
            _readonly(invalid_mask)

    @_cached_property
    def physical(self) -> np.ndarray:
        if self.supplied_physical is not None:
            return _readonly(self.supplied_physical)
        digital = np.ascontiguousarray(self.digital)
        if digital.dtype.kind != "i" or digital.dtype.itemsize > 8:
            digital = digital.astype(np.int64)
        mask = None
        if self.invalid_mask is not None:
            mask = np.ascontiguousarray(self.invalid_mask, dtype=np.uint8)
        invalid_value = self.invalid_value
        if invalid_value is not None and not (
                np.iinfo(digital.dtype).min <= invalid_value <= np.iinfo(digital.dtype).max):
            invalid_value = None  # the code cannot occur in this dtype
        return _readonly(_scale.to_physical(digital, float(self.scale), float(self.offset),
                                            invalid_value, mask))

    @property
    def invalid(self) -> np.ndarray | None:
        """Boolean mask of samples marked missing, or ``None`` when none can be."""
        mask = self.invalid_mask
        if self.invalid_value is not None:
            coded = self.digital == self.invalid_value
            mask = coded if mask is None else (mask | coded)
        return mask

    def __len__(self) -> int:
        return int(self.digital.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the samples at this signal's rate."""
        return len(self) / self.sample_rate if self.sample_rate > 0 else 0.0


new_signal = functools.partial(_scale.new_signal, Signal)
"""``Signal(...)`` at a fifth of the cost, same fields and read-only arrays: the
decoders' hot path (a dozen signals per record, built while holding the GIL)."""


@dataclass(frozen=True)
class Annotation:
    """A timed event: onset in seconds from the record start."""

    onset: float
    duration: float | None
    text: str


METADATA_FIELDS: tuple[str, ...] = (
    "patient_id",
    "patient_first_name",
    "patient_last_name",
    "patient_gender",
    "patient_birth_date",
    "patient_age",
    "patient_height",
    "patient_weight",
    "recording_start_time",
    "recording_time_zone",
    "investigation_id",
    "device_id",
    "indications",
    "searching_tags",
)


@dataclass(frozen=True)
class Metadata:
    """Patient and recording fields of METADATA.md; ``None`` where unknown.

    ``overridden`` names the fields set by caller overrides and ``file_values``
    keeps what the file itself said for those fields, so both stay visible.
    ``patient_text`` / ``recording_text`` hold free-text identification as
    stored (plain EDF) when it does not map onto fields.
    """

    patient_id: str | None = None
    patient_first_name: str | None = None
    patient_last_name: str | None = None
    patient_gender: str | None = None
    patient_birth_date: dt.date | None = None
    patient_age: int | None = None
    patient_height: int | None = None
    patient_weight: int | None = None
    recording_start_time: dt.datetime | None = None
    recording_time_zone: str | None = None
    investigation_id: str | None = None
    device_id: str | None = None
    indications: tuple[str, ...] | None = None
    searching_tags: tuple[str, ...] | None = None
    patient_text: str | None = None
    recording_text: str | None = None
    overridden: frozenset[str] = frozenset()
    file_values: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, patient_id: str | None = None, patient_first_name: str | None = None,
                 patient_last_name: str | None = None, patient_gender: str | None = None,
                 patient_birth_date: dt.date | None = None, patient_age: int | None = None,
                 patient_height: int | None = None, patient_weight: int | None = None,
                 recording_start_time: dt.datetime | None = None,
                 recording_time_zone: str | None = None, investigation_id: str | None = None,
                 device_id: str | None = None, indications: tuple[str, ...] | None = None,
                 searching_tags: tuple[str, ...] | None = None, patient_text: str | None = None,
                 recording_text: str | None = None, overridden: frozenset[str] = frozenset(),
                 file_values: Mapping[str, Any] | None = None) -> None:
        # the generated __init__ in one dict update (see Signal): every record builds one
        vars(self).update(
            patient_id=patient_id, patient_first_name=patient_first_name,
            patient_last_name=patient_last_name, patient_gender=patient_gender,
            patient_birth_date=patient_birth_date, patient_age=patient_age,
            patient_height=patient_height, patient_weight=patient_weight,
            recording_start_time=recording_start_time, recording_time_zone=recording_time_zone,
            investigation_id=investigation_id, device_id=device_id, indications=indications,
            searching_tags=searching_tags, patient_text=patient_text,
            recording_text=recording_text, overridden=overridden,
            file_values={} if file_values is None else file_values)

    def as_dict(self) -> dict[str, Any]:
        """The METADATA.md fields only (no provenance)."""
        return {name: getattr(self, name) for name in METADATA_FIELDS}

    def source_of(self, name: str) -> str | None:
        """``"override"``, ``"file"`` or ``None`` (unknown) for one field."""
        if name in self.overridden:
            return "override"
        return "file" if getattr(self, name) is not None else None


@dataclass(frozen=True, eq=False)
class Record:
    """One decoded recording. Format-specific readings live in ``extras``
    and are also reachable as attributes (``record.measurements``)."""

    name: str
    format: str
    format_detail: str
    signals: list[Signal]
    start_time: dt.datetime | dt.time | None = None
    metadata: Metadata = field(default_factory=Metadata)
    annotations: list[Annotation] = field(default_factory=list)
    data_record_onsets: np.ndarray | None = None
    sources: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, name: str, format: str, format_detail: str, signals: list[Signal],
                 start_time: dt.datetime | dt.time | None = None,
                 metadata: Metadata | None = None, annotations: list[Annotation] | None = None,
                 data_record_onsets: np.ndarray | None = None, sources: tuple[str, ...] = (),
                 warnings: list[str] | None = None,
                 extras: Mapping[str, Any] | None = None) -> None:
        # the generated __init__ in one dict update (see Signal)
        vars(self).update(
            name=name, format=format, format_detail=format_detail, signals=signals,
            start_time=start_time, metadata=Metadata() if metadata is None else metadata,
            annotations=[] if annotations is None else annotations,
            data_record_onsets=data_record_onsets, sources=sources,
            warnings=[] if warnings is None else warnings,
            extras={} if extras is None else extras)

    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes: expose format extras
        extras = self.__dict__.get("extras")
        if extras is not None and name in extras:
            return extras[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def replace(self, **changes: Any) -> Record:
        return dataclasses.replace(self, **changes)

    def signal(self, label: str) -> Signal:
        """The first signal with this label (``KeyError`` if none)."""
        for sig in self.signals:
            if sig.label == label:
                return sig
        raise KeyError(label)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.signals]

    def summary(self) -> dict[str, Any]:
        """JSON-ready description used by ``ecgingest inspect --json``."""
        return {
            "name": self.name,
            "format": self.format,
            "format_detail": self.format_detail,
            "start_time": None if self.start_time is None else self.start_time.isoformat(),
            "signals": [
                {
                    "label": s.label,
                    "sample_rate": s.sample_rate,
                    "samples": len(s),
                    "units": s.units,
                    "dtype": str(s.digital.dtype),
                }
                for s in self.signals
            ],
            "annotations": len(self.annotations),
            "metadata": {k: _jsonable(v) for k, v in self.metadata.as_dict().items()
                         if v is not None},
            "overridden": sorted(self.metadata.overridden),
            "sources": list(self.sources),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class SignalInfo:
    """What a header says of one signal, without its samples."""

    label: str
    sample_rate: float
    samples: int
    units: str
    dtype: str | None = None
    """NumPy dtype of ``Signal.digital`` where the header fixes it, else None."""


@dataclass(frozen=True)
class RecordInfo:
    """A record's header facts without its samples: what ``ecgingest inspect`` prints.

    Formats read these from headers alone, so inspecting a large upload costs
    its headers, not its samples.
    """

    name: str
    format: str
    format_detail: str
    signals: tuple[SignalInfo, ...]
    start_time: dt.datetime | dt.time | None = None
    metadata: Metadata = field(default_factory=Metadata)
    annotations: int = 0
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: Record) -> RecordInfo:
        """The facts of a decoded record (for formats without a header-only path)."""
        return cls(record.name, record.format, record.format_detail,
                   tuple(SignalInfo(s.label, s.sample_rate, len(s), s.units,
                                    str(s.digital.dtype)) for s in record.signals),
                   record.start_time, record.metadata, len(record.annotations),
                   record.sources, tuple(record.warnings))

    def replace(self, **changes: Any) -> RecordInfo:
        return dataclasses.replace(self, **changes)

    def summary(self) -> dict[str, Any]:
        """The same JSON-ready description as :meth:`Record.summary`."""
        return {
            "name": self.name,
            "format": self.format,
            "format_detail": self.format_detail,
            "start_time": None if self.start_time is None else self.start_time.isoformat(),
            "signals": [{"label": s.label, "sample_rate": s.sample_rate, "samples": s.samples,
                         "units": s.units, "dtype": s.dtype} for s in self.signals],
            "annotations": self.annotations,
            "metadata": {k: _jsonable(v) for k, v in self.metadata.as_dict().items()
                         if v is not None},
            "overridden": sorted(self.metadata.overridden),
            "sources": list(self.sources),
            "warnings": list(self.warnings),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return value
