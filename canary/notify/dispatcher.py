"""Sending the outbox: background threads, so a slow or dead receiver never holds up a
reconcile.

Reconciles only :meth:`Dispatcher.offer` the Pending entries of a status they wrote (a
non-blocking put on a bounded queue); worker threads POST them, retry with exponential
backoff up to ``delivery.maxAttempts``, and record Sent or Failed in the Canary's status
(a resourceVersion-guarded patch, re-read and retried on Conflict). A failure for good
also leaves a Warning Event (NotificationFailed) on the Canary; every outcome is counted
through ``report(sink, outcome)`` (the controller's canary_notifications_total).

The queue is not the record: the status is. An entry dropped because the queue is full,
or lost with the process, is still Pending in the status, and the next reconcile of its
Canary (at the latest the periodic resync) offers it again. Attempts restart from 1 after
a restart; they stay bounded per process.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError

from canary.api.status import CanaryStatus, DeliveryState, NotificationRecord
from canary.errors import CanaryError, PermanentError
from canary.kube.errors import Conflict, NotFound
from canary.kube.port import KubePort, Obj
from canary.notify import registry
from canary.notify.base import DeliveryError
from canary.notify.config import ConfigSource, Delivery
from canary.notify.outbox import mark, notification, pending_sinks

log = logging.getLogger("canary.notify")

MAX_BACKOFF = 300.0
SETTLE_TRIES = 5
Key = tuple[str, str, str, str]  # namespace, Canary, notification id, sink


def _no_report(sink: str, outcome: str) -> None:
    pass


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    key: Key = field(compare=False)
    record: NotificationRecord = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Dispatcher:
    def __init__(
        self,
        kube: KubePort,
        config: ConfigSource,
        *,
        report: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_queue: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.kube, self.config, self.clock = kube, config, clock
        self.report = report or _no_report
        self.max_queue, self.transport = max_queue, transport
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._known: set[Key] = set()  # queued, or being sent
        # Settled here, but the cache may still show them Pending for a moment: never twice.
        self._settled: OrderedDict[Key, None] = OrderedDict()
        self._clients: dict[float, httpx.Client] = {}

    # ------------------------------------------------------------------ the reconcile side

    def offer(self, namespace: str, name: str, records: list[NotificationRecord]) -> None:
        """Queue every Pending delivery not already queued or settled; never blocks."""
        with self._cond:
            for record in records:
                for delivery in pending_sinks(record):
                    key = (namespace, name, record.id, delivery.name)
                    if key in self._known or key in self._settled:
                        continue
                    if len(self._heap) >= self.max_queue:
                        log.warning(
                            "notification queue full; %s/%s waits for a resync", namespace, name
                        )
                        return
                    self._known.add(key)
                    heapq.heappush(self._heap, _Job(self.clock(), next(self._seq), key, record))
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self._known

    # ------------------------------------------------------------------ the workers

    def run(self, stop: threading.Event, workers: int = 2) -> list[threading.Thread]:
        """Start `workers` sending threads; they end when `stop` is set."""
        threads = [
            threading.Thread(target=self._work, args=(stop,), daemon=True, name=f"notify-{i}")
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            job = self._take(wait=1.0)
            if job is not None:
                self._attempt(job)
        self.close()

    def run_due(self) -> int:
        """Send everything due now, in this thread; how many attempts were made."""
        made = 0
        while (job := self._take(wait=0.0)) is not None:
            self._attempt(job)
            made += 1
        return made

    def _take(self, wait: float) -> _Job | None:
        with self._cond:
            if self._heap and self._heap[0].due <= self.clock():
                return heapq.heappop(self._heap)
            if wait > 0:
                ahead = self._heap[0].due - self.clock() if self._heap else wait
                self._cond.wait(max(0.0, min(wait, ahead)))
            return None

    def _attempt(self, job: _Job) -> None:
        sink = job.key[3]
        delivery = Delivery()
        try:
            config = self.config.get()
            spec = config.sink(sink) if config is not None else None
            if config is None or spec is None:
                raise DeliveryError(f"no sink {sink!r} is configured any more", retry=False)
            delivery = config.delivery
            target = registry.build(spec.type, spec.name, self.config.url(spec))
            target.send(
                self._client(delivery.timeout_seconds),
                notification(job.key[0], job.key[1], job.record),
            )
        except (DeliveryError, PermanentError) as exc:
            # A configuration problem (a missing Secret, say) may be fixed before the
            # next attempt: only a receiver's own refusal is final at once.
            retry = exc.retry if isinstance(exc, DeliveryError) else True
            if retry and job.attempt < delivery.max_attempts:
                self.report(sink, "retried")
                backoff = min(MAX_BACKOFF, delivery.backoff_seconds * 2 ** (job.attempt - 1))
                log.info(
                    "notification %s to %s: %s; retrying in %.1fs",
                    job.record.id,
                    sink,
                    exc,
                    backoff,
                )
                with self._cond:
                    job.due, job.attempt = self.clock() + backoff, job.attempt + 1
                    heapq.heappush(self._heap, job)
                    self._cond.notify_all()
                return
            self.report(sink, "failed")
            self._settle(job, DeliveryState.FAILED, str(exc))
            return
        self.report(sink, "sent")
        self._settle(job, DeliveryState.SENT, None)

    def _client(self, timeout: float) -> httpx.Client:
        with self._cond:
            client = self._clients.get(timeout)
            if client is None:
                client = self._clients[timeout] = httpx.Client(
                    timeout=timeout, transport=self.transport, follow_redirects=False
                )
            return client

    def close(self) -> None:
        with self._cond:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # ------------------------------------------------------------------ recording

    def _settle(self, job: _Job, state: DeliveryState, error: str | None) -> None:
        namespace, name, record_id, sink = job.key
        try:
            obj = self._write(job, state, error)
        finally:
            with self._cond:
                self._known.discard(job.key)
                self._settled[job.key] = None
                while len(self._settled) > 10 * self.max_queue:
                    self._settled.popitem(last=False)
        if state is DeliveryState.FAILED:
            message = (
                f"notification {job.record.trigger} ({record_id}) to sink {sink} failed "
                f"after {job.attempt} attempt(s): {error}"
            )
            log.warning("%s/%s: %s", namespace, name, message)
            if obj is not None:
                try:
                    self.kube.emit_event(obj, "Warning", "NotificationFailed", message)
                except CanaryError as exc:
                    log.warning("event NotificationFailed for %s/%s: %s", namespace, name, exc)

    def _write(self, job: _Job, state: DeliveryState, error: str | None) -> Obj | None:
        """Record the outcome in the status; the Canary as last read (None: gone)."""
        namespace, name, record_id, sink = job.key
        obj: Obj | None = None
        for attempt in range(SETTLE_TRIES):
            try:
                obj = self.kube.get_canary(namespace, name)
                status = CanaryStatus.model_validate(obj.get("status") or {})
            except NotFound:
                return None
            except (CanaryError, ValidationError) as exc:
                log.warning(
                    "notification %s: cannot read %s/%s: %s", record_id, namespace, name, exc
                )
                return obj
            records = mark(status.notifications, record_id, sink, state, job.attempt, error)
            if records is None:
                return obj
            body = {"notifications": [r.wire() for r in records]}
            try:
                version = obj["metadata"]["resourceVersion"]
                return self.kube.patch_canary_status(namespace, name, body, version)
            except Conflict:
                time.sleep(0.1 * (attempt + 1))  # the cache catches up with the write we lost to
            except CanaryError as exc:
                log.warning("notification %s: cannot record %s: %s", record_id, state, exc)
                return obj
        log.warning(
            "notification %s: %s not recorded after %d conflicts; a restart may send it again",
            record_id,
            state,
            SETTLE_TRIES,
        )
        return obj
