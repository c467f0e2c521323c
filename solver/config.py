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

import numpy as np
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
#: names of cases, sweeps and studies become directory names: plain file names only (no
#: '.', '..', separators, hidden or over-long names)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$"
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
SHAPES_2D = ("circle", "ellipse", "polygon")
SHAPES_3D = ("sphere", "ellipsoid", "polyhedron")
SHAPE_IN_OTHER_DIMENSION = {"circle": "sphere", "ellipse": "ellipsoid", "polygon": "polyhedron",
                            "sphere": "circle", "ellipsoid": "ellipse", "polyhedron": "polygon"}


class SizeDistribution(Schema):
    """Particle radii drawn at random (seeded) instead of one radius."""

    type: Literal["lognormal", "normal", "list"] = Field(
        ..., description=(
            "lognormal or normal: mean particles.radius and standard deviation std, truncated to [min, max]; "
            "list: each radius drawn from 'radii' (all equally likely)"
        ),
    )
    std: float | None = quantity(None, unit="m", description="standard deviation of the radius (lognormal, normal)", gt=0)
    min: float | None = quantity(None, unit="m", description="smallest radius (lognormal, normal; default radius/2)", gt=0)
    max: float | None = quantity(None, unit="m", description="largest radius (lognormal, normal; default 2 radius)", gt=0)
    radii: list[float] | None = quantity(None, unit="m", description="type list: the radii to draw from", min_length=1)

    @model_validator(mode="after")
    def _complete(self):
        if self.type == "list":
            if not self.radii:
                raise ValueError("type list needs radii: [r1, r2, ...] in m")
            bad = [r for r in self.radii if not (r > 0 and math.isfinite(r))]
            if bad:
                raise ValueError(f"radii must be positive lengths in m; got {bad}")
            if self.std is not None or self.min is not None or self.max is not None:
                raise ValueError("type list takes radii only (no std, min, max)")
            return self
        if self.radii is not None:
            raise ValueError(f"radii is only used with type: list (type is {self.type})")
        if self.std is None:
            raise ValueError(f"type {self.type} needs std, the standard deviation of the radius in m")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be smaller than max ({self.max:g})")
        return self


class ParticleSpec(Schema):
    """Active-material particles packed in the solid electrolyte (or read from a file)."""

    shape: Literal["circle", "ellipse", "polygon", "sphere", "ellipsoid", "polyhedron"] = Field(
        "polygon",
        description=(
            "particle shape: 2D circle, ellipse or convex polygon (regular or random, sharp or rounded corners); "
            "3D sphere, ellipsoid or convex polyhedron"
        ),
    )
    radius: float = quantity(
        3.0e-6, unit="m",
        description=(
            "particle size: radius of circles and spheres, circumradius of polygons and polyhedra, largest "
            "semi-axis of ellipses and ellipsoids; the mean of size_distribution"
        ), gt=0,
    )
    size_distribution: SizeDistribution | None = Field(None, description="radii drawn at random instead of one radius")
    sides: int = Field(6, ge=3, le=24, description="number of polygon corners (shape: polygon)")
    irregularity: float = Field(
        0.0, ge=0, lt=1,
        description=(
            "polygons: 0 for regular polygons; > 0 for random convex polygons, each corner moved along the "
            "circumcircle by up to this fraction of the corner spacing [-]"
        ),
    )
    corner_radius: float = quantity(0.0, unit="m", description="polygons: radius of the rounded corners (0: sharp)", ge=0)
    aspect: list[float] | None = Field(
        None, min_length=1, max_length=2,
        description=(
            "ellipses: [b/a]; ellipsoids: [b/a, c/a]: ratios of the other semi-axes to the largest one, in (0, 1] "
            "(default [0.6] and [0.8, 0.6]) [-]"
        ),
    )
    polyhedron: Literal["tetrahedron", "cube", "octahedron", "dodecahedron", "icosahedron", "random"] = Field(
        "cube", description="polyhedra: a regular polyhedron, or random (convex hull of random points on a sphere)"
    )
    vertices: int = Field(12, ge=6, le=64, description="polyhedron: random: number of random points on the sphere")
    volume_fraction: float = Field(
        0.4, gt=0, lt=0.9,
        description="target area (2D) / volume (3D) fraction of active material in the composite region (between the layers)",
    )
    min_gap: float = quantity(
        0.3e-6, unit="m",
        description="minimum distance between two particles (with coatings: between the particles inside them)", gt=0,
    )
    boundary_gap: float = quantity(
        0.3e-6, unit="m",
        description=(
            "minimum distance between a particle and the outer sides and layers; a periodic side cuts a "
            "particle at least max(boundary_gap, 0.15 radius) deep"
        ), gt=0,
    )
    overlap: float = quantity(
        0.0, unit="m",
        description=(
            "0: particles keep min_gap apart; > 0: particles may also touch (percolating contacts), "
            "interpenetrating by between overlap/2 and overlap"
        ), ge=0,
    )
    orientation: Union[Literal["random"], float, list[float]] = Field(
        "random", description="'random', or a fixed angle in degrees (2D), or three angles in degrees about x, y, z (3D)"
    )
    coating: float = quantity(
        0.0, unit="m", description="thickness of a coating shell around every particle (0: none; needs materials.coating)", ge=0
    )
    active_b_share: float = Field(
        0.0, ge=0, lt=1,
        description="share of the active-material volume made of the second active material (materials.active_b) [-]",
    )
    periodic: bool = Field(
        False,
        description="periodic lateral sides (y, and z in 3D): particles may cross them and reappear on the opposite side",
    )
    file: str | None = Field(
        None,
        description=(
            "CSV or JSON particle list (centres and sizes in m) used instead of packing; volume_fraction and the "
            "size fields are then unused (README: Microstructures)"
        ),
    )
    seed: int = Field(1, ge=0, description="random seed of the packing (same seed, same microstructure)")
    max_attempts: int = Field(
        20000, ge=100, description="iteration budget of the packing (relaxation sweeps) before it gives up"
    )

    def radius_range(self) -> tuple[float, float]:
        """Smallest and largest radius the particles can have."""
        d = self.size_distribution
        if d is None:
            return self.radius, self.radius
        if d.type == "list":
            return min(d.radii), max(d.radii)
        return (d.min if d.min is not None else 0.5 * self.radius, d.max if d.max is not None else 2.0 * self.radius)

    @model_validator(mode="after")
    def _consistent(self):
        rmin, rmax = self.radius_range()
        d = self.size_distribution
        if d is not None and d.type != "list" and not rmin <= self.radius <= rmax:
            raise ValueError(f"the mean radius ({self.radius:g} m) must lie in [min, max] = [{rmin:g}, {rmax:g}] m")
        if self.irregularity > 0 and self.shape != "polygon":
            raise ValueError(f"irregularity is for polygons only (shape is {self.shape})")
        if self.corner_radius > 0:
            if self.shape != "polygon":
                raise ValueError(f"corner_radius is for polygons only (shape is {self.shape})")
            from meshes.geometry import MIN_ROUNDNESS

            inner = rmin * (math.cos(math.pi / self.sides) if self.irregularity == 0 else MIN_ROUNDNESS)
            if self.corner_radius > 0.5 * inner:
                raise ValueError(
                    f"corner_radius = {self.corner_radius:g} m is too large: at most half the inradius of the "
                    f"smallest polygon ({0.5 * inner:g} m)"
                )
        if self.aspect is not None:
            if self.shape not in ("ellipse", "ellipsoid"):
                raise ValueError(f"aspect is for ellipses and ellipsoids only (shape is {self.shape})")
            bad = [a for a in self.aspect if not 0 < a <= 1]
            if bad:
                raise ValueError(f"aspect = {self.aspect}: every ratio must lie in (0, 1]")
        if self.overlap > 0.5 * rmin:
            raise ValueError(f"overlap = {self.overlap:g} m is too deep: at most half the smallest radius ({0.5 * rmin:g} m)")
        if self.coating > 0:
            if self.overlap > 0:
                raise ValueError("coating and overlap exclude each other: coated particles cannot touch")
            if 2 * self.coating >= self.min_gap:
                raise ValueError(
                    f"coating = {self.coating:g} m is too thick for min_gap = {self.min_gap:g} m: the coatings of two "
                    f"neighbours would touch; need 2 * coating < min_gap"
                )
            if self.coating >= self.boundary_gap:
                raise ValueError(
                    f"coating = {self.coating:g} m is too thick for boundary_gap = {self.boundary_gap:g} m: a coating "
                    f"would reach a side; need coating < boundary_gap"
                )
        if self.file is not None:
            p = Path(self.file)
            if p.suffix.lower() not in (".csv", ".json"):
                raise ValueError(f"file = {self.file!r}: a particle list must be a .csv or .json file")
            if not p.is_file():
                raise ValueError(f"file = {self.file!r}: file not found")
        return self


