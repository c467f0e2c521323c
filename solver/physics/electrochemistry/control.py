"""Solution of a time step: the fields and the free control unknowns together.

The fields (x, phi_e) form one blocked Newton problem at given particle potentials
(:class:`~solver.physics.electrochemistry.fields.FieldSolver`); the few control unknowns
obey a small algebraic system (:class:`~solver.physics.electrochemistry.circuit.Circuit`:
total current = I, Ohm's law of the contacts). The sensitivity of the fields to a
potential, dU/dq = -J^-1 dF/dq, one more solve with the factorised field Jacobian per
unknown, gives the Schur complement of the bordered (fields + potentials) system, used two
ways:

* fast path (:meth:`ControlSolve.coupled_newton`): Newton's method on fields and
  potentials together, one factorisation per iteration; it hands over as soon as it leaves
  the easy regime (large potential updates, a cut-off, no quick convergence);
* robust path (:meth:`ControlSolve.nested`): an outer Newton iteration on the control
  system whose every iterate has converged fields (the SNES solve), with a bracket on V
  (uniform galvanostatic) so that it never loses the solution near a cut-off.

Why not a monolithic system with a real-valued space: the field solve stays a standard
DOLFINx problem (no extra dependency), and a potentiostatic hold is the same solve without
outer unknowns. Both paths converge quadratically, to the same tolerances.
"""

from __future__ import annotations

import math

import numpy as np

from solver.physics.electrochemistry.circuit import Circuit
from solver.physics.electrochemistry.fields import FieldSolver
from solver.physics.electrochemistry.protocol import ECStepResult, Segment

#: largest change of a potential in one update of the control iteration (V)
MAX_POTENTIAL_UPDATE = 0.1
#: iterations of the coupled Newton method (the fast path of a control step) before it
#: hands over to the nested iteration
FAST_NEWTON_ITERATIONS = 8


def predict(u: np.ndarray, seg: Segment, dt: float, current: float, last: tuple | None,
            jacobian: np.ndarray | None) -> np.ndarray:
    """A first guess of the control unknowns ``u`` for the next step: linear extrapolation in
    time within a segment (``last``: the unknowns and dt of the previous step of the
    segment, or None), at a new current a move along the last control Jacobian (the cell
    current is ``current``), by at most 3 MAX_POTENTIAL_UPDATE."""
    if seg.potentiostatic:
        return u
    delta = None
    if last is not None and last[1] > 0:
        u_prev, dt_prev = last
        delta = (u - u_prev) * min(dt / dt_prev, 2.0)
    elif jacobian is not None and jacobian.shape[0] == u.size:
        rhs = np.zeros(u.size)
        rhs[-1] = seg.current - current
        try:
            delta = np.linalg.solve(jacobian, rhs)
        except np.linalg.LinAlgError:
            delta = None
    if delta is None or not np.all(np.isfinite(delta)):
        return u
    big = np.max(np.abs(delta))
    if big > 3 * MAX_POTENTIAL_UPDATE:
        delta *= 3 * MAX_POTENTIAL_UPDATE / big
    return u + delta


