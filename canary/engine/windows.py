"""Deploy windows: when a new revision may start rolling out.

A window opens at `start` local time on each listed day and closes at `end`. When `end`
is earlier than `start` the window runs past midnight into the next day (so
"22:00"-"06:00" listed on Fri is open Friday night until Saturday 06:00). "24:00" is
accepted as an end, so "00:00"-"24:00" is a whole day. Times are wall-clock times in
`timezone`, so a window keeps its local hours across daylight-saving changes.

`start == end` is rejected, by validation (the Canary is Invalid, with the fix) and here
(ValueError): "09:00"-"09:00" reads as a whole day to some and as no time at all to
others, and either guess would start or hold rollouts at hours the user did not expect.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from canary.api.canary import DeployWindow, minutes_of_day
from canary.engine.clock import utc

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def in_window(window: DeployWindow, now: datetime) -> bool:
    now = utc(now)
    return any(opens <= now < closes for opens, closes in _spans(window, now))


def next_open(window: DeployWindow, now: datetime) -> datetime:
    """`now` (in UTC) when the window is open, else the UTC moment it next opens."""
    now = utc(now)
    if in_window(window, now):
        return now
    starts = [opens for opens, _ in _spans(window, now) if opens > now]
    if not starts:
        raise ValueError("deploy window never opens: it lists no days")
    return min(starts)


def _spans(window: DeployWindow, now: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(opens, closes) in UTC for every window touching the eight days around `now`.

    Starting a day early catches a window that opened yesterday and runs past midnight.
    """
    if window.start == window.end:
        raise ValueError(f"deploy window start equals end ({window.start}): it is ambiguous")
    zone = ZoneInfo(window.timezone)
    today = now.astimezone(zone).date()
    for offset in range(-1, 8):
        day = today + timedelta(days=offset)
        if DAYS[day.weekday()] in window.days:
            yield _span(day, window.start, window.end, zone)


def _span(day: date, start: str, end: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    opens = datetime.combine(day, _clock(start), tzinfo=zone)
    end_day = day if minutes_of_day(end) > minutes_of_day(start) else day + timedelta(days=1)
    if end == "24:00":
        end_day, end = day + timedelta(days=1), "00:00"
    closes = datetime.combine(end_day, _clock(end), tzinfo=zone)
    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall time, not instant.
    return opens.astimezone(UTC), closes.astimezone(UTC)


def _clock(hhmm: str) -> time:
    return time(*divmod(minutes_of_day(hhmm), 60))
