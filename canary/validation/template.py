"""Validation of an AnalysisTemplate or ClusterAnalysisTemplate object, as stored.

Beyond the schema and the queries (queries.py): arg and metric names are unique.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.validation.findings import Finding, unique
from canary.validation.providers import provider_findings
from canary.validation.schema import header_findings, schema_findings

TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")


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
    findings = header_findings(template_obj, TEMPLATE_KINDS)
    spec = template_obj.get("spec")
    if spec is None:
        findings.append(Finding("spec", "is missing", "add a spec with args and metrics"))
        return findings
    if not isinstance(spec, Mapping):
        findings.append(Finding("spec", "is not a mapping", "write spec as fields: args, metrics"))
        return findings
    findings += schema_findings(AnalysisTemplateSpec, spec, "spec")

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
        findings += provider_findings(metric, here, declared)
    return unique(findings)