class MeshSpec(Schema):
    """Element sizes of the Gmsh mesh (or an existing mesh file)."""

    size: float = quantity(1.0e-6, unit="m", description="element size far from interfaces", gt=0)
    interface_size: float = quantity(
        0.3e-6, unit="m", description="element size on the particle/electrolyte interfaces and corners", gt=0
    )
    transition: float = quantity(
        2.0e-6, unit="m", description="distance over which the size grows from interface_size to size", gt=0
    )
    corner_size: float | None = quantity(
        None, unit="m", description="element size at the sharp corners of polygons and polyhedra (default: interface_size)", gt=0
    )
    particle_size: float | None = quantity(
        None, unit="m",
        description="element size inside the particles away from interfaces (default: size); a coarser value "
        "saves cells where nothing localises, the electrolyte keeps size",
        gt=0,
    )
    order: Literal[1, 2] = Field(1, description="geometric order of the mesh (1: straight, 2: curved cells)")
    file: str | None = Field(
        None,
        description="an existing Gmsh .msh file with ssbfrac physical groups (meshes/tags.py), used instead of packing and meshing",
    )

    @model_validator(mode="after")
    def _sizes(self):
        if self.interface_size > self.size:
            raise ValueError(
                f"interface_size ({self.interface_size:g}) must not exceed size ({self.size:g})"
            )
        if self.corner_size is not None and self.corner_size > self.interface_size:
            raise ValueError(
                f"corner_size ({self.corner_size:g}) must not exceed interface_size ({self.interface_size:g})"
            )
        if self.file is not None:
            if Path(self.file).suffix.lower() != ".msh":
                raise ValueError(f"file = {self.file!r}: expected a Gmsh .msh file")
            if not Path(self.file).is_file():
                raise ValueError(f"file = {self.file!r}: file not found")
        return self


