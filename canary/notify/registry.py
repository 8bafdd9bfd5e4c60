"""Every notification sink, by the ``type:`` a sink has in the configuration.

Adding a receiver is one module exposing a :class:`~canary.notify.base.SinkPlugin` and one
entry here. There is no default: an unknown type is an error naming the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from canary.errors import PermanentError
from canary.notify.base import Sink, SinkPlugin

SINKS: Mapping[str, str] = MappingProxyType(
    {
        "slack": "canary.notify.slack:PLUGIN",
        "mattermost": "canary.notify.slack:MATTERMOST",
        "teams": "canary.notify.teams:PLUGIN",
        "cloudevents": "canary.notify.cloudevents:PLUGIN",
    }
)
"""Sink type -> "module:attribute" of its SinkPlugin."""


def supported() -> str:
    return ", ".join(sorted(SINKS))


def plugin(type_: str) -> SinkPlugin:
    where = SINKS.get(type_)
    if where is None:
        raise PermanentError(f"{type_!r} is not a sink type; known: {supported()}")
    module, _, attribute = where.partition(":")
    found: SinkPlugin = getattr(importlib.import_module(module), attribute)
    return found


def build(type_: str, name: str, url: str) -> Sink:
    return plugin(type_).build(name, url)
