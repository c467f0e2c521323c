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
    """The mesh and the time series of a fields.h5 (values are read on demand)."""

    path: Path
    points: np.ndarray          # (n_points, gdim), um
    cells: np.ndarray           # (n_cells, nodes per cell)
    times: list[float]          # every output time (s), sorted
    keys: dict[str, dict[float, str]] = field(default_factory=dict)  # name -> time -> HDF5 key

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
        with h5py.File(self.path, "r", locking=False) as h5:
            data = np.asarray(h5[f"Function/{name}/{self.keys[name][time]}"][...], dtype=float)
        data = data[:, 0] if data.ndim == 2 and data.shape[1] == 1 else data
        if data.shape[0] == self.points.shape[0]:
            return data, "point"
        if data.shape[0] == self.cells.shape[0]:
            return data, "cell"
        raise PostprocessError(f"{self.path}: function {name!r} has {data.shape[0]} rows, neither the "
                               f"{self.points.shape[0]} nodes nor the {self.cells.shape[0]} cells of the mesh")


def read_field_file(path: str | Path) -> FieldFile:
    """Open a DOLFINx fields.h5 (see the module docstring); errors name the file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise PostprocessError(f"{path}: field file not found (the run wrote no fields yet?)")
    try:  # no file locking: a running simulation may hold the file open for writing
        h5 = h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise PostprocessError(f"{path}: not a readable HDF5 file: {exc}") from None
    with h5:
        for needed in ("Mesh/mesh/geometry", "Mesh/mesh/topology"):
            if needed not in h5:
                raise PostprocessError(f"{path}: no /{needed}: not a DOLFINx XDMF/HDF5 field file")
        points = np.asarray(h5["Mesh/mesh/geometry"][...], dtype=float)
        cells = np.asarray(h5["Mesh/mesh/topology"][...], dtype=np.int64)
        keys: dict[str, dict[float, str]] = {}
        if "Function" in h5:
            for name, group in h5["Function"].items():
                keys[name] = {time_of_key(k): k for k in group.keys()}
    times = sorted({t for per in keys.values() for t in per})
    return FieldFile(path, points, cells, times, keys)


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


#: cells whose mean nodal damage is below this are left out of the overlay (the microstructure shows)
DAMAGE_SHOWN = 0.01


def field_figure(ff: FieldFile, time: float, title: str = ""):
    """Figure: (left) microstructure with the damage overlaid, (right) largest principal stress."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap, TwoSlopeNorm
    from matplotlib.tri import Triangulation

    from postprocess.plots import new_figure

    if ff.gdim != 2 or ff.cells.shape[1] not in (3, 6):
        raise PostprocessError(f"{ff.path}: field pictures are drawn for 2D triangle meshes only; "
                               f"use `ssbfrac paraview` for this run")
    tri = Triangulation(ff.points[:, 0], ff.points[:, 1], ff.cells[:, :3])
    fig = new_figure(11.5, 5.0, dpi=130)
    ax_d, ax_s = fig.subplots(1, 2)

    phase = ff.values("phase", time)[0] if ff.has("phase") else None
    if phase is not None:
        ax_d.tripcolor(tri, facecolors=(phase > 1.5).astype(float), cmap=ListedColormap(["#dce9f5", "#c9c9c9"]),
                       vmin=0, vmax=1, rasterized=True)
        segments = ff.points[interface_edges(ff.cells, phase)]
        for ax in (ax_d, ax_s):
            ax.add_collection(LineCollection(segments, colors="k", linewidths=0.5))
    if ff.has("damage") and time in ff.keys["damage"]:
        d, where = ff.values("damage", time)
        d_cells = d[ff.cells[:, :3]].mean(axis=1) if where == "point" else d
        damaged = Triangulation(ff.points[:, 0], ff.points[:, 1], ff.cells[:, :3], mask=~(d_cells >= DAMAGE_SHOWN))
        art = ax_d.tripcolor(damaged, facecolors=np.clip(d_cells, 0, 1), cmap="YlOrRd", vmin=0, vmax=1,
                             rasterized=True)
        fig.colorbar(art, ax=ax_d, shrink=0.8, label="damage d (-), shown where d >= 0.01")
        ax_d.set_title(f"damage (max {np.nanmax(d):.2f}) on the microstructure", fontsize=10)
    else:
        ax_d.set_title("microstructure (no damage field: fracture disabled)", fontsize=10)

    if ff.has("max_principal") and time in ff.keys["max_principal"]:
        s1, _ = ff.values("max_principal", time)
        s1 = s1 * 1e3  # GPa -> MPa
        a = max(float(np.nanmax(np.abs(s1))), 1e-6)
        art = ax_s.tripcolor(tri, facecolors=s1, cmap="coolwarm", norm=TwoSlopeNorm(0.0, -a, a), rasterized=True)
        fig.colorbar(art, ax=ax_s, shrink=0.8, label="largest principal stress (MPa)")
        ax_s.set_title("largest principal stress (tension > 0)", fontsize=10)
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
