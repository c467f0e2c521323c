"""One run, from a case file to a complete run directory.

A run directory holds ``case.yaml`` (the resolved case, SI units), ``mesh.msh`` and
``mesh.json``, ``fields.xdmf``/``fields.h5``, ``history.csv`` and, written last,
``summary.json``: a directory without ``summary.json`` is not complete. A failed run
leaves ``error.txt``. An existing run directory is never silently reused.

Checkpoint and restart: on SIGTERM or SIGUSR1 (e.g. Slurm's ``--signal``) a run
finishes its present step, writes ``checkpoint.h5`` (:mod:`solver.checkpoint`) and
``stopped.json``, and stops (:class:`RunCheckpointed`; ``ssbfrac run`` exits with
:data:`solver.checkpoint.EXIT_CHECKPOINTED`). ``output.checkpoint_every`` (accepted
steps) and ``output.checkpoint_interval`` (s) write checkpoints along the way as well.
``run_case(..., restart=True)`` (``ssbfrac run CASE --out DIR --restart``) continues
the run in ``DIR`` from its checkpoint, on any number of MPI ranks: history.csv,
profiles.csv and the field series are cut back to the checkpointed step and continued.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
import traceback
from pathlib import Path

import yaml
from mpi4py import MPI

from solver import __version__
from solver.config import Case, CaseError, case_to_dict, load_case
from solver.output import FieldWriter, ProfileWriter
from solver.restart import case_fingerprint, check_restart, cut_back_outputs, record_stop, restart_command
from solver.rundir import (CHECKPOINT_FILE, COMPLETION_MARKER, STOP_AFTER_ENV, STOP_MARKER, RunCheckpointed,
                           RunError, claim_run_directory, run_state)
from solver.config.units import to_internal

def prepare_case(case_path: str | Path, overrides: list[str], comm: MPI.Comm, allow_large: bool = False):
    """Validate the case, its size (limits; ``allow_large`` skips them) and its PETSc
    options, and check that its particles can be packed, before any expensive work.
    Returns (case in SI, case in internal units, packing)."""
    from meshes.packing import PackingError
    from solver.config.preflight import preflight
    from solver.mesh import pack

    case = load_case(case_path, overrides, allow_large=allow_large)
    preflight(case, str(case_path), allow_large)
    if case.output.vtx:
        from solver.output import vtx_available

        if not vtx_available():
            raise CaseError(f"{case_path}: output.vtx = true: this DOLFINx has no ADIOS2 (VTX output); "
                            "set output.vtx: false (fields.xdmf is always written)")
    internal = to_internal(case)
    packing, err = None, None
    if comm.rank == 0:
        try:
            packing = pack(internal)
        except PackingError as exc:
            err = (f"{case_path}: geometry.particles.volume_fraction = {case.geometry.particles.volume_fraction}: "
                   f"cannot be packed: {exc}. Lower the fraction, the min_gap, or raise max_attempts.")
        except NotImplementedError as exc:
            err = f"{case_path}: dimension = {case.dimension}: {exc}"
    err = comm.bcast(err, root=0)
    if err:
        raise CaseError(err)
    return case, internal, packing


def software_versions() -> dict:
    import dolfinx
    import gmsh
    import numpy
    from petsc4py import PETSc

    return {
        "ssbfrac": __version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "gmsh": gmsh.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
    }


def run_case(case_path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None,
             overwrite: bool = False, progress_mode: str | None = None, comm: MPI.Comm = MPI.COMM_WORLD,
             restart: bool = False, allow_large: bool = False) -> Path:
    """Run a case into ``out`` (default ``results/<name>``); returns the directory.

    With ``restart``, continue the run in ``out`` from its ``checkpoint.h5`` instead
    (same case and overrides as the run; output settings may differ; any number of
    ranks). Raises :class:`RunCheckpointed` when the run stopped on request (SIGTERM,
    SIGUSR1) after writing its checkpoint, :class:`RunError` when it cannot start."""
    t_all = time.perf_counter()
    overrides = overrides or []
    case, internal, packing = prepare_case(case_path, overrides, comm, allow_large)
    out = Path(out) if out is not None else Path("results") / case.name
    if restart and overwrite:
        raise RunError("--restart continues the run in --out, --overwrite replaces it: give only one of them")
    if restart:
        check_restart(out, case, comm)
    mode = "restart" if restart else "overwrite" if overwrite else "new"
    command = restart_command(case_path, out, overrides) + (" --allow-large" if allow_large else "")
    with claim_run_directory(out, mode, comm):
        try:
            return _run(case, internal, packing, out, progress_mode or case.output.progress, comm, t_all,
                        restart, command)
        except (RunCheckpointed, RunError):
            raise  # stopped with a checkpoint, or a restart refused: the directory is left as it was
        except BaseException as exc:
            if comm.rank == 0:
                _write_error(out, exc)
            raise


def _write_error(out: Path, exc: BaseException) -> None:
    """error.txt for a failed run (if the directory can still be written: the failure may
    be that it cannot)."""
    try:
        (out / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc)))
    except OSError:
        pass


def _run(case: Case, internal, packing, out: Path, progress_mode: str, comm: MPI.Comm, t_all: float,
         restart: bool = False, command: str = "") -> Path:
    # the signal handlers installed in _execute are put back on the way out
    with contextlib.ExitStack() as handlers:
        return _execute(case, internal, packing, out, progress_mode, comm, t_all, restart, command, handlers)


def _execute(case: Case, internal, packing, out: Path, progress_mode: str, comm: MPI.Comm, t_all: float,
             restart: bool, command: str, handlers: contextlib.ExitStack) -> Path:
    from solver.checkpoint import CheckpointError, StopRequest, read_checkpoint, write_checkpoint
    from solver.mesh import build_mesh
    from solver.numerics.finite import check_fields, check_row
    from solver.output import HISTORY_UNITS, History, Progress, write_json

    if comm.rank == 0 and not restart:
        (out / "case.yaml").write_text(yaml.safe_dump(case_to_dict(case), sort_keys=False))
    cycling = case.loading.type == "galvanostatic"
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
    t = time.perf_counter()
    if cycling:
        from solver.cycling import CELL_COLUMNS, CoupledCell

        cell = CoupledCell(internal, bundle)
        sim = cell.sim
        fields = cell.field_functions()
        progress.set_total(float(cell.ec.n_segments))
    else:
        from solver.coupling import Simulation
        from solver.loading import LoadPath

        sim = Simulation(internal, bundle)
        fields = sim.field_functions()
        path = LoadPath.from_case(case.loading)
        progress.set_total(path.length)
    timings["setup"] = time.perf_counter() - t
    dofs = sim.dofs()
    if cycling:
        dofs.update({"lithiation": cell.ec.Vx.dofmap.index_map.size_global,
                     "ionic_potential": cell.ec.Vp.dofmap.index_map.size_global})
    progress.message(
        f"{bundle.info['mesh']['cells_global']} cells, DOFs {dofs}, "
        f"{len(bundle.info['packing']['particles'])} particles (fraction {bundle.info['packing']['fraction']:.3f})"
    )
    mech_columns = ["x", "soc", "vol_strain", "mean_strain", "sigma1_max_SE", "sigma_h_min_AM", "elastic_energy"]
    if sim.fracture:
        mech_columns += ["fracture_energy", "crack_length", "crack_length_sharp", "damaged_fraction",
                         "crack_segments", "d_max"]
    solver_columns = ["iterations", "elastic_solves", "damage_solves", "newton_iterations", "linear_iterations"]
    if cycling:
        columns = ["step", "accepted", "time"] + CELL_COLUMNS + mech_columns + solver_columns + [
            "ec_newton_iterations", "wall"]
    else:
        columns = ["step", "accepted", "time", "load"] + mech_columns + solver_columns + ["wall"]

    # ---------------------------------------------------------------- checkpoint and restart
    kind = "cycling" if cycling else "loading"
    checkpoint_path = out / CHECKPOINT_FILE
    checkpoint_fields = cell.checkpoint_functions() if cycling else sim.checkpoint_functions()
    fingerprint = case_fingerprint(case, bundle.info["mesh"])
    # bookkeeping of the run so far (continued from the checkpoint on a restart)
    book = {"history_rows": 0, "field_outputs": 0, "file_outputs": 0, "accepted": 0, "last": {}, "timings": {},
            "ranks": [], "checkpoints": 0, "field_files": ["fields.xdmf"]}
    resume = None
    if restart:
        try:
            saved = read_checkpoint(checkpoint_path, checkpoint_fields, comm, fingerprint=fingerprint)
        except CheckpointError as exc:
            raise RunError(f"{out}: cannot restart: {exc}") from None
        if saved.get("kind") != kind:
            raise RunError(f"{out}: cannot restart: the checkpoint is of a {saved.get('kind')} run, the case "
                           f"describes a {kind} run")
        resume, book = saved["loop"], saved["run"]
        cut_back_outputs(out, book, cycling, comm)
        if comm.rank == 0:
            (out / "case.yaml").write_text(yaml.safe_dump(case_to_dict(case), sort_keys=False))
            (out / STOP_MARKER).unlink(missing_ok=True)
            (out / "error.txt").unlink(missing_ok=True)
        where = f"t = {resume['ec']['time']:.1f} s" if cycling else f"load {resume['s']:.4f}"
        progress.message(f"continuing from {checkpoint_path} (written on {saved.get('ranks', '?')} rank(s)): "
                         f"step {resume['step']}, {book['accepted']} accepted, {where}")
    book["ranks"] = list(book["ranks"]) + [comm.size]
    every_checkpoint = case.output.checkpoint_every
    checkpoint_interval = case.output.checkpoint_interval
    stop_after = int(os.environ.get(STOP_AFTER_ENV, "0") or 0)

    history = History(out / "history.csv", comm, columns, append=restart)
    # a restart continues the field series, unless cut_back_outputs started a new file
    attempt = len(book["ranks"]) - 1  # 0 for a first run, k for the k-th restart
    vtx = (out / ("fields.bp" if attempt == 0 else f"fields_restart{attempt}.bp")) if case.output.vtx else None
    writer = FieldWriter(out / book["field_files"][-1], bundle.mesh, fields,
                         append=restart and book["file_outputs"] > 0, vtx_path=vtx)
    profiles = ProfileWriter(out / "profiles.csv", comm, append=restart) if cycling else None
    every = case.output.fields_every
    n_rows = [book["history_rows"]]
    n_written = [book["field_outputs"]]
    n_in_file = [book["file_outputs"]]
    accepted_count = [book["accepted"]]
    last = dict(book["last"])
    t_io = [0.0]
    t_checkpoint = [0.0]
    last_checkpoint = [time.perf_counter()]
    stopped: dict = {}

    def add_row(row: dict) -> None:
        check_row(row)  # no inf or nan in the results
        history.add(row)
        n_rows[0] += 1

    def write_fields(t_now: float) -> None:
        t0 = time.perf_counter()
        check_fields(fields, comm, t_now, accepted_count[0])
        writer.write(t_now)
        if profiles is not None:
            profiles.add(accepted_count[0], t_now, cell.profiles(case.output.profile_bins))
        t_io[0] += time.perf_counter() - t0
        n_written[0] += 1
        n_in_file[0] += 1

    sim.update_outputs()
    zero = {k: 0 for k in solver_columns}
    if cycling:
        cell.ec.update_outputs()
        cell.kappa_eff_rel = cell.ec.effective_conductivity(relative=True)
    if not restart:
        first = sim.measures()
        if cycling:
            first.update(cell.cell_measures())
            add_row({"step": 0, "accepted": 1, **first, **zero, "ec_newton_iterations": 0, "wall": 0.0})
        else:
            add_row({"step": 0, "accepted": 1, "time": 0.0, "load": 0.0, **first, **zero, "wall": 0.0})
        write_fields(0.0)

    def on_step(rec):
        res = rec.result
        row = {"step": rec.step, "accepted": int(rec.accepted)}
        row.update({k: getattr(res, k) for k in solver_columns})
        if cycling:
            row.update({"time": rec.time, "ec_newton_iterations": rec.ec.newton_iterations})
            at_end = cell.ec.done
        else:
            row.update({"time": path.time(rec.load), "load": rec.load})
            at_end = rec.load >= path.length - 1e-12
        row.update(rec.measures)
        add_row(row)
        if rec.accepted:
            accepted_count[0] += 1
            last.update(row)
            if (every and accepted_count[0] % every == 0) or at_end:
                write_fields(row["time"])

    t_solve = time.perf_counter()

    def attempt_timings() -> dict:
        """Times of this attempt (s), added to those of the earlier attempts."""
        now = time.perf_counter()
        mine = dict(timings)
        mine["solve"] = now - t_solve - t_io[0] - t_checkpoint[0]
        mine["output"] = t_io[0]
        mine["checkpoint"] = t_checkpoint[0]
        mine["total"] = now - t_all
        for k, v in book["timings"].items():
            mine[k] = mine.get(k, 0.0) + v
        return mine

    def at_boundary(loop_state: dict) -> bool:
        """After an accepted step that does not end the run: write a checkpoint when it is
        due or a stop was requested; True stops the run (collective)."""
        if stop_after and accepted_count[0] >= stop_after:
            stop.request()
        stopping = stop.requested(comm)
        due = stopping or bool(every_checkpoint and accepted_count[0] % every_checkpoint == 0)
        if not due and checkpoint_interval > 0:
            due = comm.bcast(time.perf_counter() - last_checkpoint[0] >= checkpoint_interval, root=0)
        if not due:
            return False
        t0 = time.perf_counter()
        # the field file is closed and opened again, so that fields.h5 is consistent on disk
        # with the checkpoint even if the process is killed later
        writer.reopen()
        book.update(history_rows=n_rows[0], field_outputs=n_written[0], file_outputs=n_in_file[0],
                    accepted=accepted_count[0], last=dict(last), checkpoints=book["checkpoints"] + 1)
        state = {"kind": kind, "ranks": comm.size, "loop": loop_state,
                 "run": {**book, "timings": attempt_timings()}}
        write_checkpoint(checkpoint_path, checkpoint_fields, state, comm, fingerprint=fingerprint)
        last_checkpoint[0] = time.perf_counter()
        t_checkpoint[0] += last_checkpoint[0] - t0
        if stopping:
            signum = comm.allreduce(-1 if stop.signum is None else int(stop.signum), op=MPI.MAX)
            stopped.update(loop_state, signal=signum)
        return stopping

    if cycling:
        from solver.cycling import run_cycling

        result = run_cycling(cell, on_step, progress, resume=resume, at_boundary=at_boundary)
        counters = result["counters"]
        timings.update({f"solve_{k}": v for k, v in result["timers"].items()})
    else:
        from solver.coupling import run_loading

        counters = run_loading(sim, path, on_step, progress, resume=resume, at_boundary=at_boundary)
    writer.close()
    history.close()
    if profiles is not None:
        profiles.close()
    progress.close()
    if stopped:
        raise record_stop(out, case, stopped, accepted_count[0], cycling, command, comm)
    timings.update(attempt_timings())
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MB (Linux reports kB)
    peak = comm.gather(rss, root=0)

    summary = {
        "status": "complete",
        "case_name": case.name,
        "case": case_to_dict(case),
        "versions": software_versions(),
        "ranks": comm.size,
        "mesh": bundle.info["mesh"],
        "estimate": _estimate(case),
        "particles": len(bundle.info["packing"]["particles"]),
        "am_fraction": bundle.info["packing"]["fraction"],
        "dofs": dofs,
        "counters": counters,
        "timings_s": timings,
        "wall_time_s": timings["total"],
        "peak_memory_mb_per_rank": peak if comm.rank == 0 else None,
        "field_outputs": n_written[0],
        "field_files": book["field_files"],
        "restarts": len(book["ranks"]) - 1,
        "ranks_per_attempt": book["ranks"],
        "checkpoints_written": book["checkpoints"],
        "final": {k: last.get(k) for k in columns if k not in ("step", "accepted")},
        "history_units": {k: HISTORY_UNITS.get(k, "") for k in columns},
    }
    if cycling:
        summary["cell"] = _cell_summary(cell.ec)
    if sim.fracture:
        summary["failure_properties"] = _failure_si(sim.failure)
        summary["stages"] = _stages(out / "history.csv", comm)
    write_json(out / "summary.json", summary, comm)
    if comm.rank == 0:
        # a complete run cannot be continued: its checkpoint is of no further use
        checkpoint_path.unlink(missing_ok=True)
        checkpoint_path.with_name(CHECKPOINT_FILE + ".tmp").unlink(missing_ok=True)
        print(f"[{case.name}] done in {timings['total']:.1f} s: results in {out}", flush=True)
    return out


def _estimate(case: Case) -> dict | None:
    """The size estimated before the run (solver.config.estimate), to compare with the mesh."""
    try:
        from solver.config.estimate import estimate

        return estimate(case).to_dict()
    except Exception:  # the record of a finished run must never fail on it
        return None


def _cell_summary(ec) -> dict:
    """Capacity and the end of every protocol segment, in SI units (2D: per metre of thickness)."""
    from solver.cycling import C_PER_UM2_TO_MAH_PER_CM2

    per = 1e6 if ec.domain.geometry.dim == 2 else 1.0  # 2D: per um of thickness -> per m
    area = ec.collector_area
    segments = []
    for s in ec.segment_log:
        segments.append({
            "segment": s["segment"], "cycle": s["cycle"], "mode": s["mode"], "event": s["event"],
            "duration_s": s["duration"], "voltage_V": s["voltage"], "x_mean": s["x_mean"],
            "capacity_fraction": s["capacity"] / ec.capacity,
            "capacity_mAh_cm2": s["capacity"] / area * C_PER_UM2_TO_MAH_PER_CM2 if area > 0 else None,
        })
    return {
        "theoretical_capacity_C": ec.capacity * per,
        "theoretical_capacity_mAh_cm2": ec.capacity / area * C_PER_UM2_TO_MAH_PER_CM2 if area > 0 else None,
        "one_c_current_A": ec.one_c * per,
        "segments": segments,
    }


def _failure_si(resolved: dict) -> dict:
    """Resolved failure properties, back in SI units, per phase."""
    out = {}
    for phase, r in resolved.items():
        if phase == "interface_band":
            out[phase] = {"Gc_J_m2": r["Gc"] * 1e3, "width_m": r["width"] * 1e-6, "cells": r["cells"]}
        else:
            out[phase] = {"Gc_J_m2": r["Gc"] * 1e3, "ell_m": r["ell"] * 1e-6, "strength_Pa": r["strength"] * 1e9,
                          "critical_strain": r["critical_strain"]}
    return out


def _stages(history_csv: Path, comm: MPI.Comm) -> dict | None:
    result = None
    if comm.rank == 0:
        try:
            from postprocess.stages import detect_stages_from_history

            result = detect_stages_from_history(history_csv)
        except Exception as exc:  # stage detection must never lose a finished run
            result = {"error": f"{type(exc).__name__}: {exc}"}
    return comm.bcast(result, root=0)


def load_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / COMPLETION_MARKER).read_text())


__all__ = ["run_case", "prepare_case", "run_state", "check_restart", "RunError", "RunCheckpointed", "load_summary",
           "COMPLETION_MARKER", "CHECKPOINT_FILE", "STOP_MARKER"]
