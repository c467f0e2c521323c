"""Figures of a run's history.csv (matplotlib, Agg; no display needed).

Every function takes the accepted rows of the history (``dict`` of arrays, see
:func:`postprocess.history.read_accepted_history`) and returns a
``matplotlib.figure.Figure``, or None when the history lacks the columns it needs.
:func:`save` writes a figure as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from postprocess.stages import loading_coordinate, loading_envelope

#: axis labels of history columns; crack and energy units depend on the dimension
AXIS = {
    "soc": "state of charge (-)",
    "x": "lithium fraction of the particles x (-)",
    "vol_strain": "particle volumetric strain (-)",
    "mean_strain": "mean volumetric strain of the composite (-)",
    "load": "load coordinate (-)",
    "time": "time (s)",
}
STAGE_COLOURS = {"I": "#e6e6e6", "II": "#fde0c5", "III": "#d4ecd4"}
#: what the crack columns of history.csv are (labels of the plots and the report)
CRACK_LABELS = {
    "crack_length": "regularised crack length (phase-field crack surface)",
    "crack_length_sharp": "sharp crack length: half the length of the d = 0.5 iso-line",
}
#: why the largest electrolyte tension of history.csv is not compared with the strength
SINGULAR_NOTE = ("The largest principal stress in the electrolyte sits at a sharp particle corner, a stress "
                 "singularity: its value depends on the mesh. The strength is a material value.")
#: the same for particles without sharp corners (circles, spheres, rounded polygons)
PEAK_NOTE = ("The largest principal stress in the electrolyte is the largest cell value, at a stress "
             "concentration next to a particle: its value depends on the mesh. The strength is a material value.")


def sharp_corners(case: dict | None) -> bool:
    """True when the case's particles have sharp corners (polygons or polyhedra without
    rounded corners), where the elastic stress is singular."""
    particles = ((case or {}).get("geometry") or {}).get("particles") or {}
    return particles.get("shape") in ("polygon", "polyhedron") and not (particles.get("corner_radius") or 0) > 0


def units(dimension: int) -> dict:
    """Units of the crack and energy columns in 2D (per um of thickness) or 3D."""
    if dimension == 3:
        return {"crack": "um^2", "energy": "nJ"}
    return {"crack": "um", "energy": "nJ/um"}


def save(fig, out_dir: Path, name: str, formats=("png", "pdf")) -> list[Path]:
    """Write ``out_dir/name.<format>`` for each format; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, dpi=150 if fmt == "png" else None)
        paths.append(path)
    return paths


