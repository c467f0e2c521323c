"""The mechanics of a composite cathode: displacement and, with fracture, damage.

:class:`MechanicsProblem` builds function spaces, forms and solvers once (from a case in
internal units and a distributed mesh). :meth:`MechanicsProblem.solve_step` solves one
load or time step at the present lithium fraction: elasticity alone, or displacement and
damage together by alternate minimisation (plain, Anderson-accelerated or over-relaxed,
:mod:`solver.numerics.schemes`). The step loop is :mod:`solver.numerics.stepping`.
"""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from meshes.tags import AM_PHASES, PHASE_CODES, SE_PHASES, phase_of_tags
from solver.config.units import FORCE_2D_TO_N_PER_M, FORCE_3D_TO_N
from solver.numerics import schemes
from solver.numerics.petsc import (DIRECT_NEWTON_MAX_DOFS, damage_options, damage_unconstrained, elasticity_options,
                                    linear_kind)
from solver.numerics.schemes import Accelerator, StepResult
from solver.physics import elasticity as el
from solver.physics import phasefield as pf
from solver.physics.failure import failure_fields, fixed_damage_dofs
from solver.physics.measures import CrackMeasures
from solver.physics.domain import MeshBundle




class MechanicsProblem:
    """Displacement (and damage) for a composite cathode under a prescribed lithiation.

    Args:
        case: validated case in internal units (``solver.config.units.to_internal``).
        bundle: the distributed mesh with tags.
        lithium: the lithium fraction of the particles as a field (P1, e.g. the
            electrochemistry's ``x``); default a uniform value set by :meth:`set_load`.
        x_ref: the stress-free lithium fraction when ``lithium`` is given.
    """

    def __init__(self, case, bundle: MeshBundle, lithium: fem.Function | None = None, x_ref: float = 0.0):
        self.case = case
        self.bundle = bundle
        domain = bundle.mesh
        self.domain = domain
        self.comm = domain.comm
        gdim = domain.geometry.dim
        self.gdim = gdim
        tdim = domain.topology.dim
        order = case.geometry.mesh.order
        cell_tags, facet_tags = bundle.cell_tags, bundle.facet_tags
        self.fracture = case.fracture.enabled
        self.monitor = None  # optional callable(iteration, damage change) for diagnostics

        # ---------------------------------------------------------------- spaces and fields
        V = fem.functionspace(domain, ("Lagrange", order, (gdim,)))
        self.u = fem.Function(V, name="displacement")
        self.u_saved = fem.Function(V)
        Q = fem.functionspace(domain, ("DG", 0))
        self.Q = Q
        self.phase = fem.Function(Q, name="phase")  # see PHASE_CODES
        ph = phase_of_tags(cell_tags.values)
        self.phase.x.array[cell_tags.indices] = np.array([PHASE_CODES[p] for p in ph], dtype=float)
        self.particle_id = fem.Function(Q, name="particle_id")
        vals = cell_tags.values
        self.particle_id.x.array[cell_tags.indices] = np.where(
            vals >= mtags.PARTICLE_B_BASE, vals - mtags.PARTICLE_B_BASE,
            np.where(vals >= mtags.PARTICLE_BASE, vals - mtags.PARTICLE_BASE, -1))
        m = case.materials
        props = el.phase_properties(m)
        self.mat = el.ElasticFields.from_phases(domain, cell_tags, phase_of_tags, props,
                                                bundle.info.get("packing", {}).get("particles", []))
        # lithium fraction: uniform and prescribed (a Constant), or a field
        self.lithium_field = lithium is not None
        self.x_li = lithium if lithium is not None else fem.Constant(domain, 0.0)
        self.x_ref = fem.Constant(domain, float(x_ref))
        self.lithiation = fem.Function(Q, name="lithiation")

        # chemical eigenstrain (f(x) - f(x_ref)) A of the particles and its trace
        eps_ch, self._vol_strain = el.chemical_eigenstrain(self.mat, self.x_li, self.x_ref)
        self.eps_ch = eps_ch
        eps_e = el.strain3(self.u, gdim) - eps_ch
        self.eps_e = eps_e
        lm, mu = self.mat.lmbda, self.mat.mu
        self.dx = ufl.Measure("dx", domain=domain, subdomain_data=cell_tags)
        # Quadrature: exact for the polynomial parts with P1/P2 fields (energy of a P1 strain
        # times a quadratic degradation); the split/driving-force expressions are not
        # polynomials and UFL's own estimate would be needlessly high.
        qdeg = 2 * order
        self.dxq = ufl.Measure("dx", domain=domain, subdomain_data=cell_tags, metadata={"quadrature_degree": qdeg})
        self.ds = ufl.Measure("ds", domain=domain, subdomain_data=facet_tags)

        # ---------------------------------------------------------------- damage
        fr = case.fracture
        self.settings = pf.DamageSettings(fr.model, fr.split, fr.driving_force, fr.residual_stiffness, fr.irreversibility,
                                          fr.softening)
        if self.fracture:
            D = fem.functionspace(domain, ("Lagrange", 1))
            self.d = fem.Function(D, name="damage")
            self.d_prev = fem.Function(D)  # last accepted damage (the irreversibility bound)
            self.d_iter = fem.Function(D)
            ff = failure_fields(case, domain, cell_tags, Q)
            self.chi, self.chi_s, self.Gc, self.ell = ff.chi, ff.chi_s, ff.Gc, ff.ell
            self.settings.a1 = ff.a1
            self.failure, self.failure_bands = ff.resolved, ff.bands
            energy = pf.stored_energy(eps_e, lm, mu, self.d, self.chi, self.settings, gdim)
            H = pf.driving_force(eps_e, lm, mu, self.mat.E, self.settings, gdim)
            self.H_hist = None
            if fr.irreversibility == "history":
                # cell-wise history of the driving force (exact for P1 displacements)
                self.H_hist = fem.Function(Q, name="H_history")
                self._H_expr = fem.Expression(H, Q.element.interpolation_points)
                H = ufl.max_value(H, self.H_hist)
            fixed = fixed_damage_dofs(D, self.chi_s)
            self.damage = pf.DamageProblem(self.d, self.d_prev if fr.irreversibility == "bounds" else self._zero(D),
                                           H, self.Gc, self.ell, self.chi, self.settings, fixed,
                                           damage_options(fr, D.dofmap.index_map.size_global, gdim),
                                           dx=self.dxq, chi_s=self.chi_s)
            kind = {"staggered": "staggered", "accelerated": "overrelaxed", "anderson": "anderson"}[fr.scheme.type]
            self.accel = Accelerator(kind, fr.scheme.depth, fr.scheme.relaxation, self.comm)
            self._damage_H = H
            self._fixed_damage = fixed
            linear = fr.split == "none"
        else:
            self.d = None
            energy = el.energy_density(eps_e, lm, mu)
            linear = True

        # ---------------------------------------------------------------- elasticity
        side_names = ("left", "right", "bottom", "top") if gdim == 2 else tuple(mtags.SIDES)
        ld = case.loading
        loaded = ld.side if ld.type == "displacement" else None
        side_tags = {k: mtags.SIDES[k] for k in side_names if k != loaded}
        sides = {k: case.mechanics.side(k) for k in side_tags}
        bcs, pressures = el.boundary_conditions(V, facet_tags, side_tags, sides)
        self.imposed = None
        if ld.type == "displacement":
            tag = mtags.SIDES[ld.side] if ld.side is not None else int(ld.boundary)
            self.imposed = el.ImposedDisplacement(V, facet_tags, tag, ld.direction, ld.prescribed_axes(gdim))
            bcs = list(bcs) + self.imposed.bcs
        opts = elasticity_options(case.mechanics, V.dofmap.index_map.size_global * V.dofmap.index_map_bs, gdim)
        self.elastic = el.ElasticityProblem(self.u, energy * self.dxq, bcs, pressures, self.ds, linear, opts)
        self._energy, self._pressures, self._f_reaction = energy, pressures, None
        self.newton = None
        if self.fracture and fr.scheme.type == "accelerated":
            self.elastic.set_inexact(True)
            self.damage.set_inexact(True)
            self.newton = self._monolithic_newton(energy, bcs, pressures)

        # ---------------------------------------------------------------- derived outputs
        eps_v = ufl.variable(eps_e)
        if self.fracture:
            psi = pf.stored_energy(eps_v, lm, mu, self.d, self.chi, self.settings, gdim)
        else:
            psi = el.energy_density(eps_v, lm, mu)
        sigma = ufl.diff(psi, eps_v)
        self.sigma = sigma
        self.outputs: dict[str, fem.Function] = {}
        self._out_expr = []
        for name, expr in el.stress_output_expressions(sigma, gdim).items():
            f = fem.Function(Q, name=name)
            self.outputs[name] = f
            self._out_expr.append((f, fem.Expression(expr, Q.element.interpolation_points)))
        self._li_mask = np.isin(self.phase.x.array, [PHASE_CODES["active"], PHASE_CODES["active_b"]])
        chi_am = fem.Function(Q)
        chi_am.x.array[:] = self._li_mask.astype(float)
        self._am_volume = self.comm.allreduce(fem.assemble_scalar(fem.form(chi_am * ufl.dx)), op=MPI.SUM)
        self._f_x_mean = fem.form(chi_am * self.x_li * ufl.dx)
        self._f_eigen = fem.form(self._vol_strain * ufl.dx)  # trace of the eigenstrain

        # scalar forms
        self.volume = self.comm.allreduce(fem.assemble_scalar(fem.form(1.0 * self.dx)), op=MPI.SUM)
        self._f_elastic = fem.form(psi * self.dxq)
        self._f_trace = fem.form(ufl.tr(el.strain3(self.u, gdim)) * ufl.dx)
        if self.fracture:
            self.cracks = CrackMeasures(self.d, self.chi, self.chi_s, self.Gc, self.ell, fr.model,
                                        max(r["ell"] for r in self.failure.values()), self.dxq)
        # solid-electrolyte cells (matrix, separator, collector-side layer) and particles
        self.se_cells = cell_tags.indices[np.isin(ph, SE_PHASES)]
        self.am_cells = cell_tags.indices[np.isin(ph, AM_PHASES)]
        n_owned = domain.topology.index_map(tdim).size_local
        self.se_cells = self.se_cells[self.se_cells < n_owned]
        self.am_cells = self.am_cells[self.am_cells < n_owned]

    # ------------------------------------------------------------------ set-up helpers
    def _zero(self, D):
        return fem.Function(D)

    # ------------------------------------------------------------------ stepping
    def set_load(self, x: float, x_ref: float) -> None:
        """Set the uniform lithium fraction (prescribed lithiation only)."""
        if self.lithium_field:
            raise RuntimeError("the lithium fraction is a field here: it is set by the electrochemistry")
        self.x_li.value = x
        self.x_ref.value = x_ref

    def set_displacement(self, U: float) -> None:
        """Move the loaded facets to U (um) along the loading's direction."""
        self.imposed.set(U)

    def reaction_force(self) -> float:
        """The force the loaded facets carry along the loading's direction, in SI: N per m
        of thickness in 2D, N in 3D (collective)."""
        if self._f_reaction is None:
            V = self.u.function_space
            v = ufl.TestFunction(V)
            F = ufl.derivative(self._energy * self.dxq, self.u, v)
            n = ufl.FacetNormal(self.domain)
            for tag, p in self._pressures:
                F += p * ufl.inner(n, v) * self.ds(tag)
            self._f_reaction = fem.form(F)
        return self.imposed.reaction(self._f_reaction) * (FORCE_2D_TO_N_PER_M if self.gdim == 2 else FORCE_3D_TO_N)

    def save_state(self) -> None:
        self.u_saved.x.array[:] = self.u.x.array
        if self.fracture:
            self.d_iter.x.array[:] = self.d.x.array

    def restore_state(self) -> None:
        self.u.x.array[:] = self.u_saved.x.array
        if self.fracture:
            self.d.x.array[:] = self.d_prev.x.array

    def accept(self) -> None:
        if self.fracture:
            self.d_prev.x.array[:] = self.d.x.array
            if self.H_hist is not None:
                Hn = fem.Function(self.Q)
                Hn.interpolate(self._H_expr)
                np.maximum(self.H_hist.x.array, Hn.x.array, out=self.H_hist.x.array)
        self.u_saved.x.array[:] = self.u.x.array

    def _monolithic_newton(self, energy, bcs, pressures) -> schemes.MonolithicNewton:
        fr = self.case.fracture
        V, D = self.u.function_space, self.d.function_space
        F_u = ufl.derivative(energy * self.dxq, self.u, ufl.TestFunction(V))
        n = ufl.FacetNormal(self.domain)
        for tag, p in pressures:
            F_u += p * ufl.inner(n, ufl.TestFunction(V)) * self.ds(tag)
        damage_energy = (self.chi * self.settings.g(self.d) * self._damage_H
                         + pf.fracture_density(self.d, self.Gc, self.ell, self.chi_s, fr.model)) * self.dxq
        F_d = ufl.derivative(damage_energy, self.d, ufl.TestFunction(D))
        bc_d = fem.dirichletbc(PETSc.ScalarType(0), self._fixed_damage, D)
        lower = self.d_prev if fr.irreversibility == "bounds" else self._zero(D)
        opts = dict(fr.scheme.newton_petsc_options)
        if damage_unconstrained(fr):  # no bound can be active (as for the damage solve)
            opts.setdefault("snes_type", "newtonls")
        n_dofs = sum(S.dofmap.index_map.size_global * S.dofmap.index_map_bs for S in (V, D))
        iterative = None
        if linear_kind(fr.scheme.newton_linear_solver, n_dofs, DIRECT_NEWTON_MAX_DOFS[self.gdim]) == "iterative":
            iterative = (el.rigid_body_modes(V),)
        return schemes.MonolithicNewton(self.u, self.d, F_u, F_d, list(bcs) + [bc_d], lower,
                                        self.damage.upper, opts, iterative=iterative)

    def solve_step(self) -> StepResult:
        e0, l0 = self.elastic.solves, self.elastic.linear_iterations
        if not self.fracture:
            ok, _ = self.elastic.solve()
            return StepResult(ok, 1, self.elastic.solves - e0, 0, 0, self.elastic.linear_iterations - l0,
                              reason="" if ok else "elasticity did not converge")
        sch = self.case.fracture.scheme
        return schemes.alternate_minimisation(
            self, sch, self.accel, self.newton, sch.switch_tolerance if self.newton is not None else 0.0,
            descent=self.case.fracture.driving_force == "energy")

    # ------------------------------------------------------------------ measures and outputs
    def update_outputs(self) -> None:
        for f, expr in self._out_expr:
            f.interpolate(expr)
        if not self.lithium_field:
            self.lithiation.x.array[:] = np.where(self._li_mask, float(self.x_li.value), 0.0)

    def field_functions(self) -> list:
        """Fields for the output (the lithiation only when it is uniform: a lithium field
        is written by its owner)."""
        out = [self.u]
        if self.fracture:
            out.append(self.d)
        if not self.lithium_field:
            out.append(self.lithiation)
        out += list(self.outputs.values()) + [self.phase, self.particle_id]
        return out

    def columns(self) -> list[str]:
        """The history columns of :meth:`measures`, in order."""
        cols = (["x", "soc", "vol_strain"] if self._am_volume > 0 else []) + ["mean_strain", "sigma1_max_SE"]
        cols += (["sigma_h_min_AM"] if self._am_volume > 0 else []) + ["elastic_energy"]
        if self.fracture:
            cols += self.cracks.columns()
        return cols

    def measures(self) -> dict:
        """Scalar measures of the current state (call update_outputs first)."""
        comm = self.comm
        asum = lambda f: comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM)  # noqa: E731
        s1 = self.outputs["max_principal"].x.array
        sh = self.outputs["hydrostatic"].x.array
        s1_se = comm.allreduce(float(s1[self.se_cells].max()) if len(self.se_cells) else -np.inf, op=MPI.MAX)
        sh_am = comm.allreduce(float(sh[self.am_cells].min()) if len(self.am_cells) else np.inf, op=MPI.MIN)
        out = {}
        if self._am_volume > 0:  # the particles' lithiation and strain
            x = asum(self._f_x_mean) / self._am_volume
            out.update(x=x, soc=1.0 - x, vol_strain=asum(self._f_eigen) / self._am_volume)
        out.update(mean_strain=asum(self._f_trace) / self.volume, sigma1_max_SE=1e3 * s1_se)
        if self._am_volume > 0:
            out["sigma_h_min_AM"] = 1e3 * sh_am
        out["elastic_energy"] = asum(self._f_elastic)
        if self.fracture:
            out.update(self.cracks.values())
        return out

    def checkpoint_functions(self) -> dict:
        """The fields that a checkpoint must hold to continue the run exactly: the
        displacement and, with fracture, the damage, its last accepted value (the
        irreversibility bound) and the history field (``irreversibility: history``)."""
        out = {"displacement": self.u}
        if self.fracture:
            out.update({"damage": self.d, "damage_accepted": self.d_prev})
            if self.H_hist is not None:
                out["H_history"] = self.H_hist
        return out

    def dofs(self) -> dict:
        V = self.u.function_space
        out = {"displacement": V.dofmap.index_map.size_global * V.dofmap.index_map_bs}
        if self.fracture:
            out["damage"] = self.d.function_space.dofmap.index_map.size_global
        return out
