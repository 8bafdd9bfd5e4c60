"""The decision benchmark: canary's default policy against flagger-like, argo-like and the
oracle.

    python -m canary.simulate.bench [--runs 200] [--out bench-results/decisions.json]
                                    [--workers 2] [--scenarios good,bad] [--policies canary]

Every policy runs every scenario of the suite (canary/simulate/scenarios/) ``--runs``
times; run i uses seed ``scenario.seed + i`` for every policy. The oracle
(canary/simulate/oracle.py: the information limit, which knows the true rates) runs only
the regression scenarios; on the others it has nothing to find. It prints one row per
policy x scenario and writes the rows as a JSON list with the keys ``policy``,
``scenario``, ``runs``, ``promoted_rate``, ``rolled_back_rate``, ``median_decision_s``,
``median_harmed_requests`` (rates are fractions 0-1), plus ``still_running_rate``,
``promoted_blind_rate``, ``rolled_back_by_provider_errors_rate``, ``p90_decision_s``,
``median_canary_requests``, ``median_rollback_s`` and ``median_promotion_s``.

- time to decision: seconds from the start of the rollout to the promotion or rollback,
  over the runs that decided (null if none did); time to rollback and time to promotion
  the same over the runs rolled back, or promoted;
- harmed requests: failed requests beyond what stable would have given, up to the
  decision (or to the end of the scenario for runs still undecided), over all runs;
- promoted blind: promoted although the policy's latest measurement was a provider error;
- rolled back by provider errors: rolled back, and would not have been without the
  provider's errors (canary: any rollback not caused by a Fail verdict; flagger-like:
  fewer than ``threshold`` failed checks had real data; argo-like: consecutiveErrorLimit).

After the table it prints, for each regression scenario, canary's median time to
rollback and median harmed requests as multiples of the oracle's, and then each of
:data:`TARGETS` for canary's default policy with its measured value and "met", "NOT met"
or "not run" (a row it needs was not run). The exit code is 0 either way: the benchmark
reports, it does not gate.

Runs are spread over ``--workers`` processes (2 by default).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from canary.simulate.oracle import ORACLE, is_regression, run_oracle
from canary.simulate.policies import ARGO, FLAGGER, POLICIES, run_argo, run_flagger
from canary.simulate.runner import (
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    Bundle,
    RunResult,
    load_bundle,
    run_engine,
)
from canary.simulate.scenario import BUILTIN_SCENARIOS, Scenario, builtin_path, load_scenario

DEFAULT_CANARY = "default-canary"
CANARY = "canary"  # the policy under test
CHUNK = 25  # runs per work item


def default_bundle() -> Bundle:
    return load_bundle(builtin_path(DEFAULT_CANARY))


def run_once(
    policy: str,
    scenario: Scenario,
    seed: int,
    bundle: Bundle | None = None,
    *,
    record: bool = False,
    keep_world: bool = False,
) -> RunResult:
    """One run of `policy` ("canary" runs `bundle`, by default canary's default policy)."""
    if policy == FLAGGER:
        return run_flagger(scenario, seed, record=record, keep_world=keep_world)
    if policy == ARGO:
        return run_argo(scenario, seed, record=record, keep_world=keep_world)
    if policy == ORACLE:
        return run_oracle(scenario, seed, record=record, keep_world=keep_world)
    if policy != CANARY:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    return run_engine(
        bundle or default_bundle(), scenario, seed, record=record, keep_world=keep_world
    )


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Cell:
    policy: str
    scenario: str
    results: tuple[RunResult, ...]

    def row(self) -> dict[str, Any]:
        runs = len(self.results)
        decided = [r.decision_s for r in self.results if r.decision_s is not None]
        rolled_back = _times(self.results, ROLLED_BACK)
        promoted = _times(self.results, PROMOTED)
        harmed = [r.harmed_requests for r in self.results]
        return {
            "policy": self.policy,
            "scenario": self.scenario,
            "runs": runs,
            "promoted_rate": _rate(self.results, PROMOTED),
            "rolled_back_rate": _rate(self.results, ROLLED_BACK),
            "median_decision_s": _round(statistics.median(decided)) if decided else None,
            "median_harmed_requests": _round(statistics.median(harmed)) if harmed else None,
            "still_running_rate": _rate(self.results, RUNNING),
            "promoted_blind_rate": _share(r.blind for r in self.results),
            "rolled_back_by_provider_errors_rate": _share(r.by_errors for r in self.results),
            "p90_decision_s": _round(float(np.percentile(decided, 90))) if decided else None,
            "median_canary_requests": _round(
                statistics.median(r.canary_requests for r in self.results)
            )
            if runs
            else None,
            "median_rollback_s": _round(statistics.median(rolled_back)) if rolled_back else None,
            "median_promotion_s": _round(statistics.median(promoted)) if promoted else None,
        }


def _times(results: Sequence[RunResult], outcome: str) -> list[float]:
    return [r.decision_s for r in results if r.outcome == outcome and r.decision_s is not None]


def _rate(results: Sequence[RunResult], outcome: str) -> float:
    return round(sum(r.outcome == outcome for r in results) / len(results), 4) if results else 0.0


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def _round(x: float) -> float:
    return round(float(x), 2)


def summarize(results: Sequence[RunResult]) -> dict[str, Any]:
    """Rates and medians over runs of one policy on one scenario (the benchmark's row)."""
    first = results[0]
    return Cell(first.policy, first.scenario, tuple(results)).row()


# ---------------------------------------------------------------- running the suite


def _work(item: tuple[str, str, int, int, str | None]) -> list[RunResult]:
    policy, scenario_name, first, count, canary_path = item
    scenario = load_scenario(scenario_name)
    bundle = None
    if policy == CANARY:
        bundle = load_bundle(canary_path) if canary_path else default_bundle()
    return [
        run_once(policy, scenario, scenario.seed + i, bundle) for i in range(first, first + count)
    ]


def run_suite(
    policies: Iterable[str],
    scenarios: Iterable[str],
    runs: int,
    *,
    workers: int = 2,
    canary_path: str | None = None,
) -> list[dict[str, Any]]:
    policies, scenarios = list(policies), list(scenarios)
    regressions = {s for s in scenarios if is_regression(load_scenario(s))}
    items = [
        (p, s, first, min(CHUNK, runs - first), canary_path)
        for p in policies
        for s in scenarios
        if p != ORACLE or s in regressions
        for first in range(0, runs, CHUNK)
    ]
    # Slow items first (the engine), so the workers finish together.
    items.sort(key=lambda it: it[0] != CANARY)
    collected: dict[tuple[str, str], list[RunResult]] = {}
    if workers <= 1:
        outputs = map(_work, items)
        for item, out in zip(items, outputs, strict=True):
            collected.setdefault((item[0], item[1]), []).extend(out)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for item, out in zip(items, pool.map(_work, items), strict=True):
                collected.setdefault((item[0], item[1]), []).extend(out)
    return [
        Cell(p, collected[(p, s)][0].scenario, tuple(collected[(p, s)])).row()
        for p in policies
        for s in scenarios
        if (p, s) in collected
    ]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        f"{'policy':<13} {'scenario':<13} {'runs':>5} {'promoted':>9} {'rolled back':>12} "
        f"{'running':>8} {'median decision':>16} {'median harmed':>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        decision = "-" if r["median_decision_s"] is None else f"{r['median_decision_s']:.0f}s"
        lines.append(
            f"{r['policy']:<13} {r['scenario']:<13} {r['runs']:>5} "
            f"{100 * r['promoted_rate']:>8.1f}% {100 * r['rolled_back_rate']:>11.1f}% "
            f"{100 * r['still_running_rate']:>7.1f}% {decision:>16} "
            f"{r['median_harmed_requests']:>14.1f}"
        )
    notes = [
        f"  {r['policy']:<13} {r['scenario']:<13} promoted blind "
        f"{100 * r['promoted_blind_rate']:.1f}%, rolled back by provider errors "
        f"{100 * r['rolled_back_by_provider_errors_rate']:.1f}%"
        for r in rows
        if r["scenario"] == "outage"
        or r["promoted_blind_rate"]
        or r["rolled_back_by_provider_errors_rate"]
    ]
    if notes:
        lines += ["", "metrics outages:", *notes]
    return "\n".join(lines)


# ---------------------------------------------------------------- against the oracle

Rows = Mapping[tuple[str, str], Mapping[str, Any]]  # (policy, scenario) -> row
_ROLLBACK, _HARMED = "median_rollback_s", "median_harmed_requests"


def by_cell(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(r["policy"], r["scenario"]): r for r in rows}


def format_oracle_ratios(rows: Sequence[dict[str, Any]]) -> str:
    """canary's median time to rollback and harmed requests as multiples of the oracle's,
    one line per scenario the oracle ran (empty if it ran none, or canary did not)."""
    cells = by_cell(rows)
    lines = []
    for oracle in rows:
        canary = cells.get((CANARY, oracle["scenario"]))
        if oracle["policy"] != ORACLE or canary is None:
            continue
        lines.append(
            f"  {oracle['scenario']:<13} time to rollback "
            f"{_versus(_ROLLBACK, canary, oracle)}, harmed {_versus(_HARMED, canary, oracle)}"
        )
    return "\n".join(["canary / oracle (medians):", *lines]) if lines else ""


def _versus(key: str, row: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """The row's value, the reference's and their ratio, as in "70s / 30s = 2.33x"."""
    value, base = row[key], reference[key]
    ratio = f"{value / base:.2f}x" if value is not None and base else "-"
    return f"{_show(key, value)} / {_show(key, base)} = {ratio}"


def _show(key: str, value: float | None) -> str:
    if value is None:
        return "none"
    if key.endswith("_rate"):
        return f"{100 * value:.1f}%"
    if key.endswith("_s"):
        return f"{value:.0f}s"
    return f"{value:.1f}"


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A goal for canary's default policy on one scenario: the row's ``key`` at most (or
    at least) ``limit``, or ``limit`` times the ``reference`` policy's value on the same
    scenario. A time that never came (None: no run rolled back, say) counts as infinite.
    """

    label: str  # the scenario as the table names it
    goal: str
    scenario: str
    key: str
    limit: float
    at_least: bool = False
    reference: str | None = None
    also: tuple[str, ...] = ()  # further keys of canary's row to print

    def check(self, rows: Rows) -> tuple[str, str]:
        """("met", "NOT met" or "not run", the measured values)."""
        canary = rows.get((CANARY, self.scenario))
        other = rows.get((self.reference, self.scenario)) if self.reference else None
        if canary is None or (self.reference and other is None):
            return "not run", ""
        value = _or_infinite(canary[self.key])
        measured = _show(self.key, canary[self.key])
        bound = self.limit
        if other is not None:
            bound *= _or_infinite(other[self.key])
            measured += f" vs {self.reference} {_show(self.key, other[self.key])}"
            if math.isfinite(value) and other[self.key]:
                measured += f" ({value / other[self.key]:.2f}x)"
        measured += "".join(f", {k.removesuffix('_rate')} {_show(k, canary[k])}" for k in self.also)
        met = value >= bound if self.at_least else value <= bound
        return ("met" if met else "NOT met"), measured


def _or_infinite(value: float | None) -> float:
    return math.inf if value is None else float(value)


TARGETS: tuple[Target, ...] = (
    Target("bad (10x)", "median time to rollback <= 1.3x the oracle's", "bad", _ROLLBACK, 1.3,
           reference=ORACLE),
    Target("bad (10x)", "median harmed requests <= 1.3x the oracle's", "bad", _HARMED, 1.3,
           reference=ORACLE),
    Target("bad (10x)", "median harmed requests <= 1/5 of flagger-like's", "bad", _HARMED, 0.2,
           reference=FLAGGER),
    Target("moderate (3x)", "rolled back >= 99%", "moderate", "rolled_back_rate", 0.99,
           at_least=True),
    Target("moderate (3x)", "promoted <= 1%", "moderate", "promoted_rate", 0.01),
    Target("bad-6x", "rolled back >= 99%", "bad-6x", "rolled_back_rate", 0.99, at_least=True),
    Target("bad-6x", "promoted <= 1%", "bad-6x", "promoted_rate", 0.01),
    Target("latency-2x", "rolled back >= 95%", "latency-2x", "rolled_back_rate", 0.95,
           at_least=True),
    Target("latency (p99 +50%)", "rolled back >= 50%", "latency", "rolled_back_rate", 0.5,
           at_least=True),
    Target("slightly-bad (2x)", "promoted <= 10% (rolls back or waits for a human)",
           "slightly-bad", "promoted_rate", 0.1),
    Target("good", "false rollback <= 1%", "good", "rolled_back_rate", 0.01),
    Target("good", "median time to promotion <= flagger-like's", "good", "median_promotion_s",
           1.0, reference=FLAGGER),
    Target("noisy", "false rollback <= 1%", "noisy", "rolled_back_rate", 0.01,
           also=("promoted_rate",)),
    Target("low-traffic", "false rollback <= 1%", "low-traffic", "rolled_back_rate", 0.01,
           also=("promoted_rate",)),
    Target("outage", "0% promoted blind", "outage", "promoted_blind_rate", 0.0),
    Target("outage", "0% rolled back by the outage", "outage",
           "rolled_back_by_provider_errors_rate", 0.0),
)  # fmt: skip


def format_targets(rows: Sequence[dict[str, Any]], targets: Sequence[Target] = TARGETS) -> str:
    cells = by_cell(rows)
    lines = ["TARGETS (canary's default policy):"]
    for target in targets:
        status, measured = target.check(cells)
        lines.append(f"  {status:<8} {target.label:<19} {target.goal:<50} {measured}".rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m canary.simulate.bench",
        description="Decision benchmark: canary's default policy vs flagger-like, argo-like "
        "and the oracle (regression scenarios only).",
    )
    parser.add_argument("--runs", type=int, default=200, help="runs per policy x scenario")
    parser.add_argument("--out", default="bench-results/decisions.json", help="JSON output")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--scenarios", default=",".join(BUILTIN_SCENARIOS))
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--canary", default=None, help="Canary YAML to score as 'canary'")
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    policies = [p for p in args.policies.split(",") if p]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or args.runs < 1:
        parser.error(f"unknown policies {unknown}" if unknown else "--runs must be at least 1")
    started = time.perf_counter()
    rows = run_suite(policies, scenarios, args.runs, workers=args.workers, canary_path=args.canary)
    elapsed = time.perf_counter() - started
    print(format_table(rows))
    for section in (format_oracle_ratios(rows), format_targets(rows)):
        if section:
            print(f"\n{section}")
    print(
        f"\n{len(rows)} cells x {args.runs} runs in {elapsed:.0f}s on {args.workers} "
        f"worker(s) ({os.cpu_count()} CPUs)"
    )
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
