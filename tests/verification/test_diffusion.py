"""Lithium diffusion in a particle under a constant surface influx: FE against Crank's series.

A disc (2D, a quarter with symmetry lines) and a sphere (3D, an eighth with symmetry
planes), each inside a thin electrolyte shell whose DOFs the transport equation holds at
zero, take a constant molar influx N through their surface. With tau = D t / a^2 and
K = N a / (D c_max) (docs/verification.md, section 2; Crank, The Mathematics of Diffusion,
2nd ed., 5.3 and 6.3), the lithium fraction is

    sphere: x - x0 = K [3 tau + r^2/2 - 3/10 - (2/r) sum sin(l_n r) / (l_n^2 sin l_n) exp(-l_n^2 tau)],
            tan l_n = l_n
    disc:   x - x0 = K [2 tau + r^2/2 - 1/4 - 2 sum J0(b_n r) / (b_n^2 J0(b_n)) exp(-b_n^2 tau)],
            J1(b_n) = 0

(r in units of a). The FE profile must match to 1 % of the concentration rise, and the
lithium taken up must equal N x surface x time to solver precision.
"""

import numpy as np
import pytest
from mpi4py import MPI
from scipy.optimize import brentq
from scipy.special import j0, jn_zeros

from meshes.benchmarks import eighth_inclusion_3d, quarter_inclusion_2d
from solver.physics.diffusion import ParticleDiffusion, lithiation_profile
from solver.runs.mesh import bundle_from_gmsh
from solver.physics.tables import piecewise_linear

A = 1.0  # particle radius, um
D = 1.0  # um^2/s
N0 = 0.1  # mol/(um^2 s)
C_MAX = 1.0  # mol/um^3 (only the ratio N0 / C_MAX matters)
X0 = 0.2


def sphere_roots(n: int) -> np.ndarray:
    return np.array([brentq(lambda l: np.tan(l) - l, k * np.pi + 1e-9, k * np.pi + 0.5 * np.pi - 1e-9)
                     for k in range(1, n + 1)])


def crank_sphere(r: np.ndarray, tau: float, terms: int = 300) -> np.ndarray:
    """(x - x0) / K for a sphere, r in units of the radius."""
    lam = sphere_roots(terms)[:, None]
    r = np.asarray(r, dtype=float)[None, :]
    safe = np.where(r > 1e-12, r, 1.0)
    s = np.where(r > 1e-12, np.sin(lam * r) / safe, lam)  # sin(l r) / r -> l at the centre
    series = np.sum(s / (lam**2 * np.sin(lam)) * np.exp(-lam**2 * tau), axis=0)
    return 3 * tau + r[0] ** 2 / 2 - 0.3 - 2 * series


def crank_disc(r: np.ndarray, tau: float, terms: int = 300) -> np.ndarray:
    """(x - x0) / K for a disc (infinite cylinder), r in units of the radius."""
    b = jn_zeros(1, terms)[:, None]
    r = np.asarray(r, dtype=float)[None, :]
    series = np.sum(j0(b * r) / (b**2 * j0(b)) * np.exp(-b**2 * tau), axis=0)
    return 2 * tau + r[0] ** 2 / 2 - 0.25 - 2 * series


def test_series_themselves():
    """The closed forms: zero at tau = 0 inside the particle, mean rise 3 K tau (sphere) and
    2 K tau (disc) at any time, surface minus centre K/2 at long times (tau = 1)."""
    r = np.linspace(0.0, 0.95, 20)
    assert np.max(np.abs(crank_sphere(r, 0.0, 2000))) < 2e-3
    assert np.max(np.abs(crank_disc(r, 0.0, 2000))) < 2e-3
    rr = np.linspace(0.0, 1.0, 4001)
    s = crank_sphere(rr, 0.3)
    assert np.trapezoid(3 * rr**2 * s, rr) == pytest.approx(0.9, abs=1e-6)
    c = crank_disc(rr, 0.3)
    assert np.trapezoid(2 * rr * c, rr) == pytest.approx(0.6, abs=1e-6)
    s, c = crank_sphere(rr, 1.0), crank_disc(rr, 1.0)
    assert s[-1] - s[0] == pytest.approx(0.5, abs=1e-6)
    assert c[-1] - c[0] == pytest.approx(0.5, abs=1e-6)


