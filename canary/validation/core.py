"""Semantic validation of Canary and AnalysisTemplate objects. Pure: no I/O, no clock.

The controller uses it to set the Canary's Invalid condition; ``canary lint`` uses it
offline. Each problem is a :class:`Finding` naming the field (``spec.steps[2].setWeight``),
what is wrong, and what to do.

Rules, beyond the models' own schema (whose errors become Findings with camelCase paths):

- **Weights strictly increase.** Each ``setWeight`` must be higher than every earlier one,
  and the first must be above 0. A repeated weight is an error too: to hold a weight, use a
  ``pause`` step. (Dialling traffic back is what a rollback does; a rollout only moves
  forward.) At least one step must set a weight, and an ``analysis`` step may not run
  before the first weight, when the canary has no traffic and could only be Inconclusive.
- **Template references** resolve through the ``templates`` mapping: key ``templateName``
  for an AnalysisTemplate in the Canary's namespace, ``cluster/<templateName>`` for a
  ClusterAnalysisTemplate (``clusterScope: true``); see :func:`template_key`. With
  ``templates=None`` (offline lint without a cluster) references and args are not checked.
- **Args.** Every template arg without a default must get a value. A step's analysis sees
  ``spec.analysis.args`` (the background analysis' args) overridden by its own ``args``;
  the background analysis sees only its own. When all args are there, each query is
  rendered with them (canary.providers.prometheus.promql), so a value that could not be placed
  safely is reported before the rollout starts.
- **Deploy window.** ``timezone`` is a known IANA zone name; ``start`` and ``end`` differ
  (write 00:00-24:00 for a whole day; an ``end`` earlier than ``start`` is an overnight
  window); ``end`` is at most 24:00; ``days`` is not empty.
- **Templates.** Placeholders are ``{{args.NAME}}`` (NAME declared in ``spec.args``),
  and, in a comparison's queries only, ``{{variant}}`` and ``{{window}}``. Every
  comparison query mentions ``{{variant}}`` (otherwise canary and stable read the same
  series). An unknown provider is an error naming the supported ones. Metric and arg
  names are unique.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ValidationError

from canary.api.models import API_VERSION, AnalysisTemplateSpec, CanarySpec
from canary.api.wording import close as _close
from canary.api.wording import split_fix
from canary.errors import PermanentError
from canary.providers.registry import plugin, supported

__all__ = [
    "Finding",
    "short_repr",
    "template_key",
    "validate_canary",
    "validate_template",
]

# Placeholders a comparison's queries may use besides {{args.NAME}}.
TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")

_TIME = re.compile(r"^(\d\d):(\d\d)$")


@dataclass(frozen=True)
class Finding:
    field: str  # path like "spec.steps[2].setWeight"
    message: str  # what is wrong
    fix: str  # what to do

    def __str__(self) -> str:
        return f"{self.field}: {self.message} ({self.fix})"


def template_key(template_name: str, cluster_scope: bool = False) -> str:
    """The key of a referenced template in the `templates` mapping of validate_canary."""
    return f"cluster/{template_name}" if cluster_scope else template_name


# ---------------------------------------------------------------- Canary


def validate_canary(
    canary_obj: Mapping[str, Any], templates: Mapping[str, AnalysisTemplateSpec] | None
) -> list[Finding]:
    """Every problem with a Canary object (the whole object, as stored); empty when valid."""
    if not isinstance(canary_obj, Mapping):
        return [
            Finding(
                "(document)",
                "is not a mapping",
                "write a Canary with apiVersion, kind, metadata and spec",
            )
        ]
    findings = _header(canary_obj, ("Canary",))
    spec = canary_obj.get("spec")
    if spec is None:
        findings.append(
            Finding("spec", "is missing", "add a spec with targetRef, service and steps")
        )
        return findings
    if not isinstance(spec, Mapping):
        findings.append(
            Finding(
                "spec", "is not a mapping", "write spec as fields: targetRef, service, steps, ..."
            )
        )
        return findings
    findings += _schema_findings(CanarySpec, spec, "spec")
    findings += _check_steps(spec)
    findings += _check_routing(spec.get("trafficRouting"))
    findings += _check_deploy_window(spec.get("deployWindow"))
    if templates is not None:
        findings += _check_analyses(spec, templates)
    return _unique(findings)


# Routers this controller version implements; the others are reserved in the schema.
IMPLEMENTED_ROUTERS = ("gatewayAPI",)


def _check_routing(routing: Any) -> list[Finding]:
    if not isinstance(routing, Mapping):
        return []
    return [
        Finding(
            _format_path("spec.trafficRouting", [name]),
            "is not supported by this controller version yet",
            "use trafficRouting.gatewayAPI, or leave trafficRouting out for replica-ratio routing",
        )
        for name in routing
        if name not in IMPLEMENTED_ROUTERS and routing.get(name) is not None
    ]


def _check_steps(spec: Mapping[str, Any]) -> list[Finding]:
    steps = spec.get("steps")
    if not isinstance(steps, list) or not steps:
        return []  # the schema reports it
    findings: list[Finding] = []
    highest, highest_at = 0, None
    any_weight = False
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        here = f"spec.steps[{i}]"
        if "analysis" in step and highest == 0 and "setWeight" not in step:
            findings.append(
                Finding(
                    f"{here}.analysis",
                    "runs before any setWeight step, while the canary gets no traffic, so it "
                    "could only be Inconclusive",
                    "put a setWeight step before it",
                )
            )
        weight = step.get("setWeight")
        if not _is_int(weight) or not 0 <= weight <= 100:
            continue  # absent, or the schema reports it
        any_weight = True
        if highest_at is None and weight == 0:
            findings.append(
                Finding(
                    f"{here}.setWeight",
                    "0 sends no traffic to the canary",
                    "remove this step, or set a weight above 0",
                )
            )
        elif highest_at is not None and weight == highest:
            findings.append(
                Finding(
                    f"{here}.setWeight",
                    f"{weight} repeats the weight of spec.steps[{highest_at}]",
                    "weights must increase; remove this step, or hold the weight with a pause",
                )
            )
        elif highest_at is not None and weight < highest:
            findings.append(
                Finding(
                    f"{here}.setWeight",
                    f"{weight} is lower than the previous weight {highest}",
                    "weights must increase; reorder the steps",
                )
            )
        if weight > highest or highest_at is None:
            highest, highest_at = weight, i
    if not any_weight and all(isinstance(s, Mapping) for s in steps):
        findings.append(
            Finding(
                "spec.steps",
                "no step sets a weight, so the canary never gets traffic",
                "add setWeight steps, e.g. setWeight: 10 then 50",
            )
        )
    return findings


def _check_deploy_window(window: Any) -> list[Finding]:
    if not isinstance(window, Mapping):
        return []
    findings: list[Finding] = []
    tz = window.get("timezone", "UTC")
    if isinstance(tz, str) and not _known_zone(tz):
        close = _close(tz, available_timezones(), casefold=True)
        findings.append(
            Finding(
                "spec.deployWindow.timezone",
                f"{tz!r} is not a known time zone",
                f"did you mean {close!r}?"
                if close
                else "use an IANA zone name such as Europe/Berlin, America/New_York or UTC",
            )
        )
    start, end = window.get("start"), window.get("end")
    start_ok = isinstance(start, str) and _TIME.match(start) is not None
    end_ok = isinstance(end, str) and _TIME.match(end) is not None
    if end_ok and _minutes(str(end)) > 24 * 60:
        findings.append(
            Finding("spec.deployWindow.end", f"{end} is after 24:00", "use a time up to 24:00")
        )
    if start_ok and end_ok and start == end:
        findings.append(
            Finding(
                "spec.deployWindow.end",
                f"equals start ({start}), so the window's length is ambiguous",
                'for a whole day write start: "00:00" and end: "24:00"; for a window past '
                "midnight make end earlier than start",
            )
        )
    days = window.get("days")
    if isinstance(days, list) and not days:
        findings.append(
            Finding(
                "spec.deployWindow.days",
                "is empty, so the window never opens",
                "list the days rollouts may start, e.g. [Mon, Tue, Wed, Thu]",
            )
        )
    return findings


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _check_analyses(
    spec: Mapping[str, Any], templates: Mapping[str, AnalysisTemplateSpec]
) -> list[Finding]:
    findings: list[Finding] = []
    background = spec.get("analysis")
    background_args = _args_of(background, "spec.analysis", findings)
    if isinstance(background, Mapping):
        findings += _check_analysis(background, "spec.analysis", background_args, templates)
    steps = spec.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, Mapping) and isinstance(step.get("analysis"), Mapping):
            here = f"spec.steps[{i}].analysis"
            own = _args_of(step["analysis"], here, findings)
            # A step's analysis sees the background analysis' args, overridden by its own.
            findings += _check_analysis(
                step["analysis"], here, {**background_args, **own}, templates
            )
    return findings


def _args_of(analysis: Any, here: str, findings: list[Finding]) -> dict[str, tuple[str, Any]]:
    """name -> (field path, value) of an analysis' args; reports repeated names."""
    out: dict[str, tuple[str, Any]] = {}
    args = analysis.get("args") if isinstance(analysis, Mapping) else None
    for k, arg in enumerate(args if isinstance(args, list) else []):
        if not isinstance(arg, Mapping) or not isinstance(arg.get("name"), str):
            continue
        name, path = arg["name"], f"{here}.args[{k}]"
        if name in out:
            findings.append(
                Finding(
                    f"{path}.name",
                    f"{name!r} is given twice (also {out[name][0]})",
                    "remove one of them",
                )
            )
        out[name] = (path, arg.get("value"))
    return out


