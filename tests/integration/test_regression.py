"""The default case, step by step, against its stored history: behaviour is pinned.

The reference ``tests/data/reference/bucci2017_history.csv`` is the ``history.csv`` of
``ssbfrac run cases/bucci2017.yaml``. It is replaced only by a commit that changes the
physics or the numerics on purpose, and says so; a restructuring of the code must leave
every column (but the wall time) as it is, to the solver tolerance.
"""

import numpy as np

from conftest import ROOT, run_to_completion
from solver.runs.writers import read_history

REFERENCE = ROOT / "tests" / "data" / "reference" / "bucci2017_history.csv"
#: counts of the step loop and the solvers: equal, step by step
COUNTS = ("step", "accepted", "segment", "cycle", "crack_segments", "iterations", "elastic_solves", "damage_solves",
          "newton_iterations", "linear_iterations", "ec_newton_iterations")
#: the damage iteration stops when the damage changes by less than 1e-4 (fracture.scheme.tolerance)
RTOL = 1e-4


def test_default_case_history_is_unchanged(tmp_path):
    _, _ = run_to_completion(ROOT / "cases" / "bucci2017.yaml", tmp_path / "run")
    new = read_history(tmp_path / "run" / "history.csv")
    ref = read_history(REFERENCE)
    assert sorted(new) == sorted(ref), "the history columns changed"
    assert len(new["step"]) == len(ref["step"]), "the number of steps changed"
    for col in ref:
        if col == "wall":
            continue
        a, b = ref[col], new[col]
        if a.dtype.kind not in "fi":
            assert list(a) == list(b), col
        elif col in COUNTS:
            assert np.array_equal(a, b, equal_nan=True), f"{col}: {a} != {b}"
        else:
            scale = max(float(np.nanmax(np.abs(a))), 1e-30)
            assert np.allclose(a, b, rtol=RTOL, atol=RTOL * scale, equal_nan=True), f"{col}: {a} != {b}"
