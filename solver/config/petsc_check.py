"""The PETSc options of a case, checked against the installed PETSc before any work.

Each ``petsc_options`` section is tried on a throwaway solver of the same kind as the one
it configures (a SNES with a KSP and PC, on one process), under the defaults that the
solver merges them with: the values of type options (``ksp_type``, ``pc_type``,
``snes_type``, ``snes_linesearch_type``, ``pc_factor_mat_solver_type``, ``mat_type``,
``pc_gamg_type``, also below nested prefixes such as ``mg_levels_``) must be types that
PETSc knows; ``setFromOptions`` must accept every value; the preconditioner is set up on a
small Laplacian (so that the factorisation package must exist and the options read only
at set-up count); and every option must have been read by PETSc (unknown or misspelt
names are not silently ignored). Options of nested solvers that a small matrix does not
reach (multigrid levels, block-Jacobi blocks, field splits) are checked as options of a
KSP of their own.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re

from solver.config.base import CaseError
from solver.numerics.blocks import ITERATIVE_BLOCKED
from solver.numerics.petsc import ELECTROCHEMISTRY_OPTIONS, ELECTROCHEMISTRY_SNES, NEWTON_OPTIONS, NEWTON_SNES
from solver.numerics.petsc import LU as LU_OPTIONS

#: type options and the petsc4py enumeration of their values
TYPE_OPTIONS = {
    "ksp_type": "KSP", "pc_type": "PC", "snes_type": "SNES", "snes_linesearch_type": "SNESLineSearch",
    "pc_factor_mat_solver_type": "MatSolver", "mat_type": "Mat", "pc_gamg_type": "GAMG",
}
#: prefixes of nested solvers (stripped, the rest is checked on a KSP of its own)
NESTED = re.compile(r"^(mg_levels_(?:\d+_)?|mg_coarse_|sub_|redundant_|fieldsplit_[A-Za-z0-9]+_|block[01]_)")

#: the options each solver of ssbfrac starts from (solver/numerics/petsc.py)
LU, NEWTON, ELECTROCHEMISTRY = LU_OPTIONS, NEWTON_OPTIONS, ELECTROCHEMISTRY_OPTIONS
#: the same with the iterative linear solve of the blocked Newton steps (solver/numerics/blocks.py)
NEWTON_ITERATIVE = {**NEWTON_SNES, **ITERATIVE_BLOCKED}
ELECTROCHEMISTRY_ITERATIVE = {**ELECTROCHEMISTRY_SNES, **ITERATIVE_BLOCKED}

_counter = itertools.count()


def _enumeration(kind: str) -> set[str]:
    from petsc4py import PETSc

    cls = {"KSP": PETSc.KSP.Type, "PC": PETSc.PC.Type, "SNES": PETSc.SNES.Type,
           "SNESLineSearch": PETSc.SNESLineSearch.Type, "MatSolver": PETSc.Mat.SolverType, "Mat": PETSc.Mat.Type,
           "GAMG": PETSc.PC.GAMGType}[kind]
    return {getattr(cls, a) for a in dir(cls) if not a.startswith("_") and isinstance(getattr(cls, a), str)}


def _type_problem(key: str, value) -> str | None:
    """What is wrong with the value of a type option (None if it is a known type)."""
    base = NESTED.sub("", key)
    kind = TYPE_OPTIONS.get(base)
    if kind is None:
        return None
    if not isinstance(value, str) or not value:
        return f"{base} takes the name of a {kind} type"
    known = _enumeration(kind)
    if value in known:
        return None
    close = difflib.get_close_matches(value, sorted(known), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"not a {kind} type of PETSc{hint}"


def _petsc_message(exc) -> str:
    """The last informative line of a PETSc error (its call stack left out)."""
    lines = [ln.split("]", 1)[-1].strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and "() at " not in ln and not ln.startswith("error code")
             and not ln.startswith("See https") and not ln.startswith("Unknown type. Check")]
    return lines[-1] if lines else str(exc).splitlines()[0]


def _laplacian(n: int = 24):
    """A small SPD matrix (5-point Laplacian on an n x n grid) to set preconditioners up on."""
    from petsc4py import PETSc

    N = n * n
    A = PETSc.Mat().createAIJ([N, N], nnz=5, comm=PETSc.COMM_SELF)
    for i in range(n):
        for j in range(n):
            r = i * n + j
            A.setValue(r, r, 4.0)
            for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if 0 <= a < n and 0 <= b < n:
                    A.setValue(r, a * n + b, -1.0)
    A.assemble()
    return A


def _set(db, prefix: str, options: dict) -> None:
    for k, v in options.items():
        if v is None:
            db.setValue(prefix + k, None)
        elif isinstance(v, bool):
            db.setValue(prefix + k, "true" if v else "false")
        else:
            db.setValue(prefix + k, v)


def _trial(options: tuple, kind: str = "snes") -> tuple[str | None, str | None, frozenset]:
    """Try ``options`` (a tuple of (key, value)) on a throwaway SNES (or KSP). Returns
    (the key blamed and the PETSc message of an error, or None, None; the keys PETSc did
    not read)."""
    from petsc4py import PETSc

    options = dict(options)
    prefix = f"ssbfrac_check{next(_counter)}_"
    db = PETSc.Options()
    _set(db, prefix, options)
    obj = A = None
    err_key = err = None
    try:
        obj = (PETSc.SNES() if kind == "snes" else PETSc.KSP()).create(PETSc.COMM_SELF)
        obj.setOptionsPrefix(prefix)
        try:
            obj.setFromOptions()
        except PETSc.Error as exc:
            err = _petsc_message(exc)
        if err is None:
            ksp = obj.getKSP() if kind == "snes" else obj
            A = _laplacian()
            ksp.setOperators(A)
            try:
                ksp.setUp()
            except PETSc.Error as exc:
                # only a missing factorisation package is the options' fault here; other set-up
                # failures come from the small test matrix (e.g. field splits need fields)
                if exc.ierr == 92:
                    err = _petsc_message(exc)
                    err_key = next((k for k in options if k.endswith("mat_solver_type")), None)
        unused = frozenset(k for k in options if not db.used(prefix + k))
    finally:
        for k in options:
            db.delValue(prefix + k)
        if obj is not None:
            obj.destroy()
        if A is not None:
            A.destroy()
    return err_key, err, unused


@functools.lru_cache(maxsize=256)
def _check(user: tuple, contexts: tuple) -> list[tuple[str, object, str]]:
    """Problems (key, value, message) of the user options ``user`` under each of the
    ``contexts`` (default option sets of the solver)."""
    problems = []
    user_d = dict(user)
    for k, v in user_d.items():
        msg = _type_problem(k, v)
        if msg:
            problems.append((k, v, msg))
    if problems:
        return problems
    unused_everywhere = set(user_d)
    for ctx in contexts:
        merged = {**dict(ctx), **user_d}
        err_key, err, unused = _trial(tuple(merged.items()))
        if err is not None:
            key = err_key or _blame(user_d, dict(ctx))
            return [(key, user_d.get(key), f"PETSc refuses it: {err}")] if key else \
                [("", None, f"PETSc refuses these options: {err}")]
        unused_everywhere &= unused
    for k in sorted(unused_everywhere):
        msg = _known_elsewhere(k, user_d[k])
        if msg:
            problems.append((k, user_d[k], msg))
    return problems


#: other solver set-ups in which an option that this solver's set-up did not read is looked
#: for: a name PETSc reads in one of them is a PETSc option (ignored by this configuration,
#: as PETSc itself ignores it), a name read in none is unknown
BROAD = ({}, {"ksp_type": "cg", "pc_type": "gamg"}, LU, {"snes_type": "vinewtonrsls", **LU},
         {"ksp_type": "gmres", "pc_type": "bjacobi"}, {"ksp_type": "gmres", "pc_type": "asm"},
         {"snes_type": "newtonls", "snes_linesearch_type": "bt"})


def _known_elsewhere(key: str, value) -> str | None:
    """None when ``key`` is an option PETSc reads in some set-up (and accepts ``value``),
    else what is wrong."""
    for ctx in BROAD:
        err_key, err, unused = _trial(tuple({**ctx, key: value}.items()))
        if err is not None:
            return f"PETSc refuses it: {err}"
        if key not in unused:
            return None
    m = NESTED.match(key)
    if m:
        rest = key[m.end():]
        for ctx in BROAD[:3]:
            _, err, unused = _trial(tuple({**{k: v for k, v in ctx.items() if not k.startswith("snes")},
                                           rest: value}.items()), kind="ksp")
            if err is not None:
                return f"PETSc refuses it: {err}"
            if rest not in unused:
                return None
    return "not an option PETSc knows (unknown or misspelt name; give names without '-' and without a prefix)"


def _blame(user: dict, ctx: dict) -> str | None:
    """The user option that makes ``setFromOptions`` fail (tried one at a time)."""
    for k, v in user.items():
        err_key, err, _ = _trial(tuple({**ctx, k: v}.items()))
        if err is not None:
            return err_key or k
    return None


def _kinds(kind: str, n_dofs: int | None, limit: int) -> list[str]:
    """The linear solves (direct, iterative) that ``kind`` may take for about ``n_dofs``
    unknowns (both near the switch of ``auto`` or when the size is not known)."""
    if kind != "auto":
        return [kind]
    if n_dofs is None or 0.5 * limit < n_dofs < 2 * limit:
        return ["direct", "iterative"]
    return ["direct" if n_dofs <= limit else "iterative"]


def _elasticity_contexts(case, displacement_dofs: int | None) -> list[dict]:
    from solver.numerics.petsc import DIRECT_PETSC_ELASTICITY, DIRECT_SOLVE_MAX_DOFS, ITERATIVE_PETSC_ELASTICITY

    out = []
    for k in _kinds(case.mechanics.linear_solver, displacement_dofs, DIRECT_SOLVE_MAX_DOFS[case.dimension]):
        base = dict(DIRECT_PETSC_ELASTICITY if k == "direct" else ITERATIVE_PETSC_ELASTICITY)
        # linear problems use ksponly, the others Newton with a basic line search
        out.append({**base, "snes_type": "ksponly"})
        out.append({**base, "snes_type": "newtonls", "snes_linesearch_type": "basic"})
    return out


def _damage_contexts(case, displacement_dofs: int | None) -> list[dict]:
    from solver.numerics.petsc import DAMAGE_SNES, DIRECT_DAMAGE_MAX_DOFS, ITERATIVE_DAMAGE

    dofs = None if displacement_dofs is None else displacement_dofs // case.dimension  # P1 damage: one per vertex
    return [{**DAMAGE_SNES, **(LU if k == "direct" else ITERATIVE_DAMAGE)}
            for k in _kinds(case.fracture.linear_solver, dofs, DIRECT_DAMAGE_MAX_DOFS[case.dimension])]


def check_petsc_options(case, source: str, displacement_dofs: int | None = None) -> None:
    """Refuse (CaseError naming each field) PETSc options of the case that the installed
    PETSc does not know or refuses. ``displacement_dofs``: the estimated size of the
    elasticity problem (which of the direct and iterative defaults ``auto`` takes)."""
    sections = [("mechanics.petsc_options", case.mechanics.petsc_options, _elasticity_contexts(case, displacement_dofs)),
                ("fracture.petsc_options", case.fracture.petsc_options, _damage_contexts(case, displacement_dofs)),
                ("fracture.scheme.newton_petsc_options", case.fracture.scheme.newton_petsc_options,
                 [NEWTON, NEWTON_ITERATIVE])]
    if case.loading.type == "galvanostatic":
        sections.append(("loading.petsc_options", case.loading.petsc_options,
                         [ELECTROCHEMISTRY, ELECTROCHEMISTRY_ITERATIVE]))
    lines = []
    for path, user, contexts in sections:
        if not user:
            continue
        key = tuple(user.items())
        ctx = tuple(tuple(c.items()) for c in contexts)
        for k, v, msg in _check(key, ctx):
            where = f"{path}.{k}" if k else path
            lines.append(f"{source}: {where} = {v!r}: {msg}")
    if lines:
        raise CaseError("\n".join(lines))
