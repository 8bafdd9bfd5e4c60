"""What ``canary lint`` and the controller check in a Prometheus metric before measuring.

Template level (:func:`check`): every ``{{...}}`` in the PromQL is a declared arg, or
``{{variant}}``/``{{window}}`` in a comparison's queries; comparison queries select the
variant; quoting renders; the rendered query parses as PromQL (promql-parser); the address
is a full URL. Canary level (:func:`try_args`): the Canary's arg values can be placed safely
in every query.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Set
from typing import Any

import promql_parser

from canary.api.analysis_template import Metric
from canary.api.wording import closest, shown, split_fix
from canary.errors import PermanentError
from canary.providers.base import ConfigProblem, validate_address
from canary.providers.prometheus.promql import render

__all__ = ["BUILTIN_PLACEHOLDERS", "check", "try_args"]

BUILTIN_PLACEHOLDERS: tuple[str, ...] = ("variant", "window")
_ARG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COMPARISON_QUERIES = ("requestsQuery", "errorsQuery", "bucketsQuery")
# An arg outside quotes is an identifier, a number or a duration, depending on where it
# stands; a number parses wherever a duration does, so these two cover every position.
_STAND_INS = ("x", "1")
# The parser is Rust and recursive: far deeper nesting overflows its stack and kills the
# process (the controller checks templates too), and no real query comes near this.
_MAX_DEPTH = 200
_MAX_TRIES = 64


def check(metric: Mapping[str, Any], where: str, declared: Set[str]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    provider = metric.get("provider")
    block = provider.get("prometheus") if isinstance(provider, Mapping) else None
    block = block if isinstance(block, Mapping) else {}
    here = f"{where}.provider.prometheus"
    if isinstance(block.get("query"), str):
        problems += _check_query(block["query"], f"{here}.query", declared, comparison=False)
    elif "thresholdRange" in metric:
        problems.append(
            ConfigProblem(
                where,
                "a thresholdRange metric needs provider.prometheus.query",
                "add the PromQL query that gives one number",
            )
        )
    if isinstance(block.get("address"), str):
        problems += _check_address(block["address"], f"{here}.address")
    comparison = metric.get("comparison")
    if isinstance(comparison, Mapping):
        for key in _COMPARISON_QUERIES:
            if isinstance(comparison.get(key), str):
                problems += _check_query(
                    comparison[key], f"{where}.comparison.{key}", declared, comparison=True
                )
    return problems


def try_args(metric: Metric, values: Mapping[str, str]) -> list[str]:
    """Each query rendered with the Canary's values: what cannot be placed safely."""
    out = []
    for query, comparison in _queries_of(metric):
        try:
            render(
                query,
                values,
                variant="canary" if comparison else None,
                window_seconds=60.0 if comparison else None,
            )
        except PermanentError as err:
            out.append(str(err))
    return out


def _queries_of(metric: Metric) -> Iterator[tuple[str, bool]]:
    query = metric.provider.backend[1].get("query")
    if isinstance(query, str) and query:
        yield query, False
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


def _check_query(
    query: str, field: str, declared: Set[str], *, comparison: bool
) -> list[ConfigProblem]:
    findings: list[ConfigProblem] = []
    known = ", ".join(sorted(declared)) or "none"
    mentions_variant = False
    problem = False
    for whole, inner in _placeholders(query):
        inner = inner.strip()
        if inner.startswith("args.") and _ARG_NAME.fullmatch(inner[5:]):
            arg = inner[5:]
            if arg not in declared:
                problem = True
                near = closest(arg, declared)
                findings.append(
                    ConfigProblem(
                        field,
                        f"uses {{{{args.{arg}}}}} but spec.args does not declare {arg!r}",
                        f"did you mean {{{{args.{near}}}}}?"
                        if near
                        else f"add {{name: {arg}}} to spec.args (declared: {known})",
                    )
                )
        elif inner in BUILTIN_PLACEHOLDERS:
            mentions_variant |= inner == "variant"
            if not comparison:
                problem = True
                findings.append(
                    ConfigProblem(
                        field,
                        f"uses {{{{{inner}}}}}, which only a comparison's queries can use",
                        "use a comparison metric to judge canary against stable, or remove it",
                    )
                )
        else:
            problem = True
            findings.append(
                ConfigProblem(
                    field,
                    f"has an unknown placeholder {shown(whole)}",
                    "use {{args.NAME}}, or {{variant}} / {{window}} in a comparison's queries",
                )
            )
    if comparison and not mentions_variant:
        problem = True
        findings.append(
            ConfigProblem(
                field,
                "does not mention {{variant}}, so canary and stable would read the same series",
                'select the variant with a label matcher, e.g. {variant="{{variant}}"}',
            )
        )
    if not problem:
        # What is left for the renderer to find: quoting and unclosed placeholders.
        names = sorted(
            {
                inner.strip()[5:]
                for _, inner in _placeholders(query)
                if inner.strip().startswith("args.")
            }
        )
        try:
            rendered = [
                render(
                    query,
                    dict(zip(names, values, strict=True)),
                    variant="canary" if comparison else None,
                    window_seconds=60.0 if comparison else None,
                )
                for values in itertools.islice(
                    itertools.product(_STAND_INS, repeat=len(names)), _MAX_TRIES
                )
            ]
        except PermanentError as err:
            message, fix = split_fix(str(err), "fix the query's quoting or placeholders")
            findings.append(ConfigProblem(field, message, fix))
        else:
            findings += _check_syntax(rendered, field)
    return findings


def _check_syntax(renderings: list[str], field: str) -> list[ConfigProblem]:
    """A problem unless one of the renderings (the query with each choice of stand-ins for
    its args) parses: which stand-in fits an arg depends on where it stands."""
    if _depth(renderings[0]) > _MAX_DEPTH:
        return [
            ConfigProblem(
                field,
                f"nests brackets more than {_MAX_DEPTH} deep",
                "simplify the query",
            )
        ]
    errors = []
    for text in renderings:
        try:
            promql_parser.parse(text)
        except ValueError as err:
            errors.append(str(err))
        else:
            return []
    # An error quoting a stand-in ("unexpected character inside brackets: 'x'") is about
    # the stand-in in the wrong place, not about the query.
    error = next((e for e in errors if not any(f"'{s}'" in e for s in _STAND_INS)), errors[0])
    return [
        ConfigProblem(
            field,
            f"is not valid PromQL: {error}",
            "fix the query; try it in the Prometheus UI's expression browser",
        )
    ]


def _depth(text: str) -> int:
    deepest = depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def _check_address(address: str, field: str) -> list[ConfigProblem]:
    if "{{" in address:
        return [
            ConfigProblem(
                field,
                "has a placeholder, but the address is used as written",
                "write the full URL, e.g. http://prometheus.monitoring:9090",
            )
        ]
    try:
        validate_address(address, field="the address")
    except PermanentError as err:
        return [
            ConfigProblem(
                field, str(err), "write the full URL, e.g. http://prometheus.monitoring:9090"
            )
        ]
    return []
