"""A rollout in progress (Progressing or Paused): its samples, and what a rollback
webhook's 2xx, a Fail, too many Inconclusives or unavailable metrics do to it; otherwise
it waits for its pre-rollout webhooks (hook_rules.py) and moves on through its steps
(steps.py).

Metrics unavailable: a reconcile whose measured samples are all provider failures counts
one unavailable interval; any usable sample resets the count. When the count exceeds
spec.maxMetricsUnavailableIntervals, or one metric's error streak exceeds its
consecutiveErrorLimit, traffic returns to stable and a Progressing rollout pauses (reason
MetricsUnavailable) without recording any Fail. Measurements taken while so paused are
probes only (verdicts.probe). When the provider answers again the rollout returns to the
weight of its current step and carries on with that step, its clock frozen while paused
(see transitions.leave_pause). If that pause outlasts progressDeadlineSeconds the rollout
rolls back. Provider errors alone therefore never roll back by analysis and never promote.

A rollout already paused for another reason (PausedByUser, PausedAtStep, Inconclusive)
keeps that pause and its reason through an outage: a human decides when it continues.
Only the traffic fail-safe applies: past the same limits the canary goes to 0% (one
Warning event MetricsUnavailable; the message says so) and measurements become probes.
Its weight is not restored on its own when metrics return, since a paused rollout moves
no traffic towards the canary without a human; `canary resume` (or `promote` for
PausedAtStep) restores the step's weight and starts the unavailable count over. Such a
pause has no progress deadline: the canary serves nothing and the human holds it.
"""

from __future__ import annotations

from canary.api.status import CanaryStatus, MetricStatus, Phase, Verdict
from canary.engine.actions import SetWeight
from canary.engine.draft import Draft
from canary.engine.hook_rules import hold_before_traffic, roll_back_by_webhook, rollback_asked
from canary.engine.limits import erroring, failed, inconclusive
from canary.engine.samples import MetricTask, ProviderFailure
from canary.engine.steps import progress
from canary.engine.tasks import active_tasks, statuses_by_key, weight_before
from canary.engine.transitions import (
    ANALYSIS_FAILED,
    DEADLINE_EXCEEDED,
    INCONCLUSIVE,
    LIVE,
    METRICS_UNAVAILABLE,
    PAUSED_AT_STEP,
    RESUMED,
    Context,
    command,
    deadline_left,
    deadline_text,
    held_back,
    leave_pause,
    metrics_paused,
    pause,
    roll_back,
    step_label,
)
from canary.engine.verdicts import evaluate, probe


def live(ctx: Context, draft: Draft, *, answered: bool) -> None:
    status = draft.status
    tasks = active_tasks(ctx.canary, ctx.templates, ctx.now)
    statuses = statuses_by_key(status.analysis)
    cause = _unavailable(ctx, status, tasks, statuses)
    if asked := rollback_asked(ctx, draft):
        roll_back_by_webhook(ctx, draft, asked)
    elif metrics_paused(status):
        _while_unavailable(ctx, draft, cause, answered=answered)
    elif bad := next((t for t in tasks if failed(t, statuses.get(t.key))), None):
        roll_back(ctx, draft, ANALYSIS_FAILED, statuses[bad.key].reason)
    elif status.phase is Phase.PAUSED:
        _while_paused(ctx, draft, cause, answered=answered)
    elif cause is not None:
        draft.act(SetWeight(0))
        draft.update(canary_weight=0)
        message = f"{cause}; traffic returned to stable until metrics answer again"
        pause(ctx, draft, METRICS_UNAVAILABLE, message, warning=True)
    elif unsure := next((t for t in tasks if inconclusive(t, statuses.get(t.key))), None):
        message = (
            f"{statuses[unsure.key].reason}: more inconclusive results than its limit of "
            f"{unsure.metric.inconclusive_limit}; {command(ctx, 'resume')} measures again, "
            f"{command(ctx, 'promote')} continues, {command(ctx, 'abort')} rolls back"
        )
        pause(ctx, draft, INCONCLUSIVE, message, warning=True)
    elif status.metrics_unavailable_intervals > 0:
        # Below the fail-safe's limit, but blind: never move to the next step (or promote)
        # on a timer while the metrics are not answering.
        label = step_label(ctx, status.current_step_index)
        draft.say(
            f"{label}: metrics unavailable for {status.metrics_unavailable_intervals} "
            "interval(s); holding this step until they answer"
        )
    elif not hold_before_traffic(ctx, draft):
        progress(ctx, draft)