def new_figure(width: float = 6.4, height: float = 4.4, dpi: int = 110):
    """A matplotlib Figure drawn by the Agg backend (no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _has(history: dict, *names: str) -> bool:
    return all(n in history and np.isfinite(history[n]).any() for n in names)


def _coordinate_to_value(history: dict, abscissa: str, crack_column: str):
    """Map a loading coordinate of the stage detection back to the abscissa column."""
    values = history[abscissa]
    coord, _ = loading_coordinate(values, abscissa)
    env = loading_envelope(np.where(np.isfinite(history[crack_column]), coord, np.nan))

    def to_value(c):
        return np.interp(c, coord[env], values[env])

    return to_value


def rate_unit(crack_unit: str, abscissa: str) -> str:
    """Unit of a stage-II rate: crack unit per unit of the loading coordinate."""
    per = {"vol_strain": "unit volumetric strain", "soc": "unit of SOC", "x": "unit of lithium fraction x",
           "load": "unit of the load coordinate", "time": "s"}
    return f"{crack_unit} per {per.get(abscissa, 'unit of ' + abscissa)}"


def stage_summary(stages: dict, abscissa: str, crack_unit: str) -> str:
    """One line on the stages of ``stages`` (a result of the stage detection against
    ``abscissa``), every number with its unit or its coordinate."""
    if not stages.get("available", True):
        return stages.get("reason", "")
    n = abscissa
    if stages.get("crack_growth") is None:
        return stages.get("note", "")
    if not stages.get("cracked"):
        return (f"no crack: the crack grew by {stages['crack_growth']:.4g} {crack_unit}, not more than "
                f"{stages['parameters']['min_crack']:g} {crack_unit}")
    text = f"onset at {n} = {stages['onset_value']:.4g}" if stages.get("onset_value") is not None else "cracked"
    if not stages.get("stage_II_detected"):
        return text + "; the crack grew in too few steps to measure a stage-II rate"
    text += f", stage-II rate {stages['stage_II_rate']:.4g} {rate_unit(crack_unit, n)}"
    if stages.get("stage_III_detected"):
        return text + (f", saturation at {stages['saturation_level']:.4g} {crack_unit} from "
                       f"{n} = {stages['stage_III_start_value']:.4g}")
    return text + "; still growing at the end (no saturation)"


def crack_figure(history: dict, stages: dict, abscissa: str, dimension: int = 2):
    """Crack length (regularised, and sharp if present) against ``abscissa`` with the
    stages of ``stages`` (from :func:`postprocess.stages.detect_stages_from_history`
    with the same abscissa) shaded, the onset marked and the stage-II line drawn."""
    if not _has(history, abscissa, "crack_length"):
        return None
    u = units(dimension)
    x = history[abscissa]
    fig = new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    if stages.get("available") and stages.get("cracked"):
        to_value = _coordinate_to_value(history, abscissa, "crack_length")
        first, last = x[np.isfinite(x)][0], to_value(np.nanmax(loading_coordinate(x, abscissa)[0]))
        onset = stages["onset_value"]
        end_ii = stages["stage_III_start_value"] if stages["stage_III_detected"] else last
        ax.axvspan(first, onset, color=STAGE_COLOURS["I"], lw=0, label="stage I (no crack)")
        ax.axvspan(onset, end_ii, color=STAGE_COLOURS["II"], lw=0, label="stage II (growth)")
        if stages["stage_III_detected"]:
            ax.axvspan(end_ii, last, color=STAGE_COLOURS["III"], lw=0, label="stage III (saturation)")
        ax.axvline(onset, color="#b35900", lw=1.0, ls="--")
        if stages["stage_II_detected"]:
            lo, hi = stages["stage_II_fit_range"]
            pad = 0.15 * (hi - lo)
            c = np.linspace(lo - pad, hi + pad, 20)
            ax.plot(to_value(c), stages["stage_II_intercept"] + stages["stage_II_rate"] * c, color="#b35900",
                    lw=1.0, ls=":",
                    label=f"stage-II fit: {stages['stage_II_rate']:.3g} {rate_unit(u['crack'], abscissa)}")
        if stages["stage_III_detected"]:
            ax.axhline(stages["saturation_level"], color="#2e7d32", lw=1.0, ls=":",
                       label=f"saturation {stages['saturation_level']:.3g} {u['crack']}")
    ax.plot(x, history["crack_length"], "-o", ms=2.5, color="k", lw=1.4, label=CRACK_LABELS["crack_length"])
    if _has(history, "crack_length_sharp"):
        ax.plot(x, history["crack_length_sharp"], "--", color="#1565c0", lw=1.2,
                label=CRACK_LABELS["crack_length_sharp"])
    xlabel = AXIS.get(abscissa, abscissa)
    if _decreasing(x):
        ax.invert_xaxis()  # the loading runs from left to right
        xlabel += ", axis reversed"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"crack {'area' if dimension == 3 else 'length'} ({u['crack']})")
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(history["crack_length"]))))
    note = stage_summary(stages, abscissa, u["crack"])
    ax.set_title(f"crack growth against {abscissa}" + (f"\n{note}" if note else ""), fontsize=8)
    fig.legend(fontsize=7, loc="outside lower center", ncol=2)
    return fig


def _decreasing(x: np.ndarray) -> bool:
    """True when the column moves to lower values from its first row (e.g. the state of
    charge while the particles are lithiated)."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return False
    far = x[np.argmax(np.abs(x - x[0]))]
    return bool(far < x[0])


