"""Reading Prometheus' answers: a query result into (labels, value) series or cumulative
buckets, and an HTTP or network error into a failure that says what to do about it.

Everything here raises or returns :class:`Failed`; the client turns it into the
ProviderFailure its ``measure()`` returns (see the table in client.py).
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from canary.engine.samples import Buckets, ProviderFailure

_MAX_QUOTE = 300  # characters of a query or response body quoted in a message


class Failed(Exception):
    """Carries a ProviderFailure out of a helper to measure()."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.failure = ProviderFailure(message, transient=transient)


def network_reason(error: requests.exceptions.RequestException) -> str | None:
    """A short reason for a network error, or None when it was a (read) timeout."""
    for arg in error.args:
        if isinstance(arg, MaxRetryError):
            reason = arg.reason
            if isinstance(reason, NewConnectionError):  # before Timeout: it subclasses it
                text = str(reason)
                marker = "Failed to establish a new connection: "
                return text.split(marker, 1)[1] if marker in text else text
            if isinstance(reason, Urllib3Timeout):
                return None
            if reason is not None:
                return str(reason)
            return str(arg)
        if isinstance(arg, Urllib3Timeout) and not isinstance(arg, NewConnectionError):
            return None
    return str(error) or type(error).__name__


_API_ERROR = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)


def http_failure(error: PrometheusApiClientException, where: str, promql: str) -> Failed:
    """Map a non-200 answer (as prometheus-api-client reports it) to a failure."""
    status, body = _parse_api_error(str(error))
    detail, error_type = _prometheus_error(body)
    query = _quote(promql)
    if status is None:
        return Failed(f"{where} failed: {_quote(str(error))}", transient=True)
    if status == 400:
        return Failed(
            f"{where} rejected the query ({error_type or 'bad_data'}): {detail}; query: {query}",
            transient=False,
        )
    if status == 422:
        return Failed(
            f"{where} could not evaluate the query ({error_type or 'execution'}): {detail}; "
            f"query: {query}",
            transient=False,
        )
    if status == 404:
        return Failed(
            f"{where} has no query API (HTTP 404 for /api/v1/query); check the address "
            "(provider.prometheus.address or --prometheus-url, including any path prefix)",
            transient=False,
        )
    if status in (401, 403, 407):
        return Failed(f"{where} refused access (HTTP {status}): {detail}", transient=False)
    transient = status >= 500 or status in (408, 429)
    kind = f", {error_type}" if error_type else ""
    return Failed(f"{where} failed (HTTP {status}{kind}): {detail}", transient=transient)


def _parse_api_error(text: str) -> tuple[int | None, str]:
    """(status, body) from 'HTTP Status Code 400 (b'...')'; (None, text) if unrecognised."""
    match = _API_ERROR.match(text)
    if match is None:
        return None, text
    raw = match.group(2)
    try:
        content = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        content = raw
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return int(match.group(1)), str(content)


def _prometheus_error(body: str) -> tuple[str, str | None]:
    """(error text, errorType) from a Prometheus error body, or the body itself."""
    try:
        payload = json.loads(body)
    except ValueError:
        return _quote(body.strip() or "(empty body)"), None
    if isinstance(payload, dict) and payload.get("error"):
        error_type = payload.get("errorType")
        return str(payload["error"]), str(error_type) if error_type else None
    return _quote(body.strip()), None


def _quote(text: str) -> str:
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"not a number: {raw!r}")
    return float(raw)  # Prometheus writes "NaN", "+Inf", "-Inf", which float() reads


def series(result: Any, url: str) -> list[tuple[dict[str, str], float]]:
    """Normalise ``data.result`` of an instant query into [(labels, value)]."""
    where = f"Prometheus at {url}"
    if not isinstance(result, list):
        raise Failed(
            f"{where} returned an unexpected result: {_quote(repr(result))}", transient=False
        )
    if not result:
        return []
    if not isinstance(result[0], dict):  # scalar or string: [timestamp, "value"]
        if len(result) != 2:
            raise Failed(
                f"{where} returned an unexpected result: {_quote(repr(result))}",
                transient=False,
            )
        try:
            return [({}, _to_float(result[1]))]
        except ValueError:
            raise Failed(
                f"query returned a string ({_quote(repr(result[1]))}), not a number",
                transient=False,
            ) from None
    out: list[tuple[dict[str, str], float]] = []
    for item in result:
        if not isinstance(item, dict):
            raise Failed(f"{where} returned an unexpected result item: {item!r}", transient=False)
        labels = item.get("metric") or {}
        if "values" in item:
            raise Failed(
                "query returned a range vector; make it an instant vector, "
                "e.g. wrap it in rate(), increase() or sum_over_time()",
                transient=False,
            )
        if "value" not in item:
            if "histogram" in item:
                raise Failed(
                    "query returned a native histogram; use classic buckets "
                    "(a *_bucket series with an le label) or histogram_count()",
                    transient=False,
                )
            raise Failed(f"{where} returned a sample without a value: {item!r}", transient=False)
        try:
            value = _to_float(item["value"][1])
        except (ValueError, TypeError, IndexError, KeyError):
            raise Failed(
                f"{where} returned a sample with an unreadable value: {_quote(repr(item))}",
                transient=False,
            ) from None
        out.append(({str(k): str(v) for k, v in labels.items()}, value))
    return out


def to_buckets(label: str, series: list[tuple[dict[str, str], float]]) -> Buckets:
    """Cumulative buckets sorted by ``le`` with +Inf last; () when there is no data."""
    if not series:
        return ()
    by_le: dict[float, float] = {}
    for labels, value in series:
        raw_le = labels.get("le")
        if raw_le is None:
            shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) or "no labels"
            raise Failed(
                f"{label}: returned a series without an le label ({shown}); bucketsQuery "
                "must give one series per bucket, e.g. "
                "sum by (le) (increase(x_bucket{...}[{{window}}]))",
                transient=False,
            )
        try:
            le = float(raw_le)
        except ValueError:
            le = math.nan
        if math.isnan(le):
            raise Failed(f"{label}: le label {raw_le!r} is not a number", transient=False)
        if le in by_le:
            raise Failed(
                f'{label}: returned more than one series with le="{raw_le}"; '
                "aggregate them, e.g. sum by (le) (...)",
                transient=False,
            )
        by_le[le] = 0.0 if math.isnan(value) else value
    if math.inf not in by_le:
        raise Failed(
            f'{label}: no le="+Inf" bucket among the results; '
            "do not filter out the +Inf bucket (it carries the total count)",
            transient=False,
        )
    buckets: list[tuple[float, float]] = []
    running = 0.0
    for le in sorted(by_le):
        running = max(running, by_le[le])
        buckets.append((le, running))
    return tuple(buckets)
