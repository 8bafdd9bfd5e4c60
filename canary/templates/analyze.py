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

import dataclasses
import datetime as dt
import difflib
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary.api.durations import parse_duration
from canary.api.models import AnalysisTemplateSpec, Metric, MetricStatus, Verdict
from canary.engine.clock import to_iso
from canary.engine.samples import (
    BucketsSample,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
)
from canary.engine.tasks import baseline_for
from canary.engine.verdicts import evaluate
from canary.errors import PermanentError
from canary.providers.base import DEFAULT_TIMEOUT, MetricProvider
from canary.providers.prometheus.promql import render
from canary.providers.registry import provider_for
from canary.templates.documents import Document, read_documents
from canary.templates.located import Located
from canary.validation import TEMPLATE_KINDS, validate_template

__all__ = [
    "AnalyzeError",
    "MetricResult",
    "Template",
    "library_dir",
    "load_template",
    "parse_args",
    "providers_for",
    "rendered_queries",
    "resolve_args",
    "run",
]

LIBRARY_ENV = "CANARY_TEMPLATES_DIR"
_VARIANT = re.compile(r"\{\{\s*variant\s*\}\}")
_PINNED_ARG = "canary_analyze_variant"  # stands in for {{variant}} when selectors are set
_QUERY_ROLES = ("requestsQuery", "errorsQuery", "bucketsQuery")


class AnalyzeError(Exception):
    """A usage or configuration problem (exit 2); the message says what to change."""


# ---------------------------------------------------------------- the template


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    source: str  # the file it came from
    spec: AnalysisTemplateSpec


def library_dir() -> Path:
    """Where template names are looked up: $CANARY_TEMPLATES_DIR, else analysis_templates/
    next to the package (a source checkout), else ./analysis_templates."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2] / "analysis_templates"
    return beside if beside.is_dir() else Path("analysis_templates")


def load_template(ref: str, library: Path | None = None) -> Template:
    """The template named by ``ref``: FILE, FILE#NAME, or a name in the library."""
    path_text, _, wanted = ref.partition("#")
    path = Path(path_text)
    if path.is_file():
        docs = _template_docs(str(path))
        return _pick(docs, wanted or None, str(path))
    if wanted or path.suffix.lower() in (".yaml", ".yml") or os.sep in path_text:
        raise AnalyzeError(f"--template {ref}: no such file {path_text!r}")
    library = library or library_dir()
    files = (
        sorted(p for p in library.rglob("*") if p.suffix.lower() in (".yaml", ".yml"))
        if library.is_dir()
        else []
    )
    names: list[str] = []
    for file in files:
        try:
            docs = _template_docs(str(file))
        except AnalyzeError:
            continue  # a broken file elsewhere in the library does not hide the others
        names += [d.name for d in docs if d.name]
        matches = [d for d in docs if d.name == ref]
        if matches:
            return _pick(matches, ref, str(file))
    if not files:
        raise AnalyzeError(
            f"--template {ref}: no such file, and no template library at {library} "
            f"(pass a file, or set {LIBRARY_ENV})"
        )
    close = difflib.get_close_matches(ref, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(sorted(names))
    raise AnalyzeError(
        f"--template {ref}: no such file, and no template of that name in {library} ({hint})"
    )


def _template_docs(file: str) -> list[Document]:
    docs, problems = read_documents(file)
    if problems:
        raise AnalyzeError("\n".join(str(p) for p in problems))
    return [d for d in docs if d.kind in TEMPLATE_KINDS]


def _pick(docs: Sequence[Document], name: str | None, file: str) -> Template:
    if name is not None:
        docs = [d for d in docs if d.name == name]
        if not docs:
            raise AnalyzeError(f"--template {file}#{name}: {file} has no template {name!r}")
    if not docs:
        raise AnalyzeError(
            f"--template {file}: it holds no AnalysisTemplate or ClusterAnalysisTemplate"
        )
    if len(docs) > 1:
        names = ", ".join(d.name or "?" for d in docs)
        raise AnalyzeError(
            f"--template {file}: it holds {len(docs)} templates ({names}); "
            f"pick one with --template {file}#NAME or --template NAME"
        )
    doc = docs[0]
    findings = validate_template(doc.data)
    if findings:
        lines = [str(Located(doc.file, doc.line(f.field), f)) for f in findings]
        raise AnalyzeError(
            "the template is not valid (canary lint shows the same):\n" + "\n".join(lines)
        )
    spec = AnalysisTemplateSpec.model_validate(doc.data["spec"])
    return Template(doc.name or "?", str(doc.kind), doc.file, spec)


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
    if _PINNED_ARG in declared:
        raise AnalyzeError(f"template {template.name!r} declares the reserved arg {_PINNED_ARG!r}")
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


# ---------------------------------------------------------------- queries


def rendered_queries(
    metric: Metric,
    args: Mapping[str, str],
    window_seconds: float,
    canary: str = "canary",
    stable: str = "stable",
) -> str | dict[str, dict[str, str]]:
    """What the provider sends: the threshold query, or each comparison query per variant
    (``{"requestsQuery": {"canary": ..., "stable": ...}, ...}``). Raises PermanentError
    when a value cannot be placed safely."""
    comparison = metric.comparison
    if comparison is None:
        query = metric.provider.backend[1].get("query")
        return render(query if isinstance(query, str) else "", args)
    out: dict[str, dict[str, str]] = {}
    for role in _QUERY_ROLES:
        template = getattr(comparison, _snake(role))
        if template:
            out[role] = {
                side: render(template, args, variant=value, window_seconds=window_seconds)
                for side, value in (("canary", canary), ("stable", stable))
            }
    return out


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


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
            sample = _measure(providers[metric.name], task, canary, stable)
            previous = result.status if result.history else None
            result.status = evaluate(task, sample, previous, now())
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


def _measure(provider: MetricProvider, task: MetricTask, canary: str, stable: str) -> Sample:
    """provider.measure(task), with {{variant}} standing for the selectors' values."""
    try:
        comparison = task.metric.comparison
        if comparison is None or (canary, stable) == ("canary", "stable"):
            return provider.measure(task)
        pinned = _pin_variant(task.metric)
        sides: dict[str, Sample] = {}
        for side, value in (("canary", canary), ("stable", stable)):
            one = dataclasses.replace(task, metric=pinned, args={**task.args, _PINNED_ARG: value})
            sides[side] = provider.measure(one)
            if isinstance(sides[side], ProviderFailure):
                return sides[side]
        c, s = sides["canary"], sides["stable"]
        if isinstance(c, CountsSample) and isinstance(s, CountsSample):
            return CountsSample(canary=c.canary, stable=s.stable)
        if isinstance(c, BucketsSample) and isinstance(s, BucketsSample):
            return BucketsSample(canary=c.canary, stable=s.stable, baseline=s.baseline)
        return c  # the wrong kind of sample: evaluate() reports it as an Error
    except PermanentError as err:  # e.g. the registry rejecting the provider block
        return ProviderFailure(str(err), transient=False)


def _pin_variant(metric: Metric) -> Metric:
    """The metric with {{variant}} replaced by an arg, so one render reads one variant."""
    comparison = metric.comparison
    assert comparison is not None
    placeholder = "{{args." + _PINNED_ARG + "}}"
    update = {
        _snake(role): _VARIANT.sub(placeholder, q)
        for role in _QUERY_ROLES
        if (q := getattr(comparison, _snake(role)))
    }
    return metric.model_copy(update={"comparison": comparison.model_copy(update=update)})