def _check_analysis(
    analysis: Mapping[str, Any],
    here: str,
    args: Mapping[str, tuple[str, Any]],
    templates: Mapping[str, AnalysisTemplateSpec],
) -> list[Finding]:
    findings: list[Finding] = []
    refs = analysis.get("templates")
    where_args = f"{here}.args" + (" or spec.analysis.args" if here != "spec.analysis" else "")
    for j, ref in enumerate(refs if isinstance(refs, list) else []):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("templateName"), str):
            continue
        name = ref["templateName"]
        if not name:
            continue
        cluster = ref.get("clusterScope") is True
        template = templates.get(template_key(name, cluster))
        if template is None:
            findings.append(
                _missing_template(f"{here}.templates[{j}].templateName", name, cluster, templates)
            )
            continue
        values: dict[str, str] = {}
        complete = True
        for targ in template.args:
            given = args.get(targ.name)
            if given is not None and isinstance(given[1], str):
                values[targ.name] = given[1]
            elif given is not None and given[1] is not None:
                complete = False  # not a string: the schema reports it
            elif given is not None:
                complete = False
                findings.append(
                    Finding(
                        f"{given[0]}.value",
                        f"has no value, and template {name!r} needs one",
                        f"set value for arg {targ.name!r}",
                    )
                )
            elif targ.value is not None:
                values[targ.name] = targ.value
            else:
                complete = False
                declared = {a.name for a in template.args}
                close = _close(targ.name, [n for n in args if n not in declared])
                fix = f"add {{name: {targ.name}, value: ...}} to {where_args}"
                if close:
                    fix = f"rename arg {close!r} to {targ.name!r}, or {fix}"
                findings.append(
                    Finding(
                        f"{here}.args",
                        f"template {name!r} needs arg {targ.name!r}, which is not given",
                        fix,
                    )
                )
        if complete:
            findings += _render_problems(template, name, values, f"{here}.args")
    return findings


