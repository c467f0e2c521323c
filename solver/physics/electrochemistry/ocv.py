"""Open-circuit voltage curves U(x) of active materials, against Li/Li+ (V).

x is the lithium fraction of the host (c / c_max, 0..1). Every curve is a plain function
``U(x, lib)`` that evaluates with NumPy (``lib=numpy``, the default) or inside a UFL form
(``lib=ufl``): the same expression is used in the finite-element residual, in the
Jacobian (UFL differentiates it) and in tests and plots.

Named curves (:data:`CURVES`):

==================  =====================================================================
name                source
==================  =====================================================================
``lco_doyle1995``   LiCoO2, Doyle's fit as distributed with Dualfoil and used by PyBaMM
                    (``lico2_ocp_Dualfoil1998``, parameter set Marquis2019)
``nmc811_chen2020`` LiNi0.8Mn0.1Co0.1O2 (LG M50 cell), Chen et al. 2020, as in PyBaMM
                    (``nmc_LGM50_ocp_Chen2020``, parameter set Chen2020)
==================  =====================================================================

A measured curve can be given as a table instead (:class:`TableOCV`; case files:
``ocv: {x: [...], U: [...]}``): linear between the points, constant beyond the ends.

Every fit is evaluated at a clamped lithium fraction (:data:`CLAMP`): Newton iterates can
leave [0, 1] by a little, and some fits are unusable near the ends (the LiCoO2 fit falls
to 0 V as x -> 1). Clamping keeps U bounded and smooth inside the valid range; outside it
the kinetics (i0 ~ sqrt(x (1 - x))) stop the reaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from solver.physics.tables import clip, piecewise_linear


def lco_doyle1995(x, lib=np):
    """LiCoO2 open-circuit voltage (V vs Li/Li+), Doyle's fit.

    Source: the fit of the Dualfoil program (J. Newman, Dualfoil,
    http://www.cchem.berkeley.edu/jsngrp/fortran.html), which states that the data were
    measured by O. Garcia (2001, Quallion electrodes) for 0.5 < x < 0.99 and by M. Doyle
    for x < 0.4; Doyle's fits are in C. M. Doyle, "Design and simulation of lithium
    rechargeable batteries", PhD thesis, UC Berkeley (1995). Used by PyBaMM as
    ``lico2_ocp_Dualfoil1998`` (Marquis et al., J. Electrochem. Soc. 166 (2019) A3693;
    c_max = 51217.9 mol/m^3 there), with the stretch s = 1.062 x:

        U = 2.16216 + 0.07645 tanh(30.834 - 54.4806 s) + 2.1581 tanh(52.294 - 50.294 s)
            - 0.14169 tanh(11.0923 - 19.8543 s) + 0.2051 tanh(1.4684 - 5.4888 s)
            + 0.2531 tanh((0.56478 - s) / 0.1316) - 0.02167 tanh((s - 0.525) / 0.006)

    Values: U(0.5) = 4.186 V, U(0.9) = 3.906 V, U(0.95) = 3.721 V, U(0.97) = 2.718 V.
    Above x = 0.97 the fit falls to 0 V (U(0.99) = 0.6 V), which is not a property of
    LiCoO2: x is clamped to [0, 0.97] (U >= 2.72 V). The curve decreases monotonically on
    [0, 0.97]. The 0.006 V-wide step at s = 0.525 is the order/disorder transition near
    x = 0.5.
    """
    lo, hi = CLAMP["lco_doyle1995"]
    s = 1.062 * clip(x, lo, hi, lib)
    t = lib.tanh
    return (2.16216 + 0.07645 * t(30.834 - 54.4806 * s) + 2.1581 * t(52.294 - 50.294 * s)
            - 0.14169 * t(11.0923 - 19.8543 * s) + 0.2051 * t(1.4684 - 5.4888 * s)
            + 0.2531 * t((-s + 0.56478) / 0.1316) - 0.02167 * t((s - 0.525) / 0.006))


def nmc811_chen2020(x, lib=np):
    """NMC811 (LiNi0.8Mn0.1Co0.1O2) open-circuit voltage (V vs Li/Li+).

    Source: C.-H. Chen, F. Brosa Planella, K. O'Regan, D. Gastol, W. D. Widanage,
    E. Kendrick, "Development of experimental techniques for parameterization of
    multi-scale lithium-ion battery models", J. Electrochem. Soc. 167 (2020) 080534
    (positive electrode of an LG M50 cell; c_max = 63104 mol/m^3, x = 0.27 at 4.2 V in
    their set); as PyBaMM's ``nmc_LGM50_ocp_Chen2020``:

        U = -0.8090 x + 4.4875 - 0.0428 tanh(18.5138 (x - 0.5542))
            - 17.7326 tanh(15.7890 (x - 0.3117)) + 17.5842 tanh(15.9308 (x - 0.3120))

    Values: U(0.27) = 4.273 V, U(0.5) = 3.972 V, U(0.9) = 3.568 V, U(1) = 3.487 V. The fit
    decreases monotonically on [0, 1]; x is clamped to [0, 1] only. The two large tanh
    terms nearly cancel: evaluate in double precision.
    """
    lo, hi = CLAMP["nmc811_chen2020"]
    x = clip(x, lo, hi, lib)
    t = lib.tanh
    return (-0.8090 * x + 4.4875 - 0.0428 * t(18.5138 * (x - 0.5542))
            - 17.7326 * t(15.7890 * (x - 0.3117)) + 17.5842 * t(15.9308 * (x - 0.3120)))


#: lithium-fraction range in which each named fit is evaluated (x is clamped to it)
CLAMP: dict[str, tuple[float, float]] = {
    "lco_doyle1995": (0.0, 0.97),
    "nmc811_chen2020": (0.0, 1.0),
}

#: the named curves, by the name used in case files
CURVES: dict[str, Callable] = {
    "lco_doyle1995": lco_doyle1995,
    "nmc811_chen2020": nmc811_chen2020,
}


@dataclass(frozen=True)
class TableOCV:
    """A tabulated open-circuit voltage: linear between the points, constant beyond."""

    x: tuple[float, ...]
    U: tuple[float, ...]

    def __call__(self, x, lib=np):
        return piecewise_linear(x, self.x, self.U, lib)


def get_ocv(spec) -> Callable:
    """The curve of a case entry: a name of :data:`CURVES`, or a table with ``x`` and ``U``
    (an object with these attributes, or a mapping)."""
    if isinstance(spec, str):
        if spec not in CURVES:
            raise ValueError(f"unknown open-circuit voltage curve {spec!r}; known: {', '.join(sorted(CURVES))}")
        return CURVES[spec]
    xs = spec["x"] if isinstance(spec, dict) else spec.x
    us = spec["U"] if isinstance(spec, dict) else spec.U
    piecewise_linear(0.5, xs, us)  # validates the table
    return TableOCV(tuple(xs), tuple(us))