class Geometry(Schema):
    """A rectangular (box in 3D) composite-cathode domain. x runs from the separator/anode
    side (x = 0, 'left') to the current collector (x = L, 'right'); optional layers without
    particles sit at both ends of x."""

    size: list[float] = quantity(
        [30e-6, 30e-6],
        unit="m",
        description="domain size [L_x (cathode thickness, layers included), L_y (, L_z)]; one entry per dimension",
        min_length=2,
        max_length=3,
    )
    separator_thickness: float = quantity(
        0.0, unit="m", description="solid-electrolyte separator layer at x = 0 (materials.separator, default the electrolyte)", ge=0
    )
    collector_layer_thickness: float = quantity(
        0.0, unit="m",
        description="particle-free layer at the collector side x = L_x (materials.collector_layer, default the electrolyte)", ge=0,
    )
    particles: ParticleSpec = ParticleSpec()
    mesh: MeshSpec = MeshSpec()

    @model_validator(mode="after")
    def _positive(self):
        for i, s in enumerate(self.size):
            if not (s > 0 and math.isfinite(s)):
                raise ValueError(f"size[{i}] = {s!r} must be a positive length in metres")
        p = self.particles
        dim = len(self.size)
        own = SHAPES_2D if dim == 2 else SHAPES_3D
        if p.shape not in own:
            raise ValueError(
                f"particles.shape = {p.shape!r} is a {5 - dim}D shape but the domain is {dim}D "
                f"(geometry.size has {dim} entries): use {SHAPE_IN_OTHER_DIMENSION[p.shape]!r}"
            )
        if p.aspect is not None and len(p.aspect) != dim - 1:
            raise ValueError(
                f"particles.aspect = {p.aspect}: give {dim - 1} ratio{'s' if dim == 3 else ''} for a {dim}D {p.shape}"
            )
        if p.orientation != "random":
            if dim == 2 and isinstance(p.orientation, list):
                raise ValueError(f"particles.orientation = {p.orientation}: in 2D give 'random' or one angle in degrees")
            if dim == 3 and not (isinstance(p.orientation, list) and len(p.orientation) == 3):
                raise ValueError(
                    f"particles.orientation = {p.orientation}: in 3D give 'random' or three angles in degrees [ax, ay, az]"
                )
        rmin, rmax = p.radius_range()
        layers = self.separator_thickness + self.collector_layer_thickness
        if layers >= self.size[0]:
            raise ValueError(
                f"separator_thickness + collector_layer_thickness ({layers:g} m) leaves no room for the composite "
                f"(size[0] = {self.size[0]:g} m)"
            )
        if p.file is None and self.mesh.file is None:
            need = 2 * (rmax + p.boundary_gap)
            room = [self.size[0] - layers] + list(self.size[1:])
            if min(room) < need:
                raise ValueError(
                    f"a particle of radius {rmax:g} m with boundary_gap {p.boundary_gap:g} m needs sides of at least "
                    f"{need:g} m; size is {self.size}" + (f" ({layers:g} m of it layers)" if layers else "")
                )
            if p.periodic:
                need = 2 * (2 * (rmax + p.coating) + max(p.min_gap, p.boundary_gap))
                if min(self.size[1:]) < need:
                    raise ValueError(
                        f"particles.periodic: the lateral sides must be at least {need:g} m (twice a particle "
                        f"diameter plus gap) so that a particle meets each neighbour only once; size is {self.size}"
                    )
            if p.size_distribution is None and p.irregularity == 0:
                _check_fraction_possible(p, dim)
        if p.file is not None and self.mesh.file is None:
            _check_particle_file(self, dim)
        if self.mesh.file is not None:
            _check_mesh_file(self, dim)
        if self.mesh.interface_size > rmin:
            raise ValueError(
                f"mesh.interface_size ({self.mesh.interface_size:g} m) is larger than the particle "
                f"radius ({rmin:g} m): the particles would not be resolved"
            )
        return self


def _check_fraction_possible(p: ParticleSpec, dim: int) -> None:
    """Refuse a volume fraction that no packing of equal particles reaches: grown by half
    the gap, they would fill more than the densest packing of their shape family."""
    from meshes.packing import DENSEST, grown_fraction

    eff = grown_fraction(p.shape, dim, p.radius, p.sides, tuple(p.aspect or ()), p.polyhedron, p.corner_radius,
                         p.volume_fraction, 0.5 * p.min_gap if p.overlap == 0 else 0.0)
    if eff is not None and eff > DENSEST[p.shape]:
        raise ValueError(
            f"particles.volume_fraction = {p.volume_fraction}: impossible: with min_gap {p.min_gap:g} m the particles "
            f"grown by half the gap would fill {eff:.3f} of the composite, more than the densest packing of "
            f"{p.shape}s ({DENSEST[p.shape]:.3f})"
        )


def _check_particle_file(g: "Geometry", dim: int) -> None:
    """The particle list must be readable, inside the composite region and keep the gaps."""
    from meshes.io import MicrostructureFileError, read_particles
    from meshes.packing import DEFAULT_ASPECT, PackingSpec, check_packing_particles

    p = g.particles
    defaults = {"shape": p.shape, "sides": p.sides, "aspect": p.aspect or DEFAULT_ASPECT[dim],
                "polyhedron": p.polyhedron if p.polyhedron != "random" else "cube",
                "corner_radius": p.corner_radius, "coating": p.coating}
    try:
        parts = read_particles(p.file, dim, defaults)
    except MicrostructureFileError as exc:
        raise ValueError(f"particles.file: {exc}") from None
    spec = PackingSpec(box=tuple(g.size), volume_fraction=0.5, min_gap=p.min_gap, boundary_gap=p.boundary_gap,
                       overlap=p.overlap, coating=p.coating, periodic=p.periodic, separator=g.separator_thickness,
                       collector_layer=g.collector_layer_thickness)
    problems = check_packing_particles(parts, spec)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"particles.file = {p.file!r}: " + "; ".join(problems[:3]) + more)


