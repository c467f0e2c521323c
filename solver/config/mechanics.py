"""The mechanics section: boundary conditions and the elasticity linear solve."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from solver.config.base import SIDES_3D, PetscOptions, Schema, quantity

class SideBC(Schema):
    """Mechanical condition on one side; a bare word (``roller``) means ``{type: roller}``."""

    type: Literal["free", "roller", "clamped", "fixed", "pressure"] = Field(
        ..., description="free (traction-free), roller (zero normal displacement), clamped, fixed (the displacement "
        "components of `components` held at zero, the others free), or pressure"
    )
    value: float = quantity(0.0, unit="Pa", description="applied pressure (type: pressure), compressive positive, "
                            "at most 10 GPa", ge=0, le=1e10)
    components: list[Literal["x", "y", "z"]] | None = Field(
        None, min_length=1, max_length=3,
        description="type: fixed: the displacement components held at zero, e.g. [y] on the left side holds "
        "u_y and leaves u_x free",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_word(cls, data):
        return {"type": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _value_only_for_pressure(self):
        if self.type != "pressure" and self.value != 0.0:
            raise ValueError(f"value is only used with type: pressure (type is {self.type})")
        if (self.type == "fixed") != (self.components is not None):
            raise ValueError("components are given with type: fixed, and only with it")
        if self.components is not None and len(set(self.components)) != len(self.components):
            raise ValueError(f"components = {self.components}: each component once")
        return self

    @property
    def component_axes(self) -> set[int]:
        """The indices (0, 1, 2) of ``components`` (type: fixed)."""
        return {"xyz".index(c) for c in self.components or []}

    def held_axes(self, normal_axis: int) -> set[int]:
        """The displacement components this condition holds (indices 0, 1, 2); a roller holds
        the side's normal one."""
        if self.type == "clamped":
            return {0, 1, 2}
        if self.type == "roller":
            return {normal_axis}
        if self.type == "fixed":
            return self.component_axes
        return set()


class Mechanics(Schema):
    """Quasi-static small-strain elasticity; 2D is plane strain with the full 3D eigenstrain."""

    boundary: dict[str, SideBC] = Field(
        default_factory=lambda: {
            "left": SideBC(type="roller"),
            "right": SideBC(type="pressure", value=5e6),
            "bottom": SideBC(type="roller"),
            "top": SideBC(type="roller"),
        },
        description=(
            "boundary condition per side (left: separator side x = 0, right: collector side x = L_x, "
            "bottom/top: y, back/front: z in 3D); sides not given default to roller"
        ),
    )
    linear_solver: Literal["auto", "direct", "iterative"] = Field(
        "auto",
        description=(
            "elasticity linear solve: direct (MUMPS Cholesky), iterative (CG + GAMG with the rigid-body "
            "near-nullspace), or auto: direct up to 200k displacement DOFs in 2D and 30k in 3D"
        ),
    )
    petsc_options: PetscOptions = Field(
        default_factory=dict,
        description="PETSc options of the elasticity solve, applied over those of linear_solver",
    )

    @model_validator(mode="after")
    def _sides(self):
        bad = sorted(set(self.boundary) - set(SIDES_3D))
        if bad:
            raise ValueError(f"unknown side(s) {bad}; allowed: {list(SIDES_3D)}")
        return self

    def side(self, name: str) -> SideBC:
        return self.boundary.get(name) or SideBC(type="roller")
