"""The Canary's status, which only the controller writes: where the rollout is, each metric's
verdict and evidence, and what became of the last manual request."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from canary.api.base import Model


class Phase(StrEnum):
    IDLE = "Idle"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    BAKING = "Baking"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


# Phases in which the canary Deployment is scaled up and may carry traffic. Kept next to
# Phase so that every engine module reads one list (two copies drifted once).
LIVE = (Phase.PROGRESSING, Phase.PAUSED, Phase.BAKING)


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class RequestOutcome(StrEnum):
    APPLIED = "Applied"
    IGNORED = "Ignored"  # it does not apply in the current phase
    REJECTED = "Rejected"  # unreadable, or sent at an untimely time


class DeliveryState(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"  # every attempt failed, or the sink refused it for good


class SinkDelivery(Model):
    name: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = Field(default=0, ge=0)
    error: str | None = None


class NotificationRecord(Model):
    """One notification in the outbox: written in the same status write as the transition
    it announces, so a crash cannot lose it or announce one transition twice."""

    id: str = Field(description="Stable across resends, so a receiver can deduplicate.")
    trigger: str
    reason: str
    phase: Phase
    revision: str | None = None
    message: str = ""
    time: str
    sinks: list[SinkDelivery] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class StepEvidence(Model):
    """One step's counts for a comparison metric: the test's sufficient statistics.

    Bad requests are errors (errorRate) or requests slower than the bound (latency).
    Kept in the status so that a restarted controller continues the same test.
    """

    step: int = Field(ge=0)
    canary_requests: float = 0.0
    canary_bad: float = 0.0
    stable_requests: float = 0.0
    stable_bad: float = 0.0


class MetricStatus(Model):
    name: str
    verdict: Verdict | None = None
    value: str | None = None
    reason: str = ""
    measured_at: str | None = None
    measurements: int = 0
    failures: int = 0
    inconclusives: int = 0
    consecutive_errors: int = 0
    evidence: list[StepEvidence] = Field(
        default_factory=list, description="Comparison metrics: counts per step, pooled."
    )
    passed_at: str | None = Field(
        default=None,
        description="Comparisons: when the metric earned its Pass; it stands until a Fail.",
    )
    rollback_evidence: float | None = Field(
        default=None,
        description="Comparisons: the e-value against the canary; it rolls back at "
        "1/maxFalseRollback, and the rollout raises no weight while it is past the square "
        "root of that.",
    )
    slower_than: float | None = Field(
        default=None,
        description="Latency comparisons: the bucket edge (in the histogram's unit) above "
        "which a request counts as slow, fixed for the whole rollout.",
    )


class WebhookStatus(Model):
    """A webhook's last result in the current rollout; verdict None: due, not called yet."""

    name: str
    type: str
    verdict: Verdict | None = Field(
        default=None, description="Pass (2xx), Fail (another answer) or Error (no answer)."
    )
    message: str = ""
    called_at: str | None = None
    calls: int = 0


class CanaryStatus(Model):
    phase: Phase = Phase.IDLE
    observed_generation: int | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    current_step_index: int | None = None
    canary_weight: int = 0
    route_weight: int | None = Field(
        default=None,
        description="The canary weight the data plane carried at the last reconcile, as its "
        "router reads it (replica routing: the canary's share of the ready pods). It can "
        "differ from canaryWeight, the weight desired: while pods start, after a hand edit "
        "of the route, or where replicas cannot split finely enough.",
    )
    message: str = ""
    reason: str = ""
    step_started_at: str | None = None
    rollout_started_at: str | None = None
    initializing_since: str | None = Field(
        default=None,
        description="When N-primary was asked to run stableRevision at onboarding. A newer "
        "revision waits for it (and is then rolled out with analysis), unless it has not "
        "served within progressDeadlineSeconds.",
    )
    paused_at: str | None = None
    bake_started_at: str | None = Field(
        default=None,
        description="When the bake began: the promotion gate passed, the new revision "
        "took all traffic but spec.bake.holdback.",
    )
    resumed_at: str | None = Field(
        default=None,
        description="When a human last resumed a rollout paused for NotEnoughEvidence.",
    )
    metrics_unavailable_intervals: int = 0
    routed_back_at: str | None = Field(
        default=None,
        description="The Canary is being deleted: when traffic went back to the user's "
        "Deployment. N-primary and N-canary go spec.scaleDownDelaySeconds later.",
    )
    canary_scale_down_at: str | None = Field(
        default=None,
        description="When N-canary is scaled down: traffic has left it, and it keeps "
        "running spec.scaleDownDelaySeconds for data planes that apply the route late.",
    )
    last_request_id: str | None = None
    last_request_outcome: RequestOutcome | None = Field(
        default=None,
        description="What became of request lastRequestId: Applied, Ignored (it does not "
        "apply in this phase) or Rejected (unreadable or untimely). The CLI reports it.",
    )
    last_request_message: str | None = Field(
        default=None, description="Why request lastRequestId was ignored or rejected."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    analysis: list[MetricStatus] = Field(default_factory=list)
    notifications: list[NotificationRecord] = Field(
        default_factory=list,
        description="The last notifications and their delivery to each sink (the outbox "
        "of the leader's notifier).",
    )
    webhooks: list[WebhookStatus] = Field(default_factory=list)
    phase_display: str | None = Field(
        default=None,
        description="The phase, or Invalid while the spec is invalid: for kubectl's columns, "
        "which cannot read conditions.",
    )
    step_display: str | None = Field(
        default=None,
        description="currentStepIndex 1-based with the step count, e.g. 4/6: for kubectl's "
        "columns, which cannot add.",
    )
