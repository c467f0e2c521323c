"""The fracture section: the phase-field model, its solution scheme and adaptive stepping."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from solver.config.base import PetscOptions, Schema, quantity


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
        1e-2, ge=1e-12, lt=1, description="accelerated: switch to Newton once max |d_k - d_(k-1)| is below this [-]"
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
    """A weaker band of electrolyte along the particle surfaces (debonding)."""

    width: float = quantity(..., unit="m", description="band width measured from the particle surface", ge=1e-9, le=1e-3)
    Gc: float = quantity(..., unit="J/m^2", description="toughness inside the band", ge=1e-4, le=1e6)


class Fracture(Schema):
    """Phase-field fracture (see docs/model.md)."""

    enabled: bool = Field(False, description="solve for damage")
    model: Literal["AT1", "AT2"] = Field("AT1", description="AT1 (elastic phase, strength) or AT2")
    split: Literal["none", "amor", "spectral"] = Field(
        "spectral", description="which part of the elastic energy is degraded by damage"
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
    interface: InterfaceBand | None = Field(None, description="optional weaker band along the AM/SE interfaces")
    scheme: SchemeSpec = SchemeSpec()
    adaptive: AdaptiveSpec = AdaptiveSpec()
    petsc_options: PetscOptions = Field(
        default_factory=dict, description="PETSc options of the damage solve (merged with the defaults)"
    )
