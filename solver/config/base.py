"""The building blocks of the case schema: the error type, the base model, fields with
units, names and table checks.

Every dimensional value of a case is given in SI units; the unit of each field is in its
description (``ssbfrac schema`` prints them all) and in its metadata, from which
:func:`solver.config.units.to_internal` converts the case in one place."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

SIDES_2D = ("left", "right", "bottom", "top")
#: names of cases, sweeps and studies become directory names: plain file names only (no
#: '.', '..', separators, hidden or over-long names)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$"
SIDES_3D = SIDES_2D + ("back", "front")


class CaseError(Exception):
    """A case file (or an override) is invalid. ``str(err)`` is the user message."""


def quantity(default: Any = ..., *, unit: str, description: str, **constraints) -> Any:
    """A pydantic field that carries its SI unit (converted by solver.config.units)."""
    return Field(
        default,
        description=f"{description} [{unit}]",
        json_schema_extra={"unit": unit},
        **constraints,
    )


class Schema(BaseModel):
    """Base of every case section: unknown keys are errors, values are validated on
    assignment too (so ``--set`` cannot sneak an invalid value in)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    _units: str = PrivateAttr(default="SI")



def check_table(xs: list[float], ys: list[float], name: str) -> None:
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but {name} has {len(ys)}")
    if any(not 0.0 <= v <= 1.0 for v in xs):
        raise ValueError(f"x = {xs}: lithium fractions must lie in [0, 1]")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"x = {xs}: must increase strictly")
    if any(not math.isfinite(v) for v in ys):
        raise ValueError(f"{name} = {ys}: values must be finite")
