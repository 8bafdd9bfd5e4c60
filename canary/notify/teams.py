"""Microsoft Teams: an Adaptive Card, the message format of Teams' incoming webhooks
(Workflows), which replaced the retired Office 365 connectors and their MessageCard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from canary.notify.base import Notification, SinkPlugin, Trigger, post_json
from canary.notify.slack import facts

STYLES = {Trigger.ROLLED_BACK: "attention", Trigger.PAUSED: "warning", Trigger.PROMOTED: "good"}


@dataclass(frozen=True)
class TeamsSink:
    name: str
    url: str

    def payload(self, notification: Notification) -> dict[str, Any]:
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": notification.title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "color": STYLES.get(notification.trigger, "default"),
                    "wrap": True,
                },
                {"type": "TextBlock", "text": notification.message, "wrap": True},
                {
                    "type": "FactSet",
                    "facts": [{"title": k, "value": v} for k, v in facts(notification)],
                },
            ],
        }
        return {
            "type": "message",
            "summary": notification.title,
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }

    def send(self, client: httpx.Client, notification: Notification) -> None:
        post_json(client, self.url, self.payload(notification))


PLUGIN = SinkPlugin("teams", TeamsSink)
