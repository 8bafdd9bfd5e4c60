"""The statistical judge: validity and power by seeded simulation, then edge cases.

Simulations follow the controller: cumulative counts since the step started, judged
after every 30 s interval for 30 minutes (60 looks), acting on the first Fail. Nothing
is timed; seeds make every number reproducible. Run with -s to see the measured rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.engine.judge import Judgement, judge_error_rate, judge_latency
from canary.engine.judge_histogram import parse
from canary.engine.judge_mixture import count_bounds, log_evidence, prior_around
from canary.engine.samples import Buckets, Counts
from canary.models import Verdict

pytestmark = pytest.mark.unit

INTERVAL = 30  # seconds between looks
LOOKS = 60  # 30 minutes
ALPHA = 0.01
MARGIN = 0.01  # allowed Monte Carlo slack on top of alpha for false-Fail rates

INF = math.inf
# Prometheus client default buckets: coarse (2-2.5x apart), the common worst case.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Exponential buckets 1.4x apart, as latency-sensitive services configure them.
FINE_BUCKETS = tuple(round(0.005 * 1.4**i, 6) for i in range(24))


# ---------------------------------------------------------------- simulation helpers


@dataclass(frozen=True)
class Run:
    first_fail: float | None  # seconds into the step
    first_pass: float | None


@dataclass(frozen=True)
class Summary:
    runs: list[Run]

    @property
    def fail_rate(self) -> float:
        return sum(r.first_fail is not None for r in self.runs) / len(self.runs)

    @property
    def pass_rate(self) -> float:
        return sum(r.first_pass is not None for r in self.runs) / len(self.runs)

    def median_minutes(self, attr: str) -> float | None:
        times = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return float(np.median(times)) / 60 if times else None

    def describe(self) -> str:
        return (
            f"Fail {self.fail_rate:.1%} (median {self.median_minutes('first_fail')} min), "
            f"Pass {self.pass_rate:.1%} (median {self.median_minutes('first_pass')} min), "
            f"{len(self.runs)} runs"
        )


def _first_verdicts(judgements: list[Judgement]) -> Run:
    fail = next((i for i, j in enumerate(judgements) if j.verdict is Verdict.FAIL), None)
    ok = next((i for i, j in enumerate(judgements) if j.verdict is Verdict.PASS), None)
    return Run(
        first_fail=None if fail is None else (fail + 1) * INTERVAL,
        first_pass=None if ok is None else (ok + 1) * INTERVAL,
    )


def _split_traffic(
    rng: np.random.Generator, runs: int, rps: float, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Requests per interval for each run: Poisson arrivals, each routed independently."""
    total = rng.poisson(rps * INTERVAL, size=(runs, LOOKS))
    canary = rng.binomial(total, weight)
    return canary, total - canary


def simulate_error_rate(
    *,
    seed: int,
    runs: int,
    rps: float,
    weight: float,
    p_canary: float,
    p_stable: float,
    tolerance: float,
    min_requests: int = 100,
) -> Summary:
    """Independent requests, routed to the canary with probability `weight`."""
    rng = np.random.default_rng(seed)
    canary_n, stable_n = _split_traffic(rng, runs, rps, weight)
    canary_e = rng.binomial(canary_n, p_canary).cumsum(axis=1)
    stable_e = rng.binomial(stable_n, p_stable).cumsum(axis=1)
    columns = (canary_n.cumsum(axis=1), canary_e, stable_n.cumsum(axis=1), stable_e)
    out = []
    for cn, ce, sn, se in zip(*(c.astype(float).tolist() for c in columns), strict=True):
        judgements: list[Judgement] = []
        for t in range(LOOKS):
            j = judge_error_rate(
                Counts(cn[t], ce[t]),
                Counts(sn[t], se[t]),
                tolerance=tolerance,
                alpha=ALPHA,
                min_requests=min_requests,
            )
            judgements.append(j)
            if j.verdict is Verdict.FAIL:
                break  # the controller rolls back
        out.append(_first_verdicts(judgements))
    return Summary(out)


