"""The record model every decoder produces: Record, Signal, Metadata, Annotation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import html
import operator
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._ext import scale as _scale
from .errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    MissingDependencyError,
    MixedRatesError,
)
from .leads import standard_label as _standard_label
from .units import conversion_factor

if TYPE_CHECKING:
    import mne
    import pandas
    import xarray

__all__ = ["Signal", "Annotation", "Metadata", "Record", "RecordInfo", "SignalInfo",
           "METADATA_FIELDS", "MixedRatesError"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep




def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the caller of this function
    point at the first frame outside ecgingest: the user's line, whichever public
    way (``read``, ``ingest``, ``iter_records``, ``Stream.finish``) led there."""
    frame = sys._getframe(1)
    level = 1
    known = _IN_PACKAGE
    while frame is not None:
        filename = frame.f_code.co_filename
        inside = known.get(filename)  # the lookup inline: a call per frame cost as much
        if not (_in_package(filename) if inside is None else inside):
            break
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


_IN_PACKAGE: dict[str, bool] = {}
"""Absolute code file name -> inside ecgingest (a warning walks a dozen frames, and
``os.path.abspath`` of each was most of what issuing it cost)."""


def _in_package(filename: str) -> bool:
    known = _IN_PACKAGE.get(filename)
    if known is None:
        known = os.path.abspath(filename).startswith(_PACKAGE_DIR)
        if os.path.isabs(filename) and len(_IN_PACKAGE) < 4096:  # a relative one moves with the cwd
            _IN_PACKAGE[filename] = known
    return known


def emit_warnings(record: Record, stacklevel: int | None = None) -> None:
    """One :class:`EcgWarning` per record that had deviations tolerated, naming where it
    came from and listing them all (a batch of damaged files warns once per file, not
    once per signal). Every public way to a record calls this once.

    :param record: the record whose ``warnings`` are issued.
    :param stacklevel: as for :func:`warnings.warn`, counted from the caller; by
        default the warning points at the first line outside ecgingest.
    """
    if record.warnings:
        where = ", ".join(record.sources) or record.name
        level = caller_stacklevel() if stacklevel is None else stacklevel + 1
        warnings.warn(f"{where}: {'; '.join(record.warnings)}", EcgWarning,
                      stacklevel=level)


def require_extra(module: str, *, purpose: str, extra: str) -> Any:
    """Import an optional package on first use, or say which extra installs it.

    :raises MissingDependencyError: the package is not installed (``extra``
        names the pip extra).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the {module!r} package: pip install 'ecgingest[{extra}]'",
            extra=extra) from exc


def find_label(labels: Sequence[str], name: str) -> int | None:
    """Index of the signal called ``name``: the stored label (exact, then ignoring case),
    then the standard lead name; the first match in file order, or None.

    The one rule for naming a signal, whether the record is decoded
    (:meth:`Record.signal`) or only its header is read (``channels=`` of a read).
    """
    for i, label in enumerate(labels):
        if label == name:
            return i
    folded = name.strip().casefold()
    for i, label in enumerate(labels):
        if label.strip().casefold() == folded:
            return i
    wanted = _standard_label(name)
    if wanted is not None:
        for i, label in enumerate(labels):
            if _standard_label(label) == wanted:
                return i
    return None


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
    derivation: str | None = None
    """How the record's stored leads give this signal (``"II - I"``) when the file
    did not store it but the reader derived it (GE MUSE's III, aVR, aVL, aVF); None
    for a stored signal."""
    first_sample: int = 0
    """Index, in the whole recording, of this signal's first sample: 0, except for a
    signal read with a window (``ecgingest.read(..., start=)``), where
    :meth:`times` counts from the record start all the same."""

    def __init__(self, label: str, sample_rate: float, digital: np.ndarray,
                 scale: float = 1.0, offset: float = 0.0, units: str = "",
                 invalid_value: int | None = None, invalid_mask: np.ndarray | None = None,
                 supplied_physical: np.ndarray | None = None,
                 derivation: str | None = None, first_sample: int = 0) -> None:
        # what the generated __init__ does, in one native call instead of a frozen
        # __setattr__ per field, and without a dict per instance (vars(self) would make
        # one): decoders build a dozen signals per record under the GIL
        _scale.set_fields(self, _SIGNAL_FIELDS, (
            label, sample_rate, digital, scale, offset, units, invalid_value, invalid_mask,
            supplied_physical, derivation), acyclic=not gc.is_tracked(first_sample))
        if first_sample:  # the class default (0) serves every whole signal
            object.__setattr__(self, "first_sample", first_sample)
        _readonly(digital)
        if invalid_mask is not None:
            _readonly(invalid_mask)

    @_cached_property
    def physical(self) -> np.ndarray:
        """Physical values (``float64``, read-only): ``digital * scale + offset``, NaN
        where a sample is invalid; computed on first access and kept."""
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

    @property
    def standard_label(self) -> str | None:
        """The standard name of this lead (``"aVR"`` for ``avr``, ``"II"`` for
        ``MDC_ECG_LEAD_II``), or ``None`` when the label is not a known ECG lead.
        The table is in :mod:`ecgingest.leads`."""
        return _standard_label(self.label)

    def physical_in(self, units: str) -> np.ndarray:
        """Physical values converted to other voltage units.

        :param units: ``"nV"``, ``"uV"`` (or ``"µV"``), ``"mV"`` or ``"V"``.
        :returns: a read-only ``float64`` array (``physical`` itself when the units
            already match), NaN where samples are invalid.
        :raises ecgingest.units.UnitError: this signal's units or ``units`` are not
            a voltage (``"degC"``, ``"%"``, or not given by the file).
        """
        factor = conversion_factor(self.units, units)
        if factor == 1.0:
            return self.physical
        return _readonly(self.physical * factor)

    def times(self) -> np.ndarray:
        """Time of every sample in seconds from the record start.

        Samples follow each other at ``sample_rate``, except in EDF+D records,
        where each data record's samples start at its onset
        (``Record.data_record_onsets``). A WFDB multi-segment record's gaps (null
        segments) are invalid samples in the signal, so its times run on evenly
        across them. A signal read with a window starts at its window's first
        sample (``first_sample / sample_rate``).

        :returns: a read-only ``float64`` array as long as the signal.
        :raises ValueError: the sample rate is not positive (the file gave none).
        """
        if not self.sample_rate > 0:
            raise ValueError(f"signal {self.label!r} has no sample rate "
                             f"({self.sample_rate!r} Hz); its sample times are unknown")
        n = len(self)
        onsets = self.__dict__.get("_record_onsets")
        if onsets is not None and len(onsets) and n % len(onsets) == 0:
            per_record = n // len(onsets)
            within = np.arange(per_record, dtype=np.float64) / self.sample_rate
            return _readonly((np.asarray(onsets, dtype=np.float64)[:, None]
                              + within[None, :]).reshape(-1))
        return _readonly(np.arange(self.first_sample, self.first_sample + n,
                                   dtype=np.float64) / self.sample_rate)

    def __repr__(self) -> str:
        return (f"<Signal {self.label!r} {_rate(self.sample_rate)}, {len(self)} samples "
                f"({_clock(self.duration)}), {self.units or 'no units'}>")


new_signal = functools.partial(_scale.new_signal, Signal)
"""``Signal(...)`` at a fifth of the cost, same fields and read-only arrays: the
decoders' hot path (a dozen signals per record, built while holding the GIL)."""

