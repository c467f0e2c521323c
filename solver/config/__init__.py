"""Case files: the schema (one module per section), the YAML reader, ``--set`` overrides,
clear errors and the conversion to internal units.

A case file is YAML with every dimensional value in SI units. Errors never show a
traceback: :class:`CaseError` carries lines of the form
``<file>: <field.path> = <bad value>: <what is allowed>``.
"""

from solver.config.base import NAME_PATTERN, SIDES_2D, SIDES_3D, CaseError, Schema, quantity
from solver.config.case import Case, case_to_dict
from solver.config.electrochemistry import GalvanostaticLoading
from solver.config.errors import format_validation_error
from solver.config.fracture import AdaptiveSpec, Fracture, SchemeSpec
from solver.config.geometry import Geometry, MeshSpec, ParticleSpec
from solver.config.loading import PrescribedLithiation
from solver.config.materials import ActiveMaterial, FailureSpec, Material, Materials
from solver.config.mechanics import Mechanics, SideBC
from solver.config.output import Output
from solver.config.reader import apply_overrides, load_case, parse_override, read_yaml, validate_case, yaml_load
from solver.config.reference import schema_reference
from solver.config.units import is_internal, to_internal

__all__ = [
    "NAME_PATTERN", "SIDES_2D", "SIDES_3D", "CaseError", "Schema", "quantity", "Case", "case_to_dict",
    "GalvanostaticLoading", "format_validation_error", "AdaptiveSpec", "Fracture", "SchemeSpec", "Geometry",
    "MeshSpec", "ParticleSpec", "PrescribedLithiation", "ActiveMaterial", "FailureSpec", "Material", "Materials",
    "Mechanics", "SideBC", "Output", "apply_overrides", "load_case", "parse_override", "read_yaml",
    "validate_case", "yaml_load", "schema_reference", "is_internal", "to_internal",
]
