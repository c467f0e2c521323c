"""Run directories: their files and states, and how a run claims one.

A run directory holds ``case.yaml``, the mesh, the field series, ``history.csv`` and,
written last, ``summary.json`` (:data:`COMPLETION_MARKER`): a directory without it is
not complete. A failed run leaves ``error.txt``; a run stopped on request leaves
``checkpoint.h5`` and ``stopped.json`` (``--restart`` continues it).

Data safety. ssbfrac writes only into directories that it made:

* every directory ssbfrac makes (run, mesh, sweep and study directories) holds the marker
  file :data:`MARKER`; a directory that is neither missing, empty nor marked is never
  written into;
* a run claims its directory atomically: the marker is created with ``O_EXCL`` and locked
  (``flock``) for as long as the run lives, so two runs never share a directory (the
  lock goes with the process, also when it is killed);
* ``--overwrite`` deletes only the files that ssbfrac writes (:data:`OWN_FILES`), in a
  marked directory that no live process holds; anything else in it is left alone.

Crashes. While it runs, a run keeps ``fault.log`` (:class:`FaultLog`): its last step, and
Python's ``faulthandler`` output should the process die in native code (a segmentation
fault or an abort in PETSc, MUMPS, HDF5, ...). The run removes it when it ends by itself;
left behind, :func:`record_crash` turns it into ``error.txt`` (the sweep backends call it
when a run dies by a signal).
"""

from __future__ import annotations

import errno
import faulthandler
import fcntl
import fnmatch
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from mpi4py import MPI

COMPLETION_MARKER = "summary.json"
#: the checkpoint of a run, in its directory
CHECKPOINT_FILE = "checkpoint.h5"
#: written (with the checkpoint) by a run that stopped on request
STOP_MARKER = "stopped.json"
#: environment variable: ask for a stop once this many steps are accepted (for tests)
STOP_AFTER_ENV = "SSBFRAC_STOP_AFTER_STEPS"
#: environment variable: the wall-clock time (seconds since the epoch) by which the run
#: must have stopped, e.g. a Slurm job's end time; the run stops with a checkpoint
#: before a step that would not finish in time (see solver.runs.runner)
DEADLINE_ENV = "SSBFRAC_DEADLINE"
#: the last step and, after a crash in native code, the Python stack (see FaultLog)
FAULT_FILE = "fault.log"
#: fatal signals whose death is a failure of the run (not an interruption)
CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGSYS", "SIGTRAP")
#: the file that marks a directory as made by ssbfrac (and is locked while a run uses it)
MARKER = ".ssbfrac"
#: what ssbfrac writes in a run directory (shell patterns relative to it); --overwrite
#: deletes these and nothing else
OWN_FILES = (
    MARKER, "case.yaml", "mesh.msh", "mesh.json", "history.csv", "profiles.csv", COMPLETION_MARKER, "error.txt",
    CHECKPOINT_FILE, CHECKPOINT_FILE + ".tmp", STOP_MARKER, FAULT_FILE, "report.md",
    "fields.xdmf", "fields_merged.xdmf", "fields.h5", "fields.bp", "fields_restart*.xdmf", "fields_restart*.h5", "fields_restart*.bp",
    "plots/*.png", "plots/*.pdf", "plots/report.md", "paraview/*.png", "paraview/*.pvsm",
)
#: directories of OWN_FILES, removed when nothing else is left in them
OWN_SUBDIRS = ("plots", "paraview")


class RunError(RuntimeError):
    """A run could not be started or did not finish (message for the user)."""


class RunCheckpointed(Exception):
    """The run stopped on request after writing its checkpoint; ``--restart`` continues it.

    Attributes: ``out`` (the run directory), ``command`` (the command that continues it)."""

    def __init__(self, message: str, out: Path, command: str):
        super().__init__(message)
        self.out, self.command = out, command


