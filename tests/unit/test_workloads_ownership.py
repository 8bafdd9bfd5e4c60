"""canary writes only what it owns: at write time too, not just when it first sees a name."""

from __future__ import annotations

from typing import Any

import pytest
from fake_kube import FakeKube

from canary.controller import workloads
from canary.errors import PermanentError

pytestmark = pytest.mark.unit

CANARY: dict[str, Any] = {
    "apiVersion": "canary.dev/v1alpha1",
    "kind": "Canary",
    "metadata": {"name": "pay", "namespace": "shop", "uid": "u-1"},
    "spec": {"service": {"port": 80}},
}


def test_a_service_taken_over_by_someone_else_is_never_rewritten() -> None:
    kube = FakeKube()
    workloads.ensure_services(kube, CANARY)  # ours
    legacy = {"metadata": {"name": "pay-canary", "namespace": "shop"}, "spec": {"selector": {}}}
    kube.services[("shop", "pay-canary")] = legacy  # deleted and recreated by another team
    with pytest.raises(PermanentError, match="Service shop/pay-canary already exists and is not"):
        workloads.ensure_services(kube, CANARY)
    assert kube.services[("shop", "pay-canary")] is legacy
