"""Iterative solves of two-field systems: a block-triangular preconditioner for GMRES.

The coupled Newton steps of ssbfrac solve 2 x 2 block systems

    [A00 A01] [y0]   [x0]
    [A10 A11] [y1] = [x1]

(displacement and damage in the monolithic Newton step of the fracture scheme; lithium
fraction and ionic potential in the electrochemistry). A sparse LU of the whole matrix
is the robust choice up to a few hundred thousand unknowns; above, its memory and its
poor parallel scaling rule it out. Each diagonal block alone is what smoothed-aggregation
AMG handles well (elasticity with its rigid-body near-nullspace; a diffusion or
conduction operator), so the preconditioner here is block Gauss-Seidel:

    y0 = B00 x0,   y1 = B11 (x1 - A10 y0),

B00, B11 one AMG V-cycle each (each has its own KSP, options prefix
``<prefix>block0_`` and ``<prefix>block1_``), used inside GMRES (Saad's right
preconditioning is not needed: the blocks' AMG is a fixed linear operator per set-up).

The blocks are told apart by position: DOLFINx lays out a blocked ("mpi" kind) vector
field by field on every rank, the ``n0`` owned entries of the first field before those
of the second. PETSc's reduced-space method for bound constraints (``vinewtonrsls``)
solves with the rows and columns of the inactive unknowns, in their order: when the first
field has no bounds (the displacement), its rows stay the first ``n0`` of every rank, so
the same split holds for the reduced systems. Between two set-ups the preconditioner
reads its operator's present layout, so a changing active set is handled.
"""

from __future__ import annotations

from petsc4py import PETSc

from solver.numerics.petsc import set_petsc_options

#: each diagonal block: one application of smoothed-aggregation AMG
BLOCK_OPTIONS: dict[str, object] = {"ksp_type": "preonly", "pc_type": "gamg", "pc_gamg_coarse_eq_limit": 1000}
#: the outer Krylov solve of a blocked Newton step
ITERATIVE_BLOCKED: dict[str, object] = {"ksp_type": "gmres", "ksp_gmres_restart": 100, "ksp_rtol": 1e-10,
                                        "ksp_atol": 1e-30, "ksp_max_it": 1000}


class BlockGaussSeidel:
    """petsc4py Python preconditioner context (``PC.Type.PYTHON``): block Gauss-Seidel
    with AMG on each diagonal block (module docstring).

    Args:
        n0: owned rows of the first field on this rank (its index map's local size times
            its block size).
        prefix: options prefix of the two block solvers (``<prefix>block0_``,
            ``<prefix>block1_``); their defaults are :data:`BLOCK_OPTIONS`.
        nullspace: near-nullspace of the first block for AMG (rigid-body modes), or None.
        block_size: block size of the first field (the displacement's dimension), for AMG.
    """

    def __init__(self, n0: int, prefix: str, nullspace: PETSc.NullSpace | None = None, block_size: int = 1):
        self.n0 = int(n0)
        self.prefix = prefix
        self.nullspace = nullspace
        self.block_size = block_size
        self.applications = 0
        self._ksp: list[PETSc.KSP] = []
        self._sub: list[PETSc.Mat] = []
        self._is: list[PETSc.IS] = []
        self._work = None

    def _index_sets(self, P: PETSc.Mat) -> list[PETSc.IS]:
        start, end = P.getOwnershipRange()
        comm = P.getComm()
        if end - start < self.n0:
            raise RuntimeError(f"block preconditioner: {end - start} local rows, fewer than the first block's {self.n0}")
        return [PETSc.IS().createStride(self.n0, first=start, step=1, comm=comm),
                PETSc.IS().createStride(end - start - self.n0, first=start + self.n0, step=1, comm=comm)]

    def setUp(self, pc: PETSc.PC) -> None:
        _, P = pc.getOperators()
        self.reset(pc)
        self._is = self._index_sets(P)
        is0, is1 = self._is
        A00 = P.createSubMatrix(is0, is0)
        A11 = P.createSubMatrix(is1, is1)
        self._sub = [A00, A11, P.createSubMatrix(is1, is0)]
        if self.block_size > 1:
            A00.setBlockSize(self.block_size)
        if self.nullspace is not None:
            A00.setNearNullSpace(self.nullspace)
        self._ksp = []
        for k, A in enumerate((A00, A11)):
            ksp = PETSc.KSP().create(P.getComm())
            ksp.setOperators(A)
            prefix = f"{self.prefix}block{k}_"
            ksp.setOptionsPrefix(prefix)
            db = PETSc.Options()
            set_petsc_options(ksp, prefix, {key: v for key, v in BLOCK_OPTIONS.items()
                                            if not db.hasName(f"{prefix}{key}")})
            ksp.setUp()
            self._ksp.append(ksp)
        self._work = A11.createVecLeft()

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        is0, is1 = self._is
        x0, x1 = x.getSubVector(is0), x.getSubVector(is1)
        y0, y1 = y.getSubVector(is0), y.getSubVector(is1)
        self._ksp[0].solve(x0, y0)
        r1 = self._work
        self._sub[2].mult(y0, r1)  # A10 y0
        r1.aypx(-1.0, x1)  # x1 - A10 y0
        self._ksp[1].solve(r1, y1)
        x.restoreSubVector(is0, x0)
        x.restoreSubVector(is1, x1)
        y.restoreSubVector(is0, y0)
        y.restoreSubVector(is1, y1)
        self.applications += 1

    def reset(self, pc: PETSc.PC) -> None:
        for obj in self._ksp + self._sub + self._is:
            obj.destroy()
        if self._work is not None:
            self._work.destroy()
        self._ksp, self._sub, self._is, self._work = [], [], [], None


def use_block_preconditioner(ksp: PETSc.KSP, n0: int, prefix: str, nullspace=None, block_size: int = 1) -> BlockGaussSeidel:
    """Make ``ksp`` (a blocked Newton step's linear solver, options already set) a GMRES
    solve preconditioned by :class:`BlockGaussSeidel`; returns the context."""
    ctx = BlockGaussSeidel(n0, prefix, nullspace, block_size)
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.PYTHON)
    pc.setPythonContext(ctx)
    return ctx
