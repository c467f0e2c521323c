"""Post-processing of one run directory: plots and a Markdown report in RUN_DIR/plots/.

:func:`post_run` reads history.csv (and, when present, summary.json, case.yaml and
fields.h5), detects the crack-growth stages against the particle volumetric strain and
against the state of charge, and writes (each figure as PNG and PDF):

=====================  ==========================================================
``crack_vs_soc``       crack length vs state of charge, stages shaded
``crack_vs_strain``    crack length vs particle volumetric strain, stages shaded
``energies``           elastic and fracture energy vs the abscissa
``stress``             largest principal stress in the electrolyte (MPa) vs abscissa
``solver``             iterations, Krylov iterations, wall time per step
``voltage``            voltage vs capacity (when the history has both columns)
``fields_<k>``         microstructure with damage, and the largest principal stress,
                       at field output k (2D runs)
``report.md``          stages, key parameters, figure links
=====================  ==========================================================

Figures whose columns are absent (e.g. crack measures of a run without fracture) are
skipped and the report says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from postprocess import plots
from postprocess.history import (PostprocessError, error_message, get_path, read_case, read_history,
                                 read_summary, run_status, accepted_rows)
from postprocess.stages import detect_stages_from_history


def post_run(run_dir: str | Path, out_dir: str | Path | None = None, steps: list[str] | None = None,
             abscissa: str = "vol_strain", formats=("png", "pdf"), stage_options: dict | None = None) -> dict:
    """Plots and report.md of a run; returns ``{"report": path, "figures": {name: [paths]},
    "stages": {abscissa: result}, "skipped": {name: reason}}``."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    history_csv = run_dir / "history.csv"
    case = read_case(run_dir)
    summary = read_summary(run_dir)
    status = run_status(run_dir)
    all_rows = read_history(history_csv)
    history = accepted_rows(all_rows, history_csv)
    if not history or not history["accepted"].size:
        raise PostprocessError(f"{history_csv}: no accepted rows yet: nothing to plot")
    if abscissa not in history:
        raise PostprocessError(f"{history_csv}: no column {abscissa!r}; columns are {sorted(history)}")
    dimension = int(case.get("dimension", 2))
    options = stage_options or {}

    stages = {}
    for name in dict.fromkeys(["vol_strain", "soc", abscissa]):
        if name in history:
            stages[name] = detect_stages_from_history(history_csv, abscissa=name, **options)

    strength = get_path(summary or {}, "failure_properties.electrolyte.strength_Pa")
    units = (summary or {}).get("history_units", {})
    figures: dict[str, list[Path]] = {}
    skipped: dict[str, str] = {}

    def emit(name, fig, reason):
        if fig is None:
            skipped[name] = reason
            return
        figures[name] = plots.save(fig, out, name, formats)

    no_crack = stages.get("vol_strain", {}).get("reason") or "the history has no crack_length column"
    emit("crack_vs_soc", plots.crack_figure(history, stages["soc"], "soc", dimension) if "soc" in stages else None,
         no_crack)
    emit("crack_vs_strain", plots.crack_figure(history, stages["vol_strain"], "vol_strain", dimension)
         if "vol_strain" in stages else None, no_crack)
    emit("energies", plots.energy_figure(history, abscissa, dimension), "no energy columns")
    emit("stress", plots.stress_figure(history, abscissa, strength * 1e-6 if strength else None),
         "no sigma1_max_SE column")
    emit("solver", plots.solver_figure(all_rows), "no solver columns")
    emit("voltage", plots.voltage_figure(history, _short_unit(units.get("voltage"), "V"),
                                         _short_unit(units.get("capacity"), ""), dimension),
         "no voltage and capacity columns (electrochemistry not in this run)")
    fields_note = _field_figures(run_dir, out, steps, history, formats, figures, skipped)

    report = out / "report.md"
    report.write_text(_report_text(run_dir, out, case, summary, status, history, stages, abscissa,
                                   figures, skipped, fields_note, dimension))
    return {"report": report, "figures": figures, "stages": stages, "skipped": skipped}


