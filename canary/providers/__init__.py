"""Metric providers: plug-ins behind the small :class:`MetricProvider` protocol.

- :mod:`canary.providers.base`: the protocol and the registry (``provider_for``).
- :mod:`canary.providers.promql`: pure, escaping PromQL template rendering.
- :mod:`canary.providers.prometheus`: Prometheus through prometheus-api-client.

The Prometheus provider is imported lazily (``from canary.providers import
PrometheusMetricProvider`` still works) so that linting templates does not pull in
``requests`` and ``prometheus_api_client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from canary.providers.base import (
    DEFAULT_TIMEOUT,
    MetricProvider,
    ProviderRegistry,
    default_registry,
    provider_for,
)
from canary.providers.promql import render

if TYPE_CHECKING:
    from canary.providers.prometheus import PrometheusMetricProvider

__all__ = [
    "DEFAULT_TIMEOUT",
    "MetricProvider",
    "PrometheusMetricProvider",
    "ProviderRegistry",
    "default_registry",
    "provider_for",
    "render",
]


def __getattr__(name: str) -> Any:
    if name == "PrometheusMetricProvider":
        from canary.providers.prometheus import PrometheusMetricProvider

        return PrometheusMetricProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
