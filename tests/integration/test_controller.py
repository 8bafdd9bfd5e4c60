"""The controller's reconcile against the real API server: invalid specs are reported
on the object and do not stop other Canaries."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from canary.controller.reconciler import Controller
from canary.kube.client import Kube, NotFound
from canary.kube.port import Obj
from canary.sandbox.deployment_status import desired_status

REPO = Path(__file__).resolve().parents[2]


def _deployment(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": f"demo/{name}:v1"}]},
                },
            },
        }
    )


def _canary(name: str, steps: list[dict], analysis: dict | None = None) -> str:
    spec: dict = {"targetRef": {"name": name}, "service": {"port": 80}, "steps": steps}
    if analysis:
        spec["analysis"] = analysis
    return json.dumps(
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "Canary",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _found(obj: Obj | None) -> Obj:
    assert obj is not None
    return obj


@pytest.fixture
def kube(kubectl, kubeconfig: Path) -> Kube:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.canary.dev")
    return Kube(kubeconfig)


def test_invalid_canary_gets_condition_and_event_others_keep_going(
    kube: Kube, kubectl, namespace: str
) -> None:
    for name in ("good", "bad"):
        kubectl("apply", "-n", namespace, "-f", "-", input=_deployment(name))
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("good", [{"setWeight": 10}]))
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=_canary(
            "bad",
            [{"setWeight": 50}, {"setWeight": 20}],
            analysis={"templates": [{"templateName": "does-not-exist"}]},
        ),
    )
    ctl = Controller(kube)
    for name in ("bad", "good"):
        ctl.reconcile(kube.get_canary(namespace, name))

    bad = kube.get_canary(namespace, "bad")
    invalid = next(c for c in bad["status"]["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True"
    assert "spec.steps[1].setWeight" in invalid["message"]
    assert "does-not-exist" in invalid["message"]
    events = kube.list_events(namespace, "bad")
    assert any(e["type"] == "Warning" and e["reason"] == "InvalidSpec" for e in events)
    # Nothing touched the workload: no owned Deployments for the invalid Canary.
    assert kube.get_deployment(namespace, "bad-primary") is None
    assert _found(kube.get_deployment(namespace, "bad"))["spec"]["replicas"] == 2

    good = kube.get_canary(namespace, "good")
    assert good["status"]["stableRevision"]
    assert kube.get_deployment(namespace, "good-primary") is not None
    assert kube.get_service(namespace, "good-stable") is not None


def test_deleting_the_canary_owns_what_it_created(kube: Kube, kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("shop"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("shop", [{"setWeight": 10}]))
    canary = kube.get_canary(namespace, "shop")
    Controller(kube).reconcile(canary)
    owned = [
        kube.get_deployment(namespace, "shop-primary"),
        kube.get_service(namespace, "shop-stable"),
        kube.get_service(namespace, "shop-canary"),
    ]
    for obj in owned:
        assert obj is not None
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"]) == ("Canary", canary["metadata"]["uid"])


def test_a_malformed_request_annotation_is_rejected_once_and_the_rollout_goes_on(
    kube: Kube, kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("cart"))
    steps: list[dict] = [{"setWeight": 10}, {"pause": {}}]
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("cart", steps))
    ctl = Controller(kube)
    ctl.reconcile(kube.get_canary(namespace, "cart"))

    def with_request(raw: str) -> dict:
        # The admission policy keeps such an annotation out of the API server, so hand it
        # to the controller directly: clusters without the policy (or before 1.30) can
        # still deliver one.
        canary = kube.get_canary(namespace, "cart")
        canary["metadata"].setdefault("annotations", {})["canary.dev/request"] = raw
        return canary

    # A typo'd request (the field is "action", the value is not one of the verbs).
    typo = json.dumps({"id": "typo-1", "action": "rollback"})
    for _ in range(2):  # the second reconcile must not report it again
        ctl.reconcile(with_request(typo))
    status = kube.get_canary(namespace, "cart")["status"]
    assert status["lastRequestId"].startswith("invalid-")  # consumed
    rejected = [e for e in kube.list_events(namespace, "cart") if e["reason"] == "RequestRejected"]
    assert len(rejected) == 1 and rejected[0]["type"] == "Warning"
    assert "action" in rejected[0]["note"]
    # "full": "no" is not a boolean: rejected, not read as true.
    sloppy = json.dumps({"id": "sloppy-1", "action": "promote", "full": "no"})
    ctl.reconcile(with_request(sloppy))
    status = kube.get_canary(namespace, "cart")["status"]
    assert status["lastRequestId"].startswith("invalid-") and status["phase"] != "Promoting"
    rejected = [e for e in kube.list_events(namespace, "cart") if e["reason"] == "RequestRejected"]
    assert len(rejected) == 2 and "full" in rejected[-1]["note"]


def test_objects_of_another_team_with_our_names_are_never_adopted(
    kube: Kube, kubectl, namespace: str
) -> None:
    legacy = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "pay-canary"},
        "spec": {"selector": {"app": "legacy-canary-tool"}, "ports": [{"port": 80}]},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(legacy))
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("pay"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("pay", [{"setWeight": 10}]))
    Controller(kube).reconcile(kube.get_canary(namespace, "pay"))

    svc = _found(kube.get_service(namespace, "pay-canary"))
    assert svc["spec"]["selector"] == {"app": "legacy-canary-tool"}
    assert not svc["metadata"].get("ownerReferences")
    status = kube.get_canary(namespace, "pay")["status"]
    invalid = next(c for c in status["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True"
    assert f"Service {namespace}/pay-canary already exists and is not owned" in invalid["message"]
    assert kube.get_deployment(namespace, "pay-primary") is None  # nothing else touched
    assert _found(kube.get_deployment(namespace, "pay"))["spec"]["replicas"] == 2


def _available(kube: Kube, ns: str, name: str) -> None:
    """What the Deployment controller and kubelet would report once its pods are up."""
    dep = _found(kube.get_deployment(ns, name))
    n = dep["spec"]["replicas"]
    kube.patch_deployment_status(ns, name, desired_status(dep, n, n, n, n))


def test_deleting_a_canary_gives_the_app_back_before_it_goes(
    kube: Kube, kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("shop"))
    steps: list[dict] = [{"setWeight": 10}, {"pause": {}}]
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("shop", steps))
    now = [dt.datetime.now(dt.UTC)]
    ctl = Controller(kube, clock=lambda: now[0])
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    _available(kube, namespace, "shop-primary")
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    assert _found(kube.get_deployment(namespace, "shop"))["spec"]["replicas"] == 0  # taken over

    kubectl("delete", "-n", namespace, "canary/shop", "--wait=false")
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    # Still there: the user's Deployment is back at 2 replicas but not serving yet.
    assert _found(kube.get_deployment(namespace, "shop"))["spec"]["replicas"] == 2
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    assert kube.get_canary(namespace, "shop")["metadata"]["finalizers"] == [
        "canary.dev/finalizer"
    ]
    waiting = [e for e in kube.list_events(namespace, "shop") if e["reason"] == "HandingBack"]
    assert "shop" in waiting[-1]["note"] and "available" in waiting[-1]["note"]

    _available(kube, namespace, "shop")
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    # Traffic is back on shop; shop-primary keeps running the default 30 s for data
    # planes that apply the route late.
    waiting = [e for e in kube.list_events(namespace, "shop") if e["reason"] == "HandingBack"]
    assert "shop-primary" in waiting[-1]["note"] and "30s" in waiting[-1]["note"]
    now[0] += dt.timedelta(seconds=29)
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    assert kube.get_canary(namespace, "shop")["metadata"]["finalizers"]
    now[0] += dt.timedelta(seconds=1)
    ctl.reconcile(kube.get_canary(namespace, "shop"))
    with pytest.raises(NotFound):
        kube.get_canary(namespace, "shop")
    shop = _found(kube.get_deployment(namespace, "shop"))
    assert shop["spec"]["replicas"] == 2
    assert "canary.dev/replicas-before-handoff" not in (shop["metadata"].get("annotations") or {})


def test_the_status_shows_the_weight_the_pods_carry_next_to_the_weight_desired(
    kube: Kube, kubectl, kubeconfig: Path, namespace: str
) -> None:
    """Replica routing splits traffic by ready pods: 10% of 4 replicas is one pod, 25%,
    and only once that pod is ready. `canary status` and `kubectl get -o wide` say so."""
    deployment = json.loads(_deployment("cart"))
    deployment["spec"]["replicas"] = 4
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment))
    steps: list[dict] = [{"setWeight": 10}, {"pause": {}}]
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("cart", steps))
    ctl = Controller(kube)

    def reconcile() -> dict:
        ctl.reconcile(kube.get_canary(namespace, "cart"))
        return kube.get_canary(namespace, "cart")["status"]

    reconcile()
    _available(kube, namespace, "cart-primary")
    assert reconcile()["routeWeight"] == 0  # initialized: stable carries everything
    kubectl("set", "image", "-n", namespace, "deployment/cart", "app=demo/cart:v2")
    reconcile()  # the rollout starts with N-canary at 0 replicas
    _available(kube, namespace, "cart-canary")
    status = reconcile()  # setWeight 10: N-canary scaled to 1, its pod not ready yet
    assert (status["canaryWeight"], status["routeWeight"]) == (10, 0)
    for name in ("cart-primary", "cart-canary"):
        _available(kube, namespace, name)
    status = reconcile()
    assert (status["phase"], status["canaryWeight"], status["routeWeight"]) == ("Paused", 10, 25)

    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    shown = subprocess.run(
        [sys.executable, "-m", "canary", "status", "cart", "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert "  weight   10% desired, route carries 25%\n" in shown.stdout, shown.stderr
    wide = kubectl("get", "canary", "cart", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:5] == ["NAME", "PHASE", "WEIGHT", "ROUTE", "STEP"]
    assert wide[1].split()[:5] == ["cart", "Paused", "10", "25", "2/2"]


def test_undo_after_promotion_rolls_the_previous_template_out_again(
    kube: Kube, kubectl, kubeconfig: Path, namespace: str
) -> None:
    """Once promoted the previous pods are gone: `canary undo` gives the user's Deployment
    the template N-primary ran before, and the controller rolls it out like any other."""
    kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("shop"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_canary("shop", [{"setWeight": 50}]))
    ctl = Controller(kube)

    def reconcile_until(done, what: str) -> dict:
        for _ in range(12):
            ctl.reconcile(kube.get_canary(namespace, "shop"))
            for name in ("shop-primary", "shop-canary"):
                if kube.get_deployment(namespace, name) is not None:
                    _available(kube, namespace, name)
            status = kube.get_canary(namespace, "shop")["status"]
            if done(status):
                return status
        raise AssertionError(f"{what}; status {status}")

    v1 = reconcile_until(lambda s: s.get("reason") == "Initialized", "never initialized")
    kubectl("set", "image", "-n", namespace, "deployment/shop", "app=demo/shop:v2")
    v2 = reconcile_until(lambda s: s.get("phase") == "Succeeded", "v2 never promoted")
    assert v2["stableRevision"] != v1["stableRevision"]

    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    undone = subprocess.run(
        [sys.executable, "-m", "canary", "undo", "shop", "-n", namespace],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert f"back at revision {v1['stableRevision']}" in undone.stdout, undone.stdout
    shop = _found(kube.get_deployment(namespace, "shop"))
    assert shop["spec"]["template"]["spec"]["containers"][0]["image"] == "demo/shop:v1"
    assert "canary undo by" in shop["metadata"]["annotations"]["kubernetes.io/change-cause"]
    back = reconcile_until(
        lambda s: s.get("phase") == "Succeeded" and s.get("stableRevision") == v1["stableRevision"],
        "the undone revision was never rolled out again")
    assert back["canaryRevision"] == v1["stableRevision"]
