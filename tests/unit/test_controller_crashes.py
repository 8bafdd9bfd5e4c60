"""kill -9 at any API call, then a restart: the rollout still ends with the right outcome.

README ("The controller") and canary/controller/reconciler.py claim that all rollout state lives in
the Canary's status and every action is idempotent, so killing the controller at any
moment and starting it again resumes the rollout with the same outcome. This test checks
that claim by fault injection against an in-memory API server (fake_kube.FakeKube):

1. A clean run of one scenario counts the controller's mutating API calls (create,
   replace, scale, apply, status patch, HTTPRoute replace, Event) until the Canary
   reaches a terminal phase.
2. For every N from 1 to that count, the same scenario runs again with the process
   killed at call N, once before the call reaches the API server and once after it was
   applied (the answer lost). The killed Controller object is thrown away; a new one
   (the restarted process) continues against the same store, like etcd.
3. Every run must end like the clean one: same phase, revisions, N-primary template,
   canary scaled to 0, HTTPRoute weights; and the route must never have given the
   canary a weight the spec does not ask for, nor in another order. After every
   reconcile that completes, the route's canary weight must equal status.canaryWeight.
4. The same kills again, but the good canary turns bad while the controller is down, so
   the restarted process may decide differently from the killed one: whatever it
   decides, N-primary must run the revision the status calls stable, and a promotion
   the status recorded is never undone (a replayed decision alone would hide a
   half-applied one).

At the end, two tests cover the route/status divergence this approach once found (see
"route follows the status" below).

Scenario: Canary "shop" with gatewayAPI routing, steps [setWeight 10, pause 30s,
setWeight 50, pause 30s] and a background threshold metric. Revision v1 is initialized
as stable; once the status says Initialized the user changes the image to v2. The metric
provider is a stub: the good canary measures 0.001 (max 0.01), the bad one 0.2.
A fake clock advances 10 s per reconcile; before each reconcile the stand-in kubelet
marks every Deployment fully available at its latest generation.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from fake_kube import (
    GATEWAY,
    CrashMode,
    FakeKube,
    SimulatedCrash,
    canary_object,
    canary_weight,
    pod_template,
    user_deployment,
)

from canary.api import naming
from canary.controller import observe
from canary.controller.reconciler import Controller
from canary.controller.workloads import template_hash
from canary.engine.samples import MetricTask, ProviderFailure, Sample, ScalarSample
from canary.errors import TransientError
from canary.kube.client import Obj

NS, NAME, ROUTE = "default", "shop", "shop-route"
KEY = f"{NS}/{NAME}"
START = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(seconds=10)
MAX_TICKS = 80  # a clean run needs ~16
SETTLE_TICKS = 4  # reconciles after the terminal phase: nothing may change any more
TERMINAL = {"Succeeded", "RolledBack"}
SPEC_WEIGHTS = {0, 10, 50}  # 0 (all to stable) and the steps' setWeights

GOOD, BAD = "good", "bad"
MEASURED = {GOOD: 0.001, BAD: 0.2}  # error rate; the template allows at most 0.01


def _pod_template(image: str) -> Obj:
    return pod_template(NAME, image)


OLD_TEMPLATE, NEW_TEMPLATE = _pod_template("demo/shop:v1"), _pod_template("demo/shop:v2")
OLD_REV, NEW_REV = template_hash(OLD_TEMPLATE), template_hash(NEW_TEMPLATE)

CANARY = canary_object(
    NS,
    NAME,
    trafficRouting={"gatewayAPI": {"httpRoute": ROUTE}},
    steps=[
        {"setWeight": 10},
        {"pause": {"duration": "30s"}},
        {"setWeight": 50},
        {"pause": {"duration": "30s"}},
    ],
    analysis={"templates": [{"templateName": "error-rate"}]},
)

TEMPLATE: Obj = {
    "apiVersion": "canary.dev/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "error-rate", "namespace": NS},
    "spec": {
        "metrics": [
            {
                "name": "error-rate",
                "interval": "30s",
                "provider": {"prometheus": {"query": 'sum(rate(errors{app="shop"}[1m]))'}},
                "thresholdRange": {"max": 0.01},
            }
        ]
    },
}

USER_DEPLOYMENT = user_deployment(NS, NAME, 3, OLD_TEMPLATE)

# The user's route before the Canary existed: everything to the user's Service "shop".
HTTP_ROUTE: Obj = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": ROUTE, "namespace": NS},
    "spec": {
        "parentRefs": [{"name": "gateway"}],
        "rules": [{"backendRefs": [{"name": NAME, "port": 80}]}],
    },
}


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, by: dt.timedelta) -> None:
        self.now += by


class StubProvider:
    """A metrics backend whose error rate is fixed per scenario."""

    name = "stub"

    def __init__(self, value: float) -> None:
        self.value = value
        self.measured: list[str] = []

    def measure(self, task: MetricTask) -> Sample:
        self.measured.append(task.key)
        return ScalarSample(self.value)


def _world(canary: Obj = CANARY) -> FakeKube:
    kube = FakeKube()
    kube.seed_template(NS, TEMPLATE)
    kube.user_apply_deployment(NS, USER_DEPLOYMENT)
    kube.seed_route(HTTP_ROUTE)
    kube.seed_canary(canary)
    return kube


def _status(kube: FakeKube) -> dict[str, Any]:
    return kube.canaries.get((NS, NAME), {}).get("status") or {}


def _route_weight(kube: FakeKube) -> int | None:
    return canary_weight(kube.objects[(*GATEWAY, NS, ROUTE)], naming.canary_service(NAME))


class Harness:
    """The API server (FakeKube, survives kills), a fake clock, and the controller process."""

    def __init__(self, provider: Any, canary: Obj = CANARY) -> None:
        self.kube = _world(canary)
        self.clock = FakeClock(START)
        self.provider = provider
        self.restarts = 0
        self.transient: list[str] = []
        # After each reconcile that finished, the route must carry the weight the status
        # records: the engine decides its next router call from status.canaryWeight.
        self.lies: list[str] = []
        self.phase_at_kill: str | None = None  # the stored phase when the process died
        self.on_restart: Callable[[], None] = lambda: None  # the world moves on meanwhile
        self.ctl = self._start()

    def _start(self) -> Controller:  # a new process: nothing survives but the API server
        return Controller(self.kube, prometheus_url="http://prometheus.test:9090", clock=self.clock)

    def _provider_for(self, metric: Any, **_: Any) -> Any:
        return self.provider

    def tick(self) -> None:
        """The kubelet catches up, one reconcile (or a kill and a restart), 10 s pass."""
        self.kube.kubelet()
        try:
            with mock.patch.object(observe, "provider_for", self._provider_for):
                self.ctl.reconcile_key(KEY)
        except SimulatedCrash:
            self.restarts += 1
            self.phase_at_kill = _status(self.kube).get("phase")
            self.on_restart()
            self.ctl = self._start()
        except TransientError as exc:  # the worker retries these with backoff
            self.transient.append(str(exc))
        else:
            routed, recorded = _route_weight(self.kube), _status(self.kube).get("canaryWeight", 0)
            if routed is not None and routed != recorded:
                self.lies.append(
                    f"{self.clock.now:%H:%M:%S} route gives the canary {routed}%, "
                    f"status.canaryWeight says {recorded}% ({_status(self.kube).get('reason')})"
                )
        self.clock.advance(TICK)

    def until(self, done: Callable[[], bool], limit: int = MAX_TICKS) -> None:
        for _ in range(limit):
            if done():
                return
            self.tick()
        raise AssertionError(f"not reached in {limit} reconciles; status {_status(self.kube)}")

    def ship(self, template: Obj) -> None:
        self.kube.user_set_template(NS, NAME, template)  # kubectl set image ...


@dataclass
class Run:
    kube: FakeKube
    mutations: int | None = None  # mutating calls until the final state was stored
    restarts: int = 0
    transient: list[str] = field(default_factory=list)
    lies: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)  # stored phase after each tick, deduped
    phase_at_kill: str | None = None


def run_scenario(
    scenario: str,
    crash_at: int | None = None,
    crash_mode: CrashMode = "before",
    turns_bad_at_restart: bool = False,
    *,
    provider: Any = None,
    canary: Obj = CANARY,
) -> Run:
    """`provider` and `canary` replace the scenario's stub and the Canary (another module's
    scenarios, e.g. test_controller_crashes_bake.py)."""
    provider = provider or StubProvider(MEASURED[scenario])
    world = Harness(provider, canary)
    if turns_bad_at_restart:
        world.on_restart = lambda: setattr(provider, "value", MEASURED[BAD])
    kube = world.kube
    kube.crash_at, kube.crash_mode = crash_at, crash_mode
    out = Run(kube)
    changed = False
    settle = SETTLE_TICKS
    for _ in range(MAX_TICKS):
        if not changed and _status(kube).get("reason") == "Initialized":
            world.ship(NEW_TEMPLATE)  # v1 serves as stable: the user ships v2
            changed = True
        world.tick()
        phase = _status(kube).get("phase", "")
        if phase and (not out.phases or out.phases[-1] != phase):
            out.phases.append(phase)
        # Terminal, and N-canary scaled down after its delay (spec.scaleDownDelaySeconds).
        if out.mutations is None and phase in TERMINAL and "canaryScaleDownAt" not in _status(kube):
            out.mutations = len(kube.calls)
        if out.mutations is not None:
            settle -= 1
            if settle == 0:
                break
    out.restarts, out.transient, out.lies = world.restarts, world.transient, world.lies
    out.phase_at_kill = world.phase_at_kill
    return out


@functools.cache
def clean(scenario: str) -> Run:
    return run_scenario(scenario)


def outcome(kube: FakeKube) -> dict[str, Any]:
    status = _status(kube)
    primary = kube.deployments.get((NS, naming.primary(NAME))) or {}
    can = kube.deployments.get((NS, naming.canary_deployment(NAME))) or {}
    route = kube.objects[(*GATEWAY, NS, ROUTE)]
    containers = primary.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    return {
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "stableRevision": status.get("stableRevision"),
        "canaryRevision": status.get("canaryRevision"),
        "canaryWeight": status.get("canaryWeight"),
        "currentStepIndex": status.get("currentStepIndex"),
        "primary revision": primary.get("metadata", {})
        .get("annotations", {})
        .get(naming.ANNOTATION_REVISION),
        "primary image": containers[0]["image"] if containers else None,
        "primary replicas": primary.get("spec", {}).get("replicas"),
        "canary replicas": can.get("spec", {}).get("replicas"),
        "route": route["spec"]["rules"],
        "user Deployment replicas": kube.deployments[(NS, NAME)]["spec"]["replicas"],
    }


def weight_history(kube: FakeKube) -> list[int]:
    """The canary's weight after each HTTPRoute write, repeats collapsed."""
    out: list[int] = []
    for route in kube.route_writes:
        weight = canary_weight(route, naming.canary_service(NAME))
        assert weight is not None, f"a route write lost the canary backendRef: {route}"
        if not out or out[-1] != weight:
            out.append(weight)
    return out


