"""Gmsh OCC model of a composite cathode: boolean fragments, physical groups, size fields.

Tag convention (shared by every code that reads ssbfrac meshes; see ``meshes.tags``):

* cells: solid electrolyte ``1``; particle *i* ``1000 + i``.
* facets: sides left/right/bottom/top/back/front ``1..6``; the interface of
  particle *i* with the electrolyte ``1000 + i``.

Each cell and each tagged facet carries exactly one tag (DOLFINx requires it), so
"the active phase" is every cell tag >= 1000 and "the AM/SE interface" every facet tag
>= 1000; the physical-group names (``electrolyte``, ``particle_7``, ``interface_7``,
``left``, ...) are stored in the ``.msh`` file too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meshes import tags
from meshes.packing import Packing


@dataclass
class MeshSizes:
    size: float
    interface_size: float
    transition: float
    order: int = 1


def _add_particle_2d(occ, p) -> int:
    if p.shape == "circle":
        return occ.addDisk(p.center[0], p.center[1], 0.0, p.radius, p.radius)
    v = p.vertices()
    pts = [occ.addPoint(x, y, 0.0) for x, y in v]
    lines = [occ.addLine(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts))]
    loop = occ.addCurveLoop(lines)
    return occ.addPlaneSurface([loop])


def build_2d(gmsh, packing: Packing, sizes: MeshSizes) -> dict:
    """Create the OCC model of the current Gmsh model and mesh it.

    Returns a dict with the physical tags used (for the metadata file).
    """
    occ = gmsh.model.occ
    Lx, Ly = packing.box
    box = occ.addRectangle(0.0, 0.0, 0.0, Lx, Ly)
    surf = [_add_particle_2d(occ, p) for p in packing.particles]
    out, out_map = occ.fragment([(2, box)], [(2, s) for s in surf])
    occ.synchronize()

    # out_map[0] = pieces of the box, out_map[1 + i] = pieces of particle i
    particle_surfs = [sorted(t for d, t in out_map[1 + i] if d == 2) for i in range(len(surf))]
    in_particles = {t for ts in particle_surfs for t in ts}
    matrix_surfs = sorted(t for d, t in out if d == 2 and t not in in_particles)

    gmsh.model.addPhysicalGroup(2, matrix_surfs, tags.ELECTROLYTE, name="electrolyte")
    interface_curves: list[int] = []
    for i, ts in enumerate(particle_surfs):
        gmsh.model.addPhysicalGroup(2, ts, tags.particle(i), name=f"particle_{i}")
        bnd = gmsh.model.getBoundary([(2, t) for t in ts], oriented=False, combined=True)
        curves = sorted({abs(t) for d, t in bnd if d == 1})
        interface_curves.extend(curves)
        gmsh.model.addPhysicalGroup(1, curves, tags.interface(i), name=f"interface_{i}")

    eps = 1e-7 * max(Lx, Ly)
    sides = {
        "left": (-eps, -eps, -eps, eps, Ly + eps, eps),
        "right": (Lx - eps, -eps, -eps, Lx + eps, Ly + eps, eps),
        "bottom": (-eps, -eps, -eps, Lx + eps, eps, eps),
        "top": (-eps, Ly - eps, -eps, Lx + eps, Ly + eps, eps),
    }
    for name, bbox in sides.items():
        curves = [t for d, t in gmsh.model.getEntitiesInBoundingBox(*bbox, dim=1)]
        gmsh.model.addPhysicalGroup(1, curves, tags.SIDES[name], name=name)

    _size_field(gmsh, interface_curves, sizes)
    gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay: good triangles
    gmsh.model.mesh.generate(2)
    if sizes.order > 1:
        gmsh.model.mesh.setOrder(sizes.order)
    return {"interface_curves": len(interface_curves), "matrix_surfaces": len(matrix_surfs)}


def _size_field(gmsh, curves: list[int], sizes: MeshSizes) -> None:
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    f.setNumbers(dist, "CurvesList", curves)
    f.setNumber(dist, "Sampling", 200)
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", sizes.interface_size)
    f.setNumber(thr, "SizeMax", sizes.size)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", sizes.transition)
    f.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)


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
