"""Decision.requeue_after: the soonest moment the engine has something to do."""

from __future__ import annotations

import pytest
from engine_support import (
    BACKGROUND,
    BERLIN_OFFICE,
    canary,
    decide,
    measured,
    observe,
    rolling,
    settled,
    ts,
)

from canary.api.canary import Canary
from canary.api.status import CanaryStatus, Phase
from canary.engine.actions import Observations

pytestmark = pytest.mark.unit

STEP1 = "step-1/error-rate"
BG = "background/latency"

CASES: list[tuple[str, Canary, Observations, float, float | None]] = [
    ("settled", canary(settled()), observe("rev1"), 0, None),
    ("rolled back", canary(settled(Phase.ROLLED_BACK, canary_revision="rev2")), observe(), 0, None),
    (
        "waiting: until the window opens",
        canary(settled(Phase.WAITING, canary_revision="rev2"), deploy_window=BERLIN_OFFICE),
        observe(),
        7 * 3600,  # Monday 19:00 Berlin; opens Tuesday 09:00
        14 * 3600,
    ),
    ("a new step: right away", canary(rolling(0, 0)), observe(), 0, 0),
    ("waiting for readiness: poll", canary(rolling(0, 0)), observe(canary_ready=False), 0, 5),
    (
        "waiting for readiness: the deadline comes first",
        canary(rolling(0, 0, step_started_at=ts(-598))),
        observe(canary_ready=False),
        0,
        2,
    ),
    ("timed pause: its end", canary(rolling(3, 50)), observe(), 0, 60),
    (
        "analysis: the next measurement",
        canary(rolling(1, 10, analysis=[measured(STEP1, 10, measurements=0)])),
        observe(),
        0,
        20,
    ),
    ("analysis: never measured", canary(rolling(1, 10)), observe(), 0, 0),
    (
        "paused at a step without background analysis",
        canary(rolling(4, 50, phase=Phase.PAUSED, reason="PausedAtStep", paused_at=ts(-1))),
        observe(),
        0,
        None,
    ),
    (
        "paused at a step: background keeps measuring",
        canary(
            rolling(
                4,
                50,
                phase=Phase.PAUSED,
                reason="PausedAtStep",
                paused_at=ts(-1),
                analysis=[measured(BG, 10)],
            ),
            analysis=BACKGROUND,
        ),
        observe(),
        0,
        50,
    ),
    (
        "metrics unavailable: the deadline",
        canary(
            rolling(
                3,
                0,
                phase=Phase.PAUSED,
                reason="MetricsUnavailable",
                paused_at=ts(-590),
                metrics_unavailable_intervals=4,
                analysis=[measured(BG, 10)],
            ),
            analysis=BACKGROUND,
        ),
        observe(),
        0,
        10,
    ),
    (
        "a timed pause held while metrics are unavailable: the next measurement, not a loop",
        canary(
            rolling(
                3,
                50,
                step_started_at=ts(-130),  # its 2m are over
                metrics_unavailable_intervals=1,
                analysis=[measured(BG, 10)],
            ),
            analysis=BACKGROUND,
        ),
        observe(),
        0,
        50,
    ),
    (
        "promoting: poll",
        canary(rolling(5, 50, phase=Phase.PROMOTING)),
        observe(stable_ready=False),
        0,
        5,
    ),
    ("promotion recorded: apply it right away", canary(rolling(5, 50)), observe(), 0, 0),
    (
        "promoting past the deadline: keep polling, never a hot loop",
        canary(rolling(5, 50, phase=Phase.PROMOTING, step_started_at=ts(-900))),
        observe(stable_ready=False),
        0,
        5,
    ),
    ("first sight: poll for N-primary", canary(), observe("rev1", stable_ready=False), 0, 5),
    (
        "initializing: poll for N-primary",
        canary(CanaryStatus(reason="Initializing", stable_revision="rev1")),
        observe("rev1", stable_ready=False),
        0,
        5,
    ),
    (
        "initialized: settled",
        canary(CanaryStatus(reason="Initializing", stable_revision="rev1")),
        observe("rev1"),
        0,
        None,
    ),
    ("first sight without a Deployment: a watch event", canary(), observe(None), 0, None),
    (
        "initializing with an invalid spec: recheck",
        canary(CanaryStatus(reason="Initializing", stable_revision="rev1")),
        observe("rev1", errors=("x: y (z)",)),
        0,
        60,
    ),
    ("invalid mid-rollout: recheck", canary(rolling(2, 10)), observe(errors=("x: y (z)",)), 0, 60),
    ("invalid while settled", canary(settled()), observe("rev1", errors=("x: y (z)",)), 0, None),
]


@pytest.mark.parametrize(
    ("c", "o", "seconds", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_requeue_after(c: Canary, o: Observations, seconds: float, expected: float | None) -> None:
    assert decide(c, o, seconds).requeue_after == expected
