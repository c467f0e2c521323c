"""One step loop for every loading: adaptive step sizes, the crack-growth guard, counters.

A *stepper* advances the state of a run by one step of a given size: a load increment
of a prescribed lithiation (:class:`solver.runs.prescribed.PrescribedLoading`) or a time
step of galvanostatic cycling (:class:`solver.runs.cycling.CyclingLoading`). :func:`march`
walks it to its end:

    while not stepper.done:
        save the state; attempt a step of size h (the stepper may shorten it)
        accepted if it converged and the crack did not grow too brutally (GrowthGuard)
        accepted: report it, grow h after an easy step, maybe checkpoint
        rejected: restore the state, report it, cut h

A step that fails at the smallest size (or, without adaptive stepping, at all) stops the
run with :class:`StepFailure`. The stepper protocol (duck-typed):

* ``done`` (bool), ``columns`` (its history columns), ``max_steps``;
* ``save()``, ``restore()``, ``attempt(h) -> Attempt``, ``measures()`` (of the solved
  step), ``accept(attempt) -> dict`` (its own values of the accepted step),
  ``rejected(attempt) -> dict`` (those of a rejected one), ``describe(attempt)``;
* ``progress_position()``, ``progress_info(measures, result)``, ``messages(attempt, measures)``;
* ``state()`` and ``load_state(state)`` for checkpoints (JSON types and numpy arrays),
  ``final_counters()``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from solver.numerics.schemes import StepResult


class StepFailure(RuntimeError):
    """A step could not be solved even at the smallest step size."""


COUNTERS = ("elastic_solves", "damage_solves", "newton_iterations", "iterations", "linear_iterations")


def new_counters() -> dict:
    return {k: 0 for k in COUNTERS}


def add_counters(counters: dict, res: StepResult) -> None:
    for k in COUNTERS:
        counters[k] += getattr(res, k)


def crack_progress(meas: dict, res: StepResult) -> str:
    """The crack part of a progress line (empty without fracture)."""
    if "crack_length" not in meas:
        return ""
    unit = "um" if "crack_length_sharp" in meas else "um^2"  # 3D measures a crack area (2D only has a sharp length)
    return f" crack={meas['crack_length']:.2f}{unit} it={res.iterations}"


@dataclass
class Attempt:
    """One attempted step.

    ``size``: the step taken (the stepper may shorten the one asked for, e.g. at a turning
    point of the load path or a cut-off voltage; 0 if it failed before deciding);
    ``position``: where it ends (load coordinate or time); ``result``: the work and
    outcome of the mechanics (and damage) solve; ``easy``: the step was easy enough to
    grow the next one; ``extra``: the stepper's own history values (e.g. Newton
    iterations of the electrochemistry); ``counters``: its own counters to add up."""

    size: float
    position: float
    result: StepResult
    easy: bool = False
    extra: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)


@dataclass
class StepRecord:
    """One accepted or rejected step, as handed to the recorder."""

    step: int
    accepted: bool
    position: float
    result: StepResult
    measures: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass
class StepSizes:
    """The step-size rule: start at ``initial``, never below ``smallest`` nor above
    ``largest``; times ``growth`` after an easy step, ``cut`` after a rejected one.
    Without ``adaptive`` the size stays at ``initial`` and a failed step stops the run."""

    initial: float
    smallest: float
    largest: float
    growth: float
    cut: float
    adaptive: bool = True

    def at_smallest(self, h: float) -> bool:
        return h <= self.smallest * 1.0001


class GrowthGuard:
    """Rejects a step whose crack grew too brutally (adaptive stepping with fracture).

    A step is rejected when the regularised crack length grew by more than
    ``max_crack_growth`` (default 20 ell), unless it is already the smallest step or the
    jump did not shrink when the step was cut (an unstable growth: a property of the
    solution, not of the step size, so it is accepted and reported). A rejected jump is
    remembered until the loading reaches the point of the rejected trial: a jump at least
    half as large on the way there (after the cut) is taken as that unstable growth.
    """

    def __init__(self, sim):
        """``sim``: the :class:`solver.physics.mechanics.MechanicsProblem` of the run."""
        ad = sim.case.fracture.adaptive
        self.active = ad.enabled and sim.fracture
        self.max_growth = math.inf
        if sim.fracture:
            ell = max(r["ell"] for r in sim.failure.values())
            self.max_growth = ad.max_crack_growth if ad.max_crack_growth is not None else 20.0 * ell
        self.last_crack = 0.0
        self._rejected = None  # crack growth of the last step rejected as too brutal
        self._rejected_at = None  # load coordinate (or time) of that rejected trial

    def accept(self, meas: dict, res: StepResult, smallest: bool, at: float | None = None) -> bool:
        """True if the solved step to load coordinate (or time) ``at`` may be accepted
        (sets ``res.reason`` otherwise, or when an unstable growth is accepted)."""
        if not self.active or smallest:
            return True
        growth = meas["crack_length"] - self.last_crack
        if growth <= self.max_growth:
            return True
        if self._rejected is not None and growth >= 0.5 * self._rejected:
            res.reason = f"unstable crack growth of {growth:.3g} um accepted"
            return True
        self._rejected, self._rejected_at = growth, at
        res.reason = f"crack grew by {growth:.3g} um (> {self.max_growth:.3g})"
        return False

    def accepted(self, meas: dict, at: float | None = None) -> None:
        """Record an accepted step (to ``at``)."""
        if at is None or self._rejected_at is None or at >= self._rejected_at * (1 - 1e-12):
            self._rejected = self._rejected_at = None
        if "crack_length" in meas:
            self.last_crack = meas["crack_length"]

    def state(self) -> dict:
        """What a checkpoint needs to continue: the crack length of the last accepted step
        (um), the growth of the last step rejected as too brutal (um, or None) and where
        that trial ended."""
        return {"last_crack": self.last_crack, "rejected": self._rejected, "rejected_at": self._rejected_at}

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state`."""
        self.last_crack = float(state["last_crack"])
        self._rejected = None if state["rejected"] is None else float(state["rejected"])
        at = state.get("rejected_at")
        self._rejected_at = None if at is None else float(at)


