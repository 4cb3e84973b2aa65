"""Section 1: the tag / length / value triplets of patient and acquisition data."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from ..._ext import scp as _k
from ...errors import TruncatedError
from ...record import Metadata
from .._base import DecodeContext
from .container import Section
from .fields import LANGUAGE_CODECS, Texts, u16

__all__ = ["PatientData", "parse_section1"]

_AGE_UNITS = {1: "years", 2: "months", 3: "weeks", 4: "days", 5: "hours"}
_AGE_DIVISORS = (1, 1, 12, 52, 365, 8766)  # whole years from age units 1..5
_DEVICE_STRINGS = ("analysing_program_revision", "serial_number", "system_software",
                   "scp_implementation_software", "manufacturer")
_TEXT_TAGS = {16: "acquiring_institution", 17: "analysing_institution",
              18: "acquiring_department", 19: "analysing_department",
              20: "referring_physician", 21: "confirming_physician",
              22: "technician", 23: "room", 30: "free_text", 35: "medical_history"}
_METADATA_TEXTS = {0: "patient_last_name", 1: "patient_first_name", 2: "patient_id"}
_DEVICE = struct.Struct("<3H2B6s5B")
"""Tag 14 / 15 bytes 0-18: institution, department, device id, device type,
manufacturer code, model, protocol revision, compatibility level, language
support, capabilities, mains frequency."""
_NOTCH_HZ = ((), (60,), (50,), (60, 50))


class PatientData(NamedTuple):
    metadata: Metadata
    start_time: dt.datetime | dt.time | None
    info: dict[str, Any]
    """Acquisition information (``Record.acquisition_info``)."""
    texts: Texts
    """Text decoding in the declared encoding, for the later sections."""


def parse_section1(data: bytes, sec: Section, ctx: DecodeContext) -> PatientData:
    """Tag / length / value triplets up to tag 255 or the section end."""
    tags = _walk_tags(data, sec, ctx)
    texts = Texts(ctx, _declared_codec(tags, ctx))
    reader = _TagReader(ctx, texts)
    for tag, raw in tags:
        reader.read(tag, raw)
    fields, info = reader.finish()
    acquiring = info.get("acquiring_device")
    if acquiring:
        model = acquiring.get("model") or ""
        number = acquiring.get("device_id") or 0  # 0: not given
        fields["device_id"] = model or (str(number) if number else None)
    start = _start_time(reader.acq_date, reader.acq_time, reader.tz_minutes, fields)
    metadata = Metadata(**{k: v for k, v in fields.items() if v is not None})
    return PatientData(metadata, start, info, texts)


def _walk_tags(data: bytes, sec: Section, ctx: DecodeContext) -> list[tuple[int, bytes]]:
    tags, cut = _k.tag_values(data, sec.body, sec.end)
    if cut >= 0:
        tag, length = data[cut], u16(data, cut + 1)
        ctx.deviation(f"section 1 tag {tag} declares {length} bytes beyond the section; "
                      "the remaining tags are ignored", cls=TruncatedError, offset=cut,
                      field=f"section 1 tag {tag}")
    return tags


def _declared_codec(tags: list[tuple[int, bytes]], ctx: DecodeContext) -> str:
    """The language code of the acquiring device decides how every text is decoded."""
    codec = "latin-1"
    for tag, raw in tags:
        if tag == 14 and len(raw) >= 17:
            code = raw[16]
            if code in LANGUAGE_CODECS:
                codec = LANGUAGE_CODECS[code]
            else:
                ctx.warn(f"unknown language support code 0x{code:02X}; texts read as Latin-1")
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


def _height_cm(value: int, unit: int) -> int:
    if unit == 1:
        return value
    return round(value * 2.54) if unit == 2 else round(value / 10.0)


def _weight_g(value: int, unit: int) -> int:
    if unit == 1:
        return value * 1000
    if unit == 2:
        return value
    return round(value * 453.59237) if unit == 3 else round(value * 28.349523125)


def _i16(value: int) -> int:
    return value - 0x10000 if value >= 0x8000 else value


class _TagReader:
    """Section 1's triplets read into metadata fields and acquisition information.

    Each tag has a reader and the least value length it needs; a tag too short
    for its reader, or of an unknown number, is kept as bytes in
    ``other_tags`` (tags from 200 in ``manufacturer_tags``).
    """

    def __init__(self, ctx: DecodeContext, texts: Texts) -> None:
        self.ctx = ctx
        self.text = texts
        self.fields: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.manufacturer: dict[int, bytes] = {}
        self.indications: list[str] = []
        self.drugs: list[dict[str, Any]] = []
        self.acq_date: dt.date | None = None
        self.acq_time: dt.time | None = None
        self.tz_minutes: int | None = None

    def read(self, tag: int, raw: bytes) -> None:
        reader = _READERS.get(tag)
        if reader is not None and len(raw) >= reader[0]:
            reader[1](self, tag, raw)
        elif tag >= 200:
            self.manufacturer[tag] = raw
        else:
            self.info.setdefault("other_tags", {})[tag] = raw

    def finish(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.drugs:
            self.info["drugs"] = self.drugs
        if self.manufacturer:
            self.info["manufacturer_tags"] = self.manufacturer
        if self.indications:
            self.fields["indications"] = tuple(self.indications)
        return self.fields, self.info

    # the readers, by tag

    def metadata_text(self, tag: int, raw: bytes) -> None:
        self.fields[_METADATA_TEXTS[tag]] = self.text(raw) or None

    def second_last_name(self, tag: int, raw: bytes) -> None:
        self.info["second_last_name"] = self.text(raw)

    def age(self, tag: int, raw: bytes) -> None:
        value, unit = u16(raw, 0), raw[2]
        self.info["age"] = (value, _AGE_UNITS.get(unit, "unspecified"))
        if 1 <= unit <= 5:
            self.fields["patient_age"] = value // _AGE_DIVISORS[unit]
        elif value:
            self.ctx.warn(f"age {value} has unknown unit code {unit}; not used")

    def date(self, raw: bytes, what: str) -> dt.date | None:
        """A 4-byte date (uint16 year, month, day); all zero or shorter: ``None``."""
        if len(raw) < 4:
            return None
        y, m, d = u16(raw, 0), raw[2], raw[3]
        if y == 0 and m == 0 and d == 0:
            return None
        try:
            return dt.date(y, m, d)
        except ValueError:
            self.ctx.warn(f"{what} {y:04d}-{m:02d}-{d:02d} is not a valid date; ignored")
            return None

    def birth_date(self, tag: int, raw: bytes) -> None:
        self.fields["patient_birth_date"] = self.date(raw, "birth date")

    def height_or_weight(self, tag: int, raw: bytes) -> None:
        value, unit = u16(raw, 0), raw[2]
        if 1 <= unit <= (3 if tag == 6 else 4):
            if value:
                if tag == 6:
                    self.fields["patient_height"] = _height_cm(value, unit)
                else:
                    self.fields["patient_weight"] = _weight_g(value, unit)
        elif value:
            self.ctx.warn(f"{'height' if tag == 6 else 'weight'} {value} has unknown unit "
                          f"code {unit}; not used")

    def sex(self, tag: int, raw: bytes) -> None:
        code = raw[0]
        if code not in (0, 1, 2, 9):
            self.ctx.warn(f"sex code {code} is not defined; treated as unknown")
        self.fields["patient_gender"] = "MALE" if code == 1 else "FEMALE" if code == 2 else None

    def race(self, tag: int, raw: bytes) -> None:
        self.info["race"] = raw[0]

    def drug(self, tag: int, raw: bytes) -> None:
        self.drugs.append({"table": raw[0], "class": raw[1], "code": raw[2],
                           "text": self.text(raw[3:])})

    def blood_pressure(self, tag: int, raw: bytes) -> None:
        self.info.setdefault("blood_pressure", {})[
            "systolic" if tag == 11 else "diastolic"] = u16(raw, 0)

    def indication(self, tag: int, raw: bytes) -> None:
        text = self.text(raw)
        if text:
            self.indications.append(text)

    def device(self, tag: int, raw: bytes) -> None:
        """Tag 14 / 15: the device identification block."""
        info: dict[str, Any]
        n = len(raw)
        if n >= 19:  # the usual block, in one unpack
            (institution, department, device_id, device_type, manufacturer_code, model,
             revision, compatibility, language, capabilities, mains) = _DEVICE.unpack_from(raw)
            info = {"institution": institution, "department": department,
                    "device_id": device_id, "device_type": device_type,
                    "manufacturer_code": manufacturer_code,
                    "model": model.split(b"\0", 1)[0].decode("latin-1").strip(),
                    "protocol_revision": revision, "compatibility_level": compatibility,
                    "language_support": language, "capabilities": capabilities,
                    "mains_frequency": mains}
        else:
            info = {}
            if n >= 8:
                info.update(institution=u16(raw, 0), department=u16(raw, 2),
                            device_id=u16(raw, 4), device_type=raw[6],
                            manufacturer_code=raw[7])
            if n >= 14:
                info["model"] = raw[8:14].split(b"\0", 1)[0].decode("latin-1").strip()
        if n > 36:
            for key, part in zip(_DEVICE_STRINGS, raw[36:].split(b"\0")):
                info[key] = self.text(part)
        self.info["acquiring_device" if tag == 14 else "analysing_device"] = info

    def info_text(self, tag: int, raw: bytes) -> None:
        self.info[_TEXT_TAGS[tag]] = self.text(raw)

    def electrode_configuration(self, tag: int, raw: bytes) -> None:
        self.info["electrode_configuration"] = tuple(raw[:2])

    def stat_code(self, tag: int, raw: bytes) -> None:
        self.info["stat_code"] = raw[0]

    def acquisition_date(self, tag: int, raw: bytes) -> None:
        self.acq_date = self.date(raw, "acquisition date")

    def acquisition_time(self, tag: int, raw: bytes) -> None:
        h, m, s = raw[0], raw[1], raw[2]
        try:
            self.acq_time = dt.time(h, m, s)
        except ValueError:
            self.ctx.warn(f"acquisition time {h:02d}:{m:02d}:{s:02d} is not valid; ignored")

    def highpass(self, tag: int, raw: bytes) -> None:
        self.info.setdefault("filters", {})["highpass_hz"] = u16(raw, 0) / 100.0

    def lowpass(self, tag: int, raw: bytes) -> None:
        self.info.setdefault("filters", {})["lowpass_hz"] = float(u16(raw, 0))

    def notch(self, tag: int, raw: bytes) -> None:
        filters = self.info.setdefault("filters", {})
        filters["notch_hz"] = _NOTCH_HZ[raw[0] & 3]  # bit 0: 60 Hz, bit 1: 50 Hz
        filters["bitmap"] = raw[0]

    def sequence_number(self, tag: int, raw: bytes) -> None:
        self.info["sequence_number"] = self.text(raw)

    def history_codes(self, tag: int, raw: bytes) -> None:
        self.info["history_codes"] = raw

    def time_zone(self, tag: int, raw: bytes) -> None:
        stored = u16(raw, 0)
        zone = _i16(stored)
        if stored != 0x7FFF:  # not given
            self.tz_minutes = zone
        n = len(raw)
        self.info["time_zone"] = {"offset_minutes": None if self.tz_minutes is None else zone,
                                  "index": u16(raw, 2) if n >= 4 else None,
                                  "description": self.text(raw[4:]) if n > 4 else ""}


_Reader = Callable[[_TagReader, int, bytes], None]
_READERS: dict[int, tuple[int, _Reader]] = {
    0: (0, _TagReader.metadata_text), 1: (0, _TagReader.metadata_text),
    2: (0, _TagReader.metadata_text), 3: (0, _TagReader.second_last_name),
    4: (3, _TagReader.age), 5: (0, _TagReader.birth_date),
    6: (3, _TagReader.height_or_weight), 7: (3, _TagReader.height_or_weight),
    8: (1, _TagReader.sex), 9: (1, _TagReader.race), 10: (3, _TagReader.drug),
    11: (2, _TagReader.blood_pressure), 12: (2, _TagReader.blood_pressure),
    13: (0, _TagReader.indication), 14: (0, _TagReader.device), 15: (0, _TagReader.device),
    **{tag: (0, _TagReader.info_text) for tag in _TEXT_TAGS},
    24: (1, _TagReader.stat_code), 25: (0, _TagReader.acquisition_date),
    26: (3, _TagReader.acquisition_time), 27: (2, _TagReader.highpass),
    28: (2, _TagReader.lowpass), 29: (1, _TagReader.notch),
    31: (0, _TagReader.sequence_number), 32: (0, _TagReader.history_codes),
    33: (0, _TagReader.electrode_configuration), 34: (2, _TagReader.time_zone),
}
"""Tag -> (least value length, reader)."""