def _histograms(
    rng: np.random.Generator, per_look: np.ndarray, slowdown: float, bounds: tuple[float, ...]
) -> np.ndarray:
    """Cumulative bucket counts after each look: shape (looks, buckets + 1), +Inf last.

    Latencies are log-normal, median 50 ms, sigma 0.6 (p99 about 200 ms), times `slowdown`.
    """
    latencies = slowdown * 0.05 * np.exp(0.6 * rng.standard_normal(int(per_look.sum())))
    look = np.repeat(np.arange(LOOKS), per_look)
    bucket = np.searchsorted(np.asarray(bounds), latencies, side="left")  # le semantics
    width = len(bounds) + 1
    counts = np.bincount(look * width + bucket, minlength=LOOKS * width).reshape(LOOKS, width)
    return counts.cumsum(axis=0).cumsum(axis=1).astype(float)


def simulate_latency(
    *,
    seed: int,
    runs: int,
    rps: float,
    weight: float,
    slowdown: float,
    tolerance: float,
    bounds: tuple[float, ...] = DEFAULT_BUCKETS,
    quantile: float = 0.99,
    min_requests: int = 100,
) -> Summary:
    rng = np.random.default_rng(seed)
    canary_n, stable_n = _split_traffic(rng, runs, rps, weight)
    les = (*bounds, INF)
    out = []
    for r in range(runs):
        canary_h = _histograms(rng, canary_n[r], slowdown, bounds)
        stable_h = _histograms(rng, stable_n[r], 1.0, bounds)
        judgements: list[Judgement] = []
        for t in range(LOOKS):
            j = judge_latency(
                tuple(zip(les, canary_h[t].tolist(), strict=True)),
                tuple(zip(les, stable_h[t].tolist(), strict=True)),
                quantile=quantile,
                tolerance=tolerance,
                alpha=ALPHA,
                min_requests=min_requests,
            )
            judgements.append(j)
            if j.verdict is Verdict.FAIL:
                break
        out.append(_first_verdicts(judgements))
    return Summary(out)


# ---------------------------------------------------------------- validity (A/A)


@pytest.mark.parametrize("tolerance", [1.0, 1.2])
def test_error_rate_aa_rarely_fails_despite_a_look_every_interval(tolerance: float) -> None:
    """1,000 A/A runs: 1% errors on both, 10 rps, 10% canary weight, 60 looks."""
    s = simulate_error_rate(
        seed=11, runs=1000, rps=10, weight=0.1, p_canary=0.01, p_stable=0.01, tolerance=tolerance
    )
    print(f"\nerror-rate A/A, tolerance {tolerance}: {s.describe()}")
    assert s.fail_rate <= ALPHA + MARGIN, s.describe()


@pytest.mark.parametrize(
    ("weight", "p_stable"),
    [(0.1, 0.01), (0.1, 0.10), (0.5, 0.02)],
    ids=["1pct-errors", "10pct-errors", "half-traffic"],
)
def test_error_rate_at_the_tolerance_boundary_rarely_fails(weight: float, p_stable: float) -> None:
    """The hardest null: the canary is exactly `tolerance` times worse (1.2x)."""
    s = simulate_error_rate(
        seed=12,
        runs=200,
        rps=10,
        weight=weight,
        p_canary=1.2 * p_stable,
        p_stable=p_stable,
        tolerance=1.2,
    )
    print(f"\nerror-rate at the boundary, w={weight} p={p_stable}: {s.describe()}")
    assert s.fail_rate <= ALPHA + MARGIN, s.describe()


@pytest.mark.parametrize(
    ("bounds", "quantile"),
    [(DEFAULT_BUCKETS, 0.99), (FINE_BUCKETS, 0.99), (FINE_BUCKETS, 0.5)],
    ids=["p99-default-buckets", "p99-fine-buckets", "p50-fine-buckets"],
)
def test_latency_aa_rarely_fails(bounds: tuple[float, ...], quantile: float) -> None:
    s = simulate_latency(
        seed=13,
        runs=100,
        rps=10,
        weight=0.1,
        slowdown=1.0,
        tolerance=0.1,
        bounds=bounds,
        quantile=quantile,
    )
    print(f"\nlatency A/A p{quantile * 100:g}: {s.describe()}")
    assert s.fail_rate <= ALPHA + 2 * MARGIN, s.describe()  # 100 runs: wider slack


