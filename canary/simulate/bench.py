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
``median_canary_requests``, ``median_rollback_s``, ``median_promotion_s``,
``median_done_s`` and ``rolled_back_in_bake_rate``.

- time to decision: seconds from the start of the rollout to the promotion or rollback,
  over the runs that decided (null if none did); time to rollback and time to promotion
  the same over the runs rolled back, or promoted. With a bake the promotion is its
  gate (the new revision takes all but the holdback); ``median_done_s`` is the time to
  fully done (promoted after the bake), over the runs promoted;
- rolled back in the bake: the share of runs rolled back during the bake;
- harmed requests: failed requests beyond what stable would have given, up to the
  decision (or to the end of the scenario for runs still undecided), over all runs;
- promoted blind: promoted although the policy's latest measurement was a provider error;
- rolled back by provider errors: rolled back, and would not have been without the
  provider's errors (canary: any rollback not caused by a Fail verdict; flagger-like:
  fewer than ``threshold`` failed checks had real data; argo-like: consecutiveErrorLimit).

After the table it prints, for each regression scenario, canary's median time to
rollback and median harmed requests as multiples of the oracle's, the bake's figures
(targets.format_bake), and then each of :data:`targets.TARGETS` for canary's default
policy with its measured value and "met", "NOT met" or "not run" (a row it needs was
not run). The exit code is 0 either way: the benchmark reports, it does not gate.

Runs are spread over ``--workers`` processes (2 by default).
"""

from __future__ import annotations

import argparse
import json
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
from canary.simulate.targets import (
    CANARY,
    HARMED,
    ROLLBACK,
    TARGETS,
    Rows,
    Target,
    by_cell,
    format_bake,
    format_targets,
    show,
)

DEFAULT_CANARY = "default-canary"
__all__ = ["TARGETS", "Rows", "Target", "by_cell", "format_targets", "run_suite"]
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
        done = [r.done_s for r in self.results if r.outcome == PROMOTED and r.done_s is not None]
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
            "median_done_s": _round(statistics.median(done)) if done else None,
            "rolled_back_in_bake_rate": _share(r.in_bake for r in self.results),
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
        f"{'policy':<13} {'scenario':<15} {'runs':>5} {'promoted':>9} {'rolled back':>12} "
        f"{'running':>8} {'median decision':>16} {'median harmed':>14}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        decision = "-" if r["median_decision_s"] is None else f"{r['median_decision_s']:.0f}s"
        lines.append(
            f"{r['policy']:<13} {r['scenario']:<15} {r['runs']:>5} "
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
            f"{_versus(ROLLBACK, canary, oracle)}, harmed {_versus(HARMED, canary, oracle)}"
        )
    return "\n".join(["canary / oracle (medians):", *lines]) if lines else ""


def _versus(key: str, row: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """The row's value, the reference's and their ratio, as in "70s / 30s = 2.33x"."""
    value, base = row[key], reference[key]
    ratio = f"{value / base:.2f}x" if value is not None and base else "-"
    return f"{show(key, value)} / {show(key, base)} = {ratio}"


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
    for section in (format_oracle_ratios(rows), format_bake(rows), format_targets(rows)):
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
