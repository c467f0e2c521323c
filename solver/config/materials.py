"""The materials section: elastic phases, active materials with their chemical strain, failure properties."""

from __future__ import annotations

import math

import numpy as np
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from solver.config.base import Schema, check_table, quantity

#: Young's moduli (Pa): 1 kPa (a soft gel) to 10 TPa (ten times diamond)
MODULUS_MIN, MODULUS_MAX = 1e3, 1e13
#: longest table (points)
MAX_TABLE = 10_000

class FailureSpec(Schema):
    """Fracture properties of a phase. AT1/AT2: give any two of a toughness (Gc or K_Ic),
    the regularisation length ell, the tensile strength or the critical strain; the rest
    follows from the homogeneous phase-field solution. cohesive: give all three of a
    toughness, a strength (or critical strain) and ell (see docs/model.md)."""

    Gc: float | None = quantity(None, unit="J/m^2", description="fracture toughness (critical energy release rate)",
                                ge=1e-4, le=1e6)
    K_Ic: float | None = quantity(None, unit="Pa*m^0.5", description="mode-I fracture toughness (Gc = K_Ic^2 (1-nu^2)/E)",
                                  ge=1e3, le=1e9)
    ell: float | None = quantity(None, unit="m", description="phase-field regularisation length", ge=1e-9, le=1e-3)
    strength: float | None = quantity(None, unit="Pa", description="tensile strength (homogeneous nucleation stress)",
                                      ge=1e3, le=1e11)
    critical_strain: float | None = Field(None, ge=1e-6, lt=1, description="tensile strain at nucleation, strength/E [-]")

    def given(self) -> list[str]:
        """Which of toughness, ell, strength are given (critical_strain counts as strength)."""
        out = ["toughness"] if (self.Gc is not None or self.K_Ic is not None) else []
        out += ["ell"] if self.ell is not None else []
        out += ["strength"] if (self.strength is not None or self.critical_strain is not None) else []
        return out

    @model_validator(mode="after")
    def _enough(self):
        if self.Gc is not None and self.K_Ic is not None:
            raise ValueError("give either Gc or K_Ic, not both")
        if self.strength is not None and self.critical_strain is not None:
            raise ValueError("strength and critical_strain say the same thing (strength = E * critical_strain): give one")
        if len(self.given()) < 2:
            raise ValueError(
                "give two of a toughness (Gc or K_Ic), ell, strength (or critical_strain) for AT1/AT2, all three "
                f"for the cohesive model; got {self.given() or 'none'}"
            )
        return self


class Material(Schema):
    """Isotropic linear-elastic phase."""

    name: str = Field("", max_length=1000, description="material name, for the record")
    use: str | None = Field(
        None, max_length=100, description="a named material set (ssbfrac materials) whose values fill the fields not given here"
    )
    E: float = quantity(..., unit="Pa", description="Young's modulus", ge=MODULUS_MIN, le=MODULUS_MAX)
    nu: float = Field(..., gt=-1.0, lt=0.5, description="Poisson's ratio, -1 < nu < 0.5 [-]")
    source: str = Field("", max_length=100_000, description="citation of the values")
    fracture: FailureSpec | None = Field(None, description="failure properties (needed where damage is allowed)")


class ExpansionTable(Schema):
    """Volumetric chemical strain of a free particle against the lithium fraction.

    Vegard's law as measured: linear between the points, constant beyond the ends. Only
    differences enter the model, strain(x) - strain(x_ref), so the table may start from any
    value."""

    x: list[float] = Field(..., min_length=2, max_length=MAX_TABLE,
                           description="lithium fractions, strictly increasing, in [0, 1] [-]")
    strain: list[Annotated[float, Field(ge=-3.0, le=3.0)]] = Field(
        ..., min_length=2, max_length=MAX_TABLE,
        description="volumetric strain at each x (e.g. 0.05 for 5 %), relative to any state [-]"
    )
    source: str = Field("", max_length=100_000, description="citation of the data")

    @model_validator(mode="after")
    def _table(self):
        check_table(self.x, self.strain, "strain")
        span = max(self.strain) - min(self.strain)
        if not span < 3.0:
            raise ValueError(
                f"strain = {self.strain}: spans {span:g}; volumetric strains are fractions (0.05 for 5 %) and "
                "must span less than 3, like expansion"
            )
        return self


