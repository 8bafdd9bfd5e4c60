"""The `canary status` screen: what a rollout runs, where it is, what each metric has seen
so far and what it still needs, what its webhooks last answered, and what happened lately
(Argo's tree view, as text)."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from canary.api.display import INVALID
from canary.api.instants import parse_instant
from canary.api.naming import ANNOTATION_REQUEST
from canary.cli.render import (
    Cell,
    paint,
    phase_text,
    seconds_since,
    step_text,
    table,
    verdict_colour,
    weight_text,
)

Obj = dict[str, Any]

LABEL = len("message")
_VERDICT_SUFFIX = re.compile(r" \((Pass|Fail|Inconclusive|Error)\)$")


@dataclass(frozen=True)
class Workloads:
    """The Deployments behind the rollout, each None when it does not exist (yet)."""

    primary: Obj | None  # N-primary: stable
    canary: Obj | None  # N-canary
    target: Obj | None  # the user's, which holds the newest template
    unreadable: str = ""  # why they could not be read (canary-view alone cannot)


def ago(when: str | None, now: dt.datetime) -> str:
    """How long ago an ISO time was, rounded down to seconds, minutes, hours or days
    ("2m ago"): readable at a glance, unlike the API's microsecond stamps."""
    if not when:
        return "-"
    return f"{_rough(seconds_since(when, now))} ago"


def _rough(seconds: float) -> str:
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole}s"
    if whole < 3 * 3600:
        return f"{whole // 60}m"
    if whole < 48 * 3600:
        return f"{whole // 3600}h"
    return f"{whole // 86400}d"


def blackout_text(canary: Obj, now: dt.datetime) -> str | None:
    """The blackout holding now (of overlapping ones the one that ends last, as the
    controller picks it), else the next one to begin; None when none is pending. Times
    are shown as the spec writes them, so that they can be found there."""
    window = (canary.get("spec") or {}).get("deployWindow") or {}
    holding, upcoming = [], []
    for blackout in window.get("blackouts") or []:
        try:
            start, end = parse_instant(blackout["start"]), parse_instant(blackout["end"])
        except (ValueError, KeyError, TypeError):
            continue  # the Invalid condition names it
        if start <= now < end:
            holding.append((end, blackout))
        elif now < start < end:
            upcoming.append((start, blackout))
    if holding:
        end, blackout = max(holding, key=lambda pair: pair[0])
        left = _rough((end - now).total_seconds())
        return f"{blackout.get('reason')}: now, until {blackout['end']} ({left} from now)"
    if upcoming:
        start, blackout = min(upcoming, key=lambda pair: pair[0])
        soon = _rough((start - now).total_seconds())
        when = f"from {blackout['start']} (in {soon})"
        return f"{blackout.get('reason')}: {when} to {blackout['end']}"
    return None


def scale_down_text(canary: Obj, now: dt.datetime) -> str | None:
    """When N-canary goes, while traffic has left it but its pods still run for late data
    planes (spec.scaleDownDelaySeconds); None when no scale-down is pending."""
    at = (canary.get("status") or {}).get("canaryScaleDownAt")
    if not at:
        return None
    name = f"{canary['metadata']['name']}-canary"
    left = -seconds_since(at, now)
    if left <= 0:
        return f"{name} now"
    return f"{name} in {_rough(left)}: its pods outlive its traffic for late data planes"


def _images(deployment: Obj) -> str:
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    return ",".join(c.get("image", "?") for c in containers) or "-"


def _ready(deployment: Obj) -> str:
    ready = (deployment.get("status") or {}).get("readyReplicas") or 0
    return f"{deployment['metadata']['name']} {ready}/{deployment['spec'].get('replicas', 1)} ready"


def _variant(label: str, revision: str | None, running: Obj | None, w: Workloads) -> list[Cell]:
    """A variant's row: its image (from the Deployment that runs it, else from the target,
    which will), replicas ready of desired, and revision."""
    if w.unreadable:
        return [label, "-", "-", f"revision {revision or '-'}"]
    source = running or w.target
    image = _images(source) if source else "-"
    replicas = _ready(running) if running else "not running"
    return [label, image, replicas, f"revision {revision or '-'}"]


