"""Anytime-valid inference for a proportion: the beta-binomial mixture martingale.

Why this and not a fixed-sample test
------------------------------------
The controller looks at the same canary after every interval. A fixed-sample test
(Kayenta's Mann-Whitney, a z-test) checked that way rejects far more often than its
nominal level: each look is another chance for noise to cross the line. We instead
use a test martingale, which may be checked after every observation, and stopped on
any rule, without losing its guarantee.

The construction (Robbins' method of mixtures)
----------------------------------------------
Let x_1, x_2, ... be independent observations in [0, 1] with mean p. For a candidate
value p0 and a Beta(a, b) prior ("mixing distribution") over p, set, after n
observations with sum k,

    M_n(p0) = ∫ p^k (1-p)^(n-k) dBeta(p; a, b) / (p0^k (1-p0)^(n-k))
            = B(a + k, b + n - k) / B(a, b) / (p0^k (1-p0)^(n-k)).

For each fixed p, (p/p0)^x ((1-p)/(1-p0))^(1-x) has expectation 1 when x is
Bernoulli(p0), and at most 1 when x is any [0, 1] variable with mean p0, because the
expression is convex in x (a two-point law is the extreme case). Mixing over p keeps
that, so M_n(p0) is a nonnegative supermartingale with M_0 = 1 whenever p0 is the
true mean. Ville's inequality then gives

    P( M_n(p0) >= 1/alpha for some n ) <= alpha,

so the sets C_n = {p0 : M_n(p0) < 1/alpha} cover the true p at every n at once: an
anytime-valid (1 - alpha) confidence sequence. Because the prior is fixed, C_n is
the set where the posterior density over the prior density exceeds alpha. That
ratio is log-concave in p0, so C_n is an interval and contains k/n (the mixture
never beats the best fit). Fractional totals fit the same formula: Prometheus'
increase() extrapolates counts, and histogram interpolation gives each request in a
straddled bucket a share (for the latter the [0, 1] argument above makes it exact).

M_n depends on the data only through (k, n), which is what makes the test usable
here: the judge is handed cumulative totals, not the sequence of observations.

The prior
---------
The mixture decides where power goes. `prior_around(c)` puts the prior mean on the
value expected when nothing changed (the null share c) and fixes the smaller shape
parameter at PRIOR_STRENGTH = 1. Whatever c is, that leaves the prior wide on the
log-odds scale (a standard deviation of 1.3 to 1.8), so a 2x and a 10x regression both
find prior mass nearby, and compared with a test that knew the effect size in advance
the price is about (1/2) log n nats of evidence. A concentrated prior would be faster
for the one effect size it is tuned to and slower for every other; the effect size of
a bad release is not known in advance. (In simulation, strengths 0.5 and 2 moved
detection times by about 10% at most, for error rates and latency alike.)

The guarantee is conservative in practice: Ville's inequality is tight only for a
martingale watched continuously that stops exactly at 1/alpha, while the judge looks
once per interval and uses two-sided intervals. A/A simulations (tests/unit/
test_judge.py) see about 0.1% false Fails at alpha = 1%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Smaller Beta shape parameter of the mixing prior; see the module docstring.
PRIOR_STRENGTH = 1.0


@dataclass(frozen=True)
class BetaPrior:
    a: float
    b: float


def prior_around(center: float, strength: float = PRIOR_STRENGTH) -> BetaPrior:
    """Beta prior with mean `center` whose smaller shape parameter is `strength`."""
    if not 0.0 < center < 1.0:
        raise ValueError(f"prior center must be in (0, 1), got {center}")
    scale = strength / min(center, 1.0 - center)
    return BetaPrior(a=center * scale, b=(1.0 - center) * scale)


def _betaln(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


Prior = BetaPrior | tuple[BetaPrior, ...]  # a tuple is an equal-weight mixture of Betas


def log_marginal(k: float, n: float, prior: Prior) -> float:
    """log ∫ p^k (1-p)^(n-k) dPrior(p): the mixture's numerator."""
    priors = prior if isinstance(prior, tuple) else (prior,)
    logs = [_betaln(b.a + k, b.b + n - k) - _betaln(b.a, b.b) for b in priors]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))


def _log_likelihood(p: float, k: float, n: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return k * math.log(p) + (n - k) * math.log1p(-p)


def log_evidence(p0: float, k: float, n: float, prior: Prior) -> float:
    """log M_n(p0): the e-value against "the mean is p0" after n observations summing to k."""
    return log_marginal(k, n, prior) - _log_likelihood(p0, k, n)


def proportion_bounds(k: float, n: float, prior: Prior, alpha: float) -> tuple[float, float]:
    """The (1 - alpha) confidence-sequence interval for p: {p0 : M_n(p0) < 1/alpha}.

    Solved in log-odds z so that tiny and near-one proportions keep their precision:
    the log-likelihood there is k z - n log(1 + e^z), concave in z.
    """
    if not n > 1e-9:
        return 0.0, 1.0
    # Totals carry float noise (Prometheus extrapolates); at this relative size it is
    # only noise, and keeping it would push the roots past what a double can hold.
    if k <= n * 1e-12:
        k = 0.0
    elif n - k <= n * 1e-12:
        k = n
    level = log_marginal(k, n, prior) - math.log(1.0 / alpha)
    # Newton needs a start on the correct side of the maximum-likelihood point, which is
    # inside the interval (the mixture never beats the best fit). The quadratic
    # approximation of gap there gives one close to each root. When k/n is 0 or 1 the
    # interval reaches that end, and gap is monotone, so any start will do.
    if k <= 0:
        return 0.0, _expit(_newton_root(k, n, level, -math.log1p(n)))
    if k >= n:
        return _expit(_newton_root(k, n, level, math.log1p(n))), 1.0
    z_hat = math.log(k) - math.log(n - k)
    information = k * ((n - k) / n)  # -gap'' at z_hat
    half_width = min(50.0, math.sqrt(2.0 * _gap(z_hat, k, n, level) / information))
    lower = _expit(_newton_root(k, n, level, z_hat - half_width))
    upper = _expit(_newton_root(k, n, level, z_hat + half_width))
    return lower, upper


def _expit(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _gap(z: float, k: float, n: float, level: float) -> float:
    """k z - n log(1 + e^z) - level, the log-likelihood in log-odds minus the level,
    written as -k softplus(-z) - (n-k) softplus(z) to avoid cancellation."""
    tail = math.log1p(math.exp(-abs(z)))
    return -k * (max(-z, 0.0) + tail) - (n - k) * (max(z, 0.0) + tail) - level


def _newton_root(k: float, n: float, level: float, z: float) -> float:
    """The root of _gap on the side of its maximum that z is on.

    _gap is concave, so every tangent lies above it: a Newton step taken on the outer
    side of the maximum never overshoots the root, and after the first step the iterates
    close in on it monotonically from outside (quadratically at the end).
    """
    for _ in range(200):
        slope = k * _expit(-z) - (n - k) * _expit(z)
        if slope == 0.0:
            break
        step = _gap(z, k, n, level) / slope
        z -= step
        if abs(z) > 1000.0:
            # Past |z| = 745 a proportion is 0 or 1 in double precision. If the interval
            # reaches that far, say so; if not, continue from there (outside the root).
            edge = math.copysign(745.0, z)
            if _gap(edge, k, n, level) >= 0.0:
                return math.copysign(math.inf, z)
            z, step = edge, math.inf
        if abs(step) <= 1e-9 * max(1.0, abs(z)):
            return z
    raise ArithmeticError(f"confidence bound did not converge (k={k}, n={n})")
