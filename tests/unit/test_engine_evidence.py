"""Earned promotion in the engine: waiting for evidence, NotEnoughEvidence, resume, manual
promotion, and no more traffic while the evidence leans towards a regression."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import (
    TEMPLATES,
    ask,
    at,
    canary,
    comparison_metric,
    events,
    observe,
    rolling,
    ts,
)

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import BackgroundAnalysis, Canary, TemplateRef
from canary.api.status import CanaryStatus, MetricStatus, Phase, StepEvidence, Verdict
from canary.engine.actions import Decision, Observations, SetWeight
from canary.engine.machine import step

pytestmark = pytest.mark.unit

KEY = "background/errors-vs-stable"
COMPARE = {**TEMPLATES, "compare": AnalysisTemplateSpec(metrics=[comparison_metric()])}
BACKGROUND = BackgroundAnalysis(templates=[TemplateRef(template_name="compare")])
EVIDENCE = [StepEvidence(step=1, canary_requests=300, canary_bad=3, stable_requests=2700)]
UNSURE = (
    "errors-vs-stable: error-rate: canary 1% (3/300) vs stable 0.5% (14/2700); not yet "
    "shown within +0.75 per 100: about 2,400 more canary requests at these rates "
    "(Inconclusive)"
)


def metric(**fields: Any) -> MetricStatus:
    base: dict[str, Any] = {
        "name": KEY,
        "verdict": Verdict.INCONCLUSIVE,
        "value": "2",
        "reason": UNSURE,
        "measured_at": ts(-5),
        "measurements": 3,
        "evidence": EVIDENCE,
        "rollback_evidence": 1.5,
    }
    return MetricStatus(**{**base, **fields})


def rollout(index: int, weight: int, **fields: Any) -> Canary:
    status = rolling(
        index, weight, **{"step_started_at": ts(-100), "analysis": [metric()]} | fields
    )
    return canary(status, analysis=BACKGROUND)


def decide(c: Canary, o: Observations | None = None, seconds: float = 0) -> Decision:
    return step(c, COMPARE, o or observe(), at(seconds))


def test_promotion_waits_at_its_weight_for_an_earned_pass() -> None:
    decision = decide(rollout(5, 50))  # past the last step, within the deadline
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.canary_weight == 50 and not decision.actions
    assert "promotion waits for a result from background/errors-vs-stable" in (
        decision.status.message
    )


def test_past_the_deadline_it_pauses_for_a_human_and_says_what_would_settle_it() -> None:
    decision = decide(rollout(5, 50, step_started_at=ts(-601)))
    status = decision.status
    assert (status.phase, status.reason) == (Phase.PAUSED, "NotEnoughEvidence")
    assert status.canary_weight == 50  # nothing promoted, nothing rolled back
    assert "about 2,400 more canary requests" in status.message
    for verb in ("resume", "promote", "abort"):
        assert f"`canary {verb} checkout -n shop`" in status.message
    assert [(e.type, e.reason) for e in events(decision)] == [("Warning", "NotEnoughEvidence")]


def test_an_earned_pass_promotes() -> None:
    earned = metric(verdict=Verdict.PASS, reason="errors-vs-stable: ... (Pass)")
    decision = decide(rollout(5, 50, analysis=[earned]))
    assert decision.status.phase is Phase.PROMOTING


def paused_for_evidence() -> Canary:
    return rollout(
        5,
        50,
        phase=Phase.PAUSED,
        reason="NotEnoughEvidence",
        step_started_at=ts(-700),
        paused_at=ts(-60),
    )


def test_resume_measures_for_another_deadline_and_keeps_the_evidence() -> None:
    resumed = decide(paused_for_evidence(), observe(request=ask("resume")))
    status = resumed.status
    assert (status.phase, status.resumed_at) == (Phase.PROGRESSING, ts(0))
    assert status.analysis[0].evidence == EVIDENCE
    later = decide(canary(status, analysis=BACKGROUND), seconds=300)
    assert later.status.phase is Phase.PROGRESSING  # not paused again at once
    overdue = decide(canary(status, analysis=BACKGROUND), seconds=601)
    assert overdue.status.reason == "NotEnoughEvidence"


def test_a_manual_promotion_is_recorded_as_manual() -> None:
    decision = decide(paused_for_evidence(), observe(request=ask("promote")))
    assert decision.status.phase is Phase.PROMOTING
    (event,) = [e for e in events(decision) if e.reason == "Promoting"]
    assert "manual promotion of revision rev2" in event.message
    assert "promote requested by alice" in event.message


@pytest.mark.parametrize(
    ("against", "held_for", "raised"),
    [(9.9, 5, True), (10.0, 5, False), (50.0, 85, False), (50.0, 95, True)],
    ids=["no doubt", "a doubt", "a doubt for 3 looks", "a doubt that did not settle"],
)
def test_no_step_raises_the_weight_while_evidence_against_the_canary_builds(
    against: float, held_for: int, raised: bool
) -> None:
    # steps[2] raises the weight to 50; maxFalseRollback 0.01 rolls back at 100, so the
    # weight is held from an e-value of 10 on, for at most 3 looks (30 s apart).
    c = rollout(2, 10, step_started_at=ts(-held_for), analysis=[metric(rollback_evidence=against)])
    decision = decide(c)
    assert (SetWeight(50) in decision.actions) is raised
    if not raised:
        assert decision.status.canary_weight == 10
        assert "holding canary weight 10% (not raising it to 50%)" in decision.status.message


def test_after_resuming_a_held_step_the_engine_polls_instead_of_spinning() -> None:
    held = rollout(
        2,
        10,
        phase=Phase.PAUSED,
        reason="NotEnoughEvidence",
        step_started_at=ts(-700),  # past the deadline even with the paused time left out
        paused_at=ts(-60),
        analysis=[metric(rollback_evidence=50.0)],
    )
    resumed = decide(held, observe(request=ask("resume")))
    assert resumed.status.phase is Phase.PROGRESSING
    again = decide(canary(resumed.status, analysis=BACKGROUND), seconds=1)
    assert "holding canary weight 10%" in again.status.message
    assert again.requeue_after is not None and again.requeue_after > 0


def test_a_threshold_only_analysis_step_keeps_its_own_limits_past_the_deadline() -> None:
    # steps[1] is an analysis step with threshold metrics: no evidence wait applies.
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        stable_revision="rev1",
        canary_revision="rev2",
        current_step_index=1,
        canary_weight=10,
        step_started_at=ts(-900),
        rollout_started_at=ts(-900),
    )
    decision = decide(canary(status))
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.reason != "NotEnoughEvidence"
