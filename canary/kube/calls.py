"""How the client calls the API server: every request with a timeout, answers as plain
JSON where it matters, and every failure as one of canary's typed errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.rest import ApiException

from canary.errors import PermanentError, TransientError
from canary.kube.errors import Conflict, Forbidden, Gone, NotFound
from canary.kube.port import Obj

REQUEST_TIMEOUT = 30.0  # seconds; a half-open connection must not hang a worker forever


def translate(exc: ApiException, what: str) -> Exception:
    status = exc.status or 0
    reason = exc.reason or ""
    if status == 404:
        return NotFound(f"{what} not found")
    if status in (401, 403):
        return Forbidden(f"{what}: {reason} (check the kubeconfig user or the controller's RBAC)")
    if status == 409:
        return Conflict(f"{what}: conflict, will retry")
    if status == 410:
        return Gone(f"{what}: resourceVersion too old")
    if status == 422 or status == 400:
        return PermanentError(f"{what} rejected by the API server: {_message(exc)}")
    if status == 500 and "range is full" in _message(exc):
        # Retrying cannot help until someone frees addresses or widens the range.
        return PermanentError(
            f"{what}: the cluster has no free Service IP address ({_message(exc)}). Fix: "
            "delete unused Services, or widen the API server's --service-cluster-ip-range"
        )
    return TransientError(f"{what}: API server answered {status} {reason}")


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "").get("message", exc.body))
    except (TypeError, ValueError):
        return str(exc.body)


def call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise translate(exc, what) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(f"{what}: cannot reach the API server ({exc})") from None


def read_json(what: str, fn: Any, *args: Any) -> Obj:
    """The server's answer as plain JSON, skipping the client's typed models (their
    conversion costs more CPU than the request itself)."""
    return dict(json.loads(call(what, fn, *args, _preload_content=False).data))


def list_json(kind: str, fn: Any, args: tuple[Any, ...]) -> tuple[list[Obj], str]:
    """The items of the list call `fn(*args)`, and the list's resourceVersion to watch
    from."""
    data = read_json(f"list {kind}", fn, *args)
    return data.get("items") or [], data["metadata"]["resourceVersion"]


def watch_json(
    kind: str, fn: Any, args: tuple[Any, ...], resource_version: str, timeout_seconds: int
) -> Iterator[tuple[str, Obj]]:
    """Yield (event type, object) of a watch on the list call `fn(*args)` as the server
    sends them; raises Gone on 410."""
    w = watch.Watch()
    try:
        for event in w.stream(
            fn,
            *args,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            _request_timeout=timeout_seconds + REQUEST_TIMEOUT,
            allow_watch_bookmarks=True,
            deserialize=False,
        ):
            obj = event["object"]
            if event["type"] == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(f"watch {kind}: resourceVersion too old")
                raise TransientError(f"watch {kind}: {obj.get('message')}")
            yield event["type"], obj
    except ApiException as exc:
        raise translate(exc, f"watch {kind}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(f"watch {kind}: connection lost ({exc})") from None
    finally:
        w.stop()
