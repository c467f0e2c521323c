"""Alternate minimisation on a damage map with a two-cycle: the iteration must find the
fixed point between the two fields instead of flipping between them until the cap."""

from types import SimpleNamespace

import numpy as np
from mpi4py import MPI

from solver.numerics import schemes


class Field:
    def __init__(self, n: int, value: float = 0.0):
        self.x = SimpleNamespace(array=np.full(n, value), scatter_forward=lambda: None)
        self.function_space = SimpleNamespace(dofmap=SimpleNamespace(index_map=SimpleNamespace(size_local=n)))


class FlippingDamage:
    """d -> c - (d - c) about the fixed point c: every field but c flips between two states."""

    def __init__(self, d: Field, centre: np.ndarray):
        self.d, self.centre = d, centre
        self.fixed_dofs = np.array([], dtype=np.int32)
        self.solves = self.linear_iterations = 0
        self.last_converged = True

    def solve(self):
        self.d.x.array[:] = 2 * self.centre - self.d.x.array
        self.solves += 1
        return True, 1


def flipping_problem(n: int = 5):
    d = Field(n, 0.1)
    elastic = SimpleNamespace(solve=lambda: (True, 0), inexact=False, iterative=False, solves=0, linear_iterations=0)
    centre = np.linspace(0.3, 0.6, n)
    sim = SimpleNamespace(comm=MPI.COMM_WORLD, d=d, d_prev=Field(n), u=Field(n), elastic=elastic,
                          damage=FlippingDamage(d, centre), monitor=None)
    return sim, centre


def test_two_cycle_is_resolved_at_its_midpoint():
    sim, centre = flipping_problem()
    spec = SimpleNamespace(tolerance=1e-8, max_iterations=50, stagnation=25, newton_after=25)
    res = schemes.alternate_minimisation(sim, spec, schemes.Accelerator("staggered"))
    assert res.converged, res
    assert res.cycles == 1
    assert res.iterations <= 4
    assert np.allclose(sim.d.x.array, centre, atol=1e-12)


def test_a_converging_iteration_is_not_taken_for_a_cycle():
    sim, centre = flipping_problem()
    contraction = 0.5  # d -> c + 0.5 (d - c): converges by itself, no midpoint step
    sim.damage.solve = lambda: (sim.d.x.array.__setitem__(slice(None), centre + contraction * (sim.d.x.array - centre)),
                                (True, 1))[1]
    spec = SimpleNamespace(tolerance=1e-6, max_iterations=100, stagnation=25, newton_after=25)
    res = schemes.alternate_minimisation(sim, spec, schemes.Accelerator("staggered"))
    assert res.converged and res.cycles == 0
    assert np.allclose(sim.d.x.array, centre, atol=1e-5)


class AdvancingDamage(FlippingDamage):
    """Every sweep adds ``rate`` of damage wherever it is below 1: a change that does not fall
    until the damage is complete, as when a crack runs through the specimen."""

    @property
    def rate(self) -> float:
        return 0.02

    def solve(self):
        self.d.x.array[:] = np.minimum(1.0, self.d.x.array + self.rate)
        self.solves += 1
        return True, 1


class CreepThenRun(AdvancingDamage):
    """Damage that first creeps up by 0.001 per sweep (no progress as the iteration sees it)
    for ``creep`` sweeps, then runs at 0.05 per sweep to 1."""

    creep = 40

    @property
    def rate(self) -> float:
        return 0.001 if self.solves < self.creep else 0.05


def growing_damage(damage_class, max_iterations: int, descent: bool):
    """Over-relaxed alternate minimisation (omega = 1.8, ``stagnation`` 10) of 20 damage
    values from 0 under ``damage_class``; returns (result, problem)."""
    sim, _ = flipping_problem(20)
    sim.d.x.array[:] = 0.0
    sim.damage = damage_class(sim.d, np.zeros(20))
    spec = SimpleNamespace(tolerance=1e-8, max_iterations=max_iterations, stagnation=10, newton_after=5)
    res = schemes.alternate_minimisation(sim, spec, schemes.Accelerator("overrelaxed", relaxation=1.8), descent=descent)
    return res, sim


def test_a_running_crack_is_not_taken_for_stagnation():
    """With a driving force that is the derivative of the stored energy, a sweep that only
    adds damage makes steady progress even though the change per sweep does not fall: the
    over-relaxed iteration goes on (no fallback to plain sweeps, no holding of the
    iterate), and it reaches the end in about 1/(1.8 * 0.02) sweeps."""
    res, sim = growing_damage(AdvancingDamage, 200, descent=True)
    assert res.converged, res
    assert not res.monotone
    assert res.iterations <= 30, res.iterations
    assert np.allclose(sim.d.x.array, 1.0)


def test_without_an_energy_a_growing_damage_still_falls_back():
    """With a driving force that is not the derivative of an energy (Rankine) a sweep that
    adds damage may belong to an iteration that does not settle: the fallbacks stay."""
    res, _ = growing_damage(AdvancingDamage, 200, descent=False)
    assert res.converged, res
    assert res.monotone


def test_a_crack_that_starts_to_run_ends_the_fallbacks():
    """With an energy, the fallbacks taken while the damage crept (plain sweeps after
    ``stagnation`` sweeps, then the hold of the iterate) end once the crack runs: the
    over-relaxation comes back and the hold is released."""
    res, sim = growing_damage(CreepThenRun, 500, descent=True)
    assert res.converged, res
    assert not res.monotone
    assert sim.damage.floor is None
    # after the creep (about 0.04 of damage, a little more with over-relaxation) plain sweeps
    # would need 0.96 / 0.05 = 20 sweeps; over-relaxed ones about 11
    assert res.iterations - CreepThenRun.creep <= 14, res.iterations


class InexactElasticity:
    """An elasticity whose single inexact Newton step never converges (as with a split that
    keeps switching where the damage creeps); exact solves do."""

    def __init__(self):
        self.inexact, self.iterative, self.solves, self.linear_iterations = True, False, 0, 0
        self.exact_solves = 0

    def set_inexact(self, inexact: bool) -> None:
        self.inexact = inexact

    def solve(self):
        self.solves += 1
        self.exact_solves += not self.inexact
        return not self.inexact, 0


def test_settled_damage_finishes_with_an_exact_elasticity_solve():
    """Once the damage has settled (change below the tolerance) but the inexact elasticity
    step has not converged, the elasticity is solved exactly and the step ends there,
    instead of sweeping on until the cap; the inexact mode is restored for the next step."""
    sim, centre = flipping_problem()
    sim.elastic = InexactElasticity()
    sim.damage.solve = lambda: (sim.d.x.array.__setitem__(slice(None), centre + 0.5 * (sim.d.x.array - centre)),
                                (True, 1))[1]
    spec = SimpleNamespace(tolerance=1e-6, max_iterations=200, stagnation=25, newton_after=25)
    res = schemes.alternate_minimisation(sim, spec, schemes.Accelerator("staggered"))
    assert res.converged, res
    assert res.iterations <= 25, res.iterations
    assert sim.elastic.exact_solves == 1
    assert sim.elastic.inexact
