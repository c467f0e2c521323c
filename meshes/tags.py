"""Integer tags of ssbfrac meshes (cells and facets); see meshes.builder for the convention."""

ELECTROLYTE = 1
PARTICLE_BASE = 1000

SIDES = {"left": 1, "right": 2, "bottom": 3, "top": 4, "back": 5, "front": 6}


def particle(i: int) -> int:
    """Cell tag of particle i."""
    return PARTICLE_BASE + i


def interface(i: int) -> int:
    """Facet tag of the interface of particle i with the electrolyte."""
    return PARTICLE_BASE + i


def is_active(tag: int) -> bool:
    return tag >= PARTICLE_BASE


def particle_id(tag: int) -> int:
    return tag - PARTICLE_BASE
