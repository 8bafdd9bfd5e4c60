"""canary installed from manifests/ the way users do it, with its admission policy in force."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POLICY = "canary-requests"


def forged_canary(namespace: str) -> str:
    request = {
        "id": "probe",
        "action": "abort",
        "full": False,
        "user": "admin@prod",
        "at": "1970-01-01T00:00:00+00:00",
    }
    return json.dumps(
        {
            "apiVersion": "canary.dev/v1alpha1",
            "kind": "Canary",
            "metadata": {
                "name": "forged-probe",
                "namespace": namespace,
                "annotations": {"canary.dev/request": json.dumps(request, separators=(",", ":"))},
            },
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "checkout"},
                "service": {"port": 80},
                "steps": [{"setWeight": 10}],
            },
        }
    )


@pytest.fixture(scope="module")
def installed(kubectl) -> None:
    """`kubectl apply -k manifests/`, then wait until the API server enforces the admission
    policy: a new policy takes a moment to reach the admission plugin."""
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/canaries.canary.dev",
        "crd/analysistemplates.canary.dev",
        "crd/clusteranalysistemplates.canary.dev",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # A server-side dry run goes through admission and stores nothing.
        probe = kubectl(
            "create", "--dry-run=server", "-f", "-", input=forged_canary("default"), check=False
        )
        if probe.returncode != 0 and POLICY in probe.stderr:
            return
        time.sleep(0.2)
    pytest.fail(f"the ValidatingAdmissionPolicy {POLICY} was not enforced within 30s")
