"""canary.validation: each bad input gives a Finding naming the field and the fix."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import template_key
from canary.validation import (
    Finding,
    short_repr,
    validate_canary,
    validate_template,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

# The example from DESIGN.md.
CANARY = yaml.safe_load(
    """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout, namespace: shop}
spec:
  targetRef: {kind: Deployment, name: checkout}
  service: {port: 80, targetPort: 8080}
  trafficRouting:
    gatewayAPI: {httpRoute: checkout}
  steps:
    - setWeight: 1
    - analysis: {templates: [{templateName: http-error-rate}]}
    - setWeight: 10
    - pause: {duration: 2m}
    - setWeight: 50
    - pause: {}
  analysis:
    interval: 30s
    templates: [{templateName: http-error-rate}, {templateName: http-latency}]
    args: [{name: service, value: checkout}]
  deployWindow: {timezone: Europe/Berlin, days: [Mon, Tue, Wed, Thu], start: "09:00", end: "16:00"}
  progressDeadlineSeconds: 600
"""
)

TEMPLATE = yaml.safe_load(
    """
apiVersion: canary.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: http-error-rate, namespace: shop}
spec:
  args:
    - {name: service}
    - {name: job, value: app}
  metrics:
    - name: error-rate
      interval: 1m
      provider:
        prometheus:
          query: >-
            sum(rate(http_requests_total{service="{{args.service}}",
            job="{{ args.job }}",code=~"5.."}[1m]))
            / sum(rate(http_requests_total{service="{{args.service}}"}[1m]))
      thresholdRange: {max: 0.05}
      failureLimit: 1
    - name: error-ratio
      provider: {prometheus: {address: "http://prometheus.monitoring:9090"}}
      comparison:
        type: errorRate
        tolerance: 1.2
        requestsQuery: >-
          sum(increase(http_requests_total{service="{{args.service}}",
          variant="{{variant}}"}[{{window}}]))
        errorsQuery: >-
          sum(increase(http_requests_total{service="{{args.service}}",
          variant="{{variant}}",code=~"5.."}[{{window}}]))
    - name: p99
      provider: {prometheus: {}}
      comparison:
        type: latency
        tolerance: 1.5
        bucketsQuery: >-
          sum by (le) (increase(http_request_duration_seconds_bucket{
          variant="{{variant}}"}[{{window}}]))
