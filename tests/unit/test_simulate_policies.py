"""The benchmark's baselines follow their documented algorithms, and the benchmark's rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canary.simulate import bench
from canary.simulate.policies import run_argo, run_flagger
from canary.simulate.runner import PROMOTED, ROLLED_BACK, RUNNING
from canary.simulate.scenario import load_scenario


def test_flagger_like_promotes_a_good_canary_after_five_steps() -> None:
    result = run_flagger(load_scenario("good"), 1, record=True)
    assert result.outcome == PROMOTED and result.decision_s == 360
    assert [p.weight for p in result.timeline] == [0, 10, 20, 30, 40, 50, 50]


def test_flagger_like_rolls_back_after_five_failed_checks() -> None:
    result = run_flagger(load_scenario("bad"), 1, record=True)
    assert result.outcome == ROLLED_BACK and result.decision_s == 420
    halts = [p for p in result.timeline if p.note.startswith("halt")]
    assert len(halts) == 5 and all(p.weight == 10 for p in halts)
    # 6 minutes at 10% of 20 rps, 4.5% excess errors
    assert result.harmed_requests == pytest.approx(360 * 2 * 0.045, rel=0.25)


def test_flagger_like_counts_no_data_as_a_failed_check() -> None:
    scenario = load_scenario("good").model_copy(update={"canary_ready_after": 0.0, "rps": 0.001})
    result = run_flagger(scenario, 1)
    assert result.outcome == ROLLED_BACK and result.decision_s == 420


def test_argo_like_aborts_at_the_first_failed_measurement() -> None:
    result = run_argo(load_scenario("bad"), 1)
    assert result.outcome == ROLLED_BACK and result.decision_s == 60


def test_argo_like_pauses_when_inconclusive() -> None:
    scenario = load_scenario("good").model_copy(update={"rps": 0.001})
    result = run_argo(scenario, 1)
    assert result.outcome == RUNNING and "inconclusive" in result.reason


def test_argo_like_survives_a_short_outage_and_promotes() -> None:
    result = run_argo(load_scenario("outage"), 2)
    assert result.outcome in (PROMOTED, ROLLED_BACK)
    assert not result.by_errors and not result.blind


def test_the_benchmark_writes_one_row_per_policy_and_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "decisions.json"
    code = bench.main(
        ["--runs", "2", "--workers", "1", "--scenarios", "good,bad", "--out", str(out)]
    )
    assert code == 0
    rows = json.loads(out.read_text())
    # The oracle runs only the regression scenarios.
    assert [(r["policy"], r["scenario"]) for r in rows] == [
        (p, s) for p in ("canary", "flagger-like", "argo-like") for s in ("good", "bad")
    ] + [("oracle", "bad")]
    required = {
        "policy",
        "scenario",
        "runs",
        "promoted_rate",
        "rolled_back_rate",
        "median_decision_s",
        "median_harmed_requests",
    }
    assert all(required <= set(r) and r["runs"] == 2 for r in rows)
    bad = {r["policy"]: r for r in rows if r["scenario"] == "bad"}
    assert bad["canary"]["rolled_back_rate"] == 1.0
    assert bad["canary"]["median_decision_s"] < bad["flagger-like"]["median_decision_s"]
    table = capsys.readouterr().out
    assert "flagger-like" in table and "median harmed" in table
    assert "canary / oracle" in table and "TARGETS" in table
