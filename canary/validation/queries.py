"""Provider queries and addresses: what a template's queries may hold, and whether the
Canary's arg values can be placed in them.

Placeholders are ``{{args.NAME}}`` (NAME declared in the template's ``spec.args``) and, in
a comparison's queries only, ``{{variant}}`` and ``{{window}}``. Every comparison query
mentions ``{{variant}}`` (otherwise canary and stable read the same series). What is left
(quoting, unclosed placeholders) the renderer itself finds: each query is rendered
(canary.providers.promql), with stand-in values for a template alone and with the
Canary's values once its args are known, so a value that could not be placed safely is
reported before the rollout starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from canary.api.models import AnalysisTemplateSpec, Provider
from canary.errors import PermanentError
from canary.providers.base import validate_address
from canary.providers.promql import render
from canary.validation.findings import Finding, closest, split_fix

# The Provider model's fields: what the fixes for an unknown or missing provider list.
SUPPORTED_PROVIDERS: tuple[str, ...] = tuple(
    f.alias or name for name, f in Provider.model_fields.items()
)
# Placeholders a comparison's queries may use besides {{args.NAME}}.
BUILTIN_PLACEHOLDERS: tuple[str, ...] = ("variant", "window")

_ARG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COMPARISON_QUERIES = ("requestsQuery", "errorsQuery", "bucketsQuery")


def metric_query_findings(
    metric: Mapping[str, Any], here: str, declared: Mapping[str, str]
) -> list[Finding]:
    """Problems in the queries and provider address of one template metric at `here`."""
    findings: list[Finding] = []
    provider = metric.get("provider")
    prom = provider.get("prometheus") if isinstance(provider, Mapping) else None
    if isinstance(prom, Mapping):
        if isinstance(prom.get("query"), str):
            findings += _check_query(
                prom["query"], f"{here}.provider.prometheus.query", declared, comparison=False
            )
        if isinstance(prom.get("address"), str):
            findings += _check_address(prom["address"], f"{here}.provider.prometheus.address")
    comparison = metric.get("comparison")
    if isinstance(comparison, Mapping):
        for key in _COMPARISON_QUERIES:
            if isinstance(comparison.get(key), str):
                findings += _check_query(
                    comparison[key], f"{here}.comparison.{key}", declared, comparison=True
                )
    return findings


def render_problems(
    template: AnalysisTemplateSpec, name: str, values: Mapping[str, str], field: str
) -> list[Finding]:
    """Render every query with the Canary's values: a value that cannot be placed safely."""
    findings = []
    for metric in template.metrics:
        for query, comparison in _queries_of(metric):
            try:
                render(
                    query,
                    values,
                    variant="canary" if comparison else None,
                    window_seconds=60.0 if comparison else None,
                )
            except PermanentError as err:
                message, fix = split_fix(
                    str(err), "change the arg's value, or the template's query"
                )
                findings.append(
                    Finding(field, f"template {name!r}, metric {metric.name!r}: {message}", fix)
                )
    return findings


def _queries_of(metric: Any) -> Iterable[tuple[str, bool]]:
    prom = metric.provider.prometheus
    if prom is not None and prom.query:
        yield prom.query, False
    if metric.comparison is not None:
        for q in (
            metric.comparison.requests_query,
            metric.comparison.errors_query,
            metric.comparison.buckets_query,
        ):
            if q:
                yield q, True


def _placeholders(query: str) -> Iterator[tuple[str, str]]:
    """(whole, inner) for each {{...}} in `query`, in one pass: a regex with a lazy
    wildcard would rescan to the end from every unclosed "{{" (quadratic in the length)."""
    start = query.find("{{")
    while start != -1:
        end = query.find("}}", start + 2)
        if end == -1:
            return  # unclosed: the renderer reports it
        yield query[start : end + 2], query[start + 2 : end]
        start = query.find("{{", end + 2)


def _shown(text: str, limit: int = 60) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r} (+{len(text) - limit} more characters)"


def _check_query(
    query: str, field: str, declared: Mapping[str, str], *, comparison: bool
) -> list[Finding]:
    findings: list[Finding] = []
    known = ", ".join(sorted(declared)) or "none"
    mentions_variant = False
    problem = False
    for whole, inner in _placeholders(query):
        inner = inner.strip()
        if inner.startswith("args.") and _ARG_NAME.fullmatch(inner[5:]):
            arg = inner[5:]
            if arg not in declared:
                problem = True
                close = closest(arg, declared)
                findings.append(
                    Finding(
                        field,
                        f"uses {{{{args.{arg}}}}} but spec.args does not declare {arg!r}",
                        f"did you mean {{{{args.{close}}}}}?"
                        if close
                        else f"add {{name: {arg}}} to spec.args (declared: {known})",
                    )
                )
        elif inner in BUILTIN_PLACEHOLDERS:
            mentions_variant |= inner == "variant"
            if not comparison:
                problem = True
                findings.append(
                    Finding(
                        field,
                        f"uses {{{{{inner}}}}}, which only a comparison's queries can use",
                        "use a comparison metric to judge canary against stable, or remove it",
                    )
                )
        else:
            problem = True
            findings.append(
                Finding(
                    field,
                    f"has an unknown placeholder {_shown(whole)}",
                    "use {{args.NAME}}, or {{variant}} / {{window}} in a comparison's queries",
                )
            )
    if comparison and not mentions_variant:
        problem = True
        findings.append(
            Finding(
                field,
                "does not mention {{variant}}, so canary and stable would read the same series",
                'select the variant with a label matcher, e.g. {variant="{{variant}}"}',
            )
        )
    if not problem:
        # What is left for the renderer to find: quoting and unclosed placeholders.
        names = {
            inner.strip()[5:]
            for _, inner in _placeholders(query)
            if inner.strip().startswith("args.")
        }
        try:
            render(
                query,
                dict.fromkeys(names, "x"),
                variant="canary" if comparison else None,
                window_seconds=60.0 if comparison else None,
            )
        except PermanentError as err:
            message, fix = split_fix(str(err), "fix the query's quoting or placeholders")
            findings.append(Finding(field, message, fix))
    return findings


def _check_address(address: str, field: str) -> list[Finding]:
    if "{{" in address:
        return [
            Finding(
                field,
                "has a placeholder, but the address is used as written",
                "write the full URL, e.g. http://prometheus.monitoring:9090",
            )
        ]
    try:
        validate_address(address, field="the address")
    except PermanentError as err:
        return [
            Finding(field, str(err), "write the full URL, e.g. http://prometheus.monitoring:9090")
        ]
    return []
