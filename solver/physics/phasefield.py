"""Phase-field fracture: damage, driving forces, irreversibility, crack measures.

Energy (Tanne et al. 2018 convention, ``ell`` as in Pham-Marigo):

    E(u, d) = int [ a(d) psi_plus(eps_e) + psi_minus(eps_e) ] dx
            + int_surface Gc / c_w ( w(d) / ell + ell |grad d|^2 ) dx

with a(d) the degradation in the damageable phases (1 elsewhere):
AT1: a = (1 - d)^2 + k_res, w(d) = d, c_w = 8/3 (elastic phase, needs d >= 0);
AT2: a = (1 - d)^2 + k_res, w(d) = d^2, c_w = 2;
cohesive (PF-CZM): a = rational g(d) of :mod:`solver.physics.cohesive`, w(d) = 2 d - d^2,
c_w = pi (elastic phase up to the strength f_t, needs d >= 0).
The surface term covers the damageable phases and a band of the neighbouring phases as
wide as the damage profile's support, so a crack along a phase boundary pays its whole
profile (without the band it would pay half).

The damage sub-problem at fixed displacement minimises

    int chi [ a(d) H + Gc / c_w ( w(d) / ell + ell |grad d|^2 ) ] dx

over d_lower <= d <= 1, where H is the crack driving force:

* ``energy``: H = psi_plus (variational; with split none/amor/spectral);
* ``rankine``: H = <sigma_1>^2 / (2 E) with sigma_1 the largest principal stress of
  the undamaged elastic stress: tension drives cracks, compression never does
  (the driving force of phase-field cohesive models; in uniaxial tension it equals
  the 1D elastic energy, so the nucleation stress is the same as in 1D).

Irreversibility: ``bounds`` (default) makes d_lower the damage of the last accepted
step (bound-constrained Newton, PETSc SNES vinewtonrsls); ``history`` uses Miehe's
history field H_n = max over the past of H, with 0 <= d <= 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ufl
from dolfinx import fem
from petsc4py import PETSc

from solver.numerics.petsc import DAMAGE_OPTIONS
from solver.physics import elasticity as el
from solver.physics.cohesive import CW, SOFTENING

def w(d, model: str):
    """Crack geometric function: AT1 d, AT2 d^2, cohesive 2 d - d^2."""
    if model == "AT1":
        return d
    if model == "AT2":
        return d**2
    return 2.0 * d - d**2


def degradation(d, k_res: float, softening: str | None = None, a1=None):
    """Stiffness degradation: (1 - d)^2 + k_res (AT1/AT2), or the rational function of the
    cohesive model (``softening`` and its DG0 coefficient ``a1``) plus k_res."""
    if softening is None:
        return (1.0 - d) ** 2 + k_res
    p, a2, a3 = SOFTENING[softening]
    num = (1.0 - d) ** 2 if p == 2.0 else ufl.max_value(1.0 - d, 0.0) ** p  # no NaN from d > 1 by round-off
    return num / (num + a1 * d * (1.0 + a2 * d + a2 * a3 * d**2)) + k_res


@dataclass
class DamageSettings:
    model: str = "AT1"
    split: str = "spectral"
    driving_force: str = "rankine"
    residual_stiffness: float = 1e-6
    irreversibility: str = "bounds"
    softening: str = "linear"
    a1: object = None  # cohesive: the DG0 field of a1 = 4 l_ch / (pi ell)

    def g(self, d):
        """The degradation function of these settings."""
        if self.model != "cohesive":
            return degradation(d, self.residual_stiffness)
        return degradation(d, self.residual_stiffness, self.softening, self.a1)


def driving_force(eps_e, lmbda, mu, E, s: DamageSettings, gdim: int):
    """The crack driving force H of the damage problem. With ``rankine``, E is the modulus
    of the 1D theory: Young's modulus for AT1/AT2, lambda + 2 mu for the cohesive model."""
    if s.model == "cohesive" and s.driving_force == "rankine":
        E = lmbda + 2.0 * mu
    if s.driving_force == "energy":
        plus, _ = el.split_energy(eps_e, lmbda, mu, s.split, gdim)
        return plus
    if s.driving_force == "rankine":
        s1 = el.max_principal(el.stress3(eps_e, lmbda, mu), gdim)
        return 0.5 * (0.5 * (s1 + abs(s1))) ** 2 / E
    raise ValueError(f"unknown driving force {s.driving_force!r}; allowed: energy, rankine")


def stored_energy(eps_e, lmbda, mu, d, chi, s: DamageSettings, gdim: int):
    """Elastic energy density with the damage degradation (chi = 1 where damageable)."""
    plus, minus = el.split_energy(eps_e, lmbda, mu, s.split, gdim)
    a = chi * s.g(d) + (1.0 - chi)
    return a * plus + minus


