"""The Python interface as the README shows it, on small cases."""

import numpy as np
import pytest

import solver
from conftest import ROOT

SMALL = ROOT / "tests" / "data" / "small.yaml"


def test_run_a_case_from_python(tmp_path):
    case = solver.Case.from_yaml(SMALL)
    stiff = case.with_overrides({"materials.electrolyte.E": 150e9, "loading.steps": 3})
    assert stiff.materials.electrolyte.E == 150e9 and case.materials.electrolyte.E == 20e9
    result = solver.run(stiff, out=tmp_path / "stiff")
    assert result.complete and result.path == tmp_path / "stiff"
    h = result.history
    assert list(h["step"]) == [0, 1, 2, 3] and h["x"][-1] == pytest.approx(1.0)
    assert result.summary["case"]["materials"]["electrolyte"]["E"] == 150e9
    f = result.fields(-1)
    assert f["time"] == pytest.approx(result.output_times[-1])
    assert f["displacement"].shape == (len(f["points"]), 2)
    assert len(f["von_mises"]) == len(f["cells"]) and np.all(f["von_mises"] >= 0)
    plots = result.plot(steps=["-1"])
    assert plots["report"].is_file() and "crack_vs_strain" not in plots["figures"]  # no fracture here
    # a stiffer electrolyte carries more of the mismatch: a larger tension than the default
    soft = solver.run(case.with_overrides({"loading.steps": 3}), out=tmp_path / "soft")
    assert h["sigma1_max_SE"][-1] > soft.history["sigma1_max_SE"][-1]


def test_errors_name_the_field(tmp_path):
    case = solver.Case.from_yaml(SMALL)
    with pytest.raises(solver.CaseError, match="materials.electrolyte.nu"):
        case.with_overrides({"materials.electrolyte.nu": 0.7})
    solver.run(case.with_overrides({"loading.steps": 1}), out=tmp_path / "r")
    with pytest.raises(solver.RunError, match="already exists"):
        solver.run(case, out=tmp_path / "r")


def test_sweep_from_python(tmp_path):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(f"name: s\nbase: {SMALL}\nparameters: {{materials.electrolyte.E: [10.0e9, 40.0e9]}}\n"
                          "set: {loading.steps: 2}\n")
    result = solver.sweep(sweep_file, out=tmp_path / "out", parallel=2)
    assert result.status == 0 and sorted(result.runs) == ["E_SE=1e10", "E_SE=4e10"]
    assert all(r.complete for r in result.runs.values())
    rows = {r["run"]: r for r in result.table}
    assert set(rows) == set(result.runs)
    assert all(r["status"] == "complete" for r in rows.values())
