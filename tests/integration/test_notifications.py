"""Notifications against the real API server and a real local HTTP receiver: one POST per
transition and sink, none again after a restart, and a dead receiver told by a Warning
Event and a metric while reconciles go on at full speed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest

from canary.api.naming import ANNOTATION_REQUEST
from canary.api.request_codec import encode, new_request
from canary.api.status import CanaryStatus, DeliveryState, Phase
from canary.controller.notifications import Notifier
from canary.controller.reconciler import Controller
from canary.controller.telemetry import Metrics
from canary.kube.client import Kube
from canary.notify.config import CONFIG_KEY
from canary.sandbox.deployment_status import desired_status
from canary.sandbox.webhook_receiver import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
NAME = "shop"
SINKS = [
    {"name": "chat", "type": "slack", "urlSecret": {"name": "hooks", "key": "chat"}},
    {"name": "audit", "type": "cloudevents", "urlSecret": {"name": "hooks", "key": "audit"}},
]


@pytest.fixture
def kube(kubectl, kubeconfig: Path) -> Kube:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.canary.dev")
    return Kube(kubeconfig)


def _apply(kubectl, namespace: str, obj: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def _configure(kubectl, namespace: str, sinks: list[dict], urls: dict[str, str]) -> None:
    """The ConfigMap and the Secret, as a platform team writes them (here in the test's
    namespace, which plays the controller's)."""
    config = {
        "sinks": sinks,
        "routes": [{"sinks": [s["name"] for s in sinks]}],
        "delivery": {"maxAttempts": 2, "backoffSeconds": 0.2, "timeoutSeconds": 2},
    }
    _apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "canary-notifications"},
            "data": {CONFIG_KEY: json.dumps(config)},
        },
    )
    _apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hooks"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in urls.items()},
        },
    )


def _deployment(image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def _kubelet(kube: Kube, ns: str) -> None:
    """Every Deployment fully available at its generation: what the kubelet would report."""
    for name in (NAME, f"{NAME}-primary", f"{NAME}-canary"):
        dep = kube.get_deployment(ns, name)
        if dep is not None:
            n = dep["spec"]["replicas"]
            kube.patch_deployment_status(ns, name, desired_status(dep, n, n, n, n))


class Process:
    """One controller process: its Controller, Notifier and metrics."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.ns = kube, namespace
        self.metrics = Metrics()
        self.notifier = Notifier(kube, namespace, report=self.metrics.notification, config_ttl=0.0)
        self.ctl = Controller(kube, notifier=self.notifier, metrics=self.metrics)

    def reconcile(self, times: int = 1) -> float:
        """Reconcile `times`; the slowest one's seconds."""
        slowest = 0.0
        for _ in range(times):
            _kubelet(self.kube, self.ns)
            started = time.monotonic()
            self.ctl.reconcile(self.kube.get_canary(self.ns, NAME))
            slowest = max(slowest, time.monotonic() - started)
        return slowest

    def status(self) -> CanaryStatus:
        return CanaryStatus.model_validate(self.kube.get_canary(self.ns, NAME)["status"])


def test_one_post_per_transition_and_sink_none_after_a_restart_and_a_dead_sink_is_told(
    kube: Kube, kubectl, namespace: str
) -> None:
    with WebhookReceiver() as hook, WebhookReceiver(status=503, delay=1.0) as down:
        _configure(
            kubectl, namespace, SINKS, {"chat": hook.url("/chat"), "audit": hook.url("/audit")}
        )
        _apply(kubectl, namespace, _deployment("demo/shop:v1"))
        _apply(
            kubectl,
            namespace,
            {
                "apiVersion": "canary.dev/v1alpha1",
                "kind": "Canary",
                "metadata": {"name": NAME},
                "spec": {
                    "targetRef": {"name": NAME},
                    "service": {"port": 80},
                    "steps": [{"setWeight": 50}, {"pause": {}}],
                },
            },
        )
        first = Process(kube, namespace)
        first.reconcile(3)
        kubectl("set", "image", "-n", namespace, f"deployment/{NAME}", "app=demo/shop:v2")
        first.reconcile(4)
        assert first.status().phase is Phase.PAUSED
        assert first.notifier.dispatcher.run_due() == 4
        audit = hook.bodies("/audit")
        assert [e["type"] for e in audit] == [
            "dev.canary.rollout.rolloutStarted",
            "dev.canary.rollout.paused",
        ]
        assert len(hook.bodies("/chat")) == 2
        assert "shop" in hook.bodies("/chat")[1]["text"]
        assert all(
            s.state is DeliveryState.SENT for r in first.status().notifications for s in r.sinks
        )

        # A restart (or a new leader) finds everything Sent and sends nothing.
        second = Process(kube, namespace)
        second.reconcile(3)
        second.notifier.dispatcher.run_due()
        assert len(hook.received) == 4

        # A sink that is down: a third process runs its dispatcher threads, as the
        # controller does, and the reconcile that rolls back does not wait for them.
        _configure(
            kubectl,
            namespace,
            [
                *SINKS,
                {"name": "pager", "type": "teams", "urlSecret": {"name": "hooks", "key": "pager"}},
            ],
            {"chat": hook.url("/chat"), "audit": hook.url("/audit"), "pager": down.url("/t")},
        )
        third = Process(kube, namespace)
        stop = threading.Event()
        third.notifier.start(stop)
        try:
            request = new_request("abort", kube.whoami(), dt.datetime.now(dt.UTC))
            kube.annotate_canary(namespace, NAME, {ANNOTATION_REQUEST: encode(request)})
            assert third.reconcile() < 0.9  # the dead sink answers after 1 s, twice
            assert third.status().phase is Phase.ROLLED_BACK
            deadline = time.monotonic() + 20
            failed: list[dict] = []
            while time.monotonic() < deadline and not failed:
                failed = [
                    e
                    for e in kube.list_events(namespace, NAME)
                    if e["reason"] == "NotificationFailed"
                ]
                time.sleep(0.2)
        finally:
            stop.set()
        assert len(failed) == 1 and failed[0]["type"] == "Warning"
        assert "sink pager" in failed[0]["note"] and "503" in failed[0]["note"]
        sample = third.metrics.registry.get_sample_value
        assert sample("canary_notifications_total", {"sink": "pager", "outcome": "retried"}) == 1
        assert sample("canary_notifications_total", {"sink": "pager", "outcome": "failed"}) == 1
        assert len(down.received) == 2
        assert [e["type"] for e in hook.bodies("/audit")][-1] == "dev.canary.rollout.rolledBack"
        assert len(hook.received) == 6  # chat and audit heard of the rollback once each
        [rolled_back] = [r for r in third.status().notifications if r.trigger == "rolledBack"]
        states = {s.name: s.state for s in rolled_back.sinks}
        assert states == {
            "chat": DeliveryState.SENT,
            "audit": DeliveryState.SENT,
            "pager": DeliveryState.FAILED,
        }
