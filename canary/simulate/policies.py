"""Baseline policies for the decision benchmark: Flagger's and Argo Rollouts' documented
algorithms, re-implemented here from their documentation with the settings the benchmark
states. Benchmark only: the product never uses them.

Both measure through the same :class:`~canary.simulate.provider.SimulatedProvider` as the
engine (threshold metrics on the canary, each over the last interval), see the same
traffic and outages, and are scored the same way. Time 0 is the moment the new revision
appears; both controllers are assumed to notice it at once (their resync tick falls on
t = 0), which is the most favourable case for them.

flagger-like (Flagger's canary analysis with ``stepWeight``)
------------------------------------------------------------
Settings: ``interval: 1m``, ``threshold: 5``, ``stepWeight: 10``, ``maxWeight: 50``;
metrics ``request-success-rate`` ``thresholdRange.min: 99`` (percent) and
``request-duration`` ``thresholdRange.max: 500`` (ms, p99), each over a 1m window of the
canary's traffic. The scheduler runs once per interval:

- t = 0: the new revision is detected and the canary scaled up (weight 0).
- Each tick first rolls back if the failed checks so far reached ``threshold``
  (cumulative: a passing check does not reset them).
- The first tick after detection starts the analysis without checking metrics (no
  traffic has reached the canary yet) and sets the weight to ``stepWeight``.
- Every later tick checks all metrics. A check fails when a metric is out of range, has
  no data (no canary requests in the window) or its query errors; then the failed-check
  count goes up and the weight stays. If all pass, the weight goes up by ``stepWeight``
  (up to ``maxWeight``); once at ``maxWeight`` a passing tick promotes.

So a good canary is promoted at 6 min (weights 10/20/30/40/50 at 1-5 min, promotion at
6 min), and a canary that fails every check is rolled back at 7 min after 5 failed checks.

argo-like (Argo Rollouts canary with background analysis)
---------------------------------------------------------
Settings: steps ``setWeight: 10``, ``pause: {duration: 2m}``, ``setWeight: 20``,
``pause: {duration: 2m}``, ``setWeight: 50``, ``pause: {duration: 2m}``; a background
AnalysisRun from the first step with one metric, the canary's error rate over the last
1m, ``interval: 1m``, ``successCondition: result[0] < 0.01``, ``failureLimit: 0``,
``inconclusiveLimit: 0``, ``consecutiveErrorLimit: 4``. The issue states the weights and
the 1m analysis; the 2m pauses (the same 6 min to promotion as flagger-like) and an
``initialDelay: 1m`` (so that the first window holds canary traffic: measured at once,
the canary's error rate is 0/0) are our choices, stated here.

- A measurement that fails the success condition fails the run (failureLimit 0): abort,
  all traffic back to stable.
- No data (no canary requests in the window) is Inconclusive: the run stops and the
  rollout pauses for a human (inconclusiveLimit 0), which the simulation never sends, so
  the run ends "still running".
- A query error is an Error measurement; more than ``consecutiveErrorLimit`` in a row
  errors the run, which aborts the rollout. A good measurement resets the streak.
- When the last pause ends, the rollout is promoted (the background run is terminated).
  A measurement due at the same moment is taken first.

Argo's setWeight takes effect at once; weights are not delayed by readiness unless the
scenario's ``canary_ready_after`` says so (both policies then wait for the canary).
"""

from __future__ import annotations

import math

from canary.api.analysis_template import Metric, Provider, ThresholdRange
from canary.engine.samples import MetricTask, ProviderFailure, ScalarSample
from canary.simulate.oracle import ORACLE
from canary.simulate.runner import (
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    Point,
    Recorder,
    RunResult,
    WatchedProvider,
    finish,
)
from canary.simulate.scenario import Scenario
from canary.simulate.traffic import World

FLAGGER, ARGO = "flagger-like", "argo-like"


def _metric(name: str, *, lo: float | None = None, hi: float | None = None) -> Metric:
    return Metric(
        name=name,
        provider=Provider.model_validate({"prometheus": {"query": "(simulated)"}}),
        interval="1m",
        threshold_range=ThresholdRange(min=lo, max=hi),
    )


