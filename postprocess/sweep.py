"""Post-processing of a sweep directory: one summary row per run, and trend plots.

A sweep directory holds run directories (each with case.yaml and, once complete,
summary.json), at any depth below it. ``ssbfrac sweep`` also writes ``sweep.yaml`` (the
resolved sweep), ``runs.json`` (every run, also those that never got a directory) and
``logs/<run>.state`` (``exit <status>`` once a run ended); they are used when present.

The varied parameters are the keys of the ``parameters`` mapping of SWEEP_DIR/sweep.yaml
(dotted case paths such as ``materials.electrolyte.E``). A sweep.yaml without that
mapping is searched for dotted case paths (mapping keys or list items like
``section.field``) that exist in the runs' case.yaml. Without sweep.yaml, the varied
parameters are the case fields whose values differ between the runs' case.yaml files
(``name`` and ``description`` excepted).

A run is *complete* with summary.json, *failed* with error.txt or when its
``logs/<run>.state`` records a non-zero exit status that is not an interruption, and
*incomplete* otherwise (running, interrupted or not started).

:func:`post_sweep` writes

* ``SWEEP_DIR/summary.csv``: one row per run (:data:`RESULT_COLUMNS` after the run name
  and the varied parameters);
* ``SWEEP_DIR/plots/trends.png|pdf``: onset, stage-II rate and final crack lengths
  against one parameter (default ``materials.electrolyte.E`` on a log axis when it
  spans a factor 5 or more), one line per combination of the other varied parameters,
  mean and standard deviation over the random seeds (``geometry.particles.seed``);
  complete runs only;
* ``SWEEP_DIR/plots/crack_curves.png|pdf``: every run's crack length against the
  particle volumetric strain;
* ``SWEEP_DIR/plots/map.png|pdf``, when exactly two numeric parameters besides the seed
  are varied (e.g. expansion x Gc): a fracture map, each cell coloured by the mean final
  sharp crack length (half the length of the d = 0.5 iso-line) over the seeds and labelled
  with how many of its runs cracked (a final sharp crack length of at least
  :data:`MAP_CRACK_THRESHOLD` um).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from postprocess import plots
from postprocess.history import (PostprocessError, error_message, flatten, get_path, read_accepted_history,
                                 read_case, read_summary, run_status)
from postprocess.stages import detect_stages_from_history

SEED_PARAMETER = "geometry.particles.seed"
DEFAULT_X = "materials.electrolyte.E"
#: result columns of summary.csv (units in docs/postprocessing.md)
RESULT_COLUMNS = [
    "status",                     # complete, failed or incomplete
    "onset_vol_strain",           # particle volumetric strain at the onset (first crack)
    "onset_soc",                  # state of charge at the onset
    "stage_II_rate",              # crack length per unit |vol_strain| in stage II
    "saturation_crack_length",    # plateau of stage III (empty if no saturation)
    "final_crack_length",         # regularised crack length, last accepted row
    "final_crack_length_sharp",   # sharp crack length (half the d = 0.5 iso-line), last accepted row
    "damaged_fraction",           # fraction of the damageable phase with d >= 0.9
    "capacity",                   # last capacity value, when the history has one
    "discharge_capacity",         # cycling: charge of the first discharge / theoretical capacity
    "final_kappa_eff_rel",        # cycling: effective ionic conductivity / kappa, last accepted row
    "wall_time_s",                # summary.json wall time; solve time so far otherwise
    "accepted_rows",              # accepted rows of history.csv (initial state included)
    "note",                       # error message of a failed run, or the stage summary
]
#: metrics drawn by the trend plot: (column, axis label)
TREND_METRICS = [
    ("onset_vol_strain", "onset: particle volumetric strain (-)"),
    ("stage_II_rate", "stage-II rate (um per unit volumetric strain)"),
    ("final_crack_length", "final crack length, regularised (um)"),
    ("final_crack_length_sharp", "final sharp crack length: half the d = 0.5 iso-line (um)"),
]
#: the panels of a cycling sweep (galvanostatic runs) replace the last one
CYCLING_METRICS = [
    ("onset_vol_strain", "onset: particle volumetric strain (-)"),
    ("stage_II_rate", "stage-II rate (um per unit volumetric strain)"),
    ("final_crack_length", "final crack length, regularised (um)"),
    ("discharge_capacity", "first discharge capacity / theoretical (-)"),
]


#: a run of a fracture map "cracked" when its final sharp crack length is at least this long, um
MAP_CRACK_THRESHOLD = 1.0


# --------------------------------------------------------------------------- finding runs
#: exit statuses of runs that were stopped rather than failed (Ctrl-C, SIGTERM, SIGKILL)
INTERRUPTED = {130, 143, 137, -2, -15, -9}
#: exit status of a run that stopped with a checkpoint (not a failure)
CHECKPOINTED = 85


def find_runs(sweep_dir: Path) -> list[Path]:
    """Directories below ``sweep_dir`` that hold a case.yaml (not looking inside them)."""
    found = []

    def walk(d: Path):
        for child in sorted(p for p in d.iterdir() if p.is_dir()):
            if (child / "case.yaml").is_file():
                found.append(child)
            elif child.name not in ("plots", "paraview", "logs", "slurm"):
                walk(child)

    walk(Path(sweep_dir))
    return found


def _dotted_names(node) -> list[str]:
    """Dotted paths named in a sweep spec: mapping keys and list items like 'a.b' or 'a.b=v'."""
    names = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and "." in key and " " not in key:
                names.append(key)
            names += _dotted_names(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and "." in item.split("=")[0] and " " not in item.split("=")[0]:
                names.append(item.split("=")[0].strip())
            else:
                names += _dotted_names(item)
    return names


_MISSING = object()


def varied_parameters(sweep_dir: Path, cases: list[dict]) -> tuple[list[str], str]:
    """(dotted parameter paths, where they came from: 'sweep.yaml' or 'case.yaml files')."""
    from solver.config import yaml_load

    spec_path = Path(sweep_dir) / "sweep.yaml"
    if spec_path.is_file():
        try:
            spec = yaml_load(spec_path.read_text())
        except Exception as exc:
            raise PostprocessError(f"{spec_path}: malformed YAML: {exc}") from None
        if isinstance(spec, dict) and isinstance(spec.get("parameters"), dict) and spec["parameters"]:
            grouped = ["variant"] if spec.get("variants") else []
            return grouped + [str(k) for k in spec["parameters"]], "sweep.yaml"
        names = [n for n in dict.fromkeys(_dotted_names(spec))
                 if any(get_path(c, n, _MISSING) is not _MISSING for c in cases)]
        if names:
            return names, "sweep.yaml"
    flat = [flatten(c) for c in cases]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    names = []
    for key in keys:
        if key in ("name", "description"):
            continue
        values = {json.dumps(f.get(key), sort_keys=True) for f in flat}
        if len(values) > 1:
            names.append(key)
    return names, "case.yaml files"


# --------------------------------------------------------------------------- one row per run
def _last(history: dict, name: str):
    if name not in history:
        return None
    col = history[name][np.isfinite(history[name])]
    return float(col[-1]) if col.size else None


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.10g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


def exit_status(sweep_dir: Path, name: str) -> int | None:
    """The exit status recorded in logs/<name>.state by ``ssbfrac sweep`` (None if none)."""
    path = Path(sweep_dir) / "logs" / f"{name}.state"
    try:
        words = path.read_text().split()
    except OSError:
        return None
    if len(words) >= 2 and words[0] == "exit":
        try:
            return int(words[1])
        except ValueError:
            return None
    return None


def sweep_run_status(sweep_dir: Path, name: str, run_dir: Path) -> tuple[str, str]:
    """(status, note): complete, failed or incomplete (see the module docstring)."""
    if run_dir.is_dir():
        status = run_status(run_dir)
        if status == "checkpointed":
            return "incomplete", "stopped with a checkpoint (ssbfrac run ... --restart continues it)"
        if status != "incomplete":
            return status, error_message(run_dir) if status == "failed" else ""
    code = exit_status(sweep_dir, name)
    if code is not None and code not in (0, CHECKPOINTED) and code not in INTERRUPTED:
        return "failed", f"exit status {code} (see logs/{name}.log)"
    if not run_dir.is_dir():
        return "incomplete", "no run directory yet"
    return "incomplete", ""


def run_row(run_dir: Path, name: str, case: dict, parameters: list[str], stage_options: dict,
            sweep_dir: Path | None = None, values: dict | None = None) -> dict:
    """The summary.csv row of one run (see :data:`RESULT_COLUMNS`). ``values`` gives the
    parameter values of a run without a case.yaml (from runs.json)."""
    status, why = sweep_run_status(sweep_dir if sweep_dir is not None else run_dir.parent, name, run_dir)
    row = {"run": name, **{p: (values or {}).get(p, get_path(case, p)) for p in parameters}, "status": status}
    row.update({c: None for c in RESULT_COLUMNS if c != "status"})
    summary = read_summary(run_dir) if status == "complete" else None
    history_csv = run_dir / "history.csv"
    notes = [why]
    if history_csv.is_file():
        history = read_accepted_history(history_csv)
        row["accepted_rows"] = int(history["accepted"].size) if "accepted" in history else 0
        row["final_crack_length"] = _last(history, "crack_length")
        row["final_crack_length_sharp"] = _last(history, "crack_length_sharp")
        row["damaged_fraction"] = _last(history, "damaged_fraction")
        row["capacity"] = _last(history, "capacity")
        row["final_kappa_eff_rel"] = _last(history, "kappa_eff_rel")
        row["wall_time_s"] = _last(history, "wall")
        if row["accepted_rows"]:
            by_strain = detect_stages_from_history(history_csv, "vol_strain", **stage_options) \
                if "vol_strain" in history else {"available": False, "reason": "no vol_strain column"}
            by_soc = detect_stages_from_history(history_csv, "soc", **stage_options) \
                if "soc" in history else {"available": False}
            if by_strain.get("available"):
                row["onset_vol_strain"] = by_strain["onset_value"]
                row["stage_II_rate"] = by_strain["stage_II_rate"]
                row["saturation_crack_length"] = by_strain["saturation_level"]
                notes.append(by_strain["note"])
            else:
                notes.append(by_strain["reason"].split(": ", 1)[-1])
            if by_soc.get("available"):
                row["onset_soc"] = by_soc["onset_value"]
    elif run_dir.is_dir():
        notes.append("no history.csv")
    if summary is not None and summary.get("wall_time_s") is not None:
        row["wall_time_s"] = float(summary["wall_time_s"])
    discharges = [s for s in get_path(summary or {}, "cell.segments") or [] if s.get("mode") == "discharge"]
    if discharges:
        row["discharge_capacity"] = discharges[0]["capacity_fraction"]
    row["note"] = "; ".join(n for n in notes if n)
    return row


def write_summary_csv(rows: list[dict], parameters: list[str], path: Path) -> Path:
    columns = ["run", *parameters, *RESULT_COLUMNS]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_value(row.get(c)) for c in columns})
    return path


def read_run_list(sweep_dir: Path) -> dict[str, dict]:
    """runs.json of ``ssbfrac sweep``: run name -> parameter values, in launch order ({} if absent)."""
    path = Path(sweep_dir) / "runs.json"
    if not path.is_file():
        return {}
    try:
        runs = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PostprocessError(f"{path}: malformed JSON: {exc}") from None
    if not isinstance(runs, dict):
        raise PostprocessError(f"{path}: expected an object of runs")
    ordered = sorted(runs.items(), key=lambda kv: kv[1].get("index", 0) if isinstance(kv[1], dict) else 0)
    return {name: dict(info.get("parameters") or {}) if isinstance(info, dict) else {} for name, info in ordered}


# --------------------------------------------------------------------------- trend plots
def _display(parameter: str):
    """(scale, label) used to show a parameter on an axis or in a legend."""
    if parameter.endswith(".E"):
        return 1e-9, f"{parameter} (GPa)"
    if parameter.endswith(("radius", "ell", "min_gap", "size")):
        return 1e6, f"{parameter} (um)"
    if parameter.endswith(".expansion"):
        return 100.0, f"{parameter} (%)"
    if parameter.endswith(".Gc"):
        return 1.0, f"{parameter} (J/m^2)"
    if parameter.endswith((".strength", ".value")):
        return 1e-6, f"{parameter} (MPa)"
    return 1.0, parameter


def _legend_item(parameter: str, value) -> str:
    """``name = value`` for a legend; a mapping value (a swept section) as its own items."""
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} = {v}"
                         for k, v in value.items())
    scale, label = _display(parameter)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        unit = " " + label.rsplit("(", 1)[-1].rstrip(")") if label != parameter else ""
        return f"{parameter.split('.')[-1]} = {value * scale:g}{unit}"
    return f"{parameter.split('.')[-1]} = {value}"


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def trend_figure(rows: list[dict], parameters: list[str], x_param: str, seed_param: str = SEED_PARAMETER):
    """Onset, stage-II rate and final crack lengths against ``x_param`` (complete runs)."""
    from matplotlib.ticker import NullFormatter

    done = [r for r in rows if r["status"] == "complete" and r.get(x_param) is not None]
    if not done:
        return None
    xs = sorted({r[x_param] for r in done}, key=lambda v: (str(type(v)), v))
    numeric = _numeric(xs)
    scale, xlabel = _display(x_param) if numeric else (1.0, x_param)
    position = {v: (v * scale if numeric else i) for i, v in enumerate(xs)}
    log = numeric and min(xs) > 0 and max(xs) / min(xs) >= 5
    others = [p for p in parameters if p not in (x_param, seed_param)]
    groups = sorted({tuple(json.dumps(r.get(p)) for p in others) for r in done})
    fig = plots.new_figure(10, 7.2)
    axes = fig.subplots(2, 2).ravel()
    cycling = any(r.get("discharge_capacity") is not None for r in done)
    for ax, (metric, label) in zip(axes, CYCLING_METRICS if cycling else TREND_METRICS):
        for gi, group in enumerate(groups):
            members = [r for r in done if tuple(json.dumps(r.get(p)) for p in others) == group]
            colour = f"C{gi % 10}"
            name = ", ".join(_legend_item(p, json.loads(v)) for p, v in zip(others, group)) or "all runs"
            px, mean, spread = [], [], []
            for xv in xs:
                vals = np.array([r[metric] for r in members if r[x_param] == xv and r.get(metric) is not None],
                                dtype=float)
                if vals.size == 0:
                    continue
                ax.plot([position[xv]] * vals.size, vals, ".", color=colour, alpha=0.35, ms=5)
                px.append(position[xv])
                mean.append(vals.mean())
                spread.append(vals.std(ddof=1) if vals.size > 1 else 0.0)
            if px:
                ax.errorbar(px, mean, yerr=spread, color=colour, marker="o", ms=4, capsize=3, lw=1.2, label=name)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if numeric:
            ax.set_xticks(list(position.values()), [f"{v:g}" for v in position.values()])
        else:
            ax.set_xticks(list(position.values()), [str(v) for v in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        if handles:
            break
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), fontsize=8)
    seeds = sorted({r.get(seed_param) for r in done if r.get(seed_param) is not None}, key=str)
    fig.suptitle(f"{len(done)} complete runs; mean and standard deviation over "
                 + (f"{len(seeds)} seeds ({seed_param})" if seed_param in parameters else "repeated runs"),
                 fontsize=10)
    return fig


def curves_figure(run_dirs: list[Path], rows: list[dict], x_param: str | None):
    """Every run's crack length against the particle volumetric strain."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    curves = []
    for run_dir, row in zip(run_dirs, rows):
        path = run_dir / "history.csv"
        if not path.is_file():
            continue
        history = read_accepted_history(path)
        if "crack_length" in history and "vol_strain" in history and history["vol_strain"].size:
            curves.append((row, history))
    if not curves:
        return None
    fig = plots.new_figure(7, 4.8)
    ax = fig.add_subplot()
    values = [r.get(x_param) for r, _ in curves] if x_param else []
    use_colour = bool(values) and _numeric(values) and len(set(values)) > 1
    norm = None
    if use_colour:
        scale, label = _display(x_param)
        lo, hi = min(values) * scale, max(values) * scale
        norm = LogNorm(lo, hi) if lo > 0 and hi / lo >= 5 else Normalize(lo, hi)
        cmap = colormaps["viridis"]
    for i, (row, history) in enumerate(curves):
        colour = cmap(norm(row[x_param] * scale)) if use_colour else f"C{i % 10}"
        style = "-" if row["status"] == "complete" else ":"
        ax.plot(history["vol_strain"], history["crack_length"], style, color=colour, lw=1.2,
                label=row["run"] if len(curves) <= 12 else None)
    if use_colour:
        from matplotlib.cm import ScalarMappable

        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label)
        ticks = sorted({v * scale for v in values})
        bar.set_ticks(ticks, labels=[f"{v:g}" for v in ticks])
        bar.ax.minorticks_off()
    if len(curves) <= 12:
        ax.legend(fontsize=7)
    ax.set_xlabel(plots.AXIS["vol_strain"])
    ax.set_ylabel("crack length, regularised (um)")
    ax.set_title("crack growth of every run (dotted: not complete)", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def map_figure(rows: list[dict], x_param: str, y_param: str, metric: str = "final_crack_length_sharp"):
    """Fracture map over two parameters: mean ``metric`` over the repeated runs (seeds) of
    each cell, and the number of runs whose crack reached :data:`MAP_CRACK_THRESHOLD`."""
    done = [r for r in rows if r["status"] == "complete" and r.get(metric) is not None]
    if not done:
        return None
    xs = sorted({r[x_param] for r in done})
    ys = sorted({r[y_param] for r in done})
    mean = np.full((len(ys), len(xs)), np.nan)
    label = [["" for _ in xs] for _ in ys]
    for j, yv in enumerate(ys):
        for i, xv in enumerate(xs):
            vals = [float(r[metric]) for r in done if r[x_param] == xv and r[y_param] == yv]
            if vals:
                mean[j, i] = np.mean(vals)
                cracked = sum(v >= MAP_CRACK_THRESHOLD for v in vals)
                label[j][i] = f"{mean[j, i]:.1f}\n{cracked}/{len(vals)}"
    xscale, xlabel = _display(x_param)
    yscale, ylabel = _display(y_param)
    fig = plots.new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    image = ax.imshow(mean, origin="lower", cmap="magma_r", aspect="auto", vmin=0.0)
    for j in range(len(ys)):
        for i in range(len(xs)):
            if label[j][i]:
                dark = mean[j, i] > 0.6 * np.nanmax(mean) if np.nanmax(mean) > 0 else False
                ax.text(i, j, label[j][i], ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [f"{v * xscale:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v * yscale:g}" for v in ys])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=ax, label="mean final sharp crack length (um)\n(half the length of the d = 0.5 iso-line)")
    ax.set_title(f"fracture map: mean sharp crack length; k/n: runs with at least {MAP_CRACK_THRESHOLD:g} um",
                 fontsize=8)
    return fig


