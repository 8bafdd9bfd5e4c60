"""The MetricProvider plug-in interface and the registry that picks a provider for a metric.

A provider turns one :class:`~canary.engine.samples.MetricTask` into one
:data:`~canary.engine.samples.Sample`: raw numbers, never verdicts (the engine judges).

Contract (checked for every provider by ``tests/unit/provider_contract.py``):

- ``measure`` never raises because of the backend or the network. Unreachable, slow or
  erroring backends give ``ProviderFailure(message, transient=True)``; problems that will
  not fix themselves (a query the backend rejects, a missing arg, a result of the wrong
  shape) give ``ProviderFailure(message, transient=False)``. The message names the
  backend's address and says what to change.
- "No data" is not a failure: a threshold query with no series gives
  ``ScalarSample(None)``; comparison counts with no series count as 0.
- Provider instances are long-lived, reused across reconciles and safe to call from
  several threads.

The registry never falls back to a default backend: a metric whose provider block names
an unknown backend, or a backend without an address, is a PermanentError that names the
field and the supported backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from canary.api.models import Metric
from canary.engine.samples import MetricTask, Sample
from canary.errors import PermanentError

__all__ = [
    "DEFAULT_TIMEOUT",
    "MetricProvider",
    "ProviderFactory",
    "ProviderRegistry",
    "default_registry",
    "provider_for",
    "validate_address",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a provider waits for its backend per query."""


@runtime_checkable
class MetricProvider(Protocol):
    """A metrics backend, e.g. :class:`canary.providers.prometheus.PrometheusMetricProvider`."""

    name: str

    def measure(self, task: MetricTask) -> Sample:
        """Query the backend for ``task``; never raises for backend or network problems."""
        ...


ProviderFactory = Callable[[str, float], MetricProvider]
"""Builds a provider for (address, timeout seconds)."""


def validate_address(address: str, *, field: str) -> str:
    """Check that ``address`` is an http(s) URL with a host; return it without a trailing /."""
    try:
        parts = urlsplit(address.strip())
        host, _ = parts.hostname, parts.port
    except ValueError as exc:  # "http://[::1" (an unclosed IPv6 literal), port 99999
        raise PermanentError(f"{field} is not a URL ({exc}): {address!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise PermanentError(
            f"{field} must be an http:// or https:// URL with a host, got {address!r}"
        )
    if parts.query or parts.fragment:
        raise PermanentError(f"{field} must not have a query string or fragment: {address!r}")
    return address.strip().rstrip("/")


def _prometheus_factory(address: str, timeout: float) -> MetricProvider:
    from canary.providers.prometheus import PrometheusMetricProvider  # heavy import, lazily

    return PrometheusMetricProvider(address, timeout=timeout)


class ProviderRegistry:
    """Maps a metric's provider block to a cached provider instance (one per backend+address).

    ``factories`` maps a provider block's field name (``prometheus``) to a factory; pass
    your own to test, or call :meth:`register` to add a backend.
    """

    def __init__(self, factories: dict[str, ProviderFactory] | None = None) -> None:
        self._factories: dict[str, ProviderFactory] = (
            dict(factories) if factories is not None else {"prometheus": _prometheus_factory}
        )
        self._cache: dict[tuple[str, str, float], MetricProvider] = {}
        self._lock = threading.Lock()

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def register(self, name: str, factory: ProviderFactory) -> None:
        with self._lock:
            self._factories[name] = factory

    def provider_for(
        self,
        metric: Metric,
        *,
        default_prometheus_url: str | None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MetricProvider:
        """The provider that measures ``metric``.

        Raises PermanentError when the provider block names no backend, an unsupported
        backend, or a backend without a usable address.
        """
        name, block = self._chosen_block(metric)
        address = getattr(block, "address", None)
        field = f"metrics[{metric.name}].provider.{name}.address"
        if not address and name == "prometheus":
            address = default_prometheus_url
            if not address:
                raise PermanentError(
                    f"{field} is not set and the controller has no --prometheus-url; "
                    "set one of them"
                )
        if not address:
            raise PermanentError(f"{field} is not set")
        address = validate_address(
            address,
            field=field if getattr(block, "address", None) else "--prometheus-url",
        )
        key = (name, address, float(timeout))
        with self._lock:
            provider = self._cache.get(key)
            if provider is None:
                provider = self._factories[name](address, timeout)
                self._cache[key] = provider
        return provider

    def _chosen_block(self, metric: Metric) -> tuple[str, object]:
        provider = metric.provider
        fields = list(type(provider).model_fields) + list(provider.model_extra or {})
        chosen = [(n, getattr(provider, n, None)) for n in fields]
        chosen = [(n, b) for n, b in chosen if b is not None]
        supported = ", ".join(self.supported) or "(none)"
        where = f"metrics[{metric.name}].provider"
        if not chosen:
            raise PermanentError(f"{where} names no backend; supported: {supported}")
        if len(chosen) > 1:
            names = ", ".join(n for n, _ in chosen)
            raise PermanentError(f"{where} sets more than one backend ({names}); set exactly one")
        name, block = chosen[0]
        if name not in self._factories:
            raise PermanentError(
                f"{where}.{name} is not a supported provider; supported: {supported}"
            )
        return name, block

    def close(self) -> None:
        """Close every cached provider that has a ``close()`` and forget them."""
        with self._lock:
            providers, self._cache = list(self._cache.values()), {}
        for provider in providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()


default_registry = ProviderRegistry()
"""The process-wide registry the controller and CLI use."""


def provider_for(
    metric: Metric,
    *,
    default_prometheus_url: str | None,
    timeout: float = DEFAULT_TIMEOUT,
    registry: ProviderRegistry | None = None,
) -> MetricProvider:
    """The (cached) provider for ``metric``; see :meth:`ProviderRegistry.provider_for`."""
    return (registry or default_registry).provider_for(
        metric, default_prometheus_url=default_prometheus_url, timeout=timeout
    )
