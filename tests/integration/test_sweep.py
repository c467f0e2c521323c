"""Parameter sweeps: expansion, run names, sweep-file errors, run states, the generated
Slurm batch script, and a local sweep with a failing run that is resumed."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, ssbfrac_cmd, subprocess_env
from solver.config import CaseError, apply_overrides, read_yaml
from solver.hpc.local import run_command
from solver.hpc.slurm import array_spec, batch_script
from solver.hpc.spec import SweepSpec, expand, format_value, load_sweep, short_keys, validate_runs
from solver.hpc.status import run_status

SMALL = ROOT / "tests" / "data" / "small.yaml"


def spec(**kw) -> SweepSpec:
    data = {"name": "t", "base": str(SMALL), "parameters": {"geometry.particles.seed": [1]}}
    data.update(kw)
    return SweepSpec.model_validate(data)


def write_sweep(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def sweep_cli(args, timeout=300):
    return subprocess.run(ssbfrac_cmd() + ["sweep"] + [str(a) for a in args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout)


# --------------------------------------------------------------------------- expansion and names
def test_lists_ranges_and_logranges():
    s = spec(parameters={"loading.steps": {"range": [2, 10, 5]}, "geometry.particles.volume_fraction":
                         {"range": [0.1, 0.5, 5]}, "materials.electrolyte.E": {"logrange": [1e9, 2e11, 7]},
                         "materials.active.nu": [0.25, 0.3]})
    assert s.parameters["loading.steps"] == [2, 4, 6, 8, 10]
    assert all(isinstance(v, int) for v in s.parameters["loading.steps"])
    assert s.parameters["geometry.particles.volume_fraction"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    e = s.parameters["materials.electrolyte.E"]
    assert len(e) == 7 and e[0] == 1e9 and e[-1] == 2e11
    ratios = [b / a for a, b in zip(e, e[1:])]
    assert max(ratios) / min(ratios) < 1.01  # log-spaced (values rounded to 3 significant digits)
    assert e[1] == 2.42e9
    assert s.parameters["materials.active.nu"] == [0.25, 0.3]
    assert spec(parameters={"loading.steps": {"range": [3, 3, 1]}}).parameters["loading.steps"] == [3]
    # a non-integral step gives floats
    assert spec(parameters={"loading.steps": {"range": [1, 2, 3]}}).parameters["loading.steps"] == [1.0, 1.5, 2.0]


def test_product_and_zip_order_and_names():
    runs = expand(spec(parameters={"materials.electrolyte.E": [1.5e10, 2e11], "geometry.particles.seed": [1, 2]}))
    assert [r.name for r in runs] == ["E_SE=1.5e10_seed=1", "E_SE=1.5e10_seed=2", "E_SE=2e11_seed=1",
                                      "E_SE=2e11_seed=2"]
    assert [r.index for r in runs] == [0, 1, 2, 3]
    assert runs[1].parameters == {"materials.electrolyte.E": 1.5e10, "geometry.particles.seed": 2}
    zipped = expand(spec(combine="zip", parameters={"materials.electrolyte.E": [1e9, 1e10, 1e11],
                                                    "geometry.particles.seed": [3, 2, 1]},
                         set={"loading.steps": 2}))
    assert [r.name for r in zipped] == ["E_SE=1e9_seed=3", "E_SE=1e10_seed=2", "E_SE=1e11_seed=1"]
    assert zipped[0].overrides == ["materials.electrolyte.E=1000000000.0", "geometry.particles.seed=3",
                                   "loading.steps=2"]
    with pytest.raises(CaseError, match=r"zip.*same number of values.*materials.electrolyte.E: 3.*seed.*: 2"):
        expand(spec(combine="zip", parameters={"materials.electrolyte.E": [1e9, 1e10, 1e11],
                                               "geometry.particles.seed": [1, 2]}))
    # names are a pure function of the values: the same spec gives the same names
    assert [r.name for r in expand(spec(parameters={"materials.electrolyte.E": [1.5e10, 2e11],
                                                    "geometry.particles.seed": [1, 2]}))] == [r.name for r in runs]


def test_variants_change_several_fields_together():
    runs = expand(spec(parameters={"geometry.particles.seed": [1, 2]}, set={"loading.steps": 2},
                       variants=[{"name": "small", "set": {"geometry.particles.radius": 0.6e-6}},
                                 {"name": "blend", "set": {"geometry.particles.active_b_share": 0.5,
                                                           "materials.active_b": "lco"}}]))
    assert [r.name for r in runs] == ["variant=small_seed=1", "variant=small_seed=2", "variant=blend_seed=1",
                                      "variant=blend_seed=2"]
    assert runs[2].parameters == {"variant": "blend", "geometry.particles.seed": 1}
    assert runs[2].overrides == ["geometry.particles.active_b_share=0.5", 'materials.active_b="lco"',
                                 "geometry.particles.seed=1", "loading.steps=2"]


@pytest.mark.parametrize("value, text", [
    (1.5e10, "1.5e10"), (1e9, "1e9"), (2.42e9, "2.42e9"), (0.35, "0.35"), (20.0, "20"), (100.0, "100"),
    (1e-6, "1e-6"), (2.5e-7, "2.5e-7"), (-0.01, "-0.01"), (3, "3"), (True, "true"), (None, "null"),
    ("polygon", "polygon"), ("a b/c", "a-b-c"), ([2e-5, 3e-5], "2e-5x3e-5"),
    ({"type": "pressure", "value": 5e6}, "type-pressure+value-5e6"),
])
def test_value_text(value, text):
    assert format_value(value) == text


def test_value_text_is_exact():
    # distinct values never share a name, however close
    assert format_value(1.0000001e9) != format_value(1e9)
    assert float(format_value(1.0000001e9)) == 1.0000001e9
    assert float(format_value(0.1 + 0.2)) == 0.1 + 0.2


def test_short_keys_fall_back_to_full_paths():
    keys = short_keys(["materials.active.name", "materials.electrolyte.name", "loading.steps",
                       "geometry.particles.min_gap"])
    assert keys == {"materials.active.name": "materials.active.name",
                    "materials.electrolyte.name": "materials.electrolyte.name",
                    "loading.steps": "steps", "geometry.particles.min_gap": "gap"}


def test_names_are_safe_and_unique():
    runs = expand(spec(parameters={"materials.electrolyte.name": ["LPS glass", "LLZO/oxide"],
                                   "geometry.size": [[2e-5, 2e-5], [3e-5, 2e-5]]}))
    assert [r.name for r in runs][:2] == ["name=LPS-glass_size=2e-5x2e-5", "name=LPS-glass_size=3e-5x2e-5"]
    for r in runs:
        assert "/" not in r.name and " " not in r.name
    with pytest.raises(CaseError, match=r"runs 0 and 1 would both be named 'seed=1'"):
        expand(spec(parameters={"geometry.particles.seed": [1, 1]}))
    long = expand(spec(parameters={"materials.electrolyte.name": ["x" * 300, "y" * 300]}))
    assert all(len(r.name) <= 120 for r in long) and long[0].name != long[1].name


def test_overrides_give_the_exact_values():
    s = spec(parameters={"materials.electrolyte.E": {"logrange": [1e9, 2e11, 6]},
                         "geometry.particles.orientation": ["random", 15.0],
                         "geometry.size": [[2e-5, 2.5e-5]]}, set={"mechanics.boundary.right.value": 1e6})
    base = read_yaml(SMALL)
    for run in expand(s):
        data = apply_overrides(base, run.overrides)
        assert data["materials"]["electrolyte"]["E"] == run.parameters["materials.electrolyte.E"]
        assert data["geometry"]["particles"]["orientation"] == run.parameters["geometry.particles.orientation"]
        assert data["geometry"]["size"] == [2e-5, 2.5e-5]
        assert data["mechanics"]["boundary"]["right"] == {"value": 1e6}


def test_shipped_sweeps_are_valid():
    files = sorted((ROOT / "cases" / "sweeps").glob("*.yaml"))
    assert {f.name for f in files} >= {"se_stiffness.yaml", "quick.yaml"}
    for f in files:
        sweep = load_sweep(f, out="unused")
        assert len(validate_runs(sweep)) == len(sweep.runs)
    se = load_sweep(ROOT / "cases" / "sweeps" / "se_stiffness.yaml")
    assert se.base == ROOT / "cases" / "bucci2017.yaml" and se.spec.backend == "local"
    moduli = se.spec.parameters["materials.electrolyte.E"]
    assert len(moduli) >= 6 and moduli[0] == 1e9 and moduli[-1] == 2e11
    assert len(se.spec.parameters["geometry.particles.seed"]) >= 2
    assert len(se.runs) == len(moduli) * len(se.spec.parameters["geometry.particles.seed"])


# --------------------------------------------------------------------------- sweep file errors
@pytest.mark.parametrize("body, message", [
    ("parameters: {geometry.particles.seed: [1]}\ncolour: red\n",
     r"sweep.yaml: colour = 'red': unknown key; allowed here: backend, base, combine"),
    ("parameters: {geometry.particles.seed: [1]}\nslurm: {partitoin: short}\n",
     r"sweep.yaml: slurm.partitoin = 'short': unknown key; allowed here: account, checkpoint_fraction, cpus_per_task"),
    ("parameters: {materials.electrolyte.E: 1.0e9}\n",
     r"sweep.yaml: parameters.materials.electrolyte.E = 1000000000.0: expected a list of values"),
    ("parameters: {materials.electrolyte.E: {logrange: [0, 1.0e9, 3]}}\n",
     r"parameters.materials.electrolyte.E = .*logrange: start and stop must be positive"),
    ("parameters: {loading.steps: {range: [1, 5, 0]}}\n", r"range: n = 0 must be an integer >= 1"),
    ("parameters: {loading.steps: []}\n", r"parameters.loading.steps = \[\]: an empty list"),
    ("parameters: {geometry.particles.seed: [1]}\nslurm: {time: 12:00:00}\n",
     r"slurm.time = 43200: write the time limit as a quoted string"),
    ("parameters: {geometry.particles.seed: [1]}\ncombine: cartesian\n",
     r"combine = 'cartesian': Input should be 'product' or 'zip'"),
    ("parameters: {geometry.particles.seed: [1]}\nlocal: {parallel: 0}\n",
     r"local.parallel = 0: Input should be greater than or equal to 1"),
    ("parameters: {geometry.particles.seed: [1]}\nset: {geometry.particles.seed: 2}\n",
     r"set: geometry.particles.seed is also a swept parameter"),
    ("parameters: {geometry..seed: [1]}\n", r"'geometry..seed' is not a dotted case path"),
    ("parameters: {}\n", r"parameters = \{\}: Dictionary should have at least 1 item"),
    ("parameters: {geometry.particles.seed: [1]}\nvariants: [{name: a, set: {geometry.particles.seed: 2}}]\n",
     r"variants\[0\] \(a\): 'geometry.particles.seed' is also in parameters"),
    ("parameters: {geometry.particles.seed: [1]}\nvariants: [{name: a, set: {}}]\n",
     r"variants.0.set = \{\}: Dictionary should have at least 1 item"),
    ("parameters: {geometry.particles.seed: [1]}\nvariants: [{name: 'a/b', set: {loading.steps: 2}}]\n",
     r"variants.0.name = 'a/b': String should match pattern"),
])
def test_sweep_file_errors_name_file_and_field(tmp_path, body, message):
    (tmp_path / "small.yaml").write_text(SMALL.read_text())
    path = write_sweep(tmp_path, "name: t\nbase: small.yaml\n" + body)
    with pytest.raises(CaseError, match=message) as info:
        load_sweep(path)
    assert str(path) in str(info.value)


def test_missing_base_and_missing_fields(tmp_path):
    path = write_sweep(tmp_path, "name: t\nbase: nowhere.yaml\nparameters: {loading.steps: [2]}\n")
    with pytest.raises(CaseError, match=r"base = 'nowhere.yaml': case file not found"):
        load_sweep(path)
    path = write_sweep(tmp_path, "base: nowhere.yaml\n")
    with pytest.raises(CaseError, match=r"sweep.yaml: name: required field is missing"):
        load_sweep(path)


def test_every_generated_case_is_validated_before_anything_runs(tmp_path):
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters:\n"
                                 "  materials.electrolyte.nu: [0.3, 0.6]\n  geometry.particles.seed: [1, 2]\n")
    sweep = load_sweep(path, out=tmp_path / "out")
    with pytest.raises(CaseError) as info:
        validate_runs(sweep)
    lines = str(info.value).splitlines()
    assert len(lines) == 2  # the two runs with nu = 0.6
    assert lines[0].startswith(f"{path} (run nu_SE=0.6_seed=1): materials.electrolyte.nu = 0.6: ")
    assert "less than 0.5" in lines[0]
    # the command refuses the sweep and starts nothing
    r = sweep_cli([path, "--out", tmp_path / "out"])
    assert r.returncode == 2 and "(run nu_SE=0.6_seed=2): materials.electrolyte.nu" in r.stderr
    assert not (tmp_path / "out").exists()


def test_command_line_settings_are_checked(tmp_path):
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{loading.steps: [2]}}\n")
    r = sweep_cli([path, "--time", "01:00:00"])
    assert r.returncode == 2 and "--time is a Slurm setting; add --backend slurm" in r.stderr
    r = sweep_cli([path, "--backend", "slurm", "--time", "soon", "--dry-run"])
    assert r.returncode == 2 and "command line: --time = 'soon': String should match pattern" in r.stderr
    r = sweep_cli([path, "--parallel", "0"])
    assert r.returncode == 2 and "0 must be at least 1" in r.stderr


# --------------------------------------------------------------------------- run states
def test_run_states(tmp_path):
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1, 2, 3, 4, 5, 6, 7]}}\n")
    sweep = load_sweep(path, out=tmp_path / "out")
    out = sweep.out
    (out / "logs").mkdir(parents=True)
    r = {run.name: run for run in sweep.runs}

    def record(name, text):
        (out / "logs" / f"{name}.state").write_text(text)

    (out / "seed=1").mkdir()
    (out / "seed=1" / "case.yaml").write_text("name: small\n")
    (out / "seed=1" / "summary.json").write_text(json.dumps({"wall_time_s": 1.25}))
    record("seed=2", "exit 2\n")                                   # failed before running: no error.txt
    (out / "logs" / "seed=2.log").write_text("ssbfrac: error: small.yaml: cannot be packed\n")
    (out / "seed=2").mkdir()                                        # ... but one from an earlier attempt
    (out / "seed=2" / "case.yaml").write_text("name: small\n")
    (out / "seed=2" / "error.txt").write_text("StepFailure: an earlier attempt\n")
    (out / "seed=3").mkdir()                                        # failed with error.txt, no record
    (out / "seed=3" / "case.yaml").write_text("name: small\n")
    (out / "seed=3" / "error.txt").write_text("StepFailure: no convergence\n")
    import socket

    record("seed=4", f"running {socket.gethostname()} {os.getpid()}\n")   # alive
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record("seed=5", f"running {socket.gethostname()} {dead.pid}\n")      # gone without exit status
    record("seed=6", "exit 130\n")                                         # interrupted
    record("seed=7", "exit 0\n")                                           # its results were deleted since
    states = {name: run_status(sweep, run, None, {}) for name, run in r.items()}
    assert (states["seed=1"].state, states["seed=1"].detail) == ("done", "1.2 s")
    assert (states["seed=2"].state, states["seed=2"].detail) == ("failed", "exit status 2")
    assert states["seed=3"].state == "failed"
    assert states["seed=4"].state == "running" and states["seed=4"].active
    assert states["seed=5"].state == "pending" and "interrupted" in states["seed=5"].detail
    assert states["seed=6"].state == "pending" and "interrupted" in states["seed=6"].detail
    assert (states["seed=7"].state, states["seed=7"].detail) == ("pending", "results removed after the run")
    (out / "logs" / "seed=7.state").unlink()
    assert (run_status(sweep, r["seed=7"], None, {}).detail) == "not started"
    # a Slurm task: running while in the queue, queued before it starts
    record("seed=4", "running node7 123 55_3\n")
    assert run_status(sweep, r["seed=4"], {"55_3": "RUNNING"}, {}).state == "running"
    assert run_status(sweep, r["seed=4"], {}, {}).state == "pending"
    queued = run_status(sweep, r["seed=7"], {"55_6": "PENDING"}, {"seed=7": "55_6"})
    assert queued.state == "pending" and queued.active and "queued" in queued.detail
    record("seed=4", "exit 137\n")                                         # killed
    # --status lists them, with the end of the error for failed runs, and fails
    s = sweep_cli([path, "--out", out, "--status"])
    assert s.returncode == 1, s.stdout + s.stderr
    assert "1 done, 0 running, 2 failed, 4 pending" in s.stdout
    assert "| ssbfrac: error: small.yaml: cannot be packed" in s.stdout
    assert "| StepFailure: no convergence" in s.stdout
    assert "an earlier attempt" not in s.stdout


# --------------------------------------------------------------------------- commands and the batch script
def test_run_commands_use_this_python_installation(tmp_path):
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1]}}\n")
    sweep = load_sweep(path, out=tmp_path / "out")
    bin_dir = str(Path(sys.executable).absolute().parent)
    one = run_command(sweep, sweep.runs[0], 1)
    assert one[0].startswith(bin_dir) and one[1:3] == ["run", str(SMALL)]
    assert "--overwrite" not in one and one[-2:] == ["--set", "geometry.particles.seed=1"]
    two = run_command(sweep, sweep.runs[0], 2)
    assert Path(two[0]).name == "mpiexec" and two[1:3] == ["-n", "2"]
    (tmp_path / "out" / "seed=1").mkdir(parents=True)
    assert "--overwrite" in run_command(sweep, sweep.runs[0], 1)


def test_array_spec():
    assert array_spec([0, 1, 2, 3]) == "0-3"
    assert array_spec([5, 0, 2, 3], 2) == "0,2-3,5%2"
    assert array_spec([7]) == "7"


def test_batch_script_runs_a_task_without_slurm(tmp_path):
    """The generated script, run as Slurm would run array task 1 (variables set by hand)."""
    path = write_sweep(tmp_path, f"""name: t
