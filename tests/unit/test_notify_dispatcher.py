"""The dispatcher: bounded retries with exponential backoff (on a fake clock), the outcome
recorded in the status, and a failure told by a Warning Event and the reported outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from fake_kube import FakeKube

from canary.api.status import CanaryStatus, DeliveryState, NotificationRecord, Phase, SinkDelivery
from canary.notify.config import CONFIG_KEY, ConfigSource
from canary.notify.dispatcher import Dispatcher

pytestmark = pytest.mark.unit

HOME, NS, NAME = "canary-system", "shop", "checkout"
CONFIG = """
sinks: [{name: chat, type: mattermost, urlSecret: {name: hooks, key: chat}}]
routes: [{sinks: [chat]}]
delivery: {maxAttempts: 4, backoffSeconds: 0.5}
"""
RECORD = NotificationRecord(
    id="abc123",
    trigger="rolledBack",
    reason="AnalysisFailed",
    phase=Phase.ROLLED_BACK,
    revision="r2",
    message="rolled back revision r2",
    time="2024-05-06T10:00:00Z",
    sinks=[SinkDelivery(name="chat")],
)


class Rig:
    def __init__(self, answer: Callable[[int], int]) -> None:
        """`answer(n)`: the status code of the nth POST."""
        self.kube = FakeKube()
        self.kube.seed_config_map(HOME, "canary-notifications", {CONFIG_KEY: CONFIG})
        self.kube.seed_secret(HOME, "hooks", {"chat": "https://chat.example/hooks/xyz"})
        self.kube.seed_canary(
            {
                "metadata": {"name": NAME, "namespace": NS},
                "spec": {},
                "status": {"notifications": [RECORD.wire()]},
            }
        )
        self.now = 0.0
        self.posts = 0
        self.reports: list[tuple[str, str]] = []

        def receive(request: httpx.Request) -> httpx.Response:
            self.posts += 1
            return httpx.Response(answer(self.posts))

        source = ConfigSource(self.kube, HOME, clock=lambda: self.now)
        self.dispatcher = Dispatcher(
            self.kube,
            source,
            clock=lambda: self.now,
            transport=httpx.MockTransport(receive),
            report=lambda sink, outcome: self.reports.append((sink, outcome)),
        )

    def delivery(self) -> SinkDelivery:
        status = CanaryStatus.model_validate(self.kube.get_canary(NS, NAME)["status"])
        return status.notifications[0].sinks[0]

    def offer(self) -> None:
        status = CanaryStatus.model_validate(self.kube.get_canary(NS, NAME)["status"])
        self.dispatcher.offer(NS, NAME, status.notifications)


def test_retries_back_off_exponentially_until_the_receiver_takes_it() -> None:
    rig = Rig(lambda n: 503 if n < 3 else 200)
    rig.offer()
    assert rig.dispatcher.run_due() == 1
    rig.offer()  # a reconcile meanwhile: already queued, not twice
    rig.now = 0.49
    assert rig.dispatcher.run_due() == 0  # 0.5 s after the first failure
    rig.now = 0.5
    assert rig.dispatcher.run_due() == 1
    rig.now = 1.49
    assert rig.dispatcher.run_due() == 0  # then 1 s
    rig.now = 1.5
    assert rig.dispatcher.run_due() == 1
    assert rig.posts == 3
    assert rig.reports == [("chat", "retried"), ("chat", "retried"), ("chat", "sent")]
    assert rig.delivery() == SinkDelivery(name="chat", state=DeliveryState.SENT, attempts=3)
    assert rig.kube.events == []
    rig.offer()  # Sent: nothing more to do
    rig.now = 100.0
    assert rig.dispatcher.run_due() == 0 and rig.dispatcher.idle()


def test_attempts_are_bounded_and_a_failure_is_a_warning_event() -> None:
    rig = Rig(lambda n: 502)
    rig.offer()
    for _ in range(10):
        rig.dispatcher.run_due()
        rig.now += 60.0
    assert rig.posts == 4
    assert [o for _, o in rig.reports] == ["retried"] * 3 + ["failed"]
    delivery = rig.delivery()
    assert delivery.state is DeliveryState.FAILED and delivery.attempts == 4
    assert delivery.error is not None and "chat.example answered 502" in delivery.error
    [(kind, reason, message)] = rig.kube.events
    assert (kind, reason) == ("Warning", "NotificationFailed")
    assert "rolledBack" in message and "sink chat" in message and "after 4 attempt(s)" in message
    assert "xyz" not in message  # the URL's token


def test_a_receiver_that_refuses_the_request_is_not_asked_again() -> None:
    rig = Rig(lambda n: 404)
    rig.offer()
    rig.dispatcher.run_due()
    rig.now = 100.0
    rig.dispatcher.run_due()
    assert rig.posts == 1 and rig.delivery().state is DeliveryState.FAILED


def test_a_sink_removed_from_the_configuration_fails_its_pending_deliveries() -> None:
    rig = Rig(lambda n: 200)
    rig.kube.seed_config_map(HOME, "canary-notifications", {CONFIG_KEY: "sinks: []\nroutes: []"})
    rig.offer()
    rig.dispatcher.run_due()
    assert rig.posts == 0
    assert "no sink 'chat' is configured any more" in (rig.delivery().error or "")


def test_a_slow_receiver_holds_up_no_offer() -> None:
    """offer() is what a reconcile calls: it must return at once while workers wait."""
    release = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        release.wait(5.0)
        return httpx.Response(200)

    kube = FakeKube()
    kube.seed_config_map(HOME, "canary-notifications", {CONFIG_KEY: CONFIG})
    kube.seed_secret(HOME, "hooks", {"chat": "https://chat.example/hooks/xyz"})
    kube.seed_canary(
        {
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {},
            "status": {"notifications": [RECORD.wire()]},
        }
    )
    dispatcher = Dispatcher(kube, ConfigSource(kube, HOME), transport=httpx.MockTransport(slow))
    stop = threading.Event()
    threads = dispatcher.run(stop, workers=1)
    try:
        dispatcher.offer(NS, NAME, [RECORD])
        time.sleep(0.1)  # the worker is now inside the POST
        started = time.monotonic()
        for i in range(50):
            dispatcher.offer(NS, f"other-{i}", [RECORD])
        assert time.monotonic() - started < 0.1
    finally:
        release.set()
        stop.set()
        for thread in threads:
            thread.join(5.0)
