"""Turning Canary objects into text for people: plain lines, coloured only on a terminal.

Nothing here wraps, cuts or pads a line to a screen width: piped into grep, a file or
`cat`, every line comes out whole (what kubectl does)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any, TextIO

import typer

from canary.api.display import INVALID, phase_display, step_display
from canary.api.durations import format_duration, parse_duration
from canary.api.naming import cli_command

Obj = dict[str, Any]
# A table cell: its text, or its text and the colour to paint it on a terminal.
Cell = str | tuple[str, str]

FINAL_PHASES = ("Succeeded", "RolledBack", "Failed")


def log_line(text: str, file: TextIO | None = None) -> None:
    """Print a line stamped with the local time, flushed so that CI logs show it at once."""
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {text}", file=file, flush=True)


def progress(text: str) -> None:
    """A line about a command's progress: on stderr, so stdout holds only its result."""
    log_line(text, sys.stderr)


def verdict_colour(verdict: str) -> str:
    """Yellow for Inconclusive, and for a metric not measured yet."""
    return {"Pass": "green", "Fail": "red", "Error": "magenta"}.get(verdict, "yellow")


def paint(text: str, colour: bool, **style: Any) -> str:
    """`text` in a `typer.style` style when `colour`, else unchanged."""
    return typer.style(text, **style) if colour else text


def table(rows: list[list[Cell]], colour: bool) -> list[str]:
    """Rows as columns two spaces apart, each as wide as its widest cell; the last column
    is not padded."""
    texts = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(texts[0]))] if texts else []
    lines = []
    for row, plain in zip(rows, texts, strict=True):
        cells = []
        for i, (cell, text) in enumerate(zip(row, plain, strict=True)):
            padded = text if i == len(row) - 1 else text.ljust(widths[i])
            cells.append(padded if isinstance(cell, str) else paint(padded, colour, fg=cell[1]))
        lines.append("  ".join(cells).rstrip())
    return lines


def seconds_since(when: str, now: dt.datetime) -> float:
    return (now - dt.datetime.fromisoformat(when)).total_seconds()


def phase_text(canary: Obj) -> str:
    status = canary.get("status") or {}
    invalid = any(
        c.get("type") == INVALID and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return phase_display(status.get("phase", "Idle"), invalid)


def step_text(canary: Obj, now: dt.datetime | None = None) -> str:
    """The step 1-based and what it does; given `now`, also the time a timed pause has left."""
    status = canary.get("status") or {}
    steps = (canary.get("spec") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    if index is None:
        return "-"
    shown = step_display(index, len(steps))
    if status.get("phase") == "Baking":
        return f"{shown} ({_bake_text(canary, now)})"
    if index >= len(steps):
        return f"{shown} (promoting)"
    kind = next(iter(steps[index]), "?")
    detail = steps[index][kind]
    if kind == "setWeight":
        what = f"setWeight {detail}"
    elif kind == "pause" and detail.get("duration"):
        what = f"pause {detail['duration']}"
        started = status.get("stepStartedAt")
        if now is not None and started:
            left = parse_duration(detail["duration"]) - seconds_since(started, now)
            what += f", {format_duration(max(0.0, left))} left"
    elif kind == "pause":
        meta = canary["metadata"]
        what = f"pause until `{cli_command('promote', meta['name'], meta['namespace'])}`"
    else:
        names = ",".join(t["templateName"] for t in detail.get("templates", []))
        what = f"analysis {names}, until its metrics pass"
    return f"{shown} ({what})"


def _bake_text(canary: Obj, now: dt.datetime | None) -> str:
    """The bake, and with `now` the time it has left (what `canary status` shows)."""
    bake = (canary.get("spec") or {}).get("bake") or {}
    started = (canary.get("status") or {}).get("bakeStartedAt")
    what = f"baking {bake.get('duration', '')}".rstrip()
    if now is not None and started and bake.get("duration"):
        left = parse_duration(bake["duration"]) - seconds_since(started, now)
        what += f", {format_duration(max(0.0, left))} left"
    return what


def route_weight(status: Obj) -> int | None:
    """The weight the route carried when the controller last read it, if that is not the
    weight desired: the route lags, was edited by hand, or (replica routing) pods are still
    starting or cannot split finely enough. None when it agrees or is not known."""
    carried = status.get("routeWeight")
    return None if carried == status.get("canaryWeight", 0) else carried


def weight_text(status: Obj) -> str:
    carried = route_weight(status)
    desired = f"{status.get('canaryWeight', 0)}%"
    return desired if carried is None else f"{desired} desired, route carries {carried}%"


def summary_line(canary: Obj) -> str:
    """One line per observed change, for CI logs and --watch without a TTY."""
    status = canary.get("status") or {}
    parts = [f"phase={phase_text(canary)}", f"weight={status.get('canaryWeight', 0)}%"]
    if (carried := route_weight(status)) is not None:
        parts.append(f"route={carried}%")
    parts.append(f"step={step_text(canary)}")
    if status.get("message"):
        parts.append(f"message={status['message']!r}")
    return " ".join(parts)


def metric_lines(canary: Obj) -> list[str]:
    out = []
    for m in (canary.get("status") or {}).get("analysis") or []:
        out.append(
            f"{m['name']}: {m.get('verdict') or '-'} value={m.get('value') or '-'} "
            f"({m.get('reason') or 'not measured yet'})"
        )
    return out


def list_rows(canaries: list[Obj], all_namespaces: bool, wide: bool) -> list[list[Cell]]:
    """`canary list` as kubectl prints resources: NAMESPACE only across namespaces, and
    with -o wide the revisions and target too."""
    header: list[Cell] = ["NAME", "PHASE", "WEIGHT", "STEP"]
    header += ["STABLE", "CANARY", "TARGET", "MESSAGE"] if wide else ["MESSAGE"]
    rows = [["NAMESPACE", *header] if all_namespaces else header]
    for c in canaries:
        meta, status = c["metadata"], c.get("status") or {}
        row: list[Cell] = [
            meta["name"],
            phase_text(c),
            f"{status.get('canaryWeight', 0)}%",
            step_text(c),
        ]
        if wide:
            row += [
                status.get("stableRevision") or "-",
                status.get("canaryRevision") or "-",
                ((c.get("spec") or {}).get("targetRef") or {}).get("name") or "-",
            ]
        row.append(status.get("message") or "")
        rows.append([meta["namespace"], *row] if all_namespaces else row)
    return rows