def _short_unit(text: str | None, default: str) -> str:
    if not text:
        return default
    return text.split(" (")[0].strip() or default


def _field_figures(run_dir: Path, out: Path, steps, history, formats, figures, skipped) -> str:
    from postprocess.fields import field_figure, read_field_file, select_outputs

    h5 = run_dir / "fields.h5"
    if steps is not None and "none" in steps:
        return "field pictures not requested (--steps none)"
    if not h5.exists():
        skipped["fields"] = f"{h5} not found"
        return skipped["fields"]
    ff = read_field_file(h5)
    if ff.gdim != 2:
        skipped["fields"] = "3D run: use `ssbfrac paraview` for field pictures"
        return skipped["fields"]
    if not ff.times:
        skipped["fields"] = f"{h5}: no field output yet"
        return skipped["fields"]
    for k in select_outputs(steps, len(ff.times), h5):
        t = ff.times[k]
        fig = field_figure(ff, t, title=f"{run_dir.name}: output {k}, t = {t:g} s{_state_at(history, t)}")
        figures[f"fields_{k:04d}"] = plots.save(fig, out, f"fields_{k:04d}", formats)
    return ""


def _state_at(history: dict, t: float) -> str:
    """', step 5, SOC 0.000, vol. strain 0.0300' for the accepted row at time t."""
    if "time" not in history:
        return ""
    rows = np.flatnonzero(np.isclose(history["time"], t, rtol=1e-9, atol=1e-9))
    if rows.size == 0:
        return ""
    i = rows[-1]
    parts = []
    if "step" in history:
        parts.append(f"step {int(history['step'][i])}")
    if "soc" in history:
        parts.append(f"SOC {history['soc'][i]:.3f}")
    if "vol_strain" in history:
        parts.append(f"vol. strain {history['vol_strain'][i]:.4f}")
    return ", " + ", ".join(parts) if parts else ""


