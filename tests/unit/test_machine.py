"""machine.step(): one table row per transition, with a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from engine_support import (
    BACKGROUND,
    BERLIN_OFFICE,
    TEMPLATES,
    at,
    canary,
    decide,
    events,
    measured,
    observe,
    rolling,
    settled,
    threshold_metric,
    ts,
    workload,
)

from canary.api.canary import Canary, Step
from canary.api.status import CanaryStatus, Phase, Verdict
from canary.engine.actions import (
    EmitEvent,
    EnsureCanary,
    InitializeStable,
    Observations,
    PromoteStable,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.machine import step
from canary.engine.samples import ProviderFailure, ScalarSample

pytestmark = pytest.mark.unit

OK = ScalarSample(0.001)
BAD = ScalarSample(0.05)
DOWN = ProviderFailure("connection refused")
STEP1 = "step-1/error-rate"
BG = "background/latency"


@dataclass(frozen=True)
class Case:
    id: str
    canary: Canary
    obs: Observations
    phase: Phase
    actions: list[Any]
    reason: str | None = None  # None: not checked
    weight: int | None = None
    index: int | str | None = "any"
    seconds: float = 0
    message: str = ""  # a substring the status message must contain
    status: dict[str, Any] = field(default_factory=dict)  # other status fields to check


def bg_canary(status: CanaryStatus) -> Canary:
    return canary(status, analysis=BACKGROUND)


def initializing(revision: str, since: float = -30) -> CanaryStatus:
    return CanaryStatus(phase=Phase.IDLE, reason="Initializing", stable_revision=revision,
                        initializing_since=ts(since))


def paused_by(reason: str, index: int = 3, weight: int = 50, **fields: Any) -> CanaryStatus:
    base: dict[str, Any] = {"phase": Phase.PAUSED, "reason": reason, "paused_at": ts(-30)}
    return rolling(index, weight, **{**base, **fields})


CASES = [
    # ------------------------------------------------------------ first sight, revisions
    Case(
        "first sight creates N-primary and leaves traffic alone",
        canary(),
        observe("rev1", stable_ready=False),
        Phase.IDLE,
        [InitializeStable("rev1")],
        reason="Initializing",
        weight=0,
        message="initializing: waiting for checkout-primary to be ready",
        status={"stable_revision": "rev1", "canary_revision": None},
    ),
    Case(
        "first sight never routes, even if readiness is claimed",
        canary(),
        observe("rev1"),  # judged against no stable revision: meaningless
        Phase.IDLE,
        [InitializeStable("rev1")],
        reason="Initializing",
    ),
    Case(
        "initializing waits for N-primary",
        canary(initializing("rev1")),
        observe("rev1", stable_ready=False),
        Phase.IDLE,
        [],
        reason="Initializing",
        message="initializing: waiting for checkout-primary to be ready",
    ),
    Case(
        "N-primary ready: it gets all traffic",
        canary(initializing("rev1")),
        observe("rev1"),
        Phase.IDLE,
        [SetWeight(0)],
        reason="Initialized",
        weight=0,
        message="checkout-primary serves 100% of traffic",
        status={"stable_revision": "rev1", "canary_revision": None},
    ),
    Case(
        "a newer revision before N-primary served waits: it is not taken as stable",
        canary(initializing("rev1")),
        observe("rev2", stable_ready=False),
        Phase.IDLE,
        [],
        reason="Initializing",
        message="revision rev2 is rolled out, with analysis, once it serves",
        status={"stable_revision": "rev1", "canary_revision": None},
    ),
    Case(
        "N-primary serves the first revision; the newer one is rolled out next",
        canary(initializing("rev1")),
        observe("rev2"),  # stable_ready is judged at the recorded stable revision, rev1
        Phase.IDLE,
        [SetWeight(0)],
        reason="Initialized",
        message="revision rev2 is rolled out next",
        status={"stable_revision": "rev1", "initializing_since": None},
    ),
    Case(
        "a first revision that never served within the deadline gives way to a newer one",
        canary(initializing("rev1", since=-100_000)),
        observe("rev2", stable_ready=False),
        Phase.IDLE,
        [InitializeStable("rev2")],
        reason="Initializing",
        message="it replaces revision rev1, which did not serve within",
        status={"stable_revision": "rev2", "canary_revision": None, "current_step_index": None},
    ),
    Case(
        "Deployment gone while initializing keeps waiting",
        canary(initializing("rev1")),
        observe(None),
        Phase.IDLE,
        [],
        reason="Initializing",
        message="waiting for Deployment checkout to exist again",
    ),
    Case(
        "initialized: the next revision rolls out",
        canary(settled(Phase.IDLE, reason="Initialized")),
        observe("rev2"),
        Phase.PROGRESSING,
        [EnsureCanary("rev2")],
        index=0,
    ),
    Case(
        "first sight without a Deployment waits",
        canary(),
        observe(None),
        Phase.IDLE,
        [],
        reason="TargetMissing",
        message="waiting for Deployment checkout",
    ),
    Case(
        "idle at stable does nothing", canary(settled(Phase.IDLE)), observe("rev1"), Phase.IDLE, []
    ),
    Case(
        "new revision starts at step 0 with weight 0",
        canary(settled(Phase.IDLE)),
        observe("rev2"),
        Phase.PROGRESSING,
        [EnsureCanary("rev2")],
        reason="RolloutStarted",
        weight=0,
        index=0,
        status={"canary_revision": "rev2", "step_started_at": ts(), "rollout_started_at": ts()},
    ),
    Case(
        "new revision after a success",
        canary(settled(stable_revision="rev2", canary_revision="rev2")),
        observe("rev3"),
        Phase.PROGRESSING,
        [EnsureCanary("rev3")],
        index=0,
    ),
    Case(
        "new revision mid-rollout restarts from step 0",
        canary(rolling(3, 50, analysis=[measured(STEP1, measurements=1)])),
        observe("rev3"),
        Phase.PROGRESSING,
        [SetWeight(0), EnsureCanary("rev3")],
        reason="RolloutStarted",
        weight=0,
        index=0,
        status={"canary_revision": "rev3", "analysis": [], "step_started_at": ts()},
    ),
    Case(
        "target back at stable abandons the canary",
        canary(rolling(2, 10)),
        observe("rev1"),
        Phase.IDLE,
        [SetWeight(0)],
        reason="Abandoned",
        weight=0,
        index=None,
        status={"canary_revision": None},
    ),
    Case(
        "rolled back revision stays rolled back",
        canary(settled(Phase.ROLLED_BACK, canary_revision="rev2")),
        observe("rev2"),
        Phase.ROLLED_BACK,
        [],
    ),
    Case(
        "a new revision after a rollback starts",
        canary(settled(Phase.ROLLED_BACK, canary_revision="rev2")),
        observe("rev3"),
        Phase.PROGRESSING,
        [EnsureCanary("rev3")],
        index=0,
    ),
    Case(
        "target reverted to stable after a rollback",
        canary(settled(Phase.ROLLED_BACK, canary_revision="rev2")),
        observe("rev1"),
        Phase.IDLE,
        [],
        reason="Reverted",
    ),
    Case(
        "Deployment deleted mid-rollout fails safe",
        canary(rolling(2, 10)),
        observe(None),
        Phase.FAILED,
        [SetWeight(0)],
        reason="TargetMissing",
        weight=0,
    ),
    Case(
        "Deployment deleted while settled changes nothing",
        canary(settled()),
        observe(None),
        Phase.SUCCEEDED,
        [],
    ),
    # ------------------------------------------------------------ deploy window
    Case(
        "new revision outside the window waits",
        canary(settled(Phase.IDLE), deploy_window=BERLIN_OFFICE),
        observe("rev2"),
        Phase.WAITING,
        [],
        reason="OutsideDeployWindow",
        seconds=7 * 3600,  # Monday 19:00 Berlin
        message="opens at 2024-05-07T07:00:00Z",
        status={"canary_revision": "rev2", "current_step_index": None},
    ),
    Case(
        "waiting revision starts when the window opens",
        canary(settled(Phase.WAITING, canary_revision="rev2"), deploy_window=BERLIN_OFFICE),
        observe("rev2"),
        Phase.PROGRESSING,
        [EnsureCanary("rev2")],
        index=0,
    ),
    Case(
        "waiting revision keeps waiting while closed",
        canary(settled(Phase.WAITING, canary_revision="rev2"), deploy_window=BERLIN_OFFICE),
        observe("rev2"),
        Phase.WAITING,
        [],
        seconds=-4 * 3600,  # Monday 08:00 Berlin
    ),
    Case(
        "new revision mid-rollout outside the window stops the old canary",
        canary(rolling(2, 10), deploy_window=BERLIN_OFFICE),
        observe("rev3"),
        Phase.WAITING,
        [SetWeight(0)],
        weight=0,
        seconds=7 * 3600,
        status={"canary_revision": "rev3"},
    ),
    Case(
        "waiting revision withdrawn",
        canary(settled(Phase.WAITING, canary_revision="rev2"), deploy_window=BERLIN_OFFICE),
        observe("rev1"),
        Phase.IDLE,
        [],
        reason="Abandoned",
    ),
    Case(
        "a rollout in progress continues after the window closes",
        canary(rolling(0, 0), deploy_window=BERLIN_OFFICE),
        observe(),
        Phase.PROGRESSING,
        [SetWeight(10)],
        seconds=7 * 3600,
        index=1,
    ),
    # ------------------------------------------------------------ steps
    Case(
        "setWeight once the canary is ready",
        canary(rolling(0, 0)),
        observe(),
        Phase.PROGRESSING,
        [SetWeight(10)],
        weight=10,
        index=1,
        status={"step_started_at": ts()},
    ),
    Case(
        "setWeight waits for readiness",
        canary(rolling(0, 0)),
        observe(canary_ready=False),
        Phase.PROGRESSING,
        [],
        weight=0,
        index=0,
        message="waiting for the canary to be ready",
    ),
    Case(
        "canary never ready rolls back at the deadline",
        canary(rolling(0, 0, step_started_at=ts(-600))),
        observe(canary_ready=False),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        reason="ProgressDeadlineExceeded",
        weight=0,
    ),
    Case(
        "timed pause holds",
        canary(rolling(3, 50, step_started_at=ts(-60))),
        observe(),
        Phase.PROGRESSING,
        [],
        index=3,
    ),
    Case(
        "timed pause ends",
        canary(rolling(3, 50, step_started_at=ts(-120))),
        observe(),
        Phase.PROGRESSING,
        [],
        index=4,
    ),
    Case(
        "pause without duration waits for promote",
        canary(rolling(4, 50)),
        observe(),
        Phase.PAUSED,
        [],
        reason="PausedAtStep",
        index=4,
        status={"paused_at": ts()},
    ),
    Case(
        "paused at step stays paused",
        canary(rolling(4, 50, phase=Phase.PAUSED, reason="PausedAtStep", paused_at=ts(-60))),
        observe(),
        Phase.PAUSED,
        [],
        reason="PausedAtStep",
    ),
    Case(
        "analysis step waits for its measurement",
        canary(rolling(1, 10)),
        observe(),
        Phase.PROGRESSING,
        [],
        index=1,
        message="0 of 1 metrics complete",
    ),
    Case(
        "analysis step passes",
        canary(rolling(1, 10)),
        observe(samples={STEP1: OK}),
        Phase.PROGRESSING,
        [],
        index=2,
        message="error-rate 0.001 within max 0.01",
    ),
    Case(
        "analysis step fails: rollback names the metric",
        canary(rolling(1, 10)),
        observe(samples={STEP1: BAD}),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        reason="AnalysisFailed",
        weight=0,
        message="error-rate 0.05 above max 0.01",
    ),
    Case(
        "analysis step inconclusive pauses",
        canary(rolling(1, 10)),
        observe(samples={STEP1: ScalarSample(None)}),
        Phase.PAUSED,
        [],
        reason="Inconclusive",
        weight=10,
        message="error-rate: no data",
    ),
    Case(
        "last step done: promotion is recorded, not yet applied",
        canary(rolling(5, 50)),
        observe(),
        Phase.PROMOTING,
        [],
        reason="Promoting",
        weight=50,
        index=5,
    ),
    Case(
        "promoting applies the promotion and waits for stable",
        canary(rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting")),
        observe(stable_ready=False),
        Phase.PROMOTING,
        [PromoteStable("rev2")],
        reason="Promoting",
        weight=50,
        message="waiting for checkout-primary to be ready",
    ),
    Case(
        "promoting with the target moved on waits without copying it",
        canary(rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting")),
        observe("rev3", stable_ready=False),
        Phase.PROMOTING,
        [],
        weight=50,
        message="the target is now at rev3",
    ),
    Case(
        "promotion completes",
        canary(rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting")),
        observe(),
        Phase.SUCCEEDED,
        [SetWeight(0)],
        reason="Promoted",
        weight=0,
        status={"stable_revision": "rev2", "canary_revision": "rev2"},
    ),
    Case(
        "promotion finishes before a newer revision",
        canary(rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting")),
        observe("rev3"),
        Phase.SUCCEEDED,
        [SetWeight(0)],
        status={"stable_revision": "rev2"},
    ),
    Case(
        "stable not ready by the deadline: still promoting, traffic kept",
        canary(rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting", step_started_at=ts(-600))),
        observe(stable_ready=False),
        Phase.PROMOTING,
        [PromoteStable("rev2")],
        reason="PromotionSlow",
        weight=50,
        message="not ready after the progress deadline (10m); both versions keep serving",
    ),
    Case(
        "a slow promotion completes once stable is ready",
        canary(
            rolling(5, 50, phase=Phase.PROMOTING, reason="PromotionSlow", step_started_at=ts(-900))
        ),
        observe(),
        Phase.SUCCEEDED,
        [SetWeight(0)],
        reason="Promoted",
        weight=0,
        status={"stable_revision": "rev2"},
    ),
    # ------------------------------------------------------------ background analysis
    Case(
        "background fail rolls back during a pause",
        bg_canary(rolling(3, 50)),
        observe(samples={BG: ScalarSample(0.9)}),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        reason="AnalysisFailed",
        message="latency 0.9 above max 0.5",
    ),
    Case(
        "background fail rolls back a user pause",
        bg_canary(rolling(3, 50, phase=Phase.PAUSED, reason="PausedByUser", paused_at=ts(-5))),
        observe(samples={BG: ScalarSample(0.9)}),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
    ),
    Case(
        "promotion waits for a background result",
        bg_canary(rolling(5, 50, analysis=[measured(BG, verdict=Verdict.ERROR)])),
        observe(),
        Phase.PROGRESSING,
        [],
        index=5,
        message="promotion waits for a result from background/latency",
    ),
    Case(
        "promotion after a background pass",
        bg_canary(rolling(5, 50, analysis=[measured(BG, verdict=Verdict.PASS, measurements=3)])),
        observe(),
        Phase.PROMOTING,
        [],
    ),
    Case(
        "an Inconclusive background result never promotes",
        # e.g. right after `canary resume` of an Inconclusive pause measured it afresh
        bg_canary(rolling(5, 50, analysis=[measured(BG, verdict=Verdict.INCONCLUSIVE)])),
        observe(),
        Phase.PROGRESSING,
        [],
        index=5,
        message="promotion waits for a result from background/latency (too little traffic",
    ),
    # ------------------------------------------------------------ metrics unavailable
    Case(
        "one unavailable interval is counted",
        canary(rolling(1, 10)),
        observe(samples={STEP1: DOWN}),
        Phase.PROGRESSING,
        [],
        weight=10,
        status={"metrics_unavailable_intervals": 1},
    ),
    Case(
        "too many unavailable intervals: traffic to stable, pause",
        canary(rolling(1, 10, metrics_unavailable_intervals=3)),
        observe(samples={STEP1: DOWN}),
        Phase.PAUSED,
        [SetWeight(0)],
        reason="MetricsUnavailable",
        weight=0,
        message="connection refused",
        status={"metrics_unavailable_intervals": 4, "paused_at": ts()},
    ),
    Case(
        "one usable sample resets the count",
        bg_canary(rolling(1, 10, metrics_unavailable_intervals=3)),
        observe(samples={STEP1: DOWN, BG: ScalarSample(0.1)}),
        Phase.PROGRESSING,
        [],
        status={"metrics_unavailable_intervals": 0},
    ),
    Case(
        "an error streak past the metric's limit pauses",
        bg_canary(rolling(3, 50, analysis=[measured(BG, 60, consecutive_errors=4)])),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [SetWeight(0)],
        reason="MetricsUnavailable",
    ),
    Case(
        "metrics back: same step, its weight restored, clock frozen",
        canary(
            rolling(
                3,
                0,
                phase=Phase.PAUSED,
                reason="MetricsUnavailable",
                paused_at=ts(-100),
                step_started_at=ts(-160),
                metrics_unavailable_intervals=5,
            ),
            analysis=BACKGROUND,
        ),
        observe(samples={BG: ScalarSample(0.9)}),  # a probe: not judged, no rollback
        Phase.PROGRESSING,
        [SetWeight(50)],
        reason="Resumed",
        weight=50,
        index=3,
        status={"step_started_at": ts(-60), "paused_at": None, "metrics_unavailable_intervals": 0},
    ),
    Case(
        "metrics still down: stay paused",
        bg_canary(
            rolling(3, 0, phase=Phase.PAUSED, reason="MetricsUnavailable", paused_at=ts(-100))
        ),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [],
        reason="MetricsUnavailable",
        weight=0,
    ),
    Case(
        "metrics down past the deadline rolls back",
        bg_canary(
            rolling(
                3,
                0,
                phase=Phase.PAUSED,
                reason="MetricsUnavailable",
                paused_at=ts(-600),
                metrics_unavailable_intervals=9,
            )
        ),
        observe(samples={BG: DOWN}),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        reason="ProgressDeadlineExceeded",
    ),
    # ------------------------------------------------------------ other pauses in an outage
    Case(
        "a user pause survives the unavailable limit; traffic goes to stable",
        bg_canary(paused_by("PausedByUser", metrics_unavailable_intervals=3)),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [SetWeight(0)],
        reason="PausedByUser",
        weight=0,
        message="metrics unavailable",
        status={"paused_at": ts(-30)},
    ),
    Case(
        "a user pause below the unavailable limit keeps its weight",
        bg_canary(paused_by("PausedByUser")),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [],
        reason="PausedByUser",
        weight=50,
    ),
    Case(
        "a step pause survives an outage",
        bg_canary(paused_by("PausedAtStep", index=4, metrics_unavailable_intervals=3)),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [SetWeight(0)],
        reason="PausedAtStep",
        weight=0,
        message="`canary promote checkout -n shop` restores canary weight 50%",
    ),
    Case(
        "an Inconclusive pause survives an outage",
        bg_canary(paused_by("Inconclusive", metrics_unavailable_intervals=3)),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [SetWeight(0)],
        reason="Inconclusive",
        weight=0,
    ),
    Case(
        "metrics back during a held-back user pause: still paused, still at stable",
        bg_canary(paused_by("PausedByUser", weight=0, metrics_unavailable_intervals=6)),
        observe(samples={BG: ScalarSample(0.9)}),  # a probe: the canary had no traffic
        Phase.PAUSED,
        [],
        reason="PausedByUser",
        weight=0,
        message="metrics answer again; traffic stays with stable until "
        "`canary resume checkout -n shop`",
        status={"metrics_unavailable_intervals": 0},
    ),
    Case(
        "a held-back user pause has no deadline",
        bg_canary(
            paused_by(
                "PausedByUser", weight=0, paused_at=ts(-9000), metrics_unavailable_intervals=9
            )
        ),
        observe(samples={BG: DOWN}),
        Phase.PAUSED,
        [],
        reason="PausedByUser",
        weight=0,
    ),
    Case(
        "a user pause has no deadline",
        canary(rolling(0, 0, phase=Phase.PAUSED, reason="PausedByUser", paused_at=ts(-9000))),
        observe(canary_ready=False),
        Phase.PAUSED,
        [],
        reason="PausedByUser",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transition(case: Case) -> None:
    decision = decide(case.canary, case.obs, case.seconds)
    status = decision.status
    assert workload(decision) == case.actions
    assert status.phase is case.phase
    if case.reason is not None:
        assert status.reason == case.reason
    if case.weight is not None:
        assert status.canary_weight == case.weight
    if case.index != "any":
        assert status.current_step_index == case.index
    assert case.message in status.message
    for name, value in case.status.items():
        assert getattr(status, name) == value, name
    if status.phase is not case.canary.status.phase:
        assert len(events(decision)) == 1, "every phase change emits exactly one event"
    assert status.observed_generation == 7


def test_rollback_event_is_a_warning_with_the_metric_reason() -> None:
    decision = decide(canary(rolling(1, 10)), observe(samples={STEP1: BAD}))
    [event] = events(decision)
    assert event.type == "Warning"
    assert event.reason == "AnalysisFailed"
    assert "error-rate 0.05 above max 0.01" in event.message


def test_metrics_unavailable_never_records_a_fail() -> None:
    status = rolling(1, 10, metrics_unavailable_intervals=3)
    decision = decide(canary(status), observe(samples={STEP1: DOWN}))
    [metric] = decision.status.analysis
    assert metric.verdict is Verdict.ERROR
    assert metric.failures == 0
    [event] = events(decision)
    assert (event.type, event.reason) == ("Warning", "MetricsUnavailable")


def test_probe_while_unavailable_clears_the_error_streak_without_judging() -> None:
    status = rolling(
        3,
        0,
        phase=Phase.PAUSED,
        reason="MetricsUnavailable",
        paused_at=ts(-100),
        analysis=[measured(BG, 60, verdict=Verdict.ERROR, consecutive_errors=6)],
    )
    decision = decide(bg_canary(status), observe(samples={BG: ScalarSample(0.9)}))
    [metric] = decision.status.analysis
    assert (metric.failures, metric.consecutive_errors, metric.measured_at) == (0, 0, ts())


def test_weight_shift_within_a_phase_emits_one_event() -> None:
    [event] = events(decide(canary(rolling(0, 0)), observe()))
    assert (event.reason, event.message) == ("WeightSet", "step 1/5: canary weight set to 10%")


def test_steps_advance_once_per_call() -> None:
    spec_steps = [Step(set_weight=10), Step(set_weight=20)]
    decision = decide(canary(rolling(0, 0), steps=spec_steps), observe())
    assert workload(decision) == [SetWeight(10)]
    assert decision.status.current_step_index == 1
    assert decision.requeue_after == 0


def test_one_metric_answering_is_not_enough_while_another_keeps_failing() -> None:
    status = rolling(
        1,
        0,
        phase=Phase.PAUSED,
        reason="MetricsUnavailable",
        paused_at=ts(-100),
        analysis=[measured(STEP1, 30, verdict=Verdict.ERROR, consecutive_errors=5)],
    )
    decision = decide(bg_canary(status), observe(samples={BG: OK, STEP1: DOWN}))
    assert decision.status.phase is Phase.PAUSED
    assert workload(decision) == []
    assert decision.status.metrics_unavailable_intervals == 0


def test_a_new_revision_replaces_a_paused_rollout() -> None:
    status = rolling(3, 50, phase=Phase.PAUSED, reason="PausedByUser", paused_at=ts(-5))
    decision = decide(canary(status), observe("rev3"))
    assert workload(decision) == [SetWeight(0), EnsureCanary("rev3")]
    assert (decision.status.phase, decision.status.paused_at) == (Phase.PROGRESSING, None)
    replaced = f"it replaces revision {status.canary_revision} mid-rollout"
    assert decision.status.message is not None and replaced in decision.status.message
    assert any(replaced in e.message for e in decision.actions if isinstance(e, EmitEvent))


LIMITS = [
    # (limits, counts before, sample, phase after)
    ({"failure_limit": 1}, {"failures": 0}, BAD, Phase.PROGRESSING),
    ({"failure_limit": 1}, {"failures": 1}, BAD, Phase.ROLLED_BACK),
    ({"inconclusive_limit": 1}, {"inconclusives": 0}, ScalarSample(None), Phase.PROGRESSING),
    ({"inconclusive_limit": 1}, {"inconclusives": 1}, ScalarSample(None), Phase.PAUSED),
    ({"consecutive_error_limit": 2}, {"consecutive_errors": 1}, DOWN, Phase.PROGRESSING),
    ({"consecutive_error_limit": 2}, {"consecutive_errors": 2}, DOWN, Phase.PAUSED),
]


@pytest.mark.parametrize(("limits", "before", "sample", "phase"), LIMITS)
def test_limits_are_exceeded_only_above_them(
    limits: dict[str, Any], before: dict[str, int], sample: Any, phase: Phase
) -> None:
    metric = threshold_metric(count=5, **limits)
    templates = {
        **TEMPLATES,
        "error-rate": TEMPLATES["error-rate"].model_copy(update={"metrics": [metric]}),
    }
    status = rolling(1, 10, analysis=[measured(STEP1, 30, measurements=1, **before)])
    decision = step(canary(status), templates, observe(samples={STEP1: sample}), at())
    assert decision.status.phase is phase


def test_initialization_emits_one_event_per_phase_of_it() -> None:
    first = decide(canary(), observe("rev1", stable_ready=False))
    [event] = events(first)
    assert (event.type, event.reason) == ("Normal", "Initializing")
    waiting = decide(canary(first.status), observe("rev1", stable_ready=False))
    assert waiting.actions == ()
    done = decide(canary(first.status), observe("rev1"))
    [event] = events(done)
    assert (event.reason, event.message) == (
        "Initialized",
        "revision rev1 is stable: checkout-primary serves 100% of traffic",
    )


def test_a_slow_promotion_warns_once() -> None:
    status = rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting", step_started_at=ts(-600))
    first = decide(canary(status), observe(stable_ready=False))
    [event] = events(first)
    assert (event.type, event.reason) == ("Warning", "PromotionSlow")
    assert first.requeue_after == 5
    again = decide(canary(first.status), observe(stable_ready=False), 5)
    assert events(again) == []
    assert workload(again) == [PromoteStable("rev2")]
    assert (again.status.phase, again.status.reason) == (Phase.PROMOTING, "PromotionSlow")


def test_promotion_is_recorded_then_applied_on_the_next_call() -> None:
    recorded = decide(canary(rolling(5, 50)), observe(stable_ready=False))
    assert (recorded.status.phase, workload(recorded), recorded.requeue_after) == (
        Phase.PROMOTING,
        [],
        0,
    )
    applied = decide(canary(recorded.status), observe(stable_ready=False))
    assert workload(applied) == [PromoteStable("rev2")]
    assert events(applied) == []
    repeated = decide(canary(applied.status), observe(stable_ready=False), 5)
    assert workload(repeated) == [PromoteStable("rev2")]  # idempotent, until stable is ready


ROLLBACKS = [
    ("analysis Fail", canary(rolling(1, 10)), observe(samples={STEP1: BAD})),
    ("background Fail", bg_canary(rolling(3, 50)), observe(samples={BG: ScalarSample(0.9)})),
    (
        "readiness deadline",
        canary(rolling(2, 10, step_started_at=ts(-600))),
        observe(canary_ready=False),
    ),
    (
        "metrics deadline",
        bg_canary(paused_by("MetricsUnavailable", weight=0, paused_at=ts(-600))),
        observe(samples={BG: DOWN}),
    ),
]


@pytest.mark.parametrize(("c", "o"), [r[1:] for r in ROLLBACKS], ids=[r[0] for r in ROLLBACKS])
def test_a_rollback_is_one_router_call_then_a_delayed_scale_down(
    c: Canary, o: Observations
) -> None:
    decision = decide(c, o)
    assert decision.status.phase is Phase.ROLLED_BACK
    assert workload(decision) == [SetWeight(0)]
    assert len(events(decision)) == 1
    # The canary keeps running the default 30 s for data planes that apply the route late.
    assert decision.status.canary_scale_down_at == ts(30)
    assert decision.requeue_after == 30
    later = decide(c.model_copy(update={"status": decision.status}), observe(), 30)
    assert workload(later) == [ScaleDownCanary()]
    assert later.status.canary_scale_down_at is None
    assert later.requeue_after is None


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (rolling(2, 50), ("Progressing", "4/5")),  # a setWeight step moves on at once
        (rolling(3, 50, phase=Phase.PAUSED), ("Paused", "4/5")),
        (settled(), ("Succeeded", None)),
    ],
)
def test_kubectl_columns_show_the_phase_and_the_step_one_based(
    status: CanaryStatus, shown: tuple[str, str | None]
) -> None:
    decision = decide(canary(status), observe("rev2" if status.canary_revision else "rev1"))
    assert decision.status.current_step_index == (None if shown[1] is None else 3)
    assert (decision.status.phase_display, decision.status.step_display) == shown


def test_kubectl_columns_show_an_invalid_spec_as_the_phase() -> None:
    decision = decide(canary(rolling(2, 50)), observe(errors=("spec.steps: broken",)))
    assert (decision.status.phase_display, decision.status.step_display) == ("Invalid", "3/5")
