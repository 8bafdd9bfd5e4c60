"""Every metric provider plug-in, by the name a template uses under ``provider:``.

Adding a backend is one module exposing ``PLUGIN`` (see :mod:`canary.providers.base`)
and one line in :data:`PLUGINS`. Plug-ins load on first use, so linting a template that
uses only Prometheus never imports an HTTP client it does not need.

The registry never falls back to a default backend: an unknown name is a PermanentError
that names the field and the supported backends.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping

from pydantic import ValidationError

from canary.api.analysis_template import Metric
from canary.errors import PermanentError
from canary.providers.base import DEFAULT_TIMEOUT, MetricProvider, ProviderPlugin, Settings

__all__ = [
    "PLUGINS",
    "ProviderRegistry",
    "default_registry",
    "plugin",
    "provider_for",
    "supported",
]

PLUGINS: Mapping[str, str] = {
    "prometheus": "canary.providers.prometheus",
    "web": "canary.providers.web",
}
"""Provider name -> the module that defines its ``PLUGIN``."""


def supported() -> str:
    return ", ".join(sorted(PLUGINS))


def plugin(name: str, *, field: str = "provider") -> ProviderPlugin:
    """The plug-in called ``name``; PermanentError naming ``field`` when there is none."""
    module = PLUGINS.get(name)
    if module is None:
        raise _unsupported(field, name, PLUGINS)
    found: ProviderPlugin = importlib.import_module(module).PLUGIN
    return found


def _unsupported(field: str, name: str, names: Mapping[str, object]) -> PermanentError:
    listed = ", ".join(sorted(names)) or "(none)"
    return PermanentError(f"{field}.{name} is not a supported provider; supported: {listed}")


class ProviderRegistry:
    """Maps a metric's provider block to a cached provider instance (one per block).

    ``plugins`` replaces the built-in table (tests pass their own).
    """

    def __init__(self, plugins: Mapping[str, ProviderPlugin] | None = None) -> None:
        self._plugins = dict(plugins) if plugins is not None else None
        self._cache: dict[tuple[str, str, float], MetricProvider] = {}
        # Each reconcile asks again for every metric: remember the answer per block as
        # written, so the block is validated once, not on every measurement.
        self._by_block: dict[tuple[str, str, str | None, bool, float], MetricProvider] = {}
        self._lock = threading.Lock()

    def _plugin(self, name: str, field: str) -> ProviderPlugin:
        if self._plugins is None:
            return plugin(name, field=field)
        if name not in self._plugins:
            raise _unsupported(field, name, self._plugins)
        return self._plugins[name]

    def provider_for(
        self,
        metric: Metric,
        *,
        default_addresses: Mapping[str, str | None] | None = None,
        address_wins: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MetricProvider:
        """The provider that measures ``metric``.

        ``default_addresses`` maps a provider name to the address its blocks get when they
        set none (the controller's --prometheus-url); with ``address_wins`` it replaces
        theirs. Raises PermanentError when the block names an unsupported backend or its
        fields are unusable.
        """
        name, block = metric.provider.backend
        default_address = (default_addresses or {}).get(name)
        written = json.dumps(block, sort_keys=True)
        seen = (name, written, default_address, address_wins, float(timeout))
        with self._lock:
            known = self._by_block.get(seen)
        if known is not None:
            return known
        field = f"metrics[{metric.name}].provider"
        chosen = self._plugin(name, field)
        try:
            config = chosen.config.model_validate(block)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise PermanentError(f"{field}.{name}.{where}: {first['msg']}") from None
        settings = Settings(
            timeout=float(timeout),
            default_address=default_address,
            address_wins=address_wins,
            field=f"{field}.{name}",
        )
        shared = chosen.share(config, settings) if chosen.share else written
        key = (name, shared, settings.timeout)
        with self._lock:
            provider = self._cache.get(key)
            if provider is None:
                provider = chosen.build(config, settings)
                self._cache[key] = provider
            self._by_block[seen] = provider
        return provider

    def close(self) -> None:
        """Close every cached provider that has a ``close()`` and forget them."""
        with self._lock:
            providers, self._cache, self._by_block = list(self._cache.values()), {}, {}
        for provider in providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()


default_registry = ProviderRegistry()
"""The process-wide registry the controller and CLI use."""


def provider_for(
    metric: Metric,
    *,
    default_addresses: Mapping[str, str | None] | None = None,
    address_wins: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    registry: ProviderRegistry | None = None,
) -> MetricProvider:
    """The (cached) provider for ``metric``; see :meth:`ProviderRegistry.provider_for`."""
    return (registry or default_registry).provider_for(
        metric, default_addresses=default_addresses, address_wins=address_wins, timeout=timeout
    )
