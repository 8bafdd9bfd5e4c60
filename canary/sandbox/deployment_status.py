"""A Deployment's status as the real Deployment controller would write it, for the
sandbox, which has none: from the stand-in kubelet's process counts, or made up whole
where a test or benchmark needs Deployments to read as rolled out."""

from __future__ import annotations

import contextlib
from typing import Any

from canary.kube.client import Kube, NotFound, Obj, now_iso


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


def patch_status(kube: Kube, namespace: str, dep: Obj, want: dict[str, Any]) -> None:
    """Write `want` unless the status already says it, so watchers see no churn."""
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
        kube.patch_deployment_status(namespace, dep["metadata"]["name"], want)


def _status_matches(have: dict[str, Any], want: dict[str, Any]) -> bool:
    for key, value in want.items():
        if key != "conditions" and (have.get(key) or 0) != value:
            return False
    have_conds = {c.get("type"): (c.get("status"), c.get("reason"))
                  for c in have.get("conditions") or []}
    return all(have_conds.get(c["type"]) == (c["status"], c["reason"])
               for c in want["conditions"])
