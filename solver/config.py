"""Case files: the pydantic schema, loading, ``--set`` overrides and clear errors.

A case file is YAML. Every dimensional value is given in SI units; the unit of each
field is in its description (``ssbfrac schema`` prints them all) and in its metadata,
from which :func:`solver.units.to_internal` converts the case in one place.

Errors never show a traceback: :class:`CaseError` carries lines of the form
``<file>: <field.path> = <bad value>: <what is allowed>``.
"""

from __future__ import annotations

import copy
import re
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

SIDES_2D = ("left", "right", "bottom", "top")
SIDES_3D = SIDES_2D + ("back", "front")


class CaseError(Exception):
    """A case file (or an override) is invalid. ``str(err)`` is the user message."""


def quantity(default: Any = ..., *, unit: str, description: str, **constraints) -> Any:
    """A pydantic field that carries its SI unit (converted by solver.units)."""
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


# --------------------------------------------------------------------------- geometry
class ParticleSpec(Schema):
    """Active-material particles packed in the solid electrolyte."""

    shape: Literal["circle", "polygon"] = Field(
        "polygon", description="particle shape: circle, or a convex regular polygon with sharp corners"
    )
    radius: float = quantity(3.0e-6, unit="m", description="particle radius (circumradius of polygons)", gt=0)
    sides: int = Field(6, ge=3, le=24, description="number of polygon corners (shape: polygon)")
    volume_fraction: float = Field(
        0.4, gt=0, lt=0.9, description="target area (2D) / volume (3D) fraction of active material in the cathode"
    )
    min_gap: float = quantity(
        0.3e-6, unit="m", description="minimum solid-electrolyte ligament between two particles", ge=0
    )
    boundary_gap: float = quantity(
        0.3e-6, unit="m", description="minimum distance between a particle and the outer sides", ge=0
    )
    orientation: Union[Literal["random"], float] = Field(
        "random", description="polygon orientation: 'random' or a fixed angle in degrees"
    )
    seed: int = Field(1, ge=0, description="random seed of the packing (same seed, same microstructure)")
    max_attempts: int = Field(
        200000, ge=100, description="random placement attempts before the packing gives up"
    )


class MeshSpec(Schema):
    """Element sizes of the Gmsh mesh."""

    size: float = quantity(1.0e-6, unit="m", description="element size far from interfaces", gt=0)
    interface_size: float = quantity(
        0.3e-6, unit="m", description="element size on the particle/electrolyte interfaces and corners", gt=0
    )
    transition: float = quantity(
        2.0e-6, unit="m", description="distance over which the size grows from interface_size to size", gt=0
    )
    order: Literal[1, 2] = Field(1, description="geometric order of the mesh (1: straight, 2: curved cells)")

    @model_validator(mode="after")
    def _sizes(self):
        if self.interface_size > self.size:
            raise ValueError(
                f"interface_size ({self.interface_size:g}) must not exceed size ({self.size:g})"
            )
        return self


class Geometry(Schema):
    """A rectangular (box in 3D) composite-cathode domain. x runs from the separator/anode
    side (x = 0, 'left') to the current collector (x = L, 'right')."""

    size: list[float] = quantity(
        [30e-6, 30e-6],
        unit="m",
        description="domain size [L_x (cathode thickness), L_y (, L_z)]; one entry per dimension",
        min_length=2,
        max_length=3,
    )
    particles: ParticleSpec = ParticleSpec()
    mesh: MeshSpec = MeshSpec()

    @model_validator(mode="after")
    def _positive(self):
        for i, s in enumerate(self.size):
            if not (s > 0 and math.isfinite(s)):
                raise ValueError(f"size[{i}] = {s!r} must be a positive length in metres")
        p = self.particles
        need = 2 * (p.radius + p.boundary_gap)
        if min(self.size) < need:
            raise ValueError(
                f"a particle of radius {p.radius:g} m with boundary_gap {p.boundary_gap:g} m needs "
                f"sides of at least {need:g} m; size is {self.size}"
            )
        if self.mesh.interface_size > p.radius:
            raise ValueError(
                f"mesh.interface_size ({self.mesh.interface_size:g} m) is larger than the particle "
                f"radius ({p.radius:g} m): the particles would not be resolved"
            )
        return self


