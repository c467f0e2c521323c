"""Plane-strain disc inclusion with a dilatational eigenstrain: FE against the closed form.

A quarter of a disc (radius a, particle) inside a matrix ring (outer radius b, free),
with symmetry rollers: the Lamé composite-cylinder solution (docs/verification.md, 1)
is exact for this finite geometry, so no 'far boundary' error enters. The code applies
the eigenstrain out of plane too (true isotropic swelling), which is the case tested.
"""

import numpy as np
import pytest
from closed_forms import disc_inclusion
from conftest import ROOT
from mpi4py import MPI

from meshes.benchmarks import quarter_inclusion_2d
from solver.config import validate_case
from solver.config.units import to_internal
from solver.physics.mechanics import MechanicsProblem as Simulation
from solver.runs.mesh import bundle_from_gmsh

A, B = 1.0, 8.0  # um
E1, NU1, E2, NU2, EXPANSION = 140e9, 0.25, 20e9, 0.3, 0.06  # SI, volumetric expansion


def inclusion_case(linear_solver="auto"):
    mechanics = {"boundary": {"left": "roller", "bottom": "roller", "right": "free", "top": "free"},
                 "linear_solver": linear_solver}
    if linear_solver == "iterative":
        mechanics["petsc_options"] = {"ksp_rtol": 1e-12}
    return to_internal(validate_case({
        "name": "inclusion",
        "materials": {
            "active": {"E": E1, "nu": NU1, "expansion": EXPANSION},
            "electrolyte": {"E": E2, "nu": NU2},
        },
        "mechanics": mechanics,
    }))


def solve_inclusion(h, linear_solver="auto"):
    bundle = bundle_from_gmsh(lambda g: quarter_inclusion_2d(g, A, B, h, 8 * h), MPI.COMM_WORLD, 2)
    sim = Simulation(inclusion_case(linear_solver), bundle)
    sim.set_load(1.0, 0.0)
    res = sim.solve_step()
    assert res.converged
    return sim


def fe_errors(sim):
    """Relative errors of the interface pressure (mean -sigma_rr in the inclusion) and of
    the matrix hoop stress sampled along r = 1.5 a and r = 2.5 a."""
    import ufl
    from dolfinx import fem

    e_star = EXPANSION / 3.0
    p, _srr, stt = disc_inclusion(E1 * 1e-9, NU1, E2 * 1e-9, NU2, e_star, A, B)
    x = ufl.SpatialCoordinate(sim.domain)
    r = ufl.sqrt(x[0] ** 2 + x[1] ** 2)
    n = ufl.as_vector([x[0] / r, x[1] / r, 0.0])
    t = ufl.as_vector([-x[1] / r, x[0] / r, 0.0])
    s = sim.sigma
    dx = sim.dx
    comm = sim.comm
    area_in = comm.allreduce(fem.assemble_scalar(fem.form(1.0 * dx(1000))), op=MPI.SUM)
    p_fe = -comm.allreduce(fem.assemble_scalar(fem.form(ufl.dot(n, s * n) * dx(1000))), op=MPI.SUM) / area_in
    # hoop stress in the matrix, averaged over thin annuli a*[1.45,1.55] and a*[2.45,2.55]
    errs_hoop = []
    for r0 in (1.5, 2.5):
        band = ufl.conditional(ufl.And(ufl.ge(r, (r0 - 0.05) * A), ufl.le(r, (r0 + 0.05) * A)), 1.0, 0.0)
        md = {"quadrature_degree": 8}
        num = comm.allreduce(fem.assemble_scalar(fem.form(band * ufl.dot(t, s * t) * dx(1, metadata=md))), op=MPI.SUM)
        den = comm.allreduce(fem.assemble_scalar(fem.form(band * dx(1, metadata=md))), op=MPI.SUM)
        rr = np.linspace((r0 - 0.05) * A, (r0 + 0.05) * A, 201)
        exact = np.trapezoid(stt(rr) * rr, rr) / np.trapezoid(rr, rr)
        errs_hoop.append(abs(num / den - exact) / abs(exact))
    return abs(p_fe - p) / p, max(errs_hoop)


