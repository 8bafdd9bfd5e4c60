"""Every template in analysis_templates/ against a real Prometheus loaded with known history.

The history uses the metric names and labels each system really exports (the generic
client libraries, Istio, Linkerd, ingress-nginx, Envoy) for two apps in namespace "shop":

- checkout: a good canary, the same as its stable (0.5% errors, p99 about 320 ms);
- payments: a bad canary (10% errors against stable's 0.5%, latency twice stable's).

Counters are cumulative, one sample every 15 s for 15 minutes, ending a minute before
now; each template is then measured through the real PrometheusMetricProvider and judged
by the engine's evaluate(), over a 5-minute window: Pass for checkout, Fail for payments.
Latency comparisons read their slow-request bound from stable's history before that
window (the baseline query, evaluated back then).
Decoy series (outbound Linkerd traffic with many failures, an Envoy cluster whose name
merely starts with the canary Service's) check that the selectors are exact.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from canary.api.status import Verdict
from canary.engine.clock import to_iso
from canary.engine.samples import MetricTask
from canary.engine.tasks import baseline_for
from canary.engine.verdicts import evaluate
from canary.providers.prometheus.client import PrometheusMetricProvider
from canary.sandbox.prometheus import Prometheus
from canary.templates.analyze import resolve_args
from canary.templates.library import load_template

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "analysis_templates"

NAMESPACE = "shop"
STEP = 15  # seconds between samples
SPAN = 15 * 60  # seconds of history
END_BEFORE_NOW = 60  # the last sample is this long before now
WINDOW = 300.0  # {{window}} for comparison metrics: five minutes

GOOD, BAD = "checkout", "payments"


@dataclass(frozen=True)
class Traffic:
    rps: int
    error_ratio: float
    median_seconds: float  # latency is log-normal around this median
    sigma: float = 0.8  # p99 = median * exp(2.326 * sigma), about 6.4x the median


STABLE = Traffic(rps=1000, error_ratio=0.005, median_seconds=0.05)
VARIANTS: dict[str, dict[str, Traffic]] = {
    GOOD: {"stable": STABLE, "canary": STABLE},
    BAD: {"stable": STABLE, "canary": Traffic(rps=1000, error_ratio=0.10, median_seconds=0.10)},
}

# Bucket bounds each system really uses.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ISTIO_MS_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                    60000, 300000, 600000, 1800000, 3600000)
LINKERD_MS_BUCKETS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000,
                      3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000)
ENVOY_MS_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                    60000, 300000, 600000, 1800000, 3600000)

# The args each system's templates get for the good and the bad app.
ARGS: dict[str, dict[str, dict[str, str]]] = {
    "http": {GOOD: {"service": GOOD, "namespace": NAMESPACE}, BAD: {"service": BAD}},
    "istio": {GOOD: {"service": GOOD, "namespace": NAMESPACE}, BAD: {"service": BAD}},
    "linkerd": {GOOD: {"service": GOOD, "namespace": NAMESPACE}, BAD: {"service": BAD}},
    "nginx": {GOOD: {"ingress": GOOD, "namespace": NAMESPACE}, BAD: {"ingress": BAD}},
    "envoy": {GOOD: {"service": GOOD}, BAD: {"service": BAD}},
}
SYSTEMS = tuple(ARGS)
FORMS = ("error-rate", "latency", "error-rate-comparison", "latency-comparison")
TEMPLATES = [f"{system}-{form}" for system in SYSTEMS for form in FORMS]


# ---------------------------------------------------------------- OpenMetrics history


def _cdf(x: float, t: Traffic) -> float:
    if x <= 0:
        return 0.0
    z = (math.log(x) - math.log(t.median_seconds)) / t.sigma
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


class History:
    """OpenMetrics text, one metric family at a time, samples ascending per series."""

    def __init__(self, now: int) -> None:
        self.end = now - END_BEFORE_NOW
        self.times = list(range(self.end - SPAN, self.end + 1, STEP))
        self.families: dict[str, tuple[str, list[str]]] = {}

    def _family(self, name: str, kind: str) -> list[str]:
        return self.families.setdefault(name, (kind, []))[1]

    def counter(self, name: str, labels: dict[str, str], per_step: float) -> None:
        """A cumulative counter growing by `per_step` every STEP seconds."""
        family = name.removesuffix("_total") if name.endswith("_total") else name
        lines = self._family(family, "counter" if name.endswith("_total") else "unknown")
        for i, ts in enumerate(self.times):
            lines.append(f"{name}{_labels(labels)} {round(per_step * i)} {ts}")

    def histogram(
        self, name: str, labels: dict[str, str], t: Traffic, bounds: tuple[float, ...],
        scale: float,
    ) -> None:
        """Cumulative buckets of `t`'s latency, in seconds * `scale` (1000: milliseconds)."""
        lines = self._family(name, "histogram")
        mean = t.median_seconds * math.exp(t.sigma**2 / 2) * scale
        for i, ts in enumerate(self.times):
            count = t.rps * STEP * i
            for le in bounds:
                cumulative = round(count * _cdf(le / scale, t))
                lines.append(f"{name}_bucket{_labels({**labels, 'le': str(le)})} {cumulative} {ts}")
            lines.append(f'{name}_bucket{_labels({**labels, "le": "+Inf"})} {count} {ts}')
            lines.append(f"{name}_sum{_labels(labels)} {count * mean:.3f} {ts}")
            lines.append(f"{name}_count{_labels(labels)} {count} {ts}")

    def text(self) -> str:
        out: list[str] = []
        for name, (kind, lines) in self.families.items():
            out.append(f"# TYPE {name} {kind}")
            out += lines
        return "\n".join(out) + "\n# EOF\n"


