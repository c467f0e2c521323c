"""Crack measures of a damage field: the history columns of fracture.

:class:`CrackMeasures` integrates, at a state, the fracture energy and the regularised
crack length (over the crack-surface region: the damageable phases and the boundary
band), the damaged fraction (d >= :data:`DAMAGED`, of the damageable phases), and in 2D
the sharp crack length (half the d = 0.5 iso-line), the band-width ratio and the number
of crack segments. Areas and iso-lines are exact on the P1 damage field.
"""

from __future__ import annotations

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

from solver.physics import cohesive as cz
from solver.physics import phasefield as pf

#: history columns of the damage measures, in order
FRACTURE_COLUMNS = ["fracture_energy", "crack_length", "crack_length_sharp", "damaged_fraction", "band_width_ratio",
                    "crack_segments", "d_max"]
#: the damage level of the "damaged" measures (damaged fraction, band width, crack segments)
DAMAGED = 0.9


class CrackMeasures:
    """Forms and cell sets built once; :meth:`values` evaluates them (collective).

    Args:
        d: the damage (P1); chi, chi_s: damageable and crack-surface indicators (DG0);
        Gc, ell: DG0 fields; model: the phase-field model; ell_ref: the ell of the
        1D-profile yardstick; dx: the integration measure of the energy forms."""

    def __init__(self, d: fem.Function, chi, chi_s, Gc, ell, model: str, ell_ref: float, dx):
        self.d = d
        self.domain = d.function_space.mesh
        self.comm = self.domain.comm
        self.gdim = self.domain.geometry.dim
        self._f_fracture = fem.form(pf.fracture_density(d, Gc, ell, chi_s, model) * dx)
        self._f_crack = fem.form(pf.crack_density(d, ell, chi_s, model) * dx)
        damaged = ufl.conditional(ufl.ge(d, DAMAGED), 1.0, 0.0)  # 3D: by quadrature
        self._f_damaged = fem.form(chi * damaged * ufl.dx(metadata={"quadrature_degree": 4}))
        self.damageable_volume = self.comm.allreduce(fem.assemble_scalar(fem.form(chi * ufl.dx)), op=MPI.SUM)
        n = self.domain.topology.index_map(self.domain.topology.dim).size_local
        self._damageable_cells = np.flatnonzero(chi.x.array[:n] > 0.5).astype(np.int32)
        self._surface_cells = np.flatnonzero(chi_s.x.array[:n] > 0.5).astype(np.int32)
        #: width of the d >= DAMAGED region of the optimal 1D profile (the localisation yardstick)
        self.profile_width = cz.profile_width(model, ell_ref, DAMAGED)

    def columns(self) -> list[str]:
        return [c for c in FRACTURE_COLUMNS if self.gdim == 2 or c not in ("crack_length_sharp", "band_width_ratio")]

    def values(self) -> dict:
        asum = lambda f: self.comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM)  # noqa: E731
        out = self._localisation()
        out.update({
            "fracture_energy": asum(self._f_fracture),
            "crack_length": asum(self._f_crack),
            "crack_segments": crack_components(self.domain, self.d, DAMAGED, self._surface_cells),
            "d_max": self.comm.allreduce(float(self.d.x.array.max()) if self.d.x.array.size else 0.0, op=MPI.MAX),
        })
        return out

    def _localisation(self) -> dict:
        """Damaged fraction; in 2D also the sharp crack length and the band-width ratio:
        (damaged area / sharp length) over the width of the same region in the optimal 1D
        profile (1 for a crack as localised as in 1D; 0 before any crack)."""
        if self.gdim != 2:
            return {"damaged_fraction": self.comm.allreduce(fem.assemble_scalar(self._f_damaged), op=MPI.SUM)
                    / self.damageable_volume}
        sharp = 0.5 * isoline_length_2d(self.domain, self.d, 0.5)
        area = superlevel_area_2d(self.domain, self.d, DAMAGED, self._surface_cells)
        area_chi = superlevel_area_2d(self.domain, self.d, DAMAGED, self._damageable_cells)
        ratio = area / sharp / self.profile_width if sharp > 0.05 * self.profile_width and area > 0 else 0.0
        return {"crack_length_sharp": sharp, "damaged_fraction": area_chi / self.damageable_volume,
                "band_width_ratio": ratio}


