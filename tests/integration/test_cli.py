"""End to end: the ssbfrac command in a subprocess, with 1 and 2 MPI ranks."""

import csv
import json

import numpy as np
import pytest

from conftest import run_ssbfrac as run

EXPECTED_FILES = {"case.yaml", "mesh.msh", "mesh.json", "fields.xdmf", "fields.h5", "history.csv", "summary.json"}




def history(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from conftest import ROOT

    base = tmp_path_factory.mktemp("cli")
    case = ROOT / "tests" / "data" / "small.yaml"
    out = {}
    for n in (1, 2):
        d = base / f"np{n}"
        r = run(["run", str(case), "--out", str(d), "--progress", "lines"], ranks=n)
        assert r.returncode == 0, r.stdout + r.stderr
        out[n] = (d, r)
    return case, out


def test_run_writes_all_outputs(runs):
    _, out = runs
    d, r = out[1]
    assert EXPECTED_FILES <= {p.name for p in d.iterdir()}
    assert "results in" in r.stdout
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["ranks"] == 1
    assert summary["dofs"]["displacement"] > 1000
    assert set(summary["versions"]) >= {"ssbfrac", "dolfinx", "petsc", "gmsh"}
    assert summary["wall_time_s"] > 0
    rows = history(d / "history.csv")
    assert len(rows) == 6  # initial state + 5 steps
    assert float(rows[-1]["x"]) == pytest.approx(1.0)
    # the SE ring around swelling particles is in hoop tension, the particles in compression
    assert float(rows[-1]["sigma1_max_SE"]) > 0
    assert float(rows[-1]["sigma_h_min_AM"]) < 0


def test_two_ranks_give_same_stresses(runs):
    _, out = runs
    h1 = history(out[1][0] / "history.csv")
    h2 = history(out[2][0] / "history.csv")
    assert json.loads((out[2][0] / "summary.json").read_text())["ranks"] == 2
    for col in ("sigma1_max_SE", "sigma_h_min_AM", "elastic_energy", "mean_strain"):
        a = np.array([float(r[col]) for r in h1])
        b = np.array([float(r[col]) for r in h2])
        assert np.allclose(a, b, rtol=1e-6, atol=1e-9), col


def test_existing_run_directory_is_not_reused(runs):
    case, out = runs
    d = out[1][0]
    r = run(["run", str(case), "--out", str(d)])
    assert r.returncode == 2
    assert "already exists (complete)" in r.stderr
    # an incomplete directory (no summary.json) is refused too
    (d / "summary.json").rename(d / "summary.json.bak")
    r = run(["run", str(case), "--out", str(d)])
    (d / "summary.json.bak").rename(d / "summary.json")
    assert r.returncode == 2 and "incomplete" in r.stderr


def test_overwrite_refuses_foreign_directory(tmp_path, small_case):
    foreign = tmp_path / "mydata"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    r = run(["run", str(small_case), "--out", str(foreign), "--overwrite"])
    assert r.returncode == 2
    assert (foreign / "thesis.tex").exists()


def test_mesh_command_and_preview(tmp_path, small_case):
    r = run(["mesh", str(small_case), "--out", str(tmp_path / "m"), "--preview"])
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "m" / "mesh.json").read_text())
    assert info["mesh"]["cells"] > 1000
    assert (tmp_path / "m" / "preview.png").stat().st_size > 10000


def test_help_and_module_entry_point():
    r = run(["--help"])
    assert r.returncode == 0 and "run" in r.stdout and "mesh" in r.stdout
    r = run(["run", "--help"])
    assert r.returncode == 0 and "--set" in r.stdout and "--out" in r.stdout