def _labelled(rows: list[list[Cell]], width: int = LABEL) -> list[list[Cell]]:
    """Rows whose first cell is padded to `width` (the longest label), so that the
    tables under the heading line up with each other."""
    return [[_pad(row[0], width), *row[1:]] for row in rows]


def _pad(cell: Cell, width: int) -> Cell:
    return cell.ljust(width) if isinstance(cell, str) else (cell[0].ljust(width), cell[1])


def _count(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def evidence_text(metric: Obj) -> str:
    """What a metric has seen, in words: for a comparison its pooled counts and what the
    judge still needs; otherwise its value and the judge's reason."""
    reason = (metric.get("reason") or "").removeprefix(f"{metric['name']}: ")
    reason = _VERDICT_SUFFIX.sub("", reason)
    evidence = metric.get("evidence") or []
    if not evidence:
        if metric.get("verdict") is None:
            return "not measured yet"
        value = metric.get("value")
        return f"value {value}: {reason}" if value else reason
    total = {k: sum(e.get(k, 0.0) for e in evidence) for k in
             ("canaryRequests", "canaryBad", "stableRequests", "stableBad")}
    bad = "slow requests" if metric.get("slowerThan") is not None else "errors"
    words = f"{_count(total['canaryRequests'])} canary requests, {_count(total['canaryBad'])}"
    if total["stableRequests"]:
        expected = total["canaryRequests"] * total["stableBad"] / total["stableRequests"]
        words += f" vs {expected:.2g} expected {bad} (at stable's rate)"
    else:
        words += f" {bad}"
    if len(evidence) > 1:
        words += f" over {len(evidence)} steps"
    # The judge's reason restates the counts first; its last clause is the verdict's why.
    return f"{words}; {reason.rsplit('; ', 1)[-1]}"


def history_text(metric: Obj) -> str:
    """The verdicts so far, from the status' counters (a judge Error counts as ✔ there)."""
    measured = metric.get("measurements") or 0
    if not measured:
        return "-"
    failures, inconclusive = metric.get("failures") or 0, metric.get("inconclusives") or 0
    return f"✔{measured - failures - inconclusive} ✖{failures} ?{inconclusive}"


# What a webhook's last answer means for the rollout, by type and verdict.
_HOOK_MEANING = {
    ("confirm-rollout", "Pass"): "confirmed the rollout",
    ("confirm-rollout", "Fail"): "holds the rollout",
    ("confirm-rollout", "Error"): "no answer; the rollout waits",
    ("pre-rollout", "Pass"): "passed; traffic may move",
    ("pre-rollout", "Fail"): "failed; the rollout was rolled back",
    ("pre-rollout", "Error"): "no answer; traffic waits, asked again each interval",
    ("confirm-promotion", "Pass"): "confirmed the promotion",
    ("confirm-promotion", "Fail"): "holds the promotion",
    ("confirm-promotion", "Error"): "no answer; the promotion waits",
    ("rollback", "Pass"): "asked for a rollback",
    ("rollback", "Fail"): "asks for no rollback",
    ("rollback", "Error"): "no answer; no rollback",
    ("load-test", "Pass"): "load test ran",
    ("load-test", "Fail"): "load test failed (reported only)",
    ("load-test", "Error"): "no answer (reported only)",
    ("post-rollout", "Pass"): "told of the outcome",
    ("post-rollout", "Fail"): "told; it answered with an error (reported only)",
    ("post-rollout", "Error"): "no answer (reported only, not called again)",
}


def webhook_text(hook: Obj, now: dt.datetime) -> str:
    """A webhook's last answer in words: what it means here, when, and what it said."""
    verdict = hook.get("verdict")
    if verdict is None:
        return "due: the controller calls it next"
    meaning = _HOOK_MEANING.get((hook.get("type", ""), verdict), verdict)
    return f"{meaning}, {ago(hook.get('calledAt'), now)}: {hook.get('message') or '-'}"


def request_text(canary: Obj, now: dt.datetime) -> str | None:
    """The last manual request: pending while the controller has not answered it (it is
    down, or busy), else what became of it."""
    status = canary.get("status") or {}
    raw = (canary["metadata"].get("annotations") or {}).get(ANNOTATION_REQUEST)
    if raw is None:
        return None
    try:
        request = json.loads(raw)
        what = f"{request['action']} by {request.get('user', '?')} {ago(request.get('at'), now)}"
        pending = request["id"] != status.get("lastRequestId")
    except (ValueError, KeyError, TypeError):
        return "unreadable; the controller rejects it when it reads it"
    if pending:
        return f"{what}: pending, the controller has not answered it yet"
    outcome = status.get("lastRequestOutcome") or "-"
    why = status.get("lastRequestMessage")
    return f"{what}: {outcome}" + (f" ({why})" if why else "")


def _event_time(event: Obj) -> str | None:
    return (
        (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or event.get("deprecatedLastTimestamp")
        or event["metadata"].get("creationTimestamp")
    )


def status_view(
    canary: Obj, events: list[Obj], workloads: Workloads, now: dt.datetime, colour: bool
) -> list[str]:
    meta, status = canary["metadata"], canary.get("status") or {}
    phase = phase_text(canary)
    phase_colour = "red" if phase == INVALID else None
    lines = [
        f"{paint(meta['namespace'] + '/' + meta['name'], colour, bold=True)}  "
        f"{paint(phase, colour, bold=True, fg=phase_colour)}"
    ]
    variants: list[list[Cell]] = [
        _variant(label, revision, running, workloads)
        for label, revision, running in (
            ("stable", status.get("stableRevision"), workloads.primary),
            ("canary", status.get("canaryRevision"), workloads.canary),
        )
        if label == "stable" or revision
    ]
    rows: list[list[Cell]] = [
        ["step", step_text(canary, now)],
        ["weight", weight_text(status)],
    ]
    if status.get("message"):
        rows.append(["message", status["message"]])
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") == INVALID:
            rows.append([("invalid", "red"), cond.get("message") or ""])
    if workloads.unreadable:
        rows.append(["images", f"cannot read the Deployments: {workloads.unreadable}"])
    request = request_text(canary, now)
    if request:
        rows.append(["request", request])
    blackout = blackout_text(canary, now)
    if blackout:
        rows.append(["blackout", blackout])
    scale_down = scale_down_text(canary, now)
    if scale_down:
        rows.append(["scale-down", scale_down])
    # Labels longer than "message" widen both tables when they show.
    width = max(LABEL, *(len(row[0]) for row in rows if isinstance(row[0], str)))
    for block in (variants, rows):
        lines += ["  " + line for line in table(_labelled(block, width), colour)]
    metrics = status.get("analysis") or []
    if status.get("phase") == "Succeeded":  # a leftover Inconclusive no longer holds anything
        metrics = [m for m in metrics if m.get("verdict") not in (None, "Inconclusive")]
    if metrics:
        lines.append("metrics:")
        metric_rows: list[list[Cell]] = []
        for m in metrics:
            verdict = m.get("verdict") or "-"
            metric_rows.append(
                [m["name"], (verdict, verdict_colour(verdict)), history_text(m), evidence_text(m)]
            )
        lines += ["  " + line for line in table(metric_rows, colour)]
    hooks = status.get("webhooks") or []
    if hooks:
        lines.append("webhooks:")
        hook_rows: list[list[Cell]] = []
        for h in hooks:
            verdict = h.get("verdict") or "-"
            painted = (verdict, verdict_colour(verdict))
            hook_rows.append([h["name"], h.get("type", ""), painted, webhook_text(h, now)])
        lines += ["  " + line for line in table(hook_rows, colour)]
    if events:
        lines.append("events:")
        event_rows: list[list[Cell]] = [
            [ago(_event_time(e), now), e.get("type") or "", f"{e.get('reason')}: {e.get('note')}"]
            for e in events[-8:]
        ]
        lines += ["  " + line for line in table(event_rows, colour)]
    return lines
