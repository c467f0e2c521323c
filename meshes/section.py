"""Plane sections of a 3D microstructure: the 2D microstructure a cross-section shows.

A 2D (plane-strain) model of a composite cathode is a model of one cross-section. To ask
what a 2D model gets wrong, cut the 3D microstructure that a 3D run uses by planes normal
to one lateral axis and run each section in 2D with the same materials, mesh sizes and
protocol. The section of a convex polyhedron is a convex polygon: the convex hull of the
points where the polyhedron's edges cross the plane. Periodic images across the cut axis
are cut too. By Delesse's principle the area fraction of the sections estimates the
volume fraction; a single section deviates from it by a few per cent (reported).

    python -m meshes.section cases/bucci2017_3d.yaml --at 0.25 0.5 0.75 --out cases/dimension

writes one particle list (JSON, metres) per plane, ``<case name>_<axis><100 t>.json``, for
``geometry.particles.file`` of a 2D case (cases/dimension/bucci2017_2d_section.yaml).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull

from meshes.geometry import Particle

AXES = {"y": 1, "z": 2}


def section_polygon(p: Particle, axis: int, position: float) -> np.ndarray | None:
    """Corners (k, 2), counter-clockwise, of the section of polyhedron ``p`` by the plane
    x_axis = position, in the other two coordinates (x first); None where the plane
    misses it or only touches it."""
    V = p.vertices()
    s = V[:, axis] - position
    pts = [V[i] for i in np.flatnonzero(s == 0.0)]
    for a, b in p.edge_pairs():
        if s[a] * s[b] < 0.0:
            t = s[a] / (s[a] - s[b])
            pts.append(V[a] + t * (V[b] - V[a]))
    keep = [k for k in range(3) if k != axis]
    if len(pts) < 3:
        return None
    P = np.asarray(pts)[:, keep]
    try:
        hull = ConvexHull(P)
    except Exception:  # degenerate (a plane through an edge or a vertex only)
        return None
    return P[hull.vertices]


def polygon_particle(corners: np.ndarray, pid: int, material: str) -> Particle:
    """A 2D polygon particle with these global corners: centred on their centroid."""
    x, y = corners[:, 0], corners[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = 0.5 * cross.sum()
    c = np.array([((x + np.roll(x, -1)) * cross).sum(), ((y + np.roll(y, -1)) * cross).sum()]) / (6.0 * area)
    local = corners - c
    return Particle(id=pid, center=tuple(float(v) for v in c), radius=float(np.linalg.norm(local, axis=1).max()),
                    shape="polygon", sides=len(local), corners=tuple(tuple(float(v) for v in row) for row in local),
                    material=material)


def width(corners: np.ndarray) -> float:
    """The smallest width of a convex polygon (over the normals of its edges)."""
    edges = np.roll(corners, -1, axis=0) - corners
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1) / np.linalg.norm(edges, axis=1)[:, None]
    extent = corners @ normals.T
    return float(np.min(extent.max(axis=0) - extent.min(axis=0)))


def section(particles: list[Particle], size: tuple, periodic: tuple, axis: int, position: float,
            min_width: float = 0.0) -> list[Particle]:
    """The 2D particles of the section x_axis = position of a 3D packing (the plane's
    coordinates: x and the remaining lateral axis). Sections narrower than ``min_width``
    (the plane grazing a corner or an edge: a sliver) are left out."""
    shifts = [-size[axis], 0.0, size[axis]] if periodic[axis] else [0.0]
    out = []
    for p in particles:
        for shift in shifts:
            corners = section_polygon(p, axis, position - shift)
            if corners is None:
                continue
            if width(corners) >= min_width:
                out.append(polygon_particle(corners, len(out), p.material))
    return out


def area_fraction(particles: list[Particle], lo: tuple, hi: tuple) -> float:
    """Area of the particles over the rectangle lo-hi (the composite region)."""
    return sum(p.measure() for p in particles) / ((hi[0] - lo[0]) * (hi[1] - lo[1]))


def main(argv=None) -> int:
    from solver.config import load_case, to_internal
    from solver.runs.mesh import pack

    ap = argparse.ArgumentParser(prog="python -m meshes.section", description=__doc__.split("\n\n")[0])
    ap.add_argument("case", help="a 3D case file")
    ap.add_argument("--axis", choices=sorted(AXES), default="z", help="normal of the planes (default z)")
    ap.add_argument("--at", type=float, nargs="+", default=[0.5], help="planes, as fractions of the side (default 0.5)")
    ap.add_argument("--min-width", type=float, default=0.2e-6,
                    help="leave out narrower sections (slivers where a plane grazes an edge), m (default 0.2e-6, "
                         "the cases' thinnest ligament)")
    ap.add_argument("--out", required=True, help="directory of the particle lists (created; files are not replaced)")
    args = ap.parse_args(argv)
    case = load_case(Path(args.case))
    if case.dimension != 3:
        ap.error(f"{args.case}: dimension = {case.dimension}; a section needs a 3D case")
    if not all(0.0 <= t <= 1.0 for t in args.at):
        ap.error(f"--at {args.at}: fractions of the side must lie in [0, 1]")
    packing = pack(to_internal(case))  # lengths in um
    axis = AXES[args.axis]
    size = tuple(packing.box)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lateral = 3 - axis  # the lateral axis that stays in the section (y for a z-cut)
    for t in args.at:
        parts = section(packing.particles, size, packing.periodic, axis, t * size[axis], args.min_width * 1e6)
        path = out / f"{case.name}_{args.axis}{round(100 * t):02d}.json"
        if path.exists():
            print(f"{path} exists: not replaced")
            continue
        data = {"units": "um", "source": f"section {args.axis} = {t:g} L_{args.axis} of {case.name} (seed "
                                         f"{case.geometry.particles.seed}): python -m meshes.section",
                "particles": [{k: v for k, v in p.to_dict().items() if k not in ("rotation", "measure")}
                              for p in parts]}
        path.write_text(json.dumps(data, indent=1))
        lo, hi = packing.region
        phi = area_fraction(parts, (lo[0], lo[lateral]), (hi[0], hi[lateral]))
        print(f"{path}: {len(parts)} particles, area fraction {phi:.4f} (volume fraction "
              f"{packing.fraction:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
