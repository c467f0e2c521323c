"""summary.json, written last: its presence marks a complete run.

It holds the resolved case, software versions, mesh and DOFs, ranks, timings, counters,
peak memory, the final values of every history column with their units, the failure
properties in SI units and the detected stages (with fracture), and the protocol
segments with their capacities (with electrochemistry).
"""

from __future__ import annotations

import json
import platform
import resource
from pathlib import Path

from mpi4py import MPI

from solver import __version__
from solver.config import case_to_dict
from solver.runs.rundir import COMPLETION_MARKER
from solver.runs.writers import HISTORY_UNITS, write_json


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


def write_summary(out: Path, case, bundle, mech, stepper, recorder, book: dict, dofs: dict, counters: dict,
                  timings: dict, columns: list[str], comm: MPI.Comm) -> None:
    """Write ``out/summary.json`` of a complete run (collective)."""
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
        "field_outputs": recorder.field_outputs,
        "field_files": book["field_files"],
        "restarts": len(book["ranks"]) - 1,
        "ranks_per_attempt": book["ranks"],
        "checkpoints_written": book["checkpoints"],
        "final": {k: recorder.last.get(k) for k in columns if k not in ("step", "accepted")},
        "history_units": {k: HISTORY_UNITS.get(k, "") for k in columns},
        "estimate": _estimate(case),
    }
    if hasattr(stepper, "ec"):
        summary["cell"] = cell_summary(stepper.ec)
    if mech.fracture:
        summary["failure_properties"] = failure_si(mech.failure, mech.failure_bands, case.fracture)
        summary["stages"] = _stages(out / "history.csv", comm)
        summary["localisation"] = _localisation(out / "history.csv", comm)
    write_json(out / COMPLETION_MARKER, summary, comm)


def cell_summary(ec) -> dict:
    """Capacity and the end of every protocol segment, in SI units (2D: per metre of thickness)."""
    from solver.runs.cycling import C_PER_UM2_TO_MAH_PER_CM2

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


def failure_si(resolved: dict, bands: dict, fracture) -> dict:
    """Resolved failure properties (per phase) and the bands along phase boundaries, back
    in SI units, with the model that used them."""
    out = {"model": fracture.model}
    if fracture.model == "cohesive":
        out["softening"] = fracture.softening
    for phase, r in resolved.items():
        out[phase] = {"Gc_J_m2": r["Gc"] * 1e3, "ell_m": r["ell"] * 1e-6, "strength_Pa": r["strength"] * 1e9,
                      "critical_strain": r["critical_strain"]}
        if "l_ch" in r:
            out[phase].update(band_modulus_Pa=r["E_c"] * 1e9, irwin_length_m=r["l_ch"] * 1e-6, a1=r["a1"],
                              ell_max_m=r["ell_max"] * 1e-6)
    for name, b in bands.items():
        out[name] = {"width_m": b["width"] * 1e-6, "cells": b["cells"]}
        if "Gc" in b:
            out[name]["Gc_J_m2"] = b["Gc"] * 1e3
        if "strength" in b:
            out[name]["strength_Pa"] = b["strength"] * 1e9
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


def _localisation(history_csv: Path, comm: MPI.Comm) -> dict | None:
    result = None
    if comm.rank == 0:
        try:
            from postprocess.history import read_accepted_history
            from postprocess.localisation import localisation

            result = localisation(read_accepted_history(history_csv))
        except Exception as exc:  # never lose a finished run to a measure
            result = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    return comm.bcast(result, root=0)


def _estimate(case) -> dict | None:
    """The size estimated before the run (solver.config.estimate), to compare with the mesh."""
    try:
        from solver.config.estimate import estimate

        return estimate(case).to_dict()
    except Exception:  # the record of a finished run must never fail on it
        return None


def load_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / COMPLETION_MARKER).read_text())
