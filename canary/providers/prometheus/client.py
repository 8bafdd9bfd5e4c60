"""Prometheus as a metric provider: instant queries through prometheus-api-client.

What each kind of metric asks and gets:

- threshold (``thresholdRange`` + ``provider.prometheus.query``): one instant query that
  must give a scalar or a vector with at most one series. One series or a scalar gives
  ``ScalarSample(value)``; no series, or NaN (e.g. ``0/0`` when there was no traffic),
  gives ``ScalarSample(None)`` (too little data); ``+Inf``/``-Inf`` are passed through.
- ``comparison.type: errorRate``: ``requestsQuery`` and ``errorsQuery``, each rendered with
  ``{{variant}}`` = canary and = stable and ``{{window}}`` = the task's window, each must
  give at most one series; no series (or NaN) counts as 0. Gives ``CountsSample``.
- ``comparison.type: latency``: ``bucketsQuery`` per variant must give one series per
  ``le`` label (e.g. ``sum by (le) (increase(x_bucket{...}[{{window}}]))``). Gives
  ``BucketsSample`` with buckets sorted by ``le``, ``+Inf`` last, and counts made
  cumulative with a running maximum (``increase()`` extrapolates each bucket separately,
  so a higher bucket can come out a hair below a lower one). No series gives ``()``.

Errors never escape :meth:`PrometheusMetricProvider.measure`; they become ProviderFailure:

==========================================  =========  =====================================
Problem                                     transient  Message says
==========================================  =========  =====================================
connection refused / DNS / reset            yes        cannot reach Prometheus at ADDRESS
no answer within ``timeout``                yes        did not answer within Ns
HTTP 5xx, 408, 429 (after ``retries``)      yes        HTTP status and Prometheus' error
HTTP 400 (bad_data: parse error)            no         Prometheus' error, the query
HTTP 422 (execution error)                  no         Prometheus' error, the query
HTTP 401/403/407                            no         access refused
HTTP 404                                    no         no query API: check the address
other HTTP 4xx                              no         HTTP status and body
a 200 answer that is not Prometheus JSON    no         not a Prometheus API
more than one series (threshold/counts)     no         aggregate it with sum() or similar
range vector, string or native histogram    no         what to change in the query
bucket series without ``le`` / no +Inf      no         what to change in the query
missing arg / bad placeholder (render)      no         the arg and what to add
==========================================  =========  =====================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from canary.api.analysis_template import Comparison
from canary.engine.samples import (
    Buckets,
    BucketsSample,
    Counts,
    CountsSample,
    MetricTask,
    ProviderFailure,
    Sample,
    ScalarSample,
)
from canary.errors import PermanentError
from canary.providers.base import DEFAULT_TIMEOUT, validate_address
from canary.providers.prometheus import answers
from canary.providers.prometheus.answers import Failed
from canary.providers.prometheus.promql import render

__all__ = ["PrometheusMetricProvider"]

VARIANTS = ("canary", "stable")


class PrometheusMetricProvider:
    """Runs a metric's queries against one Prometheus server.

    ``url`` is the server's base URL (with any path prefix, e.g.
    ``http://prometheus:9090`` or ``https://example.org/prometheus``). ``timeout`` is
    the per-query limit in seconds, also sent to Prometheus as the query's evaluation
    timeout. ``retries`` is how many times a refused connection or an HTTP 502/503/504/
    429/408 is retried at once within one measurement (read timeouts are not retried:
    that would double the wait); the engine's ``consecutiveErrorLimit`` handles longer
    outages. ``headers`` are sent with every request (e.g. ``Authorization``).
    """

    name = "prometheus"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 1,
        headers: Mapping[str, str] | None = None,
        verify_tls: bool = True,
    ) -> None:
        if not timeout > 0:
            raise PermanentError(f"the Prometheus timeout must be positive, got {timeout!r}")
        self.url = validate_address(url, field="Prometheus address")
        self.timeout = float(timeout)
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            other=0,
            redirect=0,
            backoff_factor=0.2,
            status_forcelist=(408, 429, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,  # hand the last 5xx back so its body can be quoted
            respect_retry_after_header=False,
        )
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(headers) if headers else None,
            disable_ssl=not verify_tls,
            retry=retry,
            timeout=self.timeout,  # type: ignore[arg-type]  # requests accepts floats
        )

    def __repr__(self) -> str:
        return f"PrometheusMetricProvider({self.url!r}, timeout={self.timeout:g})"

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ measuring

    def measure(self, task: MetricTask) -> Sample:
        """Run ``task``'s queries; never raises for Prometheus, network or query problems."""
        metric = task.metric
        try:
            if metric.comparison is None:
                return self._threshold(task)
            if metric.comparison.type == "errorRate":
                return self._counts(task, metric.comparison)
            return self._buckets(task, metric.comparison)
        except Failed as failed:
            return failed.failure
        except PermanentError as error:  # from render(): missing arg, bad placeholder, ...
            return ProviderFailure(str(error), transient=False)

    def _threshold(self, task: MetricTask) -> Sample:
        query = task.metric.provider.backend[1].get("query")
        if not isinstance(query, str) or not query:
            raise Failed("a thresholdRange metric needs provider.prometheus.query", transient=False)
        label = "provider.prometheus.query"
        promql = _rendered(label, query, task.args)
        series = self._labelled(label, promql)
        if not series:
            return ScalarSample(None)
        if len(series) > 1:
            raise _too_many(label, len(series))
        value = series[0][1]
        return ScalarSample(None if math.isnan(value) else value)

    def _counts(self, task: MetricTask, comparison: Comparison) -> Sample:
        if not (comparison.requests_query and comparison.errors_query):
            raise Failed(
                "an errorRate comparison needs requestsQuery and errorsQuery", transient=False
            )
        counts: dict[str, Counts] = {}
        for variant in VARIANTS:
            requests_ = self._count(task, "requestsQuery", comparison.requests_query, variant)
            errors = self._count(task, "errorsQuery", comparison.errors_query, variant)
            counts[variant] = Counts(requests=requests_, errors=errors)
        return CountsSample(canary=counts["canary"], stable=counts["stable"])

    def _count(self, task: MetricTask, role: str, template: str, variant: str) -> float:
        label = f"{role} ({variant})"
        promql = _rendered(label, template, task.args, variant, task.window_seconds)
        series = self._labelled(label, promql)
        if not series:
            return 0.0
        if len(series) > 1:
            raise _too_many(label, len(series))
        value = series[0][1]
        return 0.0 if math.isnan(value) else value

    def _buckets(self, task: MetricTask, comparison: Comparison) -> Sample:
        if not comparison.buckets_query:
            raise Failed("a latency comparison needs bucketsQuery", transient=False)
        buckets: dict[str, Buckets] = {}
        for variant in VARIANTS:
            label = f"bucketsQuery ({variant})"
            promql = _rendered(
                label, comparison.buckets_query, task.args, variant, task.window_seconds
            )
            buckets[variant] = answers.to_buckets(label, self._labelled(label, promql))
        baseline = None
        if task.baseline is not None:
            # Stable's traffic before the rollout: the same query, evaluated back then.
            label = "bucketsQuery (stable, before the rollout)"
            promql = _rendered(
                label, comparison.buckets_query, task.args, "stable", task.baseline.seconds
            )
            at = task.baseline.end.timestamp()
            baseline = answers.to_buckets(label, self._labelled(label, promql, at))
        return BucketsSample(canary=buckets["canary"], stable=buckets["stable"], baseline=baseline)

    def _labelled(
        self, label: str, promql: str, at: float | None = None
    ) -> list[tuple[dict[str, str], float]]:
        try:
            return answers.series(self._instant(promql, at), self.url)
        except Failed as failed:
            raise Failed(f"{label}: {failed}", transient=failed.failure.transient) from None

    # ------------------------------------------------------------------ HTTP

    def _instant(self, promql: str, at: float | None = None) -> Any:
        """The raw ``data.result`` of an instant query (at Unix time `at`, by default now);
        raises Failed on any problem."""
        where = f"Prometheus at {self.url}"
        params = {"timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            return self._client.custom_query(promql, params=params)
        except PrometheusApiClientException as error:
            raise answers.http_failure(error, where, promql) from None
        except requests.exceptions.JSONDecodeError:
            raise Failed(
                f"{where} answered with something that is not Prometheus API JSON; "
                "check the address (include any path prefix)",
                transient=False,
            ) from None
        except (KeyError, TypeError):  # JSON without data.result
            raise Failed(
                f"{where} answered without data.result; is it a Prometheus API?",
                transient=False,
            ) from None
        except requests.exceptions.Timeout:
            raise Failed(_timeout_message(where, self.timeout), transient=True) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as error:
            raise Failed(f"{where}: invalid address: {error}", transient=False) from None
        except requests.exceptions.RequestException as error:
            reason = answers.network_reason(error)
            if reason is None:
                raise Failed(_timeout_message(where, self.timeout), transient=True) from None
            raise Failed(f"cannot reach {where}: {reason}", transient=True) from None


# ---------------------------------------------------------------------- helpers


def _rendered(
    label: str,
    template: str,
    args: Mapping[str, str],
    variant: str | None = None,
    window_seconds: float | None = None,
) -> str:
    try:
        return render(template, args, variant=variant, window_seconds=window_seconds)
    except PermanentError as error:
        raise Failed(f"{label}: {error}", transient=False) from None


def _too_many(label: str, count: int) -> Failed:
    return Failed(
        f"{label}: query returned {count} series; aggregate it with sum() or similar",
        transient=False,
    )


def _timeout_message(where: str, timeout: float) -> str:
    return f"{where} did not answer within {timeout:g}s"
