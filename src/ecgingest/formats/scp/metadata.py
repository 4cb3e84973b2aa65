"""Section 1: the tag / length / value triplets of patient and acquisition data.

The kernel (``scan_headers``) walks the triplets and reads each tag's byte
layout into numbers and bytes; here they get their meaning: which field a
tag fills, its units, the text encoding and the warnings. A tag given twice
counts once (the last), except drugs (10) and indications (13), which are lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from ..._ext import scp as _k
from ...errors import TruncatedError
from ...record import Metadata
from .._base import DecodeContext
from .fields import LANGUAGE_CODECS, Texts, new_fields

__all__ = ["PatientData", "parse_section1"]

_AGE_UNITS = {1: "years", 2: "months", 3: "weeks", 4: "days", 5: "hours"}
_AGE_DIVISORS = (1, 1, 12, 52, 365, 8766)  # whole years from age units 1..5
_DEVICE_STRINGS = ("analysing_program_revision", "serial_number", "system_software",
                   "scp_implementation_software", "manufacturer")
_METADATA_TEXTS = ((0, "patient_last_name"), (1, "patient_first_name"), (2, "patient_id"))
_STAFF_TEXTS = ((16, "acquiring_institution"), (17, "analysing_institution"),
                (18, "acquiring_department"), (19, "analysing_department"),
                (20, "referring_physician"), (21, "confirming_physician"),
                (22, "technician"), (23, "room"))
_DEVICE_NUMBERS = ("institution", "department", "device_id", "device_type",
                   "manufacturer_code")
"""Tag 14 / 15: the numbers of bytes 0-7; the model (bytes 8-13) follows them."""
_DEVICE_CODES = ("protocol_revision", "compatibility_level", "language_support",
                 "capabilities", "mains_frequency")
"""Tag 14 / 15: the numbers of bytes 14-18."""
_NOTCH_HZ = ((), (60,), (50,), (60, 50))


class PatientData(NamedTuple):
    metadata: Metadata
    start_time: dt.datetime | dt.time | None
    info: dict[str, Any] | Callable[[], dict[str, Any]]
    """Acquisition information (``Record.acquisition_info``), or what builds it
    on first access when nothing in it can warn."""
    texts: Texts
    """Text decoding in the declared encoding, for the later sections."""


def parse_section1(scanned: _k._PatientTags | None, ctx: DecodeContext) -> PatientData:
    """Metadata and acquisition information from the tags ``scan_headers`` read.

    ``info`` keys follow the tag numbers; tags without a meaning here, or too
    short for their layout, are kept as bytes in ``other_tags`` (tags from 200
    in ``manufacturer_tags``). When the kernel found every text ASCII, no text
    can fail to decode, so nothing in the acquisition information can warn: it
    is built when first read rather than with every record.
    """
    assert scanned is not None
    v, other, manufacturer, language, cut, ascii_only = scanned
    if cut is not None:
        at, tag, length = cut
        ctx.deviation(f"section 1 tag {tag} declares {length} bytes beyond the section; "
                      "the remaining tags are ignored", cls=TruncatedError, offset=at,
                      field=f"section 1 tag {tag}")
    text = Texts(ctx, _declared_codec(language, ctx))
    fields: dict[str, Any] = {}  # the Metadata fields the file gives (None: not given)
    info: dict[str, Any] | Callable[[], dict[str, Any]]
    if ascii_only:
        start = _read_tags(v, other, manufacturer, text, ctx, fields, None)
        info = partial(_acquisition_info, v, other, manufacturer, text, ctx)
    else:
        info = {}
        start = _read_tags(v, other, manufacturer, text, ctx, fields, info)
    return new_fields(PatientData, (Metadata(**fields), start, info, text))


def _acquisition_info(v: list[Any], other: dict[int, bytes] | None,
                      manufacturer: dict[int, bytes] | None, text: Texts,
                      ctx: DecodeContext) -> dict[str, Any]:
    info: dict[str, Any] = {}
    _read_tags(v, other, manufacturer, text, ctx, None, info)
    return info


def _read_tags(v: list[Any], other: dict[int, bytes] | None,
               manufacturer: dict[int, bytes] | None, text: Texts, ctx: DecodeContext,
               fields: dict[str, Any] | None, info: dict[str, Any] | None
               ) -> dt.datetime | dt.time | None:
    """The tags into the Metadata ``fields`` and the acquisition ``info``, in tag
    order (so are the warnings); either can be None, not wanted. Returns the
    start time (None without ``fields``)."""
    if fields is not None:
        for tag, key in _METADATA_TEXTS:
            if v[tag] is not None:
                fields[key] = text(v[tag]) or None
    if info is not None and v[3] is not None:
        info["second_last_name"] = text(v[3])
    if v[4] is not None:
        _age(v[4], fields, info, ctx)
    if fields is not None:
        if v[5] is not None:
            fields["patient_birth_date"] = _date(v[5], "birth date", ctx)
        if v[6] is not None:
            fields["patient_height"] = _height_cm(v[6], ctx)
        if v[7] is not None:
            fields["patient_weight"] = _weight_g(v[7], ctx)
        if v[8] is not None:
            fields["patient_gender"] = _gender(v[8], ctx)
    if info is not None:
        if v[9] is not None:
            info["race"] = v[9]
        if v[11] is not None or v[12] is not None:
            info["blood_pressure"] = {key: value for key, value in
                                      (("systolic", v[11]), ("diastolic", v[12]))
                                      if value is not None}
    if fields is not None and v[13] is not None:
        fields["indications"] = tuple(filter(None, map(text, v[13]))) or None
    if v[14] is not None:
        if info is not None:
            info["acquiring_device"] = _device(v[14], text)
        if fields is not None:
            fields["device_id"] = _device_id(v[14])
    if info is not None:
        if v[15] is not None:
            info["analysing_device"] = _device(v[15], text)
        for tag, key in _STAFF_TEXTS:
            if v[tag] is not None:
                info[key] = text(v[tag])
        if v[24] is not None:
            info["stat_code"] = v[24]
    acq_date = acq_time = None
    if fields is not None:
        acq_date = None if v[25] is None else _date(v[25], "acquisition date", ctx)
        acq_time = None if v[26] is None else _time(v[26], ctx)
    tz_minutes = None if v[34] is None else v[34][0]
    if info is not None:
        if v[27] is not None or v[28] is not None or v[29] is not None:
            info["filters"] = _filters(v[27], v[28], v[29])
        if v[30] is not None:
            info["free_text"] = text(v[30])
        if v[31] is not None:
            info["sequence_number"] = text(v[31])
        if v[32] is not None:
            info["history_codes"] = v[32]
        if v[33] is not None:
            info["electrode_configuration"] = v[33]
        if v[34] is not None:
            _, index, description = v[34]
            info["time_zone"] = {"offset_minutes": tz_minutes, "index": index,
                                 "description": "" if description is None
                                 else text(description)}
        if v[35] is not None:
            info["medical_history"] = text(v[35])
        if other is not None:
            info["other_tags"] = other
        if v[10] is not None:
            info["drugs"] = [{"table": table, "class": cls, "code": code, "text": text(raw)}
                             for table, cls, code, raw in v[10]]
        if manufacturer is not None:
            info["manufacturer_tags"] = manufacturer
    if fields is None:
        return None
    return _start_time(acq_date, acq_time, tz_minutes, fields)


def _declared_codec(language: int, ctx: DecodeContext) -> str:
    """The language code of the acquiring device decides how every text is decoded."""
    if language < 0:
        return "latin-1"
    codec = LANGUAGE_CODECS.get(language)
    if codec is None:
        ctx.warn(f"unknown language support code 0x{language:02X}; texts read as Latin-1")
        return "latin-1"
    return codec


def _start_time(acq_date: dt.date | None, acq_time: dt.time | None, tz_minutes: int | None,
                fields: dict[str, Any]) -> dt.datetime | dt.time | None:
    """The acquisition start; the UTC start and the zone go into ``fields``."""
    if acq_date is None or acq_time is None:
        return acq_time
    tz = dt.timezone(dt.timedelta(minutes=tz_minutes)) if tz_minutes is not None and \
        abs(tz_minutes) < 24 * 60 else None
    local = dt.datetime.combine(acq_date, acq_time, tz)
    if tz is not None:  # the field is UTC: a local time of unknown offset is not one
        fields["recording_start_time"] = local.astimezone(dt.timezone.utc)
    if tz_minutes is not None and tz_minutes % 60 == 0 and -12 * 60 <= tz_minutes <= 14 * 60:
        # Etc/GMT names exist from GMT-14 to GMT+12 (their sign is inverted)
        hours = -tz_minutes // 60
        fields["recording_time_zone"] = "Etc/GMT" if hours == 0 else f"Etc/GMT{hours:+d}"
    return local


def _age(value_unit: tuple[int, int], fields: dict[str, Any] | None,
         info: dict[str, Any] | None, ctx: DecodeContext) -> None:
    value, unit = value_unit
    if info is not None:
        info["age"] = (value, _AGE_UNITS.get(unit, "unspecified"))
    if fields is None:
        return
    if 1 <= unit <= 5:
        fields["patient_age"] = value // _AGE_DIVISORS[unit]
    elif value:
        ctx.warn(f"age {value} has unknown unit code {unit}; not used")


def _date(ymd: tuple[int, int, int], what: str, ctx: DecodeContext) -> dt.date | None:
    """A date (year, month, day); all zero (or a value under 4 bytes): ``None``."""
    y, m, d = ymd
    if y == 0 and m == 0 and d == 0:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        ctx.warn(f"{what} {y:04d}-{m:02d}-{d:02d} is not a valid date; ignored")
        return None


def _time(hms: tuple[int, int, int], ctx: DecodeContext) -> dt.time | None:
    h, m, s = hms
    try:
        return dt.time(h, m, s)
    except ValueError:
        ctx.warn(f"acquisition time {h:02d}:{m:02d}:{s:02d} is not valid; ignored")
        return None


def _given(value_unit: tuple[int, int], what: str, units: int,
           ctx: DecodeContext) -> tuple[int, int] | None:
    """A value and its unit code, when the code is one of 1..``units`` and the value
    is not 0 (not given); an unknown code with a value is noted."""
    value, unit = value_unit
    if not 1 <= unit <= units:
        if value:
            ctx.warn(f"{what} {value} has unknown unit code {unit}; not used")
        return None
    return value_unit if value else None


def _height_cm(value_unit: tuple[int, int], ctx: DecodeContext) -> int | None:
    """Centimetres from unit 1 (cm), 2 (inches) or 3 (mm)."""
    given = _given(value_unit, "height", 3, ctx)
    if given is None:
        return None
    value, unit = given
    if unit == 1:
        return value
    return round(value * 2.54) if unit == 2 else round(value / 10.0)


def _weight_g(value_unit: tuple[int, int], ctx: DecodeContext) -> int | None:
    """Grams from unit 1 (kg), 2 (g), 3 (pounds) or 4 (ounces)."""
    given = _given(value_unit, "weight", 4, ctx)
    if given is None:
        return None
    value, unit = given
    if unit == 1:
        return value * 1000
    if unit == 2:
        return value
    return round(value * 453.59237) if unit == 3 else round(value * 28.349523125)


def _gender(code: int, ctx: DecodeContext) -> str | None:
    if code not in (0, 1, 2, 9):
        ctx.warn(f"sex code {code} is not defined; treated as unknown")
    return "MALE" if code == 1 else "FEMALE" if code == 2 else None


def _device(block: tuple[tuple[int, ...], bytes | None, tuple[bytes | str, ...]],
            text: Texts) -> dict[str, Any]:
    """Tag 14 / 15: the device identification block."""
    numbers, model, strings = block
    info: dict[str, Any] = dict(zip(_DEVICE_NUMBERS, numbers))
    if model is not None:
        info["model"] = model.decode("latin-1").strip()
    if len(numbers) > 5:
        info.update(zip(_DEVICE_CODES, numbers[5:]))
    info.update(zip(_DEVICE_STRINGS, map(text, strings)))
    return info


def _device_id(block: tuple[tuple[int, ...], bytes | None, tuple[bytes | str, ...]]
               ) -> str | None:
    """The acquiring device's model, else its number (0: not given)."""
    numbers, model, _ = block
    name = None if model is None else model.decode("latin-1").strip()
    number = numbers[2] if numbers else 0
    return name or (str(number) if number else None)


def _filters(highpass: int | None, lowpass: int | None, notch: int | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if highpass is not None:
        filters["highpass_hz"] = highpass / 100.0
    if lowpass is not None:
        filters["lowpass_hz"] = float(lowpass)
    if notch is not None:
        filters["notch_hz"] = _NOTCH_HZ[notch & 3]  # bit 0: 60 Hz, bit 1: 50 Hz
        filters["bitmap"] = notch
    return filters
