"""The sandbox's stand-in for the kubelet, the Deployment controller and Prometheus'
Kubernetes service discovery.

The sandbox has no kubelet, so nothing would ever run a Deployment's pods. For every
Deployment in one namespace that wants replicas (the controller's `N-primary` and
`N-canary`, labelled `canary.dev/name`, see canary.api.naming, and the user's own Deployment
N), this runs ONE real demo_app process, configured from the pod template (see
app_process.py).

One process stands for all of a Deployment's replicas. It counts as ready once it answers
/healthz and `ready_delay` seconds have passed since it started (a knob to exercise "the
canary is not ready"). Scaling to 0 or deleting the Deployment stops it; a process that
exits is started again after a doubling back-off (0.5 s .. 10 s), as CrashLoopBackOff.

A pod template change (any edit of `spec.template`, e.g. a new `canary.dev/revision`)
rolls the process like a RollingUpdate with maxSurge 1, maxUnavailable 0: a new process
starts with the new settings, the old one keeps serving until the new one is ready, then
the old one is stopped (it drains its in-flight requests). A template change while the
old process was not ready yet simply replaces it. While both run, the status reads as the
real controller's would mid-rollout: replicas = 2n, updatedReplicas = n, and ready /
available count the old process, so "rolled out" means updatedReplicas = replicas =
availableReplicas, exactly what `kubectl rollout status` waits for.

Each pass patches the Deployment's /status to what the real Deployment controller would
write (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
unavailableReplicas, and the Available / Progressing conditions), and only when that
differs from what is there, so watchers see no churn.

Each ready-to-scrape process is a Prometheus target in job `<namespace>/<deployment>` with
the labels `namespace`, `service` (the Canary name N), `variant` (stable|canary, or
`target` for the user's own Deployment, which no analysis query selects) and
`deployment`; the app itself never names its variant.

`endpoints(service)` answers what a Service's Endpoints would list, for the load
generator: `N-stable` -> the primary's process, `N-canary` -> the canary's, `N` -> those
and the user's Deployment N (the user's Service selects the app's pods, whichever
Deployment runs them). Only ready processes are listed, as with real Endpoints.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary.api import naming
from canary.controller.workloads import template_hash
from canary.errors import TransientError
from canary.kube.client import Kube, Obj
from canary.sandbox import app_process
from canary.sandbox.app_process import AppProcess
from canary.sandbox.deployment_status import desired_status, patch_status
from canary.sandbox.prometheus import Prometheus

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class _Slot:
    """A Deployment's processes: the serving one and, mid-rollout, the next one."""

    current: AppProcess | None = None
    next: AppProcess | None = None
    crashes: int = 0
    not_before: float = 0.0

    def processes(self) -> list[AppProcess]:
        return [a for a in (self.current, self.next) if a is not None]


@dataclass(frozen=True)
class _View:
    """What readers (the load generator) see; replaced whole at the end of each pass."""

    # Service -> (address, what its users get: stable or canary); the user's own pods
    # run the app without a canary, so their users count as stable.
    endpoints: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    ready: dict[str, int] = field(default_factory=dict)


