"""Pictures of the fields of a 2D run with matplotlib (no ParaView needed).

fields.h5 is read directly with h5py. DOLFINx writes it as:

* ``/Mesh/mesh/geometry``: node coordinates (um), one row per node;
* ``/Mesh/mesh/topology``: the nodes of each cell (3 per triangle, 6 for curved ones;
  the first 3 are the corners);
* ``/Function/<name>/<time key>``: the values of a function at one output time; the
  key is the time in s with '.' written as '_' (``2160_0000000000005``). Point data
  (``displacement``, ``damage``) have one row per node, cell data (stresses in GPa,
  ``phase``, ``particle_id``, ``lithiation``) one row per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from postprocess.history import PostprocessError


def time_of_key(key: str) -> float:
    """Output time (s) of a DOLFINx HDF5 time key ('2160_0000000000005' -> 2160.0000000000005)."""
    return float(key.replace("_", "."))


@dataclass
class FieldFile:
    """The mesh and the time series of a fields.h5 (values are read on demand).

    ``incomplete``: output times that not every function reached, what a run killed while
    writing an output leaves; they are left out of ``times``."""

    path: Path
    points: np.ndarray          # (n_points, gdim), um
    cells: np.ndarray           # (n_cells, nodes per cell)
    times: list[float]          # every complete output time (s), sorted
    keys: dict[str, dict[float, str]] = field(default_factory=dict)  # name -> time -> HDF5 key
    incomplete: list[float] = field(default_factory=list)

    @property
    def gdim(self) -> int:
        return int(self.points.shape[1])

    def has(self, name: str) -> bool:
        return name in self.keys

    def values(self, name: str, time: float) -> tuple[np.ndarray, str]:
        """(values, 'point' or 'cell') of a scalar function at an output time."""
        import h5py

        if name not in self.keys:
            raise PostprocessError(f"{self.path}: no function {name!r}; functions are {sorted(self.keys)}")
        if time not in self.keys[name]:
            raise PostprocessError(f"{self.path}: function {name!r} has no output at t = {time:g} s")
        try:
            with h5py.File(self.path, "r", locking=False) as h5:
                data = np.asarray(h5[f"Function/{name}/{self.keys[name][time]}"][...], dtype=float)
        except (OSError, KeyError) as exc:
            raise PostprocessError(f"{self.path}: function {name!r} at t = {time:g} s cannot be read: {exc}") from None
        data = data[:, 0] if data.ndim == 2 and data.shape[1] == 1 else data
        if data.shape[0] == self.points.shape[0]:
            return data, "point"
        if data.shape[0] == self.cells.shape[0]:
            return data, "cell"
        raise PostprocessError(f"{self.path}: function {name!r} has {data.shape[0]} rows, neither the "
                               f"{self.points.shape[0]} nodes nor the {self.cells.shape[0]} cells of the mesh")


def read_field_file(path: str | Path) -> FieldFile:
    """Open a DOLFINx fields.h5 (see the module docstring); errors name the file. Output
    times that are not complete (a run killed while writing them) are left out and
    listed in ``incomplete``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise PostprocessError(f"{path}: field file not found (the run wrote no fields yet?)")
    try:  # no file locking: a running simulation may hold the file open for writing
        h5 = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise PostprocessError(f"{path}: not a readable HDF5 file (as a run killed before its first "
                               f"field output leaves it): {exc}") from None
    try:
        with h5:
            for needed in ("Mesh/mesh/geometry", "Mesh/mesh/topology"):
                if needed not in h5:
                    raise PostprocessError(f"{path}: no /{needed}: not a DOLFINx XDMF/HDF5 field file")
            points = np.asarray(h5["Mesh/mesh/geometry"][...], dtype=float)
            cells = np.asarray(h5["Mesh/mesh/topology"][...], dtype=np.int64)
            keys: dict[str, dict[float, str]] = {}
            for name, group in (h5["Function"].items() if "Function" in h5 else []):
                keys[name] = {time_of_key(k): k for k, d in group.items() if isinstance(d, h5py.Dataset)}
    except (OSError, KeyError, RuntimeError) as exc:
        raise PostprocessError(f"{path}: cannot be read: {exc}") from None
    every = sorted({t for per in keys.values() for t in per})
    times = [t for t in every if all(t in per for per in keys.values())]
    incomplete = [t for t in every if t not in times]
    for per in keys.values():
        for t in incomplete:
            per.pop(t, None)
    return FieldFile(path, points, cells, times, keys, incomplete)


def select_outputs(requested: list[str] | None, count: int, source: Path) -> list[int]:
    """Output indices from ``--steps``: integers (negative from the end), 'all' or 'none'."""
    requested = requested or ["-1"]
    if "none" in requested:
        return []
    if "all" in requested:
        return list(range(count))
    chosen = []
    for text in requested:
        try:
            k = int(text)
        except ValueError:
            raise PostprocessError(f"--steps {text}: expected an integer output index, 'all' or 'none'") from None
        if not -count <= k < count:
            raise PostprocessError(f"--steps {k}: {source} has {count} output steps (0..{count - 1}, "
                                   f"or negative from the end)")
        if k % count not in chosen:
            chosen.append(k % count)
    return chosen


