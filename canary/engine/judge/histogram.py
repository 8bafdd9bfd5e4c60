"""Cumulative Prometheus histograms as the latency judge reads them.

The judge compares quantiles the way Prometheus' histogram_quantile() computes them:
the count is spread evenly inside each bucket (linear interpolation), the first bucket
starts at 0 when its bound is positive, and a quantile that falls into the +Inf bucket
is reported as the largest finite bound. We test *that* quantity rather than the
unobservable true latency quantile for two reasons: it is the number engineers see on
their dashboards, and it makes the test exact instead of approximately right. A
quantile read off the interpolated histogram is a fixed function of the population,
so "canary p99 <= (1 + t) x stable p99" is a well-defined hypothesis, and each
request contributes an amount in [0, 1] to the interpolated count below any point
(1, 0, or its share of a straddled bucket) - the setting the mixture martingale in
judge_mixture covers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from canary.engine.samples import Buckets


class HistogramError(ValueError):
    """The series cannot be a cumulative histogram (bad bounds, NaN or negative counts)."""


@dataclass(frozen=True)
class Histogram:
    bounds: tuple[float, ...]  # finite upper bounds, ascending; the +Inf bucket is implied
    cumulative: tuple[float, ...]  # count <= each bound, then the total (the +Inf bucket)

    @property
    def total(self) -> float:
        return self.cumulative[-1]

    def value_at_rank(self, rank: float) -> float:
        """The latency below which `rank` requests fall, interpolated like histogram_quantile."""
        rank = min(max(rank, 0.0), self.total)
        below = 0.0
        for i, upper in enumerate(self.bounds):
            count = self.cumulative[i]
            if count >= rank:
                lower = self.bounds[i - 1] if i else min(0.0, upper)
                if count == below:
                    return lower
                return lower + (upper - lower) * (rank - below) / (count - below)
            below = count
        return self.bounds[-1]

    def quantile(self, q: float) -> float:
        return self.value_at_rank(q * self.total)

    def beyond_last_bound(self, q: float) -> bool:
        """Whether the q-quantile lies in the +Inf bucket (so it is only known to be larger)."""
        return q * self.total > self.cumulative[-2]


def parse(buckets: Buckets) -> Histogram:
    """Check and normalise a cumulative histogram: (le, count) pairs ascending, +Inf last.

    Counts that dip from one bucket to the next (Prometheus extrapolates each `le`
    series separately in increase()) are raised to the running maximum, as
    histogram_quantile does.
    """
    if len(buckets) < 2:
        raise HistogramError("needs at least one finite bucket and the +Inf bucket")
    try:
        les = [float(le) for le, _ in buckets]
        counts = [float(c) for _, c in buckets]
    except (TypeError, ValueError) as exc:
        raise HistogramError(f"buckets must be (le, count) number pairs: {exc}") from None
    if not math.isinf(les[-1]) or les[-1] < 0:
        raise HistogramError("the last bucket must be le=+Inf")
    finite = les[:-1]
    if any(not math.isfinite(le) for le in finite):
        raise HistogramError("bucket bounds must be finite numbers except the last")
    if any(b <= a for a, b in itertools.pairwise(finite)):
        raise HistogramError("bucket bounds must be strictly ascending")
    if any(math.isnan(c) for c in counts):
        raise HistogramError("bucket counts contain NaN")
    if any(c < 0 for c in counts):
        raise HistogramError("bucket counts are negative (a counter reset?)")
    if any(math.isinf(c) for c in counts):
        raise HistogramError("bucket counts are infinite")
    running = []
    top = 0.0
    for c in counts:
        top = max(top, c)
        running.append(top)
    return Histogram(bounds=tuple(finite), cumulative=tuple(running))
