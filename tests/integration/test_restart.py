"""Checkpoint and restart of whole runs: ``ssbfrac run`` stops on request with a
checkpoint (exit status 85) and ``ssbfrac run --restart`` continues it to the same
results as an uninterrupted run.

* a prescribed-path fracture run (tests/data/fracture_small.yaml, coarsened) stopped
  twice by the test hook SSBFRAC_STOP_AFTER_STEPS and continued twice; the same run as if
  killed after a periodic checkpoint (outputs written past the checkpoint are cut back);
* a galvanostatic run (tests/data/electrochem_small.yaml) stopped through the Slurm batch
  script of a sweep (the time-limit signal forwarded as SIGTERM, requeue with a stand-in
  scontrol), continued on 2 MPI ranks;
* a 3D fracture run (cases/microstructures/spheres_3d.yaml, small and coarse, with the
  history field) stopped on 2 MPI ranks and continued on 1 (checkpoint written in parallel);
* the refusals: no checkpoint, complete run, different case, foreign checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, mpiexec, ssbfrac_cmd, subprocess_env
from solver.runs.checkpoint import EXIT_CHECKPOINTED
from solver.runs.writers import read_history
from solver.runs.rundir import CHECKPOINT_FILE, STOP_AFTER_ENV, STOP_MARKER, run_state

FRACTURE = ROOT / "tests" / "data" / "fracture_small.yaml"
ELECTROCHEM = ROOT / "tests" / "data" / "electrochem_small.yaml"
# a coarse, short version of the fracture case: cracks, one rejected step, 8 accepted steps
SHRINK = ["loading.steps=6", "loading.path=[0.0, 0.6]", "geometry.mesh.size=0.3e-6",
          "geometry.mesh.interface_size=0.2e-6", "output.fields_every=2"]
#: history columns that describe the solution (solver effort and wall time may differ)
SOLUTION_COLUMNS = ("step", "accepted", "time", "load", "x", "soc", "vol_strain", "mean_strain", "sigma1_max_SE",
                    "sigma_h_min_AM", "elastic_energy", "fracture_energy", "crack_length", "crack_length_sharp",
                    "damaged_fraction", "crack_segments", "d_max", "voltage", "current_density", "capacity",
                    "capacity_fraction", "segment", "kappa_eff_rel")


def ssbfrac(case: Path, out: Path, sets=(), *extra: str, stop_after: int | None = None, ranks: int = 1,
            timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = ssbfrac_cmd() + ["run", str(case), "--out", str(out), "--progress", "none", *extra]
    for s in sets:
        cmd += ["--set", s]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    env = subprocess_env()
    env.pop(STOP_AFTER_ENV, None)
    if stop_after is not None:
        env[STOP_AFTER_ENV] = str(stop_after)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def assert_same_history(ref: Path, run: Path, rtol: float) -> None:
    a, b = read_history(ref / "history.csv"), read_history(run / "history.csv")
    assert list(a) == list(b)
    assert len(a["step"]) == len(b["step"])
    for col in SOLUTION_COLUMNS:
        if col not in a:
            continue
        x, y = a[col], b[col]
        scale = np.nanmax(np.abs(x)) if np.any(np.isfinite(x)) else 0.0
        assert np.allclose(x, y, rtol=rtol, atol=rtol * scale + 1e-12, equal_nan=True), \
            (col, np.nanmax(np.abs(x - y)))


def assert_same_series(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert len(a[name]) == len(b[name]) and np.allclose(a[name], b[name], rtol=1e-9), name


def field_series(run: Path) -> dict[str, list[float]]:
    """Times of every function's temporal collection in fields.xdmf (which must parse and
    whose HDF5 datasets must all exist)."""
    import h5py

    root = ET.parse(run / "fields.xdmf").getroot()
    series = {}
    with h5py.File(run / "fields.h5", "r") as h5:
        for collection in root.find("Domain").findall("Grid"):
            if collection.get("CollectionType") != "Temporal":
                continue
            steps = collection.findall("Grid")
            series[collection.get("Name")] = [float(g.find("Time").get("Value")) for g in steps]
            for g in steps:
                for item in g.iter("DataItem"):
                    assert "/" + item.text.strip().split(":/", 1)[1] in h5, item.text
    return series


# --------------------------------------------------------------------------- a fracture run, stopped and continued
@pytest.fixture(scope="module")
def fracture_runs(tmp_path_factory):
    """A: uninterrupted. B: stopped after 3 and 6 accepted steps, then completed.
    C: B as it was after its first stop (checkpoint after step 3). D: B as it was after
    its second stop, with C's checkpoint and without stopped.json: a run killed after a
    periodic checkpoint, having written rows and fields past it, continued on 2 ranks."""
    base = tmp_path_factory.mktemp("restart")
    dirs = {k: base / k for k in "ABCD"}
    r = ssbfrac(FRACTURE, dirs["A"], SHRINK)
    assert r.returncode == 0, r.stderr[-3000:]
    log = {}
    periodic = SHRINK + ["output.checkpoint_every=2"]  # B writes checkpoints along the way too
    r = ssbfrac(FRACTURE, dirs["B"], periodic, stop_after=3)
    log["first stop"] = r
    shutil.copytree(dirs["B"], dirs["C"])
    log["state after stop"] = run_state(dirs["B"])
    log["rows after stop"] = len(read_history(dirs["B"] / "history.csv")["step"])
    r = ssbfrac(FRACTURE, dirs["B"], periodic, "--restart", stop_after=6)
    log["second stop"] = r
    shutil.copytree(dirs["B"], dirs["D"])
    log["restart"] = ssbfrac(FRACTURE, dirs["B"], periodic, "--restart")
    shutil.copy2(dirs["C"] / CHECKPOINT_FILE, dirs["D"] / CHECKPOINT_FILE)
    (dirs["D"] / STOP_MARKER).unlink()
    log["killed state"] = run_state(dirs["D"])
    # continued on 2 ranks (when there is an mpiexec) from the checkpoint written on 1
    log["killed restart"] = ssbfrac(FRACTURE, dirs["D"], SHRINK, "--restart", ranks=2 if mpiexec() else 1)
    return dirs, log


def test_stop_request_writes_checkpoint_and_exit_status_85(fracture_runs):
    dirs, log = fracture_runs
    r = log["first stop"]
    assert r.returncode == EXIT_CHECKPOINTED, r.stdout[-2000:] + r.stderr[-3000:]
    assert "--restart" in r.stderr and "checkpoint" in r.stderr
    c = dirs["C"]
    assert not (c / "summary.json").exists() and not (c / "error.txt").exists()
    assert (c / CHECKPOINT_FILE).exists() and log["state after stop"] == "checkpointed"
    stopped = json.loads((c / STOP_MARKER).read_text())
    assert stopped["status"] == "checkpointed" and stopped["accepted_steps"] == 3
    assert stopped["restart_command"].endswith("--restart")
    # the history holds the rows up to the checkpointed step: initial state + 3 accepted
    h = read_history(c / "history.csv")
    assert log["rows after stop"] == len(h["step"]) and int(h["accepted"].sum()) == 4
    r = log["second stop"]
    assert r.returncode == EXIT_CHECKPOINTED, r.stderr[-3000:]


def test_restarted_run_equals_uninterrupted_run(fracture_runs):
    dirs, log = fracture_runs
    r = log["restart"]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    a, b = dirs["A"], dirs["B"]
    assert run_state(b) == "complete"
    assert not (b / CHECKPOINT_FILE).exists() and not (b / STOP_MARKER).exists()
    assert_same_history(a, b, rtol=1e-6)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    # checkpoints after accepted steps 2, 3 (stop), 4 and 6 (stop); none at the end
    assert sb["restarts"] == 2 and sb["ranks_per_attempt"] == [1, 1, 1] and sb["checkpoints_written"] == 4
    assert sa["final"]["crack_length"] > 1.0, "the case must crack"
    for k, v in sa["final"].items():
        if isinstance(v, float) and k != "wall":
            assert sb["final"][k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    for k in ("steps", "accepted_steps", "rejected_steps"):
        assert sb["counters"][k] == sa["counters"][k]
    assert sb["stages"]["final_crack"] == pytest.approx(sa["stages"]["final_crack"], rel=1e-6)
    # one field series, continued: the same time steps as the uninterrupted run
    assert sb["field_outputs"] == sa["field_outputs"] and sb["field_files"] == ["fields.xdmf"]
    series_a = field_series(a)
    assert_same_series(series_a, field_series(b))
    assert len(series_a["damage"]) == sa["field_outputs"]


def test_restart_after_a_kill_cuts_outputs_back_to_the_checkpoint(fracture_runs):
    dirs, log = fracture_runs
    assert log["killed state"] == "incomplete"
    r = log["killed restart"]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert_same_history(dirs["A"], dirs["D"], rtol=1e-6)
    assert_same_series(field_series(dirs["A"]), field_series(dirs["D"]))
    ranks = json.loads((dirs["D"] / "summary.json").read_text())["ranks_per_attempt"]
    assert ranks[-1] == (2 if mpiexec() else 1)


def test_restart_refusals(fracture_runs, tmp_path):
    """Refused restarts stop with a message (exit status 2) and leave the directory as it was."""
    import h5py
    from mpi4py import MPI

    from solver.runs.rundir import RunError
    from solver.runs.runner import run_case

    dirs, _ = fracture_runs

    def refused(out: Path, extra=(), overwrite=False, restart=True) -> str:
        with pytest.raises(RunError) as info:
            run_case(FRACTURE, out, SHRINK + list(extra), overwrite=overwrite, progress_mode="none",
                     comm=MPI.COMM_SELF, restart=restart)
        return str(info.value)

    assert "no run to restart" in refused(tmp_path / "nothing")
    assert "already complete" in refused(dirs["A"])
    assert "materials.electrolyte.E: run 15000000000.0, now 30000000000.0" in refused(
        dirs["C"], ["materials.electrolyte.E=30e9"])
    assert "give only one of them" in refused(dirs["C"], overwrite=True)
    assert "--restart to continue it" in refused(dirs["C"], restart=False)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    shutil.copy2(dirs["C"] / "case.yaml", incomplete / "case.yaml")
    assert "no checkpoint.h5 to restart from" in refused(incomplete)
    # a checkpoint of another run: the fingerprint check refuses it
    foreign = tmp_path / "foreign"
    shutil.copytree(dirs["C"], foreign)
    with h5py.File(foreign / CHECKPOINT_FILE, "a") as h5:
        h5.attrs["fingerprint"] = json.dumps({"case": "0123456789", "mesh": "1 cells, 3 vertices"})
    assert "does not belong to this run" in refused(foreign)
    assert run_state(foreign) == "checkpointed" and not (foreign / "error.txt").exists()
    # the command reports a refusal with exit status 2
    r = ssbfrac(FRACTURE, dirs["A"], SHRINK, "--restart")
    assert r.returncode == 2 and "ssbfrac: error:" in r.stderr and "nothing to restart" in r.stderr


# --------------------------------------------------------------------------- galvanostatic, through the Slurm script
def _batch_script(tmp_path: Path, ranks: int) -> Path:
    from solver.hpc.slurm import batch_script
    from solver.hpc.spec import load_sweep, write_manifest

    sweep_file = tmp_path / f"sweep{ranks}.yaml"
    sweep_file.write_text(f"""name: ec
