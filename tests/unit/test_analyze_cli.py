"""canary analyze without a Prometheus: usage errors, exit codes, output, selectors.

The provider is replaced by a fake returning fixed samples; the engine judges them for
real. tests/integration/test_analyze.py runs the same command against a real Prometheus.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from canary.api.analysis_template import TemplateArg
from canary.api.status import Verdict
from canary.cli.templates import analyze_exit_code, register
from canary.engine.samples import (
    BucketsSample,
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)
from canary.templates import analyze as analysis
from canary.templates import library

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "analysis_templates"
NO_ENV = {"CANARY_PROMETHEUS_URL": None, "CANARY_TEMPLATES_DIR": str(LIBRARY)}

TWO_METRICS = """\
apiVersion: canary.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: two}
spec:
  args: [{name: service}, {name: limit, value: "0.05"}]
  metrics:
    - name: errors
      provider: {prometheus: {query: 'sum(errors{service="{{args.service}}"})'}}
      thresholdRange: {max: 0.01}
    - name: errors-vs-stable
      provider: {prometheus: {}}
      comparison:
        type: errorRate
        requestsQuery: sum(increase(req{service="{{args.service}}", v="{{variant}}"}[{{window}}]))
        errorsQuery: sum(increase(err{service="{{args.service}}", v="{{variant}}"}[{{window}}]))
        tolerance: 1.5
