"""Whether a schema is *structural*, as apiextensions.k8s.io/v1 requires of a CRD's. The
generator (canary.api.crd) checks what the conversion (canary.api.crd_schema) gives before it
writes anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# Keywords a structural schema forbids inside allOf/anyOf/oneOf/not.
_FORBIDDEN_IN_JUNCTORS = (
    "type",
    "description",
    "default",
    "additionalProperties",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
)
# JSON Schema keywords with no place in apiextensions v1 JSONSchemaProps, or that break
# structural rules; the converter must have removed every one of them.
_NOT_ALLOWED = ("$ref", "$defs", "definitions", "title", "const", "$schema", "examples")


def structural_problems(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Why `schema` is not a structural schema the API server accepts; empty if it is.

    Checks the rules that the conversion could get wrong; the API server checks more.
    """
    problems: list[str] = []
    here = path or "<root>"
    for key in _NOT_ALLOWED:
        if key in schema:
            problems.append(f"{here}: `{key}` is not allowed")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in schema and not isinstance(schema[key], bool):
            problems.append(f"{here}: `{key}` must be a boolean in OpenAPI v3")
    if schema.get("additionalProperties") is False:
        problems.append(f"{here}: additionalProperties: false is forbidden in apiextensions v1")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{here}: properties and additionalProperties are mutually exclusive")
    typed = (
        "type" in schema
        or schema.get("x-kubernetes-int-or-string") is True
        or schema.get("x-kubernetes-preserve-unknown-fields") is True
    )
    if not typed:
        problems.append(f"{here}: has no `type`")
    if schema.get("x-kubernetes-int-or-string") and "type" in schema:
        problems.append(f"{here}: int-or-string must not also set `type`")
    if "properties" in schema and schema.get("type") != "object":
        problems.append(f"{here}: has properties but `type` is not object")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{here}: array without `items`")
    if schema.get("nullable") is True and "default" in schema and schema["default"] is None:
        problems.append(f"{here}: null default")
    required = schema.get("required", [])
    missing = [r for r in required if r not in schema.get("properties", {})]
    if missing:
        problems.append(f"{here}: required {missing} are not in properties")
    for junctor in _JUNCTORS:
        if junctor in schema:
            parts = schema[junctor] if isinstance(schema[junctor], list) else [schema[junctor]]
            for i, part in enumerate(parts):
                problems += _junctor_problems(part, f"{here}.{junctor}[{i}]", schema)
    for name, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        problems += structural_problems(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        problems += structural_problems(schema["additionalProperties"], f"{path}.*")
    return problems


def _junctor_problems(part: Mapping[str, Any], here: str, outer: Mapping[str, Any]) -> list[str]:
    problems = [
        f"{here}: `{k}` is not allowed in a junctor" for k in _FORBIDDEN_IN_JUNCTORS if k in part
    ]
    for name in part.get("required", []):
        if name not in outer.get("properties", {}):
            problems.append(f"{here}: requires {name!r}, which the schema does not declare")
    for name in part.get("properties", {}):
        if name not in outer.get("properties", {}):
            problems.append(f"{here}: names {name!r}, which the schema does not declare")
    return problems


def walk(schema: Mapping[str, Any], path: str = "") -> Iterable[tuple[str, Mapping[str, Any]]]:
    """Every schema node with its path (properties, items, additionalProperties)."""
    yield path or "<root>", schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}.*")
