"""Convex shapes of particles: rotations, regular and random polygons, platonic and random
polyhedra, and their measures (areas, normals, inradii). Lengths are in the caller's unit;
angles in radians."""

from __future__ import annotations

import math

import numpy as np

SHAPES_2D = ("circle", "ellipse", "polygon")


SHAPES_3D = ("sphere", "ellipsoid", "polyhedron")


POLYHEDRA = ("tetrahedron", "cube", "octahedron", "dodecahedron", "icosahedron", "random")


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
