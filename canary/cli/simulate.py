"""`canary simulate`: try a Canary's step plan and analysis against simulated traffic.

    canary simulate --scenario bad                       # canary's default policy
    canary simulate --canary canary.yaml --scenario my-scenario.yaml --runs 200
    canary simulate --scenario good --policy flagger-like --json
    canary simulate --scenario bad --plot rollout.png    # needs: pip install 'canary[plot]'

The real decision engine runs with a simulated clock, Poisson traffic and a simulated
metric provider (see canary.simulate). --canary takes the Canary and its
AnalysisTemplates as YAML documents in one file; without it, canary's default policy
(canary/simulate/scenarios/default-canary.yaml) is used. --scenario takes a scenario file
or a built-in name (`canary simulate --help` lists them).

Exit codes: 0 when the simulation ran (whatever its outcome), 2 for a usage or file error.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperOption

from canary.cli.exits import fail

if TYPE_CHECKING:  # the simulator needs numpy and scipy: loaded only when it runs
    from canary.simulate.runner import Bundle, Point, RunResult

SCENARIO_HELP = "Scenario YAML, or a built-in one"


class _SimulateCommand(TyperCommand):
    """Names the built-in scenarios in --scenario's help only when help is shown: that
    loads the simulator's scenario models, which would slow down every `canary` command."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from canary.simulate.scenario import BUILTIN_SCENARIOS

        for param in self.params:
            if isinstance(param, TyperOption) and param.name == "scenario":
                param.help = f"{SCENARIO_HELP}: {', '.join(BUILTIN_SCENARIOS)}."
        super().format_help(ctx, formatter)


def register(app: typer.Typer) -> None:
    app.command(cls=_SimulateCommand)(simulate)


