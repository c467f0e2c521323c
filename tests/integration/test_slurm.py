"""Sweeps as Slurm job arrays on a real Slurm, and scripts/slurm-local.

The sweep test starts nothing itself: it needs a running Slurm (``.ci/run`` starts a
single-node one with ``scripts/slurm-local start``) and skips with the reason otherwise.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, ssbfrac_cmd, subprocess_env

SMALL = ROOT / "tests" / "data" / "small.yaml"
SLURM_LOCAL = ROOT / "scripts" / "slurm-local"


def slurm_unavailable() -> str | None:
    """Why a job cannot be submitted here, or None when sinfo shows a usable node."""
    for cmd in ("sinfo", "sbatch", "squeue"):
        if shutil.which(cmd) is None:
            return f"Slurm is not installed ({cmd} not found)"
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "Slurm is not running (sinfo did not answer within 20 s)"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Slurm is not running (sinfo: {last}); start one with scripts/slurm-local start"
    states = r.stdout.split()
    if not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"no usable Slurm node (sinfo states: {states or 'none'})"
    return None


def sweep_cli(args, timeout=600):
    return subprocess.run(ssbfrac_cmd() + ["sweep"] + [str(a) for a in args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout)


@pytest.mark.timeout(900)
def test_sweep_as_a_slurm_job_array(tmp_path):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    sweep = tmp_path / "array.yaml"
    sweep.write_text(f"""name: array
base: {SMALL}
parameters:
  materials.electrolyte.E: [1.0e10, 2.0e10, 4.0e10]
set:
  loading.steps: 2
backend: slurm
slurm:
  time: "00:10:00"
  max_parallel: 2
""")
    out = tmp_path / "out"
    r = sweep_cli([sweep, "--out", out, "--wait", "--poll", "1"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted job array" in r.stdout and "3 done, 0 running, 0 failed, 0 pending" in r.stdout
    names = {"E_SE=1e10": 1e10, "E_SE=2e10": 2e10, "E_SE=4e10": 4e10}
    for name, modulus in names.items():
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["case"]["materials"]["electrolyte"]["E"] == modulus
        assert summary["case"]["loading"]["steps"] == 2
        assert (out / "logs" / f"{name}.state").read_text() == "exit 0\n"
    jobs = json.loads((out / "slurm" / "jobs.json").read_text())
    assert len(jobs) == 1 and jobs[0]["array"] == "0-2%2"
    assert jobs[0]["runs"] == {"0": "E_SE=1e10", "1": "E_SE=2e10", "2": "E_SE=4e10"}
    job = jobs[0]["job_id"]
    for i, name in enumerate(names):
        text = (out / "slurm" / f"{job}_{i}.out").read_text()
        assert f"{name}: exit status 0" in text
        assert f"Slurm task {job}_{i}" in (out / "logs" / f"{name}.log").read_text()

    # a lost run is the only one submitted again
    shutil.rmtree(out / "E_SE=2e10")
    kept = {n: (out / n / "summary.json").stat().st_mtime_ns for n in ("E_SE=1e10", "E_SE=4e10")}
    r = sweep_cli([sweep, "--out", out, "--wait", "--poll", "1"])
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = json.loads((out / "slurm" / "jobs.json").read_text())
    assert len(jobs) == 2 and jobs[1]["array"] == "1%2" and jobs[1]["runs"] == {"1": "E_SE=2e10"}
    assert (out / "E_SE=2e10" / "summary.json").exists()
    assert {n: (out / n / "summary.json").stat().st_mtime_ns for n in kept} == kept
    s = sweep_cli([sweep, "--out", out, "--status"])
    assert s.returncode == 0 and "3 done, 0 running, 0 failed, 0 pending" in s.stdout


def test_slurm_local_refuses_without_its_prerequisites(tmp_path):
    """scripts/slurm-local installs nothing: without the daemons (or as non-root) it stops
    with a message and a non-zero status, before touching anything."""
    empty = tmp_path / "bin"
    empty.mkdir()
    for tool in ("id", "cat", "grep", "hostname"):  # what the script needs besides Slurm and munge
        found = shutil.which(tool)
        if found:
            os.symlink(found, empty / tool)
    env = dict(os.environ, PATH=str(empty), SLURM_LOCAL_STATE_DIR=str(tmp_path / "state"))
    r = subprocess.run(["/bin/sh", str(SLURM_LOCAL), "start"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0
    assert ("must run as root" in r.stderr) or ("not found: munged munge unmunge slurmctld slurmd sinfo" in r.stderr)
    assert not (tmp_path / "state").exists()
    r = subprocess.run(["/bin/sh", str(SLURM_LOCAL), "bogus"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "usage:" in r.stderr
    assert Path(SLURM_LOCAL).stat().st_mode & 0o111, "scripts/slurm-local must be executable (.ci/run checks -x)"
