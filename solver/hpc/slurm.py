"""Slurm backend of ``ssbfrac sweep``: one job array per submission, one array task per run.

The batch script ``<sweep>/slurm/sweep.sbatch`` is generated from the sweep's ``slurm:``
settings and holds absolute paths to this Python's ``ssbfrac`` (and ``mpiexec``), so the
tasks use the same installation as the command that submitted them. Array task ``i`` runs
the run whose ``index`` in ``runs.json`` is ``i``; a submission lists only the indices still
to do (``sbatch --array=0-3,7%4``). Each submission is appended to ``slurm/jobs.json``.

Time limits: the script exports the job's end time as ``SSBFRAC_DEADLINE``; the run
measures its steps and stops with a checkpoint (exit status 85, ``EXIT_CHECKPOINTED``)
at the first step boundary where the time left would not cover 1.5 times its longest
step so far (solver.runs.runner). It also writes a checkpoint every
``slurm.checkpoint_fraction`` of the time limit (``output.checkpoint_interval``), so a
run killed at the limit anyway loses at most that much. As a backstop Slurm signals the
batch shell ``SIGNAL_LEAD_S`` seconds before the limit (at most a quarter of the limit;
``--signal=B:USR1@...``); the script passes it on to the run as SIGTERM, and the run
finishes its step and stops the same way. The task then requeues itself (``scontrol
requeue <array job>_<task>``, at most ``SSBFRAC_MAX_REQUEUES`` times, 20 by default)
and, started again, continues the run with ``ssbfrac run --restart``. ``scancel`` sends
SIGTERM: a cancelled run also stops with a checkpoint, but is not requeued.

A run that dies of a signal in native code leaves ``fault.log``; the script turns it
into ``error.txt`` (``python -m solver.runs.rundir record-crash``) and requeues the task, at
most ``SSBFRAC_MAX_CRASH_RETRIES`` times (2 by default), to continue from the last
checkpoint.
"""

from __future__ import annotations

import json
import shlex
import sys
import shutil
import subprocess
import time
from pathlib import Path

from solver.hpc.local import find_mpiexec, ssbfrac_command
from solver.hpc.queue import jobs_path, load_jobs, squeue_tasks, submitted_tasks
from solver.hpc.checkpoints import checkpoint_override, time_limit_seconds
from solver.hpc.spec import Sweep, write_manifest
from solver.hpc.status import (RunStatus, counts, log_path, print_status, runs_to_launch, state_path, status_command,
                               sweep_status)
from solver.runs.rundir import RunError


def array_spec(indices: list[int], max_parallel: int | None = None) -> str:
    """``--array`` value for these task indices: consecutive ones become ranges."""
    parts: list[str] = []
    ordered = sorted(set(indices))
    start = prev = ordered[0]
    for i in ordered[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts) + (f"%{max_parallel}" if max_parallel else "")


#: seconds before the time limit at which Slurm asks a task to stop (a backstop: the run
#: itself stops before a step that would not end in time, see solver.runs.runner); an
#: ``extra_sbatch`` ``--signal`` overrides it
SIGNAL_LEAD_S = 120


