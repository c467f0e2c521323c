"""Distances between convex bodies by support functions (see :mod:`meshes.geometry`):
support data of many bodies at once, the best separating direction, signed distances and
the distance of points to a particle's surface."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from meshes.shapes import polygon_normals

if TYPE_CHECKING:
    from meshes.geometry import Particle

# ----------------------------------------------------------------------------- support arrays
def directions(dim: int, n: int, phase: float = 0.0) -> np.ndarray:
    """n unit vectors spread evenly: angles phase + 2 pi k / n in 2D, a Fibonacci sphere in 3D."""
    if dim == 2:
        t = phase + 2 * np.pi * np.arange(n) / n
        return np.column_stack([np.cos(t), np.sin(t)])
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    t = np.pi * (1 + 5**0.5) * k
    return np.column_stack([r * np.cos(t), r * np.sin(t), z])


class BodyArrays:
    """Support data of N convex bodies in the global frame (relative to their centres):
    polytope corners padded to a common count, ellipsoid matrices Q = R diag(a^2) R^T and
    ball radii. ``normals`` are the polytope face normals (padded), candidate directions."""

    def __init__(self, P: np.ndarray, Q: np.ndarray | None, rho: np.ndarray, normals: np.ndarray,
                 edges: np.ndarray):
        self.P, self.Q, self.rho, self.normals, self.edges = P, Q, rho, normals, edges

    @staticmethod
    def local(particles: list[Particle], outer: bool = False):
        """Particle-frame arrays (P, semi-axes, rho, face normals, edge directions) padded over
        the particles."""
        dim = particles[0].dim
        parts = [p.parts(outer) for p in particles]
        K = max(len(P) for P, _, _ in parts)
        P = np.zeros((len(parts), K, dim))
        axes = np.zeros((len(parts), dim))
        rho = np.zeros(len(parts))
        for i, (Pi, ai, ri) in enumerate(parts):
            P[i, : len(Pi)] = Pi
            P[i, len(Pi):] = Pi[0]
            if ai is not None:
                axes[i] = ai
            rho[i] = ri
        return P, axes, rho, _pad([p.local_normals() for p in particles], dim), _pad(
            [p.local_edges() for p in particles], dim)

    @staticmethod
    def world(local, R: np.ndarray, scale: float = 1.0) -> "BodyArrays":
        P, axes, rho, normals, edges = local
        Pw = scale * np.einsum("nij,nkj->nki", R, P)
        Q = None
        if np.any(axes > 0):
            Q = scale**2 * np.einsum("nij,nj,nkj->nik", R, axes**2, R)
        turn = lambda x: np.einsum("nij,nkj->nki", R, x)  # noqa: E731
        return BodyArrays(Pw, Q, scale * rho, turn(normals), turn(edges))

    @staticmethod
    def from_particles(particles: list[Particle], outer: bool = False) -> "BodyArrays":
        R = np.array([p.R() for p in particles])
        return BodyArrays.world(BodyArrays.local(particles, outer), R)

    def support(self, idx: np.ndarray, n: np.ndarray, smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """h (m, J) and support points (m, J, dim) of bodies idx (m,) in directions n (m, J, dim).

        With ``smooth`` > 0 the polytope part of the support point is the mean of the corners
        weighted by exp((n.p_k - h) / smooth): corners within about ``smooth`` of the support
        plane share it, so a face lying flat on a plane gets its centre as support point
        (no spurious torque). h is exact either way."""
        P = self.P[idx]
        proj = np.einsum("mkd,mjd->mjk", P, n)
        k = np.argmax(proj, axis=2)
        h = np.take_along_axis(proj, k[..., None], axis=2)[..., 0]
        if smooth > 0:
            w = np.exp((proj - h[..., None]) / smooth)
            arm = np.einsum("mjk,mkd->mjd", w / w.sum(axis=2, keepdims=True), P)
        else:
            arm = P[np.arange(len(idx))[:, None], k]
        if self.Q is not None:
            Qn = np.einsum("mde,mje->mjd", self.Q[idx], n)
            hq = np.sqrt(np.maximum(np.einsum("mjd,mjd->mj", n, Qn), 0.0))
            h = h + hq
            arm = arm + Qn / np.where(hq > 0, hq, 1.0)[..., None]
        rho = self.rho[idx][:, None]
        return h + rho, arm + rho[..., None] * n


def _pad(arrays: list[np.ndarray], dim: int) -> np.ndarray:
    """Stack per-body direction lists, padded by repeating the first one (x axis if none)."""
    K = max(1, max(len(a) for a in arrays))
    out = np.zeros((len(arrays), K, dim))
    for i, a in enumerate(arrays):
        if len(a):
            out[i, : len(a)] = a
            out[i, len(a):] = a[0]
        else:
            out[i, :, 0] = 1.0
    return out


def _tangent_basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to unit vectors n (..., 3) and to each other."""
    a = np.where(np.abs(n[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    u = np.cross(n, a)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return u, np.cross(n, u)


def maximise_on_sphere(f, n0: np.ndarray, value0: np.ndarray, step: float, rounds: int):
    """Pattern search of f (directions (m, J, dim) -> values (m, J)) around the best
    directions n0 (m, dim), starting with angle ``step`` and shrinking it by 3 each round
    (2D: 6 trial angles a round; 3D: 8 trial directions on a cone). Returns (n, value)."""
    dim = n0.shape[1]
    n, val = n0.copy(), value0.copy()
    for _ in range(rounds):
        if dim == 2:
            a = np.arctan2(n[:, 1], n[:, 0])[:, None] + step * np.array([-3, -2, -1, 1, 2, 3]) / 3
            trial = np.stack([np.cos(a), np.sin(a)], axis=2)
        else:
            u, w = _tangent_basis(n)
            phi = 2 * np.pi * np.arange(8) / 8
            c, s = math.cos(step), math.sin(step)
            trial = (c * n[:, None, :] + s * (np.cos(phi)[None, :, None] * u[:, None, :]
                                              + np.sin(phi)[None, :, None] * w[:, None, :]))
        v = f(trial)
        j = np.argmax(v, axis=1)
        better = v[np.arange(len(n)), j] > val
        n[better] = trial[better, j[better]]
        val[better] = v[better, j[better]]
        step /= 3.0
    return n, val


def signed_distance(p: Particle, points: np.ndarray, outer: bool = False) -> np.ndarray:
    """Signed distance from points (m, dim) to the surface of p (negative inside).

    Exact for circles, spheres and polygons; otherwise the maximum over directions n of
    n.(x - c) - h(n) (exact at the best n), found on a direction grid refined by a
    pattern search: a lower bound accurate to about 1e-4 of the particle size."""
    x = np.asarray(points, float) - np.asarray(p.center)
    if p.shape in ("circle", "sphere"):
        return np.linalg.norm(x, axis=1) - (p.radius + (p.coating if outer else 0.0))
    if len(x) == 0:
        return np.zeros(0)
    if p.shape == "polygon":
        core, _, rho = p.parts(outer)
        return _polygon_signed_distance(core @ p.R().T, x) - rho
    body = BodyArrays.from_particles([p], outer)
    grid = directions(p.dim, 72 if p.dim == 2 else 400)
    cand = np.vstack([grid, body.normals[0]])
    h, _ = body.support(np.zeros(1, dtype=int), cand[None])
    vals = x @ cand.T - h
    j = np.argmax(vals, axis=1)
    idx = np.zeros(len(x), dtype=int)

    def f(n):
        hh, _ = body.support(idx[: len(n)], n)
        return np.einsum("md,mjd->mj", x, n) - hh

    step = 2 * np.pi / 72 if p.dim == 2 else 0.15
    _, best = maximise_on_sphere(f, cand[j], vals[np.arange(len(x)), j], step, 6)
    return best


def _polygon_signed_distance(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact signed distance from points x (m, 2) to the convex polygon v (counter-clockwise)."""
    a, b = v, np.roll(v, -1, axis=0)
    ab = b - a
    ap = x[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("mkd,kd->mk", ap, ab) / np.einsum("kd,kd->k", ab, ab), 0.0, 1.0)
    d = np.linalg.norm(ap - t[..., None] * ab[None], axis=2).min(axis=1)
    n, off = polygon_normals(v)
    inside = np.all(x @ n.T <= off, axis=1)
    return np.where(inside, -d, d)


def particle_surface_distance(p: Particle, points: np.ndarray) -> np.ndarray:
    """Distance from points (m, dim) outside a particle to its surface (0 inside)."""
    return np.maximum(signed_distance(p, points), 0.0)
