"""Gmsh OCC model of a composite cathode (2D or 3D): shapes, boolean fragments, physical
groups, size fields, mesh, and measurements of the mesh.

The domain is the box [0, L_x] x [0, L_y] (x [0, L_z]), cut in x into the optional separator
layer, the composite region and the optional collector-side layer. Every particle (and
its coating) is added as an OCC shape; ``occ.fragment`` of the box pieces with all shapes
makes one conforming model in which every piece is classified by the shapes it lies in:
a particle (the lowest id wins where touching particles overlap), else a coating, else the
layer it lies in. With periodic lateral sides, a particle that crosses a side is added a
second time (shifted by the box size) and the pieces outside the box are removed; the
meshes of opposite sides are made periodic (``mesh.setPeriodic``), so the mesh stays
conforming across them.

Facets are classified by the pieces on their two sides (``model.getAdjacencies``); the
tags and names follow :mod:`meshes.tags`. Element sizes: ``interface_size`` on every
interface, growing linearly to ``size`` over ``transition``; ``corner_size`` around the
sharp corners of polygons and polyhedra; with coatings, at most the coating thickness on
the interfaces (but not below a third of ``interface_size``: thinner coatings get flatter
elements rather than many more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshes import tags
from meshes.geometry import Particle
from meshes.shapes import polyhedron_faces
from meshes.packing import Packing


@dataclass
class MeshSizes:
    size: float
    interface_size: float
    transition: float
    order: int = 1
    corner_size: float | None = None
    particle_size: float | None = None  # element size inside the particles, away from interfaces


# ----------------------------------------------------------------------------- shapes
def _add_polygon(occ, pts: np.ndarray) -> int:
    p = [occ.addPoint(x, y, 0.0) for x, y in pts]
    lines = [occ.addLine(p[i], p[(i + 1) % len(p)]) for i in range(len(p))]
    return occ.addPlaneSurface([occ.addCurveLoop(lines)])


def _add_rounded_polygon(occ, core: np.ndarray, rho: float) -> int:
    """The polygon ``core`` grown by a disc of radius rho: offset edges joined by arcs."""
    n = len(core)
    e = np.roll(core, -1, axis=0) - core
    normal = np.column_stack([e[:, 1], -e[:, 0]]) / np.linalg.norm(e, axis=1)[:, None]
    curves = []
    first = None
    prev_end = None
    for k in range(n):
        c = occ.addPoint(core[k, 0], core[k, 1], 0.0)
        a = core[k] + rho * normal[k - 1]
        b = core[k] + rho * normal[k]
        pa = prev_end if prev_end is not None else occ.addPoint(a[0], a[1], 0.0)
        if first is None:
            first = pa
        pb = occ.addPoint(b[0], b[1], 0.0)
        curves.append(occ.addCircleArc(pa, c, pb))
        nxt = core[(k + 1) % n] + rho * normal[k]
        pn = first if k == n - 1 else occ.addPoint(nxt[0], nxt[1], 0.0)
        curves.append(occ.addLine(pb, pn))
        prev_end = pn
    return occ.addPlaneSurface([occ.addCurveLoop(curves)])


def _add_polyhedron(occ, v: np.ndarray) -> int:
    pts = [occ.addPoint(*x) for x in v]
    lines: dict[tuple[int, int], int] = {}
    surfaces = []
    for face in polyhedron_faces(v):
        loop = []
        for a, b in zip(face, face[1:] + face[:1]):
            key = (min(a, b), max(a, b))
            if key not in lines:
                lines[key] = occ.addLine(pts[key[0]], pts[key[1]])
            loop.append(lines[key] if a < b else -lines[key])
        surfaces.append(occ.addPlaneSurface([occ.addCurveLoop(loop)]))
    return occ.addVolume([occ.addSurfaceLoop(surfaces)])


def _affine(R: np.ndarray, c: np.ndarray) -> list[float]:
    return [*R[0], c[0], *R[1], c[1], *R[2], c[2]]


def add_shape(occ, p: Particle, shift: np.ndarray, outer: bool = False) -> tuple[int, int]:
    """Add particle p (or its coated outline) moved by ``shift``; returns its (dim, tag)."""
    c = np.asarray(p.center) + shift
    t = p.coating if outer else 0.0
    if p.dim == 2:
        if p.shape == "circle":
            return 2, occ.addDisk(c[0], c[1], 0.0, p.radius + t, p.radius + t)
        if p.shape == "ellipse":
            a, b = (x + t for x in p.axes)
            return 2, occ.addDisk(c[0], c[1], 0.0, a, b, zAxis=[0, 0, 1],
                                  xAxis=[np.cos(p.angle), np.sin(p.angle), 0.0])
        core, _, rho = p.parts(outer)
        core = c + core @ p.R().T
        return 2, (_add_rounded_polygon(occ, core, rho) if rho > 0 else _add_polygon(occ, core))
    R = p.R()
    if p.shape == "sphere":
        return 3, occ.addSphere(c[0], c[1], c[2], p.radius + t)
    if p.shape == "ellipsoid":
        v = occ.addSphere(0.0, 0.0, 0.0, 1.0)
        occ.dilate([(3, v)], 0.0, 0.0, 0.0, *(a + t for a in p.axes))
        occ.affineTransform([(3, v)], _affine(R, c))
        return 3, v
    v = _add_polyhedron(occ, c + p.local_corners() @ R.T)
    if not outer or t == 0:
        return 3, v
    # coated polyhedron: the parallel body (offset faces, cylindrical edges, spherical
    # corners) from OCC's thick solid, rebuilt as a volume with outward orientation
    thick = occ.addThickSolid(v, [], t)
    occ.synchronize()
    loops = occ.getSurfaceLoops(thick[0][1])[1]
    shell = occ.addVolume([occ.addSurfaceLoop(list(loops[0]))])
    occ.remove(thick)
    occ.remove([(3, v)], recursive=True)
    return 3, shell


def periodic_shifts(p: Packing, particle: Particle) -> list[np.ndarray]:
    """Translations at which a particle appears in a box with periodic lateral sides: the
    particle itself and its images across every side that its coated outline crosses."""
    dim = p.dim
    options = []
    c = np.asarray(particle.center)
    reach = particle.bounding_radius(outer=True)
    for k in range(dim):
        opts = [0.0]
        if p.periodic[k]:
            L = p.box[k]
            if c[k] - reach < 0:
                opts.append(L)
            if c[k] + reach > L:
                opts.append(-L)
        options.append(opts)
    grids = np.meshgrid(*options, indexing="ij")
    return [np.array(s) for s in zip(*(g.ravel() for g in grids))]


# ----------------------------------------------------------------------------- the model
def build(gmsh, packing: Packing, sizes: MeshSizes) -> dict:
    """Create the OCC model of ``packing`` in the current Gmsh model, tag it and mesh it.
    Returns the physical groups made ({name: [dim, tag]}) and model facts."""
    dim = packing.dim
    layers = _add_layers(gmsh.model.occ, packing)
    shapes = [(kind, p.id, add_shape(gmsh.model.occ, p, shift, outer=kind == "coating"))
              for p in packing.particles for shift in periodic_shifts(packing, p)
              for kind in (("particle", "coating") if p.coating > 0 else ("particle",))]
    gmsh.model.occ.synchronize()
    label = _fragment_and_classify(gmsh, packing, layers, shapes)
    groups = _tag_cells(gmsh, dim, label)
    on_side = _sides(gmsh, packing)
    facet_groups, interfaces = _tag_facets(gmsh, dim, label, on_side)
    groups.update(facet_groups)
    if any(packing.periodic):
        _set_periodic(gmsh, packing, dim, on_side)
    corners = _sharp_corner_points(gmsh, packing)
    thickness = min((p.coating for p in packing.particles if p.coating > 0), default=0.0)
    matrix = sorted(t for t, (phase, _) in label.items() if phase not in ("active", "active_b"))
    _size_fields(gmsh, dim, interfaces, corners, thickness, sizes, matrix)
    if dim == 2:
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay
    else:
        # surfaces: Delaunay, robust on the sphere patches that periodic sides cut out (the
        # frontal algorithm leaves some of them without interior nodes); volumes: HXT
        gmsh.option.setNumber("Mesh.Algorithm", 5)
        gmsh.option.setNumber("Mesh.Algorithm3D", 10)
    gmsh.model.mesh.generate(dim)
    if sizes.order > 1:
        gmsh.model.mesh.setOrder(sizes.order)
    return {"groups": groups, "pieces": len(label), "sharp_corners": len(corners)}


def _add_layers(occ, packing: Packing) -> list[tuple[str, tuple[int, int]]]:
    """Box pieces (phase, (dim, tag)): separator, composite region, collector-side layer."""
    box = np.asarray(packing.box, float)
    x_sep = packing.region[0][0] if packing.region[0] else 0.0
    x_col = packing.region[1][0] if packing.region[1] else box[0]
    layers = []
    for phase, x0, x1 in (("separator", 0.0, x_sep), ("electrolyte", x_sep, x_col), ("collector_layer", x_col, box[0])):
        if x1 - x0 <= 0:
            continue
        if packing.dim == 2:
            layers.append((phase, (2, occ.addRectangle(x0, 0.0, 0.0, x1 - x0, box[1]))))
        else:
            layers.append((phase, (3, occ.addBox(x0, 0.0, 0.0, x1 - x0, box[1], box[2]))))
    return layers


def _fragment_and_classify(gmsh, packing: Packing, layers, shapes) -> dict[int, tuple[str, int]]:
    """Fragment the box pieces with all shapes, remove the pieces outside the box (parts of
    periodic images) and label every piece (phase, particle id or -1): a particle (the
    lowest id where touching particles overlap), else a coating, else its layer."""
    occ = gmsh.model.occ
    dim = packing.dim
    out, out_map = occ.fragment([dt for _, dt in layers], [dt for _, _, dt in shapes])
    occ.synchronize()
    layer_of = {t: phase for (phase, _), pieces in zip(layers, out_map[: len(layers)]) for d, t in pieces if d == dim}
    inside: dict[str, dict[int, set]] = {"particle": {}, "coating": {}}
    for (kind, pid, _), pieces in zip(shapes, out_map[len(layers):]):
        for d, t in pieces:
            if d == dim:
                inside[kind].setdefault(t, set()).add(pid)
    outside = [(dim, t) for d, t in out if d == dim and t not in layer_of]
    if outside:
        occ.remove(outside, recursive=True)
        occ.synchronize()
    material = {p.id: p.material for p in packing.particles}
    label = {}
    for t, phase in layer_of.items():
        if t in inside["particle"]:
            pid = min(inside["particle"][t])
            label[t] = (material[pid], pid)
        elif t in inside["coating"]:
            label[t] = ("coating", min(inside["coating"][t]))
        else:
            label[t] = (phase, -1)
    return label


def _tag_cells(gmsh, dim: int, label: dict) -> dict[str, list[int]]:
    cells: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for t, (phase, pid) in sorted(label.items()):
        if phase in ("active", "active_b"):
            tag, name = tags.particle(pid, phase), f"particle_{pid}"
        else:
            tag, name = tags.PHASE_CELLS[phase], phase
        cells.setdefault(tag, []).append(t)
        names[tag] = name
    for tag in sorted(cells):
        gmsh.model.addPhysicalGroup(dim, cells[tag], tag, name=names[tag])
    return {names[tag]: [dim, tag] for tag in sorted(cells)}


def _sides(gmsh, packing: Packing) -> dict[int, str]:
    """Facets on the outer sides: {facet tag: side name}."""
    dim = packing.dim
    box = np.append(np.asarray(packing.box, float), 0.0)[:3]
    eps = 1e-7 * box.max()
    on_side = {}
    for name in list(tags.SIDES)[: 2 * dim]:
        k = "xyz".index({"left": "x", "right": "x", "bottom": "y", "top": "y", "back": "z", "front": "z"}[name])
        x = 0.0 if name in ("left", "bottom", "back") else box[k]
        lo, hi = -eps * np.ones(3), box + eps
        lo[k], hi[k] = x - eps, x + eps
        for _, t in gmsh.model.getEntitiesInBoundingBox(*lo, *hi, dim=dim - 1):
            on_side[t] = name
    return on_side


def _tag_facets(gmsh, dim: int, label: dict, on_side: dict) -> tuple[dict, list[int]]:
    """Physical groups of the facets (sides, interfaces); returns them and the list of
    interface facets (for the size field)."""
    facets: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    interfaces = []
    for _, t in gmsh.model.getEntities(dim - 1):
        if t in on_side:
            tag, name = tags.SIDES[on_side[t]], on_side[t]
        else:
            up = [u for u in gmsh.model.getAdjacencies(dim - 1, t)[0] if u in label]
            tag, name = _facet_tag([label[u] for u in up])
            if tag is None:
                continue
            interfaces.append(t)
        facets.setdefault(tag, []).append(t)
        names[tag] = name
    for tag in sorted(facets):
        gmsh.model.addPhysicalGroup(dim - 1, facets[tag], tag, name=names[tag])
    return {names[tag]: [dim - 1, tag] for tag in sorted(facets)}, interfaces


def _sharp_corner_points(gmsh, packing: Packing) -> list[int]:
    """Model points at the sharp corners of uncoated polygons and polyhedra."""
    box = np.asarray(packing.box, float)
    eps = 1e-7 * box.max()
    points = set()
    for p in packing.particles:
        if p.shape not in ("polygon", "polyhedron") or p.corner_radius > 0 or p.coating > 0:
            continue
        for shift in periodic_shifts(packing, p):
            for c in p.vertices() + shift:
                c3 = np.append(c, [0.0] * (3 - len(c)))
                points.update(t for _, t in gmsh.model.getEntitiesInBoundingBox(*(c3 - eps), *(c3 + eps), dim=0))
    return sorted(points)


def _facet_tag(sides: list[tuple[str, int]]) -> tuple[int | None, str]:
    """Tag and name of an inner facet from the (phase, particle id) of the pieces on its
    sides; (None, '') for facets inside one phase."""
    if len(sides) != 2:
        return None, ""
    (pa, ia), (pb, ib) = sorted(sides, key=lambda s: (s[1] < 0, s))
    active = ("active", "active_b")
    if pa in active and pb in active:
        return (tags.CONTACT, "contact") if ia != ib else (None, "")
    if pa in active:
        return tags.interface(ia), f"interface_{ia}"
    kinds = {pa, pb}
    if "coating" in kinds and len(kinds) == 2:
        return tags.COATING_INTERFACE, "coating_interface"
    if "separator" in kinds and len(kinds) == 2:
        return tags.SEPARATOR_INTERFACE, "separator_interface"
    if "collector_layer" in kinds and len(kinds) == 2:
        return tags.COLLECTOR_INTERFACE, "collector_interface"
    return None, ""


def _set_periodic(gmsh, packing: Packing, dim: int, on_side: dict[int, str]) -> None:
    """Make the mesh of each periodic 'high' side (top, front) a translated copy of the
    mesh of the opposite side, facet by facet (matched by their bounding boxes)."""
    pairs = {1: ("bottom", "top"), 2: ("back", "front")}
    for k, (low, high) in pairs.items():
        if k >= dim or not packing.periodic[k]:
            continue
        L = packing.box[k]
        masters = [t for t, s in on_side.items() if s == low]
        boxes = {t: np.array(gmsh.model.getBoundingBox(dim - 1, t)) for t in masters}
        shift = np.zeros(6)
        shift[k] = shift[k + 3] = L
        affine = np.eye(4)
        affine[k, 3] = L
        tol = 1e-6 * max(packing.box)
        for t in (t for t, s in on_side.items() if s == high):
            bb = np.array(gmsh.model.getBoundingBox(dim - 1, t))
            match = [m for m, mb in boxes.items() if np.abs(mb + shift - bb).max() < tol]
            if len(match) != 1:
                raise RuntimeError(f"periodic sides: no unique match for facet {t} on {high}")
            gmsh.model.mesh.setPeriodic(dim - 1, [t], match, affine.ravel().tolist())


def _size_fields(gmsh, dim, interfaces, corners, thickness, sizes: MeshSizes, matrix: list[int]) -> None:
    """interface_size on the interfaces (at most the coating thickness, but not below a
    third of interface_size), growing to size over transition; corner_size at corners.
    With particle_size > size, the particles (``matrix`` lists the other entities) grow to
    particle_size instead: the matrix keeps its uniform size (cracks may run anywhere in it)
    while the particle interiors, where nothing localises, are coarse."""
    f = gmsh.model.mesh.field
    fields = []
    coarse = sizes.particle_size is not None and sizes.particle_size > sizes.size
    if coarse:
        from dataclasses import replace

        const = f.add("Constant")
        f.setNumbers(const, "SurfacesList" if dim == 2 else "VolumesList", matrix)
        f.setNumber(const, "VIn", sizes.size)
        f.setNumber(const, "VOut", sizes.particle_size)
        f.setNumber(const, "IncludeBoundary", 1)
        sizes = replace(sizes, size=sizes.particle_size)
        fields.append(const)
    if interfaces:
        h = sizes.interface_size if thickness == 0 else max(min(sizes.interface_size, thickness),
                                                             sizes.interface_size / 3)
        dist = f.add("Distance")
        f.setNumbers(dist, "CurvesList" if dim == 2 else "SurfacesList", interfaces)
        f.setNumber(dist, "Sampling", 200 if dim == 2 else 30)
        fields.append(_threshold(f, dist, h, sizes))
    if corners and sizes.corner_size is not None and sizes.corner_size < sizes.interface_size:
        dist = f.add("Distance")
        f.setNumbers(dist, "PointsList", corners)
        fields.append(_threshold(f, dist, sizes.corner_size, sizes))
    if fields:
        m = f.add("Min")
        f.setNumbers(m, "FieldsList", fields)
        f.setAsBackgroundMesh(m)
    gmsh.option.setNumber("Mesh.MeshSizeMax", sizes.size)  # (particle_size when coarse)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)


def _threshold(f, dist: int, size_min: float, sizes: MeshSizes) -> int:
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", size_min)
    f.setNumber(thr, "SizeMax", sizes.size)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", sizes.transition)
    return thr


# ----------------------------------------------------------------------------- measurements
def group_measures(gmsh) -> dict[str, dict]:
    """Length/area/volume of every physical group, summed over its mesh elements (exact
    quadrature of the element Jacobians, so curved second-order cells count right)."""
    out = {}
    for d, tag in gmsh.model.getPhysicalGroups():
        name = gmsh.model.getPhysicalName(d, tag) or f"{d}:{tag}"
        total = 0.0
        for ent in gmsh.model.getEntitiesForPhysicalGroup(d, tag):
            types, _, _ = gmsh.model.mesh.getElements(d, int(ent))
            for et in types:
                pts, w = gmsh.model.mesh.getIntegrationPoints(int(et), "Gauss4")
                _, det, _ = gmsh.model.mesh.getJacobians(int(et), pts, int(ent))
                total += float(np.sum(np.abs(det.reshape(-1, len(w))) * w))
        out[name] = {"dim": int(d), "tag": int(tag), "measure": total}
    return out


def mesh_statistics(gmsh, dim: int) -> dict:
    """Cell count and quality (Gmsh's minSICN: 1 ideal, <= 0 inverted) of the mesh."""
    types, elem_tags, _ = gmsh.model.mesh.getElements(dim)
    all_tags = np.concatenate(elem_tags) if len(elem_tags) else np.zeros(0, dtype=np.int64)
    q = gmsh.model.mesh.getElementQualities(all_tags, "minSICN") if all_tags.size else np.zeros(0)
    nodes = gmsh.model.mesh.getNodes()[0]
    return {
        "cells": int(all_tags.size),
        "nodes": int(len(nodes)),
        "quality_min": float(q.min()) if q.size else None,
        "quality_mean": float(q.mean()) if q.size else None,
    }


def mesh_report(gmsh, dim: int) -> dict:
    """Measures of every physical group, the fraction of each phase (of the whole domain
    and, for the active material, of the composite region) and the interface measures,
    all measured on the mesh."""
    groups = group_measures(gmsh)
    phase_measure: dict[str, float] = {}
    for g in groups.values():
        if g["dim"] == dim:
            ph = tags.phase_of_tag(g["tag"])
            phase_measure[ph] = phase_measure.get(ph, 0.0) + g["measure"]
    total = sum(phase_measure.values())
    composite = total - phase_measure.get("separator", 0.0) - phase_measure.get("collector_layer", 0.0)
    am = phase_measure.get("active", 0.0) + phase_measure.get("active_b", 0.0)
    iface = {"particle_surfaces": sum(g["measure"] for n, g in groups.items() if n.startswith("interface_"))}
    for name in tags.INTERFACE_FACETS:
        if name in groups:
            iface[name] = groups[name]["measure"]
    return {
        "measures": {n: g["measure"] for n, g in groups.items()},
        "phase_measures": phase_measure,
        "phase_fractions": {k: v / total for k, v in phase_measure.items()},
        "am_fraction_of_composite": am / composite if composite > 0 else 0.0,
        "domain_measure": total,
        "interfaces": iface,
    }
