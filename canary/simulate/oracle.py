"""The oracle: the information limit of a canary's rollback decision. Benchmark only.

No policy can tell a bad canary from a good one faster than the data allow. The oracle
measures that limit: it is told the true rates (which a real policy has to estimate) and
runs Wald's sequential probability ratio test on the canary's traffic, one-sided, for
rollback only. A real policy that rolls back about as early, and harms about as few
requests, is close to the best any policy could do with this traffic.

It sees the traffic canary's default policy would give the canary:

- the same weight schedule, :data:`ORACLE_WEIGHTS` (setWeight 10 at t = 0, 25 at 30 s,
  50 at 60 s, then 50 until the end), from the moment the canary is ready;
- a look every :data:`ORACLE_INTERVAL` (10 s, the default policy's analysis interval);
- the ``tolerance`` (:data:`ORACLE_TOLERANCE`) and, as alpha, the ``maxFalseRollback``
  (:data:`ORACLE_ALPHA`) of the default policy's metric that judges the bad event: 1.25
  and 0.03 for errors, 1.5 and 0.01 for slow requests. A test in
  tests/unit/test_bench_oracle.py keeps these equal to the default policy's.

At each look it computes the log-likelihood ratio of every canary request since t = 0
(pooled over the steps), each either "bad" or not:

    LLR = sum over canary requests of  x log(p1 / p0') + (n - x) log((1 - p1) / (1 - p0'))

for n requests of which x were bad, with H1 the canary's true rate of bad requests p1 and
H0 the boundary of "no regression", p0' = tolerance x stable's true rate. It rolls back at
the first look where LLR >= log(1 / alpha), Wald's bound, which keeps the chance of
rolling back a canary at that boundary below alpha. It never promotes: a run that never
crosses the bound is "still running". Harmed requests are counted by the World, as for
every policy.

What a bad request is depends on the regression:

- **errors**, if the canary's error rate is beyond the tolerance (above 1.25 x stable's):
  a failed request;
- **slow requests**, if not, but its latency is: a request slower than the slow-request
  bound b, the smallest histogram bound at which stable's true latency CDF reaches 0.99;
  the true rates are each variant's share above b (1 - CDF(b) of its latency model), and
  the bad requests are the canary's requests in the buckets above b;
- neither (a canary within the tolerance): there is nothing to find, and the oracle only
  waits. (The test would be meaningless there: H1 would lie below H0, and crossing the
  bound would be evidence that the canary is *better* than the boundary.)

Before a scenario's ``regression_starts_at`` the canary behaves like stable, so the
requests of those ticks enter the LLR with p1 = stable's rate: the LLR is that of the
scenario's true course against the boundary. Those ticks add little (stable's rate is
close to the boundary): about +0.15 over slow-burn's first 10 minutes, against a bound of
log 20 = 3.0.

The oracle calls no engine and no provider: a run costs one World and a few numpy sums
per look.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from canary.simulate.runner import ROLLED_BACK, RUNNING, Point, Recorder, RunResult, finish
from canary.simulate.scenario import Scenario
from canary.simulate.traffic import CANARY, Behaviour, World

ORACLE = "oracle"
# canary's default policy: (seconds after the canary is ready, weight), then 50 % held.
ORACLE_WEIGHTS: tuple[tuple[float, float], ...] = ((0.0, 10.0), (30.0, 25.0), (60.0, 50.0))
ORACLE_INTERVAL = 10.0  # seconds between looks: the default policy's analysis interval
SLOW_QUANTILE = 0.99  # the slow-request bound is stable's p99, rounded up to a bucket bound
ERRORS, SLOW = "errors", "slow requests"
# The default policy's per metric: "no regression" is at most tolerance x stable's rate.
ORACLE_TOLERANCE = {ERRORS: 1.25, SLOW: 1.5}
ORACLE_ALPHA = {ERRORS: 0.03, SLOW: 0.01}


def is_regression(scenario: Scenario) -> bool:
    """Whether the canary is worse than the tolerance allows, so the oracle has something to
    find (on the other scenarios it only waits: its row would say nothing)."""
    return Truth.of(scenario) is not None


@dataclass(frozen=True)
class Truth:
    """What the oracle knows: the bad event and its true per-request rates."""

    event: str  # ERRORS or SLOW
    slow_from: int  # first latency bucket counted as slow (SLOW only)
    before: float  # the canary's rate before the regression starts (stable's)
    after: float  # the canary's rate from then on
    boundary: float  # p0' = tolerance x stable's rate

    @classmethod
    def of(cls, scenario: Scenario) -> Truth | None:
        """Errors if the canary's error rate is beyond the tolerance, else slow requests if
        their share is; None if neither is (no regression)."""
        bounds_s = tuple(b / 1000.0 for b in scenario.latency_buckets_ms)
        stable = Behaviour.of(scenario.stable, bounds_s)
        canary = Behaviour.of(scenario.canary, bounds_s)
        tolerance = ORACLE_TOLERANCE[ERRORS]
        if canary.error_rate > tolerance * stable.error_rate:
            p0 = stable.error_rate
            return cls(ERRORS, 0, p0, canary.error_rate, tolerance * p0)
        first = slow_bucket(stable)
        p0, p1 = float(stable.shares[first:].sum()), float(canary.shares[first:].sum())
        tolerance = ORACLE_TOLERANCE[SLOW]
        if p1 > tolerance * p0:
            return cls(SLOW, first, p0, p1, tolerance * p0)
        return None

    def bad_requests(self, world: World, span: slice) -> np.ndarray:
        """The canary's bad requests per tick of `span`."""
        if self.event == ERRORS:
            return world.errors[CANARY, span]
        return world.buckets[CANARY, span, self.slow_from :].sum(axis=1)

    def llr(self, world: World, start: int, end: int) -> float:
        """The log-likelihood ratio (H1: the true rates; H0: the boundary) of the canary's
        requests in ticks [start, end). xlogy makes a term with no requests 0, and a bad
        request that H0 rules out (boundary 0) infinite evidence."""
        span = slice(start, end)
        n = world.requests[CANARY, span]
        x = self.bad_requests(world, span)
        regression = world.tick_of(world.scenario.regression_starts_at)
        p1 = np.where(np.arange(start, end) < regression, self.before, self.after)
        p0 = self.boundary
        terms = xlogy(x, p1) - xlogy(x, p0) + xlogy(n - x, 1 - p1) - xlogy(n - x, 1 - p0)
        return float(terms.sum())