def _missing_template(
    field: str, name: str, cluster: bool, templates: Mapping[str, AnalysisTemplateSpec]
) -> Finding:
    kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
    where = "" if cluster else " in this namespace"
    if template_key(name, not cluster) in templates:
        fix = (
            "an AnalysisTemplate with that name exists in this namespace; remove clusterScope"
            if cluster
            else "a ClusterAnalysisTemplate with that name exists; set clusterScope: true"
        )
    else:
        same_scope = [
            k.removeprefix("cluster/") for k in templates if k.startswith("cluster/") == cluster
        ]
        close = _close(name, same_scope)
        fix = f"did you mean {close!r}?" if close else f"create the {kind}, or fix the name"
    return Finding(field, f"{kind} {name!r} does not exist{where}", fix)


def _render_problems(
    template: AnalysisTemplateSpec, name: str, values: Mapping[str, str], field: str
) -> list[Finding]:
    """Each metric's plug-in tries the Canary's values: a value that cannot be used safely."""
    findings = []
    for metric in template.metrics:
        try:
            chosen = plugin(metric.provider.backend[0])
        except PermanentError:
            continue  # the template's own findings name it
        for problem in chosen.try_args(metric, values):
            message, fix = split_fix(problem, "change the arg's value, or the template's query")
            findings.append(
                Finding(field, f"template {name!r}, metric {metric.name!r}: {message}", fix)
            )
    return findings