def _check_mesh_file(g: "Geometry", dim: int) -> None:
    """The mesh must follow the tag convention, have the case's dimension and span
    geometry.size (its coordinates are micrometres)."""
    from meshes.io import MicrostructureFileError, msh_summary

    try:
        info = msh_summary(g.mesh.file)
    except MicrostructureFileError as exc:
        raise ValueError(f"mesh.file: {exc}") from None
    if info["dimension"] != dim:
        raise ValueError(f"mesh.file = {g.mesh.file!r} is a {info['dimension']}D mesh but the domain is {dim}D")
    span = [hi - lo for lo, hi in zip(*info["box"])]
    size_um = [1e6 * x for x in g.size]
    if any(abs(a - b) > 1e-6 * max(size_um) for a, b in zip(span, size_um)):
        raise ValueError(
            f"mesh.file = {g.mesh.file!r} spans {[round(x, 6) for x in span]} um but geometry.size is {g.size} m "
            f"(mesh coordinates are micrometres)"
        )


def _phases_in_files(g: "Geometry", dim: int) -> set[str]:
    """Phases that a particle list or a mesh file brings in (empty for packed particles)."""
    if g.mesh.file is not None:
        from meshes.io import msh_summary

        return set(msh_summary(g.mesh.file)["phases"])
    if g.particles.file is not None:
        from meshes.io import read_particles
        from meshes.packing import DEFAULT_ASPECT

        p = g.particles
        parts = read_particles(p.file, dim, {"shape": p.shape, "sides": p.sides, "aspect": p.aspect or DEFAULT_ASPECT[dim],
                                             "polyhedron": "cube", "corner_radius": 0.0, "coating": 0.0})
        return {q.material for q in parts}
    return set()


def resolve_case_paths(data: dict, base: Path) -> dict:
    """Make the file paths of a raw case (particle list, mesh file) absolute, relative to
    the directory of the case file (so a saved case.yaml still finds them)."""
    geo = data.get("geometry")
    if not isinstance(geo, dict):
        return data
    for section in ("particles", "mesh"):
        sub = geo.get(section)
        if isinstance(sub, dict) and isinstance(sub.get("file"), str) and not Path(sub["file"]).is_absolute():
            sub["file"] = str((base / sub["file"]).resolve())
    return data


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


class ExpansionTable(Schema):
    """Volumetric chemical strain of a free particle against the lithium fraction.

    Vegard's law as measured: linear between the points, constant beyond the ends. Only
    differences enter the model, strain(x) - strain(x_ref), so the table may start from any
    value."""

    x: list[float] = Field(..., min_length=2, description="lithium fractions, strictly increasing, in [0, 1] [-]")
    strain: list[float] = Field(
        ..., min_length=2, description="volumetric strain at each x (e.g. 0.05 for 5 %), relative to any state [-]"
    )
    source: str = Field("", description="citation of the data")

    @model_validator(mode="after")
    def _table(self):
        _check_table(self.x, self.strain, "strain")
        span = max(self.strain) - min(self.strain)
        if not span < 3.0:
            raise ValueError(
                f"strain = {self.strain}: spans {span:g}; volumetric strains are fractions (0.05 for 5 %) and "
                "must span less than 3, like expansion"
            )
        return self


class ActiveMaterial(Material):
    """Isotropic linear-elastic phase with a chemical eigenstrain (Vegard's law).

    eps_ch = (f(x) - f(x_ref)) A, with f the volumetric strain law (``expansion`` x or
    ``expansion_table``) and A the normalised ``anisotropy`` turned into each particle's
    orientation (trace A = 1; isotropic: A = I/3). See docs/model.md."""

    expansion: float = Field(
        0.0,
        gt=-0.5,
        lt=3.0,
        description=(
            "volumetric strain of the particle from lithium fraction x = 0 to x = 1 (Vegard, linear); "
            "positive: swells on lithiation; leave it out (or 0) when expansion_table is given [-]"
        ),
    )
    expansion_table: ExpansionTable | None = Field(
        None,
        description=(
            "volumetric strain against the lithium fraction, {x: [...], strain: [...]} (piecewise linear, "
            "constant beyond the ends), instead of the linear expansion"
        ),
    )
    anisotropy: list[float] | None = Field(
        None,
        min_length=3,
        max_length=3,
        description=(
            "relative principal chemical strains [a1, a2, a3] along the particle's own axes, turned by each "
            "particle's orientation (2D: a1, a2 in plane, a3 out of plane); normalised by a1 + a2 + a3 (> 0) so "
            "that the trace of the eigenstrain is the volumetric strain; none (default) or [1, 1, 1]: isotropic [-]"
        ),
    )

    @field_validator("anisotropy")
    @classmethod
    def _anisotropy(cls, a: list[float] | None) -> list[float] | None:
        if a is None:
            return a
        if any(not math.isfinite(v) for v in a):
            raise ValueError(f"anisotropy = {a}: values must be finite")
        if not sum(a) > 0:
            raise ValueError(
                f"anisotropy = {a}: the relative strains must have a positive sum (they are divided by it so that "
                "the trace of the eigenstrain is the volumetric strain; the sign of the volume change is set by "
                "expansion or expansion_table)"
            )
        return a

    @model_validator(mode="after")
    def _one_law(self):
        if self.expansion_table is not None and self.expansion != 0.0:
            raise ValueError(
                f"expansion = {self.expansion:g} and expansion_table are both given: give either expansion (linear "
                "law) or expansion_table, and leave expansion out (or 0) with a table"
            )
        return self

    @property
    def isotropic(self) -> bool:
        """True when the chemical strain is the same in every direction (no anisotropy, or
        a1 = a2 = a3)."""
        a = self.anisotropy
        return a is None or a[0] == a[1] == a[2]

    def volumetric_strain(self, x, lib=np):
        """The volumetric chemical strain law f(x) of a free particle: ``expansion`` x, or the
        table (linear between its points, constant beyond the ends). The eigenstrain is
        (f(x) - f(x_ref)) A. ``lib``: numpy, or ufl for an expression of a field or constant."""
        if self.expansion_table is None:
            return self.expansion * x
        from solver.ocv import piecewise_linear

        t = self.expansion_table
        return piecewise_linear(x, t.x, t.strain, lib)

    def strain_slope(self, x, lib=np):
        """df/dx, the volumetric strain per unit lithium fraction (times 1/c_max: the partial
        molar volume): the number ``expansion`` for the linear law; for a table, the slope of
        the segment that holds x (the right-hand one at a point), 0 beyond the ends."""
        if self.expansion_table is None:
            return self.expansion
        from solver.ocv import piecewise_linear_slope

        t = self.expansion_table
        return piecewise_linear_slope(x, t.x, t.strain, lib)


