"""What a metric provider hands the engine: raw numbers, never verdicts.

Providers turn a query into one of these values; the engine (verdicts.py, judge.py)
turns them into Pass / Fail / Inconclusive / Error. Keeping verdicts out of the
providers means every provider is judged by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from canary.api.analysis_template import Metric


@dataclass(frozen=True)
class ScalarSample:
    """A threshold query's result; None when the query returned no series (too little data)."""

    value: float | None


@dataclass(frozen=True)
class Counts:
    requests: float
    errors: float


@dataclass(frozen=True)
class CountsSample:
    """errorRate comparison: requests and errors per variant since the step started."""

    canary: Counts
    stable: Counts


# Cumulative histogram: (upper bound `le`, cumulative count), ascending, +Inf last.
Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class BucketsSample:
    """latency comparison: cumulative bucket counts per variant since the step started,
    and stable's before the rollout when the task asked for a baseline."""

    canary: Buckets
    stable: Buckets
    baseline: Buckets | None = None


@dataclass(frozen=True)
class ProviderFailure:
    """The provider could not answer (unreachable, HTTP 5xx, bad query): the Error verdict."""

    message: str
    transient: bool = True


Sample = ScalarSample | CountsSample | BucketsSample | ProviderFailure


@dataclass(frozen=True)
class Baseline:
    """Also measure stable's buckets over `seconds` ending at `end` (the rollout's start)."""

    end: datetime
    seconds: float


@dataclass(frozen=True)
class MetricTask:
    """One metric due for measurement now, with everything a provider needs to query it."""

    key: str  # unique within a Canary, e.g. "background/error-rate" or "step-1/error-rate"
    metric: Metric
    args: Mapping[str, str] = field(default_factory=dict)
    window_seconds: float = 60.0  # time since the step (or rollout) started; feeds increase()
    step: int = 0  # the step whose traffic the window holds (a comparison's evidence key)
    baseline: Baseline | None = None  # latency without slowerThan, until the bound is fixed
    bake: bool = False  # a comparison judges the bake's evidence alone (engine/bake.py)
