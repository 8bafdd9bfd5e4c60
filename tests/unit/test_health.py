"""/healthz and /readyz: what Kubernetes' probes see of the controller."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from canary.controller.health import LIVE_SECONDS, READY_SECONDS, Health, serve

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> Health:
    return Health(clock)


@pytest.fixture
def url(health: Health) -> Iterator[str]:
    server = serve(health, 0, host="127.0.0.1")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_not_ready_until_the_api_server_answers(health: Health, url: str) -> None:
    assert get(f"{url}/healthz") == (200, "ok\n")
    code, text = get(f"{url}/readyz")
    assert code == 503 and "has not answered yet" in text
    health.contacted()
    assert get(f"{url}/readyz") == (200, "ok\n")


def test_a_silent_api_server_makes_it_unready_but_not_dead(
    health: Health, clock: Clock, url: str
) -> None:
    health.contacted()
    health.beat("worker-0")
    clock.now += READY_SECONDS + 1
    health.beat("worker-0")
    code, text = get(f"{url}/readyz")
    assert code == 503 and f"has not answered for {READY_SECONDS + 1:.0f}s" in text
    assert get(f"{url}/healthz")[0] == 200  # a restart would not bring the API server back


def test_a_stuck_worker_fails_liveness_and_readiness(
    health: Health, clock: Clock, url: str
) -> None:
    health.contacted()
    health.beat("worker-0")
    health.beat("worker-1")
    clock.now += LIVE_SECONDS + 1
    health.beat("worker-1")
    health.contacted()
    code, text = get(f"{url}/healthz")
    assert code == 503 and "worker-0" in text and "worker-1" not in text
    assert get(f"{url}/readyz")[0] == 503


def test_a_standby_replica_is_ready(health: Health, url: str) -> None:
    health.standing_by = True
    code, text = get(f"{url}/readyz")
    assert code == 200 and "standing by" in text


def test_other_paths_say_which_exist(url: str) -> None:
    code, text = get(f"{url}/metrics")
    assert code == 404 and "/healthz" in text
