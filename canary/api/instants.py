"""Moments a user writes in a spec (a blackout's start and end): RFC 3339 date-times with
their UTC offset, such as "2026-11-27T00:00:00-05:00" or "2026-12-24T00:00:00Z".

The offset is required and a bare date is refused: "2026-12-24" as an end reads as the
start of that day to some and as its end to others, and a time without an offset would
have to borrow one from the window's timezone, which shifts with daylight saving. A
written offset leaves nothing to guess.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# The CRD carries this too, so the API server refuses most mistakes before we see them;
# parse_instant also catches what a pattern cannot (month 13, 25:00).
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
_INSTANT = re.compile(INSTANT_PATTERN)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_EXAMPLE = '"2026-11-27T00:00:00-05:00", or with Z for UTC'


def parse_instant(text: str) -> datetime:
    """The aware datetime `text` names; raises ValueError "what is wrong; what to do"."""
    shown = repr(text[:40])
    if _DATE.fullmatch(text):
        raise ValueError(
            f"{shown} is a date without a time and UTC offset; write a date-time with its "
            f'offset, e.g. "{text}T00:00:00-05:00" for the start of that day at UTC-5'
        )
    if _NO_OFFSET.fullmatch(text):
        day, _, clock = text.replace(" ", "T").partition("T")
        clock = clock if clock.count(":") == 2 else f"{clock}:00"
        raise ValueError(
            f"{shown} has no UTC offset; add one, e.g. "
            f'"{day}T{clock}-05:00" or "{day}T{clock}Z" for UTC'
        )
    if not _INSTANT.fullmatch(text):
        raise ValueError(
            f"{shown} is not an RFC 3339 date-time; write one with its UTC offset, e.g. {_EXAMPLE}"
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{shown} is not a real date and time; check the month, day and hour, e.g. {_EXAMPLE}"
        ) from None


def _text(value: Any) -> Any:
    # An unquoted date-time in YAML read by PyYAML (`canary lint`) arrives as a datetime;
    # the API server keeps it a string. Judge both by the same text.
    if isinstance(value, date):
        return value.isoformat()
    return value


def _check_instant(value: str) -> str:
    parse_instant(value)
    return value


Instant = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(_check_instant),
    Field(json_schema_extra={"pattern": INSTANT_PATTERN}),
]
