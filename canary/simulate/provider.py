"""A metric provider that answers MetricTasks from the simulated counters, not from PromQL.

The simulator cannot run PromQL, so it recognises what a metric measures by its kind and,
for threshold metrics, by its name. The query text is ignored (it still has to be valid
for the Canary to pass the engine's checks).

Comparison metrics (``comparison``), whatever their queries say:

- ``errorRate``: requests and errors of each variant over the task's window (the time
  since the step began, at least one interval), like ``increase(...[{{window}}])``:
  ``CountsSample``.
- ``latency``: each variant's latency histogram over that window, cumulative, ``le`` in
  seconds, +Inf last: ``BucketsSample``; when the task asks for a baseline, also stable's
  histogram over that much traffic before the rollout (all of it stable's).

Threshold metrics (``thresholdRange``) measure the *canary* over the last ``interval``
of the metric (a ``[1m]`` range for a 1m interval), chosen by the metric's name:

- a name containing ``success`` (``request-success-rate``): the success ratio, 0-1;
- a name containing ``error`` (``error-rate``, ``http-errors``): the error ratio, 0-1;
- a name containing ``latency`` or ``duration`` (``latency-p99``, ``request-duration``):
  the latency quantile in seconds, computed like ``histogram_quantile`` from the
  buckets; the quantile comes from ``pNN`` in the name (``p95`` -> 0.95, ``p99.9`` ->
  0.999), p99 if there is none; a name ending in ``-ms`` gives milliseconds;
- a name containing ``percent`` scales a ratio to 0-100.

No canary requests in the window gives ``ScalarSample(None)`` (Prometheus returns no
series or NaN then). Any other name gives a permanent ProviderFailure naming these rules.

Inside a scenario's ``metrics_outage`` window every measurement is a transient
``ProviderFailure``, as an unreachable Prometheus would give.
"""

from __future__ import annotations

import re

from canary.api.analysis_template import Metric
from canary.api.durations import parse_duration
from canary.engine.samples import (
    BucketsSample,
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)
from canary.simulate.traffic import CANARY, STABLE, World, histogram_quantile

_QUANTILE = re.compile(r"p(\d+(?:[._]\d+)?)")
RULES = (
    "the simulator measures threshold metrics by name: 'success' (success ratio), "
    "'error' (error ratio), 'latency'/'duration' with pNN (latency quantile in seconds)"
)


class SimulatedProvider:
    """Measures tasks at the world's current time (``world.now``)."""

    name = "simulated"

    def __init__(self, world: World) -> None:
        self.world = world

    def measure(self, task: MetricTask) -> Sample:
        world = self.world
        outage = world.scenario.outage_at(world.now)
        if outage is not None:
            return ProviderFailure(
                f"simulated metrics outage ({outage.start:g}s-{outage.end:g}s): "
                "cannot reach Prometheus",
                transient=True,
            )
        metric = task.metric
        if metric.comparison is not None:
            seconds = max(task.window_seconds, world.dt)
            canary = world.window(CANARY, seconds)
            stable = world.window(STABLE, seconds)
            if metric.comparison.type == "errorRate":
                return CountsSample(
                    canary=Counts(canary[0], canary[1]), stable=Counts(stable[0], stable[1])
                )
            baseline = None
            if task.baseline is not None:
                before = world.baseline_buckets(task.baseline.seconds)
                baseline = world.cumulative_buckets(before)
            return BucketsSample(
                canary=world.cumulative_buckets(canary[2]),
                stable=world.cumulative_buckets(stable[2]),
                baseline=baseline,
            )
        return self.threshold(metric)

    def threshold(self, metric: Metric) -> Sample:
        """The canary's value for a threshold metric, chosen by its name (see module doc)."""
        name = metric.name.lower()
        seconds = max(parse_duration(metric.interval), self.world.dt)
        requests, errors, buckets = self.world.window(CANARY, seconds)
        scale = 100.0 if "percent" in name else 1.0
        if "success" in name:
            return ScalarSample(scale * (requests - errors) / requests if requests else None)
        if "error" in name:
            return ScalarSample(scale * errors / requests if requests else None)
        if "latency" in name or "duration" in name:
            match = _QUANTILE.search(name)
            q = 0.99
            if match:
                digits = match.group(1).replace("_", ".")
                q = float(digits) / 100.0
            if not 0.0 < q < 1.0:
                return ProviderFailure(f"{metric.name}: quantile {q} is not in (0, 1)", False)
            value = histogram_quantile(q, self.world.cumulative_buckets(buckets))
            if value is not None and name.endswith("-ms"):
                value *= 1000.0
            return ScalarSample(value)
        return ProviderFailure(f"{metric.name}: {RULES}", transient=False)
