"""What the target's revision calls for besides a rollout in progress: the first sight
of a Deployment, a target gone or back at stable, a rollout waiting for its deploy
window (or for a blackout to end), and the promotion of a finished one.

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

Promotion takes two calls as well: the first records phase Promoting (begin_promotion),
the next and every later one until N-primary is ready at the canary's revision send
PromoteStable (idempotent). Traffic stays at the last weight, both versions serving,
until N-primary is ready; then stable gets 100% and the canary is scaled down. If that
takes longer than progressDeadlineSeconds, one Warning event PromotionSlow says so
(reason PromotionSlow, still Promoting) and the controller keeps polling: failing there
would strand traffic split between two Deployments with nobody finishing the job.
"""

from __future__ import annotations

from canary.api import naming
from canary.api.status import Phase
from canary.engine.actions import InitializeStable, PromoteStable, SetWeight
from canary.engine.clock import to_iso
from canary.engine.draft import Draft
from canary.engine.transitions import (
    ABANDONED,
    INITIALIZED,
    INITIALIZING,
    LIVE,
    PROMOTED,
    PROMOTION_SLOW,
    REVERTED,
    TARGET_MISSING,
    Context,
    deadline_left,
    deadline_text,
    retire_canary,
    start_rollout,
    why_held,
)


def initialize(ctx: Context, draft: Draft, target: str | None) -> None:
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


def target_missing(ctx: Context, draft: Draft) -> None:
    status, name = draft.status, ctx.canary.spec.target_ref.name
    if status.phase in (*LIVE, Phase.WAITING):
        if status.phase in LIVE:
            draft.act(SetWeight(0))
            retire_canary(ctx, draft)
        draft.update(canary_revision=None, canary_weight=0, paused_at=None)
        message = f"Deployment {name} not found; the rollout stopped, stable serves all traffic"
        draft.enter(Phase.FAILED, TARGET_MISSING, message, warning=True)


def settle(ctx: Context, draft: Draft) -> None:
    """The target is back at the stable revision: nothing left to roll out."""
    status = draft.status
    if status.phase in (Phase.IDLE, Phase.SUCCEEDED):
        return
    if status.phase in LIVE:
        draft.act(SetWeight(0))
        retire_canary(ctx, draft)
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


def waiting(ctx: Context, draft: Draft) -> None:
    """Start the waiting revision once nothing holds it back; until then keep the reason
    and message true: a blackout may end while the weekly window is still closed, the
    spec's window or blackouts may change, and a confirm-rollout webhook may answer."""
    status = draft.status
    revision = status.canary_revision
    if revision is None:
        return
    held = why_held(ctx, draft, revision)
    if held is None:
        start_rollout(ctx, draft, revision)
        return
    reason, message = held
    if reason != status.reason:
        draft.enter(Phase.WAITING, reason, message)
    elif not status.message.startswith(message):  # a request's audit may follow it
        draft.say(message)


def promoting(ctx: Context, draft: Draft) -> None:
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
        draft.act(SetWeight(0))
        retire_canary(ctx, draft)
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
