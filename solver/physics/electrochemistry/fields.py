"""The field problem of the electrochemistry: the lithium fraction x and the ionic potential
phi_e (P1 each, one block each) at given particle potentials phi_s.

* x obeys lithium diffusion (:mod:`solver.physics.diffusion`) in the particles with the
  molar influx N = -i_n / F through their surfaces (i_n: :mod:`.kinetics`);
* phi_e, on every non-particle cell (electrolyte, separator, collector layer, coating),
  obeys div(kappa_eff grad phi_e) = 0, a single-ion conductor,
  kappa_eff = kappa ((1 - d)^p + k_res) with the phase-field damage d; the current leaves
  the electrolyte through the particle surfaces as i_n;
* the lithium-metal electrode on the x = 0 side ('left') is the potential reference:
  phi_e = 0 there (fast kinetics, default) or its own Butler-Volmer law with eta = -phi_e.

The residuals are written per F c_ref (c_ref: c_max of ``loading.active``). The two
equations form one blocked Newton problem (PETSc SNES through
``dolfinx.fem.petsc.NonlinearProblem``; LU by MUMPS, or above ``loading.linear_solver``'s
size GMRES with block Gauss-Seidel); its Jacobian J also gives the sensitivity of the
fields to the particle potentials, J dU/dq = -dF/dq.
"""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem, la
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from meshes.tags import phase_of_tags
from solver.config.units import GPA_UM3_TO_J
from solver.numerics.blocks import ITERATIVE_BLOCKED
from solver.numerics.petsc import DIRECT_ELECTROCHEMISTRY_MAX_DOFS, ELECTROCHEMISTRY_SNES, LU, linear_kind
from solver.physics import diffusion as dif
from solver.physics.constants import FARADAY, R_GAS
from solver.physics.electrochemistry.kinetics import anode_current, particle_current
from solver.physics.electrochemistry.ocv import get_ocv

#: ids of the one-sided facet measure: the particle surfaces, the lithium-metal side
SURFACE, ANODE = 1, 2
#: ionic phases: the cells that carry phi_e (each may have its own conductivity)
IONIC_PHASES = ("electrolyte", "separator", "collector_layer", "coating")

def _like(vec):
    """A new PETSc vector with the layout (blocks included) of ``vec``."""
    out = vec.duplicate()
    out.setAttr("_blocks", vec.getAttr("_blocks"))
    return out


