"""The statistical judge (judge_rates): validity and power by seeded simulation, then units.

Simulations follow the controller through a whole rollout: a step plan of changing
canary share (10% for 3 looks, 25% for 3, then 50%), 20 requests/s, a look every 10 s,
60 looks (10 minutes). Each step keeps its own Segment (counts since the step started),
and after every look judge_rates sees all the segments so far, exactly as verdicts.py
hands them over. Traffic is drawn with numpy: Poisson arrivals per interval, each request
routed to the canary with the step's share and bad with its variant's rate. Seeds make
every figure reproducible; nothing is timed.

Decision rules and their claims (alpha = maxFalseRollback, alpha_pass = maxFalsePromotion):

- Fail: P(ever Fail | canary rate <= tolerance x stable rate) <= alpha, over all looks
  and all steps pooled; checked A/A and at the tolerance itself.
- Pass: P(ever Pass | canary worse than the accepted regression) <= alpha_pass, checked
  at the accepted added rate and at the accepted ratio.
- Power: a 10x and a 3x regression are rolled back within a minute or a few; a good
  canary is promoted within the 10 minutes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.api.status import Verdict
from canary.engine.judge import core as judge
from canary.engine.judge.core import RATE_PRIOR, Accepted, Judgement, judge_rates
from canary.engine.judge.histogram import HistogramError, parse
from canary.engine.judge.mixture import (
    log_marginal,
    prior_around,
)
from canary.engine.judge.ratio import (
    Segment,
    fail_log_evidence,
    pass_log_evidence,
    ratio_fit,
    scaled,
)
from canary.engine.samples import Buckets

pytestmark = pytest.mark.unit


def ratio_interval(segments: Sequence[Segment], alpha: float) -> tuple[float, float]:
    fit = ratio_fit(segments, alpha)
    return fit.lower, fit.upper


INF = math.inf
ALPHA = 0.05  # maxFalseRollback in the simulations
ALPHA_PASS = 0.05  # maxFalsePromotion
MARGIN = 0.01  # Monte Carlo slack allowed on top of alpha
TOLERANCE = 1.25
ADDED = 0.0075  # the accepted added rate: 0.75 per 100 requests
NO_FAIL = 1e3  # a tolerance that keeps Fail (checked first) from hiding a Pass

INTERVAL = 10  # seconds between looks
LOOKS = 60  # 10 minutes
RPS = 20
PLAN = ((0.10, 3), (0.25, 3), (0.50, LOOKS - 6))  # (canary share, looks) per step
NEVER = 10**12  # min_requests that no simulated canary reaches: only Fail is decided
GOOD_ENOUGH = Accepted(added=ADDED)  # the accepted regression unless a test says otherwise


# ---------------------------------------------------------------- simulation helpers


@dataclass(frozen=True)
class Outcome:
    """Per run, the look (1-based) of the first Fail and of the first Pass, None if never."""

    first_fail: list[int | None]
    first_pass: list[int | None]

    @property
    def runs(self) -> int:
        return len(self.first_fail)

    def rate(self, verdict: Verdict, within: int = LOOKS) -> float:
        looks = self.first_fail if verdict is Verdict.FAIL else self.first_pass
        return sum(t is not None and t <= within for t in looks) / self.runs

    def median_seconds(self, verdict: Verdict) -> float:
        """Median time to the verdict, counting runs that never reached it as infinite."""
        looks = self.first_fail if verdict is Verdict.FAIL else self.first_pass
        return float(np.median([INF if t is None else t * INTERVAL for t in looks]))

    def describe(self) -> str:
        return (
            f"{self.runs} runs: Fail {self.rate(Verdict.FAIL):.1%} "
            f"(median {self.median_seconds(Verdict.FAIL):g} s), "
            f"Pass {self.rate(Verdict.PASS):.1%} "
            f"(median {self.median_seconds(Verdict.PASS):g} s)"
        )


def _shares(looks: int) -> np.ndarray:
    return np.repeat([share for share, _ in PLAN], [n for _, n in PLAN])[:looks]


def _steps(looks: int) -> list[tuple[int, int]]:
    """[first, last] look index of each step within the first `looks` looks."""
    out, first = [], 0
    for _, n in PLAN:
        if first >= looks:
            break
        out.append((first, min(first + n, looks) - 1))
        first += n
    return out


def rollout_traffic(
    rng: np.random.Generator, runs: int, p_canary: float, p_stable: float, looks: int
) -> np.ndarray:
    """Counts since each step started, after every look: shape (runs, looks, 4), the last
    axis (canary requests, canary bad, stable requests, stable bad) like a Segment."""
    total = rng.poisson(RPS * INTERVAL, size=(runs, looks))
    canary = rng.binomial(total, _shares(looks))
    stable = total - canary
    per_look = np.stack(
        [canary, rng.binomial(canary, p_canary), stable, rng.binomial(stable, p_stable)], axis=-1
    )
    since_start = per_look.cumsum(axis=1)
    since_step = since_start.copy()
    for first, last in _steps(looks)[1:]:
        since_step[:, first : last + 1] -= since_start[:, first - 1 : first]
    return since_step.astype(float)


def segments_per_look(counts: np.ndarray) -> Iterator[list[Segment]]:
    """For one run's (looks, 4) counts, the segments judge_rates sees after each look."""
    rows = counts.tolist()
    finished: list[Segment] = []
    for first, last in _steps(len(rows)):
        for t in range(first, last + 1):
            yield [*finished, Segment(*rows[t])]
        finished.append(Segment(*rows[last]))