base: {SMALL}
parameters: {{geometry.particles.seed: [1, 2]}}
set: {{loading.steps: 2}}
backend: slurm
slurm: {{time: "00:05:00", partition: debug, mem: 2G, account: lab, extra_sbatch: ["--qos=short"]}}
""")
    sweep = load_sweep(path, out=tmp_path / "out")
    script = batch_script(sweep)
    for line in ("#SBATCH --time=00:05:00", "#SBATCH --partition=debug", "#SBATCH --mem=2G", "#SBATCH --account=lab",
                 "#SBATCH --qos=short", "#SBATCH --ntasks=1", f"#SBATCH --output={tmp_path}/out/slurm/%A_%a.out"):
        assert line in script.splitlines()
    assert f"SSBFRAC=({Path(sys.executable).absolute().parent / 'ssbfrac'})" in script
    from solver.hpc.spec import write_manifest

    write_manifest(sweep)
    (tmp_path / "job.sh").write_text(script)
    env = subprocess_env()
    env.update(SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_JOB_ID="77", SLURM_NTASKS="1", SLURM_CPUS_PER_TASK="1")
    r = subprocess.run(["bash", str(tmp_path / "job.sh")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seed=2: exit status 0" in r.stdout
    run_dir = tmp_path / "out" / "seed=2"
    assert (run_dir / "summary.json").exists() and not (tmp_path / "out" / "seed=1").exists()
    case = yaml.safe_load((run_dir / "case.yaml").read_text())
    assert case["geometry"]["particles"]["seed"] == 2 and case["loading"]["steps"] == 2
    assert (tmp_path / "out" / "logs" / "seed=2.state").read_text() == "exit 0\n"
    assert "Slurm task 77_1" in (tmp_path / "out" / "logs" / "seed=2.log").read_text()
    # a task whose run is complete does nothing
    r = subprocess.run(["bash", str(tmp_path / "job.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "already complete" in r.stdout


def test_slurm_dry_run_prints_script_and_command_and_writes_nothing(tmp_path):
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1, 2, 3]}}\n")
    r = sweep_cli([path, "--out", tmp_path / "out", "--backend", "slurm", "--parallel", "2", "--ranks-per-run", "2",
                   "--time", "00:30:00", "--dry-run"])
    assert r.returncode == 0, r.stderr
    assert "#!/bin/bash" in r.stdout and "#SBATCH --ntasks=2" in r.stdout and "#SBATCH --time=00:30:00" in r.stdout
    assert 'mpiexec -n "$SLURM_NTASKS"' in r.stdout
    assert f"sbatch --parsable --array=0-2%2 {tmp_path}/out/slurm/sweep.sbatch" in r.stdout
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a local sweep, end to end
def test_local_sweep_with_a_failing_run_then_resume(tmp_path):
    """Four small runs, two at a time; one allows its iterative elasticity solve a single
    Krylov iteration, a valid setting with which the solve cannot converge (ssbfrac run writes
    error.txt and exits with status 1). The others complete; the status shows the failure; a
    rerun keeps the complete runs and only --rerun-failed retries the failed one (with
    --overwrite)."""
    path = write_sweep(tmp_path, f"""name: resume
