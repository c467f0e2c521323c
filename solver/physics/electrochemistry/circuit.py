"""The particle potentials and the external circuit.

phi_s, the electronic potential of the particles, is the cell voltage V in every particle
(uniform model, the default), or one value per particle connected to the collector through
a contact resistance and, optionally, an electronic network across the thickness:

    phi_k = V + sum_j R_kj I_j        (isolated particles: I_k = 0),

I_k the current that particle k delivers (-int i_n over its surface). The control of a
protocol segment is a cell current I_app (sum_k I_k = I_app, galvanostatic) or a held V
(potentiostatic). The control unknowns ``u`` are [V] (uniform model) or
[phi_1, ..., phi_m, V] (one potential per particle); the unknowns of a solve are the part
that is not held:

    uniform, galvanostatic: [V]           uniform, hold: none
    per particle, galvanostatic: u        per particle, hold: [phi_1, ..., phi_m]

The control residual (currents in A, Ohm's law of the contacts in V) has the Jacobian
d(residual)/d(unknowns) from G = dI_k/dq_j, which the field sensitivities give:
dI/dq = dI/dq|_fields + dI/dU dU/dq, J dU/dq = -dF/dq.
"""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem, la
from mpi4py import MPI

from meshes import tags as mtags
from solver.physics.electrochemistry.fields import SURFACE, FieldProblem


