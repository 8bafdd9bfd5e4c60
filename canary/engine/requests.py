"""Manual requests from the CLI: promote, abort, pause, resume, retry, undo.

A request is consumed exactly once (status.last_request_id), and what became of it is
recorded next to it (last_request_outcome, last_request_message), for the CLI to report.
If it applies, it makes the call's one phase change (or step change), and that event
names who asked and when, for audit. If it does not apply in the current phase, it is
consumed anyway with a Normal "RequestIgnored" event saying why, so the CLI never waits
on a dead request.
"""

from __future__ import annotations

from collections.abc import Callable

from canary.api.naming import ANNOTATION_REQUEST
from canary.api.status import Phase, RequestOutcome
from canary.engine.actions import ManualRequest, RejectedRequest
from canary.engine.bake import promote_or_bake
from canary.engine.clock import to_iso
from canary.engine.draft import Draft
from canary.engine.tasks import weight_before
from canary.engine.transitions import (
    ABORTED,
    LIVE,
    METRICS_UNAVAILABLE,
    OUTSIDE_WINDOW,
    PAUSED_AT_STEP,
    PAUSED_BY_USER,
    RESUMED,
    UNDONE,
    Context,
    begin_promotion,
    command,
    leave_pause,
    metrics_paused,
    pause,
    requested_by,
    roll_back,
    route,
    start_rollout,
    step_label,
)

# Each handler applies the request and returns None, or returns why it does not apply.
Handler = Callable[[Context, Draft, ManualRequest], str | None]


def handle_request(ctx: Context, draft: Draft) -> bool:
    """Apply a pending request; True when one was consumed and took the call's move
    (applied or ignored). A rejected one is consumed too, but the rollout goes on in the
    same call: bad input must not cost a deadline or a rollback its turn."""
    request = _pending(ctx, draft)
    if request is None:
        return False
    if isinstance(request, RejectedRequest):
        _rejected(draft, request)
        return False
    why_not = _HANDLERS[request.action](ctx, draft, request)
    if why_not is None:
        _consume(draft, request.id, RequestOutcome.APPLIED)
    else:
        _ignored(ctx, draft, request, why_not)
    return True


def ignore_request(ctx: Context, draft: Draft, why: str) -> None:
    """Consume a pending request without applying it."""
    request = _pending(ctx, draft)
    if request is None:
        return
    if isinstance(request, RejectedRequest):
        _rejected(draft, request)
    else:
        _ignored(ctx, draft, request, why)


def _pending(ctx: Context, draft: Draft) -> ManualRequest | RejectedRequest | None:
    request = ctx.obs.request
    if request is None or request.id == draft.status.last_request_id:
        return None
    return request


def _consume(
    draft: Draft, request_id: str, outcome: RequestOutcome, why: str | None = None
) -> None:
    draft.update(
        last_request_id=request_id, last_request_outcome=outcome, last_request_message=why
    )


def _rejected(draft: Draft, request: RejectedRequest) -> None:
    _consume(draft, request.id, RequestOutcome.REJECTED, request.why)
    message = (
        f"request annotation {ANNOTATION_REQUEST} rejected, nothing changed: {request.why} "
        "(use `canary promote|abort|pause|resume|retry|undo`, which write it correctly)"
    )
    draft.event("Warning", "RequestRejected", message)


def _ignored(ctx: Context, draft: Draft, request: ManualRequest, why: str) -> None:
    _consume(draft, request.id, RequestOutcome.IGNORED, why)
    draft.event("Normal", "RequestIgnored", f"{requested_by(request, ctx.now)} ignored: {why}")


def _not_running(draft: Draft) -> str:
    return f"no rollout is in progress (phase {draft.status.phase})"


