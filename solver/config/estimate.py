"""What a case costs, estimated before packing and meshing: particles, mesh cells,
vertices, unknowns (DOFs) and peak memory; and the refusal of a case beyond its limits
(:class:`solver.config.limits.Limits`).

The cell count integrates the element density 1 / (c h^d) of the Gmsh size field over the
domain: ``interface_size`` on the particle surfaces (and layer interfaces), growing
linearly to ``size`` (``particle_size`` inside the particles) over ``transition``, with
``corner_size`` around sharp corners. The area (volume) at a distance s from the particle
surfaces is that of parallel bodies of the mean particle, outside until the electrolyte is
used up, inside until the particle is. The particles are drawn as the packing draws them
(size distribution, shape, corners), their number is the volume fraction over the mean
particle. ``c`` and the other constants were fitted to the meshes of the shipped cases
(tests/test_estimate.py states the agreement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from solver.config.base import CaseError

#: cells per unit area (volume) of an element size h: cells = measure / (CELL_MEASURE h^d)
#: (fitted to the shipped cases; an equilateral triangle has 0.433 h^2, a regular tetrahedron 0.118 h^3)
CELL_MEASURE = {2: 0.44, 3: 0.24}
#: where the size field grows by ``slope`` per unit length, the elements are smaller by 1 + GRADING slope
GRADING = 0.25
#: vertices per cell (Euler: about 1/2 in 2D; 1/5 to 1/6 in 3D)
VERTICES_PER_CELL = {2: 0.51, 3: 0.19}
#: memory (bytes), fitted to the peak memory of runs of 60k to 400k cells (2D) and 70k to
#: 220k tetrahedra (3D): the libraries; then the larger of Gmsh while meshing (per cell) and
#: the finite-element problem: mesh, fields and forms per cell, and per unknown a matrix with
#: CG + GAMG, or a sparse LU factor growing with log2(unknowns) (2D) or unknowns^(1/3) (3D)
MEMORY_BASE = 0.3e9
MEMORY_GMSH_PER_CELL = {2: 850.0, 3: 1200.0}
MEMORY_FEM_PER_CELL = {2: 600.0, 3: 600.0}
MEMORY_ITERATIVE_PER_DOF = {2: 450.0, 3: 700.0}
MEMORY_LU_PER_DOF = {2: 25.0, 3: 100.0}  # times log2(N) in 2D, times N^(1/3) in 3D


@dataclass
class Estimate:
    """The estimated size of a run (counts are global, memory is all ranks together)."""

    dimension: int
    particles: int
    cells: int
    vertices: int
    dofs: dict[str, int] = field(default_factory=dict)
    memory_gb: float = 0.0
    basis: str = "packing"  # packing, particle file, mesh file

    @property
    def total_dofs(self) -> int:
        return int(sum(self.dofs.values()))

    def text(self) -> str:
        dofs = ", ".join(f"{k} {_count(v)}" for k, v in self.dofs.items())
        return (f"{_count(self.particles)} particles, {_count(self.cells)} cells, {_count(self.vertices)} vertices, "
                f"{_count(self.total_dofs)} DOFs ({dofs}), peak memory {self.memory_gb:.2g} GB")

    def to_dict(self) -> dict:
        return {"particles": self.particles, "cells": self.cells, "vertices": self.vertices, "dofs": dict(self.dofs),
                "memory_gb": round(self.memory_gb, 3), "basis": self.basis}


def _count(n: float) -> str:
    return f"{int(n)}" if n < 1e5 else f"{n:.3g}"


# ----------------------------------------------------------------------------- particles
def _boundary_measure(p) -> float:
    """Perimeter (2D) or surface area (3D) of a particle."""
    if p.dim == 2:
        if p.shape == "circle":
            return 2 * math.pi * p.radius
        pts = p.boundary_points(720)
        return float(np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1).sum())
    if p.shape == "sphere":
        return 4 * math.pi * p.radius ** 2
    if p.shape == "ellipsoid":
        a, b, c = p.axes
        q = 1.6075  # Knud Thomsen's formula (1 % at most)
        return 4 * math.pi * ((a ** q * b ** q + a ** q * c ** q + b ** q * c ** q) / 3) ** (1 / q)
    from scipy.spatial import ConvexHull

    return float(ConvexHull(p.local_corners()).area)


def _corners(p) -> int:
    if p.shape in ("polygon", "polyhedron") and p.corner_radius == 0 and p.coating == 0:
        return len(p.local_corners())
    return 0


def particle_sample(case, samples: int = 64) -> tuple[float, float, float]:
    """Mean measure, mean boundary measure and mean number of sharp corners of the particles
    a case packs (um, drawn as the packing draws them)."""
    from meshes.packing import PackingSpec, _draw_particle

    g, p = case.geometry, case.geometry.particles
    d = p.size_distribution
    um = 1e6
    spec = PackingSpec(
        box=tuple(x * um for x in g.size), volume_fraction=p.volume_fraction, shape=p.shape, radius=p.radius * um,
        sides=p.sides, irregularity=p.irregularity, corner_radius=p.corner_radius * um,
        aspect=tuple(p.aspect) if p.aspect else (), polyhedron=p.polyhedron, vertices=p.vertices,
        distribution=None if d is None else d.type, std=0.0 if d is None or d.std is None else d.std * um,
        r_min=None if d is None or d.min is None else d.min * um, r_max=None if d is None or d.max is None else d.max * um,
        radii=tuple(r * um for r in d.radii) if d is not None and d.radii else (),
        orientation="random" if case.dimension == 2 else (0.0, 0.0, 0.0), coating=p.coating * um, seed=p.seed)
    rng = np.random.default_rng(12345)
    n = samples if (d is not None or p.irregularity > 0 or p.polyhedron == "random") else 1
    parts = [_draw_particle(spec, i, rng) for i in range(n)]
    return (float(np.mean([q.measure() for q in parts])), float(np.mean([_boundary_measure(q) for q in parts])),
            float(np.mean([_corners(q) for q in parts])))


def _file_particles(case):
    from meshes.io import read_particles
    from meshes.packing import DEFAULT_ASPECT

    p, dim = case.geometry.particles, case.dimension
    defaults = {"shape": p.shape, "sides": p.sides, "aspect": p.aspect or DEFAULT_ASPECT[dim],
                "polyhedron": p.polyhedron if p.polyhedron != "random" else "cube",
                "corner_radius": p.corner_radius, "coating": p.coating}
    return read_particles(p.file, dim, defaults, scale=1e6)


# ----------------------------------------------------------------------------- cells
def _side_cells(dim: int, area: float, surface: float, r_in: float, inward: bool, h_i: float, grow_to: float,
                h_far: float, transition: float) -> float:
    """Cells on one side of the interfaces: the element size is h_i at the surface and grows
    linearly to ``grow_to`` over ``transition``, never above ``h_far``; the measure at distance
    s is that of parallel bodies (shrinking inside the particles, growing outside) until
    ``area`` is used up."""
    if area <= 0:
        return 0.0
    c = CELL_MEASURE[dim]
    if surface <= 0 or h_i >= h_far:
        return area / (c * h_far ** dim)
    slope = (grow_to - h_i) / transition
    d_band = (h_far - h_i) / slope if slope > 0 else math.inf  # where the size reaches h_far
    c = c / (1 + GRADING * slope) ** dim  # graded elements are smaller than the size field
    d_end = min(d_band, r_in if inward else math.inf)
    n = 400
    used = cells = 0.0
    # integrate up to d_end or until the area is used up
    top = d_end if math.isfinite(d_end) else transition
    ds = top / n
    for k in range(n):
        s = (k + 0.5) * ds
        shape = (1 - s / r_in) if inward else (1 + s / r_in)
        dA = surface * max(shape, 0.0) ** (dim - 1) * ds
        if used + dA >= area:
            dA = area - used
            cells += dA / (c * (h_i + slope * s) ** dim)
            return cells
        used += dA
        cells += dA / (c * (h_i + slope * s) ** dim)
    return cells + (area - used) / (c * h_far ** dim)


def _corner_cells(dim: int, corners: float, cs: float, h_i: float, grow_to: float, transition: float) -> float:
    """Extra cells around sharp corners refined to corner_size ``cs`` beyond the interface size."""
    if corners <= 0 or cs >= h_i:
        return 0.0
    c = CELL_MEASURE[dim]
    omega = 2 * math.pi if dim == 2 else 4 * math.pi
    n = 400
    ds = transition / n
    extra = 0.0
    for k in range(n):
        s = (k + 0.5) * ds
        hc = cs + (grow_to - cs) * s / transition
        hi = h_i + (grow_to - h_i) * s / transition
        if hc >= hi:
            break
        extra += omega * s ** (dim - 1) * ds * (hc ** -dim - hi ** -dim) / c
    return corners * extra


# ----------------------------------------------------------------------------- the estimate
def estimate(case) -> Estimate:
    """The estimated size of a validated case (SI units)."""
    dim = case.dimension
    g = case.geometry
    um = 1e6
    box = [x * um for x in g.size]
    volume = float(np.prod(box))
    m = g.mesh
    h, h_i, t = m.size * um, m.interface_size * um, m.transition * um
    cs = (m.corner_size * um) if m.corner_size is not None else None
    coarse = m.particle_size is not None and m.particle_size > m.size
    h_p = m.particle_size * um if coarse else h
    if g.mesh.file is not None:
        from meshes.io import msh_summary

        info = msh_summary(g.mesh.file)
        cells = info["cells"]
        particles = sum(1 for tg in info["cell_tags"] if tg >= 1000)
        basis = "mesh file"
        # a first-order file: its nodes are the vertices (a second-order one also has edge nodes)
        vertices = info["nodes"] if m.order == 1 else int(round(cells * VERTICES_PER_CELL[dim]))
    else:
        layers = (g.separator_thickness + g.collector_layer_thickness) * um
        lateral = float(np.prod(box[1:]))
        composite = (box[0] - layers) * lateral
        if g.particles.file is not None:
            parts = _file_particles(case)
            particles = len(parts)
            v_p = float(sum(q.measure() for q in parts))
            s_p = float(sum(_boundary_measure(q) for q in parts))
            n_corners = float(sum(_corners(q) for q in parts))
            basis = "particle file"
        else:
            mean_v, mean_s, mean_c = particle_sample(case)
            particles = max(1, int(round(g.particles.volume_fraction * composite / mean_v)))
            v_p, s_p, n_corners = particles * mean_v, particles * mean_s, particles * mean_c
            basis = "packing"
        v_p = min(v_p, composite)
        r_in = dim * v_p / s_p if s_p > 0 else math.inf
        coat = g.particles.coating * um
        h_if = h_i if coat == 0 else max(min(h_i, coat), h_i / 3)
        layer_faces = (g.separator_thickness > 0) + (g.collector_layer_thickness > 0)
        s_matrix = s_p * (2 if coat > 0 else 1)
        grow_to = h_p if coarse else h
        cells = _side_cells(dim, v_p, s_p, r_in, True, h_if, grow_to, h_p, t)
        cells += _side_cells(dim, volume - v_p, s_matrix, r_in, False, h_if, grow_to, h, t)
        if layer_faces:  # both sides of each layer interface (a plane)
            cells += 2 * layer_faces * (_side_cells(dim, lateral * t, lateral, math.inf, False, h_i, h, h, t)
                                        - lateral * t / (CELL_MEASURE[dim] * h ** dim))
        if cs is not None:
            cells += _corner_cells(dim, n_corners, cs, h_if, grow_to, t)
        cells = int(round(cells))
        vertices = int(round(cells * VERTICES_PER_CELL[dim]))
    order = m.order
    nodes = vertices if order == 1 else (4 * vertices if dim == 2 else 2 * vertices + cells)
    dofs = {"displacement": dim * nodes}
    if case.fracture.enabled:
        dofs["damage"] = vertices
    if case.loading.type == "galvanostatic":
        dofs["lithiation"] = vertices
        dofs["ionic_potential"] = vertices
    est = Estimate(dim, int(particles), int(cells), int(vertices), dofs, basis=basis)
    est.memory_gb = memory_gb(case, est)
    return est


def _direct(case, n_displacement: int) -> bool:
    from solver.numerics.petsc import DIRECT_SOLVE_MAX_DOFS

    kind = case.mechanics.linear_solver
    pc = case.mechanics.petsc_options.get("pc_type")
    if pc is not None:
        return pc in ("lu", "cholesky")
    return kind == "direct" or (kind == "auto" and n_displacement <= DIRECT_SOLVE_MAX_DOFS[case.dimension])


def _lu_per_dof(dim: int, n: int) -> float:
    n = max(n, 2)
    return MEMORY_LU_PER_DOF[dim] * (math.log2(n) if dim == 2 else n ** (1 / 3))


def memory_gb(case, est: Estimate) -> float:
    """Peak memory of the run (GB, all ranks together): the libraries, then the larger of
    Gmsh while meshing and the finite-element problem with its linear solves (a sparse LU
    factor grows faster than the unknowns)."""
    dim = est.dimension
    gmsh = MEMORY_GMSH_PER_CELL[dim] * est.cells
    fem = MEMORY_FEM_PER_CELL[dim] * est.cells
    n_u = est.dofs["displacement"]
    fem += n_u * (_lu_per_dof(dim, n_u) if _direct(case, n_u) else MEMORY_ITERATIVE_PER_DOF[dim])
    # the damage and electrochemistry solves, and the monolithic Newton solve of the
    # accelerated scheme (displacement and damage together): a MUMPS factor each when
    # direct (their linear_solver, auto by size), AMG hierarchies when iterative
    ec = est.dofs.get("lithiation", 0) + est.dofs.get("ionic_potential", 0)
    for key, n in est.dofs.items():
        if key != "displacement":
            fem += n * _solve_per_dof(dim, n, _kind(case, key, n if key == "damage" else ec))
    if case.fracture.enabled and case.fracture.scheme.type == "accelerated":
        n_m = n_u + est.dofs["damage"]
        fem += n_m * _solve_per_dof(dim, n_m, _kind(case, "newton", n_m))
    return (MEMORY_BASE + max(gmsh, fem)) / 1e9


def _kind(case, solve: str, n: int) -> str:
    """``direct`` or ``iterative``: the linear solve ``auto`` takes for ``solve`` (damage,
    newton, lithiation, ionic_potential) of ``n`` unknowns."""
    from solver.numerics.petsc import (DIRECT_DAMAGE_MAX_DOFS, DIRECT_ELECTROCHEMISTRY_MAX_DOFS,
                                       DIRECT_NEWTON_MAX_DOFS, linear_kind)

    if solve == "damage":
        return linear_kind(case.fracture.linear_solver, n, DIRECT_DAMAGE_MAX_DOFS[case.dimension])
    if solve == "newton":
        return linear_kind(case.fracture.scheme.newton_linear_solver, n, DIRECT_NEWTON_MAX_DOFS[case.dimension])
    if case.loading.type != "galvanostatic":
        return "direct"
    return linear_kind(case.loading.linear_solver, n, DIRECT_ELECTROCHEMISTRY_MAX_DOFS[case.dimension])


def _solve_per_dof(dim: int, n: int, kind: str) -> float:
    return _lu_per_dof(dim, n) if kind == "direct" else MEMORY_ITERATIVE_PER_DOF[dim]


# ----------------------------------------------------------------------------- the check
#: the fields that set the size of a run, named in a refusal
SIZE_FIELDS = {
    "max_particles": "geometry.size, geometry.particles.radius (or size_distribution), geometry.particles.volume_fraction",
    "max_cells": "geometry.mesh.size, interface_size, particle_size, transition, corner_size, geometry.size",
    "max_dofs": "geometry.mesh.size, interface_size, geometry.mesh.order, geometry.size",
    "max_memory_gb": "geometry.mesh.size, interface_size, mechanics.linear_solver (iterative needs less memory), "
                     "geometry.size",
}


def check_size(case, source: str, allow_large: bool = False) -> Estimate:
    """Estimate the case and refuse it (CaseError naming the limits and the fields to
    change) when it exceeds its limits, unless ``allow_large``."""
    try:
        est = estimate(case)
    except CaseError:
        raise
    except Exception as exc:  # a message, not a traceback; --allow-large runs the case without the estimate
        if allow_large:
            return Estimate(case.dimension, 0, 0, 0, {}, basis="not estimated")
        raise CaseError(f"{source}: cannot estimate the size of the case ({type(exc).__name__}: {exc}); "
                        "--allow-large runs it without the size check") from None
    if allow_large:
        return est
    lim = case.limits.resolved(case.dimension)
    over = []
    if est.particles > lim["max_particles"]:
        over.append(("max_particles", f"{_count(est.particles)} particles", _count(lim["max_particles"])))
    if est.cells > lim["max_cells"]:
        over.append(("max_cells", f"{_count(est.cells)} cells", _count(lim["max_cells"])))
    if est.total_dofs > lim["max_dofs"]:
        over.append(("max_dofs", f"{_count(est.total_dofs)} DOFs", _count(lim["max_dofs"])))
    if est.memory_gb > lim["max_memory_gb"]:
        over.append(("max_memory_gb", f"{est.memory_gb:.3g} GB of memory", f"{lim['max_memory_gb']:g} GB"))
    if over:
        lines = [f"{source}: limits.{key}: the case needs about {need}, more than {allowed}; change "
                 f"{SIZE_FIELDS[key]}" for key, need, allowed in over]
        lines.append(f"{source}: estimate ({est.basis}): {est.text()}. To run it anyway raise limits.{over[0][0]} "
                     "in the case or give --allow-large")
        raise CaseError("\n".join(lines))
    return est


def report(case, allow_large: bool = False) -> str:
    """The estimate and the limits of a case, one line (``ssbfrac check``)."""
    lim = case.limits.resolved(case.dimension)
    try:
        text = estimate(case).text()
    except Exception as exc:  # (only reachable with --allow-large: check_size refuses such a case otherwise)
        text = f"not available ({type(exc).__name__}: {exc})"
    return (f"estimate: {text}; limits: {lim['max_particles']} particles, {lim['max_cells']:.3g} cells, "
            f"{lim['max_dofs']:.3g} DOFs, {lim['max_memory_gb']:g} GB" + (" (not applied: --allow-large)" if allow_large else ""))
