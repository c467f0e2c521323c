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
import functools
import io
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
    if isinstance(v, bool):
        raise MicrostructureFileError(f"{where}: {key} = {v!r} is not a number")
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise MicrostructureFileError(f"{where}: {key} = {v!r} is not a number") from None
    if not np.isfinite(x):
        raise MicrostructureFileError(f"{where}: {key} = {v!r} is not finite")
    return x


#: largest particle list read (bytes); a list of 999000 particles in CSV is about 60 MB
MAX_PARTICLE_FILE_BYTES = 64 * 1024 * 1024
#: largest Gmsh mesh file read (bytes)
MAX_MESH_FILE_BYTES = 1024 ** 3


def _file_text(path: Path, what: str, max_bytes: int) -> str:
    """UTF-8 text of a regular file of at most ``max_bytes`` (MicrostructureFileError otherwise)."""
    if not path.is_file():
        raise MicrostructureFileError(f"{path}: not found (or not a regular file)")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise MicrostructureFileError(f"{path}: {size} bytes is too large for a {what} (at most {max_bytes})")
        raw = path.read_bytes()
    except OSError as exc:
        raise MicrostructureFileError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if b"\x00" in raw:
        raise MicrostructureFileError(f"{path}: a binary file (NUL bytes), expected a {what} in text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MicrostructureFileError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})") from None


def _finite_record(p: Particle) -> bool:
    values = [*p.center, p.radius, p.angle, p.corner_radius, p.coating]
    for part in (p.corners, p.axes, p.rotation):
        if part is not None:
            values += [x for row in part for x in (row if isinstance(row, tuple) else (row,))]
    return all(np.isfinite(values))


def read_particles(path: str | Path, dim: int, defaults: dict, scale: float = 1.0,
                   max_particles: int | None = None, radius_bounds: tuple[float, float] | None = None) -> list[Particle]:
    """Particles of a CSV/JSON file, lengths converted to metres and multiplied by ``scale``.

    ``defaults``: shape, sides, aspect, polyhedron, corner_radius and coating of the case
    (lengths already in the units of the result). A file with more than ``max_particles``
    particles is refused before any particle is made; ``radius_bounds``: smallest and
    largest radius in metres."""
    path = Path(path)
    units = "m"
    text = _file_text(path, "particle list", MAX_PARTICLE_FILE_BYTES)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
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
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (json.JSONDecodeError, csv.Error, RecursionError) as exc:
        what = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MicrostructureFileError(f"{path}: cannot read the particle list ({what})") from None
    if not isinstance(units, str) or units not in UNIT_FACTORS:
        raise MicrostructureFileError(f"{path}: units = {units!r}; allowed: {', '.join(UNIT_FACTORS)}")
    if not rows:
        raise MicrostructureFileError(f"{path}: the particle list is empty")
    cap = min(max_particles or tags.MAX_PARTICLES, tags.MAX_PARTICLES)
    if len(rows) > cap:
        which = "limits.max_particles" if max_particles is not None and max_particles < tags.MAX_PARTICLES else \
            "the most a mesh can tag"
        raise MicrostructureFileError(f"{path}: {len(rows)} particles, more than {cap} ({which})")
    f = UNIT_FACTORS[units] * scale
    out = []
    for i, row in enumerate(rows):
        where = f"{path}: particle {i} (row {i + 2})" if path.suffix.lower() == ".csv" else f"{path}: particle {i}"
        if not isinstance(row, dict):
            raise MicrostructureFileError(f"{where}: expected a mapping of columns")
        if None in row:  # csv: more values than header columns
            raise MicrostructureFileError(f"{where}: more values than columns in the header")
        if "center" in row:  # a full record (mesh.json style)
            try:
                p = Particle.from_dict({**row, "id": i})
                ok = _finite_record(p)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise MicrostructureFileError(f"{where}: malformed particle record ({exc})") from None
            if not ok:
                raise MicrostructureFileError(f"{where}: a value is not a finite number")
            if p.shape == "polygon" and (p.corners is None or len(p.corners) < 3 or p.sides < 3):
                raise MicrostructureFileError(f"{where}: a polygon needs at least 3 corners (sides = {p.sides})")
            if p.shape == "polyhedron" and (p.corners is None or len(p.corners) < 4):
                raise MicrostructureFileError(f"{where}: a polyhedron needs at least 4 corners")
            if len(p.center) != dim:
                raise MicrostructureFileError(f"{where}: a {len(p.center)}D particle in a {dim}D case")
            if not p.radius > 0:
                raise MicrostructureFileError(f"{where}: radius = {p.radius!r} must be positive")
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
            sides = _number(row, "sides", where, defaults["sides"])
            if shape == "polygon" and (sides != int(sides) or sides < 3):
                raise MicrostructureFileError(f"{where}: sides = {row.get('sides')!r}: a polygon has a whole number "
                                              "of sides, at least 3")
            try:
                p = make_particle(i, center, radius, shape, sides=int(sides),
                                  orientation=orientation, aspect=aspect,
                                  polyhedron=row.get("polyhedron") or defaults["polyhedron"],
                                  corner_radius=defaults.get("corner_radius", 0.0),
                                  coating=defaults.get("coating", 0.0),
                                  material=row.get("material") or "active")
            except (ValueError, TypeError) as exc:
                raise MicrostructureFileError(f"{where}: {exc}") from None
        if p.dim != dim:
            raise MicrostructureFileError(f"{where}: a {p.dim}D particle in a {dim}D case")
        if radius_bounds is not None:
            r_m = p.radius / scale
            if not radius_bounds[0] <= r_m <= radius_bounds[1]:
                raise MicrostructureFileError(f"{where}: radius {r_m:g} m is outside [{radius_bounds[0]:g}, "
                                              f"{radius_bounds[1]:g}] m")
        out.append(p)
    return out


