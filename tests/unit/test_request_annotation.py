"""The canary.dev/request annotation: read strictly, a bad one never wedges a Canary, an
untimely one is refused, and what the CLI writes is the form the admission policy checks."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_support import NOW, canary, decide, events, observe, rolling
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from canary.api import request_codec
from canary.api.request_codec import RequestAnnotation
from canary.api.status import Phase, RequestOutcome
from canary.controller.observe import parse_request
from canary.engine.actions import ManualRequest, RejectedRequest
from canary.errors import PermanentError
from canary.kube.client import Kube

pytestmark = pytest.mark.unit

ANNOTATION = "canary.dev/request"
REPO = Path(__file__).resolve().parents[2]
SENT = "2024-05-06T09:59:55+00:00"  # 5 s before NOW


def parsed(raw: str, last_id: str | None = None) -> ManualRequest | RejectedRequest | None:
    return parse_request({ANNOTATION: raw}, last_id, NOW)


def request(**fields: Any) -> str:
    body = {"id": "r1", "action": "promote", "full": False, "user": "alice", "at": SENT}
    return json.dumps({**body, **fields})


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"action": "rollback"}', "action"),  # the typo that wedged a Canary
        (request(action="rollback"), "action"),
        (request(action=None), "action"),
        (request(action=["abort"]), "action"),
        (request(action={"do": "abort"}), "action"),
        (request(full="no"), "full"),
        (request(at="yesterday"), "yesterday"),
        (request(at="2024-05-06T09:59:55"), "time zone"),
        (request(extra=1), "extra"),
        (request(id="r 1"), "id"),
        (request(user='alice", "user": "admin'), "user"),
        (json.dumps({"id": "r1", "action": "promote", "user": "alice"}), "at"),
        (json.dumps({"id": "r1", "action": "promote", "at": SENT}), "user"),
        ("not json at all", "JSON"),
        ("[1, 2]", "the annotation"),
    ],
)
def test_a_malformed_request_is_rejected_with_the_field_named(raw: str, field: str) -> None:
    got = parsed(raw)
    assert isinstance(got, RejectedRequest)
    assert field in got.why


def test_a_well_formed_request_is_read_with_its_types() -> None:
    raw = request(full=True)
    got = parsed(raw)
    assert isinstance(got, ManualRequest)
    assert (got.id, got.action, got.full, got.user, got.at) == (
        "r1",
        "promote",
        True,
        "alice",
        NOW - timedelta(seconds=5),
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
    assert decision.status.last_request_outcome is RequestOutcome.REJECTED
    assert decision.status.last_request_message == rejected.why
    assert decision.status.phase is Phase.PROGRESSING and decision.status.canary_weight == 50
    warnings = [e for e in events(decision) if e.reason == "RequestRejected"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert "action: Input should be" in warnings[0].message
    assert "`canary promote|abort|pause|resume|retry|undo`" in warnings[0].message


def test_a_corrected_annotation_with_the_same_id_is_a_new_request() -> None:
    bad = parsed(request(full="yes"))
    assert isinstance(bad, RejectedRequest)
    fixed = parsed(request(full=True), last_id=bad.id)
    assert isinstance(fixed, ManualRequest) and fixed.full


def test_deeply_nested_json_is_rejected_not_a_crash() -> None:
    assert isinstance(parsed("[" * 100_000), RejectedRequest)


# ------------------------------------------------------------------ when it was sent


def sent(delta: timedelta) -> str:
    return request(at=(NOW + delta).isoformat())


@pytest.mark.parametrize("delta", [timedelta(minutes=-59), timedelta(0), timedelta(minutes=4)])
def test_a_request_from_the_last_hour_or_a_few_minutes_ahead_applies(delta: timedelta) -> None:
    assert isinstance(parsed(sent(delta)), ManualRequest)


def test_a_request_from_the_future_is_rejected_as_a_wrong_clock_or_forged_time() -> None:
    rejected = parsed(sent(timedelta(minutes=6)))
    assert isinstance(rejected, RejectedRequest) and rejected.id == "r1"
    assert "more than 5 minutes in the future" in rejected.why
    assert "2024-05-06T10:00:00+00:00" in rejected.why  # the controller's clock, to compare


@pytest.mark.parametrize(
    "raw", [request(at="1970-01-01T00:00:00+00:00"), sent(-timedelta(hours=2))]
)
def test_a_request_older_than_an_hour_when_first_seen_is_stale(raw: str) -> None:
    rejected = parsed(raw)
    assert isinstance(rejected, RejectedRequest) and rejected.id == "r1"
    assert "more than an hour old" in rejected.why and "send the request again" in rejected.why


def test_a_stale_request_is_reported_once_and_never_applied() -> None:
    stale = sent(-timedelta(hours=2))
    rejected = parsed(stale)
    assert isinstance(rejected, RejectedRequest)
    decision = decide(canary(rolling(2, 10)), observe(request=rejected))
    assert decision.status.last_request_id == "r1"
    assert [e.reason for e in events(decision)].count("RequestRejected") == 1
    assert decision.status.phase is not Phase.PROMOTING
    # GitOps applying the same annotation again changes nothing: it is consumed.
    assert parsed(stale, last_id=decision.status.last_request_id) is None


# ------------------------------------------------------------------ who sent it


def policy_pattern() -> re.Pattern[str]:
    """The canonical form, as manifests/admission.yaml's CEL matches it."""
    docs = yaml.safe_load_all((REPO / "manifests" / "admission.yaml").read_text())
    policy = next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")
    (canonical,) = [v for v in policy["spec"]["variables"] if v["name"] == "canonical"]
    # variables.newRequest.matches(r'...'): a CEL raw string holding an RE2 pattern, which
    # Python reads the same way for this subset.
    match = re.search(r"\.matches\(r'(.*)'\)$", canonical["expression"])
    assert match is not None
    return re.compile(match.group(1))


