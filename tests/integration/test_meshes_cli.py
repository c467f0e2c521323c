"""The shipped microstructure cases mesh and solve (elasticity) from the command line, in 2D
and 3D, with 1 and 2 MPI ranks; bad inputs stop before Gmsh runs."""

import csv
import json
import math

import numpy as np
import pytest

from conftest import ROOT, run_ssbfrac as run

CASES = sorted((ROOT / "cases" / "microstructures").glob("*.yaml"))




def last_row(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))[-1]


def test_six_shipped_cases():
    names = {c.stem for c in CASES}
    assert {"polygons_2d", "circles_lognormal_2d", "coated_2d", "blend_2d", "spheres_3d", "polyhedra_3d"} <= names


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_shipped_case_meshes_and_solves(case, tmp_path):
    out = tmp_path / case.stem
    r = run(["run", str(case), "--out", str(out), "--set", "loading.steps=2", "--progress", "none"])
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((out / "summary.json").read_text())
    mesh = json.loads((out / "mesh.json").read_text())
    target = summary["case"]["geometry"]["particles"]["volume_fraction"]
    tol = 0.01 if summary["case"]["dimension"] == 2 else 0.02
    assert abs(mesh["fractions"]["active_of_composite"] - target) / target < tol
    row = last_row(out / "history.csv")
    assert float(row["x"]) == pytest.approx(1.0)
    assert math.isfinite(float(row["sigma1_max_SE"])) and float(row["sigma1_max_SE"]) > 0
    assert summary["mesh"]["cells_global"] == mesh["mesh"]["cells"]


def test_3d_case_with_two_ranks_matches_one(tmp_path):
    case = ROOT / "cases" / "microstructures" / "spheres_3d.yaml"
    rows = []
    for n in (1, 2):
        out = tmp_path / f"np{n}"
        r = run(["run", str(case), "--out", str(out), "--set", "loading.steps=1", "--progress", "none"], ranks=n)
        assert r.returncode == 0, r.stdout + r.stderr
        rows.append(last_row(out / "history.csv"))
    for col in ("sigma1_max_SE", "sigma_h_min_AM", "elastic_energy", "mean_strain"):
        assert np.isclose(float(rows[0][col]), float(rows[1][col]), rtol=1e-6), col


def test_mesh_command_3d_preview_and_conversion(tmp_path):
    case = ROOT / "cases" / "microstructures" / "polyhedra_3d.yaml"
    out = tmp_path / "m"
    r = run(["mesh", str(case), "--out", str(out), "--preview", "--convert", "vtu"])
    assert r.returncode == 0, r.stderr
    assert (out / "preview.png").stat().st_size > 20000
    assert (out / "mesh.vtu").stat().st_size > 10000
    info = json.loads((out / "mesh.json").read_text())
    assert info["fractions"]["separator"] == pytest.approx(2.0 / 14.0, rel=1e-6)
    assert info["groups"]["separator_interface"] == [2, 7]


@pytest.mark.parametrize("override,message", [
    ("geometry.particles.volume_fraction=0.85", "impossible"),
    ("geometry.particles.coating=0.05e-6", "needs materials.coating"),
    ("geometry.particles.coating=0.1e-6", "too thick for min_gap"),
    ("geometry.particles.shape=sphere", "use 'circle'"),
])
def test_bad_inputs_stop_before_meshing(tmp_path, override, message):
    case = ROOT / "cases" / "microstructures" / "circles_lognormal_2d.yaml"
    out = tmp_path / "m"
    r = run(["mesh", str(case), "--out", str(out), "--set", override])
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and override.split("=")[0].split(".")[-1] in r.stderr
    assert not out.exists()


def test_unknown_conversion_format_refused_before_meshing(tmp_path):
    case = ROOT / "cases" / "microstructures" / "blend_2d.yaml"
    r = run(["mesh", str(case), "--out", str(tmp_path / "m"), "--convert", "nosuchformat"])
    assert r.returncode == 2 and "--convert" in r.stderr and "nosuchformat" in r.stderr
    assert not (tmp_path / "m").exists()
