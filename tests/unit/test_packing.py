"""Packing (numpy only): fractions on target, gaps kept (checked independently of the
packing's own certificates), reproducible, clear errors."""

import math

import numpy as np
import pytest

from meshes.geometry import Particle, distance_to_edges, make_particle
from meshes.separation import _polygon_signed_distance
from meshes.packing import PackingError, PackingSpec, check_packing, contact_summary, pack


# ----------------------------------------------------------------------------- independent gap checks
def true_gap(a: Particle, b: Particle) -> float:
    """Distance between two particles (negative: penetration depth when they overlap),
    computed without the support-function machinery of the packing: circles and spheres
    exactly, (rounded) polygons from exact corner-to-polygon distances, polyhedra by a
    convex quadratic program, ellipses from dense boundary points."""
    if a.shape in ("circle", "sphere"):
        return math.dist(a.center, b.center) - a.radius - b.radius
    if a.shape == "polygon":
        pa, _, ra = a.parts()
        pb, _, rb = b.parts()
        va = np.asarray(a.center) + pa @ a.R().T
        vb = np.asarray(b.center) + pb @ b.R().T
        da, db = _polygon_signed_distance(va, vb), _polygon_signed_distance(vb, va)
        if da.min() < 0 or db.min() < 0 or _edges_cross(va, vb):
            return -1.0  # the cores overlap
        return float(min(da.min(), db.min())) - ra - rb
    if a.shape == "polyhedron":
        from scipy.optimize import minimize

        va, vb = a.vertices(), b.vertices()
        na, nb = len(va), len(vb)

        def f(w):
            d = w[:na] @ va - w[na:] @ vb
            return d @ d

        cons = [{"type": "eq", "fun": lambda w: w[:na].sum() - 1}, {"type": "eq", "fun": lambda w: w[na:].sum() - 1}]
        w0 = np.concatenate([np.full(na, 1 / na), np.full(nb, 1 / nb)])
        res = minimize(f, w0, bounds=[(0, 1)] * (na + nb), constraints=cons, method="SLSQP",
                       options={"ftol": 1e-14, "maxiter": 500})
        return math.sqrt(max(res.fun, 0.0))
    pa, pb = a.boundary_points(3000), b.boundary_points(3000)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(pb).query(pa)
    local = (pa - np.asarray(b.center)) @ b.R()
    inside = ((local / np.asarray(b.axes)) ** 2).sum(axis=1) < 1
    return -1.0 if inside.any() else float(d.min())


def _edges_cross(va: np.ndarray, vb: np.ndarray) -> bool:
    """True when an edge of polygon va properly crosses an edge of polygon vb."""
    def orient(p, q, r):
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    a0, a1 = va[:, None, :], np.roll(va, -1, axis=0)[:, None, :]
    b0, b1 = vb[None, :, :], np.roll(vb, -1, axis=0)[None, :, :]
    return bool(np.any((orient(a0, a1, b0) * orient(a0, a1, b1) < 0) & (orient(b0, b1, a0) * orient(b0, b1, a1) < 0)))


def assert_valid(packing, spec: PackingSpec, tol: float = 1e-6):
    ps = packing.particles
    assert check_packing(packing) == []
    for i in range(len(ps)):
        for j in range(i + 1, len(ps)):
            if math.dist(ps[i].center, ps[j].center) > ps[i].radius + ps[j].radius + spec.min_gap:
                continue
            g = true_gap(ps[i], ps[j])
            assert g >= spec.min_gap - tol, (i, j, g)


SHAPES_2D = [
    dict(shape="circle", radius=1.5),
    dict(shape="polygon", sides=4, radius=1.5),
    dict(shape="polygon", sides=6, radius=1.5, corner_radius=0.25),
    dict(shape="polygon", sides=5, radius=1.6, irregularity=0.6),
    dict(shape="ellipse", radius=1.8, aspect=(0.6,)),
]


@pytest.mark.parametrize("kw", SHAPES_2D, ids=[f"{k['shape']}-{k.get('sides', '')}{'-round' if k.get('corner_radius') else ''}"
                                                  f"{'-random' if k.get('irregularity') else ''}" for k in SHAPES_2D])
