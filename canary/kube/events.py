"""Recurring Events as one object with a series count, the way client-go's recorder does.

The controller says the same thing again while a condition lasts ("waiting for the
deploy window", "metrics unavailable"). A new Event object each time floods
`kubectl describe` and `kubectl get events`; instead a repeat within SERIES_WINDOW of the
last one patches the first object's ``series`` (count, lastObservedTime), which kubectl
sorts and shows by. (events.k8s.io/v1 refuses the deprecated first/last timestamps on
new objects; kubectl falls back to ``eventTime`` for a single Event.)

Names end in the creation time in hex nanoseconds, as client-go's are, so `kubectl get
events`, which lists in name order, lists an object's Events in the order they happened.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canary.api.base import GROUP

SERIES_WINDOW = dt.timedelta(minutes=6)  # client-go's window; Events live 1 h by default
_PRUNE_AT = 4096  # remembered series before the expired ones are dropped

Key = tuple[str, ...]  # (namespace, object uid or name, type, reason, note)


@dataclass
class _Seen:
    name: str
    first: dt.datetime
    last: dt.datetime
    count: int


@dataclass(frozen=True)
class Occurrence:
    """Which Event object to write, and what goes in it."""

    name: str
    first: dt.datetime
    count: int  # 1: create the object; more: patch its series


class EventSeries:
    """Remembers recent Events per key; thread-safe."""

    def __init__(self) -> None:
        self._seen: dict[Key, _Seen] = {}
        self._lock = threading.Lock()

    def occur(self, key: Key, now: dt.datetime, new_name: str) -> Occurrence:
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.last > SERIES_WINDOW:
                if len(self._seen) >= _PRUNE_AT:
                    self._seen = {
                        k: s for k, s in self._seen.items() if now - s.last <= SERIES_WINDOW
                    }
                seen = self._seen[key] = _Seen(new_name, now, now, 0)
            seen.count += 1
            seen.last = now
            return Occurrence(seen.name, seen.first, seen.count)

    def forget(self, key: Key) -> None:
        """The object is gone (expired or deleted): the next occurrence starts afresh."""
        with self._lock:
            self._seen.pop(key, None)


def new_event(
    regarding: Mapping[str, Any],
    name: str,
    type_: str,
    reason: str,
    note: str,
    now: dt.datetime,
    component: str,
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event, first of its series."""
    meta = regarding["metadata"]
    instance = f"{component}-{os.uname().nodename}"[:128]
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta.get("namespace", "default")},
        "eventTime": micro_time(now),
        "action": reason,
        "reason": reason,
        "note": note,
        "type": type_,
        "reportingController": f"{GROUP}/{component}",
        "reportingInstance": instance,
        "regarding": {
            "apiVersion": regarding.get("apiVersion"),
            "kind": regarding.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace", "default"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
    }


def series_patch(count: int, now: dt.datetime) -> dict[str, Any]:
    """The merge patch that records one more occurrence of an Event."""
    return {"series": {"count": count, "lastObservedTime": micro_time(now)}}


def micro_time(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds_time(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
