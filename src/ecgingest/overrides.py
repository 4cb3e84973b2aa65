"""Caller-supplied metadata that wins over what the files say (METADATA.md).

Overrides are validated completely before any byte of the upload is decoded,
so a bad request fails fast with an :class:`~ecgingest.errors.OverrideError`
naming the field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OverrideError
from .record import METADATA_FIELDS, Record

__all__ = ["Overrides", "GENDERS"]

GENDERS = ("FEMALE", "MALE", "UNDIFFERENTIATED")
_UINT32_MAX = 2**32 - 1
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _fail(field: str, message: str) -> OverrideError:
    return OverrideError(f"invalid override: {message}", field=field)


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, f"{field} must be a non-empty string, got {value!r}")
    return value


def _uint32(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, f"{field} must be an integer, got {value!r}")
    if not 0 <= value <= _UINT32_MAX:
        raise _fail(field, f"{field} must be between 0 and {_UINT32_MAX}, got {value}")
    return value


def _gender(field: str, value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in GENDERS:
        raise _fail(field, f"{field} must be one of {', '.join(GENDERS)}, got {value!r}")
    return value.upper()


def _date(field: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _fail(field, f"{field} must be a date, not a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(field, f"{field} must be an ISO 8601 date such as 1970-01-31, got {value!r}")


def parse_iso_datetime(text: str) -> dt.datetime | None:
    """ISO 8601 date-time with a trailing ``Z`` accepted (Python 3.10 refuses it); None if invalid."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _utc_datetime(field: str, value: Any) -> dt.datetime:
    parsed: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = parse_iso_datetime(value)
    if parsed is None:
        raise _fail(field, f"{field} must be an ISO 8601 UTC datetime such as "
                           f"2024-06-23T18:30:00Z, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _fail(field, f"{field} must carry a UTC offset (e.g. a trailing 'Z'), got {value!r}")
    try:
        return parsed.astimezone(dt.timezone.utc)
    except OverflowError as exc:  # 9999-12-31T23:59-01:00 is past the last datetime in UTC
        raise _fail(field, f"{field} is outside the datetimes Python can hold in UTC, "
                           f"got {value!r}") from exc


def _time_zone(field: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _string(field, value)
    try:
        ZoneInfo(name)
    # a name too long for a path, or naming a directory, fails as OSError in the lookup
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _fail(field, f"{field} must be an IANA time zone name such as "
                           f"Europe/London, got {value!r}") from exc
    return name


def _string_list(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _fail(field, f"{field} must be a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise _fail(field, f"{field} must contain only strings, got {item!r}")
    return items


_VALIDATORS = {
    "patient_id": _string,
    "patient_first_name": _string,
    "patient_last_name": _string,
    "patient_gender": _gender,
    "patient_birth_date": _date,
    "patient_age": _uint32,
    "patient_height": _uint32,
    "patient_weight": _uint32,
    "recording_start_time": _utc_datetime,
    "recording_time_zone": _time_zone,
    "investigation_id": _string,
    "device_id": _string,
    "indications": _string_list,
    "searching_tags": _string_list,
}
assert tuple(_VALIDATORS) == METADATA_FIELDS


@dataclass(frozen=True)
class Overrides:
    """Validated overrides; only the fields that were given are set."""

    values: Mapping[str, Any]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Overrides:
        if not isinstance(mapping, Mapping):
            raise OverrideError(f"overrides must be a mapping of METADATA fields, "
                                f"got {type(mapping).__name__}")
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in _VALIDATORS:
                raise OverrideError(
                    f"unknown override field {key!r}; known fields: {', '.join(METADATA_FIELDS)}",
                    field=str(key))
            if value is None:
                continue
            values[key] = _VALIDATORS[key](key, value)
        return cls(values)

    @classmethod
    def coerce(cls, overrides: Overrides | Mapping[str, Any] | None) -> Overrides | None:
        if overrides is None or isinstance(overrides, Overrides):
            return overrides
        return cls.from_mapping(overrides)

    def __bool__(self) -> bool:
        return bool(self.values)

    def apply(self, record: Record) -> Record:
        """A copy of ``record`` whose metadata has these values, provenance kept."""
        if not self.values:
            return record
        meta = record.metadata
        file_values = dict(meta.file_values)
        for name in self.values:
            if name not in meta.overridden:
                file_values[name] = getattr(meta, name)
        new_meta = dataclasses.replace(
            meta, **self.values, overridden=meta.overridden | frozenset(self.values),
            file_values=file_values)
        return record.replace(metadata=new_meta)
