"""Phase-field fracture: AT1/AT2 damage, driving forces, irreversibility, crack measures.

Energy (Tanne et al. 2018 convention, ``ell`` as in Pham-Marigo):

    E(u, d) = int [ a(d) psi_plus(eps_e) + psi_minus(eps_e) ] dx
            + int_damageable Gc / c_w ( w(d) / ell + ell |grad d|^2 ) dx

with a(d) = (1 - d)^2 + k_res in the damageable phases (1 elsewhere),
AT1: w(d) = d, c_w = 8/3 (elastic phase, needs d >= 0); AT2: w(d) = d^2, c_w = 2.

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
from mpi4py import MPI
from petsc4py import PETSc

from solver.numerics.petsc import DAMAGE_OPTIONS
from solver.physics import elasticity as el

CW = {"AT1": 8.0 / 3.0, "AT2": 2.0}


def w(d, model: str):
    return d if model == "AT1" else d**2


def degradation(d, k_res: float):
    return (1.0 - d) ** 2 + k_res


def homogeneous_strength(model: str, E: float, Gc: float, ell: float) -> float:
    """Peak stress of the homogeneous 1D solution (docs/verification.md)."""
    if model == "AT1":
        return float(np.sqrt(3.0 * Gc * E / (8.0 * ell)))
    return float(3.0 * np.sqrt(3.0) / 16.0 * np.sqrt(E * Gc / ell))


def ell_from_strength(model: str, E: float, Gc: float, strength: float) -> float:
    c = 3.0 / 8.0 if model == "AT1" else 27.0 / 256.0
    return c * E * Gc / strength**2


def Gc_from_strength(model: str, E: float, ell: float, strength: float) -> float:
    c = 3.0 / 8.0 if model == "AT1" else 27.0 / 256.0
    return strength**2 * ell / (c * E)


def resolve_failure(model: str, E: float, nu: float, spec) -> dict:
    """Turn a FailureSpec (internal units) into {Gc, ell, strength}.

    Any two of toughness (Gc or K_Ic), ell, strength (or critical_strain E*eps_c)
    determine the third through the homogeneous solution."""
    Gc = spec.Gc
    if Gc is None and spec.K_Ic is not None:
        Gc = spec.K_Ic**2 * (1.0 - nu**2) / E  # plane strain
    strength = spec.strength
    if strength is None and spec.critical_strain is not None:
        strength = E * spec.critical_strain
    ell = spec.ell
    if ell is None:
        ell = ell_from_strength(model, E, Gc, strength)
    elif Gc is None:
        Gc = Gc_from_strength(model, E, ell, strength)
    strength = homogeneous_strength(model, E, Gc, ell)
    return {"Gc": Gc, "ell": ell, "strength": strength, "critical_strain": strength / E}


@dataclass
class DamageSettings:
    model: str = "AT1"
    split: str = "spectral"
    driving_force: str = "rankine"
    residual_stiffness: float = 1e-6
    irreversibility: str = "bounds"


def driving_force(eps_e, lmbda, mu, E, s: DamageSettings, gdim: int):
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
    a = chi * degradation(d, s.residual_stiffness) + (1.0 - chi)
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
        Gc, ell, chi: DG0 fields (toughness, length, damageable indicator).
        fixed_dofs: damage DOFs that must stay 0 (interior of non-damageable phases).
        dx: integration measure (default ``ufl.dx``; the coupled problem passes one with
            a fixed quadrature degree: the driving forces are not polynomials and UFL
            would otherwise pick a needlessly high degree).
    """

    def __init__(self, d: fem.Function, lower: fem.Function, H, Gc, ell, chi, settings: DamageSettings,
                 fixed_dofs: np.ndarray, petsc_options: dict, prefix: str = "ssbfrac_damage_", dx=None):
        from dolfinx.fem.petsc import NonlinearProblem

        self.d = d
        self.lower = lower
        D = d.function_space
        dx = dx if dx is not None else ufl.dx
        energy = (chi * degradation(d, settings.residual_stiffness) * H
                  + fracture_density(d, Gc, ell, chi, settings.model)) * dx
        F = ufl.derivative(energy, d, ufl.TestFunction(D))
        J = ufl.derivative(F, d, ufl.TrialFunction(D))
        bc = fem.dirichletbc(PETSc.ScalarType(0), fixed_dofs, D)
        opts = dict(DAMAGE_OPTIONS)
        opts.update(petsc_options)
        self.problem = NonlinearProblem(F, d, J=J, bcs=[bc], petsc_options_prefix=prefix)
        self.snes = self.problem.solver
        el.set_petsc_options(self.snes, prefix, opts)
        self.upper = fem.Function(D)
        self.upper.x.array[:] = 1.0
        self.upper.x.array[fixed_dofs] = 0.0
        self.fixed_dofs = fixed_dofs
        self.lb = fem.Function(D)
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
        self.lb.x.array[self.fixed_dofs] = 0.0
        self.snes.setVariableBounds(self.lb.x.petsc_vec, self.upper.x.petsc_vec)
        self.problem.solve()
        reason = self.snes.getConvergedReason()
        its = self.snes.getIterationNumber()
        self.solves += 1
        self.linear_iterations += self.snes.getLinearSolveIterations()
        self.d.x.scatter_forward()
        self.last_converged = reason > 0
        ok = reason > 0 or (self.inexact and reason == PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT)
        return ok, its


