"""PrometheusMetricProvider against a tiny in-process HTTP server that speaks the query API.

The server is a real ``http.server`` on 127.0.0.1 serving canned JSON, so the whole
client stack (prometheus-api-client, requests, urllib3 retries and timeouts) runs for
real; only Prometheus itself is replaced. Integration tests use a real Prometheus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from provider_contract import BUCKETS, COUNTS, SCALAR, MetricProviderContract
from pydantic import ValidationError

from canary.api.analysis_template import Metric, Provider
from canary.engine.samples import (
    Buckets,
    BucketsSample,
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    ScalarSample,
)
from canary.errors import PermanentError
from canary.providers.base import MetricProvider, ProviderPlugin, Settings
from canary.providers.prometheus import PLUGIN as PROMETHEUS
from canary.providers.prometheus.client import PrometheusMetricProvider
from canary.providers.registry import ProviderRegistry, provider_for

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------- a fake Prometheus

Reply = tuple[int, Any]  # (HTTP status, JSON-able body or raw str)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def vector(*samples: tuple[Mapping[str, str], float]) -> Reply:
    result = [{"metric": dict(labels), "value": [1700000000.0, _fmt(v)]} for labels, v in samples]
    return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}


def scalar(value: float) -> Reply:
    return 200, {
        "status": "success",
        "data": {"resultType": "scalar", "result": [1700000000.0, _fmt(value)]},
    }


def api_error(status: int, error_type: str, error: str) -> Reply:
    return status, {"status": "error", "errorType": error_type, "error": error}


class FakePrometheus:
    """Answers /api/v1/query with ``self.handler(query)``; records what it was asked."""

    def __init__(self) -> None:
        self.handler: Callable[[str], Reply] = lambda query: vector()
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                params = parse_qs(urlsplit(self.path).query)
                params.update(parse_qs(body))
                self._answer(params)

            def _answer(self, params: dict[str, list[str]]) -> None:
                path = urlsplit(self.path).path
                query = params.get("query", [""])[0]
                fake.requests.append(
                    {"path": path, "params": params, "headers": dict(self.headers)}
                )
                if fake.delay:
                    time.sleep(fake.delay)
                if path != "/api/v1/query":
                    status, body = 404, "404 page not found\n"
                else:
                    status, body = fake.handler(query)
                raw = body if isinstance(body, str) else json.dumps(body)
                data = raw.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)  # the client may have given up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def queries(self) -> list[str]:
        return [r["params"].get("query", [""])[0] for r in self.requests]

    def reset(self) -> None:
        self.handler = lambda query: vector()
        self.delay = 0.0
        self.requests.clear()

    def reply(self, reply: Reply) -> None:
        self.handler = lambda query: reply

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus_server() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def prom(prometheus_server: FakePrometheus) -> Iterator[FakePrometheus]:
    prometheus_server.reset()
    yield prometheus_server
    prometheus_server.reset()


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connection refused


# ---------------------------------------------------------------- metrics used below

THRESHOLD_QUERY = (
    'sum(rate(http_requests_total{service="{{args.service}}", code=~"5.."}[5m]))'
    ' / sum(rate(http_requests_total{service="{{args.service}}"}[5m]))'
)
REQUESTS_QUERY = (
    'sum(increase(http_requests_total{service="{{args.service}}", '
    'variant="{{variant}}"}[{{window}}]))'
)
ERRORS_QUERY = (
    'sum(increase(http_requests_total{service="{{args.service}}", '
    'variant="{{variant}}", code=~"5.."}[{{window}}]))'
)
BUCKETS_QUERY = (
    "sum by (le) (increase(http_request_duration_seconds_bucket"
    '{service="{{args.service}}", variant="{{variant}}"}[{{window}}]))'
)


def threshold_metric(query: str = THRESHOLD_QUERY, address: str | None = None) -> Metric:
    block: dict[str, Any] = {"query": query}
    if address:
        block["address"] = address
    return Metric.model_validate(
        {"name": "error-ratio", "provider": {"prometheus": block}, "thresholdRange": {"max": 0.05}}
    )


def error_rate_metric() -> Metric:
    return Metric.model_validate(
        {
            "name": "error-rate",
            "provider": {"prometheus": {}},
            "comparison": {
                "type": "errorRate",
                "requestsQuery": REQUESTS_QUERY,
                "errorsQuery": ERRORS_QUERY,
                "tolerance": 1.2,
            },
        }
    )


def latency_metric() -> Metric:
    return Metric.model_validate(
        {
            "name": "latency",
            "provider": {"prometheus": {}},
            "comparison": {"type": "latency", "bucketsQuery": BUCKETS_QUERY, "tolerance": 1.5},
        }
    )


def task(metric: Metric, args: Mapping[str, str] | None = None, window: float = 90) -> MetricTask:
    return MetricTask(
        key=f"t/{metric.name}",
        metric=metric,
        args={"service": "checkout"} if args is None else dict(args),
        window_seconds=window,
    )


def _variant(query: str) -> str:
    return "canary" if 'variant="canary"' in query else "stable"


def serve_data(
    scalar_value: float | None = SCALAR,
    counts: Mapping[str, Counts] = COUNTS,
    buckets: Mapping[str, Buckets] = BUCKETS,
) -> Callable[[str], Reply]:
    """A handler answering the three metrics above with these numbers."""

    def handler(query: str) -> Reply:
        if "_bucket" in query:
            series = [({"le": _fmt(le)}, n) for le, n in reversed(buckets[_variant(query)])]
            return vector(*series)
        if "increase(" in query:
            c = counts[_variant(query)]
            return vector(({}, c.errors if 'code=~"5.."' in query else c.requests))
        return vector() if scalar_value is None else vector(({}, scalar_value))

    return handler


# ---------------------------------------------------------------- the shared contract


class TestPrometheusProviderContract(MetricProviderContract):
    plugin = "prometheus"

    @pytest.fixture(autouse=True)
    def _fake(self, prom: FakePrometheus, closed_port_url: str) -> None:
        self.prom = prom
        self.closed_port_url = closed_port_url

    def threshold_metric(self) -> Metric:
        return threshold_metric()

    def error_rate_metric(self) -> Metric:
        return error_rate_metric()

    def latency_metric(self) -> Metric:
        return latency_metric()

    def serving(
        self,
        *,
        scalar: float | None = SCALAR,
        counts: Mapping[str, Counts] = COUNTS,
        buckets: Mapping[str, Buckets] = BUCKETS,
    ) -> MetricProvider:
        self.prom.handler = serve_data(scalar, counts, buckets)
        return PrometheusMetricProvider(self.prom.url, timeout=5)

    def unreachable(self) -> tuple[MetricProvider, str]:
        return PrometheusMetricProvider(self.closed_port_url, timeout=5), self.closed_port_url

    def server_error(self) -> tuple[MetricProvider, str]:
        self.prom.reply(api_error(503, "unavailable", "TSDB not ready"))
        return PrometheusMetricProvider(self.prom.url, timeout=5), self.prom.url

    def rejecting_query(self) -> MetricProvider:
        self.prom.reply(api_error(400, "bad_data", "1:5: parse error: unexpected end of input"))
        return PrometheusMetricProvider(self.prom.url, timeout=5)


# ---------------------------------------------------------------- threshold metrics


@pytest.fixture
def provider(prom: FakePrometheus) -> Iterator[PrometheusMetricProvider]:
    p = PrometheusMetricProvider(prom.url, timeout=5)
    yield p
    p.close()


def measure_threshold(
    prom: FakePrometheus, provider: PrometheusMetricProvider, reply: Reply
) -> object:
    prom.reply(reply)
    return provider.measure(task(threshold_metric()))


def test_scalar_result(prom: FakePrometheus, provider: PrometheusMetricProvider) -> None:
    assert measure_threshold(prom, provider, scalar(0.5)) == ScalarSample(0.5)


def test_vector_of_one(prom: FakePrometheus, provider: PrometheusMetricProvider) -> None:
    reply = vector(({"service": "checkout"}, 0.01))
    assert measure_threshold(prom, provider, reply) == ScalarSample(0.01)


def test_empty_vector_is_no_data(prom: FakePrometheus, provider: PrometheusMetricProvider) -> None:
    assert measure_threshold(prom, provider, vector()) == ScalarSample(None)


def test_nan_is_no_data(prom: FakePrometheus, provider: PrometheusMetricProvider) -> None:
    assert measure_threshold(prom, provider, vector(({}, math.nan))) == ScalarSample(None)
    assert measure_threshold(prom, provider, scalar(math.nan)) == ScalarSample(None)


def test_infinity_is_passed_through(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    assert measure_threshold(prom, provider, vector(({}, math.inf))) == ScalarSample(math.inf)


def test_many_series_is_a_permanent_failure(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    reply = vector(({"pod": "a"}, 1), ({"pod": "b"}, 2), ({"pod": "c"}, 3))
    sample = measure_threshold(prom, provider, reply)
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert "query returned 3 series; aggregate it with sum() or similar" in sample.message
    assert "provider.prometheus.query" in sample.message


def test_the_rendered_query_is_sent_escaped(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    prom.reply(vector(({}, 1)))
    provider.measure(task(threshold_metric(), args={"service": 'checkout"} or vector(1) #'}))
    assert prom.queries == [
        'sum(rate(http_requests_total{service="checkout\\"} or vector(1) #", code=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{service="checkout\\"} or vector(1) #"}[5m]))'
    ]
    assert prom.requests[0]["params"]["timeout"] == ["5s"]


def test_missing_arg_does_not_query(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    sample = provider.measure(task(threshold_metric(), args={}))
    assert sample == ProviderFailure(
        "provider.prometheus.query: args.service is not provided "
        "(add it to the Canary's analysis args)",
        transient=False,
    )
    assert prom.requests == []


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            (200, {"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
            "query returned a string",
        ),
        (
            (
                200,
                {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [{"metric": {}, "values": [[1, "1"], [2, "2"]]}],
                    },
                },
            ),
            "range vector",
        ),
        (
            (
                200,
                {
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {}, "histogram": [1, {"count": "1"}]}],
                    },
                },
            ),
            "native histogram",
        ),
        ((200, "<html>hello</html>"), "not Prometheus API JSON"),
        ((200, {"status": "success"}), "without data.result"),
    ],
)
def test_wrong_shapes_are_permanent_failures(
    prom: FakePrometheus, provider: PrometheusMetricProvider, reply: Reply, expected: str
) -> None:
    sample = measure_threshold(prom, provider, reply)
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert expected in sample.message


# ---------------------------------------------------------------- HTTP errors


def test_bad_query_quotes_prometheus_error(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    error = 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis'
    sample = measure_threshold(prom, provider, api_error(400, "bad_data", error))
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert f"Prometheus at {prom.url} rejected the query (bad_data): {error}" in sample.message
    assert 'service="checkout"' in sample.message  # the rendered query is quoted too


def test_execution_error_is_permanent(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    error = "found duplicate series for the match group"
    sample = measure_threshold(prom, provider, api_error(422, "execution", error))
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert error in sample.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_transient_and_retried_once(
    prom: FakePrometheus, provider: PrometheusMetricProvider, status: int
) -> None:
    sample = measure_threshold(prom, provider, api_error(status, "unavailable", "not ready"))
    assert isinstance(sample, ProviderFailure)
    assert sample.transient
    assert f"Prometheus at {prom.url} failed (HTTP {status}, unavailable): not ready" in (
        sample.message
    )
    assert len(prom.requests) == (1 if status == 500 else 2)


def test_server_error_with_a_non_json_body(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    sample = measure_threshold(prom, provider, (500, "upstream exploded"))
    assert sample == ProviderFailure(
        f"provider.prometheus.query: Prometheus at {prom.url} failed (HTTP 500): upstream exploded",
        transient=True,
    )


def test_wrong_path_is_a_permanent_404(prom: FakePrometheus) -> None:
    sample = PrometheusMetricProvider(prom.url + "/prometheus").measure(task(threshold_metric()))
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert f"Prometheus at {prom.url}/prometheus has no query API (HTTP 404" in sample.message


@pytest.mark.parametrize("status", [401, 403])
def test_access_refused_is_permanent(
    prom: FakePrometheus, provider: PrometheusMetricProvider, status: int
) -> None:
    sample = measure_threshold(prom, provider, (status, "denied"))
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert f"refused access (HTTP {status}): denied" in sample.message


def test_connection_refused_is_transient_and_names_the_address(closed_port_url: str) -> None:
    started = time.monotonic()
    sample = PrometheusMetricProvider(closed_port_url).measure(task(threshold_metric()))
    assert isinstance(sample, ProviderFailure)
    assert sample.transient
    assert f"cannot reach Prometheus at {closed_port_url}" in sample.message
    assert "refused" in sample.message.lower()
    assert time.monotonic() - started < 2


def test_slow_server_times_out_as_transient(prom: FakePrometheus) -> None:
    prom.reply(vector(({}, 1)))
    prom.delay = 1.5
    started = time.monotonic()
    sample = PrometheusMetricProvider(prom.url, timeout=0.2).measure(task(threshold_metric()))
    elapsed = time.monotonic() - started
    assert sample == ProviderFailure(
        f"provider.prometheus.query: Prometheus at {prom.url} did not answer within 0.2s",
        transient=True,
    )
    assert elapsed < 1.2  # a read timeout is not retried


def test_headers_are_sent(prom: FakePrometheus) -> None:
    prom.reply(vector(({}, 1)))
    provider = PrometheusMetricProvider(prom.url, headers={"Authorization": "Bearer t0ken"})
    assert provider.measure(task(threshold_metric())) == ScalarSample(1.0)
    assert prom.requests[0]["headers"]["Authorization"] == "Bearer t0ken"


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://x", "http://", "http://x/?a=b"])
def test_bad_urls_are_rejected_up_front(url: str) -> None:
    with pytest.raises(PermanentError):
        PrometheusMetricProvider(url)


# ---------------------------------------------------------------- comparisons


def test_counts_per_variant(prom: FakePrometheus, provider: PrometheusMetricProvider) -> None:
    prom.handler = serve_data()
    sample = provider.measure(task(error_rate_metric(), window=89.2))
    assert sample == CountsSample(canary=COUNTS["canary"], stable=COUNTS["stable"])
    assert prom.queries == [
        'sum(increase(http_requests_total{service="checkout", variant="canary"}[90s]))',
        'sum(increase(http_requests_total{service="checkout", variant="canary", '
        'code=~"5.."}[90s]))',
        'sum(increase(http_requests_total{service="checkout", variant="stable"}[90s]))',
        'sum(increase(http_requests_total{service="checkout", variant="stable", '
        'code=~"5.."}[90s]))',
    ]


def test_counts_without_data_are_zero(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    prom.handler = lambda q: vector() if "code" in q else vector(({}, 10))
    sample = provider.measure(task(error_rate_metric()))
    assert sample == CountsSample(canary=Counts(10, 0), stable=Counts(10, 0))
    prom.handler = lambda q: vector(({}, math.nan))
    assert provider.measure(task(error_rate_metric())) == CountsSample(
        canary=Counts(0, 0), stable=Counts(0, 0)
    )


def test_counts_with_many_series_name_the_query(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    prom.handler = lambda q: (
        vector(({"code": "500"}, 1), ({"code": "503"}, 2)) if "code" in q else vector(({}, 10))
    )
    sample = provider.measure(task(error_rate_metric()))
    assert sample == ProviderFailure(
        "errorsQuery (canary): query returned 2 series; aggregate it with sum() or similar",
        transient=False,
    )


def test_counts_failure_is_transient_when_the_server_is(closed_port_url: str) -> None:
    sample = PrometheusMetricProvider(closed_port_url).measure(task(error_rate_metric()))
    assert isinstance(sample, ProviderFailure)
    assert sample.transient
    assert sample.message.startswith("requestsQuery (canary): cannot reach Prometheus at")


def test_buckets_are_sorted_cumulative_and_inf_last(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    canary = [("+Inf", 100), ("0.5", 90), ("0.1", 40), ("1", 89.9)]  # 1 < 0.5: extrapolation
    stable = [("0.1", 500), ("+Inf", 1000), ("1e+00", 990), ("0.5", math.nan)]

    def handler(query: str) -> Reply:
        rows = canary if 'variant="canary"' in query else stable
        return vector(*(({"le": le}, v) for le, v in rows))

    prom.handler = handler
    sample = provider.measure(task(latency_metric()))
    assert sample == BucketsSample(
        canary=((0.1, 40.0), (0.5, 90.0), (1.0, 90.0), (math.inf, 100.0)),
        stable=((0.1, 500.0), (0.5, 500.0), (1.0, 990.0), (math.inf, 1000.0)),
    )
    assert 'variant="canary"}[90s]))' in prom.queries[0]
    assert 'variant="stable"}[90s]))' in prom.queries[1]


def test_buckets_without_data_are_empty(
    prom: FakePrometheus, provider: PrometheusMetricProvider
) -> None:
    prom.reply(vector())
    assert provider.measure(task(latency_metric())) == BucketsSample(canary=(), stable=())


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([({"pod": "a"}, 1.0)], 'without an le label (pod="a")'),
        ([({"le": "0.1"}, 1.0), ({"le": "0.5"}, 2.0)], 'no le="+Inf" bucket'),
        (
            [({"le": "0.1", "pod": "a"}, 1.0), ({"le": "0.1", "pod": "b"}, 1.0)],
            'more than one series with le="0.1"',
        ),
        ([({"le": "fast"}, 1.0), ({"le": "+Inf"}, 1.0)], "le label 'fast' is not a number"),
    ],
)
def test_bad_buckets_are_permanent_failures(
    prom: FakePrometheus,
    provider: PrometheusMetricProvider,
    rows: list[tuple[dict[str, str], float]],
    expected: str,
) -> None:
    prom.reply(vector(*rows))
    sample = provider.measure(task(latency_metric()))
    assert isinstance(sample, ProviderFailure)
    assert not sample.transient
    assert sample.message.startswith("bucketsQuery (canary): ")
    assert expected in sample.message


# ---------------------------------------------------------------- the registry


class _Recording:
    def __init__(self, name: str, address: str, timeout: float) -> None:
        self.name, self.address, self.timeout = name, address, timeout
        self.closed = False

    def measure(self, task: MetricTask) -> ScalarSample:
        return ScalarSample(1.0)

    def close(self) -> None:
        self.closed = True


def _recording(name: str) -> ProviderPlugin:
    """The Prometheus plug-in, building recorders instead of clients."""

    def build(config: Any, settings: Settings) -> _Recording:
        assert PROMETHEUS.share is not None
        return _Recording(name, PROMETHEUS.share(config, settings), settings.timeout)

    return dataclasses.replace(PROMETHEUS, build=build)


def _recording_registry() -> ProviderRegistry:
    return ProviderRegistry({"prometheus": _recording("prometheus")})


def test_registry_uses_the_default_url_and_caches_per_address() -> None:
    registry = _recording_registry()
    default = "http://prometheus.monitoring:9090/"
    first = registry.provider_for(threshold_metric(), default_addresses={"prometheus": default})
    again = registry.provider_for(error_rate_metric(), default_addresses={"prometheus": default})
    other = registry.provider_for(
        threshold_metric(address="http://other:9090"), default_addresses={"prometheus": default}
    )
    assert first is again
    assert isinstance(first, _Recording) and isinstance(other, _Recording)
    assert first.address == "http://prometheus.monitoring:9090"
    assert other.address == "http://other:9090"
    assert other is not first
    registry.close()
    assert first.closed and other.closed


def test_registry_reads_a_block_once_however_often_it_is_measured() -> None:
    shared: list[str] = []
    assert PROMETHEUS.share is not None
    share = PROMETHEUS.share

    def counting(config: Any, settings: Settings) -> str:
        shared.append(settings.field)
        return share(config, settings)

    registry = ProviderRegistry({"prometheus": dataclasses.replace(PROMETHEUS, share=counting)})
    default = {"prometheus": "http://prometheus.monitoring:9090"}
    first = registry.provider_for(threshold_metric(), default_addresses=default)
    for _ in range(3):
        assert registry.provider_for(threshold_metric(), default_addresses=default) is first
    assert len(shared) == 1
    # Another default address is another provider, not the cached one.
    other = registry.provider_for(threshold_metric(), default_addresses={"prometheus": "http://b:9090"})
    assert other is not first and len(shared) == 2
    registry.close()


def test_registry_builds_prometheus_providers_by_default(prom: FakePrometheus) -> None:
    registry = ProviderRegistry()
    provider = registry.provider_for(
        threshold_metric(), default_addresses={"prometheus": prom.url}, timeout=3
    )
    assert isinstance(provider, PrometheusMetricProvider)
    assert provider.name == "prometheus"
    assert provider.timeout == 3
    again = provider_for(
        threshold_metric(), default_addresses={"prometheus": prom.url}, timeout=3, registry=registry
    )
    assert again is provider
    registry.close()


def test_registry_without_any_address_names_the_field() -> None:
    with pytest.raises(PermanentError) as caught:
        _recording_registry().provider_for(
            threshold_metric(), default_addresses={"prometheus": None}
        )
    assert str(caught.value) == (
        "metrics[error-ratio].provider.prometheus.address is not set and the controller "
        "has no --prometheus-url; set one of them"
    )


def test_registry_rejects_a_bad_address_naming_the_field() -> None:
    with pytest.raises(PermanentError, match=r"metrics\[error-ratio\]\.provider\.prometheus"):
        _recording_registry().provider_for(
            threshold_metric(address="prometheus:9090"), default_addresses={"prometheus": None}
        )
    with pytest.raises(PermanentError, match="--prometheus-url"):
        _recording_registry().provider_for(
            threshold_metric(), default_addresses={"prometheus": "nope"}
        )


@pytest.mark.parametrize("address", ["http://[::1", "http://[not-ipv6]:9090", "http://h:99999"])
def test_an_address_urllib_cannot_split_is_a_permanent_error_not_a_crash(address: str) -> None:
    with pytest.raises(PermanentError, match=r"metrics\[error-ratio\]\.provider\.prometheus"):
        _recording_registry().provider_for(
            threshold_metric(address=address), default_addresses={"prometheus": None}
        )


def test_registry_rejects_unknown_providers_naming_the_supported_ones() -> None:
    metric = threshold_metric().model_copy(
        update={"provider": Provider.model_validate({"datadog": {"query": "x"}})}
    )
    with pytest.raises(PermanentError) as caught:
        _recording_registry().provider_for(metric)
    assert str(caught.value) == (
        "metrics[error-ratio].provider.datadog is not a supported provider; supported: prometheus"
    )
    with pytest.raises(PermanentError, match="supported: prometheus, web"):
        ProviderRegistry().provider_for(metric)


def test_a_provider_block_names_exactly_one_backend() -> None:
    for blocks in ({}, {"prometheus": {}, "web": {"url": "http://x", "jsonPath": "$.a"}}):
        with pytest.raises(ValidationError, match="exactly one backend"):
            Provider.model_validate(blocks)


def test_a_field_the_plugin_does_not_know_is_a_permanent_error_naming_it() -> None:
    metric = threshold_metric().model_copy(
        update={"provider": Provider.model_validate({"prometheus": {"adress": "http://p"}})}
    )
    with pytest.raises(PermanentError, match=r"provider\.prometheus\.adress: Extra inputs"):
        _recording_registry().provider_for(metric)


def test_registry_never_falls_back_when_a_backend_is_not_registered() -> None:
    with pytest.raises(PermanentError, match=r"provider\.prometheus is not a supported provider"):
        ProviderRegistry({}).provider_for(
            threshold_metric(), default_addresses={"prometheus": "http://p"}
        )
