"""Turning Canary objects into text for people (rich on a TTY, plain lines otherwise)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # rich is loaded only by the commands that draw tables
    from rich.console import Console

Obj = dict[str, Any]


def log_line(text: str, file: TextIO | None = None) -> None:
    """Print a line stamped with the local time, flushed so that CI logs show it at once."""
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} {text}", file=file, flush=True)


def verdict_colour(verdict: str) -> str:
    """Yellow for Inconclusive, and for a metric not measured yet."""
    return {"Pass": "green", "Fail": "red", "Error": "magenta"}.get(verdict, "yellow")


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


def status_view(console: Console, canary: Obj, events: list[Obj]) -> None:
    from rich.table import Table

    meta, status = canary["metadata"], canary.get("status") or {}
    console.print(
        f"[bold]{meta['namespace']}/{meta['name']}[/bold]  "
        f"phase [bold]{status.get('phase', 'Idle')}[/bold]  "
        f"weight {status.get('canaryWeight', 0)}%  step {step_text(canary)}"
    )
    console.print(
        f"stable {status.get('stableRevision') or '-'}  "
        f"canary {status.get('canaryRevision') or '-'}"
    )
    if status.get("message"):
        console.print(f"message: {status['message']}")
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") == "Invalid":
            console.print(f"[red]Invalid:[/red] {cond.get('message')}")
    analysis = status.get("analysis") or []
    if analysis:
        table = Table("metric", "verdict", "value", "reason", box=None, pad_edge=False)
        for m in analysis:
            verdict = m.get("verdict") or "-"
            color = verdict_colour(verdict)
            table.add_row(
                m["name"],
                f"[{color}]{verdict}[/{color}]",
                m.get("value") or "-",
                m.get("reason") or "",
            )
        console.print(table)
    if events:
        console.print("events:")
        for e in events[-8:]:
            console.print(
                f"  {e.get('eventTime') or ''}  {e.get('type')}  {e.get('reason')}: "
                f"{e.get('note')}",
                highlight=False,
            )


def list_table(console: Console, canaries: list[Obj]) -> None:
    from rich.table import Table

    table = Table("NAMESPACE", "NAME", "PHASE", "WEIGHT", "STEP", "MESSAGE", box=None)
    for c in canaries:
        status = c.get("status") or {}
        table.add_row(
            c["metadata"]["namespace"],
            c["metadata"]["name"],
            status.get("phase", "Idle"),
            f"{status.get('canaryWeight', 0)}%",
            step_text(c),
            (status.get("message") or "")[:60],
        )
    console.print(table)
