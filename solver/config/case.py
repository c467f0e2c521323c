"""A complete case: the sections together and the checks that span them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from solver.config.base import NAME_PATTERN, SIDES_2D, SIDES_3D, NotBool, Schema
from solver.config.failure import check_failure
from solver.config.fracture import Fracture
from solver.config.geometry import Geometry, phases_in_files
from solver.config.limits import Limits
from solver.config.loading import Loading, PrescribedLithiation
from solver.config.materials import Materials
from solver.config.mechanics import Mechanics
from solver.config.output import Output

#: the axis normal to each side
NORMAL_AXIS = {"left": 0, "right": 0, "bottom": 1, "top": 1, "back": 2, "front": 2}


def rigid_motion_free(dim: int, held_on: dict[str, set[int]]) -> bool:
    """True when some rigid motion of the unit box satisfies every held component (u_i = 0
    on the sides that hold i): the rigid motions are linear in x, so holding a component on a
    side is holding it at the side's corners, and the conditions leave a motion free when
    those rows do not have full rank."""
    import itertools

    import numpy as np

    rows = []
    for side, axes in held_on.items():
        a, at_end = NORMAL_AXIS[side], side in ("right", "top", "front")
        for corner in itertools.product((0.0, 1.0), repeat=dim):
            if corner[a] != float(at_end):
                continue
            x = np.array(corner)
            if dim == 2:  # translations x, y; rotation (-y, x)
                modes = np.array([[1.0, 0.0], [0.0, 1.0], [-x[1], x[0]]])
            else:  # translations; rotations about x, y, z
                modes = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, -x[2], x[1]], [x[2], 0, -x[0]],
                                  [-x[1], x[0], 0]], dtype=float)
            rows += [modes[:, i] for i in sorted(axes) if i < dim]
    n = 3 if dim == 2 else 6
    return len(rows) == 0 or np.linalg.matrix_rank(np.array(rows)) < n


class Case(Schema):
    """A complete ssbfrac case."""

    name: str = Field(..., pattern=NAME_PATTERN,
                      description="case name, the default run directory name: 1 to 100 letters, digits, '_', '.', "
                                  "'+', '-', starting with a letter or digit")
    description: str = Field("", max_length=100_000, description="free text")
    dimension: Annotated[Literal[2, 3], NotBool] = Field(2, description="2 (plane strain) or 3")
    geometry: Geometry = Geometry()
    materials: Materials
    mechanics: Mechanics = Mechanics()
    loading: Loading = PrescribedLithiation()
    fracture: Fracture = Fracture()
    output: Output = Output()
    limits: Limits = Field(default_factory=Limits, description="largest problem a run may be (README: Case files)")

    @classmethod
    def from_yaml(cls, path, overrides: list[str] | None = None) -> "Case":
        """Read and validate a case file, with ``--set``-style overrides ("a.b=value");
        raises CaseError."""
        from solver.config.reader import load_case

        return load_case(path, overrides)

    def with_overrides(self, values: dict) -> "Case":
        """A new case with ``{"dotted.path": value}`` changed (the paths of ``--set``, SI
        values), validated again; raises CaseError."""
        from solver.config.reader import apply_values, validate_case

        return validate_case(apply_values(case_to_dict(self), values), f"{self.name} with_overrides")

    @model_validator(mode="after")
    def _geometry_materials(self):
        p, m = self.geometry.particles, self.materials
        has_particles = self.geometry.mesh.file is None or "active" in self._file_phases()
        if has_particles and m.active is None:
            raise ValueError("materials.active is required: the case has particles (only a mesh file without "
                             "particle cells, geometry.mesh.file, goes without)")
        if self.loading.type == "galvanostatic" and m.active is None:
            raise ValueError("materials.active is required by a galvanostatic loading (it lithiates the particles)")
        if p.coating > 0 and m.coating is None:
            raise ValueError(f"geometry.particles.coating = {p.coating:g} m needs materials.coating")
        if p.active_b_share > 0 and m.active_b is None:
            raise ValueError(f"geometry.particles.active_b_share = {p.active_b_share} needs materials.active_b")
        phases = self._file_phases()
        for phase in ("active_b", "coating"):
            if phase in phases and getattr(m, phase) is None:
                what = "geometry.mesh.file" if self.geometry.mesh.file else "geometry.particles.file"
                raise ValueError(f"{what} has {phase} cells/particles but materials.{phase} is not given")
        return self

    def _file_phases(self) -> set[str]:
        """Phases that a particle list or mesh file brings in (empty for packed particles)."""
        if len(self.geometry.size) != self.dimension:
            return set()
        return phases_in_files(self.geometry, self.dimension)

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.geometry.size) != self.dimension:
            raise ValueError(
                f"geometry.size has {len(self.geometry.size)} entries but dimension is {self.dimension}"
            )
        if self.dimension == 2:
            extra = sorted(set(self.mechanics.boundary) - set(SIDES_2D))
            if extra:
                raise ValueError(f"mechanics.boundary: sides {extra} exist only in 3D")
        sides = SIDES_2D if self.dimension == 2 else SIDES_3D
        kinds = {s: self.mechanics.side(s).type for s in sides}
        held = set()  # axes held by a prescribed displacement
        ld = self.loading
        if ld.type == "displacement":
            if len(ld.direction) != self.dimension:
                raise ValueError(f"loading.direction = {ld.direction}: give {self.dimension} components")
            if ld.components is not None and any("xyz".index(c) >= self.dimension for c in ld.components):
                raise ValueError(f"loading.components = {ld.components}: only {'xyz'[:self.dimension]} in "
                                 f"{self.dimension}D")
            if ld.side is not None:
                if ld.side not in sides:
                    raise ValueError(f"loading.boundary = {ld.side!r}: sides in {self.dimension}D are {list(sides)}")
                if ld.side in self.mechanics.boundary:
                    raise ValueError(f"mechanics.boundary.{ld.side}: the side moved by the loading "
                                     f"(loading.boundary) takes no other condition: leave it out")
                kinds[ld.side] = "loaded"
                held = set(ld.prescribed_axes(self.dimension))
        fixed = {s: self.mechanics.side(s) for s in sides if kinds[s] == "fixed"}
        for s, bc in fixed.items():
            if max(bc.component_axes) >= self.dimension:
                raise ValueError(f"mechanics.boundary.{s}.components = {bc.components}: only "
                                 f"{'xyz'[:self.dimension]} in {self.dimension}D")
        if fixed and "clamped" not in kinds.values():
            held_on = {s: self.mechanics.side(s).held_axes(NORMAL_AXIS[s]) for s in sides if kinds[s] != "loaded"}
            if ld.type == "displacement" and ld.side is not None:
                held_on[ld.side] = held
            if rigid_motion_free(self.dimension, held_on):
                raise ValueError("mechanics.boundary: the sides' conditions leave a rigid motion (a translation or "
                                 "a rotation) free; hold more components, or clamp a side")
        elif "clamped" not in kinds.values():
            axes = {"x": ("left", "right"), "y": ("bottom", "top"), "z": ("back", "front")}
            for k, (axis, (a, b)) in enumerate(list(axes.items())[: self.dimension]):
                if k in held:
                    continue
                if kinds[a] != "roller" and kinds[b] != "roller":
                    raise ValueError(
                        f"mechanics.boundary: nothing holds the {axis} direction (a rigid motion is free); "
                        f"make {a} or {b} a roller, or clamp a side"
                    )
        if self.fracture.enabled:
            for phase in self.fracture.phases:
                mat = self.materials.of(phase)
                if mat is None:
                    raise ValueError(f"fracture.phases contains {phase!r} but materials.{phase} is not given")
                if mat.fracture is None:
                    raise ValueError(
                        f"fracture.phases contains {phase!r} but materials.{phase}.fracture is not given"
                    )
        return self

    @model_validator(mode="after")
    def _failure_fits_model(self):
        check_failure(self)
        return self


def case_to_dict(case: Case) -> dict:
    """The resolved case as plain data (SI units), as saved in run directories."""
    return case.model_dump(mode="json")