class Materials(Schema):
    active: ActiveMaterial = Field(..., description="active-material particles (AM)")
    electrolyte: Material = Field(..., description="solid-electrolyte matrix (SE)")
    active_b: ActiveMaterial | None = Field(
        None, description="second active material of a blend (geometry.particles.active_b_share)"
    )
    separator: Material | None = Field(
        None, description="separator layer (geometry.separator_thickness); default: the electrolyte"
    )
    collector_layer: Material | None = Field(
        None, description="collector-side layer (geometry.collector_layer_thickness); default: the electrolyte"
    )
    coating: Material | None = Field(None, description="coating shells of the particles (geometry.particles.coating)")

    def of(self, phase: str) -> Material | None:
        """The material of a phase: separator and collector_layer fall back to the electrolyte."""
        own = getattr(self, phase)
        if own is None and phase in ("separator", "collector_layer"):
            return self.electrolyte
        return own


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

#: iterative elasticity solve: CG + smoothed-aggregation AMG (rigid-body near-nullspace)
ITERATIVE_PETSC_ELASTICITY: dict[str, Any] = {
    "ksp_type": "cg",
    "pc_type": "gamg",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "pc_gamg_coarse_eq_limit": 1000,
}
#: direct elasticity solve: sparse LU (MUMPS)
DIRECT_PETSC_ELASTICITY: dict[str, Any] = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}
#: linear_solver: auto takes the direct solve up to this many displacement DOFs (2D, 3D)
DIRECT_SOLVE_MAX_DOFS = {2: 200_000, 3: 30_000}


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
    linear_solver: Literal["auto", "direct", "iterative"] = Field(
        "auto",
        description=(
            "elasticity linear solve: direct (MUMPS LU), iterative (CG + GAMG with the rigid-body "
            "near-nullspace), or auto: direct up to 200k displacement DOFs in 2D and 30k in 3D"
        ),
    )
    petsc_options: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=dict,
        description="PETSc options of the elasticity solve, applied over those of linear_solver",
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


# --------------------------------------------------------------------------- electrochemistry
class DiffusivityTable(Schema):
    """Lithium diffusivity of an active material against the lithium fraction (linear in
    between, constant beyond the ends)."""

    x: list[float] = Field(..., min_length=2, description="lithium fractions, strictly increasing, in [0, 1] [-]")
    D: list[float] = quantity(..., unit="m^2/s", description="diffusivity at each x", min_length=2)

    @model_validator(mode="after")
    def _table(self):
        _check_table(self.x, self.D, "D")
        if any(not d > 0 for d in self.D):
            raise ValueError(f"D = {self.D}: diffusivities must be positive")
        return self


class OCVTable(Schema):
    """A tabulated open-circuit voltage U(x) against Li/Li+ (linear in between, constant
    beyond the ends)."""

    x: list[float] = Field(..., min_length=2, description="lithium fractions, strictly increasing, in [0, 1] [-]")
    U: list[float] = quantity(..., unit="V", description="open-circuit voltage at each x", min_length=2)
    source: str = Field("", description="citation of the data")

    @model_validator(mode="after")
    def _table(self):
        _check_table(self.x, self.U, "U")
        return self


def _check_table(xs: list[float], ys: list[float], name: str) -> None:
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but {name} has {len(ys)}")
    if any(not 0.0 <= v <= 1.0 for v in xs):
        raise ValueError(f"x = {xs}: lithium fractions must lie in [0, 1]")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"x = {xs}: must increase strictly")
    if any(not math.isfinite(v) for v in ys):
        raise ValueError(f"{name} = {ys}: values must be finite")


class Kinetics(Schema):
    """Butler-Volmer kinetics of the active material / solid electrolyte interface:
    i = i0 [exp(alpha F eta / RT) - exp(-(1 - alpha) F eta / RT)]. Give k0 (the default)
    or a constant i0."""

    k0: float = quantity(1.0, unit="A/m^2", description="rate constant: i0 = k0 sqrt(x (1 - x))", gt=0)
    i0: float | None = quantity(None, unit="A/m^2", description="constant exchange current density (replaces k0)", gt=0)
    alpha: float = Field(0.5, gt=0, lt=1, description="anodic charge-transfer coefficient [-]")

    @model_validator(mode="after")
    def _one_law(self):
        if self.i0 is not None and "k0" in self.model_fields_set:
            raise ValueError("give either k0 (i0 = k0 sqrt(x (1 - x))) or a constant i0, not both")
        return self


