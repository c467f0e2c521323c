"""Closed forms of the phase-field fracture models: strengths, lengths, profiles.

Pure functions of numbers (no mesh), shared by the case checks, the problem set-up and
the tests. The models (docs/model.md):

* AT1 / AT2 (Pham-Marigo, Bourdin): a(d) = (1 - d)^2, w(d) = d or d^2; ell fixes the
  strength, so any two of toughness, strength and ell give the third.
* cohesive, the phase-field regularised cohesive zone model (PF-CZM; Wu, J. Mech. Phys.
  Solids 103 (2017) 72; Wu & Nguyen, J. Mech. Phys. Solids 119 (2018) 20): crack geometric
  function alpha(d) = 2 d - d^2 (c_alpha = pi) and the rational degradation

      g(d) = (1 - d)^p / ((1 - d)^p + a1 d (1 + a2 d + a2 a3 d^2)),
      a1 = 4 l_ch / (pi ell),  l_ch = E_c G_c / f_t^2 (Irwin's length),

  with (p, a2, a3) set by the softening law. Toughness G_c and strength f_t are material
  data; ell only regularises: the traction-separation law, hence the peak stress f_t and
  the dissipated energy G_c, do not depend on it.

E_c is the modulus of a band in uniaxial strain, lambda + 2 mu (plane strain and 3D): a
localised crack band opens with its tangential strains held by the material around it,
so its normal stress-strain slope is lambda + 2 mu; the Rankine driving force uses the
same modulus, so the one-dimensional theory holds across the band.
"""

from __future__ import annotations

import math

#: normalisation c_w of the crack geometric function w(d)
CW = {"AT1": 8.0 / 3.0, "AT2": 2.0, "cohesive": math.pi}

#: softening laws of the cohesive model: (p, a2, a3) of the rational degradation
SOFTENING = {
    "linear": (2.0, -0.5, 0.0),
    "exponential": (2.5, 2.0 ** (5.0 / 3.0) - 3.0, 0.0),
    "cornelissen": (2.0, 1.3868, 0.6567),
}

#: half-width of the 1D damage profile's support, in units of ell (AT2 has none: 4 ell
#: holds all but e^-8 of its energy)
SUPPORT = {"AT1": 2.0, "AT2": 4.0, "cohesive": math.pi / 2.0}


def band_modulus(E: float, nu: float) -> float:
    """lambda + 2 mu = E (1 - nu) / ((1 + nu)(1 - 2 nu)): the uniaxial-strain modulus."""
    return E * (1.0 - nu) / ((1.0 + nu) * (1.0 - 2.0 * nu))


def toughness(E: float, nu: float, Gc: float | None, K_Ic: float | None) -> float:
    """G_c, from K_Ic in plane strain when G_c is not given (Irwin)."""
    return Gc if Gc is not None else K_Ic**2 * (1.0 - nu**2) / E


def irwin_length(E_c: float, Gc: float, f_t: float) -> float:
    return E_c * Gc / f_t**2


def a1(E_c: float, Gc: float, f_t: float, ell: float) -> float:
    return 4.0 * irwin_length(E_c, Gc, f_t) / (math.pi * ell)


def ell_max(E_c: float, Gc: float, f_t: float, softening: str) -> float:
    """Largest ell the softening law can represent.

    In the homogeneous solution the strain grows with damage as (1 - d) / -g'(d); its
    slope at d = 0 is (2 (a1 - p - a2) - 1) / a1, so a softening branch that starts at
    f_t (no snap-back of the homogeneous state) needs a1 >= p + a2 + 1/2, i.e.
    ell <= 4 l_ch / (pi (p + a2 + 1/2))."""
    p, a2, _ = SOFTENING[softening]
    return 4.0 * irwin_length(E_c, Gc, f_t) / (math.pi * (p + a2 + 0.5))


def at_strength(model: str, E: float, Gc: float, ell: float) -> float:
    """Peak stress of the homogeneous 1D AT1/AT2 solution (docs/verification.md)."""
    if model == "AT1":
        return math.sqrt(3.0 * Gc * E / (8.0 * ell))
    return 3.0 * math.sqrt(3.0) / 16.0 * math.sqrt(E * Gc / ell)


def _at_factor(model: str) -> float:
    return 3.0 / 8.0 if model == "AT1" else 27.0 / 256.0


def resolve_failure(model: str, E: float, nu: float, spec, softening: str = "linear") -> dict:
    """Turn a FailureSpec (internal units) into the model's numbers.

    AT1/AT2: any two of toughness (Gc or K_Ic), ell, strength (or critical_strain E eps_c)
    give the third through the homogeneous solution. cohesive: toughness, strength and
    ell are all given; a1, Irwin's length and the largest ell are returned with them."""
    Gc = toughness(E, nu, spec.Gc, spec.K_Ic) if (spec.Gc is not None or spec.K_Ic is not None) else None
    strength = spec.strength
    if strength is None and spec.critical_strain is not None:
        strength = E * spec.critical_strain
    ell = spec.ell
    if model == "cohesive":
        E_c = band_modulus(E, nu)
        return {"Gc": Gc, "ell": ell, "strength": strength, "critical_strain": strength / E, "E_c": E_c,
                "l_ch": irwin_length(E_c, Gc, strength), "a1": a1(E_c, Gc, strength, ell),
                "ell_max": ell_max(E_c, Gc, strength, softening)}
    c = _at_factor(model)
    if ell is None:
        ell = c * E * Gc / strength**2
    elif Gc is None:
        Gc = strength**2 * ell / (c * E)
    strength = at_strength(model, E, Gc, ell)
    return {"Gc": Gc, "ell": ell, "strength": strength, "critical_strain": strength / E}


def profile_width(model: str, ell: float, level: float = 0.9) -> float:
    """Width of the region d >= level of the optimal 1D crack profile (a fully open crack):
    AT1 d = (1 - |x| / 2 ell)^2, AT2 d = exp(-|x| / ell), cohesive d = 1 - sin(|x| / ell)."""
    if model == "AT1":
        return 4.0 * ell * (1.0 - math.sqrt(level))
    if model == "AT2":
        return 2.0 * ell * math.log(1.0 / level)
    return 2.0 * ell * math.asin(1.0 - level)
