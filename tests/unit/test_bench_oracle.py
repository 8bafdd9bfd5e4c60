"""The oracle (the information limit), the new scenarios, and the benchmark's targets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import norm

from canary.api.durations import parse_duration
from canary.simulate import bench
from canary.simulate.bench import default_bundle
from canary.simulate.oracle import (
    ERRORS,
    ORACLE_ALPHA,
    ORACLE_INTERVAL,
    ORACLE_TOLERANCE,
    ORACLE_WEIGHTS,
    SLOW,
    SLOW_QUANTILE,
    Truth,
    is_regression,
    run_oracle,
)
from canary.simulate.runner import PROMOTED, ROLLED_BACK, RUNNING
from canary.simulate.scenario import BUILTIN_SCENARIOS, load_scenario, parse_scenario
from canary.simulate.traffic import CANARY, World

# ---------------------------------------------------------------- scenarios


def _tiny(**changes: Any) -> World:
    data = {
        "duration": "10s",
        "rps": 1,
        "stable": {"error_rate": 0.01, "latency_ms": {"p50": 40, "p99": 180}},
        "canary": {"error_rate": 0.05, "latency_ms": {"p50": 40, "p99": 180}},
    }
    return World(parse_scenario({**data, **changes}), 1)


def test_the_new_scenarios_load_with_their_regressions() -> None:
    moderate, bad6, latency2 = (load_scenario(n) for n in ("moderate", "bad-6x", "latency-2x"))
    assert (moderate.stable.error_rate, moderate.canary.error_rate) == (0.005, 0.015)
    assert (bad6.stable.error_rate, bad6.canary.error_rate) == (0.005, 0.03)
    assert latency2.canary.error_rate == latency2.stable.error_rate == 0.005
    assert (latency2.stable.latency_ms.p99, latency2.canary.latency_ms.p99) == (180, 360)
    assert latency2.canary.latency_ms.p50 == 40
    for scenario in (moderate, bad6, latency2):
        assert (scenario.rps, scenario.duration, scenario.seed) == (20, 1800, 1)


def test_every_builtin_scenario_loads_and_the_regressions_are_the_expected_ones() -> None:
    truths = {n: Truth.of(load_scenario(n)) for n in BUILTIN_SCENARIOS}
    events = {n: t.event for n, t in truths.items() if t is not None}
    assert events == {
        "bad": ERRORS, "bad-6x": ERRORS, "moderate": ERRORS, "slightly-bad": ERRORS,
        "slow-burn": ERRORS, "latency-2x": SLOW, "latency": SLOW, "late-regression": ERRORS,
    }  # fmt: skip
    assert all(is_regression(load_scenario(n)) == (n in events) for n in BUILTIN_SCENARIOS)


def test_a_canary_within_the_tolerance_is_no_regression() -> None:
    within = _tiny(canary={"error_rate": 0.0105, "latency_ms": {"p50": 40, "p99": 180}})
    assert Truth.of(within.scenario) is None
    result = run_oracle(within.scenario, 1)
    assert result.outcome == RUNNING and "nothing to find" in result.reason


# ---------------------------------------------------------------- the oracle


def test_the_oracle_rolls_back_the_bad_canary_within_a_minute_and_a_half() -> None:
    bad = load_scenario("bad")
    results = [run_oracle(bad, seed) for seed in range(1, 21)]
    assert all(r.outcome == ROLLED_BACK for r in results)
    assert all(r.decision_s is not None and r.decision_s <= 90 for r in results)
    assert all(r.decision_s % 10 == 0 for r in results if r.decision_s is not None)
    # harm as the World counts it for every policy: 4.5 % excess on each canary request
    assert all(r.harmed_requests == pytest.approx(0.045 * r.canary_requests) for r in results)


@pytest.mark.parametrize("name", ["good", "slightly-bad", "latency"])
def test_the_oracle_never_promotes(name: str) -> None:
    results = [run_oracle(load_scenario(name), seed) for seed in range(1, 6)]
    assert all(r.outcome != PROMOTED for r in results)
    if name == "good":  # nothing to find: it waits until the end
        assert all(r.outcome == RUNNING and r.decision_s is None for r in results)


def test_the_oracle_follows_the_default_weight_schedule() -> None:
    result = run_oracle(load_scenario("slightly-bad"), 1, record=True, keep_world=True)
    changes = [(p.t, p.weight) for p in result.timeline if p.note.startswith("setWeight")]
    assert changes == list(ORACLE_WEIGHTS)
    world = result.world
    assert world is not None
    assert world.weights[0] == 10 and world.weights[30] == 25 and world.weights[60] == 50


def test_the_llr_matches_a_hand_computation() -> None:
    world = _tiny(regression_starts_at="2s")
    world.requests[CANARY, :4] = [10, 20, 5, 7]
    world.errors[CANARY, :4] = [1, 0, 2, 0]
    truth = Truth.of(world.scenario)
    assert truth is not None and truth.event == ERRORS
    p0 = ORACLE_TOLERANCE[ERRORS] * 0.01
    # ticks 0-1 before the regression (canary = stable, 0.01), ticks 2-3 after (0.05)
    before = 1 * math.log(0.01 / p0) + 29 * math.log(0.99 / (1 - p0))
    after = 2 * math.log(0.05 / p0) + 10 * math.log(0.95 / (1 - p0))
    assert truth.llr(world, 0, 4) == pytest.approx(before + after, rel=1e-12)
    assert truth.llr(world, 0, 2) + truth.llr(world, 2, 4) == pytest.approx(before + after)


def test_slow_requests_are_those_above_stables_p99_bucket() -> None:
    world = _tiny(canary={"error_rate": 0.01, "latency_ms": {"p50": 40, "p99": 360}})
    truth = Truth.of(world.scenario)
    assert truth is not None and truth.event == SLOW
    assert world.bounds_s[truth.slow_from - 1] == 0.2  # 150 ms < stable's p99 180 ms <= 200 ms

    def above_200ms(p99_ms: float) -> float:
        sigma = math.log(p99_ms / 40) / norm.ppf(0.99)
        return float(norm.sf(math.log(200 / 40) / sigma))

    assert truth.before == pytest.approx(above_200ms(180), rel=1e-9)
    assert truth.after == pytest.approx(above_200ms(360), rel=1e-9)
    assert truth.boundary == pytest.approx(ORACLE_TOLERANCE[SLOW] * truth.before)
    world.requests[CANARY, :1] = 10
    world.buckets[CANARY, 0, :] = 0
    world.buckets[CANARY, 0, [0, 7, 8, 17]] = [5, 2, 2, 1]  # 3 above 200 ms (index 8 on)
    p1, p0 = truth.after, truth.boundary
    expected = 3 * math.log(p1 / p0) + 7 * math.log((1 - p1) / (1 - p0))
    assert truth.llr(world, 0, 1) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- targets


def _row(policy: str, scenario: str, **values: Any) -> dict[str, Any]:
    return {"policy": policy, "scenario": scenario, **values}


def _status(target: bench.Target, *rows: dict[str, Any]) -> str:
    return target.check(bench.by_cell(rows))[0]


def test_a_target_against_the_oracle() -> None:
    target = bench.Target(
        label="bad",
        goal="median time to rollback <= 1.3x the oracle's",
        scenario="bad",
        key="median_rollback_s",
        limit=1.3,
        reference="oracle",
    )
    oracle = _row("oracle", "bad", median_rollback_s=30.0)
    assert _status(target, _row("canary", "bad", median_rollback_s=39.0), oracle) == "met"
    assert _status(target, _row("canary", "bad", median_rollback_s=40.0), oracle) == "NOT met"
    never = _row("canary", "bad", median_rollback_s=None)  # never rolled back: infinitely slow
    assert _status(target, never, oracle) == "NOT met"
    assert _status(target, _row("canary", "bad", median_rollback_s=39.0)) == "not run"
    slow = _row("canary", "bad", median_rollback_s=60.0)
    assert target.check(bench.by_cell([slow, oracle])) == (
        "NOT met",
        "60s vs oracle 30s (2.00x)",
    )


def test_a_target_on_a_rate() -> None:
    at_least = bench.Target(
        "moderate", "rolled back >= 99%", "moderate", "rolled_back_rate", 0.99, at_least=True
    )
    assert _status(at_least, _row("canary", "moderate", rolled_back_rate=0.99)) == "met"
    assert _status(at_least, _row("canary", "moderate", rolled_back_rate=0.985)) == "NOT met"
    assert _status(at_least, _row("flagger-like", "moderate", rolled_back_rate=1.0)) == "not run"
    at_most = bench.Target(
        "noisy", "false rollback <= 1%", "noisy", "rolled_back_rate", 0.01, also=("promoted_rate",)
    )
    row = _row("canary", "noisy", rolled_back_rate=0.005, promoted_rate=0.995)
    assert at_most.check(bench.by_cell([row])) == ("met", "0.5%, promoted 99.5%")
    row = _row("canary", "noisy", rolled_back_rate=0.02, promoted_rate=0.98)
    assert _status(at_most, row) == "NOT met"


def _all_met() -> list[dict[str, Any]]:
    """Rows on which canary meets every target (just)."""
    rate = {
        "promoted_rate": 0.0,
        "rolled_back_rate": 1.0,
        "promoted_blind_rate": 0.0,
        "rolled_back_by_provider_errors_rate": 0.0,
    }
    good = {**rate, "promoted_rate": 0.99, "rolled_back_rate": 0.01, "median_promotion_s": 360.0}
    return [
        _row("canary", "bad", **rate, median_rollback_s=39.0, median_harmed_requests=6.0),
        _row("oracle", "bad", **rate, median_rollback_s=30.0, median_harmed_requests=5.0),
        _row("flagger-like", "bad", **rate, median_harmed_requests=30.0),
        _row("canary", "moderate", **{**rate, "promoted_rate": 0.01, "rolled_back_rate": 0.99}),
        _row("canary", "bad-6x", **rate),
        _row("canary", "latency-2x", **{**rate, "rolled_back_rate": 0.95}),
        _row("canary", "latency", **{**rate, "rolled_back_rate": 0.5}),
        _row("canary", "slightly-bad", **{**rate, "promoted_rate": 0.1}),
        _row("canary", "good", **good),
        _row("flagger-like", "good", **good),
        *(_row("canary", s, **good) for s in ("noisy", "low-traffic", "outage")),
        _row("canary", "late-regression", **{**rate, "rolled_back_rate": 0.95},
             median_harmed_requests=200.0, rolled_back_in_bake_rate=0.95),
        _row("flagger-like", "late-regression", **rate, median_harmed_requests=1000.0),
    ]


def test_every_target_is_met_at_its_limit_and_missed_beyond_it() -> None:
    rows = _all_met()
    statuses = [t.check(bench.by_cell(rows))[0] for t in bench.TARGETS]
    assert statuses == ["met"] * len(bench.TARGETS)
    worse: dict[tuple[str, str], dict[str, float | None]] = {
        ("canary", "bad"): {"median_rollback_s": 39.1, "median_harmed_requests": 6.6},
        ("canary", "moderate"): {"promoted_rate": 0.015},
        ("canary", "latency"): {"rolled_back_rate": 0.495},
        ("canary", "good"): {"median_promotion_s": None},  # never promoted
        ("canary", "outage"): {"promoted_blind_rate": 0.005},
    }
    cells = bench.by_cell({**r, **worse.get((r["policy"], r["scenario"]), {})} for r in rows)
    missed = [(t.scenario, t.key) for t in bench.TARGETS if t.check(cells)[0] == "NOT met"]
    assert missed == [
        ("bad", "median_rollback_s"),
        ("bad", "median_harmed_requests"),  # 6.6 > 1.3 x 5.0 (and > 1/5 of 30)
        ("bad", "median_harmed_requests"),
        ("moderate", "promoted_rate"),
        ("latency", "rolled_back_rate"),
        ("good", "median_promotion_s"),
        ("outage", "promoted_blind_rate"),
    ]


def test_the_targets_print_met_not_met_and_not_run() -> None:
    outage = {"promoted_blind_rate": 0.0, "rolled_back_by_provider_errors_rate": 0.005}
    lines = bench.format_targets([_row("canary", "outage", **outage)]).splitlines()
    assert lines[0].startswith("TARGETS") and len(lines) == 1 + len(bench.TARGETS)
    statuses = [line[2:10].strip() for line in lines[1:]]
    assert statuses[-2:] == ["met", "NOT met"]  # the two outage targets
    assert set(statuses[:-2]) == {"not run"}


def test_canary_over_the_oracle_for_each_scenario_the_oracle_ran() -> None:
    rows = [
        _row("canary", "bad", median_rollback_s=60.0, median_harmed_requests=6.0),
        _row("canary", "good", median_rollback_s=None, median_harmed_requests=0.0),
        _row("oracle", "bad", median_rollback_s=30.0, median_harmed_requests=3.0),
        _row("oracle", "latency", median_rollback_s=70.0, median_harmed_requests=0.0),
    ]
    assert bench.format_oracle_ratios(rows).splitlines() == [
        "canary / oracle (medians):",
        "  bad           time to rollback 60s / 30s = 2.00x, harmed 6.0 / 3.0 = 2.00x",
    ]
    assert bench.format_oracle_ratios(rows[:2]) == ""


# ---------------------------------------------------------------- the benchmark


def test_the_oracle_runs_only_the_regression_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "decisions.json"
    argv = ["--runs", "2", "--workers", "1", "--scenarios", "good,bad", "--out", str(out)]
    assert bench.main([*argv, "--policies", "oracle,flagger-like"]) == 0
    rows = json.loads(out.read_text())
    assert [(r["policy"], r["scenario"]) for r in rows] == [
        ("oracle", "bad"), ("flagger-like", "good"), ("flagger-like", "bad"),
    ]  # fmt: skip
    assert len({tuple(r) for r in rows}) == 1  # the same keys in every row
    oracle = rows[0]
    assert oracle["rolled_back_rate"] == 1.0 and oracle["promoted_rate"] == 0.0
    assert oracle["median_rollback_s"] == oracle["median_decision_s"]
    printed = capsys.readouterr().out
    assert "TARGETS" in printed and "not run" in printed


def test_the_oracle_uses_the_default_policys_tolerance_alpha_looks_and_weights() -> None:
    bundle = default_bundle()
    spec = bundle.canary.spec
    assert spec.analysis is not None and spec.analysis.interval == f"{ORACLE_INTERVAL:g}s"
    template = bundle.templates["canary-vs-stable"]
    metrics = {m.comparison.type: m.comparison for m in template.metrics if m.comparison}
    assert metrics["errorRate"].tolerance == ORACLE_TOLERANCE[ERRORS]
    assert metrics["latency"].tolerance == ORACLE_TOLERANCE[SLOW]
    assert metrics["errorRate"].max_false_rollback == ORACLE_ALPHA[ERRORS]
    assert metrics["latency"].max_false_rollback == ORACLE_ALPHA[SLOW]
    assert metrics["latency"].quantile == SLOW_QUANTILE
    weights, elapsed = [], 0.0
    for s in spec.steps:
        if s.set_weight is not None:
            weights.append((elapsed, float(s.set_weight)))
        elif s.pause is not None and s.pause.duration is not None:
            elapsed += parse_duration(s.pause.duration)
    assert tuple(weights) == ORACLE_WEIGHTS
