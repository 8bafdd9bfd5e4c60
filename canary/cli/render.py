"""Turning Canary objects into text for people: plain lines, coloured only on a terminal.

Nothing here wraps, cuts or pads a line to a screen width: piped into grep, a file or
`cat`, every line comes out whole (what kubectl does)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any, TextIO

import typer

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


def step_text(canary: Obj) -> str:
    status = canary.get("status") or {}
    steps = (canary.get("spec") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    if index is None:
        return "-"
    if index >= len(steps):
        return f"{len(steps)}/{len(steps)}"
    step = steps[index]
    kind = next(iter(step), "?")
    detail = step[kind]
    if kind == "setWeight":
        what = f"setWeight {detail}"
    elif kind == "pause":
        what = f"pause {detail.get('duration', 'until promoted')}"
    else:
        what = "analysis " + ",".join(t["templateName"] for t in detail.get("templates", []))
    return f"{index + 1}/{len(steps)} ({what})"


def summary_line(canary: Obj) -> str:
    """One line per observed change, for CI logs and --watch without a TTY."""
    status = canary.get("status") or {}
    parts = [
        f"phase={status.get('phase', 'Idle')}",
        f"weight={status.get('canaryWeight', 0)}%",
        f"step={step_text(canary)}",
    ]
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


def status_view(canary: Obj, events: list[Obj], colour: bool) -> list[str]:
    meta, status = canary["metadata"], canary.get("status") or {}
    phase = status.get("phase", "Idle")
    lines = [
        f"{paint(meta['namespace'] + '/' + meta['name'], colour, bold=True)}  "
        f"phase {paint(phase, colour, bold=True)}  "
        f"weight {status.get('canaryWeight', 0)}%  step {step_text(canary)}",
        f"stable {status.get('stableRevision') or '-'}  "
        f"canary {status.get('canaryRevision') or '-'}",
    ]
    if status.get("message"):
        lines.append(f"message: {status['message']}")
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") == "Invalid":
            lines.append(f"{paint('Invalid:', colour, fg='red')} {cond.get('message')}")
    analysis = status.get("analysis") or []
    if analysis:
        rows: list[list[Cell]] = [["metric", "verdict", "value", "reason"]]
        for m in analysis:
            verdict = m.get("verdict") or "-"
            rows.append(
                [m["name"], (verdict, verdict_colour(verdict)), m.get("value") or "-",
                 m.get("reason") or ""]
            )
        lines += table(rows, colour)
    if events:
        lines.append("events:")
        lines += [
            f"  {e.get('eventTime') or ''}  {e.get('type')}  {e.get('reason')}: {e.get('note')}"
            for e in events[-8:]
        ]
    return lines


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
            status.get("phase", "Idle"),
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