# --------------------------------------------------------------------------- materials
class FailureSpec(Schema):
    """Fracture properties of a phase. Give any two of: a toughness (Gc or K_Ic), the
    regularisation length ell, the tensile strength, or the critical strain; the rest
    follows from the homogeneous phase-field solution (see docs/model.md)."""

    Gc: float | None = quantity(None, unit="J/m^2", description="fracture toughness (critical energy release rate)", gt=0)
    K_Ic: float | None = quantity(None, unit="Pa*m^0.5", description="mode-I fracture toughness (Gc = K_Ic^2 (1-nu^2)/E)", gt=0)
    ell: float | None = quantity(None, unit="m", description="phase-field regularisation length", gt=0)
    strength: float | None = quantity(None, unit="Pa", description="tensile strength (homogeneous nucleation stress)", gt=0)
    critical_strain: float | None = Field(None, gt=0, lt=1, description="tensile strain at nucleation, strength/E [-]")

    @model_validator(mode="after")
    def _two_of_them(self):
        if self.Gc is not None and self.K_Ic is not None:
            raise ValueError("give either Gc or K_Ic, not both")
        given = [
            n for n in ("toughness", "ell", "strength", "critical_strain")
            if (getattr(self, n) if n != "toughness" else (self.Gc if self.Gc is not None else self.K_Ic)) is not None
        ]
        if "strength" in given and "critical_strain" in given:
            raise ValueError("strength and critical_strain say the same thing (strength = E * critical_strain): give one")
        if len(given) != 2:
            raise ValueError(
                "give exactly two of: a toughness (Gc or K_Ic), ell, strength, critical_strain; "
                f"got {given or 'none'}"
            )
        return self


class Material(Schema):
    """Isotropic linear-elastic phase."""

    name: str = Field("", description="material name, for the record")
    E: float = quantity(..., unit="Pa", description="Young's modulus", gt=0, lt=1e13)
    nu: float = Field(..., gt=-1.0, lt=0.5, description="Poisson's ratio, -1 < nu < 0.5 [-]")
    source: str = Field("", description="citation of the values")
    fracture: FailureSpec | None = Field(None, description="failure properties (needed where damage is allowed)")


class ActiveMaterial(Material):
    expansion: float = Field(
        0.0,
        gt=-0.5,
        lt=3.0,
        description=(
            "volumetric strain of the particle from lithium fraction x = 0 to x = 1 (Vegard, linear); "
            "positive: swells on lithiation [-]"
        ),
    )


class Materials(Schema):
    active: ActiveMaterial = Field(..., description="active-material particles (AM)")
    electrolyte: Material = Field(..., description="solid-electrolyte matrix (SE)")


# --------------------------------------------------------------------------- mechanics
class SideBC(Schema):
    """Mechanical condition on one side; a bare word (``roller``) means ``{type: roller}``."""

    type: Literal["free", "roller", "clamped", "pressure"] = Field(
        ..., description="free (traction-free), roller (zero normal displacement), clamped, or pressure"
    )
    value: float = quantity(0.0, unit="Pa", description="applied pressure (type: pressure), compressive positive", ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, data):
        return {"type": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _value_only_for_pressure(self):
        if self.type != "pressure" and self.value != 0.0:
            raise ValueError(f"value is only used with type: pressure (type is {self.type})")
        return self

DEFAULT_PETSC_ELASTICITY: dict[str, Any] = {
    "ksp_type": "cg",
    "pc_type": "gamg",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "pc_gamg_coarse_eq_limit": 1000,
    "mg_levels_ksp_type": "chebyshev",
    "mg_levels_pc_type": "jacobi",
}


class Mechanics(Schema):
    """Quasi-static small-strain elasticity; 2D is plane strain with the full 3D eigenstrain."""

    boundary: dict[str, SideBC] = Field(
        default_factory=lambda: {
            "left": SideBC(type="roller"),
            "right": SideBC(type="pressure", value=5e6),
            "bottom": SideBC(type="roller"),
            "top": SideBC(type="roller"),
        },
        description=(
            "boundary condition per side (left: separator side x = 0, right: collector side x = L_x, "
            "bottom/top: y, back/front: z in 3D); sides not given default to roller"
        ),
    )
    petsc_options: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=lambda: dict(DEFAULT_PETSC_ELASTICITY),
        description="PETSc options of the elasticity solve (override any; merged with the defaults)",
    )

    @model_validator(mode="after")
    def _sides(self):
        bad = sorted(set(self.boundary) - set(SIDES_3D))
        if bad:
            raise ValueError(f"unknown side(s) {bad}; allowed: {list(SIDES_3D)}")
        return self

    def side(self, name: str) -> SideBC:
        return self.boundary.get(name) or SideBC(type="roller")


