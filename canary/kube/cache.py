"""The controller's watch-fed copy of the objects it reads (an informer's store).

The watch loops put every listed and watched object here, so an idle reconcile reads
nothing from the API server. The controller's own writes put the server's answer here
too: a reconcile must never read an object older than its own last write, or it could
act again on a status it has already moved past. Until a kind has been listed once,
reads of it go to the API server.
"""

from __future__ import annotations

import copy
import threading

from canary.kube.port import Obj

KINDS = ("Canary", "Deployment", "AnalysisTemplate", "ClusterAnalysisTemplate")


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _trim(obj: Obj) -> Obj:
    # managedFields are often half an object's size, and nothing here reads them.
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _older(new: Obj, old: Obj) -> bool:
    """Is `new` an earlier version than `old`? (resourceVersions are etcd revisions on
    every real API server; anything else counts as newer.)"""
    a = (new.get("metadata") or {}).get("resourceVersion", "")
    b = (old.get("metadata") or {}).get("resourceVersion", "")
    return a.isdigit() and b.isdigit() and int(a) < int(b)


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in KINDS}
        self._synced = {k: threading.Event() for k in KINDS}

    def replace(self, kind: str, namespace: str | None, items: list[Obj]) -> None:
        """A fresh LIST of `kind` in `namespace` (None: all namespaces)."""
        with self._lock:
            objects = self._objects[kind]
            for key in [k for k in objects if namespace is None or k[0] == namespace]:
                del objects[key]
            for obj in items:
                objects[_key(obj)] = _trim(obj)
        self._synced[kind].set()

    def apply(self, kind: str, event: str, obj: Obj) -> None:
        """A watch event, or the server's answer to one of our writes."""
        key = _key(obj)
        with self._lock:
            objects = self._objects[kind]
            old = objects.get(key)
            if old is not None and _older(obj, old):
                return
            if event == "DELETED":
                objects.pop(key, None)
            else:
                objects[key] = _trim(obj)

    def synced(self, kind: str) -> bool:
        return self._synced[kind].is_set()

    def wait_synced(self, timeout: float) -> bool:
        return all(event.wait(timeout) for event in self._synced.values())

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def items(self, kind: str, namespace: str | None) -> list[Obj]:
        with self._lock:
            found = [o for k, o in self._objects[kind].items() if namespace in (None, k[0])]
        return copy.deepcopy(found)
