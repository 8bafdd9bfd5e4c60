"""Draft: the status a step() call is building, and the actions it has chosen so far.

Every change goes through Draft.update, checked against CanaryStatus's fields and types,
so a misspelt field fails in the move that made it instead of being dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict, Unpack

from canary.api.status import (
    CanaryStatus,
    Condition,
    MetricStatus,
    NotificationRecord,
    Phase,
    RequestOutcome,
    WebhookStatus,
)
from canary.engine.actions import Action, EmitEvent


class StatusChange(TypedDict, total=False):
    """Any of CanaryStatus's fields, with its type (a unit test keeps the two alike), but
    route_weight: what the data plane carries is read after the actions, by the controller."""

    phase: Phase
    observed_generation: int | None
    stable_revision: str | None
    canary_revision: str | None
    current_step_index: int | None
    canary_weight: int
    message: str
    reason: str
    step_started_at: str | None
    rollout_started_at: str | None
    initializing_since: str | None
    paused_at: str | None
    bake_started_at: str | None
    resumed_at: str | None
    metrics_unavailable_intervals: int
    routed_back_at: str | None
    canary_scale_down_at: str | None
    last_request_id: str | None
    last_request_outcome: RequestOutcome | None
    last_request_message: str | None
    conditions: list[Condition]
    analysis: list[MetricStatus]
    notifications: list[NotificationRecord]
    webhooks: list[WebhookStatus]
    phase_display: str | None
    step_display: str | None


@dataclass
class Draft:
    status: CanaryStatus
    actions: list[Action] = field(default_factory=list)

    def update(self, **changes: Unpack[StatusChange]) -> None:
        """Change status fields. A misspelt field or a wrong value fails here, in the move
        that made it (and mostly in mypy before), instead of being dropped or written."""
        # Checked by hand: validation alone would take a wire name (canaryWeight) too.
        unknown = changes.keys() - CanaryStatus.model_fields.keys()
        if unknown:
            raise TypeError(f"CanaryStatus has no field {', '.join(sorted(unknown))}")
        # Strict: a phase is a Phase, not any string that happens to spell one.
        self.status = CanaryStatus.model_validate({**self.status.__dict__, **changes}, strict=True)

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.actions.append(EmitEvent(type_, reason, message))

    def enter(
        self, phase: Phase, reason: str, message: str, *, warning: bool = False, audit: str = ""
    ) -> None:
        """Change phase (or restart it) with exactly one event saying why (and who asked)."""
        message = f"{message} ({audit})" if audit else message
        self.update(phase=phase, reason=reason, message=message)
        self.event("Warning" if warning else "Normal", reason, message)

    def say(self, message: str) -> None:
        """Update the message of a phase that continues; no event, to avoid spam."""
        self.update(message=message)
