"""Where and how the material may crack: the cell fields of the damage problem.

From a case (internal units) and the tagged mesh, :func:`failure_fields` fills

* ``chi``: 1 in the damageable phases (``fracture.phases``), where damage softens the
  material and the driving force acts;
* ``chi_s``: 1 where crack surface costs energy: ``chi`` and a band of the neighbouring
  phases as wide as the damage profile's half-support (``cohesive.SUPPORT`` ell). A crack
  lying on a phase boundary then pays its whole profile, G_c per unit length, where the
  damageable side alone would charge half of it;
* ``Gc``, ``ell`` and, for the cohesive model, ``a1``: per phase from its failure data;
  with ``fracture.interface``, the cells within the band on both sides of the boundary
  take the interface's toughness (and, cohesive, its strength).

Distances to the phase boundary are measured from cell midpoints to the boundary's
vertices and edge midpoints (the degrees of freedom of P2 that touch cells of both
kinds), gathered on every rank: exact to a quarter of the boundary's element size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from dolfinx import fem, la
from dolfinx.mesh import compute_midpoints
from mpi4py import MPI
from scipy.spatial import cKDTree

from meshes.tags import phase_of_tags
from solver.physics import cohesive as cz


@dataclass
class FailureFields:
    chi: fem.Function
    chi_s: fem.Function
    Gc: fem.Function
    ell: fem.Function
    a1: fem.Function
    resolved: dict = field(default_factory=dict)  # per damageable phase (cohesive.resolve_failure)
    bands: dict = field(default_factory=dict)  # the boundary band and the interface band


def phase_boundary_distance(domain, inside: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Distance from the midpoints of ``cells`` to the boundary between the cells with
    ``inside`` true and the others (``inside`` over local cells, ghosts included);
    inf when there is no such boundary. Collective."""
    comm = domain.comm
    P = fem.functionspace(domain, ("Lagrange", 2))
    n = domain.topology.index_map(domain.topology.dim).size_local
    dofs = P.dofmap.list[:n]
    touch_in, touch_out = fem.Function(P), fem.Function(P)
    touch_in.x.array[dofs[inside[:n]].ravel()] = 1.0
    touch_out.x.array[dofs[~inside[:n]].ravel()] = 1.0
    for f in (touch_in, touch_out):
        f.x.scatter_reverse(la.InsertMode.add)
        f.x.scatter_forward()
    owned = P.dofmap.index_map.size_local
    on = (touch_in.x.array[:owned] > 0) & (touch_out.x.array[:owned] > 0)
    pts = P.tabulate_dof_coordinates()[:owned][on]
    pts = np.concatenate(comm.allgather(pts)) if comm.size > 1 else pts
    if len(pts) == 0 or len(cells) == 0:
        return np.full(len(cells), np.inf)
    mid = compute_midpoints(domain, domain.topology.dim, cells)
    return cKDTree(pts).query(mid)[0]


def failure_fields(case, domain, cell_tags, Q: fem.FunctionSpace) -> FailureFields:
    """The damage problem's cell fields for a case in internal units (see the module)."""
    fr = case.fracture
    ff = FailureFields(*(fem.Function(Q, name=n) for n in ("damageable", "crack_surface", "Gc", "ell", "a1")))
    ph = phase_of_tags(cell_tags.values)
    resolved = {}
    for phase in fr.phases:
        mat = case.materials.of(phase)
        r = cz.resolve_failure(fr.model, mat.E, mat.nu, mat.fracture, fr.softening)
        resolved[phase] = r
        cells = cell_tags.indices[ph == phase]
        ff.chi.x.array[cells] = 1.0
        ff.Gc.x.array[cells] = r["Gc"]
        ff.ell.x.array[cells] = r["ell"]
        ff.a1.x.array[cells] = r.get("a1", 0.0)
    ff.chi.x.scatter_forward()
    ff.chi_s.x.array[:] = ff.chi.x.array
    # the neighbouring phases' band: the surface energy of the nearest damageable phase
    # (the electrolyte's when it cracks: the phase boundaries are then its interfaces)
    main = resolved["electrolyte"] if "electrolyte" in resolved else next(iter(resolved.values()))
    ell_ref = max(r["ell"] for r in resolved.values())
    support = cz.SUPPORT[fr.model] * ell_ref
    inside = ff.chi.x.array > 0.5
    all_cells = np.arange(len(inside), dtype=np.int32)
    dist = phase_boundary_distance(domain, inside, all_cells)
    outer = (~inside) & (dist <= support)
    ff.chi_s.x.array[outer] = 1.0
    ff.Gc.x.array[outer] = main["Gc"]
    ff.ell.x.array[ff.ell.x.array == 0.0] = ell_ref  # ell must stay positive in the forms
    ff.a1.x.array[~inside] = 1.0  # g(d) is not used there but must stay finite at d = 1
    bands = {"boundary_band": {"width": support, "cells": _count(domain, outer)}}
    if fr.interface is not None and "electrolyte" in fr.phases:
        se_side = fr.interface.width if fr.interface.width is not None else support
        band = (inside & (dist <= se_side)) | outer
        ff.Gc.x.array[band] = fr.interface.Gc
        entry = {"Gc": fr.interface.Gc, "width": se_side, "cells": _count(domain, band)}
        if fr.model == "cohesive":
            se = main
            f_t = fr.interface.strength if fr.interface.strength is not None else se["strength"]
            ff.a1.x.array[inside & band] = cz.a1(se["E_c"], fr.interface.Gc, f_t, se["ell"])
            entry["strength"] = f_t
        bands["interface_band"] = entry
    for f in (ff.chi_s, ff.Gc, ff.ell, ff.a1):
        f.x.scatter_forward()
    ff.resolved, ff.bands = resolved, bands
    return ff


def fixed_damage_dofs(D: fem.FunctionSpace, chi_s: fem.Function) -> np.ndarray:
    """Damage DOFs touched only by cells where crack surface costs nothing: held at d = 0.
    A ghost DOF may be free on its owner only, so the ranks agree through a scatter."""
    domain = D.mesh
    tdim = domain.topology.dim
    domain.topology.create_connectivity(tdim, tdim)
    free = fem.locate_dofs_topological(D, tdim, np.flatnonzero(chi_s.x.array > 0.5).astype(np.int32))
    marker = fem.Function(D)
    marker.x.array[free] = 1.0
    marker.x.scatter_reverse(la.InsertMode.add)
    marker.x.scatter_forward()
    return np.flatnonzero(marker.x.array < 0.5).astype(np.int32)


def _count(domain, mask: np.ndarray) -> int:
    n = domain.topology.index_map(domain.topology.dim).size_local
    return int(domain.comm.allreduce(int(mask[:n].sum()), op=MPI.SUM))