# ---------------------------------------------------------------- power


def test_error_rate_5x_regression_is_caught_within_minutes() -> None:
    """Stable 1%, canary 5%, 10 rps, 10% weight (1 canary request/s), tolerance 1.2."""
    s = simulate_error_rate(
        seed=21, runs=300, rps=10, weight=0.1, p_canary=0.05, p_stable=0.01, tolerance=1.2
    )
    print(f"\nerror-rate 5x regression: {s.describe()}")
    assert s.fail_rate >= 0.9, s.describe()
    assert s.pass_rate == 0.0, s.describe()
    median = s.median_minutes("first_fail")
    assert median is not None and median <= 10, s.describe()


def test_error_rate_good_canary_reaches_pass_with_a_loose_tolerance() -> None:
    """Equal 1% error rates, 20 rps, 20% weight, tolerance 2: most runs prove it."""
    s = simulate_error_rate(
        seed=22, runs=200, rps=20, weight=0.2, p_canary=0.01, p_stable=0.01, tolerance=2.0
    )
    print(f"\nerror-rate good canary, tolerance 2: {s.describe()}")
    assert s.fail_rate == 0.0, s.describe()
    assert s.pass_rate >= 0.9, s.describe()


@pytest.mark.parametrize(
    ("bounds", "slowdown", "rps", "weight"),
    [
        (FINE_BUCKETS, 1.5, 10, 0.1),
        (DEFAULT_BUCKETS, 1.5, 20, 0.2),
        (DEFAULT_BUCKETS, 2.0, 10, 0.1),
    ],
    ids=["p99+50%-fine-buckets", "p99+50%-default-buckets-4rps", "p99x2-default-buckets"],
)
def test_latency_regression_is_caught(
    bounds: tuple[float, ...], slowdown: float, rps: float, weight: float
) -> None:
    """Canary latencies `slowdown` times the stable's; tolerance +10% on p99."""
    s = simulate_latency(
        seed=23, runs=100, rps=rps, weight=weight, slowdown=slowdown, tolerance=0.1, bounds=bounds
    )
    print(f"\nlatency x{slowdown}, {rps * weight:g} canary rps: {s.describe()}")
    assert s.fail_rate >= 0.9, s.describe()
    assert s.pass_rate == 0.0, s.describe()


def test_latency_good_canary_passes_or_stays_non_fail() -> None:
    s = simulate_latency(seed=24, runs=60, rps=10, weight=0.1, slowdown=1.0, tolerance=0.5)
    print(f"\nlatency good canary, tolerance +50%: {s.describe()}")
    assert s.fail_rate == 0.0, s.describe()
    assert s.pass_rate >= 0.5, s.describe()


# ---------------------------------------------------------------- error-rate edge cases


def er(canary: tuple[float, float], stable: tuple[float, float], **kw: float) -> Judgement:
    params = {"tolerance": 1.2, "alpha": ALPHA, "min_requests": 100} | kw
    return judge_error_rate(
        Counts(*canary),
        Counts(*stable),
        tolerance=params["tolerance"],
        alpha=params["alpha"],
        min_requests=int(params["min_requests"]),
    )


@pytest.mark.parametrize("requests", [500.0, 5e6])
def test_zero_errors_on_both_sides_is_inconclusive(requests: float) -> None:
    j = er((requests, 0), (9 * requests, 0))
    assert j.verdict is Verdict.INCONCLUSIVE
    assert (j.estimate, j.lower, j.upper) == (None, 0.0, INF)
    assert "no errors on either side" in j.reason


def test_canary_errors_while_stable_has_none_fails() -> None:
    j = er((2000, 60), (18000, 0))
    assert j.verdict is Verdict.FAIL
    assert j.estimate == INF and j.lower is not None and j.lower > 1.2 and j.upper == INF


def test_clean_canary_against_erroring_stable_passes() -> None:
    j = er((20000, 0), (180000, 400))
    assert j.verdict is Verdict.PASS
    assert j.estimate == 0.0 and j.lower == 0.0 and j.upper is not None and j.upper <= 1.2


