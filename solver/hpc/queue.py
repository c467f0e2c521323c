"""The Slurm queue as a sweep sees it: the job arrays submitted for a sweep
(``<sweep>/slurm/jobs.json``) and which of their tasks ``squeue`` still lists."""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
from pathlib import Path


# --------------------------------------------------------------------------- the queue
def jobs_path(out: Path) -> Path:
    return out / "slurm" / "jobs.json"


def load_jobs(out: Path) -> list[dict]:
    try:
        return json.loads(jobs_path(out).read_text())
    except (FileNotFoundError, ValueError):
        return []


def squeue_tasks(tasks: set[str]) -> dict[str, str] | None:
    """Which of these array tasks ('12_3') are still in the queue, with their state
    ({'12_3': 'RUNNING'}); None when squeue is absent or does not answer."""
    if shutil.which("squeue") is None:
        return None
    try:
        r = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-u", getpass.getuser()],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    queue = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in tasks:
            queue[parts[0]] = parts[1]
    return queue


def final_states(tasks: set[str]) -> dict[str, str]:
    """The final Slurm states ('TIMEOUT', 'OUT_OF_MEMORY', 'CANCELLED', ...) of array tasks
    that left the queue, from sacct where Slurm keeps accounting, else from squeue while
    slurmctld still lists finished jobs (MinJobAge); tasks Slurm cannot tell are left out."""
    states: dict[str, str] = {}
    if not tasks:
        return states
    commands = []
    if shutil.which("sacct"):
        commands.append(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(sorted(tasks))])
    if shutil.which("squeue"):
        commands.append(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-u", getpass.getuser()])
    for cmd in commands:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode != 0:
            continue
        for line in r.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 2 and parts[0] in tasks and parts[1].split():
                states.setdefault(parts[0], parts[1].split()[0])  # 'CANCELLED by 0' -> 'CANCELLED'
        if set(states) >= tasks:
            break
    return states


def submitted_tasks(out: Path) -> set[str]:
    """Every array task ('12_3') submitted for this sweep."""
    return {f"{job['job_id']}_{index}" for job in load_jobs(out) for index in job["runs"]}


def queued_tasks(out: Path) -> tuple[dict[str, str] | None, dict[str, str]]:
    """(tasks of this sweep's jobs still in the queue, or None when unknown;
    run name -> array task of its latest submission)."""
    jobs = load_jobs(out)
    if not jobs:
        return None, {}
    latest = {}
    for job in jobs:
        for index, name in job["runs"].items():
            latest[name] = f"{job['job_id']}_{index}"
    return squeue_tasks(submitted_tasks(out)), latest
