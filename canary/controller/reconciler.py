"""The long-running controller: watch, queue, reconcile.

One reconcile = load the Canary, observe (target revision, readiness, due metrics and
webhooks, a manual request), ask the pure engine, apply its actions in order, write the whole
status once. All rollout state lives in the Canary's status, and every action is
idempotent, so `kill -9` at any moment followed by a restart repeats at most the
last reconcile's actions and ends with the same outcome.

The steps live in observe.py, apply.py and record.py; this module keeps their order in
one place, next to the watches and workers that call it.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from canary.api import naming
from canary.api.canary import Canary, CanarySpec
from canary.api.status import CanaryStatus, Phase
from canary.controller import apply, handback, observe, record, workloads
from canary.controller.health import Health
from canary.controller.leader import LeaderElector
from canary.controller.logs import reconcile_log as log
from canary.controller.notifications import Notifier
from canary.controller.telemetry import Metrics
from canary.controller.workqueue import WorkQueue
from canary.engine import machine
from canary.engine.actions import Observations
from canary.engine.transitions import initializing
from canary.errors import CanaryError, PermanentError, TransientError
from canary.kube.cache import Store
from canary.kube.errors import Forbidden, Gone, NotFound
from canary.kube.port import KubePort, Obj
from canary.routers import router_for
from canary.validation import validate_canary

RESYNC_SECONDS = 30.0
RESYNC_SETTLED_SECONDS = 300.0
PERMANENT_RETRY_SECONDS = 60.0
HANDBACK_POLL_SECONDS = 2.0


@dataclass
class Controller:
    kube: KubePort
    prometheus_url: str | None = None
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    workers: int = 4
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    elector: LeaderElector | None = None
    health: Health = field(default_factory=Health)
    metrics: Metrics = field(default_factory=Metrics)
    notifier: Notifier | None = None  # None: no notifications

    def __post_init__(self) -> None:
        self.queue = WorkQueue()
        self.metrics.watch_queue(self.queue)
        self._targets: dict[tuple[str, str], set[str]] = {}  # (ns, deployment) -> canaries
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._failures: dict[str, int] = {}
        self._reported: dict[str, str] = {}  # last permanent error told per Canary

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        self.kube.require_crds()
        self.health.contacted()
        self.kube.cache = Store()
        if self.elector is not None:
            threading.Thread(
                target=self.elector.run, args=(self._stop,), daemon=True, name="leader-election"
            ).start()
            log.info("waiting to become leader")
            self.health.standing_by = True
            while not self.elector.leading.wait(1.0):
                if self._stop.is_set():
                    return
            self.health.standing_by = False
        if self.notifier is not None:  # only the leader sends
            self.notifier.start(self._stop)
        scopes: list[str | None] = list(self.namespaces) or [None]
        watches = [
            (kind, ns) for kind in ("Canary", "Deployment", "AnalysisTemplate") for ns in scopes
        ] + [("ClusterAnalysisTemplate", None)]
        for kind, ns in watches:
            threading.Thread(
                target=self._watch_loop, args=(kind, ns), daemon=True,
                name=f"watch-{kind}-{ns or 'all'}",
            ).start()
        # Reconciles read the cache: start them once it holds everything (or after a
        # minute, reading what is missing from the API server meanwhile).
        self.kube.cache.wait_synced(timeout=60)
        for i in range(self.workers):
            threading.Thread(target=self._worker, daemon=True, name=f"worker-{i}").start()
        log.info(
            "controller started: namespaces=%s prometheus=%s",
            ",".join(self.namespaces) or "*",
            self.prometheus_url,
        )
        try:
            while not self._stop.wait(1.0):
                if self.elector is not None and not self.elector.leading.is_set():
                    # Another replica may already act on our Canaries: stop at once and let
                    # the restart start over as a candidate.
                    raise TransientError("lost leadership")
        finally:
            self.queue.shutdown()

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()

    def _watch_loop(self, kind: str, ns: str | None) -> None:
        """List, then watch, `kind`: every object goes into the cache, and Canary and
        Deployment changes queue the Canaries they concern."""
        cache = self.kube.cache
        assert cache is not None
        while not self._stop.is_set():
            try:
                items, rv = self.kube.list_objects(kind, ns)
                cache.replace(kind, ns, items)
                self.health.contacted()
                for obj in items:
                    self._on_event(kind, "ADDED", obj)
                while not self._stop.is_set():
                    for event, obj in self.kube.watch(kind, ns, rv):
                        self.health.contacted()
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        if event != "BOOKMARK":
                            cache.apply(kind, event, obj)
                            self._on_event(kind, event, obj)
                    self.health.contacted()  # the watch ran its full minute and closed
            except Gone:
                log.info("watch %s: resourceVersion expired, re-listing", kind)
            except CanaryError as exc:
                if kind == "ClusterAnalysisTemplate" and isinstance(exc, Forbidden | NotFound):
                    # Optional: without the right to read them (or their CRD), there are none.
                    log.info("ClusterAnalysisTemplates unavailable (%s); using none", exc)
                    cache.replace(kind, None, [])
                    return
                log.warning("watch %s: %s; retrying in 2s", kind, exc)
                self._stop.wait(2.0)

    def _on_event(self, kind: str, event: str, obj: Obj) -> None:
        if kind not in ("Canary", "Deployment"):
            return
        meta = obj.get("metadata", {})
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        if kind == "Canary":
            target = (obj.get("spec") or {}).get("targetRef", {}).get("name")
            with self._lock:
                for (target_ns, _), names in self._targets.items():
                    if target_ns == ns:
                        names.discard(name)
                if target and event != "DELETED":
                    self._targets.setdefault((ns, target), set()).add(name)
            if event == "DELETED":
                self.metrics.forget(ns, name)
            else:
                self.queue.add(f"{ns}/{name}")
            return
        owner = (meta.get("labels") or {}).get(naming.LABEL_NAME)
        with self._lock:
            keys = set(self._targets.get((ns, name), set()))
        if owner:
            keys.add(owner)
        for canary_name in keys:
            self.queue.add(f"{ns}/{canary_name}")

    def _worker(self) -> None:
        name = threading.current_thread().name
        while not self._stop.is_set():
            self.health.beat(name)
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            started = time.monotonic()
            try:
                after = self.reconcile_key(key)
                self._failures.pop(key, None)
            except TransientError as exc:
                self.metrics.failed("transient")
                n = self._failures[key] = self._failures.get(key, 0) + 1
                after = min(30.0, 0.5 * 2 ** min(n, 6))
                log.warning("%s: %s (retry in %.1fs)", key, exc, after)
            except Exception:
                self.metrics.failed("crash")
                log.exception("%s: reconcile crashed; retrying in 10s", key)
                after = 10.0
            finally:
                self.queue.done(key)
                self.metrics.reconciled(time.monotonic() - started)
            if after is None:
                # Settled Canaries are still revisited now and then, in case a watch event
                # was lost: behind urgent work, and spread out so that a thousand Canaries
                # onboarded together are not all revisited in the same second.
                resync = RESYNC_SETTLED_SECONDS * random.uniform(0.8, 1.2)
                self.queue.add(key, resync, background=True)
            else:
                self.queue.add(key, min(after, RESYNC_SECONDS))

    # ------------------------------------------------------------------ reconcile

    def reconcile_key(self, key: str) -> float | None:
        ns, name = key.split("/", 1)
        try:
            obj = self.kube.get_canary(ns, name)
        except NotFound:
            self._reported.pop(key, None)
            self.metrics.forget(ns, name)
            return None
        try:
            after = self.reconcile(obj)
        except PermanentError as exc:
            self.metrics.failed("permanent")
            # Needs a human (a missing HTTPRoute, a forbidden call): say it once, on the object.
            if self._reported.get(key) != str(exc):
                self._reported[key] = str(exc)
                record.event(self.kube, obj, "Warning", "ReconcileError", str(exc))
            log.warning("%s: %s (will retry in %.0fs)", key, exc, PERMANENT_RETRY_SECONDS)
            return PERMANENT_RETRY_SECONDS
        self._reported.pop(key, None)
        return after

    def reconcile(self, obj: Obj) -> float | None:
        now = self.clock()
        meta = obj["metadata"]
        ns = meta.setdefault("namespace", "default")
        if meta.get("deletionTimestamp"):
            return self._hand_back(obj)
        handback.add_finalizer(self.kube, obj)  # before anything of the user's is changed
        templates = observe.read_templates(self.kube, ns)
        findings = [str(f) for f in validate_canary(obj, templates)]
        try:
            canary = Canary.model_validate(obj)
        except ValidationError:
            return self._write_invalid(obj, findings, now)

        target = workloads.read_target(self.kube, obj)
        primary = self.kube.get_deployment(ns, naming.primary(canary.metadata.name))
        can_dep = self.kube.get_deployment(ns, naming.canary_deployment(canary.metadata.name))
        onboarding = canary.status.stable_revision is None
        findings += workloads.foreign_objects(self.kube, obj, primary, can_dep, services=onboarding)
        status = canary.status
        stable_rev = (
            status.canary_revision if status.phase == Phase.PROMOTING else status.stable_revision
        )
        beat = functools.partial(self.health.beat, threading.current_thread().name)
        canary_ready = workloads.is_ready(can_dep, status.canary_revision)
        samples, answers = {}, {}
        if not findings:
            samples = observe.measure(canary, templates, now, self.prometheus_url, beat)
            answers = observe.call_webhooks(
                canary, templates, now, canary_ready=canary_ready, beat=beat
            )
        obs = Observations(
            target_revision=target.revision if target else None,
            stable_ready=workloads.is_ready(primary, stable_rev),
            canary_ready=canary_ready,
            samples=samples,
            request=observe.parse_request(canary.metadata.annotations, status.last_request_id, now),
            spec_errors=tuple(findings),
            webhooks=answers,
        )
        decision = machine.step(canary, templates, obs, now)
        if self.notifier is not None:
            decision = self.notifier.stamp(obj, decision, now)
        apply.apply_actions(self.kube, obj, canary, decision, target, primary)
        carried = None  # not read: the last reading stands
        if not findings and not initializing(decision.status):
            # Also after a SetWeight: the router read back what it wrote, which is not yet
            # what the data plane carries where pods must start first.
            carried = apply.converge_route(self.kube, canary, decision.status.canary_weight)
        record.write(self.kube, self.metrics, obj, canary.status, decision, now, carried)
        if self.notifier is not None:
            self.notifier.offer(obj, decision.status)
        if obs.stable_ready and not findings and not initializing(decision.status):
            apply.handoff_target(self.kube, obj, target)
        return decision.requeue_after

    def _hand_back(self, obj: Obj) -> float | None:
        """The Canary is being deleted: give the app back, then let it go."""
        meta = obj["metadata"]
        if handback.FINALIZER not in (meta.get("finalizers") or []):
            return None
        route_back = None
        delay = CanarySpec.model_fields["scale_down_delay_seconds"].default
        try:
            canary = Canary.model_validate(obj)
            delay = canary.spec.scale_down_delay_seconds
            route_back = functools.partial(router_for(canary, self.kube).teardown, canary)
        except (ValidationError, PermanentError) as exc:
            log.warning("%s: the route cannot be given back (%s)", meta["name"], exc)
        waiting = handback.hand_back(self.kube, obj, route_back, self.clock(), delay)
        key = f"{meta['namespace']}/{meta['name']}"
        if waiting is None:
            self._reported.pop(key, None)
            log.info("%s: handed back to the user's Deployment; the Canary is gone", key)
            return None
        if self._reported.get(key) != waiting:
            self._reported[key] = waiting
            message = f"the Canary is being deleted: {waiting}"
            record.event(self.kube, obj, "Normal", "HandingBack", message)
        return HANDBACK_POLL_SECONDS

    def _write_invalid(self, obj: Obj, findings: list[str], now: dt.datetime) -> float | None:
        try:
            status = CanaryStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            status = CanaryStatus()
        decision = machine.reject(status, tuple(findings), now)
        record.write(self.kube, self.metrics, obj, status, decision, now)
        return None
