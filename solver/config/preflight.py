"""The checks of a validated case that come before any packing or meshing: its size
against its limits (:mod:`solver.config.estimate`) and its PETSc options against the
installed PETSc (:mod:`solver.config.petsc_check`)."""

from __future__ import annotations

from solver.config.estimate import Estimate, check_size


def preflight(case, source: str, allow_large: bool = False) -> Estimate:
    """Refuse (CaseError) a case that is too large for its limits (unless ``allow_large``)
    or whose PETSc options PETSc does not accept; returns the size estimate."""
    est = check_size(case, source, allow_large)
    from solver.config.petsc_check import check_petsc_options

    check_petsc_options(case, source, est.dofs.get("displacement"))
    return est
