"""Names and labels of the objects the controller owns for a Canary named N.

N-primary   Deployment running the stable revision (the controller's copy)
N-canary    Deployment running the new revision during a rollout
N-stable    Service selecting the primary's pods
N-canary    Service selecting the canary's pods
N           the user's Deployment: the template source, scaled to 0 once N-primary runs
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABEL_NAME = "canary.dev/name"
LABEL_VARIANT = "canary.dev/variant"  # "stable" or "canary"
ANNOTATION_REVISION = "canary.dev/revision"
ANNOTATION_REQUEST = "canary.dev/request"  # manual requests from the CLI, JSON
# On every owned Deployment: the user's replica count, which routers split by weight.
ANNOTATION_TOTAL = "canary.dev/total-replicas"
# On N-primary since its last promotion: the user's template (and its revision) it ran
# before, which `canary undo` rolls out again once the previous pods are gone.
ANNOTATION_PREVIOUS_TEMPLATE = "canary.dev/previous-template"
ANNOTATION_PREVIOUS_REVISION = "canary.dev/previous-revision"


def remembered_total(primary: Mapping[str, Any]) -> int:
    """The replica count the user asked for, as N-primary remembers it."""
    annotations = primary["metadata"].get("annotations") or {}
    return int(annotations.get(ANNOTATION_TOTAL, primary["spec"].get("replicas") or 1))


def cli_command(verb: str, name: str, namespace: str) -> str:
    """The command that does `verb` to Canary namespace/name, for messages that tell users
    what to run: with -n, since their current namespace may be another one."""
    return f"canary {verb} {name} -n {namespace}"


def primary(name: str) -> str:
    return f"{name}-primary"


def canary_deployment(name: str) -> str:
    return f"{name}-canary"


def stable_service(name: str) -> str:
    return f"{name}-stable"


def canary_service(name: str) -> str:
    return f"{name}-canary"


def selector(name: str, variant: str) -> dict[str, str]:
    return {LABEL_NAME: name, LABEL_VARIANT: variant}