# --------------------------------------------------------------------------- report.md
def _fmt(v, spec=".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "-" if not np.isfinite(v) else format(float(v), spec)
    return str(v)


def _last(history: dict, name: str):
    if name not in history:
        return None
    col = history[name][np.isfinite(history[name])]
    return float(col[-1]) if col.size else None


def _failure_text(spec: dict | None) -> str:
    if not spec:
        return "-"
    parts = []
    for key, unit, scale in (("Gc", "J/m^2", 1.0), ("K_Ic", "MPa m^0.5", 1e-6), ("ell", "um", 1e6),
                             ("strength", "MPa", 1e-6), ("critical_strain", "", 1.0)):
        if spec.get(key) is not None:
            parts.append(f"{key} = {spec[key] * scale:.4g} {unit}".strip())
    return ", ".join(parts) or "-"


def _boundary_text(boundary: dict) -> str:
    parts = []
    for side, bc in (boundary or {}).items():
        if isinstance(bc, dict) and bc.get("type") == "pressure":
            parts.append(f"{side}: pressure {bc.get('value', 0) * 1e-6:.4g} MPa")
        else:
            parts.append(f"{side}: {bc.get('type') if isinstance(bc, dict) else bc}")
    return ", ".join(parts) or "-"


def _parameter_rows(case: dict, summary: dict | None) -> list[tuple[str, str]]:
    """(parameter, value) rows of the report, in display units (um, GPa, MPa, %)."""

    def value(path, scale=None):
        v = get_path(case, path)
        if scale is not None and isinstance(v, (int, float)):
            v = v * scale
        return _fmt(v)

    def named(path):
        name = get_path(case, path + ".name")
        return f" ({name})" if name else ""

    particles = value("geometry.particles.shape")
    if get_path(case, "geometry.particles.shape") == "polygon":
        particles += f", {value('geometry.particles.sides')} sides"
    particles += (f", radius {value('geometry.particles.radius', 1e6)} um, target fraction "
                  f"{value('geometry.particles.volume_fraction')}, seed {value('geometry.particles.seed')}")
    fracture = "disabled"
    if get_path(case, "fracture.enabled"):
        fracture = (f"{value('fracture.model')}, split {value('fracture.split')}, driving force "
                    f"{value('fracture.driving_force')}, phases {value('fracture.phases')}, "
                    f"scheme {value('fracture.scheme.type')}")
    rows = [
        ("dimension", value("dimension")),
        ("domain (um)", " x ".join(f"{v * 1e6:.4g}" for v in get_path(case, "geometry.size") or []) or "-"),
        ("particles", particles),
        ("mesh (um)", f"size {value('geometry.mesh.size', 1e6)}, at interfaces "
                      f"{value('geometry.mesh.interface_size', 1e6)}, order {value('geometry.mesh.order')}"),
        ("active material", f"E = {value('materials.active.E', 1e-9)} GPa, nu = {value('materials.active.nu')}, "
                            + (f"expansion table {get_path(case, 'materials.active.expansion_table.strain')}"
                               if get_path(case, "materials.active.expansion_table") else
                               f"expansion = {value('materials.active.expansion', 100)} %")
                            + named("materials.active")),
        ("electrolyte", f"E = {value('materials.electrolyte.E', 1e-9)} GPa, "
                        f"nu = {value('materials.electrolyte.nu')}{named('materials.electrolyte')}"),
        ("electrolyte failure (given)", _failure_text(get_path(case, "materials.electrolyte.fracture"))),
        ("boundary conditions", _boundary_text(get_path(case, "mechanics.boundary"))),
        ("loading", f"{value('loading.type')}: path {value('loading.path')}, {value('loading.steps')} steps per "
                    f"segment, {value('loading.duration')} s per segment"),
        ("fracture", fracture),
    ]
    if not summary:
        return rows
    resolved = get_path(summary, "failure_properties.electrolyte")
    if resolved:
        rows.append(("electrolyte failure (resolved)",
                     f"Gc = {_fmt(resolved.get('Gc_J_m2'))} J/m^2, ell = {_fmt((resolved.get('ell_m') or 0) * 1e6)} "
                     f"um, strength = {_fmt((resolved.get('strength_Pa') or 0) * 1e-6)} MPa"))
    dofs = ", ".join(f"{k} {v}" for k, v in (summary.get("dofs") or {}).items()) or "-"
    versions = ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items()
                         if k in ("ssbfrac", "dolfinx", "petsc"))
    rows += [
        ("particles (achieved)", f"{_fmt(summary.get('particles'))}, AM fraction {_fmt(summary.get('am_fraction'))}"),
        ("cells / DOFs", f"{_fmt(get_path(summary, 'mesh.cells_global'))} / {dofs}"),
        ("MPI ranks", _fmt(summary.get("ranks"))),
        ("wall time (s)", _fmt(summary.get("wall_time_s"), ".1f")),
        ("versions", versions or "-"),
    ]
    return rows


def _stage_table(stages: dict) -> list[str]:
    usable = {k: v for k, v in stages.items() if v.get("available")}
    if not usable:
        reason = next(iter(stages.values()), {}).get("reason", "no crack measures in the history")
        return [f"No crack measures: {reason}."]
    names = list(usable)
    head = "| quantity | " + " | ".join(f"against {usable[n]['coordinate']}" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(usable[n], n) for n in names) + " |")

    row("cracked", lambda r, n: _fmt(r["cracked"]))
    row("stages detected (I / II / III)", lambda r, n: " / ".join(
        _fmt(r[f"stage_{s}_detected"]) for s in ("I", "II", "III")))
    row("onset (first crack)", lambda r, n: f"{n} = {_fmt(r['onset_value'])} (step {_fmt(r['onset_step'])})"
        if r["onset_load"] is not None else "-")
    row("onset, stage-II line extrapolated", lambda r, n: f"{n} = {_fmt(r['onset_extrapolated_value'])}"
        if r["onset_load_extrapolated"] is not None else "-")
    row("stage-II rate (crack per unit of the coordinate)", lambda r, n: _fmt(r["stage_II_rate"]))
    row("stage III from", lambda r, n: f"{n} = {_fmt(r['stage_III_start_value'])}"
        if r["stage_III_detected"] else "-")
    row("saturation level", lambda r, n: _fmt(r["saturation_level"]))
    row("final crack", lambda r, n: _fmt(r["final_crack"]))
    row("note", lambda r, n: r.get("note", ""))
    return lines


