"""The web provider against a real HTTP server on 127.0.0.1 answering canned JSON."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from provider_contract import COVERED, SCALAR, MetricProviderContract

from canary.api.analysis_template import Metric
from canary.engine.samples import MetricTask, ProviderFailure, ScalarSample
from canary.errors import PermanentError
from canary.providers.base import MetricProvider
from canary.providers.registry import PLUGINS, ProviderRegistry, plugin

pytestmark = pytest.mark.unit


class Endpoint:
    """Answers every request with ``(status, body)``; records paths and headers."""

    def __init__(self) -> None:
        self.status, self.body = 200, "{}"
        self.seen: list[tuple[str, str, dict[str, str], str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("")

            def do_POST(self) -> None:
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())

            def _answer(self, body: str) -> None:
                endpoint.seen.append((self.command, self.path, dict(self.headers), body))
                data = endpoint.body.encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, document: Any, status: int = 200) -> None:
        self.status = status
        self.body = document if isinstance(document, str) else json.dumps(document)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.server.shutdown()


def web_metric(url: str, json_path: str = "$.data.ratio", **more: Any) -> Metric:
    return Metric.model_validate(
        {
            "name": "slo",
            "provider": {"web": {"url": url, "jsonPath": json_path, **more}},
            "thresholdRange": {"max": 0.05},
        }
    )


def build(metric: Metric) -> MetricProvider:
    return ProviderRegistry().provider_for(metric, timeout=2)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class TestWebProviderContract(MetricProviderContract):
    plugin = "web"

    @pytest.fixture(autouse=True)
    def _endpoint(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def threshold_metric(self) -> Metric:
        return web_metric(self.endpoint.url + "/ratio?service={{args.service}}")

    def serving(self, *, scalar: float | None = SCALAR, **_: Any) -> MetricProvider:
        self.endpoint.answer({"data": {"ratio": scalar}})
        return build(self.threshold_metric())

    def unreachable(self) -> tuple[MetricProvider, str]:
        url = closed_port_url()
        return build(web_metric(url + "/ratio?service={{args.service}}")), url

    def server_error(self) -> tuple[MetricProvider, str]:
        self.endpoint.answer("upstream exploded", status=503)
        return build(self.threshold_metric()), self.endpoint.url

    def rejecting_query(self) -> MetricProvider:
        self.endpoint.answer({"error": "unknown service"}, status=400)
        return build(self.threshold_metric())


def task(metric: Metric, **args: str) -> MetricTask:
    return MetricTask(key="t/slo", metric=metric, args=args or {"service": "checkout"})


def test_every_registered_plugin_passes_the_contract_suite() -> None:
    assert set(PLUGINS) <= COVERED, f"no contract test for {set(PLUGINS) - COVERED}"
    for name in PLUGINS:
        assert plugin(name).name == name


def test_an_arg_cannot_change_where_the_request_goes(endpoint: Endpoint) -> None:
    endpoint.answer({"data": {"ratio": 0.5}})
    metric = web_metric(endpoint.url + "/ratio?service={{args.service}}")
    assert build(metric).measure(task(metric, service="a&b=/../x#y")) == ScalarSample(0.5)
    assert endpoint.seen[-1][1] == "/ratio?service=a%26b%3D%2F..%2Fx%23y"


def test_headers_and_a_post_body_carry_args_escaped(endpoint: Endpoint) -> None:
    endpoint.answer({"data": [{"ratio": "0.25"}]})
    metric = web_metric(
        endpoint.url + "/q",
        "$.data[0].ratio",
        method="POST",
        headers=[{"name": "X-Service", "value": "{{args.service}}"}],
        body='{"service": "{{args.service}}"}',
    )
    assert build(metric).measure(task(metric, service='say "hi"')) == ScalarSample(0.25)
    method, _, headers, body = endpoint.seen[-1]
    assert (method, headers["X-Service"], json.loads(body)) == (
        "POST",
        'say "hi"',
        {"service": 'say "hi"'},
    )
    sample = build(metric).measure(task(metric, service="x\r\nEvil: 1"))
    assert isinstance(sample, ProviderFailure) and "line break" in sample.message


@pytest.mark.parametrize(
    ("document", "expected"),
    [({"data": {"ratio": True}}, 1.0), ({"data": {}}, None), ({"data": {"ratio": 3}}, 3.0)],
)
def test_the_json_path_picks_one_number(
    endpoint: Endpoint, document: Any, expected: float | None
) -> None:
    endpoint.answer(document)
    metric = web_metric(endpoint.url + "/r")
    assert build(metric).measure(task(metric)) == ScalarSample(expected)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"data": {"ratio": "high"}}, "not a number"),
        ("<html>oops</html>", "did not answer with JSON"),
        ({"data": [{"ratio": 1}, {"ratio": 2}]}, "matched 2 values"),
    ],
)
def test_what_is_not_one_number_is_a_permanent_failure(
    endpoint: Endpoint, document: Any, message: str
) -> None:
    endpoint.answer(document)
    metric = web_metric(
        endpoint.url + "/r", "$.data[*].ratio" if "matched" in message else "$.data.ratio"
    )
    sample = build(metric).measure(task(metric))
    assert isinstance(sample, ProviderFailure) and not sample.transient
    assert message in sample.message and endpoint.url in sample.message


def test_a_bad_json_path_is_a_permanent_error_naming_it(endpoint: Endpoint) -> None:
    with pytest.raises(PermanentError, match=r"jsonPath '\$\.a\[' is not a JSONPath"):
        build(web_metric(endpoint.url, "$.a["))


def test_lint_checks_the_json_path_and_the_args() -> None:
    check = plugin("web").check
    metric = web_metric("http://x/{{args.svc}}?q={{variant}}", "$.a[").model_dump(by_alias=True)
    problems = {
        (p.field, p.message.split(" (")[0]) for p in check(metric, "spec.metrics[0]", {"service"})
    }
    assert problems == {
        ("spec.metrics[0].provider.web.jsonPath", "is not a JSONPath"),
        ("spec.metrics[0].provider.web.url", "uses {{args.svc}}, which is not declared"),
        ("spec.metrics[0].provider.web.url", "unknown placeholder {{variant}}"),
    }
