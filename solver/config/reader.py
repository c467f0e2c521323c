"""Reading case files: YAML, ``--set`` overrides, relative file paths and validation.

The YAML reader is bounded (:mod:`solver.config.limits`): file size, UTF-8 text, nesting
depth, number of nodes once aliases are expanded, number of aliases and what they expand
to; duplicate keys are errors (with their line), not a silent last-one-wins."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from solver.config import limits as lim
from solver.config.base import CaseError
from solver.config.case import Case
from solver.config.errors import format_validation_error
from solver.config.geometry import resolve_case_paths


class YAMLLimitError(yaml.MarkedYAMLError):
    """A YAML document beyond the reader's budgets (depth, nodes, aliases)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e9`` / ``-2.5e-6`` as floats (YAML 1.2 style; PyYAML's
    YAML 1.1 rules would read them as strings), refuses duplicate keys, and stays within
    the budgets of :mod:`solver.config.limits` (nesting depth, aliases, expanded nodes)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > lim.MAX_YAML_ALIASES:
                raise YAMLLimitError(None, None, f"more than {lim.MAX_YAML_ALIASES} aliases (*name)",
                                     event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > lim.MAX_YAML_DEPTH:
            raise YAMLLimitError(None, None, f"nested more than {lim.MAX_YAML_DEPTH} levels deep", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # unhashable: the constructor says so
                    continue
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


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


def _check_expanded_size(root) -> None:
    """Refuse a document whose aliases expand beyond the budgets or refer to themselves.
    Aliases share nodes, so the expanded size is counted once per distinct node."""
    size: dict[int, int] = {}
    active: set[int] = set()
    alias_nodes = 0

    def count(node) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in active:
            raise YAMLLimitError(None, None, "an alias refers to the collection that contains it (a cycle)",
                                 node.start_mark)
        active.add(key)
        n = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                n += count(child)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                n += count(k) + count(v)
        active.discard(key)
        size[key] = n
        if n > lim.MAX_YAML_NODES:
            raise YAMLLimitError(None, None, f"expands to more than {lim.MAX_YAML_NODES} values (aliases, or a "
                                 "very large file)", node.start_mark)
        return n

    # nodes reached more than once come from aliases: what they bring in is bounded too
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            alias_nodes += count(node)
            if alias_nodes > lim.MAX_YAML_ALIAS_NODES:
                raise YAMLLimitError(None, None, f"aliases expand to more than {lim.MAX_YAML_ALIAS_NODES} values",
                                     node.start_mark)
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    count(root)


def yaml_load(text: str):
    """Parse YAML text with the bounded reader. Raises yaml.YAMLError (also for the budgets)."""
    if len(text) > lim.MAX_YAML_BYTES:
        raise YAMLLimitError(None, None, f"longer than {lim.MAX_YAML_BYTES} characters", None)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise YAMLLimitError(None, None, "nested too deeply", None) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer with thousands of digits
        raise YAMLLimitError(None, None, f"a value cannot be read ({exc})", None) from None


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """``(line L, column C): problem`` of a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: {problem}"


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (numbers, lists, booleans)."""
    if "=" not in text:
        raise CaseError(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise CaseError(f"--set {text!r}: empty key")
    if len(raw) > lim.MAX_OVERRIDE_CHARS:
        raise CaseError(f"--set {key}: the value is longer than {lim.MAX_OVERRIDE_CHARS} characters")
    try:
        value = yaml_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as exc:
        raise CaseError(f"--set {text!r}: value is not valid YAML{yaml_error_text(exc)}") from None
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


def read_text_file(p: Path, what: str, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; CaseError otherwise
    (binary files, other encodings, devices and pipes are refused before reading)."""
    if not p.exists():
        raise CaseError(f"{p}: {what} not found")
    if p.is_dir():
        raise CaseError(f"{p}: is a directory, expected a {what}")
    if not p.is_file():
        raise CaseError(f"{p}: is not a regular file (a device, pipe or socket), expected a {what}")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise CaseError(f"{p}: {size} bytes is too large for a {what} (at most {max_bytes})")
        with open(p, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise CaseError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise CaseError(f"{p}: too large for a {what} (more than {max_bytes} bytes)")
    if b"\x00" in raw:
        raise CaseError(f"{p}: is a binary file (it contains NUL bytes), expected a {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CaseError(f"{p}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}), expected a {what}") from None


def read_yaml(path: str | Path, kind: str = "case", sections: str = "sections") -> dict:
    """The mapping in a YAML ``kind`` file (case, sweep); CaseError naming the file otherwise."""
    p = Path(path)
    text = read_text_file(p, f"{kind} file", lim.MAX_YAML_BYTES)
    try:
        data = yaml_load(text)
    except YAMLLimitError as exc:
        raise CaseError(f"{p}: beyond the limits of a {kind} file{yaml_error_text(exc)}") from None
    except yaml.YAMLError as exc:
        raise CaseError(f"{p}: malformed YAML{yaml_error_text(exc)}") from None
    if data is None:
        raise CaseError(f"{p}: the file is empty")
    if not isinstance(data, dict):
        raise CaseError(f"{p}: the top level must be a mapping of {sections}, got {type(data).__name__}")
    return data


def _file_particle_cap(data: dict, allow_large: bool) -> int | None:
    """The largest particle list a particle file may hold before it is read: the case's
    ``limits.max_particles`` (or its default), None with ``allow_large``."""
    if allow_large:
        return None
    from solver.config.limits import DEFAULT_LIMITS, Limits

    dim = data.get("dimension", 2)
    dim = dim if dim in (2, 3) and not isinstance(dim, bool) else 2
    try:
        return Limits.model_validate(data.get("limits") or {}).resolved(dim)["max_particles"]
    except (ValidationError, TypeError):
        return DEFAULT_LIMITS[dim]["max_particles"]  # the section's own errors are reported with the others


def validate_case(data: dict, source: str = "<case>", allow_large: bool = False) -> Case:
    """The validated case of raw data, named material sets expanded
    (:mod:`solver.materials.resolve`); CaseError with one line per problem otherwise.
    Particle files longer than the particle limit are refused before they are read in full
    (``allow_large``: only the hard limit)."""
    from solver.materials.resolve import UseError, expand_named_materials, missing_for

    if not isinstance(data, dict):
        raise CaseError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        data = expand_named_materials(data)  # named material sets (solver/materials)
    except UseError as exc:
        raise CaseError(f"{source}: {exc.path}: {exc}") from None
    missing = missing_for(data)
    if missing:
        raise CaseError("\n".join(
            f"{source}: {path}: the material set {name} has no {prop} (missing in the literature read for it: "
            f"ssbfrac materials {name}); give the value in the case, next to use: {name}"
            for path, name, prop in missing))
    try:
        return Case.model_validate(data, context={"max_particles": _file_particle_cap(data, allow_large)})
    except ValidationError as err:
        raise CaseError(format_validation_error(err, source, Case)) from None
    except RecursionError:
        raise CaseError(f"{source}: nested too deeply") from None


def load_case(path: str | Path, overrides: list[str] | None = None, allow_large: bool = False) -> Case:
    """Read, override and validate a case file. Raises :class:`CaseError`."""
    data = read_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    data = resolve_case_paths(data, Path(path).resolve().parent)
    return validate_case(data, str(path), allow_large=allow_large)