@pytest.mark.parametrize(
    ("canary", "stable", "needle"),
    [
        ((1000, 10), (0, 0), "stable has no requests"),
        ((0, 0), (9000, 90), "canary has no requests"),
        ((math.nan, 1), (9000, 90), "canary counts are NaN"),
        ((1000, 10), (9000, math.nan), "stable counts are NaN"),
        ((-5, 0), (9000, 90), "negative"),
        ((1000, 10), (9000, -1), "negative"),
        ((1000, math.inf), (9000, 90), "infinite"),
        ((10, 20), (9000, 90), "more errors (20) than requests (10)"),
    ],
)
def test_unusable_counts_are_inconclusive_with_a_reason(
    canary: tuple[float, float], stable: tuple[float, float], needle: str
) -> None:
    j = er(canary, stable)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert (j.estimate, j.lower, j.upper) == (None, None, None)
    assert needle in j.reason and j.reason.startswith("error-rate:")


def test_min_requests_gate_holds_back_even_damning_evidence() -> None:
    before = er((99, 50), (9000, 90))
    assert before.verdict is Verdict.INCONCLUSIVE
    assert "canary has 99 of the 100 requests needed" in before.reason
    assert before.lower is not None and before.lower > 1.2  # the evidence is still reported
    after = er((100, 50), (9000, 90))
    assert after.verdict is Verdict.FAIL


def test_reason_carries_estimate_bounds_and_verdict() -> None:
    j = er((1800, 87), (16200, 81))
    assert j.verdict is Verdict.FAIL
    assert j.estimate is not None and j.lower is not None and j.upper is not None
    assert j.lower < j.estimate < j.upper
    for text in ("4.83% (87/1800)", "0.5% (81/16200)", f"ratio {j.estimate:.3g}"):
        assert text in j.reason
    assert f"99% bounds [{j.lower:.3g}, {j.upper:.3g}]" in j.reason
    assert j.reason.endswith("exceeds tolerance 1.2 (Fail)")


def test_verdict_follows_the_bounds() -> None:
    """Fail iff lower > tolerance, Pass iff upper <= tolerance, for a sweep of inputs."""
    for canary_errors in range(0, 120, 3):
        for tolerance in (0.5, 1.0, 1.2, 2.0, 5.0):
            j = er((5000, canary_errors), (45000, 450), tolerance=tolerance)
            assert j.lower is not None and j.upper is not None
            expected = (
                Verdict.FAIL
                if j.lower > tolerance
                else Verdict.PASS
                if j.upper <= tolerance
                else Verdict.INCONCLUSIVE
            )
            assert j.verdict is expected


def test_bounds_are_where_the_e_value_crosses_one_over_alpha() -> None:
    """The reported interval is exactly the inverted mixture test, mapped to the ratio."""
    canary, stable = (3000.0, 45.0), (27000.0, 270.0)
    j = er(canary, stable)
    assert j.lower is not None and j.upper is not None
    share = canary[0] / (canary[0] + stable[0])
    prior = prior_around(share)
    for ratio in (j.lower, j.upper):
        theta = ratio * share / (ratio * share + 1 - share)
        e = log_evidence(theta, canary[1], canary[1] + stable[1], prior)
        assert e == pytest.approx(math.log(1 / ALPHA), abs=1e-6)


def test_more_canary_errors_never_lower_the_bounds() -> None:
    lowers: list[float] = []
    uppers: list[float] = []
    for errors in range(0, 200, 5):
        j = er((2000, errors), (18000, 180))
        assert j.lower is not None and j.upper is not None
        lowers.append(j.lower)
        uppers.append(j.upper)
    assert lowers == sorted(lowers) and uppers == sorted(uppers)


def test_fractional_counts_from_prometheus_extrapolation_work() -> None:
    j = er((1234.56, 12.3), (11111.1, 110.9))
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "12.3/1234.6" in j.reason  # fractional counts shown with one decimal