class ActiveTransport(Schema):
    """Lithium storage, transport and interface kinetics of an active material."""

    c_max: float = quantity(..., unit="mol/m^3", description="lithium concentration at x = 1", gt=0)
    diffusivity: float | None = quantity(None, unit="m^2/s", description="constant lithium diffusivity", gt=0)
    diffusivity_table: DiffusivityTable | None = Field(None, description="diffusivity against x (instead of diffusivity)")
    ocv: str | None = Field(
        None, description="open-circuit voltage curve of solver/ocv.py: lco_doyle1995 or nmc811_chen2020"
    )
    ocv_table: OCVTable | None = Field(None, description="tabulated open-circuit voltage (instead of ocv)")
    kinetics: Kinetics = Field(default_factory=Kinetics, description="Butler-Volmer kinetics at the interface")

    @model_validator(mode="after")
    def _complete(self):
        if (self.diffusivity is None) == (self.diffusivity_table is None):
            raise ValueError("give exactly one of diffusivity (m^2/s) and diffusivity_table")
        if (self.ocv is None) == (self.ocv_table is None):
            raise ValueError("give exactly one of ocv (a curve name) and ocv_table")
        if self.ocv is not None:
            from solver.ocv import CURVES

            if self.ocv not in CURVES:
                raise ValueError(f"ocv = {self.ocv!r}: unknown curve; known: {', '.join(sorted(CURVES))} (or give ocv_table)")
        return self


class IonicConductor(Schema):
    """A single-ion conductor (transference number 1)."""

    kappa: float = quantity(..., unit="S/m", description="ionic conductivity", gt=0)


class DamageFeedback(Schema):
    """How phase-field damage blocks ionic transport: kappa_eff = kappa ((1 - d)^p + residual)."""

    exponent: float = Field(2.0, ge=0, le=10, description="exponent p [-]")
    residual: float = Field(1e-4, ge=0, lt=1, description="conductivity left in fully broken electrolyte, relative [-]")
    interface: bool = Field(
        False, description="damage at an interface also lowers its reaction rate by the same factor"
    )


class AnodeSpec(Schema):
    """The lithium-metal electrode at x = 0 (the potential reference, 0 V)."""

    kinetics: Literal["fast", "butler_volmer"] = Field(
        "fast", description="fast: phi_e = 0 on the x = 0 side; butler_volmer: Li/Li+ kinetics there with i0"
    )
    i0: float = quantity(10.0, unit="A/m^2", description="exchange current density of Li/Li+ (butler_volmer)", gt=0)
    alpha: float = Field(0.5, gt=0, lt=1, description="anodic charge-transfer coefficient of Li/Li+ [-]")


class ElectronicSpec(Schema):
    """Electronic potential of the particles."""

    model: Literal["uniform", "per_particle"] = Field(
        "uniform",
        description=(
            "uniform: every particle at the cell voltage (well connected); per_particle: one potential per "
            "particle, connected to the collector through contact_resistance"
        ),
    )
    contact_resistance: float = quantity(
        0.0, unit="Ohm*m^2",
        description="per_particle: area-specific resistance between a particle and the collector (R = r / particle surface)",
        ge=0,
    )
    isolated: list[int] = Field(
        default_factory=list, description="per_particle: indices of electronically disconnected particles (no net current)"
    )
    conductivity: float | None = quantity(
        None, unit="S/m",
        description=(
            "per_particle: effective electronic conductivity of the composite's conducting network (carbon, "
            "particle contacts) between the collector side and the particles; none: no network resistance"
        ),
        gt=0,
    )

    @model_validator(mode="after")
    def _per_particle(self):
        if self.model == "uniform" and (self.contact_resistance > 0 or self.isolated or self.conductivity is not None):
            raise ValueError("contact_resistance, conductivity and isolated need model: per_particle")
        if any(i < 0 for i in self.isolated):
            raise ValueError(f"isolated = {self.isolated}: particle indices are >= 0")
        return self


class CyclingStep(Schema):
    """One segment of the cycling protocol. discharge (lithiates the cathode) and charge run
    at a constant current until a cut-off voltage or a duration; rest holds zero current for
    a duration; hold keeps a voltage until the current falls below until_c_rate or for a
    duration."""

    mode: Literal["discharge", "charge", "rest", "hold"] = Field(..., description="discharge, charge, rest or hold")
    c_rate: float | None = Field(None, gt=0, description="current as a C-rate (default: loading.c_rate) [1/h]")
    current_density: float | None = quantity(
        None, unit="A/m^2", description="current per collector-side area (instead of c_rate)", gt=0
    )
    cutoff: float | None = quantity(
        None, unit="V", description="cut-off voltage (default: v_min on discharge, v_max on charge)"
    )
    voltage: float | None = quantity(None, unit="V", description="hold: the held cell voltage")
    until_c_rate: float | None = Field(None, gt=0, description="hold: end when |current| falls below this C-rate [1/h]")
    duration: float | None = quantity(None, unit="s", description="end after this time", gt=0)

    @model_validator(mode="after")
    def _consistent(self):
        if self.c_rate is not None and self.current_density is not None:
            raise ValueError("give either c_rate or current_density, not both")
        if self.mode in ("rest", "hold") and (self.c_rate is not None or self.current_density is not None):
            raise ValueError(f"mode {self.mode} sets no current (c_rate/current_density are for discharge and charge)")
        if self.mode != "hold" and (self.voltage is not None or self.until_c_rate is not None):
            raise ValueError("voltage and until_c_rate are for mode: hold")
        if self.mode in ("rest", "hold") and self.cutoff is not None:
            raise ValueError(f"cutoff is for discharge and charge (mode is {self.mode})")
        if self.mode == "rest" and self.duration is None:
            raise ValueError("mode rest needs a duration (s)")
        if self.mode == "hold":
            if self.voltage is None:
                raise ValueError("mode hold needs the voltage (V)")
            if self.duration is None and self.until_c_rate is None:
                raise ValueError("mode hold needs until_c_rate or a duration (or both)")
        return self


