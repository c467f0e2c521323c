"""Named, cited material sets (solid electrolytes, active materials, coatings): data files
in ``data/``, their loader (:mod:`solver.materials.library`), their use in cases
(:mod:`solver.materials.resolve`) and the ``ssbfrac materials`` command."""

from solver.materials.library import MaterialError, MaterialSet, Property, library, load, names

__all__ = ["MaterialError", "MaterialSet", "Property", "library", "load", "names"]
