"""The resources' schema: pydantic models are the source of truth for the CRDs in manifests/.

Field names are snake_case in Python and camelCase on the wire (the Kubernetes convention);
always serialise with ``model_dump(by_alias=True, exclude_none=True)``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from canary.api.durations import parse_duration

GROUP = "canary.dev"
VERSION = "v1alpha1"
API_VERSION: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"}),
]


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        """The dict as it is stored in Kubernetes."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- Canary spec


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


class DeployWindow(Model):
    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WORKDAYS))
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")


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
    deploy_window: DeployWindow | None = Field(
        default=None, description="Rollouts start only inside this window."
    )
    progress_deadline_seconds: int = Field(default=600, ge=1)
    max_metrics_unavailable_intervals: int = Field(
        default=3,
        ge=1,
        description=(
            "After this many analysis intervals without usable metrics, traffic returns "
            "to stable and the rollout pauses (reason MetricsUnavailable) instead of deciding."
        ),
    )


# ---------------------------------------------------------------- Canary status


class Phase(StrEnum):
    IDLE = "Idle"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class RequestOutcome(StrEnum):
    APPLIED = "Applied"
    IGNORED = "Ignored"  # it does not apply in the current phase
    REJECTED = "Rejected"  # unreadable, or sent at an untimely time


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


class CanaryStatus(Model):
    phase: Phase = Phase.IDLE
    observed_generation: int | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    current_step_index: int | None = None
    canary_weight: int = 0
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
    resumed_at: str | None = Field(
        default=None,
        description="When a human last resumed a rollout paused for NotEnoughEvidence.",
    )
    metrics_unavailable_intervals: int = 0
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


# ---------------------------------------------------------------- analysis templates


class ThresholdRange(Model):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # mirrors _some_bound

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> ThresholdRange:
        if self.min is None and self.max is None:
            raise ValueError("thresholdRange needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("thresholdRange.min must not exceed thresholdRange.max")
        return self


class Provider(Model):
    """One block named after a provider plug-in, e.g. prometheus: {query: ...}."""

    # Each plug-in (canary.providers) owns its block's schema and checks it, so that adding
    # a backend never touches the resource schema; this model only insists on one block.

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"minProperties": 1, "maxProperties": 1},  # mirrors _one_backend
    )

    @model_validator(mode="after")
    def _one_backend(self) -> Provider:
        blocks = self.model_extra or {}
        if len(blocks) != 1:
            raise ValueError("provider must name exactly one backend, e.g. prometheus: {...}")
        name, block = next(iter(blocks.items()))
        if not isinstance(block, dict):
            raise ValueError(f"provider.{name} must be a mapping of its settings")
        return self

    @property
    def backend(self) -> tuple[str, dict[str, Any]]:
        """(the plug-in's name, its block as written)."""
        name, block = next(iter((self.model_extra or {}).items()))
        return name, block