def test_2d_packing_at_060_keeps_gaps(kw):
    """0.60 of area with a 0.2 um gap (the target the RSA could not reach)."""
    spec = PackingSpec(box=(24.0, 24.0), volume_fraction=0.6, min_gap=0.2, boundary_gap=0.2, seed=1, **kw)
    p = pack(spec)
    assert p.fraction == pytest.approx(0.6, rel=1e-9)
    assert abs(p.radius_scale - 1) < 0.1
    assert_valid(p, spec)
    # every particle inside the box by at least the boundary gap (support function, exact)
    for q in p.particles:
        pts = q.boundary_points(720)
        assert pts.min() >= 0.2 - 1e-6 and (pts.max(axis=0) <= 24.0 - 0.2 + 1e-6).all()


def test_squares_at_050_in_small_box():
    """Squares at 0.5 in a 15 x 15 um box with 0.2 um gaps (bucci2017 geometry)."""
    spec = PackingSpec(box=(15.0, 15.0), volume_fraction=0.5, shape="polygon", sides=4, radius=1.5,
                       min_gap=0.2, boundary_gap=0.2, seed=1)
    p = pack(spec)
    assert p.fraction == pytest.approx(0.5)
    assert_valid(p, spec)


def test_3d_spheres_at_050_and_polyhedra():
    spec = PackingSpec(box=(18.0, 18.0, 18.0), volume_fraction=0.5, shape="sphere", radius=2.0, min_gap=0.15,
                       boundary_gap=0.15, periodic=True, seed=1)
    p = pack(spec)
    assert p.fraction == pytest.approx(0.5)
    assert_valid(p, spec)
    spec = PackingSpec(box=(12.0, 12.0, 12.0), volume_fraction=0.3, shape="polyhedron", polyhedron="cube",
                       radius=2.0, min_gap=0.2, boundary_gap=0.2, seed=2)
    p = pack(spec)
    assert_valid(p, spec, tol=1e-5)


def test_same_seed_same_particles_bit_identical():
    for kw in (dict(box=(20.0, 20.0), shape="polygon", sides=5, irregularity=0.4, radius=1.5, volume_fraction=0.5,
                    distribution="lognormal", std=0.3),
               dict(box=(12.0, 12.0, 12.0), shape="polyhedron", polyhedron="random", radius=2.0, volume_fraction=0.25)):
        spec = PackingSpec(min_gap=0.2, boundary_gap=0.2, seed=7, **kw)
        a, b = pack(spec), pack(spec)
        c = pack(PackingSpec(min_gap=0.2, boundary_gap=0.2, seed=8, **kw))
        assert [q.to_dict() for q in a.particles] == [q.to_dict() for q in b.particles]
        assert [q.to_dict() for q in a.particles] != [q.to_dict() for q in c.particles]


def test_orientation_stored_for_every_particle():
    p = pack(PackingSpec(box=(12.0, 12.0, 12.0), shape="sphere", radius=2.0, volume_fraction=0.2, seed=3))
    rots = [np.array(q.to_dict()["rotation"]) for q in p.particles]
    for R in rots:
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.linalg.det(R) == pytest.approx(1.0)
    assert len({tuple(np.round(R.ravel(), 6)) for R in rots}) == len(rots)  # random, not all equal
    q = pack(PackingSpec(box=(15.0, 15.0), shape="polygon", sides=4, radius=1.5, volume_fraction=0.3,
                         orientation=30.0, seed=1))
    assert all(r.angle == pytest.approx(math.radians(30.0)) for r in q.particles)  # fixed: never turned


def test_size_distribution_and_blend():
    spec = PackingSpec(box=(40.0, 40.0), shape="circle", radius=1.5, distribution="lognormal", std=0.4,
                       r_min=0.8, r_max=3.0, volume_fraction=0.5, active_b_share=0.3, min_gap=0.2, boundary_gap=0.2)
    p = pack(spec)
    r = np.array([q.radius for q in p.particles]) / p.radius_scale
    assert r.min() >= 0.8 - 1e-12 and r.max() <= 3.0 + 1e-12
    assert 1.2 < r.mean() < 1.8 and 0.2 < r.std() < 0.6
    vol = np.array([q.measure() for q in p.particles])
    b = np.array([q.material == "active_b" for q in p.particles])
    assert abs(vol[b].sum() / vol.sum() - 0.3) < vol.max() / vol.sum()
    # list of radii
    p = pack(PackingSpec(box=(20.0, 20.0), shape="circle", distribution="list", radii=(1.0, 2.0), volume_fraction=0.4,
                         min_gap=0.2, boundary_gap=0.2))
    assert {round(q.radius / p.radius_scale, 9) for q in p.particles} <= {1.0, 2.0}


