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
    """Progress lines name `revision` and only ever describe its rollout: until the
    controller has taken it up, the status still tells the previous revision's story."""
    deadline = time.monotonic() + limit
    tag = f"[{revision[:10]}]"
    last, taken_up = "", False
    seen_metrics: set[str] = set()
    canary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            canary = kube.get_canary(ns, name)
        except CanaryError as exc:
            progress(f"{tag} warning: {exc}")
            time.sleep(2)
            continue
        status = canary.get("status") or {}
        phase = status.get("phase")
        if status.get("stableRevision") == revision and phase in ("Succeeded", "Idle"):
            _report_lines(canary, tag, last, seen_metrics)
            return EXIT_OK, canary  # promoted, or it already was the stable revision
        invalid = [
            c
            for c in status.get("conditions") or []
            if c.get("type") == "Invalid" and c.get("status") == "True"
        ]
        if invalid:
            progress(f"{tag} the Canary is invalid, fix it first: {invalid[0].get('message')}")
            return EXIT_USAGE, canary
        current = status.get("canaryRevision")
        if current == revision:
            taken_up = True
            last = _report_lines(canary, tag, last, seen_metrics)
            if phase in TERMINAL_BAD:
                return EXIT_FAILED, canary
        elif taken_up and current:
            progress(f"{tag} replaced mid-rollout by revision {current}; it will not be promoted")
            return EXIT_FAILED, canary
        elif not last:
            last = f"{tag} waiting for the controller to take up this revision"
            progress(last)
        time.sleep(1)
    return EXIT_TIMEOUT, canary


def _report_lines(canary: dict[str, Any], tag: str, last: str, seen: set[str]) -> str:
    """Print what changed since `last`; return the new last line."""
    line = f"{tag} {render.summary_line(canary)}"
    if line != last:
        progress(line)
    for m in render.metric_lines(canary):
        if m not in seen:
            seen.add(m)
            progress(f"{tag}   {m}")
    return line
