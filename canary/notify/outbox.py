"""The outbox in the Canary's status: what to announce, and how far each sink has got.

Exactly once, even across restarts and leader changes:

1. The reconcile that decides a transition adds its notification to
   ``status.notifications`` in the SAME status write as the transition (:func:`stamp`),
   with every routed sink Pending. That write is guarded by the resourceVersion: if it
   fails, the transition was not recorded either, and the next reconcile decides afresh.
   If it succeeds, the transition is never decided again, so it is never stamped again.
2. The leader's dispatcher sends what is Pending and records Sent or Failed per sink with
   its own guarded status patch. A new leader (or a restarted one) sends only what is
   still Pending.

What remains: a crash (or a lost status write) between a receiver taking the POST and the
Sent being written sends that one message again after the restart. The id is the same
both times, so a receiver that keeps the ids it has seen (CloudEvents' ``id``) drops it.

Pure functions on the status; the engine's events say what happened, and only the
transitions below are announced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

from canary.api.status import (
    CanaryStatus,
    DeliveryState,
    NotificationRecord,
    Phase,
    SinkDelivery,
)
from canary.engine.actions import Decision, EmitEvent
from canary.engine.bake import BAKE_FINISHED
from canary.engine.clock import to_iso, utc
from canary.engine.transitions import (
    INCONCLUSIVE,
    METRICS_UNAVAILABLE,
    NOT_ENOUGH_EVIDENCE,
    PAUSED_AT_STEP,
    PAUSED_BY_USER,
    PROMOTED,
    ROLLOUT_STARTED,
    UNDONE,
)
from canary.notify.base import Notification, Trigger

MAX_RECORDS = 10
"""Entries the status keeps: the newest, once delivered; Pending ones go last."""

# Events that end a step without a phase change (steps.py, requests.py).
STEP_REASONS = frozenset({"WeightSet", "PauseEnded", "AnalysisPassed", "StepPromoted"})
PAUSE_REASONS = frozenset(
    {PAUSED_AT_STEP, PAUSED_BY_USER, INCONCLUSIVE, NOT_ENOUGH_EVIDENCE, METRICS_UNAVAILABLE}
)


def trigger_of(event: EmitEvent, after: CanaryStatus) -> Trigger | None:
    """The trigger `event` stands for, if any.

    A phase change's event carries the new status.reason (Draft.enter); an event whose
    reason the status does not carry is about a phase that goes on (say, metrics lost
    during a pause that keeps its own reason) and announces nothing.
    """
    if event.reason in STEP_REASONS:
        return Trigger.STEP_ADVANCED
    if event.reason == BAKE_FINISHED:
        return Trigger.BAKE_FINISHED
    if event.reason != after.reason:
        return None
    if after.phase is Phase.PROGRESSING and event.reason == ROLLOUT_STARTED:
        return Trigger.ROLLOUT_STARTED
    if after.phase is Phase.PAUSED and event.reason in PAUSE_REASONS:
        return Trigger.PAUSED
    if after.phase is Phase.ROLLED_BACK:
        return Trigger.UNDO if event.reason == UNDONE else Trigger.ROLLED_BACK
    if after.phase is Phase.SUCCEEDED and event.reason == PROMOTED:
        return Trigger.PROMOTED
    return None


def notification_id(uid: str, previous: str, trigger: Trigger, reason: str, at: str) -> str:
    """The same recorded transition always has the same id. `previous` (the newest id in
    the outbox) and `at` (to the microsecond) tell apart two alike transitions in one
    second, e.g. a pause, a resume and the same pause again."""
    key = "\x00".join((uid, previous, trigger.value, reason, at))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def announced(
    uid: str, decision: Decision, now: datetime
) -> list[tuple[Trigger, NotificationRecord]]:
    """The notifications `decision` calls for, without sinks yet."""
    after = decision.status
    previous = after.notifications[-1].id if after.notifications else ""
    out: list[tuple[Trigger, NotificationRecord]] = []
    for i, action in enumerate(decision.actions):
        if not isinstance(action, EmitEvent) or (trigger := trigger_of(action, after)) is None:
            continue
        exact = f"{utc(now).isoformat()}#{i}"
        record = NotificationRecord(
            id=notification_id(uid, previous, trigger, action.reason, exact),
            trigger=trigger.value,
            reason=action.reason,
            phase=after.phase,
            revision=after.canary_revision,
            message=action.message,
            time=to_iso(now),
        )
        out.append((trigger, record))
    return out


def stamp(status: CanaryStatus, records: list[NotificationRecord]) -> CanaryStatus:
    """`status` with `records` added, keeping at most MAX_RECORDS: delivered ones go first,
    oldest first, and a Pending one only when the outbox holds nothing else."""
    if not records:
        return status
    kept = [*status.notifications, *records]
    while len(kept) > MAX_RECORDS:
        done = next((r for r in kept if not any(pending_sinks(r))), kept[0])
        kept.remove(done)
    return status.model_copy(update={"notifications": kept})


def pending_sinks(record: NotificationRecord) -> Iterator[SinkDelivery]:
    return (s for s in record.sinks if s.state is DeliveryState.PENDING)


def mark(
    records: list[NotificationRecord],
    record_id: str,
    sink: str,
    state: DeliveryState,
    attempts: int,
    error: str | None = None,
) -> list[NotificationRecord] | None:
    """`records` with one sink's delivery settled; None when there is nothing to change
    (the entry left the outbox, or another writer settled it already)."""
    changed = False
    out = []
    for record in records:
        if record.id == record_id:
            sinks = []
            for delivery in record.sinks:
                if delivery.name == sink and delivery.state is DeliveryState.PENDING:
                    update = {"state": state, "attempts": attempts, "error": error}
                    delivery = delivery.model_copy(update=update)
                    changed = True
                sinks.append(delivery)
            record = record.model_copy(update={"sinks": sinks})
        out.append(record)
    return out if changed else None


def notification(namespace: str, name: str, record: NotificationRecord) -> Notification:
    return Notification(
        id=record.id,
        trigger=Trigger(record.trigger),
        namespace=namespace,
        name=name,
        revision=record.revision,
        phase=record.phase.value,
        reason=record.reason,
        message=record.message,
        time=record.time,
    )
