"""spec.scaleDownDelaySeconds: N-canary keeps running a while after traffic leaves it."""

from __future__ import annotations

import pytest
from engine_support import ask, canary, decide, observe, rolling, settled, ts, workload

from canary.api.status import Phase
from canary.engine.actions import EnsureCanary, ScaleDownCanary, SetWeight

pytestmark = pytest.mark.unit


def test_with_no_delay_the_canary_is_scaled_down_in_the_rollback_call() -> None:
    decision = decide(
        canary(rolling(2, 25), scale_down_delay_seconds=0), observe(request=ask("abort"))
    )
    assert decision.status.phase is Phase.ROLLED_BACK
    assert workload(decision) == [SetWeight(0), ScaleDownCanary()]
    assert decision.status.canary_scale_down_at is None


def test_the_scale_down_waits_for_its_moment_and_says_when_to_call_again() -> None:
    c = canary(rolling(2, 25), scale_down_delay_seconds=20)
    rolled_back = decide(c, observe(request=ask("abort")))
    assert rolled_back.status.canary_scale_down_at == ts(20)
    early = decide(canary(rolled_back.status, scale_down_delay_seconds=20), observe(), 12)
    assert workload(early) == []
    assert early.requeue_after == 8
    assert early.status.canary_scale_down_at == ts(20)
    due = decide(canary(early.status, scale_down_delay_seconds=20), observe(), 21)
    assert workload(due) == [ScaleDownCanary()]


def test_a_promotion_keeps_the_old_canary_pods_for_the_delay_too() -> None:
    promoting = rolling(5, 50, phase=Phase.PROMOTING, reason="Promoting")
    done = decide(canary(promoting), observe(stable_ready=True))
    assert done.status.phase is Phase.SUCCEEDED
    assert workload(done) == [SetWeight(0)]
    assert done.status.canary_scale_down_at == ts(30)


def test_a_new_release_during_the_delay_takes_the_canary_over_instead() -> None:
    rolled_back = settled(Phase.ROLLED_BACK, canary_revision="rev2", canary_scale_down_at=ts(30))
    decision = decide(canary(rolled_back), observe("rev3"), 5)
    assert decision.status.phase is Phase.PROGRESSING
    assert workload(decision) == [EnsureCanary("rev3")]
    assert decision.status.canary_scale_down_at is None


def test_an_invalid_spec_postpones_the_scale_down() -> None:
    # The finding may be that N-canary is not ours: nothing is touched until it is fixed.
    rolled_back = settled(Phase.ROLLED_BACK, canary_revision="rev2", canary_scale_down_at=ts(0))
    decision = decide(
        canary(rolled_back), observe(errors=("Service checkout-canary is not ours",)), 5
    )
    assert workload(decision) == []
    assert decision.status.canary_scale_down_at == ts(0)