def march(stepper, sizes: StepSizes, guard: GrowthGuard, on_step, progress=None, resume: dict | None = None,
          at_boundary=None) -> dict:
    """Walk ``stepper`` to its end (see the module docstring); returns the counters.

    ``on_step(record)`` is called for every accepted and rejected :class:`StepRecord`.
    Checkpoints: ``at_boundary(state)``, if given, is called after every accepted step that
    does not end the loading, with the loop state (JSON types and numpy arrays: step size
    ``h``, step counts, counters, the guard's state, ``wall`` (s of solving so far) and the
    stepper's own ``stepper`` state). If it returns True the loop stops there; a later call
    with ``resume=state`` continues exactly from that point, once the fields of the
    problems have been restored."""
    h = sizes.initial
    counters = new_counters()
    step = accepted = rejected = 0
    wall0 = 0.0
    if resume is not None:
        h = float(resume["h"])
        step, accepted, rejected = int(resume["step"]), int(resume["accepted"]), int(resume["rejected"])
        counters.update({k: v for k, v in resume["counters"].items()})
        guard.load_state(resume["guard"])
        stepper.load_state(resume["stepper"])
        wall0 = float(resume["wall"])
    t_start = time.perf_counter() - wall0
    while not stepper.done:
        if step >= stepper.max_steps:
            raise RuntimeError(f"more than {stepper.max_steps} steps: the step size collapsed")
        stepper.save()
        att = stepper.attempt(h)
        step += 1
        res = att.result
        add_counters(counters, res)
        for k, v in att.counters.items():
            counters[k] = counters.get(k, 0) + v
        ok = res.converged
        if not ok and (sizes.at_smallest(h) or not sizes.adaptive):
            raise StepFailure(f"{stepper.describe(att)} failed at the smallest step: {res.reason}")
        meas = None
        if ok:
            meas = stepper.measures()
            ok = guard.accept(meas, res, sizes.at_smallest(att.size), at=att.position)
        if ok:
            meas.update(stepper.accept(att))
            guard.accepted(meas, at=att.position)
            accepted += 1
            meas["wall"] = time.perf_counter() - t_start
            on_step(StepRecord(step, True, att.position, res, meas, att.extra))
            if sizes.adaptive and att.easy:
                h = min(h * sizes.growth, sizes.largest)
            if progress is not None:
                progress.update(stepper.progress_position(), stepper.progress_info(meas, res))
                for text in stepper.messages(att, meas):
                    progress.message(text)
            if at_boundary is not None and not stepper.done:
                state = {"h": h, "step": step, "accepted": accepted, "rejected": rejected,
                         "counters": dict(counters), "guard": guard.state(),
                         "wall": time.perf_counter() - t_start, "stepper": stepper.state()}
                if at_boundary(state):
                    break
        else:
            rejected += 1
            where = stepper.describe(att)
            info = stepper.rejected(att)  # before the state goes back
            stepper.restore()
            info["wall"] = time.perf_counter() - t_start
            on_step(StepRecord(step, False, att.position, res, info, att.extra))
            h = max((att.size if att.size > 0 else h) * sizes.cut, sizes.smallest)
            if progress is not None:
                progress.message(f"{where} rejected ({res.reason}); new step {h:.3g}")
    counters.update({"steps": step, "accepted_steps": accepted, "rejected_steps": rejected})
    counters.update(stepper.final_counters())
    return counters
