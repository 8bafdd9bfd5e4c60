"""Every CLI error names the object and the fix, exits 2, and never shows a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from canary.sandbox.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]


def canary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canary", *args], capture_output=True, text=True, timeout=60
    )


def _no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stdout + out.stderr


def test_missing_kubeconfig(tmp_path: Path) -> None:
    out = canary("status", "checkout", "--kubeconfig", str(tmp_path / "nope"))
    assert out.returncode == 2
    assert "kubeconfig" in out.stderr and "Fix:" in out.stderr
    _no_traceback(out)


def test_missing_crd_says_how_to_install(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "bare").start()
    try:
        out = canary("list", "--kubeconfig", str(plane.kubeconfig))
    finally:
        plane.stop()
    assert out.returncode == 2
    assert "kubectl apply -k manifests/" in out.stderr
    _no_traceback(out)


@pytest.fixture
def installed(kubectl) -> None:
    kubectl("apply", "-k", str(REPO / "manifests"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.canary.dev")


@pytest.mark.parametrize("verb", ["status", "promote", "abort", "pause", "resume", "retry"])
def test_missing_canary_names_it_and_how_to_list(
    installed: None, kubeconfig: Path, namespace: str, verb: str
) -> None:
    out = canary(verb, "ghost", "-n", namespace, "--kubeconfig", str(kubeconfig))
    assert out.returncode == 2
    assert f"Canary {namespace}/ghost not found" in out.stderr
    assert "canary list" in out.stderr
    _no_traceback(out)


def test_bad_usage_exits_2(installed: None, kubeconfig: Path, namespace: str) -> None:
    out = canary(
        "deploy",
        "checkout",
        "-n",
        namespace,
        "--image",
        "no-equals-sign",
        "--timeout",
        "soon",
        "--kubeconfig",
        str(kubeconfig),
    )
    assert out.returncode == 2
    assert "--timeout" in out.stderr and "30s" in out.stderr
    _no_traceback(out)


def test_help_teaches() -> None:
    out = canary("deploy", "--help")
    assert out.returncode == 0
    for word in ("--image", "--wait", "exit 0 promoted", "--timeout", "--junit"):
        assert word in out.stdout
