"""manifests/ installs with the real kubectl, and the controller's RBAC is exactly enough."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from canary.kube.client import Kube

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


def test_kubectl_get_canaries_shows_phase_weight_step_age(installed: None, kubectl,
                                                          namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY)
    kubectl("patch", "canary", "checkout", "-n", namespace, "--subresource=status",
            "--type=merge", "-p",
            json.dumps({"status": {"phase": "Progressing", "canaryWeight": 10,
                                   "currentStepIndex": 1, "phaseDisplay": "Invalid",
                                   "stepDisplay": "2/3"}}))
    table = kubectl("get", "canaries", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "WEIGHT", "STEP", "AGE"]
    # What the engine writes for kubectl: an invalid spec as the phase, the step 1-based.
    assert table[1].split()[:4] == ["checkout", "Invalid", "10", "2/3"]
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
    ("patch", "canary.dev", "canaries", None), ("update", "canary.dev", "canaries", "finalizers"),
    ("list", "canary.dev", "analysistemplates", None),
    ("list", "canary.dev", "clusteranalysistemplates", None),
    ("get", "canary.dev", "analysistemplates", None),
    ("get", "apps", "deployments", None), ("list", "apps", "deployments", None),
    ("watch", "apps", "deployments", None), ("create", "apps", "deployments", None),
    ("update", "apps", "deployments", None), ("patch", "apps", "deployments", None),
    ("get", "", "services", None), ("create", "", "services", None),
    ("patch", "", "services", None),
    ("create", "events.k8s.io", "events", None),
    ("patch", "events.k8s.io", "events", None),
    ("get", "gateway.networking.k8s.io", "httproutes", None),
    ("update", "gateway.networking.k8s.io", "httproutes", None),
    ("get", "networking.istio.io", "virtualservices", None),
    ("update", "networking.istio.io", "virtualservices", None),
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


@pytest.mark.parametrize("resource", ["configmaps", "secrets"])
def test_controller_gets_its_notification_config_only_in_its_namespace(
    installed: None, kubeconfig: Path, resource: str
) -> None:
    """The notification ConfigMap and the Secrets with the sinks' URLs, by name."""
    kube = Kube(kubeconfig)
    assert kube.can_i(SA, "get", "", resource, ns="canary-system")
    for verb in ("list", "watch", "update"):
        assert not kube.can_i(SA, verb, "", resource, ns="canary-system"), verb
    assert not kube.can_i(SA, "get", "", resource, ns="shop")


@pytest.mark.parametrize("verb", ["get", "create", "update"])
def test_controller_can_hold_its_lease_but_only_in_its_namespace(installed: None,
                                                                 kubeconfig: Path,
                                                                 verb: str) -> None:
    kube = Kube(kubeconfig)
    assert kube.can_i(SA, verb, "coordination.k8s.io", "leases", ns="canary-system")
    assert not kube.can_i(SA, "update", "coordination.k8s.io", "leases", ns="kube-system")


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_controller_can_neither_replace_nor_delete_a_canary(installed: None, kubeconfig: Path,
                                                            verb: str) -> None:
    assert not Kube(kubeconfig).can_i(SA, verb, "canary.dev", "canaries", ns="shop")


def test_controller_patches_only_its_finalizer_never_the_spec(installed: None, kubectl,
                                                             namespace: str) -> None:
    """RBAC cannot say "only the finalizer"; the admission policy does."""
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY)

    def patch(body: dict) -> subprocess.CompletedProcess[str]:
        return kubectl(f"--as={SA}", "patch", "canary", "checkout", "-n", namespace,
                       "--type=merge", "-p", json.dumps(body), check=False)

    added = patch({"metadata": {"finalizers": ["canary.dev/finalizer"]}})
    assert added.returncode == 0, added.stderr
    spec = patch({"spec": {"progressDeadlineSeconds": 60}})
    assert spec.returncode != 0
    assert "the canary controller may change only its own finalizer" in spec.stderr
    assert "Fix: " in spec.stderr
    theirs = patch({"metadata": {"finalizers": ["canary.dev/finalizer", "example.com/keep"]}})
    assert theirs.returncode != 0 and "the canary controller" in theirs.stderr
    removed = patch({"metadata": {"finalizers": None}})
    assert removed.returncode == 0, removed.stderr
    canary = json.loads(kubectl("get", "canary", "checkout", "-n", namespace, "-o", "json").stdout)
    assert canary["spec"]["progressDeadlineSeconds"] == 600  # the default, untouched
    assert not canary["metadata"].get("finalizers")
