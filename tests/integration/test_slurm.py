"""Sweeps as Slurm job arrays on a real Slurm, and scripts/slurm-local.

The sweep test starts nothing itself: it needs a running Slurm (``.ci/run`` starts a
single-node one with ``scripts/slurm-local start``) and skips with the reason otherwise.
"""

import json
import os
import re
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


def _run_process(shell_pid: int) -> int | None:
    """The `ssbfrac run` process started by a batch shell (its child), if any."""
    try:
        children = Path(f"/proc/{shell_pid}/task/{shell_pid}/children").read_text().split()
    except OSError:
        return None
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run" in cmdline:
            return int(pid)
    return None


@pytest.mark.timeout(1500)
def test_slurm_tasks_survive_a_crash_and_the_time_limit(tmp_path):
    """Two runs with a 1-minute time limit. One is longer than the limit: it stops with a
    checkpoint before the limit (SSBFRAC_DEADLINE), its task requeues itself (only itself)
    and --status shows it as pending while it waits; it completes on a later attempt. The
    other is killed with SIGSEGV while it runs: error.txt names the signal and the last
    step, its task requeues itself once and the run completes.

    The run to crash is short (120 steps, some 10 to 30 s: time enough to be caught
    running, and its second attempt ends within the limit), so that the long run has a
    core of its own for the rest of the test; the long run (500 steps) needs more than one
    attempt also on a fast machine."""
    import signal
    import time

    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    sweep = tmp_path / "survive.yaml"
    sweep.write_text(f"""name: survive
base: {SMALL}
parameters:
  loading.steps: [120, 500]
backend: slurm
slurm:
  time: "1"
  max_parallel: 2
  signal_lead: 0      # Slurm may send the signal up to 60 s early: here it would stop every attempt at once
""")
    out = tmp_path / "out"
    r = sweep_cli([sweep, "--out", out])
    assert r.returncode == 0 and "submitted job array" in r.stdout, r.stdout + r.stderr
    crash, long = "steps=120", "steps=500"
    state = out / "logs" / f"{crash}.state"
    fault = out / crash / "fault.log"
    killed = None
    queued_again = False
    deadline = time.time() + 1400
    while time.time() < deadline:
        step = re.search(rb"last step: step ([0-9]+)", fault.read_bytes()[:400]) if fault.exists() else None
        if killed is None and step and int(step.group(1)) >= 3:
            words = state.read_text().split()
            pid = _run_process(int(words[2])) if words[:1] == ["running"] else None
            if pid is not None:
                os.kill(pid, signal.SIGSEGV)
                killed = pid
        s = sweep_cli([sweep, "--out", out, "--status"])
        queued_again |= "queued again" in s.stdout
        if "2 done" in s.stdout:
            break
        time.sleep(1)
    assert killed is not None, "the run to crash was not found running"
    s = sweep_cli([sweep, "--out", out, "--status"])
    assert s.returncode == 0 and "2 done, 0 running, 0 failed, 0 pending" in s.stdout, s.stdout
    assert queued_again, "a requeued task was never shown as pending ('queued again')"
    log = (out / "logs" / f"{crash}.log").read_text()
    assert "NativeCrash: the run process was killed by SIGSEGV (exit 139): Segmentation fault" in log
    assert "last step: step" in log
    assert (out / "logs" / f"{crash}.crashes").read_text().strip() == "1"
    job = json.loads((out / "slurm" / "jobs.json").read_text())[0]["job_id"]
    assert "after a crash (1 of 2)" in (out / "slurm" / f"{job}_0.out").read_text()
    long_log = (out / "logs" / f"{long}.log").read_text()
    assert "stopping before the time limit" in long_log and "(continued from its checkpoint)" in long_log
    assert json.loads((out / long / "summary.json").read_text())["restarts"] >= 1
    assert f"requeued as Slurm task {job}_1" in (out / "slurm" / f"{job}_1.out").read_text()