# ----------------------------------------------------------------------------- .msh files
CELL_TYPES = {2: ("triangle", "triangle6", "quad", "quad9"), 3: ("tetra", "tetra10", "hexahedron", "hexahedron27")}


def msh_summary(path: str | Path) -> dict:
    """Dimension, physical groups and phases of a Gmsh mesh file (``.msh``) or geometry
    script (``.geo``, meshed here by Gmsh), checked against the ssbfrac convention
    (meshes/tags.py): every cell must carry a known cell tag. Physical groups named after
    the convention (``electrolyte``, ``top``, ``particle_3``, ...) take its tags whatever
    their numbers in the file (:func:`retag_by_name`)."""
    path = Path(path)
    if not path.is_file():
        raise MicrostructureFileError(f"{path}: not found (or not a regular file)")
    stat = path.stat()
    if stat.st_size > MAX_MESH_FILE_BYTES:
        raise MicrostructureFileError(f"{path}: {stat.st_size} bytes is too large for a mesh file "
                                      f"(at most {MAX_MESH_FILE_BYTES})")
    if path.suffix.lower() == ".geo":
        return dict(_geo_summary(str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return dict(_msh_summary(str(path.resolve()), stat.st_size, stat.st_mtime_ns))


def open_mesh_file(gmsh, path: str | Path, dim: int | None = None) -> None:
    """Load a ``.msh`` file, or a ``.geo`` script and mesh it (in ``dim`` dimensions, else
    those of its geometry), into the initialised Gmsh; the named physical groups take the
    convention's tags (:func:`retag_by_name`)."""
    gmsh.open(str(path))
    if Path(path).suffix.lower() == ".geo":
        gmsh.model.mesh.generate(dim or gmsh.model.getDimension())
    retag_by_name(gmsh)


def retag_by_name(gmsh) -> None:
    """Give every physical group named after the convention the convention's tag
    (meshes/tags.py: ``convention_tag``); unnamed groups keep their numbers, groups with
    another name are an error (MicrostructureFileError)."""
    groups = gmsh.model.getPhysicalGroups()
    if not groups:
        return
    top = max(d for d, _ in groups)
    moves = []
    for dim, tag in groups:
        name = gmsh.model.getPhysicalName(dim, tag)
        if not name:
            continue
        new = tags.convention_tag(name, cell=dim == top)
        if new is None:
            kind = "cell" if dim == top else "facet"
            raise MicrostructureFileError(
                f"physical group {name!r} ({dim}D, tag {tag}) is not a {kind} name of the ssbfrac convention "
                f"(meshes/tags.py: e.g. electrolyte, particle_3 for cells; left, right, bottom, top, interface_3 for "
                f"facets)")
        if new != tag:
            moves.append((dim, tag, new, name, gmsh.model.getEntitiesForPhysicalGroup(dim, tag)))
    if not moves:
        return
    gmsh.model.removePhysicalGroups([(d, t) for d, t, *_ in moves])
    taken = {(d, t) for d, t in gmsh.model.getPhysicalGroups()}
    for dim, old, new, name, entities in moves:
        if (dim, new) in taken:
            raise MicrostructureFileError(f"physical group {name!r} takes tag {new}, which another {dim}D group of "
                                          f"the file already has")
        gmsh.model.addPhysicalGroup(dim, list(entities), new, name)
        taken.add((dim, new))


@functools.lru_cache(maxsize=4)
def _geo_summary(path: str, size: int, mtime: int) -> dict:
    """A .geo script meshed by Gmsh (in this process) and summarised like a .msh file."""
    import tempfile

    import gmsh
    import meshio

    started = not gmsh.isInitialized()
    if started:
        gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        try:
            open_mesh_file(gmsh, path)
        except MicrostructureFileError as exc:
            raise MicrostructureFileError(f"{path}: {exc}") from None
        except Exception as exc:  # Gmsh's own errors
            raise MicrostructureFileError(f"{path}: Gmsh cannot mesh it ({exc})") from None
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "mesh.msh"
            gmsh.write(str(out))
            mesh = meshio.read(out, file_format="gmsh")
        return _analyse_mesh(mesh, Path(path))
    finally:
        gmsh.clear()
        if started:
            gmsh.finalize()


@functools.lru_cache(maxsize=4)
def _msh_summary(path: str, size: int, mtime: int) -> dict:
    import meshio

    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(64)
        fh.seek(max(0, size - 256))
        tail = fh.read()
    if not head.lstrip().startswith(b"$MeshFormat"):
        raise MicrostructureFileError(f"{path}: not a Gmsh mesh file (it does not start with $MeshFormat)")
    last = tail.rstrip().rsplit(b"\n", 1)[-1].strip()
    if not last.startswith(b"$End"):
        raise MicrostructureFileError(f"{path}: truncated (the last section is not closed by an $End... line)")
    try:
        mesh = meshio.read(path, file_format="gmsh")
    except Exception as exc:  # meshio raises many kinds
        raise MicrostructureFileError(f"{path}: cannot read the mesh ({type(exc).__name__}: {exc})") from None
    try:
        _retag_meshio(mesh, path)
        return _analyse_mesh(mesh, path)
    except MicrostructureFileError:
        raise
    except Exception as exc:  # a mesh meshio reads but that is malformed
        raise MicrostructureFileError(f"{path}: malformed mesh ({type(exc).__name__}: {exc})") from None


def _retag_meshio(mesh, path: Path) -> None:
    """:func:`retag_by_name` for a mesh read by meshio (its named groups are in field_data)."""
    phys = mesh.cell_data.get("gmsh:physical")
    if phys is None or not mesh.field_data:
        return
    top = max(int(v[1]) for v in mesh.field_data.values())
    remap = {}
    for name, (tag, dim) in ((n, (int(v[0]), int(v[1]))) for n, v in mesh.field_data.items()):
        new = tags.convention_tag(name, cell=dim == top)
        if new is None:
            raise MicrostructureFileError(f"{path}: physical group {name!r} is not a name of the ssbfrac convention "
                                          f"(meshes/tags.py)")
        remap[(dim, tag)] = new
    cell_dims = {"triangle": 2, "triangle6": 2, "quad": 2, "tetra": 3, "tetra10": 3, "hexahedron": 3,
                 "line": 1, "line3": 1, "vertex": 0}
    for k, (block, values) in enumerate(zip(mesh.cells, phys)):
        dim = cell_dims.get(block.type)
        if dim is None:
            continue
        phys[k] = np.array([remap.get((dim, int(v)), int(v)) for v in values], dtype=values.dtype)


def _analyse_mesh(mesh, path: Path) -> dict:
    if len(mesh.points) == 0 or not np.all(np.isfinite(mesh.points)):
        raise MicrostructureFileError(f"{path}: the mesh has no nodes, or coordinates that are not finite")
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
    cells = sum(len(b.data) for b in mesh.cells if b.type in CELL_TYPES[dim])
    return {"dimension": dim, "cells": int(cells), "nodes": int(len(mesh.points)),
            "cell_tags": sorted(cell_tags), "facet_tags": sorted(facet_tags),
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
