"""What the controller needs from the Kubernetes API: plain dicts in and out, and the
typed errors of canary.kube.errors.

The controller side (canary.controller and the routers) is written against KubePort,
never the client: canary.kube.client.Kube implements it over the API server,
and the unit tests' FakeKube in memory, so mypy checks that both keep to it. Importing
this module does not load the Kubernetes client library.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from canary.kube.cache import Store

Obj = dict[str, Any]


class KubePort(Protocol):
    """Reads of a missing object raise NotFound unless they return None; a write whose
    resourceVersion is not the stored one raises Conflict and changes nothing."""

    # The watch-fed store that reads prefer once a kind is synced; None: every read asks.
    cache: Store | None

    # ------------------------------------------------------------- watching

    def require_crds(self) -> None:
        """Fail, naming the fix, when the Canary CRD is not installed."""
        ...

    def list_objects(self, kind: str, ns: str | None) -> tuple[list[Obj], str]:
        """Every `kind` in `ns` (None: all namespaces), and the resourceVersion to watch
        from. Kinds: Canary, Deployment, AnalysisTemplate, ClusterAnalysisTemplate."""
        ...

    def watch(self, kind: str, ns: str | None, resource_version: str) -> Iterator[tuple[str, Obj]]:
        """(event type, object) from `resource_version` on, until the server ends the
        watch; raises Gone when that resourceVersion is too old."""
        ...

    # ------------------------------------------------------------- canary.dev objects

    def get_canary(self, ns: str, name: str) -> Obj: ...

    def list_templates(self, ns: str) -> list[Obj]:
        """The AnalysisTemplates in `ns` and every ClusterAnalysisTemplate."""
        ...

    def patch_canary_status(self, ns: str, name: str, status: Obj, resource_version: str) -> Obj:
        """A JSON merge patch of the status (a key set to None is removed); the stored
        Canary comes back."""
        ...

    def set_canary_finalizers(
        self, ns: str, name: str, finalizers: list[str], resource_version: str
    ) -> Obj:
        """Replace the finalizer list; with none left, a Canary being deleted is gone."""
        ...

    # ------------------------------------------------------------- workloads

    def get_deployment(self, ns: str, name: str) -> Obj | None: ...

    def create_deployment(self, ns: str, body: Obj) -> Obj: ...

    def replace_deployment(self, ns: str, body: Obj) -> Obj:
        """Replace metadata and spec (the status is kept), guarded by the body's
        resourceVersion if it names one."""
        ...

    def scale_deployment(
        self, ns: str, name: str, replicas: int, annotations: dict[str, str | None] | None = None
    ) -> None:
        """Set replicas, and in the same write the given annotations (None removes one)."""
        ...

    def get_service(self, ns: str, name: str) -> Obj | None: ...

    def apply_service(self, ns: str, body: Obj) -> None:
        """Create, or set the labels, ownerReferences, selector and ports of the one there."""
        ...

    # ------------------------------------------------------------- other APIs' objects

    def get_object(self, group: str, version: str, plural: str, ns: str, name: str) -> Obj: ...

    def replace_object(self, group: str, version: str, plural: str, ns: str, body: Obj) -> Obj:
        """Replace a custom object, guarded by the body's resourceVersion."""
        ...

    # ------------------------------------------------------------- the controller's namespace

    def get_config_map(self, ns: str, name: str) -> Obj | None:
        """Only in the controller's own namespace (its Role allows no other)."""
        ...

    def get_secret(self, ns: str, name: str) -> Obj | None:
        """Only in the controller's own namespace: notification sinks' URLs."""
        ...

    # ------------------------------------------------------------- leader election

    def get_lease(self, ns: str, name: str) -> Obj | None: ...

    def write_lease(self, ns: str, body: Obj) -> None:
        """Create, or replace guarded by resourceVersion (Conflict if someone else won)."""
        ...

    # ------------------------------------------------------------- events

    def emit_event(self, regarding: Obj, type_: str, reason: str, message: str) -> None: ...
