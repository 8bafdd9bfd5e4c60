"""The steps of a rollout in progress whose metrics answer: set a weight, pause,
analyse, and past the last step the gate to promotion.
"""

from __future__ import annotations

from canary.api.canary import Pause
from canary.api.durations import parse_duration
from canary.api.status import MetricStatus, Verdict
from canary.engine.actions import SetWeight
from canary.engine.bake import promote_or_bake
from canary.engine.clock import seconds_since
from canary.engine.draft import Draft
from canary.engine.hook_rules import hold_promotion
from canary.engine.limits import complete, passed, usable
from canary.engine.samples import MetricTask
from canary.engine.tasks import active_tasks, background_tasks, statuses_by_key, step_tasks
from canary.engine.transitions import (
    DEADLINE_EXCEEDED,
    NOT_ENOUGH_EVIDENCE,
    PAUSED_AT_STEP,
    Context,
    advance,
    command,
    deadline_left,
    deadline_text,
    evidence_clock,
    pause,
    roll_back,
    step_label,
)


def progress(ctx: Context, draft: Draft) -> None:
    index = draft.status.current_step_index or 0
    if index >= len(ctx.steps):
        _try_promote(ctx, draft)
        return
    current = ctx.steps[index]
    if current.set_weight is not None:
        _set_weight(ctx, draft, current.set_weight)
    elif current.pause is not None:
        _pause_step(ctx, draft, current.pause)
    else:
        _analysis_step(ctx, draft)


def _finish_step(ctx: Context, draft: Draft, reason: str, message: str) -> None:
    """Move to the next step; past the last one, the next call tries to promote."""
    draft.event("Normal", reason, message)
    draft.say(message)
    advance(ctx, draft)


# A doubt that has not become a Fail within this many looks of its metric stops holding
# the weight (see _set_weight).
HOLD_LOOKS = 3


def _set_weight(ctx: Context, draft: Draft, weight: int) -> None:
    label = step_label(ctx, draft.status.current_step_index)
    current = draft.status.canary_weight
    doubts, interval = _doubts(ctx, draft)
    held = seconds_since(evidence_clock(draft.status), ctx.now) or 0.0
    if weight > current and doubts and held < HOLD_LOOKS * interval:
        # More traffic would harm more users if the doubt proves right. A real regression
        # turns it into a Fail within a few looks at this weight; a doubt that does not
        # (stale errors of a previous canary in the first window, say) lets the step go on.
        draft.say(
            f"{label}: holding canary weight {current}% (not raising it to {weight}%) for up "
            f"to {HOLD_LOOKS} looks while evidence against the canary builds: {doubts}"
        )
        return
    if ctx.obs.canary_ready:
        draft.act(SetWeight(weight))
        draft.update(canary_weight=weight)
        _finish_step(ctx, draft, "WeightSet", f"{label}: canary weight set to {weight}%")
    elif deadline_left(ctx, evidence_clock(draft.status)) <= 0:
        detail = f"the canary was not ready within the progress deadline ({deadline_text(ctx)})"
        roll_back(ctx, draft, DEADLINE_EXCEEDED, detail)
    else:
        draft.say(f"{label}: waiting for the canary to be ready before setting weight {weight}%")


def _doubts(ctx: Context, draft: Draft) -> tuple[str, float]:
    """Comparisons whose evidence against the canary has gone half the way (on the log
    scale) to a rollback, an e-value of at least sqrt(1/maxFalseRollback), and the
    shortest interval among them (how soon the next look comes)."""
    canary = ctx.canary.model_copy(update={"status": draft.status})
    statuses = statuses_by_key(draft.status.analysis)
    found, intervals = [], []
    for task in active_tasks(canary, ctx.templates, ctx.now):
        comparison, status = task.metric.comparison, statuses.get(task.key)
        if comparison is None or status is None or status.rollback_evidence is None:
            continue
        limit = 1.0 / comparison.max_false_rollback
        if status.rollback_evidence >= limit**0.5:
            found.append(
                f"{task.key} e-value {status.rollback_evidence:.3g} (rollback at {limit:.3g})"
            )
            intervals.append(parse_duration(task.metric.interval))
    return ", ".join(found), min(intervals, default=0.0)