def _is_subsequence(short: list[Any], long: list[Any]) -> bool:
    it: Iterator[Any] = iter(long)
    return all(item in it for item in short)


EXPECTED = {
    GOOD: {
        "phase": "Succeeded",
        "stableRevision": NEW_REV,
        "canaryRevision": NEW_REV,
        "primary revision": NEW_REV,
        "primary image": "demo/shop:v2",
        "weights": [0, 10, 50, 0],
    },
    BAD: {
        "phase": "RolledBack",
        "stableRevision": OLD_REV,
        "canaryRevision": NEW_REV,
        "primary revision": OLD_REV,
        "primary image": "demo/shop:v1",
        "weights": [0, 10, 0],
    },
}
STABLE_ONLY = [
    {
        "backendRefs": [
            {"name": naming.stable_service(NAME), "port": 80, "weight": 100},
            {"name": naming.canary_service(NAME), "port": 80, "weight": 0},
        ]
    }
]


@pytest.mark.parametrize("scenario", [GOOD, BAD])
def test_clean_run_reaches_the_expected_outcome(scenario: str) -> None:
    run = clean(scenario)
    want = EXPECTED[scenario]
    got = outcome(run.kube)
    assert run.mutations is not None, f"no terminal phase; phases {run.phases}"
    assert run.restarts == 0 and run.transient == [] and run.lies == []
    assert {k: got[k] for k in want if k != "weights"} == {
        k: v for k, v in want.items() if k != "weights"
    }
    assert got["route"] == STABLE_ONLY
    assert got["canary replicas"] == 0
    assert got["primary replicas"] == 3
    assert got["user Deployment replicas"] == 0  # handed off to N-primary
    assert weight_history(run.kube) == want["weights"]
    assert [r for _, r, _ in run.kube.events if r == "ReconcileError"] == []
    # Settled: the reconciles after the terminal phase wrote nothing.
    assert len(run.kube.calls) == run.mutations


