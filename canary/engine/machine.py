"""step(): everything the controller should do for one Canary in one reconcile.

Pure: the status, the templates, what the controller observed and the time go in; the
whole new status, the actions to apply and when to call again come out. Each call makes
at most one phase change, and every phase change emits exactly one event; anything that
could happen next is left to the next call (requeue_after is 0 when that is right away).

Conditions: the engine keeps only the "Invalid" condition (status "True" with the spec
problems, or "False"). Phase, reason and message already say whether a rollout is
progressing; a second condition would only repeat them. The problems are
obs.spec_errors, as validation worded them: the engine adds none of its own, so the
condition names each problem once.

Initialization (first sight of a Deployment) takes two calls, so that the route never
points at N-primary before it can serve: the first records the revision as stable and
creates N-primary (InitializeStable; phase Idle, reason Initializing, traffic untouched:
the route still sends everything where it did); once N-primary is ready at that revision
(obs.stable_ready), SetWeight(0) sends 100% to it (reason Initialized). The controller
hands the user's Deployment off (scales it to 0) only after that. A newer target revision
arriving meanwhile waits: once N-primary serves the first one, the newer one is rolled
out with analysis like any other (taking it as stable would promote it on no evidence at
all). Only if N-primary has not served within progressDeadlineSeconds (the first
revision cannot start, say) is the newer one initialized instead.

Metrics unavailable: a reconcile whose measured samples are all provider failures counts
one unavailable interval; any usable sample resets the count. When the count exceeds
spec.maxMetricsUnavailableIntervals, or one metric's error streak exceeds its
consecutiveErrorLimit, traffic returns to stable and a Progressing rollout pauses (reason
MetricsUnavailable) without recording any Fail. Measurements taken while so paused are
probes only (analysis.probe). When the provider answers again the rollout returns to the
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

Promotion takes two calls as well: the first records phase Promoting (begin_promotion),
the next and every later one until N-primary is ready at the canary's revision send
PromoteStable (idempotent). Traffic stays at the last weight, both versions serving,
until N-primary is ready; then stable gets 100% and the canary is scaled down. If that
takes longer than progressDeadlineSeconds, one Warning event PromotionSlow says so
(reason PromotionSlow, still Promoting) and the controller keeps polling: failing there
would strand traffic split between two Deployments with nobody finishing the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from canary.api import naming
from canary.api.durations import parse_duration
from canary.api.models import (
    AnalysisTemplateSpec,
    Canary,
    CanaryStatus,
    Condition,
    MetricStatus,
    Pause,
    Phase,
    Verdict,
)
from canary.engine.actions import (
    Decision,
    InitializeStable,
    Observations,
    PromoteStable,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.analysis import (
    active_tasks,
    background_tasks,
    complete,
    erroring,
    evaluate,
    failed,
    inconclusive,
    passed,
    probe,
    statuses_by_key,
    step_tasks,
    usable,
    weight_before,
)
from canary.engine.clock import seconds_since, to_iso, utc
from canary.engine.requests import handle_request, ignore_request
from canary.engine.samples import MetricTask, ProviderFailure
from canary.engine.schedule import requeue_after
from canary.engine.transitions import (
    ABANDONED,
    ANALYSIS_FAILED,
    DEADLINE_EXCEEDED,
    INCONCLUSIVE,
    INITIALIZED,
    INITIALIZING,
    LIVE,
    METRICS_UNAVAILABLE,
    NOT_ENOUGH_EVIDENCE,
    PAUSED_AT_STEP,
    PROMOTED,
    PROMOTION_SLOW,
    RESUMED,
    REVERTED,
    TARGET_MISSING,
    Context,
    Draft,
    advance,
    begin_promotion,
    deadline_left,
    deadline_text,
    evidence_clock,
    held_back,
    initializing,
    leave_pause,
    metrics_paused,
    pause,
    roll_back,
    start_rollout,
    step_label,
)
from canary.engine.windows import in_window


def step(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    obs: Observations,
    now: datetime,
) -> Decision:
    ctx = Context(canary, templates, obs, utc(now))
    draft = Draft(
        canary.status.model_copy(update={"observed_generation": canary.metadata.generation})
    )
    problems = list(obs.spec_errors)
    _mark_validity(ctx.now, draft, problems)
    if problems:
        ignore_request(ctx, draft, "the spec is invalid; fix it first")
    else:
        # Samples first: they were measured for this status, whatever a request then does.
        answered = _record(ctx, draft)
        if not handle_request(ctx, draft):
            _reconcile(ctx, draft, answered=answered)
    requeue = requeue_after(ctx, draft.status, invalid=bool(problems))
    return Decision(draft.status, tuple(draft.actions), requeue)


# ---------------------------------------------------------------- validity


def reject(status: CanaryStatus, problems: tuple[str, ...], now: datetime) -> Decision:
    """A spec too malformed to parse: only the Invalid condition (and its event) change."""
    draft = Draft(status)
    _mark_validity(utc(now), draft, list(problems))
    return Decision(draft.status, tuple(draft.actions), None)


def _mark_validity(now: datetime, draft: Draft, problems: list[str]) -> None:
    """Keep the Invalid condition current; one event per change of the problem list."""
    state: Literal["True", "False"] = "True" if problems else "False"
    message = "; ".join(problems)
    others = [c for c in draft.status.conditions if c.type != "Invalid"]
    old = next((c for c in draft.status.conditions if c.type == "Invalid"), None)
    if old is not None and old.status == state and old.message == message:
        return
    changed_at = old.last_transition_time if old is not None and old.status == state else None
    condition = Condition(
        type="Invalid",
        status=state,
        reason="InvalidSpec" if problems else "Valid",
        message=message,
        last_transition_time=changed_at or to_iso(now),
    )
    draft.update(conditions=[*others, condition])
    if problems:
        message = f"spec is invalid, nothing changes until it is fixed: {message}"
        draft.event("Warning", "InvalidSpec", message)
    elif old is not None:
        draft.event("Normal", "SpecValid", "spec is valid again")


# ---------------------------------------------------------------- revisions


def _reconcile(ctx: Context, draft: Draft, *, answered: bool) -> None:
    status, target = draft.status, ctx.obs.target_revision
    if status.phase is Phase.PROMOTING:
        _promoting(ctx, draft)  # committed: a changed target waits until it finishes
    elif initializing(status):
        _initialize(ctx, draft, target)
    elif target is None:
        _target_missing(ctx, draft)
    elif target == status.stable_revision:
        _settle(ctx, draft)
    elif target != status.canary_revision:
        start_rollout(ctx, draft, target)
    elif status.phase is Phase.WAITING:
        _waiting(ctx, draft)
    elif status.phase in LIVE:
        _live(ctx, draft, answered=answered)
    # RolledBack and Failed keep their revision until a new one arrives or `retry`.


def _initialize(ctx: Context, draft: Draft, target: str | None) -> None:
    """First sight: create N-primary, and route to it only once it is ready (module doc).

    obs.stable_ready is judged against the stable_revision of the status passed in, so
    it only counts on a call after the one that recorded `target` as stable.
    """
    status, name = draft.status, ctx.canary.spec.target_ref.name
    primary = naming.primary(ctx.canary.metadata.name)
    if target is None:
        if status.stable_revision is None:
            draft.update(reason=TARGET_MISSING, message=f"waiting for Deployment {name} to exist")
        else:  # keep reason Initializing: N-primary has not served yet
            draft.say(f"initializing: waiting for Deployment {name} to exist again")
    elif status.stable_revision is not None and ctx.obs.stable_ready:
        draft.act(SetWeight(0))
        message = f"revision {status.stable_revision} is stable: {primary} serves 100% of traffic"
        if target != status.stable_revision:
            message += f"; revision {target} is rolled out next"
        draft.update(initializing_since=None)
        draft.enter(Phase.IDLE, INITIALIZED, message)
    elif target != status.stable_revision and (
        status.stable_revision is None
        or status.initializing_since is None  # recorded by a version that did not keep it
        or deadline_left(ctx, status.initializing_since) <= 0
    ):
        draft.act(InitializeStable(target))
        draft.update(
            stable_revision=target,
            canary_revision=None,
            canary_weight=0,
            initializing_since=to_iso(ctx.now),
        )
        message = f"initializing: waiting for {primary} to be ready at revision {target}"
        if status.stable_revision is not None:
            message += (
                f" (it replaces revision {status.stable_revision}, which did not serve within "
                f"{deadline_text(ctx)})"
            )
        draft.enter(Phase.IDLE, INITIALIZING, message)
    elif target != status.stable_revision:
        draft.say(
            f"initializing: waiting for {primary} to be ready at revision "
            f"{status.stable_revision}; revision {target} is rolled out, with analysis, "
            "once it serves"
        )
    else:
        draft.say(f"initializing: waiting for {primary} to be ready at revision {target}")


def _target_missing(ctx: Context, draft: Draft) -> None:
    status, name = draft.status, ctx.canary.spec.target_ref.name
    if status.phase in (*LIVE, Phase.WAITING):
        if status.phase in LIVE:
            draft.act(SetWeight(0), ScaleDownCanary())
        draft.update(canary_revision=None, canary_weight=0, paused_at=None)
        message = f"Deployment {name} not found; the rollout stopped, stable serves all traffic"
        draft.enter(Phase.FAILED, TARGET_MISSING, message, warning=True)


def _settle(ctx: Context, draft: Draft) -> None:
    """The target is back at the stable revision: nothing left to roll out."""
    status = draft.status
    if status.phase in (Phase.IDLE, Phase.SUCCEEDED):
        return
    if status.phase in LIVE:
        draft.act(SetWeight(0), ScaleDownCanary())
    abandoned = status.phase in (*LIVE, Phase.WAITING)
    draft.update(canary_revision=None, canary_weight=0, current_step_index=None, paused_at=None)
    if abandoned:
        message = (
            f"target is back at stable revision {status.stable_revision}; "
            f"revision {status.canary_revision} abandoned"
        )
    else:
        message = f"target is back at stable revision {status.stable_revision}"
    draft.enter(Phase.IDLE, ABANDONED if abandoned else REVERTED, message)


def _waiting(ctx: Context, draft: Draft) -> None:
    window, revision = ctx.canary.spec.deploy_window, draft.status.canary_revision
    if (window is None or in_window(window, ctx.now)) and revision is not None:
        start_rollout(ctx, draft, revision)


def _promoting(ctx: Context, draft: Draft) -> None:
    """Apply the promotion begin_promotion() recorded, and finish it once stable is ready.

    obs.stable_ready is judged against status.canary_revision here. Until it holds,
    every call sends PromoteStable again (idempotent) while the target still has the
    canary's revision; traffic stays at the last weight, both versions serving. Past the
    progress deadline the rollout stays Promoting with one PromotionSlow warning.
    """
    status, target = draft.status, ctx.obs.target_revision
    revision = status.canary_revision
    primary = naming.primary(ctx.canary.metadata.name)
    if ctx.obs.stable_ready:
        draft.act(SetWeight(0), ScaleDownCanary())
        draft.update(stable_revision=revision, canary_weight=0)
        message = f"revision {revision} promoted; it serves all traffic as stable"
        draft.enter(Phase.SUCCEEDED, PROMOTED, message)
        return
    moved = ""
    if revision is not None and target == revision:
        draft.act(PromoteStable(revision))
    else:  # the template can only come from the target; a newer one waits its turn
        moved = f"; the target is now at {target or 'nothing (Deployment not found)'}"
    if deadline_left(ctx, status.step_started_at) > 0:
        draft.say(f"promoting revision {revision}: waiting for {primary} to be ready{moved}")
        return
    message = (
        f"promoting revision {revision}: {primary} is not ready after the progress deadline "
        f"({deadline_text(ctx)}); both versions keep serving, the canary "
        f"{status.canary_weight}%, until it is{moved}"
    )
    if status.reason != PROMOTION_SLOW:
        draft.event("Warning", PROMOTION_SLOW, message)
        draft.update(reason=PROMOTION_SLOW)
    draft.say(message)


# ---------------------------------------------------------------- a rollout in progress


def _live(ctx: Context, draft: Draft, *, answered: bool) -> None:
    status = draft.status
    tasks = active_tasks(ctx.canary, ctx.templates, ctx.now)
    statuses = statuses_by_key(status.analysis)
    cause = _unavailable(ctx, status, tasks, statuses)
    if metrics_paused(status):
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
            f"{unsure.metric.inconclusive_limit}; `canary resume` measures again, "
            "`canary promote` continues, `canary abort` rolls back"
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
    else:
        _progress(ctx, draft)


def _record(ctx: Context, draft: Draft) -> bool:
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
    name = ctx.canary.metadata.name
    verb = "promote" if status.reason == PAUSED_AT_STEP else "resume"
    weight = weight_before(ctx.steps, status.current_step_index or 0)
    if cause is not None and status.canary_weight > 0:
        draft.act(SetWeight(0))
        draft.update(canary_weight=0)
        message = (
            f"{label}: paused ({status.reason}); metrics unavailable: {cause}; traffic "
            f"returned to stable, `canary {verb} {name}` restores canary weight {weight}%"
        )
        draft.event("Warning", METRICS_UNAVAILABLE, message)
        draft.say(message)
    elif held_back(ctx.steps, status) and answered and cause is None:
        message = (
            f"{label}: paused ({status.reason}); metrics answer again; traffic stays with "
            f"stable until `canary {verb} {name}` restores canary weight {weight}%"
        )
        if message != status.message:
            draft.event("Normal", "MetricsAvailable", message)
            draft.say(message)


def _progress(ctx: Context, draft: Draft) -> None:
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
        name = ctx.canary.metadata.name
        message = f"{label}: paused until `canary promote {name}`"
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
    """Promote once every background metric's last result is a Pass (analysis.usable):
    for comparisons, a regression beyond the accepted one is ruled out. Nothing yet, too
    little traffic, an Inconclusive, a tolerated Fail or a provider error all wait for the
    next measurement, at the current weight, until the progress deadline; then a human
    decides (NotEnoughEvidence). Promotion is never granted for the lack of evidence."""
    canary = ctx.canary.model_copy(update={"status": draft.status})
    statuses = statuses_by_key(draft.status.analysis)
    unproven = [
        t
        for t in background_tasks(canary, ctx.templates, ctx.now)
        if not usable(t, statuses.get(t.key))
    ]
    if not unproven:
        begin_promotion(ctx, draft)
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
    name = ctx.canary.metadata.name
    message = (
        f"{why} without the evidence to go on ({reasons}); `canary resume {name}` "
        f"keeps measuring for another {deadline_text(ctx)}, `canary promote {name}` "
        f"goes on without it, `canary abort {name}` rolls back"
    )
    pause(ctx, draft, NOT_ENOUGH_EVIDENCE, message, warning=True)


def _last_result(key: str, status: MetricStatus | None) -> str:
    if status is None or status.verdict is None:
        return f"{key} (not measured yet)"
    if status.verdict is Verdict.INCONCLUSIVE and status.value is None:
        return f"{key} (too little traffic so far)"
    return f"{key} (last {status.verdict})"
