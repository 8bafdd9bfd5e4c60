"""/metrics: what a Prometheus scrape of the controller shows (controller/telemetry.py), and the
request labels canary/kube/connect.py derives."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_kube import FakeKube
from prometheus_client.parser import text_string_to_metric_families

from canary.api.status import CanaryStatus, MetricStatus, Phase, Verdict
from canary.controller.health import Health, serve
from canary.controller.reconciler import Controller
from canary.controller.telemetry import Metrics
from canary.controller.workqueue import WorkQueue
from canary.errors import TransientError
from canary.kube.client import Kube
from canary.kube.connect import request_labels
from canary.kube.errors import NotFound

T0 = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.UTC)
PER_CANARY = {"canary_phase", "canary_weight", "canary_step_index", "canary_steps",
              "canary_metric_verdict"}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(phase: Phase, weight: int = 0, step: int | None = None, revision: str = "r2",
           started: float | None = 0,
           verdicts: Mapping[str, Verdict | None] | None = None) -> CanaryStatus:
    analysis = [MetricStatus(name=f"background/{k}", verdict=v)
                for k, v in (verdicts or {}).items()]
    return CanaryStatus(
        phase=phase, stable_revision="r1", canary_revision=revision, canary_weight=weight,
        current_step_index=step, rollout_started_at=None if started is None else iso(started),
        analysis=analysis,
    )


IDLE = CanaryStatus(phase=Phase.IDLE, stable_revision="r1", reason="Initialized")


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the registry, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in m.registry.collect() for s in family.samples
    }


def value(m: Metrics, metric: str, /, **labels: str) -> float | None:
    return m.registry.get_sample_value(metric, labels)


def canary_series(m: Metrics, name: str = "checkout") -> set[tuple[str, frozenset]]:
    return {k for k in samples(m) if k[0] in PER_CANARY and ("name", name) in k[1]}


def play(m: Metrics, *moves: tuple[float, CanaryStatus], name: str = "checkout",
         ns: str = "shop") -> None:
    """Record statuses in order, as the controller does after each status write."""
    before = IDLE
    for seconds, after in moves:
        m.observe(ns, name, 4, before, after, at(seconds))
        before = after


def test_the_gauges_show_the_status_just_written() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0, verdicts={"error-rate": None})),
         (40, status(Phase.PAUSED, 30, 2, verdicts={"error-rate": Verdict.INCONCLUSIVE})))
    c = {"namespace": "shop", "name": "checkout"}
    assert value(m, "canary_phase", **c, phase="Paused") == 1
    assert {p.value for p in Phase if value(m, "canary_phase", **c, phase=p.value) == 0} == {
        p.value for p in Phase} - {"Paused"}
    assert value(m, "canary_weight", **c) == 30
    assert value(m, "canary_step_index", **c) == 2
    assert value(m, "canary_steps", **c) == 4
    verdicts = {v.value: value(m, "canary_metric_verdict", **c, metric="background/error-rate",
                               verdict=v.value) for v in Verdict}
    assert verdicts == {"Pass": 0, "Fail": 0, "Inconclusive": 1, "Error": 0}
    assert value(m, "canary_rollouts_total", namespace="shop", outcome="promoted") == 0


def test_a_metric_not_yet_measured_shows_no_verdict() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0, verdicts={"error-rate": None})))
    assert {value(m, "canary_metric_verdict", namespace="shop", name="checkout",
                  metric="background/error-rate", verdict=v.value) for v in Verdict} == {0}


def test_a_promotion_counts_once_with_its_duration() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0)),
         (300, status(Phase.PROMOTING, 60, 4)),
         (320, status(Phase.SUCCEEDED, 0, 4)),
         (330, status(Phase.SUCCEEDED, 0, 4)))  # a later reconcile: nothing new
    ns = {"namespace": "shop"}
    assert value(m, "canary_rollouts_total", **ns, outcome="promoted") == 1
    assert value(m, "canary_rollout_duration_seconds_count", **ns, outcome="promoted") == 1
    assert value(m, "canary_rollout_duration_seconds_sum", **ns, outcome="promoted") == 320
    assert value(m, "canary_rollout_duration_seconds_bucket", **ns, outcome="promoted",
                 le="300.0") == 0
    assert value(m, "canary_rollout_duration_seconds_bucket", **ns, outcome="promoted",
                 le="600.0") == 1


@pytest.mark.parametrize(
    ("end", "outcome"),
    [
        (status(Phase.ROLLED_BACK, 0, 1), "rolled_back"),
        (status(Phase.FAILED, 0, None), "failed"),
        (CanaryStatus(phase=Phase.IDLE, stable_revision="r1", reason="Abandoned"), "abandoned"),
        (status(Phase.PROGRESSING, 0, 0, revision="r3", started=90), "superseded"),
    ],
)
def test_every_way_a_rollout_ends_is_counted(end: CanaryStatus, outcome: str) -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0)), (90, end))
    assert value(m, "canary_rollouts_total", namespace="shop", outcome=outcome) == 1
    assert value(m, "canary_rollout_duration_seconds_sum", namespace="shop",
                 outcome=outcome) == 90
    others = {"promoted", "rolled_back", "failed", "abandoned", "superseded"} - {outcome}
    assert {value(m, "canary_rollouts_total", namespace="shop", outcome=o) for o in others} == {0}


def test_a_rollout_that_never_left_its_deploy_window_has_no_duration() -> None:
    m = Metrics()
    play(m, (0, status(Phase.WAITING, started=None)), (50, status(Phase.FAILED, started=None)))
    assert value(m, "canary_rollouts_total", namespace="shop", outcome="failed") == 1
    assert value(m, "canary_rollout_duration_seconds_count", namespace="shop",
                 outcome="failed") == 0


def test_retrying_a_rolled_back_revision_is_a_new_rollout_not_an_outcome() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0)), (10, status(Phase.ROLLED_BACK)),
         (20, status(Phase.PROGRESSING, 10, 0, started=20)))
    totals = {o: value(m, "canary_rollouts_total", namespace="shop", outcome=o)
              for o in ("rolled_back", "superseded")}
    assert totals == {"rolled_back": 1, "superseded": 0}


def test_a_new_rollout_drops_the_verdicts_of_metrics_it_no_longer_has() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0, verdicts={"error-rate": Verdict.PASS,
                                                    "latency": Verdict.FAIL})),
         (10, status(Phase.PROGRESSING, 10, 0, revision="r3", verdicts={"error-rate": None})))
    metrics = {dict(k[1])["metric"] for k in canary_series(m) if k[0] == "canary_metric_verdict"}
    assert metrics == {"background/error-rate"}


def test_settled_canaries_show_no_step_index() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0)), (10, IDLE))
    assert value(m, "canary_step_index", namespace="shop", name="checkout") is None
    assert value(m, "canary_phase", namespace="shop", name="checkout", phase="Idle") == 1


def test_a_deleted_canary_leaves_no_series_and_others_keep_theirs() -> None:
    m = Metrics()
    play(m, (0, status(Phase.PROGRESSING, 10, 0, verdicts={"error-rate": Verdict.PASS})))
    play(m, (0, status(Phase.PROGRESSING, 50, 2)), name="cart")
    cart = canary_series(m, "cart")
    m.forget("shop", "checkout")
    assert canary_series(m) == set()
    assert canary_series(m, "cart") == cart
    m.forget("shop", "never-seen")  # a DELETED event for a Canary never reconciled
    # Outcome counters are per namespace and stay: a counter must not go back to 0.
    assert value(m, "canary_rollouts_total", namespace="shop", outcome="promoted") == 0


def test_series_are_bounded_by_the_canaries_not_by_their_history() -> None:
    """Revisions, messages, values and weights change with every rollout; none of them
    may become a label, or the series would grow with each rollout."""
    m = Metrics()

    def one_rollout(i: int) -> None:
        live = status(Phase.PROGRESSING, i % 100, i % 4, revision=f"rev-{i}", started=i,
                      verdicts={"error-rate": Verdict.PASS})
        measured = live.analysis[0].model_copy(update={"value": f"{i / 7:.3f}"})
        live = live.model_copy(update={"message": f"rolling out rev-{i}", "analysis": [measured]})
        end = status(Phase.ROLLED_BACK if i % 2 else Phase.SUCCEEDED, revision=f"rev-{i}",
                     started=i, verdicts={"error-rate": Verdict.FAIL})
        play(m, (i, live), (i + 5, end))

    one_rollout(0)
    one_rollout(1)
    after_two = set(samples(m))
    for i in range(2, 60):
        one_rollout(i)
    assert set(samples(m)) == after_two
    labels = {k for key in after_two if key[0].startswith("canary_") for k, _ in key[1]}
    assert labels <= {"namespace", "name", "phase", "metric", "verdict", "outcome", "le",
                      "kind", "lane", "verb", "resource", "code"}


def test_reconcile_errors_are_zero_until_they_happen() -> None:
    m = Metrics()
    assert {value(m, "canary_reconcile_errors_total", kind=k)
            for k in ("transient", "permanent", "crash")} == {0}
    m.failed("transient")
    m.reconciled(0.02)
    assert value(m, "canary_reconcile_errors_total", kind="transient") == 1
    assert value(m, "canary_reconcile_duration_seconds_count") == 1
    assert value(m, "canary_reconcile_duration_seconds_bucket", le="0.025") == 1


def test_queue_depth_is_read_at_scrape_time() -> None:
    m, q = Metrics(), WorkQueue()
    m.watch_queue(q)
    q.add("shop/a")
    q.add("shop/b", background=True)
    q.add("shop/c", after=60)
    assert value(m, "canary_workqueue_depth", lane="urgent") == 1
    assert value(m, "canary_workqueue_depth", lane="background") == 1


# ------------------------------------------------------------------- the controller


def test_the_controller_drops_the_series_of_a_canary_that_is_gone() -> None:
    ctl = Controller(FakeKube())
    play(ctl.metrics, (0, status(Phase.PROGRESSING, 10, 0)), ns="default")
    assert ctl.reconcile_key("default/checkout") is None  # NotFound: the Canary is gone
    assert canary_series(ctl.metrics) == set()
    play(ctl.metrics, (0, status(Phase.PROGRESSING, 10, 0)), ns="default")
    ctl._on_event("Canary", "DELETED", {"metadata": {"namespace": "default", "name": "checkout"}})
    assert canary_series(ctl.metrics) == set()


def test_the_controller_times_every_reconcile_and_counts_its_failures() -> None:
    class Flaky(FakeKube):
        def get_canary(self, ns: str, name: str) -> Any:
            if name == "a":
                raise TransientError("the API server is restarting")
            raise KeyError(name)  # a bug

    ctl = Controller(Flaky())
    for key in ("default/a", "default/b"):
        ctl.queue.add(key)
    worker = threading.Thread(target=ctl._worker)
    worker.start()
    try:
        for _ in range(1000):
            if value(ctl.metrics, "canary_reconcile_duration_seconds_count") == 2:
                break
            time.sleep(0.01)
    finally:
        ctl.stop()
        worker.join(timeout=5)
    assert value(ctl.metrics, "canary_reconcile_duration_seconds_count") == 2
    assert value(ctl.metrics, "canary_reconcile_errors_total", kind="transient") == 1
    assert value(ctl.metrics, "canary_reconcile_errors_total", kind="crash") == 1


# ------------------------------------------------------------------- serving


@pytest.fixture
def metrics_url() -> Iterator[tuple[Metrics, str]]:
    m = Metrics()
    server = serve(Health(), 0, host="127.0.0.1", metrics=m.exposition)
    yield m, f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_metrics_are_served_in_the_text_format_prometheus_asks_for(
    metrics_url: tuple[Metrics, str],
) -> None:
    m, url = metrics_url
    play(m, (0, status(Phase.PROGRESSING, 10, 0, verdicts={"error-rate": Verdict.PASS})))
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["canary_rollouts"].type == "counter"
    assert families["canary_rollout_duration_seconds"].type == "histogram"
    assert families["canary_weight"].samples[0].value == 10
    openmetrics = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text"})
    with urllib.request.urlopen(openmetrics, timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
        assert answer.read().decode().endswith("# EOF\n")


# ------------------------------------------------------------------- API requests


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/apis/canary.dev/v1alpha1/namespaces/shop/canaries/checkout", ("get", "canaries")),
        ("GET", "/apis/canary.dev/v1alpha1/canaries?limit=500", ("list", "canaries")),
        ("GET", "/apis/apps/v1/namespaces/shop/deployments?watch=true&resourceVersion=7",
         ("watch", "deployments")),
        ("PATCH", "/apis/canary.dev/v1alpha1/namespaces/shop/canaries/checkout/status",
         ("patch", "canaries/status")),
        ("PUT", "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout",
         ("update", "httproutes")),
        ("POST", "/apis/events.k8s.io/v1/namespaces/shop/events", ("create", "events")),
        ("GET", "/api/v1/namespaces/shop/services/checkout-stable", ("get", "services")),
        ("GET", "/api/v1/namespaces/shop", ("get", "namespaces")),
        ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
         ("create", "selfsubjectreviews")),
        ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.canary.dev",
         ("get", "customresourcedefinitions")),
        ("DELETE", "/api/v1/namespaces/shop/pods", ("deletecollection", "pods")),
        ("DELETE", "/api/v1/namespaces/shop/pods/p-1", ("delete", "pods")),
        ("GET", "/version", ("get", "")),
    ],
)
def test_request_labels_name_the_verb_and_resource_never_the_object(
    method: str, target: str, expected: tuple[str, str]
) -> None:
    assert request_labels(method, target) == expected


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[Path]:
    """An API server that knows no object: every request gets a 404 Status."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"kind": "Status", "code": 404, "message": "not found"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {
            "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "test", "user": {"token": "t"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    yield kubeconfig
    server.shutdown()
    server.server_close()


def test_every_api_request_is_counted_with_its_status_code(api_server: Path) -> None:
    m, kube = Metrics(), Kube(api_server)
    kube.on_request(m.kube_request)
    assert kube.get_service("shop", "checkout-stable") is None
    with pytest.raises(NotFound):
        kube.get_canary("shop", "checkout")
    assert value(m, "canary_kube_requests_total", verb="get", resource="services",
                 code="404") == 1
    assert value(m, "canary_kube_requests_total", verb="get", resource="canaries",
                 code="404") == 1


def test_a_request_without_an_answer_counts_as_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    m, kube = Metrics(), Kube(kubeconfig)
    kube.on_request(m.kube_request)
    with pytest.raises(TransientError):
        kube.get_canary("shop", "checkout")
    assert value(m, "canary_kube_requests_total", verb="get", resource="canaries",
                 code="<error>") == 1
