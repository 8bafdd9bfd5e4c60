"""Deploy windows: in_window() and next_open() with zoneinfo timezones, and blackouts."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from canary.api.canary import Blackout, DeployWindow
from canary.engine.windows import blackout_at, in_window, next_open

pytestmark = pytest.mark.unit

OFFICE = DeployWindow(
    timezone="Europe/Berlin", days=["Mon", "Tue", "Wed", "Thu"], start="09:00", end="16:00"
)
FRIDAY_NIGHT = DeployWindow(timezone="Europe/Berlin", days=["Fri"], start="22:00", end="06:00")
EVENING = DeployWindow(days=["Mon"], start="18:00", end="24:00")
SATURDAY = DeployWindow(days=["Sat"], start="00:00", end="24:00")
EARLY_SUNDAY = DeployWindow(timezone="Europe/Berlin", days=["Sun"], start="09:00", end="10:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2024-05-06 is a Monday; Berlin is UTC+2 in May.
IN_WINDOW = [
    ("office: Monday noon", OFFICE, "2024-05-06T10:00", True),
    ("office: opens at 09:00 local", OFFICE, "2024-05-06T07:00", True),
    ("office: closed just before", OFFICE, "2024-05-06T06:59", False),
    ("office: end is exclusive", OFFICE, "2024-05-06T14:00", False),
    ("office: Friday is not listed", OFFICE, "2024-05-10T10:00", False),
    ("office: Sunday", OFFICE, "2024-05-12T10:00", False),
    ("overnight: Friday 23:00", FRIDAY_NIGHT, "2024-05-10T21:00", True),
    ("overnight: runs into Saturday", FRIDAY_NIGHT, "2024-05-11T03:59", True),
    ("overnight: closes Saturday 06:00", FRIDAY_NIGHT, "2024-05-11T04:00", False),
    ("overnight: Thursday night is not listed", FRIDAY_NIGHT, "2024-05-09T21:00", False),
    ("24:00 end: last minute", EVENING, "2024-05-06T23:59", True),
    ("24:00 end: midnight is past it", EVENING, "2024-05-07T00:00", False),
    ("00:00-24:00: the whole day", SATURDAY, "2024-05-11T00:00", True),
    ("00:00-24:00: to its last minute", SATURDAY, "2024-05-11T23:59", True),
    ("00:00-24:00: not the next day", SATURDAY, "2024-05-12T00:00", False),
    ("DST day: local hours kept", EARLY_SUNDAY, "2024-03-31T07:30", True),
    ("DST day: not the old offset", EARLY_SUNDAY, "2024-03-31T08:30", False),
    ("winter: UTC+1", EARLY_SUNDAY, "2024-03-24T08:30", True),
]


@pytest.mark.parametrize(
    ("window", "now", "expected"), [c[1:] for c in IN_WINDOW], ids=[c[0] for c in IN_WINDOW]
)
def test_in_window(window: DeployWindow, now: str, expected: bool) -> None:
    assert in_window(window, utc(now)) is expected


NEXT_OPEN = [
    ("open now: now", OFFICE, "2024-05-06T10:00", "2024-05-06T10:00"),
    ("Monday evening: Tuesday 09:00", OFFICE, "2024-05-06T17:00", "2024-05-07T07:00"),
    ("Thursday evening: next Monday", OFFICE, "2024-05-09T17:00", "2024-05-13T07:00"),
    ("early Monday: same day", OFFICE, "2024-05-06T05:00", "2024-05-06T07:00"),
    ("overnight: Friday 22:00", FRIDAY_NIGHT, "2024-05-11T05:00", "2024-05-17T20:00"),
    ("across the DST change", EARLY_SUNDAY, "2024-03-25T00:00", "2024-03-31T07:00"),
]


@pytest.mark.parametrize(
    ("window", "now", "expected"), [c[1:] for c in NEXT_OPEN], ids=[c[0] for c in NEXT_OPEN]
)
def test_next_open(window: DeployWindow, now: str, expected: str) -> None:
    assert next_open(window, utc(now)) == utc(expected)


def test_other_timezones_compare_by_instant() -> None:
    new_york = datetime(2024, 5, 6, 6, 0, tzinfo=ZoneInfo("America/New_York"))  # 12:00 Berlin
    assert in_window(OFFICE, new_york)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        in_window(OFFICE, datetime(2024, 5, 6, 10, 0))


def test_start_equal_to_end_is_refused_not_guessed() -> None:
    # Validation makes such a Canary Invalid, so the engine never asks; were it asked,
    # neither "the whole day" nor "never" would be a safe guess.
    ambiguous = DeployWindow(days=["Sat"], start="09:00", end="09:00")
    with pytest.raises(ValueError, match="start equals end"):
        in_window(ambiguous, utc("2024-05-11T09:00"))
    with pytest.raises(ValueError, match="start equals end"):
        next_open(ambiguous, utc("2024-05-11T09:00"))


def test_a_window_without_days_never_opens() -> None:
    never = DeployWindow(days=[], start="09:00", end="10:00")
    assert not in_window(never, utc("2024-05-06T09:30"))
    with pytest.raises(ValueError, match="never opens"):
        next_open(never, utc("2024-05-06T09:30"))


# ---------------------------------------------------------------- blackouts


def freeze(start: str, end: str, reason: str = "freeze") -> Blackout:
    return Blackout(start=start, end=end, reason=reason)


def office(*blackouts: Blackout) -> DeployWindow:
    return OFFICE.model_copy(update={"blackouts": list(blackouts)})


# Berlin office hours on Monday 2024-05-06 are 07:00-14:00 UTC.
MONDAY_MORNING = freeze("2024-05-06T09:00:00+02:00", "2024-05-06T11:00:00+02:00")
MONDAY_LONG = freeze("2024-05-06T08:00:00Z", "2024-05-06T18:00:00Z", "sale")
TUESDAY_OPENING = freeze("2024-05-06T20:00:00Z", "2024-05-07T08:30:00Z")
WEEK = freeze("2024-05-06T00:00:00Z", "2024-05-13T00:00:00Z")
NEW_YORK_EARLY = freeze("2024-05-06T03:00:00-05:00", "2024-05-06T04:00:00-05:00")
LATER = freeze("2024-05-06T12:00:00Z", "2024-05-06T13:00:00Z")
ONLY_BLACKOUTS = DeployWindow(blackouts=[MONDAY_LONG])

IN_WINDOW_BLACKOUTS = [
    ("blackout in open hours: closed", office(MONDAY_MORNING), "2024-05-06T08:00", False),
    ("blackout start is inclusive", office(MONDAY_MORNING), "2024-05-06T07:00", False),
    ("blackout end is exclusive", office(MONDAY_MORNING), "2024-05-06T09:00", True),
    ("its own offset, not Berlin's", office(NEW_YORK_EARLY), "2024-05-06T08:30", False),
    ("after the blackout", office(MONDAY_MORNING), "2024-05-06T10:00", True),
    ("a blackout later today", office(LATER), "2024-05-06T10:00", True),
    ("blackouts only: before", ONLY_BLACKOUTS, "2024-05-06T07:59", True),
    ("blackouts only: during", ONLY_BLACKOUTS, "2024-05-06T08:00", False),
    ("blackouts only: Sunday after", ONLY_BLACKOUTS, "2024-05-12T03:00", True),
]


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [c[1:] for c in IN_WINDOW_BLACKOUTS],
    ids=[c[0] for c in IN_WINDOW_BLACKOUTS],
)
def test_in_window_with_blackouts(window: DeployWindow, now: str, expected: bool) -> None:
    assert in_window(window, utc(now)) is expected


NEXT_OPEN_BLACKOUTS = [
    ("ends in open hours: its end", office(MONDAY_MORNING), "2024-05-06T08:00", "2024-05-06T09:00"),
    ("ends after closing: next day", office(MONDAY_LONG), "2024-05-06T10:00", "2024-05-07T07:00"),
    ("covers the next opening", office(TUESDAY_OPENING), "2024-05-06T17:00", "2024-05-07T08:30"),
    ("a whole week", office(WEEK), "2024-05-06T10:00", "2024-05-13T07:00"),
    ("back to back", office(MONDAY_LONG, TUESDAY_OPENING), "2024-05-06T10:00",
     "2024-05-07T08:30"),
    ("overlapping", office(MONDAY_MORNING, LATER, MONDAY_LONG), "2024-05-06T08:00",
     "2024-05-07T07:00"),
    ("open now: now", office(LATER), "2024-05-06T10:00", "2024-05-06T10:00"),
    ("blackouts only: its end", ONLY_BLACKOUTS, "2024-05-06T10:00", "2024-05-06T18:00"),
]


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [c[1:] for c in NEXT_OPEN_BLACKOUTS],
    ids=[c[0] for c in NEXT_OPEN_BLACKOUTS],
)
def test_next_open_skips_blackouts(window: DeployWindow, now: str, expected: str) -> None:
    assert next_open(window, utc(now)) == utc(expected)


def test_of_overlapping_blackouts_the_one_ending_last_holds() -> None:
    window = office(MONDAY_MORNING, MONDAY_LONG)
    assert blackout_at(window, utc("2024-05-06T08:30")) == MONDAY_LONG
    assert blackout_at(window, utc("2024-05-06T18:00")) is None


def test_a_blackout_ending_before_it_starts_holds_never() -> None:
    # Validation makes such a Canary Invalid; the engine must still not trip on it.
    backwards = freeze("2024-05-06T12:00:00Z", "2024-05-06T08:00:00Z")
    assert in_window(office(backwards), utc("2024-05-06T10:00"))


def test_one_of_start_and_end_is_refused() -> None:
    half = DeployWindow(start="09:00", blackouts=[LATER])
    with pytest.raises(ValueError, match="give both or neither"):
        in_window(half, utc("2024-05-06T09:30"))
