"""One anytime-valid test of a rate ratio per rollout, pooled across steps.

The quantity is rho = p_c / p_s, the canary's rate of bad requests (errors, or requests
slower than a latency bound) over the stable's. A rollout runs in steps of different
traffic shares; each step contributes a Segment with both variants' counts.

Why errors alone carry the evidence
-----------------------------------
Within a step every request goes to the canary with probability w (the share) and is
bad with probability p_c or p_s. So each bad request, whichever variant served it, is a
canary one with probability

    theta_j(rho) = rho w_j / (rho w_j + 1 - w_j)

independently of all others, and stable's own rate (a nuisance) drops out. The bad
requests of all steps together have the likelihood

    L(rho) = prod_j theta_j^x_j (1 - theta_j)^(e_j - x_j),

x_j canary bad requests out of e_j bad ones in step j. w_j is estimated from all the
requests of the step (n_c / (n_c + n_s)), whose noise is small beside the bad requests'.

The e-values
------------
For a fixed rho1 > rho0, L(rho1) / L(rho0) is a martingale when rho = rho0 and a
supermartingale when rho < rho0: each bad request multiplies it by a factor whose mean,
linear in the true theta, is 1 at theta(rho0) and increasing in theta. Any mixture of
such ratios over rho1 keeps that, and Ville's inequality bounds the chance that it ever
reaches 1/alpha by alpha, however often it is looked at and however the steps change.

- fail_log_evidence: against "rho <= tolerance", mixed log-uniformly over rho from the
  tolerance to 30x it. The mixture sits only on regressions: a prior centred on "no
  change" spends half its mass on a better canary and almost none near 10x.
- pass_log_evidence: against "rho >= bound", mixed log-uniformly over rho from bound/30
  to the bound: the evidence that a regression as large as the bound is ruled out.
- ratio_fit: the two-sided confidence sequence {rho0 : e-value(rho0) < 1/alpha}
  with a log-uniform mixture over [1/30, 30], for explanations only.

The mixtures are discrete grids: a discrete mixing distribution is as valid as a
continuous one, so the grid costs a little power and nothing in validity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SPAN = 30.0  # how far from their anchor the one-sided mixtures reach
_ONE_SIDED = 40  # grid points of a one-sided mixture
_TWO_SIDED = np.geomspace(1.0 / SPAN, SPAN, 81)


@dataclass(frozen=True)
class Segment:
    """One step's counts: requests and bad requests of each variant at one traffic share."""

    canary_requests: float
    canary_bad: float
    stable_requests: float
    stable_bad: float


@dataclass(frozen=True)
class _Errors:
    """The informative part of the segments: shares w_j, bad requests e_j, canary's x."""

    shares: np.ndarray
    bad: np.ndarray
    canary_bad: float

    def log_likelihood(self, rhos: np.ndarray) -> np.ndarray:
        """log L(rho) up to a constant that does not depend on rho, for each rho."""
        mix = np.log(np.outer(rhos, self.shares) + (1.0 - self.shares))
        return self.canary_bad * np.log(rhos) - mix @ self.bad


def _errors(segments: Sequence[Segment]) -> _Errors:
    # A step with no traffic on one side says nothing about rho: every bad request there
    # belongs to the side that served, whatever rho is.
    used = [s for s in segments if s.canary_requests > 0 and s.stable_requests > 0]
    shares = np.array([s.canary_requests / (s.canary_requests + s.stable_requests) for s in used])
    bad = np.array([s.canary_bad + s.stable_bad for s in used])
    return _Errors(shares, bad, float(sum(s.canary_bad for s in used)))


def _mixture_log_evidence(errors: _Errors, grid: np.ndarray, rho0: float) -> float:
    """log of the mean over `grid` of L(rho) / L(rho0)."""
    if not errors.bad.size or not errors.bad.any():
        return 0.0
    values = errors.log_likelihood(np.append(grid, rho0))
    ratios = values[:-1] - values[-1]
    top = float(ratios.max())
    return top + math.log(float(np.exp(ratios - top).mean()))