def is_marked(path: Path) -> bool:
    """True if ``path`` is a directory that ssbfrac made (it holds :data:`MARKER`)."""
    return (Path(path) / MARKER).is_file()


def in_use(path: Path) -> dict | None:
    """The owner ({host, pid, since}) of a run directory that a live process holds locked,
    else None. Must not be called by the process that holds the lock."""
    marker = Path(path) / MARKER
    try:
        fd = os.open(marker, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_marker(marker).get("owner") or {"host": "?", "pid": "?"}
    finally:
        os.close(fd)  # closing also drops the probe's own shared lock
    return None


def run_state(path: Path) -> str:
    """'missing', 'not-a-directory', 'empty', 'running' (held by a live ssbfrac process),
    'complete', 'checkpointed' (stopped on request with a checkpoint: ``--restart``
    continues it), 'failed' or 'incomplete' (killed; ``--restart`` continues it if it
    holds checkpoint.h5). A directory with nothing but the marker is 'empty'."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if not path.is_dir():
        return "not-a-directory"
    if not any(p.name != MARKER for p in path.iterdir()):
        return "empty"
    if (path / COMPLETION_MARKER).exists():
        return "complete"
    if is_marked(path) and in_use(path) is not None:
        return "running"
    if (path / STOP_MARKER).exists() and (path / CHECKPOINT_FILE).exists():
        return "checkpointed"
    if (path / "error.txt").exists():
        return "failed"
    return "incomplete"


# ----------------------------------------------------------------------------- marking
def _read_marker(marker: Path) -> dict:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _marker_text(kind: str, owner: dict | None = None) -> str:
    from solver import __version__

    data = {"made_by": "ssbfrac", "kind": kind, "version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if owner:
        data["owner"] = owner
    return json.dumps(data) + "\n"


def _os_error(path: Path, exc: OSError, what: str) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENAMETOOLONG:
        reason = "file name too long"
    return f"{path}: cannot {what}: {reason}"


def make_marked_directory(path: Path, kind: str) -> None:
    """Create ``path`` (and its parents) as a directory of ssbfrac's, or accept it if it is
    one already or is empty; raise RunError for anything else (a file, a directory of the
    user's). ``kind``: 'mesh', 'sweep', 'study' (runs use :func:`claim_run_directory`)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise RunError(f"{path}: exists and is not a directory")
        if path.is_dir() and is_marked(path):
            return
        if path.is_dir() and any(path.iterdir()):
            raise RunError(f"{path}: the directory exists and was not made by ssbfrac (no {MARKER} file): "
                           f"refusing to write into it; choose a new or empty directory")
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # marked meanwhile by another ssbfrac process
    except OSError as exc:
        raise RunError(_os_error(path, exc, f"create the {kind} directory")) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(_marker_text(kind))


class RunDirectory:
    """A run directory claimed by this run: rank 0 holds the lock on its marker until
    :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = Path(path), fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_run_directory(out: Path, mode: str, comm: MPI.Comm) -> RunDirectory:
    """Claim ``out`` for a run (collective). ``mode``: 'new' (missing or empty directory),
    'overwrite' (also replaces an earlier run of ssbfrac's: its own files only) or
    'restart' (an earlier run of ssbfrac's, continued). Raises RunError with the reason
    when the directory is not ssbfrac's, is used by a live run, or is in the wrong state."""
    out = Path(out)
    err, fd = None, None
    if comm.rank == 0:
        try:
            fd = _claim(out, mode)
        except RunError as exc:
            err = str(exc)
        except OSError as exc:
            err = _os_error(out, exc, "use the run directory")
    err = comm.bcast(err, root=0)
    if err:
        raise RunError(err)
    return RunDirectory(out, fd)


def _claim(out: Path, mode: str) -> int:
    state = run_state(out)
    if state == "not-a-directory":
        raise RunError(f"{out}: exists and is not a directory")
    fresh = state in ("missing", "empty")
    if not fresh and not is_marked(out):
        raise RunError(f"{out}: the directory exists and was not made by ssbfrac (no {MARKER} file): "
                       f"refusing to write into it or to delete anything in it; choose a new or empty directory")
    if mode == "restart" and fresh:
        raise RunError(f"{out}: no run to restart ({state}); start it without --restart")
    if mode == "new" and not fresh:
        if state == "running":
            raise RunError(_in_use_message(out))
        msg = (f"{out}: a run directory already exists ({state}); use --overwrite to replace it "
               f"or --out to choose another directory")
        if state != "complete" and (out / CHECKPOINT_FILE).exists():
            msg += ", or --restart to continue it from its checkpoint"
        raise RunError(msg)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunError(_os_error(out, exc, "create the run directory")) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunError(_in_use_message(out)) from None
    # the lock is ours: from here no other ssbfrac process writes into the directory
    try:
        if mode == "overwrite" and not fresh:
            remove_own_files(out)
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        text = _marker_text("run", owner).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
    except OSError as exc:
        os.close(fd)
        raise RunError(_os_error(out, exc, "write in the run directory")) from None
    return fd


def _in_use_message(out: Path) -> str:
    owner = in_use(out) or {}
    who = f" (PID {owner.get('pid', '?')} on {owner.get('host', '?')})" if owner else ""
    return (f"{out}: another ssbfrac run is using this directory{who}; wait for it to end, stop it, "
            f"or choose another --out")


def own_files(out: Path) -> list[Path]:
    """The files and field directories that ssbfrac wrote in the run directory ``out``."""
    found = []
    for entry in sorted(out.rglob("*")):
        rel = entry.relative_to(out).as_posix()
        if entry.name == MARKER and rel != MARKER:
            continue
        if any(_matches(rel, pat) for pat in OWN_FILES):
            found.append(entry)
    return found


def _matches(rel: str, pattern: str) -> bool:
    """Shell-pattern match part by part ('*' never crosses a '/')."""
    parts, pats = rel.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats))


def remove_own_files(out: Path) -> None:
    """Delete what ssbfrac wrote in ``out`` (not the marker), nothing else."""
    for entry in own_files(out):
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)  # an ADIOS2 field series (fields.bp): ssbfrac's own
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    for sub in OWN_SUBDIRS:
        d = out / sub
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


# --------------------------------------------------------------------------- exit statuses and crashes
def exit_signal(status: int) -> signal.Signals | None:
    """The signal that ended a process with this exit status: negative statuses are
    Python's (``-11``), 128 + N is the shell's (``139``, for the common fatal signals
    only: a program may itself exit with 157), else None."""
    number = -status if status < 0 else status - 128 if status > 128 else 0
    try:
        sig = signal.Signals(number)
    except ValueError:
        return None
    if status > 128 and sig.name not in CRASH_SIGNALS + ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"):
        return None
    return sig


def describe_exit(status: int) -> str:
    """A process's exit status in words: 'killed by SIGSEGV (exit 139)', 'exit status 1'."""
    sig = exit_signal(status)
    if sig is None:
        return f"exit status {status}"
    return f"killed by {sig.name} ({'signal ' + str(-status) if status < 0 else 'exit ' + str(status)})"


class FaultLog:
    """``<run>/fault.log`` while a run is running (collective: every rank of ``comm``).

    Rank 0 keeps the last step in the first line (rewritten in place after every step);
    every rank has Python's :mod:`faulthandler` write its stack to the file should the
    process die of a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT). A run that
    ends by itself (complete, stopped with a checkpoint, or a Python error with
    ``error.txt``) removes the file with :meth:`close`."""

    #: bytes reserved for the first line; faulthandler writes after it
    HEADER = 400

    def __init__(self, out: Path, comm) -> None:
        self.path = Path(out) / FAULT_FILE
        self.comm = comm
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self._was_enabled = faulthandler.is_enabled()
        self._fh = None
        if comm.rank == 0:
            self._fh = open(self.path, "w+b")
            self._header("no step finished yet (meshing and setup)")
            self._fh.seek(self.HEADER)
        comm.barrier()
        if comm.rank != 0:
            self._fh = open(self.path, "ab")
        self.arm()

    def arm(self) -> None:
        """Install faulthandler's handlers on the file, again: Gmsh puts the default
        handlers of SIGSEGV, SIGFPE, ... back, and faulthandler.enable() alone does not
        reinstall handlers it believes installed."""
        faulthandler.disable()
        faulthandler.enable(file=self._fh, all_threads=True)

    def _header(self, text: str) -> None:
        line = (f"ssbfrac run in {self.path.parent}: started {self.started} on {self.comm.size} rank(s), "
                f"PID {os.getpid()}; {text}")
        data = line.encode()[: self.HEADER - 1].ljust(self.HEADER - 1) + b"\n"
        os.pwrite(self._fh.fileno(), data, 0)

    def step(self, text: str) -> None:
        """Record the last step (rank 0; a pwrite at the start of the file)."""
        if self.comm.rank == 0 and self._fh is not None:
            self._header(f"last step: {text} ({time.strftime('%H:%M:%S')})")

    def close(self, remove: bool = True) -> None:
        if self._fh is None:
            return
        faulthandler.disable()
        if self._was_enabled:
            faulthandler.enable()
        self._fh.close()
        self._fh = None
        if remove and self.comm.rank == 0:
            self.path.unlink(missing_ok=True)


def read_fault_log(out: Path) -> tuple[str, str] | None:
    """(last step line, faulthandler text) of a fault.log left in ``out``, or None."""
    try:
        data = (Path(out) / FAULT_FILE).read_bytes()
    except OSError:
        return None
    head = data[: FaultLog.HEADER].decode(errors="replace").strip()
    return head, data[FaultLog.HEADER:].decode(errors="replace").strip()


def record_crash(out: Path, status: int) -> Path | None:
    """After a run process ended with ``status``: if it died in native code (a crash
    signal, or a faulthandler record in fault.log) and wrote no error.txt, write one
    with the signal, the last step and the Python stack at the fault. Returns the
    error.txt written, or None."""
    out = Path(out)
    error = out / "error.txt"
    fault = read_fault_log(out)
    sig = exit_signal(status)
    crashed = (sig is not None and sig.name in CRASH_SIGNALS) or bool(fault and fault[1])
    if not crashed or error.exists() or not out.is_dir():
        return None
    head, stack = fault if fault else ("", "")
    what = describe_exit(status)
    for line in stack.splitlines():  # faulthandler names the signal: "Fatal Python error: Segmentation fault"
        if line.startswith("Fatal Python error:"):
            what += f": {line.removeprefix('Fatal Python error:').strip()}"
            break
    where = head.split("; ", 1)[1] if "; " in head else "no fault.log (no step recorded)"
    text = (f"NativeCrash: the run process was {what} in native code; {where}\n\n"
            + (stack + "\n" if stack else "(no Python stack: the process died before faulthandler could write)\n"))
    error.write_text(text)
    (out / FAULT_FILE).unlink(missing_ok=True)
    return error


def _main(argv: list[str]) -> int:
    """``python -m solver.runs.rundir record-crash RUN_DIR STATUS`` (used by the Slurm batch
    script): exit status 0 when the run crashed (error.txt written), 1 otherwise."""
    if len(argv) == 3 and argv[0] == "record-crash":
        written = record_crash(Path(argv[1]), int(argv[2]))
        if written is not None:
            print(f"{argv[1]}: {describe_exit(int(argv[2]))} in native code: wrote {written}")
        return 0 if written is not None else 1
    print("usage: python -m solver.runs.rundir record-crash RUN_DIR STATUS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
