"""``canary analyze``: try an AnalysisTemplate against a real Prometheus before trusting it.

Every metric of the template is measured by the same provider and judged by the same
engine (:func:`canary.engine.verdicts.evaluate`) as in a rollout, once now or, with a
duration, at each metric's interval until the duration is over.

Decisions (the CLI's ``--help`` says the same):

- **Template.** ``--template`` is a file (with exactly one template in it, or
  ``FILE#NAME`` to pick one) or the ``metadata.name`` of a template in the library
  (``analysis_templates/``, or ``$CANARY_TEMPLATES_DIR``). The template is validated
  first (canary.validation); findings are printed as ``FILE:LINE: ...`` and exit 2.
- **Args.** ``--arg NAME=VALUE`` sets a template arg; an arg the template does not
  declare, or a required arg left out, is a usage error naming the arg and the fix.
- **Window.** Comparison metrics read counters with ``increase(...[{{window}}])``; in a
  rollout the window is the time since the step began. Here it is ``--window`` (default
  5m), growing with the time elapsed during ``--duration``, as if the step had begun
  ``--window`` before the command started.
- **Selectors.** ``--canary-selector`` / ``--stable-selector`` set the value that
  ``{{variant}}`` takes in comparison queries for each side (default ``canary`` and
  ``stable``). Before any canary runs, ``--canary-selector stable`` is an A/A check:
  both sides read the stable series, so a sound comparison template must not Fail.
  Threshold metrics have no ``{{variant}}``; point them elsewhere with ``--arg``.
- **Prometheus.** ``--prometheus`` (or ``$CANARY_PROMETHEUS_URL``) is used for every
  metric, overriding the template's ``provider.prometheus.address`` (you are trying the
  template against this server); without it each metric uses its own address.
- **Verdict per metric** (what the exit code reads): Fail when its last measurement
  failed or it failed more often than its ``failureLimit`` during the run; otherwise
  its last verdict.
- **Exit codes** are the CLI's (canary/cli/exits.py), read from the verdicts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canary.api.durations import parse_duration
from canary.api.status import MetricStatus, Verdict
from canary.engine.clock import to_iso
from canary.engine.samples import BucketsSample, CountsSample, MetricTask, Sample
from canary.engine.tasks import baseline_for
from canary.engine.verdicts import evaluate
from canary.errors import PermanentError
from canary.providers.base import DEFAULT_TIMEOUT, MetricProvider
from canary.providers.registry import provider_for
from canary.templates.library import AnalyzeError, Template
from canary.templates.variants import PINNED_ARG, measure, rendered_queries

__all__ = [
    "MetricResult",
    "aa_summary",
    "parse_args",
    "providers_for",
    "resolve_args",
    "run",
]


# ---------------------------------------------------------------- args


def parse_args(items: Sequence[str]) -> dict[str, str]:
    """``["service=checkout", ...]`` as a dict; a later NAME wins."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise AnalyzeError(f"--arg {item!r}: write NAME=VALUE, e.g. --arg service=checkout")
        out[name.strip()] = value
    return out


def resolve_args(template: Template, given: Mapping[str, str]) -> dict[str, str]:
    """The template's defaults overridden by ``given``; every required arg must be there."""
    declared = {a.name: a.value for a in template.spec.args}
    known = ", ".join(declared) or "none"
    for name in given:
        if name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            fix = f"did you mean --arg {close[0]}=...?" if close else f"its args: {known}"
            raise AnalyzeError(
                f"--arg {name}: template {template.name!r} has no arg {name!r} ({fix})"
            )
    if PINNED_ARG in declared:
        raise AnalyzeError(f"template {template.name!r} declares the reserved arg {PINNED_ARG!r}")
    missing = [n for n, default in declared.items() if default is None and n not in given]
    if missing:
        adds = " ".join(f"--arg {n}=VALUE" for n in missing)
        names = ", ".join(repr(n) for n in missing)
        raise AnalyzeError(
            f"template {template.name!r} needs arg {names}, which is not given (add {adds}; "
            "the template library's README says what each arg means)"
        )
    values = {n: v for n, v in declared.items() if v is not None}
    values.update(given)
    return values


# ---------------------------------------------------------------- providers


def providers_for(
    template: Template, prometheus_url: str | None, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, MetricProvider]:
    """metric name -> provider. ``prometheus_url`` (if set) serves every Prometheus metric."""
    try:
        return {
            m.name: provider_for(
                m,
                default_addresses={"prometheus": prometheus_url},
                address_wins=bool(prometheus_url),
                timeout=timeout,
            )
            for m in template.spec.metrics
        }
    except PermanentError as err:
        text = str(err)
        if "--prometheus-url" in text:
            text = text.replace(
                "the controller has no --prometheus-url", "no --prometheus is given"
            )
            text = text.replace("--prometheus-url", "--prometheus")
        raise AnalyzeError(text) from None


# ---------------------------------------------------------------- running


