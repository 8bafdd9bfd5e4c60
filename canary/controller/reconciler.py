"""The long-running controller: watch, queue, reconcile.

One reconcile = load the Canary, observe (target revision, readiness, due metrics,
a manual request), ask the pure engine, apply its actions in order, write the whole
status once. All rollout state lives in the Canary's status, and every action is
idempotent, so `kill -9` at any moment followed by a restart repeats at most the
last reconcile's actions and ends with the same outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from canary.api import naming, request_codec
from canary.api.models import AnalysisTemplateSpec, Canary, CanaryStatus, Phase, template_key
from canary.controller import handback, workloads
from canary.controller.health import Health
from canary.controller.leader import LeaderElector
from canary.controller.telemetry import Metrics
from canary.controller.workqueue import WorkQueue
from canary.engine import machine
from canary.engine.actions import (
    Decision,
    EmitEvent,
    EnsureCanary,
    InitializeStable,
    ManualRequest,
    Observations,
    PromoteStable,
    RejectedRequest,
    ScaleDownCanary,
    SetWeight,
)
from canary.engine.samples import ProviderFailure, Sample
from canary.engine.tasks import due_tasks
from canary.engine.transitions import initializing
from canary.errors import CanaryError, PermanentError, TransientError
from canary.kube.cache import Store
from canary.kube.errors import Forbidden, Gone, NotFound
from canary.kube.port import KubePort, Obj
from canary.providers.registry import provider_for
from canary.routers import TrafficRouter, router_for
from canary.validation import validate_canary

log = logging.getLogger("canary.controller.reconciler")

RESYNC_SECONDS = 30.0
RESYNC_SETTLED_SECONDS = 300.0
PERMANENT_RETRY_SECONDS = 60.0
HANDBACK_POLL_SECONDS = 2.0


def parse_request(
    annotations: Mapping[str, str], last_id: str | None, now: dt.datetime
) -> ManualRequest | RejectedRequest | None:
    """The CLI's pending request, if it is new; one the codec refuses comes back rejected,
    with the reason, so that the engine consumes it once with a Warning event."""
    raw = annotations.get(naming.ANNOTATION_REQUEST)
    if not raw:
        return None
    try:
        data = request_codec.decode(raw, now)
    except request_codec.InvalidRequest as exc:
        request: ManualRequest | RejectedRequest = RejectedRequest(exc.id, exc.why)
    else:
        request = ManualRequest(data.id, data.action, data.full, data.user, data.sent_at)
    return None if request.id == last_id else request


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
                self._event(obj, "Warning", "ReconcileError", str(exc))
            log.warning("%s: %s (will retry in %.0fs)", key, exc, PERMANENT_RETRY_SECONDS)
            return PERMANENT_RETRY_SECONDS
        self._reported.pop(key, None)
        return after

    def _templates(self, ns: str) -> dict[str, AnalysisTemplateSpec]:
        out: dict[str, AnalysisTemplateSpec] = {}
        for t in self.kube.list_templates(ns):
            try:
                spec = AnalysisTemplateSpec.model_validate(t.get("spec") or {})
            except ValidationError:
                continue  # reported as "template invalid/missing" by validation
            cluster = t.get("kind") == "ClusterAnalysisTemplate"
            out[template_key(t["metadata"]["name"], cluster)] = spec
        return out

    def reconcile(self, obj: Obj) -> float | None:
        now = self.clock()
        meta = obj["metadata"]
        ns = meta.setdefault("namespace", "default")
        if meta.get("deletionTimestamp"):
            return self._hand_back(obj)
        handback.add_finalizer(self.kube, obj)  # before anything of the user's is changed
        templates = self._templates(ns)
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
        samples = {} if findings else self._measure(canary, templates, now)
        obs = Observations(
            target_revision=target.revision if target else None,
            stable_ready=workloads.is_ready(primary, stable_rev),
            canary_ready=workloads.is_ready(can_dep, status.canary_revision),
            samples=samples,
            request=parse_request(canary.metadata.annotations, status.last_request_id, now),
            spec_errors=tuple(findings),
        )
        decision = machine.step(canary, templates, obs, now)
        self._apply(obj, canary, decision, target, primary)
        # A SetWeight above was already written and read back by the router.
        wrote_weight = any(isinstance(a, SetWeight) for a in decision.actions)
        if not findings and not wrote_weight and not initializing(decision.status):
            self._converge_route(canary, decision.status.canary_weight)
        self._record(obj, canary.status, decision, now)
        if obs.stable_ready and not findings and not initializing(decision.status):
            self._handoff_target(obj, target)
        return decision.requeue_after

    def _measure(
        self, canary: Canary, templates: Mapping[str, AnalysisTemplateSpec], now: dt.datetime
    ) -> dict[str, Sample]:
        samples: dict[str, Sample] = {}
        for task in due_tasks(canary, templates, now):
            self.health.beat(threading.current_thread().name)  # slow providers are not stuck
            try:
                provider = provider_for(
                    task.metric, default_addresses={"prometheus": self.prometheus_url}
                )
                samples[task.key] = provider.measure(task)
            except PermanentError as exc:
                samples[task.key] = ProviderFailure(str(exc), transient=False)
            except Exception as exc:  # user data must never stop the deadline and rollback
                log.exception("%s: measuring %s failed", canary.metadata.name, task.key)
                failure = f"measuring failed unexpectedly: {type(exc).__name__}: {exc}"
                samples[task.key] = ProviderFailure(failure, transient=False)
        return samples

    def _apply(
        self,
        obj: Obj,
        canary: Canary,
        decision: Decision,
        target: workloads.Target | None,
        primary: Obj | None,
    ) -> None:
        router = None
        for action in decision.actions:
            if isinstance(action, EmitEvent):
                continue  # sent after the status write
            router = router or router_for(canary, self.kube)
            if isinstance(action, SetWeight):
                router.set_weight(canary, action.weight)
            elif isinstance(action, ScaleDownCanary):
                dep = naming.canary_deployment(canary.metadata.name)
                with contextlib.suppress(NotFound):  # never created: nothing to scale down
                    self.kube.scale_deployment(obj["metadata"]["namespace"], dep, 0)
            elif isinstance(action, InitializeStable | EnsureCanary | PromoteStable):
                self._apply_workload(obj, canary, action, target, primary, router)

    def _converge_route(self, canary: Canary, weight: int) -> None:
        """Make the data plane carry the weight the status records.

        A kill between a router write and the status write, or a hand edit of the route,
        leaves the two apart; the status is the truth, so the route follows it."""
        router = router_for(canary, self.kube)
        if not router.in_sync(canary, weight):
            log.info(
                "%s: route out of step with status; setting canary weight %d%%",
                canary.metadata.name,
                weight,
            )
            router.set_weight(canary, weight)

    def _apply_workload(
        self,
        obj: Obj,
        canary: Canary,
        action: InitializeStable | EnsureCanary | PromoteStable,
        target: workloads.Target | None,
        primary: Obj | None,
        router: TrafficRouter,
    ) -> None:
        if target is None or target.revision != action.revision:
            raise TransientError(
                f"target Deployment {canary.spec.target_ref.name} is no longer at revision "
                f"{action.revision}; deciding again"
            )
        total = workloads.desired_total(target, primary)
        if isinstance(action, EnsureCanary):
            replicas = router.canary_replicas(total)
            workloads.apply_deployment(self.kube, obj, "canary", target, replicas, total)
        else:
            workloads.ensure_services(self.kube, obj)
            workloads.apply_deployment(self.kube, obj, "stable", target, total, total)

    def _handoff_target(self, obj: Obj, target: workloads.Target | None) -> None:
        """Once the primary serves, the user's Deployment stops running its own pods."""
        if target and target.replicas:
            ns, name = obj["metadata"]["namespace"], obj["spec"]["targetRef"]["name"]
            handback.take_over(self.kube, ns, name, target.replicas)

    def _hand_back(self, obj: Obj) -> float | None:
        """The Canary is being deleted: give the app back, then let it go."""
        meta = obj["metadata"]
        if handback.FINALIZER not in (meta.get("finalizers") or []):
            return None
        route_back = None
        try:
            canary = Canary.model_validate(obj)
            route_back = functools.partial(router_for(canary, self.kube).teardown, canary)
        except (ValidationError, PermanentError) as exc:
            log.warning("%s: the route cannot be given back (%s)", meta["name"], exc)
        waiting = handback.hand_back(self.kube, obj, route_back)
        key = f"{meta['namespace']}/{meta['name']}"
        if waiting is None:
            self._reported.pop(key, None)
            log.info("%s: handed back to the user's Deployment; the Canary is gone", key)
            return None
        if self._reported.get(key) != waiting:
            self._reported[key] = waiting
            self._event(obj, "Normal", "HandingBack", f"the Canary is being deleted: {waiting}")
        return HANDBACK_POLL_SECONDS

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self.kube.emit_event(obj, type_, reason, message)
        except CanaryError as exc:  # an event is never worth failing a reconcile for
            log.warning("event %s for %s: %s", reason, obj["metadata"]["name"], exc)
        log.info(
            "%s/%s %s %s: %s",
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            type_,
            reason,
            message,
        )

    def _write_status(self, obj: Obj, status: CanaryStatus) -> None:
        meta = obj["metadata"]
        old = obj.get("status") or {}
        body: Obj = status.wire()
        if body == old:
            return
        # A merge patch keeps keys it does not mention: clear the ones that became unset.
        body |= {key: None for key in old if key not in body}
        self.kube.patch_canary_status(
            meta["namespace"], meta["name"], body, meta["resourceVersion"]
        )

    def _write_invalid(self, obj: Obj, findings: list[str], now: dt.datetime) -> float | None:
        try:
            status = CanaryStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            status = CanaryStatus()
        self._record(obj, status, machine.reject(status, tuple(findings), now), now)
        return None

    def _record(
        self, obj: Obj, before: CanaryStatus, decision: Decision, now: dt.datetime
    ) -> None:
        """Write the status, then its Events and metrics: a Conflict on the write means
        deciding again, so Events and metrics only ever show what the status recorded."""
        self._write_status(obj, decision.status)
        meta, steps = obj["metadata"], (obj.get("spec") or {}).get("steps")
        count = len(steps) if isinstance(steps, list) else 0  # an invalid spec holds anything
        self.metrics.observe(meta["namespace"], meta["name"], count, before, decision.status, now)
        for action in decision.actions:
            if isinstance(action, EmitEvent):
                self._event(obj, action.type, action.reason, action.message)