def record(ctx: Context, draft: Draft) -> bool:
    """Fold this reconcile's samples into the status and count unavailable intervals.

    Only a rollout in progress has metrics; samples for anything else are stale and
    dropped. True when at least one sample was usable (not a provider failure).
    """
    if draft.status.phase not in LIVE:
        return False
    tasks = active_tasks(ctx.canary, ctx.templates, ctx.now)
    measured = [(t, ctx.obs.samples[t.key]) for t in tasks if t.key in ctx.obs.samples]
    if not measured:
        return False
    held = metrics_paused(draft.status) or held_back(ctx.steps, draft.status)
    judge = probe if held else evaluate
    by_key = statuses_by_key(draft.status.analysis)
    for task, sample in measured:
        by_key[task.key] = judge(task, sample, by_key.get(task.key), ctx.now)
    all_failed = all(isinstance(sample, ProviderFailure) for _, sample in measured)
    intervals = draft.status.metrics_unavailable_intervals + 1 if all_failed else 0
    draft.update(analysis=list(by_key.values()), metrics_unavailable_intervals=intervals)
    return not all_failed


def _unavailable(
    ctx: Context, status: CanaryStatus, tasks: list[MetricTask], statuses: dict[str, MetricStatus]
) -> str | None:
    """Why the metrics count as unavailable, or None when they do not."""
    errors = [statuses[t.key] for t in tasks if t.key in statuses]
    last = next((m.reason for m in errors if m.verdict is Verdict.ERROR), "no error recorded")
    if status.metrics_unavailable_intervals > ctx.canary.spec.max_metrics_unavailable_intervals:
        count = status.metrics_unavailable_intervals
        return f"no metric could be measured for {count} intervals in a row ({last})"
    for task in tasks:
        if erroring(task, statuses.get(task.key)):
            stuck = statuses[task.key]
            return (
                f"{task.key} failed to measure {stuck.consecutive_errors} times in a row "
                f"({stuck.reason})"
            )
    return None


def _while_unavailable(ctx: Context, draft: Draft, cause: str | None, *, answered: bool) -> None:
    """Resume once a provider answered this call and nothing is still failing to measure."""
    if answered and cause is None:
        leave_pause(ctx, draft)
        status = draft.status
        label = step_label(ctx, status.current_step_index)
        message = f"metrics answer again; {label} resumes at canary weight {status.canary_weight}%"
        draft.enter(Phase.PROGRESSING, RESUMED, message)
    elif deadline_left(ctx, draft.status.paused_at) <= 0:
        detail = f"metrics unavailable for longer than the progress deadline ({deadline_text(ctx)})"
        roll_back(ctx, draft, DEADLINE_EXCEEDED, f"{detail}: {cause or 'no answer yet'}")


def _while_paused(ctx: Context, draft: Draft, cause: str | None, *, answered: bool) -> None:
    """A user, step or Inconclusive pause: it stays, with its reason, whatever metrics do.

    Past the unavailable limits the traffic fail-safe still applies (canary to 0%, one
    Warning event); the weight comes back with the request that ends the pause.
    """
    status = draft.status
    label = step_label(ctx, status.current_step_index)
    restore = command(ctx, "promote" if status.reason == PAUSED_AT_STEP else "resume")
    weight = weight_before(ctx.steps, status.current_step_index or 0)
    if cause is not None and status.canary_weight > 0:
        draft.act(SetWeight(0))
        draft.update(canary_weight=0)
        message = (
            f"{label}: paused ({status.reason}); metrics unavailable: {cause}; traffic "
            f"returned to stable, {restore} restores canary weight {weight}%"
        )
        draft.event("Warning", METRICS_UNAVAILABLE, message)
        draft.say(message)
    elif held_back(ctx.steps, status) and answered and cause is None:
        message = (
            f"{label}: paused ({status.reason}); metrics answer again; traffic stays with "
            f"stable until {restore} restores canary weight {weight}%"
        )
        if message != status.message:
            draft.event("Normal", "MetricsAvailable", message)
            draft.say(message)