new_signals = functools.partial(_scale.new_signals, Signal)
"""A record's signals in one call, each as :func:`new_signal` builds it: scalars
shared by every signal or one value per signal, ``digital`` a 2-D block or one
array per signal (``counts``: samples kept of each row)."""


@dataclass(frozen=True)
class Annotation:
    """A timed event: onset in seconds from the record start."""

    onset: float
    duration: float | None
    text: str


def new_annotations(onsets: Sequence[float], texts: Sequence[str],
                    durations: Sequence[float | None] | None = None) -> list[Annotation]:
    """``[Annotation(onsets[i], durations[i], texts[i]) ...]`` (``durations`` None: none)
    in one native call, each left out of garbage collection where it holds only
    numbers, None and a string: what a reader of beat annotations builds, a hundred
    thousand for a Holter record, four to five times faster than the constructor."""
    return cast("list[Annotation]", _scale.new_annotations(Annotation, onsets, texts, durations))


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
        # the generated __init__ without its frozen __setattr__ per field, and without
        # a dict per instance (vars(self) would make one): every record builds one
        _scale.set_fields(self, _METADATA_FIELDS, (
            patient_id, patient_first_name, patient_last_name, patient_gender,
            patient_birth_date, patient_age, patient_height, patient_weight,
            recording_start_time, recording_time_zone, investigation_id, device_id,
            indications, searching_tags, patient_text, recording_text, overridden,
            {} if file_values is None else file_values))

    def as_dict(self) -> dict[str, Any]:
        """The METADATA.md fields only (no provenance).

        :returns: field name → value (``None`` where unknown), in METADATA.md order.
        """
        return {name: getattr(self, name) for name in METADATA_FIELDS}

    def source_of(self, name: str) -> str | None:
        """Where one field's value came from.

        :param name: a METADATA.md field name.
        :returns: ``"override"``, ``"file"`` or ``None`` (unknown).
        :raises AttributeError: ``name`` is not a field.
        """
        if name in self.overridden:
            return "override"
        return "file" if getattr(self, name) is not None else None


