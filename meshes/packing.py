"""Seeded packing of convex particles in a box, 2D and 3D (numpy and scipy only).

1. Population (:func:`population`). Particles are drawn one after another from the seeded
   generator (size from the distribution, corners of random polygons and polyhedra,
   orientation, active material) until their total area (volume in 3D) reaches the target
   fraction of the composite region; then every shape is scaled by one common factor
   (``radius_scale``, close to 1) so that the fraction is met exactly. Fractions above the
   densest packing of the shape family (particles grown by half the gap) are refused at once.
2. Placement. Centres uniformly at random in the region, every particle shrunk to s0 = 0.7.
3. Growth with overlap removal (a compression in the spirit of Lubachevsky-Stillinger, with
   energy minimisation instead of event-driven dynamics). All particles grow by a factor
   (1 + gamma); the constraints the growth violates (gap between two particles, distance to a
   side, depth of a cut by a periodic side) are removed by minimising the penalty energy
   1/2 sum(violation^2) with FIRE (Bitzek et al. 2006) over the centres and, for non-round
   particles with a random orientation, the rotations. When a relaxation succeeds gamma
   grows; when it fails the last feasible state is kept and gamma shrinks. When growth stalls
   the particles are shaken (random kicks, then relaxed at the current size), which lets the
   packing rearrange past local jams. When 12 shakes grew the particles by less than 0.5 %, or the iteration
   budget is spent, :class:`PackingError` reports the fraction reached.
4. Certified gaps. The gap between two particles is bounded from below with support
   functions (:mod:`meshes.separation`): the separating direction found is a certificate, so a
   pair that passes is at least the gap apart. The relaxation aims at ``gap + margin``;
   :func:`check_packing_particles` confirms every constraint with a finer direction search
   (and, for polyhedra, the exact separating direction by non-negative least squares).

With ``overlap`` > 0 particles may also touch (percolating contacts): a pair then either
keeps ``min_gap`` or interpenetrates by between ``overlap / 2`` and ``overlap`` (never a point
contact, which would make a degenerate mesh). Contacts are those of the random start that
survive the compression (the constraints only push apart); :func:`contact_summary` reports
them and the clusters they form.

With ``periodic`` the lateral sides (y, and z in 3D) are periodic: particles may cross them;
a side that cuts a particle (or its coating) cuts at least ``max(boundary_gap, MIN_CUT *
radius)`` deep on both sides, and a particle that does not cross a side keeps
``boundary_gap`` from it.

The same seed and inputs give a bit-identical particle list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from meshes import separation as sep
from meshes import shapes
from meshes.constraints import MIN_CUT, ConstraintProblem, turn
from meshes.geometry import Particle, make_particle
from meshes.tags import MAX_PARTICLES


class PackingError(ValueError):
    """The target cannot be packed; ``reached`` is the fraction that was reached."""

    def __init__(self, message: str, reached: float):
        super().__init__(message)
        self.reached = reached



#: semi-axis ratios of ellipses and ellipsoids when none are given
DEFAULT_ASPECT = {2: (0.6,), 3: (0.8, 0.6)}

#: densest packing fraction of each shape family (with a gap, of the shape grown by gap/2)
DENSEST = {"circle": math.pi / math.sqrt(12), "ellipse": math.pi / math.sqrt(12),
           "sphere": math.pi / math.sqrt(18), "ellipsoid": 0.7707, "polygon": 1.0, "polyhedron": 1.0}


@dataclass(frozen=True)
class PackingSpec:
    """What to pack (lengths in one unit, the solver's um)."""

    box: tuple[float, ...]  # domain size (L_x, L_y[, L_z]); x: separator side -> collector side
    volume_fraction: float  # of the composite region (between the layers)
    shape: str = "circle"
    radius: float = 1.0  # bounding radius (mean of a distribution)
    sides: int = 6
    irregularity: float = 0.0  # 0: regular polygons; > 0: random convex polygons
    corner_radius: float = 0.0
    aspect: tuple[float, ...] = ()  # ellipse b/a; ellipsoid b/a, c/a
    polyhedron: str = "cube"
    vertices: int = 12  # random polyhedra
    distribution: str | None = None  # None, lognormal, normal, list
    std: float = 0.0
    r_min: float | None = None
    r_max: float | None = None
    radii: tuple[float, ...] = ()
    orientation: str | float | tuple = "random"  # 'random', degrees (2D), 3 angles in degrees (3D)
    min_gap: float = 0.1
    boundary_gap: float = 0.1
    overlap: float = 0.0
    coating: float = 0.0
    periodic: bool = False
    separator: float = 0.0  # separator layer thickness (x = 0 side)
    collector_layer: float = 0.0  # collector-side layer thickness (x = L_x side)
    active_b_share: float = 0.0
    seed: int = 1
    max_iterations: int = 20000

    @property
    def dim(self) -> int:
        return len(self.box)

    @property
    def region(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (lo, hi) of the composite region, where the particles go."""
        lo = np.zeros(self.dim)
        hi = np.asarray(self.box, float).copy()
        lo[0] += self.separator
        hi[0] -= self.collector_layer
        return lo, hi

    @property
    def periodic_axes(self) -> tuple[bool, ...]:
        return (False,) + (self.periodic,) * (self.dim - 1)

    def radius_bounds(self) -> tuple[float, float]:
        if self.distribution == "list":
            return min(self.radii), max(self.radii)
        if self.distribution is None:
            return self.radius, self.radius
        return (self.r_min if self.r_min is not None else 0.5 * self.radius,
                self.r_max if self.r_max is not None else 2.0 * self.radius)


@dataclass
class Packing:
    particles: list[Particle]
    box: tuple[float, ...]
    target_fraction: float
    fraction: float  # area/volume of the particles over the composite region
    radius_scale: float
    attempts: int  # relaxation sweeps used
    seed: int
    region: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    periodic: tuple[bool, ...] = ()
    min_gap: float = 0.0
    boundary_gap: float = 0.0
    overlap: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return len(self.box)

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "region": [list(self.region[0]), list(self.region[1])],
            "periodic": list(self.periodic),
            "target_fraction": self.target_fraction,
            "fraction": self.fraction,
            "radius_scale": self.radius_scale,
            "attempts": self.attempts,
            "seed": self.seed,
            "min_gap": self.min_gap,
            "boundary_gap": self.boundary_gap,
            "overlap": self.overlap,
            "particles": [p.to_dict() for p in self.particles],
            **self.extra,
        }


# ----------------------------------------------------------------------------- population
def _draw_radius(spec: PackingSpec, rng) -> float:
    if spec.distribution is None:
        return spec.radius
    if spec.distribution == "list":
        return float(spec.radii[rng.integers(len(spec.radii))])
    lo, hi = spec.radius_bounds()
    for _ in range(100000):
        if spec.distribution == "lognormal":
            s2 = math.log(1 + (spec.std / spec.radius) ** 2)
            r = float(rng.lognormal(math.log(spec.radius) - s2 / 2, math.sqrt(s2)))
        else:
            r = float(rng.normal(spec.radius, spec.std))
        if lo <= r <= hi:
            return r
    raise PackingError(f"could not draw a radius in [{lo:g}, {hi:g}] from the {spec.distribution} distribution", 0.0)


def _draw_particle(spec: PackingSpec, i: int, rng) -> Particle:
    r = _draw_radius(spec, rng)
    dim = spec.dim
    if spec.orientation != "random":
        orientation = spec.orientation
    elif dim == 2:
        orientation = math.degrees(float(rng.uniform(0, 2 * math.pi)))
    else:
        orientation = shapes.random_rotation(rng)
    p = make_particle(i, (0.0,) * dim, r, spec.shape, sides=spec.sides, orientation=orientation,
                          aspect=spec.aspect or DEFAULT_ASPECT[dim], polyhedron=spec.polyhedron if spec.polyhedron != "random" else "cube",
                          corner_radius=spec.corner_radius, coating=spec.coating)
    if spec.shape == "polygon" and spec.irregularity > 0:
        v = shapes.random_convex_polygon(spec.sides, spec.irregularity, rng, r)
        p = replace(p, corners=tuple(tuple(float(x) for x in c) for c in v))
    elif spec.shape == "polyhedron" and spec.polyhedron == "random":
        v = r * shapes.random_polyhedron(spec.vertices, rng)
        p = replace(p, corners=tuple(tuple(float(x) for x in c) for c in v))
    return p


def population(spec: PackingSpec, rng) -> tuple[list[Particle], float]:
    """Particles (centres at the origin) whose total measure is the target exactly, and the
    common scale factor applied to reach it."""
    lo, hi = spec.region
    target = spec.volume_fraction * float(np.prod(hi - lo))
    parts: list[Particle] = []
    total = 0.0
    while total < target:
        p = _draw_particle(spec, len(parts), rng)
        parts.append(p)
        total += p.measure()
        if len(parts) >= MAX_PARTICLES:
            raise PackingError(f"more than {MAX_PARTICLES} particles are needed", 0.0)
    # keep the last particle only if that lands closer to the target
    if len(parts) > 1 and total - target > target - (total - parts[-1].measure()):
        total -= parts.pop().measure()
    scale = (target / total) ** (1.0 / spec.dim)
    parts = [p.scaled(scale) for p in parts]
    if spec.active_b_share > 0:
        parts = _assign_blend(parts, spec.active_b_share, rng)
    return parts, scale


def _assign_blend(parts: list[Particle], share: float, rng) -> list[Particle]:
    """Mark particles (in random order) as the second active material until their share
    of the active volume is closest to ``share``."""
    vols = np.array([p.measure() for p in parts])
    order = rng.permutation(len(parts))
    cum = np.cumsum(vols[order]) / vols.sum()
    k = int(np.argmin(np.abs(np.concatenate([[0.0], cum]) - share)))
    chosen = set(order[:k].tolist())
    return [replace(p, material="active_b") if p.id in chosen else p for p in parts]


# ----------------------------------------------------------------------------- packing
def pack(spec: PackingSpec) -> Packing:
    """Pack the particles of ``spec`` (see the module docstring); raises PackingError."""
    rng = np.random.default_rng(spec.seed)
    parts, scale = population(spec, rng)
    _check_feasible(spec, parts)
    prob = ConstraintProblem(spec, parts)
    lo, hi = spec.region
    dim, n = spec.dim, len(parts)
    R = np.array([p.R() for p in parts])
    s0 = 0.7
    # random centres inside the region (shrunk particles clear of the walls)
    pad = spec.boundary_gap + s0 * prob.bound[:, None]
    u = rng.uniform(size=(n, dim))
    C = np.where(prob.periodic, u * prob.L, lo + pad + u * np.maximum(hi - lo - 2 * pad, 0.0))
    budget = spec.max_iterations
    C, R, ok, used = prob.relax(C, R, s0, min(budget, 3000))
    if not ok:
        raise PackingError(f"could not place {n} particles even at {s0:.0%} of their size: reached fraction "
                           f"{spec.volume_fraction * s0**dim:.3f}", 0.0)
    s, gamma = s0, 0.05
    shaken_at: list[float] = []  # size at each shake
    while s < 1.0:
        jammed = len(shaken_at) >= 12 and s < 1.005 * shaken_at[-12]
        if used >= budget or jammed:
            reached = spec.volume_fraction * s**dim
            why = "the iteration budget (max_attempts) is spent" if used >= budget else "the particles are jammed"
            raise PackingError(
                f"compression of {n} particles stopped at {s:.4f} of their size ({why}): reached fraction "
                f"{reached:.3f} of target {spec.volume_fraction:.3f}", reached)
        if gamma < 4e-3:
            # growth stalls: shake (random kicks, then relax at the current size) to rearrange
            kick = 0.2 * prob.r_mean * rng.normal(size=C.shape)
            Rk = R
            if prob.rotate.any():
                spin = 0.2 * rng.normal(size=(n,) if dim == 2 else (n, 3)) * (prob.rotate if dim == 2 else prob.rotate[:, None])
                Rk = turn(R, spin, dim)
            C1, R1, ok, its = prob.relax(np.where(prob.periodic, np.mod(C + kick, prob.L), C + kick), Rk, s,
                                         min(600, budget - used))
            used += its
            shaken_at.append(s)
            if ok:
                C, R = C1, R1
            gamma = 0.01
            continue
        s_try = min(1.0, s * (1.0 + gamma))
        C1, R1, ok, its = prob.relax(C, R, s_try, min(600, budget - used))
        used += its
        if ok:
            C, R, s = C1, R1, s_try
            if its < 60:
                gamma = min(1.5 * gamma, 0.2)
        else:
            gamma *= 0.5
    placed = _particles(parts, C, R, dim)
    problems = check_packing_particles(placed, spec)
    if problems:  # a few more sweeps fix what the finer check found
        C, R, _, its = prob.relax(C, R, 1.0, 200)
        used += its
        placed = _particles(parts, C, R, dim)
        problems = check_packing_particles(placed, spec)
        if problems:
            raise PackingError("the packing violates: " + "; ".join(problems[:5]), spec.volume_fraction)
    lo, hi = spec.region
    fraction = sum(p.measure() for p in placed) / float(np.prod(hi - lo))
    extra = {"method": "growth with overlap removal", "dimension": dim, "coating": spec.coating}
    if spec.overlap > 0:
        extra.update(contact_summary(placed, spec))
    return Packing(placed, tuple(spec.box), spec.volume_fraction, fraction, scale, used, spec.seed,
                   (tuple(lo), tuple(hi)), spec.periodic_axes, spec.min_gap, spec.boundary_gap, spec.overlap, extra)


def _particles(parts: list[Particle], C: np.ndarray, R: np.ndarray, dim: int) -> list[Particle]:
    out = []
    for p, c, r in zip(parts, C, R):
        if dim == 2:
            out.append(replace(p, center=tuple(float(x) for x in c), angle=float(math.atan2(r[1, 0], r[0, 0]))))
        else:
            u, _, vt = np.linalg.svd(r)  # nearest rotation (removes round-off)
            rot = tuple(tuple(float(x) for x in row) for row in u @ vt)
            out.append(replace(p, center=tuple(float(x) for x in c), rotation=rot))
    return out


def _check_feasible(spec: PackingSpec, parts: list[Particle]) -> None:
    """Refuse fractions that no packing can reach: the particles grown by half the gap
    (Steiner's formula for their area/volume) would fill more than the densest packing of
    their shape family."""
    lo, hi = spec.region
    half = 0.5 * spec.min_gap if spec.overlap == 0 else 0.0
    grown = sum(_grown_measure(p, half) for p in parts)
    bound = DENSEST[spec.shape]
    eff = grown / float(np.prod(hi - lo))
    if eff > bound:
        raise PackingError(
            f"fraction {spec.volume_fraction:.3f} is impossible: with min_gap {spec.min_gap:g} the particles "
            f"(grown by half the gap) would fill {eff:.3f} of the region, more than the densest packing of "
            f"{spec.shape}s ({bound:.3f}): reached fraction 0", 0.0)


def _grown_measure(p: Particle, r: float) -> float:
    """Area/volume of the particle grown by r (a lower bound for ellipses and ellipsoids)."""
    if r == 0:
        return p.measure()
    if p.shape in ("ellipse", "ellipsoid"):
        return p.measure() * float(np.prod([(a + r) / a for a in p.axes]))
    return replace(p, coating=r).outer_measure()


def grown_fraction(shape: str, dim: int, radius: float, sides: int, aspect: tuple, polyhedron: str,
                   corner_radius: float, fraction: float, half_gap: float) -> float | None:
    """Fraction filled by equal particles at ``fraction`` once grown by half the gap (None
    for random polyhedra, whose shape is not known beforehand)."""
    if shape == "polyhedron" and polyhedron == "random":
        return None
    spec = PackingSpec(box=(1.0,) * dim, volume_fraction=fraction, shape=shape, radius=radius, sides=sides,
                       aspect=aspect or DEFAULT_ASPECT[dim], polyhedron=polyhedron,
                       corner_radius=corner_radius, orientation="random" if dim == 2 else (0.0, 0.0, 0.0))
    p = _draw_particle(spec, 0, np.random.default_rng(0))
    return fraction * _grown_measure(p, half_gap) / p.measure()


# ----------------------------------------------------------------------------- checks
def check_packing_particles(particles: list[Particle], spec: PackingSpec, tol: float = 0.0) -> list[str]:
    """Violations (empty list when valid) of the gaps, side distances, overlaps and
    periodic cuts of a particle list, with the fine direction search."""
    if not particles:
        return []
    prob = ConstraintProblem(spec, particles)
    C = np.array([p.center for p in particles])
    R = np.array([p.R() for p in particles])
    body = sep.BodyArrays.world(prob.local, R)
    problems = []
    ij, d = prob.pairs(C, 1.0, max(spec.min_gap, 0.0) + prob.margin)
    if len(ij):
        f = np.maximum(prob.pair_values(body, ij, d, fine=True)[0], prob.pair_values(body, ij, d)[0])
        for (a, b), fv in zip(ij, f):
            if spec.overlap > 0:
                if fv < -spec.overlap - tol:
                    problems.append(f"particles {a} and {b} overlap by more than {spec.overlap:g} ({-fv:.4g})")
                elif -tol < fv < spec.min_gap - tol:
                    problems.append(f"particles {a} and {b} are {fv:.4g} apart (< {spec.min_gap:g}, not in contact)")
            elif fv < spec.min_gap - tol:
                problems.append(f"particles {a} and {b} are {fv:.4g} apart (< {spec.min_gap:g})")
    idx = np.arange(len(particles))
    lo, hi = spec.region
    for k in range(spec.dim):
        e = np.zeros((len(particles), 1, spec.dim))
        e[:, 0, k] = 1.0
        lo_ext = C[:, k] - body.support(idx, -e)[0][:, 0]
        hi_ext = C[:, k] + body.support(idx, e)[0][:, 0]
        if not prob.periodic[k]:
            for i in np.flatnonzero((lo_ext - lo[k] < spec.boundary_gap - tol) | (hi[k] - hi_ext < spec.boundary_gap - tol)):
                problems.append(f"particle {i} is closer than {spec.boundary_gap:g} to a side or layer (axis {'xyz'[k]})")
            continue
        L = spec.box[k]
        cut = np.maximum(spec.boundary_gap, MIN_CUT * prob.bound)
        exts = [(lo_ext, -cut, spec.boundary_gap), (hi_ext, -spec.boundary_gap, cut)]
        if spec.coating > 0:
            exts += [(lo_ext - spec.coating, -cut, spec.boundary_gap), (hi_ext + spec.coating, -spec.boundary_gap, cut)]
        for u, below, above in exts:
            w = u - L * np.round(u / L)
            for i in np.flatnonzero((w > below + tol) & (w < above - tol)):
                problems.append(f"particle {i} is cut by a periodic side less than {max(spec.boundary_gap, MIN_CUT * prob.bound[i]):.4g} "
                                f"deep or is closer than {spec.boundary_gap:g} to it (axis {'xyz'[k]})")
    return problems


def check_packing(packing: Packing, min_gap: float | None = None, boundary_gap: float | None = None,
                  tol: float = 1e-9) -> list[str]:
    """Violations of a finished packing (empty list when valid)."""
    spec = PackingSpec(
        box=tuple(packing.box), volume_fraction=max(packing.fraction, 1e-9),
        min_gap=packing.min_gap if min_gap is None else min_gap,
        boundary_gap=packing.boundary_gap if boundary_gap is None else boundary_gap,
        overlap=packing.overlap, coating=max((p.coating for p in packing.particles), default=0.0),
        periodic=any(packing.periodic),
        separator=packing.region[0][0] if packing.region[0] else 0.0,
        collector_layer=packing.box[0] - packing.region[1][0] if packing.region[1] else 0.0,
    )
    return check_packing_particles(packing.particles, spec, tol)


def contact_summary(particles: list[Particle], spec: PackingSpec) -> dict:
    """Touching pairs, the clusters they form and the x-extent of the largest one (a
    cluster spanning the region from the separator side to the collector side percolates)."""
    prob = ConstraintProblem(spec, particles)
    C = np.array([p.center for p in particles])
    R = np.array([p.R() for p in particles])
    body = sep.BodyArrays.world(prob.local, R)
    ij, d = prob.pairs(C, 1.0, prob.margin)
    touching = ij[prob.pair_values(body, ij, d, fine=True)[0] < 0] if len(ij) else ij
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(particles)
    g = coo_matrix((np.ones(len(touching)), (touching[:, 0], touching[:, 1])), shape=(n, n)) if len(touching) else \
        coo_matrix((n, n))
    ncomp, label = connected_components(g, directed=False)
    lo, hi = spec.region
    x_lo = C[:, 0] - np.array([p.radius for p in particles])
    x_hi = C[:, 0] + np.array([p.radius for p in particles])
    span = max(float(x_hi[label == c].max() - x_lo[label == c].min()) for c in range(ncomp)) / float(hi[0] - lo[0])
    return {"contacts": [[int(a), int(b)] for a, b in touching], "clusters": int(ncomp),
            "largest_cluster_span_x": span}


def packing_from_particles(particles: list[Particle], spec: PackingSpec) -> Packing:
    """A Packing of a given particle list (e.g. read from a file), after checking it."""
    problems = check_packing_particles(particles, spec, tol=1e-9)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise PackingError("the particle list is not valid: " + "; ".join(problems[:5]) + more, 0.0)
    lo, hi = spec.region
    fraction = sum(p.measure() for p in particles) / float(np.prod(hi - lo))
    return Packing(list(particles), tuple(spec.box), fraction, fraction, 1.0, 0, spec.seed, (tuple(lo), tuple(hi)),
                   spec.periodic_axes, spec.min_gap, spec.boundary_gap, spec.overlap, {"method": "particle list"})


__all__ = ["PackingError", "PackingSpec", "Packing", "pack", "population", "check_packing",
           "check_packing_particles", "packing_from_particles", "contact_summary"]
