"""Blackouts in machine.step(): a new revision waits them out (reason Blackout), a rollout
already in progress carries on, and rollbacks are never held back."""

from __future__ import annotations

import pytest
from engine_support import (
    BERLIN_OFFICE,
    ask,
    canary,
    decide,
    events,
    observe,
    rolling,
    settled,
    ts,
    workload,
)

from canary.api.canary import Blackout, Canary, DeployWindow
from canary.api.status import CanaryStatus, Phase
from canary.engine.actions import EnsureCanary, Observations, SetWeight
from canary.engine.samples import ScalarSample

pytestmark = pytest.mark.unit

HOUR = 3600
STEP1 = "step-1/error-rate"
# NOW is Monday 2024-05-06 10:00 UTC (12:00 in Berlin); the office is open 07:00-14:00 UTC.
# Ends inside office hours, at 12:00 UTC.
RELEASE_FREEZE = Blackout(
    start="2024-05-06T09:00:00+02:00", end="2024-05-06T14:00:00+02:00", reason="release freeze"
)
# Ends after the office closed, at 18:00 UTC; Tuesday's hours open at 07:00 UTC.
SALE = Blackout(start="2024-05-06T08:00:00Z", end="2024-05-06T18:00:00Z", reason="holiday sale")


def office(*blackouts: Blackout) -> DeployWindow:
    return BERLIN_OFFICE.model_copy(update={"blackouts": list(blackouts)})


def waiting(reason: str = "Blackout", message: str = "") -> CanaryStatus:
    return settled(Phase.WAITING, canary_revision="rev2", reason=reason, message=message)


def test_a_new_revision_waits_out_a_blackout_in_open_hours() -> None:
    decision = decide(canary(settled(Phase.IDLE), deploy_window=office(RELEASE_FREEZE)), observe())
    status = decision.status
    assert (status.phase, status.reason) == (Phase.WAITING, "Blackout")
    assert status.message == (
        'revision rev2 waits out the blackout "release freeze" until 2024-05-06T12:00:00Z'
    )
    assert (status.canary_revision, status.current_step_index) == ("rev2", None)
    assert workload(decision) == []
    [event] = events(decision)
    assert (event.reason, event.message) == ("Blackout", status.message)
    assert decision.requeue_after == 2 * HOUR


def test_the_message_says_when_the_rollout_starts_if_the_window_is_closed_by_then() -> None:
    decision = decide(canary(settled(Phase.IDLE), deploy_window=office(SALE)), observe())
    assert decision.status.message == (
        'revision rev2 waits out the blackout "holiday sale" until 2024-05-06T18:00:00Z; '
        "it starts at 2024-05-07T07:00:00Z"
    )
    assert decision.requeue_after == 8 * HOUR  # the blackout's end: the reason changes then


def test_a_blackout_without_weekly_hours() -> None:
    window = DeployWindow(blackouts=[SALE])
    decision = decide(canary(settled(Phase.IDLE), deploy_window=window), observe())
    assert (decision.status.phase, decision.status.reason) == (Phase.WAITING, "Blackout")
    assert decision.requeue_after == 8 * HOUR
    later = decide(canary(waiting(), deploy_window=window), observe(), 8 * HOUR)
    assert later.status.phase is Phase.PROGRESSING
    assert workload(later) == [EnsureCanary("rev2")]


def test_the_waiting_revision_starts_when_the_blackout_ends_in_open_hours() -> None:
    c = canary(waiting(), deploy_window=office(RELEASE_FREEZE))
    assert decide(c, observe(), 2 * HOUR - 1).status.phase is Phase.WAITING
    decision = decide(c, observe(), 2 * HOUR)
    assert decision.status.phase is Phase.PROGRESSING
    assert workload(decision) == [EnsureCanary("rev2")]