class GalvanostaticLoading(Schema):
    """Electrochemical cycling against a lithium-metal electrode at x = 0: lithium diffuses
    in the particles, ions move through the electrolyte, Butler-Volmer kinetics at the
    interfaces, a constant current (or held voltage) per protocol segment
    (docs/electrochemistry.md)."""

    type: Literal["galvanostatic"] = "galvanostatic"
    c_rate: float = Field(1.0, gt=0, description="current of the segments that give none, as a C-rate [1/h]")
    current_density: float | None = quantity(
        None, unit="A/m^2", description="current per collector-side area of the segments that give none (instead of c_rate)", gt=0
    )
    v_min: float = quantity(3.0, unit="V", description="discharge cut-off voltage (default of discharge segments)")
    v_max: float = quantity(4.3, unit="V", description="charge cut-off voltage (default of charge segments)")
    protocol: list[CyclingStep] = Field(
        default_factory=lambda: [CyclingStep(mode="discharge")], min_length=1,
        description="segments of one cycle, in order",
    )
    cycles: int = Field(1, ge=1, le=100000, description="how many times the protocol is run")
    on_cutoff: Literal["next", "stop"] = Field(
        "next", description="at a cut-off voltage: go to the next segment, or end the loading"
    )
    initial_lithiation: float = Field(0.3, gt=0, lt=1, description="uniform lithium fraction at the start [-]")
    x_ref: float | None = Field(None, ge=0, le=1, description="stress-free lithium fraction [-] (default: initial_lithiation)")
    temperature: float = quantity(298.15, unit="K", description="temperature", gt=0)
    time_step: float = quantity(10.0, unit="s", description="initial time step", gt=0)
    min_time_step: float = quantity(1e-3, unit="s", description="smallest time step", gt=0)
    max_time_step: float | None = quantity(None, unit="s", description="largest time step (default 10 time_step)", gt=0)
    active: ActiveTransport = Field(..., description="transport and kinetics of materials.active")
    active_b: ActiveTransport | None = Field(None, description="transport and kinetics of materials.active_b")
    electrolyte: IonicConductor = Field(..., description="ionic conductivity of the electrolyte")
    separator: IonicConductor | None = Field(None, description="of the separator layer (default: the electrolyte)")
    collector_layer: IonicConductor | None = Field(None, description="of the collector-side layer (default: the electrolyte)")
    coating: IonicConductor | None = Field(None, description="of the particle coatings (default: the electrolyte)")
    damage_feedback: DamageFeedback = Field(default_factory=DamageFeedback, description="cracks block ionic transport")
    anode: AnodeSpec = Field(default_factory=AnodeSpec, description="the lithium-metal electrode at x = 0")
    electronic: ElectronicSpec = Field(default_factory=ElectronicSpec, description="electronic potential of the particles")
    stress_assisted: bool = Field(
        False, description="add the flux up the hydrostatic-stress gradient, D x (1 - x) Omega / (R T) grad sigma_h"
    )
    petsc_options: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=dict, description="PETSc options of the (x, phi_e) Newton solve (merged with the defaults)"
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min ({self.v_min}) must be below v_max ({self.v_max})")
        if self.min_time_step > self.time_step:
            raise ValueError(f"min_time_step ({self.min_time_step}) exceeds time_step ({self.time_step})")
        if self.max_time_step is not None and self.max_time_step < self.time_step:
            raise ValueError(f"max_time_step ({self.max_time_step}) is below time_step ({self.time_step})")
        for i, seg in enumerate(self.protocol):
            if seg.mode in ("discharge", "charge"):
                cut = seg.cutoff if seg.cutoff is not None else (self.v_min if seg.mode == "discharge" else self.v_max)
                if seg.mode == "discharge" and cut >= self.v_max or seg.mode == "charge" and cut <= self.v_min:
                    raise ValueError(f"protocol[{i}]: cutoff {cut} V is outside [v_min, v_max]")
        return self


def _loading_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "prescribed")
    return getattr(value, "type", "prescribed")


Loading = Annotated[
    Union[Annotated[PrescribedLithiation, Tag("prescribed")], Annotated[GalvanostaticLoading, Tag("galvanostatic")]],
    Discriminator(_loading_kind),
]


# --------------------------------------------------------------------------- fracture
DEFAULT_PETSC_DAMAGE: dict[str, Any] = {}