@pytest.mark.parametrize(
    "user",
    [
        "alice",
        "system:serviceaccount:shop:alice",
        "jürgen.müller@example.com",
        "arn:aws:iam::123456789012:role/" + "r" * 200,
        "x" * 256,
    ],
)
@pytest.mark.parametrize("full", [False, True])
def test_what_the_cli_writes_is_the_form_the_admission_policy_accepts(
    user: str, full: bool
) -> None:
    sent = request_codec.new_request("promote", user, NOW - timedelta(seconds=5), full=full)
    written = request_codec.encode(sent)
    assert policy_pattern().fullmatch(written), written
    assert written.count('"user":') == 1
    assert f'"user":"{user}"' in written  # what the policy compares with the username
    assert request_codec.decode(written, NOW) == sent
    assert isinstance(parsed(written), ManualRequest)


def test_a_request_is_sent_in_utc_to_the_second() -> None:
    local = datetime(2024, 5, 6, 11, 59, 55, 987654, tzinfo=timezone(timedelta(hours=2)))
    assert request_codec.new_request("abort", "alice", local).at == SENT


@pytest.mark.parametrize(
    "forged",
    [
        # a second "user" after the first: JSON parsers keep the last one
        '{"id":"r1","action":"abort","full":false,"user":"alice","at":"'
        + SENT
        + '","user":"admin@prod"}',
        # an escaped key that parses as "user"
        '{"id":"r1","action":"abort","full":false,"\\u0075ser":"admin@prod","user":"alice",'
        '"at":"' + SENT + '"}',
        '{"id":"r1","action":"abort","full":false,"user":"alice\\u0022","at":"' + SENT + '"}',
        # the same keys, spaced or reordered
        '{"id": "r1", "action": "abort", "full": false, "user": "alice", "at": "' + SENT + '"}',
        '{"user":"alice","id":"r1","action":"abort","full":false,"at":"' + SENT + '"}',
        '{"id":"r1","action":"abort","user":"alice","at":"' + SENT + '"}',
        '{"id":"r1","action":"abort","full":false,"user":"alice","at":"' + SENT + '"}\n',
    ],
)
def test_the_admission_pattern_refuses_anything_but_the_canonical_form(forged: str) -> None:
    assert not policy_pattern().fullmatch(forged)


@pytest.mark.parametrize("user", ['al"ice', "al\\ice", "al\nice", "x" * 257, ""])
def test_a_username_the_canonical_form_cannot_carry_is_refused(user: str) -> None:
    with pytest.raises(ValidationError, match="user"):
        RequestAnnotation(id="r1", action="abort", user=user, at=SENT)
    with pytest.raises(request_codec.UnsendableRequest, match="Fix: use a kubeconfig user"):
        request_codec.new_request("abort", user, NOW)


@pytest.fixture
def kube(tmp_path: Path) -> Kube:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return Kube(path)


@pytest.mark.parametrize(
    ("status", "says"),
    [(403, "system:basic-user"), (404, "Kubernetes 1.30 or later")],
)
def test_who_am_i_names_the_fix_when_the_server_will_not_say(
    kube: Kube, monkeypatch: pytest.MonkeyPatch, status: int, says: str
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ApiException(status=status, reason="Forbidden" if status == 403 else "Not Found")

    monkeypatch.setattr(kube.custom, "create_cluster_custom_object", refuse)
    with pytest.raises(PermanentError, match=r"SelfSubjectReview|selfsubjectreviews") as err:
        kube.whoami()
    assert says in str(err.value) and "Fix: " in str(err.value)
    assert "\n" not in str(err.value)
