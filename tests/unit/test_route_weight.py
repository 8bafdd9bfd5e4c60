"""status.routeWeight: the weight the data plane carries, next to canaryWeight, the weight
desired. With replica routing the Service splits by ready pods, so the two differ while
pods start and where the replicas cannot split finely enough (1 of 4 is 25%, not 10%)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from fake_kube import FakeKube, canary_object, pod_template, user_deployment

from canary.api import naming
from canary.controller.reconciler import Controller
from canary.errors import TransientError
from canary.kube.port import Obj
from canary.routers.replicas import ReplicaRouter

pytestmark = pytest.mark.unit

NS, NAME = "default", "shop"
KEY = f"{NS}/{NAME}"
NOW = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)


def _template(image: str) -> Obj:
    return pod_template(NAME, image)


def _status(kube: FakeKube) -> dict[str, Any]:
    return kube.canaries[(NS, NAME)].get("status") or {}


def _status_writes(kube: FakeKube) -> int:
    return sum(call.verb == "patch status" for call in kube.calls)


@pytest.fixture
def world() -> tuple[FakeKube, Controller]:
    """A replica-routed Canary of 4 replicas, v1 stable and v2 just shipped."""
    kube = FakeKube()
    kube.user_apply_deployment(NS, user_deployment(NS, NAME, 4, _template("demo/shop:v1")))
    kube.seed_canary(canary_object(NS, NAME))
    ctl = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    ctl.reconcile_key(KEY)
    kube.kubelet()
    ctl.reconcile_key(KEY)
    assert _status(kube)["reason"] == "Initialized"
    kube.user_set_template(NS, NAME, _template("demo/shop:v2"))
    return kube, ctl


def _paused_at_10(kube: FakeKube, ctl: Controller) -> None:
    """Paused at setWeight 10, the canary pod scaled up but not ready yet."""
    ctl.reconcile_key(KEY)  # the rollout starts: N-canary at 0 replicas
    kube.kubelet()
    for _ in range(3):
        ctl.reconcile_key(KEY)
        if _status(kube).get("phase") == "Paused":
            return
    raise AssertionError(f"not paused: {_status(kube)}")


def test_the_status_records_what_the_ready_pods_carry(world: tuple[FakeKube, Controller]) -> None:
    kube, ctl = world
    assert _status(kube)["routeWeight"] == 0  # stable serves everything
    _paused_at_10(kube, ctl)
    # The canary pod is still starting: the Service sends it nothing yet.
    assert (_status(kube)["canaryWeight"], _status(kube)["routeWeight"]) == (10, 0)
    kube.kubelet()
    ctl.reconcile_key(KEY)
    # 1 canary pod of 4 ready: 25%, however finely the step asked.
    assert (_status(kube)["canaryWeight"], _status(kube)["routeWeight"]) == (10, 25)


@pytest.fixture
def settled(world: tuple[FakeKube, Controller]) -> tuple[FakeKube, Controller]:
    """Paused at setWeight 10 with every pod ready: the route carries 25%."""
    kube, ctl = world
    _paused_at_10(kube, ctl)
    kube.kubelet()
    ctl.reconcile_key(KEY)
    assert _status(kube)["routeWeight"] == 25
    return kube, ctl


def test_a_weight_that_did_not_change_writes_no_status(
    settled: tuple[FakeKube, Controller],
) -> None:
    kube, ctl = settled
    writes = _status_writes(kube)
    for _ in range(3):
        ctl.reconcile_key(KEY)
    assert _status_writes(kube) == writes


def test_a_failed_read_keeps_the_last_weight_and_the_reconcile_goes_on(
    settled: tuple[FakeKube, Controller],
) -> None:
    kube, ctl = settled
    # Someone scales the canary by hand: the reconcile puts the split back, and then
    # cannot read what the pods carry.
    kube.scale_deployment(NS, naming.canary_deployment(NAME), 3)
    unreadable = mock.patch.object(
        ReplicaRouter, "get_weight", side_effect=TransientError("the API server is busy")
    )
    with unreadable:
        ctl.reconcile_key(KEY)
    assert kube.deployments[(NS, naming.canary_deployment(NAME))]["spec"]["replicas"] == 1
    assert (_status(kube)["phase"], _status(kube)["routeWeight"]) == ("Paused", 25)