@dataclass(frozen=True, eq=False)
class Record:
    """One decoded recording. Format-specific readings live in ``extras``
    and are also reachable as attributes (``record.measurements``).

    Beyond the attributes: :meth:`signal` (by stored or standard name),
    :meth:`to_numpy`, :meth:`times`, :meth:`to_dataframe`, :meth:`to_xarray`, :meth:`to_mne`,
    :meth:`to_wfdb`, :meth:`to_edf` and :meth:`summary`.
    """

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
        # the generated __init__ without its frozen __setattr__ per field and without a
        # dict per instance (see Metadata)
        _scale.set_fields(self, _RECORD_FIELDS, (
            name, format, format_detail, signals, start_time,
            Metadata() if metadata is None else metadata,
            [] if annotations is None else annotations, data_record_onsets, sources,
            [] if warnings is None else warnings, {} if extras is None else extras))
        if data_record_onsets is not None:
            for sig in signals:  # so Signal.times() knows where each data record starts
                vars(sig)["_record_onsets"] = data_record_onsets

    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes: expose format extras
        extras = self.__dict__.get("extras")
        if extras is not None and name in extras:
            return extras[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def replace(self, **changes: Any) -> Record:
        """A copy with the given attributes changed (``record.replace(name="x")``).

        :param changes: attribute names and their new values.
        :returns: the new record (arrays are shared, not copied).
        :raises TypeError: a name is not an attribute of :class:`Record`.
        """
        if type(self) is not Record:  # a subclass builds its copies its own way
            return dataclasses.replace(self, **changes)
        # what dataclasses.replace does (every field through __init__), at a fraction of
        # its cost: every record read pays it once (its sources are set)
        if _KEPT_AS_GIVEN.issuperset(changes):
            # __init__ would store these changes as given: the fields copied, without a
            # keyword call of every field
            twin = object.__new__(Record)
            copied = list(_record_fields_of(self))
            for name, value in changes.items():
                copied[_RECORD_FIELDS.index(name)] = value
            _scale.set_fields(twin, _RECORD_FIELDS, tuple(copied))
            return twin
        values = {name: getattr(self, name) for name in _RECORD_FIELDS}
        values.update(changes)  # an unknown name: __init__'s TypeError, as before
        return Record(**values)

    def signal(self, name: str) -> Signal:
        """The signal called ``name``, as stored or by its standard lead name.

        The stored label wins (exact, then ignoring case), then the standard name
        (``record.signal("ii")`` finds ``MDC_ECG_LEAD_II``); the first match in
        file order is returned.

        :param name: a stored label or a standard lead name, any case.
        :returns: the signal.
        :raises KeyError: no signal has that name; the message lists the labels.
        """
        index = find_label(self.labels, name)
        if index is not None:
            return self.signals[index]
        raise KeyError(f"no signal {name!r} in record {self.name!r}; its labels are "
                       f"{', '.join(repr(label) for label in self.labels) or 'none'}")

    @property
    def labels(self) -> list[str]:
        """The signals' labels as stored, in file order."""
        return [s.label for s in self.signals]

    @property
    def standard_labels(self) -> list[str | None]:
        """The signals' standard lead names (``None`` where unknown), in file order."""
        return [s.standard_label for s in self.signals]

    @property
    def duration(self) -> float:
        """Seconds covered by the longest signal (the record's length in time)."""
        return max((s.duration for s in self.signals), default=0.0)

    # ----------------------------------------------------------------- arrays

    def _select(self, channels: str | int | Sequence[str | int] | None) -> list[Signal]:
        if channels is None:
            return list(self.signals)
        if isinstance(channels, (str, int)):
            channels = [channels]
        chosen = []
        for item in channels:
            if isinstance(item, (int, np.integer)):
                chosen.append(self.signals[int(item)])
            else:
                chosen.append(self.signal(item))
        return chosen

    def _one_rate(self, signals: list[Signal], purpose: str) -> None:
        """Raise :class:`MixedRatesError` unless the signals share rate and length."""
        groups: dict[tuple[float, int], list[str]] = {}
        for sig in signals:
            groups.setdefault((sig.sample_rate, len(sig)), []).append(sig.label)
        if len(groups) <= 1:
            return
        parts = [f"{_rate(rate)} × {n} samples: {', '.join(labels)}"
                 for (rate, n), labels in groups.items()]
        example = next(iter(groups.values()))
        raise MixedRatesError(
            f"{purpose} needs signals of one sample rate and length; record {self.name!r} "
            f"has {'; '.join(parts)}. Pick signals of one kind, e.g. "
            f"channels={example!r}; ecgingest does not resample")

    def to_numpy(self, channels: str | int | Sequence[str | int] | None = None, *,
                 physical: bool = True, units: str | None = None) -> np.ndarray:
        """The signals as one 2-D array, channels × samples.

        :param channels: which signals, in which order: labels, standard lead
            names (as :meth:`signal` takes them) or indices; ``None`` for all.
        :param physical: physical values (``float64``, NaN where invalid) or, when
            false, the stored integers (their common dtype).
        :param units: convert physical values to these voltage units (``"uV"``,
            ``"mV"``, ``"V"``, ``"nV"``); ``None`` keeps each signal's own units.
        :returns: a new array of shape ``(len(channels), samples)``.
        :raises MixedRatesError: the chosen signals differ in sample rate or
            length (the message names them and how to pick one kind).
        :raises KeyError: a channel name is not in the record.
        :raises ecgingest.units.UnitError: ``units`` given for a signal whose units
            are not a voltage.
        :raises ValueError: ``units`` given with ``physical=False``.
        """
        if units is not None and not physical:
            raise ValueError("units converts physical values; it cannot be used with "
                             "physical=False")
        signals = self._select(channels)
        self._one_rate(signals, "to_numpy()")
        if not signals:
            return np.empty((0, 0), dtype=np.float64 if physical else np.int16)
        if not physical:
            dtype = np.result_type(*(s.digital.dtype for s in signals))
            return np.stack([s.digital for s in signals]).astype(dtype, copy=False)
        rows = [s.physical if units is None else s.physical_in(units) for s in signals]
        return np.stack(rows)

    def times(self, channel: str | int | None = None) -> np.ndarray:
        """Time of every sample in seconds from the record start (see :meth:`Signal.times`).

        :param channel: the signal whose times are wanted (label, standard name or
            index); ``None`` when all signals share one rate and length.
        :returns: a read-only ``float64`` array.
        :raises MixedRatesError: ``channel`` is ``None`` and the signals differ in
            rate or length.
        :raises KeyError: ``channel`` is not in the record.
        :raises ValueError: the record has no signals, or no sample rate.
        """
        if channel is not None:
            return self._select(channel)[0].times()
        if not self.signals:
            raise ValueError(f"record {self.name!r} has no signals")
        self._one_rate(self.signals, "times()")
        return self.signals[0].times()

    def _table(self, channels: str | int | Sequence[str | int] | None, physical: bool,
               units: str | None) -> tuple[list[Signal], np.ndarray, np.ndarray]:
        """The chosen signals, their samples as :meth:`to_numpy` gives them and their
        times: what the table-shaped exports share."""
        signals = self._select(channels)
        data = self.to_numpy([self.signals.index(s) for s in signals] if signals else [],
                             physical=physical, units=units)
        return signals, data, signals[0].times() if signals else np.empty(0)

    def to_dataframe(self, channels: str | int | Sequence[str | int] | None = None, *,
                     physical: bool = True, units: str | None = None) -> pandas.DataFrame:
        """The signals as a pandas DataFrame: one column per signal, indexed by time.

        Needs the ``pandas`` extra (``pip install 'ecgingest[pandas]'``).

        :param channels: as for :meth:`to_numpy`.
        :param physical: as for :meth:`to_numpy`.
        :param units: as for :meth:`to_numpy`.
        :returns: a DataFrame whose columns are the labels and whose index is a
            ``TimedeltaIndex`` named ``"time"`` (time since the record start, EDF+D
            gaps included); add ``record.start_time`` for wall-clock times.
        :raises MissingDependencyError: pandas is not installed.
        :raises MixedRatesError: the chosen signals differ in rate or length.
        :raises KeyError: a channel name is not in the record.
        """
        pd = require_extra("pandas", purpose="Record.to_dataframe()", extra="pandas")
        signals, data, seconds = self._table(channels, physical, units)
        index = pd.to_timedelta(seconds, unit="s").rename("time")
        return pd.DataFrame(data.T, index=index, columns=[s.label for s in signals])

    def to_xarray(self, channels: str | int | Sequence[str | int] | None = None, *,
                  physical: bool = True, units: str | None = None) -> xarray.DataArray:
        """The signals as a labelled xarray ``DataArray`` (``channel`` x ``time``).

        Needs the ``xarray`` extra (``pip install 'ecgingest[xarray]'``).

        :param channels: as for :meth:`to_numpy`.
        :param physical: as for :meth:`to_numpy`.
        :param units: as for :meth:`to_numpy`.
        :returns: a DataArray named after the record, with coordinates ``channel``
            (the labels), ``standard_label`` (per channel, ``None`` when unknown),
            ``units`` (per channel) and ``time`` (seconds since the record start,
            EDF+D gaps included), and attributes ``sample_rate``, ``format``,
            ``start_time`` (ISO 8601, or ``None``) and ``physical``.
        :raises MissingDependencyError: xarray is not installed.
        :raises MixedRatesError: the chosen signals differ in rate or length.
        :raises KeyError: a channel name is not in the record.
        """
        xr = require_extra("xarray", purpose="Record.to_xarray()", extra="xarray")
        signals, data, seconds = self._table(channels, physical, units)
        shown = [(units or s.units) if physical else "" for s in signals]
        start = self.start_time
        return xr.DataArray(
            data, dims=("channel", "time"), name=self.name,
            coords={"channel": [s.label for s in signals],
                    "standard_label": ("channel", [s.standard_label for s in signals]),
                    "units": ("channel", shown),
                    "time": seconds},
            attrs={"sample_rate": signals[0].sample_rate if signals else None,
                   "format": self.format, "physical": physical,
                   "start_time": None if start is None else start.isoformat()})

    def to_mne(self, channels: str | int | Sequence[str | int] | None = None) -> mne.io.RawArray:
        """The signals as an MNE ``RawArray`` (data in volts) with the annotations.

        Needs the ``mne`` extra (``pip install 'ecgingest[mne]'``). Voltage signals
        become channels of type ``"ecg"`` in volts; other signals (temperature,
        respiration effort, …) are ``"misc"`` channels with their values as stored.
        Annotations keep their onsets, with ``orig_time`` the record's start
        (naive start times are taken as UTC, as MNE requires).

        :param channels: as for :meth:`to_numpy`; ``None`` for all.
        :returns: ``mne.io.RawArray``.
        :raises MissingDependencyError: MNE is not installed.
        :raises MixedRatesError: the chosen signals differ in sample rate (MNE holds
            one rate and ecgingest does not resample: pick signals of one rate).
        :raises KeyError: a channel name is not in the record.
        """
        mne_ = require_extra("mne", purpose="Record.to_mne()", extra="mne")
        from .units import canonical_unit

        signals = self._select(channels)
        if not signals:
            raise ValueError(f"record {self.name!r}: no signals to put in an MNE Raw")
        self._one_rate(signals, "to_mne()")
        rows, kinds = [], []
        for sig in signals:
            if canonical_unit(sig.units) is not None:
                rows.append(sig.physical_in("V"))
                kinds.append("ecg")
            else:
                rows.append(sig.physical)
                kinds.append("misc")
        info = mne_.create_info([s.label for s in signals], signals[0].sample_rate, kinds)
        raw = mne_.io.RawArray(np.stack(rows), info, verbose="error")
        start = self.start_time
        meas_date = None
        if isinstance(start, dt.datetime):
            meas_date = (start.replace(tzinfo=dt.timezone.utc) if start.tzinfo is None
                         else start.astimezone(dt.timezone.utc))
            raw.set_meas_date(meas_date)
        if self.annotations:
            raw.set_annotations(mne_.Annotations(
                onset=[a.onset for a in self.annotations],
                duration=[a.duration or 0.0 for a in self.annotations],
                description=[a.text for a in self.annotations], orig_time=meas_date))
        return raw

    # ----------------------------------------------------------------- writing

    def to_wfdb(self, directory: str | os.PathLike[str], *, fmt: str | int = "16",
                name: str | None = None) -> Path:
        """Write the record as WFDB files (``<name>.hea`` and ``<name>.dat``).

        See :func:`ecgingest.writers.write_wfdb` for the parameters and errors.

        :returns: the path of the header written.
        """
        from .writers.wfdb import write_wfdb

        return write_wfdb(self, directory, fmt=fmt, name=name)

    def to_edf(self, path: str | os.PathLike[str], *, bdf: bool = False,
               record_duration: float | None = None, pad: bool = False) -> Path:
        """Write the record as one EDF+ (or, with ``bdf=True``, BDF+) file.

        See :func:`ecgingest.writers.write_edf` for the parameters and errors.

        :returns: the path written.
        """
        from .writers.edf import write_edf

        return write_edf(self, path, bdf=bdf, record_duration=record_duration, pad=pad)

    # ----------------------------------------------------------------- display

    def __repr__(self) -> str:
        return "\n".join(_describe(self.name, self.format, self.format_detail,
                                    [(s.label, s.sample_rate, len(s)) for s in self.signals],
                                    self.start_time, len(self.annotations), self.warnings))

    def _repr_html_(self) -> str:
        return _html(self.name, self.format, self.format_detail,
                     [(s.label, s.standard_label, s.sample_rate, len(s), s.units)
                      for s in self.signals], self.start_time, len(self.annotations),
                     self.warnings)

    def plot(self, **options: Any) -> Any:
        """The record drawn as a matplotlib ``Figure``: 12-lead ECG paper for 12-lead
        records, stacked traces otherwise (options: :func:`ecgingest.plot.plot_record`).

        Raises :class:`~ecgingest.errors.MissingDependencyError` without matplotlib
        (``pip install 'ecgingest[plot]'``).
        """
        from .plot import plot_record

        return plot_record(self, **options)

    def summary(self) -> dict[str, Any]:
        """The long description, JSON-ready (what ``ecgingest inspect --json`` prints).

        :returns: name, format, start time, every signal (label, rate, samples,
            units, dtype), annotation count, metadata, sources and warnings.
        """
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
        """The facts of a decoded record (for formats without a header-only path).

        :param record: the decoded record.
        :returns: its header facts.
        """
        return cls(record.name, record.format, record.format_detail,
                   tuple(SignalInfo(s.label, s.sample_rate, len(s), s.units,
                                    str(s.digital.dtype)) for s in record.signals),
                   record.start_time, record.metadata, len(record.annotations),
                   record.sources, tuple(record.warnings))

    def replace(self, **changes: Any) -> RecordInfo:
        """A copy with the given attributes changed."""
        return dataclasses.replace(self, **changes)

    def summary(self) -> dict[str, Any]:
        """The same JSON-ready description as :meth:`Record.summary`.

        :returns: the description, with ``samples`` and ``annotations`` from the header.
        """
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


# --------------------------------------------------------------------------- lazy records


class _Load:
    """The deferred decode of one lazy record: run once, under a lock, by the first
    thread that needs samples; then kept (the record, or the typed error it raised).

    ``decode`` holds what the decode needs (a path to re-open, or the entry's
    bytes) and is dropped once it ran, so the bytes go with it.
    """

    __slots__ = ("_decode", "_lock", "_record", "_error", "_trace", "_signals", "warnings",
                 "where")

    def __init__(self, decode: Callable[[], Record], signals: int, warnings: list[str]) -> None:
        self._decode: Callable[[], Record] | None = decode
        self._lock = threading.Lock()
        self._record: Record | None = None
        self._error: EcgIngestError | None = None
        self._trace: Any = None  # the error's traceback as first raised
        self._signals = signals  # how many the header listed (a decode must give as many)
        self.warnings = warnings
        """The lazy record's ``warnings`` list: completed in place by the decode."""
        self.where = ""
        """What a warning of the decode names (the record's sources)."""

    @property
    def done(self) -> bool:
        """True once the samples are decoded."""
        return self._record is not None

    def record(self) -> Record:
        """The decoded record (decoding it on the first call).

        :raises EcgIngestError: the decode's error, on this and every later call.
        """
        record = self._record
        if record is not None:
            return record
        new: list[str] = []
        with self._lock:
            if self._record is None:
                if self._error is not None:  # raised again from its first traceback
                    raise self._error.with_traceback(self._trace)
                assert self._decode is not None
                try:
                    record = self._decode()
                    if len(record.signals) != self._signals:
                        raise CorruptDataError(
                            f"the samples do not match the header read before: "
                            f"{len(record.signals)} signals decoded, the header listed "
                            f"{self._signals}", path=record.sources[0] if record.sources
                            else None, format=record.format)
                except EcgIngestError as exc:
                    self._error, self._trace, self._decode = exc, exc.__traceback__, None
                    raise
                self._decode = None  # the kept bytes (or path) go
                new = [w for w in record.warnings if w not in self.warnings]
                self.warnings[:] = list(record.warnings) + [
                    w for w in self.warnings if w not in record.warnings]
                self._record = record
            record = self._record
        if new:  # what only the samples showed (a skewed signal's end): issued once
            warnings.warn(f"{self.where}: {'; '.join(new)}", EcgWarning,
                          stacklevel=caller_stacklevel())
        return record


def _itself(value: Any) -> Any:
    """What a lazy record or signal unpickles to: the decoded one it was pickled as."""
    return value


def _from_header(name: str) -> property:
    def get(self: LazySignal) -> Any:
        if self._load.done:
            return getattr(self._decoded(), name)
        return self.__dict__["_header"][name]

    return property(get, doc=f"As :attr:`Signal.{name}`: the header's until the samples "
                             "are decoded, the decoded signal's after.")


def _from_samples(name: str) -> property:
    def get(self: LazySignal) -> Any:
        return getattr(self._decoded(), name)

    return property(get, doc=f"As :attr:`Signal.{name}`; decodes the record's samples on "
                             "first access.")


class LazySignal(Signal):
    """A signal of a lazy record (``ecgingest.read(..., lazy=True)``).

    ``label``, ``sample_rate``, ``units``, ``first_sample`` and ``len()`` come from
    the header; ``digital``, ``physical``, the scaling and everything else decode
    the record's samples on first access (once for the whole record), after which
    every attribute is the decoded signal's.
    """

    label = _from_header("label")  # type: ignore[assignment]
    sample_rate = _from_header("sample_rate")  # type: ignore[assignment]
    units = _from_header("units")  # type: ignore[assignment]
    first_sample = _from_header("first_sample")  # type: ignore[assignment]
    digital = _from_samples("digital")  # type: ignore[assignment]
    physical = _from_samples("physical")  # type: ignore[assignment]
    scale = _from_samples("scale")  # type: ignore[assignment]
    offset = _from_samples("offset")  # type: ignore[assignment]
    invalid_value = _from_samples("invalid_value")  # type: ignore[assignment]
    invalid_mask = _from_samples("invalid_mask")  # type: ignore[assignment]
    supplied_physical = _from_samples("supplied_physical")  # type: ignore[assignment]
    derivation = _from_samples("derivation")  # type: ignore[assignment]

    def __init__(self, load: _Load, index: int, info: SignalInfo, first_sample: int = 0,
                 samples: int | None = None) -> None:
        vars(self).update(_load=load, _index=index,
                          _samples=info.samples if samples is None else samples,
                          _dtype=info.dtype,
                          _header={"label": info.label, "sample_rate": info.sample_rate,
                                   "units": info.units, "first_sample": first_sample})

    def _decoded(self) -> Signal:
        real = self.__dict__.get("_real")
        if real is None:
            real = self._load.record().signals[self.__dict__["_index"]]
            vars(self)["_real"] = real
        return real

    def __len__(self) -> int:
        if self._load.done:
            return len(self._decoded())
        return int(self.__dict__["_samples"])

    def times(self) -> np.ndarray:
        return self._decoded().times()

    def _dtype_name(self) -> str | None:
        """The dtype of ``digital`` without decoding where the header fixes it."""
        if self._load.done:
            return str(self._decoded().digital.dtype)
        dtype: str | None = self.__dict__["_dtype"]
        return dtype

    def __reduce_ex__(self, protocol: Any) -> Any:
        return _itself, (self._decoded(),)  # pickled as the decoded signal

    if TYPE_CHECKING:
        _load: _Load


_HEADER_FIELDS = frozenset({"name", "format", "format_detail", "start_time", "metadata",
                            "sources", "warnings"})
"""What a lazy record knows from its header: replacing these keeps it lazy."""


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_SIGNAL_FIELDS = tuple(f.name for f in dataclasses.fields(Signal)
                       if f.name != "first_sample")  # set only when not 0
_METADATA_FIELDS = tuple(f.name for f in dataclasses.fields(Metadata))
_record_fields_of = operator.attrgetter(*_RECORD_FIELDS)

_KEPT_AS_GIVEN = frozenset({"name", "format", "format_detail", "start_time", "sources"})
"""Fields :meth:`Record.replace` may set without ``__init__``: it stores them as given
(the others it may complete: a ``None`` list, the signals' data record onsets)."""


class LazyRecord(Record):
    """A record whose samples are decoded on first access (``read(..., lazy=True)``).

    Name, format, start time, metadata, sources and the signals' labels, rates,
    units and lengths come from the header. The first access to a signal's
    samples (``digital``, ``physical``, …), to ``annotations``,
    ``data_record_onsets`` or a format's extra attributes decodes the record
    once, whichever thread asks first; its ``warnings`` then gain what only the
    samples showed. ``pickle`` and ``copy`` give the decoded :class:`Record`.
    """

    def __init__(self, header: Mapping[str, Any], signals: list[Signal], load: _Load, *,
                 annotations: int | None = None,
                 extras: Mapping[str, Any] | None = None) -> None:
        vars(self).update(header, signals=signals, _load=load, _annotations=annotations,
                          _extras={} if extras is None else dict(extras))
        load.where = ", ".join(self.sources) or self.name

    @classmethod
    def of(cls, info: RecordInfo, decode: Callable[[], Record],
           parts: Sequence[tuple[int, int, int]] | None = None,
           extras: Mapping[str, Any] | None = None) -> LazyRecord:
        """A lazy record of the header facts ``info``.

        :param info: the header facts of the whole record.
        :param decode: gives the decoded record (the part asked for) when first needed.
        :param parts: per signal kept: its index in ``info.signals``, its first sample
            and its sample count (a window's); ``None`` keeps every signal whole.
        :param extras: extra attributes known from the header (a window's ``window``),
            answered without decoding.
        """
        if parts is None:
            parts = [(i, 0, s.samples) for i, s in enumerate(info.signals)]
        load = _Load(decode, len(parts), list(info.warnings))
        signals: list[Signal] = [LazySignal(load, k, info.signals[i], first, samples)
                                 for k, (i, first, samples) in enumerate(parts)]
        header = {"name": info.name, "format": info.format,
                  "format_detail": info.format_detail, "start_time": info.start_time,
                  "metadata": info.metadata, "sources": info.sources, "warnings": load.warnings}
        whole = extras is None or "window" not in extras
        return cls(header, signals, load, annotations=info.annotations if whole else None,
                   extras=extras)

    @property
    def annotations(self) -> list[Annotation]:  # type: ignore[override]
        """As :attr:`Record.annotations`; decodes the record on first access."""
        return self._load.record().annotations

    @property
    def data_record_onsets(self) -> np.ndarray | None:  # type: ignore[override]
        """As :attr:`Record.data_record_onsets`; decodes the record on first access."""
        return self._load.record().data_record_onsets

    @property
    def extras(self) -> Mapping[str, Any]:  # type: ignore[override]
        """As :attr:`Record.extras`; decodes the record on first access."""
        return self._load.record().extras

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):  # protocol probes (pickle, IPython) decode nothing
            known = self.__dict__.get("_extras", {})
            if name in known and not self._load.done:
                return known[name]
            extras = self._load.record().extras
            if name in extras:
                return extras[name]
        raise AttributeError(f"Record has no attribute {name!r}")

    def replace(self, **changes: Any) -> Record:
        """As :meth:`Record.replace`: still lazy when only header facts change (name,
        metadata, sources, start time, format), else the decoded record with the
        changes."""
        if set(changes) <= _HEADER_FIELDS - {"warnings"}:  # the decode completes the list
            header = {name: getattr(self, name) for name in _HEADER_FIELDS}
            header.update(changes)
            return LazyRecord(header, self.signals, self._load,
                              annotations=self.__dict__["_annotations"],
                              extras=self.__dict__["_extras"])
        return self._decoded_record().replace(**changes)

    def _decoded_record(self) -> Record:
        """The plain :class:`Record` this lazy one stands for (decoding it if needed)."""
        decoded = self._load.record()
        return dataclasses.replace(decoded, **{name: getattr(self, name)
                                               for name in _HEADER_FIELDS})

    def __reduce_ex__(self, protocol: Any) -> Any:
        return _itself, (self._decoded_record(),)  # pickled as the decoded record

    def __copy__(self) -> Record:
        return self._decoded_record()

    def __deepcopy__(self, memo: dict[int, Any]) -> Record:
        import copy

        return copy.deepcopy(self._decoded_record(), memo)

    def __repr__(self) -> str:
        if self._load.done:
            return super().__repr__()
        lines = _describe(self.name, self.format, self.format_detail,
                          [(s.label, s.sample_rate, len(s)) for s in self.signals],
                          self.start_time, self.__dict__["_annotations"] or 0, self.warnings)
        lines[-1] = lines[-1][:-1] + ", samples not read yet>"
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self._load.done:
            return super()._repr_html_()
        return _html(self.name, self.format, self.format_detail,
                     [(s.label, s.standard_label, s.sample_rate, len(s), s.units)
                      for s in self.signals], self.start_time,
                     self.__dict__["_annotations"], self.warnings, lazy=True)

    def summary(self) -> dict[str, Any]:
        """As :meth:`Record.summary`, from the header while the samples are not decoded
        and the header fixes every dtype and the annotation count (else it decodes)."""
        count = self.__dict__["_annotations"]
        dtypes = [s._dtype_name() if isinstance(s, LazySignal) else str(s.digital.dtype)
                  for s in self.signals]
        if self._load.done or count is None or None in dtypes:
            return super().summary()
        info = RecordInfo(self.name, self.format, self.format_detail,
                          tuple(SignalInfo(s.label, s.sample_rate, len(s), s.units, d)
                                for s, d in zip(self.signals, dtypes)),
                          self.start_time, self.metadata, count, self.sources,
                          tuple(self.warnings))
        return info.summary()

    if TYPE_CHECKING:
        _load: _Load


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return value


