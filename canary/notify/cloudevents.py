"""A generic JSON webhook: a CloudEvents 1.0 event in structured mode.

The event's ``id`` is the notification's id, the same on every attempt and after a
controller restart, so a receiver that drops ids it has seen gets each transition once
(CloudEvents: source + id identify an event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from canary.api.base import GROUP, VERSION
from canary.notify.base import Notification, SinkPlugin, post_json

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TYPE_PREFIX = "dev.canary.rollout."


@dataclass(frozen=True)
class CloudEventsSink:
    name: str
    url: str

    def payload(self, notification: Notification) -> dict[str, Any]:
        n = notification
        return {
            "specversion": "1.0",
            "id": n.id,
            "source": f"/apis/{GROUP}/{VERSION}/namespaces/{n.namespace}/canaries/{n.name}",
            "type": f"{TYPE_PREFIX}{n.trigger.value}",
            "subject": f"{n.namespace}/{n.name}",
            "time": n.time,
            "datacontenttype": "application/json",
            "data": {
                "namespace": n.namespace,
                "name": n.name,
                "trigger": n.trigger.value,
                "revision": n.revision,
                "phase": n.phase,
                "reason": n.reason,
                "message": n.message,
            },
        }

    def send(self, client: httpx.Client, notification: Notification) -> None:
        post_json(client, self.url, self.payload(notification), content_type=CONTENT_TYPE)


PLUGIN = SinkPlugin("cloudevents", CloudEventsSink)
