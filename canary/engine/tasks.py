"""Which metrics to measure now.

Two scopes of metrics exist during a rollout:

- background (`spec.analysis`): measured once traffic has reached the canary (the first
  applied setWeight above 0) and until promotion begins, through a bake (bake.py),
  keyed "background/<metric>";
- inline (an `analysis` step): measured while that step is current, `count` times
  (default 1; a comparison until its Pass), keyed "step-<index>/<metric>" with the
  0-based step index.

A metric name must therefore be unique within its scope (spec validation checks that).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from canary.api.analysis_template import AnalysisTemplateSpec, Metric
from canary.api.canary import Arg, Canary, Step, TemplateRef, template_key
from canary.api.durations import parse_duration
from canary.api.status import MetricStatus, Phase
from canary.engine.clock import from_iso, seconds_since
from canary.engine.limits import passed
from canary.engine.samples import Baseline, MetricTask

BACKGROUND = "background"
_MEASURING = (Phase.PROGRESSING, Phase.PAUSED, Phase.BAKING)


def step_scope(index: int) -> str:
    return f"step-{index}"


def bake_step(steps: list[Step]) -> int:
    """The evidence key of the bake's traffic: past the promotion gate's (len(steps))."""
    return len(steps) + 1


def weight_before(steps: list[Step], index: int) -> int:
    """The canary weight set by the last setWeight step before step `index`."""
    weights = [s.set_weight for s in steps[:index] if s.set_weight is not None]
    return weights[-1] if weights else 0


def background_tasks(
    canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: datetime
) -> list[MetricTask]:
    status, background = canary.status, canary.spec.analysis
    if background is None or status.phase not in _MEASURING:
        return []
    if weight_before(canary.spec.steps, status.current_step_index or 0) == 0:
        return []
    args, interval = background.args, background.interval
    tasks = _tasks(BACKGROUND, background.templates, args, templates, canary, now, interval)
    bake = canary.spec.bake
    if status.phase is Phase.BAKING and bake is not None and bake.holdback == 0:
        # Nothing serves the previous revision to compare with: thresholds judge alone.
        return [t for t in tasks if t.metric.comparison is None]
    return tasks


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
    baking = status.phase is Phase.BAKING
    step = bake_step(canary.spec.steps) if baking else status.current_step_index or 0
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
            tasks.append(MetricTask(key, metric, args, window, step, baseline, bake=baking))
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
