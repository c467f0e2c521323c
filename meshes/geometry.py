"""Particle shapes in 2D and 3D as convex bodies: construction, measures, support functions.

A particle is the Minkowski sum of up to three convex parts given in its own frame
(centre at the origin) and turned by its rotation R:

===========  ===========================================  ==================  =============
shape        polytope P (corners)                         ellipsoid E         ball rho
===========  ===========================================  ==================  =============
circle       the origin                                   -                   radius
ellipse      the origin                                   semi-axes (a, b)    -
polygon      corners; eroded by the corner radius         -                   corner radius
             when the corners are rounded
sphere       the origin                                   -                   radius
ellipsoid    the origin                                   semi-axes (a, b, c) -
polyhedron   corners                                      -                   -
===========  ===========================================  ==================  =============

The support function of such a sum, h(n) = max over the body of n.x, is the sum of the
parts' support functions,

    h(n) = max_k n.(R p_k) + sqrt(n^T R diag(a^2) R^T n) + rho,

and the support point (where the maximum is reached) is the sum of the parts' support
points. For two convex bodies A and B every unit vector n gives a lower bound of their
signed distance (the distance when apart, minus the penetration depth when they overlap),

    sd(A, B) >= n.(c_B - c_A) - h_A(n) - h_B(-n),

with equality for the best n (separating-axis theorem). The packing and the checks use
this bound: a direction with a value >= g *proves* a gap of at least g.

A coating of thickness t is the parallel body (the body plus a ball of radius t, i.e.
rho + t) for circles, polygons, spheres and polyhedra: uniform thickness. For ellipses
and ellipsoids it is the ellipse/ellipsoid with semi-axes a + t, b + t (, c + t): exact
at the ends of the axes and thinner in between (by 5 % for an aspect ratio of 1/2).

Lengths are in the caller's unit (the solver uses um); angles in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from meshes.separation import BodyArrays, directions, signed_distance
from meshes.shapes import (MAX_SIDES, SHAPES_2D, SHAPES_3D, erode_polygon, platonic, polygon_area, polygon_normals,
                           polygon_perimeter, polyhedron_faces, polyhedron_normals, regular_polygon, rotation_2d,
                           rotation_from_angles)

MATERIALS = ("active", "active_b")


# ----------------------------------------------------------------------------- particles
@dataclass(frozen=True)
class Particle:
    """One active-material particle.

    ``radius`` is the bounding radius (circumradius of polygons and polyhedra, largest
    semi-axis of ellipses and ellipsoids). 2D particles are turned by ``angle``; 3D ones by
    ``rotation`` (3x3, local to global, rows). ``corners`` are the sharp corners of polygons
    and polyhedra in the particle frame (default: a regular polygon with ``sides`` corners,
    one of them on the local x axis). ``coating`` is the thickness of the coating shell
    (0: none), ``material`` the active material (``active`` or ``active_b``).
    """

    id: int
    center: tuple[float, ...]
    radius: float
    shape: str = "circle"
    sides: int = 0
    angle: float = 0.0
    rotation: tuple | None = None
    corners: tuple | None = None
    axes: tuple | None = None
    corner_radius: float = 0.0
    coating: float = 0.0
    material: str = "active"

    # -------------------------------------------------------------- frame and parts
    @property
    def dim(self) -> int:
        return len(self.center)

    def R(self) -> np.ndarray:
        """Rotation matrix (dim x dim), particle frame to global frame."""
        if self.dim == 2:
            return rotation_2d(self.angle)
        return np.eye(3) if self.rotation is None else np.asarray(self.rotation, float)

    def rotation3(self) -> np.ndarray:
        """The orientation as a 3x3 rotation (about z in 2D): for anisotropic expansion."""
        if self.dim == 3:
            return self.R()
        out = np.eye(3)
        out[:2, :2] = rotation_2d(self.angle)
        return out

    def local_corners(self) -> np.ndarray:
        """Sharp corners in the particle frame (polygons, polyhedra)."""
        if self.corners is not None:
            return np.asarray(self.corners, float)
        if self.shape == "polygon":
            return regular_polygon(self.sides, self.radius)
        raise ValueError(f"a {self.shape} has no corners")

    def vertices(self) -> np.ndarray:
        """Sharp corners in the global frame, shape (corners, dim)."""
        if self.shape not in ("polygon", "polyhedron"):
            raise ValueError("only polygons and polyhedra have vertices")
        return np.asarray(self.center) + self.local_corners() @ self.R().T

    def parts(self, outer: bool = False) -> tuple[np.ndarray, np.ndarray | None, float]:
        """(polytope corners P (k, dim), ellipsoid semi-axes or None, ball radius rho) in the
        particle frame; ``outer``: of the coated particle."""
        t = self.coating if outer else 0.0
        d = self.dim
        if self.shape in ("circle", "sphere"):
            return np.zeros((1, d)), None, self.radius + t
        if self.shape in ("ellipse", "ellipsoid"):
            return np.zeros((1, d)), np.asarray(self.axes, float) + t, 0.0
        v = self.local_corners()
        if self.corner_radius > 0:
            v = erode_polygon(v, self.corner_radius)
        return v, None, self.corner_radius + t

    def edge_pairs(self) -> list[tuple[int, int]]:
        """The sharp edges of a polygon or polyhedron as pairs of corner indices (each edge
        once; the polyhedron's from its faces, coplanar hull triangles merged)."""
        if self.shape == "polygon":
            n = len(self.local_corners())
            return [(i, (i + 1) % n) for i in range(n)]
        if self.shape != "polyhedron":
            raise ValueError(f"a {self.shape} has no edges")
        pairs: dict[tuple, tuple[int, int]] = {}
        for f in polyhedron_faces(self.local_corners()):
            for a, b in zip(f, f[1:] + f[:1]):
                pairs.setdefault((min(a, b), max(a, b)), (a, b))
        return list(pairs.values())  # as the faces first meet them

    def edges(self) -> np.ndarray:
        """The sharp edges in the global frame, shape (edges, 2, dim): their end points."""
        v = self.vertices()
        return np.array([(v[a], v[b]) for a, b in self.edge_pairs()])

    def local_edges(self) -> np.ndarray:
        """Unit directions of the distinct edges of a polyhedron in the particle frame (their
        cross products are the edge-edge separating axes); none for other shapes."""
        if self.shape != "polyhedron":
            return np.zeros((0, self.dim))
        v = self.local_corners()
        dirs = []
        for a, b in self.edge_pairs():
            e = v[b] - v[a]
            e /= np.linalg.norm(e)
            if not any(abs(abs(np.dot(e, q)) - 1) < 1e-9 for q in dirs):
                dirs.append(e)
        return np.array(dirs)

    def local_normals(self) -> np.ndarray:
        """Face (edge in 2D) normals of the polytope part in the particle frame (none for
        round shapes): candidate separating directions."""
        if self.shape == "polygon":
            return polygon_normals(self.local_corners())[0]
        if self.shape == "polyhedron":
            return polyhedron_normals(self.local_corners())
        return np.zeros((0, self.dim))

    # -------------------------------------------------------------- measures
    def measure(self) -> float:
        """Area (2D) or volume (3D) of the particle (without its coating)."""
        return _measure(self, outer=False)

    def outer_measure(self) -> float:
        """Area (2D) or volume (3D) of the coated particle."""
        return _measure(self, outer=True)

    def bounding_radius(self, outer: bool = False) -> float:
        return self.radius + (self.coating if outer else 0.0)

    # -------------------------------------------------------------- geometry queries
    def support(self, n: np.ndarray, outer: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Support function h(n) and support points (relative to the centre) for unit
        directions n (m, dim) in the global frame."""
        b = BodyArrays.from_particles([self], outer)
        return b.support(np.zeros(len(n), dtype=int), np.asarray(n, float)[:, None, :])

    def boundary_points(self, n: int = 720, outer: bool = False) -> np.ndarray:
        """Points on the boundary (global frame): support points of n directions (2D:
        counter-clockwise, a closed polygon that traces arcs and corners)."""
        dirs = directions(self.dim, n)
        _, x = self.support(dirs, outer)
        return np.asarray(self.center) + x[:, 0, :]

    def signed_distance(self, points: np.ndarray, outer: bool = False) -> np.ndarray:
        """Signed distance of points (m, dim) to the particle surface (negative inside)."""
        return signed_distance(self, points, outer)

    def contains(self, points: np.ndarray, outer: bool = False) -> np.ndarray:
        """Whether points (m, dim) lie inside the particle (or inside its coated outline)."""
        x = (np.asarray(points, float) - np.asarray(self.center)) @ self.R()
        t = self.coating if outer else 0.0
        if self.shape in ("circle", "sphere"):
            return np.einsum("md,md->m", x, x) <= (self.radius + t) ** 2
        if self.shape in ("ellipse", "ellipsoid"):
            return (((x / (np.asarray(self.axes) + t)) ** 2).sum(axis=1)) <= 1.0
        if self.shape == "polygon":
            return self.signed_distance(points, outer) <= 0
        from scipy.spatial import ConvexHull

        eq = ConvexHull(self.local_corners()).equations
        depth = (x @ eq[:, :3].T + eq[:, 3]).max(axis=1)  # > 0 outside; the distance where a face is nearest
        inside = depth <= 0
        band = np.flatnonzero(~inside & (depth <= t))
        if len(band):
            inside[band] = self.signed_distance(np.asarray(points)[band]) <= t
        return inside

    def scaled(self, f: float) -> "Particle":
        """The particle with every length of its shape multiplied by f (coating unchanged)."""
        return replace(
            self, radius=self.radius * f,
            corners=None if self.corners is None else tuple(tuple(c * f for c in row) for row in self.corners),
            axes=None if self.axes is None else tuple(a * f for a in self.axes),
            corner_radius=self.corner_radius * f,
        )

    def in_units(self, f: float) -> "Particle":
        """The particle with every length (centre and coating included) multiplied by f."""
        return replace(self.scaled(f), center=tuple(c * f for c in self.center), coating=self.coating * f)

    # -------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        d = {
            "id": int(self.id), "center": [float(c) for c in self.center], "radius": float(self.radius),
            "shape": self.shape, "sides": int(self.sides), "angle": float(self.angle),
            "rotation": self.rotation3().tolist(), "material": self.material,
            "measure": self.measure(),
        }
        if self.shape in ("polygon", "polyhedron"):
            d["corners"] = self.local_corners().tolist()
        if self.axes is not None:
            d["axes"] = [float(a) for a in self.axes]
        if self.corner_radius:
            d["corner_radius"] = float(self.corner_radius)
        if self.coating:
            d["coating"] = float(self.coating)
        return d

    @staticmethod
    def from_dict(d: dict) -> "Particle":
        center = tuple(float(c) for c in d["center"])
        rot = None
        if len(center) == 3 and d.get("rotation") is not None:
            rot = tuple(tuple(float(x) for x in row) for row in d["rotation"])
        corners = d.get("corners")
        return Particle(
            id=int(d["id"]), center=center, radius=float(d["radius"]), shape=d.get("shape", "circle"),
            sides=int(d.get("sides", 0) or 0), angle=float(d.get("angle", 0.0) or 0.0), rotation=rot,
            corners=None if corners is None else tuple(tuple(float(x) for x in c) for c in corners),
            axes=None if d.get("axes") is None else tuple(float(a) for a in d["axes"]),
            corner_radius=float(d.get("corner_radius", 0.0) or 0.0), coating=float(d.get("coating", 0.0) or 0.0),
            material=d.get("material", "active"),
        )


def make_particle(i: int, center, radius: float, shape: str, *, sides: int = 6, orientation=0.0,
                  aspect=(), polyhedron: str = "cube", corner_radius: float = 0.0, coating: float = 0.0,
                  material: str = "active") -> Particle:
    """A particle of a regular shape (no random corners). ``orientation``: an angle in
    degrees (2D) or a 3x3 rotation / three angles in degrees about x, y, z (3D)."""
    center = tuple(float(c) for c in center)
    dim = len(center)
    if shape not in (SHAPES_2D if dim == 2 else SHAPES_3D):
        raise ValueError(f"shape {shape!r} is not a {dim}D shape; allowed: {', '.join(SHAPES_2D if dim == 2 else SHAPES_3D)}")
    if material not in MATERIALS:
        raise ValueError(f"material {material!r}; allowed: {', '.join(MATERIALS)}")
    angle, rot = 0.0, None
    if dim == 2:
        angle = math.radians(float(orientation))
    else:
        R = np.asarray(orientation, float)
        R = R if R.shape == (3, 3) else rotation_from_angles(R)
        rot = tuple(tuple(float(x) for x in row) for row in R)
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius {radius!r} must be a positive number")
    corners = axes = None
    if shape == "polygon":
        if isinstance(sides, bool) or int(sides) != sides or not 3 <= sides <= MAX_SIDES:
            raise ValueError(f"sides = {sides!r}: a polygon has a whole number of sides from 3 to {MAX_SIDES}")
        corners = regular_polygon(int(sides), radius)
    elif shape == "polyhedron":
        corners = radius * platonic(polyhedron)
    elif shape in ("ellipse", "ellipsoid"):
        if len(aspect) != dim - 1:
            raise ValueError(f"a {shape} needs {dim - 1} aspect ratio(s), got {list(aspect)}")
        if not all(math.isfinite(a) and 0 < a <= 1 for a in aspect):
            raise ValueError(f"aspect ratios {list(aspect)} must lie in (0, 1]")
        axes = (float(radius),) + tuple(float(radius * a) for a in aspect)
    if corners is not None:
        corners = tuple(tuple(float(x) for x in c) for c in corners)
    return Particle(int(i), center, float(radius), shape, sides if shape == "polygon" else 0, angle, rot, corners,
                    axes, float(corner_radius), float(coating), material)


def _measure(p: Particle, outer: bool) -> float:
    t = p.coating if outer else 0.0
    if p.shape == "circle":
        return math.pi * (p.radius + t) ** 2
    if p.shape == "sphere":
        return 4.0 / 3.0 * math.pi * (p.radius + t) ** 3
    if p.shape == "ellipse":
        a, b = (x + t for x in p.axes)
        return math.pi * a * b
    if p.shape == "ellipsoid":
        a, b, c = (x + t for x in p.axes)
        return 4.0 / 3.0 * math.pi * a * b * c
    P, _, rho = p.parts(outer)
    if p.shape == "polygon":
        # Steiner: area of (polygon + disc of radius rho)
        return polygon_area(P) + polygon_perimeter(P) * rho + math.pi * rho**2
    from scipy.spatial import ConvexHull

    hull = ConvexHull(P)
    if rho == 0:
        return float(hull.volume)
    # Steiner: V + S rho + M rho^2 + 4/3 pi rho^3, M = sum over edges of length * (pi - dihedral) / 2
    faces = polyhedron_faces(P)
    normal = {}
    for f in faces:
        n = np.cross(P[f[1]] - P[f[0]], P[f[2]] - P[f[0]])
        n /= np.linalg.norm(n)
        for a, b in zip(f, f[1:] + f[:1]):
            normal.setdefault((min(a, b), max(a, b)), []).append(n)
    M = 0.0
    for (a, b), ns in normal.items():
        turn = math.acos(max(-1.0, min(1.0, float(np.dot(ns[0], ns[1])))))  # pi - dihedral angle
        M += np.linalg.norm(P[a] - P[b]) * turn / 2
    return float(hull.volume + hull.area * rho + M * rho**2 + 4.0 / 3.0 * math.pi * rho**3)


def distance_to_edges(points: np.ndarray, particles: list[Particle]) -> np.ndarray:
    """Distance of each point (n, dim) to the nearest sharp edge of the particles (polygon
    sides in 2D, polyhedron edges in 3D), in the points' units. Only the particles given
    count: for periodic sides, pass their periodic images too."""
    seg = np.concatenate([p.edges() for p in particles])
    a, ab = seg[:, 0], seg[:, 1] - seg[:, 0]
    out = np.full(len(points), np.inf)
    for i in range(0, len(points), 4096):  # in chunks: (points, edges, dim) stays small
        p = points[i:i + 4096, None, :] - a[None]
        t = np.clip(np.einsum("pek,ek->pe", p, ab) / np.einsum("ek,ek->e", ab, ab), 0.0, 1.0)
        out[i:i + 4096] = np.min(np.linalg.norm(p - t[..., None] * ab[None], axis=2), axis=1)
    return out
