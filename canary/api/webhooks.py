"""spec.webhooks: HTTP endpoints a rollout asks (gates) or tells (hooks), by type.

Each is a POST of the rollout's context as JSON; a 2xx answer is a Pass, any other answer
a Fail, and no answer (timeout, refused connection) an Error. What a result does depends
on the type (canary.engine.hooks says when each is called, canary.engine.hook_rules what
its result does). The URL is the only part that reaches the request line, and nothing
from the spec reaches a header: `metadata` travels in the JSON body only.
"""

from __future__ import annotations

from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field

from canary.api.base import Duration, Model

WebhookType = Literal[
    "confirm-rollout", "pre-rollout", "rollback", "load-test", "confirm-promotion", "post-rollout"
]
WEBHOOK_TYPES: tuple[str, ...] = get_args(WebhookType)

# Bounds that keep one reconcile short: a call, retries included, lasts at most
# (retries + 1) * timeout plus a few seconds of backoff.
MAX_TIMEOUT_SECONDS = 60.0
MAX_RETRIES = 5


class Webhook(Model):
    name: str = Field(min_length=1, description="Unique among spec.webhooks.")
    type: WebhookType = Field(
        description="confirm-rollout and pre-rollout gate the first traffic, "
        "confirm-promotion gates promotion, a 2xx from rollback rolls back, load-test is "
        "called each interval while the canary is live, post-rollout once at the end."
    )
    url: str = Field(min_length=1, description="http:// or https:// URL with a host.")
    timeout: Duration = Field(default="10s", description="Per attempt; at most 60s.")
    retries: int = Field(
        default=2,
        ge=0,
        le=MAX_RETRIES,
        description="Further attempts after a timeout or a refused connection (not after "
        "an answer).",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Sent in the JSON body, as `metadata`."
    )


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook's address, or None. Whitespace and control characters
    are refused outright: nothing may split the request line or start a header."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains whitespace or a control character"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError as exc:  # an unclosed IPv6 literal, a port out of range
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not host:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "carries credentials, which would be sent in a header"
    return None
