"""Electrochemistry of a composite cathode cycled against a lithium-metal electrode
(docs/electrochemistry.md; internal units um, s, A, V, mol; in 2D every extensive quantity
is per um of thickness).

Unknowns: x, the lithium fraction of the particles, and phi_e, the ionic potential of every
non-particle cell (P1 each: :mod:`.fields`); the particle potentials phi_s, the cell voltage
V in every particle or one value per particle behind a contact resistance and an electronic
network (:mod:`.circuit`); Butler-Volmer kinetics couple them on the particle surfaces and
on the lithium-metal side (:mod:`.kinetics`). The control, per protocol segment
(:mod:`.protocol`), is a constant cell current I (discharge I > 0, -int_Gamma i_n ds = I)
or a held voltage (potentiostatic). A time step (implicit Euler) solves the fields and the
free control unknowns together (:mod:`.control`: a coupled Newton fast path, a nested
robust iteration).

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

import numpy as np
from dolfinx import fem
from mpi4py import MPI

from solver.config.units import is_internal
from solver.physics import diffusion as dif
from solver.physics.constants import FARADAY
from solver.physics.electrochemistry.circuit import Circuit
from solver.physics.electrochemistry.control import ControlSolve, predict
from solver.physics.electrochemistry.fields import FieldProblem
from solver.physics.electrochemistry.homogenisation import EffectiveConductivity
from solver.physics.electrochemistry.protocol import (CUTOFF_MARGIN, CellState, ECStepResult, ProtocolPosition,
                                                      Segment)

#: a cut-off is reached when the voltage is this close to it (V)
CUTOFF_TOLERANCE = 1e-3


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
    ``voltage``, ``current``, ``time``, ``charge``; ``u`` (the control unknowns: [V] or
    [phi_1, ..., phi_m, V]); ``one_c`` (A), ``capacity`` (C); ``groups`` (particle
    indices of the potentials, ``[None]`` for the uniform model), ``m``, ``resistance``;
    ``segment_log`` (one dict per finished segment: mode, event, duration, charge,
    capacity, voltage, x_mean, time). The parts: ``fields`` (:class:`FieldProblem`),
    ``circuit`` (:class:`Circuit`), ``protocol`` (:class:`ProtocolPosition`).
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
        self.fields = fl = FieldProblem(domain, cell_tags, facet_tags, case, damage, hydrostatic_stress, prefix)
        self.circuit = cc = Circuit(fl, cell_tags, ld.electronic)
        self.protocol = ProtocolPosition(ld, fl.one_c, fl.collector_area)
        # the functions and figures of the parts (never rebound)
        self.x, self.x_old, self.phi_e, self.phi_s, self.damage = fl.x, fl.x_old, fl.phi_e, fl.phi_s, fl.damage
        self.Vx, self.Vp, self.interface_current = fl.Vx, fl.Vp, cc.interface_current
        self.capacity, self.one_c, self.collector_area, self.bounds = fl.capacity, fl.one_c, fl.collector_area, fl.bounds
        self.groups, self.m, self.resistance, self.particle_depth = cc.groups, cc.m, cc.resistance, cc.particle_depth
        self.segments_per_cycle, self.n_segments = self.protocol.segments_per_cycle, self.protocol.n_segments
        self.segment_log = self.protocol.log

        self.voltage = float(fl.materials[0][3](ld.initial_lithiation))
        self.current = 0.0
        self.u = cc.initial_unknowns(self.voltage)
        cc.set_potentials(np.full(cc.m, self.voltage))
        self.time = 0.0
        self.charge = 0.0
        self._last = None  # (unknowns, dt) at the start of the last accepted step (predictor)
        self._jac = None  # control Jacobian of the last galvanostatic solve (predictor)
        self._update_sums()
        self._saved = None
        self._homogenisation = None
        self._homogenised = None  # (damage, kappa_hom) of the last homogenisation solve

    # ------------------------------------------------------------------ protocol
    @property
    def segment(self) -> Segment:
        """The segment the next step belongs to."""
        return self.protocol.segment

    @property
    def segment_index(self) -> int:
        """Index of the segment the next step belongs to, counted over all cycles."""
        return self.protocol.index

    @property
    def done(self) -> bool:
        """True once the last segment of the last cycle has ended (or a cut-off stopped the loading)."""
        return self.protocol.done

    @property
    def sensitivity_solves(self) -> int:
        """Solves with the factorised field Jacobian for the sensitivities, so far."""
        return self.circuit.sensitivity_solves

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
            **self.protocol.report,
        )

    def _update_sums(self) -> None:
        """Total lithium and mean x of the present fields (collective)."""
        self._sums = (self.total_lithium(), self.fields.x_mean())

    def total_lithium(self) -> float:
        """int c_max x over the particles (mol; per um of thickness in 2D)."""
        return self.fields.total_lithium()

    def _snapshot(self) -> dict:
        s = self.fields.snapshot()
        s.update(u=self.u.copy(), voltage=self.voltage, current=self.current, time=self.time, charge=self.charge)
        s.update(self.protocol.snapshot())
        s.update(last=self._last, jac=None if self._jac is None else self._jac.copy(), sums=self._sums)
        return s

    def _restore(self, s: dict) -> None:
        self.fields.restore(s)
        self.u = s["u"].copy()
        self.voltage, self.current, self.time, self.charge = s["voltage"], s["current"], s["time"], s["charge"]
        self.protocol.restore(s)
        self._last, self._jac, self._sums = s["last"], s["jac"], s["sums"]

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
        s.update(self.fields.snapshot())
        s["u"] = np.asarray(s["u"], dtype=float)
        last = s["last"]
        s["last"] = None if last is None else (np.asarray(last["u"], dtype=float), float(last["dt"]))
        s["jac"] = None if s["jac"] is None else np.asarray(s["jac"], dtype=float)
        s["sums"] = tuple(float(v) for v in s["sums"])
        s["seg"], s["seg_steps"], s["done"] = int(s["seg"]), int(s["seg_steps"]), bool(s["done"])
        self.segment_log[:] = [dict(entry) for entry in state["segment_log"]]
        s["log"] = len(self.segment_log)
        self._restore(s)
        self.circuit.sensitivity_solves = int(state["sensitivity_solves"])
        self._saved = None

    def save_state(self) -> None:
        """Remember the present state: fields, potentials, time and protocol position."""
        self._saved = self._snapshot()

    def restore_state(self) -> None:
        """Go back to the state of the last :meth:`save_state` (a rejected step)."""
        if self._saved is None:
            raise RuntimeError("restore_state() without save_state()")
        self._restore(self._saved)

    # ------------------------------------------------------------------ stepping
    def _advance(self, dt: float) -> ECStepResult:
        """One implicit Euler step of size dt from the last committed state (not committed):
        the control unknowns from their prediction, and the fields."""
        seg = self.segment
        self.fields.prepare_step(dt)
        last = self._last if self.protocol.segment_steps > 0 else None
        guess = predict(self.u, seg, dt, self.current, last, self._jac)
        solve = ControlSolve(self.fields.solver, self.circuit, guess, seg.current, seg.voltage, seg.search_limit())
        res = solve.solve()
        if solve.jacobian is not None:
            self._jac = solve.jacobian
        if res.converged:
            self.u, self.current, self.voltage = solve.u, solve.current, solve.voltage
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
        if self.protocol.done:
            raise RuntimeError("the protocol is complete (problem.done): nothing to step")
        if not dt > 0:
            raise ValueError(f"the time step must be positive, got {dt}")
        seg = self.segment
        event = ""
        if seg.duration is not None:
            left = seg.duration - self.protocol.segment_time
            if dt >= left * (1.0 - 1e-9):
                dt, event = left, "duration"
        start = self._snapshot()
        res = self._advance(dt)
        if not res.converged and not res.beyond_cutoff:
            self._restore(start)
            return res
        if res.beyond_cutoff or seg.beyond_cutoff(self.voltage):
            res = land_on_cutoff(seg, dt, res, self.voltage, lambda h: self._retake(start, h),
                                 lambda: self._restore(start))
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
            self.protocol.next_segment(event, self.voltage, self._sums[1], self.time)
        res.event = event
        return res

    def _retake(self, start: dict, dt: float) -> tuple[ECStepResult, float]:
        """Go back to ``start`` and take a step of dt instead: (its result, the voltage)."""
        self._restore(start)
        res = self._advance(dt)
        return res, self.voltage

    def _commit(self, dt: float, start: dict) -> None:
        self._last = (start["u"], dt)
        self.time += dt
        self.charge += self.current * dt
        self.protocol.advance(dt, self.current)
        self.fields.commit()
        self._update_sums()

    # ------------------------------------------------------------------ outputs
    def update_outputs(self) -> None:
        """Fill ``interface_current`` (A/um^2; times 1e12 for A/m^2): the mean i_n over the
        surface facets of each particle cell that has some, zero elsewhere."""
        self.circuit.update_interface_current()

    def field_functions(self) -> list[fem.Function]:
        """The fields worth writing out (call :meth:`update_outputs` first)."""
        return [self.x, self.phi_e, self.phi_s, self.interface_current]

    def interface_current_total(self) -> float:
        """-int i_n over all particle surfaces (A; > 0 on discharge), from the present fields."""
        return float(self.circuit.currents().sum())

    def particle_currents(self) -> np.ndarray:
        """Current delivered by each group of ``groups`` (A; one entry in the uniform model)."""
        return self.circuit.currents()

    def particle_lithium(self) -> np.ndarray:
        """int c_max x over each group of ``groups`` (mol; one entry in the uniform model)."""
        return self.circuit.particle_lithium()

    def anode_current(self) -> float:
        """Current entering the electrolyte from the lithium-metal side (A), computed
        independently of the particle surfaces (:meth:`FieldProblem.anode_current`)."""
        return self.fields.anode_current()

    def lithiation_profile(self, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Capacity-weighted mean lithium fraction of the particles in ``bins`` slabs across
        the thickness. Returns (slab centres: depth from the lithium side in um, mean x)."""
        lo, hi = self.bounds
        return dif.lithiation_profile(self.x, self._cell_tags, bins, weight=self.fields.cmax, axis=0,
                                      bounds=(float(lo[0]), float(hi[0])))

    def effective_conductivity(self, relative: bool = False) -> float:
        """Homogenised ionic conductivity of the (damaged) electrolyte across the thickness
        (:class:`EffectiveConductivity`), in S/um (times 1e6: S/m), or relative to the
        electrolyte's kappa. It depends on the damage only: while the damage is the one of
        the last solve (on every rank), that solve's value is returned without solving."""
        if self._homogenisation is None:
            self._homogenisation = EffectiveConductivity(self.domain, self._cell_tags, self._facet_tags,
                                                         self.fields.kappa_eff, self.fields.ionic_cells)
        d = self.damage.x.array
        last = self._homogenised
        if last is None or not self.comm.allreduce(bool(np.array_equal(d, last[0])), op=MPI.LAND):
            self._homogenised = last = (d.copy(), self._homogenisation.solve())
        return last[1] / self.fields.kappa_ref if relative else last[1]

    def measures(self) -> dict:
        """Scalar results of the last step for a history row (internal units; not collective):
        :attr:`state` and the current density at the collector (A/um^2)."""
        out = self.state.as_dict()
        out["current_density"] = self.current / self.collector_area if self.collector_area > 0 else math.nan
        return out


