"""A run never completes with inf or nan in its results: every accepted row of
``history.csv`` and every field output is checked, and the first non-finite value stops
the run with an error naming the quantity and the step (``error.txt``)."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from solver.numerics.stepping import StepFailure


class NonFiniteResult(StepFailure):
    """A result of a step is inf or nan."""


def check_row(row: dict) -> None:
    """Raise NonFiniteResult if a number of an accepted history row is not finite (rows
    are the same on every rank, so every rank raises together)."""
    if not row.get("accepted", 1):
        return  # a rejected step is retried with a smaller step; its numbers are not results
    bad = [k for k, v in row.items()
           if isinstance(v, (float, np.floating)) and not math.isfinite(float(v))]
    if bad:
        where = f"step {row.get('step', '?')}" + (f" (time {row['time']:.6g} s)" if isinstance(row.get("time"), float)
                                                  and math.isfinite(row["time"]) else "")
        raise NonFiniteResult(
            f"{where}: {', '.join(f'{k} = {row[k]}' for k in bad)}: a result is not finite (inf or nan); the run is "
            "stopped (check the material values and loading of the case, or use smaller steps)")


def check_fields(functions, comm: MPI.Comm, t: float, step: int | None = None) -> None:
    """Raise NonFiniteResult (on every rank) if a field to be written holds inf or nan."""
    bad = [f.name for f in functions if not np.all(np.isfinite(f.x.array))]
    names = sorted({n for part in comm.allgather(bad) for n in part})
    if names:
        where = f"step {step}, " if step is not None else ""
        raise NonFiniteResult(f"field output at {where}time {t:.6g} s: {', '.join(names)} not finite (inf or nan); "
                              "the run is stopped")
