"""Metrics outages across several reconciles: pauses keep their reason, counters stay put."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from engine_support import (
    ARGS,
    TEMPLATES,
    ask,
    at,
    canary,
    events,
    measured,
    observe,
    rolling,
    threshold_metric,
    ts,
    workload,
)

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import BackgroundAnalysis, Canary, TemplateRef
from canary.api.status import MetricStatus, Phase, Verdict
from canary.engine.actions import Decision, Observations, SetWeight
from canary.engine.machine import step
from canary.engine.samples import ProviderFailure, ScalarSample

pytestmark = pytest.mark.unit

BG = "background/errors"
DOWN = ProviderFailure("prometheus unreachable")
OK = ScalarSample(0.001)
TEMPLATES_ = {
    **TEMPLATES,
    "tolerant": AnalysisTemplateSpec(
        metrics=[threshold_metric("errors", failure_limit=1, inconclusive_limit=1)]
    ),
}
BACKGROUND_ = BackgroundAnalysis(templates=[TemplateRef(template_name="tolerant")], args=ARGS)
BEFORE = measured(
    BG, 30, verdict=Verdict.PASS, value="0.001", measurements=5, failures=1, inconclusives=1
)


def chain(c: Canary, calls: Sequence[tuple[float, Observations]]) -> list[Decision]:
    """step() once per (seconds, observations), each on the status the last one wrote."""
    decisions = []
    for seconds, obs in calls:
        decision = step(c, TEMPLATES_, obs, at(seconds))
        decisions.append(decision)
        c = c.model_copy(update={"status": decision.status})
    return decisions


def outage(first: float, calls: int, sample: object = DOWN) -> list[tuple[float, Observations]]:
    """`calls` reconciles 10 s apart, each measuring BG with `sample`."""
    return [(first + 10 * i, observe(samples={BG: sample})) for i in range(calls)]  # type: ignore[dict-item]


def counters(m: MetricStatus) -> tuple[int, int, int]:
    return (m.measurements, m.failures, m.inconclusives)


@pytest.mark.parametrize(
    ("phase", "reason"),
    [(Phase.PROGRESSING, ""), (Phase.PAUSED, "PausedByUser"), (Phase.PAUSED, "PausedAtStep")],
)
def test_an_outage_and_recovery_move_no_counter_and_decide_nothing(
    phase: Phase, reason: str
) -> None:
    """README: the fail-safe records no verdict. Provider errors are stored as Error (not a
    Pass or Fail), and an outage and its recovery never move measurements, failures or
    inconclusives, never roll back and never promote."""
    index = 4 if reason == "PausedAtStep" else 3
    paused_at = ts(-30) if phase is Phase.PAUSED else None
    status = rolling(
        index,
        50,
        phase=phase,
        reason=reason,
        paused_at=paused_at,
        analysis=[BEFORE],
        step_started_at=ts(),
    )  # at step 3, its 2m pause outlasts the outage
    decisions = chain(canary(status, analysis=BACKGROUND_), [*outage(10, 8), *outage(90, 1, OK)])
    for decision in decisions:
        [metric] = decision.status.analysis
        assert counters(metric) == counters(BEFORE)
        assert metric.verdict in (Verdict.PASS, Verdict.ERROR)  # the last real one, or Error
        assert decision.status.phase in (Phase.PROGRESSING, Phase.PAUSED)
    weights = [a.weight for d in decisions for a in workload(d) if isinstance(a, SetWeight)]
    assert weights == ([0, 50] if phase is Phase.PROGRESSING else [0])


def test_a_user_pause_outlives_an_outage_and_resume_restores_the_weight() -> None:
    """PausedByUser -> outage past the limit -> metrics return: still PausedByUser (held at
    0%, no automatic traffic to the canary); `canary resume` restores the step's 50%."""
    status = rolling(3, 50, phase=Phase.PAUSED, reason="PausedByUser", paused_at=ts(-30))
    c = canary(status, analysis=BACKGROUND_)
    down = chain(c, outage(10, 5))
    assert [d.status.reason for d in down] == ["PausedByUser"] * 5
    assert [workload(d) for d in down] == [[], [], [], [SetWeight(0)], []]
    [warning] = [e for d in down for e in events(d)]
    assert (warning.type, warning.reason) == ("Warning", "MetricsUnavailable")
    assert "`canary resume checkout -n shop` restores canary weight 50%" in warning.message

    c = c.model_copy(update={"status": down[-1].status})
    back = chain(c, [*outage(60, 2, OK), (80, observe(request=ask("resume")))])
    assert [d.status.phase for d in back] == [Phase.PAUSED, Phase.PAUSED, Phase.PROGRESSING]
    assert [d.status.reason for d in back[:2]] == ["PausedByUser", "PausedByUser"]
    assert [workload(d) for d in back] == [[], [], [SetWeight(50)]]
    assert [len(events(d)) for d in back] == [1, 0, 1]  # MetricsAvailable once, then Resumed
    resumed = back[-1].status
    assert (resumed.current_step_index, resumed.canary_weight) == (3, 50)


def test_pause_requested_during_an_outage_is_kept_when_metrics_return() -> None:
    status = rolling(
        3,
        0,
        phase=Phase.PAUSED,
        reason="MetricsUnavailable",
        paused_at=ts(-60),
        metrics_unavailable_intervals=4,
        analysis=[BEFORE],
    )
    c = canary(status, analysis=BACKGROUND_)
    decisions = chain(c, [(0, observe(request=ask("pause"))), *outage(10, 2, OK)])
    assert [d.status.reason for d in decisions] == ["PausedByUser"] * 3
    assert [d.status.phase for d in decisions] == [Phase.PAUSED] * 3
    assert all(workload(d) == [] for d in decisions)
    assert decisions[-1].status.paused_at == ts(-60)  # the step clock stays frozen since then


def test_a_timed_pause_does_not_end_blind_during_a_short_outage() -> None:
    """Errors below the fail-safe's limit hold the step; it ends once metrics answer."""
    status = rolling(3, 50, analysis=[BEFORE], step_started_at=ts(-115))  # 2m pause, 5s left
    decisions = chain(canary(status, analysis=BACKGROUND_), [*outage(10, 2), *outage(30, 1, OK)])
    during, after = decisions[:2], decisions[2]
    assert all(d.status.current_step_index == 3 for d in during)
    assert all("holding this step" in d.status.message for d in during)
    assert all(not workload(d) for d in during)
    assert after.status.current_step_index == 4
