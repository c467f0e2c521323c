"""The output section: field series, progress, profiles, checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from solver.config.base import Schema, quantity

class Output(Schema):
    fields_every: int = Field(1, ge=0, le=10 ** 9, description="write fields every N accepted steps (0: only the last)")
    progress: Literal["auto", "bar", "lines", "none"] = Field(
        "auto", description="progress display: bar on a terminal, lines in batch jobs (auto)"
    )
    vtx: bool = Field(
        False, description="also write the fields as fields.bp (ADIOS2 VTX, ParaView's ADIOS2VTXReader); needs DOLFINx with ADIOS2"
    )
    profile_bins: int = Field(
        20, ge=2, le=1000,
        description="galvanostatic loading: slabs across the thickness of profiles.csv (lithiation and damage against depth)",
    )
    checkpoint_every: int = Field(
        0, ge=0, le=10 ** 9,
        description="write checkpoint.h5 every N accepted steps for a later --restart (0: only when the run is asked to stop, by SIGTERM or SIGUSR1)",
    )
    checkpoint_interval: float = quantity(
        0.0, unit="s", ge=0.0, le=1e8,
        description="also write checkpoint.h5 once this much wall-clock time has passed since the last one (0: off)",
    )
