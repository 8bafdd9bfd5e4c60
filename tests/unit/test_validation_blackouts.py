"""spec.deployWindow.blackouts, and a window with blackouts but no weekly hours: each bad
input gives one Finding naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from canary.api.canary import Canary
from canary.validation import validate_canary

pytestmark = pytest.mark.unit

SALE = {
    "start": "2026-11-27T00:00:00-05:00",
    "end": "2026-11-30T00:00:00-05:00",
    "reason": "holiday sale",
}


def _canary(window: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "targetRef": {"name": "checkout"},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}],
            "deployWindow": window,
        },
    }


def _blackout(**fields: Any) -> dict[str, Any]:
    return {"blackouts": [SALE, {**SALE, **fields}]}


GOOD = [
    (
        "weekly hours and blackouts",
        {"timezone": "America/New_York", "start": "09:00", "end": "16:00", "blackouts": [SALE]},
    ),
    ("blackouts only", {"blackouts": [SALE]}),
    ("overlapping blackouts", _blackout(start="2026-11-29T00:00:00Z", end="2026-12-02T00:00:00Z")),
    ("UTC and fractions", _blackout(start="2026-12-24T00:00:00.5Z", end="2026-12-27T00:00:00Z")),
    ("a blackout long over", _blackout(start="2020-01-01T00:00:00Z", end="2020-01-02T00:00:00Z")),
    ("weekly hours only, as before", {"days": ["Mon"], "start": "09:00", "end": "16:00"}),
]


@pytest.mark.parametrize("window", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_valid_windows(window: dict[str, Any]) -> None:
    obj = _canary(window)
    assert validate_canary(obj, None) == []
    Canary.model_validate(obj)  # and the engine gets it


BAD = [
    (
        "end before start",
        _blackout(end="2026-11-26T00:00:00-05:00"),
        "spec.deployWindow.blackouts[1].end",
        "is not after start",
        "later than start",
    ),
    (
        "end equals start",
        _blackout(end=SALE["start"]),
        "spec.deployWindow.blackouts[1].end",
        "is not after start",
        "later than start",
    ),
    (
        "end before start in other offsets",
        _blackout(start="2026-11-27T04:00:00Z", end="2026-11-27T00:00:00-03:00"),
        "spec.deployWindow.blackouts[1].end",
        "is not after start",
        "later than start",
    ),
    (
        "a bare date",
        _blackout(end="2026-12-24"),
        "spec.deployWindow.blackouts[1].end",
        "is a date without a time",
        '"2026-12-24T00:00:00',
    ),
    (
        "no offset",
        _blackout(start="2026-11-27T09:00"),
        "spec.deployWindow.blackouts[1].start",
        "has no UTC offset",
        '"2026-11-27T09:00:00Z"',
    ),
    (
        "not a time",
        _blackout(end="after the sale"),
        "spec.deployWindow.blackouts[1].end",
        "is not an RFC 3339 date-time",
        "with its UTC offset",
    ),
    (
        "no such day",
        _blackout(end="2026-02-30T00:00:00Z"),
        "spec.deployWindow.blackouts[1].end",
        "is not a real date and time",
        "check the month",
    ),
    (
        "no reason",
        {"blackouts": [{"start": SALE["start"], "end": SALE["end"]}]},
        "spec.deployWindow.blackouts[0].reason",
        "is required",
        "add reason",
    ),
    (
        "unknown field",
        _blackout(until="2026-12-01T00:00:00Z"),
        "spec.deployWindow.blackouts[1].until",
        "is not a known field",
        "start, end, reason",
    ),
    (
        "start without end",
        {"start": "09:00", "blackouts": [SALE]},
        "spec.deployWindow.end",
        "is missing while start is set",
        "or neither",
    ),
    (
        "end without start",
        {"end": "16:00"},
        "spec.deployWindow.start",
        "is missing while end is set",
        "or neither",
    ),
    (
        "days without hours",
        {"days": ["Mon"], "blackouts": [SALE]},
        "spec.deployWindow.days",
        "does nothing without start and end",
        "remove days",
    ),
    ("nothing at all", {}, "spec.deployWindow", "restricts nothing", "remove deployWindow"),
]


@pytest.mark.parametrize(
    ("window", "field", "message", "fix"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_windows(window: dict[str, Any], field: str, message: str, fix: str) -> None:
    findings = validate_canary(_canary(window), None)
    assert [f.field for f in findings] == [field], findings
    assert message in findings[0].message
    assert fix in findings[0].fix


def test_unquoted_yaml_date_times_are_read_as_written() -> None:
    # PyYAML (`canary lint`) turns an unquoted date-time into a datetime object.
    window = yaml.safe_load(
        "blackouts:\n"
        "  - {start: 2026-11-27T00:00:00-05:00, end: 2026-11-30T00:00:00-05:00, reason: sale}\n"
        "  - {start: 2026-12-28T00:00:00Z, end: 2026-12-27T00:00:00Z, reason: late}\n"
    )
    findings = validate_canary(_canary(window), None)
    assert [(f.field, "is not after start" in f.message) for f in findings] == [
        ("spec.deployWindow.blackouts[1].end", True)
    ]
