"""Taking the user's Deployment over, and handing the app back when a Canary is deleted.

Once N-primary serves, the user's Deployment is scaled to 0; its replica count is kept in
an annotation on it, written in the same call. Every reconciled Canary carries FINALIZER,
so when it is deleted the API server keeps it until the controller has, in order:

1. scaled the user's Deployment back to that count and waited until it is available, so
   its pods can take the traffic;
2. had the router point traffic back where it went before the Canary set a weight;
3. waited spec.scaleDownDelaySeconds from that moment (status.routedBackAt), so that a
   data plane that applies the route late still finds N-primary's and N-canary's pods;
4. removed the finalizer. Kubernetes then garbage-collects N-primary, N-canary and their
   Services, which no traffic reaches any more.

Each step is idempotent and the state lives on the objects, so a crash repeats a step.
The user's Deployment runs whatever its template says: deleting a Canary mid-rollout
releases the new version at full size, which is what the Deployment asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from canary.api import naming
from canary.controller import workloads
from canary.engine.clock import seconds_since, to_iso
from canary.kube.port import KubePort, Obj

FINALIZER = "canary.dev/finalizer"
ANNOTATION_REPLICAS = "canary.dev/replicas-before-handoff"


def add_finalizer(kube: KubePort, obj: Obj) -> None:
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER in finalizers:
        return
    out = kube.set_canary_finalizers(
        meta["namespace"], meta["name"], [*finalizers, FINALIZER], meta["resourceVersion"]
    )
    meta["finalizers"] = out["metadata"].get("finalizers")
    meta["resourceVersion"] = out["metadata"]["resourceVersion"]


def take_over(kube: KubePort, ns: str, target: str, replicas: int) -> None:
    """Scale the user's Deployment to 0, remembering its replica count on it."""
    kube.scale_deployment(ns, target, 0, {ANNOTATION_REPLICAS: str(replicas)})


def hand_back(
    kube: KubePort,
    obj: Obj,
    route_back: Callable[[], None] | None,
    now: datetime,
    delay: float,
) -> str | None:
    """One pass over the steps; what it still waits for, or None once the finalizer is
    gone. `route_back` is the router's teardown; None when the spec names no usable one.
    `delay` is spec.scaleDownDelaySeconds."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    ns, name = meta["namespace"], meta["name"]
    target_name = (spec.get("targetRef") or {}).get("name")
    target = kube.get_deployment(ns, target_name) if isinstance(target_name, str) else None
    primary = kube.get_deployment(ns, naming.primary(name))
    if primary is None:
        delay = 0  # no pods of ours that traffic could still reach
    if target is not None:
        target_name = target["metadata"]["name"]
        replicas = _replicas_before(target, primary)
        if replicas is not None:
            if (target["spec"].get("replicas") or 0) == 0:
                kube.scale_deployment(ns, target_name, replicas)
                return f"scaling Deployment {target_name} back to {replicas} replicas"
            if not workloads.is_rolled_out(target):
                status = target.get("status") or {}
                return (
                    f"waiting for Deployment {target_name} to have "
                    f"{target['spec']['replicas']} available replicas "
                    f"(has {status.get('availableReplicas') or 0})"
                )
    if route_back is not None:
        route_back()
    left = _drain_left((obj.get("status") or {}).get("routedBackAt"), now, delay)
    if left is None:  # just routed back: start the clock, on the Canary
        stored = kube.patch_canary_status(
            ns, name, {"routedBackAt": to_iso(now)}, meta["resourceVersion"]
        )
        meta["resourceVersion"] = stored["metadata"]["resourceVersion"]
        left = delay
    if left > 0:
        return (
            f"traffic went back to {f'Deployment {target_name}' if target else 'its old route'}; "
            f"{naming.primary(name)} and {naming.canary_deployment(name)} keep running "
            f"{left:.0f}s more for data planes that apply the route late"
        )
    if target is not None and ANNOTATION_REPLICAS in (target["metadata"].get("annotations") or {}):
        replicas = target["spec"].get("replicas") or 0
        kube.scale_deployment(ns, target["metadata"]["name"], replicas, {ANNOTATION_REPLICAS: None})
    finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    kube.set_canary_finalizers(ns, name, finalizers, meta["resourceVersion"])
    return None


def _replicas_before(target: Obj, primary: Obj | None) -> int | None:
    """The count to give back, if canary took the Deployment over."""
    recorded = (target["metadata"].get("annotations") or {}).get(ANNOTATION_REPLICAS)
    if isinstance(recorded, str) and recorded.isdigit() and int(recorded) > 0:
        return int(recorded)
    # Taken over before the count was recorded on the Deployment: N-primary keeps it too.
    if primary is not None and (target["spec"].get("replicas") or 0) == 0:
        return naming.remembered_total(primary)
    return None


def _drain_left(routed_back_at: object, now: datetime, delay: float) -> float | None:
    """Seconds of the delay still to run; None when the clock has not started."""
    if delay <= 0:
        return 0.0
    if not isinstance(routed_back_at, str):
        return None
    try:
        return delay - (seconds_since(routed_back_at, now) or 0.0)
    except ValueError:
        return None  # unreadable (edited by hand?): start the clock again
