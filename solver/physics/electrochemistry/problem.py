"""Electrochemistry of a composite cathode cycled against a lithium-metal electrode.

Unknowns and equations (docs/electrochemistry.md; internal units um, s, A, V, mol; in 2D
every extensive quantity is per um of thickness):

* x, the lithium fraction of the particles (P1): lithium diffusion (:mod:`solver.physics.diffusion`)
  with the molar influx N = -i_n / F through the particle surfaces;
* phi_e, the ionic potential (P1) of every non-particle cell (electrolyte, separator,
  collector layer, coating): div(kappa_eff grad phi_e) = 0, a single-ion conductor,
  kappa_eff = kappa ((1 - d)^p + k_res) with the phase-field damage d;
* Butler-Volmer kinetics on every particle surface (facet tags 1000 + i),

      i_n = i0(x) [exp(alpha F eta / RT) - exp(-(1 - alpha) F eta / RT)],
      eta = phi_s - phi_e - U(x),   i0 = k0 sqrt(x (1 - x))  (or a constant i0),

  with i_n > 0 anodic: lithium leaves the particle (charge); on discharge i_n < 0 and the
  cathode is lithiated;
* the lithium-metal electrode on the x = 0 side ('left') is the potential reference:
  phi_e = 0 there (fast kinetics, default) or its own Butler-Volmer law with eta = -phi_e;
* phi_s, the electronic potential of the particles: the cell voltage V in every particle
  (default), or one value per particle connected to the collector through a contact
  resistance and, optionally, an electronic network across the thickness,
  phi_k = V + sum_j R_kj I_j (isolated particles: I_k = 0);
* the control, per protocol segment: a constant cell current I (discharge I > 0,
  -int_Gamma i_n ds = I), or a held voltage (potentiostatic).

Solution of a time step (implicit Euler): the fields (x, phi_e) form one blocked Newton
problem (PETSc SNES through ``dolfinx.fem.petsc.NonlinearProblem``, LU by MUMPS) at given
particle potentials; the few global unknowns (V, or the particle potentials and V) obey a
small algebraic control system (total current = I, Ohm's law of the contacts). The
sensitivity of the fields to a potential, dU/dq = -J^-1 dF/dq, one more solve with the
factorised field Jacobian per unknown, gives the Schur complement of the bordered
(fields + potentials) system, used two ways:

* fast path (:meth:`ElectrochemistryProblem._coupled_newton`): Newton's method on fields
  and potentials together, one factorisation per iteration; it hands over as soon as it
  leaves the easy regime (large potential updates, a cut-off, no quick convergence);
* robust path: an outer Newton iteration on the control system whose every iterate has
  converged fields (the SNES solve), with a bracket on V (uniform galvanostatic) so that
  it never loses the solution near a cut-off.

Why not a monolithic system with a real-valued space: the field solve stays a standard
DOLFINx problem (no extra dependency), and a potentiostatic hold is the same solve without
outer unknowns. Both paths converge quadratically, to the same tolerances.

The interface for a coupled time loop (:class:`ElectrochemistryProblem`)::

    ec = ElectrochemistryProblem(domain, cell_tags, facet_tags, case_internal,
                                 damage=d, hydrostatic_stress=sigma_h)
    ec.x, ec.phi_e, ec.phi_s           # P1 lithium fraction, P1 ionic potential, DG0 particle potential
    while not ec.done:
        ec.save_state()
        res = ec.step(dt)              # one implicit Euler step; res.dt may be shorter than dt:
                                       # a cut-off or the end of a segment is never stepped over
        if not res.converged: ec.restore_state(); dt /= 2; continue
        ...                            # mechanics with ec.x; if rejected: ec.restore_state()
    ec.state                           # time, voltage, current, soc, charge, total lithium, ...
    ec.effective_conductivity()        # homogenised ionic conductivity of the damaged electrolyte
    ec.lithiation_profile(bins)        # mean x against depth

``state``, ``measures()``, ``segment_log``, ``done`` and the scalar attributes are the same
on every rank and need no communication; the methods that integrate the present fields
(``total_lithium()``, ``effective_conductivity()``, ``lithiation_profile()``, ...) are
collective: call them on every rank.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import ufl
from dolfinx import fem, la
from mpi4py import MPI
from petsc4py import PETSc

from meshes import tags as mtags
from solver.physics import diffusion as dif
from solver.physics.constants import FARADAY, R_GAS
from meshes.tags import phase_of_tags
from solver.physics.electrochemistry.ocv import get_ocv
from solver.config.units import GPA_UM3_TO_J, is_internal

#: ids of the one-sided facet measure: the particle surfaces, the lithium-metal side
SURFACE, ANODE = 1, 2
#: the exponents of the Butler-Volmer terms are capped here (exp(60) ~ 1e26): only absurd
#: Newton iterates reach it, it keeps them finite
EXP_CAP = 60.0
#: x is clipped to [X_EPS, 1 - X_EPS] in i0 = k0 sqrt(x (1 - x))
X_EPS = 1e-4
#: a galvanostatic solve does not look for the voltage further than this past the cut-off (V)
CUTOFF_MARGIN = 1.0
#: largest change of a potential in one update of the control iteration (V)
MAX_POTENTIAL_UPDATE = 0.1
#: iterations of the coupled Newton method (the fast path of a control step) before it
#: hands over to the nested iteration
FAST_NEWTON_ITERATIONS = 8
#: a cut-off is reached when the voltage is this close to it (V)
CUTOFF_TOLERANCE = 1e-3
#: ionic phases: the cells that carry phi_e (each may have its own conductivity)
IONIC_PHASES = ("electrolyte", "separator", "collector_layer", "coating")

DEFAULT_PETSC_ELECTROCHEMISTRY = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "bt",
    "snes_rtol": 1e-10,
    "snes_stol": 0.0,
    "snes_max_it": 30,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


# ----------------------------------------------------------------------------- results and protocol
@dataclass
class CellState:
    """Scalar state of the cell (internal units: s, V, A, mol, C; in 2D per um of thickness)."""

    time: float = 0.0
    voltage: float = 0.0  # cathode against the lithium-metal electrode
    current: float = 0.0  # cell current, > 0 on discharge (= -int i_n over the particle surfaces)
    c_rate: float = 0.0  # current / (1C current), signed
    x_mean: float = 0.0  # volume mean lithium fraction of the particles
    soc: float = 0.0  # 1 - capacity-weighted mean lithium fraction
    total_lithium: float = 0.0  # int c_max x over the particles
    charge: float = 0.0  # int I dt since the start (discharge positive)
    segment: int = 0  # protocol segment of the last step, counted over all cycles (0, 1, ...)
    cycle: int = 0
    mode: str = ""
    segment_time: float = 0.0
    segment_charge: float = 0.0  # int I dt in that segment

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ECStepResult:
    converged: bool
    dt: float = 0.0  # the step taken (s)
    newton_iterations: int = 0  # field Newton iterations of all solves of the step
    outer_iterations: int = 0  # updates of the control potentials
    solves: int = 0  # field solves (cut-off landing included)
    event: str = ""  # end of a segment: "cutoff", "duration", "current" (hold), "limit"; "" otherwise
    reason: str = ""
    beyond_cutoff: bool = False  # the current needs a voltage more than CUTOFF_MARGIN past the cut-off
    coupled: bool = False  # solved by the coupled Newton method (the fast path)


@dataclass(frozen=True)
class Segment:
    """One protocol segment with its current in A (discharge positive) and voltages in V."""

    mode: str  # discharge, charge, rest, hold
    current: float = 0.0  # discharge, charge (rest: 0)
    voltage: float | None = None  # hold
    cutoff: float | None = None  # discharge, charge
    duration: float | None = None
    until_current: float | None = None  # hold: ends when |I| falls below
    index: int = 0  # position in the protocol
    cycle: int = 0

    @property
    def potentiostatic(self) -> bool:
        return self.mode == "hold"

    def beyond_cutoff(self, voltage: float) -> bool:
        if self.cutoff is None:
            return False
        return voltage <= self.cutoff if self.mode == "discharge" else voltage >= self.cutoff

    def search_limit(self) -> float | None:
        """The voltage a galvanostatic solve does not pass (CUTOFF_MARGIN past the cut-off)."""
        if self.cutoff is None:
            return None
        return self.cutoff - CUTOFF_MARGIN if self.mode == "discharge" else self.cutoff + CUTOFF_MARGIN


def protocol_segments(loading, one_c: float, collector_area: float) -> list[Segment]:
    """The segments of one cycle of ``loading.protocol`` (internal units) with currents in A:
    a C-rate times the 1C current, or a current density times the collector-side area."""
    out = []
    for k, s in enumerate(loading.protocol):
        if s.mode in ("discharge", "charge"):
            if s.current_density is not None:
                amp = s.current_density * collector_area
            elif s.c_rate is not None:
                amp = s.c_rate * one_c
            elif loading.current_density is not None:
                amp = loading.current_density * collector_area
            else:
                amp = loading.c_rate * one_c
            if not amp > 0:
                raise ValueError(f"loading.protocol[{k}]: the current is zero (no collector-side area or no capacity)")
            cut = s.cutoff if s.cutoff is not None else (loading.v_min if s.mode == "discharge" else loading.v_max)
            out.append(Segment(s.mode, amp if s.mode == "discharge" else -amp, None, cut, s.duration, None, k))
        elif s.mode == "rest":
            out.append(Segment("rest", 0.0, None, None, s.duration, None, k))
        else:
            until = s.until_c_rate * one_c if s.until_c_rate is not None else None
            out.append(Segment("hold", 0.0, s.voltage, None, s.duration, until, k))
    return out


# ----------------------------------------------------------------------------- the problem
class ElectrochemistryProblem:
    """Lithium transport, ionic conduction and interface kinetics of a composite cathode.

    Args:
        domain, cell_tags, facet_tags: the mesh with the tags of meshes/tags.py.
        case: the case in internal units (``solver.config.units.to_internal``) with a loading of
            type ``galvanostatic``; ``materials.*.expansion`` gives the partial molar volume
            of the stress-assisted flux.
        damage: phase-field damage (P1, 0..1) that lowers the ionic conductivity; default a
            zero field (``self.damage``) that the caller may fill.
        hydrostatic_stress: hydrostatic stress in GPa (a function of any space, or a UFL
            expression), used when ``loading.stress_assisted`` is on; projected onto P1
            over the particles at every step.

    Attributes: ``x``, ``phi_e`` (P1), ``phi_s``, ``interface_current`` (DG0), ``damage``;
    ``voltage``, ``current``, ``time``, ``charge``; ``one_c`` (A), ``capacity`` (C);
    ``groups`` (particle indices of the potentials, ``[None]`` for the uniform model);
    ``segment_log`` (one dict per finished segment: mode, event, duration, charge,
    capacity, voltage, x_mean, time).
    """

    def __init__(self, domain, cell_tags, facet_tags, case, damage: fem.Function | None = None,
                 hydrostatic_stress=None, prefix: str = "ssbfrac_electrochem_"):
        if not is_internal(case):
            raise ValueError("ElectrochemistryProblem needs the case in internal units (solver.config.units.to_internal)")
        ld = case.loading
        if getattr(ld, "type", None) != "galvanostatic":
            raise ValueError(f"loading.type is {getattr(ld, 'type', None)!r}; the electrochemistry needs 'galvanostatic'")
        self.case, self.loading = case, ld
        self.domain, self.comm = domain, domain.comm
        self._cell_tags, self._facet_tags = cell_tags, facet_tags
        self.tdim = domain.topology.dim
        self.n_owned_cells = domain.topology.index_map(self.tdim).size_local
        self.f = FARADAY / (R_GAS * ld.temperature)  # 1/V
        self.c_ref = ld.active.c_max
        self._scale = FARADAY * self.c_ref  # the residuals are written per F c_ref

        self._cell_fields(cell_tags)
        self._unknowns(damage)
        self._measures(cell_tags, facet_tags)
        self._forms(hydrostatic_stress)
        self._particle_groups(cell_tags)
        self._scalars(facet_tags)
        self.resistance = self._electronic_resistance()
        self._solver(prefix)

        # protocol and state
        self.segments_per_cycle = protocol_segments(ld, self.one_c, self.collector_area)
        self.n_segments = len(self.segments_per_cycle) * ld.cycles
        self._seg = 0
        self._done = False
        self.voltage = float(self.materials[0][3](ld.initial_lithiation))
        self.current = 0.0
        self.u = self._initial_unknowns(self.voltage)
        self._set_potentials(np.full(self.m, self.voltage))
        self.time = 0.0
        self.charge = 0.0
        self._seg_time = 0.0
        self._seg_charge = 0.0
        self._seg_steps = 0
        self._last = None  # (unknowns, dt) at the start of the last accepted step (predictor)
        self._jac = None  # control Jacobian of the last galvanostatic solve (predictor)
        self.segment_log: list[dict] = []
        self._report = self._segment_report()
        self._update_sums()
        self._saved = None
        self._homogenisation = None
        self._stress_projection = None
        self.sensitivity_solves = 0

    # ------------------------------------------------------------------ set-up
    def _cell_fields(self, cell_tags) -> None:
        """Phases, material indicators, c_max and kappa (DG0)."""
        ld, comm = self.loading, self.comm
        phases = phase_of_tags(cell_tags.values)
        Q = fem.functionspace(self.domain, ("DG", 0))
        self.Q = Q
        self._cell_dof = Q.dofmap.list[:, 0]
        self.am_cells = dif.active_cells(cell_tags)
        self._am_owned = self.am_cells[self.am_cells < self.n_owned_cells]
        self._ionic_cells = cell_tags.indices[np.isin(phases, IONIC_PHASES)].astype(np.int32)
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
            chi.x.array[self._cell_dof[cells]] = 1.0
            self.cmax.x.array[self._cell_dof[cells]] = spec.c_max
            self.materials.append((name, chi, spec, get_ocv(spec.ocv if spec.ocv is not None else spec.ocv_table)))
        if not self.materials:
            raise ValueError("the mesh has no active-material cells (cell tags >= 1000)")
        self.chi_am = sum(chi for _, chi, _, _ in self.materials)
        for phase in IONIC_PHASES:
            cells = cell_tags.indices[phases == phase]
            self.kappa.x.array[self._cell_dof[cells]] = (getattr(ld, phase, None) or ld.electrolyte).kappa
        self.kappa_ref = ld.electrolyte.kappa

    def _unknowns(self, damage) -> None:
        """x, phi_e (two distinct P1 spaces: one block each), phi_s and outputs (DG0)."""
        Vx = fem.functionspace(self.domain, ("Lagrange", 1))
        Vp = fem.functionspace(self.domain, ("Lagrange", 1))
        self.Vx, self.Vp = Vx, Vp
        self.x = fem.Function(Vx, name="lithiation")
        self.x_old = fem.Function(Vx)
        self.phi_e = fem.Function(Vp, name="ionic_potential")
        self.phi_s = fem.Function(self.Q, name="particle_potential")
        self.interface_current = fem.Function(self.Q, name="interface_current")
        if damage is None:
            damage = fem.Function(fem.functionspace(self.domain, ("Lagrange", 1)), name="damage")
        self.damage = damage
        self.dt = fem.Constant(self.domain, 1.0)
        # DOFs no particle cell touches carry no transport equation (x = 0 there), DOFs no
        # ionic cell touches no conduction equation (phi_e = 0 there)
        self._x_out = dif.dofs_outside(Vx, self.am_cells)
        self._phi_out = dif.dofs_outside(Vp, self._ionic_cells)
        self.x.x.array[:] = self.loading.initial_lithiation
        self.x.x.array[self._x_out] = 0.0
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
                                                   self._ionic_cells)
        self.ds = dif.facet_measure(domain, entities, 4)
        left = facet_tags.indices[facet_tags.values == mtags.SIDES["left"]]
        self._phi_left = np.setdiff1d(fem.locate_dofs_topological(self.Vp, self.tdim - 1, left), self._phi_out)
        if comm.allreduce(len(self._phi_left), op=MPI.SUM) == 0:
            raise ValueError("no electrolyte facet is tagged 'left' (1): the lithium-metal side is missing")

    def _forms(self, hydrostatic_stress) -> None:
        """Kinetics, conductivity and the residuals of the two field equations."""
        ld, S = self.loading, self._scale
        x, phi, phi_s = self.x, self.phi_e, self.phi_s
        xs = dif.clamp01(x, X_EPS)
        U = i0 = alpha = 0
        for _, chi, spec, ocv in self.materials:
            kin = spec.kinetics
            U += chi * ocv(x, ufl)
            i0 += chi * (kin.i0 if kin.i0 is not None else kin.k0 * ufl.sqrt(xs * (1.0 - xs)))
            alpha += chi * kin.alpha
        fb = ld.damage_feedback
        blocked = ((1.0 - self.damage) ** fb.exponent if fb.exponent > 0 else 1.0) + fb.residual
        eta = phi_s - phi - U
        i_n = i0 * (ufl.exp(ufl.min_value(alpha * self.f * eta, EXP_CAP))
                    - ufl.exp(ufl.min_value(-(1.0 - alpha) * self.f * eta, EXP_CAP)))
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
            an = ld.anode
            eta_a = -phi  # the lithium metal is at 0 V and U(Li/Li+) = 0
            i_a = an.i0 * (ufl.exp(ufl.min_value(an.alpha * self.f * eta_a, EXP_CAP))
                           - ufl.exp(ufl.min_value(-(1.0 - an.alpha) * self.f * eta_a, EXP_CAP)))
            F_p -= (i_a / S) * w * self.ds(ANODE)  # current into the electrolyte
            self._f_anode = fem.form(i_a * self.ds(ANODE))
        self._f_phi_residual = fem.form(F_p)
        self._F = [F_x, F_p]

    def _particle_groups(self, cell_tags) -> None:
        """The particle potentials: one group (uniform) or one per particle, and the forms
        that give the current of each group and its derivatives."""
        ld, comm = self.loading, self.comm
        n_local = self.n_owned_cells + self.domain.topology.index_map(self.tdim).num_ghosts
        tag = np.full(n_local, -1, dtype=np.int64)
        tag[cell_tags.indices] = cell_tags.values
        am = self.am_cells
        self._group = np.full(n_local, -1, dtype=np.int64)
        if ld.electronic.model == "per_particle":
            pid = np.where(tag >= mtags.PARTICLE_B_BASE, tag - mtags.PARTICLE_B_BASE, tag - mtags.PARTICLE_BASE)
            self.groups = sorted(set().union(*comm.allgather(set(pid[am].tolist()))))
            index = {p: k for k, p in enumerate(self.groups)}
            self._group[am] = [index[p] for p in pid[am]]
            missing = sorted(set(ld.electronic.isolated) - set(self.groups))
            if missing:
                raise ValueError(f"loading.electronic.isolated: no particles {missing} in the mesh")
        else:
            self.groups = [None]
            self._group[am] = 0
        self.m = len(self.groups)

        w0 = ufl.TestFunction(self.Q)
        self._dir = fem.Function(self.Q)  # direction of a change of phi_s (indicator of a group)
        self._zx, self._zp = fem.Function(self.Vx), fem.Function(self.Vp)  # a field sensitivity
        L_cur = -self.i_n * w0 * self.ds(SURFACE)  # per cell: current delivered through its surface facets
        self._f_cur = fem.form(L_cur)
        self._f_dcur_dU = fem.form(ufl.derivative(L_cur, self.x, self._zx) + ufl.derivative(L_cur, self.phi_e, self._zp))
        self._f_dcur_dq = fem.form(ufl.derivative(L_cur, self.phi_s, self._dir))
        self._f_dF_dq = fem.form([ufl.derivative(F, self.phi_s, self._dir) for F in self._F])
        self._f_area = fem.form(w0 * self.ds(SURFACE))
        self._f_i_cells = fem.form(self.i_n * w0 * self.ds(SURFACE))
        self._f_lithium_cells = fem.form(self.cmax * self.x * w0 * self.dx)
        self.surface_area = self._group_sum(self._f_area)  # um (2D) or um^2 per group
        self.isolated = np.array([p in set(ld.electronic.isolated) for p in self.groups], dtype=bool)
        coord = ufl.SpatialCoordinate(self.domain)[0]
        volume = self._group_sum(fem.form(w0 * self.dx))
        self.particle_depth = self._group_sum(fem.form(coord * w0 * self.dx)) / np.where(volume > 0, volume, 1.0)

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

    def _electronic_resistance(self) -> np.ndarray:
        """The resistance matrix R (Ohm; in 2D times um of thickness) of the particle
        potentials, phi = V + R I: the contact resistance of each particle (diagonal,
        ``contact_resistance`` / particle surface) plus, with an electronic ``conductivity``,
        the conducting network between the collector side (x = x_max) and each particle,
        a one-dimensional ladder across the thickness: the network carries at depth s the
        current of every particle lying deeper (x_j < s), so that
        R_kj = (x_max - max(x_k, x_j)) / (sigma A), with x_k the particle's centroid and A
        the collector-side area."""
        el = self.loading.electronic
        R = np.diag([el.contact_resistance / a if a > 0 else 0.0 for a in self.surface_area])
        if el.conductivity is not None and not self.uniform:
            depth = self.particle_depth
            x_max = float(self.bounds[1][0])
            R = R + (x_max - np.maximum.outer(depth, depth)) / (el.conductivity * self.collector_area)
        return R

    def _solver(self, prefix: str) -> None:
        from dolfinx.fem.petsc import NonlinearProblem

        from solver.numerics.petsc import set_petsc_options

        self.bcs = [fem.dirichletbc(PETSc.ScalarType(0.0), self._x_out, self.Vx),
                    fem.dirichletbc(PETSc.ScalarType(0.0), self._phi_out, self.Vp)]
        if not self.bv_anode:
            self.bcs.append(fem.dirichletbc(PETSc.ScalarType(0.0), self._phi_left, self.Vp))
        fields = (self.x, self.phi_e)
        J = [[ufl.derivative(F, u, ufl.TrialFunction(u.function_space)) for u in fields] for F in self._F]
        self.problem = NonlinearProblem(self._F, list(fields), J=J, bcs=self.bcs, kind="mpi",
                                        petsc_options_prefix=prefix)
        # residual scale: the 1C lithium rate per F c_ref; converged below 1e-10 of it (its
        # round-off floor is near 1e-12 of it)
        opts = dict(DEFAULT_PETSC_ELECTROCHEMISTRY)
        opts["snes_atol"] = 1e-10 * self.one_c / self._scale
        opts.update(self.loading.petsc_options)
        set_petsc_options(self.problem.solver, prefix, opts)

    # ------------------------------------------------------------------ protocol
    @property
    def segment(self) -> Segment:
        """The segment the next step belongs to."""
        n = len(self.segments_per_cycle)
        k = min(self._seg, self.n_segments - 1)
        s = self.segments_per_cycle[k % n]
        return Segment(s.mode, s.current, s.voltage, s.cutoff, s.duration, s.until_current, s.index, k // n)

    @property
    def segment_index(self) -> int:
        """Index of the segment the next step belongs to, counted over all cycles."""
        return self._seg

    @property
    def done(self) -> bool:
        """True once the last segment of the last cycle has ended (or a cut-off stopped the loading)."""
        return self._done

    def _segment_report(self) -> dict:
        seg = self.segment
        return {"segment": self._seg, "cycle": seg.cycle, "mode": seg.mode, "segment_time": self._seg_time,
                "segment_charge": self._seg_charge}

    def _next_segment(self, event: str) -> None:
        seg = self.segment
        self.segment_log.append({
            "segment": self._seg, "cycle": seg.cycle, "index": seg.index, "mode": seg.mode, "event": event,
            "duration": self._seg_time, "charge": self._seg_charge, "capacity": abs(self._seg_charge),
            "voltage": self.voltage, "x_mean": self._sums[1], "time": self.time,
        })
        self._seg += 1
        self._seg_time = self._seg_charge = 0.0
        self._seg_steps = 0
        if self._seg >= self.n_segments or (event == "cutoff" and self.loading.on_cutoff == "stop"):
            self._done = True

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> CellState:
        """The cell after the last step (not collective: the sums are taken at the end of
        each step). ``segment``, ``mode``, ``segment_time`` and ``segment_charge`` describe
        the segment of that step (the protocol may have moved on since: :attr:`segment`)."""
        li, xm = self._sums
        return CellState(
            time=self.time, voltage=self.voltage, current=self.current, c_rate=self.current / self.one_c,
            x_mean=xm, soc=1.0 - li * FARADAY / self.capacity, total_lithium=li, charge=self.charge,
            **self._report,
        )

    def _update_sums(self) -> None:
        """Total lithium and mean x of the present fields (collective)."""
        self._sums = (self.total_lithium(), self._x_mean())

    def _x_mean(self) -> float:
        return dif.assemble(self.comm, self._f_xvol) / self.am_volume

    def total_lithium(self) -> float:
        """int c_max x over the particles (mol; per um of thickness in 2D)."""
        return dif.assemble(self.comm, self._f_lithium)

    def _snapshot(self) -> dict:
        return {
            "x": self.x.x.array.copy(), "x_old": self.x_old.x.array.copy(), "phi": self.phi_e.x.array.copy(),
            "phi_s": self.phi_s.x.array.copy(), "u": self.u.copy(), "voltage": self.voltage,
            "current": self.current, "time": self.time, "charge": self.charge, "seg": self._seg,
            "seg_time": self._seg_time, "seg_charge": self._seg_charge, "seg_steps": self._seg_steps,
            "done": self._done, "last": self._last, "jac": None if self._jac is None else self._jac.copy(),
            "log": len(self.segment_log), "report": dict(self._report), "sums": self._sums,
        }

    def _restore(self, s: dict) -> None:
        self.x.x.array[:] = s["x"]
        self.x_old.x.array[:] = s["x_old"]
        self.phi_e.x.array[:] = s["phi"]
        self.phi_s.x.array[:] = s["phi_s"]
        self.u = s["u"].copy()
        self.voltage, self.current, self.time, self.charge = s["voltage"], s["current"], s["time"], s["charge"]
        self._seg, self._seg_time, self._seg_charge = s["seg"], s["seg_time"], s["seg_charge"]
        self._seg_steps, self._done, self._last, self._jac = s["seg_steps"], s["done"], s["last"], s["jac"]
        del self.segment_log[s["log"]:]
        self._report = dict(s["report"])
        self._sums = s["sums"]

    def checkpoint_state(self) -> dict:
        """The scalar state of the cell for a checkpoint: control unknowns (V), voltage (V),
        current (A), time (s), charge (C), protocol position, predictor data and the
        segment log. JSON types and numpy arrays, the same on every rank. The fields
        ``x``, ``x_old``, ``phi_e``, ``phi_s`` and ``damage`` are not included: store them
        as functions (:mod:`solver.runs.checkpoint`)."""
        s = self._snapshot()
        for key in ("x", "x_old", "phi", "phi_s", "log"):
            del s[key]
        s["last"] = None if s["last"] is None else {"u": s["last"][0], "dt": s["last"][1]}
        s["sums"] = list(s["sums"])
        s["segment_log"] = [dict(entry) for entry in self.segment_log]
        s["sensitivity_solves"] = self.sensitivity_solves
        return s

    def load_checkpoint_state(self, state: dict) -> None:
        """Restore the scalar state written by :meth:`checkpoint_state`; the fields must
        have been read back already (they are left as they are)."""
        s = dict(state)
        s.update(x=self.x.x.array.copy(), x_old=self.x_old.x.array.copy(), phi=self.phi_e.x.array.copy(),
                 phi_s=self.phi_s.x.array.copy())
        s["u"] = np.asarray(s["u"], dtype=float)
        last = s["last"]
        s["last"] = None if last is None else (np.asarray(last["u"], dtype=float), float(last["dt"]))
        s["jac"] = None if s["jac"] is None else np.asarray(s["jac"], dtype=float)
        s["sums"] = tuple(float(v) for v in s["sums"])
        s["seg"], s["seg_steps"], s["done"] = int(s["seg"]), int(s["seg_steps"]), bool(s["done"])
        self.segment_log[:] = [dict(entry) for entry in state["segment_log"]]
        s["log"] = len(self.segment_log)
        self._restore(s)
        self.sensitivity_solves = int(state["sensitivity_solves"])
        self._saved = None

    def save_state(self) -> None:
        """Remember the present state: fields, potentials, time and protocol position."""
        self._saved = self._snapshot()

    def restore_state(self) -> None:
        """Go back to the state of the last :meth:`save_state` (a rejected step)."""
        if self._saved is None:
            raise RuntimeError("restore_state() without save_state()")
        self._restore(self._saved)

    # ------------------------------------------------------------------ control unknowns
    # ``self.u`` is [V] (uniform model) or [phi_1, ..., phi_m, V] (one potential per
    # particle). The unknowns of a solve are the part that is not held:
    #   uniform, galvanostatic: [V]           uniform, hold: none
    #   per particle, galvanostatic: u        per particle, hold: [phi_1, ..., phi_m]
    @property
    def uniform(self) -> bool:
        return self.groups == [None]

    def _initial_unknowns(self, voltage: float) -> np.ndarray:
        return np.array([voltage]) if self.uniform else np.full(self.m + 1, voltage)

    def _free(self, V_hold: float | None) -> np.ndarray:
        if V_hold is None:
            return self.u.copy()
        return np.zeros(0) if self.uniform else self.u[: self.m].copy()

    def _split(self, w: np.ndarray, V_hold: float | None) -> tuple[np.ndarray, float]:
        """(particle potentials q, cell voltage V) of the free unknowns w."""
        if self.uniform:
            V = float(w[0]) if V_hold is None else V_hold
            return np.array([V]), V
        return w[: self.m], (float(w[self.m]) if V_hold is None else V_hold)

    def _set_potentials(self, q: np.ndarray) -> None:
        cells = self.am_cells
        self.phi_s.x.array[self._cell_dof[cells]] = q[self._group[cells]]

    def _group_sum(self, form) -> np.ndarray:
        """Sum per particle group of a DG0-tested vector form (the same array on every rank)."""
        vec = fem.assemble_vector(form)
        vec.scatter_reverse(la.InsertMode.add)
        cells = self._am_owned
        local = np.bincount(self._group[cells], weights=vec.array[self._cell_dof[cells]], minlength=self.m)
        return self.comm.allreduce(local, op=MPI.SUM)

    def _residual(self, q: np.ndarray, V: float, I: np.ndarray, I_app: float, hold: bool) -> np.ndarray:
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

    def _control_jacobian(self, G: np.ndarray, hold: bool) -> np.ndarray:
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

    # ------------------------------------------------------------------ field solves
    def _solve_fields(self) -> tuple[bool, int]:
        """Newton on (x, phi_e) at the present particle potentials, from the present fields."""
        self.problem.solve()
        snes = self.problem.solver
        self.x.x.scatter_forward()
        self.phi_e.x.scatter_forward()
        finite = np.all(np.isfinite(self.x.x.array)) and np.all(np.isfinite(self.phi_e.x.array))
        ok = snes.getConvergedReason() > 0 and bool(self.comm.allreduce(int(finite), op=MPI.MIN))
        return ok, snes.getIterationNumber()

    def _factorise(self) -> None:
        """Assemble the field Jacobian at the fields in ``problem.x`` (the present ones in
        both callers: after a field solve, or after the residual evaluation of the coupled
        Newton method) and hand it to the solver's KSP (factorised at its next solve)."""
        self.problem.solver.computeJacobian(self.problem.x, self.problem.A)
        self.problem.solver.getKSP().setOperators(self.problem.A)

    def _sensitivities(self) -> tuple[np.ndarray, list]:
        """G = dI/dq (m x m) and the field sensitivities dU/dq_j (blocked vectors):
        J dU/dq_j = -dF/dq_j, with the Jacobian J that the solver's KSP holds."""
        import dolfinx.fem.petsc as fpetsc

        ksp = self.problem.solver.getKSP()
        G = np.zeros((self.m, self.m))
        Z = []
        for j in range(self.m):
            self._dir.x.array[:] = 0.0
            cells = self.am_cells[self._group[self.am_cells] == j]
            self._dir.x.array[self._cell_dof[cells]] = 1.0
            b = fpetsc.assemble_vector(self._f_dF_dq, kind="mpi")
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            self._zero_constrained(b)
            b.scale(-1.0)
            z = b.duplicate()
            z.setAttr("_blocks", b.getAttr("_blocks"))
            ksp.solve(b, z)
            self.sensitivity_solves += 1
            z.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            fpetsc.assign(z, [self._zx, self._zp])
            G[:, j] = self._group_sum(self._f_dcur_dU) + self._group_sum(self._f_dcur_dq)
            Z.append(z)
            b.destroy()
        self._dir.x.array[:] = 0.0
        return G, Z

    def _zero_constrained(self, b) -> None:
        """Zero the entries of the Dirichlet DOFs in a blocked (x, phi_e) vector."""
        (o0, o1, _), _ = b.getAttr("_blocks")
        arr = b.array_w
        fixed_phi = [self._phi_out] + ([] if self.bv_anode else [self._phi_left])
        for dofs, offset, V in [(self._x_out, o0, self.Vx)] + [(d, o1, self.Vp) for d in fixed_phi]:
            own = dofs[dofs < V.dofmap.index_map.size_local]
            arr[offset + own] = 0.0

    def _fields_plus(self, Z: list, dq: np.ndarray, dU=None) -> None:
        """Move the fields along their sensitivities: U += dU + sum_j dq_j dU/dq_j (a
        first-order guess for the next field solve; dU a field Newton step, optional)."""
        import dolfinx.fem.petsc as fpetsc

        vec = self.problem.x.duplicate()
        vec.setAttr("_blocks", self.problem.x.getAttr("_blocks"))
        fpetsc.assign([self.x, self.phi_e], vec)
        if dU is not None:
            vec.axpy(1.0, dU)
        for z, a in zip(Z, dq):
            if a != 0.0:
                vec.axpy(a, z)
        vec.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        fpetsc.assign(vec, [self.x, self.phi_e])
        vec.destroy()

    def _control_converged(self, r: np.ndarray, I_app: float, hold: bool) -> bool:
        """The control residuals hold: currents to 1e-10 of max(|I_app|, 1C) (A), Ohm's
        law of the contacts to 1e-9 V."""
        cur = self._current_rows(hold)
        return bool(np.all(np.abs(r[cur]) <= 1e-10 * max(abs(I_app), self.one_c)) and np.all(np.abs(r[~cur]) <= 1e-9))

    def _accept_control(self, q: np.ndarray, V: float, I: np.ndarray) -> None:
        """Keep the converged control unknowns, cell current and voltage."""
        self.u = self._initial_unknowns(V) if self.uniform else np.concatenate([q, [V]])
        self.current = float(I.sum())
        self.voltage = V

    def _coupled_newton(self, I_app: float, V_hold: float | None, limit: float | None) -> ECStepResult:
        """The fast path of a control step: Newton's method on the fields and the free
        control unknowns together, one factorisation per iteration (bordering: the field
        step dU = -J^-1 F and the sensitivities J^-1 dF/dq share it, and the control update
        solves the linearised control equations along them). It gives up, with the fields
        as they were, as soon as it leaves the easy regime: a potential update larger than
        MAX_POTENTIAL_UPDATE, a voltage past ``limit``, a non-finite iterate, a residual
        that stops falling fast, or no convergence in FAST_NEWTON_ITERATIONS; the caller
        then runs the nested iteration.
        The work done is counted in the result either way. Converged means the same as for
        the nested iteration: the field residual within the SNES tolerances of the field
        solver (absolute, or relative to the first residual) and
        :meth:`_control_converged`."""
        import dolfinx.fem.petsc as fpetsc

        hold = V_hold is not None
        res = ECStepResult(False)
        snes = self.problem.solver
        ksp = snes.getKSP()
        X, F = self.problem.x, self.problem.b
        rtol, atol, _, _ = snes.getTolerances()
        w = self._free(V_hold)
        kV = 0 if self.uniform else self.m
        down = I_app > 0
        if limit is not None and not hold and (w[kV] <= limit if down else w[kV] >= limit):
            res.reason = "the first guess of the voltage is at the search limit"
            return res
        start = (self.x.x.array.copy(), self.phi_e.x.array.copy())
        norm0 = last = None
        for it in range(FAST_NEWTON_ITERATIONS):
            q, V = self._split(w, V_hold)
            self._set_potentials(q)
            fpetsc.assign([self.x, self.phi_e], X)
            snes.computeFunction(X, F)
            fnorm = F.norm()
            I = self._group_sum(self._f_cur)
            r = self._residual(q, V, I, I_app, hold)
            if not (math.isfinite(fnorm) and np.all(np.isfinite(r))):
                break
            if norm0 is None:
                norm0 = fnorm
            elif it >= 2 and fnorm > 0.5 * last:
                break  # stagnating: quadratic convergence would be well under way by now
            last = fnorm
            if fnorm <= max(atol, rtol * norm0) and self._control_converged(r, I_app, hold):
                self._accept_control(q, V, I)
                res.converged = res.coupled = True
                res.outer_iterations = it
                return res
            self._factorise()
            dU = F.duplicate()
            dU.setAttr("_blocks", F.getAttr("_blocks"))
            F.scale(-1.0)
            ksp.solve(F, dU)
            res.newton_iterations += 1
            res.solves = 1
            dU.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            Z = []
            try:
                dw = np.zeros(0)
                if w.size:
                    # the control residual after the field step, then the control update
                    fpetsc.assign(dU, [self._zx, self._zp])
                    r_field = self._residual(q, V, I + self._group_sum(self._f_dcur_dU), I_app, hold)
                    G, Z = self._sensitivities()
                    Jc = self._control_jacobian(G, hold)
                    dw = -np.linalg.solve(Jc, r_field)
                    if not hold:
                        self._jac = Jc
                if w.size and (not np.all(np.isfinite(dw)) or np.max(np.abs(dw)) > MAX_POTENTIAL_UPDATE):
                    break
                if limit is not None and not hold and (w[kV] + dw[kV] < limit if down else w[kV] + dw[kV] > limit):
                    break
                self._fields_plus(Z, dw[: self.m] if w.size else np.zeros(0), dU)
                w = w + dw
            except np.linalg.LinAlgError:
                break
            finally:
                dU.destroy()
                for z in Z:
                    z.destroy()
        self.x.x.array[:], self.phi_e.x.array[:] = start
        res.reason = "the coupled Newton iteration left its easy regime"
        return res

    def _control_step(self, I_app: float, V_hold: float | None, limit: float | None = None) -> ECStepResult:
        """Solve the fields and the free control unknowns at the present dt (from x_old).

        Newton on the control equations with the exact Jacobian from the field
        sensitivities, updates of at most MAX_POTENTIAL_UPDATE; with one unknown (uniform,
        galvanostatic) the iterate stays inside the bracket of voltages found so far. The
        cell voltage is not searched past ``limit``: a current that would need it is
        reported as ``beyond_cutoff``. A field solve that fails halves the last update."""
        res = self._coupled_newton(I_app, V_hold, limit)
        if res.converged:
            return res
        hold = V_hold is not None
        res.reason = ""
        w = self._free(V_hold)
        kV = 0 if self.uniform else self.m  # position of V in w (galvanostatic)
        down = I_app > 0  # discharge: the voltage falls toward the limit
        if limit is not None and not hold and (w[kV] < limit if down else w[kV] > limit):
            w[kV] = limit
        good = None  # (w, x, phi_e) of the last converged field solve
        step = None
        bracket = [-math.inf, math.inf]  # uniform galvanostatic: V known too low / too high
        for it in range(40):
            q, V = self._split(w, V_hold)
            self._set_potentials(q)
            ok, its = self._solve_fields()
            res.newton_iterations += its
            res.solves += 1
            if not ok:
                if good is None:
                    res.reason = "the field Newton solve did not converge"
                    return res
                self.x.x.array[:], self.phi_e.x.array[:] = good[1], good[2]
                step = 0.5 * step
                if np.max(np.abs(step)) < 1e-7:
                    res.reason = "the field solve fails for every change of the potentials"
                    return res
                w = good[0] + step
                continue
            I = self._group_sum(self._f_cur)
            r = self._residual(q, V, I, I_app, hold)
            good = (w.copy(), self.x.x.array.copy(), self.phi_e.x.array.copy())
            if self._control_converged(r, I_app, hold):
                self._accept_control(q, V, I)
                res.converged = True
                res.outer_iterations = it
                return res
            if self.uniform and not hold:
                if r[0] > 0:
                    bracket[0] = max(bracket[0], w[0])  # too much current: V must rise
                else:
                    bracket[1] = min(bracket[1], w[0])
            if self.problem.solver.getIterationNumber() == 0:
                self._factorise()  # else the last Newton step's factorisation is close enough
            G, Z = self._sensitivities()
            Jc = self._control_jacobian(G, hold)
            if not hold:
                self._jac = Jc
            try:
                dw = -np.linalg.solve(Jc, r)
            except np.linalg.LinAlgError:
                res.reason = "singular control Jacobian (no current responds to the potentials)"
                return res
            big = np.max(np.abs(dw))
            if big > MAX_POTENTIAL_UPDATE:
                dw *= MAX_POTENTIAL_UPDATE / big
            if limit is not None and not hold and (w[kV] + dw[kV] < limit if down else w[kV] + dw[kV] > limit):
                if abs(w[kV] - limit) < 1e-12:
                    res.beyond_cutoff = True
                    res.reason = f"the current needs a cell voltage beyond {limit:.3f} V"
                    for z in Z:
                        z.destroy()
                    return res
                dw *= (limit - w[kV]) / dw[kV]
            if self.uniform and not hold and not bracket[0] < w[0] + dw[0] < bracket[1]:
                if math.isfinite(bracket[0]) and math.isfinite(bracket[1]):
                    dw[0] = 0.5 * (bracket[0] + bracket[1]) - w[0]
            step = dw
            self._fields_plus(Z, dw[: self.m])
            for z in Z:
                z.destroy()
            w = w + dw
        res.reason = "the control iteration did not converge in 40 updates"
        return res

    # ------------------------------------------------------------------ stepping
    def _predict(self, seg: Segment, dt: float) -> None:
        """A first guess of the control unknowns for the next step: linear extrapolation in
        time within a segment; at a new current, a move along the last control Jacobian."""
        if seg.potentiostatic:
            return
        delta = None
        if self._last is not None and self._seg_steps > 0 and self._last[1] > 0:
            u_prev, dt_prev = self._last
            delta = (self.u - u_prev) * min(dt / dt_prev, 2.0)
        elif self._jac is not None and self._jac.shape[0] == self.u.size:
            rhs = np.zeros(self.u.size)
            rhs[-1] = seg.current - self.current
            try:
                delta = np.linalg.solve(self._jac, rhs)
            except np.linalg.LinAlgError:
                delta = None
        if delta is None or not np.all(np.isfinite(delta)):
            return
        big = np.max(np.abs(delta))
        if big > 3 * MAX_POTENTIAL_UPDATE:
            delta *= 3 * MAX_POTENTIAL_UPDATE / big
        self.u = self.u + delta

    def _advance(self, dt: float) -> ECStepResult:
        """One implicit Euler step of size dt from the last committed state (not committed)."""
        seg = self.segment
        self.dt.value = dt
        if self.sigma_h is not None and self._stress_source is not None:
            self._project_stress()
        u_start = self.u.copy()
        self._predict(seg, dt)
        res = self._control_step(seg.current, seg.voltage, seg.search_limit())
        if not res.converged:
            self.u = u_start
        res.dt = dt
        return res

    def step(self, dt: float) -> ECStepResult:
        """Advance the cell by one implicit Euler step of at most ``dt`` seconds.

        The step is shortened so that it ends exactly at the end of a segment's duration,
        and, when the voltage crosses a cut-off, at the cut-off (to CUTOFF_TOLERANCE; the
        step size is found by regula falsi). ``result.dt`` is the step taken and
        ``result.event`` names the end of a segment; the protocol then moves to the next
        segment. A discharge (charge) also ends when the particles are full (empty) on
        average (event "limit"), should the cut-off never be reached. A step that fails
        leaves the state unchanged (``result.converged`` is False): retry with a smaller dt."""
        if self._done:
            raise RuntimeError("the protocol is complete (problem.done): nothing to step")
        if not dt > 0:
            raise ValueError(f"the time step must be positive, got {dt}")
        seg = self.segment
        event = ""
        if seg.duration is not None:
            left = seg.duration - self._seg_time
            if dt >= left * (1.0 - 1e-9):
                dt, event = left, "duration"
        start = self._snapshot()
        res = self._advance(dt)
        if not res.converged and not res.beyond_cutoff:
            self._restore(start)
            return res
        if res.beyond_cutoff or seg.beyond_cutoff(self.voltage):
            res = self._land_on_cutoff(start, dt, res)
            if not res.converged:
                self._restore(start)
                return res
            event = "cutoff"
        if seg.until_current is not None and abs(self.current) <= seg.until_current:
            event = "current"
        self._commit(res.dt, start)
        if not event and seg.mode in ("discharge", "charge"):
            # a safety net: the particles are full (or empty) on average, nothing is left to move
            soc = self.state.soc  # taken by _commit
            if (seg.mode == "discharge" and soc <= 0.0) or (seg.mode == "charge" and soc >= 1.0):
                event = "limit"
        if event:
            self._next_segment(event)
        res.event = event
        return res

    def _land_on_cutoff(self, start: dict, dt: float, res: ECStepResult) -> ECStepResult:
        """Shorten the step so that it ends at the cut-off voltage (Illinois regula falsi on
        the step fraction). A trial whose current needs a voltage more than CUTOFF_MARGIN
        past the cut-off, or whose fields do not converge, counts as that far past it. If even
        a thousandth of the step passes the cut-off, the segment ends there (after that
        thousandth, or at once, dt = 0, if it did not converge)."""
        seg = self.segment
        cut = seg.cutoff
        past = -CUTOFF_MARGIN if seg.mode == "discharge" else CUTOFF_MARGIN
        total = res
        total.beyond_cutoff, total.reason = False, ""
        t_b, g_b = 1.0, (past if res.beyond_cutoff else self.voltage - cut)
        b_converged = not res.beyond_cutoff
        # the voltage may jump at t = 0+ (at the start of a segment; after a crack that the
        # mechanics opened since the last step, through the larger ohmic drop): the voltage
        # at the start says nothing, probe a small step first
        t_a, g_a = 0.0, None
        side = None
        theta = 1e-3 if g_a is None else None
        for _ in range(30):
            if theta is None:
                theta = t_b - g_b * (t_b - t_a) / (g_b - g_a)
                theta = min(max(theta, t_a + 1e-3 * (t_b - t_a)), t_b - 1e-3 * (t_b - t_a))
            self._restore(start)
            r = self._advance(theta * dt)
            total.newton_iterations += r.newton_iterations
            total.outer_iterations += r.outer_iterations
            total.solves += r.solves
            # a trial whose fields do not converge is taken as past the cut-off: within a
            # step that crossed it, what fails is a voltage far beyond it (e.g. a current
            # that cracked electrolyte can hardly carry)
            past_it = r.beyond_cutoff or not r.converged
            g = past if past_it else self.voltage - cut
            beyond = past_it or seg.beyond_cutoff(self.voltage)
            if r.converged and (abs(g) <= CUTOFF_TOLERANCE or (t_b - t_a) * dt < 1e-9):
                total.converged, total.dt = True, theta * dt
                return total
            if g_a is None:
                if beyond:  # the cell cannot carry the current at all
                    self._restore(start)
                    if r.converged:
                        self._advance(theta * dt)
                    total.converged, total.dt = True, (theta * dt if r.converged else 0.0)
                    return total
                t_a, g_a, theta = theta, g, None
                continue
            if beyond:
                t_b, g_b, b_converged = theta, g, r.converged
                if side == "b":
                    g_a *= 0.5
                side = "b"
            else:
                t_a, g_a = theta, g
                if side == "a":
                    g_b *= 0.5
                side = "a"
            theta = None
        # not within the tolerance after 30 trials: end at the bracket end past the cut-off
        # (or before it, if that one did not converge)
        t_end = t_b if b_converged else t_a
        self._restore(start)
        r = self._advance(t_end * dt) if t_end > 0 else ECStepResult(True)
        total.converged, total.dt = r.converged, t_end * dt
        return total

    def _commit(self, dt: float, start: dict) -> None:
        self._last = (start["u"], dt)
        self.time += dt
        self.charge += self.current * dt
        self._seg_time += dt
        self._seg_charge += self.current * dt
        self._seg_steps += 1
        self.x_old.x.array[:] = self.x.x.array
        self._report = self._segment_report()
        self._update_sums()

    # ------------------------------------------------------------------ coupling inputs and outputs
    def _project_stress(self) -> None:
        """L2 projection of the hydrostatic stress onto P1 over the particles (exact for
        linear fields; the DOFs outside the particles stay zero)."""
        if self._stress_projection is None:
            from dolfinx.fem.petsc import LinearProblem

            t, v = ufl.TrialFunction(self.Vx), ufl.TestFunction(self.Vx)
            bc = fem.dirichletbc(PETSc.ScalarType(0.0), self._x_out, self.Vx)
            self._stress_projection = LinearProblem(
                self.chi_am * t * v * self.dx, self.chi_am * self._stress_source * v * self.dx, bcs=[bc],
                u=self.sigma_h, petsc_options_prefix="ssbfrac_stress_projection_",
                petsc_options={"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
        self._stress_projection.solve()
        self.sigma_h.x.scatter_forward()

    def update_outputs(self) -> None:
        """Fill ``interface_current`` (A/um^2; times 1e12 for A/m^2): the mean i_n over the
        surface facets of each particle cell that has some, zero elsewhere."""
        num = fem.assemble_vector(self._f_i_cells)
        den = fem.assemble_vector(self._f_area)
        for vec in (num, den):
            vec.scatter_reverse(la.InsertMode.add)
            vec.scatter_forward()
        has = den.array > 0
        self.interface_current.x.array[:] = np.where(has, num.array / np.where(has, den.array, 1.0), 0.0)

    def field_functions(self) -> list[fem.Function]:
        """The fields worth writing out (call :meth:`update_outputs` first)."""
        return [self.x, self.phi_e, self.phi_s, self.interface_current]

    def interface_current_total(self) -> float:
        """-int i_n over all particle surfaces (A; > 0 on discharge), from the present fields."""
        return float(self._group_sum(self._f_cur).sum())

    def particle_currents(self) -> np.ndarray:
        """Current delivered by each group of ``groups`` (A; one entry in the uniform model)."""
        return self._group_sum(self._f_cur)

    def particle_lithium(self) -> np.ndarray:
        """int c_max x over each group of ``groups`` (mol; one entry in the uniform model)."""
        return self._group_sum(self._f_lithium_cells)

    def anode_current(self) -> float:
        """Current entering the electrolyte from the lithium-metal side (A), computed
        independently of the particle surfaces: the reaction of the phi_e = 0 condition
        (fast anode) or int i_a over that side (Butler-Volmer anode)."""
        if self._f_anode is not None:
            return dif.assemble(self.comm, self._f_anode)
        vec = fem.assemble_vector(self._f_phi_residual)
        vec.scatter_reverse(la.InsertMode.add)
        own = self._phi_left[self._phi_left < self.Vp.dofmap.index_map.size_local]
        return self._scale * dif.global_sum(self.comm, vec.array[own].sum())

    def lithiation_profile(self, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Capacity-weighted mean lithium fraction of the particles in ``bins`` slabs across
        the thickness. Returns (slab centres: depth from the lithium side in um, mean x)."""
        lo, hi = self.bounds
        return dif.lithiation_profile(self.x, self._cell_tags, bins, weight=self.cmax, axis=0,
                                      bounds=(float(lo[0]), float(hi[0])))

    def effective_conductivity(self, relative: bool = False) -> float:
        """Homogenised ionic conductivity of the (damaged) electrolyte across the thickness
        (:class:`EffectiveConductivity`), in S/um (times 1e6: S/m), or relative to the
        electrolyte's kappa."""
        if self._homogenisation is None:
            self._homogenisation = EffectiveConductivity(self.domain, self._cell_tags, self._facet_tags,
                                                         self.kappa_eff, self._ionic_cells)
        k = self._homogenisation.solve()
        return k / self.kappa_ref if relative else k

    def measures(self) -> dict:
        """Scalar results of the last step for a history row (internal units; not collective):
        :attr:`state` and the current density at the collector (A/um^2)."""
        out = self.state.as_dict()
        out["current_density"] = self.current / self.collector_area if self.collector_area > 0 else math.nan
        return out


# ----------------------------------------------------------------------------- homogenisation
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


# ----------------------------------------------------------------------------- standalone runs
def run_protocol(problem: ElectrochemistryProblem, on_step=None, max_steps: int = 100000) -> dict:
    """Run the whole protocol with adaptive time steps (no mechanics). The step starts at
    ``loading.time_step``, is halved when a step fails (down to ``min_time_step``), grows by
    1.5 after easy steps (up to ``max_time_step``, default 10 time_step) and restarts from
    ``time_step`` after each segment. ``on_step(problem, result)`` is called after every
    accepted step. Returns counters."""
    ld = problem.loading
    dt0, dt_min = ld.time_step, ld.min_time_step
    dt_max = ld.max_time_step if ld.max_time_step is not None else 10.0 * dt0
    dt = dt0
    steps = rejected = newton = 0
    while not problem.done:
        if steps + rejected >= max_steps:
            raise RuntimeError(f"more than {max_steps} steps")
        res = problem.step(dt)
        if not res.converged:
            rejected += 1
            dt *= 0.5
            if dt < dt_min:
                raise RuntimeError(f"electrochemistry step failed at the smallest time step ({dt_min} s): {res.reason}")
            continue
        steps += 1
        newton += res.newton_iterations
        if on_step is not None:
            on_step(problem, res)
        if res.event:
            dt = dt0
        elif res.newton_iterations <= 12:
            dt = min(1.5 * dt, dt_max)
    return {"steps": steps, "rejected": rejected, "newton_iterations": newton}
