"""The metric provider plug-in interface.

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

A plug-in is one module that exposes ``PLUGIN``, a :class:`ProviderPlugin`: the schema of
its block under a metric's ``provider:``, how to build a provider from that block, and
the checks ``canary lint`` and the controller run on it. :mod:`canary.providers.registry`
names every plug-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel

from canary.engine.samples import MetricTask, Sample
from canary.errors import PermanentError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ConfigProblem",
    "MetricProvider",
    "ProviderPlugin",
    "Settings",
    "validate_address",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a provider waits for its backend per query."""


@runtime_checkable
class MetricProvider(Protocol):
    """A metrics backend, e.g. the Prometheus or the web provider."""

    name: str

    def measure(self, task: MetricTask) -> Sample:
        """Query the backend for ``task``; never raises for backend or network problems."""
        ...


class ConfigProblem(NamedTuple):
    """Something wrong in a metric's provider block, found before anything is measured."""

    field: str  # e.g. "metrics[0].provider.prometheus.query"
    message: str
    fix: str


@dataclass(frozen=True)
class Settings:
    """What the process (not the template) decides about a provider."""

    timeout: float = DEFAULT_TIMEOUT
    default_address: str | None = None  # e.g. the controller's --prometheus-url
    address_wins: bool = False  # default_address replaces the block's (canary analyze)
    field: str = "provider"  # where the block sits, for messages


def _no_checks(metric: Mapping[str, Any], where: str, args: Set[str]) -> list[ConfigProblem]:
    return []


def _no_arg_checks(metric: Any, values: Mapping[str, str]) -> list[str]:
    return []


@dataclass(frozen=True)
class ProviderPlugin:
    """One metrics backend, as the registry knows it."""

    name: str  # the key under a metric's provider:, e.g. "prometheus"
    config: type[BaseModel]  # validates that block (unknown fields are errors)
    build: Callable[[Any, Settings], MetricProvider]  # (validated block, settings)
    comparisons: bool  # can it count both variants' requests for a comparison metric?
    # Checks beyond the schema: (metric as written, "metrics[i]", declared args) -> problems.
    check: Callable[[Mapping[str, Any], str, Set[str]], list[ConfigProblem]] = _no_checks
    # A Canary's arg values against the metric: why each cannot be used (e.g. unsafe in a
    # query). Run before the rollout starts, so a bad value never reaches the backend.
    try_args: Callable[[Any, Mapping[str, str]], list[str]] = _no_arg_checks
    # Blocks with the same key share one provider instance (and its connection pool); by
    # default, identical blocks do.
    share: Callable[[Any, Settings], str] | None = None


def validate_address(address: str, *, field: str, whole_url: bool = False) -> str:
    """Check that ``address`` is an http(s) URL with a host; return it without a trailing /.

    A base address (``whole_url`` false) gets paths appended, so it may not carry a query.
    """
    try:
        parts = urlsplit(address.strip())
        host, _ = parts.hostname, parts.port
    except ValueError as exc:  # "http://[::1" (an unclosed IPv6 literal), port 99999
        raise PermanentError(f"{field} is not a URL ({exc}): {address!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise PermanentError(
            f"{field} must be an http:// or https:// URL with a host, got {address!r}"
        )
    if whole_url:
        return address.strip()
    if parts.query or parts.fragment:
        raise PermanentError(f"{field} must not have a query string or fragment: {address!r}")
    return address.strip().rstrip("/")
