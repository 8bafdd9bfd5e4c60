"""The engine's inputs (what the controller observed) and outputs (what it should do).

The controller gathers `Observations`, calls `machine.step()`, applies `Decision.actions`
in order and only then writes `Decision.status`. If applying an action fails, the status
is not written, so the next reconcile decides again from the old status and repeats the
actions: every action must therefore be idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from canary.api.request_codec import RequestAction
from canary.api.status import CanaryStatus
from canary.engine.hooks import WebhookResult
from canary.engine.samples import Sample


@dataclass(frozen=True)
class ManualRequest:
    """A command from the CLI, read from an annotation on the Canary."""

    id: str
    action: RequestAction
    full: bool = False
    user: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class RejectedRequest:
    """A request annotation that could not be read: consumed once, with a Warning.

    id is the request's own id when it has a usable one, else one derived from the text,
    so that the same bad annotation is reported once, not on every reconcile.
    """

    id: str
    why: str


@dataclass(frozen=True)
class Observations:
    """What the controller saw this reconcile.

    Readiness flags are judged against the revisions in the status passed to step():
    `canary_ready` means <name>-canary is fully available at `status.canary_revision`;
    `stable_ready` means <name>-primary is fully available at the revision last written
    to it, i.e. `status.canary_revision` while the phase is Promoting, otherwise
    `status.stable_revision`. "Fully available" includes the Deployment controller having
    observed the latest generation, so a just-written template never reads as ready.

    `spec_errors` are the Canary's validation findings (canary.validation), checked
    against the same `templates` passed to step(): the engine takes them as given and
    checks nothing itself, so a missing template or an unusable deploy window must be
    among them. While there are any, step() only reports them (the Invalid condition).
    """

    target_revision: str | None
    stable_ready: bool
    canary_ready: bool
    samples: Mapping[str, Sample] = field(default_factory=dict)
    request: ManualRequest | RejectedRequest | None = None
    spec_errors: tuple[str, ...] = ()
    webhooks: Mapping[str, WebhookResult] = field(default_factory=dict)


@dataclass(frozen=True)
class InitializeStable:
    """Create or refresh <name>-primary from the target's template (not yet routed to)."""

    revision: str


@dataclass(frozen=True)
class EnsureCanary:
    """Create or update <name>-canary from the target's current template, scaled up."""

    revision: str


@dataclass(frozen=True)
class SetWeight:
    """One router call: the canary gets `weight`%, stable the rest."""

    weight: int


@dataclass(frozen=True)
class PromoteStable:
    """Copy the canary's template into <name>-primary."""

    revision: str


@dataclass(frozen=True)
class ScaleDownCanary:
    """Scale <name>-canary to zero replicas."""


@dataclass(frozen=True)
class EmitEvent:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


Action = InitializeStable | EnsureCanary | SetWeight | PromoteStable | ScaleDownCanary | EmitEvent


@dataclass(frozen=True)
class Decision:
    status: CanaryStatus
    actions: tuple[Action, ...]
    # Seconds until the engine wants to be called again; 0 means "right away", None means
    # only when something changes (a watch event).
    requeue_after: float | None
