"""Which webhooks to call now: a pure function of the spec, the status and the time, as
tasks.py is for metrics. The controller calls the due ones and hands their results to
step() (Observations.webhooks); hook_rules.py decides what the results do.

When each type is due (an "interval" is spec.analysis.interval, 30s without one):

- confirm-rollout: while a new revision waits for it (phase Waiting, reason
  WaitingForConfirmation), until it answers 2xx; asked again each interval.
- pre-rollout: once the rollout runs, before any traffic has moved (no setWeight above 0
  applied yet) and once the canary is ready, until it answers 2xx; a Fail is not asked
  again (it rolls back), an Error is asked again each interval.
- rollback and load-test: each interval while the canary is live (Progressing, Paused).
- confirm-promotion: each interval once promotion is otherwise earned (every step done,
  every background metric's last result a Pass), until it answers 2xx.
- post-rollout: once, after a promotion or rollback; the move that ends the rollout
  records it as due (a WebhookStatus without a verdict), so that a result in the status
  means it was called, even across a restart of the controller.

Results belong to one rollout: starting a rollout clears them (transitions.start_rollout),
so a 2xx from a previous rollout never opens a gate of the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canary.api.analysis_template import AnalysisTemplateSpec
from canary.api.canary import Canary
from canary.api.durations import parse_duration
from canary.api.status import LIVE, CanaryStatus, Phase, Verdict, WebhookStatus
from canary.api.webhooks import Webhook
from canary.engine.clock import seconds_since
from canary.engine.limits import usable
from canary.engine.tasks import background_tasks, statuses_by_key, weight_before

WAITING_FOR_CONFIRMATION = "WaitingForConfirmation"
HOOK_INTERVAL_SECONDS = 30.0
_ENDED = (Phase.SUCCEEDED, Phase.ROLLED_BACK)


@dataclass(frozen=True)
class WebhookCall:
    """One webhook to call now: where, how patiently, and the JSON body to POST."""

    name: str
    type: str
    url: str
    timeout_seconds: float
    retries: int
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookResult:
    """Pass: a 2xx answer; Fail: another answer; Error: none (timeout, connection)."""

    verdict: Verdict
    message: str


def hook_interval(canary: Canary) -> float:
    background = canary.spec.analysis
    if background is not None and background.interval is not None:
        return parse_duration(background.interval)
    return HOOK_INTERVAL_SECONDS


def results_by_name(status: CanaryStatus) -> dict[str, WebhookStatus]:
    return {w.name: w for w in status.webhooks}


def of_type(canary: Canary, type_: str) -> list[Webhook]:
    return [w for w in canary.spec.webhooks if w.type == type_]


def unconfirmed(canary: Canary, status: CanaryStatus, type_: str) -> list[Webhook]:
    """The webhooks of `type_` without a 2xx in this rollout."""
    results = results_by_name(status)
    return [
        w
        for w in of_type(canary, type_)
        if w.name not in results or results[w.name].verdict is not Verdict.PASS
    ]


def before_traffic(canary: Canary, status: CanaryStatus) -> bool:
    """A running rollout that has sent the canary nothing yet: pre-rollout's moment."""
    index = status.current_step_index or 0
    return (
        status.phase is Phase.PROGRESSING
        and status.canary_weight == 0
        and weight_before(canary.spec.steps, index) == 0
    )


def promotion_earned(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> bool:
    status = canary.status
    if status.phase is not Phase.PROGRESSING:
        return False
    if (status.current_step_index or 0) < len(canary.spec.steps):
        return False
    statuses = statuses_by_key(status.analysis)
    return all(usable(t, statuses.get(t.key)) for t in background_tasks(canary, templates, now))


def due_webhooks(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    now: datetime,
    *,
    canary_ready: bool,
) -> list[WebhookCall]:
    """The webhooks the controller must call before calling step() at `now`."""
    return [
        _call(canary, hook)
        for hook, wait in _pending(canary, templates, now, canary_ready)
        if wait <= 0
    ]


def next_webhook_seconds(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    now: datetime,
    *,
    canary_ready: bool,
) -> float | None:
    """Seconds until the next webhook is due (0 if one is due now); None if none will be."""
    waits = [wait for _, wait in _pending(canary, templates, now, canary_ready)]
    return max(0.0, min(waits)) if waits else None


def _pending(
    canary: Canary,
    templates: Mapping[str, AnalysisTemplateSpec],
    now: datetime,
    canary_ready: bool,
) -> list[tuple[Webhook, float]]:
    """Each webhook that has something to say in this phase, with the seconds until it
    is due."""
    status = canary.status
    results = results_by_name(status)
    every = hook_interval(canary)
    repeat: list[Webhook] = []
    if status.phase is Phase.WAITING and status.reason == WAITING_FOR_CONFIRMATION:
        repeat += unconfirmed(canary, status, "confirm-rollout")
    if before_traffic(canary, status) and canary_ready:
        repeat += [
            w
            for w in unconfirmed(canary, status, "pre-rollout")
            if w.name not in results or results[w.name].verdict is not Verdict.FAIL
        ]
    if status.phase in LIVE:
        repeat += of_type(canary, "rollback") + of_type(canary, "load-test")
    if promotion_earned(canary, templates, now):
        repeat += unconfirmed(canary, status, "confirm-promotion")
    pending = [(w, _wait(results.get(w.name), every, now)) for w in repeat]
    if status.phase in _ENDED:
        pending += [
            (w, 0.0)
            for w in of_type(canary, "post-rollout")
            if w.name in results and results[w.name].called_at is None
        ]
    return pending


def _wait(previous: WebhookStatus | None, every: float, now: datetime) -> float:
    since = seconds_since(previous.called_at if previous else None, now)
    return 0.0 if since is None else every - since


def _call(canary: Canary, hook: Webhook) -> WebhookCall:
    status, meta = canary.status, canary.metadata
    payload = {
        "name": meta.name,
        "namespace": meta.namespace or "default",
        "webhook": hook.name,
        "type": hook.type,
        "phase": str(status.phase),
        "canaryRevision": status.canary_revision,
        "stableRevision": status.stable_revision,
        "canaryWeight": status.canary_weight,
        "step": status.current_step_index,
        "metadata": dict(hook.metadata),
    }
    return WebhookCall(
        hook.name, hook.type, hook.url, parse_duration(hook.timeout), hook.retries, payload
    )


def describe(hooks: list[Webhook], results: Mapping[str, WebhookStatus]) -> str:
    """Each webhook with its last answer, for a status message."""
    parts = []
    for hook in hooks:
        last = results.get(hook.name)
        if last is None or last.verdict is None:
            parts.append(f"{hook.name} (not called yet)")
        else:
            parts.append(f"{hook.name} ({last.verdict}: {last.message})")
    return ", ".join(parts)