def test_a_blackout_ending_after_hours_hands_over_to_the_window() -> None:
    c = canary(waiting(), deploy_window=office(SALE))
    decision = decide(c, observe(), 8 * HOUR)  # 18:00 UTC: the sale is over, the office shut
    status = decision.status
    assert (status.phase, status.reason) == (Phase.WAITING, "OutsideDeployWindow")
    assert status.message.endswith("opens at 2024-05-07T07:00:00Z")
    assert [e.reason for e in events(decision)] == ["OutsideDeployWindow"]
    assert decision.requeue_after == 13 * HOUR
    opened = decide(canary(status, deploy_window=office(SALE)), observe(), 21 * HOUR)
    assert opened.status.phase is Phase.PROGRESSING


def test_a_blackout_added_while_waiting_for_the_window_moves_the_start() -> None:
    # Monday 19:00 Berlin: waiting for Tuesday 09:00; then a freeze covers Tuesday morning.
    tuesday = Blackout(
        start="2024-05-07T00:00:00+02:00", end="2024-05-07T12:00:00+02:00", reason="migration"
    )
    old = "revision rev2 waits for the deploy window, which opens at 2024-05-07T07:00:00Z"
    c = canary(waiting("OutsideDeployWindow", old), deploy_window=office(tuesday))
    decision = decide(c, observe(), 7 * HOUR)
    assert decision.status.reason == "OutsideDeployWindow"
    assert decision.status.message.endswith("opens at 2024-05-07T10:00:00Z")
    assert events(decision) == []  # same phase and reason: the message alone changes
    assert decision.requeue_after == 17 * HOUR


def test_a_rollout_in_progress_carries_on_when_a_blackout_starts() -> None:
    # As with the weekly window: only starting a rollout waits.
    decision = decide(canary(rolling(0, 0), deploy_window=office(RELEASE_FREEZE)), observe())
    assert decision.status.phase is Phase.PROGRESSING
    assert workload(decision) == [SetWeight(10)]


def test_a_new_revision_mid_rollout_during_a_blackout_stops_the_old_canary() -> None:
    c = canary(rolling(2, 10), deploy_window=office(RELEASE_FREEZE))
    decision = decide(c, observe("rev3"))
    status = decision.status
    assert (status.phase, status.reason) == (Phase.WAITING, "Blackout")
    assert (status.canary_revision, status.canary_weight) == ("rev3", 0)
    assert workload(decision)[0] == SetWeight(0)


ROLLBACKS = [
    ("abort", rolling(2, 10), observe(request=ask("abort")), "Aborted"),
    ("abort a waiting revision", waiting(), observe(request=ask("abort")), "Aborted"),
    (
        "analysis Fail",
        rolling(1, 10),
        observe(samples={STEP1: ScalarSample(0.05)}),
        "AnalysisFailed",
    ),
    (
        "progress deadline",
        rolling(0, 0, step_started_at=ts(-601)),
        observe(canary_ready=False),
        "ProgressDeadlineExceeded",
    ),
]


@pytest.mark.parametrize(
    ("status", "obs", "reason"), [c[1:] for c in ROLLBACKS], ids=[c[0] for c in ROLLBACKS]
)
def test_rollbacks_are_never_held_back(
    status: CanaryStatus, obs: Observations, reason: str
) -> None:
    for c in (
        canary(status, deploy_window=office(SALE)),
        canary(status, deploy_window=DeployWindow(blackouts=[SALE])),
    ):
        decision = decide(c, obs)
        assert (decision.status.phase, decision.status.reason) == (Phase.ROLLED_BACK, reason)
        assert SetWeight(0) in workload(decision)


def test_retry_during_a_blackout_waits_it_out() -> None:
    c: Canary = canary(
        settled(Phase.ROLLED_BACK, canary_revision="rev2"), deploy_window=office(SALE)
    )
    decision = decide(c, observe(request=ask("retry")))
    assert (decision.status.phase, decision.status.reason) == (Phase.WAITING, "Blackout")
    assert workload(decision) == []
    [event] = events(decision)
    assert "retry requested by alice" in event.message
    # The audit stays in the message while the revision keeps waiting.
    again = decide(canary(decision.status, deploy_window=office(SALE)), observe(), 60)
    assert again.status.message == decision.status.message
