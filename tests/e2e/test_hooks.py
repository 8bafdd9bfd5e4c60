"""Around the rollout, as users run it: a bake that rolls back a regression starting after
the promotion gate, a confirm-promotion webhook holding a good release until a human says
yes, and notifications sent exactly once while the leader changes."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.sandbox import chaos, demo
from canary.sandbox.demo import NS, DemoEnv
from canary.sandbox.webhook_receiver import WebhookReceiver


@pytest.fixture
def env(tmp_path: Path) -> Iterator[DemoEnv]:
    with demo.environment(tmp_path, print, rps=20, interval="5s", step_pause="20s") as e:
        demo.wait_initialized(e, print)
        yield e


def status(env: DemoEnv) -> dict[str, Any]:
    return env.kube.get_canary(NS, "checkout").get("status") or {}


def wait_for(env: DemoEnv, done: Callable[[dict[str, Any]], bool], timeout: float,
             what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(current := status(env)):
            return current
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout}s; status: {status(env)}")


def patch_canary(env: DemoEnv, spec: dict[str, Any]) -> None:
    demo.kubectl(env.kubeconfig, "patch", "canary", "checkout", "-n", NS, "--type=merge",
                 "-p", json.dumps({"spec": spec}))


def test_a_bake_rolls_back_a_regression_that_starts_after_the_promotion_gate(
    env: DemoEnv, tmp_path: Path
) -> None:
    patch_canary(env, {"bake": {"duration": "10m", "holdback": 20}})
    stable = status(env)["stableRevision"]
    incident = tmp_path / "cache-full"  # the app fails 30% of requests once this exists
    revision = demo.release(env, "v2", 0.3, errors_when_file=incident)
    baking = wait_for(env, lambda s: s.get("canaryRevision") == revision
                      and s.get("phase") == "Baking", 300, "the good-so-far release never baked")
    assert baking["canaryWeight"] == 80
    incident.touch()
    before = env.loadgen.stats()
    back = wait_for(env, lambda s: s.get("phase") == "RolledBack", 180,
                    "the regression in the bake was never rolled back")
    assert (back["reason"], back["stableRevision"]) == ("BakeFailed", stable), back
    route = env.kube.get_object("gateway.networking.k8s.io", "v1", "httproutes", NS, "checkout")
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"checkout-stable": 100, "checkout-canary": 0}
    harmed = env.loadgen.stats()["canary"].errors - before["canary"].errors
    print(f"bake: rolled back {back['message']!r}; {harmed} requests failed on the way")


def test_a_confirm_promotion_webhook_holds_a_good_release_then_lets_it_go(env: DemoEnv) -> None:
    with WebhookReceiver(status=423) as gate:  # 423 Locked: the release manager says wait
        patch_canary(env, {
            "analysis": {"interval": "5s"},
            "webhooks": [{"name": "release-manager", "type": "confirm-promotion",
                          "url": gate.url("/approve")}],
        })
        revision = demo.release(env, "v2", 0.0)
        held = wait_for(
            env, lambda s: s.get("canaryRevision") == revision
            and s.get("reason") == "WaitingForConfirmation", 300,
            "the earned promotion never waited for the webhook")
        assert held["phase"] == "Progressing", held
        time.sleep(12)  # two more intervals: still held, asked again each time
        still = status(env)
        assert (still["phase"], still["reason"]) == ("Progressing", "WaitingForConfirmation")
        asked = [r.body for r in gate.received]
        assert len(asked) >= 2, asked
        assert {(b["type"], b["canaryRevision"]) for b in asked} == {
            ("confirm-promotion", revision)}

        gate.status = 200  # approved
        done = wait_for(env, lambda s: s.get("phase") == "Succeeded", 120,
                        "the approved release was never promoted")
        assert done["stableRevision"] == revision
        answers = len(gate.received)
        time.sleep(6)
        assert len(gate.received) == answers  # a confirmation is not asked for again


def test_notifications_arrive_exactly_once_across_a_leader_change(env: DemoEnv) -> None:
    with WebhookReceiver() as sink:
        config = {"sinks": [{"name": "audit", "type": "cloudevents",
                             "urlSecret": {"name": "canary-notifications", "key": "audit"}}],
                  "routes": [{"sinks": ["audit"]}]}
        objects = [
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "canary-notifications", "namespace": "canary-system"},
             "stringData": {"audit": sink.url("/events")}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "canary-notifications", "namespace": "canary-system"},
             "data": {"config.yaml": yaml.safe_dump(config)}},
        ]
        demo.kubectl(env.kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(objects))
        replicas = chaos.Replicas(env).start()
        try:
            revision = demo.release(env, "v2", 0.0)
            wait_for(env, lambda s: s.get("canaryRevision") == revision
                     and s.get("canaryWeight", 0) > 0, 180, "the rollout never went live")
            leader = replicas.leader()
            assert leader is not None
            replicas.held.add(leader)  # the standby must take over before it comes back
            chaos._kill(replicas.procs[leader])
            assert chaos._wait("a new leader",
                               lambda: replicas.leader() not in (None, leader), 60)
            replicas.held.discard(leader)
            wait_for(env, lambda s: s.get("phase") == "Succeeded"
                     and s.get("stableRevision") == revision, 300,
                     "the release was never promoted")
            time.sleep(5)  # anything still queued has been sent by now
        finally:
            replicas.stop()
        events = [r.body for r in sink.received]
        ids = Counter(e["id"] for e in events)
        assert all(n == 1 for n in ids.values()), ids
        kinds = Counter(e["type"] for e in events)
        assert kinds["dev.canary.rollout.rolloutStarted"] == 1, kinds
        assert kinds["dev.canary.rollout.promoted"] == 1, kinds