class StandInKubelet:
    """Runs demo_app processes for the Deployments of one namespace."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        prometheus: Prometheus | None,
        workdir: Path,
        *,
        ready_delay: float = 0.0,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.kube = kube
        self.namespace = namespace
        self.prometheus = prometheus
        self.workdir = Path(workdir)
        self.ready_delay = ready_delay
        self.interval = interval
        self._clock = clock
        self._lock = threading.RLock()  # one pass at a time (sync vs stop)
        self._slots: dict[str, _Slot] = {}
        self._view = _View()
        self._published: dict[str, tuple[str, dict[str, str]]] = {}
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # ------------------------------------------------------------- loop

    def start(self) -> StandInKubelet:
        """Run `run()` in a background thread until `stop()`."""
        if self._thread is None:
            self._stop_event.clear()
            self._thread = threading.Thread(target=self.run, args=(self._stop_event,),
                                            name=f"kubelet-{self.namespace}", daemon=True)
            self._thread.start()
        return self

    def run(self, stop_event: threading.Event) -> None:
        """sync() every `interval` seconds until `stop_event` is set; errors are retried."""
        while not stop_event.is_set():
            try:
                self.sync()
            except TransientError as exc:
                log.warning("stand-in kubelet: %s (retrying)", exc)
            except Exception:
                log.exception("stand-in kubelet: sync failed (retrying)")
            stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop the loop, every app process, and their scrape targets."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            doomed = [a for slot in self._slots.values() for a in slot.processes()]
            self._slots.clear()
            self._view = _View()
            self._publish_targets()
            for app in doomed:
                app.proc.stop()

    def __enter__(self) -> StandInKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- one pass

    def sync(self) -> None:
        """One pass: reconcile processes, Deployment statuses and scrape targets."""
        deployments, _rv = self.kube.list_deployments(self.namespace)
        with self._lock:
            doomed: list[AppProcess] = []
            statuses: list[tuple[Obj, dict[str, Any]]] = []
            for dep in deployments:
                meta = dep["metadata"]
                replicas = dep["spec"].get("replicas", 1)
                replicas = 0 if replicas is None or meta.get("deletionTimestamp") else replicas
                slot = self._slots.setdefault(meta["name"], _Slot())
                statuses.append((dep, self._reconcile(dep, slot, replicas, doomed)))
            seen = {dep["metadata"]["name"] for dep, _ in statuses}
            for name in set(self._slots) - seen:
                doomed.extend(self._slots.pop(name).processes())
            try:
                # Endpoints first, then the status: whoever sees "ready" finds the endpoints.
                self._view = self._make_view(
                    {dep["metadata"]["name"]: st["availableReplicas"] for dep, st in statuses})
                self._publish_targets()
                for dep, status in statuses:
                    patch_status(self.kube, self.namespace, dep, status)
            finally:
                # Stop replaced processes only after readers were pointed elsewhere.
                for app in doomed:
                    app.proc.stop()

    def _reconcile(self, dep: Obj, slot: _Slot, replicas: int,
                   doomed: list[AppProcess]) -> dict[str, Any]:
        name = dep["metadata"]["name"]
        if replicas <= 0:
            doomed.extend(slot.processes())
            self._slots[name] = _Slot()
            return desired_status(dep, 0, 0, 0, 0)
        digest = template_hash(dep["spec"].get("template") or {})
        for attr in ("current", "next"):
            app: AppProcess | None = getattr(slot, attr)
            if app is not None and not app.running():
                log.warning("stand-in kubelet: the process for %s exited; its log ends: %s",
                            name, app.proc.log_tail(5).strip())
                doomed.append(app)
                setattr(slot, attr, None)
                slot.not_before = self._clock() + min(MAX_BACKOFF, 0.5 * 2**slot.crashes)
                slot.crashes += 1
        if slot.next is not None and slot.next.template_hash != digest:
            doomed.append(slot.next)  # the template moved on again before it was ready
            slot.next, slot.crashes, slot.not_before = None, 0, 0.0
        cur = slot.current
        if cur is not None and cur.template_hash != digest and not self._is_ready(cur):
            doomed.append(cur)  # nothing worth keeping: it never served
            slot.current = cur = None
            slot.crashes, slot.not_before = 0, 0.0
        wanted = cur is None or (cur.template_hash != digest and slot.next is None)
        if wanted and self._clock() >= slot.not_before:
            app = self._start_app(dep, digest)
            if cur is None:
                slot.current = app
            else:
                slot.next = app
        if slot.next is not None and self._is_ready(slot.next):
            if slot.current is not None:
                doomed.append(slot.current)
            slot.current, slot.next, slot.crashes = slot.next, None, 0
        cur = slot.current
        cur_ready = cur is not None and self._is_ready(cur)
        if cur_ready and cur is not None and cur.template_hash == digest:
            slot.crashes = 0
        old = replicas if cur is not None and cur.template_hash != digest else 0
        new_ready = replicas if cur_ready and old == 0 else 0
        return desired_status(dep, replicas=replicas + old, updated=replicas,
                              available=new_ready + old, wanted=replicas)

    def _start_app(self, dep: Obj, digest: str) -> AppProcess:
        app = app_process.start(dep, digest, self.namespace, self.workdir, self._clock)
        log.info("stand-in kubelet: started %s %s on 127.0.0.1:%d (error rate %s, latency %s)",
                 app.deployment, app.settings.version, app.port, app.settings.error_rate,
                 app.settings.latency_ms)
        return app

    def _is_ready(self, app: AppProcess) -> bool:
        if not app.healthy and app.running():
            try:
                with _NO_PROXY.open(f"http://{app.address}/healthz", timeout=0.5) as resp:
                    app.healthy = resp.status == 200
            except OSError:
                return False
        return app.healthy and self._clock() - app.started >= self.ready_delay

    # ------------------------------------------------------------- discovery

    def _make_view(self, ready: dict[str, int]) -> _View:
        endpoints: dict[str, list[tuple[str, str]]] = {}
        for slot in self._slots.values():
            app = slot.current
            if app is None or not self._is_ready(app):
                continue
            services = [app.service]
            if app.variant == "stable":
                services.append(naming.stable_service(app.service))
            elif app.variant == "canary":
                services.append(naming.canary_service(app.service))
            users_get = "canary" if app.variant == "canary" else "stable"
            for svc in services:
                endpoints.setdefault(svc, []).append((app.address, users_get))
        return _View({k: sorted(v) for k, v in endpoints.items()}, ready)

    def _publish_targets(self) -> None:
        if self.prometheus is None:
            return
        want: dict[str, tuple[str, dict[str, str]]] = {}
        for slot in self._slots.values():
            app = slot.current
            if app is not None and app.healthy and app.running():
                want[f"{self.namespace}/{app.deployment}"] = (app.address, {
                    "namespace": self.namespace, "service": app.service,
                    "variant": app.variant, "deployment": app.deployment})
        for job in set(self._published) - set(want):
            self.prometheus.set_targets(job, [])
        for job, (address, labels) in want.items():
            if self._published.get(job) != (address, labels):
                self.prometheus.set_targets(job, [address], labels)
        self._published = want

    def endpoints(self, service: str, variant: str | None = None) -> list[str]:
        """Ready "pod" addresses ("127.0.0.1:port") behind a Service, as of the last pass;
        with `variant`, only the pods whose users get that variant (stable or canary).

        `N-stable` selects N's stable variant, `N-canary` its canary, and `N` both and the
        user's own Deployment N."""
        return [address for address, users_get in self._view.endpoints.get(service, [])
                if variant in (None, users_get)]

    def ready_replicas(self, deployment: str) -> int:
        """Available replicas of a Deployment, as last written to its status."""
        return self._view.ready.get(deployment, 0)

    def processes(self) -> dict[str, AppProcess]:
        """The serving process by Deployment name, for the demo's display."""
        with self._lock:
            return {n: s.current for n, s in self._slots.items() if s.current is not None}
