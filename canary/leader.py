"""Leader election on a coordination.k8s.io Lease, so extra replicas stand by safely.

The holder renews every `renew` seconds; a candidate takes over once the lease has
not been renewed for `duration` seconds. Writes are guarded by resourceVersion, so two
candidates can never both win the same term.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from canary.errors import CanaryError
from canary.kube import Kube, Obj

log = logging.getLogger("canary.leader")


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        name: str = "canary-controller",
        duration: float = 15.0,
        renew: float = 5.0,
    ):
        self.kube, self.ns, self.identity, self.name = kube, namespace, identity, name
        self.duration, self.renew = duration, renew
        self.leading = threading.Event()

    def try_acquire(self, now: dt.datetime) -> bool:
        lease: Obj | None = self.kube.get_lease(self.ns, self.name)
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        expired = renewed is None or (now - renewed).total_seconds() > spec.get(
            "leaseDurationSeconds", self.duration
        )
        if holder not in (None, self.identity) and not expired:
            return False
        transitions = spec.get("leaseTransitions", 0) + (holder != self.identity)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.ns,
                **({"resourceVersion": lease["metadata"]["resourceVersion"]} if lease else {}),
            },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": spec.get("acquireTime") if holder == self.identity else _stamp(now),
                "renewTime": _stamp(now),
                "leaseTransitions": transitions,
            },
        }
        self.kube.write_lease(self.ns, body)
        return True

    def run(self, stop: threading.Event) -> None:
        """Keep trying; set `leading` while we hold the lease, clear it when we lose it."""
        while not stop.is_set():
            try:
                won = self.try_acquire(dt.datetime.now(dt.UTC))
            except CanaryError as exc:
                log.warning("leader election: %s", exc)
                won = False
            if won and not self.leading.is_set():
                log.info("became leader (%s)", self.identity)
                self.leading.set()
            elif not won and self.leading.is_set():
                log.error("lost leadership; stopping work")
                self.leading.clear()
            stop.wait(self.renew)