def _crash_points() -> Iterator[Any]:
    for scenario in (GOOD, BAD):
        total = clean(scenario).mutations or 0
        for mode in ("before", "after"):
            for n in range(1, total + 1):
                yield pytest.param(scenario, mode, n, id=f"{scenario}-kill-{mode}-call-{n:02d}")


@pytest.mark.parametrize(("scenario", "mode", "crash_at"), list(_crash_points()))
def test_kill_at_any_call_then_restart_gives_the_clean_outcome(
    scenario: str, mode: CrashMode, crash_at: int
) -> None:
    reference = clean(scenario)
    run = run_scenario(scenario, crash_at=crash_at, crash_mode=mode)
    killed_at = run.kube.calls[crash_at - 1]
    where = f"killed {mode} call #{crash_at} ({killed_at.verb} {killed_at.target})"

    assert run.restarts == 1, where
    assert run.mutations is not None, f"{where}: no terminal phase; phases {run.phases}"
    assert run.transient == [], where
    assert run.lies == [], f"{where}: {run.lies}"
    assert outcome(run.kube) == outcome(reference.kube), where
    assert outcome(run.kube)["route"] == STABLE_ONLY, where
    assert outcome(run.kube)["canary replicas"] == 0, where

    # Traffic only ever took the weights the spec asks for, in the clean run's order.
    weights = weight_history(run.kube)
    assert set(weights) <= SPEC_WEIGHTS, f"{where}: route weights {weights}"
    assert weights == weight_history(reference.kube), where
    assert run.phases == reference.phases, where

    # Events are at-most-once: a kill may lose one, never repeat or invent one.
    reasons = [(t, r) for t, r, _ in run.kube.events]
    clean_reasons = [(t, r) for t, r, _ in reference.kube.events]
    assert _is_subsequence(reasons, clean_reasons), f"{where}: {reasons} vs {clean_reasons}"