def test_disc_inclusion_matches_closed_form_and_converges():
    coarse = fe_errors(solve_inclusion(0.1))
    fine = fe_errors(solve_inclusion(0.05))
    # within 2 % of the closed form
    assert fine[0] < 0.02, f"interface pressure error {fine[0]:.4f}"
    assert fine[1] < 0.02, f"matrix hoop stress error {fine[1]:.4f}"
    # and the error decreases under refinement
    assert fine[0] < coarse[0] or fine[0] < 1e-3
    assert fine[1] < coarse[1] or fine[1] < 1e-3


def test_direct_and_iterative_elasticity_solves_agree():
    """The default direct (LU) solve and CG + GAMG give the same stresses."""
    errors = {kind: fe_errors(solve_inclusion(0.1, kind)) for kind in ("direct", "iterative")}
    assert errors["direct"] == pytest.approx(errors["iterative"], rel=1e-6, abs=1e-8)


def test_inclusion_interface_pressure_value():
    """The closed form itself: identical phases reduce to E e*/(2(1-nu)) (Mura)."""
    p, _, _ = disc_inclusion(100.0, 0.3, 100.0, 0.3, 0.01, 1.0, 1e9)
    assert p == pytest.approx(100.0 * 0.01 / (2 * 0.7), rel=1e-6)


def test_a_reused_preconditioner_is_not_set_up_again():
    """Preconditioner reuse (iterative elasticity solve, as in the damage iterations): after
    the damage changed, the solve keeps the preconditioner of the last set-up (PETSc's
    PCSetUp is not called again) and still gives the solution of the new operator."""
    from petsc4py import PETSc

    from solver.runs.mesh import build_mesh
    from solver.runs.runner import prepare_case

    PETSc.Log.begin()
    setups = PETSc.Log.Event("PCSetUp")
    case = ROOT / "cases" / "bucci2017_prescribed.yaml"
    # AT1 on a coarse mesh: only the operator's change with the damage matters here (the
    # cohesive model would refuse ell < 2 h); the cathode's geometry with fixed materials
    # (a generic particle, E = 100 GPa, in a 18.5 GPa electrolyte), not the case's sets
    coarse = ["fracture.model=AT1", "materials.active={E: 100.0e9, nu: 0.3, expansion: 0.10}",
              "materials.electrolyte={E: 18.5e9, nu: 0.3, fracture: {critical_strain: 0.019, ell: 0.25e-6}}",
              "loading.path=[0.0, 1.0]",
              "mechanics.linear_solver=iterative", "mechanics.petsc_options={ksp_rtol: 1.0e-12}",
              "geometry.mesh.size=0.3e-6", "geometry.mesh.interface_size=0.3e-6"]
    _, internal, packing = prepare_case(case, coarse, MPI.COMM_WORLD)
    bundle = build_mesh(internal, MPI.COMM_WORLD, packing=packing)
    out = {}
    for reuse in (False, True):
        sim = Simulation(internal, bundle)
        sim.elastic.set_inexact(False)
        sim.set_load(0.3, 0.0)
        sim.elastic.reuse_preconditioner(False)
        assert sim.elastic.solve()[0]
        before = setups.getPerfInfo()["count"]
        sim.set_load(0.4, 0.0)
        d = sim.d.x.array
        d[:] = np.where(np.arange(d.size) % 5 == 0, 0.3, 0.0)
        sim.elastic.reuse_preconditioner(reuse)
        ok, its = sim.elastic.solve()
        assert ok
        out[reuse] = (setups.getPerfInfo()["count"] - before, its, sim.u.x.array.copy())
    assert out[False][0] >= 1 and out[True][0] == 0
    assert out[True][1] > out[False][1]  # a stale preconditioner: more Krylov iterations
    u_new, u_fresh = out[True][2], out[False][2]
    assert np.allclose(u_new, u_fresh, rtol=0, atol=1e-8 * np.max(np.abs(u_fresh)))