def _requests(h: History, name: str, labels: dict[str, str], t: Traffic,
              status_label: str, ok: str, error: str,
              ok_labels: dict[str, str] | None = None,
              error_labels: dict[str, str] | None = None) -> None:
    """Counters per status: (1 - error_ratio) of the requests `ok`, the rest `error`."""
    total = t.rps * STEP
    errors = round(total * t.error_ratio)
    h.counter(name, {**labels, status_label: ok, **(ok_labels or {})}, total - errors)
    h.counter(name, {**labels, status_label: error, **(error_labels or {})}, errors)


def generic(h: History) -> None:
    for app, variants in VARIANTS.items():
        for variant, t in variants.items():
            deployment = f"{app}-primary" if variant == "stable" else f"{app}-canary"
            labels = {
                "job": "kubernetes-pods", "namespace": NAMESPACE,
                "pod": f"{deployment}-6d9c7b-x2k4q", "app": app,
                "canary_dev_name": app, "canary_dev_variant": variant, "method": "GET",
            }
            _requests(h, "http_requests_total", labels, t, "code", "200", "500")
            hist = {k: v for k, v in labels.items() if k != "method"}
            h.histogram("http_request_duration_seconds", hist, t, SECONDS_BUCKETS, 1.0)


def istio(h: History) -> None:
    for app, variants in VARIANTS.items():
        for variant, t in variants.items():
            workload = f"{app}-primary" if variant == "stable" else f"{app}-canary"
            for reporter, service in (("source", f"{app}-{variant}"), ("destination", app)):
                labels = {
                    "reporter": reporter,
                    "source_workload": "istio-ingressgateway",
                    "source_workload_namespace": "istio-system",
                    "source_canonical_service": "istio-ingressgateway",
                    "destination_workload": workload,
                    "destination_workload_namespace": NAMESPACE,
                    "destination_service": f"{service}.{NAMESPACE}.svc.cluster.local",
                    "destination_service_name": service,
                    "destination_service_namespace": NAMESPACE,
                    "destination_canonical_service": app,
                    "destination_version": "unknown",
                    "request_protocol": "http",
                    "response_flags": "-",
                    "connection_security_policy": "unknown",
                }
                _requests(h, "istio_requests_total", labels, t, "response_code", "200", "503")
                h.histogram("istio_request_duration_milliseconds",
                            {**labels, "response_code": "200"}, t, ISTIO_MS_BUCKETS, 1000.0)


def linkerd(h: History) -> None:
    for app, variants in VARIANTS.items():
        for variant, t in variants.items():
            deployment = f"{app}-primary" if variant == "stable" else f"{app}-canary"
            pod = {
                "namespace": NAMESPACE, "deployment": deployment,
                "pod": f"{deployment}-7f8b9-abcde", "pod_template_hash": "7f8b9",
                "serviceaccount": "default",
                "control_plane_ns": "linkerd", "app": app,
                "canary_dev_name": app, "canary_dev_variant": variant,
            }
            inbound = {**pod, "direction": "inbound", "tls": "true",
                       "authority": f"{app}.{NAMESPACE}.svc.cluster.local:8080",
                       "srv_kind": "default", "srv_name": "all-unauthenticated",
                       "target_addr": "0.0.0.0:8080"}
            _requests(h, "response_total", inbound, t, "classification", "success", "failure",
                      ok_labels={"status_code": "200"}, error_labels={"status_code": "500"})
            h.histogram("response_latency_ms", {**inbound, "status_code": "200"}, t,
                        LINKERD_MS_BUCKETS, 1000.0)
            # The pod's own outbound calls, failing often: must not count as its errors.
            outbound = {**pod, "direction": "outbound", "tls": "true",
                        "authority": f"db.{NAMESPACE}.svc.cluster.local:5432",
                        "dst_namespace": NAMESPACE, "dst_deployment": "db"}
            _requests(h, "response_total", outbound, Traffic(200, 0.3, 0.5), "classification",
                      "success", "failure", ok_labels={"status_code": "200"},
                      error_labels={"status_code": "503"})


