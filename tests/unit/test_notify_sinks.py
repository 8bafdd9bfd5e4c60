"""Notification sinks: the contract every registered sink passes (against a real local HTTP
receiver), and each sink's own payload."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator

import httpx
import pytest

from canary.errors import PermanentError
from canary.notify import registry
from canary.notify.base import DeliveryError, Notification, Sink, Trigger
from canary.sandbox.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.unit

ROLLED_BACK = Notification(
    id="4f2a9c0e1b7d",
    trigger=Trigger.ROLLED_BACK,
    namespace="shop",
    name="checkout",
    revision="44a2c54f54",
    phase="RolledBack",
    reason="AnalysisFailed",
    message="rolled back revision 44a2c54f54: error-rate: canary 25% vs stable 0% (Fail)",
    time="2024-05-06T10:00:00Z",
)
SECRET_PATH = "/services/T000/B000/s3cr3t-t0ken"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=2.0) as c:
        yield c


# ------------------------------------------------------------------ the contract


@pytest.mark.parametrize("type_", registry.SINKS)
class TestSinkContract:
    def test_it_is_a_sink_named_as_configured(self, type_: str) -> None:
        sink = registry.build(type_, "team-chat", "http://127.0.0.1:9/")
        assert isinstance(sink, Sink) and sink.name == "team-chat"
        for method in ("payload", "send"):
            assert inspect.signature(getattr(type(sink), method)) == inspect.signature(
                getattr(Sink, method)
            ), method

    def test_the_payload_is_json_and_says_what_happened(self, type_: str) -> None:
        sink = registry.build(type_, "n", "http://127.0.0.1:9/")
        text = json.dumps(sink.payload(ROLLED_BACK))
        for fact in ("shop/checkout", "rolled back", "44a2c54f54", "canary 25% vs stable 0%"):
            assert fact in text, fact
        assert sink.payload(ROLLED_BACK) == sink.payload(ROLLED_BACK)  # pure

    def test_one_send_is_one_post_of_the_payload(
        self, type_: str, receiver: WebhookReceiver, client: httpx.Client
    ) -> None:
        sink = registry.build(type_, "n", receiver.url("/hook"))
        sink.send(client, ROLLED_BACK)
        [got] = receiver.received
        assert got.path == "/hook" and "json" in got.content_type
        assert got.body == sink.payload(ROLLED_BACK)

    @pytest.mark.parametrize(
        ("status", "retry"),
        [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False)],
    )
    def test_a_refusal_says_whether_to_retry(
        self,
        type_: str,
        status: int,
        retry: bool,
        receiver: WebhookReceiver,
        client: httpx.Client,
    ) -> None:
        receiver.status = status
        sink = registry.build(type_, "n", receiver.url(SECRET_PATH))
        with pytest.raises(DeliveryError) as caught:
            sink.send(client, ROLLED_BACK)
        assert caught.value.retry is retry
        assert str(status) in str(caught.value)
        assert "s3cr3t" not in str(caught.value)  # the URL's token stays out of Events

    def test_an_unreachable_or_slow_receiver_is_worth_retrying(
        self, type_: str, receiver: WebhookReceiver
    ) -> None:
        sink = registry.build(type_, "n", "http://127.0.0.1:9" + SECRET_PATH)
        with httpx.Client(timeout=1.0) as client, pytest.raises(DeliveryError) as down:
            sink.send(client, ROLLED_BACK)
        assert down.value.retry and "s3cr3t" not in str(down.value)
        receiver.delay = 0.5
        slow = registry.build(type_, "n", receiver.url(SECRET_PATH))
        with httpx.Client(timeout=0.1) as client, pytest.raises(DeliveryError) as late:
            slow.send(client, ROLLED_BACK)
        assert late.value.retry and "in time" in str(late.value)


def test_an_unknown_sink_type_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(
        PermanentError,
        match="'slak' is not a sink type; known: cloudevents, mattermost, slack, teams",
    ):
        registry.plugin("slak")


# ------------------------------------------------------------------ each sink's payload


def test_slack_and_mattermost_get_text_and_one_coloured_attachment() -> None:
    for type_ in ("slack", "mattermost"):
        body = registry.build(type_, "chat", "https://hooks.example/x").payload(ROLLED_BACK)
        assert body["text"].startswith("shop/checkout: rolled back: rolled back revision")
        [attachment] = body["attachments"]
        assert attachment["color"] == "#d93f0b"
        fields = {f["title"]: f["value"] for f in attachment["fields"]}
        assert fields == {
            "Canary": "shop/checkout",
            "Revision": "44a2c54f54",
            "Phase": "RolledBack",
            "Reason": "AnalysisFailed",
        }
        assert attachment["ts"] == 1714989600


def test_teams_gets_an_adaptive_card() -> None:
    body = registry.build("teams", "t", "https://example.webhook.office.com/x").payload(ROLLED_BACK)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, message, facts = card["body"]
    assert title["text"] == "shop/checkout: rolled back" and title["color"] == "attention"
    assert message["text"] == ROLLED_BACK.message
    assert {"title": "Revision", "value": "44a2c54f54"} in facts["facts"]


def test_cloudevents_is_a_structured_event_whose_id_is_the_notifications(
    receiver: WebhookReceiver, client: httpx.Client
) -> None:
    sink = registry.build("cloudevents", "audit", receiver.url("/events"))
    sink.send(client, ROLLED_BACK)
    [got] = receiver.received
    assert got.content_type.startswith("application/cloudevents+json")
    event = got.body
    assert {k: event[k] for k in ("specversion", "id", "type", "subject", "time")} == {
        "specversion": "1.0",
        "id": "4f2a9c0e1b7d",
        "type": "dev.canary.rollout.rolledBack",
        "subject": "shop/checkout",
        "time": "2024-05-06T10:00:00Z",
    }
    assert event["source"] == "/apis/canary.dev/v1alpha1/namespaces/shop/canaries/checkout"
    assert event["data"]["reason"] == "AnalysisFailed"
    assert event["data"]["revision"] == "44a2c54f54"