def _good_crash_points() -> Iterator[Any]:
    total = clean(GOOD).mutations or 0
    for mode in ("before", "after"):
        for n in range(1, total + 1):
            yield pytest.param(mode, n, id=f"kill-{mode}-call-{n:02d}")


@pytest.mark.parametrize(("mode", "crash_at"), list(_good_crash_points()))
def test_kill_then_the_canary_turns_bad_while_down(mode: CrashMode, crash_at: int) -> None:
    """The world does not wait for a restart: from the kill on, the good canary measures
    bad, so the restarted process may decide differently from the killed one. A kill must
    not have left anything half-done that the new decision then trusts (e.g. N-primary
    already running the canary's template while the status still calls the old revision
    stable). Either outcome can be right (a rollout whose steps are done promotes unless
    a measurement falls due first), but a promotion the status already recorded is never
    undone, and N-primary always runs the revision the status calls stable.
    """
    run = run_scenario(GOOD, crash_at=crash_at, crash_mode=mode, turns_bad_at_restart=True)
    killed_at = run.kube.calls[crash_at - 1]
    where = (
        f"killed {mode} call #{crash_at} ({killed_at.verb} {killed_at.target}) "
        f"with phase {run.phase_at_kill} stored"
    )
    got = outcome(run.kube)

    assert run.restarts == 1, where
    assert run.mutations is not None, f"{where}: no terminal phase; phases {run.phases}"
    assert run.transient == [], where
    assert run.lies == [], f"{where}: {run.lies}"
    if run.phase_at_kill in ("Promoting", "Succeeded"):
        assert got["phase"] == "Succeeded", where
    promoted = got["phase"] == "Succeeded"
    stable = NEW_REV if promoted else OLD_REV
    assert (got["stableRevision"], got["primary revision"]) == (stable, stable), where
    assert got["primary image"] == ("demo/shop:v2" if promoted else "demo/shop:v1"), where
    assert got["route"] == STABLE_ONLY, where
    assert got["canary replicas"] == 0, where
    assert set(weight_history(run.kube)) <= SPEC_WEIGHTS, where
    if not promoted:
        assert got["reason"] == "AnalysisFailed", where


