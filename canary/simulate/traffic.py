"""Simulated traffic: Poisson requests split by the canary weight, errors, latency buckets.

Traffic model
-------------
Time is cut into ticks of ``scenario.tick`` seconds (1 s by default). In each tick the
canary gets Poisson(rps x w x tick) requests and stable Poisson(rps x (1 - w) x tick),
where w is the weight last set (0-100 %, applied from the tick that starts at the moment
it was set). This is the same as one Poisson stream split at random by the weight.
Each request fails independently with the variant's error rate (so errors are
Binomial given the requests), and its latency falls into the exported histogram buckets
(a Multinomial over the buckets).

Latency model
-------------
Each variant's latency is log-normal, fitted to the scenario's p50 and p99:

    mu    = ln p50
    sigma = (ln p99 - ln p50) / z_0.99,     z_0.99 = 2.3263 (the standard normal 99th pct)

so the median is exactly p50 and the 99th percentile exactly p99. A bucket with upper
bound b holds the share Phi((ln b - mu) / sigma) - Phi((ln b' - mu) / sigma) of the
requests (b' the previous bound); the +Inf bucket holds the rest. Failed requests are in
the histogram too, with the same latency distribution.

Regressions
-----------
Before ``regression_starts_at`` the canary behaves exactly like stable (errors and
latency); from then on it has its own numbers.

Harmed requests
---------------
The failed requests users got beyond what stable would have given them: for each tick,
canary requests x (canary error rate - stable error rate): the expected excess given the
requests the canary actually served, without the Binomial noise of the errors themselves
(a canary better than stable gives a negative number).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from canary.simulate.scenario import Latency, Scenario, Variant

Z99 = float(norm.ppf(0.99))
CANARY, STABLE = 0, 1


@dataclass(frozen=True)
class LatencyModel:
    mu: float  # of ln(latency in seconds)
    sigma: float

    @classmethod
    def fit(cls, latency: Latency) -> LatencyModel:
        p50, p99 = latency.p50 / 1000.0, latency.p99 / 1000.0
        return cls(mu=math.log(p50), sigma=(math.log(p99) - math.log(p50)) / Z99)

    def quantile(self, q: float) -> float:
        """Latency in seconds at quantile q."""
        return math.exp(self.mu + self.sigma * float(norm.ppf(q)))

    def bucket_shares(self, bounds_s: tuple[float, ...]) -> np.ndarray:
        """Share of requests in each bucket: one per finite bound, then the +Inf bucket."""
        cdf = norm.cdf((np.log(np.asarray(bounds_s)) - self.mu) / self.sigma)
        shares = np.diff(np.concatenate(([0.0], cdf, [1.0])))
        shares = np.clip(shares, 0.0, None)
        return shares / shares.sum()


@dataclass(frozen=True)
class Behaviour:
    error_rate: float
    shares: np.ndarray  # bucket shares, len(bounds) + 1

    @classmethod
    def of(cls, variant: Variant, bounds_s: tuple[float, ...]) -> Behaviour:
        model = LatencyModel.fit(variant.latency_ms)
        return cls(variant.error_rate, model.bucket_shares(bounds_s))


class World:
    """Per-variant request, error and latency-bucket counters, generated lazily tick by tick.

    ``now`` is the simulated time in seconds since the rollout started; it only moves
    forward (:meth:`advance`). Counters cover whole ticks: tick i spans
    [i x tick, (i + 1) x tick). :meth:`window` sums the ticks in (end - seconds, end],
    where end is now, or the last scrape before now when the scenario sets a
    ``scrape_interval`` (then queries see the counters as Prometheus last scraped them;
    scrapes fall at a random phase, drawn once per run).
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.dt = float(scenario.tick)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.bounds_s = tuple(b / 1000.0 for b in scenario.latency_buckets_ms)
        self.stable = Behaviour.of(scenario.stable, self.bounds_s)
        self.bad = Behaviour.of(scenario.canary, self.bounds_s)
        n = math.ceil(scenario.duration / self.dt) + 2
        k = len(self.bounds_s) + 1
        self.requests = np.zeros((2, n), dtype=np.int64)
        self.errors = np.zeros((2, n), dtype=np.int64)
        self.buckets = np.zeros((2, n, k), dtype=np.int64)
        self.weights = np.zeros(n, dtype=np.float64)  # canary weight (0-100) per tick
        self.harm = np.zeros(n, dtype=np.float64)
        self.ticks = 0  # ticks generated so far
        self.weight = 0.0
        self._regression_tick = math.ceil(scenario.regression_starts_at / self.dt - 1e-9)
        # Scrapes happen every scrape_interval at a random phase (on the tick grid).
        scrape = scenario.scrape_interval
        phases = max(round(scrape / self.dt), 1)
        self.scrape_phase = float(self.rng.integers(phases)) * self.dt if scrape > 0 else 0.0

    @property
    def now(self) -> float:
        return self.ticks * self.dt

    @property
    def end(self) -> float:
        return self.scenario.duration

    def tick_of(self, t: float) -> int:
        """The number of whole ticks at or before time t (rounded up to the grid)."""
        return math.ceil(t / self.dt - 1e-9)

    def set_weight(self, weight: float) -> None:
        """The canary gets `weight` percent of the requests from now on."""
        self.weight = float(weight)

    def advance(self, t: float) -> None:
        """Generate the traffic up to time t (rounded up to the tick grid)."""
        target = min(self.tick_of(t), self.requests.shape[1])
        if target <= self.ticks:
            return
        start, m = self.ticks, target - self.ticks
        w = self.weight / 100.0
        rate = self.scenario.rps * self.dt
        n_c = self.rng.poisson(rate * w, m) if w > 0 else np.zeros(m, dtype=np.int64)
        n_s = self.rng.poisson(rate * (1.0 - w), m) if w < 1 else np.zeros(m, dtype=np.int64)
        window = slice(start, target)
        self.requests[CANARY, window] = n_c
        self.requests[STABLE, window] = n_s
        self.weights[window] = self.weight
        self._fill(STABLE, start, n_s, self.stable)
        # The canary behaves like stable until the regression starts.
        split = min(max(self._regression_tick - start, 0), m)
        if split:
            self._fill(CANARY, start, n_c[:split], self.stable)
        if split < m:
            self._fill(CANARY, start + split, n_c[split:], self.bad)
            excess = self.bad.error_rate - self.stable.error_rate
            self.harm[start + split : target] = n_c[split:] * excess
        self.ticks = target

    def _fill(self, variant: int, start: int, n: np.ndarray, behaviour: Behaviour) -> None:
        if not len(n) or not n.any():
            return
        end = start + len(n)
        self.errors[variant, start:end] = self.rng.binomial(n, behaviour.error_rate)
        self.buckets[variant, start:end] = self.rng.multinomial(n, behaviour.shares)

    # ---------------------------------------------------------------- reading

    def visible_ticks(self) -> int:
        """The ticks a query can see: all generated ones, or those up to the last scrape."""
        scrape = self.scenario.scrape_interval
        if scrape <= 0:
            return self.ticks
        last = math.floor((self.now - self.scrape_phase) / scrape + 1e-9) * scrape
        return min(self.ticks, max(self.tick_of(last + self.scrape_phase), 0))

    def _span(self, seconds: float) -> slice:
        end = self.visible_ticks()
        return slice(max(end - self.tick_of(seconds), 0), end)

    def window(self, variant: int, seconds: float) -> tuple[int, int, np.ndarray]:
        """(requests, errors, per-bucket counts) over the last `seconds` up to now."""
        span = self._span(seconds)
        return (
            int(self.requests[variant, span].sum()),
            int(self.errors[variant, span].sum()),
            self.buckets[variant, span].sum(axis=0),
        )

    def cumulative_buckets(self, counts: np.ndarray) -> tuple[tuple[float, float], ...]:
        """Per-bucket counts as a Prometheus cumulative histogram in seconds, +Inf last."""
        running = np.cumsum(counts)
        les = (*self.bounds_s, math.inf)
        return tuple((le, float(c)) for le, c in zip(les, running, strict=True))

    def baseline_buckets(self, seconds: float) -> np.ndarray:
        """Stable's per-bucket counts over `seconds` of all traffic before t = 0.

        Drawn from a generator of its own, so the rollout's traffic is the same whether or
        not a policy asks for a baseline.
        """
        rng = np.random.default_rng([self.seed, 1])
        requests = rng.poisson(self.scenario.rps * seconds)
        return rng.multinomial(requests, self.stable.shares)

    def canary_requests(self) -> int:
        return int(self.requests[CANARY, : self.ticks].sum())

    def harmed_requests(self) -> float:
        return float(self.harm[: self.ticks].sum())


def histogram_quantile(q: float, cumulative: tuple[tuple[float, float], ...]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) pairs; None without data.

    Linear interpolation inside the bucket, the first bucket starting at 0, and a
    quantile in the +Inf bucket reported as the largest finite bound.
    """
    total = cumulative[-1][1]
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0.0, 0.0
    for le, count in cumulative:
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return lower
            return lower + (le - lower) * (rank - below) / (count - below)
        below, lower = count, le
    return lower