@dataclass
class MetricResult:
    """One metric's outcome; ``status`` is the engine's MetricStatus after the run."""

    name: str
    kind: str  # "threshold" or "comparison"
    query: str | dict[str, dict[str, str]]
    status: MetricStatus
    failure_limit: int = 0
    history: list[MetricStatus] = field(default_factory=list)
    # comparisons: which side's query found nothing, at the last measurement
    empty: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        last = self.status.verdict or Verdict.INCONCLUSIVE
        if self.status.failures > self.failure_limit:
            return Verdict.FAIL
        return last

    @property
    def value(self) -> float | None:
        raw = self.status.value
        if raw is None:
            return None
        try:
            number = float(raw)
        except ValueError:
            return None
        return number if math.isfinite(number) else None

    @property
    def reason(self) -> str:
        return self.status.reason

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "value": self.value,
            "reason": self.reason,
            "query": self.query,
            "kind": self.kind,
            "measurements": len(self.history),
            "empty": self.empty,
        }


def run(
    template: Template,
    args: Mapping[str, str],
    providers: Mapping[str, MetricProvider],
    *,
    window_seconds: float,
    canary: str = "canary",
    stable: str = "stable",
    duration_seconds: float | None = None,
    interval_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    on_measurement: Callable[[MetricResult], None] | None = None,
) -> list[MetricResult]:
    """Measure and judge every metric once, or at its interval for ``duration_seconds``.

    Raises AnalyzeError before measuring anything when a value cannot be placed in a query.
    """
    metrics = template.spec.metrics
    results: dict[str, MetricResult] = {}
    for metric in metrics:
        try:
            query = rendered_queries(metric, args, window_seconds, canary, stable)
        except PermanentError as err:
            raise AnalyzeError(f"metric {metric.name!r}: {err}") from None
        results[metric.name] = MetricResult(
            metric.name,
            "comparison" if metric.comparison is not None else "threshold",
            query,
            MetricStatus(name=metric.name),
            metric.failure_limit,
        )
    intervals = {
        m.name: interval_seconds if interval_seconds else parse_duration(m.interval)
        for m in metrics
    }
    due = dict.fromkeys(intervals, 0.0)
    start = clock()
    while True:
        elapsed = clock() - start
        for metric in metrics:
            if due[metric.name] > elapsed + 1e-9:
                continue
            result = results[metric.name]
            window = window_seconds + due[metric.name]  # as scheduled: exact and repeatable
            # A latency bound comes from stable's traffic before the analysed window.
            before = to_iso(now() - dt.timedelta(seconds=window))
            baseline = baseline_for(metric, result.status if result.history else None, before)
            task = MetricTask(metric.name, metric, dict(args), window, baseline=baseline)
            sample = measure(providers[metric.name], task, canary, stable)
            previous = result.status if result.history else None
            result.status = evaluate(task, sample, previous, now())
            result.empty = _empty_sides(sample, {"canary": canary, "stable": stable})
            result.history.append(result.status)
            if metric.comparison is not None:
                result.query = rendered_queries(metric, args, window, canary, stable)
            if on_measurement is not None:
                on_measurement(result)
            due[metric.name] += intervals[metric.name]
        if duration_seconds is None:
            break
        upcoming = min(due.values())
        if upcoming > duration_seconds + 1e-9:
            break
        sleep(max(0.0, upcoming - (clock() - start)))
    return list(results.values())


def _empty_sides(sample: Sample, selectors: Mapping[str, str]) -> list[str]:
    """The engine only says a side "has no requests yet"; when a selector matches no
    series, that reads like waiting for traffic, so name the query and the selector."""
    if isinstance(sample, CountsSample):
        found = {"canary": sample.canary.requests, "stable": sample.stable.requests}
        role, nothing = "requestsQuery", "no requests: no series matched, or none in the window"
    elif isinstance(sample, BucketsSample):
        found = {"canary": len(sample.canary), "stable": len(sample.stable)}
        role, nothing = "bucketsQuery", "no series"
    else:
        return []
    return [
        f"{role} ({side}, {{{{variant}}}}={value!r}) found {nothing}; check its label selectors"
        for side, value in selectors.items()
        if not found[side]
    ]


def aa_summary(results: Sequence[MetricResult], selector: str) -> str | None:
    """What an A/A run (both sides reading ``selector``) says about the template's
    comparisons; None without comparisons. Equal sides can never show a regression, so
    anything short of a Fail (or an Error) is the healthy answer, Inconclusive included:
    the judge only wants more requests before it rules a regression out."""
    compared = [r for r in results if r.kind == "comparison"]
    if not compared:
        return None
    head = f"A/A check (both sides read {selector!r})"
    failed = [r.name for r in compared if r.verdict == Verdict.FAIL]
    if failed:
        return (
            f"{head}: unhealthy: {', '.join(failed)} failed with canary and stable the same, "
            "so it would fail sound canaries too; check its queries"
        )
    errors = [r.name for r in compared if r.verdict == Verdict.ERROR]
    if errors:
        return f"{head}: not judged: {', '.join(errors)} could not be measured"
    empty = [r.name for r in compared if r.empty]
    if empty:
        return f"{head}: not judged: {', '.join(empty)} found nothing to compare"
    waiting = [r.name for r in compared if r.verdict == Verdict.INCONCLUSIVE]
    note = (
        f"; Inconclusive ({', '.join(waiting)}) only means more traffic is needed to rule "
        "out a regression, not a fault in the template"
        if waiting
        else ""
    )
    return f"{head}: healthy: no comparison failed with canary and stable the same{note}"