def run_particle(dim: int, h: float, checkpoints: list[float], dt: float):
    comm = MPI.COMM_WORLD
    if dim == 2:
        bundle = bundle_from_gmsh(lambda g: quarter_inclusion_2d(g, A, 1.3 * A, h, h), comm, 2)
    else:
        bundle = bundle_from_gmsh(lambda g: eighth_inclusion_3d(g, A, 1.25 * A, h, h), comm, 3)
    p = ParticleDiffusion(bundle.mesh, bundle.cell_tags, bundle.facet_tags, D, N0, C_MAX, X0)
    n0 = p.total_lithium()
    K = N0 * A / (D * C_MAX)
    V = p.x.function_space
    n_owned = V.dofmap.index_map.size_local
    xyz = V.tabulate_dof_coordinates()[:n_owned, :dim]
    r = np.linalg.norm(xyz, axis=1)
    inside = r <= A * (1 + 1e-9)
    exact = crank_disc if dim == 2 else crank_sphere
    out = []
    for tau in checkpoints:
        while p.time < tau * A**2 / D - 1e-12:
            p.step(dt)
        ref = X0 + K * exact(r[inside] / A, p.time * D / A**2)
        err = np.max(np.abs(p.x.x.array[:n_owned][inside] - ref)) if inside.any() else 0.0
        err = comm.allreduce(err, op=MPI.MAX)
        rise = comm.allreduce(float(np.max(ref - X0)) if inside.any() else 0.0, op=MPI.MAX)
        uptake = p.total_lithium() - n0
        expected = N0 * p.surface() * p.time
        out.append((tau, err / rise, uptake / expected - 1.0))
    return out, p


@pytest.mark.parametrize("dim,h", [(2, 0.05), (3, 0.09)], ids=["disc", "sphere"])
def test_constant_influx_matches_crank(dim, h):
    results, p = run_particle(dim, h, [0.1, 0.2], dt=0.002)
    for tau, rel_err, mass in results:
        assert rel_err < 0.01, f"tau = {tau}: profile error {rel_err:.4f} of the rise"
        assert abs(mass) < 1e-9, f"tau = {tau}: uptake / (N S t) - 1 = {mass:.2e}"
    # the surface measure is that of the discrete particle, close to the exact one
    exact_surface = 0.5 * np.pi * A if dim == 2 else 0.5 * np.pi * A**2
    assert p.surface() == pytest.approx(exact_surface, rel=0.02)


def test_piecewise_linear_tables():
    """The UFL-compatible interpolant is numpy's interp inside and constant outside."""
    xs, ys = [0.1, 0.3, 0.7, 0.9], [4.2, 3.9, 3.8, 3.2]
    q = np.linspace(-0.2, 1.2, 57)
    assert np.allclose(piecewise_linear(q, xs, ys), np.interp(q, xs, ys), atol=1e-12)
    with pytest.raises(ValueError, match="increase"):
        piecewise_linear(0.5, [0.1, 0.1, 0.2], [1, 2, 3])


def test_lithiation_profile_of_a_linear_field():
    """Slab means of x = 0.1 + 0.05 * depth over particle cells in bins along x."""
    from dolfinx import fem, mesh
    from dolfinx.mesh import meshtags

    comm = MPI.COMM_WORLD
    dom = mesh.create_rectangle(comm, [[0.0, 0.0], [10.0, 2.0]], [40, 8])
    tdim = 2
    n = dom.topology.index_map(tdim).size_local + dom.topology.index_map(tdim).num_ghosts
    cells = np.arange(n, dtype=np.int32)
    tags = meshtags(dom, tdim, cells, np.full(n, 1000, dtype=np.int32))
    V = fem.functionspace(dom, ("Lagrange", 1))
    x = fem.Function(V)
    x.interpolate(lambda p: 0.1 + 0.05 * p[0])
    centres, mean = lithiation_profile(x, tags, 5)
    assert np.allclose(centres, [1, 3, 5, 7, 9])
    assert np.allclose(mean, 0.1 + 0.05 * centres, atol=1e-12)
