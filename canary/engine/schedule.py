"""When the engine wants to be called again: the soonest of the next metric or webhook
due, the end of a timed pause, the progress deadline, a readiness poll, the deploy window
opening (or a blackout ending), a delayed scale-down of N-canary and the end of a bake.

Waiting for N-primary to be ready (while initializing, and while promoting, also past the
progress deadline) polls every POLL_SECONDS; the call that records a promotion asks to
be called again at once, to apply it.
"""

from __future__ import annotations

from canary.api.durations import parse_duration
from canary.api.status import CanaryStatus, Phase
from canary.engine.bake import bake_left
from canary.engine.clock import seconds_since
from canary.engine.hooks import WAITING_FOR_CONFIRMATION, next_webhook_seconds
from canary.engine.tasks import next_due_seconds
from canary.engine.transitions import (
    METRICS_UNAVAILABLE,
    Context,
    deadline_left,
    evidence_clock,
    initializing,
)
from canary.engine.windows import blackout_at, blackout_end, next_open

# Readiness is re-checked this often even if no watch event reports it.
POLL_SECONDS = 5.0
# An invalid spec mid-rollout is re-checked this often: a missing template may appear
# without any change to the Canary itself.
INVALID_RECHECK_SECONDS = 60.0
SETTLED = (Phase.IDLE, Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED)


def requeue_after(ctx: Context, status: CanaryStatus, *, invalid: bool) -> float | None:
    """Seconds until step() has something to do for `status`, the decision's new status;
    0 means right away, None means only when something changes (settled phases, or a
    pause that waits for a request and has no metrics to measure or webhooks to call)."""
    waits = [_requeue_after(ctx, status, invalid=invalid)]
    if not invalid:
        canary = ctx.canary.model_copy(update={"status": status})
        ready = ctx.obs.canary_ready
        waits.append(next_webhook_seconds(canary, ctx.templates, ctx.now, canary_ready=ready))
        if status.canary_scale_down_at is not None:
            waits.append(max(0.0, -(seconds_since(status.canary_scale_down_at, ctx.now) or 0.0)))
    known = [w for w in waits if w is not None]
    return min(known) if known else None


def _requeue_after(ctx: Context, status: CanaryStatus, *, invalid: bool) -> float | None:
    if initializing(status) and status.stable_revision is not None:
        # N-primary exists but the route does not point at it yet: poll its readiness.
        return INVALID_RECHECK_SECONDS if invalid else POLL_SECONDS
    if status.phase in SETTLED:
        return None
    if invalid:
        return INVALID_RECHECK_SECONDS
    if status.phase is Phase.WAITING and status.reason == WAITING_FOR_CONFIRMATION:
        return None  # its webhooks are asked each interval, timed by next_webhook_seconds
    if status.phase is Phase.WAITING:
        return _waiting_wait(ctx)
    if status.phase is Phase.PROMOTING:
        if ctx.canary.status.phase is not Phase.PROMOTING:
            return 0.0  # just recorded: apply it (PromoteStable) right away
        left = deadline_left(ctx, status.step_started_at)
        return min(POLL_SECONDS, left) if left > 0 else POLL_SECONDS
    canary = ctx.canary.model_copy(update={"status": status})
    waits = [next_due_seconds(canary, ctx.templates, ctx.now)]
    if status.phase is Phase.BAKING:
        # Still baking past its end means the metrics are not answering: the next
        # measurement decides, not the clock.
        left = bake_left(ctx, status)
        waits.append(left if left > 0 else None)
    elif status.phase is Phase.PAUSED:
        if status.reason == METRICS_UNAVAILABLE:
            waits.append(deadline_left(ctx, status.paused_at))
    elif status.metrics_unavailable_intervals == 0:
        # While metrics are unavailable a step holds (live.live): only the next
        # measurement can move it, whatever its timer says.
        waits.append(_step_wait(ctx, status))
    known = [w for w in waits if w is not None]
    return max(0.0, min(known)) if known else None


def _step_wait(ctx: Context, status: CanaryStatus) -> float | None:
    """Seconds until the current step of a Progressing rollout can move on its own."""
    before = ctx.canary.status
    moved = (status.phase, status.current_step_index, status.step_started_at)
    if moved != (before.phase, before.current_step_index, before.step_started_at):
        return 0.0  # a new step, phase or step clock: evaluate it right away
    index = status.current_step_index or 0
    if index >= len(ctx.steps):
        return None  # promotion waits for background metrics, timed by next_due_seconds
    current = ctx.steps[index]
    if current.set_weight is not None:
        return min(POLL_SECONDS, deadline_left(ctx, evidence_clock(status)))
    if current.pause is not None and current.pause.duration is not None:
        elapsed = seconds_since(status.step_started_at, ctx.now) or 0.0
        return parse_duration(current.pause.duration) - elapsed
    return None  # analysis steps wait for metrics, timed by next_due_seconds


def _waiting_wait(ctx: Context) -> float:
    """Seconds until the window next opens, or until the blackout holding now ends if
    that is sooner (the weekly window may still be closed then: the reason changes)."""
    window = ctx.canary.spec.deploy_window
    if window is None:
        return 0.0
    wake = next_open(window, ctx.now)
    blackout = blackout_at(window, ctx.now)
    if blackout is not None:
        wake = min(wake, blackout_end(blackout))
    return (wake - ctx.now).total_seconds()
