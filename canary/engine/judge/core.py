"""The statistical canary-vs-stable judge: anytime-valid, pooled over the whole rollout.

Every comparison is a comparison of two rates of bad requests: errors, or requests
slower than a latency bound (a histogram bucket edge; see comparisons.py for where the
bound comes from). Each step of the rollout adds a Segment (both variants' requests and
bad requests at that step's traffic share), and one test runs over all of them, so the
evidence from 10% is not thrown away at 25% and the error budget is spent once per
rollout, not once per step. Looking after every interval costs nothing: every decision
comes from an e-value (judge_ratio, judge_mixture) checked against 1/alpha.

    Fail  the one-sided e-value against "canary rate <= tolerance x stable rate" reaches
          1/alpha (maxFalseRollback): P(ever Fail | canary within tolerance) <= alpha.
    Pass  a regression larger than the user accepts is ruled out, at level alpha_pass
          (maxFalsePromotion), after the canary served minRequests:
          P(ever Pass | canary worse than accepted) <= alpha_pass.
    Inconclusive  otherwise: the rollout holds where it is. Promotion is earned by
          evidence, never granted for the lack of it.

The accepted regression
-----------------------
A ratio R (the canary may have up to R times stable's rate) or an added rate d (up to d
more bad requests per request, shown per 100), or both; with both, a regression within
either is accepted and alpha_pass is split between the two tests (a false Pass needs one
of them to be wrong). The ratio test is pass_log_evidence. The added-rate test is
_added_log_evidence: every request of every step counts, whatever its share, against
the null "p_c >= p_s + d". On a low base rate it is the fast one: proving "at most +0.75
per 100" needs canary requests; proving a ratio needs errors.

Zero bad requests on both sides say nothing about a ratio (its interval is [0, inf]),
yet can prove an added rate: a quiet, healthy service is promoted on the added rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from canary.api.status import Verdict
from canary.engine.judge.mixture import BetaPrior, log_marginal, prior_around
from canary.engine.judge.ratio import (
    Segment,
    fail_log_evidence,
    pass_log_evidence,
    ratio_fit,
    scaled,
)

# The mixing prior for one variant's rate: three quarters of its mass on a Beta around 1%,
# where error rates and slow shares at a p99 edge usually are, a quarter around 20%, so
# that a service far from 1% still finds prior mass nearby (at log 4 nats, not dozens).
RATE_PRIOR: tuple[BetaPrior, ...] = (prior_around(0.01),) * 3 + (prior_around(0.2),)
_MAX_SCALE = 1000.0  # "would not settle" beyond this many times today's traffic


@dataclass(frozen=True)
class Accepted:
    """The largest regression the user accepts: a ratio, an added rate (0.0075 = 0.75 per
    100 requests), or both (either one suffices)."""

    ratio: float | None = None
    added: float | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.added is None:
            raise ValueError("an accepted regression needs a ratio, an added rate or both")

    def describe(self) -> str:
        parts = []
        if self.ratio is not None:
            parts.append(f"ratio {_num(self.ratio)}")
        if self.added is not None:
            parts.append(f"+{_per100(self.added)} per 100")
        return " or ".join(parts)


@dataclass(frozen=True)
class Judgement:
    """A verdict with its evidence.

    estimate: the canary/stable rate ratio (math.inf when only the canary has bad
    requests, None when neither has). lower/upper: its anytime-valid two-sided bounds,
    for explanations; upper is math.inf when the data cannot bound it yet. estimate,
    lower and upper are all None only when the inputs were unusable. against: the
    e-value against "within tolerance" (Fail at 1/alpha), None when unusable.
    """

    verdict: Verdict
    estimate: float | None
    lower: float | None
    upper: float | None
    reason: str
    against: float | None = None


def judge_rates(
    segments: Sequence[Segment],
    *,
    what: str,
    tolerance: float,
    accepted: Accepted,
    alpha: float,
    alpha_pass: float,
    min_requests: int,
    detail: str = "",
) -> Judgement:
    """Judge the pooled segments; `what` names the bad requests ("error-rate", "slow
    requests (>250ms)"), `detail` is extra context for the reason."""
    _check_parameters(tolerance, alpha, alpha_pass, min_requests)
    problem = next(filter(None, map(_segment_problem, segments)), None)
    if problem:
        return _unusable(f"{what}: {problem}")
    total = Segment(*(sum(getattr(s, f) for s in segments) for f in _FIELDS))
    if total.stable_requests <= 0:
        return _unusable(f"{what}: stable has no requests yet")
    if total.canary_requests <= 0:
        return _unusable(f"{what}: canary has no requests yet (needs {min_requests})")

    # The estimate and bounds come from the per-step likelihood, so that steps at
    # different shares (and a base rate that drifts between them) are weighed correctly.
    fit = ratio_fit(segments, alpha)
    estimate, lower, upper = fit.estimate, fit.lower, fit.upper
    facts = (
        f"{what}: canary {_pct(total.canary_bad, total.canary_requests)} vs stable "
        f"{_pct(total.stable_bad, total.stable_requests)}"
    )
    facts += f", ratio {_num(estimate)}" if estimate is not None else ", no bad requests yet"
    facts += f", {_level(alpha)} bounds [{_num(lower)}, {_num(upper)}]"
    if len(segments) > 1:
        facts += f" over {len(segments)} steps"
    if detail:
        facts += f"; {detail}"

    evidence = math.exp(min(fail_log_evidence(segments, tolerance), 700.0))
    if evidence >= 1.0 / alpha:
        why = (
            f"ratio above tolerance {_num(tolerance)} shown (evidence {_evidence(evidence)} "
            f"≥ {1 / alpha:.3g})"
        )
        return Judgement(Verdict.FAIL, estimate, lower, upper, f"{facts}; {why} (Fail)", evidence)
    if total.canary_requests < min_requests:
        why = f"canary has {_count(total.canary_requests)} of the {min_requests} requests needed"
        verdict = Verdict.INCONCLUSIVE
    elif (proof := _pass_proof(segments, accepted, alpha_pass)) is not None:
        why = f"a regression beyond {accepted.describe()} is ruled out ({proof})"
        verdict = Verdict.PASS
    else:
        more = _more_needed(segments, accepted, alpha_pass)
        why = f"not yet shown within {accepted.describe()}: {more}"
        verdict = Verdict.INCONCLUSIVE
    reason = f"{facts}; {why} ({verdict})"
    return Judgement(verdict, estimate, lower, upper, reason, evidence)


# ---------------------------------------------------------------- earning a Pass


def _pass_proof(segments: Sequence[Segment], accepted: Accepted, alpha: float) -> str | None:
    """What rules out a regression beyond `accepted`, or None while nothing does."""
    tests = (accepted.ratio is not None) + (accepted.added is not None)
    alpha = alpha / tests
    needed = math.log(1.0 / alpha)
    ratio, added = accepted.ratio, accepted.added
    if ratio is not None and pass_log_evidence(segments, ratio) >= needed:
        return f"ratio < {_num(ratio)}"
    if added is not None and segments and _added_log_evidence(segments[-1], added) >= needed:
        return f"canary adds less than +{_per100(added)} per 100"
    return None


def _added_log_evidence(segment: Segment, added: float) -> float:
    """log e-value against "the canary adds at least `added` bad requests per request",
    from one step's counts.

    Universal inference (Wasserman, Ramdas & Balakrishnan, PNAS 2020): the mixture
    likelihood of both variants' rates (RATE_PRIOR) over the largest likelihood the null
    reaches. The mixture over the true likelihood is a test martingale and the null's
    maximum is at least the true likelihood, so this is an e-process for the whole null;
    stable's own uncertainty is paid once, through the profile over p_s.

    It reads the current step only. Pooling steps of different canary shares would let
    a base rate that drifts between them fake a small difference (canary requests pile up
    in the later steps); maximising the null step by step instead costs about a nat per
    extra step. The earlier steps are the short, small ones, and promotion is about the
    canary at the weight it is promoted from.
    """
    mixture = log_marginal(segment.canary_bad, segment.canary_requests, RATE_PRIOR)
    mixture += log_marginal(segment.stable_bad, segment.stable_requests, RATE_PRIOR)
    return mixture - _null_max(segment, added)


def _null_max(segment: Segment, added: float) -> float:
    """The largest log-likelihood of one step's counts with p_c >= p_s + added."""
    k_c, n_c = segment.canary_bad, segment.canary_requests
    k_s, n_s = segment.stable_bad, segment.stable_requests
    if n_c <= 0 or n_s <= 0 or k_c * n_s - k_s * n_c >= added * n_c * n_s:
        # The best fit lies in the null (or one side is free to take any rate): its
        # likelihood is the null's largest.
        best_c = _log_lik(k_c / n_c, k_c, n_c) if n_c > 0 else 0.0
        best_s = _log_lik(k_s / n_s, k_s, n_s) if n_s > 0 else 0.0
        return best_c + best_s

    def slope(p: float) -> float:
        return _d_log_lik(p + added, k_c, n_c) + _d_log_lik(p, k_s, n_s)

    # Otherwise the maximum is on the line p_c = p_s + added, where the log-likelihood is
    # concave in p = p_s: bisect its slope.
    low, high = 0.0, 1.0 - added
    if slope(low) <= 0.0:
        best = low
    elif slope(high) >= 0.0:
        best = high
    else:
        for _ in range(60):  # 2^-60 of the range: below a double's resolution of p
            middle = 0.5 * (low + high)
            low, high = (middle, high) if slope(middle) > 0.0 else (low, middle)
        best = 0.5 * (low + high)
    return _log_lik(best + added, k_c, n_c) + _log_lik(best, k_s, n_s)


def _log_lik(p: float, k: float, n: float) -> float:
    if p <= 0.0:
        return 0.0 if k <= 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k >= n else -math.inf
    return k * math.log(p) + (n - k) * math.log1p(-p)


def _d_log_lik(p: float, k: float, n: float) -> float:
    if p <= 0.0:
        return math.inf if k > 0 else -(n - k)
    if p >= 1.0:
        return -math.inf if n > k else k
    return k / p - (n - k) / (1.0 - p)


def _more_needed(segments: Sequence[Segment], accepted: Accepted, alpha: float) -> str:
    """Roughly how many more canary requests would earn a Pass if the rates held: more
    traffic arrives in the current step, so that step is scaled up."""
    *before, current = segments

    def passes(factor: float) -> bool:
        return _pass_proof([*before, *scaled([current], factor)], accepted, alpha) is not None

    if current.canary_requests <= 0 or not passes(_MAX_SCALE):
        return "at the rates seen so far it would not be"
    low, high = 1.0, _MAX_SCALE
    while high / low > 1.05:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if passes(middle) else (middle, high)
    more = (high - 1.0) * current.canary_requests
    return f"about {_round_up(more)} more canary requests at these rates"


# ---------------------------------------------------------------- shared helpers

_FIELDS = ("canary_requests", "canary_bad", "stable_requests", "stable_bad")


def _unusable(reason: str) -> Judgement:
    return Judgement(Verdict.INCONCLUSIVE, None, None, None, f"{reason} (Inconclusive)")


def _check_parameters(tolerance: float, alpha: float, alpha_pass: float, min_requests: int) -> None:
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance}")
    for name, value in (("alpha", alpha), ("alpha_pass", alpha_pass)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value}")
    if min_requests < 0:
        raise ValueError(f"min_requests must not be negative, got {min_requests}")