def energy_figure(history: dict, abscissa: str, dimension: int = 2):
    """Elastic and fracture energies against ``abscissa``."""
    names = [n for n in ("elastic_energy", "fracture_energy") if _has(history, n)]
    if not names or not _has(history, abscissa):
        return None
    u = units(dimension)
    fig = new_figure()
    ax = fig.add_subplot()
    for name, colour in zip(names, ("#1565c0", "#c62828")):
        ax.plot(history[abscissa], history[name], "-o", ms=2.5, color=colour, label=name.replace("_", " "))
    if len(names) == 2:
        ax.plot(history[abscissa], history["elastic_energy"] + history["fracture_energy"], "--", color="0.4",
                label="total")
    ax.set_xlabel(AXIS.get(abscissa, abscissa))
    ax.set_ylabel(f"energy ({u['energy']})")
    ax.set_title("stored elastic energy and dissipated fracture energy", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def stress_figure(history: dict, abscissa: str, strength_mpa: float | None = None, sharp: bool = True):
    """Largest principal stress in the electrolyte (MPa) against ``abscissa``, with the
    electrolyte's tensile strength when it is known.

    The history holds only the largest cell value (``sigma1_max_SE``), which sits (with
    ``sharp`` particle corners) at a corner where the elastic stress is singular: it grows
    with mesh refinement and is not comparable with the strength. The figure says so; the
    history has no regularised (averaged) stress measure to draw instead."""
    if not _has(history, abscissa, "sigma1_max_SE"):
        return None
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(history[abscissa], history["sigma1_max_SE"], "-o", ms=2.5, color="#c62828",
            label="largest principal stress in the electrolyte "
                  + ("(at a sharp particle corner, mesh-dependent)" if sharp else "(largest cell value, mesh-dependent)"))
    if strength_mpa:
        ax.axhline(strength_mpa, color="k", ls="--", lw=1.0,
                   label=f"tensile strength of the electrolyte {strength_mpa:.4g} MPa (material value)")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel(AXIS.get(abscissa, abscissa))
    ax.set_ylabel("largest principal stress in the electrolyte (MPa)")
    ax.set_title(_wrap(SINGULAR_NOTE if sharp else PEAK_NOTE, 95), fontsize=8)
    ax.legend(fontsize=7, loc="best")
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def solver_figure(history_all: dict):
    """Solver effort per step: alternate-minimisation and Newton iterations, solves,
    Krylov iterations, wall time.
    Takes every row (rejected steps included, marked with red crosses)."""
    if not _has(history_all, "step"):
        return None
    step = history_all["step"]
    accepted = history_all.get("accepted", np.ones_like(step)) == 1
    panels = [p for p in (["iterations", "newton_iterations", "elastic_solves", "damage_solves"],
                          ["linear_iterations"], ["wall"])
              if any(_has(history_all, n) for n in p)]
    if not panels:
        return None
    fig = new_figure(6.4, 2.1 * len(panels) + 0.6)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, names in zip(axes, panels):
        for name in names:
            if not _has(history_all, name):
                continue
            y = history_all[name]
            if name == "wall":
                y = np.diff(y, prepend=y[0])
                name = "wall time per step (s)"
            ax.plot(step[accepted], y[accepted], "o-", ms=3, lw=1.0, label=name.replace("_", " "))
            if (~accepted).any():
                ax.plot(step[~accepted], y[~accepted], "x", color="#c62828", ms=6, label=f"{name} (rejected step)")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    axes[0].set_title(f"solver effort: {int(accepted.sum())} accepted, {int((~accepted).sum())} rejected steps",
                      fontsize=9)
    axes[-1].set_xlabel("step")
    return fig


def voltage_figure(history: dict, voltage_unit: str = "V", capacity_unit: str = "", dimension: int = 2):
    """A cycling run: the voltage against the capacity of each discharge and charge segment
    (top) and, when fracture is on, the crack length and the relative effective ionic
    conductivity of the electrolyte against time (bottom), the segments shaded."""
    if not _has(history, "voltage", "capacity"):
        return None
    cracked = _has(history, "crack_length")
    fig = new_figure(6.4, 7.2 if cracked else 4.4)
    axes = fig.subplots(2 if cracked else 1, 1, squeeze=False)[:, 0]
    ax = axes[0]
    mode = history.get("mode", np.full(history["voltage"].shape, ""))
    seg = history.get("segment", np.zeros(history["voltage"].shape))
    colours = {"discharge": "#c62828", "charge": "#1565c0"}
    for k in np.unique(seg[1:]):
        rows = np.flatnonzero(seg == k)
        m = str(mode[rows[-1]])
        if m not in colours:
            continue
        rows = np.concatenate([[rows[0] - 1], rows]) if rows[0] > 0 else rows  # start from the previous state
        cap = history["capacity"][rows].copy()
        cap[0] = 0.0
        ax.plot(cap, history["voltage"][rows], "-", color=colours[m], lw=1.5, label=f"{m} (segment {int(k)})")
    if not ax.lines:  # no protocol segments in the history: one curve
        ax.plot(history["capacity"], history["voltage"], "-", color="k", lw=1.4)
    ax.set_xlabel(f"capacity ({capacity_unit})" if capacity_unit else "capacity")
    ax.set_ylabel(f"voltage ({voltage_unit})")
    ax.set_title("voltage against capacity", fontsize=9)
    ax.grid(alpha=0.3)
    if any(line.get_label()[:1] != "_" for line in ax.lines):
        ax.legend(fontsize=7)
    if cracked:
        u = units(dimension)
        ax = axes[1]
        t = history["time"] / 3600.0
        for k in np.unique(seg):
            rows = np.flatnonzero(seg == k)
            m = str(mode[rows[-1]])
            if m in colours and len(rows):
                t0 = t[rows[0] - 1] if rows[0] > 0 else t[rows[0]]
                ax.axvspan(t0, t[rows[-1]], color=colours[m], alpha=0.08, lw=0)
        ax.plot(t, history["crack_length"], "-o", ms=2.0, color="k", lw=1.3, label="crack length")
        ax.set_xlabel("time (h)")
        ax.set_ylabel(f"crack {'area' if dimension == 3 else 'length'} ({u['crack']})")
        ax.grid(alpha=0.3)
        if _has(history, "kappa_eff_rel"):
            ax2 = ax.twinx()
            ax2.plot(t, history["kappa_eff_rel"], "-", color="#2e7d32", lw=1.3, label="effective conductivity")
            ax2.set_ylabel("effective ionic conductivity / kappa", color="#2e7d32")
            ax2.set_ylim(bottom=0.0)
        ax.set_title("cracks and ionic transport (shaded: discharge red, charge blue)", fontsize=9)
    return fig
