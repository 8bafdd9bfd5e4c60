"""The ``{{variant}}`` placeholder of comparison queries: what each side's query reads,
including when --canary-selector / --stable-selector point it elsewhere (see analyze.py)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from canary.api.analysis_template import Metric
from canary.engine.samples import (
    BucketsSample,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
)
from canary.errors import PermanentError
from canary.providers.base import MetricProvider
from canary.providers.prometheus.promql import render

__all__ = ["PINNED_ARG", "measure", "rendered_queries"]

_VARIANT = re.compile(r"\{\{\s*variant\s*\}\}")
PINNED_ARG = "canary_analyze_variant"  # stands in for {{variant}} when selectors are set
_QUERY_ROLES = ("requestsQuery", "errorsQuery", "bucketsQuery")


def rendered_queries(
    metric: Metric,
    args: Mapping[str, str],
    window_seconds: float,
    canary: str = "canary",
    stable: str = "stable",
) -> str | dict[str, dict[str, str]]:
    """What the provider sends: the threshold query, or each comparison query per variant
    (``{"requestsQuery": {"canary": ..., "stable": ...}, ...}``). Raises PermanentError
    when a value cannot be placed safely."""
    comparison = metric.comparison
    if comparison is None:
        query = metric.provider.backend[1].get("query")
        return render(query if isinstance(query, str) else "", args)
    out: dict[str, dict[str, str]] = {}
    for role in _QUERY_ROLES:
        template = getattr(comparison, _snake(role))
        if template:
            out[role] = {
                side: render(template, args, variant=value, window_seconds=window_seconds)
                for side, value in (("canary", canary), ("stable", stable))
            }
    return out


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


def measure(provider: MetricProvider, task: MetricTask, canary: str, stable: str) -> Sample:
    """provider.measure(task), with {{variant}} standing for the selectors' values."""
    try:
        comparison = task.metric.comparison
        if comparison is None or (canary, stable) == ("canary", "stable"):
            return provider.measure(task)
        pinned = _pin_variant(task.metric)
        sides: dict[str, Sample] = {}
        for side, value in (("canary", canary), ("stable", stable)):
            one = dataclasses.replace(task, metric=pinned, args={**task.args, PINNED_ARG: value})
            sides[side] = provider.measure(one)
            if isinstance(sides[side], ProviderFailure):
                return sides[side]
        c, s = sides["canary"], sides["stable"]
        if isinstance(c, CountsSample) and isinstance(s, CountsSample):
            return CountsSample(canary=c.canary, stable=s.stable)
        if isinstance(c, BucketsSample) and isinstance(s, BucketsSample):
            return BucketsSample(canary=c.canary, stable=s.stable, baseline=s.baseline)
        return c  # the wrong kind of sample: evaluate() reports it as an Error
    except PermanentError as err:  # e.g. the registry rejecting the provider block
        return ProviderFailure(str(err), transient=False)


def _pin_variant(metric: Metric) -> Metric:
    """The metric with {{variant}} replaced by an arg, so one render reads one variant."""
    comparison = metric.comparison
    assert comparison is not None
    placeholder = "{{args." + PINNED_ARG + "}}"
    update = {
        _snake(role): _VARIANT.sub(placeholder, q)
        for role in _QUERY_ROLES
        if (q := getattr(comparison, _snake(role)))
    }
    return metric.model_copy(update={"comparison": comparison.model_copy(update=update)})
