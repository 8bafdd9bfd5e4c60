"""The controller's side of notifications: stamp a decision's transitions into the status it
is about to write, and hand what is Pending to the dispatcher once it is written.

See canary.notify.outbox for why that gives one message per transition.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

import httpx

from canary.api.status import CanaryStatus, SinkDelivery
from canary.controller import record
from canary.controller.logs import reconcile_log as log
from canary.engine.actions import Decision
from canary.errors import PermanentError
from canary.kube.port import KubePort, Obj
from canary.notify.config import DEFAULT_CONFIGMAP, ConfigSource
from canary.notify.dispatcher import Dispatcher
from canary.notify.outbox import announced, stamp


class Notifier:
    def __init__(
        self,
        kube: KubePort,
        namespace: str,
        configmap: str = DEFAULT_CONFIGMAP,
        *,
        report: Callable[[str, str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        config_ttl: float = 10.0,
    ) -> None:
        self.kube = kube
        self.config = ConfigSource(kube, namespace, configmap, ttl=config_ttl)
        self.dispatcher = Dispatcher(kube, self.config, report=report, transport=transport)
        self._told: dict[str, str] = {}  # the configuration error last told per Canary

    def start(self, stop: threading.Event) -> None:
        self.dispatcher.run(stop)

    def stamp(self, obj: Obj, decision: Decision, now: dt.datetime) -> Decision:
        """`decision` with its announced transitions in the status outbox, one entry per
        transition, each routed sink Pending. Without a configuration, unchanged."""
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        found = announced(meta.get("uid") or f"{ns}/{name}", decision, now)
        if not found:
            return decision
        try:
            config = self.config.get()
        except PermanentError as exc:
            # Said once per Canary and problem; the transitions meanwhile go unannounced.
            if self._told.get(f"{ns}/{name}") != str(exc):
                self._told[f"{ns}/{name}"] = str(exc)
                record.event(self.kube, obj, "Warning", "NotificationsMisconfigured", str(exc))
            return decision
        self._told.pop(f"{ns}/{name}", None)
        if config is None:
            return decision
        records = [
            entry.model_copy(update={"sinks": [SinkDelivery(name=s) for s in sinks]})
            for trigger, entry in found
            if (sinks := config.sinks_for(ns, name, trigger))
        ]
        if records:
            log.info("%s/%s: notifying %s", ns, name, ", ".join(r.trigger for r in records))
        return dataclasses.replace(decision, status=stamp(decision.status, records))

    def offer(self, obj: Obj, status: CanaryStatus) -> None:
        """Queue the Pending deliveries of `status`, just written for `obj`."""
        if status.notifications:
            meta = obj["metadata"]
            self.dispatcher.offer(meta["namespace"], meta["name"], status.notifications)
