"""Integer tags of ssbfrac meshes (Gmsh physical groups, DOLFINx cell and facet tags).

Every cell and every tagged facet carries exactly one tag. The physical groups of the
``.msh`` file carry the names below too (``electrolyte``, ``particle_7``, ``interface_7``,
``left``, ...), so a mesh made elsewhere can be used when it follows this convention.

Cells (dimension 2 in 2D, 3 in 3D)

==================  ============================  ==========================================
tag                 name                          phase (``phase_of_tags``)
==================  ============================  ==========================================
1                   ``electrolyte``               electrolyte (matrix of the composite)
2                   ``separator``                 separator (layer on the x = 0 side)
3                   ``collector_layer``           collector_layer (layer on the x = L side)
4                   ``coating``                   coating (shells around the particles)
1000 + i            ``particle_i``                active (materials.active)
1000000 + i         ``particle_i``                active_b (materials.active_b, a blend)
==================  ============================  ==========================================

A particle's cell tag is ``1000 + i`` for the first active material and ``1000000 + i`` for
the second one, where i is the particle's index in the particle list (``mesh.json``); a
mesh therefore holds fewer than 999000 particles. Every cell tag >= 1000 is active material.

Facets (dimension 1 in 2D, 2 in 3D)

==================  ============================  ==========================================
tag                 name
==================  ============================  ==========================================
1 .. 6              ``left`` ``right`` ``bottom`` ``top`` ``back`` ``front``: outer sides
                    (x = 0, x = L_x, y = 0, y = L_y, z = 0, z = L_z)
7                   ``separator_interface``       separator / composite (plane x = t_sep)
8                   ``collector_interface``       collector layer / composite
9                   ``coating_interface``         outer surface of the coatings (coating / electrolyte)
10                  ``contact``                   particle / particle contacts (touching particles)
1000 + i            ``interface_i``               surface of particle i: with the electrolyte,
                                                  or with its coating when coated
==================  ============================  ==========================================

The parts of a particle surface that lie on an outer side (a particle cut by a periodic
side) carry the side's tag.
"""

import numpy as np

ELECTROLYTE = 1
SEPARATOR = 2
COLLECTOR_LAYER = 3
COATING = 4
PARTICLE_BASE = 1000
PARTICLE_B_BASE = 1_000_000
MAX_PARTICLES = PARTICLE_B_BASE - PARTICLE_BASE

SIDES = {"left": 1, "right": 2, "bottom": 3, "top": 4, "back": 5, "front": 6}
SEPARATOR_INTERFACE = 7
COLLECTOR_INTERFACE = 8
COATING_INTERFACE = 9
CONTACT = 10

#: cell tags of the single-tag phases, by phase name
PHASE_CELLS = {"electrolyte": ELECTROLYTE, "separator": SEPARATOR, "collector_layer": COLLECTOR_LAYER,
               "coating": COATING}

#: facet tags of the single-tag interfaces, by physical-group name
INTERFACE_FACETS = {"separator_interface": SEPARATOR_INTERFACE, "collector_interface": COLLECTOR_INTERFACE,
                    "coating_interface": COATING_INTERFACE, "contact": CONTACT}


def particle(i: int, material: str = "active") -> int:
    """Cell tag of particle i (``material``: 'active' or 'active_b')."""
    if not 0 <= i < MAX_PARTICLES:
        raise ValueError(f"particle index {i} out of range 0..{MAX_PARTICLES - 1}")
    if material == "active":
        return PARTICLE_BASE + i
    if material == "active_b":
        return PARTICLE_B_BASE + i
    raise ValueError(f"unknown active material {material!r}; allowed: active, active_b")


def interface(i: int) -> int:
    """Facet tag of the surface of particle i."""
    if not 0 <= i < MAX_PARTICLES:
        raise ValueError(f"particle index {i} out of range 0..{MAX_PARTICLES - 1}")
    return PARTICLE_BASE + i


def is_active(tag: int) -> bool:
    """True for the cell tag of a particle (either active material)."""
    return tag >= PARTICLE_BASE


def particle_id(tag: int) -> int:
    """Particle index of a particle cell tag (either active material)."""
    if tag >= PARTICLE_B_BASE:
        return tag - PARTICLE_B_BASE
    if tag >= PARTICLE_BASE:
        return tag - PARTICLE_BASE
    raise ValueError(f"cell tag {tag} is not a particle")


def phase_of_tag(tag: int) -> str:
    """Phase name of a cell tag (see the table above)."""
    if tag >= PARTICLE_B_BASE:
        return "active_b"
    if tag >= PARTICLE_BASE:
        return "active"
    for name, t in PHASE_CELLS.items():
        if tag == t:
            return name
    raise ValueError(f"cell tag {tag} is not in the ssbfrac convention (meshes/tags.py)")


def convention_tag(name: str, cell: bool) -> int | None:
    """The tag of a physical group named after the convention (cells: ``electrolyte``,
    ``separator``, ``particle_7``, ...; facets: ``left``, ``top``, ``interface_7``, ...),
    None for any other name."""
    groups = PHASE_CELLS if cell else {**SIDES, **INTERFACE_FACETS}
    if name in groups:
        return groups[name]
    prefix = "particle_" if cell else "interface_"
    if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) < MAX_PARTICLES:
        return PARTICLE_BASE + int(name[len(prefix):])
    return None


def convention() -> dict:
    """The convention as plain data (written to mesh.json)."""
    return {
        "cells": {**PHASE_CELLS, "particle_i (active)": f"{PARTICLE_BASE} + i",
                  "particle_i (active_b)": f"{PARTICLE_B_BASE} + i"},
        "facets": {**SIDES, **INTERFACE_FACETS, "interface_i": f"{PARTICLE_BASE} + i"},
    }


#: phase names of cell tags
PHASES = ("electrolyte", "separator", "collector_layer", "coating", "active", "active_b")
#: the phases of the solid electrolyte (matrix and layers) and of the active materials
SE_PHASES = ("electrolyte", "separator", "collector_layer")
AM_PHASES = ("active", "active_b")
#: numbers of the phases in the ``phase`` output field
PHASE_CODES = {"electrolyte": 1, "active": 2, "active_b": 3, "separator": 4, "collector_layer": 5, "coating": 6}


def phase_of_tags(values: np.ndarray) -> np.ndarray:
    """Phase name of each cell tag value: electrolyte (1), separator (2), collector_layer
    (3), coating (4), active (1000 + i) or active_b (1000000 + i)."""
    values = np.asarray(values)
    out = np.full(values.shape, "electrolyte", dtype=object)
    for name, tag in PHASE_CELLS.items():
        out[values == tag] = name
    out[values >= PARTICLE_BASE] = "active"
    out[values >= PARTICLE_B_BASE] = "active_b"
    unknown = (values < PARTICLE_BASE) & ~np.isin(values, list(PHASE_CELLS.values()))
    if np.any(unknown):
        raise ValueError(f"cell tags {sorted(set(values[unknown].tolist()))} are not in the ssbfrac convention "
                         f"(this module)")
    return out.astype(str)
