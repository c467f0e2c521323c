"""Surfing of the cohesive model and of AT1 with the Rankine driving force (Hossain, Hsueh,
Bourdin & Bhattacharya, JMPS 71 (2014) 15): a crack driven steadily through a strip by a
moving mode-I displacement field (K = 1.2 sqrt(E' G_c) on the whole boundary, centred at
xc) must dissipate the effective toughness of the discretised phase field per unit
advance. Both models are run as the solver runs them by default: no split, the Rankine
driving force of the undamaged stress, bounds irreversibility.

Effective toughness. A running crack leaves a band one element wide with d = 1 on both
rows of its nodes (a P1 element carries no load only when all its nodes are broken), so
on a mesh aligned with the crack the band adds w(1) h / (c_w ell) to the profile's
G_c: G_c (1 + 3 h / (8 ell)) for AT1 and G_c (1 + h / (pi ell)) for the cohesive model.
Measured on the surfing mesh as the energy of a straight line with d = 1 on two node rows,
the damage minimised at zero load (h = ell / 3): AT1 1.1285 G_c (+0.31 %), cohesive
1.1111 G_c (+0.45 %). One node row at d = 1 would cost only 1.0035 (AT1) and 1.0050 (cohesive)
G_c; the surfing cracks leave the band of elements.

Measured in steady state (xc from 0.3 to 0.56; slope of the fracture energy against the
tip, d = 0.9 on the crack line):

| model | dE/da | G_c,eff | G-theta | tip speed |
|---|---|---|---|---|
| cohesive (l_ch = 3 ell) | 1.1073 G_c (+0.11 %) | 1.1061 G_c | 1.1065 G_c (-0.07 % of dE/da) | 1.0008 |
| AT1, Rankine | 1.1273 G_c (+0.20 %) | 1.1250 G_c | 0.8372 G_c = 0.7427 dE/da | 1.0002 |

The G-theta integral of the degraded elastic energy (theta = (phi, 0), the damage
transported with the tip) equals int a'(d) psi d_x d phi dx: the rate at which elastic
energy is released into the damage. The dissipation per unit advance is, by the damage
equation, int a'(d) H d_x d dx, with the driving force H in place of psi (both identities
of the continuum; evaluated on the mesh they held within 1.5 %). The Rankine force is not the
derivative of the energy, so the two need not agree: in the process zone the damage
grows in a band opening in uniaxial strain, where psi = sigma_yy^2 / (2 E_c) and
H = sigma_yy^2 / (2 E_H). The cohesive model uses E_H = E_c = lambda + 2 mu, so G-theta is
the dissipation (-0.07 %); AT1 uses Young's modulus, so G-theta is E / E_c = 0.7429 of
the dissipation (measured 0.7427): the crack dissipates G_c,eff per unit advance while
only 0.74 G_c,eff of elastic energy is released at its tip. A non-variational model has
no energy balance: its crack runs when the Rankine stress ahead of the tip is what the
damage equation needs, not when G reaches G_c,eff, so for AT1 with the Rankine force the
J-integral is not a measure of the toughness (the dissipation is).

Cost and discrimination: h = ell / 3, a 0.9 x 0.6 strip and 18 steps keep each run under
a minute on one core (measured 47 s cohesive, 29 s AT1); the effective toughness is then 12.5 % (AT1) and 10.6 % (cohesive) above G_c,
and the tolerances (0.5 % on dE/da, 0.3 % on G-theta) are a small fraction of that:
the tests would fail with G_c doubled, with a wrong c_w (8/3 instead of pi: +18 %) and with a
crack that left a wider band or the bare 1D profile (-10 %).
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc

from closed_forms import DIRECT_LU, mode_one_displacement, whole_boundary_bc
from solver.numerics import schemes
from solver.physics import cohesive as cz
from solver.physics import elasticity as el
from solver.physics import phasefield as pf

E, NU, GC = 1.0, 0.3, 1.0e-3
EC = cz.band_modulus(E, NU)  # lambda + 2 mu
E_PRIME = E / (1 - NU**2)  # plane strain
ELL, H = 0.03, 0.01  # h = ell / 3
LX, LY = 0.9, 0.6
X0, X_END, DX = 0.2, 0.56, 0.02  # initial crack [0, X0]; the field moves by DX a step
K_FACTOR = 1.2  # K = 1.2 sqrt(E' G_c): the field drives the tip (and its process zone)
R1, R2 = 0.12, 0.24  # G-theta: theta = 1 within R1 of the field centre, 0 beyond R2
# cohesive: Irwin's length l_ch = E_c G_c / f_t^2 = 3 ell; its process zone (d from 0.01 to
# 0.9) is 0.067 = 2.2 ell long, well inside R1 and the K-dominated region; the strip is
# 10 l_ch long; ell = 0.52 ell_max (ell_max = 0.64 l_ch for linear softening)
FT = math.sqrt(EC * GC / (3 * ELL))
STEADY = (0.3, 0.56)  # xc range of steady propagation: after 3 ell of advance, before the far edge


def _mesh(lx, ly, h):
    return mesh.create_rectangle(MPI.COMM_WORLD, [[0.0, -ly / 2], [lx, ly / 2]], [round(lx / h), round(ly / h)],
                                 diagonal=mesh.DiagonalType.right)


def _profile(model, ell):
    if model == "AT1":
        return lambda s: np.where(s < 2 * ell, (1 - s / (2 * ell)) ** 2, 0.0)
    return lambda s: np.where(s < np.pi * ell / 2, 1 - np.sin(np.minimum(s, np.pi * ell / 2) / ell), 0.0)


def _fields(domain, model, ell, ft):
    Q = fem.functionspace(domain, ("DG", 0))
    chi, Gc, ell_f, Ef, a1 = (fem.Function(Q) for _ in range(5))
    chi.x.array[:], Gc.x.array[:], ell_f.x.array[:], Ef.x.array[:] = 1.0, GC, ell, E
    if model == "cohesive":
        a1.x.array[:] = cz.a1(EC, GC, ft, ell)
    return chi, Gc, ell_f, Ef, a1


def line_toughness(model, h, ell, ft=None, lx=0.24, ly=0.48, rows=1):
    """Energy per unit length of a straight d = 1 line along a grid line, the damage
    minimised at zero load: the effective toughness of the discrete profile."""
    comm = MPI.COMM_WORLD
    domain = _mesh(lx, ly, h)
    D = fem.functionspace(domain, ("Lagrange", 1))
    d, lower = fem.Function(D), fem.Function(D)
    line = fem.locate_dofs_geometrical(D, lambda x: (x[1] > -1e-9) & (x[1] < (rows - 1) * h + 1e-9))
    lower.x.array[line] = 1.0
    d.interpolate(lambda x: _profile(model, ell)(np.abs(x[1])))
    d.x.array[line] = 1.0
    chi, Gc, ell_f, _, a1 = _fields(domain, model, ell, ft)
    s = pf.DamageSettings(model, "none", "rankine", 0.0, "bounds", "linear", a1)
    zero = fem.Constant(domain, PETSc.ScalarType(0.0))
    problem = pf.DamageProblem(d, lower, zero, Gc, ell_f, chi, s, np.zeros(0, dtype=np.int32), {},
                               prefix=f"surfline_{model}_{round(1e6 * h)}_{round(1e6 * ell)}_{rows}_")
    ok, _ = problem.solve()
    assert ok
    f = fem.form(pf.fracture_density(d, Gc, ell_f, chi, model) * ufl.dx)
    return comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM) / lx


def surf(model: str, ft: float | None = None):
    """Drive the crack through the strip; per step: field centre xc, tip (d = 0.9 on the
    crack line), G-theta around xc and the fracture energy."""
    h, ell, lx, ly, x0, x_end, dx, r1, r2, k_res = H, ELL, LX, LY, X0, X_END, DX, R1, R2, 1e-6
    comm = MPI.COMM_WORLD
    domain = _mesh(lx, ly, h)
    V = fem.functionspace(domain, ("Lagrange", 1, (2,)))
    D = fem.functionspace(domain, ("Lagrange", 1))
    u, d, d_prev = fem.Function(V), fem.Function(D), fem.Function(D)
    lm, mu = E * NU / ((1 + NU) * (1 - 2 * NU)), E / (2 * (1 + NU))
    c = lambda v: fem.Constant(domain, PETSc.ScalarType(v))  # noqa: E731
    chi, Gc, ell_f, Ef, a1 = _fields(domain, model, ell, ft)
    s = pf.DamageSettings(model, "none", "rankine", k_res, "bounds", "linear", a1)
    prof = _profile(model, ell)

    def initial(x):
        dist = np.where(x[0] <= x0, np.abs(x[1]), np.hypot(x[0] - x0, x[1]))
        return prof(dist)

    d.interpolate(initial)
    d_prev.x.array[:] = d.x.array
    K = K_FACTOR * math.sqrt(E_PRIME * GC)
    xc = fem.Constant(domain, PETSc.ScalarType(x0))
    x = ufl.SpatialCoordinate(domain)

    mode_one = mode_one_displacement(K, mu, NU, lambda: float(xc.value))

    u_bc = fem.Function(V)
    bc = whole_boundary_bc(V, u_bc)
    eps_e = el.strain3(u, 2)
    energy = pf.stored_energy(eps_e, c(lm), c(mu), d, chi, s, 2)
    Hdrive = pf.driving_force(eps_e, c(lm), c(mu), Ef, s, 2)
    tag = f"{model}_"
    elastic = el.ElasticityProblem(u, energy * ufl.dx, [bc], [], ufl.ds, True, DIRECT_LU, prefix=f"surfm_el_{tag}")
    damage = pf.DamageProblem(d, d_prev, Hdrive, Gc, ell_f, chi, s, np.zeros(0, dtype=np.int32), {},
                              prefix=f"surfm_d_{tag}")
    F_u = ufl.derivative(energy * ufl.dx, u, ufl.TestFunction(V))
    F_d = ufl.derivative((chi * s.g(d) * Hdrive + pf.fracture_density(d, Gc, ell_f, chi, model)) * ufl.dx,
                         d, ufl.TestFunction(D))
    newton = schemes.MonolithicNewton(u, d, F_u, F_d, [bc], d_prev, damage.upper, {}, prefix=f"surfm_nt_{tag}")
    sim = SimpleNamespace(comm=comm, elastic=elastic, damage=damage, d=d, u=u, d_prev=d_prev, monitor=None)
    spec = SimpleNamespace(tolerance=1e-5, max_iterations=500, stagnation=25, newton_after=25)
    acc = schemes.Accelerator("overrelaxed", relaxation=1.5, comm=comm)

    # G-theta around the field centre: theta = (phi(r), 0)
    r = ufl.sqrt((x[0] - xc) ** 2 + x[1] ** 2)
    phi = ufl.conditional(ufl.lt(r, r1), 1.0, ufl.conditional(ufl.gt(r, r2), 0.0, (r2 - r) / (r2 - r1)))
    theta = ufl.as_vector([phi, 0.0])
    eps_v = ufl.variable(eps_e)
    W = pf.stored_energy(eps_v, c(lm), c(mu), d, chi, s, 2)
    s3 = ufl.diff(W, eps_v)
    sigma = ufl.as_matrix([[s3[0, 0], s3[0, 1]], [s3[1, 0], s3[1, 1]]])
    G_form = fem.form((ufl.inner(sigma, ufl.grad(u) * ufl.grad(theta)) - W * ufl.div(theta)) * ufl.dx)
    f_frac = fem.form(pf.fracture_density(d, Gc, ell_f, chi, model) * ufl.dx)
    total = lambda f: comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM)  # noqa: E731

    # crack tip: where d falls below ``level`` along the crack line y = 0 (a grid line),
    # linear between the nodes (exact on the P1 field)
    n_own = D.dofmap.index_map.size_local
    X = D.tabulate_dof_coordinates()[:n_own]
    on_line = np.isclose(X[:, 1], 0.0)
    xs = np.concatenate(comm.allgather(X[on_line, 0]))
    order = np.argsort(xs)
    xs = xs[order]

    def tip(level):
        dl = np.concatenate(comm.allgather(d.x.array[:n_own][on_line]))[order]
        above = np.nonzero(dl >= level)[0]
        if len(above) == 0:
            return 0.0
        i = above.max()
        if i + 1 >= len(xs):
            return xs[i]
        return xs[i] + (dl[i] - level) / (dl[i] - dl[i + 1]) * (xs[i + 1] - xs[i])

    rows = []
    for xcv in np.arange(x0 + dx, x_end + 1e-9, dx):
        xc.value = xcv
        u_bc.interpolate(mode_one)
        res = schemes.alternate_minimisation(sim, spec, acc, newton, switch_tolerance=1e-2)
        assert res.converged, res.reason
        d_prev.x.array[:] = d.x.array
        rows.append((xcv, tip(0.9), total(G_form), total(f_frac)))
    return SimpleNamespace(**dict(zip(("xc", "tip", "G", "fracture_energy"), np.array(rows).T)))


def gc_eff(model: str) -> float:
    """G_c plus the band of elements with d = 1 left by a running crack: w(1) h / (c_w ell)."""
    return GC * (1 + H / (cz.CW[model] * ELL))


def steady_state(run):
    """(dE/da, tip speed, mean G-theta) over the steady range."""
    s = (run.xc > STEADY[0] - 1e-9) & (run.xc < STEADY[1] + 1e-9)
    assert s.sum() >= 10
    dEda = np.polyfit(run.tip[s], run.fracture_energy[s], 1)[0]
    speed = np.polyfit(run.xc[s], run.tip[s], 1)[0]
    return dEda, speed, run.G[s].mean()


@pytest.fixture(scope="module")
def cohesive_run():
    assert ELL < cz.ell_max(EC, GC, FT, "linear")
    return surf("cohesive", FT)


@pytest.fixture(scope="module")
def at1_run():
    return surf("AT1")


@pytest.mark.parametrize("model", ["cohesive", "AT1"])
def test_band_of_broken_elements_costs_the_effective_toughness(model):
    """A straight crack, d = 1 on two node rows (one element band), at zero load: measured
    +0.45 % (cohesive), +0.31 % (AT1) of w(1) h / (c_w ell) above G_c: the O((h/ell)^2) rest."""
    Gline = line_toughness(model, H, ELL, FT if model == "cohesive" else None, rows=2)
    assert Gline == pytest.approx(gc_eff(model), rel=0.006)


@pytest.mark.slow
def test_cohesive_crack_surfs_at_its_effective_toughness(cohesive_run):
    dEda, speed, G = steady_state(cohesive_run)
    print(f"cohesive surfing: dE/da = {dEda / GC:.5f} Gc, G = {G / GC:.5f} Gc, "
          f"Gc_eff = {gc_eff('cohesive') / GC:.5f} Gc, speed = {speed:.4f}")
    assert speed == pytest.approx(1.0, rel=0.005), "the tip moves with the field (measured 1.0008)"
    assert dEda == pytest.approx(gc_eff("cohesive"), rel=0.005)  # measured +0.11 %
    # the Rankine force with E_c is the energy's own in the opening band: G-theta is the
    # dissipation (measured -0.07 %)
    assert G == pytest.approx(dEda, rel=0.003)


@pytest.mark.slow
def test_at1_rankine_crack_surfs_at_its_effective_toughness(at1_run):
    dEda, speed, G = steady_state(at1_run)
    print(f"AT1 rankine surfing: dE/da = {dEda / GC:.5f} Gc, G = {G / GC:.5f} Gc, "
          f"Gc_eff = {gc_eff('AT1') / GC:.5f} Gc, speed = {speed:.4f}")
    assert speed == pytest.approx(1.0, rel=0.005), "the tip moves with the field (measured 1.0002)"
    assert dEda == pytest.approx(gc_eff("AT1"), rel=0.005)  # measured +0.20 %
    # not variational: the tip releases E / E_c of what it dissipates (measured 0.7427 vs 0.7429)
    assert G == pytest.approx(E / EC * dEda, rel=0.003)
