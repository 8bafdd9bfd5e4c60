"""A confirm-promotion webhook against the real API server: a local HTTP endpoint says
"not yet" and the rollout holds at its last weight; once it answers 2xx, the controller
promotes. Controller.reconcile is driven directly, with a clock the test moves."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from canary.controller.reconciler import Controller
from canary.kube.client import Kube
from canary.sandbox.deployment_status import desired_status

REPO = Path(__file__).resolve().parents[2]


class Gate:
    """A change-management endpoint: answers `code` and remembers what it was sent."""

    def __init__(self) -> None:
        self.code = 423
        self.calls: list[dict[str, Any]] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                gate.calls.append(json.loads(self.rfile.read(length)))
                body = b"approved" if gate.code < 300 else b"change freeze until 18:00"
                self.send_response(gate.code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/confirm"


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    threading.Thread(target=g.server.serve_forever, daemon=True).start()
    yield g
    g.server.shutdown()
    g.server.server_close()


@pytest.fixture
def kube(kubectl, kubeconfig: Path) -> Kube:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.canary.dev")
    return Kube(kubeconfig)


def _objects(gate_url: str) -> list[dict[str, Any]]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "app", "image": "demo/shop:v1"}]},
            },
        },
    }
    canary = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "shop"},
        "spec": {
            "targetRef": {"name": "shop"},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}, {"setWeight": 50}],
            "webhooks": [
                {
                    "name": "change-freeze",
                    "type": "confirm-promotion",
                    "url": gate_url,
                    "timeout": "2s",
                    "metadata": {"ticket": "CHG-42"},
                }
            ],
        },
    }
    return [deployment, canary]


def test_confirm_promotion_holds_the_rollout_until_the_endpoint_says_yes(
    kube: Kube, kubectl, namespace: str, gate: Gate
) -> None:
    for obj in _objects(gate.url):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
    now = [dt.datetime.now(dt.UTC)]
    ctl = Controller(kube, clock=lambda: now[0])

    def reconcile(seconds: float = 1.0) -> dict[str, Any]:
        # The Deployment controller and kubelet are not running: report pods up as asked.
        for name in ("shop-primary", "shop-canary"):
            dep = kube.get_deployment(namespace, name)
            if dep is not None:
                n = dep["spec"]["replicas"]
                kube.patch_deployment_status(namespace, name, desired_status(dep, n, n, n, n))
        now[0] += dt.timedelta(seconds=seconds)
        ctl.reconcile(kube.get_canary(namespace, "shop"))
        status: dict[str, Any] = kube.get_canary(namespace, "shop")["status"]
        return status

    reconcile()  # first sight: shop-primary is created
    assert reconcile()["reason"] == "Initialized"
    kubectl("set", "image", "-n", namespace, "deployment/shop", "app=demo/shop:v2")
    for _ in range(6):
        status = reconcile()
        if status.get("reason") == "WaitingForConfirmation":
            break
    # Promotion was earned by the status this reconcile started from: it asked at once.
    assert (status["phase"], status["canaryWeight"]) == ("Progressing", 50)
    assert "change freeze until 18:00" in status["message"]
    (hook,) = status["webhooks"]
    assert (hook["name"], hook["verdict"], hook["calls"]) == ("change-freeze", "Fail", 1)
    (call,) = gate.calls
    assert (call["name"], call["namespace"], call["type"]) == ("shop", namespace, hook["type"])
    assert call["metadata"] == {"ticket": "CHG-42"} and call["canaryWeight"] == 50

    status = reconcile()  # asked again an interval (30s) later, not on every reconcile
    assert status["reason"] == "WaitingForConfirmation" and len(gate.calls) == 1

    # Still frozen an interval later, and past the progress deadline: it keeps waiting.
    status = reconcile(700)
    assert status["phase"] == "Progressing" and status["canaryWeight"] == 50
    assert len(gate.calls) == 2

    gate.code = 200
    status = reconcile(30)
    assert status["phase"] == "Promoting"
    assert status["webhooks"][0]["verdict"] == "Pass"
    for _ in range(3):
        status = reconcile()
    assert status["phase"] == "Succeeded"
    assert len(gate.calls) == 3  # not asked again once it said yes
    reasons = [e["reason"] for e in kube.list_events(namespace, "shop")]
    assert "WaitingForConfirmation" in reasons and "WebhookPassed" in reasons