# --------------------------------------------------------------------------- display


def _rate(rate: float) -> str:
    return f"{rate:g} Hz"


def _clock(seconds: float) -> str:
    """``12.5 s``, ``30:05.556`` or ``1:02:03`` for a duration."""
    if seconds < 60:
        return f"{seconds:.4g} s"
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{minutes:02d}:{sec:06.3f}".rstrip("0").rstrip(".")
    return f"{hours}:{text}" if hours else text.lstrip("0") or "0"


def _shape(signals: Sequence[tuple[str, float, int]]) -> str:
    """``12 signals × 500 Hz × 10 s`` (rates and durations listed when they differ)."""
    if not signals:
        return "no signals"
    rates = sorted({rate for _, rate, _ in signals}, reverse=True)
    durations = sorted({n / rate if rate > 0 else 0.0 for _, rate, n in signals},
                       reverse=True)
    rate = "/".join(f"{r:g}" for r in rates[:4]) + ("/…" if len(rates) > 4 else "") + " Hz"
    count = f"{len(signals)} signal{'s' if len(signals) != 1 else ''}"
    return f"{count} × {rate} × {_clock(durations[0])}"


def _label_list(labels: Sequence[str], width: int = 72) -> str:
    """The labels joined, cut to about ``width`` characters with a count of the rest."""
    shown: list[str] = []
    used = 0
    for label in labels:
        if not label or not label.isprintable() or label.strip() != label or "," in label:
            label = repr(label)  # an empty, padded or control-character label stays visible
        if shown and used + len(label) + 2 > width:
            break
        shown.append(label)
        used += len(label) + 2
    rest = len(labels) - len(shown)
    return ", ".join(shown) + (f", … (+{rest} more)" if rest else "")