def fracture_density(d, Gc, ell, chi, model: str):
    return chi * Gc / CW[model] * (w(d, model) / ell + ell * ufl.inner(ufl.grad(d), ufl.grad(d)))


def crack_density(d, ell, chi, model: str):
    """Regularised crack surface density (its integral is the crack length in 2D)."""
    return chi / CW[model] * (w(d, model) / ell + ell * ufl.inner(ufl.grad(d), ufl.grad(d)))


class DamageProblem:
    """Bound-constrained minimisation of the damage functional at fixed displacement.

    Args:
        d: damage function (P1).
        lower: function holding the lower bound (last accepted damage, or 0).
        H: crack driving force (UFL expression of the displacement).
        Gc, ell, chi: DG0 fields (toughness, length, degraded indicator: 1 where damage
            softens the material and the driving force acts).
        chi_s: DG0 indicator of where crack surface costs energy (default ``chi``): the
            degraded phases and a band of the neighbouring phases as wide as the damage
            profile, so that a crack along a phase boundary pays its whole profile.
        fixed_dofs: damage DOFs that must stay 0 (interior of non-damageable phases).
        petsc_options: the complete PETSc options (solver.numerics.petsc.damage_options); empty:
            :data:`DAMAGE_OPTIONS` (MUMPS LU).
        dx: integration measure (default ``ufl.dx``; the coupled problem passes one with
            a fixed quadrature degree: the driving forces are not polynomials and UFL
            would otherwise pick a needlessly high degree).
    """

    def __init__(self, d: fem.Function, lower: fem.Function, H, Gc, ell, chi, settings: DamageSettings,
                 fixed_dofs: np.ndarray, petsc_options: dict, prefix: str = "ssbfrac_damage_", dx=None,
                 chi_s=None):
        from dolfinx.fem.petsc import NonlinearProblem

        self.d = d
        self.lower = lower
        D = d.function_space
        dx = dx if dx is not None else ufl.dx
        chi_s = chi if chi_s is None else chi_s
        energy = (chi * settings.g(d) * H + fracture_density(d, Gc, ell, chi_s, settings.model)) * dx
        F = ufl.derivative(energy, d, ufl.TestFunction(D))
        J = ufl.derivative(F, d, ufl.TrialFunction(D))
        bc = fem.dirichletbc(PETSc.ScalarType(0), fixed_dofs, D)
        opts = dict(petsc_options or DAMAGE_OPTIONS)  # complete options (solver.numerics.petsc.damage_options)
        self.problem = NonlinearProblem(F, d, J=J, bcs=[bc], petsc_options_prefix=prefix)
        self.snes = self.problem.solver
        el.set_petsc_options(self.snes, prefix, opts)
        self.upper = fem.Function(D)
        self.upper.x.array[:] = 1.0
        self.upper.x.array[fixed_dofs] = 0.0
        self.fixed_dofs = fixed_dofs
        self.lb = fem.Function(D)
        #: optional owned-DOF array: a further lower bound (alternate minimisation's
        #: monotone fallback, solver.numerics.schemes)
        self.floor: np.ndarray | None = None
        self.solves = 0
        self.linear_iterations = 0
        self.inexact = False
        self.last_converged = False
        self._max_it = int(opts.get("snes_max_it", 50))

    def set_inexact(self, inexact: bool) -> None:
        """Inexact mode: at most one Newton step per solve (for schemes that iterate anyway);
        ``last_converged`` then says whether that step solved the problem."""
        self.inexact = inexact
        self.snes.setTolerances(max_it=1 if inexact else self._max_it)

    def solve(self) -> tuple[bool, int]:
        self.lb.x.array[:] = self.lower.x.array
        if self.floor is not None:
            n = len(self.floor)
            np.maximum(self.lb.x.array[:n], self.floor, out=self.lb.x.array[:n])
        self.lb.x.array[self.fixed_dofs] = 0.0
        constrained = self.snes.getType().startswith("vi")
        if constrained:
            self.snes.setVariableBounds(self.lb.x.petsc_vec, self.upper.x.petsc_vec)
        self.problem.solve()
        if not constrained:  # bounds that cannot be active (solver.numerics.petsc.damage_unconstrained):
            # round-off, or the floor of the monotone fallback (solver.numerics.schemes), by projection
            np.clip(self.d.x.array, self.lb.x.array, self.upper.x.array, out=self.d.x.array)
        reason = self.snes.getConvergedReason()
        its = self.snes.getIterationNumber()
        self.solves += 1
        self.linear_iterations += self.snes.getLinearSolveIterations()
        self.d.x.scatter_forward()
        self.last_converged = reason > 0
        ok = reason > 0 or (self.inexact and reason == PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT)
        return ok, its
