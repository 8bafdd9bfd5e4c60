"""Session fixtures: one real control plane and one real Prometheus per test run.

Unit tests never touch these fixtures, so `pytest tests/unit` starts nothing.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from canary.sandbox import crds
from canary.sandbox.controlplane import ControlPlane, binary_versions
from canary.sandbox.prometheus import Prometheus
from canary.sandbox.tools import kubectl_path

REPO = Path(__file__).resolve().parent.parent


def pytest_report_header(config: pytest.Config) -> str:
    return binary_versions()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The directory decides the tier, so a test can't forget its marker.
    for item in items:
        for tier in ("unit", "integration", "e2e"):
            if f"{os.sep}tests{os.sep}{tier}{os.sep}" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, tier))


def _record_pids(pids: list[int]) -> None:
    """Lets test_no_leftovers.py check, from outside, that a run cleans up after itself."""
    if path := os.environ.get("CANARY_TEST_PIDS"):
        with open(path, "a") as fh:
            fh.writelines(f"{pid}\n" for pid in pids)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.start()
    _record_pids(plane.pids)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path):
    """Run the real kubectl v1.35 against the sandbox: kubectl("get", "pods")."""

    def run(
        *args: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, KUBECONFIG=str(kubeconfig)) | (env or {})
        out = subprocess.run(
            [str(kubectl_path()), *args],
            capture_output=True,
            text=True,
            input=input,
            env=full_env,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{out.stderr}")
        return out

    return run


@pytest.fixture(scope="session")
def gateway_crds(kubectl) -> Path:
    """The official Gateway API CRDs, installed so the API server validates HTTPRoutes."""
    path = crds.ensure(crds.GATEWAY_API)
    kubectl("apply", "--server-side", "-f", str(path))
    _established(kubectl, "httproutes.gateway.networking.k8s.io")
    return path


def _established(kubectl: Callable[..., subprocess.CompletedProcess[str]], name: str) -> None:
    """Wait until the API server serves the CRD. `kubectl wait` fails at once, instead of
    waiting, while the new CRD has no status conditions at all yet: ask again."""
    deadline = time.monotonic() + 60
    while True:
        out = kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}",
                      check=False)
        if out.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"CRD {name} never became Established:\n{out.stderr}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def istio_crds(kubectl) -> str:
    """The official Istio VirtualService CRD (only that kind), so the API server validates
    what the Istio router writes."""
    name = "virtualservices.networking.istio.io"
    kubectl("apply", "--server-side", "-f", "-", input=crds.one_crd(crds.ISTIO, name))
    _established(kubectl, name)
    return name


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    prom.start()
    _record_pids([prom.pid] if prom.pid else [])
    try:
        yield prom
    finally:
        prom.stop()


_namespaces = itertools.count(1)


@pytest.fixture
def namespace(kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, so tests never see each other's objects."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    name = f"t{next(_namespaces)}-{slug}"[:50].strip("-")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
