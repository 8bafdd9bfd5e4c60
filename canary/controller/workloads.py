"""The Deployments and Services the controller owns for a Canary (see naming.py).

The user's Deployment is only read: its pod template is the source of each revision.
Owned objects carry an ownerReference to the Canary, so deleting it cleans them up.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from canary.api import naming
from canary.errors import PermanentError
from canary.kube.port import KubePort, Obj

# The user's replica count, on each owned Deployment: a router may scale N-primary below it.


def template_hash(template: dict[str, Any]) -> str:
    """A revision id: stable across key order, changes with any template edit."""
    blob = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


@dataclass(frozen=True)
class Target:
    template: dict[str, Any]
    revision: str
    replicas: int | None


def read_target(kube: KubePort, canary: Obj) -> Target | None:
    ns, spec = canary["metadata"]["namespace"], canary["spec"]
    dep = kube.get_deployment(ns, spec["targetRef"]["name"])
    if dep is None:
        return None
    template = dep["spec"]["template"]
    return Target(template, template_hash(template), dep["spec"].get("replicas"))


def is_ready(dep: Obj | None, revision: str | None) -> bool:
    """Fully rolled out at `revision`: what `kubectl rollout status` would call done."""
    if dep is None or revision is None:
        return False
    if (dep["metadata"].get("annotations") or {}).get(naming.ANNOTATION_REVISION) != revision:
        return False
    return is_rolled_out(dep)


def is_rolled_out(dep: Obj) -> bool:
    """Every wanted replica is available at the current template."""
    meta, spec, status = dep["metadata"], dep["spec"], dep.get("status") or {}
    want = spec.get("replicas", 1) or 0
    # Old pods still running (replicas > updated) means the switch is not done yet.
    return (
        status.get("observedGeneration", 0) >= meta.get("generation", 0)
        and (status.get("updatedReplicas") or 0) >= want
        and (status.get("availableReplicas") or 0) >= want
        and (status.get("replicas") or 0) <= (status.get("updatedReplicas") or 0)
    )


def _owner(canary: Obj) -> dict[str, Any]:
    meta = canary["metadata"]
    return {
        "apiVersion": canary["apiVersion"],
        "kind": "Canary",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def foreign_objects(
    kube: KubePort, canary: Obj, primary: Obj | None, canary_dep: Obj | None, *, services: bool
) -> list[str]:
    """The objects canary would create that exist and belong to someone else, as
    "field: problem (fix)" findings: canary never adopts or edits them (a Service another
    team owns would otherwise get our selector, and be deleted with the Canary).

    The Deployments were read anyway; the Services are read only when `services` (while
    onboarding): later, ensure_services checks them where it writes them.
    """
    name, ns = canary["metadata"]["name"], canary["metadata"]["namespace"]
    found = [
        ("Deployment", naming.primary(name), primary),
        ("Deployment", naming.canary_deployment(name), canary_dep),
    ]
    if services:
        found += [
            ("Service", svc, kube.get_service(ns, svc))
            for svc in (naming.stable_service(name), naming.canary_service(name))
        ]
    return [
        f"metadata.name: {_not_ours(canary, kind, obj_name)}"
        for kind, obj_name, obj in found
        if obj is not None and not _owned_by(obj, canary)
    ]


def _owned_by(obj: Obj, canary: Obj) -> bool:
    uid = canary["metadata"].get("uid")
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("kind") == "Canary" and ref.get("uid") == uid for ref in refs)


def _not_ours(canary: Obj, kind: str, name: str) -> str:
    return (
        f"{kind} {canary['metadata']['namespace']}/{name} already exists and is not owned "
        f"by this Canary, which never adopts or changes it (delete or rename that {kind}, "
        "or give the Canary another name)"
    )


def _deployment(
    canary: Obj, variant: str, template: dict[str, Any], revision: str, replicas: int, total: int
) -> Obj:
    name = canary["metadata"]["name"]
    labels = naming.selector(name, variant)
    tpl = copy.deepcopy(template)
    tpl.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    dep_name = naming.primary(name) if variant == "stable" else naming.canary_deployment(name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": dep_name,
            "namespace": canary["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [_owner(canary)],
            "annotations": {
                naming.ANNOTATION_REVISION: revision,
                naming.ANNOTATION_TOTAL: str(total),
            },
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": tpl},
    }


def apply_deployment(
    kube: KubePort, canary: Obj, variant: str, target: Target, replicas: int, total: int
) -> None:
    ns = canary["metadata"]["namespace"]
    body = _deployment(canary, variant, target.template, target.revision, replicas, total)
    existing = kube.get_deployment(ns, body["metadata"]["name"])
    if existing is None:
        kube.create_deployment(ns, body)
        return
    if not _owned_by(existing, canary):
        raise PermanentError(_not_ours(canary, "Deployment", body["metadata"]["name"]))
    annotations = existing["metadata"].get("annotations") or {}
    if (
        annotations.get(naming.ANNOTATION_REVISION) == target.revision
        and existing["spec"].get("replicas") == replicas
    ):
        return  # already there: actions repeat every poll, writes should not
    if variant == "stable":
        body["metadata"]["annotations"].update(_previous(canary, existing, target.revision))
    body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
    kube.replace_deployment(ns, body)


def _previous(canary: Obj, primary: Obj, revision: str) -> dict[str, str]:
    """What `canary undo` needs once N-primary moves to `revision`: the user's template it
    ran until now (ours minus the labels we add), or what it already kept."""
    annotations = primary["metadata"].get("annotations") or {}
    kept = (naming.ANNOTATION_PREVIOUS_TEMPLATE, naming.ANNOTATION_PREVIOUS_REVISION)
    if annotations.get(naming.ANNOTATION_REVISION) == revision:  # a scale: keep it
        return {k: annotations[k] for k in kept if k in annotations}
    template = copy.deepcopy(primary["spec"]["template"])
    labels = template.get("metadata", {}).get("labels", {})
    for key in naming.selector(canary["metadata"]["name"], "stable"):
        labels.pop(key, None)
    return {
        naming.ANNOTATION_PREVIOUS_TEMPLATE: json.dumps(template, sort_keys=True),
        naming.ANNOTATION_PREVIOUS_REVISION: template_hash(template),
    }


def ensure_services(kube: KubePort, canary: Obj) -> None:
    name, ns = canary["metadata"]["name"], canary["metadata"]["namespace"]
    svc = canary["spec"]["service"]
    port = {"name": "http", "port": svc["port"], "targetPort": svc.get("targetPort", svc["port"])}
    for svc_name, variant in (
        (naming.stable_service(name), "stable"),
        (naming.canary_service(name), "canary"),
    ):
        existing = kube.get_service(ns, svc_name)
        if existing is not None and not _owned_by(existing, canary):
            raise PermanentError(_not_ours(canary, "Service", svc_name))
        kube.apply_service(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": svc_name,
                    "namespace": ns,
                    "labels": naming.selector(name, variant),
                    "ownerReferences": [_owner(canary)],
                },
                "spec": {"selector": naming.selector(name, variant), "ports": [port]},
            },
        )


def desired_total(target: Target, primary: Obj | None) -> int:
    """Replica count for each variant: the user's count, else what the primary remembers."""
    if target.replicas:
        return target.replicas
    return naming.remembered_total(primary) if primary is not None else 1