def signal_lead(limit_s: float | None, setting: int | None = None) -> int:
    """Seconds before the time limit for the backstop SIGUSR1 (0: none): ``setting``
    (slurm.signal_lead) if given, else SIGNAL_LEAD_S, at most a quarter of a short limit
    (a lead as long as the limit would stop the run at once; Slurm may also send the
    signal up to 60 s before the lead)."""
    if setting is not None:
        return setting
    return SIGNAL_LEAD_S if not limit_s else max(1, min(SIGNAL_LEAD_S, int(limit_s // 4)))


#: exit status of a run that stopped with a checkpoint (solver.runs.checkpoint.EXIT_CHECKPOINTED)
EXIT_CHECKPOINTED = 85


def script_path(sweep: Sweep) -> Path:
    return sweep.out / "slurm" / "sweep.sbatch"


def batch_script(sweep: Sweep) -> str:
    """The job-array script: resources as #SBATCH lines, then one run per array task."""
    s = sweep.spec.slurm
    limit = time_limit_seconds(s.time)
    lead = signal_lead(limit, s.signal_lead)
    out = str(sweep.out)
    if any(c.isspace() for c in out):
        raise RunError(f"{out}: the sweep directory of a Slurm sweep must not contain spaces (use --out)")
    q = shlex.quote
    sbatch = [f"--job-name=ssbfrac-{sweep.spec.name}", f"--output={out}/slurm/%A_%a.out",
              "--open-mode=append", f"--ntasks={s.ntasks_per_run}", f"--cpus-per-task={s.cpus_per_task}",
              *([f"--signal=B:USR1@{lead}"] if lead else []), "--requeue"]
    for option, value in (("time", s.time), ("partition", s.partition), ("account", s.account), ("mem", s.mem)):
        if value is not None:
            sbatch.append(f"--{option}={value}")
    sbatch += s.extra_sbatch
    if s.ntasks_per_run == 1:
        launch = ""
    elif s.launcher == "mpiexec":
        launch = f'{q(find_mpiexec())} -n "$SLURM_NTASKS"'
    else:
        launch = " ".join(q(w) for w in shlex.split(s.launcher))
    interval = s.checkpoint_fraction * limit if limit else 0.0
    checkpoint = [w for o in checkpoint_override(sweep, interval) for w in ("--set", o)]
    lines = [
        "#!/bin/bash",
        f"# ssbfrac sweep '{sweep.spec.name}' ({sweep.path.absolute()}): one array task runs the run of",
        "# runs.json whose index is SLURM_ARRAY_TASK_ID. Written by `ssbfrac sweep`, which submits it as",
        f"#   sbatch --array=<indices>[%<max parallel>] {script_path(sweep)}",
        *[f"#SBATCH {opt}" for opt in sbatch],
        "",
        "set -u",
        f"SWEEP_DIR={q(out)}",
        f"PYTHON={q(str(Path(sys.executable).absolute()))}",
        f"SSBFRAC=({' '.join(q(w) for w in ssbfrac_command())})",
        f"LAUNCH=({launch})",
        f"BASE={q(str(sweep.base))}",
        f"# a checkpoint every {s.checkpoint_fraction:g} of the time limit (slurm.checkpoint_fraction)",
        f"CHECKPOINT=({' '.join(q(w) for w in checkpoint)})",
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        "",
        'task="${SLURM_ARRAY_TASK_ID:?submit this script as a job array: sbatch --array=...}"',
        "# the run name, then one --set override per line",
        'mapfile -t spec < <("$PYTHON" -c \'',
        "import json, sys",
        "runs = json.load(open(sys.argv[1]))",
        "for name, run in runs.items():",
        "    if run[\"index\"] == int(sys.argv[2]):",
        "        print(name)",
        "        for override in run[\"overrides\"]:",
        "            print(override)",
        '\' "$SWEEP_DIR/runs.json" "$task")',
        'name="${spec[0]:-}"',
        'if [ -z "$name" ]; then echo "no run with index $task in $SWEEP_DIR/runs.json" >&2; exit 2; fi',
        "args=()",
        'for override in "${spec[@]:1}"; do args+=(--set "$override"); done',
        'run_dir="$SWEEP_DIR/$name"',
        'log="$SWEEP_DIR/logs/$name.log"',
        'state="$SWEEP_DIR/logs/$name.state"',
        'if [ -e "$run_dir/summary.json" ]; then echo "$name: already complete"; exit 0; fi',
        "# a run with a checkpoint is continued, any other existing directory started again",
        'if [ -e "$run_dir/checkpoint.h5" ]; then args+=(--restart); how="continued from its checkpoint"',
        'elif [ -e "$run_dir" ]; then args+=(--overwrite); how="started again"',
        'else how="started"; fi',
        'mkdir -p "$SWEEP_DIR/logs"',
        'job="${SLURM_ARRAY_JOB_ID}_${task}"',
        'echo "running $(hostname) $$ $job" > "$state"',
        "# this task's end time: the run stops with a checkpoint before a step that would not end by then",
        "# (asked by array task: the job id of the array's last task also names the whole array)",
        'unset SSBFRAC_DEADLINE',
        'end=$(squeue -h -j "$job" -o %e 2>/dev/null | head -n 1)',
        'case "$end" in [0-9]*) deadline=$(date -d "$end" +%s 2>/dev/null) && export SSBFRAC_DEADLINE="$deadline" ;; esac',
        'if [ -n "${SSBFRAC_DEADLINE:-}" ]; then deadline_text=", time limit at $(date -d "@$SSBFRAC_DEADLINE" \'+%H:%M:%S\')"; else deadline_text=""; fi',
        'header="# ssbfrac sweep: run $name ($how), Slurm task $job on $(hostname), $(date \'+%Y-%m-%d %H:%M:%S\')$deadline_text"',
        "# a new attempt replaces the log, unless it continues the run or this task was requeued (a crash)",
        'if [ "$how" = "continued from its checkpoint" ] || [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then',
        '    echo "$header" >> "$log"',
        'else echo "$header" > "$log"; fi',
        f"# The run stops with a checkpoint (exit status {EXIT_CHECKPOINTED}) before a step that would not end",
        "# by the deadline, and the task requeues itself to continue with --restart. As a backstop Slurm",
        *([f"# sends SIGUSR1 to this shell {lead} s before the time limit (--signal=B:USR1@{lead}),",
           "# passed on to the run as SIGTERM: it finishes its step and stops the same way."] if lead else
          ["# would send SIGUSR1 before the time limit, but slurm.signal_lead is 0 (no signal)."]),
        "# scancel sends SIGTERM: the run stops with a checkpoint as well, but is not requeued.",
        "timelimit=0",
        "cancelled=0",
        '"${LAUNCH[@]}" "${SSBFRAC[@]}" run "$BASE" --out "$run_dir" "${CHECKPOINT[@]}" "${args[@]}" >> "$log" 2>&1 &',
        "pid=$!",
        """trap 'signalled=1; timelimit=1; echo "running $(hostname) $$ $job timelimit" > "$state"; kill -TERM "$pid" 2>/dev/null' USR1""",
        """trap 'signalled=1; cancelled=1; kill -TERM "$pid" 2>/dev/null' TERM""",
        "while :; do",
        "    signalled=0",
        '    wait "$pid"',
        "    status=$?",
        "    # a trapped signal ends the wait early (status > 128) while the run goes on: wait again",
        '    if [ "$signalled" = 0 ] || [ "$status" -le 128 ]; then break; fi',
        "done",
        "# a crash in native code (the run's fault.log) becomes error.txt, kept in the log as well; the",
        "# task requeues itself to continue from the last checkpoint (at most SSBFRAC_MAX_CRASH_RETRIES",
        "# times, 2 by default): such crashes (see docs/hpc.md) need not repeat",
        f'if [ "$status" -ne 0 ] && [ "$status" -ne {EXIT_CHECKPOINTED} ] \\',
        '        && "$PYTHON" -m solver.runs.rundir record-crash "$run_dir" "$status"; then',
        '    cat "$run_dir/error.txt" >> "$log"',
        '    crashes=$(cat "$SWEEP_DIR/logs/$name.crashes" 2>/dev/null || echo 0)',
        '    if [ "$cancelled" = 0 ] && [ "$crashes" -lt "${SSBFRAC_MAX_CRASH_RETRIES:-2}" ] && [ -n "${SLURM_JOB_ID:-}" ] \\',
        '            && [ "${SLURM_RESTART_COUNT:-0}" -lt "${SSBFRAC_MAX_REQUEUES:-20}" ] \\',
        '            && scontrol requeue "$job"; then',
        '        echo $((crashes + 1)) > "$SWEEP_DIR/logs/$name.crashes"',
        '        echo "$name: requeued as Slurm task $job after a crash ($((crashes + 1)) of ${SSBFRAC_MAX_CRASH_RETRIES:-2})"',
        "        exit 0",
        "    fi",
        "fi",
        f'if [ "$status" -eq {EXIT_CHECKPOINTED} ]; then',
        '    echo "$name: stopped with a checkpoint (exit status $status)"',
        "    # requeue this array task only: the job id of an array's last task is the array's own id,",
        "    # and `scontrol requeue <that id>` would requeue every task of the array",
        '    if { [ "$timelimit" = 1 ] || [ "$cancelled" = 0 ]; } && [ -n "${SLURM_JOB_ID:-}" ] \\',
        '            && [ "${SLURM_RESTART_COUNT:-0}" -lt "${SSBFRAC_MAX_REQUEUES:-20}" ] \\',
        '            && scontrol requeue "$job"; then',
        '        echo "$name: requeued as Slurm task $job; it continues from its checkpoint"',
        "        exit 0",
        "    fi",
        '    echo "$name: not requeued: launch the sweep again (with --rerun-failed) to continue it from its checkpoint"',
        "fi",
        'echo "exit $status" > "$state"',
        'echo "$name: exit status $status (log: $log)"',
        "exit $status",
        "",
    ]
    return "\n".join(lines)


def wait_for(tasks: set[str], poll: float) -> None:
    """Until none of these array tasks is in the queue; prints a line when the counts change."""
    shown, misses = None, 0
    while True:
        queue = squeue_tasks(tasks)
        if queue is None:
            misses += 1
            if misses > 5:
                raise RunError("squeue does not answer: cannot wait for the job array (see --status later)")
        else:
            misses = 0
            if not queue:
                return
            states: dict[str, int] = {}
            for st in queue.values():
                states[st.lower()] = states.get(st.lower(), 0) + 1
            line = ", ".join(f"{n} {st}" for st, n in sorted(states.items()))
            if line != shown:
                print(f"  {time.strftime('%H:%M:%S')} tasks in the queue: {line}", flush=True)
                shown = line
        time.sleep(poll)


# --------------------------------------------------------------------------- submission
def run_slurm(sweep: Sweep, statuses: list[RunStatus], rerun_failed: bool, dry_run: bool,
              wait: bool, poll: float) -> int:
    s = sweep.spec.slurm
    todo = runs_to_launch(statuses, rerun_failed)
    print(f"sweep {sweep.spec.name}: {len(statuses)} runs ({counts(statuses)}); {len(todo)} to submit "
          f"as a Slurm job array, {s.ntasks_per_run} rank(s) per run -> {sweep.out}", flush=True)
    skipped = [st for st in statuses if st.state == "failed" and not rerun_failed]
    if skipped:
        print(f"  {len(skipped)} failed run(s) not rerun (use --rerun-failed): "
              + ", ".join(st.run.name for st in skipped), flush=True)
    if todo:
        path = script_path(sweep)
        script = batch_script(sweep)
        cmd = ["sbatch", "--parsable", f"--array={array_spec([st.run.index for st in todo], s.max_parallel)}", str(path)]
        if dry_run:
            print(f"# {path}:")
            print(script)
            print(shlex.join(cmd))
            return 0
        if shutil.which("sbatch") is None:
            raise RunError("sbatch not found: Slurm is not available here (use --backend local)")
        write_manifest(sweep)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        path.chmod(0o755)
        # the earlier attempt's record goes before the task can write a new one
        for st in todo:
            state_path(sweep, st.run).unlink(missing_ok=True)
            state_path(sweep, st.run).with_suffix(".crashes").unlink(missing_ok=True)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise RunError("sbatch did not answer within 120 s") from None
        if r.returncode != 0:
            raise RunError(f"sbatch failed (exit status {r.returncode}): {(r.stderr or r.stdout).strip()}")
        job_id = r.stdout.strip().split(";")[0]
        jobs = load_jobs(sweep.out)
        jobs.append({"job_id": job_id, "array": cmd[2].removeprefix("--array="),
                     "runs": {str(st.run.index): st.run.name for st in todo},
                     "submitted": time.strftime("%Y-%m-%d %H:%M:%S")})
        jobs_path(sweep.out).write_text(json.dumps(jobs, indent=1) + "\n")
        print(f"submitted job array {job_id} ({cmd[2]}); logs in {log_path(sweep, todo[0].run).parent}; "
              f"status: {status_command(sweep)}; cancel: scancel {job_id}", flush=True)
    else:
        print("  nothing to submit", flush=True)
        if dry_run:
            return 0
    if not wait:
        return 1 if skipped else 0
    tasks = submitted_tasks(sweep.out)
    if tasks:
        wait_for(tasks, poll)
    final = sweep_status(sweep)
    print_status(sweep, final, details=any(st.state != "done" for st in final))
    return 0 if all(st.state == "done" for st in final) else 1
