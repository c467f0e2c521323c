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