@pytest.mark.parametrize(
    "kw",
    [{"alpha": 0.0}, {"alpha": 1.0}, {"tolerance": 0.0}, {"tolerance": math.nan}],
)
def test_bad_parameters_are_programming_errors(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        er((1000, 10), (9000, 90), **kw)


@settings(max_examples=150, deadline=None)
@given(
    canary_n=st.floats(0, 1e7),
    canary_frac=st.floats(0, 1),
    stable_n=st.floats(0, 1e8),
    stable_frac=st.floats(0, 1),
    tolerance=st.floats(0.05, 20),
    alpha=st.sampled_from([0.001, 0.01, 0.05, 0.2]),
)
def test_error_rate_never_crashes_and_bounds_bracket_the_estimate(
    canary_n: float,
    canary_frac: float,
    stable_n: float,
    stable_frac: float,
    tolerance: float,
    alpha: float,
) -> None:
    j = er(
        (canary_n, canary_n * canary_frac),
        (stable_n, stable_n * stable_frac),
        tolerance=tolerance,
        alpha=alpha,
        min_requests=1,
    )
    assert isinstance(j.verdict, Verdict) and j.reason
    if j.lower is not None and j.upper is not None:
        assert 0.0 <= j.lower <= j.upper
        if j.estimate is not None:
            assert j.lower <= j.estimate * (1 + 1e-9) and j.estimate <= j.upper * (1 + 1e-9)


# ---------------------------------------------------------------- latency edge cases


def hist(*pairs: tuple[float, float]) -> Buckets:
    return tuple(pairs)


def lat(canary: Buckets, stable: Buckets, **kw: float) -> Judgement:
    params = {"quantile": 0.99, "tolerance": 0.1, "alpha": ALPHA, "min_requests": 100} | kw
    return judge_latency(
        canary,
        stable,
        quantile=params["quantile"],
        tolerance=params["tolerance"],
        alpha=params["alpha"],
        min_requests=int(params["min_requests"]),
    )


STABLE = hist((0.1, 8000), (0.25, 9950), (0.5, 9999), (1.0, 10000), (INF, 10000))


def test_interpolation_matches_histogram_quantile() -> None:
    h = parse(STABLE)
    # rank 9900 lies in (0.1, 0.25], which holds requests 8000..9950.
    assert h.quantile(0.99) == pytest.approx(0.1 + 0.15 * 1900 / 1950)
    assert h.quantile(0.5) == pytest.approx(0.1 * 5000 / 8000)  # first bucket starts at 0
    beyond = parse(hist((0.1, 10), (1.0, 50), (INF, 100)))
    assert beyond.quantile(0.99) == 1.0 and beyond.beyond_last_bound(0.99)


def test_latency_regression_fails_with_reason() -> None:
    canary = hist((0.1, 500), (0.25, 900), (0.5, 960), (1.0, 1000), (INF, 1000))
    j = lat(canary, STABLE)
    assert j.verdict is Verdict.FAIL
    assert j.estimate is not None and j.lower is not None and j.upper is not None
    assert 0.1 < j.lower < j.estimate < j.upper
    assert j.reason.startswith("latency p99: canary ")
    assert f"{100 * j.estimate:+.3g}%, 99% bounds [{100 * j.lower:+.3g}%" in j.reason
    assert j.reason.endswith("exceeds tolerance +10% (Fail)")


def test_latency_reason_speaks_the_histograms_unit() -> None:
    seconds = lat(hist((0.1, 500), (0.25, 900), (0.5, 960), (1.0, 1000), (INF, 1000)), STABLE)
    in_ms = tuple((le * 1000, c) for le, c in STABLE)
    canary_ms = hist((100, 500), (250, 900), (500, 960), (1000, 1000), (INF, 1000))
    millis = judge_latency(canary_ms, in_ms, quantile=0.99, tolerance=0.1, alpha=0.01,
                           min_requests=100, unit="ms")
    assert millis.verdict is seconds.verdict
    assert millis.reason == seconds.reason  # same latencies, same words: "…ms vs …ms"


def test_latency_same_distribution_with_plenty_of_data_passes() -> None:
    big = tuple((le, 100 * c) for le, c in STABLE)
    j = lat(big, tuple((le, 9 * c) for le, c in big))
    assert j.verdict is Verdict.PASS
    assert j.upper is not None and j.upper <= 0.1 and j.estimate == pytest.approx(0.0)


def test_latency_canary_in_the_inf_bucket_fails_and_says_so() -> None:
    canary = hist((0.1, 100), (0.25, 200), (0.5, 300), (1.0, 400), (INF, 1000))
    j = lat(canary, STABLE)
    assert j.verdict is Verdict.FAIL
    assert "≥1s (+Inf bucket)" in j.reason


def test_latency_with_different_bucket_layouts() -> None:
    canary = hist((0.05, 300), (0.2, 985), (0.3, 995), (0.8, 1000), (INF, 1000))
    j = lat(canary, STABLE, tolerance=0.5)
    assert j.verdict is not Verdict.FAIL and j.estimate is not None


def test_latency_min_requests_gate_and_no_stable_data() -> None:
    small = hist((0.1, 10), (0.25, 50), (INF, 50))
    gated = lat(small, STABLE)
    assert gated.verdict is Verdict.INCONCLUSIVE
    assert "canary has 50 of the 100 requests needed" in gated.reason
    empty = lat(STABLE, hist((0.1, 0), (INF, 0)))
    assert empty.verdict is Verdict.INCONCLUSIVE and "stable has no requests" in empty.reason


def test_non_monotone_buckets_are_repaired_like_prometheus() -> None:
    wobbly = hist((0.1, 8000), (0.25, 7999.5), (0.5, 9999), (1.0, 10000), (INF, 10000))
    assert parse(wobbly).cumulative == (8000, 8000, 9999, 10000, 10000)
    assert lat(wobbly, STABLE).estimate is not None


@pytest.mark.parametrize(
    ("canary", "needle"),
    [
        (hist((0.1, 5), (0.5, 10)), "le=+Inf"),
        (
            hist(
                (INF, 10),
            ),
            "at least one finite bucket",
        ),
        (hist((0.5, 5), (0.1, 8), (INF, 10)), "strictly ascending"),
        (hist((0.1, math.nan), (INF, 10)), "NaN"),
        (hist((0.1, -1), (INF, 10)), "negative"),
        (hist((math.nan, 1), (INF, 10)), "finite"),
    ],
)
def test_unusable_histograms_are_inconclusive(canary: Buckets, needle: str) -> None:
    j = lat(canary, STABLE)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert (j.estimate, j.lower, j.upper) == (None, None, None)
    assert "canary histogram unusable" in j.reason and needle in j.reason


def test_count_bounds_are_where_the_e_value_crosses_one_over_alpha() -> None:
    prior = prior_around(0.99)
    lo, hi = count_bounds(0.99, 5000.0, prior, 0.005)
    assert 0 < lo < 4950 < hi < 5000
    for k in (lo, hi):
        assert log_evidence(0.99, k, 5000.0, prior) == pytest.approx(math.log(200), abs=1e-6)
    # 10 requests can show the p99 is above x (few below it), never that it is below.
    assert count_bounds(0.99, 10.0, prior, 0.005)[1] == INF
    assert count_bounds(0.99, 1.0, prior, 0.005) == (-INF, INF)


@settings(max_examples=100, deadline=None)
@given(
    canary=st.lists(st.floats(0, 1e6), min_size=1, max_size=8),
    stable=st.lists(st.floats(0, 1e7), min_size=1, max_size=8),
    quantile=st.sampled_from([0.5, 0.9, 0.99, 0.999]),
    tolerance=st.floats(0.01, 5),
)
def test_latency_never_crashes_and_bounds_bracket_the_estimate(
    canary: list[float], stable: list[float], quantile: float, tolerance: float
) -> None:
    """Arbitrary per-bucket counts (cumulated here), each variant with its own layout."""

    def cumulative(counts: list[float], first: float) -> Buckets:
        les = [first * 2.5**i for i in range(len(counts) - 1)] + [INF]
        return tuple(zip(les, np.cumsum(counts).tolist(), strict=True))

    j = lat(
        cumulative(canary, 0.01),
        cumulative(stable, 0.02),
        quantile=quantile,
        tolerance=tolerance,
        min_requests=1,
    )
    assert isinstance(j.verdict, Verdict) and j.reason
    if j.estimate is not None:
        assert j.lower is not None and j.upper is not None
        assert -1.0 <= j.lower <= j.estimate + 1e-9 and j.estimate <= j.upper + 1e-9
