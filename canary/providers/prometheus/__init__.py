"""Prometheus as a metric provider plug-in.

- :mod:`canary.providers.prometheus.promql`: pure, escaping PromQL template rendering.
- :mod:`canary.providers.prometheus.client`: queries through prometheus-api-client,
  imported only when a provider is built (linting templates does not need ``requests``).
- :mod:`canary.providers.prometheus.answers`: the client's reading of query results and
  of HTTP and network errors.
"""

from __future__ import annotations

from pydantic import Field

from canary.api.base import Model
from canary.errors import PermanentError
from canary.providers.base import MetricProvider, ProviderPlugin, Settings, validate_address
from canary.providers.prometheus import checks

__all__ = ["PLUGIN", "PrometheusConfig"]


class PrometheusConfig(Model):
    """``provider: {prometheus: {...}}``."""

    address: str | None = Field(
        default=None, description="Defaults to the controller's --prometheus-url."
    )
    query: str | None = Field(
        default=None, description="Threshold metrics: PromQL giving one number."
    )


def _address(config: PrometheusConfig, settings: Settings) -> str:
    field = f"{settings.field}.address"
    address = settings.default_address if settings.address_wins else config.address
    if not address:
        address = settings.default_address
        if not address:
            raise PermanentError(
                f"{field} is not set and the controller has no --prometheus-url; set one of them"
            )
        field = "--prometheus-url"
    return validate_address(address, field=field)


def _build(config: PrometheusConfig, settings: Settings) -> MetricProvider:
    from canary.providers.prometheus.client import PrometheusMetricProvider

    return PrometheusMetricProvider(_address(config, settings), timeout=settings.timeout)


PLUGIN = ProviderPlugin(
    name="prometheus",
    config=PrometheusConfig,
    build=_build,
    comparisons=True,
    share=_address,  # the query travels with each task: one client per server
    check=checks.check,
    try_args=checks.try_args,
)