def test_contacts_touch_or_keep_gap():
    spec = PackingSpec(box=(20.0, 20.0), shape="circle", radius=1.5, volume_fraction=0.55, min_gap=0.2,
                       boundary_gap=0.2, overlap=0.3, seed=2)
    p = pack(spec)
    assert check_packing(p) == []
    ps = p.particles
    touching = 0
    for i in range(len(ps)):
        for j in range(i + 1, len(ps)):
            g = true_gap(ps[i], ps[j])
            assert g >= 0.2 - 1e-9 or -0.3 - 1e-9 <= g <= -0.15 + 1e-9, g
            touching += g < 0
    assert touching > 0
    s = contact_summary(ps, spec)
    assert len(s["contacts"]) == touching and s["clusters"] < len(ps)


def test_periodic_particles_cross_and_cut_deep_enough():
    spec = PackingSpec(box=(16.0, 16.0), shape="polygon", sides=6, radius=1.5, volume_fraction=0.5, min_gap=0.2,
                       boundary_gap=0.2, periodic=True, seed=4)
    p = pack(spec)
    assert check_packing(p) == []
    crossing = 0
    for q in p.particles:
        y = q.boundary_points(720)[:, 1]
        for plane in (0.0, 16.0):
            if y.min() < plane < y.max():
                crossing += 1
                assert min(plane - y.min(), y.max() - plane) >= max(0.2, 0.15 * q.radius) - 1e-6
            else:
                assert min(abs(y - plane)) >= 0.2 - 1e-6
        assert q.boundary_points(720)[:, 0].min() >= 0.2 - 1e-6  # x keeps its walls
    assert crossing > 0


def test_impossible_fraction_fails_at_once():
    with pytest.raises(PackingError, match="impossible") as err:
        pack(PackingSpec(box=(20.0, 20.0), shape="circle", radius=1.0, volume_fraction=0.85, min_gap=0.2))
    assert err.value.reached == 0.0


def test_jammed_packing_reports_fraction_reached():
    with pytest.raises(PackingError) as err:
        pack(PackingSpec(box=(15.0, 15.0), shape="polygon", sides=4, radius=1.5, volume_fraction=0.72, min_gap=0.2,
                         boundary_gap=0.2, max_iterations=3000))
    assert 0.3 < err.value.reached < 0.72
    assert "reached fraction" in str(err.value)


def test_check_finds_overlaps_and_wall_violations():
    a = make_particle(0, (5.0, 5.0), 1.0, "polygon", sides=4)
    b = make_particle(1, (6.9, 5.0), 1.0, "polygon", sides=4, orientation=45.0)  # corner into a's corner region
    from meshes.packing import check_packing_particles

    spec = PackingSpec(box=(10.0, 10.0), volume_fraction=0.1, min_gap=0.2, boundary_gap=0.2)
    assert true_gap(a, b) < 0.2
    assert any("apart" in s for s in check_packing_particles([a, b], spec))
    c = make_particle(0, (1.1, 5.0), 1.0, "circle")
    assert any("side" in s for s in check_packing_particles([c], spec))


# ----------------------------------------------------------------------------- sharp edges
def test_edges_and_distance_to_them():
    """A square (circumradius 1, corners on the axes) has 4 edges; the centre lies
    1/sqrt(2) from them, (2, 0) 1 from its corner, an edge midpoint on one. A cube
    (platonic polyhedron) has 12 edges; its centre lies half a face diagonal from them."""
    sq = Particle(id=0, center=(0.0, 0.0), radius=1.0, shape="polygon", sides=4)
    assert sq.edges().shape == (4, 2, 2)
    d = distance_to_edges(np.array([[0.0, 0.0], [2.0, 0.0], [0.5, 0.5]]), [sq])
    assert d == pytest.approx([1 / math.sqrt(2), 1.0, 0.0], abs=1e-12)
    cube = make_particle(0, (0.0, 0.0, 0.0), math.sqrt(3), "polyhedron", polyhedron="cube", orientation=(0.0, 0.0, 0.0))
    e = cube.edges()
    assert e.shape == (12, 2, 3)
    half = np.abs(cube.local_corners()).max()  # half the side
    assert distance_to_edges(np.zeros((1, 3)), [cube])[0] == pytest.approx(half * math.sqrt(2), rel=1e-12)
