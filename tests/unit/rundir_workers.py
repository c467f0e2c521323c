"""Processes for the run-directory tests (started with multiprocessing's spawn: a module
that imports nothing heavy)."""

import time

from mpi4py import MPI

from solver.runs.rundir import RunError, claim_run_directory


def hold(path, ready):
    """Claim ``path`` and keep it until killed."""
    with claim_run_directory(path, "new", MPI.COMM_SELF):
        ready.set()
        time.sleep(60)


def race(path, start, results):
    """Try to claim ``path`` once ``start`` is set; put 'won' or the refusal in ``results``."""
    start.wait(30)
    try:
        with claim_run_directory(path, "new", MPI.COMM_SELF):
            results.put("won")
            time.sleep(0.5)
    except RunError as exc:
        results.put(str(exc))
