"""Exactly one message per transition: the outbox in the status, through the reconciler
(against fake_kube.FakeKube), restarts included; and the outbox's own rules."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from fake_kube import FakeKube

from canary.api import naming
from canary.api.request_codec import encode, new_request
from canary.api.status import CanaryStatus, DeliveryState, NotificationRecord, Phase, SinkDelivery
from canary.controller.notifications import Notifier
from canary.controller.reconciler import Controller
from canary.engine.actions import Decision, EmitEvent
from canary.kube.port import Obj
from canary.notify.base import Trigger
from canary.notify.config import CONFIG_KEY
from canary.notify.outbox import MAX_RECORDS, announced, mark, stamp, trigger_of

pytestmark = pytest.mark.unit

NS, NAME, HOME = "shop", "checkout", "canary-system"
START = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)
CONFIG = """
sinks:
  - {name: chat, type: slack, urlSecret: {name: hooks, key: chat}}
  - {name: audit, type: cloudevents, urlSecret: {name: hooks, key: audit}}
routes:
  - sinks: [chat, audit]
"""


def _template(image: str) -> Obj:
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


class World:
    """The API server, one receiver per sink (httpx.MockTransport) and a clock."""

    def __init__(self) -> None:
        self.kube = FakeKube()
        self.posts: list[tuple[str, dict]] = []
        self.now = START
        self.kube.seed_config_map(HOME, "canary-notifications", {CONFIG_KEY: CONFIG})
        self.kube.seed_secret(
            HOME,
            "hooks",
            {"chat": "https://chat.example/hook", "audit": "https://audit.example/events"},
        )
        self.kube.user_apply_deployment(
            NS,
            {
                "metadata": {"name": NAME},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": NAME}},
                    "template": _template("shop:v1"),
                },
            },
        )
        self.kube.seed_canary(
            {
                "apiVersion": "canary.dev/v1alpha1",
                "kind": "Canary",
                "metadata": {"name": NAME, "namespace": NS},
                "spec": {
                    "targetRef": {"name": NAME},
                    "service": {"port": 80},
                    "steps": [{"setWeight": 50}, {"pause": {}}],
                },
            }
        )
        self.start()

    def start(self) -> None:
        """A (re)started controller process: nothing in memory survives."""
        self.notifier = Notifier(self.kube, HOME, transport=httpx.MockTransport(self._receive))
        self.ctl = Controller(self.kube, clock=lambda: self.now, notifier=self.notifier)

    def _receive(self, request: httpx.Request) -> httpx.Response:
        self.posts.append((request.url.host, json.loads(request.content)))
        return httpx.Response(200)

    def reconcile(self, times: int = 1) -> None:
        for _ in range(times):
            self.kube.kubelet()
            self.ctl.reconcile(self.kube.get_canary(NS, NAME))
            self.now += dt.timedelta(seconds=10)

    def status(self) -> CanaryStatus:
        return CanaryStatus.model_validate(self.kube.get_canary(NS, NAME)["status"])

    def triggers(self) -> list[str]:
        return [
            body["type"].rsplit(".", 1)[1] for host, body in self.posts if host.startswith("audit")
        ]


def test_a_rollout_sends_one_message_per_transition_and_sink_even_across_restarts() -> None:
    world = World()
    world.reconcile(3)  # onboarding: stable takes over, nothing to announce
    world.kube.user_set_template(NS, NAME, _template("shop:v2"))
    world.reconcile(4)  # RolloutStarted, WeightSet (stepAdvanced: not routed), PausedAtStep
    assert world.status().phase is Phase.PAUSED
    assert [r.trigger for r in world.status().notifications] == ["rolloutStarted", "paused"]
    assert world.posts == []  # sent by the dispatcher, never by the reconcile
    assert world.notifier.dispatcher.run_due() == 4
    assert world.triggers() == ["rolloutStarted", "paused"]
    assert sorted(host for host, _ in world.posts) == ["audit.example"] * 2 + ["chat.example"] * 2
    assert all(
        s.state is DeliveryState.SENT and s.attempts == 1
        for r in world.status().notifications
        for s in r.sinks
    )

    world.reconcile(3)
    world.notifier.dispatcher.run_due()
    world.start()  # a restart, or another replica becoming leader
    world.reconcile(2)
    world.notifier.dispatcher.run_due()
    assert len(world.posts) == 4

    # The decision to roll back is recorded, then the process dies before sending it.
    request = new_request("abort", "ops@example.com", world.now)
    world.kube.canaries[(NS, NAME)]["metadata"]["annotations"] = {
        naming.ANNOTATION_REQUEST: encode(request)
    }
    world.reconcile()
    assert world.status().phase is Phase.ROLLED_BACK
    world.start()
    world.reconcile(2)
    assert world.notifier.dispatcher.run_due() == 2
    assert world.triggers() == ["rolloutStarted", "paused", "rolledBack"]
    rolled_back = world.posts[-1][1]["data"]
    assert rolled_back["reason"] == "Aborted" and "ops@example.com" in rolled_back["message"]
    world.reconcile(2)
    assert world.notifier.dispatcher.run_due() == 0


def test_without_a_configmap_nothing_is_recorded_and_a_broken_one_is_told_once() -> None:
    world = World()
    del world.kube.config_maps[(HOME, "canary-notifications")]
    world.reconcile(3)
    world.kube.user_set_template(NS, NAME, _template("shop:v2"))
    world.reconcile(4)
    assert world.status().notifications == []
    world.kube.seed_config_map(HOME, "canary-notifications", {CONFIG_KEY: "sinks: ["})
    world.start()
    world.kube.user_set_template(NS, NAME, _template("shop:v3"))  # another rollout starts
    world.reconcile(4)
    told = [e for e in world.kube.events if e[1] == "NotificationsMisconfigured"]
    assert len(told) == 1 and "is not YAML" in told[0][2]
    assert world.status().notifications == []


# ------------------------------------------------------------------ the outbox's rules


def _record(i: int, state: DeliveryState) -> NotificationRecord:
    return NotificationRecord(
        id=f"n{i}",
        trigger="paused",
        reason="PausedAtStep",
        phase=Phase.PAUSED,
        time="2024-05-06T10:00:00Z",
        sinks=[SinkDelivery(name="chat", state=state)],
    )


def test_the_outbox_keeps_the_newest_and_drops_delivered_entries_first() -> None:
    old = [_record(0, DeliveryState.PENDING)] + [
        _record(i, DeliveryState.SENT) for i in range(1, MAX_RECORDS)
    ]
    status = stamp(CanaryStatus(notifications=old), [_record(99, DeliveryState.PENDING)])
    ids = [r.id for r in status.notifications]
    assert len(ids) == MAX_RECORDS and ids[0] == "n0" and ids[-1] == "n99" and "n1" not in ids
    assert stamp(status, []) is status


def test_mark_settles_a_pending_delivery_once() -> None:
    records = [_record(1, DeliveryState.PENDING)]
    settled = mark(records, "n1", "chat", DeliveryState.SENT, 2)
    assert settled is not None and settled[0].sinks[0].state is DeliveryState.SENT
    assert settled[0].sinks[0].attempts == 2
    assert mark(settled, "n1", "chat", DeliveryState.FAILED, 3, "late") is None
    assert mark(records, "gone", "chat", DeliveryState.SENT, 1) is None


def test_only_transitions_are_announced_with_stable_distinct_ids() -> None:
    paused = CanaryStatus(phase=Phase.PAUSED, reason="PausedAtStep", canary_revision="r2")
    # Metrics lost during a pause that keeps its own reason: an event, not a transition.
    assert trigger_of(EmitEvent("Warning", "MetricsUnavailable", "x"), paused) is None
    assert trigger_of(EmitEvent("Normal", "PausedAtStep", "x"), paused) is Trigger.PAUSED
    assert trigger_of(EmitEvent("Normal", "WeightSet", "x"), paused) is Trigger.STEP_ADVANCED
    decision = Decision(paused, (EmitEvent("Normal", "PausedAtStep", "paused at 2/3"),), None)
    [(trigger, first)] = announced("uid-1", decision, START)
    assert (
        trigger is Trigger.PAUSED
        and first.revision == "r2"
        and first.time == "2024-05-06T10:00:00Z"
    )
    assert announced("uid-1", decision, START)[0][1].id == first.id
    later = announced("uid-1", decision, START + dt.timedelta(microseconds=1))
    assert later[0][1].id != first.id
    after = Decision(paused.model_copy(update={"notifications": [first]}), decision.actions, None)
    assert announced("uid-1", after, START)[0][1].id != first.id