def interface_edges(cells: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Edges (pairs of nodes) between two cells of different phase: the particle outlines."""
    tri = cells[:, :3]
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(tri.shape[0]), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    same = np.all(edges[1:] == edges[:-1], axis=1)  # an interior edge appears twice, consecutively
    first = np.flatnonzero(same)
    differ = phase[owner[first]] != phase[owner[first + 1]]
    return edges[first[differ]]


#: phase codes of the ``phase`` field (meshes/tags.py): 1 electrolyte, 2 and 3 active materials, ...
PHASE_CODES = {"electrolyte": 1, "active": 2, "active_b": 3, "separator": 4, "collector_layer": 5, "coating": 6}
PARTICLE_PHASES = (PHASE_CODES["active"], PHASE_CODES["active_b"])
#: flat colours of the phases where damage is not shown: particles, other phases
PARTICLE_COLOUR = "#b8b8b8"
OTHER_PHASE_COLOUR = "#dce9f5"
#: colours of stresses beyond a clipped colour scale (above: tension, below: compression)
ABOVE_COLOUR = "#4d004d"
BELOW_COLOUR = "#002147"
#: stress fields of fields.h5 (GPa), drawn in MPa like the history plots
STRESS_FIELDS = ("max_principal", "von_mises", "hydrostatic", "sigma_zz")
#: stress colour scales end at this percentile of the cell values (of the output where it is
#: largest): the peaks at sharp particle corners are singular and would flatten the rest
STRESS_PERCENTILE = 99.5
FIELD_TITLES = {
    "damage": "damage d",
    "max_principal": "largest principal stress",
    "von_mises": "von Mises stress",
    "hydrostatic": "hydrostatic stress",
    "sigma_zz": "out-of-plane stress sigma_zz",
    "displacement": "displacement magnitude",
    "lithiation": "lithium fraction x",
    "phase": "phase",
    "particle_id": "particle index",
}


def damageable_phases(case: dict | None) -> list[int]:
    """Phase codes where the case allows damage (``fracture.phases``, default electrolyte)."""
    fracture = (case or {}).get("fracture") or {}
    names = fracture.get("phases") or ["electrolyte"]
    return sorted(PHASE_CODES[n] for n in names if n in PHASE_CODES)


def phase_masks(phase: np.ndarray, damageable=(1,)) -> dict[str, np.ndarray]:
    """Cell masks: ``damageable`` (cells of the damageable phases, where damage is shown),
    ``particles`` (active material) and ``other`` (the rest)."""
    phase = np.rint(np.asarray(phase)).astype(int)
    damage = np.isin(phase, list(damageable))
    particles = np.isin(phase, PARTICLE_PHASES) & ~damage
    return {"damageable": damage, "particles": particles, "other": ~(damage | particles)}


def field_unit(name: str) -> tuple[str, float]:
    """(display unit, factor from the file's values) of a field: stresses GPa -> MPa."""
    if name in STRESS_FIELDS:
        return "MPa", 1e3
    return {"displacement": "um", "damage": "-", "lithiation": "-"}.get(name, ""), 1.0


def series_limits(ff: FieldFile, name: str) -> dict:
    """Colour limits of a field, the same for every output of the series (display units).

    ``range`` (lo, hi): damage 0..1; stresses up to the :data:`STRESS_PERCENTILE`
    percentile of the absolute cell values at the output where it is largest (symmetric
    about 0, von Mises from 0); other fields their smallest and largest value over the
    series (the magnitude for vectors). ``extremes``: the smallest and largest values over
    the series; ``clipped``: True when values lie outside ``range``."""
    _, factor = field_unit(name)
    lo = hi = 0.0
    bound = 0.0
    first = True
    for t in sorted(ff.keys.get(name, {})):
        v, _ = ff.values(name, t)
        v = (np.linalg.norm(v, axis=1) if v.ndim == 2 else v) * factor
        v = v[np.isfinite(v)]
        if not v.size:
            continue
        lo, hi = (float(v.min()), float(v.max())) if first else (min(lo, float(v.min())), max(hi, float(v.max())))
        first = False
        if name in STRESS_FIELDS:
            bound = max(bound, float(np.percentile(np.abs(v), STRESS_PERCENTILE)))
    if name == "damage":
        rng = (0.0, 1.0)
    elif name == "von_mises":
        rng = (0.0, max(bound, 1e-6))
    elif name in STRESS_FIELDS:
        rng = (-max(bound, 1e-6), max(bound, 1e-6))
    else:
        rng = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    return {"range": rng, "extremes": (lo, hi), "clipped": bool(lo < rng[0] - 1e-12 or hi > rng[1] + 1e-12)}


def _extend(limits: dict) -> str:
    """The colour-bar ends beyond which values lie: 'neither', 'min', 'max' or 'both'."""
    below = limits["extremes"][0] < limits["range"][0] - 1e-12
    above = limits["extremes"][1] > limits["range"][1] + 1e-12
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(below, above)]


def stress_note(limits: dict, unit: str = "MPa", sharp: bool = True) -> str:
    """What a stress picture's colour scale shows (range fixed over the series, clipped peaks)."""
    lo, hi = limits["range"]
    text = f"colour scale fixed over all outputs, {lo:.4g} to {hi:.4g} {unit}"
    if limits["clipped"]:
        xlo, xhi = limits["extremes"]
        text += (f" (the {STRESS_PERCENTILE:g}th percentile of the absolute cell values at the output where it is "
                 f"largest); the series reaches {xlo:.4g} to {xhi:.4g} {unit}, beyond the scale in its end colours. "
                 + ("The largest values sit at sharp particle corners, stress singularities: they depend on the mesh."
                    if sharp else "The largest cell values depend on the mesh."))
    return text


def field_figure(ff: FieldFile, time: float, title: str = "", damageable=(1,), stress_limits: dict | None = None,
                 sharp: bool = True):
    """Figure: (left) damage on the cells of the damageable phases, the other phases in flat
    colours, particle outlines; (right) largest principal stress (MPa), colour scale fixed
    over the series (:func:`series_limits`, computed here unless given)."""
    import textwrap

    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap, TwoSlopeNorm
    from matplotlib.tri import Triangulation

    from postprocess.plots import new_figure

    if ff.gdim != 2 or ff.cells.shape[1] not in (3, 6):
        raise PostprocessError(f"{ff.path}: field pictures are drawn for 2D triangle meshes only; "
                               f"use `ssbfrac paraview` for this run")
    x, y, tris = ff.points[:, 0], ff.points[:, 1], ff.cells[:, :3]
    tri = Triangulation(x, y, tris)
    fig = new_figure(11.5, 5.6, dpi=130)
    ax_d, ax_s = fig.subplots(1, 2)

    phase = ff.values("phase", time)[0] if ff.has("phase") and time in ff.keys["phase"] else None
    masks = phase_masks(phase, damageable) if phase is not None else None
    if masks is not None:
        flat = np.where(masks["particles"], 1.0, 0.0)
        shown = masks["particles"] | masks["other"]
        ax_d.tripcolor(Triangulation(x, y, tris, mask=~shown), facecolors=flat,
                       cmap=ListedColormap([OTHER_PHASE_COLOUR, PARTICLE_COLOUR]), vmin=0, vmax=1, rasterized=True)
    if ff.has("damage") and time in ff.keys["damage"]:
        d, where = ff.values("damage", time)
        on = masks["damageable"] if masks is not None else np.ones(tris.shape[0], bool)
        damaged = Triangulation(x, y, tris, mask=~on)
        if where == "point":  # the P1 field as computed, on the damageable cells only
            art = ax_d.tripcolor(damaged, np.clip(d, 0, 1), shading="gouraud", cmap="Reds", vmin=0, vmax=1,
                                 rasterized=True)
        else:
            art = ax_d.tripcolor(damaged, facecolors=np.clip(d, 0, 1), cmap="Reds", vmin=0, vmax=1,
                                 rasterized=True)
        art.set_gid("damage")
        fig.colorbar(art, ax=ax_d, shrink=0.8, label="damage d (-)")
        d_max = float(np.nanmax(d[np.unique(tris[on])])) if on.any() else float("nan")
        ax_d.set_title(f"damage (max {d_max:.2f}) on the damageable phases;\nparticles grey", fontsize=10)
    else:
        ax_d.set_title("microstructure (no damage field: fracture disabled)", fontsize=10)
    if phase is not None:
        segments = ff.points[interface_edges(ff.cells, phase)][:, :, :2]
        for ax in (ax_d, ax_s):
            ax.add_collection(LineCollection(segments, colors="k", linewidths=0.6))

    if ff.has("max_principal") and time in ff.keys["max_principal"]:
        limits = stress_limits or series_limits(ff, "max_principal")
        s1, _ = ff.values("max_principal", time)
        s1 = s1 * 1e3  # GPa -> MPa
        a = limits["range"][1]
        cmap = colormaps["coolwarm"].with_extremes(over=ABOVE_COLOUR, under=BELOW_COLOUR)
        art = ax_s.tripcolor(tri, facecolors=s1, cmap=cmap, norm=TwoSlopeNorm(0.0, -a, a), rasterized=True)
        fig.colorbar(art, ax=ax_s, shrink=0.8, label="largest principal stress (MPa)",
                     extend=_extend(limits))
        ax_s.set_title(f"largest principal stress (tension > 0), max {np.nanmax(s1):.4g} MPa", fontsize=10)
        fig.supxlabel("\n".join(textwrap.wrap("Stress: " + stress_note(limits, sharp=sharp), 160)), fontsize=7.5, color="0.2")
    else:
        ax_s.set_title("no max_principal field", fontsize=10)
    for ax in (ax_d, ax_s):
        ax.set_aspect("equal")
        ax.set_xlim(ff.points[:, 0].min(), ff.points[:, 0].max())
        ax.set_ylim(ff.points[:, 1].min(), ff.points[:, 1].max())
        ax.set_xlabel("x (um): separator -> collector")
        ax.set_ylabel("y (um)")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
