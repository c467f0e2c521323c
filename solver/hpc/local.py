"""The local backend of ``ssbfrac sweep``: a pool of ``ssbfrac run`` processes on this
machine, ``parallel`` at a time, each under ``mpiexec -n M`` for M ranks per run.

Each run writes a checkpoint every ``local.checkpoint_interval`` seconds; Ctrl-C or
SIGTERM stops every run with a checkpoint (exit status 85) before the sweep exits; a run
that crashes in native code is continued from its last checkpoint (``CRASH_RETRIES``)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from solver.hpc.checkpoints import checkpoint_override
from solver.hpc.spec import Run, Sweep, write_manifest
from solver.hpc.status import (CHECKPOINTED, RunStatus, counts, failure_text, log_path, print_status, runs_to_launch,
                               state_path, status_command, sweep_status)
from solver.runs.rundir import CHECKPOINT_FILE, RunError, record_crash, run_state


# --------------------------------------------------------------------------- local backend
def ssbfrac_command() -> list[str]:
    """The ssbfrac of the running Python (absolute), for subprocesses and batch scripts."""
    exe = Path(sys.executable).absolute().parent / "ssbfrac"
    return [str(exe)] if exe.exists() else [str(Path(sys.executable).absolute()), "-m", "solver"]


def find_mpiexec() -> str:
    """The mpiexec next to the running Python (the MPI it was built with), else the one on PATH."""
    exe = Path(sys.executable).absolute().parent / "mpiexec"
    if exe.exists():
        return str(exe)
    found = shutil.which("mpiexec")
    if found is None:

        raise RunError("mpiexec not found next to the Python nor on PATH: needed for more than one rank per run")
    return found


def run_command(sweep: Sweep, run: Run, ranks: int, checkpoint_interval: float = 0.0) -> list[str]:
    """``[mpiexec -n M] ssbfrac run BASE --out DIR [--restart | --overwrite] --set ...``;
    ``checkpoint_interval`` (s) adds ``--set output.checkpoint_interval`` (checkpoint_override)."""
    cmd = ([find_mpiexec(), "-n", str(ranks)] if ranks > 1 else []) + ssbfrac_command()

    d = sweep.out / run.name
    cmd += ["run", str(sweep.base), "--out", str(d)]
    if run_state(d) in ("checkpointed", "incomplete", "failed") and (d / CHECKPOINT_FILE).is_file():
        cmd.append("--restart")  # continue from the checkpoint (a failed run: --rerun-failed)
    elif d.exists():
        cmd.append("--overwrite")
    for o in checkpoint_override(sweep, checkpoint_interval) + run.overrides:
        cmd += ["--set", o]
    return cmd


#: a run that crashes in native code (SIGSEGV, SIGABRT, ...) is continued from its last
#: checkpoint this many times by the local backend (the Slurm backend: SSBFRAC_MAX_CRASH_RETRIES)
CRASH_RETRIES = 2


class LocalPool:
    """Runs ``ssbfrac run`` subprocesses, ``parallel`` at a time; one failure stops nothing.

    The runs start in sessions of their own, so that a Ctrl-C at the terminal reaches only
    this process: on Ctrl-C or SIGTERM it sends SIGTERM to every run, which finishes its
    present step, writes its checkpoint and exits with status 85, and waits for them (a
    second Ctrl-C or SIGTERM kills them). Launching the sweep again continues them."""

    def __init__(self, sweep: Sweep, parallel: int, ranks: int, checkpoint_interval: float = 0.0):
        self.sweep, self.parallel, self.ranks = sweep, parallel, ranks
        self.checkpoint_interval = checkpoint_interval
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.env = dict(os.environ)
        self.env.setdefault("OMP_NUM_THREADS", "1")

    def launch(self, run: Run) -> tuple[int, float]:
        """Run one run to its end; a run that crashes in native code (error.txt written
        from its fault.log) is continued from its last checkpoint, at most
        ``CRASH_RETRIES`` times."""
        log, state = log_path(self.sweep, run), state_path(self.sweep, run)
        t0 = time.perf_counter()
        mode = "w"
        for attempt in range(CRASH_RETRIES + 1):
            cmd = run_command(self.sweep, run, self.ranks, self.checkpoint_interval)
            with open(log, mode) as fh:
                fh.write(f"# ssbfrac sweep {self.sweep.spec.name}: run {run.name} on {socket.gethostname()}, "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n# {shlex.join(cmd)}\n")
                fh.flush()
                with self.lock:
                    if self.stopping.is_set():
                        return 130, 0.0
                    try:
                        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=self.env, start_new_session=True)
                    except OSError as exc:
                        fh.write(f"ssbfrac sweep: cannot start the run: {exc}\n")
                        state.write_text("exit 127\n")
                        return 127, 0.0
                    self.procs[run.name] = proc
                    state.write_text(f"running {socket.gethostname()} {proc.pid}\n")
                rc = proc.wait()
                with self.lock:
                    del self.procs[run.name]
                crash = None
                if rc not in (0, CHECKPOINTED):
                    try:  # a crash in native code: error.txt from the run's fault.log
                        crash = record_crash(self.sweep.out / run.name, rc)
                    except OSError:
                        crash = None
                if crash is None or attempt == CRASH_RETRIES or self.stopping.is_set():
                    break
                fh.write(crash.read_text() + f"ssbfrac sweep: the run crashed; starting it again from its last "
                         f"checkpoint (retry {attempt + 1} of {CRASH_RETRIES})\n")
                mode = "a"
        state.write_text(f"exit {rc}\n")
        return rc, time.perf_counter() - t0

    def run_all(self, runs: list[Run]) -> bool:
        """Launch every run; False if interrupted (Ctrl-C or SIGTERM: the runs stop with a checkpoint)."""
        n = len(runs)
        pool = ThreadPoolExecutor(max_workers=self.parallel)
        futures = {pool.submit(self.launch, run): run for run in runs}
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for k, fut in enumerate(as_completed(futures), 1):
                run = futures[fut]
                rc, seconds = fut.result()
                if rc == 0:
                    print(f"[{k}/{n}] done    {run.name} ({seconds:.1f} s)", flush=True)
                else:
                    last = failure_text(self.sweep, run, lines=1)
                    print(f"[{k}/{n}] FAILED  {run.name} (exit status {rc}): {last[0] if last else ''}", flush=True)
        except KeyboardInterrupt:
            self.stop(pool, futures)
            return False
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        pool.shutdown(wait=True)
        return True

    def stop(self, pool: ThreadPoolExecutor, futures: dict) -> None:
        """Ask every running run to stop with a checkpoint (SIGTERM) and wait for them;
        a second interrupt kills them (SIGKILL)."""
        self.stopping.set()
        with self.lock:
            running = dict(self.procs)
        for proc in running.values():
            proc.terminate()
        if running:
            print(f"ssbfrac sweep: stopping: {len(running)} run(s) finish their present step and write a "
                  "checkpoint (Ctrl-C again to kill them)", flush=True)
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:
            with self.lock:
                for proc in self.procs.values():
                    proc.kill()
            print("ssbfrac sweep: killed the runs; they start again from the beginning (or their last "
                  "periodic checkpoint) next time", flush=True)
            pool.shutdown(wait=True, cancel_futures=True)
        stopped = [futures[f].name for f in futures if f.done() and not f.cancelled() and f.exception() is None
                   and f.result()[0] == CHECKPOINTED]
        print(f"ssbfrac sweep: interrupted; {len(stopped)} run(s) stopped with a checkpoint: launch the sweep "
              "again to continue them (the others are pending and start again)", flush=True)


def _raise_interrupt(signum, frame) -> None:
    """SIGTERM to ``ssbfrac sweep``: handled as Ctrl-C (stop the runs with a checkpoint)."""
    raise KeyboardInterrupt


def run_local(sweep: Sweep, statuses: list[RunStatus], rerun_failed: bool, dry_run: bool) -> int:
    settings = sweep.spec.local
    todo = runs_to_launch(statuses, rerun_failed)
    print(f"sweep {sweep.spec.name}: {len(statuses)} runs ({counts(statuses)}); "
          f"{len(todo)} to run, {settings.parallel} at a time, {settings.ranks_per_run} rank(s) each -> {sweep.out}",
          flush=True)
    skipped = [st for st in statuses if st.state == "failed" and not rerun_failed]
    if skipped:
        print(f"  {len(skipped)} failed run(s) not rerun (use --rerun-failed): "
              + ", ".join(st.run.name for st in skipped), flush=True)
    if settings.ranks_per_run > 1:
        find_mpiexec()  # before anything starts
    if dry_run:
        for st in todo:
            print(shlex.join(run_command(sweep, st.run, settings.ranks_per_run, settings.checkpoint_interval)))
        return 0
    write_manifest(sweep)
    if todo:
        pool = LocalPool(sweep, settings.parallel, settings.ranks_per_run, settings.checkpoint_interval)
        if not pool.run_all([st.run for st in todo]):
            return 130
    final = sweep_status(sweep)
    print_status(sweep, final, details=False)
    for st in final:
        if st.state == "failed":
            print(f"  failed: {st.run.name}: {st.detail}; log: {log_path(sweep, st.run)}")
    if all(st.state == "done" for st in final):
        return 0
    print(f"  details: {status_command(sweep)}")
    return 1
