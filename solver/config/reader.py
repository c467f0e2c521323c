"""Reading case files: YAML, ``--set`` overrides, relative file paths and validation."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from solver.config.base import CaseError
from solver.config.case import Case
from solver.config.errors import format_validation_error
from solver.config.geometry import resolve_case_paths

class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9`` / ``-2.5e-6`` as floats (YAML 1.2 style);
    PyYAML's YAML 1.1 rules would read them as strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (numbers, lists, booleans)."""
    if "=" not in text:
        raise CaseError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise CaseError(f"--set {text!r}: empty key")
    try:
        value = yaml_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as exc:
        raise CaseError(f"--set {text!r}: value is not valid YAML ({exc})") from None
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of the raw case dict with each ``key.path=value`` applied.
    Missing intermediate sections are created (validation then decides)."""
    data = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        set_value(data, parts, value, f"--set {text!r}")
    return data


def apply_values(data: dict, values: dict[str, Any]) -> dict:
    """Return a copy of the raw case dict with ``{"key.path": value}`` applied (the paths
    of ``--set``; values as Python objects)."""
    data = copy.deepcopy(data)
    for path, value in values.items():
        if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            raise CaseError(f"{path!r}: expected a dotted field path such as materials.electrolyte.E")
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
        set_value(data, parts, copy.deepcopy(value), repr(path))
    return data


def set_value(data: dict, parts: list[str | int], value: Any, label: str) -> None:
    """Set the field at ``parts`` of a raw case dict (``label`` names the change in errors)."""
    node: Any = data
    for i, p in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not isinstance(p, int) or p >= len(node):
                raise CaseError(f"{label}: {'.'.join(map(str, parts[:i + 1]))} is not an index of the list")
            node = node[p]
            continue
        if not isinstance(node, dict):
            raise CaseError(f"{label}: {'.'.join(map(str, parts[:i]))} is not a section")
        nxt = node.get(p)
        if not isinstance(nxt, (dict, list)):
            if isinstance(parts[i + 1], int):
                where = ".".join(map(str, parts[: i + 1]))
                raise CaseError(f"{label}: {where} is not a list in the case file; set the whole list, "
                                f"e.g. --set {where}=[...]")
            # e.g. boundary.right: roller, then --set mechanics.boundary.right.value=...
            nxt = {"type": nxt} if isinstance(nxt, str) else {}
            node[p] = nxt
        node = nxt
    last = parts[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise CaseError(f"{label}: index {last} is out of range")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise CaseError(f"{label}: {'.'.join(map(str, parts[:-1]))} is not a section")


def read_yaml(path: str | Path, kind: str = "case", sections: str = "sections") -> dict:
    """The mapping in a YAML ``kind`` file (case, sweep); CaseError naming the file otherwise."""
    p = Path(path)
    if not p.exists():
        raise CaseError(f"{p}: {kind} file not found")
    if p.is_dir():
        raise CaseError(f"{p}: is a directory, expected a YAML {kind} file")
    try:
        data = yaml_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(f"{p}: malformed YAML{where}: {problem}") from None
    if data is None:
        raise CaseError(f"{p}: the file is empty")
    if not isinstance(data, dict):
        raise CaseError(f"{p}: the top level must be a mapping of {sections}, got {type(data).__name__}")
    return data


def validate_case(data: dict, source: str = "<case>") -> Case:
    """The validated case of raw data, named material sets expanded
    (:mod:`solver.materials.resolve`); CaseError with one line per problem."""
    from solver.materials.resolve import UseError, expand_named_materials, missing_for

    try:
        data = expand_named_materials(data)
    except UseError as exc:
        raise CaseError(f"{source}: {exc.path}: {exc}") from None
    missing = missing_for(data)
    if missing:
        raise CaseError("\n".join(
            f"{source}: {path}: the material set {name} has no {prop} (missing in the literature read for it: "
            f"ssbfrac materials {name}); give the value in the case, next to use: {name}"
            for path, name, prop in missing))
    try:
        return Case.model_validate(data)
    except ValidationError as err:
        raise CaseError(format_validation_error(err, source, Case)) from None


def load_case(path: str | Path, overrides: list[str] | None = None) -> Case:
    """Read, override and validate a case file. Raises :class:`CaseError`."""
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    data = resolve_case_paths(data, Path(path).resolve().parent)
    return validate_case(data, str(path))