# --------------------------------------------------------------------------- loading
class PrescribedLithiation(Schema):
    """Uniform lithiation of every particle, prescribed along a path of lithium fractions."""

    type: Literal["prescribed"] = "prescribed"
    path: list[float] = Field(
        [0.0, 1.0], min_length=2, description="lithium fraction x at the start and at each turning point, 0..1 [-]"
    )
    steps: int = Field(40, ge=1, le=100000, description="load steps per segment of the path (initial size)")
    x_ref: float | None = Field(None, ge=0, le=1, description="stress-free lithium fraction [-] (default: path[0])")
    duration: float = quantity(3600.0, unit="s", description="time per segment (for the time column only)", gt=0)

    @field_validator("path")
    @classmethod
    def _path(cls, path: list[float]) -> list[float]:
        for i, x in enumerate(path):
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"path[{i}] = {x!r}: lithium fractions must lie in [0, 1]")
        for i in range(len(path) - 1):
            if path[i] == path[i + 1]:
                raise ValueError(f"path[{i}] and path[{i + 1}] are equal: every segment must change x")
        return path


def _loading_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "prescribed")
    return getattr(value, "type", "prescribed")


Loading = Annotated[
    Union[Annotated[PrescribedLithiation, Tag("prescribed")]],
    Discriminator(_loading_kind),
]


# --------------------------------------------------------------------------- fracture
DEFAULT_PETSC_DAMAGE: dict[str, Any] = {}


class SchemeSpec(Schema):
    """How the coupled displacement/damage problem of a load step is solved."""

    type: Literal["staggered", "anderson", "overrelaxed"] = Field(
        "anderson",
        description=(
            "staggered: plain alternate minimisation (reference); anderson: alternate minimisation with "
            "Anderson acceleration of the damage iterates; overrelaxed: over-relaxed alternate minimisation"
        ),
    )
    tolerance: float = Field(1e-4, gt=0, lt=1, description="convergence: max |d_k - d_(k-1)| over the mesh [-]")
    max_iterations: int = Field(100, ge=1, le=100000, description="iteration cap per load step (the step is cut when hit)")
    depth: int = Field(5, ge=1, le=50, description="Anderson: number of previous iterates used")
    relaxation: float = Field(1.5, gt=0, lt=2, description="overrelaxed: factor omega (1 = plain staggered)")


class AdaptiveSpec(Schema):
    """Adaptive load stepping: cut on failure or brutal crack growth, grow when easy."""

    enabled: bool = Field(True, description="adapt the load step")
    max_crack_growth: float | None = quantity(
        None, unit="m", description="largest regularised crack-length growth in one step (default: 10 ell)", gt=0
    )
    min_step_fraction: float = Field(
        1.0 / 64.0, gt=0, le=1, description="smallest step, as a fraction of the initial step"
    )
    max_step_fraction: float = Field(1.0, gt=0, le=16, description="largest step, as a fraction of the initial step")
    cut_factor: float = Field(0.5, gt=0, lt=1, description="step factor after a rejected step")
    growth_factor: float = Field(1.5, ge=1, le=4, description="step factor after an easy step")
    easy_iterations: int = Field(8, ge=1, description="a step that converged in at most this many iterations is easy")


