"""One run, from a case file to a complete run directory.

A run directory holds ``case.yaml`` (the resolved case, SI units), ``mesh.msh`` and
``mesh.json``, ``fields.xdmf``/``fields.h5``, ``history.csv`` and, written last,
``summary.json``: a directory without ``summary.json`` is not complete. A failed run
leaves ``error.txt``. An existing run directory is never silently reused.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
import traceback
from pathlib import Path

import yaml
from mpi4py import MPI

from solver import __version__
from solver.config import Case, CaseError, case_to_dict, load_case
from solver.units import to_internal

COMPLETION_MARKER = "summary.json"


class RunError(RuntimeError):
    """A run could not be started or did not finish (message for the user)."""


def prepare_case(case_path: str | Path, overrides: list[str], comm: MPI.Comm):
    """Validate the case and check that its particles can be packed, before any
    expensive work. Returns (case in SI, case in internal units, packing)."""
    from meshes.packing import PackingError
    from solver.mesh import pack

    case = load_case(case_path, overrides)
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


def run_state(path: Path) -> str:
    """'missing', 'not-a-directory', 'empty', 'complete', 'failed' or 'incomplete' (running or killed)."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if not path.is_dir():
        return "not-a-directory"
    if not any(path.iterdir()):
        return "empty"
    if (path / COMPLETION_MARKER).exists():
        return "complete"
    if (path / "error.txt").exists():
        return "failed"
    return "incomplete"


def prepare_directory(out: Path, overwrite: bool, comm: MPI.Comm) -> None:
    err = None
    if comm.rank == 0:
        state = run_state(out)
        if out.exists() and not out.is_dir():
            err = f"{out}: exists and is not a directory"
        elif state in ("complete", "failed", "incomplete"):
            if not overwrite:
                err = (f"{out}: a run directory already exists ({state}); use --overwrite to replace it "
                       f"or --out to choose another directory")
            elif not (out / "case.yaml").exists():
                err = f"{out}: not an ssbfrac run directory (no case.yaml): refusing to delete it"
            else:
                shutil.rmtree(out)
        if err is None:
            out.mkdir(parents=True, exist_ok=True)
    err = comm.bcast(err, root=0)
    if err:
        raise RunError(err)


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
             overwrite: bool = False, progress_mode: str | None = None, comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """Run a case into ``out`` (default ``results/<name>``); returns the directory."""
    t_all = time.perf_counter()
    case, internal, packing = prepare_case(case_path, overrides or [], comm)
    out = Path(out) if out is not None else Path("results") / case.name
    prepare_directory(out, overwrite, comm)
    try:
        return _run(case, internal, packing, out, progress_mode or case.output.progress, comm, t_all)
    except BaseException as exc:
        if comm.rank == 0:
            (out / "error.txt").write_text(
                f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))
            )
        raise


def _run(case: Case, internal, packing, out: Path, progress_mode: str, comm: MPI.Comm, t_all: float) -> Path:
    from solver.coupling import Simulation, run_loading
    from solver.loading import LoadPath
    from solver.mesh import build_mesh
    from solver.output import HISTORY_UNITS, FieldWriter, History, Progress, write_json

    if comm.rank == 0:
        (out / "case.yaml").write_text(yaml.safe_dump(case_to_dict(case), sort_keys=False))
    timings = {}
    progress = Progress(comm, float(len(case.loading.path) - 1), progress_mode, label=case.name)
    progress.message(f"meshing ({comm.size} rank{'s' if comm.size > 1 else ''}) -> {out}")
    t = time.perf_counter()
    bundle = build_mesh(internal, comm, out_dir=out, packing=packing)
    timings["mesh"] = time.perf_counter() - t
    t = time.perf_counter()
    sim = Simulation(internal, bundle)
    timings["setup"] = time.perf_counter() - t
    dofs = sim.dofs()
    progress.message(
        f"{bundle.info['mesh']['cells_global']} cells, DOFs {dofs}, "
        f"{len(bundle.info['packing']['particles'])} particles (fraction {bundle.info['packing']['fraction']:.3f})"
    )
    path = LoadPath.from_case(case.loading)
    columns = ["step", "accepted", "time", "load", "x", "soc", "vol_strain", "mean_strain",
               "sigma1_max_SE", "sigma_h_min_AM", "elastic_energy"]
    if sim.fracture:
        columns += ["fracture_energy", "crack_length", "crack_length_sharp", "damaged_fraction",
                    "crack_segments", "d_max"]
    columns += ["iterations", "elastic_solves", "damage_solves", "newton_iterations", "linear_iterations", "wall"]
    history = History(out / "history.csv", comm, columns)
    writer = FieldWriter(out / "fields.xdmf", bundle.mesh, sim.field_functions())
    every = case.output.fields_every
    n_written = [0]
    accepted_count = [0]
    last = {}
    t_io = [0.0]

    sim.update_outputs()
    first = sim.measures()
    history.add({"step": 0, "accepted": 1, "time": 0.0, "load": 0.0, **first, "iterations": 0,
                 "elastic_solves": 0, "damage_solves": 0, "newton_iterations": 0, "linear_iterations": 0,
                 "wall": 0.0})
    t0 = time.perf_counter()
    writer.write(0.0)
    t_io[0] += time.perf_counter() - t0
    n_written[0] += 1

    def on_step(rec):
        row = {"step": rec.step, "accepted": int(rec.accepted), "time": path.time(rec.load), "load": rec.load,
               "iterations": rec.result.iterations, "elastic_solves": rec.result.elastic_solves,
               "damage_solves": rec.result.damage_solves, "newton_iterations": rec.result.newton_iterations,
               "linear_iterations": rec.result.linear_iterations}
        row.update(rec.measures)
        history.add(row)
        if rec.accepted:
            accepted_count[0] += 1
            last.update(row)
            at_end = rec.load >= path.length - 1e-12
            if (every and accepted_count[0] % every == 0) or at_end:
                t0 = time.perf_counter()
                writer.write(path.time(rec.load))
                t_io[0] += time.perf_counter() - t0
                n_written[0] += 1

    t = time.perf_counter()
    counters = run_loading(sim, path, on_step, progress)
    timings["solve"] = time.perf_counter() - t - t_io[0]
    timings["output"] = t_io[0]
    writer.close()
    history.close()
    progress.close()
    timings["total"] = time.perf_counter() - t_all
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
        "particles": len(bundle.info["packing"]["particles"]),
        "am_fraction": bundle.info["packing"]["fraction"],
        "dofs": dofs,
        "counters": counters,
        "timings_s": timings,
        "wall_time_s": timings["total"],
        "peak_memory_mb_per_rank": peak if comm.rank == 0 else None,
        "field_outputs": n_written[0],
        "final": {k: last.get(k) for k in columns if k not in ("step", "accepted")},
        "history_units": {k: HISTORY_UNITS.get(k, "") for k in columns},
    }
    if sim.fracture:
        summary["failure_properties"] = _failure_si(sim.failure)
        summary["stages"] = _stages(out / "history.csv", comm)
    write_json(out / "summary.json", summary, comm)
    if comm.rank == 0:
        print(f"[{case.name}] done in {timings['total']:.1f} s: results in {out}", flush=True)
    return out


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


__all__ = ["run_case", "prepare_case", "run_state", "RunError", "load_summary", "COMPLETION_MARKER"]
