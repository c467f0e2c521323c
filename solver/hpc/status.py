"""The state of every run of a sweep: done, running, failed or pending, from its run
directory, the record its launcher keeps (``logs/<run>.state``) and the Slurm queue."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path

from solver.hpc.queue import final_states, queued_tasks
from solver.hpc.spec import Run, Sweep
from solver.runs.rundir import describe_exit, in_use, run_state


# --------------------------------------------------------------------------- run states
#: exit statuses of runs that were stopped rather than failed (Ctrl-C, SIGTERM, SIGKILL)
INTERRUPTED = {130, 143, 137, -2, -15, -9}


#: exit status of a run that stopped on request after writing its checkpoint (continued with --restart)
CHECKPOINTED = 85
#: Slurm job states of a task that waits in the queue (not started, or requeued)
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
#: final Slurm job states (sacct), as run details: (state of the run, text)
SLURM_FINAL = {
    "TIMEOUT": ("pending", "time limit: killed before it stopped with a checkpoint"),
    "OUT_OF_MEMORY": ("failed", "out of memory (raise slurm.mem)"),
    "NODE_FAIL": ("pending", "node failure"),
    "PREEMPTED": ("pending", "preempted"),
    "CANCELLED": ("pending", "cancelled"),
    "BOOT_FAIL": ("pending", "node boot failure"),
    "DEADLINE": ("pending", "deadline reached"),
}


@dataclass
class RunStatus:
    run: Run
    state: str            # done | running | failed | pending
    detail: str
    active: bool = False  # running, or queued in Slurm: do not launch again


def log_path(sweep: Sweep, run: Run) -> Path:
    return sweep.out / "logs" / f"{run.name}.log"


def state_path(sweep: Sweep, run: Run) -> Path:
    return sweep.out / "logs" / f"{run.name}.state"


def read_state(path: Path) -> list[str] | None:
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None
    return words or None


def _process_alive(host: str, pid: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine: cannot tell, assume it runs
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def run_status(sweep: Sweep, run: Run, queue: dict[str, str] | None, queued: dict[str, str],
               finished: dict[str, str] | None = None) -> RunStatus:
    """``queue``: Slurm array tasks of this sweep still in the queue ({'12_3': 'PENDING'}),
    None where Slurm cannot be asked; ``queued``: run name -> task of its latest submission;
    ``finished``: final Slurm states of tasks that left the queue ({'12_3': 'TIMEOUT'}),
    where Slurm's accounting can tell."""

    d = sweep.out / run.name
    state = run_state(d)
    if state == "running":  # a live ssbfrac process holds the directory
        owner = in_use(d) or {}
        return RunStatus(run, "running", f"PID {owner.get('pid', '?')} on {owner.get('host', '?')}", active=True)
    if state == "complete":
        try:
            wall = json.loads((d / "summary.json").read_text()).get("wall_time_s")
        except (OSError, ValueError):
            wall = None
        return RunStatus(run, "done", f"{wall:.1f} s" if isinstance(wall, (int, float)) else "complete")
    record = read_state(state_path(sweep, run))
    if record and record[0] == "running":
        host, pid = (record[1:3] + ["", ""])[:2]
        job = record[3] if len(record) > 3 else None
        if job is not None:
            where = f"Slurm task {job}"
            if queue is None:
                return RunStatus(run, "running", f"{where} (as last recorded: squeue does not answer)", active=True)
            if job in queue:
                if queue[job] in SLURM_WAITING:  # requeued (time limit): waits to continue from its checkpoint
                    return RunStatus(run, "pending", f"queued again ({where}, {queue[job].lower()}); continues "
                                                     "from its checkpoint", active=True)
                return RunStatus(run, "running", where, active=True)
            final = (finished or {}).get(job)
            if final in SLURM_FINAL:
                st, text = SLURM_FINAL[final]
                return RunStatus(run, st, f"{text} ({where})")
            if "timelimit" in record[4:]:
                return RunStatus(run, "pending", f"{SLURM_FINAL['TIMEOUT'][1]} ({where})")
            return RunStatus(run, "pending", f"interrupted ({where} ended without an exit status"
                                             f"{', Slurm state ' + final if final else ''})")
        where = f"PID {pid} on {host}"
        if _process_alive(host, pid):
            return RunStatus(run, "running", where, active=True)
        return RunStatus(run, "pending", f"interrupted ({where} ended without an exit status)")
    if record and record[0] == "exit":
        code = int(record[1]) if len(record) > 1 and re.fullmatch(r"-?[0-9]+", record[1]) else None
        if code in INTERRUPTED:
            return RunStatus(run, "pending", f"interrupted ({describe_exit(code)})")
        if code == CHECKPOINTED:
            return RunStatus(run, "pending", "stopped with a checkpoint (continued with --restart)")
        if code == 0:  # finished, then its directory (or summary.json) was removed: run it again
            return RunStatus(run, "pending", "results removed after the run")
        return RunStatus(run, "failed", describe_exit(code) if code is not None else "exit status unknown")
    task = queued.get(run.name)
    if task is not None and queue is not None and task in queue:
        return RunStatus(run, "pending", f"queued (Slurm task {task}, {queue[task].lower()})", active=True)
    if state == "failed":
        return RunStatus(run, "failed", "error.txt")
    if state == "checkpointed":
        return RunStatus(run, "pending", "stopped with a checkpoint (continued with --restart)")
    if state == "incomplete":
        return RunStatus(run, "pending", "incomplete directory (interrupted)")
    return RunStatus(run, "pending", "not started")