base: {SMALL}
parameters:
  geometry.particles.seed: [1, 2, 3, 4]
  mechanics.petsc_options.ksp_max_it: [1000, 1000, 1, 1000]
combine: zip
set:
  loading.steps: 2
  mechanics.linear_solver: iterative
local: {{parallel: 2}}
""")
    out = tmp_path / "out"
    r = sweep_cli([path, "--out", out])
    assert r.returncode == 1, r.stdout + r.stderr
    bad = "seed=3_ksp_max_it=1"
    good = ["seed=1_ksp_max_it=1000", "seed=2_ksp_max_it=1000", "seed=4_ksp_max_it=1000"]
    assert f"FAILED  {bad} (exit status 1)" in r.stdout
    assert "3 done, 0 running, 1 failed, 0 pending" in r.stdout
    for name in good:
        assert (out / name / "summary.json").exists(), name
    assert (out / bad / "error.txt").exists() and not (out / bad / "summary.json").exists()
    assert "elasticity did not converge" in (out / "logs" / f"{bad}.log").read_text()
    assert (out / "logs" / f"{bad}.state").read_text() == "exit 1\n"
    assert json.loads((out / "runs.json").read_text())[bad] == {
        "index": 2, "parameters": {"geometry.particles.seed": 3, "mechanics.petsc_options.ksp_max_it": 1},
        "overrides": ["geometry.particles.seed=3", "mechanics.petsc_options.ksp_max_it=1", "loading.steps=2",
                      'mechanics.linear_solver="iterative"']}
    resolved = yaml.safe_load((out / "sweep.yaml").read_text())
    assert resolved["base"] == str(SMALL) and resolved["combine"] == "zip"
    summary = json.loads((out / good[1] / "summary.json").read_text())
    assert summary["case"]["geometry"]["particles"]["seed"] == 2 and summary["case"]["loading"]["steps"] == 2

    s = sweep_cli([path, "--out", out, "--status"])
    assert s.returncode == 1
    assert f"failed   {bad}" in s.stdout and "elasticity did not converge" in s.stdout

    mtimes = {p: p.stat().st_mtime_ns for name in good for p in (out / name / "summary.json", out / "logs" / f"{name}.log")}
    failed_log = out / "logs" / f"{bad}.log"
    failed_mtime = failed_log.stat().st_mtime_ns
    time.sleep(0.05)
    # without --rerun-failed nothing is launched, and the failure still fails the command
    r = sweep_cli([path, "--out", out])
    assert r.returncode == 1 and "0 to run" in r.stdout and f"not rerun (use --rerun-failed): {bad}" in r.stdout
    assert failed_log.stat().st_mtime_ns == failed_mtime
    # --rerun-failed launches exactly the failed run, replacing its directory
    r = sweep_cli([path, "--out", out, "--rerun-failed"])
    assert r.returncode == 1 and "1 to run" in r.stdout
    assert f"[1/1] FAILED  {bad}" in r.stdout
    assert failed_log.stat().st_mtime_ns > failed_mtime
    assert "--overwrite" in failed_log.read_text().splitlines()[1]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_a_run_that_stops_before_its_directory_is_recorded_as_failed(tmp_path):
    """ssbfrac run exits with status 2, writing no run directory, when it refuses to start
    (here: a directory with other data is in the way, which it never deletes). The sweep
    records the failure from the exit status and shows ssbfrac's message."""
    path = write_sweep(tmp_path, f"name: blocked\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [5]}}\n"
                                 "set: {loading.steps: 2}\n")
    out = tmp_path / "out"
    (out / "seed=5").mkdir(parents=True)
    (out / "seed=5" / "notes.txt").write_text("not a run")
    # a sweep never writes into a directory of the user's ...
    r = sweep_cli([path, "--out", out])
    assert r.returncode == 2 and "was not made by ssbfrac" in r.stderr, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["seed=5"]
    # ... but in its own, a run directory of the user's is in the way
    from solver.runs.rundir import make_marked_directory

    out = tmp_path / "out2"
    make_marked_directory(out, "sweep")
    (out / "seed=5").mkdir()
    (out / "seed=5" / "notes.txt").write_text("not a run")
    r = sweep_cli([path, "--out", out])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED  seed=5 (exit status 2)" in r.stdout and "0 done, 0 running, 1 failed, 0 pending" in r.stdout
    assert (out / "seed=5" / "notes.txt").read_text() == "not a run"
    assert (out / "logs" / "seed=5.state").read_text() == "exit 2\n"
    s = sweep_cli([path, "--out", out, "--status"])
    assert s.returncode == 1 and "failed   seed=5  exit status 2" in s.stdout
    assert "was not made by ssbfrac" in s.stdout