# ---------------------------------------------------------------- route follows the status
#
# The engine decides whether a router call is needed from status.canaryWeight, and the
# controller applies actions before it writes the status. A kill between an applied
# SetWeight(w) and the status write leaves the route at w with the status at its old
# weight; if the world then changes during the downtime, the next decision need not
# repeat SetWeight(w). The controller therefore converges the route to the weight the
# status records on every reconcile (Controller._converge_route). These two tests are
# the paths on which fault injection first found the divergence.


def route_follows_status(ok: bool, message: str) -> None:
    assert ok, message


def _route_write(call: Any) -> bool:
    return call.verb == "replace" and call.target.startswith("httproutes.")


def test_kill_after_route_write_then_new_revision_outside_the_deploy_window() -> None:
    canary = copy.deepcopy(CANARY)
    canary["spec"]["deployWindow"] = {"days": ["Mon"], "start": "09:00", "end": "10:02"}
    world = Harness(StubProvider(MEASURED[GOOD]), canary)
    kube = world.kube
    world.until(lambda: _status(kube).get("reason") == "Initialized")
    world.ship(NEW_TEMPLATE)
    world.until(lambda: _status(kube).get("reason") == "RolloutStarted")
    kube.crash_when, kube.crash_mode = _route_write, "after"  # step 1: setWeight 10
    world.tick()
    assert world.restarts == 1
    assert (_route_weight(kube), _status(kube)["canaryWeight"]) == (10, 0)

    world.clock.advance(dt.timedelta(minutes=5))  # the restart takes a while (backoff) ...
    world.ship(_pod_template("demo/shop:v3"))  # ... meanwhile the user ships v3, after 10:02
    for _ in range(5):  # 50 s: past the canary's 30 s scale-down delay
        world.tick()
    status = _status(kube)
    assert (status["phase"], status["canaryWeight"]) == ("Waiting", 0)
    assert kube.deployments[(NS, naming.canary_deployment(NAME))]["spec"]["replicas"] == 0
    # Without the kill the route is back at 0 here. With it, 10% of requests go to the
    # canary Service, which has no pods, until the window opens (next Monday 09:00).
    route_follows_status(
        _route_weight(kube) == 0,
        f"Waiting with the canary scaled to 0, but the route sends it {_route_weight(kube)}%",
    )


