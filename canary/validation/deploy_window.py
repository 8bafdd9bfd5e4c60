"""spec.deployWindow: ``timezone`` is a known IANA zone name; ``end`` is at most 24:00;
``days`` is not empty; ``start`` and ``end`` differ. An ``end`` earlier than ``start`` is
an overnight window and 00:00-24:00 a whole day, but ``start == end`` could mean a whole
day or none at all, so it is refused with both spellings as the fix
(canary.engine.windows refuses it too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from canary.api.canary import minutes_of_day
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
    days = window.get("days")
    if isinstance(days, list) and not days:
        findings.append(
            Finding(
                "spec.deployWindow.days",
                "is empty, so the window never opens",
                "list the days rollouts may start, e.g. [Mon, Tue, Wed, Thu]",
            )
        )
    return findings


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True
