"""Deploy windows: when a new revision may start rolling out.

A window opens at `start` local time on each listed day and closes at `end`. When `end`
is earlier than `start` the window runs past midnight into the next day (so
"22:00"-"06:00" listed on Fri is open Friday night until Saturday 06:00). "24:00" is
accepted as an end, so "00:00"-"24:00" is a whole day. Times are wall-clock times in
`timezone`, so a window keeps its local hours across daylight-saving changes.

`start == end` is rejected, by validation (the Canary is Invalid, with the fix) and here
(ValueError): "09:00"-"09:00" reads as a whole day to some and as no time at all to
others, and either guess would start or hold rollouts at hours the user did not expect.
Giving one of `start` and `end` without the other is refused the same way.

Blackouts are dated freezes on top of the weekly window: from `start` (inclusive) to
`end` (exclusive), both instants with their own UTC offset, so `timezone` does not apply
to them. A window without `start` and `end` has no weekly hours: it is open whenever no
blackout holds. They may overlap or follow each other; a blackout whose end is not after
its start holds at no moment (validation makes such a Canary Invalid).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from canary.api.canary import Blackout, DeployWindow, minutes_of_day
from canary.api.instants import parse_instant
from canary.engine.clock import utc

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def in_window(window: DeployWindow, now: datetime) -> bool:
    """Whether a rollout may start at `now`: the weekly window is open and no blackout holds."""
    return blackout_at(window, now) is None and _weekly_open(window, utc(now))


def next_open(window: DeployWindow, now: datetime) -> datetime:
    """`now` (in UTC) when the window is open, else the UTC moment it next opens: the
    first weekly opening that no blackout covers, or the end of the blackout that covers
    one while the weekly window is still open then."""
    moment = utc(now)
    # Each pass either returns or moves past the end of a blackout for good, so the loop
    # runs at most once per blackout, plus one.
    for _ in range(len(window.blackouts) + 1):
        moment = _weekly_next_open(window, moment)
        blackout = blackout_at(window, moment)
        if blackout is None:
            return moment
        moment = blackout_end(blackout)
    raise AssertionError("unreachable: a moment past every blackout is in none of them")


def blackout_at(window: DeployWindow, now: datetime) -> Blackout | None:
    """The blackout holding at `now`; of overlapping ones, the one that ends last."""
    now = utc(now)
    holding = [b for b in window.blackouts if parse_instant(b.start) <= now < blackout_end(b)]
    return max(holding, key=blackout_end, default=None)


def blackout_end(blackout: Blackout) -> datetime:
    return utc(parse_instant(blackout.end))


def _weekly_open(window: DeployWindow, now: datetime) -> bool:
    if window.start is None and window.end is None:
        return True  # no weekly hours: only blackouts restrict rollouts
    return any(opens <= now < closes for opens, closes in _spans(window, now))


def _weekly_next_open(window: DeployWindow, now: datetime) -> datetime:
    if _weekly_open(window, now):
        return now
    starts = [opens for opens, _ in _spans(window, now) if opens > now]
    if not starts:
        raise ValueError("deploy window never opens: it lists no days")
    return min(starts)


def _spans(window: DeployWindow, now: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(opens, closes) in UTC for every window touching the eight days around `now`.

    Starting a day early catches a window that opened yesterday and runs past midnight.
    """
    if window.start is None or window.end is None:
        raise ValueError("deploy window has only one of start and end: give both or neither")
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