class InterfaceBand(Schema):
    """A weaker band of electrolyte along the particle surfaces (debonding)."""

    width: float = quantity(..., unit="m", description="band width measured from the particle surface", gt=0)
    Gc: float = quantity(..., unit="J/m^2", description="toughness inside the band", gt=0)


class Fracture(Schema):
    """Phase-field fracture (see docs/model.md)."""

    enabled: bool = Field(False, description="solve for damage")
    model: Literal["AT1", "AT2"] = Field("AT1", description="AT1 (elastic phase, strength) or AT2")
    split: Literal["none", "amor", "spectral"] = Field(
        "spectral", description="which part of the elastic energy is degraded by damage"
    )
    driving_force: Literal["rankine", "energy"] = Field(
        "rankine",
        description="rankine: <sigma_1>^2/(2E) of the undamaged stress (tension only); energy: psi_plus of the split",
    )
    residual_stiffness: float = Field(1e-6, ge=0, lt=0.1, description="k_res in (1-d)^2 + k_res [-]")
    irreversibility: Literal["bounds", "history"] = Field(
        "bounds", description="bounds: d >= d_previous (SNES vinewtonrsls); history: Miehe history field"
    )
    phases: list[Literal["electrolyte", "active"]] = Field(
        ["electrolyte"], min_length=1, description="phases where damage is allowed"
    )
    interface: InterfaceBand | None = Field(None, description="optional weaker band along the AM/SE interfaces")
    scheme: SchemeSpec = SchemeSpec()
    adaptive: AdaptiveSpec = AdaptiveSpec()
    petsc_options: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=dict, description="PETSc options of the damage solve (merged with the defaults)"
    )


# --------------------------------------------------------------------------- output
class Output(Schema):
    fields_every: int = Field(1, ge=0, description="write fields every N accepted steps (0: only the last)")
    progress: Literal["auto", "bar", "lines", "none"] = Field(
        "auto", description="progress display: bar on a terminal, lines in batch jobs (auto)"
    )


# --------------------------------------------------------------------------- the case
class Case(Schema):
    """A complete ssbfrac case."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$", description="case name (used for directories)")
    description: str = Field("", description="free text")
    dimension: Literal[2, 3] = Field(2, description="2 (plane strain) or 3")
    geometry: Geometry = Geometry()
    materials: Materials
    mechanics: Mechanics = Mechanics()
    loading: Loading = PrescribedLithiation()
    fracture: Fracture = Fracture()
    output: Output = Output()

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.geometry.size) != self.dimension:
            raise ValueError(
                f"geometry.size has {len(self.geometry.size)} entries but dimension is {self.dimension}"
            )
        if self.dimension == 2:
            extra = sorted(set(self.mechanics.boundary) - set(SIDES_2D))
            if extra:
                raise ValueError(f"mechanics.boundary: sides {extra} exist only in 3D")
        sides = SIDES_2D if self.dimension == 2 else SIDES_3D
        kinds = {s: self.mechanics.side(s).type for s in sides}
        if "clamped" not in kinds.values():
            axes = {"x": ("left", "right"), "y": ("bottom", "top"), "z": ("back", "front")}
            for axis, (a, b) in list(axes.items())[: self.dimension]:
                if kinds[a] != "roller" and kinds[b] != "roller":
                    raise ValueError(
                        f"mechanics.boundary: nothing holds the {axis} direction (a rigid motion is free); "
                        f"make {a} or {b} a roller, or clamp a side"
                    )
        if self.fracture.enabled:
            for phase in self.fracture.phases:
                if getattr(self.materials, phase).fracture is None:
                    raise ValueError(
                        f"fracture.phases contains {phase!r} but materials.{phase}.fracture is not given"
                    )
        return self


# --------------------------------------------------------------------------- loading files
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9`` / ``-2.5e-6`` as floats (YAML 1.2 style);
    PyYAML's YAML 1.1 rules would read them as strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _format_value(v: Any) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names allowed at the parent of ``loc`` (for 'unknown key' messages)."""
    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            # union members show up in loc as their tag: skip them
            continue
        ann = fields[part].annotation
        cls = _first_model(ann)
        if cls is None:
            return None
    fields = getattr(cls, "model_fields", None)
    return sorted(fields) if fields else None


