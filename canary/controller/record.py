"""Writing down what a reconcile decided: the status, in one write, then its Events and
metrics."""

from __future__ import annotations

import datetime as dt

from canary.api.status import CanaryStatus
from canary.controller.logs import reconcile_log as log
from canary.controller.telemetry import Metrics
from canary.engine.actions import Decision, EmitEvent
from canary.errors import CanaryError
from canary.kube.port import KubePort, Obj


def write(
    kube: KubePort,
    metrics: Metrics,
    obj: Obj,
    before: CanaryStatus,
    decision: Decision,
    now: dt.datetime,
    route_weight: int | None = None,
) -> None:
    """Write the status, then its Events and metrics: a Conflict on the write means
    deciding again, so Events and metrics only ever show what the status recorded.

    `route_weight` is what the router read after the actions; the engine cannot know it,
    so it is set here. None (not read) keeps the last reading."""
    status = decision.status
    if route_weight is not None:
        status = status.model_copy(update={"route_weight": route_weight})
    _write_status(kube, obj, status)
    meta, steps = obj["metadata"], (obj.get("spec") or {}).get("steps")
    count = len(steps) if isinstance(steps, list) else 0  # an invalid spec holds anything
    metrics.observe(meta["namespace"], meta["name"], count, before, decision.status, now)
    for action in decision.actions:
        if isinstance(action, EmitEvent):
            event(kube, obj, action.type, action.reason, action.message)


def event(kube: KubePort, obj: Obj, type_: str, reason: str, message: str) -> None:
    try:
        kube.emit_event(obj, type_, reason, message)
    except CanaryError as exc:  # an event is never worth failing a reconcile for
        log.warning("event %s for %s: %s", reason, obj["metadata"]["name"], exc)
    log.info(
        "%s/%s %s %s: %s",
        obj["metadata"]["namespace"],
        obj["metadata"]["name"],
        type_,
        reason,
        message,
    )


def _write_status(kube: KubePort, obj: Obj, status: CanaryStatus) -> None:
    meta = obj["metadata"]
    old = obj.get("status") or {}
    body: Obj = status.wire()
    if body == old:
        return
    # A merge patch keeps keys it does not mention: clear the ones that became unset.
    body |= {key: None for key in old if key not in body}
    kube.patch_canary_status(meta["namespace"], meta["name"], body, meta["resourceVersion"])
