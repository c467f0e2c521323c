"""Homogenised ionic conductivity of the (damaged) electrolyte across the thickness."""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from solver.physics import diffusion as dif


class EffectiveConductivity:
    """Effective ionic conductivity of the electrolyte across the thickness (x).

    Solves div(kappa_eff grad u) = 0 on the ionic cells with u = 1 on the lithium side
    ('left', x = x_min), u = 0 on the collector side ('right'), insulated lateral sides and
    particle surfaces (the particles do not conduct ions), and returns

        kappa_hom = I L / (Delta_u A),   I Delta_u = int kappa_eff |grad u|^2 dx,

    with L the extent in x and A = volume / L the cross-section (in 2D the height, per unit
    thickness). The current comes from the dissipation, the consistent measure of the flux.
    Cells that are not ionic keep u = 0; a vanishing mass term (1e-10 / L^2) keeps electrolyte
    pockets that touch neither side determined.

    Args:
        kappa_eff: UFL expression of the conductivity (S/um), e.g. kappa ((1 - d)^p + k_res);
            only its values on the ionic cells matter.
        ionic_cells: local cell indices of the ionic phases.
    """

    def __init__(self, domain, cell_tags, facet_tags, kappa_eff, ionic_cells: np.ndarray):
        from dolfinx.fem.petsc import LinearProblem

        comm = domain.comm
        self.comm = comm
        tdim = domain.topology.dim
        V = fem.functionspace(domain, ("Lagrange", 1))
        self.u = fem.Function(V, name="homogenisation_potential")
        t, w = ufl.TrialFunction(V), ufl.TestFunction(V)
        gx = domain.geometry.x
        self.length = (comm.allreduce(float(gx[:, 0].max()), op=MPI.MAX)
                       - comm.allreduce(float(gx[:, 0].min()), op=MPI.MIN))
        dx = ufl.Measure("dx", domain=domain, metadata={"quadrature_degree": 4})
        self.area = dif.assemble(comm, fem.form(1.0 * dx)) / self.length
        Q = fem.functionspace(domain, ("DG", 0))
        ion = fem.Function(Q)
        ion.x.array[Q.dofmap.list[ionic_cells, 0]] = 1.0
        mean = dif.assemble(comm, fem.form(ion * kappa_eff * dx)) / dif.assemble(comm, fem.form(ion * dx))
        if not mean > 0:
            raise ValueError("effective conductivity: kappa_eff vanishes on every electrolyte cell")
        k = ion * kappa_eff / mean  # scaled to order one (the solution does not depend on it)
        a = k * ufl.inner(ufl.grad(t), ufl.grad(w)) * dx + 1e-10 / self.length**2 * ion * t * w * dx
        rhs = fem.Constant(domain, PETSc.ScalarType(0.0)) * w * dx
        out = dif.dofs_outside(V, ionic_cells)
        sides = {}
        for name in ("left", "right"):
            facets = facet_tags.indices[facet_tags.values == mtags.SIDES[name]]
            dofs = np.setdiff1d(fem.locate_dofs_topological(V, tdim - 1, facets), out).astype(np.int32)
            if comm.allreduce(len(dofs), op=MPI.SUM) == 0:
                raise ValueError(f"effective conductivity: no electrolyte on the {name} side of the mesh")
            sides[name] = dofs
        bcs = [fem.dirichletbc(PETSc.ScalarType(0.0), out, V),
               fem.dirichletbc(PETSc.ScalarType(1.0), sides["left"], V),
               fem.dirichletbc(PETSc.ScalarType(0.0), sides["right"], V)]
        self.problem = LinearProblem(a, rhs, bcs=bcs, u=self.u, petsc_options_prefix="ssbfrac_homogenisation_",
                                     petsc_options={"ksp_type": "preonly", "pc_type": "lu",
                                                    "pc_factor_mat_solver_type": "mumps"})
        self._f_power = fem.form(ion * kappa_eff * ufl.inner(ufl.grad(self.u), ufl.grad(self.u)) * dx)

    def solve(self) -> float:
        """kappa_hom (S/um) for the present damage."""
        self.problem.solve()
        self.u.x.scatter_forward()
        return dif.assemble(self.comm, self._f_power) * self.length / self.area
