"""The local backend of ``ssbfrac sweep``: a pool of ``ssbfrac run`` processes on this
machine, ``parallel`` at a time, each under ``mpiexec -n M`` for M ranks per run."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from solver.hpc.spec import Run, Sweep, write_manifest
from solver.hpc.status import (RunStatus, counts, failure_text, log_path, print_status, runs_to_launch, state_path,
                               status_command, sweep_status)
from solver.runs.rundir import CHECKPOINT_FILE, RunError, run_state


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


def run_command(sweep: Sweep, run: Run, ranks: int) -> list[str]:
    cmd = ([find_mpiexec(), "-n", str(ranks)] if ranks > 1 else []) + ssbfrac_command()

    d = sweep.out / run.name
    cmd += ["run", str(sweep.base), "--out", str(d)]
    if run_state(d) in ("checkpointed", "incomplete") and (d / CHECKPOINT_FILE).is_file():
        cmd.append("--restart")  # continue from the checkpoint
    elif d.exists():
        cmd.append("--overwrite")
    for o in run.overrides:
        cmd += ["--set", o]
    return cmd


class LocalPool:
    """Runs ``ssbfrac run`` subprocesses, ``parallel`` at a time; one failure stops nothing."""

    def __init__(self, sweep: Sweep, parallel: int, ranks: int):
        self.sweep, self.parallel, self.ranks = sweep, parallel, ranks
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.env = dict(os.environ)
        self.env.setdefault("OMP_NUM_THREADS", "1")

    def launch(self, run: Run) -> tuple[int, float]:
        cmd = run_command(self.sweep, run, self.ranks)
        log, state = log_path(self.sweep, run), state_path(self.sweep, run)
        t0 = time.perf_counter()
        with open(log, "w") as fh:
            fh.write(f"# ssbfrac sweep {self.sweep.spec.name}: run {run.name} on {socket.gethostname()}, "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n# {shlex.join(cmd)}\n")
            fh.flush()
            with self.lock:
                if self.stopping.is_set():
                    return 130, 0.0
                try:
                    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env)
                except OSError as exc:
                    fh.write(f"ssbfrac sweep: cannot start the run: {exc}\n")
                    state.write_text("exit 127\n")
                    return 127, 0.0
                self.procs[run.name] = proc
                state.write_text(f"running {socket.gethostname()} {proc.pid}\n")
            rc = proc.wait()
        with self.lock:
            del self.procs[run.name]
        state.write_text(f"exit {rc}\n")
        return rc, time.perf_counter() - t0

    def run_all(self, runs: list[Run]) -> bool:
        """Launch every run; False if interrupted (Ctrl-C)."""
        n = len(runs)
        pool = ThreadPoolExecutor(max_workers=self.parallel)
        futures = {pool.submit(self.launch, run): run for run in runs}
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
            self.stopping.set()
            with self.lock:
                for proc in self.procs.values():
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            print("ssbfrac sweep: interrupted; the stopped runs are pending and rerun next time", flush=True)
            return False
        pool.shutdown(wait=True)
        return True


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
            print(shlex.join(run_command(sweep, st.run, settings.ranks_per_run)))
        return 0
    write_manifest(sweep)
    if todo:
        pool = LocalPool(sweep, settings.parallel, settings.ranks_per_run)
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
