"""Closed-form solutions used by the verification tests (see docs/verification.md), and the
set-up the phase-field verification problems share."""

from __future__ import annotations

import math

import numpy as np


def lame(E: float, nu: float) -> tuple[float, float]:
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


def disc_inclusion(E1, nu1, E2, nu2, e_star, a, b, out_of_plane=True):
    """Plane-strain disc (radius a) in a free matrix ring (outer radius b), isotropic
    eigenstrain e_star in the disc. With ``out_of_plane`` the eigenstrain also acts in z
    (true isotropic swelling): e_eff = (1 + nu1) e_star.

    Returns (p, sigma_rr(r), sigma_tt(r)) with the matrix stresses as functions."""
    e_eff = (1 + nu1) * e_star if out_of_plane else e_star
    f = a**2 / b**2
    l1, m1 = lame(E1, nu1)
    l2, m2 = lame(E2, nu2)
    k1, k2 = l1 + m1, l2 + m2
    p = e_eff * (1 - f) / (1 / (2 * m2) + (1 - f) / (2 * k1) + f / (2 * k2))

    def srr(r):
        return -p * a**2 * (b**2 - r**2) / (r**2 * (b**2 - a**2))

    def stt(r):
        return p * a**2 * (b**2 + r**2) / (r**2 * (b**2 - a**2))

    return p, srr, stt


def sphere_inclusion(E1, nu1, E2, nu2, e_star, a, b):
    """Sphere (radius a) in a free matrix shell (outer radius b): interface pressure and
    matrix stresses (docs/verification-derivations.md, 1a)."""
    K1 = E1 / (3 * (1 - 2 * nu1))
    K2 = E2 / (3 * (1 - 2 * nu2))
    G2 = E2 / (2 * (1 + nu2))
    f = a**3 / b**3
    p = e_star * (1 - f) / (1 / (4 * G2) + (1 - f) / (3 * K1) + f / (3 * K2))

    def srr(r):
        return -p * a**3 * (b**3 - r**3) / (r**3 * (b**3 - a**3))

    def stt(r):
        return p * a**3 * (2 * r**3 + b**3) / (2 * r**3 * (b**3 - a**3))

    return p, srr, stt


def at1_critical(E, Gc, ell):
    s = math.sqrt(3 * Gc * E / (8 * ell))
    return s, s / E


def at2_critical(E, Gc, ell):
    return 3 * math.sqrt(3) / 16 * math.sqrt(E * Gc / ell), math.sqrt(Gc / (3 * E * ell))


def at2_homogeneous_stress(E, Gc, ell, eps):
    eps = np.asarray(eps)
    return E * eps / (1 + E * eps**2 * ell / Gc) ** 2


#: a direct solve: the verification problems are small
DIRECT_LU = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}


def phase_field_fields(domain, E, nu, Gc, ell):
    """A homogeneous phase-field problem on ``domain`` (2D): the displacement space V and the
    damage space D, the unknowns u, d and d_prev, the cellwise (DG0) fields chi = 1, Gc, ell
    and the fracture modulus Ef = E, the Lame constants and a maker of PETSc constants.

    Returns (V, D, u, d, d_prev, chi, Gc, ell, Ef, lm, mu, const)."""
    from dolfinx import fem
    from petsc4py import PETSc

    V = fem.functionspace(domain, ("Lagrange", 1, (2,)))
    D = fem.functionspace(domain, ("Lagrange", 1))
    Q = fem.functionspace(domain, ("DG", 0))
    u, d, d_prev = fem.Function(V), fem.Function(D), fem.Function(D)
    lm, mu = lame(E, nu)

    def const(v):
        return fem.Constant(domain, PETSc.ScalarType(v))

    chi, Gc_f, ell_f, Ef = (fem.Function(Q) for _ in range(4))
    chi.x.array[:], Gc_f.x.array[:], ell_f.x.array[:], Ef.x.array[:] = 1.0, Gc, ell, E
    return V, D, u, d, d_prev, chi, Gc_f, ell_f, Ef, lm, mu, const


def mode_one_displacement(K: float, mu: float, nu: float, tip):
    """The plane-strain mode-I crack-tip displacement field (Williams/Irwin) of stress
    intensity K around a tip at (tip(), 0), for ``Function.interpolate`` (the surfing
    tests move the tip by changing what ``tip`` returns)."""
    kappa = 3 - 4 * nu

    def field(xx):
        X, Y = xx[0] - tip(), xx[1]
        r, th = np.hypot(X, Y), np.arctan2(Y, X)
        f = K / (2 * mu) * np.sqrt(r / (2 * np.pi)) * (kappa - np.cos(th))
        return np.vstack([f * np.cos(th / 2), f * np.sin(th / 2)])

    return field


def whole_boundary_bc(V, value):
    """A Dirichlet condition holding the whole boundary of V's mesh at the function ``value``."""
    from dolfinx import fem, mesh

    domain = V.mesh
    facets = mesh.locate_entities_boundary(domain, domain.topology.dim - 1, lambda xx: np.full(xx.shape[1], True))
    return fem.dirichletbc(value, fem.locate_dofs_topological(V, domain.topology.dim - 1, facets))
