"""What a comparison sample counts: requests and bad requests of each variant.

errorRate: a bad request is an error. latency: a bad request is one slower than a bound,
a bucket edge of the histogram, so that it is counted exactly rather than interpolated.
The bound is fixed once per rollout, before the rollout's own data can sway it:

- `slowerThan` (an SLO), rounded up to the next bucket edge; or else
- the edge at which stable's cumulative count reached `quantile` over `baselineWindow`
  of traffic before the rollout started (the sample's baseline), kept in the metric's
  status (slower_than) for the rest of the rollout.

A latency regression then shows up as a rise in the share of slow requests, which the
same ratio machinery as errors judges (judge.py). Testing a share at a fixed edge needs
far fewer requests than bounding two p99 estimates, and a longer tail moves it a lot:
with stable's p99 at 180 ms and log-normal latency, a canary p99 of 270 ms has about
four times stable's share above 200 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canary.api.analysis_template import Comparison
from canary.api.durations import parse_duration
from canary.api.status import StepEvidence
from canary.engine.judge import histogram as judge_histogram
from canary.engine.judge.histogram import Histogram, HistogramError
from canary.engine.judge.ratio import Segment
from canary.engine.samples import Buckets, BucketsSample, CountsSample


class Unusable(Exception):
    """The sample cannot be counted yet; the message says why and what would fix it."""


@dataclass(frozen=True)
class Counted:
    segment: Segment
    what: str  # names the bad requests in reasons
    detail: str = ""
    slower_than: float | None = None  # latency: the bound used, in the histogram's unit


def segment_of(evidence: StepEvidence) -> Segment:
    return Segment(
        evidence.canary_requests,
        evidence.canary_bad,
        evidence.stable_requests,
        evidence.stable_bad,
    )


def count(
    comparison: Comparison, sample: CountsSample | BucketsSample, fixed: float | None
) -> Counted:
    """The sample as a Segment; `fixed` is the latency bound already chosen, if any."""
    if isinstance(sample, CountsSample) and comparison.type == "errorRate":
        canary, stable = sample.canary, sample.stable
        segment = Segment(canary.requests, canary.errors, stable.requests, stable.errors)
        return Counted(segment, "error-rate")
    if isinstance(sample, BucketsSample) and comparison.type == "latency":
        return _slow_requests(comparison, sample, fixed)
    kind = type(sample).__name__
    raise ValueError(f"{kind} cannot feed a {comparison.type} comparison")


def _slow_requests(comparison: Comparison, sample: BucketsSample, fixed: float | None) -> Counted:
    canary = _parse("canary", sample.canary)
    stable = _parse("stable", sample.stable)
    bound = fixed if fixed is not None else _bound(comparison, stable, sample.baseline)
    canary_bad = canary.total - _count_at(canary, bound, "canary")
    stable_bad = stable.total - _count_at(stable, bound, "stable")
    segment = Segment(canary.total, canary_bad, stable.total, stable_bad)
    q, unit = comparison.quantile, comparison.unit
    detail = ""
    if canary.total > 0 and stable.total > 0:
        label = f"p{100 * q:.10g}"
        detail = (
            f"{label} in this step: canary {_latency(canary, q, unit)} vs stable "
            f"{_latency(stable, q, unit)}"
        )
    return Counted(segment, f"slow requests (>{_duration(bound, unit)})", detail, bound)


def _bound(comparison: Comparison, stable: Histogram, baseline: Buckets | None) -> float:
    unit = comparison.unit
    if comparison.slower_than is not None:
        seconds = parse_duration(comparison.slower_than)
        slo = seconds * 1000 if unit == "ms" else seconds
        edge = next((b for b in stable.bounds if b >= slo * (1 - 1e-9)), None)
        if edge is None:
            raise Unusable(
                f"no bucket edge at or above slowerThan {comparison.slower_than} "
                f"(the largest is {_duration(stable.bounds[-1], unit)}); lower slowerThan "
                "or add buckets"
            )
        return edge
    if baseline is None:
        raise Unusable("the latency bound needs stable's traffic before the rollout")
    if not baseline or baseline[-1][1] <= 0:
        raise Unusable(
            f"stable served no requests in the {comparison.baseline_window} before the "
            "rollout, so nothing sets the slow-request bound; set comparison.slowerThan"
        )
    before = _parse("baseline", baseline)
    rank = comparison.quantile * before.total
    return next(
        (b for b, c in zip(before.bounds, before.cumulative, strict=False) if c >= rank),
        before.bounds[-1],
    )


def _parse(variant: str, buckets: Buckets) -> Histogram:
    try:
        return judge_histogram.parse(buckets)
    except HistogramError as exc:
        raise Unusable(f"{variant} histogram unusable: {exc}") from None


def _count_at(h: Histogram, bound: float, variant: str) -> float:
    for edge, count in zip(h.bounds, h.cumulative, strict=False):
        if math.isclose(edge, bound, rel_tol=1e-9):
            return count
    raise Unusable(
        f"the {variant} histogram has no bucket at le={bound:g}; both variants need the "
        "same bucket edges"
    )


def _duration(value: float, unit: str) -> str:
    seconds = value / 1000 if unit == "ms" else value
    return f"{seconds * 1000:.3g}ms" if seconds < 1 else f"{seconds:.3g}s"


def _latency(h: Histogram, q: float, unit: str) -> str:
    text = _duration(h.quantile(q), unit)
    return f"≥{text} (+Inf bucket)" if h.beyond_last_bound(q) else text