class Circuit:
    """Particle groups (one per potential), their currents, the resistance matrix and the
    control equations, on the fields of ``fields``.

    Args:
        fields: the (x, phi_e) problem, whose ``phi_s`` holds the particle potentials.
        cell_tags: the cell tags of meshes/tags.py.
        electronic: ``loading.electronic`` (model, contact_resistance, conductivity, isolated).

    Attributes: ``groups`` (particle indices of the potentials, ``[None]`` for the uniform
    model), ``m`` (their number), ``surface_area``, ``particle_depth`` (centroid x),
    ``isolated`` (per group), ``resistance`` (m x m), ``interface_current`` (DG0 output),
    ``sensitivity_solves`` (solves with the factorised field Jacobian so far).
    """

    def __init__(self, fields: FieldProblem, cell_tags, electronic):
        self.fields = fields
        self.comm = fields.comm
        self._groups(cell_tags, electronic)
        self._forms()
        self.isolated = np.array([p in set(electronic.isolated) for p in self.groups], dtype=bool)
        self.resistance = self._electronic_resistance(electronic)
        self.interface_current = fem.Function(fields.Q, name="interface_current")
        self.sensitivity_solves = 0

    def _groups(self, cell_tags, electronic) -> None:
        """The particle potentials: one group (uniform) or one per particle."""
        fields, comm = self.fields, self.comm
        n_local = fields.n_owned_cells + fields.domain.topology.index_map(fields.tdim).num_ghosts
        tag = np.full(n_local, -1, dtype=np.int64)
        tag[cell_tags.indices] = cell_tags.values
        am = fields.am_cells
        self._am_owned = am[am < fields.n_owned_cells]
        self._group = np.full(n_local, -1, dtype=np.int64)
        if electronic.model == "per_particle":
            pid = np.where(tag >= mtags.PARTICLE_B_BASE, tag - mtags.PARTICLE_B_BASE, tag - mtags.PARTICLE_BASE)
            self.groups = sorted(set().union(*comm.allgather(set(pid[am].tolist()))))
            index = {p: k for k, p in enumerate(self.groups)}
            self._group[am] = [index[p] for p in pid[am]]
            missing = sorted(set(electronic.isolated) - set(self.groups))
            if missing:
                raise ValueError(f"loading.electronic.isolated: no particles {missing} in the mesh")
        else:
            self.groups = [None]
            self._group[am] = 0
        self.m = len(self.groups)

    def _forms(self) -> None:
        """The current of each group and its derivatives, surface area and depth."""
        fl = self.fields
        w0 = ufl.TestFunction(fl.Q)
        self._dir = fem.Function(fl.Q)  # direction of a change of phi_s (indicator of a group)
        self._zx, self._zp = fem.Function(fl.Vx), fem.Function(fl.Vp)  # a field sensitivity
        L_cur = -fl.i_n * w0 * fl.ds(SURFACE)  # per cell: current delivered through its surface facets
        self._f_cur = fem.form(L_cur)
        self._f_dcur_dU = fem.form(ufl.derivative(L_cur, fl.x, self._zx) + ufl.derivative(L_cur, fl.phi_e, self._zp))
        self._f_dcur_dq = fem.form(ufl.derivative(L_cur, fl.phi_s, self._dir))
        self._f_dF_dq = fem.form([ufl.derivative(F, fl.phi_s, self._dir) for F in fl.F])
        self._f_area = fem.form(w0 * fl.ds(SURFACE))
        self._f_i_cells = fem.form(fl.i_n * w0 * fl.ds(SURFACE))
        self._f_lithium_cells = fem.form(fl.cmax * fl.x * w0 * fl.dx)
        self.surface_area = self.group_sum(self._f_area)  # um (2D) or um^2 per group
        coord = ufl.SpatialCoordinate(fl.domain)[0]
        volume = self.group_sum(fem.form(w0 * fl.dx))
        self.particle_depth = self.group_sum(fem.form(coord * w0 * fl.dx)) / np.where(volume > 0, volume, 1.0)

    def _electronic_resistance(self, electronic) -> np.ndarray:
        """The resistance matrix R (Ohm; in 2D times um of thickness) of the particle
        potentials, phi = V + R I: the contact resistance of each particle (diagonal,
        ``contact_resistance`` / particle surface) plus, with an electronic ``conductivity``,
        the conducting network between the collector side (x = x_max) and each particle,
        a one-dimensional ladder across the thickness: the network carries at depth s the
        current of every particle lying deeper (x_j < s), so that
        R_kj = (x_max - max(x_k, x_j)) / (sigma A), with x_k the particle's centroid and A
        the collector-side area."""
        el = electronic
        R = np.diag([el.contact_resistance / a if a > 0 else 0.0 for a in self.surface_area])
        if el.conductivity is not None and not self.uniform:
            depth = self.particle_depth
            x_max = float(self.fields.bounds[1][0])
            R = R + (x_max - np.maximum.outer(depth, depth)) / (el.conductivity * self.fields.collector_area)
        return R

    # ------------------------------------------------------------------ control unknowns
    @property
    def uniform(self) -> bool:
        return self.groups == [None]

    def initial_unknowns(self, voltage: float) -> np.ndarray:
        """All control unknowns at one potential."""
        return np.array([voltage]) if self.uniform else np.full(self.m + 1, voltage)

    def unknowns(self, q: np.ndarray, V: float) -> np.ndarray:
        """All control unknowns of particle potentials q and cell voltage V."""
        return self.initial_unknowns(V) if self.uniform else np.concatenate([q, [V]])

    def free(self, u: np.ndarray, V_hold: float | None) -> np.ndarray:
        """The unknowns of a solve (a copy): those of ``u`` that are not held."""
        if V_hold is None:
            return u.copy()
        return np.zeros(0) if self.uniform else u[: self.m].copy()

    def split(self, w: np.ndarray, V_hold: float | None) -> tuple[np.ndarray, float]:
        """(particle potentials q, cell voltage V) of the free unknowns w."""
        if self.uniform:
            V = float(w[0]) if V_hold is None else V_hold
            return np.array([V]), V
        return w[: self.m], (float(w[self.m]) if V_hold is None else V_hold)

    def set_potentials(self, q: np.ndarray) -> None:
        """phi_s = q_k in the particles of group k."""
        fl = self.fields
        cells = fl.am_cells
        fl.phi_s.x.array[fl.cell_dof[cells]] = q[self._group[cells]]

    # ------------------------------------------------------------------ currents
    def group_sum(self, form) -> np.ndarray:
        """Sum per particle group of a DG0-tested vector form (the same array on every rank)."""
        vec = fem.assemble_vector(form)
        vec.scatter_reverse(la.InsertMode.add)
        cells = self._am_owned
        local = np.bincount(self._group[cells], weights=vec.array[self.fields.cell_dof[cells]], minlength=self.m)
        return self.comm.allreduce(local, op=MPI.SUM)

    def currents(self) -> np.ndarray:
        """Current delivered by each group (A; > 0 on discharge), from the present fields."""
        return self.group_sum(self._f_cur)

    def current_change(self, dU) -> np.ndarray:
        """dI/dU dU per group, for a change dU of the fields (a blocked vector)."""
        import dolfinx.fem.petsc as fpetsc

        fpetsc.assign(dU, [self._zx, self._zp])
        return self.group_sum(self._f_dcur_dU)

    def particle_lithium(self) -> np.ndarray:
        """int c_max x over each group (mol)."""
        return self.group_sum(self._f_lithium_cells)

    def update_interface_current(self) -> None:
        """Fill ``interface_current`` (A/um^2): the mean i_n over the surface facets of each
        particle cell that has some, zero elsewhere."""
        num = fem.assemble_vector(self._f_i_cells)
        den = fem.assemble_vector(self._f_area)
        for vec in (num, den):
            vec.scatter_reverse(la.InsertMode.add)
            vec.scatter_forward()
        has = den.array > 0
        self.interface_current.x.array[:] = np.where(has, num.array / np.where(has, den.array, 1.0), 0.0)

    def sensitivities(self) -> tuple[np.ndarray, list]:
        """G = dI/dq (m x m) and the field sensitivities dU/dq_j (blocked vectors: destroy
        them after use), with the field Jacobian that the field solver's KSP holds."""
        fl = self.fields
        G = np.zeros((self.m, self.m))
        Z = []
        for j in range(self.m):
            self._dir.x.array[:] = 0.0
            cells = fl.am_cells[self._group[fl.am_cells] == j]
            self._dir.x.array[fl.cell_dof[cells]] = 1.0
            z = fl.solver.sensitivity(self._f_dF_dq)
            self.sensitivity_solves += 1
            G[:, j] = self.current_change(z) + self.group_sum(self._f_dcur_dq)
            Z.append(z)
        self._dir.x.array[:] = 0.0
        return G, Z

    # ------------------------------------------------------------------ control equations
    def residual(self, q: np.ndarray, V: float, I: np.ndarray, I_app: float, hold: bool) -> np.ndarray:
        """Residual of the control equations: currents in A, Ohm's law of the contacts in V."""
        if self.uniform:
            return np.zeros(0) if hold else np.array([I.sum() - I_app])
        r = np.where(self.isolated, I, q - V - self.resistance @ I)
        return r if hold else np.concatenate([r, [I.sum() - I_app]])

    def _current_rows(self, hold: bool) -> np.ndarray:
        """Which residual rows are currents (the others are voltages)."""
        if self.uniform:
            return np.ones(0 if hold else 1, dtype=bool)
        return self.isolated.copy() if hold else np.concatenate([self.isolated, [True]])

    def converged(self, r: np.ndarray, I_app: float, hold: bool) -> bool:
        """The control residuals hold: currents to 1e-10 of max(|I_app|, 1C) (A), Ohm's
        law of the contacts to 1e-9 V."""
        cur = self._current_rows(hold)
        return bool(np.all(np.abs(r[cur]) <= 1e-10 * max(abs(I_app), self.fields.one_c))
                    and np.all(np.abs(r[~cur]) <= 1e-9))

    def jacobian(self, G: np.ndarray, hold: bool) -> np.ndarray:
        """d(residual)/d(free unknowns), from G = dI_k/dq_j."""
        if self.uniform:
            return G.copy()
        m = self.m
        rows = np.where(self.isolated[:, None], G, np.eye(m) - self.resistance @ G)
        if hold:
            return rows
        Jc = np.zeros((m + 1, m + 1))
        Jc[:m, :m] = rows
        Jc[:m, m] = np.where(self.isolated, 0.0, -1.0)
        Jc[m, :m] = G.sum(axis=0)
        return Jc
