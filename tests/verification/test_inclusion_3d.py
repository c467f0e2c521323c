"""Sphere inclusion with a dilatational eigenstrain in a free matrix shell: 3D FE against the
closed form (docs/verification-derivations.md, 1a).

An eighth of the sphere (radius a) and of the shell (outer radius b) with symmetry rollers
on x = 0, y = 0, z = 0: the Lamé solution is exact for this finite geometry. Second-order
(curved) tetrahedra with quadratic displacements.
"""

import numpy as np
import pytest
from mpi4py import MPI

from closed_forms import sphere_inclusion
from meshes.benchmarks import eighth_inclusion_3d
from solver.config import validate_case
from solver.physics.mechanics import MechanicsProblem as Simulation
from solver.runs.mesh import bundle_from_gmsh
from solver.config.units import to_internal

A, B = 1.0, 4.0  # um
E1, NU1, E2, NU2, EXPANSION = 140e9, 0.25, 20e9, 0.3, 0.06  # SI; volumetric expansion


def inclusion_case():
    return to_internal(validate_case({
        "name": "inclusion3d",
        "dimension": 3,
        "geometry": {"size": [B * 1e-6] * 3,
                     "particles": {"shape": "sphere", "radius": A * 1e-6},
                     "mesh": {"size": 1e-6, "interface_size": 0.2e-6, "order": 2}},
        "materials": {
            "active": {"E": E1, "nu": NU1, "expansion": EXPANSION},
            "electrolyte": {"E": E2, "nu": NU2},
        },
        "mechanics": {"boundary": {"left": "roller", "bottom": "roller", "back": "roller",
                                   "right": "free", "top": "free", "front": "free"},
                      "linear_solver": "iterative", "petsc_options": {"ksp_rtol": 1e-12}},
    }))


@pytest.fixture(scope="module")
def sim():
    bundle = bundle_from_gmsh(lambda g: eighth_inclusion_3d(g, A, B, 0.2, 0.8, order=2), MPI.COMM_WORLD, 3)
    s = Simulation(inclusion_case(), bundle)
    s.set_load(1.0, 0.0)
    assert s.solve_step().converged
    return s


def _average(sim, integrand, cells_tag, band=None):
    from dolfinx import fem

    comm = sim.comm
    md = {"quadrature_degree": 6}
    w = 1.0 if band is None else band
    num = comm.allreduce(fem.assemble_scalar(fem.form(w * integrand * sim.dx(cells_tag, metadata=md))), op=MPI.SUM)
    den = comm.allreduce(fem.assemble_scalar(fem.form(w * sim.dx(cells_tag, metadata=md))), op=MPI.SUM)
    return num / den


def test_sphere_inclusion_matches_closed_form(sim):
    import ufl

    e_star = EXPANSION / 3.0
    p, srr, stt = sphere_inclusion(E1 * 1e-9, NU1, E2 * 1e-9, NU2, e_star, A, B)
    x = ufl.SpatialCoordinate(sim.domain)
    r = ufl.sqrt(ufl.dot(x, x))
    n = x / r
    s = sim.sigma
    # interface pressure: the inclusion is under uniform hydrostatic compression -p
    p_fe = -_average(sim, ufl.dot(n, s * n), 1000)
    assert abs(p_fe - p) / p < 0.03, (p_fe, p)
    hyd = -_average(sim, ufl.tr(s) / 3.0, 1000)
    assert abs(hyd - p) / p < 0.03, (hyd, p)
    # matrix: radial and hoop stresses averaged over thin shells
    for r0 in (1.5, 2.5):
        band = ufl.conditional(ufl.And(ufl.ge(r, (r0 - 0.1) * A), ufl.le(r, (r0 + 0.1) * A)), 1.0, 0.0)
        rr = np.linspace((r0 - 0.1) * A, (r0 + 0.1) * A, 401)
        weight = rr**2
        hoop_exact = np.trapezoid(stt(rr) * weight, rr) / np.trapezoid(weight, rr)
        radial_exact = np.trapezoid(srr(rr) * weight, rr) / np.trapezoid(weight, rr)
        t1 = ufl.as_vector([-x[1], x[0], 0.0]) / ufl.sqrt(x[0] ** 2 + x[1] ** 2 + 1e-12)
        hoop = _average(sim, ufl.dot(t1, s * t1), 1, band)
        radial = _average(sim, ufl.dot(n, s * n), 1, band)
        assert abs(hoop - hoop_exact) / abs(hoop_exact) < 0.03, (r0, hoop, hoop_exact)
        assert abs(radial - radial_exact) / abs(radial_exact) < 0.03, (r0, radial, radial_exact)


def test_sphere_closed_form_limits():
    """Identical phases in an infinite matrix: p = 2 E e* / (3 (1 - nu)) (Eshelby)."""
    p, _, _ = sphere_inclusion(100.0, 0.3, 100.0, 0.3, 0.01, 1.0, 1e9)
    assert p == pytest.approx(2 * 100.0 * 0.01 / (3 * 0.7), rel=1e-6)
