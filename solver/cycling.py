"""Galvanostatic cycling coupled to mechanics and fracture: the time loop.

Every time step is staggered. The electrochemistry (:mod:`solver.electrochemistry`)
advances the lithium fraction, the ionic potential and the particle potentials with the
damage and the hydrostatic stress of the last accepted step; the mechanics (and the
damage, :class:`solver.coupling.Simulation`) are then solved under the new lithium field.
A step is rejected, and both sides go back to the last accepted state, when either solve
fails or the crack grows too brutally (:class:`solver.coupling.GrowthGuard`); the time
step is then cut. Easy steps let it grow again, up to ``loading.max_time_step``.

After an accepted step the mechanics hand their damage and hydrostatic stress to the
electrochemistry (explicit transfer: the lag of one step is the staggering), and the
effective ionic conductivity of the damaged electrolyte is computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from dolfinx import fem

from solver.coupling import GrowthGuard, Simulation, StepFailure, add_counters, new_counters
from solver.diffusion import slab_profile
from solver.electrochemistry import ECStepResult, ElectrochemistryProblem
from solver.schemes import StepResult

#: mAh/cm^2 per C/um^2
C_PER_UM2_TO_MAH_PER_CM2 = 1e8 / 3.6
#: A/m^2 per A/um^2
A_PER_UM2_TO_A_PER_M2 = 1e12

#: history columns of a cycling run, besides the mechanics' (units in solver.output)
CELL_COLUMNS = ["voltage", "current_density", "c_rate", "capacity", "capacity_fraction", "segment", "cycle",
                "mode", "kappa_eff_rel"]


@dataclass
class CycleRecord:
    """One (accepted or rejected) time step of a cycling run."""

    step: int
    accepted: bool
    time: float  # s, at the end of the step (of the attempted step if rejected)
    result: StepResult  # mechanics and damage
    ec: ECStepResult
    measures: dict = field(default_factory=dict)


class CoupledCell:
    """The electrochemistry and the mechanics of one cathode, and the transfers between them.

    Args:
        case: validated case in internal units, with a galvanostatic loading.
        bundle: the distributed mesh with tags.
    """

    def __init__(self, case, bundle):
        ld = case.loading
        Q = fem.functionspace(bundle.mesh, ("DG", 0))
        self.sigma_h = fem.Function(Q, name="hydrostatic_lagged")  # GPa, of the last accepted step
        self.ec = ElectrochemistryProblem(bundle.mesh, bundle.cell_tags, bundle.facet_tags, case,
                                          hydrostatic_stress=self.sigma_h)
        x_ref = ld.x_ref if ld.x_ref is not None else ld.initial_lithiation
        self.sim = Simulation(case, bundle, lithium=self.ec.x, x_ref=x_ref)
        if self.sim.fracture and self.sim.d.x.array.size != self.ec.damage.x.array.size:
            raise RuntimeError("damage spaces of the mechanics and the electrochemistry differ")
        self.kappa_eff_rel = 1.0

    def transfer(self) -> None:
        """Hand the accepted damage and hydrostatic stress to the electrochemistry."""
        if self.sim.fracture:
            self.ec.damage.x.array[:] = self.sim.d.x.array
        self.sigma_h.x.array[:] = self.sim.outputs["hydrostatic"].x.array

    def checkpoint_functions(self) -> dict:
        """The fields that a checkpoint must hold to continue the run exactly: those of
        the mechanics (:meth:`Simulation.checkpoint_functions`), the lithium fraction and
        its value at the start of the step, the ionic and particle potentials, the damage
        seen by the electrochemistry and the hydrostatic stress handed to it."""
        ec = self.ec
        out = self.sim.checkpoint_functions()
        out.update({"lithiation": ec.x, "lithiation_old": ec.x_old, "ionic_potential": ec.phi_e,
                    "particle_potential": ec.phi_s, "ec_damage": ec.damage, "hydrostatic_lagged": self.sigma_h})
        return out

    def field_functions(self) -> list:
        """Displacement (and damage), the electrochemistry's fields, then stresses and tags."""
        mech = self.sim.field_functions()
        k = 2 if self.sim.fracture else 1
        return mech[:k] + self.ec.field_functions() + mech[k:]

    def cell_measures(self) -> dict:
        """History values of the cell (SI-like units of solver.output.HISTORY_UNITS)."""
        ec = self.ec
        st = ec.state
        area = ec.collector_area
        return {
            "time": st.time,
            "x": st.x_mean,
            "soc": st.soc,
            "voltage": st.voltage,
            "current_density": st.current / area * A_PER_UM2_TO_A_PER_M2 if area > 0 else float("nan"),
            "c_rate": st.c_rate,
            "capacity": abs(st.segment_charge) / area * C_PER_UM2_TO_MAH_PER_CM2 if area > 0 else float("nan"),
            "capacity_fraction": abs(st.segment_charge) / ec.capacity,
            "segment": st.segment,
            "cycle": st.cycle,
            "mode": st.mode,
            "kappa_eff_rel": self.kappa_eff_rel,
        }

    def profiles(self, bins: int) -> dict:
        """Mean lithium fraction of the particles and mean damage of the electrolyte in
        ``bins`` slabs across the thickness (depth from the lithium side, um). Collective."""
        depth, x = self.ec.lithiation_profile(bins)
        lo, hi = self.ec.bounds
        out = {"depth": depth, "x": x}
        if self.sim.fracture:
            _, d = slab_profile(self.sim.d, self.sim.se_cells, bins, bounds=(float(lo[0]), float(hi[0])))
            out["damage"] = d
        return out


