"""The fracture section: the phase-field model, its solution scheme and adaptive stepping."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from solver.config.base import FieldError, PetscOptions, Schema, quantity


class SchemeSpec(Schema):
    """How the coupled displacement/damage problem of a load step is solved."""

    type: Literal["staggered", "accelerated", "anderson"] = Field(
        "accelerated",
        description=(
            "staggered: plain alternate minimisation (reference); accelerated: over-relaxed alternate "
            "minimisation finished by a monolithic Newton method; anderson: alternate minimisation with "
            "Anderson acceleration of the damage iterates"
        ),
    )
    tolerance: float = Field(1e-4, ge=1e-12, lt=1, description="convergence: max |d_k - d_(k-1)| over the mesh [-]")
    max_iterations: int = Field(
        2000, ge=1, le=100000,
        description="iteration cap per load step (the step is cut when hit); an unstable crack advances about a "
        "third of ell per iteration, so a jump of L needs about 3 L / ell iterations",
    )
    relaxation: float = Field(1.8, ge=1, lt=2, description="accelerated: over-relaxation factor omega of the damage update")
    switch_tolerance: float = Field(
        1e-2, ge=1e-12, lt=1,
        description="accelerated: try Newton once max |d_k - d_(k-1)| is below this (each failed attempt lowers it "
        "tenfold) [-]",
    )
    stagnation: int = Field(
        25, ge=1, le=100000,
        description="after this many iterations without the damage change falling below 0.7 of its best, "
        "alternate minimisation falls back to plain (unrelaxed) sweeps; after as many again, the damage is held "
        "at least at its last iterate for the rest of the step",
    )
    newton_after: int = Field(
        5, ge=1, le=100000,
        description="accelerated: after this many iterations without the damage change falling below 0.7 of its "
        "best, Newton is tried from the present iterate (once per step)",
    )
    newton_linear_solver: Literal["auto", "direct", "iterative"] = Field(
        "auto",
        description=(
            "accelerated: linear solve of the monolithic Newton step on (u, d): direct (MUMPS LU), iterative "
            "(GMRES with block Gauss-Seidel: AMG on the displacement block, with its rigid-body modes, and on the "
            "damage block), or auto: direct up to 1M coupled DOFs in 2D and 30k in 3D"
        ),
    )
    newton_petsc_options: PetscOptions = Field(
        default_factory=dict, description="accelerated: PETSc options of the monolithic Newton solve"
    )
    depth: int = Field(5, ge=1, le=50, description="anderson: number of previous iterates used")
    reuse_preconditioner: bool = Field(
        True, description="keep the elasticity preconditioner across the iterations of a step (set up again when it degrades)"
    )


class AdaptiveSpec(Schema):
    """Adaptive load stepping: cut on failure or brutal crack growth, grow when easy."""

    enabled: bool = Field(True, description="adapt the load step")
    max_crack_growth: float | None = quantity(
        None, unit="m", description="largest regularised crack-length growth in one step (default: 20 ell)",
        ge=1e-9, le=1.0,
    )
    min_step_fraction: float = Field(
        1.0 / 64.0, ge=1e-9, le=1, description="smallest step, as a fraction of the initial step"
    )
    max_step_fraction: float = Field(1.0, gt=0, le=16, description="largest step, as a fraction of the initial step")
    cut_factor: float = Field(0.5, ge=0.01, lt=1, description="step factor after a rejected step")
    growth_factor: float = Field(1.5, ge=1, le=4, description="step factor after an easy step")
    easy_iterations: int = Field(8, ge=1, le=100_000, description="a step that converged in at most this many iterations is easy")


class InterfaceBand(Schema):
    """The particle/electrolyte interfaces' own failure properties (debonding): a band on
    both sides of the particle surfaces whose toughness (and, cohesive model, strength)
    are the interface's. Its width follows ell for the cohesive model (the damage
    profile's half-support, pi ell / 2); AT1/AT2 take it as given."""

    width: float | None = quantity(
        None, unit="m", description="AT1/AT2: band width from the particle surface (default: the profile's "
        "half-support, 2 ell for AT1, 4 ell for AT2); cohesive: not given (pi ell / 2)", ge=1e-9, le=1e-3)
    Gc: float = quantity(..., unit="J/m^2", description="toughness of the interface", ge=1e-4, le=1e6)
    strength: float | None = quantity(
        None, unit="Pa", description="cohesive: tensile strength of the interface (default: the electrolyte's)",
        ge=1e3, le=1e11)


class Fracture(Schema):
    """Phase-field fracture (see docs/model.md)."""

    enabled: bool = Field(False, description="solve for damage")
    model: Literal["AT1", "AT2", "cohesive"] = Field(
        "cohesive", description="AT1 (elastic phase, strength tied to ell), AT2, or cohesive: the phase-field "
        "regularised cohesive zone model (strength and toughness as measured, ell a regularisation)")
    softening: Literal["linear", "exponential", "cornelissen"] = Field(
        "linear", description="cohesive: the softening (traction-separation) law")
    split: Literal["none", "amor", "spectral"] | None = Field(
        None, description="which part of the elastic energy is degraded by damage (default: spectral for AT1/AT2, "
        "none for the cohesive model, whose bands the spectral split widens: docs/model.md, Localisation)"
    )
    driving_force: Literal["rankine", "energy"] = Field(
        "rankine",
        description="rankine: <sigma_1>^2/(2E) of the undamaged stress (tension only); energy: psi_plus of the split",
    )
    residual_stiffness: float = Field(1e-6, ge=0, lt=0.1, description="k_res in (1-d)^2 + k_res [-]")
    irreversibility: Literal["bounds", "history"] = Field(
        "bounds", description="bounds: d >= d_previous (SNES vinewtonrsls); history: Miehe history field"
    )
    phases: list[Literal["electrolyte", "separator", "collector_layer", "coating", "active", "active_b"]] = Field(
        ["electrolyte"], min_length=1, max_length=6,
        description="phases where damage is allowed (each needs materials.<phase>.fracture; separator and "
        "collector_layer fall back to the electrolyte's)",
    )
    interface: InterfaceBand | None = Field(
        None, description="the AM/SE interfaces' own toughness (and strength); default: the electrolyte's")
    scheme: SchemeSpec = SchemeSpec()
    adaptive: AdaptiveSpec = AdaptiveSpec()
    linear_solver: Literal["auto", "direct", "iterative"] = Field(
        "auto",
        description=(
            "damage linear solve (the reduced system of the bound-constrained Newton method): direct (MUMPS LU), "
            "iterative (GMRES + GAMG), or auto: direct up to 1M damage DOFs in 2D and 100k in 3D"
        ),
    )
    petsc_options: PetscOptions = Field(
        default_factory=dict, description="PETSc options of the damage solve, applied over those of linear_solver"
    )

    @model_validator(mode="after")
    def _split_of_model(self):
        if self.split is None:
            self.split = "none" if self.model == "cohesive" else "spectral"
        return self

    @model_validator(mode="after")
    def _interface_of_model(self):
        if self.interface is not None:
            if self.model == "cohesive" and self.interface.width is not None:
                raise FieldError("interface.width", self.interface.width,
                                 "the cohesive model's interface band follows ell (pi ell / 2): leave width out")
            if self.model != "cohesive" and self.interface.strength is not None:
                raise FieldError("interface.strength", self.interface.strength,
                                 f"{self.model} ties strength to ell: only the cohesive model takes an interface "
                                 "strength")
        return self
