"""Builders shared by the engine's unit tests: a frozen clock, specs, statuses, samples."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.api.analysis_template import (
    AnalysisTemplateSpec,
    Comparison,
    Metric,
    Provider,
    TemplateArg,
    ThresholdRange,
)
from canary.api.base import ObjectMeta
from canary.api.canary import (
    Arg,
    BackgroundAnalysis,
    Canary,
    CanarySpec,
    DeployWindow,
    Pause,
    ServiceSpec,
    Step,
    StepAnalysis,
    TargetRef,
    TemplateRef,
)
from canary.api.status import CanaryStatus, MetricStatus, Phase
from canary.engine.actions import (
    Decision,
    EmitEvent,
    ManualRequest,
    Observations,
    RejectedRequest,
)
from canary.engine.clock import to_iso
from canary.engine.machine import step
from canary.engine.samples import Sample

NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Berlin


def at(seconds: float = 0) -> datetime:
    return NOW + timedelta(seconds=seconds)


def ts(seconds: float = 0) -> str:
    return to_iso(at(seconds))


def threshold_metric(name: str = "error-rate", **overrides: Any) -> Metric:
    fields: dict[str, Any] = {
        "name": name,
        "provider": Provider.model_validate({"prometheus": {"query": "rate({{args.service}})"}}),
        "interval": "30s",
        "threshold_range": ThresholdRange(max=0.01),
    }
    return Metric(**{**fields, **overrides})


def comparison_metric(name: str = "errors-vs-stable", **overrides: Any) -> Metric:
    fields: dict[str, Any] = {
        "name": name,
        "provider": Provider.model_validate({"prometheus": {}}),
        "interval": "30s",
        "comparison": Comparison(
            type="errorRate", requests_query="r", errors_query="e", tolerance=1.5
        ),
    }
    return Metric(**{**fields, **overrides})


TEMPLATES: dict[str, AnalysisTemplateSpec] = {
    "error-rate": AnalysisTemplateSpec(
        args=[TemplateArg(name="service"), TemplateArg(name="quantile", value="0.99")],
        metrics=[threshold_metric()],
    ),
    "cluster/latency": AnalysisTemplateSpec(
        metrics=[threshold_metric("latency", threshold_range=ThresholdRange(max=0.5))]
    ),
    "compare": AnalysisTemplateSpec(metrics=[comparison_metric()]),
}

ARGS = [Arg(name="service", value="checkout")]
ANALYSIS_STEP = Step(
    analysis=StepAnalysis(templates=[TemplateRef(template_name="error-rate")], args=ARGS)
)
STEPS = [
    Step(set_weight=10),  # 0
    ANALYSIS_STEP,  # 1
    Step(set_weight=50),  # 2
    Step(pause=Pause(duration="2m")),  # 3
    Step(pause=Pause()),  # 4
]
BACKGROUND = BackgroundAnalysis(
    templates=[TemplateRef(template_name="latency", cluster_scope=True)], interval="1m"
)
BERLIN_OFFICE = DeployWindow(
    timezone="Europe/Berlin", days=["Mon", "Tue", "Wed", "Thu"], start="09:00", end="16:00"
)


def canary(status: CanaryStatus | None = None, **spec: Any) -> Canary:
    fields: dict[str, Any] = {
        "target_ref": TargetRef(name="checkout"),
        "service": ServiceSpec(port=80),
        "steps": STEPS,
    }
    return Canary(
        metadata=ObjectMeta(name="checkout", namespace="shop", generation=7),
        spec=CanarySpec(**{**fields, **spec}),
        status=status or CanaryStatus(),
    )


def rolling(index: int, weight: int, **fields: Any) -> CanaryStatus:
    """A rollout of rev2 over stable rev1 at step `index`, begun 10 minutes ago."""
    base: dict[str, Any] = {
        "phase": Phase.PROGRESSING,
        "stable_revision": "rev1",
        "canary_revision": "rev2",
        "current_step_index": index,
        "canary_weight": weight,
        "step_started_at": ts(-60),
        "rollout_started_at": ts(-600),
    }
    return CanaryStatus(**{**base, **fields})


def settled(phase: Phase = Phase.SUCCEEDED, **fields: Any) -> CanaryStatus:
    base: dict[str, Any] = {"phase": phase, "stable_revision": "rev1"}
    return CanaryStatus(**{**base, **fields})


def measured(key: str, seconds_ago: float = 10, **fields: Any) -> MetricStatus:
    return MetricStatus(name=key, measured_at=ts(-seconds_ago), **fields)


def observe(
    target: str | None = "rev2",
    *,
    stable_ready: bool = True,
    canary_ready: bool = True,
    samples: Mapping[str, Sample] | None = None,
    request: ManualRequest | RejectedRequest | None = None,
    errors: tuple[str, ...] = (),
) -> Observations:
    return Observations(target, stable_ready, canary_ready, samples or {}, request, errors)


def ask(action: Any, request_id: str = "r1", **fields: Any) -> ManualRequest:
    return ManualRequest(request_id, action, user="alice", at=at(-5), **fields)


def decide(c: Canary, o: Observations, seconds: float = 0) -> Decision:
    return step(c, TEMPLATES, o, at(seconds))


def workload(decision: Decision) -> list[Any]:
    """The actions that change workloads or traffic, in order (events left out)."""
    return [a for a in decision.actions if not isinstance(a, EmitEvent)]


def events(decision: Decision) -> list[EmitEvent]:
    return [a for a in decision.actions if isinstance(a, EmitEvent)]