class FieldSolver:
    """Newton's method on the blocked (x, phi_e) problem (PETSc SNES through
    ``dolfinx.fem.petsc.NonlinearProblem``) and the solves with its factorised Jacobian J
    that the control iteration needs: Newton steps dU = -J^-1 F, sensitivities
    dU/dq = -J^-1 dF/dq, and moves of the fields along them.

    Args:
        F: the residual forms of x and phi_e.
        fields: the functions (x, phi_e).
        bcs: their (homogeneous) Dirichlet conditions.
        constrained: the DOF arrays of those conditions, per field.
        prefix, options: PETSc options prefix and options of the solver.
        iterative: GMRES with block Gauss-Seidel (:mod:`solver.numerics.blocks`: AMG on
            x and on phi_e) instead of the linear solve of ``options``.
    """

    def __init__(self, F: list, fields: tuple, bcs: list, constrained: tuple, prefix: str, options: dict,
                 iterative: bool = False):
        from dolfinx.fem.petsc import NonlinearProblem

        from solver.numerics.blocks import use_block_preconditioner
        from solver.numerics.petsc import set_petsc_options

        self.x, self.phi_e = fields
        self.comm = self.x.function_space.mesh.comm
        self._constrained = constrained
        J = [[ufl.derivative(Fi, u, ufl.TrialFunction(u.function_space)) for u in fields] for Fi in F]
        self.problem = NonlinearProblem(F, list(fields), J=J, bcs=bcs, kind="mpi", petsc_options_prefix=prefix)
        set_petsc_options(self.problem.solver, prefix, options)
        if iterative:  # x's rows come first on every rank
            use_block_preconditioner(self.problem.solver.getKSP(), self.x.function_space.dofmap.index_map.size_local,
                                     prefix)

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the present x and phi_e (for :meth:`set_values`)."""
        return self.x.x.array.copy(), self.phi_e.x.array.copy()

    def set_values(self, values: tuple[np.ndarray, np.ndarray]) -> None:
        self.x.x.array[:], self.phi_e.x.array[:] = values

    def solve(self) -> tuple[bool, int]:
        """Newton on (x, phi_e) at the present particle potentials, from the present fields.
        Returns (converged to finite fields, Newton iterations)."""
        self.problem.solve()
        snes = self.problem.solver
        self.x.x.scatter_forward()
        self.phi_e.x.scatter_forward()
        finite = np.all(np.isfinite(self.x.x.array)) and np.all(np.isfinite(self.phi_e.x.array))
        ok = snes.getConvergedReason() > 0 and bool(self.comm.allreduce(int(finite), op=MPI.MIN))
        return ok, snes.getIterationNumber()

    def tolerances(self) -> tuple[float, float]:
        """(relative, absolute) residual tolerances of the field solver."""
        rtol, atol, _, _ = self.problem.solver.getTolerances()
        return rtol, atol

    def residual_norm(self) -> float:
        """Evaluate the residual F of the present fields (into the solver's vector) and
        return its norm."""
        import dolfinx.fem.petsc as fpetsc

        X, F = self.problem.x, self.problem.b
        fpetsc.assign([self.x, self.phi_e], X)
        self.problem.solver.computeFunction(X, F)
        return F.norm()

    def factorise(self) -> None:
        """Assemble the field Jacobian at the fields in ``problem.x`` (the present ones in
        both callers: after a field solve, or after :meth:`residual_norm`) and hand it to
        the solver's KSP (factorised at its next solve)."""
        self.problem.solver.computeJacobian(self.problem.x, self.problem.A)
        self.problem.solver.getKSP().setOperators(self.problem.A)

    def newton_step(self):
        """The Newton step dU = -J^-1 F (a blocked vector: destroy it after use): F the
        residual of the last :meth:`residual_norm`, J the Jacobian at the same fields
        (factorised here)."""
        self.factorise()
        F = self.problem.b
        dU = _like(F)
        F.scale(-1.0)
        self.problem.solver.getKSP().solve(F, dU)
        dU.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        return dU

    def sensitivity(self, form):
        """z = -J^-1 b (a blocked vector: destroy it after use), b the assembled blocked
        vector ``form`` with its Dirichlet entries zeroed, with the Jacobian J that the
        solver's KSP holds: dU/dq = z for b = dF/dq."""
        import dolfinx.fem.petsc as fpetsc

        b = fpetsc.assemble_vector(form, kind="mpi")
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        self._zero_constrained(b)
        b.scale(-1.0)
        z = _like(b)
        self.problem.solver.getKSP().solve(b, z)
        z.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        b.destroy()
        return z

    def _zero_constrained(self, b) -> None:
        """Zero the entries of the Dirichlet DOFs in a blocked (x, phi_e) vector."""
        (o0, o1, _), _ = b.getAttr("_blocks")
        arr = b.array_w
        for u, offset, dof_arrays in zip((self.x, self.phi_e), (o0, o1), self._constrained):
            n_owned = u.function_space.dofmap.index_map.size_local
            for dofs in dof_arrays:
                arr[offset + dofs[dofs < n_owned]] = 0.0

    def move(self, Z: list, dq: np.ndarray, dU=None) -> None:
        """Move the fields along their sensitivities: U += dU + sum_j dq_j dU/dq_j (a
        first-order guess for the next field solve; dU a field Newton step, optional)."""
        import dolfinx.fem.petsc as fpetsc

        vec = _like(self.problem.x)
        fpetsc.assign([self.x, self.phi_e], vec)
        if dU is not None:
            vec.axpy(1.0, dU)
        for z, a in zip(Z, dq):
            if a != 0.0:
                vec.axpy(a, z)
        vec.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        fpetsc.assign(vec, [self.x, self.phi_e])
        vec.destroy()


class FieldProblem:
    """The (x, phi_e) problem of a composite cathode: materials, unknowns, measures,
    residuals and their Newton solver ``solver`` (:class:`FieldSolver`). See
    :class:`ElectrochemistryProblem` for the arguments.

    Attributes: ``x``, ``x_old``, ``phi_e`` (P1; spaces ``Vx``, ``Vp``), ``phi_s`` (DG0,
    the particle potentials, set by the circuit), ``damage``, ``dt`` (the time step, a
    constant of the forms), ``i_n`` and ``kappa_eff`` (UFL), ``F`` (the two residuals);
    ``capacity`` (C), ``one_c`` (A), ``collector_area``, ``bounds`` of the mesh.
    """

    def __init__(self, domain, cell_tags, facet_tags, case, damage: fem.Function | None = None,
                 hydrostatic_stress=None, prefix: str = "ssbfrac_electrochem_"):
        ld = case.loading
        self.case, self.loading = case, ld
        self.domain, self.comm = domain, domain.comm
        self.tdim = domain.topology.dim
        self.n_owned_cells = domain.topology.index_map(self.tdim).size_local
        self.f = FARADAY / (R_GAS * ld.temperature)  # 1/V
        self.c_ref = ld.active.c_max
        self.scale = FARADAY * self.c_ref  # the residuals are written per F c_ref

        self._cell_fields(cell_tags)
        self._unknowns(damage)
        self._measures(cell_tags, facet_tags)
        self._forms(hydrostatic_stress)
        self._scalars(facet_tags)
        self._solver(prefix)
        self._stress_projection = None

    # ------------------------------------------------------------------ set-up
    def _cell_fields(self, cell_tags) -> None:
        """Phases, material indicators, c_max and kappa (DG0)."""
        ld, comm = self.loading, self.comm
        phases = phase_of_tags(cell_tags.values)
        Q = fem.functionspace(self.domain, ("DG", 0))
        self.Q = Q
        self.cell_dof = Q.dofmap.list[:, 0]
        self.am_cells = dif.active_cells(cell_tags)
        self.ionic_cells = cell_tags.indices[np.isin(phases, IONIC_PHASES)].astype(np.int32)
        present = set().union(*comm.allgather(set(np.unique(phases).tolist())))
        self.cmax = fem.Function(Q, name="c_max")
        self.kappa = fem.Function(Q, name="kappa")
        self.materials = []  # (name, indicator, transport spec, OCV curve)
        for name in ("active", "active_b"):
            if name not in present:
                continue
            spec = getattr(ld, name)
            if spec is None:
                raise ValueError(f"the mesh has {name} particles but loading.{name} (transport, kinetics) is not given")
            chi = fem.Function(Q, name=f"chi_{name}")
            cells = cell_tags.indices[phases == name]
            chi.x.array[self.cell_dof[cells]] = 1.0
            self.cmax.x.array[self.cell_dof[cells]] = spec.c_max
            self.materials.append((name, chi, spec, get_ocv(spec.ocv if spec.ocv is not None else spec.ocv_table)))
        if not self.materials:
            raise ValueError("the mesh has no active-material cells (cell tags >= 1000)")
        self.chi_am = sum(chi for _, chi, _, _ in self.materials)
        for phase in IONIC_PHASES:
            cells = cell_tags.indices[phases == phase]
            self.kappa.x.array[self.cell_dof[cells]] = (getattr(ld, phase, None) or ld.electrolyte).kappa
        self.kappa_ref = ld.electrolyte.kappa

    def _unknowns(self, damage) -> None:
        """x, phi_e (two distinct P1 spaces: one block each), phi_s (DG0)."""
        Vx = fem.functionspace(self.domain, ("Lagrange", 1))
        Vp = fem.functionspace(self.domain, ("Lagrange", 1))
        self.Vx, self.Vp = Vx, Vp
        self.x = fem.Function(Vx, name="lithiation")
        self.x_old = fem.Function(Vx)
        self.phi_e = fem.Function(Vp, name="ionic_potential")
        self.phi_s = fem.Function(self.Q, name="particle_potential")
        if damage is None:
            damage = fem.Function(fem.functionspace(self.domain, ("Lagrange", 1)), name="damage")
        self.damage = damage
        self.dt = fem.Constant(self.domain, 1.0)
        # DOFs no particle cell touches carry no transport equation (x = 0 there), DOFs no
        # ionic cell touches no conduction equation (phi_e = 0 there)
        self.x_out = dif.dofs_outside(Vx, self.am_cells)
        self.phi_out = dif.dofs_outside(Vp, self.ionic_cells)
        self.x.x.array[:] = self.loading.initial_lithiation
        self.x.x.array[self.x_out] = 0.0
        self.x_old.x.array[:] = self.x.x.array

    def _measures(self, cell_tags, facet_tags) -> None:
        """dx, and the one-sided ds over the particle surfaces (and the lithium side)."""
        domain, comm = self.domain, self.comm
        self.dx = ufl.Measure("dx", domain=domain, metadata={"quadrature_degree": 2})
        surface_tags = {int(t) for t in np.unique(facet_tags.values) if t >= mtags.PARTICLE_BASE}
        surface_tags = sorted(set().union(*comm.allgather(surface_tags)))
        entities = {SURFACE: dif.one_sided_facets(domain, cell_tags, facet_tags, surface_tags, self.am_cells)}
        self.bv_anode = self.loading.anode.kinetics == "butler_volmer"
        if self.bv_anode:
            entities[ANODE] = dif.one_sided_facets(domain, cell_tags, facet_tags, [mtags.SIDES["left"]],
                                                   self.ionic_cells)
        self.ds = dif.facet_measure(domain, entities, 4)
        left = facet_tags.indices[facet_tags.values == mtags.SIDES["left"]]
        self.phi_left = np.setdiff1d(fem.locate_dofs_topological(self.Vp, self.tdim - 1, left), self.phi_out)
        if comm.allreduce(len(self.phi_left), op=MPI.SUM) == 0:
            raise ValueError("no electrolyte facet is tagged 'left' (1): the lithium-metal side is missing")

    def _forms(self, hydrostatic_stress) -> None:
        """Kinetics, conductivity and the residuals of the two field equations."""
        ld, S = self.loading, self.scale
        x, phi = self.x, self.phi_e
        i_n = particle_current(self.materials, x, self.phi_s, phi, self.f)
        fb = ld.damage_feedback
        blocked = ((1.0 - self.damage) ** fb.exponent if fb.exponent > 0 else 1.0) + fb.residual
        if fb.interface:
            i_n = i_n * blocked
        self.i_n = i_n
        self.kappa_eff = self.kappa * blocked

        # lithium transport, with the optional stress-assisted flux
        self.sigma_h = fem.Function(self.Vx, name="hydrostatic_p1") if ld.stress_assisted else None
        self._stress_source = hydrostatic_stress
        mats = []
        for name, chi, spec, _ in self.materials:
            coupling = 0.0
            if ld.stress_assisted:
                omega = getattr(self.case.materials, name).strain_slope(x, ufl) / spec.c_max  # um^3/mol
                coupling = omega * GPA_UM3_TO_J / (R_GAS * ld.temperature)  # 1/GPa
            mats.append((chi, spec.c_max / self.c_ref, dif.diffusivity(spec, x), coupling))
        v, w = ufl.TestFunction(self.Vx), ufl.TestFunction(self.Vp)
        F_x = dif.transport_residual(x, self.x_old, v, self.dt, mats, self.dx, self.sigma_h)
        F_x += (i_n / S) * v * self.ds(SURFACE)  # influx -i_n / F

        # ionic conduction; the current leaves the electrolyte through the surfaces as i_n
        F_p = (self.kappa_eff / S) * ufl.inner(ufl.grad(phi), ufl.grad(w)) * self.dx
        F_p -= (i_n / S) * w * self.ds(SURFACE)
        self._f_anode = None
        if self.bv_anode:
            i_a = anode_current(ld.anode, phi, self.f)
            F_p -= (i_a / S) * w * self.ds(ANODE)  # current into the electrolyte
            self._f_anode = fem.form(i_a * self.ds(ANODE))
        self._f_phi_residual = fem.form(F_p)
        self.F = [F_x, F_p]

    def _scalars(self, facet_tags) -> None:
        """Capacity, 1C current, collector-side area, extent of the mesh."""
        comm, dx = self.comm, self.dx
        self._f_lithium = fem.form(self.cmax * self.x * dx)
        self._f_xvol = fem.form(self.chi_am * self.x * dx)
        self.am_volume = dif.assemble(comm, fem.form(self.chi_am * dx))
        self.capacity = FARADAY * dif.assemble(comm, fem.form(self.cmax * dx))  # C, from x = 0 to 1
        self.one_c = self.capacity / 3600.0  # A
        ds_sides = ufl.Measure("ds", domain=self.domain, subdomain_data=facet_tags)
        self.collector_area = dif.assemble(comm, fem.form(1.0 * ds_sides(mtags.SIDES["right"])))
        gx = self.domain.geometry.x
        lo = [comm.allreduce(float(gx[:, k].min()), op=MPI.MIN) for k in range(self.domain.geometry.dim)]
        hi = [comm.allreduce(float(gx[:, k].max()), op=MPI.MAX) for k in range(self.domain.geometry.dim)]
        self.bounds = (np.array(lo), np.array(hi))

    def _solver(self, prefix: str) -> None:
        """Homogeneous Dirichlet conditions on the DOFs without an equation (and phi_e = 0
        on the lithium side with fast anode kinetics), and the Newton solver."""
        fixed_phi = [self.phi_out] + ([] if self.bv_anode else [self.phi_left])
        self.bcs = [fem.dirichletbc(PETSc.ScalarType(0.0), self.x_out, self.Vx)]
        self.bcs += [fem.dirichletbc(PETSc.ScalarType(0.0), dofs, self.Vp) for dofs in fixed_phi]
        # residual scale: the 1C lithium rate per F c_ref; converged below 1e-10 of it (its
        # round-off floor is near 1e-12 of it)
        n_dofs = sum(V.dofmap.index_map.size_global for V in (self.Vx, self.Vp))
        iterative = linear_kind(self.loading.linear_solver, n_dofs,
                                DIRECT_ELECTROCHEMISTRY_MAX_DOFS[self.tdim]) == "iterative"
        opts = {**ELECTROCHEMISTRY_SNES, **(ITERATIVE_BLOCKED if iterative else LU)}
        opts["snes_atol"] = 1e-10 * self.one_c / self.scale
        opts.update(self.loading.petsc_options)
        self.solver = FieldSolver(self.F, (self.x, self.phi_e), self.bcs, ([self.x_out], fixed_phi), prefix, opts,
                                  iterative=iterative)

    # ------------------------------------------------------------------ a time step
    def prepare_step(self, dt: float) -> None:
        """Set the time step, and project the hydrostatic stress of the mechanics (if the
        flux is stress-assisted) for the next solves."""
        self.dt.value = dt
        if self.sigma_h is not None and self._stress_source is not None:
            self._project_stress()

    def _project_stress(self) -> None:
        """L2 projection of the hydrostatic stress onto P1 over the particles (exact for
        linear fields; the DOFs outside the particles stay zero)."""
        if self._stress_projection is None:
            from dolfinx.fem.petsc import LinearProblem

            t, v = ufl.TrialFunction(self.Vx), ufl.TestFunction(self.Vx)
            bc = fem.dirichletbc(PETSc.ScalarType(0.0), self.x_out, self.Vx)
            self._stress_projection = LinearProblem(
                self.chi_am * t * v * self.dx, self.chi_am * self._stress_source * v * self.dx, bcs=[bc],
                u=self.sigma_h, petsc_options_prefix="ssbfrac_stress_projection_",
                petsc_options={"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
        self._stress_projection.solve()
        self.sigma_h.x.scatter_forward()

    def commit(self) -> None:
        """The present x becomes the start of the next step."""
        self.x_old.x.array[:] = self.x.x.array

    def snapshot(self) -> dict:
        """Copies of x, x_old, phi_e and phi_s (for :meth:`restore`)."""
        return {"x": self.x.x.array.copy(), "x_old": self.x_old.x.array.copy(), "phi": self.phi_e.x.array.copy(),
                "phi_s": self.phi_s.x.array.copy()}

    def restore(self, s: dict) -> None:
        self.x.x.array[:] = s["x"]
        self.x_old.x.array[:] = s["x_old"]
        self.phi_e.x.array[:] = s["phi"]
        self.phi_s.x.array[:] = s["phi_s"]

    # ------------------------------------------------------------------ integrals
    def total_lithium(self) -> float:
        """int c_max x over the particles (mol; per um of thickness in 2D). Collective."""
        return dif.assemble(self.comm, self._f_lithium)

    def x_mean(self) -> float:
        """Volume mean lithium fraction of the particles. Collective."""
        return dif.assemble(self.comm, self._f_xvol) / self.am_volume

    def anode_current(self) -> float:
        """Current entering the electrolyte from the lithium-metal side (A), computed
        independently of the particle surfaces: the reaction of the phi_e = 0 condition
        (fast anode) or int i_a over that side (Butler-Volmer anode). Collective."""
        if self._f_anode is not None:
            return dif.assemble(self.comm, self._f_anode)
        vec = fem.assemble_vector(self._f_phi_residual)
        vec.scatter_reverse(la.InsertMode.add)
        own = self.phi_left[self.phi_left < self.Vp.dofmap.index_map.size_local]
        return self.scale * dif.global_sum(self.comm, vec.array[own].sum())
