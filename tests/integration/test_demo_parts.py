"""The demo's moving parts against the real control plane and Prometheus: the stand-in
kubelet runs real demo_app processes for labelled Deployments and reports their status,
the load generator splits real HTTP requests by the HTTPRoute's weights, and Prometheus
scrapes the apps with the variant labels attached."""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from canary.api import naming
from canary.kube.client import Kube
from canary.sandbox.app_process import image_version
from canary.sandbox.demo_app import App
from canary.sandbox.kubelet import StandInKubelet
from canary.sandbox.loadgen import LoadGenerator
from canary.sandbox.procs import alive
from canary.sandbox.prometheus import Prometheus

T = TypeVar("T")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _deployment(name: str, variant: str, image: str, error_rate: str,
                replicas: int = 1) -> dict[str, Any]:
    labels = naming.selector("checkout", variant)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "app", "image": image,
                    "env": [{"name": "ERROR_RATE", "value": error_rate},
                            {"name": "LATENCY_MS", "value": "10"}],
                }]},
            },
        },
    }


def _route(stable: int, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "checkout"},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [
                {"name": "checkout-stable", "port": 80, "weight": stable},
                {"name": "checkout-canary", "port": 80, "weight": canary},
            ]}],
        },
    }


def _apply(kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    kubectl("apply", "-n", namespace, "-f", "-", input=body)


def _wait(what: str, probe: Callable[[], T | Literal[False] | None], timeout: float = 30.0,
          step: Callable[[], object] | None = None) -> T:
    """Poll `probe` (after `step`, if given) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _get(address: str) -> str:
    with NO_PROXY.open(f"http://{address}/", timeout=5) as resp:
        return resp.read().decode().strip()


@pytest.fixture
def kube(kubeconfig: Path) -> Kube:
    return Kube(kubeconfig)


def test_image_tag_is_the_version() -> None:
    assert image_version("demo/checkout:v2") == "v2"
    assert image_version("registry.local:5000/shop/checkout:1.4.0") == "1.4.0"
    assert image_version("registry.local:5000/checkout") == "latest"
    assert image_version("checkout@sha256:" + "a" * 64) == "sha256:aaaaaaaaaaaa"


def test_a_late_regression_fails_requests_only_once_its_file_exists(tmp_path: Path) -> None:
    incident = tmp_path / "cache-full"
    app = App("v2", 1.0, 0.0, random.Random(1), errors_when=incident)
    assert not any(app.draw()[1] for _ in range(50))
    incident.touch()
    assert all(app.draw()[1] for _ in range(50))


def test_traffic_follows_the_route_and_prometheus_sees_the_variants(
    kube: Kube, kubectl, namespace: str, prometheus: Prometheus, gateway_crds: Path,
    tmp_path: Path,
) -> None:
    _apply(kubectl, namespace,
           _deployment("checkout-primary", "stable", "demo/checkout:v1", "0"),
           _deployment("checkout-canary", "canary", "demo/checkout:v2", "0.5"),
           _route(50, 50))
    with StandInKubelet(kube, namespace, prometheus, tmp_path / "kubelet") as kubelet:
        for name in ("checkout-primary", "checkout-canary"):
            # The real kubectl agrees the (pod-less) Deployments are rolled out.
            kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=60s")
            status = kube.get_deployment(namespace, name)["status"]  # type: ignore[index]
            assert status["readyReplicas"] == status["availableReplicas"] == 1
            assert {c["type"]: c["status"] for c in status["conditions"]}["Available"] == "True"
        assert _get(kubelet.endpoints("checkout-stable")[0]) == "hello from v1"

        with LoadGenerator(kube, namespace, "checkout", "checkout", rps=50,
                           kubelet=kubelet, seed=7) as load:
            stats = _wait("250 requests", lambda: (s := load.stats()).requests >= 250 and s,
                          timeout=60)
            assert stats.weights == {"stable": 50, "canary": 50}
            assert 0.35 < stats.canary_share < 0.65
            assert stats["stable"].errors == 0
            assert stats["canary"].done >= 100
            assert 0.3 < stats["canary"].error_rate < 0.7
            assert stats.failed == stats["canary"].errors

            # Prometheus scraped both apps, with the kubelet's target labels on every series.
            query = f'sum by (service, variant, deployment) (http_requests_total{{namespace="{namespace}"}})'  # noqa: E501
            series = _wait("Prometheus to count both variants' requests",
                           lambda: len(s := {r["metric"]["variant"]: r
                                             for r in prometheus.query(query)
                                             if float(r["value"][1]) > 0}) == 2 and s)
            assert series["canary"]["metric"] == {
                "service": "checkout", "variant": "canary", "deployment": "checkout-canary"}
            assert series["stable"]["metric"]["deployment"] == "checkout-primary"
            errors = prometheus.query(
                f'sum(http_requests_total{{namespace="{namespace}", variant="canary", '
                'code="500"})')
            assert errors and float(errors[0]["value"][1]) > 0

            # All traffic back to stable: once the generator has read it, the canary gets
            # nothing more.
            route = kube.get_object("gateway.networking.k8s.io", "v1", "httproutes",
                                    namespace, "checkout")
            route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 100
            route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
            kube.replace_object("gateway.networking.k8s.io", "v1", "httproutes", namespace,
                                route)
            before = _wait("the new weights", lambda: (s := load.stats()).weights == {
                "stable": 100, "canary": 0} and s)
            after = _wait("60 more requests",
                          lambda: (s := load.stats()).requests >= before.requests + 60 and s)
            assert after["canary"].requests == before["canary"].requests
            assert after["stable"].requests >= before["stable"].requests + 60
            assert after["stable"].errors == 0
        final = load.stats()
        assert final["canary"].done == final["canary"].requests  # stop() waited for all


def test_kubelet_follows_readiness_template_changes_crashes_and_scale_down(
    kube: Kube, kubectl, namespace: str, prometheus: Prometheus, tmp_path: Path,
) -> None:
    now = [1000.0]
    kubelet = StandInKubelet(kube, namespace, prometheus, tmp_path / "kubelet",
                             ready_delay=5.0, clock=lambda: now[0])

    def status() -> dict[str, Any]:
        dep = kube.get_deployment(namespace, "checkout-canary")
        assert dep is not None
        return dep.get("status") or {}

    def serving() -> str | None:
        eps = kubelet.endpoints("checkout-canary")
        return _get(eps[0]) if eps else None

    try:
        _apply(kubectl, namespace, _deployment("checkout-canary", "canary",
                                               "demo/checkout:v2", "0"))
        # Up and answering, but not ready before ready_delay: no endpoints, not available.
        app = _wait("the app to answer", lambda: (p := kubelet.processes().get(
            "checkout-canary")) is not None and p.healthy and p, step=kubelet.sync)
        kubelet.sync()
        st = status()
        assert st["replicas"] == st["updatedReplicas"] == 1
        assert st.get("readyReplicas", 0) == 0 and st["unavailableReplicas"] == 1
        assert {c["type"]: c["status"] for c in st["conditions"]}["Available"] == "False"
        assert kubelet.endpoints("checkout-canary") == []
        assert kubelet.endpoints("checkout") == []

        now[0] += 5
        kubelet.sync()
        st = status()
        assert st["readyReplicas"] == st["availableReplicas"] == 1
        assert serving() == "hello from v2"
        assert kubelet.endpoints("checkout") == kubelet.endpoints("checkout-canary")
        assert kubelet.ready_replicas("checkout-canary") == 1

        # A new pod template rolls: the old process serves until the new one is ready.
        kubectl("set", "image", "-n", namespace, "deployment/checkout-canary",
                "app=demo/checkout:v3")
        generation = kube.get_deployment(namespace, "checkout-canary")["metadata"][  # type: ignore[index]
            "generation"]
        for _ in range(4):
            kubelet.sync()
            time.sleep(0.2)
        st = status()
        assert st["observedGeneration"] == generation
        assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"]) == (2, 1, 1)
        assert serving() == "hello from v2"
        now[0] += 5
        _wait("v3 to serve", lambda: serving() == "hello from v3", step=kubelet.sync)
        _wait("the old process to stop", lambda: not alive(app.proc.pid))
        st = status()
        assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"]) == (1, 1, 1)

        # A crash: unavailable at once, restarted after a back-off, ready after the delay.
        crashed = kubelet.processes()["checkout-canary"]
        os.kill(crashed.proc.pid, signal.SIGKILL)
        _wait("the crash to be noticed", lambda: crashed.proc.proc.poll() is not None)
        kubelet.sync()
        assert status().get("availableReplicas", 0) == 0
        assert kubelet.endpoints("checkout-canary") == []
        now[0] += 1
        restarted = _wait("a restart", lambda: (p := kubelet.processes().get(
            "checkout-canary")) is not None and p.healthy and p, step=kubelet.sync)
        assert restarted.port != crashed.port or restarted.proc.pid != crashed.proc.pid
        now[0] += 5
        _wait("v3 to serve again", lambda: serving() == "hello from v3", step=kubelet.sync)

        # Scaled to 0: the process stops and the status reads all zeros.
        kubectl("scale", "-n", namespace, "deployment/checkout-canary", "--replicas=0")
        _wait("zero replicas", lambda: status().get("replicas", 0) == 0
              and status()["observedGeneration"] == kube.get_deployment(
                  namespace, "checkout-canary")["metadata"]["generation"],  # type: ignore[index]
              step=kubelet.sync)
        assert "checkout-canary" not in kubelet.processes()
        assert kubelet.endpoints("checkout-canary") == []
        assert not alive(restarted.proc.pid)
    finally:
        kubelet.stop()
