"""A crack along a phase boundary pays the interface's toughness (docs/model.md,
"Interfaces").

A strip holds a particle (left) and electrolyte (right). The same straight crack (d = 1
on a line across the strip, the damage free elsewhere, no load) is placed once on the
particle/electrolyte boundary and once inside the electrolyte; the damage relaxes to its
optimal profile and the crack surface energy is integrated. Inside, it is G_c L; on the
boundary it must be G_c,int L, which the band of the neighbouring phase makes possible:
without it the particle side of the profile would be free and the crack would cost half.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from solver.config.fracture import Fracture, InterfaceBand
from solver.config.materials import FailureSpec, Material
from solver.physics import phasefield as pf
from solver.physics.failure import failure_fields, fixed_damage_dofs

ELL, GC, FT, E, NU = 0.25, 4e-3, 0.1, 20.0, 0.25  # um, GPa um, GPa, GPa, -
XB, W, H = 1.0, 3.0, 0.5  # um: boundary position, strip width and height
NX = 96  # h = ell / 8, grid lines on x = XB and on x = XB + 2 ell


def crack_energy(x_crack: float, interface: InterfaceBand | None, model: str = "cohesive") -> float:
    comm = MPI.COMM_WORLD
    domain = mesh.create_rectangle(comm, [[0, 0], [W, H]], [NX, 16])
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local + domain.topology.index_map(tdim).num_ghosts
    cells = np.arange(n, dtype=np.int32)
    mid = mesh.compute_midpoints(domain, tdim, cells)
    values = np.where(mid[:, 0] < XB, mtags.PARTICLE_BASE, mtags.ELECTROLYTE).astype(np.int32)
    cell_tags = mesh.meshtags(domain, tdim, cells, values)
    spec = FailureSpec.model_construct(Gc=GC, K_Ic=None, ell=ELL, strength=FT, critical_strain=None)
    se = Material.model_construct(E=E, nu=NU, fracture=spec)
    am = Material.model_construct(E=5 * E, nu=NU, fracture=None)
    mats = SimpleNamespace(of=lambda phase: {"electrolyte": se, "active": am}.get(phase))
    case = SimpleNamespace(fracture=Fracture.model_construct(**{**Fracture().__dict__, "model": model,
                                                                "interface": interface}),
                           materials=mats)
    Q = fem.functionspace(domain, ("DG", 0))
    ff = failure_fields(case, domain, cell_tags, Q)
    D = fem.functionspace(domain, ("Lagrange", 1))
    d, lower = fem.Function(D), fem.Function(D)
    line = fem.locate_dofs_geometrical(D, lambda x: np.isclose(x[0], x_crack))
    lower.x.array[line] = 1.0
    d.x.array[line] = 1.0
    fixed = fixed_damage_dofs(D, ff.chi_s)
    settings = pf.DamageSettings(model, "none", "rankine", 0.0, "bounds", "linear", ff.a1)
    zero = fem.Constant(domain, PETSc.ScalarType(0.0))
    problem = pf.DamageProblem(d, lower, zero, ff.Gc, ff.ell, ff.chi, settings, fixed, {},
                               prefix=f"czint_{model}_{int(1000 * x_crack)}_{interface is not None}_", chi_s=ff.chi_s)
    ok, _ = problem.solve()
    assert ok, problem.snes.getConvergedReason()
    f = fem.form(pf.fracture_density(d, ff.Gc, ff.ell, ff.chi_s, model) * ufl.dx)
    return comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM)


@pytest.mark.parametrize("model", ["cohesive", "AT1"])
def test_boundary_crack_costs_the_same_as_an_inner_crack(model):
    inner = crack_energy(XB + 2 * ELL, None, model)
    boundary = crack_energy(XB, None, model)
    # measured: inner +0.07 % (cohesive), +0.05 % (AT1) of G_c L; boundary within 0.3 % of inner
    assert inner == pytest.approx(GC * H, rel=0.01)
    assert boundary == pytest.approx(inner, rel=0.01)


def test_weak_interface_costs_its_own_toughness():
    """G_c,int = 0.4 G_c: the boundary crack costs 0.4 G_c L (measured 0.399)."""
    weak = InterfaceBand.model_construct(width=None, Gc=0.4 * GC, strength=None)
    assert crack_energy(XB, weak) == pytest.approx(0.4 * GC * H, rel=0.01)