"""


class FakeProvider:
    name = "fake"

    def __init__(self, answer: Callable[[MetricTask], Sample]) -> None:
        self.answer = answer
        self.tasks: list[MetricTask] = []

    def measure(self, task: MetricTask) -> Sample:
        self.tasks.append(task)
        return self.answer(task)


@pytest.fixture
def fake(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[MetricTask], Sample]], FakeProvider]:
    """Install a fake provider for every metric; returns it so tests can read its tasks."""

    def install(answer: Callable[[MetricTask], Sample]) -> FakeProvider:
        provider = FakeProvider(answer)

        def providers_for(template, url, timeout=10.0):
            return {m.name: provider for m in template.spec.metrics}

        monkeypatch.setattr(analysis, "providers_for", providers_for)
        return provider

    return install


def _invoke(*args: str, env: dict[str, str | None] | None = None):
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, ["analyze", *args], env={**NO_ENV, **(env or {})})


# ---------------------------------------------------------------- usage errors (exit 2)

USAGE = [
    ("missing-required-arg", ["-t", "http-error-rate", "--prometheus", "http://p:9090"],
     ["needs arg 'service', which is not given", "--arg service=VALUE"]),
    ("unknown-arg", ["-t", "http-error-rate", "--prometheus", "http://p:9090",
                     "-a", "service=x", "-a", "servise=y"],
     ["--arg servise: template 'http-error-rate' has no arg 'servise'",
      "did you mean --arg service"]),
    ("arg-without-equals", ["-t", "http-error-rate", "--prometheus", "http://p:9090",
                            "-a", "service"],
     ["--arg 'service': write NAME=VALUE"]),
    ("unknown-template", ["-t", "http-eror-rate", "--prometheus", "http://p:9090"],
     ["no template of that name", "did you mean 'http-error-rate'?"]),
    ("missing-file", ["-t", "nope/t.yaml", "--prometheus", "http://p:9090"],
     ["no such file 'nope/t.yaml'"]),
    ("file-with-several-templates", ["-t", str(LIBRARY / "istio.yaml"), "-a", "service=x",
                                     "--prometheus", "http://p:9090"],
     ["holds 4 templates (istio-error-rate, ", "#NAME"]),
    ("file-without-that-template", ["-t", str(LIBRARY / "istio.yaml") + "#http-latency",
                                    "--prometheus", "http://p:9090"],
     ["has no template 'http-latency'"]),
    ("bad-window", ["-t", "http-error-rate", "-a", "service=x", "--window", "5 min",
                    "--prometheus", "http://p:9090"],
     ["'5 min' is not a duration"]),
    ("interval-without-duration", ["-t", "http-error-rate", "-a", "service=x", "--interval",
                                   "5s", "--prometheus", "http://p:9090"],
     ["--interval needs --duration"]),
    ("no-prometheus", ["-t", "http-error-rate", "-a", "service=x"],
     ["provider.prometheus.address is not set and no --prometheus is given"]),
    ("bad-prometheus-url", ["-t", "http-error-rate", "-a", "service=x", "--prometheus",
                            "localhost:9090"],
     ["must be an http:// or https:// URL"]),
    ("unsafe-value", ["-t", "http-error-rate", "-a", "service=x", "-a",
                      'variantLabel=x"} or vector(1) #', "--prometheus", "http://p:9090"],
     ["metric 'http-error-rate': args.variantLabel is used outside a quoted string"]),
]


@pytest.mark.parametrize(("args", "messages"), [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_usage_errors_exit_2_and_say_what_to_do(args: list[str], messages: list[str]) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    for message in messages:
        assert message in result.stderr, result.stderr


def test_an_invalid_template_file_shows_lint_findings(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text(TWO_METRICS.replace("{{args.service}}", "{{args.svc}}", 1))
    result = _invoke("-t", str(bad), "-a", "service=x", "--prometheus", "http://p:9090")
    assert result.exit_code == 2
    assert f"{bad}:8: spec.metrics[0].provider.prometheus.query: uses {{{{args.svc}}}}" in (
        result.stderr
    )


# ---------------------------------------------------------------- verdicts and exit codes


def _scalar(values: dict[str, Sample]) -> Callable[[MetricTask], Sample]:
    return lambda task: values[task.metric.name]


OK_COUNTS = CountsSample(canary=Counts(100_000, 500), stable=Counts(100_000, 500))
BAD_COUNTS = CountsSample(canary=Counts(100_000, 10_000), stable=Counts(100_000, 500))
FEW_COUNTS = CountsSample(canary=Counts(10, 0), stable=Counts(1000, 5))
DOWN = ProviderFailure("cannot reach Prometheus at http://p:9090: connection refused")

EXIT_CODES = [
    ("all-pass", {"errors": ScalarSample(0.001), "errors-vs-stable": OK_COUNTS}, 0),
    ("threshold-fails", {"errors": ScalarSample(0.2), "errors-vs-stable": OK_COUNTS}, 1),
    ("comparison-fails", {"errors": ScalarSample(0.001), "errors-vs-stable": BAD_COUNTS}, 1),
    ("no-data", {"errors": ScalarSample(None), "errors-vs-stable": OK_COUNTS}, 3),
    ("too-little-traffic", {"errors": ScalarSample(0.0), "errors-vs-stable": FEW_COUNTS}, 3),
    ("provider-error", {"errors": DOWN, "errors-vs-stable": OK_COUNTS}, 4),
    ("error-beats-inconclusive", {"errors": DOWN, "errors-vs-stable": FEW_COUNTS}, 4),
    ("fail-beats-error", {"errors": DOWN, "errors-vs-stable": BAD_COUNTS}, 1),
]


@pytest.mark.parametrize(("samples", "code"), [c[1:] for c in EXIT_CODES],
                         ids=[c[0] for c in EXIT_CODES])
def test_exit_codes(tmp_path: Path, fake, samples: dict[str, Sample], code: int) -> None:
    fake(_scalar(samples))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--prometheus", "http://p:9090")
    assert result.exit_code == code, result.output


def test_json_lines_carry_the_rendered_queries(tmp_path: Path, fake) -> None:
    fake(_scalar({"errors": ScalarSample(0.2), "errors-vs-stable": OK_COUNTS}))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", 'service=check"out', "--window", "90s",
                     "--prometheus", "http://p:9090", "--json")
    assert result.exit_code == 1, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert {"name", "verdict", "value", "reason", "query"} <= set(first)
    assert first["name"] == "errors" and first["verdict"] == "Fail" and first["value"] == 0.2
    assert first["query"] == 'sum(errors{service="check\\"out"})'
    assert "above max 0.01" in first["reason"]
    assert second["verdict"] == "Pass" and second["kind"] == "comparison"
    assert second["query"]["requestsQuery"] == {
        "canary": 'sum(increase(req{service="check\\"out", v="canary"}[90s]))',
        "stable": 'sum(increase(req{service="check\\"out", v="stable"}[90s]))',
    }
    assert set(second["query"]) == {"requestsQuery", "errorsQuery"}


def test_plain_output_names_query_value_verdict_and_reason(tmp_path: Path, fake) -> None:
    fake(_scalar({"errors": ScalarSample(0.004), "errors-vs-stable": FEW_COUNTS}))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--prometheus", "http://p:9090")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0] == f"template two ({template})"
    assert lines[1] == "errors: Pass (value 0.004): errors 0.004 within max 0.01"
    assert lines[2] == '  query: sum(errors{service="checkout"})'
    assert lines[3].startswith("errors-vs-stable: Inconclusive (value ")
    assert "canary has 10 of the 100 requests needed" in lines[3]
    assert lines[4] == (
        '  requestsQuery (canary): sum(increase(req{service="checkout", v="canary"}[300s]))'
    )


def test_canary_selector_points_the_canary_side_at_other_series(tmp_path: Path, fake) -> None:
    by_variant = {"canary": Counts(100_000, 10_000), "stable": Counts(100_000, 500),
                  "blue": Counts(100_000, 500)}

    def answer(task: MetricTask) -> Sample:
        if task.metric.comparison is None:
            return ScalarSample(0.0)
        side = task.args["canary_analyze_variant"]  # the selector's value for this pass
        return CountsSample(canary=by_variant[side], stable=by_variant[side])

    provider = fake(answer)
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--canary-selector", "blue",
                     "--prometheus", "http://p:9090", "--json")
    second = json.loads(result.stdout.splitlines()[1])
    assert second["query"]["errorsQuery"]["canary"] == (
        'sum(increase(err{service="checkout", v="blue"}[300s]))'
    )
    assert second["query"]["errorsQuery"]["stable"].endswith('v="stable"}[300s]))')
    pinned = [t for t in provider.tasks if t.metric.comparison is not None]
    assert [t.args["canary_analyze_variant"] for t in pinned] == ["blue", "stable"]
    assert "{{variant}}" not in (pinned[0].metric.comparison.errors_query or "")
    assert "canary 0.5%" in second["reason"]  # blue's counts judged as the canary
    assert result.exit_code == 0, result.output


def test_a_reserved_arg_name_is_refused() -> None:
    base = library.load_template("http-error-rate", LIBRARY)
    reserved = TemplateArg(name="canary_analyze_variant", value="x")
    spec = base.spec.model_copy(update={"args": [*base.spec.args, reserved]})
    with pytest.raises(library.AnalyzeError, match="reserved arg"):
        analysis.resolve_args(dataclasses.replace(base, spec=spec), {"service": "x"})


# ---------------------------------------------------------------- over a duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_duration_measures_at_each_interval_with_a_growing_window(tmp_path: Path) -> None:
    template_file = tmp_path / "two.yaml"
    template_file.write_text(TWO_METRICS)
    template = library.load_template(str(template_file))
    answers = iter([ScalarSample(0.5), ScalarSample(0.001), ScalarSample(0.001)])
    provider = FakeProvider(
        lambda task: next(answers) if task.metric.comparison is None else OK_COUNTS)
    clock = FakeClock()
    results = analysis.run(
        template, {"service": "x", "limit": "0.05"},
        {m.name: provider for m in template.spec.metrics},
        window_seconds=60, duration_seconds=60, interval_seconds=30, clock=clock,
        sleep=clock.sleep,
    )
    threshold, comparison = results
    assert [round(t.window_seconds) for t in provider.tasks if t.metric.comparison] == [60, 90, 120]
    assert len(threshold.history) == 3 and threshold.status.failures == 1
    # failureLimit 0: one Fail during the run makes the metric Fail, whatever came after.
    assert threshold.verdict is Verdict.FAIL
    assert comparison.verdict is Verdict.PASS
    assert analyze_exit_code(results) == 1
    assert isinstance(comparison.query, dict)  # a comparison: one query per variant
    assert comparison.query["requestsQuery"]["canary"].endswith("[120s]))")


def test_a_tolerated_failure_does_not_fail_the_run() -> None:
    template = library.load_template("http-error-rate", LIBRARY)  # failureLimit: 1
    answers = iter([ScalarSample(0.5), ScalarSample(0.001)])
    provider = FakeProvider(lambda task: next(answers))
    clock = FakeClock()
    (result,) = analysis.run(
        template, analysis.resolve_args(template, {"service": "x"}),
        {"http-error-rate": provider}, window_seconds=300, duration_seconds=30,
        clock=clock, sleep=clock.sleep,
    )
    assert [s.verdict for s in result.history] == [Verdict.FAIL, Verdict.PASS]
    assert result.verdict is Verdict.PASS


def test_library_lookup_finds_templates_by_name() -> None:
    template = library.load_template("linkerd-latency-comparison", LIBRARY)
    assert (template.name, Path(template.source).name) == ("linkerd-latency-comparison",
                                                           "linkerd.yaml")
    assert template.spec.metrics[0].comparison is not None


def test_buckets_selectors_combine_both_sides() -> None:
    template = library.load_template("http-latency-comparison", LIBRARY)
    buckets = {"blue": ((0.1, 90.0), (float("inf"), 100.0)),
               "stable": ((0.1, 50.0), (float("inf"), 100.0))}
    provider = FakeProvider(lambda task: BucketsSample(
        canary=buckets[task.args["canary_analyze_variant"]],
        stable=buckets[task.args["canary_analyze_variant"]],
        baseline=buckets["stable"] if task.baseline else None))
    clock = FakeClock()
    (result,) = analysis.run(
        template, analysis.resolve_args(template, {"service": "x"}),
        {"http-latency-comparison": provider}, window_seconds=300, canary="blue",
        clock=clock, sleep=clock.sleep,
    )
    assert "canary" in result.reason and result.status.measurements <= 1
    sample_sides = [t.args["canary_analyze_variant"] for t in provider.tasks]
    assert sample_sides == ["blue", "stable"]


@pytest.mark.parametrize(
    ("errors", "code", "says"),
    [
        (0, 0, "healthy: no comparison failed with canary and stable the same"),
        (50, 3, "healthy: no comparison failed with canary and stable the same; Inconclusive "
                "(errors-vs-stable) only means more traffic is needed to rule out a "
                "regression, not a fault in the template"),
    ],
)
def test_an_aa_check_of_equal_sides_reads_as_healthy(
    tmp_path: Path, fake, errors: int, code: int, says: str
) -> None:
    same = CountsSample(canary=Counts(5000, errors), stable=Counts(5000, errors))
    fake(_scalar({"errors": ScalarSample(0.0), "errors-vs-stable": same}))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--canary-selector",
                     "stable", "--prometheus", "http://p:9090")
    assert result.exit_code == code, result.output
    assert result.stdout.splitlines()[-1] == f"A/A check (both sides read 'stable'): {says}"


def test_an_aa_check_that_fails_says_the_template_is_unsound(tmp_path: Path, fake) -> None:
    fake(_scalar({"errors": ScalarSample(0.0), "errors-vs-stable": BAD_COUNTS}))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--canary-selector",
                     "stable", "--prometheus", "http://p:9090")
    assert result.stdout.splitlines()[-1] == (
        "A/A check (both sides read 'stable'): unhealthy: errors-vs-stable failed with canary "
        "and stable the same, so it would fail sound canaries too; check its queries"
    )


def test_an_unreachable_prometheus_is_one_line_per_metric_without_urllib3_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as free:  # a port nothing listens on, once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = _invoke("-t", "http-error-rate", "-a", "service=checkout", "--prometheus", url)
    assert result.exit_code == 4, result.output
    [line] = [x for x in result.stdout.splitlines() if not x.startswith(("template", "  "))]
    assert line.startswith("http-error-rate: Error (value -): ")
    assert line.endswith(f"cannot reach Prometheus at {url}: [Errno 111] Connection refused")
    assert not [r for r in caplog.records if r.name.startswith("urllib3")]
    assert result.stderr == ""


def test_a_side_whose_selector_matches_nothing_is_named(tmp_path: Path, fake) -> None:
    nothing = CountsSample(canary=Counts(5000, 5), stable=Counts(0, 0))
    fake(_scalar({"errors": ScalarSample(0.0), "errors-vs-stable": nothing}))
    template = tmp_path / "two.yaml"
    template.write_text(TWO_METRICS)
    result = _invoke("-t", str(template), "-a", "service=checkout", "--stable-selector",
                     "primary", "--prometheus", "http://p:9090")
    assert result.exit_code == 3, result.output
    lines = result.stdout.splitlines()
    assert lines[3].endswith("stable has no requests yet (Inconclusive)")
    assert lines[4] == (
        "  requestsQuery (stable, {{variant}}='primary') found no requests: no series "
        "matched, or none in the window; check its label selectors"
    )
    assert lines[6] == (
        '  requestsQuery (stable): sum(increase(req{service="checkout", v="primary"}[300s]))'
    )
