"""The canary.dev/request annotation: read strictly, and a bad one never wedges a Canary."""

from __future__ import annotations

import json

import pytest
from engine_support import canary, decide, events, observe, rolling

from canary.controller import parse_request
from canary.engine.actions import ManualRequest, RejectedRequest
from canary.models import Phase

pytestmark = pytest.mark.unit

ANNOTATION = "canary.dev/request"


def parsed(raw: str, last_id: str | None = None) -> ManualRequest | RejectedRequest | None:
    return parse_request({ANNOTATION: raw}, last_id)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"action": "rollback"}', "action"),  # the typo that wedged a Canary
        ('{"id": "r1", "action": "rollback"}', "action"),
        ('{"id": "r1", "action": null}', "action"),
        ('{"id": "r1", "action": ["abort"]}', "action"),
        ('{"id": "r1", "action": {"do": "abort"}}', "action"),
        ('{"id": "r1", "action": "abort", "full": "no"}', "full"),
        ('{"id": "r1", "action": "abort", "at": "yesterday"}', "yesterday"),
        ('{"id": "r1", "action": "abort", "extra": 1}', "extra"),
        ("not json at all", "JSON"),
        ("[1, 2]", "the annotation"),
    ],
)
def test_a_malformed_request_is_rejected_with_the_field_named(raw: str, field: str) -> None:
    request = parsed(raw)
    assert isinstance(request, RejectedRequest)
    assert field in request.why


def test_a_well_formed_request_is_read_with_its_types() -> None:
    raw = json.dumps(
        {
            "id": "r1",
            "action": "promote",
            "full": True,
            "user": "alice",
            "at": "2024-05-06T09:59:55+00:00",
        }
    )
    request = parsed(raw)
    assert isinstance(request, ManualRequest)
    assert (request.id, request.action, request.full, request.user) == (
        "r1",
        "promote",
        True,
        "alice",
    )
    assert parsed(raw, last_id="r1") is None  # consumed already


def test_the_same_bad_annotation_is_reported_once() -> None:
    first = parsed('{"action": "rollback"}')
    assert isinstance(first, RejectedRequest) and first.id.startswith("invalid-")
    assert parsed('{"action": "rollback"}', last_id=first.id) is None


def test_a_rejected_request_is_consumed_with_a_warning_and_the_rollout_goes_on() -> None:
    rejected = RejectedRequest("r1", "action: Input should be 'promote', 'abort', ...")
    # steps[2] sets weight 50: the rollout moves on in the same call
    decision = decide(canary(rolling(2, 10)), observe(request=rejected))
    assert decision.status.last_request_id == "r1"
    assert decision.status.phase is Phase.PROGRESSING and decision.status.canary_weight == 50
    warnings = [e for e in events(decision) if e.reason == "RequestRejected"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert "action: Input should be" in warnings[0].message
    assert "`canary promote|abort|pause|resume|retry`" in warnings[0].message


def test_a_corrected_annotation_with_the_same_id_is_a_new_request() -> None:
    bad = parsed('{"id": "r1", "action": "promote", "full": "yes"}')
    assert isinstance(bad, RejectedRequest)
    fixed = parsed('{"id": "r1", "action": "promote", "full": true}', last_id=bad.id)
    assert isinstance(fixed, ManualRequest) and fixed.full


def test_deeply_nested_json_is_rejected_not_a_crash() -> None:
    request = parsed("[" * 100_000)
    assert isinstance(request, RejectedRequest)