def simulate(
    *,
    seed: int,
    runs: int,
    p_canary: float,
    p_stable: float,
    accepted: Accepted = GOOD_ENOUGH,
    tolerance: float = TOLERANCE,
    min_requests: int = 100,
    looks: int = LOOKS,
    until: Sequence[Verdict] = (Verdict.FAIL, Verdict.PASS),
) -> Outcome:
    """Judge every look of `runs` rollouts; a run ends at the first verdict in `until`."""
    rng = np.random.default_rng(seed)
    traffic = rollout_traffic(rng, runs, p_canary, p_stable, looks)
    first_fail: list[int | None] = []
    first_pass: list[int | None] = []
    for counts in traffic:
        fail = ok = None
        for t, segments in enumerate(segments_per_look(counts), start=1):
            verdict = judge_rates(
                segments,
                what="error-rate",
                tolerance=tolerance,
                accepted=accepted,
                alpha=ALPHA,
                alpha_pass=ALPHA_PASS,
                min_requests=min_requests,
            ).verdict
            if verdict is Verdict.FAIL and fail is None:
                fail = t
            if verdict is Verdict.PASS and ok is None:
                ok = t
            if verdict in until:
                break
        first_fail.append(fail)
        first_pass.append(ok)
    return Outcome(first_fail, first_pass)


