"""Model studies: the study file, its errors, and a small study run end to end (two
sweeps, then the post-processing of each and the cost table)."""

import csv

import pytest

from conftest import ROOT, run_ssbfrac
from solver.config import CaseError
from solver.hpc.study import load_study

SMALL = ROOT / "tests" / "data" / "small.yaml"
FRACTURE_SMALL = ROOT / "tests" / "data" / "fracture_small.yaml"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_study_is_valid():
    from solver.hpc.spec import validate_runs

    spec, out, sweeps = load_study(ROOT / "cases" / "studies" / "bucci2017" / "study.yaml")
    assert spec.name == "bucci2017" and out.name == "bucci2017"
    names = {s.spec.name: s for s in sweeps}
    assert set(names) == {"bucci2017_stiffness", "bucci2017_electrolytes", "bucci2017_electrolytes_intact",
                          "bucci2017_mitigation", "bucci2017_fracture_map"}
    stiff = names["bucci2017_stiffness"]
    moduli = sorted({r.parameters["materials.electrolyte.E"] for r in stiff.runs})
    assert len(moduli) >= 5 and moduli[0] <= 5e9 and moduli[-1] >= 1.5e11
    variants = {r.parameters["variant"] for r in names["bucci2017_mitigation"].runs}
    assert {"low_strain", "blend", "small", "coating_compliant", "interface_tough"} <= variants
    for s in sweeps:
        assert len({r.parameters["geometry.particles.seed"] for r in s.runs}) >= 5  # five microstructures per point
        assert s.out == out / s.spec.name
        validate_runs(s)  # every case of the study is valid


@pytest.mark.parametrize("body, message", [
    ("name: s\nsweeps: [nowhere.yaml]\n", r"study.yaml: sweeps\[0\] = 'nowhere.yaml': sweep file not found"),
    ("name: s\nsweeps: []\n", r"study.yaml: sweeps = \[\]: List should have at least 1 item"),
    ("name: s\nsweeps: [a.yaml]\ncolour: red\n", r"study.yaml: colour = 'red': unknown key"),
    ("name: s\nsweeps: [a.yaml, a.yaml]\n", r"sweeps\[1\] = 'a.yaml': a second sweep named 'a'"),
])
def test_study_file_errors_name_file_and_field(tmp_path, body, message):
    write(tmp_path, "a.yaml", f"name: a\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1]}}\n")
    path = write(tmp_path, "study.yaml", body)
    with pytest.raises(CaseError, match=message):
        load_study(path)


def test_a_bad_run_in_any_sweep_stops_the_study_before_anything_starts(tmp_path):
    write(tmp_path, "a.yaml", f"name: a\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1]}}\n")
    write(tmp_path, "b.yaml", f"name: b\nbase: {SMALL}\nparameters: {{materials.electrolyte.nu: [0.3, 0.7]}}\n")
    path = write(tmp_path, "study.yaml", "name: s\nsweeps: [a.yaml, b.yaml]\n")
    r = run_ssbfrac(["study", str(path), "--out", str(tmp_path / "out")])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "b.yaml (run nu_SE=0.7): materials.electrolyte.nu = 0.7" in r.stderr
    assert not (tmp_path / "out").exists()


def test_small_study_runs_posts_and_counts_its_cost(tmp_path):
    write(tmp_path, "a.yaml", f"""name: stiff
base: {SMALL}
parameters:
  materials.electrolyte.E: [10.0e9, 40.0e9]
  geometry.particles.seed: [1, 2]
set: {{loading.steps: 2}}
local: {{parallel: 2}}
""")
    write(tmp_path, "b.yaml", f"""name: map
base: {FRACTURE_SMALL}
parameters:
  materials.active.expansion: [0.002, 0.004]
  materials.electrolyte.E: [10.0e9, 40.0e9]
set: {{loading.steps: 2, output.fields_every: 0}}
local: {{parallel: 2}}
""")
    path = write(tmp_path, "study.yaml", "name: s\nsweeps: [a.yaml, b.yaml]\n")
    out = tmp_path / "out"
    r = run_ssbfrac(["study", str(path), "--out", str(out)], timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "study s: 2 sweeps, 8 runs" in r.stdout
    assert "study s: 8 runs done, 0 failed, 0 not finished" in r.stdout
    for sweep, figures in (("stiff", ("trends",)), ("map", ("trends", "crack_curves", "map"))):
        assert len(list(csv.DictReader(open(out / sweep / "summary.csv")))) == 4
        for name in figures:
            assert (out / sweep / "plots" / f"{name}.png").stat().st_size > 1000, (sweep, name)
    assert not (out / "stiff" / "plots" / "map.png").exists()  # one parameter besides the seed
    rows = {row["sweep"]: row for row in csv.DictReader(open(out / "study.csv"))}
    assert list(rows) == ["stiff", "map", "total"]
    assert rows["total"]["done"] == "8" and rows["stiff"]["runs"] == "4"
    cpu = [float(rows[k]["cpu_time_s"]) for k in ("stiff", "map", "total")]
    assert cpu[0] > 0 and cpu[1] > 0 and cpu[2] == pytest.approx(cpu[0] + cpu[1], rel=1e-4)
    # again: everything is done, nothing runs, the status is clean
    r = run_ssbfrac(["study", str(path), "--out", str(out)])
    assert r.returncode == 0 and r.stdout.count("0 to run") == 2, r.stdout
    s = run_ssbfrac(["study", str(path), "--out", str(out), "--status"])
    assert s.returncode == 0 and "4 done, 0 running, 0 failed, 0 pending" in s.stdout
