"""Typed errors: transient ones are retried on the next reconcile, permanent ones stop and tell."""

from __future__ import annotations


class CanaryError(Exception):
    """Base for errors the product raises on purpose; the message is for the user."""


class TransientError(CanaryError):
    """Likely to succeed later (timeouts, 5xx, conflicts): retry with backoff."""


class PermanentError(CanaryError):
    """Will not fix itself (bad config, missing object, forbidden): stop and say what to fix."""
