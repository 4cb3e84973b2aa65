"""Voltage units as files write them, and conversion between them.

Files spell the same unit several ways (``uV``, ``µV``, ``μV``, ``microvolt``);
:func:`volts_per` reads all of them, :func:`conversion_factor` gives the
factor from one voltage unit to another, and anything that is not a voltage
(``degC``, ``%``, an empty field) raises :class:`UnitError` instead of
being scaled as if it were.
"""

from __future__ import annotations

from .errors import UnitError

__all__ = ["UnitError", "VOLTAGE_UNITS", "volts_per", "conversion_factor"]




VOLTAGE_UNITS: dict[str, float] = {"nV": 1e-9, "uV": 1e-6, "mV": 1e-3, "V": 1.0}
"""The canonical voltage units and their size in volts."""

_SPELLINGS: dict[str, str] = {
    "nv": "nV", "nanovolt": "nV", "nanovolts": "nV",
    "uv": "uV", "µv": "uV", "μv": "uV", "microvolt": "uV", "microvolts": "uV",
    "mv": "mV", "millivolt": "mV", "millivolts": "mV",
    "v": "V", "volt": "V", "volts": "V",
}


def canonical_unit(units: str) -> str | None:
    """``"nV"``, ``"uV"``, ``"mV"`` or ``"V"`` for any spelling of those, else ``None``."""
    return _SPELLINGS.get(units.strip().lower())


def volts_per(units: str) -> float:
    """Size of one ``units`` in volts.

    :param units: a voltage unit in any common spelling (``"uV"``, ``"µV"``, ``"mV"``…).
    :returns: the size in volts (``1e-6`` for ``"uV"``).
    :raises UnitError: ``units`` is not a voltage unit.
    """
    name = canonical_unit(units)
    if name is None:
        raise UnitError(f"{units!r} is not a voltage unit (known: "
                        f"{', '.join(VOLTAGE_UNITS)})", field="units")
    return VOLTAGE_UNITS[name]


def conversion_factor(from_units: str, to_units: str) -> float:
    """The factor that turns values in ``from_units`` into ``to_units``.

    :param from_units: the units values are in (a signal's ``units``).
    :param to_units: the units wanted.
    :returns: the multiplier (``1000.0`` from ``"mV"`` to ``"uV"``).
    :raises UnitError: either is not a voltage unit (an empty ``from_units``
        means the file did not say).
    """
    if not from_units.strip():
        raise UnitError(f"cannot convert to {to_units!r}: the signal's units are not "
                        "given in the file", field="units")
    return volts_per(from_units) / volts_per(to_units)
