"""What a metric's counters allow: its limits, and the gate a rollout passes.

Counters in MetricStatus are what the limits are checked against:

- `measurements`: usable results, which count towards `count`: for thresholds a Pass or
  a Fail (never "no data", never an Error); for comparisons, only results taken once the
  canary served minRequests on data the judge could use;
- `failures`: Fail results; the rollout rolls back when failures > failureLimit;
- `inconclusives`: threshold "no data" results; the rollout pauses when
  inconclusives > inconclusiveLimit;
- `consecutive_errors`: provider errors in a row; above consecutiveErrorLimit the metric
  counts as unavailable (see live.py), because an Error never counts as a Pass.

The gate (usable() and passed()) is the same for inline steps and for promotion:
a metric lets the rollout go on only while its LAST result is a Pass. For a comparison
that Pass is earned: a regression beyond its acceptedRegression is ruled out; once
earned it stands until a Fail. Inconclusive results, too little traffic (threshold "no
data", a comparison before minRequests) and provider errors never pass a gate and never
promote. A Fail within failureLimit is tolerated (no rollback) but does not pass a gate
either: the metric is measured again.
"""

from __future__ import annotations

from canary.api.status import MetricStatus, Verdict
from canary.engine.samples import MetricTask


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
