"""The notification sink plug-in interface.

A sink turns one :class:`Notification` into one HTTP request to its receiver. Contract
(checked for every sink by ``tests/unit/test_notify_contract.py``):

- ``payload`` is pure: the same Notification gives the same body, and it names the Canary,
  the trigger, the revision and the message (the receiver sees nothing else).
- ``send`` makes exactly one POST and either returns (the receiver took it) or raises
  :class:`DeliveryError`, never anything else: ``retry`` is true when a later attempt may
  succeed (the network, a timeout, 408, 429, 5xx) and false when it cannot (a 4xx that
  says the URL or the payload is wrong). Retrying is the dispatcher's job, not the sink's.
- Sinks hold no connection of their own: the dispatcher passes its ``httpx.Client``, whose
  timeouts bound every call.

A plug-in is one module exposing ``PLUGIN``, a :class:`SinkPlugin`;
:mod:`canary.notify.registry` names every plug-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx

__all__ = [
    "DEFAULT_TRIGGERS",
    "DeliveryError",
    "Notification",
    "Sink",
    "SinkPlugin",
    "Trigger",
    "post_json",
]


class Trigger(StrEnum):
    ROLLOUT_STARTED = "rolloutStarted"
    STEP_ADVANCED = "stepAdvanced"
    PAUSED = "paused"
    ROLLED_BACK = "rolledBack"
    PROMOTED = "promoted"
    BAKE_FINISHED = "bakeFinished"
    UNDO = "undo"


# Every step of every rollout would drown the channel: steps are opt-in per route.
DEFAULT_TRIGGERS = frozenset(Trigger) - {Trigger.STEP_ADVANCED}

TITLES: Mapping[Trigger, str] = {
    Trigger.ROLLOUT_STARTED: "rollout started",
    Trigger.STEP_ADVANCED: "step advanced",
    Trigger.PAUSED: "paused",
    Trigger.ROLLED_BACK: "rolled back",
    Trigger.PROMOTED: "promoted",
    Trigger.BAKE_FINISHED: "bake finished",
    Trigger.UNDO: "undone",
}


@dataclass(frozen=True)
class Notification:
    """What one sink is told about one transition of one Canary."""

    id: str  # the same for every attempt and every sink: receivers deduplicate on it
    trigger: Trigger
    namespace: str
    name: str
    revision: str | None
    phase: str
    reason: str
    message: str
    time: str  # RFC 3339, when the transition was decided

    @property
    def title(self) -> str:
        return f"{self.namespace}/{self.name}: {TITLES[self.trigger]}"


class DeliveryError(Exception):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@runtime_checkable
class Sink(Protocol):
    @property
    def name(self) -> str:
        """The sink's name in the configuration, e.g. "team-chat"."""
        ...

    def payload(self, notification: Notification) -> dict[str, Any]:
        """The JSON body sent for ``notification``."""
        ...

    def send(self, client: httpx.Client, notification: Notification) -> None:
        """POST the payload once; raise DeliveryError when the receiver did not take it."""
        ...


@dataclass(frozen=True)
class SinkPlugin:
    type: str  # the value of a sink's `type:` in the configuration
    build: Callable[[str, str], Sink]  # (sink name, URL) -> sink


def post_json(
    client: httpx.Client,
    url: str,
    body: Mapping[str, Any],
    *,
    content_type: str = "application/json",
) -> None:
    """POST ``body`` as JSON; map every failure to a DeliveryError that says whether to
    retry. The URL is a secret (it carries the webhook's token), so messages name only its
    host."""
    host = httpx.URL(url).host
    try:
        response = client.post(url, json=dict(body), headers={"Content-Type": content_type})
    except httpx.TimeoutException:
        raise DeliveryError(f"{host} did not answer in time", retry=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{host}: {type(exc).__name__}: {exc}", retry=True) from None
    code = response.status_code
    if code < 300:
        return
    retry = code in (408, 425, 429) or code >= 500
    text = response.text.strip().replace("\n", " ")[:200]
    raise DeliveryError(f"{host} answered {code}: {text or response.reason_phrase}", retry=retry)
