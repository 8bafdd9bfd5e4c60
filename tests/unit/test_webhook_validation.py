"""spec.webhooks in canary.validation: each problem names the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from canary.api.webhooks import WEBHOOK_TYPES
from canary.validation import validate_canary

pytestmark = pytest.mark.unit


def findings(*hooks: dict[str, Any]) -> list[str]:
    canary = {
        "apiVersion": "canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "checkout"},
        "spec": {
            "targetRef": {"name": "checkout"},
            "service": {"port": 80},
            "steps": [{"setWeight": 10}],
            "webhooks": list(hooks),
        },
    }
    return [str(f) for f in validate_canary(canary, {})]


def hook(**fields: Any) -> dict[str, Any]:
    return {"name": "gate", "type": "confirm-promotion", "url": "http://gate.ops/ok", **fields}


def test_a_valid_webhook_of_each_type_has_no_findings() -> None:
    types = WEBHOOK_TYPES
    hooks = [hook(name=t, type=t, timeout="5s", retries=0, metadata={"k": "v"}) for t in types]
    assert findings(*hooks) == []


def test_an_unknown_type_names_the_allowed_ones() -> None:
    (finding,) = findings(hook(type="pre-rolout"))
    assert finding.startswith("spec.webhooks[0].type: 'pre-rolout' is not allowed")
    for allowed in ("confirm-rollout", "pre-rollout", "rollback", "load-test", "post-rollout"):
        assert allowed in finding


def test_names_are_unique() -> None:
    (finding,) = findings(hook(), hook(type="rollback"))
    assert finding.startswith("spec.webhooks[1].name: 'gate' repeats the name of spec.webhooks[0]")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://gate.ops/ok", "is not an http:// or https:// URL"),
        ("http:///ok", "has no host"),
        ("gate.ops/ok", "is not an http:// or https:// URL"),
        ("http://gate.ops/ok\r\nX-Injected: 1", "contains whitespace or a control character"),
        ("http://gate.ops/ok HTTP/1.1", "contains whitespace or a control character"),
        ("http://user:secret@gate.ops/ok", "carries credentials"),
        ("http://[::1/ok", "is not a URL"),
    ],
)
def test_a_url_must_be_an_http_url_with_a_host_and_nothing_more(url: str, problem: str) -> None:
    (finding,) = findings(hook(url=url))
    assert finding.startswith("spec.webhooks[0].url: ") and problem in finding
    assert "write an http:// or https:// URL with a host" in finding


def test_metadata_values_are_strings() -> None:
    (finding,) = findings(hook(metadata={"retries": 3}))
    assert finding.startswith("spec.webhooks[0].metadata.retries: 3 is not a string")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timeout": "2m"}, "spec.webhooks[0].timeout: '2m' is above the maximum of 1m"),
        ({"timeout": "0s"}, "spec.webhooks[0].timeout: '0s' gives no time to answer"),
        ({"timeout": "soon"}, "spec.webhooks[0].timeout: 'soon'"),
        ({"retries": 9}, "spec.webhooks[0].retries: 9 is above the maximum 5"),
        ({"retries": -1}, "spec.webhooks[0].retries: -1 is below the minimum 0"),
    ],
)
def test_timeouts_and_retries_are_bounded(fields: dict[str, Any], expected: str) -> None:
    (finding,) = findings(hook(**fields))
    assert finding.startswith(expected)
