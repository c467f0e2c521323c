"""Solution schemes for the coupled displacement/damage problem of one load step.

* ``staggered``: plain alternate minimisation (AM): solve u at fixed d, then d at fixed
  u (bound-constrained), until the damage changes by less than ``tolerance``. Robust,
  slow when a crack propagates. Kept as the reference.
* ``accelerated`` (default): over-relaxed AM (Farrell & Maurini, IJNME 109, 2017) whose
  elasticity and damage solves are inexact (one Newton step, enough as the iteration converges),
  composed with a monolithic Newton method on (u, d) with the damage bounds (PETSc
  SNES vinewtonrsls, MUMPS): once the AM increment falls below ``switch_tolerance``
  Newton finishes the step in a few iterations. An attempt whose residual rises above
  its first one is stopped there; a failed attempt is discarded and AM continues (with a
  tighter switch).
* ``anderson``: AM with Anderson acceleration of the damage iterates (Storvik et al.,
  CMAME 381, 2021), projected on the bounds.

Every scheme returns a :class:`StepResult` with the work done (elasticity and damage
solves, Newton iterations, Krylov iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

#: a damage iterate that comes back to within this fraction of the last change of where it
#: was two sweeps earlier is taken as a two-cycle of the iteration
CYCLE_RATIO = 0.1
#: with a variational driving force, a sweep that changes the damage by at least
#: RUNNING_CHANGE somewhere and whose net damage increase is at least RUNNING_FRACTION of
#: its total change (the damage grows at least three times as much as it falls back) is
#: progress, a crack that runs, not stagnation. Measured on the unstable crack of the
#: tension benchmark: changes of 0.015-0.04 per sweep for about 300 sweeps, fractions
#: 0.75-0.99 with over-relaxation and 1.0 without; counted as stagnation, the fallback to
#: plain sweeps took more than 2000 sweeps. Smaller changes are not taken as running: on
#: the shear benchmark an iteration held a constant change of 1.9e-4 with a net increase
#: for over 1000 sweeps, which only the fallbacks end
RUNNING_CHANGE = 1e-2
RUNNING_FRACTION = 0.5


@dataclass
class StepResult:
    converged: bool
    iterations: int = 0
    elastic_solves: int = 0
    damage_solves: int = 0
    newton_iterations: int = 0
    linear_iterations: int = 0
    cycles: int = 0
    monotone: bool = False
    residual: float = 0.0
    reason: str = ""


class Accelerator:
    """Post-processing of the AM damage iterates: ``update(x, g)`` receives the
    iterate x and its image g = G(x) under one u + d sweep (owned values) and returns
    the next iterate (before projection on the bounds)."""

    def __init__(self, kind: str, depth: int = 5, relaxation: float = 1.0, comm: MPI.Comm = MPI.COMM_WORLD):
        self.kind, self.depth, self.omega, self.comm = kind, depth, relaxation, comm
        self.reset()

    def reset(self):
        self.X: list[np.ndarray] = []
        self.F: list[np.ndarray] = []

    def update(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        f = g - x
        if self.kind in ("staggered", "none"):
            return g
        if self.kind == "overrelaxed":
            return x + self.omega * f
        # Anderson type II, depth m, on the fixed-point residual f = G(x) - x
        self.X.append(x.copy())
        self.F.append(f.copy())
        if len(self.F) > self.depth + 1:
            self.X.pop(0)
            self.F.pop(0)
        m = len(self.F) - 1
        if m == 0:
            return g
        dF = np.stack([self.F[i + 1] - self.F[i] for i in range(m)], axis=1)
        dX = np.stack([self.X[i + 1] - self.X[i] for i in range(m)], axis=1)
        A = self.comm.allreduce(dF.T @ dF, op=MPI.SUM)
        b = self.comm.allreduce(dF.T @ f, op=MPI.SUM)
        reg = 1e-10 * np.trace(A) / max(m, 1) + 1e-300
        try:
            gamma = np.linalg.solve(A + reg * np.eye(m), b)
        except np.linalg.LinAlgError:
            self.reset()
            return g
        return g - (dX + dF) @ gamma


class MonolithicNewton:
    """Newton's method on the coupled residual [F_u, F_d] with lower <= d <= upper.

    Args:
        u, d: the unknowns; F_u, F_d: their residual forms; bcs: Dirichlet conditions
        of both fields; lower, upper: functions with the damage bounds.
        options: PETSc options over :data:`solver.numerics.petsc.NEWTON_OPTIONS`.
        iterative: None for the LU of the options, or the near-nullspace of the
            displacement (or None in it) for GMRES with block Gauss-Seidel
            (:mod:`solver.numerics.blocks`): ``(nullspace,)``.
    """

    def __init__(self, u, d, F_u, F_d, bcs, lower: fem.Function, upper: fem.Function, options: dict,
                 prefix: str = "ssbfrac_newton_", iterative: tuple | None = None):
        import dolfinx.fem.petsc as fpetsc

        from solver.numerics.blocks import ITERATIVE_BLOCKED, use_block_preconditioner
        from solver.numerics.petsc import NEWTON_OPTIONS, NEWTON_SNES, set_petsc_options

        V, D = u.function_space, d.function_space
        J = [[ufl.derivative(F_u, u, ufl.TrialFunction(V)), ufl.derivative(F_u, d, ufl.TrialFunction(D))],
             [ufl.derivative(F_d, u, ufl.TrialFunction(V)), ufl.derivative(F_d, d, ufl.TrialFunction(D))]]
        self.problem = fpetsc.NonlinearProblem([F_u, F_d], [u, d], J=J, bcs=bcs, kind="mpi",
                                               petsc_options_prefix=prefix)
        self.snes = self.problem.solver
        opts = dict(NEWTON_OPTIONS) if iterative is None else {**NEWTON_SNES, **ITERATIVE_BLOCKED}
        opts.update(options)
        set_petsc_options(self.snes, prefix, opts)
        self.blocks = None
        if iterative is not None:  # the displacement's rows come first (never bound-constrained)
            bs = V.dofmap.index_map_bs
            self.blocks = use_block_preconditioner(self.snes.getKSP(), V.dofmap.index_map.size_local * bs,
                                                   prefix, nullspace=iterative[0], block_size=bs)
        self._f0 = 0.0
        self.snes.setConvergenceTest(self._converged)
        self._fpetsc = fpetsc
        self.u, self.d = u, d
        self.lower, self.upper = lower, upper
        self.lb = fpetsc.create_vector([V, D], kind="mpi")
        self.ub = self.lb.duplicate()
        self._ulo, self._uhi = fem.Function(V), fem.Function(V)
        self._ulo.x.array[:] = -PETSc.INFINITY
        self._uhi.x.array[:] = PETSc.INFINITY

    def _converged(self, snes, it: int, norms) -> int:
        """PETSc's default test on the residual norm (absolute, relative to the first), and
        a divergence test: from the second iteration on, a residual above the first means
        the attempt has failed (a crack that is still running); stop it there instead of
        at the iteration cap, alternate minimisation goes on."""
        fnorm = norms[2]
        rtol, atol, _, _ = snes.getTolerances()
        reason = PETSc.SNES.ConvergedReason
        if it == 0:
            self._f0 = fnorm
        if not math.isfinite(fnorm):
            return reason.DIVERGED_FNORM_NAN
        if fnorm <= atol:
            return reason.CONVERGED_FNORM_ABS
        if fnorm <= rtol * self._f0:
            return reason.CONVERGED_FNORM_RELATIVE
        if it >= 2 and fnorm > self._f0:
            return reason.DIVERGED_DTOL
        return reason.CONVERGED_ITERATING

    def solve(self) -> tuple[bool, int, int]:
        """Returns (converged, Newton iterations, Krylov iterations)."""
        constrained = self.snes.getType().startswith("vi")
        if constrained:
            self._fpetsc.assign([self._ulo, self.lower], self.lb)
            self._fpetsc.assign([self._uhi, self.upper], self.ub)
            self.snes.setVariableBounds(self.lb, self.ub)
        self.problem.solve()
        if not constrained:  # bounds that cannot be active (solver.numerics.petsc.damage_unconstrained)
            np.clip(self.d.x.array, self.lower.x.array, self.upper.x.array, out=self.d.x.array)
        reason = self.snes.getConvergedReason()
        self.u.x.scatter_forward()
        self.d.x.scatter_forward()
        return reason > 0, self.snes.getIterationNumber(), self.snes.getLinearSolveIterations()


def alternate_minimisation(sim, spec, accelerator: Accelerator, newton: MonolithicNewton | None = None,
                           switch_tolerance: float = 0.0, descent: bool = False) -> StepResult:
    """Alternate minimisation for the current load, optionally finished by Newton.

    ``descent``: the sweeps minimise an energy (the driving force is the derivative of the
    stored energy), so a sweep that only adds damage is a crack that runs, never a cycle:
    such sweeps do not count as stagnation and end the fallbacks taken before the crack ran
    (see :data:`RUNNING_FRACTION`). With the Rankine force they do: there over-relaxed
    sweeps can add damage without settling (measured on the default case: 0.02-0.04 per
    sweep for 2000 sweeps), what the fallbacks are for.

    ``sim`` provides ``elastic`` and ``damage`` sub-problems, ``d``, ``u``, ``d_prev``,
    the owned damage DOF count and the fixed damage DOFs."""
    comm = sim.comm
    d = sim.d
    n = d.function_space.dofmap.index_map.size_local
    lower = sim.d_prev.x.array[:n]
    upper = np.ones(n)
    fixed = sim.damage.fixed_dofs
    upper[fixed[fixed < n]] = 0.0
    res = StepResult(False)
    el0, l0 = sim.elastic.solves, sim.elastic.linear_iterations
    dm0, dl0 = sim.damage.solves, sim.damage.linear_iterations
    accelerator.reset()
    err = math.inf
    switch = switch_tolerance
    newton_failures = 0
    # a reused LU factorisation would make the solve inexact: iterative solves only
    reuse = getattr(spec, "reuse_preconditioner", False) and sim.elastic.iterative
    fresh_its = None  # Krylov iterations right after the last preconditioner set-up
    best, since_best = math.inf, 0  # stagnation watch
    x_back = None  # the iterate before the last one (two-cycle watch)
    stagnation, newton_after = spec.stagnation, spec.newton_after

    kind0 = accelerator.kind

    def running(x: np.ndarray, g: np.ndarray) -> bool:
        """A crack that runs (an unstable growth) keeps the damage change of a sweep from
        falling while the iteration makes steady progress: the sweep only adds damage. That
        is not stagnation; neither a fallback to plain sweeps (several times slower on a
        running crack) nor Newton (which fails there) helps it."""
        delta = g - x
        added, moved = comm.allreduce(np.array([delta.sum(), np.abs(delta).sum()]) if n else np.zeros(2),
                                      op=MPI.SUM)
        return added >= RUNNING_FRACTION * moved > 0.0

    inexact_u = sim.elastic.inexact

    def finish(ok: bool, k: int, reason: str = "") -> StepResult:
        accelerator.kind = kind0
        sim.damage.floor = None
        if sim.elastic.inexact != inexact_u:
            sim.elastic.set_inexact(inexact_u)
        if reuse:
            sim.elastic.reuse_preconditioner(False)
        res.converged, res.iterations, res.residual, res.reason = ok, k, err, reason
        res.elastic_solves = sim.elastic.solves - el0
        res.damage_solves = sim.damage.solves - dm0
        res.linear_iterations += (sim.elastic.linear_iterations - l0) + (sim.damage.linear_iterations - dl0)
        return res

    for k in range(1, spec.max_iterations + 1):
        if reuse:
            sim.elastic.reuse_preconditioner(fresh_its is not None)
        ok_u, its_u = sim.elastic.solve()  # inexact mode: one Newton step, ok_u says if it converged
        if reuse:
            if fresh_its is None:
                fresh_its = max(its_u, 1)
            elif its_u > 2 * fresh_its + 5:
                fresh_its = None  # the stale preconditioner got poor: set it up again next time
        if not ok_u and not sim.elastic.inexact:
            return finish(False, k, "elasticity did not converge")
        x = d.x.array[:n].copy()
        ok_d, _ = sim.damage.solve()
        if not ok_d:
            return finish(False, k, "damage solver did not converge")
        g = d.x.array[:n]
        err = comm.allreduce(float(np.max(np.abs(g - x))) if n else 0.0, op=MPI.MAX)
        if sim.monitor is not None:
            sim.monitor(k, err)
        if err < spec.tolerance and ok_u and sim.damage.last_converged:
            return finish(True, k)
        if err < spec.tolerance and not ok_u and sim.elastic.inexact:
            # the damage has settled but the elasticity's single Newton step has not converged
            # (a split makes it nonlinear, and where the damage still creeps it may never
            # do so in one step: on the shear benchmark err fell to 7e-6 over 1200 sweeps):
            # solve it exactly from here on
            sim.elastic.set_inexact(False)
        if descent and err >= RUNNING_CHANGE and running(x, g):
            best, since_best = min(err, best), 0
            if accelerator.kind != kind0 or res.monotone:
                # back from the fallbacks (taken while the crack had not started to run):
                # a descent method needs neither, and over-relaxation pays on a running crack
                accelerator.kind, res.monotone, sim.damage.floor = kind0, False, None
                accelerator.reset()
        elif err < 0.7 * best:
            best, since_best = err, 0
        else:
            since_best += 1
        if since_best >= newton_after and newton is not None and switch > 0 and newton_failures == 0:
            # no progress for a few sweeps: try Newton from here, once (a crack that is still
            # running also stalls the damage change, and Newton fails there; after a failure
            # only a smaller change retries it)
            switch = max(switch, 2 * err)
        if since_best >= stagnation:
            # no progress for a while: over-relaxation can make the projected iteration
            # cycle where the damage reaches its bounds; fall back to plain alternate
            # minimisation. With the Rankine driving force, which is not the derivative of
            # the stored energy, plain sweeps can wander too (longer cycles than the two-cycle
            # watch sees): if they also make no progress, the damage is held from then on at
            # least at its present iterate (irreversibility across the iterations of the
            # step, as a history field would): a non-decreasing, bounded sequence converges
            since_best, best = 0, err
            if accelerator.kind != "staggered":
                accelerator.kind = "staggered"
                accelerator.reset()
            elif not res.monotone:
                res.monotone = True
        if res.monotone:
            sim.damage.floor = g.copy()
        # Newton finishes an iteration that is converging; one whose damage has already
        # settled (only the inexact solves are left to confirm) finishes faster by itself
        if newton is not None and spec.tolerance <= err < switch:
            u_backup, d_backup = sim.u.x.array.copy(), d.x.array.copy()
            ok, its, lin = newton.solve()
            res.newton_iterations += its
            res.linear_iterations += lin
            if ok:
                return finish(True, k)
            newton_failures += 1
            sim.u.x.array[:] = u_backup
            d.x.array[:] = d_backup
            switch *= 0.1
            if newton_failures >= 3:
                switch = 0.0
            continue
        # a two-cycle (the Rankine driving force is not the derivative of the stored energy,
        # so alternate minimisation is not a descent method and can flip between two damage
        # fields): the iterate comes back to where it was two sweeps ago; take the midpoint
        back = comm.allreduce(float(np.max(np.abs(g - x_back))) if n and x_back is not None else math.inf,
                              op=MPI.MAX)
        if back < CYCLE_RATIO * err:
            nxt = 0.5 * (x + g)
            accelerator.reset()
            res.cycles += 1
        else:
            nxt = accelerator.update(x, g.copy())
        x_back = x
        np.clip(nxt, lower, upper, out=nxt)
        d.x.array[:n] = nxt
        d.x.scatter_forward()
    return finish(False, spec.max_iterations, "iteration cap reached")
