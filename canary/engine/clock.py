"""Timestamps as the status stores them: ISO-8601 UTC strings with second precision.

The engine never reads the wall clock; callers pass `now`. Keeping the string form in one
place means every status field parses and prints the same way (the Kubernetes style,
"2024-05-01T09:30:00Z").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is a caller bug, because its zone is a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; pass an aware datetime")
    return moment.astimezone(UTC)


def to_iso(moment: datetime) -> str:
    return utc(moment).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


def seconds_since(text: str | None, now: datetime) -> float | None:
    """Seconds from the stored timestamp `text` to `now`; None when it was never set."""
    if text is None:
        return None
    return (utc(now) - from_iso(text)).total_seconds()


def shift(text: str | None, seconds: float) -> str | None:
    """The stored timestamp moved later by `seconds` (used to freeze a step clock)."""
    if text is None:
        return None
    return to_iso(from_iso(text) + timedelta(seconds=seconds))