def nginx(h: History) -> None:
    controller = {"controller_class": "k8s.io/ingress-nginx",
                  "controller_namespace": "ingress-nginx",
                  "controller_pod": "ingress-nginx-controller-5d88495688-6lgx9"}
    for app, variants in VARIANTS.items():
        for variant, t in variants.items():
            # Canary requests keep the main Ingress and Service; `canary` names the upstream.
            labels = {**controller, "host": f"{app}.example.com", "ingress": app,
                      "method": "GET", "namespace": NAMESPACE, "path": "/",
                      "service": f"{app}-stable",
                      "canary": "" if variant == "stable" else f"{NAMESPACE}-{app}-canary-80"}
            _requests(h, "nginx_ingress_controller_requests", labels, t, "status", "200", "502")
            h.histogram("nginx_ingress_controller_request_duration_seconds",
                        {**labels, "status": "200"}, t, SECONDS_BUCKETS, 1.0)


def envoy(h: History) -> None:
    scrape = {"job": "envoy-stats", "namespace": "gateway-system", "pod": "envoy-gw-5b7d9-qwert"}
    clusters = {  # Contour names the good app's clusters, Istio the bad app's
        GOOD: lambda svc: f"{NAMESPACE}_{svc}_80",
        BAD: lambda svc: f"outbound|80||{svc}.{NAMESPACE}.svc.cluster.local",
    }
    for app, variants in VARIANTS.items():
        for variant, t in variants.items():
            labels = {**scrape, "envoy_cluster_name": clusters[app](f"{app}-{variant}")}
            _envoy_cluster(h, labels, t)
    # A Service whose name merely starts with the canary's, failing badly.
    decoy = {**scrape, "envoy_cluster_name": f"{NAMESPACE}_{GOOD}-canary-old_80"}
    _envoy_cluster(h, decoy, Traffic(rps=500, error_ratio=0.5, median_seconds=2.0))


def _envoy_cluster(h: History, labels: dict[str, str], t: Traffic) -> None:
    total = t.rps * STEP
    errors = round(total * t.error_ratio)
    h.counter("envoy_cluster_upstream_rq_total", labels, total)
    h.counter("envoy_cluster_upstream_rq_xx", {**labels, "envoy_response_code_class": "2"},
              total - errors)
    h.counter("envoy_cluster_upstream_rq_xx", {**labels, "envoy_response_code_class": "5"},
              errors)
    h.histogram("envoy_cluster_upstream_rq_time", labels, t, ENVOY_MS_BUCKETS, 1000.0)


def history(now: int) -> str:
    h = History(now)
    for system in (generic, istio, linkerd, nginx, envoy):
        system(h)
    return h.text()


@pytest.fixture(scope="module")
def loaded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path_factory.mktemp("templates-prometheus"))
    prom.backfill(history(int(time.time())))
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


# ---------------------------------------------------------------- the tests


def test_every_shipped_template_is_tested_here() -> None:
    shipped = sorted(
        doc["metadata"]["name"]
        for path in LIBRARY.glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    )
    assert shipped == sorted(TEMPLATES)


@pytest.mark.parametrize("app", [GOOD, BAD], ids=["good-canary", "bad-canary"])
@pytest.mark.parametrize("name", TEMPLATES)
def test_template_verdict(loaded_prometheus: Prometheus, name: str, app: str) -> None:
    template = load_template(name, LIBRARY)
    args = resolve_args(template, ARGS[name.split("-", 1)[0]][app])
    expected = Verdict.PASS if app == GOOD else Verdict.FAIL
    provider = PrometheusMetricProvider(loaded_prometheus.url)
    try:
        for metric in template.spec.metrics:
            now = dt.datetime.now(dt.UTC)
            # Latency comparisons take their slow-request bound from stable's traffic
            # before the judged window, as the controller does from before the rollout.
            before = to_iso(now - dt.timedelta(seconds=WINDOW))
            baseline = baseline_for(metric, None, before)
            task = MetricTask(metric.name, metric, args, WINDOW, baseline=baseline)
            status = evaluate(task, provider.measure(task), None, now)
            assert status.verdict is expected, status.reason
            assert status.value is not None, status.reason
    finally:
        provider.close()