class FlakyProvider:
    name = "flaky"

    def __init__(self) -> None:
        self.up = True

    def measure(self, task: MetricTask) -> Sample:
        if self.up:
            return ScalarSample(MEASURED[GOOD])
        return ProviderFailure("http://prometheus.test:9090: connection refused")


def test_kill_after_route_write_defeats_the_metrics_fail_safe() -> None:
    provider = FlakyProvider()
    world = Harness(provider)
    kube = world.kube
    world.until(lambda: _status(kube).get("reason") == "Initialized")
    world.ship(NEW_TEMPLATE)
    world.until(lambda: _status(kube).get("currentStepIndex") == 1)  # at 10%, pausing
    provider.up = False
    world.until(lambda: _status(kube).get("reason") == "MetricsUnavailable")
    assert (_route_weight(kube), _status(kube)["canaryWeight"]) == (0, 0)  # fail-safe on

    provider.up = True  # one answer: leave_pause restores 10% and is killed right after
    kube.crash_when, kube.crash_mode = _route_write, "after"
    world.until(lambda: world.restarts == 1)
    assert (_route_weight(kube), _status(kube)["reason"]) == (10, "MetricsUnavailable")

    provider.up = False  # Prometheus is down again when the controller comes back
    for _ in range(12):  # 2 minutes
        world.tick()
    status = _status(kube)
    assert (status["phase"], status["reason"], status["canaryWeight"]) == (
        "Paused",
        "MetricsUnavailable",
        0,
    )
    # The fail-safe promises stable-only traffic while metrics are unavailable; here the
    # canary keeps 10% unmeasured until progressDeadlineSeconds (10 min) rolls it back.
    route_follows_status(
        _route_weight(kube) == 0,
        f"paused for missing metrics, yet the route sends the canary {_route_weight(kube)}%",
    )


# ---------------------------------------------------------------- deleting the Canary


def delete_mid_rollout(
    crash_at: int | None = None, mode: CrashMode = "before"
) -> tuple[Harness, int]:
    """Delete the Canary at 10% canary; `crash_at` counts the calls from the deletion.
    Returns the world and the number of calls made before the deletion."""
    world = Harness(StubProvider(MEASURED[GOOD]))
    kube = world.kube
    world.until(lambda: _status(kube).get("reason") == "Initialized")
    world.ship(NEW_TEMPLATE)
    world.until(lambda: _status(kube).get("canaryWeight") == 10)
    kube.user_delete_canary(NS, NAME)
    deleted_at = len(kube.calls)
    if crash_at is not None:
        kube.crash_at, kube.crash_mode = deleted_at + crash_at, mode
    world.until(lambda: (NS, NAME) not in kube.canaries, limit=20)
    return world, deleted_at


def _handback_calls() -> int:
    world, deleted_at = delete_mid_rollout()
    return len(world.kube.calls) - deleted_at


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("crash_at", [None, *range(1, _handback_calls() + 1)])
def test_deleting_mid_rollout_hands_the_app_back_even_through_a_kill(
    crash_at: int | None, mode: CrashMode
) -> None:
    world, deleted_at = delete_mid_rollout(crash_at, mode)
    kube = world.kube
    assert world.restarts == (crash_at is not None)
    user = kube.deployments[(NS, NAME)]
    assert user["spec"]["replicas"] == USER_DEPLOYMENT["spec"]["replicas"]
    assert "canary.dev/replicas-before-handoff" not in user["metadata"].get("annotations", {})
    route = kube.objects[(*GATEWAY, NS, ROUTE)]
    assert route["spec"] == HTTP_ROUTE["spec"]
    assert "canary.dev/original-backend-refs" not in route["metadata"].get("annotations", {})
    # The route went back only once the user's Deployment was scaled up and available.
    calls = kube.calls[deleted_at:]
    scaled = min(i for i, c in enumerate(calls) if c.target == f"Deployment {NS}/{NAME}")
    routed_back = min(i for i, c in enumerate(calls) if c.target.startswith("httproutes."))
    assert scaled < routed_back
