"""One contract every TrafficRouter in the registry passes, against the real API server
(tests/unit/test_router_contract.py checks the rest without one).

The official Gateway API and Istio CRDs are installed, so the server's own validation
checks every HTTPRoute and VirtualService the routers write.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from canary.api import naming
from canary.api.canary import Canary
from canary.errors import PermanentError
from canary.kube.client import Kube
from canary.routers import RouteReading, TrafficRouter, router_for
from canary.routers.gateway_api import GatewayAPIRouter
from canary.routers.registry import IMPLEMENTED_ROUTERS, ROUTERS, name_for
from canary.routers.replicas import ReplicaRouter
from canary.sandbox.deployment_status import desired_status


def _canary(ns: str, routing: dict | None) -> Canary:
    spec = {"targetRef": {"name": "checkout"}, "service": {"port": 80},
            "steps": [{"setWeight": 10}]}
    if routing:
        spec["trafficRouting"] = routing
    return Canary.model_validate({"metadata": {"name": "checkout", "namespace": ns,
                                               "uid": "u1"}, "spec": spec})


def _deployment(name: str, variant: str, replicas: int) -> dict:
    labels = naming.selector("checkout", variant)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {naming.ANNOTATION_TOTAL: "10"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "demo/checkout:v1"}]}}}}


ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "checkout"},
    "spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "checkout", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
         "backendRefs": [{"name": "other", "port": 80}]},
    ]},
}


# The user's VirtualService: a route canary splits, and what it must keep byte for byte.
VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
    "metadata": {"name": "checkout"},
    "spec": {"hosts": ["checkout"], "gateways": ["mesh"], "http": [
        {"name": "other", "match": [{"uri": {"prefix": "/other"}}],
         "route": [{"destination": {"host": "other", "port": {"number": 80}}}]},
        {"name": "primary", "timeout": "10s", "retries": {"attempts": 3, "perTryTimeout": "2s"},
         "route": [{"destination": {"host": "checkout", "port": {"number": 80}},
                    "headers": {"request": {"set": {"x-team": "shop"}}}}]},
    ], "tcp": [{"route": [{"destination": {"host": "checkout", "port": {"number": 81}}}]}]},
}


# The user's own Service, which their route (if any) sent to before the Canary.
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "checkout"},
           "spec": {"selector": {"app": "checkout"}, "ports": [{"port": 80}]}}


def _pods_ready(kube: Kube, ns: str) -> None:
    """What the Deployment controller and kubelet report once every pod is up: the test
    API server runs neither."""
    for name in ("checkout-primary", "checkout-canary"):
        dep = kube.get_deployment(ns, name)
        assert dep is not None
        n = dep["spec"]["replicas"]
        kube.patch_deployment_status(ns, name, desired_status(dep, n, n, n, n))


@dataclass(frozen=True)
class DataPlane:
    """What a router routes through, as the user has it before creating the Canary."""

    routing: dict | None  # spec.trafficRouting; None leaves it out
    objects: tuple[dict, ...] = ()  # the user's, besides Service N
    fixtures: tuple[str, ...] = ()  # what those objects need, e.g. their CRDs
    # Whatever must happen outside the router before the data plane carries a weight it
    # wrote (pods becoming ready, say).
    settle: Callable[[Kube, str], None] = lambda kube, ns: None


# Every router in the registry runs the contract below; a new one adds its DataPlane.
DATA_PLANES = {
    "replicas": DataPlane(None, settle=_pods_ready),
    "gatewayAPI": DataPlane({"gatewayAPI": {"httpRoute": "checkout"}}, (ROUTE,),
                            ("gateway_crds",)),
    "istio": DataPlane({"istio": {"virtualService": "checkout", "routes": ["primary"]}},
                       (VIRTUAL_SERVICE,), ("istio_crds",)),
}


def _users_objects(kubectl, ns: str, plane: DataPlane) -> list[dict]:
    """What decides where users' traffic goes, apart from the Canary's own objects."""
    found = []
    for obj in (SERVICE, *plane.objects):
        got = json.loads(kubectl("get", "-n", ns, obj["kind"], obj["metadata"]["name"],
                                 "-o", "json").stdout)
        found += [got["spec"], got["metadata"].get("annotations")]
    return found


@pytest.fixture(params=list(ROUTERS))
def setup(
    request: pytest.FixtureRequest, kubeconfig: Path, kubectl, namespace: str
) -> tuple[TrafficRouter, Canary, Callable[[], list[dict]], Callable[[], None]]:
    """A router, its Canary, a reading of the user's objects it must give back, and what
    settles the data plane."""
    plane = DATA_PLANES.get(request.param)
    if plane is None:
        pytest.fail(f"router {request.param!r} has no DataPlane: add one to DATA_PLANES")
    for fixture in plane.fixtures:
        request.getfixturevalue(fixture)
    for obj in (SERVICE, *plane.objects):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
    canary = _canary(namespace, plane.routing)
    assert name_for(canary) == request.param
    kube = Kube(kubeconfig)
    kube.create_deployment(namespace, _deployment("checkout-primary", "stable", 10))
    kube.create_deployment(namespace, _deployment("checkout-canary", "canary", 0))
    return (
        router_for(canary, kube),
        canary,
        lambda: _users_objects(kubectl, namespace, plane),
        lambda: plane.settle(kube, namespace),
    )


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_weight_written_is_weight_read_back(setup, weight: int) -> None:
    router, canary, _, settle = setup
    assert router.set_weight(canary, weight) == weight
    settle()
    assert router.get_weight(canary) == weight


def test_read_tells_whether_the_data_plane_holds_a_weight_and_what_it_carries(setup) -> None:
    router, canary, _, settle = setup
    router.set_weight(canary, 30)
    settle()
    assert router.read(canary, 30) == RouteReading(carried=30, in_sync=True)
    assert router.read(canary, 0) == RouteReading(carried=30, in_sync=False)


def test_rollback_is_one_call_from_any_weight(setup) -> None:
    router, canary, _, _ = setup
    router.set_weight(canary, 50)
    assert router.set_weight(canary, 0) == 0
    assert router.get_weight(canary) == 0


def test_setting_the_same_weight_twice_is_harmless(setup) -> None:
    router, canary, _, _ = setup
    router.set_weight(canary, 10)
    assert router.set_weight(canary, 10) == 10


def test_teardown_gives_back_what_the_user_had(setup) -> None:
    router, canary, users_objects, _ = setup
    before = users_objects()
    router.set_weight(canary, 50)
    router.teardown(canary)
    assert users_objects() == before
    router.teardown(canary)  # a crash after the first call repeats it
    assert users_objects() == before


@pytest.mark.parametrize("recorded", ["missing", "garbage", "our-own-service"])
def test_gateway_teardown_never_leaves_traffic_on_services_that_are_going(
    kubeconfig: Path, gateway_crds: Path, kubectl, namespace: str, recorded: str
) -> None:
    """Whatever the record says, the route ends on the user's Service N: N-stable and
    N-canary are garbage-collected with the Canary."""
    route = json.loads(json.dumps(ROUTE))
    if recorded == "our-own-service":  # the route was written for canary from the start
        route["spec"]["rules"][0]["backendRefs"] = [{"name": "checkout-stable", "port": 80}]
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(route))
    kube = Kube(kubeconfig)
    canary = _canary(namespace, {"gatewayAPI": {"httpRoute": "checkout"}})
    router = GatewayAPIRouter(kube)
    router.set_weight(canary, 10)
    if recorded != "our-own-service":
        value = None if recorded == "missing" else "{not json"
        written = kube.get_object("gateway.networking.k8s.io", "v1", "httproutes", namespace,
                                  "checkout")
        written["metadata"]["annotations"]["canary.dev/original-backend-refs"] = value
        if value is None:
            del written["metadata"]["annotations"]["canary.dev/original-backend-refs"]
        kube.replace_object("gateway.networking.k8s.io", "v1", "httproutes", namespace, written)
    router.teardown(canary)
    after = kube.get_object("gateway.networking.k8s.io", "v1", "httproutes", namespace,
                            "checkout")
    first, second = after["spec"]["rules"]
    assert [b["name"] for b in first["backendRefs"]] == ["checkout"]
    assert [b["name"] for b in second["backendRefs"]] == ["other"]
    assert "canary.dev/original-backend-refs" not in (after["metadata"].get("annotations") or {})


def test_gateway_router_leaves_other_rules_alone(kubeconfig: Path, gateway_crds: Path,
                                                kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(ROUTE))
    canary = _canary(namespace, {"gatewayAPI": {"httpRoute": "checkout"}})
    GatewayAPIRouter(Kube(kubeconfig)).set_weight(canary, 30)
    route = json.loads(kubectl("get", "httproute", "checkout", "-n", namespace,
                               "-o", "json").stdout)
    first, second = route["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in first["backendRefs"]] == [
        ("checkout-stable", 70), ("checkout-canary", 30)]
    assert second["backendRefs"] == [{"group": "", "kind": "Service", "name": "other",
                                      "port": 80, "weight": 1}]


def test_gateway_router_names_the_fix_when_no_rule_is_ours(kubeconfig: Path, gateway_crds: Path,
                                                           kubectl, namespace: str) -> None:
    route = json.loads(json.dumps(ROUTE))
    route["spec"]["rules"] = route["spec"]["rules"][1:]
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(route))
    canary = _canary(namespace, {"gatewayAPI": {"httpRoute": "checkout"}})
    with pytest.raises(PermanentError, match="checkout-stable"):
        GatewayAPIRouter(Kube(kubeconfig)).set_weight(canary, 10)


def test_replica_router_splits_replicas(kubeconfig: Path, namespace: str) -> None:
    kube = Kube(kubeconfig)
    kube.create_deployment(namespace, _deployment("checkout-primary", "stable", 10))
    kube.create_deployment(namespace, _deployment("checkout-canary", "canary", 0))
    canary = _canary(namespace, None)
    ReplicaRouter(kube).set_weight(canary, 30)
    replicas = {}
    for name in ("checkout-primary", "checkout-canary"):
        dep = kube.get_deployment(namespace, name)
        assert dep is not None
        replicas[name] = dep["spec"]["replicas"]
    assert replicas == {"checkout-primary": 7, "checkout-canary": 3}


def test_replica_router_carries_only_what_ready_pods_serve(
    kubeconfig: Path, namespace: str
) -> None:
    """The Service sends to ready pods alone: a canary still starting carries nothing."""
    kube = Kube(kubeconfig)
    kube.create_deployment(namespace, _deployment("checkout-primary", "stable", 10))
    kube.create_deployment(namespace, _deployment("checkout-canary", "canary", 0))
    _pods_ready(kube, namespace)
    router, canary = ReplicaRouter(kube), _canary(namespace, None)
    assert router.set_weight(canary, 30) == 30
    assert router.read(canary, 30) == RouteReading(carried=0, in_sync=True)
    _pods_ready(kube, namespace)
    assert router.get_weight(canary) == 30


RESERVED = {"istio": {"virtualService": "checkout"}, "nginx": {"ingress": "checkout"}}


@pytest.mark.parametrize("field", [f for f in RESERVED if f not in IMPLEMENTED_ROUTERS])
def test_unknown_router_is_an_error_not_a_default(kubeconfig: Path, namespace: str,
                                                  field: str) -> None:
    canary = _canary(namespace, {field: RESERVED[field]})
    with pytest.raises(PermanentError, match=rf"trafficRouting\.{field}"):
        router_for(canary, Kube(kubeconfig))
