"""Replica-ratio routing for clusters without a mesh or gateway.

The Service N selects the pods of both N-primary and N-canary, so traffic splits by
ready-pod count. A weight becomes a replica split of the stable's replica count:
canary = ceil(total * weight / 100), stable = total - canary (at least 1 while
weight < 100). Coarse at low replica counts: with 4 replicas, 10% is really 25%. And
the Service sends only to ready pods, so the weight carried (get_weight) is the canary's
share of the ready pods: it lags the split while pods start.
"""

from __future__ import annotations

import math

from canary.api import naming
from canary.api.canary import Canary
from canary.errors import TransientError
from canary.kube.port import KubePort, Obj
from canary.routers.base import RouteReading


def split(total: int, weight: int) -> tuple[int, int]:
    """(stable, canary) replicas for `weight`% canary out of `total`."""
    canary = math.ceil(total * weight / 100)
    if weight >= 100:
        return 0, canary
    return (max(1, total - canary) if weight > 0 else total), canary


def _count(dep: Obj | None, part: str, key: str) -> int:
    return ((dep or {}).get(part) or {}).get(key) or 0


def _written(stable: Obj | None, canary: Obj | None) -> tuple[int, int]:
    return _count(stable, "spec", "replicas"), _count(canary, "spec", "replicas")


def _share(stable: int, canary: int) -> int:
    return round(100 * canary / (stable + canary)) if stable + canary else 0


def _carried(stable: Obj | None, canary: Obj | None) -> int:
    return _share(
        _count(stable, "status", "readyReplicas"), _count(canary, "status", "readyReplicas")
    )


class ReplicaRouter:
    def __init__(self, kube: KubePort):
        self.kube = kube

    def canary_replicas(self, total: int) -> int:
        return 0  # the weight is the replica split: set_weight scales the canary up

    def _deployments(self, canary: Canary) -> tuple[Obj | None, Obj | None]:
        ns, name = canary.metadata.namespace or "default", canary.metadata.name
        return (
            self.kube.get_deployment(ns, naming.primary(name)),
            self.kube.get_deployment(ns, naming.canary_deployment(name)),
        )

    def set_weight(self, canary: Canary, weight: int) -> int:
        ns, name = canary.metadata.namespace or "default", canary.metadata.name
        primary = self.kube.get_deployment(ns, naming.primary(name))
        if primary is None:
            raise TransientError(f"Deployment {ns}/{naming.primary(name)} does not exist yet")
        stable_replicas, canary_replicas = split(naming.remembered_total(primary), weight)
        # Stable first: on the way back to 0 it must have capacity before the canary goes.
        self.kube.scale_deployment(ns, naming.primary(name), stable_replicas)
        canary_dep = naming.canary_deployment(name)
        if canary_replicas or self.kube.get_deployment(ns, canary_dep) is not None:
            self.kube.scale_deployment(ns, canary_dep, canary_replicas)
        written = _written(*self._deployments(canary))
        if written != (stable_replicas, canary_replicas):
            raise TransientError(
                f"{name}: wrote replicas (stable, canary) = "
                f"{(stable_replicas, canary_replicas)}, read back {written}"
            )
        return _share(*written)

    def read(self, canary: Canary, weight: int) -> RouteReading:
        primary, can = self._deployments(canary)
        carried = _carried(primary, can)
        if primary is None:
            return RouteReading(carried, weight == 0)
        in_sync = _written(primary, can) == split(naming.remembered_total(primary), weight)
        return RouteReading(carried, in_sync)

    def teardown(self, canary: Canary) -> None:
        """Nothing to give back: traffic goes through the user's own Service N, which was
        never changed; it keeps the user's pods once the Canary's are gone."""

    def get_weight(self, canary: Canary) -> int:
        return _carried(*self._deployments(canary))
