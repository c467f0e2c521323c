"""A prescribed lithiation: the lithium fraction of every particle follows a load path.

The load coordinate s runs from 0 to the number of path segments; segment k goes
linearly from path[k] to path[k + 1]. Steps never jump over a turning point.
:class:`PrescribedLoading` is the stepper of :func:`solver.numerics.stepping.march` for
such a loading: each step sets the lithium fraction and solves the mechanics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solver.numerics.stepping import Attempt, StepSizes, crack_progress


@dataclass(frozen=True)
class LoadPath:
    points: tuple[float, ...]
    x_ref: float
    duration: float  # s per segment

    @staticmethod
    def from_case(loading) -> "LoadPath":
        x_ref = loading.x_ref if loading.x_ref is not None else loading.path[0]
        return LoadPath(tuple(loading.path), x_ref, loading.duration)

    @property
    def length(self) -> float:
        return float(len(self.points) - 1)

    def x(self, s: float) -> float:
        """Lithium fraction at load coordinate s."""
        s = min(max(s, 0.0), self.length)
        k = min(int(math.floor(s)), len(self.points) - 2)
        t = s - k
        return self.points[k] + t * (self.points[k + 1] - self.points[k])

    def time(self, s: float) -> float:
        return s * self.duration

    def next_turn(self, s: float) -> float:
        """The first turning point (integer s) strictly after s."""
        return float(min(math.floor(s + 1e-12) + 1, self.length))


class PrescribedLoading:
    """Stepper of a prescribed lithiation (see :mod:`solver.numerics.stepping`).

    Args:
        mech: the :class:`solver.physics.mechanics.MechanicsProblem` (uniform lithium).
        path: the load path.
    """

    #: the first history columns of a run (the mechanics' and the solver's follow)
    columns = ["step", "accepted", "time", "load"]
    max_steps = 100000

    def __init__(self, mech, path: LoadPath):
        self.mech, self.path = mech, path
        self.s = 0.0
        self._saved_s = 0.0
        mech.set_load(path.x(0.0), path.x_ref)

    @staticmethod
    def step_sizes(case) -> StepSizes:
        """Load steps: 1/loading.steps of a segment; adaptive with fracture.adaptive."""
        ad = case.fracture.adaptive
        h0 = 1.0 / case.loading.steps
        return StepSizes(h0, h0 * ad.min_step_fraction, h0 * ad.max_step_fraction, ad.growth_factor,
                         ad.cut_factor, adaptive=ad.enabled and case.fracture.enabled)

    def start(self) -> None:
        """Outputs of the starting (or restarted) state."""
        self.mech.update_outputs()

    @property
    def done(self) -> bool:
        return self.s >= self.path.length - 1e-12

    def save(self) -> None:
        self._saved_s = self.s
        self.mech.save_state()

    def restore(self) -> None:
        self.s = self._saved_s
        self.mech.restore_state()
        self.mech.set_load(self.path.x(self.s), self.path.x_ref)

    def attempt(self, h: float) -> Attempt:
        """Load to min(s + h, next turning point); the step is easy when it took few iterations."""
        s_next = min(self.s + h, self.path.next_turn(self.s), self.path.length)
        self.mech.set_load(self.path.x(s_next), self.path.x_ref)
        res = self.mech.solve_step()
        easy = res.iterations <= self.mech.case.fracture.adaptive.easy_iterations
        return Attempt(s_next - self.s, s_next, res, easy)

    def measures(self) -> dict:
        self.mech.update_outputs()
        return self.mech.measures()

    def accept(self, att: Attempt) -> dict:
        self.mech.accept()
        self.s = att.position
        return {"time": self.path.time(att.position), "load": att.position}

    def rejected(self, att: Attempt) -> dict:
        return {"time": self.path.time(att.position), "load": att.position}

    def initial_row(self) -> dict:
        return {"time": 0.0, "load": 0.0}

    def describe(self, att: Attempt) -> str:
        return f"load step to {att.position:.6g}"

    def progress_position(self) -> float:
        return self.s

    @property
    def progress_total(self) -> float:
        return self.path.length

    def progress_info(self, meas: dict, res) -> str:
        return f"x={meas['x']:.3f} s1_SE={meas['sigma1_max_SE']:.0f}MPa" + crack_progress(meas, res)

    def messages(self, att: Attempt, meas: dict) -> list[str]:
        return [f"load {self.s:.4f}: {att.result.reason}"] if att.result.reason else []

    def where(self) -> str:
        """The present point, for messages."""
        return f"load {self.s:.4f}"

    def state(self) -> dict:
        return {"s": self.s}

    def load_state(self, state: dict) -> None:
        self.s = float(state["s"])
        self.mech.set_load(self.path.x(self.s), self.path.x_ref)

    def final_counters(self) -> dict:
        return {}