def fail_log_evidence(segments: Sequence[Segment], tolerance: float) -> float:
    """log e-value against "the canary's rate is at most `tolerance` x the stable's"."""
    grid = np.geomspace(tolerance, tolerance * SPAN, _ONE_SIDED)
    return _mixture_log_evidence(_errors(segments), grid, tolerance)


def pass_log_evidence(segments: Sequence[Segment], bound: float) -> float:
    """log e-value against "the canary's rate is at least `bound` x the stable's"."""
    grid = np.geomspace(bound / SPAN, bound, _ONE_SIDED)
    return _mixture_log_evidence(_errors(segments), grid, bound)


@dataclass(frozen=True)
class RatioFit:
    """rho's maximum-likelihood estimate and its (1 - alpha) confidence sequence, from the
    same per-step likelihood the tests use. estimate is None with no bad requests at all,
    inf with bad requests on the canary only; lower/upper are 0/inf when unbounded."""

    estimate: float | None
    lower: float
    upper: float


def ratio_fit(segments: Sequence[Segment], alpha: float) -> RatioFit:
    """The set is an interval around the maximum-likelihood rho, because log L is concave
    in u = log rho: Newton's method finds the maximum, then each end, where log L falls
    to the mixture's level."""
    errors = _errors(segments)
    if not errors.bad.size or not errors.bad.any():
        return RatioFit(None, 0.0, math.inf)
    mixture = errors.log_likelihood(_TWO_SIDED)
    top = float(mixture.max())
    level = top + math.log(float(np.exp(mixture - top).mean())) - math.log(1 / alpha)
    shares, bad, x = errors.shares.tolist(), errors.bad.tolist(), errors.canary_bad

    def curve(u: float) -> tuple[float, float, float]:
        """log L(e^u) - level, its slope and its curvature in u."""
        rho = math.exp(u)
        value, slope, curvature = x * u - level, x, 0.0
        for w, e in zip(shares, bad, strict=True):
            theta = rho * w / (rho * w + 1.0 - w)
            value -= e * math.log(rho * w + 1.0 - w)
            slope -= e * theta
            curvature -= e * theta * (1.0 - theta)
        return value, slope, curvature

    best = _peak(curve, math.log(max(x, 0.5) / max(sum(bad) - x, 0.5)))
    lower = _end(curve, best, -1.0)
    upper = _end(curve, best, +1.0)
    if x >= sum(bad):
        estimate = math.inf
    elif x <= 0:
        estimate = 0.0
    else:
        estimate = math.exp(best)
    return RatioFit(
        estimate,
        0.0 if lower is None else math.exp(lower),
        math.inf if upper is None else math.exp(upper),
    )


_REACH = math.log(1e6)  # |log rho| beyond which a bound is shown as 0 or infinity
Curve = Callable[[float], tuple[float, float, float]]


def _peak(curve: Curve, u: float) -> float:
    """The maximum of a concave curve (clamped to +-_REACH), by damped Newton steps."""
    for _ in range(100):
        _, slope, curvature = curve(u)
        if curvature >= 0.0 or abs(slope) < 1e-12:
            break
        step = max(-2.0, min(2.0, -slope / curvature))
        u = max(-_REACH, min(_REACH, u + step))
        if abs(step) < 1e-10 or abs(u) >= _REACH:
            break
    return u


def _end(curve: Curve, peak: float, direction: float) -> float | None:
    """Where the concave curve crosses 0 on one side of its peak; None past _REACH."""
    if curve(direction * _REACH)[0] > 0.0:
        return None
    # Newton from the outside never overshoots a concave function's root.
    u = direction * _REACH
    for _ in range(200):
        value, slope, _ = curve(u)
        if slope == 0.0:
            break
        step = -value / slope
        u += step
        if abs(step) < 1e-10:
            break
    return u if direction * (u - peak) >= 0.0 else peak


def scaled(segments: Sequence[Segment], factor: float) -> list[Segment]:
    """The segments as if `factor` times as much traffic had come at the same rates."""
    return [
        Segment(
            s.canary_requests * factor,
            s.canary_bad * factor,
            s.stable_requests * factor,
            s.stable_bad * factor,
        )
        for s in segments
    ]
