"""Which metrics to measure now, and what a measurement means.

Two scopes of metrics exist during a rollout:

- background (`spec.analysis`): measured once traffic has reached the canary (the first
  applied setWeight above 0) and until promotion begins, keyed "background/<metric>";
- inline (an `analysis` step): measured while that step is current, `count` times
  (default 1; a comparison until its Pass), keyed "step-<index>/<metric>" with the
  0-based step index.

A metric name must therefore be unique within its scope (spec validation checks that).

Counters in MetricStatus are what the limits are checked against:

- `measurements`: usable results, which count towards `count`: for thresholds a Pass or
  a Fail (never "no data", never an Error); for comparisons, only results taken once the
  canary served minRequests on data the judge could use;
- `failures`: Fail results; the rollout rolls back when failures > failureLimit;
- `inconclusives`: threshold "no data" results; the rollout pauses when
  inconclusives > inconclusiveLimit;
- `consecutive_errors`: provider errors in a row; above consecutiveErrorLimit the metric
  counts as unavailable (see live.py), because an Error never counts as a Pass.

A provider error (or a probe, see probe()) never moves `measurements`, `failures` or
`inconclusives`: a monitoring outage records no Pass or Fail.

A comparison's evidence (`evidence`, one entry per step) is what its judge reads: each
measurement replaces the counts of the step it was taken in, and the judge pools all
steps into one test for the whole rollout (judge.py). A latency comparison also keeps
the bound it counts slow requests against (`slower_than`, comparisons.py).

The gate (usable() and passed()) is the same for inline steps and for promotion:
a metric lets the rollout go on only while its LAST result is a Pass. For a comparison
that Pass is earned: a regression beyond its acceptedRegression is ruled out; once
earned it stands until a Fail. Inconclusive results, too little traffic (threshold "no
data", a comparison before minRequests) and provider errors never pass a gate and never
promote. A Fail within failureLimit is tolerated (no rollback) but does not pass a gate
either: the metric is measured again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from canary.api.analysis_template import AnalysisTemplateSpec, Metric, ThresholdRange
from canary.api.canary import Arg, Canary, Step, TemplateRef, template_key
from canary.api.durations import parse_duration
from canary.api.status import MetricStatus, Phase, StepEvidence, Verdict
from canary.engine.clock import from_iso, seconds_since, to_iso
from canary.engine.samples import (
    Baseline,
    BucketsSample,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)

BACKGROUND = "background"
_MEASURING = (Phase.PROGRESSING, Phase.PAUSED)


def step_scope(index: int) -> str:
    return f"step-{index}"


def weight_before(steps: list[Step], index: int) -> int:
    """The canary weight set by the last setWeight step before step `index`."""
    weights = [s.set_weight for s in steps[:index] if s.set_weight is not None]
    return weights[-1] if weights else 0


# ---------------------------------------------------------------- which metrics


def background_tasks(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    status, background = canary.status, canary.spec.analysis
    if background is None or status.phase not in _MEASURING:
        return []
    if weight_before(canary.spec.steps, status.current_step_index or 0) == 0:
        return []
    args, interval = background.args, background.interval
    return _tasks(BACKGROUND, background.templates, args, templates, canary, now, interval)


def step_tasks(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    status, steps = canary.status, canary.spec.steps
    index = status.current_step_index
    if status.phase not in _MEASURING or index is None or index >= len(steps):
        return []
    analysis = steps[index].analysis
    if analysis is None:
        return []
    # The args validation checked this step's templates against (validation.analyses).
    inherited = canary.spec.analysis.args if canary.spec.analysis is not None else []
    args = [*inherited, *analysis.args]
    return _tasks(step_scope(index), analysis.templates, args, templates, canary, now, None)


def active_tasks(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    return background_tasks(canary, templates, now) + step_tasks(canary, templates, now)


def _tasks(
    scope: str,
    refs: list[TemplateRef],
    given: list[Arg],
    templates: Mapping[str, AnalysisTemplateSpec],
    canary: Canary,
    now: datetime,
    interval: str | None,
) -> list[MetricTask]:
    status = canary.status
    elapsed = seconds_since(status.step_started_at, now) or 0.0
    statuses = statuses_by_key(status.analysis)
    step = status.current_step_index or 0
    tasks = []
    for ref in refs:
        spec = templates.get(template_key(ref.template_name, ref.cluster_scope))
        if spec is None:
            # Validation reports it, and step() makes no progress while it does (the
            # controller and the simulator validate with these same templates).
            continue
        args = _merge_args(spec, given)
        for metric in spec.metrics:
            if interval is not None:
                metric = metric.model_copy(update={"interval": interval})
            key = f"{scope}/{metric.name}"
            window = max(elapsed, parse_duration(metric.interval))
            baseline = baseline_for(metric, statuses.get(key), status.rollout_started_at)
            tasks.append(MetricTask(key, metric, args, window, step, baseline))
    return tasks


def baseline_for(
    metric: Metric, previous: MetricStatus | None, started: str | None
) -> Baseline | None:
    """Stable's traffic before `started`, for a latency bound not fixed yet (comparisons.py)."""
    comparison = metric.comparison
    if comparison is None or comparison.type != "latency" or comparison.slower_than is not None:
        return None
    if (previous is not None and previous.slower_than is not None) or started is None:
        return None
    return Baseline(from_iso(started), parse_duration(comparison.baseline_window))


