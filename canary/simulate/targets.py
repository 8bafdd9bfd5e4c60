"""The decision benchmark's targets for canary's default policy, and its bake figures.

Each :class:`Target` reads one row of the benchmark (bench.py) and says "met", "NOT met"
or "not run". :func:`format_bake` reports what the bake costs and finds: on `good`, the
median time to fully done (promoted after the bake) against the promotion decision (what
fully done is without a bake: the engine decides the same up to its promotion gate
whether or not spec.bake is set, so the same runs give both), and on every scenario the
share of runs rolled back during the bake.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.simulate.oracle import ORACLE
from canary.simulate.policies import FLAGGER

CANARY = "canary"  # the policy under test

Rows = Mapping[tuple[str, str], Mapping[str, Any]]  # (policy, scenario) -> row
ROLLBACK, HARMED = "median_rollback_s", "median_harmed_requests"


def by_cell(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(r["policy"], r["scenario"]): r for r in rows}


def show(key: str, value: float | None) -> str:
    if value is None:
        return "none"
    if key.endswith("_rate"):
        return f"{100 * value:.1f}%"
    if key.endswith("_s"):
        return f"{value:.0f}s"
    return f"{value:.1f}"


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
        measured = show(self.key, canary[self.key])
        bound = self.limit
        if other is not None:
            bound *= _or_infinite(other[self.key])
            measured += f" vs {self.reference} {show(self.key, other[self.key])}"
            if math.isfinite(value) and other[self.key]:
                measured += f" ({value / other[self.key]:.2f}x)"
        measured += "".join(f", {k.removesuffix('_rate')} {show(k, canary[k])}" for k in self.also)
        met = value >= bound if self.at_least else value <= bound
        return ("met" if met else "NOT met"), measured


def _or_infinite(value: float | None) -> float:
    return math.inf if value is None else float(value)


TARGETS: tuple[Target, ...] = (
    Target("bad (10x)", "median time to rollback <= 1.3x the oracle's", "bad", ROLLBACK, 1.3,
           reference=ORACLE),
    Target("bad (10x)", "median harmed requests <= 1.3x the oracle's", "bad", HARMED, 1.3,
           reference=ORACLE),
    Target("bad (10x)", "median harmed requests <= 1/5 of flagger-like's", "bad", HARMED, 0.2,
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
    Target("late-regression", "rolled back during the bake >= 95%",
           "late-regression", "rolled_back_in_bake_rate", 0.95, at_least=True,
           also=("rolled_back_rate",)),
    Target("late-regression", "median harmed requests <= 1/5 of flagger-like's",
           "late-regression", HARMED, 0.2, reference=FLAGGER),
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


def format_bake(rows: Sequence[Mapping[str, Any]]) -> str:
    """canary's bake: what it costs on `good` and where it rolled back (empty if no run
    of canary's baked)."""
    canary = [r for r in rows if r["policy"] == CANARY]
    lines = []
    good = next((r for r in canary if r["scenario"] == "good"), None)
    if good is not None and good.get("median_done_s") is not None:
        done, decided = good["median_done_s"], good["median_promotion_s"]
        lines.append(
            f"  good: median time to fully done {show('_s', done)} with the bake, "
            f"{show('_s', decided)} without it (the promotion decision, same runs)"
        )
    for r in canary:
        if r.get("rolled_back_in_bake_rate"):
            lines.append(
                f"  {r['scenario']}: rolled back during the bake in "
                f"{show('_rate', r['rolled_back_in_bake_rate'])} of runs"
            )
    return "\n".join(["bake (canary's default policy):", *lines]) if lines else ""