def superlevel_area_2d(domain, d: fem.Function, level: float, cells: np.ndarray) -> float:
    """Exact area of {d >= level} of a P1 field over the given owned triangles (global).

    Per triangle with vertex values sorted v0 >= v1 >= v2: one vertex above the level
    cuts off a corner triangle of area fraction t01 t02 (t_ij = (v_i - level)/(v_i - v_j));
    two above leave 1 - s20 s21 with s2j = (level - v2)/(v_j - v2)."""
    if len(cells) == 0:
        return domain.comm.allreduce(0.0, op=MPI.SUM)
    x = domain.geometry.x[:, :2]
    p = x[domain.geometry.dofmap[cells]]
    area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
                        - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    v = -np.sort(-d.x.array[d.function_space.dofmap.list[cells]], axis=1)
    k = (v >= level).sum(axis=1)
    frac = (k == 3).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        one = (v[:, 0] - level) ** 2 / ((v[:, 0] - v[:, 1]) * (v[:, 0] - v[:, 2]))
        two = 1.0 - (level - v[:, 2]) ** 2 / ((v[:, 0] - v[:, 2]) * (v[:, 1] - v[:, 2]))
    frac = np.where(k == 1, one, np.where(k == 2, two, frac))
    return domain.comm.allreduce(float((area * frac).sum()), op=MPI.SUM)


def isoline_length_2d(domain, d: fem.Function, level: float) -> float:
    """Length of the level set {d = level} of a P1 field on a triangle mesh (global)."""
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    c2v = domain.geometry.dofmap[:n]
    x = domain.geometry.x[:, :2]
    dofs = d.function_space.dofmap.list[:n]
    vals = d.x.array[dofs]  # (n, 3)
    if vals.size == 0:
        return domain.comm.allreduce(0.0, op=MPI.SUM)
    pts = x[c2v]  # (n, 3, 2)
    above = vals >= level
    k = above.sum(axis=1)
    cut = (k == 1) | (k == 2)
    total = 0.0
    if np.any(cut):
        v = vals[cut]
        p = pts[cut]
        segs = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            va, vb = v[:, a], v[:, b]
            crosses = (va >= level) != (vb >= level)
            t = np.where(crosses, (level - va) / np.where(crosses, vb - va, 1.0), 0.0)
            q = p[:, a] + t[:, None] * (p[:, b] - p[:, a])
            segs.append((crosses, q))
        # each cut triangle has exactly two crossing edges
        crossing = np.stack([s[0] for s in segs], axis=1)
        qs = np.stack([s[1] for s in segs], axis=1)  # (m, 3, 2)
        idx = np.argsort(~crossing, axis=1, kind="stable")[:, :2]
        q0 = np.take_along_axis(qs, idx[:, 0, None, None].repeat(2, axis=2), axis=1)[:, 0]
        q1 = np.take_along_axis(qs, idx[:, 1, None, None].repeat(2, axis=2), axis=1)[:, 0]
        total = float(np.linalg.norm(q1 - q0, axis=1).sum())
    return domain.comm.allreduce(total, op=MPI.SUM)


def crack_components(domain, d: fem.Function, level: float, cells: np.ndarray | None = None) -> int:
    """Number of connected components of the cells whose vertices all have d >= level
    (cells sharing a vertex are connected). Gathered to rank 0; the count is broadcast."""
    tdim = domain.topology.dim
    n = domain.topology.index_map(tdim).size_local
    dofs = d.function_space.dofmap.list[:n]
    vals = d.x.array[dofs]
    mask = vals.min(axis=1) >= level
    if cells is not None:
        keep = np.zeros(n, dtype=bool)
        keep[cells[cells < n]] = True
        mask &= keep
    imap = d.function_space.dofmap.index_map
    glob = imap.local_to_global(dofs[mask].ravel()).reshape(-1, dofs.shape[1]) if mask.any() else np.zeros((0, dofs.shape[1]), dtype=np.int64)
    allg = domain.comm.gather(glob, root=0)
    count = 0
    if domain.comm.rank == 0:
        g = np.concatenate(allg) if allg else np.zeros((0, 3), dtype=np.int64)
        if len(g):
            from scipy.sparse import coo_matrix
            from scipy.sparse.csgraph import connected_components

            verts, inv = np.unique(g.ravel(), return_inverse=True)
            inv = inv.reshape(g.shape)
            m = len(g)
            rows = np.repeat(np.arange(m), g.shape[1])
            inc = coo_matrix((np.ones(rows.size), (rows, inv.ravel())), shape=(m, len(verts))).tocsr()
            adj = inc @ inc.T
            count, _ = connected_components(adj, directed=False)
    return int(domain.comm.bcast(count, root=0))