class AcceptedRegression(Model):
    """The largest regression a rollout may be promoted with; either bound suffices."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # mirrors _some_bound

    ratio: float | None = Field(
        default=None, gt=1, description="The canary may have up to this times stable's rate."
    )
    added_per100: float | None = Field(
        default=None,
        gt=0,
        lt=100,
        alias="addedPer100",
        description="The canary may add up to this many bad requests per 100 requests.",
    )

    @model_validator(mode="after")
    def _some_bound(self) -> AcceptedRegression:
        if self.ratio is None and self.added_per100 is None:
            raise ValueError("acceptedRegression needs ratio, addedPer100 or both")
        return self


class Comparison(Model):
    """Canary against stable. Queries may use {{variant}} (canary|stable) and {{window}}."""

    type: Literal["errorRate", "latency"]
    requests_query: str | None = None
    errors_query: str | None = None
    buckets_query: str | None = Field(
        default=None, description="Cumulative histogram buckets, one series per `le`."
    )
    quantile: float = Field(
        default=0.99,
        gt=0,
        lt=1,
        description="latency: without slowerThan, the bound is the bucket edge at stable's "
        "quantile before the rollout; the quantile is also shown for both variants.",
    )
    slower_than: Duration | None = Field(
        default=None,
        description="latency: a request slower than this (an SLO; rounded up to a bucket "
        "edge) is a slow request. Leave out to take the bound from stable's own traffic "
        "before the rollout (baselineWindow).",
    )
    baseline_window: Duration = Field(
        default="1h",
        description="latency without slowerThan: how much of stable's traffic before the "
        "rollout sets the bound.",
    )
    unit: Literal["s", "ms"] = Field(
        default="s", description="latency: the unit of the histogram's `le` bounds."
    )
    tolerance: float = Field(
        ge=1,
        description="Roll back once the canary's rate of errors (errorRate) or of slow "
        "requests (latency) is shown to exceed this times stable's (1.25).",
    )
    accepted_regression: AcceptedRegression = Field(
        default_factory=lambda: AcceptedRegression(addedPer100=0.75),
        description="Promote only once a regression beyond this is ruled out.",
    )
    max_false_rollback: float = Field(default=0.01, gt=0, lt=0.5)
    max_false_promotion: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="The chance of ever passing a canary worse than acceptedRegression.",
    )
    min_requests: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _queries(self) -> Comparison:
        if self.type == "errorRate" and not (self.requests_query and self.errors_query):
            raise ValueError("errorRate comparison needs requestsQuery and errorsQuery")
        if self.type == "latency" and not self.buckets_query:
            raise ValueError("latency comparison needs bucketsQuery")
        if self.type == "errorRate" and self.slower_than is not None:
            raise ValueError("slowerThan applies to latency comparisons only")
        return self


class Metric(Model):
    # Exactly one check; the CRD mirrors _one_check so the API server rejects it too.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["thresholdRange"]}, {"required": ["comparison"]}]
        }
    )

    name: str = Field(min_length=1)
    provider: Provider
    interval: Duration = "30s"
    count: int | None = Field(
        default=None, ge=1, description="Stop measuring after this many (inline steps)."
    )
    threshold_range: ThresholdRange | None = None
    comparison: Comparison | None = None
    failure_limit: int = Field(default=0, ge=0)
    inconclusive_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _one_check(self) -> Metric:
        if (self.threshold_range is None) == (self.comparison is None):
            raise ValueError("a metric has exactly one of thresholdRange, comparison")
        return self


class TemplateArg(Model):
    name: str = Field(min_length=1)
    value: str | None = Field(default=None, description="Default; leave out to require it.")


class AnalysisTemplateSpec(Model):
    args: list[TemplateArg] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)


# ---------------------------------------------------------------- manual requests

RequestAction = Literal["promote", "abort", "pause", "resume", "retry"]


class RequestAnnotation(BaseModel):
    """The JSON in the canary.dev/request annotation, as the CLI writes it.

    Strict: a request is an instruction to move production traffic, so "full": "no" is an
    error rather than a truthy string, and an unknown action is an error rather than a
    guess.

    canary.api.request_codec writes and reads it. `model_dump_json()` is the one form the
    admission policy (manifests/admission.yaml) accepts: compact, keys in field order. CEL
    cannot parse JSON, so the policy matches that form with a pattern and compares the
    "user" part with the user the API server authenticated; the field patterns here keep
    the CLI inside that pattern.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    action: RequestAction
    full: bool = False
    user: str = Field(
        # Quotes, backslashes and control characters would be escaped in JSON, which the
        # policy's pattern refuses (an escape could hide a second "user").
        pattern=r'^[^"\\\x00-\x1f]{1,256}$',
        description="Who asked: the username the API server authenticated.",
    )
    at: str = Field(description="ISO 8601 time the request was made, with its time zone.")

    @property
    def sent_at(self) -> datetime:
        return datetime.fromisoformat(self.at)

    @model_validator(mode="after")
    def _time(self) -> RequestAnnotation:
        try:
            at = self.sent_at
        except ValueError:
            raise ValueError(f"at: {self.at!r} is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise ValueError(f"at: {self.at!r} has no time zone (the CLI writes UTC: +00:00)")
        return self


# ---------------------------------------------------------------- whole objects


class ObjectMeta(BaseModel):
    """The parts of metadata we read; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    name: str
    namespace: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class Canary(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: Literal["canary.dev/v1alpha1"] = API_VERSION
    kind: Literal["Canary"] = "Canary"
    metadata: ObjectMeta
    spec: CanarySpec
    status: CanaryStatus = Field(default_factory=CanaryStatus)


class AnalysisTemplate(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: Literal["canary.dev/v1alpha1"] = API_VERSION
    kind: Literal["AnalysisTemplate", "ClusterAnalysisTemplate"] = "AnalysisTemplate"
    metadata: ObjectMeta
    spec: AnalysisTemplateSpec
