"""The Kubernetes API client: the only code that reads and writes cluster objects.

Everything else gets plain dicts in and out, and the typed errors of canary.kube.errors.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from canary.api.base import GROUP, VERSION
from canary.errors import PermanentError, TransientError
from canary.kube.cache import Store
from canary.kube.calls import REQUEST_TIMEOUT, call, list_json, read_json, translate, watch_json
from canary.kube.connect import Connection
from canary.kube.errors import Forbidden, NotFound
from canary.kube.events import EventSeries, new_event, seconds_time, series_patch
from canary.kube.port import Obj

CANARY_PLURAL = "canaries"
TEMPLATE_PLURAL = "analysistemplates"
CLUSTER_TEMPLATE_PLURAL = "clusteranalysistemplates"
# (group, version, plural) of the built-in resources the CLI reads. It reaches them through
# the generic custom-objects client: a typed group client loads that group's models,
# which takes up to a second, while a CLI command makes a handful of calls.
_DEPLOYMENTS = ("apps", "v1", "deployments")
_EVENTS = ("events.k8s.io", "v1", "events")
_CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
_SELF_SUBJECT_REVIEWS = ("authentication.k8s.io", "v1", "selfsubjectreviews")


def now_iso() -> str:
    return seconds_time(dt.datetime.now(dt.UTC))


class Kube(Connection):
    """A thin client: dicts in, dicts out, typed errors. It implements KubePort (see
    canary.kube.port for what those methods promise), and what the CLI and sandbox need."""

    # The controller's watch-fed cache; None (the CLI): every read asks the server.
    cache: Store | None = None

    # ------------------------------------------------------------- canary.dev objects

    def _cached(self, kind: str) -> Store | None:
        return self.cache if self.cache is not None and self.cache.synced(kind) else None

    def _remember(self, kind: str, obj: Obj) -> Obj:
        if self.cache is not None:
            self.cache.apply(kind, "MODIFIED", obj)
        return obj

    def get_canary(self, ns: str, name: str) -> Obj:
        if cache := self._cached("Canary"):
            found = cache.get("Canary", ns, name)
            if found is None:
                raise NotFound(f"Canary {ns}/{name} not found")
            return found
        return call(
            f"Canary {ns}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
        )

    def list_canaries(self, ns: str | None) -> tuple[list[Obj], str]:
        return self.list_objects("Canary", ns)

    def require_crds(self) -> None:
        """Fail early, with the fix, when the CRDs are not installed."""
        try:
            self.custom.get_cluster_custom_object(
                *_CRDS, f"{CANARY_PLURAL}.{GROUP}", _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                raise PermanentError(
                    f"the Canary CRD ({CANARY_PLURAL}.{GROUP}) is not installed in this cluster."
                    " Fix: kubectl apply -k manifests/"
                ) from None
            if exc.status not in (401, 403):  # users may lack CRD read rights; go on
                raise translate(exc, "CustomResourceDefinition canaries") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"cannot reach the API server ({exc})") from None

    def patch_canary_status(self, ns: str, name: str, status: Obj, resource_version: str) -> Obj:
        """Write the whole status once; the resourceVersion guards against lost updates."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return self._remember("Canary", call(
            f"Canary {ns}/{name} status",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
            body,
        ))

    def _patch_canary_metadata(self, ns: str, name: str, metadata: Obj) -> Obj:
        return self._remember("Canary", call(
            f"Canary {ns}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            CANARY_PLURAL,
            name,
            {"metadata": metadata},
        ))

    def set_canary_finalizers(
        self, ns: str, name: str, finalizers: list[str], resource_version: str
    ) -> Obj:
        """Replace the finalizer list; the resourceVersion guards others' finalizers."""
        metadata = {"finalizers": finalizers, "resourceVersion": resource_version}
        return self._patch_canary_metadata(ns, name, metadata)

    def annotate_canary(self, ns: str, name: str, annotations: dict[str, str | None]) -> Obj:
        return self._patch_canary_metadata(ns, name, {"annotations": annotations})

    def list_templates(self, ns: str) -> list[Obj]:
        if (cache := self._cached("AnalysisTemplate")) and self._cached(
            "ClusterAnalysisTemplate"
        ):
            return cache.items("AnalysisTemplate", ns) + cache.items(
                "ClusterAnalysisTemplate", None
            )
        local = call(
            "list AnalysisTemplates",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            TEMPLATE_PLURAL,
        )["items"]
        cluster: list[Obj]
        try:
            cluster = self.custom.list_cluster_custom_object(  # type: ignore[index]
                GROUP, VERSION, CLUSTER_TEMPLATE_PLURAL
            )["items"]
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise translate(exc, "list ClusterAnalysisTemplates") from None
            cluster = []
        return local + cluster

    def _list_call(self, kind: str, ns: str | None) -> tuple[Any, tuple[Any, ...]]:
        if kind == "Deployment":
            if ns:
                return self.apps.list_namespaced_deployment, (ns,)
            return self.apps.list_deployment_for_all_namespaces, ()
        plural = {
            "Canary": CANARY_PLURAL,
            "AnalysisTemplate": TEMPLATE_PLURAL,
            "ClusterAnalysisTemplate": CLUSTER_TEMPLATE_PLURAL,
        }[kind]
        if ns and kind != "ClusterAnalysisTemplate":
            return self.custom.list_namespaced_custom_object, (GROUP, VERSION, ns, plural)
        return self.custom.list_cluster_custom_object, (GROUP, VERSION, plural)

    def list_objects(self, kind: str, ns: str | None) -> tuple[list[Obj], str]:
        """Every `kind` in `ns` (None: all namespaces), as the JSON the server sent (no
        typed models: converting thousands of Deployments costs more than the request),
        and the list's resourceVersion to watch from."""
        return list_json(kind, *self._list_call(kind, ns))

    def watch(
        self, kind: str, ns: str | None, resource_version: str, timeout_seconds: int = 60
    ) -> Iterator[tuple[str, Obj]]:
        """Yield (event type, object) as the server sends them; raises Gone on 410."""
        fn, args = self._list_call(kind, ns)
        return watch_json(kind, fn, args, resource_version, timeout_seconds)

    def list_deployments(self, ns: str | None) -> tuple[list[Obj], str]:
        return self.list_objects("Deployment", ns)

    # ------------------------------------------------------------- workloads

    def _read_or_none(self, what: str, fn: Any, *args: Any) -> Obj | None:
        try:
            return read_json(what, fn, *args)
        except NotFound:
            return None

    def get_deployment(self, ns: str, name: str) -> Obj | None:
        if cache := self._cached("Deployment"):
            return cache.get("Deployment", ns, name)
        return self._read_or_none(
            f"Deployment {ns}/{name}", self.custom.get_namespaced_custom_object,
            *_DEPLOYMENTS[:2], ns, _DEPLOYMENTS[2], name,
        )

    def create_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        what = f"create Deployment {ns}/{name}"
        return self._remember("Deployment", read_json(what, self.apps.create_namespaced_deployment,
                                                  ns, body))

    def replace_deployment(self, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        what = f"Deployment {ns}/{name}"
        replace = self.custom.replace_namespaced_custom_object
        return self._remember("Deployment", read_json(what, replace, *_DEPLOYMENTS[:2], ns,
                                                      _DEPLOYMENTS[2], name, body))

    def scale_deployment(
        self, ns: str, name: str, replicas: int, annotations: dict[str, str | None] | None = None
    ) -> None:
        body: Obj = {"spec": {"replicas": replicas}}
        if annotations:
            body["metadata"] = {"annotations": annotations}
        what = f"Deployment {ns}/{name}"
        self._remember("Deployment", read_json(what, self.apps.patch_namespaced_deployment,
                                           name, ns, body))

    def patch_deployment_status(self, ns: str, name: str, status: Obj) -> None:
        """Only the sandbox's stand-in kubelet uses this: there are no real pods."""
        call(
            f"Deployment {ns}/{name} status",
            self.apps.patch_namespaced_deployment_status,
            name,
            ns,
            {"status": status},
        )

    def get_service(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(
            f"Service {ns}/{name}", self.core.read_namespaced_service, name, ns
        )

    def apply_service(self, ns: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        existing = self.get_service(ns, name)
        if existing is None:
            call(f"create Service {ns}/{name}", self.core.create_namespaced_service, ns, body)
        else:
            call(
                f"Service {ns}/{name}",
                self.core.patch_namespaced_service,
                name,
                ns,
                {
                    "metadata": {
                        "labels": body["metadata"].get("labels", {}),
                        "ownerReferences": body["metadata"].get("ownerReferences", []),
                    },
                    "spec": {"selector": body["spec"]["selector"], "ports": body["spec"]["ports"]},
                },
            )

    # ------------------------------------------------------------- other APIs' objects

    def get_object(self, group: str, version: str, plural: str, ns: str, name: str) -> Obj:
        return call(
            f"{plural}.{group} {ns}/{name}",
            self.custom.get_namespaced_custom_object,
            group,
            version,
            ns,
            plural,
            name,
        )

    def replace_object(self, group: str, version: str, plural: str, ns: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        return call(
            f"{plural}.{group} {ns}/{name}",
            self.custom.replace_namespaced_custom_object,
            group,
            version,
            ns,
            plural,
            name,
            body,
        )

    # ------------------------------------------------------------- the controller's namespace

    def get_config_map(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(
            f"ConfigMap {ns}/{name}", self.core.read_namespaced_config_map, name, ns
        )

    def get_secret(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(f"Secret {ns}/{name}", self.core.read_namespaced_secret, name, ns)

    # ------------------------------------------------------------- leader election

    def get_lease(self, ns: str, name: str) -> Obj | None:
        return self._read_or_none(
            f"Lease {ns}/{name}", self.coordination.read_namespaced_lease, name, ns
        )

    def write_lease(self, ns: str, body: Obj) -> None:
        name = body["metadata"]["name"]
        if body["metadata"].get("resourceVersion"):
            call(f"Lease {ns}/{name}", self.coordination.replace_namespaced_lease, name, ns, body)
        else:
            call(f"Lease {ns}/{name}", self.coordination.create_namespaced_lease, ns, body)

    # ------------------------------------------------------------- events

    @functools.cached_property
    def _event_series(self) -> EventSeries:
        return EventSeries()

    def emit_event(
        self,
        regarding: Obj,
        type_: str,
        reason: str,
        message: str,
        component: str = "canary-controller",
    ) -> None:
        meta = regarding["metadata"]
        ns = meta.get("namespace", "default")
        note = message[:1024]
        now = dt.datetime.now(dt.UTC)
        key = (ns, meta.get("uid") or meta["name"], type_, reason, note)
        seen = self._event_series.occur(key, now, f"{meta['name']}.{time.time_ns():x}")
        where = f"Event for {ns}/{meta['name']}"
        if seen.count > 1:
            patch = series_patch(seen.count, now)
            try:
                call(where, self.events.patch_namespaced_event, seen.name, ns, patch)
                return
            except NotFound:  # expired (Events live an hour) or deleted: start a new one
                self._event_series.forget(key)
                seen = self._event_series.occur(key, now, f"{meta['name']}.{time.time_ns():x}")
        body = new_event(regarding, seen.name, type_, reason, note, now, component)
        call(where, self.events.create_namespaced_event, ns, body)

    def list_events(self, ns: str, name: str) -> list[Obj]:
        out = call(
            "list Events",
            self.custom.list_namespaced_custom_object,
            *_EVENTS[:2], ns, _EVENTS[2],
            field_selector=f"regarding.name={name}",
        )
        items = out.get("items", [])
        return sorted(items, key=lambda e: e.get("eventTime") or "")

    def whoami(self) -> str:
        """The username the API server authenticates this client as, from a
        SelfSubjectReview (what `kubectl auth whoami` asks). A manual request must carry it:
        the admission policy rejects one that names anybody else."""
        try:
            review = call(
                "SelfSubjectReview",
                self.custom.create_cluster_custom_object,
                *_SELF_SUBJECT_REVIEWS,
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
        except Forbidden:
            raise PermanentError(
                "the API server does not let this user ask who it is (create "
                "selfsubjectreviews.authentication.k8s.io is forbidden), and a manual request "
                "must carry that identity. Fix: bind the user to the built-in ClusterRole "
                "system:basic-user, which allows it"
            ) from None
        except NotFound:
            raise PermanentError(
                "the API server does not serve SelfSubjectReview (authentication.k8s.io/v1), "
                "which names the user a manual request must carry. Fix: upgrade the cluster "
                "to Kubernetes 1.30 or later, which canary's admission policy needs too"
            ) from None
        return str(review["status"]["userInfo"]["username"])

    def can_i(
        self,
        user: str,
        verb: str,
        group: str,
        resource: str,
        ns: str | None = None,
        subresource: str | None = None,
    ) -> bool:
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group=group, resource=resource, namespace=ns, subresource=subresource
                ),
            )
        )
        out = call("SubjectAccessReview", self.auth.create_subject_access_review, body)
        return bool(out.status.allowed)

