"""The demo's users: real HTTP GETs at a steady rate, split the way the data plane would.

With a Gateway API HTTPRoute (`route_name`), each request picks a backend by the weights
of the route's backendRefs, as a gateway does: `N-stable`, `N-canary`, or the user's
Service `N`, which selects the app's pods whichever Deployment runs them (`N-primary`,
`N-canary`, and the user's Deployment N). The route is re-read every `route_interval`
seconds. Without a route (replica-ratio routing), every request goes to `N`. Behind `N`,
a request picks a pod in proportion to the ready replicas; users of the user's own
Deployment count as stable (it runs the app without a canary).

Which process serves which Service comes from the stand-in kubelet's `endpoints()`. A
backend with no ready endpoint answers 503, and a route whose weights are all 0, or
that does not exist, answers 500 / 404, as a gateway would: those count as failed
requests that users saw.

The generator only talks to 127.0.0.1, only while started, and is bounded: at most
`max_in_flight` requests at a time; a tick that finds them all busy is skipped and
counted as `skipped` (the client could not keep up; no user saw anything).
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from canary.api import naming
from canary.errors import PermanentError, TransientError
from canary.kube.client import Kube, NotFound

log = logging.getLogger(__name__)

GATEWAY_API = ("gateway.networking.k8s.io", "v1", "httproutes")
VARIANTS = ("stable", "canary")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Endpoints(Protocol):
    """What the load generator needs from the stand-in kubelet."""

    def endpoints(self, service: str, variant: str | None = None) -> list[str]: ...

    def ready_replicas(self, deployment: str) -> int: ...


@dataclass(frozen=True)
class VariantStats:
    requests: int = 0  # sent to this variant (counted when sent)
    ok: int = 0  # answered 2xx
    errors: int = 0  # answered otherwise, timed out, refused, or had no endpoint

    @property
    def done(self) -> int:
        return self.ok + self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.done if self.done else 0.0


@dataclass(frozen=True)
class LoadStats:
    """A snapshot. `weights` is the split in force when it was taken: any request sent
    after a snapshot whose canary weight is 0 went to stable."""

    requests: int
    failed: int  # what users saw fail: variant errors plus requests no backend took
    unrouted: int  # failed before reaching a variant: no route, or all weights 0
    skipped: int  # ticks dropped because max_in_flight requests were already out
    weights: dict[str, int]
    variants: dict[str, VariantStats] = field(default_factory=dict)

    def __getitem__(self, variant: str) -> VariantStats:
        return self.variants.get(variant, VariantStats())

    @property
    def canary_share(self) -> float:
        sent = self["stable"].requests + self["canary"].requests
        return self["canary"].requests / sent if sent else 0.0


class LoadGenerator:
    """Send `rps` GETs per second to the demo apps until `stop()`."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        route_name: str | None,
        canary_name: str,
        rps: float = 20.0,
        *,
        kubelet: Endpoints,
        route_interval: float = 0.5,
        timeout: float = 2.0,
        max_in_flight: int = 16,
        seed: int | None = None,
    ):
        if rps <= 0:
            raise ValueError(f"rps must be > 0, got {rps}")
        self.kube = kube
        self.namespace = namespace
        self.route_name = route_name
        self.name = canary_name
        self.rps = rps
        self.kubelet = kubelet
        self.route_interval = route_interval
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        # backend Service name -> weight; None: no route (yet), requests fail like a 404
        self._backends: dict[str, int] | None = None
        self._sent = dict.fromkeys(VARIANTS, 0)
        self._ok = dict.fromkeys(VARIANTS, 0)
        self._errors = dict.fromkeys(VARIANTS, 0)
        self._unrouted = 0
        self._skipped = 0

    # ------------------------------------------------------------- lifecycle

    def start(self) -> LoadGenerator:
        if self._threads:
            return self
        self._stop.clear()
        if self.route_name is not None:
            self._refresh_route()  # the first requests already see the real split
        self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="loadgen")
        self._threads = [
            threading.Thread(target=self._pace, name="loadgen-pace", daemon=True),
            threading.Thread(target=self._watch_route, name="loadgen-route", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait (bounded by `timeout`) for requests in flight."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # each request is bounded by `timeout`
            self._pool = None

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- results

    def stats(self) -> LoadStats:
        with self._lock:
            variants = {v: VariantStats(self._sent[v], self._ok[v], self._errors[v])
                        for v in VARIANTS}
            return LoadStats(
                requests=sum(self._sent.values()) + self._unrouted,
                failed=sum(self._errors.values()) + self._unrouted,
                unrouted=self._unrouted,
                skipped=self._skipped,
                weights=self._weights_locked(),
                variants=variants,
            )

    # ------------------------------------------------------------- routing

    def _watch_route(self) -> None:
        if self.route_name is None:
            return
        while not self._stop.wait(self.route_interval):
            self._refresh_route()

    def _refresh_route(self) -> None:
        assert self.route_name is not None
        try:
            route = self.kube.get_object(*GATEWAY_API, self.namespace, self.route_name)
        except NotFound:
            backends = None  # users get 404s until it exists
        except (TransientError, PermanentError) as exc:
            log.warning("load generator: cannot read the route, keeping its last weights: %s",
                        exc)
            return
        else:
            backends = self._route_backends(route)
        with self._lock:
            self._backends = backends

    def _route_backends(self, route: dict) -> dict[str, int] | None:
        """Weights of the first rule that sends to this Canary's Services (as the gateway
        router writes them); None if no rule does."""
        ours = {self.name, naming.stable_service(self.name), naming.canary_service(self.name)}
        for rule in (route.get("spec") or {}).get("rules") or []:
            refs = [b for b in rule.get("backendRefs") or [] if b.get("name") in ours]
            if refs:
                weights: dict[str, int] = {}
                for ref in refs:
                    weight = ref.get("weight", 1)  # the Gateway API default
                    weights[ref["name"]] = weights.get(ref["name"], 0) + int(weight)
                return weights
        return None

    def _backends_locked(self) -> dict[str, int] | None:
        return self._backends if self.route_name is not None else {self.name: 1}

    def _weights_locked(self) -> dict[str, int]:
        """Percent per variant, from the route and the ready replicas."""
        backends = self._backends_locked()
        share = dict.fromkeys(VARIANTS, 0.0)
        if backends:
            for svc, weight in backends.items():
                for variant, part in self._variants_of(svc).items():
                    share[variant] += weight * part
        total = sum(share.values())
        return {v: round(100 * share[v] / total) if total else 0 for v in VARIANTS}

    def _variants_of(self, service: str) -> dict[str, float]:
        """How a Service's traffic splits over the variants (the plain N Service selects
        the pods of every Deployment of the app, so it splits by ready replicas)."""
        if service == naming.stable_service(self.name):
            return {"stable": 1.0}
        if service == naming.canary_service(self.name):
            return {"canary": 1.0}
        ready = {"stable": self.kubelet.ready_replicas(naming.primary(self.name))
                 + self.kubelet.ready_replicas(self.name),
                 "canary": self.kubelet.ready_replicas(naming.canary_deployment(self.name))}
        total = sum(ready.values())
        return {v: n / total for v, n in ready.items()} if total else {"stable": 1.0}

    def _choose(self) -> tuple[str, str] | None:
        """Pick (variant, Service) for one request (under the lock); None: nothing takes it."""
        backends = self._backends_locked()
        total = sum(backends.values()) if backends else 0
        if not backends or total <= 0:
            return None
        service = self._rng.choices(list(backends), weights=list(backends.values()))[0]
        shares = self._variants_of(service)
        variant = "canary" if self._rng.random() < shares.get("canary", 0.0) else "stable"
        return variant, service

    # ------------------------------------------------------------- sending

    def _pace(self) -> None:
        period = 1.0 / self.rps
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_at:
                self._stop.wait(next_at - now)
                continue
            # Fell far behind (e.g. a stalled machine)? Skip ahead instead of bursting.
            next_at = max(next_at + period, now - 1.0)
            self._tick()

    def _tick(self) -> None:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self._skipped += 1
            return
        with self._lock:
            chosen = self._choose()
            if chosen is None:
                self._unrouted += 1
            else:
                self._sent[chosen[0]] += 1
        if chosen is None or self._pool is None:
            self._slots.release()
            return
        variant, service = chosen
        try:
            self._pool.submit(self._request, variant, service)
        except RuntimeError:  # the pool shut down under us
            self._slots.release()
            with self._lock:
                self._errors[variant] += 1

    def _request(self, variant: str, service: str) -> None:
        ok = False
        try:
            endpoints = [e for e in self.kubelet.endpoints(service, variant)
                         if e.startswith("127.0.0.1:")]
            if not endpoints and service == self.name:
                # The variant's pods went since _choose(): a Service spreads requests
                # over whichever of its endpoints are ready now.
                endpoints = [e for e in self.kubelet.endpoints(service)
                             if e.startswith("127.0.0.1:")]
            if endpoints:  # else: no ready endpoint, a gateway answers 503
                url = f"http://{self._rng.choice(endpoints)}/"
                with _NO_PROXY.open(url, timeout=self.timeout) as resp:
                    resp.read()
                    ok = 200 <= resp.status < 300
        except (OSError, http.client.HTTPException, ValueError):
            pass  # 5xx (urllib raises HTTPError), refused, reset or timed out: an error
        finally:
            with self._lock:
                if ok:
                    self._ok[variant] += 1
                else:
                    self._errors[variant] += 1
            self._slots.release()
