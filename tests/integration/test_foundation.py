"""The parts are real: a kube-apiserver with etcd behind it, the real kubectl, the
official Gateway API CRDs validated by the server, and PromQL over backfilled data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from canary.sandbox.controlplane import ControlPlane
from canary.sandbox.prometheus import Prometheus


@pytest.fixture(scope="module")
def apps(kubeconfig: Path) -> client.AppsV1Api:
    return client.AppsV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment.model_validate({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/checkout:v1"}]},
            },
        },
    })


def test_server_reports_its_real_version(control_plane: ControlPlane) -> None:
    assert control_plane.version.startswith("v1.36.")
    assert control_plane.etcd_version.startswith("3.6.")


def test_deployment_round_trips_through_etcd(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("checkout"))
    got = apps.read_namespaced_deployment("checkout", namespace)
    pod, meta = got.spec.template.spec, got.metadata
    assert pod is not None and meta is not None
    assert pod.containers[0].image == "registry.example/checkout:v1"
    assert meta.uid and meta.resource_version


def test_real_kubectl_lists_the_same_deployment(
    apps: client.AppsV1Api, kubectl, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _deployment("cart"))
    out = kubectl("get", "deployments", "-n", namespace, "-o", "json")
    names = [d["metadata"]["name"] for d in json.loads(out.stdout)["items"]]
    assert names == ["cart"]
    assert "v1.35" in kubectl("version", "--client").stdout


def _route(weight: int) -> str:
    return json.dumps(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "checkout"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [
                    {
                        "backendRefs": [
                            {"name": "checkout-stable", "port": 80, "weight": 100 - max(weight, 0)},
                            {"name": "checkout-canary", "port": 80, "weight": weight},
                        ]
                    }
                ],
            },
        }
    )


def test_gateway_api_crds_validate_on_the_server(
    gateway_crds: Path, kubectl, namespace: str
) -> None:
    bad = kubectl("apply", "-n", namespace, "-f", "-", input=_route(-1), check=False)
    assert bad.returncode != 0
    assert "weight" in bad.stderr and "greater than or equal to 0" in bad.stderr
    kubectl("apply", "-n", namespace, "-f", "-", input=_route(10))


def test_promql_over_backfilled_history(tmp_path: Path) -> None:
    now = int(time.time())
    lines = ["# TYPE http_requests counter"]
    # 10 requests/s for 10 minutes, ending a minute ago.
    for i in range(0, 601, 15):
        ts = now - 660 + i
        lines.append(f'http_requests_total{{variant="canary"}} {10 * i} {ts}')
    prom = Prometheus(tmp_path / "prom")
    prom.backfill("\n".join(lines) + "\n# EOF\n")
    prom.start()
    try:
        result = prom.query('rate(http_requests_total{variant="canary"}[5m])', at=now - 120)
        assert len(result) == 1
        assert float(result[0]["value"][1]) == pytest.approx(10.0)
    finally:
        prom.stop()


def test_prometheus_scrapes_targets_chosen_by_the_test(prometheus: Prometheus) -> None:
    prometheus.set_targets("self", [prometheus.url.removeprefix("http://")])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if prometheus.query('up{job="self"} == 1'):
            return
        time.sleep(0.5)
    pytest.fail("prometheus never scraped the target the test gave it")


def test_invalid_kubeconfig_access_is_refused(control_plane: ControlPlane) -> None:
    # RBAC is on: an anonymous client may not list deployments.
    conf = client.Configuration()
    conf.host = control_plane.server
    conf.verify_ssl = False
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(client.ApiClient(conf)).list_namespaced_deployment("default")
    assert err.value.status in (401, 403)
