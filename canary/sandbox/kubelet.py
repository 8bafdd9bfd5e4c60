"""The sandbox's stand-in for the kubelet, the Deployment controller and Prometheus'
Kubernetes service discovery.

The sandbox has no kubelet, so nothing would ever run a Deployment's pods. For every
Deployment in one namespace that wants replicas (the controller's `N-primary` and
`N-canary`, labelled `canary.dev/name`, see canary.api.naming, and the user's own Deployment
N), this runs ONE real demo_app process (canary.sandbox.demo_app) on a free loopback
port, configured from the pod template's first container:

    env ERROR_RATE    fraction of requests answered 500        (default 0)
    env LATENCY_MS    median latency in milliseconds           (default 20)
    image tag         the version it reports (demo/checkout:v2 -> v2; no tag -> latest)

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

import contextlib
import logging
import os
import sys
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
from canary.kube.client import Kube, NotFound, Obj, now_iso
from canary.sandbox import procs
from canary.sandbox.prometheus import Prometheus

log = logging.getLogger(__name__)

DEFAULT_LATENCY_MS = "20"
DEFAULT_ERROR_RATE = "0"
MAX_BACKOFF = 10.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class AppSettings:
    version: str
    error_rate: str
    latency_ms: str

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> AppSettings:
        containers = (template.get("spec") or {}).get("containers") or [{}]
        first = containers[0]
        env = {e.get("name"): e.get("value") for e in first.get("env") or [] if e.get("name")}
        return cls(
            version=image_version(first.get("image") or ""),
            error_rate=str(env.get("ERROR_RATE") or DEFAULT_ERROR_RATE),
            latency_ms=str(env.get("LATENCY_MS") or DEFAULT_LATENCY_MS),
        )


def image_version(image: str) -> str:
    """demo/checkout:v2 -> v2; registry:5000/checkout -> latest; x@sha256:ab.. -> sha256:ab.."""
    if "@" in image:
        return image.split("@", 1)[1][:19]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _variant(dep: Obj) -> str:
    labels = dep["metadata"].get("labels") or {}
    if naming.LABEL_NAME not in labels:
        return "target"
    tpl_labels = ((dep["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    variant = labels.get(naming.LABEL_VARIANT) or tpl_labels.get(naming.LABEL_VARIANT)
    if variant in ("stable", "canary"):
        return variant
    return "canary" if dep["metadata"]["name"].endswith("-canary") else "stable"


def _service(dep: Obj) -> str:
    """The Canary name N: from the label, or the user's Deployment's own name."""
    meta = dep["metadata"]
    return str((meta.get("labels") or {}).get(naming.LABEL_NAME) or meta["name"])


@dataclass
class AppProcess:
    """One demo_app process standing for a Deployment's pods at one pod template."""

    deployment: str
    service: str  # the Canary name N
    variant: str  # stable | canary | target
    template_hash: str
    settings: AppSettings
    port: int
    proc: procs.Managed
    started: float
    healthy: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc.proc.poll() is None


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
                    self._patch_status(dep, status)
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
        name = dep["metadata"]["name"]
        settings = AppSettings.from_template(dep["spec"].get("template") or {})
        port = procs.free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        proc = procs.start(
            f"app-{self.namespace}-{name}-{digest[:6]}",
            [sys.executable, "-m", "canary.sandbox.demo_app", "--port", str(port),
             "--version", settings.version, "--error-rate", settings.error_rate,
             "--latency-ms", settings.latency_ms],
            self.workdir,
            tie_to_parent=True,
            env=env,
        )
        log.info("stand-in kubelet: started %s %s on 127.0.0.1:%d (error rate %s, latency %s)",
                 name, settings.version, port, settings.error_rate, settings.latency_ms)
        return AppProcess(
            deployment=name, service=_service(dep), variant=_variant(dep),
            template_hash=digest, settings=settings, port=port, proc=proc,
            started=self._clock())

    def _is_ready(self, app: AppProcess) -> bool:
        if not app.healthy and app.running():
            try:
                with _NO_PROXY.open(f"http://{app.address}/healthz", timeout=0.5) as resp:
                    app.healthy = resp.status == 200
            except OSError:
                return False
        return app.healthy and self._clock() - app.started >= self.ready_delay

    # ------------------------------------------------------------- status

    def _patch_status(self, dep: Obj, want: dict[str, Any]) -> None:
        have = dep.get("status") or {}
        if _status_matches(have, want):
            return
        # Keep lastTransitionTime of conditions whose status did not flip.
        before = {c.get("type"): c for c in have.get("conditions") or []}
        for cond in want["conditions"]:
            old = before.get(cond["type"])
            if old and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
                cond["lastTransitionTime"] = old["lastTransitionTime"]
        with contextlib.suppress(NotFound):  # deleted since we listed it
            self.kube.patch_deployment_status(self.namespace, dep["metadata"]["name"], want)

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


def desired_status(dep: Obj, replicas: int, updated: int, available: int,
                   wanted: int) -> dict[str, Any]:
    """The status the real Deployment controller would write for these pod counts."""
    name = dep["metadata"]["name"]
    now = now_iso()
    if available >= wanted:
        avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        avail = ("False", "MinimumReplicasUnavailable",
                 "Deployment does not have minimum availability.")
    if updated == replicas == available:
        progress = ("True", "NewReplicaSetAvailable",
                    f'ReplicaSet "{name}" has successfully progressed.')
    else:
        progress = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
    return {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": replicas - available,
        "conditions": [
            {"type": kind, "status": status, "reason": reason, "message": message,
             "lastUpdateTime": now, "lastTransitionTime": now}
            for kind, (status, reason, message) in (("Available", avail),
                                                    ("Progressing", progress))
        ],
    }


def _status_matches(have: dict[str, Any], want: dict[str, Any]) -> bool:
    for key, value in want.items():
        if key != "conditions" and (have.get(key) or 0) != value:
            return False
    have_conds = {c.get("type"): (c.get("status"), c.get("reason"))
                  for c in have.get("conditions") or []}
    return all(have_conds.get(c["type"]) == (c["status"], c["reason"])
               for c in want["conditions"])
