"""Carrying out the engine's decision on the cluster: router weights, the owned
Deployments and Services, taking the user's Deployment over.

Every call here is idempotent, so a reconcile killed half-way is simply repeated."""

from __future__ import annotations

import contextlib

from canary.api import naming
from canary.api.canary import Canary
from canary.controller import handback, workloads
from canary.controller.logs import reconcile_log as log
from canary.engine.actions import (
    Decision,
    EmitEvent,
    EnsureCanary,
    InitializeStable,
    PromoteStable,
    ScaleDownCanary,
    SetWeight,
)
from canary.errors import CanaryError, TransientError
from canary.kube.errors import NotFound
from canary.kube.port import KubePort, Obj
from canary.routers import TrafficRouter, router_for


def apply_actions(
    kube: KubePort,
    obj: Obj,
    canary: Canary,
    decision: Decision,
    target: workloads.Target | None,
    primary: Obj | None,
) -> None:
    router = None
    for action in decision.actions:
        if isinstance(action, EmitEvent):
            continue  # sent after the status write
        router = router or router_for(canary, kube)
        if isinstance(action, SetWeight):
            router.set_weight(canary, action.weight)
        elif isinstance(action, ScaleDownCanary):
            dep = naming.canary_deployment(canary.metadata.name)
            with contextlib.suppress(NotFound):  # never created: nothing to scale down
                kube.scale_deployment(obj["metadata"]["namespace"], dep, 0)
        elif isinstance(action, InitializeStable | EnsureCanary | PromoteStable):
            _apply_workload(kube, obj, canary, action, target, primary, router)


def converge_route(kube: KubePort, canary: Canary, weight: int) -> int | None:
    """Make the data plane carry the weight the status records; return the weight it
    carries then (None if that could not be read), for status.routeWeight.

    A kill between a router write and the status write, or a hand edit of the route,
    leaves the two apart; the status is the truth, so the route follows it."""
    router = router_for(canary, kube)
    reading = router.read(canary, weight)
    if reading.in_sync:
        return reading.carried
    log.info(
        "%s: route out of step with status; setting canary weight %d%%",
        canary.metadata.name,
        weight,
    )
    router.set_weight(canary, weight)
    try:
        return router.get_weight(canary)
    except CanaryError as exc:  # the route is right; only the figure for the status is missing
        log.warning("%s: reading the route's weight back: %s", canary.metadata.name, exc)
        return None


def _apply_workload(
    kube: KubePort,
    obj: Obj,
    canary: Canary,
    action: InitializeStable | EnsureCanary | PromoteStable,
    target: workloads.Target | None,
    primary: Obj | None,
    router: TrafficRouter,
) -> None:
    if target is None or target.revision != action.revision:
        raise TransientError(
            f"target Deployment {canary.spec.target_ref.name} is no longer at revision "
            f"{action.revision}; deciding again"
        )
    total = workloads.desired_total(target, primary)
    if isinstance(action, EnsureCanary):
        replicas = router.canary_replicas(total)
        workloads.apply_deployment(kube, obj, "canary", target, replicas, total)
    else:
        workloads.ensure_services(kube, obj)
        workloads.apply_deployment(kube, obj, "stable", target, total, total)


def handoff_target(kube: KubePort, obj: Obj, target: workloads.Target | None) -> None:
    """Once the primary serves, the user's Deployment stops running its own pods."""
    if target and target.replicas:
        ns, name = obj["metadata"]["namespace"], obj["spec"]["targetRef"]["name"]
        handback.take_over(kube, ns, name, target.replicas)
