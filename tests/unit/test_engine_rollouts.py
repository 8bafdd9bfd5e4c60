"""Whole rollouts: step() iterated against a simulated cluster and simulated time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from engine_support import BACKGROUND, NOW, TEMPLATES, canary, settled

from canary.api.canary import Canary, Step, StepAnalysis, TemplateRef
from canary.api.status import Phase
from canary.engine.actions import (
    Action,
    EmitEvent,
    EnsureCanary,
    InitializeStable,
    ManualRequest,
    Observations,
    PromoteStable,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.machine import step
from canary.engine.samples import (
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)
from canary.engine.tasks import due_tasks

pytestmark = pytest.mark.unit

READY_AFTER = timedelta(seconds=20)
SampleFn = Callable[[MetricTask, datetime, int], Sample]


@dataclass
class Cluster:
    """Deployments that become ready a while after their template changes, and a router."""

    target: str = "rev2"
    canary_rev: str | None = None
    canary_since: datetime = NOW
    primary_rev: str | None = "rev1"
    primary_since: datetime = NOW - READY_AFTER
    weight: int = 0
    weights: list[int] = field(default_factory=list)
    events: list[EmitEvent] = field(default_factory=list)
    promotions: list[str] = field(default_factory=list)

    def apply(self, action: Action, now: datetime) -> None:
        match action:
            case InitializeStable(revision) if revision != self.primary_rev:
                self.primary_rev, self.primary_since = revision, now
            case EnsureCanary(revision) if revision != self.canary_rev:
                self.canary_rev, self.canary_since = revision, now
            case PromoteStable(revision) if revision != self.primary_rev:
                # Idempotent like a real Deployment: the same template again restarts nothing.
                self.primary_rev, self.primary_since = revision, now
                self.promotions.append(revision)
            case SetWeight(weight):
                # The route never points at a variant that cannot serve.
                assert weight == 100 or self.primary_ready(now), "route to an unready N-primary"
                self.weight = weight
                self.weights.append(weight)
            case ScaleDownCanary():
                self.canary_rev = None
            case EmitEvent():
                self.events.append(action)

    def primary_ready(self, now: datetime, revision: str | None = None) -> bool:
        at_revision = self.primary_rev is not None and revision in (None, self.primary_rev)
        return at_revision and now - self.primary_since >= READY_AFTER

    def observe(self, c: Canary, now: datetime, samples: dict[str, Sample]) -> Observations:
        status = c.status
        live = status.canary_revision if status.phase is Phase.PROMOTING else status.stable_revision
        request = None
        if status.phase is Phase.PAUSED and status.reason == "PausedAtStep":
            request = ManualRequest(f"promote-{now.isoformat()}", "promote", user="ci")
        return Observations(
            target_revision=self.target,
            stable_ready=live is not None and self.primary_ready(now, live),
            canary_ready=self.canary_rev == status.canary_revision
            and now - self.canary_since >= READY_AFTER,
            samples=samples,
            request=request,
        )


def run(c: Canary, cluster: Cluster, sample: SampleFn) -> tuple[Canary, list[Phase], float]:
    """Reconcile when the engine asks to until it has nothing left to do."""
    now, phases = NOW, [c.status.phase]
    for _ in range(500):
        samples = {t.key: sample(t, now, cluster.weight) for t in due_tasks(c, TEMPLATES, now)}
        decision = step(c, TEMPLATES, cluster.observe(c, now, samples), now)
        for action in decision.actions:
            cluster.apply(action, now)
        if decision.status.phase is not c.status.phase:
            events = [a for a in decision.actions if isinstance(a, EmitEvent)]
            assert len(events) == 1, f"one event per phase change: {decision.actions}"
        if decision.status.phase is Phase.PROMOTING and c.status.phase is not Phase.PROMOTING:
            assert not any(isinstance(a, PromoteStable) for a in decision.actions), (
                "promotion is recorded before it is applied"
            )
        c = c.model_copy(update={"status": decision.status})
        if phases[-1] is not c.status.phase:
            phases.append(c.status.phase)
        if decision.requeue_after is None:
            return c, phases, (now - NOW).total_seconds()
        now += timedelta(seconds=decision.requeue_after)
    raise AssertionError(f"no end after 500 reconciles: {c.status}")


def healthy(task: MetricTask, now: datetime, weight: int) -> Sample:
    return ScalarSample(0.001 if task.metric.name == "error-rate" else 0.2)


def erroring(task: MetricTask, now: datetime, weight: int) -> Sample:
    return ScalarSample(0.05 if task.metric.name == "error-rate" else 0.2)


def test_a_good_canary_is_promoted() -> None:
    cluster = Cluster()
    c, phases, elapsed = run(canary(settled(Phase.IDLE), analysis=BACKGROUND), cluster, healthy)
    assert c.status.phase is Phase.SUCCEEDED
    assert (c.status.stable_revision, c.status.canary_weight) == ("rev2", 0)
    assert cluster.weights == [10, 50, 0]
    assert phases == [
        Phase.IDLE,
        Phase.PROGRESSING,
        Phase.PAUSED,  # the pause step without duration, promoted by "ci"
        Phase.PROGRESSING,
        Phase.PROMOTING,
        Phase.SUCCEEDED,
    ]
    assert (cluster.primary_rev, cluster.canary_rev) == ("rev2", None)
    assert 120 + 2 * 20 <= elapsed <= 300  # readiness, the 2m pause, promotion
    assert sorted(m.name for m in c.status.analysis) == ["background/latency", "step-1/error-rate"]


def test_a_bad_canary_is_rolled_back_once() -> None:
    cluster = Cluster()
    c, phases, _ = run(canary(settled(Phase.IDLE), analysis=BACKGROUND), cluster, erroring)
    assert phases == [Phase.IDLE, Phase.PROGRESSING, Phase.ROLLED_BACK]
    assert cluster.weights == [10, 0]
    assert cluster.canary_rev is None
    assert c.status.stable_revision == "rev1"
    warning = [e for e in cluster.events if e.type == "Warning"]
    assert [e.reason for e in warning] == ["AnalysisFailed"]
    assert "error-rate 0.05 above max 0.01" in warning[0].message


def test_a_metrics_outage_holds_traffic_back_then_resumes() -> None:
    """Prometheus is down from 40s to 250s, during the analysis step at 10%: after more
    than one failed interval traffic returns to stable; when a probe answers, the step
    resumes at 10% and the rollout carries on to promotion without any Fail."""

    def outage(task: MetricTask, now: datetime, weight: int) -> Sample:
        if NOW + timedelta(seconds=40) <= now < NOW + timedelta(seconds=250):
            return ProviderFailure("prometheus unreachable")
        return healthy(task, now, weight)

    cluster = Cluster()
    spec = {"analysis": BACKGROUND, "max_metrics_unavailable_intervals": 1}
    c, phases, _ = run(canary(settled(Phase.IDLE), **spec), cluster, outage)
    assert c.status.phase is Phase.SUCCEEDED
    assert cluster.weights == [10, 0, 10, 50, 0]  # weight 0 during the outage
    assert phases[:4] == [Phase.IDLE, Phase.PROGRESSING, Phase.PAUSED, Phase.PROGRESSING]
    reasons = [e.reason for e in cluster.events]
    assert reasons.count("MetricsUnavailable") == 1
    assert "AnalysisFailed" not in reasons
    assert {m.failures for m in c.status.analysis} == {0}


def test_an_endless_metrics_outage_rolls_back_at_the_deadline() -> None:
    def down(task: MetricTask, now: datetime, weight: int) -> Sample:
        return ProviderFailure("prometheus unreachable")

    cluster = Cluster()
    c, phases, elapsed = run(canary(settled(Phase.IDLE), analysis=BACKGROUND), cluster, down)
    assert phases == [Phase.IDLE, Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK]
    assert c.status.reason == "ProgressDeadlineExceeded"
    assert cluster.weights == [10, 0, 0]
    assert 600 < elapsed < 900


def comparing(error_ratio: float) -> SampleFn:
    """100 requests/s split by weight; the stable fails 1%, the canary `error_ratio` times that."""

    def sample(task: MetricTask, now: datetime, weight: int) -> Sample:
        canary_requests = 100 * task.window_seconds * weight / 100
        stable_requests = 100 * task.window_seconds - canary_requests
        return CountsSample(
            canary=Counts(canary_requests, canary_requests * 0.01 * error_ratio),
            stable=Counts(stable_requests, stable_requests * 0.01),
        )

    return sample


@pytest.mark.parametrize(("ratio", "outcome"), [(1.0, Phase.SUCCEEDED), (10.0, Phase.ROLLED_BACK)])
def test_comparison_against_stable_with_the_real_judge(ratio: float, outcome: Phase) -> None:
    compare = Step(analysis=StepAnalysis(templates=[TemplateRef(template_name="compare")]))
    steps = [Step(set_weight=20), compare, Step(set_weight=100)]
    c, _, _ = run(canary(settled(Phase.IDLE), steps=steps), Cluster(), comparing(ratio))
    assert c.status.phase is outcome
    assert TEMPLATES["compare"].metrics[0].comparison is not None


def test_first_sight_routes_to_n_primary_only_once_it_is_ready() -> None:
    """Onboarding: the route keeps pointing at the user's Deployment until N-primary
    serves (Cluster.apply asserts it), and the rollout that follows is promoted."""
    cluster = Cluster(target="rev1", primary_rev=None)
    c, _, elapsed = run(canary(analysis=BACKGROUND), cluster, healthy)
    assert (c.status.phase, c.status.reason, c.status.stable_revision) == (
        Phase.IDLE,
        "Initialized",
        "rev1",
    )
    assert cluster.weights == [0]
    assert READY_AFTER.total_seconds() <= elapsed <= READY_AFTER.total_seconds() + 5
    assert [e.reason for e in cluster.events] == ["Initializing", "Initialized"]
    cluster.target = "rev2"
    c, _, _ = run(c, cluster, healthy)
    assert c.status.phase is Phase.SUCCEEDED
    assert cluster.promotions == ["rev2"]


def test_slow_promotion_keeps_both_serving_then_finishes() -> None:
    """N-primary takes 15 minutes at the new revision: one PromotionSlow warning, traffic
    stays split, and the promotion completes instead of failing."""
    cluster = Cluster()
    slow = timedelta(minutes=15)

    def primary_ready(now: datetime, revision: str | None = None) -> bool:
        wait = slow if cluster.primary_rev == "rev2" else READY_AFTER
        at_revision = revision in (None, cluster.primary_rev)
        return at_revision and now - cluster.primary_since >= wait

    cluster.primary_ready = primary_ready  # type: ignore[method-assign]
    _, phases, _ = run(canary(settled(Phase.IDLE), analysis=BACKGROUND), cluster, healthy)
    assert phases[-2:] == [Phase.PROMOTING, Phase.SUCCEEDED]
    assert [e.reason for e in cluster.events].count("PromotionSlow") == 1
    assert cluster.weights == [10, 50, 0]  # 50% until stable was ready, then 0
    assert cluster.promotions == ["rev2"]
