"""Who may write what on a Canary, decided by the real API server (manifests/admission.yaml).

alice may steer (ClusterRole canary-steer), bob may only look (canary-view), carol may
edit (canary-edit). alice is a ServiceAccount so that the canary CLI, which cannot
impersonate, can run as her with a real token; kubectl impersonates all three.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from canary.controller.observe import parse_request
from canary.engine.actions import ManualRequest
from canary.kube.client import Kube

CANARY = """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: checkout}
spec:
  targetRef: {kind: Deployment, name: checkout}
  service: {port: 80, targetPort: 8080}
  steps:
    - setWeight: 10
    - pause: {}
"""
AT = "2024-05-06T09:59:55+00:00"
NOT_CANONICAL = "is not in the form the canary CLI writes"
STEER_ONLY = "you may steer this rollout"


@pytest.fixture
def team(installed: None, kubectl, namespace: str) -> str:
    """The Canary, and alice, bob and carol bound in its namespace; returns alice's name."""
    kubectl("apply", "-n", namespace, "-f", "-", input=CANARY)
    kubectl("create", "serviceaccount", "alice", "-n", namespace)
    alice = f"system:serviceaccount:{namespace}:alice"
    for role, subject in [
        ("canary-steer", f"--serviceaccount={namespace}:alice"),
        ("canary-view", "--user=bob"),
        ("canary-edit", "--user=carol"),
    ]:
        kubectl("create", "rolebinding", role, "-n", namespace, f"--clusterrole={role}", subject)
    return alice


