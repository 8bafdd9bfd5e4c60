"""The simulator drives the real engine: a good canary promotes, a bad one rolls back,
and a metrics outage pauses the rollout and resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.api.analysis_template import Comparison, Metric, Provider, ThresholdRange
from canary.engine.samples import (
    BucketsSample,
    CountsSample,
    MetricTask,
    ProviderFailure,
    ScalarSample,
)
from canary.simulate.bench import default_bundle
from canary.simulate.provider import SimulatedProvider
from canary.simulate.runner import (
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    Bundle,
    load_bundle,
    run_engine,
)
from canary.simulate.scenario import ScenarioError, load_scenario, parse_scenario
from canary.simulate.traffic import World


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return default_bundle()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_good_canary_is_promoted(bundle: Bundle, seed: int) -> None:
    result = run_engine(bundle, load_scenario("good"), seed, record=True)
    assert result.outcome == PROMOTED
    # within the progress deadline after the last step (60 s + 600 s), on earned Passes
    assert result.decision_s is not None and result.decision_s <= 660
    gate = next(p for p in result.timeline if p.phase == "Baking")
    assert {v for _, v, _ in gate.verdicts} == {"Pass"}
    assert result.harmed_requests == 0
    weights = [p.weight for p in result.timeline]
    assert weights[:2] == [0, 10] and max(weights[: result.timeline.index(gate)]) == 50
    # Then the bake: 95% for 15 minutes, the previous revision keeping 5%.
    assert gate.weight == 95 and result.released_s == result.decision_s
    assert result.done_s == result.decision_s + 900


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_ten_times_worse_canary_is_rolled_back(bundle: Bundle, seed: int) -> None:
    result = run_engine(bundle, load_scenario("bad"), seed, record=True)
    assert result.outcome == ROLLED_BACK
    assert "AnalysisFailed" in result.reason and "error-rate" in result.reason
    assert result.decision_s is not None and result.decision_s < 240
    assert 0 < result.harmed_requests < 40
    assert result.timeline[-1].weight == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_metrics_outage_pauses_the_rollout_and_it_resumes(bundle: Bundle, seed: int) -> None:
    scenario = load_scenario("outage")  # provider errors from 2m to 5m
    result = run_engine(bundle, scenario, seed, record=True)
    paused = [p for p in result.timeline if p.note == "MetricsUnavailable"]
    resumed = [p for p in result.timeline if p.note == "Resumed"]
    assert paused and resumed
    assert 120 <= paused[0].t < 200 and paused[0].weight == 0  # traffic back to stable
    assert resumed[0].t >= 300 and resumed[0].weight > 0
    # never decided by the outage: promoted on evidence after it, or waiting for a human
    assert result.outcome in (PROMOTED, RUNNING) and not result.blind
    if result.outcome == PROMOTED:
        assert result.decision_s is not None and result.decision_s > 300
    else:
        assert "NotEnoughEvidence" in result.reason


def test_a_canary_file_may_hold_its_templates(tmp_path: Path, bundle: Bundle) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {name: web}
  service: {port: 80}
  steps: [{setWeight: 20}, {pause: {duration: 1m}}]
  analysis:
    templates: [{templateName: errors}]
---
apiVersion: canary.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      interval: 30s
      provider: {prometheus: {query: "sum(rate(errors[1m])) / sum(rate(requests[1m]))"}}
      thresholdRange: {max: 0.02}
"""
    )
    loaded = load_bundle(path)
    assert set(loaded.templates) == {"errors"}
    good = run_engine(loaded, load_scenario("good"), 1)
    bad = run_engine(loaded, load_scenario("bad"), 1)
    assert good.outcome == PROMOTED and good.decision_s == pytest.approx(60, abs=35)
    assert bad.outcome == ROLLED_BACK and "above max" in bad.reason


def test_a_canary_file_with_a_missing_template_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: canary.dev/v1alpha1\nkind: Canary\nmetadata: {name: web}\n"
        "spec: {targetRef: {name: web}, service: {port: 80}, steps: [{setWeight: 5}],"
        " analysis: {templates: [{templateName: nowhere}]}}\n"
    )
    with pytest.raises(ScenarioError, match="nowhere"):
        load_bundle(path)


def test_a_pause_waiting_for_a_human_is_still_running_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: canary.dev/v1alpha1\nkind: Canary\nmetadata: {name: web}\n"
        "spec: {targetRef: {name: web}, service: {port: 80},\n"
        "       steps: [{setWeight: 5}, {pause: {}}]}\n"
    )
    scenario = load_scenario("good").model_copy(update={"duration": 300.0})
    result = run_engine(load_bundle(path), scenario, 1)
    assert result.outcome == RUNNING and result.decision_s is None
    assert result.canary_requests == pytest.approx(0.05 * 20 * 300, rel=0.3)


