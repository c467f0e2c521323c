"""Output to a closed pipe (``ssbfrac schema | head``): a quiet end, not a crash.

PETSc installs a handler for SIGPIPE that aborts MPI with an error message; ssbfrac puts
Python's own disposition back (ignored: a write to a closed pipe raises BrokenPipeError),
and the command then ends quietly with the usual status of a process whose reader went
away (128 + SIGPIPE)."""

from __future__ import annotations

import os
import signal
import sys


def quiet_broken_pipe() -> None:
    """Initialise PETSc (if it is not yet) and take SIGPIPE back from its signal handler."""
    from petsc4py import PETSc  # noqa: F401  (PetscInitialize installs the handlers)

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


class BrokenPipe:
    """The exceptions of a write to a closed pipe, and the quiet exit after one."""

    errors = (BrokenPipeError,)

    @staticmethod
    def exit() -> int:
        # nothing more can reach the reader: send what is still buffered to /dev/null so
        # that the interpreter's final flush does not fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 128 + getattr(signal, "SIGPIPE", 13)
