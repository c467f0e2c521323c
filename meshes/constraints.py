"""The constraints of a packing and the penalty energy that removes their violations.

Gaps between particles (bounded from below by support functions, :mod:`meshes.separation`),
distances to the sides and layers, depth of the cuts by periodic sides: each violation v
enters the energy 1/2 sum v^2, minimised with FIRE over the centres and rotations by
:func:`meshes.packing.pack`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from meshes import separation as sep
from meshes import shapes
from meshes.geometry import Particle

if TYPE_CHECKING:
    from meshes.packing import PackingSpec

#: a periodic side that cuts a particle cuts at least this fraction of its bounding radius
#: deep (and at least boundary_gap), so that the cut pieces are meshed with several elements
MIN_CUT = 0.15


class ConstraintProblem:
    """Arrays and constraint evaluation of one packing problem (state: centres C, rotations
    R, scale s)."""

    def __init__(self, spec: PackingSpec, parts: list[Particle]):
        self.spec = spec
        self.dim = spec.dim
        self.n = len(parts)
        self.lo, self.hi = spec.region
        self.L = np.asarray(spec.box, float)
        self.periodic = np.array(spec.periodic_axes)
        self.local = sep.BodyArrays.local(parts)
        self.bound = np.array([p.radius for p in parts])
        self.round = np.array([p.shape in ("circle", "sphere") for p in parts])
        self.rotate = ~self.round & (spec.orientation == "random")
        self.r_mean = float(self.bound.mean())
        self.margin = 2e-3 * self.r_mean
        self.smooth = 0.02 * self.r_mean  # corners this close to a support plane share it (torques)
        self._warm_keys: np.ndarray | None = None  # pair keys i * n + j and their last directions
        self._warm_dirs: np.ndarray | None = None
        self.g, self.bg, self.o, self.t = spec.min_gap, spec.boundary_gap, spec.overlap, spec.coating
        self.cross = (lambda a, b: a[..., 0] * b[..., 1] - a[..., 1] * b[...,0]) if self.dim == 2 else np.cross

    # -------------------------------------------------------------- pairs
    def pairs(self, C: np.ndarray, s: float, reach: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs (i < j) whose bounding balls are closer than ``reach``, and the
        centre offsets c_j - c_i (minimum image across periodic sides)."""
        box = np.where(self.periodic, self.L, 4 * self.L.max() + 4 * reach + 1.0)
        pts = np.where(self.periodic, np.mod(C, self.L), C)
        tree = cKDTree(pts, boxsize=box)
        cut = 2 * s * self.bound.max() + reach
        ij = tree.query_pairs(cut, output_type="ndarray")
        if len(ij) == 0:
            return np.zeros((0, 2), dtype=int), np.zeros((0, self.dim))
        ij = ij[np.lexsort((ij[:, 1], ij[:, 0]))]
        d = C[ij[:, 1]] - C[ij[:, 0]]
        d -= np.where(self.periodic, self.L * np.round(d / self.L), 0.0)
        near = np.linalg.norm(d, axis=1) < s * (self.bound[ij[:, 0]] + self.bound[ij[:, 1]]) + reach
        return ij[near], d[near]

    def pair_values(self, body: sep.BodyArrays, ij: np.ndarray, d: np.ndarray, fine: bool = False,
                    warm: bool = False):
        """Lower bounds f of the signed distances of pairs, their directions n (from i to j)
        and the support arms of i (along n) and j (along -n).

        ``warm``: start from each pair's direction of the previous call; a pair whose old
        direction still proves the gap needs no search."""
        m = len(ij)
        f = np.empty(m)
        n = np.empty((m, self.dim))
        both_round = self.round[ij[:, 0]] & self.round[ij[:, 1]]
        if both_round.any():
            k = np.flatnonzero(both_round)
            dist = np.linalg.norm(d[k], axis=1)
            n[k] = d[k] / np.where(dist > 0, dist, 1.0)[:, None]
            f[k] = dist - body.rho[ij[k, 0]] - body.rho[ij[k, 1]]
        k = np.flatnonzero(~both_round)
        if len(k):
            keys = ij[k, 0] * self.n + ij[k, 1]
            cold = np.ones(len(k), dtype=bool)
            if warm and self._warm_keys is not None and len(self._warm_keys):
                pos = np.minimum(np.searchsorted(self._warm_keys, keys), len(self._warm_keys) - 1)
                hit = np.flatnonzero(self._warm_keys[pos] == keys)
                if len(hit):
                    kk = k[hit]
                    nh = self._warm_dirs[pos[hit]]
                    a, b = ij[kk, 0], ij[kk, 1]
                    fh = (np.einsum("md,md->m", d[kk], nh) - body.support(a, nh[:, None])[0][:, 0]
                          - body.support(b, -nh[:, None])[0][:, 0])
                    done = fh >= self.g + self.margin
                    f[kk[done]], n[kk[done]] = fh[done], nh[done]
                    redo = ~done
                    if redo.any():
                        f[kk[redo]], n[kk[redo]] = _best_direction(body, a[redo], b[redo], d[kk[redo]], self.dim,
                                                                   False, warm=nh[redo])
                    cold[hit] = False
            kc = k[cold]
            if len(kc):
                f[kc], n[kc] = _best_direction(body, ij[kc, 0], ij[kc, 1], d[kc], self.dim, fine)
            if warm:
                order = np.argsort(keys)
                self._warm_keys, self._warm_dirs = keys[order], n[k][order]
        _, arm_i = body.support(ij[:, 0], n[:, None, :], self.smooth)
        _, arm_j = body.support(ij[:, 1], -n[:, None, :], self.smooth)
        return f, n, arm_i[:, 0], arm_j[:, 0]

    # -------------------------------------------------------------- one relaxation sweep
    def violations(self, C, R, s, fine=False):
        """Every violated constraint as arrays: body i, body j (-1 for one-body constraints),
        violation v > 0, direction n, arms a_i, a_j, and the worst violation."""
        body = sep.BodyArrays.world(self.local, R, s)
        m = self.margin
        rows_i, rows_j, vs, ns, ai, aj = [], [], [], [], [], []
        # particle pairs
        reach = max(self.g, 0.0) + 2 * m
        ij, d = self.pairs(C, s, reach)
        if len(ij):
            f, n, arm_i, arm_j = self.pair_values(body, ij, d, fine, warm=not fine)
            if self.o > 0:
                # touching pairs keep an overlap between o/2 and o; a pair too close to be apart
                # and too shallow to touch is pushed apart
                v = np.where(f < -0.5 * self.o - m, -self.o + m - f, self.g + m - f)
            else:
                v = self.g + m - f
            bad = v > 0
            rows_i.append(ij[bad, 0]); rows_j.append(ij[bad, 1]); vs.append(v[bad]); ns.append(n[bad])
            ai.append(arm_i[bad]); aj.append(arm_j[bad])
        # sides
        idx = np.arange(self.n)
        for k in range(self.dim):
            e = np.zeros(self.dim)
            e[k] = 1.0
            h_hi, a_hi = body.support(idx, np.broadcast_to(e, (self.n, 1, self.dim)).copy(), self.smooth)
            h_lo, a_lo = body.support(idx, np.broadcast_to(-e, (self.n, 1, self.dim)).copy(), self.smooth)
            lo_ext, hi_ext = C[:, k] - h_lo[:, 0], C[:, k] + h_hi[:, 0]
            if not self.periodic[k]:
                for val, sign, arm in ((lo_ext - self.lo[k], 1.0, a_lo[:, 0]), (self.hi[k] - hi_ext, -1.0, a_hi[:, 0])):
                    v = self.bg + m - val
                    bad = v > 0
                    rows_i.append(idx[bad]); rows_j.append(np.full(bad.sum(), -1)); vs.append(v[bad])
                    ns.append(np.tile(sign * e, (bad.sum(), 1))); ai.append(arm[bad]); aj.append(arm[bad])
                continue
            # periodic side: a particle (and its coating) keeps boundary_gap from a side it does not
            # cross, and a side that crosses it cuts at least min_cut deep on both sides
            cut = np.maximum(self.bg, MIN_CUT * s * self.bound)
            exts = [(lo_ext, a_lo[:, 0], -cut, self.bg), (hi_ext, a_hi[:, 0], -self.bg, cut)]
            if self.t > 0:
                exts += [(lo_ext - self.t, a_lo[:, 0], -cut, self.bg), (hi_ext + self.t, a_hi[:, 0], -self.bg, cut)]
            for u, arm, below, above in exts:
                w = u - self.L[k] * np.round(u / self.L[k])
                up = w - (below - m) >= (above + m) - w  # nearer to the upper edge of the forbidden band
                v = np.where(up, above + m - w, w - (below - m))
                bad = (w > below - m) & (w < above + m) & (v > 0)
                sign = np.where(up[bad], 1.0, -1.0)
                rows_i.append(idx[bad]); rows_j.append(np.full(bad.sum(), -1)); vs.append(v[bad])
                ns.append(sign[:, None] * e); ai.append(arm[bad]); aj.append(arm[bad])
        cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)  # noqa: E731
        out = (cat(rows_i, (0,)).astype(int), cat(rows_j, (0,)).astype(int), cat(vs, (0,)),
               cat(ns, (0, self.dim)), cat(ai, (0, self.dim)), cat(aj, (0, self.dim)))
        worst = float(out[2].max()) if len(out[2]) else 0.0
        return out, worst

    def forces(self, C, R, s, cons):
        """Generalised forces of the penalty energy U = 1/2 sum v^2 over the violated
        constraints: F = sum v J for translations, torques / inertia for rotations."""
        i, j, v, n, ai, aj = cons
        pair = j >= 0
        jj = j[pair]
        F = np.zeros_like(C)
        np.add.at(F, i, v[:, None] * np.where(pair[:, None], -n, n))
        np.add.at(F, jj, v[pair, None] * n[pair])
        T = np.zeros((self.n,) if self.dim == 2 else (self.n, 3))
        if self.rotate.any():
            col = (lambda x: x) if self.dim == 2 else (lambda x: x[:, None])  # noqa: E731
            ri = np.where(col(pair), -1.0, 1.0) * self.cross(ai, n)  # body i: -(a_i x n), one-body: a x n
            np.add.at(T, i, col(v * self.rotate[i]) * ri)
            np.add.at(T, jj, col(v[pair] * self.rotate[jj]) * self.cross(aj[pair], n[pair]))
        return F, T

    def relax(self, C, R, s, max_sweeps: int):
        """Minimise the penalty energy with FIRE (Bitzek et al., PRL 97 (2006) 170201) until no
        constraint is violated by more than half the margin. Rotations are generalised
        coordinates with the inertia of a disc/ball of the particle's bounding radius."""
        inertia = 0.5 * (s * self.bound) ** 2
        I = inertia if self.dim == 2 else inertia[:, None]
        V = np.zeros_like(C)
        W = np.zeros((self.n,) if self.dim == 2 else (self.n, 3))
        dt, alpha, n_pos = 0.1, 0.1, 0
        for it in range(1, max_sweeps + 1):
            cons, worst = self.violations(C, R, s)
            if worst <= 0.5 * self.margin:
                return C, R, True, it
            F, T = self.forces(C, R, s, cons)
            T = T / I  # angular acceleration
            power = np.sum(F * V) + np.sum(T * W * I)
            if power > 0:
                vn = math.sqrt(np.sum(V * V) + np.sum(W * W * I))
                fn = math.sqrt(np.sum(F * F) + np.sum(T * T * I))
                V = (1 - alpha) * V + alpha * vn * F / fn
                W = (1 - alpha) * W + alpha * vn * T / fn
                n_pos += 1
                if n_pos > 5:
                    dt, alpha = min(1.1 * dt, 0.4), 0.99 * alpha
            else:
                V, W = np.zeros_like(V), np.zeros_like(W)
                dt, alpha, n_pos = 0.5 * dt, 0.1, 0
            V = V + dt * F
            W = W + dt * T
            C = C + dt * V
            C = np.where(self.periodic, np.mod(C, self.L), C)
            if self.rotate.any():
                R = turn(R, dt * W, self.dim)
        cons, worst = self.violations(C, R, s)
        return C, R, worst <= 0.5 * self.margin, max_sweeps


