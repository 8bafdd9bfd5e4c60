"""Manual requests (promote, abort, pause, resume, retry) and spec errors in machine.step()."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from engine_support import (
    BERLIN_OFFICE,
    ask,
    canary,
    decide,
    events,
    measured,
    observe,
    rolling,
    settled,
    ts,
    workload,
)

from canary.api.canary import Canary
from canary.api.status import CanaryStatus, Condition, Phase, RequestOutcome, Verdict
from canary.engine.actions import (
    EnsureCanary,
    ManualRequest,
    SetWeight,
)

pytestmark = pytest.mark.unit

STEP1 = "step-1/error-rate"


def paused(reason: str, index: int = 3, weight: int = 50, **fields: Any) -> CanaryStatus:
    return rolling(index, weight, phase=Phase.PAUSED, reason=reason, paused_at=ts(-30), **fields)


@dataclass(frozen=True)
class Case:
    id: str
    canary: Canary
    request: ManualRequest
    phase: Phase
    actions: list[Any]
    event_reason: str  # the one event this request causes
    reason: str | None = None
    index: int | str | None = "any"
    weight: int | None = None
    target: str | None = "rev2"
    status: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "promote at a pause step continues",
        canary(paused("PausedAtStep", index=4)),
        ask("promote"),
        Phase.PROGRESSING,
        [],
        "Resumed",
        index=5,
        weight=50,
        status={"paused_at": None, "step_started_at": ts()},
    ),
    Case(
        "promote skips a waiting setWeight step and applies its weight",
        canary(rolling(2, 10)),
        ask("promote"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "StepPromoted",
        index=3,
        weight=50,
    ),
    Case(
        "promote skips an analysis step",
        canary(rolling(1, 10)),
        ask("promote"),
        Phase.PROGRESSING,
        [],
        "StepPromoted",
        index=2,
    ),
    Case(
        "promote after the last step starts promotion",
        canary(rolling(5, 50, analysis=[measured("background/latency", verdict=Verdict.ERROR)])),
        ask("promote"),
        Phase.PROMOTING,
        [],  # recorded now, applied by the next call
        "Promoting",
    ),
    Case(
        "promote --full goes straight to promotion",
        canary(rolling(1, 10)),
        ask("promote", full=True),
        Phase.PROMOTING,
        [],
        "Promoting",
        index=5,
        weight=10,
    ),
    Case(
        "promote --full from a pause",
        canary(paused("Inconclusive", index=1, weight=10)),
        ask("promote", full=True),
        Phase.PROMOTING,
        [],
        "Promoting",
        status={"paused_at": None},
    ),
    Case(
        "promote while metrics are unavailable restores traffic",
        canary(paused("MetricsUnavailable", index=3, weight=0, metrics_unavailable_intervals=5)),
        ask("promote"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "Resumed",
        index=4,
        weight=50,
        status={"metrics_unavailable_intervals": 0},
    ),
    Case(
        "promote while metrics are unavailable makes one router call",
        canary(paused("MetricsUnavailable", index=2, weight=0, metrics_unavailable_intervals=5)),
        ask("promote"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "Resumed",
        index=3,
        weight=50,
    ),
    Case(
        "promote while promoting is ignored",
        canary(rolling(5, 50, phase=Phase.PROMOTING)),
        ask("promote"),
        Phase.PROMOTING,
        [],
        "RequestIgnored",
    ),
    Case(
        "promote while waiting for the window is ignored",
        canary(settled(Phase.WAITING, canary_revision="rev2")),
        ask("promote"),
        Phase.WAITING,
        [],
        "RequestIgnored",
    ),
    Case(
        "abort rolls back",
        canary(rolling(2, 10)),
        ask("abort"),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        "Aborted",
        reason="Aborted",
        weight=0,
    ),
    Case(
        "undo mid-rollout is one router call back, recorded as an undo",
        canary(rolling(2, 10)),
        ask("undo"),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        "Undone",
        reason="Undone",
        weight=0,
    ),
    Case(
        "undo in the bake goes back while the previous pods are warm",
        canary(rolling(6, 95, phase=Phase.BAKING, reason="Baking", bake_started_at=ts(-60))),
        ask("undo"),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        "Undone",
        reason="Undone",
        weight=0,
    ),
    Case(
        "undo once promoted is the CLI's job, not a request",
        canary(settled()),
        ask("undo"),
        Phase.SUCCEEDED,
        [],
        "RequestIgnored",
    ),
    Case(
        "abort a pause rolls back",
        canary(paused("PausedByUser")),
        ask("abort"),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        "Aborted",
    ),
    Case(
        "abort a waiting revision keeps it out",
        canary(settled(Phase.WAITING, canary_revision="rev2")),
        ask("abort"),
        Phase.ROLLED_BACK,
        [SetWeight(0)],
        "Aborted",
        status={"canary_revision": "rev2"},
    ),
    Case(
        "abort while promoting is ignored",
        canary(rolling(5, 50, phase=Phase.PROMOTING)),
        ask("abort"),
        Phase.PROMOTING,
        [],
        "RequestIgnored",
    ),
    Case(
        "abort when settled is ignored",
        canary(settled()),
        ask("abort"),
        Phase.SUCCEEDED,
        [],
        "RequestIgnored",
        target="rev1",
    ),
    Case(
        "pause",
        canary(rolling(3, 50)),
        ask("pause"),
        Phase.PAUSED,
        [],
        "PausedByUser",
        reason="PausedByUser",
        weight=50,
        status={"paused_at": ts()},
    ),
    Case(
        "pause during a metrics outage makes it a user pause, clock and weight kept",
        canary(paused("MetricsUnavailable", weight=0, metrics_unavailable_intervals=5)),
        ask("pause"),
        Phase.PAUSED,
        [],
        "PausedByUser",
        reason="PausedByUser",
        weight=0,
        status={"paused_at": ts(-30), "metrics_unavailable_intervals": 5},
    ),
    Case(
        "resume a user pause held back by the fail-safe restores the step's weight",
        canary(paused("PausedByUser", weight=0, metrics_unavailable_intervals=4)),
        ask("resume"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "Resumed",
        weight=50,
        index=3,
        status={"metrics_unavailable_intervals": 0, "paused_at": None},
    ),
    Case(
        "promote a step pause held back by the fail-safe applies the next weight",
        canary(paused("PausedAtStep", index=4, weight=0, metrics_unavailable_intervals=4)),
        ask("promote"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "Resumed",
        weight=50,
        index=5,
        status={"metrics_unavailable_intervals": 0},
    ),
    Case(
        "pause when paused is ignored",
        canary(paused("PausedAtStep", index=4)),
        ask("pause"),
        Phase.PAUSED,
        [],
        "RequestIgnored",
        reason="PausedAtStep",
    ),
    Case(
        "resume a user pause freezes the step clock",
        canary(paused("PausedByUser", step_started_at=ts(-90))),
        ask("resume"),
        Phase.PROGRESSING,
        [],
        "Resumed",
        index=3,
        status={"step_started_at": ts(-60), "paused_at": None},
    ),
    Case(
        "resume an inconclusive pause measures again",
        canary(
            paused(
                "Inconclusive",
                index=1,
                weight=10,
                analysis=[measured(STEP1, inconclusives=1, measurements=1)],
            )
        ),
        ask("resume"),
        Phase.PROGRESSING,
        [],
        "Resumed",
        index=1,
        status={"analysis": [measured(STEP1)]},
    ),
    Case(
        "resume while metrics are unavailable restores traffic",
        canary(paused("MetricsUnavailable", weight=0, metrics_unavailable_intervals=4)),
        ask("resume"),
        Phase.PROGRESSING,
        [SetWeight(50)],
        "Resumed",
        weight=50,
        status={"metrics_unavailable_intervals": 0},
    ),
    Case(
        "resume at a pause step is ignored: it waits for promote",
        canary(paused("PausedAtStep", index=4)),
        ask("resume"),
        Phase.PAUSED,
        [],
        "RequestIgnored",
    ),
    Case(
        "resume when not paused is ignored",
        canary(rolling(3, 50)),
        ask("resume"),
        Phase.PROGRESSING,
        [],
        "RequestIgnored",
    ),
    Case(
        "retry a rollback restarts from step 0",
        canary(settled(Phase.ROLLED_BACK, canary_revision="rev2", analysis=[measured(STEP1)])),
        ask("retry"),
        Phase.PROGRESSING,
        [EnsureCanary("rev2")],
        "RolloutStarted",
        index=0,
        weight=0,
        status={"analysis": [], "rollout_started_at": ts()},
    ),
    Case(
        "retry a failure",
        canary(settled(Phase.FAILED, canary_revision=None)),
        ask("retry"),
        Phase.PROGRESSING,
        [EnsureCanary("rev2")],
        "RolloutStarted",
    ),
    Case(
        "retry of the stable revision is ignored",
        canary(settled(Phase.ROLLED_BACK, canary_revision="rev2")),
        ask("retry"),
        Phase.ROLLED_BACK,
        [],
        "RequestIgnored",
        target="rev1",
    ),
    Case(
        "retry while progressing is ignored",
        canary(rolling(2, 10)),
        ask("retry"),
        Phase.PROGRESSING,
        [],
        "RequestIgnored",
        index=2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_request(case: Case) -> None:
    decision = decide(case.canary, observe(case.target, canary_ready=False, request=case.request))
    status = decision.status
    assert workload(decision) == case.actions
    assert status.phase is case.phase
    assert status.last_request_id == "r1"
    [event] = events(decision)
    assert event.reason == case.event_reason
    assert "requested by alice at 2024-05-06T09:59:55Z" in event.message
    if case.event_reason == "RequestIgnored":
        assert status.last_request_outcome is RequestOutcome.IGNORED
        assert event.message.endswith(f" ignored: {status.last_request_message}")
    else:
        assert status.last_request_outcome is RequestOutcome.APPLIED
        assert status.last_request_message is None
    if case.reason is not None:
        assert status.reason == case.reason
    if case.index != "any":
        assert status.current_step_index == case.index
    if case.weight is not None:
        assert status.canary_weight == case.weight
    for name, value in case.status.items():
        assert getattr(status, name) == value, name


def test_ignored_request_says_why() -> None:
    decision = decide(canary(paused("PausedAtStep", index=4)), observe(request=ask("resume")))
    [event] = events(decision)
    assert event.type == "Normal"
    assert event.message == (
        "resume requested by alice at 2024-05-06T09:59:55Z ignored: "
        "step 5/5 is a pause that waits for `canary promote checkout -n shop`"
    )


def test_an_applied_request_clears_why_the_one_before_was_ignored() -> None:
    status = rolling(
        3,
        50,
        last_request_id="r0",
        last_request_outcome=RequestOutcome.IGNORED,
        last_request_message="already paused",
    )
    decision = decide(canary(status), observe(request=ask("pause")))
    assert decision.status.last_request_id == "r1"
    assert decision.status.last_request_outcome is RequestOutcome.APPLIED
    assert decision.status.last_request_message is None


def test_a_consumed_request_is_not_applied_again() -> None:
    status = rolling(2, 10, last_request_id="r1")
    decision = decide(canary(status), observe(canary_ready=False, request=ask("abort")))
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.actions == ()


def test_request_without_user_or_time_is_still_audited() -> None:
    request = ManualRequest("r9", "pause")
    [event] = events(decide(canary(rolling(3, 50)), observe(request=request)))
    assert "pause requested by an unknown user at 2024-05-06T10:00:00Z" in event.message


def test_request_time_without_a_zone_is_read_as_utc() -> None:
    request = ManualRequest("r9", "pause", user="bob", at=datetime(2024, 5, 6, 9, 58))
    [event] = events(decide(canary(rolling(3, 50)), observe(request=request)))
    assert "pause requested by bob at 2024-05-06T09:58:00Z" in event.message


# ---------------------------------------------------------------- spec errors

PROBLEM = "spec.steps[0].setWeight: must not exceed 100 (use 0-100)"


def invalid(message: str) -> Condition:
    return Condition(
        type="Invalid",
        status="True",
        reason="InvalidSpec",
        message=message,
        last_transition_time=ts(-60),
    )


def test_spec_errors_stop_all_workload_actions() -> None:
    decision = decide(canary(rolling(0, 0)), observe(errors=(PROBLEM,)))
    status = decision.status
    assert workload(decision) == []
    assert status.phase is Phase.PROGRESSING
    [condition] = status.conditions
    assert (condition.type, condition.status, condition.message) == ("Invalid", "True", PROBLEM)
    [event] = events(decision)
    assert (event.type, event.reason) == ("Warning", "InvalidSpec")
    assert decision.requeue_after == 60


def test_unchanged_spec_errors_do_not_repeat_the_event() -> None:
    status = rolling(0, 0, conditions=[invalid(PROBLEM)])
    decision = decide(canary(status), observe(errors=(PROBLEM,)))
    assert decision.actions == ()
    assert decision.status.conditions == [invalid(PROBLEM)]


def test_changed_spec_errors_emit_again_and_keep_the_transition_time() -> None:
    status = rolling(0, 0, conditions=[invalid("old problem")])
    decision = decide(canary(status), observe(errors=(PROBLEM,)))
    assert len(events(decision)) == 1
    assert decision.status.conditions == [invalid(PROBLEM)]


def test_cleared_spec_errors_set_invalid_false_and_resume() -> None:
    status = rolling(0, 0, conditions=[invalid(PROBLEM)])
    decision = decide(canary(status), observe())
    [condition] = decision.status.conditions
    assert (condition.status, condition.reason, condition.last_transition_time) == (
        "False",
        "Valid",
        ts(),
    )
    assert workload(decision) == [SetWeight(10)]
    assert [e.reason for e in events(decision)] == ["SpecValid", "WeightSet"]


def test_valid_spec_gets_a_quiet_invalid_false_condition() -> None:
    decision = decide(canary(settled()), observe("rev1"))
    [condition] = decision.status.conditions
    assert condition.status == "False"
    assert decision.actions == ()


def test_request_while_invalid_is_consumed_and_ignored() -> None:
    status = rolling(2, 10, conditions=[invalid(PROBLEM)])
    decision = decide(canary(status), observe(request=ask("abort"), errors=(PROBLEM,)))
    assert decision.status.phase is Phase.PROGRESSING
    assert decision.status.last_request_id == "r1"
    assert decision.status.last_request_outcome is RequestOutcome.IGNORED
    assert decision.status.last_request_message == "the spec is invalid; fix it first"
    [event] = events(decision)
    assert event.reason == "RequestIgnored"
    assert "the spec is invalid" in event.message


def test_retry_outside_the_deploy_window_waits() -> None:
    status = settled(Phase.ROLLED_BACK, canary_revision="rev2")
    c = canary(status, deploy_window=BERLIN_OFFICE)
    decision = decide(c, observe(request=ask("retry")), 7 * 3600)
    assert decision.status.phase is Phase.WAITING
    assert workload(decision) == []
    [event] = events(decision)
    assert "retry requested by alice" in event.message