# ---------------------------------------------------------------- templates


def validate_template(template_obj: Mapping[str, Any]) -> list[Finding]:
    """Every problem with an AnalysisTemplate or ClusterAnalysisTemplate; empty when valid."""
    if not isinstance(template_obj, Mapping):
        return [
            Finding(
                "(document)",
                "is not a mapping",
                "write an AnalysisTemplate with apiVersion, kind, metadata and spec",
            )
        ]
    findings = _header(template_obj, TEMPLATE_KINDS)
    spec = template_obj.get("spec")
    if spec is None:
        findings.append(Finding("spec", "is missing", "add a spec with args and metrics"))
        return findings
    if not isinstance(spec, Mapping):
        findings.append(Finding("spec", "is not a mapping", "write spec as fields: args, metrics"))
        return findings
    findings += _schema_findings(AnalysisTemplateSpec, spec, "spec")

    declared: dict[str, str] = {}
    args = spec.get("args")
    for k, arg in enumerate(args if isinstance(args, list) else []):
        if isinstance(arg, Mapping) and isinstance(arg.get("name"), str):
            if arg["name"] in declared:
                findings.append(
                    Finding(
                        f"spec.args[{k}].name",
                        f"{arg['name']!r} is declared twice (also {declared[arg['name']]})",
                        "remove one",
                    )
                )
            declared.setdefault(arg["name"], f"spec.args[{k}]")

    seen: dict[str, int] = {}
    metrics = spec.get("metrics")
    for i, metric in enumerate(metrics if isinstance(metrics, list) else []):
        if not isinstance(metric, Mapping):
            continue
        here = f"spec.metrics[{i}]"
        name = metric.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                findings.append(
                    Finding(
                        f"{here}.name",
                        f"{name!r} is used by spec.metrics[{seen[name]}] too",
                        "give each metric its own name",
                    )
                )
            seen.setdefault(name, i)
        findings += _provider_findings(metric, here, declared)
    return _unique(findings)


def _provider_findings(
    metric: Mapping[str, Any], here: str, declared: Mapping[str, str]
) -> list[Finding]:
    """The metric's provider block, checked by the plug-in it names."""
    provider = metric.get("provider")
    if not isinstance(provider, Mapping) or len(provider) != 1:
        return []  # the schema findings say so
    ((name, block),) = provider.items()
    try:
        chosen = plugin(name)
    except PermanentError:
        return [
            Finding(
                f"{here}.provider.{name}",
                f"unknown provider {name!r}",
                f"use a supported provider: {supported()}",
            )
        ]
    where = f"{here}.provider.{name}"
    if not isinstance(block, Mapping):
        return [Finding(where, "is not a mapping", "write the provider's settings as fields")]
    findings = _schema_findings(chosen.config, block, where)
    if "comparison" in metric and not chosen.comparisons:
        findings.append(
            Finding(
                f"{here}.comparison",
                f"the {name} provider cannot count each variant's requests",
                "use thresholdRange with this provider, or a provider that supports "
                "comparisons for this metric",
            )
        )
    findings += [Finding(*problem) for problem in chosen.check(metric, here, set(declared))]
    return findings


