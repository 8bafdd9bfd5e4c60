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
- ratio_interval: the two-sided confidence sequence {rho0 : e-value(rho0) < 1/alpha}
  with a log-uniform mixture over [1/30, 30], for explanations only.

The mixtures are discrete grids: a discrete mixing distribution is as valid as a
continuous one, so the grid costs a little power and nothing in validity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPAN = 30.0  # how far from their anchor the one-sided mixtures reach
_ONE_SIDED = 40  # grid points of a one-sided mixture
_CANDIDATES = np.geomspace(1e-3, 1e3, 241)  # rho0 values the interval is read from
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


def ratio_interval(segments: Sequence[Segment], alpha: float) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence for rho; (0, inf) when nothing bounds it."""
    errors = _errors(segments)
    if not errors.bad.size or not errors.bad.any():
        return 0.0, math.inf
    mixture = errors.log_likelihood(_TWO_SIDED)
    top = float(mixture.max())
    log_mean = top + math.log(float(np.exp(mixture - top).mean()))
    inside = np.flatnonzero(log_mean - errors.log_likelihood(_CANDIDATES) < math.log(1 / alpha))
    if not inside.size:  # cannot happen (the mixture never beats the best fit); be safe
        return 0.0, math.inf
    first, last = int(inside[0]), int(inside[-1])
    lower = 0.0 if first == 0 else float(_CANDIDATES[first])
    upper = math.inf if last == len(_CANDIDATES) - 1 else float(_CANDIDATES[last])
    return lower, upper


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
