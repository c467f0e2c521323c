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

SHAPES_2D = ("circle", "ellipse", "polygon")
SHAPES_3D = ("sphere", "ellipsoid", "polyhedron")
POLYHEDRA = ("tetrahedron", "cube", "octahedron", "dodecahedron", "icosahedron", "random")
MATERIALS = ("active", "active_b")

#: smallest inradius / circumradius of a random convex polygon or polyhedron (no slivers)
MIN_ROUNDNESS = 0.35


# ----------------------------------------------------------------------------- rotations
def rotation_2d(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def rotation_from_angles(angles_deg) -> np.ndarray:
    """Rotation about the fixed x, y then z axes by the given angles (degrees)."""
    ax, ay, az = (math.radians(a) for a in angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(rng) -> np.ndarray:
    """Uniformly distributed 3D rotation (normalised Gaussian quaternion)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotate_small(R: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """exp([omega]x) R for rotation vectors omega (..., 3) and matrices R (..., 3, 3) (Rodrigues)."""
    th = np.linalg.norm(omega, axis=-1)
    safe = np.where(th > 0, th, 1.0)
    k = omega / safe[..., None]
    K = np.zeros(omega.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    s, c = np.sin(th)[..., None, None], np.cos(th)[..., None, None]
    E = np.eye(3) + s * K + (1 - c) * (K @ K)
    return E @ R


# ----------------------------------------------------------------------------- polytopes
#: most corners of a polygon particle (the case schema allows the same)
MAX_SIDES = 24


def regular_polygon(sides: int, radius: float = 1.0) -> np.ndarray:
    """Corners (counter-clockwise) of a regular polygon with a corner on the +x axis."""
    t = 2 * np.pi * np.arange(sides) / sides
    return radius * np.column_stack([np.cos(t), np.sin(t)])


def random_convex_polygon(sides: int, irregularity: float, rng, radius: float = 1.0) -> np.ndarray:
    """Corners of a random convex polygon inscribed in a circle: corner k at the angle
    2 pi (k + irregularity * u_k) / sides with u_k uniform in (-1/2, 1/2). Shapes thinner
    than MIN_ROUNDNESS (inradius / circumradius) are drawn again."""
    base = 2 * np.pi * np.arange(sides) / sides
    for _ in range(1000):
        t = base + irregularity * (2 * np.pi / sides) * rng.uniform(-0.5, 0.5, sides) + rng.uniform(0, 2 * np.pi)
        v = radius * np.column_stack([np.cos(t), np.sin(t)])
        if polygon_inradius(v) >= MIN_ROUNDNESS * radius:
            return v
    raise ValueError(f"could not draw a convex {sides}-gon with irregularity {irregularity}")


def polygon_normals(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals and offsets (n.x <= d inside) of a counter-clockwise polygon."""
    e = np.roll(v, -1, axis=0) - v
    n = np.column_stack([e[:, 1], -e[:, 0]])
    n /= np.linalg.norm(n, axis=1)[:, None]
    return n, np.einsum("kd,kd->k", n, v)


def polygon_inradius(v: np.ndarray) -> float:
    """Distance from the origin to the nearest edge line (negative if outside)."""
    return float(polygon_normals(v)[1].min())


def polygon_area(v: np.ndarray) -> float:
    x, y = v[:, 0], v[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def polygon_perimeter(v: np.ndarray) -> float:
    return float(np.linalg.norm(np.roll(v, -1, axis=0) - v, axis=1).sum()) if len(v) > 1 else 0.0


def erode_polygon(v: np.ndarray, r: float) -> np.ndarray:
    """The convex polygon v shrunk by r (every edge moved inward by r); the origin must
    stay inside. Corners that disappear are dropped."""
    n, d = polygon_normals(v)
    if d.min() - r <= 0:
        raise ValueError(f"corner radius {r:g} is too large for a polygon of inradius {d.min():g}")
    # intersect consecutive offset edge lines, dropping edges that vanish
    keep = list(range(len(v)))
    while True:
        nn, dd = n[keep], d[keep] - r
        m = len(keep)
        pts = []
        for k in range(m):
            a, b = (k - 1) % m, k
            A = np.array([nn[a], nn[b]])
            pts.append(np.linalg.solve(A, [dd[a], dd[b]]))
        pts = np.array(pts)  # pts[k]: start corner of edge k
        # an edge vanishes when its end comes before its start along its direction
        tang = np.column_stack([-nn[:, 1], nn[:, 0]])
        length = np.einsum("kd,kd->k", np.roll(pts, -1, axis=0) - pts, tang)
        if length.min() > -1e-12 * max(1.0, r) or m <= 3:
            return pts
        keep.pop(int(np.argmin(length)))


def platonic(kind: str) -> np.ndarray:
    """Corners of a regular polyhedron with circumradius 1."""
    p = (1 + math.sqrt(5)) / 2
    if kind == "tetrahedron":
        v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)
    elif kind == "cube":
        v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    elif kind == "octahedron":
        v = np.vstack([np.eye(3), -np.eye(3)])
    elif kind == "icosahedron":
        v = np.array([c for a in (-1, 1) for b in (-p, p) for c in ([0, a, b], [a, b, 0], [b, 0, a])], float)
    elif kind == "dodecahedron":
        cube = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
        rest = [c for a in (-1 / p, 1 / p) for b in (-p, p) for c in ([0, a, b], [a, b, 0], [b, 0, a])]
        v = np.array(cube + rest, float)
    else:
        raise ValueError(f"unknown polyhedron {kind!r}; allowed: {', '.join(POLYHEDRA)}")
    return v / np.linalg.norm(v, axis=1).max()


def random_polyhedron(vertices: int, rng) -> np.ndarray:
    """Convex hull of random points on the unit sphere (hull corners only); hulls thinner
    than MIN_ROUNDNESS (inradius / circumradius) are drawn again."""
    from scipy.spatial import ConvexHull

    for _ in range(1000):
        p = rng.normal(size=(vertices, 3))
        p /= np.linalg.norm(p, axis=1)[:, None]
        hull = ConvexHull(p)
        if -hull.equations[:, 3].max() >= MIN_ROUNDNESS:
            return p[np.sort(hull.vertices)]
    raise ValueError(f"could not draw a random polyhedron with {vertices} vertices")


def polyhedron_faces(v: np.ndarray) -> list[list[int]]:
    """Faces of the convex hull of v (corner indices, counter-clockwise seen from outside);
    coplanar hull triangles are merged into one polygonal face."""
    from scipy.spatial import ConvexHull

    hull = ConvexHull(v)
    scale = np.abs(v).max()
    groups: dict[tuple, set] = {}
    normals: dict[tuple, np.ndarray] = {}
    for simplex, eq in zip(hull.simplices, hull.equations):
        key = tuple(np.round(np.append(eq[:3], eq[3] / scale), 6))
        groups.setdefault(key, set()).update(int(i) for i in simplex)
        normals[key] = eq[:3]
    faces = []
    for key in sorted(groups):
        idx = np.array(sorted(groups[key]))
        n = normals[key]
        c = v[idx].mean(axis=0)
        u = v[idx[0]] - c
        u /= np.linalg.norm(u)
        w = np.cross(n, u)
        ang = np.arctan2((v[idx] - c) @ w, (v[idx] - c) @ u)
        faces.append([int(i) for i in idx[np.argsort(ang)]])
    return faces


def polyhedron_normals(v: np.ndarray) -> np.ndarray:
    """Outward unit normals of the hull faces of v (coplanar triangles merged)."""
    from scipy.spatial import ConvexHull

    eq = ConvexHull(v).equations
    return np.unique(np.round(eq[:, :3], 9), axis=0)


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

    def local_edges(self) -> np.ndarray:
        """Unit directions of the distinct edges of a polyhedron in the particle frame (their
        cross products are the edge-edge separating axes); none for other shapes."""
        if self.shape != "polyhedron":
            return np.zeros((0, self.dim))
        v = self.local_corners()
        dirs = []
        for f in polyhedron_faces(v):
            for a, b in zip(f, f[1:] + f[:1]):
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


# ----------------------------------------------------------------------------- support arrays
def directions(dim: int, n: int, phase: float = 0.0) -> np.ndarray:
    """n unit vectors spread evenly: angles phase + 2 pi k / n in 2D, a Fibonacci sphere in 3D."""
    if dim == 2:
        t = phase + 2 * np.pi * np.arange(n) / n
        return np.column_stack([np.cos(t), np.sin(t)])
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    t = np.pi * (1 + 5**0.5) * k
    return np.column_stack([r * np.cos(t), r * np.sin(t), z])


class BodyArrays:
    """Support data of N convex bodies in the global frame (relative to their centres):
    polytope corners padded to a common count, ellipsoid matrices Q = R diag(a^2) R^T and
    ball radii. ``normals`` are the polytope face normals (padded), candidate directions."""

    def __init__(self, P: np.ndarray, Q: np.ndarray | None, rho: np.ndarray, normals: np.ndarray,
                 edges: np.ndarray):
        self.P, self.Q, self.rho, self.normals, self.edges = P, Q, rho, normals, edges

    @staticmethod
    def local(particles: list[Particle], outer: bool = False):
        """Particle-frame arrays (P, semi-axes, rho, face normals, edge directions) padded over
        the particles."""
        dim = particles[0].dim
        parts = [p.parts(outer) for p in particles]
        K = max(len(P) for P, _, _ in parts)
        P = np.zeros((len(parts), K, dim))
        axes = np.zeros((len(parts), dim))
        rho = np.zeros(len(parts))
        for i, (Pi, ai, ri) in enumerate(parts):
            P[i, : len(Pi)] = Pi
            P[i, len(Pi):] = Pi[0]
            if ai is not None:
                axes[i] = ai
            rho[i] = ri
        return P, axes, rho, _pad([p.local_normals() for p in particles], dim), _pad(
            [p.local_edges() for p in particles], dim)

    @staticmethod
    def world(local, R: np.ndarray, scale: float = 1.0) -> "BodyArrays":
        P, axes, rho, normals, edges = local
        Pw = scale * np.einsum("nij,nkj->nki", R, P)
        Q = None
        if np.any(axes > 0):
            Q = scale**2 * np.einsum("nij,nj,nkj->nik", R, axes**2, R)
        turn = lambda x: np.einsum("nij,nkj->nki", R, x)  # noqa: E731
        return BodyArrays(Pw, Q, scale * rho, turn(normals), turn(edges))

    @staticmethod
    def from_particles(particles: list[Particle], outer: bool = False) -> "BodyArrays":
        R = np.array([p.R() for p in particles])
        return BodyArrays.world(BodyArrays.local(particles, outer), R)

    def support(self, idx: np.ndarray, n: np.ndarray, smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """h (m, J) and support points (m, J, dim) of bodies idx (m,) in directions n (m, J, dim).

        With ``smooth`` > 0 the polytope part of the support point is the mean of the corners
        weighted by exp((n.p_k - h) / smooth): corners within about ``smooth`` of the support
        plane share it, so a face lying flat on a plane gets its centre as support point
        (no spurious torque). h is exact either way."""
        P = self.P[idx]
        proj = np.einsum("mkd,mjd->mjk", P, n)
        k = np.argmax(proj, axis=2)
        h = np.take_along_axis(proj, k[..., None], axis=2)[..., 0]
        if smooth > 0:
            w = np.exp((proj - h[..., None]) / smooth)
            arm = np.einsum("mjk,mkd->mjd", w / w.sum(axis=2, keepdims=True), P)
        else:
            arm = P[np.arange(len(idx))[:, None], k]
        if self.Q is not None:
            Qn = np.einsum("mde,mje->mjd", self.Q[idx], n)
            hq = np.sqrt(np.maximum(np.einsum("mjd,mjd->mj", n, Qn), 0.0))
            h = h + hq
            arm = arm + Qn / np.where(hq > 0, hq, 1.0)[..., None]
        rho = self.rho[idx][:, None]
        return h + rho, arm + rho[..., None] * n


def _pad(arrays: list[np.ndarray], dim: int) -> np.ndarray:
    """Stack per-body direction lists, padded by repeating the first one (x axis if none)."""
    K = max(1, max(len(a) for a in arrays))
    out = np.zeros((len(arrays), K, dim))
    for i, a in enumerate(arrays):
        if len(a):
            out[i, : len(a)] = a
            out[i, len(a):] = a[0]
        else:
            out[i, :, 0] = 1.0
    return out


def _tangent_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to unit vectors n (..., 3) and to each other."""
    a = np.where(np.abs(n[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    u = np.cross(n, a)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return u, np.cross(n, u)


def maximise_on_sphere(f, n0: np.ndarray, value0: np.ndarray, step: float, rounds: int):
    """Pattern search of f (directions (m, J, dim) -> values (m, J)) around the best
    directions n0 (m, dim), starting with angle ``step`` and shrinking it by 3 each round
    (2D: 6 trial angles a round; 3D: 8 trial directions on a cone). Returns (n, value)."""
    dim = n0.shape[1]
    n, val = n0.copy(), value0.copy()
    for _ in range(rounds):
        if dim == 2:
            a = np.arctan2(n[:, 1], n[:, 0])[:, None] + step * np.array([-3, -2, -1, 1, 2, 3]) / 3
            trial = np.stack([np.cos(a), np.sin(a)], axis=2)
        else:
            u, w = _tangent_basis(n)
            phi = 2 * np.pi * np.arange(8) / 8
            c, s = math.cos(step), math.sin(step)
            trial = (c * n[:, None, :] + s * (np.cos(phi)[None, :, None] * u[:, None, :]
                                              + np.sin(phi)[None, :, None] * w[:, None, :]))
        v = f(trial)
        j = np.argmax(v, axis=1)
        better = v[np.arange(len(n)), j] > val
        n[better] = trial[better, j[better]]
        val[better] = v[better, j[better]]
        step /= 3.0
    return n, val


def signed_distance(p: Particle, points: np.ndarray, outer: bool = False) -> np.ndarray:
    """Signed distance from points (m, dim) to the surface of p (negative inside).

    Exact for circles, spheres and polygons; otherwise the maximum over directions n of
    n.(x - c) - h(n) (exact at the best n), found on a direction grid refined by a
    pattern search: a lower bound accurate to about 1e-4 of the particle size."""
    x = np.asarray(points, float) - np.asarray(p.center)
    if p.shape in ("circle", "sphere"):
        return np.linalg.norm(x, axis=1) - (p.radius + (p.coating if outer else 0.0))
    if len(x) == 0:
        return np.zeros(0)
    if p.shape == "polygon":
        core, _, rho = p.parts(outer)
        return _polygon_signed_distance(core @ p.R().T, x) - rho
    body = BodyArrays.from_particles([p], outer)
    grid = directions(p.dim, 72 if p.dim == 2 else 400)
    cand = np.vstack([grid, body.normals[0]])
    h, _ = body.support(np.zeros(1, dtype=int), cand[None])
    vals = x @ cand.T - h
    j = np.argmax(vals, axis=1)
    idx = np.zeros(len(x), dtype=int)

    def f(n):
        hh, _ = body.support(idx[: len(n)], n)
        return np.einsum("md,mjd->mj", x, n) - hh

    step = 2 * np.pi / 72 if p.dim == 2 else 0.15
    _, best = maximise_on_sphere(f, cand[j], vals[np.arange(len(x)), j], step, 6)
    return best


def _polygon_signed_distance(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact signed distance from points x (m, 2) to the convex polygon v (counter-clockwise)."""
    a, b = v, np.roll(v, -1, axis=0)
    ab = b - a
    ap = x[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("mkd,kd->mk", ap, ab) / np.einsum("kd,kd->k", ab, ab), 0.0, 1.0)
    d = np.linalg.norm(ap - t[..., None] * ab[None], axis=2).min(axis=1)
    n, off = polygon_normals(v)
    inside = np.all(x @ n.T <= off, axis=1)
    return np.where(inside, -d, d)


def particle_surface_distance(p: Particle, points: np.ndarray) -> np.ndarray:
    """Distance from points (m, dim) outside a particle to its surface (0 inside)."""
    return np.maximum(signed_distance(p, points), 0.0)
