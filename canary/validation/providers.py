"""A metric's provider block, checked by the provider plug-in it names.

The plug-in (canary.providers) owns its block: its schema, its own checks (for
Prometheus, the PromQL placeholders, quoting and address), and whether the Canary's arg
values can be used safely, so a value that could not be placed is reported before the
rollout starts. Here is only what holds for every plug-in: the name must be registered,
and a comparison metric needs a plug-in that counts each variant's requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.wording import split_fix
from canary.errors import PermanentError
from canary.providers.registry import plugin, supported
from canary.validation.findings import Finding
from canary.validation.schema import schema_findings


def provider_findings(
    metric: Mapping[str, Any], here: str, declared: Mapping[str, str]
) -> list[Finding]:
    """Problems in the provider block (and the queries it reads) of one template metric."""
    provider = metric.get("provider")
    if not isinstance(provider, Mapping) or len(provider) != 1:
        return []  # the schema findings say so
    ((name, block),) = provider.items()
    where = f"{here}.provider.{name}"
    try:
        chosen = plugin(name)
    except PermanentError:
        return [
            Finding(where, f"unknown provider {name!r}", f"use a supported provider: {supported()}")
        ]
    if not isinstance(block, Mapping):
        return [Finding(where, "is not a mapping", "write the provider's settings as fields")]
    findings = schema_findings(chosen.config, block, where)
    if "comparison" in metric and not chosen.comparisons:
        findings.append(
            Finding(
                f"{here}.comparison",
                f"the {name} provider cannot count each variant's requests",
                "use thresholdRange with this provider, or a provider that supports comparisons",
            )
        )
    return findings + [Finding(*p) for p in chosen.check(metric, here, set(declared))]


def arg_value_findings(
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