class ControlSolve:
    """One solve of the fields and the free control unknowns at the present dt (from
    x_old): :meth:`solve` tries :meth:`coupled_newton`, then :meth:`nested`.

    Args:
        fields: the Newton solver of the fields.
        circuit: the circuit of the cell.
        u: first guess of all control unknowns.
        I_app: cell current (A, discharge positive) of a galvanostatic segment.
        V_hold: the held voltage of a potentiostatic segment (None: galvanostatic).
        limit: the cell voltage is not searched past it (galvanostatic): a current that
            would need it is reported as ``beyond_cutoff``.

    After a converged solve, ``u``, ``current`` and ``voltage`` are the solution;
    ``jacobian`` is the last control Jacobian of a galvanostatic solve (None if none was
    formed), whether it converged or not.
    """

    def __init__(self, fields: FieldSolver, circuit: Circuit, u: np.ndarray, I_app: float,
                 V_hold: float | None, limit: float | None = None):
        self.fields, self.circuit = fields, circuit
        self.I_app, self.V_hold, self.limit = I_app, V_hold, limit
        self.hold = V_hold is not None
        self.kV = 0 if circuit.uniform else circuit.m  # position of V in the free unknowns (galvanostatic)
        self.down = I_app > 0  # discharge: the voltage falls toward the limit
        self.guess = u
        self.u = self.current = self.voltage = None
        self.jacobian = None

    def solve(self) -> ECStepResult:
        """The fast path, and the nested iteration if the fast path gives up (counting the
        work of both)."""
        res = self.coupled_newton()
        if res.converged:
            return res
        res.reason = ""
        return self.nested(res)

    def _past_limit(self, w: np.ndarray) -> bool:
        """The cell voltage of the free unknowns w lies past the search limit (galvanostatic)."""
        if self.limit is None or self.hold:
            return False
        return w[self.kV] < self.limit if self.down else w[self.kV] > self.limit

    def _accept(self, q: np.ndarray, V: float, I: np.ndarray) -> None:
        """Keep the converged control unknowns, cell current and voltage."""
        self.u = self.circuit.unknowns(q, V)
        self.current = float(I.sum())
        self.voltage = V

    def coupled_newton(self) -> ECStepResult:
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
        solver (absolute, or relative to the first residual) and :meth:`Circuit.converged`."""
        fields, circuit, hold, kV = self.fields, self.circuit, self.hold, self.kV
        I_app = self.I_app
        res = ECStepResult(False)
        rtol, atol = fields.tolerances()
        w = circuit.free(self.guess, self.V_hold)
        if self.limit is not None and not hold and (w[kV] <= self.limit if self.down else w[kV] >= self.limit):
            res.reason = "the first guess of the voltage is at the search limit"
            return res
        start = fields.values()
        norm0 = last = None
        for it in range(FAST_NEWTON_ITERATIONS):
            q, V = circuit.split(w, self.V_hold)
            circuit.set_potentials(q)
            fnorm = fields.residual_norm()
            I = circuit.currents()
            r = circuit.residual(q, V, I, I_app, hold)
            if not (math.isfinite(fnorm) and np.all(np.isfinite(r))):
                break
            if norm0 is None:
                norm0 = fnorm
            elif it >= 2 and fnorm > 0.5 * last:
                break  # stagnating: quadratic convergence would be well under way by now
            last = fnorm
            if fnorm <= max(atol, rtol * norm0) and circuit.converged(r, I_app, hold):
                self._accept(q, V, I)
                res.converged = res.coupled = True
                res.outer_iterations = it
                return res
            dU = fields.newton_step()
            res.newton_iterations += 1
            res.solves = 1
            Z = []
            try:
                dw = np.zeros(0)
                if w.size:
                    # the control residual after the field step, then the control update
                    r_field = circuit.residual(q, V, I + circuit.current_change(dU), I_app, hold)
                    G, Z = circuit.sensitivities()
                    Jc = circuit.jacobian(G, hold)
                    dw = -np.linalg.solve(Jc, r_field)
                    if not hold:
                        self.jacobian = Jc
                if w.size and (not np.all(np.isfinite(dw)) or np.max(np.abs(dw)) > MAX_POTENTIAL_UPDATE):
                    break
                if self._past_limit(w + dw):
                    break
                fields.move(Z, dw[: circuit.m] if w.size else np.zeros(0), dU)
                w = w + dw
            except np.linalg.LinAlgError:
                break
            finally:
                dU.destroy()
                for z in Z:
                    z.destroy()
        fields.set_values(start)
        res.reason = "the coupled Newton iteration left its easy regime"
        return res

    def nested(self, res: ECStepResult) -> ECStepResult:
        """The robust path: Newton on the control equations with the exact Jacobian from
        the field sensitivities, every iterate with converged fields, updates of at most
        MAX_POTENTIAL_UPDATE; with one unknown (uniform, galvanostatic) the iterate stays
        inside the bracket of voltages found so far. The cell voltage is not searched past
        ``limit``. A field solve that fails halves the last update. Counts into ``res``."""
        fields, circuit, hold, kV, limit = self.fields, self.circuit, self.hold, self.kV, self.limit
        I_app = self.I_app
        w = circuit.free(self.guess, self.V_hold)
        if self._past_limit(w):
            w[kV] = limit
        good = None  # (w, fields) of the last converged field solve
        step = None
        bracket = [-math.inf, math.inf]  # uniform galvanostatic: V known too low / too high
        for it in range(40):
            q, V = circuit.split(w, self.V_hold)
            circuit.set_potentials(q)
            ok, its = fields.solve()
            res.newton_iterations += its
            res.solves += 1
            if not ok:
                if good is None:
                    res.reason = "the field Newton solve did not converge"
                    return res
                fields.set_values(good[1])
                step = 0.5 * step
                if np.max(np.abs(step)) < 1e-7:
                    res.reason = "the field solve fails for every change of the potentials"
                    return res
                w = good[0] + step
                continue
            I = circuit.currents()
            r = circuit.residual(q, V, I, I_app, hold)
            good = (w.copy(), fields.values())
            if circuit.converged(r, I_app, hold):
                self._accept(q, V, I)
                res.converged = True
                res.outer_iterations = it
                return res
            if circuit.uniform and not hold:
                if r[0] > 0:
                    bracket[0] = max(bracket[0], w[0])  # too much current: V must rise
                else:
                    bracket[1] = min(bracket[1], w[0])
            if its == 0:
                fields.factorise()  # else the last Newton step's factorisation is close enough
            G, Z = circuit.sensitivities()
            Jc = circuit.jacobian(G, hold)
            if not hold:
                self.jacobian = Jc
            try:
                dw = -np.linalg.solve(Jc, r)
            except np.linalg.LinAlgError:
                res.reason = "singular control Jacobian (no current responds to the potentials)"
                return res
            big = np.max(np.abs(dw))
            if big > MAX_POTENTIAL_UPDATE:
                dw *= MAX_POTENTIAL_UPDATE / big
            if self._past_limit(w + dw):
                if abs(w[kV] - limit) < 1e-12:
                    res.beyond_cutoff = True
                    res.reason = f"the current needs a cell voltage beyond {limit:.3f} V"
                    for z in Z:
                        z.destroy()
                    return res
                dw *= (limit - w[kV]) / dw[kV]
            if circuit.uniform and not hold and not bracket[0] < w[0] + dw[0] < bracket[1]:
                if math.isfinite(bracket[0]) and math.isfinite(bracket[1]):
                    dw[0] = 0.5 * (bracket[0] + bracket[1]) - w[0]
            step = dw
            fields.move(Z, dw[: circuit.m])
            for z in Z:
                z.destroy()
            w = w + dw
        res.reason = "the control iteration did not converge in 40 updates"
        return res