def _segment_problem(segment: Segment) -> str | None:
    for variant in ("canary", "stable"):
        requests = float(getattr(segment, f"{variant}_requests"))
        bad = float(getattr(segment, f"{variant}_bad"))
        if math.isnan(requests) or math.isnan(bad):
            return f"{variant} counts are NaN (no data or a broken query)"
        if math.isinf(requests) or math.isinf(bad):
            return f"{variant} counts are infinite"
        if requests < 0 or bad < 0:
            return f"{variant} counts are negative (a counter reset?)"
        if bad > requests:
            return (
                f"{variant} reports more bad requests ({_count(bad)}) than requests "
                f"({_count(requests)}); check the queries"
            )
    return None


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):.10g}%"


def _num(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.3g}"


def _evidence(e_value: float) -> str:
    return f"{e_value:.3g}" if e_value < 1e6 else "over a million"


def _per100(rate: float) -> str:
    return f"{100 * rate:.2g}"


def _count(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def _round_up(x: float) -> str:
    """A rough count, shown to two significant figures."""
    if x < 100:
        return str(max(10, math.ceil(x / 10) * 10))
    digits = 10 ** (int(math.log10(x)) - 1)
    return f"{math.ceil(x / digits) * digits:,}"


def _pct(bad: float, requests: float) -> str:
    return f"{100 * bad / requests:.3g}% ({_count(bad)}/{_count(requests)})"
