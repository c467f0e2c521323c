"""Validation errors as lines for the user: ``<file>: <field.path> = <bad value>: <what is allowed>``.

One formatter for every schema (cases, sweeps, studies)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Tag, ValidationError

def format_value(v: Any) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names allowed at the parent of ``loc`` (for 'unknown key' messages)."""
    cls: Any = model
    ann: Any = None
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            # union members show up in loc as their tag: take that member (or skip the part)
            cls = tagged_model(ann, part) or cls
            continue
        ann = fields[part].annotation
        cls = first_model(ann)
        if cls is None:
            return None
    fields = getattr(cls, "model_fields", None)
    return sorted(fields) if fields else None


def tagged_model(ann: Any, tag: Any):
    """The member of a tagged union annotation whose Tag is ``tag`` (None if there is none)."""
    for arg in getattr(ann, "__args__", ()) or ():
        meta = getattr(arg, "__metadata__", ()) or ()
        if any(isinstance(m, Tag) and m.tag == tag for m in meta):
            return first_model(arg.__origin__)
    return None


def first_model(ann: Any):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        m = first_model(arg)
        if m is not None:
            return m
    meta = getattr(ann, "__metadata__", None)
    if meta is not None:
        return first_model(ann.__origin__)
    return None


#: tags of union members that pydantic puts in error locations (not part of the field path)
UNION_TAGS = ("prescribed", "galvanostatic", "displacement")


def field_unit(model: type[BaseModel], loc: tuple) -> str | None:
    """The unit (json_schema_extra ``unit``) of the field at ``loc``, if it has one."""
    cls: Any = model
    ann: Any = None
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            sub = tagged_model(ann, part)
            if sub is not None:
                cls = sub
                continue
            if info is not None and isinstance(part, str):
                continue  # a dict key (e.g. a side of mechanics.boundary)
            return None
        info = fields[part]
        ann = info.annotation
        cls = first_model(ann) or cls
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    unit = extra.get("unit")
    return unit if unit and unit != "1" else None


#: pydantic error types about bounds, after which the field's unit is named
BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel]) -> str:
    """One line per error of ``err``, raised when validating ``model`` from ``source``
    (a file name): the dotted field path, the bad value and what is allowed."""
    from solver.config.base import FieldError

    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in UNION_TAGS)
        value = e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        raw_loc = tuple(e["loc"])
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            sub = tuple(int(p) if p.isdigit() else p for p in cause.path.split("."))
            loc, raw_loc = loc + sub, raw_loc + sub
            value, msg = cause.value, cause.message
        path = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = allowed_keys(model, tuple(e["loc"]))
            msg = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif e["type"] == "missing":
            lines.append(f"{source}: {path}: required field is missing")
            continue
        elif isinstance(value, bool) and e["type"] in ("float_type", "int_type", "int_from_float", "float_parsing"):
            msg = "Input should be a number, not true/false"
        elif e["type"] == "bool_type":
            msg = "Input should be true or false"
        elif e["type"] == "finite_number":
            msg = "Input should be a finite number (not inf or nan)"
        elif e["type"] in BOUND_ERRORS:
            bound = next(iter((e.get("ctx") or {}).values()), None)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                words = {"greater_than": "greater than", "greater_than_equal": "greater than or equal to",
                         "less_than": "less than", "less_than_equal": "less than or equal to"}[e["type"]]
                msg = f"Input should be {words} {bound:g}"
            unit = field_unit(model, raw_loc)
            if unit:
                msg += f" {unit}"
        lines.append(f"{source}: {path} = {format_value(value)}: {msg}")
    return "\n".join(lines)
