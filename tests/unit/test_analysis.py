"""tasks.py and verdicts.py: which metrics are due, and evaluate() turning samples into verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import (
    BACKGROUND,
    STEPS,
    TEMPLATES,
    at,
    canary,
    comparison_metric,
    measured,
    rolling,
    settled,
    threshold_metric,
    ts,
)

from canary.api.analysis_template import ThresholdRange
from canary.api.canary import Arg, Canary, Step, StepAnalysis, TemplateRef
from canary.api.status import MetricStatus, Phase, Verdict
from canary.engine.judge import core as judge
from canary.engine.judge.core import Judgement
from canary.engine.limits import passed, usable
from canary.engine.samples import (
    BucketsSample,
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)
from canary.engine.tasks import due_tasks
from canary.engine.verdicts import evaluate

pytestmark = pytest.mark.unit

STEP1 = "step-1/error-rate"
BG = "background/latency"


def keys(c: Canary, seconds: float = 0) -> list[str]:
    return [t.key for t in due_tasks(c, TEMPLATES, at(seconds))]


# ---------------------------------------------------------------- due_tasks

DUE = [
    ("idle measures nothing", canary(settled(), analysis=BACKGROUND), []),
    ("background waits for canary traffic", canary(rolling(0, 0), analysis=BACKGROUND), []),
    ("background and inline", canary(rolling(1, 10), analysis=BACKGROUND), [BG, STEP1]),
    (
        "background not due within its interval",
        canary(rolling(3, 50, analysis=[measured(BG, 30)]), analysis=BACKGROUND),
        [],
    ),
    (
        "background due after its interval",
        canary(rolling(3, 50, analysis=[measured(BG, 60)]), analysis=BACKGROUND),
        [BG],
    ),
    (
        "inline stops at its count",
        canary(
            rolling(1, 10, analysis=[measured(STEP1, 300, measurements=1, verdict=Verdict.PASS)])
        ),
        [],
    ),
    (
        "inline at its count is measured again after a tolerated Fail",
        canary(
            rolling(
                1,
                10,
                analysis=[measured(STEP1, 300, measurements=1, failures=1, verdict=Verdict.FAIL)],
            )
        ),
        [STEP1],
    ),
    (
        "errors do not count towards count",
        canary(rolling(1, 10, analysis=[measured(STEP1, 30, consecutive_errors=1)])),
        [STEP1],
    ),
    (
        "a paused rollout keeps measuring",
        canary(rolling(3, 50, phase=Phase.PAUSED, reason="PausedByUser"), analysis=BACKGROUND),
        [BG],
    ),
    (
        "probes while metrics are unavailable",
        canary(rolling(3, 0, phase=Phase.PAUSED, reason="MetricsUnavailable"), analysis=BACKGROUND),
        [BG],
    ),
    (
        "promotion stops background analysis",
        canary(rolling(5, 50, phase=Phase.PROMOTING), analysis=BACKGROUND),
        [],
    ),
]


@pytest.mark.parametrize(("c", "expected"), [d[1:] for d in DUE], ids=[d[0] for d in DUE])
def test_due(c: Canary, expected: list[str]) -> None:
    assert keys(c) == expected


def test_inline_count_measures_at_each_interval() -> None:
    metric = threshold_metric(count=3)
    templates = {"error-rate": TEMPLATES["error-rate"].model_copy(update={"metrics": [metric]})}
    status = rolling(1, 10, analysis=[measured(STEP1, 29, measurements=1)])
    assert due_tasks(canary(status), templates, at()) == []
    assert [t.key for t in due_tasks(canary(status), templates, at(1))] == [STEP1]


def test_task_carries_merged_args_interval_and_window() -> None:
    c = canary(rolling(1, 10, step_started_at=ts(-600)), analysis=BACKGROUND)
    background, inline = due_tasks(c, TEMPLATES, at())
    assert background.metric.interval == "1m"  # spec.analysis.interval overrides the metric's
    assert background.args == {}
    assert inline.args == {"service": "checkout", "quantile": "0.99"}
    assert inline.window_seconds == 600


def test_step_analysis_sees_background_args_overridden_by_its_own() -> None:
    args = [Arg(name="service", value="cart"), Arg(name="quantile", value="0.5")]
    background = BACKGROUND.model_copy(update={"args": args})
    own = Step(
        analysis=StepAnalysis(
            templates=[TemplateRef(template_name="error-rate")],
            args=[Arg(name="quantile", value="0.9")],
        )
    )
    c = canary(rolling(1, 10), steps=[STEPS[0], own], analysis=background)
    inline = next(t for t in due_tasks(c, TEMPLATES, at()) if t.key == STEP1)
    assert inline.args == {"service": "cart", "quantile": "0.9"}


def test_first_measurement_comes_one_interval_into_the_step() -> None:
    c = canary(rolling(1, 10, step_started_at=ts()))
    assert due_tasks(c, TEMPLATES, at(29)) == []
    [task] = due_tasks(c, TEMPLATES, at(30))
    assert task.window_seconds == 30


def test_window_is_at_least_one_interval() -> None:
    c = canary(rolling(1, 10, step_started_at=ts(-10), analysis=[measured(STEP1, 30)]))
    [task] = due_tasks(c.model_copy(update={"spec": c.spec}), TEMPLATES, at())
    assert task.window_seconds == 30


def test_canary_args_override_template_defaults() -> None:
    args = [Arg(name="service", value="cart"), Arg(name="quantile", value="0.5")]
    step = Step(
        analysis=StepAnalysis(templates=[TemplateRef(template_name="error-rate")], args=args)
    )
    c = canary(rolling(0, 0), steps=[step])
    [task] = due_tasks(c, TEMPLATES, at())
    assert task.args == {"service": "cart", "quantile": "0.5"}


# ---------------------------------------------------------------- evaluate: thresholds

ERROR_RATE = MetricTask(STEP1, threshold_metric())
BAND = MetricTask("b", threshold_metric("ratio", threshold_range=ThresholdRange(min=0.1, max=0.9)))
FLOOR = MetricTask("f", threshold_metric("success", threshold_range=ThresholdRange(min=0.99)))

THRESHOLDS: list[tuple[str, MetricTask, Sample, dict[str, Any]]] = [
    (
        "inside the range passes",
        ERROR_RATE,
        ScalarSample(0.001),
        {
            "verdict": Verdict.PASS,
            "value": "0.001",
            "reason": "error-rate 0.001 within max 0.01",
            "measurements": 1,
        },
    ),
    (
        "above max fails",
        ERROR_RATE,
        ScalarSample(0.052),
        {
            "verdict": Verdict.FAIL,
            "reason": "error-rate 0.052 above max 0.01",
            "failures": 1,
            "measurements": 1,
        },
    ),
    (
        "below min fails",
        FLOOR,
        ScalarSample(0.95),
        {"verdict": Verdict.FAIL, "reason": "success 0.95 below min 0.99", "failures": 1},
    ),
    ("inside a band", BAND, ScalarSample(0.5), {"reason": "ratio 0.5 within [0.1, 0.9]"}),
    (
        "no data is inconclusive",
        ERROR_RATE,
        ScalarSample(None),
        {
            "verdict": Verdict.INCONCLUSIVE,
            "reason": "error-rate: no data",
            "inconclusives": 1,
            "measurements": 0,  # too little traffic never counts towards `count`
        },
    ),
    (
        "NaN is no data",
        ERROR_RATE,
        ScalarSample(float("nan")),
        {"verdict": Verdict.INCONCLUSIVE, "inconclusives": 1, "measurements": 0},
    ),
    (
        "provider failure is an error",
        ERROR_RATE,
        ProviderFailure("HTTP 503"),
        {
            "verdict": Verdict.ERROR,
            "reason": "error-rate: provider error: HTTP 503",
            "consecutive_errors": 1,
            "measurements": 0,
        },
    ),
    (
        "the wrong sample type is an error",
        ERROR_RATE,
        CountsSample(Counts(1, 0), Counts(1, 0)),
        {
            "verdict": Verdict.ERROR,
            "reason": "error-rate: provider returned CountsSample, which it cannot judge",
        },
    ),
]


@pytest.mark.parametrize(
    ("task", "sample", "expected"), [t[1:] for t in THRESHOLDS], ids=[t[0] for t in THRESHOLDS]
)
def test_evaluate_threshold(task: MetricTask, sample: Sample, expected: dict[str, Any]) -> None:
    status = evaluate(task, sample, None, at())
    assert status.name == task.key
    assert status.measured_at == ts()
    for name, value in expected.items():
        assert getattr(status, name) == value, name


def test_counters_accumulate_and_a_result_ends_the_error_streak() -> None:
    previous = MetricStatus(name=STEP1, measurements=2, failures=1, consecutive_errors=3)
    status = evaluate(ERROR_RATE, ScalarSample(0.5), previous, at())
    assert (status.measurements, status.failures, status.consecutive_errors) == (3, 2, 0)
    errored = evaluate(ERROR_RATE, ProviderFailure("timeout"), status, at(30))
    assert (errored.measurements, errored.failures, errored.consecutive_errors) == (3, 2, 1)


# ---------------------------------------------------------------- evaluate: comparisons

COMPARE = MetricTask("step-1/errors-vs-stable", comparison_metric())
ENOUGH = CountsSample(Counts(500, 5), Counts(5000, 50))
TOO_FEW = CountsSample(Counts(40, 0), Counts(5000, 50))


def judged(verdict: Verdict, lower: float | None = 0.5) -> Judgement:
    return Judgement(verdict, 1.0, lower, 2.0, f"ratio 1 ({verdict})")


COMPARISONS: list[tuple[str, Judgement, Sample, dict[str, Any]]] = [
    (
        "pass counts",
        judged(Verdict.PASS),
        ENOUGH,
        {"verdict": Verdict.PASS, "measurements": 1, "value": "1"},
    ),
    (
        "fail counts against failureLimit",
        judged(Verdict.FAIL),
        ENOUGH,
        {"verdict": Verdict.FAIL, "failures": 1, "measurements": 1, "value": "1"},
    ),
    (
        "inconclusive after minRequests is no evidence of a regression",
        judged(Verdict.INCONCLUSIVE),
        ENOUGH,
        {"verdict": Verdict.INCONCLUSIVE, "measurements": 1, "inconclusives": 0, "value": "1"},
    ),
    (
        "before minRequests the metric holds, without a value",
        judged(Verdict.INCONCLUSIVE),
        TOO_FEW,
        {"verdict": Verdict.INCONCLUSIVE, "measurements": 0, "inconclusives": 0, "value": None},
    ),
    (
        "unusable data holds",
        judged(Verdict.INCONCLUSIVE, lower=None),
        ENOUGH,
        {"measurements": 0, "inconclusives": 0, "consecutive_errors": 0, "value": None},
    ),
]


@pytest.mark.parametrize(
    ("judgement", "sample", "expected"),
    [c[1:] for c in COMPARISONS],
    ids=[c[0] for c in COMPARISONS],
)
def test_evaluate_comparison_gate(
    monkeypatch: pytest.MonkeyPatch, judgement: Judgement, sample: Sample, expected: dict[str, Any]
) -> None:
    calls: list[dict[str, Any]] = []

    def fake(segments: Any, **options: Any) -> Judgement:
        calls.append({k: options[k] for k in ("tolerance", "alpha", "alpha_pass", "min_requests")})
        return judgement

    monkeypatch.setattr(judge, "judge_rates", fake)
    status = evaluate(COMPARE, sample, None, at())
    assert calls == [{"tolerance": 1.5, "alpha": 0.01, "alpha_pass": 0.05, "min_requests": 100}]
    assert status.reason == f"errors-vs-stable: {judgement.reason}"
    for name, value in expected.items():
        assert getattr(status, name) == value, name


def test_an_unusable_histogram_holds_with_a_reason() -> None:
    task = MetricTask(
        "l",
        comparison_metric(
            "p99", comparison={"type": "latency", "bucketsQuery": "b", "tolerance": 1.5}
        ),
    )
    status = evaluate(task, BucketsSample(((0.1, 5.0), (float("inf"), 3.0)), ()), None, at())
    assert (status.verdict, status.measurements) == (Verdict.INCONCLUSIVE, 0)
    assert status.reason.startswith("p99: stable histogram unusable")


@pytest.mark.parametrize(
    "sample",
    [ScalarSample(0.1), BucketsSample((), ())],
    ids=["scalar", "buckets for an errorRate comparison"],
)
def test_comparison_with_the_wrong_sample_is_an_error(sample: Sample) -> None:
    status = evaluate(COMPARE, sample, None, at())
    assert status.verdict is Verdict.ERROR
    assert status.consecutive_errors == 1


@pytest.mark.parametrize(
    ("sample", "verdict", "measurements"),
    [
        (CountsSample(Counts(5000, 500), Counts(50000, 500)), Verdict.FAIL, 1),
        (CountsSample(Counts(50000, 500), Counts(500000, 5000)), Verdict.PASS, 1),
        (CountsSample(Counts(300, 3), Counts(3000, 30)), Verdict.INCONCLUSIVE, 1),
        (CountsSample(Counts(20, 0), Counts(50000, 500)), Verdict.INCONCLUSIVE, 0),
    ],
    ids=[
        "10x errors fails",
        "same error rate passes",
        "same error rate, not yet sure: counts",
        "too little traffic holds",
    ],
)
def test_evaluate_with_the_real_judge(sample: Sample, verdict: Verdict, measurements: int) -> None:
    status = evaluate(COMPARE, sample, None, at())
    assert (status.verdict, status.measurements) == (verdict, measurements)


# ---------------------------------------------------------------- the gate: usable() and passed()

COUNTED = {"measurements": 1, "value": "1.1"}
HELD = {"value": None}  # a comparison result before minRequests has no value

GATE: list[tuple[str, MetricTask, dict[str, Any] | None, bool]] = [
    ("threshold: never measured", ERROR_RATE, None, False),
    ("threshold: no verdict yet", ERROR_RATE, {}, False),
    ("threshold: pass", ERROR_RATE, {"verdict": Verdict.PASS, **COUNTED}, True),
    ("threshold: tolerated fail", ERROR_RATE, {"verdict": Verdict.FAIL, **COUNTED}, False),
    (
        "threshold: no data",
        ERROR_RATE,
        {"verdict": Verdict.INCONCLUSIVE, "inconclusives": 1},
        False,
    ),
    ("threshold: provider error", ERROR_RATE, {"verdict": Verdict.ERROR, **COUNTED}, False),
    ("comparison: pass", COMPARE, {"verdict": Verdict.PASS, **COUNTED}, True),
    (
        "comparison: inconclusive after minRequests is not earned",
        COMPARE,
        {"verdict": Verdict.INCONCLUSIVE, **COUNTED},
        False,
    ),
    (
        "comparison: inconclusive before minRequests",
        COMPARE,
        {"verdict": Verdict.INCONCLUSIVE},
        False,
    ),
    (
        "comparison: before minRequests again, after earlier counted results",
        COMPARE,
        {"verdict": Verdict.INCONCLUSIVE, "measurements": 3, **HELD},
        False,
    ),
    ("comparison: tolerated fail", COMPARE, {"verdict": Verdict.FAIL, **COUNTED}, False),
    ("comparison: provider error", COMPARE, {"verdict": Verdict.ERROR, "measurements": 2}, False),
]


@pytest.mark.parametrize(
    ("task", "fields", "expected"), [g[1:] for g in GATE], ids=[g[0] for g in GATE]
)
def test_usable(task: MetricTask, fields: dict[str, Any] | None, expected: bool) -> None:
    status = None if fields is None else measured(task.key, **fields)
    assert usable(task, status) is expected
    assert passed(task, status) is expected  # count 1: passed() is usable() once counted


def test_a_pass_once_earned_stands_until_a_fail_with_the_real_judge() -> None:
    earned = evaluate(COMPARE, CountsSample(Counts(5000, 50), Counts(50000, 500)), None, at())
    assert (earned.verdict, usable(COMPARE, earned)) == (Verdict.PASS, True)
    worse = CountsSample(Counts(5200, 60), Counts(52000, 520))  # the bound no longer clears
    kept = evaluate(COMPARE, worse, earned, at(30))
    assert kept.verdict is Verdict.PASS and "earned earlier stands" in kept.reason
    failing = evaluate(COMPARE, CountsSample(Counts(6000, 300), Counts(60000, 600)), kept, at(60))
    assert failing.verdict is Verdict.FAIL


def test_no_errors_on_either_side_promotes_on_the_added_rate() -> None:
    # A service with a 0% error rate has no ratio to estimate; the added-rate bound still
    # rules out a regression, so it does not stall forever.
    status = evaluate(COMPARE, CountsSample(Counts(5000, 0), Counts(50000, 0)), None, at())
    assert status.verdict is Verdict.PASS
    assert "adds less than +0.75 per 100" in status.reason
    assert usable(COMPARE, status)


def test_passed_needs_count_usable_results_and_a_usable_last_one() -> None:
    task = MetricTask(STEP1, threshold_metric(count=2, failure_limit=1, inconclusive_limit=2))
    status = None
    for seconds, sample, done in [
        (0, ScalarSample(None), False),  # no data: not counted
        (30, ScalarSample(0.001), False),  # 1 of 2
        (60, ScalarSample(0.05), False),  # 2 of 2, but the last is a tolerated Fail
        (90, ScalarSample(0.001), True),
    ]:
        status = evaluate(task, sample, status, at(seconds))
        assert passed(task, status) is done, seconds


def test_counts_the_judge_cannot_use_are_not_kept_and_do_not_block_later_steps() -> None:
    broken = evaluate(COMPARE, CountsSample(Counts(50, 60), Counts(500, 5)), None, at())
    assert broken.evidence == [] and broken.verdict is Verdict.INCONCLUSIVE
    later = MetricTask(COMPARE.key, COMPARE.metric, COMPARE.args, 60.0, step=3)
    regression = CountsSample(Counts(500, 100), Counts(5000, 25))  # 20x
    judged = evaluate(later, regression, broken, at(30))
    assert judged.verdict is Verdict.FAIL, judged.reason


def test_an_earned_pass_survives_a_provider_error() -> None:
    earned = evaluate(COMPARE, CountsSample(Counts(5000, 50), Counts(50000, 500)), None, at())
    assert earned.verdict is Verdict.PASS and earned.passed_at is not None
    errored = evaluate(COMPARE, ProviderFailure("timeout"), earned, at(30))
    assert errored.verdict is Verdict.ERROR and not usable(COMPARE, errored)
    unsure = CountsSample(Counts(5200, 60), Counts(52000, 520))
    again = evaluate(COMPARE, unsure, errored, at(60))
    assert again.verdict is Verdict.PASS and "earned earlier stands" in again.reason
    failing = evaluate(COMPARE, CountsSample(Counts(6000, 300), Counts(60000, 600)), again, at(90))
    assert failing.verdict is Verdict.FAIL and failing.passed_at is None
