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
    from solver.mesh import build_mesh
    from solver.output import HISTORY_UNITS, FieldWriter, History, Progress, write_json

    if comm.rank == 0:
        (out / "case.yaml").write_text(yaml.safe_dump(case_to_dict(case), sort_keys=False))
    cycling = case.loading.type == "galvanostatic"
    timings = {}
    progress = Progress(comm, 1.0, progress_mode, label=case.name)
    progress.message(f"meshing ({comm.size} rank{'s' if comm.size > 1 else ''}) -> {out}")
    t = time.perf_counter()
    bundle = build_mesh(internal, comm, out_dir=out, packing=packing)
    timings["mesh"] = time.perf_counter() - t
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
    history = History(out / "history.csv", comm, columns)
    writer = FieldWriter(out / "fields.xdmf", bundle.mesh, fields)
    profiles = _ProfileWriter(out / "profiles.csv", comm) if cycling else None
    every = case.output.fields_every
    n_written = [0]
    accepted_count = [0]
    last = {}
    t_io = [0.0]

    def write_fields(t_now: float) -> None:
        t0 = time.perf_counter()
        writer.write(t_now)
        if profiles is not None:
            profiles.add(accepted_count[0], t_now, cell.profiles(case.output.profile_bins))
        t_io[0] += time.perf_counter() - t0
        n_written[0] += 1

    sim.update_outputs()
    first = sim.measures()
    zero = {k: 0 for k in solver_columns}
    if cycling:
        cell.ec.update_outputs()
        cell.kappa_eff_rel = cell.ec.effective_conductivity(relative=True)
        first.update(cell.cell_measures())
        history.add({"step": 0, "accepted": 1, **first, **zero, "ec_newton_iterations": 0, "wall": 0.0})
    else:
        history.add({"step": 0, "accepted": 1, "time": 0.0, "load": 0.0, **first, **zero, "wall": 0.0})
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
        history.add(row)
        if rec.accepted:
            accepted_count[0] += 1
            last.update(row)
            if (every and accepted_count[0] % every == 0) or at_end:
                write_fields(row["time"])

    t = time.perf_counter()
    if cycling:
        from solver.cycling import run_cycling

        result = run_cycling(cell, on_step, progress)
        counters = result["counters"]
        timings.update({f"solve_{k}": v for k, v in result["timers"].items()})
    else:
        from solver.coupling import run_loading

        counters = run_loading(sim, path, on_step, progress)
    timings["solve"] = time.perf_counter() - t - t_io[0]
    timings["output"] = t_io[0]
    writer.close()
    history.close()
    if profiles is not None:
        profiles.close()
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
    if cycling:
        summary["cell"] = _cell_summary(cell.ec)
    if sim.fracture:
        summary["failure_properties"] = _failure_si(sim.failure)
        summary["stages"] = _stages(out / "history.csv", comm)
    write_json(out / "summary.json", summary, comm)
    if comm.rank == 0:
        print(f"[{case.name}] done in {timings['total']:.1f} s: results in {out}", flush=True)
    return out


class _ProfileWriter:
    """profiles.csv: mean lithiation of the particles and damage of the electrolyte against
    the depth from the lithium side, one block of rows per field output (rank 0 writes)."""

    def __init__(self, path: Path, comm: MPI.Comm):
        self._fh = open(path, "w") if comm.rank == 0 else None
        self._header = False

    def add(self, output: int, t: float, prof: dict) -> None:
        if self._fh is None:
            return
        keys = [k for k in ("x", "damage") if k in prof]
        if not self._header:
            self._fh.write(",".join(["output", "time", "depth"] + keys) + "\n")
            self._header = True
        for i, depth in enumerate(prof["depth"]):
            vals = [f"{prof[k][i]:.8g}" for k in keys]
            self._fh.write(",".join([str(output), f"{t:.8g}", f"{depth * 1e-6:.8g}"] + vals) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


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


__all__ = ["run_case", "prepare_case", "run_state", "RunError", "load_summary", "COMPLETION_MARKER"]
