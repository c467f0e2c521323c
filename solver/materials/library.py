"""The named material sets shipped with ssbfrac: one YAML file per material in
``solver/materials/data/``, values in SI units, each with its source, the measurement
method and, where the literature disagrees, a range.

A file::

    name: li6ps5cl
    class: sulfide              # sulfide | oxide | polymer | halide | active | coating
    description: Argyrodite Li6PS5Cl
    properties:
      E: {value: 22.1e9, unit: Pa, range: [16.6e9, 30.1e9], method: ..., source: "... doi:...", note: ...}
      strength: {value: null, unit: Pa, note: no measurement found}     # missing: said so
      ...

A property whose ``value`` is null is missing: the literature read for the set does not
give it, and a case that needs it must give it itself (:mod:`solver.materials.resolve`).
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATA = Path(__file__).resolve().parent / "data"
CLASSES = ("sulfide", "oxide", "polymer", "halide", "active", "coating")
#: the SI unit of every property a set may hold
UNITS = {"E": "Pa", "nu": "-", "K_Ic": "Pa*m^0.5", "Gc": "J/m^2", "strength": "Pa", "kappa": "S/m",
         "density": "kg/m^3", "expansion": "-", "D": "m^2/s", "c_max": "mol/m^3", "ocv": "V"}
#: properties every set lists (a value or null), by class
REQUIRED = {
    "electrolyte": ("E", "nu", "K_Ic", "strength", "kappa"),
    "active": ("E", "nu", "expansion", "D", "c_max", "ocv"),
    "coating": ("E", "nu", "kappa"),
}
DOI = re.compile(r"doi:\s*10\.\d{4,9}/\S+", re.IGNORECASE)


class MaterialError(Exception):
    """A material set is unknown or its file is malformed (the message says which)."""


class Property(BaseModel):
    """One property of a set: value in SI (or null: missing) with its source."""

    model_config = ConfigDict(extra="forbid")

    value: float | str | None = None
    unit: str
    range: list[float] | None = Field(None, min_length=2, max_length=2)
    method: str = ""
    source: str = ""
    note: str = ""
    x_range: list[float] | None = Field(None, min_length=2, max_length=2)
    x: list[float] | None = None  # ocv: lithium fractions of the tabulated curve
    U: list[float] | None = None  # ocv: open-circuit voltages there (V)
    curve: str | None = None  # ocv: the name of the same curve in solver/physics/electrochemistry/ocv.py

    @model_validator(mode="after")
    def _sourced(self):
        if self.value is not None:
            if len(self.source.strip()) < 20:
                raise ValueError(f"value {self.value!r} has no source (authors, journal or book, year; DOI)")
            if isinstance(self.value, float) and not math.isfinite(self.value):
                raise ValueError(f"value {self.value!r} is not finite")
        if self.range is not None and not self.range[0] <= self.range[1]:
            raise ValueError(f"range {self.range} is not [low, high]")
        if (self.x is None) != (self.U is None):
            raise ValueError("a tabulated curve needs both x and U")
        return self

    @property
    def missing(self) -> bool:
        return self.value is None

    @property
    def doi(self) -> str | None:
        """The DOI of the source, when it names one."""
        m = DOI.search(self.source)
        return m.group(0).split(":", 1)[1].strip().rstrip(".,;)") if m else None


class ExpansionTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: list[float]
    strain: list[float]
    note: str = ""


class MaterialSet(BaseModel):
    """A named, cited material."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    class_: Literal["sulfide", "oxide", "polymer", "halide", "active", "coating"] = Field(alias="class")
    description: str
    properties: dict[str, Property]
    expansion_table: ExpansionTable | None = None

    @model_validator(mode="after")
    def _complete(self):
        kind = "active" if self.class_ == "active" else "coating" if self.class_ == "coating" else "electrolyte"
        absent = [p for p in REQUIRED[kind] if p not in self.properties]
        if absent:
            raise ValueError(f"properties {absent} are not listed (a missing value is listed with value: null)")
        for key, prop in self.properties.items():
            if key not in UNITS:
                raise ValueError(f"unknown property {key!r}; known: {', '.join(UNITS)}")
            if prop.unit != UNITS[key]:
                raise ValueError(f"{key}: unit {prop.unit!r}, expected {UNITS[key]!r} (SI)")
        return self

    def value(self, key: str):
        """The value of a property (None when missing or not listed)."""
        prop = self.properties.get(key)
        return None if prop is None else prop.value

    @property
    def path(self) -> Path:
        return DATA / f"{self.name}.yaml"

    def as_json(self) -> dict[str, Any]:
        """Plain data: name, class, description, and per property its value, unit, range,
        method and source (the form of ``ssbfrac materials --json``)."""
        props = {k: p.model_dump(exclude_none=True) for k, p in self.properties.items()}
        return {"name": self.name, "class": self.class_, "description": self.description,
                "values": {k: p.value for k, p in self.properties.items()},
                "units": {k: p.unit for k, p in self.properties.items()},
                "source": {k: p.source for k, p in self.properties.items() if p.source},
                "properties": props}


def names() -> list[str]:
    """The names of every shipped set."""
    return sorted(p.stem for p in DATA.glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def load(name: str) -> MaterialSet:
    """The set ``name`` (a file of ``solver/materials/data``); MaterialError otherwise."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name) or not (DATA / f"{name}.yaml").is_file():
        raise MaterialError(f"unknown material {name!r}; known: {', '.join(names())} (ssbfrac materials lists them)")
    path = DATA / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        mat = MaterialSet.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise MaterialError(f"{path}: malformed material set: {exc}") from None
    if mat.name != name:
        raise MaterialError(f"{path}: the file holds material {mat.name!r}, expected {name!r}")
    return mat


def library() -> list[MaterialSet]:
    """Every shipped set, by name."""
    return [load(n) for n in names()]