def _first_model(ann: Any):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        m = _first_model(arg)
        if m is not None:
            return m
    meta = getattr(ann, "__metadata__", None)
    if meta is not None:
        return _first_model(ann.__origin__)
    return None


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("prescribed",))
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(Case, loc)
            msg = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif e["type"] == "missing":
            lines.append(f"{source}: {path}: required field is missing")
            continue
        lines.append(f"{source}: {path} = {_format_value(e.get('input'))}: {msg}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (numbers, lists, booleans)."""
    if "=" not in text:
        raise CaseError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise CaseError(f"--set {text!r}: empty key")
    try:
        value = yaml_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as exc:
        raise CaseError(f"--set {text!r}: value is not valid YAML ({exc})") from None
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of the raw case dict with each ``key.path=value`` applied.
    Missing intermediate sections are created (validation then decides)."""
    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for i, p in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not isinstance(p, int) or p >= len(node):
                    raise CaseError(f"--set {text!r}: {'.'.join(map(str, parts[:i + 1]))} is not an index of the list")
                node = node[p]
                continue
            if not isinstance(node, dict):
                raise CaseError(f"--set {text!r}: {'.'.join(map(str, parts[:i]))} is not a section")
            nxt = node.get(p)
            if not isinstance(nxt, (dict, list)):
                if isinstance(parts[i + 1], int):
                    where = ".".join(map(str, parts[: i + 1]))
                    raise CaseError(
                        f"--set {text!r}: {where} is not a list in the case file; set the whole list, "
                        f"e.g. --set {where}=[...]"
                    )
                # e.g. boundary.right: roller, then --set mechanics.boundary.right.value=...
                nxt = {"type": nxt} if isinstance(nxt, str) else {}
                node[p] = nxt
            node = nxt
        last = parts[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise CaseError(f"--set {text!r}: index {last} is out of range")
            node[last] = value
        else:
            node[last] = value
    return data


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.exists():
        raise CaseError(f"{p}: case file not found")
    if p.is_dir():
        raise CaseError(f"{p}: is a directory, expected a YAML case file")
    try:
        data = yaml_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(f"{p}: malformed YAML{where}: {problem}") from None
    if data is None:
        raise CaseError(f"{p}: the file is empty")
    if not isinstance(data, dict):
        raise CaseError(f"{p}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def validate_case(data: dict, source: str = "<case>") -> Case:
    try:
        return Case.model_validate(data)
    except ValidationError as err:
        raise CaseError(format_validation_error(err, source)) from None


def load_case(path: str | Path, overrides: list[str] | None = None) -> Case:
    """Read, override and validate a case file. Raises :class:`CaseError`."""
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return validate_case(data, str(path))


def case_to_dict(case: Case) -> dict:
    """The resolved case as plain data (SI units), as saved in run directories."""
    return case.model_dump(mode="json")


def schema_reference() -> str:
    """A plain-text reference of every case field (``ssbfrac schema``)."""
    out: list[str] = []

    def walk(model: type[BaseModel], prefix: str):
        for name, f in model.model_fields.items():
            path = f"{prefix}{name}"
            sub = _first_model(f.annotation)
            if sub is not None and sub is not model:
                out.append(f"{path}: ({sub.__name__}) {(sub.__doc__ or '').strip().splitlines()[0] if sub.__doc__ else ''}")
                walk(sub, path + ".")
            else:
                default = "required" if f.is_required() else f"default {f.get_default(call_default_factory=True)!r}"
                out.append(f"{path}: {f.description or ''} ({default})")

    walk(Case, "")
    return "\n".join(out)
