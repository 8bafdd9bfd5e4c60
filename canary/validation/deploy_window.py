"""spec.deployWindow: ``timezone`` is a known IANA zone name; ``end`` is at most 24:00;
``days`` is not empty; ``start`` and ``end`` differ. An ``end`` earlier than ``start`` is
an overnight window and 00:00-24:00 a whole day, but ``start == end`` could mean a whole
day or none at all, so it is refused with both spellings as the fix
(canary.engine.windows refuses it too).

``start`` and ``end`` come together or not at all: without them the window has no weekly
hours and only its ``blackouts`` hold rollouts, so ``days`` alone would do nothing and a
window with neither hours nor blackouts restricts nothing; both are refused rather than
silently ignored. Each blackout ends after it starts; overlapping blackouts are fine, and
one already over is not a finding (the Canary would turn Invalid the day after a freeze).
Unparseable blackout times are the schema's findings (canary.api.instants words them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from canary.api.canary import minutes_of_day
from canary.api.instants import parse_instant
from canary.api.wording import closest
from canary.validation.findings import Finding

_TIME = re.compile(r"^(\d\d):(\d\d)$")


def check_deploy_window(window: Any) -> list[Finding]:
    if not isinstance(window, Mapping):
        return []
    findings: list[Finding] = []
    tz = window.get("timezone", "UTC")
    if isinstance(tz, str) and not _known_zone(tz):
        close = closest(tz, available_timezones(), casefold=True)
        findings.append(
            Finding(
                "spec.deployWindow.timezone",
                f"{tz!r} is not a known time zone",
                f"did you mean {close!r}?"
                if close
                else "use an IANA zone name such as Europe/Berlin, America/New_York or UTC",
            )
        )
    start, end = window.get("start"), window.get("end")
    start_ok = isinstance(start, str) and _TIME.match(start) is not None
    end_ok = isinstance(end, str) and _TIME.match(end) is not None
    if end_ok and minutes_of_day(str(end)) > 24 * 60:
        findings.append(
            Finding("spec.deployWindow.end", f"{end} is after 24:00", "use a time up to 24:00")
        )
    if start_ok and end_ok and start == end:
        findings.append(
            Finding(
                "spec.deployWindow.end",
                f"equals start ({start}), so the window's length is ambiguous",
                'for a whole day write start: "00:00" and end: "24:00"; for a window past '
                "midnight make end earlier than start",
            )
        )
    findings += _check_hours(window)
    findings += _check_blackouts(window.get("blackouts"))
    days = window.get("days")
    if isinstance(days, list) and not days and "start" in window:
        findings.append(
            Finding(
                "spec.deployWindow.days",
                "is empty, so the window never opens",
                "list the days rollouts may start, e.g. [Mon, Tue, Wed, Thu]",
            )
        )
    return findings


def _check_hours(window: Mapping[str, Any]) -> list[Finding]:
    here = "spec.deployWindow"
    if "start" in window and "end" not in window:
        return [Finding(f"{here}.end", "is missing while start is set", _BOTH_OR_NEITHER)]
    if "end" in window and "start" not in window:
        return [Finding(f"{here}.start", "is missing while end is set", _BOTH_OR_NEITHER)]
    if "start" in window:
        return []
    if "days" in window:
        return [
            Finding(
                f"{here}.days",
                "does nothing without start and end",
                'add the hours, e.g. start: "09:00" and end: "16:00", or remove days',
            )
        ]
    if not window.get("blackouts"):
        return [
            Finding(
                here,
                "has neither start and end nor blackouts, so it restricts nothing",
                "add start and end for weekly hours, blackouts for dated freezes, or remove "
                "deployWindow",
            )
        ]
    return []


_BOTH_OR_NEITHER = (
    'give both start and end, e.g. "09:00" and "16:00", or neither to keep only the blackouts'
)


def _check_blackouts(blackouts: Any) -> list[Finding]:
    if not isinstance(blackouts, list):
        return []  # absent, or the schema reports it
    findings = []
    for i, blackout in enumerate(blackouts):
        if not isinstance(blackout, Mapping):
            continue
        start, end = _instant(blackout.get("start")), _instant(blackout.get("end"))
        if start is not None and end is not None and end <= start:
            findings.append(
                Finding(
                    f"spec.deployWindow.blackouts[{i}].end",
                    f"{blackout['end']} is not after start ({blackout['start']})",
                    "make end later than start: a blackout holds from start until end",
                )
            )
    return findings


def _instant(value: Any) -> datetime | None:
    """The moment a blackout time names; None when the schema reports it instead."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value  # unquoted in YAML, read by PyYAML
    try:
        return parse_instant(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True
