"""spec.webhooks beyond the schema: unique names (the status keys results by name), a URL
that is an http(s) URL with a host and nothing that could split a request, and a timeout
that keeps a reconcile short. An unknown type is the schema's finding, which lists the
allowed ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.api.durations import format_duration, parse_duration
from canary.api.webhooks import MAX_TIMEOUT_SECONDS, url_problem
from canary.validation.findings import Finding, short_repr


def check_webhooks(webhooks: Any) -> list[Finding]:
    if not isinstance(webhooks, list):
        return []  # absent, or the schema reports it
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for i, hook in enumerate(webhooks):
        if not isinstance(hook, Mapping):
            continue
        here = f"spec.webhooks[{i}]"
        name, url, timeout = hook.get("name"), hook.get("url"), hook.get("timeout")
        if isinstance(name, str) and name in seen:
            findings.append(
                Finding(
                    f"{here}.name",
                    f"{short_repr(name)} repeats the name of spec.webhooks[{seen[name]}]",
                    "give each webhook a name of its own",
                )
            )
        elif isinstance(name, str):
            seen[name] = i
        problem = url_problem(url) if isinstance(url, str) and url else None
        if problem:
            findings.append(
                Finding(
                    f"{here}.url",
                    f"{short_repr(url)} {problem}",
                    "write an http:// or https:// URL with a host, e.g. "
                    "http://gate.ops.svc/confirm; put data for the endpoint in metadata",
                )
            )
        findings += _check_timeout(timeout, f"{here}.timeout")
    return findings


def _check_timeout(timeout: Any, here: str) -> list[Finding]:
    if not isinstance(timeout, str):
        return []
    try:
        seconds = parse_duration(timeout)
    except ValueError:
        return []  # the schema reports it
    limit = format_duration(MAX_TIMEOUT_SECONDS)
    if seconds <= 0:
        return [Finding(here, f"{short_repr(timeout)} gives no time to answer", "use e.g. 10s")]
    if seconds > MAX_TIMEOUT_SECONDS:
        return [
            Finding(
                here,
                f"{short_repr(timeout)} is above the maximum of {limit}: a reconcile waits for it",
                f"use {limit} or less; a slow job should answer at once and report later",
            )
        ]
    return []
