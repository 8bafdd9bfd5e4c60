"""The AnalysisTemplate and ClusterAnalysisTemplate resources: arguments and metrics, each
metric a provider block with one check (a threshold or a comparison of canary and stable)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from canary.api.base import API_VERSION, Duration, Model, ObjectMeta


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


class AnalysisTemplate(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: Literal["canary.dev/v1alpha1"] = API_VERSION
    kind: Literal["AnalysisTemplate", "ClusterAnalysisTemplate"] = "AnalysisTemplate"
    metadata: ObjectMeta
    spec: AnalysisTemplateSpec
