"""kill -9 at any API call during a rollout with a bake, then a restart: the same outcome.

The harness and its checks are test_controller_crashes.py's; this module runs them on
the Canary with `bake: {duration: 30s, holdback: 5}`: once with a release that stays
good through the bake (promoted after it), once with one that turns bad in the bake
(the stub measures 0.2 for tasks of the bake: rolled back, reason BakeFailed). The route
may only ever carry 0, the steps' weights and 95 (the bake), in the clean run's order,
and N-primary must keep the previous revision until the bake ends cleanly.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import pytest
from fake_kube import CrashMode
from test_controller_crashes import (
    CANARY,
    MEASURED,
    NEW_REV,
    OLD_REV,
    STABLE_ONLY,
    Run,
    outcome,
    run_scenario,
    weight_history,
)

from canary.engine.samples import MetricTask, Sample, ScalarSample

pytestmark = pytest.mark.unit

BAKE_CANARY = copy.deepcopy(CANARY)
BAKE_CANARY["spec"]["bake"] = {"duration": "30s", "holdback": 5}
BAKED, BAKE_FAILS = "baked", "bake-fails"
WEIGHTS = [0, 10, 50, 95, 0]


class BakeStub:
    """Good during the rollout; in the bake, good or bad as the scenario says."""

    name = "stub"

    def __init__(self, in_bake: float) -> None:
        self.in_bake = in_bake

    def measure(self, task: MetricTask) -> Sample:
        return ScalarSample(self.in_bake if task.bake else MEASURED["good"])


def run(scenario: str, crash_at: int | None = None, mode: CrashMode = "before") -> Run:
    in_bake = MEASURED["good"] if scenario == BAKED else MEASURED["bad"]
    provider = BakeStub(in_bake)
    return run_scenario("good", crash_at, mode, provider=provider, canary=BAKE_CANARY)


@functools.cache
def clean(scenario: str) -> Run:
    return run(scenario)


EXPECTED = {
    BAKED: {"phase": "Succeeded", "reason": "Promoted", "primary revision": NEW_REV},
    BAKE_FAILS: {"phase": "RolledBack", "reason": "BakeFailed", "primary revision": OLD_REV},
}


@pytest.mark.parametrize("scenario", [BAKED, BAKE_FAILS])
def test_clean_run_bakes_then_promotes_or_goes_back(scenario: str) -> None:
    reference = clean(scenario)
    assert reference.mutations is not None, f"no terminal phase; phases {reference.phases}"
    assert "Baking" in reference.phases
    got = outcome(reference.kube)
    assert {k: got[k] for k in EXPECTED[scenario]} == EXPECTED[scenario]
    assert got["route"] == STABLE_ONLY and got["canary replicas"] == 0
    assert weight_history(reference.kube) == WEIGHTS


def _crash_points() -> Iterator[Any]:
    for scenario in (BAKED, BAKE_FAILS):
        total = clean(scenario).mutations or 0
        for mode in ("before", "after"):
            for n in range(1, total + 1):
                yield pytest.param(scenario, mode, n, id=f"{scenario}-kill-{mode}-call-{n:02d}")


@pytest.mark.parametrize(("scenario", "mode", "crash_at"), list(_crash_points()))
def test_kill_at_any_call_during_a_baked_rollout_gives_the_clean_outcome(
    scenario: str, mode: CrashMode, crash_at: int
) -> None:
    reference = clean(scenario)
    result = run(scenario, crash_at, mode)
    killed_at = result.kube.calls[crash_at - 1]
    where = f"killed {mode} call #{crash_at} ({killed_at.verb} {killed_at.target})"
    assert result.restarts == 1, where
    assert result.mutations is not None, f"{where}: no terminal phase; phases {result.phases}"
    assert result.transient == [] and result.lies == [], f"{where}: {result.lies}"
    assert outcome(result.kube) == outcome(reference.kube), where
    assert weight_history(result.kube) == WEIGHTS, where
    assert result.phases == reference.phases, where
