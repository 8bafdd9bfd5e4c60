"""Calling the webhooks the engine says are due (canary.engine.hooks), with httpx.

A call is a POST of the rollout's context as JSON. A 2xx answer is a Pass, any other
answer (a redirect too: it is not followed) a Fail, and no answer an Error: a timeout,
a refused connection, or a URL that cannot be called. Only an Error is retried, after a
short backoff (0.5s, 1s, 2s, 2s, ...); an answer is the endpoint's word and asking again
would not change it.

A hanging endpoint never stalls the controller: each attempt has the webhook's timeout,
the answer's body is read only up to a few kilobytes and only until the call's budget
(every attempt's timeout plus the backoffs) is spent, and the reconcile waits for its
calls, run side by side on a shared pool, no longer than the largest budget. A call
still running then (an endpoint trickling bytes under the per-read timeout) is reported
as an Error and left to end on its own.

Requests carry two fixed headers, Content-Type and User-Agent; nothing from the spec
reaches a header: metadata goes into the body, through json.dumps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import httpx

from canary.api.durations import format_duration
from canary.api.status import Verdict
from canary.api.webhooks import url_problem
from canary.engine.hooks import WebhookCall, WebhookResult

USER_AGENT = "canary-controller"
_HEADERS = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
_MAX_BODY_BYTES = 4096
_MAX_QUOTE = 200
_FIRST_BACKOFF, _MAX_BACKOFF = 0.5, 2.0
# Shared by every worker: a reconcile's calls run side by side, and a few Canaries'
# slow endpoints cannot take more threads than this.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="webhook")


def budget(call: WebhookCall) -> float:
    """The longest one call may take, retries and backoffs included."""
    backoffs = sum(_backoff(i) for i in range(call.retries))
    return (call.retries + 1) * call.timeout_seconds + backoffs


def _backoff(attempt: int) -> float:
    return float(min(_FIRST_BACKOFF * 2**attempt, _MAX_BACKOFF))


def call_all(
    calls: Iterable[WebhookCall], beat: Callable[[], None] = lambda: None
) -> dict[str, WebhookResult]:
    """Every call's result by webhook name; waits at most the largest budget (and a
    second); `beat` tells the health check that the worker is waiting, not stuck."""
    futures: dict[Future[WebhookResult], WebhookCall] = {
        _POOL.submit(call_one, c): c for c in calls
    }
    if not futures:
        return {}
    longest = max(budget(c) for c in futures.values())
    deadline = time.monotonic() + longest + 1.0
    pending = set(futures)
    while pending and (left := deadline - time.monotonic()) > 0:
        beat()
        pending = wait(pending, timeout=min(1.0, left)).not_done
    results = {}
    for future, call in futures.items():
        if future in pending:
            future.cancel()
            why = f"no complete answer from {call.url} within {format_duration(budget(call))}"
            results[call.name] = WebhookResult(Verdict.ERROR, why)
        else:
            results[call.name] = future.result()
    return results


def call_one(call: WebhookCall, *, sleep: Callable[[float], None] = time.sleep) -> WebhookResult:
    """One webhook, retried on Error within its budget; never raises."""
    problem = url_problem(call.url)
    if problem:
        return WebhookResult(Verdict.ERROR, f"not called: the URL {problem}")
    try:
        body = json.dumps(dict(call.payload)).encode()
    except (TypeError, ValueError) as exc:
        return WebhookResult(Verdict.ERROR, f"not called: the body is not JSON ({exc})")
    deadline = time.monotonic() + budget(call)
    attempts, last = 0, ""
    with httpx.Client(timeout=call.timeout_seconds, follow_redirects=False) as client:
        for attempt in range(call.retries + 1):
            attempts += 1
            try:
                with client.stream("POST", call.url, content=body, headers=_HEADERS) as answer:
                    text = _read_some(answer, deadline)
                return _verdict(answer.status_code, text)
            except httpx.TimeoutException:
                last = f"{call.url} did not answer within {format_duration(call.timeout_seconds)}"
            except httpx.HTTPError as exc:
                last = f"cannot reach {call.url}: {exc or type(exc).__name__}"
            except Exception as exc:  # a webhook must never crash a reconcile
                last = f"calling {call.url} failed: {type(exc).__name__}: {exc}"
            pause = _backoff(attempt)
            if attempt == call.retries or time.monotonic() + pause >= deadline:
                break
            sleep(pause)
    tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
    return WebhookResult(Verdict.ERROR, f"{last} ({tries})")


def _read_some(answer: httpx.Response, deadline: float) -> str:
    """The start of the answer's body, for the status message: enough to say why."""
    data = b""
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) >= _MAX_BODY_BYTES or time.monotonic() > deadline:
            break
    return data[:_MAX_BODY_BYTES].decode("utf-8", errors="replace")


def _verdict(code: int, text: str) -> WebhookResult:
    said = " ".join(text.split())
    if len(said) > _MAX_QUOTE:
        said = said[: _MAX_QUOTE - 3] + "..."
    message = f"HTTP {code}" + (f": {said}" if said else "")
    return WebhookResult(Verdict.PASS if 200 <= code < 300 else Verdict.FAIL, message)
