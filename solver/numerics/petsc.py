"""PETSc option sets and how ssbfrac hands options to PETSc.

Every solver of ssbfrac is a PETSc object with its own options prefix; its default
options are plain dictionaries (below and next to each problem), merged with the
``petsc_options`` of the case, so that every option is visible and can be overridden.
"""

from __future__ import annotations

from typing import Any

from petsc4py import PETSc

#: iterative elasticity solve: CG + smoothed-aggregation AMG (rigid-body near-nullspace)
ITERATIVE_PETSC_ELASTICITY: dict[str, Any] = {
    "ksp_type": "cg",
    "pc_type": "gamg",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "pc_gamg_coarse_eq_limit": 1000,
}
#: direct elasticity solve: sparse Cholesky (MUMPS; LDL^T of the symmetric stiffness, the
#: Hessian of the stored energy: half the storage of LU and a faster factorisation)
DIRECT_PETSC_ELASTICITY: dict[str, Any] = {
    "ksp_type": "preonly",
    "pc_type": "cholesky",
    "pc_factor_mat_solver_type": "mumps",
}
#: linear_solver: auto takes the direct solve up to this many displacement DOFs (2D, 3D)
DIRECT_SOLVE_MAX_DOFS = {2: 200_000, 3: 30_000}


#: a direct solve (sparse LU by MUMPS), the linear solver of the default option sets below
LU: dict[str, Any] = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
#: the bound-constrained damage solve (solver.physics.phasefield.DamageProblem)
DAMAGE_SNES: dict[str, Any] = {"snes_type": "vinewtonrsls", "snes_linesearch_type": "basic", "snes_rtol": 1e-9,
                               "snes_atol": 1e-9, "snes_stol": 0.0, "snes_max_it": 50}
DAMAGE_OPTIONS: dict[str, Any] = {**DAMAGE_SNES, **LU}
#: iterative damage linear solve: GMRES (the reduced Hessian of the cohesive and AT2
#: functionals need not be positive definite away from the bounds) + smoothed-aggregation AMG
ITERATIVE_DAMAGE: dict[str, Any] = {
    "ksp_type": "gmres",
    "pc_type": "gamg",
    "ksp_rtol": 1e-8,
    "ksp_atol": 1e-14,
    "ksp_max_it": 500,
    "pc_gamg_coarse_eq_limit": 1000,
}
#: damage.linear_solver: auto takes the direct solve up to this many damage DOFs (2D, 3D)
DIRECT_DAMAGE_MAX_DOFS = {2: 1_000_000, 3: 100_000}
#: the monolithic Newton method on displacement and damage (solver.numerics.schemes)
NEWTON_SNES: dict[str, Any] = {"snes_type": "vinewtonrsls", "snes_linesearch_type": "basic", "snes_max_it": 8,
                                "snes_rtol": 1e-8, "snes_atol": 1e-9, "snes_stol": 0.0}
NEWTON_OPTIONS: dict[str, Any] = {**NEWTON_SNES, **LU}
#: newton_linear_solver: auto takes the direct solve up to this many coupled (u, d) DOFs (2D, 3D)
DIRECT_NEWTON_MAX_DOFS = {2: 1_000_000, 3: 30_000}
#: the (x, phi_e) field solve of the electrochemistry (solver.physics.electrochemistry.fields)
ELECTROCHEMISTRY_SNES: dict[str, Any] = {"snes_type": "newtonls", "snes_linesearch_type": "bt", "snes_rtol": 1e-10,
                                         "snes_stol": 0.0, "snes_max_it": 30}
ELECTROCHEMISTRY_OPTIONS: dict[str, Any] = {**ELECTROCHEMISTRY_SNES, **LU}
#: loading.linear_solver: auto takes the direct solve up to this many (x, phi_e) DOFs (2D, 3D)
DIRECT_ELECTROCHEMISTRY_MAX_DOFS = {2: 1_000_000, 3: 200_000}


def elasticity_options(mechanics, n_dofs: int, gdim: int) -> dict:
    """PETSc options of the elasticity solve: those of ``mechanics.linear_solver`` (auto:
    direct up to :data:`DIRECT_SOLVE_MAX_DOFS` displacement DOFs; a sparse LU beats AMG-CG
    there, above all on the ill-conditioned degraded stiffness of a cracked electrolyte),
    then ``mechanics.petsc_options``."""
    kind = linear_kind(mechanics.linear_solver, n_dofs, DIRECT_SOLVE_MAX_DOFS[gdim])
    opts = dict(DIRECT_PETSC_ELASTICITY if kind == "direct" else ITERATIVE_PETSC_ELASTICITY)
    opts.update(mechanics.petsc_options)
    return opts


def linear_kind(kind: str, n_dofs: int, direct_max_dofs: int) -> str:
    """``direct`` or ``iterative``: ``kind`` itself, or for ``auto`` direct up to
    ``direct_max_dofs`` unknowns."""
    if kind != "auto":
        return kind
    return "direct" if n_dofs <= direct_max_dofs else "iterative"


def set_petsc_options(obj, prefix: str, options: dict) -> None:
    """Put ``options`` in PETSc's database under ``prefix`` and configure ``obj``.

    The options stay in the database (prefixes are unique per problem) because some
    of them, e.g. the multigrid level smoothers, are only read when the
    preconditioner is set up, after the first solve has started."""
    db = PETSc.Options()
    for k, v in options.items():
        if v is None:
            db.setValue(f"{prefix}{k}", None)
        elif isinstance(v, bool):
            db.setValue(f"{prefix}{k}", "true" if v else "false")
        else:
            db.setValue(f"{prefix}{k}", v)
    obj.setFromOptions()


def damage_unconstrained(fracture) -> bool:
    """True if no damage bound can be active: AT2 with a history field and the energy as
    driving force. At fixed displacement its damage equation is linear,
    (2 H + Gc / ell) d - Gc ell lap(d) = 2 H with H >= 0, and its solution lies in [0, 1]
    by itself (maximum principle); the irreversibility is the history field's, the lower
    bound is 0. There the damage is one linear solve, whose factorisation pattern is kept
    from solve to solve, instead of the reduced-space method, which builds a new reduced
    matrix, and MUMPS analyses it anew, at every solve (a third of an iteration's time on
    the tension benchmark)."""
    return fracture.model == "AT2" and fracture.irreversibility == "history" and fracture.driving_force == "energy"


def damage_options(fracture, n_dofs: int, gdim: int) -> dict:
    """PETSc options of the damage solve: :data:`DAMAGE_OPTIONS` (Newton's method without
    bounds where :func:`damage_unconstrained`) with the linear solve of
    ``fracture.linear_solver`` (auto: direct up to :data:`DIRECT_DAMAGE_MAX_DOFS` damage
    DOFs), then ``fracture.petsc_options``."""
    kind = linear_kind(fracture.linear_solver, n_dofs, DIRECT_DAMAGE_MAX_DOFS[gdim])
    snes = {**DAMAGE_SNES, "snes_type": "newtonls"} if damage_unconstrained(fracture) else DAMAGE_SNES
    return {**snes, **(LU if kind == "direct" else ITERATIVE_DAMAGE), **fracture.petsc_options}
