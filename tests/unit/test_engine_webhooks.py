"""Webhooks in machine.step(): when each type is due (hooks.due_webhooks) and what its
result does (hook_rules), with a frozen clock and results handed in as observations."""

from __future__ import annotations

import dataclasses
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
    observe,
    rolling,
    settled,
    ts,
    workload,
)

from canary.api.canary import Bake, Canary, Step
from canary.api.status import CanaryStatus, Phase, Verdict, WebhookStatus
from canary.api.webhooks import Webhook
from canary.engine.actions import Decision, EnsureCanary, ScaleDownCanary, SetWeight
from canary.engine.hooks import WebhookResult, due_webhooks

pytestmark = pytest.mark.unit

PASS = WebhookResult(Verdict.PASS, "HTTP 200")
FAIL = WebhookResult(Verdict.FAIL, "HTTP 423: change freeze until Monday")
ERROR = WebhookResult(Verdict.ERROR, "http://gate/ did not answer within 10s (3 attempts)")
STEPS = [Step(set_weight=10), Step(set_weight=50)]


def hooked(status: CanaryStatus | None = None, *kinds: str, **spec: Any) -> Canary:
    """A Canary with one webhook of each kind, named after its kind."""
    hooks = [Webhook(name=k, type=k, url=f"http://hooks.ops/{k}") for k in kinds]  # type: ignore[arg-type]
    return canary(status, steps=STEPS, webhooks=hooks, scale_down_delay_seconds=0, **spec)


def run(
    c: Canary,
    answers: dict[str, WebhookResult] | None = None,
    seconds: float = 0,
    *,
    ready: bool = True,
) -> Decision:
    obs = dataclasses.replace(observe("rev2", canary_ready=ready), webhooks=answers or {})
    return decide(c, obs, seconds)


def due(c: Canary, seconds: float = 0, *, ready: bool = True) -> list[str]:
    return [call.name for call in due_webhooks(c, TEMPLATES, at(seconds), canary_ready=ready)]


def result(status: CanaryStatus, name: str) -> WebhookStatus:
    return next(w for w in status.webhooks if w.name == name)


def answered(
    name: str, verdict: Verdict | None, seconds_ago: float = 10, **fields: Any
) -> WebhookStatus:
    called = ts(-seconds_ago) if verdict is not None else None
    return WebhookStatus(name=name, type=name, verdict=verdict, called_at=called, **fields)


# ---------------------------------------------------------------- confirm-rollout


def test_a_new_revision_waits_for_confirm_rollout_before_anything_runs() -> None:
    decision = run(hooked(settled(), "confirm-rollout"))
    status = decision.status
    assert (status.phase, status.reason) == (Phase.WAITING, "WaitingForConfirmation")
    assert "confirm-rollout" in status.message and status.canary_revision == "rev2"
    assert workload(decision) == []  # no canary is scaled up, no traffic moves
    assert decision.requeue_after == 0  # its webhook is due at once
    assert due(hooked(status, "confirm-rollout")) == ["confirm-rollout"]


def test_confirm_rollout_non_2xx_keeps_waiting_and_is_asked_again_each_interval() -> None:
    waiting = run(hooked(settled(), "confirm-rollout")).status
    decision = run(hooked(waiting, "confirm-rollout"), {"confirm-rollout": FAIL})
    status = decision.status
    assert (status.phase, status.reason) == (Phase.WAITING, "WaitingForConfirmation")
    assert "change freeze until Monday" in status.message
    assert [e.reason for e in events(decision)] == ["WebhookFailed"]  # no second phase event
    assert decision.requeue_after == pytest.approx(30)
    assert due(hooked(status, "confirm-rollout"), 29) == []
    assert due(hooked(status, "confirm-rollout"), 30) == ["confirm-rollout"]


def test_confirm_rollout_2xx_starts_the_rollout() -> None:
    waiting = run(hooked(settled(), "confirm-rollout")).status
    decision = run(hooked(waiting, "confirm-rollout"), {"confirm-rollout": PASS})
    assert decision.status.phase is Phase.PROGRESSING
    assert workload(decision) == [EnsureCanary("rev2")]
    assert result(decision.status, "confirm-rollout").verdict is Verdict.PASS


def test_a_newer_revision_asks_for_confirmation_afresh() -> None:
    confirmed = rolling(1, 10, webhooks=[answered("confirm-rollout", Verdict.PASS)])
    c = hooked(confirmed, "confirm-rollout")
    decision = decide(c, observe("rev3"))
    assert decision.status.phase is Phase.WAITING
    assert decision.status.webhooks == []
    assert SetWeight(0) in workload(decision)  # the old canary's traffic goes back first


# ---------------------------------------------------------------- pre-rollout