def as_user(kubectl, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return kubectl(f"--as={user}", *args, check=False)


def annotate(kubectl, user: str, namespace: str, value: str) -> subprocess.CompletedProcess[str]:
    return as_user(
        kubectl,
        user,
        "annotate",
        "--overwrite",
        "-n",
        namespace,
        "canary/checkout",
        f"canary.dev/request={value}",
    )


def patch(kubectl, user: str, namespace: str, body: dict) -> subprocess.CompletedProcess[str]:
    return as_user(
        kubectl,
        user,
        "patch",
        "canary/checkout",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(body),
    )


def canonical(user: str, rid: str = "r1") -> str:
    body = {"id": rid, "action": "abort", "full": False, "user": user, "at": AT}
    return json.dumps(body, separators=(",", ":"))


def current_request(kubectl, namespace: str) -> str | None:
    canary = json.loads(kubectl("get", "canary", "checkout", "-n", namespace, "-o", "json").stdout)
    return (canary["metadata"].get("annotations") or {}).get("canary.dev/request")


def token_kubeconfig(kubectl, kubeconfig: Path, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount alice (TokenRequest)."""
    token = kubectl("create", "token", "alice", "-n", namespace, "--duration=10m").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "alice", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "alice"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_cli_request_carries_the_user_the_api_server_authenticated(
    team: str, kubectl, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    alice_config = token_kubeconfig(kubectl, kubeconfig, namespace, tmp_path / "alice")
    command = ["abort", "checkout", "-n", namespace, "--kubeconfig", str(alice_config)]
    cli = subprocess.Popen(
        [sys.executable, "-m", "canary", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (raw := current_request(kubectl, namespace)) is None:
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the CLI never wrote its request"
            time.sleep(0.2)
        request = parse_request({"canary.dev/request": raw}, None, dt.datetime.now(dt.UTC))
        assert isinstance(request, ManualRequest), request
        assert (request.action, request.user) == ("abort", team)
        # Play the controller: consume the request, so the CLI finishes.
        kube = Kube(kubeconfig)
        version = kube.get_canary(namespace, "checkout")["metadata"]["resourceVersion"]
        consumed = {"lastRequestId": request.id, "lastRequestOutcome": "Applied"}
        kube.patch_canary_status(namespace, "checkout", consumed, version)
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert cli.returncode == 0, out + err
    assert f"abort {namespace}/checkout: done" in out


def test_a_forged_user_is_rejected_by_the_api_server(team: str, kubectl, namespace: str) -> None:
    forged = canonical("admin@prod").replace(AT, "1970-01-01T00:00:00+00:00")
    out = annotate(kubectl, team, namespace, forged)
    assert out.returncode != 0
    assert f'its "user" must be "{team}"' in out.stderr
    assert "Fix: send the request with `canary" in out.stderr
    assert current_request(kubectl, namespace) is None
    # Not even cluster-admin (this kubeconfig is in system:masters) may speak for alice.
    request = f"canary.dev/request={canonical(team)}"
    out = kubectl("annotate", "-n", namespace, "canary/checkout", request, check=False)
    assert out.returncode != 0 and 'its "user" must be "canary-admin"' in out.stderr


@pytest.mark.parametrize(
    "trick",
    [
        # JSON parsers keep the last of two keys
        '{"id":"r1","action":"abort","full":false,"user":"ALICE","at":"'
        + AT
        + '","user":"admin@prod"}',
        # "\u0075ser" is "user" once parsed
        '{"id":"r1","action":"abort","full":false,"\\u0075ser":"admin@prod","user":"ALICE",'
        '"at":"' + AT + '"}',
        # the same request, spaced like json.dumps writes it
        '{"id": "r1", "action": "abort", "full": false, "user": "ALICE", "at": "' + AT + '"}',
        '{"id":"r1","action":"abort","full":false,"user":"ALICE"}',
    ],
)
def test_duplicate_keys_escapes_and_other_forms_are_rejected(
    team: str, kubectl, namespace: str, trick: str
) -> None:
    out = annotate(kubectl, team, namespace, trick.replace("ALICE", team))
    assert out.returncode != 0
    assert NOT_CANONICAL in out.stderr and "Fix: " in out.stderr
    assert current_request(kubectl, namespace) is None


def test_alice_steers_in_her_own_name_but_cannot_change_anything_else(
    team: str, kubectl, namespace: str
) -> None:
    assert annotate(kubectl, team, namespace, canonical(team)).returncode == 0
    spec = {"spec": {"progressDeadlineSeconds": 60}}
    attempts = [
        patch(kubectl, team, namespace, spec),
        patch(kubectl, team, namespace, {"metadata": {"labels": {"team": "alice"}}}),
        patch(kubectl, team, namespace, {"metadata": {"annotations": {"note": "mine"}}}),
        patch(kubectl, team, namespace, {"metadata": {"finalizers": ["example.com/keep"]}}),
        # a spec change slipped in with a proper request
        patch(
            kubectl,
            team,
            namespace,
            {"metadata": {"annotations": {"canary.dev/request": canonical(team, "r2")}}, **spec},
        ),
    ]
    for out in attempts:
        assert out.returncode != 0
        assert STEER_ONLY in out.stderr and "canary-edit" in out.stderr, out.stderr
    assert current_request(kubectl, namespace) == canonical(team)


def test_bob_who_may_only_look_cannot_send_a_request(team: str, kubectl, namespace: str) -> None:
    assert as_user(kubectl, "bob", "get", "canary", "checkout", "-n", namespace).returncode == 0
    out = annotate(kubectl, "bob", namespace, canonical("bob"))
    assert out.returncode != 0
    assert 'User "bob" cannot patch resource "canaries"' in out.stderr  # RBAC, before the policy


def test_carol_the_editor_changes_spec_and_still_steers_only_as_herself(
    team: str, kubectl, namespace: str
) -> None:
    out = patch(kubectl, "carol", namespace, {"spec": {"progressDeadlineSeconds": 60}})
    assert out.returncode == 0, out.stderr
    assert annotate(kubectl, "carol", namespace, canonical("carol")).returncode == 0
    out = annotate(kubectl, "carol", namespace, canonical(team, "r2"))
    assert out.returncode != 0 and 'its "user" must be "carol"' in out.stderr
