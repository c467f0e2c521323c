"""The internal unit system and the one place where SI input is converted to it.

Case files are written in SI units (metres, pascals, J/m^2, ...). The finite-element
code works in a scaled system that keeps the numbers of a micro-structure problem
near one:

=================  ===========  =========================================
quantity           internal     1 SI unit equals
=================  ===========  =========================================
length             um           1e6 um
stress, modulus    GPa          1e-9 GPa
energy / area      GPa*um       1e-3 GPa*um   (1 J/m^2 = 1e-3 kJ/m^2)
K_Ic               GPa*um^0.5   1 GPa*um^0.5  (1 MPa*m^0.5)
time               s            1 s
diffusivity        um^2/s       1e12 um^2/s
conductivity       S/um         1e-6 S/um
current density    A/um^2       1e-12 A/um^2
concentration      mol/um^3     1e-18 mol/um^3
area resistance    Ohm*um^2     1e12 Ohm*um^2
=================  ===========  =========================================

Current is in A and potential in V (so conductivity S/um = A/(V um), and a 2D current is
in A per um of thickness); temperature in K.

Every case field that carries a unit declares it (``Field(..., json_schema_extra=
{"unit": "m"})``, see :func:`quantity` in :mod:`solver.config`); :func:`to_internal`
walks a validated case and scales every such field by :data:`SCALE`. Nothing else
in the code converts units.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

#: factor that turns a value in the SI unit (the key) into the internal unit
SCALE: dict[str, float] = {
    "m": 1e6,
    "Pa": 1e-9,
    "J/m^2": 1e-3,
    "Pa*m^0.5": 1e-9 * math.sqrt(1e6),
    "s": 1.0,
    "m^2/s": 1e12,
    "S/m": 1e-6,
    "A/m^2": 1e-12,
    "mol/m^3": 1e-18,
    "m^3/mol": 1e18,
    "V": 1.0,
    "K": 1.0,
    "Ohm*m^2": 1e12,
    "1": 1.0,
}

#: the internal unit of each SI unit, for labels and documentation
INTERNAL_NAME: dict[str, str] = {
    "m": "um",
    "Pa": "GPa",
    "J/m^2": "GPa*um",
    "Pa*m^0.5": "GPa*um^0.5",
    "s": "s",
    "m^2/s": "um^2/s",
    "S/m": "S/um",
    "A/m^2": "A/um^2",
    "mol/m^3": "mol/um^3",
    "m^3/mol": "um^3/mol",
    "V": "V",
    "K": "K",
    "Ohm*m^2": "Ohm*um^2",
    "1": "-",
}

# Internal -> SI factors used when results are reported in SI units.
GPA_TO_PA = 1e9
UM_TO_M = 1e-6
ENERGY_2D_TO_J_PER_M = 1e-9 / 1e-6  # GPa*um^3 per um thickness -> J/m
GPA_UM3_TO_J = 1e-9  # GPa*um^3 -> J (e.g. partial molar volume um^3/mol times stress GPa -> J/mol)
FORCE_2D_TO_N_PER_M = 1e3  # GPa*um (a 2D force, per um of thickness) -> N per m of thickness
FORCE_3D_TO_N = 1e-3  # GPa*um^2 -> N


def _convert(value, factor: float):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value * factor
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, factor) for v in value)
    return value


def to_internal(model: BaseModel) -> BaseModel:
    """Return a copy of a validated case (or sub-model) in internal units.

    Every field whose metadata names a unit is multiplied by ``SCALE[unit]``;
    nested models are converted recursively. The copy is marked so that code which
    needs internal units can check it (:func:`is_internal`). Models must declare a
    private attribute ``_units`` (see ``solver.config.Schema``).
    """
    updates = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        unit = extra.get("unit")
        if unit is not None:
            updates[name] = _convert(value, SCALE[unit])
        elif isinstance(value, BaseModel):
            updates[name] = to_internal(value)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], BaseModel):
            updates[name] = type(value)(to_internal(v) for v in value)
        elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
            updates[name] = {k: to_internal(v) for k, v in value.items()}
    copy = model.model_copy(update=updates)
    copy._units = "internal"
    return copy


def is_internal(model: BaseModel) -> bool:
    """True for a model returned by :func:`to_internal`."""
    return getattr(model, "_units", "SI") == "internal"
