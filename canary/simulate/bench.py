"""The decision benchmark: canary's default policy against flagger-like and argo-like.

    python -m canary.simulate.bench [--runs 200] [--out bench-results/decisions.json]
                                    [--workers 2] [--scenarios good,bad] [--policies canary]

Every policy runs every scenario of the suite (canary/simulate/scenarios/) ``--runs``
times; run i uses seed ``scenario.seed + i`` for every policy. It prints one row per
policy x scenario and writes the rows as a JSON list with the keys ``policy``,
``scenario``, ``runs``, ``promoted_rate``, ``rolled_back_rate``, ``median_decision_s``,
``median_harmed_requests`` (rates are fractions 0-1), plus ``still_running_rate``,
``promoted_blind_rate``, ``rolled_back_by_provider_errors_rate``, ``p90_decision_s`` and
``median_canary_requests``.

- time to decision: seconds from the start of the rollout to the promotion or rollback,
  over the runs that decided (null if none did);
- harmed requests: failed requests beyond what stable would have given, up to the
  decision (or to the end of the scenario for runs still undecided), over all runs;
- promoted blind: promoted although the policy's latest measurement was a provider error;
- rolled back by provider errors: rolled back, and would not have been without the
  provider's errors (canary: any rollback not caused by a Fail verdict; flagger-like:
  fewer than ``threshold`` failed checks had real data; argo-like: consecutiveErrorLimit).

Runs are spread over ``--workers`` processes (2 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    if policy != "canary":
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
        }


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
    items = [
        (p, s, first, min(CHUNK, runs - first), canary_path)
        for p in policies
        for s in scenarios
        for first in range(0, runs, CHUNK)
    ]
    # Slow items first (the engine), so the workers finish together.
    items.sort(key=lambda it: it[0] != "canary")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m canary.simulate.bench",
        description="Decision benchmark: canary's default policy vs flagger-like and argo-like.",
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
