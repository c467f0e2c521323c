"""The loading section: a prescribed lithiation path, or galvanostatic cycling (:mod:`solver.config.electrochemistry`)."""

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


def _loading_kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "prescribed")
    return getattr(value, "type", "prescribed")


Loading = Annotated[
    Union[Annotated[PrescribedLithiation, Tag("prescribed")], Annotated[GalvanostaticLoading, Tag("galvanostatic")]],
    Discriminator(_loading_kind),
]
