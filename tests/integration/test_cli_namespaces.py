"""Against a real API server, `canary` picks the namespace as kubectl does: the kubeconfig
context's (not `default`), another context's with --context; an empty one suggests -A;
piped, its lines come out whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MESSAGE = "a message longer than any terminal: " + "m" * 200


@pytest.fixture(scope="module")
def installed(kubectl) -> None:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.canary.dev")


@pytest.fixture
def contexts(kubeconfig: Path, namespace: str, tmp_path: Path) -> Path:
    """The sandbox's kubeconfig, its current context set to `namespace`, plus a context
    `elsewhere` in namespace default."""
    config = yaml.safe_load(kubeconfig.read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    other = {"name": "elsewhere", "context": dict(current["context"])}
    current["context"]["namespace"] = namespace
    config["contexts"].append(other)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def checkout(installed: None, kubectl, namespace: str) -> None:
    canary = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "checkout", "namespace": namespace},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": "checkout"},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(canary))
    status = {"status": {"phase": "Paused", "canaryWeight": 10, "message": MESSAGE}}
    kubectl("patch", "canary", "checkout", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps(status))


def canary(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`canary ARGS | cat`: stdout is a pipe, as in CI or a shell pipeline."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    return subprocess.run([sys.executable, "-m", "canary", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)


def test_the_contexts_namespace_is_the_default(
    checkout: None, contexts: Path, namespace: str
) -> None:
    out = canary(contexts, "list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].startswith("checkout  Paused  10%")
    status = canary(contexts, "status", "checkout")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{namespace}/checkout  Paused\n")
    assert "  weight   10%\n" in status.stdout


def test_piped_lines_are_whole(checkout: None, contexts: Path, namespace: str) -> None:
    listed = canary(contexts, "list", "-A")
    assert any(line.startswith(namespace) and line.endswith(MESSAGE)
               for line in listed.stdout.splitlines())
    assert f"  message  {MESSAGE}\n" in canary(contexts, "status", "checkout").stdout


def test_another_context_and_an_empty_namespace(checkout: None, contexts: Path) -> None:
    out = canary(contexts, "list", "--context", "elsewhere")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "No Canaries found in namespace default; to look in every namespace: canary " \
        "list -A" in out.stderr