def turn(R: np.ndarray, w: np.ndarray, dim: int) -> np.ndarray:
    """Rotations R turned by small angles w (2D: (n,), 3D: rotation vectors (n, 3))."""
    if dim == 2:
        c, s = np.cos(w), np.sin(w)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2) @ R
    return shapes.rotate_small(R, w)


def _best_direction(body: sep.BodyArrays, a: np.ndarray, b: np.ndarray, d: np.ndarray, dim: int, fine: bool,
                    warm: np.ndarray | None = None):
    """Largest f(n) = n.d - h_a(n) - h_b(-n) over a direction grid (or the ``warm`` start
    directions), the polytope face normals of both bodies and the centre line, refined by a
    pattern search."""
    m = len(a)
    dist = np.linalg.norm(d, axis=1)
    u = d / np.where(dist > 0, dist, 1.0)[:, None]
    if warm is not None:
        grid = warm[:, None, :]
        step, rounds = (2 * np.pi / 96, 4) if dim == 2 else (0.1, 5)
    elif dim == 2:
        J = 96 if fine else 24
        phase = np.arctan2(u[:, 1], u[:, 0])[:, None] + 2 * np.pi * np.arange(J) / J
        grid = np.stack([np.cos(phase), np.sin(phase)], axis=2)
        step, rounds = 2 * np.pi / J, (8 if fine else 5)
    else:
        grid = np.broadcast_to(sep.directions(3, 400 if fine else 48), (m, 400 if fine else 48, 3))
        step, rounds = (0.12 if fine else 0.3), (10 if fine else 6)
    na, nb = body.normals[a], body.normals[b]
    cand = [u[:, None, :], grid, na, -na, nb, -nb]
    ea, eb = body.edges[a], body.edges[b]
    if dim == 3 and (fine or (warm is None and ea.shape[1] * eb.shape[1] <= 64)):
        # edge-edge separating axes of polyhedra
        x = np.cross(ea[:, :, None, :], eb[:, None, :, :]).reshape(m, -1, 3)
        norm = np.linalg.norm(x, axis=2, keepdims=True)
        x = np.where(norm > 1e-9, x / np.where(norm > 1e-9, norm, 1.0), u[:, None, :])
        cand += [x, -x]
    cand = np.concatenate(cand, axis=1)

    def f(n):
        ha, _ = body.support(a, n)
        hb, _ = body.support(b, -n)
        return np.einsum("md,mjd->mj", d, n) - ha - hb

    if fine and dim == 3 and body.Q is None and not np.any(body.rho[a]) and not np.any(body.rho[b]):
        cand = np.concatenate([cand, _min_norm_directions(body.P[a], body.P[b], d)[:, None, :]], axis=1)
    vals = f(cand)
    j = np.argmax(vals, axis=1)
    return sep.maximise_on_sphere(f, cand[np.arange(m), j], vals[np.arange(m), j], step, rounds)[::-1]


def _min_norm_directions(Pa: np.ndarray, Pb: np.ndarray, d: np.ndarray) -> np.ndarray:
    """For pairs of polytopes (corners Pa, Pb relative to their centres, offsets d), the
    direction of the point of the Minkowski difference B - A closest to the origin (the
    exact separating direction of polytopes that are apart), by non-negative least squares
    on convex weights of the difference corners."""
    from scipy.optimize import nnls

    out = np.zeros_like(d)
    for k in range(len(d)):
        D = (d[k] + Pb[k][:, None, :] - Pa[k][None, :, :]).reshape(-1, 3)
        big = 1e3 * max(1.0, float(np.abs(D).max()))
        A = np.vstack([D.T, big * np.ones(len(D))])
        lam, _ = nnls(A, np.array([0.0, 0.0, 0.0, big]))
        p = D.T @ lam
        norm = np.linalg.norm(p)
        out[k] = p / norm if norm > 0 else d[k] / max(np.linalg.norm(d[k]), 1e-300)
    return out