def test_webhooks_and_deploy_windows_are_not_simulated(tmp_path: Path) -> None:
    """A confirm-rollout webhook would hold the rollout for an answer that never comes."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: canary.dev/v1alpha1\nkind: Canary\nmetadata: {name: web}\n"
        "spec: {targetRef: {name: web}, service: {port: 80}, steps: [{setWeight: 50}],\n"
        "       webhooks: [{name: freeze, type: confirm-rollout, url: 'http://gate.ops/'}],\n"
        "       deployWindow: {days: [Sun], start: '00:00', end: '00:01'}}\n"
    )
    result = run_engine(load_bundle(path), load_scenario("good"), 1)
    assert result.outcome == PROMOTED


# ---------------------------------------------------------------- the simulated provider


def metric(name: str, comparison: Comparison | None = None) -> Metric:
    return Metric(
        name=name,
        provider=Provider.model_validate({"prometheus": {"query": "q"}}),
        interval="1m",
        comparison=comparison,
        threshold_range=None if comparison else ThresholdRange(max=1),
    )


def provider_at(t: float, **scenario: object) -> SimulatedProvider:
    base = load_scenario("bad").model_dump()
    world = World(parse_scenario({**base, **scenario}), seed=1)
    world.set_weight(50)
    world.advance(t)
    return SimulatedProvider(world)


def test_threshold_metrics_are_recognised_by_name() -> None:
    provider = provider_at(600)
    error = provider.measure(MetricTask("e", metric("http-error-rate"), {}, 60))
    success = provider.measure(MetricTask("s", metric("request-success-rate"), {}, 60))
    latency = provider.measure(MetricTask("l", metric("latency-p50"), {}, 60))
    latency_ms = provider.measure(MetricTask("l", metric("request-duration-ms"), {}, 60))
    assert isinstance(error, ScalarSample) and isinstance(success, ScalarSample)
    assert error.value is not None and success.value is not None
    assert error.value == pytest.approx(0.05, abs=0.03)
    assert success.value == pytest.approx(1 - error.value)
    assert isinstance(latency, ScalarSample) and latency.value == pytest.approx(0.04, rel=0.2)
    assert isinstance(latency_ms, ScalarSample) and latency_ms.value is not None
    assert 100 < latency_ms.value < 400  # p99 in ms
    unknown = provider.measure(MetricTask("x", metric("cpu"), {}, 60))
    assert isinstance(unknown, ProviderFailure) and not unknown.transient


def test_comparisons_get_both_variants_over_the_window() -> None:
    provider = provider_at(300)
    counts = metric(
        "errors",
        comparison=Comparison(type="errorRate", requests_query="r", errors_query="e", tolerance=2),
    )
    buckets = metric("lat", comparison=Comparison(type="latency", buckets_query="b", tolerance=1))
    sample = provider.measure(MetricTask("c", counts, {}, 120))
    assert isinstance(sample, CountsSample)
    assert sample.canary.requests == pytest.approx(10 * 120, rel=0.2)
    assert sample.canary.errors > sample.stable.errors
    hist = provider.measure(MetricTask("b", buckets, {}, 120))
    assert isinstance(hist, BucketsSample) and hist.canary[-1][1] == sample.canary.requests


def test_no_canary_traffic_is_no_data_and_an_outage_is_an_error() -> None:
    provider = provider_at(300, metrics_outage=[{"start": 250, "end": 400}])
    failure = provider.measure(MetricTask("e", metric("error-rate"), {}, 60))
    assert isinstance(failure, ProviderFailure) and failure.transient
    quiet = provider_at(60)
    quiet.world.set_weight(0)
    quiet.world.advance(200)
    assert quiet.measure(MetricTask("e", metric("error-rate"), {}, 60)) == ScalarSample(None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_late_regression_is_rolled_back_by_the_bake_or_before_promotion(
    bundle: Bundle, seed: int
) -> None:
    result = run_engine(bundle, load_scenario("late-regression"), seed)
    assert result.outcome == ROLLED_BACK
    reason = "BakeFailed" if result.in_bake else "AnalysisFailed"
    assert reason in result.reason and "error-rate" in result.reason


def test_the_bake_changes_nothing_before_the_promotion_gate(bundle: Bundle) -> None:
    """Why the benchmark reads fully done without a bake off the same runs."""
    spec = bundle.canary.spec.model_copy(update={"bake": None})
    unbaked = Bundle(bundle.canary.model_copy(update={"spec": spec}), bundle.templates)
    for seed in (1, 2):
        baked = run_engine(bundle, load_scenario("good"), seed)
        plain = run_engine(unbaked, load_scenario("good"), seed)
        assert plain.done_s == plain.decision_s == baked.released_s


def test_after_a_promotion_harm_counts_to_the_end_where_the_scenario_says_so() -> None:
    from canary.simulate.policies import run_flagger

    result = run_flagger(load_scenario("late-regression"), 1)
    assert result.outcome == PROMOTED and result.decision_s is not None
    # 20 rps, 4.5 more errors per 100, from 460 s to the end at 1800 s: about 1,200.
    assert 1000 < result.harmed_requests < 1400