def test_pre_rollout_holds_at_zero_until_it_passes() -> None:
    c = hooked(rolling(0, 0), "pre-rollout")
    assert due(c, ready=False) == []  # a smoke test against a canary not yet up is no test
    assert due(c) == ["pre-rollout"]
    held = run(c)
    assert workload(held) == [] and held.status.canary_weight == 0
    assert "pre-rollout" in held.status.message
    passed = run(c, {"pre-rollout": PASS})
    assert workload(passed) == [SetWeight(10)]
    assert due(hooked(passed.status, "pre-rollout")) == []  # passed: never asked again


def test_pre_rollout_fail_rolls_back_naming_the_webhook() -> None:
    decision = run(hooked(rolling(0, 0), "pre-rollout"), {"pre-rollout": FAIL})
    status = decision.status
    assert (status.phase, status.reason) == (Phase.ROLLED_BACK, "PreRolloutWebhookFailed")
    assert "pre-rollout webhook pre-rollout failed: HTTP 423" in status.message
    assert ScaleDownCanary() in workload(decision)


def test_pre_rollout_error_is_retried_until_the_progress_deadline() -> None:
    c = hooked(rolling(0, 0), "pre-rollout")
    retried = run(c, {"pre-rollout": ERROR})
    assert retried.status.phase is Phase.PROGRESSING and workload(retried) == []
    assert "did not answer" in retried.status.message
    assert due(hooked(retried.status, "pre-rollout"), 30) == ["pre-rollout"]
    late = hooked(rolling(0, 0, step_started_at=ts(-601)), "pre-rollout")
    decision = run(late, {"pre-rollout": ERROR})
    assert (decision.status.phase, decision.status.reason) == (
        Phase.ROLLED_BACK,
        "ProgressDeadlineExceeded",
    )
    assert "pre-rollout" in decision.status.message


def test_pre_rollout_added_mid_rollout_does_not_hold_traffic_already_moved() -> None:
    c = hooked(rolling(1, 10), "pre-rollout")
    assert due(c) == []
    assert workload(run(c)) == [SetWeight(50)]


# ---------------------------------------------------------------- confirm-promotion


def test_confirm_promotion_holds_an_earned_promotion_then_releases_it() -> None:
    done = rolling(2, 50)
    held = run(hooked(done, "confirm-promotion"))
    status = held.status
    assert (status.phase, status.reason) == (Phase.PROGRESSING, "WaitingForConfirmation")
    assert [e.reason for e in events(held)] == ["WaitingForConfirmation"]
    assert due(hooked(status, "confirm-promotion")) == ["confirm-promotion"]
    refused = run(hooked(status, "confirm-promotion"), {"confirm-promotion": FAIL})
    assert refused.status.phase is Phase.PROGRESSING
    assert "change freeze" in refused.status.message
    # Told to wait past the progress deadline, a proven canary is not rolled back.
    later = run(hooked(refused.status, "confirm-promotion"), {"confirm-promotion": FAIL}, 3600)
    assert later.status.phase is Phase.PROGRESSING
    released = run(hooked(later.status, "confirm-promotion"), {"confirm-promotion": PASS}, 3630)
    assert released.status.phase is Phase.PROMOTING


def test_confirm_promotion_is_not_asked_before_promotion_is_earned() -> None:
    assert due(hooked(rolling(1, 10), "confirm-promotion")) == []


# ---------------------------------------------------------------- rollback, load-test


def test_rollback_webhook_2xx_rolls_back_and_anything_else_does_nothing() -> None:
    c = hooked(rolling(1, 10), "rollback")
    assert due(c) == ["rollback"]
    kept = run(c, {"rollback": FAIL})
    assert kept.status.phase is Phase.PROGRESSING and workload(kept) == [SetWeight(50)]
    rolled = run(c, {"rollback": PASS})
    assert (rolled.status.phase, rolled.status.reason) == (Phase.ROLLED_BACK, "RollbackWebhook")
    assert "rollback webhook rollback asked for it" in rolled.status.message


def test_rollback_webhook_also_rolls_back_a_paused_rollout() -> None:
    paused = rolling(1, 10, phase=Phase.PAUSED, reason="PausedByUser", paused_at=ts(-5))
    decision = run(hooked(paused, "rollback"), {"rollback": PASS})
    assert decision.status.phase is Phase.ROLLED_BACK


def test_rollback_webhook_rolls_back_during_the_bake_too() -> None:
    """An incident opened after the promotion gate, while the previous version is warm."""
    baking = rolling(len(STEPS), 95, phase=Phase.BAKING, reason="Baking",
                     bake_started_at=ts(-60), step_started_at=ts(-60))
    c = hooked(baking, "rollback", bake=Bake(duration="15m"))
    assert due(c) == ["rollback"]
    decision = run(c, {"rollback": PASS})
    assert (decision.status.phase, decision.status.reason) == (Phase.ROLLED_BACK, "RollbackWebhook")
    assert workload(decision)[0] == SetWeight(0)


