"""The Istio router beyond the shared contract (test_routers.py): what it must leave alone
in the user's VirtualService, how it names a wrong spec, and that the official CRD's
validation accepts every write it makes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_routers import VIRTUAL_SERVICE, _canary

from canary.errors import PermanentError
from canary.kube.client import Kube
from canary.kube.errors import Conflict
from canary.routers.base import RouteReading
from canary.routers.istio import ANNOTATION_ORIGINAL, GROUP, PLURAL, VERSION, IstioRouter

pytestmark = pytest.mark.usefixtures("istio_crds")

PRIMARY = {"istio": {"virtualService": "checkout", "routes": ["primary"]}}


def _apply(kubectl, ns: str, vs: dict) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(vs))


def _get(kube: Kube, ns: str) -> dict:
    return kube.get_object(GROUP, VERSION, PLURAL, ns, "checkout")


def _split(weight: int) -> list[dict]:
    return [
        {
            "destination": {"host": "checkout-stable", "port": {"number": 80}},
            "weight": 100 - weight,
        },
        {"destination": {"host": "checkout-canary", "port": {"number": 80}}, "weight": weight},
    ]


def test_only_the_named_routes_destinations_change(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    """Every other field and route stays as the user wrote it, byte for byte."""
    _apply(kubectl, namespace, VIRTUAL_SERVICE)
    kube = Kube(kubeconfig)
    before = _get(kube, namespace)
    IstioRouter(kube).set_weight(_canary(namespace, PRIMARY), 30)
    after = _get(kube, namespace)
    assert after["spec"]["http"][1]["route"] == _split(30)
    expected = copy.deepcopy(before["spec"])
    expected["http"][1]["route"] = _split(30)
    assert json.dumps(after["spec"], sort_keys=True) == json.dumps(expected, sort_keys=True)
    recorded = json.loads(after["metadata"]["annotations"].pop(ANNOTATION_ORIGINAL))
    assert recorded == {"primary": VIRTUAL_SERVICE["spec"]["http"][1]["route"]}
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]


def test_without_route_names_every_http_route_to_the_service_is_split(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    vs = copy.deepcopy(VIRTUAL_SERVICE)
    # Unnamed, and with the host in its namespaced form.
    vs["spec"]["http"].append(
        {
            "match": [{"uri": {"prefix": "/api"}}],
            "route": [{"destination": {"host": f"checkout.{namespace}.svc.cluster.local"}}],
        }
    )
    _apply(kubectl, namespace, vs)
    kube = Kube(kubeconfig)
    router, canary = (
        IstioRouter(kube),
        _canary(namespace, {"istio": {"virtualService": "checkout"}}),
    )
    assert router.set_weight(canary, 20) == 20
    other, primary, api = _get(kube, namespace)["spec"]["http"]
    assert other["route"] == vs["spec"]["http"][0]["route"]
    assert primary["route"] == api["route"] == _split(20)
    router.teardown(canary)
    assert _get(kube, namespace)["spec"] == vs["spec"]


def test_a_route_name_that_does_not_exist_names_the_field_and_the_fix(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    _apply(kubectl, namespace, VIRTUAL_SERVICE)
    canary = _canary(
        namespace, {"istio": {"virtualService": "checkout", "routes": ["primary", "main"]}}
    )
    with pytest.raises(PermanentError) as raised:
        IstioRouter(Kube(kubeconfig)).set_weight(canary, 10)
    message = str(raised.value)
    assert "spec.trafficRouting.istio.routes" in message
    assert "'main'" in message and "other, primary" in message


def test_a_missing_virtual_service_names_the_field(kubeconfig: Path, namespace: str) -> None:
    router, canary = IstioRouter(Kube(kubeconfig)), _canary(namespace, PRIMARY)
    with pytest.raises(PermanentError, match=r"istio\.virtualService.*does not exist"):
        router.set_weight(canary, 10)
    router.teardown(canary)  # nothing to give back, and no error while deleting


def test_no_route_to_the_service_names_the_fix(kubeconfig: Path, kubectl, namespace: str) -> None:
    vs = copy.deepcopy(VIRTUAL_SERVICE)
    vs["spec"]["http"] = vs["spec"]["http"][:1]
    _apply(kubectl, namespace, vs)
    canary = _canary(namespace, {"istio": {"virtualService": "checkout"}})
    with pytest.raises(
        PermanentError,
        match=r"istio\.routes: .* no http route with a "
        r"destination host checkout",
    ):
        IstioRouter(Kube(kubeconfig)).set_weight(canary, 10)


def test_the_crds_validation_accepts_every_write(kubeconfig: Path, kubectl, namespace: str) -> None:
    """The server validates each write against the official schema (it rejects a
    destination without a host, so the check is live); every weight and the teardown
    pass it, and a server-side dry run of the stored object passes again."""
    _apply(kubectl, namespace, VIRTUAL_SERVICE)
    kube = Kube(kubeconfig)
    broken = _get(kube, namespace)
    broken["spec"]["http"][1]["route"] = [{"destination": {"port": {"number": 80}}}]
    with pytest.raises(PermanentError, match=r"rejected.*destination\.host: Required"):
        kube.replace_object(GROUP, VERSION, PLURAL, namespace, broken)
    router, canary = IstioRouter(kube), _canary(namespace, PRIMARY)
    for weight in (0, 1, 33, 99, 100, 0):
        assert router.set_weight(canary, weight) == weight
        stored = json.dumps(_get(kube, namespace))
        kubectl("replace", "--dry-run=server", "-n", namespace, "-f", "-", input=stored)
    router.teardown(canary)
    kubectl(
        "replace",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(_get(kube, namespace)),
    )


def test_a_hand_edited_route_is_out_of_sync_and_carries_the_most_any_route_gives(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    vs = copy.deepcopy(VIRTUAL_SERVICE)
    vs["spec"]["http"][0]["name"] = "second"
    vs["spec"]["http"][0]["route"] = copy.deepcopy(vs["spec"]["http"][1]["route"])
    _apply(kubectl, namespace, vs)
    kube = Kube(kubeconfig)
    router = IstioRouter(kube)
    canary = _canary(
        namespace, {"istio": {"virtualService": "checkout", "routes": ["primary", "second"]}}
    )
    router.set_weight(canary, 10)
    edited = _get(kube, namespace)
    edited["spec"]["http"][0]["route"] = _split(40)
    kube.replace_object(GROUP, VERSION, PLURAL, namespace, edited)
    assert router.read(canary, 10) == RouteReading(carried=40, in_sync=False)
    assert router.set_weight(canary, 10) == 10
    assert router.read(canary, 10) == RouteReading(carried=10, in_sync=True)


def test_a_write_that_loses_a_race_is_a_transient_conflict(
    kubeconfig: Path, kubectl, namespace: str
) -> None:
    """The write is guarded by the resourceVersion read: a concurrent edit makes it a
    Conflict (retried on the next reconcile), never a silent overwrite."""
    _apply(kubectl, namespace, VIRTUAL_SERVICE)
    kube = Kube(kubeconfig)

    class RacedKube(Kube):
        def get_object(self, *args: str) -> dict:
            got = super().get_object(*args)
            kubectl(
                "annotate",
                "-n",
                namespace,
                "virtualservice",
                "checkout",
                "--overwrite",
                f"edited={got['metadata']['resourceVersion']}",
            )
            return got

    raced = RacedKube(kubeconfig)
    with pytest.raises(Conflict):
        IstioRouter(raced).set_weight(_canary(namespace, PRIMARY), 10)
    assert _get(kube, namespace)["spec"] == VIRTUAL_SERVICE["spec"]


@pytest.mark.parametrize("recorded", ["missing", "garbage"])
def test_teardown_without_a_readable_record_sends_the_route_to_the_users_service(
    kubeconfig: Path, kubectl, namespace: str, recorded: str
) -> None:
    _apply(kubectl, namespace, VIRTUAL_SERVICE)
    kube = Kube(kubeconfig)
    router, canary = IstioRouter(kube), _canary(namespace, PRIMARY)
    router.set_weight(canary, 10)
    written = _get(kube, namespace)
    if recorded == "missing":
        del written["metadata"]["annotations"][ANNOTATION_ORIGINAL]
    else:
        written["metadata"]["annotations"][ANNOTATION_ORIGINAL] = "{not json"
    kube.replace_object(GROUP, VERSION, PLURAL, namespace, written)
    router.teardown(canary)
    after = _get(kube, namespace)
    assert after["spec"]["http"][1]["route"] == [
        {"destination": {"host": "checkout", "port": {"number": 80}}}
    ]
    assert after["spec"]["http"][0] == VIRTUAL_SERVICE["spec"]["http"][0]
    assert ANNOTATION_ORIGINAL not in (after["metadata"].get("annotations") or {})