# ---------------------------------------------------------------- flagger-like

FLAGGER_INTERVAL = 60.0
FLAGGER_THRESHOLD = 5
FLAGGER_STEP_WEIGHT = 10
FLAGGER_MAX_WEIGHT = 50
FLAGGER_METRICS = (
    _metric("request-success-rate-percent", lo=99.0),  # success rate >= 99 %
    _metric("request-duration-p99-ms", hi=500.0),  # p99 <= 500 ms
)


def run_flagger(
    scenario: Scenario, seed: int, *, record: bool = False, keep_world: bool = False
) -> RunResult:
    world = World(scenario, seed)
    provider = WatchedProvider(world)
    recorder = Recorder(record)
    weight, failed_checks, started = 0, 0, False
    error_checks = 0  # failed checks in which every failing metric was a provider error
    t = 0.0

    def done(outcome: str, reason: str, *, blind: bool = False) -> RunResult:
        by_errors = failed_checks - error_checks < FLAGGER_THRESHOLD
        return finish(
            FLAGGER, scenario, seed, world, outcome, t if outcome != RUNNING else None, reason,
            blind=blind, by_errors=by_errors, recorder=recorder, keep_world=keep_world,
        )  # fmt: skip

    recorder.add(Point(0.0, 0, "Progressing", (), "new revision detected, canary scaled up"))
    while True:
        t += FLAGGER_INTERVAL
        if t > world.end:
            return done(RUNNING, f"weight {weight}%, {failed_checks} failed checks")
        world.advance(t)
        if failed_checks >= FLAGGER_THRESHOLD:
            recorder.add(Point(t, 0, "Failed", (), "failed checks threshold reached"))
            return done(ROLLED_BACK, f"{failed_checks} failed checks reached threshold")
        if t < scenario.canary_ready_after:
            continue  # waits for the canary Deployment to be ready
        if not started:
            started, weight = True, FLAGGER_STEP_WEIGHT
            world.set_weight(weight)
            recorder.add(Point(t, weight, "Progressing", (), "analysis started"))
            continue
        verdicts, ok, real_failure = [], True, False
        for metric in FLAGGER_METRICS:
            sample = provider.measure(MetricTask(metric.name, metric, {}, FLAGGER_INTERVAL))
            passed, text, shown = _threshold(metric, sample)
            ok = ok and passed
            real_failure = real_failure or (not passed and text != "Error")
            verdicts.append((metric.name, text, shown))
        if not ok:
            failed_checks += 1
            error_checks += not real_failure
            note = f"halt advancement ({failed_checks} failed checks)"
            recorder.add(Point(t, weight, "Progressing", tuple(verdicts), note))
            continue
        if weight < FLAGGER_MAX_WEIGHT:
            weight = min(weight + FLAGGER_STEP_WEIGHT, FLAGGER_MAX_WEIGHT)
            world.set_weight(weight)
            recorder.add(Point(t, weight, "Progressing", tuple(verdicts), "advance weight"))
            continue
        recorder.add(Point(t, weight, "Promoting", tuple(verdicts), "promote"))
        return done(PROMOTED, "all checks passed at max weight", blind=bool(provider.last_failed))


def _threshold(metric: Metric, sample: object) -> tuple[bool, str, str]:
    """(passed, verdict text, value) for a Flagger check; no data and errors fail it."""
    if isinstance(sample, ProviderFailure):
        return False, "Error", ""
    assert isinstance(sample, ScalarSample)
    value = sample.value
    if value is None or math.isnan(value):
        return False, "NoData", ""
    bounds = metric.threshold_range
    assert bounds is not None
    inside = (bounds.min is None or value >= bounds.min) and (
        bounds.max is None or value <= bounds.max
    )
    return inside, "Pass" if inside else "Fail", f"{value:.4g}"


# ---------------------------------------------------------------- argo-like