class ActiveMaterial(Material):
    """Isotropic linear-elastic phase with a chemical eigenstrain (Vegard's law).

    eps_ch = (f(x) - f(x_ref)) A, with f the volumetric strain law (``expansion`` x or
    ``expansion_table``) and A the normalised ``anisotropy`` turned into each particle's
    orientation (trace A = 1; isotropic: A = I/3). See docs/model.md."""

    expansion: float = Field(
        0.0,
        gt=-0.5,
        lt=3.0,
        description=(
            "volumetric strain of the particle from lithium fraction x = 0 to x = 1 (Vegard, linear); "
            "positive: swells on lithiation; leave it out (or 0) when expansion_table is given [-]"
        ),
    )
    expansion_table: ExpansionTable | None = Field(
        None,
        description=(
            "volumetric strain against the lithium fraction, {x: [...], strain: [...]} (piecewise linear, "
            "constant beyond the ends), instead of the linear expansion"
        ),
    )
    anisotropy: list[float] | None = Field(
        None,
        min_length=3,
        max_length=3,
        description=(
            "relative principal chemical strains [a1, a2, a3] along the particle's own axes, turned by each "
            "particle's orientation (2D: a1, a2 in plane, a3 out of plane); normalised by a1 + a2 + a3 (> 0) so "
            "that the trace of the eigenstrain is the volumetric strain; none (default) or [1, 1, 1]: isotropic [-]"
        ),
    )

    @field_validator("anisotropy")
    @classmethod
    def _anisotropy(cls, a: list[float] | None) -> list[float] | None:
        if a is None:
            return a
        if any(not math.isfinite(v) for v in a):
            raise ValueError(f"anisotropy = {a}: values must be finite")
        if any(abs(v) > 1e3 for v in a):
            raise ValueError(f"anisotropy = {a}: relative strains are of order 1 (at most 1000 in magnitude)")
        if not sum(a) > 0:
            raise ValueError(
                f"anisotropy = {a}: the relative strains must have a positive sum (they are divided by it so that "
                "the trace of the eigenstrain is the volumetric strain; the sign of the volume change is set by "
                "expansion or expansion_table)"
            )
        if max(abs(v) for v in a) > 100 * sum(a):
            raise ValueError(
                f"anisotropy = {a}: a principal strain would be more than 100 times the volumetric strain "
                "(the entries nearly cancel); relative strains with a clearly positive sum are expected"
            )
        return a

    @model_validator(mode="after")
    def _one_law(self):
        if self.expansion_table is not None and self.expansion != 0.0:
            raise ValueError(
                f"expansion = {self.expansion:g} and expansion_table are both given: give either expansion (linear "
                "law) or expansion_table, and leave expansion out (or 0) with a table"
            )
        return self

    @property
    def isotropic(self) -> bool:
        """True when the chemical strain is the same in every direction (no anisotropy, or
        a1 = a2 = a3)."""
        a = self.anisotropy
        return a is None or a[0] == a[1] == a[2]

    def volumetric_strain(self, x, lib=np):
        """The volumetric chemical strain law f(x) of a free particle: ``expansion`` x, or the
        table (linear between its points, constant beyond the ends). The eigenstrain is
        (f(x) - f(x_ref)) A. ``lib``: numpy, or ufl for an expression of a field or constant."""
        if self.expansion_table is None:
            return self.expansion * x
        from solver.physics.tables import piecewise_linear

        t = self.expansion_table
        return piecewise_linear(x, t.x, t.strain, lib)

    def strain_slope(self, x, lib=np):
        """df/dx, the volumetric strain per unit lithium fraction (times 1/c_max: the partial
        molar volume): the number ``expansion`` for the linear law; for a table, the slope of
        the segment that holds x (the right-hand one at a point), 0 beyond the ends."""
        if self.expansion_table is None:
            return self.expansion
        from solver.physics.tables import piecewise_linear_slope

        t = self.expansion_table
        return piecewise_linear_slope(x, t.x, t.strain, lib)


class Materials(Schema):
    active: ActiveMaterial | None = Field(
        None, description="active-material particles (AM); required unless the mesh (geometry.mesh.file) has none"
    )
    electrolyte: Material = Field(..., description="solid-electrolyte matrix (SE)")
    active_b: ActiveMaterial | None = Field(
        None, description="second active material of a blend (geometry.particles.active_b_share)"
    )
    separator: Material | None = Field(
        None, description="separator layer (geometry.separator_thickness); default: the electrolyte"
    )
    collector_layer: Material | None = Field(
        None, description="collector-side layer (geometry.collector_layer_thickness); default: the electrolyte"
    )
    coating: Material | None = Field(None, description="coating shells of the particles (geometry.particles.coating)")

    def of(self, phase: str) -> Material | None:
        """The material of a phase: separator and collector_layer fall back to the electrolyte."""
        own = getattr(self, phase)
        if own is None and phase in ("separator", "collector_layer"):
            return self.electrolyte
        return own