# ---------------------------------------------------------------- shared


def _header(obj: Mapping[str, Any], kinds: Sequence[str]) -> list[Finding]:
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


def _schema_findings(model: type[BaseModel], data: Mapping[str, Any], prefix: str) -> list[Finding]:
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
        grouped.setdefault(_format_path(prefix, path), []).append((dict(error), parent, last))
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


def _format_path(prefix: str, parts: Sequence[int | str]) -> str:
    out = prefix
    for part in parts:
        out += (
            f"[{short_repr(part)}]" if isinstance(part, int) else f".{part}" if out else str(part)
        )
    return out


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

_VALIDATOR_FIXES = (
    (
        "each step sets exactly one of",
        "sets more or less than one of setWeight, pause, analysis",
        "give each step exactly one of them; put the others in steps of their own",
    ),
    (
        "set only one of gatewayAPI",
        "sets more than one router",
        "keep one of gatewayAPI, istio, nginx, or leave trafficRouting out for replica-ratio "
        "routing",
    ),
    ("thresholdRange needs min, max or both", "has neither min nor max", "set min, max or both"),
    ("thresholdRange.min must not exceed", "min is greater than max", "swap min and max"),
    (
        "provider must name exactly one backend",
        "must name exactly one provider",
        f"keep one of the supported providers: {supported()}",
    ),
    (
        "errorRate comparison needs",
        "an errorRate comparison needs requestsQuery and errorsQuery",
        "add both queries",
    ),
    (
        "latency comparison needs bucketsQuery",
        "a latency comparison needs bucketsQuery",
        "add bucketsQuery: cumulative histogram buckets, one series per le",
    ),
    (
        "a metric has exactly one of thresholdRange, comparison",
        "has both or neither of thresholdRange and comparison",
        "keep one: thresholdRange for a fixed bound, comparison to judge canary against stable",
    ),
    (
        "a thresholdRange metric needs provider.prometheus.query",
        "a thresholdRange metric needs provider.prometheus.query",
        "add the PromQL query that gives one number",
    ),
)

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
        close = _close(last or "", known)
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
        for needle, message, fix in _VALIDATOR_FIXES:
            if needle in text:
                return Finding(field, message, fix)
        return Finding(field, *split_fix(text, "correct the value"))
    if kind in ("literal_error", "enum"):
        return Finding(
            field, f"{short_repr(value)} is not allowed", f"use one of {ctx['expected']}"
        )
    if kind == "string_type" and last in _TIME_FIELDS and _is_int(value) and 0 <= value < 1500:
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


def short_repr(value: Any, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters, in time bounded by `limit`.

    Values come from users: a YAML alias bomb is a list of 10^8 strings by reference (its
    repr would take minutes), and repr() of an int of over 4,300 digits raises ValueError.
    """
    text = _repr_prefix(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _repr_prefix(value: Any, budget: int) -> str:
    """repr(value), or a prefix of it at least `budget` characters long."""
    if _is_int(value) and value.bit_length() > 4 * budget:  # more than `budget` digits
        return f"<{math.floor(math.log10(abs(value))) + 1}-digit integer>"
    if isinstance(value, str | bytes):
        return repr(value[:budget])
    if not isinstance(value, list | tuple | set | dict) or not value:
        return repr(value)
    opening, closing = (
        "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
    )
    text = opening
    for item in value.items() if isinstance(value, dict) else value:
        if len(text) >= budget:
            return text
        left = budget - len(text)
        part = (
            f"{_repr_prefix(item[0], left)}: {_repr_prefix(item[1], left)}"
            if isinstance(value, dict)
            else _repr_prefix(item, left)
        )
        text += part if text == opening else ", " + part
    return text + closing


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.field, f.message) not in seen:
            seen.add((f.field, f.message))
            out.append(f)
    return out
