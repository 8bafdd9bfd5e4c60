"""Validation of a whole Canary object, as stored.

Beyond the schema, the steps: each ``setWeight`` must be higher than every earlier one,
and the first must be above 0. A repeated weight is an error too: to hold a weight, use
a ``pause`` step. (Dialling traffic back is what a rollback does; a rollout only moves
forward.) At least one step must set a weight, and an ``analysis`` step may not run
before the first weight, when the canary has no traffic and could only be Inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import CanarySpec
from canary.validation.analyses import check_analyses
from canary.validation.deploy_window import check_deploy_window
from canary.validation.findings import Finding, is_int, unique
from canary.validation.routing import check_routing
from canary.validation.schema import header_findings, schema_findings
from canary.validation.webhooks import check_webhooks


def validate_canary(
    canary_obj: Mapping[str, Any],
    templates: Mapping[str, AnalysisTemplateSpec] | None,
    *,
    from_files: bool = False,
) -> list[Finding]:
    """Every problem with a Canary object (the whole object, as stored); empty when valid.

    With ``templates=None`` (offline lint without a cluster) template references and args
    are not checked. ``from_files``: the templates are those in the files given to a
    command, not the cluster's, so a missing one is worded as such.
    """
    if not isinstance(canary_obj, Mapping):
        return [
            Finding(
                "(document)",
                "is not a mapping",
                "write a Canary with apiVersion, kind, metadata and spec",
            )
        ]
    findings = header_findings(canary_obj, ("Canary",))
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
    findings += schema_findings(CanarySpec, spec, "spec")
    findings += _check_steps(spec)
    findings += check_routing(spec.get("trafficRouting"))
    findings += check_deploy_window(spec.get("deployWindow"))
    findings += check_webhooks(spec.get("webhooks"))
    if templates is not None:
        findings += check_analyses(spec, templates, from_files=from_files)
    return unique(findings)


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
        if not is_int(weight) or not 0 <= weight <= 100:
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