def _report_text(run_dir, out, case, summary, status, history, stages, abscissa, figures, skipped,
                 fields_note, dimension) -> str:
    u = plots.units(dimension)
    name = case.get("name", run_dir.name)
    lines = [f"# {name}", ""]
    if case.get("description"):
        lines += [str(case["description"]).strip(), ""]
    lines += [f"Run directory: `{run_dir}`; status: **{status}**"
              + (f" ({error_message(run_dir)})" if status == "failed" else "")
              + f"; {history['accepted'].size} accepted rows in history.csv.", ""]
    if status != "complete":
        lines += ["The run is not complete: the numbers below are those of the rows written so far.", ""]

    lines += ["## Crack growth", ""]
    lines += _stage_table(stages)
    lines += ["", f"Crack lengths in {u['crack']}. Stages after Bucci et al., J. Mater. Chem. A 5 (2017) 19422: "
              "I no crack until the onset, II growth at a near-constant rate, III deceleration and saturation. "
              "The onset is where the crack first exceeds a small fraction of its total growth (and an absolute "
              "floor); the stage-II rate is a Theil-Sen fit over the central part of the rise; stage III starts "
              "where the local growth rate falls below half the stage-II rate for good. Exact definitions: "
              "docs/postprocessing.md.", ""]
    finals = [("crack length, regularised", "crack_length", u["crack"]),
              ("crack length, d >= 0.9", "crack_length_sharp", u["crack"]),
              ("damaged fraction (d >= 0.9)", "damaged_fraction", "-"),
              ("crack segments", "crack_segments", "-"),
              ("largest damage", "d_max", "-"),
              ("largest electrolyte tension", "sigma1_max_SE", "MPa"),
              ("elastic energy", "elastic_energy", u["energy"]),
              ("fracture energy", "fracture_energy", u["energy"]),
              ("capacity", "capacity", ""),
              ("voltage", "voltage", "V")]
    rows = [(label, _last(history, col), unit) for label, col, unit in finals if col in history]
    if rows:
        lines += ["| final value (last accepted row) | | unit |", "|---|---|---|"]
        lines += [f"| {label} | {_fmt(v)} | {unit} |" for label, v, unit in rows]
        lines += [""]

    lines += ["## Key parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _parameter_rows(case, summary)]
    lines += [""]

    lines += ["## Figures", ""]
    titles = {"crack_vs_soc": "Crack length against state of charge",
              "crack_vs_strain": "Crack length against particle volumetric strain",
              "energies": f"Energies against {abscissa}", "stress": f"Electrolyte tension against {abscissa}",
              "solver": "Solver effort per step", "voltage": "Voltage against capacity"}
    for key, paths in figures.items():
        title = titles.get(key, f"Fields at output {int(key.split('_')[1])}" if key.startswith("fields_") else key)
        png = next((p for p in paths if p.suffix == ".png"), paths[0])
        others = ", ".join(f"[{p.suffix[1:].upper()}]({p.relative_to(out)})" for p in paths if p != png)
        lines += [f"### {title}", "", f"![{title}]({png.relative_to(out)})", ""]
        if others:
            lines += [f"Also as {others}.", ""]
    if skipped or fields_note:
        lines += ["Not drawn:", ""]
        lines += [f"- {k}: {v}" for k, v in skipped.items()]
        if fields_note and "fields" not in skipped:
            lines += [f"- fields: {fields_note}"]
        lines += [""]
    return "\n".join(lines)
