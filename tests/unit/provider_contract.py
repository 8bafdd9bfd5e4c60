"""The contract every MetricProvider must pass.

Use it by mixing :class:`MetricProviderContract` into a ``Test...`` class and
implementing its hooks for your backend (see ``test_prometheus_provider.py``)::

    class TestMyProviderContract(MetricProviderContract):
        def threshold_metric(self) -> Metric: ...
        ...

The contract speaks only in terms of the protocol (``name``, ``measure``) and the sample
types, so the same assertions hold for every backend:

- a healthy backend's numbers come back as ScalarSample / CountsSample / BucketsSample;
- "no data" is ScalarSample(None), not a failure;
- an unreachable or erroring backend is ProviderFailure(transient=True) naming its address;
- a query the backend rejects, or a missing arg, is ProviderFailure(transient=False);
- measure() never raises for any of these, and may be called repeatedly and concurrently.

The metrics the hooks return must use the arg ``service`` (CONTRACT_ARGS) in every query
and be what the ``serving`` backend answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from canary.api.analysis_template import Metric
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
from canary.providers.base import MetricProvider
from canary.providers.registry import plugin

CONTRACT_ARGS: Mapping[str, str] = {"service": "checkout"}
CONTRACT_WINDOW = 90.0

SCALAR = 0.25
COUNTS = {"canary": Counts(requests=200.0, errors=3.0), "stable": Counts(1800.0, 9.0)}
BUCKETS: dict[str, Buckets] = {
    "canary": ((0.1, 150.0), (0.5, 190.0), (1.0, 199.0), (math.inf, 200.0)),
    "stable": ((0.1, 1500.0), (0.5, 1750.0), (1.0, 1795.0), (math.inf, 1800.0)),
}


def comparison_metric() -> Metric:
    return Metric.model_validate(
        {
            "name": "error-rate",
            "provider": {"prometheus": {}},
            "comparison": {
                "type": "errorRate",
                "tolerance": 1.25,
                "requestsQuery": 'requests{service="{{args.service}}"}',
                "errorsQuery": 'errors{service="{{args.service}}"}',
            },
        }
    )


COVERED: set[str] = set()
"""Names of the plug-ins that have a contract test class (every registered one must)."""


class MetricProviderContract:
    """Mix into a Test* class; implement every hook that raises NotImplementedError.

    ``plugin`` names the registry entry under test. A plug-in that cannot measure
    comparisons (``PLUGIN.comparisons`` is false) skips those parts, and must instead turn a
    comparison metric into a permanent failure.
    """

    plugin = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        COVERED.add(cls.plugin)

    # ------------------------------------------------------------------ hooks

    def threshold_metric(self) -> Metric:
        """A thresholdRange metric whose query uses {{args.service}}."""
        raise NotImplementedError

    def error_rate_metric(self) -> Metric:
        """A comparison metric of type errorRate using {{args.service}} and {{variant}}."""
        raise NotImplementedError

    def latency_metric(self) -> Metric:
        """A comparison metric of type latency using {{args.service}} and {{variant}}."""
        raise NotImplementedError

    def serving(
        self,
        *,
        scalar: float | None = SCALAR,
        counts: Mapping[str, Counts] = COUNTS,
        buckets: Mapping[str, Buckets] = BUCKETS,
    ) -> MetricProvider:
        """A provider whose healthy backend answers the three metrics with these numbers.

        ``scalar=None`` means the threshold query has no series. ``buckets`` may be
        served in any order; the provider must sort them.
        """
        raise NotImplementedError

    def unreachable(self) -> tuple[MetricProvider, str]:
        """A provider whose backend cannot be reached, and the address its messages name."""
        raise NotImplementedError

    def server_error(self) -> tuple[MetricProvider, str]:
        """A provider whose backend answers every query with a server-side error (5xx)."""
        raise NotImplementedError

    def rejecting_query(self) -> MetricProvider:
        """A provider whose backend rejects every query as invalid (a bad query)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def task(self, metric: Metric, args: Mapping[str, str] = CONTRACT_ARGS) -> MetricTask:
        return MetricTask(
            key=f"contract/{metric.name}",
            metric=metric,
            args=dict(args),
            window_seconds=CONTRACT_WINDOW,
        )

    @property
    def comparisons(self) -> bool:
        return plugin(self.plugin).comparisons

    def all_metrics(self) -> list[Metric]:
        if not self.comparisons:
            return [self.threshold_metric()]
        return [self.threshold_metric(), self.error_rate_metric(), self.latency_metric()]

    # ------------------------------------------------------------------ the contract

    def test_is_a_metric_provider(self) -> None:
        provider = self.serving()
        assert isinstance(provider, MetricProvider)
        assert isinstance(provider.name, str)
        assert provider.name

    def test_contract_metrics_use_the_service_arg(self) -> None:
        for metric in self.all_metrics():
            text = metric.model_dump_json()
            assert "{{args.service}}" in text, metric.name

    def test_threshold_value(self) -> None:
        sample = self.serving(scalar=SCALAR).measure(self.task(self.threshold_metric()))
        assert sample == ScalarSample(SCALAR)

    def test_threshold_without_data_is_none_not_a_failure(self) -> None:
        sample = self.serving(scalar=None).measure(self.task(self.threshold_metric()))
        assert sample == ScalarSample(None)

    def test_comparisons_are_measured_or_refused_for_good(self) -> None:
        if self.comparisons:
            return
        sample = self.serving().measure(self.task(comparison_metric()))
        assert isinstance(sample, ProviderFailure) and not sample.transient, sample

    def test_error_rate_counts_per_variant(self) -> None:
        if not self.comparisons:
            pytest.skip("this plug-in does not measure comparisons")
        sample = self.serving().measure(self.task(self.error_rate_metric()))
        assert sample == CountsSample(canary=COUNTS["canary"], stable=COUNTS["stable"])

    def test_latency_buckets_sorted_cumulative_inf_last(self) -> None:
        if not self.comparisons:
            pytest.skip("this plug-in does not measure comparisons")
        sample = self.serving().measure(self.task(self.latency_metric()))
        assert isinstance(sample, BucketsSample)
        for buckets in (sample.canary, sample.stable):
            bounds = [le for le, _ in buckets]
            counts = [count for _, count in buckets]
            assert bounds == sorted(bounds)
            assert bounds[-1] == math.inf
            assert counts == sorted(counts)
        assert sample == BucketsSample(canary=BUCKETS["canary"], stable=BUCKETS["stable"])

    def test_unreachable_backend_is_a_transient_failure_naming_it(self) -> None:
        provider, address = self.unreachable()
        for metric in self.all_metrics():
            sample = provider.measure(self.task(metric))
            assert isinstance(sample, ProviderFailure), (metric.name, sample)
            assert sample.transient, sample
            assert address in sample.message, sample

    def test_server_error_is_a_transient_failure(self) -> None:
        provider, address = self.server_error()
        for metric in self.all_metrics():
            sample = provider.measure(self.task(metric))
            assert isinstance(sample, ProviderFailure), (metric.name, sample)
            assert sample.transient, sample
            assert address in sample.message, sample

    def test_rejected_query_is_a_permanent_failure(self) -> None:
        provider = self.rejecting_query()
        for metric in self.all_metrics():
            sample = provider.measure(self.task(metric))
            assert isinstance(sample, ProviderFailure), (metric.name, sample)
            assert not sample.transient, sample

    def test_missing_arg_is_permanent_names_it_and_needs_no_backend(self) -> None:
        providers = [self.serving(), self.unreachable()[0]]
        for provider in providers:
            for metric in self.all_metrics():
                sample = provider.measure(self.task(metric, args={}))
                assert isinstance(sample, ProviderFailure), (metric.name, sample)
                assert not sample.transient, sample
                assert "args.service" in sample.message, sample

    def test_measure_can_be_repeated(self) -> None:
        provider = self.serving()
        for metric in self.all_metrics():
            first: Sample = provider.measure(self.task(metric))
            assert provider.measure(self.task(metric)) == first

    def test_measure_is_safe_from_several_threads(self) -> None:
        provider = self.serving()
        tasks = [self.task(m) for m in self.all_metrics()] * 4
        with ThreadPoolExecutor(max_workers=6) as pool:
            samples = list(pool.map(provider.measure, tasks))
        expected = [provider.measure(t) for t in tasks]
        assert samples == expected
        assert not any(isinstance(s, ProviderFailure) for s in samples), samples
