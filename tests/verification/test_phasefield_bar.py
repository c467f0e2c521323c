"""Phase field on a homogeneous bar: AT1/AT2 nucleation stress and strain against the
closed forms of the homogeneous solution (docs/verification.md, section 3).

A short bar (length below the localisation length) under uniaxial strain (rollers on
the lateral sides, imposed end displacement) stays homogeneous, so the computed stress
path follows the 1D solution exactly.
"""

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc

from closed_forms import DIRECT_LU, at1_critical, at2_critical, phase_field_fields
from solver.physics import elasticity as el
from solver.physics import phasefield as pf

E, NU, GC, ELL = 20.0, 0.3, 4e-3, 0.5  # GPa, -, GPa*um, um
L = 0.4  # um: shorter than ell, the homogeneous state is stable


def bar_response(model, driving_force, split, strains, damage_options=None):
    domain = mesh.create_rectangle(MPI.COMM_WORLD, [[0, 0], [L, 0.2]], [8, 4])
    V, D, u, d, d_prev, chi, Gc, ell, Ef, lm, mu, const = phase_field_fields(domain, E, NU, GC, ELL)
    s = pf.DamageSettings(model, split, driving_force, 0.0, "bounds")
    eps_e = el.strain3(u, 2)
    energy = pf.stored_energy(eps_e, const(lm), const(mu), d, chi, s, 2)
    H = pf.driving_force(eps_e, const(lm), const(mu), Ef, s, 2)
    fdim = 1
    left = mesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], 0))
    right = mesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], L))
    lat = mesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[1], 0) | np.isclose(x[1], 0.2))
    ux = fem.Constant(domain, PETSc.ScalarType(0.0))
    bcs = [
        fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V.sub(0), fdim, left), V.sub(0)),
        fem.dirichletbc(ux, fem.locate_dofs_topological(V.sub(0), fdim, right), V.sub(0)),
        fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V.sub(1), fdim, lat), V.sub(1)),
    ]
    opts = DIRECT_LU
    elastic = el.ElasticityProblem(u, energy * ufl.dx, bcs, [], ufl.ds, split == "none", opts,
                                   prefix=f"bar_el_{model}_{driving_force}_")
    damage = pf.DamageProblem(d, d_prev, H, Gc, ell, chi, s, np.zeros(0, dtype=np.int32), damage_options or {},
                              prefix=f"bar_d_{model}_{driving_force}_{bool(damage_options)}_")
    eps_v = ufl.variable(eps_e)
    sigma = ufl.diff(pf.stored_energy(eps_v, const(lm), const(mu), d, chi, s, 2), eps_v)
    f_sxx = fem.form(sigma[0, 0] * ufl.dx)
    f_d = fem.form(d * ufl.dx)
    area = L * 0.2
    out = []
    for e in strains:
        ux.value = e * L
        for _ in range(200):
            elastic.solve()
            prev = d.x.array.copy()
            damage.solve()
            if np.max(np.abs(d.x.array - prev)) < 1e-9:
                break
        d_prev.x.array[:] = d.x.array
        sxx = MPI.COMM_WORLD.allreduce(fem.assemble_scalar(f_sxx), op=MPI.SUM) / area
        dm = MPI.COMM_WORLD.allreduce(fem.assemble_scalar(f_d), op=MPI.SUM) / area
        out.append((e, sxx, dm))
    return np.array(out)


def test_at1_rankine_nucleation_stress():
    """Rankine driving force: sigma_c = sqrt(3 Gc E / (8 ell)) with Young's E, whatever
    the lateral constraint (sigma_1 = sigma_xx here)."""
    sc, _ = at1_critical(E, GC, ELL)
    M = E * (1 - NU) / ((1 + NU) * (1 - 2 * NU))  # uniaxial-strain modulus
    ec = sc / M
    strains = np.concatenate([np.linspace(0.5 * ec, 0.98 * ec, 5), np.linspace(0.99 * ec, 1.03 * ec, 41)])
    r = bar_response("AT1", "rankine", "none", strains)
    first = np.argmax(r[:, 2] > 1e-6)
    assert first > 0, "damage must not start before the elastic limit (AT1 has an elastic phase)"
    assert r[:first, 2].max() == 0.0
    peak = r[:, 1].max()
    assert peak == pytest.approx(sc, rel=0.01)
    assert r[first, 0] == pytest.approx(ec, rel=0.01)


def test_at1_energy_nucleation_strain():
    """Energy driving force, no split, uniaxial strain: eps_c = sqrt(3 Gc / (8 M ell))."""
    M = E * (1 - NU) / ((1 + NU) * (1 - 2 * NU))
    sc, ec = at1_critical(M, GC, ELL)
    strains = np.concatenate([np.linspace(0.5 * ec, 0.98 * ec, 5), np.linspace(0.99 * ec, 1.03 * ec, 41)])
    r = bar_response("AT1", "energy", "none", strains)
    peak = r[:, 1].max()
    assert peak == pytest.approx(sc, rel=0.01)
    first = np.argmax(r[:, 2] > 1e-6)
    assert r[first, 0] == pytest.approx(ec, rel=0.01)


def test_at2_peak_stress_and_strain():
    """AT2 damages from the start; the homogeneous stress peaks at
    sigma_c = (3 sqrt 3 / 16) sqrt(M Gc / ell) at eps_c = sqrt(Gc / (3 M ell))."""
    M = E * (1 - NU) / ((1 + NU) * (1 - 2 * NU))
    sc, ec = at2_critical(M, GC, ELL)
    strains = np.linspace(0.05 * ec, 1.6 * ec, 80)
    r = bar_response("AT2", "energy", "none", strains)
    assert r[1, 2] > 0, "AT2 has no elastic phase"
    i = int(np.argmax(r[:, 1]))
    assert r[i, 1] == pytest.approx(sc, rel=0.01)
    assert r[i, 0] == pytest.approx(ec, rel=0.03)  # the peak is flat: the strain is located to the step size
    # and the damage at the peak is 1/4
    assert r[i, 2] == pytest.approx(0.25, abs=0.02)


def test_at2_damage_without_bounds_is_the_bound_constrained_one():
    """AT2 with the energy as driving force, under a growing load: the damage equation solved
    by plain Newton without bounds (what runs with a history field use,
    solver.numerics.petsc.damage_unconstrained) gives the bound-constrained solution, stress
    and damage at every strain to solver tolerance: no bound is ever active."""
    from solver.config.fracture import Fracture
    from solver.numerics.petsc import damage_options, damage_unconstrained

    fr = Fracture(model="AT2", irreversibility="history", driving_force="energy", split="none")
    assert damage_unconstrained(fr)
    assert not damage_unconstrained(Fracture(model="AT2", irreversibility="bounds", driving_force="energy"))
    assert not damage_unconstrained(Fracture(model="AT1", irreversibility="history", driving_force="energy"))
    opts = damage_options(fr, 100, 2)
    assert opts["snes_type"] == "newtonls"
    M = E * (1 - NU) / ((1 + NU) * (1 - 2 * NU))
    _, ec = at2_critical(M, GC, ELL)
    strains = np.linspace(0.1 * ec, 1.5 * ec, 15)
    bounded = bar_response("AT2", "energy", "none", strains)
    plain = bar_response("AT2", "energy", "none", strains, damage_options=opts)
    assert plain[-1, 2] > 0.4  # well past the peak
    assert np.allclose(plain, bounded, rtol=1e-7, atol=1e-9)
