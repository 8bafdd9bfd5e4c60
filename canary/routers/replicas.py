"""Replica-ratio routing for clusters without a mesh or gateway.

The Service N selects the pods of both N-primary and N-canary, so traffic splits by
ready-pod count. A weight becomes a replica split of the stable's replica count:
canary = ceil(total * weight / 100), stable = total - canary (at least 1 while
weight < 100). Coarse at low replica counts: with 4 replicas, 10% is really 25%.
"""

from __future__ import annotations

import math

from canary import naming
from canary.errors import TransientError
from canary.kube import Kube
from canary.models import Canary

ANNOTATION_TOTAL = "canary.dev/total-replicas"


class ReplicaRouter:
    name = "replicas"

    def __init__(self, kube: Kube):
        self.kube = kube

    def _total(self, ns: str, name: str) -> int:
        primary = self.kube.get_deployment(ns, naming.primary(name))
        if primary is None:
            raise TransientError(f"Deployment {ns}/{naming.primary(name)} does not exist yet")
        annotations = primary["metadata"].get("annotations") or {}
        return int(annotations.get(ANNOTATION_TOTAL, primary["spec"].get("replicas") or 1))

    def set_weight(self, canary: Canary, weight: int) -> int:
        ns, name = canary.metadata.namespace or "default", canary.metadata.name
        total = self._total(ns, name)
        canary_replicas = math.ceil(total * weight / 100)
        stable_replicas = total - canary_replicas if weight < 100 else 0
        if 0 < weight < 100:
            stable_replicas = max(1, stable_replicas)
        # Stable first: on the way back to 0 it must have capacity before the canary goes.
        self.kube.scale_deployment(ns, naming.primary(name), stable_replicas)
        canary_dep = naming.canary_deployment(name)
        if canary_replicas or self.kube.get_deployment(ns, canary_dep) is not None:
            self.kube.scale_deployment(ns, canary_dep, canary_replicas)
        return self.get_weight(canary)

    def get_weight(self, canary: Canary) -> int:
        ns, name = canary.metadata.namespace or "default", canary.metadata.name
        stable = self.kube.get_deployment(ns, naming.primary(name))
        can = self.kube.get_deployment(ns, naming.canary_deployment(name))
        s = (stable or {}).get("spec", {}).get("replicas") or 0
        c = (can or {}).get("spec", {}).get("replicas") or 0
        return round(100 * c / (s + c)) if s + c else 0