def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            metavar="NAME|FILE",
            help=f"{SCENARIO_HELP}.",
        ),
    ],
    canary: Annotated[
        Path | None,
        typer.Option(
            "--canary",
            metavar="FILE",
            help="Canary YAML, with its AnalysisTemplates as further documents "
            "(default: canary's default policy).",
        ),
    ] = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, metavar="N", help="Runs over seeds seed..seed+N-1.")
    ] = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of text.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Draw weight and error rates over time of the first run (PNG).",
        ),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            metavar="POLICY",
            help="canary (the Canary file), flagger-like, argo-like or oracle (an SPRT "
            "that knows the true rates: the information limit).",
        ),
    ] = "canary",
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", help="First seed (default: the scenario's)."),
    ] = None,
) -> None:
    """Simulate a rollout: the real engine against Poisson traffic, with the outcome,
    time to decision, canary requests and harmed requests (errors beyond stable's)."""
    from canary.simulate.bench import run_once
    from canary.simulate.policies import POLICIES
    from canary.simulate.runner import load_bundle
    from canary.simulate.scenario import ScenarioError, builtin_path, load_scenario

    if policy not in POLICIES:
        raise fail(f"unknown --policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if canary is not None and policy != "canary":
        raise fail("--canary only applies to --policy canary")
    try:
        world = load_scenario(scenario)
        bundle = load_bundle(canary or builtin_path("default-canary"))
    except ScenarioError as exc:
        raise fail(str(exc)) from None
    first_seed = world.seed if seed is None else seed
    results = [
        run_once(
            policy,
            world,
            first_seed + i,
            bundle,
            record=(runs == 1 or i == 0),
            keep_world=(plot is not None and i == 0),
        )
        for i in range(runs)
    ]
    source = "canary's default policy" if canary is None and policy == "canary" else str(canary)
    label = source if policy == "canary" else policy
    if json_output:
        typer.echo(json.dumps(_as_json(results, bundle if policy == "canary" else None), indent=2))
    elif runs == 1:
        _print_run(results[0], label, world.summary())
    else:
        _print_runs(results, label, world.summary())
    if plot is not None:
        try:
            _plot(results[0], plot)
        except ImportError:
            raise fail(
                "--plot needs matplotlib: pip install 'canary[plot]' (or pip install matplotlib)"
            ) from None
        if not json_output:
            typer.echo(f"plot written to {plot}")


# ---------------------------------------------------------------- text


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _verdict_text(point: Point) -> str:
    parts = []
    for name, verdict, value in point.verdicts:
        parts.append(f"{name}={verdict}" + (f" ({value})" if value else ""))
    return ", ".join(parts)


def _print_run(result: RunResult, label: str, scenario: str) -> None:
    typer.echo(f"{label} on scenario {result.scenario} (seed {result.seed})")
    typer.echo(f"  {scenario}")
    typer.echo("")
    typer.echo(f"  {'time':>6}  {'weight':>6}  {'phase':<12} verdicts")
    shown: tuple[Any, ...] | None = None
    last_note = ""
    for i, point in enumerate(result.timeline):
        # One line per change of weight, phase, reason or verdict (values alone change often).
        key = (point.weight, point.phase, point.note, tuple(v[:2] for v in point.verdicts))
        if key == shown and i != len(result.timeline) - 1:
            continue
        shown = key
        note = f"[{point.note}] " if point.note and point.note != last_note else ""
        last_note = point.note
        typer.echo(
            f"  {_clock(point.t):>6}  {point.weight:>5.0f}%  {point.phase:<12} "
            f"{note}{_verdict_text(point)}"
        )
    typer.echo("")
    if result.decision_s is None:
        typer.echo(f"outcome:          {result.outcome} at the end ({result.reason})")
        typer.echo("time to decision: none within the scenario's duration")
    else:
        typer.echo(f"outcome:          {result.outcome} at {_clock(result.decision_s)}")
        typer.echo(f"                  {result.reason}")
        typer.echo(f"time to decision: {result.decision_s:.0f}s")
    typer.echo(f"canary requests:  {result.canary_requests}")
    typer.echo(f"harmed requests:  {result.harmed_requests:.1f}")
    if result.blind:
        typer.echo("warning:          promoted while the latest measurement was a provider error")


def _print_runs(results: list[RunResult], label: str, scenario: str) -> None:
    from canary.simulate.bench import summarize

    row = summarize(results)
    first, last = results[0].seed, results[-1].seed
    typer.echo(f"{label} on scenario {results[0].scenario}: {len(results)} runs "
               f"(seeds {first}..{last})")  # fmt: skip
    typer.echo(f"  {scenario}")
    typer.echo("")
    typer.echo(f"promoted:                {100 * row['promoted_rate']:.1f}%")
    typer.echo(f"rolled back:             {100 * row['rolled_back_rate']:.1f}%")
    typer.echo(f"still running:           {100 * row['still_running_rate']:.1f}%")
    if row["median_decision_s"] is None:
        typer.echo("median time to decision: none decided")
    else:
        typer.echo(
            f"median time to decision: {row['median_decision_s']:.0f}s "
            f"(p90 {row['p90_decision_s']:.0f}s, over the runs that decided)"
        )
    typer.echo(f"median canary requests:  {row['median_canary_requests']:.0f}")
    typer.echo(f"median harmed requests:  {row['median_harmed_requests']:.1f}")
    if row["promoted_blind_rate"]:
        typer.echo(f"promoted blind:          {100 * row['promoted_blind_rate']:.1f}%")
    reasons: dict[str, int] = {}
    for r in results:
        if r.outcome != "promoted":
            reasons[_short_reason(r.reason)] = reasons.get(_short_reason(r.reason), 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
        typer.echo(f"  {count:>5} x {reason}")


def _short_reason(reason: str) -> str:
    return reason if len(reason) <= 100 else reason[:97] + "..."


# ---------------------------------------------------------------- json


def _as_json(results: list[RunResult], bundle: Bundle | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(results) == 1:
        out["run"] = results[0].summary()
        out["timeline"] = [
            {
                "t": p.t,
                "weight": p.weight,
                "phase": p.phase,
                "note": p.note,
                "verdicts": {name: {"verdict": v, "value": val} for name, v, val in p.verdicts},
            }
            for p in results[0].timeline
        ]
    else:
        from canary.simulate.bench import summarize

        out["summary"] = summarize(results)
        decided = [r.decision_s for r in results if r.decision_s is not None]
        out["summary"]["mean_decision_s"] = statistics.fmean(decided) if decided else None
        out["runs"] = [r.summary() for r in results]
    if bundle is not None:
        out["canary"] = bundle.source
    return out


# ---------------------------------------------------------------- plot


def _plot(result: RunResult, path: Path) -> None:
    """Weight over time and each variant's error rate in 30 s bins, metrics outages shaded."""
    import matplotlib  # the `plot` extra; imported only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    world = result.world
    if world is None:
        raise ValueError("the run kept no traffic to plot")
    ticks = world.ticks
    t = np.arange(ticks) * world.dt
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    weights = list(world.weights[:ticks])
    if result.decision_s is not None:  # show where the decision left the new version
        t = np.append(t, result.decision_s)
        weights.append(0 if result.outcome == "rolled back" else 100)
    top.step(t / 60, weights, where="post", color="tab:orange")
    top.set_ylabel("canary weight (%)")
    top.set_ylim(-2, 102)
    title = f"{result.policy} on {result.scenario} (seed {result.seed}): {result.outcome}"
    if result.decision_s is not None:
        title += f" at {_clock(result.decision_s)}"
        for axis in (top, bottom):
            axis.axvline(result.decision_s / 60, color="grey", linestyle=":")
    top.set_title(title)
    for outage in world.scenario.metrics_outage:
        for axis in (top, bottom):
            axis.axvspan(outage.start / 60, outage.end / 60, color="grey", alpha=0.15)
    per_bin = max(1, round(30 / world.dt))
    bins = -(-ticks // per_bin)  # the last, partial bin too
    if bins:
        pad = bins * per_bin - ticks
        for variant, name, colour in ((1, "stable", "tab:blue"), (0, "canary", "tab:red")):
            req = np.pad(world.requests[variant, :ticks], (0, pad)).reshape(bins, per_bin)
            err = np.pad(world.errors[variant, :ticks], (0, pad)).reshape(bins, per_bin)
            req, err = req.sum(axis=1), err.sum(axis=1)
            rate = np.where(req > 0, 100 * err / np.maximum(req, 1), np.nan)
            centre = (np.arange(bins) + 0.5) * per_bin * world.dt / 60
            bottom.plot(centre, rate, marker=".", linestyle="-", label=name, color=colour)
    bottom.set_ylabel("error rate (%, 30 s bins)")
    bottom.set_xlabel("minutes since the rollout started")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
