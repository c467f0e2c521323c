"""Loadings prescribed along a path: the lithium fraction of every particle (a prescribed
lithiation), or the displacement of a boundary (mechanical tests, fracture benchmarks).

The load coordinate s runs from 0 to the number of path segments; segment k goes
linearly from path[k] to path[k + 1]. Steps never jump over a turning point. The
steppers of :func:`solver.numerics.stepping.march` for these loadings set the load and
solve the mechanics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solver.numerics.stepping import Attempt, StepSizes, crack_progress


@dataclass(frozen=True)
class LoadPath:
    """A piecewise-linear path of a scalar load through ``points``, ``duration`` s per segment."""

    points: tuple[float, ...]
    duration: float

    @property
    def length(self) -> float:
        return float(len(self.points) - 1)

    def value(self, s: float) -> float:
        """The load at coordinate s."""
        s = min(max(s, 0.0), self.length)
        k = min(int(math.floor(s)), len(self.points) - 2)
        t = s - k
        return self.points[k] + t * (self.points[k + 1] - self.points[k])

    def time(self, s: float) -> float:
        return s * self.duration

    def next_turn(self, s: float) -> float:
        """The first turning point (integer s) strictly after s."""
        return float(min(math.floor(s + 1e-12) + 1, self.length))


class PathLoading:
    """Stepper of a load prescribed along a path (see :mod:`solver.numerics.stepping`);
    subclasses say what the load is (:meth:`apply`) and what a row records."""

    #: the first history columns of a run (the mechanics' and the solver's follow)
    columns = ["step", "accepted", "time", "load"]
    max_steps = 1_000_000

    def __init__(self, mech, path: LoadPath):
        self.mech, self.path = mech, path
        self.s = 0.0
        self._saved_s = 0.0
        self.apply(path.value(0.0))

    def apply(self, value: float) -> None:
        raise NotImplementedError

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
        self.apply(self.path.value(self.s))

    def attempt(self, h: float) -> Attempt:
        """Load to min(s + h, next turning point); the step is easy when it took few iterations."""
        s_next = min(self.s + h, self.path.next_turn(self.s), self.path.length)
        self.apply(self.path.value(s_next))
        res = self.mech.solve_step()
        easy = res.iterations <= self.mech.case.fracture.adaptive.easy_iterations
        return Attempt(s_next - self.s, s_next, res, easy)

    def measures(self) -> dict:
        self.mech.update_outputs()
        return self.mech.measures()

    def row(self, s: float) -> dict:
        return {"time": self.path.time(s), "load": s}

    def accept(self, att: Attempt) -> dict:
        self.mech.accept()
        self.s = att.position
        return self.row(att.position)

    def rejected(self, att: Attempt) -> dict:
        return self.row(att.position)

    def initial_row(self) -> dict:
        return self.row(0.0)

    def describe(self, att: Attempt) -> str:
        return f"load step to {att.position:.6g}"

    def progress_position(self) -> float:
        return self.s

    @property
    def progress_total(self) -> float:
        return self.path.length

    def progress_info(self, meas: dict, res) -> str:
        return f"load={self.s:.3f} s1_SE={meas['sigma1_max_SE']:.0f}MPa" + crack_progress(meas, res)

    def messages(self, att: Attempt, meas: dict) -> list[str]:
        return [f"load {self.s:.4f}: {att.result.reason}"] if att.result.reason else []

    def where(self) -> str:
        """The present point, for messages."""
        return f"load {self.s:.4f}"

    def state(self) -> dict:
        return {"s": self.s}

    def load_state(self, state: dict) -> None:
        self.s = float(state["s"])
        self.apply(self.path.value(self.s))

    def final_counters(self) -> dict:
        return {}


class PrescribedLoading(PathLoading):
    """A uniform lithium fraction of every particle along ``loading.path`` (stress free at
    ``x_ref``)."""

    def __init__(self, mech, loading):
        self.x_ref = loading.x_ref if loading.x_ref is not None else loading.path[0]
        super().__init__(mech, LoadPath(tuple(loading.path), loading.duration))

    def apply(self, value: float) -> None:
        self.mech.set_load(value, self.x_ref)

    def progress_info(self, meas: dict, res) -> str:
        return f"x={meas['x']:.3f} s1_SE={meas['sigma1_max_SE']:.0f}MPa" + crack_progress(meas, res)


class DisplacementLoading(PathLoading):
    """A boundary moved along ``loading.path`` (um, internal units); each row records the
    displacement and the reaction force of the loaded facets."""

    columns = PathLoading.columns + ["displacement", "reaction_force"]

    def __init__(self, mech, loading):
        super().__init__(mech, LoadPath(tuple(loading.path), loading.duration))

    def apply(self, value: float) -> None:
        self.mech.set_displacement(value)

    def row(self, s: float) -> dict:
        out = super().row(s)
        out["displacement"] = self.path.value(s)
        return out

    def accept(self, att: Attempt) -> dict:
        out = super().accept(att)
        out["reaction_force"] = self.mech.reaction_force()
        return out

    def initial_row(self) -> dict:
        return {**self.row(0.0), "reaction_force": self.mech.reaction_force()}

    def progress_info(self, meas: dict, res) -> str:
        return f"U={self.path.value(self.s):.4g}um F={meas['reaction_force']:.4g}" + crack_progress(meas, res)
