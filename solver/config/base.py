"""The building blocks of the case schema: the error type, the base model, fields with
units, names and table checks.

Every dimensional value of a case is given in SI units; the unit of each field is in its
description (``ssbfrac schema`` prints them all) and in its metadata, from which
:func:`solver.config.units.to_internal` converts the case in one place."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

SIDES_2D = ("left", "right", "bottom", "top")
#: names of cases, sweeps and studies become directory names: plain file names only (no
#: '.', '..', separators, hidden or over-long names)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$"
SIDES_3D = SIDES_2D + ("back", "front")


class CaseError(Exception):
    """A case file (or an override) is invalid. ``str(err)`` is the user message."""


class FieldError(ValueError):
    """A validator's error about one field below the model it validates: ``path`` is
    dotted and relative to that model (``"mesh.file"``, ``"size.1"``), ``value`` the bad
    value. The error formatter names the full field path and shows the value."""

    def __init__(self, path: str, value: Any, message: str):
        super().__init__(message)
        self.path, self.value, self.message = path, value, message


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
    assignment too (so ``--set`` cannot sneak an invalid value in). Strict types: a
    number field takes numbers only (not true/false or "1e9" strings), a true/false field
    takes true/false only (not 0/1), a whole number is not given as 3.0; no number may be
    inf or nan."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)
    _units: str = PrivateAttr(default="SI")


def _not_bool(v):
    if isinstance(v, bool):
        raise ValueError("Input should be a number, not true/false")
    return v


#: for choices among numbers (``Literal[1, 2]``): true/false would match 1/0
NotBool = BeforeValidator(_not_bool)


def zero_or_at_least(lowest: float, unit: str = "m"):
    """A validator for a value that is 0 (off) or at least ``lowest`` (a thickness or
    radius below a nanometre is not a material structure)."""

    def check(v):
        if v is not None and v != 0 and v < lowest:
            raise ValueError(f"must be 0 (none) or at least {lowest:g} {unit}")
        return v

    return AfterValidator(check)


# ----------------------------------------------------------------------------- PETSc options
#: option names: letters, digits and '_' (no leading '-', no prefix: ssbfrac adds its own)
PETSC_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,199}$")
#: options that print and exit or change PETSc globally: never per solver
PETSC_FORBIDDEN = ("help", "version", "options_left", "options_file", "options_monitor", "on_error_abort",
                   "start_in_debugger", "on_error_attach_debugger", "malloc_debug", "log_view")


def _petsc_value(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        if len(v) > 1000 or any(c in v for c in "\n\r\0"):
            raise ValueError("a PETSc option value is one line of at most 1000 characters")
        return v
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            raise ValueError("a PETSc option value must be finite")
        return v
    raise ValueError("a PETSc option value is a string, a number, true/false or empty (null)")


def _petsc_keys(options: dict) -> dict:
    if len(options) > 200:
        raise ValueError(f"{len(options)} options: at most 200")
    for k in options:
        if k.lstrip("-") in PETSC_FORBIDDEN or any(k.startswith(f + "_") for f in ("options",)):
            raise FieldError(k, options[k], f"{k!r} is not an option of a solver (it acts on PETSc as a whole)")
        if not PETSC_KEY.match(k):
            hint = f"; write {k.lstrip('-')!r}" if k.startswith("-") else ""
            raise FieldError(k, options[k], f"{k!r} is not a PETSc option name (letters, digits, '_'; "
                                            f"no leading '-' and no prefix{hint})")
    return options


#: PETSc options of one solver: ``{name: value}`` (name without '-' and prefix)
PetscOptions = Annotated[dict[str, Annotated[Any, AfterValidator(_petsc_value)]], AfterValidator(_petsc_keys)]



def check_table(xs: list[float], ys: list[float], name: str) -> None:
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but {name} has {len(ys)}")
    if any(not 0.0 <= v <= 1.0 for v in xs):
        raise ValueError(f"x = {xs}: lithium fractions must lie in [0, 1]")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"x = {xs}: must increase strictly")
    if any(not math.isfinite(v) for v in ys):
        raise ValueError(f"{name} = {ys}: values must be finite")