# --------------------------------------------------------------------------- exit statuses, crashes, stopping
def test_exit_statuses_in_words():
    from solver.runs.rundir import describe_exit

    assert describe_exit(139) == "killed by SIGSEGV (exit 139)"
    assert describe_exit(-11) == "killed by SIGSEGV (signal 11)"
    assert describe_exit(134) == "killed by SIGABRT (exit 134)"
    assert describe_exit(137) == "killed by SIGKILL (exit 137)"
    assert describe_exit(-15) == "killed by SIGTERM (signal 15)"
    # MPI_Abort(-99) exits with 157: not a signal
    assert describe_exit(157) == "exit status 157"
    assert describe_exit(1) == "exit status 1"


CRASHER = """
import ctypes, sys, time
from pathlib import Path
from mpi4py import MPI
from solver.runs.rundir import FaultLog
fault = FaultLog(Path(sys.argv[1]), MPI.COMM_WORLD)
for step in range(1, 4):
    fault.step(f"step {step} (accepted, load {step / 10:.6g}, 0.1 s of solving)")
def solve():
    ctypes.string_at(0)   # a segmentation fault in native code
solve()
"""


def test_a_crash_in_native_code_leaves_error_txt(tmp_path):
    """A process that dies of SIGSEGV while its FaultLog is open leaves fault.log with the
    last step and Python's stack; record_crash turns it into error.txt."""
    from solver.runs.rundir import FAULT_FILE, read_fault_log, record_crash, run_state

    out = tmp_path / "run"
    out.mkdir()
    (out / "case.yaml").write_text("name: x\n")
    r = subprocess.run([sys.executable, "-c", CRASHER, str(out)], capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == -11, r.stderr
    head, stack = read_fault_log(out)
    assert "last step: step 3 (accepted, load 0.3" in head
    assert "Segmentation fault" in stack and "in solve" in stack
    assert run_state(out) == "incomplete"  # nothing has looked at it yet
    assert record_crash(out, 139) == out / "error.txt"
    text = (out / "error.txt").read_text()
    assert text.startswith("NativeCrash: the run process was killed by SIGSEGV (exit 139): Segmentation fault")
    assert "last step: step 3 (accepted, load 0.3" in text.splitlines()[0]
    assert "in solve" in text
    assert not (out / FAULT_FILE).exists() and run_state(out) == "failed"
    # a second call, or a run that ended by itself, writes nothing
    assert record_crash(out, 139) is None
    clean = tmp_path / "clean"
    clean.mkdir()
    assert record_crash(clean, 1) is None and record_crash(clean, 143) is None


def test_slurm_task_states(tmp_path):
    """A requeued task waiting in the queue is pending (not running with a stale PID); a
    task gone from the queue is described by its final Slurm state or its time-limit mark."""
    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1]}}\n")
    sweep = load_sweep(path, out=tmp_path / "out")
    run = sweep.runs[0]
    (sweep.out / "logs").mkdir(parents=True)
    state = sweep.out / "logs" / f"{run.name}.state"
    state.write_text("running node7 123 55_0\n")
    st = run_status(sweep, run, {"55_0": "PENDING"}, {run.name: "55_0"})
    assert (st.state, st.active) == ("pending", True) and "queued again" in st.detail
    assert run_status(sweep, run, {"55_0": "RUNNING"}, {}).state == "running"
    assert run_status(sweep, run, None, {}).state == "running"  # squeue does not answer
    st = run_status(sweep, run, {}, {}, {"55_0": "TIMEOUT"})
    assert st.state == "pending" and "time limit" in st.detail
    st = run_status(sweep, run, {}, {}, {"55_0": "OUT_OF_MEMORY"})
    assert st.state == "failed" and "out of memory" in st.detail
    state.write_text("running node7 123 55_0 timelimit\n")
    assert "time limit" in run_status(sweep, run, {}, {}).detail
    state.write_text("exit 139\n")
    st = run_status(sweep, run, {}, {})
    assert (st.state, st.detail) == ("failed", "killed by SIGSEGV (exit 139)")
    state.write_text("exit -11\n")
    assert run_status(sweep, run, None, {}).detail == "killed by SIGSEGV (signal 11)"


