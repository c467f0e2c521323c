"""Galvanostatic cycling coupled to mechanics and fracture.

Every time step is staggered. The electrochemistry (:mod:`solver.physics.electrochemistry`)
advances the lithium fraction, the ionic potential and the particle potentials with the
damage and the hydrostatic stress of the last accepted step; the mechanics (and the
damage, :class:`solver.physics.mechanics.MechanicsProblem`) are then solved under the new
lithium field. A step is rejected, and both sides go back to the last accepted state,
when either solve fails or the crack grows too brutally
(:class:`solver.numerics.stepping.GrowthGuard`); the time step is then cut. Easy steps let
it grow again, up to ``loading.max_time_step``. :class:`CyclingLoading` is the stepper of
:func:`solver.numerics.stepping.march`.

After an accepted step the mechanics hand their damage and hydrostatic stress to the
electrochemistry (explicit transfer: the lag of one step is the staggering), and the
effective ionic conductivity of the damaged electrolyte is computed.
"""

from __future__ import annotations

import time

import numpy as np
from dolfinx import fem

from solver.numerics.schemes import StepResult
from solver.numerics.stepping import Attempt, StepSizes, crack_progress
from solver.physics.diffusion import slab_profile
from solver.physics.electrochemistry import ElectrochemistryProblem
from solver.physics.mechanics import MechanicsProblem

#: mAh/cm^2 per C/um^2
C_PER_UM2_TO_MAH_PER_CM2 = 1e8 / 3.6
#: A/m^2 per A/um^2
A_PER_UM2_TO_A_PER_M2 = 1e12

#: history columns of a cycling run, besides the mechanics' (units in solver.runs.writers)
CELL_COLUMNS = ["voltage", "current_density", "c_rate", "capacity", "capacity_fraction", "segment", "cycle",
                "mode", "kappa_eff_rel"]


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
        self.sim = MechanicsProblem(case, bundle, lithium=self.ec.x, x_ref=x_ref)
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
        the mechanics (:meth:`MechanicsProblem.checkpoint_functions`), the lithium fraction and
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
        """History values of the cell (SI-like units of solver.runs.writers.HISTORY_UNITS)."""
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


class CyclingLoading:
    """Stepper of galvanostatic cycling (see :mod:`solver.numerics.stepping`): each time
    step advances the electrochemistry, then solves the mechanics under the new lithium
    field; an accepted step hands damage and stress back and updates the effective
    conductivity. ``timers`` holds the time spent per physics (s).

    ``cell.kappa_eff_rel`` must hold the effective conductivity of the starting state (the
    caller reports it first)."""

    #: the first history columns of a run (the mechanics' and the solver's follow)
    columns = ["step", "accepted", "time"] + CELL_COLUMNS
    #: columns after the solver's
    extra_columns = ["ec_newton_iterations"]
    max_steps = 1000000

    def __init__(self, cell: CoupledCell):
        self.cell, self.sim, self.ec = cell, cell.sim, cell.ec
        self.timers = {"electrochemistry": 0.0, "mechanics": 0.0, "effective_conductivity": 0.0}
        self._ec_result = None

    @staticmethod
    def step_sizes(case) -> StepSizes:
        """Time steps (s): from loading.time_step, between min_time_step and max_time_step
        (default 10 time_step), grown and cut by the factors of fracture.adaptive."""
        ld, ad = case.loading, case.fracture.adaptive
        dt_max = ld.max_time_step if ld.max_time_step is not None else 10.0 * ld.time_step
        return StepSizes(ld.time_step, ld.min_time_step, dt_max, ad.growth_factor, ad.cut_factor)

    def start(self) -> None:
        """Outputs of the starting (or restarted) state, and its effective conductivity."""
        self.sim.update_outputs()
        self.ec.update_outputs()
        self.cell.kappa_eff_rel = self.ec.effective_conductivity(relative=True)

    @property
    def done(self) -> bool:
        return self.ec.done

    def save(self) -> None:
        self.ec.save_state()
        self.sim.save_state()

    def restore(self) -> None:
        self.ec.restore_state()
        self.sim.restore_state()

    def attempt(self, dt: float) -> Attempt:
        """One implicit Euler step of the electrochemistry (it may end early at a cut-off or
        the end of a segment), then the mechanics. Easy: few damage iterations, few Newton
        iterations of the electrochemistry, and not shortened by an event."""
        r_ec = _timed(self.timers, "electrochemistry", self.ec.step, dt)
        self._ec_result = r_ec
        if not r_ec.converged:
            res = StepResult(False, reason="electrochemistry: " + (r_ec.reason or "did not converge"))
        else:
            res = _timed(self.timers, "mechanics", self.sim.solve_step)
        easy = (res.iterations <= self.sim.case.fracture.adaptive.easy_iterations and r_ec.newton_iterations <= 12
                and not r_ec.event)
        return Attempt(r_ec.dt, self.ec.time, res, easy, extra={"ec_newton_iterations": r_ec.newton_iterations},
                       counters={"ec_newton_iterations": r_ec.newton_iterations, "ec_solves": r_ec.solves})

    def measures(self) -> dict:
        self.sim.update_outputs()
        return self.sim.measures()

    def accept(self, att: Attempt) -> dict:
        self.sim.accept()
        self.cell.transfer()
        self.ec.update_outputs()
        self.cell.kappa_eff_rel = _timed(self.timers, "effective_conductivity", self.ec.effective_conductivity, True)
        return self.cell.cell_measures()

    def rejected(self, att: Attempt) -> dict:
        return {"time": self.ec.time}

    def initial_row(self) -> dict:
        return self.cell.cell_measures()

    def describe(self, att: Attempt) -> str:
        return f"time step at t = {self.ec.time:.6g} s"

    def progress_position(self) -> float:
        return _position(self.ec)

    @property
    def progress_total(self) -> float:
        return float(self.ec.n_segments)

    def progress_info(self, meas: dict, res) -> str:
        return (f"{meas['mode']} V={meas['voltage']:.3f} x={meas['x']:.3f} s1_SE={meas['sigma1_max_SE']:.0f}MPa"
                + crack_progress(meas, res))

    def messages(self, att: Attempt, meas: dict) -> list[str]:
        out = []
        if att.result.reason:
            out.append(f"t = {self.ec.time:.1f} s: {att.result.reason}")
        event = self._ec_result.event if self._ec_result is not None else ""
        if event:
            out.append(f"t = {self.ec.time:.1f} s: {meas['mode']} ended ({event}) at {meas['voltage']:.3f} V, "
                       f"capacity {meas['capacity_fraction']:.3f} of theoretical")
        return out

    def where(self) -> str:
        """The present point, for messages."""
        return f"t = {self.ec.time:.1f} s"

    def state(self) -> dict:
        return {"timers": dict(self.timers), "ec": self.ec.checkpoint_state()}

    def load_state(self, state: dict) -> None:
        self.timers.update({k: float(v) for k, v in state["timers"].items()})
        self.ec.load_checkpoint_state(state["ec"])

    def final_counters(self) -> dict:
        return {"ec_sensitivity_solves": self.ec.sensitivity_solves}


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
