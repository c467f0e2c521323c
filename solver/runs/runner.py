"""One run, from a case to a complete run directory.

    case (SI) -> internal units -> particles packed -> directory claimed -> mesh ->
    problems (physics) and their stepper -> step loop (numerics.stepping.march) ->
    recorder (history, fields, profiles) -> summary.json, written last

A run directory holds ``case.yaml`` (the resolved case, SI units), ``mesh.msh`` and
``mesh.json``, ``fields.xdmf``/``fields.h5``, ``history.csv`` and, written last,
``summary.json``: a directory without ``summary.json`` is not complete. A failed run
leaves ``error.txt``. An existing run directory is never silently reused, and ssbfrac
writes only into directories it made (:mod:`solver.runs.rundir`).

Checkpoint and restart: on SIGTERM or SIGUSR1 (e.g. Slurm's ``--signal``) a run
finishes its present step, writes ``checkpoint.h5`` (:mod:`solver.runs.checkpoint`) and
``stopped.json``, and stops (:class:`RunCheckpointed`; ``ssbfrac run`` exits with
:data:`solver.runs.checkpoint.EXIT_CHECKPOINTED`). ``output.checkpoint_every`` (accepted
steps) and ``output.checkpoint_interval`` (s) write checkpoints along the way as well.
``run(..., restart=True)`` continues the run in its directory from its checkpoint, on
any number of MPI ranks: history.csv, profiles.csv and the field series are cut back to
the checkpointed step and continued.

Deadline: with ``SSBFRAC_DEADLINE`` (seconds since the epoch, set by the Slurm batch
script from the job's end time) the run stops with a checkpoint, as on a signal, at
the first step boundary where the time left is less than ``DEADLINE_STEP_MARGIN`` x the
longest step so far plus the time a checkpoint takes (and ``DEADLINE_SLACK_S``): it does
not start a step that would not finish in time.

Crashes: while it runs, the run keeps ``fault.log`` (:class:`solver.runs.rundir.FaultLog`)
with its last step and, should the process die in native code, Python's
``faulthandler`` stack; ``solver.runs.rundir.record_crash`` turns it into ``error.txt``.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path

import yaml
from mpi4py import MPI

from solver.config import Case, CaseError, case_to_dict, load_case, to_internal
from solver.runs.restart import case_fingerprint, check_restart, cut_back_outputs, record_stop
from solver.runs.rundir import (CHECKPOINT_FILE, DEADLINE_ENV, STOP_AFTER_ENV, STOP_MARKER, FaultLog,
                                RunCheckpointed, RunError, claim_run_directory)

#: a run with a deadline stops when the time left is below this many times its longest
#: step (plus the time of a checkpoint and DEADLINE_SLACK_S)
DEADLINE_STEP_MARGIN = 1.5
DEADLINE_SLACK_S = 15.0


def prepare(case: Case, comm: MPI.Comm, source: str = "<case>", allow_large: bool = False):
    """Check a validated case before any expensive work: its size against its limits
    (``allow_large`` skips them), its PETSc options, the output options this DOLFINx
    supports, and that its particles can be packed. Returns (case in internal units,
    packing)."""
    from meshes.packing import PackingError
    from solver.config.preflight import preflight
    from solver.runs.mesh import pack

    preflight(case, source, allow_large)

    if case.output.vtx:
        from solver.runs.writers import vtx_available

        if not vtx_available():
            raise CaseError(f"{source}: output.vtx = true: this DOLFINx has no ADIOS2 (VTX output); "
                            "set output.vtx: false (fields.xdmf is always written)")
    internal = to_internal(case)
    packing, err = None, None
    if comm.rank == 0:
        try:
            packing = pack(internal)
        except PackingError as exc:
            err = (f"{source}: geometry.particles.volume_fraction = {case.geometry.particles.volume_fraction}: "
                   f"cannot be packed: {exc}. Lower the fraction, the min_gap, or raise max_attempts.")
        except NotImplementedError as exc:
            err = f"{source}: dimension = {case.dimension}: {exc}"
    err = comm.bcast(err, root=0)
    if err:
        raise CaseError(err)
    return internal, packing


def prepare_case(case_path: str | Path, overrides: list[str], comm: MPI.Comm, allow_large: bool = False):
    """Read, override and check a case file (see :func:`prepare`). Returns (case in SI,
    case in internal units, packing)."""
    case = load_case(case_path, overrides, allow_large=allow_large)
    internal, packing = prepare(case, comm, str(case_path), allow_large)
    return case, internal, packing


def run(case: Case, out: str | Path | None = None, overwrite: bool = False, restart: bool = False,
        progress: str | None = None, comm: MPI.Comm = MPI.COMM_WORLD, source: str = "<case>",
        allow_large: bool = False) -> Path:
    """Run ``case`` into ``out`` (default ``results/<name>``); returns the directory.

    With ``restart``, continue the run in ``out`` from its ``checkpoint.h5`` instead
    (same case as the run, output settings aside; any number of ranks). Raises
    :class:`RunCheckpointed` when the run stopped on request (SIGTERM, SIGUSR1) after
    writing its checkpoint, :class:`RunError` when it cannot start, CaseError for a case
    that cannot run (``source`` names it in messages); ``allow_large`` runs a case larger
    than its limits."""
    t_all = time.perf_counter()
    internal, packing = prepare(case, comm, source, allow_large)
    out = Path(out) if out is not None else Path("results") / case.name
    if restart and overwrite:
        raise RunError("--restart continues the run in --out, --overwrite replaces it: give only one of them")
    if restart:
        check_restart(out, case, comm)
    mode = "restart" if restart else "overwrite" if overwrite else "new"
    with claim_run_directory(out, mode, comm):
        # fault.log is removed on every way out that Python sees (only a crash in native code leaves it)
        fault = FaultLog(out, comm)
        try:
            with contextlib.ExitStack() as handlers:  # the signal handlers are put back on the way out
                return _execute(case, internal, packing, out, progress or case.output.progress, comm, t_all,
                                restart, handlers, fault, allow_large)
        except (RunCheckpointed, RunError):
            raise  # stopped with a checkpoint, or a restart refused: the directory is left as it was
        except BaseException as exc:
            if comm.rank == 0:
                _write_error(out, exc)
            raise
        finally:
            fault.close()


def _deadline() -> float | None:
    """The deadline of the run from SSBFRAC_DEADLINE (seconds since the epoch), if set."""
    text = os.environ.get(DEADLINE_ENV, "").strip()
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value and value > 0 else None


def run_case(case_path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None,
             overwrite: bool = False, progress_mode: str | None = None, comm: MPI.Comm = MPI.COMM_WORLD,
             restart: bool = False, allow_large: bool = False) -> Path:
    """:func:`run` of a case file with ``--set`` overrides."""
    case = load_case(case_path, overrides or [], allow_large=allow_large)
    return run(case, out, overwrite, restart, progress_mode, comm, source=str(case_path), allow_large=allow_large)


def _write_error(out: Path, exc: BaseException) -> None:
    """error.txt for a failed run (if the directory can still be written: the failure may
    be that it cannot)."""
    try:
        (out / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc)))
    except OSError:
        pass


def make_stepper(internal, bundle):
    """The problems of a case on its mesh and the stepper that advances them: galvanostatic
    cycling (electrochemistry and mechanics) or a prescribed lithiation (mechanics).
    Returns (stepper, mechanics problem, fields of the output, functions of a checkpoint,
    DOFs, profiles function or None)."""
    if internal.loading.type == "galvanostatic":
        from solver.runs.cycling import CoupledCell, CyclingLoading

        cell = CoupledCell(internal, bundle)
        dofs = cell.sim.dofs()
        dofs.update({"lithiation": cell.ec.Vx.dofmap.index_map.size_global,
                     "ionic_potential": cell.ec.Vp.dofmap.index_map.size_global})
        return (CyclingLoading(cell), cell.sim, cell.field_functions(), cell.checkpoint_functions(), dofs,
                cell.profiles)
    from solver.physics.mechanics import MechanicsProblem
    from solver.runs.prescribed import DisplacementLoading, PrescribedLoading

    mech = MechanicsProblem(internal, bundle)
    kind = DisplacementLoading if internal.loading.type == "displacement" else PrescribedLoading
    stepper = kind(mech, internal.loading)
    return stepper, mech, mech.field_functions(), mech.checkpoint_functions(), mech.dofs(), None


def _execute(case: Case, internal, packing, out: Path, progress_mode: str, comm: MPI.Comm, t_all: float,
             restart: bool, handlers: contextlib.ExitStack, fault: FaultLog, allow_large: bool = False) -> Path:
    from solver.numerics.stepping import GrowthGuard, march
    from solver.runs.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
    from solver.runs.mesh import build_mesh
    from solver.runs.progress import Progress
    from solver.runs.recorder import Recorder, history_columns, new_book
    from solver.runs.stop import StopRequest
    from solver.runs.summary import write_summary
    from solver.runs.writers import write_text_atomic

    if comm.rank == 0 and not restart:
        write_text_atomic(out / "case.yaml", yaml.safe_dump(case_to_dict(case), sort_keys=False))
    timings = {}
    progress = Progress(comm, 1.0, progress_mode, label=case.name)
    progress.message(f"{'restarting: ' if restart else ''}meshing ({comm.size} rank{'s' if comm.size > 1 else ''}) -> {out}")
    t = time.perf_counter()
    # a restart meshes the case again (packing and Gmsh are deterministic) and keeps the run's mesh files
    bundle = build_mesh(internal, comm, out_dir=None if restart else out, packing=packing)
    timings["mesh"] = time.perf_counter() - t
    # From here on SIGTERM/SIGUSR1 only set a flag and the run stops at the next step
    # boundary with a checkpoint. (Not earlier: Gmsh puts the default handlers back, and
    # before the first step there is nothing to save.)
    stop = handlers.enter_context(StopRequest())
    fault.arm()
    t = time.perf_counter()
    stepper, mech, fields, checkpoint_fields, dofs, profiles = make_stepper(internal, bundle)
    progress.set_total(stepper.progress_total)
    timings["setup"] = time.perf_counter() - t
    progress.message(
        f"{bundle.info['mesh']['cells_global']} cells, DOFs {dofs}, "
        f"{len(bundle.info['packing']['particles'])} particles (fraction {bundle.info['packing']['fraction']:.3f})"
    )
    columns = history_columns(stepper, mech)

    # ---------------------------------------------------------------- checkpoint and restart
    kind = internal.loading.type
    checkpoint_path = out / CHECKPOINT_FILE
    fingerprint = case_fingerprint(case, bundle.info["mesh"])
    book, resume = new_book(), None
    if restart:
        try:
            saved = read_checkpoint(checkpoint_path, checkpoint_fields, comm, fingerprint=fingerprint)
        except CheckpointError as exc:
            raise RunError(f"{out}: cannot restart: {exc}") from None
        if saved.get("kind") != kind:
            raise RunError(f"{out}: cannot restart: the checkpoint is of a {saved.get('kind')} run, the case "
                           f"describes a {kind} run")
        resume, book = saved["loop"], saved["run"]
        cut_back_outputs(out, book, profiles is not None, comm)
        if comm.rank == 0:
            # atomically: a restart killed here must find the case of the run again
            write_text_atomic(out / "case.yaml", yaml.safe_dump(case_to_dict(case), sort_keys=False))
            (out / STOP_MARKER).unlink(missing_ok=True)
            (out / "error.txt").unlink(missing_ok=True)
    book["ranks"] = list(book["ranks"]) + [comm.size]
    recorder = Recorder(out, comm, columns, bundle.mesh, fields, case.output, book, restart, profiles,
                        at_end=lambda: stepper.done)
    guard = GrowthGuard(mech)
    if restart:
        stepper.load_state(resume["stepper"])
        progress.message(f"continuing from {checkpoint_path} (written on {saved.get('ranks', '?')} rank(s)): "
                         f"step {resume['step']}, {book['accepted']} accepted, {stepper.where()}")

    # ---------------------------------------------------------------- the starting state
    stepper.start()
    if not restart:
        first = stepper.measures()
        first.update(stepper.initial_row())
        first.update({k: 0 for k in getattr(stepper, "extra_columns", [])})
        recorder.first(first)

    t_solve = time.perf_counter()
    t_checkpoint = [0.0]
    last_checkpoint = [time.perf_counter()]
    stopped: dict = {}
    stop_after = int(os.environ.get(STOP_AFTER_ENV, "0") or 0)
    deadline = _deadline()
    # longest time between two step boundaries (rejected attempts included), last checkpoint's cost
    last_boundary, longest_step, checkpoint_cost = [t_solve], [0.0], [0.0]

    def on_step(rec) -> None:
        recorder.on_step(rec)
        fault.step(f"step {rec.step} ({'accepted' if rec.accepted else 'rejected'}), {stepper.where()}, "
                   f"{time.perf_counter() - t_solve:.1f} s of solving")
    every_checkpoint, checkpoint_interval = case.output.checkpoint_every, case.output.checkpoint_interval

    def attempt_timings() -> dict:
        """Times of this attempt (s), added to those of the earlier attempts."""
        now = time.perf_counter()
        mine = dict(timings)
        mine["solve"] = now - t_solve - recorder.io_time - t_checkpoint[0]
        mine["output"] = recorder.io_time
        mine["checkpoint"] = t_checkpoint[0]
        mine["total"] = now - t_all
        for k, v in book["timings"].items():
            mine[k] = mine.get(k, 0.0) + v
        return mine

    def at_boundary(loop_state: dict) -> bool:
        """After an accepted step that does not end the run: write a checkpoint when it is
        due or a stop was requested; True stops the run (collective)."""
        if stop_after and recorder.accepted >= stop_after:
            stop.request()
        now = time.perf_counter()
        longest_step[0] = max(longest_step[0], now - last_boundary[0])
        last_boundary[0] = now
        reason = None
        if deadline is not None:
            left = deadline - time.time()
            need = DEADLINE_STEP_MARGIN * longest_step[0] + checkpoint_cost[0] + DEADLINE_SLACK_S
            if comm.bcast(left < need, root=0):
                reason = "time limit near"
                progress.message(f"stopping before the time limit: {left:.0f} s left, the longest step took "
                                 f"{longest_step[0]:.0f} s")
                stop.request()
        stopping = stop.requested(comm)
        due = stopping or bool(every_checkpoint and recorder.accepted % every_checkpoint == 0)
        if not due and checkpoint_interval > 0:
            due = comm.bcast(time.perf_counter() - last_checkpoint[0] >= checkpoint_interval, root=0)
        if not due:
            return False
        t0 = time.perf_counter()
        run_book = recorder.book()
        run_book["checkpoints"] += 1
        state = {"kind": kind, "ranks": comm.size, "loop": loop_state,
                 "run": {**run_book, "timings": attempt_timings()}}
        write_checkpoint(checkpoint_path, checkpoint_fields, state, comm, fingerprint=fingerprint)
        last_checkpoint[0] = time.perf_counter()
        checkpoint_cost[0] = last_checkpoint[0] - t0
        t_checkpoint[0] += checkpoint_cost[0]
        last_boundary[0] = last_checkpoint[0]  # a step is timed from the end of the checkpoint
        if stopping:
            signum = comm.allreduce(-1 if stop.signum is None else int(stop.signum), op=MPI.MAX)
            stopped.update(loop_state, signal=signum)
            if reason and signum <= 0:
                stopped["reason"] = reason
        return stopping

    counters = march(stepper, stepper.step_sizes(internal), guard, on_step, progress, resume=resume,
                     at_boundary=at_boundary)
    recorder.close()
    progress.close()
    if stopped:
        raise record_stop(out, case, stopped, recorder.accepted, stepper.where(), comm, allow_large)
    timings.update({f"solve_{k}": v for k, v in getattr(stepper, "timers", {}).items()})
    timings.update(attempt_timings())
    write_summary(out, case, bundle, mech, stepper, recorder, book, dofs, counters, timings, columns, comm)
    if comm.rank == 0:
        # a complete run cannot be continued: its checkpoint is of no further use
        checkpoint_path.unlink(missing_ok=True)
        checkpoint_path.with_name(CHECKPOINT_FILE + ".tmp").unlink(missing_ok=True)
        print(f"[{case.name}] done in {timings['total']:.1f} s: results in {out}", flush=True)
    return out


__all__ = ["run", "run_case", "prepare", "prepare_case", "make_stepper", "RunError", "RunCheckpointed"]
