"""The geometry section: domain size, layers, particles and mesh sizes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from solver.config.base import FieldError, NotBool, Schema, quantity, zero_or_at_least

#: bounds of particle radii (m): 10 nm to 1 mm
RADIUS_MIN, RADIUS_MAX = 1e-8, 1e-3
#: bounds of gaps, thicknesses, mesh sizes (m): 1 nm to 1 mm (layers and mesh sizes to 1 cm)
LENGTH_MIN = 1e-9
#: bounds of the domain sides (m): 100 nm to 1 cm
SIDE_MIN, SIDE_MAX = 1e-7, 1e-2
#: longest list of radii, particles or table points in a case
MAX_LIST = 10_000
Radius = Annotated[float, Field(ge=RADIUS_MIN, le=RADIUS_MAX)]


def _orientation(v: Any) -> Any:
    """'random', an angle in degrees, or three angles in degrees (finite, not true/false)."""
    def angle(a):
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or abs(a) > 3600:
            raise ValueError(f"orientation = {v!r}: an angle is a finite number of degrees (|angle| <= 3600)")
        return float(a)

    if v == "random" and isinstance(v, str):
        return v
    if isinstance(v, list):
        if len(v) > 3:
            raise ValueError(f"orientation = {v!r}: at most three angles")
        return [angle(a) for a in v]
    if isinstance(v, str):
        raise ValueError(f"orientation = {v!r}: give 'random' or an angle in degrees (three in 3D)")
    return angle(v)

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
    std: float | None = quantity(None, unit="m", description="standard deviation of the radius (lognormal, normal)",
                                 ge=1e-10, le=RADIUS_MAX)
    min: float | None = quantity(None, unit="m", description="smallest radius (lognormal, normal; default radius/2)",
                                 ge=RADIUS_MIN, le=RADIUS_MAX)
    max: float | None = quantity(None, unit="m", description="largest radius (lognormal, normal; default 2 radius)",
                                 ge=RADIUS_MIN, le=RADIUS_MAX)
    radii: list[Radius] | None = quantity(None, unit="m", description="type list: the radii to draw from",
                                          min_length=1, max_length=MAX_LIST)

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
        ), ge=RADIUS_MIN, le=RADIUS_MAX,
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
    corner_radius: Annotated[float, zero_or_at_least(LENGTH_MIN)] = quantity(
        0.0, unit="m", description="polygons: radius of the rounded corners (0: sharp)", ge=0, le=RADIUS_MAX)
    aspect: list[Annotated[float, Field(ge=0.02, le=1.0)]] | None = Field(
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
        0.4, ge=0.001, lt=0.9,
        description="target area (2D) / volume (3D) fraction of active material in the composite region (between the layers)",
    )
    min_gap: float = quantity(
        0.3e-6, unit="m",
        description="minimum distance between two particles (with coatings: between the particles inside them)",
        ge=LENGTH_MIN, le=RADIUS_MAX,
    )
    boundary_gap: float = quantity(
        0.3e-6, unit="m",
        description=(
            "minimum distance between a particle and the outer sides and layers; a periodic side cuts a "
            "particle at least max(boundary_gap, 0.15 radius) deep"
        ), ge=LENGTH_MIN, le=RADIUS_MAX,
    )
    overlap: Annotated[float, zero_or_at_least(LENGTH_MIN)] = quantity(
        0.0, unit="m",
        description=(
            "0: particles keep min_gap apart; > 0: particles may also touch (percolating contacts), "
            "interpenetrating by between overlap/2 and overlap"
        ), ge=0, le=RADIUS_MAX,
    )
    orientation: Annotated[Any, AfterValidator(_orientation)] = Field(
        "random", description="'random', or a fixed angle in degrees (2D), or three angles in degrees about x, y, z (3D)"
    )
    coating: Annotated[float, zero_or_at_least(LENGTH_MIN)] = quantity(
        0.0, unit="m", description="thickness of a coating shell around every particle (0: none; needs materials.coating)",
        ge=0, le=RADIUS_MAX,
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
        None, min_length=1, max_length=4096,
        description=(
            "CSV or JSON particle list (centres and sizes in m) used instead of packing; volume_fraction and the "
            "size fields are then unused (README: Microstructures)"
        ),
    )
    seed: int = Field(1, ge=0, le=2 ** 63 - 1, description="random seed of the packing (same seed, same microstructure)")
    max_attempts: int = Field(
        20000, ge=100, le=200_000,
        description="iteration budget of the packing (relaxation sweeps) before it gives up (20000: about 15 s)",
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
            raise FieldError("radius", self.radius, f"the mean radius must lie in [min, max] = [{rmin:g}, {rmax:g}] m")
        if self.irregularity > 0 and self.shape != "polygon":
            raise FieldError("irregularity", self.irregularity, f"irregularity is for polygons only (shape is {self.shape})")
        if self.corner_radius > 0:
            if self.shape != "polygon":
                raise FieldError("corner_radius", self.corner_radius,
                                 f"corner_radius is for polygons only (shape is {self.shape})")
            from meshes.shapes import MIN_ROUNDNESS

            inner = rmin * (math.cos(math.pi / self.sides) if self.irregularity == 0 else MIN_ROUNDNESS)
            if self.corner_radius > 0.5 * inner:
                raise FieldError(
                    "corner_radius", self.corner_radius,
                    f"too large: at most half the inradius of the smallest polygon ({0.5 * inner:g} m)"
                )
        if self.aspect is not None:
            if self.shape not in ("ellipse", "ellipsoid"):
                raise FieldError("aspect", self.aspect, f"aspect is for ellipses and ellipsoids only (shape is {self.shape})")
            bad = [a for a in self.aspect if not 0 < a <= 1]
            if bad:
                raise FieldError("aspect", self.aspect, "every ratio must lie in (0, 1]")
        if self.overlap > 0.5 * rmin:
            raise FieldError("overlap", self.overlap, f"too deep: at most half the smallest radius ({0.5 * rmin:g} m)")
        if self.coating > 0:
            if self.overlap > 0:
                raise FieldError("coating", self.coating, "coating and overlap exclude each other: coated particles cannot touch")
            if 2 * self.coating >= self.min_gap:
                raise FieldError(
                    "coating", self.coating,
                    f"too thick for min_gap = {self.min_gap:g} m: the coatings of two "
                    f"neighbours would touch; need 2 * coating < min_gap"
                )
            if self.coating >= self.boundary_gap:
                raise FieldError(
                    "coating", self.coating,
                    f"too thick for boundary_gap = {self.boundary_gap:g} m: a coating "
                    f"would reach a side; need coating < boundary_gap"
                )
        if self.file is not None:
            p = Path(self.file)
            if p.suffix.lower() not in (".csv", ".json"):
                raise FieldError("file", self.file, "a particle list must be a .csv or .json file")
            if not p.is_file():
                raise FieldError("file", self.file, "file not found (or not a regular file)")
        return self


class MeshSpec(Schema):
    """Element sizes of the Gmsh mesh (or an existing mesh file)."""

    size: float = quantity(1.0e-6, unit="m", description="element size far from interfaces", ge=LENGTH_MIN, le=SIDE_MAX)
    interface_size: float = quantity(
        0.3e-6, unit="m", description="element size on the particle/electrolyte interfaces and corners",
        ge=LENGTH_MIN, le=SIDE_MAX,
    )
    transition: float = quantity(
        2.0e-6, unit="m", description="distance over which the size grows from interface_size to size",
        ge=LENGTH_MIN, le=SIDE_MAX,
    )
    corner_size: float | None = quantity(
        None, unit="m", description="element size at the sharp corners of polygons and polyhedra (default: interface_size)",
        ge=LENGTH_MIN, le=SIDE_MAX,
    )
    particle_size: float | None = quantity(
        None, unit="m",
        description="element size inside the particles away from interfaces (default: size); a coarser value "
        "saves cells where nothing localises, the electrolyte keeps size",
        ge=LENGTH_MIN, le=SIDE_MAX,
    )
    order: Annotated[Literal[1, 2], NotBool] = Field(1, description="geometric order of the mesh (1: straight, 2: curved cells)")
    file: str | None = Field(
        None, min_length=1, max_length=4096,
        description="a Gmsh .msh file, or a .geo script that Gmsh meshes, with ssbfrac physical groups "
                    "(meshes/tags.py: by number, or named electrolyte, top, particle_3, ...), used instead of packing "
                    "and meshing",
    )

    @model_validator(mode="after")
    def _sizes(self):
        if self.interface_size > self.size:
            raise FieldError("interface_size", self.interface_size, f"must not exceed size ({self.size:g})")
        if self.corner_size is not None and self.corner_size > self.interface_size:
            raise FieldError("corner_size", self.corner_size,
                             f"must not exceed interface_size ({self.interface_size:g})")
        if self.file is not None:
            if Path(self.file).suffix.lower() not in (".msh", ".geo"):
                raise FieldError("file", self.file, "expected a Gmsh .msh file or .geo script")
            if not Path(self.file).is_file():
                raise FieldError("file", self.file, "file not found (or not a regular file)")
        return self


class Geometry(Schema):
    """A rectangular (box in 3D) composite-cathode domain. x runs from the separator/anode
    side (x = 0, 'left') to the current collector (x = L, 'right'); optional layers without
    particles sit at both ends of x."""

    size: list[Annotated[float, Field(ge=SIDE_MIN, le=SIDE_MAX)]] = quantity(
        [30e-6, 30e-6],
        unit="m",
        description="domain size [L_x (cathode thickness, layers included), L_y (, L_z)]; one entry per dimension",
        min_length=2,
        max_length=3,
    )
    separator_thickness: Annotated[float, zero_or_at_least(LENGTH_MIN)] = quantity(
        0.0, unit="m", description="solid-electrolyte separator layer at x = 0 (materials.separator, default the electrolyte)",
        ge=0, le=SIDE_MAX,
    )
    collector_layer_thickness: Annotated[float, zero_or_at_least(LENGTH_MIN)] = quantity(
        0.0, unit="m",
        description="particle-free layer at the collector side x = L_x (materials.collector_layer, default the electrolyte)",
        ge=0, le=SIDE_MAX,
    )
    particles: ParticleSpec = ParticleSpec()
    mesh: MeshSpec = MeshSpec()

    @model_validator(mode="after")
    def _positive(self, info: ValidationInfo):
        for i, s in enumerate(self.size):
            if not (s > 0 and math.isfinite(s)):
                raise FieldError(f"size.{i}", s, "must be a positive length in metres")
        p = self.particles
        dim = len(self.size)
        own = SHAPES_2D if dim == 2 else SHAPES_3D
        if p.shape not in own:
            raise FieldError(
                "particles.shape", p.shape,
                f"a {5 - dim}D shape but the domain is {dim}D "
                f"(geometry.size has {dim} entries): use {SHAPE_IN_OTHER_DIMENSION[p.shape]!r}"
            )
        if p.aspect is not None and len(p.aspect) != dim - 1:
            raise FieldError("particles.aspect", p.aspect,
                             f"give {dim - 1} ratio{'s' if dim == 3 else ''} for a {dim}D {p.shape}")
        if p.orientation != "random":
            if dim == 2 and isinstance(p.orientation, list):
                raise FieldError("particles.orientation", p.orientation, "in 2D give 'random' or one angle in degrees")
            if dim == 3 and not (isinstance(p.orientation, list) and len(p.orientation) == 3):
                raise FieldError("particles.orientation", p.orientation,
                                 "in 3D give 'random' or three angles in degrees [ax, ay, az]")
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
            _check_particle_file(self, dim, (info.context or {}).get("max_particles"))
        if self.mesh.file is not None:
            _check_mesh_file(self, dim)
        if self.mesh.interface_size > rmin:
            raise FieldError(
                "mesh.interface_size", self.mesh.interface_size,
                f"larger than the particle radius ({rmin:g} m): the particles would not be resolved"
            )
        return self


def _check_fraction_possible(p: ParticleSpec, dim: int) -> None:
    """Refuse a volume fraction that no packing of equal particles reaches: grown by half
    the gap, they would fill more than the densest packing of their shape family."""
    from meshes.packing import DENSEST, grown_fraction

    eff = grown_fraction(p.shape, dim, p.radius, p.sides, tuple(p.aspect or ()), p.polyhedron, p.corner_radius,
                         p.volume_fraction, 0.5 * p.min_gap if p.overlap == 0 else 0.0)
    if eff is not None and eff > DENSEST[p.shape]:
        raise FieldError(
            "particles.volume_fraction", p.volume_fraction,
            f"impossible: with min_gap {p.min_gap:g} m the particles "
            f"grown by half the gap would fill {eff:.3f} of the composite, more than the densest packing of "
            f"{p.shape}s ({DENSEST[p.shape]:.3f})"
        )


def _check_particle_file(g: "Geometry", dim: int, max_particles: int | None = None) -> None:
    """The particle list must be readable, inside the composite region and keep the gaps;
    a list longer than ``max_particles`` (limits.max_particles) is refused before its
    particles are made."""
    from meshes.io import MicrostructureFileError, read_particles
    from meshes.packing import DEFAULT_ASPECT, PackingSpec, check_packing_particles

    p = g.particles
    defaults = {"shape": p.shape, "sides": p.sides, "aspect": p.aspect or DEFAULT_ASPECT[dim],
                "polyhedron": p.polyhedron if p.polyhedron != "random" else "cube",
                "corner_radius": p.corner_radius, "coating": p.coating}
    try:
        parts = read_particles(p.file, dim, defaults, max_particles=max_particles, radius_bounds=(RADIUS_MIN, RADIUS_MAX))
    except MicrostructureFileError as exc:
        raise FieldError("particles.file", p.file, str(exc)) from None
    spec = PackingSpec(box=tuple(g.size), volume_fraction=0.5, min_gap=p.min_gap, boundary_gap=p.boundary_gap,
                       overlap=p.overlap, coating=p.coating, periodic=p.periodic, separator=g.separator_thickness,
                       collector_layer=g.collector_layer_thickness)
    problems = check_packing_particles(parts, spec)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise FieldError("particles.file", p.file, "; ".join(problems[:3]) + more)


def _check_mesh_file(g: "Geometry", dim: int) -> None:
    """The mesh must follow the tag convention, have the case's dimension and span
    geometry.size (its coordinates are micrometres)."""
    from meshes.io import MicrostructureFileError, msh_summary

    try:
        info = msh_summary(g.mesh.file)
    except MicrostructureFileError as exc:
        raise FieldError("mesh.file", g.mesh.file, str(exc)) from None
    if info["dimension"] != dim:
        raise FieldError("mesh.file", g.mesh.file, f"a {info['dimension']}D mesh but the domain is {dim}D")
    span = [hi - lo for lo, hi in zip(*info["box"])]
    size_um = [1e6 * x for x in g.size]
    if any(abs(a - b) > 1e-6 * max(size_um) for a, b in zip(span, size_um)):
        raise FieldError(
            "mesh.file", g.mesh.file,
            f"spans {[round(x, 6) for x in span]} um but geometry.size is {g.size} m (mesh coordinates are micrometres)"
        )


def phases_in_files(g: "Geometry", dim: int) -> set[str]:
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