# --------------------------------------------------------------------------- the whole sweep
def post_sweep(sweep_dir: str | Path, x_param: str | None = None, seed_param: str = SEED_PARAMETER,
               formats=("png", "pdf"), stage_options: dict | None = None) -> dict:
    """summary.csv and trend plots of a sweep directory (see the module docstring).
    Returns ``{"summary": path, "rows": [...], "parameters": [...], "source": ...,
    "figures": {name: [paths]}, "skipped": {name: reason}}``."""
    sweep_dir = Path(sweep_dir)
    found = find_runs(sweep_dir)
    listed = read_run_list(sweep_dir)
    if not found and not listed:
        raise PostprocessError(f"{sweep_dir}: no run directories (directories with a case.yaml) inside")
    names = list(listed) + [n for n in (str(d.relative_to(sweep_dir)) for d in found) if n not in listed]
    run_dirs = [sweep_dir / n for n in names]
    cases = [read_case(d) if (d / "case.yaml").is_file() else {} for d in run_dirs]
    parameters, source = varied_parameters(sweep_dir, [c for c in cases if c])
    rows = [run_row(d, n, c, parameters, stage_options or {}, sweep_dir, listed.get(n))
            for d, n, c in zip(run_dirs, names, cases)]
    summary = write_summary_csv(rows, parameters, sweep_dir / "summary.csv")

    if x_param is None:
        numeric = [p for p in parameters if p != seed_param and _numeric([r[p] for r in rows if r[p] is not None])]
        x_param = DEFAULT_X if DEFAULT_X in parameters else (numeric[0] if numeric else None)
    elif x_param not in parameters:
        raise PostprocessError(f"--x {x_param}: not a varied parameter of {sweep_dir} "
                               f"(varied: {', '.join(parameters) or 'none'})")
    figures, skipped = {}, {}
    out = sweep_dir / "plots"
    fig = trend_figure(rows, parameters, x_param, seed_param) if x_param else None
    if fig is None:
        skipped["trends"] = ("no varied parameter to plot against" if not x_param
                             else "no complete run")
    else:
        figures["trends"] = plots.save(fig, out, "trends", formats)
    fig = curves_figure(run_dirs, rows, x_param)
    if fig is None:
        skipped["crack_curves"] = "no run has crack measures"
    else:
        figures["crack_curves"] = plots.save(fig, out, "crack_curves", formats)
    axes = [p for p in parameters if p != seed_param]
    if len(axes) == 2 and all(_numeric([r[p] for r in rows if r[p] is not None]) for p in axes):
        fig = map_figure(rows, *axes)
        if fig is None:
            skipped["map"] = "no complete run"
        else:
            figures["map"] = plots.save(fig, out, "map", formats)
    return {"summary": summary, "rows": rows, "parameters": parameters, "source": source, "x": x_param,
            "run_dirs": run_dirs, "figures": figures, "skipped": skipped}
