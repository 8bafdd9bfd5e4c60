"""manifests/ installs with the real kubectl, and the controller's RBAC is exactly enough."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from canary.kube import Kube

REPO = Path(__file__).resolve().parents[2]
SA = "system:serviceaccount:canary-system:canary-controller"

CANARY = """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout}
spec:
  targetRef: {kind: Deployment, name: checkout}
  service: {port: 80, targetPort: 8080}
  steps:
    - setWeight: 10
    - pause: {duration: 1m}
    - setWeight: 50
"""


@pytest.fixture(scope="module")
def installed(kubectl) -> None:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/canaries.canary.dev", "crd/analysistemplates.canary.dev",
            "crd/clusteranalysistemplates.canary.dev")


def test_kubectl_get_canaries_shows_phase_weight_step_age(installed: None, kubectl,
                                                          namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY)
    kubectl("patch", "canary", "checkout", "-n", namespace, "--subresource=status",
            "--type=merge", "-p",
            json.dumps({"status": {"phase": "Progressing", "canaryWeight": 10,
                                   "currentStepIndex": 1}}))
    table = kubectl("get", "canaries", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "WEIGHT", "STEP", "AGE"]
    assert table[1].split()[:4] == ["checkout", "Progressing", "10", "1"]
    # short name works too
    assert "checkout" in kubectl("get", "cnry", "-n", namespace).stdout


def test_server_rejects_a_weight_above_100(installed: None, kubectl,
                                           namespace: str) -> None:
    bad = CANARY.replace("setWeight: 50", "setWeight: 150")
    result = kubectl("apply", "-n", namespace, "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "setWeight" in result.stderr


def test_kubectl_finds_the_canary_plugin(installed: None, kubectl, kubeconfig: Path,
                                         namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = kubectl("canary", "status", "checkout", "-n", namespace, env={"PATH": path})
    assert f"{namespace}/checkout" in result.stdout
    assert "Idle" in result.stdout


CONTROLLER_CALLS = [
    ("get", "canary.dev", "canaries", None), ("list", "canary.dev", "canaries", None),
    ("watch", "canary.dev", "canaries", None), ("patch", "canary.dev", "canaries", "status"),
    ("list", "canary.dev", "analysistemplates", None),
    ("list", "canary.dev", "clusteranalysistemplates", None),
    ("get", "canary.dev", "analysistemplates", None),
    ("get", "apps", "deployments", None), ("list", "apps", "deployments", None),
    ("watch", "apps", "deployments", None), ("create", "apps", "deployments", None),
    ("update", "apps", "deployments", None), ("patch", "apps", "deployments", None),
    ("get", "", "services", None), ("create", "", "services", None),
    ("patch", "", "services", None),
    ("create", "events.k8s.io", "events", None),
    ("get", "gateway.networking.k8s.io", "httproutes", None),
    ("update", "gateway.networking.k8s.io", "httproutes", None),
    ("get", "apiextensions.k8s.io", "customresourcedefinitions", None),
]


@pytest.mark.parametrize(("verb", "group", "resource", "sub"), CONTROLLER_CALLS)
def test_controller_service_account_can_make_every_call(installed: None, kubeconfig: Path,
                                                        verb: str, group: str, resource: str,
                                                        sub: str | None) -> None:
    kube = Kube(kubeconfig)
    assert kube.can_i(SA, verb, group, resource, ns="shop", subresource=sub), (
        f"{SA} cannot {verb} {resource}.{group}")


@pytest.mark.parametrize("verb", ["get", "list", "watch"])
def test_controller_cannot_read_secrets(installed: None, kubeconfig: Path, verb: str) -> None:
    kube = Kube(kubeconfig)
    assert not kube.can_i(SA, verb, "", "secrets")
    assert not kube.can_i(SA, verb, "", "secrets", ns="shop")


@pytest.mark.parametrize("verb", ["get", "create", "update"])
def test_controller_can_hold_its_lease_but_only_in_its_namespace(installed: None,
                                                                 kubeconfig: Path,
                                                                 verb: str) -> None:
    kube = Kube(kubeconfig)
    assert kube.can_i(SA, verb, "coordination.k8s.io", "leases", ns="canary-system")
    assert not kube.can_i(SA, "update", "coordination.k8s.io", "leases", ns="kube-system")


@pytest.mark.parametrize(("verb", "resource"), [("update", "canaries"), ("patch", "canaries"),
                                                ("delete", "canaries")])
def test_controller_never_writes_a_canary_spec(installed: None, kubeconfig: Path, verb: str,
                                              resource: str) -> None:
    assert not Kube(kubeconfig).can_i(SA, verb, "canary.dev", resource, ns="shop")