class SchemeSpec(Schema):
    """How the coupled displacement/damage problem of a load step is solved."""

    type: Literal["staggered", "accelerated", "anderson"] = Field(
        "accelerated",
        description=(
            "staggered: plain alternate minimisation (reference); accelerated: over-relaxed alternate "
            "minimisation finished by a monolithic Newton method; anderson: alternate minimisation with "
            "Anderson acceleration of the damage iterates"
        ),
    )
    tolerance: float = Field(1e-4, gt=0, lt=1, description="convergence: max |d_k - d_(k-1)| over the mesh [-]")
    max_iterations: int = Field(
        2000, ge=1, le=100000,
        description="iteration cap per load step (the step is cut when hit); an unstable crack advances about a "
        "third of ell per iteration, so a jump of L needs about 3 L / ell iterations",
    )
    relaxation: float = Field(1.8, ge=1, lt=2, description="accelerated: over-relaxation factor omega of the damage update")
    switch_tolerance: float = Field(
        1e-2, gt=0, lt=1, description="accelerated: switch to Newton once max |d_k - d_(k-1)| is below this [-]"
    )
    newton_petsc_options: dict[str, Union[str, int, float, bool, None]] = Field(
        default_factory=dict, description="accelerated: PETSc options of the monolithic Newton solve"
    )
    depth: int = Field(5, ge=1, le=50, description="anderson: number of previous iterates used")
    reuse_preconditioner: bool = Field(
        True, description="keep the elasticity preconditioner across the iterations of a step (set up again when it degrades)"
    )


class AdaptiveSpec(Schema):
    """Adaptive load stepping: cut on failure or brutal crack growth, grow when easy."""

    enabled: bool = Field(True, description="adapt the load step")
    max_crack_growth: float | None = quantity(
        None, unit="m", description="largest regularised crack-length growth in one step (default: 20 ell)", gt=0
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
    phases: list[Literal["electrolyte", "separator", "collector_layer", "coating", "active", "active_b"]] = Field(
        ["electrolyte"], min_length=1,
        description="phases where damage is allowed (each needs materials.<phase>.fracture; separator and "
        "collector_layer fall back to the electrolyte's)",
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
    vtx: bool = Field(
        False, description="also write the fields as fields.bp (ADIOS2 VTX, ParaView's ADIOS2VTXReader); needs DOLFINx with ADIOS2"
    )
    profile_bins: int = Field(
        20, ge=2, le=1000,
        description="galvanostatic loading: slabs across the thickness of profiles.csv (lithiation and damage against depth)",
    )
    checkpoint_every: int = Field(
        0, ge=0,
        description="write checkpoint.h5 every N accepted steps for a later --restart (0: only when the run is asked to stop, by SIGTERM or SIGUSR1)",
    )
    checkpoint_interval: float = quantity(
        0.0, unit="s", ge=0.0,
        description="also write checkpoint.h5 once this much wall-clock time has passed since the last one (0: off)",
    )


# --------------------------------------------------------------------------- the case
class Case(Schema):
    """A complete ssbfrac case."""

    name: str = Field(..., pattern=NAME_PATTERN,
                      description="case name, the default run directory name: 1 to 100 letters, digits, '_', '.', "
                                  "'+', '-', starting with a letter or digit")
    description: str = Field("", description="free text")
    dimension: Literal[2, 3] = Field(2, description="2 (plane strain) or 3")
    geometry: Geometry = Geometry()
    materials: Materials
    mechanics: Mechanics = Mechanics()
    loading: Loading = PrescribedLithiation()
    fracture: Fracture = Fracture()
    output: Output = Output()

    @model_validator(mode="after")
    def _geometry_materials(self):
        p, m = self.geometry.particles, self.materials
        if p.coating > 0 and m.coating is None:
            raise ValueError(f"geometry.particles.coating = {p.coating:g} m needs materials.coating")
        if p.active_b_share > 0 and m.active_b is None:
            raise ValueError(f"geometry.particles.active_b_share = {p.active_b_share} needs materials.active_b")
        phases = _phases_in_files(self.geometry, self.dimension) if len(self.geometry.size) == self.dimension else set()
        for phase in ("active_b", "coating"):
            if phase in phases and getattr(m, phase) is None:
                what = "geometry.mesh.file" if self.geometry.mesh.file else "geometry.particles.file"
                raise ValueError(f"{what} has {phase} cells/particles but materials.{phase} is not given")
        return self

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
                mat = self.materials.of(phase)
                if mat is None:
                    raise ValueError(f"fracture.phases contains {phase!r} but materials.{phase} is not given")
                if mat.fracture is None:
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
    ann: Any = None
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            # union members show up in loc as their tag: take that member (or skip the part)
            cls = _tagged_model(ann, part) or cls
            continue
        ann = fields[part].annotation
        cls = _first_model(ann)
        if cls is None:
            return None
    fields = getattr(cls, "model_fields", None)
    return sorted(fields) if fields else None


def _tagged_model(ann: Any, tag: Any):
    """The member of a tagged union annotation whose Tag is ``tag`` (None if there is none)."""
    for arg in getattr(ann, "__args__", ()) or ():
        meta = getattr(arg, "__metadata__", ()) or ()
        if any(isinstance(m, Tag) and m.tag == tag for m in meta):
            return _first_model(arg.__origin__)
    return None


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
        loc = tuple(p for p in e["loc"] if p not in ("prescribed", "galvanostatic"))
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(Case, tuple(e["loc"]))
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


def read_yaml(path: str | Path, kind: str = "case", sections: str = "sections") -> dict:
    """The mapping in a YAML ``kind`` file (case, sweep); CaseError naming the file otherwise."""
    p = Path(path)
    if not p.exists():
        raise CaseError(f"{p}: {kind} file not found")
    if p.is_dir():
        raise CaseError(f"{p}: is a directory, expected a YAML {kind} file")
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
        raise CaseError(f"{p}: the top level must be a mapping of {sections}, got {type(data).__name__}")
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
    data = resolve_case_paths(data, Path(path).resolve().parent)
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
