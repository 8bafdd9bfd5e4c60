"""The statistical canary-vs-stable judge: anytime-valid, so it may be asked every interval.

Fixed thresholds misfire at low traffic and miss regressions when set loose; fixed-sample
tests (Kayenta) inflate false alarms when looked at repeatedly. Both judges here are
built on one confidence sequence for a proportion (judge_mixture): it holds at every
look simultaneously with probability 1 - alpha, so checking it every 30 s and acting
on the first decisive answer keeps the error guarantee. In the spirit of Lindon, Sanden
& Shirikian (KDD 2022) and Lindon & Malek (NeurIPS 2022); the derivation is ours.

Verdicts read the confidence sequence for the regression measure r (error-rate ratio,
or relative quantile increase) against the tolerance:

    Fail  when the whole sequence lies above the tolerance (lower > tolerance):
          P(ever Fail | canary within tolerance) <= alpha, the false-rollback rate;
    Pass  when it lies at or below (upper <= tolerance): a regression larger than the
          tolerance is ruled out, P(ever Pass | canary worse) <= alpha;
    Inconclusive otherwise, before min_requests, or when the data cannot be used.

Error rate
----------
Every request is independently routed to the canary with probability w (the traffic
split, fixed within a step) and fails with probability p_c or p_s. So each *error*,
whichever variant it came from, is a canary error with probability

    theta = rho w / (rho w + 1 - w),   rho = p_c / p_s,

independently of all other errors, with no Poisson approximation. The errors are a
Bernoulli(theta) sequence and X canary errors out of E is all that matters: stable's
own error rate (a nuisance) drops out. theta is increasing in rho, so the confidence
sequence for theta from the beta-binomial mixture maps one-to-one to one for rho
(rho = odds(theta) / odds(w)). w is estimated by n_c / (n_c + n_s): it is measured
on all requests, not just errors, so its noise is small beside the errors'; the A/A
and boundary (rho = tolerance) simulations in tests/unit/test_judge.py include it and
stay far below alpha. The prior is centred on theta at rho = 1. Zero errors on both
sides gives the whole range [0, inf]: a ratio cannot be bounded without errors.

Latency
-------
The hypothesis is about quantiles: is the canary's q-quantile more than (1 + t) times
the stable's? Each variant gets its own confidence sequence for its q-quantile, at
alpha/2. For a fixed latency x, the (interpolated) number of requests at or below x
is a sum of per-request amounts in [0, 1] with mean F(x), and the q-quantile exceeds
x exactly when F(x) < q: a proportion problem. count_bounds gives the totals
c_lo < n q < c_hi at which the mixture rejects F = q; the latency where the histogram's
cumulative count reaches c_lo is a lower bound for the quantile, where it reaches
c_hi an upper bound. Because the count below x never decreases as x grows, either
bound can only be wrong if the sequence for F at the true quantile itself is wrong,
so one alpha/2 covers every x and every look, with no union over buckets. Then

    lower = canary_lo / stable_hi - 1,    upper = canary_hi / stable_lo - 1,

and a false Fail (or false Pass) needs one of the two sequences to miss: at most
alpha/2 + alpha/2. A side with no rejecting total falls back to the histogram's own
limits (0, or the largest finite bucket bound): nothing is claimed that the data do not
show. Quantiles are histogram_quantile's (judge_histogram explains why), and the
estimate is histogram_quantile(canary) / histogram_quantile(stable) - 1. Unlike a
distribution test, this one ignores changes elsewhere in the distribution and accepts
different bucket layouts for the two variants.

What to expect (simulated; 30 s looks, alpha = 1%; see tests/unit/test_judge.py)
----------------------------------------------------------------------------------
Evidence comes from errors, not requests: at 10 rps with a 10% canary weight (1 canary
request/s) and 1% stable errors, a 5x error-rate regression Fails in a median 4.5 min
and a 3x one in about 13 min (tolerance 1.2), while a 2x one is caught within 30 min
only a fifth of the time. Proving a good canary (Pass) is slower still, because the
bounds must close under the tolerance: in 30 min that happens for most runs only with
tolerance 2 at 20 rps / 20% weight (median 10 min) or tolerance 3 at 10 rps / 10%.
A p99 that grows 50% Fails in a median 7 min with 4 canary requests/s, 19 min with
1/s and fine buckets; Prometheus' default 2.5x-wide buckets blur the tail further.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from canary.engine import judge_histogram
from canary.engine.judge_histogram import Histogram, HistogramError
from canary.engine.judge_mixture import count_bounds, prior_around, proportion_bounds
from canary.engine.samples import Buckets, Counts
from canary.models import Verdict


@dataclass(frozen=True)
class Judgement:
    """A verdict with its evidence.

    estimate: errorRate, the canary/stable error-rate ratio; latency, canary quantile /
    stable quantile - 1. lower/upper: the anytime-valid (1 - alpha) confidence-sequence
    bounds for it; upper is math.inf (and estimate may be) when the data cannot bound
    it yet. All three are None only when the inputs were unusable.
    """

    verdict: Verdict
    estimate: float | None
    lower: float | None
    upper: float | None
    reason: str


def judge_error_rate(
    canary: Counts, stable: Counts, *, tolerance: float, alpha: float, min_requests: int
) -> Judgement:
    """Is the canary's error rate more than `tolerance` times the stable's?"""
    _check_parameters(tolerance, alpha, min_requests)
    problem = _counts_problem("canary", canary) or _counts_problem("stable", stable)
    if problem:
        return _unusable(f"error-rate: {problem}")
    if stable.requests <= 0:
        return _unusable("error-rate: stable has no requests yet")
    if canary.requests <= 0:
        return _unusable(f"error-rate: canary has no requests yet (needs {min_requests})")

    level = _level(alpha)
    share = canary.requests / (canary.requests + stable.requests)
    if not 1e-9 < share < 1.0 - 1e-9:  # one side is a rounding error next to the other
        return _unusable("error-rate: the traffic split is too lopsided to compare")
    errors = canary.errors + stable.errors
    if errors > 0:
        theta_lo, theta_hi = proportion_bounds(canary.errors, errors, prior_around(share), alpha)
    else:
        theta_lo, theta_hi = 0.0, 1.0
    lower = _share_to_ratio(theta_lo, share)
    upper = _share_to_ratio(theta_hi, share)
    estimate = _ratio(canary.errors / canary.requests, stable.errors / stable.requests)

    facts = (
        f"error-rate: canary {_pct(canary.errors, canary.requests)} vs stable "
        f"{_pct(stable.errors, stable.requests)}"
    )
    if estimate is None:
        facts += ", no errors on either side yet so the ratio is unknown"
    else:
        facts += f", ratio {_num(estimate)}"
    facts += f", {level} bounds [{_num(lower)}, {_num(upper)}]"
    return _decide(
        facts,
        estimate,
        lower,
        upper,
        tolerance=tolerance,
        canary_requests=canary.requests,
        min_requests=min_requests,
        show=_num,
        name="ratio",
    )


def judge_latency(
    canary: Buckets,
    stable: Buckets,
    *,
    quantile: float,
    tolerance: float,
    alpha: float,
    min_requests: int,
    unit: str = "s",
) -> Judgement:
    """Is the canary's `quantile` latency more than (1 + tolerance) x the stable's?

    `unit` is that of the buckets' `le` bounds ("s" or "ms"); it only shapes the reason.
    """
    _check_parameters(tolerance, alpha, min_requests)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    label = f"latency p{100 * quantile:.10g}"
    try:
        canary_h = judge_histogram.parse(canary)
    except HistogramError as exc:
        return _unusable(f"{label}: canary histogram unusable: {exc}")
    try:
        stable_h = judge_histogram.parse(stable)
    except HistogramError as exc:
        return _unusable(f"{label}: stable histogram unusable: {exc}")
    if stable_h.total <= 0:
        return _unusable(f"{label}: stable has no requests yet")
    if canary_h.total <= 0:
        return _unusable(f"{label}: canary has no requests yet (needs {min_requests})")

    level = _level(alpha)
    c_lo, c_hi = _quantile_bounds(canary_h, quantile, alpha / 2)
    s_lo, s_hi = _quantile_bounds(stable_h, quantile, alpha / 2)
    c_q, s_q = canary_h.quantile(quantile), stable_h.quantile(quantile)
    lower = _relative(c_lo, s_hi)
    upper = _relative(c_hi, s_lo)
    estimate = _relative(c_q, s_q)

    facts = f"{label}: canary {_latency(c_q, canary_h, quantile, unit)} vs stable "
    facts += f"{_latency(s_q, stable_h, quantile, unit)}, "
    facts += f"{_signed(estimate)}, {level} bounds [{_signed(lower)}, {_signed(upper)}]"
    return _decide(
        facts,
        estimate,
        lower,
        upper,
        tolerance=tolerance,
        canary_requests=canary_h.total,
        min_requests=min_requests,
        show=_signed,
        name="increase",
    )


# ---------------------------------------------------------------- shared decision


def _decide(
    facts: str,
    estimate: float | None,
    lower: float,
    upper: float,
    *,
    tolerance: float,
    canary_requests: float,
    min_requests: int,
    show: Callable[[float], str],
    name: str,
) -> Judgement:
    if canary_requests < min_requests:
        verdict = Verdict.INCONCLUSIVE
        why = f"canary has {_count(canary_requests)} of the {min_requests} requests needed"
    elif lower > tolerance:
        verdict = Verdict.FAIL
        why = f"{name} ≥ {show(lower)} exceeds tolerance {show(tolerance)}"
    elif upper <= tolerance:
        verdict = Verdict.PASS
        why = f"{name} ≤ {show(upper)} is within tolerance {show(tolerance)}"
    else:
        verdict = Verdict.INCONCLUSIVE
        why = f"the bounds still straddle tolerance {show(tolerance)}, need more data"
    return Judgement(verdict, estimate, lower, upper, f"{facts}; {why} ({verdict})")


def _unusable(reason: str) -> Judgement:
    return Judgement(Verdict.INCONCLUSIVE, None, None, None, f"{reason} (Inconclusive)")


def _check_parameters(tolerance: float, alpha: float, min_requests: int) -> None:
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_requests < 0:
        raise ValueError(f"min_requests must not be negative, got {min_requests}")


def _counts_problem(variant: str, counts: Counts) -> str | None:
    requests, errors = float(counts.requests), float(counts.errors)
    if math.isnan(requests) or math.isnan(errors):
        return f"{variant} counts are NaN (no data or a broken query)"
    if math.isinf(requests) or math.isinf(errors):
        return f"{variant} counts are infinite"
    if requests < 0 or errors < 0:
        return f"{variant} counts are negative (a counter reset?)"
    if errors > requests:
        return (
            f"{variant} reports more errors ({_count(errors)}) than requests "
            f"({_count(requests)}); check the errors and requests queries"
        )
    return None


# ---------------------------------------------------------------- error-rate helpers


def _share_to_ratio(theta: float, share: float) -> float:
    """rho = odds(theta) / odds(share): the canary share of errors back to the rate ratio."""
    if theta <= 0.0:
        return 0.0
    if theta >= 1.0:
        return math.inf
    return (theta / (1.0 - theta)) * ((1.0 - share) / share)


def _ratio(canary_rate: float, stable_rate: float) -> float | None:
    if stable_rate > 0:
        return canary_rate / stable_rate
    return math.inf if canary_rate > 0 else None


# ---------------------------------------------------------------- latency helpers


def _quantile_bounds(h: Histogram, q: float, alpha: float) -> tuple[float, float]:
    """Confidence-sequence bounds for the histogram's q-quantile (see the module docstring).

    With no excluding rank on a side, the bound is the histogram's own limit: 0 below
    (or the first bound, if it is not positive), the largest finite bound above.
    """
    rank_lo, rank_hi = count_bounds(q, h.total, prior_around(q), alpha)
    lower = h.value_at_rank(max(rank_lo, 0.0))
    upper = h.bounds[-1] if math.isinf(rank_hi) else h.value_at_rank(rank_hi)
    return lower, upper


def _relative(canary_q: float, stable_q: float) -> float:
    if stable_q > 0:
        return canary_q / stable_q - 1.0
    return math.inf if canary_q > 0 else 0.0


# ---------------------------------------------------------------- formatting


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):.10g}%"


def _num(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.3g}"


def _signed(x: float) -> str:
    return "+∞" if math.isinf(x) else f"{100 * x:+.3g}%"


def _count(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def _pct(errors: float, requests: float) -> str:
    return f"{100 * errors / requests:.3g}% ({_count(errors)}/{_count(requests)})"


def _latency(value: float, h: Histogram, q: float, unit: str) -> str:
    seconds = value / 1000 if unit == "ms" else value
    text = f"{seconds * 1000:.3g}ms" if seconds < 1 else f"{seconds:.3g}s"
    return f"≥{text} (+Inf bucket)" if h.beyond_last_bound(q) else text
