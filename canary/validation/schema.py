"""What the schema says: the object's header, and the models' own validation errors as
Findings with camelCase paths (``spec.steps[2].setWeight``) and a fix for each kind.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from canary.api.base import API_VERSION
from canary.api.wording import closest, split_fix
from canary.validation.findings import Finding, format_path, is_int, short_repr
from canary.validation.routing import VALIDATOR_FIXES


def header_findings(obj: Mapping[str, Any], kinds: Sequence[str]) -> list[Finding]:
    findings = []
    api_version = obj.get("apiVersion")
    if api_version != API_VERSION:
        findings.append(
            Finding(
                "apiVersion",
                "is missing"
                if api_version is None
                else f"{short_repr(api_version)} is not {API_VERSION}",
                f"set apiVersion: {API_VERSION}",
            )
        )
    kind = obj.get("kind")
    if kind not in kinds:
        findings.append(
            Finding(
                "kind",
                "is missing" if kind is None else f"{short_repr(kind)} is not {' or '.join(kinds)}",
                f"set kind: {kinds[0]}",
            )
        )
    metadata = obj.get("metadata")
    if (
        not isinstance(metadata, Mapping)
        or not isinstance(metadata.get("name"), str)
        or not metadata["name"]
    ):
        findings.append(Finding("metadata.name", "is missing", "give the object a name"))
    return findings


def schema_findings(model: type[BaseModel], data: Mapping[str, Any], prefix: str) -> list[Finding]:
    """The model's validation errors as Findings with camelCase paths under `prefix`."""
    try:
        model.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False)
    else:
        return []
    grouped: dict[str, list[tuple[dict[str, Any], type[BaseModel] | None, str | None]]] = {}
    for error in errors:
        path, parent, last = _clean_loc(error["loc"], data, model)
        grouped.setdefault(format_path(prefix, path), []).append((dict(error), parent, last))
    findings = []
    for field, group in grouped.items():
        if len(group) > 1 and all(e["type"] in _TYPE_NAMES for e, _, _ in group):
            kinds = " or ".join(_TYPE_NAMES.get(e["type"], e["type"]) for e, _, _ in group)
            findings.append(
                Finding(
                    field, f"{short_repr(group[0][0]['input'])} is not {kinds}", f"write {kinds}"
                )
            )
            continue
        findings += [_error_finding(field, e, parent, last) for e, parent, last in group]
    return findings


def _clean_loc(
    loc: Sequence[int | str], data: Any, model: type[BaseModel]
) -> tuple[list[int | str], type[BaseModel] | None, str | None]:
    """(path without pydantic's union tags, model owning the last field, last field name)."""
    path: list[int | str] = []
    tp: Any = model
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            tp = _list_item(tp)
            data = data[part] if isinstance(data, list) and -len(data) <= part < len(data) else None
            continue
        current = _model_of(tp)
        field = _field_by_alias(current, part) if current is not None else None
        if field is not None or (isinstance(data, Mapping) and part in data):
            path.append(part)
            parent = current
            tp = current.model_fields[field].annotation if current and field else None
            data = data.get(part) if isinstance(data, Mapping) else None
        # else: a union member tag such as "int" or "str"; not part of the path
    last = next((p for p in reversed(path) if isinstance(p, str)), None)
    if path and isinstance(path[-1], int):
        parent = None
    return path, parent, last


def _model_of(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(tp):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _list_item(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is list:
        return typing.get_args(tp)[0]
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is list:
                return typing.get_args(arg)[0]
    return None


def _field_by_alias(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return name
    return None


def _aliases(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


_TIME_FIELDS = {
    "start": 'write a 24-hour time in quotes, e.g. "09:00"',
    "end": 'write a 24-hour time up to "24:00" in quotes, e.g. "16:00"',
}


def _error_finding(
    field: str, error: Mapping[str, Any], parent: type[BaseModel] | None, last: str | None
) -> Finding:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return Finding(field, "is required", f"add {last}" if last else "add it")
    if kind == "extra_forbidden":
        known = _aliases(parent) if parent is not None else []
        close = closest(last or "", known)
        return Finding(
            field,
            "is not a known field",
            f"did you mean {close!r}?"
            if close
            else f"remove it; fields here: {', '.join(known)}"
            if known
            else "remove it",
        )
    if kind == "value_error":
        text = str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
        if "each step sets exactly one of" in text and isinstance(value, Mapping):
            return _step_kind_finding(field, value)
        for needle, message, fix in VALIDATOR_FIXES:
            if needle in text:
                return Finding(field, message, fix)
        return Finding(field, *split_fix(text, "correct the value"))
    if kind in ("literal_error", "enum"):
        return Finding(
            field, f"{short_repr(value)} is not allowed", f"use one of {ctx['expected']}"
        )
    if kind == "string_type" and last in _TIME_FIELDS and is_int(value) and 0 <= value < 1500:
        # PyYAML (YAML 1.1) reads an unquoted 16:00 as the base-60 number 960.
        hours, minutes = divmod(value, 60)
        return Finding(
            field,
            f"is the number {value}: YAML reads an unquoted {hours}:{minutes:02d} as base 60",
            f'quote the time: "{hours:02d}:{minutes:02d}"',
        )
    if kind in _TYPE_NAMES:
        return Finding(
            field, f"{short_repr(value)} is not {_TYPE_NAMES[kind]}", f"write {_TYPE_NAMES[kind]}"
        )
    bounds = {
        "greater_than_equal": ("is below the minimum {ge}", "use {ge} or more", "ge"),
        "greater_than": ("must be above {gt}", "use a value above {gt}", "gt"),
        "less_than_equal": ("is above the maximum {le}", "use {le} or less", "le"),
        "less_than": ("must be below {lt}", "use a value below {lt}", "lt"),
    }
    if kind in bounds:
        message, fix, key = bounds[kind]
        return Finding(
            field,
            f"{short_repr(value)} " + message.format(**{key: ctx[key]}),
            fix.format(**{key: ctx[key]}),
        )
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return Finding(
            field,
            "is empty" if not value else f"has fewer than {n} items",
            f"add at least {n} item" + ("s" if n != 1 else ""),
        )
    if kind == "string_too_short":
        return Finding(field, "is empty", "give it a value")
    if kind == "string_pattern_mismatch":
        if last in _TIME_FIELDS:
            return Finding(field, f"{short_repr(value)} is not a time", _TIME_FIELDS[last])
        return Finding(
            field,
            f"{short_repr(value)} does not match {ctx.get('pattern')}",
            f"match the pattern {ctx.get('pattern')}",
        )
    return Finding(field, str(error["msg"]), "correct the value")


def _step_kind_finding(field: str, step: Mapping[str, Any]) -> Finding:
    kinds = [k for k in ("setWeight", "pause", "analysis") if step.get(k) is not None]
    if not kinds:
        return Finding(
            field,
            "sets none of setWeight, pause, analysis",
            "give it one of them, e.g. setWeight: 10, or pause: {} to wait for promotion",
        )
    return Finding(
        field,
        f"sets {' and '.join(kinds)}, but a step does one thing",
        "put each of them in a step of its own, in the order they should happen",
    )
