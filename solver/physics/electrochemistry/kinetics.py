"""Interface kinetics (UFL expressions): Butler-Volmer on the particle surfaces and on the
lithium-metal electrode, and the exchange current of the particles.

On a particle surface (facet tags 1000 + i)

    i_n = i0(x) [exp(alpha F eta / RT) - exp(-(1 - alpha) F eta / RT)],
    eta = phi_s - phi_e - U(x),   i0 = k0 sqrt(x (1 - x))  (or a constant i0),

with i_n > 0 anodic: lithium leaves the particle (charge); on discharge i_n < 0 and the
cathode is lithiated. The lithium metal is at 0 V and U(Li/Li+) = 0: its overpotential is
eta = -phi_e, and its current i_a enters the electrolyte.
"""

from __future__ import annotations

import ufl

from solver.physics import diffusion as dif

#: the exponents of the Butler-Volmer terms are capped here (exp(60) ~ 1e26): only absurd
#: Newton iterates reach it, it keeps them finite
EXP_CAP = 60.0
#: x is clipped to [X_EPS, 1 - X_EPS] in i0 = k0 sqrt(x (1 - x))
X_EPS = 1e-4


def butler_volmer(i0, alpha, f, eta):
    """i0 [exp(alpha f eta) - exp(-(1 - alpha) f eta)], f = F / RT (1/V), each exponent
    capped at EXP_CAP."""
    return i0 * (ufl.exp(ufl.min_value(alpha * f * eta, EXP_CAP))
                 - ufl.exp(ufl.min_value(-(1.0 - alpha) * f * eta, EXP_CAP)))


def exchange_current(kinetics, xs):
    """i0 of a material: the constant ``kinetics.i0``, or k0 sqrt(x (1 - x)) with x clipped
    to [X_EPS, 1 - X_EPS] (``xs``)."""
    return kinetics.i0 if kinetics.i0 is not None else kinetics.k0 * ufl.sqrt(xs * (1.0 - xs))


def particle_current(materials, x, phi_s, phi_e, f):
    """i_n on the particle surfaces (A/um^2), with U, i0 and alpha of each material.

    Args:
        materials: (name, indicator chi, transport spec, OCV curve) of each active material.
        x, phi_s, phi_e: lithium fraction, particle and ionic potentials.
        f: F / RT (1/V).
    """
    xs = dif.clamp01(x, X_EPS)
    U = i0 = alpha = 0
    for _, chi, spec, ocv in materials:
        kin = spec.kinetics
        U += chi * ocv(x, ufl)
        i0 += chi * exchange_current(kin, xs)
        alpha += chi * kin.alpha
    return butler_volmer(i0, alpha, f, phi_s - phi_e - U)


def anode_current(anode, phi_e, f):
    """i_a of the lithium-metal electrode (A/um^2, into the electrolyte): eta = -phi_e."""
    return butler_volmer(anode.i0, anode.alpha, f, -phi_e)