def _promote(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    """Complete the current step now (--full: promote now), resuming if paused."""
    status = draft.status
    if status.phase is Phase.PROMOTING:
        return "promotion is already under way"
    if status.phase is Phase.WAITING:
        waits = "the deploy window" if status.reason == OUTSIDE_WINDOW else "confirmation"
        return f"the rollout has not started: it waits for {waits}"
    if status.phase not in LIVE:
        return _not_running(draft)
    index = status.current_step_index or 0
    if request.full or status.phase is Phase.BAKING:
        begin_promotion(ctx, draft, request)  # --full skips the bake as well as the steps
        return None
    if index >= len(ctx.steps):
        promote_or_bake(ctx, draft, request)
        return None
    was_paused = status.phase is Phase.PAUSED
    weight = weight_before(ctx.steps, index + 1)  # a skipped setWeight step still applies
    if was_paused:
        leave_pause(ctx, draft, weight)
    else:
        route(draft, weight)
    draft.update(current_step_index=index + 1, step_started_at=to_iso(ctx.now))
    message = f"{step_label(ctx, index)} completed by request; canary weight {weight}%"
    if was_paused:
        draft.enter(Phase.PROGRESSING, RESUMED, message, audit=requested_by(request, ctx.now))
    else:
        message = f"{message} ({requested_by(request, ctx.now)})"
        draft.event("Normal", "StepPromoted", message)
        draft.say(message)
    return None


def _abort(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    if draft.status.phase is Phase.PROMOTING:
        return "promotion is already under way; the stable Deployment is being updated"
    if draft.status.phase not in (*LIVE, Phase.WAITING):
        return _not_running(draft)
    roll_back(ctx, draft, ABORTED, "aborted", request)
    return None


def _undo(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    """Back to the previous revision while its pods still serve (the steps, the bake):
    one router call. Once promoted, `canary undo` rolls the previous template out again
    itself (cli/undo.py): that is a Deployment change, not a request."""
    status = draft.status
    if status.phase is Phase.PROMOTING:
        return (
            "promotion is under way: the previous revision's pods are being replaced; once "
            f"it is done, {command(ctx, 'undo')} rolls the previous template out again"
        )
    if status.phase not in LIVE:
        return _not_running(draft)
    roll_back(ctx, draft, UNDONE, "undone", request)
    return None


def _pause(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    """Hold the rollout until `canary resume`.

    During a MetricsUnavailable pause the request turns it into a user pause (its clock
    and 0% weight kept), so that metrics answering again no longer resume it on their own.
    """
    status = draft.status
    if metrics_paused(status):
        label = step_label(ctx, status.current_step_index)
        message = (
            f"{label}: paused by request while metrics are unavailable; traffic stays with "
            f"stable until {command(ctx, 'resume')}"
        )
        draft.enter(Phase.PAUSED, PAUSED_BY_USER, message, audit=requested_by(request, ctx.now))
        return None
    if status.phase is Phase.PAUSED:
        return f"already paused ({status.reason})"
    if status.phase is Phase.BAKING:
        return (
            f"a bake is not paused; {command(ctx, 'promote')} ends it, "
            f"{command(ctx, 'abort')} rolls back"
        )
    if status.phase is not Phase.PROGRESSING:
        return _not_running(draft)
    label = step_label(ctx, status.current_step_index)
    message = f"{label}: paused by request; {command(ctx, 'resume')} continues"
    pause(ctx, draft, PAUSED_BY_USER, message, request=request)
    return None


def _resume(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    status = draft.status
    if status.phase is not Phase.PAUSED:
        return f"not paused (phase {status.phase})"
    label = step_label(ctx, status.current_step_index)
    if status.reason == PAUSED_AT_STEP:
        return f"{label} is a pause that waits for {command(ctx, 'promote')}"
    leave_pause(ctx, draft)
    message = f"{label} resumes at canary weight {draft.status.canary_weight}%"
    if status.reason == METRICS_UNAVAILABLE:
        message += "; metrics are still unavailable and the fail-safe may pause again"
    draft.enter(Phase.PROGRESSING, RESUMED, message, audit=requested_by(request, ctx.now))
    return None


def _retry(ctx: Context, draft: Draft, request: ManualRequest) -> str | None:
    status, target = draft.status, ctx.obs.target_revision
    if status.phase not in (Phase.ROLLED_BACK, Phase.FAILED):
        return f"only a rolled back or failed rollout can be retried (phase {status.phase})"
    if target is None:
        return f"Deployment {ctx.canary.spec.target_ref.name} not found"
    if target == status.stable_revision:
        return f"the target is the stable revision {target}; there is nothing to roll out"
    start_rollout(ctx, draft, target, request)
    return None


_HANDLERS: dict[str, Handler] = {
    "promote": _promote,
    "abort": _abort,
    "pause": _pause,
    "resume": _resume,
    "retry": _retry,
    "undo": _undo,
}
