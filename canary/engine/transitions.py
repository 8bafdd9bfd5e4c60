"""The moves a rollout can make, shared by the modules that decide what step() does.

Each move edits a Draft (the status being built plus the actions so far). A move that
changes the phase goes through Draft.enter(), which emits exactly one event; step() makes
at most one such move per call, so every phase change has exactly one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import Canary, Step
from canary.api.durations import format_duration
from canary.api.naming import cli_command
from canary.api.status import (
    LIVE,
    CanaryStatus,
    MetricStatus,
    Phase,
    Verdict,
)
from canary.engine.actions import (
    EnsureCanary,
    ManualRequest,
    Observations,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.clock import from_iso, seconds_since, shift, to_iso
from canary.engine.draft import Draft
from canary.engine.hooks import WAITING_FOR_CONFIRMATION, describe, results_by_name, unconfirmed
from canary.engine.limits import inconclusive
from canary.engine.tasks import active_tasks, statuses_by_key, weight_before
from canary.engine.windows import blackout_at, blackout_end, in_window, next_open

# status.reason values; events for phase changes use the same words.
INITIALIZING = "Initializing"
INITIALIZED = "Initialized"
ROLLOUT_STARTED = "RolloutStarted"
OUTSIDE_WINDOW = "OutsideDeployWindow"
BLACKOUT = "Blackout"
PAUSED_AT_STEP = "PausedAtStep"
PAUSED_BY_USER = "PausedByUser"
INCONCLUSIVE = "Inconclusive"
NOT_ENOUGH_EVIDENCE = "NotEnoughEvidence"
METRICS_UNAVAILABLE = "MetricsUnavailable"
RESUMED = "Resumed"
PROMOTING = "Promoting"
PROMOTION_SLOW = "PromotionSlow"
PROMOTED = "Promoted"
ANALYSIS_FAILED = "AnalysisFailed"
ABORTED = "Aborted"
UNDONE = "Undone"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
TARGET_MISSING = "TargetMissing"
ABANDONED = "Abandoned"
REVERTED = "Reverted"



def initializing(status: CanaryStatus) -> bool:
    """Stable is not serving yet: no revision recorded, or N-primary not yet ready at it."""
    return status.stable_revision is None or (
        status.phase is Phase.IDLE and status.reason == INITIALIZING
    )


def metrics_paused(status: CanaryStatus) -> bool:
    return status.phase is Phase.PAUSED and status.reason == METRICS_UNAVAILABLE


def held_back(steps: list[Step], status: CanaryStatus) -> bool:
    """A pause other than MetricsUnavailable whose traffic the metrics fail-safe took away.

    Outside the fail-safe, a rollout always carries the weight of its current step (the
    last setWeight before it), so a user, step or Inconclusive pause at 0% where its
    step's weight is above 0 can only be the fail-safe's doing (see live._while_paused).
    (After an edit of spec.steps mid-rollout this may misread a pause as held back; the
    only effect is that measurements are probes until the request that ends the pause.)
    """
    return (
        status.phase is Phase.PAUSED
        and status.reason != METRICS_UNAVAILABLE
        and status.canary_weight == 0
        and weight_before(steps, status.current_step_index or 0) > 0
    )


@dataclass(frozen=True)
class Context:
    canary: Canary
    templates: Mapping[str, AnalysisTemplateSpec]
    obs: Observations
    now: datetime

    @property
    def steps(self) -> list[Step]:
        return self.canary.spec.steps


def requested_by(request: ManualRequest | None, now: datetime) -> str:
    """Who asked for a move and when, for the audit trail in events; "" if nobody did."""
    if request is None:
        return ""
    who = request.user or "an unknown user"
    when = request.at or now
    if when.tzinfo is None:  # an annotation written without a zone; the CLI writes UTC
        when = when.replace(tzinfo=UTC)
    return f"{request.action} requested by {who} at {to_iso(when)}"


def command(ctx: Context, verb: str) -> str:
    """The command to `verb` this Canary, quoted for a status message."""
    meta = ctx.canary.metadata
    return f"`{cli_command(verb, meta.name, meta.namespace or 'default')}`"


def step_label(ctx: Context, index: int | None) -> str:
    index, total = index or 0, len(ctx.steps)
    return f"step {index + 1}/{total}" if index < total else f"after step {total}/{total}"


def why_closed(ctx: Context, revision: str) -> tuple[str, str] | None:
    """(status reason, message) when `revision` may not start now; None when it may."""
    window = ctx.canary.spec.deploy_window
    if window is None or in_window(window, ctx.now):
        return None
    opens = to_iso(next_open(window, ctx.now))
    blackout = blackout_at(window, ctx.now)
    if blackout is None:
        message = f"revision {revision} waits for the deploy window, which opens at {opens}"
        return OUTSIDE_WINDOW, message
    ends = to_iso(blackout_end(blackout))
    message = f'revision {revision} waits out the blackout "{blackout.reason}" until {ends}'
    # The weekly window, or another blackout, may hold it past this blackout's end.
    return BLACKOUT, message + (f"; it starts at {opens}" if opens != ends else "")


def start_rollout(
    ctx: Context, draft: Draft, revision: str, request: ManualRequest | None = None
) -> None:
    """Begin (or restart) the rollout of `revision` from step 0, or wait for the deploy
    window or a confirm-rollout webhook (hooks.py)."""
    live, weight = draft.status.phase in LIVE, draft.status.canary_weight
    # A release pushed on top of one still rolling out: say so, for `deploy --wait` users.
    replaced = draft.status.canary_revision if live and request is None else None
    # A revision that waited its turn keeps its webhooks' answers; any other start is new.
    waited = draft.status.phase is Phase.WAITING and draft.status.canary_revision == revision
    if weight > 0:
        draft.act(SetWeight(0))
    draft.update(
        canary_revision=revision,
        canary_weight=0,
        analysis=[],
        webhooks=draft.status.webhooks if waited else [],
        metrics_unavailable_intervals=0,
        paused_at=None,
        bake_started_at=None,
    )
    held = why_held(ctx, draft, revision)
    if held is not None:
        if live:
            retire_canary(ctx, draft)
        draft.update(current_step_index=None, step_started_at=None, rollout_started_at=None)
        reason, message = held
        if (draft.status.phase, draft.status.reason) == (Phase.WAITING, reason):
            draft.say(message)
        else:
            draft.enter(Phase.WAITING, reason, message, audit=requested_by(request, ctx.now))
        return
    draft.act(EnsureCanary(revision))
    now = to_iso(ctx.now)
    draft.update(current_step_index=0, step_started_at=now, rollout_started_at=now)
    message = f"rolling out revision {revision} (stable: {draft.status.stable_revision})"
    if replaced and replaced != revision:
        message += f"; it replaces revision {replaced} mid-rollout"
    draft.enter(Phase.PROGRESSING, ROLLOUT_STARTED, message, audit=requested_by(request, ctx.now))


def why_held(ctx: Context, draft: Draft, revision: str) -> tuple[str, str] | None:
    """Why `revision` may not start yet (reason, message): the deploy window, a blackout
    or a confirm-rollout webhook; None when nothing holds it."""
    closed = why_closed(ctx, revision)
    if closed is not None:
        return closed
    hooks = unconfirmed(ctx.canary, draft.status, "confirm-rollout")
    if not hooks:
        return None
    answers = describe(hooks, results_by_name(draft.status))
    message = f"revision {revision} waits for confirm-rollout webhooks to answer 2xx: {answers}"
    return WAITING_FOR_CONFIRMATION, message


def advance(ctx: Context, draft: Draft) -> None:
    index = (draft.status.current_step_index or 0) + 1
    draft.update(current_step_index=index, step_started_at=to_iso(ctx.now))


def begin_promotion(
    ctx: Context, draft: Draft, request: ManualRequest | None = None, *, after: str = ""
) -> None:
    """Record the decision to promote; the next call applies it (revisions.promoting).

    No PromoteStable here: the status saying Promoting must be written before N-primary
    takes the canary's template, so that a crash in between can never leave N-primary
    running the canary's revision while the status still calls the old one stable.
    Traffic stays where it is until N-primary is ready at the new revision.
    """
    revision = draft.status.canary_revision
    assert revision is not None  # only rollouts in progress promote
    draft.update(current_step_index=len(ctx.steps), step_started_at=to_iso(ctx.now), paused_at=None)
    message = f"promoting revision {revision}: updating the stable Deployment"
    if request is not None:
        message = f"manual promotion of revision {revision}: updating the stable Deployment"
    if after:
        message = f"{after}; {message}"
    draft.enter(Phase.PROMOTING, PROMOTING, message, audit=requested_by(request, ctx.now))


def roll_back(
    ctx: Context, draft: Draft, reason: str, detail: str, request: ManualRequest | None = None
) -> None:
    """All traffic back to stable with one router call, and the canary scaled down."""
    draft.act(SetWeight(0))
    retire_canary(ctx, draft)
    draft.update(canary_weight=0, paused_at=None)
    message = (
        f"rolled back revision {draft.status.canary_revision}: {detail}; "
        f"stable revision {draft.status.stable_revision} serves all traffic"
    )
    draft.enter(
        Phase.ROLLED_BACK, reason, message, warning=True, audit=requested_by(request, ctx.now)
    )


def retire_canary(ctx: Context, draft: Draft) -> None:
    """Traffic has left the canary (SetWeight(0) is among the actions): scale it down,
    after spec.scaleDownDelaySeconds. A gateway or mesh applies a route change a moment
    after it is written; pods scaled down at once would fail the requests it still sends
    them. scale_down_when_due() acts once the delay is over."""
    delay = ctx.canary.spec.scale_down_delay_seconds
    if delay == 0:
        draft.act(ScaleDownCanary())
        draft.update(canary_scale_down_at=None)
    else:
        draft.update(canary_scale_down_at=to_iso(ctx.now + timedelta(seconds=delay)))


def scale_down_when_due(ctx: Context, draft: Draft) -> None:
    """Scale N-canary down once its delay is over; a rollout that took it up again in
    the meantime (EnsureCanary) cancels the scale-down."""
    at = draft.status.canary_scale_down_at
    if at is None:
        return
    if draft.status.phase in LIVE or any(isinstance(a, EnsureCanary) for a in draft.actions):
        draft.update(canary_scale_down_at=None)
    elif (seconds_since(at, ctx.now) or 0.0) >= 0:
        draft.act(ScaleDownCanary())
        draft.update(canary_scale_down_at=None)


def pause(
    ctx: Context,
    draft: Draft,
    reason: str,
    message: str,
    *,
    warning: bool = False,
    request: ManualRequest | None = None,
) -> None:
    draft.update(paused_at=to_iso(ctx.now))
    draft.enter(
        Phase.PAUSED, reason, message, warning=warning, audit=requested_by(request, ctx.now)
    )


def route(draft: Draft, weight: int) -> None:
    """Send `weight`% to the canary, with a router call only if that changes anything."""
    if weight != draft.status.canary_weight:
        draft.act(SetWeight(weight))
    draft.update(canary_weight=weight)


def leave_pause(ctx: Context, draft: Draft, weight: int | None = None) -> None:
    """Undo what the pause did, so the rollout does not pause again for the same cause.

    The step clock is frozen while paused: step_started_at moves later by the time spent
    paused, so a timed pause step resumes with the time it had left, and neither the
    progress deadline nor the analysis window count the paused time. Leaving a
    MetricsUnavailable pause (or another pause whose traffic the fail-safe held back, see
    held_back()) restores the step's weight and starts the unavailable count and error
    streaks over; leaving an Inconclusive pause measures the metrics over their limit
    afresh (an inline step needs `count` new results). Either way, resuming is the
    user's (or the recovered provider's) word that the cause is dealt with.

    Traffic goes to `weight`, by default the current step's weight.
    """
    status = draft.status
    paused_for = seconds_since(status.paused_at, ctx.now) or 0.0
    route(
        draft,
        weight_before(ctx.steps, status.current_step_index or 0) if weight is None else weight,
    )
    draft.update(paused_at=None, step_started_at=shift(status.step_started_at, paused_for))
    if status.reason == INCONCLUSIVE:
        draft.update(analysis=_measure_afresh(ctx, status))
    if status.reason == NOT_ENOUGH_EVIDENCE:
        # Another progress deadline to gather evidence; what was gathered is kept, and an
        # unproven inline metric counts its measurements from zero again.
        fresh = [
            m if m.verdict is Verdict.PASS else m.model_copy(update={"measurements": 0})
            for m in draft.status.analysis
        ]
        draft.update(resumed_at=to_iso(ctx.now), analysis=fresh)
    if metrics_paused(status) or held_back(ctx.steps, status):
        analysis = [m.model_copy(update={"consecutive_errors": 0}) for m in draft.status.analysis]
        draft.update(metrics_unavailable_intervals=0, analysis=analysis)


def _measure_afresh(ctx: Context, status: CanaryStatus) -> list[MetricStatus]:
    statuses = statuses_by_key(status.analysis)
    canary = ctx.canary.model_copy(update={"status": status})
    tasks = active_tasks(canary, ctx.templates, ctx.now)
    over = {t.key for t in tasks if inconclusive(t, statuses.get(t.key))}
    fresh = {"inconclusives": 0, "measurements": 0}
    return [m.model_copy(update=fresh) if m.name in over else m for m in status.analysis]


def evidence_clock(status: CanaryStatus) -> str | None:
    """When the current wait for evidence began: the step's start, or a later resume."""
    started, resumed = status.step_started_at, status.resumed_at
    if started is None or resumed is None:
        return started or resumed
    return max(started, resumed, key=from_iso)


def deadline_left(ctx: Context, since: str | None) -> float:
    return ctx.canary.spec.progress_deadline_seconds - (seconds_since(since, ctx.now) or 0.0)


def deadline_text(ctx: Context) -> str:
    return format_duration(ctx.canary.spec.progress_deadline_seconds)
