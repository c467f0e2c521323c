"""Load-step control pieces that need no mesh: the brutal-growth guard and the choice of
the elasticity linear solver."""

from types import SimpleNamespace

import pytest

from solver.config import AdaptiveSpec, Mechanics
from solver.numerics.petsc import DIRECT_SOLVE_MAX_DOFS, elasticity_options
from solver.numerics.stepping import GrowthGuard
from solver.numerics.schemes import StepResult


def guard(max_growth=5.0):
    # internal units (um): constructed without the validation of SI values
    adaptive = AdaptiveSpec.model_construct(max_crack_growth=max_growth)
    sim = SimpleNamespace(case=SimpleNamespace(fracture=SimpleNamespace(adaptive=adaptive)),
                          fracture=True, failure={"electrolyte": {"ell": 0.25}})
    return GrowthGuard(sim)


def test_a_brutal_step_is_rejected_and_a_smaller_one_accepted():
    g = guard()
    res = StepResult(True)
    assert g.accept({"crack_length": 1.0}, res, False, at=0.1)
    g.accepted({"crack_length": 1.0}, at=0.1)
    assert not g.accept({"crack_length": 10.0}, res, False, at=0.2)
    assert "crack grew by 9 um" in res.reason
    assert g.accept({"crack_length": 2.0}, StepResult(True), False, at=0.15)  # the cut step is calm
    g.accepted({"crack_length": 2.0}, at=0.15)
    # on the way to the rejected point, a jump at least half as large is the unstable growth
    res = StepResult(True)
    assert g.accept({"crack_length": 8.0}, res, False, at=0.2)
    assert res.reason == "unstable crack growth of 6 um accepted"
    g.accepted({"crack_length": 8.0}, at=0.2)
    # past that point the memory is gone: a new brutal jump is cut again
    assert not g.accept({"crack_length": 16.0}, StepResult(True), False, at=0.3)


def test_a_smaller_jump_after_the_cut_is_cut_again_and_the_smallest_step_always_passes():
    g = guard()
    assert not g.accept({"crack_length": 20.0}, StepResult(True), False, at=0.2)
    assert not g.accept({"crack_length": 8.0}, StepResult(True), False, at=0.1)  # 8 < 0.5 x 20
    assert g.accept({"crack_length": 50.0}, StepResult(True), True, at=0.01)
    state = g.state()
    h = guard()
    h.load_state(state)
    assert h.state() == state == {"last_crack": 0.0, "rejected": 8.0, "rejected_at": 0.1}


@pytest.mark.parametrize("dim", [2, 3])
def test_elasticity_solver_choice(dim):
    small, large = DIRECT_SOLVE_MAX_DOFS[dim], DIRECT_SOLVE_MAX_DOFS[dim] + 1
    assert elasticity_options(Mechanics(), small, dim)["pc_type"] == "cholesky"
    assert elasticity_options(Mechanics(), large, dim)["pc_type"] == "gamg"
    assert elasticity_options(Mechanics(linear_solver="iterative"), 10, dim)["ksp_type"] == "cg"
    assert elasticity_options(Mechanics(linear_solver="direct"), 10**8, dim)["ksp_type"] == "preonly"
    other = {"pc_type": "lu", "pc_factor_mat_solver_type": "superlu_dist"}
    opts = elasticity_options(Mechanics(petsc_options=other), 10, dim)
    assert opts == {"ksp_type": "preonly", **other}


@pytest.mark.parametrize("dim", [2, 3])
def test_damage_solver_choice(dim):
    from solver.config.fracture import Fracture
    from solver.numerics.petsc import DAMAGE_OPTIONS, DIRECT_DAMAGE_MAX_DOFS, damage_options

    small, large = DIRECT_DAMAGE_MAX_DOFS[dim], DIRECT_DAMAGE_MAX_DOFS[dim] + 1
    assert damage_options(Fracture(), small, dim) == DAMAGE_OPTIONS  # LU, the bound-constrained Newton
    it = damage_options(Fracture(), large, dim)
    assert (it["ksp_type"], it["pc_type"], it["snes_type"]) == ("gmres", "gamg", "vinewtonrsls")
    assert "pc_factor_mat_solver_type" not in it
    assert damage_options(Fracture(linear_solver="iterative"), 10, dim)["pc_type"] == "gamg"
    assert damage_options(Fracture(linear_solver="direct"), 10**8, dim)["pc_type"] == "lu"
    assert damage_options(Fracture(linear_solver="iterative", petsc_options={"pc_type": "jacobi"}), 10,
                          dim)["pc_type"] == "jacobi"