base: {ELECTROCHEM}
parameters: {{geometry.particles.seed: [3]}}
set: {{loading.max_time_step: 40.0}}
backend: slurm
slurm: {{time: "00:10:00", ntasks_per_run: {ranks}}}
""")
    sweep = load_sweep(sweep_file, out=tmp_path / "sweep")
    write_manifest(sweep)
    script = tmp_path / f"job{ranks}.sh"
    script.write_text(batch_script(sweep))
    return script


def test_galvanostatic_run_stopped_by_slurm_signal_and_continued_on_two_ranks(tmp_path):
    ref = tmp_path / "ref"
    sets = ["geometry.particles.seed=3", "loading.max_time_step=40.0"]
    # checkpoints along the way (every 0.01 s of wall-clock time) change nothing
    r = ssbfrac(ELECTROCHEM, ref, sets + ["output.checkpoint_interval=0.01"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((ref / "summary.json").read_text())["checkpoints_written"] > 0
    assert not (ref / CHECKPOINT_FILE).exists()
    bin_dir = tmp_path / "bin"  # a stand-in scontrol that records the requeue
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/bash\necho \"$@\" >> {tmp_path / 'scontrol.calls'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = subprocess_env()
    env.pop(STOP_AFTER_ENV, None)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_JOB_ID="41",
               SLURM_JOB_ID="42", SLURM_NTASKS="1", SLURM_CPUS_PER_TASK="1")
    run_dir = tmp_path / "sweep" / "seed=3"
    job = subprocess.Popen(["bash", str(_batch_script(tmp_path, 1))], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and job.poll() is None:
        try:
            if len((run_dir / "history.csv").read_text().splitlines()) >= 4:
                break
        except OSError:
            pass
        time.sleep(0.05)
    job.send_signal(signal.SIGUSR1)  # what Slurm's --signal=B:USR1@120 does to the batch shell
    out, err = job.communicate(timeout=180)
    assert job.returncode == 0, out + err
    assert "stopped with a checkpoint (exit status 85)" in out and "requeued" in out
    # the array task itself (<array job>_<task>), not a job id that may name the whole array
    assert (tmp_path / "scontrol.calls").read_text().split() == ["requeue", "41_0"]
    assert run_state(run_dir) == "checkpointed"
    assert json.loads((run_dir / STOP_MARKER).read_text())["reason"] == "SIGTERM"
    assert (tmp_path / "sweep" / "logs" / "seed=3.state").read_text().startswith("running ")

    # the requeued task continues the run, here on 2 ranks
    ranks = 2 if mpiexec() is not None else 1
    env.update(SLURM_NTASKS=str(ranks), SLURM_RESTART_COUNT="1")
    r = subprocess.run(["bash", str(_batch_script(tmp_path, ranks))], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "seed=3: exit status 0" in r.stdout
    log = (tmp_path / "sweep" / "logs" / "seed=3.log").read_text()
    assert "(started)" in log and "(continued from its checkpoint)" in log and "continuing from" in log
    assert_same_history(ref, run_dir, rtol=1e-6)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (ref, run_dir))
    assert sb["ranks_per_attempt"] == [1, ranks] and sb["restarts"] == 1
    for k in ("time", "voltage", "capacity", "capacity_fraction", "x"):
        assert sb["final"][k] == pytest.approx(sa["final"][k], rel=1e-6), k
    assert [s["event"] for s in sb["cell"]["segments"]] == [s["event"] for s in sa["cell"]["segments"]]
    assert (run_dir / "profiles.csv").read_text().count("\n") == (ref / "profiles.csv").read_text().count("\n")
    assert_same_series(field_series(ref), field_series(run_dir))


# --------------------------------------------------------------------------- 3D, written on 2 ranks, continued on 1
SPHERES_3D = ROOT / "cases" / "microstructures" / "spheres_3d.yaml"
#: a small, coarse version of the 3D case (about 5k cells, 6 particles) that starts to crack
SMALL_3D = ["geometry.size=[8.0e-6, 9.0e-6, 9.0e-6]", "geometry.mesh.size=2.0e-6", "geometry.mesh.interface_size=0.8e-6",
            "fracture.enabled=true", "fracture.model=AT1", "fracture.irreversibility=history",
            "materials.electrolyte.fracture={critical_strain: 0.01, ell: 1.0e-6}", "loading.path=[0.0, 0.8]",
            "loading.steps=4", "output.fields_every=1"]


@pytest.mark.mpi
def test_3d_run_checkpointed_on_two_ranks_and_continued_on_one(tmp_path):
    """Every rank writes its part of the checkpoint (MPI-IO), the continuation on one rank
    reads it back (displacement, damage, its accepted value and the DG0 history field in
    3D) and ends where the uninterrupted one-rank run ends."""
    import h5py

    if mpiexec() is None:
        pytest.skip("mpiexec not found")
    ref, run = tmp_path / "ref", tmp_path / "run"
    r = ssbfrac(SPHERES_3D, ref, SMALL_3D)
    assert r.returncode == 0, r.stderr[-3000:]
    r = ssbfrac(SPHERES_3D, run, SMALL_3D, stop_after=2, ranks=2)
    assert r.returncode == EXIT_CHECKPOINTED, r.stdout[-2000:] + r.stderr[-3000:]
    with h5py.File(run / CHECKPOINT_FILE, "r") as h5:
        assert int(h5.attrs["comm_size"]) == 2 and h5.attrs["io"] == "parallel"
        functions = h5["functions"]
        assert set(functions) == {"displacement", "damage", "damage_accepted", "H_history"}
        assert functions["displacement"]["values"].shape[1] == 3 and functions["H_history"]["keys"].shape[1] == 6
        assert np.max(functions["H_history"]["values"][...]) > 0.0
    r = ssbfrac(SPHERES_3D, run, SMALL_3D, "--restart")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert_same_history(ref, run, rtol=1e-6)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (ref, run))
    assert sb["ranks_per_attempt"] == [2, 1] and sb["restarts"] == 1
    assert sa["final"]["d_max"] > 0.1, "the case must start to crack"
    assert_same_series(field_series(ref), field_series(run))


# --------------------------------------------------------------------------- cutting outputs back (no solver)
def test_cut_fields_keeps_the_first_steps_and_drops_the_others(tmp_path):
    """cut_fields on a series written by DOLFINx: 3 steps cut back to 2, then appended to."""
    import solver  # noqa: F401
    from dolfinx import fem, mesh
    from dolfinx.io import XDMFFile
    from mpi4py import MPI

    from solver.runs.writers import FieldWriter
    from solver.runs.restart import cut_fields

    domain = mesh.create_unit_square(MPI.COMM_SELF, 3, 3)
    f = fem.Function(fem.functionspace(domain, ("Lagrange", 1)), name="f")
    g = fem.Function(fem.functionspace(domain, ("DG", 0)), name="g")
    path = tmp_path / "fields.xdmf"
    with XDMFFile(MPI.COMM_SELF, str(path), "w") as xdmf:
        xdmf.write_mesh(domain)
        for t in (0.0, 1.0, 2.0):
            xdmf.write_function(f, t)
            xdmf.write_function(g, t)
    assert cut_fields(path, 5) is not None  # fewer steps than expected: not continued
    assert cut_fields(path, 2) is None
    writer = FieldWriter(path, domain, [f, g], append=True)
    f.x.array[:] = 7.0
    writer.write(2.5)
    writer.close()
    series = field_series(tmp_path)
    assert series == {"f": [0.0, 1.0, 2.5], "g": [0.0, 1.0, 2.5]}
    import h5py

    with h5py.File(tmp_path / "fields.h5", "r") as h5:
        assert sorted(h5["Function/f"]) == ["0", "1", "2_5"]
        assert np.all(h5["Function/f/2_5"][...] == 7.0)
    assert cut_fields(tmp_path / "missing.xdmf", 1) is not None
