"""The bake: after the promotion gate the release serves all but the holdback, the
previous revision stays warm, a Fail goes back with one router call, and the bake's end
promotes."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import NOW, TEMPLATES, ask, at, canary, comparison_metric, events, observe, ts
from engine_support import rolling as rolling_status

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import BackgroundAnalysis, Bake, Canary, TemplateRef
from canary.api.status import CanaryStatus, MetricStatus, Phase, StepEvidence, Verdict
from canary.engine.actions import (
    Decision,
    EnsureCanary,
    Observations,
    PromoteStable,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.machine import step
from canary.engine.samples import Counts, CountsSample, ScalarSample
from canary.engine.tasks import due_tasks
from canary.notify.base import Trigger
from canary.notify.outbox import announced

pytestmark = pytest.mark.unit

KEY = "background/errors-vs-stable"
THRESHOLD = "background/latency"
COMPARE = {**TEMPLATES, "compare": AnalysisTemplateSpec(metrics=[comparison_metric()])}
BACKGROUND = BackgroundAnalysis(
    templates=[
        TemplateRef(template_name="compare"),
        TemplateRef(template_name="latency", cluster_scope=True),
    ],
    interval="30s",
)
BAKE_STEP = 6  # engine_support's 5 steps, the promotion gate (5), then the bake
# Minutes at 50% in which the canary was as good as stable: the rollout's evidence.
ROLLOUT = StepEvidence(
    step=5, canary_requests=6000, canary_bad=30, stable_requests=6000, stable_bad=30
)
PASSED: dict[str, Any] = {"verdict": Verdict.PASS, "reason": "... (Pass)", "measured_at": ts(-5)}


def earned() -> list[MetricStatus]:
    return [
        MetricStatus(name=KEY, evidence=[ROLLOUT], passed_at=ts(-5), measurements=9, **PASSED),
        MetricStatus(name=THRESHOLD, measurements=9, **PASSED),
    ]


def rollout(status: CanaryStatus, holdback: int = 5, **spec: Any) -> Canary:
    bake = Bake(duration="15m", holdback=holdback)
    return canary(status, analysis=BACKGROUND, bake=bake, **spec)


def at_gate(**fields: Any) -> CanaryStatus:
    base: dict[str, Any] = {"step_started_at": ts(-100), "analysis": earned()}
    return rolling_status(5, 50, **{**base, **fields})


def baking(started: float = -60, **fields: Any) -> CanaryStatus:
    base: dict[str, Any] = {
        "phase": Phase.BAKING,
        "reason": "Baking",
        "canary_weight": 95,
        "bake_started_at": ts(started),
        "step_started_at": ts(started),
        "analysis": earned(),
    }
    return rolling_status(5, 95, **{**base, **fields})


def decide(c: Canary, o: Observations | None = None, seconds: float = 0) -> Decision:
    return step(c, COMPARE, o or observe(), at(seconds))


def five_minutes(canary_errors: int, stable_errors: int) -> CountsSample:
    """Five minutes at 20 rps split 95/5: 5,700 canary requests and 300 stable ones."""
    return CountsSample(Counts(5700, canary_errors), Counts(300, stable_errors))


def test_the_gate_enters_the_bake_with_one_router_call() -> None:
    decision = decide(rollout(at_gate()))
    status = decision.status
    assert (status.phase, status.reason, status.canary_weight) == (Phase.BAKING, "Baking", 95)
    assert [a for a in decision.actions if not hasattr(a, "reason")] == [SetWeight(95)]
    assert (status.bake_started_at, status.step_started_at) == (ts(0), ts(0))
    [event] = events(decision)
    assert "baking revision rev2 for 15m" in event.message
    assert "the previous revision rev1 5%" in event.message
    assert decision.requeue_after == 25  # the next look; the bake ends in 15 minutes


def test_without_a_bake_the_gate_promotes_as_before() -> None:
    decision = decide(canary(at_gate(), analysis=BACKGROUND))
    assert decision.status.phase is Phase.PROMOTING


def test_the_bake_judges_its_own_traffic_so_a_late_regression_is_not_outweighed() -> None:
    # Before the bake the canary was as good as stable over 6,000 requests; in the bake
    # it fails 5% against stable's 0.33%. The bake's own test shows it (e-value 400, at
    # 1/alpha = 100); pooled with the rollout's evidence it would be 0.14.
    regressed = observe(samples={KEY: five_minutes(285, 1), THRESHOLD: ScalarSample(0.1)})
    decision = decide(rollout(baking(-300)), regressed)
    status = decision.status
    assert (status.phase, status.reason) == (Phase.ROLLED_BACK, "BakeFailed")
    assert [a for a in decision.actions if not hasattr(a, "reason")] == [SetWeight(0)]
    assert "the bake found a regression: errors-vs-stable" in status.message
    assert "the bake's own test" in status.message
    [metric] = [m for m in status.analysis if m.name == KEY]
    assert [e.step for e in metric.evidence] == [5, BAKE_STEP]  # both kept, judged apart
    assert status.canary_scale_down_at == ts(30)  # the canary's pods outlive the route
    later = decide(rollout(status), observe(), 30)
    assert [a for a in later.actions if not hasattr(a, "reason")] == [ScaleDownCanary()]


def test_a_threshold_fail_in_the_bake_rolls_back() -> None:
    decision = decide(rollout(baking()), observe(samples={THRESHOLD: ScalarSample(0.9)}))
    assert (decision.status.phase, decision.status.reason) == (Phase.ROLLED_BACK, "BakeFailed")


def test_the_end_of_the_bake_promotes_without_touching_traffic() -> None:
    unsure = MetricStatus(name=KEY, verdict=Verdict.INCONCLUSIVE, measured_at=ts(-5))
    status = baking(-900, analysis=[unsure])  # a lack of Pass does not hold the bake
    decision = decide(rollout(status))
    assert decision.status.phase is Phase.PROMOTING
    assert [a for a in decision.actions if not hasattr(a, "reason")] == []
    finished, promoting = events(decision)  # notifications announce the first
    assert (finished.reason, finished.message) == (
        "BakeFinished", "the bake of revision rev2 ended clean")
    assert announced("uid", decision, NOW)[0][0] is Trigger.BAKE_FINISHED
    assert promoting.message.startswith("the bake of revision rev2 ended clean; promoting")
    applied = decide(rollout(decision.status), observe(stable_ready=False))
    assert [a for a in applied.actions if not hasattr(a, "reason")] == [PromoteStable("rev2")]
    done = decide(rollout(applied.status), observe(stable_ready=True), 5)
    assert done.status.phase is Phase.SUCCEEDED
    assert [a for a in done.actions if not hasattr(a, "reason")] == [SetWeight(0)]


def test_the_engine_wakes_at_the_end_of_the_bake() -> None:
    recent = [m.model_copy(update={"measured_at": ts(0)}) for m in earned()]
    decision = decide(rollout(baking(-890, analysis=recent)))
    assert decision.status.phase is Phase.BAKING
    assert decision.requeue_after == 10
    assert "10s left" in decision.status.message


def test_the_bake_does_not_end_blind() -> None:
    status = baking(-900, metrics_unavailable_intervals=2)
    decision = decide(rollout(status))
    assert decision.status.phase is Phase.BAKING
    assert "the metrics are not answering" in decision.status.message
    assert decision.requeue_after is not None and decision.requeue_after > 0


def test_abort_in_the_bake_goes_back_with_one_router_call() -> None:
    decision = decide(rollout(baking()), observe(request=ask("abort")))
    assert (decision.status.phase, decision.status.reason) == (Phase.ROLLED_BACK, "Aborted")
    assert [a for a in decision.actions if not hasattr(a, "reason")] == [SetWeight(0)]


def test_promote_in_the_bake_ends_it() -> None:
    decision = decide(rollout(baking()), observe(request=ask("promote")))
    assert decision.status.phase is Phase.PROMOTING
    [event] = events(decision)
    assert "manual promotion of revision rev2" in event.message
    assert "promote requested by alice" in event.message


def test_a_bake_is_not_paused() -> None:
    decision = decide(rollout(baking()), observe(request=ask("pause")))
    assert decision.status.phase is Phase.BAKING
    assert "a bake is not paused" in (decision.status.last_request_message or "")


def test_promote_past_the_last_step_bakes_and_full_promotion_skips_the_bake() -> None:
    paused = at_gate(phase=Phase.PAUSED, reason="NotEnoughEvidence", paused_at=ts(-10))
    assert decide(rollout(paused), observe(request=ask("promote"))).status.phase is Phase.BAKING
    full = observe(request=ask("promote", full=True))
    assert decide(rollout(rolling_status(2, 10)), full).status.phase is Phase.PROMOTING


def test_a_new_revision_in_the_bake_rolls_out_against_the_previous_stable() -> None:
    decision = decide(rollout(baking()), observe("rev3"))
    status = decision.status
    assert (status.phase, status.stable_revision, status.canary_revision) == (
        Phase.PROGRESSING,
        "rev1",
        "rev3",
    )
    assert status.bake_started_at is None
    workload = [a for a in decision.actions if not hasattr(a, "reason")]
    assert workload == [SetWeight(0), EnsureCanary("rev3")]


@pytest.mark.parametrize(("holdback", "measured"), [(5, {KEY, THRESHOLD}), (0, {THRESHOLD})])
def test_with_no_holdback_only_thresholds_are_measured(holdback: int, measured: set[str]) -> None:
    c = rollout(baking(-60, analysis=[]), holdback=holdback)
    assert {t.key for t in due_tasks(c, COMPARE, at(0))} == measured
    assert all(t.step == BAKE_STEP and t.bake for t in due_tasks(c, COMPARE, at(0)))


def test_a_restarted_controller_keeps_the_bake_clock() -> None:
    # The clock is the status: the same status decides the same way, whoever calls.
    first = decide(rollout(baking(-300)), observe(), 0)
    again = decide(rollout(baking(-300)), observe(), 0)
    assert first.status == again.status and first.requeue_after == again.requeue_after
