"""What one measurement means: evaluate() turns a sample into the metric's next status.

A provider error (or a probe, see probe()) never moves `measurements`, `failures` or
`inconclusives` (limits.py): a monitoring outage records no Pass or Fail.

A comparison's evidence (`evidence`, one entry per step) is what its judge reads: each
measurement replaces the counts of the step it was taken in, and the judge pools all
steps into one test for the whole rollout (judge.py). A latency comparison also keeps
the bound it counts slow requests against (`slower_than`, comparisons.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from canary.api.analysis_template import ThresholdRange
from canary.api.status import MetricStatus, StepEvidence, Verdict
from canary.engine.clock import to_iso
from canary.engine.samples import (
    BucketsSample,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)


@dataclass(frozen=True)
class _Result:
    verdict: Verdict
    reason: str
    value: str | None = None
    counts: bool = True  # counts towards `count` (limits.py)
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
    # The bake is a test of its own (bake.py): the rollout's evidence that the canary was
    # as good as stable would otherwise have to be outweighed by a later regression first.
    judged = [e for e in evidence if e.step == task.step] if task.bake else evidence
    detail = "; ".join(filter(None, (counted.detail, "the bake's own test" if task.bake else "")))
    judgement = judge_rates(
        [comparisons.segment_of(e) for e in judged],
        what=counted.what,
        tolerance=comparison.tolerance,
        accepted=Accepted(ratio=accepted.ratio, added=added),
        alpha=comparison.max_false_rollback,
        alpha_pass=comparison.max_false_promotion,
        min_requests=comparison.min_requests,
        detail=detail,
    )
    reason = judgement.reason
    if not reason.startswith(f"{metric.name}:"):
        reason = f"{metric.name}: {reason}"
    usable_data = judgement.lower is not None
    # Counts the judge cannot use (more errors than requests, NaN, infinite) are not kept:
    # they would block every later judgement until this step is measured again.
    kept = tuple(evidence) if usable_data else tuple(previous.evidence)
    bound, against = counted.slower_than, judgement.against
    canary_requests = sum(e.canary_requests for e in judged)
    if judgement.verdict is Verdict.INCONCLUSIVE and not (
        usable_data and canary_requests >= comparison.min_requests
    ):
        # Held: no value, so a status reader can tell it from a counted Inconclusive.
        return _Result(Verdict.INCONCLUSIVE, reason, None, False, False, kept, bound, against)
    value = "n/a" if judgement.estimate is None else f"{judgement.estimate:.4g}"
    verdict = judgement.verdict
    if verdict is Verdict.INCONCLUSIVE and previous.passed_at is not None and not task.bake:
        # The e-value crossed 1/alpha once: Ville's bound covers stopping at the first
        # crossing, so the regression stays ruled out. Only a Fail overturns it.
        verdict = Verdict.PASS
        reason = reason.removesuffix(" (Inconclusive)") + "; the Pass earned earlier stands (Pass)"
    return _Result(
        verdict, reason, value, evidence=kept, slower_than=bound, rollback_evidence=against
    )