def slow_bucket(stable: Behaviour) -> int:
    """Index of the first bucket above the slow-request bound b: the smallest bound at which
    stable's CDF reaches SLOW_QUANTILE, give or take float round-off (the +Inf bucket if
    no finite bound does). The shares above it are each variant's 1 - CDF(b)."""
    cdf = np.cumsum(stable.shares[:-1])
    return int(np.searchsorted(cdf, SLOW_QUANTILE - 1e-9)) + 1


def run_oracle(
    scenario: Scenario, seed: int, *, record: bool = False, keep_world: bool = False
) -> RunResult:
    """One run of the oracle; see the module doc. Without a regression it only waits."""
    world = World(scenario, seed)
    truth = Truth.of(scenario)
    recorder = Recorder(record)
    alpha = ORACLE_ALPHA[truth.event] if truth is not None else 1.0
    bound = math.log(1 / alpha)
    llr, seen = 0.0, 0
    for look in _looks(world, recorder):
        if truth is None:
            continue
        llr += truth.llr(world, seen, world.ticks)
        seen = world.ticks
        verdict = ("llr", "Fail" if llr >= bound else "Continue", f"{llr:.3g}")
        if llr >= bound:
            recorder.add(Point(look, 0, "RolledBack", (verdict,), "LLR >= log(1/alpha)"))
            reason = f"SPRT on {truth.event}: LLR {llr:.3g} >= log(1/{alpha:g})"
            return finish(
                ORACLE, scenario, seed, world, ROLLED_BACK, look, reason,
                recorder=recorder, keep_world=keep_world,
            )  # fmt: skip
        recorder.add(Point(look, world.weight, "Progressing", (verdict,)))
    if truth is None:
        reason = "no regression beyond the tolerance: nothing to find"
    else:
        reason = f"SPRT on {truth.event}: LLR {llr:.3g} < log(1/{alpha:g}) at the end"
    return finish(
        ORACLE, scenario, seed, world, RUNNING, None, reason,
        recorder=recorder, keep_world=keep_world,
    )  # fmt: skip


def _looks(world: World, recorder: Recorder) -> Iterator[float]:
    """The look times up to the end, with the world advanced to each and the default
    policy's weights set on the way (from the moment the canary is ready)."""
    ready = world.scenario.canary_ready_after
    pending = [(ready + at, weight) for at, weight in ORACLE_WEIGHTS]
    look = ORACLE_INTERVAL
    while look <= world.end:
        while pending and pending[0][0] <= look:
            at, weight = pending.pop(0)
            world.advance(at)
            world.set_weight(weight)
            recorder.add(Point(at, weight, "Progressing", (), f"setWeight {weight:g}"))
        world.advance(look)
        yield look
        look += ORACLE_INTERVAL


__all__ = ["ORACLE", "Truth", "is_regression", "run_oracle", "slow_bucket"]