def _describe(name: str, format: str, detail: str, signals: Sequence[tuple[str, float, int]],
              start: dt.datetime | dt.time | None, annotations: int,
              warnings: Sequence[str], kind: str = "Record") -> list[str]:
    lines = [f"<{kind} {name!r} {detail or format}: {_shape(signals)}"]
    if signals:
        lines.append(f"  labels: {_label_list([label for label, _, _ in signals])}")
    tail = [f"start {start.isoformat() if start is not None else 'unknown'}"]
    if annotations:
        tail.append(f"{annotations} annotation{'s' if annotations != 1 else ''}")
    if warnings:
        tail.append(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}")
    lines.append(f"  {', '.join(tail)}>")
    return lines


def _html(name: str, format: str, detail: str,
          signals: Sequence[tuple[str, str | None, float, int, str]],
          start: dt.datetime | dt.time | None, annotations: int | None,
          warnings: Sequence[str], limit: int = 64, lazy: bool = False) -> str:
    esc = html.escape
    shape = _shape([(label, rate, n) for label, _, rate, n, _ in signals])
    rows = "".join(
        f"<tr><td>{esc(label)}</td><td>{esc(std or '')}</td><td>{rate:g}</td>"
        f"<td>{n}</td><td>{esc(units)}</td></tr>"
        for label, std, rate, n, units in signals[:limit])
    more = (f"<tr><td colspan=5>… {len(signals) - limit} more</td></tr>"
            if len(signals) > limit else "")
    facts = [f"start {esc(start.isoformat()) if start is not None else 'unknown'}"]
    if annotations is not None:
        facts.append(f"{annotations} annotations")
    if warnings:
        facts.append(f"{len(warnings)} warnings")
    if lazy:
        facts.append("samples not read yet")
    return (f"<div><strong>{esc(name)}</strong> {esc(detail or format)}: {esc(shape)}"
            f"<br>{esc(', '.join(facts))}"
            "<table><thead><tr><th>label</th><th>standard</th><th>Hz</th><th>samples</th>"
            f"<th>units</th></tr></thead><tbody>{rows}{more}</tbody></table></div>")
