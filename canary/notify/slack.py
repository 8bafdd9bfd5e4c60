"""Slack-compatible incoming webhooks: Slack and Mattermost take the same payload.

A one-line ``text`` (what notifications and clients without attachments show) and one
attachment with the colour of the outcome, the message and the facts as fields. Both
products render attachments; Mattermost documents them as its Slack compatibility.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from canary.engine.clock import from_iso
from canary.notify.base import Notification, SinkPlugin, Trigger, post_json

COLOURS = {
    Trigger.ROLLED_BACK: "#d93f0b",
    Trigger.PAUSED: "#fbca04",
    Trigger.PROMOTED: "#2eb67d",
    Trigger.UNDO: "#d93f0b",
}
NEUTRAL = "#439fe0"


def facts(notification: Notification) -> list[tuple[str, str]]:
    """What every sink shows besides the message, in order."""
    out = [("Canary", f"{notification.namespace}/{notification.name}")]
    if notification.revision:
        out.append(("Revision", notification.revision))
    return [*out, ("Phase", notification.phase), ("Reason", notification.reason)]


@dataclass(frozen=True)
class SlackSink:
    name: str
    url: str

    def payload(self, notification: Notification) -> dict[str, Any]:
        return {
            "text": f"{notification.title}: {notification.message}",
            "attachments": [
                {
                    "fallback": f"{notification.title}: {notification.message}",
                    "color": COLOURS.get(notification.trigger, NEUTRAL),
                    "title": notification.title,
                    "text": notification.message,
                    "fields": [
                        {"title": key, "value": value, "short": len(value) < 40}
                        for key, value in facts(notification)
                    ],
                    "footer": f"canary · {notification.id}",
                    "ts": int(from_iso(notification.time).timestamp()),
                }
            ],
        }

    def send(self, client: httpx.Client, notification: Notification) -> None:
        post_json(client, self.url, self.payload(notification))


PLUGIN = SinkPlugin("slack", SlackSink)
MATTERMOST = SinkPlugin("mattermost", SlackSink)
