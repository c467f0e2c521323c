"""The files of a run: field time series (XDMF/HDF5, a merged XDMF, VTX), history.csv,
profiles.csv, JSON.

Writers are separate from the physics: they receive functions and numbers. Field files
are written collectively; CSV and JSON only by rank 0.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
from mpi4py import MPI

# Units of the history columns (documented in the README as well).
HISTORY_UNITS = {
    "step": "-",
    "voltage": "V (cathode against lithium metal)",
    "current_density": "A/m^2 (cell current per collector-side area; > 0 on discharge)",
    "c_rate": "1/h (cell current / 1C current; > 0 on discharge)",
    "capacity": "mAh/cm^2 (charge passed in the present protocol segment per collector-side area)",
    "capacity_fraction": "- (charge passed in the present segment / theoretical capacity)",
    "segment": "- (protocol segment, counted over all cycles)",
    "cycle": "- (cycle, from 0)",
    "mode": "discharge, charge, rest or hold",
    "kappa_eff_rel": "- (effective ionic conductivity of the damaged electrolyte across the thickness / kappa)",
    "ec_newton_iterations": "- (Newton iterations of the electrochemistry in the step)",
    "accepted": "1 accepted, 0 rejected (cut) step",
    "time": "s",
    "load": "-  (path coordinate: segment index + fraction)",
    "displacement": "um (of the loaded facets, along loading.direction)",
    "reaction_force": "N/m in 2D (per m of thickness), N in 3D (force the loaded facets carry along loading.direction)",
    "x": "- (volume-mean lithium fraction of the particles)",
    "soc": "- (state of charge of the cathode, 1 - x; capacity-weighted with electrochemistry)",
    "vol_strain": "- (volume-mean volumetric eigenstrain of the particles, f(x) - f(x_ref), f = expansion x or the table)",
    "mean_strain": "- (mean volumetric strain of the composite)",
    "sigma1_max_SE": "MPa (largest principal stress in the electrolyte)",
    "sigma_h_min_AM": "MPa (most compressive hydrostatic stress in the particles)",
    "elastic_energy": "nJ/um in 2D (per um of thickness), nJ in 3D",
    "fracture_energy": "nJ/um in 2D, nJ in 3D",
    "crack_length": "um in 2D (regularised), um^2 in 3D (crack area)",
    "crack_length_sharp": "um (sharp crack length: half the length of the d = 0.5 iso-line; 2D only)",
    "damaged_fraction": "- (fraction of the damageable phase with d >= 0.9)",
    "band_width_ratio": "- (area of d >= 0.9 / sharp crack length / the same width of the optimal 1D profile; 1: as localised as a 1D crack, 0 before any crack; 2D only)",
    "crack_segments": "- (connected components of d >= 0.9)",
    "d_max": "-",
    "iterations": "- (alternate-minimisation iterations of the step)",
    "elastic_solves": "- (linear elasticity solves in the step)",
    "damage_solves": "-",
    "newton_iterations": "- (monolithic Newton iterations of the step, accelerated scheme)",
    "linear_iterations": "- (Krylov iterations of the step)",
    "wall": "s (since the start of the solve)",
}


class FieldWriter:
    """XDMF + HDF5 time series of functions that share one mesh.

    Functions are written at the mesh's geometric degree: DOLFINx XDMF needs the
    function degree to match the mesh, so higher-degree fields are interpolated.
    ``append``: continue an existing series (the mesh is not written again; the new time
    steps follow the old ones in the same temporal collections, which ParaView reads as
    one series). After the mesh and after every output the file is closed and opened
    again (:meth:`reopen`), which leaves the HDF5 file consistent on disk: a run killed
    while writing loses at most the output under way. After every output, rank 0 rewrites
    the merged series next to the file (:func:`merge_xdmf`: ``fields_merged.xdmf``, one
    dataset with every field for ParaView). ``vtx_path``: also write the same functions
    as an ADIOS2 VTX series (``*.bp``, the *ADIOS2VTXReader* of a ParaView built with
    ADIOS2; needs a DOLFINx built with ADIOS2, see :func:`vtx_available`).
    """

    def __init__(self, path: Path, domain, functions: list, append: bool = False, vtx_path: Path | None = None):
        from dolfinx import fem

        self.path = Path(path)
        self.functions = functions
        self._comm = domain.comm
        self._out = []
        degree = domain.geometry.cmaps[0].degree
        for f in functions:
            el = f.function_space.ufl_element()
            if el.embedded_superdegree <= degree or getattr(el, "discontinuous", False) and el.embedded_superdegree == 0:
                self._out.append((f, f))
                continue
            shape = f.function_space.value_shape
            V = fem.functionspace(domain, ("Lagrange", degree, shape))
            g = fem.Function(V, name=f.name)
            self._out.append((f, g))
        self.file = self._open("a" if append else "w")
        if not append:
            self.file.write_mesh(domain)
            self.reopen()
        self.vtx = None
        if vtx_path is not None:
            from dolfinx.io import VTXWriter

            self.vtx = VTXWriter(self._comm, str(vtx_path), [dst for _, dst in self._out], engine="BP4")

    def _open(self, mode: str):
        from dolfinx.io import XDMFFile

        return XDMFFile(self._comm, str(self.path), mode)

    def reopen(self) -> None:
        """Close the file (flushing it) and open it again for appending (collective)."""
        self.file.close()
        self.file = self._open("a")

    def write_meshtags(self, tags, geometry) -> None:
        self.file.write_meshtags(tags, geometry)

    def write(self, t: float) -> None:
        for src, dst in self._out:
            if dst is not src:
                dst.interpolate(src)
            self.file.write_function(dst, t)
        self.reopen()
        if self._comm.rank == 0:  # DOLFINx has written the XML of fields.xdmf on rank 0
            merge_xdmf(self.path)
        if self.vtx is not None:
            self.vtx.write(t)

    def close(self) -> None:
        self.file.close()
        if self.vtx is not None:
            self.vtx.close()


def merged_xdmf_path(xdmf: str | Path) -> Path:
    """The merged series written next to a field file (``fields.xdmf`` -> ``fields_merged.xdmf``)."""
    xdmf = Path(xdmf)
    return xdmf.with_name(f"{xdmf.stem}_merged{xdmf.suffix}")


def merge_xdmf(xdmf: str | Path, out: str | Path | None = None) -> Path:
    """Write the series of ``xdmf`` as one temporal collection with every field.

    DOLFINx writes one temporal collection per function; each of its time steps is a grid
    of the mesh carrying that one function, so ParaView's Xdmf3 readers deliver one block
    per function. The merged file (``out``, default :func:`merged_xdmf_path`) has a single
    temporal collection whose every time step is one grid of the mesh holding all the
    functions written at that time. It points at the same HDF5 datasets as ``xdmf`` (by
    the same relative path, so it must stay next to it) and holds no data itself. The file
    is replaced atomically; returns its path."""
    import copy
    import xml.etree.ElementTree as ET

    xdmf = Path(xdmf)
    out = Path(out) if out is not None else merged_xdmf_path(xdmf)
    domain = ET.parse(xdmf).getroot().find("Domain")
    if domain is None:
        raise ValueError(f"{xdmf}: no <Domain>: not an XDMF file")
    grids = domain.findall("Grid")
    mesh = next((g for g in grids if g.get("GridType", "Uniform") == "Uniform"
                 and g.find("Topology") is not None and g.find("Geometry") is not None), None)
    if mesh is None:
        raise ValueError(f"{xdmf}: no mesh grid with <Topology> and <Geometry>")
    steps: dict[float, tuple[str, dict]] = {}  # time -> (its text, {function: Attribute})
    for collection in grids:
        if collection.get("CollectionType") != "Temporal":
            continue
        for grid in collection.findall("Grid"):
            time = grid.find("Time")
            if time is None:
                continue
            text = time.get("Value")
            attributes = steps.setdefault(float(text), (text, {}))[1]
            for attribute in grid.findall("Attribute"):
                attributes[attribute.get("Name")] = attribute  # a repeated output time: the last one
    root = ET.Element("Xdmf", Version="3.0")
    series = ET.SubElement(ET.SubElement(root, "Domain"), "Grid", Name="fields", GridType="Collection",
                           CollectionType="Temporal")
    for _, (text, attributes) in sorted(steps.items()):
        grid = ET.SubElement(series, "Grid", Name="fields", GridType="Uniform")
        grid.append(copy.deepcopy(mesh.find("Topology")))
        grid.append(copy.deepcopy(mesh.find("Geometry")))
        ET.SubElement(grid, "Time", Value=text)
        for attribute in attributes.values():
            grid.append(copy.deepcopy(attribute))
    ET.indent(root, space="  ")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text('<?xml version="1.0"?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n'
                   + ET.tostring(root, encoding="unicode") + "\n")
    os.replace(tmp, out)
    return out


def vtx_available() -> bool:
    """True when DOLFINx was built with ADIOS2 (VTX output possible)."""
    import dolfinx

    return bool(getattr(dolfinx.common, "has_adios2", False)) and hasattr(dolfinx.io, "VTXWriter")


class ProfileWriter:
    """profiles.csv: mean lithiation of the particles and damage of the electrolyte against
    the depth from the lithium side (written in m), one block of rows per field output
    (rank 0 writes; ``append``: continue an existing file)."""

    def __init__(self, path: Path, comm: MPI.Comm, append: bool = False):
        append = append and comm.rank == 0 and Path(path).exists() and Path(path).stat().st_size > 0
        self._fh = open(path, "a" if append else "w") if comm.rank == 0 else None
        self._header = append

    def add(self, output: int, t: float, prof: dict) -> None:
        """One block: ``prof`` has ``depth`` (um) and per-slab ``x`` and optionally ``damage``."""
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


class History:
    """history.csv: one row per (accepted or rejected) step, flushed every row."""

    def __init__(self, path: Path, comm: MPI.Comm, columns: list[str], append: bool = False):
        self.comm = comm
        self.columns = columns
        self.rows: list[dict] = []
        self._fh = None
        if comm.rank == 0:
            mode = "a" if append and Path(path).exists() else "w"
            self._fh = open(path, mode, newline="")
            self._writer = csv.DictWriter(self._fh, fieldnames=columns, extrasaction="raise")
            if mode == "w":
                self._writer.writeheader()
                self._fh.flush()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self._fh is not None:
            self._writer.writerow({k: _fmt(row.get(k)) for k in self.columns})
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.10g}"
    return v


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Read a history.csv into column arrays (floats where possible)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows]
        try:
            out[k] = np.array([float(v) if v != "" else math.nan for v in vals])
        except ValueError:
            out[k] = np.array(vals)
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary file and a rename: a process killed meanwhile
    leaves the old file or the new one, never a part of it."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict, comm: MPI.Comm) -> None:
    """Write JSON atomically (:func:`write_text_atomic`) on rank 0."""
    if comm.rank == 0:
        write_text_atomic(path, json.dumps(data, indent=1, default=_json_default))
    comm.barrier()


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
