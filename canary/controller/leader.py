"""Leader election on a coordination.k8s.io Lease, so extra replicas stand by safely.

The holder renews every `renew` seconds; a candidate takes over once it has seen no
renewal for `duration` seconds of its OWN clock (so clock skew between nodes does not
matter). A holder that cannot renew within `deadline` (< duration) steps down before
anyone else may take over. Writes are guarded by resourceVersion, so two candidates
can never both win the same term.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from canary.errors import CanaryError
from canary.kube.port import KubePort, Obj

log = logging.getLogger("canary.controller.leader")


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubePort,
        namespace: str,
        identity: str,
        name: str = "canary-controller",
        duration: float = 15.0,
        renew: float = 2.0,
        deadline: float = 10.0,
    ):
        self.kube, self.ns, self.identity, self.name = kube, namespace, identity, name
        self.duration, self.renew, self.deadline = duration, renew, deadline
        self.leading = threading.Event()
        self._seen: tuple[object, ...] | None = None  # the lease record last observed
        self._seen_at = 0.0  # monotonic time it last changed

    def try_acquire(self, now: dt.datetime, monotonic: float) -> bool:
        lease: Obj | None = self.kube.get_lease(self.ns, self.name)
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._seen:
            self._seen, self._seen_at = record, monotonic
        expired = monotonic - self._seen_at > spec.get("leaseDurationSeconds", self.duration)
        if holder not in (None, self.identity) and not expired:
            return False
        transitions = spec.get("leaseTransitions", 0) + (holder not in (None, self.identity))
        meta: Obj = {"name": self.name, "namespace": self.ns}
        if lease:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        acquired = spec.get("acquireTime") if holder == self.identity else _stamp(now)
        self.kube.write_lease(
            self.ns,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": int(self.duration),
                    "acquireTime": acquired,
                    "renewTime": _stamp(now),
                    "leaseTransitions": transitions,
                },
            },
        )
        return True

    def run(self, stop: threading.Event) -> None:
        """Keep trying; set `leading` while we hold the lease, clear it when we lose it."""
        last_renewed = 0.0
        while not stop.is_set():
            clock = time.monotonic()
            try:
                won = self.try_acquire(dt.datetime.now(dt.UTC), clock)
            except CanaryError as exc:
                log.warning("leader election: %s", exc)
                # A failed renewal is not yet a lost lease, but past the deadline it must be.
                won = self.leading.is_set() and clock - last_renewed < self.deadline
            else:
                if won:
                    last_renewed = clock
            if won and not self.leading.is_set():
                log.info("became leader (%s)", self.identity)
                self.leading.set()
            elif not won and self.leading.is_set():
                log.error("lost leadership; stopping work")
                self.leading.clear()
            stop.wait(self.renew)
