"""What webhook results do to a rollout (hooks.py says when each webhook is called).

- confirm-rollout: a new revision waits (phase Waiting, reason WaitingForConfirmation;
  transitions.start_rollout) until each answers 2xx. No deadline: an external
  change-freeze may hold a release for days, and nothing runs meanwhile.
- pre-rollout: the rollout holds at 0% until each answers 2xx. A Fail rolls back
  (reason PreRolloutWebhookFailed); an Error is asked again each interval, and the wait
  counts toward the progress deadline like any other wait for the first traffic.
- confirm-promotion: once promotion is earned it waits (phase Progressing, reason
  WaitingForConfirmation) until each answers 2xx. The progress deadline does not apply:
  the canary has proven itself and the metrics keep judging it, so a Fail still rolls
  back, but a confirmed-good canary is never rolled back for being told to wait.
- rollback: a 2xx during a live rollout rolls back (reason RollbackWebhook).
- load-test and post-rollout: their results are reported only.

Every change of a webhook's result is an Event (a post-rollout call always is); a
result that only means "not yet" is Normal, an Error or a failing test a Warning.
"""

from __future__ import annotations

from canary.api.status import Phase, Verdict, WebhookStatus
from canary.api.webhooks import Webhook
from canary.engine.clock import to_iso
from canary.engine.draft import Draft
from canary.engine.hooks import (
    WAITING_FOR_CONFIRMATION,
    WebhookResult,
    before_traffic,
    describe,
    of_type,
    results_by_name,
    unconfirmed,
)
from canary.engine.transitions import (
    DEADLINE_EXCEEDED,
    Context,
    deadline_left,
    deadline_text,
    evidence_clock,
    roll_back,
    step_label,
)

PRE_ROLLOUT_FAILED = "PreRolloutWebhookFailed"
ROLLBACK_WEBHOOK = "RollbackWebhook"
_REASONS = {Verdict.PASS: "WebhookPassed", Verdict.FAIL: "WebhookFailed"}
# Types whose non-2xx answer is a problem, not a "not yet".
_FAIL_WARNS = ("pre-rollout", "load-test", "post-rollout")
_ENDED = (Phase.SUCCEEDED, Phase.ROLLED_BACK)


def record_webhooks(ctx: Context, draft: Draft) -> None:
    """Fold this reconcile's webhook results into the status, in the spec's order."""
    if not ctx.obs.webhooks:
        return
    results = results_by_name(draft.status)
    for hook in ctx.canary.spec.webhooks:
        result = ctx.obs.webhooks.get(hook.name)
        if result is None:
            continue
        previous = results.get(hook.name)
        results[hook.name] = WebhookStatus(
            name=hook.name,
            type=hook.type,
            verdict=result.verdict,
            message=result.message,
            called_at=to_iso(ctx.now),
            calls=(previous.calls if previous else 0) + 1,
        )
        if hook.type == "post-rollout" or previous is None or previous.verdict != result.verdict:
            _report(draft, hook, result)
    names = [w.name for w in ctx.canary.spec.webhooks]
    draft.update(webhooks=[results[n] for n in names if n in results])


def _report(draft: Draft, hook: Webhook, result: WebhookResult) -> None:
    warn = result.verdict is Verdict.ERROR or (
        result.verdict is Verdict.FAIL and hook.type in _FAIL_WARNS
    )
    reason = _REASONS.get(result.verdict, "WebhookError")
    message = f"{hook.type} webhook {hook.name}: {result.message}"
    draft.event("Warning" if warn else "Normal", reason, message)


def mark_post_rollout(ctx: Context, draft: Draft) -> None:
    """A rollout that just ended owes its post-rollout webhooks one call each."""
    if draft.status.phase not in _ENDED or ctx.canary.status.phase is draft.status.phase:
        return
    hooks = of_type(ctx.canary, "post-rollout")
    if hooks:
        results = results_by_name(draft.status)
        results.update({w.name: WebhookStatus(name=w.name, type=w.type) for w in hooks})
        draft.update(webhooks=list(results.values()))


def rollback_asked(ctx: Context, draft: Draft) -> WebhookStatus | None:
    results = results_by_name(draft.status)
    for hook in of_type(ctx.canary, "rollback"):
        last = results.get(hook.name)
        if last is not None and last.verdict is Verdict.PASS:
            return last
    return None


def roll_back_by_webhook(ctx: Context, draft: Draft, asked: WebhookStatus) -> None:
    detail = f"rollback webhook {asked.name} asked for it ({asked.message})"
    roll_back(ctx, draft, ROLLBACK_WEBHOOK, detail)


def hold_before_traffic(ctx: Context, draft: Draft) -> bool:
    """Hold a rollout at 0% while a pre-rollout webhook has not passed; True if it did
    (or rolled back)."""
    status = draft.status
    waiting = unconfirmed(ctx.canary, status, "pre-rollout")
    if not waiting or not before_traffic(ctx.canary, status):
        return False
    results = results_by_name(status)
    failed = [results[w.name] for w in waiting if w.name in results]
    failed = [r for r in failed if r.verdict is Verdict.FAIL]
    label = step_label(ctx, status.current_step_index)
    if failed:
        detail = f"pre-rollout webhook {failed[0].name} failed: {failed[0].message}"
        roll_back(ctx, draft, PRE_ROLLOUT_FAILED, detail)
    elif deadline_left(ctx, evidence_clock(status)) <= 0:
        detail = (
            f"pre-rollout webhooks did not pass within the progress deadline "
            f"({deadline_text(ctx)}): {describe(waiting, results)}"
        )
        roll_back(ctx, draft, DEADLINE_EXCEEDED, detail)
    elif not ctx.obs.canary_ready:
        names = ", ".join(w.name for w in waiting)
        draft.say(f"{label}: waiting for the canary to be ready before calling pre-rollout {names}")
    else:
        draft.say(
            f"{label}: no traffic moves until the pre-rollout webhooks answer 2xx: "
            f"{describe(waiting, results)}"
        )
    return True


def hold_promotion(ctx: Context, draft: Draft) -> bool:
    """Hold an earned promotion while a confirm-promotion webhook has not answered 2xx;
    True if it did."""
    waiting = unconfirmed(ctx.canary, draft.status, "confirm-promotion")
    if not waiting:
        return False
    message = (
        "all steps done and the metrics passed; promotion waits for confirm-promotion "
        f"webhooks to answer 2xx: {describe(waiting, results_by_name(draft.status))}"
    )
    if draft.status.reason == WAITING_FOR_CONFIRMATION:
        draft.say(message)
    else:
        draft.enter(Phase.PROGRESSING, WAITING_FOR_CONFIRMATION, message)
    return True
