"""The Canary resource: the rollout a user asks for (its spec) and the whole object."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from canary.api.base import API_VERSION, Duration, Model, ObjectMeta
from canary.api.instants import Instant
from canary.api.status import CanaryStatus
from canary.api.webhooks import Webhook


class TargetRef(Model):
    kind: Literal["Deployment"] = "Deployment"
    name: str = Field(min_length=1, description="The Deployment in this namespace to roll out.")


class ServiceSpec(Model):
    port: int = Field(ge=1, le=65535, description="Port the stable and canary Services expose.")
    target_port: int | str | None = Field(
        default=None, description="Container port; defaults to `port`."
    )


class GatewayAPIRouting(Model):
    http_route: str = Field(min_length=1, description="HTTPRoute whose backendRefs are weighted.")


class IstioRouting(Model):
    virtual_service: str = Field(min_length=1)
    routes: list[str] = Field(default_factory=list)


class NginxRouting(Model):
    ingress: str = Field(min_length=1)


class TrafficRouting(Model):
    # At most one router; the CRD mirrors _one_router so the API server rejects it too.
    model_config = ConfigDict(json_schema_extra={"maxProperties": 1})

    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    istio: IstioRouting | None = None
    nginx: NginxRouting | None = None

    @model_validator(mode="after")
    def _one_router(self) -> TrafficRouting:
        fields = type(self).model_fields
        if sum(getattr(self, n) is not None for n in fields) > 1:
            raise ValueError(
                f"set only one of {', '.join(f.alias or n for n, f in fields.items())} "
                "(or leave trafficRouting out for replica-ratio routing)"
            )
        return self


class Arg(Model):
    name: str = Field(min_length=1)
    value: str | None = None


class TemplateRef(Model):
    template_name: str = Field(min_length=1)
    cluster_scope: bool = Field(
        default=False, description="Look up a ClusterAnalysisTemplate instead."
    )


def template_key(template_name: str, cluster_scope: bool = False) -> str:
    """The key of a referenced template in the `templates` mapping that validation and the
    engine are given: ClusterAnalysisTemplates get their own prefix, since a namespaced
    template and a cluster-scoped one may share a name."""
    return f"cluster/{template_name}" if cluster_scope else template_name


class StepAnalysis(Model):
    templates: list[TemplateRef] = Field(min_length=1)
    args: list[Arg] = Field(default_factory=list)


class BackgroundAnalysis(StepAnalysis):
    interval: Duration | None = Field(default=None, description="Overrides each metric's interval.")


class Pause(Model):
    duration: Duration | None = Field(
        default=None, description="Leave out to wait for `canary promote`."
    )


class Step(Model):
    # Exactly one kind per step; the CRD mirrors _one_kind so the API server rejects it too.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["setWeight"]},
                {"required": ["pause"]},
                {"required": ["analysis"]},
            ]
        }
    )

    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic to send to the canary."
    )
    pause: Pause | None = Field(default=None, description="Wait, for a duration or for promotion.")
    analysis: StepAnalysis | None = Field(
        default=None, description="Run these templates to completion before the next step."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("set_weight", "pause", "analysis") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("each step sets exactly one of setWeight, pause, analysis")
        return self


Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WORKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri")


class Blackout(Model):
    start: Instant = Field(description="When the freeze begins, e.g. 2026-11-27T00:00:00-05:00.")
    end: Instant = Field(description="When it is over (exclusive), with its UTC offset.")
    reason: str = Field(
        min_length=1, max_length=100, description="Shown to users whose release waits."
    )


class DeployWindow(Model):
    timezone: str = Field(default="UTC", description="For days, start and end.")
    days: list[Weekday] = Field(default_factory=lambda: list(WORKDAYS))
    # start and end go together; with neither, only the blackouts restrict rollouts.
    start: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str | None = Field(default=None, pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    blackouts: list[Blackout] = Field(
        default_factory=list,
        description="Dated freezes: no rollout starts from start until end, open or not.",
    )


class Bake(Model):
    duration: Duration = Field(description="How long the release is watched after promotion.")
    holdback: int = Field(
        default=5,
        ge=0,
        le=50,
        description=(
            "Percent of traffic that stays on the previous revision during the bake, so that "
            "comparisons go on; 0 leaves only threshold metrics to judge."
        ),
    )


def minutes_of_day(hhmm: str) -> int:
    """A DeployWindow time ("HH:MM") as minutes since midnight; "24:00" is 1440."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class CanarySpec(Model):
    target_ref: TargetRef
    service: ServiceSpec
    traffic_routing: TrafficRouting | None = Field(
        default=None, description="How traffic is split; leave out for replica-ratio routing."
    )
    steps: list[Step] = Field(min_length=1, description="The rollout, in order.")
    analysis: BackgroundAnalysis | None = Field(
        default=None, description="Background analysis: runs from the first step to promotion."
    )
    bake: Bake | None = Field(
        default=None,
        description=(
            "Watch the release after promotion, the previous revision still serving the "
            "holdback: a Fail rolls back with one router call."
        ),
    )
    deploy_window: DeployWindow | None = Field(
        default=None,
        description="Rollouts start only inside this window, and never during its blackouts.",
    )
    progress_deadline_seconds: int = Field(default=600, ge=1)
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        description=(
            "How long pods keep running after traffic has left them, so that a data plane "
            "that applies a route change late still reaches them: N-canary after a rollback "
            "or promotion, N-primary and N-canary after a deleted Canary's traffic went "
            "back. 0 scales down at once."
        ),
    )
    max_metrics_unavailable_intervals: int = Field(
        default=3,
        ge=1,
        description=(
            "After this many analysis intervals without usable metrics, traffic returns "
            "to stable and the rollout pauses (reason MetricsUnavailable) instead of deciding."
        ),
    )
    webhooks: list[Webhook] = Field(
        default_factory=list,
        description="HTTP endpoints the rollout asks before it moves traffic or promotes, "
        "asks whether to roll back, or tells (load tests, notifications).",
    )


class Canary(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: Literal["canary.dev/v1alpha1"] = API_VERSION
    kind: Literal["Canary"] = "Canary"
    metadata: ObjectMeta
    spec: CanarySpec
    status: CanaryStatus = Field(default_factory=CanaryStatus)