def test_batch_script_requeues_its_own_task_and_sets_the_deadline(tmp_path):
    path = write_sweep(tmp_path, f"""name: t
base: {SMALL}
parameters: {{geometry.particles.seed: [1, 2]}}
backend: slurm
slurm: {{time: "01:30:00", checkpoint_fraction: 0.2}}
""")
    script = batch_script(load_sweep(path, out=tmp_path / "out"))
    # the array job's id is also the job id of its last task: requeue <array job>_<task> only
    assert 'scontrol requeue "$job"' in script and 'scontrol requeue "$SLURM_JOB_ID"' not in script
    assert "export SSBFRAC_DEADLINE=" in script
    assert "CHECKPOINT=(--set output.checkpoint_interval=1080)" in script  # 0.2 x 90 min
    assert '"$PYTHON" -m solver.runs.rundir record-crash' in script
    # the sweep or the case may give the interval itself
    path = write_sweep(tmp_path, f"""name: t
base: {SMALL}
parameters: {{geometry.particles.seed: [1, 2]}}
set: {{output.checkpoint_interval: 30}}
backend: slurm
slurm: {{time: "10"}}
""")
    assert "CHECKPOINT=()" in batch_script(load_sweep(path, out=tmp_path / "out"))


def test_time_limits_in_seconds():
    from solver.hpc.checkpoints import time_limit_seconds

    assert time_limit_seconds("10") == 600
    assert time_limit_seconds("10:30") == 630
    assert time_limit_seconds("01:00:00") == 3600
    assert time_limit_seconds("1-02") == 93600
    assert time_limit_seconds("1-00:00:30") == 86430
    assert time_limit_seconds(None) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_to_a_local_sweep_stops_its_runs_with_a_checkpoint_and_a_relaunch_continues(tmp_path):
    """SIGTERM to `ssbfrac sweep` (as Ctrl-C): every run finishes its step, writes its
    checkpoint and exits with status 85; no run outlives the sweep; launching the sweep
    again continues the runs from their checkpoints."""
    import signal

    path = write_sweep(tmp_path, f"""name: stop
base: {SMALL}
parameters: {{geometry.particles.seed: [1, 2]}}
set: {{loading.steps: 60}}
local: {{parallel: 2}}
""")
    out = tmp_path / "out"
    driver = subprocess.Popen(ssbfrac_cmd() + ["sweep", str(path), "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=subprocess_env(), start_new_session=True)
    names = ["seed=1", "seed=2"]
    pids = {}
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # both runs past their third step
            rows = []
            for name in names:
                h = out / name / "history.csv"
                rows.append(len(h.read_text().splitlines()) if h.exists() else 0)
                words = (out / "logs" / f"{name}.state").read_text().split() if (out / "logs" / f"{name}.state").exists() else []
                if words[:1] == ["running"]:
                    pids[name] = int(words[2])
            if min(rows) >= 4 and len(pids) == 2:
                break
            assert driver.poll() is None, driver.stdout.read()
            time.sleep(0.2)
        else:
            pytest.fail("the runs did not start")
        driver.send_signal(signal.SIGTERM)
        text, _ = driver.communicate(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, text
    assert "stopping: 2 run(s) finish their present step" in text and "2 run(s) stopped with a checkpoint" in text
    for name in names:
        assert not _alive(pids[name]), f"{name} (PID {pids[name]}) outlived the sweep"
        assert (out / "logs" / f"{name}.state").read_text() == "exit 85\n"
        assert (out / name / "checkpoint.h5").exists() and (out / name / "stopped.json").exists()
        assert not (out / name / "fault.log").exists() and not (out / name / "error.txt").exists()
    s = sweep_cli([path, "--out", out, "--status"])
    assert "0 done, 0 running, 0 failed, 2 pending" in s.stdout and "stopped with a checkpoint" in s.stdout
    r = sweep_cli([path, "--out", out])
    assert r.returncode == 0, r.stdout + r.stderr
    for name in names:
        assert "--restart" in (out / "logs" / f"{name}.log").read_text().splitlines()[1]
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["restarts"] == 1
        assert summary["case"]["output"]["checkpoint_interval"] == 600  # local.checkpoint_interval


FLAKY_RUN = """
import ctypes, json, sys
from pathlib import Path
from mpi4py import MPI
from solver.runs.rundir import FaultLog
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "case.yaml").write_text("name: flaky\\n")
if not (out / "attempted").exists():
    (out / "attempted").write_text("")
    fault = FaultLog(out, MPI.COMM_WORLD)
    fault.step("step 2 (accepted, load 0.4, 1.0 s of solving)")
    ctypes.string_at(0)
(out / "summary.json").write_text(json.dumps({"wall_time_s": 0.5}))
"""


def test_a_local_run_that_crashes_in_native_code_is_retried(tmp_path, monkeypatch):
    """A run that dies of SIGSEGV once is started again (from its last checkpoint, where
    it has one); its log keeps the crash record."""
    import solver.hpc.local as sweep_module
    from solver.hpc.spec import write_manifest

    path = write_sweep(tmp_path, f"name: t\nbase: {SMALL}\nparameters: {{geometry.particles.seed: [1]}}\n")
    sweep = load_sweep(path, out=tmp_path / "out")
    run = sweep.runs[0]
    monkeypatch.setattr(sweep_module, "run_command",
                        lambda sw, r, ranks, interval=0.0: [sys.executable, "-c", FLAKY_RUN, str(sw.out / r.name)])
    write_manifest(sweep)
    pool = sweep_module.LocalPool(sweep, 1, 1)
    pool.env = subprocess_env()
    rc, _ = pool.launch(run)
    assert rc == 0
    log = (sweep.out / "logs" / f"{run.name}.log").read_text()
    assert "NativeCrash: the run process was killed by SIGSEGV (signal 11): Segmentation fault" in log
    assert "last step: step 2 (accepted, load 0.4" in log and "retry 1 of 2" in log
    assert (sweep.out / "logs" / f"{run.name}.state").read_text() == "exit 0\n"


def test_a_run_stops_with_a_checkpoint_before_its_deadline(tmp_path):
    """SSBFRAC_DEADLINE (the Slurm batch script sets it to the job's end time): the run stops
    with a checkpoint (exit status 85) once the time left would not cover its longest step
    with a margin, before the deadline, and --restart continues it."""
    out = tmp_path / "run"
    env = subprocess_env()
    deadline = time.time() + 25
    env["SSBFRAC_DEADLINE"] = f"{deadline:.0f}"
    args = ["run", str(SMALL), "--out", str(out), "--set", "loading.steps=400", "--progress", "lines"]
    r = subprocess.run(ssbfrac_cmd() + args, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 85, r.stdout + r.stderr
    assert time.time() < deadline + 1
    assert "stopping before the time limit" in r.stdout
    stopped = json.loads((out / "stopped.json").read_text())
    assert stopped["reason"] == "time limit near" and 0 < stopped["accepted_steps"] < 400
    assert (out / "checkpoint.h5").exists() and not (out / "fault.log").exists()
