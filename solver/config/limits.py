"""Budgets that keep every input bounded before expensive work.

Two kinds:

* fixed budgets of the input files themselves (YAML case, sweep and study files, particle
  lists, mesh files): size, nesting depth, number of YAML nodes, aliases. They protect the
  reader and are not configurable (no legitimate case comes near them);
* the size of the problem a case describes (particles, cells, DOFs, memory), estimated
  before packing and meshing (:mod:`solver.config.estimate`) and compared with the
  ``limits`` section of the case. The defaults fit one run on a 2-core machine with 24 GB
  of memory shared with other work; raise them in the case (``limits: {max_cells: 1e7}``)
  or skip them with ``ssbfrac run/mesh/check --allow-large``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from solver.config.base import Schema

# ----------------------------------------------------------------------------- input files
#: largest YAML file (case, sweep, study) read, in bytes
MAX_YAML_BYTES = 4 * 1024 * 1024
#: deepest nesting of YAML collections (a case needs 6)
MAX_YAML_DEPTH = 32
#: largest number of YAML nodes (scalars, lists, mappings) once aliases are expanded
MAX_YAML_NODES = 200_000
#: largest number of aliases (``*name``) in one YAML document
MAX_YAML_ALIASES = 100
#: largest number of nodes that aliases may bring in (expanded), in one document
MAX_YAML_ALIAS_NODES = 10_000
#: largest ``--set`` value, in characters
MAX_OVERRIDE_CHARS = 100_000
# particle lists and mesh files: meshes.io.MAX_PARTICLE_FILE_BYTES, MAX_MESH_FILE_BYTES

# ----------------------------------------------------------------------------- problem size
#: defaults of the ``limits`` section, per dimension
DEFAULT_LIMITS = {
    2: {"max_particles": 2000, "max_cells": 4_000_000, "max_dofs": 8_000_000, "max_memory_gb": 16.0},
    3: {"max_particles": 500, "max_cells": 3_000_000, "max_dofs": 6_000_000, "max_memory_gb": 16.0},
}
#: a limit above this is not a limit (a typo such as 1e30 would disable the check silently)
HARD_COUNT = 10 ** 10


class Limits(Schema):
    """Largest problem a run may be (estimated before packing and meshing; see ``ssbfrac check``).
    Defaults (2D / 3D): 2000 / 500 particles, 4e6 / 3e6 cells, 8e6 / 6e6 DOFs, 16 GB; they
    fit a 2-core machine with 24 GB. ``--allow-large`` (run, mesh, check) skips them."""

    max_particles: int | None = Field(
        None, ge=1, le=999_000, strict=False,
        description="largest number of particles (packed or read from particles.file); default 2000 in 2D, 500 in 3D",
    )
    max_cells: int | None = Field(
        None, ge=1, le=HARD_COUNT, strict=False,
        description="largest number of mesh cells (triangles, tetrahedra); default 4e6 in 2D, 3e6 in 3D",
    )
    max_dofs: int | None = Field(
        None, ge=1, le=HARD_COUNT, strict=False,
        description="largest number of unknowns of all fields together; default 8e6 in 2D, 6e6 in 3D",
    )
    max_memory_gb: float | None = Field(
        None, gt=0, le=100_000,
        description="largest estimated peak memory of the run, all ranks together, in GB (default 16) [GB]",
    )

    @field_validator("max_particles", "max_cells", "max_dofs", mode="before")
    @classmethod
    def _count(cls, v):
        # counts may be written 1e7 (a float in YAML) but not true/false
        if isinstance(v, bool):
            raise ValueError("a count is a number, not true/false")
        return v

    def resolved(self, dimension: int) -> dict:
        """The limits in force: the case's, else the defaults of ``dimension``."""
        out = dict(DEFAULT_LIMITS[dimension])
        for k in out:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out
