"""Microstructure files: particle lists (CSV, JSON), Gmsh ``.msh`` files with the ssbfrac
physical groups, the ``mesh.json`` metadata and conversion to other mesh formats (meshio).

Particle lists
--------------
A CSV file has a header row and one particle per row; a JSON file holds a list of such
records, or ``{"units": "m", "particles": [...]}``. Lengths are in metres unless a JSON
file says ``"units": "um"``. Columns (only the centre and the radius are required):

==================  ==========================================================================
``x, y[, z]``       centre
``radius``          radius of circles/spheres, circumradius of polygons/polyhedra, largest
                    semi-axis of ellipses/ellipsoids
``shape``           circle, ellipse, polygon, sphere, ellipsoid, polyhedron (default: the case's)
``sides``           polygon corners (default: the case's)
``angle``           2D orientation in degrees (default 0)
``ax, ay, az``      3D orientation: angles in degrees about x, y, z (default 0)
``aspect_b``,       semi-axis ratios b/a (and c/a) of ellipses/ellipsoids (default: the case's)
``aspect_c``
``polyhedron``      tetrahedron, cube, octahedron, dodecahedron, icosahedron (default: the case's)
``material``        active or active_b (default active)
==================  ==========================================================================

The ``mesh.json`` written next to every mesh is also a particle list (its ``packing``
section, in um, with the exact corners and rotations): giving it as the file reproduces a
microstructure exactly.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from meshes import tags
from meshes.geometry import Particle, make_particle

UNIT_FACTORS = {"m": 1.0, "um": 1e-6}


class MicrostructureFileError(ValueError):
    """A particle list or mesh file cannot be used (message names the file and row)."""


def _number(row: dict, key: str, where: str, default=None) -> float:
    v = row.get(key)
    if v is None or v == "":
        if default is None:
            raise MicrostructureFileError(f"{where}: column {key!r} is missing")
        return default
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise MicrostructureFileError(f"{where}: {key} = {v!r} is not a number") from None
    if not np.isfinite(x):
        raise MicrostructureFileError(f"{where}: {key} = {v!r} is not finite")
    return x


def read_particles(path: str | Path, dim: int, defaults: dict, scale: float = 1.0) -> list[Particle]:
    """Particles of a CSV/JSON file, lengths converted to metres and multiplied by ``scale``.

    ``defaults``: shape, sides, aspect, polyhedron, corner_radius and coating of the case
    (lengths already in the units of the result)."""
    path = Path(path)
    units = "m"
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "packing" in data:  # an ssbfrac mesh.json
                units = data.get("units", "um")
                data = data["packing"]
            if isinstance(data, dict):
                units = data.get("units", units)
                data = data.get("particles")
            if not isinstance(data, list):
                raise MicrostructureFileError(f"{path}: expected a list of particles or {{'particles': [...]}}")
            rows = data
        else:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise MicrostructureFileError(f"{path}: cannot read the particle list ({exc})") from None
    if units not in UNIT_FACTORS:
        raise MicrostructureFileError(f"{path}: units = {units!r}; allowed: {', '.join(UNIT_FACTORS)}")
    if not rows:
        raise MicrostructureFileError(f"{path}: the particle list is empty")
    f = UNIT_FACTORS[units] * scale
    out = []
    for i, row in enumerate(rows):
        where = f"{path}: particle {i} (row {i + 2})" if path.suffix.lower() == ".csv" else f"{path}: particle {i}"
        if not isinstance(row, dict):
            raise MicrostructureFileError(f"{where}: expected a mapping of columns")
        if "center" in row:  # a full record (mesh.json style)
            try:
                p = Particle.from_dict({**row, "id": i})
            except (KeyError, TypeError, ValueError) as exc:
                raise MicrostructureFileError(f"{where}: malformed particle record ({exc})") from None
            p = p.in_units(f)
        else:
            center = [_number(row, k, where) * f for k in "xyz"[:dim]]
            if dim == 2 and row.get("z") not in (None, ""):
                raise MicrostructureFileError(f"{where}: has a z coordinate but the case is 2D")
            radius = _number(row, "radius", where) * f
            if radius <= 0:
                raise MicrostructureFileError(f"{where}: radius = {row['radius']!r} must be positive")
            shape = row.get("shape") or defaults["shape"]
            aspect = tuple(defaults.get("aspect") or ())
            if row.get("aspect_b") not in (None, ""):
                aspect = (_number(row, "aspect_b", where),) + ((_number(row, "aspect_c", where),) if dim == 3 else ())
            orientation = (_number(row, "angle", where, 0.0) if dim == 2
                           else [_number(row, k, where, 0.0) for k in ("ax", "ay", "az")])
            try:
                p = make_particle(i, center, radius, shape, sides=int(_number(row, "sides", where, defaults["sides"])),
                                  orientation=orientation, aspect=aspect,
                                  polyhedron=row.get("polyhedron") or defaults["polyhedron"],
                                  corner_radius=defaults.get("corner_radius", 0.0),
                                  coating=defaults.get("coating", 0.0),
                                  material=row.get("material") or "active")
            except ValueError as exc:
                raise MicrostructureFileError(f"{where}: {exc}") from None
        if p.dim != dim:
            raise MicrostructureFileError(f"{where}: a {p.dim}D particle in a {dim}D case")
        out.append(p)
    if len(out) > tags.MAX_PARTICLES:
        raise MicrostructureFileError(f"{path}: more than {tags.MAX_PARTICLES} particles")
    return out


# ----------------------------------------------------------------------------- .msh files
CELL_TYPES = {2: ("triangle", "triangle6", "quad", "quad9"), 3: ("tetra", "tetra10", "hexahedron", "hexahedron27")}


def msh_summary(path: str | Path) -> dict:
    """Dimension, physical groups and phases of a Gmsh mesh file, checked against the
    ssbfrac convention (meshes/tags.py): every cell must carry a known cell tag."""
    import meshio

    path = Path(path)
    try:
        mesh = meshio.read(path)
    except Exception as exc:  # meshio raises many kinds
        raise MicrostructureFileError(f"{path}: cannot read the mesh ({type(exc).__name__}: {exc})") from None
    dim = 3 if any(b.type in CELL_TYPES[3] for b in mesh.cells) else 2
    phys = mesh.cell_data.get("gmsh:physical")
    if phys is None:
        raise MicrostructureFileError(f"{path}: the mesh has no physical groups (see meshes/tags.py for the convention)")
    cell_tags: set[int] = set()
    facet_tags: set[int] = set()
    for block, values in zip(mesh.cells, phys):
        if block.type in CELL_TYPES[dim]:
            cell_tags.update(int(v) for v in np.unique(values))
        elif block.type in CELL_TYPES.get(dim - 1, ()) or block.type.startswith("line"):
            facet_tags.update(int(v) for v in np.unique(values))
    if not cell_tags:
        raise MicrostructureFileError(f"{path}: no {dim}D cells in a physical group")
    phases = set()
    for t in sorted(cell_tags):
        try:
            phases.add(tags.phase_of_tag(t))
        except ValueError as exc:
            raise MicrostructureFileError(f"{path}: {exc}") from None
    if 0 in cell_tags:
        raise MicrostructureFileError(f"{path}: some cells are in no physical group")
    pts = mesh.points[:, :dim]
    return {"dimension": dim, "cell_tags": sorted(cell_tags), "facet_tags": sorted(facet_tags),
            "phases": sorted(phases), "box": [pts.min(axis=0).tolist(), pts.max(axis=0).tolist()],
            "names": {name: [int(v[0]), int(v[1])] for name, v in mesh.field_data.items()}}


def convert_mesh(msh: str | Path, formats: list[str]) -> list[Path]:
    """Write ``msh`` again in other formats (meshio: vtu, xdmf, vtk, med, inp, ...), next to
    it with the same stem; the cell and facet tags are kept as the cell data ``tag``."""
    import meshio

    msh = Path(msh)
    src = meshio.read(msh)
    # cells and their tags only (Gmsh's geometric entities and named sets do not carry over)
    mesh = meshio.Mesh(src.points, src.cells, cell_data={"tag": src.cell_data["gmsh:physical"]})
    out = []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        target = msh.with_suffix("." + fmt)
        try:
            meshio.write(target, mesh)
        except Exception as exc:
            raise MicrostructureFileError(f"cannot write {target} with meshio ({type(exc).__name__}: {exc})") from None
        out.append(target)
    return out


def check_formats(formats: list[str]) -> None:
    """Refuse formats meshio cannot write (tried on a one-triangle mesh, before any meshing)."""
    import tempfile

    import meshio

    tiny = meshio.Mesh(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), [("triangle", [[0, 1, 2]])],
                       cell_data={"tag": [np.array([1])]})
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            try:
                meshio.write(Path(tmp) / f"mesh.{fmt.lstrip('.').lower()}", tiny)
            except Exception as exc:
                raise MicrostructureFileError(f"meshio cannot write the format {fmt!r} ({type(exc).__name__}: {exc})") from None


def write_json(path: str | Path, info: dict) -> Path:
    Path(path).write_text(json.dumps(info, indent=1, default=_plain))
    return Path(path)


def _plain(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")
