"""controller/webhooks.py against a real HTTP server on 127.0.0.1 (http.server in a
thread): verdicts, retries, hanging and trickling endpoints bounded by their budget, and
no way for spec data to reach a header."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from canary.api.status import Verdict
from canary.controller.webhooks import budget, call_all, call_one
from canary.engine.hooks import WebhookCall

pytestmark = pytest.mark.unit


@dataclass
class Endpoint:
    url: str
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            state.received.append((self.path, dict(self.headers.items()), body))
            if self.path == "/hang":
                state.release.wait(30)
                return
            if self.path == "/trickle":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not state.release.wait(0.1):  # a byte now and then: no read times out
                    self.wfile.write(b"x")
                    self.wfile.flush()
                return
            code, text = {
                "/ok": (200, "fine"),
                "/freeze": (423, "change freeze\nuntil Monday"),
                "/redirect": (302, ""),
            }.get(self.path, (404, "no such hook"))
            data = text.encode()
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def hook(url: str, *, timeout: float = 2.0, retries: int = 0, **payload: Any) -> WebhookCall:
    body = {"name": "checkout", "namespace": "shop", "metadata": {}, **payload}
    return WebhookCall("gate", "confirm-promotion", url, timeout, retries, body)


def test_a_2xx_is_a_pass_and_the_body_is_the_rollouts_context(endpoint: Endpoint) -> None:
    result = call_one(hook(f"{endpoint.url}/ok", canaryWeight=50))
    assert (result.verdict, result.message) == (Verdict.PASS, "HTTP 200: fine")
    ((path, headers, body),) = endpoint.received
    assert path == "/ok" and headers["Content-Type"] == "application/json"
    assert body == {"name": "checkout", "namespace": "shop", "metadata": {}, "canaryWeight": 50}


def test_any_other_answer_is_a_fail_quoted_and_not_retried(endpoint: Endpoint) -> None:
    result = call_one(hook(f"{endpoint.url}/freeze", retries=3))
    assert result.verdict is Verdict.FAIL
    assert result.message == "HTTP 423: change freeze until Monday"
    assert len(endpoint.received) == 1
    assert call_one(hook(f"{endpoint.url}/redirect")).verdict is Verdict.FAIL  # not followed
    assert [p for p, _, _ in endpoint.received] == ["/freeze", "/redirect"]


def test_a_refused_connection_is_an_error_after_its_retries() -> None:
    pauses: list[float] = []
    result = call_one(hook("http://127.0.0.1:9/", retries=2), sleep=pauses.append)
    assert result.verdict is Verdict.ERROR
    assert "cannot reach http://127.0.0.1:9/" in result.message
    assert result.message.endswith("(3 attempts)")
    assert pauses == [0.5, 1.0]


def test_a_hanging_endpoint_costs_at_most_its_timeout_per_attempt(endpoint: Endpoint) -> None:
    call = hook(f"{endpoint.url}/hang", timeout=0.3, retries=1)
    started = time.monotonic()
    result = call_one(call)
    elapsed = time.monotonic() - started
    assert result.verdict is Verdict.ERROR
    assert "did not answer within" in result.message and "(2 attempts)" in result.message
    assert len(endpoint.received) == 2
    assert elapsed < budget(call) + 0.5  # 0.3 + 0.5 backoff + 0.3


def test_a_trickling_answer_is_cut_off_at_the_calls_budget(endpoint: Endpoint) -> None:
    call = hook(f"{endpoint.url}/trickle", timeout=0.5)
    started = time.monotonic()
    (result,) = call_all([call]).values()
    assert time.monotonic() - started < budget(call) + 1.5
    # Its status line said 200: the answer counts, with the part of the body read in time.
    assert result.verdict is Verdict.PASS


def test_a_reconciles_calls_run_side_by_side(endpoint: Endpoint) -> None:
    calls = [
        WebhookCall(f"hang-{i}", "load-test", f"{endpoint.url}/hang", 0.5, 0, {}) for i in range(4)
    ]
    beats: list[float] = []
    started = time.monotonic()
    results = call_all([*calls, hook(f"{endpoint.url}/ok")], lambda: beats.append(0))
    assert time.monotonic() - started < 1.5  # one timeout, not four
    assert {n: r.verdict for n, r in results.items()} == {
        **{f"hang-{i}": Verdict.ERROR for i in range(4)},
        "gate": Verdict.PASS,
    }
    assert beats  # the health check heard from the waiting worker


def test_metadata_cannot_inject_a_header(endpoint: Endpoint) -> None:
    sneaky = {"ticket": "CHG-1\r\nX-Injected: yes", "X-Also": "no"}
    result = call_one(hook(f"{endpoint.url}/ok", metadata=sneaky))
    assert result.verdict is Verdict.PASS
    ((_, headers, body),) = endpoint.received
    assert not {"X-Injected", "X-Also", "x-injected", "x-also"} & headers.keys()
    assert body["metadata"] == sneaky  # it arrives, as data


@pytest.mark.parametrize("suffix", ["/ok\r\nX-Injected: yes", "/ok HTTP/1.1\r\nHost: evil"])
def test_a_url_that_would_split_the_request_is_never_called(
    endpoint: Endpoint, suffix: str
) -> None:
    result = call_one(hook(endpoint.url + suffix))
    assert result.verdict is Verdict.ERROR
    assert result.message == "not called: the URL contains whitespace or a control character"
    assert endpoint.received == []
