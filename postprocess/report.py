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
from postprocess.history import (
    PostprocessError,
    accepted_rows,
    error_message,
    get_path,
    read_case,
    read_history,
    read_summary,
    run_status,
)
from postprocess.localisation import localisation
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
    units = {**_history_units(), **((summary or {}).get("history_units") or {})}
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
    emit("stress", plots.stress_figure(history, abscissa, strength * 1e-6 if strength else None,
                                       plots.sharp_corners(case)),
         "no sigma1_max_SE column")
    emit("solver", plots.solver_figure(all_rows), "no solver columns")
    emit("voltage", plots.voltage_figure(history, _short_unit(units.get("voltage"), "V"),
                                         _short_unit(units.get("capacity"), "mAh/cm^2"), dimension),
         "no voltage and capacity columns (electrochemistry not in this run)")
    fields_note = _field_figures(run_dir, out, steps, history, formats, figures, skipped, case)

    report = out / "report.md"
    report.write_text(_report_text(run_dir, out, case, summary, status, history, stages, abscissa,
                                   figures, skipped, fields_note, dimension))
    return {"report": report, "figures": figures, "stages": stages, "skipped": skipped}


def _history_units() -> dict:
    """The units of the history columns as the solver documents them."""
    from solver.runs.writers import HISTORY_UNITS

    return dict(HISTORY_UNITS)


def _short_unit(text: str | None, default: str) -> str:
    if not text:
        return default
    return text.split(" (")[0].strip() or default


def _field_figures(run_dir: Path, out: Path, steps, history, formats, figures, skipped, case=None) -> str:
    from postprocess.fields import (
        damageable_phases,
        field_figure,
        read_field_file,
        select_outputs,
        series_limits,
    )

    h5 = run_dir / "fields.h5"
    if steps is not None and "none" in steps:
        return "field pictures not requested (--steps none)"
    if not h5.exists():
        skipped["fields"] = f"{h5} not found"
        return skipped["fields"]
    try:
        ff = read_field_file(h5)
    except PostprocessError as exc:
        skipped["fields"] = str(exc)
        return skipped["fields"]
    if ff.incomplete:
        skipped["fields at t = " + ", ".join(f"{t:g}" for t in ff.incomplete) + " s"] = (
            f"incomplete in {h5.name} (the run stopped while writing it); the outputs before it are read")
    if ff.gdim != 2:
        skipped["fields"] = "3D run: use `ssbfrac paraview` for field pictures"
        return skipped["fields"]
    if not ff.times:
        skipped["fields"] = f"{h5}: no field output yet"
        return skipped["fields"]
    chosen = select_outputs(steps, len(ff.times), h5)
    limits = series_limits(ff, "max_principal") if chosen and ff.has("max_principal") else None
    for k in chosen:
        t = ff.times[k]
        fig = field_figure(ff, t, title=f"{run_dir.name}: output {k}, t = {t:g} s{_state_at(history, t)}",
                           damageable=damageable_phases(case), stress_limits=limits,
                           sharp=plots.sharp_corners(case))
        figures[f"fields_{k:04d}"] = plots.save(fig, out, f"fields_{k:04d}", formats)
    return ""


def state_text(history: dict, t: float) -> str:
    """'step 5, SOC 0.433, vol. strain 0.0300, charge' for the accepted row at time t
    ('' when the history has no row at that time)."""
    if not history or "time" not in history:
        return ""
    rows = np.flatnonzero(np.isclose(history["time"], t, rtol=1e-9, atol=1e-9))
    if rows.size == 0:
        return ""
    i = rows[-1]
    parts = []
    if "step" in history:
        parts.append(f"step {int(history['step'][i])}")
    if "soc" in history and np.isfinite(history["soc"][i]):
        parts.append(f"SOC {history['soc'][i]:.3f}")
    if "vol_strain" in history and np.isfinite(history["vol_strain"][i]):
        parts.append(f"particle vol. strain {history['vol_strain'][i]:.4f}")
    if "mode" in history and str(history["mode"][i]):
        parts.append(str(history["mode"][i]))
    return ", ".join(parts)


