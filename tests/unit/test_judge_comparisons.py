"""comparisons.count: what a comparison sample counts as requests and bad requests.

errorRate: errors. latency: requests above a bucket edge, the edge from slowerThan
(rounded up to the next edge) or from stable's traffic before the rollout (the baseline),
and once chosen kept for the rollout (the `fixed` argument).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from canary.api.analysis_template import Comparison
from canary.api.status import StepEvidence, Verdict
from canary.engine.judge import comparisons
from canary.engine.judge.comparisons import Counted, count, segment_of
from canary.engine.judge.core import Accepted, judge_rates
from canary.engine.judge.ratio import Segment
from canary.engine.samples import Buckets, BucketsSample, Counts, CountsSample

pytestmark = pytest.mark.unit

INF = math.inf

# seconds; cumulative counts at each edge
CANARY: Buckets = ((0.1, 500), (0.25, 900), (0.5, 960), (1.0, 1000), (INF, 1000))
STABLE: Buckets = ((0.1, 8000), (0.25, 9950), (0.5, 9999), (1.0, 10000), (INF, 10000))
BEFORE: Buckets = ((0.1, 9000), (0.25, 9890), (0.5, 9995), (1.0, 10000), (INF, 10000))


def latency(**kw: Any) -> Comparison:
    return Comparison(type="latency", buckets_query="b", tolerance=1.25, **kw)


def error_rate() -> Comparison:
    return Comparison(type="errorRate", requests_query="r", errors_query="e", tolerance=1.25)


def in_ms(buckets: Buckets) -> Buckets:
    return tuple((le * 1000, c) for le, c in buckets)


def test_error_rate_counts_errors() -> None:
    sample = CountsSample(canary=Counts(1000, 12), stable=Counts(9000, 90))
    assert count(error_rate(), sample, None) == Counted(Segment(1000, 12, 9000, 90), "error-rate")


def test_slower_than_on_an_edge_counts_the_requests_above_it_exactly() -> None:
    """250ms is 0.25 s up to float noise (250 x 0.001); it must land on the 0.25 edge."""
    counted = count(latency(slower_than="250ms"), BucketsSample(CANARY, STABLE), None)
    assert counted.segment == Segment(1000, 100, 10000, 50)
    assert counted.slower_than == 0.25
    assert counted.what == "slow requests (>250ms)"
    assert counted.detail.startswith("p99 in this step: canary ")
    assert " vs stable " in counted.detail


@pytest.mark.parametrize(
    ("slower_than", "edge", "bad"),
    [("200ms", 0.25, (100, 50)), ("251ms", 0.5, (40, 1)), ("0.6s", 1.0, (0, 0))],
)
def test_slower_than_between_edges_rounds_up_to_the_next_edge(
    slower_than: str, edge: float, bad: tuple[float, float]
) -> None:
    counted = count(latency(slower_than=slower_than), BucketsSample(CANARY, STABLE), None)
    assert counted.slower_than == edge
    assert (counted.segment.canary_bad, counted.segment.stable_bad) == bad


def test_slower_than_above_the_largest_edge_is_unusable() -> None:
    with pytest.raises(comparisons.Unusable, match=r"no bucket edge at or above slowerThan 2s"):
        count(latency(slower_than="2s"), BucketsSample(CANARY, STABLE), None)


def test_millisecond_histograms_count_the_same_requests() -> None:
    seconds = count(latency(slower_than="250ms"), BucketsSample(CANARY, STABLE), None)
    millis = count(
        latency(slower_than="250ms", unit="ms"),
        BucketsSample(in_ms(CANARY), in_ms(STABLE)),
        None,
    )
    assert millis.segment == seconds.segment
    assert millis.slower_than == 250
    assert millis.what == seconds.what == "slow requests (>250ms)"
    assert millis.detail == seconds.detail  # quantiles spoken in the same words


@pytest.mark.parametrize(
    ("quantile", "edge"),
    [(0.9, 0.1), (0.95, 0.25), (0.989, 0.25), (0.99, 0.5), (0.9995, 0.5), (0.99999, 1.0)],
)
def test_baseline_sets_the_edge_where_stable_reached_the_quantile(
    quantile: float, edge: float
) -> None:
    """BEFORE reaches 9000 at 0.1, 9890 at 0.25, 9995 at 0.5 and 10000 at 1.0 (of 10000)."""
    sample = BucketsSample(CANARY, STABLE, baseline=BEFORE)
    counted = count(latency(quantile=quantile), sample, None)
    assert counted.slower_than == edge
    assert counted.what.startswith("slow requests (>")


def test_baseline_quantile_in_the_inf_bucket_takes_the_largest_edge() -> None:
    tail: Buckets = ((0.1, 10), (0.25, 50), (0.5, 80), (1.0, 90), (INF, 100))
    counted = count(latency(), BucketsSample(CANARY, STABLE, baseline=tail), None)
    assert counted.slower_than == 1.0


def test_a_fixed_bound_is_used_as_is() -> None:
    """Once chosen the bound stays: neither slowerThan nor the baseline moves it."""
    for comparison, baseline in ((latency(slower_than="500ms"), None), (latency(), BEFORE)):
        counted = count(comparison, BucketsSample(CANARY, STABLE, baseline=baseline), 0.25)
        assert counted.slower_than == 0.25
        assert counted.segment == Segment(1000, 100, 10000, 50)


def test_without_slower_than_the_bound_needs_a_baseline() -> None:
    with pytest.raises(comparisons.Unusable, match="traffic before the rollout"):
        count(latency(), BucketsSample(CANARY, STABLE), None)


def test_an_empty_baseline_is_unusable_and_names_slower_than() -> None:
    empty: Buckets = ((0.1, 0), (0.25, 0), (0.5, 0), (1.0, 0), (INF, 0))
    with pytest.raises(comparisons.Unusable) as raised:
        count(latency(baseline_window="30m"), BucketsSample(CANARY, STABLE, empty), None)
    message = str(raised.value)
    assert "slowerThan" in message and "30m" in message


@pytest.mark.parametrize("variant", ["canary", "stable"])
def test_a_variant_without_the_edge_is_unusable(variant: str) -> None:
    lacking: Buckets = ((0.1, 500), (0.3, 900), (0.5, 960), (1.0, 1000), (INF, 1000))
    canary, stable = (lacking, STABLE) if variant == "canary" else (CANARY, lacking)
    with pytest.raises(comparisons.Unusable, match=rf"the {variant} histogram has no bucket"):
        count(latency(), BucketsSample(canary, stable), 0.25)


@pytest.mark.parametrize("variant", ["canary", "stable", "baseline"])
def test_a_broken_histogram_is_unusable_naming_the_variant(variant: str) -> None:
    broken: Buckets = ((0.1, 5), (0.5, 10))  # no +Inf bucket
    buckets = {"canary": CANARY, "stable": STABLE, "baseline": BEFORE} | {variant: broken}
    sample = BucketsSample(buckets["canary"], buckets["stable"], buckets["baseline"])
    with pytest.raises(comparisons.Unusable, match=rf"{variant} histogram unusable"):
        count(latency(), sample, None)


def test_detail_is_left_out_while_a_variant_has_no_requests() -> None:
    idle: Buckets = ((0.1, 0), (0.25, 0), (0.5, 0), (1.0, 0), (INF, 0))
    counted = count(latency(slower_than="250ms"), BucketsSample(idle, STABLE), None)
    assert counted.segment == Segment(0, 0, 10000, 50)
    assert counted.detail == ""


def test_detail_says_when_the_quantile_is_in_the_inf_bucket() -> None:
    slow: Buckets = ((0.1, 100), (0.25, 200), (0.5, 300), (1.0, 400), (INF, 1000))
    counted = count(latency(slower_than="250ms"), BucketsSample(slow, STABLE), None)
    assert "canary ≥1s (+Inf bucket)" in counted.detail
    assert counted.segment.canary_bad == 800


@pytest.mark.parametrize(
    ("comparison", "sample"),
    [
        (latency(slower_than="250ms"), CountsSample(Counts(10, 1), Counts(90, 1))),
        (error_rate(), BucketsSample(CANARY, STABLE)),
    ],
    ids=["counts-for-latency", "buckets-for-errorRate"],
)
def test_a_sample_of_the_wrong_kind_is_a_programming_error(
    comparison: Comparison, sample: CountsSample | BucketsSample
) -> None:
    with pytest.raises(ValueError, match="cannot feed a"):
        count(comparison, sample, None)


def test_segment_of_step_evidence() -> None:
    evidence = StepEvidence(
        step=2, canary_requests=10, canary_bad=1, stable_requests=90, stable_bad=2
    )
    assert segment_of(evidence) == Segment(10, 1, 90, 2)


def test_counted_slow_requests_feed_the_judge() -> None:
    counted = count(latency(slower_than="250ms"), BucketsSample(CANARY, STABLE), None)
    j = judge_rates(
        [counted.segment],
        what=counted.what,
        tolerance=1.25,
        accepted=Accepted(added=0.0075),
        alpha=0.01,
        alpha_pass=0.05,
        min_requests=100,
        detail=counted.detail,
    )
    assert j.verdict is Verdict.FAIL  # 10% slow against 0.5%
    assert j.reason.startswith("slow requests (>250ms): canary 10% (100/1000) vs stable 0.5%")
    assert f"; {counted.detail}; " in j.reason
