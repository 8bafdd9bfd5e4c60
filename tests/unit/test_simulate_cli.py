"""`canary simulate` through Typer, as the CLI registers it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from canary.cli.simulate import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for canary's CLI."""

    register(app)
    return app


def test_one_run_prints_the_timeline_and_outcome(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["simulate", "--scenario", "bad"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "time  weight  phase" in out and "RolledBack" in out
    assert "outcome:          rolled back" in out
    for line in ("time to decision:", "canary requests:", "harmed requests:"):
        assert line in out


def test_several_runs_print_rates_and_medians_as_json(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", "good", "--runs", "3", "--policy", "flagger-like", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["runs"] == 3 and data["summary"]["promoted_rate"] == 1.0
    assert [r["seed"] for r in data["runs"]] == [1, 2, 3]


def test_a_canary_and_a_scenario_file(app: typer.Typer, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "duration: 10m\nrps: 50\nstable: {error_rate: 0.001, latency_ms: {p50: 20, p99: 90}}\n"
        "canary: {error_rate: 0.2, latency_ms: {p50: 20, p99: 90}}\nseed: 5\n"
    )
    canary = Path(__file__).parents[2] / "canary/simulate/scenarios/default-canary.yaml"
    result = CliRunner().invoke(
        app, ["simulate", "--canary", str(canary), "--scenario", str(scenario), "--json"]
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)["run"]
    assert run["outcome"] == "rolled back" and run["seed"] == 5
    assert run["decision_s"] <= 30


def test_usage_errors_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["simulate", "--scenario", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "cannot read scenario" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("rps: -1\n")
    invalid = CliRunner().invoke(app, ["simulate", "--scenario", str(bad)])
    assert invalid.exit_code == 2 and "rps" in invalid.output
    policy = CliRunner().invoke(app, ["simulate", "--scenario", "good", "--policy", "spinnaker"])
    assert policy.exit_code == 2


def test_plot_writes_a_png(app: typer.Typer, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run.png"
    result = CliRunner().invoke(app, ["simulate", "--scenario", "outage", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