def run_cycling(cell: CoupledCell, on_step, progress=None, max_steps: int = 1000000,
                resume: dict | None = None, at_boundary=None) -> dict:
    """Run the protocol of the case to its end with adaptive time steps.

    ``on_step(record)`` is called for every accepted and rejected step. Returns counters
    and the time spent per physics (s) for the summary. ``cell.kappa_eff_rel`` must hold
    the effective conductivity of the starting state (the caller reports it first).

    Checkpoints: ``at_boundary(state)``, if given, is called after every accepted step
    that does not end the protocol (after ``on_step`` and the transfers) with the loop
    state, a dict of JSON types and numpy arrays: time step ``dt`` (s), step counts,
    counters, timers (s), the :class:`GrowthGuard` state, ``wall`` (s of solving so far)
    and ``ec``, the scalar state of the electrochemistry
    (:meth:`ElectrochemistryProblem.checkpoint_state`). If it returns True the loop stops
    there; a later call with ``resume=state`` continues exactly from that point once the
    fields have been restored (``sim``: u, d, d_prev, H_hist; ``ec``: x, x_old, phi_e,
    phi_s, damage; ``cell.sigma_h``)."""
    sim, ec = cell.sim, cell.ec
    ld, ad = sim.case.loading, sim.case.fracture.adaptive
    dt = ld.time_step
    dt_min = ld.min_time_step
    dt_max = ld.max_time_step if ld.max_time_step is not None else 10.0 * ld.time_step
    guard = GrowthGuard(sim)
    counters = new_counters()
    counters.update(ec_newton_iterations=0, ec_solves=0)
    timers = {"electrochemistry": 0.0, "mechanics": 0.0, "effective_conductivity": 0.0}
    step = accepted = rejected = 0
    wall0 = 0.0
    if resume is not None:
        dt = float(resume["dt"])
        step, accepted, rejected = int(resume["step"]), int(resume["accepted"]), int(resume["rejected"])
        counters.update({k: int(v) for k, v in resume["counters"].items()})
        timers.update({k: float(v) for k, v in resume["timers"].items()})
        guard.load_state(resume["guard"])
        ec.load_checkpoint_state(resume["ec"])
        wall0 = float(resume["wall"])
    t_start = time.perf_counter() - wall0
    while not ec.done:
        if step >= max_steps:
            raise RuntimeError(f"more than {max_steps} steps: the time step collapsed")
        ec.save_state()
        sim.save_state()
        r_ec = _timed(timers, "electrochemistry", ec.step, dt)
        counters["ec_newton_iterations"] += r_ec.newton_iterations
        counters["ec_solves"] += r_ec.solves
        step += 1
        smallest = dt <= dt_min * 1.0001
        if not r_ec.converged:
            res = StepResult(False, reason="electrochemistry: " + (r_ec.reason or "did not converge"))
        else:
            res = _timed(timers, "mechanics", sim.solve_step)
            add_counters(counters, res)
        ok = res.converged
        if ok:
            sim.update_outputs()
            meas = sim.measures()
            ok = guard.accept(meas, res, smallest or r_ec.dt <= dt_min * 1.0001, at=ec.time)
        if not ok and smallest:
            raise StepFailure(f"time step at t = {ec.time:.6g} s failed at the smallest step ({dt_min:.3g} s): "
                              f"{res.reason}")
        if ok:
            sim.accept()
            guard.accepted(meas, at=ec.time)
            cell.transfer()
            ec.update_outputs()
            cell.kappa_eff_rel = _timed(timers, "effective_conductivity", ec.effective_conductivity, True)
            accepted += 1
            meas.update(cell.cell_measures())
            meas["wall"] = time.perf_counter() - t_start
            on_step(CycleRecord(step, True, ec.time, res, r_ec, meas))
            # a step shortened by a cut-off or a segment end says nothing about the step size
            if res.iterations <= ad.easy_iterations and r_ec.newton_iterations <= 12 and not r_ec.event:
                dt = min(dt * ad.growth_factor, dt_max)
            if progress is not None:
                progress.update(_position(ec), _progress_info(meas, res))
                if res.reason:
                    progress.message(f"t = {ec.time:.1f} s: {res.reason}")
                if r_ec.event:
                    progress.message(f"t = {ec.time:.1f} s: {meas['mode']} ended ({r_ec.event}) at "
                                     f"{meas['voltage']:.3f} V, capacity {meas['capacity_fraction']:.3f} of theoretical")
            if at_boundary is not None and not ec.done:
                state = {"dt": dt, "step": step, "accepted": accepted, "rejected": rejected,
                         "counters": dict(counters), "timers": dict(timers), "guard": guard.state(),
                         "wall": time.perf_counter() - t_start, "ec": ec.checkpoint_state()}
                if at_boundary(state):
                    break
        else:
            rejected += 1
            t_try = ec.time
            ec.restore_state()
            sim.restore_state()
            on_step(CycleRecord(step, False, t_try, res, r_ec, {"wall": time.perf_counter() - t_start}))
            dt = max((r_ec.dt if r_ec.dt > 0 else dt) * ad.cut_factor, dt_min)
            if progress is not None:
                progress.message(f"step at t = {ec.time:.1f} s rejected ({res.reason}); new step {dt:.3g} s")
    counters.update({"steps": step, "accepted_steps": accepted, "rejected_steps": rejected,
                     "ec_sensitivity_solves": ec.sensitivity_solves})
    return {"counters": counters, "timers": timers}


def _timed(timers: dict, key: str, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    timers[key] += time.perf_counter() - t
    return out


def _position(ec: ElectrochemistryProblem) -> float:
    """Progress through the protocol: finished segments plus the fraction of the present one
    (by charge for a current segment, by time for a rest or a hold with a duration)."""
    seg = ec.segment
    st = ec.state
    if ec.done:
        return float(ec.n_segments)
    if seg.mode in ("discharge", "charge"):
        frac = abs(st.segment_charge) / ec.capacity if st.segment == ec.segment_index else 0.0
    elif seg.duration:
        frac = st.segment_time / seg.duration if st.segment == ec.segment_index else 0.0
    else:
        frac = 0.0
    return ec.segment_index + float(np.clip(frac, 0.0, 0.99))


def _progress_info(meas: dict, res: StepResult) -> str:
    txt = f"{meas['mode']} V={meas['voltage']:.3f} x={meas['x']:.3f} s1_SE={meas['sigma1_max_SE']:.0f}MPa"
    if "crack_length" in meas:
        txt += f" crack={meas['crack_length']:.2f}um it={res.iterations}"
    return txt