def test_load_test_is_called_each_interval_and_only_reported() -> None:
    c = hooked(rolling(1, 10), "load-test")
    # A canary not ready holds the step, so that the rollout stays live throughout.
    first = run(c, {"load-test": ERROR}, ready=False)
    assert first.status.phase is Phase.PROGRESSING
    assert ("Warning", "WebhookError") in [(e.type, e.reason) for e in events(first)]
    again = run(hooked(first.status, "load-test"), {"load-test": ERROR}, 30, ready=False)
    assert not [e for e in events(again) if e.reason.startswith("Webhook")]  # no change
    assert result(again.status, "load-test").calls == 2
    assert due(hooked(again.status, "load-test"), 59) == []
    assert due(hooked(again.status, "load-test"), 60) == ["load-test"]


def test_hooks_follow_the_background_analysis_interval() -> None:
    status = rolling(1, 10, webhooks=[answered("load-test", Verdict.PASS, 50)])
    assert due(hooked(status, "load-test", analysis=BACKGROUND)) == []  # every 1m
    assert due(hooked(status, "load-test")) == ["load-test"]  # every 30s


# ---------------------------------------------------------------- post-rollout


def test_post_rollout_is_owed_once_after_a_rollback_and_only_reported() -> None:
    c = hooked(rolling(1, 10), "post-rollout", "rollback")
    rolled = run(c, {"rollback": PASS})
    assert result(rolled.status, "post-rollout").verdict is None  # owed
    assert rolled.requeue_after == 0
    ended = hooked(rolled.status, "post-rollout", "rollback")
    assert due(ended) == ["post-rollout"]
    told = run(ended, {"post-rollout": FAIL}, 1)
    assert told.status.phase is Phase.ROLLED_BACK  # the verdict stands
    assert [(e.type, e.reason) for e in events(told)] == [("Warning", "WebhookFailed")]
    # The status says it was called: a restarted controller reading it calls it no more.
    assert due(hooked(told.status, "post-rollout", "rollback"), 3600) == []
    assert told.requeue_after is None


def test_post_rollout_after_a_promotion() -> None:
    promoting = rolling(2, 50, phase=Phase.PROMOTING, reason="Promoting")
    decision = run(hooked(promoting, "post-rollout"))
    assert decision.status.phase is Phase.SUCCEEDED
    assert due(hooked(decision.status, "post-rollout")) == ["post-rollout"]


# ---------------------------------------------------------------- the call itself


def test_the_payload_is_the_rollouts_context() -> None:
    hook = Webhook(
        name="gate", type="confirm-promotion", url="http://gate/", metadata={"ticket": "CHG-1"}
    )
    c = canary(rolling(2, 50), steps=STEPS, webhooks=[hook])
    (call,) = due_webhooks(c, TEMPLATES, at(), canary_ready=True)
    assert call.payload == {
        "name": "checkout",
        "namespace": "shop",
        "webhook": "gate",
        "type": "confirm-promotion",
        "phase": "Progressing",
        "canaryRevision": "rev2",
        "stableRevision": "rev1",
        "canaryWeight": 50,
        "step": 2,
        "metadata": {"ticket": "CHG-1"},
    }
    assert (call.timeout_seconds, call.retries) == (10.0, 2)


def test_results_of_webhooks_no_longer_in_the_spec_are_dropped() -> None:
    decision = run(hooked(rolling(1, 10), "rollback"), {"gone": PASS})
    assert [w.name for w in decision.status.webhooks] == []


def test_a_revision_waiting_for_its_window_then_asks_for_confirmation() -> None:
    closed = 12 * 3600  # 00:00 in Berlin: the window is closed
    outside = run(hooked(settled(), "confirm-rollout", deploy_window=BERLIN_OFFICE), None, closed)
    assert outside.status.reason == "OutsideDeployWindow"
    assert due(hooked(outside.status, "confirm-rollout", deploy_window=BERLIN_OFFICE)) == []
    c = hooked(outside.status, "confirm-rollout", deploy_window=BERLIN_OFFICE)
    opened = run(c)  # 12:00 in Berlin
    assert (opened.status.phase, opened.status.reason) == (Phase.WAITING, "WaitingForConfirmation")
    confirmed = run(
        hooked(opened.status, "confirm-rollout", deploy_window=BERLIN_OFFICE),
        {"confirm-rollout": PASS},
    )
    assert confirmed.status.phase is Phase.PROGRESSING
