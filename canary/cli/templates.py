"""`canary lint` and `canary analyze`: check templates offline, then try them against
Prometheus; a thin layer over canary.templates.lint and canary.templates.analyze."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from canary.api.durations import parse_duration
from canary.cli.exits import (
    ANALYZE_ERROR,
    ANALYZE_FAIL,
    ANALYZE_INCONCLUSIVE,
    ANALYZE_INTERRUPTED,
    ANALYZE_PASS,
    LINT_CLEAN,
    LINT_FINDINGS,
    LINT_UNCHECKED,
    fail,
)
from canary.cli.render import log_line, verdict_colour

if TYPE_CHECKING:  # loaded by the command that runs: lint needs neither rich nor providers
    from rich.console import Console

    from canary.templates import analyze as analysis
    from canary.templates import library
    from canary.templates.lint import LintReport


def register(app: typer.Typer) -> None:
    app.command()(lint)
    app.command()(analyze)


# ----------------------------------------------------------------- lint


def lint(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="YAML files, directories (searched for *.yaml and *.yml), or Markdown "
            "files (their ```yaml blocks that mention apiVersion: canary.dev/).",
            show_default=False,
        ),
    ],
) -> None:
    """Check Canary, AnalysisTemplate and ClusterAnalysisTemplate YAML offline.

    Prints one line per finding, FILE:LINE: field: message (fix). Templates that a
    Canary references must be among the given files. Objects of other kinds (CRDs,
    RBAC, Deployments, Argo Rollouts, ...) are skipped, and named in a note.

    Exit codes: 0 clean, 1 findings, 2 a file could not be checked (missing, unreadable,
    or not valid YAML) or a directory has no YAML files.
    """
    from canary.templates.lint import lint_paths

    report = lint_paths(paths)
    for line in report.lines:
        print(line)
    note = report.note()
    if note:
        print(note, file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    raise typer.Exit(lint_exit_code(report))


def lint_exit_code(report: LintReport) -> int:
    if report.unchecked:
        return LINT_UNCHECKED
    return LINT_FINDINGS if report.findings else LINT_CLEAN


# ----------------------------------------------------------------- analyze


def analyze(
    template: Annotated[
        str,
        typer.Option(
            "--template",
            "-t",
            metavar="FILE|NAME",
            help="A template file (FILE#NAME picks one of several), or the name of a "
            "template in analysis_templates/ ($CANARY_TEMPLATES_DIR).",
            show_default=False,
        ),
    ],
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            metavar="URL",
            envvar="CANARY_PROMETHEUS_URL",
            help="Prometheus base URL, used for every metric (overrides the template's "
            "provider.prometheus.address). Without it, each metric's own address.",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option(
            "--arg",
            "-a",
            metavar="NAME=VALUE",
            help="A template arg, NAME=VALUE (repeatable).",
            show_default=False,
        ),
    ] = None,
    canary_selector: Annotated[
        str,
        typer.Option(
            "--canary-selector",
            metavar="VALUE",
            help="The value {{variant}} takes in comparison queries for the canary side. "
            "'--canary-selector stable' is an A/A check before any canary runs: both sides "
            "read the stable series, so the comparison must not Fail. Threshold metrics "
            "have no {{variant}}; use --arg for them.",
        ),
    ] = "canary",
    stable_selector: Annotated[
        str,
        typer.Option(
            "--stable-selector",
            metavar="VALUE",
            help="The value {{variant}} takes in comparison queries for the stable side.",
        ),
    ] = "stable",
    window: Annotated[
        str,
        typer.Option(
            "--window",
            metavar="DURATION",
            help="Comparison metrics: the {{window}} their counters are read over (in a "
            "rollout, the time since the step began); grows with --duration.",
        ),
    ] = "5m",
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            metavar="DURATION",
            help="Measure each metric at its interval for this long (e.g. 5m); default: once, now.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            metavar="DURATION",
            help="With --duration: measure every metric at this interval instead of its own.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        str, typer.Option("--timeout", metavar="DURATION", help="Per-query limit for Prometheus.")
    ] = "10s",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object per metric (JSON lines) with name, verdict, value "
            "(threshold: the query's number; comparison: the judge's estimate, the "
            "canary/stable error-rate ratio or the relative quantile increase), "
            "reason and query (as rendered: a string, or for comparisons "
            '{"requestsQuery": {"canary": ..., "stable": ...}, ...}), kind, measurements, '
            "empty (what each comparison query that found nothing says).",
        ),
    ] = False,
) -> None:
    """Run a template's metrics against Prometheus, to try it before trusting it.

    Prints each metric's rendered query, value or estimate, verdict and reason. A
    verdict is the engine's, as in a rollout; over --duration a metric Fails when its
    last measurement failed or it failed more often than its failureLimit.

    Exit codes: 0 every metric passed, 1 any Fail, 2 usage or config error, 3 any
    Inconclusive (and no Fail or Error), 4 any provider Error (and no Fail).
    """
    from rich.console import Console

    from canary.templates import analyze as analysis
    from canary.templates import library

    try:
        seconds = {
            "--window": parse_duration(window),
            "--timeout": parse_duration(timeout),
            "--duration": parse_duration(duration) if duration else None,
            "--interval": parse_duration(interval) if interval else None,
        }
    except ValueError as exc:
        raise fail(str(exc)) from None
    for option, value in seconds.items():
        if value is not None and value <= 0:
            raise fail(f"{option} must be longer than 0")
    if interval and not duration:
        raise fail("--interval needs --duration (without it every metric runs once)")
    # urllib3 logs each retry with the whole query URL; each metric's reason says it once.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        chosen = library.load_template(template)
        args = analysis.resolve_args(chosen, analysis.parse_args(arg or []))
        providers = analysis.providers_for(chosen, prometheus, timeout=seconds["--timeout"] or 10)
    except library.AnalyzeError as exc:
        raise fail(str(exc)) from None

    out = Console(highlight=False)
    progress = None
    if duration:
        stream = sys.stderr if as_json else sys.stdout

        def progress(result: analysis.MetricResult) -> None:
            status = result.status
            value = f" {status.value}" if status.value is not None else ""
            log_line(f"{result.name}: {status.verdict}{value}: {status.reason}", file=stream)

    try:
        results = analysis.run(
            chosen,
            args,
            providers,
            window_seconds=seconds["--window"] or 0.0,
            canary=canary_selector,
            stable=stable_selector,
            duration_seconds=seconds["--duration"],
            interval_seconds=seconds["--interval"],
            on_measurement=progress,
        )
    except library.AnalyzeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(ANALYZE_INTERRUPTED) from None
    finally:
        for provider in {id(p): p for p in providers.values()}.values():
            close = getattr(provider, "close", None)
            if callable(close):
                close()

    if as_json:
        for result in results:
            print(json.dumps(result.as_json()))
    elif out.is_terminal:
        _table(out, chosen, results)
    else:
        _plain(chosen, results)
    same = canary_selector == stable_selector
    aa = analysis.aa_summary(results, stable_selector) if same else None
    if aa:
        print(aa, file=sys.stderr if as_json else sys.stdout)
    raise typer.Exit(analyze_exit_code(results))


def analyze_exit_code(results: list[analysis.MetricResult]) -> int:
    from canary.api.status import Verdict

    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return ANALYZE_FAIL
    if Verdict.ERROR in verdicts:
        return ANALYZE_ERROR
    if Verdict.INCONCLUSIVE in verdicts or not results:
        return ANALYZE_INCONCLUSIVE
    return ANALYZE_PASS


def _queries(result: analysis.MetricResult) -> list[str]:
    if isinstance(result.query, str):
        return [f"query: {result.query}"]
    return [
        f"{role} ({side}): {text}"
        for role, sides in result.query.items()
        for side, text in sides.items()
    ]


def _details(result: analysis.MetricResult) -> list[str]:
    """The lines under a metric: what found nothing, then the queries."""
    return [*result.empty, *_queries(result)]


def _plain(template: library.Template, results: list[analysis.MetricResult]) -> None:
    print(f"template {template.name} ({template.source})")
    for result in results:
        value = "-" if result.status.value is None else result.status.value
        print(f"{result.name}: {result.verdict} (value {value}): {result.reason}")
        for line in _details(result):
            print(f"  {line}")


def _table(out: Console, template: library.Template, results: list[analysis.MetricResult]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"template {template.name} ({template.source})", title_justify="left")
    for column in ("metric", "verdict", "value", "reason"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(
            result.name,
            Text(result.verdict.value, style=verdict_colour(result.verdict)),
            "-" if result.status.value is None else result.status.value,
            Text(result.reason),
        )
    out.print(table)
    for result in results:
        out.print(Text(result.name, style="bold"))
        for line in _details(result):
            out.print(Text(f"  {line}"), soft_wrap=True)