def _state_at(history: dict, t: float) -> str:
    """', ' + :func:`state_text` (or '')."""
    text = state_text(history, t)
    return ", " + text if text else ""


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
    """The given failure properties with their units ('' when none are given)."""
    if not spec:
        return ""
    parts = []
    for key, unit, scale in (("Gc", "J/m^2", 1.0), ("K_Ic", "MPa m^0.5", 1e-6), ("ell", "um", 1e6),
                             ("strength", "MPa", 1e-6), ("critical_strain", "(strain)", 1.0)):
        if isinstance(spec.get(key), (int, float)):
            parts.append(f"{key} = {spec[key] * scale:.4g} {unit}")
    return ", ".join(parts)


def _boundary_text(boundary: dict) -> str:
    parts = []
    for side, bc in (boundary or {}).items():
        if isinstance(bc, dict) and bc.get("type") == "pressure":
            parts.append(f"{side}: pressure {bc.get('value', 0) * 1e-6:.4g} MPa")
        else:
            parts.append(f"{side}: {bc.get('type') if isinstance(bc, dict) else bc}")
    return ", ".join(parts)


def _number(v, scale=None, spec=".4g"):
    """A number of the case in display units, or None when the case does not give one."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return format(v * scale if scale is not None else v, spec)


def _joined(*parts) -> str:
    """The parts that are given (not None or empty), joined by commas."""
    return ", ".join(p for p in parts if p)


def _loading_text(case: dict) -> str:
    """The loading of a case in words, with units; only what the case sets."""
    loading = get_path(case, "loading") or {}
    kind = loading.get("type", "prescribed")
    if kind == "galvanostatic":
        segments = []
        for seg in loading.get("protocol") or []:
            text = str(seg.get("mode", "?"))
            if seg.get("c_rate") is not None:
                text += f" at {_number(seg['c_rate'])}C"
            elif seg.get("current_density") is not None:
                text += f" at {_number(seg['current_density'])} A/m^2"
            if seg.get("cutoff") is not None:
                text += f" to {_number(seg['cutoff'])} V"
            if seg.get("voltage") is not None:
                text += f" at {_number(seg['voltage'])} V"
            if seg.get("duration") is not None:
                text += f" for {_number(seg['duration'])} s"
            segments.append(text)
        current = (f"{_number(loading['current_density'])} A/m^2" if loading.get("current_density") is not None
                   else f"{_number(loading.get('c_rate'))}C" if _number(loading.get("c_rate")) else "")
        cycles = loading.get("cycles")
        return _joined(
            "galvanostatic",
            f"current {current}" if current else "",
            f"cut-offs {_number(loading.get('v_min'))} V (discharge) and {_number(loading.get('v_max'))} V (charge)"
            if _number(loading.get("v_min")) and _number(loading.get("v_max")) else "",
            f"initial lithium fraction x = {_number(loading.get('initial_lithiation'))}"
            if _number(loading.get("initial_lithiation")) else "",
            ("protocol: " + "; ".join(segments)) if segments else "",
            f"{cycles} cycles" if isinstance(cycles, int) and cycles > 1 else "")
    path = loading.get("path")
    return _joined(
        kind,
        f"lithium fraction path {', '.join(_number(v) for v in path)}" if isinstance(path, list) and path else "",
        f"{loading['steps']} steps per segment" if isinstance(loading.get("steps"), int) else "",
        f"{_number(loading.get('duration'))} s per segment" if _number(loading.get("duration")) else "")


def _parameter_rows(case: dict, summary: dict | None) -> list[tuple[str, str]]:
    """(parameter, value) rows of the report, in display units (um, GPa, MPa, %); a row
    or a part of a row whose values the case does not give is left out."""

    def num(path, scale=None):
        return _number(get_path(case, path), scale)

    def named(path):
        name = get_path(case, path + ".name")
        return f" ({name})" if name else ""

    p = "geometry.particles."
    shape = get_path(case, p + "shape")
    particles = _joined(
        str(shape) if shape else "",
        f"{num(p + 'sides')} sides" if shape == "polygon" and num(p + "sides") else "",
        f"radius {num(p + 'radius', 1e6)} um" if num(p + "radius", 1e6) else "",
        f"target fraction {num(p + 'volume_fraction')}" if num(p + "volume_fraction") else "",
        f"seed {num(p + 'seed')}" if num(p + "seed") is not None else "")
    m = "geometry.mesh."
    mesh = _joined(f"size {num(m + 'size', 1e6)} um" if num(m + "size", 1e6) else "",
                   f"at interfaces {num(m + 'interface_size', 1e6)} um" if num(m + "interface_size", 1e6) else "",
                   f"order {num(m + 'order')}" if num(m + "order") else "")
    table = get_path(case, "materials.active.expansion_table")
    active = _joined(f"E = {num('materials.active.E', 1e-9)} GPa" if num("materials.active.E", 1e-9) else "",
                     f"nu = {num('materials.active.nu')}" if num("materials.active.nu") else "",
                     f"expansion table x {table.get('x')}, volumetric strain {table.get('strain')}" if isinstance(table, dict)
                     else f"expansion = {num('materials.active.expansion', 100)} % (volumetric, x = 0 to 1)"
                     if num("materials.active.expansion", 100) else "") + named("materials.active")
    electrolyte = _joined(f"E = {num('materials.electrolyte.E', 1e-9)} GPa" if num("materials.electrolyte.E", 1e-9)
                          else "", f"nu = {num('materials.electrolyte.nu')}" if num("materials.electrolyte.nu")
                          else "") + named("materials.electrolyte")
    fracture = "disabled"
    if get_path(case, "fracture.enabled"):
        f = "fracture."
        phases = get_path(case, f + "phases")
        fracture = _joined(*(f"{label} {get_path(case, f + key)}" if get_path(case, f + key) else ""
                             for label, key in (("model", "model"), ("softening", "softening"), ("split", "split"),
                                                ("driving force", "driving_force"), ("scheme", "scheme.type"))),
                           f"damage in {', '.join(phases)}" if isinstance(phases, list) else "")
    size = get_path(case, "geometry.size")
    rows = [
        ("dimension", num("dimension") or ""),
        ("domain (um)", " x ".join(f"{v * 1e6:.4g}" for v in size) if isinstance(size, list) else ""),
        ("particles", particles),
        ("mesh", mesh),
        ("active material", active),
        ("electrolyte", electrolyte),
        ("electrolyte failure (given)", _failure_text(get_path(case, "materials.electrolyte.fracture"))),
        ("boundary conditions", _boundary_text(get_path(case, "mechanics.boundary"))),
        ("loading", _loading_text(case)),
        ("fracture", fracture),
    ]
    if summary:
        resolved = get_path(summary, "failure_properties.electrolyte") or {}
        rows.append(("electrolyte failure (resolved)", _joined(
            f"Gc = {_number(resolved.get('Gc_J_m2'))} J/m^2" if _number(resolved.get("Gc_J_m2")) else "",
            f"ell = {_number(resolved.get('ell_m'), 1e6)} um" if _number(resolved.get("ell_m"), 1e6) else "",
            f"strength = {_number(resolved.get('strength_Pa'), 1e-6)} MPa"
            if _number(resolved.get("strength_Pa"), 1e-6) else "",
            f"Irwin's length {_number(resolved.get('irwin_length_m'), 1e6)} um (ell at most "
            f"{_number(resolved.get('ell_max_m'), 1e6)} um)" if _number(resolved.get("irwin_length_m"), 1e6) else "")))
        dofs = ", ".join(f"{k} {v}" for k, v in (summary.get("dofs") or {}).items())
        cells = get_path(summary, "mesh.cells_global")
        versions = ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items()
                             if k in ("ssbfrac", "dolfinx", "petsc"))
        rows += [
            ("particles (achieved)", _joined(f"{summary['particles']} particles"
                                             if isinstance(summary.get("particles"), int) else "",
                                             f"active-material fraction {_number(summary.get('am_fraction'))}"
                                             if _number(summary.get("am_fraction")) else "")),
            ("mesh (achieved)", _joined(f"{cells} cells" if isinstance(cells, int) else "",
                                        f"degrees of freedom: {dofs}" if dofs else "")),
            ("MPI ranks", str(summary["ranks"]) if isinstance(summary.get("ranks"), int) else ""),
            ("wall time", f"{_number(summary.get('wall_time_s'), spec='.1f')} s"
             if _number(summary.get("wall_time_s")) else ""),
            ("versions", versions),
        ]
    return [(k, v) for k, v in rows if v]


#: entries of a case that hold a material's name, named set (use) and sources: (path, label)
MATERIAL_ENTRIES = [(f"materials.{p}", p) for p in ("active", "active_b", "electrolyte", "separator",
                                                     "collector_layer", "coating")] + [
    (f"loading.{p}", f"{p} (transport)") for p in ("active", "active_b", "electrolyte", "separator",
                                                  "collector_layer", "coating")]


def _material_rows(case: dict) -> list[tuple[str, str, str, str]]:
    """(phase, name, named set, sources) of every material entry of the case that names
    a material, a set or a source (table cells: whitespace collapsed, pipes escaped)."""

    def cell(v) -> str:
        return " ".join(str(v).split()).replace("|", "\\|") if v else "-"

    rows = []
    for path, label in MATERIAL_ENTRIES:
        entry = get_path(case, path)
        if not isinstance(entry, dict) or not any(entry.get(k) for k in ("name", "use", "source")):
            continue
        rows.append((label, cell(entry.get("name")), cell(entry.get("use")), cell(entry.get("source"))))
    return rows


def _stage_table(stages: dict, crack_unit: str) -> list[str]:
    """The stages against each coordinate: a row is left out when it applies to none of
    them (e.g. no stage III); a cell whose stage was not detected says so."""
    usable = {k: v for k, v in stages.items() if v.get("available")}
    if not usable:
        reason = next(iter(stages.values()), {}).get("reason", "no crack measures in the history")
        return [f"No crack measures: {reason}."]
    names = list(usable)
    head = "| quantity | " + " | ".join(f"against {usable[n]['coordinate']}" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]

    def row(label, fn, applies=lambda r: True, otherwise="not detected"):
        if not any(applies(usable[n]) for n in names):
            return
        lines.append(f"| {label} | " + " | ".join(fn(usable[n], n) if applies(usable[n]) else otherwise
                                                  for n in names) + " |")

    def crack(v):
        return f"{_fmt(v)} {crack_unit}"

    row("cracked", lambda r, n: _fmt(r["cracked"]))
    row("stages detected (I / II / III)", lambda r, n: " / ".join(
        _fmt(r[f"stage_{s}_detected"]) for s in ("I", "II", "III")))
    row("onset (first crack)", lambda r, n: f"{n} = {_fmt(r['onset_value'])} (step {_fmt(r['onset_step'])})",
        lambda r: r.get("onset_load") is not None, "no crack")
    row("onset, stage-II line extrapolated", lambda r, n: f"{n} = {_fmt(r['onset_extrapolated_value'])}",
        lambda r: r.get("onset_load_extrapolated") is not None)
    row("stage-II rate", lambda r, n: f"{_fmt(r['stage_II_rate'])} {plots.rate_unit(crack_unit, n)}",
        lambda r: r.get("stage_II_rate") is not None)
    row("stage III from", lambda r, n: f"{n} = {_fmt(r['stage_III_start_value'])}",
        lambda r: bool(r.get("stage_III_detected")), "still growing at the end")
    row("saturation level", lambda r, n: crack(r["saturation_level"]),
        lambda r: r.get("saturation_level") is not None, "still growing at the end")
    row("final crack (regularised)", lambda r, n: crack(r["final_crack"]), lambda r: r.get("final_crack") is not None)
    row("summary", lambda r, n: plots.stage_summary(r, n, crack_unit))
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
    lines += _stage_table(stages, u["crack"])
    lines += ["", (f"Stages of the regularised crack length ({u['crack']}) after Bucci et al., J. Mater. Chem. A 5 "
                   "(2017) 19422: I no crack until the onset, II growth at a near-constant rate, III deceleration and "
                   "saturation. The onset is where the crack first exceeds a small fraction of its total growth (and "
                   "an absolute floor); the stage-II rate is a Theil-Sen fit over the central part of the rise; stage "
                   "III starts where the local growth rate falls below half the stage-II rate for good. Exact "
                   "definitions: docs/postprocessing.md."), ""]
    hunits = {**_history_units(), **((summary or {}).get("history_units") or {})}  # summary's win
    finals = [(plots.CRACK_LABELS["crack_length"], "crack_length", u["crack"]),
              (plots.CRACK_LABELS["crack_length_sharp"] + " (2D)", "crack_length_sharp", u["crack"]),
              ("damaged fraction: volume of d >= 0.9 / volume of the damageable phases", "damaged_fraction",
               "fraction"),
              ("band-width ratio: area of d >= 0.9 / sharp crack length / the 1D profile's width (1: localised)",
               "band_width_ratio", "ratio"),
              ("crack segments: connected regions of d >= 0.9", "crack_segments", "count"),
              ("largest damage", "d_max", "0 (intact) to 1 (broken)"),
              ("largest electrolyte tension, at a sharp particle corner (a stress singularity: "
               "mesh-dependent, not comparable with the strength)" if plots.sharp_corners(case) else
               "largest electrolyte tension, the largest cell value (mesh-dependent, not comparable with the "
               "strength)", "sigma1_max_SE", "MPa"),
              ("most compressive hydrostatic stress in the particles", "sigma_h_min_AM", "MPa"),
              ("elastic energy", "elastic_energy", u["energy"]),
              ("fracture energy", "fracture_energy", u["energy"]),
              ("capacity passed in the last protocol segment", "capacity",
               _short_unit(hunits.get("capacity"), "mAh/cm^2")),
              ("voltage", "voltage", _short_unit(hunits.get("voltage"), "V")),
              ("effective ionic conductivity of the electrolyte / its intact value", "kappa_eff_rel", "fraction")]
    rows = [(label, v, unit) for label, col, unit in finals if (v := _last(history, col)) is not None]
    if rows:
        lines += ["| final value (last accepted row) | value | unit |", "|---|---|---|"]
        lines += [f"| {label} | {_fmt(v)} | {unit} |" for label, v, unit in rows]
    loc = localisation(history)
    if loc["available"]:
        lines += ["", (f"Localisation (docs/model.md): the band-width ratio peaks at "
                       f"{_fmt(loc['band_width_ratio_max'])} (last {_fmt(loc['band_width_ratio_final'])}; 1 is a crack "
                       f"as thin as the 1D profile); sharp over regularised crack length at the end "
                       f"{_fmt(loc['length_ratio_final'])} (lowest {_fmt(loc['length_ratio_min'])}).")]
        lines += [""]

    lines += ["## Key parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _parameter_rows(case, summary)]
    lines += [""]
    materials = _material_rows(case)
    if materials:
        lines += ["## Materials", "", ("Where the material values of the run come from: the named material set "
                                       "(`ssbfrac materials NAME`) and the sources of the values taken from it, "
                                       "followed by the case's own sources of the values it gives itself."), "",
                  "| phase | material | named set | sources |", "|---|---|---|---|"]
        lines += [f"| {phase} | {name} | {use} | {source} |" for phase, name, use, source in materials]
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