@pytest.fixture
def quick_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the "how many more requests" estimate, which only words an Inconclusive reason
    (it reruns the Pass test a dozen times) and never changes a verdict."""
    monkeypatch.setattr(judge, "_more_needed", lambda *args: "(skipped in simulation)")


# ---------------------------------------------------------------- validity: Fail


@pytest.mark.parametrize(
    ("p_stable", "ratio", "seed"),
    [(0.005, 1.0, 11), (0.02, 1.0, 12), (0.005, TOLERANCE, 13), (0.02, TOLERANCE, 14)],
    ids=["A/A-0.5%", "A/A-2%", "at-tolerance-0.5%", "at-tolerance-2%"],
)
def test_false_rollbacks_stay_below_alpha_over_all_looks_and_steps(
    p_stable: float, ratio: float, seed: int
) -> None:
    """A canary within the tolerance, judged after all 60 looks of the 10/25/50% plan with
    every step pooled, is ever rolled back in at most alpha of the rollouts.

    min_requests is out of reach so that no Pass ends a run early: after a Pass the
    controller keeps judging, and a later Fail would still roll back.
    """
    out = simulate(
        seed=seed,
        runs=250,
        p_canary=ratio * p_stable,
        p_stable=p_stable,
        min_requests=NEVER,
        until=(Verdict.FAIL,),
    )
    assert out.rate(Verdict.FAIL) <= ALPHA + MARGIN, out.describe()


# ---------------------------------------------------------------- validity: Pass


@pytest.mark.usefixtures("quick_reasons")
@pytest.mark.parametrize(
    ("p_stable", "p_canary", "accepted", "seed"),
    [
        (0.005, 0.005 + ADDED, Accepted(added=ADDED), 21),
        (0.02, 2 * 0.02, Accepted(ratio=2.0), 22),
    ],
    ids=["at-accepted-added-0.5%", "at-accepted-ratio-2%"],
)
def test_false_promotions_stay_below_alpha_pass_over_all_looks(
    p_stable: float, p_canary: float, accepted: Accepted, seed: int
) -> None:
    """A canary exactly as bad as the accepted regression (the hardest case of "worse than
    accepted") ever reaches Pass in at most alpha_pass of the rollouts.

    judge_rates decides Fail first, and at tolerance 1.25 these canaries would mostly Fail
    (2.5x and 2x stable), which hides the Pass rule; a tolerance of 1000 keeps Fail out
    of the way so that every look really tests the Pass rule, and a run ends only at Pass.
    """
    out = simulate(
        seed=seed,
        runs=250,
        p_canary=p_canary,
        p_stable=p_stable,
        accepted=accepted,
        tolerance=NO_FAIL,
        until=(Verdict.PASS,),
    )
    assert out.rate(Verdict.PASS) <= ALPHA_PASS + MARGIN, out.describe()


# ---------------------------------------------------------------- power


def test_a_10x_regression_is_rolled_back_within_a_minute() -> None:
    """0.5% -> 5% errors: a canary error every 10 s or so during the 10% step."""
    out = simulate(seed=31, runs=200, p_canary=0.05, p_stable=0.005, until=(Verdict.FAIL,))
    assert out.rate(Verdict.FAIL) >= 0.99, out.describe()
    assert out.median_seconds(Verdict.FAIL) <= 60, out.describe()
    assert out.rate(Verdict.FAIL, within=12) >= 0.95, out.describe()  # 2 minutes


@pytest.mark.parametrize(
    ("p_stable", "within", "share", "median"),
    [(0.02, 30, 0.95, 120), (0.005, LOOKS, 0.85, 300)],
    ids=["2%-to-6%", "0.5%-to-1.5%"],
)
def test_a_3x_regression_is_rolled_back_within_minutes(
    p_stable: float, within: int, share: float, median: float
) -> None:
    """3x stable's rate: at 2% (6% on the canary) within 5 minutes; at 0.5% the canary
    shows a quarter as many errors and needs most of the 10 minutes."""
    out = simulate(
        seed=32, runs=200, p_canary=3 * p_stable, p_stable=p_stable, until=(Verdict.FAIL,)
    )
    assert out.rate(Verdict.FAIL, within=within) >= share, out.describe()
    assert out.median_seconds(Verdict.FAIL) <= median, out.describe()


@pytest.mark.usefixtures("quick_reasons")
def test_a_good_canary_is_promoted_within_ten_minutes() -> None:
    """A/A at 0.5% errors, accepted +0.75 per 100: the added-rate bound earns the Pass;
    a ratio bound could not, with a few dozen errors."""
    out = simulate(seed=33, runs=200, p_canary=0.005, p_stable=0.005)
    assert out.rate(Verdict.PASS) >= 0.9, out.describe()
    assert out.median_seconds(Verdict.PASS) <= 6 * 60, out.describe()
    assert out.rate(Verdict.FAIL) <= ALPHA + MARGIN, out.describe()


@pytest.mark.usefixtures("quick_reasons")
@pytest.mark.parametrize(
    ("p_stable", "p_canary"),
    [
        pytest.param(0.005, 0.05, id="10x-0.5%"),
        pytest.param(0.02, 0.06, id="3x-2%"),
    ],
)
def test_a_gross_regression_is_never_promoted_before_it_is_caught(
    p_stable: float, p_canary: float
) -> None:
    """A canary adding 4 or more bad requests per 100 (accepted: 0.75) must not Pass."""
    out = simulate(seed=7, runs=200, p_canary=p_canary, p_stable=p_stable)
    assert out.rate(Verdict.PASS) == 0.0, out.describe()


# ---------------------------------------------------------------- judge_rates units


def rates(segments: Sequence[Segment], **kw: object) -> Judgement:
    params: dict[str, object] = {
        "what": "error-rate",
        "tolerance": TOLERANCE,
        "accepted": GOOD_ENOUGH,
        "alpha": ALPHA,
        "alpha_pass": ALPHA_PASS,
        "min_requests": 100,
    } | kw
    return judge_rates(segments, **params)  # type: ignore[arg-type]


def one(canary: tuple[float, float], stable: tuple[float, float], **kw: object) -> Judgement:
    """One step: (requests, bad) per variant."""
    return rates([Segment(canary[0], canary[1], stable[0], stable[1])], **kw)


def test_against_is_the_fail_e_value() -> None:
    """Judgement.against is the e-value the Fail rule compares with 1/alpha."""
    for canary_bad in (0, 5, 10, 20, 40):
        segments = [Segment(1000, canary_bad, 9000, 45), Segment(2000, canary_bad, 2000, 10)]
        j = rates(segments)
        assert j.against is not None
        assert j.against == pytest.approx(math.exp(fail_log_evidence(segments, TOLERANCE)))
        assert (j.verdict is Verdict.FAIL) == (j.against >= 1 / ALPHA)
    assert one((10, 20), (9000, 90)).against is None  # unusable


def test_zero_bad_requests_never_fail_and_say_nothing_about_the_ratio() -> None:
    for n in (10.0, 500.0, 1e6):
        j = one((n, 0), (9 * n, 0), accepted=Accepted(ratio=1.5))
        assert j.verdict is Verdict.INCONCLUSIVE
        assert (j.estimate, j.lower, j.upper) == (None, 0.0, INF)
        assert "no bad requests yet" in j.reason
    assert fail_log_evidence([Segment(1e6, 0, 9e6, 0)], TOLERANCE) == 0.0


def test_zero_bad_requests_pass_on_the_added_rate_once_there_are_enough() -> None:
    """A quiet, healthy service: no ratio can be shown, an added rate can."""
    few = one((500, 0), (4500, 0))
    assert few.verdict is Verdict.INCONCLUSIVE
    assert "more canary requests" in few.reason
    many = one((5000, 0), (45000, 0))
    assert many.verdict is Verdict.PASS
    assert "canary adds less than +0.75 per 100" in many.reason
    assert many.reason.endswith("(Pass)")


@pytest.mark.parametrize(
    ("segment", "needle"),
    [
        (Segment(10, 20, 9000, 90), "canary reports more bad requests (20) than requests (10)"),
        (Segment(1000, 10, 9000, 9001), "stable reports more bad requests"),
        (Segment(math.nan, 1, 9000, 90), "canary counts are NaN"),
        (Segment(1000, 10, 9000, math.nan), "stable counts are NaN"),
        (Segment(-5, 0, 9000, 90), "canary counts are negative"),
        (Segment(1000, 10, 9000, -1), "stable counts are negative"),
        (Segment(1000, INF, 9000, 90), "canary counts are infinite"),
    ],
)
def test_unusable_counts_are_inconclusive_with_a_reason(segment: Segment, needle: str) -> None:
    good = Segment(1000, 5, 9000, 45)
    for segments in ([segment], [good, segment], [segment, good]):  # any step spoils it
        j = rates(segments)
        assert j.verdict is Verdict.INCONCLUSIVE
        assert (j.estimate, j.lower, j.upper) == (None, None, None)
        assert j.reason.startswith("error-rate: ") and needle in j.reason
        assert j.reason.endswith("(Inconclusive)")


def test_no_requests_on_either_side_is_inconclusive() -> None:
    canary = one((0, 0), (9000, 90))
    assert canary.verdict is Verdict.INCONCLUSIVE and canary.estimate is None
    assert "canary has no requests yet (needs 100)" in canary.reason
    stable = one((1000, 10), (0, 0))
    assert stable.verdict is Verdict.INCONCLUSIVE and stable.estimate is None
    assert "stable has no requests yet" in stable.reason
    nothing = rates([])
    assert nothing.verdict is Verdict.INCONCLUSIVE and nothing.estimate is None


def test_a_step_without_canary_traffic_adds_nothing_to_the_ratio() -> None:
    """Every bad request of a step served by one side belongs to that side whatever the
    ratio is, so the step cannot move the ratio's evidence."""
    steps = [Segment(600, 12, 5400, 27), Segment(1500, 15, 1500, 8)]
    idle = Segment(0, 0, 6000, 30)
    for f in (fail_log_evidence, pass_log_evidence):
        assert f([idle, *steps], 1.5) == f(steps, 1.5)
    assert ratio_interval([idle, *steps], ALPHA) == ratio_interval(steps, ALPHA)


def test_min_requests_gates_pass_but_not_fail() -> None:
    damning = one((50, 25), (450, 2), min_requests=100)
    assert damning.verdict is Verdict.FAIL  # 50 canary requests are enough to roll back
    good = ((5000, 25), (45000, 225))
    assert one(*good, min_requests=5000).verdict is Verdict.PASS
    gated = one(*good, min_requests=5001)
    assert gated.verdict is Verdict.INCONCLUSIVE
    assert "canary has 5000 of the 5001 requests needed" in gated.reason
    assert gated.estimate == pytest.approx(1.0) and gated.lower is not None  # still reported


def test_pooled_counts_reach_min_requests_across_steps() -> None:
    steps = [Segment(2000, 10, 18000, 90), Segment(3000, 15, 27000, 135)]
    assert rates(steps, min_requests=5000).verdict is Verdict.PASS
    assert rates(steps[1:], min_requests=5000).verdict is Verdict.INCONCLUSIVE


def test_fail_reason_carries_rates_ratio_bounds_and_evidence() -> None:
    j = one((1800, 87), (16200, 81))
    assert j.verdict is Verdict.FAIL
    assert j.estimate is not None and j.lower is not None and j.upper is not None
    assert j.lower < j.estimate < j.upper
    for text in (
        "error-rate: canary 4.83% (87/1800) vs stable 0.5% (81/16200)",
        f"ratio {j.estimate:.3g}",
        f"95% bounds [{j.lower:.3g}, {j.upper:.3g}]",
        "ratio above tolerance 1.25 shown (evidence ",
        "≥ 20)",
    ):
        assert text in j.reason
    assert "steps" not in j.reason  # one step: nothing pooled
    assert j.reason.endswith("(Fail)")


def test_pooled_reason_says_over_how_many_steps_and_keeps_the_detail() -> None:
    steps = [Segment(200, 2, 1800, 9), Segment(500, 3, 1500, 8), Segment(900, 4, 900, 5)]
    j = rates(steps, detail="p99 in this step: canary 180ms vs stable 170ms")
    assert "canary 0.562% (9/1600) vs stable 0.524% (22/4200)" in j.reason
    assert "over 3 steps; p99 in this step: canary 180ms vs stable 170ms;" in j.reason
    assert j.reason.endswith("(Inconclusive)")


def test_pass_reason_names_the_bound_that_earned_it() -> None:
    ratio_pass = one((20000, 0), (180000, 400), accepted=Accepted(ratio=1.25))
    assert ratio_pass.verdict is Verdict.PASS
    assert (ratio_pass.estimate, ratio_pass.lower) == (0.0, 0.0)
    assert "a regression beyond ratio 1.25 is ruled out (ratio < 1.25) (Pass)" in ratio_pass.reason
    both = one((5000, 25), (45000, 225), accepted=Accepted(ratio=1.5, added=ADDED))
    assert both.verdict is Verdict.PASS
    assert "beyond ratio 1.5 or +0.75 per 100 is ruled out" in both.reason


def test_canary_errors_while_stable_has_none_fail_with_an_infinite_estimate() -> None:
    j = one((2000, 60), (18000, 0))
    assert j.verdict is Verdict.FAIL
    assert j.estimate == INF and j.upper == INF
    assert j.lower is not None and j.lower > TOLERANCE
    assert "ratio ∞" in j.reason


def test_fractional_counts_from_prometheus_extrapolation_work() -> None:
    j = one((1234.56, 12.3), (11111.1, 110.9))
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "12.3/1234.6" in j.reason


MORE = r"about ([\d,]+) more canary requests at these rates \(Inconclusive\)$"


@pytest.mark.parametrize(
    ("canary", "stable", "accepted"),
    [
        ((1000, 0), (9000, 0), Accepted(added=ADDED)),
        ((1234.56, 12.3), (11111.1, 110.9), Accepted(added=ADDED)),
        ((5000, 25), (45000, 225), Accepted(ratio=1.5)),
        ((2000, 20), (2000, 20), Accepted(ratio=1.5, added=0.002)),
    ],
)
def test_inconclusive_reason_says_roughly_how_many_more_requests(
    canary: tuple[float, float], stable: tuple[float, float], accepted: Accepted
) -> None:
    """The estimate is the traffic at which the same rates would Pass: 10% more than it
    says passes, half of it does not."""
    j = one(canary, stable, accepted=accepted)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert f"not yet shown within {accepted.describe()}: " in j.reason
    found = re.search(MORE, j.reason)
    assert found, j.reason
    more = float(found.group(1).replace(",", ""))
    segments = [Segment(canary[0], canary[1], stable[0], stable[1])]

    def after(extra: float) -> Verdict:
        return rates(scaled(segments, 1 + extra / canary[0]), accepted=accepted).verdict

    assert after(1.1 * more) is Verdict.PASS
    assert after(0.5 * more) is Verdict.INCONCLUSIVE


def test_inconclusive_reason_says_when_no_traffic_would_earn_a_pass() -> None:
    """Observed ratio 2 against an accepted 1.5 (and a tolerance of 3, so no Fail)."""
    j = one((5000, 50), (45000, 225), accepted=Accepted(ratio=1.5), tolerance=3.0)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "not yet shown within ratio 1.5: at the rates seen so far it would not be" in j.reason


def test_alpha_pass_is_split_when_both_bounds_are_accepted() -> None:
    """Ratio evidence between log 20 and log 40: enough alone, not when shared with an
    added-rate bound that contributes nothing."""
    segment = Segment(1000, 140, 1000, 140)
    assert math.log(20) < pass_log_evidence([segment], 1.5) < math.log(40)
    assert rates([segment], accepted=Accepted(ratio=1.5)).verdict is Verdict.PASS
    both = rates([segment], accepted=Accepted(ratio=1.5, added=0.001))
    assert both.verdict is Verdict.INCONCLUSIVE


def test_verdict_follows_the_e_values() -> None:
    """Fail exactly when the Fail e-value reaches 1/alpha; else Pass exactly when the ratio
    e-value reaches 1/alpha_pass (a ratio-only accepted regression)."""
    for canary_bad in range(0, 120, 3):
        segments = [Segment(1000, canary_bad // 3, 9000, 45), Segment(4000, canary_bad, 4000, 20)]
        for tolerance in (1.0, 1.25, 2.0, 5.0):
            j = rates(segments, tolerance=tolerance, accepted=Accepted(ratio=tolerance))
            if fail_log_evidence(segments, tolerance) >= math.log(1 / ALPHA):
                expected = Verdict.FAIL
            elif pass_log_evidence(segments, tolerance) >= math.log(1 / ALPHA_PASS):
                expected = Verdict.PASS
            else:
                expected = Verdict.INCONCLUSIVE
            assert j.verdict is expected, (canary_bad, tolerance, j.reason)


@pytest.mark.parametrize(
    "kw",
    [
        {"tolerance": 0.0},
        {"tolerance": -1.0},
        {"tolerance": math.nan},
        {"tolerance": INF},
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha_pass": 0.0},
        {"alpha_pass": 1.5},
        {"min_requests": -1},
    ],
)
def test_bad_parameters_are_programming_errors(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        one((1000, 10), (9000, 90), **kw)


def test_an_accepted_regression_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        Accepted()
    assert Accepted(ratio=1.5).describe() == "ratio 1.5"
    assert Accepted(added=ADDED).describe() == "+0.75 per 100"
    assert Accepted(ratio=2, added=0.01).describe() == "ratio 2 or +1 per 100"


# ---------------------------------------------------------------- the added-rate Pass is one-sided


@pytest.mark.parametrize(
    "segments",
    [
        # canary 12% vs stable 10%: +2 per 100, within tolerance 1.25 so it never Fails
        [Segment(25000, 3000, 225000, 22500)],
        # a 3x regression (6.5% vs 1.8%) from the 3x-2% simulation, look 10, before Fail
        [Segment(50, 2, 539, 5), Segment(155, 8, 425, 10), Segment(409, 30, 381, 9)],
    ],
    ids=["12%-vs-10%", "3x-regression"],
)
def test_the_added_rate_pass_is_one_sided(segments: list[Segment]) -> None:
    """A canary that adds far more than the accepted 0.75 per 100 must not Pass as "adds
    less than +0.75 per 100": data far above the line p_c = p_s + d are evidence for the
    null, not against it."""
    j = rates(segments)
    assert j.verdict is not Verdict.PASS, j.reason


def test_more_traffic_cannot_prove_an_added_rate_the_canary_exceeds() -> None:
    j = one((5000, 600), (45000, 4500))  # +2 per 100 against an accepted 0.75
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "would not be" in j.reason, j.reason


# ---------------------------------------------------------------- the ratio e-values


def _segments() -> st.SearchStrategy[list[Segment]]:
    def segment(draw: st.DrawFn) -> Segment:
        canary = draw(st.integers(0, 5000))
        stable = draw(st.integers(0, 20000))
        return Segment(
            canary,
            draw(st.integers(0, min(canary, 300))),
            stable,
            draw(st.integers(0, min(stable, 300))),
        )

    return st.lists(st.composite(segment)(), min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    segments=_segments(),
    which=st.integers(0, 2),
    extra=st.integers(1, 50),
    tolerance=st.floats(1.0, 5.0),
)
def test_more_canary_bad_requests_never_lower_the_fail_evidence(
    segments: list[Segment], which: int, extra: int, tolerance: float
) -> None:
    i = which % len(segments)
    s = segments[i]
    worse = [*segments]
    worse[i] = Segment(s.canary_requests, s.canary_bad + extra, s.stable_requests, s.stable_bad)
    assert fail_log_evidence(worse, tolerance) >= fail_log_evidence(segments, tolerance) - 1e-9
    assert pass_log_evidence(worse, tolerance) <= pass_log_evidence(segments, tolerance) + 1e-9
    better = [*segments]
    better[i] = Segment(s.canary_requests, s.canary_bad, s.stable_requests, s.stable_bad + extra)
    assert fail_log_evidence(better, tolerance) <= fail_log_evidence(segments, tolerance) + 1e-9


@settings(max_examples=150, deadline=None)
@given(
    canary=st.integers(1, 20000),
    stable=st.integers(1, 200000),
    canary_bad=st.integers(0, 1000),
    stable_bad=st.integers(0, 1000),
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_ratio_interval_brackets_the_estimate(
    canary: int, stable: int, canary_bad: int, stable_bad: int, alpha: float
) -> None:
    canary_bad, stable_bad = min(canary_bad, canary), min(stable_bad, stable)
    lower, upper = ratio_interval([Segment(canary, canary_bad, stable, stable_bad)], alpha)
    assert 0.0 <= lower <= upper
    if canary_bad == stable_bad == 0:
        assert (lower, upper) == (0.0, INF)
        return
    estimate = INF if stable_bad == 0 else (canary_bad / canary) / (stable_bad / stable)
    assert lower <= estimate * (1 + 1e-9)
    assert estimate <= upper * (1 + 1e-9)


def test_ratio_interval_narrows_with_data_and_widens_with_confidence() -> None:
    small = ratio_interval([Segment(1000, 10, 9000, 90)], ALPHA)
    big = ratio_interval([Segment(10000, 100, 90000, 900)], ALPHA)
    strict = ratio_interval([Segment(10000, 100, 90000, 900)], 0.001)
    assert small[0] < big[0] < 1.0 < big[1] < small[1]
    assert strict[0] <= big[0] and big[1] <= strict[1]


@pytest.mark.parametrize("n", [2e5, 1e6])
def test_ratio_interval_brackets_the_estimate_with_much_data(n: float) -> None:
    """Canary 11% vs stable 10%: the interval should hug 1.1, not collapse to a grid point
    (1.12, 1.12) or to nothing (0, inf)."""
    lower, upper = ratio_interval([Segment(n, 0.11 * n, 9 * n, 0.9 * n)], ALPHA)
    assert lower <= 1.1 <= upper and upper < 1.2


def test_scaled_multiplies_every_count() -> None:
    assert scaled([Segment(1, 2, 3, 4), Segment(0, 0, 5, 0)], 2.5) == [
        Segment(2.5, 5, 7.5, 10),
        Segment(0, 0, 12.5, 0),
    ]


# ---------------------------------------------------------------- judge_mixture


def test_rate_prior_is_a_mixture_around_one_and_twenty_percent() -> None:
    means = sorted({p.a / (p.a + p.b) for p in RATE_PRIOR})
    assert means == pytest.approx([0.01, 0.2])
    assert log_marginal(0, 0, RATE_PRIOR) == pytest.approx(0.0)


def test_log_marginal_is_the_beta_binomial_integral() -> None:
    prior = prior_around(0.01)  # Beta(1, 99)
    # ∫ p^k (1-p)^(n-k) dBeta(1, 99) = B(1 + k, 99 + n - k) / B(1, 99)
    k, n = 3.0, 200.0
    expected = (
        math.lgamma(1 + k) + math.lgamma(99 + n - k) - math.lgamma(100 + n)
        - (math.lgamma(1) + math.lgamma(99) - math.lgamma(100))
    )  # fmt: skip
    assert log_marginal(k, n, prior) == pytest.approx(expected, rel=1e-12)
    # an equal mixture averages the marginals
    mixed = log_marginal(k, n, (prior, prior_around(0.2)))
    one, two = log_marginal(k, n, prior), log_marginal(k, n, prior_around(0.2))
    assert mixed == pytest.approx(math.log((math.exp(one) + math.exp(two)) / 2), rel=1e-12)


def test_prior_around_rejects_a_center_outside_zero_one() -> None:
    for center in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            prior_around(center)
    prior = prior_around(0.9)
    assert prior.a / (prior.a + prior.b) == pytest.approx(0.9) and prior.b == pytest.approx(1.0)


# ---------------------------------------------------------------- judge_histogram

STABLE: Buckets = ((0.1, 8000), (0.25, 9950), (0.5, 9999), (1.0, 10000), (INF, 10000))


def test_interpolation_matches_histogram_quantile() -> None:
    h = parse(STABLE)
    # rank 9900 lies in (0.1, 0.25], which holds requests 8000..9950.
    assert h.quantile(0.99) == pytest.approx(0.1 + 0.15 * 1900 / 1950)
    assert h.quantile(0.5) == pytest.approx(0.1 * 5000 / 8000)  # first bucket starts at 0
    assert h.total == 10000 and not h.beyond_last_bound(0.99)
    beyond = parse(((0.1, 10), (1.0, 50), (INF, 100)))
    assert beyond.quantile(0.99) == 1.0 and beyond.beyond_last_bound(0.99)


def test_non_monotone_buckets_are_repaired_like_prometheus() -> None:
    wobbly: Buckets = ((0.1, 8000), (0.25, 7999.5), (0.5, 9999), (1.0, 10000), (INF, 10000))
    assert parse(wobbly).cumulative == (8000, 8000, 9999, 10000, 10000)


@pytest.mark.parametrize(
    ("buckets", "needle"),
    [
        (((0.1, 5), (0.5, 10)), "le=+Inf"),
        (((INF, 10),), "at least one finite bucket"),
        (((0.5, 5), (0.1, 8), (INF, 10)), "strictly ascending"),
        (((0.1, math.nan), (INF, 10)), "NaN"),
        (((0.1, -1), (INF, 10)), "negative"),
        (((0.1, INF), (INF, 10)), "infinite"),
        (((math.nan, 1), (INF, 10)), "finite"),
    ],
)
def test_unusable_histograms_raise(buckets: Buckets, needle: str) -> None:
    with pytest.raises(HistogramError, match=re.escape(needle)):
        parse(buckets)


def test_a_base_rate_that_drifts_between_steps_cannot_fake_a_pass() -> None:
    # The canary adds exactly the accepted +0.75 per 100 in both steps (the null), while
    # stable's rate falls from 5% to 1% as the canary's share grows: pooled, the canary
    # would look better than stable.
    n = 20000
    segments = [
        Segment(0.1 * n, 0.1 * n * 0.0575, 0.9 * n, 0.9 * n * 0.05),
        Segment(0.5 * n, 0.5 * n * 0.0175, 0.5 * n, 0.5 * n * 0.01),
    ]
    j = rates(segments)
    assert j.verdict is not Verdict.PASS, j.reason
    assert j.estimate is not None and j.estimate > 1  # the per-step estimate, not pooled