# ----------------------------------------------------------------------------- cut-off landing
def land_on_cutoff(seg: Segment, dt: float, res: ECStepResult, voltage: float, retake, restore) -> ECStepResult:
    """Shorten a step of ``dt`` that crossed the cut-off of ``seg`` so that it ends at the
    cut-off voltage (Illinois regula falsi on the step fraction). A trial whose current needs
    a voltage more than CUTOFF_MARGIN past the cut-off, or whose fields do not converge,
    counts as that far past it. If even a thousandth of the step passes the cut-off, the
    segment ends there (after that thousandth, or at once, dt = 0, if it did not converge).

    Args:
        res, voltage: the result of the full step and the voltage it reached.
        retake: ``retake(h)`` goes back to the start of the step and takes a step of h
            seconds instead; it returns (result, voltage).
        restore: ``restore()`` goes back to the start of the step.

    Returns ``res`` with the work of all trials added, ``dt`` the step taken; the state is
    that of the step taken (converged) or undefined (not converged).
    """
    cut = seg.cutoff
    past = -CUTOFF_MARGIN if seg.mode == "discharge" else CUTOFF_MARGIN
    total = res
    total.beyond_cutoff, total.reason = False, ""
    t_b, g_b = 1.0, (past if res.beyond_cutoff else voltage - cut)
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
        r, voltage = retake(theta * dt)
        total.newton_iterations += r.newton_iterations
        total.outer_iterations += r.outer_iterations
        total.solves += r.solves
        # a trial whose fields do not converge is taken as past the cut-off: within a
        # step that crossed it, what fails is a voltage far beyond it (e.g. a current
        # that cracked electrolyte can hardly carry)
        past_it = r.beyond_cutoff or not r.converged
        g = past if past_it else voltage - cut
        beyond = past_it or seg.beyond_cutoff(voltage)
        if r.converged and (abs(g) <= CUTOFF_TOLERANCE or (t_b - t_a) * dt < 1e-9):
            total.converged, total.dt = True, theta * dt
            return total
        if g_a is None:
            if beyond:  # the cell cannot carry the current at all
                if r.converged:
                    retake(theta * dt)
                else:
                    restore()
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
    if t_end > 0:
        r, _ = retake(t_end * dt)
    else:
        restore()
        r = ECStepResult(True)
    total.converged, total.dt = r.converged, t_end * dt
    return total


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
