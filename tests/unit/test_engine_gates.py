"""The analysis gate in machine.step(): what lets a rollout promote or leave an analysis step.

One rule for both (limits.usable): a metric's last result must be a Pass, or for a
comparison an Inconclusive taken after minRequests. Too little traffic, a provider error
or a Fail within failureLimit never promote and never pass a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from engine_support import (
    ARGS,
    TEMPLATES,
    at,
    canary,
    comparison_metric,
    events,
    measured,
    observe,
    rolling,
    threshold_metric,
    ts,
    workload,
)

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import BackgroundAnalysis, Step, StepAnalysis, TemplateRef
from canary.api.status import MetricStatus, Phase, Verdict
from canary.engine.machine import step
from canary.engine.samples import Counts, CountsSample, Sample, ScalarSample

pytestmark = pytest.mark.unit

LIMITS = {"failure_limit": 1, "inconclusive_limit": 1}  # tolerated, so the gate decides
GATE_TEMPLATES = {
    **TEMPLATES,
    "tolerant": AnalysisTemplateSpec(metrics=[threshold_metric("errors", **LIMITS)]),
    "compare-tolerant": AnalysisTemplateSpec(metrics=[comparison_metric("ratio", **LIMITS)]),
    "compare-once": AnalysisTemplateSpec(metrics=[comparison_metric("ratio", count=1)]),
}
THRESHOLD_BG = BackgroundAnalysis(templates=[TemplateRef(template_name="tolerant")], args=ARGS)
COMPARISON_BG = BackgroundAnalysis(templates=[TemplateRef(template_name="compare-tolerant")])

COUNTED = {"measurements": 2, "value": "1.1"}


@dataclass(frozen=True)
class Gate:
    id: str
    background: BackgroundAnalysis
    metric: dict[str, Any] | None  # the background metric's status; None: never measured
    promotes: bool


PROMOTION = [
    Gate("threshold pass", THRESHOLD_BG, {"verdict": Verdict.PASS, **COUNTED}, True),
    Gate("threshold never measured", THRESHOLD_BG, None, False),
    Gate(
        "threshold no data within inconclusiveLimit",
        THRESHOLD_BG,
        {"verdict": Verdict.INCONCLUSIVE, "inconclusives": 1, **COUNTED},
        False,
    ),
    Gate(
        "threshold Fail within failureLimit",
        THRESHOLD_BG,
        {"verdict": Verdict.FAIL, "failures": 1, **COUNTED},
        False,
    ),
    Gate("threshold provider error", THRESHOLD_BG, {"verdict": Verdict.ERROR, **COUNTED}, False),
    Gate("comparison pass", COMPARISON_BG, {"verdict": Verdict.PASS, **COUNTED}, True),
    Gate(
        "comparison Inconclusive after minRequests: promotion is earned, not granted",
        COMPARISON_BG,
        {"verdict": Verdict.INCONCLUSIVE, **COUNTED},
        False,
    ),
    Gate(
        "comparison Inconclusive before minRequests",
        COMPARISON_BG,
        {"verdict": Verdict.INCONCLUSIVE},
        False,
    ),
    Gate(
        "comparison back below minRequests after counted results",
        COMPARISON_BG,
        {"verdict": Verdict.INCONCLUSIVE, "measurements": 3},
        False,
    ),
    Gate(
        "comparison Fail within failureLimit",
        COMPARISON_BG,
        {"verdict": Verdict.FAIL, "failures": 1, **COUNTED},
        False,
    ),
    Gate("comparison provider error", COMPARISON_BG, {"verdict": Verdict.ERROR}, False),
]


def bg_key(gate: Gate) -> str:
    return "background/errors" if gate.background is THRESHOLD_BG else "background/ratio"


@pytest.mark.parametrize("gate", PROMOTION, ids=[g.id for g in PROMOTION])
def test_promotion_gate(gate: Gate) -> None:
    key = bg_key(gate)
    analysis = [] if gate.metric is None else [measured(key, **gate.metric)]
    c = canary(rolling(5, 50, analysis=analysis), analysis=gate.background)
    decision = step(c, GATE_TEMPLATES, observe(), at())
    assert workload(decision) == []
    if gate.promotes:
        assert decision.status.phase is Phase.PROMOTING
        [event] = events(decision)
        assert event.reason == "Promoting"
    else:
        assert decision.status.phase is Phase.PROGRESSING
        assert events(decision) == []
        assert f"promotion waits for a result from {key}" in decision.status.message


# ---------------------------------------------------------------- inline analysis steps


def inline_step(template: str) -> list[Step]:
    ref = TemplateRef(template_name=template)
    args = ARGS if template == "tolerant" else []
    return [Step(set_weight=10), Step(analysis=StepAnalysis(templates=[ref], args=args))]


@dataclass(frozen=True)
class Inline:
    id: str
    template: str
    previous: dict[str, Any] | None
    sample: Sample
    passes: bool


ENOUGH = CountsSample(Counts(5000, 50), Counts(50000, 500))  # real judge: Pass (earned)
UNSURE = CountsSample(Counts(300, 3), Counts(3000, 30))  # real judge: Inconclusive, counted
TOO_FEW = CountsSample(Counts(20, 0), Counts(50000, 500))  # real judge: below minRequests

INLINE = [
    Inline("threshold pass", "tolerant", None, ScalarSample(0.001), True),
    Inline(
        "threshold no data within inconclusiveLimit", "tolerant", None, ScalarSample(None), False
    ),
    Inline("threshold Fail within failureLimit", "tolerant", None, ScalarSample(0.05), False),
    Inline(
        "threshold pass after a tolerated Fail",
        "tolerant",
        {"verdict": Verdict.FAIL, "failures": 1, "measurements": 1, "value": "0.05"},
        ScalarSample(0.001),
        True,
    ),
    Inline("comparison Pass earned on enough traffic", "compare-tolerant", None, ENOUGH, True),
    Inline("comparison before minRequests", "compare-tolerant", None, TOO_FEW, False),
]


@pytest.mark.parametrize("case", INLINE, ids=[c.id for c in INLINE])
def test_inline_gate_follows_the_same_rule(case: Inline) -> None:
    key = "step-1/errors" if case.template == "tolerant" else "step-1/ratio"
    previous: list[MetricStatus] = (
        [] if case.previous is None else [measured(key, 30, **case.previous)]
    )
    c = canary(rolling(1, 10, analysis=previous), steps=inline_step(case.template))
    decision = step(c, GATE_TEMPLATES, observe(samples={key: case.sample}), at())
    assert decision.status.phase is Phase.PROGRESSING  # tolerated: no rollback, no pause
    assert decision.status.current_step_index == (2 if case.passes else 1)


def test_an_inline_comparison_that_spends_its_count_unproven_waits_for_a_human() -> None:
    key = "step-1/ratio"
    c = canary(rolling(1, 10), steps=inline_step("compare-once"))
    decision = step(c, GATE_TEMPLATES, observe(samples={key: UNSURE}), at())
    status = decision.status
    assert status.phase is Phase.PAUSED and status.reason == "NotEnoughEvidence"
    assert status.current_step_index == 1 and status.canary_weight == 10  # nothing promoted
    assert "its measurement count" in status.message
    assert "more canary requests" in status.message
    assert "`canary resume checkout -n shop`" in status.message


def test_an_inline_comparison_without_a_count_waits_for_evidence_until_the_deadline() -> None:
    key = "step-1/ratio"
    c = canary(rolling(1, 10), steps=inline_step("compare-tolerant"))
    waiting = step(c, GATE_TEMPLATES, observe(samples={key: UNSURE}), at())
    assert waiting.status.phase is Phase.PROGRESSING and waiting.status.current_step_index == 1
    late = canary(rolling(1, 10, step_started_at=ts(-601)), steps=inline_step("compare-tolerant"))
    paused = step(late, GATE_TEMPLATES, observe(samples={key: UNSURE}), at())
    assert paused.status.reason == "NotEnoughEvidence"
    assert "the progress deadline" in paused.status.message