"""
)

LATENCY = AnalysisTemplateSpec.model_validate(
    {
        "args": [{"name": "service"}, {"name": "range", "value": "5m"}],
        "metrics": [
            {
                "name": "p99",
                "provider": {
                    "prometheus": {
                        "query": 'histogram_quantile(0.99, sum by (le) (rate(h_bucket{'
                        'service="{{args.service}}"}[{{args.range}}])))'
                    }
                },
                "thresholdRange": {"max": 0.5},
            }
        ],
    }
)
TEMPLATES = {
    "http-error-rate": AnalysisTemplateSpec.model_validate(TEMPLATE["spec"]),
    "http-latency": LATENCY,
}


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of obj with the dotted path ("spec.steps.0.setWeight") set or deleted."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return out


_DELETE = object()


def _steps(*steps: dict[str, Any]) -> dict[str, Any]:
    return _set(CANARY, "spec.steps", list(steps))


# ---------------------------------------------------------------- good inputs


def test_design_example_is_valid_with_templates() -> None:
    assert validate_canary(CANARY, TEMPLATES) == []


def test_design_example_is_valid_offline() -> None:
    assert validate_canary(CANARY, None) == []


def test_good_template_is_valid() -> None:
    assert validate_template(TEMPLATE) == []
    assert validate_template({**TEMPLATE, "kind": "ClusterAnalysisTemplate"}) == []


def test_step_analysis_inherits_background_args() -> None:
    # The design example's step analysis gets `service` from spec.analysis.args.
    obj = _set(CANARY, "spec.analysis", _DELETE)
    findings = validate_canary(obj, TEMPLATES)
    assert [f.field for f in findings] == ["spec.steps[1].analysis.args"]
    assert "'service'" in findings[0].message
    assert "spec.analysis.args" in findings[0].fix


def test_cluster_template_resolves_with_cluster_scope() -> None:
    obj = _set(CANARY, "spec.analysis.templates.1.clusterScope", True)
    templates = {"http-error-rate": TEMPLATES["http-error-rate"], "cluster/http-latency": LATENCY}
    assert validate_canary(obj, templates) == []


def test_overnight_window_is_allowed() -> None:
    obj = _set(CANARY, "spec.deployWindow", {"start": "22:00", "end": "06:00"})
    assert validate_canary(obj, None) == []
    whole_day = _set(CANARY, "spec.deployWindow", {"start": "00:00", "end": "24:00"})
    assert validate_canary(whole_day, None) == []


def test_finding_format_and_immutability() -> None:
    finding = Finding("spec.steps[3].setWeight", "40 is lower than the previous weight 50",
                      "weights must increase; reorder the steps")
    assert str(finding) == (
        "spec.steps[3].setWeight: 40 is lower than the previous weight 50 "
        "(weights must increase; reorder the steps)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.field = "x"  # type: ignore[misc]


def test_template_key() -> None:
    assert template_key("a") == "a"
    assert template_key("a", cluster_scope=True) == "cluster/a"


def test_weight_example_from_the_brief() -> None:
    obj = _steps({"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 40})
    assert [str(f) for f in validate_canary(obj, None)] == [
        "spec.steps[3].setWeight: 40 is lower than the previous weight 50 "
        "(weights must increase; reorder the steps)"
    ]


# ---------------------------------------------------------------- bad Canaries

Case = tuple[str, Callable[[], dict[str, Any]], str, str, str]

CANARY_CASES: list[Case] = [
    # (id, make the object, field, text in message, text in fix)
    ("weight-decreases", lambda: _steps({"setWeight": 10}, {"setWeight": 50}, {"setWeight": 40}),
     "spec.steps[2].setWeight", "40 is lower than the previous weight 50", "reorder"),
    ("weight-repeats", lambda: _steps({"setWeight": 10}, {"pause": {}}, {"setWeight": 10}),
     "spec.steps[2].setWeight", "repeats the weight of spec.steps[0]", "pause"),
    ("weight-zero-first", lambda: _steps({"setWeight": 0}, {"setWeight": 10}),
     "spec.steps[0].setWeight", "no traffic", "above 0"),
    ("weight-over-100", lambda: _steps({"setWeight": 10}, {"setWeight": 101}),
     "spec.steps[1].setWeight", "above the maximum 100", "100 or less"),
    ("weight-not-a-number", lambda: _steps({"setWeight": "ten"}),
     "spec.steps[0].setWeight", "is not an integer", "integer"),
    ("no-weights", lambda: _steps({"pause": {"duration": "1m"}}),
     "spec.steps", "no step sets a weight", "setWeight"),
    ("analysis-before-traffic",
     lambda: _steps({"analysis": {"templates": [{"templateName": "http-latency"}]}},
                    {"setWeight": 10}),
     "spec.steps[0].analysis", "no traffic", "setWeight step before it"),
    ("step-two-kinds", lambda: _steps({"setWeight": 10, "pause": {}}),
     "spec.steps[0]", "sets setWeight and pause", "step of its own"),
    ("step-empty", lambda: _steps({"setWeight": 10}, {}),
     "spec.steps[1]", "sets none of", "pause: {}"),
    ("step-typo", lambda: _steps({"setWieght": 10}),
     "spec.steps[0].setWieght", "not a known field", "did you mean 'setWeight'"),
    ("no-steps", lambda: _steps(), "spec.steps", "is empty", "add at least 1 item"),
    ("bad-pause-duration", lambda: _steps({"setWeight": 10}, {"pause": {"duration": "5x"}}),
     "spec.steps[1].pause.duration", "'5x' is not a duration", "30s"),
    ("bad-interval", lambda: _set(CANARY, "spec.analysis.interval", "30"),
     "spec.analysis.interval", "is not a duration", "unit"),
    ("two-routers",
     lambda: _set(CANARY, "spec.trafficRouting.nginx", {"ingress": "checkout"}),
     "spec.trafficRouting", "more than one router", "replica-ratio"),
    ("target-port-type", lambda: _set(CANARY, "spec.service.targetPort", [8080]),
     "spec.service.targetPort", "is not an integer or a string", "write an integer or a string"),
    ("port-zero", lambda: _set(CANARY, "spec.service.port", 0),
     "spec.service.port", "below the minimum 1", "1 or more"),
    ("target-missing", lambda: _set(CANARY, "spec.targetRef", _DELETE),
     "spec.targetRef", "is required", "add targetRef"),
    ("target-kind", lambda: _set(CANARY, "spec.targetRef.kind", "StatefulSet"),
     "spec.targetRef.kind", "'StatefulSet' is not allowed", "'Deployment'"),
    ("unknown-day", lambda: _set(CANARY, "spec.deployWindow.days", ["Mon", "Funday"]),
     "spec.deployWindow.days[1]", "'Funday' is not allowed", "'Mon'"),
    ("unknown-timezone", lambda: _set(CANARY, "spec.deployWindow.timezone", "Mars/Olympus"),
     "spec.deployWindow.timezone", "not a known time zone", "Europe/Berlin"),
    ("timezone-case", lambda: _set(CANARY, "spec.deployWindow.timezone", "europe/berlin"),
     "spec.deployWindow.timezone", "not a known time zone", "did you mean 'Europe/Berlin'"),
    ("timezone-directory", lambda: _set(CANARY, "spec.deployWindow.timezone", "Europe"),
     "spec.deployWindow.timezone", "not a known time zone", "IANA"),
    ("start-equals-end", lambda: _set(CANARY, "spec.deployWindow.end", "09:00"),
     "spec.deployWindow.end", "equals start (09:00)", '"24:00"'),
    ("end-after-midnight", lambda: _set(CANARY, "spec.deployWindow.end", "24:30"),
     "spec.deployWindow.end", "24:30 is after 24:00", "up to 24:00"),
    ("start-not-a-time", lambda: _set(CANARY, "spec.deployWindow.start", "9am"),
     "spec.deployWindow.start", "'9am' is not a time", '"09:00"'),
    ("unquoted-yaml-time", lambda: _set(CANARY, "spec.deployWindow.end", 960),
     "spec.deployWindow.end", "base 60", 'quote the time: "16:00"'),
    ("no-days", lambda: _set(CANARY, "spec.deployWindow.days", []),
     "spec.deployWindow.days", "never opens", "Mon"),
    ("missing-template", lambda: _set(CANARY, "spec.analysis.templates.1.templateName", "nope"),
     "spec.analysis.templates[1].templateName", "AnalysisTemplate 'nope' does not exist",
     "create the AnalysisTemplate"),
    ("template-typo",
     lambda: _set(CANARY, "spec.steps.1.analysis.templates.0.templateName", "http-eror-rate"),
     "spec.steps[1].analysis.templates[0].templateName", "does not exist",
     "did you mean 'http-error-rate'"),
    ("template-wrong-scope",
     lambda: _set(CANARY, "spec.analysis.templates.0.clusterScope", True),
     "spec.analysis.templates[0].templateName",
     "ClusterAnalysisTemplate 'http-error-rate' does not exist", "remove clusterScope"),
    ("missing-arg", lambda: _set(CANARY, "spec.analysis.args", []),
     "spec.analysis.args", "needs arg 'service', which is not given",
     "add {name: service, value: ...} to spec.analysis.args"),
    ("misnamed-arg",
     lambda: _set(CANARY, "spec.analysis.args", [{"name": "servic", "value": "checkout"}]),
     "spec.analysis.args", "needs arg 'service'", "rename arg 'servic' to 'service'"),
    ("arg-without-value", lambda: _set(CANARY, "spec.analysis.args", [{"name": "service"}]),
     "spec.analysis.args[0].value", "has no value", "set value"),
    ("duplicate-arg",
     lambda: _set(CANARY, "spec.analysis.args",
                  [{"name": "service", "value": "a"}, {"name": "service", "value": "b"}]),
     "spec.analysis.args[1].name", "given twice", "remove one"),
    ("unsafe-arg-value",
     lambda: _set(CANARY, "spec.analysis.args",
                  [{"name": "service", "value": "checkout"},
                   {"name": "range", "value": "5m]) or vector(1"}]),
     "spec.analysis.args", "template 'http-latency', metric 'p99'", "change the value"),
    ("wrong-kind", lambda: {**CANARY, "kind": "Rollout"}, "kind", "'Rollout' is not Canary",
     "set kind: Canary"),
    ("wrong-api-version", lambda: {**CANARY, "apiVersion": "canary.dev/v1"}, "apiVersion",
     "is not canary.dev/v1alpha1", "set apiVersion"),
    ("no-name", lambda: {**CANARY, "metadata": {}}, "metadata.name", "is missing", "name"),
    ("no-spec", lambda: _set(CANARY, "spec", _DELETE), "spec", "is missing", "targetRef"),
    ("spec-not-mapping", lambda: _set(CANARY, "spec", [1]), "spec", "not a mapping", "fields"),
]


@pytest.mark.parametrize(("make", "field", "message", "fix"),
                         [c[1:] for c in CANARY_CASES], ids=[c[0] for c in CANARY_CASES])
def test_bad_canary(make: Callable[[], dict[str, Any]], field: str, message: str,
                    fix: str) -> None:
    templates = {**TEMPLATES, "cluster/http-latency-global": LATENCY}
    findings = validate_canary(make(), templates)
    matching = [f for f in findings if f.field == field and message in f.message]
    assert matching, f"no finding for {field} with {message!r} in:\n" + "\n".join(
        map(str, findings))
    assert fix in matching[0].fix, str(matching[0])


def test_not_a_mapping() -> None:
    assert [f.field for f in validate_canary(["x"], None)] == ["(document)"]  # type: ignore[arg-type]
    assert [f.field for f in validate_template("x")] == ["(document)"]  # type: ignore[arg-type]


def test_template_checks_skipped_offline() -> None:
    obj = _set(CANARY, "spec.analysis.templates.1.templateName", "nope")
    assert validate_canary(obj, None) == []


def test_union_tags_do_not_leak_into_paths() -> None:
    findings = validate_canary(_set(CANARY, "spec.service.targetPort", 1.5), None)
    assert all(".int" not in f.field and ".str" not in f.field for f in findings)
    assert [f.field for f in findings] == ["spec.service.targetPort"]


def test_every_finding_has_field_message_and_fix() -> None:
    for _, make, *_ in CANARY_CASES:
        for f in validate_canary(make(), TEMPLATES):
            assert f.field and f.message and f.fix, f


# ---------------------------------------------------------------- bad templates


def _metric(i: int, path: str, value: Any) -> dict[str, Any]:
    return _set(TEMPLATE, f"spec.metrics.{i}.{path}", value)


TEMPLATE_CASES: list[Case] = [
    ("unknown-provider", lambda: _metric(0, "provider", {"datadog": {"query": "x"}}),
     "spec.metrics[0].provider.datadog", "unknown provider 'datadog'",
     "supported provider: prometheus, web"),
    ("no-provider", lambda: _metric(1, "provider", {}),
     "spec.metrics[1].provider", "must name exactly one provider", "prometheus"),
    ("undeclared-arg",
     lambda: _metric(0, "provider.prometheus.query", 'up{service="{{args.servce}}"}'),
     "spec.metrics[0].provider.prometheus.query", "does not declare 'servce'",
     "did you mean {{args.service}}"),
    ("undeclared-arg-no-match",
     lambda: _metric(0, "provider.prometheus.query", 'up{ns="{{args.namespace}}"}'),
     "spec.metrics[0].provider.prometheus.query", "does not declare 'namespace'",
     "add {name: namespace} to spec.args"),
    ("unknown-placeholder",
     lambda: _metric(0, "provider.prometheus.query", 'up{x="{{arg.service}}"}'),
     "spec.metrics[0].provider.prometheus.query", "unknown placeholder '{{arg.service}}'",
     "{{args.NAME}}"),
    ("variant-in-threshold",
     lambda: _metric(0, "provider.prometheus.query", 'up{variant="{{variant}}"}'),
     "spec.metrics[0].provider.prometheus.query", "only a comparison's queries",
     "comparison metric"),
    ("comparison-without-variant",
     lambda: _metric(1, "comparison.errorsQuery", 'sum(errors{code=~"5.."})'),
     "spec.metrics[1].comparison.errorsQuery", "does not mention {{variant}}",
     '{variant="{{variant}}"}'),
    ("buckets-without-variant",
     lambda: _metric(2, "comparison.bucketsQuery", "sum by (le) (rate(h_bucket[1m]))"),
     "spec.metrics[2].comparison.bucketsQuery", "does not mention {{variant}}", "label matcher"),
    ("unterminated-string",
     lambda: _metric(0, "provider.prometheus.query", 'up{service="{{args.service}}}'),
     "spec.metrics[0].provider.prometheus.query", "unterminated", "quoting"),
    ("bad-address", lambda: _metric(1, "provider.prometheus.address", "prometheus:9090"),
     "spec.metrics[1].provider.prometheus.address", "http://", "full URL"),
    ("templated-address",
     lambda: _metric(1, "provider.prometheus.address", "http://{{args.service}}:9090"),
     "spec.metrics[1].provider.prometheus.address", "used as written", "full URL"),
    ("duplicate-metric", lambda: _metric(2, "name", "error-rate"),
     "spec.metrics[2].name", "used by spec.metrics[0] too", "own name"),
    ("duplicate-arg", lambda: _set(TEMPLATE, "spec.args", [{"name": "service"}] * 2),
     "spec.args[1].name", "declared twice", "remove one"),
    ("no-check", lambda: _metric(0, "thresholdRange", _DELETE),
     "spec.metrics[0]", "both or neither", "keep one"),
    ("empty-range", lambda: _metric(0, "thresholdRange", {}),
     "spec.metrics[0].thresholdRange", "neither min nor max", "set min, max or both"),
    ("inverted-range", lambda: _metric(0, "thresholdRange", {"min": 2, "max": 1}),
     "spec.metrics[0].thresholdRange", "min is greater than max", "swap"),
    ("error-rate-queries", lambda: _metric(1, "comparison.errorsQuery", _DELETE),
     "spec.metrics[1].comparison", "needs requestsQuery and errorsQuery", "add both"),
    ("latency-buckets", lambda: _metric(2, "comparison.bucketsQuery", _DELETE),
     "spec.metrics[2].comparison", "needs bucketsQuery", "bucketsQuery"),
    ("threshold-needs-query", lambda: _metric(0, "provider.prometheus.query", _DELETE),
     "spec.metrics[0]", "needs provider.prometheus.query", "PromQL"),
    ("bad-interval", lambda: _metric(0, "interval", "10"),
     "spec.metrics[0].interval", "'10' is not a duration", "unit"),
    ("quantile-range", lambda: _metric(2, "comparison.quantile", 1.5),
     "spec.metrics[2].comparison.quantile", "must be below 1", "below 1"),
    ("unknown-comparison", lambda: _metric(2, "comparison.type", "saturation"),
     "spec.metrics[2].comparison.type", "'saturation' is not allowed", "'errorRate'"),
    ("no-metrics", lambda: _set(TEMPLATE, "spec.metrics", []),
     "spec.metrics", "is empty", "add at least 1"),
    ("wrong-kind", lambda: {**TEMPLATE, "kind": "Canary"},
     "kind", "is not AnalysisTemplate or ClusterAnalysisTemplate", "AnalysisTemplate"),
]


@pytest.mark.parametrize(("make", "field", "message", "fix"),
                         [c[1:] for c in TEMPLATE_CASES], ids=[c[0] for c in TEMPLATE_CASES])
def test_bad_template(make: Callable[[], dict[str, Any]], field: str, message: str,
                      fix: str) -> None:
    findings = validate_template(make())
    matching = [f for f in findings if f.field == field and message in f.message]
    assert matching, f"no finding for {field} with {message!r} in:\n" + "\n".join(
        map(str, findings))
    assert fix in matching[0].fix, str(matching[0])


def test_unknown_provider_is_one_finding() -> None:
    findings = validate_template(_metric(0, "provider", {"datadog": {}}))
    assert [f.field for f in findings] == ["spec.metrics[0].provider.datadog"]


def test_shipped_templates_pass() -> None:
    """Every template in analysis_templates/ (when there are any) lints clean."""
    paths = sorted((REPO / "analysis_templates").glob("*.y*ml"))
    if not paths:
        pytest.skip("no analysis_templates/ yet")
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert validate_template(doc) == [], path.name


# ---------------------------------------------------------------- hostile values


def test_short_repr_is_repr_cut_to_40_characters() -> None:
    values = ["x" * 50, list(range(30)), {"k": "v" * 60}, ("a",) * 20, None, 1.5, "ok", {}]
    for value in [*values, [1, [2, [3]]], {"a": [{"b": None}] * 9}]:
        text = repr(value)
        assert short_repr(value) == (text if len(text) <= 40 else text[:37] + "...")


def test_short_repr_does_bounded_work_on_hostile_values() -> None:
    bomb: list[Any] = ["a"] * 10
    for _ in range(9):
        bomb = [bomb] * 10  # 10^10 strings by reference, as a YAML alias bomb makes
    assert short_repr(bomb) == "[[[[[[[[[['a', 'a', 'a', 'a', 'a', 'a..."
    # str(int) refuses more than 4,300 digits; YAML reads 0xfff... without that limit.
    assert short_repr([-(16**5000)]) == "[<6021-digit integer>]"
    cycle: list[Any] = []
    cycle.append(cycle)
    assert short_repr(cycle).startswith("[[[[")


def test_huge_integers_in_a_canary_are_findings() -> None:
    obj = _set(CANARY, "spec.analysis.args", [{"name": "service", "value": 16**5000}])
    obj = _set(obj, "spec.trafficRouting", {16**5000: {}})
    fields = [f.field for f in validate_canary(obj, TEMPLATES)]
    assert "spec.analysis.args[0].value" in fields  # not a string: reported, not rendered
    assert "spec.trafficRouting[<6021-digit integer>]" in fields
