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
UNION_TAGS = ("prescribed", "galvanostatic")


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel]) -> str:
    """One line per error of ``err``, raised when validating ``model`` from ``source``
    (a file name): the dotted field path, the bad value and what is allowed."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in UNION_TAGS)
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            allowed = allowed_keys(model, tuple(e["loc"]))
            msg = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif e["type"] == "missing":
            lines.append(f"{source}: {path}: required field is missing")
            continue
        lines.append(f"{source}: {path} = {format_value(e.get('input'))}: {msg}")
    return "\n".join(lines)
