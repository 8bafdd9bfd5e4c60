"""The models' JSON Schema (pydantic, draft 2020-12) as a *structural* OpenAPI v3 schema, the
form the kube-apiserver requires for apiextensions.k8s.io/v1 (canary.api.crd puts it in the
CRDs; canary.api.crd_checks checks the result):

- ``$ref``/``$defs`` are inlined; keywords next to a ``$ref`` (a field's description or
  default) win over the referenced model's.
- ``anyOf [X, null]`` becomes X. Every such field is optional and the product writes
  ``exclude_none`` objects, so nothing needs ``nullable``.
- ``int | str`` becomes ``x-kubernetes-int-or-string: true``.
- ``const`` becomes a one-value ``enum``; numeric ``exclusiveMinimum``/``exclusiveMaximum``
  become ``minimum``/``maximum`` with the OpenAPI v3.0 boolean flags.
- ``title`` is dropped (noise in ``kubectl explain``); ``examples`` becomes ``example``;
  ``uniqueItems`` (forbidden in CRDs) becomes ``x-kubernetes-list-type: set``.
- ``additionalProperties: false`` is dropped because apiextensions v1 forbids it; the API
  server prunes unknown fields instead, and ``kubectl`` rejects or warns about them.
- Non-null defaults are kept, so the API server fills them in and ``kubectl explain`` shows
  them; null defaults are dropped.
- Value-only ``oneOf``/``allOf``/``not``/``minProperties``/``maxProperties`` set on models
  through ``json_schema_extra`` pass through (an ``anyOf`` there would be read as a union),
  so the API server rejects what the models' cross-field validators reject (one kind per
  step, at most one router, one check per metric, ...). ``canary lint`` and the
  controller's Invalid condition (canary.validation) still give the friendlier message.

The result is deterministic: properties keep the models' field order and schema keywords
come in a fixed order (description, type, the rest sorted, then required, properties,
items).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel


class SchemaConversionError(ValueError):
    """The models use a JSON Schema shape that has no structural equivalent."""


def structural_schema(model: type[BaseModel], description: str | None = None) -> dict[str, Any]:
    """The model's JSON Schema (camelCase aliases) as a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    out = _convert(raw, defs, path=model.__name__, stack=())
    if description and "description" not in out:
        out["description"] = description
    return _sorted(out)


def _convert(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, stack: tuple[str, ...]
) -> dict[str, Any]:
    node = dict(node)

    ref = node.pop("$ref", None)
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in stack:
            raise SchemaConversionError(f"{path}: recursive model {name} cannot be inlined")
        target = _convert(defs[name], defs, path, (*stack, name))
        siblings = _convert(node, defs, path, stack) if node else {}
        return {**target, **siblings}

    if "anyOf" in node:
        node = _collapse_any_of(node, path)
        if "$ref" in node:
            return _convert(node, defs, path, stack)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "additionalProperties" and value is False):
            continue
        if key == "default":
            if value is not None:
                out["default"] = copy.deepcopy(value)
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "examples":
            out["example"] = copy.deepcopy(value[0] if isinstance(value, list) else value)
            continue
        if key == "uniqueItems":
            if value is True:  # forbidden in CRDs (quadratic); a set-type list says the same
                out["x-kubernetes-list-type"] = "set"
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
            continue
        if key == "properties":
            out["properties"] = {
                name: _convert(sub, defs, f"{path}.{name}", stack) for name, sub in value.items()
            }
            continue
        if key == "items":
            out["items"] = _convert(value, defs, f"{path}[]", stack)
            continue
        if key == "additionalProperties" and isinstance(value, Mapping):
            out[key] = _convert(value, defs, f"{path}.*", stack)
            continue
        if key == "additionalProperties" and value is True:
            # An open model (a provider block, whose plug-in checks the fields): keep
            # what the user wrote rather than pruning it.
            out["x-kubernetes-preserve-unknown-fields"] = True
            continue
        # Everything else passes through, including value-only allOf/oneOf/not from
        # json_schema_extra (an anyOf there would be taken for a union and collapsed).
        out[key] = copy.deepcopy(value)

    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)
    if out.get("properties") == {} and out.get("x-kubernetes-preserve-unknown-fields"):
        del out["properties"]
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def _collapse_any_of(node: dict[str, Any], path: str) -> dict[str, Any]:
    options = [o for o in node.pop("anyOf") if o != {"type": "null"}]
    if len(options) == 1:
        # Keywords on the field (description, default) win over the option's.
        return {**options[0], **node}
    types = {o.get("type") for o in options}
    if types == {"integer", "string"} and all(set(o) == {"type"} for o in options):
        return {**node, "x-kubernetes-int-or-string": True}
    raise SchemaConversionError(
        f"{path}: union {options} has no structural form; use X | None or int | str"
    )


def _enum_type(values: Sequence[Any], path: str) -> str:
    kinds = {type(v) for v in values}
    for py, name in ((str, "string"), (bool, "boolean"), (int, "integer"), (float, "number")):
        if kinds == {py}:
            return name
    raise SchemaConversionError(f"{path}: enum {values!r} mixes types")


_FIRST = ("description", "type")
_LAST = ("required", "properties", "items", "additionalProperties")


def _keyword_rank(key: str) -> tuple[int, int, str]:
    if key in _FIRST:
        return (0, _FIRST.index(key), "")
    if key in _LAST:
        return (2, _LAST.index(key), "")
    return (1, 0, key)


def _sorted(node: Any, *, keep_order: bool = False) -> Any:
    """Order schema keywords canonically for stable, readable output.

    description and type first, the rest alphabetically, then required, properties and
    items; the names inside `properties` keep the models' field order.
    """
    if isinstance(node, Mapping):
        keys = list(node) if keep_order else sorted(node, key=_keyword_rank)
        return {
            k: _sorted(node[k], keep_order=(k == "properties" and not keep_order)) for k in keys
        }
    if isinstance(node, list):
        return [_sorted(v) for v in node]
    return node
