"""The bake: the release watched after its promotion gate, the previous revision still warm.

With spec.bake set, passing the promotion gate enters phase Baking instead of Promoting:
one SetWeight(100 - holdback), and nothing else. N-primary keeps the previous revision
and serves the holdback; N-canary carries the new one. No Deployment changes, so going
back is the rollback every rollout already has: one SetWeight(0), N-canary scaled down
after spec.scaleDownDelaySeconds. Every move is one status change with at most one
router call, each idempotent: a crash between the router call and the status write
repeats the same decision (the gate still passes), never a different one.

Background analysis keeps measuring through the bake. Threshold metrics judge as before.
A comparison runs a test of its own over the bake's traffic (tasks.bake_step, the
MetricTask's `bake`): the rollout's pooled test holds minutes of evidence that the canary
was as good as stable, which a regression that starts after promotion (a cache that
fills, a leak) would first have to outweigh; at a 5% holdback that takes several times
longer. The bake's test spends its own maxFalseRollback, so a good release is rolled back
falsely with probability at most that in the rollout plus at most that in the bake.
With holdback 0 nothing serves the previous revision: comparisons are not measured
during the bake and threshold metrics alone judge.

A Fail (beyond failureLimit) rolls back (reason BakeFailed). A lack of Pass does not hold
the bake: the gate already passed. While the metrics are not answering, the bake does
not end on its timer: a release is never declared baked blind. The bake clock is
status.bakeStartedAt (and stepStartedAt, the window comparisons measure over), so a
restarted controller ends the bake on time.
"""

from __future__ import annotations

from canary.api.durations import format_duration, parse_duration
from canary.api.status import CanaryStatus, Phase
from canary.engine.actions import ManualRequest
from canary.engine.clock import seconds_since, to_iso
from canary.engine.hook_rules import roll_back_by_webhook, rollback_asked
from canary.engine.limits import erroring, failed
from canary.engine.tasks import active_tasks, statuses_by_key
from canary.engine.transitions import (
    Context,
    Draft,
    begin_promotion,
    command,
    requested_by,
    roll_back,
    route,
)

BAKING = "Baking"
BAKE_FAILED = "BakeFailed"
BAKE_FINISHED = "BakeFinished"  # an event of its own: notifications announce it


def promote_or_bake(ctx: Context, draft: Draft, request: ManualRequest | None = None) -> None:
    """The promotion gate passed (or a human passed it): bake first when spec.bake says so."""
    bake = ctx.canary.spec.bake
    if bake is None:
        begin_promotion(ctx, draft, request)
        return
    weight = 100 - bake.holdback
    route(draft, weight)
    now = to_iso(ctx.now)
    draft.update(
        current_step_index=len(ctx.steps), step_started_at=now, bake_started_at=now, paused_at=None
    )
    message = (
        f"baking revision {draft.status.canary_revision} for {bake.duration}: it serves "
        f"{weight}%, the previous revision {draft.status.stable_revision} {bake.holdback}%; "
        f"{command(ctx, 'abort')} goes back, {command(ctx, 'promote')} ends the bake"
    )
    draft.enter(Phase.BAKING, BAKING, message, audit=requested_by(request, ctx.now))


def baking(ctx: Context, draft: Draft) -> None:
    """Roll back on a Fail (or a rollback webhook's 2xx); promote once the bake's time is
    up and the metrics answer."""
    status = draft.status
    if asked := rollback_asked(ctx, draft):
        roll_back_by_webhook(ctx, draft, asked)
        return
    tasks = active_tasks(ctx.canary, ctx.templates, ctx.now)
    statuses = statuses_by_key(status.analysis)
    if bad := next((t for t in tasks if failed(t, statuses.get(t.key))), None):
        detail = f"the bake found a regression: {statuses[bad.key].reason}"
        roll_back(ctx, draft, BAKE_FAILED, detail)
        return
    left = bake_left(ctx, status)
    blind = status.metrics_unavailable_intervals > 0 or any(
        erroring(t, statuses.get(t.key)) for t in tasks
    )
    if left > 0:
        draft.say(f"baking revision {status.canary_revision}: {format_duration(left)} left")
    elif blind:
        draft.say(
            f"baking revision {status.canary_revision}: its time is up, but the metrics are "
            "not answering; the bake ends once they do"
        )
    else:
        after = f"the bake of revision {status.canary_revision} ended clean"
        draft.event("Normal", BAKE_FINISHED, after)
        begin_promotion(ctx, draft, after=after)


def bake_left(ctx: Context, status: CanaryStatus) -> float:
    """Seconds until the bake may end (0 or less: it is due; the spec's bake removed too)."""
    bake = ctx.canary.spec.bake
    if bake is None:
        return 0.0
    return parse_duration(bake.duration) - (seconds_since(status.bake_started_at, ctx.now) or 0.0)
