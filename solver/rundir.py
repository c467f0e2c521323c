"""Run directories: their files and states, and how a new run claims one.

A run directory holds ``case.yaml``, the mesh, the field series, ``history.csv`` and,
written last, ``summary.json`` (:data:`COMPLETION_MARKER`): a directory without it is
not complete. A failed run leaves ``error.txt``; a run stopped on request leaves
``checkpoint.h5`` and ``stopped.json`` (``--restart`` continues it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mpi4py import MPI

COMPLETION_MARKER = "summary.json"
#: the checkpoint of a run, in its directory
CHECKPOINT_FILE = "checkpoint.h5"
#: written (with the checkpoint) by a run that stopped on request
STOP_MARKER = "stopped.json"
#: environment variable: ask for a stop once this many steps are accepted (for tests)
STOP_AFTER_ENV = "SSBFRAC_STOP_AFTER_STEPS"


class RunError(RuntimeError):
    """A run could not be started or did not finish (message for the user)."""


class RunCheckpointed(Exception):
    """The run stopped on request after writing its checkpoint; ``--restart`` continues it.

    Attributes: ``out`` (the run directory), ``command`` (the command that continues it)."""

    def __init__(self, message: str, out: Path, command: str):
        super().__init__(message)
        self.out, self.command = out, command


def run_state(path: Path) -> str:
    """'missing', 'not-a-directory', 'empty', 'complete', 'checkpointed' (stopped on
    request with a checkpoint: ``--restart`` continues it), 'failed' or 'incomplete'
    (running, or killed; ``--restart`` continues it if it holds checkpoint.h5)."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if not path.is_dir():
        return "not-a-directory"
    if not any(path.iterdir()):
        return "empty"
    if (path / COMPLETION_MARKER).exists():
        return "complete"
    if (path / STOP_MARKER).exists() and (path / CHECKPOINT_FILE).exists():
        return "checkpointed"
    if (path / "error.txt").exists():
        return "failed"
    return "incomplete"


def prepare_directory(out: Path, overwrite: bool, comm: MPI.Comm) -> None:
    err = None
    if comm.rank == 0:
        state = run_state(out)
        if out.exists() and not out.is_dir():
            err = f"{out}: exists and is not a directory"
        elif state in ("complete", "checkpointed", "failed", "incomplete"):
            if not overwrite:
                err = (f"{out}: a run directory already exists ({state}); use --overwrite to replace it "
                       f"or --out to choose another directory")
                if state != "complete" and (out / CHECKPOINT_FILE).exists():
                    err += ", or --restart to continue it from its checkpoint"
            elif not (out / "case.yaml").exists():
                err = f"{out}: not an ssbfrac run directory (no case.yaml): refusing to delete it"
            else:
                shutil.rmtree(out)
        if err is None:
            out.mkdir(parents=True, exist_ok=True)
    err = comm.bcast(err, root=0)
    if err:
        raise RunError(err)