ARGO_INTERVAL = 60.0
ARGO_INITIAL_DELAY = 60.0
ARGO_STEPS: tuple[tuple[int, float], ...] = ((10, 120.0), (20, 120.0), (50, 120.0))
ARGO_SUCCESS_BELOW = 0.01
ARGO_FAILURE_LIMIT = 0
ARGO_INCONCLUSIVE_LIMIT = 0
ARGO_CONSECUTIVE_ERROR_LIMIT = 4
ARGO_METRIC = _metric("error-rate", hi=ARGO_SUCCESS_BELOW)


def run_argo(
    scenario: Scenario, seed: int, *, record: bool = False, keep_world: bool = False
) -> RunResult:
    world = World(scenario, seed)
    provider = WatchedProvider(world)
    recorder = Recorder(record)
    start = max(scenario.canary_ready_after, 0.0)  # setWeight waits for a ready canary
    # When each step's weight applies, and when the last pause ends (promotion).
    changes, t_step = [], start
    for weight, pause in ARGO_STEPS:
        changes.append((t_step, weight))
        t_step += pause
    promote_at = t_step
    failures = inconclusives = errors = 0
    next_measure = start + ARGO_INITIAL_DELAY
    weight = 0

    def done(
        outcome: str, t: float | None, reason: str, *, blind: bool = False, by_errors: bool = False
    ) -> RunResult:
        return finish(
            ARGO, scenario, seed, world, outcome, t, reason,
            blind=blind, by_errors=by_errors, recorder=recorder, keep_world=keep_world,
        )  # fmt: skip

    events = sorted({c for c, _ in changes} | {promote_at})
    while True:
        t = min([*events, next_measure])
        if t > world.end:
            return done(RUNNING, None, f"weight {weight}%")
        world.advance(t)
        for at, w in changes:
            if at == t:
                weight = w
                world.set_weight(weight)
                recorder.add(Point(t, weight, "Progressing", (), f"setWeight {weight}"))
        events = [e for e in events if e > t]
        if t == next_measure:
            next_measure += ARGO_INTERVAL
            task = MetricTask(ARGO_METRIC.name, ARGO_METRIC, {}, ARGO_INTERVAL)
            sample = provider.measure(task)
            if isinstance(sample, ProviderFailure):
                errors += 1
                verdict = ("error-rate", "Error", "")
                recorder.add(Point(t, weight, "Progressing", (verdict,), f"{errors} errors"))
                if errors > ARGO_CONSECUTIVE_ERROR_LIMIT:
                    return done(
                        ROLLED_BACK, t, "analysis errored: consecutiveErrorLimit", by_errors=True
                    )
            else:
                errors = 0
                assert isinstance(sample, ScalarSample)
                value = sample.value
                if value is None or math.isnan(value):
                    inconclusives += 1
                    verdict = ("error-rate", "Inconclusive", "")
                    recorder.add(Point(t, weight, "Paused", (verdict,), "inconclusive"))
                    if inconclusives > ARGO_INCONCLUSIVE_LIMIT:
                        # The rollout pauses for a human, which never comes here.
                        reason = f"paused (inconclusive) at weight {weight}% since {t:g}s"
                        return done(RUNNING, None, reason)
                elif value < ARGO_SUCCESS_BELOW:
                    verdict = ("error-rate", "Pass", f"{value:.4g}")
                    recorder.add(Point(t, weight, "Progressing", (verdict,)))
                else:
                    failures += 1
                    verdict = ("error-rate", "Fail", f"{value:.4g}")
                    if failures > ARGO_FAILURE_LIMIT:
                        recorder.add(Point(t, 0, "Degraded", (verdict,), "aborted"))
                        return done(ROLLED_BACK, t, f"error rate {value:.4g} >= 0.01: aborted")
        if t == promote_at:
            recorder.add(Point(t, weight, "Promoting", (), "steps complete"))
            return done(PROMOTED, t, "all steps complete", blind=provider.last_failed is not False)


# The oracle (canary/simulate/oracle.py) is no policy one could deploy, but it is scored
# like one: it bounds what any policy could achieve on a regression.
POLICIES = ("canary", FLAGGER, ARGO, ORACLE)
__all__ = ["ARGO", "FLAGGER", "ORACLE", "POLICIES", "run_argo", "run_flagger"]
