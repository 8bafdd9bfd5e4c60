"""Waiting for a rollout's verdict, for `canary deploy --wait` and `canary wait`: progress
lines on stderr, then the result on stdout (a line, or JSON), an optional JUnit report,
and the exit code CI branches on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from canary.api.durations import parse_duration
from canary.cli import render
from canary.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, fail
from canary.cli.render import progress
from canary.errors import CanaryError

if TYPE_CHECKING:
    from canary.kube.client import Kube

TERMINAL_BAD = {"RolledBack", "Failed"}
RESULTS = {
    EXIT_OK: "promoted",
    EXIT_FAILED: "rolled back",
    EXIT_USAGE: "invalid",
    EXIT_TIMEOUT: "timed out",
}
EXITS = "exit 0 promoted, 1 rolled back or failed, 2 invalid Canary, 3 timed out"

Timeout = Annotated[
    str, typer.Option(metavar="DURATION", help="Give up after this long (30s, 10m, 1h).")
]
Output = Annotated[
    Literal["text", "json"],
    typer.Option(
        "--output",
        "-o",
        help="text: the result as a line; json: a summary object (revision, result, phase, "
        "message, seconds, each metric's verdict). Progress goes to stderr either way.",
    ),
]
Junit = Annotated[
    Path | None, typer.Option(metavar="FILE", help="Write a JUnit XML report here.")
]


def limit_of(timeout: str) -> float:
    try:
        return parse_duration(timeout)
    except ValueError as exc:
        raise fail(f"--timeout: {exc}") from None


def wait_and_report(
    kube: Kube,
    ns: str,
    name: str,
    revision: str,
    limit: float,
    output: str,
    junit: Path | None,
    started: float,
) -> typer.Exit:
    """Wait for `revision`'s verdict; report it; return the Exit to raise."""
    code, final = _wait_for_verdict(kube, ns, name, revision, limit)
    status = final.get("status") or {}
    summary = {
        "canary": f"{ns}/{name}",
        "revision": revision,
        "result": RESULTS[code],
        "phase": status.get("phase"),
        "message": status.get("message"),
        "seconds": round(time.monotonic() - started, 1),
        "analysis": status.get("analysis", []),
    }
    if output == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(f"result: {summary['result']} after {summary['seconds']}s: {summary['message']}")
    if junit:
        from canary.cli.junit import write_report

        write_report(junit, summary)
    return typer.Exit(code)


def _wait_for_verdict(
    kube: Kube, ns: str, name: str, revision: str, limit: float
) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + limit
    last, seen_metrics = "", set()
    canary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            canary = kube.get_canary(ns, name)
        except CanaryError as exc:
            progress(f"warning: {exc}")
            time.sleep(2)
            continue
        status = canary.get("status") or {}
        line = render.summary_line(canary)
        if line != last:
            progress(line)
            last = line
        for m in render.metric_lines(canary):
            if m not in seen_metrics:
                seen_metrics.add(m)
                progress(f"  {m}")
        phase = status.get("phase")
        if status.get("stableRevision") == revision and phase in ("Succeeded", "Idle"):
            return EXIT_OK, canary  # promoted, or it already was the stable revision
        invalid = [
            c
            for c in status.get("conditions") or []
            if c.get("type") == "Invalid" and c.get("status") == "True"
        ]
        if invalid:
            progress(f"the Canary is invalid, fix it first: {invalid[0].get('message')}")
            return EXIT_USAGE, canary
        if status.get("canaryRevision") == revision and phase in TERMINAL_BAD:
            return EXIT_FAILED, canary
        time.sleep(1)
    return EXIT_TIMEOUT, canary
