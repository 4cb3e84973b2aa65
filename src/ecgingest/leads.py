"""Standard lead names: what a file called a lead, mapped to the name ECG readers use.

Files name the same lead in many ways (``i``, ``Lead I``, ``ECG I``,
``MDC_ECG_LEAD_I``, ``DI``); :func:`standard_label` gives the one standard
spelling, or ``None`` when the name is not a known ECG lead. The table:

===========================  ===========================================================
standard name                written in files as (case-insensitive, besides the name)
===========================  ===========================================================
``I`` ``II`` ``III``         ``1`` ``2`` ``3``, ``DI`` ``DII`` ``DIII``, ``lead I``,
                             ``ECG I``, ``EKG-II``, ``MDC_ECG_LEAD_I``
``aVR`` ``aVL`` ``aVF``      ``avr``, ``AVR``, ``lead aVR``, ``MDC_ECG_LEAD_AVR``
``V1`` … ``V9``              ``v1``, ``C1`` … ``C6`` (IEC names), ``ECG V1``,
                             ``MDC_ECG_LEAD_V1``
``V3R`` … ``V9R``            ``v4r``, ``MDC_ECG_LEAD_V4R``
``X`` ``Y`` ``Z``            Frank leads, ``MDC_ECG_LEAD_X``
``MLI`` ``MLII`` ``MLIII``   modified limb leads of ambulatory recordings (``ML2``)
``CM5`` ``CC5`` ``CM1`` …    Holter bipolar chest leads (``CM1``–``CM6``, ``CC5``,
                             ``CS5``), kept as written
``ECG1`` ``ECG2`` …          numbered Holter channels (``ECG 1``, ``ECG_1``), kept
===========================  ===========================================================

Prefixes ``ECG``, ``EKG``, ``Lead`` and ``MDC_ECG_LEAD_`` followed by a space,
``_`` or ``-`` are dropped before the lookup; anything else (``EEG Fpz-Cz``,
``Resp``, ``V1-V2``) is unknown.
"""

from __future__ import annotations

import functools
import re

__all__ = ["STANDARD_LEADS", "TWELVE_LEADS", "standard_label"]

TWELVE_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                                 "V1", "V2", "V3", "V4", "V5", "V6")
"""The standard 12 leads in their conventional order."""

_EXTRA = (tuple(f"V{k}" for k in range(7, 10)) + tuple(f"V{k}R" for k in range(3, 10))
          + ("X", "Y", "Z", "MLI", "MLII", "MLIII")
          + tuple(f"CM{k}" for k in range(1, 7)) + ("CC5", "CS5")
          + tuple(f"ECG{k}" for k in range(1, 13)))

STANDARD_LEADS: tuple[str, ...] = TWELVE_LEADS + _EXTRA
"""Every standard name :func:`standard_label` can return."""

_BY_KEY: dict[str, str] = {name.upper(): name for name in STANDARD_LEADS}
_BY_KEY.update({
    "1": "I", "2": "II", "3": "III", "DI": "I", "DII": "II", "DIII": "III",
    "ML1": "MLI", "ML2": "MLII", "ML3": "MLIII",
    **{f"C{k}": f"V{k}" for k in range(1, 7)},
})

_PREFIX = re.compile(r"^(?:MDC_ECG_LEAD_|(?:ECG|EKG|LEAD)[\s_\-]*)", re.I)
_NUMBERED = re.compile(r"^(?:ECG|EKG)[\s_\-]*(\d{1,2})$", re.I)


@functools.lru_cache(maxsize=1024)
def standard_label(label: str) -> str | None:
    """The standard name of the lead a file calls ``label``, or ``None`` if unknown.

    :param label: the lead or channel name as stored in the file.
    :returns: one of :data:`STANDARD_LEADS` (``"i"`` → ``"I"``, ``"avr"`` →
        ``"aVR"``, ``"MDC_ECG_LEAD_II"`` → ``"II"``, ``"CM5"`` → ``"CM5"``), or
        ``None`` for a name that is not a known ECG lead.

    >>> standard_label("avr"), standard_label("MDC_ECG_LEAD_V1"), standard_label("Resp")
    ('aVR', 'V1', None)
    """
    text = label.strip()
    numbered = _NUMBERED.match(text)
    if numbered is not None:  # Holter channel numbers: ECG1, "ECG 2", EKG_3
        return _BY_KEY.get(f"ECG{int(numbered.group(1))}")
    key = text.upper()
    if key in _BY_KEY:
        return _BY_KEY[key]
    core = _PREFIX.sub("", text, count=1).strip().upper()
    return _BY_KEY.get(core) if core and core != key else None