# ----------------------------------------------------------------------------- crack measures
def isoline_length_2d(domain, d: fem.Function, level: float) -> float:
    """Length of the level set {d = level} of a P1 field on a triangle mesh (global)."""
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    c2v = domain.geometry.dofmap[:n]
    x = domain.geometry.x[:, :2]
    dofs = d.function_space.dofmap.list[:n]
    vals = d.x.array[dofs]  # (n, 3)
    if vals.size == 0:
        return domain.comm.allreduce(0.0, op=MPI.SUM)
    pts = x[c2v]  # (n, 3, 2)
    above = vals >= level
    k = above.sum(axis=1)
    cut = (k == 1) | (k == 2)
    total = 0.0
    if np.any(cut):
        v = vals[cut]
        p = pts[cut]
        segs = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            va, vb = v[:, a], v[:, b]
            crosses = (va >= level) != (vb >= level)
            t = np.where(crosses, (level - va) / np.where(crosses, vb - va, 1.0), 0.0)
            q = p[:, a] + t[:, None] * (p[:, b] - p[:, a])
            segs.append((crosses, q))
        # each cut triangle has exactly two crossing edges
        crossing = np.stack([s[0] for s in segs], axis=1)
        qs = np.stack([s[1] for s in segs], axis=1)  # (m, 3, 2)
        idx = np.argsort(~crossing, axis=1, kind="stable")[:, :2]
        q0 = np.take_along_axis(qs, idx[:, 0, None, None].repeat(2, axis=2), axis=1)[:, 0]
        q1 = np.take_along_axis(qs, idx[:, 1, None, None].repeat(2, axis=2), axis=1)[:, 0]
        total = float(np.linalg.norm(q1 - q0, axis=1).sum())
    return domain.comm.allreduce(total, op=MPI.SUM)


def crack_components(domain, d: fem.Function, level: float, cells: np.ndarray | None = None) -> int:
    """Number of connected components of the cells whose vertices all have d >= level
    (cells sharing a vertex are connected). Gathered to rank 0; the count is broadcast."""
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    dofs = d.function_space.dofmap.list[:n]
    vals = d.x.array[dofs]
    mask = vals.min(axis=1) >= level
    if cells is not None:
        keep = np.zeros(n, dtype=bool)
        keep[cells[cells < n]] = True
        mask &= keep
    imap = d.function_space.dofmap.index_map
    glob = imap.local_to_global(dofs[mask].ravel()).reshape(-1, dofs.shape[1]) if mask.any() else np.zeros((0, dofs.shape[1]), dtype=np.int64)
    allg = domain.comm.gather(glob, root=0)
    count = 0
    if domain.comm.rank == 0:
        g = np.concatenate(allg) if allg else np.zeros((0, 3), dtype=np.int64)
        if len(g):
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            verts, inv = np.unique(g.ravel(), return_inverse=True)
            inv = inv.reshape(g.shape)
            m = len(g)
            rows = np.repeat(np.arange(m), g.shape[1])
            inc = coo_matrix((np.ones(rows.size), (rows, inv.ravel())), shape=(m, len(verts))).tocsr()
            adj = inc @ inc.T
            count, _ = connected_components(adj, directed=False)
    return int(domain.comm.bcast(count, root=0))
