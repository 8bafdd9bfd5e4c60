"""The simulator's traffic model: Poisson counts, Binomial errors, log-normal latency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canary.simulate.scenario import Latency, Scenario, ScenarioError, parse_scenario
from canary.simulate.traffic import CANARY, STABLE, LatencyModel, World, histogram_quantile


def scenario(**overrides: object) -> Scenario:
    fields: dict[str, object] = {
        "duration": "30m",
        "rps": 20,
        "stable": {"error_rate": 0.01, "latency_ms": {"p50": 40, "p99": 180}},
        "canary": {"error_rate": 0.05, "latency_ms": {"p50": 40, "p99": 270}},
    }
    return parse_scenario({**fields, **overrides})


def within(observed: float, expected: float, sigmas: float = 4.0) -> bool:
    """Poisson/Binomial count within `sigmas` standard deviations of its mean."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected)


def test_request_counts_match_the_rate_split_by_weight() -> None:
    world = World(scenario(), seed=7)
    world.set_weight(25)
    world.advance(1000)
    canary, stable = world.requests[CANARY, :1000].sum(), world.requests[STABLE, :1000].sum()
    assert within(canary, 20 * 0.25 * 1000)
    assert within(stable, 20 * 0.75 * 1000)
    # The tick counts are Poisson: variance close to the mean.
    per_tick = world.requests[STABLE, :1000]
    assert per_tick.var() == pytest.approx(per_tick.mean(), rel=0.15)


def test_error_counts_match_each_variants_rate() -> None:
    world = World(scenario(), seed=3)
    world.set_weight(50)
    world.advance(1800)
    for variant, rate in ((CANARY, 0.05), (STABLE, 0.01)):
        requests, errors, buckets = world.window(variant, 1800)
        assert within(errors, requests * rate)
        assert buckets.sum() == requests  # every request is in the histogram


def test_weight_changes_apply_from_that_moment() -> None:
    world = World(scenario(), seed=1)
    world.advance(100)  # weight 0: the canary gets nothing
    assert world.canary_requests() == 0
    world.set_weight(100)
    world.advance(200)
    assert world.requests[STABLE, 100:200].sum() == 0
    assert within(world.canary_requests(), 20 * 100)
    assert (world.weights[:100] == 0).all() and (world.weights[100:200] == 100).all()


def test_window_sums_the_last_seconds_only() -> None:
    world = World(scenario(), seed=1)
    world.set_weight(10)
    world.advance(300)
    requests, _, _ = world.window(CANARY, 60)
    assert requests == world.requests[CANARY, 240:300].sum()


def test_latency_model_is_fitted_to_p50_and_p99() -> None:
    model = LatencyModel.fit(Latency(p50=40, p99=180))
    assert model.quantile(0.5) == pytest.approx(0.040)
    assert model.quantile(0.99) == pytest.approx(0.180)
    assert model.sigma == pytest.approx(math.log(180 / 40) / 2.3263, rel=1e-4)


def test_histogram_quantiles_come_out_near_the_scenarios_latency() -> None:
    world = World(scenario(), seed=5)
    world.set_weight(50)
    world.advance(1800)  # about 18 000 requests per variant
    for variant, p99 in ((STABLE, 0.180), (CANARY, 0.270)):
        cumulative = world.cumulative_buckets(world.window(variant, 1800)[2])
        assert histogram_quantile(0.5, cumulative) == pytest.approx(0.040, rel=0.1)
        assert histogram_quantile(0.99, cumulative) == pytest.approx(p99, rel=0.1)


def test_canary_behaves_like_stable_before_the_regression() -> None:
    world = World(scenario(regression_starts_at="10m"), seed=11)
    world.set_weight(50)
    world.advance(1800)
    before = world.errors[CANARY, :600].sum() / world.requests[CANARY, :600].sum()
    after = world.errors[CANARY, 600:1800].sum() / world.requests[CANARY, 600:1800].sum()
    assert before == pytest.approx(0.01, abs=0.005)
    assert after == pytest.approx(0.05, abs=0.01)
    assert world.harm[:600].sum() == 0
    expected = world.requests[CANARY, 600:1800].sum() * (0.05 - 0.01)
    assert world.harmed_requests() == pytest.approx(expected)


def test_same_seed_same_traffic() -> None:
    a, b = World(scenario(), seed=42), World(scenario(), seed=42)
    for world in (a, b):
        world.set_weight(20)
        world.advance(120)
    assert np.array_equal(a.requests, b.requests) and np.array_equal(a.buckets, b.buckets)


def test_histogram_quantile_like_prometheus() -> None:
    cumulative = ((0.1, 50.0), (0.2, 100.0), (math.inf, 100.0))
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.1)
    assert histogram_quantile(0.75, cumulative) == pytest.approx(0.15)
    assert histogram_quantile(0.5, ((0.1, 0.0), (math.inf, 0.0))) is None
    assert histogram_quantile(0.99, ((0.1, 1.0), (math.inf, 10.0))) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rps": 0}, "rps"),
        ({"stable": {"error_rate": 0.1, "latency_ms": {"p50": 50, "p99": 40}}}, "p99"),
        ({"metrics_outage": [{"start": "5m", "end": "2m"}]}, "end after"),
        ({"duration": "soon"}, "not a duration"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_scenarios_are_rejected_with_the_reason(change: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario(**change)


def test_durations_accept_strings_and_seconds() -> None:
    s = scenario(duration=600, regression_starts_at="1m30s")
    assert (s.duration, s.regression_starts_at) == (600.0, 90.0)


def test_a_scrape_interval_hides_the_counters_since_the_last_scrape() -> None:
    world = World(scenario(scrape_interval="15s"), seed=2)
    world.set_weight(50)
    world.advance(100)
    phase = int(world.scrape_phase)
    assert 0 <= phase < 15
    last = 90 + phase if 90 + phase <= 100 else 75 + phase  # the last scrape at or before 100s
    assert world.visible_ticks() == last
    requests, _, _ = world.window(CANARY, 30)
    assert requests == world.requests[CANARY, last - 30 : last].sum()
