"""Mixture likelihoods for a proportion: the numerator of the added-rate e-value.

Robbins' method of mixtures: for n observations in [0, 1] summing to k, and a Beta(a, b)
prior ("mixing distribution") over the proportion p,

    m(k, n) = ∫ p^k (1-p)^(n-k) dBeta(p; a, b) = B(a + k, b + n - k) / B(a, b).

For any fixed p0, m(k, n) / (p0^k (1-p0)^(n-k)) is a nonnegative martingale with
expectation 1 when p0 is the true proportion (a supermartingale when the observations
are only bounded in [0, 1] with mean p0), so Ville's inequality bounds the chance that
it ever reaches 1/alpha by alpha. judge.py divides by the largest likelihood on the null
instead of the true one (universal inference), which keeps the guarantee.

m depends on the data only through (k, n): the judge is handed cumulative totals, not
the sequence of observations, and fractional totals (Prometheus' increase()
extrapolates) fit the same formula.

The prior decides where power goes: the price against knowing p in advance is roughly
-log of the prior mass near the truth, plus (1/2) log n. An equal-weight mixture of
Betas (a tuple of priors) spreads that mass over several orders of magnitude at the
cost of log(number of priors) nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Smaller Beta shape parameter of a mixing prior: wide on the log-odds scale (a standard
# deviation of 1.3 to 1.8 whatever the mean), so effects of very different sizes all
# find prior mass nearby.
PRIOR_STRENGTH = 1.0


@dataclass(frozen=True)
class BetaPrior:
    a: float
    b: float


Prior = BetaPrior | tuple[BetaPrior, ...]  # a tuple is an equal-weight mixture of Betas


def prior_around(center: float, strength: float = PRIOR_STRENGTH) -> BetaPrior:
    """Beta prior with mean `center` whose smaller shape parameter is `strength`."""
    if not 0.0 < center < 1.0:
        raise ValueError(f"prior center must be in (0, 1), got {center}")
    scale = strength / min(center, 1.0 - center)
    return BetaPrior(a=center * scale, b=(1.0 - center) * scale)


def _betaln(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def log_marginal(k: float, n: float, prior: Prior) -> float:
    """log ∫ p^k (1-p)^(n-k) dPrior(p): the mixture's numerator."""
    priors = prior if isinstance(prior, tuple) else (prior,)
    logs = [_betaln(b.a + k, b.b + n - k) - _betaln(b.a, b.b) for b in priors]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))
