"""The loading section: a prescribed lithiation path, a prescribed displacement of a
boundary (mechanical tests, fracture benchmarks), or galvanostatic cycling
(:mod:`solver.config.electrochemistry`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator

from solver.config.base import Schema, quantity
from solver.config.electrochemistry import GalvanostaticLoading


class PrescribedLithiation(Schema):
    """Uniform lithiation of every particle, prescribed along a path of lithium fractions."""

    type: Literal["prescribed"] = "prescribed"
    path: list[float] = Field(
        [0.0, 1.0], min_length=2, max_length=10_000, description="lithium fraction x at the start and at each turning point, 0..1 [-]"
    )
    steps: int = Field(40, ge=1, le=100000, description="load steps per segment of the path (initial size)")
    x_ref: float | None = Field(None, ge=0, le=1, description="stress-free lithium fraction [-] (default: path[0])")
    duration: float = quantity(3600.0, unit="s", description="time per segment (for the time column only)",
                               ge=1e-6, le=1e10)

    @field_validator("path")
    @classmethod
    def _path(cls, path: list[float]) -> list[float]:
        for i, x in enumerate(path):
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"path[{i}] = {x!r}: lithium fractions must lie in [0, 1]")
        for i in range(len(path) - 1):
            if path[i] == path[i + 1]:
                raise ValueError(f"path[{i}] and path[{i + 1}] are equal: every segment must change x")
        return path


class DisplacementLoading(Schema):
    """A boundary moved along a path: u = U(s) * direction on the loaded facets (all
    components, or those of ``components``; the others are free there). The reaction
    force of the loaded facets along ``direction`` is written to history.csv."""

    type: Literal["displacement"] = "displacement"
    boundary: Union[Literal["left", "right", "bottom", "top", "back", "front"], int] = Field(
        ..., description="the loaded facets: a side, or a facet tag of the mesh (meshes/tags.py)"
    )
    direction: list[float] = Field(
        ..., min_length=2, max_length=3,
        description="direction of the motion, one component per dimension (normalised), e.g. [0, 1] [-]",
    )
    components: list[Literal["x", "y", "z"]] | None = Field(
        None, min_length=1, max_length=3,
        description="the prescribed components (default: all, so the facets move rigidly along direction)",
    )
    path: list[float] = quantity(
        ..., unit="m", min_length=2, max_length=10_000,
        description="displacement U along direction at the start and at each turning point",
    )
    steps: int = Field(40, ge=1, le=1_000_000, description="load steps per segment of the path (initial size)")
    duration: float = quantity(1.0, unit="s", description="time per segment (for the time column only)", ge=1e-6, le=1e10)

    @field_validator("direction")
    @classmethod
    def _direction(cls, d: list[float]) -> list[float]:
        norm = sum(x * x for x in d) ** 0.5
        if not norm > 0:
            raise ValueError(f"direction = {d}: a non-zero vector")
        return [x / norm for x in d]

    @field_validator("path")
    @classmethod
    def _path(cls, path: list[float]) -> list[float]:
        for i in range(len(path) - 1):
            if path[i] == path[i + 1]:
                raise ValueError(f"path[{i}] and path[{i + 1}] are equal: every segment must change U")
        return path

    def prescribed_axes(self, dim: int) -> list[int]:
        """The indices of the prescribed displacement components."""
        if self.components is None:
            return list(range(dim))
        return sorted({"xyz".index(c) for c in self.components})

    @property
    def side(self) -> str | None:
        return self.boundary if isinstance(self.boundary, str) else None


def _loading_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "prescribed")
    return getattr(value, "type", "prescribed")


Loading = Annotated[
    Union[Annotated[PrescribedLithiation, Tag("prescribed")], Annotated[GalvanostaticLoading, Tag("galvanostatic")],
          Annotated[DisplacementLoading, Tag("displacement")]],
    Discriminator(_loading_kind),
]
