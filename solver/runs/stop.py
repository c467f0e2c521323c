"""Stopping a run on request: SIGTERM and SIGUSR1 become a flag checked between steps."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from mpi4py import MPI


class StopRequest:
    """Turn SIGTERM and SIGUSR1 into a "stop at the next step" flag.

    Create it in the main thread before the time loop (elsewhere no handler can be
    installed and only :meth:`request` sets the flag); check :meth:`requested` between
    steps; on ``True`` write a checkpoint and exit with :data:`EXIT_CHECKPOINTED`::

        with StopRequest() as stop:
            for step in steps:
                advance(step)
                if stop.requested(comm):
                    write_checkpoint(out / "checkpoint.h5", fields, state, comm)
                    sys.exit(EXIT_CHECKPOINTED)

    Under Slurm, ``#SBATCH --signal=TERM@120`` (or ``--signal=USR1@120``) signals the
    tasks of the job steps, i.e. ranks started with ``srun``, 120 s before the time
    limit: two minutes to finish the current step and write the checkpoint. With
    ``#SBATCH --signal=B:TERM@120`` only the batch shell is signalled, which is what a
    script that starts the ranks with ``mpiexec`` needs; it forwards the signal (MPICH's
    ``mpiexec`` passes SIGTERM and SIGUSR1 on to all ranks)::

        "$MPIEXEC" -n "$SLURM_NTASKS" ssbfrac run ... &
        pid=$!
        trap 'kill -TERM $pid' TERM
        wait $pid; wait $pid    # the first wait returns when the trap fires
        status=$?               # EXIT_CHECKPOINTED (85): resubmit to continue

    Without ``--signal``, Slurm sends SIGTERM only at the time limit itself and SIGKILL
    ``KillWait`` seconds later (30 s by default), which may be too short for a step.

    The previous handlers are put back by :meth:`restore` (or on leaving the ``with``
    block).
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR1)) -> None:
        self.signum: int | None = None  #: the signal received, 0 after request(), None if none
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    @property
    def installed(self) -> bool:
        """Whether signal handlers are installed (only from the main thread)."""
        return bool(self._previous)

    def request(self) -> None:
        """Set the flag without a signal (on this rank)."""
        if self.signum is None:
            self.signum = 0

    def requested(self, comm: MPI.Comm | None = None) -> bool:
        """Whether a stop was requested; with ``comm``, on any of its ranks (collective,
        so that all ranks take the same decision)."""
        flag = int(self.signum is not None)
        if comm is not None:
            flag = comm.allreduce(flag, op=MPI.MAX)
        return bool(flag)

    def restore(self) -> None:
        """Put back the handlers that were installed before (idempotent)."""
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def __enter__(self) -> StopRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