def _pause_step(ctx: Context, draft: Draft, step_pause: Pause) -> None:
    label = step_label(ctx, draft.status.current_step_index)
    if step_pause.duration is None:
        message = f"{label}: paused until {command(ctx, 'promote')}"
        pause(ctx, draft, PAUSED_AT_STEP, message)
        return
    elapsed = seconds_since(draft.status.step_started_at, ctx.now) or 0.0
    if elapsed >= parse_duration(step_pause.duration):
        _finish_step(ctx, draft, "PauseEnded", f"{label}: pause of {step_pause.duration} ended")
    else:
        draft.say(f"{label}: pausing for {step_pause.duration}")


def _analysis_step(ctx: Context, draft: Draft) -> None:
    label = step_label(ctx, draft.status.current_step_index)
    statuses = statuses_by_key(draft.status.analysis)
    tasks = step_tasks(ctx.canary, ctx.templates, ctx.now)
    done = [t for t in tasks if passed(t, statuses.get(t.key))]
    if len(done) == len(tasks):
        reasons = "; ".join(statuses[t.key].reason for t in done)
        _finish_step(ctx, draft, "AnalysisPassed", f"{label}: analysis passed: {reasons}")
        return
    # A comparison waits for its Pass until the progress deadline; one given a `count`
    # that it used up without earning a Pass has had its say: a human decides.
    spent = [
        t
        for t in tasks
        if t.metric.comparison is not None
        and t.metric.count is not None
        and complete(t, statuses.get(t.key))
        and not usable(t, statuses.get(t.key))
    ]
    unproven = [t for t in tasks if t not in done]
    # Thresholds keep their own limits; only a comparison can wait for evidence forever.
    waiting = any(t.metric.comparison is not None for t in unproven)
    if spent or (waiting and deadline_left(ctx, evidence_clock(draft.status)) <= 0):
        limit = "its measurement count" if spent else "the progress deadline"
        _not_enough_evidence(ctx, draft, unproven, f"{label}: analysis reached {limit}")
    else:
        draft.say(f"{label}: analysis has {len(done)} of {len(tasks)} metrics complete")


def _try_promote(ctx: Context, draft: Draft) -> None:
    """Promote once every background metric's last result is a Pass (limits.usable):
    for comparisons, a regression beyond the accepted one is ruled out. Nothing yet, too
    little traffic, an Inconclusive, a tolerated Fail or a provider error all wait for the
    next measurement, at the current weight, until the progress deadline; then a human
    decides (NotEnoughEvidence). Promotion is never granted for the lack of evidence.
    Earned, it still waits for its confirm-promotion webhooks (hook_rules.py)."""
    canary = ctx.canary.model_copy(update={"status": draft.status})
    statuses = statuses_by_key(draft.status.analysis)
    unproven = [
        t
        for t in background_tasks(canary, ctx.templates, ctx.now)
        if not usable(t, statuses.get(t.key))
    ]
    if not unproven:
        if not hold_promotion(ctx, draft):
            promote_or_bake(ctx, draft)
    elif deadline_left(ctx, evidence_clock(draft.status)) <= 0:
        label = step_label(ctx, draft.status.current_step_index)
        _not_enough_evidence(ctx, draft, unproven, f"{label}: the progress deadline passed")
    else:
        waiting = ", ".join(_last_result(t.key, statuses.get(t.key)) for t in unproven)
        draft.say(f"all steps done; promotion waits for a result from {waiting}")


def _not_enough_evidence(ctx: Context, draft: Draft, unproven: list[MetricTask], why: str) -> None:
    statuses = statuses_by_key(draft.status.analysis)
    reasons = "; ".join(
        statuses[t.key].reason if t.key in statuses else f"{t.key}: not measured yet"
        for t in unproven
    )
    message = (
        f"{why} without the evidence to go on ({reasons}); {command(ctx, 'resume')} "
        f"keeps measuring for another {deadline_text(ctx)}, {command(ctx, 'promote')} "
        f"goes on without it, {command(ctx, 'abort')} rolls back"
    )
    pause(ctx, draft, NOT_ENOUGH_EVIDENCE, message, warning=True)


def _last_result(key: str, status: MetricStatus | None) -> str:
    if status is None or status.verdict is None:
        return f"{key} (not measured yet)"
    if status.verdict is Verdict.INCONCLUSIVE and status.value is None:
        return f"{key} (too little traffic so far)"
    return f"{key} (last {status.verdict})"