def _merge_args(spec: AnalysisTemplateSpec, given: list[Arg]) -> dict[str, str]:
    """The template's defaults overridden by `given`, a later arg of a name winning."""
    merged = {a.name: a.value for a in spec.args if a.value is not None}
    merged.update({a.name: a.value for a in given if a.value is not None})
    return merged


def due_tasks(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    """The metrics the controller must measure before calling step() at `now`.

    Metrics are measured while the rollout is Progressing or Paused (during a
    MetricsUnavailable pause the measurements are probes). Each is due one interval after
    its last measurement, or one interval after the step began for its first. A task's
    args are the template's defaults overridden by spec.analysis.args and, for a step's
    analysis, by its own args in turn; its window_seconds is the time since the step
    began, at least one interval.
    `templates` is keyed by templateName, cluster-scoped ones by "cluster/<name>".
    """
    return [t for t in _pending(canary, templates, now) if _wait(t, canary, now) <= 0]


def next_due_seconds(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> float | None:
    """Seconds until the next metric is due (0 if one is due now); None if none will be."""
    waits = [_wait(t, canary, now) for t in _pending(canary, templates, now)]
    return max(0.0, min(waits)) if waits else None


def _pending(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    """Active metrics that still want measurements (inline ones stop once passed())."""
    statuses = statuses_by_key(canary.status.analysis)
    inline = [t for t in step_tasks(canary, templates, now) if not passed(t, statuses.get(t.key))]
    return background_tasks(canary, templates, now) + inline


def _wait(task: MetricTask, canary: Canary, now: datetime) -> float:
    """Seconds until `task` is due: one interval after its last measurement, or after
    the step began if it has none, so that a first result already covers an interval of
    traffic at the step's weight."""
    previous = statuses_by_key(canary.status.analysis).get(task.key)
    last = previous.measured_at if previous and previous.measured_at else None
    since = seconds_since(last or canary.status.step_started_at, now)
    if task.metric.comparison is not None:
        # The window starts with the step: measured sooner, it would hold the previous
        # step's traffic at another share, counted twice in the pooled evidence.
        in_step = seconds_since(canary.status.step_started_at, now)
        since = in_step if since is None or in_step is None else min(since, in_step)
    return 0.0 if since is None else parse_duration(task.metric.interval) - since


def statuses_by_key(analysis: list[MetricStatus]) -> dict[str, MetricStatus]:
    return {m.name: m for m in analysis}


# ---------------------------------------------------------------- limits


def complete(task: MetricTask, status: MetricStatus | None) -> bool:
    return status is not None and status.measurements >= (task.metric.count or 1)


def usable(task: MetricTask, status: MetricStatus | None) -> bool:
    """The metric's last result is evidence of "no regression": a Pass, for thresholds
    and comparisons alike. A comparison's Pass is earned: a regression beyond its
    acceptedRegression is ruled out (judge.py); no Fail is not enough."""
    return status is not None and status.verdict is Verdict.PASS


def passed(task: MetricTask, status: MetricStatus | None) -> bool:
    """An inline metric is done: `count` usable measurements, the last one usable."""
    return complete(task, status) and usable(task, status)


def failed(task: MetricTask, status: MetricStatus | None) -> bool:
    return status is not None and status.failures > task.metric.failure_limit


def inconclusive(task: MetricTask, status: MetricStatus | None) -> bool:
    return status is not None and status.inconclusives > task.metric.inconclusive_limit


def erroring(task: MetricTask, status: MetricStatus | None) -> bool:
    return status is not None and status.consecutive_errors > task.metric.consecutive_error_limit


# ---------------------------------------------------------------- one measurement


@dataclass(frozen=True)
class _Result:
    verdict: Verdict
    reason: str
    value: str | None = None
    counts: bool = True  # counts towards `count` (see module docstring)
    inconclusive: bool = False  # counts against inconclusiveLimit
    evidence: tuple[StepEvidence, ...] | None = None  # comparisons: the pooled counts
    slower_than: float | None = None  # latency: the bound, once fixed
    rollback_evidence: float | None = None  # comparisons: the judge's e-value against


def evaluate(
    task: MetricTask, sample: Sample, previous: MetricStatus | None, now: datetime
) -> MetricStatus:
    """The metric's status after one more measurement.

    Comparison metrics (canary against stable) use this gate: a result only counts once
    the canary served minRequests and the judge could use the data; before that the
    metric holds (verdict Inconclusive, no value, no counter moves), so the step waits for
    traffic. After that, Pass and the judge's Inconclusive both count as "no evidence of a
    regression" and satisfy `count`;
    a Fail counts against failureLimit like any other metric (default 0: roll back at once).
    A threshold "no data" result counts against inconclusiveLimit but not towards `count`.
    A provider error only extends the error streak: no other counter moves.
    """
    base = previous or MetricStatus(name=task.key)
    result = _judge_sample(task, sample, base)
    if result.verdict is Verdict.ERROR:
        return base.model_copy(
            update={
                "verdict": result.verdict,
                "value": None,
                "reason": result.reason,
                "measured_at": to_iso(now),
                "consecutive_errors": base.consecutive_errors + 1,
            }
        )
    return base.model_copy(
        update={
            "verdict": result.verdict,
            "value": result.value,
            "reason": result.reason,
            "measured_at": to_iso(now),
            "measurements": base.measurements + int(result.counts),
            "failures": base.failures + int(result.verdict is Verdict.FAIL),
            "inconclusives": base.inconclusives + int(result.inconclusive),
            "consecutive_errors": 0,
            "evidence": base.evidence if result.evidence is None else list(result.evidence),
            "slower_than": _first(result.slower_than, base.slower_than),
            "rollback_evidence": _first(result.rollback_evidence, base.rollback_evidence),
            "passed_at": _passed_at(task, result.verdict, base.passed_at, now),
        }
    )


def _first(value: float | None, otherwise: float | None) -> float | None:
    return otherwise if value is None else value


def _passed_at(task: MetricTask, verdict: Verdict, before: str | None, now: datetime) -> str | None:
    """A comparison's earned Pass stands until a Fail (see _compare)."""
    if task.metric.comparison is None or verdict is Verdict.FAIL:
        return None
    if verdict is Verdict.PASS:
        return before or to_iso(now)
    return before


def probe(
    task: MetricTask, sample: Sample, previous: MetricStatus | None, now: datetime
) -> MetricStatus:
    """Record a measurement taken only to see whether the provider answers again.

    While traffic is held back for missing metrics the canary's numbers say nothing, so
    an answer is not judged: it only clears the error streak.
    """
    base = previous or MetricStatus(name=task.key)
    if isinstance(sample, ProviderFailure):
        return evaluate(task, sample, previous, now)
    return base.model_copy(
        update={
            "reason": "provider answers again; judging resumes with traffic",
            "measured_at": to_iso(now),
            "consecutive_errors": 0,
        }
    )


def _judge_sample(task: MetricTask, sample: Sample, previous: MetricStatus) -> _Result:
    metric = task.metric
    if isinstance(sample, ProviderFailure):
        return _Result(Verdict.ERROR, f"{metric.name}: provider error: {sample.message}")
    if metric.threshold_range is not None and isinstance(sample, ScalarSample):
        return _threshold(metric.name, metric.threshold_range, sample.value)
    if metric.comparison is not None and isinstance(sample, CountsSample | BucketsSample):
        return _compare(task, sample, previous)
    kind = type(sample).__name__
    return _Result(Verdict.ERROR, f"{metric.name}: provider returned {kind}, which it cannot judge")


def _threshold(name: str, bounds: ThresholdRange, value: float | None) -> _Result:
    if value is None or math.isnan(value):
        return _Result(Verdict.INCONCLUSIVE, f"{name}: no data", counts=False, inconclusive=True)
    shown = f"{value:.4g}"
    if bounds.max is not None and value > bounds.max:
        return _Result(Verdict.FAIL, f"{name} {shown} above max {bounds.max:g}", shown)
    if bounds.min is not None and value < bounds.min:
        return _Result(Verdict.FAIL, f"{name} {shown} below min {bounds.min:g}", shown)
    return _Result(Verdict.PASS, f"{name} {shown} within {_describe(bounds)}", shown)


def _describe(bounds: ThresholdRange) -> str:
    if bounds.min is None:
        return f"max {bounds.max:g}"
    if bounds.max is None:
        return f"min {bounds.min:g}"
    return f"[{bounds.min:g}, {bounds.max:g}]"


def _compare(
    task: MetricTask, sample: CountsSample | BucketsSample, previous: MetricStatus
) -> _Result:
    """Fold this step's counts into the metric's evidence and judge all of it at once.

    A result only counts once the canary served minRequests and the judge could use the
    data; before that the metric holds (verdict Inconclusive, no value, no counter moves).
    """
    # Imported here: the judge pulls in numpy, which threshold-only callers never need.
    from canary.engine.judge import comparisons
    from canary.engine.judge.core import Accepted, judge_rates

    metric, comparison = task.metric, task.metric.comparison
    assert comparison is not None  # _judge_sample only routes comparison metrics here
    try:
        counted = comparisons.count(comparison, sample, previous.slower_than)
    except comparisons.Unusable as err:
        return _Result(Verdict.INCONCLUSIVE, f"{metric.name}: {err} (Inconclusive)", counts=False)
    except ValueError as err:  # malformed provider data (e.g. non-monotonic buckets)
        return _Result(Verdict.ERROR, f"{metric.name}: cannot judge: {err}")
    segment = counted.segment
    evidence = [e for e in previous.evidence if e.step != task.step]
    evidence.append(StepEvidence(step=task.step, **vars(segment)))
    evidence.sort(key=lambda e: e.step)
    accepted = comparison.accepted_regression
    added = accepted.added_per100 / 100 if accepted.added_per100 is not None else None
    judgement = judge_rates(
        [comparisons.segment_of(e) for e in evidence],
        what=counted.what,
        tolerance=comparison.tolerance,
        accepted=Accepted(ratio=accepted.ratio, added=added),
        alpha=comparison.max_false_rollback,
        alpha_pass=comparison.max_false_promotion,
        min_requests=comparison.min_requests,
        detail=counted.detail,
    )
    reason = judgement.reason
    if not reason.startswith(f"{metric.name}:"):
        reason = f"{metric.name}: {reason}"
    usable_data = judgement.lower is not None
    # Counts the judge cannot use (more errors than requests, NaN, infinite) are not kept:
    # they would block every later judgement until this step is measured again.
    kept = tuple(evidence) if usable_data else tuple(previous.evidence)
    bound, against = counted.slower_than, judgement.against
    canary_requests = sum(e.canary_requests for e in evidence)
    if judgement.verdict is Verdict.INCONCLUSIVE and not (
        usable_data and canary_requests >= comparison.min_requests
    ):
        # Held: no value, so a status reader can tell it from a counted Inconclusive.
        return _Result(Verdict.INCONCLUSIVE, reason, None, False, False, kept, bound, against)
    value = "n/a" if judgement.estimate is None else f"{judgement.estimate:.4g}"
    verdict = judgement.verdict
    if verdict is Verdict.INCONCLUSIVE and previous.passed_at is not None:
        # The e-value crossed 1/alpha once: Ville's bound covers stopping at the first
        # crossing, so the regression stays ruled out. Only a Fail overturns it.
        verdict = Verdict.PASS
        reason = reason.removesuffix(" (Inconclusive)") + "; the Pass earned earlier stands (Pass)"
    return _Result(
        verdict, reason, value, evidence=kept, slower_than=bound, rollback_evidence=against
    )
