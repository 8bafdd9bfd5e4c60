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

Validity, samples, webhook results and requests are settled here; then what the status
and the target's revision call for: revisions.py (first sight of a Deployment, a target
gone or back at stable, a rollout waiting for its deploy window, a promotion), live.py (a
rollout in progress and its metrics) and steps.py (its steps and the gate to promotion);
hook_rules.py says what webhook results do, and a rollout that just ended owes its
post-rollout webhooks a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import Canary
from canary.api.display import phase_display, step_display
from canary.api.status import CanaryStatus, Condition, Phase
from canary.engine.actions import Decision, Observations
from canary.engine.bake import baking
from canary.engine.clock import to_iso, utc
from canary.engine.draft import Draft
from canary.engine.hook_rules import mark_post_rollout, record_webhooks
from canary.engine.live import live, record
from canary.engine.requests import handle_request, ignore_request
from canary.engine.revisions import initialize, promoting, settle, target_missing, waiting
from canary.engine.schedule import requeue_after
from canary.engine.transitions import (
    LIVE,
    Context,
    initializing,
    scale_down_when_due,
    start_rollout,
)


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
        answered = record(ctx, draft)
        record_webhooks(ctx, draft)
        if not handle_request(ctx, draft):
            _reconcile(ctx, draft, answered=answered)
        mark_post_rollout(ctx, draft)
        scale_down_when_due(ctx, draft)
    _display(draft, problems, len(ctx.steps))
    requeue = requeue_after(ctx, draft.status, invalid=bool(problems))
    return Decision(draft.status, tuple(draft.actions), requeue)


# ---------------------------------------------------------------- validity


def reject(status: CanaryStatus, problems: tuple[str, ...], now: datetime) -> Decision:
    """A spec too malformed to parse: only the Invalid condition (and its event) change."""
    draft = Draft(status)
    _mark_validity(utc(now), draft, list(problems))
    _display(draft, list(problems), None)
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


def _display(draft: Draft, problems: list[str], steps: int | None) -> None:
    """The phase and step as kubectl's columns show them. `steps` is None for a spec too
    malformed to count them in: the step shown stays as it was."""
    draft.update(phase_display=phase_display(draft.status.phase, bool(problems)))
    if steps is not None:
        draft.update(step_display=step_display(draft.status.current_step_index, steps))


# ---------------------------------------------------------------- what comes next


def _reconcile(ctx: Context, draft: Draft, *, answered: bool) -> None:
    status, target = draft.status, ctx.obs.target_revision
    if status.phase is Phase.PROMOTING:
        promoting(ctx, draft)  # committed: a changed target waits until it finishes
    elif initializing(status):
        initialize(ctx, draft, target)
    elif target is None:
        target_missing(ctx, draft)
    elif target == status.stable_revision:
        settle(ctx, draft)
    elif target != status.canary_revision:
        start_rollout(ctx, draft, target)
    elif status.phase is Phase.WAITING:
        waiting(ctx, draft)
    elif status.phase is Phase.BAKING:
        baking(ctx, draft)
    elif status.phase in LIVE:
        live(ctx, draft, answered=answered)
    # RolledBack and Failed keep their revision until a new one arrives or `retry`.
