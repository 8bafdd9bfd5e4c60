"""The Canary's analyses against its templates: each reference resolves, and each
template gets every arg it needs.

References resolve through the ``templates`` mapping, keyed by
canary.api.canary.template_key: ``templateName`` for an AnalysisTemplate in the
Canary's namespace, ``cluster/<templateName>`` for a ClusterAnalysisTemplate
(``clusterScope: true``). Every template arg without a default must get a value. A
step's analysis sees ``spec.analysis.args`` (the background analysis' args) overridden
by its own ``args``, as the engine measures it; the background analysis sees only its
own. When all args are there, each query is rendered with them (queries.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import template_key
from canary.api.wording import closest
from canary.validation.findings import Finding
from canary.validation.providers import arg_value_findings


def check_analyses(
    spec: Mapping[str, Any],
    templates: Mapping[str, AnalysisTemplateSpec],
    *,
    from_files: bool = False,
) -> list[Finding]:
    findings: list[Finding] = []
    background = spec.get("analysis")
    background_args = _args_of(background, "spec.analysis", findings)
    if isinstance(background, Mapping):
        findings += _check_analysis(
            background, "spec.analysis", background_args, templates, from_files
        )
    steps = spec.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, Mapping) and isinstance(step.get("analysis"), Mapping):
            here = f"spec.steps[{i}].analysis"
            own = _args_of(step["analysis"], here, findings)
            findings += _check_analysis(
                step["analysis"], here, {**background_args, **own}, templates, from_files
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
    from_files: bool,
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
                _missing_template(
                    f"{here}.templates[{j}].templateName", name, cluster, templates, from_files
                )
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
                close = closest(targ.name, [n for n in args if n not in declared])
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
            findings += arg_value_findings(template, name, values, f"{here}.args")
    return findings


def _missing_template(
    field: str,
    name: str,
    cluster: bool,
    templates: Mapping[str, AnalysisTemplateSpec],
    from_files: bool,
) -> Finding:
    kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
    if from_files:
        missing, here = "is not among the files given", "among the files given"
    else:
        here = "in this namespace"
        missing = "does not exist" + ("" if cluster else f" {here}")
    if template_key(name, not cluster) in templates:
        fix = (
            f"an AnalysisTemplate with that name exists {here}; remove clusterScope"
            if cluster
            else "a ClusterAnalysisTemplate with that name exists; set clusterScope: true"
        )
    else:
        same_scope = [
            k.removeprefix("cluster/") for k in templates if k.startswith("cluster/") == cluster
        ]
        close = closest(name, same_scope)
        create = "give the file that defines it" if from_files else f"create the {kind}"
        fix = f"did you mean {close!r}?" if close else f"{create}, or fix the name"
    return Finding(field, f"{kind} {name!r} {missing}", fix)