def sweep_status(sweep: Sweep) -> list[RunStatus]:
    queue, queued = queued_tasks(sweep.out)
    gone = []  # Slurm tasks recorded as running that left the queue without an exit status
    if queue is not None:
        for run in sweep.runs:
            record = read_state(state_path(sweep, run))
            if record and record[0] == "running" and len(record) > 3 and record[3] not in queue:
                gone.append(record[3])
    finished = final_states(set(gone)) if gone else {}
    return [run_status(sweep, run, queue, queued, finished) for run in sweep.runs]


def failure_text(sweep: Sweep, run: Run, lines: int = 5) -> list[str]:
    """The last lines of the run's error.txt, else of its log. ``ssbfrac run`` exits with
    status 2 when it stops before running (invalid case, packing, directory): it writes no
    error.txt then, and an error.txt in the directory is from an earlier attempt."""
    sources = [sweep.out / run.name / "error.txt", log_path(sweep, run)]
    if read_state(state_path(sweep, run)) == ["exit", "2"]:
        sources = sources[1:]
    for path in sources:
        try:
            text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        if text:
            return text[-lines:]
    return []


def counts(statuses: list[RunStatus]) -> str:
    n = {s: 0 for s in ("done", "running", "failed", "pending")}
    for st in statuses:
        n[st.state] += 1
    return ", ".join(f"{v} {k}" for k, v in n.items())


def print_status(sweep: Sweep, statuses: list[RunStatus], details: bool = True) -> None:
    print(f"sweep {sweep.spec.name}: {len(statuses)} runs in {sweep.out}: {counts(statuses)}")
    if not details:
        return
    width = max(len(st.run.name) for st in statuses)
    for st in statuses:
        print(f"  {st.state:<8} {st.run.name:<{width}}  {st.detail}")
        if st.state == "failed":
            for line in failure_text(sweep, st.run):
                print(f"      | {line}")
            print(f"      log: {log_path(sweep, st.run)}")


def runs_to_launch(statuses: list[RunStatus], rerun_failed: bool) -> list[RunStatus]:
    return [st for st in statuses
            if not st.active and (st.state == "pending" or (st.state == "failed" and rerun_failed))]


def status_command(sweep: Sweep) -> str:
    """The command that shows this sweep's status (with --out when it is not the default)."""
    default = Path(sweep.spec.output) if sweep.spec.output else Path("results") / sweep.spec.name
    out = [] if Path(os.path.abspath(default)) == sweep.out else ["--out", str(sweep.out)]
    return shlex.join(["ssbfrac", "sweep", str(sweep.path), "--status", *out])
